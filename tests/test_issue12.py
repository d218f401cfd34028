"""Regression tests for the wrong answers and crashes of issue #12 (named after its items).

Oracles: the original function run by NumPy, central finite differences of it, and PyTorch
in float64 on the same program; never symgrad's own output."""

import sys
import textwrap

import numpy as np
import pytest

import symgrad
from symgrad import grad, hessian, jacobian, jvp, value_and_grad, vjp
from tests import issue12_cases as cases
from tests.helpers import write_module

torch = pytest.importorskip("torch")


def fd_sum(fn, args, i, h=1e-6):
    """d sum(fn(*args)) / d args[i], by central differences of the original function."""
    base = np.array(args[i], dtype=np.float64)
    out = np.zeros(base.shape)
    for index in np.ndindex(base.shape):
        total = []
        for sign in (1.0, -1.0):
            moved = base.copy()
            moved[index] += sign * h
            value = moved if moved.shape else float(moved)
            total.append(float(np.sum(fn(*args[:i], value, *args[i + 1 :]))))
        out[index] = (total[0] - total[1]) / (2 * h)
    return out if base.shape else float(out)


def torch_grad(fn, args, wrt):
    """Gradients of sum(fn(*args)) by PyTorch in float64 (fn written with torch ops)."""
    tensors = [
        torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=k in wrt) for k, a in enumerate(args)
    ]
    out = fn(*tensors).sum()
    grads = torch.autograd.grad(out, [tensors[k] for k in wrt], allow_unused=True)
    return [np.zeros(np.shape(args[k])) if g is None else g.numpy() for k, g in zip(wrt, grads)]


# --- S1: a scalar's gradient sums over the broadcast, piecewise derivatives included -----------

S1_CASES = [
    (cases.relu_of_scalar_plus, lambda x, b: torch.clamp(b, min=0.0) + x),
    (cases.conditional_scalar, lambda x, b: torch.where(b > 0, b, torch.zeros_like(b)) + x),
    (cases.clipped_scalar, lambda x, b: torch.clamp(b, -1.0, 1.0) * x),
    (cases.branch_on_scalar, lambda x, b: torch.where(b > 0.25, torch.asinh(b) + x, b * b + x)),
]


@pytest.mark.parametrize("fn,torch_fn", S1_CASES, ids=lambda c: getattr(c, "__name__", ""))
@pytest.mark.parametrize("b", [0.7, -0.4, 0.1])
def test_S1_scalar_gradient_through_piecewise_is_summed(fn, torch_fn, b):
    x = np.zeros(4) + 0.1
    gx, gb = grad(fn, wrt=(0, 1))(x, b)
    expected = torch_grad(torch_fn, [x, b], (0, 1))
    np.testing.assert_allclose(gx, expected[0], rtol=1e-12)
    assert isinstance(gb, float) and gb == pytest.approx(float(expected[1]), rel=1e-12)
    assert gb == pytest.approx(fd_sum(fn, [x, b], 1), rel=1e-6, abs=1e-8)
    # every transform agrees: value_and_grad, vjp with unit cotangent, second order stays summed
    value, (_, gb2) = value_and_grad(fn, wrt=(0, 1))(x, b)
    np.testing.assert_allclose(value, fn(x, b), rtol=1e-15)
    assert gb2 == pytest.approx(gb, rel=1e-15)
    _, pullback = vjp(fn, wrt=1)(x, b)
    assert pullback(np.ones(4)) == pytest.approx(gb, rel=1e-15)


def test_S1_clip_of_array_minus_broadcast_array():
    gx, gy = grad(cases.clipped_minus_array, wrt=(0, 1))(0.5, np.ones(4))
    assert gx == pytest.approx(4.0) and isinstance(gx, float)
    np.testing.assert_array_equal(gy, -np.ones(4))


# --- S3: an argument that never reaches the output shapes nothing ------------------------------


