"""Array updates and indexing written as users write them (tests/test_indexing.py).

Each function is run three ways: by NumPy itself (on copies: some write into their arguments),
by symgrad, and by PyTorch float64 on this module's source (tests/torch_oracle.py).
"""

import numpy as np

IDX = np.array([3, 0, 3])  # a module-level index array, with a repeat
MASK = np.array([True, False, True, True])
PAIRS = np.array([[0, 1], [2, 2]])


# --- indexing ------------------------------------------------------------------------------------


def fancy_list(x):
    return np.sum(x[[0, 2, 2]] ** 2)


def fancy_module(x):
    return np.sum(np.sin(x[IDX]) * x[:3])


def fancy_rows(A, w):
    return A[[1, 0]] @ w


def fancy_pairs(A):
    return A[[0, 1], [2, 0]] * A[PAIRS[0], PAIRS[1]]


def masked(x):
    return np.sum(x[MASK] ** 3)


def local_index(x):
    idx = np.arange(3)
    return np.sum(x[idx] * x[1:])


def outer_by_newaxis(x):
    return np.sum(x[:, None] * x[None, :] ** 2)


def newaxis_spelled(x):
    return np.sum(np.tanh(x[np.newaxis, :] - x[:, np.newaxis]))


def ellipsis(A):
    return np.sum(A[..., 0] * A[..., -1])


def reversed_steps(x):
    return np.sum(x[::-1] * np.arange(4.0) * x)


def every_other(x):
    return x[1::2] ** 2 + x[::2]


def column_and_row(A):
    return A[:, 1] * A[0, :2]


def unpack_pair(p):
    a, b = p
    return a**2 * b + np.sin(a)


def unpack_rows(P):
    u, v = P
    return np.dot(u, v) + np.sum(u**2)


def static_index(A, idx):
    return A[idx] ** 2 + A[idx[0], :].sum()


# --- item updates --------------------------------------------------------------------------------


def set_item(x):
    y = x.copy()
    y[0] = 3.0 * x[1]
    return np.sum(y**2)


def set_argument(x):
    x[1] = np.sin(x[0])  # writes into the caller's array in NumPy; symgrad's code never does
    return x * 2.0


def add_to_item(x):
    x[2] += x[0] * x[1]
    return np.sum(x**2)


def set_slices(x):
    y = np.zeros_like(x)
    y[1:3] = x[:2] ** 2
    y[::2] += x[-1]
    return y


def set_column(A, v):
    B = A.copy()
    B[:, 1] = v
    return np.sum(B * A)


def set_row_number(A):
    A[0] = 0.5
    A[1, 2] *= A[0, 0] + A[1, 0]
    return np.sum(A**2)


def set_mask(x):
    y = x * 1.0
    y[MASK] = 0.0
    return np.sum(y * x)


def set_fancy(x):
    y = x + 1.0
    y[[0, 3]] = x[[1, 2]] ** 2
    return y


def through_alias(x):
    t = x
    t[0] = 2.0 * x[1]
    return np.sum(x**2)  # x changed too, as in NumPy


def _put(a, v):
    a[0] = v
    return a


def helper_writes(x):
    _put(x, np.exp(x[1]))
    return np.sum(x * x)


def recurrence(x):
    y = np.zeros_like(x)
    y[0] = x[0]
    for i in range(1, len(x)):
        y[i] = 0.5 * y[i - 1] + np.tanh(x[i])
    return y


# --- methods and functions -----------------------------------------------------------------------


def reshape_tuple(x, w):
    return x.reshape((2, 3)) @ w


def reshape_ints(x):
    return np.sum(x.reshape(3, -1) ** 2, axis=1)


def ravel_flatten(A):
    return A.ravel() * A.flatten() + np.ravel(A)


def squeeze_expand(x):
    return np.squeeze(x[None, :, None]) * np.expand_dims(x, 0).sum(axis=0)


def reshape_function(x):
    return np.reshape(x, (3, 2)).T @ np.ones(3)


def astype_clip_copy(x):
    y = x.astype(float).copy()
    return np.sum(y.clip(-0.5, 0.5) * x)


def transposes(A, v):
    return A.transpose(1, 0) @ v + A.T.sum(axis=1)


def method_reductions(A):
    s = A.sum(axis=0) + A.mean(axis=1, keepdims=True).sum()
    return s * A.max(axis=0) + A.min() * A.prod(axis=1).sum()


def method_dot(x):
    return x.dot(x) + x[:2].dot(x[2:])


def trace_offsets(A):
    return np.trace(A, offset=1) + np.trace(A, offset=-1) * np.trace(A)


def squeeze_method(A):
    return np.sum(A[:, :1].squeeze() * A[:1, :].squeeze(axis=0))


# --- refused, each with the fix its hint suggests ------------------------------------------------


def bad_view_write(x):
    t = x[0:2]
    t[0] = 5.0  # BAD: view
    return np.sum(x[:2] * t)


def fixed_view_write(x):
    t = x[0:2]
    t = t.copy()
    t[0] = 5.0
    return np.sum(x[:2] * t)


def bad_int_cast(x):
    return np.sum(x.astype(int) * x)  # BAD: cast


def fixed_int_cast(x):
    return np.sum(np.floor(x) * x)


def bad_traced_index(x):
    i = x[0] > 0.0
    return x[i]  # BAD: traced index


def fixed_traced_index(x):
    return np.sum(np.where(x[0] > 0.0, x, 0.0))


def bad_repeat_write(x):
    y = x.copy()
    y[[0, 0]] = x[1:3]  # BAD: repeat
    return np.sum(y)


def fixed_repeat_write(x):
    y = x.copy()
    y[[0]] = x[2:3]
    return np.sum(y)


OUTSIDE = np.array([1.0, 2.0, 3.0])


def bad_outside_write(x):
    OUTSIDE[0] = x[0]  # BAD: outside
    return np.sum(OUTSIDE * x[:3])


def fixed_outside_write(x):
    t = OUTSIDE.copy()
    t[0] = x[0]
    return np.sum(t * x[:3])


def bad_list_item(x):
    xs = [x, 2.0 * x]
    xs[0] = np.sin(x)  # BAD: list
    return np.sum(xs[0] * xs[1])


def fixed_list_item(x):
    xs = [x, 2.0 * x]
    xs = xs[:0] + [np.sin(x)] + xs[0 + 1 :]
    return np.sum(xs[0] * xs[1])


def bad_unpack_length(p):
    a, b = p  # BAD: unpack
    return a * b


# np.r_ and np.c_ (HIPS autograd's own tests write them)
R_DATA = np.arange(6.0).reshape(3, 2)


def joined_rows(x):
    return np.sum(np.r_[x, R_DATA, x] ** 2)


def joined_columns(x):
    return np.sum(np.c_[x, R_DATA, x] * np.c_[R_DATA, x, R_DATA])


def joined_with_a_range(v):
    return np.sum(np.r_[v, np.arange(3.0), 1:4] ** 3)
