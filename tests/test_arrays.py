"""Array programs: reductions, linear algebra and data arguments, against PyTorch and FD."""

import re
from pathlib import Path

import numpy as np
import pytest
import sympy
from sympy.codegen.cfunctions import hypot

import symgrad
from symgrad import emit, grad, hessian, jacobian, jvp, value_and_grad, vjp
from symgrad.arrays import Outer
from symgrad.graph import Graph
from symgrad.rules import LogAddExp
from tests import array_cases as cases

torch = pytest.importorskip("torch", reason="PyTorch checks need the torch extra: pip install torch==2.13.0")
RNG = np.random.default_rng(20261127)
TOL = {"rtol": 1e-11, "atol": 1e-12}


def fd_gradient(fn, args, i, h=1e-6):
    """Central differences of sum(fn(*args)) in each element of args[i] (array functions:
    the output is summed as it is, not broadcast against the arguments)."""
    base = np.array(args[i], dtype=np.float64)
    grad_out = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        step = h * max(1.0, abs(base[index]))
        values = []
        for sign in (1.0, -1.0):
            moved = base.copy()
            moved[index] += sign * step
            values.append(float(np.sum(fn(*args[:i], moved, *args[i + 1 :]))))
        grad_out[index] = (values[0] - values[1]) / (2 * step)
    return grad_out


def _torch(*arrays):
    return [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]


def _data():
    X = RNG.normal(size=(40, 4))
    return X, RNG.normal(size=4), (RNG.random(40) > 0.5).astype(float)


# --- the models of the issue, against PyTorch 2.13 (float64) ----------------------------------------


def test_gaussian_loglik():
    x = RNG.normal(1.0, 2.0, size=200)
    mu, log_sigma = _torch(0.3, 0.5)
    tx = torch.tensor(x)
    z = (tx - mu) / torch.exp(log_sigma)
    (-0.5 * z**2 - log_sigma - 0.5 * np.log(2 * np.pi)).sum().backward()
    got = grad(cases.gaussian_loglik, wrt=("mu", "log_sigma"))(0.3, 0.5, x)
    np.testing.assert_allclose(got, [mu.grad.item(), log_sigma.grad.item()], **TOL)
    assert all(isinstance(g, float) for g in got)


def test_logistic_regression():
    X, w, y = _data()
    (tw,) = _torch(w)
    z = torch.tensor(X) @ tw
    (torch.nn.functional.softplus(z) - torch.tensor(y) * z).sum().backward()
    np.testing.assert_allclose(grad(cases.logistic_nll, wrt="w")(w, X, y), tw.grad.numpy(), **TOL)


def test_least_squares_and_its_readable_source():
    X, w, y = _data()
    (tw,) = _torch(w)
    ((torch.tensor(X) @ tw - torch.tensor(y)) ** 2).sum().backward()
    g = grad(cases.least_squares, wrt="w")
    np.testing.assert_allclose(g(w, X, y), tw.grad.numpy(), **TOL)
    source = g.source
    assert "X.T @" in source and "for " not in source  # matrix code, not a loop over elements
    np.testing.assert_allclose(g(w, X, y), 2 * X.T @ (X @ w - y), **TOL)


def test_softmax_cross_entropy_with_stable_logsumexp():
    X = RNG.normal(size=(30, 4)) * 300  # logits in the hundreds: a naive exp would overflow
    W = RNG.normal(size=(4, 3))
    Y = np.eye(3)[RNG.integers(0, 3, 30)]
    (tW,) = _torch(W)
    Z = torch.tensor(X) @ tW
    (torch.logsumexp(Z, 1) - (torch.tensor(Y) * Z).sum(1)).sum().backward()
    value, got = value_and_grad(cases.softmax_cross_entropy, wrt="W")(W, X, Y)
    assert np.isfinite(value) and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, tW.grad.numpy(), rtol=1e-10, atol=1e-9)


