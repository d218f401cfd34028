"""JAX's call forms beside symgrad's own, checked against jax itself: `jvp(f, primals,
tangents)`, `vjp(f, *primals)` with a tuple pullback, `has_aux` on every transform, and
`argnums=` as another name for `wrt=`."""

import numpy as np
import pytest

import symgrad as sg
from symgrad import ArgumentError, WrtError, grad, hessian, jacobian, jvp, value_and_grad, vjp

jax = pytest.importorskip("jax", reason="jax is in the test extra: pip install -e '.[test]'")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

X = np.array([0.3, -1.2, 2.0])
Y = np.array([1.5, 0.7, -0.4])


# Each case: symgrad's function (NumPy), jax's (jax.numpy), primals, tangents.
def scalar_np(x):
    return np.sin(x) * x**2


def scalar_jnp(x):
    return jnp.sin(x) * x**2


def array_np(x):
    return np.sum(np.tanh(x) * x)


def array_jnp(x):
    return jnp.sum(jnp.tanh(x) * x)


def two_np(x, y):
    return np.exp(x) * y + x / (1.0 + y * y)


def two_jnp(x, y):
    return jnp.exp(x) * y + x / (1.0 + y * y)


def pair_np(x, y):
    return x * y, np.sin(x) + y


def pair_jnp(x, y):
    return x * y, jnp.sin(x) + y


def dot_np(x, y):
    return np.dot(x, y) * np.sum(x)


def dot_jnp(x, y):
    return jnp.dot(x, y) * jnp.sum(x)


def tree_np(p, x):
    return np.sum(np.tanh(p["w"] * x + p["b"]))


def tree_jnp(p, x):
    return jnp.sum(jnp.tanh(p["w"] * x + p["b"]))


CASES = {
    "scalar": (scalar_np, scalar_jnp, (0.7,), (1.0,)),
    "elementwise array": (scalar_np, scalar_jnp, (X,), (Y,)),
    "array to number": (array_np, array_jnp, (X,), (Y,)),
    "two arguments": (two_np, two_jnp, (0.4, 1.3), (1.0, -2.0)),
    "two arrays": (two_np, two_jnp, (X, Y), (Y, X)),
    "tuple output": (pair_np, pair_jnp, (0.4, 1.3), (0.5, 2.0)),
    "tuple output, arrays": (pair_np, pair_jnp, (X, Y), (np.ones(3), Y)),
    "array program, two arguments": (dot_np, dot_jnp, (X, Y), (Y, X)),
    "tree argument": (
        tree_np,
        tree_jnp,
        ({"w": 0.5, "b": X}, Y),
        ({"w": 1.0, "b": np.ones(3)}, X),
    ),
}


def close(ours, theirs):
    """Same structure (tuples, dicts) and the same numbers."""
    ours_leaves, ours_tree = jax.tree_util.tree_flatten(ours)
    theirs_leaves, theirs_tree = jax.tree_util.tree_flatten(theirs)
    assert ours_tree == theirs_tree, (ours, theirs)
    for a, b in zip(ours_leaves, theirs_leaves):
        assert np.shape(a) == np.shape(b)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


def to_jax(tree):
    return jax.tree_util.tree_map(jnp.asarray, tree)


@pytest.mark.parametrize("name", CASES)
def test_jvp_in_jax_form_is_jax_jvp(name):
    ours_fn, jax_fn, primals, tangents = CASES[name]
    ours = jvp(ours_fn, primals, tangents)
    theirs = jax.jvp(jax_fn, to_jax(primals), to_jax(tangents))
    assert isinstance(ours, tuple) and len(ours) == 2
    close(ours, theirs)


@pytest.mark.parametrize("name", CASES)
def test_vjp_in_jax_form_is_jax_vjp(name):
    ours_fn, jax_fn, primals, _ = CASES[name]
    value, pullback = vjp(ours_fn, *primals)
    their_value, their_pullback = jax.vjp(jax_fn, *to_jax(primals))
    close(value, their_value)
    cotangent = jax.tree_util.tree_map(lambda v: np.full(np.shape(v), 0.5) + np.zeros(np.shape(v)), value)
    ours = pullback(cotangent)
    theirs = their_pullback(to_jax(cotangent))
    assert isinstance(ours, tuple) and len(ours) == len(primals)  # one entry per primal, as JAX
    close(ours, theirs)


