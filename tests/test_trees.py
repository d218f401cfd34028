"""Parameter trees (JAX's pytrees): a dict, tuple, list or dataclass argument gets a gradient of its structure.

Oracles: the original function run by NumPy, central finite differences of it leaf by leaf, and
PyTorch in float64; never symgrad's own output."""

import copy
from dataclasses import dataclass, field

import numpy as np
import pytest

import symgrad
from symgrad import grad, jvp, value_and_grad, vjp

X = np.array([[1.0, 2.0], [0.5, -1.0], [2.0, 0.3]])
Y = np.array([1.0, 0.0, 1.0])


def mlp_loss(params, X, y):
    hidden = np.tanh(X @ params["W1"] + params["b1"])
    out = hidden @ params["w2"] + params["b2"]
    return np.mean((out - y) ** 2)


def tuple_model(p, x):
    a, b = p
    return a * np.sin(b * x)


def list_sum(xs):
    return sum(v**2 for v in xs)


@dataclass
class Layer:
    weight: np.ndarray
    bias: float


@dataclass
class Net:
    layers: list = field(default_factory=list)
    scale: float = 1.0


def net_loss(net, x):
    total = 0.0
    for layer in net.layers:
        total = total + np.sum(np.tanh(layer.weight * x + layer.bias))
    return net.scale * total


def _leaf_fd(fn, tree, h=1e-6):
    """Central differences with respect to every leaf of `tree`, in its structure."""
    leaves, structure = symgrad.trees.flatten(tree)
    out = []
    for k, leaf in enumerate(leaves):
        base = np.array(leaf, dtype=np.float64)
        grad_leaf = np.zeros(base.shape)
        for index in np.ndindex(base.shape):
            values = []
            for sign in (1.0, -1.0):
                moved = base.copy()
                moved[index] += sign * h
                new = list(leaves)
                new[k] = moved if moved.shape else float(moved)
                values.append(fn(symgrad.trees.unflatten(structure, new)))
            grad_leaf[index] = (values[0] - values[1]) / (2 * h)
        out.append(grad_leaf if base.shape else float(grad_leaf))
    return symgrad.trees.unflatten(structure, out)


def _assert_tree_close(got, expected, rtol=1e-6, atol=1e-9):
    got_leaves, got_structure = symgrad.trees.flatten(got)
    expected_leaves, expected_structure = symgrad.trees.flatten(expected)
    assert got_structure == expected_structure, (got, expected)
    for a, b in zip(got_leaves, expected_leaves):
        assert np.shape(a) == np.shape(b)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


PARAMS = {
    "W1": np.array([[0.3, -0.2, 0.1], [0.5, 0.4, -0.3]]),
    "b1": np.array([0.1, 0.0, -0.1]),
    "w2": np.array([1.0, -1.0, 0.5]),
    "b2": 0.2,
}


def test_dict_of_parameters_gets_a_dict_of_gradients():
    got = grad(mlp_loss)(PARAMS, X, Y)
    assert set(got) == set(PARAMS) and isinstance(got["b2"], float)
    _assert_tree_close(got, _leaf_fd(lambda p: mlp_loss(p, X, Y), PARAMS))


def test_dict_of_parameters_against_torch():
    torch = pytest.importorskip("torch")
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in PARAMS.items()}
    hidden = torch.tanh(torch.tensor(X) @ t["W1"] + t["b1"])
    torch.mean((hidden @ t["w2"] + t["b2"] - torch.tensor(Y)) ** 2).backward()
    got = grad(mlp_loss)(PARAMS, X, Y)
    for k in PARAMS:
        np.testing.assert_allclose(got[k], t[k].grad.numpy(), rtol=1e-12)


def test_value_and_grad_and_several_wrt_with_trees():
    value, (d_params, d_x) = value_and_grad(mlp_loss, wrt=(0, 1))(PARAMS, X, Y)
    assert value == pytest.approx(mlp_loss(PARAMS, X, Y))
    _assert_tree_close(d_params, _leaf_fd(lambda p: mlp_loss(p, X, Y), PARAMS))
    assert d_x.shape == X.shape


