"""The functions that docs/cli.md runs the `symgrad` command on (tests/test_docs.py runs them)."""

import numpy as np


def f(x, y):
    return np.sin(x) * y + x**2


def loss(w, b):
    z = 2.0 * w + b
    return np.log(1 + np.exp(-z))


def poly(x, n):
    s = 0.0
    for i in range(n):
        s = s + x**i
    return s


def norm2(x):
    return np.sum(x * x)


def rollout(x, k):
    """200 explicit Euler steps of dx/dt = -k x + sin(x): C export keeps the loop a loop."""
    for _ in range(200):
        x = x + 0.01 * (-k * x + np.sin(x))
    return x
