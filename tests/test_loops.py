"""Loops kept as loops: values against Python, derivatives against finite differences, torch
(float64, the same source run with tensors) and sympy.diff, and the shape of `.source`."""

from __future__ import annotations

import html
import inspect
import re
import types

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad
from symgrad import grad, hessian, jacobian, jvp, value_and_grad, vjp
from tests import loop_cases as cases
from tests import torch_oracle
from tests.helpers import central_diff, write_module

TORCH = torch_oracle.load(inspect.getsource(cases), "loop_cases")

# name: arguments, whether the loop is kept (else unrolled, with the reason in .source)
CASES = {
    "euler": ((0.1, 2.0), True),
    "rnn": ((0.2, 0.9, 0.5), True),
    "swap": ((0.3, 0.7), True),
    "branchy": ((0.2, 0.3), True),
    "in_branch": ((0.3, 1.2), True),
    "nested": ((0.4, 1.1), True),
    "total": ((0.7,), True),
    "temp": ((1.0, 0.5), True),
    "newton_sqrt": ((2.0,), True),
    "projectile": ((10.0, 0.7), True),
    "counted": ((0.3,), True),
    "static_index": ((0.5,), False),
    "appended": ((0.5,), False),
}
IDS = list(CASES)


def _kept(source: str) -> bool:
    return bool(re.search(r"^\s+(for|while) ", source, re.MULTILINE))


@pytest.mark.parametrize("name", IDS)
def test_value_and_gradient_match_python_finite_differences_and_torch(name):
    args, kept = CASES[name]
    f = getattr(cases, name)
    wrt = tuple(range(len(args)))
    compiled = value_and_grad(f, wrt=wrt)
    value, gradient = compiled(*args)
    assert value == pytest.approx(f(*args), rel=1e-13, abs=1e-15)
    assert isinstance(value, float) and all(isinstance(g, float) for g in gradient)
    expected_value, expected = torch_oracle.value_and_grad(TORCH[name], args)
    assert value == pytest.approx(float(expected_value), rel=1e-12)
    for k, g in enumerate(gradient):
        assert g == pytest.approx(float(expected[k]), rel=1e-9, abs=1e-12), f"d/d{k} vs torch"
        assert g == pytest.approx(central_diff(f, list(args), k), rel=1e-5, abs=1e-8), f"d/d{k} vs FD"
    assert _kept(compiled.source) == kept, compiled.source
    if not kept:
        assert "(unrolled: " in compiled.source


