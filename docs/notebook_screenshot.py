"""Writes docs/notebook.png: a notebook that shows symgrad's derivatives, executed and
screenshotted offline, so that anyone can see what the display looks like without MathJax.

    pip install nbconvert nbformat ipykernel playwright   # not needed by symgrad itself
    apt-get install chromium                              # or any Chromium / Chrome
    python docs/notebook_screenshot.py [--out docs/notebook.png] [--html notebook.html]

It writes a small notebook, executes it with `jupyter nbconvert --to html --execute` on a
kernel of the Python running this script (the symgrad of this checkout on its path), with a
template that loads no script at all (no MathJax, no RequireJS, no Mermaid: nothing from the
internet), and screenshots the page in headless Chromium with every request that is not a
local file refused. It checks that the page holds MathML that Chromium lays out as math, that
no MathJax ran, and that nothing outside the machine was asked for; it exits 1 otherwise.

Chromium is Playwright's (`python -m playwright install chromium`) or the first of
$CHROMIUM, chromium, chromium-browser, google-chrome on the PATH; without Playwright the
`chromium --headless --screenshot` command line takes the picture (the checks then read the
HTML only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 900

CELLS = [
    ("markdown", "## symgrad in a notebook, offline\nDerivatives as MathML: no MathJax, no internet."),
    (
        "code",
        """\
        import numpy as np
        from symgrad import grad, hessian


        def loss(w, b):
            return 0.5 * w**2 + np.logaddexp(0.0, b + 2.0 * w)


        grad(loss, wrt=("w", "b"))""",
    ),
    (
        "code",
        """\
        def relu_square(x, y):
            return np.where(x > 0.0, x * y, 0.0) + np.sin(x) * y**2


        hessian(relu_square, wrt=("x", "y"))""",
    ),
    ("code", 'print(grad(loss, wrt="w")._repr_mimebundle_()["text/plain"])'),
]

# The lab template without the blocks that load scripts from a CDN.
TEMPLATE = """\
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""

CONF = {"mimetypes": {"text/html": True}, "base_template": "lab"}


def write_notebook(path: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    for kind, text in CELLS:
        source = textwrap.dedent(text)
        cell = (
            nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        )
        notebook.cells.append(cell)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, str(path))


def execute(notebook: Path, work: Path) -> Path:
    """The notebook executed and converted to offline HTML (next to it)."""
    templates = work / "templates"
    (templates / "offline").mkdir(parents=True)
    (templates / "offline" / "index.html.j2").write_text(TEMPLATE)
    (templates / "offline" / "conf.json").write_text(json.dumps(CONF))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    command = [
        sys.executable,
        "-m",
        "nbconvert",
        "--to",
        "html",
        "--execute",
        "--ExecutePreprocessor.kernel_name=python3",  # ipykernel's: this Python
        "--ExecutePreprocessor.timeout=300",
        f"--TemplateExporter.extra_template_basedirs={templates}",
        "--template",
        "offline",
        str(notebook),
    ]
    subprocess.run(command, check=True, env=env, cwd=work)
    return notebook.with_suffix(".html")


def check_html(page: str) -> list[str]:
    problems = []
    if "<math" not in page:
        problems.append("no <math> element in the page")
    if re.search(r"<script[^>]*\bsrc=", page) or re.search(r"<script[^>]*>[^<]*mathjax", page, re.I):
        problems.append("the page loads scripts (MathJax?)")
    if "$$" in page:
        problems.append("raw TeX ($$) in the page")
    return problems


def _chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def screenshot_playwright(html: Path, out: Path) -> list[str]:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    asked: list[str] = []
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch()
        except Exception:  # no browser of Playwright's own: the system's Chromium
            executable = _chromium()
            if executable is None:
                raise
            browser = p.chromium.launch(executable_path=executable)
        page = browser.new_page(viewport={"width": WIDTH, "height": 600}, device_scale_factor=1)

        def route(r: object) -> None:
            request = r.request  # type: ignore[attr-defined]
            if request.url.startswith(("file:", "data:", "about:")):
                r.continue_()  # type: ignore[attr-defined]
            else:
                asked.append(request.url)
                r.abort()  # type: ignore[attr-defined]

        page.route("**/*", route)
        page.goto(html.as_uri())
        page.wait_for_load_state("load")
        layout = page.evaluate(
            """() => {
                const math = [...document.querySelectorAll('math')];
                const frac = document.querySelector('mfrac');
                return {
                    count: math.length,
                    display: math.map(m => getComputedStyle(m).display),
                    fraction: frac ? frac.getBoundingClientRect().height : 0,
                    line: parseFloat(getComputedStyle(document.body).lineHeight) || 16,
                    mathjax: typeof window.MathJax !== 'undefined',
                };
            }"""
        )
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    if asked:
        problems.append(f"the page asked for {asked}")
    if layout["mathjax"]:
        problems.append("MathJax ran")
    if not layout["count"] or not all("math" in d for d in layout["display"]):
        problems.append(f"Chromium does not lay out the <math> elements as math: {layout}")
    elif layout["fraction"] < 1.3 * layout["line"]:
        problems.append(f"fractions are not stacked: {layout}")
    print(f"{layout['count']} <math> blocks, display {sorted(set(layout['display']))}, no MathJax")
    return problems


def screenshot_command_line(html: Path, out: Path) -> list[str]:
    executable = _chromium()
    if executable is None:
        return ["no Chromium: install playwright or chromium"]
    subprocess.run(
        [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--proxy-server=127.0.0.1:9",  # nothing leaves the machine
            f"--window-size={WIDTH},1400",
            f"--screenshot={out}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
    )
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "notebook.png")
    parser.add_argument("--html", type=Path, help="also keep the executed notebook's HTML here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        notebook = work / "symgrad_display.ipynb"
        write_notebook(notebook)
        html = execute(notebook, work)
        page = html.read_text(encoding="utf-8")
        problems = check_html(page)
        if args.html:
            shutil.copyfile(html, args.html)
        try:
            import playwright  # noqa: F401
        except ImportError:
            problems += screenshot_command_line(html, args.out)
        else:
            problems += screenshot_playwright(html, args.out)
    for problem in problems:
        print(f"notebook_screenshot: {problem}", file=sys.stderr)
    if not problems:
        print(f"wrote {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
