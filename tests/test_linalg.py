"""Contractions and linear algebra: np.einsum, tensordot, inner, kron, cross, batched `@`,
np.trace, np.linalg.norm, solve, det, cholesky, matrix_power, pinv, svd, qr and lstsq (stacks
of matrices where NumPy takes them), to second order.

Each gradient is checked against Richardson-extrapolated central differences of the original
function and against PyTorch's float64 autograd of the same program written with torch
(`torch.einsum`, `torch.linalg.*`); values against NumPy's own result of the function; the JVP
against `torch.func.jvp`; second derivatives against `torch.autograd.functional.hessian`."""

import inspect
import sys

import numpy as np
import pytest

from symgrad import grad, hessian, jacobian, jvp, value_and_grad
from symgrad.errors import SymgradError, TracingError, UnknownCalleeError, UnsupportedSyntaxError
from symgrad.linalgtrace import CROSS_TAKES_2_VECTORS
from tests.helpers import richardson_gradient as fd_gradient

torch = pytest.importorskip("torch", reason="PyTorch checks need the torch extra: pip install torch==2.13.0")
scipy_linalg = pytest.importorskip("scipy.linalg", reason="SciPy is in the test extra")

# np.cross of 2-vectors (cross_2d) is deprecated in NumPy 2 and refused from 2.5: symgrad takes it where NumPy does
pytestmark = pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors:DeprecationWarning")

RNG = np.random.default_rng(20260601)
TOL = {"rtol": 1e-10, "atol": 1e-12}
W = np.array([0.5, -1.0, 2.0])


def spd(n: int = 3) -> np.ndarray:
    """A symmetric positive definite matrix, well conditioned."""
    b = RNG.normal(size=(n, n))
    return b @ b.T + n * np.eye(n)


def well_conditioned(n: int = 3) -> np.ndarray:
    return RNG.normal(size=(n, n)) + 3.0 * np.eye(n)


def spd_stack(k: int, n: int) -> np.ndarray:
    """A stack of k symmetric positive definite matrices, well conditioned."""
    return np.stack([spd(n) for _ in range(k)])


def well_conditioned_stack(*shape: int) -> np.ndarray:
    """A stack of well-conditioned matrices, of shape (..., n, n)."""
    return RNG.normal(size=shape) + 3.0 * np.eye(shape[-1])


def normal(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape)


def T(a, grad=True):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


# --- user functions (module level: symgrad reads their source) --------------------------------


def es_matmul(a, b):
    return np.sum(np.einsum("ij,jk->ik", a, b) ** 2)


def es_implicit(a, b):
    return np.sum(np.cos(np.einsum("ij,kj", a, b)))  # implicit output: 'ik'


def es_diagonal(a):
    return np.sum(np.einsum("ii->i", a) ** 3)


def es_traces(a):
    return np.einsum("ii", a) ** 2 + np.einsum("ij,ji", a, a)


def es_partial_diagonal(a):
    return np.sum(np.sin(np.einsum("iij->ij", a)))


def es_ellipsis(a, b):
    return np.sum(np.sin(np.einsum("...ij,...jk->...ik", a, b)))


def es_broadcast(a, b):
    return np.sum(np.einsum("...i,...i->...i", a, b) ** 2)  # a of shape (1, 3) against (4, 3)


def es_three(a, b, c):
    return np.sum(np.einsum("i,ij,jk->k", a, b, c) ** 2)


def es_sum(a):
    return np.sum(np.einsum("ij->j", a) ** 2) + np.einsum("ij->", a)


def td_pairs(a, b):
    return np.sum(np.tensordot(a, b, axes=([1, 0], [0, 1])) ** 2)


def td_int(a, b):
    return np.sum(np.tanh(np.tensordot(a, b, axes=1)))


def inner_(a, b):
    return np.sum(np.inner(a, b) ** 2)


def kron_(a, b):
    return np.sum(np.sin(np.kron(a, b)))


def cross_(a, b):
    return np.sum(np.cross(a, b) ** 2 * W)


def cross_axes(a, b):
    return np.sum(np.sin(np.cross(a, b, axisa=0, axisb=1, axisc=0)) * W[:, None])


def cross_axis(a, b):
    return np.sum(np.cross(a, b, axis=0) ** 2)


def cross_2d(a, b):  # 2-vectors (deprecated in NumPy 2): their z component, or z = 0 against 3
    return np.sum(np.cross(a, b) ** 2) + np.sum(np.sin(np.cross(a, np.stack([b[1], b[0], b[0]]))))


def cross_linalg(a, b):
    return np.sum(np.linalg.cross(a, b) ** 2 * W)


def bmm(a, b):
    return np.sum(np.sin(a @ b))


def bmm_vector(v, b):
    return np.sum(np.sin(v @ b))


def norm_default(x):
    return np.linalg.norm(x)


def norm_squared(x):
    return np.linalg.norm(x) ** 2 + np.linalg.norm(x, 2)


def norm_1(x):
    return np.linalg.norm(x, 1)


def norm_inf(x):
    return np.linalg.norm(x, np.inf) + np.linalg.norm(x, ord=-np.inf)


def norm_p(x):
    return np.linalg.norm(x, 3) + np.linalg.norm(x, ord=1.5)


def norm_fro(x):
    return np.linalg.norm(x, "fro")


def norm_matrix_1_inf(x):
    return np.linalg.norm(x, 1) + 2.0 * np.linalg.norm(x, np.inf)


def norm_matrix_neg(x):
    return np.linalg.norm(x, -1) + 2.0 * np.linalg.norm(x, -np.inf)


def norm_axis(x):
    return np.sum(np.linalg.norm(x, axis=1) * W) + np.sum(np.linalg.norm(x, axis=0, keepdims=True) ** 3)


def norm_nd(x):
    return np.linalg.norm(x) + np.sum(np.linalg.norm(x, "fro", axis=(0, 2)))


def solve_vector(A, b):
    return np.sum(np.linalg.solve(A, b) ** 2)


def solve_matrix(A, B):
    return np.sum(np.sin(np.linalg.solve(A, B)))


def solve_rhs(b, A):
    return np.sum(np.linalg.solve(A, b) ** 3)


def det_(A):
    return np.linalg.det(A)


def det_log(A):
    return np.log(np.abs(np.linalg.det(A))) + np.linalg.det(A) ** 2


def inv_stack(A):
    return np.sum(np.sin(np.linalg.inv(A))) + np.sum(np.linalg.inv(A)[..., 0, :] ** 2)


def det_stack(A):
    d = np.linalg.det(A)  # about 3**n: squared and summed it would swamp finite differences
    return np.sum(d * np.arange(1.0, 1.0 + A.shape[-3])) + np.sum(d**2) * 0.001


