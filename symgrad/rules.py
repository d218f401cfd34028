"""The rules table: which Python/NumPy callables symgrad knows, their SymPy form, and derivative overrides."""

from __future__ import annotations

import builtins
import functools
import importlib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from sympy.codegen.cfunctions import Cbrt, exp2, expm1, hypot, log1p, log2, log10

from . import complexes

Expr = Any  # a SymPy expression
Partials = Callable[[tuple[Any, ...], Any], tuple[Any, ...]]

# --- symgrad's own SymPy functions -------------------------------------------------------------


class StopGradient(sympy.Function):
    """Identity whose derivative is zero: `stop_gradient(e)` / `detach(e)` / `with no_grad():`."""

    nargs = 1

    @classmethod
    def eval(cls, arg: Any) -> Any:
        return arg if arg.is_Number else None  # a constant is constant already

    def fdiff(self, argindex: int = 1) -> Expr:
        return sympy.S.Zero

    def _numpycode(self, printer: Any) -> str:
        return str(printer._print(self.args[0]))

    _pythoncode = _numpycode


class LogAddExp(sympy.Function):
    """log(exp(a) + exp(b)), evaluated stably; derivative exp(a - out), which never overflows."""

    nargs = 2

    @classmethod
    def eval(cls, a: Any, b: Any) -> Any:
        if a.is_Number and b.is_Number:
            return sympy.Float(float(np.logaddexp(float(a), float(b))))
        return None

    def _eval_rewrite_as_log(self, a: Any, b: Any, **kwargs: Any) -> Any:
        return sympy.log(sympy.exp(a) + sympy.exp(b))

    def fdiff(self, argindex: int = 1) -> Expr:
        a, b = self.args if argindex == 1 else reversed(self.args)
        return Sigmoid(a - b)  # cheaper than exp(a - out), and it never overflows either

    def _numpycode(self, printer: Any) -> str:
        a, b = (printer._print(arg) for arg in self.args)
        return f"{printer._module}.logaddexp({a}, {b})"

    def _pythoncode(self, printer: Any) -> str:
        a, b = (printer._print(arg) for arg in self.args)
        return f"(max({a}, {b}) + math.log1p(math.exp(-abs(({a}) - ({b})))))"  # b may be a sum


class Sigmoid(sympy.Function):
    """1 / (1 + exp(-x)), evaluated without overflow on either side."""

    nargs = 1

    @classmethod
    def eval(cls, arg: Any) -> Any:
        if arg.is_Number:
            return sympy.Float(float(runtime_sigmoid(float(arg))))
        return None

    def _eval_rewrite_as_exp(self, arg: Any, **kwargs: Any) -> Any:
        return 1 / (1 + sympy.exp(-arg))

    def fdiff(self, argindex: int = 1) -> Expr:
        # s(x) s(-x), not s(1 - s): 1 - s cancels to 0 for x > 37 where the true value is e^-x.
        return self * Sigmoid(-self.args[0])

    def _numpycode(self, printer: Any) -> str:
        return f"sg.sigmoid({printer._print(self.args[0])})"

    def _pythoncode(self, printer: Any) -> str:
        # math.exp raises OverflowError below x = -709; the caller then reruns the NumPy flavour.
        return f"1.0/(1.0 + math.exp(-({printer._print(self.args[0])})))"


class Pick(sympy.Function):
    """`(a, b, c)[k]`: the element of a tuple at an index computed in a kept loop's body
    (`w[i % 3]`); its derivative in each element is 1 where the index picks it, else 0."""

    @classmethod
    def eval(cls, index: Any, *elements: Any) -> Any:
        if index.is_Integer and 0 <= int(index) < len(elements):
            return elements[int(index)]
        return None

    def _numpycode(self, printer: Any) -> str:
        index, *elements = (printer._print(arg) for arg in self.args)
        return f"({', '.join(elements)},)[int({index})]"

    _pythoncode = _numpycode


def _pick_partials(args: tuple[Any, ...], out: Any) -> tuple[Any, ...]:
    index = args[0]
    return (
        sympy.S.Zero,
        *(sympy.Piecewise((1, sympy.Eq(index, k)), (0, True)) for k in range(len(args) - 1)),
    )


def runtime_sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


class Round(sympy.Function):
    """Round half to even, like Python's `round` and `numpy.round`; derivative zero."""

    nargs = 1

    @classmethod
    def eval(cls, arg: Any) -> Any:
        return sympy.Integer(round(float(arg))) if arg.is_Number else None

    def fdiff(self, argindex: int = 1) -> Expr:
        return sympy.S.Zero

    def _numpycode(self, printer: Any) -> str:
        return f"{printer._module}.round({printer._print(self.args[0])})"

    def _pythoncode(self, printer: Any) -> str:
        return f"float(round({printer._print(self.args[0])}))"


def stop_gradient(x: Any) -> Any:
    """Return `x` unchanged; inside a symgrad-traced function, `x` carries no gradient.

    The counterpart of PyTorch's `.detach()` and JAX's `jax.lax.stop_gradient`; `detach` is
    another name for it.

    >>> from symgrad import detach, grad, stop_gradient
    >>> stop_gradient(3.0), detach(3.0)
    (3.0, 3.0)
    >>> def f(x):
    ...     return x * stop_gradient(x)  # the second x is a constant: d/dx = x, not 2 x
    >>> grad(f)(3.0)
    3.0
    """
    return x


detach = stop_gradient


class no_grad:  # noqa: N801 - named like torch.no_grad, which it mirrors
    """Context manager: values assigned inside `with no_grad():` carry no gradient when traced.

    Outside of tracing it does nothing, so the original function still runs as written.

    >>> from symgrad import grad, no_grad
    >>> def f(x):
    ...     with no_grad():
    ...         c = 3.0 * x  # a constant to the derivative
    ...     return c * x
    >>> f(2.0), grad(f)(2.0)
    (12.0, 6.0)
    """

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# --- elementwise functions of issue 15 ---------------------------------------------------------