@pytest.mark.parametrize("name", IDS)
def test_jvp_matches_torch_forward_mode(name):
    args, _ = CASES[name]
    f = getattr(cases, name)
    tangents = tuple(0.5 + k for k in range(len(args)))
    value, tangent = jvp(f, wrt=tuple(range(len(args))))(args, tangents)
    expected_value, expected = torch_oracle.jvp(TORCH[name], args, tangents)
    assert value == pytest.approx(float(expected_value), rel=1e-12)
    assert tangent == pytest.approx(float(expected), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", IDS)
def test_hessian_and_grad_of_grad_match_torch_double_backward(name):
    """Second order through kept loops: the gradient's program holds a forward and a reverse
    loop, and differentiating it again differentiates both."""
    args, _ = CASES[name]
    f = getattr(cases, name)
    n = len(args)
    matrix = hessian(f, wrt=tuple(range(n)))(*args)
    for i in range(n):
        for j in range(n):
            expected = torch_oracle.second(TORCH[name], args, i, j)
            assert matrix[i, j] == pytest.approx(float(expected), rel=1e-8, abs=1e-10), (i, j)
    twice = grad(grad(f, wrt=0), wrt=0)(*args)
    assert twice == pytest.approx(matrix[0, 0], rel=1e-10, abs=1e-12)


def test_vjp_and_jacobian_of_a_loop_with_two_outputs():
    args = (0.3, 0.7)
    (a, b), pullback = vjp(cases.two_outputs, wrt=(0, 1))(*args)
    assert (a, b) == pytest.approx(cases.two_outputs(*args), rel=1e-13)
    matrix = jacobian(cases.two_outputs, wrt=(0, 1))(*args)
    for out in range(2):
        for k in range(2):
            expected = central_diff(lambda *xs, o=out: cases.two_outputs(*xs)[o], list(args), k)
            assert matrix[out, k] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    cotangent = pullback((1.0, -2.0))
    assert cotangent == pytest.approx(tuple(matrix[0] - 2 * matrix[1]), rel=1e-10)


def test_small_kept_loop_matches_sympy_diff_of_the_unrolled_expression():
    """sympy.diff on the expression Python itself builds by running the function on symbols."""
    x, r = sympy.symbols("x r")
    expression = cases.euler_small(x, r)
    point = {x: 0.3, r: 1.7}
    expected = [float(sympy.diff(expression, s).subs(point)) for s in (x, r)]
    expected_second = float(sympy.diff(expression, x, r).subs(point))
    compiled = grad(cases.euler_small, wrt=(0, 1), loops="keep")
    assert _kept(compiled.source)
    assert compiled(0.3, 1.7) == pytest.approx(tuple(expected), rel=1e-12)
    assert hessian(cases.euler_small, wrt=(0, 1), loops="keep")(0.3, 1.7)[0, 1] == pytest.approx(
        expected_second, rel=1e-12
    )
    w = sympy.symbols("w")
    counted = sympy.diff(cases.while_small(w), w).subs(w, 0.8)
    assert grad(cases.while_small)(0.8) == pytest.approx(float(counted), rel=1e-12)


def test_source_of_a_kept_loop_is_one_forward_and_one_backward_loop():
    source = grad(cases.euler, wrt=(0, 1)).source
    loops = [line.strip() for line in source.splitlines() if line.strip().startswith(("for ", "while "))]
    assert loops[0] == "for _i in range(100):" and re.fullmatch(r"for \w+ in range\(99, -1, -1\):", loops[1])
    assert len(loops) == 2
    assert "saved_x" in source and "dfdr" in source
    assert "# line " in source and "(derivative)" in source
    assert len(source.splitlines()) < 40


def test_generated_source_does_not_grow_with_the_trip_count(tmp_path):
    text = "def f(x, r):\n    for i in range({n}):\n        x = x + 0.001 * r * x * (1 - x)\n    return x\n"
    sources = []
    for n in (100, 100_000):
        module = write_module(tmp_path, f"logistic_{n}", text.format(n=n))
        compiled = grad(module.f, wrt=(0, 1))
        dx, dr = compiled(0.1, 2.0)
        assert np.isfinite(dx) and np.isfinite(dr)
        sources.append(compiled.source.replace(str(n - 1), "N-1").replace(str(n), "N"))
        sources[-1] = sources[-1].replace(f"logistic_{n}", "logistic")
    assert sources[0] == sources[1]
    assert dr == pytest.approx(central_diff(module.f, [0.1, 2.0], 1), rel=1e-5, abs=1e-9)


def test_unroll_gives_the_same_numbers_without_a_loop():
    args = (0.2, 0.9, 0.5)
    kept = value_and_grad(cases.rnn, wrt=(0, 1, 2))
    unrolled = value_and_grad(cases.rnn, wrt=(0, 1, 2), loops="unroll")
    assert not _kept(unrolled.source) and _kept(kept.source)
    value, gradient = kept(*args)
    value_u, gradient_u = unrolled(*args)
    assert value == pytest.approx(value_u, rel=1e-13)
    assert gradient == pytest.approx(gradient_u, rel=1e-10)


def test_loops_option_is_checked():
    with pytest.raises(symgrad.WrtError, match="loops must be one of") as info:
        grad(cases.euler, loops="scan")
    assert '"unroll"' in info.value.hint


def test_kept_loop_runs_elementwise_on_arrays():
    xs = np.linspace(0.1, 0.9, 5)
    dx, dr = grad(cases.euler, wrt=(0, 1))(xs, 2.0)
    assert dx.shape == (5,) and np.ndim(dr) == 0
    for k, x in enumerate(xs):
        assert dx[k] == pytest.approx(central_diff(cases.euler, [x, 2.0], 0), rel=1e-5)
    summed = sum(central_diff(cases.euler, [x, 2.0], 1) for x in xs)
    assert dr == pytest.approx(summed, rel=1e-5)  # a broadcast scalar's gradient sums, as in torch
    np.testing.assert_allclose(value_and_grad(cases.euler)(xs, 2.0)[0], cases.euler(xs, 2.0), rtol=1e-13)


def test_while_condition_on_an_array_is_refused_at_the_loop():
    with pytest.raises(symgrad.ShapeError, match="condition is an array of shape") as info:
        grad(cases.newton_sqrt)(np.array([2.0, 3.0]))
    err = info.value
    assert err.filename == inspect.getsourcefile(cases)
    assert "while abs(y * y - x)" in (err.source_line or "")
    assert err.col == 5
    # the hint's way works
    hinted = np.vectorize(grad(cases.newton_sqrt))(np.array([2.0, 3.0]))
    np.testing.assert_allclose(hinted, 0.5 / np.sqrt([2.0, 3.0]), rtol=1e-12)


def test_a_traced_trip_count_differentiates_the_iterations_taken():
    """Newton's method stops when converged: the derivative is that of the computed value
    (here 1 / (2 sqrt x), the exact root's, since Newton's iterate converges to it)."""
    for x in (0.5, 2.0, 50.0):
        assert grad(cases.newton_sqrt)(x) == pytest.approx(0.5 / np.sqrt(x), rel=1e-10)
        assert hessian(cases.newton_sqrt)(x)[0, 0] == pytest.approx(-0.25 * x**-1.5, rel=1e-8)


def test_expressions_of_a_kept_loop_are_refused_and_notebooks_show_the_source():
    compiled = grad(cases.euler)
    with pytest.raises(symgrad.SymgradError, match="no closed form") as info:
        compiled.exprs  # noqa: B018
    assert "loops=" in info.value.hint and "loop_cases.py:" in str(info.value)
    assert compiled._repr_latex_() is None
    page = compiled._repr_html_()
    assert "no closed form" in page and html.escape("for _i in range(100):") in page


@pytest.mark.parametrize("name", ["euler", "newton_sqrt", "projectile"])
def test_numba_backend_runs_kept_loops(name):
    pytest.importorskip("numba")
    args, _ = CASES[name]
    f = getattr(cases, name)
    expected = grad(f)(*args)
    assert grad(f, backend="numba")(*args) == pytest.approx(expected, rel=1e-13)
    assert hessian(f, backend="numba")(*args)[0, 0] == pytest.approx(hessian(f)(*args)[0, 0], rel=1e-12)


def test_jax_backend_runs_kept_for_loops_and_refuses_while_on_arrays():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)  # as the backend tests: float64 to compare with NumPy
    xs = np.array([0.1, 0.5])
    np.testing.assert_allclose(
        grad(cases.euler, backend="jax")(xs, 2.0), grad(cases.euler)(xs, 2.0), rtol=1e-12
    )
    assert grad(cases.newton_sqrt, backend="jax")(2.0) == pytest.approx(0.5 / np.sqrt(2.0), rel=1e-12)
    with pytest.raises(symgrad.SymgradError, match="`while` loop") as info:
        grad(cases.newton_sqrt, backend="jax")(np.array([2.0, 3.0]))
    assert "backend='numpy'" in info.value.hint


