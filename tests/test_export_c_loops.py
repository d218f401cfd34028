"""C export of kept loops: each program compiled once with `cc -O2 -Wall -Werror`, its value
checked against the original function run by Python, its gradient against symgrad's compiled
gradient and against central differences."""

from __future__ import annotations

import io
import math
import shutil
from pathlib import Path

import pytest
import sympy

import symgrad
from symgrad import cli
from symgrad.errors import SymgradError
from symgrad.export import _c_files, _Request, export_files
from symgrad.graph import Graph, Loop, real_symbol
from tests.helpers import central_diff, compile_c_harness, run_c_harness

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on PATH")

TOL = 1e-14  # against symgrad's compiled program: the same operations, in the same order
VALUE_TOL = 1e-12  # against the original function: SymPy may order a sum's terms otherwise
FD_TOL = 1e-6  # against central differences, which are good to about h**2


# --- the functions exported ----------------------------------------------------------------------


def euler(x, k):
    """dx/dt = -k x + sin(x), 200 explicit Euler steps: kept as a loop by default."""
    s = x
    for _ in range(200):
        s = s + 0.01 * (-k * s + math.sin(s))
    return s


def oscillator(x, k):
    """A damped oscillator, position and velocity updated together (symplectic-style)."""
    s, v = x, 0.0
    h = 0.05
    for _ in range(120):
        a = -k * math.sin(s) - 0.1 * v
        s, v = s + h * v, v + h * a
    return s * s + v


def rotate(a, b, w):
    """A swap each step, `a, b = b, a`: the updates read each other's old values."""
    for _ in range(100):
        a, b = b, a
        a = a + w * math.sin(b)
    return a + 2.0 * b


def indexed(x):
    """The body reads the index: in C a `long`, which must divide as a float."""
    s = 0.0
    for i in range(80):
        s = s + math.sin(i * x) / (i + 1) + x * (3 / (i + 2)) + x * (i / 7)
    return s


def tape(x):
    """A nonlinear carry: the reverse pass reads every iteration's saved value."""
    s = x
    for _ in range(70):
        s = math.sin(s) * x + 0.5
    return s


def nested(x, y):
    """Loops in a loop: the outer reverse pass runs the inner loop again, saving its tape."""
    s = x
    for i in range(12):
        for j in range(1, 10):
            s = math.sin(s) * y + 1e-3 * i * j + x * (i / j)  # `i / j` divides ints as floats
        s = s + 0.1 * x
    return s


def stops(x):
    """A `for` with a `break`: at most 100 iterations, so its tape is bounded."""
    s = x
    for _ in range(100):
        s = s * 1.1 + math.sin(s)
        if s > 50.0:
            break
    return s


def growing(x):
    """A `while` loop whose reverse pass reads no saved values (its derivative is linear)."""
    s = x
    while s < 10.0:
        s = s * 1.5 + 0.25
    return s * x


def grows_nonlinearly(x):
    """A `while` loop whose reverse pass reads a tape: refused, with a hint."""
    s = x
    while s < 10.0:
        s = s * 1.5 + math.sin(s)
    return s


def grows_bounded(x):
    """`grows_nonlinearly` rewritten as the refusal's hint says."""
    s = x
    for _ in range(1000):
        if not (s < 10.0):
            break
        s = s * 1.5 + math.sin(s)
    return s


# --- building and running ----------------------------------------------------------------------------


def build(tmp_path: Path, fn, wrt, loops=None) -> tuple[Path, dict[str, str]]:
    """The exported files written to `tmp_path` and their harness compiled (once)."""
    stem = fn.__name__
    files = export_files(fn, wrt=wrt, lang="c", stem=stem, loops=loops)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return compile_c_harness(tmp_path, stem), files


def run(harness: Path, args) -> list[float]:
    return [value for _, value in run_c_harness(harness, args)]


def close(got: float, want: float, tol: float) -> bool:
    return abs(got - want) <= tol * max(1.0, abs(want))


