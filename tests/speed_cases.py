"""User functions for tests/test_speed_paths.py (symgrad reads source from files)."""

import numpy as np


def many_params(
    x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x18, x19, x20
):
    return (
        x0 * x20
        + x1 * x19
        + np.sin(x10) * x2
        + x3
        + x4
        + x5
        + x6
        + x7
        + x8
        + x9
        + x11
        + x12
        + x13
        + x14
        + x15
        + x16
        + x17
        + x18
    )


def recurrence(h, w, b, n):
    for _ in range(n):
        h = np.tanh(w * h + b)
    return h


def with_default(x, scale=2.0, n=2):
    for _ in range(n):
        x = scale * np.sin(x)
    return x


def product(x, y):
    return x * y


def shared_weight(x, w):
    total = 0.0
    for i in range(12):
        total = total + np.sin(w * x + i) * w
    return total


def smooth_two(x, y):
    t = np.sin(x) * np.exp(-(x**2) / 2) / (1 + x**2)
    return t * y + np.log(1 + np.exp(y)) * t
