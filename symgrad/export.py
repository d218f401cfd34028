"""Export a derivative as a standalone module: Python that needs only NumPy (or `math`), or C99."""

from __future__ import annotations

import ast
import inspect
import linecache
import math
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy
from sympy.printing.c import C99CodePrinter
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.precedence import precedence

from . import api, arrays, emit, rewrite, runtime, trace
from .arraytrace import ShapesNeeded
from .compiled import Compiled
from .errors import NonScalarOutputError, SymgradError, WrtError
from .graph import Graph, Loop, Multi, Names, reads_of, real_symbol

__all__ = ["KINDS", "LANGS", "export", "export_files"]

KINDS = ("value_and_grad", "grad")
LANGS = ("python", "c")


def export(
    fn: Callable[..., Any],
    kind: str = "value_and_grad",
    *,
    wrt: api.Names = None,
    static: Mapping[str, Any] | None = None,
    shapes: Mapping[str, int | tuple[int, ...]] | None = None,
    lang: str = "python",
    name: str | None = None,
    loops: str | None = None,
    values: Mapping[str, float] | None = None,
) -> str:
    """The text of a standalone module computing a derivative of `fn`, which needs no symgrad.

    The module holds the program that `symgrad.grad` generates, with the few helpers it calls
    (from `symgrad/runtime.py`) defined in it, and a header saying what it computes and what
    it was generated from. It is deterministic: the same function and options give the same
    text.

    Args:
        fn: a function defined with `def` in a file (its source is read).
        kind: `"value_and_grad"` (the function returns `(value, gradient)`) or `"grad"`.
        wrt: parameter names or positions to differentiate with respect to, as in
            `symgrad.grad` (default: the first parameter). One name gives one gradient, a
            tuple a tuple of them.
        static: values of parameters to specialise on (loop bounds, flags): built into the
            code, and not parameters of the exported function.
        shapes: the shape of every array argument (`{"X": (5, 3), "w": 3}`; missing ones are
            numbers). With shapes, the module is NumPy code for arrays of exactly these
            shapes (it checks them). Without, the function must be elementwise, and the
            module is plain Python on floats that imports `math` only (NumPy where a NumPy
            function has no `math` twin).
        lang: `"python"`, or `"c"` for programs of floats (no arrays): a C99 file `<name>.c`
            defining `void <name>(double x, ..., double *sg_out)`, which `#include`s `<name>.h`
            (see `export_files` for both, and a test harness). A loop kept as a loop stays a
            loop in C; where its reverse pass reads values saved per iteration, the function
            takes them in a work array, `void <name>(..., double *sg_out, double *sg_work)`,
            of `<NAME>_WORK` doubles (a macro of the header; no malloc).
        name: the exported function's name (default `value_and_grad_<fn>` or `grad_<fn>`).
        loops: how `for` loops become code, as `symgrad.grad`'s `loops` (`"unroll"` makes a
            long loop straight-line code).
        values: for `lang="c"`, the argument values the test harness uses when run without
            arguments (default 1.0 each).

    Returns:
        The module's text (for `lang="c"`, the `.c` file's).

    Raises:
        SymgradError: `fn` cannot be exported so (an array program without `shapes`; `lang="c"`
            for an array program, or a `while` loop whose reverse pass reads values saved per
            iteration: their number is known only as it runs); the hint says what to do.

    >>> import math
    >>> from symgrad import export
    >>> def f(x, y):
    ...     return math.sin(x) * y
    >>> text = export(f, wrt=("x", "y"))
    >>> namespace = {}
    >>> exec(text, namespace)
    >>> namespace["value_and_grad_f"](0.0, 2.0)
    (0.0, (2.0, 0.0))
    >>> print(text.split("\\n\\n\\n")[-1], end="")
    def value_and_grad_f(x, y):
        \"\"\"f(x, y) and its gradient with respect to x, y: (value, (d/dx, d/dy)).\"\"\"
        # line 2: return math.sin(x) * y
        t0 = math.sin(x)
        out = t0*y
        dfdx = y*math.cos(x)
        dfdy = t0
        return (out, (dfdx, dfdy))
    """
    files = export_files(
        fn, kind, wrt=wrt, static=static, shapes=shapes, lang=lang, name=name, loops=loops, values=values
    )
    return next(iter(files.values()))


def export_files(
    fn: Callable[..., Any],
    kind: str = "value_and_grad",
    *,
    wrt: api.Names = None,
    static: Mapping[str, Any] | None = None,
    shapes: Mapping[str, int | tuple[int, ...]] | None = None,
    lang: str = "python",
    name: str | None = None,
    loops: str | None = None,
    values: Mapping[str, float] | None = None,
    stem: str | None = None,
    source_name: str | None = None,
) -> dict[str, str]:
    """The files of an export (see `export` for the arguments), by name, the main one first:
    `<stem>.py`; or `<stem>.c`, `<stem>.h` and `<stem>_test.c` (a `main` that calls the
    function on the values given on its command line, or on `values`, and prints the
    results; it gives the function a static work array where it takes one). `stem` defaults
    to the function's name; `source_name` is how the header names the file `fn` is defined
    in (default: its file name).

    >>> def f(x):
    ...     return x * x
    >>> sorted(export_files(f, "grad", lang="c", stem="f_grad"))
    ['f_grad.c', 'f_grad.h', 'f_grad_test.c']
    """
    if kind not in KINDS:
        raise WrtError(f"export: kind must be one of {', '.join(KINDS)}, got {kind!r}", hint='kind="grad"')
    if lang not in LANGS:
        raise WrtError(
            f"export: lang must be one of {', '.join(LANGS)}, got {lang!r}", hint='lang="python" or lang="c"'
        )
    request = _Request.make(fn, kind, wrt, static, shapes, name, source_name, loops)
    request.stem = request.name if stem is None else stem
    request.values = {k: float(v) for k, v in (values or {}).items()}
    if lang == "c":
        return _c_files(request)
    return {f"{stem}.py": _python_module(request)}


