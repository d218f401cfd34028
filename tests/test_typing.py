"""The public API is typed: mypy --strict on a user's code (tests/typing_user.py) finds no
error, finds the mistakes in tests/typing_typos.py (`grad(f).sourse`, a missing argument),
and finds symgrad at all after the README's `pip install -e .`."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USER = ROOT / "tests" / "typing_user.py"
TYPOS = ROOT / "tests" / "typing_typos.py"

pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")


def mypy(*args, cwd=ROOT, timeout=300):
    command = [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_user_code_passes_mypy_strict():
    result = mypy("tests/typing_user.py")
    assert result.returncode == 0, result.stdout + result.stderr


def expected_errors(path):
    """{line: text} from the `# error: text` comments of a file."""
    lines = path.read_text().splitlines()
    return {n: line.split("# error: ", 1)[1] for n, line in enumerate(lines, 1) if "# error: " in line}


def test_typos_are_mypy_errors():
    result = mypy("tests/typing_typos.py")
    assert result.returncode == 1, result.stdout + result.stderr
    reported = {}
    for match in re.finditer(r"^tests/typing_typos\.py:(\d+): error: (.*)$", result.stdout, flags=re.M):
        reported.setdefault(int(match[1]), []).append(match[2])
    expected = expected_errors(TYPOS)
    assert expected and set(reported) == set(expected), result.stdout
    for line, text in expected.items():
        assert any(text in message for message in reported[line]), (line, text, reported[line])


OFFLINE = (
    "No matching distribution",
    "Could not find a version",
    "Failed to establish a new connection",
    "Network is unreachable",
    "Temporary failure in name resolution",
    "ConnectTimeout",
)


@pytest.mark.slow
def test_editable_install_is_found_by_mypy(tmp_path):
    """A fresh virtual environment, `pip install -e .` as the README says (on a copy of the
    project, so that the build leaves nothing in this tree), then mypy from a directory
    outside the project: it finds symgrad (setuptools' default editable install for a flat
    layout is an import hook mypy cannot follow; pyproject.toml names the package directory
    so that it writes a .pth file instead), with its types (`g.sourse` is an error)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "symgrad", project / "symgrad", ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", "."],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    if install.returncode != 0 and any(s in install.stdout + install.stderr for s in OFFLINE):
        pytest.skip(f"pip cannot reach a package index here: {install.stderr.strip().splitlines()[-1]}")
    assert install.returncode == 0, install.stdout + install.stderr
    user = tmp_path / "user"
    user.mkdir()
    (user / "good.py").write_text(
        "from symgrad import grad\n\n\ndef f(x: float) -> float:\n    return x * x\n\n\n"
        "g = grad(f)\nprint(g.source, g(1.0))\n"
    )
    (user / "typo.py").write_text((user / "good.py").read_text() + "print(g.sourse)\n")
    command = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache")]
    # (mypy of this environment, told to look at the new one's packages, as its own mypy would)
    command += ["--python-executable", str(python), "good.py", "typo.py"]
    result = subprocess.run(command, cwd=user, capture_output=True, text=True, timeout=300, env=env)
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith("typo.py:10:"), result.stdout + result.stderr
    assert 'has no attribute "sourse"' in errors[0]