def test_two_layer_mlp():
    X, _, y = _data()
    W1, b1, W2 = RNG.normal(size=(4, 8)), RNG.normal(size=8), RNG.normal(size=8)
    params = _torch(W1, b1, W2, 0.25)
    h = torch.tanh(torch.tensor(X) @ params[0] + params[1])
    ((h @ params[2] + params[3] - torch.tensor(y)) ** 2).mean().backward()
    got = grad(cases.mlp, wrt=("W1", "b1", "W2", "b2"))(W1, b1, W2, 0.25, X, y)
    for g, p in zip(got, params):
        np.testing.assert_allclose(g, p.grad.numpy(), **TOL)
    assert [np.shape(g) for g in got] == [(4, 8), (8,), (8,), ()]


def test_w5_vectorised():
    x = RNG.normal(size=50)
    (tx,) = _torch(x)
    (torch.exp(tx[:-1]) * (tx[:-1] - tx[1:]) ** 2).sum().backward()
    np.testing.assert_allclose(grad(cases.w5_vectorised)(x), tx.grad.numpy(), **TOL)


# --- every array operation against central finite differences -------------------------------------

X43 = RNG.normal(size=(4, 3))
V3, U4, W4 = RNG.normal(size=3), RNG.normal(size=4), RNG.normal(size=4)
OPS = [
    (cases.op_sum_axis, (X43,)),
    (cases.op_sum_keepdims, (X43,)),
    (cases.op_mean, (X43,)),
    (cases.op_prod, (X43,)),
    (cases.op_max, (X43,)),
    (cases.op_logsumexp, (X43,)),
    (cases.op_matvec, (X43, V3)),
    (cases.op_vecmat, (U4, X43)),
    (cases.op_matmat, (X43,)),
    (cases.op_dot, (U4, W4)),
    (cases.op_outer_trace, (U4, W4)),
    (cases.op_transpose, (X43,)),
    (cases.op_index, (X43,)),
    (cases.op_len_loop, (U4,)),
    (cases.op_like, (U4,)),
    (cases.op_stack, (U4, W4)),
    (cases.op_concatenate, (U4, W4)),
    (cases.op_methods, (X43,)),
]


@pytest.mark.parametrize(("fn", "args"), OPS, ids=[f.__name__ for f, _ in OPS])
def test_array_op_gradient(fn, args):
    got = grad(fn, wrt=tuple(range(len(args))))(*args)
    for i, arg in enumerate(args):
        expected = fd_gradient(fn, list(args), i)
        assert np.shape(got[i]) == np.shape(arg)
        np.testing.assert_allclose(got[i], expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("fn", "args"), OPS, ids=[f.__name__ for f, _ in OPS])
def test_array_op_value_and_jvp(fn, args):
    value, _ = value_and_grad(fn, wrt=0)(*args)
    np.testing.assert_allclose(value, fn(*args), rtol=1e-13, atol=1e-13)
    tangent = RNG.normal(size=np.shape(args[0]))
    _, forward = jvp(fn, wrt=0)(args, (tangent,))
    h = 1e-6
    plus = fn(args[0] + h * tangent, *args[1:])
    minus = fn(args[0] - h * tangent, *args[1:])
    np.testing.assert_allclose(forward, (np.asarray(plus) - minus) / (2 * h), rtol=1e-6, atol=1e-7)


# --- the derivative family with JAX's shape convention ----------------------------------------------