def test_S3_unused_array_argument_does_not_shape_value_or_gradient():
    value, (gx, gz) = value_and_grad(cases.ignores_z, wrt=(0, 1))(0.5, np.ones(4))
    assert np.shape(value) == np.shape(cases.ignores_z(0.5, np.ones(4))) == ()
    assert gx == pytest.approx(np.cos(0.5), rel=1e-15)  # torch and JAX: cos(0.5), not 4 cos(0.5)
    np.testing.assert_array_equal(gz, np.zeros(4))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_S3_backends_agree_when_an_argument_is_unused(backend):
    if backend == "numba":
        pytest.importorskip("numba")
    x, y, z = 0.3, np.array([0.1, 0.5, -0.2]), np.ones(5)
    gx, gy = grad(cases.maximum_ignoring_z, wrt=(0, 1), backend=backend)(x, y, z)
    expected = torch_grad(lambda x, y, z: torch.maximum(y, x), [x, y, z], (0, 1))
    assert gx == pytest.approx(float(expected[0]))
    np.testing.assert_allclose(gy, expected[1])


def test_S3_constant_output_keeps_numpy_shape():
    value, g = value_and_grad(cases.constant_output, wrt=0)(np.ones(3))
    assert value == 1.5 and np.shape(value) == ()
    np.testing.assert_array_equal(g, np.zeros(3))


# --- S7: forward mode never leaks an untaken branch's NaN --------------------------------------


@pytest.mark.parametrize("fn", [cases.sqrt_where, cases.sqrt_if, cases.log_where], ids=lambda f: f.__name__)
@pytest.mark.parametrize("x", [0.0, -1.0, 0.5, 1.0, 2.0])
def test_S7_jvp_under_untaken_branches_is_finite_and_matches_grad(fn, x):
    _, tangent = jvp(fn)((x,), (1.0,))
    assert np.isfinite(tangent)
    assert tangent == pytest.approx(grad(fn, wrt=0)(x), rel=1e-15)
    if x not in (0.0, 1.0):  # away from the kinks, against finite differences
        assert tangent == pytest.approx(fd_sum(fn, [x], 0), rel=1e-6, abs=1e-9)
    points = np.array([0.0, -1.0, 0.5, 2.0])
    _, tangents = jvp(fn)((points,), (np.ones(4),))
    assert np.all(np.isfinite(tangents))


# --- S8: second order under broadcasting -------------------------------------------------------


@pytest.mark.parametrize(
    "fn,torch_fn", [(cases.divide, torch.div), (cases.times_y_squared, lambda x, y: x * y * y)]
)
@pytest.mark.parametrize("y_shape", [(2,), (1, 2)])
def test_S8_mixed_second_derivative_with_broadcasting(fn, torch_fn, y_shape):
    x = np.arange(1.0, 7.0).reshape(3, 2)
    y = np.array([1.0, 2.0]).reshape(y_shape)
    mixed = grad(grad(fn, wrt=0), wrt=1)(x, y)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.tensor(y, requires_grad=True)
    (gx,) = torch.autograd.grad(torch_fn(tx, ty).sum(), tx, create_graph=True)
    (expected,) = torch.autograd.grad(gx.sum(), ty)
    np.testing.assert_allclose(mixed, expected.numpy(), rtol=1e-12)
    other = grad(grad(fn, wrt=1), wrt=0)(x, y)
    (gy,) = torch.autograd.grad(torch_fn(tx, ty).sum(), ty, create_graph=True)
    (expected_other,) = torch.autograd.grad(gy.sum(), tx)
    np.testing.assert_allclose(other, expected_other.numpy(), rtol=1e-12)


# --- S9 / E1: in-place updates follow NumPy, or are refused ------------------------------------


