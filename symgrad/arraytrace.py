"""Tracing of array-level code: reductions, linear algebra, indexing and shapes.

A mixin of the Tracer. Every handler needs the shapes of its operands, which exist only when
the graph is traced for one combination of argument shapes; without them it raises
`ShapesNeeded`, and the caller traces again with the shapes of the actual arguments.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import inspect
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import sympy

from . import arrays, cache, complexes, linalg, rules, runtime
from .errors import TracingError, UnsupportedSyntaxError
from .itertrace import ListValue
from .linalgtrace import LINALG_CALLS, TWO_ARRAYS, LinalgTracing


class ShapesNeeded(Exception):  # noqa: N818 - a signal, not an error the user sees
    """The function uses array-level operations: trace it for concrete argument shapes."""


def _scipy_special(name: str) -> Any:
    try:
        import scipy.special
    except ImportError:  # scipy is optional
        return None
    return getattr(scipy.special, name)


# Callables with array-level meaning, and the handler that traces each (method `array_<name>`).
ARRAY_CALLS: dict[Any, str] = {
    np.sum: "sum",
    np.mean: "mean",
    np.prod: "prod",
    np.max: "max",
    np.amax: "max",
    np.min: "min",
    np.amin: "min",
    np.dot: "dot",
    np.matmul: "matmul",
    np.transpose: "transpose",
    np.outer: "outer",
    np.trace: "trace",
    np.reshape: "reshape",
    np.ravel: "ravel",
    np.squeeze: "squeeze",
    np.expand_dims: "expand_dims",
    np.copy: "copy",
    np.zeros_like: "zeros_like",
    np.ones_like: "ones_like",
    np.stack: "stack",
    np.concatenate: "concatenate",
    np.shape: "shape",
    np.size: "size",
    np.ndim: "ndim",
    len: "len",
    runtime.logsumexp: "logsumexp",
    np.linalg.inv: "inv",
    np.linalg.slogdet: "slogdet",
    np.linalg.eigh: "eigh",
    # --- shapes, scans and statistics (issue 15) ---
    np.cumsum: "cumsum",
    np.cumprod: "cumprod",
    np.sort: "sort",
    np.take_along_axis: "take_along_axis",
    np.var: "var",
    np.std: "std",
    np.average: "average",
    np.ptp: "ptp",
    np.nansum: "nansum",
    np.nanmean: "nanmean",
    np.swapaxes: "swapaxes",
    np.moveaxis: "moveaxis",
    np.rollaxis: "rollaxis",
    np.repeat: "repeat",
    np.tile: "tile",
    np.broadcast_to: "broadcast_to",
    np.roll: "roll",
    np.flip: "flip",
    np.fliplr: "fliplr",
    np.flipud: "flipud",
    np.rot90: "rot90",
    np.tril: "tril",
    np.triu: "triu",
    np.diag: "diag",
    np.diagonal: "diagonal",
    np.hstack: "hstack",
    np.vstack: "vstack",
    np.dstack: "dstack",
    np.column_stack: "column_stack",
    np.append: "append",
    np.split: "split",
    np.array_split: "array_split",
    np.hsplit: "hsplit",
    np.vsplit: "vsplit",
    np.dsplit: "dsplit",
    np.atleast_1d: "atleast_1d",
    np.atleast_2d: "atleast_2d",
    np.atleast_3d: "atleast_3d",
    np.pad: "pad",
    np.diff: "diff",
    np.gradient: "gradient",
    np.partition: "partition",
    np.select: "select",
}
for _name in ("logsumexp", "softmax", "log_softmax"):
    if _scipy_special(_name) is not None:
        ARRAY_CALLS[_scipy_special(_name)] = _name
ARRAY_CALLS.update(LINALG_CALLS)  # einsum, norm, solve, ...: traced by linalgtrace
if hasattr(np, "row_stack"):  # deprecated in NumPy 2.0, removed in 2.5
    ARRAY_CALLS[np.row_stack] = "vstack"

# Constant arrays from static arguments: numpy.arange(4.0), numpy.eye(n), ...
CONSTRUCTORS: dict[Any, str] = {getattr(np, name): name for name in arrays.CONSTRUCTORS}

# Handlers whose first argument is a sequence of parts, not one array-like value.
_TAKES_PARTS = frozenset({"stack", "concatenate", "hstack", "vstack", "dstack", "column_stack", "select"})

# Methods and properties of traced arrays: `x.sum()`, `x.T`, `x.shape`.
METHODS = {"sum", "mean", "prod", "max", "min", "dot", "transpose", "reshape", "ravel", "flatten"}
METHODS |= {"squeeze", "astype", "clip", "copy"}
METHODS |= {"std", "var", "cumsum", "cumprod", "swapaxes", "repeat", "diagonal"}  # issue 15

# What `t = x.reshape(...)` and friends return in NumPy: a view of `x` (an in-place update of
# `t` changes `x`), not a copy as `x.copy()`, `x.flatten()` or `x.astype(float)`.
VIEW_METHODS = frozenset({"reshape", "ravel", "squeeze", "transpose", "expand_dims"}) | frozenset(
    {"swapaxes", "moveaxis", "rollaxis", "flip", "fliplr", "flipud", "rot90", "diagonal", "broadcast_to"}
    | {"atleast_1d", "atleast_2d", "atleast_3d"}
)

# The casts that keep float64 values: identities here.
_FLOAT64_NAMES = frozenset({"float", "float64", "double", "f8", "d"})
PROPERTIES = {"T": "transpose", "shape": "shape", "ndim": "ndim", "size": "size", "dtype": "dtype"}


_RESULT_TYPES: dict[str, Any] = {}


def _result_type(cls: type[arrays.MultiOp]) -> Any:
    """A named tuple like NumPy 2's result of the operation (`SlogdetResult(sign, logabsdet)`)."""
    if cls.label not in _RESULT_TYPES:
        _RESULT_TYPES[cls.label] = collections.namedtuple(f"{cls.label.capitalize()}Result", cls.fields)
    return _RESULT_TYPES[cls.label]


class Method:
    """`x.sum` before it is called: the traced array and the method name."""

    def __init__(self, base: Any, name: str) -> None:
        self.base = base
        self.name = name


def _axes(axis: Any, ndim: int) -> tuple[int, ...] | None:
    if axis is None:
        return None
    items = axis if isinstance(axis, tuple) else (axis,)
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in items):
        raise ValueError(f"axis must be an int or a tuple of ints, got {axis!r}")
    return tuple(sorted(a % ndim for a in items))


def _has_traced_leaf(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_has_traced_leaf(v) for v in value)
    return isinstance(value, sympy.Basic) and bool(value.free_symbols)


def _plain_all(value: Any) -> Any:
    """Nested tuples, lists and arrays of constants as nested lists of plain values."""
    if isinstance(value, (tuple, list)):
        return [_plain_all(v) for v in value]
    if isinstance(value, np.ndarray):
        return value
    return _plain(value)


