"""Contractions and linear algebra (einsum, norms, solve, det, cholesky, pinv, svd, qr, lstsq): shape, VJP, JVP, printing."""

from __future__ import annotations

import collections
import string
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from .arrays import (
    Add,
    ArrayOp,
    ArraySum,
    Concatenate,
    Eye,
    Full,
    Index,
    Inv,
    MultiOp,
    Outer,
    Shape,
    Tri,
    _p,
    atom,
    keep_shape,
    matmul,
    matrix_sum,
    matrix_transpose,
    per_matrix,
    reshape,
    sum_to,
    transpose,
)

LETTERS = string.ascii_letters  # the labels numpy.einsum accepts


# --- einsum ------------------------------------------------------------------------------------


def parse_einsum(subscripts: str, shapes: Sequence[Shape]) -> str:
    """NumPy's einsum `subscripts` for operands of `shapes` in the explicit form symgrad keeps:
    `...` replaced by letters (right-aligned, as NumPy broadcasts), the output written out
    (implicit mode: the letters used once, in NumPy's order, after the broadcast ones), and a
    label that an operand has with length 1 where another has it longer (broadcasting) renamed
    in that operand, so that every letter has one length. Raises ValueError as NumPy would."""
    text = subscripts.replace(" ", "")
    if text.count("->") > 1 or any(c not in LETTERS + ".,->" for c in text):
        raise ValueError(f"invalid subscripts {subscripts!r}")
    explicit = "->" in text
    inputs_text, _, output = text.partition("->")
    inputs = inputs_text.split(",")
    if len(inputs) != len(shapes):
        raise ValueError(f"{len(inputs)} operands in the subscripts, {len(shapes)} given")
    free = iter(c for c in LETTERS if c not in text)
    spans = []  # how many axes each operand's `...` stands for
    for part, shape in zip(inputs, shapes):
        labels = len(part) - 3 if "..." in part else len(part)
        if (
            "." in part.replace("...", "", 1)
            or (labels > len(shape))
            or ("..." not in part and labels != len(shape))
        ):
            raise ValueError(f"subscripts {part!r} do not fit an operand of shape {tuple(shape)}")
        spans.append(len(shape) - labels if "..." in part else 0)
    ellipsis = "".join(next(free) for _ in range(max(spans, default=0)))
    resolved = [
        part.replace("...", ellipsis[len(ellipsis) - span :] if span else "")
        for part, span in zip(inputs, spans)
    ]
    if explicit:
        if "." in output.replace("...", "", 1):
            raise ValueError(f"invalid output subscripts {output!r}")
        output = output.replace("...", ellipsis)
    else:
        counts = collections.Counter("".join(inputs).replace(".", ""))
        output = ellipsis + "".join(sorted((c for c, k in counts.items() if k == 1), key=ord))
    every = "".join(resolved)
    if len(set(output)) != len(output) or any(c not in every for c in output):
        raise ValueError(f"output subscripts {output!r}: each letter once, and only letters of the inputs")
    sizes: dict[str, int] = {}
    for part, shape in zip(resolved, shapes):
        own: dict[str, int] = {}
        for c, n in zip(part, shape):
            if own.setdefault(c, n) != n:
                raise ValueError(f"the repeated label {c!r} has lengths {own[c]} and {n} in one operand")
            if sizes.get(c, 1) != 1 and n not in (1, sizes[c]):
                raise ValueError(f"label {c!r} has lengths {sizes[c]} and {n}: they do not broadcast")
            sizes[c] = max(sizes.get(c, 1), n)
    renamed = []
    for part, shape in zip(resolved, shapes):
        rename = {c: next(free) for c, n in zip(part, shape) if n == 1 and sizes[c] > 1}
        renamed.append("".join(rename.get(c, c) for c in part))
    return ",".join(renamed) + "->" + output


def _split(subscripts: str) -> tuple[list[str], str]:
    inputs, _, output = subscripts.partition("->")
    return inputs.split(","), output


def _sizes(subscripts: str, shapes: Sequence[Shape]) -> dict[str, int]:
    inputs, _ = _split(subscripts)
    return {c: n for part, shape in zip(inputs, shapes) for c, n in zip(part, shape)}