def test_S9_in_place_add_through_an_alias_follows_numpy():
    x, w = np.array([1.0, 2.0, 3.0]), 0.5
    expected = cases.alias_add(x.copy(), w)  # NumPy writes through: 31.5
    caller = x.copy()
    value, (gx, gw) = value_and_grad(cases.alias_add, wrt=(0, 1))(caller, w)
    assert value == pytest.approx(expected) == 31.5
    np.testing.assert_array_equal(caller, x)  # symgrad never writes the caller's array
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    out = tx * (1 + tw)  # what NumPy's in-place update made both names hold
    ex, ew = torch.autograd.grad((out * out).sum(), [tx, tw])
    np.testing.assert_allclose(gx, ex.numpy(), rtol=1e-14)
    assert gw == pytest.approx(float(ew), rel=1e-14)


def test_E1_in_place_multiply_through_an_alias_follows_numpy():
    d = np.array([1.0, -2.0, 0.5])
    value, g = value_and_grad(cases.alias_mul, wrt=0)(d.copy())
    assert value == pytest.approx(cases.alias_mul(d.copy()))
    np.testing.assert_allclose(g, fd_sum(lambda v: cases.alias_mul(v.copy()), [d], 0), rtol=1e-6)


def test_S9_in_place_on_python_floats_rebinds():
    # Python floats are immutable: `s += ...` rebinds `s` and leaves `x` alone
    value, (gx, gy) = value_and_grad(cases.scalar_accumulator, wrt=(0, 1))(2.0, 3.0)
    assert value == cases.scalar_accumulator(2.0, 3.0) == 22.0
    assert (gx, gy) == pytest.approx((2 * 2.0 + 9.0, 2 * 3.0 * 2.0))


def test_S9_per_element_programs_rebind_on_arrays_as_on_numbers():
    # NumPy refuses math.tanh of an array; symgrad runs the function per element, where `+=`
    # rebinds as on numbers: np.vectorize of the original is the oracle
    x = np.array([-0.42, 0.0001, 1.3])
    value, g = value_and_grad(cases.math_then_alias)(x.copy())
    per_element = np.vectorize(cases.math_then_alias)
    np.testing.assert_allclose(value, per_element(x), rtol=1e-13)
    np.testing.assert_allclose(g, fd_sum(per_element, [x], 0), rtol=1e-6)
    assert value_and_grad(cases.math_then_alias)(1.3)[0] == pytest.approx(cases.math_then_alias(1.3))


def test_S9_alias_from_tuple_unpacking_writes_through_on_arrays():
    x = np.array([0.0, 0.0001])
    value, g = value_and_grad(cases.unpacked_alias)(x.copy())
    np.testing.assert_allclose(value, cases.unpacked_alias(x.copy()), rtol=1e-14)
    np.testing.assert_allclose(g, fd_sum(lambda v: cases.unpacked_alias(v.copy()), [x], 0), rtol=1e-6)
    assert value_and_grad(cases.unpacked_alias)(0.25)[0] == cases.unpacked_alias(0.25)  # floats rebind


def test_S3_branch_of_another_shape_under_a_numbers_condition_is_refused_with_a_static_hint():
    y, z = np.ones((3, 1)), np.arange(4.0)
    with pytest.raises(symgrad.ShapeError) as info:
        grad(cases.branch_shape_by_number)(y, z, -1.0)
    message = str(info.value)
    assert "issue12_cases.py:" in message and "(3, 1)" in message and "(3, 4)" in message
    assert "static=('b',)" in message
    g = grad(cases.branch_shape_by_number, wrt=0, static=("b",))  # the hint, followed
    for b in (-1.0, 6.0):
        expected = fd_sum(cases.branch_shape_by_number, [y, z, b], 0)
        np.testing.assert_allclose(g(y, z, b), expected, rtol=1e-6)
    # arguments of one shape: the condition is per element, and nothing needs refusing
    v = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([-1.0, 6.0, 7.0, 0.0])
    np.testing.assert_allclose(
        grad(cases.branch_shape_by_number, wrt=2)(v, v, b),
        fd_sum(np.vectorize(cases.branch_shape_by_number), [v, v, b], 2),
        rtol=1e-6,
    )


