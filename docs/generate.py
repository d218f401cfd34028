"""Writes docs/api/<name>.md for every public name and docs/pipeline.md from the live code.

Run from the repository root: `python docs/generate.py`. tests/test_docs.py checks that the
committed pages are what this script writes, so the docs cannot fall behind the code.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import symgrad  # noqa: E402 - after the path is set
from symgrad import checkpoint as checkpoints  # noqa: E402
from symgrad import diff, emit, parse, rewrite, trace  # noqa: E402
from symgrad.export import export_files  # noqa: E402


class _Annotation(str):
    """An annotation as written in the source (`from __future__ import annotations` keeps them
    as strings), shown without the quotes `inspect` would put around a string."""

    def __repr__(self) -> str:
        return str(self)


def _unquoted(signature: inspect.Signature, *, returns: bool) -> inspect.Signature:
    def plain(annotation: object) -> object:
        return _Annotation(annotation) if isinstance(annotation, str) else annotation

    params = [p.replace(annotation=plain(p.annotation)) for p in signature.parameters.values()]
    ret = plain(signature.return_annotation) if returns else inspect.Signature.empty
    return signature.replace(parameters=params, return_annotation=ret)


def signature_text(name: str, obj: object) -> str:
    """`name(params) -> returns` as in a `def` line (annotations as in the source), a class's
    constructor without its `-> None`, or `name: type` for a value."""
    if isinstance(obj, tuple) and obj:
        return f"{name}: tuple[{type(obj[0]).__name__}, ...]"
    if not callable(obj):
        return f"{name}: {type(obj).__name__}"
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"{name}(...)"
    return f"{name}{_unquoted(signature, returns=not inspect.isclass(obj))}"


def _alias_of(name: str, obj: object) -> str | None:
    """The public name `obj` is defined under, when `name` is another name for it."""
    defined = getattr(obj, "__name__", name)
    return defined if defined != name and getattr(symgrad, defined, None) is obj else None


def fence_examples(doc: str) -> str:
    """Docstring examples (`>>>` up to the next blank line) in ```pycon fences, so that they
    render as code; tests/test_docs.py runs them as doctests."""
    out: list[str] = []
    inside = False
    for line in doc.splitlines():
        if not inside and line.startswith(">>>"):
            out.append("```pycon")
            inside = True
        elif inside and not line.strip():
            out.append("```")
            inside = False
        out.append(line)
    if inside:
        out.append("```")
    return "\n".join(out)


def api_page(name: str) -> str:
    obj = getattr(symgrad, name)
    kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else "value"
    doc = fence_examples(inspect.getdoc(obj) or "(no docstring)")
    if kind == "value":
        doc = (
            f"`{name} = {obj!r}`"
            if not isinstance(obj, tuple)
            else f"A table of {len(obj)} entries; see `symgrad/rules.py`."
        )
    module = getattr(obj, "__module__", "symgrad")
    alias = _alias_of(name, obj)
    also = (
        f"; another name for [`{alias}`]({alias}.md) (`symgrad.{name} is symgrad.{alias}`)" if alias else ""
    )
    # A plain fence: the signature is a `def` line without its body, not code to run.
    return (
        f"# `symgrad.{name}`\n\n{kind} defined in `{module}`{also}\n\n"
        f"```\n{signature_text(name, obj)}\n```\n\n{doc}\n"
    )


PIPELINE_EXAMPLE = """
import numpy as np

def softplus_loss(w, x):
    z = w * x
    if z > 0:
        return z + np.log(1 + np.exp(-z))
    return np.log(1 + np.exp(z))


def newton_sqrt(x):
    y = x
    while abs(y * y - x) > 1e-12 * x:
        y = 0.5 * (y + x / y)
    return y


def rnn(W, U, b, xs, h):
    for t in range(100):
        h = np.tanh(W @ h + U @ xs[t] + b)
    return np.sum(h)


def logistic(x, r):
    for _ in range(1000):
        x = x + 0.001 * r * x * (1 - x)
    return x


def capped_sqrt(x):
    y = x
    for _ in range(100):
        step = 0.5 * (y - x / y)
        y = y - step
        if abs(step) < 1e-13 * x:
            break
    return y


def gaussian_nll(S, x):
    sign, logdet = np.linalg.slogdet(S)
    return 0.5 * logdet + 0.5 * x @ np.linalg.inv(S) @ x
"""


