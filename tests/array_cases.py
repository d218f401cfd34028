"""Array programs for tests/test_arrays.py: models that reduce over data, and each array op."""

import numpy as np

from symgrad import logsumexp


def gaussian_loglik(mu, log_sigma, x):
    sigma = np.exp(log_sigma)
    z = (x - mu) / sigma
    return np.sum(-0.5 * z**2 - log_sigma - 0.5 * np.log(2 * np.pi))


def logistic_nll(w, X, y):
    z = X @ w
    return np.sum(np.logaddexp(0.0, z) - y * z)


def least_squares(w, X, y):
    r = X @ w - y
    return np.sum(r**2)


def softmax_cross_entropy(W, X, Y):
    Z = X @ W
    return np.sum(logsumexp(Z, axis=1) - np.sum(Y * Z, axis=1))


def mlp(W1, b1, W2, b2, X, y):
    h = np.tanh(X @ W1 + b1)
    out = h @ W2 + b2
    return np.mean((out - y) ** 2)


def w5_vectorised(x):
    return np.sum(np.exp(x[:-1]) * (x[:-1] - x[1:]) ** 2)


# --- one function per array operation (x: (4, 3) matrix, v: vector of 3, u: vector of 4) --------


def op_sum_axis(x):
    return np.sum(np.sin(x), axis=0) * np.arange(1.0, 4.0)


def op_sum_keepdims(x):
    return np.sum(x * x, axis=1, keepdims=True) * x


def op_mean(x):
    return np.mean(x**3) + np.mean(x, axis=1)


def op_prod(x):
    return np.prod(x, axis=0)


def op_max(x):
    return np.max(x, axis=1) + np.min(x)


def op_logsumexp(x):
    return logsumexp(x, axis=0)


def op_matvec(x, v):
    return np.tanh(x @ v)


def op_vecmat(u, x):
    return np.dot(u, x) ** 2


def op_matmat(x):
    return x.T @ x


def op_dot(u, w):
    return np.dot(u, w) * u


def op_outer_trace(u, w):
    m = np.outer(u, w)
    return np.trace(m @ m.T) + np.sum(m)


def op_transpose(x):
    return np.transpose(x) * np.arange(4.0)


def op_index(x):
    return x[0, 1] * x[-1] + x[1:3, 0].sum() + x[2]


def op_len_loop(u):
    total = 0.0
    for i in range(len(u)):
        total = total + u[i] * (i + 1.0)
    return total * u.shape[0]


def op_like(u):
    return np.sum(np.ones_like(u) * u + np.zeros_like(u))


def op_stack(u, w):
    return np.stack([u * w, u + w, np.sin(u)], axis=1)


def op_concatenate(u, w):
    return np.concatenate([u, w * w, np.exp(u[:2])])


def op_methods(x):
    return x.sum(axis=0) * x.max() + x.T.mean(axis=0).dot(x)


# --- refused array code ----------------------------------------------------------------------------


def bad_fancy_index(x, i):
    return x[i]  # BAD: fancy


def bad_mask(x):
    return np.sum(x[x > 0])  # BAD: mask


def bad_inplace(x):
    t = x[0:2]  # a view of x: writing into it changes x in NumPy
    t[0] = 1.0  # BAD: inplace
    return np.sum(x)


def bad_traced_axis(x, a):
    return np.sum(x, axis=a)  # BAD: axis


# --- temporaries that in-place code must not overwrite while they are still read --------------


def reused_twice(w, X, y):
    h = np.tanh(X @ w)  # read by three statements, the last of which may reuse it
    return np.sum(h * y) + np.sum(h**2) + np.sum(np.exp(h) - h)


def viewed(x, y):
    e = np.exp(x)
    t = e.T  # a view of e: writing into e would change t
    return np.sum(t @ y) + np.sum(e * e)


def with_int_data(w, X, k):
    return np.sum(np.tanh(X @ w) * k + (X @ w) ** 2)


def arithmetic_mix(x, y):
    """Sums of three terms, differences, quotients, squares and functions of functions: the
    in-place flavour writes each as ufunc calls, in the order the plain program computes them."""
    a = np.exp(x) - y**2
    b = np.tanh(a / (1.0 + y * y)) - 3.0 * x * y
    return np.log1p(b * b) / (2.0 - np.sin(a)) - x / (y * a + 4.0) + np.sqrt(x * y) * b * np.cos(a)


def arithmetic_mix_total(x, y):
    a = np.exp(x) - y**2
    b = np.tanh(a / (1.0 + y * y)) - 3.0 * x * y
    return np.sum(np.log1p(b * b) / (2.0 - np.sin(a)) - x / (y * a + 4.0) + np.sqrt(x * y) * b * np.cos(a))