def test_vjp_pullback_is_a_tuple_for_one_primal_too():
    _, pullback = vjp(scalar_np, 0.7)
    _, their_pullback = jax.vjp(scalar_jnp, 0.7)
    close(pullback(1.0), their_pullback(1.0))
    assert isinstance(pullback(1.0), tuple) and len(pullback(1.0)) == 1


def test_the_curried_forms_keep_their_behaviour():
    """`vjp(f)(x)`'s pullback gives what grad gives (one gradient for the default wrt), and
    `jvp(f)(primals, tangents)` takes one tangent per wrt parameter."""
    _, pullback = vjp(scalar_np)(X)
    assert isinstance(pullback(np.ones(3)), np.ndarray)
    np.testing.assert_allclose(pullback(np.ones(3)), grad(lambda x: np.sum(np.sin(x) * x**2))(X))
    _, pullback = vjp(two_np, wrt=("x", "y"))(0.4, 1.3)
    assert isinstance(pullback(1.0), tuple)
    assert jvp(two_np)((0.4, 1.3), (1.0,)) == jvp(two_np, (0.4, 1.3), (1.0, 0.0))


def test_jax_forms_compile_once_per_function():
    jvp(two_np, (0.4, 1.3), (1.0, 0.0))
    jvp(two_np, (0.5, 1.3), (1.0, 0.0))
    vjp(two_np, 0.4, 1.3)
    vjp(two_np, 0.5, 1.3)
    made = sg.api._ONCE[two_np]
    assert len(made) == 2  # one jvp, one vjp
    assert all(len(t._variants) == 1 for t in made.values())


def test_jax_forms_take_wrt_and_static():
    def f(x, n, y):
        for _ in range(n):
            x = x * y
        return x

    value, tangent = jvp(f, (1.5, 3, 2.0), (1.0, 0.5), static="n")
    their = jax.jvp(lambda x, y: f(x, 3, y), (1.5, 2.0), (1.0, 0.5))
    close((value, tangent), their)
    _, pullback = vjp(f, 1.5, 3, 2.0, static="n")
    close(pullback(1.0), jax.vjp(lambda x, y: f(x, 3, y), 1.5, 2.0)[1](1.0))
    # with wrt: tangents and gradients for those parameters only
    assert jvp(f, (1.5, 3, 2.0), (1.0,), static="n", wrt="y")[1] == pytest.approx(3 * 1.5 * 2.0**2)
    _, pullback = vjp(f, 1.5, 3, 2.0, static="n", argnums=2)
    assert pullback(1.0) == pytest.approx(3 * 1.5 * 2.0**2)


def test_jvp_in_jax_form_needs_tuples():
    with pytest.raises(ArgumentError, match="tuple") as info:
        jvp(scalar_np, (0.7,))
    assert isinstance(info.value, TypeError) and "jax.jvp" in info.value.hint
    with pytest.raises(TypeError, match="tuple"):
        jvp(scalar_np, 0.7, 1.0)


# --- has_aux ---------------------------------------------------------------------------------


def aux_np(x, y):
    return np.sum(x * y), {"mean": np.mean(x), "n": 3.0}


def aux_jnp(x, y):
    return jnp.sum(x * y), {"mean": jnp.mean(x), "n": 3.0}