def det_log_stack(A):
    d = np.linalg.det(A)
    return np.sum(np.log(np.abs(d))) + np.sum((np.sin(d * 0.1) * d)[..., None, None] * A)


def chol_lower(A):
    return np.sum(np.linalg.cholesky(A) ** 3)  # NumPy reads A's lower triangle only


def chol_sym(B):
    L = np.linalg.cholesky(B @ B.T + 3.0 * np.eye(3))
    return np.sum(np.sin(L))


def power_5(A):
    return np.sum(np.linalg.matrix_power(A, 5))


def power_3(A):
    return np.sum(np.linalg.matrix_power(A, 3) ** 2)


def power_neg(A):
    return np.sum(np.linalg.matrix_power(A, -2))


def pinv_tall(A):
    return np.sum(np.linalg.pinv(A) ** 2)


def pinv_wide(A):
    return np.sum(np.sin(np.linalg.pinv(A)))


def svd_all(a):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    k = len(s)  # functions of the factors that do not depend on the columns' signs
    return np.sum(s**2 * W[:k]) + np.sum((u[:, 0] * vh[0, 0]) ** 2) + np.sum(np.sin(u @ vh))


def svd_values(a):
    return np.sum(np.linalg.svd(a, compute_uv=False) ** 3)


def norm_singular(x):
    return np.linalg.norm(x, "nuc") + np.linalg.norm(x, 2) + 0.5 * np.linalg.norm(x, -2)


# stacks of matrices, shape (..., m, n): each matrix on its own, as NumPy's gufuncs


def svd_stack(a):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    weights = np.arange(1.0, 1.0 + s.shape[-1])  # sign-free functions of the factors, as svd_all
    return np.sum(s**2 * weights) + np.sum((u[..., :, 0] * vh[..., 0, :1]) ** 2) + np.sum(np.sin(u @ vh))


def svd_values_stack(a):
    return np.sum(np.linalg.svd(a, compute_uv=False) ** 3)


def pinv_stack(A):
    return np.sum(np.sin(np.linalg.pinv(A)))


def chol_stack(A):
    return np.sum(np.linalg.cholesky(A) ** 3)


def chol_upper(A):
    return np.sum(np.sin(np.linalg.cholesky(A, upper=True)))  # NumPy reads A's upper triangle


def norm_singular_stack(x):
    nuc = np.linalg.norm(x, "nuc", axis=(1, 2))
    two = np.linalg.norm(x, 2, axis=(2, 0), keepdims=True)
    return (
        np.sum(nuc * np.arange(1.0, 1.0 + nuc.size))
        + np.sum(two)
        + np.sum(np.linalg.norm(x, -2, axis=(-2, -1)))
    )


def qr_(a):
    q, r = np.linalg.qr(a)
    weights = np.arange(1.0, 1.0 + r.shape[-1])
    return np.sum(np.sin(q)) + np.sum(r**2 * weights) + np.sum(np.cos(r))


def qr_r(a):
    return np.sum(np.linalg.qr(a, mode="r") ** 3) + np.sum(np.linalg.qr(a, mode="complete").Q[..., 0] ** 3)


def lstsq_(a, b):
    x, residuals, rank, s = np.linalg.lstsq(a, b, rcond=None)
    return np.sum(np.sin(x)) + np.sum(residuals) * 0.5 + np.sum(s**2) + rank * 0.0


def lstsq_of_a(a):  # one argument, for the hessian against differences of the gradient
    return np.sum(np.linalg.lstsq(a, W)[0] ** 3) + np.sum(np.linalg.lstsq(a, W)[1])


def trace_nd(x):
    t = np.trace(x)  # axes 0 and 1 by default: one trace per x[:, :, k]
    return (
        np.sum(t**2)
        + np.sum(np.sin(np.trace(x, 1, 2, 0)))
        + np.sum(np.trace(x, offset=-1, axis1=1, axis2=2) ** 3)
    )


# --- torch twins -------------------------------------------------------------------------------


def t_es_matmul(a, b):
    return torch.sum(torch.einsum("ij,jk->ik", a, b) ** 2)


def t_es_implicit(a, b):
    return torch.sum(torch.cos(torch.einsum("ij,kj->ik", a, b)))


def t_es_diagonal(a):
    return torch.sum(torch.diagonal(a) ** 3)


def t_es_traces(a):
    return torch.trace(a) ** 2 + torch.trace(a @ a)


def t_es_partial_diagonal(a):
    return torch.sum(torch.sin(torch.einsum("iij->ij", a)))


def t_es_ellipsis(a, b):
    return torch.sum(torch.sin(a @ b))


def t_es_broadcast(a, b):
    return torch.sum((a * b) ** 2)


def t_es_three(a, b, c):
    return torch.sum(torch.einsum("i,ij,jk->k", a, b, c) ** 2)


def t_es_sum(a):
    return torch.sum(a.sum(0) ** 2) + a.sum()


def t_td_pairs(a, b):
    return torch.sum(torch.tensordot(a, b, dims=([1, 0], [0, 1])) ** 2)


def t_td_int(a, b):
    return torch.sum(torch.tanh(torch.tensordot(a, b, dims=1)))


def t_inner(a, b):
    return torch.sum(torch.inner(a, b) ** 2)


def t_kron(a, b):
    return torch.sum(torch.sin(torch.kron(a, b)))


def t_cross(a, b):
    a, b = torch.broadcast_tensors(a, b)
    return torch.sum(torch.linalg.cross(a, b, dim=-1) ** 2 * torch.tensor(W))


def t_cross_axes(a, b):
    return torch.sum(torch.sin(torch.linalg.cross(a.T, b, dim=-1).T) * torch.tensor(W)[:, None])


def t_cross_axis(a, b):
    return torch.sum(torch.linalg.cross(a, b, dim=0) ** 2)


def t_cross_2d(a, b):
    pad = torch.nn.functional.pad
    a3 = pad(a, (0, 1))
    z = torch.linalg.cross(*torch.broadcast_tensors(a3, pad(b, (0, 1))), dim=-1)[..., 2]
    c = torch.stack([b[1], b[0], b[0]])
    return torch.sum(z**2) + torch.sum(torch.sin(torch.linalg.cross(*torch.broadcast_tensors(a3, c), dim=-1)))


def t_bmm(a, b):
    return torch.sum(torch.sin(torch.matmul(a, b)))


def t_norm_default(x):
    return torch.linalg.vector_norm(x)


def t_norm_squared(x):
    return torch.linalg.vector_norm(x) ** 2 + torch.linalg.vector_norm(x, 2)


