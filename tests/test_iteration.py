"""Iteration as Python people write it (tests/iteration_cases.py), and statements with no numeric
effect: values against the function run by Python/NumPy, gradients against central finite
differences and PyTorch float64, higher order and the other transforms on a few, the
decisions about assert/raise/print, and the hints of what is still refused."""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_close, central_diff, check_grads

from symgrad import (
    DataDependentLoopError,
    TracingError,
    UnsupportedSyntaxError,
    grad,
    hessian,
    jacobian,
    jvp,
    value_and_grad,
    vjp,
)
from tests import bad_inputs as bad
from tests import iteration_cases as ic

CASES = ic.CASES
IDS = [c.fn.__name__ for c in CASES]


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


# --- every case: value, gradient, PyTorch ------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_is_the_functions(case):
    value, _ = value_and_grad(case.fn, wrt=case.wrt)(*case.args)
    assert value == pytest.approx(float(case.fn(*case.args)), rel=1e-12, abs=1e-12)


def _fd(fn, args, i, h=1e-6):
    """Central differences of a function with one number as its output (a reduction: not the
    elementwise sum that helpers.central_diff takes), element by element of argument i."""
    base = np.asarray(args[i], dtype=float)
    out = np.empty(base.shape)
    for index in np.ndindex(base.shape):
        moved = [list(args), list(args)]
        for sign, m in zip((1.0, -1.0), moved):
            shifted = base.copy()
            shifted[index] += sign * h
            m[i] = shifted if base.ndim else float(shifted)
        out[index] = (_quiet(fn, *moved[0]) - _quiet(fn, *moved[1])) / (2 * h)
    return out if base.ndim else float(out)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradient_matches_finite_differences(case):
    if all(np.ndim(a) == 0 for a in case.args):
        check_grads(case.fn, case.args, wrt=case.wrt, rtol=1e-6, atol=1e-8)
        return
    got = grad(case.fn, wrt=case.wrt)(*case.args)
    for k, name in enumerate(case.wrt):
        i = list(case.fn.__code__.co_varnames).index(name)
        assert_close(got[k], _fd(case.fn, case.args, i), 1e-6, 1e-8, f"{case.fn.__name__} d/d{name}")


def _torch_namespace():
    torch_oracle = pytest.importorskip("torch_oracle", reason="needs torch")
    functions = Path(ic.__file__).read_text().split("\n@dataclass")[0]  # the table needs no torch
    return torch_oracle, torch_oracle.load(functions, "iteration_cases")


@pytest.mark.parametrize("case", [c for c in CASES if c.torch], ids=[c.fn.__name__ for c in CASES if c.torch])
def test_gradient_matches_pytorch(case):
    oracle, namespace = _torch_namespace()
    value, grads = oracle.value_and_grad(namespace[case.fn.__name__], case.args)
    got_value, got = value_and_grad(case.fn, wrt=case.wrt)(*case.args)
    assert got_value == pytest.approx(float(value), rel=1e-12)
    got = got if isinstance(got, tuple) else (got,)
    for mine, theirs, name in zip(got, grads, case.wrt):
        assert_close(mine, theirs, 1e-11, 1e-12, f"{case.fn.__name__} d/d{name} vs torch")


