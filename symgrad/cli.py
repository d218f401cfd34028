"""The `symgrad` command line: show, check and plot the derivatives of functions in .py files."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import math
import re
import shlex
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np
import numpy.typing as npt

from .arraytrace import ShapesNeeded
from .compiled import Compiled
from .errors import DataDependentLoopError, SymgradError, WrtError

__all__ = [
    "CliError",
    "build_parser",
    "estimate",
    "finite_difference",
    "load_function",
    "main",
    "parse_assignments",
]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

PLOT_HINT = "plotting needs matplotlib: pip install 'symgrad[plot]'"

Array = npt.NDArray[np.float64]


class CliError(Exception):
    """A failure the command line reports in one message (no traceback), with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


# --- arguments -------------------------------------------------------------------------------------


def parse_assignments(text: str, option: str) -> dict[str, Any]:
    """`NAME=VALUE,...` with Python literal values (`ast.literal_eval`), brackets allowed.

    >>> parse_assignments("x=1.0,y=-2,v=[1, 2],flag=True", "--at")
    {'x': 1.0, 'y': -2, 'v': [1, 2], 'flag': True}
    """
    example = f"e.g. {option} x=1.0,y=2.0"
    try:
        call = ast.parse(f"f({text})", mode="eval").body
    except SyntaxError:
        raise CliError(
            f"{option}: cannot read {text!r}: expected NAME=VALUE pairs, {example}", EXIT_USAGE
        ) from None
    assert isinstance(call, ast.Call)
    if call.args or any(k.arg is None for k in call.keywords):
        raise CliError(f"{option}: expected NAME=VALUE pairs in {text!r}, {example}", EXIT_USAGE)
    values: dict[str, Any] = {}
    for keyword in call.keywords:
        assert keyword.arg is not None
        try:
            values[keyword.arg] = ast.literal_eval(keyword.value)
        except (ValueError, SyntaxError, TypeError):
            if isinstance(keyword.value, ast.Name) and keyword.value.id in ("inf", "nan"):
                values[keyword.arg] = float(keyword.value.id)
                continue
            raise CliError(
                f"{option}: the value of `{keyword.arg}` must be a Python literal "
                f"(a number, a list of numbers, True/False, a string), got {ast.unparse(keyword.value)!r}",
                EXIT_USAGE,
            ) from None
    return values