@pytest.mark.parametrize("fn,args", [(cases.view_add, (np.ones(3),))])
def test_E1_in_place_update_of_a_view_or_a_callers_array_is_refused(fn, args):
    with pytest.raises(symgrad.UnsupportedSyntaxError) as info:
        value_and_grad(fn, wrt=0)(*args)
    message = str(info.value)
    assert "in place" in message and "shares memory" in message and "issue12_cases.py:" in message
    assert "hint: make a new array instead" in message


def test_E1_helper_updating_a_number_in_place_works():
    assert value_and_grad(cases.helper_mutates_argument, wrt=0)(2.0) == pytest.approx((6.0, 5.0))


def _on_copies(fn):
    """`fn` run on copies of its arguments: the original changes them in place."""
    return lambda *args: fn(*[np.copy(a) for a in args])


@pytest.mark.parametrize(
    "fn",
    [
        cases.helper_updates_callers_array,
        cases.nested_helpers_update_callers_array,
        cases.helper_mutates_argument,
    ],
)
def test_S9_helper_updating_its_argument_in_place_writes_through_to_the_caller(fn):
    """NumPy's `a += v` in a helper changes the caller's array (and its other names)."""
    args = (np.array([1.0, -2.0, 0.5]), np.array([0.5, 1.5, -1.0]))[: fn.__code__.co_argcount]
    kept = [a.copy() for a in args]
    wrt = tuple(range(len(args)))
    value, grads = value_and_grad(fn, wrt=wrt)(*args)
    assert all(np.array_equal(a, k) for a, k in zip(args, kept)), (
        "symgrad must not change the caller's arrays"
    )
    assert value == pytest.approx(_on_copies(fn)(*args))
    for i, got in enumerate(grads):
        np.testing.assert_allclose(got, fd_sum(_on_copies(fn), args, i), rtol=1e-6, atol=1e-8)
    numbers = tuple(float(a[0]) for a in args)  # on numbers the helper rebinds, as Python does
    value, grads = value_and_grad(fn, wrt=wrt)(*numbers)
    assert value == pytest.approx(fn(*numbers))
    for i, got in enumerate(grads):
        assert got == pytest.approx(fd_sum(fn, numbers, i), rel=1e-6)


@pytest.mark.parametrize(
    "fn,names",
    [
        (cases.helper_updates_array_a_view_reads, "`head` is a view of"),
        (cases.helper_updates_a_view, "a view the caller"),
    ],
)
def test_S9_helper_updating_an_array_that_a_view_shares_is_refused_with_a_hint_that_works(
    fn, names, tmp_path
):
    with pytest.raises(symgrad.UnsupportedSyntaxError) as info:
        grad(fn)(np.array([1.0, 2.0, 3.0]))
    message = str(info.value)
    assert names in message and "NumPy would change" in message and "issue12_cases.py:" in message
    assert "`a = a +" in message
    source = textwrap.dedent(
        """
        import numpy as np

        def _accumulate(a, v):
            a = a + v
            return 0.0

        def head_times_tail(x):
            head = x[0:2]
            _accumulate(head, 1.0)
            return np.sum(head * x[1:3])
        """
    )
    module = write_module(tmp_path, "hint_followed_view", source)
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(
        grad(module.head_times_tail)(x), fd_sum(module.head_times_tail, (x,), 0), rtol=1e-6
    )


# --- S10: module and closure constants are read again when they change ------------------------


def test_S10_changed_module_constant_retraces():
    g = grad(cases.uses_module_constants, wrt=0)
    try:
        assert g(1.0) == pytest.approx(2 * 2.0 + 2.0)
        cases.SCALE = 3.0
        assert g(1.0) == pytest.approx(2 * 3.0 + 2.0)
        np.testing.assert_allclose(g(np.ones(2)), np.full(2, 8.0))
        cases.PAIR = (1.0, 5.0)
        assert g(1.0) == pytest.approx(2 * 3.0 + 5.0)
    finally:
        cases.SCALE, cases.PAIR = 2.0, (1.0, 2.0)
    assert g(1.0) == pytest.approx(6.0)


