"""Programs with loops over arrays that symgrad keeps as loops (and one it unrolls, saying why).

Plain Python and NumPy: the tests run them as they are (values, finite differences) and under
torch (tests/torch_oracle.py) for independent derivatives.
"""

import numpy as np


def rnn_cell(W, U, b, xs, h0):
    h = h0
    for t in range(100):
        h = np.tanh(W @ h + U @ xs[t] + b)
    return np.sum(h * h)


def euler_sum(x, r):
    for _k in range(100):
        x = x + 0.01 * r * x * (1 - np.sum(x))
    return np.sum(x * x)


def shifted_rows(w, xs):
    h = w * 0.5
    for t in range(80):
        h = 0.9 * h * np.cos(w) + xs[79 - t] * xs[t + 1]
    return np.sum(h)


def peel_sum(x):
    s = 0.0
    for k in range(100):
        s = s + np.sin(x * (0.01 * k))
    return np.sum(s * x)


def copied_carry(x, w):
    h = x.copy()
    for _k in range(100):
        h += 0.01 * w * np.sin(h)
    return np.sum(h) + np.sum(x * x)


def aliased_carry(x, w):
    h = x
    for _k in range(100):
        h += 0.01 * w * np.sin(h)
    return np.sum(h) + np.sum(x * x)


def matrix_power_sum(A, x):
    M = np.eye(3)
    for _k in range(70):
        M = 0.5 * M @ A + np.eye(3)
    return np.sum(M @ x)


def grow_until(h, w):
    while np.sum(h * h) < 10.0:
        h = 1.1 * h + w * w
    return np.sum(h)


def over_rows(w, X):
    h = np.zeros(3)
    for row in X:
        h = np.tanh(h * w + row)
    return np.sum(h) + np.sum(row)


def rows_of_product(W, X):
    acc = 0.0
    for row in X @ W:
        acc = acc + np.sum(np.sin(row)) * 0.1
    return acc


def branch_in_rows(w, xs):
    h = w
    for t in range(70):
        if np.sum(xs[t]) > 0:
            h = h + 0.05 * np.sin(h * xs[t])
        else:
            h = h * 0.99
    return np.sum(h * w)


def rows_break(w, X):
    h = np.zeros(3)
    for row in X:
        h = np.tanh(h * w + row)
        if np.sum(h) > 1.5:
            break
    return np.sum(h)


def zipped_rows(w, X, Y):
    acc = 0.0
    for x, y in zip(X, Y):
        acc = acc + np.sum(np.sin(w * x) * y)
    return acc


def enumerated_rows(w, X):
    h = w
    for i, row in enumerate(X):
        h = np.tanh(h + 0.01 * i * row)
    return np.sum(h) + i


def row_parts(w, xs):
    h = w
    for t in range(70):
        h = np.tanh(h * xs[t, 0] + xs[t, 1:] * 0.5)
    return np.sum(h)


def trajectory(W, h):
    hs = np.zeros((80, 3))
    for t in range(80):
        h = np.tanh(W @ h + 0.1)
        hs[t] = h
    return np.sum(hs * hs) + np.sum(h)


def every_other_row(w, X):
    out = np.ones((160, 3))
    h = w
    for t in range(80):
        h = np.sin(h + X[t])
        out[2 * t + 1] = h * w
    return np.sum(out * np.cos(out))


def over_columns(x, X):
    h = x
    for t in range(70):
        h = np.sin(h * X[:, t]) + X[0, t]
    return np.sum(h)


def invariant_carry(w, X):
    for _i in range(70):
        t1 = X @ w  # the same in every iteration: computed once before the loop
    return np.sum(t1) + np.tanh(t1 @ t1)