def test_jacobian_hessian_vjp_against_torch():
    A = RNG.normal(size=(3, 4))
    x = RNG.normal(size=4)
    tA = torch.tensor(A)
    J = jacobian(cases.op_matvec, wrt="v")(A, x)
    Jt = torch.autograd.functional.jacobian(lambda v: torch.tanh(tA @ v), torch.tensor(x))
    assert J.shape == (3, 4)  # output shape + input shape
    np.testing.assert_allclose(J, Jt.numpy(), **TOL)
    Xd, w, y = _data()
    H = hessian(cases.logistic_nll, wrt="w")(w, Xd, y)
    tX, ty = torch.tensor(Xd), torch.tensor(y)
    Ht = torch.autograd.functional.hessian(
        lambda w: (torch.nn.functional.softplus(tX @ w) - ty * (tX @ w)).sum(), torch.tensor(w)
    )
    assert H.shape == (4, 4)
    np.testing.assert_allclose(H, Ht.numpy(), **TOL)
    value, pullback = vjp(cases.op_matvec, wrt="v")(A, x)
    v = RNG.normal(size=3)
    _, vjp_t = torch.autograd.functional.vjp(lambda v_: torch.tanh(tA @ v_), torch.tensor(x), torch.tensor(v))
    np.testing.assert_allclose(pullback(v), vjp_t.numpy(), **TOL)
    np.testing.assert_allclose(value, np.tanh(A @ x), **TOL)


def test_matrix_jacobian_shape():
    J = jacobian(cases.op_matmat)(X43)
    assert J.shape == (3, 3, 4, 3)
    Jt = torch.autograd.functional.jacobian(lambda x: x.T @ x, torch.tensor(X43))
    np.testing.assert_allclose(J, Jt.numpy(), **TOL)


# --- shape specialisation -----------------------------------------------------------------------------


def test_one_variant_per_shape_and_no_unrolling_of_data():
    g = grad(cases.least_squares, wrt="w")
    sizes = {}
    for rows in (10, 100_000):
        X = RNG.normal(size=(rows, 4))
        y = RNG.normal(size=rows)
        w = RNG.normal(size=4)
        np.testing.assert_allclose(g(w, X, y), 2 * X.T @ (X @ w - y), rtol=1e-9)
        sizes[rows] = len(g.graph.nodes)
    assert sizes[10] == sizes[100_000]  # the data is one symbol, whatever its length
    assert len(g._variants) == 2


def test_shape_errors_name_the_line():
    with pytest.raises(symgrad.TracingError) as info:
        grad(cases.least_squares, wrt="w")(np.ones(3), np.ones((5, 4)), np.ones(5))
    assert info.value.lineno is not None and "align" in str(info.value)


@pytest.mark.parametrize(
    ("fn", "args", "marker"),
    [
        (cases.bad_fancy_index, (np.ones(3), 1.0), "BAD: fancy"),
        (cases.bad_mask, (np.ones(3),), "BAD: mask"),
        (cases.bad_inplace, (np.ones(3),), "BAD: inplace"),
        (cases.bad_traced_axis, (np.ones((2, 2)), 1.0), "BAD: axis"),
    ],
)
def test_unsupported_array_code_is_refused_with_location(fn, args, marker):
    with pytest.raises(symgrad.SymgradError) as info:
        grad(fn, wrt=0)(*args)
    lines = Path(cases.__file__).read_text().splitlines()
    assert marker in lines[info.value.lineno - 1]
    assert info.value.hint


# --- float64 programs reuse dying temporaries' memory: never a value still read ------------------


def _same(a, b):
    return np.shape(a) == np.shape(b) and np.array_equal(a, b)


def _check_in_place(compiled, *args, regrouped=False):
    """The float64 program against the plain one: same bits (or, where an outer product was
    folded into a product, `regrouped`, within a few ulps), arguments left as they were, no
    result sharing memory with another result or an argument."""
    copies = [np.array(a) if isinstance(a, np.ndarray) else a for a in args]
    got = compiled(*args)
    got = got if isinstance(got, tuple) else (got,)
    kernel = compiled.variant(shapes={p: np.shape(a) for p, a in zip(compiled.dynamic, args)}).kernel
    assert kernel.inplace_source is not None and "out=" in kernel.inplace_source
    assert compiled.inplace_source == kernel.inplace_source and compiled.source == kernel.array_source
    want = kernel.array_fn(*copies)
    assert all(_same(a, c) for a, c in zip(args, copies))  # the caller's arrays are untouched
    raw = kernel.inplace_fn(*args)
    assert all(_same(a, c) for a, c in zip(args, copies))
    assert len(raw) == len(want)
    if regrouped:
        for r, w in zip(raw, want):
            np.testing.assert_allclose(r, w, rtol=1e-14, atol=1e-15)
    else:
        assert all(_same(r, w) for r, w in zip(raw, want))
    arrays = [r for r in got if isinstance(r, np.ndarray)]
    for i, r in enumerate(arrays):
        assert not any(np.shares_memory(r, a) for a in args if isinstance(a, np.ndarray))
        assert not any(np.shares_memory(r, s) for s in arrays[i + 1 :])
    return got