def t_norm_1(x):
    return torch.linalg.vector_norm(x, 1)


def t_norm_inf(x):
    return torch.linalg.vector_norm(x, float("inf")) + torch.linalg.vector_norm(x, -float("inf"))


def t_norm_p(x):
    return torch.linalg.vector_norm(x, 3) + torch.linalg.vector_norm(x, 1.5)


def t_norm_fro(x):
    return torch.linalg.matrix_norm(x, "fro")


def t_norm_matrix_1_inf(x):
    return torch.linalg.matrix_norm(x, 1) + 2.0 * torch.linalg.matrix_norm(x, float("inf"))


def t_norm_matrix_neg(x):
    return torch.linalg.matrix_norm(x, -1) + 2.0 * torch.linalg.matrix_norm(x, -float("inf"))


def t_norm_axis(x):
    w = torch.tensor(W)
    return torch.sum(torch.linalg.vector_norm(x, dim=1) * w) + torch.sum(
        torch.linalg.vector_norm(x, dim=0, keepdim=True) ** 3
    )


def t_norm_nd(x):
    return torch.linalg.vector_norm(x) + torch.sum(torch.linalg.matrix_norm(x, "fro", dim=(0, 2)))


def t_solve_vector(A, b):
    return torch.sum(torch.linalg.solve(A, b) ** 2)


def t_solve_matrix(A, B):
    return torch.sum(torch.sin(torch.linalg.solve(A, B)))


def t_solve_rhs(b, A):
    return torch.sum(torch.linalg.solve(A, b) ** 3)


def t_det(A):
    return torch.linalg.det(A)


def t_det_log(A):
    return torch.log(torch.abs(torch.linalg.det(A))) + torch.linalg.det(A) ** 2


def t_inv_stack(A):
    return torch.sum(torch.sin(torch.linalg.inv(A))) + torch.sum(torch.linalg.inv(A)[..., 0, :] ** 2)


def t_det_stack(A):
    d = torch.linalg.det(A)
    return torch.sum(d * torch.arange(1.0, 1.0 + A.shape[-3], dtype=torch.float64)) + torch.sum(d**2) * 0.001


def t_det_log_stack(A):
    d = torch.linalg.det(A)
    return torch.sum(torch.log(torch.abs(d))) + torch.sum((torch.sin(d * 0.1) * d)[..., None, None] * A)


def numpys_symmetric(A):
    """The symmetric matrix NumPy's cholesky factors: A's lower triangle, mirrored."""
    return torch.tril(A) + torch.tril(A, -1).T


def t_chol_lower(A):
    return torch.sum(torch.linalg.cholesky(numpys_symmetric(A)) ** 3)


def t_chol_sym(B):
    L = torch.linalg.cholesky(B @ B.T + 3.0 * torch.eye(3, dtype=torch.float64))
    return torch.sum(torch.sin(L))


def t_power_5(A):
    return torch.sum(torch.linalg.matrix_power(A, 5))


def t_power_3(A):
    return torch.sum(torch.linalg.matrix_power(A, 3) ** 2)


def t_power_neg(A):
    return torch.sum(torch.linalg.matrix_power(A, -2))


def t_pinv_tall(A):
    return torch.sum(torch.linalg.pinv(A) ** 2)


def t_pinv_wide(A):
    return torch.sum(torch.sin(torch.linalg.pinv(A)))


def t_svd_all(a):
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    k = len(s)
    return (
        torch.sum(s**2 * torch.tensor(W[:k]))
        + torch.sum((u[:, 0] * vh[0, 0]) ** 2)
        + torch.sum(torch.sin(u @ vh))
    )


def t_svd_values(a):
    return torch.sum(torch.linalg.svdvals(a) ** 3)


def t_norm_singular(x):
    return (
        torch.linalg.matrix_norm(x, "nuc")
        + torch.linalg.matrix_norm(x, 2)
        + 0.5 * torch.linalg.matrix_norm(x, -2)
    )


def t_svd_stack(a):
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    weights = torch.arange(1.0, 1.0 + s.shape[-1], dtype=torch.float64)
    return (
        torch.sum(s**2 * weights)
        + torch.sum((u[..., :, 0] * vh[..., 0, :1]) ** 2)
        + torch.sum(torch.sin(u @ vh))
    )


def t_svd_values_stack(a):
    return torch.sum(torch.linalg.svdvals(a) ** 3)


def t_pinv_stack(A):
    return torch.sum(torch.sin(torch.linalg.pinv(A)))


def numpys_symmetric_stack(A, upper=False):
    """The symmetric matrices NumPy's cholesky factors: one triangle of each, mirrored."""
    if upper:
        return torch.triu(A) + torch.triu(A, 1).mT
    return torch.tril(A) + torch.tril(A, -1).mT


def t_chol_stack(A):
    return torch.sum(torch.linalg.cholesky(numpys_symmetric_stack(A)) ** 3)


def t_chol_upper(A):
    return torch.sum(torch.sin(torch.linalg.cholesky(numpys_symmetric_stack(A, upper=True), upper=True)))


def t_norm_singular_stack(x):
    nuc = torch.linalg.matrix_norm(x, "nuc", dim=(1, 2))
    two = torch.linalg.matrix_norm(x, 2, dim=(2, 0), keepdim=True)
    weights = torch.arange(1.0, 1.0 + nuc.numel(), dtype=torch.float64)
    return (
        torch.sum(nuc * weights) + torch.sum(two) + torch.sum(torch.linalg.matrix_norm(x, -2, dim=(-2, -1)))
    )


def t_qr(a):
    q, r = torch.linalg.qr(a)
    weights = torch.arange(1.0, 1.0 + r.shape[-1], dtype=torch.float64)
    return torch.sum(torch.sin(q)) + torch.sum(r**2 * weights) + torch.sum(torch.cos(r))


def t_qr_r(a):
    r = torch.linalg.qr(a)[1]  # torch differentiates mode="r" not at all
    return torch.sum(r**3) + torch.sum(torch.linalg.qr(a, mode="complete")[0][..., 0] ** 3)


def t_lstsq(a, b):
    x = torch.linalg.pinv(a) @ b  # full column rank: lstsq's solution
    residuals = torch.sum((b - a @ x) ** 2, dim=0)
    return torch.sum(torch.sin(x)) + torch.sum(residuals) * 0.5 + torch.sum(torch.linalg.svdvals(a) ** 2)


def t_trace_nd(x):
    t = torch.diagonal(x, 0, 0, 1).sum(-1)
    return (
        torch.sum(t**2)
        + torch.sum(torch.sin(torch.diagonal(x, 1, 2, 0).sum(-1)))
        + torch.sum(torch.diagonal(x, -1, 1, 2).sum(-1) ** 3)
    )


