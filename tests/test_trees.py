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


def test_a_transform_of_a_transform_refuses_trees_at_the_callers_line():
    with pytest.raises(symgrad.WrtError) as info:
        grad(grad(mlp_loss))(PARAMS, X, Y)  # the line the error names
    err = info.value
    assert err.filename == __file__ and "grad(grad(mlp_loss))" in (err.source_line or "")
    assert "hessian" in err.hint


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