# --- what to export -------------------------------------------------------------------------------


@dataclass
class _Request:
    """A derivative to export: the traced program and what the header says about it."""

    compiled: Compiled
    kind: str
    name: str
    graph: Graph  # traced for this export (fresh: its names are what a first compile gives)
    static: dict[str, Any]
    shapes: dict[str, tuple[int, ...]] | None
    source_name: str
    n_values: int  # how many outputs of the program are function values (value_and_grad: 1)
    stem: str = ""  # the name of the file(s) written, without the suffix
    values: dict[str, float] = field(default_factory=dict)  # the C harness's arguments

    @classmethod
    def make(
        cls,
        fn: Callable[..., Any],
        kind: str,
        wrt: api.Names,
        static: Mapping[str, Any] | None,
        shapes: Mapping[str, int | tuple[int, ...]] | None,
        name: str | None,
        source_name: str | None,
        loops: str | None = None,
    ) -> _Request:
        if isinstance(fn, Compiled) or not callable(fn):
            raise WrtError(
                f"export takes a function defined with def, got {type(fn).__name__}",
                hint="export(f, 'grad', wrt=...) rather than export(grad(f))",
            )
        make = api.value_and_grad if kind == "value_and_grad" else api.grad
        compiled: Compiled = make(fn, wrt=wrt, static=tuple(static or ()), loops=loops)
        static_values = _static_values(compiled, dict(static or {}))
        sizes = None if shapes is None else _sizes(compiled, shapes)
        graph = _trace(compiled, static_values, sizes)
        exported = name or f"{kind}_{compiled.fn.__name__}"
        if not exported.isidentifier():
            raise WrtError(f"export: name {exported!r} is not an identifier", hint="name='grad_loss'")
        if source_name is None:
            file = inspect.getsourcefile(compiled.fn)
            source_name = Path(file).name if file else "<unknown>"
        request = cls(
            compiled,
            kind,
            exported,
            graph,
            static_values,
            sizes,
            source_name,
            1 if kind == "value_and_grad" else 0,
        )
        return request

    @property
    def fname(self) -> str:
        return str(self.compiled.fn.__name__)

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.graph.inputs)

    @property
    def wrt(self) -> tuple[str, ...]:
        return tuple(self.compiled.wrt)

    def returns(self, outputs: Sequence[str]) -> str:
        """The returned expression: outputs arranged as symgrad's call returns them."""
        values, grads = list(outputs[: self.n_values]), list(outputs[self.n_values :])
        gradient = grads[0] if self.compiled.single else _tuple_text(grads)
        return f"({values[0]}, {gradient})" if values else gradient

    def returns_doc(self) -> str:
        """What the function returns, in words: `(value, (d/dx, d/dy))`."""
        return self.returns([*["value"] * self.n_values, *(f"d/d{w}" for w in self.wrt)])

    def summary(self) -> str:
        """`f(x, y) and its gradient with respect to x, y: (value, (d/dx, d/dy))`."""
        call = f"{self.fname}({', '.join(self.compiled.params)})"
        what = f"{call} and its gradient" if self.n_values else f"The gradient of {call}"
        return f"{what} with respect to {', '.join(self.wrt)}: {self.returns_doc()}"

    def command(self, lang: str) -> str:
        """The `symgrad export` command that writes this module again."""
        parts = [f"symgrad export {self.source_name}:{self.fname}"]
        if self.kind != "value_and_grad":
            parts.append(f"--kind {self.kind}")
        parts.append(f"--wrt {','.join(self.wrt)}")
        if self.static:
            parts.append("--static " + ",".join(f"{k}={v!r}" for k, v in self.static.items()))
        if self.shapes:
            shaped = {n: s for n, s in self.shapes.items() if s}
            if shaped:
                parts.append("--shape " + ",".join(f"{n}={_shape_text(s)}" for n, s in shaped.items()))
        mode = getattr(self.compiled, "loops", "auto")
        if mode != "auto":
            parts.append(f"--loops {mode}")
        if lang != "python":
            parts.append(f"--lang {lang}")
        if self.values and lang == "c":
            parts.append("--at " + ",".join(f"{k}={v!r}" for k, v in self.values.items()))
        parts.append(f"-o {self.stem}.{'py' if lang == 'python' else 'c'}")
        return " ".join(parts)


def _shape_text(shape: tuple[int, ...]) -> str:
    return str(shape[0]) if len(shape) == 1 else f"({','.join(map(str, shape))})"


def _tuple_text(items: Sequence[str]) -> str:
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _static_values(compiled: Compiled, given: dict[str, Any]) -> dict[str, Any]:
    """A value for every static parameter: given, else its default."""
    params = inspect.signature(compiled.fn).parameters
    values: dict[str, Any] = {}
    for name in compiled.static:
        if name in given:
            values[name] = given[name]
        elif params[name].default is not inspect.Parameter.empty:
            values[name] = params[name].default
        else:
            raise WrtError(
                f"export: static parameter `{name}` has no value",
                hint=f"give it: static={{'{name}': 3}} (on the command line: --static {name}=3)",
            )
    return values