def _plain(value: Any) -> Any:
    """A constant argument as a plain Python value (ints, floats, tuples of them)."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, sympy.Integer):
        return int(value)
    if isinstance(value, sympy.Float):
        return float(value)
    return value


def _at_least_shape(shape: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """The shape `np.atleast_<ndim>d` gives: (n,) -> (1, n) -> (1, n, 1); (m, n) -> (m, n, 1)."""
    if len(shape) >= ndim:
        return shape
    if ndim == 3 and len(shape) == 2:
        return (*shape, 1)
    if ndim == 3:
        return (1, shape[0] if shape else 1, 1)
    return (1,) * (ndim - len(shape)) + shape


class ArrayTracing(LinalgTracing):
    """Handlers for array-level calls; mixed into `trace.Tracer`."""

    graph: Any
    error: Callable[..., Any]
    node: Callable[..., Any]

    # --- plumbing ------------------------------------------------------------------------------

    def shape(self, value: Any) -> tuple[int, ...]:
        """The shape of a traced value or a constant (constants are scalars)."""
        if not isinstance(value, sympy.Basic) or not value.free_symbols:
            return ()
        shapes = self.graph.shapes
        if shapes is None:
            raise ShapesNeeded
        return arrays.shape_of(value, shapes)

    def needs_shapes(self) -> None:
        if self.graph.shapes is None:
            raise ShapesNeeded

    def array_call(
        self, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST, hint: str | None
    ) -> Any:
        self.needs_shapes()
        handler = getattr(self, f"array_{name}")
        if name not in _TAKES_PARTS:  # `np.sum([a, b])`, `np.dot(w, [x, y])`: lists are arrays
            arrays_in = 2 if name in ("matmul", "dot", "outer") or name in TWO_ARRAYS else 1
            args = [
                self._stacked(a, node, None) if isinstance(a, tuple) and k < arrays_in else a
                for k, a in enumerate(args)
            ]
        try:
            inspect.signature(handler).bind(*args, node=node, hint=hint, **kwargs)
        except TypeError as exc:
            raise self.error(
                TracingError,
                node,
                f"bad arguments for `{ast.unparse(node)}`: {exc}",
                "check the NumPy signature",
            ) from None
        return handler(*args, node=node, hint=hint, **kwargs)

    def op(
        self, cls: type[arrays.ArrayOp], operands: Sequence[Any], params: Any, hint: str | None, node: ast.AST
    ) -> Any:
        return self.node(cls.make([sympy.sympify(o) for o in operands], params), hint, node)

    # --- reductions ----------------------------------------------------------------------------

    def _reduce(
        self, cls: type[arrays.Reduction], x: Any, axis: Any, keepdims: bool, node: ast.AST, hint: str | None
    ) -> Any:
        if isinstance(x, sympy.logic.boolalg.Boolean) and not isinstance(x, sympy.Symbol):
            # `np.sum(x < y)`: conditions count as 1 and 0, as NumPy's booleans do
            x = self.node(sympy.Piecewise((1, x), (0, True)), hint, node)
        shape = self.shape(x)
        if not shape:
            return x  # a scalar reduces to itself
        axes = _axes(axis, len(shape))
        return self.op(cls, [x], (axes, bool(keepdims)), hint, node)

    def array_sum(
        self, x: Any, axis: Any = None, keepdims: bool = False, *, node: ast.AST, hint: str | None
    ) -> Any:
        return self._reduce(arrays.ArraySum, x, axis, keepdims, node, hint)

    def array_prod(
        self, x: Any, axis: Any = None, keepdims: bool = False, *, node: ast.AST, hint: str | None
    ) -> Any:
        return self._reduce(arrays.ArrayProd, x, axis, keepdims, node, hint)

    def array_max(
        self, x: Any, axis: Any = None, keepdims: bool = False, *, node: ast.AST, hint: str | None
    ) -> Any:
        return self._reduce(arrays.ArrayMax, x, axis, keepdims, node, hint)

    def array_min(
        self, x: Any, axis: Any = None, keepdims: bool = False, *, node: ast.AST, hint: str | None
    ) -> Any:
        return self._reduce(arrays.ArrayMin, x, axis, keepdims, node, hint)

    def array_logsumexp(
        self,
        x: Any,
        axis: Any = None,
        b: Any = None,
        keepdims: bool = False,
        return_sign: bool = False,
        *,
        node: ast.AST,
        hint: str | None,
    ) -> Any:
        if return_sign:
            raise self.error(
                TracingError,
                node,
                "`logsumexp(..., return_sign=True)`: the sign of a sum has no derivative",
                "pass weights `b` that are positive, and drop return_sign",
            )
        if b is not None:  # log(sum(b * exp(x))) = logsumexp(x + log(b)) for positive weights
            x = self.node(sympy.sympify(x) + sympy.log(sympy.sympify(b)), None, node)
        if not self.shape(x):
            return x
        return self._reduce(arrays.LogSumExp, x, axis, keepdims, node, hint)

    def array_log_softmax(self, x: Any, axis: Any = None, *, node: ast.AST, hint: str | None) -> Any:
        """x - logsumexp(x) over `axis` (all of x by default, as SciPy's): never overflows."""
        if not self.shape(x):
            return sympy.S.Zero  # log(1): a number's softmax is 1
        total = self._reduce(arrays.LogSumExp, x, axis, True, node, None)
        spread = self._broadcast(total, self.shape(x), node)
        return self.node(sympy.sympify(x) - spread, hint, node)

    def array_softmax(self, x: Any, axis: Any = None, *, node: ast.AST, hint: str | None) -> Any:
        """exp(log_softmax(x)), as SciPy computes it (shifted: never overflows)."""
        return self.node(sympy.exp(self.array_log_softmax(x, axis, node=node, hint=None)), hint, node)

    def array_mean(
        self, x: Any, axis: Any = None, keepdims: bool = False, *, node: ast.AST, hint: str | None
    ) -> Any:
        shape = self.shape(x)
        axes = _axes(axis, len(shape))
        count = math.prod(shape) if axes is None else math.prod(shape[a] for a in axes)
        total = self._reduce(arrays.ArraySum, x, axis, keepdims, node, None)
        return self.node(total / count, hint, node) if count != 1 else total

    def array_nansum(
        self, x: Any, axis: Any = None, keepdims: bool = False, *, node: ast.AST, hint: str | None
    ) -> Any:
        """The sum of the elements that are not NaN (a NaN's gradient is 0, as torch.nansum)."""
        numbers = self.node(rules.NanToZero(sympy.sympify(x)), None, node)
        if not self.shape(x):
            return numbers
        return self._reduce(arrays.ArraySum, numbers, axis, keepdims, node, hint)

    def array_nanmean(
        self, x: Any, axis: Any = None, keepdims: bool = False, *, node: ast.AST, hint: str | None
    ) -> Any:
        """nansum / how many elements are not NaN (NaN where all are: 0/0, as NumPy's)."""
        total = self.array_nansum(x, axis, keepdims, node=node, hint=None)
        present = self.node(rules.NotNan(sympy.sympify(x)), None, node)
        count = (
            self._reduce(arrays.ArraySum, present, axis, keepdims, node, None) if self.shape(x) else present
        )
        return self.node(total / count, hint, node)

    # --- linear algebra ------------------------------------------------------------------------

    def array_matmul(self, a: Any, b: Any, *, node: ast.AST, hint: str | None) -> Any:
        if not self.shape(a) or not self.shape(b):
            if isinstance(node, ast.BinOp):  # `@` refuses scalars, as in NumPy
                raise self.error(
                    UnsupportedSyntaxError,
                    node,
                    "`@` needs arrays (1-D or more) on both sides",
                    "multiply numbers with `*`",
                )
            return self.node(sympy.sympify(a) * sympy.sympify(b), hint, node)  # np.dot(2.0, x)
        return self.op(arrays.MatMul, [a, b], (), hint, node)

    def array_dot(self, a: Any, b: Any, *, node: ast.AST, hint: str | None) -> Any:
        """`np.dot` / `x.dot(y)`: matmul's for operands of up to 2 dimensions; with more, a
        sum over a's last axis and b's second-to-last (its only one if 1-D), every other axis
        kept, as NumPy's dot (no broadcasting of batch axes, unlike `@`)."""
        sa, sb = self.shape(a), self.shape(b)
        if (len(sa) <= 2 and len(sb) <= 2) or not sa or not sb:  # a number times an array too
            return self.array_matmul(a, b, node=node, hint=hint)
        axes = ([len(sa) - 1], [max(len(sb) - 2, 0)])
        return self.contract(a, b, axes, linalg.Dot, node, hint)

    def array_transpose(self, x: Any, *args: Any, axes: Any = None, node: ast.AST, hint: str | None) -> Any:
        # `x.transpose(1, 0)`, `x.transpose((1, 0))`, `np.transpose(x, (1, 0))`, `axes=(1, 0)`
        if args:
            axes = args[0] if len(args) == 1 else args
        ndim = len(self.shape(x))
        order = tuple(reversed(range(ndim))) if axes is None else tuple(int(a) % ndim for a in _plain(axes))
        if ndim < 2 or order == tuple(range(ndim)):
            return x
        return self.op(arrays.Transpose, [x], order, hint, node)

    def array_outer(self, a: Any, b: Any, *, node: ast.AST, hint: str | None) -> Any:
        for value in (a, b):
            if len(self.shape(value)) != 1:
                raise self.error(TracingError, node, "np.outer takes two vectors here", "pass 1-D arrays")
        return self.op(arrays.Outer, [a, b], (), hint, node)

    def array_trace(
        self, x: Any, offset: Any = 0, axis1: Any = 0, axis2: Any = 1, *, node: ast.AST, hint: str | None
    ) -> Any:
        shape = self.shape(x)
        offset = _plain(offset)
        if len(shape) < 2 or not isinstance(offset, int):
            raise self.error(
                TracingError,
                node,
                f"np.trace of shape {shape}",
                "pass an array of 2 or more dimensions and a constant int offset",
            )
        if len(shape) > 2 or _plain(axis1) != 0 or _plain(axis2) != 1:
            # NumPy: the sums of the diagonals of the (axis1, axis2) planes, the other axes kept
            diagonals = self.array_diagonal(x, offset, axis1, axis2, node=node, hint=None)
            return self._reduce(arrays.ArraySum, diagonals, -1, False, node, hint)
        if shape[0] == shape[1] and offset == 0:
            return self.op(arrays.Trace, [x], (), hint, node)
        # another diagonal: the sum of its elements, gathered by a fancy index
        rows = [i for i in range(shape[0]) if 0 <= i + offset < shape[1]]
        if not rows:
            return 0.0
        diagonal = self.op(arrays.Index, [x], (rows, [i + offset for i in rows]), None, node)
        return self.op(arrays.ArraySum, [diagonal], (None, False), hint, node)

    def _square(self, a: Any, node: ast.AST, stack: bool = False) -> tuple[int, ...]:
        """`a`'s shape, refused unless it is one square matrix, or (`stack`: the function
        takes stacks, as NumPy's does) an array of shape (..., n, n)."""
        shape = self.shape(a)
        label = ast.unparse(node.func) if isinstance(node, ast.Call) else "this function"
        what = f"an array of shape {shape}" if shape else "a number"
        if stack:
            if len(shape) < 2 or shape[-1] != shape[-2]:
                raise self.error(
                    TracingError,
                    node,
                    f"`{label}` of {what}: it takes square matrices (the last two axes of equal length)",
                    "pass a square matrix, shape (n, n), or a stack of square matrices, shape (..., n, n)",
                )
        elif len(shape) != 2 or shape[0] != shape[1]:
            raise self.error(
                TracingError,
                node,
                f"`{label}` of {what}: symgrad supports one square matrix here",
                "pass a square 2-D array (stacks of matrices are not supported yet)",
            )
        return shape

    def array_inv(self, a: Any, *, node: ast.AST, hint: str | None) -> Any:
        self._square(a, node, stack=True)
        return self.op(arrays.Inv, [a], (), hint, node)

    def multi(
        self,
        cls: type[arrays.MultiOp],
        a: Any,
        params: Any,
        node: ast.AST,
        square: bool = True,
        stack: bool = False,
    ) -> Any:
        """All results of one call computing several values (a `graph.Multi` node), as
        NumPy's named tuple of them: `sign, logdet = ...`, `[1]` and `.logabsdet` all read it.
        `square`: the operation takes a square matrix (svd takes any); `stack`: or a stack
        of them, shape (..., n, n)."""
        if square:
            self._square(a, node, stack)
        if self.graph.parent is not None:  # a kept loop's body holds assignments and loops only
            label = ast.unparse(node.func) if isinstance(node, ast.Call) else cls.label
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"`{label}` in the body of a loop kept as a loop",
                f'call `{label}` before or after the loop, or pass loops="unroll" (a `for` loop '
                'then repeats its body; loops="auto" does so by itself)',
            )
        call = cls.make([arrays.atom(sympy.sympify(a), self.graph.add)], params)
        lineno = getattr(node, "lineno", None)
        line = None if lineno is None else (self.frame.source.filename, lineno)  # type: ignore[attr-defined]
        return _result_type(cls)(*self.graph.add_multi(call, line))

    def array_slogdet(self, a: Any, *, node: ast.AST, hint: str | None) -> Any:
        return self.multi(arrays.SlogDet, a, (), node, stack=True)

    def array_eigh(self, a: Any, UPLO: str = "L", *, node: ast.AST, hint: str | None) -> Any:  # noqa: N803 - NumPy's name
        if UPLO not in ("L", "U"):
            raise self.error(TracingError, node, f"UPLO={UPLO!r}", "pass UPLO='L' or UPLO='U'")
        return self.multi(arrays.Eigh, a, UPLO, node, stack=True)

    # --- shapes and constants ------------------------------------------------------------------

    def array_len(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        shape = self.shape(x)
        if not shape:
            raise self.error(TracingError, node, "len() of a scalar", "pass an array")
        return shape[0]

    def array_shape(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        return self.shape(x)

    def array_ndim(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        return len(self.shape(x))

    def array_size(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        return math.prod(self.shape(x))

    def array_dtype(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        return np.dtype(np.float64)  # every traced value is float64

    # --- reshaping and copies -------------------------------------------------------------------

    def _reshaped(self, x: Any, shape: tuple[int, ...], node: ast.AST, hint: str | None) -> Any:
        if self.shape(x) == shape:
            return x
        return self.op(arrays.Reshape, [x], shape, hint, node)

    def array_reshape(
        self, x: Any, *args: Any, shape: Any = None, order: str = "C", node: ast.AST, hint: str | None
    ) -> Any:
        if order != "C" or not (args or shape is not None):
            raise self.error(TracingError, node, "reshape in C order takes a shape", "write x.reshape(2, 3)")
        wanted = _plain(shape if shape is not None else args[0] if len(args) == 1 else args)
        wanted = (wanted,) if isinstance(wanted, int) else tuple(wanted)
        old = self.shape(x)
        try:
            new = arrays.reshaped(old, wanted)
        except ValueError as exc:
            raise self.error(
                TracingError, node, str(exc), f"give a shape of {math.prod(old)} elements (one -1 at most)"
            ) from None
        return self._reshaped(x, new, node, hint)

    def array_ravel(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        return self._reshaped(x, (math.prod(self.shape(x)),), node, hint)

    def array_flatten(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        return self.array_ravel(x, node=node, hint=hint)

    def array_squeeze(self, x: Any, axis: Any = None, *, node: ast.AST, hint: str | None) -> Any:
        shape = self.shape(x)
        axes = _axes(_plain(axis), len(shape)) if shape else None
        if axes is not None and any(shape[a] != 1 for a in axes):
            raise self.error(TracingError, node, f"cannot squeeze an axis of length > 1 in {shape}", "")
        new = tuple(n for i, n in enumerate(shape) if not (n == 1 and (axes is None or i in axes)))
        return self._reshaped(x, new, node, hint)

    def array_expand_dims(self, x: Any, axis: Any, *, node: ast.AST, hint: str | None) -> Any:
        shape = self.shape(x)
        items = _plain(axis)
        items = items if isinstance(items, tuple) else (items,)
        ndim = len(shape) + len(items)
        new = list(shape)
        for a in sorted(int(a) % ndim for a in items):
            new.insert(a, 1)
        return self._reshaped(x, tuple(new), node, hint)

    def array_copy(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        return x  # values are never written in place by the generated code: a copy is the value

    def array_astype(self, x: Any, dtype: Any, *, node: ast.AST, hint: str | None) -> Any:
        name = getattr(dtype, "__name__", str(dtype))
        try:
            kind = np.dtype(dtype)
        except TypeError:
            kind = None
        if kind == np.float64 or name in _FLOAT64_NAMES:
            return x  # traced values are float64 already
        raise self.error(
            UnsupportedSyntaxError,
            node,
            f"`.astype({name})` of a traced value: symgrad differentiates float64 values only",
            "keep floats: drop the cast, or round with np.floor(x) / np.round(x) (derivative 0)",
        )

    def array_clip(self, x: Any, lo: Any, hi: Any, *, node: ast.AST, hint: str | None) -> Any:
        rule = rules.lookup(np.clip)
        assert rule is not None
        return self.call_rule(np.clip, rule, [x, lo, hi], {}, node, hint)

    def _full(self, x: Any, value: float, node: ast.AST, hint: str | None) -> Any:
        shape = self.shape(x)
        if not shape:
            return value
        return self.op(arrays.Full, [], (shape, value), hint, node)

    def array_zeros_like(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        return self._full(x, 0.0, node, hint)

    def array_ones_like(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        return self._full(x, 1.0, node, hint)

    def _parts(self, parts: Any, node: ast.AST) -> list[Any]:
        if not isinstance(parts, tuple) or not parts:
            raise self.error(
                TracingError,
                node,
                "stack/concatenate need a tuple or list of parts",
                "write np.stack([a, b, c])",
            )
        return list(parts)

    def _float_result(self, out: Any, dtype: Any, casting: Any, node: ast.AST) -> None:
        """NumPy's `out=`, `dtype=` and `casting=` of a joining function: no `out` array, and
        a float64 result (dtype None or float64; then every casting rule makes the same values)."""
        label = ast.unparse(node.func) if isinstance(node, ast.Call) else "this call"
        if out is not None:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"`{label}` with out=: symgrad's programs never write into an array",
                f"drop out= and assign the result: `result = {label}(...)`",
            )
        if casting not in ("no", "equiv", "safe", "same_kind", "unsafe"):
            raise self.error(
                TracingError, node, f"`{label}`: casting={casting!r}", "pass casting='same_kind' (or drop it)"
            )
        if dtype is None:
            return
        try:
            kind = np.dtype(dtype)
        except TypeError:
            kind = None
        if kind != np.float64:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"`{label}` with dtype={getattr(dtype, '__name__', dtype)!s}: symgrad differentiates float64 values only",
                "drop dtype= (or pass dtype=float)",
            )

    def array_stack(
        self,
        parts: Any,
        axis: int = 0,
        out: Any = None,
        *,
        dtype: Any = None,
        casting: str = "same_kind",
        node: ast.AST,
        hint: str | None,
    ) -> Any:
        self._float_result(out, dtype, casting, node)
        items = self._parts(parts, node)
        shape = tuple(np.broadcast_shapes(*[self.shape(p) for p in items]))
        items = [self._broadcast(p, shape, node) for p in items]
        return self.op(arrays.Stack, items, axis % (len(shape) + 1), hint, node)

    def array_concatenate(
        self,
        parts: Any,
        axis: int = 0,
        out: Any = None,
        dtype: Any = None,
        casting: str = "same_kind",
        *,
        node: ast.AST,
        hint: str | None,
    ) -> Any:
        self._float_result(out, dtype, casting, node)
        items = self._parts(parts, node)
        ndim = len(self.shape(items[0]))
        if ndim == 0:
            raise self.error(TracingError, node, "np.concatenate of scalars", "use np.stack for scalars")
        return self.op(arrays.Concatenate, items, axis % ndim, hint, node)

    def _broadcast(self, value: Any, shape: tuple[int, ...], node: ast.AST) -> Any:
        if self.shape(value) == shape:
            return value
        return self.op(arrays.Broadcast, [value], shape, None, node)

    def constant(
        self, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST, hint: str | None
    ) -> Any:
        """`numpy.arange(4.0)` and friends with constant arguments: a constant array node;
        `np.array([a, b])` of traced values stacks them."""
        self.needs_shapes()
        if name in ("array", "asarray") and kwargs.get("dtype", float) in (float, np.float64):
            kwargs = {k: v for k, v in kwargs.items() if k != "dtype"}  # float64 is what it makes
            if len(args) == 1 and not kwargs and _has_traced_leaf(args[0]):
                return self._stacked(args[0], node, hint)
        traced = any(isinstance(a, sympy.Basic) and a.free_symbols for a in args)
        if name == "linspace" and (traced or any(_has_traced_leaf(v) for v in kwargs.values())):
            return self.array_call("linspace", args, kwargs, node, hint)  # traced ends (issue 15)
        if kwargs or traced:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"np.{name} with traced or keyword arguments",
                "give it constant positional arguments (shapes cannot depend on traced values)",
            )
        values = tuple(_plain(a) for a in args)
        try:
            getattr(np, name)(*values)
        except (TypeError, ValueError) as exc:
            raise self.error(TracingError, node, f"np.{name}{values}: {exc}", "check the arguments") from None
        return self.op(arrays.Constant, [], (name, values), hint, node)

    def _stacked(self, value: Any, node: ast.AST, hint: str | None) -> Any:
        """A nested list of numbers and traced values as one array, like `np.array` makes it."""
        if not isinstance(value, tuple):
            return value
        return self.array_call("stack", [tuple(self._stacked(v, node, None) for v in value)], {}, node, hint)

    # --- indexing ------------------------------------------------------------------------------

    def index(self, base: Any, node: ast.Subscript, hint: str | None) -> Any:
        """`x[i]`, `x[i, j]`, `x[a:b:s]`, `x[None, :]`, `x[..., 0]`, `x[[0, 2]]`, `x[idx]` of a
        traced array, with constant or static indices."""
        item = self.loop_item(base, node)  # type: ignore[attr-defined]
        if item is not None:  # `xs[t]` in a kept loop: the loop's item
            return item
        index = self.index_of(base, node)
        result = self.op(arrays.Index, [base], index, hint, node)
        if arrays.is_fancy(index):  # NumPy copies: `t = x[[0, 1]]; t += 1` leaves x as it was
            self.__dict__.setdefault("copies", set()).add(result)
        return result

    def is_copy(self, value: Any) -> bool:
        """Whether a traced value is a fresh array though written as a subscript (`x[[0, 2]]`)."""
        return value in self.__dict__.get("copies", ())

    def index_of(self, base: Any, node: ast.Subscript) -> tuple[Any, ...]:
        """The encoded constant index of `base[...]` (see arrays.index_text), checked against
        the base's shape."""
        shape = self.shape(base)
        if not shape:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                "indexing a scalar (this argument is a number here)",
                "pass an array to index, or pass the elements as separate arguments",
            )
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        index = tuple(part for item in items for part in self._index_item(item, node))
        try:
            arrays.indexed_shape(shape, index)
        except IndexError as exc:
            raise self.error(
                TracingError,
                node,
                f"`{ast.unparse(node)}` does not fit the shape {shape}: {exc}",
                "index at most as many axes as the array has, each within its length",
            ) from None
        return index

    def _index_item(self, item: ast.expr, node: ast.AST) -> list[Any]:
        """One index item encoded; a boolean mask becomes its integer arrays (np.nonzero)."""
        if isinstance(item, ast.Slice):
            bounds = [
                None if b is None else self._static_int(b, node) for b in (item.lower, item.upper, item.step)
            ]
            return [("slice", *bounds)]
        return self._encode(self._index_value(item), item, node)

    def _encode(self, value: Any, item: ast.expr, node: ast.AST) -> list[Any]:
        if value is None:
            return [None]
        if value is Ellipsis:
            return ["..."]
        if isinstance(value, tuple) and not isinstance(value, ListValue):
            # a tuple is NumPy's index of several axes (`idx = (0, 2)`: `x[idx]` is `x[0, 2]`)
            return [part for v in value for part in self._encode(v, item, node)]
        if isinstance(value, np.ndarray) or (isinstance(value, ListValue) and not _has_traced_leaf(value)):
            return self._index_array(np.asarray(_plain_all(value)), item, node)
        return [self._static_int(item, node, value)]

    def _index_array(self, value: npt.NDArray[Any], item: ast.expr, node: ast.AST) -> list[Any]:
        if value.dtype == np.bool_:
            return [column.tolist() for column in np.nonzero(value)]  # a mask: the indices it selects
        if value.dtype.kind not in "iu" or value.ndim == 0:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"index {ast.unparse(item)!r} holds {value.dtype} values",
                "index with ints, slices, None, ..., or arrays / lists of ints",
            )
        return [value.tolist()]

    def _index_value(self, item: ast.expr) -> Any:
        """The value of an index item: an int array from outside the function (`x[IDX]`) or a
        constant made inside it (`np.arange(3)`) is its value, not an input of the program."""
        outside = self._outside_array(item)
        if outside is not None:
            return outside
        if isinstance(item, ast.Subscript):  # `x[PAIRS[0]]`: a row of an index array
            rows = self._outside_array(item.value)
            if rows is not None:
                parts = item.slice.elts if isinstance(item.slice, ast.Tuple) else [item.slice]
                return rows[arrays.python_index([p for e in parts for p in self._index_item(e, item)])]
        value = self.expr(item)  # type: ignore[attr-defined]
        if isinstance(value, sympy.Symbol):
            made = self._constant_array(value)
            if made is not None:
                return made
        return value

    def _outside_array(self, item: ast.expr) -> npt.NDArray[Any] | None:
        """`IDX` / `cfg.idx` holding an int or bool array: folded into the program as a constant,
        guarded like a number read from outside (a changed array traces the function again)."""
        frame = self.frame  # type: ignore[attr-defined]
        value: Any = None
        if isinstance(item, ast.Name) and item.id not in frame.env:
            fn = frame.source.fn
            with contextlib.suppress(AttributeError, KeyError):  # reported by the ordinary lookup
                value = cache.resolve(fn, (item.id,))
        elif isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name):
            owner = frame.env.get(item.value.id)
            if owner is None or item.value.id not in frame.env:
                with contextlib.suppress(AttributeError, KeyError):  # reported by the ordinary lookup
                    owner = cache.resolve(frame.source.fn, (item.value.id,))
            if owner is not None and not isinstance(owner, (sympy.Basic, tuple, dict)):
                value = getattr(owner, item.attr, None)
        if not (isinstance(value, np.ndarray) and value.ndim > 0 and value.dtype.kind in "biu"):
            return None
        path = self.chain(item)  # type: ignore[attr-defined]
        if path is None:
            self.graph.cacheable = False
        else:
            fingerprint = cache.fingerprint(value)
            self.graph.deps.append((path, fingerprint))
            self.graph.guards.append((path, value, fingerprint))
        return np.array(value)  # a copy: the traced index is the value it had

    def _constant_array(self, symbol: sympy.Symbol) -> npt.NDArray[Any] | None:
        """The value of a constant array node (`idx = np.arange(3)`), None for other values."""
        for known, expr in reversed(self.graph.nodes):
            if known == symbol:
                if isinstance(expr, arrays.Constant):
                    name, args = expr.params
                    return np.asarray(getattr(np, name)(*args))
                return None
        return None

    def _static_int(self, item: ast.expr, node: ast.AST, value: Any = None) -> int:
        if value is None:
            value = self.expr(item)  # type: ignore[attr-defined]
        if isinstance(value, sympy.Integer):
            value = int(value)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, (sympy.Basic, tuple)) and _has_traced_leaf(value):
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"the index {ast.unparse(item)!r} is computed from traced values",
                "index with constants, loop counters, static arguments or constant int arrays "
                "(a module-level `IDX = np.array([0, 2])`); to select by a traced condition "
                "use np.where(cond, x, 0.0)",
            )
        raise self.error(
            UnsupportedSyntaxError,
            node,
            f"unsupported index {ast.unparse(item)!r}",
            "use ints, slices, None, ... and constant int arrays (x[i], x[i, j], x[a:b], x[[0, 2]])",
        )

    # --- item updates and unpacking ------------------------------------------------------------

    def updated(self, base: Any, target: ast.Subscript, value: Any, op: ast.operator | None) -> Any:
        """The array `base` after `base[index] = value` (or `op=`), as a new value: a `SetItem`
        node, whose code copies, so the caller's array is never written."""
        index = self.index_of(base, target)
        shape = self.shape(base)
        region = arrays.indexed_shape(shape, index)
        if arrays.has_repeats(shape, index):
            raise self.error(
                UnsupportedSyntaxError,
                target,
                f"`{ast.unparse(target)} = ...` writes some element twice (a repeated index): "
                "NumPy keeps only one of the values",
                "give each index once",
            )
        if op is not None:  # `x[i] += v` is `x[i] = x[i] + v` (NumPy: repeats add once, refused above)
            current = self.op(arrays.Index, [base], index, None, target)
            value = self.binop(op, current, value, target)  # type: ignore[attr-defined]
        value = self._stacked(value, target, None)
        value_shape = self.shape(value)
        try:
            fits = np.broadcast_shapes(value_shape, region) == region
        except ValueError:
            fits = False
        if not fits:
            raise self.error(
                TracingError,
                target,
                f"cannot put a value of shape {value_shape} into `{ast.unparse(target)}` of shape {region}",
                "give a value of the indexed part's shape, or one that broadcasts to it",
            )
        if isinstance(value, sympy.Basic) and not isinstance(value, (sympy.Symbol, sympy.Number)):
            value = self.node(value, None, target)
        hint = target.value.id if isinstance(target.value, ast.Name) else None
        return self.op(arrays.SetItem, [base, value], index, hint, target)

    def unpack(self, value: Any, count: int, target: ast.Tuple | ast.List) -> tuple[Any, ...] | None:
        """`a, b = p` of an array of `count` rows: its rows (None when `value` is a scalar)."""
        shape = self.shape(value)
        if not shape:
            return None
        if shape[0] != count:
            raise self.error(
                TracingError,
                target,
                f"cannot unpack an array of length {shape[0]} into {count} names",
                "make both sides the same length",
            )
        hints = [elt.id if isinstance(elt, ast.Name) else None for elt in target.elts]
        return tuple(self.op(arrays.Index, [value], (k,), hints[k], target) for k in range(count))

    # --- shapes, scans and statistics (issue 15) -----------------------------------------------
    # Compositions of the operations above wherever NumPy's function is one (derivatives come
    # with them); `CumSum`, `CumProd` and `SortedTake` where the adjoint needs NumPy's call.

    def _value(self, x: Any, node: ast.AST) -> Any:
        """`x` as a graph value an array operation can take: a tuple or list stacked into an
        array, an expression added as a node, a number as it is."""
        x = self._stacked(x, node, None)
        x = sympy.sympify(x)
        return x if isinstance(x, (sympy.Symbol, sympy.Number)) else self.node(x, None, node)

    def _static(self, value: Any, what: str, node: ast.AST, hint: str) -> Any:
        """A constant argument (an int, a tuple of ints, a constant int array) as a plain
        Python value; a traced one is refused: shapes cannot depend on traced values."""
        if isinstance(value, sympy.Symbol):
            made = self._constant_array(value)
            if made is not None:
                return made.tolist()
        if _has_traced_leaf(value):
            label = ast.unparse(node.func) if isinstance(node, ast.Call) else "this call"
            raise self.error(TracingError, node, f"`{label}` with {what} computed from traced values", hint)
        plain = _plain_all(value)
        return plain.tolist() if isinstance(plain, np.ndarray) else plain

    def _ints(self, value: Any, what: str, node: ast.AST, hint: str) -> Any:
        """A constant int or a (flat) sequence of constant ints."""
        plain = self._static(value, what, node, hint)
        items = plain if isinstance(plain, (list, tuple)) else [plain]
        if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in items):
            label = ast.unparse(node.func) if isinstance(node, ast.Call) else "this call"
            raise self.error(TracingError, node, f"`{label}`: {what} must be ints, not {plain!r}", hint)
        return [int(i) for i in items] if isinstance(plain, (list, tuple)) else int(plain)

    def _axis(self, axis: Any, ndim: int, node: ast.AST) -> int:
        value = self._ints(axis, "the axis", node, "pass a constant int axis")
        if isinstance(value, list) or not -max(ndim, 1) <= value < max(ndim, 1):
            label = ast.unparse(node.func) if isinstance(node, ast.Call) else "this call"
            raise self.error(
                TracingError,
                node,
                f"`{label}`: axis {value!r} does not fit an array of {ndim} dimension{'s' * (ndim != 1)}",
                f"pass one int axis from {-ndim} to {ndim - 1}",
            )
        return int(value) % max(ndim, 1)

    def _take(self, x: Any, index: tuple[Any, ...], node: ast.AST, hint: str | None = None) -> Any:
        return self.op(arrays.Index, [x], index, hint, node)

    def _slice(self, x: Any, axis: int, start: Any, stop: Any, node: ast.AST, step: Any = None) -> Any:
        return self._take(x, arrays.along_axis(axis, ("slice", start, stop, step)), node)

    def _as_shape(self, x: Any, shape: tuple[int, ...], node: ast.AST, hint: str | None = None) -> Any:
        return self._reshaped(x, tuple(shape), node, hint)

    def _flat(self, x: Any, node: ast.AST) -> Any:
        return self._as_shape(x, (math.prod(self.shape(x)),), node)

    # scans

    def _scan(
        self, cls: type[arrays.ArrayOp], x: Any, axis: Any, params: Any, node: ast.AST, hint: str | None
    ) -> Any:
        x = self._value(x, node)
        if axis is None:  # NumPy scans the flattened array
            x, axis = self._flat(x, node), 0
        shape = self.shape(x)
        if not shape:
            x, shape = self._as_shape(x, (1,), node), (1,)
        a = self._axis(axis, len(shape), node)
        return self.op(cls, [x], params(a), hint, node)

    def array_cumsum(self, x: Any, axis: Any = None, *, node: ast.AST, hint: str | None) -> Any:
        return self._scan(arrays.CumSum, x, axis, lambda a: (a, False), node, hint)

    def array_cumprod(self, x: Any, axis: Any = None, *, node: ast.AST, hint: str | None) -> Any:
        return self._scan(arrays.CumProd, x, axis, lambda a: a, node, hint)

    def array_sort(self, x: Any, axis: Any = -1, kind: Any = None, *, node: ast.AST, hint: str | None) -> Any:
        x = self._value(x, node)
        if axis is None:
            x, axis = self._flat(x, node), 0
        shape = self.shape(x)
        if not shape:
            return x
        a = self._axis(axis, len(shape), node)
        return self.op(arrays.SortedTake, [x, x], a, hint, node)

    def array_partition(
        self, x: Any, kth: Any, axis: Any = -1, kind: str = "introselect", *, node: ast.AST, hint: str | None
    ) -> Any:
        """NumPy's partition (the kth elements where a sort puts them, smaller ones before,
        larger after); its adjoint puts each cotangent back where the element came from."""
        x = self._value(x, node)
        if axis is None:
            x, axis = self._flat(x, node), 0
        shape = self.shape(x)
        if not shape:
            raise self.error(TracingError, node, "np.partition of a number", "pass an array")
        a = self._axis(axis, len(shape), node)
        k = self._ints(kth, "kth", node, "pass a constant int kth (or a list of them)")
        for item in k if isinstance(k, list) else [k]:
            if not -shape[a] <= item < shape[a]:
                raise self.error(
                    TracingError,
                    node,
                    f"np.partition: kth={item} is out of bounds for an axis of length {shape[a]}",
                    f"pass a kth from {-shape[a]} to {shape[a] - 1}",
                )
        return self.op(arrays.SortedTake, [x, x], (a, tuple(k) if isinstance(k, list) else k), hint, node)

    def array_select(
        self, condlist: Any, choicelist: Any, default: Any = 0, *, node: ast.AST, hint: str | None
    ) -> Any:
        """NumPy's definition: the first choice whose condition holds, `default` where none
        does; nested np.where calls from the last condition to the first."""
        conditions, choices = (self._parts(v, node) for v in (condlist, choicelist))
        if len(conditions) != len(choices):
            raise self.error(
                TracingError,
                node,
                f"np.select: {len(conditions)} conditions for {len(choices)} choices",
                "give one condition per choice",
            )
        rule = rules.lookup(np.where)
        assert rule is not None
        result = default
        for k, (cond, choice) in enumerate(reversed(list(zip(conditions, choices)))):
            last = k == len(choices) - 1
            result = self.call_rule(np.where, rule, [cond, choice, result], {}, node, hint if last else None)
        shape = np.broadcast_shapes(
            *(self.shape(v) for v in (*choices, default)), *(np.shape(c) for c in conditions)
        )
        return self._broadcast(self._value(result, node), tuple(shape), node)

    def array_take_along_axis(
        self, x: Any, indices: Any, axis: Any = -1, *, node: ast.AST, hint: str | None
    ) -> Any:
        """A gather with constant indices: one fancy `Index` (its adjoint accumulates repeats)."""
        x = self._value(x, node)
        outside = self._outside_argument(node, 1, "indices")
        if outside is not None:  # `IDX` from outside the function: its value, guarded
            indices = outside
        idx = np.asarray(
            self._static(
                indices, "indices", node, "pass a constant int array (e.g. one made outside the function)"
            )
        )
        shape = self.shape(x)
        if axis is None:
            x, shape, axis = self._flat(x, node), (math.prod(shape),), 0
        a = self._axis(axis, len(shape), node)
        if idx.dtype.kind not in "iu" or idx.ndim != len(shape):
            raise self.error(
                TracingError,
                node,
                f"np.take_along_axis needs int indices with {len(shape)} dimensions, got {idx.dtype} "
                f"of shape {idx.shape}",
                "pass an int array with as many dimensions as the array",
            )
        out = np.broadcast_shapes(tuple(n if d != a else 1 for d, n in enumerate(shape)), idx.shape)
        index = []
        for d in range(len(shape)):
            if d == a:
                index.append(np.broadcast_to(idx % shape[a], out).tolist())
            else:
                ranges = np.arange(shape[d]).reshape([-1 if e == d else 1 for e in range(len(shape))])
                index.append(np.broadcast_to(ranges, out).tolist())
        return self._take(x, tuple(index), node, hint)

    # statistics

    def array_var(
        self,
        x: Any,
        axis: Any = None,
        dtype: Any = None,
        out: Any = None,
        ddof: Any = 0,
        keepdims: bool = False,
        *,
        node: ast.AST,
        hint: str | None,
        root: bool = False,
    ) -> Any:
        """NumPy's own steps: the mean (kept dims), squared deviations, their sum / (N - ddof)."""
        if dtype is not None or out is not None:
            raise self.error(
                TracingError, node, "np.var / np.std with dtype= or out=", "drop dtype= and out="
            )
        x = self._value(x, node)
        shape = self.shape(x)
        axes = _axes(_plain(axis), len(shape)) if shape else None
        count = math.prod(shape) if axes is None else math.prod(shape[a] for a in axes)
        ddof = self._static(ddof, "ddof", node, "pass a constant ddof")
        if count - ddof <= 0:
            raise self.error(
                TracingError,
                node,
                f"ddof={ddof} leaves no degrees of freedom for {count} element{'s' * (count != 1)}",
                "pass a ddof smaller than the number of elements reduced",
            )
        if count == 1:  # each deviation is x - x: the variance is 0 for every x, its derivative 0
            reduced = arrays._reduced(shape, axes, bool(keepdims))
            return self.op(arrays.Full, [], (reduced, 0.0), hint, node) if reduced else sympy.Float(0.0)
        mean = self.node(self._reduce(arrays.ArraySum, x, axis, True, node, None) / count, None, node)
        difference = x - mean
        if complexes.is_complex(difference):  # NumPy: (x - mean) * conj(x - mean), its real part
            deviation = self.node(sympy.re(difference) ** 2 + sympy.im(difference) ** 2, None, node)
        else:
            deviation = self.node(difference**2, None, node)
        total = self._reduce(arrays.ArraySum, deviation, axis, keepdims, node, None)
        variance = self.node(total / (count - ddof), None if root else hint, node)
        return self.node(sympy.sqrt(variance), hint, node) if root else variance

    def array_std(
        self,
        x: Any,
        axis: Any = None,
        dtype: Any = None,
        out: Any = None,
        ddof: Any = 0,
        keepdims: bool = False,
        *,
        node: ast.AST,
        hint: str | None,
    ) -> Any:
        """sqrt(var): at zero variance the gradient is nan (0 * inf), as in PyTorch."""
        return self.array_var(x, axis, dtype, out, ddof, keepdims, node=node, hint=hint, root=True)

    def array_average(
        self,
        x: Any,
        axis: Any = None,
        weights: Any = None,
        returned: bool = False,
        keepdims: bool = False,
        *,
        node: ast.AST,
        hint: str | None,
    ) -> Any:
        if returned:
            raise self.error(
                TracingError, node, "np.average(..., returned=True)", "compute np.sum(weights) yourself"
            )
        if weights is None:
            return self.array_mean(x, axis, keepdims, node=node, hint=hint)
        x, w = self._value(x, node), self._value(weights, node)
        shape, w_shape = self.shape(x), self.shape(w)
        if w_shape != shape:
            if axis is None or len(w_shape) != 1:
                raise self.error(
                    TracingError,
                    node,
                    f"np.average: weights of shape {w_shape} for an array of shape {shape}",
                    "give weights of the array's shape, or 1-D weights with an int axis",
                )
            a = self._axis(axis, len(shape), node)
            w = self._as_shape(w, tuple(n if d == a else 1 for d, n in enumerate(shape)), node)
        total = self._reduce(arrays.ArraySum, self.node(x * w, None, node), axis, keepdims, node, None)
        scale = self._reduce(arrays.ArraySum, w, axis, keepdims, node, None)
        return self.node(total / scale, hint, node)

    def array_ptp(
        self, x: Any, axis: Any = None, keepdims: bool = False, *, node: ast.AST, hint: str | None
    ) -> Any:
        """max - min; ties at either end share that end's gradient evenly (as np.max's)."""
        x = self._value(x, node)
        top = self._reduce(arrays.ArrayMax, x, axis, keepdims, node, None)
        bottom = self._reduce(arrays.ArrayMin, x, axis, keepdims, node, None)
        return self.node(top - bottom, hint, node)

    # moving axes

    def array_swapaxes(self, x: Any, axis1: Any, axis2: Any, *, node: ast.AST, hint: str | None) -> Any:
        ndim = len(self.shape(x))
        a, b = self._axis(axis1, ndim, node), self._axis(axis2, ndim, node)
        order = list(range(ndim))
        order[a], order[b] = order[b], order[a]
        return self.array_transpose(x, tuple(order), node=node, hint=hint)

    def array_moveaxis(
        self, x: Any, source: Any, destination: Any, *, node: ast.AST, hint: str | None
    ) -> Any:
        ndim = len(self.shape(x))
        src = self._ints(source, "source", node, "pass constant int axes")
        dst = self._ints(destination, "destination", node, "pass constant int axes")
        src, dst = (v if isinstance(v, list) else [v] for v in (src, dst))
        if len(src) != len(dst):
            raise self.error(TracingError, node, "np.moveaxis: source and destination differ in length", "")
        src = [self._axis(a, ndim, node) for a in src]
        dst = [self._axis(a, ndim, node) for a in dst]
        order = [n for n in range(ndim) if n not in src]  # NumPy's own construction
        for d, s in sorted(zip(dst, src)):
            order.insert(d, s)
        return self.array_transpose(x, tuple(order), node=node, hint=hint)

    def array_rollaxis(self, x: Any, axis: Any, start: Any = 0, *, node: ast.AST, hint: str | None) -> Any:
        ndim = len(self.shape(x))
        a = self._axis(axis, ndim, node)
        s = self._ints(start, "start", node, "pass a constant int start")
        s = s + ndim if s < 0 else s
        if not 0 <= s <= ndim:
            raise self.error(
                TracingError, node, f"np.rollaxis: start {start} out of range", f"pass 0 to {ndim}"
            )
        if a < s:
            s -= 1
        order = [n for n in range(ndim) if n != a]
        order.insert(s, a)
        return self.array_transpose(x, tuple(order), node=node, hint=hint)

    # copies along an axis

    def array_repeat(self, x: Any, repeats: Any, axis: Any = None, *, node: ast.AST, hint: str | None) -> Any:
        """An int count: reshape, broadcast, reshape (the adjoint sums the copies); counts per
        element: a fancy `Index` (its adjoint accumulates)."""
        x = self._value(x, node)
        counts = self._ints(repeats, "the repeats", node, "pass constant int repeats")
        if axis is None:
            x, axis = self._flat(x, node), 0
        shape = self.shape(x)
        if not shape:
            x, shape = self._as_shape(x, (1,), node), (1,)
        a = self._axis(axis, len(shape), node)
        if isinstance(counts, list) and len(counts) == 1:
            counts = counts[0]
        if isinstance(counts, list) or (isinstance(counts, int) and counts < 0):
            try:
                positions = np.repeat(np.arange(shape[a]), counts).tolist()
            except ValueError as exc:
                raise self.error(
                    TracingError, node, f"np.repeat: {exc}", f"give one count, or {shape[a]} counts"
                ) from None
            return self._take(x, arrays.along_axis(a, positions), node, hint)
        if counts == 1:
            return x
        inner = (*shape[: a + 1], 1, *shape[a + 1 :])
        wide = self.op(
            arrays.Broadcast,
            [self._as_shape(x, inner, node)],
            (*shape[: a + 1], counts, *shape[a + 1 :]),
            None,
            node,
        )
        return self._as_shape(wide, (*shape[:a], shape[a] * counts, *shape[a + 1 :]), node, hint)

    def array_tile(self, x: Any, reps: Any, *, node: ast.AST, hint: str | None) -> Any:
        """Interleave ones, broadcast, reshape: NumPy's result; the adjoint sums the copies."""
        x = self._value(x, node)
        counts = self._ints(reps, "reps", node, "pass constant int reps")
        counts = counts if isinstance(counts, list) else [counts]
        shape = self.shape(x)
        ndim = max(len(counts), len(shape))
        counts = [1] * (ndim - len(counts)) + counts
        shape = (1,) * (ndim - len(shape)) + shape
        x = self._as_shape(x, shape, node)
        if all(c == 1 for c in counts):
            return x
        spread = tuple(n for pair in zip([1] * ndim, shape) for n in pair)
        wide = tuple(n for pair in zip(counts, shape) for n in pair)
        big = self.op(arrays.Broadcast, [self._as_shape(x, spread, node)], wide, None, node)
        return self._as_shape(big, tuple(c * n for c, n in zip(counts, shape)), node, hint)

    def array_broadcast_to(self, x: Any, shape: Any, *, node: ast.AST, hint: str | None) -> Any:
        x = self._value(x, node)
        target = self._ints(shape, "the shape", node, "pass a constant shape")
        target = tuple(target) if isinstance(target, list) else (target,)
        try:
            fits = np.broadcast_shapes(self.shape(x), target) == target
        except ValueError:
            fits = False
        if not fits:
            raise self.error(
                TracingError,
                node,
                f"cannot broadcast an array of shape {self.shape(x)} to {target}",
                "give a shape the array broadcasts to (its axes of length 1 or missing ones grow)",
            )
        return x if self.shape(x) == target else self.op(arrays.Broadcast, [x], target, hint, node)

    def array_roll(self, x: Any, shift: Any, axis: Any = None, *, node: ast.AST, hint: str | None) -> Any:
        """Two slices joined the other way round (`Concatenate`)."""
        x = self._value(x, node)
        hint_text = (
            "pass a constant int shift (np.roll(x, 2)); a traced shift would change which elements move"
        )
        shifts = self._ints(shift, "the shift", node, hint_text)
        shape = self.shape(x)
        if axis is None:
            total = sum(shifts) if isinstance(shifts, list) else shifts
            flat = self._flat(x, node)
            return self._as_shape(self._rolled(flat, total, 0, node), shape, node, hint)
        axes = self._ints(axis, "the axis", node, "pass constant int axes")
        axes = axes if isinstance(axes, list) else [axes]
        shifts = shifts if isinstance(shifts, list) else [shifts] * len(axes)
        if len(shifts) != len(axes):
            raise self.error(
                TracingError, node, "np.roll: shift and axis differ in length", "give one shift per axis"
            )
        for s, a in zip(shifts, axes):
            x = self._rolled(x, s, self._axis(a, len(shape), node), node)
        return x

    def _rolled(self, x: Any, shift: int, axis: int, node: ast.AST) -> Any:
        n = self.shape(x)[axis]
        shift = shift % n if n else 0
        if not shift:
            return x
        parts = [self._slice(x, axis, n - shift, None, node), self._slice(x, axis, None, n - shift, node)]
        return self.op(arrays.Concatenate, parts, axis, None, node)

    def array_flip(self, x: Any, axis: Any = None, *, node: ast.AST, hint: str | None) -> Any:
        """A reversed slice along each axis: one `Index` (its adjoint scatters back)."""
        x = self._value(x, node)
        ndim = len(self.shape(x))
        axes = (
            list(range(ndim))
            if axis is None
            else self._ints(axis, "the axis", node, "pass constant int axes")
        )
        axes = {self._axis(a, ndim, node) for a in (axes if isinstance(axes, list) else [axes])}
        if not axes:
            return x
        index = tuple(("slice", None, None, -1 if d in axes else None) for d in range(max(axes) + 1))
        return self._take(x, index, node, hint)

    def _at_least(self, x: Any, ndim: int, node: ast.AST, name: str) -> None:
        if len(self.shape(x)) < ndim:
            raise self.error(
                TracingError,
                node,
                f"np.{name} needs an array of at least {ndim} dimensions, not shape {self.shape(x)}",
                f"pass an array of {ndim} or more dimensions",
            )

    def array_fliplr(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        self._at_least(x, 2, node, "fliplr")
        return self.array_flip(x, 1, node=node, hint=hint)

    def array_flipud(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        self._at_least(x, 1, node, "flipud")
        return self.array_flip(x, 0, node=node, hint=hint)

    def array_rot90(self, x: Any, k: Any = 1, axes: Any = (0, 1), *, node: ast.AST, hint: str | None) -> Any:
        """NumPy's own composition of flips and a transpose."""
        x = self._value(x, node)
        ndim = len(self.shape(x))
        turns = self._ints(k, "k", node, "pass a constant int k") % 4
        pair = self._ints(axes, "the axes", node, "pass two constant int axes")
        if not isinstance(pair, list) or len(pair) != 2:
            raise self.error(TracingError, node, "np.rot90 takes two axes", "pass axes=(0, 1)")
        a, b = (self._axis(v, ndim, node) for v in pair)
        if a == b:
            raise self.error(
                TracingError, node, "np.rot90: the two axes are the same", "pass two different axes"
            )
        if turns == 0:
            return x
        if turns == 2:
            return self.array_flip(x, (a, b), node=node, hint=hint)
        order = list(range(ndim))
        order[a], order[b] = order[b], order[a]
        if turns == 1:
            return self.array_transpose(
                self.array_flip(x, b, node=node, hint=None), tuple(order), node=node, hint=hint
            )
        return self.array_flip(
            self.array_transpose(x, tuple(order), node=node, hint=None), b, node=node, hint=hint
        )

    # triangles and diagonals

    def _triangle(self, x: Any, k: Any, upper: bool, node: ast.AST, hint: str | None) -> Any:
        """`x` times NumPy's own mask `np.tri(m, n, k)` (or one minus it, above the diagonal)."""
        x = self._value(x, node)
        shape = self.shape(x)
        if not shape:
            raise self.error(TracingError, node, "np.tril / np.triu of a number", "pass a matrix")
        offset = self._ints(k, "k", node, "pass a constant int k")
        m, n = shape[-2:] if len(shape) >= 2 else (shape[0], shape[0])
        mask = self.op(arrays.Constant, [], ("tri", (m, n, offset - 1 if upper else offset)), None, node)
        return self.node(x * (1 - mask) if upper else x * mask, hint, node)

    def array_tril(self, x: Any, k: Any = 0, *, node: ast.AST, hint: str | None) -> Any:
        return self._triangle(x, k, False, node, hint)

    def array_triu(self, x: Any, k: Any = 0, *, node: ast.AST, hint: str | None) -> Any:
        return self._triangle(x, k, True, node, hint)

    def array_diag(self, x: Any, k: Any = 0, *, node: ast.AST, hint: str | None) -> Any:
        """A vector to a matrix (a `Scatter`, whose adjoint reads the diagonal back), a matrix
        to its k-th diagonal (a fancy `Index`)."""
        x = self._value(x, node)
        shape = self.shape(x)
        offset = self._ints(k, "k", node, "pass a constant int k")
        if len(shape) == 1:
            size = shape[0] + abs(offset)
            rows = [i + max(-offset, 0) for i in range(shape[0])]
            cols = [i + max(offset, 0) for i in range(shape[0])]
            return self.op(arrays.Scatter, [x], ((rows, cols), (size, size)), hint, node)
        if len(shape) == 2:
            return self.array_diagonal(x, offset, node=node, hint=hint)
        raise self.error(TracingError, node, f"np.diag of shape {shape}", "pass a vector or a matrix")

    def array_diagonal(
        self, x: Any, offset: Any = 0, axis1: Any = 0, axis2: Any = 1, *, node: ast.AST, hint: str | None
    ) -> Any:
        x = self._value(x, node)
        ndim = len(self.shape(x))
        if ndim < 2:
            raise self.error(TracingError, node, "np.diagonal of fewer than 2 dimensions", "pass a matrix")
        k = self._ints(offset, "the offset", node, "pass a constant int offset")
        a, b = self._axis(axis1, ndim, node), self._axis(axis2, ndim, node)
        if a == b:
            raise self.error(TracingError, node, "np.diagonal: axis1 and axis2 are the same", "pass two axes")
        rest = [d for d in range(ndim) if d not in (a, b)]
        moved = self.array_transpose(x, (*rest, a, b), node=node, hint=None)
        m, n = self.shape(moved)[-2:]
        rows = [i for i in range(m) if 0 <= i + k < n]
        return self._take(moved, ("...", rows, [i + k for i in rows]), node, hint)

    # joining and splitting

    def _joined(
        self, parts: Any, ndim: int, axis: int, node: ast.AST, hint: str | None, columns: bool = False
    ) -> Any:
        if not isinstance(parts, tuple) and len(self.shape(parts)) >= 1:
            # an array is the sequence of its rows, as NumPy iterates it
            parts = tuple(self._take(parts, (k,), node) for k in range(self.shape(parts)[0]))
        items = [self._value(p, node) for p in self._parts(parts, node)]
        shaped = []
        for item in items:
            shape = self.shape(item)
            if columns and len(shape) < 2:
                shape = (max(math.prod(shape), 1), 1)
            elif len(shape) < ndim:
                shape = _at_least_shape(shape, ndim)
            shaped.append(self._as_shape(item, shape, node))
        if axis < 0:  # hstack: along the first axis for vectors, the second otherwise
            axis = 0 if len(self.shape(shaped[0])) == 1 else 1
        return self.op(arrays.Concatenate, shaped, axis, hint, node)

    def array_hstack(
        self, parts: Any, *, dtype: Any = None, casting: str = "same_kind", node: ast.AST, hint: str | None
    ) -> Any:
        self._float_result(None, dtype, casting, node)
        return self._joined(parts, 1, -1, node, hint)

    def array_vstack(
        self, parts: Any, *, dtype: Any = None, casting: str = "same_kind", node: ast.AST, hint: str | None
    ) -> Any:
        self._float_result(None, dtype, casting, node)
        return self._joined(parts, 2, 0, node, hint)

    def array_dstack(self, parts: Any, *, node: ast.AST, hint: str | None) -> Any:
        return self._joined(parts, 3, 2, node, hint)

    def array_column_stack(self, parts: Any, *, node: ast.AST, hint: str | None) -> Any:
        return self._joined(parts, 2, 1, node, hint, columns=True)

    def array_append(self, x: Any, values: Any, axis: Any = None, *, node: ast.AST, hint: str | None) -> Any:
        x, values = self._value(x, node), self._value(values, node)
        if axis is None:
            return self.op(arrays.Concatenate, [self._flat(x, node), self._flat(values, node)], 0, hint, node)
        a = self._axis(axis, len(self.shape(x)), node)
        return self.op(arrays.Concatenate, [x, values], a, hint, node)

    def _split(
        self, x: Any, sections: Any, axis: Any, node: ast.AST, even: bool, least: int = 1
    ) -> ListValue:
        """The parts as a list of slices (each an `Index`; the adjoint scatters each back)."""
        x = self._value(x, node)
        shape = self.shape(x)
        if len(shape) < least:
            label = ast.unparse(node.func) if isinstance(node, ast.Call) else "split"
            raise self.error(
                TracingError,
                node,
                f"`{label}` of an array of shape {shape}",
                f"pass an array of {least} or more dimensions",
            )
        a = self._axis(axis, len(shape), node)
        n = shape[a]
        where = self._ints(sections, "indices_or_sections", node, "pass a constant int or list of ints")
        if isinstance(where, list):
            bounds = [0, *where, n]
        else:
            if where <= 0 or (even and n % where):
                raise self.error(
                    TracingError,
                    node,
                    f"an axis of length {n} does not split into {where} equal parts",
                    "give a number of parts that divides the length, or use np.array_split",
                )
            size, extra = divmod(n, where)
            sizes = [size + 1] * extra + [size] * (where - extra)
            bounds = [0, *np.cumsum(sizes).tolist()]
        return ListValue(self._slice(x, a, start, stop, node) for start, stop in itertools.pairwise(bounds))

    def array_split(
        self, x: Any, indices_or_sections: Any, axis: Any = 0, *, node: ast.AST, hint: str | None
    ) -> Any:
        return self._split(x, indices_or_sections, axis, node, even=True)

    def array_array_split(
        self, x: Any, indices_or_sections: Any, axis: Any = 0, *, node: ast.AST, hint: str | None
    ) -> Any:
        return self._split(x, indices_or_sections, axis, node, even=False)

    def array_hsplit(self, x: Any, indices_or_sections: Any, *, node: ast.AST, hint: str | None) -> Any:
        axis = 1 if len(self.shape(x)) > 1 else 0
        return self._split(x, indices_or_sections, axis, node, even=True)

    def array_vsplit(self, x: Any, indices_or_sections: Any, *, node: ast.AST, hint: str | None) -> Any:
        return self._split(x, indices_or_sections, 0, node, even=True, least=2)

    def array_dsplit(self, x: Any, indices_or_sections: Any, *, node: ast.AST, hint: str | None) -> Any:
        return self._split(x, indices_or_sections, 2, node, even=True, least=3)

    def _atleast(self, arys: tuple[Any, ...], ndim: int, node: ast.AST, hint: str | None) -> Any:
        parts = []
        for ary in arys:
            x = self._value(ary, node)
            parts.append(self._as_shape(x, _at_least_shape(self.shape(x), ndim), node, hint))
        return parts[0] if len(parts) == 1 else ListValue(parts)

    def array_atleast_1d(self, *arys: Any, node: ast.AST, hint: str | None) -> Any:
        return self._atleast(arys, 1, node, hint)

    def array_atleast_2d(self, *arys: Any, node: ast.AST, hint: str | None) -> Any:
        return self._atleast(arys, 2, node, hint)

    def array_atleast_3d(self, *arys: Any, node: ast.AST, hint: str | None) -> Any:
        return self._atleast(arys, 3, node, hint)

    def array_pad(
        self,
        x: Any,
        pad_width: Any,
        mode: str = "constant",
        *,
        constant_values: Any = 0,
        node: ast.AST,
        hint: str | None,
    ) -> Any:
        """Constant mode: the array scattered into the padded shape (its adjoint reads the
        interior back), plus the constant times the border's mask."""
        if mode != "constant":
            raise self.error(
                TracingError,
                node,
                f"np.pad with mode={mode!r}: symgrad pads with mode='constant' only",
                "pad with a constant, or join slices yourself: np.concatenate([x[:1], x, x[-1:]]) repeats the edges",
            )
        x = self._value(x, node)
        shape = self.shape(x)
        widths = np.asarray(self._static(pad_width, "pad_width", node, "pass constant int widths"))
        try:
            widths = np.broadcast_to(widths.astype(np.intp), (len(shape), 2))
        except ValueError:
            raise self.error(
                TracingError,
                node,
                f"np.pad: pad_width {widths.tolist()} for shape {shape}",
                "pass ((before, after), ...)",
            ) from None
        padded = tuple(int(b + n + e) for n, (b, e) in zip(shape, widths))
        index = tuple(("slice", int(b), int(b + n), None) for n, (b, _) in zip(shape, widths))
        if isinstance(constant_values, tuple) or self.shape(constant_values):
            raise self.error(
                TracingError,
                node,
                "np.pad with constant_values per axis",
                "pass one number as constant_values",
            )
        fill = sympy.sympify(_plain(constant_values))
        plain_zero = not fill.free_symbols and fill == 0
        inside = self.op(arrays.Scatter, [x], (index, padded), hint if plain_zero else None, node)
        if plain_zero:
            return inside
        ones = self.op(arrays.Full, [], (shape, 1.0), None, node)
        interior = self.op(arrays.Scatter, [ones], (index, padded), None, node)
        return self.node(inside + fill * (1 - interior), hint, node)

    def array_diff(self, x: Any, n: Any = 1, axis: Any = -1, *, node: ast.AST, hint: str | None) -> Any:
        """`n` differences of neighbouring slices."""
        x = self._value(x, node)
        count = self._ints(n, "n", node, "pass a constant int n")
        a = self._axis(axis, len(self.shape(x)), node)
        for _ in range(count):
            later, earlier = self._slice(x, a, 1, None, node), self._slice(x, a, None, -1, node)
            x = self.node(later - earlier, hint, node)
        return x

    def array_gradient(
        self, f: Any, *varargs: Any, axis: Any = None, edge_order: Any = 1, node: ast.AST, hint: str | None
    ) -> Any:
        """NumPy's own steps: central differences inside, one-sided ones (`edge_order` 1 or 2)
        at both ends, along each axis; linear in `f` (its adjoint follows from the slices).
        Spacings: numbers (traced ones too), or constant coordinate arrays."""
        f = self._value(f, node)
        shape = self.shape(f)
        if not shape:
            raise self.error(
                TracingError, node, "np.gradient of a number", "pass an array of 1 or more dimensions"
            )
        order = self._ints(edge_order, "edge_order", node, "pass edge_order=1 or edge_order=2")
        if order not in (1, 2):
            raise self.error(
                TracingError, node, f"np.gradient: edge_order={order!r}", "pass edge_order=1 or edge_order=2"
            )
        if axis is None:
            axes = list(range(len(shape)))
        else:
            items = self._ints(axis, "the axis", node, "pass a constant int axis or tuple of axes")
            axes = [self._axis(a, len(shape), node) for a in (items if isinstance(items, list) else [items])]
            if len(set(axes)) != len(axes):
                raise self.error(
                    TracingError, node, "np.gradient: an axis given twice", "give each axis once"
                )
        if len(varargs) == 1 and not isinstance(varargs[0], tuple) and not self.shape(varargs[0]):
            spacings = list(varargs) * len(axes)
        elif len(varargs) in (0, len(axes)):
            spacings = list(varargs) or [1.0] * len(axes)
        else:
            raise self.error(
                TracingError,
                node,
                f"np.gradient: {len(varargs)} spacings for {len(axes)} axes",
                "give one spacing, or one per axis",
            )
        parts = [self._gradient_along(f, a, h, order, node) for a, h in zip(axes, spacings)]
        if len(parts) == 1:
            return self.node(parts[0], hint, node) if not isinstance(parts[0], sympy.Symbol) else parts[0]
        return tuple(parts)

    def _gradient_along(self, f: Any, axis: int, spacing: Any, order: int, node: ast.AST) -> Any:
        n = self.shape(f)[axis]
        if n < order + 1:
            raise self.error(
                TracingError,
                node,
                f"np.gradient along an axis of length {n}: edge_order={order} needs {order + 1} or more elements",
                "pass a longer array, or edge_order=1",
            )
        ndim = len(self.shape(f))

        def at(start: int, stop: int | None) -> Any:
            return sympy.sympify(self._slice(f, axis, start, stop, node))

        if isinstance(spacing, tuple) or self.shape(spacing):  # coordinates: NumPy's uneven steps
            coords = self._value(spacing, node)
            if self.shape(coords) != (n,):
                raise self.error(
                    TracingError,
                    node,
                    f"np.gradient: coordinates of shape {self.shape(coords)} for an axis of length {n}",
                    f"give {n} coordinates, or one number as the spacing",
                )

            def step(k: int) -> Any:  # x[k + 1] - x[k], a number
                return sympy.sympify(self._take(coords, (k + 1,), node)) - sympy.sympify(
                    self._take(coords, (k,), node)
                )

            if order == 1:
                first = (at(1, 2) - at(0, 1)) / step(0)
                last = (at(n - 1, None) - at(n - 2, n - 1)) / step(n - 2)
            else:
                d1, d2 = step(0), step(1)
                first = (
                    -(2.0 * d1 + d2) / (d1 * (d1 + d2)) * at(0, 1)
                    + (d1 + d2) / (d1 * d2) * at(1, 2)
                    - d1 / (d2 * (d1 + d2)) * at(2, 3)
                )
                d1, d2 = step(n - 3), step(n - 2)
                last = (
                    d2 / (d1 * (d1 + d2)) * at(n - 3, n - 2)
                    - (d2 + d1) / (d1 * d2) * at(n - 2, n - 1)
                    + (2.0 * d2 + d1) / (d2 * (d1 + d2)) * at(n - 1, None)
                )
            if n > 2:
                column = tuple(n - 2 if d == axis else 1 for d in range(ndim))  # broadcasts along axis
                ahead = sympy.sympify(self._slice(coords, 0, 1, None, node))
                steps = self.node(ahead - sympy.sympify(self._slice(coords, 0, None, -1, node)), None, node)
                dx1, dx2 = (
                    sympy.sympify(self._as_shape(self._slice(steps, 0, lo, hi, node), column, node))
                    for lo, hi in ((None, -1), (1, None))
                )
                a = -dx2 / (dx1 * (dx1 + dx2))
                b = (dx2 - dx1) / (dx1 * dx2)
                c = dx1 / (dx2 * (dx1 + dx2))
                inside = a * at(0, n - 2) + b * at(1, n - 1) + c * at(2, None)
        else:
            dx = sympy.sympify(_plain(spacing))
            if order == 1:
                first = (at(1, 2) - at(0, 1)) / dx
                last = (at(n - 1, None) - at(n - 2, n - 1)) / dx
            else:
                first = (-1.5 / dx) * at(0, 1) + (2.0 / dx) * at(1, 2) + (-0.5 / dx) * at(2, 3)
                last = (
                    (0.5 / dx) * at(n - 3, n - 2)
                    + (-2.0 / dx) * at(n - 2, n - 1)
                    + (1.5 / dx) * at(n - 1, None)
                )
            if n > 2:
                inside = (at(2, None) - at(0, n - 2)) / (2.0 * dx)
        pieces = [first, inside, last] if n > 2 else [first, last]
        nodes = [self.node(p, None, node) for p in pieces]
        return self.op(arrays.Concatenate, nodes, axis, None, node)

    def array_linspace(
        self, start: Any, stop: Any, num: Any = 50, endpoint: bool = True, *, node: ast.AST, hint: str | None
    ) -> Any:
        """NumPy's steps for traced scalar ends: arange(num) * step + start, the last point
        set to `stop` exactly."""
        count = self._ints(num, "num", node, "pass a constant int num")
        ends = [self._value(v, node) for v in (start, stop)]
        if any(self.shape(v) for v in ends):
            raise self.error(
                TracingError, node, "np.linspace with array ends", "pass numbers as start and stop"
            )
        if count == 0:
            return self.op(arrays.Constant, [], ("linspace", (0.0, 1.0, 0)), hint, node)
        first, last = ends
        if count == 1:
            return self._as_shape(first, (1,), node, hint)
        div = count - 1 if endpoint else count
        steps = self.op(arrays.Constant, [], ("arange", (float(count),)), None, node)
        line = self.node(steps * self.node((last - first) / div, None, node) + first, None, node)
        if not endpoint:
            return self.node(line, hint, node)
        return self.op(arrays.SetItem, [line, self._value(last, node)], (-1,), hint, node)

    def _outside_argument(self, node: ast.AST, position: int, name: str) -> npt.NDArray[Any] | None:
        """The int array from outside the function passed as argument `position` (or `name=`)
        of the call `node`: a constant of the program, as in `x[IDX]`."""
        if not isinstance(node, ast.Call):
            return None
        given = [k.value for k in node.keywords if k.arg == name]
        item = node.args[position] if len(node.args) > position else given[0] if given else None
        return None if item is None else self._outside_array(item)
