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
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy

from . import arrays, cache, rules, runtime
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
    np.dot: "matmul",
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
}
for _name in ("logsumexp", "softmax", "log_softmax"):
    if _scipy_special(_name) is not None:
        ARRAY_CALLS[_scipy_special(_name)] = _name
ARRAY_CALLS.update(LINALG_CALLS)  # einsum, norm, solve, ...: traced by linalgtrace

# Constant arrays from static arguments: numpy.arange(4.0), numpy.eye(n), ...
CONSTRUCTORS: dict[Any, str] = {getattr(np, name): name for name in arrays.CONSTRUCTORS}

# Handlers whose first argument is a sequence of parts, not one array-like value.
_TAKES_PARTS = frozenset({"stack", "concatenate"})

# Methods and properties of traced arrays: `x.sum()`, `x.T`, `x.shape`.
METHODS = {"sum", "mean", "prod", "max", "min", "dot", "transpose", "reshape", "ravel", "flatten"}
METHODS |= {"squeeze", "astype", "clip", "copy"}

# What `t = x.reshape(...)` and friends return in NumPy: a view of `x` (an in-place update of
# `t` changes `x`), not a copy as `x.copy()`, `x.flatten()` or `x.astype(float)`.
VIEW_METHODS = frozenset({"reshape", "ravel", "squeeze", "transpose", "expand_dims"})

# The casts that keep float64 values: identities here.
_FLOAT64_NAMES = frozenset({"float", "float64", "double", "f8", "d"})
PROPERTIES = {"T": "transpose", "shape": "shape", "ndim": "ndim", "size": "size"}


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
            arrays_in = 2 if name in ("matmul", "outer") or name in TWO_ARRAYS else 1
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

    def array_trace(self, x: Any, offset: Any = 0, *, node: ast.AST, hint: str | None) -> Any:
        shape = self.shape(x)
        offset = _plain(offset)
        if len(shape) != 2 or not isinstance(offset, int):
            raise self.error(
                TracingError, node, f"np.trace of shape {shape}", "pass a matrix and a constant int offset"
            )
        if shape[0] == shape[1] and offset == 0:
            return self.op(arrays.Trace, [x], (), hint, node)
        # another diagonal: the sum of its elements, gathered by a fancy index
        rows = [i for i in range(shape[0]) if 0 <= i + offset < shape[1]]
        if not rows:
            return 0.0
        diagonal = self.op(arrays.Index, [x], (rows, [i + offset for i in rows]), None, node)
        return self.op(arrays.ArraySum, [diagonal], (None, False), hint, node)

    def _square(self, a: Any, node: ast.AST) -> tuple[int, ...]:
        shape = self.shape(a)
        if len(shape) != 2 or shape[0] != shape[1]:
            label = ast.unparse(node.func) if isinstance(node, ast.Call) else "this function"
            what = f"an array of shape {shape}" if shape else "a number"
            raise self.error(
                TracingError,
                node,
                f"`{label}` of {what}: symgrad supports one square matrix here",
                "pass a square 2-D array (stacks of matrices are not supported yet)",
            )
        return shape

    def array_inv(self, a: Any, *, node: ast.AST, hint: str | None) -> Any:
        self._square(a, node)
        return self.op(arrays.Inv, [a], (), hint, node)

    def multi(
        self, cls: type[arrays.MultiOp], a: Any, params: Any, node: ast.AST, square: bool = True
    ) -> Any:
        """All results of one call computing several values (a `graph.Multi` node), as
        NumPy's named tuple of them: `sign, logdet = ...`, `[1]` and `.logabsdet` all read it.
        `square`: the operation takes a square matrix (svd takes any)."""
        if square:
            self._square(a, node)
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
        return self.multi(arrays.SlogDet, a, (), node)

    def array_eigh(self, a: Any, UPLO: str = "L", *, node: ast.AST, hint: str | None) -> Any:  # noqa: N803 - NumPy's name
        if UPLO not in ("L", "U"):
            raise self.error(TracingError, node, f"UPLO={UPLO!r}", "pass UPLO='L' or UPLO='U'")
        return self.multi(arrays.Eigh, a, UPLO, node)

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

    def array_stack(self, parts: Any, axis: int = 0, *, node: ast.AST, hint: str | None) -> Any:
        items = self._parts(parts, node)
        shape = tuple(np.broadcast_shapes(*[self.shape(p) for p in items]))
        items = [self._broadcast(p, shape, node) for p in items]
        return self.op(arrays.Stack, items, axis % (len(shape) + 1), hint, node)

    def array_concatenate(self, parts: Any, axis: int = 0, *, node: ast.AST, hint: str | None) -> Any:
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
        if kwargs or any(isinstance(a, sympy.Basic) and a.free_symbols for a in args):
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

    def _index_array(self, value: np.ndarray, item: ast.expr, node: ast.AST) -> list[Any]:
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

    def _outside_array(self, item: ast.expr) -> np.ndarray | None:
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

    def _constant_array(self, symbol: sympy.Symbol) -> np.ndarray | None:
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