def _sizes(compiled: Compiled, shapes: Mapping[str, int | tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    unknown = [n for n in shapes if n not in compiled.dynamic]
    if unknown:
        raise WrtError(
            f"export: shapes names {', '.join(unknown)}, which is not a parameter of `{compiled.fn.__name__}` "
            "(or is static)",
            hint=f"give the shapes of {', '.join(compiled.dynamic)}",
        )
    sizes: dict[str, tuple[int, ...]] = {}
    for name in compiled.dynamic:
        shape = shapes.get(name, ())
        sizes[name] = (shape,) if isinstance(shape, int) else tuple(shape)
    return sizes


def _trace(compiled: Compiled, static: dict[str, Any], shapes: dict[str, tuple[int, ...]] | None) -> Graph:
    """The derivative's program traced afresh (what `Compiled.variant` builds), so that the
    names of its temporaries are those of a first compile whatever ran before."""
    fn = compiled.fn
    try:
        source = api._load(fn)
        primal = rewrite.stabilize(trace.trace(source, static, shapes, getattr(compiled, "loops", "auto")))
    except ShapesNeeded:
        shaped = ", ".join(f"'{n}': (3,)" for n in compiled.dynamic)
        raise SymgradError(
            f"`{fn.__name__}` uses array operations, so its derivative is exported for the shapes of "
            "its arguments",
            hint=f"pass them: shapes={{{shaped}}} (on the command line: --shape "
            + ",".join(f"{n}=3" for n in compiled.dynamic)
            + "; a matrix is (2,3))",
        ) from None
    if primal.captured:
        path = ".".join(primal.captured[0][0])
        raise SymgradError(
            f"`{fn.__name__}` reads the array `{path}` from outside (a global or a closure), which "
            "an exported module cannot see",
            hint=f"make `{path}` a parameter of `{fn.__name__}` and pass it",
        )
    outputs = primal.outputs
    if len(outputs) != 1 or primal.output_tree is not None:
        raise NonScalarOutputError(
            f"export needs a function of one output, but `{fn.__name__}` returns {len(outputs)} values",
            hint="export a function returning the loss alone",
        )
    graph = compiled.derive(primal)
    return graph


# --- Python ------------------------------------------------------------------------------------------

# The module-level names an exported module defines besides its function.
_MODULE_NAMES = frozenset({"numpy", "math", "np", "sg", "scipy_special", "types", "Any"})


def _python_module(request: _Request) -> str:
    if request.name in _MODULE_NAMES or hasattr(runtime, request.name):
        raise WrtError(f"export: the name {request.name!r} is taken in the module", hint="name='grad_loss'")
    function = _function(request)
    used = _names_used(function)
    helpers = _helpers(used["sg"])
    stdlib, third = [], []
    if "math" in used["modules"]:
        stdlib.append("import math")
    if helpers:
        stdlib += ["import types", "from typing import Any"]
    if "numpy" in used["modules"] or helpers:
        third.append("import numpy")
    if helpers:
        third.append("import numpy as np  # the helpers' name for it")
    if "scipy_special" in used["modules"]:
        third.append("import scipy.special as scipy_special")
    imports = "\n\n".join("\n".join(group) for group in (stdlib, third) if group)
    needs = "NumPy" if "numpy" in used["modules"] or helpers else "math"
    if "scipy_special" in used["modules"]:
        needs += " and SciPy (scipy.special)"
    parts = [*([imports] if imports else [])]
    if helpers:
        parts.append("\n\n".join(helpers))
        entries = ", ".join(f"{h}={h}" for h in sorted(used["sg"]))
        parts.append(
            f"# the helpers as the generated code calls them (`sg.<name>`)\nsg = types.SimpleNamespace({entries})"
        )
    parts.append(function)
    return _python_header(request, needs) + "\n\n" + "\n\n\n".join(parts)


def _python_header(request: _Request, needs: str) -> str:
    from . import __version__

    lines = [
        f'"""{request.summary()}.',
        "",
        f"Generated by symgrad {__version__} from `{request.fname}` in {request.source_name}:",
        "",
        f"    {request.name}({', '.join(request.params)}) -> {request.returns_doc()}",
        "",
    ]
    if request.shapes is None:
        lines += [
            "The arguments are floats (Python numbers), and so are the results; where `math` raises",
            "(the log of a negative number, an overflow), so does this code.",
        ]
    else:
        shapes = ", ".join(f"{n} {request.shapes[n]}" for n in request.params)
        lines += [
            "For arguments of these shapes, which the code has built in (it checks them):",
            f"    {shapes}",
            "Each gradient has its argument's shape (a float for shape ()).",
        ]
    if request.static:
        values = ", ".join(f"{k}={v!r}" for k, v in request.static.items())
        lines.append(f"Built in (static): {values}; they are not parameters.")
    lines += [
        f"Needs {needs} only; no symgrad. Regenerate rather than edit:",
        "",
        f"    {request.command('python')}",
        '"""',
    ]
    return "\n".join(lines)


def _function(request: _Request) -> str:
    """The exported function: the program symgrad generates, returning what symgrad's call
    returns (floats for numbers; arrays of their arguments' shapes)."""
    graph = request.graph
    program = emit.eliminate_common(graph, emit.fold_scaled(graph, emit.live_nodes(graph)))
    expressions = list(emit._expressions(program))
    doc = request.summary() + "."
    if request.shapes is None:
        scalar = emit.render(graph, program, request.name, doc, emit.ScalarPrinter(), guard=False)
        # floats in give floats out: an input returned as it is might be an int
        outputs = [f"float({o})" if o in request.params else o for o in scalar.outputs]
        return _source(scalar, [], request.returns(outputs))
    guard = any(emit._computes_in_branches(e) for e in expressions)
    function = emit.render(graph, program, request.name, doc, emit.ArrayPrinter(), guard=guard)
    assert graph.shapes is not None
    names = graph.names.copy()
    given = names.fresh("shapes")
    expected = tuple(request.shapes[p] for p in request.params) if request.shapes else ()
    params = request.params
    check = [
        f"    {given} = {_tuple_text([f'numpy.shape({p})' for p in params])}",
        f"    if {given} != {expected!r}:",
        f'        raise ValueError(f"shapes {{{given}}} of ({", ".join(params)}): this code is for {expected!r}")',
    ]
    outputs = []
    for k, (output, text) in enumerate(zip(graph.outputs, function.outputs)):
        shape = arrays.shape_of(output, graph.shapes)
        if k < request.n_values:
            outputs.append(f"float({text})" if shape == () else f"numpy.array({text}, dtype=numpy.float64)")
            continue
        target = request.shapes[request.wrt[k - request.n_values]] if request.shapes else ()
        if target == ():
            outputs.append(f"float({text})")
        elif isinstance(output, sympy.Symbol) and output not in graph.inputs and shape == target:
            outputs.append(text)  # an array the program made, of the argument's shape
        else:
            outputs.append(f"numpy.array(numpy.broadcast_to({text}, {target!r}), dtype=numpy.float64)")
    return _source(function, check, request.returns(outputs))


def _source(function: emit.GeneratedFunction, check: list[str], returned: str) -> str:
    header = emit._header(function.name, function.params, function.doc)
    return "\n".join([*header, *check, *function.body, f"{function.indent}return {returned}"]) + "\n"


def _names_used(source: str) -> dict[str, set[str]]:
    """The modules a generated function reads (`numpy`, `math`, ...) and the `sg.` helpers it
    calls, from its syntax tree (its comments quote the user's lines)."""
    modules: set[str] = set()
    helpers: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "sg":
                helpers.add(node.attr)
            elif node.value.id in ("numpy", "math", "scipy_special"):
                modules.add(node.value.id)
    return {"modules": modules, "sg": helpers}


# Helpers whose symgrad version reaches into symgrad (its error classes): the exported version.
_EXPORTED_HELPERS = {
    "while_condition": '''\
def while_condition(value: Any, filename: str, line: int, col: int) -> bool:
    """The condition of a kept `while` loop: one truth value for the whole call."""
    if np.ndim(value) == 0:
        return bool(value)
    raise ValueError(
        f"{filename}:{line}:{col}: this loop's condition is an array of shape {np.shape(value)} here: "
        "the loop runs as long as one condition holds, and the elements of an array may disagree"
    )
''',
}


def _helpers(names: set[str]) -> list[str]:
    """The source of the runtime helpers in `names` and of those they call, in the order of
    symgrad/runtime.py, each with the first paragraph of its docstring."""
    wanted: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in wanted:
            continue
        if not inspect.isfunction(getattr(runtime, name, None)):
            raise SymgradError(
                f"export: the generated code calls `sg.{name}`, which is not a helper that can be inlined",
                hint="export it for another backend's program, or report this",
            )
        wanted.add(name)
        pending += sorted(_calls(getattr(runtime, name)) - wanted)
    order = [n for n, v in vars(runtime).items() if inspect.isfunction(v) and n in wanted]
    return [_helper_source(n) for n in order]


def _calls(fn: Callable[..., Any]) -> set[str]:
    """The runtime helpers `fn` calls by name."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name)
        and node.id != fn.__name__
        and inspect.isfunction(getattr(runtime, node.id, None))
    }


def _helper_source(name: str) -> str:
    """A helper's source with its docstring cut to its first paragraph (no doctests: they
    import symgrad)."""
    if name in _EXPORTED_HELPERS:
        return _EXPORTED_HELPERS[name].rstrip("\n")
    text = inspect.getsource(getattr(runtime, name))
    tree = ast.parse(text).body[0]
    assert isinstance(tree, ast.FunctionDef)
    first = tree.body[0]
    lines = text.splitlines()
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        summary = inspect.cleandoc(first.value.value).split("\n\n")[0].split("\n>>>")[0].strip()
        indent = lines[first.lineno - 1][: first.col_offset]
        wrapped = textwrap.indent(f'"""{summary}"""', indent).splitlines()
        lines[first.lineno - 1 : first.end_lineno] = wrapped
    return "\n".join(lines)


# --- C -------------------------------------------------------------------------------------------------

# Names C code cannot give a variable: C99's keywords (SymPy's printer knows them) and the
# functions of <math.h> and <stdio.h> that the generated code or its harness call.
_C_NAMES = """acos acosh asin asinh atan atan2 atanh cbrt ceil copysign cos cosh erf erfc exp exp2 expm1
    fabs floor fmax fmin fmod hypot lgamma log log10 log1p log2 nearbyint pow sin sinh sqrt tan
    tanh tgamma isnan isinf isfinite main printf fprintf stderr strtod argc argv NAN INFINITY
    HUGE_VAL M_PI M_E y0 y1 yn j0 j1 jn gamma round trunc signbit"""
_C_TAKEN = frozenset(_C_NAMES.split())

# Functions of the generated code that C has no one call for: a static function each, in the
# .c file where used.
_C_HELPERS = {
    "sg_logaddexp": """\
static double sg_logaddexp(double a, double b)
{
    /* log(exp(a) + exp(b)) without overflow, as numpy.logaddexp */
    if (a == b) {
        return a + 0.69314718055994529;
    }
    double d = a - b;
    return d > 0 ? a + log1p(exp(-d)) : d <= 0 ? b + log1p(exp(d)) : d;
}""",
    "sg_mod": """\
static double sg_mod(double a, double b)
{
    /* a mod b with the sign of b, as numpy.mod and Python's % */
    double r = fmod(a, b);
    if (r != 0) {
        if ((b < 0) != (r < 0)) {
            r += b;
        }
    } else {
        r = copysign(0.0, b);
    }
    return r;
}""",
    "sg_sign": """\
static double sg_sign(double x)
{
    /* -1, 0 or 1 (NaN for NaN), as numpy.sign */
    return x > 0 ? 1.0 : x < 0 ? -1.0 : x;
}""",
}


class CPrinter(C99CodePrinter):
    """C99 for symgrad's programs of floats: its own functions (sigmoid, logaddexp, branches as
    one conditional expression), NumPy's meaning where C's differs (`mod`, `sign`, rounding),
    refusing what C has no function for."""

    reserved_words = set(C99CodePrinter.reserved_words) | _C_TAKEN

    def __init__(self) -> None:
        super().__init__({"strict": True})
        self.helpers: set[str] = set()
        self.integers: set[Any] = set()  # symbols C holds in a `long` besides loop indices: counts

    def name(self, symbol: Any) -> str:
        """A variable's name in C: a C keyword or <math.h> name gets a `_`, and one that C
        reserves for its implementation (`__1`, a loop index `_` renamed, or `_X`) an `sg`."""
        name = str(super()._print_Symbol(symbol))
        reserved = name.startswith("__") or (name.startswith("_") and name[1:2].isupper())
        return f"sg{name}" if reserved else name

    def _print_Or(self, expr: Any) -> str:
        # `a || (b && c)`: C means the same without the parentheses, but -Wall warns
        args = sorted(expr.args, key=sympy.default_sort_key)
        return " || ".join(
            f"({self._print(a)})" if isinstance(a, sympy.And) else self.parenthesize(a, precedence(expr))
            for a in args
        )

    def _print_Symbol(self, expr: Any) -> str:
        # an index or a count is a `long`: in an expression it is a double, or C would divide
        # integers (`3/i`) where Python divides floats
        name = self.name(expr)
        return f"(double){name}" if expr.is_integer or expr in self.integers else name

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        pieces, default = emit._pieces(expr)
        text = self._print(default)
        for value, cond in reversed(pieces):
            text = f"(({self._print(cond)}) ? ({self._print(value)}) : ({text}))"
        return str(text)

    def _print_StopGradient(self, expr: Any) -> str:
        return str(self._print(expr.args[0]))

    def _print_CustomDerivative(self, expr: Any) -> str:
        return str(self._print(expr.args[0]))

    def _print_Sigmoid(self, expr: Any) -> str:
        return f"(1.0/(1.0 + exp(-({self._print(expr.args[0])}))))"

    def _print_LogAddExp(self, expr: Any) -> str:
        self.helpers.add("sg_logaddexp")
        return f"sg_logaddexp({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_Mod(self, expr: Any) -> str:
        self.helpers.add("sg_mod")
        return f"sg_mod({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_sign(self, expr: Any) -> str:
        self.helpers.add("sg_sign")
        return f"sg_sign({self._print(expr.args[0])})"

    def _print_Round(self, expr: Any) -> str:
        return f"nearbyint({self._print(expr.args[0])})"  # half to even in the default rounding mode

    def _print_FMax(self, expr: Any) -> str:
        return f"{expr.ufunc}({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_FMin(self, expr: Any) -> str:
        return self._print_FMax(expr)

    def _print_Fmod(self, expr: Any) -> str:
        return f"fmod({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_CopySign(self, expr: Any) -> str:
        return f"copysign({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_ImaginaryUnit(self, expr: Any) -> str:
        return "NAN"  # as the Python flavours: values are real

    def _print_ComplexInfinity(self, expr: Any) -> str:
        return "NAN"

    def _print_Max(self, expr: Any) -> str:
        # numpy.maximum: NaN if either is NaN (fmax would drop it)
        args = [self._print(a) for a in expr.args]
        text = args[0]
        for arg in args[1:]:
            text = f"sg_maximum({text}, {arg})"
        self.helpers.add("sg_maximum")
        return str(text)

    def _print_Min(self, expr: Any) -> str:
        args = [self._print(a) for a in expr.args]
        text = args[0]
        for arg in args[1:]:
            text = f"sg_minimum({text}, {arg})"
        self.helpers.add("sg_minimum")
        return str(text)


_C_HELPERS["sg_maximum"] = """\
static double sg_maximum(double a, double b)
{
    /* the larger, NaN if either is (numpy.maximum) */
    return a != a ? a : b != b ? b : a > b ? a : b;
}"""
_C_HELPERS["sg_minimum"] = """\
static double sg_minimum(double a, double b)
{
    /* the smaller, NaN if either is (numpy.minimum) */
    return a != a ? a : b != b ? b : a < b ? a : b;
}"""


def c_refusal(graph: Graph, program: Sequence[emit.Statement]) -> str | None:
    """Why `program` cannot be C code of floats (arrays anywhere, loop bodies too), else None;
    what C refuses of a kept loop itself, `_CWriter` finds where it writes the loop."""
    if graph.shapes is not None:
        return "it is compiled for array shapes"
    for _, expr in program:
        if isinstance(expr, Loop):
            inner = c_refusal(expr.body, expr.body.nodes)
            if inner is not None:
                return inner
        elif isinstance(expr, Multi) or (isinstance(expr, sympy.Basic) and expr.atoms(arrays.ArrayOp)):
            return "it uses array operations"
    return None


def _c_comment(text: str) -> str:
    return "/* " + text.replace("*/", "* /") + " */"


def _where(loop: Loop) -> str:
    """`model.py:5`: the user's loop, as a refusal names it."""
    file, line = (loop.line or ("?", 0))[:2]
    return f"{Path(str(file)).name}:{line}"


