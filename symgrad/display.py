"""Showing derivatives to people: LaTeX and HTML for notebooks, highlighted source for terminals."""

from __future__ import annotations

import ast
import html as _html
import keyword
import os
import re
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import sympy

from .errors import SymgradError

if TYPE_CHECKING:
    from .compiled import Compiled

__all__ = ["equations", "highlight", "html", "latex", "show"]

# Longest right-hand side rendered as LaTeX; longer ones (unrolled loops) point to the source.
MAX_CHARS = 4000

# A Piecewise expression with more conditions than this is not folded (folding multiplies branches).
_MAX_FOLD = 6

_STAGE = re.compile(r"\|(\w+)(\(.*?\))(?=\||$)")


# --- LaTeX ---------------------------------------------------------------------------------------


def _symbol(name: str) -> str:
    """A parameter name as SymPy writes its symbol (`alpha` -> `\\alpha`, `x1` -> `x_{1}`)."""
    return str(sympy.latex(sympy.Symbol(name)))


def _function_name(compiled: Compiled) -> str:
    name = str(getattr(compiled.fn, "__name__", "f"))
    if len(name) == 1:
        return name
    return r"\mathrm{" + name.replace("_", r"\_") + "}"


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


def _derivative(target: str, ops: Sequence[tuple[str, ...]]) -> str:
    """LaTeX of the operators `ops` (first applied first) applied to `target`.

    >>> _derivative("f", [("x",)])
    '\\\\frac{\\\\partial f}{\\\\partial x}'
    >>> _derivative("f", [("x",), ("x",), ("y",)])
    '\\\\frac{\\\\partial^{3} f}{\\\\partial y \\\\, \\\\partial x^{2}}'
    """
    if not ops:
        return target
    if all(len(op) == 1 for op in ops):
        order = len(ops)
        groups: list[list[Any]] = []
        for (name,) in reversed(ops):  # the last applied is written first
            if groups and groups[-1][0] == name:
                groups[-1][1] += 1
            else:
                groups.append([name, 1])
        below = r" \, ".join(rf"\partial {_symbol(n)}" + (f"^{{{k}}}" if k > 1 else "") for n, k in groups)
        power = f"^{{{order}}}" if order > 1 else ""
        return rf"\frac{{\partial{power} {target}}}{{{below}}}"
    parts = []
    for op in reversed(ops):
        terms = " + ".join(rf"\frac{{\partial}}{{\partial {_symbol(n)}}}" for n in op)
        parts.append(rf"\left({terms}\right)" if len(op) > 1 else terms)
    return " ".join(parts) + " " + target


def _fold(expr: Any) -> Any:
    """Nested `Piecewise` (what `where` becomes) folded into one, when that stays small."""
    try:
        if len(expr.atoms(sympy.Piecewise)) > _MAX_FOLD:
            return expr
        return sympy.piecewise_fold(expr)
    except Exception:  # folding is cosmetic: never fail a display over it
        return expr


def equations(compiled: Compiled, *, simplify: bool = False) -> list[str]:
    """The results of `compiled` as LaTeX equations `label = expression`, one per output.

    For `grad`, one partial derivative per `wrt` parameter; `value_and_grad` adds the value;
    `jacobian` and `hessian` list their entries row by row. Raises `SymgradError` when the
    function is not compiled yet and cannot be (array programs before their first call).

    >>> from symgrad import grad
    >>> from symgrad.__main__ import demo_relu
    >>> equations(grad(demo_relu))
    ['\\\\frac{\\\\partial \\\\mathrm{demo\\\\_relu}}{\\\\partial x} = \\\\begin{cases} 1 & \\\\text{for}\\\\: x > 0 \\\\\\\\0 & \\\\text{otherwise} \\\\end{cases}']
    """
    exprs = list(compiled.exprs)
    m = compiled.variant().primal_outputs
    name = _function_name(compiled)
    wrt = list(compiled.wrt)
    inner = [names for _, names in _stages(compiled)[:-1]]  # grads this object differentiates
    # What the differentiated function returns, each as (function, derivative operators) ...
    outputs: list[tuple[str, list[tuple[str, ...]]]]
    if not inner:
        outputs = [(name, [])] if m == 1 else [(f"{name}_{{{i + 1}}}", []) for i in range(m)]
    elif len(inner[-1]) == m:
        outputs = [(name, [*inner[:-1], (w,)]) for w in inner[-1]]
    else:
        outputs = [(rf"\mathrm{{out}}_{{{i + 1}}}", []) for i in range(m)]
    # ... and the sum of its outputs, which grad differentiates.
    total = (name, inner) if inner else outputs[0] if m == 1 else (rf"\textstyle\sum_i {name}_{{i}}", [])
    values = [_derivative(base, ops) for base, ops in outputs]
    labels: list[str] = []
    kind = compiled.kind
    if kind in ("value_and_grad", "vjp"):
        labels += values
    if kind in ("grad", "value_and_grad"):
        labels += [_derivative(total[0], [*total[1], (w,)]) for w in wrt]
    elif kind == "vjp":
        if m == 1:
            weighted = rf"\left(v \cdot {values[0]}\right)"
        else:
            weighted = (
                r"\left(" + " + ".join(rf"v_{{{i}}} \cdot {v}" for i, v in enumerate(values)) + r"\right)"
            )
        labels += [_derivative(weighted, [(w,)]) for w in wrt]
    elif kind == "jvp":
        labels += values
        labels += [
            r"\mathrm{d}" + (v if not ops else rf"\left({v}\right)") for v, (_, ops) in zip(values, outputs)
        ]
    elif kind == "jacobian":
        labels += [_derivative(base, [*ops, (w,)]) for base, ops in outputs for w in wrt]
    elif kind == "hessian":
        labels += [_derivative(total[0], [*total[1], (a,), (b,)]) for a in wrt for b in wrt]
    if len(labels) != len(exprs):  # an unknown transform: number the results
        labels = [rf"\mathrm{{result}}_{{{i + 1}}}" for i in range(len(exprs))]
    lines = []
    for label, expr in zip(labels, exprs):
        expr = _fold(expr)
        if simplify:
            expr = sympy.simplify(expr)
        text = str(sympy.latex(expr))
        if len(text) > MAX_CHARS:
            text = rf"\text{{(an expression of {len(text)} characters: see the generated source)}}"
        lines.append(f"{label} = {text}")
    return lines


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


def html(compiled: Compiled) -> str:
    """HTML for notebooks: the equations as display math (typeset by the notebook's MathJax)
    and the generated source folded underneath in a `<details>` element, all HTML-escaped.

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
        math = latex(compiled, delimiters=True)
    except SymgradError as exc:  # compiled, but with no closed form (a kept loop)
        math = exc.message
    return (
        f'<div class="symgrad"><code>{title}</code>\n'
        f"<p>{_html.escape(math)}</p>\n"
        f"<details><summary>generated source</summary>\n"
        f"<pre><code>{_html.escape(source)}</code></pre>\n"
        f"</details></div>"
    )


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
