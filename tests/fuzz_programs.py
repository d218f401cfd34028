"""Random programs in symgrad's supported language, for the property tests in `test_fuzz.py`.

A program is generated as a small tree (an IR of tuples) by Hypothesis strategies and then
used three ways, all from the same random choices:

* `render_module` writes it as Python source: the function `f` that symgrad differentiates
  (with its helpers, closures and module constants) and, below it, `_probe_*` twins of every
  function that run the same arithmetic while recording, through `PROBE`, each branch
  decision and the distance to the nearest kink or jump (comparison margins, `abs` near 0,
  `floor` near an integer, ties of `max`, ...). The tests pick points whose margins exceed
  `MARGIN` and whose decisions do not change at any finite-difference point.
* `run_twin` interprets the tree with `V` values: a SymPy expression paired with its value at
  the point in 40-digit mpmath. Branches and kinks are resolved with the mpmath values, so
  the result is the smooth SymPy expression of the path taken at that point (`abs(e)` becomes
  `e` or `-e`, `floor(e)` a constant, `stop_gradient(e)` the constant value of `e`).
  `sympy.diff` of it is an oracle that shares no code with symgrad. A `while` runs as many
  iterations as its condition allows at the point, `break` and `continue` jump where their
  conditions hold there; the probe records a loop condition's margin at every check, so the
  trip count is the same at every finite-difference point. Programs with such loops (or long
  or nested ones) are differentiated by `dag_diff`, the same local derivatives over the
  expression's DAG, as `sympy.diff` takes time exponential in the iterations.
* `bound` estimates |value| for every subexpression, so that the generator keeps arguments in
  each rule's domain (squashing them into `Rule.domain`, or wrapping them as `1.5 + e*e`) and
  away from overflow.

`REGRESSIONS` holds programs that once exposed a bug; `test_fuzz.py` runs them on every run.
"""

from __future__ import annotations

import ast
import builtins
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import sympy
from hypothesis import strategies as st

import symgrad
from symgrad.looptrace import KEEP_FROM

# --- numbers ----------------------------------------------------------------------------------

DPS = 40
MP = mpmath.MPContext()
MP.dps = DPS

MARGIN = 1e-3  # minimum distance of the point from any branch boundary or kink
CAP = 1e3  # subexpressions with a larger bound are wrapped in a bounded function
PARAM_BOUND = 2.0  # float parameters are drawn from [-2, 2]
HELPER_BOUND = 3.0  # helper parameters: call sites squash their arguments into [-3, 3]
CONSTANTS = (0.5, 0.25, 0.75, 1.5, 2.0, 3.0, 1.25, 0.125, 2, 3, 1)
# trip counts of long `for` loops, which symgrad keeps as loops by default (loops="auto")
LONG_TRIPS = (KEEP_FROM, KEEP_FROM + 1, KEEP_FROM + 6)


class V:
    """A value of the SymPy twin: the symbolic expression `s` and its value `n` at the point."""

    __slots__ = ("n", "s")

    def __init__(self, s: Any, n: Any) -> None:
        self.s = s
        self.n = n

    def __repr__(self) -> str:
        return f"V({self.s}, {MP.nstr(self.n, 12)})"

    # arithmetic (NotImplemented for lists, which the interpreter broadcasts itself)
    def __add__(self, o: Any) -> V:
        o = lift(o)
        return V(self.s + o.s, self.n + o.n)

    def __radd__(self, o: Any) -> V:
        return lift(o) + self

    def __sub__(self, o: Any) -> V:
        o = lift(o)
        return V(self.s - o.s, self.n - o.n)

    def __rsub__(self, o: Any) -> V:
        return lift(o) - self

    def __mul__(self, o: Any) -> V:
        o = lift(o)
        return V(self.s * o.s, self.n * o.n)

    def __rmul__(self, o: Any) -> V:
        return lift(o) * self

    def __truediv__(self, o: Any) -> V:
        o = lift(o)
        return V(self.s / o.s, self.n / o.n)

    def __rtruediv__(self, o: Any) -> V:
        return lift(o) / self

    def __pow__(self, o: Any) -> V:
        o = lift(o)
        if self.n < 0 and o.n != MP.nint(o.n):
            raise ValueError("negative base with a fractional exponent")  # a generator bug
        expo = o.s
        if expo.is_Number and o.n == MP.nint(o.n):
            expo = sympy.Integer(int(o.n))  # x ** 2.0 as x ** 2: SymPy differentiates it as 2*x
        if not expo.is_Number and self.n > 0:  # a traced exponent: a textbook function, as
            # SymPy's Pow (evaluated again in every product holding it) factors its exponent,
            # walking it as a tree (minutes for a value carried through 64 iterations)
            return V(F.pow(self.s, expo), self.n**o.n)
        return V(self.s**expo, self.n**o.n)

    def __rpow__(self, o: Any) -> V:
        return lift(o) ** self

    def __neg__(self) -> V:
        return V(-self.s, -self.n)

    def __pos__(self) -> V:
        return self


def lift(x: Any) -> V:
    if isinstance(x, V):
        return x
    if isinstance(x, (bool, np.bool_)):
        x = int(x)
    if isinstance(x, (int, np.integer)):
        return V(sympy.Integer(int(x)), MP.mpf(int(x)))
    # exactly the binary float (53 bits fit in DPS digits); a Float, not a Rational, so that
    # SymPy evaluates constant subexpressions numerically instead of exactly
    return V(sympy.Float(float(x), DPS), MP.mpf(float(x)))


def const_of(v: Any) -> V:
    """A constant with v's value: what stop_gradient and no_grad make of a value."""
    v = lift(v)
    return V(sympy.Float(MP.nstr(v.n, DPS + 5), DPS), v.n)


def num(x: Any) -> Any:
    return lift(x).n


# --- the twin's elementary functions ------------------------------------------------------------


class Textbook(sympy.Function):
    """An elementary function of the twin: its textbook derivative and its mpmath value, and
    none of SymPy's automatic simplification or assumptions (`tanh(e).is_finite` expands
    `e.as_real_imag()`, which takes minutes on deep expressions)."""

    mp: Callable[..., Any]

    @classmethod
    def eval(cls, *args: Any) -> Any:
        return None


def _textbook(name: str, mpfn: Callable[..., Any], *derivatives: Callable[..., Any]) -> type:
    def fdiff(self: Any, argindex: int = 1) -> Any:
        return derivatives[argindex - 1](*self.args)

    return type(name, (Textbook,), {"nargs": len(derivatives), "fdiff": fdiff, "mp": staticmethod(mpfn)})


HALF = sympy.Rational(1, 2)


class F:
    """Textbook derivatives: d sin = cos, d atan2(y, x) = (x dy - y dx) / (x^2 + y^2), ..."""

    sin = _textbook("Sin", MP.sin, lambda a: F.cos(a))
    cos = _textbook("Cos", MP.cos, lambda a: -F.sin(a))
    tan = _textbook("Tan", MP.tan, lambda a: 1 + F.tan(a) ** 2)
    asin = _textbook("Asin", MP.asin, lambda a: (1 - a**2) ** -HALF)
    acos = _textbook("Acos", MP.acos, lambda a: -((1 - a**2) ** -HALF))
    atan = _textbook("Atan", MP.atan, lambda a: 1 / (1 + a**2))
    atan2 = _textbook("Atan2", MP.atan2, lambda y, x: x / (x**2 + y**2), lambda y, x: -y / (x**2 + y**2))
    sinh = _textbook("Sinh", MP.sinh, lambda a: F.cosh(a))
    cosh = _textbook("Cosh", MP.cosh, lambda a: F.sinh(a))
    tanh = _textbook("Tanh", MP.tanh, lambda a: 1 - F.tanh(a) ** 2)
    asinh = _textbook("Asinh", MP.asinh, lambda a: (a**2 + 1) ** -HALF)
    acosh = _textbook("Acosh", MP.acosh, lambda a: (a**2 - 1) ** -HALF)
    atanh = _textbook("Atanh", MP.atanh, lambda a: 1 / (1 - a**2))
    exp = _textbook("Exp", MP.exp, lambda a: F.exp(a))
    log = _textbook("Log", MP.log, lambda a: 1 / a)
    pow = _textbook("Power", MP.power, lambda a, b: b * F.pow(a, b - 1), lambda a, b: F.pow(a, b) * F.log(a))


# --- rule specifications ----------------------------------------------------------------------
# Argument kinds: "any" (bounded by CAP), "small" (|a| <= 3: exp, sinh, exponents), "pos"
# (>= 0.2: log, sqrt, denominators, bases), "unit" (|a| <= 0.9: arcsin, arctanh, tan),
# "above1" (arccosh), "nonzero" (cbrt: positive or negative, away from 0), "const:..."
# (a literal), "cond" (a comparison).


def _smooth(symfn: Callable[..., Any], mpfn: Callable[..., Any]) -> Callable[..., V]:
    def twin(*args: Any) -> V:
        vs = [lift(a) for a in args]
        return V(symfn(*(v.s for v in vs)), mpfn(*(v.n for v in vs)))

    return twin


def _cbrt(a: Any) -> V:
    a = lift(a)
    third = sympy.Rational(1, 3)
    if a.n > 0:
        return V(a.s**third, MP.cbrt(a.n))
    return V(-((-a.s) ** third), -MP.cbrt(-a.n))


def _log(a: Any, base: Any = None) -> V:
    a = lift(a)
    if base is None:
        return V(F.log(a.s), MP.log(a.n))
    b = lift(base)
    return V(F.log(a.s) / F.log(b.s), MP.log(a.n) / MP.log(b.n))


def _abs(a: Any) -> V:
    a = lift(a)
    return a if a.n > 0 else -a


def _sign(a: Any) -> V:
    a = lift(a)
    return lift(1 if a.n > 0 else -1 if a.n < 0 else 0)


def _max(*args: Any) -> V:
    vs = [lift(a) for a in args]
    best = vs[0]
    for v in vs[1:]:
        if v.n > best.n:
            best = v
    return best


def _min(*args: Any) -> V:
    vs = [lift(a) for a in args]
    best = vs[0]
    for v in vs[1:]:
        if v.n < best.n:
            best = v
    return best


def _clip(x: Any, lo: Any, hi: Any) -> V:
    return _min(_max(x, lo), hi)  # NumPy's definition: minimum(maximum(x, lo), hi)


def _where(c: Any, a: Any, b: Any) -> V:
    return lift(a) if c else lift(b)


def _heaviside(x: Any, h0: Any) -> V:
    x = lift(x)
    return lift(0) if x.n < 0 else lift(h0) if x.n == 0 else lift(1)


def _floor(a: Any) -> V:
    return lift(int(MP.floor(lift(a).n)))


def _ceil(a: Any) -> V:
    return lift(int(MP.ceil(lift(a).n)))


def _round(a: Any) -> V:
    return lift(int(MP.nint(lift(a).n)))  # the margin keeps the point off half-integers


def _stop(a: Any) -> V:
    return const_of(lift(a))


def _power(a: Any, b: Any) -> Any:
    """a ** b of positive a: a textbook function where b is traced (see V.__pow__)."""
    return a**b if sympy.sympify(b).is_Number else F.pow(a, b)


def _b_pow(ms: list[float]) -> float:
    base, expo = ms
    return max(base, 5.0) ** expo


def _trunc(x: Any) -> Any:
    return MP.floor(x) if x >= 0 else MP.ceil(x)


def _remainder(a: Any, b: Any, rounding: Callable[[Any], Any]) -> V:
    """a - b * k, k = floor (np.mod) or trunc (np.fmod) of a / b: a constant on the piece."""
    a, b = lift(a), lift(b)
    k = int(rounding(a.n / b.n))
    return V(a.s - k * b.s, a.n - k * b.n)


def _sinc(a: Any) -> V:
    a = lift(a)
    return V(F.sin(sympy.pi * a.s) / (sympy.pi * a.s), MP.sin(MP.pi * a.n) / (MP.pi * a.n))


def _logaddexp2(a: Any, b: Any) -> V:
    a, b = lift(a), lift(b)
    ln2 = sympy.log(2)
    return V(
        F.log(F.exp(a.s * ln2) + F.exp(b.s * ln2)) / ln2,
        MP.log(MP.power(2, a.n) + MP.power(2, b.n), 2),
    )


@dataclass(frozen=True)
class Spec:
    """How to generate calls of one rule and how its twin computes them."""

    args: tuple[str, ...]
    twin: Callable[..., V]
    bound: Callable[[list[float]], float]
    scalar_only_spellings: tuple[str, ...] = ()


ONE = lambda ms: 1.0  # noqa: E731
SUM = lambda ms: float(sum(ms))  # noqa: E731
MAXB = lambda ms: float(max(ms))  # noqa: E731
LOGB = lambda ms: max(math.log(max(ms[0], 1.0)), 1.7) + 1.0  # noqa: E731