def test_tuple_list_and_dataclass_arguments():
    d = grad(tuple_model)((1.5, 0.7), 2.0)
    assert isinstance(d, tuple)
    _assert_tree_close(d, _leaf_fd(lambda p: tuple_model(p, 2.0), (1.5, 0.7)))
    d = grad(list_sum)([1.0, 2.0, 3.0])
    assert d == [2.0, 4.0, 6.0]
    net = Net([Layer(np.array([0.5, -1.0]), 0.1), Layer(np.array([2.0, 0.3]), -0.2)], 1.5)
    d = grad(net_loss)(net, 0.8)
    assert isinstance(d, Net) and isinstance(d.layers[0], Layer)
    _assert_tree_close(d, _leaf_fd(lambda n: net_loss(n, 0.8), net))


def test_the_callers_tree_is_not_changed_and_programs_are_reused_per_structure():
    params = copy.deepcopy(PARAMS)
    g = grad(mlp_loss)
    g(params, X, Y)
    g({k: v * 2 for k, v in params.items()}, X, Y)
    assert len(g._tree_programs) == 1
    for k in PARAMS:
        np.testing.assert_array_equal(params[k], PARAMS[k])


def test_jvp_and_vjp_with_trees():
    tangent = {k: np.full(np.shape(v), 0.5) for k, v in PARAMS.items()}
    value, along = jvp(mlp_loss)((PARAMS, X, Y), (tangent,))
    assert value == pytest.approx(mlp_loss(PARAMS, X, Y))
    expected = sum(np.sum(g * tangent[k]) for k, g in _leaf_fd(lambda p: mlp_loss(p, X, Y), PARAMS).items())
    assert along == pytest.approx(expected, rel=1e-6)
    value, pullback = vjp(mlp_loss)(PARAMS, X, Y)
    _assert_tree_close(
        pullback(2.0), {k: 2.0 * g for k, g in _leaf_fd(lambda p: mlp_loss(p, X, Y), PARAMS).items()}
    )


def _tree_outputs(params, X):
    return np.tanh(X @ params["W1"] + params["b1"])


def test_jacobian_and_hessian_with_trees_in_jax_layout():
    """jacobian: one block per leaf, output shape + leaf shape; hessian: a tree of trees (JAX's
    layout), each block against finite differences of the gradient."""
    blocks = symgrad.jacobian(_tree_outputs)(PARAMS, X)
    assert set(blocks) == set(PARAMS)  # unused leaves get zero blocks, as in JAX
    np.testing.assert_array_equal(blocks["w2"], np.zeros((3, 3, 3)))
    for k in ("W1", "b1"):
        assert blocks[k].shape == (3, 3) + np.shape(PARAMS[k])
        for row in range(3):
            for col in range(3):
                expected = _leaf_fd(lambda p, r=row, c=col: _tree_outputs(p, X)[r, c], PARAMS)[k]
                np.testing.assert_allclose(blocks[k][row, col], expected, rtol=1e-6, atol=1e-9)
    loss = lambda p: mlp_loss(p, X, Y)  # noqa: E731
    second = symgrad.hessian(mlp_loss)(PARAMS, X, Y)
    gradient = grad(mlp_loss)
    for a in PARAMS:
        for b in PARAMS:
            assert np.shape(second[a][b]) == np.shape(PARAMS[a]) + np.shape(PARAMS[b])
    for b in PARAMS:  # d/d params[b] of each leaf of the gradient
        for index in np.ndindex(np.shape(PARAMS["b1"])):
            expected = _leaf_fd(lambda p, i=index: np.asarray(gradient(p, X, Y)["b1"])[i], PARAMS)[b]
            np.testing.assert_allclose(second["b1"][b][index], expected, rtol=1e-5, atol=1e-8)
    assert loss(PARAMS) == pytest.approx(mlp_loss(PARAMS, X, Y))


def test_grad_of_a_gradient_refuses_trees_at_the_callers_line_and_its_hints_work():
    """JAX refuses it too: the gradient of a dict of parameters is a dict, not a number."""
    with pytest.raises(symgrad.WrtError) as info:
        grad(grad(mlp_loss))(PARAMS, X, Y)  # the line the error names
    err = info.value
    assert err.filename == __file__ and "grad(grad(mlp_loss))" in (err.source_line or "")
    assert "hessian(f)" in err.hint and "jvp(grad(f))" in err.hint
    assert set(symgrad.hessian(mlp_loss)(PARAMS, X, Y)) == set(PARAMS)
    value, along = jvp(grad(mlp_loss))((PARAMS, X, Y), (PARAMS,))
    assert set(value) == set(along) == set(PARAMS)


