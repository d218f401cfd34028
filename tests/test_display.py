"""Notebook and terminal display of compiled derivatives: LaTeX, HTML, highlighted source."""

from __future__ import annotations

import html
import importlib.util
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import sympy

import symgrad
from symgrad import (
    custom_derivative,
    derivative,
    display,
    grad,
    hessian,
    jacobian,
    jvp,
    stop_gradient,
    value_and_grad,
    vjp,
)


def f(x, y):
    return np.sin(x) * y + x**2


def branch(x, y):
    if x > y:
        z = np.sin(x) * y
    else:
        z = x**2 + np.exp(y)
    return z / (1 + y * y)


def norm2(x):
    return np.sum(x * x)


def loss(w, b):
    return 0.5 * w**2 + np.logaddexp(0.0, b + 2.0 * w)


@custom_derivative
def softclip(x):
    return np.tanh(x)


@softclip.defderiv
def _(x):
    return 0.5


def own_functions(x, y):
    return stop_gradient(x) * y + 3.0 * softclip(x * y) + np.fmax(x, y)


MATHML = "{http://www.w3.org/1998/Math/MathML}"
DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_latex_has_the_partials() -> None:
    text = display.latex(grad(f, wrt=("x", "y")))
    assert text.startswith(r"\begin{aligned}") and text.endswith(r"\end{aligned}")
    assert r"\frac{\partial f}{\partial x} &= 2 x + y \cos{\left(x \right)}" in text
    assert r"\frac{\partial f}{\partial y} &= \sin{\left(x \right)}" in text
    assert display.latex(grad(f, wrt=("x", "y")), delimiters=True) == f"$${text}$$"


def test_equations_one_per_wrt() -> None:
    assert display.equations(grad(f, wrt="y")) == [r"\frac{\partial f}{\partial y} = \sin{\left(x \right)}"]
    lines = display.equations(grad(branch, wrt=("x", "y")))
    assert [line.split(" = ")[0] for line in lines] == [
        r"\frac{\partial \mathrm{branch}}{\partial x}",
        r"\frac{\partial \mathrm{branch}}{\partial y}",
    ]
    assert r"\begin{cases}" in lines[0]  # the branch, folded into one Piecewise
    assert lines[0].count(r"\begin{cases}") == 1


def test_labels_of_the_other_transforms() -> None:
    labels = {
        name: [line.split(" = ")[0] for line in display.equations(compiled)]
        for name, compiled in {
            "value_and_grad": value_and_grad(f, wrt="x"),
            "vjp": vjp(f, wrt="x"),
            "jvp": jvp(f, wrt="x"),
            "jacobian": jacobian(f, wrt=("x", "y")),
            "hessian": hessian(f, wrt=("x", "y")),
            "second": derivative(f, wrt="x", order=2),
            "mixed": grad(grad(f, wrt="x"), wrt="y"),
        }.items()
    }
    assert labels["value_and_grad"] == ["f", r"\frac{\partial f}{\partial x}"]
    assert labels["vjp"] == ["f", r"\frac{\partial \left(v \cdot f\right)}{\partial x}"]
    assert labels["jvp"] == ["f", r"\mathrm{d}f"]
    assert labels["jacobian"] == [r"\frac{\partial f}{\partial x}", r"\frac{\partial f}{\partial y}"]
    assert labels["hessian"][1] == r"\frac{\partial^{2} f}{\partial y \, \partial x}"
    assert labels["second"] == [r"\frac{\partial^{2} f}{\partial x^{2}}"]
    assert labels["mixed"] == [r"\frac{\partial^{2} f}{\partial y \, \partial x}"]


def test_repr_latex() -> None:
    text = grad(f, wrt=("x", "y"))._repr_latex_()
    assert text is not None
    assert text.startswith("$$") and text.endswith("$$")
    assert r"\frac{\partial" in text


def test_html_math_and_escaped_source() -> None:
    compiled = grad(branch, wrt=("x", "y"))
    page = compiled._repr_html_()
    assert page == display.html(compiled)
    assert "<details>" in page and "</details>" in page
    assert html.escape(compiled.source) in page
    assert "(x &lt;= y)" in page and "(x <= y)" not in page
    assert "$" not in page and "\\frac" not in page  # no TeX: MathML, which browsers render
    table = ET.fromstring(page[page.index("<math") : page.index("</math>") + 7]).find(f"{MATHML}mtable")
    assert page.count("<math ") == 1 and table is not None and len(table) == 2  # one row per equation
    assert "<mi>branch</mi>" in page and "<mo>&#x2202;</mo>" in page


