"""README promises: its commands match CI, its Python snippets run, the demo and examples run."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _run(args, cwd):
    """Run with this checkout's symgrad first on the path (not an installed copy elsewhere)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_ci_runs_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    command = next(line for line in ci_lines if "pytest" in line and not line.startswith("#"))
    assert command in README.splitlines()


def test_readme_has_demo_command():
    assert "pip install -e . && python -m symgrad" in README


@pytest.mark.parametrize("index", range(len(re.findall(r"```python\n", README))))
def test_readme_python_snippet_runs(index, tmp_path):
    snippet = re.findall(r"```python\n(.*?)```", README, flags=re.S)[index]
    script = tmp_path / f"snippet_{index}.py"
    script.write_text(snippet)  # symgrad reads source from files, so the snippet gets one
    result = _run([sys.executable, str(script)], tmp_path)
    assert result.returncode == 0, result.stderr


def test_demo_prints_source_and_values():
    result = _run([sys.executable, "-m", "symgrad"], ROOT)
    assert result.returncode == 0, result.stderr
    assert "def value_and_grad_demo_branch(x, y):" in result.stdout
    assert "gradient =" in result.stdout


def test_quickstart_example():
    result = _run([sys.executable, str(ROOT / "examples" / "quickstart.py")], ROOT)
    assert result.returncode == 0, result.stderr
    assert "def grad_f(x, y):" in result.stdout
    assert "Rosenbrock Hessian" in result.stdout


def test_relu_example_matches_the_seed():
    result = _run([sys.executable, str(ROOT / "examples" / "relu.py")], ROOT)
    assert result.returncode == 0, result.stderr
    assert "gradient equals (x > 0): True" in result.stdout
    assert "relu'(0) = 0.0" in result.stdout


def test_logistic_regression_example_converges():
    result = _run([sys.executable, str(ROOT / "examples" / "logistic_regression.py")], ROOT)
    assert result.returncode == 0, result.stderr
    assert "converged: True" in result.stdout
    assert "X.T @" in result.stdout  # the derivative source is printed, as matrix code
    fitted = re.search(r"fitted w: \[([^\]]*)\]", result.stdout)
    assert fitted is not None
    w = [float(v) for v in fitted.group(1).split()]
    assert abs(w[1] - 2.0) < 0.6 and abs(w[2] + 1.0) < 0.6  # near the true weights (2, -1)
