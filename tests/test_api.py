"""Public API behaviour: wrt/static handling, shapes, determinism, source registration."""

import importlib
import inspect
import os
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy

import symgrad
from symgrad import grad, value_and_grad
from tests import api_cases as cases


def test_decorator_forms_agree():
    plain = grad(cases.poly, wrt=("x", "y"))
    with_args = grad(wrt=("x", "y"))(cases.poly)
    by_position = grad(cases.poly, wrt=(0, 1))
    expected = (6.0 * 1.5**2 + 0.5, 1.5)
    for g in (plain, with_args, by_position):
        assert g(1.5, 0.5) == pytest.approx(expected, rel=1e-15)


def test_single_wrt_returns_a_single_value():
    g = grad(cases.poly, wrt="x")(1.5, 0.5)
    assert isinstance(g, float)
    assert g == pytest.approx(6.0 * 1.5**2 + 0.5)
    assert isinstance(grad(cases.poly, wrt=0)(1.5, 0.5), float)
    assert isinstance(grad(cases.poly, wrt=("x",))(1.5, 0.5), tuple)


def test_parameters_with_defaults_stay_inputs():
    assert grad(cases.poly).wrt == ("x",)  # the default: the first parameter (E9)
    g = grad(cases.poly, wrt=("x", "y"))
    assert g.wrt == ("x", "y")
    assert g(1.0, 2.0, 5.0) == pytest.approx((15.0 + 2.0, 1.0))
    assert grad(cases.poly, wrt="c")(2.0, 1.0, 1.0) == pytest.approx(8.0)


def test_value_and_grad_matches_function_and_gradient():
    v, (gx, gy) = value_and_grad(cases.branchy, wrt=("x", "y"))(1.0, 2.0)
    assert v == pytest.approx(cases.branchy(1.0, 2.0), rel=1e-15)
    assert (gx, gy) == grad(cases.branchy, wrt=("x", "y"))(1.0, 2.0)


def test_python_floats_in_floats_out_and_arrays_keep_shape():
    gx, gy = grad(cases.branchy, wrt=("x", "y"))(np.arange(-8.0, 8.0, 0.1), 0.5)
    assert gx.shape == (160,)
    assert isinstance(gy, float)
    pointwise = [grad(cases.branchy, wrt=("x", "y"))(float(x), 0.5) for x in np.arange(-8.0, 8.0, 0.1)]
    np.testing.assert_allclose(gx, [p[0] for p in pointwise], rtol=1e-13)
    assert gy == pytest.approx(sum(p[1] for p in pointwise), rel=1e-12)


def test_broadcast_scalar_gets_summed_gradient_and_constants_broadcast():
    x = np.linspace(-1.0, 1.0, 7).reshape(7, 1)
    y = np.linspace(0.5, 2.0, 3)
    gx, gy = grad(cases.poly, wrt=("x", "y"))(x, y)
    assert gx.shape == (7, 1) and gy.shape == (3,)
    np.testing.assert_allclose(gx[:, 0], (6 * x[:, 0] ** 2) * 3 + y.sum(), rtol=1e-13)
    np.testing.assert_allclose(gy, np.full(3, x.sum()), atol=1e-13)
    # a partial that is a constant (d(x*y)/dy with x scalar) is broadcast before summing
    assert grad(cases.poly, wrt="y")(2.0, np.ones((2, 3))).shape == (2, 3)
    np.testing.assert_allclose(grad(cases.poly, wrt="y")(2.0, np.ones((2, 3))), np.full((2, 3), 2.0))


def test_gradient_arrays_are_fresh_and_writable():
    x = np.linspace(0.0, 1.0, 4)
    g1 = grad(cases.uses_constant)(x)
    g1 += 1.0  # no read-only broadcast views leak out
    g2 = grad(cases.uses_constant)(x)
    np.testing.assert_allclose(g2, np.full(4, 3.0 * np.pi))