def check(tmp_path: Path, fn, wrt: tuple[str, ...], points, loops=None) -> dict[str, str]:
    """C against three oracles at each point: Python's value of `fn`, symgrad's gradient, and
    central differences."""
    harness, files = build(tmp_path, fn, wrt, loops)
    params = list(fn.__code__.co_varnames[: fn.__code__.co_argcount])
    reference = symgrad.value_and_grad(fn, wrt=wrt, loops=loops or "auto")
    for args in points:
        value, *gradient = run(harness, args)
        assert close(value, fn(*args), VALUE_TOL), (value, fn(*args))
        want_value, want = reference(*args)
        want = list(want) if isinstance(want, tuple) else [want]
        assert close(value, want_value, TOL)
        for name, got, expected in zip(wrt, gradient, want):
            assert close(got, expected, TOL), (name, got, expected)
            assert close(got, central_diff(fn, args, params.index(name)), FD_TOL), (name, got)
    return files


# --- the loops --------------------------------------------------------------------------------------


def test_euler_steps_keep_a_tape_in_the_work_array(tmp_path):
    files = check(tmp_path, euler, ("x", "k"), [(0.7, 1.3), (-1.2, 0.4)])
    source, header = files["euler.c"], files["euler.h"]
    assert "for (long _ = 0; _ < 200; _++) {" in source  # a loop, not 200 copies of the body
    assert "for (long sg__1 = 199; sg__1 >= 0; sg__1--) {" in source  # C reserves `__1`
    assert "double *sg_work)" in source and "#define VALUE_AND_GRAD_EULER_WORK 200" in header
    assert "static double work[VALUE_AND_GRAD_EULER_WORK];" in files["euler_test.c"]
    assert "malloc" not in source


def test_several_carries_update_in_parallel(tmp_path):
    check(tmp_path, oscillator, ("x", "k"), [(0.9, 2.0), (-0.3, 0.7)])


def test_swapped_carries_read_their_old_values(tmp_path):
    files = check(tmp_path, rotate, ("a", "b", "w"), [(0.3, -0.8, 0.05), (1.1, 0.2, -0.02)])
    assert "_old = " in files["rotate.c"]  # `a, b = b, a` through a copy of the old value


def test_the_index_is_a_long_that_divides_as_a_float(tmp_path):
    files = check(tmp_path, indexed, ("x",), [(0.37,), (-1.4,)])
    source = files["indexed.c"]
    assert "(double)i" in source and "for (long i = 0; i < 80; i++)" in source


def test_a_nonlinear_carry_reads_its_tape_backwards(tmp_path):
    files = check(tmp_path, tape, ("x",), [(0.8,), (-0.6,)])
    source = files["tape.c"]
    assert "saved_s[_] = s;" in source  # the forward loop writes the tape
    assert "for (long sg__1 = 69; sg__1 >= 0; sg__1--)" in source  # the reverse pass reads it
    assert "= saved_s[sg__1];" in source


def test_nested_loops_rerun_the_inner_loop_with_its_own_tape(tmp_path):
    files = check(tmp_path, nested, ("x", "y"), [(0.5, 0.9), (-0.4, 1.1)], loops="keep")
    # the outer tape (12), the inner loop's (9) for one outer iteration at a time
    assert "#define VALUE_AND_GRAD_NESTED_WORK 21" in files["nested.h"]


def test_a_for_loop_with_break_counts_its_iterations(tmp_path):
    files = check(tmp_path, stops, ("x",), [(0.2,), (3.0,), (-0.1,)])
    source = files["stops.c"]
    assert "long steps = 100;" in source and "steps = _;" in source
    assert "= steps - 1;" in source  # the reverse pass runs the iterations that ran


def test_an_unrolled_break_compiles_under_wall(tmp_path):
    # its conditions join as `c6 || c5 && t`, which -Wall (-Wparentheses) rejects unparenthesized
    files = check(tmp_path, stops, ("x",), [(0.2,), (3.0,)], loops="unroll")
    assert "for (" not in files["stops.c"] and " || (" in files["stops.c"]


