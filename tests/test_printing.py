"""Generated code means what the user's code means: operator precedence in both printers and
on numba (S2), division by zero as NumPy computes it (S6).

Oracles: the user's function run by Python on floats (elementwise on arrays), central
differences of it, SymPy's own numeric evaluation of an expression, PyTorch float64 autograd.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import itertools
import linecache
import math
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import scipy.special
import sympy
from sympy.codegen.cfunctions import exp2

import symgrad
from symgrad import runtime
from symgrad.emit import ArrayPrinter, ScalarPrinter
from symgrad.rules import Sigmoid, StopGradient
from tests.helpers import central_diff

HAS_NUMBA = importlib.util.find_spec("numba") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None

# --- S2: every operator next to negative constants and compound operands ------------------------

# Expressions in x and y, as a user writes them. Each is the body of `return ...` in a module
# of its own, differentiated by symgrad and compared with Python running it.
PRECEDENCE_CASES: dict[str, str] = {
    # %: Python's `%` binds like `*` and `/`, left to right; numpy.mod is a call
    "mod_negative_divisor": "(2.0 * x) % (-2.0)",
    "mod_negative_divisor_times": "x % -1.0 * 3.0",
    "neg_of_mod_times": "-(x % 1.5) * y",
    "mod_of_negated": "-x % 1.5",
    "mod_by_reciprocal": "x % (1.0 / y)",
    "mod_by_product": "x % (2.0 * y)",
    "mod_by_quotient": "x % (y / 3.0)",
    "mod_by_negative_sum": "x % (y - 2.5)",
    "mod_of_sum": "(x - 3.0) % y",
    "negative_over_mod": "-3.0 / (x % 1.0 + 0.5)",
    "over_mod": "y / (x % 1.25 + 0.5)",
    "mods_in_a_sum": "2.0 * (x % 1.5) - y * (-x % 0.7)",
    "mod_cubed": "(x % 1.5) ** 3.0",
    "mod_of_negative_product": "(-2.0 * x) % (y + 3.0)",
    "reciprocal_mod": "1.0 / x % y",
    "product_mod_negative": "x * y % -0.8",
    "neg_of_product_mod": "-(x * y % 0.8)",
    "constant_mod_negated": "3.1 % -x",
    "mod_of_mod": "x % 1.3 % -0.4",
    # //: floor of a quotient, as NumPy's floor_divide
    "floordiv_negative": "(x + 1.0) // (-0.7) * y",
    "negated_floordiv_times": "-x // 0.4 * y",
    "floordiv_by_sum": "x // (y - 2.0) + x",
    "neg_of_floordiv_times": "-(x // 0.4) * y",
    "product_floordiv_negated": "2.0 * x // -y + y",
    "floordiv_squared": "(x // 0.35) ** 2.0 + y",
    # **: right-associative, tighter than unary minus on its left, looser on its right
    "neg_constant_pow": "-2.0 ** x",
    "paren_neg_constant_pow": "(-2.0) ** 3.0 * x",
    "neg_base_cubed": "(-x) ** 3.0 + y",
    "neg_base_squared": "(-x) ** 2 * y",
    "neg_of_square": "-x ** 2.0 * y",
    "negative_exponent": "x ** -2.0 + y",
    "negated_exponent": "2.0 ** -x * y",
    "product_squared": "(x * y) ** 2.0",
    "pow_of_mod": "(x * x + 1.0) ** (y % 1.5)",
    "pow_neg_pow": "(x * x + 1.0) ** -y ** 2.0",
    "pow_right_assoc": "2.0 ** x ** 2.0",
    "pow_left_grouped": "(2.0 ** x) ** 2.0",
    "exp2_cubed": "np.exp2(x) ** 3.0 * y",
    "over_sqrt": "y / (x * x + 1.0) ** 0.5",
    "rsqrt_times": "(x * x + 1.0) ** -0.5 * y",
    "over_reciprocal_pow": "1.0 / (1.0 / (x * x + 1.0)) ** y",
    "reciprocal_pow": "(1.0 / (x * x + 1.0)) ** y",
    # unary minus and plus, division chains
    "negated_factors": "-(x - y) * -(x + y)",
    "plus_minus_minus": "+x - -y",
    "neg_of_neg_cubed": "-(-x) ** 3.0",
    "divide_negative_chain": "x / -2.0 / y",
    "negated_over_product": "-x / (y * 2.0)",
    "over_quotient": "x / (y / 3.0)",
    "negated_quotients": "-(x / y) / -(y - 4.0)",
    "over_sigmoid": "y / expit(x)",
    "mod_by_sigmoid": "x % expit(y)",
    # comparisons and boolean operators in conditional expressions
    "ifexp_times_negative": "(x if x > -y else -y) * -2.0",
    "neg_of_ifexp": "-(x * y if x - y < -0.1 else y % 0.9)",
    "ifexp_not_squared": "(x if not x > y else y) ** 2.0",
    "ifexp_and": "(1.0 if x > 0.0 and y > -1.0 else -1.0) * x",
    "ifexp_or_negative": "(x - y if x < -1.0 or y < -0.5 else -x * y) % 0.6",
    "bool_arithmetic": "x * (x > -0.5) - y * (y <= 0.2)",
    # functions of negative and compound arguments
    "functions_of_negatives": "np.sin(-x) * -np.cos(y % -1.1)",
    "maximum_of_negatives": "np.maximum(-x, y * -0.5) * 2.0",
    "neg_abs_pow": "-np.abs(x - y) ** 1.5",
}

# Away from every jump of `%`, `//` and the branches at each point (checked by
# `_smooth_at`, so that a point moved onto a jump fails loudly instead of passing by luck).
POINTS = [(0.37, 0.71), (-1.23, 0.58), (1.61, -0.83)]

MODULE_HEAD = """\
import numpy as np
from scipy.special import expit
"""


def _module_source(cases: dict[str, str]) -> str:
    functions = [f"def {name}(x, y):\n    return {body}\n" for name, body in cases.items()]
    bodies = ", ".join(cases.values())
    return "\n\n".join([MODULE_HEAD, *functions, f"def all_cases(x, y):\n    return ({bodies})\n"])


_COUNTER = itertools.count()


def load_module(directory: Path, source: str) -> Iterator[ModuleType]:
    """Write `source` to a file and import it: symgrad reads user functions' source."""
    name = f"_symgrad_printing_{next(_COUNTER)}"
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
        linecache.cache.pop(str(path), None)


