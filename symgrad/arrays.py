"""Array-level operations (reductions, linear algebra, indexing): shape, VJP, JVP and printing.

Elementwise code needs none of this: a SymPy symbol stands for a whole array and NumPy
broadcasting does the rest. These operations are the exceptions. Each is a SymPy function
whose first arguments are operands and whose last argument is a `Str` holding its static
parameters (axes, index, shape); each knows its result shape, its VJP (the adjoint of a
reduction broadcasts, the adjoint of a broadcast sums) and its JVP, and prints as NumPy.
The tracer only builds them when the argument shapes are known (one variant per shape).
"""

from __future__ import annotations

import ast
import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy
from sympy.core.symbol import Str

from .complexes import ComplexUnsupported

Shape = tuple[int, ...]
Add = Callable[[Any], Any]  # appends an expression to the graph and returns its symbol


@functools.lru_cache(maxsize=4096)
def _decode(text: str) -> Any:
    return ast.literal_eval(text)


class ArrayOp(sympy.Function):
    """Base class: `operands` then one `Str` of static parameters."""

    @property
    def operands(self) -> tuple[Any, ...]:
        return self.args[:-1]  # type: ignore[no-any-return]

    @property
    def params(self) -> Any:
        return _decode(str(self.args[-1]))

    # How the operation treats a complex operand `a + i b` (see graph.Graph.add): "linear" in
    # its operands together (its parts are the operation of the parts), "bilinear" (a product,
    # expanded into four), or None: not supported on complex values.
    complex_form: str | None = None

    @classmethod
    def make(cls, operands: Sequence[Any], params: Any) -> Any:
        for operand in operands:  # the reverse pass sends adjoints to operands: they are graph values
            if isinstance(operand, sympy.Expr) and operand.has(sympy.I):
                if cls.complex_form is None:  # a + i b: the graph splits the result into parts
                    raise ComplexUnsupported(cls.__name__)
                continue
            assert isinstance(operand, (sympy.Symbol, sympy.Number)), f"{cls.__name__} operand {operand}"
        return cls(*operands, Str(repr(params)))

    def fdiff(self, argindex: int = 1) -> Any:  # never reached: diff.py uses vjp/jvp
        raise NotImplementedError(f"{type(self).__name__} has a VJP, not a scalar derivative")

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        raise NotImplementedError

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        """Contributions to each operand's adjoint (None: no gradient flows there)."""
        raise NotImplementedError

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        """The tangent of the result from the operands' tangents (0 where an operand has none)."""
        raise NotImplementedError

    def _pythoncode(self, printer: Any) -> str:  # array ops only ever run as NumPy code
        return str(self._numpycode(printer))

    def _sympystr(self, printer: Any) -> str:
        # As a function call: SymPy's own `Transpose` and `MatMul` printers (matrix expressions)
        # would otherwise be picked by class name, and fail on these nodes (`print(f.graph)`).
        return f"{type(self).__name__}({', '.join(str(printer._print(a)) for a in self.args)})"


def _p(printer: Any, value: Any) -> str:
    return str(printer._print(value))


def keep_shape(shape: Shape, axes: Sequence[int] | None) -> Shape:
    """The shape of a reduction over `axes` (None: all) with keepdims=True."""
    return tuple(1 if axes is None or i in axes else n for i, n in enumerate(shape))


def _reduced(shape: Shape, axes: Sequence[int] | None, keepdims: bool) -> Shape:
    if keepdims:
        return keep_shape(shape, axes)
    if axes is None:
        return ()
    return tuple(n for i, n in enumerate(shape) if i not in axes)


# --- shape plumbing: reshape, broadcast, sum_to, transpose -------------------------------------


class Reshape(ArrayOp):
    """`x.reshape(shape)` (C order): also `ravel`, `flatten`, `squeeze`, `expand_dims`."""

    complex_form = "linear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(self.params)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return [reshape(bar, shapes[0], add)]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return reshape(dots[0], tuple(self.params), add)

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.reshape({_p(printer, self.args[0])}, {tuple(self.params)!r})"