def _assignments(items: Sequence[str] | None, option: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items or ():
        values.update(parse_assignments(item, option))
    return values


def _names(text: str | None) -> tuple[str | int, ...] | None:
    """`--wrt x,y` (names) or `--wrt 0,1` (positions)."""
    if text is None:
        return None
    names: list[str | int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise CliError(f"--wrt: empty name in {text!r}, e.g. --wrt x,y", EXIT_USAGE)
        names.append(int(part) if part.lstrip("-").isdigit() else part)
    return tuple(names)


def _range(text: str) -> tuple[float, float]:
    low, sep, high = text.partition(":")
    try:
        bounds = float(low), float(high)
    except ValueError:
        bounds = (math.nan, math.nan)
    if not sep or not all(math.isfinite(b) for b in bounds) or bounds[0] >= bounds[1]:
        raise CliError(
            f"--range: expected LOW:HIGH with LOW < HIGH, e.g. --range -8:8; got {text!r}", EXIT_USAGE
        )
    return bounds


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """`--range -8:8` reads as an option to argparse: glue it into `--range=-8:8`."""
    result: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        if items[i] == "--range" and i + 1 < len(items) and items[i + 1].startswith("-"):
            result.append(f"--range={items[i + 1]}")
            i += 2
            continue
        result.append(items[i])
        i += 1
    return result


# --- loading FILE.py:FUNC --------------------------------------------------------------------------


def load_function(target: str) -> Callable[..., Any]:
    """Import `FILE.py` by path (its directory on `sys.path`) and return its `FUNC`.

    `FUNC` may be dotted (`Model.loss`) to reach an attribute of a module-level object.
    """
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text or not name:
        raise CliError(f"expected FILE.py:FUNC, got {target!r} (e.g. examples/relu.py:relu)", EXIT_USAGE)
    path = Path(path_text)
    if not path.is_file():
        raise CliError(f"{path_text}: no such file", EXIT_USAGE)
    directory = str(path.resolve().parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module_name = path.stem if path.stem.isidentifier() and path.stem not in sys.modules else None
    if module_name is None:
        module_name = "_symgrad_cli_" + "".join(c if c.isalnum() else "_" for c in path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"{path_text}: cannot be imported as a Python module", EXIT_USAGE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SymgradError:
        raise
    except SyntaxError as exc:
        raise CliError(_syntax_error(exc, path_text)) from None
    except Exception as exc:
        raise CliError(f"{path_text}: importing it failed: {type(exc).__name__}: {exc}") from None
    found: Any = module
    for part in name.split("."):
        if not hasattr(found, part):
            available = sorted(
                n for n, v in vars(module).items() if inspect.isfunction(v) and v.__module__ == module_name
            )
            listed = ", ".join(available) or "none"
            raise CliError(
                f"{path_text} has no function `{name}` (functions defined there: {listed})", EXIT_USAGE
            )
        found = getattr(found, part)
    if not callable(found):
        raise CliError(f"{target}: `{name}` is a {type(found).__name__}, not a function", EXIT_USAGE)
    return found  # type: ignore[no-any-return]


def _syntax_error(exc: SyntaxError, path_text: str) -> str:
    """`file:line:col: error: message`, the offending line and a caret, as symgrad's own errors."""
    if not exc.lineno:
        return f"{exc.filename or path_text}: error: {exc.msg}"
    col = exc.offset or 1
    text = f"{exc.filename or path_text}:{exc.lineno}:{col}: error: {exc.msg}"
    if exc.text and exc.text.strip():
        line = exc.text.rstrip("\n").rstrip()
        stripped = line.lstrip()
        caret = " " * max(col - 1 - (len(line) - len(stripped)), 0) + "^"
        text += f"\n    {stripped}\n    {caret}"
    return text


def loop_bounds(fn: Callable[..., Any]) -> list[str]:
    """The parameters of `fn` that a `for` loop's iterable reads (`range(n)`): they must be static.

    Not those read through `len(x)` or `x.shape`, which come from an array's shape."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        params = list(inspect.signature(fn).parameters)
    except (OSError, TypeError, ValueError, SyntaxError):
        return []
    read = set().union(*(_names_read(n.iter) for n in ast.walk(tree) if isinstance(n, ast.For)))
    return [p for p in params if p in read]


def _names_read(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute) or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"
    ):
        return set()  # x.shape, len(x): known from the array, not a value to give
    return set().union(*(_names_read(child) for child in ast.iter_child_nodes(node)))


# --- binding values to parameters ------------------------------------------------------------------


@dataclass
class Setup:
    """A loaded function, what to differentiate, and the values given on the command line."""

    fn: Callable[..., Any]
    wrt: tuple[str | int, ...] | None
    static: dict[str, Any]
    at: dict[str, Any]

    GENERIC_LOOP_HINT: ClassVar[str] = (
        "on the command line: --static NAME=VALUE names the loop bound and its value"
    )

    @property
    def signature(self) -> inspect.Signature:
        return inspect.signature(self.fn)

    def check_names(self) -> None:
        params = self.signature.parameters
        for option, names in (("--static", self.static), ("--at", self.at)):
            unknown = [n for n in names if n not in params]
            if unknown:
                raise CliError(
                    f"{option}: `{self.fn.__name__}` has no parameter {', '.join(unknown)} "
                    f"(parameters: {', '.join(params)})",
                    EXIT_USAGE,
                )
        both = sorted(set(self.static) & set(self.at))
        if both:
            raise CliError(f"{', '.join(both)} given both in --static and --at: choose one", EXIT_USAGE)
        self.check_wrt()

    def check_wrt(self) -> None:
        """--wrt names parameters (or positions) of the function: a usage error otherwise."""
        params = list(self.signature.parameters)
        listed = f"(parameters: {', '.join(params) or 'none'})"
        for item in self.wrt or ():
            if isinstance(item, int) and not -len(params) <= item < len(params):
                raise CliError(
                    f"--wrt: position {item} is out of range: `{self.fn.__name__}` has "
                    f"{len(params)} parameters {listed}",
                    EXIT_USAGE,
                )
            if isinstance(item, str) and item not in params:
                example = f", e.g. --wrt {params[0]}" if params else ""
                raise CliError(
                    f"--wrt: `{self.fn.__name__}` has no parameter {item} {listed}{example}", EXIT_USAGE
                )

    def grad(self, wrt: Any = None) -> Compiled:
        from .api import grad

        try:
            compiled: Compiled = grad(
                self.fn, wrt=self.wrt if wrt is None else wrt, static=tuple(self.static)
            )
        except WrtError as exc:  # --wrt / --static that do not fit the function: a usage error
            raise CliError(format_error(exc), EXIT_USAGE) from None
        return compiled

    def values(self, compiled: Compiled, skip: Sequence[str] = ()) -> dict[str, Any]:
        """Every parameter's value: --static, --at (floats for wrt parameters), or its default."""
        values: dict[str, Any] = {}
        for name, param in self.signature.parameters.items():
            if name in skip:
                continue
            if name in self.static:
                values[name] = self.static[name]
            elif name in self.at:
                values[name] = _numeric(name, self.at[name], name in compiled.wrt)
            elif param.default is inspect.Parameter.empty:
                raise CliError(self.missing(name), EXIT_USAGE)
        return values

    def missing(self, name: str) -> str:
        """What to pass for a parameter without a value: --static for a loop bound, else --at."""
        if name in loop_bounds(self.fn):
            return (
                f"`{self.fn.__name__}` needs a value for `{name}`, which bounds a loop "
                f"(`for ... in range({name})`), so it is static: pass it with --static {name}=3"
            )
        return f"`{self.fn.__name__}` needs a value for `{name}`: pass --at {name}=..."

    def loop_hint(self) -> str:
        """The command-line form of a data-dependent loop's hint, naming the parameter."""
        bounds = [n for n in loop_bounds(self.fn) if n not in self.static]
        if not bounds:
            return self.GENERIC_LOOP_HINT
        pairs = ",".join(f"{n}={self.at.get(n, 3)!r}" for n in bounds)
        moved = [n for n in bounds if n in self.at]
        if moved:
            return f"on the command line: move {', '.join(moved)} from --at to --static: --static {pairs}"
        return f"on the command line: give the loop bound with --static, e.g. --static {pairs}"


def _numeric(name: str, value: Any, differentiated: bool) -> Any:
    """Lists become float64 arrays; numbers of a wrt parameter become floats (1 -> 1.0)."""
    if isinstance(value, (list, tuple)):
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise CliError(f"--at: `{name}` must be a number or a list of numbers", EXIT_USAGE) from None
    if differentiated and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def call(fn: Callable[..., Any], values: dict[str, Any]) -> Any:
    """Call `fn` with parameter values by name (positional-only ones by position)."""
    params = inspect.signature(fn).parameters
    args = [values.pop(n) for n, p in params.items() if p.kind is p.POSITIONAL_ONLY and n in values]
    return fn(*args, **values)


def _setup(args: argparse.Namespace) -> Setup:
    setup = Setup(
        fn=load_function(args.target),
        wrt=_names(args.wrt),
        static=_assignments(args.static, "--static"),
        at=_assignments(getattr(args, "at", None), "--at"),
    )
    setup.check_names()
    args.loaded = setup  # for main's messages about errors in the function
    return setup


# --- show ------------------------------------------------------------------------------------------


def _compiled_for_show(setup: Setup, args: argparse.Namespace) -> Compiled:
    compiled = setup.grad()
    shapes = _assignments(args.shape, "--shape")
    if setup.at:
        call(compiled, setup.values(compiled))  # compiles the variant for these values
        return compiled
    try:
        if shapes:
            sizes = {n: _shape(n, shapes.get(n, ())) for n in compiled.dynamic}
            compiled.variant(setup.static or None, sizes)
        else:
            compiled.variant(setup.static or None)
    except ShapesNeeded:
        raise CliError(_shapes_needed(setup.fn.__name__, compiled.dynamic), EXIT_USAGE) from None
    return compiled


def _shapes_needed(fname: str, params: Sequence[str]) -> str:
    shapes = ",".join(f"{n}=3" for n in params) or "x=3"
    first = params[0] if params else "x"
    return (
        f"`{fname}` uses array operations, so symgrad compiles it for the shapes of its arguments: "
        f"pass them, e.g. --shape {shapes} (or {first}=(2,3) for a matrix), "
        f"or values with --at {first}=[1.0,2.0,3.0]"
    )


def _shape(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, tuple) and all(isinstance(n, int) and not isinstance(n, bool) for n in value):
        return value
    raise CliError(
        f"--shape: `{name}` must be an int or a tuple of ints, e.g. --shape {name}=(2,3)", EXIT_USAGE
    )


def cmd_show(args: argparse.Namespace, out: IO[str]) -> int:
    """`symgrad show`: the generated source, the partial derivatives in LaTeX, or the SSA graph."""
    from . import display

    setup = _setup(args)
    compiled = _compiled_for_show(setup, args)
    if args.format == "latex":
        for line in display.equations(compiled, simplify=args.simplify):
            print(line, file=out)
    elif args.format == "graph":
        print(compiled.graph, file=out)
    else:
        display.show(compiled, out, color={"auto": None, "always": True, "never": False}[args.color])
    return EXIT_OK


# --- export ----------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace, out: IO[str]) -> int:
    """`symgrad export`: the derivative as a standalone Python module, or C files (symgrad/export.py)."""
    from .export import export_files

    setup = _setup(args)
    setup.grad()  # --wrt and --static checked as the other commands check them
    given = _assignments(args.shape, "--shape")
    shapes = {n: _shape(n, v) for n, v in given.items()} if given else None
    values = {n: float(v) for n, v in setup.at.items() if isinstance(v, (int, float))}
    output = Path(args.output) if args.output else None
    if args.lang == "c" and output is None:
        raise CliError("--lang c writes three files: name them with -o, e.g. -o build/f_grad.c", EXIT_USAGE)
    stem = output.stem if output is not None else None
    files = export_files(
        setup.fn,
        args.kind,
        wrt=setup.wrt,
        static=setup.static,
        shapes=shapes,
        lang=args.lang,
        name=args.name,
        loops=args.loops,
        values=values,
        stem=stem,
        source_name=args.target.rpartition(":")[0],
    )
    if output is None:
        out.write(next(iter(files.values())))
        return EXIT_OK
    if not output.parent.is_dir():
        raise CliError(f"-o: {output.parent}: no such directory", EXIT_USAGE)
    for file_name, text in files.items():
        path = output.with_name(file_name)
        path.write_text(text)
        print(f"wrote {path}", file=out)
    return EXIT_OK


# --- check -----------------------------------------------------------------------------------------


def finite_difference(
    f: Callable[[float], float], x: float, *, step: float | None = None, richardson: bool = True
) -> float:
    """The derivative of `f` at `x` by central differences, by default extrapolated to step 0.

    With `richardson` (the default) it is `estimate(f, x, step=step)`'s value: SciPy's
    `scipy.differentiate.derivative` where SciPy >= 1.15 is installed, else Ridders' method.
    Plain central differences use one step, `step * max(1, |x|)` with `step` 6e-6 (about the
    cube root of the float64 epsilon) by default.

    >>> import math
    >>> round(finite_difference(math.sin, 0.0), 12)
    1.0
    >>> round(finite_difference(math.log, 1e-3), 6)
    1000.0
    """
    if not richardson:
        h = (6e-6 if step is None else step) * max(1.0, abs(x))
        return _guarded(lambda h: (f(x + h) - f(x - h)) / (2 * h), h)
    return estimate(f, x, step=step)[0]


def estimate(
    f: Callable[[float], float], x: float, *, step: float | None = None, method: str = "auto"
) -> tuple[float, float]:
    """The derivative of `f` at `x` and an estimate of its absolute error, from central
    differences extrapolated to step 0, starting from the step `max(0.1 |x|, 1e-3)` (or
    `step * max(1, |x|)`).

    `method` "scipy" is `scipy.differentiate.derivative` (an order-8 central stencil over
    halved steps; its `error` is the change between its last two estimates), retried from an
    8 times smaller first step until it converges: a step may leave the domain of `f` (NaN,
    inf, ValueError: `log` near 0) or be too large for it (`sin` at 1e4); without convergence,
    the estimate with the smallest error. "ridders" is the hand-written Ridders' method (`ridders`). "auto" is "scipy"
    where SciPy >= 1.15 is installed, else "ridders". SciPy is not a dependency of symgrad: the
    fallback keeps `symgrad check` working without it, and is the code that `one_sided` uses.

    >>> import math
    >>> value, error = estimate(math.exp, 1.0)
    >>> abs(value - math.e) < 1e-11, error < 1e-9
    (True, True)
    """
    h = max(0.1 * abs(x), 1e-3) if step is None else step * max(1.0, abs(x))
    derivative = _scipy_derivative() if method in ("auto", "scipy") else None
    if method == "scipy" and derivative is None:
        raise CliError("--method scipy needs SciPy >= 1.15 (scipy.differentiate)", EXIT_USAGE)
    if derivative is None:
        return ridders(f, x, h)

    def elementwise(points: Array) -> Array:
        values = np.empty(np.shape(points))
        for index, t in np.ndenumerate(np.asarray(points)):
            values[index] = _guarded(f, float(t))
        return values

    best = (math.nan, math.inf)
    for _ in range(12):  # first steps down to 8**-11 (1e-10) of the default
        with np.errstate(all="ignore"):
            result = derivative(elementwise, x, initial_step=h)
        value, error = float(result.df), float(result.error)
        if math.isfinite(value) and math.isfinite(error):
            if int(result.status) == 0:  # converged: error < sqrt(eps) |value| (SciPy's default)
                return value, error
            if error < best[1]:  # stopped as its error grew: too large a step (sin at 1e4)
                best = (value, error)
        h /= 8
    return best if math.isfinite(best[0]) else (math.nan, math.nan)


def _scipy_derivative() -> Callable[..., Any] | None:
    try:
        from scipy.differentiate import derivative  # SciPy >= 1.15
    except ImportError:
        return None
    return derivative  # type: ignore[no-any-return]


def ridders(f: Callable[[float], float], x: float, h: float) -> tuple[float, float]:
    """Ridders' method: central differences for steps halved 16 times from `h`, extrapolated
    to step 0 in a Neville tableau; the estimate whose neighbours in the tableau agree best,
    with that agreement as its error. Steps where `f` is undefined are skipped.

    >>> import math
    >>> value, error = ridders(math.sin, 0.0, 1e-3)
    >>> value, error < 1e-12
    (1.0, True)
    """

    def central(h: float) -> float:
        return (f(x + h) - f(x - h)) / (2 * h)

    return _extrapolate(central, h, 4.0)  # central differences: errors in powers of h**2


def one_sided(f: Callable[[float], float], x: float, side: int) -> float:
    """The derivative of `f` at `x` from the right (`side` 1) or the left (-1): forward or
    backward differences, extrapolated in a Neville tableau as in `ridders` (kept for
    this even with SciPy: it is exact on piecewise-linear functions, which kinks usually are).

    >>> one_sided(abs, 0.0, 1), one_sided(abs, 0.0, -1)
    (1.0, -1.0)
    """

    def difference(h: float) -> float:
        return side * (f(x + side * h) - f(x)) / h

    return _extrapolate(difference, max(0.1 * abs(x), 1e-3), 2.0)[0]  # errors in powers of h


def _guarded(estimate: Callable[[float], float], h: float) -> float:
    try:
        return float(estimate(h))
    except (ArithmeticError, ValueError):  # math.log(-1), 1 / 0: outside the domain
        return math.nan


def _extrapolate(estimate: Callable[[float], float], h: float, ratio: float) -> tuple[float, float]:
    """Neville's tableau over `estimate(h)` for 16 halved steps, whose error shrinks by `ratio`
    per halving: the extrapolation whose neighbours in the tableau agree best, and how well."""
    best, error, last = math.nan, math.inf, math.nan
    previous: list[float] = []  # the last row of the tableau: extrapolations of a larger step
    for _ in range(16):
        value = _guarded(estimate, h)
        h /= 2
        if not math.isfinite(value):
            previous = []  # start the tableau again below the trouble
            continue
        last = value
        row = [value]
        factor = ratio
        for j, above in enumerate(previous):
            extrapolated = (row[j] * factor - above) / (factor - 1)
            factor *= ratio
            change = max(abs(extrapolated - row[j]), abs(extrapolated - above))
            row.append(extrapolated)
            if change < error:  # strict: on ties the larger step (less rounding) wins
                best, error = extrapolated, change
        previous = row
    return (best, error) if math.isfinite(best) else (last, math.nan)


def _total(value: Any) -> float:
    """The sum of a function's outputs, which `grad` differentiates."""
    parts = value if isinstance(value, tuple) else (value,)
    return float(sum(np.sum(np.asarray(p, dtype=np.float64)) for p in parts))


def _error(g: float, fd: float) -> float:
    """|symgrad - fd| / max(1, |fd|): relative where |fd| >= 1, absolute below."""
    if g == fd:  # also equal infinities
        return 0.0
    return abs(g - fd) / max(1.0, abs(fd))


def _along(
    total: Callable[[dict[str, Any]], float], name: str, array: Array, index: tuple[int, ...]
) -> Callable[[float], float]:
    """The function of one number: `total` with `name` (element `index` if an array) set to it."""

    def along(t: float) -> float:
        if not array.shape:
            return total({name: t})
        moved = array.copy()
        moved[index] = t
        return total({name: moved})

    return along


def _format_number(value: float) -> str:
    return f"{value:.12g}"


@dataclass
class Row:
    """One partial derivative in `check`'s table, with the one-sided derivatives at a kink."""

    label: str
    point: float
    g: float
    fd: float
    ok: bool
    sides: tuple[float, float] | None = None  # (left, right) where they differ: a kink
    fd_error: float = math.nan  # the finite differences' own error estimate (absolute); NaN: none

    @property
    def error(self) -> float:
        return _error(self.g, self.fd)

    @property
    def fd_uncertain(self) -> float:
        """The error estimate on the scale of `error` (divided by max(1, |fd|))."""
        return self.fd_error / max(1.0, abs(self.fd)) if math.isfinite(self.fd) else math.nan


def cmd_check(args: argparse.Namespace, out: IO[str]) -> int:
    """`symgrad check`: symgrad's gradient against finite differences of the original function."""
    setup = _setup(args)
    compiled = setup.grad()
    values = setup.values(compiled)
    for name in compiled.wrt:
        if name not in values:
            raise CliError(f"check needs a value for `{name}`: pass --at {name}=...", EXIT_USAGE)
    gradients = call(compiled, dict(values))
    gradients = (gradients,) if compiled.single else tuple(gradients)
    total = _total_of(setup, values)
    rows: list[Row] = []
    for name, gradient in zip(compiled.wrt, gradients):
        array = np.asarray(values[name], dtype=np.float64)
        gradient = np.broadcast_to(np.asarray(gradient, dtype=np.float64), array.shape)
        for index in np.ndindex(*array.shape):
            label = name if not array.shape else f"{name}[{', '.join(map(str, index))}]"
            along = _along(total, name, array, index)
            rows.append(_row(setup, args, label, along, float(array[index]), float(gradient[index])))
    return _report(rows, setup.fn.__name__, args.rtol, out)


def _total_of(setup: Setup, values: dict[str, Any]) -> Callable[[dict[str, Any]], float]:
    """The sum of the original function's outputs with some of the values changed."""

    def total(changed: dict[str, Any]) -> float:
        arguments = {**values, **changed}
        try:
            return _total(call(setup.fn, dict(arguments)))
        except (ArithmeticError, ValueError, TypeError):
            if not any(np.ndim(v) for v in arguments.values()):
                raise
            # `if x > 0:` refuses arrays: evaluate such a function element by element
            elementwise = np.vectorize(setup.fn, excluded=set(setup.static))
            return _total(call(elementwise, dict(arguments)))

    return total


def _row(
    setup: Setup, args: argparse.Namespace, label: str, along: Callable[[float], float], x: float, g: float
) -> Row:
    """symgrad's partial against finite differences; where they disagree, the one-sided
    derivatives, which differ at a kink (relu at 0), where central differences average them."""
    try:
        with np.errstate(all="ignore"):
            if args.method == "central":
                fd, fd_error = finite_difference(along, x, step=args.step, richardson=False), math.nan
            else:
                method = {"richardson": "auto"}.get(args.method, args.method)
                fd, fd_error = estimate(along, x, step=args.step, method=method)
            ok = _error(g, fd) <= args.rtol
            return Row(label, x, g, fd, ok, None if ok else _kink(along, x, args.rtol), fd_error)
    except CliError:
        raise
    except Exception as exc:
        raise CliError(
            f"evaluating `{setup.fn.__name__}` for the finite differences failed: {type(exc).__name__}: {exc}"
        ) from None


def _kink(along: Callable[[float], float], x: float, rtol: float) -> tuple[float, float] | None:
    """The derivatives from the left and from the right, if they differ: `x` is a kink."""
    left, right = one_sided(along, x, -1), one_sided(along, x, 1)
    differ = _error(left, right) > max(rtol, 1e-6)
    return (left, right) if math.isfinite(left) and math.isfinite(right) and differ else None


def _report(rows: Sequence[Row], fname: str, rtol: float, out: IO[str]) -> int:
    _print_table(rows, out)
    for row in rows:
        if row.sides is not None:
            print(_kink_note(row, fname, rtol), file=out)
        elif not row.ok and row.fd_uncertain > rtol:
            print(_uncertain_note(row, rtol), file=out)
    failed = sum(not row.ok for row in rows)
    kinks = sum(row.sides is not None for row in rows)
    if failed:
        at_kinks = f"; {kinks} at a kink, see the note" if kinks else ""
        print(
            f"FAIL: {failed} of {len(rows)} disagree with finite differences (rtol={rtol:g}){at_kinks}",
            file=out,
        )
        return EXIT_FAIL
    noun = "partial derivative agrees" if len(rows) == 1 else "partial derivatives agree"
    print(f"ok: {len(rows)} {noun} with finite differences (rtol={rtol:g})", file=out)
    return EXIT_OK


def _kink_note(row: Row, fname: str, rtol: float) -> str:
    assert row.sides is not None
    left, right = (_format_number(side) for side in row.sides)
    if _error(row.g, row.sides[0]) <= rtol:
        which = "the derivative from the left (its convention at this kink)"
    elif _error(row.g, row.sides[1]) <= rtol:
        which = "the derivative from the right (its convention at this kink)"
    else:
        which = "neither one-sided derivative"
    return textwrap.fill(
        f"note: {row.label} = {_format_number(row.point)} is a kink of `{fname}`: its derivative is "
        f"{left} from the left and {right} from the right. Central differences average the two "
        f"sides ({_format_number(row.fd)}); symgrad gives {_format_number(row.g)}, {which}. "
        "Finite differences cannot check a derivative at a kink: check a point off it.",
        100,
        subsequent_indent="  ",
    )


def _uncertain_note(row: Row, rtol: float) -> str:
    return textwrap.fill(
        f"note: {row.label}: the finite differences' own error estimate ({row.fd_uncertain:.1e}) "
        f"exceeds rtol={rtol:g}, so they cannot decide this row: try another --step or point.",
        100,
        subsequent_indent="  ",
    )


def _print_table(rows: Sequence[Row], out: IO[str]) -> None:
    header = ("parameter", "symgrad", "finite diff.", "fd error", "rel. error", "")
    cells = [
        (
            row.label,
            _format_number(row.g),
            _format_number(row.fd),
            f"{row.fd_uncertain:.1e}" if math.isfinite(row.fd_uncertain) else "-",
            f"{row.error:.1e}",
            "ok" if row.ok else "FAIL (kink)" if row.sides else "FAIL",
        )
        for row in rows
    ]
    widths = [max(len(row[i]) for row in (header, *cells)) for i in range(len(header))]
    for row in (header, *cells):
        text = "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) if i < 5 else cell
            for i, (cell, w) in enumerate(zip(row, widths))
        )
        print(text.rstrip(), file=out)


# --- plot ------------------------------------------------------------------------------------------


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise CliError(PLOT_HINT, EXIT_USAGE) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cmd_plot(args: argparse.Namespace, out: IO[str]) -> int:
    """`symgrad plot`: the function and its derivative over a range, as an image."""
    plt = _pyplot()
    low, high = _range(args.range)
    if args.points < 2:
        raise CliError("--points: at least 2", EXIT_USAGE)
    setup = _setup(args)
    if setup.wrt is not None and len(setup.wrt) != 1:
        raise CliError("plot draws the derivative with respect to one parameter: pass --wrt x", EXIT_USAGE)
    compiled = setup.grad()
    (name,) = compiled.wrt  # one --wrt, or the default: the first parameter
    if name in setup.at:
        raise CliError(f"`{name}` is plotted over --range: do not also give it in --at", EXIT_USAGE)
    from .api import value_and_grad

    both = value_and_grad(setup.fn, wrt=name, static=tuple(setup.static))
    values = setup.values(compiled, skip=(name,))
    xs: Array = np.linspace(low, high, args.points, dtype=np.float64)
    ys, dys = _evaluate(both, values, name, xs)
    shown = {  # every other parameter's value, defaults included, in signature order
        n: values.get(n, p.default) for n, p in setup.signature.parameters.items() if n != name
    }
    _draw(plt, setup.fn.__name__, name, shown, xs, ys, dys, args.output)
    print(f"wrote {args.output}", file=out)
    return EXIT_OK


def _evaluate(both: Compiled, values: dict[str, Any], name: str, xs: Array) -> tuple[Array, Array]:
    """f and df/dx on the grid: in one vectorised call when the function is elementwise,
    else point by point (functions that reduce over their argument)."""
    value, derivative = call(both, {**values, name: xs})
    if isinstance(value, tuple):
        raise CliError(f"plot draws functions with one output; `{both.fn.__name__}` returns {len(value)}")
    if np.shape(value) == xs.shape and np.shape(derivative) == xs.shape:
        return np.asarray(value, dtype=np.float64), np.asarray(derivative, dtype=np.float64)
    pairs = [call(both, {**values, name: float(x)}) for x in xs]
    if any(np.ndim(v) or np.ndim(d) for v, d in pairs):
        raise CliError(
            f"plot draws scalar functions; `{both.fn.__name__}` returns an array for these arguments"
        )
    return np.array([p[0] for p in pairs], dtype=np.float64), np.array(
        [p[1] for p in pairs], dtype=np.float64
    )


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}" if value.size > 4 else np.array2string(value, separator=",")
    return repr(value)


def _draw(
    plt: Any,
    fname: str,
    name: str,
    values: dict[str, Any],
    xs: Array,
    ys: Array,
    dys: Array,
    output: str,
) -> None:
    fixed = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
    title = f"{fname}({name}{', ' + fixed if fixed else ''})"
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7.0, 5.5), constrained_layout=True)
    top.plot(xs, ys, color="C0")
    top.set_ylabel(f"{fname}")
    top.set_title(title)
    bottom.plot(xs, dys, color="C1")
    bottom.set_ylabel(f"\u2202{fname} / \u2202{name}")
    bottom.set_xlabel(name)
    for axes in (top, bottom):
        axes.grid(True, alpha=0.3)
        axes.axhline(0.0, color="0.5", linewidth=0.6)
    try:
        fig.savefig(output, dpi=100)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


