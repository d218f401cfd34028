"""User-style functions from the outside checks of the correctness issue (#12), one per item."""

import math

import numpy as np

import symgrad


# S1: a scalar broadcast through a piecewise function of itself only
def relu_of_scalar_plus(x, b):
    return np.maximum(b, 0.0) + x


def conditional_scalar(x, b):
    return (b if b > 0 else 0.0) + x


def clipped_scalar(x, b):
    return np.clip(b, -1.0, 1.0) * x


def branch_on_scalar(x, b):
    if b > 0.25:
        return np.arcsinh(b) + x
    return b * b + x


def clipped_minus_array(x, y):
    return np.clip(x, -2.0, 2.0) - y


# S3: an argument that never reaches the output
def ignores_z(x, z):
    return np.sin(x)


def maximum_ignoring_z(x, y, z):
    return np.maximum(y, x)


def constant_output(x):
    return 1.5


# S7: forward mode through untaken branches
def sqrt_where(x):
    return np.where(x > 0, np.sqrt(x), 0.0)


def sqrt_if(x):
    if x > 0:
        return np.sqrt(x)
    return 0.0


def log_where(x):
    return np.where(x > 1.0, np.log(x - 1.0), x)


# S8: second order under broadcasting
def divide(x, y):
    return np.divide(x, y)


def times_y_squared(x, y):
    return x * y * y


# S9 / E1: in-place updates through aliases and views
def alias_add(x, w):
    out = x
    out += w * x
    return np.sum(out * x)


def alias_mul(d):
    t = d
    t *= 2.0
    return np.sum(d * t)


def view_add(w):
    t = w[0:2]
    t += 1.0
    return np.sum(w * w)


def scalar_accumulator(x, y):
    s = x
    s += y * y
    return s * x


def _bump(a):
    a += 1.0
    return a


def helper_mutates_argument(x):
    y = _bump(x)
    return np.sum(x * y)


def _accumulate(a, v):
    a += v
    return 0.0


def helper_updates_callers_array(x, w):
    _accumulate(x, w * x)
    return np.sum(x * x)


def _scale_then_accumulate(a, w):
    a *= w
    return _accumulate(a, 1.0)


def nested_helpers_update_callers_array(x, w):
    t = x
    _scale_then_accumulate(t, w)
    return np.sum(x * w) + np.sum(t)


def helper_updates_array_a_view_reads(x):
    head = x[0:2]
    _accumulate(x, 1.0)
    return np.sum(head * x[1:3])


def helper_updates_a_view(x):
    head = x[0:2]
    _accumulate(head, 1.0)
    return np.sum(head * x[1:3])


# S10: module and closure constants
SCALE = 2.0
PAIR = (1.0, 2.0)


def uses_module_constants(x):
    return SCALE * x * x + PAIR[1] * x


def make_closure(k):
    def scaled_sin(x):
        return k * np.sin(x)

    def set_k(value):
        nonlocal k
        k = value

    return scaled_sin, set_k


# S11: an array function written with supported operations, as the new hint says
def distance(p, q):
    return np.sqrt(np.sum((p - q) * (p - q)))


# E1
def cancelled_index(a):
    return (a - a)[0] + a[1]


def cancelled_transpose(a):
    return np.sum((a - a).T * a) + a[0, 1]


def stack_with_constant(x):
    return np.sum(np.stack([np.array([1.0, 2.0]), x]) * x)


def array_of_traced(x, y):
    m = np.array([x, y * y, 1.0])
    return np.sum(m * m)


def unused_other_shape(d, w):
    return np.sin(d)


def zero_derivative_array(x, y):
    return np.sum(y) + 0.0 * x


def stopped(x):
    return symgrad.stop_gradient(x) * 2.0 + 0.0 * np.sum(x)


def square(x):
    return x * x


# E2
def long_loop(x):
    for _ in range(1_000_000):
        x = x * 0.999
    return x


def _h0(x):
    return x * 1.01


def _h1(x):
    return _h0(x) + 0.0


# E4
def sum_times_static(x, n):
    return np.sum(x**2) * n


# E5
def concatenate_tuple(a):
    return np.sum(np.concatenate(a))


def concatenate_two(a0, a1):
    return np.sum(np.concatenate((a0, a1)) ** 2)


# E8
def elementwise_sin(x):
    return np.sin(x) * 2.0


def elementwise_sin_with_reduction(x):
    return np.sin(x) * 2.0 + 0.0 * np.sum(x)


def scaled_by_b(x, b):
    return x * b * b


# S9 (fuzzer): a float-only function applied to arrays runs per element, so `+=` rebinds there
def math_then_alias(x):
    c1 = np.log2(1.1 + 0.81 * np.sin(math.tanh(1.8 * np.sin(x))))
    c2 = c1
    c1 += x
    return np.arccos(0.5 * np.sin(c2)) + c1


# S9 (fuzzer): an alias made by tuple unpacking writes through on an array
def unpacked_alias(x):
    t1, t2 = -0.5, x
    t2 += np.sin(1.8 * np.tanh(-0.5))
    return x * t1


# S3 (fuzzer): a number's condition picks a branch of another shape
def branch_shape_by_number(y, z, b):
    t = b * y
    if b > 5.0:
        t = t + z
    return t


# S9 through a loop variable (found by the fuzzer's loops family)
def loop_over_names_updates_in_place(y):
    for j in (y, 2 * y):
        t = j
        t -= np.sin(-t)
    return np.tanh(y)


def loop_over_a_list_updates_in_place(y):
    items = [y, 2 * y]
    for j in items:
        t = j
        t -= np.sin(-t)
    return np.tanh(y)


def _put_first(a, v):
    a[0] = v


def helper_without_return_updates_its_argument(x, w):
    _put_first(x, w * 2.0)
    return np.sum(x * x)


# S9 (fuzzer, branching family): `_bump` returns the caller's array itself; a second call
# changes it again, and with it the first result (NumPy: y and z are both x, bumped twice)
def bumped_twice_by_name(x):
    y = _bump(x)
    z = _bump(x)
    return np.sum(y * z)


def result_changed_later(x):
    y = _bump(x)
    x += 1.0
    return np.sum(y * x)


def bumped_twice_in_one_expression(x):
    return np.sum(_bump(x) * _bump(x))
