"""Third derivatives: `derivative(f, wrt=..., order=3)` and `grad(grad(grad(f)))` against
`sympy.diff` of the same function written by hand, evaluated at 40 digits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

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