def _gradient_fd(direction, h=1e-6):
    """Central differences of mlp_loss's gradient along a direction in parameter space."""
    gradient = grad(mlp_loss)
    up = gradient({k: PARAMS[k] + h * direction[k] for k in PARAMS}, X, Y)
    down = gradient({k: PARAMS[k] - h * direction[k] for k in PARAMS}, X, Y)
    return {k: (up[k] - down[k]) / (2 * h) for k in PARAMS}


DIRECTION = {
    k: np.full(np.shape(v), 0.5) - 0.1 * np.arange(np.size(v)).reshape(np.shape(v)) for k, v in PARAMS.items()
}


def _torch_hvp(direction):
    torch = pytest.importorskip("torch")
    keys = list(PARAMS)
    flat = [torch.tensor(np.asarray(PARAMS[k], dtype=np.float64)) for k in keys]

    def loss(*leaves):
        t = dict(zip(keys, leaves))
        hidden = torch.tanh(torch.tensor(X) @ t["W1"] + t["b1"])
        return torch.mean((hidden @ t["w2"] + t["b2"] - torch.tensor(Y)) ** 2)

    vector = tuple(torch.tensor(np.asarray(direction[k], dtype=np.float64)) for k in keys)
    _, hvp = torch.autograd.functional.hvp(loss, tuple(flat), vector)
    return {k: h.numpy() if np.ndim(PARAMS[k]) else float(h) for k, h in zip(keys, hvp)}


def test_hessian_vector_products_of_trees_by_jvp_vjp_and_jacobian_of_grad():
    """`jvp(grad(loss))((params, ...), (v,))`, JAX's Hessian-vector product, and the same by
    vjp and jacobian of the gradient: against finite differences of the gradient and torch."""
    expected = _torch_hvp(DIRECTION)
    _assert_tree_close(_gradient_fd(DIRECTION), expected, rtol=1e-5, atol=1e-8)
    gradient, along = jvp(grad(mlp_loss))((PARAMS, X, Y), (DIRECTION,))
    _assert_tree_close(gradient, grad(mlp_loss)(PARAMS, X, Y), rtol=1e-12)
    _assert_tree_close(along, expected, rtol=1e-10, atol=1e-12)
    gradient, pullback = vjp(grad(mlp_loss))(PARAMS, X, Y)
    _assert_tree_close(pullback(DIRECTION), expected, rtol=1e-10, atol=1e-12)  # the Hessian is symmetric
    blocks = symgrad.jacobian(grad(mlp_loss))(PARAMS, X, Y)
    assert set(blocks) == set(PARAMS) and set(blocks["W1"]) == set(PARAMS)
    product = {
        a: sum(np.tensordot(blocks[a][b], DIRECTION[b], axes=np.ndim(PARAMS[b])) for b in PARAMS)
        for a in PARAMS
    }
    _assert_tree_close(product, expected, rtol=1e-10, atol=1e-12)


def sum_of_squares(*xs):
    return sum(x**2 for x in xs)


def scaled_with_options(a, *rest, scale=1.0, **named):
    return scale * a * sum(rest) + named["b"] ** 2


def test_star_args_and_kwargs_parameters():
    """A `*args` parameter's gradient is a tuple (one per value it took), a `**kwargs` one's a
    dict; the program is compiled per number and names of those values."""
    assert grad(sum_of_squares)(1.0, 2.0, 3.0) == (2.0, 4.0, 6.0)
    assert grad(sum_of_squares)(0.5, 1.5) == (1.0, 3.0)
    args = (2.0, 1.0, 3.0)
    assert grad(scaled_with_options)(*args, scale=2.0, b=5.0) == pytest.approx(8.0)
    rest, named = grad(scaled_with_options, wrt=("rest", "named"))(*args, scale=2.0, b=5.0)
    assert rest == pytest.approx((4.0, 4.0)) and named == {"b": pytest.approx(10.0)}
    x = np.array([0.3, -1.0])
    np.testing.assert_allclose(grad(sum_of_squares)(x, 2.0 * x)[1], 4.0 * x)


def test_source_of_a_star_args_function_is_the_program_of_its_last_call():
    g = grad(sum_of_squares)
    with pytest.raises(symgrad.WrtError, match="call it once first"):
        g.source  # noqa: B018 - the property compiles
    g(1.0, 2.0)
    assert g.source.startswith("def grad_sum_of_squares_flat(xs_0, xs_1):")


def _inner(a, b, scale=1.0):
    return scale * a * b


def forwards_everything(*args, **options):
    return _inner(*args, **options)