# np.dot of N-D operands sums a's last axis against b's second-to-last, keeping every other axis
# (found by autograd's test_dot: it was traced as `@`, which broadcasts batch axes instead, a
# wrong value of the same shape for (2, 3) . (2, 3, 4))
def dot_nd(a, b):
    return np.sum(np.dot(a, b) * np.linspace(-1.0, 1.0, 16).reshape(2, 2, 4))


def dot_method_nd(a, b):
    return np.sum(a.dot(b) ** 2)


def t_dot_nd(a, b):
    weights = torch.linspace(-1.0, 1.0, 16, dtype=torch.float64).reshape(2, 2, 4)
    return torch.sum(torch.tensordot(a, b, dims=([1], [1])) * weights)


def t_dot_method_nd(a, b):
    return torch.sum(torch.tensordot(a, b, dims=([2], [0])) ** 2)


def es_interleaved(a, b):
    return np.sum(np.einsum(a, [0, 1], b, [1, 2], [0, 2]) ** 2) + np.sum(np.einsum(a, [Ellipsis, 0]))


def t_es_interleaved(a, b):
    return torch.sum(torch.einsum("ij,jk->ik", a, b) ** 2) + torch.sum(torch.einsum("...i->...i", a))


CASES = [  # (function, torch version, argument maker)
    (es_interleaved, t_es_interleaved, lambda: (normal(2, 3), normal(3, 4))),
    (dot_nd, t_dot_nd, lambda: (normal(2, 3), normal(2, 3, 4))),
    (dot_method_nd, t_dot_method_nd, lambda: (normal(2, 2, 3), normal(3))),
    (es_matmul, t_es_matmul, lambda: (normal(2, 3), normal(3, 4))),
    (es_implicit, t_es_implicit, lambda: (normal(2, 3), normal(4, 3))),
    (es_diagonal, t_es_diagonal, lambda: (normal(3, 3),)),
    (es_traces, t_es_traces, lambda: (normal(3, 3),)),
    (es_partial_diagonal, t_es_partial_diagonal, lambda: (normal(3, 3, 2),)),
    (es_ellipsis, t_es_ellipsis, lambda: (normal(2, 3, 2), normal(2, 3))),
    (es_broadcast, t_es_broadcast, lambda: (normal(1, 3), normal(4, 3))),
    (es_three, t_es_three, lambda: (normal(2), normal(2, 3), normal(3, 2))),
    (es_sum, t_es_sum, lambda: (normal(2, 3),)),
    (td_pairs, t_td_pairs, lambda: (normal(3, 2, 2), normal(2, 3, 2))),
    (td_int, t_td_int, lambda: (normal(2, 3), normal(3, 2))),
    (inner_, t_inner, lambda: (normal(2, 3), normal(4, 3))),
    (kron_, t_kron, lambda: (normal(2, 2), normal(3))),
    (cross_, t_cross, lambda: (normal(2, 3), normal(3))),
    (cross_axes, t_cross_axes, lambda: (normal(3, 4), normal(4, 3))),
    (cross_axis, t_cross_axis, lambda: (normal(3, 2), normal(3, 2))),
    # NumPy 2.5 refused 2-vectors (test_cross_of_2_vectors_where_numpy_refuses_them)
    *([(cross_2d, t_cross_2d, lambda: (normal(4, 2), normal(2)))] if CROSS_TAKES_2_VECTORS else []),
    (cross_linalg, t_cross, lambda: (normal(2, 3), normal(3))),
    (bmm, t_bmm, lambda: (normal(2, 3, 2), normal(2, 3))),
    (bmm, t_bmm, lambda: (normal(3, 2), normal(2, 1, 2, 3))),
    (bmm_vector, t_bmm, lambda: (normal(2), normal(2, 2, 3))),
    (norm_default, t_norm_default, lambda: (normal(4),)),
    (norm_default, t_norm_default, lambda: (normal(2, 3),)),
    (norm_squared, t_norm_squared, lambda: (normal(4),)),
    (norm_1, t_norm_1, lambda: (normal(4),)),
    (norm_inf, t_norm_inf, lambda: (normal(4),)),
    (norm_p, t_norm_p, lambda: (normal(4),)),
    (norm_fro, t_norm_fro, lambda: (normal(2, 3),)),
    (norm_matrix_1_inf, t_norm_matrix_1_inf, lambda: (normal(3, 3),)),
    (norm_matrix_neg, t_norm_matrix_neg, lambda: (normal(3, 3),)),
    (norm_axis, t_norm_axis, lambda: (normal(3, 3),)),
    (norm_nd, t_norm_nd, lambda: (normal(2, 2, 3),)),
    (solve_vector, t_solve_vector, lambda: (well_conditioned(), normal(3))),
    (solve_matrix, t_solve_matrix, lambda: (well_conditioned(), normal(3, 2))),
    (solve_rhs, t_solve_rhs, lambda: (normal(3), well_conditioned())),
    # stacks of matrices, shape (..., n, n): batch axes broadcast as NumPy 2 does (a 1-D b is
    # one vector for every matrix; else b is (..., n, k), its batch broadcast against A's)
    (solve_matrix, t_solve_matrix, lambda: (well_conditioned_stack(2, 1, 3, 3), normal(4, 3, 2))),
    (solve_matrix, t_solve_matrix, lambda: (well_conditioned_stack(3, 4, 4), normal(4, 2))),
    (solve_matrix, t_solve_matrix, lambda: (well_conditioned(), normal(2, 3, 2))),
    (solve_vector, t_solve_vector, lambda: (well_conditioned_stack(2, 3, 3, 3), normal(3))),
    (solve_rhs, t_solve_rhs, lambda: (normal(3), well_conditioned_stack(2, 3, 3))),
    (inv_stack, t_inv_stack, lambda: (well_conditioned_stack(3, 4, 4),)),
    (inv_stack, t_inv_stack, lambda: (well_conditioned_stack(2, 3, 4, 4),)),
    (det_stack, t_det_stack, lambda: (well_conditioned_stack(3, 4, 4),)),
    (det_stack, t_det_stack, lambda: (well_conditioned_stack(2, 3, 4, 4),)),
    (det_log_stack, t_det_log_stack, lambda: (well_conditioned_stack(2, 2, 3, 3),)),
    (det_, t_det, lambda: (well_conditioned(),)),
    (det_log, t_det_log, lambda: (well_conditioned(),)),
    (chol_lower, t_chol_lower, lambda: (spd(),)),
    (chol_sym, t_chol_sym, lambda: (normal(3, 3),)),
    (power_5, t_power_5, lambda: (normal(3, 3) / 2,)),
    (power_3, t_power_3, lambda: (normal(3, 3) / 2,)),
    (power_neg, t_power_neg, lambda: (well_conditioned(),)),
    (pinv_tall, t_pinv_tall, lambda: (normal(4, 2),)),
    (pinv_wide, t_pinv_wide, lambda: (normal(2, 3),)),
    (svd_all, t_svd_all, lambda: (normal(3, 3),)),
    (svd_all, t_svd_all, lambda: (normal(3, 2),)),
    (svd_all, t_svd_all, lambda: (normal(2, 3),)),
    (svd_values, t_svd_values, lambda: (normal(3, 2),)),
    (norm_singular, t_norm_singular, lambda: (normal(3, 3),)),
    (svd_stack, t_svd_stack, lambda: (normal(2, 2, 3),)),
    (svd_stack, t_svd_stack, lambda: (normal(2, 1, 3, 2),)),
    (svd_values_stack, t_svd_values_stack, lambda: (normal(2, 3, 2),)),
    (pinv_stack, t_pinv_stack, lambda: (normal(2, 3, 2),)),
    (pinv_stack, t_pinv_stack, lambda: (normal(2, 2, 3),)),
    (chol_stack, t_chol_stack, lambda: (spd_stack(2, 3),)),
    (chol_upper, t_chol_upper, lambda: (spd(),)),
    (chol_upper, t_chol_upper, lambda: (spd_stack(2, 3),)),
    (norm_singular_stack, t_norm_singular_stack, lambda: (normal(3, 2, 3),)),
    (trace_nd, t_trace_nd, lambda: (normal(3, 4, 5),)),
    (qr_, t_qr, lambda: (normal(4, 3),)),
    (qr_, t_qr, lambda: (normal(3, 3),)),
    (qr_, t_qr, lambda: (normal(2, 4),)),
    (qr_, t_qr, lambda: (normal(2, 3, 2),)),
    (qr_, t_qr, lambda: (normal(2, 2, 3),)),
    (qr_r, t_qr_r, lambda: (normal(2, 3),)),
    (lstsq_, t_lstsq, lambda: (normal(4, 2), normal(4))),
    (lstsq_, t_lstsq, lambda: (normal(4, 3), normal(4, 2))),
    (lstsq_, t_lstsq, lambda: (normal(3, 3), normal(3, 2))),
]
# Values from NumPy's singular-values-only call (`compute_uv=False`, `norm(x, 'nuc')`), which
# symgrad computes with the full svd (its derivative needs U and V): equal up to rounding.
ROUNDED = {svd_values, norm_singular, svd_values_stack, norm_singular_stack, lstsq_}
IDS = [f"{case[0].__name__}-{k}" for k, case in enumerate(CASES)]

