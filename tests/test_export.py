"""`symgrad export`: standalone modules that run without symgrad and agree with it, and C."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import symgrad
from symgrad import cli, logsumexp
from symgrad.errors import SymgradError
from symgrad.export import export, export_files
from tests.helpers import compile_c_harness, run_c_harness

NUMPY_SITE = str(Path(np.__file__).resolve().parent.parent)
TOL = 1e-14


# --- the functions exported ---------------------------------------------------------------------


def scalar_model(x, y):
    z = np.sin(x) * y + np.exp(-x * y)
    if z > 1.0:
        z = z + np.log1p(x * x)
    return z / (1 + y * y)


def logreg(w, b, X, y):
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z)


def clipped(x, t):
    e = np.where(x > t, x - t, 0.1 * (x - t))
    return np.sum(np.clip(e, -1.0, 1.0) ** 2) + logsumexp(x) + x[0] * x[2]


def c_model(x, y, a):
    s = 1.0 / (1.0 + np.exp(-x * a))
    if x > y:
        r = s * np.log(1 + y * y)
    else:
        r = np.sqrt(x * x + 1) - np.abs(y) + np.maximum(x, 0.5 * y)
    return r + np.logaddexp(x, y) + np.sin(a) ** 3


def poly(x, n):
    s = 0.0
    for i in range(n):
        s = s + x**i
    return s


def long_loop(x):
    for _ in range(100):
        x = x - 0.01 * np.sin(x)
    return x


# --- running an exported module where symgrad cannot be imported ----------------------------------

RUNNER = textwrap.dedent(
    """\
    import json, sys
    stdlib = [p for p in sys.path if "site-packages" not in p]
    sys.path[:] = [sys.argv[1], sys.argv[2], *stdlib]
    try:
        import symgrad
    except ImportError:
        pass
    else:
        raise SystemExit("symgrad is importable")
    module = __import__(sys.argv[3])
    numpy_loaded = "numpy" in sys.modules
    if numpy_loaded:
        import numpy
    cases = json.loads(sys.argv[5])
    results = []
    for args in cases:
        args = [numpy.array(a) if isinstance(a, list) else a for a in args]
        out = getattr(module, sys.argv[4])(*args)
        def plain(v):
            if isinstance(v, tuple):
                return [plain(i) for i in v]
            if hasattr(v, "tolist"):
                return {"array": v.tolist(), "type": type(v).__name__}
            return {"number": v, "type": type(v).__name__}
        results.append(plain(out))
    print(json.dumps({"numpy": numpy_loaded, "results": results}))
    """
)


def run_isolated(tmp_path: Path, text: str, module: str, function: str, cases: list[list]) -> dict:
    """Run the exported module in `python -I -S` (no site-packages processing: the editable
    install's finder never runs) with only its folder, NumPy's and the standard library's on
    `sys.path`."""
    folder = tmp_path / "exported"
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(text)
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(runner),
            str(folder),
            NUMPY_SITE,
            module,
            function,
            json.dumps(cases),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def flat(value) -> list[float]:
    """Every number in a (nested) result, in order."""
    if isinstance(value, (list, tuple)):
        return [x for item in value for x in flat(item)]
    if isinstance(value, dict):
        return flat(value["array"] if "array" in value else value["number"])
    return [float(x) for x in np.ravel(value)]


def assert_close(got, want, tol=TOL) -> None:
    got, want = flat(got), flat(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert abs(g - w) <= tol * max(1.0, abs(w)), (got, want)


def central(f, args, k, h=1e-6):
    """d f / d args[k] by central differences (element by element for an array), of an f that
    returns one number (tests/helpers.central_diff is for elementwise functions: it broadcasts
    the value to the arguments' shape, which these arguments do not share)."""
    x = np.asarray(args[k], dtype=float)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += h
        minus[index] -= h
        lo = list(args)
        hi = list(args)
        hi[k] = plus if x.shape else float(plus)
        lo[k] = minus if x.shape else float(minus)
        grad[index] = (f(*hi) - f(*lo)) / (2 * h)
    return grad


# --- (a) Python modules without symgrad -------------------------------------------------------------


def test_scalar_module_imports_math_only_and_agrees(tmp_path):
    text = export(scalar_model, wrt=("x", "y"))
    assert "import numpy" not in text and "symgrad" not in text.split('"""', 2)[2]
    cases = [[0.3, 1.7], [1.2, -0.4], [2.0, 0.5]]
    run = run_isolated(tmp_path, text, "scalar_grad", "value_and_grad_scalar_model", cases)
    assert run["numpy"] is False
    reference = symgrad.value_and_grad(scalar_model, wrt=("x", "y"))
    for args, got in zip(cases, run["results"]):
        want = reference(*args)
        assert_close(got, want)
        assert got[0]["type"] == "float" and all(g["type"] == "float" for g in got[1])
        for k in range(2):
            fd = central(scalar_model, args, k)
            assert abs(flat(got[1])[k] - float(fd)) < 1e-6 * max(1.0, abs(float(fd)))


def test_array_module_logistic_regression_agrees(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 3)), (rng.random(6) > 0.5).astype(float)
    shapes = {"w": 3, "X": (6, 3), "y": 6}
    text = export(logreg, wrt=("w", "b"), shapes=shapes)
    assert "sg.sigmoid" in text and "def sigmoid(" in text  # the helper, inlined
    cases = [[rng.normal(size=3).tolist(), 0.3, X.tolist(), y.tolist()] for _ in range(3)]
    run = run_isolated(tmp_path, text, "logreg_grad", "value_and_grad_logreg", cases)
    assert run["numpy"] is True
    reference = symgrad.value_and_grad(logreg, wrt=("w", "b"))
    for args, got in zip(cases, run["results"]):
        arrays = [np.array(a) if isinstance(a, list) else a for a in args]
        want = reference(*arrays)
        assert_close(got, want)
        assert got[1][0]["type"] == "ndarray" and got[1][1]["type"] == "float"
        assert_close(got[1][0], central(logreg, arrays, 0), tol=1e-6)
        assert_close(got[1][1], central(logreg, arrays, 1), tol=1e-6)


def test_array_module_with_helpers_where_clip_indexing(tmp_path):
    text = export(clipped, "grad", wrt=("x", "t"), shapes={"x": 4})
    for helper in ("def logsumexp(", "def scatter("):
        assert helper in text
    assert "numpy.where(" in text
    rng = np.random.default_rng(1)
    cases = [[(2 * rng.normal(size=4)).tolist(), 0.2] for _ in range(3)]
    run = run_isolated(tmp_path, text, "clipped_grad", "grad_clipped", cases)
    reference = symgrad.grad(clipped, wrt=("x", "t"))
    for args, got in zip(cases, run["results"]):
        arrays = [np.array(args[0]), args[1]]
        assert_close(got, reference(*arrays))
        assert_close(got[0], central(clipped, arrays, 0), tol=1e-6)


def test_exported_module_checks_shapes():
    namespace: dict = {}
    exec(export(logreg, shapes={"w": 3, "X": (6, 3), "y": 6}), namespace)
    with pytest.raises(ValueError, match=r"this code is for"):
        namespace["value_and_grad_logreg"](np.zeros(4), 0.0, np.zeros((6, 4)), np.zeros(6))


def test_exported_program_is_symgrads():
    """The exported function runs the statements symgrad's own `.source` runs."""
    compiled = symgrad.value_and_grad(logreg, wrt=("w", "b"))
    compiled(np.zeros(3), 0.0, np.zeros((6, 3)), np.zeros(6))
    body = compiled.source.splitlines()[2:-1]  # between the docstring and the return
    text = export(logreg, wrt=("w", "b"), shapes={"w": 3, "X": (6, 3), "y": 6})
    assert "\n".join(body) in text


def test_static_values_are_built_in():
    text = export(poly, "grad", static={"n": 4})
    assert "n=4" in text
    namespace: dict = {}
    exec(text, namespace)
    assert namespace["grad_poly"](1.5) == symgrad.grad(poly, static="n")(1.5, 4)


# --- (b) C ---------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on PATH")
def test_c_export_compiles_and_agrees(tmp_path):
    files = export_files(c_model, wrt=("x", "y", "a"), lang="c", stem="model_grad", values={"x": 0.7})
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    harness = compile_c_harness(tmp_path, "model_grad", "harness")
    reference = symgrad.value_and_grad(c_model, wrt=("x", "y", "a"))
    for args in ([0.7, 1.0, 1.0], [1.3, -0.4, 2.0], [-0.5, 0.8, -1.5], [2.0, 2.0, 0.3]):
        given = [] if args == [0.7, 1.0, 1.0] else args  # the built-in values
        printed = run_c_harness(harness, given)
        assert [label for label, _ in printed] == ["value", "d/dx", "d/dy", "d/da"]
        assert_close([value for _, value in printed], reference(*args))


def test_c_header_documents_the_function():
    files = export_files(c_model, "grad", wrt=("x", "y"), lang="c", stem="m")
    header = files["m.h"]
    assert "void grad_c_model(double x, double y, double a, double *sg_out);" in header
    assert "sg_out[0] = d/dx, sg_out[1] = d/dy" in header
    assert '#include "m.h"' in files["m.c"]


# --- (c) determinism ---------------------------------------------------------------------------------


def test_exporting_twice_gives_the_same_text():
    shapes = {"w": 3, "X": (6, 3), "y": 6}
    assert export(logreg, shapes=shapes) == export(logreg, shapes=shapes)
    assert export(scalar_model, wrt=("x", "y")) == export(scalar_model, wrt=("x", "y"))
    assert export_files(c_model, lang="c") == export_files(c_model, lang="c")
    symgrad.value_and_grad(scalar_model, wrt=("x", "y"))(0.3, 1.7)  # compiled meanwhile: no matter
    assert export(scalar_model, wrt=("x", "y")) == export(scalar_model, wrt=("x", "y"))


def test_header_says_what_and_where_from():
    text = export(logreg, wrt=("w", "b"), shapes={"w": 3, "X": (6, 3), "y": 6})
    docstring = text.split('"""')[1]
    assert f"symgrad {symgrad.__version__}" in docstring
    assert "`logreg` in test_export.py" in docstring
    assert "value_and_grad_logreg(w, b, X, y) -> (value, (d/dw, d/db))" in docstring
    assert "symgrad export test_export.py:logreg --wrt w,b --shape w=3,X=(6,3),y=6" in docstring


# --- (d) refusals ---------------------------------------------------------------------------------------


def test_c_refuses_array_programs():
    with pytest.raises(
        SymgradError, match="cannot be exported as C: it is compiled for array shapes"
    ) as info:
        export(logreg, lang="c", shapes={"w": 3, "X": (6, 3), "y": 6})
    assert "--lang python" in info.value.hint


def test_c_keeps_a_long_loop_as_a_loop_or_unrolls_it():
    kept = export(long_loop, lang="c", kind="grad")  # compiled and run in test_export_c_loops.py
    assert "for (long _ = 0; _ < 100; _++) {" in kept and "double *sg_work" in kept
    unrolled = export(long_loop, lang="c", loops="unroll", kind="grad")
    assert "for (" not in unrolled and "sg_work" not in unrolled  # straight-line C


def test_array_program_needs_shapes():
    with pytest.raises(SymgradError, match="exported for the shapes") as info:
        export(logreg)
    assert "--shape" in info.value.hint


# --- the command line --------------------------------------------------------------------------------


def test_cli_export_python_and_c(tmp_path, monkeypatch):
    model = tmp_path / "model.py"
    model.write_text(
        "import numpy as np\n\n\ndef loss(w, b):\n    return np.log(1 + np.exp(-(2.0 * w + b)))\n"
    )
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(["export", "model.py:loss", "--wrt", "w,b", "-o", "loss_grad.py"], out=out, err=err)
    assert status == 0, err.getvalue()
    text = (tmp_path / "loss_grad.py").read_text()
    assert "symgrad export model.py:loss --wrt w,b" in text
    namespace: dict = {}
    exec(text, namespace)
    value, (dw, db) = namespace["value_and_grad_loss"](0.5, -1.0)
    want = symgrad.value_and_grad(namespace_free_loss, wrt=("w", "b"))(0.5, -1.0)
    assert_close([value, dw, db], want)
    status = cli.main(["export", "model.py:loss", "--lang", "c", "-o", "loss_grad.c"], out=out, err=err)
    assert status == 0, err.getvalue()
    assert {p.name for p in tmp_path.iterdir()} >= {"loss_grad.c", "loss_grad.h", "loss_grad_test.c"}
    status = cli.main(["export", "model.py:loss", "--lang", "c"], out=out, err=err)
    assert status == 2 and "-o" in err.getvalue()


def namespace_free_loss(w, b):
    return np.log(1 + np.exp(-(2.0 * w + b)))


def test_cli_export_shapes_and_refusal(tmp_path, monkeypatch, capsys):
    model = tmp_path / "model.py"
    model.write_text("import numpy as np\n\n\ndef norm2(x):\n    return np.sum(x * x)\n")
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["export", "model.py:norm2", "--shape", "x=3"], out=out, err=err) == 0
    namespace: dict = {}
    exec(out.getvalue(), namespace)
    value, gradient = namespace["value_and_grad_norm2"](np.array([1.0, 2.0, 3.0]))
    assert value == 14.0 and gradient.tolist() == [2.0, 4.0, 6.0]
    err = io.StringIO()
    assert cli.main(["export", "model.py:norm2", "--shape", "x=3", "--lang", "c", "-o", "n.c"], err=err) == 1
    assert "cannot be exported as C" in err.getvalue()
    err = io.StringIO()
    assert cli.main(["export", "model.py:norm2"], err=err) == 1
    assert "--shape x=3" in err.getvalue()