def test_has_aux_as_jax():
    close(grad(aux_np, has_aux=True)(X, Y), jax.grad(aux_jnp, has_aux=True)(X, Y))
    close(value_and_grad(aux_np, has_aux=True)(X, Y), jax.value_and_grad(aux_jnp, has_aux=True)(X, Y))
    close(
        value_and_grad(aux_np, has_aux=True, argnums=(0, 1))(X, Y),
        jax.value_and_grad(aux_jnp, has_aux=True, argnums=(0, 1))(X, Y),
    )
    close(jacobian(aux_np, has_aux=True)(X, Y), jax.jacobian(aux_jnp, has_aux=True)(X, Y))
    close(hessian(aux_np, has_aux=True)(X, Y), jax.hessian(aux_jnp, has_aux=True)(X, Y))

    value, pullback, aux = vjp(aux_np, X, Y, has_aux=True)
    their_value, their_pullback, their_aux = jax.vjp(aux_jnp, X, Y, has_aux=True)
    close((value, aux, pullback(2.0)), (their_value, their_aux, their_pullback(2.0)))

    close(jvp(aux_np, (X, Y), (Y, X), has_aux=True), jax.jvp(aux_jnp, (X, Y), (Y, X), has_aux=True))


def test_has_aux_curried():
    value, pullback, aux = vjp(aux_np, has_aux=True)(X, Y)
    assert value == pytest.approx(np.sum(X * Y)) and aux["mean"] == pytest.approx(np.mean(X))
    np.testing.assert_allclose(pullback(1.0), Y)  # the default wrt: a single gradient
    value, tangent, aux = jvp(aux_np, has_aux=True)((X, Y), (np.ones(3),))
    assert tangent == pytest.approx(np.sum(Y)) and aux["n"] == 3.0
    transform = vjp(aux_np, has_aux=True)
    transform(X, Y)
    assert "def " in transform.source and transform.wrt == ("x",)


# --- argnums ----------------------------------------------------------------------------------


@pytest.mark.parametrize("transform", [grad, value_and_grad, jacobian, hessian])
@pytest.mark.parametrize("spec", [0, 1, (0, 1), (1,), "y"])
def test_argnums_is_wrt(transform, spec):
    def f(x, y):
        return np.sin(x) * y**3

    close(transform(f, argnums=spec)(0.4, 1.3), transform(f, wrt=spec)(0.4, 1.3))


def test_argnums_for_jvp_and_vjp():
    assert jvp(two_np, argnums=1)((0.4, 1.3), (1.0,)) == jvp(two_np, wrt=1)((0.4, 1.3), (1.0,))
    _, ours = vjp(two_np, argnums=(0, 1))(0.4, 1.3)
    _, theirs = jax.vjp(two_jnp, 0.4, 1.3)
    close(ours(1.0), theirs(1.0))


def test_argnums_as_jax_grad():
    for spec in (0, 1, (0, 1), (1,)):
        close(grad(two_np, argnums=spec)(X, Y), jax.grad(lambda x, y: jnp.sum(two_jnp(x, y)), spec)(X, Y))


def test_argnums_in_the_decorator_form():
    @grad(argnums=1)
    def f(x, y):
        return x * y * y

    assert f(2.0, 3.0) == 12.0


@pytest.mark.parametrize("transform", [grad, value_and_grad, vjp, jvp, jacobian, hessian])
def test_wrt_and_argnums_together_are_refused(transform):
    with pytest.raises(WrtError, match="both wrt=0 and argnums=1") as info:
        transform(two_np, wrt=0, argnums=1)
    assert "argnums is JAX's name for wrt" in info.value.hint
    assert isinstance(info.value, sg.SymgradError)


def test_jax_forms_of_a_gradient():
    """Hessian-vector products written as in JAX: `jvp(grad(f), primals, tangents)` and
    `vjp(grad(f), *primals)`, trees included."""
    close(
        jvp(grad(dot_np), (X, Y), (Y, np.zeros(3))),
        jax.jvp(jax.grad(dot_jnp), (X, Y), (Y, jnp.zeros(3))),
    )
    _, pullback = vjp(grad(dot_np), X, Y)
    _, their_pullback = jax.vjp(jax.grad(dot_jnp), X, Y)
    close(pullback(Y), their_pullback(Y))
    params, tangent = {"w": 0.5, "b": X}, {"w": 1.0, "b": Y}
    close(
        jvp(grad(tree_np), (params, Y), (tangent, np.zeros(3))),
        jax.jvp(jax.grad(tree_jnp), (params, Y), (tangent, jnp.zeros(3))),
    )