# --- the parser and main -----------------------------------------------------------------------------

DESCRIPTION = """\
Differentiate Python functions from the command line. FUNCTION is FILE.py:NAME; the file is
imported with its directory on sys.path. Run without a command for a demo."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `symgrad` command (one sub-parser per command)."""
    parser = argparse.ArgumentParser(prog="symgrad", description=DESCRIPTION)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"symgrad {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("target", metavar="FILE.py:FUNC", help="the function to differentiate")
        sub.add_argument(
            "--wrt",
            metavar="NAMES",
            help="parameters to differentiate with respect to, comma-separated names or positions "
            "(default: the first parameter, as symgrad.grad's)",
        )
        sub.add_argument(
            "--static",
            metavar="NAME=VALUE,...",
            action="append",
            help="parameters to specialise on (loop bounds, flags), with their values as Python "
            "literals, separated by commas without spaces, e.g. --static n=3,flag=True",
        )

    def at(sub: argparse.ArgumentParser, what: str) -> None:
        sub.add_argument(
            "--at",
            metavar="NAME=VALUE,...",
            action="append",
            help=f"{what}, as Python literals separated by commas without spaces (or quoted); "
            "a list is an array, e.g. --at x=1.0,y=[1.0,2.0]",
        )

    def shape(sub: argparse.ArgumentParser, what: str) -> None:
        sub.add_argument(
            "--shape",
            metavar="NAME=SHAPE,...",
            action="append",
            help=f"argument shapes, for functions with array operations ({what}), e.g. --shape x=3",
        )

    show = commands.add_parser(
        "show",
        help="print the generated gradient source, its LaTeX, or the SSA graph",
        description="Print the gradient symgrad generates for a function: the NumPy source "
        "(default), the partial derivatives as LaTeX (one line per parameter), or the SSA graph.",
    )
    common(show)
    show.add_argument("--format", choices=("source", "latex", "graph"), default="source")
    show.add_argument(
        "--simplify", action="store_true", help="with --format latex: sympy.simplify each partial"
    )
    show.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="highlight the source (auto: on terminals)",
    )
    shape(show, "compiled per shape")
    at(show, "argument values to compile for (instead of --shape)")
    show.set_defaults(handler=cmd_show)

    check = commands.add_parser(
        "check",
        help="compare the gradient with finite differences at a point",
        description="Compare symgrad's gradient with central finite differences of the original "
        "function (float64) at a point. Prints one row per partial derivative (per element for "
        "arrays) and exits with status 1 if any disagree. The error is |symgrad - fd| / max(1, |fd|): "
        "relative where |fd| >= 1, absolute below; 'fd error' is the finite differences' own error "
        "estimate on the same scale.",
    )
    common(check)
    at(check, "the point: every parameter without a default needs a value")
    check.add_argument("--rtol", type=float, default=1e-6, help="largest error accepted (default 1e-6)")
    check.add_argument(
        "--method",
        choices=("richardson", "scipy", "ridders", "central"),
        default="richardson",
        help="central differences extrapolated over halved steps, with an error estimate (the "
        "default: scipy.differentiate.derivative where SciPy >= 1.15 is installed, else Ridders' "
        "method; 'scipy' or 'ridders' to choose), or one plain central difference ('central')",
    )
    check.add_argument(
        "--step",
        type=float,
        default=None,
        help="step relative to max(1, |x|): the first of the halved steps when extrapolating "
        "(default: max(0.1 |x|, 1e-3)), the only one with --method central (default 6e-6)",
    )
    check.set_defaults(handler=cmd_check)

    plot = commands.add_parser(
        "plot",
        help="draw the function and its derivative over a range (needs matplotlib)",
        description="Draw the function and its derivative with respect to one parameter over a range, "
        "the other parameters fixed by --at, into an image file (matplotlib, Agg backend; "
        "pip install 'symgrad[plot]').",
    )
    common(plot)
    at(plot, "values of the other parameters")
    plot.add_argument("--range", required=True, metavar="LOW:HIGH", help="the interval, e.g. --range -8:8")
    plot.add_argument("--points", type=int, default=400, help="number of points (default 400)")
    plot.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="image file to write (.png, .svg, .pdf)"
    )
    plot.set_defaults(handler=cmd_plot)

    export = commands.add_parser(
        "export",
        help="write the derivative as a standalone module (Python needing only NumPy or math, or C)",
        description="Write the derivative as a module that needs no symgrad: Python that imports only "
        "NumPy (math for functions of floats), or with --lang c a C99 file, its header and a test "
        "harness (functions of floats, their loops kept as loops). Array programs are exported for the shapes --shape gives.",
    )
    common(export)
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="file to write (FILE.py; FILE.c, FILE.h and FILE_test.c "
        "with --lang c); default: print the Python module",
    )
    export.add_argument("--lang", choices=("python", "c"), default="python", help="python (default) or c")
    export.add_argument(
        "--kind",
        choices=("value_and_grad", "grad"),
        default="value_and_grad",
        help="what the exported function returns (default value_and_grad: the value and the gradient)",
    )
    export.add_argument("--name", metavar="NAME", help="the exported function's name (default KIND_FUNC)")
    export.add_argument(
        "--loops",
        choices=("auto", "keep", "unroll"),
        help="how for loops become code, as grad's loops= (default auto)",
    )
    shape(export, "built into the code")
    at(export, "with --lang c: the values the test harness uses when run without arguments")
    export.set_defaults(handler=cmd_export)

    demo = commands.add_parser(
        "demo",
        help="the demo (what `python -m symgrad` runs without arguments)",
        description="Decorate a few example functions and print their derivative source and values.",
    )
    demo.set_defaults(handler=None)
    return parser