def test_S10_changed_closure_cell_retraces():
    fn, set_k = cases.make_closure(2.0)
    g = value_and_grad(fn, wrt=0)
    assert g(0.0) == pytest.approx((0.0, 2.0))
    set_k(5.0)
    assert g(0.0) == pytest.approx((0.0, 5.0))


def test_S10_changed_constant_in_a_fresh_process_uses_the_cache_correctly(tmp_path):
    import subprocess

    module = tmp_path / "constmod.py"
    module.write_text("A = 2.0\n\ndef f(x):\n    return A * x * x\n")
    script = textwrap.dedent(
        """
        import sys, constmod, symgrad
        g = symgrad.grad(constmod.f, wrt=0)
        first = g(1.0)
        constmod.A = float(sys.argv[1])
        print(first, g(1.0))
        """
    )
    env = {
        **__import__("os").environ,
        "SYMGRAD_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": f"{tmp_path}:{sys.path[0]}",
    }
    for a in ("3.0", "4.0"):
        out = subprocess.run(
            [sys.executable, "-c", script, a], capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout.split() == ["4.0", str(2 * float(a))]


# --- S11: register is for elementwise functions ------------------------------------------------


def test_S11_register_refuses_array_functions():
    import sympy

    for fn in (np.linalg.norm, np.cumsum, np.diff):
        with pytest.raises(symgrad.UnknownCalleeError, match="elementwise"):
            symgrad.register(fn, lambda v: sympy.sqrt(v**2))
        assert symgrad.rules.lookup(fn) is None


def test_S11_the_hint_for_norm_gives_the_true_gradient():
    p, q = np.array([1.0, 2.0, 3.0]), np.array([1.2, 2.4, 2.4])
    gp, gq = grad(cases.distance, wrt=(0, 1))(p, q)
    np.testing.assert_allclose(gp, (p - q) / np.linalg.norm(p - q), rtol=1e-14)
    np.testing.assert_allclose(gq, -(p - q) / np.linalg.norm(p - q), rtol=1e-14)


# --- E1: shapes of cancelled values, constants meeting traced values, wrt=() -------------------


def test_E1_cancelled_arrays_keep_their_shape():
    a = np.array([1.0, 2.0, 3.0])
    value, g = value_and_grad(cases.cancelled_index, wrt=0)(a)
    assert value == cases.cancelled_index(a)
    np.testing.assert_allclose(g, fd_sum(cases.cancelled_index, [a], 0), atol=1e-8)
    m = np.array([[1.0, 2.0], [3.0, 4.0]])
    value, g = value_and_grad(cases.cancelled_transpose, wrt=0)(m)
    assert value == cases.cancelled_transpose(m)
    np.testing.assert_allclose(g, fd_sum(cases.cancelled_transpose, [m], 0), atol=1e-8)


def test_E1_constants_and_traced_values_meet_in_arrays():
    x = np.array([0.5, -1.5])
    value, g = value_and_grad(cases.stack_with_constant, wrt=0)(x)
    assert value == pytest.approx(cases.stack_with_constant(x))
    np.testing.assert_allclose(g, fd_sum(cases.stack_with_constant, [x], 0), rtol=1e-7)
    value, (gx, gy) = value_and_grad(cases.array_of_traced, wrt=(0, 1))(0.3, 0.7)
    assert value == pytest.approx(cases.array_of_traced(0.3, 0.7))
    assert gx == pytest.approx(fd_sum(cases.array_of_traced, [0.3, 0.7], 0), rel=1e-7)
    assert gy == pytest.approx(fd_sum(cases.array_of_traced, [0.3, 0.7], 1), rel=1e-7)


def test_E1_arguments_that_never_meet_need_not_broadcast():
    d, w = np.array([0.1, 0.2, 0.3]), np.ones(4)
    value, (gd, gw) = value_and_grad(cases.unused_other_shape, wrt=(0, 1))(d, w)
    np.testing.assert_allclose(value, np.sin(d))
    np.testing.assert_allclose(gd, np.cos(d))
    np.testing.assert_array_equal(gw, np.zeros(4))


def test_E1_jvp_with_zero_derivative_has_the_values_shape():
    x = np.ones(3)
    value, tangent = jvp(cases.stopped, wrt=0)((x,), (np.ones(3),))
    assert np.shape(tangent) == np.shape(value) == (3,)
    np.testing.assert_array_equal(tangent, np.zeros(3))
    value, tangent = jvp(cases.zero_derivative_array, wrt=1)((x, np.ones(2)), (np.ones(2),))
    np.testing.assert_array_equal(tangent, np.full(3, 2.0))


def test_E1_empty_wrt_is_refused():
    with pytest.raises(symgrad.WrtError, match="names no parameter"):
        grad(cases.square, wrt=())


# --- E2: limits give clear errors, and branch chains cost linear time -------------------------


def test_E2_huge_loop_is_refused_at_once_when_unrolled():
    with pytest.raises(symgrad.DataDependentLoopError, match="1,000,000 iterations") as info:
        grad(cases.long_loop, wrt=0, loops="unroll")(0.5)
    assert "issue12_cases.py:" in str(info.value) and "vjp" in str(info.value)
    assert 'loops="auto"' in str(info.value)


def test_E2_huge_loop_is_kept_as_a_loop_by_default():
    x, slope = 1.5, 1.0
    for _ in range(1_000_000):  # what the loop computes and its derivative, in Python
        x, slope = x * 0.999, slope * 0.999
    value, gradient = symgrad.value_and_grad(cases.long_loop)(1.5)
    assert value == pytest.approx(x, rel=1e-12, abs=0.0) and gradient == pytest.approx(slope, abs=1e-300)
    # kept: the gradient is a loop over the iterations backwards (this one saves no values)
    assert "for _ in range(999999, -1, -1):" in grad(cases.long_loop).source.replace("__1", "_")


def test_E2_long_elif_chain_works(tmp_path):
    n = 300
    lines = ["def f(x):"]
    for i in range(n):
        lines += [f"    {'if' if i == 0 else 'elif'} x < {i / n!r}:", f"        return x * {i + 1}.0"]
    lines += ["    else:", "        return x"]
    module = write_module(tmp_path, "elif_chain_300", "\n".join(lines) + "\n")
    for x in (0.5017, 0.0011, 0.9985, 2.0):
        assert grad(module.f, wrt=0)(x) == pytest.approx(fd_sum(module.f, [x], 0), rel=1e-6)
    xs = np.array([0.5017, 0.0011, 0.9985, 2.0])
    np.testing.assert_allclose(grad(module.f, wrt=0)(xs), [fd_sum(module.f, [x], 0) for x in xs], rtol=1e-6)


def test_E2_deep_helper_chain_gives_a_clear_error_whose_hint_works(tmp_path):
    chain = ["def h0(x):\n    return x * 1.01\n"]
    chain += [f"def h{i}(x):\n    return h{i - 1}(x) + 0.0\n" for i in range(1, 101)]
    chain.append("def f(x):\n    return h100(x)\n")
    module = write_module(tmp_path, "helper_chain_100", "\n".join(chain))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        with pytest.raises(symgrad.TracingError, match="nests too deeply") as info:
            grad(module.f, wrt=0)(0.5)
        assert "setrecursionlimit(10_000)" in str(info.value)
        sys.setrecursionlimit(10_000)  # the hint
        assert grad(module.f, wrt=0)(0.5) == pytest.approx(1.01)
    finally:
        sys.setrecursionlimit(limit)


# --- E4: static arguments with array operations, in every transform ---------------------------


def test_E4_static_with_array_operations_in_every_transform():
    x = np.array([1.0, 2.0, 3.0])
    expected = 2 * x * 3
    np.testing.assert_allclose(grad(cases.sum_times_static, wrt="x", static=("n",))(x, 3), expected)
    value, g = value_and_grad(cases.sum_times_static, wrt="x", static=("n",))(x, 3)
    assert value == 42.0
    np.testing.assert_allclose(g, expected)
    np.testing.assert_allclose(jacobian(cases.sum_times_static, wrt="x", static=("n",))(x, 3), expected)
    _, pullback = vjp(cases.sum_times_static, wrt="x", static=("n",))(x, 3)
    np.testing.assert_allclose(pullback(1.0), expected)
    np.testing.assert_allclose(hessian(cases.sum_times_static, wrt="x", static=("n",))(x, 3), 6 * np.eye(3))
    _, tangent = jvp(cases.sum_times_static, wrt="x", static=("n",))((x, 3), (np.ones(3),))
    assert tangent == pytest.approx(np.sum(expected))
    np.testing.assert_allclose(grad(cases.sum_times_static, wrt="x", static=("n",))(x, 5), 2 * x * 5)


# --- E5: a tuple of differently shaped arrays --------------------------------------------------


def test_E5_tuple_of_mixed_shapes_is_a_parameter_tree():
    """As in JAX: the gradient of a tuple argument is a tuple shaped like it (#13's trees)."""
    pieces = (np.ones(1), np.full(3, 2.0))
    d0, d1 = grad(cases.concatenate_tuple, wrt=0)(pieces)
    np.testing.assert_allclose(d0, fd_sum(lambda a: cases.concatenate_tuple((a, pieces[1])), (pieces[0],), 0))
    np.testing.assert_allclose(d1, fd_sum(lambda b: cases.concatenate_tuple((pieces[0], b)), (pieces[1],), 0))
    g0, g1 = grad(cases.concatenate_two, wrt=(0, 1))(np.ones(1), np.full(3, 2.0))
    np.testing.assert_array_equal(g0, [2.0])
    np.testing.assert_array_equal(g1, [4.0, 4.0, 4.0])


# --- E8: jacobian layout does not depend on how the body is written ---------------------------


def test_E8_jacobian_layout_is_jax_layout_for_elementwise_and_array_programs():
    x = np.array([0.1, 0.2, 0.3])
    plain = jacobian(cases.elementwise_sin, wrt=0)(x)
    reduced = jacobian(cases.elementwise_sin_with_reduction, wrt=0)(x)
    expected = torch.autograd.functional.jacobian(lambda t: torch.sin(t) * 2.0, torch.tensor(x)).numpy()
    assert plain.shape == reduced.shape == (3, 3)
    np.testing.assert_allclose(plain, expected, rtol=1e-15)
    np.testing.assert_allclose(reduced, expected, rtol=1e-15)


def test_E8_broadcast_argument_blocks_and_hessian():
    x, b = np.ones((2, 3)), np.array([1.0, 2.0, 3.0])
    jx, jb = jacobian(cases.scaled_by_b, wrt=(0, 1))(x, b)
    tjx, tjb = torch.autograd.functional.jacobian(lambda x, b: x * b * b, (torch.tensor(x), torch.tensor(b)))
    assert jx.shape == (2, 3, 2, 3) and jb.shape == (2, 3, 3)
    np.testing.assert_allclose(jx, tjx.numpy())
    np.testing.assert_allclose(jb, tjb.numpy())
    (hxx, hxb), (hbx, hbb) = hessian(cases.scaled_by_b, wrt=(0, 1))(np.array([0.1, 0.2, 0.3]), 2.0)
    th = torch.autograd.functional.hessian(
        lambda x, b: (x * b * b).sum(),
        (torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64)),
    )
    np.testing.assert_allclose(hxx, th[0][0].numpy())
    np.testing.assert_allclose(hxb, th[0][1].numpy())
    np.testing.assert_allclose(hbx, th[1][0].numpy())
    assert hbb == pytest.approx(float(th[1][1]))