class Einsum(ArrayOp):
    """`numpy.einsum(subscripts, *operands)`. Params (subscripts, optimize): the subscripts in
    the explicit form of `parse_einsum` (every letter of one length). Also the derivative of
    `tensordot`, `inner`, `kron` and batched `@`.

    The adjoint of operand k is an einsum of the output's adjoint with the other operands, to
    operand k's labels: a label of k that appears nowhere else (summed over in the forward
    pass) is broadcast back with a ones vector, and a repeated label (a diagonal, `'ii->i'`)
    is scattered onto the diagonal by an identity matrix tying a fresh label to it."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        subscripts = self.params[0]
        sizes = _sizes(subscripts, shapes)
        return tuple(sizes[c] for c in _split(subscripts)[1])

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        inputs, output = _split(self.params[0])
        sizes = _sizes(self.params[0], shapes)
        used = set(self.params[0])
        fresh = iter(c for c in LETTERS if c not in used)
        adjoints = []
        for k, own in enumerate(inputs):
            others = [(part, op) for j, (part, op) in enumerate(zip(inputs, self.operands)) if j != k]
            reachable = set(output).union(*(set(part) for part, _ in others))
            parts = [output] if output else []  # a scalar output's adjoint multiplies the result
            operands = [bar] if output else []
            for part, op in others:
                parts.append(part)
                operands.append(op)
            target, seen = "", set()
            for c in own:
                if c in seen:  # a diagonal: the identity ties a fresh label to the repeated one
                    z = next(fresh)
                    target += z
                    parts.append(c + z)
                    operands.append(add(Eye.make([], sizes[c])))
                    continue
                seen.add(c)
                target += c
                if c not in reachable:  # summed over in the forward pass: broadcast back
                    parts.append(c)
                    operands.append(add(Full.make([], ((sizes[c],), 1.0))))
            result = einsum_of(",".join(parts) + "->" + target, operands, self.params[1], add) if parts else 1
            adjoints.append(result if output else bar * result)
        return adjoints

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        terms = []
        for k, dot in enumerate(dots):
            if dot != 0:
                operands = list(self.operands)
                operands[k] = atom(dot, add)
                terms.append(einsum_of(self.params[0], operands, self.params[1], add))
        return sympy.Add(*terms)

    def _option(self) -> str:
        optimize = self.params[1]
        return "" if optimize is False else f", optimize={optimize!r}"

    def _numpycode(self, printer: Any) -> str:
        operands = ", ".join(_p(printer, a) for a in self.operands)
        return f"numpy.einsum({self.params[0]!r}, {operands}{self._option()})"


def einsum_of(subscripts: str, operands: Sequence[Any], optimize: Any, add: Add) -> Any:
    """An einsum in explicit form (an operand itself when the einsum would copy it)."""
    inputs, output = _split(subscripts)
    if len(inputs) == 1 and inputs[0] == output:
        return operands[0]
    return add(Einsum.make([atom(o, add) for o in operands], (subscripts, optimize)))


class TensorDot(Einsum):
    """`numpy.tensordot(a, b, axes)`, printed as that call (its BLAS product gives NumPy's
    own value); params (subscripts, optimize, axes) with the einsum's derivative."""

    def _numpycode(self, printer: Any) -> str:
        a, b = (_p(printer, x) for x in self.operands)
        return f"numpy.tensordot({a}, {b}, axes={self.params[2]!r})"


class Dot(Einsum):
    """`numpy.dot(a, b)` of N-D operands (a's last axis against b's second-to-last), printed as
    that call (NumPy's own value); params (subscripts, optimize, axes) as TensorDot's."""

    def _numpycode(self, printer: Any) -> str:
        a, b = (_p(printer, x) for x in self.operands)
        return f"numpy.dot({a}, {b})"


class Inner(Einsum):
    """`numpy.inner(a, b)`, printed as that call; params (subscripts, optimize, None)."""

    def _numpycode(self, printer: Any) -> str:
        a, b = (_p(printer, x) for x in self.operands)
        return f"numpy.inner({a}, {b})"


# --- norms -------------------------------------------------------------------------------------


def _safe(n: Any, add: Add) -> Any:
    """`n` with 1 where it is 0: the gradient of a norm at the zero vector is then 0 (the
    numerator x is 0 there), as PyTorch gives, not 0/0."""
    return add(sympy.Piecewise((1, sympy.Eq(n, 0)), (n, True)))