def test_in_place_mlp_matches_the_plain_program_and_leaves_arguments_alone():
    X = RNG.normal(size=(200, 4))
    y = RNG.normal(size=200)
    W1, b1, W2 = RNG.normal(size=(4, 8)), RNG.normal(size=8), RNG.normal(size=8)
    g = grad(cases.mlp, wrt=("W1", "b1", "W2", "b2"))
    got = _check_in_place(g, W1, b1, W2, 0.25, X, y, regrouped=True)
    assert "numpy.tanh(t1, out=t1)" in g.inplace_source  # the hidden layer's buffer, reused
    # the backward pass never makes np.outer(d, W2): it scales tanh's derivative in place
    assert "numpy.outer" not in g.inplace_source and "[:, None], out=" in g.inplace_source
    assert "numpy.outer" in g.source  # the readable program keeps it
    h = np.tanh(X @ W1 + b1)
    d = 2 * (h @ W2 + 0.25 - y) / len(y)
    dpre = np.outer(d, W2) * (1 - h**2)
    for a, b in zip(got, (X.T @ dpre, dpre.sum(0), h.T @ d, d.sum())):
        np.testing.assert_allclose(a, b, **TOL)


def test_in_place_keeps_temporaries_read_later_and_views():
    X, w = RNG.normal(size=(30, 4)), RNG.normal(size=4)
    y = RNG.normal(size=30)
    got = _check_in_place(grad(cases.reused_twice, wrt="w"), w, X, y)
    h = np.tanh(X @ w)
    np.testing.assert_allclose(got[0], X.T @ ((y + 2 * h + np.exp(h) - 1) * (1 - h**2)), **TOL)
    x, v = RNG.normal(size=(5, 3)), RNG.normal(size=5)
    got = _check_in_place(grad(cases.viewed, wrt=("x", "y")), x, v)
    e = np.exp(x)
    np.testing.assert_allclose(got[0], np.outer(np.ones(3), v).T * e + 2 * e * e, **TOL)
    np.testing.assert_allclose(got[1], e.T.sum(0), **TOL)


def test_arguments_other_than_float64_arrays_run_the_plain_program():
    X, w = RNG.normal(size=(30, 4)), RNG.normal(size=4)
    k = RNG.integers(-3, 4, size=30)
    g = grad(cases.with_int_data, wrt="w")
    want = g(w, X, k.astype(float))
    assert "out=" in g.inplace_source
    got = g(w, X, k)  # integer data: the program that allocates every temporary
    np.testing.assert_allclose(got, want, **TOL)
    got32 = g(w.astype(np.float32), X.astype(np.float32), k.astype(np.float32))
    np.testing.assert_allclose(got32, want, rtol=1e-4, atol=1e-4)


def _mixed_data(shape):
    # in [0.5, 1.5]: every denominator of arithmetic_mix stays above 1
    return RNG.uniform(0.5, 1.5, size=shape), RNG.uniform(0.5, 1.5, size=shape)