ASSIGNMENT_OPTIONS = ("--at", "--static", "--shape")


def _spaced_values(items: Sequence[str], extra: Sequence[str]) -> str | None:
    """`--at w=0.5 b=1`: the words after an option's value that argparse could not place,
    with the one-argument form to write instead; None if the extra words are something else."""
    left = list(extra)
    for i, token in enumerate(items):
        option, eq, value = token.partition("=")
        if option not in ASSIGNMENT_OPTIONS or (not eq and i + 1 >= len(items)):
            continue
        start = i + 1 if eq else i + 2
        value = value if eq else items[i + 1]
        pieces = []
        for word in items[start:]:
            if word not in left or word.startswith("-"):
                break
            pieces.append(word)
            left.remove(word)
        if pieces:
            return _one_argument(option, [value, *pieces])
    return None


def _one_argument(option: str, words: Sequence[str]) -> str:
    message = f"{option} takes one argument: NAME=VALUE pairs separated by commas, without spaces"
    if all(re.match(r"[A-Za-z_]\w*=", w) for w in words[1:]):
        return f"{message}: write {option} {','.join(w.rstrip(',') for w in words)}"
    return f"{message}, or quoted: write {option} {shlex.quote(' '.join(words))}"


def format_error(exc: SymgradError) -> str:
    """`file:line:col: error: message`, then the source line, its caret and the hint."""
    text = str(exc)
    if exc.filename is not None and exc.lineno is not None:
        where = f"{exc.filename}:{exc.lineno}:{exc.col}: "
        if text.startswith(where):
            return f"{where}error: {text[len(where) :]}"
    return f"symgrad: error: {text}"


