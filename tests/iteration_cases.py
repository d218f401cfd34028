"""Functions that iterate the way Python people write it: lists, comprehensions, generator sums,
enumerate/zip/reversed, dicts, `for row in X`, and statements with no numeric effect.

Used by tests/test_iteration.py, which checks each against the function run by Python and
NumPy, central finite differences and (for `TORCH` cases) PyTorch float64 running this very
file's source. Keep the torch cases to what tests/torch_oracle.py's shims map.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

COEFFICIENTS = (1.0, -2.0, 0.5, 3.0)

# --- numbers: lists, comprehensions, generator expressions -----------------------------------------


def list_sum_squares(x, y):
    xs = [x, y, x * y]
    return sum(v**2 for v in xs)


def tuple_loop(x, y):
    total = 0.0
    for v in (x, y, x + y):
        total = total + v * v
    return total


def enumerate_weights(x, y):
    total = 0.0
    for i, v in enumerate([x, y, x * y]):
        total = total + (i + 1) * v
    return total


def zip_pairs(x, y):
    return sum(a * b for a, b in zip([x, y], [y, x * x]))


def reversed_horner(x):
    value = 0.0
    for c in reversed(COEFFICIENTS):
        value = value * x + c
    return value


def dict_items(x, y):
    params = {"a": x, "b": y}
    total = 0.0
    for _name, v in params.items():
        total = total + v * v
    return total + params["a"] * len(params)


def dict_comprehension(x, y):
    squares = {k: v**2 for k, v in zip(("a", "b"), (x, y))}
    return squares["a"] * squares["b"] + sum(squares.values())


def nested_comprehension(x, y):
    grid = [[x * i + y * j for j in range(2)] for i in range(3)]
    return sum(sum(row) for row in grid) + grid[-1][1] ** 2


def extremes(x, y):
    return max([x, y, 1.0]) + min(x * x, y, 0.5) + max(v * v for v in (x, y))


def append_loop(x):
    ys = []
    for i in range(4):
        ys.append(math.sin(x * i))
    return sum(ys) + ys[-1] * len(ys) + ys[0]


def list_slices(x, y):
    xs = [x, y, x * y, x + y]
    return sum(xs[1:3]) * xs[-1] + sum(xs[::2])


def fsum_list(x, y):
    return math.fsum([x * x, y, x * y])


def list_concat_repeat(x, y):
    xs = [x] + [y] * 2
    return sum(xs) * len(xs)


def static_filter(x):
    return sum(x**k for k in range(6) if k % 2 == 0)


def _powers(x, n):
    return [x**k for k in range(1, n + 1)]


def list_from_helper(x):
    ps = _powers(x, 3)
    return ps[0] + ps[1] * ps[2]


def relu_sum(x, y):
    return sum(v if v > 0.0 else 0.0 for v in (x, y, x - y))


def unpack_list(x, y):
    a, b, c = [x, y, x * y]
    [d, e] = [a + b, c]
    return d * e


def list_through_branch(x, y):
    pair = [x, y] if x > y else [y, x]
    return pair[0] - 2.0 * pair[1]


# --- statements with no numeric effect ------------------------------------------------------------


def checked_power(x, n):
    """x to the n, for a static positive int n."""
    assert isinstance(n, int), "n must be an int"
    assert n > 0, f"n must be positive, got {n}"
    if n > 10:
        raise ValueError(f"n = {n} is too large")
    print("checked_power: n =", n)
    log.info("x = %s", x)
    logging.debug("computing")
    warnings.warn("checked_power is slow", stacklevel=2)
    result = 1.0
    for _ in range(n):
        pass
        result = result * x
    return result


# --- arrays: the shaped trace ---------------------------------------------------------------------


def weighted_sum(w, x):
    return sum(w[i] * x[i] for i in range(3))


def rows_loop(X, w):
    total = 0.0
    for row in X:
        total = total + np.tanh(row @ w)
    return total


def enumerate_rows(X):
    return sum((i + 1) * np.sum(row**2) for i, row in enumerate(X))


def zip_rows(X, Y):
    return sum(np.sum(a * b) for a, b in zip(X, Y))


def array_of_scalars(x, y):
    v = np.array([x, y, x * y])
    return np.sum(v**2)


def stack_list(x):
    parts = [x, 2.0 * x, x**2]
    return np.sum(np.stack(parts) ** 2)


def sum_of_rows(X):
    column_sums = sum(X)
    return np.sum(column_sums**2)


def mean_of_list(x, y):
    return np.mean([x, y, x * y])


def squares_per_row(X):
    return sum(np.sum(np.exp(-(row**2))) for row in X[1:])


@dataclass(frozen=True)
class Case:
    fn: Any
    args: tuple[Any, ...]
    wrt: tuple[str, ...]
    torch: bool = False  # checked against PyTorch running this file
    static: tuple[str, ...] = ()


RNG = np.random.default_rng(7)
X23 = RNG.normal(size=(2, 3))
Y23 = RNG.normal(size=(2, 3))
W3 = RNG.normal(size=3)

CASES = [
    Case(list_sum_squares, (1.3, -0.7), ("x", "y"), torch=True),
    Case(tuple_loop, (1.3, -0.7), ("x", "y"), torch=True),
    Case(enumerate_weights, (1.3, -0.7), ("x", "y"), torch=True),
    Case(zip_pairs, (1.3, -0.7), ("x", "y"), torch=True),
    Case(reversed_horner, (0.8,), ("x",), torch=True),
    Case(dict_items, (1.3, -0.7), ("x", "y"), torch=True),
    Case(dict_comprehension, (1.3, -0.7), ("x", "y"), torch=True),
    Case(nested_comprehension, (1.3, -0.7), ("x", "y"), torch=True),
    Case(extremes, (1.3, -0.7), ("x", "y")),
    Case(append_loop, (0.9,), ("x",), torch=True),
    Case(list_slices, (1.3, -0.7), ("x", "y"), torch=True),
    Case(fsum_list, (1.3, -0.7), ("x", "y")),
    Case(list_concat_repeat, (1.3, -0.7), ("x", "y"), torch=True),
    Case(static_filter, (0.8,), ("x",), torch=True),
    Case(list_from_helper, (0.8,), ("x",), torch=True),
    Case(relu_sum, (1.3, -0.7), ("x", "y")),
    Case(unpack_list, (1.3, -0.7), ("x", "y"), torch=True),
    Case(list_through_branch, (1.3, -0.7), ("x", "y")),
    Case(weighted_sum, (W3, np.arange(1.0, 4.0)), ("w", "x"), torch=True),
    Case(rows_loop, (X23, W3), ("X", "w"), torch=True),
    Case(enumerate_rows, (X23,), ("X",), torch=True),
    Case(zip_rows, (X23, Y23), ("X", "Y"), torch=True),
    Case(array_of_scalars, (1.3, -0.7), ("x", "y"), torch=True),
    Case(stack_list, (W3,), ("x",), torch=True),
    Case(sum_of_rows, (X23,), ("X",), torch=True),
    Case(mean_of_list, (1.3, -0.7), ("x", "y"), torch=True),
    Case(squares_per_row, (X23,), ("X",), torch=True),
]
