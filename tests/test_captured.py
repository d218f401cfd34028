"""Arrays read from outside the function (module data, closures, attributes): read at every call.

Oracles: the original function run by NumPy with the arrays as they are at the call, central
finite differences of it, `np.linalg.lstsq`, and PyTorch in float64."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import symgrad
from symgrad import grad, hessian, jvp, value_and_grad, vjp

X = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 4.0], [2.0, 2.0]])
y = np.array([1.0, 0.0, 2.0, -1.0])


def least_squares(w):
    r = X @ w - y
    return np.sum(r * r)


def make_weighted(weights):
    def loss(w):
        return np.sum(weights * np.tanh(w) ** 2)

    return loss


class Settings:
    pass


settings = Settings()
settings.A = np.array([[2.0, 0.5], [0.0, 1.0]])
settings.scale = 1.5


def through_attribute(w):
    return settings.scale * np.sum(np.sin(settings.A @ w))


def fd(fn, w, h=1e-6):
    out = np.zeros_like(w)
    for i in range(w.size):
        step = np.zeros_like(w)
        step.flat[i] = h
        out.flat[i] = (fn(w + step) - fn(w - step)) / (2 * h)
    return out


W = np.array([0.3, -0.7])


def test_module_arrays_are_read_at_each_call():
    global X, y
    g = grad(least_squares)
    saved = X.copy(), y.copy()
    try:
        np.testing.assert_allclose(g(W), fd(least_squares, W), rtol=1e-7)
        X[0, 0] = 5.0  # written into
        np.testing.assert_allclose(g(W), fd(least_squares, W), rtol=1e-7)
        y = y + 1.0  # rebound, same shape
        np.testing.assert_allclose(g(W), fd(least_squares, W), rtol=1e-7)
        X = np.vstack([X, [1.0, 1.0]])  # another shape: traced again
        y = np.append(y, 0.5)
        np.testing.assert_allclose(g(W), fd(least_squares, W), rtol=1e-7)
    finally:
        X, y = saved


def test_captured_arrays_are_parameters_of_the_generated_program_never_unrolled():
    source = grad(least_squares).variant(shapes={"w": (2,)}).kernel.array_source
    assert source.startswith("def grad_least_squares(w, X, y):")
    assert "X @ w" in source and "X.T @" in source


def test_gradient_matches_the_normal_equations_and_scipy_minimize_finds_lstsq():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    np.testing.assert_allclose(grad(least_squares)(W), 2 * X.T @ (X @ W - y), rtol=1e-13)
    result = scipy_optimize.minimize(least_squares, np.zeros(2), jac=grad(least_squares), method="BFGS")
    np.testing.assert_allclose(result.x, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-6)


def test_closure_array_and_attribute_of_a_module_object():
    weights = np.array([1.0, 2.0])
    loss = make_weighted(weights)
    np.testing.assert_allclose(grad(loss)(W), fd(loss, W), rtol=1e-7)
    weights[1] = -3.0  # the closure's array, written into
    np.testing.assert_allclose(grad(loss)(W), fd(loss, W), rtol=1e-7)
    g = grad(through_attribute)
    np.testing.assert_allclose(g(W), fd(through_attribute, W), rtol=1e-7)
    settings.A = np.array([[1.0, 1.0], [1.0, -1.0]])
    try:
        np.testing.assert_allclose(g(W), fd(through_attribute, W), rtol=1e-7)
    finally:
        settings.A = np.array([[2.0, 0.5], [0.0, 1.0]])


def test_other_transforms_with_captured_arrays():
    value, dw = value_and_grad(least_squares)(W)
    assert value == pytest.approx(least_squares(W))
    np.testing.assert_allclose(hessian(least_squares)(W), 2 * X.T @ X, rtol=1e-12)
    value, tangent = jvp(least_squares)((W,), (np.array([1.0, 0.5]),))
    assert tangent == pytest.approx(dw @ np.array([1.0, 0.5]))
    value, pullback = vjp(least_squares)(W)
    np.testing.assert_allclose(pullback(2.0), 2.0 * dw)


def test_against_torch():
    torch = pytest.importorskip("torch")
    w = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    r = torch.tensor(X) @ w - torch.tensor(y)
    torch.sum(r * r).backward()
    np.testing.assert_allclose(grad(least_squares)(W), w.grad.numpy(), rtol=1e-13)


def test_a_persistent_cache_entry_reads_the_arrays_of_its_process(tmp_path):
    (tmp_path / "data_mod.py").write_text(
        textwrap.dedent(
            """
            import json, sys
            import numpy as np
            from symgrad import grad

            A = np.array([1.0, 2.0, 3.0]) * float(sys.argv[1])

            def f(w):
                return np.sum(A * w * w)

            g = grad(f)
            print(json.dumps({"grad": g(np.ones(3)).tolist(), "cached": g.variant(shapes={"w": (3,)}).from_cache}))
            """
        )
    )
    env = {**os.environ, "SYMGRAD_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(tmp_path)}
    env.pop("SYMGRAD_NO_CACHE", None)

    def run(scale: str) -> dict:
        out = subprocess.run(
            [sys.executable, str(tmp_path / "data_mod.py"), scale],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return json.loads(out.stdout.splitlines()[-1])

    first, second = run("1"), run("1")
    assert first["grad"] == pytest.approx([2.0, 4.0, 6.0]) and second["cached"]
    other = run("2")  # other numbers in the array: the right gradient, whatever the cache holds
    assert other["grad"] == pytest.approx([4.0, 8.0, 12.0])


def test_an_array_of_objects_is_refused_in_the_users_terms(tmp_path):
    (tmp_path / "objects_mod.py").write_text(
        "import numpy as np\nNAMES = np.array(['a', 'b'])\n\ndef f(w):\n    return w * NAMES\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import objects_mod
    finally:
        sys.path.remove(str(tmp_path))
    with pytest.raises(symgrad.UnsupportedSyntaxError) as info:
        grad(objects_mod.f)(np.ones(2))
    assert "objects_mod.py:5:" in str(info.value) and "not numbers" in str(info.value)


WEIGHTS = [1.0, 2.0]
CONFIG = {"k": 2.0}


def weighted_list(x):
    return sum(w * x for w in WEIGHTS) + CONFIG["k"] * x


def test_module_lists_and_dicts_changed_in_place_trace_again():
    """A list or dict read from the module is folded in: changed in place (same object), the
    next call must see it (their fingerprints now cover their items)."""
    g = grad(weighted_list)
    try:
        assert g(1.0) == pytest.approx(5.0)
        WEIGHTS[1] = 5.0
        assert g(1.0) == pytest.approx(8.0)
        WEIGHTS.append(1.0)
        CONFIG["k"] = 3.0
        assert g(1.0) == pytest.approx(10.0)
    finally:
        WEIGHTS[:] = [1.0, 2.0]
        CONFIG["k"] = 2.0


def transposed_sum(A, v):
    return np.sum(A.T @ v)


def test_the_graph_of_a_program_with_array_nodes_prints():
    g = grad(transposed_sum)
    g(np.ones((2, 3)), np.ones(2))
    text = str(g.graph)
    assert "Transpose(" in text and "MatMul(" in text
