"""Multi-output nodes (`graph.Multi`): one call computing several values, `np.linalg.slogdet`
and `np.linalg.eigh`, through every stage and both modes, to second order.

Each gradient is checked against central differences of the original function and against
PyTorch in float64 (`torch.linalg.slogdet`, `torch.linalg.eigh`); values against NumPy's own
result of the function; the generated source against the single call it must make."""

import re

import numpy as np
import pytest

from symgrad import grad, hessian, jacobian, jvp, value_and_grad
from symgrad.errors import SymgradError, TracingError
from tests.helpers import richardson_gradient as fd_gradient

torch = pytest.importorskip("torch", reason="PyTorch checks need the torch extra: pip install torch==2.13.0")

RNG = np.random.default_rng(20260514)
TOL = {"rtol": 1e-10, "atol": 1e-12}
WEIGHTS = np.array([0.3, -1.2, 0.7, 2.0])


def well_conditioned(n: int = 4) -> np.ndarray:
    """A random matrix far from singular, with a negative determinant half the time."""
    a = RNG.normal(size=(n, n)) + 3.0 * np.eye(n)
    return a if RNG.random() < 0.5 else a[::-1].copy()


def well_conditioned_stack(*shape: int) -> np.ndarray:
    """A stack of matrices far from singular, shape (..., n, n), about half of them with a
    negative determinant (two rows swapped)."""
    a = RNG.normal(size=shape) + 3.0 * np.eye(shape[-1])
    flip = RNG.random(size=shape[:-2]) < 0.5
    a[flip] = a[flip][..., [1, 0, *range(2, shape[-1])], :]
    return a


def symmetric_input(n: int = 4) -> np.ndarray:
    """A general matrix B; the functions below take eigh of B + B.T (well separated eigenvalues)."""
    return RNG.normal(size=(n, n)) + np.diag(np.arange(n) * 2.0)


def symmetric_input_stack(*batch: int, n: int = 4) -> np.ndarray:
    """A stack of general matrices B, shape (*batch, n, n): eigh of B + B^T per matrix."""
    return RNG.normal(size=(*batch, n, n)) + np.diag(np.arange(n) * 2.0)