class Norm(ArrayOp):
    """`numpy.linalg.norm(x, ord, axis, keepdims)` for the orders whose gradient divides by
    the norm: 2 (ord None of vectors, `'fro'` and None of matrices) and p-norms other than
    0, 1 and inf. Params (ord, axis as written, the axes reduced, keepdims).

    The gradient is x / n (2-norm) and sign(x) |x|^(p-1) / n^(p-1) (p-norm), with the zero
    vector's gradient 0 (as PyTorch), not 0/0. For p < 1 an element equal to 0 makes
    |x|^(p-1) infinite: the gradient is then inf or nan there (the norm is not
    differentiable)."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        _, _, axes, keepdims = self.params
        if keepdims:
            return keep_shape(shapes[0], axes)
        return tuple(n for i, n in enumerate(shapes[0]) if i not in axes)

    def _spread(self, value: Any, shapes: Sequence[Shape], add: Add) -> Any:
        _, _, axes, keepdims = self.params
        return value if keepdims else reshape(value, keep_shape(shapes[0], axes), add)

    def _power(self) -> float:
        ord_ = self.params[0]
        return 2.0 if ord_ in (None, "fro", "f") else float(ord_)

    def _direction(self, out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        """d n / d x, elementwise: x / n or sign(x) |x|^(p-1) / n^(p-1)."""
        x, p = self.args[0], self._power()
        n = _safe(self._spread(out, shapes, add), add)
        if p == 2.0:
            return add(x / n)
        return add(sympy.sign(x) * sympy.Abs(x) ** (p - 1) / n ** (p - 1))

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        return [self._spread(bar, shapes, add) * self._direction(out, shapes, add)]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        _, _, axes, keepdims = self.params
        product = add(self._direction(out, shapes, add) * dots[0])
        return add(ArraySum.make([product], (tuple(axes), keepdims)))

    def _numpycode(self, printer: Any) -> str:
        ord_, axis, _, keepdims = self.params
        text = f"numpy.linalg.norm({_p(printer, self.args[0])}"
        if ord_ is not None:
            text += f", ord={ord_!r}"
        if axis is not None:
            text += f", axis={axis!r}"
        return text + (", keepdims=True)" if keepdims else ")")


# --- solving, determinants, factorisations -----------------------------------------------------


def solve_shape(sa: Shape, sb: Shape) -> Shape:
    """The shape of `numpy.linalg.solve(a, b)` in NumPy 2: a of shape (..., n, n); b a
    vector (n,) only when it is 1-D (then x has a's batch axes and n), else a stack of
    (n, k) matrices whose batch axes broadcast against a's."""
    if len(sb) == 1:
        return (*sa[:-2], sb[0])
    batch = tuple(np.broadcast_shapes(sa[:-2], sb[:-2]))  # ValueError when they do not broadcast
    return (*batch, *sb[-2:])


class Solve(ArrayOp):
    """`numpy.linalg.solve(A, b)` of a square matrix A and a vector or matrix b, or of
    stacks (A of shape (..., n, n), b of shape (n,) or (..., n, k), batch axes broadcast as
    NumPy 2 does). The adjoint of b is solve(A^T, g), that of A is minus it times x^T:
    solves, no inverse; each summed over the batch axes along which its operand was
    broadcast."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return solve_shape(*shapes)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        a = self.args[0]
        sa, sb = shapes
        a_t = matrix_transpose(a, len(sa), add)
        if len(sb) == 1 and len(sa) == 2:
            bb = solve(a_t, bar, add)
            return [-add(Outer.make([bb, atom(out, add)], ())), bb]
        if len(sb) == 1:  # one vector against a stack: solved as (..., n, 1) columns
            column = (*sa[:-2], sb[0], 1)
            bb = solve(a_t, reshape(bar, column, add), add)
            ba = matmul(bb, matrix_transpose(reshape(out, column, add), len(column), add), add)
            return [-ba, sum_to(reshape(bb, column[:-1], add), column[:-1], sb, add)]
        so = solve_shape(sa, sb)
        bb = solve(a_t, bar, add)  # of the result's shape (a's batch broadcast against b's)
        ba = matmul(bb, matrix_transpose(out, len(so), add), add)
        return [-sum_to(ba, (*so[:-2], *sa[-2:]), sa, add), sum_to(bb, so, sb, add)]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        a = self.args[0]
        da, db = dots
        sa, sb = shapes
        if len(sb) == 1 and len(sa) > 2:  # one vector against a stack: as (..., n, 1) columns
            column = (*sa[:-2], sb[0], 1)
            rhs = []
            if db != 0:
                rhs.append(reshape(db, (sb[0], 1), add))
            if da != 0:
                rhs.append(-matmul(da, reshape(out, column, add), add))
            return reshape(solve(a, add(sympy.Add(*rhs)), add), column[:-1], add)
        rhs = []
        if db != 0:
            rhs.append(db)
        if da != 0:
            rhs.append(-matmul(da, out, add))
        return solve(a, add(sympy.Add(*rhs)), add)

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.linalg.solve({_p(printer, self.args[0])}, {_p(printer, self.args[1])})"


def solve(a: Any, b: Any, add: Add) -> Any:
    return add(Solve.make([atom(a, add), atom(b, add)], ()))


class TriangularSolve(ArrayOp):
    """x with `a x = b` for a triangular matrix `a`, or a stack of them (params: lower), which
    only the derivatives of `cholesky` make (`a` its factor or the factor's transpose):
    `sg.solve_triangular`, SciPy's triangular solve where SciPy is installed (O(n^2 k), no
    factorisation), else `numpy.linalg.solve`. The function reads one triangle of `a`, so the
    adjoint of `a` is -bb x^T on that triangle only."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(shapes[1])

    def _read(self, n: int, ndim: int, add: Add) -> Any:
        """Ones on the triangle of `a` that the solve reads."""
        read = add(Tri.make([], (n, 0)))  # ones on and below the diagonal
        return read if self.params else transpose(read, (1, 0), add)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        a = self.args[0]
        lower = self.params
        ndim, n = len(shapes[0]), shapes[0][-1]
        bb = triangular_solve(matrix_transpose(a, ndim, add), bar, not lower, add)
        if len(shapes[1]) == 1 and ndim == 2:
            ba = add(Outer.make([bb, atom(out, add)], ()))
        else:
            ba = matmul(bb, matrix_transpose(out, len(shapes[1]), add), add)
        return [-add(ba * self._read(n, ndim, add)), bb]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        a = self.args[0]
        da, db = dots
        ndim, n = len(shapes[0]), shapes[0][-1]
        rhs = []
        if db != 0:
            rhs.append(db)
        if da != 0:
            rhs.append(-matmul(add(da * self._read(n, ndim, add)), out, add))
        return triangular_solve(a, add(sympy.Add(*rhs)), self.params, add)

    def _numpycode(self, printer: Any) -> str:
        a, b = _p(printer, self.args[0]), _p(printer, self.args[1])
        return f"sg.solve_triangular({a}, {b}, lower={self.params})"


def triangular_solve(a: Any, b: Any, lower: bool, add: Add) -> Any:
    return add(TriangularSolve.make([atom(a, add), atom(b, add)], bool(lower)))


class Det(ArrayOp):
    """`numpy.linalg.det(a)` of a square matrix, or of a stack of them (shape (..., n, n):
    one determinant per matrix, of shape (...)): d det = det * trace(inv(a) da), so the
    gradient is det * inv(a)^T, per matrix. At a singular matrix the gradient's `inv` raises
    LinAlgError ("Singular matrix"), though the determinant's gradient (the adjugate) exists
    there."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(shapes[0][:-2])

    def _inv_t(self, ndim: int, add: Add) -> Any:
        return matrix_transpose(add(Inv.make([self.args[0]], ())), ndim, add)

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        scale = per_matrix(add(bar * out), shapes[0][:-2], add)
        return [scale * self._inv_t(len(shapes[0]), add)]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        ndim = len(shapes[0])
        product = add(self._inv_t(ndim, add) * dots[0])
        return out * matrix_sum(product, ndim, add)

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.linalg.det({_p(printer, self.args[0])})"


def _lower_read(n: int, add: Add) -> Any:
    """Ones strictly below the diagonal: the part of `a` that NumPy's cholesky reads off it."""
    return add(Tri.make([], (n, -1)))


class Cholesky(ArrayOp):
    """`numpy.linalg.cholesky(a)`: the lower factor L of L L^T = S, where S is the symmetric
    matrix of `a`'s lower triangle (NumPy reads nothing above the diagonal); of a stack of
    matrices (shape (..., n, n)) each on its own. Params: upper (`upper=True`: the upper
    factor U = L^T of the symmetric matrix of `a`'s upper triangle, the lower factor of
    `a^T` transposed, and so differentiated). The derivative is that of the function NumPy
    computes, as for `eigh`: the adjoint of S (Murray 2016, arXiv:1602.07527, as autograd's
    grad_cholesky) G = sym(L^-T Phi(L^T Lbar) L^-1), with Phi the lower triangle with its
    diagonal halved, goes to the lower triangle (G_ii on the diagonal, 2 G_ij below it) and
    nothing above. On a symmetrised argument (`cholesky(B @ B.T)`) this is the gradient
    PyTorch and JAX give. A matrix that is not positive definite raises LinAlgError, in the
    value as in the derivative."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        return tuple(shapes[0])

    @staticmethod
    def _phi(x: Any, n: int, add: Add) -> Any:
        return add(x * (_lower_read(n, add) + add(Eye.make([], n)) / 2))

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        ndim, n = len(shapes[0]), shapes[0][-1]
        upper = bool(self.params)
        # the upper factor is the lower factor of a^T, transposed: work with L and Lbar
        l_t = out if upper else matrix_transpose(out, ndim, add)
        bar = matrix_transpose(bar, ndim, add) if upper else bar
        p = self._phi(matmul(l_t, bar, add), n, add)
        y = triangular_solve(l_t, p, False, add)  # L^-T P
        s = matrix_transpose(
            triangular_solve(l_t, matrix_transpose(y, ndim, add), False, add), ndim, add
        )  # L^-T P L^-1
        g = add((s + matrix_transpose(s, ndim, add)) / 2)
        result = add(add(Eye.make([], n)) * g + 2 * g * _lower_read(n, add))
        return [matrix_transpose(result, ndim, add) if upper else result]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        ndim, n = len(shapes[0]), shapes[0][-1]
        upper = bool(self.params)
        da = atom(dots[0], add)
        if upper:
            da, out = matrix_transpose(da, ndim, add), matrix_transpose(out, ndim, add)
        off = add(da * _lower_read(n, add))
        sym = add(add(Eye.make([], n)) * da + off + matrix_transpose(off, ndim, add))  # the tangent of S
        y = triangular_solve(out, sym, True, add)  # L^-1 dS
        inner = matrix_transpose(
            triangular_solve(out, matrix_transpose(y, ndim, add), True, add), ndim, add
        )  # L^-1 dS L^-T
        tangent = matmul(out, self._phi(inner, n, add), add)
        return matrix_transpose(tangent, ndim, add) if upper else tangent

    def _numpycode(self, printer: Any) -> str:
        option = ", upper=True" if self.params else ""
        return f"numpy.linalg.cholesky({_p(printer, self.args[0])}{option})"


class Pinv(ArrayOp):
    """`numpy.linalg.pinv(a)` of a matrix or a stack of them, shape (..., m, n) (params: the
    rcond / rtol keywords as given). The derivative (Golub and Pereyra 1973),
    dP = -P dA P + P P^T dA^T (I - A P) + (I - P A) dA^T P^T P, per matrix, holds where the
    rank of `a` is locally constant (full rank, or any rank kept by the perturbation); where
    singular values cross NumPy's cutoff the function jumps and has no derivative."""

    def shape(self, shapes: Sequence[Shape]) -> Shape:
        *batch, m, n = shapes[0]
        return (*batch, n, m)

    def _complements(self, p: Any, shapes: Sequence[Shape], add: Add) -> tuple[Any, Any]:
        """I - A P and I - P A."""
        a = self.args[0]
        m, n = shapes[0][-2:]
        left = add(add(Eye.make([], m)) - matmul(a, p, add))
        right = add(add(Eye.make([], n)) - matmul(p, a, add))
        return left, right

    def vjp(self, bar: Any, out: Any, shapes: Sequence[Shape], add: Add) -> list[Any]:
        p, ndim = out, len(shapes[0])
        p_t, g_t = matrix_transpose(p, ndim, add), matrix_transpose(bar, ndim, add)
        left, right = self._complements(p, shapes, add)
        return [
            add(
                -matmul(p_t, matmul(bar, p_t, add), add)
                + matmul(left, matmul(g_t, matmul(p, p_t, add), add), add)
                + matmul(matmul(p_t, p, add), matmul(g_t, right, add), add)
            )
        ]

    def jvp(self, dots: Sequence[Any], out: Any, shapes: Sequence[Shape], add: Add) -> Any:
        p, ndim = out, len(shapes[0])
        da = atom(dots[0], add)
        p_t, da_t = matrix_transpose(p, ndim, add), matrix_transpose(da, ndim, add)
        left, right = self._complements(p, shapes, add)
        return add(
            -matmul(p, matmul(da, p, add), add)
            + matmul(matmul(p, p_t, add), matmul(da_t, left, add), add)
            + matmul(right, matmul(da_t, matmul(p_t, p, add), add), add)
        )

    def _numpycode(self, printer: Any) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.params)
        return f"numpy.linalg.pinv({_p(printer, self.args[0])}{options})"