# --- generated while loops: traced trip counts, branches inside, second order -------------------

_TERMS = (
    "0.5 * np.sin({s} * {y})",
    "0.25 * np.tanh({s} + {y})",
    "0.3 * {s} * np.cos({y})",
    "0.2 * np.exp(-{s} * {s}) * {y}",
    "0.1 * ({s} - {y}) ** 2",
    "0.15 * np.arctan({s} * {k})",
)


def _while_source(terms: list[int], branch: bool, by_value: bool, steps: int) -> str:
    update = " + ".join(_TERMS[t].format(s="s", y="y", k="k") for t in terms)
    body = [f"        s = 0.5 * s + {update}"]
    if branch:
        body = ["        if s > y:", f"    {body[0]}", "        else:", "            s = s * np.cos(y) - 0.1"]
    condition = f"k < {steps}" if not by_value else f"k < {steps} and s * s < 100.0"
    lines = [
        "import numpy as np",
        "",
        "",
        "def f(x, y):",
        "    s = x",
        "    k = 0",
        f"    while {condition}:",
    ]
    return "\n".join([*lines, *body, "        k = k + 1", "    return s * y", ""])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    terms=st.lists(st.integers(0, len(_TERMS) - 1), min_size=1, max_size=3),
    branch=st.booleans(),
    by_value=st.booleans(),
    steps=st.integers(1, 6),
    x=st.floats(-1.5, 1.5),
    y=st.floats(0.3, 1.5),
)
def test_generated_while_loops_against_python_torch_and_sympy(
    tmp_path_factory, terms, branch, by_value, steps, x, y
):
    text = _while_source(terms, branch, by_value, steps)
    folder = tmp_path_factory.mktemp("while")
    name = f"while_{abs(hash((tuple(terms), branch, by_value, steps)))}"
    module = write_module(folder, name, text)
    f = module.f
    compiled = value_and_grad(f, wrt=(0, 1))
    assert re.search(r"^\s+while True:", compiled.source, re.MULTILINE), compiled.source
    value, gradient = compiled(x, y)
    assert value == pytest.approx(f(x, y), rel=1e-12, abs=1e-14)
    torch_f = torch_oracle.load(text, name)["f"]
    _, expected = torch_oracle.value_and_grad(torch_f, (x, y))
    assert gradient == pytest.approx(tuple(float(e) for e in expected), rel=1e-9, abs=1e-12)
    if not branch and not by_value:  # the trip count is static: SymPy can run the loop itself
        sx, sy = sympy.symbols("x y")
        symbolic = types.SimpleNamespace(
            sin=sympy.sin, cos=sympy.cos, tanh=sympy.tanh, exp=sympy.exp, arctan=sympy.atan
        )
        namespace: dict[str, object] = {"np": symbolic}
        exec(text.replace("import numpy as np\n", ""), namespace)  # the loop run by Python on symbols
        expression = namespace["f"](sx, sy)
        exact = [float(sympy.diff(expression, v).subs({sx: x, sy: y})) for v in (sx, sy)]
        assert gradient == pytest.approx(tuple(exact), rel=1e-10, abs=1e-12)
    second = hessian(f, wrt=(0, 1))(x, y)
    for i in range(2):
        for j in range(2):
            reference = torch_oracle.second(torch_f, (x, y), i, j)
            if reference is not None:
                assert second[i, j] == pytest.approx(float(reference), rel=1e-8, abs=1e-10)