SPECS: dict[str, Spec] = {
    "numpy.sin": Spec(("any",), _smooth(F.sin, MP.sin), ONE),
    "numpy.cos": Spec(("any",), _smooth(F.cos, MP.cos), ONE),
    "numpy.tan": Spec(("unit",), _smooth(F.tan, MP.tan), lambda ms: 1.3),
    "numpy.arcsin": Spec(("unit",), _smooth(F.asin, MP.asin), lambda ms: 1.6),
    "numpy.arccos": Spec(("unit",), _smooth(F.acos, MP.acos), lambda ms: 3.2),
    "numpy.arctan": Spec(("any",), _smooth(F.atan, MP.atan), lambda ms: 1.6),
    "numpy.arctan2": Spec(("any", "pos"), _smooth(F.atan2, MP.atan2), lambda ms: 3.2),
    "numpy.hypot": Spec(("any", "pos"), _smooth(lambda a, b: (a**2 + b**2) ** HALF, MP.hypot), SUM),
    "numpy.sinh": Spec(("small",), _smooth(F.sinh, MP.sinh), lambda ms: math.sinh(ms[0]) + 1),
    "numpy.cosh": Spec(("small",), _smooth(F.cosh, MP.cosh), lambda ms: math.cosh(ms[0]) + 1),
    "numpy.tanh": Spec(("any",), _smooth(F.tanh, MP.tanh), ONE),
    "numpy.arcsinh": Spec(("any",), _smooth(F.asinh, MP.asinh), lambda ms: math.asinh(ms[0]) + 1),
    "numpy.arccosh": Spec(("above1",), _smooth(F.acosh, MP.acosh), lambda ms: math.log(2 * ms[0]) + 1),
    "numpy.arctanh": Spec(("unit",), _smooth(F.atanh, MP.atanh), lambda ms: 1.5),
    "numpy.exp": Spec(("small",), _smooth(F.exp, MP.exp), lambda ms: math.exp(ms[0])),
    "numpy.exp2": Spec(
        ("small",),
        _smooth(lambda a: _power(sympy.Integer(2), a), lambda a: MP.power(2, a)),
        lambda ms: 2 ** ms[0],
    ),
    "numpy.expm1": Spec(
        ("small",), _smooth(lambda a: F.exp(a) - 1, MP.expm1), lambda ms: math.exp(ms[0]) + 1
    ),
    "numpy.log": Spec(("pos",), _log, LOGB),
    "numpy.log2": Spec(("pos",), _smooth(lambda a: F.log(a) / F.log(2), lambda a: MP.log(a, 2)), LOGB),
    "numpy.log10": Spec(("pos",), _smooth(lambda a: F.log(a) / F.log(10), lambda a: MP.log(a, 10)), LOGB),
    "numpy.log1p": Spec(("pos",), _smooth(lambda a: F.log(1 + a), MP.log1p), LOGB),
    "numpy.logaddexp": Spec(
        ("any", "any"),
        _smooth(lambda a, b: F.log(F.exp(a) + F.exp(b)), lambda a, b: MP.log(MP.exp(a) + MP.exp(b))),
        lambda ms: max(ms) + 0.7,
    ),
    "numpy.sqrt": Spec(("pos",), _smooth(lambda a: a**HALF, MP.sqrt), lambda ms: math.sqrt(ms[0])),
    "numpy.cbrt": Spec(("nonzero",), _cbrt, lambda ms: ms[0] ** (1 / 3)),
    "numpy.square": Spec(("any",), _smooth(lambda a: a**2, lambda a: a**2), lambda ms: ms[0] ** 2),
    "numpy.power": Spec(("pos", "small"), _smooth(_power, MP.power), _b_pow),
    "numpy.reciprocal": Spec(("pos",), _smooth(lambda a: 1 / a, lambda a: 1 / a), lambda ms: 5.0),
    "numpy.add": Spec(("any", "any"), _smooth(operator.add, operator.add), SUM),
    "numpy.subtract": Spec(("any", "any"), _smooth(operator.sub, operator.sub), SUM),
    "numpy.multiply": Spec(("any", "any"), _smooth(operator.mul, operator.mul), lambda ms: ms[0] * ms[1]),
    "numpy.divide": Spec(("any", "pos"), _smooth(operator.truediv, operator.truediv), lambda ms: 5 * ms[0]),
    "numpy.negative": Spec(("any",), _smooth(operator.neg, operator.neg), MAXB),
    "numpy.positive": Spec(("any",), _smooth(lambda a: a, lambda a: a), MAXB),
    "numpy.abs": Spec(("any",), _abs, MAXB),
    "numpy.sign": Spec(("any",), _sign, ONE),
    "numpy.maximum": Spec(("any", "any"), _max, MAXB),
    "numpy.minimum": Spec(("any", "any"), _min, MAXB),
    "numpy.clip": Spec(("any", "lo", "hi"), _clip, MAXB),
    "numpy.where": Spec(("cond", "any", "any"), _where, lambda ms: max(ms[1:])),
    "numpy.heaviside": Spec(("any", "const:0.0,0.5,1.0"), _heaviside, ONE),
    "numpy.floor": Spec(("any",), _floor, lambda ms: ms[0] + 1),
    "numpy.ceil": Spec(("any",), _ceil, lambda ms: ms[0] + 1),
    "numpy.round": Spec(("any",), _round, lambda ms: ms[0] + 1),
    "symgrad.stop_gradient": Spec(("any",), _stop, MAXB),
    # issue 15
    "numpy.mod": Spec(("any", "nonzero"), lambda a, b: _remainder(a, b, MP.floor), lambda ms: ms[1]),
    "numpy.fmod": Spec(("any", "nonzero"), lambda a, b: _remainder(a, b, _trunc), lambda ms: min(ms)),
    "numpy.sinc": Spec(("nonzero",), _sinc, ONE),
    "numpy.logaddexp2": Spec(("any", "any"), _logaddexp2, lambda ms: max(ms) + 1.0),
    "numpy.fmax": Spec(("any", "any"), _max, MAXB),
    "numpy.fmin": Spec(("any", "any"), _min, MAXB),
    "numpy.deg2rad": Spec(("any",), _smooth(lambda a: a * sympy.pi / 180, lambda a: a * MP.pi / 180), MAXB),
    "numpy.rad2deg": Spec(
        ("any",), _smooth(lambda a: a * 180 / sympy.pi, lambda a: a * 180 / MP.pi), lambda ms: 58 * ms[0]
    ),
    "numpy.copysign": Spec(("any", "any"), lambda a, b: _abs(a) if lift(b).n > 0 else -_abs(a), MAXB),
    "numpy.nan_to_num": Spec(("any",), _smooth(lambda a: a, lambda a: a), MAXB),
}

RULE_BY_KEY = {rule.names[0]: rule for rule in symgrad.RULES}
KINKS = {  # rules whose probe records a margin: key -> probe recorder
    "numpy.abs": "at",
    "numpy.sign": "at",
    "numpy.heaviside": "at",
    "numpy.floor": "near_int",
    "numpy.ceil": "near_int",
    "numpy.round": "near_half",
    "numpy.maximum": "ties",
    "numpy.minimum": "ties",
    "numpy.clip": "ties",
    "numpy.fmax": "ties",
    "numpy.fmin": "ties",
    "numpy.mod": "quot",
    "numpy.fmod": "quot",
    "numpy.copysign": "signs",
}
ARRAY_SAFE_MODULES = ("numpy", "symgrad")


