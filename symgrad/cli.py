"""The `symgrad` command line: show, check and plot the derivatives of functions in .py files."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from .arraytrace import ShapesNeeded
from .compiled import Compiled
from .errors import DataDependentLoopError, SymgradError

__all__ = ["CliError", "build_parser", "finite_difference", "load_function", "main", "parse_assignments"]

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
        where = f"{exc.filename}:{exc.lineno}:{exc.offset}: " if exc.lineno else f"{path_text}: "
        raise CliError(f"{where}error: {exc.msg}") from None
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


# --- binding values to parameters ------------------------------------------------------------------


@dataclass
class Setup:
    """A loaded function, what to differentiate, and the values given on the command line."""

    fn: Callable[..., Any]
    wrt: tuple[str | int, ...] | None
    static: dict[str, Any]
    at: dict[str, Any]

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

    def grad(self, wrt: Any = None) -> Compiled:
        from .api import grad

        compiled: Compiled = grad(self.fn, wrt=self.wrt if wrt is None else wrt, static=tuple(self.static))
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
                raise CliError(
                    f"`{self.fn.__name__}` needs a value for `{name}`: pass --at {name}=...", EXIT_USAGE
                )
        return values


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
        raise CliError(
            f"`{setup.fn.__name__}` uses array operations, so symgrad compiles it for the shapes of its "
            "arguments: pass them, e.g. --shape x=3 (or --shape x=(2,3)), or values with --at x=[1.0,2.0,3.0]"
        ) from None
    return compiled


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


# --- check -----------------------------------------------------------------------------------------


def finite_difference(
    f: Callable[[float], float], x: float, *, step: float | None = None, richardson: bool = True
) -> float:
    """The derivative of `f` at `x` by central differences, by default Richardson-extrapolated.

    Richardson (Ridders' method): central differences for steps halved 16 times from
    `max(0.1 |x|, 1e-3)` (or `step * max(1, |x|)`), extrapolated to step 0 in a Neville
    tableau; the estimate whose neighbours in the tableau agree best is returned. Steps where
    `f` is undefined (NaN, inf, ValueError: `log` near 0) are skipped. Plain central
    differences use one step, `step * max(1, |x|)` with `step` 6e-6 (about the cube root of
    the float64 epsilon) by default.

    >>> import math
    >>> round(finite_difference(math.sin, 0.0), 12)
    1.0
    >>> round(finite_difference(math.log, 1e-3), 6)
    1000.0
    """

    def central(h: float) -> float:
        try:
            return (f(x + h) - f(x - h)) / (2 * h)
        except (ArithmeticError, ValueError):  # math.log(-1), 1 / 0: outside the domain
            return math.nan

    if not richardson:
        return central((6e-6 if step is None else step) * max(1.0, abs(x)))
    h = max(0.1 * abs(x), 1e-3) if step is None else step * max(1.0, abs(x))
    best, error, last = math.nan, math.inf, math.nan
    previous: list[float] = []  # the last row of the tableau: extrapolations of a larger step
    for _ in range(16):
        estimate = central(h)
        h /= 2
        if not math.isfinite(estimate):
            previous = []  # start the tableau again below the trouble
            continue
        last = estimate
        row = [estimate]
        factor = 4.0
        for j, above in enumerate(previous):
            value = (row[j] * factor - above) / (factor - 1)
            factor *= 4.0
            change = max(abs(value - row[j]), abs(value - above))
            row.append(value)
            if change < error:  # strict: on ties the larger step (less rounding) wins
                best, error = value, change
        previous = row
    return best if math.isfinite(best) else last


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

    rows: list[tuple[str, float, float, float, bool]] = []
    for name, gradient in zip(compiled.wrt, gradients):
        value = values[name]
        array = np.asarray(value, dtype=np.float64)
        gradient = np.broadcast_to(np.asarray(gradient, dtype=np.float64), array.shape)
        for index in np.ndindex(*array.shape):
            along = _along(total, name, array, index)
            try:
                with np.errstate(all="ignore"):
                    fd = finite_difference(
                        along, float(array[index]), step=args.step, richardson=args.method == "richardson"
                    )
            except Exception as exc:
                raise CliError(
                    f"evaluating `{setup.fn.__name__}` for the finite differences failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
            g = float(gradient[index])
            error = _error(g, fd)
            label = name if not array.shape else f"{name}[{', '.join(map(str, index))}]"
            rows.append((label, g, fd, error, error <= args.rtol))
    _print_table(rows, out)
    failed = sum(not ok for *_, ok in rows)
    if failed:
        print(
            f"FAIL: {failed} of {len(rows)} disagree with finite differences (rtol={args.rtol:g})", file=out
        )
        return EXIT_FAIL
    noun = "partial derivative agrees" if len(rows) == 1 else "partial derivatives agree"
    print(f"ok: {len(rows)} {noun} with finite differences (rtol={args.rtol:g})", file=out)
    return EXIT_OK


def _print_table(rows: Sequence[tuple[str, float, float, float, bool]], out: IO[str]) -> None:
    header = ("parameter", "symgrad", "finite diff.", "rel. error", "")
    cells = [
        (label, _format_number(g), _format_number(fd), f"{error:.1e}", "ok" if ok else "FAIL")
        for label, g, fd, error, ok in rows
    ]
    widths = [max(len(row[i]) for row in (header, *cells)) for i in range(len(header))]
    for row in (header, *cells):
        text = "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) if i < 4 else cell
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
    if len(compiled.wrt) != 1:
        raise CliError(
            f"`{setup.fn.__name__}` has parameters {', '.join(compiled.wrt)}: choose one with --wrt "
            "and fix the others with --at",
            EXIT_USAGE,
        )
    (name,) = compiled.wrt
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
            "(default: every parameter without a default value)",
        )
        sub.add_argument(
            "--static",
            metavar="NAME=VALUE,...",
            action="append",
            help="parameters to specialise on (loop bounds, flags), with their values as Python "
            "literals, e.g. --static n=3,flag=True",
        )

    def at(sub: argparse.ArgumentParser, what: str) -> None:
        sub.add_argument(
            "--at",
            metavar="NAME=VALUE,...",
            action="append",
            help=f"{what}, as Python literals; a list is an array, e.g. --at x=1.0,y=[1.0,2.0]",
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
    show.add_argument(
        "--shape",
        metavar="NAME=SHAPE,...",
        action="append",
        help="argument shapes, for functions with array operations (compiled per shape), e.g. --shape x=3",
    )
    at(show, "argument values to compile for (instead of --shape)")
    show.set_defaults(handler=cmd_show)

    check = commands.add_parser(
        "check",
        help="compare the gradient with finite differences at a point",
        description="Compare symgrad's gradient with central finite differences of the original "
        "function (float64) at a point. Prints one row per partial derivative (per element for "
        "arrays) and exits with status 1 if any disagree. The error is |symgrad - fd| / max(1, |fd|): "
        "relative where |fd| >= 1, absolute below.",
    )
    common(check)
    at(check, "the point: every parameter without a default needs a value")
    check.add_argument("--rtol", type=float, default=1e-6, help="largest error accepted (default 1e-6)")
    check.add_argument(
        "--method",
        choices=("richardson", "central"),
        default="richardson",
        help="central differences Richardson-extrapolated over halved steps (Ridders' method, the "
        "default), or plain central differences",
    )
    check.add_argument(
        "--step",
        type=float,
        default=None,
        help="step relative to max(1, |x|): the first of the halved steps with Richardson "
        "(default: max(0.1 |x|, 1e-3)), the only one without (default 6e-6)",
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

    demo = commands.add_parser(
        "demo",
        help="the demo (what `python -m symgrad` runs without arguments)",
        description="Decorate a few example functions and print their derivative source and values.",
    )
    demo.set_defaults(handler=None)
    return parser


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
    args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
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
            print("  on the command line: --static NAME=VALUE names the loop bound and its value", file=err)
        return EXIT_FAIL
    except CliError as exc:
        message = str(exc)
        if ": error: " not in message:
            message = f"symgrad {args.command}: error: {message}"
        print(message, file=err)
        return exc.code
    return status