def test_a_call_spreading_star_args_and_kwargs():
    assert grad(forwards_everything, wrt="args")(2.0, 3.0, scale=2.0) == pytest.approx((6.0, 4.0))
    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(grad(np.concatenate)((x, 2.0 * x), axis=0)[1], np.ones(2))


# --- functions returning trees: dicts, lists, nested tuples (JAX's layouts) ----------------------


def predictions(x, w):
    z = np.tanh(w * x)
    return {"pred": z, "energy": np.sum(z**2), "parts": [x * w, (np.sin(x), 2.0 * w)]}


XS = np.array([0.4, -1.2, 0.9])


def _fd_along(fn, args, i, tangent, h=1e-6):
    """Central differences of every leaf of `fn`'s output along `tangent` for argument i."""
    up, down = list(args), list(args)
    up[i], down[i] = args[i] + h * tangent, args[i] - h * tangent
    high, structure = symgrad.trees.flatten(fn(*up))
    low, _ = symgrad.trees.flatten(fn(*down))
    return symgrad.trees.unflatten(structure, [(a - b) / (2 * h) for a, b in zip(high, low)])


def test_jvp_of_a_function_returning_a_tree_gives_value_and_tangent_in_its_structure():
    w = 0.7
    tangent = np.array([1.0, -0.5, 2.0])
    value, along = jvp(predictions)((XS, w), (tangent,))
    _assert_tree_close(value, predictions(XS, w), rtol=1e-12)
    _assert_tree_close(along, _fd_along(predictions, (XS, w), 0, tangent), rtol=1e-6, atol=1e-8)
    value, along = jvp(predictions, wrt="w")((XS, w), (1.0,))
    _assert_tree_close(along, _fd_along(predictions, (XS, w), 1, 1.0), rtol=1e-6, atol=1e-8)


def test_vjp_of_a_function_returning_a_tree_takes_a_cotangent_of_its_structure_against_torch():
    torch = pytest.importorskip("torch")
    w = 0.7
    value, pullback = vjp(predictions, wrt=("x", "w"))(XS, w)
    _assert_tree_close(value, predictions(XS, w), rtol=1e-12)
    # the cotangent's dict keys in another order than the output's: matched by name, as in JAX
    cot = {
        "parts": [np.array([1.0, 2.0, 3.0]), (np.array([0.5, 0.5, -1.0]), 3.0)],
        "energy": 2.0,
        "pred": np.array([-1.0, 0.0, 4.0]),
    }
    dx, dw = pullback(cot)
    tx = torch.tensor(XS, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    z = torch.tanh(tw * tx)
    total = (
        torch.sum(z * torch.tensor(cot["pred"]))
        + cot["energy"] * torch.sum(z**2)
        + torch.sum(tx * tw * torch.tensor(cot["parts"][0]))
        + torch.sum(torch.sin(tx) * torch.tensor(cot["parts"][1][0]))
        + cot["parts"][1][1] * 2.0 * tw
    )
    total.backward()
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12)
    assert dw == pytest.approx(tw.grad.item(), rel=1e-12)


def test_a_cotangent_of_another_structure_is_refused_with_the_structure_to_pass():
    _, pullback = vjp(predictions)(XS, 0.7)
    with pytest.raises(symgrad.ShapeError) as info:
        pullback({"pred": np.ones(3), "energy": 1.0})
    assert "'parts': [value, (value, value)]" in str(info.value) and "same structure" in info.value.hint
    # following the hint: every key, with its lengths
    full = {"pred": np.ones(3), "energy": 1.0, "parts": [np.ones(3), (np.ones(3), 1.0)]}
    assert pullback(full).shape == XS.shape


def test_jacobian_of_a_function_returning_a_tree_has_one_block_per_output_leaf():
    w = 0.7
    blocks = symgrad.jacobian(predictions)(XS, w)
    assert set(blocks) == {"pred", "energy", "parts"} and isinstance(blocks["parts"], list)
    assert blocks["pred"].shape == (3, 3) and blocks["energy"].shape == (3,)
    assert blocks["parts"][1][1].shape == (3,)  # 2 * w does not depend on x: zeros
    for k in range(3):
        basis = np.eye(3)[k]
        column = _fd_along(predictions, (XS, w), 0, basis)
        got_column = symgrad.trees.unflatten(
            symgrad.trees.flatten(blocks)[1], [b[..., k] for b in symgrad.trees.flatten(blocks)[0]]
        )
        _assert_tree_close(got_column, column, rtol=1e-6, atol=1e-8)