def pipeline_page() -> str:
    module_path = ROOT / "docs" / "_pipeline_example.py"
    module_path.write_text(PIPELINE_EXAMPLE.lstrip())
    sys.path.insert(0, str(module_path.parent))
    import _pipeline_example as example  # written just above

    source = parse.load(example.softplus_loss)
    primal = trace.trace(source, {})
    stable = rewrite.stabilize(primal)
    gradient = diff.reverse(stable, list(stable.inputs), [1])
    program = emit.eliminate_common(gradient, emit.fold_scaled(gradient, emit.live_nodes(gradient)))
    kernel = emit.emit(gradient, "grad_softplus_loss", "gradient of softplus_loss")
    listing = "\n".join(f"{symbol} = {expr}" for symbol, expr in program)
    sections = [
        (
            "1. parse",
            "`parse.load` reads the source with `inspect`, parses it with `ast` (line numbers as "
            "in the file) and runs the fence, which refuses unsupported syntax with file:line:col.",
            "python",
            PIPELINE_EXAMPLE.strip(),
        ),
        (
            "2. trace",
            "`trace.trace` interprets the AST symbolically. Each operation becomes one SSA node "
            "holding a small SymPy expression of earlier nodes; the traced `if` becomes a `Piecewise`, "
            "and each return a pair (path condition, value).",
            "text",
            str(primal),
        ),
        (
            "3. rewrite",
            "`rewrite.stabilize` replaces forms that overflow with stable ones, before "
            "differentiation: `log(1 + exp(u))` becomes `logaddexp(0, u)`.",
            "text",
            str(stable),
        ),
        (
            "4. diff",
            "`diff.reverse` walks the nodes backwards once, accumulating adjoints "
            "`dfd<node>` from local partial derivatives (a rules table, SymPy's `fdiff` otherwise). "
            "Branch adjoints are guarded, so an untaken branch contributes an exact 0.",
            "text",
            str(gradient),
        ),
        (
            "5. emit: program",
            "`emit` keeps the nodes the outputs need, folds single-use scaled values, "
            "and runs SymPy's common-subexpression elimination over the whole program, placing each "
            "extracted value just before its first use.",
            "text",
            listing,
        ),
        (
            "6. emit: NumPy source",
            "SymPy's NumPy printer (with a few overrides: `where` for branches, "
            "exact float literals, divisions instead of negative powers) prints the program; "
            "temporaries are deleted after their last use. The source is registered in `linecache`.",
            "python",
            kernel.array_source.strip(),
        ),
        (
            "7. emit: plain-Python source",
            "The same program printed for Python floats, calling `math`; "
            "a generated entry point runs it inline when every argument is a float.",
            "python",
            (kernel.scalar_source or "").strip(),
        ),
    ]
    loop_primal = rewrite.stabilize(trace.trace(parse.load(example.newton_sqrt), {}))
    loop_gradient = diff.reverse(loop_primal, list(loop_primal.inputs), [1])
    loop_kernel = emit.emit(loop_gradient, "grad_newton_sqrt", "gradient of newton_sqrt")
    sections += [
        (
            "8. loops: the Loop node",
            "A long `for` loop and a `while` loop are traced once into a `Loop` node: its body is a "
            "program of its own whose inputs are the index and the carried values (every name the "
            "body assigns; in the enclosing program the same names hold their final values), which "
            "reads loop-invariant values from outside and, for `while`, computes its condition first "
            "and counts its iterations. `newton_sqrt` (in the example module above):",
            "text",
            str(loop_primal),
        ),
        (
            "9. loops: differentiated",
            "`diff.reverse` makes the loop save each carry at the start of every iteration (a stack "
            "`saved_y`) and appends a loop over the iterations backwards: it reads the saved carry, "
            "recomputes the iteration and runs reverse accumulation over its body, carrying the "
            "adjoints of the carries and summing those of the values read from outside. "
            "`diff.forward` replaces a loop by one that carries tangents too. Both are loops again, "
            "so differentiating a derivative goes through them.",
            "text",
            str(loop_gradient),
        ),
        (
            "10. loops: generated source",
            "`emit` renders a loop's body with the same passes (live values, CSE) per block; a "
            "`while` becomes `while True:` with the condition's `break`, its stacks grow with "
            "`append`, and the reverse loop runs `range(steps - 1, -1, -1)`.",
            "python",
            (loop_kernel.scalar_source or "").strip(),
        ),
    ]
    shapes = {"W": (8, 8), "U": (8, 2), "b": (8,), "xs": (100, 2), "h": (8,)}
    rnn_primal = rewrite.stabilize(trace.trace(parse.load(example.rnn), {}, shapes))
    rnn_gradient = diff.reverse(rnn_primal, [rnn_primal.inputs[0], rnn_primal.inputs[3]], [1])
    rnn_kernel = emit.emit(rnn_gradient, "grad_rnn", "gradient of rnn with respect to W, xs")
    sections += [
        (
            "11. loops over arrays",
            "A program traced for its argument shapes keeps its loops too: each carry has the shape "
            "of the value it starts from (the shapes of the enclosing program, one dictionary), and "
            "`xs[t]` of an array from outside the loop, at an index that steps with the loop, is an "
            "item of the loop: a body input bound to one row of the stack `xs` per iteration (as "
            "`lax.scan` reads its `xs`). Its adjoint is a stack written by the reverse loop, made an "
            "array by `numpy.array` (`AsArray`):",
            "text",
            str(rnn_primal),
        ),
        (
            "12. loops over arrays: generated source",
            "The forward loop saves `h`; the reverse loop recomputes the step from it, carries "
            "`dfdh`, sums the adjoint of `W` and writes the adjoint of each row of `xs`.",
            "python",
            rnn_kernel.array_source.strip(),
        ),
    ]
    capped = rewrite.stabilize(trace.trace(parse.load(example.capped_sqrt), {}))
    segmented = checkpoints.segmented(rewrite.stabilize(trace.trace(parse.load(example.rnn), {}, shapes)), 10)
    sections += [
        (
            "13. loops: break and continue",
            "`jumps.rewrite` turns `break` and `continue` into flags (`_break<line>`, `_skip<line>`) "
            "and runs what follows a jump under `if _skip < 0.5:`; a kept `for` loop with `break` "
            "checks its flag before each iteration (`while c0`) and counts the iterations it ran "
            "into `steps`, which its reverse loop runs back over:",
            "text",
            str(capped),
        ),
        (
            "14. loops: checkpoints",
            "`grad(f, checkpoint=k)` runs each long kept `for` loop as segments (`checkpoint.segmented`): "
            "a loop over n // k segments holding a loop over one segment's k iterations (and a loop "
            "over the n % k left). Reverse mode then saves one carry per segment and runs each "
            "segment forward again inside the reverse loop: O(n / k + k) saved values. The RNN above "
            "with k = 10:",
            "text",
            str(segmented),
        ),
    ]
    logistic = rewrite.stabilize(trace.trace(parse.load(example.logistic), {}))
    logistic_gradient = diff.reverse(logistic, list(logistic.inputs), [1])
    jax_kernel = emit.emit(logistic_gradient, "grad_logistic", "gradient of logistic", module="jax")
    sections += [
        (
            "15. loops: jax.lax.scan",
            'For `backend="jax"` the program is printed a third time, by `JaxArrayPrinter` (SymPy\'s '
            "`JaxPrinter` with the same overrides), and `render_scan` prints each kept loop as a body "
            "function of (carries, items) returning the updated carries and the values to stack, "
            "called by `jax.lax.scan` over the index and the stacks it reads (`reverse=True` for the "
            "reverse loop): `jax.jit` traces it once, where a Python loop is traced once per "
            "iteration. `sg.scan` first grows each carry to the shape and dtype of its update "
            "(`jax.eval_shape`): the adjoint of `r` starts as 0.0 and sums arrays.",
            "python",
            (jax_kernel.module_source or "").strip(),
        ),
    ]
    nll_primal = rewrite.stabilize(
        trace.trace(parse.load(example.gaussian_nll), {}, {"S": (3, 3), "x": (3,)})
    )
    nll = diff.reverse(nll_primal, [nll_primal.inputs[0]], [1])
    nll.outputs = (*nll_primal.outputs, *nll.outputs)  # value and gradient, as value_and_grad
    nll_kernel = emit.emit(nll, "value_and_grad_gaussian_nll", "value and gradient of gaussian_nll")
    sections += [
        (
            "16. several results: the Multi node",
            "An operation that computes several values at once, `np.linalg.slogdet` (sign and "
            "log|det|) or `np.linalg.eigh` (eigenvalues and eigenvectors), one LAPACK call each, is a "
            "`Multi` node: the third kind beside an assignment and a loop. Like a loop it defines "
            "several symbols of the enclosing program under a label of its own (`defines()`: here "
            "`sign` and `logabsdet`, NumPy's names of the results) and reads its operands "
            "(`reads()`); every stage dispatches on it. The tracer hands its outputs on as NumPy's "
            "named tuple, so `sign, logdet = ...`, `[1]` and `.logabsdet` read the same node, and "
            "the same call twice is one node. `diff.reverse` sums the adjoint of each output and "
            "calls the operation's VJP (`arrays.SlogDet.vjp_all`: `dfdlogabsdet * inv(S).T`; the "
            "sign has derivative 0), which reads the node's outputs (eigh's VJP reads w and V), so "
            "a second derivative goes through the node again; `diff.forward` calls its JVP. The "
            "value and gradient of `gaussian_nll` (the example module's last function):",
            "text",
            str(nll),
        ),
        (
            "17. several results: generated source",
            "`emit` prints the node as one assignment to several names. Live-code elimination "
            "keeps it while some output is read, CSE works on the stretches between such nodes, and "
            "`del` frees each output after its last use (at once, if nothing reads it). The VJP's "
            "inverse is the function's own: one `numpy.linalg.inv(S)`.",
            "python",
            nll_kernel.array_source.strip(),
        ),
    ]
    parts = [
        "# How symgrad works: one function through the pipeline\n",
        "Generated by `docs/generate.py` from the code as it is; every block below is real output.\n",
    ]
    for title, text, language, block in sections:
        parts.append(f"## {title}\n\n{textwrap.fill(text, 96)}\n\n```{language}\n{block}\n```\n")
    module_path.unlink()
    return "\n".join(parts)