def reshaped(shape: Shape, wanted: Sequence[int]) -> Shape:
    """The shape `x.reshape(wanted)` has (one -1 stands for what is left), as NumPy checks it."""
    size = math.prod(shape)
    known = math.prod(n for n in wanted if n != -1)
    if list(wanted).count(-1) > 1 or any(n < -1 for n in wanted):
        raise ValueError(f"cannot reshape to {tuple(wanted)}: one -1 at most, no other negative length")
    if -1 in wanted:
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape an array of shape {shape} into {tuple(wanted)}")
        wanted = [size // known if n == -1 else n for n in wanted]
    if math.prod(wanted) != size:
        raise ValueError(f"cannot reshape an array of shape {shape} into {tuple(wanted)}")
    return tuple(int(n) for n in wanted)


def atom(x: Any, add: Add) -> Any:
    """`x` as a graph value (a symbol or a number), so an array operation can take it."""
    return x if isinstance(x, (sympy.Symbol, sympy.Number)) else add(x)


def reshape(x: Any, shape: Shape, add: Add) -> Any:
    return x if _is_scalar_number(x) else add(Reshape.make([atom(x, add)], tuple(shape)))


def _is_scalar_number(x: Any) -> bool:
    return bool(getattr(x, "is_Number", False))


class Broadcast(ArrayOp):
    """`numpy.broadcast_to(x, shape)`: a view, no memory. Its adjoint sums (`SumTo`)."""

    complex_form = "linear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(self.params)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return [sum_to(bar, tuple(self.params), shapes[0], add)]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return add(Broadcast.make([dots[0]], tuple(self.params)))

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.broadcast_to({_p(printer, self.args[0])}, {tuple(self.params)!r})"


class SumTo(ArrayOp):
    """Sum a broadcast value back to `shape`: the adjoint of broadcasting."""

    complex_form = "linear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(self.params)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return [add(Broadcast.make([bar], shapes[0]))]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return add(SumTo.make([dots[0]], tuple(self.params)))

    def _numpycode(self, printer: Any) -> str:
        x = _p(printer, self.args[0])
        target = tuple(self.params)
        if not target:
            return f"numpy.sum({x})"
        return f"sg.sum_to({x}, {target!r})"


def sum_to(value: Any, value_shape: Shape, target: Shape, add: Add) -> Any:
    """`value` (of `value_shape`) summed over the axes along which it was broadcast to `target`."""
    if value_shape == target or np.broadcast_shapes(value_shape, target) == target:
        return value  # already no larger than the target: broadcasting will spread it
    return add(SumTo.make([atom(value, add)], tuple(target)))


def broadcast(value: Any, value_shape: Shape, target: Shape, add: Add) -> Any:
    """`value` materialised (as a view) in the `target` shape, when it is smaller."""
    if value_shape == target:
        return value
    return add(Broadcast.make([atom(value, add)], tuple(target)))


class Transpose(ArrayOp):
    """`x.T` / `numpy.transpose(x, axes)`."""

    complex_form = "linear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(shapes[0][i] for i in self.params)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        inverse = tuple(int(i) for i in np.argsort(self.params))
        return [transpose(bar, inverse, add)]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return transpose(dots[0], tuple(self.params), add)

    def _numpycode(self, printer: Any) -> str:
        x = _p(printer, self.args[0])
        axes = tuple(self.params)
        if axes == tuple(reversed(range(len(axes)))):
            return f"{printer.parenthesize(self.args[0], 60)}.T" if len(axes) > 1 else x
        return f"numpy.transpose({x}, {axes!r})"


def transpose(x: Any, axes: Sequence[int], add: Add) -> Any:
    if _is_scalar_number(x) or tuple(axes) == tuple(range(len(axes))):
        return x
    return add(Transpose.make([atom(x, add)], tuple(axes)))


def matrix_transpose(x: Any, ndim: int, add: Add) -> Any:
    """Each matrix of a stack (`ndim` axes, the last two a matrix's) transposed, the batch
    axes kept: `x.T` of one matrix, `numpy.transpose(x, (0, 2, 1))` of a stack of them."""
    return transpose(x, (*range(ndim - 2), ndim - 1, ndim - 2), add)


def per_matrix(x: Any, batch: Shape, add: Add) -> Any:
    """A value per matrix of a stack (of shape `batch`) as shape (*batch, 1, 1), so that it
    multiplies each matrix elementwise; one matrix's (a scalar) is left as it is."""
    return reshape(x, (*batch, 1, 1), add) if batch else x


def matrix_sum(x: Any, ndim: int, add: Add) -> Any:
    """The sum of each matrix of a stack of `ndim` axes (all of one matrix's elements)."""
    axes = None if ndim == 2 else (ndim - 2, ndim - 1)
    return add(ArraySum.make([atom(x, add)], (axes, False)))


# --- reductions --------------------------------------------------------------------------------


class Reduction(ArrayOp):
    """Parameters: (axes, keepdims)."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        axes, keepdims = self.params
        return _reduced(shapes[0], axes, keepdims)

    def _spread(self, value: Any, shapes: Sequence[Shape], add: Add) -> Any:
        """A reduced value reshaped so that it broadcasts against the operand."""
        axes, keepdims = self.params
        if keepdims or axes is None:  # a full reduction is a scalar: it broadcasts as it is
            return value
        return reshape(value, keep_shape(shapes[0], axes), add)

    def _axis_text(self) -> str:
        axes, keepdims = self.params
        text = ""
        if axes is not None:
            text += f", axis={axes!r}"
        if keepdims:
            text += ", keepdims=True"
        return text


class ArraySum(Reduction):
    """`numpy.sum(x, axis, keepdims)`; `numpy.mean` is a sum divided by a count."""

    complex_form = "linear"

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return [self._spread(bar, shapes, add)]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return add(ArraySum.make([dots[0]], self.params))

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.sum({_p(printer, self.args[0])}{self._axis_text()})"


class ArrayProd(Reduction):
    """`numpy.prod(x, axis, keepdims)`; gradient out/x (not defined where x has zeros)."""

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        x = self.args[0]
        return [self._spread(bar, shapes, add) * self._spread(out, shapes, add) / x]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        x = self.args[0]
        return out * add(ArraySum.make([add(dots[0] / x)], self.params))

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.prod({_p(printer, self.args[0])}{self._axis_text()})"


class ArrayExtremum(Reduction):
    """`numpy.max` / `numpy.min` over axes: ties share the gradient evenly."""

    ufunc = "max"

    def _weights(self, out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        x = self.args[0]
        axes, _ = self.params
        hit = add(sympy.Piecewise((1, sympy.Eq(x, self._spread(out, shapes, add))), (0, True)))
        count = add(ArraySum.make([hit], (axes, True)))
        return hit / count

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return [self._spread(bar, shapes, add) * self._weights(out, shapes, add)]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        weights = add(dots[0] * self._weights(out, shapes, add))
        return add(ArraySum.make([weights], self.params))

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.{self.ufunc}({_p(printer, self.args[0])}{self._axis_text()})"


class ArrayMax(ArrayExtremum):
    ufunc = "max"


class ArrayMin(ArrayExtremum):
    ufunc = "min"


class LogSumExp(Reduction):
    """log(sum(exp(x))) over axes, computed stably (shifted by the maximum)."""

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        x = self.args[0]
        softmax = add(sympy.exp(x - self._spread(out, shapes, add)))
        return [self._spread(bar, shapes, add) * softmax]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        x = self.args[0]
        softmax = add(sympy.exp(x - self._spread(out, shapes, add)))
        return add(ArraySum.make([add(dots[0] * softmax)], self.params))

    def _numpycode(self, printer: Any) -> str:
        return f"sg.logsumexp({_p(printer, self.args[0])}{self._axis_text()})"


# --- linear algebra ----------------------------------------------------------------------------


class MatMul(ArrayOp):
    """`a @ b`, `numpy.matmul`, `numpy.dot` for 1-D and 2-D operands."""

    complex_form = "bilinear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return _matmul_shape(*shapes)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        a, b = self.args[:2]
        sa, sb = shapes
        if len(sa) > 2 or len(sb) > 2:
            return self._batched_vjp(bar, shapes, add)
        if len(sa) == 1 and len(sb) == 1:
            return [bar * b, bar * a]
        if len(sa) == 2 and len(sb) == 1:
            return [add(Outer.make([bar, b], ())), matmul(transpose(a, (1, 0), add), bar, add)]
        if len(sa) == 1 and len(sb) == 2:
            return [matmul(b, bar, add), add(Outer.make([a, bar], ()))]
        return [matmul(bar, transpose(b, (1, 0), add), add), matmul(transpose(a, (1, 0), add), bar, add)]

    def _batched_vjp(self, bar: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        """Stacks of matrices: the 2-D adjoints of each pair, summed over the batch axes along
        which an operand was broadcast; a 1-D operand's through einsum (it has no batch)."""
        from .linalg import Einsum, parse_einsum  # here: linalg imports this module

        a, b = self.args[:2]
        sa, sb = shapes
        out = _matmul_shape(sa, sb)
        if len(sa) >= 2 and len(sb) >= 2:
            swap_a = (*range(len(sa) - 2), len(sa) - 1, len(sa) - 2)
            swap_b = (*range(len(sb) - 2), len(sb) - 1, len(sb) - 2)
            ba = matmul(bar, transpose(b, swap_b, add), add)  # of shape (*batch, m, k)
            bb = matmul(transpose(a, swap_a, add), bar, add)  # of shape (*batch, k, n)
            return [
                sum_to(ba, (*out[:-2], sa[-2], sa[-1]), sa, add),
                sum_to(bb, (*out[:-2], sb[-2], sb[-1]), sb, add),
            ]
        left = "...mk" if len(sa) > 1 else "k"
        right = "...kn" if len(sb) > 1 else "k"
        result = "..." + ("m" if len(sa) > 1 else "") + ("n" if len(sb) > 1 else "")
        forward = parse_einsum(f"{left},{right}->{result}", [sa, sb])
        return Einsum.make([a, b], (forward, False)).vjp(bar, None, shapes, add)  # type: ignore[no-any-return]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        a, b = self.args[:2]
        terms = [
            matmul(dots[0], b, add) if dots[0] != 0 else 0,
            matmul(a, dots[1], add) if dots[1] != 0 else 0,
        ]
        return sympy.Add(*terms)

    def _numpycode(self, printer: Any) -> str:
        a, b = (printer.parenthesize(arg, 50) for arg in self.args[:2])
        return f"{a} @ {b}"


def _matmul_shape(sa: Shape, sb: Shape) -> Shape:
    """The shape of `a @ b`: stacks of matrices (more than 2-D) broadcast their batch axes."""
    if not sa or not sb:
        raise ValueError(f"matmul of shapes {sa} and {sb}: numbers have no matrix product")
    inner_a, inner_b = sa[-1], sb[0] if len(sb) == 1 else sb[-2]
    if inner_a != inner_b:
        raise ValueError(f"matmul shapes {sa} and {sb} do not align ({inner_a} != {inner_b})")
    if len(sa) <= 2 and len(sb) <= 2:
        return (*sa[:-1], *sb[1:])
    batch = tuple(np.broadcast_shapes(sa[:-2], sb[:-2]))  # ValueError when they do not broadcast
    return (*batch, *sa[-2:-1], *(sb[-1:] if len(sb) > 1 else ()))


def matmul(a: Any, b: Any, add: Add) -> Any:
    return add(MatMul.make([atom(a, add), atom(b, add)], ()))


class Outer(ArrayOp):
    """`numpy.outer(a, b)` of two vectors."""

    complex_form = "bilinear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return (math.prod(shapes[0]), math.prod(shapes[1]))

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        a, b = self.args[:2]
        return [matmul(bar, b, add), matmul(a, bar, add)]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        a, b = self.args[:2]
        terms = []
        if dots[0] != 0:
            terms.append(add(Outer.make([dots[0], b], ())))
        if dots[1] != 0:
            terms.append(add(Outer.make([a, dots[1]], ())))
        return sympy.Add(*terms)

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.outer({_p(printer, self.args[0])}, {_p(printer, self.args[1])})"


class Eye(ArrayOp):
    """`numpy.eye(n)`: a constant, from the adjoint of a trace."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        n = self.params
        return (n, n)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return []

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return sympy.S.Zero

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.eye({self.params})"


class Tri(ArrayOp):
    """`numpy.tri(n, n, k)`: ones at and below the k-th diagonal; the mask of the triangle
    `eigh` reads (params: n, k)."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        n, _ = self.params
        return (n, n)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return []

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return sympy.S.Zero

    def _numpycode(self, printer: Any) -> str:
        n, k = self.params
        return f"numpy.tri({n}, {n}, {k})"


class Trace(ArrayOp):
    """`numpy.trace(x)` of a square matrix."""

    complex_form = "linear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return ()

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return [bar * add(Eye.make([], shapes[0][0]))]  # bar is a scalar here

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return add(Trace.make([dots[0]], ()))

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.trace({_p(printer, self.args[0])})"


class Inv(ArrayOp):
    """`numpy.linalg.inv(a)` of a square matrix or a stack of them (shape (..., n, n), each
    inverted); also the adjoint of `slogdet` and `det`."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(shapes[0])

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        # d inv(A) = -inv(A) dA inv(A), so the adjoint is -inv(A)^T bar inv(A)^T, per matrix
        out_t = matrix_transpose(out, len(shapes[0]), add)
        return [-matmul(out_t, matmul(bar, out_t, add), add)]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return -matmul(out, matmul(dots[0], out, add), add)

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.linalg.inv({_p(printer, self.args[0])})"


# --- operations with several results (one LAPACK call each) ----------------------------------


class MultiOp(ArrayOp):
    """An operation computing several values at once, as one LAPACK call does (`slogdet`:
    sign and log|det|; `eigh`: eigenvalues and eigenvectors). A `graph.Multi` node holds one
    application and defines one symbol of the program per output; its VJP takes one adjoint
    per output (0 where none arrives), its JVP gives one tangent per output."""

    fields: tuple[str, ...] = ()  # the outputs' names, as NumPy 2's result tuple has them
    constant: frozenset[int] = frozenset()  # outputs whose derivative is zero (slogdet's sign)
    label = ""  # the call as a user writes it

    def output_shapes(self, shapes: Sequence[Shape]) -> tuple[Shape, ...]:
        raise NotImplementedError

    def vjp_all(
        self, bars: Sequence[Any], outs: Sequence[Any], shapes: Sequence[Shape], add: Add
    ) -> list[Any]:
        """Contributions to each operand's adjoint from the outputs' adjoints `bars`."""
        raise NotImplementedError

    def jvp_all(
        self, dots: Sequence[Any], outs: Sequence[Any], shapes: Sequence[Shape], add: Add
    ) -> tuple[Any, ...]:
        """The tangent of each output from the operands' tangents."""
        raise NotImplementedError

    def _sympystr(self, printer: Any) -> str:
        return f"{self.label}({', '.join(str(printer._print(a)) for a in self.operands)})"


def _eye(n: int, add: Add) -> Any:
    return add(Eye.make([], n))


class SlogDet(MultiOp):
    """`numpy.linalg.slogdet(a)` of a square matrix: (sign, log|det a|), or of a stack of
    them (shape (..., n, n): both of shape (...)). The sign is piecewise constant (derivative
    zero); d log|det a| = trace(inv(a) da), per matrix."""

    fields = ("sign", "logabsdet")
    constant = frozenset({0})
    label = "slogdet"

    def output_shapes(self, shapes: Sequence[Shape]) -> tuple[Shape, ...]:
        batch = tuple(shapes[0][:-2])
        return batch, batch

    def _inv_t(self, ndim: int, add: Add) -> Any:
        return matrix_transpose(add(Inv.make([self.args[0]], ())), ndim, add)

    def vjp_all(
        self, bars: Sequence[Any], outs: Sequence[Any], shapes: Sequence[Shape], add: Add
    ) -> list[Any]:
        bar = bars[1]
        if bar == 0:
            return [None]
        return [per_matrix(bar, shapes[0][:-2], add) * self._inv_t(len(shapes[0]), add)]

    def jvp_all(
        self, dots: Sequence[Any], outs: Sequence[Any], shapes: Sequence[Shape], add: Add
    ) -> tuple[Any, ...]:
        # trace(inv(a) @ da) as one elementwise product and sum: no n^3 matrix product
        ndim = len(shapes[0])
        product = add(self._inv_t(ndim, add) * dots[0])
        return sympy.S.Zero, matrix_sum(product, ndim, add)

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.linalg.slogdet({_p(printer, self.args[0])})"


class Eigh(MultiOp):
    """`numpy.linalg.eigh(a)`: eigenvalues w (ascending) and the eigenvectors V as columns.
    NumPy reads one triangle of `a` (params: UPLO) as a symmetric matrix S, so the derivative
    is that of the function NumPy computes, as in autograd: the symmetric matrix's adjoint
    (Giles 2008) G = V (diag(wbar) + F * skew(V^T Vbar)) V^T, with F_ij = 1 / (w_j - w_i) off
    the diagonal, goes to the triangle read (G_ii on the diagonal, G_ij + G_ji below it for
    "L"), nothing to the other. PyTorch and JAX give G itself, the gradient for symmetric
    perturbations; on a symmetrised argument (`eigh(B + B.T)`) both give the same gradient
    of B. Repeated eigenvalues make F infinite: the eigenvectors' derivative is then inf or
    nan, as in PyTorch and JAX (the eigenvalues' alone stays finite). A stack of matrices
    (shape (..., n, n)) gives w of shape (..., n) and V of shape (..., n, n), each matrix on
    its own: the same formulas, with per-matrix transposes and w as rows (..., 1, n)."""

    fields = ("eigenvalues", "eigenvectors")
    label = "eigh"

    def output_shapes(self, shapes: Sequence[Shape]) -> tuple[Shape, ...]:
        *batch, _, n = shapes[0]
        return (*batch, n), (*batch, n, n)

    @staticmethod
    def _rows(w: Any, batch: Shape, n: int, add: Add) -> Any:
        """A vector per matrix (shape (*batch, n)) as one row per matrix, (*batch, 1, n), so
        that it broadcasts along each matrix's rows; one matrix's vector is that row already."""
        return reshape(w, (*batch, 1, n), add) if batch else w

    def _gaps(self, w: Any, batch: Shape, n: int, add: Add) -> Any:
        """w_j - w_i, with ones on the diagonal (where a skew or zeroed matrix is divided by it)."""
        return add(self._rows(w, batch, n, add) - reshape(w, (*batch, n, 1), add) + _eye(n, add))

    def vjp_all(
        self, bars: Sequence[Any], outs: Sequence[Any], shapes: Sequence[Shape], add: Add
    ) -> list[Any]:
        w, v = outs
        wbar, vbar = bars
        *batch, _, n = shapes[0]
        ndim = len(shapes[0])
        inner = []  # V^T abar V, in parts
        if vbar != 0:
            m = matmul(matrix_transpose(v, ndim, add), vbar, add)
            skew = add((m - matrix_transpose(m, ndim, add)) / 2)  # its diagonal is exactly zero
            inner.append(skew / self._gaps(w, tuple(batch), n, add))
        if wbar != 0:  # diag(wbar): wbar broadcast along rows
            inner.append(_eye(n, add) * self._rows(wbar, tuple(batch), n, add))
        if not inner:
            return [None]
        middle = add(sympy.Add(*inner))
        g = matmul(v, matmul(middle, matrix_transpose(v, ndim, add), add), add)  # symmetric
        below = self._read_off_diagonal(n, add)
        return [add(_eye(n, add) * g + (g + matrix_transpose(g, ndim, add)) * below)]

    def _read_off_diagonal(self, n: int, add: Add) -> Any:
        """Ones where NumPy reads `a` off the diagonal: below it for "L", above for "U"."""
        lower = add(Tri.make([], (n, -1)))
        return lower if self.params == "L" else transpose(lower, (1, 0), add)

    def _symmetric_tangent(self, da: Any, ndim: int, n: int, add: Add) -> Any:
        """The tangent of the symmetric matrix NumPy builds from the triangle of `a` it reads."""
        off = add(da * self._read_off_diagonal(n, add))
        return add(_eye(n, add) * da + off + matrix_transpose(off, ndim, add))

    def jvp_all(
        self, dots: Sequence[Any], outs: Sequence[Any], shapes: Sequence[Shape], add: Add
    ) -> tuple[Any, ...]:
        w, v = outs
        *batch, _, n = shapes[0]
        ndim = len(shapes[0])
        da = atom(dots[0], add)
        sym = self._symmetric_tangent(da, ndim, n, add)
        p = matmul(matrix_transpose(v, ndim, add), matmul(sym, v, add), add)
        if batch:  # each matrix's diagonal: the row sums of eye * p (zeros added: exact)
            dw = add(ArraySum.make([add(_eye(n, add) * p)], ((ndim - 1,), False)))
        else:
            dw = add(Index.make([p], (list(range(n)), list(range(n)))))
        gaps = self._gaps(w, tuple(batch), n, add)
        off = add((p - _eye(n, add) * p) / gaps)  # zero diagonal, then F * P
        return dw, matmul(v, off, add)

    def _numpycode(self, printer: Any) -> str:
        uplo = self.params
        option = "" if uplo == "L" else f", UPLO={uplo!r}"
        return f"numpy.linalg.eigh({_p(printer, self.args[0])}{option})"


# --- shapes, scans and statistics (issue 15) ---------------------------------------------------
# Most of NumPy's shape functions are compositions of the operations above (a flip is an
# `Index` with a reversed slice, `np.roll` a `Concatenate` of two slices, `np.tile` a
# `Broadcast` between two reshapes), made by the tracer: their derivatives come for free.
# The operations here are those whose adjoint needs NumPy's own call: scans and sorting.


def along_axis(axis: int, item: Any) -> tuple[Any, ...]:
    """An encoded index that applies `item` along `axis` only (`:, :, item`)."""
    return (*[("slice", None, None, None)] * axis, item)


class CumSum(ArrayOp):
    """`numpy.cumsum(x, axis)` (params: axis, reverse). Its adjoint is the cumulative sum
    from the other end (`reverse`): the i-th input reaches every output from i on."""

    complex_form = "linear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(shapes[0])

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        axis, reverse = self.params
        return [add(CumSum.make([atom(bar, add)], (axis, not reverse)))]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return add(CumSum.make([atom(dots[0], add)], self.params))

    def _numpycode(self, printer: Any) -> str:
        axis, reverse = self.params
        x = _p(printer, self.args[0])
        if not reverse:
            return f"numpy.cumsum({x}, axis={axis})"
        return f"numpy.flip(numpy.cumsum(numpy.flip({x}, {axis}), axis={axis}), {axis})"


class CumProd(ArrayOp):
    """`numpy.cumprod(x, axis)` (params: axis). The adjoint is reverse_cumsum(bar * out) / x,
    which, as `ArrayProd`'s out / x, is not defined where `x` has a zero: there the gradient
    is inf or nan (PyTorch and JAX give the limit; symgrad does not)."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(shapes[0])

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        reached = add(CumSum.make([add(bar * out)], (self.params, True)))
        return [reached / self.args[0]]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return out * add(CumSum.make([add(dots[0] / self.args[0])], (self.params, False)))

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.cumprod({_p(printer, self.args[0])}, axis={self.params})"


class SortedTake(ArrayOp):
    """Operands (v, key): `v` in the order that sorts `key` along an axis (params: axis; or
    (axis, kth): the order `numpy.partition(key, kth, axis)` puts it in, `np.partition(x)` is
    SortedTake(x, x) with a kth),
    `numpy.take_along_axis(v, numpy.argsort(key, axis, kind="stable"), axis)`; `np.sort(x)`
    is SortedTake(x, x). The order is piecewise constant in `key`, which gets no gradient;
    the adjoint puts the cotangent back where each element came from (`SortedPut`). Ties
    keep their order (a stable sort), so each tied element gets its own position's share."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(shapes[0])

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return [add(SortedPut.make([atom(bar, add), self.args[1]], self.params)), None]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        if dots[0] == 0:
            return sympy.S.Zero
        return add(SortedTake.make([atom(dots[0], add), self.args[1]], self.params))

    def _numpycode(self, printer: Any) -> str:
        v, key = (_p(printer, a) for a in self.operands)
        axis, kth = _sort_params(self.params)
        if self.args[0] == self.args[1]:
            if kth is not None:
                return f"numpy.partition({v}, {kth!r}, axis={axis})"
            return f"numpy.sort({v}, axis={axis})"
        return f"sg.sorted_take({v}, {key}, {_sort_args(self.params)})"


def _sort_params(params: Any) -> tuple[int, Any]:
    """(axis, kth) of a sort's params: an int axis (np.sort), or (axis, kth) (np.partition)."""
    return (params, None) if isinstance(params, int) else params


def _sort_args(params: Any) -> str:
    axis, kth = _sort_params(params)
    return str(axis) if kth is None else f"{axis}, {kth!r}"


class SortedPut(ArrayOp):
    """Operands (v, key): the inverse permutation of `SortedTake`, the adjoint of sorting:
    `v`'s elements put back at the positions the sort of `key` took them from."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(shapes[0])

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return [add(SortedTake.make([atom(bar, add), self.args[1]], self.params)), None]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        if dots[0] == 0:
            return sympy.S.Zero
        return add(SortedPut.make([atom(dots[0], add), self.args[1]], self.params))

    def _numpycode(self, printer: Any) -> str:
        v, key = (_p(printer, a) for a in self.operands)
        return f"sg.sorted_put({v}, {key}, {_sort_args(self.params)})"


# --- indexing, stacking, constants -------------------------------------------------------------


def index_text(index: Sequence[Any]) -> str:
    """`2, :9, None, ..., [0, 2]` for the encoded index (2, ("slice", None, 9, None), None,
    "...", [0, 2]): ints, slices as tuples, `None`, the ellipsis, integer index arrays as lists."""
    parts = []
    for item in index:
        if isinstance(item, tuple):
            _, start, stop, step = item
            text = f"{'' if start is None else start}:{'' if stop is None else stop}"
            parts.append(text + (f":{step}" if step is not None else ""))
        elif item is None:
            parts.append("None")
        else:
            parts.append(_progression_text(item) or str(item))  # an int, "...", a list of ints
    return ", ".join(parts)


_SHORT_LIST = 8  # index lists up to this long print as lists


def _progression_text(item: Any) -> str | None:
    """`numpy.arange(0, 500)` for the index list [0, 1, ..., 499] (a diagonal's rows), which
    NumPy's fancy indexing reads the same; None for other items."""
    if not isinstance(item, list) or len(item) <= _SHORT_LIST or not all(type(i) is int for i in item):
        return None
    step = item[1] - item[0]
    if step == 0 or any(b - a != step for a, b in itertools.pairwise(item)):
        return None
    stop = item[-1] + step  # arange(start, stop, step) gives exactly the list, negatives too
    return f"numpy.arange({item[0]}, {stop})" if step == 1 else f"numpy.arange({item[0]}, {stop}, {step})"


def python_index(index: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(_python_item(item) for item in index)


def _python_item(item: Any) -> Any:
    if isinstance(item, tuple):
        return slice(*item[1:])
    if item == "...":
        return Ellipsis
    if isinstance(item, list):
        return np.array(item, dtype=np.intp)
    return item


def is_fancy(index: Sequence[Any]) -> bool:
    """An index with integer arrays: NumPy's advanced indexing (a copy, repeats allowed)."""
    return any(isinstance(item, list) for item in index)


def indexed_shape(shape: Shape, index: Sequence[Any]) -> Shape:
    """The shape of `x[index]`, computed on a zero-strided view (no memory)."""
    return tuple(np.broadcast_to(np.empty(()), shape)[python_index(index)].shape)


def has_repeats(shape: Shape, index: Sequence[Any]) -> bool:
    """Whether `x[index]` reads some element twice (a fancy index with repeated entries)."""
    if not is_fancy(index):
        return False
    positions = np.arange(math.prod(shape)).reshape(shape)[python_index(index)]
    return bool(np.unique(positions).size != positions.size)


class Index(ArrayOp):
    """`x[i]`, `x[i, j]`, `x[a:b:s]`, `x[None]`, `x[..., 0]`, `x[[0, 2]]` with constant indices."""

    complex_form = "linear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return indexed_shape(shapes[0], self.params)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return [add(Scatter.make([bar], (self.params, shapes[0])))]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return add(Index.make([dots[0]], self.params))

    def _numpycode(self, printer: Any) -> str:
        return f"{printer.parenthesize(self.args[0], 60)}[{index_text(self.params)}]"


class Scatter(ArrayOp):
    """The adjoint of indexing: zeros of the indexed array's shape, `value` added at the index
    (repeated entries of a fancy index accumulate, as `numpy.add.at`)."""

    complex_form = "linear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(self.params[1])

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return [add(Index.make([bar], self.params[0]))]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return add(Scatter.make([dots[0]], self.params))

    def _numpycode(self, printer: Any) -> str:
        index, shape = self.params
        return f"sg.scatter({_p(printer, self.args[0])}, numpy.s_[{index_text(index)}], {tuple(shape)!r})"


class SetItem(ArrayOp):
    """`x[index] = v` with value semantics: a copy of `x` with `v` (broadcast) at the index.
    Operands (x, v). The old values at the index get no gradient; `v` gets the cotangent there."""

    complex_form = "linear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(shapes[0])

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        index = self.params
        gathered = add(Index.make([bar], index))
        return [
            add(SetItem.make([bar, sympy.S.Zero], index)),
            sum_to(gathered, indexed_shape(shapes[0], index), shapes[1], add),
        ]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        base = dots[0] if dots[0] != 0 else add(Full.make([], (tuple(shapes[0]), 0.0)))
        return add(SetItem.make([atom(base, add), atom(dots[1], add)], self.params))

    def _numpycode(self, printer: Any) -> str:
        x, v = (_p(printer, a) for a in self.operands)
        return f"sg.setitem({x}, numpy.s_[{index_text(self.params)}], {v})"


class Stack(ArrayOp):
    """`numpy.stack(parts, axis)` of a constant number of parts of one shape."""

    complex_form = "linear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        axis = self.params
        out = list(shapes[0])
        out.insert(axis, len(shapes))
        return tuple(out)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        axis = self.params
        lead = [("slice", None, None, None)] * axis
        return [add(Index.make([bar], (*lead, i))) for i in range(len(shapes))]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        parts = [d if d != 0 else add(Full.make([], (tuple(s), 0.0))) for d, s in zip(dots, shapes)]
        return add(Stack.make(parts, self.params))

    def _numpycode(self, printer: Any) -> str:
        parts = ", ".join(_p(printer, a) for a in self.operands)
        return f"numpy.stack(sg.broadcast_all({parts}), axis={self.params})"


class Concatenate(ArrayOp):
    """`numpy.concatenate(parts, axis)` of a constant number of parts."""

    complex_form = "linear"

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        axis = self.params
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        axis = self.params
        lead = [("slice", None, None, None)] * axis
        start, parts = 0, []
        for shape in shapes:
            stop = start + shape[axis]
            parts.append(add(Index.make([bar], (*lead, ("slice", start, stop, None)))))
            start = stop
        return parts

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        parts = [d if d != 0 else add(Full.make([], (tuple(s), 0.0))) for d, s in zip(dots, shapes)]
        return add(Concatenate.make(parts, self.params))

    def _numpycode(self, printer: Any) -> str:
        parts = ", ".join(_p(printer, a) for a in self.operands)
        return f"numpy.concatenate(({parts},), axis={self.params})"


class Full(ArrayOp):
    """`numpy.full(shape, value)`: `zeros_like`, `ones_like` of a traced array."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(self.params[0])

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return []

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return sympy.S.Zero

    def _numpycode(self, printer: Any) -> str:
        shape, value = self.params
        return f"numpy.full({tuple(shape)!r}, {float(value)!r})"


class AsArray(ArrayOp):
    """`numpy.array(stack)`: a loop's per-iteration values (a list) as one array, the adjoint
    of an array whose rows the loop read (`xs[t]`). Params (shape, padded): a loop that may
    stop early (`break`) leaves fewer rows than the array has, and the rest are zeros."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(self.params[0])

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return [bar]  # the rows of the adjoint are the adjoints of the list's items

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return add(AsArray.make([dots[0]], self.params))

    def _numpycode(self, printer: Any) -> str:
        shape, padded = self.params
        rows = _p(printer, self.args[0])
        return f"sg.stack_rows({rows}, {tuple(shape)!r})" if padded else f"numpy.array({rows})"


CONSTRUCTORS = ("arange", "linspace", "eye", "identity", "zeros", "ones", "full", "array", "asarray")


class Constant(ArrayOp):
    """A constant array made inside the function: `numpy.arange(4.0)`, `numpy.eye(3)`, ..."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        name, args = self.params
        return tuple(np.shape(getattr(np, name)(*args)))

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return []

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        return sympy.S.Zero

    def _numpycode(self, printer: Any) -> str:
        name, args = self.params
        return f"numpy.{name}({', '.join(repr(a) for a in args)})"


def shape_of(expr: Any, shapes: dict[Any, Shape]) -> Shape:
    """The shape of a graph expression: an array op's own rule, else NumPy broadcasting of
    the shapes of the symbols it reads (elementwise code)."""
    if isinstance(expr, ArrayOp):
        return expr.shape([shape_of(o, shapes) for o in expr.operands])
    symbols = getattr(expr, "free_symbols", ())
    if not symbols:
        return ()
    return tuple(np.broadcast_shapes(*[shapes[s] for s in symbols]))
