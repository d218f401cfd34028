"""Smoke test of the scientist-facing examples: each runs as a script (`python examples/x.py`)
in a temporary directory, exits 0, and prints results that are checked here with real bounds.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TIMEOUT_S = 120
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def run_example(name: str, cwd: Path, *args: str) -> str:
    """Run examples/<name> as a subprocess; fail with its output unless it exits 0."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def number(pattern: str, text: str) -> float:
    """The float captured by `pattern` (one group) in `text`."""
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"no line matches {pattern!r} in:\n{text}"
    return float(match.group(1))


# --- rosenbrock_scipy.py -------------------------------------------------------------------------


Runs = dict[str, dict[str, str]]  # label -> {"nit": "25", "x": "[1.0, 1.0]", ...}


@pytest.fixture(scope="module")
def rosenbrock_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    return run_example("rosenbrock_scipy.py", tmp_path_factory.mktemp("rosenbrock"))


@pytest.fixture(scope="module")
def rosenbrock_runs(rosenbrock_output: str) -> Runs:
    runs = {}
    for line in rosenbrock_output.splitlines():
        match = re.match(r"^(trust-exact symgrad|BFGS symgrad|BFGS finite-diff)\s+(.*)$", line)
        if match:
            runs[match.group(1)] = dict(re.findall(r"(\w+)=(\[[^\]]*\]|\S+)", match.group(2)))
    assert set(runs) == {"trust-exact symgrad", "BFGS symgrad", "BFGS finite-diff"}, rosenbrock_output
    return runs


def test_rosenbrock_derivatives_match_scipy(rosenbrock_output: str) -> None:
    assert (
        number(r"max \|symgrad - scipy\.optimize\.rosen_der/rosen_hess\| = (\S+)", rosenbrock_output) < 1e-9
    )


@pytest.mark.parametrize("label", ["trust-exact symgrad", "BFGS symgrad", "BFGS finite-diff"])
def test_rosenbrock_finds_the_optimum(rosenbrock_runs: Runs, label: str) -> None:
    run = rosenbrock_runs[label]
    assert run["success"] == "True"
    x = [float(v) for v in run["x"].strip("[]").split(",")]
    assert x == pytest.approx([1.0, 1.0], abs=1e-4)
    assert float(run["f"]) < 1e-8


def test_rosenbrock_symgrad_needs_fewer_evaluations(rosenbrock_runs: Runs) -> None:
    newton, bfgs, fd = (
        rosenbrock_runs[k] for k in ("trust-exact symgrad", "BFGS symgrad", "BFGS finite-diff")
    )
    for symgrad_run in (newton, bfgs):
        assert int(symgrad_run["nfev"]) < int(fd["nfev"])
        assert int(symgrad_run["objective_runs"]) < int(fd["objective_runs"])
    # the Newton method with an exact Hessian takes fewer steps than quasi-Newton BFGS
    assert int(newton["nit"]) < int(bfgs["nit"])
    assert int(newton["nhev"]) > 0
    # the exact-gradient runs end much closer to (1, 1) than the finite-difference one
    assert float(newton["f"]) < float(fd["f"]) and float(bfgs["f"]) < float(fd["f"])


# --- newton_root.py ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def newton_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    return run_example("newton_root.py", tmp_path_factory.mktemp("newton"))


def _sections(out: str) -> list[str]:
    parts = re.split(r"^(?=Wallis:|Kepler:|System:)", out, flags=re.MULTILINE)
    sections = [p for p in parts if p.strip()]
    assert len(sections) == 3, out
    return sections


def test_newton_residuals_below_1e_12(newton_output: str) -> None:
    for section in _sections(newton_output):
        residual = number(r"^\s+root .* residual = (\S+)$", section)
        assert residual < 1e-12, section
        iterates = [
            float(r) for r in re.findall(r"^\s+iter\s+\d+ .*(?:residual|\|F\|) = (\S+)$", section, re.M)
        ]
        assert len(iterates) >= 3, section
        assert iterates[0] > 1e-3 and iterates[-1] < 1e-12  # started away from the root
        assert len(iterates) <= 8  # quadratic convergence: a handful of steps, not dozens


def test_newton_roots_are_roots(newton_output: str) -> None:
    wallis, kepler, system = _sections(newton_output)
    x = number(r"root x = (\S+)", wallis)
    assert x == pytest.approx(2.0945514815423265, abs=1e-14)
    assert number(r"f'\(root\) from symgrad = (\S+)", wallis) == pytest.approx(3 * x**2 - 2, rel=1e-14)
    E = number(r"root E = (\S+)", kepler)
    assert abs(E - 0.6 * math.sin(E) - 1.2) < 1e-12
    match = re.search(r"root \(x, y\) = \((\S+), (\S+)\)", system)
    assert match, system
    x, y = float(match.group(1)), float(match.group(2))
    assert abs(x**2 + y**2 - 4) < 1e-12 and abs(math.exp(x) + y - 1) < 1e-12
    assert number(r"max \|jacobian - .*\| = (\S+)", system) < 1e-12


# --- pendulum.py -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pendulum_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    return run_example("pendulum.py", tmp_path_factory.mktemp("pendulum"))


def test_pendulum_accelerations_match_the_textbook(pendulum_output: str) -> None:
    assert number(r"max acceleration difference: (\S+)", pendulum_output) < 1e-12
    assert number(r"max \|hessian block - jacobian\(grad\)\|: (\S+)", pendulum_output) < 1e-12
    ours = re.search(r"accelerations \(symgrad\): \[(\S+), (\S+)\]", pendulum_output)
    assert ours, pendulum_output
    assert abs(float(ours.group(1))) > 1.0  # a real state, not a trivial one at rest


def test_pendulum_conserves_energy(pendulum_output: str) -> None:
    assert re.search(r"integrated 10 s: status=0 rhs_evaluations=\d+", pendulum_output), pendulum_output
    assert number(r"max energy difference symgrad vs by hand on trajectory: (\S+)", pendulum_output) < 1e-9
    assert abs(number(r"energy E0 = (\S+) J", pendulum_output)) > 1.0  # drift relative to a real scale
    assert number(r"relative energy drift: (\S+)", pendulum_output) < 1e-6


# --- relu_plot.py ------------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed (pip install matplotlib)")
@pytest.mark.parametrize("explicit_path", [False, True], ids=["default-path", "argv-path"])
def test_relu_plot_writes_a_png(tmp_path: Path, explicit_path: bool) -> None:
    target = tmp_path / "figures-relu.png" if explicit_path else tmp_path / "relu.png"
    args = (str(target),) if explicit_path else ()
    out = run_example("relu_plot.py", tmp_path, *args)
    assert f"wrote {target.resolve()}" in out
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5 * 1024
    assert "gradient equals (x > 0): True" in out


# --- dask_gradient.py --------------------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("dask") is None or importlib.util.find_spec("distributed") is None,
    reason="dask and distributed are not installed (pip install 'symgrad[dask]')",
)
def test_dask_gradient_is_lazy_and_right(tmp_path: Path) -> None:
    out = run_example("dask_gradient.py", tmp_path, "2e6", "2.5e5")
    assert "gradient: dask.array.core.Array, 8 chunks" in out
    assert number(r"relative difference to NumPy in memory = (\S+)", out) < 1e-10
