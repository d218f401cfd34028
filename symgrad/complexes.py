"""Complex values as pairs of real graph values: the rules that split an expression into its real and imaginary parts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy
from sympy.codegen.cfunctions import exp2, expm1, log1p, log2, log10

Expr = Any
Pair = tuple[Expr, Expr]


class ComplexUnsupported(Exception):  # noqa: N818 - internal, becomes a TracingError at the call
    """An operation symgrad cannot split into real and imaginary parts; `what` names it as
    the user wrote it (`np.log1p`, `np.sort`), or as NumPy names it."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def is_complex(expr: Any) -> bool:
    """True when a traced value (or constant) carries an imaginary part."""
    return isinstance(expr, sympy.Basic) and expr.has(sympy.I)


def complex_input(name: str) -> sympy.Symbol:
    """The symbol of a complex argument: not real, so `re(z)` and `im(z)` stay as they are."""
    return sympy.Symbol(name, complex=True)


def is_complex_symbol(value: Any) -> bool:
    """A symbol that is not real: a complex argument (`complex_input`) or a complex value the
    program returns (`Graph.add_complex`). A constant such as nan is no complex value."""
    return isinstance(value, sympy.Symbol) and value.is_real is not True


def is_part_of_input(expr: Any) -> bool:
    """`re(z)` or `im(z)` of a complex argument: how the program reads a complex argument."""
    return isinstance(expr, (sympy.re, sympy.im)) and isinstance(expr.args[0], sympy.Symbol)


# --- the parts of w = a + ib, for each function that symgrad splits ---------------------------


def _modulus(a: Expr, b: Expr) -> Expr:
    return sympy.sqrt(a**2 + b**2)


def _times(x: Pair, y: Pair) -> Pair:
    (a, b), (c, d) = x, y
    return a * c - b * d, a * d + b * c


def _reciprocal(x: Pair) -> Pair:
    a, b = x
    norm = a**2 + b**2
    return a / norm, -b / norm


def _exp(x: Pair) -> Pair:
    a, b = x
    return sympy.exp(a) * sympy.cos(b), sympy.exp(a) * sympy.sin(b)


def _log(x: Pair) -> Pair:
    a, b = x
    return sympy.log(_modulus(a, b)), sympy.atan2(b, a)


def _power(base: Pair, exponent: Pair) -> Pair:
    a, b = base
    if exponent[1] == 0 and exponent[0].is_Integer and abs(int(exponent[0])) <= 4:
        n = int(exponent[0])  # small integer powers as products: exact, and NumPy's values
        result: Pair = (sympy.S.One, sympy.S.Zero)
        for _ in range(abs(n)):
            result = _times(result, base)
        return _reciprocal(result) if n < 0 else result
    if exponent[1] == 0:  # w**p = |w|**p (cos p*arg w + i sin p*arg w)
        p, angle = exponent[0], sympy.atan2(b, a)
        radius = (a**2 + b**2) ** (p / 2)
        return radius * sympy.cos(p * angle), radius * sympy.sin(p * angle)
    return _exp(_times(exponent, _log(base)))  # w**c = exp(c log w)


def _sin(x: Pair) -> Pair:
    a, b = x
    return sympy.sin(a) * sympy.cosh(b), sympy.cos(a) * sympy.sinh(b)


def _cos(x: Pair) -> Pair:
    a, b = x
    return sympy.cos(a) * sympy.cosh(b), -sympy.sin(a) * sympy.sinh(b)


def _sinh(x: Pair) -> Pair:
    a, b = x
    return sympy.sinh(a) * sympy.cos(b), sympy.cosh(a) * sympy.sin(b)


def _cosh(x: Pair) -> Pair:
    a, b = x
    return sympy.cosh(a) * sympy.cos(b), sympy.sinh(a) * sympy.sin(b)


def _quotient(top: Callable[[Pair], Pair], bottom: Callable[[Pair], Pair]) -> Callable[[Pair], Pair]:
    return lambda x: _times(top(x), _reciprocal(bottom(x)))


def _sqrt(x: Pair) -> Pair:
    return _power(x, (sympy.S.Half, sympy.S.Zero))


def _plus(x: Pair, y: Pair) -> Pair:
    return x[0] + y[0], x[1] + y[1]


def _scaled(c: Expr, x: Pair) -> Pair:
    return c * x[0], c * x[1]


_ONE: Pair = (sympy.S.One, sympy.S.Zero)
_I: Pair = (sympy.S.Zero, sympy.S.One)


def _asinh(x: Pair) -> Pair:  # log(w + sqrt(w**2 + 1))
    return _log(_plus(x, _sqrt(_plus(_times(x, x), _ONE))))


def _acosh(x: Pair) -> Pair:  # log(w + sqrt(w + 1) sqrt(w - 1)): NumPy's branch cut
    return _log(_plus(x, _times(_sqrt(_plus(x, _ONE)), _sqrt(_plus(x, _scaled(-1, _ONE))))))