def test_S9_loop_variable_is_the_items_array():
    """`for j in (y, 2 * y): t = j; t -= ...` changes `y` in NumPy: symgrad's value and
    gradient are NumPy's (on copies) and Python's on numbers."""
    fn = cases.loop_over_names_updates_in_place
    y = np.array([0.5, 1.2, -0.4])
    value, dy = value_and_grad(fn)(y.copy())
    np.testing.assert_allclose(value, _on_copies(fn)(y))
    np.testing.assert_allclose(dy, fd_sum(_on_copies(fn), (y,), 0), rtol=1e-6, atol=1e-9)
    assert value_and_grad(fn)(0.5)[0] == pytest.approx(fn(0.5))
    assert value_and_grad(fn)(0.5)[1] == pytest.approx(fd_sum(fn, (0.5,), 0), rel=1e-6)


def test_S9_in_place_update_of_an_item_of_a_list_variable_is_refused_on_arrays():
    fn = cases.loop_over_a_list_updates_in_place
    with pytest.raises(symgrad.UnsupportedSyntaxError) as info:
        value_and_grad(fn)(np.array([0.5, 1.2]))
    assert "sequence the loop goes over" in str(info.value) and "`t = t -" in info.value.hint
    assert value_and_grad(fn)(0.5)[0] == pytest.approx(fn(0.5))  # numbers rebind, as in Python


