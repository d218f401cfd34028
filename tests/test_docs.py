"""docs/ is generated from the code: every public name has a page, and the pages are current."""

import importlib.util
import sys
from pathlib import Path

import symgrad

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_generate"] = module
    spec.loader.exec_module(module)
    return module


def test_every_public_name_has_an_api_page():
    missing = [
        n for n in symgrad.__all__ if n != "__version__" and not (ROOT / "docs" / "api" / f"{n}.md").exists()
    ]
    assert not missing


def test_committed_docs_match_the_generator():
    generated = _generator().pages()
    stale = [name for name, text in generated.items() if (ROOT / "docs" / name).read_text() != text]
    assert not stale, f"run `python docs/generate.py`: {stale}"
    pipeline = generated["pipeline.md"]
    assert "LogAddExp(0, t0)" in pipeline and "def grad_softplus_loss(w, x):" in pipeline