def _row(x: Any, batch: Shape, k: int, add: Add) -> Any:
    """A vector per matrix (shape (*batch, k)) as one row per matrix, (*batch, 1, k), so that it
    broadcasts along each matrix's rows; one matrix's vector is that row already."""
    return reshape(x, (*batch, 1, k), add) if batch else x


def _column(x: Any, batch: Shape, k: int, add: Add) -> Any:
    """A vector per matrix (shape (*batch, k)) as one column per matrix, (*batch, k, 1)."""
    return reshape(x, (*batch, k, 1), add)


def _diagonal(x: Any, batch: Shape, k: int, add: Add) -> Any:
    """The diagonal of each k x k matrix of a stack (shape (*batch, k)): the row sums of eye * x
    (zeros added: exact), or an index of one matrix."""
    if batch:
        return add(ArraySum.make([add(Eye.make([], k) * atom(x, add))], ((len(batch) + 1,), False)))
    return add(Index.make([atom(x, add)], (list(range(k)), list(range(k)))))


class Svd(MultiOp):
    """`numpy.linalg.svd(a, full_matrices=False)` of an m x n matrix: U (m, k), S (k,)
    descending, Vh (k, n), k = min(m, n); of a stack of them (shape (..., m, n)) each matrix
    on its own, the batch axes leading every result. The VJP is autograd's (Townsend 2016),
    with F_ij = 1 / (s_j^2 - s_i^2); the JVP its transpose:
    dU = U (F * (dP S + S dP^T)) + (I - U U^T) dA V / S, dS = diag(dP),
    dV = V (F * (S dP + dP^T S)) + (I - V V^T) dA^T U / S, with dP = U^T dA V.
    Repeated (or zero, for the last two terms) singular values make F (or 1/S) infinite: the
    singular vectors' derivative is then inf or nan, as in PyTorch; the singular values'
    alone stays finite. A matrix U S Vh is unique only up to the signs of paired columns, so
    only functions that do not depend on those signs have a gradient."""

    fields = ("U", "S", "Vh")
    label = "svd"

    def output_shapes(self, shapes: Sequence[Shape]) -> tuple[Shape, ...]:
        *batch, m, n = shapes[0]
        k = min(m, n)
        return (*batch, m, k), (*batch, k), (*batch, k, n)

    @staticmethod
    def _f(s: Any, batch: Shape, k: int, add: Add) -> Any:
        """1 / (s_j^2 - s_i^2) off the diagonal, 0 on it."""
        eye = add(Eye.make([], k))
        squares = add(s**2)
        return add((1 - eye) / (_row(squares, batch, k, add) - _column(squares, batch, k, add) + eye))

    def vjp_all(
        self, bars: Sequence[Any], outs: Sequence[Any], shapes: Sequence[Shape], add: Add
    ) -> list[Any]:
        u, s, vh = outs
        gu, gs, gvh = bars
        *batch_, m, n = shapes[0]
        batch, ndim, k = tuple(batch_), len(shapes[0]), min(m, n)
        v = matrix_transpose(vh, ndim, add)
        column, row = _column(s, batch, k, add), _row(s, batch, k, add)
        inner = []
        if gu != 0:
            utgu = matmul(matrix_transpose(u, ndim, add), gu, add)
            skew = add(utgu - matrix_transpose(utgu, ndim, add))
            inner.append(self._f(s, batch, k, add) * skew * row)
        if gs != 0:
            inner.append(add(Eye.make([], k)) * _row(gs, batch, k, add))  # diag(gs)
        if gvh != 0:
            vtgv = matmul(vh, matrix_transpose(gvh, ndim, add), add)  # V^T gV with gV = gVh^T
            skew = add(vtgv - matrix_transpose(vtgv, ndim, add))
            inner.append(column * (self._f(s, batch, k, add) * skew))
        if not inner:
            return [None]
        result = matmul(u, matmul(add(sympy.Add(*inner)), vh, add), add)
        terms = [result]
        if m < n and gvh != 0:  # the part of gV outside V's span
            rest = add(Eye.make([], n)) - matmul(v, vh, add)
            terms.append(matmul(matmul(add(u / row), gvh, add), add(rest), add))
        if m > n and gu != 0:
            rest = add(Eye.make([], m)) - matmul(u, matrix_transpose(u, ndim, add), add)
            terms.append(matmul(add(rest), matmul(gu, add(vh / column), add), add))
        return [add(sympy.Add(*terms))]

    def jvp_all(
        self, dots: Sequence[Any], outs: Sequence[Any], shapes: Sequence[Shape], add: Add
    ) -> tuple[Any, ...]:
        u, s, vh = outs
        *batch_, m, n = shapes[0]
        batch, ndim, k = tuple(batch_), len(shapes[0]), min(m, n)
        da = atom(dots[0], add)
        v = matrix_transpose(vh, ndim, add)
        u_t = matrix_transpose(u, ndim, add)
        column, row = _column(s, batch, k, add), _row(s, batch, k, add)
        f = self._f(s, batch, k, add)
        dp = matmul(u_t, matmul(da, v, add), add)
        dp_t = matrix_transpose(dp, ndim, add)
        ds = _diagonal(dp, batch, k, add)
        du = matmul(u, add(f * (dp * row + column * dp_t)), add)
        dv = matmul(v, add(f * (column * dp + dp_t * row)), add)
        if m > k:
            rest = add(Eye.make([], m)) - matmul(u, u_t, add)
            du = add(du + matmul(add(rest), matmul(da, add(v / row), add), add))
        if n > k:
            rest = add(Eye.make([], n)) - matmul(v, vh, add)
            da_t = matrix_transpose(da, ndim, add)
            dv = add(dv + matmul(add(rest), matmul(da_t, add(u / row), add), add))
        return du, ds, matrix_transpose(dv, ndim, add)

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.linalg.svd({_p(printer, self.args[0])}, full_matrices=False)"