def T(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


# --- user functions (module level: symgrad reads their source) --------------------------------


def logdet(A):
    _, logdet = np.linalg.slogdet(A)
    return logdet


def det_from_both(A):
    sign, logdet = np.linalg.slogdet(A)
    return sign * np.exp(logdet) + 0.5 * logdet


def by_attribute(A):
    return np.linalg.slogdet(A).logabsdet


def by_index(A):
    return 3.0 * np.linalg.slogdet(A)[1]


def twice(A):
    return np.linalg.slogdet(A)[1] + np.linalg.slogdet(A).logabsdet * 2.0


def gaussian_nll(L, x):
    S = L @ L.T + np.eye(len(x))
    _, logdet = np.linalg.slogdet(S)
    return 0.5 * logdet + 0.5 * x @ np.linalg.inv(S) @ x


def eig_both(B):
    A = B + B.T
    w, V = np.linalg.eigh(A)
    return np.sum(w**3) / 10.0 + np.sum(V[:, -1] * WEIGHTS) ** 2  # eigenvector signs cancel


def eig_values(B):
    w, _ = np.linalg.eigh(B + B.T)
    return np.sum(np.sin(w))


def eig_vectors(B):
    V = np.linalg.eigh(B + B.T).eigenvectors
    return np.sum(V**4 @ WEIGHTS)


def eig_upper(B):
    w, V = np.linalg.eigh(B @ B.T, UPLO="U")
    return np.sum(w * WEIGHTS) + np.sum(V[:, 0] ** 2 * WEIGHTS)


def eig_one_triangle(A):
    # NumPy reads A's lower triangle only (found by autograd's test_eigvalh_lower: the
    # gradient was the symmetric matrix's, wrong for a general A by central differences)
    w, V = np.linalg.eigh(A)
    return np.sum(w**3) / 10.0 + np.sum(V[:, -1] * WEIGHTS) ** 2


def eig_upper_triangle(A):
    w, V = np.linalg.eigh(A, "U")
    return np.sum(np.sin(w)) + np.sum(V[:, 0] ** 2 * WEIGHTS)


def slogdet_stack(A):
    sign, logdet = np.linalg.slogdet(A)  # one (sign, log|det|) per matrix of the stack
    return np.sum(sign * logdet**2) + np.sum(np.exp(0.1 * logdet)[..., None, None] * A)


def eig_stack(B):
    w, V = np.linalg.eigh(B + np.swapaxes(B, -1, -2))  # one eigh per matrix of the stack
    weights = WEIGHTS[: B.shape[-1]]
    last = np.sum(V[..., :, -1] * weights, axis=-1)  # a number per matrix: its sign cancels
    return np.sum(w**3) * 0.1 + np.sum(last**2) + np.sum(np.sin(w) * weights)


def eig_stack_triangle(A):
    w, V = np.linalg.eigh(A, UPLO="U")  # NumPy reads each matrix's upper triangle only
    return np.sum(np.sin(w)) + np.sum(V[..., 0, :] ** 2 * WEIGHTS)


def slogdet_result(A):
    return np.linalg.slogdet(A)


def slogdet_in_while(A):
    s = 0.0
    while s < 10.0:
        s = s + np.linalg.slogdet(A)[1]
    return s


def slogdet_in_long_for(A):
    s = 0.0
    for i in range(70):
        s = s + np.linalg.slogdet(A * (1.0 + 0.01 * i))[1]
    return s


def slogdet_of_vector(v):
    return np.linalg.slogdet(v)[1]


# --- torch oracles -----------------------------------------------------------------------------


def torch_logdet(A):
    return torch.linalg.slogdet(A)[1]


def torch_det_from_both(A):
    sign, logdet = torch.linalg.slogdet(A)
    return sign * torch.exp(logdet) + 0.5 * logdet


def torch_slogdet_stack(A):
    sign, logdet = torch.linalg.slogdet(A)
    return torch.sum(sign * logdet**2) + torch.sum(torch.exp(0.1 * logdet)[..., None, None] * A)


def torch_gaussian_nll(L, x):
    S = L @ L.T + torch.eye(len(x), dtype=torch.float64)
    return 0.5 * torch.linalg.slogdet(S)[1] + 0.5 * x @ torch.linalg.inv(S) @ x


def torch_eig_both(B):
    w, V = torch.linalg.eigh(B + B.T)
    return torch.sum(w**3) / 10.0 + torch.sum(V[:, -1] * torch.tensor(WEIGHTS)) ** 2


def torch_eig_values(B):
    return torch.sum(torch.sin(torch.linalg.eigh(B + B.T)[0]))


def torch_eig_vectors(B):
    V = torch.linalg.eigh(B + B.T)[1]
    return torch.sum(V**4 @ torch.tensor(WEIGHTS))


def torch_eig_upper(B):
    w, V = torch.linalg.eigh(B @ B.T, UPLO="U")
    weights = torch.tensor(WEIGHTS)
    return torch.sum(w * weights) + torch.sum(V[:, 0] ** 2 * weights)


def numpys_symmetric(A, lower=True):
    """The symmetric matrix NumPy's eigh builds from the triangle of A it reads."""
    part = torch.tril(A) if lower else torch.triu(A)
    return part + part.T - torch.diag(torch.diagonal(A))


def torch_eig_stack(B):
    w, V = torch.linalg.eigh(B + B.transpose(-1, -2))
    weights = torch.tensor(WEIGHTS[: B.shape[-1]])
    last = torch.sum(V[..., :, -1] * weights, dim=-1)
    return torch.sum(w**3) * 0.1 + torch.sum(last**2) + torch.sum(torch.sin(w) * weights)


def torch_eig_stack_triangle(A):
    part = torch.triu(A)
    w, V = torch.linalg.eigh(part + part.transpose(-1, -2) - torch.diag_embed(torch.diagonal(A, 0, -2, -1)))
    return torch.sum(torch.sin(w)) + torch.sum(V[..., 0, :] ** 2 * torch.tensor(WEIGHTS))


def torch_eig_one_triangle(A):
    w, V = torch.linalg.eigh(numpys_symmetric(A))
    return torch.sum(w**3) / 10.0 + torch.sum(V[:, -1] * torch.tensor(WEIGHTS)) ** 2


def torch_eig_upper_triangle(A):
    w, V = torch.linalg.eigh(numpys_symmetric(A, lower=False))
    return torch.sum(torch.sin(w)) + torch.sum(V[:, 0] ** 2 * torch.tensor(WEIGHTS))


CASES = [  # (function, torch version, argument maker)
    (logdet, torch_logdet, lambda: (well_conditioned(),)),
    (det_from_both, torch_det_from_both, lambda: (well_conditioned(),)),
    (by_attribute, torch_logdet, lambda: (well_conditioned(),)),
    (slogdet_stack, torch_slogdet_stack, lambda: (well_conditioned_stack(3, 4, 4),)),
    (slogdet_stack, torch_slogdet_stack, lambda: (well_conditioned_stack(2, 3, 3, 3),)),
    (gaussian_nll, torch_gaussian_nll, lambda: (RNG.normal(size=(3, 3)), RNG.normal(size=3))),
    (eig_both, torch_eig_both, lambda: (symmetric_input(),)),
    (eig_values, torch_eig_values, lambda: (symmetric_input(),)),
    (eig_vectors, torch_eig_vectors, lambda: (symmetric_input(),)),
    (eig_upper, torch_eig_upper, lambda: (symmetric_input(),)),
    (eig_one_triangle, torch_eig_one_triangle, lambda: (symmetric_input(),)),
    (eig_upper_triangle, torch_eig_upper_triangle, lambda: (symmetric_input(),)),
    (eig_stack, torch_eig_stack, lambda: (symmetric_input_stack(3),)),
    (eig_stack, torch_eig_stack, lambda: (symmetric_input_stack(2, 2, n=3),)),
    (eig_stack_triangle, torch_eig_stack_triangle, lambda: (symmetric_input_stack(2, 3),)),
]
IDS = [f"{case[0].__name__}-{k}" for k, case in enumerate(CASES)]


def torch_gradient(torch_fn, args):
    tensors = [T(a) for a in args]
    torch_fn(*tensors).backward()
    return tensors[0].grad.numpy()


def torch_hessian(torch_fn, args):
    rest = [torch.tensor(a, dtype=torch.float64) for a in args[1:]]
    return torch.autograd.functional.hessian(lambda a: torch_fn(a, *rest), T(args[0])).numpy()


# --- first order: reverse mode -----------------------------------------------------------------


@pytest.mark.parametrize("fn,torch_fn,make", CASES, ids=IDS)
def test_gradient_against_torch_and_finite_differences(fn, torch_fn, make):
    args = make()
    got = grad(fn)(*args)
    assert isinstance(got, np.ndarray) and got.shape == np.shape(args[0])
    np.testing.assert_allclose(got, fd_gradient(fn, args), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(got, torch_gradient(torch_fn, args), **TOL)


# Functions that divide by a constant (`np.sum(w**3) / 10.0`): SymPy has no division, so
# x / 10.0 is x * (1/10) and prints as `0.1*x`, one ulp off NumPy's quotient for about a
# third of the inputs (README, Limits). Their value is checked to that ulp.
DIVIDE_BY_A_CONSTANT = {"eig_both", "eig_one_triangle"}


@pytest.mark.parametrize("fn,torch_fn,make", CASES, ids=IDS)
def test_value_is_numpys_own(fn, torch_fn, make):
    args = make()
    value, _ = value_and_grad(fn)(*args)
    if fn.__name__ in DIVIDE_BY_A_CONSTANT:
        assert value == pytest.approx(fn(*args), rel=4.5e-16, abs=0.0)
    else:
        assert value == fn(*args)  # the same NumPy calls in the same order: the same float
    assert type(value) is float


def test_index_and_attribute_and_unpacking_agree():
    A = well_conditioned()
    expected = np.linalg.inv(A).T
    np.testing.assert_allclose(grad(logdet)(A), expected, **TOL)
    np.testing.assert_allclose(grad(by_attribute)(A), expected, **TOL)
    np.testing.assert_allclose(grad(by_index)(A), 3.0 * expected, **TOL)
    np.testing.assert_allclose(grad(twice)(A), 3.0 * expected, **TOL)


# --- the node in the program: listing, generated code, CSE, liveness ---------------------------


def test_generated_source_makes_one_call_with_readable_names():
    A = well_conditioned()
    vg = value_and_grad(det_from_both)
    vg(A)
    source = vg.source
    assert source.count("numpy.linalg.slogdet(") == 1, source
    assert "    sign, logabsdet = numpy.linalg.slogdet(A)\n" in source, source
    assert "numpy.linalg.inv(A)" in source, source
    assert "sign, logabsdet = slogdet(A)" in str(vg.graph)


def test_the_same_call_twice_is_one_call():
    A = well_conditioned()
    vg = value_and_grad(twice)
    value, g = vg(A)
    assert value == twice(A)
    assert vg.source.count("numpy.linalg.slogdet(") == 1, vg.source
    assert vg.source.count("numpy.linalg.inv(") == 1, vg.source
    np.testing.assert_allclose(g, 3.0 * np.linalg.inv(A).T, **TOL)


def test_an_unused_output_is_freed_and_an_unneeded_call_dropped():
    A = well_conditioned()
    vg = value_and_grad(logdet)
    vg(A)
    lines = vg.source.splitlines()
    call = next(i for i, line in enumerate(lines) if "numpy.linalg.slogdet(A)" in line)
    assert lines[call + 1].strip().startswith("del ") and "sign" in lines[call + 1], vg.source
    g = grad(logdet)
    g(A)  # the gradient alone reads inv(A), not the call
    assert "slogdet" not in g.source, g.source


def test_eigh_source_and_listing():
    B = symmetric_input()
    vg = value_and_grad(eig_both)
    vg(B)
    assert vg.source.count("numpy.linalg.eigh(") == 1, vg.source
    assert re.search(r"^\s+eigenvalues, eigenvectors = numpy\.linalg\.eigh\(A\)$", vg.source, re.M), vg.source
    assert "eigenvalues, eigenvectors = eigh(A)" in str(vg.graph)
    vu = value_and_grad(eig_upper)
    vu(B)
    assert "UPLO='U'" in vu.source, vu.source


def test_returning_the_named_result():
    A = well_conditioned()
    sign_block, logdet_block = jacobian(slogdet_result)(A)
    np.testing.assert_allclose(sign_block, np.zeros((4, 4)), **TOL)
    np.testing.assert_allclose(logdet_block, np.linalg.inv(A).T, **TOL)


def test_exprs_name_the_call_only_when_results_read_it():
    A = well_conditioned()
    g = grad(logdet)
    g(A)
    assert len(g.exprs) == 1  # inv(A).T: a closed form
    vg = value_and_grad(logdet)
    vg(A)
    with pytest.raises(SymgradError, match="slogdet"):
        _ = vg.exprs


# --- forward mode, jacobian ---------------------------------------------------------------------


@pytest.mark.parametrize("fn,torch_fn,make", CASES, ids=IDS)
def test_jvp_against_torch(fn, torch_fn, make):
    args = make()
    tangent = RNG.normal(size=np.shape(args[0]))
    value, got = jvp(fn)(args, (tangent,))
    rest = [torch.tensor(a, dtype=torch.float64) for a in args[1:]]
    t_value, expected = torch.func.jvp(
        lambda a: torch_fn(a, *rest), (torch.tensor(args[0]),), (torch.tensor(tangent),)
    )
    np.testing.assert_allclose(value, t_value.item(), **TOL)
    np.testing.assert_allclose(got, expected.item(), **TOL)


def test_jvp_is_the_transpose_of_grad():
    B = symmetric_input()
    tangent = RNG.normal(size=B.shape)
    _, forward = jvp(eig_both)((B,), (tangent,))
    np.testing.assert_allclose(forward, np.sum(grad(eig_both)(B) * tangent), **TOL)


def test_jacobian_of_both_outputs():
    A = well_conditioned()

    def both(A):
        sign, logdet = np.linalg.slogdet(A)
        return logdet, sign * logdet

    first, second = jacobian(both)(A)
    sign = np.linalg.slogdet(A)[0]
    np.testing.assert_allclose(first, np.linalg.inv(A).T, **TOL)
    np.testing.assert_allclose(second, sign * np.linalg.inv(A).T, **TOL)


# --- second order --------------------------------------------------------------------------------


@pytest.mark.parametrize("fn,torch_fn,make", CASES, ids=IDS)
def test_hessian_against_torch(fn, torch_fn, make):
    args = make()
    got = hessian(fn)(*args)
    expected = torch_hessian(torch_fn, args)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


def test_hessian_against_finite_differences_of_the_gradient():
    A = well_conditioned(3)
    got = hessian(det_from_both)(A)
    g = grad(det_from_both)
    for index in np.ndindex(A.shape):
        row = fd_gradient(lambda a, index=index: g(a)[index], [A])
        np.testing.assert_allclose(got[index], row, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize(
    "fn,make",
    [
        (det_from_both, well_conditioned),
        (eig_both, symmetric_input),
        (eig_stack, lambda: symmetric_input_stack(2)),
        (slogdet_stack, lambda: well_conditioned_stack(2, 3, 3)),
    ],
)
def test_forward_over_reverse(fn, make):
    """jvp(grad(f)): the derivative program's Multi node and VJP taken forward again."""
    A = make()
    tangent = RNG.normal(size=A.shape)
    g, hv = jvp(grad(fn))((A,), (tangent,))
    np.testing.assert_allclose(g, grad(fn)(A), **TOL)
    np.testing.assert_allclose(hv, np.tensordot(hessian(fn)(A), tangent, axes=A.ndim), **TOL)


def test_grad_of_grad():
    A = well_conditioned()
    got = grad(grad(logdet))(A)
    t = T(A)
    torch.sum(torch.linalg.inv(t).T).backward()  # d/dA of sum(inv(A)^T)
    np.testing.assert_allclose(got, t.grad.numpy(), **TOL)


def test_grad_of_grad_of_a_stack():
    """d/dA sum(d f / dA) for slogdet of a stack of matrices, against torch's second pass."""
    A = well_conditioned_stack(2, 3, 3)
    got = grad(grad(slogdet_stack))(A)
    t = T(A)
    (first,) = torch.autograd.grad(torch_slogdet_stack(t), t, create_graph=True)
    torch.sum(first).backward()
    np.testing.assert_allclose(got, t.grad.numpy(), **TOL)


# --- repeated eigenvalues: inf or nan, as in PyTorch and JAX ------------------------------------


def test_repeated_eigenvalues():
    B = np.diag([1.0, 1.0, 2.0, 3.0]) / 2.0  # B + B.T has the eigenvalue 2 twice
    assert np.all(np.isfinite(grad(eig_values)(B)))  # eigenvalues alone: no 1/(w_j - w_i)
    ours = grad(eig_vectors)(B)
    theirs = torch_gradient(torch_eig_vectors, (B,))
    assert not np.all(np.isfinite(ours)) and not np.all(np.isfinite(theirs))


# --- where it is refused, and where it works by unrolling ---------------------------------------


def test_in_a_while_loop_is_refused_where_the_user_wrote_it():
    with pytest.raises(SymgradError) as info:
        grad(slogdet_in_while)(well_conditioned())
    err = info.value
    assert err.filename == __file__ and "while s < 10.0" in (err.source_line or "")
    assert "np.linalg.slogdet" in str(err) and "kept as a loop" in str(err)
    assert err.hint


def test_in_a_long_for_loop_unrolls_and_says_why():
    A = well_conditioned(3)
    g = grad(slogdet_in_long_for)
    np.testing.assert_allclose(g(A), 70 * np.linalg.inv(A).T, rtol=1e-11)
    assert "(unrolled: `np.linalg.slogdet` in the body of a loop kept as a loop)" in g.source
    kept = grad(slogdet_in_long_for, loops="keep")  # a body that cannot be kept unrolls here too
    np.testing.assert_allclose(kept(A), 70 * np.linalg.inv(A).T, rtol=1e-11)
    assert "(unrolled: `np.linalg.slogdet` in the body" in kept.source


def test_not_a_square_matrix():
    with pytest.raises(TracingError) as info:
        grad(slogdet_of_vector)(np.ones(3))
    err = info.value
    assert err.filename == __file__ and "np.linalg.slogdet(v)" in (err.source_line or "")
    assert "square" in err.hint and "(..., n, n)" in err.hint


def test_a_stack_of_matrices_that_are_not_square():
    """A stack whose matrices are not square is refused at the user's line (NumPy refuses it
    too); following the hint (square matrices, stacked) works."""
    with pytest.raises(TracingError) as info:
        grad(slogdet_of_vector)(np.ones((2, 3, 4)))
    err = info.value
    assert err.filename == __file__ and "np.linalg.slogdet(v)" in (err.source_line or "")
    assert "(2, 3, 4)" in str(err) and "square" in str(err)
    A = well_conditioned_stack(2, 3, 3)
    np.testing.assert_allclose(grad(slogdet_of_vector)(A[:1]), np.linalg.inv(A[:1]).transpose(0, 2, 1))