def test_in_place_elementwise_flavour_computes_the_plain_programs_bits():
    """Subtraction, division, squares and nested functions, written into dying temporaries:
    bit for bit the plain program's values (the order of each sum's terms and product's
    factors kept), the caller's arrays untouched, no result sharing memory."""
    vg = value_and_grad(cases.arithmetic_mix, wrt=("x", "y"))
    kernel = vg.variant().kernel
    source = kernel.inplace_source
    for ufunc in ("subtract", "divide", "square", "add", "multiply", "tanh", "exp", "sqrt"):
        assert f"numpy.{ufunc}(" in source and "out=" in source, ufunc
    assert re.search(r"numpy\.\w+\(numpy\.\w+\([^()]*, out=(\w+)\), [^()]*, out=\1\)", source)  # nested
    x, y = _mixed_data(1000)
    copies = (x.copy(), y.copy())
    raw = kernel.inplace_fn(x, y)
    assert _same(x, copies[0]) and _same(y, copies[1])
    want = kernel.array_fn(*copies)
    assert all(_same(r, w) for r, w in zip(raw, want))
    value, grads = vg(x, y)
    for got, w in zip((value, *grads), want):
        assert _same(got, w) and not np.shares_memory(got, x) and not np.shares_memory(got, y)
    assert not np.shares_memory(grads[0], grads[1])


def test_in_place_array_program_computes_the_plain_programs_bits():
    """The same with a reduction: a program traced for its shapes."""
    x, y = _mixed_data((30, 4))
    got = _check_in_place(grad(cases.arithmetic_mix_total, wrt=("x", "y")), x, y)
    e = 1e-6 * np.eye(4)[0]  # column 0 of every row moved at once: that column's gradient summed
    numeric = (cases.arithmetic_mix_total(x + e, y) - cases.arithmetic_mix_total(x - e, y)) / 2e-6
    np.testing.assert_allclose(got[0][:, 0].sum(), numeric, rtol=1e-6)


@pytest.mark.parametrize("function", sorted(emit._UFUNCS.items() | emit._EXTREMA.items(), key=str))
def test_in_place_ufunc_table_is_what_the_printed_code_runs(function):
    """Each SymPy function the in-place flavour writes as `numpy.<ufunc>(..., out=t)` prints as
    code computing that ufunc's bits (a wrong entry would change the flavour's values)."""
    cls, ufunc = function
    binary = {sympy.atan2, sympy.Mod, hypot, LogAddExp}
    symbols = sympy.symbols("x y z", real=True)[: 3 if cls in emit._EXTREMA else 2 if cls in binary else 1]
    values = [RNG.uniform(-2.0, 2.0, size=50) for _ in symbols]
    text = emit.ArrayPrinter().doprint(cls(*symbols))
    with np.errstate(all="ignore"):
        printed = eval(text, {"numpy": np, **{str(s): v for s, v in zip(symbols, values)}})
        want = values[0]
        for value in values[1:] or [None]:
            want = getattr(np, ufunc)(want) if value is None else getattr(np, ufunc)(want, value)
    assert np.array_equal(printed, want, equal_nan=True), text


def test_in_place_folded_outer_product_keeps_its_operands():
    """`t1 = outer(t0, b)` folded into its reader `t3*t1`: t0 is read there now, so the
    statement where it died before (`t2 = t0 + 1`) must not write into it."""
    a, b, x = sympy.symbols("a b x", real=True)
    t0, t1, t2, t3, t4 = sympy.symbols("t0:5", real=True)
    program = [(t0, 2 * a), (t1, Outer.make([t0, b], ())), (t2, t0 + 1), (t3, 3 * x), (t4, t1 * t3)]
    shapes = {a: (3,), b: (4,), x: (3, 4), t0: (3,), t1: (3, 4), t2: (3,), t3: (3, 4), t4: (3, 4)}
    graph = Graph("f", ("a", "b", "x"), (a, b, x), program, (t4, t2), shapes=shapes)
    printer = emit.ArrayPrinter()
    sources = [
        emit.render(graph, program, "f", "", printer, guard=False, reuse=r).source for r in (False, True)
    ]
    assert "numpy.outer" in sources[0] and "numpy.outer" not in sources[1]
    assert "numpy.multiply(numpy.multiply(t3, t0[:, None], out=t3), b, out=t3)" in sources[1]
    assert "t2 = 1 + t0" in sources[1]  # not numpy.add(1, t0, out=t0)
    args = RNG.normal(size=3), RNG.normal(size=4), RNG.normal(size=(3, 4))
    plain, in_place = (emit.compile_source(s, "f")(*args) for s in sources)
    for got, want in zip(in_place, plain):
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)


