"""Showing derivatives to people: MathML, LaTeX and text for notebooks, highlighted source for terminals."""

from __future__ import annotations

import ast
import html as _html
import html.entities as html_entities
import keyword
import os
import re
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.mathml import MathMLPresentationPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from .errors import SymgradError

if TYPE_CHECKING:
    from .compiled import Compiled

__all__ = ["equations", "highlight", "html", "latex", "mathml", "mimebundle", "plain", "show", "text"]

# Longest right-hand side rendered as LaTeX; longer ones (unrolled loops) point to the source.
MAX_CHARS = 4000

# A Piecewise expression with more conditions than this is not folded (folding multiplies branches).
_MAX_FOLD = 6

_STAGE = re.compile(r"\|(\w+)(\(.*?\))(?=\||$)")


# --- printers ------------------------------------------------------------------------------------

# symgrad's own SymPy functions as their NumPy or SciPy names (others: the class name lower-cased)
_NAMES = {
    "StopGradient": "stop_gradient",
    "NanToNum": "nan_to_num",
    "NanToZero": "nan_to_zero",
    "NotNan": "notnan",
    "FiniteMask": "isfinite",
    "ArraySum": "sum",
    "ArrayProd": "prod",
    "SumTo": "sum_to",
    "Broadcast": "broadcast_to",
    "SortedTake": "sort",
    "StackSum": "stack_sum",
}


def own_name(expr: Any) -> str | None:
    """The name symgrad's own SymPy function `expr` is shown with (None for SymPy's functions).

    >>> from symgrad.rules import Sigmoid, StopGradient
    >>> x = sympy.Symbol("x")
    >>> own_name(Sigmoid(x)), own_name(StopGradient(x)), own_name(sympy.sin(x))
    ('sigmoid', 'stop_gradient', None)
    """
    cls = type(expr)
    if not isinstance(expr, sympy.Function) or not cls.__module__.startswith("symgrad."):
        return None
    name = _NAMES.get(cls.__name__) or getattr(cls, "scipy_name", "") or getattr(cls, "ufunc", "")
    return str(name or cls.__name__.lower())


def _own_parts(expr: Any) -> tuple[list[Any], str]:
    """The arguments an own function is shown with, and its static parameters as text."""
    from .arrays import ArrayOp, Index, Reduction, index_text

    if isinstance(expr, ArrayOp):
        if isinstance(expr, Index):
            return list(expr.operands), index_text(expr.params)
        extra = expr._axis_text().lstrip(", ") if isinstance(expr, Reduction) else ""
        return list(expr.operands), extra
    return list(expr.args), ""


def _is_shown_as_value(expr: Any) -> bool:
    """`CustomDerivative(value, inputs, partials)` is shown as its value (as it is computed)."""
    return type(expr).__name__ == "CustomDerivative" and type(expr).__module__.startswith("symgrad.")


def tidy(expr: Any) -> Any:
    """`expr` with integer-valued floats as integers (`1.0*w + 2.0*s` -> `w + 2*s`), for display.

    >>> w = sympy.Symbol("w")
    >>> tidy(1.0 * w + 2.0 * sympy.sin(0.5 * w))
    w + 2*sin(0.5*w)
    """
    try:
        floats = {
            f: sympy.Integer(int(f))
            for f in expr.atoms(sympy.Float)
            if float(f).is_integer() and abs(float(f)) < 2**53
        }
        return expr.xreplace(floats) if floats else expr
    except Exception:  # cosmetic: never fail a display over it
        return expr


