"""The `symgrad` command line, run as `python -m symgrad` on a small example file."""

from __future__ import annotations

import importlib.util
import io
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from symgrad import cli
from symgrad.errors import UnsupportedSyntaxError

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

EXAMPLE = textwrap.dedent(
    """\
    import numpy as np
    from symgrad import stop_gradient

    from example_helpers import square


    def f(x, y):
        return np.sin(x) * y + x ** 2


    def branch(x, y=0.5):
        if x > y:
            z = np.sin(x) * y
        else:
            z = square(x) + np.exp(y)
        return z / (1 + y * y)


    def power_sum(x, n):
        s = 0.0
        for i in range(n):
            s = s + x ** i
        return s


    def norm2(x):
        return np.sum(x * x)


    def detached(x):
        return x * stop_gradient(x)  # symgrad: x; finite differences: 2 x


    def halving(x):
        try:  # MARK: try
            x = x / 2
        finally:
            pass
        return x


    def relu(x):
        return np.maximum(x, 0)
    """
)

HELPERS = textwrap.dedent(
    """\
    def square(x):
        return x * x
    """
)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """example.py, importing a sibling module (so the file's directory must be on sys.path)."""
    (tmp_path / "example_helpers.py").write_text(HELPERS)
    path = tmp_path / "example.py"
    path.write_text(EXAMPLE)
    return path


ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m symgrad ARGS` in `cwd`, importing this checkout's symgrad (not an installed one)."""
    return subprocess.run(
        [sys.executable, "-m", "symgrad", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )


def line_of(marker: str) -> int:
    return next(i for i, line in enumerate(EXAMPLE.splitlines(), 1) if marker in line)


# --- the command as a whole ------------------------------------------------------------------------


def test_no_arguments_runs_the_demo(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("=== demo_branch ===\ndef value_and_grad_demo_branch(x, y):")
    assert "relu'(x) on arange(-2, 2.5, 1):" in result.stdout


@pytest.mark.parametrize("command", [None, "show", "check", "plot", "demo"])
def test_help(tmp_path: Path, command: str | None) -> None:
    result = run(tmp_path, *([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: symgrad{' ' + command if command else ''}")
    if command in ("show", "check", "plot"):
        assert "FILE.py:FUNC" in result.stdout and "--wrt" in result.stdout
    if command is None:
        assert all(c in result.stdout for c in ("show", "check", "plot"))


@pytest.mark.skipif(
    shutil.which("symgrad") is None, reason="the `symgrad` script is not installed (pip install -e .)"
)
def test_console_script(example: Path) -> None:
    result = subprocess.run(
        ["symgrad", "show", "example.py:f", "--format", "latex", "--wrt", "x"],
        cwd=example.parent,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(r"\frac{\partial f}{\partial x} = ")


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "differentiate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


# --- show ------------------------------------------------------------------------------------------


def test_show_source(example: Path) -> None:
    result = run(example.parent, "show", "example.py:f", "--wrt", "x,y")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("def grad_f(x, y):\n")
    assert "dfdx = 2*x + y*numpy.cos(x)" in result.stdout
    assert "return (dfdx, dfdy)" in result.stdout
    assert "\x1b[" not in result.stdout  # not a terminal: no colours


def test_E9_show_default_wrt_is_the_first_parameter(example: Path) -> None:
    # the same default as symgrad.grad: the first parameter, one gradient
    result = run(example.parent, "show", "example.py:f")
    assert result.returncode == 0, result.stderr
    assert "with respect to x;" in result.stdout
    assert "dfdx = " in result.stdout and "dfdy" not in result.stdout


def test_show_source_in_colour(example: Path) -> None:
    result = run(example.parent, "show", "example.py:f", "--color", "always")
    assert result.returncode == 0, result.stderr
    assert "\x1b[" in result.stdout
    assert re.sub(r"\x1b\[[0-9;]*m", "", result.stdout).startswith("def grad_f(x, y):")


def test_show_latex_one_line_per_wrt(example: Path) -> None:
    result = run(example.parent, "show", "example.py:f", "--format", "latex", "--wrt", "x,y")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        r"\frac{\partial f}{\partial x} = 2 x + y \cos{\left(x \right)}",
        r"\frac{\partial f}{\partial y} = \sin{\left(x \right)}",
    ]
    only_y = run(example.parent, "show", "example.py:f", "--format", "latex", "--wrt", "y")
    assert only_y.stdout.splitlines() == [lines[1]]
    default = run(example.parent, "show", "example.py:f", "--format", "latex")
    assert default.stdout.splitlines() == [lines[0]]


def test_show_graph(example: Path) -> None:
    result = run(example.parent, "show", "example.py:branch", "--format", "graph", "--wrt", "x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("branch(x, y):")
    assert "return dfdx" in result.stdout


def test_show_with_static_values(example: Path) -> None:
    result = run(example.parent, "show", "example.py:power_sum", "--static", "n=3", "--format", "latex")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == r"\frac{\partial \mathrm{power\_sum}}{\partial x} = 2 x + 1"


def test_show_loop_bound_without_static_names_the_option(example: Path) -> None:
    result = run(example.parent, "show", "example.py:power_sum")
    assert result.returncode == 1
    assert re.search(r"example\.py:\d+:\d+: error: ", result.stderr)
    assert "--static" in result.stderr


def test_show_array_program_needs_shapes(example: Path) -> None:
    result = run(example.parent, "show", "example.py:norm2")
    assert result.returncode == 2  # a usage error: the command line lacks --shape
    assert "array operations" in result.stderr and "--shape x=3" in result.stderr
    shaped = run(example.parent, "show", "example.py:norm2", "--shape", "x=3", "--format", "latex")
    assert shaped.returncode == 0, shaped.stderr
    assert shaped.stdout.strip() == r"\frac{\partial \mathrm{norm2}}{\partial x} = 2 x"
    at = run(example.parent, "show", "example.py:norm2", "--at", "x=[1.0, 2.0]")
    assert at.returncode == 0, at.stderr
    assert "def grad_norm2(x):" in at.stdout


def test_show_unsupported_syntax_reports_file_line_col(example: Path) -> None:
    result = run(example.parent, "show", "example.py:halving")
    assert result.returncode == 1
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    match = re.fullmatch(r"(.*example\.py):(\d+):(\d+): error: (.*)", first)
    assert match, result.stderr
    assert int(match.group(2)) == line_of("MARK: try")
    assert int(match.group(3)) == 5  # the `try` keyword, 1-based
    assert "try" in match.group(4)
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("example.py:nope", "has no function `nope` (functions defined there: branch, detached, f"),
        ("missing.py:f", "missing.py: no such file"),
        ("example.py", "expected FILE.py:FUNC"),
    ],
)
def test_show_bad_target_is_a_usage_error(example: Path, target: str, message: str) -> None:
    result = run(example.parent, "show", target)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.startswith("symgrad show: error: ")


def test_file_that_fails_to_import(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def f(x):\n    return x +\n")
    result = run(tmp_path, "show", "broken.py:f")
    assert result.returncode == 1
    assert re.match(r".*broken\.py:2:\d+: error: ", result.stderr)


# --- check -----------------------------------------------------------------------------------------


def table(stdout: str) -> dict[str, list[str]]:
    rows = [line.split() for line in stdout.splitlines()[1:-1]]
    return {row[0]: row[1:] for row in rows}


def test_check_agrees(example: Path) -> None:
    result = run(example.parent, "check", "example.py:f", "--wrt", "x,y", "--at", "x=1.0,y=2.0")
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:2] == ["parameter", "symgrad"]
    rows = table(result.stdout)
    assert set(rows) == {"x", "y"}
    assert float(rows["x"][0]) == pytest.approx(2.0 + 2.0 * math.cos(1.0), rel=1e-11)
    assert float(rows["y"][1]) == pytest.approx(math.sin(1.0), rel=1e-9)
    assert all(row[-1] == "ok" for row in rows.values())
    assert result.stdout.splitlines()[-1].startswith("ok: 2 partial derivatives agree")


def test_check_integer_point_defaults_and_branches(example: Path) -> None:
    # x=2 is an int on the command line: a wrt value, so it is read as 2.0; y takes its default.
    result = run(example.parent, "check", "example.py:branch", "--at", "x=2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(table(result.stdout)) == {"x"}


def test_check_static_and_plain_central_differences(example: Path) -> None:
    result = run(
        example.parent,
        "check",
        "example.py:power_sum",
        "--static",
        "n=4",
        "--at",
        "x=1.5",
        "--method",
        "central",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert float(table(result.stdout)["x"][0]) == pytest.approx(1 + 2 * 1.5 + 3 * 1.5**2)


def test_check_arrays_row_per_element(example: Path) -> None:
    result = run(example.parent, "check", "example.py:norm2", "--at", "x=[1.0, -2.0, 3.5]")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = table(result.stdout)
    assert list(rows) == ["x[0]", "x[1]", "x[2]"]
    assert [float(r[0]) for r in rows.values()] == [2.0, -4.0, 7.0]


def test_check_elementwise_function_on_arrays(example: Path) -> None:
    # The original `branch` cannot run on arrays (`if x > y`): it is evaluated element by element.
    result = run(example.parent, "check", "example.py:branch", "--at", "x=[0.1, 2.0]")
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(table(result.stdout)) == ["x[0]", "x[1]"]


def test_check_disagreement_fails(example: Path) -> None:
    result = run(example.parent, "check", "example.py:detached", "--at", "x=1.5")
    assert result.returncode == 1
    row = table(result.stdout)["x"]
    assert float(row[0]) == 1.5 and float(row[1]) == pytest.approx(3.0)
    assert row[-1] == "FAIL"
    assert result.stdout.splitlines()[-1].startswith("FAIL: 1 of 1")


def test_check_rtol_is_used(example: Path) -> None:
    result = run(example.parent, "check", "example.py:detached", "--at", "x=1.5", "--rtol", "0.6")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_missing_value(example: Path) -> None:
    result = run(example.parent, "check", "example.py:f", "--at", "x=1.0")
    assert result.returncode == 2
    assert "needs a value for `y`: pass --at y=..." in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "x=1.0,2.0"], "expected NAME=VALUE pairs"),
        (["--at", "x=foo"], "must be a Python literal"),
        (["--at", "z=1.0"], "has no parameter z"),
        (["--at", "x=1.0", "--static", "x=2"], "both in --static and --at"),
    ],
)
def test_check_bad_values(example: Path, args: list[str], message: str) -> None:
    result = run(example.parent, "check", "example.py:norm2", *args)
    assert result.returncode == 2
    assert message in result.stderr


# --- plot ------------------------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed (pip install 'symgrad[plot]')")
def test_plot_writes_a_png(example: Path) -> None:
    out = example.parent / "out.png"
    result = run(
        example.parent,
        "plot",
        "example.py:branch",
        "--wrt",
        "x",
        "--range",
        "-8:8",
        "--at",
        "y=0.5",
        "-o",
        "out.png",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wrote out.png"
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed (pip install 'symgrad[plot]')")
def test_plot_reducing_function_point_by_point(example: Path) -> None:
    result = run(
        example.parent, "plot", "example.py:norm2", "--range=-2:2", "--points", "30", "-o", "norm2.png"
    )
    assert result.returncode == 0, result.stderr
    assert (example.parent / "norm2.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_needs_one_parameter(example: Path) -> None:
    result = run(example.parent, "plot", "example.py:f", "--wrt", "x,y", "--range", "0:1", "-o", "f.png")
    assert result.returncode == 2
    assert "with respect to one parameter: pass --wrt x" in result.stderr
    # the default is the first parameter; the others need values
    result = run(example.parent, "plot", "example.py:f", "--range", "0:1", "-o", "f.png")
    assert result.returncode == 2
    assert "pass --at y=" in result.stderr


def test_plot_bad_range(example: Path) -> None:
    result = run(example.parent, "plot", "example.py:branch", "--range", "3:1", "-o", "f.png")
    assert result.returncode == 2
    assert "LOW < HIGH" in result.stderr


def test_plot_without_matplotlib_says_how_to_install(example: Path) -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"  # makes `import matplotlib` fail
        "from symgrad.__main__ import main\n"
        "raise SystemExit(main(['plot', 'example.py:branch', '--range', '0:1', '-o', 'f.png']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=example.parent, env=ENV, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "pip install 'symgrad[plot]'" in result.stderr
    assert not (example.parent / "f.png").exists()


# --- in-process helpers ----------------------------------------------------------------------------


def test_parse_assignments() -> None:
    assert cli.parse_assignments("x=1.0,y=-2,v=[1, (2)],s='a,b'", "--at") == {
        "x": 1.0,
        "y": -2,
        "v": [1, 2],
        "s": "a,b",
    }
    assert math.isinf(cli.parse_assignments("x=inf", "--at")["x"])


def test_finite_difference_accuracy() -> None:
    assert cli.finite_difference(math.exp, 1.0) == pytest.approx(math.e, rel=1e-11)
    assert cli.finite_difference(math.exp, 1.0, richardson=False) == pytest.approx(math.e, rel=1e-9)
    assert cli.finite_difference(math.sin, 1e4) == pytest.approx(math.cos(1e4), abs=1e-8)
    # near the edge of the domain: steps where log/sqrt are undefined are skipped
    assert cli.finite_difference(math.log, 1e-3) == pytest.approx(1e3, rel=1e-9)
    assert cli.finite_difference(math.sqrt, 1e-6) == pytest.approx(500.0, rel=1e-9)


def test_check_reports_the_error_estimate(example: Path) -> None:
    """'fd error' is the finite differences' own error estimate, on the scale of 'rel. error'."""
    result = run(example.parent, "check", "example.py:f", "--wrt", "x,y", "--at", "x=1.0,y=2.0")
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0]
    assert header.split()[:6] == ["parameter", "symgrad", "finite", "diff.", "fd", "error"]
    for _, _, fd_error, error, verdict in table(result.stdout).values():
        assert 0.0 <= float(fd_error) < 1e-9 and float(error) < 1e-9 and verdict == "ok"
    exact = 2.0 + 2.0 * math.cos(1.0)
    value, estimated = cli.estimate(lambda x: x * x + 2 * math.sin(x), 1.0)
    assert abs(value - exact) <= max(10 * estimated, 1e-14)  # the estimate bounds the error
    central = run(example.parent, "check", "example.py:f", "--at", "x=1.0,y=2.0", "--method", "central")
    assert table(central.stdout)["x"][2] == "-"  # one plain difference: no estimate


@pytest.mark.parametrize("method", ["scipy", "ridders"])
def test_estimate_methods(method: str) -> None:
    if method == "scipy":
        pytest.importorskip("scipy.differentiate")
    cases = [(math.exp, 1.0, math.e), (math.sin, 1e4, math.cos(1e4)), (math.log, 1e-3, 1e3)]
    cases += [(math.sqrt, 1e-6, 500.0), (lambda x: 1 / x, 0.01, -1e4)]
    for f, x, exact in cases:
        value, error = cli.estimate(f, x, method=method)
        assert value == pytest.approx(exact, rel=1e-9), (f, x)
        assert 0.0 <= error < 1e-6 * max(1.0, abs(exact))


def test_check_without_scipy_falls_back_to_ridders(monkeypatch) -> None:
    monkeypatch.setattr(cli, "_scipy_derivative", lambda: None)
    assert cli.estimate(math.exp, 1.0) == cli.estimate(math.exp, 1.0, method="ridders")
    with pytest.raises(cli.CliError, match=r"SciPy >= 1\.15"):
        cli.estimate(math.exp, 1.0, method="scipy")


def test_check_says_when_finite_differences_cannot_decide(example: Path) -> None:
    # rtol below what float64 differences reach: the failing row says the estimate is too coarse
    result = run(example.parent, "check", "example.py:f", "--at", "x=1.0,y=2.0", "--rtol", "1e-17")
    notes = [line for line in result.stdout.splitlines() if line.startswith("note:")]
    assert result.returncode == 1 and notes and "own error estimate" in notes[0]


def test_format_error() -> None:
    exc = UnsupportedSyntaxError(
        "no", filename="a.py", lineno=3, col=5, hint="yes", source_line="    while x:\n"
    )
    assert cli.format_error(exc).splitlines() == [
        "a.py:3:5: error: no",
        "    while x:",
        "    ^",
        "  hint: yes",
    ]
    assert cli.format_error(UnsupportedSyntaxError("no")) == "symgrad: error: no"


def test_main_in_process(example: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(["show", f"{example}:f", "--format", "latex"], out=out, err=err)
    assert status == 0, err.getvalue()
    assert out.getvalue().startswith(r"\frac{\partial f}{\partial x}")


# --- E11: usage errors exit 2, messages a user can act on -------------------------------------------


def followed(args: tuple[str, ...], stderr: str, option: str) -> tuple[str, ...]:
    """`args` with the `option VALUE` that the message says to write (shell quoting as printed)."""
    match = re.search(rf"{option} ('[^']*'|\S+)", stderr.split("hint:")[-1].split("write")[-1])
    assert match, stderr
    return (*args, option, shlex.split(match.group(1))[0])


@pytest.mark.parametrize(
    ("wrt", "message"),
    [("z", "has no parameter z (parameters: x, y), e.g. --wrt x"), ("5", "position 5 is out of range")],
)
def test_E11_unknown_wrt_is_a_usage_error(example: Path, wrt: str, message: str) -> None:
    result = run(example.parent, "show", "example.py:f", "--wrt", wrt)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    hinted = run(example.parent, "show", "example.py:f", "--format", "latex", "--wrt", "x")
    assert hinted.returncode == 0, hinted.stderr


def test_E11_wrt_and_static_together_is_a_usage_error(example: Path) -> None:
    result = run(example.parent, "show", "example.py:power_sum", "--wrt", "n", "--static", "n=3")
    assert result.returncode == 2, result.stderr
    assert re.search(r"example\.py:\d+:\d+: error: .*both `wrt` and `static`", result.stderr)


def test_E11_missing_shape_is_a_usage_error_and_its_hint_works(example: Path) -> None:
    args = ("show", "example.py:norm2", "--format", "latex")
    result = run(example.parent, *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("symgrad show: error: `norm2` uses array operations")
    hinted = run(example.parent, *followed(args, result.stderr, "--shape"))
    assert hinted.returncode == 0, hinted.stderr
    assert hinted.stdout.strip() == r"\frac{\partial \mathrm{norm2}}{\partial x} = 2 x"


@pytest.mark.parametrize("where", ["target", "helper"])
def test_E11_syntax_error_shows_file_line_and_caret(tmp_path: Path, where: str) -> None:
    bad = "def f(x):\n    y = x * 2\n    return y +* 2\n"
    (tmp_path / "good.py").write_text("import broken_helper\n\ndef f(x):\n    return x\n")
    (tmp_path / ("broken.py" if where == "target" else "broken_helper.py")).write_text(bad)
    result = run(tmp_path, "show", "broken.py:f" if where == "target" else "good.py:f")
    assert result.returncode == 1
    try:  # the oracle: Python's own parser
        compile(bad, "broken.py", "exec")
    except SyntaxError as exc:
        lineno, offset, msg = exc.lineno, exc.offset, exc.msg
    name = "broken" if where == "target" else "broken_helper"
    lines = result.stderr.splitlines()
    assert re.fullmatch(rf".*{name}\.py:{lineno}:{offset}: error: {re.escape(msg)}", lines[0]), result.stderr
    source_line = bad.splitlines()[lineno - 1]
    assert lines[1] == "    " + source_line.strip()
    caret = offset - 1 - (len(source_line) - len(source_line.lstrip()))
    assert lines[2] == "    " + " " * caret + "^"
    assert lines[1][lines[2].index("^")] == "*"  # under the token Python rejects


@pytest.mark.parametrize(
    ("target", "words", "option"),
    [
        ("example.py:f", ["x=1.0", "y=2.0"], "--at"),
        ("example.py:f", ["x=1.0,", "y=2.0"], "--at"),
        ("example.py:norm2", ["x=[1.0,", "2.0]"], "--at"),
        ("example.py:power_sum", ["n=3", "x=1.5"], "--static"),
    ],
)
def test_E11_space_separated_values_say_commas(
    example: Path, target: str, words: list[str], option: str
) -> None:
    args = ("check", target) if option == "--at" else ("show", target)
    result = run(example.parent, *args, option, *words)
    assert result.returncode == 2
    assert "separated by commas" in result.stderr
    assert result.stderr.startswith(f"symgrad {args[0]}: error: {option} takes one argument")
    if option == "--static":  # x is not static: the command still needs it, through --at
        return
    hinted = run(example.parent, *followed(args, result.stderr, option))
    assert hinted.returncode == 0, hinted.stdout + hinted.stderr


def test_E11_missing_loop_bound_hints_static(example: Path) -> None:
    args = ("check", "example.py:power_sum", "--at", "x=1.5")
    result = run(example.parent, *args)
    assert result.returncode == 2
    assert "`n`, which bounds a loop" in result.stderr and "--at n=" not in result.stderr
    hinted = run(example.parent, *followed(args, result.stderr, "--static"))
    assert hinted.returncode == 0, hinted.stdout + hinted.stderr
    assert float(table(hinted.stdout)["x"][0]) == pytest.approx(1 + 2 * 1.5)  # d/dx (1 + x + x**2)


def test_E11_loop_bound_given_with_at_hints_moving_it(example: Path) -> None:
    result = run(example.parent, "check", "example.py:power_sum", "--at", "x=1.5,n=3")
    assert result.returncode == 1
    assert "move n from --at to --static: --static n=3" in result.stderr
    hinted = run(example.parent, "check", "example.py:power_sum", "--at", "x=1.5", "--static", "n=3")
    assert hinted.returncode == 0, hinted.stdout + hinted.stderr


def test_E11_show_loop_bound_hint_works(example: Path) -> None:
    args = ("show", "example.py:power_sum", "--format", "latex")
    result = run(example.parent, *args)
    assert result.returncode == 1
    hinted = run(example.parent, *followed(args, result.stderr, "--static"))
    assert hinted.returncode == 0, hinted.stderr
    assert hinted.stdout.strip() == r"\frac{\partial \mathrm{power\_sum}}{\partial x} = 2 x + 1"


def test_E11_loop_over_len_is_not_called_a_loop_bound() -> None:
    def rows(x, n, m):
        s = 0.0
        for i in range(len(x) + x.shape[0] - n):
            s = s + x[i] * m
        return s

    assert cli.loop_bounds(rows) == ["n"]


def test_E11_check_at_a_kink_says_so(example: Path) -> None:
    result = run(example.parent, "check", "example.py:relu", "--at", "x=[-1.0, 0.0, 2.0]")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    label, g, fd, _, _, *status = lines[2].split()  # ..., fd error, rel. error, status
    assert (label, float(g), status) == ("x[1]", 0.0, ["FAIL", "(kink)"])
    assert float(fd) == pytest.approx(0.5, rel=1e-9)  # central differences: the mean of 0 and 1
    assert lines[1].split()[-1] == lines[3].split()[-1] == "ok"
    note = " ".join(line.strip() for line in lines[4:-1])
    assert note.startswith("note: x[1] = 0 is a kink of `relu`: its derivative is 0 from the left and 1")
    assert "symgrad gives 0, the derivative from the left" in note
    assert lines[-1].endswith("1 at a kink, see the note")
    off_the_kink = run(example.parent, "check", "example.py:relu", "--at", "x=0.25")
    assert off_the_kink.returncode == 0 and "kink" not in off_the_kink.stdout


def test_E11_disagreement_off_a_kink_has_no_kink_note(example: Path) -> None:
    result = run(example.parent, "check", "example.py:detached", "--at", "x=1.5")
    assert result.returncode == 1
    assert "kink" not in result.stdout


def test_one_sided_derivatives() -> None:
    assert cli.one_sided(math.exp, 1.0, 1) == pytest.approx(math.e, rel=1e-9)
    assert cli.one_sided(math.exp, 1.0, -1) == pytest.approx(math.e, rel=1e-9)
    assert (cli.one_sided(abs, 0.0, -1), cli.one_sided(abs, 0.0, 1)) == (-1.0, 1.0)
    # where the function is undefined on one side, that side's steps are skipped
    assert cli.one_sided(math.sqrt, 1e-6, 1) == pytest.approx(500.0, rel=1e-6)