# One case or more of each function for the second-order checks (hessians cost more).
SECOND_ORDER = {
    "es_matmul",
    "es_diagonal",
    "es_partial_diagonal",
    "es_broadcast",
    "es_three",
    "dot_nd",
    "td_pairs",
    "inner_",
    "kron_",
    "cross_",
    "cross_axes",
    "cross_2d",
    "bmm",
    "bmm_vector",
    "norm_squared",
    "norm_p",
    "norm_fro",
    "norm_axis",
    "norm_matrix_1_inf",
    "solve_vector",
    "solve_matrix",
    "solve_rhs",
    "inv_stack",
    "det_stack",
    "det_log_stack",
    "det_log",
    "chol_lower",
    "chol_sym",
    "power_3",
    "power_neg",
    "pinv_tall",
    "svd_all",
    "svd_values",
    "norm_singular",
    "svd_stack",
    "pinv_stack",
    "chol_upper",
    "norm_singular_stack",
    "trace_nd",
}
SECOND_CASES = [case for case in CASES if case[0].__name__ in SECOND_ORDER]
SECOND_IDS = [f"{case[0].__name__}-{k}" for k, case in enumerate(SECOND_CASES)]


def names(fn):
    return tuple(inspect.signature(fn).parameters)


def torch_gradients(torch_fn, args):
    tensors = [T(a) for a in args]
    torch_fn(*tensors).backward()
    return [t.grad.numpy() for t in tensors]


# --- first order: reverse mode, every argument --------------------------------------------------


