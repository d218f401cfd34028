"""Small NumPy helpers that generated array code calls as `sg.<name>`."""

from __future__ import annotations

from typing import Any

import numpy as np


def sum_to(x: Any, shape: tuple[int, ...]) -> Any:
    """Sum `x` over the axes along which a value of `shape` was broadcast to `x.shape`.

    >>> sum_to(np.ones((2, 3)), (3,))
    array([2., 2., 2.])
    """
    x = np.asarray(x)
    axes = broadcast_axes(shape, x.shape)
    return np.sum(x, axis=axes, keepdims=True).reshape(shape) if axes else x.reshape(shape)


def broadcast_axes(shape: tuple[int, ...], target: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of `target` along which a value of `shape` is broadcast to it.

    >>> broadcast_axes((3,), (2, 3)), broadcast_axes((2, 1), (2, 3))
    ((0,), (1,))
    """
    lead = len(target) - len(shape)
    return tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and target[lead + i] != 1
    )


def scatter(value: Any, index: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of `shape` with `value` at `index`: the adjoint of `x[index]`.

    >>> scatter(5.0, np.s_[1], (3,))
    array([0., 5., 0.])
    """
    out = np.zeros(shape, dtype=np.result_type(value, np.float64))
    items = index if isinstance(index, tuple) else (index,)
    if any(isinstance(item, (list, np.ndarray)) for item in items):
        np.add.at(out, index, value)  # repeated entries of a fancy index accumulate
    else:
        out[index] = value
    return out


def setitem(x: Any, index: Any, value: Any) -> Any:
    """A copy of `x` with `value` at `index`: `x[index] = value` without writing `x`.

    >>> setitem(np.zeros(3), np.s_[1:], 2.0)
    array([0., 2., 2.])
    """
    out = np.array(x, dtype=np.result_type(x, value, np.float64))  # the caller's array stays as it was
    out[index] = value
    return out


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """log(sum(exp(x))) over `axis`, shifted by the maximum so it never overflows.

    >>> import numpy as np
    >>> from symgrad import logsumexp
    >>> float(logsumexp(np.array([1000.0, 1000.0])))  # 1000 + log(2); np.exp(1000.0) overflows
    1000.6931471805599
    """
    x = np.asarray(x, dtype=np.float64)
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return out if keepdims else np.squeeze(out, axis=axis) if axis is not None else out.reshape(())[()]


def broadcast_all(*parts: Any) -> list[Any]:
    """The parts broadcast to one shape, for `numpy.stack`."""
    return list(np.broadcast_arrays(*parts))


def sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)). Where exp(-x) overflows (x < -709) it is inf and the result is
    exactly 0, which is right: never inf/inf, and full relative accuracy elsewhere.

    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    with np.errstate(over="ignore"):
        if not (isinstance(x, np.ndarray) and x.ndim and x.dtype == np.float64):
            return 1.0 / (1.0 + np.exp(-x))
        # one array, written in place: four fresh temporaries of a large array cost more
        # than the arithmetic (the C library fetches each from the system and zeroes it)
        s = np.negative(x)
        np.exp(s, out=s)
        s += 1.0
        return np.reciprocal(s, out=s)


def stack_rows(rows: list[Any], shape: tuple[int, ...]) -> Any:
    """The rows a loop wrote, as an array of `shape` whose rows past them (a loop that
    stopped early) are zeros.

    >>> stack_rows([np.ones(2)], (3, 2)).tolist()
    [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    """
    out = np.zeros(shape)
    if rows:
        out[: len(rows)] = rows
    return out


def while_condition(value: Any, filename: str, line: int, col: int) -> bool:
    """The condition of a kept `while` loop, which must be one truth value for the whole
    call: on arrays, NumPy cannot say whether to go on (elements disagree).

    >>> while_condition(np.float64(1.0) > 0, "f.py", 3, 5)
    True
    """
    if np.ndim(value) == 0:
        return bool(value)
    import linecache

    from .errors import ShapeError

    text = linecache.getline(filename, line)
    what = "`break` condition" if text.lstrip().startswith("for ") else "condition"
    kind = "loop with `break`" if what != "condition" else "`while` loop"
    raise ShapeError(
        f"this {kind}'s {what} is an array of shape {np.shape(value)} here: the loop runs as long "
        "as one condition holds, and the elements of an array may disagree",
        filename=filename,
        lineno=line,
        col=col,
        source_line=text or None,
        hint="differentiate one number at a time: np.vectorize(grad(f))(x)",
    )


def solve_triangular(a: Any, b: Any, lower: bool) -> Any:
    """x with `a x = b` for a triangular `a`: SciPy's triangular solve where SciPy is
    installed (no factorisation), else `numpy.linalg.solve` (the same x up to rounding).

    >>> import numpy as np
    >>> solve_triangular(np.array([[2.0, 0.0], [1.0, 1.0]]), np.array([2.0, 3.0]), lower=True)
    array([1., 2.])
    """
    try:
        from scipy.linalg import solve_triangular as scipy_solve
    except ImportError:  # SciPy is optional
        return np.linalg.solve(a, b)
    if a.ndim == 2:
        return scipy_solve(a, b, lower=lower, check_finite=False)
    # a stack: one solve per matrix (SciPy before 1.16, the last for Python 3.10, takes
    # no stacks; looping everywhere gives the same bits on every SciPy)
    batch = a.shape[:-2]
    core = b.shape[-2:] if b.ndim == a.ndim else b.shape[-1:]  # matrices, or vectors
    b = np.broadcast_to(b, batch + core)
    x = np.empty(b.shape, dtype=np.result_type(a, b, np.float64))
    for k in np.ndindex(*batch):
        x[k] = scipy_solve(a[k], b[k], lower=lower, check_finite=False)
    return x


def _order(key: Any, axis: int, kth: Any) -> Any:
    """The permutation NumPy's sort (stable) or, given `kth`, its partition applies along `axis`."""
    if kth is None:
        return np.argsort(key, axis=axis, kind="stable")
    return np.argpartition(key, kth, axis=axis)  # the order numpy.partition puts the values in


def sorted_take(v: Any, key: Any, axis: int, kth: Any = None) -> Any:
    """`v` in the order that sorts `key` along `axis` (a stable sort): the tangent of
    `numpy.sort(key)` when `v` is the tangent of `key`.

    >>> sorted_take(np.array([10.0, 20.0, 30.0]), np.array([3.0, 1.0, 2.0]), 0)
    array([20., 30., 10.])
    """
    v, key = np.broadcast_arrays(np.asarray(v, dtype=np.float64), key)
    return np.take_along_axis(v, _order(key, axis, kth), axis=axis)


def sorted_put(v: Any, key: Any, axis: int, kth: Any = None) -> Any:
    """The inverse of `sorted_take`: `v`'s elements put back where the sort of `key` took
    them from (the adjoint of `numpy.sort`).

    >>> sorted_put(np.array([20.0, 30.0, 10.0]), np.array([3.0, 1.0, 2.0]), 0)
    array([10., 20., 30.])
    """
    v, key = np.broadcast_arrays(np.asarray(v, dtype=np.float64), key)
    out = np.zeros(v.shape)
    np.put_along_axis(out, _order(key, axis, kth), v, axis=axis)
    return out
