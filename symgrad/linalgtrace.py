"""Tracing of NumPy's contractions and linear algebra: einsum, tensordot, inner, kron, cross
(axisa=, axisb=, axisc=, axis=; 3-vectors, and 2-vectors where NumPy takes them), norm (the
singular-value matrix norms 'nuc', 2, -2 of stacks too), solve, det, cholesky (upper=),
matrix_power, pinv, svd, qr and lstsq. pinv, svd, cholesky and qr take stacks of matrices
(shape (..., m, n)), as NumPy's do."""

from __future__ import annotations

import ast
import collections
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy

from . import arrays, linalg, rules
from .errors import TracingError, UnsupportedSyntaxError

# NumPy callables traced here, and the handler of each (method `array_<name>`).
LINALG_CALLS: dict[Any, str] = {
    np.einsum: "einsum",
    np.tensordot: "tensordot",
    np.inner: "inner",
    np.kron: "kron",
    np.cross: "cross",
    np.linalg.cross: "linalg_cross",
    np.linalg.norm: "norm",
    np.linalg.solve: "solve",
    np.linalg.det: "det",
    np.linalg.cholesky: "cholesky",
    np.linalg.matrix_power: "matrix_power",
    np.linalg.pinv: "pinv",
    np.linalg.svd: "svd",
    np.linalg.qr: "qr",
    np.linalg.lstsq: "lstsq",
}

# lstsq's result, as NumPy's tuple (x, residuals, rank, s)
_LstsqResult = collections.namedtuple("_LstsqResult", ["x", "residuals", "rank", "s"])

# Handlers whose first two arguments are arrays (a nested list there is `np.array` of it).
TWO_ARRAYS = frozenset({"tensordot", "inner", "kron", "cross", "linalg_cross", "solve", "lstsq"})