def _upper(n: int, k: int, add: Add) -> Any:
    """Ones at and above the k-th diagonal of an n x n matrix (`numpy.triu`'s mask)."""
    return transpose(add(Tri.make([], (n, -k))), (1, 0), add)


def _columns(x: Any, start: int | None, stop: int | None, add: Add) -> Any:
    """`x[..., start:stop]`: columns of each matrix of a stack."""
    return add(Index.make([atom(x, add)], ("...", ("slice", start, stop, None))))


class Qr(MultiOp):
    """`numpy.linalg.qr(a)` (mode 'reduced') of an m x n matrix or a stack of them (shape
    (..., m, n)): Q (..., m, k) with orthonormal columns and R (..., k, n) upper triangular,
    k = min(m, n). With C = Q^T dQ (skew) and X = Q^T dA R^-1 (m >= n), C is X's strict lower
    triangle minus its transpose, dR = (X - C) R and dQ = dA R^-1 - Q (X - C); so the VJP is
    gA = (gQ + Q N) R^-T with N the symmetric matrix of M = gR R^T - Q^T gQ's upper triangle
    (PyTorch's linalg_qr_backward). A wide matrix A = [X | Y] (m < n) is Q R_X = X, R = [R_X |
    Q^T Y]: Y's part is a product, X's the square case. The derivative is that of a full-rank
    matrix: a zero on R's diagonal (rank deficiency) makes it inf or nan, as in PyTorch."""

    fields = ("Q", "R")
    label = "qr"

    def output_shapes(self, shapes: Sequence[Shape]) -> tuple[Shape, ...]:
        *batch, m, n = shapes[0]
        k = min(m, n)
        return (*batch, m, k), (*batch, k, n)

    @staticmethod
    def _square_vjp(gq: Any, gr: Any, q: Any, r: Any, ndim: int, k: int, add: Add) -> Any:
        """gA of A = Q R with R square (k x k), from gQ and gR (either may be 0)."""
        terms = []
        if gr != 0:
            terms.append(matmul(gr, matrix_transpose(r, ndim, add), add))
        if gq != 0:
            terms.append(-matmul(matrix_transpose(q, ndim, add), gq, add))
        mm = add(sympy.Add(*terms))
        sym = add(mm * _upper(k, 0, add) + matrix_transpose(add(mm * _upper(k, 1, add)), ndim, add))
        left = matmul(q, sym, add)
        if gq != 0:
            left = add(gq + left)
        # (gQ + Q N) R^-T, as the transpose of R^-1 (gQ + Q N)^T: a triangular solve
        solved = triangular_solve(r, matrix_transpose(left, ndim, add), False, add)
        return matrix_transpose(solved, ndim, add)

    def vjp_all(
        self, bars: Sequence[Any], outs: Sequence[Any], shapes: Sequence[Shape], add: Add
    ) -> list[Any]:
        q, r = outs
        gq, gr = bars
        if gq == 0 and gr == 0:
            return [None]
        *batch, m, n = shapes[0]
        ndim = len(shapes[0])
        if m >= n:
            return [self._square_vjp(gq, gr, q, r, ndim, n, add)]
        # wide: R = [R_X | V] with V = Q^T Y
        r_x, y = _columns(r, None, m, add), _columns(self.args[0], m, None, add)
        gr_x = _columns(gr, None, m, add) if gr != 0 else 0
        g_v = _columns(gr, m, None, add) if gr != 0 else 0
        if g_v != 0:
            extra = matmul(y, matrix_transpose(g_v, ndim, add), add)
            gq = add(gq + extra) if gq != 0 else extra
        gx = self._square_vjp(gq, gr_x, q, r_x, ndim, m, add)
        gy = matmul(q, g_v, add) if g_v != 0 else add(Full.make([], ((*batch, m, n - m), 0.0)))
        return [add(Concatenate.make([atom(gx, add), atom(gy, add)], ndim - 1))]

    @staticmethod
    def _square_jvp(da: Any, q: Any, r: Any, ndim: int, k: int, add: Add) -> tuple[Any, Any]:
        """(dQ, dR) of A = Q R with R square (k x k) from dA."""
        # dA R^-1, as the transpose of R^-T dA^T: a triangular solve with R^T (lower)
        da_r = matrix_transpose(
            triangular_solve(matrix_transpose(r, ndim, add), matrix_transpose(da, ndim, add), True, add),
            ndim,
            add,
        )
        x = matmul(matrix_transpose(q, ndim, add), da_r, add)
        low = add(x * add(Tri.make([], (k, -1))))
        c = add(low - matrix_transpose(low, ndim, add))
        x_c = add(x - c)
        return add(da_r - matmul(q, x_c, add)), matmul(x_c, r, add)

    def jvp_all(
        self, dots: Sequence[Any], outs: Sequence[Any], shapes: Sequence[Shape], add: Add
    ) -> tuple[Any, ...]:
        q, r = outs
        m, n = shapes[0][-2:]
        ndim = len(shapes[0])
        da = atom(dots[0], add)
        if m >= n:
            return self._square_jvp(da, q, r, ndim, n, add)
        r_x = _columns(r, None, m, add)
        dq, dr_x = self._square_jvp(_columns(da, None, m, add), q, r_x, ndim, m, add)
        y, dy = _columns(self.args[0], m, None, add), _columns(da, m, None, add)
        dv = add(
            matmul(matrix_transpose(dq, ndim, add), y, add) + matmul(matrix_transpose(q, ndim, add), dy, add)
        )
        return dq, add(Concatenate.make([atom(dr_x, add), atom(dv, add)], ndim - 1))

    def _numpycode(self, printer: Any) -> str:
        return f"numpy.linalg.qr({_p(printer, self.args[0])})"


