"""Emit stage: CSE over the whole program, print it as NumPy and as plain-Python code, compile it."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import linecache
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import sympy
from sympy.codegen.cfunctions import Cbrt, exp2, expm1, hypot, log1p, log2, log10
from sympy.core.mul import _keep_coeff
from sympy.core.relational import Relational
from sympy.core.symbol import Str
from sympy.printing.numpy import CuPyPrinter, JaxPrinter, NumPyPrinter
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.pycode import PythonCodePrinter
from sympy.simplify.cse_main import tree_cse

from . import runtime
from .arrays import (
    ArrayExtremum,
    ArrayOp,
    ArrayProd,
    ArraySum,
    AsArray,
    Broadcast,
    Concatenate,
    Constant,
    Eye,
    Full,
    Index,
    MatMul,
    Outer,
    Reduction,
    Reshape,
    Scatter,
    SetItem,
    Shape,
    Stack,
    SumTo,
    Trace,
    Transpose,
    shape_of,
)
from .complexes import is_complex_symbol
from .graph import Graph, Loop, Multi, Names, defined_by, is_scaled_symbol, reads_of, real_symbol
from .rules import CustomDerivative, LogAddExp, Round, Sigmoid, StopGradient

Statement = tuple[sympy.Symbol, Any]


# --- printers ----------------------------------------------------------------------------------


# How tightly Python's `not c` binds, on the scale of SymPy's `PRECEDENCE` table (SymPy has no
# class for it: between `and` and comparisons, as in Python), and a unary minus (between
# products and powers).
_NOT = (PRECEDENCE["And"] + PRECEDENCE["Relational"]) / 2
_UNARY = (PRECEDENCE["Mul"] + PRECEDENCE["Pow"]) / 2


def _prints_as_division(expr: sympy.Pow) -> bool:
    """Whether the printers write this power as `1/...`: a negative integer exponent
    (`_CommonPrinting._print_Pow`) or -1/2 (SymPy's `1/sqrt(x)`)."""
    exponent = expr.exp
    return bool(exponent.is_Integer and exponent < 0) or exponent == sympy.Rational(-1, 2)


def _float_literal(value: float, module: str) -> str:
    """`value` as source: its repr when finite; inf and nan as names of `module` (`math`,
    `numpy`): `repr` gives `inf` and `nan`, which are no Python names."""
    if math.isfinite(value):
        return repr(value)
    if math.isnan(value):
        return f"{module}.nan"
    return f"{module}.inf" if value > 0 else f"-{module}.inf"


class _CommonPrinting:
    """Overrides shared by both printers: exact floats, divisions instead of negative powers,
    parentheses from Python's precedence of the printed code."""

    _float_module = "numpy"
    complex_values = False  # the program takes complex arguments: `I` prints as 1j
    # The classes this printer writes as an operator expression where SymPy's StrPrinter
    # writes a call, and how tightly that expression binds (on SymPy's scale).
    _OPERATORS: ClassVar[dict[type, float]] = {MatMul: PRECEDENCE["Mul"]}  # `a @ b`

    def parenthesize(self, item: Any, level: float, strict: bool = False) -> str:
        binding = self.binding(item)
        text = str(self._print(item))  # type: ignore[attr-defined]
        if binding < level or (not strict and binding <= level):
            return f"({text})"
        return text

    def binding(self, item: Any) -> float:
        """How tightly the code this printer writes for `item` binds at its top level, on
        SymPy's precedence scale, decided from the expression. SymPy's table describes how
        StrPrinter writes each class, not what this printer writes: 1/x prints as a division,
        `stop_gradient(x + 1)` as `x + 1`, `Sigmoid` on floats as `1.0/(1.0 + ...)`."""
        if isinstance(item, StopGradient):  # printed as its argument
            return self.binding(item.args[0])
        if isinstance(item, sympy.Pow) and _prints_as_division(item):
            return float(PRECEDENCE["Mul"])
        for cls, level in self._OPERATORS.items():
            if isinstance(item, cls):
                return float(min(precedence(item), level))
        return float(precedence(item))

    def _print_Mul(self, expr: sympy.Mul) -> str:
        # SymPy parenthesizes the factors of `-2*Mod(-x, 1)` at the level of the whole (a
        # negative product binds like a sum), so that `-2.0*(-x) % 1.0` came out: Python reads
        # `(-2.0*(-x)) % 1.0`. The sign goes in front of the positive product printed as a
        # product: `-a*b/c` is `((-a)*b)/c`, which IEEE arithmetic computes as -(a*b/c).
        coeff, rest = expr.as_coeff_Mul()
        if not coeff < 0:
            return str(super()._print_Mul(expr))  # type: ignore[misc]
        positive = _keep_coeff(-coeff, rest)
        if isinstance(positive, sympy.Mul):
            return "-" + str(super()._print_Mul(positive))  # type: ignore[misc]
        return "-" + self.parenthesize(positive, _UNARY)

    def _float_text(self, value: Any) -> str:
        """A SymPy number as a float literal (SymPy's signless infinity as NaN)."""
        return _float_literal(math.nan if value is sympy.zoo else float(value), self._float_module)

    def _as_float(self, value: Any) -> str:
        """A piece of a branch or an extremum; numbers as float literals, so that
        `where(x > 0, 1.0, 0.0)` is a float array from the start and `max(1.0, x)` a float."""
        return self._float_text(value) if value.is_Number else str(self._print(value))  # type: ignore[attr-defined]

    def _print_Float(self, expr: sympy.Float) -> str:
        # SymPy prints 15 significant digits; repr round-trips the float64 exactly.
        return repr(float(expr))

    def _print_Infinity(self, expr: Any) -> str:
        return f"{self._float_module}.inf"

    def _print_NegativeInfinity(self, expr: Any) -> str:
        return f"-{self._float_module}.inf"

    def _print_NaN(self, expr: Any) -> str:
        return f"{self._float_module}.nan"

    def _print_ComplexInfinity(self, expr: Any) -> str:
        # Signless infinity (SymPy's `1/0`, `log(0)`): no float value to give but NaN.
        return f"{self._float_module}.nan"

    def _print_ImaginaryUnit(self, expr: Any) -> str:
        # Values are real: where SymPy finds an imaginary part (log(-2.0) in the derivative of
        # (-2.0)**x), NumPy computes NaN; `1j` would make the result complex. A program of
        # complex arguments reads their parts, and combines a gradient from its parts with 1j.
        return "1j" if self.complex_values else f"{self._float_module}.nan"

    def _print_Add(self, expr: sympy.Add, order: str | None = None) -> str:
        # Positive terms first: `y - t2` rather than `-t2 + y`, which negates before adding.
        terms = sorted(expr.args, key=lambda t: (t.could_extract_minus_sign(), sympy.default_sort_key(t)))
        text = self._print(terms[0])  # type: ignore[attr-defined]
        for term in terms[1:]:
            if term.could_extract_minus_sign():
                text += f" - {self.parenthesize(-term, 40)}"
            else:
                text += f" + {self.parenthesize(term, 40)}"
        return str(text)

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        base, exponent = expr.args
        if exponent.is_Integer and exponent < 0:
            # x**(-1.0) is slower than a division and raises on Python floats at 0 anyway.
            positive = sympy.Pow(base, -exponent, evaluate=False) if exponent != -1 else base
            # not strict: `/` reads left to right, `1/x % y` is `(1/x) % y`
            return f"1/{self.parenthesize(positive, 50)}"
        return str(super()._print_Pow(expr, rational=rational))  # type: ignore[misc]


# More pieces than this print as one `numpy.select` rather than nested `numpy.where`s.
_NESTED_WHERE = 4


def _pieces(expr: sympy.Piecewise) -> tuple[list[tuple[Any, Any]], Any]:
    """The (value, condition) pieces before the default, and the default value: the first
    piece whose condition is true, else the last piece (which then always applies)."""
    pieces: list[tuple[Any, Any]] = []
    for value, cond in expr.args:
        if cond == sympy.true:
            return pieces, value
        pieces.append((value, cond))
    return pieces[:-1], pieces[-1][0]


class _ArrayPrinting(_CommonPrinting):
    """Code that runs elementwise on arrays of the printer's module (`_module`: `numpy`,
    `jax.numpy`, `cupy`): `where` for branches, binary maximum."""

    _module: str
    _print: Callable[..., Any]

    @property
    def _float_module(self) -> str:  # type: ignore[override]
        return self._module

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        pieces, default = _pieces(expr)
        if not pieces:
            return str(self._print(default))
        if (
            len(pieces) == 1 and pieces[0][0] == 1 and default == 0
        ):  # an indicator: a cast is 2x faster than a where
            return f"{self._module}.asarray({self._print(pieces[0][1])}, dtype={self._module}.float64)"
        if len(pieces) > _NESTED_WHERE:  # one call, not a nesting Python's parser limits
            conds = ", ".join(str(self._print(c)) for _, c in pieces)
            values = ", ".join(self._as_float(v) for v, _ in pieces)
            return f"{self._module}.select([{conds}], [{values}], {self._as_float(default)})"
        text = self._as_float(default)
        for value, cond in reversed(pieces):
            text = f"{self._module}.where({self._print(cond)}, {self._as_float(value)}, {text})"
        return text

    def _print_extremum(self, expr: Any, ufunc: str) -> str:
        args = [self._print(a) for a in expr.args]
        text = args[0]
        for arg in args[1:]:
            text = f"{self._module}.{ufunc}({text}, {arg})"
        return str(text)

    def _print_Max(self, expr: sympy.Max) -> str:
        return self._print_extremum(expr, "maximum")

    def _print_Min(self, expr: sympy.Min) -> str:
        return self._print_extremum(expr, "minimum")

    def _print_Relational(self, expr: Any) -> str:
        lhs, rhs = (self.parenthesize(a, 40) for a in expr.args)
        return f"({lhs} {expr.rel_op} {rhs})"

    def _print_Cbrt(self, expr: Any) -> str:
        return f"{self._module}.cbrt({self._print(expr.args[0])})"

    def _print_erf(self, expr: Any) -> str:
        return f"scipy_special.erf({self._print(expr.args[0])})"

    def _print_erfc(self, expr: Any) -> str:
        return f"scipy_special.erfc({self._print(expr.args[0])})"

    def _print_loggamma(self, expr: Any) -> str:
        return f"scipy_special.gammaln({self._print(expr.args[0])})"

    def _print_polygamma(self, expr: Any) -> str:
        n, x = (self._print(a) for a in expr.args)
        return f"scipy_special.polygamma({n}, {x})"

    def _print_And(self, expr: Any) -> str:
        return self._print_logical(expr, "logical_and")

    def _print_Or(self, expr: Any) -> str:
        return self._print_logical(expr, "logical_or")

    def _print_logical(self, expr: Any, ufunc: str) -> str:
        # Binary ufuncs broadcast; `logical_and.reduce((a, b))` needs equal shapes. Paired as a
        # balanced tree: a chain of 200 nested calls is a SyntaxError (too many parentheses).
        args = [self._print(a) for a in expr.args]
        while len(args) > 1:
            paired = [f"{self._module}.{ufunc}({a}, {b})" for a, b in zip(args[::2], args[1::2])]
            args = paired + args[len(paired) * 2 :]
        return str(args[0])


class ArrayPrinter(_ArrayPrinting, NumPyPrinter):
    """NumPy code that runs elementwise on arrays (and the array-level operations' own)."""


class JaxArrayPrinter(_ArrayPrinting, JaxPrinter):
    """The elementwise program in `jax.numpy`; kept loops become `jax.lax.scan` (`render_scan`)."""

    def __init__(self) -> None:
        super().__init__()
        # `_jaxcode` (SymPy's): only where a function prints otherwise for JAX than for NumPy
        # (below); the others print themselves for the printer's `_module` (`_numpycode`).
        self.printmethod = "_jaxcode"

    def _print_Function(self, expr: Any) -> str:
        own = getattr(expr, "_numpycode", None)
        return str(own(self)) if own is not None else str(super()._print_Function(expr))

    def _print_Pick(self, expr: Any) -> str:
        # the index is traced in `lax.scan`'s body: no Python int to index a tuple with
        index, *elements = (self._print(arg) for arg in expr.args)
        return f"jax.numpy.stack(jax.numpy.broadcast_arrays({', '.join(elements)}))[{index}]"

    def _print_StackSum(self, expr: Any) -> str:
        # stacks are the arrays `lax.scan` returns, not lists
        return " + ".join(self.parenthesize(a, 40) for a in expr.args)


class CuPyArrayPrinter(_ArrayPrinting, CuPyPrinter):
    """The elementwise program in `cupy` (which runs Python loops as NumPy does)."""

    def __init__(self) -> None:
        super().__init__()
        self.printmethod = "_numpycode"


def _is_square(expr: Any) -> bool:
    return isinstance(expr, sympy.Pow) and expr.args[1] == 2 and expr.args[0].is_Symbol


class ScalarPrinter(_CommonPrinting, PythonCodePrinter):
    """Plain Python on floats (math module): 2-3x faster than NumPy ufuncs on scalars.

    Every value it computes is a float (never an int or a complex), so that floats in give
    floats out; where `math` raises instead of giving inf or nan, the caller reruns NumPy."""

    _float_module = "math"
    _OPERATORS: ClassVar[dict[type, float]] = {
        **_CommonPrinting._OPERATORS,
        Sigmoid: PRECEDENCE["Mul"],  # `1.0/(1.0 + math.exp(-x))` (Sigmoid._pythoncode)
        exp2: PRECEDENCE["Pow"],  # `2.0**x` (_print_exp2)
        sympy.Not: _NOT,  # `not c` (SymPy's PythonCodePrinter)
    }

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        pieces, default = _pieces(expr)
        if not pieces:
            return self._as_float(default)
        # one flat chain `a if c else b if d else e`: conditional expressions nest to the right
        chain = " else ".join(f"{self._as_float(v)} if {self._print(c)}" for v, c in pieces)
        return f"({chain} else {self._as_float(default)})"

    def _print_Integer(self, expr: sympy.Integer) -> str:
        # Float literals: `2.0*t` is ~30% faster than `2*t` on floats (no int conversion).
        return repr(float(expr))

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return repr(float(expr)) if float(expr) == expr else f"{expr.p}.0/{expr.q}.0"

    def _print_extremum(self, expr: Any, name: str) -> str:
        return f"{name}({', '.join(self._as_float(a) for a in expr.args)})"

    def _print_Max(self, expr: sympy.Max) -> str:
        return self._print_extremum(expr, "max")

    def _print_Min(self, expr: sympy.Min) -> str:
        return self._print_extremum(expr, "min")

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        base, exponent = expr.args
        if _is_square(expr):  # float multiply beats float.__pow__; parentheses cost nothing
            return f"({self._print(base)}*{self._print(base)})"
        if exponent.is_Integer or abs(exponent) == sympy.Rational(1, 2):
            return super()._print_Pow(expr, rational=rational)
        # `**` of a negative float and a fractional power is complex in Python; math.pow raises.
        return f"math.pow({self._print(expr.args[0])}, {self._print(exponent)})"

    def _print_loggamma(self, expr: Any) -> str:
        return f"math.lgamma({self._print(expr.args[0])})"

    def _print_polygamma(self, expr: Any) -> str:
        order, x = int(expr.args[0]), self._print(expr.args[1])
        return f"float(scipy_special.polygamma({order}, {x}))"

    def _print_floor(self, expr: Any) -> str:
        return f"float(math.floor({self._print(expr.args[0])}))"

    def _print_ceiling(self, expr: Any) -> str:
        return f"float(math.ceil({self._print(expr.args[0])}))"

    def _print_exp2(self, expr: Any) -> str:
        return f"2.0**{self.parenthesize(expr.args[0], 60)}"

    def _print_Cbrt(self, expr: Any) -> str:
        arg = self._print(expr.args[0])
        return f"math.copysign(abs({arg})**(1/3), {arg})"

    def _print_sign(self, expr: Any) -> str:
        arg = self._print(expr.args[0])
        return f"((0.0 if {arg} == 0 else math.copysign(1.0, {arg})) if {arg} == {arg} else {arg})"


# --- the program: dead-code elimination, CSE, scheduling -----------------------------------------


def live_nodes(graph: Graph, also: Sequence[Any] = ()) -> list[Statement]:
    """The nodes that some output (or a value in `also`) depends on, in order; a loop keeps
    only the carries and stacks that something reads."""
    needed = {o for o in (*graph.outputs, *also) if isinstance(o, sympy.Symbol)}
    kept: list[Statement] = []
    for symbol, expr in reversed(graph.nodes):
        if isinstance(expr, Loop):
            if needed & set(expr.defines()):
                loop = live_loop(expr, needed)
                kept.append((symbol, loop))
                needed |= loop.reads()
            continue
        if isinstance(expr, Multi):  # one call makes all its outputs, read or not
            if needed & set(expr.defines()):
                kept.append((symbol, expr))
                needed |= expr.reads()
            continue
        if symbol in needed:
            kept.append((symbol, expr))
            needed |= expr.free_symbols
    kept.reverse()
    return kept


def live_loop(loop: Loop, needed: set[Any]) -> Loop:
    """`loop` without the carries, stacks and items that nothing needs (a fixed point: a
    carry is needed when a needed value of the next iteration reads it)."""
    carries = {c for c in loop.carries if c in needed}
    stacks = {s for s in loop.stacked if s in needed}
    while True:
        wanted = [u for c, u in zip(loop.carries, loop.updates) if c in carries]
        wanted += [v for s, v in zip(loop.stacked, loop.stacked_values) if s in stacks]
        wanted += [loop.condition] if loop.condition is not None else []
        live = live_nodes(dataclasses.replace(loop.body, outputs=tuple(wanted)))
        read = set().union(*(reads_of(e) for _, e in live), *(reads_of(sympy.sympify(w)) for w in wanted))
        more = {c for c in loop.carries if c in read} - carries
        if not more:
            break
        carries |= more
    keep = [k for k, c in enumerate(loop.carries) if c in carries]
    keep_stacks = [k for k, s in enumerate(loop.stacked) if s in stacks]
    outputs = [loop.updates[k] for k in keep] + [loop.stacked_values[k] for k in keep_stacks]
    items = tuple((i, stack) for i, stack in loop.items if i in read)
    body = dataclasses.replace(
        loop.body,
        nodes=live,
        inputs=(loop.index, *(loop.carries[k] for k in keep), *(i for i, _ in items)),
        outputs=tuple(outputs),
    )
    return dataclasses.replace(
        loop,
        body=body,
        carries=tuple(loop.carries[k] for k in keep),
        init=tuple(loop.init[k] for k in keep),
        items=items,
        stacked=tuple(loop.stacked[k] for k in keep_stacks),
    )


def fold_scaled(graph: Graph, statements: list[Statement]) -> list[Statement]:
    """Substitute a scaled value used once (`t2 = -t1`, then `t3 = t2/2`) into its user, so
    that SymPy merges the constants (`t3 = -t1/2`): one pass over an array instead of two.
    Transposed views used once go inline too (`X.T @ r`)."""
    uses: dict[Any, int] = {}
    order = {symbol: i for i, (symbol, _) in enumerate(statements)}
    for _, expr in statements:
        # a loop reads a value in every iteration, a multi-output call takes names: never folded
        for symbol in reads_of(expr):
            uses[symbol] = uses.get(symbol, 0) + (2 if isinstance(expr, (Loop, Multi)) else 1)
    outputs = set(graph.outputs)
    folded: dict[Any, Any] = {}
    program: list[Statement] = []
    for symbol, expr in statements:
        if isinstance(expr, (Loop, Multi)):
            program.append((symbol, expr))
            continue
        used = expr.free_symbols & folded.keys()
        if used:
            merged = expr.xreplace(folded)
            if merged.free_symbols == (expr.free_symbols - used).union(
                *(folded[u].free_symbols for u in used)
            ):
                expr = merged
            else:  # SymPy cancelled what was substituted (`t2 = -w`, `t3 = t2 + w`: 0, losing
                # `w`'s shape): the folded values keep their own lines, in their order
                program += [(u, folded.pop(u)) for u in sorted(used, key=order.__getitem__)]
        if _cheap(expr) and uses.get(symbol) == 1 and symbol not in outputs:
            folded[symbol] = expr
            continue
        program.append((symbol, expr))
    return program


def _cheap(expr: Any) -> bool:
    """Worth no line of its own when used once: a scaled value, a transposed or reshaped view."""
    return is_scaled_symbol(expr) or (
        isinstance(expr, (Transpose, Reshape)) and isinstance(expr.args[0], sympy.Symbol)
    )


def eliminate_common(
    graph: Graph, statements: list[Statement], names: Names | None = None
) -> list[Statement]:
    """Run SymPy's `cse` jointly over every right-hand side, then place each extracted
    subexpression just before its first user, so that its operands are already defined.

    Where a whole right-hand side was extracted, the extracted value keeps that statement's
    name (`t3 = t2*x`, not `c0 = t2*x; t3 = c0`). A loop splits the program: each stretch
    between loops is one CSE. `names`: the whole program's (a loop body's CSE names its
    values among them)."""
    names = graph.names if names is None else names
    program: list[Statement] = []
    stretch: list[Statement] = []
    for symbol, expr in statements:
        if isinstance(expr, (Loop, Multi)):  # holds no expression to share
            program += _common_in_stretch(stretch, names)
            program.append((symbol, expr))
            stretch = []
        else:
            stretch.append((symbol, expr))
    return program + _common_in_stretch(stretch, names)


def _common_in_stretch(statements: list[Statement], all_names: Names) -> list[Statement]:
    if not statements:
        return []
    names = all_names.copy()
    symbols = (real_symbol(names.temp("c")) for _ in iter(int, 1))
    # SymPy's `cse` first runs `opt_cse`, which looks for common sub-sums and sub-products
    # across expressions: two thirds of the time, and nothing to find in an SSA program whose
    # statements are single operations. `tree_cse` is the rest of `cse` (with no pre- or
    # post-processing configured, `cse` adds nothing else).
    replacements, reduced = tree_cse([expr for _, expr in statements], symbols, opt_subs={})
    if not replacements:
        return statements
    extracted = {symbol for symbol, _ in replacements}
    alias: dict[Any, Any] = {}
    for (symbol, _), expr in zip(statements, reduced):
        if expr in extracted and expr not in alias:
            alias[expr] = symbol
    replacements = [(alias.get(c, c), e.xreplace(alias)) for c, e in replacements]
    reduced = [e.xreplace(alias) for e in reduced]
    first_use = _first_uses(replacements, reduced)
    placed: dict[int, list[Statement]] = {}
    for i, (symbol, _) in enumerate(statements):
        if symbol in alias.values():
            first_use[symbol] = min(first_use.get(symbol, i), i)
    for symbol, expr in replacements:
        placed.setdefault(first_use[symbol], []).append((symbol, expr))
    program: list[Statement] = []
    for i, ((symbol, _), expr) in enumerate(zip(statements, reduced)):
        program.extend(placed.get(i, []))
        if expr != symbol:  # an aliased statement is already in place under its own name
            program.append((symbol, expr))
    all_names.taken |= names.taken
    return program


def _first_uses(replacements: list[Statement], reduced: list[Any]) -> dict[sympy.Symbol, int]:
    first: dict[sympy.Symbol, int] = {}
    for i, expr in enumerate(reduced):
        for symbol in expr.free_symbols:
            first.setdefault(symbol, i)
    for symbol, expr in reversed(replacements):  # a replacement used only by later ones
        for inner in expr.free_symbols:
            if symbol in first:
                first[inner] = min(first.get(inner, first[symbol]), first[symbol])
    return first


# --- source text -------------------------------------------------------------------------------


@dataclass
class Kernel:
    """Generated source for one derivative program, in an array and a scalar flavour.

    Each flavour is compiled on first use: most programs only ever see one of them."""

    name: str
    array_source: str
    scalar: GeneratedFunction | None  # None when the program has array-level operations
    n_outputs: int
    # For float64 arrays (of one shape, for elementwise programs): the array flavour writing
    # into the arrays of dying temporaries (None where no temporary fits).
    inplace_source: str | None = None
    # The array flavour printed for another array module (`array_module`: "jax", "cupy"), when the
    # kernel was emitted for one; None there when the module cannot run the program (see
    # `module_refusal`).
    array_module: str | None = None
    module_source: str | None = None
    module_refusal: str | None = None
    has_loops: bool = False  # the program keeps loops (numba then compiles it however short)
    _compiled: dict[str, Callable[..., Any]] = field(default_factory=dict, repr=False)

    @property
    def scalar_source(self) -> str | None:
        """The plain-Python flavour's source (None for array programs)."""
        return None if self.scalar is None else self.scalar.source

    @property
    def array_fn(self) -> Callable[..., Any]:
        fn = self._compiled.get("array")
        if fn is None:
            fn = self._compiled["array"] = compile_source(self.array_source, self.name)
        return fn

    @property
    def inplace_fn(self) -> Callable[..., Any]:
        """The program for float64 arrays (and Python numbers): reusing temporaries' memory."""
        if self.inplace_source is None:
            return self.array_fn
        fn = self._compiled.get("inplace")
        if fn is None:
            fn = self._compiled["inplace"] = compile_source(self.inplace_source, self.name)
        return fn

    @property
    def scalar_fn(self) -> Callable[..., Any]:
        if self.scalar_source is None:
            return self.array_fn
        fn = self._compiled.get("scalar")
        if fn is None:
            fn = self._compiled["scalar"] = compile_source(self.scalar_source, self.name)
        return fn

    def scope(self) -> dict[str, Any]:
        """Names the scalar flavour reads besides numpy/math (a backend's compiled kernels)."""
        return {}


_HEADER_WIDTH = 100  # a longer signature lists one parameter per line, as black writes it


def _header(name: str, params: tuple[str, ...], doc: str) -> list[str]:
    """The `def` line(s) and docstring of a generated function, from its name and parameters
    (identifiers symgrad chose: nothing to quote)."""
    line = f"def {name}({', '.join(params)}):"
    if len(line) <= _HEADER_WIDTH:
        return [line, f'    """{doc}"""']
    return [f"def {name}(", *(f"    {p}," for p in params), "):", f'    """{doc}"""']


def print_all(printer: Any, program: list[Statement]) -> list[str]:
    """The printed right-hand sides (a loop's body is printed where the loop is rendered; a
    multi-output node's right-hand side is its call)."""
    return [
        "" if isinstance(expr, Loop) else printer.doprint(expr.call if isinstance(expr, Multi) else expr)
        for _, expr in program
    ]


def block_program(body: Graph, names: Names, also: Sequence[Any] = ()) -> list[Statement]:
    """A loop body's statements, as the program's are: live values, folded scalings, CSE."""
    return eliminate_common(body, fold_scaled(body, live_nodes(body, also)), names)


def render_loop(loop: Loop, printer: Any, indent: str, names: Names) -> list[str]:
    """A kept loop as Python: carries set up, stacks allocated, then `for` (or `while`) over
    the body's statements, which end by writing the stacks and carrying the updates."""
    if isinstance(printer, JaxArrayPrinter):
        return render_scan(loop, printer, indent, names)
    inner = indent + "    "
    lines = [f"{indent}{c} = {_loop_value(printer, v)}" for c, v in zip(loop.carries, loop.init) if c != v]
    grows = loop.length is None  # a while loop's stacks grow; a for loop's are allocated
    # (floats in the scalar flavour: numba compiles a list of floats, not of None)
    empty = "0.0" if isinstance(printer, ScalarPrinter) else "None"
    lines += [
        f"{indent}{s} = []" if grows else f"{indent}{s} = [{empty}] * {loop.length}" for s in loop.stacked
    ]
    body: list[str] = [f"{inner}{item} = {stack}[{loop.index}]" for item, stack in loop.items]
    block, computed = _block_lines(loop, printer, inner, names)
    if loop.condition is not None and not computed:
        body += _loop_exit(loop, printer, inner)  # an atom: checked before anything runs
    body += block
    for stack, value in zip(loop.stacked, loop.stacked_values):
        text = printer.doprint(value)
        body.append(f"{inner}{stack}.append({text})" if grows else f"{inner}{stack}[{loop.index}] = {text}")
    moved = [(c, u) for c, u in zip(loop.carries, loop.updates) if c != u]
    if moved:
        targets = ", ".join(str(c) for c, _ in moved)
        body.append(f"{inner}{targets} = {', '.join(_loop_value(printer, u) for _, u in moved)}")
    if loop.length is None:
        lines += [f"{indent}{loop.index} = 0", f"{indent}while True:", *body, f"{inner}{loop.index} += 1"]
        if loop.count is not None:
            lines.append(f"{indent}{loop.count} = {loop.index}")
        return lines
    last_step = loop.length - 1 if isinstance(loop.length, int) else f"{loop.length} - 1"
    steps = f"range({last_step}, -1, -1)" if loop.reverse else f"range({loop.length})"
    if loop.count is not None:  # all iterations, unless its condition fails first
        lines.append(f"{indent}{loop.count} = {loop.length}")
    return [*lines, f"{indent}for {loop.index} in {steps}:", *(body or [f"{inner}pass"])]


def _block_lines(loop: Loop, printer: Any, inner: str, names: Names) -> tuple[list[str], bool]:
    """The body's statements with their source comments (nested loops rendered in place, a
    `while` loop's exit after its condition), and whether the condition is one of them."""
    program = block_program(loop.body, names, [loop.condition] if loop.condition is not None else [])
    texts = print_all(printer, program)
    lines: list[str] = []
    last: tuple[Any, ...] | None = None
    for k, (symbol, expr) in enumerate(program):
        lines += [inner + c for c in _comment(loop.body, symbol, last)]
        last = loop.body.lines.get(symbol, last)
        if isinstance(expr, Loop):
            lines += render_loop(expr, printer, inner, names)
            last = None
        else:
            text = texts[k][1:-1] if _is_square(expr) and isinstance(printer, ScalarPrinter) else texts[k]
            lines.append(f"{inner}{symbol} = {text}")
        if symbol == loop.condition:
            lines += _loop_exit(loop, printer, inner)
    return lines, any(symbol == loop.condition for symbol, _ in program)


def render_scan(loop: Loop, printer: Any, indent: str, names: Names) -> list[str]:
    """A kept loop for `jax.jit` as `jax.lax.scan` over a body function of (carries, items),
    which returns the updated carries and the values for the stacks: jit traces a Python loop
    by running it, one copy of the body per iteration, and compiles for minutes from about a
    thousand. `sg.scan` grows the carries to the shapes their updates have (a sum that starts
    at 0.0 and adds arrays), which `lax.scan` needs from the start."""
    assert loop.condition is None and isinstance(loop.length, int), "while/break: see emit.scan_refusal"
    inner = indent + "    "
    step, carry, item = names.fresh("step"), names.fresh("carry"), names.fresh("item")
    lines = [f"{indent}def {step}({carry}, {item}):"]
    if loop.carries:
        lines.append(f"{inner}{_tuple_text(str(c) for c in loop.carries)} = {carry}")
    lines.append(f"{inner}{_tuple_text([str(loop.index), *(str(i) for i, _ in loop.items)])} = {item}")
    block, _ = _block_lines(loop, printer, inner, names)
    updates = _tuple_text(_loop_value(printer, u) for u in loop.updates)
    stacked = _tuple_text(printer.doprint(v) for v in loop.stacked_values)
    lines += [*block, f"{inner}return {updates}, {stacked}"]
    starts = _tuple_text(_loop_value(printer, v) for v in loop.init)
    steps = _tuple_text([f"jax.numpy.arange({loop.length})", *(str(stack) for _, stack in loop.items)])
    results = f"{_tuple_text(str(c) for c in loop.carries)}, {_tuple_text(str(s) for s in loop.stacked)}"
    call = f"sg.scan({step}, {starts}, {steps}, reverse={loop.reverse})"
    return [*lines, f"{indent}{results} = {call}"]


def _tuple_text(items: Iterable[str]) -> str:
    """A tuple display (of one item: `(a,)`; of none: `()`), also valid as a target list."""
    items = list(items)
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def scan_refusal(program: list[Statement]) -> str | None:
    """Why `jax.lax.scan` cannot run one of the program's kept loops (a `while`, or a `for`
    with a `break`: their trip counts come from traced values), else None."""
    for _, expr in program:
        if isinstance(expr, Loop):
            if expr.condition is not None or not isinstance(expr.length, int):
                return "while"
            inner = scan_refusal(expr.body.nodes)
            if inner is not None:
                return inner
    return None


def _loop_exit(loop: Loop, printer: Any, indent: str) -> list[str]:
    condition = printer.doprint(loop.condition)
    if isinstance(printer, _ArrayPrinting):  # on arrays, one condition for all elements is needed
        file, line, col = (*loop.line, 1)[:3] if loop.line else ("?", 0, 1)
        condition = f"sg.while_condition({condition}, {file!r}, {line}, {col})"
    # a `for` loop that stops early (a `break`) counts the iterations it ran
    counted = [f"{indent}    {loop.count} = {loop.index}"] if loop.length is not None and loop.count else []
    return [f"{indent}if not {condition}:", *counted, f"{indent}    break"]


def _loop_value(printer: Any, value: Any) -> str:
    """A carry's value: numbers as floats (a sum that starts at 0 is a float sum)."""
    value = sympy.sympify(value)
    return str(printer._float_text(value)) if value.is_Number else str(printer.doprint(value))


def source_note(graph: Graph, symbol: sympy.Symbol, last: tuple[Any, ...] | None) -> str | None:
    """`line 6 (derivative): s = s + np.sin(x * i) * y`: the user's line that `symbol`'s
    statement comes from, where it differs from `last` (the previous statement's), else None.
    The generated Python and the exported C put it in a comment before the statement."""
    line = graph.lines.get(symbol)
    if line is None or line == last:
        return None
    text = linecache.getline(line[0], line[1]).strip()
    label = f" ({line[2]})" if len(line) > 2 else ""
    return f"line {line[1]}{label}: {text}" if text else None


def _comment(graph: Graph, symbol: sympy.Symbol, last: tuple[Any, ...] | None) -> Iterator[str]:
    note = source_note(graph, symbol, last)
    if note is not None:
        yield f"# {note}"


def _skipped(graph: Graph) -> Iterator[str]:
    """Comments for the statements of the function that the generated code does not run."""
    for filename, lineno in dict.fromkeys(graph.skipped):  # once each, in order
        text = linecache.getline(filename, lineno).strip()
        yield f"# line {lineno}: {text}  (skipped: no numeric effect)"


def _unrolled(graph: Graph) -> Iterator[str]:
    """Comments for the loops that were unrolled though long, with why."""
    for filename, lineno, reason in dict.fromkeys(graph.unrolled_loops):
        text = linecache.getline(filename, lineno).strip()
        yield f"# line {lineno}: {text}  (unrolled: {reason})"


def dead_after(graph: Graph, program: list[Statement]) -> dict[int, list[sympy.Symbol]]:
    """Temporaries whose last use is statement i: deleting them there lets NumPy reuse the
    memory (on large arrays, keeping every temporary alive made a gradient 7x the cost of f)."""
    keep = set(graph.inputs) | {o for o in graph.outputs if isinstance(o, sympy.Symbol)}
    last: dict[sympy.Symbol, int] = {}
    for i, (symbol, expr) in enumerate(program):
        for made in defined_by(symbol, expr):
            last.setdefault(made, i)  # a value never read is dead right after it is made
        for used in reads_of(expr):
            last[used] = i
    dead: dict[int, list[sympy.Symbol]] = {}
    for symbol, i in last.items():
        if symbol not in keep:
            dead.setdefault(i, []).append(symbol)
    return {i: sorted(symbols, key=str) for i, symbols in dead.items()}


@dataclass(frozen=True)
class GeneratedFunction:
    """A generated function by its parts, which the entry point (`entry_function`) and numba's
    module inline into functions of their own."""

    name: str
    params: tuple[str, ...]
    doc: str
    body: tuple[str, ...]  # its lines between the docstring and the return, indented
    outputs: tuple[str, ...]  # the returned expressions
    indent: str = "    "  # the return's: inside `with numpy.errstate(...)` where guarded

    @property
    def returned(self) -> str:
        """The returned tuple: `(a,)`, `(a, b)`."""
        return f"({self.outputs[0]},)" if len(self.outputs) == 1 else f"({', '.join(self.outputs)})"

    @functools.cached_property
    def source(self) -> str:
        header = _header(self.name, self.params, self.doc)
        return "\n".join([*header, *self.body, f"{self.indent}return {self.returned}"]) + "\n"

    def record(self) -> dict[str, Any]:
        """As JSON for the persistent cache."""
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> GeneratedFunction:
        return cls(
            name=record["name"],
            params=tuple(record["params"]),
            doc=record["doc"],
            body=tuple(record["body"]),
            outputs=tuple(record["outputs"]),
            indent=record["indent"],
        )


def render(
    graph: Graph,
    program: list[Statement],
    name: str,
    doc: str,
    printer: Any,
    guard: bool,
    texts: list[str] | None = None,
    reuse: bool = False,
) -> GeneratedFunction:
    """`def name(params): ...` computing `graph.outputs` with `program` (whose right-hand
    sides `texts` are, when already printed), by its parts (`.source` is its text).

    The array flavour frees each temporary after its last use (`del t3`); with `reuse` (the
    flavour run on float64 arrays), an operation writes into the array of
    a temporary that dies there (`numpy.add(b, t0, out=t0)`) where one fits."""
    lines = [f"    {comment}" for comment in _skipped(graph)]
    lines += [f"    {comment}" for comment in _unrolled(graph)]
    indent = "    "
    if guard:
        lines.append('    with numpy.errstate(all="ignore"):  # branches not taken may overflow')
        indent = "        "
    # what dies at each statement; `del` lines for all but the last (returning frees them)
    dying = dead_after(graph, program) if isinstance(printer, _ArrayPrinting) else {}
    dead = {i: symbols for i, symbols in dying.items() if i != len(program) - 1}
    if texts is None:
        texts = print_all(printer, program)
    skip: set[int] = set()
    if reuse:
        texts, skip, dead = reuse_buffers(graph, program, texts, printer, dying, dead)
    last: tuple[Any, ...] | None = None
    for i, (symbol, expr) in enumerate(program):
        if i in skip:
            continue
        for comment in _comment(graph, symbol, last):
            lines.append(indent + comment)
        last = graph.lines.get(symbol, last)
        if isinstance(expr, Loop):
            lines += render_loop(expr, printer, indent, graph.names)
            last = None
            if i in dead:
                lines.append(f"{indent}del {', '.join(str(s) for s in dead[i])}")
            continue
        text = texts[i]
        if _is_square(expr) and isinstance(printer, ScalarPrinter):
            text = text[1:-1]  # `t2 = x*x`: no parentheses needed at the top
        targets = ", ".join(str(s) for s in defined_by(symbol, expr))  # `sign, logabsdet = ...`
        lines.append(f"{indent}{targets} = {text}")
        if i in dead:
            lines.append(f"{indent}del {', '.join(str(s) for s in dead[i])}")
    definitions = dict(program)
    outputs = tuple(_print_output(printer, o, definitions.get(o, o)) for o in graph.outputs)
    params = tuple(str(s) for s in graph.inputs)
    return GeneratedFunction(name, params, doc, tuple(lines), outputs, indent)


# --- reusing the memory of dying temporaries (the flavour for float64 arrays) ----------------------
#
# A pass over the statements: an operation that the printed code would run into a fresh array
# runs as its NumPy ufunc writing into the array of a temporary that dies there (`Into`). Each
# operation is taken apart as the array printer writes it (the order of a sum's terms, a
# product's numerator and denominator), so both flavours compute the same bits.


class Into(sympy.Basic):
    """`numpy.<ufunc>(*operands, out=target)`; args: the ufunc's name (a `Str`), the target,
    the operands. Only ever printed: a plain `Basic`, which is made in a tenth of the time a
    `Function` takes (no evaluation, no assumptions)."""

    @classmethod
    def call(cls, ufunc: str, target: sympy.Symbol, *operands: Any) -> Into:
        return cls(Str(ufunc), target, *operands)

    def _numpycode(self, printer: Any) -> str:
        ufunc, target, *operands = self.args
        parts = ", ".join(str(printer._print(operand)) for operand in operands)
        return f"numpy.{ufunc.name}({parts}, out={printer._print(target)})"


# SymPy functions whose printed array code is one call of this NumPy ufunc on their arguments,
# in order (tests/test_arrays.py checks each against the printer).
_UFUNCS: dict[type, str] = {
    sympy.exp: "exp",
    expm1: "expm1",
    exp2: "exp2",
    sympy.log: "log",
    log1p: "log1p",
    log2: "log2",
    log10: "log10",
    sympy.sin: "sin",
    sympy.cos: "cos",
    sympy.tan: "tan",
    sympy.asin: "arcsin",
    sympy.acos: "arccos",
    sympy.atan: "arctan",
    sympy.atan2: "arctan2",
    sympy.sinh: "sinh",
    sympy.cosh: "cosh",
    sympy.tanh: "tanh",
    sympy.asinh: "arcsinh",
    sympy.acosh: "arccosh",
    sympy.atanh: "arctanh",
    hypot: "hypot",
    Cbrt: "cbrt",
    LogAddExp: "logaddexp",
    sympy.floor: "floor",
    sympy.ceiling: "ceil",
    sympy.sign: "sign",
    sympy.Mod: "mod",
    sympy.Abs: "absolute",  # printed `abs(x)`, which runs it
}
# Printed as a left fold of the binary ufunc over their arguments.
_EXTREMA: dict[type, str] = {sympy.Max: "maximum", sympy.Min: "minimum"}
# Array operations whose result never shares memory with an operand; the others may give a
# view (reshape, broadcast, transpose, indexing, and `sum_to`, which reshapes when no axis sums,
# unless it sums to a number).
_FRESH_OPS = (
    Reduction,
    MatMul,
    Outer,
    Trace,
    Eye,
    Full,
    Constant,
    Scatter,
    SetItem,
    Stack,
    Concatenate,
    AsArray,
)
# Array operations whose result is float64 when an operand is.
_FLOAT64_OPS = (
    Reshape,
    Broadcast,
    Transpose,
    Index,
    SumTo,
    ArraySum,
    ArrayProd,
    ArrayExtremum,
    MatMul,
    Outer,
    Scatter,  # zeros of float64 (or of the value's type, if wider) holding the value
)
# Functions printed as their first argument alone.
_TRANSPARENT = (StopGradient, CustomDerivative)


@dataclass
class _Buffers:
    """What the program knows about the memory behind each value, for writing into it.

    `shapes`: of every value (and of the subexpressions met since); `float64`: values known to
    hold float64 arrays (the flavour runs only when every array argument is one); `owned`:
    values whose array no other value or view shares, so that writing into it once it is dead
    is invisible."""

    shapes: dict[Any, Shape]
    float64: set[Any]
    owned: set[Any]


def _printed(expr: Any) -> Any:
    """What the printer writes for `expr`: `stop_gradient(e)` and a custom derivative as `e`."""
    while isinstance(expr, _TRANSPARENT):
        expr = expr.args[0]
    return expr


def _is_elementwise(expr: Any) -> bool:
    """Arithmetic, a ufunc function or an extremum: a fresh array, float64 if an operand is."""
    return (
        isinstance(expr, (sympy.Add, sympy.Mul, sympy.Pow)) or type(expr) in _UFUNCS or type(expr) in _EXTREMA
    )


def _makes_fresh(expr: Any) -> bool:
    """Whether the printed `expr` gives a new array (never a view or another value's array)."""
    expr = _printed(expr)
    if _is_elementwise(expr) or isinstance(expr, Relational):
        return True
    if isinstance(expr, sympy.Piecewise):
        return bool(_pieces(expr)[0])  # `where` or `select`; with no piece it prints its default
    return isinstance(expr, _FRESH_OPS) or (isinstance(expr, SumTo) and not expr.params)


def _is_float64(expr: Any, float64: set[Any]) -> bool:
    """Conservatively: whether the array `expr` computes is float64."""
    expr = _printed(expr)
    if expr.is_Symbol:
        return expr in float64
    if isinstance(expr, ArrayOp):
        return isinstance(expr, _FLOAT64_OPS) and any(_is_float64(o, float64) for o in expr.operands)
    return _is_elementwise(expr) and any(_is_float64(a, float64) for a in expr.args)


def buffers_of(graph: Graph, program: list[Statement]) -> _Buffers:
    """Shapes, float64-ness and ownership of every value of a shape-specialised program."""
    assert graph.shapes is not None
    shapes: dict[Any, Shape] = {symbol: tuple(shape) for symbol, shape in graph.shapes.items()}
    for symbol, expr in program:
        if symbol not in shapes:
            shapes[symbol] = tuple(shape_of(expr, shapes))
    float64 = {symbol for symbol in graph.inputs if shapes.get(symbol)}
    owned: set[Any] = set()
    shared: set[Any] = set()
    for symbol, expr in program:
        # a view of a float64 array (`x[:-1]`) is float64 too: what is computed from it is
        if shapes[symbol] and _is_float64(expr, float64):
            float64.add(symbol)
        if not _makes_fresh(expr):  # a view or the same array under another name, maybe
            shared |= reads_of(expr)
        elif shapes[symbol]:
            owned.add(symbol)
    return _Buffers(shapes, float64, owned - shared - set(graph.outputs))


def _shape(expr: Any, shapes: dict[Any, Shape]) -> Shape:
    """The shape of any expression of the program's values (remembered in `shapes`)."""
    found = shapes.get(expr)
    if found is None:
        printed = _printed(expr)  # a custom derivative's partials, never computed, shape nothing
        if printed is not expr:
            found = _shape(printed, shapes)
        elif isinstance(expr, ArrayOp):
            found = tuple(expr.shape([_shape(o, shapes) for o in expr.operands]))
        else:  # elementwise; a number or a constant has no arguments: ()
            found = _broadcast({_shape(a, shapes) for a in expr.args})
        shapes[expr] = found
    return found


def _broadcast(shapes: set[Shape]) -> Shape:
    """The shape that operands of `shapes` broadcast to (most often all have one shape)."""
    if len(shapes) == 1:
        return next(iter(shapes))
    return tuple(np.broadcast_shapes(*shapes))


def _occurrences(expr: Any, symbol: sympy.Symbol) -> int:
    """How often the printed `expr` reads `symbol` (a repeated subexpression counts each time)."""
    if expr.is_Symbol:
        return int(expr == symbol)
    return sum(_occurrences(a, symbol) for a in expr.args)


@dataclass(frozen=True)
class _Call:
    """An operation the printed code runs as one ufunc call on `args`."""

    ufunc: str
    args: Sequence[Any]


@dataclass(frozen=True)
class _Fold:
    """An operation the printed code evaluates left to right: `items[0]`, then item k brought
    into the running value by `ufuncs[k - 1]`; `head(k)` prints as the part before item k."""

    items: Sequence[Any]
    ufuncs: Sequence[str]
    head: Callable[[int], Any]


def _operation(expr: Any) -> _Call | _Fold | None:
    """The outermost operation of `expr` as the array printer writes it, where ufuncs run it."""
    if isinstance(expr, sympy.Add):
        return _sum(expr)
    if isinstance(expr, sympy.Mul):
        return _product(expr)
    if isinstance(expr, sympy.Pow):
        return _power(*expr.args)
    if type(expr) in _UFUNCS:
        return _Call(_UFUNCS[type(expr)], expr.args)
    if type(expr) in _EXTREMA:
        args, extremum = expr.args, type(expr)
        return _Fold(
            args, [_EXTREMA[extremum]] * (len(args) - 1), lambda k: extremum(*args[:k], evaluate=False)
        )
    return None


def _sum(expr: sympy.Add) -> _Fold:
    """`a + b - c` in the order `_CommonPrinting._print_Add` writes the terms: positive first."""
    keys = {t: (t.could_extract_minus_sign(), sympy.default_sort_key(t)) for t in expr.args}
    terms = sorted(expr.args, key=keys.__getitem__)
    negative = [keys[t][0] for t in terms[1:]]
    items = [terms[0], *(-t if minus else t for t, minus in zip(terms[1:], negative))]
    ufuncs = ["subtract" if minus else "add" for minus in negative]
    return _Fold(items, ufuncs, lambda k: sympy.Add(*terms[:k], evaluate=False) if k > 1 else terms[0])


def _product(expr: sympy.Mul) -> _Call | _Fold:
    """`-a*b/(c*d)` as the printers write it: the sign on the first factor (`(-a)*b`), the
    numerator left to right, then one division by the product of the denominators."""
    coeff, rest = expr.as_coeff_Mul()
    sign = [sympy.S.NegativeOne] if coeff < 0 else []
    positive = _keep_coeff(-coeff, rest) if sign else expr
    if sign and not isinstance(positive, sympy.Mul):
        return _Call("negative", [positive])  # `-x`, `-(1/x)`
    top, bottom = [], []
    for factor in positive.as_ordered_factors():  # split as CodePrinter._print_Mul splits them
        if factor.is_commutative and factor.is_Pow and factor.exp.is_Rational and factor.exp.is_negative:
            bottom.append(sympy.Pow(factor.base, -factor.exp, evaluate=bool(factor.exp == -1)))
        else:
            top.append(factor)
    top = top or [sympy.S.One]
    first = top[0]
    if sign:  # a number takes the sign: `-2*x` multiplies by -2
        first = -first if first.is_Number else sympy.Mul(-1, first, evaluate=False)
    items, ufuncs = [first, *top[1:]], ["multiply"] * (len(top) - 1)
    if bottom:  # factors sort by their base first: a product of their own keeps their order
        items.append(sympy.Mul(*bottom, evaluate=False) if len(bottom) > 1 else bottom[0])
        ufuncs.append("divide")
    return _Fold(items, ufuncs, lambda k: sympy.Mul(*sign, *top[:k], evaluate=False) if k > 1 else first)


def _power(base: Any, exponent: Any) -> _Call | None:
    """`x**n` as the printers write it, and what NumPy runs for it."""
    if exponent.is_Integer and exponent < 0:  # `1/x**2` (`_CommonPrinting._print_Pow`)
        return _Call(
            "divide", [sympy.S.One, base if exponent == -1 else sympy.Pow(base, -exponent, evaluate=False)]
        )
    if exponent == -sympy.S.Half:  # `1/numpy.sqrt(x)`
        return _Call("divide", [sympy.S.One, sympy.Pow(base, sympy.S.Half, evaluate=False)])
    if not exponent.is_Number:
        return _Call("power", [base, exponent])
    value = float(exponent)
    if value in (2.0, 0.5):  # `x**2` runs numpy.square; `x**0.5` and `numpy.sqrt(x)` the root
        return _Call("square" if value == 2.0 else "sqrt", [base])
    if value in (-1.0, 0.0, 1.0, -0.5):  # other exponents NumPy's `**` runs without numpy.power
        return None
    return _Call("power", [base, exponent])


def _holding(items: Sequence[Any], target: sympy.Symbol) -> int:
    """The position of the item that reads `target`."""
    return next(k for k, item in enumerate(items) if _reads(item, target))


def _reads(expr: Any, symbol: sympy.Symbol) -> bool:
    if expr.is_Symbol:
        return bool(expr == symbol)
    return bool(expr.args) and symbol in expr.free_symbols  # a number has no free symbols to collect


def _in_place(expr: Any, target: sympy.Symbol, buffers: _Buffers) -> tuple[Any, int]:
    """`expr` with every operation on the way down to `target` (read once by `expr`) written
    into `target`'s array (`numpy.multiply(a, t3, out=t3)`), and how many operations are."""
    printed = _printed(expr)
    if printed == target or _shape(expr, buffers.shapes) != buffers.shapes[target]:
        return expr, 0
    if printed is not expr and not _reads(printed, target):  # read by what is not printed
        return expr, 0
    operation = _operation(printed)
    if isinstance(operation, _Call):
        parts = list(operation.args)
        k = _holding(parts, target)
        parts[k], depth = _in_place(parts[k], target, buffers)
        return Into.call(operation.ufunc, target, *parts), depth + 1
    if isinstance(operation, _Fold):
        k = _holding(operation.items, target)
        # from item k on, every running value has the target's shape (it holds the target, and
        # the whole has that shape) unless the target reaches item k through a reduction
        if _shape(operation.items[k], buffers.shapes) == buffers.shapes[target]:
            return _fold_in_place(operation, k, target, buffers)
    return expr, 0


def _fold_in_place(fold: _Fold, k: int, target: sympy.Symbol, buffers: _Buffers) -> tuple[Any, int]:
    """`fold` written into `target` from its item k (which holds `target`) on."""
    value, depth = _in_place(fold.items[k], target, buffers)
    if k:
        value, depth = Into.call(fold.ufuncs[k - 1], target, fold.head(k), value), depth + 1
    for ufunc, item in zip(fold.ufuncs[k:], fold.items[k + 1 :]):
        value, depth = Into.call(ufunc, target, value, item), depth + 1
    return value, depth


def _deepest(
    expr: Any, shape: Shape, dying: Sequence[sympy.Symbol], buffers: _Buffers
) -> tuple[sympy.Symbol, Any, int] | None:
    """Of the dying temporaries `expr` may compute into (of `shape`, float64, owned, read once
    by `expr`), the one that the most operations write into: it, `expr` so written, and how
    many (the first of equals, in `dying`'s order)."""
    best = None
    for target in dying:
        if (
            target in buffers.owned
            and target in buffers.float64
            and buffers.shapes[target] == shape
            and _occurrences(expr, target) == 1
        ):
            rewritten, depth = _in_place(expr, target, buffers)
            if best is None or depth > best[2]:
                best = (target, rewritten, depth)
    return best


def reuse_buffer(symbol: sympy.Symbol, expr: Any, dying: Sequence[sympy.Symbol], buffers: _Buffers) -> Any:
    """`expr` computing into the array of a temporary that dies there, where one fits, else
    `expr`: large temporaries then cost no fresh memory, which the C library would fetch from
    (and return to) the system each call."""
    best = _deepest(expr, buffers.shapes[symbol], dying, buffers)
    return expr if best is None or not best[2] else best[1]


def fold_outer_products(
    program: list[Statement], dying: dict[int, list[sympy.Symbol]], buffers: _Buffers
) -> tuple[dict[int, Any], set[int], dict[sympy.Symbol, int]]:
    """`t = numpy.outer(a, b)` read once, by a product `x*t` where `x` can be computed into a
    dying temporary, becomes `x * a[:, None] * b` there, written into that temporary: the outer
    product's array is never made (the backward pass of `h @ w` in a network's last layer).
    Products are regrouped, so the result may differ from the plain flavour's in the last bit.

    Returns the rewritten readers by position, the positions of the folded outer products, and
    the operands that died before their reader, which now reads them last, with its position."""
    outers = {symbol: i for i, (symbol, expr) in enumerate(program) if isinstance(expr, Outer)}
    readers: dict[sympy.Symbol, list[int]] = {symbol: [] for symbol in outers}
    for j, (_, expr) in enumerate(program):
        for symbol in reads_of(expr) & outers.keys():
            readers[symbol].append(j)
    death = {symbol: i for i, symbols in dying.items() for symbol in symbols}
    rewritten: dict[int, Any] = {}
    skip: set[int] = set()
    moved: dict[sympy.Symbol, int] = {}
    for symbol, i in outers.items():
        a, b = program[i][1].operands
        if symbol not in buffers.owned or len(readers[symbol]) != 1 or not _vectors(a, b, buffers):
            continue
        j = readers[symbol][0]
        folded = None if j in rewritten else _folded(program[j], symbol, a, b, dying.get(j, []), buffers)
        if folded is not None:
            rewritten[j] = folded
            skip.add(i)
            moved.update({operand: j for operand in (a, b) if death.get(operand, j) < j})
    return rewritten, skip, moved


def _vectors(a: Any, b: Any, buffers: _Buffers) -> bool:
    return all(isinstance(v, sympy.Symbol) and len(buffers.shapes[v]) == 1 for v in (a, b))


def _folded(
    statement: Statement, outer: sympy.Symbol, a: Any, b: Any, dying: list[sympy.Symbol], buffers: _Buffers
) -> Any | None:
    """`statement`, if it is a product `x*outer` (the outer product of `a` and `b`), as
    `x * a[:, None] * b` written into a dying temporary that `x` reads; else None."""
    symbol, use = statement
    if not isinstance(use, sympy.Mul) or outer not in use.args or _occurrences(use, outer) != 1:
        return None
    other = sympy.Mul(*(factor for factor in use.args if factor != outer))
    shape = buffers.shapes[symbol]
    best = _deepest(other, shape, dying, buffers) if _shape(other, buffers.shapes) == shape else None
    if best is None:
        return None  # nothing to compute into: the plain outer product is as good
    target, value, _ = best
    column = Index.make([a], (("slice", None, None, None), None))  # `a[:, None]`
    return Into.call("multiply", target, Into.call("multiply", target, value, column), b)


def _move_deletions(
    dead: dict[int, list[sympy.Symbol]], gone: set[sympy.Symbol], moved: dict[sympy.Symbol, int], end: int
) -> dict[int, list[sympy.Symbol]]:
    """`del` lines after fold_outer_products: none for the folded values, and later ones for
    values it made live longer (none at the last statement: returning frees everything)."""
    result: dict[int, list[sympy.Symbol]] = {}
    for i, symbols in dead.items():
        for symbol in symbols:
            if symbol not in gone and symbol not in moved:
                result.setdefault(i, []).append(symbol)
    for symbol, i in moved.items():
        if i != end:
            result.setdefault(i, []).append(symbol)
    return {i: sorted(symbols, key=str) for i, symbols in result.items()}


def reuse_buffers(
    graph: Graph,
    program: list[Statement],
    texts: list[str],
    printer: Any,
    dying: dict[int, list[sympy.Symbol]],
    dead: dict[int, list[sympy.Symbol]],
) -> tuple[list[str], set[int], dict[int, list[sympy.Symbol]]]:
    """The flavour for float64 arrays: its printed right-hand sides (outer products folded into
    their reader, operations written into dying temporaries), the statements it leaves out,
    and its `del` lines."""
    buffers = buffers_of(graph, program)
    rewritten, skip, moved = fold_outer_products(program, dying, buffers)
    for i, (symbol, expr) in enumerate(program):
        if i not in rewritten and i not in skip:
            # an operand of a folded outer product lives on: nothing writes into it
            free = [s for s in dying.get(i, []) if s not in moved]
            written = reuse_buffer(symbol, expr, free, buffers)
            if written is not expr:
                rewritten[i] = written
    texts = list(texts)
    for i, written in rewritten.items():
        texts[i] = printer.doprint(written)
    if skip:
        dead = _move_deletions(dead, {program[i][0] for i in skip}, moved, len(program) - 1)
    return texts, skip, dead


def _print_output(printer: Any, output: Any, definition: Any) -> str:
    # On floats every result must be a float: constants and integer-valued functions are cast.
    if isinstance(printer, ScalarPrinter):
        if getattr(output, "is_Number", False):
            return str(printer._float_text(output))
        if definition.has(
            sympy.floor, sympy.ceiling, Round, sympy.Mod, sympy.Piecewise, sympy.Max, sympy.Min
        ):
            return f"float({printer.doprint(output)})"
    return str(printer.doprint(output))


def _scipy_special() -> Any:
    try:
        import scipy.special
    except ImportError:  # optional: only programs using scipy.special functions need it
        return None
    return scipy.special


def compile_source(source: str, name: str, extra: dict[str, Any] | None = None) -> Callable[..., Any]:
    """Compile generated source under a stable file name registered in `linecache`, so that
    `inspect.getsource`, tracebacks and debuggers can show it."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    filename = f"<symgrad:{name}:{digest}>"
    # mtime None: linecache.checkcache would otherwise drop an entry with no file behind it.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {} if extra is None else extra  # the function's globals: callers may update it
    namespace.update(numpy=np, math=math, sg=runtime, scipy_special=_scipy_special())
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]  # type: ignore[no-any-return]


def _expressions(program: list[Statement]) -> Iterator[Any]:
    """Every right-hand side of the program, in loop bodies too."""
    for _, expr in program:
        if isinstance(expr, Loop):
            yield from _expressions(expr.body.nodes)
        else:
            yield expr.call if isinstance(expr, Multi) else expr


def _computes_in_branches(expr: Any) -> bool:
    # `where` evaluates both sides: a branch holding a computation may warn where not taken.
    return any(
        not value.is_Number for piecewise in expr.atoms(sympy.Piecewise) for value, _ in piecewise.args
    )


# Long elementwise programs (unrolled loops: W4, W5) are mostly called on floats, which never
# run the flavour that reuses temporaries; working it out costs about 35 us a statement (W4 at
# D = 200, 1,900 statements: 70 ms on top of a 250 ms decoration, in CPU time without garbage
# collection; re-parsing the printed lines, as this once did, took 100 ms), so past this many
# statements they go without it.
_INPLACE_ELEMENTWISE_LIMIT = 256


# The printers of the array modules a kernel can be emitted for besides NumPy.
MODULE_PRINTERS: dict[str, Callable[[], Any]] = {"jax": JaxArrayPrinter, "cupy": CuPyArrayPrinter}


def emit(graph: Graph, name: str, doc: str, module: str | None = None) -> Kernel:
    """CSE the graph's program, print both flavours (and, for `module`, the array flavour in
    that array module) and compile them."""
    program = eliminate_common(graph, fold_scaled(graph, live_nodes(graph)))
    expressions = list(_expressions(program))
    has_branches = any(_computes_in_branches(expr) for expr in expressions)
    # complex arguments run as NumPy code only (the plain-Python flavour computes with floats)
    takes_complex = any(map(is_complex_symbol, (*graph.inputs, *(s for s, _ in graph.nodes))))
    printer = ArrayPrinter()
    printer.complex_values = takes_complex
    texts = print_all(printer, program)
    array_source = render(graph, program, name, doc, printer, guard=has_branches, texts=texts).source
    has_arrays = any(isinstance(expr, ArrayOp) for expr in expressions)
    has_loops = any(isinstance(expr, Loop) for _, expr in program)
    # (reusing buffers reads every statement as one assignment: not a multi-output call's)
    straight = not any(isinstance(expr, (Loop, Multi)) for _, expr in program)
    shaped = graph
    if not straight:
        pass  # reusing temporaries' memory is for straight-line programs
    elif graph.shapes is None and not has_arrays and len(program) <= _INPLACE_ELEMENTWISE_LIMIT:
        # Elementwise: the entry point runs this flavour only on float64 arrays of one shape
        # (not 0-d), where every temporary that reads an input has that shape: a stand-in
        # shape for the inputs tells the rewriting everything it needs.
        shaped = dataclasses.replace(graph, shapes={symbol: (2,) for symbol in graph.inputs})
    inplace_source = None
    if shaped.shapes is not None and straight:
        inplace_source = render(
            shaped, program, name, doc, printer, has_branches, texts=texts, reuse=True
        ).source
        if inplace_source == array_source:
            inplace_source = None
    scalar = (
        None
        if has_arrays or takes_complex
        else render(graph, program, name, doc, ScalarPrinter(), guard=False)
    )
    module_source, refusal = None, None
    if module is not None and not has_arrays:  # other modules run elementwise programs only
        refusal = scan_refusal(program) if module == "jax" else None
        if refusal is None:  # neither library warns where NumPy needs `errstate`
            module_source = render(graph, program, name, doc, MODULE_PRINTERS[module](), guard=False).source
    return Kernel(
        name=name,
        array_source=array_source,
        scalar=scalar,
        has_loops=has_loops,
        n_outputs=len(graph.outputs),
        inplace_source=inplace_source,
        array_module=module,
        module_source=module_source,
        module_refusal=refusal,
    )


def kernel_record(kernel: Kernel) -> dict[str, Any]:
    """What the persistent cache stores of a kernel: its name and its sources."""
    return {
        "name": kernel.name,
        "array_source": kernel.array_source,
        "scalar": None if kernel.scalar is None else kernel.scalar.record(),
        "has_loops": kernel.has_loops,
        "n_outputs": kernel.n_outputs,
        "inplace_source": kernel.inplace_source,
        "array_module": kernel.array_module,
        "module_source": kernel.module_source,
        "module_refusal": kernel.module_refusal,
    }


def load_kernel(record: dict[str, Any]) -> Kernel:
    """Compile a kernel from its stored sources (a persistent-cache hit)."""
    name = record["name"]
    return Kernel(
        name=name,
        array_source=record["array_source"],
        scalar=None if record["scalar"] is None else GeneratedFunction.from_record(record["scalar"]),
        has_loops=record["has_loops"],
        n_outputs=record["n_outputs"],
        inplace_source=record.get("inplace_source"),
        array_module=record.get("array_module"),
        module_source=record.get("module_source"),
        module_refusal=record.get("module_refusal"),
    )


_ARRAY_ENTRY_LIMIT = 256


def _array_branch(params: Sequence[str], n_outputs: int, result: Callable[[list[str]], str]) -> list[str]:
    """Entry-point lines for float64 arrays of one shape: the program's fresh results are
    returned as they are; anything else (a constant, a view, an input) is shaped by
    `_finish_arrays`."""
    arrays = " and ".join(
        f"type({p}) is _ndarray and {p}.dtype is _float64"
        + (f" and {p}.shape == {params[0]}.shape" if i else "")
        for i, p in enumerate(params)
    )
    names = [f"_o{i}" for i in range(n_outputs)]
    fresh = " and ".join(
        f"type({o}) is _ndarray and {o}.base is None and {o}.shape == {params[0]}.shape"
        + "".join(f" and {o} is not {p}" for p in params)
        for o in names
    )
    call = ", ".join(params)
    return [
        f"    if {arrays}:",
        # 0-d arrays give NumPy scalars, which no operation can write into
        f"        _raw = (_inplace_program if {params[0]}.ndim else _array_program)({call})",
        f"        {', '.join(names)}, = _raw",
        f"        if {fresh}:",
        f"            return {result(names)}",
        f"        return _finish_arrays(_raw, {call})",
    ]


def entry_function(
    kernel: Kernel,
    params: Sequence[str],
    defaults: dict[str, Any],
    result: Callable[[list[str]], str],
    general: Callable[..., Any],
    finish_arrays: Callable[..., Any],
) -> Callable[..., Any]:
    """The entry point of a compiled derivative, for the two common cases:

    - Python floats: the scalar program inlined behind a type check (one Python frame per
      call: on Rosenbrock this is what brings a gradient call close to hand-written code);
    - float64 arrays of one shape: the NumPy program, whose fresh results are returned as
      they are (`finish_arrays` shapes any other result).

    `result` arranges the output names into the final value; anything else goes to `general`."""
    assert kernel.scalar is not None  # elementwise programs only
    body, outputs = list(kernel.scalar.body), list(kernel.scalar.outputs)
    if not any(line.strip() and not line.strip().startswith("#") for line in body):
        body = ["    pass"]  # every result is an input or a constant
    signature = ", ".join(f"{p}=_default_{p}" if p in defaults else p for p in params)
    floats = " and ".join(f"type({p}) is float" for p in params)
    call = ", ".join(params)
    # The array branch's checks grow as inputs x outputs: many-input functions go without it.
    small = len(params) * len(outputs) <= _ARRAY_ENTRY_LIMIT
    array_branch = _array_branch(params, len(outputs), result) if small else []
    source = "\n".join(
        [
            f"def {kernel.name}({signature}):",
            f"    if {floats}:",
            "        try:",
            *[f"        {line}" for line in body],
            "        except (ArithmeticError, ValueError):  # math raises where NumPy gives inf/nan",
            f"            return _general({call})",
            f"        return {result(outputs)}",
            *array_branch,
            f"    return _general({call})",
        ]
    )
    namespace: dict[str, Any] = {f"_default_{p}": v for p, v in defaults.items()}
    namespace.update(kernel.scope())

    def array_program(*args: Any) -> Any:
        # Compile the NumPy flavour only when arrays first come, then call it directly.
        namespace["_array_program"] = kernel.array_fn
        return kernel.array_fn(*args)

    def inplace_program(*args: Any) -> Any:
        # The same for the flavour that reuses dying temporaries (float64 arrays of one shape).
        namespace["_inplace_program"] = kernel.inplace_fn
        return kernel.inplace_fn(*args)

    namespace.update(
        _general=general,
        _finish_arrays=finish_arrays,
        _array_program=array_program,
        _inplace_program=inplace_program,
        _ndarray=np.ndarray,
        _float64=np.dtype(np.float64),
    )
    return compile_source(source + "\n", kernel.name, namespace)


def dispatch_function(
    name: str,
    params: Sequence[str],
    static: Sequence[str],
    defaults: dict[str, Any],
    entries: dict[tuple[Any, ...], Callable[..., Any] | None],
    general: Callable[..., Any],
) -> Callable[..., Any]:
    """`__call__` of a derivative with static parameters: the entry point of the variant
    for these static values (keyed by type and value, so that 1 and 1.0 stay apart)."""
    key = ", ".join(f"(type({p}), {p})" for p in static)
    dynamic = ", ".join(p for p in params if p not in static)
    name = "".join(c if c.isalnum() or c == "_" else "" for c in name)  # `grad_<lambda>`: grad_lambda
    source = "\n".join(
        [
            f"def {name}({', '.join(f'{p}=_default_{p}' if p in defaults else p for p in params)}):",
            "    try:",
            f"        entry = _entries.get(({key},))",
            "    except TypeError:  # an unhashable static value: the general path explains",
            "        entry = None",
            "    if entry is not None:",
            f"        return entry({dynamic})",
            f"    return _general({', '.join(params)})",
        ]
    )
    namespace = {f"_default_{p}": v for p, v in defaults.items()}
    namespace.update(_entries=entries, _general=general)
    return compile_source(source + "\n", name, namespace)