def test_S9_helper_without_return_called_as_a_statement_updates_the_callers_array():
    fn = cases.helper_without_return_updates_its_argument
    x, w = np.array([1.0, -2.0, 0.5]), 0.7
    value, (dx, dw) = value_and_grad(fn, wrt=(0, 1))(x.copy(), w)
    assert value == pytest.approx(_on_copies(fn)(x, w))
    np.testing.assert_allclose(dx, fd_sum(_on_copies(fn), (x, w), 0), rtol=1e-6, atol=1e-9)
    assert dw == pytest.approx(fd_sum(_on_copies(fn), (x, w), 1), rel=1e-6)


@pytest.mark.parametrize("fn", [cases.bumped_twice_by_name, cases.result_changed_later])
def test_S9_a_helpers_result_that_is_the_callers_array_changes_with_it(fn):
    # (fixed: `y = _bump(x)` held the value at the call, while NumPy's y is x itself)
    x = np.array([1.0, -2.0, 0.5])
    value, gradient = value_and_grad(fn)(x.copy())
    assert value == pytest.approx(fn(x.copy()), rel=1e-14)
    np.testing.assert_allclose(gradient, fd_sum(_on_copies(fn), (x,), 0), rtol=1e-6, atol=1e-8)
    assert value_and_grad(fn)(0.5)[0] == pytest.approx(fn(0.5))  # numbers rebind


def test_S9_a_helpers_array_result_changed_in_the_same_expression_is_refused_with_a_hint_that_works():
    x = np.array([1.0, -2.0, 0.5])
    with pytest.raises(symgrad.UnsupportedSyntaxError) as info:
        grad(cases.bumped_twice_in_one_expression)(x.copy())
    err = info.value
    assert err.lineno == cases.bumped_twice_in_one_expression.__code__.co_firstlineno + 1
    assert "earlier call in the same statement" in err.message and "y = _bump(" in err.hint
    # the hint followed is bumped_twice_by_name, which gives NumPy's value
    assert value_and_grad(cases.bumped_twice_by_name)(x.copy())[0] == pytest.approx(
        cases.bumped_twice_in_one_expression(x.copy()), rel=1e-14
    )
    assert grad(cases.bumped_twice_in_one_expression)(0.5) == pytest.approx(
        3.0, rel=1e-14
    )  # numbers: (x+1)^2