class Fmod(sympy.Function):
    """`numpy.fmod(a, b)`: a - b * trunc(a / b), the sign of `a` (C's fmod; `numpy.mod` takes
    the sign of `b`). Derivatives 1 and -trunc(a / b), as PyTorch's and JAX's; at the jumps
    (a / b an integer) the one-sided value of the piece on the far side of zero."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> Expr:
        a, b = self.args
        quotient = a / b
        return sympy.S.One if argindex == 1 else -sympy.sign(quotient) * sympy.floor(sympy.Abs(quotient))

    def _numpycode(self, printer: Any) -> str:
        a, b = (printer._print(arg) for arg in self.args)
        return f"{printer._module}.fmod({a}, {b})"

    def _pythoncode(self, printer: Any) -> str:
        a, b = (printer._print(arg) for arg in self.args)
        return f"math.fmod({a}, {b})"


class Sinc(sympy.Function):
    """`numpy.sinc(x)` = sin(pi x) / (pi x), 1 at 0. Derivative (cos(pi x) - sinc(x)) / x,
    0 at x = 0 (its limit; PyTorch's too); the second derivative at exactly 0 is that of the
    piece away from 0 (0 there, where the limit is -pi^2/3: PyTorch gives 0 as well)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Expr:
        x = self.args[0]
        # x + (x == 0) keeps the untaken piece finite at 0 (NumPy's `where` evaluates both)
        safe = x + sympy.Piecewise((1, sympy.Eq(x, 0)), (0, True))
        return sympy.Piecewise((0, sympy.Eq(x, 0)), ((sympy.cos(sympy.pi * x) - self) / safe, True))

    def _numpycode(self, printer: Any) -> str:
        return f"{printer._module}.sinc({printer._print(self.args[0])})"

    def _pythoncode(self, printer: Any) -> str:
        x = printer._print(self.args[0])
        return f"(1.0 if ({x}) == 0 else math.sin(math.pi*({x}))/(math.pi*({x})))"


class LogAddExp2(sympy.Function):
    """log2(2**a + 2**b), evaluated stably (`numpy.logaddexp2`); derivative
    sigmoid((a - b) log 2), which never overflows."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> Expr:
        a, b = self.args if argindex == 1 else reversed(self.args)
        return Sigmoid((a - b) * sympy.log(2))

    def _numpycode(self, printer: Any) -> str:
        a, b = (printer._print(arg) for arg in self.args)
        return f"{printer._module}.logaddexp2({a}, {b})"

    def _pythoncode(self, printer: Any) -> str:
        a, b = (printer._print(arg) for arg in self.args)
        return f"(max({a}, {b}) + math.log2(1.0 + 2.0**(-abs(({a}) - ({b})))))"


class FMax(sympy.Function):
    """`numpy.fmax(a, b)`: the larger, and the other where one is NaN. Derivative: 1 for the
    one taken, 1/2 each at a tie (as `numpy.maximum` here, and JAX), 0 for a NaN."""

    nargs = 2
    ufunc = "fmax"

    def _numpycode(self, printer: Any) -> str:
        a, b = (printer._print(arg) for arg in self.args)
        return f"{printer._module}.{self.ufunc}({a}, {b})"

    def _pythoncode(self, printer: Any) -> str:
        a, b = (printer._print(arg) for arg in self.args)
        return f"float(numpy.{self.ufunc}({a}, {b}))"


class FMin(FMax):
    """`numpy.fmin(a, b)`: the smaller, NaN ignored; derivatives as `FMax`'s."""

    ufunc = "fmin"


def _nan_ignoring_partials(args: tuple[Any, ...], out: Any) -> tuple[Any, ...]:
    """The argument the result equals gets 1 (a NaN equals nothing, so it gets 0), ties 1/2."""
    a, b = args
    half = sympy.Rational(1, 2)
    return (
        sympy.Piecewise((half, sympy.Eq(a, b)), (1, sympy.Eq(out, a)), (0, True)),
        sympy.Piecewise((half, sympy.Eq(a, b)), (1, sympy.Eq(out, b)), (0, True)),
    )


class AngleScale(sympy.Function):
    """`numpy.deg2rad` / `numpy.rad2deg` (`radians` / `degrees`): x times a constant, printed as
    NumPy's own call so that the value is NumPy's to the last bit."""

    nargs = 1
    ufunc = "deg2rad"
    factor = math.pi / 180.0

    def fdiff(self, argindex: int = 1) -> Expr:
        return sympy.Float(self.factor)

    def _numpycode(self, printer: Any) -> str:
        return f"{printer._module}.{self.ufunc}({printer._print(self.args[0])})"

    def _pythoncode(self, printer: Any) -> str:
        name = "radians" if self.ufunc == "deg2rad" else "degrees"
        return f"math.{name}({printer._print(self.args[0])})"


class Deg2Rad(AngleScale):
    """Degrees to radians: x * pi / 180."""


class Rad2Deg(AngleScale):
    """Radians to degrees: x * 180 / pi."""

    ufunc = "rad2deg"
    factor = 180.0 / math.pi


class CopySign(sympy.Function):
    """`numpy.copysign(a, b)`: |a| with the sign of b. Derivative sign(a) * copysign(1, b) in
    a (0 at a = 0, as PyTorch), 0 in b (piecewise constant)."""

    nargs = 2

    def _numpycode(self, printer: Any) -> str:
        a, b = (printer._print(arg) for arg in self.args)
        return f"{printer._module}.copysign({a}, {b})"

    def _pythoncode(self, printer: Any) -> str:
        a, b = (printer._print(arg) for arg in self.args)
        return f"math.copysign({a}, {b})"


def _copysign_partials(args: tuple[Any, ...], out: Any) -> tuple[Any, ...]:
    a, b = args
    return (sympy.sign(a) * CopySign(1, b), sympy.S.Zero)


class FiniteMask(sympy.Function):
    """1.0 where x is finite, else 0.0: the derivative of `numpy.nan_to_num`."""

    nargs = 1

    def _numpycode(self, printer: Any) -> str:
        module = printer._module
        return f"{module}.asarray({module}.isfinite({printer._print(self.args[0])}), dtype={module}.float64)"

    def _pythoncode(self, printer: Any) -> str:
        return f"float(math.isfinite({printer._print(self.args[0])}))"


class NotNan(sympy.Function):
    """1.0 where x is a number, 0.0 where it is NaN: what `np.nanmean` counts, and the
    derivative of `NanToZero` (a constant: derivative 0)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Expr:
        return sympy.S.Zero

    def _numpycode(self, printer: Any) -> str:
        module = printer._module
        return f"{module}.where({module}.isnan({printer._print(self.args[0])}), 0.0, 1.0)"

    def _pythoncode(self, printer: Any) -> str:
        return f"(0.0 if math.isnan({printer._print(self.args[0])}) else 1.0)"


class NanToZero(sympy.Function):
    """x with NaN replaced by 0 (what `np.nansum` and `np.nanmean` add up); derivative 1 where
    x is a number, 0 where it is NaN (as torch.nansum's gradient)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Expr:
        return NotNan(self.args[0])

    def _numpycode(self, printer: Any) -> str:
        module, x = printer._module, printer._print(self.args[0])
        return f"{module}.where({module}.isnan({x}), 0.0, {x})"

    def _pythoncode(self, printer: Any) -> str:
        x = printer._print(self.args[0])
        return f"(0.0 if math.isnan({x}) else {x})"


class NanToNum(sympy.Function):
    """`numpy.nan_to_num(x)`: NaN to 0, infinities to the largest finite floats. Derivative 1
    where x is finite, 0 where it is replaced (as PyTorch's `nan_to_num`)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> Expr:
        return FiniteMask(self.args[0])

    def _numpycode(self, printer: Any) -> str:
        return f"{printer._module}.nan_to_num({printer._print(self.args[0])})"

    def _pythoncode(self, printer: Any) -> str:
        return f"float(numpy.nan_to_num({printer._print(self.args[0])}))"


# --- building SymPy expressions from calls -----------------------------------------------------


def as_condition(value: Any) -> Any:
    """A SymPy boolean for `value`: relations and booleans as they are, numbers as `value != 0`."""
    if isinstance(value, (bool, sympy.logic.boolalg.Boolean)) and not isinstance(value, sympy.Symbol):
        return sympy.true if value is True else sympy.false if value is False else value
    return sympy.Ne(value, 0)


def piecewise(*pairs: tuple[Any, Any]) -> Expr:
    """`sympy.Piecewise(*pairs)`, with successive pieces of equal value merged by a plain `Or`
    first. SymPy merges them itself by distributing And over Or, which is exponential in the
    nesting of branches (a fuzzed program of a dozen if/elif took minutes)."""
    runs: list[tuple[Any, list[Any]]] = []  # successive pieces of one value, Or-ed once at the end
    for value, cond in pairs:
        cond = sympy.sympify(cond)
        if cond is sympy.false:
            continue
        if runs and runs[-1][0] == value:
            runs[-1][1].append(cond)
        else:
            runs.append((value, [cond]))
        if cond is sympy.true:
            break
    # one Or per run: Or-ing piece by piece re-sorts the growing Or each time (cubic in a
    # long if/elif chain)
    merged = [
        (value, conds[0] if len(conds) == 1 else sympy.Or(*conds, evaluate=False)) for value, conds in runs
    ]
    if not merged:
        return sympy.Piecewise(*pairs)  # no piece applies: SymPy's own result (undefined)
    if len(merged) == 1 and merged[0][1] is sympy.true:
        return sympy.sympify(merged[0][0])
    # SymPy's own collapsing of the pieces walks every condition on each construction
    # (so a long if/elif chain, or its derivative's merged pieces, is built as it stands)
    pieces = sum(len(conds) for _, conds in runs)
    return sympy.Piecewise(*merged, evaluate=pieces < _LONG_PIECEWISE)


_LONG_PIECEWISE = 8


def _divide(a: Any, b: Any) -> Expr:
    # by a zero constant: IEEE's a * inf (SymPy's a/0 is the signless infinity, printed NaN)
    return a * sympy.oo if getattr(b, "is_zero", False) and b.is_Number else a / b


def _where(cond: Any, a: Any, b: Any) -> Expr:
    return sympy.Piecewise((a, as_condition(cond)), (b, True))


WHERE = _where


def _clip(x: Any, lo: Any, hi: Any) -> Expr:
    # minimum(maximum(x, lo), hi), as NumPy and torch.clamp compute it: `hi` wins when lo > hi.
    # Gradient 1 on the boundary, as torch.clamp has it.
    return sympy.Piecewise((hi, sympy.Or(x > hi, lo > hi)), (lo, x < lo), (x, True))


def _heaviside(x: Any, h0: Any) -> Expr:
    return sympy.Piecewise((0, x < 0), (h0, sympy.Eq(x, 0)), (1, True))


def _log(x: Any, base: Any = None) -> Expr:
    return sympy.log(x) if base is None else sympy.log(x) / sympy.log(base)


def _max(*args: Any) -> Expr:
    return sympy.Max(*args)


def _min(*args: Any) -> Expr:
    return sympy.Min(*args)


@dataclass(frozen=True)
class Rule:
    """One supported callable: its import names, SymPy builder, and an example for the tests.

    `example` is a Python expression in `x` and `y`; `domain` is where both are sampled.
    """

    names: tuple[str, ...]
    build: Callable[..., Any]
    example: str
    domain: tuple[float, float] = (-2.0, 2.0)


RULES: tuple[Rule, ...] = (
    # trigonometric
    Rule(("numpy.sin", "math.sin"), sympy.sin, "np.sin(x * y)"),
    Rule(("numpy.cos", "math.cos"), sympy.cos, "np.cos(x * y)"),
    Rule(("numpy.tan", "math.tan"), sympy.tan, "np.tan(x * y)", (-1.0, 1.0)),
    Rule(("numpy.arcsin", "math.asin"), sympy.asin, "np.arcsin(x * y)", (-0.9, 0.9)),
    Rule(("numpy.arccos", "math.acos"), sympy.acos, "np.arccos(x * y)", (-0.9, 0.9)),
    Rule(("numpy.arctan", "math.atan"), sympy.atan, "np.arctan(x * y)"),
    Rule(("numpy.arctan2", "math.atan2"), sympy.atan2, "np.arctan2(y, x)", (0.2, 2.0)),
    Rule(("numpy.hypot", "math.hypot"), hypot, "np.hypot(x, y)", (0.2, 2.0)),
    # hyperbolic
    Rule(("numpy.sinh", "math.sinh"), sympy.sinh, "np.sinh(x * y)"),
    Rule(("numpy.cosh", "math.cosh"), sympy.cosh, "np.cosh(x * y)"),
    Rule(("numpy.tanh", "math.tanh"), sympy.tanh, "np.tanh(x * y)"),
    Rule(("numpy.arcsinh", "math.asinh"), sympy.asinh, "np.arcsinh(x * y)"),
    Rule(("numpy.arccosh", "math.acosh"), sympy.acosh, "np.arccosh(1 + x * y)", (1.0, 2.0)),
    Rule(("numpy.arctanh", "math.atanh"), sympy.atanh, "np.arctanh(x * y)", (-0.9, 0.9)),
    # exponentials and logarithms
    Rule(("numpy.exp", "math.exp"), sympy.exp, "np.exp(x * y)"),
    Rule(("numpy.exp2", "math.exp2"), exp2, "np.exp2(x * y)"),
    Rule(("numpy.expm1", "math.expm1"), expm1, "np.expm1(x * y)"),
    Rule(("numpy.log", "math.log"), _log, "np.log(x * y) + math.log(x, 3.0)", (0.2, 2.0)),
    Rule(("numpy.log2", "math.log2"), log2, "np.log2(x * y)", (0.2, 2.0)),
    Rule(("numpy.log10", "math.log10"), log10, "np.log10(x * y)", (0.2, 2.0)),
    Rule(("numpy.log1p", "math.log1p"), log1p, "np.log1p(x * y)", (0.0, 0.9)),
    Rule(("numpy.logaddexp",), LogAddExp, "np.logaddexp(x, y)"),
    # powers and roots
    Rule(("numpy.sqrt", "math.sqrt"), sympy.sqrt, "np.sqrt(x * y)", (0.2, 2.0)),
    Rule(("numpy.cbrt", "math.cbrt"), Cbrt, "np.cbrt(x * y)", (0.2, 2.0)),
    Rule(("numpy.square",), lambda x: x**2, "np.square(x * y)"),
    Rule(("numpy.power", "math.pow", "builtins.pow"), sympy.Pow, "np.power(x, y) + pow(y, 2)", (0.2, 2.0)),
    Rule(("numpy.reciprocal",), lambda x: 1 / x, "np.reciprocal(x + y)", (0.2, 2.0)),
    # arithmetic ufuncs
    Rule(("numpy.add",), lambda a, b: a + b, "np.add(x, y * y)"),
    Rule(("numpy.subtract",), lambda a, b: a - b, "np.subtract(x, y * y)"),
    Rule(("numpy.multiply",), lambda a, b: a * b, "np.multiply(x, y)"),
    Rule(("numpy.divide", "numpy.true_divide"), _divide, "np.divide(x, y)", (0.2, 2.0)),
    Rule(("numpy.negative",), lambda a: -a, "np.negative(x * y)"),
    Rule(("numpy.positive", "builtins.float"), lambda a: a, "np.positive(x) * float(y)"),
    # kinks and steps (conventions: relu'(0) = 0, |x|'(0) = 0, ties of two traced values share)
    Rule(
        ("numpy.abs", "numpy.absolute", "numpy.fabs", "math.fabs", "builtins.abs"), sympy.Abs, "np.abs(x * y)"
    ),
    Rule(("numpy.sign",), sympy.sign, "np.sign(x) * y"),
    Rule(("numpy.maximum", "builtins.max"), _max, "np.maximum(x, y) + max(x, 0.5)"),
    Rule(("numpy.minimum", "builtins.min"), _min, "np.minimum(x, y) + min(x, 0.5)"),
    Rule(("numpy.clip",), _clip, "np.clip(x * y, -0.5, 0.5)"),
    Rule(("numpy.where",), _where, "np.where(x > y, x * y, y - x)"),
    Rule(("numpy.heaviside",), _heaviside, "np.heaviside(x, 0.5) * y"),
    Rule(("numpy.floor", "math.floor"), sympy.floor, "np.floor(x) * y"),
    Rule(("numpy.ceil", "math.ceil"), sympy.ceiling, "np.ceil(x) * y"),
    Rule(("numpy.round", "numpy.rint", "builtins.round"), Round, "np.round(x) * y"),
    # gradient control
    Rule(("symgrad.stop_gradient", "symgrad.detach"), StopGradient, "x * stop_gradient(x * y)"),
    # issue 15 (remainders jump where x * y / y = x is an integer, which the tests keep away from)
    Rule(("numpy.mod", "numpy.remainder"), sympy.Mod, "np.mod(x * y, y)", (0.2, 2.0)),
    Rule(("numpy.fmod", "math.fmod"), Fmod, "np.fmod(x * y, y) + math.fmod(x, 1.0)", (0.2, 2.0)),
    Rule(("numpy.sinc",), Sinc, "np.sinc(x * y)", (0.2, 2.0)),
    Rule(("numpy.logaddexp2",), LogAddExp2, "np.logaddexp2(x, y)"),
    Rule(("numpy.fmax",), FMax, "np.fmax(x, y) * y"),
    Rule(("numpy.fmin",), FMin, "np.fmin(x, y) * y"),
    Rule(("numpy.deg2rad", "numpy.radians", "math.radians"), Deg2Rad, "np.deg2rad(x * y)"),
    Rule(("numpy.rad2deg", "numpy.degrees", "math.degrees"), Rad2Deg, "np.rad2deg(x * y)"),
    Rule(("numpy.copysign", "math.copysign"), CopySign, "np.copysign(x, y) * x"),
    Rule(("numpy.nan_to_num",), NanToNum, "np.nan_to_num(x * y)"),
)


def _resolve(name: str) -> Any:
    module_name, _, attr = name.rpartition(".")
    if module_name == "symgrad":
        return {"stop_gradient": stop_gradient, "detach": detach}[attr]
    if module_name == "builtins":
        return getattr(builtins, attr, None)
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # `scipy.stats.norm.logpdf`: a method of an object in a module
        owner = _resolve(module_name)
        return None if owner is None else getattr(owner, attr, None)
    return getattr(module, attr, None)


def _callable_table() -> dict[Any, Rule]:
    table: dict[Any, Rule] = {}
    for rule in RULES:
        for name in rule.names:
            obj = _resolve(name)
            if obj is not None:  # e.g. math.cbrt only exists from Python 3.11
                table[obj] = rule
    return table


CALLABLES: dict[Any, Rule] = _callable_table()


def lookup(fn: Any) -> Rule | None:
    """The rule for a Python callable, or None if symgrad has none."""
    try:
        return CALLABLES.get(fn)
    except TypeError:  # unhashable callee
        return None


# --- checking a call against its rule, in the terms of the call as written -------------------


def check_arguments(rule: Rule, label: str, count: int) -> tuple[str, str] | None:
    """(message, hint) when `label(...)` with `count` positional arguments does not fit
    `rule`; None when it does. `label` is the callee as the user wrote it (`np.clip`)."""
    if rule.build is WHERE and count == 1:
        return (
            f"`{label}(cond)` with one argument gives the indices where `cond` holds, "
            "which have no derivative",
            f"pick between two values with the three-argument form `{label}(cond, a, b)`",
        )
    low, high = _arity(rule.build)
    if low <= count and (high is None or count <= high):
        return None
    forms = " or ".join(f"`{label}({', '.join(names)})`" for names in _forms(rule.build, low, high))
    return f"`{label}` takes {_how_many(low, high)}, not {count}", f"check the number of arguments: {forms}"


def _arity(build: Callable[..., Any]) -> tuple[int, int | None]:
    """Fewest and most positional arguments `build` takes (None: no limit)."""
    nargs = getattr(build, "nargs", None)
    if isinstance(nargs, sympy.FiniteSet):
        counts = [int(n) for n in nargs]
        return min(counts), max(counts)
    params = _params(build)
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 1, None
    required = [p for p in params if p.default is p.empty]
    return len(required), len(params)


def _params(build: Callable[..., Any]) -> list[inspect.Parameter]:
    # SymPy constructors take `evaluate=`, which no call as written passes by position.
    return [p for p in inspect.signature(build).parameters.values() if p.name != "evaluate"]


def _forms(build: Callable[..., Any], low: int, high: int | None) -> list[list[str]]:
    """Argument lists to show in a hint: `math.log(x)` and `math.log(x, base)`."""
    if high is None:
        return [["a", "b", "..."]]
    nargs = getattr(build, "nargs", None)
    names = ["x", "y", "z"][:high] if isinstance(nargs, sympy.FiniteSet) else [p.name for p in _params(build)]
    return [names[:n] for n in range(max(low, 1), high + 1)]


def _how_many(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low} argument{'s' * (low != 1)}"
    counts = f"{low}" if low == high else f"{low} or {high}" if high == low + 1 else f"{low} to {high}"
    return f"{counts} argument{'s' * (high != 1)}"


# --- derivative overrides ----------------------------------------------------------------------
# Everything else uses SymPy's own `fdiff`, the local derivative of one function application.


def _is_constant(value: Any) -> bool:
    return not getattr(value, "free_symbols", None)


def _extremum_partials(args: tuple[Any, ...], out: Any) -> tuple[Any, ...]:
    """Max/Min: the winner takes the gradient; traced ties share it evenly; a tie with a
    constant gives 0 (relu'(0) = 0, as torch.relu)."""
    traced = [a for a in args if not _is_constant(a)]
    constants = [a for a in args if _is_constant(a)]
    ties = sympy.Add(*[sympy.Piecewise((1, sympy.Eq(a, out)), (0, True)) for a in traced])
    partials = []
    for arg in args:
        if _is_constant(arg):
            partials.append(sympy.S.Zero)
            continue
        cond = sympy.And(sympy.Eq(arg, out), *[sympy.Ne(c, out) for c in constants])
        share = 1 if len(traced) == 1 else 1 / ties
        partials.append(sympy.Piecewise((share, cond), (0, True)))
    return tuple(partials)


def _binary_extremum(greater: bool) -> Partials:
    def partials(args: tuple[Any, ...], out: Any) -> tuple[Any, ...]:
        if len(args) != 2:
            return _extremum_partials(args, out)
        a, b = args
        wins_a, wins_b = (a > b, b > a) if greater else (a < b, b < a)
        if _is_constant(b):
            return (sympy.Piecewise((1, wins_a), (0, True)), sympy.S.Zero)
        if _is_constant(a):
            return (sympy.S.Zero, sympy.Piecewise((1, wins_b), (0, True)))
        half = sympy.Rational(1, 2)
        tie = sympy.Eq(a, b)
        return (
            sympy.Piecewise((1, wins_a), (half, tie), (0, True)),
            sympy.Piecewise((1, wins_b), (half, tie), (0, True)),
        )

    return partials


def _zero(args: tuple[Any, ...], out: Any) -> tuple[Any, ...]:
    return tuple(sympy.S.Zero for _ in args)


DERIVATIVES: dict[type, Partials] = {
    sympy.Abs: lambda args, out: (sympy.sign(args[0]),),
    sympy.Max: _binary_extremum(greater=True),
    sympy.Min: _binary_extremum(greater=False),
    sympy.sign: _zero,
    sympy.floor: _zero,
    sympy.ceiling: _zero,
    Round: _zero,
    StopGradient: _zero,
    Pick: _pick_partials,
    sympy.exp: lambda args, out: (out,),
    sympy.tanh: lambda args, out: (1 - out**2,),
    sympy.Mod: lambda args, out: (sympy.S.One, -sympy.floor(args[0] / args[1])),
    # 1/(3 x**(2/3)) is NaN for x < 0 in NumPy; the output form is right on both sides.
    Cbrt: lambda args, out: (1 / (3 * out**2),),
    FMax: _nan_ignoring_partials,
    FMin: _nan_ignoring_partials,
    CopySign: _copysign_partials,
    FiniteMask: _zero,
}


def register(fn: Any, sympy_function: Callable[..., Any], example: str = "") -> Rule:
    """Teach symgrad an elementwise callable: calls to `fn` trace as `sympy_function(*args)`.

    The derivative then comes from SymPy's derivative of that expression (or symgrad's own
    rule for it). `fn` need not be traceable itself: it is never inlined once registered.
    On arrays the rule is applied element by element (like a NumPy ufunc), so only
    elementwise functions may be registered: `fn` is tried on small arrays, and one seen
    working on whole arrays (`np.linalg.norm`, `np.cumsum`) is refused with an
    `UnknownCalleeError`.

    >>> import math
    >>> import sympy
    >>> from symgrad import grad, register
    >>> def my_sinc(x): ...  # e.g. a compiled function symgrad cannot read
    >>> rule = register(my_sinc, lambda x: sympy.sin(x) / x)
    >>> def f(x):
    ...     return 2.0 * my_sinc(x)
    >>> expected = 2.0 * (math.cos(2.0) / 2.0 - math.sin(2.0) / 2.0**2)
    >>> abs(grad(f)(2.0) - expected) < 1e-12
    True
    """
    name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    if _is_array_function(fn, sympy_function):
        from .errors import UnknownCalleeError

        label = getattr(fn, "__name__", repr(fn))
        raise UnknownCalleeError(
            f"register() teaches symgrad elementwise functions (each result element computed from "
            f"the matching argument elements, like np.sin); `{name}` works on whole arrays, and a "
            "rule for it would be applied element by element, which gives wrong gradients",
            hint=f"write `{label}` in your function with supported array operations (np.sum, @, "
            "indexing, see symgrad.supported()), e.g. a norm as `np.sqrt(np.sum(v * v))`",
        )
    rule = Rule((name,), sympy_function, example)
    CALLABLES[fn] = rule
    return rule


def _is_array_function(fn: Any, sympy_function: Callable[..., Any]) -> bool:
    """True when `fn`, tried on small arrays, is seen not to work element by element: its
    result on the arrays differs (in shape or value) from its results on each element."""
    if isinstance(fn, np.ufunc):
        return False
    try:
        arity = len(inspect.signature(sympy_function).parameters)
    except (TypeError, ValueError):
        return False
    probes = [np.array([0.3, 0.7, 1.1]) + 0.05 * k for k in range(arity)]
    with np.errstate(all="ignore"):
        try:
            result = fn(*probes)
            whole = np.asarray(result, dtype=np.float64)
        except Exception:  # it cannot run on these: nothing seen, trust the caller
            return False
        if result is None:  # a stub standing for a function symgrad cannot read
            return False
        if whole.shape != (3,):
            return True  # reduces or reshapes
        try:
            parts = np.array(
                [np.asarray(fn(*[float(p[i]) for p in probes]), dtype=np.float64) for i in range(3)]
            )
        except Exception:  # works on arrays only
            return True
    return parts.shape != whole.shape or not np.allclose(whole, parts, equal_nan=True)


# --- functions with a derivative given in Python (the counterpart of jax.custom_jvp) -----------


class CustomDerivative(sympy.Function):
    """`value` of a function whose partials are given: args are (value, *inputs, *partials).

    Gradients flow to the inputs only, through the given partials; the value's own graph is
    not differentiated. The partials are graph values themselves, so higher orders work."""

    def _split(self) -> tuple[Any, tuple[Any, ...], tuple[Any, ...]]:
        n = (len(self.args) - 1) // 2
        return self.args[0], self.args[1 : n + 1], self.args[n + 1 :]

    def fdiff(self, argindex: int = 1) -> Expr:
        _, inputs, partials = self._split()
        if 2 <= argindex <= len(inputs) + 1:
            return partials[argindex - 2]
        return sympy.S.Zero

    def _numpycode(self, printer: Any) -> str:
        return str(printer._print(self.args[0]))

    _pythoncode = _numpycode


class CustomRule:
    """A function with a derivative rule of its own; see `custom_derivative`."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.derivative: Callable[..., Any] | None = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def defderiv(self, derivative: Callable[..., Any]) -> Callable[..., Any]:
        """Register `derivative(*args)`, returning the partial derivative with respect to each
        argument (a tuple, or a single value for a function of one argument)."""
        self.derivative = derivative
        return derivative


def custom_derivative(fn: Callable[..., Any]) -> CustomRule:
    """Give `fn` an explicit derivative rule, used wherever a traced function calls it.

    The counterpart of `jax.custom_jvp` and `torch.autograd.Function`: the value comes from
    `fn`, the partials from the function registered with `.defderiv` (plain Python too,
    traced like any other; its own derivative gives the second order).

    >>> import numpy as np
    >>> from symgrad import custom_derivative, grad
    >>> @custom_derivative
    ... def softclip(x):
    ...     return np.tanh(x)
    >>> @softclip.defderiv
    ... def _(x):
    ...     return 0.5  # the rule used for the derivative, whatever `fn` computes
    >>> def f(x):
    ...     return 2.0 * softclip(x)
    >>> float(softclip(0.0)), grad(f)(0.0)
    (0.0, 1.0)
    """
    return CustomRule(fn)


# --- scipy.special, known by default when SciPy is installed -----------------------------------


class XLogY(sympy.Function):
    """x * log(y), defined as 0 where x == 0 (scipy.special.xlogy)."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> Expr:
        x, y = self.args
        return sympy.log(y) if argindex == 1 else x / y

    def _numpycode(self, printer: Any) -> str:
        return f"scipy_special.xlogy({printer._print(self.args[0])}, {printer._print(self.args[1])})"

    def _pythoncode(self, printer: Any) -> str:
        x, y = (printer._print(a) for a in self.args)
        return f"(0.0 if {x} == 0.0 else {x}*math.log({y}))"


class _ScipyFunction(sympy.Function):
    """A scipy.special function printed as its own call on arrays and on floats, so that
    values are SciPy's to the bit (`scipy_name`); subclasses give the derivative."""

    scipy_name = ""

    def _numpycode(self, printer: Any) -> str:
        args = ", ".join(str(printer._print(a)) for a in self.args)
        return f"scipy_special.{self.scipy_name}({args})"

    def _pythoncode(self, printer: Any) -> str:  # floats in, floats out (SciPy gives float64)
        return f"float({self._numpycode(printer)})"


_SQRT_2PI = sympy.Float(math.sqrt(2 * math.pi))  # numbers, not SymPy's exact sqrt(2)*sqrt(pi)


class Ndtr(_ScipyFunction):
    """The standard normal CDF (scipy.special.ndtr); derivative the normal density."""

    nargs = 1
    scipy_name = "ndtr"

    def fdiff(self, argindex: int = 1) -> Expr:
        x = self.args[0]
        return sympy.exp(-(x**2) / 2) / _SQRT_2PI


class LogNdtr(_ScipyFunction):
    """log of the standard normal CDF, accurate far in the lower tail (scipy.special.log_ndtr);
    derivative density / CDF, written as exp(log density - log_ndtr) so that it stays finite
    (about -x) where both underflow."""

    nargs = 1
    scipy_name = "log_ndtr"

    def fdiff(self, argindex: int = 1) -> Expr:
        x = self.args[0]
        return sympy.exp(-(x**2) / 2 - self) / _SQRT_2PI


class Ndtri(_ScipyFunction):
    """The inverse of the standard normal CDF (scipy.special.ndtri); derivative 1 / density
    at the result."""

    nargs = 1
    scipy_name = "ndtri"

    def fdiff(self, argindex: int = 1) -> Expr:
        return _SQRT_2PI * sympy.exp(self**2 / 2)


class XLog1pY(_ScipyFunction):
    """x * log1p(y), defined as 0 where x == 0 (scipy.special.xlog1py)."""

    nargs = 2
    scipy_name = "xlog1py"

    def fdiff(self, argindex: int = 1) -> Expr:
        x, y = self.args
        return log1p(y) if argindex == 1 else x / (1 + y)


class BetaLn(_ScipyFunction):
    """log|B(a, b)| (scipy.special.betaln); partials digamma(a) - digamma(a + b) and the same
    in b."""

    nargs = 2
    scipy_name = "betaln"

    def fdiff(self, argindex: int = 1) -> Expr:
        a, b = self.args
        return sympy.polygamma(0, self.args[argindex - 1]) - sympy.polygamma(0, a + b)


class Gamma(_ScipyFunction):
    """The gamma function (scipy.special.gamma); derivative gamma(x) * digamma(x)."""

    nargs = 1
    scipy_name = "gamma"

    def fdiff(self, argindex: int = 1) -> Expr:
        return self * sympy.polygamma(0, self.args[0])


def _logit(p: Any) -> Expr:
    return sympy.log(p) - log1p(-p)


_LOG_SQRT_2PI = sympy.Float(0.5 * math.log(2 * math.pi))


def _norm_logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Expr:
    z = (x - loc) / scale
    return -(z**2) / 2 - _LOG_SQRT_2PI - sympy.log(scale)


def _norm_pdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Expr:
    z = (x - loc) / scale
    return sympy.exp(-(z**2) / 2) / (_SQRT_2PI * scale)


def _norm_cdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Expr:
    return Ndtr((x - loc) / scale)


def _norm_logcdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Expr:
    return LogNdtr((x - loc) / scale)


def _norm_sf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Expr:
    return Ndtr((loc - x) / scale)  # 1 - cdf without the cancellation


def _norm_logsf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Expr:
    return LogNdtr((loc - x) / scale)


def _norm_ppf(q: Any, loc: Any = 0.0, scale: Any = 1.0) -> Expr:
    return loc + scale * Ndtri(q)


def _laplace_logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Expr:
    return -sympy.Abs(x - loc) / scale - sympy.log(2 * scale)


def _logistic_logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Expr:
    z = (x - loc) / scale  # -z - 2 log(1 + e^-z), symmetric: -|z| - 2 log1p(e^-|z|)
    return -sympy.Abs(z) - 2 * log1p(sympy.exp(-sympy.Abs(z))) - sympy.log(scale)


def _cauchy_logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Expr:
    z = (x - loc) / scale
    return -sympy.log(scale) - sympy.Float(math.log(math.pi)) - log1p(z**2)


def _t_logpdf(x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Expr:
    z = (x - loc) / scale
    half = (df + 1) / 2
    return (
        sympy.loggamma(half)
        - sympy.loggamma(df / 2)
        - (sympy.log(df) + sympy.Float(math.log(math.pi))) / 2
        - sympy.log(scale)
        - half * log1p(z**2 / df)
    )


def _scipy_rules() -> tuple[Rule, ...]:
    return (
        Rule(("scipy.special.erf",), sympy.erf, "special.erf(x * y)"),
        Rule(("scipy.special.erfc",), sympy.erfc, "special.erfc(x * y)"),
        Rule(("scipy.special.expit",), Sigmoid, "special.expit(x * y)"),
        Rule(("scipy.special.logit",), _logit, "special.logit(0.5 + 0.4 * np.tanh(x * y))"),
        Rule(("scipy.special.gammaln",), sympy.loggamma, "special.gammaln(x * y)", (0.3, 2.0)),
        Rule(
            ("scipy.special.digamma", "scipy.special.psi"),
            lambda x: sympy.polygamma(0, x),
            "special.digamma(x * y)",
            (0.3, 2.0),
        ),
        Rule(("scipy.special.xlogy",), XLogY, "special.xlogy(x, y)", (0.2, 2.0)),
        Rule(("scipy.special.xlog1py",), XLog1pY, "special.xlog1py(x, y)", (0.2, 2.0)),
        Rule(("scipy.special.ndtr",), Ndtr, "special.ndtr(x * y)"),
        Rule(("scipy.special.log_ndtr",), LogNdtr, "special.log_ndtr(x * y - 3.0)"),
        Rule(("scipy.special.ndtri",), Ndtri, "special.ndtri(x * y)", (0.2, 0.9)),
        Rule(("scipy.special.betaln",), BetaLn, "special.betaln(x, y)", (0.3, 2.0)),
        Rule(("scipy.special.gamma",), Gamma, "special.gamma(x * y)", (0.3, 2.0)),
        # scipy.stats distributions whose functions are elementwise formulas (loc=, scale=)
        Rule(("scipy.stats.norm.logpdf",), _norm_logpdf, "stats.norm.logpdf(x, y, scale=1.5)"),
        Rule(("scipy.stats.norm.pdf",), _norm_pdf, "stats.norm.pdf(x, loc=y)"),
        Rule(("scipy.stats.norm.cdf",), _norm_cdf, "stats.norm.cdf(x, y, 0.7)"),
        Rule(("scipy.stats.norm.logcdf",), _norm_logcdf, "stats.norm.logcdf(x * y - 2.0)"),
        Rule(("scipy.stats.norm.sf",), _norm_sf, "stats.norm.sf(x, scale=y)", (0.3, 2.0)),
        Rule(("scipy.stats.norm.logsf",), _norm_logsf, "stats.norm.logsf(x * y + 2.0)"),
        Rule(("scipy.stats.norm.ppf",), _norm_ppf, "stats.norm.ppf(x, loc=y)", (0.2, 0.9)),
        Rule(("scipy.stats.laplace.logpdf",), _laplace_logpdf, "stats.laplace.logpdf(x, y + 3.0)"),
        Rule(
            ("scipy.stats.logistic.logpdf",),
            _logistic_logpdf,
            "stats.logistic.logpdf(x, scale=y)",
            (0.3, 2.0),
        ),
        Rule(("scipy.stats.cauchy.logpdf",), _cauchy_logpdf, "stats.cauchy.logpdf(x, 0.5, y)", (0.3, 2.0)),
        Rule(("scipy.stats.t.logpdf",), _t_logpdf, "stats.t.logpdf(x, y + 1.0)", (0.3, 2.0)),
    )


def _registered(found: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """`found`, each of its names now looked up by `lookup`."""
    for rule in found:
        for name in rule.names:
            CALLABLES[_resolve(name)] = rule
    return found


def _register_scipy() -> tuple[Rule, ...]:
    try:
        import scipy.special
        import scipy.stats  # noqa: F401 - only to know that both are there
    except ImportError:  # optional: without SciPy these names are simply unknown callees
        return ()
    return _registered(_scipy_rules())


SCIPY_RULES: tuple[Rule, ...] = _register_scipy()


def _register_complex() -> tuple[Rule, ...]:
    """The parts of complex values; on a real value NumPy's too (`np.real(x)` is x, `np.imag(x)` 0)."""
    found = (
        Rule(("numpy.real",), sympy.re, "np.real(x * y)"),
        Rule(("numpy.imag",), sympy.im, "np.imag(x * y) + x"),
        Rule(("numpy.conj", "numpy.conjugate"), sympy.conjugate, "np.conj(x * y)"),
        Rule(("numpy.angle",), complexes.angle, "np.angle(x * y) + x"),
        Rule(("builtins.complex",), complexes.make_complex, "np.abs(complex(x, y))"),
    )
    return _registered(found)


COMPLEX_RULES: tuple[Rule, ...] = _register_complex()
