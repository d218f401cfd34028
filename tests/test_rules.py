"""Every entry of `symgrad.rules.RULES`, and the conventions at kinks.

Each rule's `example` is written into a real module file (symgrad reads source from files),
imported, and differentiated; the reference is a central finite difference of the same
example. `stop_gradient`/`detach` are replayed as constants recorded at the base point in the
reference copy of the module, so the finite difference sees them as constants too.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings

import numpy as np
import pytest
from helpers import as_tuple, assert_float_results, check_grads, every_parameter

import symgrad
from symgrad import detach, no_grad, stop_gradient
from symgrad.rules import RULES, lookup

MODULE_TEMPLATE = """\
import math

import numpy as np

from symgrad import detach, stop_gradient


def f(x, y):
    return {example}
"""

N_POINTS = 6
KINK_MARGIN = 1e-3


def rule_id(rule):
    return rule.names[0]


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example_modules(tmp_path, request):
    """Load a rule's example twice: once for symgrad, once as the finite-difference reference."""
    loaded = []

    def load(rule, index):
        path = tmp_path / f"rule_example_{index}.py"
        path.write_text(MODULE_TEMPLATE.format(example=rule.example))
        traced = load_module(path, f"_symgrad_rule_example_{index}")
        reference = load_module(path, f"_symgrad_rule_reference_{index}")
        loaded.extend([traced.__name__, reference.__name__])
        return traced, reference

    yield load
    for name in loaded:
        sys.modules.pop(name, None)


class Replay:
    """Stands in for stop_gradient/detach: records the values at the base point, then returns
    those recorded values (in call order) while the finite difference moves the inputs."""

    def __init__(self):
        self.values = []
        self.recording = True
        self.position = 0

    def __call__(self, value):
        if self.recording:
            self.values.append(value)
            return value
        out = self.values[self.position % len(self.values)]
        self.position += 1
        return out


def frozen_reference(module, point):
    replay = Replay()
    module.stop_gradient = module.detach = replay
    module.f(*point)
    replay.recording = False
    return module.f


def far_from_kinks(x, y):
    """Away from every kink or jump of every example: ties, zeros, clip bounds, integers,
    half-integers (round ties)."""
    quantities = [x - y, x, y, x * y, x * y - 0.5, x * y + 0.5, x - 0.5]
    for v in (x, y, x * y):
        quantities.append(v - round(v))  # floor/ceil jump at integers
        quantities.append(v - 0.5 - round(v - 0.5))  # round jumps at half-integers
    return all(abs(q) > KINK_MARGIN for q in quantities)


def sample_points(rule, seed):
    lo, hi = rule.domain
    rng = np.random.default_rng(seed)
    points = []
    while len(points) < N_POINTS:
        x, y = (float(v) for v in rng.uniform(lo, hi, size=2))
        if far_from_kinks(x, y):
            points.append((x, y))
    return points


# --- the table -----------------------------------------------------------------------------------


def test_rules_table_is_well_formed():
    assert len(RULES) >= 40
    seen = set()
    for rule in RULES:
        assert rule.names and rule.example, rule
        lo, hi = rule.domain
        assert lo < hi, rule
        for name in rule.names:
            assert name not in seen, f"{name} is listed by two rules"
            seen.add(name)


@pytest.mark.parametrize("index,rule", list(enumerate(RULES)), ids=[rule_id(r) for r in RULES])
def test_rule_gradient_matches_finite_differences(index, rule, example_modules):
    traced, reference = example_modules(rule, index)
    wrt = every_parameter(traced.f)
    g = symgrad.grad(traced.f, wrt=wrt)
    vg = symgrad.value_and_grad(traced.f, wrt=wrt)
    points = sample_points(rule, seed=1000 + index)
    grads = []
    for point in points:
        expected_value = float(traced.f(*point))
        grads.append(
            check_grads(frozen_reference(reference, point), point, wrt=wrt, compiled=g, check_types=False)
        )
        value, _ = vg(*point)
        assert math.isclose(value, expected_value, rel_tol=1e-12, abs_tol=1e-13), (rule.example, point)
    # the same gradient on arrays of the points
    xs, ys = (np.array([p[k] for p in points]) for k in range(2))
    gx, gy = as_tuple(g(xs, ys), 2)
    np.testing.assert_allclose(gx, [gr[0] for gr in grads], rtol=1e-12, atol=1e-13, err_msg=rule.example)
    np.testing.assert_allclose(gy, [gr[1] for gr in grads], rtol=1e-12, atol=1e-13, err_msg=rule.example)
    assert_float_results(grads, rule.example)