@pytest.mark.parametrize("fn,torch_fn,make", CASES, ids=IDS)
def test_gradient_against_torch_and_finite_differences(fn, torch_fn, make):
    args = make()
    got = grad(fn, wrt=names(fn))(*args)
    got = got if isinstance(got, tuple) else (got,)
    expected = torch_gradients(torch_fn, args)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert isinstance(g, np.ndarray) and g.shape == np.shape(args[i])
        np.testing.assert_allclose(g, fd_gradient(fn, args, i), rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(g, e, **TOL)


@pytest.mark.parametrize("fn,torch_fn,make", CASES, ids=IDS)
def test_value_is_numpys_own(fn, torch_fn, make):
    args = make()
    value, _ = value_and_grad(fn)(*args)
    if fn in ROUNDED:
        np.testing.assert_allclose(value, fn(*args), rtol=1e-13)
    else:
        assert value == fn(*args)  # the same NumPy calls (or the same products): the same float
    assert type(value) is float


# --- forward mode --------------------------------------------------------------------------------


@pytest.mark.parametrize("fn,torch_fn,make", CASES, ids=IDS)
def test_jvp_against_torch(fn, torch_fn, make):
    args = make()
    tangents = tuple(RNG.normal(size=np.shape(a)) for a in args)
    value, got = jvp(fn, wrt=names(fn))(args, tangents)
    t_value, expected = torch.func.jvp(
        torch_fn, tuple(T(a, False) for a in args), tuple(T(t, False) for t in tangents)
    )
    np.testing.assert_allclose(value, t_value.item(), **TOL)
    np.testing.assert_allclose(got, expected.item(), **TOL)


# --- second order --------------------------------------------------------------------------------


@pytest.mark.parametrize("fn,torch_fn,make", SECOND_CASES, ids=SECOND_IDS)
def test_hessian_against_torch(fn, torch_fn, make):
    args = make()
    got = hessian(fn)(*args)
    rest = [T(a, False) for a in args[1:]]
    expected = torch.autograd.functional.hessian(lambda a: torch_fn(a, *rest), T(args[0])).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(
    "fn,x",
    [(chol_lower, spd()), (qr_, normal(3, 2)), (qr_, normal(2, 3)), (lstsq_of_a, normal(3, 2))],
    ids=["cholesky", "qr-tall", "qr-wide", "lstsq"],
)
def test_hessian_against_finite_differences_of_the_gradient(fn, x):
    got = hessian(fn)(x)
    g = grad(fn)
    for index in np.ndindex(x.shape):
        row = fd_gradient(lambda a, index=index: g(a)[index], [x], 0)
        np.testing.assert_allclose(got[index], row, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "fn,torch_fn,make",
    [case for case in CASES if case[0] in (solve_vector, es_three, chol_sym, pinv_wide, norm_axis)],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_forward_over_reverse_against_torch(fn, torch_fn, make):
    """jvp(grad(f)): the derivative program's own operations differentiated forward."""
    args = make()
    tangent = RNG.normal(size=np.shape(args[0]))
    rest = [T(a, False) for a in args[1:]]
    g, hv = jvp(grad(fn))(args, (tangent,))
    _, expected = torch.func.jvp(
        torch.func.grad(lambda a: torch_fn(a, *rest)), (T(args[0], False),), (T(tangent, False),)
    )
    np.testing.assert_allclose(g, grad(fn)(*args), **TOL)
    np.testing.assert_allclose(hv, expected.numpy(), **TOL)


def test_grad_of_grad():
    """grad of an array-valued gradient differentiates the sum of its elements (as in
    test_multi_output): d/dA sum(d det / dA), against torch's second backward pass."""
    A = well_conditioned()
    got = grad(grad(det_))(A)
    t = T(A)
    (first,) = torch.autograd.grad(torch.linalg.det(t), t, create_graph=True)
    torch.sum(first).backward()
    np.testing.assert_allclose(got, t.grad.numpy(), **TOL)
    b = normal(3)
    got = grad(grad(solve_rhs))(b, A)
    tb, tA = T(b), T(A, False)
    (first,) = torch.autograd.grad(t_solve_rhs(tb, tA), tb, create_graph=True)
    torch.sum(first).backward()
    np.testing.assert_allclose(got, tb.grad.numpy(), **TOL)


def test_grad_of_grad_of_stacks():
    """d/dA sum(d f / dA) of det and of a broadcast solve on stacks, against torch's second
    backward pass: the stacked VJPs (per-matrix transposes, (..., 1, 1) scales, sums over
    broadcast batch axes) differentiated again."""
    A = well_conditioned_stack(2, 3, 3)
    got = grad(grad(det_stack))(A)
    t = T(A)
    (first,) = torch.autograd.grad(t_det_stack(t), t, create_graph=True)
    torch.sum(first).backward()
    np.testing.assert_allclose(got, t.grad.numpy(), **TOL)
    A, B = well_conditioned_stack(2, 1, 3, 3), normal(4, 3, 2)
    got = grad(grad(solve_matrix, wrt=("A", "B")), wrt=("A", "B"))(A, B)
    tA, tB = T(A), T(B)
    firsts = torch.autograd.grad(t_solve_matrix(tA, tB), (tA, tB), create_graph=True)
    sum(torch.sum(f) for f in firsts).backward()
    for g, e in zip(got, (tA.grad, tB.grad)):
        np.testing.assert_allclose(g, e.numpy(), **TOL)


def test_jacobian_of_a_stacked_inverse():
    """jacobian of inv of a stack: block diagonal across the batch (matrices do not mix)."""
    A = well_conditioned_stack(2, 3, 3)
    got = jacobian(inv_out)(A)
    expected = torch.autograd.functional.jacobian(torch.linalg.inv, T(A, False)).numpy()
    assert got.shape == (2, 3, 3, 2, 3, 3)
    np.testing.assert_allclose(got, expected, **TOL)


def inv_out(A):
    return np.linalg.inv(A)


# --- arrays out: jacobians -----------------------------------------------------------------------


def solve_out(b, A):
    return np.linalg.solve(A, b)


def einsum_out(a):
    return np.einsum("ij->ji", a) * 2.0


def test_jacobians_of_array_outputs():
    A, b = well_conditioned(), normal(3)
    np.testing.assert_allclose(jacobian(solve_out)(b, A), np.linalg.inv(A), **TOL)
    a = normal(2, 3)
    expected = torch.autograd.functional.jacobian(lambda t: torch.einsum("ij->ji", t) * 2.0, T(a, False))
    np.testing.assert_allclose(jacobian(einsum_out)(a), expected.numpy(), **TOL)


# --- degenerate points -----------------------------------------------------------------------------


def norm_rows(x):
    return np.sum(np.linalg.norm(x, axis=1))


@pytest.mark.parametrize(
    "fn,torch_fn,x",
    [
        (norm_default, t_norm_default, np.zeros(4)),
        (norm_fro, t_norm_fro, np.zeros((2, 3))),
        (norm_p, t_norm_p, np.zeros(4)),
        (
            norm_rows,
            lambda t: torch.sum(torch.linalg.vector_norm(t, dim=1)),
            np.array([[0.0, 0.0], [3.0, 4.0]]),
        ),
    ],
    ids=["vector", "fro", "p", "one-zero-row"],
)
def test_norm_gradient_at_zero_is_zero_as_in_torch(fn, torch_fn, x):
    got = grad(fn)(x)
    assert np.all(np.isfinite(got))
    (expected,) = torch_gradients(torch_fn, (x,))
    np.testing.assert_array_equal(got, expected)
    _, tangent = jvp(fn)((x,), (np.ones_like(x),))
    assert np.isfinite(tangent)


def norm_count(x):
    return np.linalg.norm(x, 0) * 2.0


def test_norm_ord_0_counts_and_has_zero_gradient():
    x = np.array([0.0, 1.5, -2.0, 0.0])
    value, g = value_and_grad(norm_count)(x)
    assert value == 4.0
    np.testing.assert_array_equal(g, np.zeros(4))


def power_0(A):
    return np.sum(np.linalg.matrix_power(A, 0) * A)


def test_matrix_power_0_is_the_identity():
    A = normal(3, 3)
    value, g = value_and_grad(power_0)(A)
    assert value == np.trace(A)
    np.testing.assert_array_equal(g, np.eye(3))


def test_det_gradient_at_a_singular_matrix_raises():
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(np.linalg.LinAlgError):
        grad(det_)(singular)


# --- the generated program ------------------------------------------------------------------------


def test_generated_source_makes_numpys_calls():
    a, b = normal(2, 3), normal(3, 4)
    vg = value_and_grad(es_matmul, wrt=("a", "b"))
    vg(a, b)
    assert "numpy.einsum('ij,jk->ik', a, b)" in vg.source, vg.source
    g = value_and_grad(solve_vector, wrt=("A", "b"))
    g(well_conditioned(), normal(3))
    assert g.source.count("numpy.linalg.solve(") == 2, g.source  # the value, then one for both adjoints
    assert "inv(" not in g.source, g.source
    n = value_and_grad(norm_default)
    n(normal(4))
    assert "numpy.linalg.norm(x)" in n.source, n.source


# --- refusals name the user's line ------------------------------------------------------------------


def einsum_interleaved(a, b):
    return np.sum(np.einsum(a, [0, 1], b, [1, 2]))


def einsum_axes_traced(a, b):
    return np.sum(np.einsum(a, [0, b.shape[0] * 0 + 1], b, [1, 2.0]))  # 2.0: not an axis number


def einsum_mismatch(a, b):
    return np.sum(np.einsum("ij,jk->ik", a, b))


def test_einsum_interleaved_form_reads_as_its_subscripts():
    # np.einsum(a, [0, 1], b, [1, 2]) is np.einsum('ab,bc', a, b): NumPy's interleaved form
    # (it was refused; autograd's test_einsum2_* write it)
    a, b = normal(2, 3), normal(3, 2)
    value, (ga, gb) = value_and_grad(einsum_interleaved, wrt=("a", "b"))(a, b)
    assert value == einsum_interleaved(a, b)
    np.testing.assert_allclose(ga, np.tile(b.sum(axis=1), (2, 1)), rtol=1e-14)
    np.testing.assert_allclose(gb, np.tile(a.sum(axis=0)[:, None], (1, 2)), rtol=1e-14)


def test_einsum_axes_that_are_no_axis_numbers_are_refused_with_a_hint():
    with pytest.raises(UnsupportedSyntaxError) as info:
        grad(einsum_axes_traced)(normal(2, 3), normal(3, 2))
    err = info.value
    assert err.filename == __file__ and "np.einsum(a, [0, b.shape[0]" in (err.source_line or "")
    assert "subscripts" in str(err) and "np.einsum('ij,jk->ik', a, b)" in err.hint


def test_einsum_shapes_that_do_not_fit():
    with pytest.raises(TracingError) as info:
        grad(einsum_mismatch)(normal(2, 3), normal(4, 2))
    err = info.value
    assert err.filename == __file__ and "einsum" in (err.source_line or "")
    assert "(2, 3), (4, 2)" in str(err) and err.hint


def inv_of(A):
    return np.sum(np.linalg.inv(A))


def det_of(A):
    return np.sum(np.linalg.det(A))


def solve_of(A, b):
    return np.sum(np.linalg.solve(A, b))


@pytest.mark.parametrize(
    "fn,args,shown",
    [
        (inv_of, (normal(2, 3, 4),), "np.linalg.inv(A)"),
        (det_of, (normal(3),), "np.linalg.det(A)"),
        (solve_of, (normal(2, 3, 4), normal(3)), "np.linalg.solve(A, b)"),
    ],
    ids=["inv-3x4-stack", "det-vector", "solve-3x4-stack"],
)
def test_matrices_that_are_not_square_are_refused_with_a_working_hint(fn, args, shown):
    """NumPy refuses them too; symgrad says where, and its hint (square matrices, or a
    stack of them) works."""
    with pytest.raises(TracingError) as info:
        grad(fn)(*args)
    err = info.value
    assert err.filename == __file__ and shown in (err.source_line or "")
    assert str(np.shape(args[0])) in str(err) and "square" in str(err)
    assert "(..., n, n)" in err.hint
    square = (well_conditioned_stack(2, 3, 3), *args[1:])
    np.testing.assert_allclose(grad(fn)(*square), fd_gradient(fn, square, 0), rtol=1e-7, atol=1e-8)


def test_solve_batch_axes_that_do_not_broadcast():
    A, b = well_conditioned_stack(2, 3, 3), normal(4, 3, 1)
    with pytest.raises(TracingError) as info:
        grad(solve_of)(A, b)
    err = info.value
    assert err.filename == __file__ and "np.linalg.solve(A, b)" in (err.source_line or "")
    assert "(2, 3, 3)" in str(err) and "(4, 3, 1)" in str(err) and "broadcast" in err.hint
    b = normal(2, 3, 1)  # batch axes that broadcast, as the hint says
    np.testing.assert_allclose(grad(solve_of)(A, b), fd_gradient(solve_of, (A, b), 0), rtol=1e-7, atol=1e-8)


def svd_full(a):
    return np.sum(np.linalg.svd(a)[1])


def svd_reduced(a):  # svd_full as its hint says
    return np.sum(np.linalg.svd(a, full_matrices=False)[1])


def pinv_hermitian(a):
    return np.sum(np.linalg.pinv(a, hermitian=True) ** 2)


def pinv_general(a):  # pinv_hermitian as its hint says
    return np.sum(np.linalg.pinv(a) ** 2)


def svd_hermitian(a):
    return np.sum(np.linalg.svd(a, hermitian=True)[1])


def svd_via_eigh(a):  # svd_hermitian as its hint says (positive definite: eigenvalues are S)
    return np.sum(np.linalg.eigh(a)[0])


def svd_of_vector(a):
    return np.sum(np.linalg.svd(a, compute_uv=False))


def svd_of_column(a):  # svd_of_vector as its hint says: a matrix
    return np.sum(np.linalg.svd(a[:, None], compute_uv=False))


def lstsq_wide(a, b):
    return np.sum(np.linalg.lstsq(a, b)[0] ** 2)


def lstsq_via_pinv(a, b):  # lstsq_wide as its hint says
    return np.sum((np.linalg.pinv(a) @ b) ** 2)


def test_lstsq_of_a_wide_matrix_is_refused_with_a_working_hint():
    a, b = normal(2, 3), normal(2)
    with pytest.raises(UnsupportedSyntaxError) as info:
        grad(lstsq_wide)(a, b)
    err = info.value
    assert err.filename == __file__ and "np.linalg.lstsq(a, b)" in (err.source_line or "")
    assert "2x3" in str(err) and "np.linalg.pinv(a) @ b" in err.hint
    assert np.allclose(np.linalg.pinv(a) @ b, np.linalg.lstsq(a, b)[0], rtol=1e-12)
    got = grad(lstsq_via_pinv)(a, b)
    np.testing.assert_allclose(got, fd_gradient(lstsq_via_pinv, (a, b), 0), rtol=1e-7, atol=1e-8)


def qr_complete(a):
    return np.sum(np.linalg.qr(a, mode="complete").Q ** 3)


def qr_reduced(a):  # qr_complete as its hint says
    return np.sum(np.linalg.qr(a, mode="reduced").Q ** 3)


@pytest.mark.parametrize(
    "fn,fixed,x",
    [
        (qr_complete, qr_reduced, normal(3, 2)),
        (svd_full, svd_reduced, normal(3, 2)),
        (svd_full, svd_reduced, normal(2, 3, 2)),
        (pinv_hermitian, pinv_general, spd()),
        (svd_hermitian, svd_via_eigh, spd()),
        (svd_of_vector, svd_of_column, normal(3)),
    ],
    ids=["qr-complete", "svd-full", "svd-full-stack", "pinv-hermitian", "svd-hermitian", "svd-vector"],
)
def test_unsupported_options_are_refused_with_a_working_hint(fn, fixed, x):
    with pytest.raises(SymgradError) as info:
        grad(fn)(x)
    err = info.value
    assert err.filename == __file__ and err.hint and "np.linalg." in (err.source_line or "")
    assert "not supported" in str(err) or "no derivative" in str(err) or "takes matrices" in str(err)
    np.testing.assert_allclose(grad(fixed)(x), fd_gradient(fixed, (x,), 0), rtol=1e-7, atol=1e-8)


def svd_vectors(a):
    u, _, _ = np.linalg.svd(a, full_matrices=False)
    return np.sum(u**4)


def test_repeated_singular_values():
    """The singular values' gradient stays finite; the vectors' is inf or nan, as in PyTorch."""
    a = np.diag([2.0, 2.0, 1.0])
    np.testing.assert_allclose(grad(svd_values)(a), 3 * np.diag([4.0, 4.0, 1.0]), **TOL)
    assert not np.all(np.isfinite(grad(svd_vectors)(a)))
    t = T(a)
    torch.sum(torch.linalg.svd(t, full_matrices=False)[0] ** 4).backward()
    assert not np.all(np.isfinite(t.grad.numpy()))


def test_triangular_solves_of_the_cholesky_derivative_use_scipy_or_fall_back_to_numpy(monkeypatch):
    # cholesky's VJP solves with its triangular factor: SciPy's triangular solve (no LU) where
    # installed, numpy.linalg.solve otherwise; the gradient is the same either way
    from symgrad import runtime

    B = normal(3, 3)
    compiled = grad(chol_sym)
    with_scipy = compiled(B)
    assert "sg.solve_triangular(" in compiled.source
    lower = np.tril(B) + 3.0 * np.eye(3)
    monkeypatch.setitem(sys.modules, "scipy.linalg", None)  # `from scipy.linalg import ...` fails
    assert np.array_equal(runtime.solve_triangular(lower, B, lower=True), np.linalg.solve(lower, B))
    np.testing.assert_allclose(grad(chol_sym)(B), with_scipy, rtol=1e-12)


def cross_wrong_axis(a, b):
    return np.sum(np.cross(a, b, axisa=0))


def test_cross_of_vectors_of_other_lengths_is_refused_with_a_working_hint():
    a, b = normal(4, 3), normal(4, 3)  # axisa=0 has length 4: NumPy refuses it too
    with pytest.raises(TracingError) as info:
        grad(cross_wrong_axis)(a, b)
    err = info.value
    assert err.filename == __file__ and "np.cross(a, b, axisa=0)" in (err.source_line or "")
    assert "(4, 3)" in str(err) and "axisa=" in err.hint
    a = normal(3, 4)  # the vector axis of length 3, as the hint says
    np.testing.assert_allclose(
        grad(cross_wrong_axis)(a, b), fd_gradient(cross_wrong_axis, (a, b), 0), rtol=1e-7, atol=1e-8
    )


def scipy_solve(a, b):
    return np.sum(scipy_linalg.solve(a, b))


def scipy_cholesky(a):
    return np.sum(scipy_linalg.cholesky(a))


def numpy_cholesky_upper(a):  # what the hint says to write
    return np.sum(np.linalg.cholesky(a, upper=True))


def test_scipy_linalg_functions_point_to_numpys_with_a_hint_that_works():
    a = np.array([[4.0, 1.0], [1.0, 3.0]])
    with pytest.raises(UnknownCalleeError) as info:
        grad(scipy_solve)(a, np.ones(2))
    assert "`np.linalg.solve(...)`" in info.value.hint and "test_linalg.py" in str(info.value)
    with pytest.raises(UnknownCalleeError) as info:
        grad(scipy_cholesky)(a)
    assert "upper=True" in info.value.hint
    np.testing.assert_allclose(numpy_cholesky_upper(a), np.sum(scipy_linalg.cholesky(a)), rtol=1e-14)
    np.testing.assert_allclose(
        grad(numpy_cholesky_upper)(a), fd_gradient(scipy_cholesky, (a,)), rtol=1e-7, atol=1e-9
    )


def test_cross_of_2_vectors_where_numpy_refuses_them():
    """np.linalg.cross takes 3-vectors only, and np.cross too from NumPy 2.5: symgrad refuses
    2-vectors where NumPy does, at the user's line, and the hint's z component works."""
    a, b = normal(4, 2), normal(2)
    calls = [(cross_linalg, "np.linalg.cross")] + ([] if CROSS_TAKES_2_VECTORS else [(cross_2d, "np.cross")])
    for fn, name in calls:
        with pytest.raises(TracingError) as info:
            grad(fn)(a, b)
        assert info.value.filename == __file__ and f"{name} of shapes" in str(info.value)
        assert "takes 3-vectors only" in str(info.value) and "a[..., 0] * b[..., 1]" in info.value.hint

    def z_squared(a, b):  # the hint, followed
        return np.sum((a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]) ** 2)

    z = a[:, 0] * b[1] - a[:, 1] * b[0]
    np.testing.assert_allclose(grad(z_squared)(a, b), np.stack([2 * z * b[1], -2 * z * b[0]], axis=1), **TOL)


def cross_of_a_number(a, b):
    return np.sum(np.cross(a, b))


def cross_float_axis(a, b):
    return np.sum(np.cross(a, b, axis=1.5))


def test_cross_of_a_number_or_a_float_axis_is_refused_at_the_line():
    """What NumPy's np.cross refuses (a number has no vector axis; an axis must be an int) is a
    TracingError at the user's line with the hint, never an error of symgrad's own code."""
    for fn, args, why in [
        (cross_of_a_number, (1.0, normal(3)), "a number has no vector axis"),
        (cross_float_axis, (normal(3), normal(3)), "the axes are not ints"),
    ]:
        with pytest.raises(TracingError) as info:
            grad(fn)(*args)
        assert info.value.filename == __file__ and "np.cross of shapes" in str(info.value), fn
        assert why in str(info.value) and "whose other axes broadcast" in info.value.hint, fn
