"""Tracing of array-level code: reductions, linear algebra, indexing and shapes.

A mixin of the Tracer. Every handler needs the shapes of its operands, which exist only when
the graph is traced for one combination of argument shapes; without them it raises
`ShapesNeeded`, and the caller traces again with the shapes of the actual arguments.
"""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy

from . import arrays, runtime
from .errors import TracingError, UnsupportedSyntaxError


class ShapesNeeded(Exception):  # noqa: N818 - a signal, not an error the user sees
    """The function uses array-level operations: trace it for concrete argument shapes."""


def _scipy_logsumexp() -> Any:
    try:
        from scipy.special import logsumexp
    except ImportError:  # scipy is optional
        return None
    return logsumexp


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
    np.zeros_like: "zeros_like",
    np.ones_like: "ones_like",
    np.stack: "stack",
    np.concatenate: "concatenate",
    np.shape: "shape",
    np.size: "size",
    np.ndim: "ndim",
    len: "len",
    runtime.logsumexp: "logsumexp",
}
if _scipy_logsumexp() is not None:
    ARRAY_CALLS[_scipy_logsumexp()] = "logsumexp"

# Constant arrays from static arguments: numpy.arange(4.0), numpy.eye(n), ...
CONSTRUCTORS: dict[Any, str] = {getattr(np, name): name for name in arrays.CONSTRUCTORS}

# Handlers whose first argument is a sequence of parts, not one array-like value.
_TAKES_PARTS = frozenset({"stack", "concatenate"})

# Methods and properties of traced arrays: `x.sum()`, `x.T`, `x.shape`.
METHODS = {"sum", "mean", "prod", "max", "min", "dot", "transpose"}
PROPERTIES = {"T": "transpose", "shape": "shape", "ndim": "ndim", "size": "size"}


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
    if isinstance(value, tuple):
        return any(_has_traced_leaf(v) for v in value)
    return isinstance(value, sympy.Basic) and bool(value.free_symbols)


def _plain(value: Any) -> Any:
    """A constant argument as a plain Python value (ints, floats, tuples of them)."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, sympy.Integer):
        return int(value)
    if isinstance(value, sympy.Float):
        return float(value)
    return value


class ArrayTracing:
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
            arrays_in = 2 if name in ("matmul", "outer") else 1
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
        self, x: Any, axis: Any = None, keepdims: bool = False, *, node: ast.AST, hint: str | None
    ) -> Any:
        if not self.shape(x):
            return x
        return self._reduce(arrays.LogSumExp, x, axis, keepdims, node, hint)

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
                    "`@` needs 1-D or 2-D arrays on both sides",
                    "multiply numbers with `*`",
                )
            return self.node(sympy.sympify(a) * sympy.sympify(b), hint, node)  # np.dot(2.0, x)
        return self.op(arrays.MatMul, [a, b], (), hint, node)

    def array_transpose(self, x: Any, axes: Any = None, *, node: ast.AST, hint: str | None) -> Any:
        ndim = len(self.shape(x))
        order = tuple(reversed(range(ndim))) if axes is None else tuple(a % ndim for a in axes)
        if ndim < 2 or order == tuple(range(ndim)):
            return x
        return self.op(arrays.Transpose, [x], order, hint, node)

    def array_outer(self, a: Any, b: Any, *, node: ast.AST, hint: str | None) -> Any:
        for value in (a, b):
            if len(self.shape(value)) != 1:
                raise self.error(TracingError, node, "np.outer takes two vectors here", "pass 1-D arrays")
        return self.op(arrays.Outer, [a, b], (), hint, node)

    def array_trace(self, x: Any, *, node: ast.AST, hint: str | None) -> Any:
        shape = self.shape(x)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise self.error(TracingError, node, f"np.trace of shape {shape}", "pass a square matrix")
        return self.op(arrays.Trace, [x], (), hint, node)

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
        """`x[i]`, `x[i, j]`, `x[a:b]` of a traced array, with constant indices."""
        shape = self.shape(base)
        if not shape:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                "indexing a scalar (this argument is a number here)",
                "pass an array to index, or pass the elements as separate arguments",
            )
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        index = tuple(self._index_item(item, node) for item in items)
        try:
            result_shape = arrays.indexed_shape(shape, index)
        except IndexError as exc:
            raise self.error(
                TracingError, node, f"index out of range for shape {shape}: {exc}", "use a smaller index"
            ) from None
        del result_shape
        return self.op(arrays.Index, [base], index, hint, node)

    def _index_item(self, item: ast.expr, node: ast.AST) -> Any:
        if isinstance(item, ast.Slice):
            bounds = [
                None if b is None else self._static_int(b, node) for b in (item.lower, item.upper, item.step)
            ]
            return ("slice", *bounds)
        return self._static_int(item, node)

    def _static_int(self, item: ast.expr, node: ast.AST) -> int:
        value = self.expr(item)  # type: ignore[attr-defined]
        if isinstance(value, sympy.Integer):
            value = int(value)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, sympy.Basic) and value.free_symbols:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                "an index computed from traced values (fancy indexing)",
                "index with constants, loop counters or static arguments",
            )
        raise self.error(
            UnsupportedSyntaxError,
            node,
            f"unsupported index {ast.unparse(item)!r}",
            "use ints and slices with constant bounds (x[i], x[i, j], x[a:b])",
        )