# What a name in the C code is, per block: a `const double`, a `double` assigned again (a carry),
# a `long` (an index, a count), or a stack (a `double *` into the work array).
_CONST, _DOUBLE, _LONG, _STACK = "const double", "double", "long", "stack"


class _CWriter:
    """A program of floats, kept loops included, as C99 statements.

    It mirrors `emit.render_loop` (the Python export) statement for statement, with these
    choices for C:

    - A carry is a `double` declared before its loop from its start value; the updates are
      assigned in parallel as Python's `a, b = b, a` is: an update that reads a carry assigned
      before it in the same iteration reads it from a `const` copy of its old value.
    - The index and a count are `long` (`for (long i = 0; i < 200; i++)`; a reverse pass
      counts down from `length - 1`); in a float expression the printer writes `(double)i`,
      since C would divide integers (`3/i`) where Python divides floats.
    - A stack (the tape a reverse pass reads) takes no malloc, which embedded targets may not
      have: it is a stretch of a work array the caller passes (`double *sg_work`, of
      `<NAME>_WORK` doubles, as CasADi's generated code takes `w` of size `sz_w`), of the
      loop's most iterations: its length, or a `for` loop's length where a `break` stops it
      (`count` then says how far it ran). Python fills a new stack with zeros; C does not, since
      a reverse pass reads only what the iterations of its forward loop wrote. A stack
      allocated in a loop body (a nested loop's tape, when an outer reverse pass runs the
      inner loop again) gets one stretch, which every outer iteration writes again.
    - A count is declared only where a statement after its loop reads it, a `while` loop's
      index only where read: `-Wall -Werror` rejects a variable set and never used.
    - Names C reserves for itself (`__1`: the index `_` of a second pass) get an `sg` prefix.
    - What is refused: a `while` loop that saves a tape (its trip count is known only as it
      runs, so its tape has no bound), and a tape whose elements are tapes or a stack read as
      a value (a second-order program; first-order ones do not make them).
    """

    def __init__(self, request: _Request, printer: CPrinter, names: Names) -> None:
        self.fname = request.fname
        self.printer = printer
        self.names = names
        self.work_name = names.fresh("sg_work")
        self.work = 0  # doubles of the work array taken so far
        self.bodies: dict[Loop, list[emit.Statement]] = {}  # each loop's body statements
        self.reads: dict[Loop, frozenset[Any]] = {}  # what each loop reads, its body's statements too
        self.mutable: set[Any] = set()  # symbols assigned again: the carries
        self.bounds: dict[Any, int | None] = {}  # count -> its loop's most iterations (None: while)
        self.scopes: list[dict[str, str]] = [{printer.name(s): _DOUBLE for s in request.graph.inputs}]

    # --- planning: every body's statements, once, in the order the Python export makes them

    def plan(self, program: Sequence[emit.Statement]) -> None:
        """Compute the loops' bodies and what each reads, before any line is written (a `long
        steps` that nothing after it reads would fail `-Wall -Werror`)."""
        for _, expr in program:
            if not isinstance(expr, Loop):
                continue
            condition = [expr.condition] if expr.condition is not None else []
            body = emit.block_program(expr.body, self.names, condition)
            self.bodies[expr] = body
            self.mutable |= set(expr.carries)
            self.plan(body)
            heads = (*expr.init, expr.length, *condition, *expr.updates, *expr.stacked_values)
            read = set().union(*(_symbols(v) for v in heads), *(self._reads(e) for _, e in body))
            self.reads[expr] = frozenset(read | {stack for _, stack in expr.items})

    def _reads(self, expr: Any) -> frozenset[Any] | set[Any]:
        return self.reads[expr] if isinstance(expr, Loop) else reads_of(expr)

    # --- scopes: C blocks, where Python has one scope per function

    def _visible(self, name: str) -> str | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def _define(self, symbol: Any, text: str, kind: str = _CONST) -> str:
        """`const double t0 = ...;` where the name is new in C's scope, `t0 = ...;` where it
        is a carry declared around (Python assigns it again)."""
        name = self.printer.name(symbol)
        visible = self._visible(name)
        if visible is None:
            kind = _DOUBLE if kind == _CONST and symbol in self.mutable else kind
            self.scopes[-1][name] = kind
            return f"{kind} {name} = {text};"
        if visible not in (_DOUBLE, _LONG):
            self._twice(name)
        return f"{name} = {text};"

    def _twice(self, name: str) -> None:
        """A name C would declare twice in one block: never made so far, refused if it is."""
        raise SymgradError(
            f"`{self.fname}` cannot be exported as C: its program gives `{name}` a value twice",
            hint="export it as Python (lang='python', on the command line --lang python), and report this",
        )

    # --- statements

    def statements(
        self,
        graph: Graph,
        program: Sequence[emit.Statement],
        indent: str,
        outputs: Sequence[Any],
        after: tuple[Any, Sequence[str]] = (None, ()),
    ) -> Iterator[str]:
        """The statements of `program` (a body's: `graph` is the body), with the user's lines as
        comments where they change; `outputs` are what the block gives on (its graph's outputs,
        a body's updates), `after` a symbol and the lines that follow its statement (a loop's
        exit after its condition)."""
        later = [set().union(*(_symbols(o) for o in outputs))]  # what statement k's successors read
        for _, expr in reversed(program[1:]):
            later.append(later[-1] | set(self._reads(expr)))
        later.reverse()
        last: tuple[Any, ...] | None = None
        for (symbol, expr), needed in zip(program, later):
            note = emit.source_note(graph, symbol, last)
            if note is not None:
                yield indent + _c_comment(note)
            last = graph.lines.get(symbol, last)
            if isinstance(expr, Loop):
                yield from self.loop(expr, indent, needed)
                last = None  # the next statement says its line again, as the Python export does
            else:
                yield indent + self._define(symbol, self.printer.doprint(expr))
            if symbol == after[0]:
                yield from after[1]

    def loop(self, loop: Loop, indent: str, needed: set[Any]) -> Iterator[str]:
        """A kept loop: carries set up, stacks placed in the work array, the count (where
        `needed`, what the statements after it read, has it), then the loop over the body
        (items read at the index, the exit where the condition is computed, stacks written,
        carries updated in parallel)."""
        printer, inner = self.printer, indent + "    "
        for carry, start in zip(loop.carries, loop.init):
            if carry != start:
                yield indent + self._define(carry, _c_value(printer, start), _DOUBLE)
        yield from self._stacks(loop, indent)
        index = printer.name(loop.index)
        count = loop.count if loop.count is not None and loop.count in needed else None
        if loop.count is not None:
            self.bounds[loop.count] = None if loop.length is None else self._bound(loop.length)
            printer.integers.add(loop.count)
        if count is not None and loop.length is not None:  # all iterations, unless it stops first
            yield indent + self._define(count, self._length(loop.length), _LONG)
        # a `while` loop's index counts outside it, where its count reads it
        counted = loop.length is None and (count is not None or loop.index in self.reads[loop])
        if counted:
            yield indent + self._define(loop.index, "0", _LONG)
        self.scopes.append({index: _LONG})
        body = list(self._body(loop, inner, index, count))
        self.scopes.pop()
        if loop.length is None:
            yield f"{indent}for (;;{f' {index}++' if counted else ''}) {{"
            yield from body
            yield indent + "}"
            if count is not None:
                yield indent + self._define(count, index, _LONG)
            return
        if loop.reverse:
            start = (
                str(loop.length - 1) if isinstance(loop.length, int) else f"{self._length(loop.length)} - 1"
            )
            yield f"{indent}for (long {index} = {start}; {index} >= 0; {index}--) {{"
        else:
            yield f"{indent}for (long {index} = 0; {index} < {self._length(loop.length)}; {index}++) {{"
        yield from body
        yield indent + "}"

    def _body(self, loop: Loop, inner: str, index: str, count: Any) -> Iterator[str]:
        printer = self.printer
        for item, stack in loop.items:
            if self._visible(printer.name(stack)) != _STACK:
                self._refuse_tape(loop)
            yield inner + self._define(item, f"{printer.name(stack)}[{index}]")
        program = self.bodies[loop]
        exit = list(self._exit(loop, inner, index, count)) if loop.condition is not None else []
        if exit and not any(symbol == loop.condition for symbol, _ in program):
            yield from exit  # an atom: checked before anything runs
        outputs = [*loop.updates, *loop.stacked_values]
        yield from self.statements(loop.body, program, inner, outputs, (loop.condition, exit))
        for stack, value in zip(loop.stacked, loop.stacked_values):
            if isinstance(value, sympy.Symbol) and self._visible(printer.name(value)) == _STACK:
                self._refuse_tape(loop)
            yield f"{inner}{printer.name(stack)}[{index}] = {printer.doprint(value)};"
        yield from self._updates(loop, inner)

    def _exit(self, loop: Loop, inner: str, index: str, count: Any) -> Iterator[str]:
        yield f"{inner}if (!({self.printer.doprint(loop.condition)})) {{"
        if count is not None and loop.length is not None:  # a `for` that stops early counts its iterations
            yield f"{inner}    {self.printer.name(count)} = {index};"
        yield f"{inner}    break;"
        yield f"{inner}}}"

    def _updates(self, loop: Loop, inner: str) -> Iterator[str]:
        """`a, b = b, a` as C: an update that reads a carry assigned before it reads a copy
        of the carry's old value."""
        moved = [(c, sympy.sympify(u)) for c, u in zip(loop.carries, loop.updates) if c != u]
        assigned: set[Any] = set()
        copies: dict[Any, Any] = {}
        for carry, update in moved:
            for stale in sorted(_symbols(update) & assigned, key=str):
                copies.setdefault(stale, real_symbol(self.names.fresh(f"{stale}_old")))
            assigned.add(carry)
        for old, copy in copies.items():
            yield inner + self._define(copy, self.printer.name(old))
        assigned = set()
        for carry, update in moved:
            text = self.printer.doprint(update.xreplace({s: copies[s] for s in assigned & copies.keys()}))
            yield inner + self._define(carry, text)
            assigned.add(carry)

    def _stacks(self, loop: Loop, indent: str) -> Iterator[str]:
        """The loop's stacks as stretches of the work array, of its most iterations."""
        if not loop.stacked:
            return
        size = None if loop.length is None else self._bound(loop.length)
        if size is None:
            raise SymgradError(
                f"`{self.fname}` cannot be exported as C: the `while` loop at {_where(loop)} saves a value "
                "in every iteration for the reverse pass, and how many iterations it runs is known only "
                "as it runs, while C export takes its memory from a work array of a size fixed at export",
                hint=f"bound the loop: `for k in range(N):` whose first statement is `if not ({_condition(loop)}): "
                "break`, N at least the most iterations it runs (the work array then holds N of each saved "
                "value); or export it as Python (lang='python', on the command line --lang python)",
            )
        for stack in loop.stacked:
            name = self.printer.name(stack)
            if self._visible(name) is not None:
                self._twice(name)
            self.scopes[-1][name] = _STACK
            where = self.work_name if self.work == 0 else f"{self.work_name} + {self.work}"
            yield f"{indent}double *const {name} = {where};  /* {size} doubles */"
            self.work += size

    def _bound(self, length: Any) -> int | None:
        """The most iterations of a loop of `length`: itself, or the bound of the loop whose
        count it is (None for a `while` loop's)."""
        return length if isinstance(length, int) else self.bounds.get(length)

    def _length(self, length: Any) -> str:
        return str(length) if isinstance(length, int) else self.printer.name(length)

    def _refuse_tape(self, loop: Loop) -> None:
        raise SymgradError(
            f"`{self.fname}` cannot be exported as C: the loop at {_where(loop)} saves a tape of tapes "
            "(one per iteration of an inner loop) or reads a tape as a value, which C export does not write",
            hint="export it as Python (lang='python', on the command line --lang python), which keeps the loop",
        )


