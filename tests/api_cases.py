"""Small user functions used by tests/test_api.py (symgrad needs real source files)."""

import math

import numpy as np

from symgrad import no_grad, stop_gradient

SCALE = 3.0


def branchy(x, y):
    if x > y:
        z = np.sin(x) * y
    else:
        z = x**2 + np.exp(y)
    return z / (1 + y * y)


def poly(x, y, c=2.0):
    return c * x**3 + x * y


def unrolled(x, n):
    h = x
    for _ in range(n):
        h = np.tanh(0.5 * h + 1.0)
    return h


def data_loop(x, n):
    h = x
    for _ in range(n):  # n is traced unless static
        h = h * 2
    return h


def two_outputs(x, y):
    return x * y, x + y


def uses_constant(x):
    return SCALE * math.pi * x


def detached(a):
    c = stop_gradient(a * 3)
    return c / (a - 1)


def no_grad_block(a):
    with no_grad():
        c = a * 3
    return c / (a - 1) + a


def sqrt_where(x):
    return np.where(x > 0, np.sqrt(x), 0.0)


def log_branch(x):
    if x > 0:
        return np.log(x)
    return x


def overflow_branch(x):
    if x < 700:
        return np.exp(x)
    return x


# --- SymPy cancels what NumPy keeps: `w - w` is 0 to SymPy, zeros of w's shape to NumPy ----


def cancelled_sum(x, y):
    return np.sum(x * 0 + y)


def cancelled_difference(w):
    return w - w


def cancelled_inside_matmul(w, X):
    return np.sum(X @ np.tanh(w - w)) + np.sum(w * w)


def cancelled_where(x, y):
    return np.where(x > 0, y, y)


def cancelled_elementwise(x, y):
    return x * 0 + y


def horner_from_zero(x):
    acc = 0.0
    for c in (1.0, -2.0, 0.5):
        acc = acc * x + c
    return acc