WIDE = (-3.0, 3.0)


def finite_nearby(fn, x, y, r=1e-3):
    """The example is finite, without warnings, on a small square around (x, y)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = [fn(x + a, y + b) for a in (-r, 0.0, r) for b in (-r, 0.0, r)]
        except (ArithmeticError, ValueError, RuntimeWarning):
            return False
    return bool(np.all(np.isfinite(values)))


@pytest.mark.parametrize("index,rule", list(enumerate(RULES)), ids=[rule_id(r) for r in RULES])
def test_rule_gradient_on_wide_domain(index, rule, example_modules):
    """Beyond the rule's own domain: every point of (-3, 3)^2 where the example is finite and
    smooth nearby (negative arguments of cbrt, atan2 in every quadrant, ...)."""
    traced, reference = example_modules(rule, index)
    wrt = every_parameter(traced.f)
    g = symgrad.grad(traced.f, wrt=wrt)
    rng = np.random.default_rng(2000 + index)
    points = []
    for _ in range(400):
        x, y = (float(v) for v in rng.uniform(*WIDE, size=2))
        if far_from_kinks(x, y) and finite_nearby(traced.f, x, y):
            points.append((x, y))
        if len(points) == N_POINTS:
            break
    assert points, rule.example
    for point in points:
        check_grads(frozen_reference(reference, point), point, wrt=wrt, compiled=g, check_types=False)


def _resolve(name):
    module_name, _, attr = name.rpartition(".")
    if module_name == "builtins":
        import builtins

        return getattr(builtins, attr, None)
    if module_name == "symgrad":
        return getattr(symgrad, attr, None)
    return getattr(importlib.import_module(module_name), attr, None)


@pytest.mark.parametrize("rule", RULES, ids=[rule_id(r) for r in RULES])
def test_rule_names_are_looked_up(rule):
    found = 0
    for name in rule.names:
        obj = _resolve(name)
        if obj is None or not callable(obj):
            continue  # e.g. math.cbrt before Python 3.11
        found += 1
        assert lookup(obj) is rule, f"lookup({name}) gave {lookup(obj)!r}, not the rule listing it"
    assert found, f"none of {rule.names} resolves to a callable"


def test_lookup_of_unknown_and_unhashable():
    assert lookup(math.factorial) is None
    assert lookup(lambda v: v) is None
    assert lookup([]) is None


# --- conventions at kinks ------------------------------------------------------------------------


def relu_np(x):
    return np.maximum(x, 0)


def relu_builtin(x):
    return max(x, 0)


def relu_branch(x):
    return x if x > 0 else 0.0


def relu_if(x):
    if x > 0:
        return x
    return 0.0


@pytest.mark.parametrize("fn", [relu_np, relu_builtin, relu_branch, relu_if])
def test_relu_derivative_at_zero_is_zero(fn):
    g = symgrad.grad(fn)
    out = g(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(out, [0.0, 0.0, 1.0])
    assert out.dtype == np.float64
    results = []
    for _ in range(2):  # the first and later calls
        results += [g(0.0), g(1.5), g(-1.5)]
    assert results == [0.0, 1.0, 0.0] * 2
    assert all(type(r) is float for r in results), [type(r).__name__ for r in results]


def abs_np(x):
    return np.abs(x)


def abs_builtin(x):
    return abs(x)


def abs_math(x):
    return math.fabs(x)


@pytest.mark.parametrize("fn", [abs_np, abs_builtin, abs_math])
def test_abs_derivative_at_zero_is_zero(fn):
    g = symgrad.grad(fn)
    assert g(0.0) == 0.0
    assert g(-0.0) == 0.0
    assert g(2.0) == 1.0
    assert g(-2.0) == -1.0
    np.testing.assert_array_equal(g(np.array([-2.0, 0.0, 3.0])), [-1.0, 0.0, 1.0])


def maximum_np(x, y):
    return np.maximum(x, y)


def minimum_np(x, y):
    return np.minimum(x, y)


def maximum_builtin(x, y):
    return max(x, y)


def minimum_builtin(x, y):
    return min(x, y)


@pytest.mark.parametrize("fn", [maximum_np, minimum_np, maximum_builtin, minimum_builtin])
def test_tie_of_two_traced_values_shares_the_gradient(fn):
    g = symgrad.grad(fn, wrt=("x", "y"))
    assert g(1.5, 1.5) == (0.5, 0.5)
    assert g(-0.25, -0.25) == (0.5, 0.5)
    gx, gy = g(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 3.0]))
    winner_x = 1.0 if fn in (maximum_np, maximum_builtin) else 0.0
    np.testing.assert_array_equal(gx, [0.5, winner_x, 0.5])
    np.testing.assert_array_equal(gy, [0.5, 1.0 - winner_x, 0.5])


def sign_np(x):
    return np.sign(x)


def floor_np(x):
    return np.floor(x)


def floor_math(x):
    return math.floor(x)


def ceil_np(x):
    return np.ceil(x)


def round_np(x):
    return np.round(x)


def round_builtin(x):
    return round(x)


def rint_np(x):
    return np.rint(x)


@pytest.mark.parametrize("fn", [sign_np, floor_np, floor_math, ceil_np, round_np, round_builtin, rint_np])
def test_step_functions_have_zero_derivative(fn):
    g = symgrad.grad(fn)
    points = [0.0, 1.0, 0.5, 2.5, -1.3, 0.7]
    out = g(np.array(points))
    assert out.shape == (len(points),)
    np.testing.assert_array_equal(out, np.zeros(len(points)))
    results = [g(v) for v in points * 2]  # the first and later calls
    assert results == [0.0] * len(results), (fn.__name__, results)
    assert all(type(r) is float for r in results), [type(r).__name__ for r in results]


def times_step(x, y):
    return np.floor(x) * y + np.sign(y) * x


def test_step_functions_as_factors():
    gx, gy = symgrad.grad(times_step, wrt=("x", "y"))(2.5, -1.5)
    assert gx == -1.0  # sign(-1.5)
    assert gy == 2.0  # floor(2.5)


def sqrt_where(x):
    return np.where(x > 0, np.sqrt(x), 0.0)


def sqrt_if(x):
    if x > 0:
        return np.sqrt(x)
    return 0.0


@pytest.mark.parametrize("fn", [sqrt_where, sqrt_if])
def test_untaken_branch_gives_no_nan(fn):
    g = symgrad.grad(fn)
    vg = symgrad.value_and_grad(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            assert g(0.0) == 0.0
            assert g(-1.0) == 0.0
            assert math.isclose(g(4.0), 0.25, rel_tol=1e-15)
        xs = np.array([-2.0, -0.5, 0.0, 0.25, 4.0])
        out = g(xs)
        value, grad_array = vg(xs)
    assert not np.any(np.isnan(out))
    np.testing.assert_array_equal(out[:3], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(out[3:], [1.0, 0.25], rtol=1e-15)
    np.testing.assert_array_equal(grad_array, out)
    np.testing.assert_allclose(value, [0.0, 0.0, 0.0, 0.5, 2.0], rtol=1e-15)


def log_where(x):
    return np.where(x > 0, x * np.log(x), 0.0)


def test_untaken_log_branch_gives_no_nan():
    g = symgrad.grad(log_where)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert g(0.0) == 0.0
        out = g(np.array([-1.0, 0.0, 1.0]))
    np.testing.assert_array_equal(out, [0.0, 0.0, 1.0])


def cbrt_np(x):
    return np.cbrt(x)


def cbrt_math(x):
    return math.cbrt(x)


@pytest.mark.parametrize("fn", [cbrt_np, cbrt_math])
def test_cbrt_of_negative_numbers(fn):
    if fn is cbrt_math and not hasattr(math, "cbrt"):
        pytest.skip("math.cbrt needs Python 3.11")
    g = symgrad.grad(fn)
    for v in (-8.0, -0.3, 0.3, 8.0):
        # d/dx x^(1/3) = 1 / (3 x^(2/3)), an even function of x
        want = 1.0 / (3.0 * abs(v) ** (2.0 / 3.0))
        got = g(v)
        assert math.isclose(got, want, rel_tol=1e-12), (fn.__name__, v, got, want)
    out = g(np.array([-8.0, -1.0, 1.0, 8.0]))
    np.testing.assert_allclose(out, [1 / 12, 1 / 3, 1 / 3, 1 / 12], rtol=1e-12)


def zero_base_power(x):
    return 0.0**x + x


def test_power_of_zero_base():
    # 0.0 ** x is identically 0 for x > 0, so the derivative is that of `x`
    g = symgrad.grad(zero_base_power)
    assert g(1.5) == 1.0
    np.testing.assert_array_equal(g(np.array([0.5, 2.0])), [1.0, 1.0])


def relu_with_constant_max3(x, y):
    return max(x, 0.0, y)


def test_three_way_max_ties():
    g = symgrad.grad(relu_with_constant_max3, wrt=("x", "y"))
    assert g(1.0, 1.0) == (0.5, 0.5)  # two traced values tie
    assert g(0.0, -1.0) == (0.0, 0.0)  # a traced value ties with the constant: relu'(0) = 0
    assert g(2.0, 1.0) == (1.0, 0.0)
    assert g(-2.0, -1.0) == (0.0, 0.0)


def clip_kink(x):
    return np.clip(x, -0.5, 0.5)


def test_clip_boundary_passes_gradient():
    # documented convention: gradient 1 on the boundary, as torch.clamp
    g = symgrad.grad(clip_kink)
    assert g(0.5) == 1.0
    assert g(-0.5) == 1.0
    assert g(0.7) == 0.0
    assert g(0.0) == 1.0


def clip_traced_bounds(x, lo, hi):
    return np.clip(x, lo, hi)


def test_clip_with_crossed_bounds_is_hi_as_in_numpy():
    # minimum(maximum(x, lo), hi): with lo > hi every x maps to hi (torch.clamp agrees);
    # found by the fuzzer, which wrote np.clip(a, b, 1.0) with b > 1
    vg = symgrad.value_and_grad(clip_traced_bounds, wrt=("x", "lo", "hi"))
    for x in (-3.0, 1.5, 3.0):
        value, grads = vg(x, 2.0, 1.0)
        assert value == np.clip(x, 2.0, 1.0) == 1.0
        assert grads == (0.0, 0.0, 1.0)
    xs = np.array([-3.0, 0.5, 1.5, 3.0])
    value, grads = vg(xs, 2.0, 1.0)
    np.testing.assert_array_equal(value, np.clip(xs, 2.0, 1.0))
    assert grads[1:] == (0.0, 4.0)
    assert vg(0.5, 0.0, 1.0) == (0.5, (1.0, 0.0, 0.0))


def stopped(x):
    with no_grad():
        s = x * x
    return s * x + stop_gradient(x) + detach(x * 3.0)


def test_stop_gradient_forms():
    g = symgrad.grad(stopped)
    assert g(2.0) == 4.0
    np.testing.assert_array_equal(g(np.array([1.0, 3.0])), [1.0, 9.0])


def test_example_template_has_every_name_an_example_uses():
    # the template imports exactly what the examples may use
    text = MODULE_TEMPLATE.format(example="0.0")
    for rule in RULES:
        for token in ("np.", "math.", "stop_gradient", "detach"):
            if token in rule.example:
                assert token.rstrip(".") in text, (rule.names, token)