def exported_files() -> dict[str, str]:
    """docs/export/: what `symgrad export` writes for docs/model.py (README's "Shipping
    derivatives" shows them): `loss` as Python, `f` as C, and `rollout` (a kept loop) as C."""
    spec = importlib.util.spec_from_file_location("docs_model", ROOT / "docs" / "model.py")
    assert spec is not None and spec.loader is not None
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    files = export_files(model.loss, wrt=("w", "b"), stem="loss_grad", source_name="docs/model.py")
    for fn, wrt, stem, values in (
        (model.f, ("x", "y"), "f_grad", {"x": 1.5, "y": 2.0}),
        (model.rollout, ("x", "k"), "rollout_grad", {"x": 0.5, "k": 2.0}),
    ):
        files.update(
            export_files(fn, wrt=wrt, lang="c", stem=stem, values=values, source_name="docs/model.py")
        )
    return {f"export/{name}": text for name, text in files.items()}


def pages() -> dict[str, str]:
    out = {f"api/{name}.md": api_page(name) for name in sorted(symgrad.__all__) if name != "__version__"}
    out.update(exported_files())
    out["pipeline.md"] = pipeline_page()
    index = ["# symgrad API reference\n"] + [
        f"- [`{n}`](api/{n}.md)" for n in sorted(symgrad.__all__) if n != "__version__"
    ]
    out["index.md"] = "\n".join(index) + "\n\nSee also [how the pipeline works](pipeline.md).\n"
    return out


def main() -> None:
    written = pages()
    for relative, text in written.items():
        path = ROOT / "docs" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(written)} pages under docs/")


if __name__ == "__main__":
    main()