def scalar_parts(a, b):
    return {"product": a * b, "ratio": [a / b, b**2]}


def test_jacobian_of_numbers_returning_a_tree_gives_floats_in_that_tree():
    """On numbers, each output leaf's entry is a float (or a tuple of them, one per wrt)."""
    got = symgrad.jacobian(scalar_parts, wrt=("a", "b"))(2.0, 4.0)
    assert got == {"product": (4.0, 2.0), "ratio": [(0.25, -0.125), (0.0, 8.0)]}
    assert symgrad.jacobian(scalar_parts)(2.0, 4.0) == {"product": 4.0, "ratio": [0.25, 0.0]}
    value, along = jvp(scalar_parts, wrt=("a", "b"))((2.0, 4.0), (1.0, 1.0))
    assert value == scalar_parts(2.0, 4.0)
    assert along == {"product": pytest.approx(6.0), "ratio": [pytest.approx(0.125), pytest.approx(8.0)]}


def dict_in_tuple_out(p):
    return p["a"] * p["b"], p["a"] + 2.0 * p["b"]


def dict_in_dict_out(p, x):
    return {"y": np.tanh(p["w"] * x + p["b"]), "norm": p["w"] ** 2 + np.sum(p["b"] ** 2)}


def test_jacobian_with_trees_in_and_out_is_output_major_as_in_jax():
    """`jacobian(f)(params)`: per output (in its structure), per parameter leaf (in its)."""
    assert symgrad.jacobian(lambda p: p["a"] * p["b"])({"a": 1.0, "b": 2.0}) == {"a": 2.0, "b": 1.0}
    rows = symgrad.jacobian(dict_in_tuple_out)({"a": 1.0, "b": 2.0})
    assert rows == ({"a": 2.0, "b": 1.0}, {"a": 1.0, "b": 2.0})
    params = {"w": 0.5, "b": np.array([0.1, -0.2, 0.3])}
    blocks = symgrad.jacobian(dict_in_dict_out)(params, XS)
    assert set(blocks) == {"y", "norm"} and set(blocks["y"]) == {"w", "b"}
    assert blocks["y"]["w"].shape == (3,) and blocks["y"]["b"].shape == (3, 3)
    for leaf in ("w", "b"):
        fd = _leaf_fd(lambda p: dict_in_dict_out(p, XS)["norm"], params)[leaf]
        np.testing.assert_allclose(blocks["norm"][leaf], fd, rtol=1e-6, atol=1e-9)
        for r in range(3):
            fd = _leaf_fd(lambda p, r=r: dict_in_dict_out(p, XS)["y"][r], params)[leaf]
            np.testing.assert_allclose(blocks["y"][leaf][r], fd, rtol=1e-6, atol=1e-9)


def test_grad_of_a_function_returning_a_tree_is_refused_and_the_hint_works():
    with pytest.raises(symgrad.NonScalarOutputError) as info:
        grad(predictions)(XS, 0.7)
    assert "returns {'pred': value, 'energy': value" in str(info.value) and "has_aux" in info.value.hint

    def with_aux(x, w):  # the hint: the loss first, the rest as auxiliary output
        out = predictions(x, w)
        return out["energy"], out

    gradient, aux = grad(with_aux, has_aux=True)(XS, 0.7)
    _assert_tree_close(aux, predictions(XS, 0.7), rtol=1e-12)
    np.testing.assert_allclose(gradient, _leaf_fd(lambda x: predictions(x, 0.7)["energy"], XS), rtol=1e-6)


@dataclass
class State:
    position: np.ndarray
    energy: float


def to_state(x):
    return State(position=x**2, energy=np.sum(np.cos(x)))


def test_a_dataclass_output_and_a_second_transform_object_from_the_persistent_cache():
    value, along = jvp(to_state)((XS,), (np.ones(3),))
    assert isinstance(value, State) and isinstance(along, State)
    np.testing.assert_allclose(along.position, 2.0 * XS, rtol=1e-12)
    assert along.energy == pytest.approx(-np.sum(np.sin(XS)), rel=1e-12)
    for attempt in range(2):  # the second jvp object reads the program back from the disk cache
        value, along = jvp(predictions)((XS, 0.7), (np.ones(3),))
        assert set(value) == {"pred", "energy", "parts"}, attempt
        assert isinstance(along["parts"], list) and isinstance(along["parts"][1], tuple)