def main(
    argv: Sequence[str] | None = None,
    *,
    demo: Callable[[], int] | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Run the `symgrad` command line; returns the exit status (0 ok, 1 failure, 2 usage).

    >>> import io
    >>> main(["show", "no/such/file.py:f"], err=io.StringIO())
    2
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = build_parser()
    items = _join_negative_values(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(items)
    if extra:
        spaced = _spaced_values(items, extra)
        if spaced is None:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")  # exits with status 2
        print(f"symgrad {args.command}: error: {spaced}", file=err)
        return EXIT_USAGE
    if args.command is None or args.handler is None:
        if demo is None:
            from .__main__ import demo as default_demo

            return default_demo()
        return demo()
    try:
        status: int = args.handler(args, out)
    except SymgradError as exc:
        print(format_error(exc), file=err)
        if isinstance(exc, DataDependentLoopError):
            loaded: Setup | None = getattr(args, "loaded", None)
            print("  " + (loaded.loop_hint() if loaded else Setup.GENERIC_LOOP_HINT), file=err)
        return EXIT_USAGE if isinstance(exc, WrtError) else EXIT_FAIL
    except CliError as exc:
        message = str(exc)
        if ": error: " not in message:
            message = f"symgrad {args.command}: error: {message}"
        print(message, file=err)
        return exc.code
    return status