class TextPrinter(StrPrinter):
    """Plain text: SymPy's `str` with symgrad's functions by their NumPy names and `where`
    (a Piecewise) as Python's conditional expression."""

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if _is_shown_as_value(expr):
            return str(self._print(expr.args[0]))
        name = own_name(expr)
        if name is None:
            return str(super()._print(expr, **kwargs))
        args, extra = _own_parts(expr)
        if name == "index" and args:
            return f"{self.parenthesize(args[0], PRECEDENCE['Func'])}[{extra}]"
        return f"{name}({', '.join([*(str(self._print(a)) for a in args), *([extra] if extra else [])])})"

    def _print_Relational(self, expr: Any) -> str:
        op = {"==": "==", "!=": "!="}.get(expr.rel_op)
        if op is None:
            return str(super()._print_Relational(expr))
        return f"{self._print(expr.lhs)} {op} {self._print(expr.rhs)}"

    def _print_And(self, expr: Any) -> str:
        return " and ".join(self.parenthesize(a, PRECEDENCE["And"]) for a in expr.args)

    def _print_Or(self, expr: Any) -> str:
        return " or ".join(self.parenthesize(a, PRECEDENCE["Or"]) for a in expr.args)

    def _print_Piecewise(self, expr: Any) -> str:
        *branches, (last, last_cond) = expr.args
        text = str(self._print(last))
        if last_cond != sympy.true:
            text = f"{text} if {self._print(last_cond)} else nan"
        for value, cond in reversed(branches):
            text = f"{self._print(value)} if {self._print(cond)} else {text}"
        return f"({text})"


class LaTeXPrinter(LatexPrinter):
    """SymPy's LaTeX with symgrad's functions as `\\operatorname{sigmoid}` (NumPy's names)."""

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if _is_shown_as_value(expr):
            return str(self._print(expr.args[0], **kwargs))
        name = own_name(expr)
        if name is None:
            return str(super()._print(expr, **kwargs))
        args, extra = _own_parts(expr)
        if name == "index" and args:
            return rf"{self.parenthesize(args[0], PRECEDENCE['Func'])}\left[{_latex_text(extra)}\right]"
        inside = ", ".join([*(str(self._print(a)) for a in args), *([_latex_text(extra)] if extra else [])])
        power = f"^{{{kwargs['exp']}}}" if kwargs.get("exp") is not None else ""
        escaped = name.replace("_", r"\_")
        return rf"\operatorname{{{escaped}}}{power}{{\left({inside} \right)}}"


def _latex_text(text: str) -> str:
    return r"\text{" + re.sub(r"([_&%$#{}])", r"\\\1", text) + "}" if text else ""


class MathMLPrinter(MathMLPresentationPrinter):
    """Presentation MathML that browsers render without MathJax, and that parses as XML:
    symgrad's functions by their NumPy names, `e` and `i` upright, Piecewise as cases, and
    character references instead of HTML's named entities."""

    def _print(self, expr: Any, **kwargs: Any) -> Any:
        if _is_shown_as_value(expr):
            return self._print(expr.args[0], **kwargs)
        name = own_name(expr)
        if name is None:
            return super()._print(expr, **kwargs)
        args, extra = _own_parts(expr)
        mrow = self.dom.createElement("mrow")
        if name == "index" and args:
            mrow.appendChild(self._print(args[0]))
            for piece in ("[", extra, "]"):
                mrow.appendChild(self._element("mo" if piece in "[]" else "mtext", piece))
            return mrow
        mrow.appendChild(self._element("mi", name))
        parts = [self._print(a) for a in args]
        if extra:
            parts.append(self._element("mtext", extra))
        mrow.appendChild(self._fenced(parts))
        return mrow

    def _element(self, tag: str, text: str) -> Any:
        element = self.dom.createElement(tag)
        element.appendChild(self.dom.createTextNode(_html.escape(text, quote=False)))
        return element

    def _fenced(self, parts: Sequence[Any]) -> Any:
        mrow = self.dom.createElement("mrow")
        mrow.appendChild(self._element("mo", "("))
        for k, part in enumerate(parts):
            if k:
                mrow.appendChild(self._element("mo", ","))
            mrow.appendChild(part)
        mrow.appendChild(self._element("mo", ")"))
        return mrow

    def mathml_tag(self, e: Any) -> str:
        tag = str(super().mathml_tag(e))
        return {"<": "&lt;", ">": "&gt;"}.get(tag, tag)

    def _print_Exp1(self, e: Any) -> Any:
        return self._element("mi", "e")

    def _print_ImaginaryUnit(self, e: Any) -> Any:
        return self._element("mi", "i")

    def _print_Piecewise(self, expr: Any) -> Any:
        mrow = self.dom.createElement("mrow")
        mrow.appendChild(self._element("mo", "{"))
        table = self.dom.createElement("mtable")
        for value, cond in expr.args:
            row = self.dom.createElement("mtr")
            for content in (value, cond):
                cell = self.dom.createElement("mtd")
                cell.setAttribute("style", "text-align: left; padding-right: 1em")
                if content is cond:
                    words = "otherwise" if cond == sympy.true else "if\u00a0"  # kept: a space is trimmed
                    cell.appendChild(self._element("mtext", words))
                    if cond == sympy.true:
                        row.appendChild(cell)
                        continue
                cell.appendChild(self._print(content))
                row.appendChild(cell)
            table.appendChild(row)
        mrow.appendChild(table)
        return mrow

    def doprint(self, expr: Any) -> str:
        root = self._print(expr)
        for mo in root.getElementsByTagName("mo"):  # a minus sign, not a hyphen
            if mo.firstChild is not None and mo.firstChild.data == "-":
                mo.firstChild.data = "\u2212"
        markup = root.toxml().encode("ascii", "xmlcharrefreplace").decode()
        return _xml_references(markup)


