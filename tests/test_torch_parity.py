"""Parity with PyTorch autograd: symgrad's numbers equal torch's at the same float64 inputs.

1. The code examples of the tutorial the project started from (PyTorch's `backward()`):
   relu + `y.sum().backward()`, `y.backward(torch.ones_like(y))`, `requires_grad` on some
   inputs only, `requires_grad_(False)`, `.detach()`, `torch.no_grad()`, gradient
   accumulation and `x.grad.zero_()`.
2. The conventions at kinks (relu, abs, maximum/minimum ties, sign, floor, round, clamp,
   comparisons) against the torch operation they mirror, on arrays holding the kink points.
3. jacobian / hessian / vjp / jvp of the smooth functions in tests/torch_cases.py against
   `torch.autograd.functional`, at several points and on (broadcast) arrays.
4. `grad` of a tuple-returning function: an error on floats, the sum rule on arrays.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch parity tests need the torch extra: pip install torch==2.13.0"
)
taf = torch.autograd.functional

import torch_cases as tc  # noqa: E402  (after the importorskip: it imports torch)
from helpers import all_partials  # noqa: E402

import symgrad  # noqa: E402
from symgrad import (  # noqa: E402
    detach,
    grad,
    hessian,
    jacobian,
    jvp,
    no_grad,
    stop_gradient,
    value_and_grad,
    vjp,
)

F64 = torch.float64
RTOL = 1e-12
ATOL = 1e-14


def T(value, requires_grad=False):
    """A float64 tensor (a copy) of a float or an array."""
    return torch.tensor(np.asarray(value, dtype=np.float64), dtype=F64, requires_grad=requires_grad)


def N(tensor):
    return tensor.detach().numpy()


def close(got, expected, rtol=RTOL, atol=ATOL):
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"shape {got.shape} != torch's {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def exact(got, expected):
    close(got, expected, rtol=0, atol=0)


def torch_sum_grads(f_torch, args):
    """Gradients of `f_torch(*args).sum()` (tuple outputs: the sum of all of them) by backward()."""
    leaves = [T(a, requires_grad=True) for a in args]
    out = f_torch(*leaves)
    outs = out if isinstance(out, tuple) else (out,)
    sum(o.sum() for o in outs).backward()
    return [N(leaf.grad) for leaf in leaves]


# =============================================================================================
# 1. The tutorial's code examples
# =============================================================================================


def relu(x):
    return np.maximum(x, 0)


def test_tutorial_relu_sum_backward_on_torch_arange():
    # x = torch.arange(-8.0, 8.0, 0.1, requires_grad=True); y = x.relu(); y.sum().backward()
    x = torch.arange(-8.0, 8.0, 0.1, dtype=F64, requires_grad=True)
    y = x.relu()
    y.sum().backward()
    got = grad(relu)(N(x))
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    exact(got, N(x.grad))


def test_tutorial_relu_sum_backward_on_numpy_arange_with_exact_zero():
    # NumPy's arange(-8, 8, 0.1) is not torch's bit for bit: feed both the same array, with
    # the exact kink point 0.0 added.
    xs = np.append(np.arange(-8, 8, 0.1), 0.0)
    x = T(xs, requires_grad=True)
    x.relu().sum().backward()
    got = grad(relu)(xs)
    exact(got, N(x.grad))
    assert got[-1] == 0.0  # relu'(0) = 0


def test_tutorial_value_and_grad_relu_matches_forward_and_backward():
    x = torch.arange(-8.0, 8.0, 0.1, dtype=F64, requires_grad=True)
    y = x.relu()
    y.sum().backward()
    value, g = value_and_grad(relu)(N(x))
    exact(value, N(y))
    exact(g, N(x.grad))


def test_tutorial_backward_with_ones_like_on_2d_result():
    # y.backward(torch.ones_like(y)) on a two-dimensional result tensor
    x = torch.arange(-8.0, 8.0, 0.1, dtype=F64).reshape(8, 20).requires_grad_(True)
    y = x.relu()
    y.backward(torch.ones_like(y))
    value, pullback = vjp(relu)(N(x))
    exact(value, N(y))
    got = pullback(np.ones_like(value))
    assert got.shape == (8, 20)
    exact(got, N(x.grad))
    # ... and it is the same as the gradient of the sum
    exact(grad(relu)(N(x)), N(x.grad))


def test_tutorial_backward_with_weights_on_2d_result():
    x = torch.arange(-8.0, 8.0, 0.1, dtype=F64).reshape(8, 20).requires_grad_(True)
    weights = torch.linspace(-2.0, 3.0, 160, dtype=F64).reshape(8, 20)
    y = x.relu()
    y.backward(weights)
    _, pullback = vjp(relu)(N(x))
    exact(pullback(N(weights)), N(x.grad))


def f1(x, y):
    return 2 * x + y


def f2(x, y, z):
    return y + z


def test_tutorial_requires_grad_on_one_input_only():
    # x requires grad, y does not: f1 = 2*x + y; f1.backward(); x.grad
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, dtype=F64, generator=gen).requires_grad_(True)
    y = torch.randn(1, dtype=F64, generator=gen)
    z = torch.randn(1, dtype=F64, generator=gen)
    out = f1(x, y)
    assert out.grad_fn is not None
    out.backward()
    assert y.grad is None
    exact(grad(f1, wrt="x")(N(x), N(y)), N(x.grad))
    exact(grad(f1, wrt="x")(float(N(x)[0]), float(y)), N(x.grad)[0])
    # f2 = y + z involves no tensor requiring grad: no grad_fn in torch, zero gradient here
    assert f2(x, y, z).grad_fn is None
    assert grad(f2, wrt="x")(float(N(x)[0]), float(y), float(z)) == 0.0


def b_plain(a):
    return (a * 3) / (a - 1)


def b_stopped(a):
    return stop_gradient((a * 3) / (a - 1))


def a_times_b_stopped(a):
    return a * stop_gradient((a * 3) / (a - 1))


def a_times_b_detached(a):
    b = detach((a * 3) / (a - 1))
    return a * b


def a_times_a_squared_no_grad(a):
    with no_grad():
        c = a**2
    return a * c


def no_grad_only(a):
    with no_grad():
        b = (a * 3) / (a - 1)
    return b


def _tutorial_a(seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, 2, dtype=F64, generator=gen)


def test_tutorial_b_with_grad():
    # a = torch.randn(2, 2, requires_grad=True); b = ((a * 3) / (a - 1))
    a = _tutorial_a().requires_grad_(True)
    b = (a * 3) / (a - 1)
    assert b.grad_fn is not None
    b.sum().backward()
    exact(b_plain(N(a)), N(b))
    close(grad(b_plain)(N(a)), N(a.grad))


def test_tutorial_b_after_requires_grad_false():
    # a.requires_grad_(False); b = ((a * 3) / (a - 1)); b.grad_fn is None
    a = _tutorial_a().requires_grad_(True)
    a.requires_grad_(False)
    b = (a * 3) / (a - 1)
    assert b.grad_fn is None and not b.requires_grad
    exact(grad(b_stopped)(N(a)), np.zeros((2, 2)))
    exact(grad(no_grad_only)(N(a)), np.zeros((2, 2)))
    # With a traced factor in front, b enters as a constant: d(a * b)/da = b.
    a.requires_grad_(True)
    (a * b).sum().backward()
    close(grad(a_times_b_stopped)(N(a)), N(a.grad))
    close(N(a.grad), N(b))


def test_tutorial_detach():
    # b = a.detach(): same values, no gradient
    a = _tutorial_a(2).requires_grad_(True)
    b = a.detach()
    assert a.requires_grad and not b.requires_grad
    exact(detach(N(a)), N(b))
    inner = (a * 3) / (a - 1)
    (a * inner.detach()).sum().backward()
    close(grad(a_times_b_detached)(N(a)), N(a.grad))
    # the traced value itself is unchanged by detach
    exact(a_times_b_detached(N(a)), N(a * inner))


def test_tutorial_no_grad():
    # print((a ** 2).requires_grad); with torch.no_grad(): print((a ** 2).requires_grad)
    a = _tutorial_a(3).requires_grad_(True)
    assert (a**2).requires_grad
    with torch.no_grad():
        c = a**2
    assert not c.requires_grad
    (a * c).sum().backward()
    close(grad(a_times_a_squared_no_grad)(N(a)), N(a.grad))
    close(N(a.grad), N(a) ** 2)
    # outside tracing, no_grad is a plain context manager
    exact(a_times_a_squared_no_grad(N(a)), N(a) ** 3)


def y_fn(x):
    return 2 * x + 1


def z_fn(x):
    return 2 * x


def test_tutorial_gradient_accumulates_without_zero():
    # x = torch.ones(4, requires_grad=True); y = (2*x + 1).sum(); z = (2*x).sum()
    # y.backward(); z.backward(): x.grad accumulates to 4
    x = torch.ones(4, dtype=F64, requires_grad=True)
    y = (2 * x + 1).sum()
    z = (2 * x).sum()
    y.backward()
    first = N(x.grad).copy()
    z.backward()
    second = N(x.grad).copy()
    xs = np.ones(4)
    gy = grad(y_fn)(xs)
    gz = grad(z_fn)(xs)
    exact(gy, first)
    exact(gy + gz, second)  # accumulating in symgrad = adding results
    exact(second, np.full(4, 4.0))


def test_symgrad_gradients_are_fresh_on_every_call():
    xs = np.ones(4)
    g = grad(y_fn)
    first = g(xs)
    first += 100.0  # the caller owns the result: mutating it changes nothing later
    again = g(xs)
    exact(again, np.full(4, 2.0))
    exact(g(xs), again)


def test_tutorial_zero_then_backward_equals_one_fresh_call():
    # y.backward(); x.grad.zero_(); z.backward(): x.grad is z's gradient alone
    x = torch.ones(4, dtype=F64, requires_grad=True)
    y = (2 * x + 1).sum()
    z = (2 * x).sum()
    y.backward()
    x.grad.zero_()
    exact(N(x.grad), np.zeros(4))
    z.backward()
    exact(grad(z_fn)(np.ones(4)), N(x.grad))
    assert grad(z_fn)(1.0) == float(N(x.grad)[0])


# =============================================================================================
# 2. Conventions at kinks
# =============================================================================================

KINKS = np.array([-2.5, -2.0, -1.5, -1.0, -0.5, -0.25, -0.0, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.5])


def relu_max(x):
    return max(x, 0)


def relu_max_first(x):
    return np.maximum(0.0, x)


def relu_if(x):
    return x if x > 0 else 0.0


def neg_relu_min(x):
    return np.minimum(x, 0)


def abs_np(x):
    return np.abs(x)


def abs_builtin(x):
    return abs(x)


def abs_fabs(x):
    return np.fabs(x) * x


def sign_times(x):
    return np.sign(x) * x


def floor_times(x):
    return np.floor(x) * x


def round_times(x):
    return np.round(x) * x


def clip_unit(x):
    return np.clip(x, -1.0, 1.0)


def mask_mul(x):
    return (x > 0) * x


def mask_mul_ge(x):
    return x * (x >= 1.0) + x * x * (x < -1.0)


def mask_where(x):
    return np.where(x > 0, 1.0, 0.0) * x * x


def where_select(x):
    return np.where(x >= 0.5, x * x, -x)


def mask_float(x):
    return float(x > 0) * x


UNARY_KINKS = [
    (relu, torch.relu),
    (relu_max, torch.relu),
    (relu_max_first, torch.relu),
    (relu_if, torch.relu),
    (neg_relu_min, lambda x: -torch.relu(-x)),
    (abs_np, torch.abs),
    (abs_builtin, torch.abs),
    (abs_fabs, lambda x: torch.abs(x) * x),
    (sign_times, lambda x: torch.sign(x) * x),
    (floor_times, lambda x: torch.floor(x) * x),
    (round_times, lambda x: torch.round(x) * x),
    (clip_unit, lambda x: torch.clamp(x, -1.0, 1.0)),
    (mask_mul, lambda x: (x > 0) * x),
    (mask_mul_ge, lambda x: x * (x >= 1.0) + x * x * (x < -1.0)),
    (mask_where, lambda x: (x > 0).to(F64) * x * x),
    (where_select, lambda x: torch.where(x >= 0.5, x * x, -x)),
]


@pytest.mark.parametrize(("f_np", "f_torch"), UNARY_KINKS, ids=[f.__name__ for f, _ in UNARY_KINKS])
def test_kink_convention_on_array(f_np, f_torch):
    (expected,) = torch_sum_grads(f_torch, [KINKS])
    value, got = value_and_grad(f_np)(KINKS)
    exact(value, N(f_torch(T(KINKS))))
    exact(got, expected)


@pytest.mark.parametrize(("f_np", "f_torch"), UNARY_KINKS, ids=[f.__name__ for f, _ in UNARY_KINKS])
@pytest.mark.parametrize("x", [0.0, -1.0, 0.5, 1.0, 2.5])
def test_kink_convention_on_float(f_np, f_torch, x):
    (expected,) = torch_sum_grads(f_torch, [x])
    got = grad(f_np)(x)
    assert isinstance(got, float)
    assert got == float(expected)


def test_float_of_comparison_as_mask():
    # float(x > 0) * x: the scalar spelling of a comparison mask, gradient mask(x)
    for x in (-1.0, 0.0, 2.0):
        (expected,) = torch_sum_grads(lambda t: (t > 0).to(F64) * t, [x])
        assert grad(mask_float)(x) == float(expected)


def maximum2(a, b):
    return np.maximum(a, b)


def minimum2(a, b):
    return np.minimum(a, b)


def max_builtin2(a, b):
    return max(a, b)


def min_builtin2(a, b):
    return min(a, b)


def maximum_scaled(a, b):
    return np.maximum(2.0 * a, b * b) * a


TIES_A = np.array([0.0, 1.0, 2.0, -1.0, 3.0, -2.0, 0.5, 4.0])
TIES_B = np.array([0.0, 2.0, 2.0, -3.0, 3.0, -2.0, -0.5, 4.0])

BINARY_KINKS = [
    (maximum2, torch.maximum),
    (minimum2, torch.minimum),
    (max_builtin2, torch.maximum),
    (min_builtin2, torch.minimum),
    (maximum_scaled, lambda a, b: torch.maximum(2.0 * a, b * b) * a),
]


@pytest.mark.parametrize(("f_np", "f_torch"), BINARY_KINKS, ids=[f.__name__ for f, _ in BINARY_KINKS])
def test_tie_of_two_traced_values_shares_gradient_on_arrays(f_np, f_torch):
    expected = torch_sum_grads(f_torch, [TIES_A, TIES_B])
    got = grad(f_np, wrt=all_partials(f_np))(TIES_A, TIES_B)
    for g, e in zip(got, expected, strict=True):
        exact(g, e)


@pytest.mark.parametrize(("f_np", "f_torch"), BINARY_KINKS, ids=[f.__name__ for f, _ in BINARY_KINKS])
@pytest.mark.parametrize(("a", "b"), [(0.0, 0.0), (1.0, 1.0), (2.0, 4.0), (-1.5, -1.5), (1.0, -2.0)])
def test_tie_of_two_traced_values_shares_gradient_on_floats(f_np, f_torch, a, b):
    expected = torch_sum_grads(f_torch, [a, b])
    got = grad(f_np, wrt=all_partials(f_np))(a, b)
    assert got == tuple(float(e) for e in expected)


def test_maximum_tie_gives_half_each_like_torch():
    a = T(1.0, requires_grad=True)
    b = T(1.0, requires_grad=True)
    torch.maximum(a, b).backward()
    assert (float(a.grad), float(b.grad)) == (0.5, 0.5) == grad(maximum2, wrt=("a", "b"))(1.0, 1.0)


# =============================================================================================
# 3. jacobian / hessian / vjp / jvp against torch.autograd.functional
# =============================================================================================

ids = [c.name for c in tc.CASES]
scalar_ids = [c.name for c in tc.SCALAR_CASES]


def _outputs(out):
    return out if isinstance(out, tuple) else (out,)


def torch_jacobian(case, args, wrt=None):
    """(m, n) Jacobian at one point (floats), from torch.autograd.functional.jacobian."""
    wrt = list(range(case.n_in)) if wrt is None else list(wrt)
    fixed = [T(a) for a in args]

    def f(*vary):
        full = list(fixed)
        for k, v in zip(wrt, vary, strict=True):
            full[k] = v
        return case.f_torch(*full)

    jac = taf.jacobian(f, tuple(T(args[k]) for k in wrt))
    rows = jac if case.n_out > 1 else (jac,)
    return np.array([[float(entry) for entry in row] for row in rows])


def torch_hessian(case, args):
    hes = taf.hessian(case.f_torch, tuple(T(a) for a in args))
    return np.array([[float(entry) for entry in row] for row in hes])


@pytest.mark.parametrize("case", tc.CASES, ids=ids)
def test_jacobian_at_points(case):
    jac = jacobian(case.f_np, wrt=all_partials(case.f_np))
    for point in tc.points(case):
        got = jac(*point)
        assert got.shape == (case.n_out, case.n_in)
        close(got, torch_jacobian(case, point))


THREE_ARG = [c for c in tc.CASES if c.n_in == 3]


@pytest.mark.parametrize("case", THREE_ARG, ids=[c.name for c in THREE_ARG])
def test_wrt_subset(case):
    # differentiate with respect to the first and third argument (a name and a position);
    # the middle one is a constant, like a tensor with requires_grad=False
    first = next(iter(inspect.signature(case.f_np).parameters))
    wrt = (first, 2)
    jac = jacobian(case.f_np, wrt=wrt)
    rng = np.random.default_rng(6)
    for point in tc.points(case):
        got = jac(*point)
        assert got.shape == (case.n_out, 2)
        expected = torch_jacobian(case, point, wrt=(0, 2))
        close(got, expected)
        # vjp and jvp with the same wrt
        vs = tuple(float(v) for v in rng.uniform(-2.0, 2.0, size=case.n_out))
        _, pullback = vjp(case.f_np, wrt=wrt)(*point)
        pulled = pullback(vs if case.n_out > 1 else vs[0])
        assert isinstance(pulled, tuple) and len(pulled) == 2
        close(pulled, np.array(vs) @ expected)
        tangents = tuple(float(t) for t in rng.uniform(-2.0, 2.0, size=2))
        _, pushed = jvp(case.f_np, wrt=wrt)(point, tangents)
        close(_outputs(pushed), expected @ np.array(tangents))


def _torch_blocks(fn, args, n_out):
    """torch's full Jacobian on the arrays (JAX's layout): [output][input] blocks."""
    blocks = fn(tuple(T(a) for a in args))
    blocks = blocks if n_out > 1 else (blocks,)
    return [[N(b) for b in row] for row in blocks]


def _close_blocks(got, expected, n_out, n_in):
    """symgrad's result for wrt=every parameter: a tuple of blocks per output (E8: JAX's layout)."""
    rows = got if n_out > 1 else (got,)
    assert len(rows) == n_out
    for row, expected_row in zip(rows, expected, strict=True):
        assert isinstance(row, tuple) and len(row) == n_in
        for block, expected_block in zip(row, expected_row, strict=True):
            close(block, expected_block)


@pytest.mark.parametrize("case", tc.CASES, ids=ids)
def test_jacobian_on_arrays(case):
    args = tc.arrays(case)
    got = jacobian(case.f_np, wrt=tuple(range(case.n_in)))(*args)
    expected = _torch_blocks(lambda a: taf.jacobian(case.f_torch, a), args, case.n_out)
    _close_blocks(got, expected, case.n_out, case.n_in)
    assert np.shape(got[0][0] if case.n_out > 1 else got[0]) == (2, 3, 2, 3)


@pytest.mark.parametrize("case", tc.CASES, ids=ids)
def test_jacobian_on_broadcast_arrays_and_float(case):
    # x: (2, 1), y: (3,), a third argument as a Python float: outputs of shape (2, 3)
    shapes = ((2, 1), (3,), ())[: case.n_in]
    args = list(tc.arrays(case, shapes))
    if case.n_in == 3:
        args[2] = float(args[2])
    got = jacobian(case.f_np, wrt=tuple(range(case.n_in)))(*args)
    expected = _torch_blocks(lambda a: taf.jacobian(case.f_torch, a), args, case.n_out)
    _close_blocks(got, expected, case.n_out, case.n_in)


@pytest.mark.parametrize("case", tc.SCALAR_CASES, ids=scalar_ids)
def test_hessian_at_points(case):
    hes = hessian(case.f_np, wrt=all_partials(case.f_np))
    for point in tc.points(case):
        got = hes(*point)
        assert got.shape == (case.n_in, case.n_in)
        close(got, torch_hessian(case, point))
        close(got, got.T)  # symmetric up to rounding: the two mixed partials are separate programs


@pytest.mark.parametrize("case", tc.SCALAR_CASES, ids=scalar_ids)
def test_hessian_on_arrays(case):
    # the Hessian of the sum of the outputs, in JAX's layout (E8)
    args = tc.arrays(case)
    got = hessian(case.f_np, wrt=tuple(range(case.n_in)))(*args)
    expected = _torch_blocks(lambda a: taf.hessian(lambda *t: case.f_torch(*t).sum(), a), args, case.n_in)
    _close_blocks(got, expected, case.n_in, case.n_in)


def _cotangents(case, shape, seed):
    rng = np.random.default_rng(seed)
    vs = tuple(rng.uniform(-2.0, 2.0, size=shape) for _ in range(case.n_out))
    if shape == ():
        vs = tuple(float(v) for v in vs)
    return vs


def _check_vjp(case, args, vs):
    value, pullback = vjp(case.f_np, wrt=all_partials(case.f_np))(*args)
    out, expected = taf.vjp(
        case.f_torch, tuple(T(a) for a in args), tuple(T(v) for v in vs) if case.n_out > 1 else T(vs[0])
    )
    for got_v, exp_v in zip(_outputs(value), _outputs(out), strict=True):
        close(got_v, N(exp_v))
    got = pullback(vs if case.n_out > 1 else vs[0])
    assert isinstance(got, tuple) and len(got) == case.n_in
    for g, e, a in zip(got, expected, args, strict=True):
        assert np.shape(g) == np.shape(a)
        close(g, N(e))


@pytest.mark.parametrize("case", tc.CASES, ids=ids)
def test_vjp_at_points(case):
    for k, point in enumerate(tc.points(case)):
        _check_vjp(case, point, _cotangents(case, (), k))


@pytest.mark.parametrize("case", tc.CASES, ids=ids)
def test_vjp_on_arrays(case):
    args = tc.arrays(case)
    _check_vjp(case, args, _cotangents(case, (2, 3), 7))


@pytest.mark.parametrize("case", tc.CASES, ids=ids)
def test_vjp_on_broadcast_arrays(case):
    # torch sums the gradient over broadcast axes; so must symgrad
    shapes = ((2, 1), (3,), (1, 3))[: case.n_in]
    args = tc.arrays(case, shapes)
    _check_vjp(case, args, _cotangents(case, (2, 3), 8))


def _check_jvp(case, args, tangents):
    value, tangent_out = jvp(case.f_np, wrt=all_partials(case.f_np))(tuple(args), tuple(tangents))
    out, expected = taf.jvp(case.f_torch, tuple(T(a) for a in args), tuple(T(t) for t in tangents))
    for got_v, exp_v in zip(_outputs(value), _outputs(out), strict=True):
        close(got_v, N(exp_v))
    got = _outputs(tangent_out)
    assert len(got) == case.n_out
    for g, e in zip(got, _outputs(expected), strict=True):
        close(g, N(e))


@pytest.mark.parametrize("case", tc.CASES, ids=ids)
def test_jvp_at_points(case):
    rng = np.random.default_rng(3)
    for point in tc.points(case):
        _check_jvp(case, point, [float(t) for t in rng.uniform(-2.0, 2.0, size=case.n_in)])


@pytest.mark.parametrize("case", tc.CASES, ids=ids)
def test_jvp_on_arrays(case):
    rng = np.random.default_rng(4)
    args = tc.arrays(case)
    _check_jvp(case, args, [rng.uniform(-2.0, 2.0, size=(2, 3)) for _ in range(case.n_in)])


@pytest.mark.parametrize("case", tc.CASES, ids=ids)
def test_jacobian_agrees_with_vjp_and_jvp(case):
    # rows of J are pullbacks of unit cotangents, columns pushforwards of unit tangents
    point = tc.points(case, count=1, seed=5)[0]
    jac = jacobian(case.f_np, wrt=all_partials(case.f_np))(*point)
    _, pullback = vjp(case.f_np, wrt=all_partials(case.f_np))(*point)
    for i in range(case.n_out):
        unit = tuple(float(i == j) for j in range(case.n_out))
        close(pullback(unit if case.n_out > 1 else unit[0]), jac[i])
    for j in range(case.n_in):
        unit = tuple(float(j == k) for k in range(case.n_in))
        _, col = jvp(case.f_np, wrt=all_partials(case.f_np))(point, unit)
        close(_outputs(col), jac[:, j])


@pytest.mark.parametrize("case", tc.CASES, ids=ids)
def test_grad_sum_rule_on_arrays_and_broadcast_float(case):
    # grad = gradient of the sum of every output; a Python float argument gets the summed
    # gradient, like a 0-d torch leaf broadcast against arrays.
    args = list(tc.arrays(case))
    args[-1] = float(args[-1][0, 0])
    expected = torch_sum_grads(case.f_torch, args)
    got = grad(case.f_np, wrt=all_partials(case.f_np))(*args)
    assert isinstance(got[-1], float)
    for g, e in zip(got, expected, strict=True):
        close(g, e)


# =============================================================================================
# 4. grad of a tuple-returning function
# =============================================================================================


def test_grad_of_tuple_output_on_floats_raises_with_hint():
    with pytest.raises(symgrad.NonScalarOutputError) as info:
        grad(tc.polar_np)(1.5, 0.3)
    assert "jacobian" in info.value.hint and "vjp" in info.value.hint
    assert "jacobian" in str(info.value) and "vjp" in str(info.value)
    # torch refuses the same thing: backward() of a non-scalar needs a gradient argument
    r, t = T(1.5, requires_grad=True), T(0.3, requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        torch.stack(tc.polar_torch(r, t)).backward()


def test_value_and_grad_and_hessian_of_tuple_output_on_floats_raise():
    with pytest.raises(symgrad.NonScalarOutputError):
        value_and_grad(tc.spherical_np)(1.0, 0.2, 0.3)
    with pytest.raises(symgrad.NonScalarOutputError):
        hessian(tc.spherical_np)(1.0, 0.2, 0.3)


@pytest.mark.parametrize("case", tc.TUPLE_CASES, ids=[c.name for c in tc.TUPLE_CASES])
def test_grad_of_tuple_output_on_arrays_is_gradient_of_the_sum(case):
    # torch: (y1 + y2 [+ y3]).sum().backward()
    args = tc.arrays(case)
    leaves = [T(a, requires_grad=True) for a in args]
    sum(case.f_torch(*leaves)).sum().backward()
    got = grad(case.f_np, wrt=all_partials(case.f_np))(*args)
    for g, leaf in zip(got, leaves, strict=True):
        close(g, N(leaf.grad))


# =============================================================================================
# Higher order: nested grad against torch.autograd.grad(create_graph=True), three times
# =============================================================================================


@pytest.mark.parametrize("case", tc.SCALAR_CASES, ids=scalar_ids)
def test_third_derivative_matches_torch_double_backward(case):
    first = next(iter(inspect.signature(case.f_np).parameters))
    d3 = symgrad.derivative(case.f_np, wrt=first, order=3)
    for point in tc.points(case, count=2, seed=9):
        leaves = [T(p, requires_grad=k == 0) for k, p in enumerate(point)]
        d = case.f_torch(*leaves)
        for _ in range(3):
            (d,) = torch.autograd.grad(d, leaves[0], create_graph=True)
        got = d3(*point)
        assert isinstance(got, float)
        close(got, float(d.detach()))