def test_a_while_loop_without_a_tape(tmp_path):
    files = check(tmp_path, growing, ("x",), [(0.3,), (2.0,), (11.0,)])  # 11.0: no iteration
    assert "sg_work" not in files["growing.c"]


def test_a_while_loop_with_a_tape_is_refused_and_the_hint_works(tmp_path):
    with pytest.raises(
        SymgradError, match=r"the `while` loop at test_export_c_loops\.py:\d+ saves a value"
    ) as info:
        export_files(grows_nonlinearly, lang="c")
    hint = info.value.hint
    assert "for k in range(N):" in hint and "if not (s < 10.0): break" in hint
    assert "--lang python" in hint
    check(tmp_path, grows_bounded, ("x",), [(0.3,), (2.0,), (11.0,)])
    for x in (0.3, 2.0):  # the rewrite is the same function
        assert grows_bounded(x) == grows_nonlinearly(x)


def test_a_tape_of_tapes_is_refused():
    """An outer loop saving an inner loop's whole tape per iteration (a 2-D tape): first-order
    programs do not make one (an outer reverse pass runs the inner loop again), so the program
    is built by hand."""
    x, s, u, u_next, acc, acc_next, row = (
        real_symbol(n) for n in ("x", "s", "u", "u_1", "acc", "acc_1", "r")
    )
    i, j, k = (sympy.Symbol(n, integer=True) for n in ("i", "j", "k"))
    inner_tape, outer_tape = real_symbol("saved_u"), real_symbol("saved_tapes")
    line = (__file__, 7)
    inner = Loop(
        body=Graph("f", ("j", "u"), (j, u), nodes=[(u_next, sympy.sin(u))], outputs=(u_next, u)),
        index=j,
        carries=(u,),
        init=(s,),
        stacked=(inner_tape,),
        length=3,
        line=line,
    )
    outer = Loop(
        body=Graph("f", ("i", "s"), (i, s), nodes=[(real_symbol("loop0"), inner)], outputs=(u, inner_tape)),
        index=i,
        carries=(s,),
        init=(x,),
        stacked=(outer_tape,),
        length=4,
        line=line,
    )
    reader = Loop(
        body=Graph("f", ("k", "acc", "r"), (k, acc, row), nodes=[(acc_next, acc + row)], outputs=(acc_next,)),
        index=k,
        carries=(acc,),
        init=(sympy.S.Zero,),
        items=((row, outer_tape),),
        length=4,
        line=line,
    )
    graph = Graph("f", ("x",), (x,), nodes=[(real_symbol("loop1"), outer), (real_symbol("loop2"), reader)])
    graph.outputs = (acc, x)
    request = _Request.make(euler, "value_and_grad", None, None, None, None, None)
    request.graph, request.stem = graph, "f"
    with pytest.raises(
        SymgradError, match=r"the loop at test_export_c_loops\.py:7 saves a tape of tapes"
    ) as info:
        _c_files(request)
    assert "--lang python" in info.value.hint


def test_cli_exports_a_loop_and_refuses_a_while_loop_with_its_hint(tmp_path, monkeypatch):
    model = tmp_path / "model.py"
    model.write_text(
        "import math\n\n\ndef loss(x):\n    for _ in range(100):\n        x = math.sin(x) + 0.5\n    return x\n"
        "\n\ndef grows(x):\n    while x < 10.0:\n        x = x * 1.5 + math.sin(x)\n    return x\n"
    )
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["export", "model.py:loss", "--lang", "c", "-o", "loss.c"], out=out, err=err) == 0, (
        err.getvalue()
    )
    assert "#define VALUE_AND_GRAD_LOSS_WORK 100" in (tmp_path / "loss.h").read_text()
    err = io.StringIO()
    assert cli.main(["export", "model.py:grows", "--lang", "c", "-o", "grows.c"], out=out, err=err) == 1
    assert (
        "the `while` loop at model.py:11" in err.getvalue() and "if not (x < 10.0): break" in err.getvalue()
    )