def _xml_references(markup: str) -> str:
    """HTML's named character references (`&InvisibleTimes;`) as numeric ones, which XML knows."""

    def numeric(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in ("lt", "gt", "amp", "quot", "apos"):
            return match.group()
        text = html_entities.html5.get(name + ";")
        return "".join(f"&#x{ord(c):X};" for c in text) if text else match.group()

    return re.sub(r"&([A-Za-z][A-Za-z0-9]*);", numeric, markup)


# --- labels: what each result is the derivative of ----------------------------------------------


class _LaTeXLabels:
    """How a derivative's label is written; subclasses write it as text and as MathML."""

    def function(self, name: str) -> str:
        return name if len(name) == 1 else r"\mathrm{" + name.replace("_", r"\_") + "}"

    def symbol(self, name: str) -> str:
        """A parameter name as SymPy writes its symbol (`alpha` -> `\\alpha`, `x1` -> `x_{1}`)."""
        return str(sympy.latex(sympy.Symbol(name)))

    def sub(self, base: str, index: str) -> str:
        return f"{base}_{{{index}}}"

    def roman(self, word: str) -> str:
        return rf"\mathrm{{{word}}}"

    def total(self, name: str) -> str:
        return rf"\textstyle\sum_i {self.sub(name, 'i')}"

    def weighted(self, values: Sequence[str]) -> str:
        if len(values) == 1:
            return rf"\left(v \cdot {values[0]}\right)"
        return r"\left(" + " + ".join(rf"v_{{{i}}} \cdot {v}" for i, v in enumerate(values)) + r"\right)"

    def differential(self, value: str, grouped: bool) -> str:
        return r"\mathrm{d}" + (rf"\left({value}\right)" if grouped else value)

    def fraction(self, target: str, groups: Sequence[tuple[str, int]]) -> str:
        order = sum(k for _, k in groups)
        below = r" \, ".join(
            rf"\partial {self.symbol(n)}" + (f"^{{{k}}}" if k > 1 else "") for n, k in groups
        )
        power = f"^{{{order}}}" if order > 1 else ""
        return rf"\frac{{\partial{power} {target}}}{{{below}}}"

    def operators(self, ops: Sequence[tuple[str, ...]], target: str) -> str:
        parts = []
        for op in ops:
            terms = " + ".join(rf"\frac{{\partial}}{{\partial {self.symbol(n)}}}" for n in op)
            parts.append(rf"\left({terms}\right)" if len(op) > 1 else terms)
        return " ".join(parts) + " " + target


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


class _TextLabels(_LaTeXLabels):
    def function(self, name: str) -> str:
        return name

    def symbol(self, name: str) -> str:
        return name

    def sub(self, base: str, index: str) -> str:
        return f"{base}_{index}"

    def roman(self, word: str) -> str:
        return word

    def total(self, name: str) -> str:
        return f"Σ_i {name}_i"

    def weighted(self, values: Sequence[str]) -> str:
        if len(values) == 1:
            return f"(v·{values[0]})"
        return "(" + " + ".join(f"v_{i}·{v}" for i, v in enumerate(values)) + ")"

    def differential(self, value: str, grouped: bool) -> str:
        return "d" + (f"({value})" if grouped else value)

    def fraction(self, target: str, groups: Sequence[tuple[str, int]]) -> str:
        order = sum(k for _, k in groups)
        below = "".join(f"∂{n}" + (str(k).translate(_SUPERSCRIPTS) if k > 1 else "") for n, k in groups)
        power = str(order).translate(_SUPERSCRIPTS) if order > 1 else ""
        return f"∂{power}{target}/{below}"

    def operators(self, ops: Sequence[tuple[str, ...]], target: str) -> str:
        parts = []
        for op in ops:
            terms = " + ".join(f"∂/∂{n}" for n in op)
            parts.append(f"({terms})" if len(op) > 1 else terms)
        return " ".join(parts) + " " + target


class _MathMLLabels(_LaTeXLabels):
    def function(self, name: str) -> str:
        return f"<mi>{_html.escape(name)}</mi>"

    def symbol(self, name: str) -> str:
        return MathMLPrinter().doprint(sympy.Symbol(name))

    def sub(self, base: str, index: str) -> str:
        return f"<msub>{base}<mi>{index}</mi></msub>"

    def roman(self, word: str) -> str:
        return f"<mi>{word}</mi>"

    def total(self, name: str) -> str:
        return f"<mrow><munder><mo>&#x2211;</mo><mi>i</mi></munder>{self.sub(name, 'i')}</mrow>"

    def weighted(self, values: Sequence[str]) -> str:
        if len(values) == 1:
            terms = f"<mi>v</mi><mo>&#xB7;</mo>{values[0]}"
        else:
            terms = "<mo>+</mo>".join(
                f"<msub><mi>v</mi><mn>{i}</mn></msub><mo>&#xB7;</mo>{v}" for i, v in enumerate(values)
            )
        return f"<mrow><mo>(</mo>{terms}<mo>)</mo></mrow>"

    def differential(self, value: str, grouped: bool) -> str:
        inner = f"<mrow><mo>(</mo>{value}<mo>)</mo></mrow>" if grouped else value
        return f"<mrow><mi mathvariant='normal'>d</mi>{inner}</mrow>"

    def fraction(self, target: str, groups: Sequence[tuple[str, int]]) -> str:
        order = sum(k for _, k in groups)
        d = "<mo>&#x2202;</mo>"
        top = f"<msup>{d}<mn>{order}</mn></msup>" if order > 1 else d
        below = "".join(
            d + (f"<msup>{self.symbol(n)}<mn>{k}</mn></msup>" if k > 1 else self.symbol(n)) for n, k in groups
        )
        return f"<mfrac><mrow>{top}{target}</mrow><mrow>{below}</mrow></mfrac>"

    def operators(self, ops: Sequence[tuple[str, ...]], target: str) -> str:
        parts = []
        for op in ops:
            terms = "<mo>+</mo>".join(
                f"<mfrac><mo>&#x2202;</mo><mrow><mo>&#x2202;</mo>{self.symbol(n)}</mrow></mfrac>" for n in op
            )
            parts.append(f"<mrow><mo>(</mo>{terms}<mo>)</mo></mrow>" if len(op) > 1 else terms)
        return f"<mrow>{''.join(parts)}{target}</mrow>"


_LATEX, _TEXT, _MATHML = _LaTeXLabels(), _TextLabels(), _MathMLLabels()


# --- equations -----------------------------------------------------------------------------------


def _symbol(name: str) -> str:
    """A parameter name as SymPy writes its symbol (`alpha` -> `\\alpha`, `x1` -> `x_{1}`)."""
    return _LATEX.symbol(name)


def _stages(compiled: Compiled) -> list[tuple[str, tuple[str, ...]]]:
    """The chain of transforms that made `compiled` (its own last): `[("grad", ("x",)), ...]`."""
    description = str(getattr(compiled.derive, "description", ""))
    stages = []
    for kind, names in _STAGE.findall(description):
        try:
            wrt = ast.literal_eval(names)
        except (ValueError, SyntaxError):
            return [(compiled.kind, compiled.wrt)]
        stages.append((kind, tuple(wrt)))
    return stages or [(compiled.kind, compiled.wrt)]


def _derivative(target: str, ops: Sequence[tuple[str, ...]], notation: _LaTeXLabels = _LATEX) -> str:
    """The operators `ops` (first applied first) applied to `target`, in `notation`.

    >>> _derivative("f", [("x",)])
    '\\\\frac{\\\\partial f}{\\\\partial x}'
    >>> _derivative("f", [("x",), ("x",), ("y",)])
    '\\\\frac{\\\\partial^{3} f}{\\\\partial y \\\\, \\\\partial x^{2}}'
    >>> _derivative("f", [("x",), ("x",), ("y",)], _TEXT)
    '∂³f/∂y∂x²'
    """
    if not ops:
        return target
    if all(len(op) == 1 for op in ops):
        groups: list[list[Any]] = []
        for (name,) in reversed(ops):  # the last applied is written first
            if groups and groups[-1][0] == name:
                groups[-1][1] += 1
            else:
                groups.append([name, 1])
        return notation.fraction(target, [(n, k) for n, k in groups])
    return notation.operators(list(reversed(ops)), target)


def _fold(expr: Any) -> Any:
    """Nested `Piecewise` (what `where` becomes) folded into one, when that stays small."""
    try:
        if len(expr.atoms(sympy.Piecewise)) > _MAX_FOLD:
            return expr
        return sympy.piecewise_fold(expr)
    except Exception:  # folding is cosmetic: never fail a display over it
        return expr


def _labels(compiled: Compiled, notation: _LaTeXLabels) -> list[str]:
    """What each result of `compiled` is, in `notation` (`∂f/∂x`, ...)."""
    n = len(compiled.exprs)
    m = compiled.variant().primal_outputs
    name = notation.function(str(getattr(compiled.fn, "__name__", "f")))
    wrt = list(compiled.wrt)
    inner = [names for _, names in _stages(compiled)[:-1]]  # grads this object differentiates
    # What the differentiated function returns, each as (function, derivative operators) ...
    outputs: list[tuple[str, list[tuple[str, ...]]]]
    if not inner:
        outputs = [(name, [])] if m == 1 else [(notation.sub(name, str(i + 1)), []) for i in range(m)]
    elif len(inner[-1]) == m:
        outputs = [(name, [*inner[:-1], (w,)]) for w in inner[-1]]
    else:
        outputs = [(notation.sub(notation.roman("out"), str(i + 1)), []) for i in range(m)]
    # ... and the sum of its outputs, which grad differentiates.
    total = (name, inner) if inner else outputs[0] if m == 1 else (notation.total(name), [])
    values = [_derivative(base, ops, notation) for base, ops in outputs]
    labels: list[str] = []
    kind = compiled.kind
    if kind in ("value_and_grad", "vjp"):
        labels += values
    if kind in ("grad", "value_and_grad"):
        labels += [_derivative(total[0], [*total[1], (w,)], notation) for w in wrt]
    elif kind == "vjp":
        labels += [_derivative(notation.weighted(values), [(w,)], notation) for w in wrt]
    elif kind == "jvp":
        labels += values
        labels += [notation.differential(v, bool(ops)) for v, (_, ops) in zip(values, outputs)]
    elif kind == "jacobian":
        labels += [_derivative(base, [*ops, (w,)], notation) for base, ops in outputs for w in wrt]
    elif kind == "hessian":
        labels += [_derivative(total[0], [*total[1], (a,), (b,)], notation) for a in wrt for b in wrt]
    if len(labels) != n:  # an unknown transform: number the results
        labels = [notation.sub(notation.roman("result"), str(i + 1)) for i in range(n)]
    return labels


def _results(compiled: Compiled, simplify: bool) -> list[Any]:
    exprs = []
    for expr in compiled.exprs:
        expr = _fold(expr)
        if simplify:
            expr = sympy.simplify(expr)
        exprs.append(tidy(expr))
    return exprs


def _too_long(size: int) -> str:
    return f"(an expression of {size} characters: see the generated source)"


def equations(compiled: Compiled, *, simplify: bool = False) -> list[str]:
    """The results of `compiled` as LaTeX equations `label = expression`, one per output.

    For `grad`, one partial derivative per `wrt` parameter; `value_and_grad` adds the value;
    `jacobian` and `hessian` list their entries row by row. Integer-valued coefficients are
    written as integers and symgrad's own functions by their NumPy names. Raises
    `SymgradError` when the function is not compiled yet and cannot be (array programs
    before their first call).

    >>> from symgrad import grad
    >>> from symgrad.__main__ import demo_relu
    >>> equations(grad(demo_relu))
    ['\\\\frac{\\\\partial \\\\mathrm{demo\\\\_relu}}{\\\\partial x} = \\\\begin{cases} 1 & \\\\text{for}\\\\: x > 0 \\\\\\\\0 & \\\\text{otherwise} \\\\end{cases}']
    """
    lines = []
    printer = LaTeXPrinter()
    for label, expr in zip(_labels(compiled, _LATEX), _results(compiled, simplify)):
        text = str(printer.doprint(expr))
        if len(text) > MAX_CHARS:
            text = rf"\text{{{_too_long(len(text))}}}"
        lines.append(f"{label} = {text}")
    return lines


def text(compiled: Compiled, *, simplify: bool = False) -> list[str]:
    """The results of `compiled` as plain-text equations, no TeX: `∂f/∂w = w + 2*sigmoid(w)`.

    >>> from symgrad import grad
    >>> from symgrad.__main__ import demo_relu
    >>> text(grad(demo_relu))
    ['∂demo_relu/∂x = (1 if x > 0 else 0)']
    """
    lines = []
    printer = TextPrinter()
    for label, expr in zip(_labels(compiled, _TEXT), _results(compiled, simplify)):
        rhs = str(printer.doprint(expr))
        lines.append(f"{label} = {rhs if len(rhs) <= MAX_CHARS else _too_long(len(rhs))}")
    return lines


# Fonts with the OpenType MATH table that stacks fractions and stretches braces: the browser's
# `math` first, then those common on macOS, Windows and Linux.
_MATH_FONTS = "math, 'STIX Two Math', 'Cambria Math', 'Latin Modern Math', 'DejaVu Math TeX Gyre', serif"


def mathml(compiled: Compiled, *, simplify: bool = False) -> str:
    """The results of `compiled` as one presentation-MathML `<math>` block (a table of
    equations), which browsers render natively: no MathJax, no internet.

    >>> from symgrad import grad
    >>> from symgrad.__main__ import demo_relu
    >>> mathml(grad(demo_relu)).startswith('<math xmlns="http://www.w3.org/1998/Math/MathML"')
    True
    """
    printer = MathMLPrinter()
    rows = []
    lines = text(compiled, simplify=simplify)
    for label, expr, line in zip(_labels(compiled, _MATHML), _results(compiled, simplify), lines):
        if len(line) > MAX_CHARS + 200:
            rhs = f"<mtext>{_html.escape(line.split(' = ', 1)[1])}</mtext>"
        else:
            rhs = printer.doprint(expr)
        rows.append(
            f'<mtr><mtd style="text-align: right">{label}</mtd><mtd><mo>=</mo></mtd>'
            f'<mtd style="text-align: left">{rhs}</mtd></mtr>'
        )
    alt = _html.escape("; ".join(lines))
    return (
        f'<math xmlns="http://www.w3.org/1998/Math/MathML" display="block" alttext="{alt}" '
        f'style="font-family: {_MATH_FONTS}">'
        f'<mtable displaystyle="true">{"".join(rows)}</mtable></math>'
    )


def latex(compiled: Compiled, *, delimiters: bool = False, simplify: bool = False) -> str:
    """The results of `compiled` as one LaTeX `aligned` block (`$$`-delimited if asked).

    >>> from symgrad import grad
    >>> from symgrad.__main__ import demo_softplus_loop
    >>> print(latex(grad(demo_softplus_loop, wrt="w"))[:60])
    \\begin{aligned}\\frac{\\partial \\mathrm{demo\\_softplus\\_loop}}
    """
    rows = [line.replace(" = ", " &= ", 1) for line in equations(compiled, simplify=simplify)]
    body = r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"
    return f"$${body}$$" if delimiters else body


def repr_latex(compiled: Compiled) -> str | None:
    """`Compiled._repr_latex_`: the `$$`-delimited equations, or None when not compiled yet."""
    try:
        return latex(compiled, delimiters=True)
    except SymgradError:
        return None


def plain(compiled: Compiled) -> str:
    """The text/plain form: the object's repr, then one equation a line (or why there are none).

    >>> from symgrad import grad
    >>> from symgrad.__main__ import demo_relu
    >>> print(plain(grad(demo_relu)))  # doctest: +ELLIPSIS
    <symgrad grad of demo_relu wrt=('x',)>
    ∂demo_relu/∂x = (1 if x > 0 else 0)
    """
    try:
        lines = text(compiled)
    except SymgradError as exc:
        lines = [exc.message + (f" ({exc.hint})" if exc.hint else "")]
    return "\n".join([repr(compiled), *lines])


def html(compiled: Compiled) -> str:
    """HTML for notebooks: the equations as presentation MathML (which browsers render
    natively: no MathJax needed) and the generated source folded underneath in a
    `<details>` element, all HTML-escaped.

    >>> from symgrad import grad
    >>> from symgrad.__main__ import demo_relu
    >>> "<details>" in html(grad(demo_relu))
    True
    """
    title = _html.escape(repr(compiled))
    try:
        source = compiled.source
    except SymgradError as exc:
        message = _html.escape(exc.message + (f" ({exc.hint})" if exc.hint else ""))
        return f'<div class="symgrad"><code>{title}</code><p>not compiled yet: {message}</p></div>'
    try:
        math = mathml(compiled)
    except SymgradError as exc:  # compiled, but with no closed form (a kept loop)
        math = f"<p>{_html.escape(exc.message)}</p>"
    return (
        f'<div class="symgrad"><code>{title}</code>\n'
        f"{math}\n"
        f"<details><summary>generated source</summary>\n"
        f"<pre><code>{_html.escape(source)}</code></pre>\n"
        f"</details></div>"
    )


def mimebundle(compiled: Compiled) -> dict[str, str]:
    """`Compiled._repr_mimebundle_`: text/plain (readable, no TeX), text/html (MathML: reads
    without internet) and, once compiled, text/latex for frontends that typeset with MathJax.

    >>> from symgrad import grad
    >>> from symgrad.__main__ import demo_relu
    >>> sorted(mimebundle(grad(demo_relu)))
    ['text/html', 'text/latex', 'text/plain']
    """
    bundle = {"text/plain": plain(compiled), "text/html": html(compiled)}
    tex = repr_latex(compiled)
    if tex is not None:
        bundle["text/latex"] = tex
    return bundle


# --- terminal ------------------------------------------------------------------------------------

_ANSI = {
    "keyword": "\x1b[1;35m",
    "builtin": "\x1b[36m",
    "string": "\x1b[32m",
    "number": "\x1b[33m",
    "comment": "\x1b[2;37m",
}
_RESET = "\x1b[0m"
_BUILTINS = frozenset({"numpy", "math", "builtins", "sg", "scipy_special"})
_TOKEN = re.compile(
    r"(?P<comment>\#[^\n]*)"
    r'|(?P<string>"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\')'
    r"|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
)


def _tiny_highlight(source: str) -> str:
    r"""ANSI colours for keywords, module names, strings, numbers and comments.

    >>> _tiny_highlight("return x  # 1") == "\x1b[1;35mreturn\x1b[0m x  \x1b[2;37m# 1\x1b[0m"
    True
    """

    def colour(match: re.Match[str]) -> str:
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "name":
            if keyword.iskeyword(text):
                kind = "keyword"
            elif text in _BUILTINS:
                kind = "builtin"
            else:
                return text
        return f"{_ANSI[kind]}{text}{_RESET}"

    return _TOKEN.sub(colour, source)


def highlight(source: str) -> str:
    """Python source with ANSI colours: pygments' if it is installed, else a tiny highlighter."""
    try:
        from pygments import highlight as pygments_highlight
        from pygments.formatters import TerminalFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return _tiny_highlight(source)
    return str(pygments_highlight(source, PythonLexer(), TerminalFormatter()))


def _wants_colour(file: IO[str]) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(file, "isatty", None)
    return bool(isatty and isatty())


def show(compiled: Compiled, file: IO[str] | None = None, *, color: bool | None = None) -> None:
    """Print the generated source of `compiled`, highlighted when `file` is a terminal.

    `color` forces colours on or off; by default they are used on terminals, unless the
    `NO_COLOR` environment variable is set (`FORCE_COLOR` turns them on anywhere).

    >>> from symgrad import grad, show
    >>> from symgrad.__main__ import demo_relu
    >>> show(grad(demo_relu), color=False)  # doctest: +ELLIPSIS
    def grad_demo_relu(x):
    ...
    """
    out = sys.stdout if file is None else file
    source = compiled.source
    if color is None:
        color = _wants_colour(out)
    text = highlight(source) if color else source
    out.write(text if text.endswith("\n") else text + "\n")