def test_float32_arrays_keep_their_dtype():
    g = grad(cases.uses_constant)(np.ones(3, dtype=np.float32))
    assert g.dtype == np.float32


def test_static_argument_gives_one_variant_per_value():
    g = grad(cases.unrolled, wrt="x", static="n")
    x = sympy.Symbol("x")
    for n in (1, 3, 5):
        h = x
        for _ in range(n):
            h = sympy.tanh(h / 2 + 1)
        expected = float(sympy.diff(h, x).subs(x, sympy.Rational(3, 10)).evalf(30))
        assert g(0.3, n) == pytest.approx(expected, rel=1e-13)
    assert len(g._variants) == 3
    assert g.source.count("numpy.tanh") == 5  # the variant last used


def test_data_dependent_loop_is_refused_but_static_works():
    with pytest.raises(symgrad.DataDependentLoopError) as info:
        grad(cases.data_loop, wrt="x")(1.0, 3.0)
    assert "static" in info.value.hint
    assert grad(cases.data_loop, wrt="x", static=("n",))(1.0, 3) == 8.0


def test_module_constants_are_folded():
    assert grad(cases.uses_constant)(1.0) == pytest.approx(3.0 * np.pi, rel=1e-15)


def test_generated_source_is_deterministic_and_registered():
    first = grad(cases.branchy).source
    second = grad(cases.branchy).source
    assert first == second
    kernel = grad(cases.branchy).variant().kernel
    assert inspect.getsource(kernel.array_fn) == kernel.array_source
    assert inspect.getsource(kernel.scalar_fn) == kernel.scalar_source


def test_traceback_shows_generated_line():
    g = grad(cases.poly)
    with pytest.raises(TypeError) as info:
        g.variant().kernel.array_fn(np.ones(2), "text", 1.0)
    text = "".join(traceback.format_exception(info.value))
    assert "<symgrad:grad_poly:" in text
    generated = [line.strip() for line in g.variant().kernel.array_source.splitlines()[2:]]
    assert any(line and line in text for line in generated)  # the generated statement is shown


def test_graph_and_exprs():
    g = grad(cases.poly, wrt=("x", "y"))
    listing = str(g.graph)
    assert listing.startswith("poly(x, y, c):")
    assert "dfdx" in listing
    x, y, c = sympy.symbols("x y c", real=True)
    dx, dy = g.exprs
    assert sympy.simplify(dx - sympy.diff(c * x**3 + x * y, x)) == 0
    assert sympy.simplify(dy - x) == 0
    assert "grad of poly" in repr(g)


def test_stop_gradient_and_no_grad():
    a = 2.0
    # c = 3a held constant: d/da [c / (a - 1)] = -c / (a - 1)^2
    assert grad(cases.detached)(a) == pytest.approx(-6.0)
    assert grad(cases.no_grad_block)(a) == pytest.approx(-6.0 + 1.0)
    assert cases.no_grad_block(a) == 8.0  # the original function still runs


@pytest.mark.parametrize("x", [np.array([-1.0, 0.0, 4.0]), 0.0, -1.0])
def test_untaken_branch_leaks_no_nan_inf_or_warning(x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = grad(cases.sqrt_where)(x)
        h = grad(cases.log_branch)(x)
        v = value_and_grad(cases.overflow_branch)(np.float64(800.0) if np.ndim(x) == 0 else x + 800)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(h)) and np.all(np.isfinite(v[1]))
    np.testing.assert_array_equal(np.atleast_1d(g)[np.atleast_1d(x) <= 0], 0.0)


def test_scalar_path_falls_back_to_numpy_semantics_on_domain_errors():
    # math.log(-1) raises; symgrad falls back to NumPy semantics (nan) like the array path.
    def_nan = grad(cases.log_branch)(float("nan"))
    assert np.isnan(def_nan) or def_nan == 1.0


