"""Code quality as part of the suite, so CI enforces it: ruff lint and format, mypy --strict."""

import doctest
import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import symgrad

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.skipif(
    shutil.which("ruff") is None, reason="ruff is in the test extra: pip install -e '.[test]'"
)
def test_ruff_lint_clean():
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    shutil.which("ruff") is None, reason="ruff is in the test extra: pip install -e '.[test]'"
)
def test_ruff_format_clean():
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_clean():
    pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")
    result = _run(sys.executable, "-m", "mypy", "symgrad")  # strict = true in pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_is_typed():
    assert (ROOT / "symgrad" / "py.typed").exists()


MODULES = sorted(
    m.name for m in pkgutil.iter_modules(symgrad.__path__, "symgrad.") if m.name != "symgrad.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