def _c_value(printer: CPrinter, value: Any) -> str:
    """A carry's start: a number as a double (`1.0`), as the Python export writes it."""
    value = sympy.sympify(value)
    return _c_double(float(value)) if value.is_Number else str(printer.doprint(value))


def _symbols(value: Any) -> set[Any]:
    return set(getattr(value, "free_symbols", ()))


def _condition(loop: Loop) -> str:
    """The condition of the user's `while` loop, as written (`s < 10.0`), for a hint."""
    if loop.line is not None:
        text = linecache.getline(str(loop.line[0]), int(loop.line[1])).strip()
        try:
            tree = ast.parse(f"{text}\n    pass")
        except SyntaxError:  # a condition over several lines
            return "CONDITION"
        if tree.body and isinstance(tree.body[0], ast.While):
            return ast.unparse(tree.body[0].test)
    return "CONDITION"


def _c_files(request: _Request) -> dict[str, str]:
    graph = request.graph
    program = emit.eliminate_common(graph, emit.fold_scaled(graph, emit.live_nodes(graph)))
    refusal = c_refusal(graph, program)
    if refusal is not None:
        raise SymgradError(
            f"`{request.fname}` cannot be exported as C: {refusal}; C export is for programs of floats",
            hint="export it as Python (lang='python', on the command line --lang python), which runs "
            "arrays with NumPy",
        )
    printer = CPrinter()
    names = graph.names.copy()
    out = names.fresh("sg_out")
    writer = _CWriter(request, printer, names)
    try:
        writer.plan(program)
        body = list(writer.statements(graph, program, "    ", graph.outputs))
        results = [printer.doprint(o) for o in graph.outputs]
        c_params = [str(printer._print(s)) for s in graph.inputs]
    except PrintMethodNotImplementedError as exc:
        what = str(exc).splitlines()[0].rsplit(": ", 1)[-1]
        raise SymgradError(
            f"`{request.fname}` cannot be exported as C: C99 has no function for `{what}`",
            hint="export it as Python (lang='python', on the command line --lang python)",
        ) from None
    c = _CFunction(request, c_params, out, writer.work_name, writer.work, len(results))
    source = c.source([*body, *[f"    {out}[{k}] = {r};" for k, r in enumerate(results)]], printer.helpers)
    stem = request.stem
    return {f"{stem}.c": source, f"{stem}.h": c.header(), f"{stem}_test.c": c.harness()}


