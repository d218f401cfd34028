"""The fast call paths give the same answers as the general path, and fresh arrays."""

import numpy as np
import pytest
import sympy

from symgrad import grad, value_and_grad
from tests import speed_cases as cases
from tests.helpers import central_diff


def test_long_signature_compiles_and_is_right():
    args = [0.1 * (i + 1) for i in range(21)]
    g = grad(cases.many_params, wrt=tuple(range(21)))
    result = g(*args)
    assert len(result) == 21
    assert result[0] == pytest.approx(args[20]) and result[20] == pytest.approx(args[0])
    assert result[10] == pytest.approx(np.cos(args[10]) * args[2])
    arrays = g(*[np.full(3, a) for a in args])
    np.testing.assert_allclose(arrays[10], np.full(3, np.cos(args[10]) * args[2]))


@pytest.mark.parametrize("n", [1, 2, 5])
def test_static_dispatch_matches_sympy(n):
    g = grad(cases.recurrence, wrt=("h", "w", "b"), static="n")
    h, w, b = sympy.symbols("h w b")
    expr = h
    for _ in range(n):
        expr = sympy.tanh(w * expr + b)
    point = {h: sympy.Rational(3, 10), w: sympy.Rational(7, 10), b: sympy.Rational(-1, 5)}
    expected = [float(sympy.diff(expr, s).subs(point).evalf(30)) for s in (h, w, b)]
    for _ in range(3):  # the first call builds the variant's entry point; later ones use it
        assert g(0.3, 0.7, -0.2, n) == pytest.approx(expected, rel=1e-13)


def test_static_values_of_different_types_stay_apart_and_defaults_apply():
    g = grad(cases.with_default, wrt="x", static=("n",))
    assert g(0.3) == pytest.approx(g(0.3, 2.0, 2))
    one = g(0.3, 2.0, 1)
    two = g(0.3, 2.0, 2)
    assert one != two
    assert g(0.3, 2.0, 1) == one and g(0.3, 2.0, 2) == two
    with pytest.raises(Exception):  # noqa: B017 - range(1.0) is refused, not confused with n=1
        g(0.3, 2.0, 1.0)
    assert g(0.3, 2.0, 1) == one


def test_array_entry_returns_fresh_arrays_never_inputs():
    x = np.linspace(0.0, 1.0, 5)
    y = np.linspace(1.0, 2.0, 5)
    g = grad(cases.product, wrt=("x", "y"))
    for _ in range(3):
        gx, gy = g(x, y)
        assert gx is not y and gy is not x  # d(xy)/dx = y: a copy, so writing to it is safe
        np.testing.assert_array_equal(gx, y)
        np.testing.assert_array_equal(gy, x)
        gx += 1.0
    np.testing.assert_array_equal(y, np.linspace(1.0, 2.0, 5))


def test_value_and_grad_entry_on_arrays_and_floats():
    vg = value_and_grad(cases.product, wrt=("x", "y"))
    for _ in range(2):
        value, (gx, _gy) = vg(np.ones(3), np.full(3, 2.0))
        np.testing.assert_array_equal(value, np.full(3, 2.0))
        np.testing.assert_array_equal(gx, np.full(3, 2.0))
        assert vg(3.0, 4.0) == (12.0, (4.0, 3.0))


def test_running_sums_of_a_shared_weight_match_finite_differences():
    g = grad(cases.shared_weight, wrt=("x", "w"))
    for point in [(0.3, 0.8), (-1.1, 0.4)]:
        for i in range(2):
            assert g(*point)[i] == pytest.approx(central_diff(cases.shared_weight, list(point), i), rel=1e-7)
    assert "dfdw_partial" in g.source  # contributions are summed as they arrive
    x = np.linspace(-1.0, 1.0, 4)
    _gx, gw = g(x, 0.8)
    assert isinstance(gw, float)
    assert gw == pytest.approx(sum(g(float(v), 0.8)[1] for v in x), rel=1e-12)


def test_deep_unrolled_loop_decorates_without_recursion_error():
    g = grad(cases.recurrence, wrt="h", static="n")
    value = g(0.3, 1.0, 0.0, 1000)  # 1,000 unrolled steps: the reverse pass is a loop, not recursion
    assert np.isfinite(value)
    h, step = 0.3, 1e-6
    plus = cases.recurrence(h + step, 1.0, 0.0, 1000)
    minus = cases.recurrence(h - step, 1.0, 0.0, 1000)
    assert value > 1e-4  # tanh iterated from 0.3 decays slowly: a real, checkable derivative
    assert value == pytest.approx((plus - minus) / (2 * step), rel=1e-6)


def _same(a, b):
    return np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype


@pytest.mark.parametrize("shape", [(7,), (3, 4), ()])
def test_elementwise_in_place_flavour_is_bitwise_the_plain_one(shape):
    """Float64 arrays of one shape run the flavour that writes into dying temporaries: the
    same bits as the plain NumPy program, the caller's arrays untouched, fresh results; 0-d
    arrays (NumPy scalars come out) run the plain program."""
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=shape), rng.normal(size=shape)
    vg = value_and_grad(cases.smooth_two, wrt=("x", "y"))
    kernel = vg.variant().kernel
    assert kernel.inplace_source is not None and "out=" in kernel.inplace_source
    copies = (x.copy(), y.copy())
    value, (gx, gy) = vg(x, y)
    assert np.array_equal(x, copies[0]) and np.array_equal(y, copies[1])
    plain = kernel.array_fn(*copies)
    for got, want in zip((value, gx, gy), plain):
        assert _same(got, want)
    for got in (gx, gy):
        assert not np.shares_memory(got, x) and not np.shares_memory(got, y)
    assert not np.shares_memory(gx, gy)
    if shape:
        raw = kernel.inplace_fn(x, y)
        assert all(_same(r, w) for r, w in zip(raw, plain))
    for i, got in enumerate((gx, gy)):
        np.testing.assert_allclose(got, central_diff(cases.smooth_two, [x, y], i), rtol=1e-6, atol=1e-8)