def test_tuple_output_grad_on_floats_refers_to_jacobian():
    with pytest.raises(symgrad.NonScalarOutputError) as info:
        grad(cases.two_outputs)(1.0, 2.0)
    assert "jacobian" in info.value.hint and "vjp" in info.value.hint
    gx, gy = grad(cases.two_outputs, wrt=("x", "y"))(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    np.testing.assert_allclose(gx, [4.0, 5.0])
    np.testing.assert_allclose(gy, [2.0, 3.0])


def test_integer_argument_for_wrt_is_refused_but_fine_elsewhere():
    with pytest.raises(symgrad.WrtError) as info:
        grad(cases.poly)(1, 2.0)
    assert "1.0" in info.value.hint or "float" in info.value.hint
    assert grad(cases.poly, wrt="x")(1.0, 2) == pytest.approx(8.0)


# --- cancellation keeps NumPy's shapes ------------------------------------------------------


def _central(fn, args, i, h=1e-6):
    base = np.array(args[i], dtype=np.float64)
    out = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        values = []
        for sign in (1.0, -1.0):
            moved = base.copy()
            moved[index] += sign * h
            values.append(float(np.sum(fn(*args[:i], moved, *args[i + 1 :]))))
        out[index] = (values[0] - values[1]) / (2 * h)
    return out


def test_cancelled_operand_still_broadcasts_the_gradient():
    x, y = np.ones(3), 2.0
    gx, gy = grad(cases.cancelled_sum, wrt=(0, 1))(x, y)
    assert gy == pytest.approx(3.0, rel=1e-15)  # y was broadcast against x: three copies
    np.testing.assert_array_equal(gx, np.zeros(3))
    assert gy == pytest.approx(_central(cases.cancelled_sum, [x, y], 1), rel=1e-9)


def test_cancelled_values_keep_their_shape():
    w = np.array([0.3, -0.2, 1.5])
    value, _ = symgrad.value_and_grad(cases.cancelled_inside_matmul, wrt=0)(w, np.eye(3))
    assert value == pytest.approx(np.sum(w * w))
    # JAX's layout (output shape + argument shape), however the body is written (E8)
    np.testing.assert_array_equal(symgrad.jacobian(cases.cancelled_difference)(w), np.zeros((3, 3)))
    np.testing.assert_array_equal(symgrad.value_and_grad(cases.cancelled_difference)(w)[0], np.zeros(3))
    out = symgrad.vjp(cases.cancelled_where, wrt=(0, 1))(np.array([1.0, -1.0]), 2.0)
    assert np.shape(out[0]) == (2,)
    value, pullback = symgrad.vjp(cases.cancelled_elementwise, wrt=(0, 1))(np.ones(4), 2.0)
    np.testing.assert_array_equal(value, np.full(4, 2.0))
    assert pullback(np.ones(4))[1] == pytest.approx(4.0)
    grads = grad(cases.cancelled_inside_matmul, wrt=(0, 1))(w, np.eye(3))
    for i, g in enumerate(grads):
        np.testing.assert_allclose(g, _central(cases.cancelled_inside_matmul, [w, np.eye(3)], i), atol=1e-8)


def test_harmless_cancellation_stays_shape_polymorphic():
    g = grad(cases.horner_from_zero)
    assert "def grad_horner_from_zero" in g.source  # no shapes needed before the first call
    x = np.linspace(-1.0, 1.0, 5)
    np.testing.assert_allclose(g(x), 2 * x - 2.0, rtol=1e-15)  # d/dx (x**2 - 2x + 0.5)


# --- E9: the default wrt is the first parameter ------------------------------------------------


def e9_product(x, y, z=2.0):
    return np.sin(x) * y + x * z


def e9_static_first(n, x, y):
    total = 0.0
    for _ in range(n):
        total = total + x * y
    return total


def e9_least_squares(w, X, y):
    return np.sum((X @ w - y) ** 2)


def test_E9_default_wrt_is_the_first_parameter():
    x, y = 0.7, -1.3
    g = grad(e9_product)
    assert g.wrt == ("x",)
    got = g(x, y)
    assert type(got) is float  # a single gradient, not a tuple
    assert got == pytest.approx(np.cos(x) * y + 2.0, rel=1e-14)
    value, gx = value_and_grad(e9_product)(x, y)
    assert value == pytest.approx(e9_product(x, y), rel=1e-14) and gx == got
    # a static first parameter is skipped: the first of the others
    gs = grad(e9_static_first, static="n")
    assert gs.wrt == ("x",)
    assert gs(3, x, y) == pytest.approx(3 * y, rel=1e-14)
    # the old spelling, an explicit tuple, still gives every partial
    dx, dy, dz = grad(e9_product, wrt=("x", "y", "z"))(x, y, 0.5)
    assert dx == pytest.approx(np.cos(x) * y + 0.5, rel=1e-14)
    assert dy == pytest.approx(np.sin(x), rel=1e-14) and dz == pytest.approx(x, rel=1e-14)
    assert grad(e9_product, wrt=("x", "y"))(x, y) == (got, pytest.approx(np.sin(x), rel=1e-14))


def test_E9_scipy_minimize_idiom():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(9)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.5, -2.0, 0.25]) + 0.1 * rng.normal(size=40)
    jac = grad(e9_least_squares)
    # the gradient in w alone, against central differences of the NumPy function
    w = rng.normal(size=3)
    got = jac(w, X, y)
    assert isinstance(got, np.ndarray) and got.shape == (3,)
    h = 1e-6
    fd = [
        (e9_least_squares(w + h * e, X, y) - e9_least_squares(w - h * e, X, y)) / (2 * h) for e in np.eye(3)
    ]
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-6)
    result = optimize.minimize(e9_least_squares, np.zeros(3), args=(X, y), jac=jac, method="BFGS")
    assert result.success, result.message
    expected, *_ = np.linalg.lstsq(X, y, rcond=None)
    np.testing.assert_allclose(result.x, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(jac(result.x, X, y), 0.0, atol=1e-5)


def test_no_warning_of_symgrads_own_reaches_the_user():
    # astor raised `ast.Num is deprecated` on Python 3.12+ when printing the `def` line; run in a
    # fresh interpreter so that imports happen under the warnings filter
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "import numpy as np, symgrad\n"
        "from tests import api_cases as cases\n"
        "g = symgrad.value_and_grad(cases.poly, wrt=('x', 'y'))\n"
        "g(1.5, 2.0); g(np.array([1.0, 2.0]), np.array([3.0, 4.0])); g.source\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "SYMGRAD_NO_CACHE": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


_WIDE = [f"parameter_{i}" for i in range(12)]


def test_a_long_signature_lists_one_parameter_per_line(tmp_path, monkeypatch):
    path = tmp_path / "wide_signature.py"
    path.write_text(f"def wide({', '.join(_WIDE)}):\n    return " + " + ".join(_WIDE) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    wide = importlib.import_module("wide_signature").wide
    g = grad(wide, wrt=tuple(_WIDE))
    assert g(*[float(i) for i in range(12)]) == tuple(1.0 for _ in range(12))
    head = g.source.splitlines()
    assert head[0] == "def grad_wide(" and head[1] == "    parameter_0," and "):" in head
    assert all(len(line) <= 100 for line in head[: head.index("):")])


def test_a_star_parameter_takes_a_tuple_also_of_one_argument(tmp_path, monkeypatch):
    # (fixed: with one argument the fast path bound the array itself to `args`, where Python
    # binds the tuple (x,): "name `args` is not defined"; found by autograd's test_cholesky)
    path = tmp_path / "star_one.py"
    path.write_text("import numpy as np\n\n\ndef f(*args):\n    return np.sum(args[0] ** 2) * 2.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    f = importlib.import_module("star_one").f
    x = np.array([1.0, 2.0])
    (gradient,) = grad(f, wrt=0)(x)
    np.testing.assert_array_equal(gradient, 4.0 * x)
    assert value_and_grad(f, wrt=0)(x, 3.0)[0] == f(x, 3.0)