class Lstsq(MultiOp):
    """`numpy.linalg.lstsq(a, b, rcond)` (params: rcond) of an m x n matrix `a` of full column
    rank (m >= n) and b of shape (m,) or (m, k): the solution x (n,) or (n, k), the residuals
    (the squared norms of b - a x, per column: (k,), or (1,) for a 1-D b, as NumPy has them
    where m > n and the rank is n), the rank (constant) and a's singular values (which the
    tracer takes from an svd of `a` instead, whose derivative is known). x solves the normal
    equations a^T a x = a^T b, so with z = solve(a^T a, gx) and r = b - a x the VJP is
    ga = r z^T - a z x^T, gb = a z; the residuals' adjoint adds 2 r g to gb and -2 (r g) x^T
    to ga (a^T r = 0). Where `a` is rank deficient the derivative is not that of NumPy's
    minimum-norm solution."""

    fields = ("x", "residuals", "rank", "s")
    constant = frozenset({2, 3})
    label = "lstsq"

    def output_shapes(self, shapes: Sequence[Shape]) -> tuple[Shape, ...]:
        (m, n), sb = shapes
        k = min(m, n)
        columns = sb[1:] if len(sb) == 2 else (1,)
        return (n, *sb[1:]), (columns if m > n else (0,)), (), (k,)

    def _residual(self, x: Any, add: Add) -> Any:
        a, b = self.args[:2]
        return add(b - matmul(a, x, add))

    def vjp_all(
        self, bars: Sequence[Any], outs: Sequence[Any], shapes: Sequence[Shape], add: Add
    ) -> list[Any]:
        x = outs[0]
        gx, gres = bars[0], bars[1]
        if gx == 0 and gres == 0:
            return [None, None]
        a = self.args[0]
        (m, n), sb = shapes
        r = self._residual(x, add)
        vector = len(sb) == 1

        def outer(u: Any, v: Any) -> Any:
            return (
                add(Outer.make([atom(u, add), atom(v, add)], ()))
                if vector
                else matmul(u, transpose(v, (1, 0), add), add)
            )

        ga, gb = [], []
        if gx != 0:
            a_t = transpose(a, (1, 0), add)
            z = solve(matmul(a_t, a, add), gx, add)
            az = matmul(a, z, add)
            ga += [outer(r, z), -outer(az, x)]
            gb.append(az)
        if gres != 0 and m > n:
            rg = add(2 * r * gres)  # gres (k,) along r's columns, or (1,) for a vector
            ga.append(-outer(rg, x))
            gb.append(rg)
        return [add(sympy.Add(*ga)) if ga else None, add(sympy.Add(*gb)) if gb else None]

    def jvp_all(
        self, dots: Sequence[Any], outs: Sequence[Any], shapes: Sequence[Shape], add: Add
    ) -> tuple[Any, ...]:
        x = outs[0]
        a = self.args[0]
        da, db = dots
        (m, n), sb = shapes
        a_t = transpose(a, (1, 0), add)
        r = self._residual(x, add)
        rhs, dr = [], []  # a^T a dx = da^T r + a^T (db - da x); dr = db - da x - a dx
        if da != 0:
            da = atom(da, add)
            dax = matmul(da, x, add)
            rhs += [matmul(transpose(da, (1, 0), add), r, add), -matmul(a_t, dax, add)]
            dr.append(-dax)
        if db != 0:
            rhs.append(matmul(a_t, db, add))
            dr.append(db)
        dx = solve(matmul(a_t, a, add), add(sympy.Add(*rhs)), add)
        dres = sympy.S.Zero
        if m > n:  # d |r|^2 = 2 r . dr, with a^T r = 0: the a dx part drops
            axes = (0,) if len(sb) == 2 else None
            dres = add(ArraySum.make([add(2 * r * add(sympy.Add(*dr)))], (axes, False)))
            if len(sb) == 1:
                dres = reshape(dres, (1,), add)
        return dx, dres, sympy.S.Zero, sympy.S.Zero

    def _numpycode(self, printer: Any) -> str:
        a, b = (_p(printer, o) for o in self.args[:2])
        return f"numpy.linalg.lstsq({a}, {b}, rcond={self.params!r})"