# --- the committed examples (docs/export/, written by docs/generate.py; README shows them) ------------

DOCS_EXPORT = Path(__file__).resolve().parent.parent / "docs" / "export"


def test_committed_python_example_runs_without_symgrad(tmp_path):
    text = (DOCS_EXPORT / "loss_grad.py").read_text()
    run = run_isolated(tmp_path, text, "loss_grad", "value_and_grad_loss", [[0.5, -1.0]])
    assert run["numpy"] is False
    assert_close(run["results"][0], symgrad.value_and_grad(namespace_free_loss, wrt=("w", "b"))(0.5, -1.0))


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on PATH")
def test_committed_c_example_compiles(tmp_path):
    for name in ("f_grad.c", "f_grad.h", "f_grad_test.c"):
        shutil.copy(DOCS_EXPORT / name, tmp_path / name)
    got = [value for _, value in run_c_harness(compile_c_harness(tmp_path, "f_grad"))]
    want = symgrad.value_and_grad(lambda_free_f, wrt=("x", "y"))(1.5, 2.0)
    assert_close(got, want)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on PATH")
def test_committed_c_loop_example_compiles(tmp_path):
    for name in ("rollout_grad.c", "rollout_grad.h", "rollout_grad_test.c"):
        shutil.copy(DOCS_EXPORT / name, tmp_path / name)
    got = [value for _, value in run_c_harness(compile_c_harness(tmp_path, "rollout_grad"))]
    value, gradient = symgrad.value_and_grad(rollout, wrt=("x", "k"))(0.5, 2.0)
    assert_close(got, [value, *gradient])
    assert "for (long _ = 0; _ < 200; _++) {" in (DOCS_EXPORT / "rollout_grad.c").read_text()


def rollout(x, k):
    for _ in range(200):
        x = x + 0.01 * (-k * x + np.sin(x))
    return x


def lambda_free_f(x, y):
    return np.sin(x) * y + x**2