def _cross_takes_2_vectors() -> bool:
    """Whether this NumPy's np.cross takes 2-vectors (deprecated in NumPy 2.0, an error from
    2.5): symgrad takes what NumPy takes, so that the program's value is NumPy's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            np.cross(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
        except ValueError:
            return False
    return True


CROSS_TAKES_2_VECTORS = _cross_takes_2_vectors()


def _interleaved_subscripts(items: list[Any]) -> tuple[str, tuple[Any, ...]] | None:
    """`np.einsum(a, [0, 1], b, [1, 2], [0, 2])` (NumPy's interleaved form: each operand
    followed by its axes as ints, `...` allowed, an optional output list last) as the
    subscripts 'ab,bc->ac' and the operands (a, b); None when `items` is not of that form."""

    def letters(axes: Any) -> str | None:
        if not isinstance(axes, (tuple, list)):
            return None
        out = []
        for axis in axes:
            if axis is Ellipsis:
                out.append("...")
            elif isinstance(axis, int) and not isinstance(axis, bool) and 0 <= axis < len(linalg.LETTERS):
                out.append(linalg.LETTERS[axis])
            else:
                return None
        return "".join(out)

    output = None
    if len(items) % 2 == 1:  # the output's axes come last
        output = letters(items[-1])
        if output is None:
            return None
        items = items[:-1]
    operands, inputs = items[0::2], [letters(a) for a in items[1::2]]
    if not operands or any(i is None for i in inputs):
        return None
    subscripts = ",".join(str(i) for i in inputs) + ("" if output is None else f"->{output}")
    return subscripts, tuple(operands)


def _static(value: Any) -> Any:
    """A constant argument as a plain Python value; `sympy.oo` (NumPy's inf read while
    tracing) as math.inf. Traced values are returned as they are."""
    if isinstance(value, tuple):
        return tuple(_static(v) for v in value)
    if value in (sympy.oo, -sympy.oo):
        return math.inf if value == sympy.oo else -math.inf
    if isinstance(value, sympy.Integer):
        return int(value)
    if isinstance(value, sympy.Float):
        return float(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _traced(value: Any) -> bool:
    if isinstance(value, tuple):
        return any(_traced(v) for v in value)
    return isinstance(value, sympy.Basic) and bool(value.free_symbols)


class LinalgTracing:
    """Handlers for contractions and linear algebra; mixed into `arraytrace.ArrayTracing`."""

    error: Callable[..., Any]
    node: Callable[..., Any]
    shape: Callable[[Any], tuple[int, ...]]
    op: Callable[..., Any]
    _square: Callable[..., tuple[int, ...]]
    _reduce: Callable[..., Any]
    _reshaped: Callable[..., Any]
    array_transpose: Callable[..., Any]
    array_stack: Callable[..., Any]
    array_moveaxis: Callable[..., Any]
    call_rule: Callable[..., Any]
    multi: Callable[..., Any]

    def _constant(self, value: Any, what: str, hint: str, node: ast.AST) -> Any:
        """A static argument (`ord=2`, `axes=1`) as a Python value, refused when traced."""
        if _traced(value):
            raise self.error(
                UnsupportedSyntaxError, node, f"{what} is computed from traced values here", hint
            )
        return _static(value)

    def _abs(self, x: Any, node: ast.AST) -> Any:
        rule = rules.lookup(np.abs)
        assert rule is not None
        return self.call_rule(np.abs, rule, [x], {}, node, None)

    # --- einsum and contractions written as einsums ----------------------------------------

    def array_einsum(
        self, subscripts: Any, *operands: Any, optimize: Any = False, node: ast.AST, hint: str | None
    ) -> Any:
        if not isinstance(subscripts, str):
            interleaved = _interleaved_subscripts([subscripts, *operands])
            if interleaved is None:
                raise self.error(
                    UnsupportedSyntaxError,
                    node,
                    "np.einsum takes its subscripts as a constant string, or as constant lists "
                    "of axis numbers after each operand (not computed from traced values)",
                    "write them out: np.einsum('ij,jk->ik', a, b), or np.einsum(a, [0, 1], b, [1, 2], [0, 2])",
                )
            subscripts, operands = interleaved
        optimize = self._constant(
            optimize, "einsum's optimize=", "pass optimize=True, False or 'greedy'", node
        )
        if not operands:
            raise self.error(
                TracingError, node, "np.einsum without operands", "pass the arrays after the subscripts"
            )
        shapes = [self.shape(o) for o in operands]
        try:
            explicit = linalg.parse_einsum(subscripts, shapes)
        except ValueError as exc:
            shown = ", ".join(str(s) for s in shapes)
            raise self.error(
                TracingError,
                node,
                f"np.einsum({subscripts!r}, ...) of shapes {shown}: {exc}",
                "give one letter per axis of each operand (or `...` for the leading ones), "
                "lengths that match or are 1, and output letters found in the inputs",
            ) from None
        return self.op(linalg.Einsum, list(operands), (explicit, optimize), hint, node)

    def array_tensordot(self, a: Any, b: Any, axes: Any = 2, *, node: ast.AST, hint: str | None) -> Any:
        return self.contract(a, b, axes, linalg.TensorDot, node, hint)

    def contract(
        self, a: Any, b: Any, axes: Any, cls: type[linalg.Einsum], node: ast.AST, hint: str | None
    ) -> Any:
        """tensordot's contraction of `a` and `b` over `axes`, as the operation `cls` prints it
        (`numpy.tensordot`, or `numpy.dot` for np.dot of N-D operands)."""
        axes = self._constant(axes, "tensordot's axes", "pass an int or a pair of sequences of ints", node)
        sa, sb = self.shape(a), self.shape(b)
        try:
            if isinstance(axes, int):
                if not 0 <= axes <= min(len(sa), len(sb)):
                    raise ValueError(f"axes={axes} with operands of {len(sa)} and {len(sb)} dimensions")
                pairs = list(zip(range(len(sa) - axes, len(sa)), range(axes)))
            else:
                first, second = axes
                first = (first,) if isinstance(first, int) else tuple(first)
                second = (second,) if isinstance(second, int) else tuple(second)
                if len(first) != len(second):
                    raise ValueError("the two sequences of axes differ in length")
                pairs = [(i % len(sa), j % len(sb)) for i, j in zip(first, second)]
            if any(sa[i] != sb[j] for i, j in pairs):
                raise ValueError("the contracted axes differ in length")
        except (ValueError, TypeError, IndexError, ZeroDivisionError) as exc:
            raise self.error(
                TracingError,
                node,
                f"np.tensordot of shapes {sa} and {sb} with axes={axes!r}: {exc}",
                "pass axes=N (the last N axes of a with the first N of b) or ([axes of a], [axes of b]) "
                "of equal lengths",
            ) from None
        letters = iter(linalg.LETTERS)
        la = [next(letters) for _ in sa]
        lb = [next(letters) for _ in sb]
        for i, j in pairs:
            lb[j] = la[i]
        contracted_a = {i for i, _ in pairs}
        contracted_b = {j for _, j in pairs}
        out = [c for i, c in enumerate(la) if i not in contracted_a] + [
            c for j, c in enumerate(lb) if j not in contracted_b
        ]
        subscripts = f"{''.join(la)},{''.join(lb)}->{''.join(out)}"
        return self.op(cls, [a, b], (subscripts, False, axes), hint, node)

    def array_inner(self, a: Any, b: Any, *, node: ast.AST, hint: str | None) -> Any:
        sa, sb = self.shape(a), self.shape(b)
        if not sa or not sb:
            return self.node(sympy.sympify(a) * sympy.sympify(b), hint, node)
        if sa[-1] != sb[-1]:
            raise self.error(
                TracingError,
                node,
                f"np.inner of shapes {sa} and {sb}: last axes differ",
                "match the last axes",
            )
        letters = iter(linalg.LETTERS[:-1])
        la = "".join(next(letters) for _ in sa[:-1])
        lb = "".join(next(letters) for _ in sb[:-1])
        subscripts = f"{la}Z,{lb}Z->{la}{lb}"
        return self.op(linalg.Inner, [a, b], (subscripts, False, None), hint, node)

    def array_kron(self, a: Any, b: Any, *, node: ast.AST, hint: str | None) -> Any:
        sa, sb = self.shape(a), self.shape(b)
        if not sa or not sb:
            return self.node(sympy.sympify(a) * sympy.sympify(b), hint, node)
        ndim = max(len(sa), len(sb))
        sa, sb = (1,) * (ndim - len(sa)) + sa, (1,) * (ndim - len(sb)) + sb
        a, b = self._reshaped(a, sa, node, None), self._reshaped(b, sb, node, None)
        la, lb = linalg.LETTERS[:ndim], linalg.LETTERS[ndim : 2 * ndim]
        pairs = "".join(x + y for x, y in zip(la, lb))  # each product a[i] b[j] once: NumPy's values
        blocks = self.op(linalg.Einsum, [a, b], (f"{la},{lb}->{pairs}", False), None, node)
        return self._reshaped(blocks, tuple(m * n for m, n in zip(sa, sb)), node, hint)

    def array_cross(
        self,
        a: Any,
        b: Any,
        axisa: Any = -1,
        axisb: Any = -1,
        axisc: Any = -1,
        axis: Any = None,
        *,
        node: ast.AST,
        hint: str | None,
        three_only: bool = False,
    ) -> Any:
        hint_axes = "pass constant ints for axisa=, axisb=, axisc= and axis="
        axisa, axisb, axisc, axis = (
            self._constant(v, "np.cross's axes", hint_axes, node) for v in (axisa, axisb, axisc, axis)
        )
        if axis is not None:  # NumPy: axis= stands for all three
            axisa = axisb = axisc = axis
        sa, sb = self.shape(a), self.shape(b)
        lengths = (2, 3) if CROSS_TAKES_2_VECTORS and not three_only else (3,)
        try:
            if not all(isinstance(v, int) for v in (axisa, axisb, axisc)):
                raise ValueError("the axes are not ints")
            if not sa or not sb:
                raise ValueError("a number has no vector axis")
            ka, kb = sa[axisa], sb[axisb]
            if ka not in lengths or kb not in lengths:
                raise ValueError(f"vectors of lengths {ka} and {kb} (the axes given)")
            a = self.array_moveaxis(a, axisa, -1, node=node, hint=None)
            b = self.array_moveaxis(b, axisb, -1, node=node, hint=None)
            batch = np.broadcast_shapes(self.shape(a)[:-1], self.shape(b)[:-1])
            ndim = len(batch) + (0 if ka == kb == 2 else 1)
            if ndim and not -ndim <= axisc < ndim:
                raise ValueError(f"axisc={axisc} with a result of {ndim} dimensions")
        except (ValueError, IndexError) as exc:
            which = "np.linalg.cross" if three_only else "np.cross"
            axes = "pass arrays whose vector axes (axisa=, axisb=, or axis=; the last by default) have length"
            if lengths == (2, 3):
                message, hint = str(exc), f"{axes} 3 or 2 and whose other axes broadcast"
            else:
                message = f"{exc} (NumPy {np.__version__}'s {which} takes 3-vectors only)"
                hint = (
                    f"{axes} 3 and whose other axes broadcast; "
                    "of 2-vectors a and b, write a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]"
                )
            raise self.error(
                TracingError, node, f"{which} of shapes {sa} and {sb}: {message}", hint
            ) from None
        ca = [self.op(arrays.Index, [a], ("...", i), None, node) for i in range(ka)] + [0] * (3 - ka)
        cb = [self.op(arrays.Index, [b], ("...", i), None, node) for i in range(kb)] + [0] * (3 - kb)
        if ka == kb == 2:  # NumPy's z component alone, a value per pair (deprecated in NumPy 2)
            return self.node(ca[0] * cb[1] - ca[1] * cb[0], hint, node)
        parts = tuple(
            self.node(ca[i] * cb[j] - ca[j] * cb[i], None, node) for i, j in ((1, 2), (2, 0), (0, 1))
        )
        if axisc % ndim == ndim - 1:
            return self.array_stack(parts, -1, node=node, hint=hint)
        # NumPy's layout (a view moving the last axis): its sums' order, so its values
        stacked = self.array_stack(parts, -1, node=node, hint=None)
        return self.array_moveaxis(stacked, -1, axisc, node=node, hint=hint)

    def array_linalg_cross(
        self, x1: Any, x2: Any, /, *, axis: Any = -1, node: ast.AST, hint: str | None
    ) -> Any:
        """np.linalg.cross: np.cross of 3-vectors only, along `axis` (NumPy's array-API form)."""
        return self.array_cross(x1, x2, axis=axis, node=node, hint=hint, three_only=True)

    # --- norms -----------------------------------------------------------------------------

    def array_norm(
        self,
        x: Any,
        ord: Any = None,
        axis: Any = None,
        keepdims: bool = False,
        *,
        node: ast.AST,
        hint: str | None,
    ) -> Any:
        ord_ = self._constant(
            ord, "the norm's ord", "pass a constant ord (None, 1, 2, np.inf, 'fro', ...)", node
        )
        axis = self._constant(axis, "the norm's axis", "pass a constant int or pair of ints", node)
        keepdims = bool(self._constant(keepdims, "keepdims", "pass True or False", node))
        shape = self.shape(x)
        if not shape:
            return self._abs(x, node)  # NumPy's norm of a number is its absolute value
        ndim = len(shape)
        if axis is None:
            if ord_ is None:
                axes: tuple[int, ...] = tuple(range(ndim))
            elif ndim in (1, 2):
                axes = tuple(range(ndim))
            else:
                raise self.error(
                    TracingError,
                    node,
                    f"np.linalg.norm with ord={ord_!r} of an array of shape {shape}: NumPy needs axis= here",
                    "pass axis=k (a vector norm along axis k) or axis=(i, j) (a matrix norm)",
                )
        else:
            items = axis if isinstance(axis, tuple) else (axis,)
            if not all(isinstance(a, int) for a in items) or len(items) not in (1, 2):
                raise self.error(
                    TracingError, node, f"norm axis={axis!r}", "pass axis=k or axis=(i, j) with constant ints"
                )
            axes = tuple(a % ndim for a in items)
            if len(set(axes)) != len(axes):
                raise self.error(
                    TracingError, node, f"norm axis={axis!r} repeats an axis", "give two different axes"
                )
        if ord_ is None or (len(axes) != 2 and ord_ == 2) or (len(axes) == 2 and ord_ in ("fro", "f")):
            return self._norm_op(x, ord_, axis, axes, keepdims, node, hint)
        if len(axes) == 1 or (axis is None and ndim == 1):
            return self._vector_norm(x, ord_, axis, axes, keepdims, node, hint)
        return self._matrix_norm(x, ord_, axes, keepdims, node, hint)

    def _norm_op(
        self,
        x: Any,
        ord_: Any,
        axis: Any,
        axes: tuple[int, ...],
        keepdims: bool,
        node: ast.AST,
        hint: str | None,
    ) -> Any:
        return self.op(linalg.Norm, [x], (ord_, axis, tuple(sorted(axes)), keepdims), hint, node)

    def _vector_norm(
        self,
        x: Any,
        ord_: Any,
        axis: Any,
        axes: tuple[int, ...],
        keepdims: bool,
        node: ast.AST,
        hint: str | None,
    ) -> Any:
        if isinstance(ord_, str) or not isinstance(ord_, (int, float)):
            raise self.error(
                TracingError,
                node,
                f"ord={ord_!r} is not a vector norm",
                "pass ord=None, 2, 1, np.inf, -np.inf, 0 or another number p for vectors",
            )
        if ord_ == math.inf or ord_ == -math.inf:  # NumPy: abs(x).max(axis) / .min(axis)
            cls = arrays.ArrayMax if ord_ > 0 else arrays.ArrayMin
            return self._reduce(cls, self._abs(x, node), axes, keepdims, node, hint)
        if ord_ == 0:  # the count of nonzero elements: derivative zero
            nonzero = self.node(sympy.Piecewise((1, sympy.Ne(x, 0)), (0, True)), None, node)
            return self._reduce(arrays.ArraySum, nonzero, axes, keepdims, node, hint)
        if ord_ == 1:
            return self._reduce(arrays.ArraySum, self._abs(x, node), axes, keepdims, node, hint)
        return self._norm_op(x, float(ord_), axis, axes, keepdims, node, hint)

    def _matrix_norm(
        self, x: Any, ord_: Any, axes: tuple[int, ...], keepdims: bool, node: ast.AST, hint: str | None
    ) -> Any:
        row, col = axes
        if ord_ in (2, -2, "nuc"):
            # NumPy moves the two axes last and takes the singular values alone
            # (svd(compute_uv=False)): from the full svd here, equal but for rounding
            shape = self.shape(x)
            rest = tuple(i for i in range(len(shape)) if i not in axes)
            moved = self.array_transpose(x, (*rest, row, col), node=node, hint=None)
            singular = self.array_svd(moved, False, node=node, hint=None).S
            cls = {2: arrays.ArrayMax, -2: arrays.ArrayMin, "nuc": arrays.ArraySum}[ord_]
            result = self._reduce(cls, singular, len(rest), False, node, None if keepdims else hint)
            if keepdims:
                result = self._reshaped(result, arrays.keep_shape(shape, axes), node, hint)
            return result
        if ord_ not in (1, -1, math.inf, -math.inf):
            raise self.error(
                TracingError,
                node,
                f"ord={ord_!r} is not a matrix norm",
                "pass ord=None/'fro', 1, -1, np.inf or -np.inf for a matrix",
            )
        # NumPy: the sums of |x| along one axis, then their max (min for negative orders)
        first, second = (row, col) if ord_ in (1, -1) else (col, row)
        if second > first:
            second -= 1
        sums = self._reduce(arrays.ArraySum, self._abs(x, node), first, False, node, None)
        cls = arrays.ArrayMax if ord_ > 0 else arrays.ArrayMin
        result = self._reduce(cls, sums, second, False, node, None if keepdims else hint)
        if keepdims:
            result = self._reshaped(result, arrays.keep_shape(self.shape(x), axes), node, hint)
        return result

    # --- solving, determinants, factorisations ---------------------------------------------

    def array_solve(self, a: Any, b: Any, *, node: ast.AST, hint: str | None) -> Any:
        sa = self._square(a, node, stack=True)
        n = sa[-1]
        sb = self.shape(b)
        try:
            if not sb or sb[-1 if len(sb) == 1 else -2] != n:
                raise ValueError
            linalg.solve_shape(sa, sb)
        except ValueError:
            raise self.error(
                TracingError,
                node,
                f"np.linalg.solve of a of shape {sa} and b of shape {sb}",
                f"pass b of shape ({n},), or ({n}, k) or (..., {n}, k) with batch axes that "
                f"broadcast against a's {sa[:-2]}",
            ) from None
        return self.op(linalg.Solve, [a, b], (), hint, node)

    def array_det(self, a: Any, *, node: ast.AST, hint: str | None) -> Any:
        self._square(a, node, stack=True)
        return self.op(linalg.Det, [a], (), hint, node)

    def array_cholesky(self, a: Any, *, upper: Any = False, node: ast.AST, hint: str | None) -> Any:
        self._square(a, node, stack=True)
        upper = bool(self._constant(upper, "cholesky's upper=", "pass upper=True or False", node))
        return self.op(linalg.Cholesky, [a], upper, hint, node)

    def array_matrix_power(self, a: Any, n: Any, *, node: ast.AST, hint: str | None) -> Any:
        size = self._square(a, node)[0]
        n = self._constant(n, "matrix_power's exponent", "pass a constant int", node)
        if not isinstance(n, int) or isinstance(n, bool):
            raise self.error(TracingError, node, f"matrix_power exponent {n!r}", "pass a constant int")
        # NumPy's own sequence of products (its short cuts and binary decomposition): its values
        if n == 0:
            return self.op(arrays.Constant, [], ("eye", (size,)), hint, node)
        if n < 0:
            a, n = self.op(arrays.Inv, [a], (), None, node), -n

        def times(x: Any, y: Any, name: str | None = None) -> Any:
            return self.op(arrays.MatMul, [x, y], (), name, node)

        if n == 1:
            return a
        if n == 2:
            return times(a, a, hint)
        if n == 3:
            return times(times(a, a), a, hint)
        z = result = None
        while n > 0:
            z = a if z is None else times(z, z)
            n, bit = divmod(n, 2)
            if bit:
                result = z if result is None else times(result, z)
        return result

    def _matrices(self, a: Any, node: ast.AST) -> tuple[int, ...]:
        """`a`'s shape, refused unless it is a matrix or a stack of them, shape (..., m, n)."""
        shape = self.shape(a)
        if len(shape) < 2:
            label = ast.unparse(node.func) if isinstance(node, ast.Call) else "this function"
            what = f"an array of shape {shape}" if shape else "a number"
            raise self.error(
                TracingError,
                node,
                f"`{label}` of {what}: it takes matrices (the last two axes)",
                "pass a matrix, shape (m, n), or a stack of matrices, shape (..., m, n)",
            )
        return shape

    def _refuse(self, value: Any, what: str, message: str, hint: str, node: ast.AST) -> None:
        """Refuse a constant option that symgrad does not differentiate (`hermitian=True`)."""
        if self._constant(value, what, hint, node):
            raise self.error(UnsupportedSyntaxError, node, message, hint)

    def array_pinv(
        self,
        a: Any,
        rcond: Any = None,
        hermitian: Any = False,
        *,
        rtol: Any = None,
        node: ast.AST,
        hint: str | None,
    ) -> Any:
        self._matrices(a, node)
        self._refuse(
            hermitian,
            "pinv's hermitian=",
            "np.linalg.pinv(..., hermitian=True) is not supported",
            "drop hermitian=True (the general pinv gives the same value for a symmetric matrix)",
            node,
        )
        options = []
        for name, value in (("rcond", rcond), ("rtol", rtol)):
            value = self._constant(value, f"pinv's {name}=", f"pass a constant {name}", node)
            if value is not None:
                options.append((name, float(value)))
        return self.op(linalg.Pinv, [a], tuple(options), hint, node)

    def array_svd(
        self,
        a: Any,
        full_matrices: Any = True,
        compute_uv: Any = True,
        hermitian: Any = False,
        *,
        node: ast.AST,
        hint: str | None,
    ) -> Any:
        *_, m, n = self._matrices(a, node)
        full = self._constant(full_matrices, "svd's full_matrices=", "pass full_matrices=False", node)
        uv = self._constant(compute_uv, "svd's compute_uv=", "pass compute_uv=True or False", node)
        if uv and full and m != n:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"np.linalg.svd of {m}x{n} matrices with full_matrices=True: the extra "
                "singular vectors have no derivative",
                "pass full_matrices=False (U then has min(m, n) columns)",
            )
        self._refuse(
            hermitian,
            "svd's hermitian=",
            "np.linalg.svd(..., hermitian=True) is not supported",
            "drop hermitian=True, or use np.linalg.eigh for a symmetric matrix",
            node,
        )
        result = self.multi(linalg.Svd, a, (), node, square=False)
        if not uv:
            return result.S  # from the full call: NumPy's S-only call may round differently
        return result

    def array_qr(self, a: Any, mode: Any = "reduced", *, node: ast.AST, hint: str | None) -> Any:
        *_, m, n = self._matrices(a, node)
        mode = self._constant(mode, "qr's mode=", "pass mode='reduced', 'complete' or 'r'", node)
        if mode == "complete" and m > n:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"np.linalg.qr of {m}x{n} matrices with mode='complete': Q's extra columns "
                "(a basis of the complement) have no derivative",
                "pass mode='reduced' (the default: Q has n columns, R is n x n)",
            )
        if mode not in ("reduced", "complete", "r"):
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"np.linalg.qr(..., mode={mode!r}) is not supported",
                "pass mode='reduced' (Q and R), or mode='r' (R alone)",
            )
        result = self.multi(linalg.Qr, a, (), node, square=False)
        if mode == "r":
            return result.R  # from the reduced call: the same R (one factorisation)
        return result

    def array_lstsq(self, a: Any, b: Any, rcond: Any = None, *, node: ast.AST, hint: str | None) -> Any:
        sa, sb = self.shape(a), self.shape(b)
        rcond = self._constant(rcond, "lstsq's rcond=", "pass rcond=None or a constant number", node)
        if len(sa) != 2 or len(sb) not in (1, 2) or sb[0] != sa[0]:
            raise self.error(
                TracingError,
                node,
                f"np.linalg.lstsq of a of shape {sa} and b of shape {sb}",
                "pass a matrix a, shape (m, n), and b of shape (m,) or (m, k)",
            )
        m, n = sa
        if m < n:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"np.linalg.lstsq of a wide {m}x{n} matrix (the minimum-norm solution) is not supported",
                "write np.linalg.pinv(a) @ b: the same solution, differentiable",
            )
        if self.graph.parent is not None:  # type: ignore[attr-defined]
            return self.multi(linalg.Lstsq, a, None, node, square=False)  # refused there, as svd's
        graph = self.graph  # type: ignore[attr-defined]
        operands = [arrays.atom(sympy.sympify(v), graph.add) for v in (a, b)]
        call = linalg.Lstsq.make(operands, None if rcond is None else float(rcond))
        lineno = getattr(node, "lineno", None)
        line = None if lineno is None else (self.frame.source.filename, lineno)  # type: ignore[attr-defined]
        x, residuals, rank, _ = graph.add_multi(call, line)
        singular = self.array_svd(a, False, node=node, hint=None).S  # svd's: its derivative is known
        return _LstsqResult(x, residuals, rank, singular)