@dataclass
class _CFunction:
    """The exported C function's interface, which its three files spell out."""

    request: _Request
    params: list[str]  # the arguments' names in C
    out: str  # the results' array
    work_name: str  # the work array's, where `work` > 0
    work: int  # doubles of work array the loops' tapes need (0: no work array)
    n: int  # how many results

    @property
    def labels(self) -> list[str]:
        return [*["value"] * self.request.n_values, *(f"d/d{w}" for w in self.request.wrt)]

    @property
    def work_macro(self) -> str:
        return self.request.name.upper() + "_WORK"

    def signature(self) -> str:
        work = f", double *{self.work_name}" if self.work else ""
        return f"void {self.request.name}({''.join(f'double {p}, ' for p in self.params)}double *{self.out}{work})"

    def banner(self, file: str) -> list[str]:
        from . import __version__

        request = self.request
        return [
            f"/* {file}: {request.summary()}.",
            f" * Generated by symgrad {__version__} from `{request.fname}` in {request.source_name}:",
            f" *     {request.command('c')}",
        ]

    def header(self) -> str:
        request, stem = self.request, self.request.stem
        guard = "".join(c if c.isalnum() else "_" for c in stem).upper() + "_H"
        layout = ", ".join(f"{self.out}[{k}] = {label}" for k, label in enumerate(self.labels))
        work, uses = [], []
        if self.work:
            work = [f"/* the doubles of scratch memory {request.name} needs ({self.work_name}) */"]
            work += [f"#define {self.work_macro} {self.work}", ""]
            uses = [
                f"   {self.work_name}: {self.work_macro} doubles, in which the loops keep the values their",
                "   reverse passes read (no malloc); what they hold before a call does not matter; calls",
                "   that run at the same time need one each.",
            ]
        return "\n".join(
            [
                *self.banner(f"{stem}.h"),
                " */",
                f"#ifndef {guard}",
                f"#define {guard}",
                "",
                *work,
                f"/* {request.name}: writes {self.n} doubles: {layout}.",
                *(
                    [f"   Built in (static): {', '.join(f'{k}={v!r}' for k, v in request.static.items())}."]
                    if request.static
                    else []
                ),
                *uses,
                "   C99; link with -lm. */",
                f"{self.signature()};",
                "",
                f"#endif /* {guard} */",
                "",
            ]
        )

    def source(self, body: list[str], helpers: set[str]) -> str:
        stem = self.request.stem
        return "\n".join(
            [
                *self.banner(f"{stem}.c"),
                " * C99 (cc -O2 -c " + f"{stem}.c); link with -lm. Regenerate rather than edit. */",
                "#include <math.h>",
                "",
                f'#include "{stem}.h"',
                "",
                *[f"{_C_HELPERS[h]}\n" for h in sorted(helpers)],
                self.signature(),
                "{",
                *body,
                "}",
                "",
            ]
        )

    def harness(self) -> str:
        request, stem, n = self.request, self.request.stem, self.n
        params = request.params
        defaults = [float(request.values.get(p, 1.0)) for p in params]
        arguments = ", ".join(
            [*(f"args[{k}]" for k in range(len(params))), "results", *(["work"] if self.work else [])]
        )
        return "\n".join(
            [
                f"/* {stem}_test.c: calls {request.name} on the values given as arguments (or built-in",
                " * ones) and prints each result as `name value`.",
                f" *     cc -O2 -Wall -Werror -o {stem}_test {stem}.c {stem}_test.c -lm",
                f" *     ./{stem}_test {' '.join(params)} */",
                "#include <math.h>",
                "#include <stdio.h>",
                "#include <stdlib.h>",
                "",
                f'#include "{stem}.h"',
                "",
                *([f"static double work[{self.work_macro}];", ""] if self.work else []),
                "int main(int argc, char **argv)",
                "{",
                f"    double args[{max(len(params), 1)}] = {{{', '.join(_c_double(v) for v in defaults) or '0.0'}}};",
                f"    double results[{n}];",
                f"    if (argc != 1 && argc != {len(params) + 1}) {{",
                f'        fprintf(stderr, "usage: %s{"".join(f" {p}" for p in params)}\\n", argv[0]);',
                "        return 2;",
                "    }",
                "    for (int k = 1; k < argc; k++) {",
                "        args[k - 1] = strtod(argv[k], NULL);",
                "    }",
                f"    {request.name}({arguments});",
                *[f'    printf("{label} %.17g\\n", results[{k}]);' for k, label in enumerate(self.labels)],
                "    return 0;",
                "}",
                "",
            ]
        )


def _c_double(value: float) -> str:
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    return repr(float(value))