@pytest.fixture(scope="module")
def cases_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    yield from load_module(tmp_path_factory.mktemp("printing"), _module_source(PRECEDENCE_CASES))


def _elementwise(fn: Any, *arrays: np.ndarray) -> np.ndarray:
    """The user's function run by Python on each element (it may branch on its arguments)."""
    return np.vectorize(fn, otypes=[np.float64])(*arrays)


def _smooth_at(fn: Any, x: float, y: float) -> bool:
    """No jump within a finite-difference step: the value moves by about the slope times h."""
    h = 1e-4
    for dx, dy in ((h, 0.0), (0.0, h)):
        steps = [fn(x - dx, y - dy), fn(x, y), fn(x + dx, y + dy)]
        if abs(steps[2] - 2 * steps[1] + steps[0]) > 1e-5 * max(1.0, abs(steps[1])):
            return False
    return True


def _gradient(fn: Any, x: float, y: float) -> tuple[float, float]:
    return tuple(central_diff(fn, [x, y], i, richardson=True) for i in range(2))  # type: ignore[return-value]


@pytest.mark.parametrize("name", sorted(PRECEDENCE_CASES))
def test_S2_precedence_on_floats_and_arrays(cases_module: ModuleType, name: str) -> None:
    fn = getattr(cases_module, name)
    vg = symgrad.value_and_grad(fn, wrt=(0, 1))
    for x, y in POINTS:
        assert _smooth_at(fn, x, y), f"{name}: point {(x, y)} is next to a jump; move it"
        value, grads = vg(x, y)
        assert type(value) is float and all(type(g) is float for g in grads)
        np.testing.assert_allclose(value, fn(x, y), rtol=1e-12, atol=1e-15, err_msg=f"{name} at {(x, y)}")
        np.testing.assert_allclose(
            grads, _gradient(fn, x, y), rtol=1e-6, atol=1e-7, err_msg=f"{name} at {(x, y)}"
        )
    xs, ys = (np.array(column) for column in zip(*POINTS))
    value, grads = vg(xs, ys)
    np.testing.assert_allclose(value, _elementwise(fn, xs, ys), rtol=1e-12, atol=1e-15, err_msg=name)
    expected = np.array([_gradient(fn, x, y) for x, y in POINTS]).T
    np.testing.assert_allclose(np.array(grads), expected, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed (pip install 'symgrad[numba]')")
def test_S2_precedence_on_numba(cases_module: ModuleType) -> None:
    """Every case in one numba kernel (one compile): values and both partials of each."""
    fn = symgrad.jvp(cases_module.all_cases, wrt=("x", "y"), backend="numba")
    xs, ys = (np.array(column) for column in zip(*POINTS))
    ones, zeros = np.ones_like(xs), np.zeros_like(xs)
    values, dx = fn((xs, ys), (ones, zeros))
    _, dy = fn((xs, ys), (zeros, ones))
    assert "numba.prange" in fn.source  # the fused loop ran, not the NumPy program
    for k, name in enumerate(PRECEDENCE_CASES):
        case = getattr(cases_module, name)
        np.testing.assert_allclose(
            values[k], _elementwise(case, xs, ys), rtol=1e-12, atol=1e-15, err_msg=name
        )
        expected = np.array([_gradient(case, x, y) for x, y in POINTS]).T
        np.testing.assert_allclose([dx[k], dy[k]], expected, rtol=1e-6, atol=1e-7, err_msg=name)


# --- S2: the printers on expressions no user program writes directly ---------------------------

X, Y = sympy.symbols("x y", real=True)

# Forms that appear after folding, CSE and derivative rules: functions of ours printed as an
# operator (`stop_gradient(e)` as `e`, sigmoid as a division, exp2 as `2.0**e`), reciprocals,
# negative products of a Mod.
PRINTED_FORMS = [
    -2 * sympy.Mod(-X, 1),
    -sympy.Mod(X, 1.5),
    -Y * sympy.Mod(X, Y),
    sympy.Mul(-3, sympy.Pow(sympy.Mod(X, 1), -1)),
    sympy.Pow(sympy.Mod(X, 2), -1),
    sympy.Mod(X, 1 / Y),
    sympy.Mod(X, 1 / sympy.sqrt(Y)),
    sympy.Mod(X, sympy.Rational(1, 3)),
    sympy.Mod(1 / X, Y),
    sympy.Pow(1 / X, Y, evaluate=False),
    sympy.Pow(1 / sympy.sqrt(X), Y, evaluate=False),
    sympy.Pow(StopGradient(X + 1), 3),
    sympy.Pow(StopGradient(X + 1), Y),
    -StopGradient(X + Y),
    2 * StopGradient(X + Y),
    Y / StopGradient(X + Y),
    Y / Sigmoid(X),
    sympy.Mod(X, Sigmoid(Y)),
    sympy.Pow(Sigmoid(X), 3),
    sympy.Pow(exp2(X), 3),
    sympy.Pow(exp2(X), Y),
    -(X**2),
    sympy.floor(X / Y) * -2,
    sympy.Piecewise((X, X > 0), (Y, True)) * -2,
    sympy.Mod(X, sympy.Piecewise((X, X > 0), (-Y, True))),
]


@pytest.mark.parametrize("printer", [ScalarPrinter, ArrayPrinter], ids=lambda p: p.__name__)
@pytest.mark.parametrize("expr", PRINTED_FORMS, ids=str)
def test_S2_printed_code_computes_the_expression(expr: Any, printer: type) -> None:
    text = printer().doprint(expr)
    for x, y in [(0.3, 0.7), (1.7, 2.2)]:
        scope = {"numpy": np, "math": math, "sg": runtime, "scipy_special": scipy.special, "x": x, "y": y}
        if printer is ArrayPrinter:
            scope.update(x=np.float64(x), y=np.float64(y))
        expected = float(expr.subs({X: x, Y: y}).evalf(30))
        assert float(eval(text, scope)) == pytest.approx(expected, rel=1e-12), text


# --- S6: division by zero is NumPy's ---------------------------------------------------------------

ZERO_SOURCE = """\
def over_zero(x):
    return x / 0.0

def over_negative_zero(x):
    return x / -0.0

def over_cancelled(x, y):
    return x / (y - y)

def one_over_cancelled(x, y):
    return 1.0 / (y - y)

def floor_over_zero(x):
    return x // 0.0

def mod_zero(x):
    return x % 0.0

def over_zero_plus(x):
    return 2.0 * x / 0.0 + x * x
"""


@pytest.fixture(scope="module")
def zero_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    yield from load_module(tmp_path_factory.mktemp("zero"), ZERO_SOURCE)


XS = np.array([0.5, -1.5, 0.0])


def _numpy(fn: Any, *args: Any) -> Any:
    """The user's function on NumPy float64 values: what NumPy gives where Python raises."""
    with np.errstate(all="ignore"):
        return fn(*(np.asarray(a, dtype=np.float64) for a in args))


def _torch_grads(fn: Any, *args: np.ndarray) -> list[np.ndarray]:
    torch = pytest.importorskip("torch")
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
    fn(*leaves).sum().backward()
    return [leaf.grad.numpy() if leaf.grad is not None else np.zeros_like(a) for leaf, a in zip(leaves, args)]


def _symgrad_on_each(vg: Any, *args: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """value_and_grad on Python floats, one element at a time: the floats path."""
    values, grads = [], []
    for point in zip(*args):
        value, grad = vg(*map(float, point))
        assert type(value) is float
        values.append(value)
        grads.append(grad if isinstance(grad, tuple) else (grad,))
    return np.array(values), [np.array(g) for g in zip(*grads)]


def _check_zero_case(fn: Any, args: tuple[np.ndarray, ...], backend: str = "numpy") -> None:
    wrt = tuple(range(len(args)))
    vg = symgrad.value_and_grad(fn, wrt=wrt if len(args) > 1 else 0, backend=backend)
    expected_value = _numpy(fn, *args)
    expected_grads = _torch_grads(fn, *args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy warns on x/0.0, as it does for f
        on_floats = _symgrad_on_each(vg, *args)
        value, grads = vg(*args)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for got_value, got_grads in [on_floats, (value, list(grads))]:
        np.testing.assert_array_equal(got_value, expected_value)
        for got, want in zip(got_grads, expected_grads):
            np.testing.assert_array_equal(np.broadcast_to(got, want.shape), want)


def test_S6_divide_by_literal_zero_is_numpy(zero_module: ModuleType) -> None:
    """x / 0.0: ±inf (nan at 0) as NumPy, on floats too (where Python raises); d/dx = inf."""
    _check_zero_case(zero_module.over_zero, (XS,))
    _check_zero_case(zero_module.over_negative_zero, (XS,))
    _check_zero_case(zero_module.over_zero_plus, (XS,))


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed (pip install 'symgrad[numba]')")
def test_S6_divide_by_literal_zero_on_numba(zero_module: ModuleType) -> None:
    _check_zero_case(zero_module.over_zero_plus, (XS,), backend="numba")


def test_S6_divide_by_cancelled_zero_value_and_dx(zero_module: ModuleType) -> None:
    """x / (y - y): NumPy's ±inf/nan, and torch's dx = 1/(y - y) = inf."""
    ys = np.array([0.7, 2.0, -1.0])
    vg = symgrad.value_and_grad(zero_module.over_cancelled, wrt=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, dx = vg(XS, ys)
        on_floats = [vg(float(x), float(y)) for x, y in zip(XS, ys)]
    np.testing.assert_array_equal(value, _numpy(zero_module.over_cancelled, XS, ys))
    np.testing.assert_array_equal(dx, _torch_grads(zero_module.over_cancelled, XS, ys)[0])
    np.testing.assert_array_equal([v for v, _ in on_floats], value)
    np.testing.assert_array_equal([d for _, d in on_floats], dx)


@pytest.mark.xfail(
    strict=True,
    reason="SymPy cancels y - y to 0 while tracing, so the program is x/0 and dy is 0; torch's "
    "chain rule through the subtraction gives -inf*1 + -inf*(-1) = nan",
)
def test_S6_divide_by_cancelled_zero_dy_is_torch(zero_module: ModuleType) -> None:
    ys = np.array([0.7, 2.0, -1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, (_, dy) = symgrad.value_and_grad(zero_module.over_cancelled, wrt=(0, 1))(XS, ys)
    np.testing.assert_array_equal(
        np.broadcast_to(dy, ys.shape), _torch_grads(zero_module.over_cancelled, XS, ys)[1]
    )


def test_S6_constant_over_cancelled_zero_is_inf(zero_module: ModuleType) -> None:
    """1.0 / (y - y): inf as NumPy (tracing raised ZeroDivisionError)."""
    ys = np.array([0.7, -2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = symgrad.value_and_grad(zero_module.one_over_cancelled, wrt=0)(XS[:2], ys)[0]
        on_float = symgrad.value_and_grad(zero_module.one_over_cancelled, wrt=0)(0.5, 0.7)[0]
    np.testing.assert_array_equal(value, _numpy(zero_module.one_over_cancelled, XS[:2], ys))
    assert on_float == math.inf


def test_S6_floor_divide_by_zero_is_numpy(zero_module: ModuleType) -> None:
    """x // 0.0: NumPy's floor_divide (±inf, nan at 0) instead of a NameError for `nan`; the
    derivative is torch's for floor(x / 0.0): 0 * inf = nan."""

    def torch_twin(x: Any) -> Any:
        import torch

        return torch.floor(x / 0.0)

    vg = symgrad.value_and_grad(zero_module.floor_over_zero)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, dx = vg(XS)
        on_floats = [vg(float(x)) for x in XS]
    np.testing.assert_array_equal(value, np.floor_divide(XS, 0.0))
    np.testing.assert_array_equal(np.broadcast_to(dx, XS.shape), _torch_grads(torch_twin, XS)[0])
    np.testing.assert_array_equal([v for v, _ in on_floats], value)
    assert symgrad.grad(zero_module.floor_over_zero)(0.5) != 0.0  # nan: not a silent 0


def test_S6_mod_by_zero_is_nan(zero_module: ModuleType) -> None:
    """x % 0.0: NumPy's nan (tracing raised ZeroDivisionError: Modulo by zero)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = symgrad.value_and_grad(zero_module.mod_zero)(XS)[0]
        on_float = symgrad.value_and_grad(zero_module.mod_zero)(0.5)[0]
    np.testing.assert_array_equal(np.broadcast_to(value, XS.shape), np.mod(XS, 0.0))
    assert math.isnan(on_float)


def test_S6_infinite_constants_print_as_names() -> None:
    """inf and nan are `math.inf`/`numpy.nan` in code (repr gives `inf`, no Python name)."""
    for printer, module in [(ScalarPrinter(), math), (ArrayPrinter(), np)]:
        scope = {module.__name__: module, "x": 2.0}
        assert eval(printer.doprint(sympy.oo * X), scope) == math.inf
        assert eval(printer.doprint(-sympy.oo * X), scope) == -math.inf
        assert math.isnan(eval(printer.doprint(sympy.nan), scope))
        assert math.isnan(eval(printer.doprint(sympy.zoo), scope))


# --- how tightly printed code binds: the printers' own account against Python's parser ----------

_PYTHON_BINDING = {  # Python's operator precedence on SymPy's PRECEDENCE scale (lowest first)
    ast.IfExp: 0.5,
    ast.Or: 20,
    ast.And: 30,
    ast.Not: 35,
    ast.Compare: 35,
    ast.Add: 40,
    ast.Sub: 40,
    ast.Mult: 50,
    ast.Div: 50,
    ast.FloorDiv: 50,
    ast.Mod: 50,
    ast.MatMult: 50,
    ast.USub: 55,
    ast.UAdd: 55,
    ast.Pow: 60,
}


def _parsed_binding(text: str) -> float:
    """How tightly `text` binds at its top level, by Python's parser; parentheses around the
    whole leave no operator at the top (the tree has no node for them: compare the span)."""
    node = ast.parse(text, mode="eval").body
    if ast.get_source_segment(text, node) != text:
        return 1000.0  # `(a + b)` as a whole
    op = type(getattr(node, "op", node))
    return float(_PYTHON_BINDING.get(op, 1000.0))


def _binding_cases() -> Iterator[Any]:
    x, y, z = (sympy.Symbol(n, real=True) for n in "xyz")
    for rule in symgrad.rules.RULES:
        arity = len(inspect.signature(rule.build).parameters) if not isinstance(rule.build, type) else None
        for args in ((x + y,), (x + y, z), (x - y, z, x * z)):
            if arity is not None and len(args) != arity:
                continue
            try:
                yield rule.build(*args)
            except (TypeError, ValueError):
                continue
    yield from (1 / x, x**-2, 1 / sympy.sqrt(x), sympy.sqrt(x), x**2, x**-1.5, x**y, sympy.Mod(x, y))
    yield from (sympy.Not(x > y), sympy.And(x > y, y > z), Sigmoid(x + y), exp2(x + y), -2 * x * y)
    yield from (
        StopGradient(x + y),
        StopGradient(x * y),
        StopGradient(1 / x),
        sympy.Piecewise((x, x > y), (y, True)),
    )


@pytest.mark.parametrize("printer_class", [ScalarPrinter, ArrayPrinter])
def test_printers_know_how_tightly_their_code_binds(printer_class):
    # emit's parenthesize decides from the expression (printer.binding), never by parsing
    # printed text; here Python's parser checks it: a printer may only err to the looser side
    # (which adds parentheses), never claim tighter binding than its text has.
    printer = printer_class()
    checked = 0
    for expr in _binding_cases():
        text = str(printer.doprint(expr))
        assert printer.binding(expr) <= _parsed_binding(text), (expr, text)
        checked += 1
    assert checked >= 60