def _atanh(x: Pair) -> Pair:  # (log(1 + w) - log(1 - w)) / 2
    return _scaled(sympy.S.Half, _plus(_log(_plus(_ONE, x)), _scaled(-1, _log(_plus(_ONE, _scaled(-1, x))))))


def _asin(x: Pair) -> Pair:  # -i asinh(i w)
    return _times((sympy.S.Zero, -sympy.S.One), _asinh(_times(_I, x)))


def _acos(x: Pair) -> Pair:  # pi/2 - asin(w)
    a, b = _asin(x)
    return sympy.pi / 2 - a, -b


def _atan(x: Pair) -> Pair:  # -i atanh(i w)
    return _times((sympy.S.Zero, -sympy.S.One), _atanh(_times(_I, x)))


def _expm1(x: Pair) -> Pair:
    a, b = _exp(x)
    return a - 1, b


# Each entry: the parts of f(w) from the parts of w (one argument). The inverse functions
# follow NumPy's principal branches (C99's); near w = 0, log1p and expm1 are computed as
# log(1 + w) and exp(w) - 1, which lose the digits NumPy's keep.
UNARY: dict[type, Callable[[Pair], Pair]] = {
    sympy.asinh: _asinh,
    sympy.acosh: _acosh,
    sympy.atanh: _atanh,
    sympy.asin: _asin,
    sympy.acos: _acos,
    sympy.atan: _atan,
    log1p: lambda x: _log(_plus(_ONE, x)),
    expm1: _expm1,
    exp2: lambda x: _exp(_scaled(sympy.log(2), x)),
    log2: lambda x: _scaled(1 / sympy.log(2), _log(x)),
    log10: lambda x: _scaled(1 / sympy.log(10), _log(x)),
    sympy.exp: _exp,
    sympy.log: _log,
    sympy.sin: _sin,
    sympy.cos: _cos,
    sympy.tan: _quotient(_sin, _cos),
    sympy.sinh: _sinh,
    sympy.cosh: _cosh,
    sympy.tanh: _quotient(_sinh, _cosh),
    sympy.re: lambda x: (x[0], sympy.S.Zero),
    sympy.im: lambda x: (x[1], sympy.S.Zero),
    sympy.conjugate: lambda x: (x[0], -x[1]),
    sympy.Abs: lambda x: (_modulus(*x), sympy.S.Zero),
    sympy.arg: lambda x: (sympy.atan2(x[1], x[0]), sympy.S.Zero),
}

# What the message of a refusal lists.
SUPPORTED = (
    "+ - * / **, np.exp, exp2, expm1, log, log1p, log2, log10, sqrt, sin, cos, tan, arcsin, arccos, "
    "arctan, sinh, cosh, tanh, arcsinh, arccosh, arctanh, abs, real, imag, conj, angle, sum, mean, "
    "cumsum, trace, @, outer, indexing, reshaping, transposing and stacking"
)

# NumPy's names of the functions above, for messages.
NUMPY_NAMES: dict[type, str] = {sympy.re: "np.real", sympy.im: "np.imag", sympy.conjugate: "np.conj"}


def real_imag(expr: Expr) -> Pair:
    """The real and imaginary parts of `expr`, whose symbols are real graph values.

    Raises ComplexUnsupported for a function of a complex value without a rule here.

    >>> a, b = sympy.symbols("a b", real=True)
    >>> real_imag(sympy.exp(a + sympy.I * b))
    (exp(a)*cos(b), exp(a)*sin(b))
    """
    if not is_complex(expr):
        return expr, sympy.S.Zero
    if expr == sympy.I:
        return sympy.S.Zero, sympy.S.One
    if isinstance(expr, sympy.Add):
        parts = [real_imag(arg) for arg in expr.args]
        return sympy.Add(*[p[0] for p in parts]), sympy.Add(*[p[1] for p in parts])
    if isinstance(expr, sympy.Mul):
        result: Pair = (sympy.S.One, sympy.S.Zero)
        for arg in expr.args:
            result = _times(result, real_imag(arg))
        return result
    if isinstance(expr, sympy.Pow):
        return _power(real_imag(expr.base), real_imag(expr.exp))
    rule = UNARY.get(type(expr))
    if rule is not None and len(expr.args) == 1:
        return rule(real_imag(expr.args[0]))
    raise ComplexUnsupported(_name_of(expr))


def _name_of(expr: Expr) -> str:
    head = type(expr)
    if head in NUMPY_NAMES:
        return NUMPY_NAMES[head]
    name = getattr(head, "numpy_name", None) or head.__name__.lower()
    return name if "." in name else f"np.{name}"


def angle(w: Expr) -> Expr:
    """np.angle: atan2(imag, real); on a real number 0 or pi, with derivative 0."""
    return sympy.atan2(sympy.im(w), sympy.re(w))


def make_complex(real: Expr, imag: Expr = 0) -> Expr:
    """`complex(a, b)` of real values: a + ib."""
    return real + sympy.I * imag
