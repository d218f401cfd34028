"""Third derivatives: `derivative(f, wrt=..., order=3)` and `grad(grad(grad(f)))` against
`sympy.diff` of the same function written by hand, evaluated at 40 digits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

import symgrad
from symgrad import derivative, grad

X, Y = sympy.symbols("x y", real=True)
PRECISION = 40
RTOL = 1e-13
ATOL = 1e-13


def quartic_sin(x):
    return x**4 * np.sin(x)


def exp_cos(x):
    return np.exp(x) * np.cos(2.0 * x)


def log_one_plus_square(x):
    return np.log(1.0 + x * x)


def tanh_only(x):
    return np.tanh(x)


def atan_times(x):
    return x * np.arctan(x) + np.sqrt(1.0 + x * x)


def rational(x):
    return x / (1.0 + x * x) + 1.0 / (2.0 + x)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def two_args(x, y):
    return np.sin(x * y) + x**3 * y**2 + np.exp(x - y)


CASES = [
    (quartic_sin, X**4 * sympy.sin(X)),
    (exp_cos, sympy.exp(X) * sympy.cos(2 * X)),
    (log_one_plus_square, sympy.log(1 + X**2)),
    (tanh_only, sympy.tanh(X)),
    (atan_times, X * sympy.atan(X) + sympy.sqrt(1 + X**2)),
    (rational, X / (1 + X**2) + 1 / (2 + X)),
    (sigmoid, 1 / (1 + sympy.exp(-X))),
]
POINTS = [-1.7, -0.6, 0.3, 0.9, 1.45]


def sympy_at(expr, values):
    subs = {s: sympy.Float(v, PRECISION) for s, v in values.items()}
    return float(sympy.N(expr.xreplace(subs), PRECISION))


def assert_close(got, want):
    assert math.isclose(got, want, rel_tol=RTOL, abs_tol=ATOL), (got, want)


@pytest.mark.parametrize(("fn", "expr"), CASES, ids=[fn.__name__ for fn, _ in CASES])
def test_third_derivative_matches_sympy(fn, expr):
    third = sympy.diff(expr, X, 3)
    by_order = derivative(fn, wrt="x", order=3)
    nested = grad(grad(grad(fn, wrt="x"), wrt="x"), wrt="x")
    for x in POINTS:
        want = sympy_at(third, {X: x})
        got = by_order(x)
        assert isinstance(got, float)
        assert_close(got, want)
        assert_close(nested(x), want)


@pytest.mark.parametrize(("fn", "expr"), CASES, ids=[fn.__name__ for fn, _ in CASES])
def test_first_and_second_derivatives_match_sympy(fn, expr):
    for order in (1, 2):
        d = derivative(fn, wrt="x", order=order)
        want_expr = sympy.diff(expr, X, order)
        for x in POINTS:
            assert_close(d(x), sympy_at(want_expr, {X: x}))


@pytest.mark.parametrize(("fn", "expr"), CASES, ids=[fn.__name__ for fn, _ in CASES])
def test_third_derivative_elementwise_on_arrays(fn, expr):
    third = sympy.diff(expr, X, 3)
    xs = np.array(POINTS)
    got = derivative(fn, wrt="x", order=3)(xs)
    assert isinstance(got, np.ndarray) and got.shape == xs.shape
    want = np.array([sympy_at(third, {X: x}) for x in POINTS])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


TWO_ARG = sympy.sin(X * Y) + X**3 * Y**2 + sympy.exp(X - Y)
TWO_ARG_POINTS = [(0.4, -1.1), (1.3, 0.7), (-0.8, 1.6)]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (("x", "x", "x"), sympy.diff(TWO_ARG, X, 3)),
        (("y", "y", "y"), sympy.diff(TWO_ARG, Y, 3)),
        (("x", "y", "x"), sympy.diff(TWO_ARG, X, Y, X)),
        (("y", "x", "x"), sympy.diff(TWO_ARG, Y, X, X)),
        (("x", "y", "y"), sympy.diff(TWO_ARG, X, Y, Y)),
    ],
    ids=lambda v: "".join(v) if isinstance(v, tuple) else None,
)
def test_mixed_third_partials_of_two_argument_function(order, expected):
    d = two_args
    for name in order:
        d = grad(d, wrt=name)
    for x, y in TWO_ARG_POINTS:
        assert_close(d(x, y), sympy_at(expected, {X: x, Y: y}))


def test_third_derivative_with_other_argument_constant():
    d3 = derivative(two_args, wrt="x", order=3)
    want = sympy.diff(TWO_ARG, X, 3)
    for x, y in TWO_ARG_POINTS:
        assert_close(d3(x, y), sympy_at(want, {X: x, Y: y}))
    # y as an array, x a float broadcast against it: the summed third derivative in x
    ys = np.array([y for _, y in TWO_ARG_POINTS])
    got = d3(0.5, ys)
    assert isinstance(got, float)
    assert_close(got, sum(sympy_at(want, {X: 0.5, Y: y}) for y in ys))


# --- transforms of a gradient under broadcasting (found by autograd's own tests) -----------------


def _broadcast_product(x, y):
    return x * y * y + np.sin(x * y)


def _directional(fn, args, tangents, h=1e-6):
    plus = fn(*[a + h * t for a, t in zip(args, tangents)])
    minus = fn(*[a - h * t for a, t in zip(args, tangents)])
    return (np.asarray(plus) - np.asarray(minus)) / (2 * h)


@pytest.mark.parametrize("wrt", [0, 1])
def test_jvp_vjp_and_jacobian_of_a_gradient_sum_it_over_the_broadcast(wrt):
    """grad(f) of a float `x` broadcast against an array `y` is summed to a float; jvp, vjp and
    jacobian of that gradient program must give (and differentiate) the summed gradient."""
    x, y = 0.5, np.array([1.0, 2.0, 3.0, 4.0])
    g = symgrad.grad(_broadcast_product, wrt=wrt)
    first = g(x, y)
    tangents = (0.7, np.array([0.1, -0.2, 0.3, 0.4]))
    value, tangent = symgrad.jvp(g, wrt=(0, 1))((x, y), tangents)
    assert np.shape(value) == np.shape(first) and np.allclose(value, first)
    np.testing.assert_allclose(tangent, _directional(g, (x, y), tangents), rtol=1e-6)
    value, pullback = symgrad.vjp(g, wrt=(0, 1))(x, y)
    cotangent = 0.5 * np.ones_like(np.asarray(first))
    dx, dy = pullback(cotangent)
    weighted = lambda a, b: np.sum(cotangent * g(a, b))  # noqa: E731
    assert dx == pytest.approx(float(_directional(weighted, (x, y), (1.0, np.zeros(4)))), rel=1e-6)
    expected_dy = [_directional(weighted, (x, y), (0.0, np.eye(4)[k])) for k in range(4)]
    np.testing.assert_allclose(dy, expected_dy, rtol=1e-6)
    jx, jy = symgrad.jacobian(g, wrt=(0, 1))(x, y)
    np.testing.assert_allclose(jx, _directional(g, (x, y), (1.0, np.zeros(4))), rtol=1e-6)
    columns = [_directional(g, (x, y), (0.0, np.eye(4)[k])) for k in range(4)]
    np.testing.assert_allclose(jy, np.stack(columns, axis=-1), rtol=1e-6)


def _one_tuple(x):
    return (x * np.sin(x),)


def test_jvp_and_vjp_of_a_one_tuple_output_keep_its_structure():
    """As in JAX: a function returning `(y,)` (or `grad(f, wrt=(0,))`) has a 1-tuple value,
    tangent and cotangent."""
    x = np.array([0.3, -1.1])
    expected = _one_tuple(x)
    value, tangent = symgrad.jvp(_one_tuple)((x,), (np.ones(2),))
    assert isinstance(value, tuple) and len(value) == 1 and isinstance(tangent, tuple)
    np.testing.assert_allclose(value[0], expected[0])
    np.testing.assert_allclose(
        tangent[0], _directional(lambda v: _one_tuple(v)[0], (x,), (np.ones(2),)), rtol=1e-7
    )
    value, pullback = symgrad.vjp(_one_tuple)(x)
    assert isinstance(value, tuple) and len(value) == 1
    got = pullback((np.array([2.0, 3.0]),))
    weighted = lambda v: np.sum(np.array([2.0, 3.0]) * _one_tuple(v)[0])  # noqa: E731
    expected_grad = [_directional(weighted, (x,), (np.eye(2)[k],)) for k in range(2)]
    np.testing.assert_allclose(got, expected_grad, rtol=1e-7)
    gradient = symgrad.grad(np.sin, wrt=(0,))
    value, tangent = symgrad.jvp(gradient, wrt=(0,))((x,), (np.ones(2),))
    assert (
        isinstance(value, tuple) and np.allclose(value[0], np.cos(x)) and np.allclose(tangent[0], -np.sin(x))
    )


def _stacked(x):
    return np.array([x, x * 2.0, x + 2.5])


def test_transforms_of_a_float_function_that_builds_an_array():
    """Numbers in, an array out (`np.array([x, ...])`): jvp crashed converting it to a float."""
    value, tangent = symgrad.jvp(_stacked)((1.3,), (1.0,))
    np.testing.assert_allclose(value, _stacked(1.3))
    np.testing.assert_allclose(tangent, _directional(_stacked, (1.3,), (1.0,)), rtol=1e-7)
    value, pullback = symgrad.vjp(_stacked)(1.3)
    np.testing.assert_allclose(value, _stacked(1.3))
    assert pullback(np.array([1.0, -1.0, 0.5])) == pytest.approx(1.0 - 2.0 + 0.5)


def _array_program(x, w):
    return np.sum(np.sin(x) * x[0]) + w * np.dot(x, x) ** 2


@pytest.mark.parametrize("wrt", ["x", ("x", "w")])
def test_jacobian_of_a_gradient_of_an_array_program_differentiates_the_gradient(wrt):
    """jacobian(grad(f)) of an array program (a reduction, an index) returned the gradient of
    f itself, of shape (3,), where the (3, 3) Hessian was due: the jacobian of an array
    program runs pullbacks, and they were built on f instead of on grad(f). Against finite
    differences of the gradient and torch's Hessian."""
    torch = pytest.importorskip("torch")
    x, w = np.array([0.3, 0.5, 0.9]), 0.7
    gradient = symgrad.grad(_array_program, wrt=wrt)
    blocks = symgrad.jacobian(gradient, wrt="x")(x, w)
    rows = blocks if isinstance(blocks, tuple) else (blocks,)
    firsts = gradient(x, w) if isinstance(wrt, tuple) else (gradient(x, w),)
    for k, block in enumerate(rows):
        assert block.shape == np.shape(firsts[k]) + (3,)
        part = lambda v, k=k: (gradient(v, w) if isinstance(wrt, tuple) else (gradient(v, w),))[k]  # noqa: E731
        columns = [_directional(part, (x,), (np.eye(3)[c],)) for c in range(3)]
        np.testing.assert_allclose(block, np.stack(columns, axis=-1), rtol=1e-6, atol=1e-9)
    full = torch.autograd.functional.hessian(
        lambda t: torch.sum(torch.sin(t) * t[0]) + w * torch.dot(t, t) ** 2, torch.tensor(x)
    ).numpy()
    np.testing.assert_allclose(rows[0], full, rtol=1e-12)
    np.testing.assert_allclose(rows[0], symgrad.hessian(_array_program)(x, w), rtol=1e-12)