def test_elementwise_cases_broadcast_over_arrays():
    """A list of traced values in a function of numbers runs elementwise on arrays, as NumPy."""
    x, y = np.array([0.5, 1.3, -2.0]), np.array([0.25, -0.7, 1.5])
    for fn in (ic.list_sum_squares, ic.enumerate_weights, ic.zip_pairs, ic.dict_comprehension):
        value, (gx, gy) = value_and_grad(fn, wrt=("x", "y"))(x, y)
        np.testing.assert_allclose(value, fn(x, y), rtol=1e-12)
        np.testing.assert_allclose(gx, central_diff(fn, [x, y], 0), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(gy, central_diff(fn, [x, y], 1), rtol=1e-6, atol=1e-8)


# --- higher order and the other transforms -----------------------------------------------------


def test_second_order_of_a_generator_sum():
    g2 = grad(grad(ic.list_sum_squares))
    x, y = 1.3, -0.7
    # d/dx (2x + 2x y^2) = 2 + 2 y^2
    assert g2(x, y) == pytest.approx(2.0 + 2.0 * y * y, rel=1e-12)


def test_hessian_of_a_comprehension_and_of_a_row_loop():
    h = np.asarray(hessian(ic.nested_comprehension, wrt=("x", "y"))(1.3, -0.7), dtype=float)
    expected = np.array([[np.nan, np.nan], [np.nan, np.nan]])
    g = grad(ic.nested_comprehension, wrt=("x", "y"))
    for j, point in enumerate(((1.3 + 1e-5, -0.7), (1.3, -0.7 + 1e-5))):
        up, down = g(*point), g(*[2 * a - b for a, b in zip((1.3, -0.7), point)])
        expected[:, j] = [(u - d) / 2e-5 for u, d in zip(up, down)]
    np.testing.assert_allclose(h, expected, rtol=1e-6, atol=1e-6)
    hw = np.asarray(hessian(ic.rows_loop, wrt="w")(ic.X23, ic.W3))
    rows = [np.tanh(r @ ic.W3) for r in ic.X23]
    exact = sum(-2.0 * t * (1 - t * t) * np.outer(r, r) for t, r in zip(rows, ic.X23))
    np.testing.assert_allclose(hw, exact, rtol=1e-10, atol=1e-12)


def test_jvp_vjp_jacobian_of_iterating_functions():
    x, y = 1.3, -0.7
    g = grad(ic.zip_pairs, wrt=("x", "y"))(x, y)
    value, tangent = jvp(ic.zip_pairs, wrt=("x", "y"))((x, y), (1.0, 2.0))
    assert value == pytest.approx(ic.zip_pairs(x, y))
    assert tangent == pytest.approx(g[0] + 2.0 * g[1], rel=1e-12)
    value, pullback = vjp(ic.weighted_sum, wrt="w")(ic.W3, np.arange(1.0, 4.0))
    np.testing.assert_allclose(pullback(2.0), 2.0 * np.arange(1.0, 4.0), rtol=1e-12)

    def pair(x, y):
        return tuple(v * v for v in [x, y, x * y])

    jac = np.asarray(jacobian(pair, wrt=("x", "y"))(x, y), dtype=float).reshape(3, 2)
    np.testing.assert_allclose(jac, [[2 * x, 0.0], [0.0, 2 * y], [2 * x * y * y, 2 * x * x * y]], rtol=1e-12)


# --- assert, raise, isinstance, print: decided while tracing ------------------------------------


def test_static_checks_pass_and_output_calls_are_skipped_with_a_comment(capsys):
    g = grad(ic.checked_power, static=("n",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warnings.warn is not run by the generated code
        assert g(1.5, 3) == pytest.approx(3 * 1.5**2)
    assert capsys.readouterr().out == ""  # nor print
    source = g.source
    for call in ('print("checked_power: n =", n)', "log.info(", "logging.debug(", "warnings.warn("):
        assert call in source and "(skipped: no numeric effect)" in source
    again = grad(ic.checked_power, static=("n",))
    again(1.5, 3)
    assert again.source == source  # deterministic


def test_a_failing_static_assert_raises_the_users_assertion_error():
    g = grad(ic.checked_power, static=("n",))
    with pytest.raises(AssertionError, match="n must be positive, got 0") as info:
        g(1.5, 0)
    notes = getattr(info.value, "__notes__", [])
    assert not notes or "iteration_cases.py" in notes[0]  # where (Python 3.11+)
    with pytest.raises(AssertionError, match="n must be an int"):
        g(1.5, 2.0)


def test_a_static_raise_raises_the_users_exception():
    with pytest.raises(ValueError, match="n = 11 is too large"):
        grad(ic.checked_power, static=("n",))(1.5, 11)


def test_a_traced_assert_is_refused_and_its_hint_works():
    with pytest.raises(TracingError, match="before the call"):
        grad(bad.assert_stmt)(1.5)

    def checked_outside(x):
        return x

    x = 1.5
    assert x > 0.0, "positive"  # the hint: check in the caller
    assert grad(checked_outside)(x) == 1.0


def test_a_raise_under_a_traced_condition_is_refused():
    with pytest.raises(TracingError, match="only for some values"):
        grad(bad.raise_stmt)(1.5)


def _raises_in_helper(x):
    if x < 0.0:
        return _negative(x)
    return x * x


def _negative(x):
    raise ValueError("negative")


def test_a_raise_in_a_helper_under_a_traced_condition_is_refused():
    with pytest.raises(TracingError, match="only for some values"):
        grad(_raises_in_helper)(1.5)


def test_isinstance_of_a_traced_value_is_refused_and_the_hint_works():
    with pytest.raises(TracingError, match=r"np\.ndim"):
        grad(bad.isinstance_traced)(1.5)

    def by_ndim(x):
        if np.ndim(x) == 0:
            return x * x
        return x

    assert grad(by_ndim)(1.5) == pytest.approx(3.0)
    np.testing.assert_allclose(grad(by_ndim)(np.array([1.0, 2.0])), [1.0, 1.0])


# --- what is still refused: the hints, followed, work --------------------------------------------


def test_traced_filter_hint_works():
    with pytest.raises(DataDependentLoopError):
        grad(bad.generator_filter_traced)(1.5, -2.0)

    def as_hinted(x, y):
        return sum(v if v > 0.0 else 0.0 for v in (x, y))

    assert grad(as_hinted, wrt=("x", "y"))(1.5, -2.0) == (1.0, 0.0)


def test_traced_list_index_hint_works():
    def as_hinted(x, n):
        xs = [x, 2.0 * x]
        return xs[n]

    assert grad(as_hinted, static=("n",))(1.5, 1) == 2.0


def test_iterating_a_number_hint_works():
    def as_hinted(x):
        total = 0.0
        for i in range(len(x)):
            total = total + x[i]
        return total

    np.testing.assert_allclose(grad(as_hinted)(np.array([1.0, 2.0])), [1.0, 1.0])
    with pytest.raises(TracingError, match="range"):
        grad(bad.iterate_number)(1.5)


def test_append_to_a_passed_list_hint_works():
    with pytest.raises(UnsupportedSyntaxError, match="changes a list the caller passed in"):
        grad(bad.appends_in_helper)(1.5)
    assert grad(_appends_by_return)(1.5) == 2.0


def _with(xs, v):
    return xs + [v]


def _appends_by_return(x):
    xs = _with([x], 2.0 * x)
    return xs[-1]


def test_dict_traced_key_hint_works():
    def as_hinted(x):
        d = {"x": 1.0}
        return d["x"] * x

    assert grad(as_hinted)(1.5) == 1.0


def test_expression_statement_hint_works():
    def as_hinted(x):
        y = np.sin(x)
        return x + 0.0 * y

    assert grad(as_hinted)(1.5) == pytest.approx(1.0)


def test_unrolling_limit_counts_comprehensions():
    with pytest.raises(DataDependentLoopError, match="20,000"):
        grad(bad.long_generator)(1.5)


# --- scale -------------------------------------------------------------------------------------


def _thousand_terms(w, x):
    return sum(w[i] * x[i] ** 2 for i in range(1000))


def test_a_thousand_term_generator_sum_is_one_linear_chain():
    w, x = np.linspace(0.0, 1.0, 1000), np.linspace(1.0, 2.0, 1000)
    gw, gx = grad(_thousand_terms, wrt=("w", "x"))(w, x)
    np.testing.assert_allclose(gw, x**2, rtol=1e-12)
    np.testing.assert_allclose(gx, 2 * w * x, rtol=1e-12)


def test_generated_code_is_deterministic():
    for case in CASES[:6]:
        first = grad(case.fn, wrt=case.wrt)
        second = grad(case.fn, wrt=case.wrt)
        _quiet(first, *case.args)
        _quiet(second, *case.args)
        assert first.source == second.source


def test_math_fsum_is_a_sum():
    assert value_and_grad(ic.fsum_list)(1.3, -0.7)[0] == pytest.approx(math.fsum([1.69, -0.7, -0.91]))


def test_logging_is_not_run(caplog):
    with caplog.at_level(logging.DEBUG):
        grad(ic.checked_power, static=("n",))(1.5, 2)
    assert not [r for r in caplog.records if r.name == ic.__name__]