def test_array_program_before_and_after_its_first_call() -> None:
    compiled = grad(norm2)
    assert compiled._repr_latex_() is None  # compiled per shape: nothing to show yet
    assert "not compiled yet" in compiled._repr_html_()
    compiled(np.array([1.0, 2.0]))
    assert (
        compiled._repr_latex_()
        == r"$$\begin{aligned}\frac{\partial \mathrm{norm2}}{\partial x} &= 2 x\end{aligned}$$"
    )


def test_show_plain_and_coloured() -> None:
    compiled = grad(f, wrt=("x", "y"))
    plain = io.StringIO()
    display.show(compiled, plain, color=False)
    assert plain.getvalue() == compiled.source.rstrip("\n") + "\n"
    coloured = io.StringIO()
    display.show(compiled, coloured, color=True)
    assert "\x1b[" in coloured.getvalue()
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured.getvalue()).strip() == compiled.source.strip()


def test_show_colours_only_terminals(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    terminal = Terminal()
    display.show(grad(f, wrt=("x", "y")), terminal)
    assert "\x1b[" in terminal.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    quiet = Terminal()
    display.show(grad(f, wrt=("x", "y")), quiet)
    assert "\x1b[" not in quiet.getvalue()
    symgrad.show(grad(f, wrt=("x", "y")))  # stdout, not a terminal under pytest
    assert capsys.readouterr().out.startswith("def grad_f(x, y):")


def test_tiny_highlighter() -> None:
    source = grad(branch, wrt=("x", "y")).source
    coloured = display._tiny_highlight(source)
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == source
    assert "\x1b[1;35mreturn\x1b[0m" in coloured
    assert "\x1b[33m0.0\x1b[0m" in coloured
    assert "\x1b[2;37m# line" in coloured
    assert "t0" in coloured and "\x1b[33m0\x1b[0m = " not in coloured  # names with digits stay names


def test_show_is_exported() -> None:
    assert symgrad.show is display.show
    assert "show" in symgrad.__all__


# --- the notebook bundle (issue 16: notebooks offline) ----------------------------------------


def _parse(markup: str) -> ET.Element:
    """The MathML as XML: named entities such as `&InvisibleTimes;` would not parse."""
    return ET.fromstring(markup)


def _balanced(tex: str) -> bool:
    depth = 0
    for char in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0 and tex.count(r"\left") == tex.count(r"\right")


def test_mimebundle_has_text_html_and_latex() -> None:
    compiled = grad(loss, wrt=("w", "b"))
    bundle = compiled._repr_mimebundle_()
    assert bundle == display.mimebundle(compiled)
    assert set(bundle) == {"text/plain", "text/html", "text/latex"}
    assert bundle["text/html"] == compiled._repr_html_()
    assert bundle["text/latex"] == compiled._repr_latex_()


def test_plain_text_reads_without_tex() -> None:
    plain = grad(loss, wrt=("w", "b"))._repr_mimebundle_()["text/plain"]
    assert plain.splitlines() == [
        "<symgrad grad of loss wrt=('w', 'b')>",
        "∂loss/∂w = w + 2*sigmoid(b + 2*w)",
        "∂loss/∂b = sigmoid(b + 2*w)",
    ]
    for compiled in (grad(branch, wrt=("x", "y")), hessian(f, wrt=("x", "y")), jvp(f), vjp(f, wrt="x")):
        text = display.plain(compiled)
        assert "\\" not in text and "$" not in text and "{" not in text, text
    assert display.text(hessian(f, wrt=("x", "y")))[1].startswith("∂²f/∂y∂x = ")
    assert display.text(grad(branch, wrt="x"))[0].startswith("∂branch/∂x = (")  # a conditional
    assert " if x <= y else " in display.text(grad(branch, wrt="x"))[0]


def test_integer_coefficients_print_as_integers() -> None:
    compiled = grad(loss, wrt=("w", "b"))
    assert compiled.exprs[0].has(sympy.Float(2.0))  # the floats are in the expression ...
    tex = display.latex(compiled)
    assert r"&= w + 2 \operatorname{sigmoid}{\left(b + 2 w \right)}" in tex  # ... not on screen
    assert "1.0" not in tex and "2.0" not in tex
    markup = display.mathml(compiled)
    numbers = [element.text for element in _parse(markup).iter(f"{MATHML}mn")]
    assert "2" in numbers and not any("." in (n or "") for n in numbers)
    halves = display.text(grad(lambda_free_half, wrt="x"))
    assert halves == ["∂lambda_free_half/∂x = 0.5*cos(0.5*x) + 3"]  # non-integers stay as they are


def lambda_free_half(x):
    return np.sin(0.5 * x) + 3.0 * x


def test_own_functions_print_lower_case() -> None:
    compiled = grad(own_functions, wrt=("x", "y"))
    tex = display.latex(compiled)
    text = "\n".join(display.text(compiled))
    markup = display.mathml(compiled)
    for capitalised in ("StopGradient", "Sigmoid", "CustomDerivative", "FMax", "Piecewise"):
        assert capitalised not in tex + text + markup
    assert r"\operatorname{stop\_gradient}{\left(x \right)}" in tex
    assert "stop_gradient(x)" in text
    assert "1.5*y + 1/2 if x == y else 1.5*y + 1 if x == fmax(x, y) else 1.5*y" in text  # no Eq(...)
    assert "<mi>stop_gradient</mi>" in markup
    value = display.text(value_and_grad(loss, wrt="w"))[0]
    assert value == "loss = 0.5*w**2 + logaddexp(0, b + 2*w)"
    assert r"\operatorname{logaddexp}" in display.latex(value_and_grad(loss, wrt="w"))
    assert "<mi>logaddexp</mi>" in display.mathml(value_and_grad(loss, wrt="w"))


def test_mathml_parses_and_has_no_tex() -> None:
    for compiled in (
        grad(loss, wrt=("w", "b")),
        grad(branch, wrt=("x", "y")),
        hessian(f, wrt=("x", "y")),
        jacobian(f, wrt=("x", "y")),
        jvp(f, wrt="x"),
        vjp(f, wrt="x"),
        grad(grad(f, wrt="x"), wrt="y"),
        grad(own_functions, wrt=("x", "y")),
    ):
        markup = display.mathml(compiled)
        assert "$" not in markup and "\\" not in markup
        root = _parse(markup)
        assert root.tag == f"{MATHML}math" and root.get("display") == "block"
        rows = list(root.iter(f"{MATHML}mtr"))
        assert len(rows) >= len(compiled.exprs)
        assert root.get("alttext") == "; ".join(display.text(compiled))  # a text fallback
    cases = _parse(display.mathml(grad(branch, wrt="x")))
    assert [t.text for t in cases.iter(f"{MATHML}mtext")] == ["if\u00a0", "otherwise"]
    html_page = grad(branch, wrt=("x", "y"))._repr_html_()
    _parse(html_page[html_page.index("<math") : html_page.index("</math>") + len("</math>")])


def test_latex_stays_balanced_and_parses() -> None:
    for compiled in (grad(loss, wrt=("w", "b")), grad(branch, wrt=("x", "y")), hessian(f, wrt=("x", "y"))):
        assert _balanced(display.latex(compiled))
    if importlib.util.find_spec("antlr4") is None:  # SymPy's parser needs it: braces checked above
        return
    from sympy.parsing.latex import parse_latex

    parsed = parse_latex(display.equations(grad(f, wrt=("x", "y")))[0].split(" = ", 1)[1])
    x, y = sympy.symbols("x y")
    assert sympy.simplify(parsed - (2 * x + y * sympy.cos(x))) == 0


def test_bundle_before_the_first_call_and_for_kept_loops() -> None:
    compiled = grad(norm2)
    bundle = compiled._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}  # nothing to typeset yet
    assert bundle["text/plain"].startswith("<symgrad grad of norm2")
    assert "not compiled yet" in bundle["text/html"]
    compiled(np.array([1.0, 2.0]))
    assert compiled._repr_mimebundle_()["text/plain"].endswith("∂norm2/∂x = 2*x")


def test_the_notebook_executes_offline(tmp_path: Path) -> None:
    """docs/notebook_screenshot.py without its screenshot: the notebook runs under nbconvert and
    its HTML holds MathML, loads no script (no MathJax) and has no raw TeX."""
    for module in ("nbconvert", "nbformat", "ipykernel"):
        pytest.importorskip(module)
    spec = importlib.util.spec_from_file_location("notebook_screenshot", DOCS / "notebook_screenshot.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    notebook = tmp_path / "display.ipynb"
    script.write_notebook(notebook)
    page = script.execute(notebook, tmp_path).read_text(encoding="utf-8")
    assert script.check_html(page) == []
    assert "<mi>sigmoid</mi>" in page and "Sigmoid" not in page