def test_in_place_operations_keep_the_printed_order_of_operands():
    """Sums, products and quotients of many operands, each written into the dying temporary
    it reads, compute the plain program's bits: the ufunc calls follow the order in which the
    printed expression evaluates (a regrouped product or sum differs in the last bit)."""
    x, y, z, w = inputs = sympy.symbols("x y z w", real=True)
    shapes = {s: (500,) for s in inputs}
    forms = [
        lambda t: t * x / (w**2 * y * z),  # three factors below: multiplied as printed
        lambda t: 3 * y * t * x * z,
        lambda t: -x * t * y / 3,
        lambda t: x - t + y - z + w,
        lambda t: 1 / (t * x * y),  # the temporary among the denominators
        lambda t: (y + t * z - x) ** 2 / w,
        lambda t: sympy.exp(-(t**3)) * x - y,
        lambda t: sympy.Max(y, t * x, z) + w,
    ]
    program, outputs = [], []
    for k, form in enumerate(forms):
        t, r = sympy.Symbol(f"t{k}", real=True), sympy.Symbol(f"r{k}", real=True)
        program += [(t, sympy.log(x + k * w)), (r, form(t))]
        outputs.append(r)
        shapes.update({t: (500,), r: (500,)})
    graph = Graph("f", tuple(map(str, inputs)), inputs, program, tuple(outputs), shapes=shapes)
    printer = emit.ArrayPrinter()
    plain, in_place = (
        emit.render(graph, program, "f", "", printer, guard=False, reuse=r).source for r in (False, True)
    )
    for k in range(len(forms)):
        assert re.search(rf"r{k} = numpy\.\w+\(.*out=t{k}\)$", in_place, re.MULTILINE), k
    args = [RNG.uniform(1.0, 3.0, size=500) for _ in inputs]
    want = emit.compile_source(plain, "f")(*args)
    got = emit.compile_source(in_place, "f")(*args)
    for k, (g, v) in enumerate(zip(got, want)):
        assert _same(g, v), k


def test_in_place_flavour_writes_into_temporaries_computed_from_views():
    """`x[:-1]` is a view of a float64 argument, so what is computed from it is float64 and
    its dying temporaries take later results (it never writes into the view itself): the same
    bits as the plain program, the gradient the hand-written one."""

    def chain(x):
        return np.sum(np.exp(x[:-1]) * (x[:-1] - x[1:]) ** 2)

    g = grad(chain)
    x = RNG.standard_normal(50)
    _check_in_place(g, x)
    assert "out=t0" not in g.inplace_source and "out=t2" not in g.inplace_source  # the views
    e, d = np.exp(x[:-1]), x[:-1] - x[1:]
    want = np.zeros_like(x)
    want[:-1] += e * d**2 + 2 * e * d
    want[1:] -= 2 * e * d
    np.testing.assert_allclose(g(x), want, **TOL)


def test_runtime_sigmoid_computes_in_one_array_with_the_formulas_bits():
    """sg.sigmoid writes its float64 arrays in place: 1 / (1 + exp(-x)) bit for bit, the
    argument untouched, 0 and 1 (never nan) where exp overflows; other types by the formula."""
    from symgrad import runtime

    x = np.concatenate([RNG.standard_normal(1000) * 30, [-1000.0, 1000.0, 0.0]])
    copy = x.copy()
    got = runtime.sigmoid(x)
    with np.errstate(over="ignore"):
        assert np.array_equal(got, 1.0 / (1.0 + np.exp(-copy)))
    assert np.array_equal(x, copy) and not np.shares_memory(got, x)
    assert got[-3:].tolist() == [0.0, 1.0, 0.5]
    assert runtime.sigmoid(0.0) == 0.5 and runtime.sigmoid(np.float32(2.0)).dtype == np.float32
    assert runtime.sigmoid(x.astype(np.float32)).dtype == np.float32
