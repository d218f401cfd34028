"""Notebook and terminal display of compiled derivatives: LaTeX, HTML, highlighted source."""

from __future__ import annotations

import html
import io
import re

import numpy as np
import pytest

import symgrad
from symgrad import derivative, display, grad, hessian, jacobian, jvp, value_and_grad, vjp


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
    assert "$$" in page and r"\frac{\partial \mathrm{branch}}{\partial x}" in page
    assert "&amp;=" in page  # the aligned block's `&` escaped too


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
