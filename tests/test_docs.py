"""docs/ is generated from the code: every public name has a page, and the pages are current."""

import ast
import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

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


# --- E12: every code block in README.md and docs/ runs as shown ------------------------------------

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```([\w+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
NO_RUN = re.compile(r"<!--\s*no-run:(.*?)-->\s*$")
FILE = re.compile(r"<!--\s*file:\s*(\S+)\s*-->\s*$")
PYTHON, DOCTEST, SHELL, CONSOLE, OUTPUT = (
    {"python", "py"},
    {"pycon"},
    {"bash", "sh"},
    {"console"},
    {"text", ""},
)
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@dataclass(frozen=True)
class Block:
    """A fenced code block, with the `<!-- ... -->` comment on the line before it."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    body: str
    comment: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def no_run(self) -> str | None:
        match = NO_RUN.search(self.comment)
        return match.group(1).strip() if match else None


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(path, line, match.group(1), match.group(2), before if "<!--" in before else ""))
    return found


ALL_BLOCKS = [b for page in PAGES for b in blocks(page)]


def test_E12_every_block_is_classified():
    """Each block is code that the tests below run, or shown output; no-run only with a reason."""
    for block in ALL_BLOCKS:
        # C is shown only as a committed file's text, which test_E12_file_blocks_are_the_files checks
        shown_file = block.lang == "c" and FILE.search(block.comment)
        assert block.lang in PYTHON | DOCTEST | SHELL | CONSOLE | OUTPUT or shown_file, block.where
        if block.comment and NO_RUN.search(block.comment):
            assert block.no_run and block.lang in PYTHON | SHELL, f"{block.where}: no-run needs a reason"
    assert sum(b.no_run is not None for b in ALL_BLOCKS) <= 2  # sparingly
    assert len([b for b in ALL_BLOCKS if b.lang in PYTHON | DOCTEST]) >= 20  # the blocks are found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_E12_examples_are_in_fences(page):
    """`>>>` examples outside a ```pycon fence would neither render as code nor be run."""
    text = FENCE.sub(lambda m: "" if m.group(1) in DOCTEST else m.group(0), page.read_text())
    assert not re.search(r"^\s*>>>", FENCE.sub("", text), flags=re.M)


def test_E12_api_signatures_are_def_lines():
    """The signature block of an API page: a plain fence holding what follows `def` (or a
    `name: type` for a value), valid Python there; a ```python fence would claim it runs."""
    for page in sorted((ROOT / "docs" / "api").glob("*.md")):
        first = blocks(page)[0]
        assert first.lang == "", first.where
        signature = first.body.strip()
        if ":" in signature.split("(")[0]:
            ast.parse(signature)
        else:
            ast.parse(f"def {signature}: ...")
        assert "'" not in signature.split("=")[0], f"{first.where}: quoted annotations"


def test_E12_file_blocks_are_the_files():
    shown = [b for b in ALL_BLOCKS if FILE.search(b.comment)]
    assert shown
    for block in shown:
        assert (ROOT / FILE.search(block.comment).group(1)).read_text() == block.body, block.where


RUN_PYTHON = textwrap.dedent(
    """\
    import doctest, json, sys

    failed = []
    for page in json.loads(sys.argv[1]):
        namespace = {"__name__": "__main__"}  # one per page, shared by its blocks, top to bottom
        for block in page:
            if block["kind"] == "python":  # from a file, so that symgrad can read the source
                with open(block["file"]) as handle:
                    exec(compile(handle.read(), block["file"], "exec"), namespace)
                continue
            test = doctest.DocTestParser().get_doctest(block["body"], namespace, block["name"], block["name"], 0)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            runner.run(test, clear_globs=False)
            failed += [block["name"]] if runner.failures else []
    sys.exit(f"doctest failures: {failed}" if failed else 0)
    """
)

PYTHON_GROUPS = {
    "README.md": [ROOT / "README.md"],
    "docs/cli.md": [ROOT / "docs" / "cli.md"],
    "docs/pipeline.md": [ROOT / "docs" / "pipeline.md"],
    "docs/api": sorted((ROOT / "docs" / "api").glob("*.md")),
}


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def test_E12_python_groups_cover_every_page():
    covered = {p for pages in PYTHON_GROUPS.values() for p in pages}
    assert not [b.where for b in ALL_BLOCKS if b.lang in PYTHON | DOCTEST and b.path not in covered]


@pytest.mark.parametrize("group", list(PYTHON_GROUPS))
def test_E12_python_blocks_and_doctests_run(group, tmp_path):
    """```python blocks executed in order in one namespace per page; ```pycon as doctests."""
    pages = []
    for page in PYTHON_GROUPS[group]:
        spec = []
        for block in blocks(page):
            name = re.sub(r"\W", "_", block.where)
            if block.lang in PYTHON and block.no_run:
                compile(block.body, block.where, "exec")  # not run, but still Python
            elif block.lang in PYTHON:
                script = tmp_path / f"{name}.py"
                script.write_text(block.body)
                spec.append({"kind": "python", "file": str(script)})
            elif block.lang in DOCTEST:
                spec.append({"kind": "doctest", "name": block.where, "body": block.body})
        pages.append(spec)
    assert any(pages)
    result = subprocess.run(
        [sys.executable, "-c", RUN_PYTHON, json.dumps(pages)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]


RUN_COMMANDS = textwrap.dedent(
    """\
    import contextlib, io, json, sys
    from symgrad.__main__ import main

    results = []
    for argv in json.loads(sys.argv[1]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(argv)
            except SystemExit as exc:  # argparse's own errors
                status = exc.code
        results.append({"status": status, "output": out.getvalue() + err.getvalue()})
    print(json.dumps(results))
    """
)


def _symgrad_args(words):
    if words[:1] == ["symgrad"]:
        return words[1:]
    if words[:3] == ["python", "-m", "symgrad"]:
        return words[3:]
    return None


def _commands(block):
    """(words, expected output or None) for each command of a shell or console block."""
    if block.lang in CONSOLE:
        found = []
        for line in block.body.splitlines():
            if line.startswith("$ "):
                found.append((shlex.split(line[2:], comments=True), []))
            else:
                found[-1][1].append(line)
        return [(words, "\n".join(lines)) for words, lines in found]
    found = []
    for line in block.body.splitlines():
        command = []
        for word in [*shlex.split(line, comments=True), "&&"]:  # `a && b`: two commands
            if word != "&&":
                command.append(word)
            elif command:
                found.append((command, None))
                command = []
    return found


def _same_output(actual, expected):
    """Line by line, word by word; numbers within 1e-6 relative (1e-9 absolute): the digits of
    finite differences and errors may differ in the last places between machines."""
    got, want = actual.rstrip("\n").splitlines(), expected.rstrip("\n").splitlines()
    if len(got) != len(want):
        return False
    for a_line, e_line in zip(got, want):
        a_words, e_words = a_line.split(), e_line.split()
        if len(a_words) != len(e_words):
            return False
        for a, e in zip(a_words, e_words):
            try:
                close = math.isclose(float(a), float(e), rel_tol=1e-6, abs_tol=1e-9)
            except ValueError:
                close = a == e
            if not close:
                return False
    return True


SHELL_BLOCKS = [b for b in ALL_BLOCKS if b.lang in SHELL | CONSOLE]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[b.where for b in SHELL_BLOCKS])
def test_E12_shell_blocks_run(block, tmp_path):
    """symgrad commands run (from a copy of docs/ and examples/, so outputs land in tmp) and
    succeed, or print what a ```console block shows; other commands name files that exist."""
    if block.lang in SHELL and shutil.which("bash"):
        syntax = subprocess.run(["bash", "-n"], input=block.body, capture_output=True, text=True, check=False)
        assert syntax.returncode == 0, syntax.stderr
    runs = []
    for words, expected in _commands(block):
        args = _symgrad_args(words)
        if args is None:
            paths = [
                w for w in words if not w.startswith("-") and "=" not in w and ("/" in w or w.endswith(".py"))
            ]
            assert all((ROOT / p).exists() for p in paths), f"{block.where}: {paths}"
        elif not (args[:1] == ["plot"] and not HAS_MATPLOTLIB) and not block.no_run:
            runs.append((args, expected))
    if not runs:
        return
    for folder in ("docs", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    result = subprocess.run(
        [sys.executable, "-c", RUN_COMMANDS, json.dumps([args for args, _ in runs])],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    for (args, expected), got in zip(runs, json.loads(result.stdout.splitlines()[-1])):
        shown = f"{block.where}: symgrad {shlex.join(args)} -> {got['status']}\n{got['output']}"
        if expected is None:
            assert got["status"] == 0, shown
        else:
            assert _same_output(got["output"], expected), f"{shown}\nexpected:\n{expected}"