def _exists(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    if module == "builtins":
        return hasattr(builtins, attr)
    if module == "math":
        return hasattr(math, attr)
    if module == "numpy":
        return hasattr(np, attr)
    return hasattr(symgrad, attr)


def spelling(name: str) -> str:
    module, _, attr = name.rpartition(".")
    return {"numpy": f"np.{attr}", "math": f"math.{attr}"}.get(module, attr)


def spellings(key: str, arrays: bool) -> list[str]:
    names = [n for n in RULE_BY_KEY[key].names if _exists(n)]
    if arrays:
        names = [n for n in names if n.startswith(ARRAY_SAFE_MODULES) or n == "builtins.abs"]
    return [spelling(n) for n in names]


# --- the IR -----------------------------------------------------------------------------------
# Expressions:  ("v", name) ("c", number) ("neg", a) ("bin", op, a, b)
#   ("call", key, spelling, args) ("ifexp", cond, a, b) ("h", helper, args, kwargs)
#   arrays: ("red", "sum"|"mean"|"max"|"min"|"prod", a) ("dot", "@"|"np.dot", a, b)
#   ("idx", a, index) ("len", name)
#   ("gsum", var, exprs, body): `sum(body for var in (e1, e2, ...))`
# Conditions: ("cmp", ops, operands) ("and", a, b) ("or", a, b) ("not", a)
# Statements: ("assign", name, e) ("aug", name, op, e) ("unpack", names, exprs)
#   ("if", ((cond, body), ...), orelse | None) ("for", var, ("range", args) | ("tuple", exprs), body)
#   ("while", cond, body) ("break",) ("continue",) ("nograd", body) ("return", exprs)
#   (a `while` condition may be ("true",): `while True:`)


def _jumps(body: list[Any]) -> bool:
    """Whether a loop's body may `break` or `continue` (its nested loops' jumps are their own)."""
    for s in body:
        if s[0] in ("break", "continue"):
            return True
        if s[0] == "if" and any(_jumps(b) for b in [*(b for _, b in s[1]), s[2] or []]):
            return True
    return False


def _assigned(body: list[Any]) -> list[str]:
    """The names a block assigns, nested blocks included."""
    names: list[str] = []
    for s in body:
        if s[0] in ("assign", "aug"):
            names.append(s[1])
        elif s[0] == "unpack":
            names += list(s[1])
        elif s[0] == "if":
            for _, b in s[1]:
                names += _assigned(b)
            names += _assigned(s[2] or [])
        elif s[0] in ("for", "nograd"):
            names += _assigned(s[-1] if s[0] == "for" else s[1])
        elif s[0] == "while":
            names += _assigned(s[2])
    return list(dict.fromkeys(names))


@dataclass
class Func:
    name: str
    params: tuple[str, ...]
    defaults: dict[str, float]
    body: list[Any]
    closure: dict[str, float] | None = None  # a closure made by `make_<name>(...)`


@dataclass
class Program:
    family: str
    params: tuple[str, ...]
    shapes: dict[str, tuple[int, ...]]  # () for floats
    consts: dict[str, float]
    helpers: list[Func]
    main: Func
    n_outputs: int
    uses_stop: bool
    text: str = ""  # the module source (with the probes)
    # the newer families: module-level arrays (source text), hazard guards, captured values...
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """What a person reads: the module without the probe functions."""
        return self.text.split(PROBE_MARK)[0].rstrip() + "\n"

    def __repr__(self) -> str:  # how Hypothesis shows a falsifying example
        return f"Program({self.family}, shapes={self.shapes})\n{self.source}"


# --- rendering --------------------------------------------------------------------------------

HEADER = """\
import math

import numpy as np

from fuzz_programs import PROBE as _P
from symgrad import detach, no_grad, stop_gradient

"""
PROBE_MARK = "# --- probes"


def _num_text(x: Any) -> str:
    text = repr(x)
    return f"({text})" if text.startswith("-") else text


class Renderer:
    """Python source of the IR; `probe=True` renders the recording twin."""

    def __init__(self, probe: bool) -> None:
        self.probe = probe

    def fn_name(self, name: str) -> str:
        return f"_probe_{name}" if self.probe else name

    def expr(self, e: Any) -> str:
        tag = e[0]
        if tag == "v":
            return e[1]
        if tag == "c":
            return _num_text(e[1])
        if tag == "neg":
            return f"(-{self.expr(e[1])})"
        if tag == "bin":
            _, op, a, b = e
            if self.probe and op in ("//", "%"):
                return f"_P.q({self.expr(a)}, {self.expr(b)}, {op!r})"
            return f"({self.expr(a)} {op} {self.expr(b)})"
        if tag == "call":
            return self.call(e)
        if tag == "ifexp":
            return f"({self.expr(e[2])} if {self.cond(e[1])} else {self.expr(e[3])})"
        if tag == "h":
            _, name, args, kwargs = e
            parts = [self.expr(a) for a in args] + [f"{k}={self.expr(v)}" for k, v in kwargs]
            return f"{self.fn_name(name)}({', '.join(parts)})"
        if tag == "red":
            _, kind, a = e
            inner = self.expr(a)
            if self.probe and kind in ("max", "min"):
                inner = f"_P.extreme({inner})"
            return f"np.{kind}({inner})"
        if tag == "dot":
            _, how, a, b = e
            if how == "@":
                return f"({self.expr(a)} @ {self.expr(b)})"
            return f"{how}({self.expr(a)}, {self.expr(b)})"
        if tag == "idx":
            return f"{self.expr(e[1])}[{self.expr(e[2])}]"
        if tag == "len":
            return f"len({e[1]})"
        if tag == "slice":  # a view: x[0:2], x[1:], x[::2]
            return f"{e[1]}[{e[2]}]"
        if tag == "gsum":
            _, var, items, body = e
            return f"sum({self.expr(body)} for {var} in ({', '.join(self.expr(i) for i in items)},))"
        raise AssertionError(e)

    def call(self, e: Any) -> str:
        _, key, spell, args = e
        texts = []
        for kind, a in zip(SPECS[key].args + ("any",) * 3, args):
            texts.append(self.cond(a) if kind == "cond" else self.expr(a))
        if self.probe:
            if key == "symgrad.stop_gradient":
                return f"_P.stop({texts[0]})"
            recorder = KINKS.get(key)
            if recorder in ("ties", "quot", "signs"):  # margins of several arguments
                return f"{spell}(*_P.{recorder}({', '.join(texts)}))"
            if recorder is not None:
                texts[0] = f"_P.{recorder}({texts[0]})"
            if key == "numpy.cbrt":
                texts[0] = f"_P.at({texts[0]})"
        if spell == "round":  # Python's round() refuses NumPy's 0-d arrays (np.where's result)
            texts[0] = f"float({texts[0]})"
        if key == "numpy.where":
            # np.where(w > 0, 1, 2) is an int64 array in NumPy (a float to symgrad): then
            # `t *= 0.5` or `t ** -1` raise in the original program. Multiplying by 1.0 is exact.
            return f"({spell}({', '.join(texts)}) * 1.0)"
        return f"{spell}({', '.join(texts)})"

    def cond(self, c: Any) -> str:
        tag = c[0]
        if tag == "cmp":
            _, ops, operands = c
            texts = [self.expr(o) for o in operands]
            if not self.probe:
                parts = [texts[0]]
                for op, t in zip(ops, texts[1:]):
                    parts += [op, t]
                return f"({' '.join(parts)})"
            links = [f"_P.cmp({a}, {b}, {op!r})" for op, a, b in zip(ops, texts, texts[1:])]
            return f"({' and '.join(links)})"
        if tag == "not":
            return f"(not {self.cond(c[1])})"
        if tag == "true":
            return "True"
        if tag == "guard":  # a hazard's guard, a loop counter's test: not recorded
            _, op, a, b = c
            return f"({self.expr(a)} {op} {self.expr(b)})"
        return f"({self.cond(c[1])} {tag} {self.cond(c[2])})"

    def block(self, stmts: list[Any], indent: int) -> list[str]:
        pad = "    " * indent
        lines: list[str] = []
        for s in stmts:
            tag = s[0]
            if tag == "assign":
                lines.append(f"{pad}{s[1]} = {self.expr(s[2])}")
            elif tag == "aug":
                lines.append(f"{pad}{s[1]} {s[2]}= {self.expr(s[3])}")
            elif tag == "unpack":
                lines.append(f"{pad}{', '.join(s[1])} = {', '.join(self.expr(e) for e in s[2])}")
            elif tag == "if":
                for k, (cond, body) in enumerate(s[1]):
                    lines.append(f"{pad}{'if' if k == 0 else 'elif'} {self.cond(cond)}:")
                    lines += self.block(body, indent + 1)
                if s[2] is not None:
                    lines.append(f"{pad}else:")
                    lines += self.block(s[2], indent + 1)
            elif tag == "for":
                _, var, (how, items), body = s
                if how == "range":
                    head = f"range({', '.join(self.expr(a) for a in items)})"
                else:
                    head = f"({', '.join(self.expr(a) for a in items)},)"
                lines.append(f"{pad}for {var} in {head}:")
                lines += self.block(body, indent + 1)
            elif tag == "while":  # the probe records the condition's margins at every check
                lines.append(f"{pad}while {self.cond(s[1])}:")
                lines += self.block(s[2], indent + 1)
            elif tag in ("break", "continue"):
                lines.append(f"{pad}{tag}")
            elif tag == "nograd":
                if self.probe:
                    lines += [f"{pad}{t} = _P.stop({self.expr(e)})" for _, t, e in s[1]]
                else:
                    lines.append(f"{pad}with no_grad():")
                    lines += self.block(s[1], indent + 1)
            elif tag == "return":
                lines.append(f"{pad}return {', '.join(self.expr(e) for e in s[1])}")
            else:
                raise AssertionError(s)
        return lines

    def func(self, fn: Func) -> str:
        params = [f"{p}={_num_text(fn.defaults[p])}" if p in fn.defaults else p for p in fn.params]
        lines = [f"def {self.fn_name(fn.name)}({', '.join(params)}):", *self.block(fn.body, 1)]
        if fn.closure is None:
            return "\n".join(lines) + "\n"
        cells = list(fn.closure)
        maker = f"make_{self.fn_name(fn.name)}"
        inner = ["    " + line for line in lines]
        text = (
            f"def {maker}({', '.join(cells)}):\n"
            + "\n".join(inner)
            + f"\n    return {self.fn_name(fn.name)}\n"
        )
        args = ", ".join(_num_text(fn.closure[c]) for c in cells)
        return text + f"\n\n{self.fn_name(fn.name)} = {maker}({args})\n"


def render_module(prog: Program) -> str:
    parts = [HEADER]
    if prog.consts:
        parts.append("".join(f"{k} = {_num_text(v)}\n" for k, v in prog.consts.items()) + "\n")
    if "globals" in prog.meta:  # module-level arrays
        parts.append(prog.meta["globals"] + "\n")
    for probe in (False, True):
        if probe:
            parts.append(f"\n{PROBE_MARK} (not traced: record decisions and margins)\n")
        r = Renderer(probe) if probe or not prog.meta.get("minimal") else MinimalRenderer(probe)
        for fn in [*prog.helpers, prog.main]:
            parts.append("\n" + r.func(fn) + "\n")
    return "".join(parts)


# --- the probe runtime ------------------------------------------------------------------------

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _key(value: Any) -> Any:
    arr = np.asarray(value)
    return arr.item() if arr.ndim == 0 else tuple(arr.ravel().tolist())


def _gap(a: Any, b: Any) -> float:
    return float(np.min(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


class Probe:
    """Records branch decisions and kink margins while a `_probe_*` function runs; replays
    `stop_gradient` values so that finite differences see them as constants."""

    def __init__(self) -> None:
        self.start()

    def start(self, stops: list[Any] | None = None) -> None:
        self.decisions: list[Any] = []
        self.margin = math.inf
        self.replay = stops is not None
        self.stops: list[Any] = list(stops) if stops is not None else []
        self.position = 0

    def _record(self, decision: Any, margin: float) -> None:
        self.decisions.append(decision)
        self.margin = min(self.margin, margin)

    def cmp(self, a: Any, b: Any, op: str) -> Any:
        result = _OPS[op](a, b)
        self._record(("cmp", op, _key(result)), _gap(a, b))
        return result

    def at(self, e: Any) -> Any:  # abs, sign, heaviside, cbrt: the kink at 0
        self._record(("at", _key(np.sign(e))), _gap(e, 0.0))
        return e

    def near_int(self, e: Any) -> Any:  # floor, ceil: jumps at integers
        self._record(("int", _key(np.floor(e))), _gap(e, np.round(e)))
        return e

    def near_half(self, e: Any) -> Any:  # round: jumps at half-integers
        self._record(("half", _key(np.round(e))), _gap(e, np.floor(e) + 0.5))
        return e

    def ties(self, *args: Any) -> tuple[Any, ...]:  # max, min, clip: ties of any two arguments
        for i in range(len(args)):
            for j in range(i + 1, len(args)):
                self._record(("tie", _key(np.greater(args[i], args[j]))), _gap(args[i], args[j]))
        return args

    def extreme(self, e: Any) -> Any:  # np.max / np.min over an array: ties of elements
        flat = np.sort(np.ravel(np.asarray(e, dtype=np.float64)))
        self._record(
            ("ext", int(np.argmax(e)), int(np.argmin(e))), float(np.min(np.diff(flat), initial=np.inf))
        )
        return e

    def quot(self, a: Any, b: Any) -> tuple[Any, Any]:  # np.mod, np.fmod: jumps at a/b integers
        k = np.round(np.asarray(a) / np.asarray(b))
        self._record(("q", _key(np.floor(np.asarray(a) / np.asarray(b)))), _gap(a, k * b))
        return a, b

    def signs(self, a: Any, b: Any) -> tuple[Any, Any]:  # np.copysign: |a| kinks, sign(b) jumps
        return self.at(a), self.at(b)

    def q(self, a: Any, b: Any, op: str) -> Any:  # // and %: jumps where a/b is an integer
        k = np.round(np.asarray(a) / np.asarray(b))
        self._record(("q", _key(np.floor(np.asarray(a) / np.asarray(b)))), _gap(a, k * b))
        return a // b if op == "//" else a % b

    def stop(self, e: Any) -> Any:  # stop_gradient / no_grad: recorded, then replayed
        if not self.replay:
            self.stops.append(np.copy(e) if isinstance(e, np.ndarray) else e)
            return e
        value = self.stops[self.position]
        self.position += 1
        return value


PROBE = Probe()


# --- bounds -----------------------------------------------------------------------------------


def bound(e: Any, env: dict[str, float], helpers: dict[str, float]) -> float:
    """An upper bound of |e| given bounds of the variables (a generator-side estimate)."""
    tag = e[0]
    if tag == "v":
        return env[e[1]]
    if tag == "c":
        return abs(float(e[1]))
    if tag == "neg":
        return bound(e[1], env, helpers)
    if tag == "bin":
        _, op, a, b = e
        ma, mb = bound(a, env, helpers), bound(b, env, helpers)
        if op in ("+", "-"):
            return ma + mb
        if op == "*":
            return ma * mb
        if op == "/":
            return ma * 5.0
        if op == "//":
            return ma * 5.0 + 1
        if op == "%":
            return mb
        if op == "**":
            if b[0] == "c" and isinstance(b[1], int) and b[1] > 0:
                return ma ** b[1]
            return max(ma, 5.0) ** mb
        raise AssertionError(op)
    if tag == "call":
        _, key, _spell, args = e
        kinds = SPECS[key].args
        ms = [0.0 if k == "cond" else bound(a, env, helpers) for k, a in zip(kinds + ("any",) * 3, args)]
        if key == "numpy.maximum" or key == "numpy.minimum":
            return max(ms)
        return float(SPECS[key].bound(ms))
    if tag == "ifexp":
        return max(bound(e[2], env, helpers), bound(e[3], env, helpers))
    if tag == "h":
        return helpers[e[1]]
    if tag == "red":
        m = bound(e[2], env, helpers)
        return m**4 if e[1] == "prod" else m * 4 if e[1] == "sum" else m
    if tag == "dot":
        return 4 * bound(e[2], env, helpers) * bound(e[3], env, helpers)
    if tag == "idx":
        return bound(e[1], env, helpers)
    if tag == "gsum":
        _, var, items, body = e
        inner = {**env, var: max(bound(i, env, helpers) for i in items)}
        return len(items) * bound(body, inner, helpers)
    if tag == "len":
        return 4.0
    raise AssertionError(e)


# --- the generator ----------------------------------------------------------------------------

KIND_DOMAINS = {  # where an argument of each kind may be squashed when no rule says
    "any": (-2.0, 2.0),
    "small": (-2.0, 2.0),
    "pos": (0.2, 2.0),
    "nonzero": (0.2, 2.0),
    "above1": (1.0, 2.0),
    "unit": (-0.9, 0.9),
}
FAMILIES = ("straight", "branches", "loops", "tuples", "arrays")
SQUASHERS = ("np.tanh", "np.sin", "np.cos")
BOUNDED = ("np.tanh", "np.sin", "np.arctan", "np.cos")


def C(x: Any) -> tuple[str, Any]:
    return ("c", x)


def call(key: str, spell: str, *args: Any) -> tuple[Any, ...]:
    return ("call", key, spell, tuple(args))


def np_call(name: str, *args: Any) -> tuple[Any, ...]:
    key = next(r.names[0] for r in symgrad.RULES if f"numpy.{name}" in r.names)
    return call(key, f"np.{name}", *args)


class Gen:
    """Draws one program. Variables carry a bound and a shape (() or an array shape)."""

    def __init__(self, draw: Any, family: str) -> None:
        self.draw = draw
        self.family = family
        self.arrays = family == "arrays"
        # "elementwise": expressions over arrays of any broadcastable shapes, as if scalars
        # (NumPy spellings only, no `and`/`or`/`not` or chained comparisons)
        self.array_safe = self.arrays or family == "elementwise"
        self.helpers: list[Func] = []
        self.helper_bounds: dict[str, float] = {}
        self.consts: dict[str, float] = {}
        self.uses_stop = False
        self.counter = 0
        self.in_loop = False
        self.loopvars: set[str] = set()
        # the loops family's loops: how deep the statement being drawn is nested in loops,
        # which jumps its innermost loop allows (`continue` only where it cannot skip a `while`
        # counter), whether that loop is long (kept as a loop by default), the loop forms drawn
        # (Program.meta["loop_forms"]) and the names loops update (fed into the output)
        self.loop_depth = 0
        self.jump_kinds: tuple[str, ...] = ()
        self.long_loop = False
        self.in_while = False
        self.force_long = False  # programs(long_loop=True): f starts with a long loop
        self.features: set[str] = set()
        self.loop_results: list[str] = []
        self.allow_stop = family in ("loops", "straight", "arrays", "elementwise")
        self.param_names: set[str] = set()
        self.readonly = {"c", "X"}  # closure cells and data matrices are never assigned

    # small helpers
    def pick(self, options: Any) -> Any:
        return self.draw(st.sampled_from(list(options)))

    def chance(self, p: float) -> bool:
        return self.draw(st.integers(0, 99)) < int(100 * p)

    def fresh(self, prefix: str = "t") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def b(self, e: Any, env: dict[str, Any]) -> float:
        return bound(e, self.bounds(env), self.helper_bounds)

    def bounds(self, env: dict[str, Any]) -> dict[str, float]:
        return {**{k: abs(v) for k, v in self.consts.items()}, **{k: v[0] for k, v in env.items()}}

    # expressions
    def leaf(self, env: dict[str, Any], shape: tuple[int, ...]) -> Any:
        names = [k for k, (_, s) in env.items() if s == shape]
        if shape == ():
            if self.consts and self.chance(0.1):
                return ("v", self.pick(self.consts))
            if not names or self.chance(0.12):
                value = self.pick(CONSTANTS)
                return C(-value if self.chance(0.2) else value)
        if not names:  # an array shape with no variable of it
            return None
        return ("v", self.pick(sorted(names)))

    def expr(self, env: dict[str, Any], depth: int, shape: tuple[int, ...] = ()) -> Any:
        e = self._expr(env, depth, shape)
        if self.b(e, env) > CAP:
            e = np_call(self.pick(BOUNDED)[3:], e)
        return e

    def _expr(self, env: dict[str, Any], depth: int, shape: tuple[int, ...]) -> Any:
        if depth <= 0 or self.chance(0.2):
            e = self.leaf(env, shape)
            if e is not None:
                return e
            if "X" in env and shape == (env["X"][1][0],):
                return self.matvec(env, depth)
        menu = ["rule"] * 5 + ["bin"] * 4 + ["neg"]
        if self.family in ("branches", "tuples", "loops") and not self.arrays:
            menu += ["ifexp"]
        if self.family in ("tuples", "loops") and not self.arrays and depth > 1:
            menu += ["gsum"]
        if self.helpers and not self.arrays:
            menu += ["helper"] * 2
        if self.arrays and shape == ():
            menu += ["reduce"] * 4 + ["dot"] * 2 + ["idx"]
        if self.arrays and "X" in env and shape == (env["X"][1][0],):
            if self.chance(0.5):
                return self.matvec(env, depth)
        what = self.pick(menu)
        if what == "rule":
            return self.rule(env, depth, shape)
        if what == "bin":
            return self.binop(env, depth, shape)
        if what == "neg":
            return ("neg", self.expr(env, depth - 1, shape))
        if what == "ifexp":
            return ("ifexp", self.cond(env, depth - 1), self.expr(env, depth - 1), self.expr(env, depth - 1))
        if what == "helper":
            return self.helper_call(env, depth)
        if what == "gsum":  # a generator-expression sum over a tuple of traced values
            items = tuple(self.expr(env, 1) for _ in range(self.draw(st.integers(2, 3))))
            var = self.fresh("g")
            inner = {**env, var: (max(self.b(i, env) for i in items), ())}
            return ("gsum", var, items, self.expr(inner, depth - 1))
        if what == "reduce":
            vshape = self.pick(self.vector_shapes(env))
            kind = self.pick(["sum", "sum", "mean", "mean", "max", "min", "prod"])
            if kind == "prod":
                return ("red", kind, self.arg("pos", env, depth - 1, vshape))
            return ("red", kind, self.expr(env, depth - 1, vshape))
        if what == "dot":
            vshape = self.pick(self.vector_shapes(env))
            how = self.pick(["@", "np.dot"])
            return ("dot", how, self.expr(env, depth - 1, vshape), self.expr(env, depth - 1, vshape))
        if what == "idx":
            name = self.pick(sorted(k for k, (_, s) in env.items() if len(s) == 1))
            n = env[name][1][0]
            usable = [v for v in self.loopvars if v in env and env[v][1] == () and env[v][0] <= n]
            if usable and self.chance(0.6):
                if usable:
                    return ("idx", ("v", name), ("v", self.pick(sorted(usable))))
            return ("idx", ("v", name), C(self.draw(st.integers(-n, n - 1))))
        raise AssertionError(what)

    def matvec(self, env: dict[str, Any], depth: int) -> Any:
        n = env["X"][1][1]
        inner = self.expr(env, depth - 1, (n,))
        if self.b(inner, env) > 3.0:
            inner = self.squash(inner, (-2.0, 2.0))
        return ("dot", "@", ("v", "X"), inner)

    def vector_shapes(self, env: dict[str, Any]) -> list[tuple[int, ...]]:
        shapes = {s for _, s in env.values() if len(s) == 1}
        if "X" in env:
            shapes.add((env["X"][1][0],))
        return sorted(shapes)

    def rule(self, env: dict[str, Any], depth: int, shape: tuple[int, ...]) -> Any:
        keys = [k for k in SPECS if spellings(k, self.array_safe)]
        if not self.allow_stop:
            keys.remove("symgrad.stop_gradient")
        key = self.pick(keys)
        spell = self.pick(spellings(key, self.array_safe))
        spec, rule = SPECS[key], RULE_BY_KEY[key]
        if key == "symgrad.stop_gradient":
            self.uses_stop = True
        args = []
        kinds = list(spec.args)
        if spell in ("max", "min") and self.chance(0.3):
            kinds.append("any")  # builtins max/min take any number of arguments
        for k, kind in enumerate(kinds):
            if kind == "cond":
                args.append(self.cond(env, depth - 1, shape))
            elif kind.startswith("const:"):
                args.append(C(float(self.pick(kind[6:].split(",")))))
            elif kind in ("lo", "hi"):
                if self.chance(0.7):
                    value = self.pick([0.25, 0.5, 1.0, 1.5]) * (-1 if kind == "lo" else 1)
                    args.append(C(value))
                else:  # traced bounds, in either order
                    args.append(self.expr(env, depth - 1, shape if self.chance(0.5) else ()))
            else:
                arg_shape = shape if (k == 0 or self.chance(0.6)) else ()
                args.append(self.arg(kind, env, depth - 1, arg_shape, rule.domain))
        if spell == "math.log" and self.chance(0.4):
            args.append(C(self.pick([2.0, 3.0, 10.0, 0.5])))
        return ("call", key, spell, tuple(args))

    def shape_of(self, e: Any, env: dict[str, Any]) -> tuple[int, ...]:
        """The shape of an expression (arrays mode): the broadcast of its parts'."""
        tag = e[0]
        if tag == "v":
            return env[e[1]][1] if e[1] in env else ()
        if tag in ("c", "red", "len", "idx", "h", "gsum"):
            return ()
        if tag == "dot":
            return (env["X"][1][0],) if e[2] == ("v", "X") else ()
        if tag == "neg":
            return self.shape_of(e[1], env)
        if tag == "bin":
            parts = [e[2], e[3]]
        elif tag == "call":
            parts = list(e[3])
        elif tag == "cmp":
            parts = list(e[2])
        elif tag == "ifexp":
            parts = [e[2], e[3]]
        else:  # and / or / not
            parts = list(e[1:])
        return max((self.shape_of(p, env) for p in parts), key=len, default=())

    def squash(self, e: Any, domain: tuple[float, float]) -> Any:
        """e mapped into the open interval `domain`: mid + half * S(e), S in [-1, 1]."""
        lo, hi = domain
        mid, half = round((lo + hi) / 2, 4), round(0.45 * (hi - lo), 4)
        s = np_call(self.pick(SQUASHERS)[3:], e)
        scaled = ("bin", "*", C(half), s)
        return scaled if mid == 0 else ("bin", "+", C(mid), scaled)

    def arg(
        self,
        kind: str,
        env: dict[str, Any],
        depth: int,
        shape: tuple[int, ...],
        domain: tuple[float, float] | None = None,
    ) -> Any:
        """An argument of a given kind: an expression, wrapped to stay in its domain."""
        e = self.expr(env, depth, shape)
        m = self.b(e, env)
        if self.chance(0.25):  # squashed into the rule's own domain (Rule.domain)
            return self.squash(e, domain or KIND_DOMAINS[kind])
        if kind == "any":
            return e
        if kind == "small":
            return e if m <= 3.0 else self.squash(e, (-2.0, 2.0))
        if kind == "pos":
            return self.positive(e, m, 0.2)
        if kind == "above1":
            return self.positive(e, m, 1.2)
        if kind == "nonzero":
            p = self.positive(e, m, 0.2)
            return ("neg", p) if self.chance(0.4) else p
        if kind == "unit":
            how = self.pick(["tanh", "sin", "frac"])
            if how == "frac" and m <= 100:  # |e / (1 + e*e)| <= 1/2
                return ("bin", "/", e, ("bin", "+", C(1.0), ("bin", "*", e, e)))
            s = np_call("tanh" if how == "frac" else how, e)
            return ("bin", "*", C(self.pick([0.5, 0.9])), s)
        raise AssertionError(kind)

    def positive(self, e: Any, m: float, floor: float) -> Any:
        """A wrapper of e that is >= floor (floor 0.2 or 1.2) and bounded."""
        how = self.pick(["square", "tanh", "abs", "exp", "hypot"])
        base = self.pick([0.5, 1.0, 1.5]) + (1.0 if floor > 1 else 0.0)
        if how == "square" and m <= 100:
            return ("bin", "+", C(base), ("bin", "*", e, e))
        if how == "abs":
            return ("bin", "+", C(base), np_call("abs", e))
        if how == "exp":
            inner = np_call("exp", np_call("tanh", e))  # in [0.37, 2.72]
            return ("bin", "+", C(1.0), inner) if floor > 1 else inner
        if how == "hypot" and floor < 1:
            return np_call("hypot", e if m <= 100 else np_call("tanh", e), C(base))
        return ("bin", "+", C(base + 1.0), np_call("tanh", e))

    def binop(self, env: dict[str, Any], depth: int, shape: tuple[int, ...]) -> Any:
        op = self.pick(["+", "+", "-", "-", "*", "*", "/", "/", "**", "**", "**", "//", "%"])
        ashape, bshape = (
            (shape, shape if self.chance(0.6) else ())
            if self.chance(0.5)
            else (
                shape if self.chance(0.6) else (),
                shape,
            )
        )
        if shape != () and ashape == () and bshape == ():
            ashape = shape
        if op in ("+", "-", "*"):
            a, b = self.expr(env, depth - 1, ashape), self.expr(env, depth - 1, bshape)
            if op == "*" and self.b(a, env) * self.b(b, env) > CAP:
                op = "+"
            return ("bin", op, a, b)
        if op in ("/", "//", "%"):
            return (
                "bin",
                op,
                self.expr(env, depth - 1, ashape),
                self.arg("pos", env, depth - 1, bshape, (0.2, 2.0)),
            )
        # powers: the rule `a ** b` of Tangent ignored b; traced exponents matter
        form = self.pick(["int", "int", "negint", "float", "traced", "traced", "constbase"])
        if form == "int":
            a = self.expr(env, depth - 1, shape)
            if self.b(a, env) > 10:
                a = self.squash(a, (-2.0, 2.0))
            return ("bin", "**", a, C(self.pick([2, 3, 2.0])))
        if form == "negint":
            return ("bin", "**", self.arg("pos", env, depth - 1, shape), C(self.pick([-1, -2])))
        if form == "float":
            return ("bin", "**", self.arg("pos", env, depth - 1, shape), C(self.pick([0.5, 1.5, 2.5, -0.5])))
        base = (
            self.arg("pos", env, depth - 1, ashape) if form == "traced" else C(self.pick([2.0, 0.5, 1.5, 3]))
        )
        if form == "traced" and self.b(base, env) > 10:
            base = self.squash(base, (0.2, 2.0))
        return ("bin", "**", base, self.arg("small", env, depth - 1, bshape if form == "traced" else shape))

    def cond(self, env: dict[str, Any], depth: int, shape: tuple[int, ...] = ()) -> Any:
        if shape == () and not self.array_safe and depth > 0 and self.chance(0.25):
            how = self.pick(["and", "or", "not"])
            if how == "not":
                return ("not", self.cond(env, depth - 1))
            return (how, self.cond(env, depth - 1), self.cond(env, depth - 1))
        ops = [self.pick(["<", "<=", ">", ">=", "<", ">", "==", "!="])]
        operands = [self.expr(env, max(depth - 1, 0), shape), self.expr(env, max(depth - 1, 0), ())]
        if shape == () and not self.array_safe and self.chance(0.15):  # chained: a < b < c
            ops.append(self.pick(["<", "<="]) if ops[0] in ("<", "<=") else self.pick([">", ">="]))
            operands.append(self.expr(env, 0))
        return ("cmp", tuple(ops), tuple(operands))

    def helper_call(self, env: dict[str, Any], depth: int) -> Any:
        fn = self.pick(self.helpers)
        required = [p for p in fn.params if p not in fn.defaults]
        optional = [p for p in fn.params if p in fn.defaults]

        def helper_arg() -> Any:
            e = self.expr(env, depth - 1)
            return e if self.b(e, env) <= HELPER_BOUND else self.squash(e, (-2.0, 2.0))

        args = [helper_arg() for _ in required]
        kwargs = []
        for p in optional:
            if not self.chance(0.5):
                continue  # the default value
            if self.chance(0.5) and len(args) == len(required) and not kwargs:
                args.append(helper_arg())
            else:
                kwargs.append((p, helper_arg()))
        return ("h", fn.name, tuple(args), tuple(kwargs))

    # statements
    def block(
        self, env: dict[str, Any], depth: int, n: int, allow_return: bool
    ) -> tuple[list[Any], dict[str, Any], bool]:
        """Statements; returns (body, env after it, whether every path returned)."""
        body: list[Any] = []
        env = dict(env)
        for _ in range(n):
            menu = ["assign"] * 4 + ["aug"] * 2 + ["unpack"]
            if self.family in ("branches", "tuples", "loops") and depth > 0:
                menu += ["if"] * 3
            if self.family in ("loops", "tuples", "arrays") and depth > 0 and not self.in_loop:
                menu += ["for"] * 3
            if self.family == "loops" and depth > 0 and self.loop_depth < 2:
                menu += ["for"] if self.in_loop else []  # nested loops
                menu += [] if self.long_loop else ["while"] * 2
            if self.family == "loops" and self.jump_kinds:
                menu += ["jump"] * 2
            if self.family == "loops" and not self.in_loop:
                menu += ["nograd"]
            what = self.pick(menu)
            if self.force_long:
                what = "for"
            if what == "assign":
                body.append(self.assign(env, depth))
            elif what == "aug":
                body.append(self.augment(env, depth))
            elif what == "unpack":
                names = [self.target(env) for _ in range(2)]
                if names[0] == names[1]:
                    names[1] = self.fresh()
                exprs = [self.expr(env, depth) for _ in names]
                exprs = [self.loop_safe(nm, e, env) for nm, e in zip(names, exprs)]
                self.define(env, names, exprs)
                body.append(("unpack", tuple(names), tuple(exprs)))
            elif what == "if":
                stmt, env, returned = self.if_stmt(env, depth, allow_return)
                body.append(stmt)
                if returned:
                    return body, env, True
            elif what == "for":
                body.append(self.for_stmt(env, depth))
            elif what == "while":
                body += self.while_stmt(env, depth)
            elif what == "jump":
                body.append(self.jump_stmt(env, depth))
            elif what == "nograd":
                stmts = []
                for _ in range(self.draw(st.integers(1, 2))):
                    name = self.fresh("c")
                    e = self.expr(env, depth)
                    self.define(env, [name], [e])
                    stmts.append(("assign", name, e))
                self.uses_stop = True
                body.append(("nograd", stmts))
        return body, env, False

    def target(self, env: dict[str, Any]) -> str:
        existing = [k for k, (_, s) in env.items() if s == () and k not in self.loopvars | self.readonly]
        if self.arrays:
            existing = [k for k in existing if k.startswith("t")]
        if existing and self.chance(0.4):
            return str(self.pick(sorted(existing)))
        return self.fresh()

    def define(self, env: dict[str, Any], names: list[str], exprs: list[Any]) -> None:
        new = [(self.b(e, env), self.shape_of(e, env) if self.arrays else ()) for e in exprs]
        for name, (m, s) in zip(names, new):
            if self.in_loop and name in env:
                m = max(m, env[name][0])  # loop-carried: the bound assumed in the body
            env[name] = (m, s)

    def loop_safe(self, name: str, e: Any, env: dict[str, Any]) -> Any:
        """In a loop body, a loop-carried variable may only be updated contractively."""
        if not (self.in_loop and name in env):
            return e
        m = self.b(e, env)
        if m > 1.0:
            e = np_call(self.pick(BOUNDED)[3:], e)
        if self.chance(0.5):
            return ("bin", "+", ("bin", "*", C(self.pick([0.5, 0.75, -0.5])), ("v", name)), e)
        return e

    def assign(self, env: dict[str, Any], depth: int) -> Any:
        name = self.target(env)
        shape = ()
        if self.arrays and self.chance(0.5) and name not in env:
            shape = self.pick(self.vector_shapes(env))
        e = self.loop_safe(name, self.expr(env, depth, shape), env)
        self.define(env, [name], [e])
        return ("assign", name, e)

    def augment(self, env: dict[str, Any], depth: int) -> Any:
        names = [k for k, (_, s) in env.items() if s == () and k not in self.loopvars | self.readonly]
        if self.arrays:
            names = [k for k in names if k.startswith("t")]
        if not names:
            return self.assign(env, depth)
        name = self.pick(sorted(names))
        op = self.pick(["+", "-", "*"] if self.in_loop else ["+", "-", "*", "/"])
        e = self.expr(env, depth)
        if op == "/":
            e = self.arg("pos", env, depth, ())
        if self.in_loop or op == "*":
            if self.b(e, env) > 1.0:
                e = np_call(self.pick(BOUNDED)[3:], e)
            if op == "*" and self.in_loop:
                e = ("bin", "*", C(0.5), e)
            elif self.long_loop:  # 64 steps or more: Euler-like, |change| <= 0.05 per step
                e = ("bin", "*", C(self.pick([0.05, 0.01])), e)
        new = bound(("bin", op, ("v", name), e), self.bounds(env), self.helper_bounds)
        if self.in_loop:
            new = max(env[name][0], 8.0)
        env[name] = (new, ())
        return ("aug", name, op, e)

    def if_stmt(
        self, env: dict[str, Any], depth: int, allow_return: bool
    ) -> tuple[Any, dict[str, Any], bool]:
        branches = []
        envs = []
        all_return = True
        n_branches = self.draw(st.integers(1, 3))
        for _ in range(n_branches):
            cond = self.cond(env, self.draw(st.integers(1, 2)))
            body, benv, ret = self.branch(env, depth, allow_return)
            branches.append((cond, body))
            if not ret:
                envs.append(benv)
            all_return = all_return and ret
        orelse = None
        if self.chance(0.7):
            orelse, benv, ret = self.branch(env, depth, allow_return)
            if not ret:
                envs.append(benv)
            all_return = all_return and ret
        else:
            envs.append(env)
            all_return = False
        if all_return:
            return ("if", tuple(branches), orelse), env, True
        merged = {}
        for k in envs[0]:
            if all(k in e for e in envs):
                merged[k] = (max(e[k][0] for e in envs), envs[0][k][1])
        return ("if", tuple(branches), orelse), merged, False

    def branch(
        self, env: dict[str, Any], depth: int, allow_return: bool
    ) -> tuple[list[Any], dict[str, Any], bool]:
        body, benv, ret = self.block(env, depth - 1, self.draw(st.integers(1, 2)), allow_return)
        if ret:
            return body, benv, True
        if allow_return and self.chance(0.2):  # an early return
            e = self.expr(benv, 2)
            self.return_bounds.append(self.b(e, benv))
            body.append(("return", (e,)))
            return body, benv, True
        return body, benv, False

    def for_stmt(self, env: dict[str, Any], depth: int) -> Any:
        var = self.pick(["i", "j", "k"])
        if var in env:
            var = self.fresh("i")
        how = self.pick(["range1", "range2", "range3", "tuple"])
        vec = [s for _, s in env.values() if len(s) == 1]
        long = self.force_long or (
            self.family == "loops"
            and not self.in_loop
            and depth >= 2  # in f, not in a helper (called several times)
            and "long" not in self.features
            and self.chance(0.1)
        )
        self.force_long = False
        if self.arrays and vec and self.chance(0.5):
            name = self.pick(sorted(k for k, (_, s) in env.items() if len(s) == 1 and k in self.param_names))
            items: Any = ("range", (("len", name),))
            var_bound: tuple[float, tuple[int, ...]] = (float(env[name][1][0]), ())
        elif how == "tuple" and not self.arrays and not long:
            exprs = tuple(self.expr(env, 1) for _ in range(self.draw(st.integers(2, 3))))
            items = ("tuple", exprs)
            var_bound = (max(self.b(e, env) for e in exprs), ())
        else:
            # a long loop is kept as a loop (looptrace.KEEP_FROM iterations or more); in one,
            # a nested loop is short
            k = self.pick(LONG_TRIPS) if long else self.draw(st.integers(1, 2 if self.long_loop else 4))
            if how == "range2":
                start = self.draw(st.integers(0, 2))
                items = ("range", (C(start), C(start + k)))
                var_bound = (float(start + k), ())
            elif how == "range3" and not long:
                items = ("range", (C(0), C(2 * k), C(2)))
                var_bound = (float(2 * k), ())
            else:
                items = ("range", (C(k),))
                var_bound = (float(k), ())
        inner = self.loop_env(env)
        inner[var] = var_bound
        self.loopvars.add(var)
        if long:
            self.features.add("long")
        body, benv = self.loop_body(inner, depth, ("break", "continue"), long)
        self.after_loop(env, benv, body, keep_new=not _jumps(body), skip={var})
        return ("for", var, items, body)

    def loop_env(self, env: dict[str, Any]) -> dict[str, Any]:
        """The bounds a loop's body assumes: a carried value may have grown in earlier iterations."""
        inner = dict(env)
        for name in env:
            if name not in self.loopvars and env[name][1] == ():
                inner[name] = (max(env[name][0], 8.0) + 8.0, env[name][1])
        return inner

    def loop_body(
        self,
        inner: dict[str, Any],
        depth: int,
        jumps: tuple[str, ...],
        long: bool = False,
        is_while: bool = False,
    ) -> tuple[list[Any], dict[str, Any]]:
        """A loop's body (1-3 statements, 1-2 in a long loop), drawn inside the loop."""
        saved = (self.in_loop, self.jump_kinds, self.long_loop, self.in_while)
        if self.in_loop:
            self.features.add("nested")
        if self.in_while or self.long_loop:
            # symgrad refuses a `while` on a traced condition whose body holds a loop with
            # its own `break` or `continue`, and unrolls such a long `for` (test_loops.py,
            # xfail: slow to trace and to differentiate twice): none there
            jumps = ()
        self.in_loop, self.long_loop = True, self.long_loop or long
        self.in_while = self.in_while or is_while
        self.jump_kinds = jumps if self.family == "loops" else ()
        self.loop_depth += 1
        n = self.draw(st.integers(1, 2 if self.long_loop else 3))
        try:
            body, benv, _ = self.block(inner, depth - 1, n, allow_return=False)
        finally:
            self.in_loop, self.jump_kinds, self.long_loop, self.in_while = saved
            self.loop_depth -= 1
        return body, benv

    def carried_test(self, env: dict[str, Any], body: list[Any]) -> Any:
        """A condition on a value the loop's body updates (so that it decides the trip count),
        sometimes any condition."""
        names = sorted(n for n in _assigned(body) if n in env and env[n][1] == () and n not in self.loopvars)
        if not names or self.chance(0.25):
            return self.cond(env, self.draw(st.integers(1, 2)))
        op = self.pick(["<", "<=", ">", ">=", "<", ">", "!="])
        return _cmp(_v(self.pick(names)), op, self.expr(env, 1))

    def after_loop(
        self, env: dict[str, Any], benv: dict[str, Any], body: list[Any], keep_new: bool, skip: set[str]
    ) -> None:
        """The bounds after a loop. A name the body defines is defined after the loop only if
        every iteration runs the whole body (a `for` without jumps: it runs at least once)."""
        for name, value in benv.items():
            if name in skip or not (keep_new or name in env):
                continue
            if name in env:  # a `while` may run no iteration
                value = (max(value[0], env[name][0]), value[1])
            env[name] = value
        if self.family == "loops":
            updated = [n for n in _assigned(body) if n in env and n not in self.loopvars and env[n][1] == ()]
            self.loop_results += updated

    def while_stmt(self, env: dict[str, Any], depth: int) -> list[Any]:
        """`k = 0` and a `while` loop that stops on a traced condition or at k == cap:
        `while <traced> and k < cap`, a convergent `while abs(d) > tol and k < cap` (d shrinks
        by a factor below 1 each step), `while True: ... if <traced> or k >= cap: break`, or a
        counted `while k < cap` with `break` under a traced condition in its body. The counter
        goes up first (then `continue` may skip the rest) or last (then only `break`)."""
        counter = self.fresh("k")
        cap = self.draw(st.integers(1, 6))
        # a `while` in a `while` has no jumps (see loop_body): it stops on its condition
        forms = (
            ["traced", "converge"] if self.in_while else ["traced", "traced", "converge", "true", "counted"]
        )
        form = self.pick(forms)
        self.features.add("while")
        self.features.add(f"while {form}")
        pre: list[Any] = [("assign", counter, C(0))]
        env[counter] = (float(cap), ())
        self.loopvars.add(counter)
        inner = self.loop_env(env)
        first = self.chance(0.5)
        head: list[Any] = [("aug", counter, "+", C(1))] if first else []
        tail: list[Any] = [] if first else [("aug", counter, "+", C(1))]
        # the counter's tests are not recorded: an int, no finite-difference step changes them
        # (recorded, their margin would be 0 where the loop stops at its cap)
        below_cap = ("guard", "<", _v(counter), C(cap))
        if form == "converge":
            d = self.fresh("d")
            start = self.squash(self.expr(env, 1), (-2.0, 2.0))
            pre.append(("assign", d, start))
            env[d] = inner[d] = (2.0, ())
            self.readonly.add(d)  # only the loop's own update changes d
            factor: Any = C(self.pick([0.5, -0.5, 0.75, 0.25]))
            if self.chance(0.5):
                factor = (
                    "bin",
                    "*",
                    C(0.75),
                    np_call(self.pick(["tanh", "sin", "cos"]), self.expr(inner, 1)),
                )
            head.append(("assign", d, ("bin", "*", factor, _v(d))))
            spell = self.pick(spellings("numpy.abs", False))
            test: Any = _cmp(call("numpy.abs", spell, _v(d)), ">", C(self.pick([0.2, 0.1, 0.05, 0.02])))
        # `continue` skips what follows it: the counter's step, or the stop test of `while True`
        jumps = ("break", "continue") if first and form != "true" else ("break",)
        body, benv = self.loop_body(inner, depth, jumps, is_while=True)
        if form == "true":  # the stop test after the body, on what it computed
            stop = ("or", self.carried_test(benv, body), ("guard", ">=", _v(counter), C(cap)))
            body = [*body, *tail, ("if", ((stop, [("break",)]),), None)]
            tail, cond = [], ("true",)
            self.features.add("break")
        elif form == "counted":
            body = [*body, self.jump_stmt(benv, 1, "break", self.carried_test(benv, body))]
            cond = below_cap
        else:
            if form == "traced":  # on the values before the loop, then those of each iteration
                test = self.carried_test(inner, body)
            cond = ("and", test, below_cap) if self.chance(0.5) else ("and", below_cap, test)
        body = [*head, *body, *tail]
        self.after_loop(env, benv, body, keep_new=False, skip={counter})
        return [*pre, ("while", cond, body)]

    def jump_stmt(self, env: dict[str, Any], depth: int, kind: str | None = None, cond: Any = None) -> Any:
        """`if <traced>: [assignment]; break` (or `continue`), sometimes with an `else:`; the
        names either branch defines are not defined after it (the jumping one leaves)."""
        kind = kind or self.pick(self.jump_kinds)
        self.features.add(kind)
        cond = cond or self.cond(env, self.draw(st.integers(1, 2)))
        scratch = dict(env)
        jumping = [self.assign(scratch, depth)] if self.chance(0.4) else []
        orelse = None
        if self.chance(0.3):
            orelse, other, _ = self.block(env, depth - 1, 1, allow_return=False)
            scratch = {k: (max(v[0], other.get(k, v)[0]), v[1]) for k, v in scratch.items()}
        for name in env:
            env[name] = scratch[name]
        return ("if", ((cond, [*jumping, (kind,)]),), orelse)

    def function(
        self,
        name: str,
        params: dict[str, Any],
        defaults: dict[str, float],
        n_outputs: int,
        depth: int,
        n: int,
    ) -> tuple[Func, float]:
        self.loopvars = set()
        self.loop_results = []
        self.return_bounds: list[float] = []
        body, env, returned = self.block(dict(params), depth, n, allow_return=n_outputs == 1)
        if not returned:
            outs = tuple(self.expr(env, 3) for _ in range(n_outputs))
            results = sorted({r for r in self.loop_results if r in env and env[r][1] == ()})
            if results and self.chance(0.8):  # what a loop computed reaches the output
                outs = (("bin", "+", outs[0], _v(self.pick(results))), *outs[1:])
            if self.arrays:  # a scalar output that reduces an array (not an elementwise program)
                vshape = self.pick(self.vector_shapes(env))
                red = ("red", self.pick(["sum", "mean"]), self.expr(env, 2, vshape))
                outs = tuple(
                    ("bin", self.pick(["+", "*"]), red, o)
                    if self.shape_of(o, env) == ()
                    else ("red", "sum", o)
                    for o in outs
                )
            self.return_bounds += [self.b(o, env) for o in outs]
            body.append(("return", outs))
        return Func(name, tuple(params), defaults, body), max(self.return_bounds)


@st.composite
def programs(draw: Any, family: str, long_loop: bool = False) -> Program:
    """A random program of one family: "straight" (assignments and calls of every rule),
    "branches" (if/elif/else, conditional expressions, early returns, helpers), "loops"
    (for loops, nested too, long ones symgrad keeps as loops, `while` loops that stop on traced
    values, `break` and `continue` under traced conditions; helpers, closures, module
    constants, no_grad), "tuples" (several
    outputs), "arrays" (reductions over small arrays)."""
    g = Gen(draw, family)
    n_params = draw(st.integers(1, 3))
    names = ("x", "y", "z")[:n_params]
    if family in ("loops", "branches") and draw(st.booleans()):
        g.consts = {
            f"K{i}": draw(st.sampled_from([0.75, 1.25, -0.5, 2.0])) for i in range(draw(st.integers(1, 2)))
        }
    g.param_names = set(names)
    if family in ("branches", "loops", "tuples"):
        for i in range(draw(st.integers(0, 2))):
            hname = f"h{i}"
            hparams = ("a", "b")[: draw(st.integers(1, 2))]
            defaults = (
                {"b": draw(st.sampled_from([0.5, 1.5, -1.0]))}
                if len(hparams) == 2 and draw(st.booleans())
                else {}
            )
            env = {p: (HELPER_BOUND, ()) for p in hparams}
            closure = None
            if family == "loops" and draw(st.integers(0, 3)) == 0:
                closure = {"c": draw(st.sampled_from([1.25, 0.5, -0.75]))}
                env["c"] = (abs(closure["c"]), ())
            fn, m = g.function(
                hname, env, defaults, 1, 1 if family == "loops" else 2, draw(st.integers(0, 2))
            )
            fn.params = hparams
            fn.closure = closure
            g.helpers.append(fn)
            g.helper_bounds[hname] = m
    shapes: dict[str, tuple[int, ...]] = {p: () for p in names}
    if family == "arrays":
        n = draw(st.integers(2, 4))
        arrays = {"w": (n,)}
        if draw(st.booleans()):
            arrays["v"] = (n,)
        if draw(st.integers(0, 2)) == 0:
            arrays["X"] = (draw(st.integers(2, 3)), n)
        shapes = {**arrays, **{p: () for p in names[: draw(st.integers(0, 2))]}}
        g.param_names = set(shapes)
    env = {p: (PARAM_BOUND, s) for p, s in shapes.items()}
    n_outputs = draw(st.integers(2, 3)) if family == "tuples" else 1
    depth = {"straight": 3, "branches": 2, "loops": 2, "tuples": 2, "arrays": 2}[family]
    n_stmts = draw(st.integers(0, 3))
    if long_loop:  # f's first statement is a long loop (kept by default), then 0-2 more
        g.force_long, n_stmts = True, n_stmts + 1
    main, _ = g.function("f", env, {}, n_outputs, depth, n_stmts)
    main.params = tuple(shapes)
    prog = Program(family, tuple(shapes), shapes, g.consts, g.helpers, main, n_outputs, g.uses_stop)
    if g.features:
        # loop forms drawn (while, break, continue, long, nested): their twins differentiate
        # with dag_diff, as sympy.diff of an unrolled loop is exponential in its iterations
        prog.meta["loop_forms"] = sorted(g.features)
    prog.text = render_module(prog)
    return prog


# --- the newer families -------------------------------------------------------------------------
# Classes of silently wrong results that checks from outside the project found and the
# families above missed (issue #12): scalars broadcast through piecewise functions, and
# arguments that do not reach the output ("mixed", also checked at second order); forward mode
# with NaN or inf in the branch not taken ("hazards"); `+=` on aliases and views ("aliasing");
# module and closure constants changed between calls ("captured"); unary minus and negative
# constants around %, // and ** ("precedence"). Their oracles are the original function run by
# Python/NumPy, finite differences and PyTorch (tests/torch_oracle.py); "precedence" also has
# the SymPy twin.

SHAPE_SETS = (  # the array parameters of a mixed program (broadcastable together)
    ((4,),),
    ((3, 1),),
    ((2, 3),),
    ((4,), (3, 1)),
    ((3, 1), (3,)),
    ((2, 3), (3,)),
    ((2, 3), (2, 1)),
    ((2, 1), (1, 3)),
)
DEAD_KINDS = ("unused", "untaken", "untaken_ifexp", "stopped", "where_untaken", "none")
NEVER = 5.0  # parameters are drawn from [-2, 2]: `b > NEVER` is never true


def _v(name: str) -> tuple[str, str]:
    return ("v", name)


def _cmp(a: Any, op: str, b: Any) -> tuple[Any, ...]:
    return ("cmp", (op,), (a, b))


def piecewise_of(g: Gen, scalar: Any, env: dict[str, Any]) -> Any:
    """A piecewise function of a scalar (max, min, clip, abs, a conditional, np.where)."""
    k = C(g.pick([0.0, 0.5, -0.5]))
    how = g.pick(["maximum", "minimum", "max", "clip", "ifexp", "where", "abs"])
    if how in ("maximum", "minimum"):
        return np_call(how, *((scalar, k) if g.chance(0.5) else (k, scalar)))
    if how == "max":
        return call("numpy.maximum", "max", scalar, k)
    if how == "clip":
        return np_call("clip", scalar, C(-1.0), C(1.0))
    if how == "abs":
        return np_call("abs", scalar)
    other = g.expr(env, 1)
    if how == "ifexp":
        return ("ifexp", _cmp(scalar, ">", k), scalar, other)
    return np_call("where", _cmp(scalar, ">", k), scalar, other)


def _dead_use(kind: str) -> list[Any]:
    """Statements through which z never reaches the value's derivative (or the value)."""
    never = _cmp(_v("b"), ">", C(NEVER))
    plus_z = ("bin", "+", _v("t1"), _v("z"))
    if kind == "untaken":
        return [("if", ((never, [("assign", "t1", plus_z)]),), None)]
    if kind == "untaken_ifexp":
        return [("assign", "t1", ("ifexp", never, plus_z, _v("t1")))]
    if kind == "stopped":
        return [
            ("assign", "t1", ("bin", "+", _v("t1"), call("symgrad.stop_gradient", "stop_gradient", _v("z"))))
        ]
    if kind == "where_untaken":  # np.where(False, z, t1) still broadcasts to z's shape
        return [("assign", "t1", np_call("where", never, _v("z"), _v("t1")))]
    return []


def _mixed_output(g: Gen, names: list[str]) -> Any:
    t1 = _v("t1")
    how = g.pick(["array", "array", "sum", "mean", "scalar", "mixed"])
    if how == "array":
        return t1
    if how in ("sum", "mean"):
        return ("red", how, t1)
    if how == "scalar":  # no array reaches the output
        return ("bin", g.pick(["+", "*"]), _v(g.pick(names)), _v("b"))
    return ("bin", "+", ("red", "sum", t1), _v(g.pick(names)))


@st.composite
def mixed_programs(draw: Any) -> Program:
    """Floats and arrays of different broadcastable shapes in one call: a piecewise function
    of a float broadcast over arrays (S1), parameters that never reach the output or only
    its shape (S3), elementwise arithmetic of mixed shapes (S8 at second order)."""
    g, e = Gen(draw, "straight"), Gen(draw, "elementwise")
    arrays = dict(zip(("x", "y"), draw(st.sampled_from(SHAPE_SETS))))
    scalars = ["b"] + (["c"] if draw(st.booleans()) else [])
    dead = draw(st.sampled_from(DEAD_KINDS))
    shapes: dict[str, tuple[int, ...]] = {**arrays, **{p: () for p in scalars}}
    if dead != "none":
        shapes["z"] = draw(st.sampled_from([(), *arrays.values()]))
    env = {p: (PARAM_BOUND, ()) for p in scalars}
    scalar = _v("b") if draw(st.booleans()) else g.expr(env, 1)
    s1 = piecewise_of(g, scalar, env)
    body: list[Any] = [("assign", "s1", s1)]
    env["s1"] = (g.b(s1, env), ())
    names = ["s1"]
    if draw(st.booleans()):
        s2 = g.expr(env, 2)
        body.append(("assign", "s2", s2))
        env["s2"] = (g.b(s2, env), ())
        names.append("s2")
    env_a = {**env, **{a: (PARAM_BOUND, ()) for a in arrays}}
    inner = e.expr(env_a, 2)
    op = draw(st.sampled_from(["+", "*", "-"]))
    if op == "*" and e.b(inner, env_a) * env["s1"][0] > CAP:
        op = "+"
    t1 = (
        "bin",
        draw(st.sampled_from(["+", "*", "-"])),
        ("bin", op, _v("s1"), inner),
        _v(draw(st.sampled_from(sorted(arrays)))),
    )
    body.append(("assign", "t1", t1))
    body += _dead_use(dead)
    body.append(("return", (_mixed_output(g, names),)))
    params = tuple(draw(st.permutations(sorted(shapes))))
    uses_stop = g.uses_stop or e.uses_stop or dead == "stopped"
    prog = Program("mixed", params, shapes, {}, [], Func("f", params, {}, body), 1, uses_stop)
    prog.meta["dead"] = dead
    prog.text = render_module(prog)
    return prog


# forward mode under branches: `if v > c: t = sqrt(v - c) ...` is NaN for v < c and its
# derivative infinite at v == c; the tests evaluate at points on both sides and on the guard.
HAZARD_FUNCS = ("sqrt", "log", "arccosh", "power", "reciprocal")
GUARD_CONSTS = (0.0, 0.5, -0.5, 1.0)


def _hazard(g: Gen, name: str, params: list[str], env: dict[str, Any]) -> tuple[Any, tuple[str, str, float]]:
    v, c = g.pick(params), g.pick(GUARD_CONSTS)
    flip = g.chance(0.5)  # `v < c` with the hazard of c - v
    inner = ("bin", "-", C(c), _v(v)) if flip else ("bin", "-", _v(v), C(c))
    guard = ("guard", "<" if flip else ">", _v(v), C(c))
    how = g.pick(HAZARD_FUNCS)
    if how == "arccosh":
        h = np_call("arccosh", ("bin", "+", C(1.0), inner))
    elif how == "power":
        h = np_call("power", inner, C(1.5))
    elif how == "reciprocal":  # inf at the guard; tanh keeps it bounded on the taken side
        h = np_call("tanh", np_call("reciprocal", inner))
    else:
        h = np_call(how, inner)
    other = g.expr(env, 1)
    form = g.pick(["if", "ifexp", "where"])
    if form == "if":
        taken = g.expr(env, 1)
        prod = ("bin", "*", h, taken) if g.b(taken, env) <= 10 else ("bin", "+", h, taken)
        stmt: Any = ("if", ((guard, [("assign", name, prod)]),), [("assign", name, other)])
    elif form == "ifexp":
        stmt = ("assign", name, ("ifexp", guard, h, other))
    else:
        stmt = ("assign", name, np_call("where", guard, h, other))
    return stmt, (v, "<" if flip else ">", c)


def _with_term(stmts: list[Any], term: Any) -> list[Any]:
    """Every return statement of a body (nested ones too) with `+ term` added."""
    out = []
    for s in stmts:
        if s[0] == "return":
            s = ("return", tuple(("bin", "+", o, term) for o in s[1]))
        elif s[0] == "if":
            s = (
                "if",
                tuple((c, _with_term(b, term)) for c, b in s[1]),
                None if s[2] is None else _with_term(s[2], term),
            )
        out.append(s)
    return out


@st.composite
def hazard_programs(draw: Any) -> Program:
    """The branching family with sqrt / log / arccosh / power / reciprocal under a guard,
    NaN or inf where the guard is false, as if-statements, conditional expressions and np.where."""
    g = Gen(draw, "branches")
    names = list(("x", "y", "z")[: draw(st.integers(1, 3))])
    env = {p: (PARAM_BOUND, ()) for p in names}
    hazards, guards = [], []
    for k in range(draw(st.integers(1, 2))):
        stmt, guard = _hazard(g, f"hz{k}", names, env)
        hazards.append(stmt)
        guards.append(guard)
    for k in range(len(hazards)):
        env[f"hz{k}"] = (8.0, ())
    main, _ = g.function("f", env, {}, 1, 2, draw(st.integers(0, 2)))
    term: Any = _v("hz0")
    for k in range(1, len(hazards)):
        term = ("bin", "+", term, _v(f"hz{k}"))
    main.body = hazards + _with_term(main.body, ("bin", "*", C(0.5), term))
    main.params = tuple(names)
    shapes = {p: () for p in names}
    prog = Program("hazards", tuple(names), shapes, {}, [], main, 1, g.uses_stop)
    prog.meta["guards"] = guards
    prog.text = render_module(prog)
    return prog


# aliasing: `t = x` or a view `t = x[0:2]`, then `t += ...`: NumPy writes through to x
VIEWS = ("", "[0:2]", "[1:]", "[::2]", "[:]")
ALIAS_OPS = ("+", "-", "*", "/")


def _alias_update(e: Gen, target: str, env: dict[str, Any]) -> Any:
    op = e.pick(ALIAS_OPS)
    if op == "/":
        return ("aug", target, op, e.arg("pos", env, 1, ()))
    value = e.expr(env, 1)
    if e.b(value, env) > 2.0:
        value = e.squash(value, (-1.0, 1.0))
    return ("aug", target, op, value)


ALIAS_HELPERS = {"+": "bump", "-": "lower", "*": "scale", "/": "divide"}


def _through_helper(update: Any, helpers: dict[str, Func]) -> Any:
    """`t op= v` as a call of a helper doing `a op= v` on its argument: a statement
    (`bump(t, v)`) or an assignment of what it returns."""
    _, target, op, value = update
    name = ALIAS_HELPERS[op]
    helpers[name] = Func(name, ("a", "v"), {}, [("aug", "a", op, _v("v")), ("return", (_v("a"),))])
    return ("assign", f"r_{name}", ("h", name, (_v(target), value), ()))


@st.composite
def alias_programs(draw: Any) -> Program:
    """`t = x` / `t = x[0:2]` (and `u = t`), then `t += ...`, `t *= ...`, and both x and t
    used; sometimes `x += ...` on the parameter itself. On floats, `+=` rebinds."""
    e = Gen(draw, "elementwise")
    e.allow_stop = False
    floats = draw(st.integers(0, 3)) == 0
    n = draw(st.integers(3, 4))
    view = "" if floats else draw(st.sampled_from(VIEWS))
    w_shape: tuple[int, ...] = () if floats or draw(st.booleans()) else (n,)
    shapes = {"x": () if floats else (n,), "w": w_shape, "b": ()}
    body: list[Any] = [("assign", "t", ("slice", "x", view[1:-1]) if view else _v("x"))]
    env = {"t": (PARAM_BOUND, ()), "b": (PARAM_BOUND, ())}
    if w_shape:
        body.append(("assign", "ws", ("slice", "w", view[1:-1]) if view else _v("w")))
        env["ws"] = (PARAM_BOUND, ())
    else:
        env["w"] = (PARAM_BOUND, ())
    target = "t"
    if draw(st.integers(0, 3)) == 0:
        body.append(("assign", "u", _v("t")))
        target = "u"
        env["u"] = env["t"]
    through_helpers = draw(st.integers(0, 2)) == 0  # `bump(t, v)`, whose `a += v` changes t
    helpers: dict[str, Func] = {}
    for _ in range(draw(st.integers(1, 3))):
        update = _alias_update(e, target, env)
        body.append(_through_helper(update, helpers) if through_helpers else update)
        env[target] = (4.0, ())
    if draw(st.integers(0, 3)) == 0:  # the parameter itself, in place
        x_env = {"x": (PARAM_BOUND, ()), "b": (PARAM_BOUND, ())}
        body.append(_alias_update(e, "x", x_env))
    weight = _v("w") if not w_shape else np_call("sin", _v("w"))
    outs = [
        ("red", "sum", ("bin", "*", _v("x"), weight)),
        ("red", "sum", ("bin", "*", _v(target), _v(target))),
        ("red", "sum", np_call("sin", _v("t"))),
        ("red", "sum", ("bin", "*", _v("x"), _v("b"))),
    ]
    ret = ("bin", "+", outs[0], outs[draw(st.integers(1, 3))])
    if floats:
        ret = ("bin", "+", ("bin", "*", _v("x"), weight), ("bin", "*", _v(target), _v("t")))
    body.append(("return", (ret,)))
    params = ("x", "w", "b")
    prog = Program(
        "aliasing", params, shapes, {}, list(helpers.values()), Func("f", params, {}, body), 1, False
    )
    prog.text = render_module(prog)
    return prog


# captured values: a module constant, a module array and a closure cell read by f
CAPTURED_VALUES = (0.75, 1.25, -0.5, 2.0)
CELL_VALUES = (1.25, 0.5, -0.75, 1.5)
ARRAY_VALUES = ((0.5, -1.0, 2.0), (1.5, 0.25, -0.5), (-2.0, 1.0, 0.75))


def _array_text(values: tuple[float, ...]) -> str:
    return f"np.array([{', '.join(map(repr, values))}])"


@st.composite
def captured_programs(draw: Any) -> Program:
    """f = make_f(c) reads a closure cell c, a module constant K0 and perhaps a module array A;
    the tests change them (rebinding, or writing into A) between calls."""
    g = Gen(draw, "straight")
    g.allow_stop = False
    g.consts = {"K0": draw(st.sampled_from(CAPTURED_VALUES))}
    names = list(("x", "y")[: draw(st.integers(1, 2))])
    cell = draw(st.sampled_from(CELL_VALUES))
    env = {p: (PARAM_BOUND, ()) for p in names} | {"c": (abs(cell), ())}
    main, _ = g.function("f", env, {}, 1, 2, draw(st.integers(0, 2)))
    main.params, main.closure = tuple(names), {"c": cell}
    x, y = names[0], names[-1]
    term: Any = ("bin", "+", ("bin", "*", _v("K0"), _v(x)), ("bin", "*", _v("c"), np_call("sin", _v(y))))
    prog_meta: dict[str, Any] = {"cell": cell, "K0": g.consts["K0"]}
    if draw(st.booleans()):  # a module array: an input of the program, read at each call
        values = draw(st.sampled_from(ARRAY_VALUES))
        prog_meta["globals"] = f"A = {_array_text(values)}\n"
        prog_meta["A"] = values
        term = ("bin", "+", term, ("red", "sum", ("bin", "*", _v("A"), _v(x))))
    main.body = _with_term(main.body, term)
    prog = Program("captured", tuple(names), {p: () for p in names}, g.consts, [], main, 1, False)
    prog.meta.update(prog_meta)
    prog.text = render_module(prog)
    return prog


# printing precedence: straight-line code of unary minus, negative constants, %, //, **,
# written with Python's minimal parentheses (`-2.0 * -x % 1.0`, `x % -1.5`, `-x ** 2`)
PREC_CONSTS = (0.5, 1.5, 2.0, 0.75, 3.0)


def _prec_const(g: Gen) -> Any:
    c = g.pick(PREC_CONSTS)
    if not g.chance(0.6):
        return C(c)
    return C(-c) if g.chance(0.5) else ("neg", C(c))


def prec_expr(g: Gen, names: list[str], depth: int) -> Any:
    """An expression of names and constants that stresses the precedence of unary minus."""
    if depth <= 0 or g.chance(0.2):
        return _v(g.pick(names)) if g.chance(0.7) else _prec_const(g)
    what = g.pick(["neg", "neg", "add", "mul", "mod", "mod", "floordiv", "pow", "pow", "expo", "div"])
    sub = lambda: prec_expr(g, names, depth - 1)  # noqa: E731
    if what == "neg":
        return ("neg", sub())
    if what in ("add", "mul"):
        return ("bin", g.pick(["+", "-"]) if what == "add" else "*", sub(), sub())
    if what in ("mod", "floordiv", "div"):
        op = {"mod": "%", "floordiv": "//", "div": "/"}[what]
        return ("bin", op, sub(), _prec_const(g))
    if what == "pow":  # (-x) ** 2, -x ** 3
        base = sub()
        if bound(base, {n: PARAM_BOUND for n in names}, {}) > 4.0:
            base = g.squash(base, (-2.0, 2.0))
        return ("bin", "**", base, C(g.pick([2, 3, 2.0])))
    expo = sub()  # 2.0 ** -x
    if bound(expo, {n: PARAM_BOUND for n in names}, {}) > 3.0:
        expo = g.squash(expo, (-2.0, 2.0))
    return ("bin", "**", C(g.pick([2.0, 0.5, 1.5, 3.0])), expo)


@st.composite
def precedence_programs(draw: Any) -> Program:
    g = Gen(draw, "straight")
    names = list(("x", "y")[: draw(st.integers(1, 2))])
    body: list[Any] = []
    scope = list(names)
    for k in range(draw(st.integers(0, 2))):
        body.append(("assign", f"t{k}", prec_expr(g, scope, 2)))
        scope.append(f"t{k}")
    body.append(("return", (prec_expr(g, scope, 3),)))
    prog = Program(
        "precedence",
        tuple(names),
        {p: () for p in names},
        {},
        [],
        Func("f", tuple(names), {}, body),
        1,
        False,
    )
    prog.meta["minimal"] = True
    prog.text = render_module(prog)
    return prog


class MinimalRenderer(Renderer):
    """Python source with the fewest parentheses (ast.unparse of the fully parenthesized text)."""

    def expr(self, e: Any) -> str:
        return ast.unparse(ast.parse(Renderer(self.probe).expr(e), mode="eval"))


# --- the twin interpreter ---------------------------------------------------------------------


class _Return(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = values


def _ew(fn: Callable[..., Any], *args: Any) -> Any:
    """Apply fn elementwise, broadcasting lists (1-D arrays) against scalars."""
    lists = [a for a in args if isinstance(a, list)]
    if not lists:
        return fn(*args)
    n = len(lists[0])
    return [fn(*(a[i] if isinstance(a, list) else a for a in args)) for i in range(n)]


def _pyop(op: str, a: Any, b: Any) -> Any:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "**":
        return lift(a) ** b
    a, b = lift(a), lift(b)
    k = lift(int(MP.floor(a.n / b.n)))
    return k if op == "//" else a - b * k  # % and //: the jump resolved at the point


def _sum(items: list[Any]) -> V:
    total = lift(items[0])
    for v in items[1:]:
        total = total + v
    return total


def _traced(v: Any) -> bool:
    return isinstance(v, (V, list))


MAX_TRIPS = 1000  # a generated `while` stops within 6 iterations (its counter's cap)


class Twin:
    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.funcs = {fn.name: fn for fn in prog.helpers}

    def run(self, fn: Func, args: dict[str, Any]) -> tuple[Any, ...]:
        env = dict(args)
        if fn.closure:
            env.update({k: lift(v) for k, v in fn.closure.items()})
        try:
            self.block(fn.body, env, stop=False)
        except _Return as r:
            return r.values
        raise AssertionError("no return")

    def block(self, stmts: list[Any], env: dict[str, Any], stop: bool) -> str | None:
        """Run statements; "break" or "continue" where one of them jumps, else None."""
        for s in stmts:
            tag = s[0]
            if tag == "assign":
                if stop:  # no_grad: the same number from constants (no expression to build)
                    value = self.expr(
                        s[2], {k: _ew(const_of, v) if _traced(v) else v for k, v in env.items()}
                    )
                else:
                    value = self.expr(s[2], env)
                env[s[1]] = _ew(const_of, value) if stop else value
            elif tag == "aug":
                env[s[1]] = _ew(lambda a, b, op=s[2]: _pyop(op, a, b), env[s[1]], self.expr(s[3], env))
            elif tag == "unpack":
                values = [self.expr(e, env) for e in s[2]]
                for name, value in zip(s[1], values):
                    env[name] = value
            elif tag == "if":
                for cond, body in s[1]:
                    if self.cond(cond, env):
                        jump = self.block(body, env, stop)
                        break
                else:
                    jump = None if s[2] is None else self.block(s[2], env, stop)
                if jump:
                    return jump
            elif tag == "for":
                _, var, (how, items), body = s
                values = [self.expr(a, env) for a in items]
                seq = range(*(int(num(v)) for v in values)) if how == "range" else values
                for item in seq:
                    env[var] = item
                    if self.block(body, env, stop) == "break":
                        break
            elif tag == "while":  # the trip count decided by the values at the point (mpmath)
                for _ in range(MAX_TRIPS):
                    if not self.cond(s[1], env) or self.block(s[2], env, stop) == "break":
                        break
                else:
                    raise AssertionError("a generated while loop did not stop (a generator bug)")
            elif tag in ("break", "continue"):
                return tag
            elif tag == "nograd":
                self.block(s[1], env, stop=True)
            elif tag == "return":
                raise _Return(tuple(self.expr(e, env) for e in s[1]))
        return None

    def cond(self, c: Any, env: dict[str, Any]) -> Any:
        tag = c[0]
        if tag == "cmp":
            _, ops, operands = c
            values = [self.expr(o, env) for o in operands]
            result: Any = True
            for op, a, b in zip(ops, values, values[1:]):
                r = _ew(lambda p, q, op=op: bool(_OPS[op](num(p), num(q))), a, b)
                if isinstance(r, list):
                    return r
                result = result and r
                if not result:
                    return False
            return result
        if tag == "not":
            return not self.cond(c[1], env)
        if tag == "true":
            return True
        if tag == "guard":
            _, op, a, b = c
            return bool(_OPS[op](num(self.expr(a, env)), num(self.expr(b, env))))
        if tag == "and":
            return self.cond(c[1], env) and self.cond(c[2], env)
        return self.cond(c[1], env) or self.cond(c[2], env)

    def expr(self, e: Any, env: dict[str, Any]) -> Any:
        tag = e[0]
        if tag == "v":
            if e[1] in env:
                return env[e[1]]
            return lift(self.prog.consts[e[1]])
        if tag == "c":
            return e[1]
        if tag == "neg":
            return _ew(lambda a: -lift(a), self.expr(e[1], env))
        if tag == "bin":
            _, op, a, b = e
            return _ew(lambda p, q: _pyop(op, p, q), self.expr(a, env), self.expr(b, env))
        if tag == "call":
            _, key, _spell, args = e
            kinds = SPECS[key].args + ("any",) * 3
            values = [self.cond(a, env) if k == "cond" else self.expr(a, env) for k, a in zip(kinds, args)]
            return _ew(SPECS[key].twin, *values)
        if tag == "ifexp":
            return self.expr(e[2], env) if self.cond(e[1], env) else self.expr(e[3], env)
        if tag == "h":
            _, name, args, kwargs = e
            fn = self.funcs[name]
            bound_args = dict(fn.defaults)
            bound_args.update({p: self.expr(a, env) for p, a in zip(fn.params, args)})
            bound_args.update({k: self.expr(a, env) for k, a in kwargs})
            return self.run(fn, {k: lift(v) for k, v in bound_args.items()})[0]
        if tag == "red":
            _, kind, a = e
            items = self.expr(a, env)
            if kind == "sum":
                return _sum(items)
            if kind == "mean":
                return _sum(items) / len(items)
            if kind == "prod":
                total = lift(items[0])
                for v in items[1:]:
                    total = total * v
                return total
            return _max(*items) if kind == "max" else _min(*items)
        if tag == "dot":
            _, _how, a, b = e
            if a == ("v", "X"):
                rows, vec = env["X"], self.expr(b, env)
                return [_sum([r * v for r, v in zip(row, vec)]) for row in rows]
            va, vb = self.expr(a, env), self.expr(b, env)
            return _sum([p * q for p, q in zip(va, vb)])
        if tag == "idx":
            items = self.expr(e[1], env)
            return items[int(num(self.expr(e[2], env)))]
        if tag == "len":
            return len(env[e[1]])
        if tag == "gsum":
            _, var, items, body = e
            values = [self.expr(body, {**env, var: self.expr(i, env)}) for i in items]
            total = values[0]
            for v in values[1:]:
                total = _ew(lambda p, q: lift(p) + q, total, v)
            return total
        raise AssertionError(e)


_MP_FUNCS: dict[Any, Callable[..., Any]] = {
    sympy.sin: MP.sin,
    sympy.cos: MP.cos,
    sympy.tan: MP.tan,
    sympy.cot: MP.cot,
    sympy.sec: MP.sec,
    sympy.csc: MP.csc,
    sympy.asin: MP.asin,
    sympy.acos: MP.acos,
    sympy.atan: MP.atan,
    sympy.atan2: MP.atan2,
    sympy.sinh: MP.sinh,
    sympy.cosh: MP.cosh,
    sympy.tanh: MP.tanh,
    sympy.coth: MP.coth,
    sympy.sech: MP.sech,
    sympy.csch: MP.csch,
    sympy.asinh: MP.asinh,
    sympy.acosh: MP.acosh,
    sympy.atanh: MP.atanh,
    sympy.exp: MP.exp,
    sympy.log: MP.log,
    sympy.Abs: abs,
    sympy.sign: MP.sign,
}


def mp_eval(expr: Any, values: dict[Any, Any], memo: dict[Any, Any] | None = None) -> Any:
    """Evaluate a SymPy expression with mpmath (DPS digits) at `values` (symbol -> mpf)."""
    memo = {} if memo is None else memo
    if expr in memo:
        return memo[expr]
    if expr.is_Symbol:
        result = values[expr]
    elif expr.is_Rational:
        result = MP.mpf(expr.p) / MP.mpf(expr.q)
    elif isinstance(expr, Textbook):
        result = expr.mp(*[mp_eval(a, values, memo) for a in expr.args])
    elif expr.is_Number or expr.is_NumberSymbol:
        result = MP.mpf(sympy.Float(expr, DPS + 5)._mpf_)
    else:
        args = [mp_eval(a, values, memo) for a in expr.args]
        if expr.is_Add:
            result = MP.fsum(args)
        elif expr.is_Mul:
            result = MP.fprod(args)
        elif expr.is_Pow:
            base, expo = args
            if expr.exp.is_Number and expr.exp == int(expr.exp):
                result = base ** int(expr.exp)
            else:
                result = MP.power(base, expo)
        elif expr.func in _MP_FUNCS:
            result = _MP_FUNCS[expr.func](*args)
        else:  # anything else: SymPy's own evaluation
            subs = {k: sympy.Float(MP.nstr(v, DPS + 5), DPS) for k, v in values.items()}
            result = MP.mpf(sympy.Float(expr.evalf(DPS, subs=subs), DPS)._mpf_)
    memo[expr] = result
    return result


def dag_diff(expr: Any, sym: Any, memo: dict[Any, Any]) -> Any:
    """d expr / d sym by the chain rule over the expression's DAG, each distinct subexpression
    once (`memo`: one per symbol, shared by every expression differentiated in it).

    `sympy.diff` walks the expression as a tree: an unrolled loop reads each carried value
    several times, so it takes time exponential in the iterations (a 2-statement body: 0.1 s
    at 4 iterations, 30 s at 8). Here the local derivatives are still SymPy's (each
    function's `fdiff`: the textbook rules of `F`), with the sum, product and power rules
    written out; the result shares subexpressions, which `mp_eval` evaluates once each."""
    stack = [expr]
    while stack:
        e = stack[-1]
        if e in memo:
            stack.pop()
            continue
        if e == sym or not e.args:
            memo[e] = sympy.S.One if e == sym else sympy.S.Zero
            stack.pop()
            continue
        todo = [a for a in e.args if a not in memo]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        ds = [memo[a] for a in e.args]
        if all(d == 0 for d in ds):
            memo[e] = sympy.S.Zero
        elif e.is_Add:
            memo[e] = sympy.Add(*(d for d in ds if d != 0))
        elif e.is_Mul:
            memo[e] = sympy.Add(
                *(sympy.Mul(d, *e.args[:i], *e.args[i + 1 :]) for i, d in enumerate(ds) if d != 0)
            )
        elif e.is_Pow:
            (base, expo), (dbase, dexpo) = e.args, ds
            if expo.is_Number:
                memo[e] = expo * base ** (expo - 1) * dbase
            else:
                memo[e] = e * (dexpo * F.log(base) + expo * dbase / base)
        elif isinstance(e, sympy.Function):
            memo[e] = sympy.Add(*(e.fdiff(i + 1) * d for i, d in enumerate(ds) if d != 0))
        else:  # anything else (none is generated): SymPy's own
            memo[e] = sympy.diff(e, sym)
    return memo[expr]


def symbols_for(prog: Program) -> dict[str, Any]:
    """SymPy symbols of the parameters: one per float, one per element of an array."""
    out: dict[str, Any] = {}
    for p, shape in prog.shapes.items():
        if shape == ():
            out[p] = sympy.Symbol(p, real=True)
        else:
            out[p] = np.array(
                [sympy.Symbol(f"{p}_{'_'.join(map(str, ix))}", real=True) for ix in np.ndindex(shape)]
            ).reshape(shape)
    return out


def run_twin(prog: Program, point: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The twin's outputs (V, one per output) at `point`, and the parameter symbols."""
    syms = symbols_for(prog)
    args: dict[str, Any] = {}
    for p, shape in prog.shapes.items():
        if shape == ():
            args[p] = V(syms[p], MP.mpf(float(point[p])))
        else:
            values = np.asarray(point[p], dtype=np.float64)
            cells = [V(s, MP.mpf(float(x))) for s, x in zip(syms[p].ravel(), values.ravel())]
            args[p] = (
                cells
                if len(shape) == 1
                else [cells[i * shape[1] : (i + 1) * shape[1]] for i in range(shape[0])]
            )
    outs = Twin(prog).run(prog.main, args)
    return tuple(lift(o) for o in outs), syms


# --- regressions ------------------------------------------------------------------------------
# Programs that once exposed a bug, with the points where they did: (source, points). Every run
# checks them (value, gradient, each wrt, second order) against finite differences.

REGRESSIONS: list[tuple[str, list[tuple[Any, ...]]]] = [
    # --- issue #12, found by checks from outside the project (the fuzzer then had no family for
    # them): S1, a float's gradient through a piecewise function broadcast over an array was not
    # summed over the broadcast (db 1.0 instead of 4.0, and a 0-d array)
    (
        """\
import numpy as np


def f(x, b):
    return np.maximum(b, 0.0) + x
""",
        [([0.1, 0.1, 0.1, 0.1], 0.7)],
    ),
    (
        """\
import numpy as np


def f(x, b):
    return (b if b > 0.0 else 0.0) * x + np.clip(b, -1.0, 1.0)
""",
        [([0.1, -0.3, 0.5, 0.2], 0.7)],
    ),
    # S3: an array that never reaches the output shaped the value (4,) and the gradient
    # (dx = 4 cos(0.5)); Python gives a scalar and cos(0.5)
    (
        """\
import numpy as np


def f(x, z):
    return np.sin(x)
""",
        [(0.5, [1.0, 1.0, 1.0, 1.0])],
    ),
    # S3 again, found by the mixed family: an unused (3,) array broadcast the (3, 1) value to
    # (3, 3) and tripled dx
    (
        """\
def f(x, y):
    return x + 1.0
""",
        [([[0.0], [0.5], [1.0]], [0.0, 0.0, 0.0])],
    ),
    # S3 again (mixed family): b * b with an unused (2, 3) array: the value broadcast to (2, 3)
    # and db six times too large
    (
        """\
def f(b, x):
    return b * b
""",
        [(0.75, [[0.0, 0.5, 1.0], [1.5, 2.0, -1.0]])],
    ),
    # S3 at second order (second-order family): with an unused (2, 1) array, dc and
    # grad(grad(f, wrt=0), wrt=1) were twice too large (2.0 instead of 2c = 1.0)
    (
        """\
def f(c, y, x):
    return c * c * y
""",
        [(0.5, [[0.9, 0.1, -0.8]], [[0.0], [0.0]])],
    ),
    # S2, found by the precedence family: `-x % -1.5` on floats gave 1.0 at x = 2 (Python:
    # -0.5); the NumPy flavour was right
    (
        """\
def f(x):
    return -x % -1.5
""",
        [(2.0,), (0.7,)],
    ),
    (
        """\
def f(x):
    return x * x * (-3.0 / 3.0) % -1.5
""",
        [(2.0,)],
    ),
    # S7: jvp of np.where leaked the NaN of the untaken sqrt (grad gave 0)
    (
        """\
import numpy as np


def f(x):
    return np.where(x > 0, np.sqrt(x), 0.0)
""",
        [(-1.0,), (0.25,)],
    ),
    # S7 again, found by the hazards family: with an if-statement too, jvp was NaN wherever
    # the untaken branch's sqrt was (x > 0.5 on floats and on arrays); grad gave 0
    (
        """\
import numpy as np


def f(x):
    if x < 0.5:
        t = np.sqrt(0.5 - x)
    else:
        t = 0.0
    return t
""",
        [(0.7,), (0.2,), ([0.7, 0.9],)],
    ),
    # S8: grad(grad(f, wrt=0), wrt=1) with x (3, 2) and y (2,) was short by the broadcast count
    (
        """\
import numpy as np


def f(x, y):
    return np.divide(x, y)
""",
        [([[0.5, 1.0], [1.5, 2.0], [-0.5, 0.25]], [1.5, 2.0])],
    ),
    # np.clip with lo > hi: NumPy (and torch.clamp) give hi everywhere, symgrad gave lo (for
    # x < lo) and its gradient. Found as a traced lower bound above the upper bound.
    (
        """\
import numpy as np


def f(x):
    return np.clip(-1.0, x, 0.5)
""",
        [(1.0,), (2.0,)],
    ),
    (
        """\
import numpy as np


def f(x):
    return np.clip(x, 1.0, 0.5) * x
""",
        [(0.25,), (-1.5,)],
    ),
    # np.where with a static condition and static branches: TracingError "arithmetic on a
    # value of type ndarray" (it returned a 0-d array).
    (
        """\
import numpy as np


def f(x):
    return x * np.where(0.5 < 1.0, 2.0, 3.0)
""",
        [(1.5,)],
    ),
    (
        """\
import numpy as np


def f(x):
    return x * np.where(x - x > 0.5, 1.0, 2.0)
""",
        [(1.0,)],
    ),
    # An array expression that cancels to a constant lost its shape: np.sum(w - w + 1.0) was
    # 1.0, not len(w) (value 1.0 and gradient [1, 0, 0] instead of 3.0 and [3, 0, 0]), and
    # `X @ (w - w)` raised UnsupportedSyntaxError "`@` needs 1-D or 2-D arrays on both sides".
    (
        """\
import numpy as np


def f(w):
    return np.sum(w - w + 1.0) * w[0]
""",
        [([1.0, 2.0, 3.0],)],
    ),
    (
        """\
import numpy as np


def f(w, X):
    return np.sum(X @ (w - w)) + np.sum(X @ w)
""",
        [([1.0, 2.0, 3.0], [[0.5, 1.0, 1.5], [2.0, -1.0, 0.25]])],
    ),
    # np.minimum / np.maximum / np.where of an array and a function of a float parameter, in
    # an array program: ValueError "cannot broadcast a non-scalar to a scalar array" from the
    # generated `numpy.broadcast_to(t, ())` (with `2.0 * x` instead of `np.sin(x)` it works).
    (
        """\
import numpy as np


def f(w, x):
    return np.sum(np.minimum(w, np.sin(x)))
""",
        [([0.1, -0.5, 0.9], 0.3)],
    ),
    # The support conditions of nested if/elif/else with early returns grow so large that
    # the NumPy flavour does not compile: SyntaxError "too many nested parentheses" (a line of
    # 22,000 characters with 215 logical_and and 774 logical_or); the float flavour works.
    (
        """\
def f(x, y, z):
    if z < 1.25:
        if y > z:
            return y
        elif z == y >= z:
            return y
        else:
            x = z
    elif 0.125 <= x:
        if z > x:
            z = x
        elif z < x:
            return 1.8
        else:
            y /= 1.1
    else:
        return 1.0
    if y < 1.8:
        if y >= 0.5:
            return 0.5
        else:
            return y
    else:
        return z
""",
        [([-1.75, -1.0], [-0.48, -0.5], [-0.64, -0.6])],
    ),
    # First-order time exponential in the number of sequential if/elif/else statements
    # (0.05 s, 0.12 s, 0.5 s, 3.7 s, 31 s for 2, 4, 6, 8, 10 statements): `diff.reverse`
    # builds ever larger support conditions (`_guard`'s Piecewise). The README promises a cost
    # linear in the size of the function.
    (
        "import numpy as np\n\n\ndef f(x, y):\n"
        + "".join(
            f"    if x < {0.1 * k:.1f}:\n        x = np.sin(x) + y\n"
            f"    elif y < {0.2 * k:.1f}:\n        y = np.cos(y) * x\n"
            "    else:\n        x, y = y, x\n"
            for k in range(10)
        )
        + "    return x * y\n",
        [(0.3, 0.7)],
    ),
    # grad(grad(f)) of if/elif/else in a static loop: time grows ~20x per iteration
    # (0.07 s, 0.8 s, 18 s, > 60 s for 2, 3, 4, 5 iterations); first order stays ~0.1 s.
    (
        """\
import numpy as np


def f(x):
    for j in range(4):
        if x < 0.5:
            x = np.arctan(x)
        elif x < 1.0:
            x = np.sin(x)
        else:
            x = np.tanh(x)
    return x
""",
        [(0.3,)],
    ),
    # 28 s to differentiate (TooSlowError): SymPy's Piecewise merges successive equal pieces
    # by distributing And over Or, exponential in the nesting of if/elif; rules.piecewise
    # merges them with a plain Or first (0.14 s).
    (
        "import math\n\nimport numpy as np\n\n\nK0 = 1.25\n\n\ndef h0(a, b=0.5):\n    return (-np.log((2.0 + np.tanh(math.atanh((b / (1.0 + (b * b))))))))\n\n\ndef h1(a):\n    a, t1 = math.tanh(a), (h0(a) / (1.1 + (0.81 * np.tanh((a * a)))))\n    return np.floor(a)\n\n\ndef f(x, y):\n    if ((x / np.exp(np.tanh(x))) < (y + y)):\n        if (y != min((1.8 * np.tanh(x)), x, 3.0)):\n            y, t2 = y, x\n            return h0(x, K0)\n        else:\n            x += y\n            return x\n    elif (math.floor(y) != np.subtract((1.8 * np.tanh(x)), x)):\n        if ((x < y) or (3 < y)):\n            y = x\n            x -= x\n            return ((K0 * x) if ((K0 > (-2)) and (0.125 > y)) else h0(y))\n        elif (y != x):\n            t3, t4 = K0, 0.75\n            y = x\n            return (-np.reciprocal((1.1 + (0.81 * np.tanh(x)))))\n        elif ((-0.75) == x):\n            x = x\n            x = 1.25\n        else:\n            y = y\n            y /= (1.5 + np.tanh(y))\n        if ((K0 ** 2) == y):\n            x = x\n            t5 = 0.75\n        elif (y <= y < x):\n            y /= (2.0 + np.tanh(K0))\n            y = y\n            return (math.tan((0.9 * np.sin(y))) + x)\n        elif (y > K0):\n            t6 = x\n            t7 = t6\n    elif ((-x) >= math.hypot(x, (1.1 + (0.81 * np.tanh(x)))) > 0.25):\n        if (1 < (2 - y) < x):\n            t8 = K0\n        else:\n            y = y\n        if (np.reciprocal((1.1 + (0.81 * np.sin(y)))) >= h1(x)):\n            x -= y\n        elif (x > y):\n            t9, t10 = (-2.0), y\n        else:\n            x = y\n            return np.log10((0.5 + ((y / (1.5 + (x * x))) * (y / (1.5 + (x * x))))))\n        return h0((1.8 * np.tanh((x - x))))\n    else:\n        x = math.expm1((1.8 * np.tanh(y)))\n    return np.negative((K0 // np.hypot(np.cbrt(np.exp(np.tanh(x))), 0.5)))\n",
        [(1.2582639705488559, -1.9533558717354165)],
    ),
    # An elementwise trace (no shapes) folded np.mean of a cancelled value as a constant, then
    # broadcast the value over every argument: value [0.5, 0.5, 0.5, 0.5] and d/dx 4.0 instead
    # of 0.5 and 1.0. Array functions after a cancellation now trace with shapes.
    (
        """\
import numpy as np


def f(w, x):
    t1 = (w - w) ** 2
    return np.mean(np.clip(-t1, -1.0, 1.0)) + x * x
""",
        [([1.0, 2.0, 0.5, -1.0], 0.5)],
    ),
    # `@` of two values SymPy had cancelled to constants (`w - w`) was refused as an operator
    # on numbers (UnsupportedSyntaxError), or ran as a matmul of a scalar (ValueError) -- found
    # on Python 3.10. After a cancellation `@` now traces with shapes.
    (
        """\
import numpy as np


def f(w, x):
    t2 = w - w
    t5 = np.logaddexp(t2, 1.8 * np.tanh(0.75)) @ np.arctan(1.8 * np.cos(t2))
    return np.mean(np.sin(t2)) + t5 * x
""",
        [([0.3, -0.5], 0.7)],
    ),
    # The generated code folds a scaled value used once into its user (`t0 = -w`, `t1 = t0 + w`)
    # and SymPy cancelled the sum to the number 0, so `t1[0]` indexed an int (TypeError in the
    # kernel): a folded value whose substitution cancels keeps its line. Found by the fuzzer
    # (arrays family, seed 3211139926 of the whole suite).
    (
        """\
import numpy as np


def f(w):
    t1 = (-w) + w
    return np.sum(t1) + t1[0] + np.sum((2.0 * w - 2.0 * w) * w)
""",
        [([0.0, 0.0, 0.0, 0.0],), ([0.3, -1.0, 2.0, 0.5],)],
    ),
]


# `+=` on an alias or a view of an array (S9): NumPy writes through. symgrad must give NumPy's
# value and the original's gradient, or refuse naming the alias / in-place update.
ALIAS_REGRESSIONS: list[tuple[str, list[tuple[Any, ...]]]] = [
    # found by the straight family: `t1, x = x, ...` makes t1 the old array x; the later
    # `x -= ...` changes the new x only (t1 took the new x's memory)
    (
        """\
import numpy as np


def f(x, y):
    t1, x = x, x * y + 1.0
    x -= np.sin(x)
    return np.sum(t1 * x)
""",
        [([0.5, 1.2], [0.3, -0.7])],
    ),
    # found by the loops family: the tuple holds the array `x` itself, which the first
    # iteration's `x -= ...` changes in place before the second item is read
    (
        """\
import numpy as np


def f(x):
    for j in (np.reciprocal(1.0 + x * x), x, (1.0 + x * x) ** -2):
        x -= np.tanh(2 - j)
    return np.sum(x * 1.0)
""",
        [([1.194, 0.3],), ([-0.4, 0.9, 2.0],)],
    ),
    # found by the loops family (seed 777): the loop variable is the array `y` in the first
    # iteration, so `t = j; t -= ...` changes `y` (NumPy [0.908, 0.534]; symgrad gave [0.664, 0.291])
    (
        """\
import numpy as np


def f(y):
    for j in (y, 2 * y):
        t = j
        t -= np.sin(-t)
    return np.tanh(y)
""",
        [([0.5, 1.2],), ([-0.3, 0.8, 1.5],)],
    ),
    (
        """\
import numpy as np


def f(x, w):
    out = x
    out += w * x
    return np.sum(out * x)
""",
        [([0.5, -1.0, 1.5], [0.25, 2.0, -0.5])],
    ),
    (
        """\
import numpy as np


def f(w):
    t = w[0:2]
    t += 1.0
    return np.sum(w * w)
""",
        [([0.5, -1.0, 1.5],)],
    ),
    # found by the aliasing family: `t = x; t += 1.0` changes x too (value 13.0, not 5.0)
    (
        """\
import numpy as np


def f(x):
    t = x
    t += 1.0
    return np.sum(x * x)
""",
        [([1.0, 2.0],)],
    ),
]

# A module constant or closure cell changed after the first call (S10): each change is run in
# the module's namespace, then the same transform must give the original's new result.
CAPTURE_REGRESSIONS: list[tuple[str, tuple[float, ...], list[str]]] = [
    (
        """\
import numpy as np

K = 0.5


def f(x):
    return K * x * x + np.sin(x)
""",
        (1.5,),
        ["K = 2.0"],
    ),
    (
        """\
import numpy as np


def make_f(c):
    def f(x):
        return c * np.sin(x)

    return f


f = make_f(0.5)
""",
        (0.3,),
        ["f.__closure__[0].cell_contents = 3.0"],
    ),
]
