"""Property-based tests: random programs of the supported language against independent oracles.

`fuzz_programs.py` generates whole modules (straight-line arithmetic over every rule of
`symgrad.RULES`, if/elif/else and conditional expressions, static and nested loops, long loops
symgrad keeps as loops, `while` loops whose trip count the point decides, `break` and
`continue` under traced conditions, inlined helpers and closures, `no_grad`/`stop_gradient`,
tuple outputs, reductions over small arrays). Each one is
written to a file in a temporary directory, imported, and checked at a random point:

1. the gradient (`value_and_grad`) against Richardson-extrapolated central differences of the
   original function, at a point whose branch decisions and kinks are at least
   `fuzz_programs.MARGIN` away and do not change at any finite-difference point;
2. against `sympy.diff` of the program's SymPy twin, evaluated at 40 digits;
3. every parameter on its own: `grad(f, wrt=i)`;
4. on a subset, second order: `grad(grad(f, wrt=i), wrt=j)` against the twin and against
   central differences of the first derivative;
5. the value of `value_and_grad` against the original function (and, for several outputs,
   `jacobian` and the value and pullback of `vjp`);
6. the NumPy flavour (arguments as arrays) against the `math` flavour (floats).

Every run draws new programs from a fresh seed, which the end of the run prints
(`tests/conftest.py`). A failure prints the falsifying program's source, and Hypothesis
stores it in `.hypothesis/` and replays it first on the next run. To replay a whole run,
pass its seed: `python -m pytest tests/test_fuzz.py --hypothesis-seed=N`. `SYMGRAD_FUZZ_SCALE=10` runs ten
times as many programs (e.g. nightly); `SYMGRAD_FUZZ_NO_SHRINK=1` reports the first failing
program as found instead of minimising it (shrinking can take minutes). A program that exposed a bug goes into
`fuzz_programs.REGRESSIONS`, which every run checks.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import itertools
import linecache
import math
import os
import re
import signal
import sys
import threading
import warnings

import numpy as np
import pytest
import sympy
from fuzz_programs import (
    ALIAS_REGRESSIONS,
    ARRAY_VALUES,
    CAPTURE_REGRESSIONS,
    CAPTURED_VALUES,
    CELL_VALUES,
    MARGIN,
    MP,
    PARAM_BOUND,
    PROBE,
    REGRESSIONS,
    RULE_BY_KEY,
    SPECS,
    F,
    Program,
    alias_programs,
    captured_programs,
    dag_diff,
    hazard_programs,
    mixed_programs,
    mp_eval,
    precedence_programs,
    programs,
    run_twin,
)
from helpers import RICHARDSON_H, every_parameter
from hypothesis import HealthCheck, Phase, assume, event, given, note, settings
from hypothesis import strategies as st

import symgrad

try:
    import torch_oracle
except ImportError:  # torch is the `test` extra's oracle; without it those comparisons are skipped
    torch_oracle = None

SCALE = float(os.environ.get("SYMGRAD_FUZZ_SCALE", "1"))

FD_RTOL, FD_ATOL = 1e-6, 1e-7  # against finite differences (atol scaled by max(1, |f|))
EXACT_RTOL, EXACT_ATOL = 1e-10, 1e-12  # against the SymPy twin at 40 digits (atol scaled too)
SAME_RTOL = 1e-9  # two symgrad programs for the same quantity (wrt subsets, array flavour): rounding differs
TORCH_RTOL = 1e-8  # against PyTorch float64 on the same program (atol scaled by max(1, |f|))
TORCH_ATOL = 1e-9
VALUE_LIMIT = 1e6


def fuzz_settings(n: int) -> settings:
    phases = list(Phase)
    if os.environ.get("SYMGRAD_FUZZ_NO_SHRINK"):
        phases.remove(Phase.shrink)
    return settings(
        max_examples=max(1, int(n * SCALE)),
        deadline=None,
        print_blob=True,
        phases=phases,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# --- loading generated modules ------------------------------------------------------------------


class Loader:
    """Writes each program to its own file and imports it under a unique name; the module
    leaves sys.modules (and linecache) after use, the file stays for a post-mortem."""

    def __init__(self, directory) -> None:
        self.directory = directory
        self.counter = itertools.count()
        self.loaded = 0

    @contextlib.contextmanager
    def load(self, text: str):
        name = f"_symgrad_fuzz_{os.getpid()}_{next(self.counter)}"
        path = self.directory / f"{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        self.loaded += 1
        try:
            spec.loader.exec_module(module)
            yield module
        finally:
            sys.modules.pop(name, None)
            linecache.cache.pop(str(path), None)


@pytest.fixture(scope="module")
def loader(tmp_path_factory):
    before = set(sys.modules)
    result = Loader(tmp_path_factory.mktemp("fuzz_programs"))
    yield result
    leaked = [m for m in set(sys.modules) - before if m.startswith("_symgrad_fuzz_")]
    assert not leaked, leaked


# --- points -------------------------------------------------------------------------------------


def draw_point(data, prog: Program) -> dict[str, object]:
    point: dict[str, object] = {}
    value = st.floats(-PARAM_BOUND, PARAM_BOUND, allow_nan=False, allow_infinity=False)
    for p, shape in prog.shapes.items():
        if shape == ():
            point[p] = data.draw(value, label=p)
        else:
            n = int(np.prod(shape))
            point[p] = np.array(data.draw(st.lists(value, min_size=n, max_size=n), label=p)).reshape(shape)
    return point


def copies(args) -> list[object]:
    """Copies of the arrays among args: a program may write into its arguments (`x += ...`)."""
    return [np.array(a) if isinstance(a, np.ndarray) else a for a in args]


def pure(fn):
    """fn run on copies of its arguments, so that calling it changes nothing (and silently:
    NumPy warns of the NaN in a branch np.where does not take)."""
    return lambda *a: run_original(fn, a)


def run_original(fn, args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*copies(args))


FD_STEPS = (1.0, 0.5, 0.25)  # multiples of h = RICHARDSON_H * max(1, |x|)


def _moved(args: list[object], i: int, index, delta: float) -> list[object]:
    if index is None:
        return [*args[:i], args[i] + delta, *args[i + 1 :]]
    moved = np.array(args[i], dtype=np.float64)
    moved[index] += delta
    return [*args[:i], moved, *args[i + 1 :]]


def _coordinates(args: list[object], i: int):
    a = args[i]
    if isinstance(a, np.ndarray):
        for index in np.ndindex(a.shape):
            yield index, RICHARDSON_H * max(1.0, abs(float(a[index])))
    else:
        yield None, RICHARDSON_H * max(1.0, abs(a))


def fd_points(args: list[object]):
    """Every point `finite_difference` evaluates."""
    for i in range(len(args)):
        for index, h in _coordinates(args, i):
            for k in FD_STEPS:
                for sign in (1.0, -1.0):
                    yield _moved(args, i, index, sign * k * h)


def finite_difference(fn, args: list[object], i: int):
    """d sum(fn) / d args[i] by central differences with Richardson extrapolation, at steps h
    and h/2; returns (estimate, error estimate), shaped like args[i]."""

    def at(point):
        return float(np.sum(np.asarray(fn(*point), dtype=np.float64)))

    estimates, errors = [], []
    for index, h in _coordinates(args, i):
        d = {
            k: (at(_moved(args, i, index, k * h)) - at(_moved(args, i, index, -k * h))) / (2 * k * h)
            for k in FD_STEPS
        }
        coarse = (4 * d[0.5] - d[1.0]) / 3
        fine = (4 * d[0.25] - d[0.5]) / 3
        estimates.append(fine)
        errors.append(abs(fine - coarse))
    shape = np.shape(args[i])
    return np.reshape(estimates, shape), np.reshape(errors, shape)


def expect_fd(
    what: str, got, fn, args: list[object], i: int, scale: float, rtol: float = 0.0, atol: float = 0.0
) -> None:
    """symgrad's derivative against finite differences: rtol 1e-6, atol 1e-7 * max(1, |f|),
    plus the difference between the two Richardson estimates (truncation error)."""
    estimate, error = finite_difference(fn, args, i)
    rtol, atol = rtol or FD_RTOL, atol or FD_ATOL
    assert np.all(np.isfinite(np.asarray(got, dtype=np.float64))), f"{what}: non-finite {got!r}"
    ok = (
        np.abs(np.asarray(got, dtype=np.float64) - estimate)
        <= atol * scale + rtol * np.abs(estimate) + 2 * error
    )
    assert np.shape(got) == np.shape(estimate) and np.all(ok), (
        f"{what}: symgrad {got!r} != finite differences {estimate!r} (+- {error!r})"
    )


class Probed:
    """The program's decisions at the base point, and a reference function for finite
    differences that replays stop_gradient values (so that they are constants, as for symgrad)."""

    def __init__(self, module, args: list[object]) -> None:
        self.probe_f = module._probe_f
        PROBE.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.value = self.probe_f(*copies(args))
        self.decisions = PROBE.decisions
        self.margin = PROBE.margin
        self.stops = PROBE.stops

    def __call__(self, *args: object) -> object:
        PROBE.start(self.stops)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.probe_f(*copies(args))

    def same_decisions(self, args: list[object]) -> bool:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self(*args)
        return PROBE.decisions == self.decisions


def settle(module, prog: Program, args: list[object]) -> Probed:
    """`assume` that the point is valid: away from branch boundaries and kinks, the same
    decisions at every finite-difference point, and moderate finite values."""
    probed = Probed(module, args)
    assume(probed.margin > MARGIN)
    values = np.asarray(probed.value, dtype=np.float64)
    assume(bool(np.all(np.isfinite(values))) and float(np.max(np.abs(values))) < VALUE_LIMIT)
    for moved in fd_points(args):
        assume(probed.same_decisions(moved))
    return probed


# --- comparisons ---------------------------------------------------------------------------------


def close(got, expected, rtol: float, atol: float) -> bool:
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return bool(
        got.shape == expected.shape and np.all(np.abs(got - expected) <= atol + rtol * np.abs(expected))
    )


def expect_value(what: str, got, expected, scale: float) -> None:
    """symgrad's value against the original function's: the same numbers, the same shape, and
    a scalar (not an array) where the original gives a scalar."""
    if isinstance(expected, Vectorized):  # np.vectorize ran the original: numbers only
        got, expected = np.broadcast_to(got, expected.shape), np.asarray(expected)
    assert np.shape(got) == np.shape(expected), (
        f"{what}: shape {np.shape(got)} != the original's {np.shape(expected)} ({got!r} vs {expected!r})"
    )
    if not isinstance(expected, np.ndarray):
        assert not isinstance(got, np.ndarray), f"{what}: the array {got!r}; the original gives {expected!r}"
    expect_close(what, got, expected, 1e-9, 1e-9 * scale)


def expect_close(what: str, got, expected, rtol: float, atol: float) -> None:
    assert np.all(np.isfinite(np.asarray(got, dtype=np.float64))), f"{what}: non-finite {got!r}"
    assert close(got, expected, rtol, atol), f"{what}: symgrad {got!r} != expected {expected!r}"


def scale_of(value) -> float:
    return max(1.0, float(np.max(np.abs(np.asarray(value, dtype=np.float64)))))


def as_tuple(grads, n: int) -> tuple:
    if n == 1 and not isinstance(grads, tuple):
        return (grads,)
    assert isinstance(grads, tuple) and len(grads) == n, f"expected {n} gradients, got {grads!r}"
    return grads


def is_py_float(x) -> bool:
    return type(x) is float


# --- the SymPy twin --------------------------------------------------------------------------


class Exact:
    """Derivatives of the twin by `sympy.diff`, evaluated at the point with 40 digits."""

    def __init__(self, prog: Program, point: dict[str, object]) -> None:
        self.outputs, self.syms = run_twin(prog, point)
        self.point = {}
        for p, shape in prog.shapes.items():
            if shape == ():
                self.point[self.syms[p]] = MP.mpf(float(point[p]))
            else:
                for s, x in zip(self.syms[p].ravel(), np.ravel(point[p])):
                    self.point[s] = MP.mpf(float(x))
        self.memo: dict = {}
        # programs with while loops, jumps, long or nested loops: sympy.diff would take time
        # exponential in their iterations; dag_diff takes SymPy's local derivatives over the DAG
        self.dag = "loop_forms" in prog.meta
        self.dag_memos: dict = {}

    def diff(self, expr, sym):
        if self.dag:
            return dag_diff(expr, sym, self.dag_memos.setdefault(sym, {}))
        return sympy.diff(expr, sym)

    def values(self) -> list[float]:
        return [float(o.n) for o in self.outputs]

    def evaluate(self, expr) -> float:
        value = mp_eval(expr, self.point, self.memo)
        assert MP.isfinite(value) and MP.im(value) == 0, f"twin derivative {expr} = {value}"
        return float(MP.re(value))

    def grad(self, param: str, output: int = 0, of=None):
        """d output / d param (shaped like param); `of` overrides the differentiated expression."""
        expr = self.outputs[output].s if of is None else of
        syms = self.syms[param]
        if isinstance(syms, np.ndarray):
            return np.array([self.evaluate(self.diff(expr, s)) for s in syms.ravel()]).reshape(syms.shape)
        return self.evaluate(self.diff(expr, syms))

    def second(self, i: str, j: str):
        """d/d param j of the sum of d f / d param i (grad of grad, summed as symgrad does)."""
        syms_i = self.syms[i]
        first = (
            sum(self.diff(self.outputs[0].s, s) for s in np.ravel(syms_i))
            if isinstance(syms_i, np.ndarray)
            else self.diff(self.outputs[0].s, syms_i)
        )
        return self.grad(j, of=sympy.sympify(first))


# --- the checks ----------------------------------------------------------------------------------

SYMGRAD_LIMIT = 10.0  # seconds for one symgrad transformation and call (typically < 0.5 s)
TWIN_LIMIT = 10.0  # seconds for the oracle; a slower twin rejects the example
LOOPS_TWIN_LIMIT = 3.0
STATS = {"programs": 0}


class TooSlowError(AssertionError):
    pass


class TwinTooSlowError(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float, error: type[BaseException], message: str):
    """Raise `error` if the block runs longer than `seconds` (SIGALRM: main thread, POSIX);
    an exponential blow-up then fails in seconds instead of stalling the run."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise error(message)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_symgrad(what: str, transform, *args):
    """Call a symgrad object (tracing, differentiation and code generation happen on the
    first call), failing if it takes more than SYMGRAD_LIMIT seconds."""
    with time_limit(SYMGRAD_LIMIT, TooSlowError, f"{what} took more than {SYMGRAD_LIMIT:.0f} s"):
        return transform(*args)


def twin_of(prog: Program, point: dict[str, object]) -> Exact:
    try:
        with time_limit(twin_limit(prog), TwinTooSlowError, "twin"):
            return Exact(prog, point)
    except TwinTooSlowError:
        event("rejected: the SymPy twin is too slow")
        assume(False)
        raise


def twin_limit(prog: Program) -> float:
    """TWIN_LIMIT, or LOOPS_TWIN_LIMIT for a program with while loops, jumps, long or nested
    loops (dag_diff: typically 0.01-2 s; the rare slower ones, such as products of 64
    factors, are rejected sooner)."""
    return LOOPS_TWIN_LIMIT if "loop_forms" in prog.meta else TWIN_LIMIT


def exact_of(call, prog: Program | None = None):
    try:
        with time_limit(TWIN_LIMIT if prog is None else twin_limit(prog), TwinTooSlowError, "twin"):
            return call()
    except TwinTooSlowError:
        event("rejected: the SymPy twin is too slow")
        assume(False)
        raise


# --- the PyTorch oracle ---------------------------------------------------------------------------


def torch_f(source: str):
    """The program's `f` run by PyTorch (tests/torch_oracle.py), or None without torch."""
    return None if torch_oracle is None else torch_oracle.load(source)["f"]


def expect_torch(what: str, got, expected, scale: float) -> None:
    assert np.all(np.isfinite(np.asarray(got, dtype=np.float64))), f"{what}: non-finite {got!r}"
    assert close(got, expected, TORCH_RTOL, TORCH_ATOL * scale), (
        f"{what}: symgrad {got!r} != PyTorch {expected!r}"
    )


def expect_second_torch(what: str, got, tf, args, i: int, j: int, scale: float) -> None:
    expected = torch_oracle.second(tf, args, i, j)
    if expected is not None:
        expect_torch(f"{what} vs torch", got, expected, scale)


def torch_value_and_grads(tf, args: list[object], value, scale: float, cot=None):
    """PyTorch's value (checked against the original's: a disagreement is a test bug) and
    gradients of the same program."""
    t_value, t_grads = torch_oracle.value_and_grad(tf, args, cot)
    assert close(t_value, value, 1e-9, 1e-9 * scale), (
        f"the torch oracle's value {t_value!r} != the original's {value!r} (a test bug)"
    )
    return t_grads


LEAKED_NAME = re.compile(r"`(_break|_skip)\d+`|\x00item:")
RETURNED_ALIAS_REFUSAL = re.compile(
    r"this call changes an array in place that an earlier call in the same statement"
)
# a value, or the condition of a loop's `break`/`continue`, of one shape on one path and
# another on another ("has shape () on one path and (2,) on another", "decided by a value of
# shape () on one path and (2,) on another")
PATH_SHAPE_REFUSAL = re.compile(r"shape \S+ on one path and \S+ on another")
TRIP_COUNT_REFUSAL = re.compile(
    r"condition is an array of shape|this `while` loop's condition depends on traced values"
)


def count_loops(prog: Program, compiled) -> None:
    """STATS: the loop forms a checked program holds, and whether symgrad kept a loop of it."""
    for form in prog.meta.get("loop_forms", ()):
        STATS[form] = STATS.get(form, 0) + 1
    if KEPT.search(compiled.source):
        STATS["kept by default"] = STATS.get("kept by default", 0) + 1


KEPT = re.compile(r"^\s+(for|while) ", re.MULTILINE)


def _numpy_run(f, args):
    """NumPy's run of f on copies of args (warnings off): the copies after it, and the
    TypeError or ValueError it raised (Python's `if` on arrays), or None."""
    moved = copies(args)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f(*moved)
    except (TypeError, ValueError) as e:
        return moved, e
    return moved, None


def writes_into_arguments(f, args) -> bool:
    """Whether NumPy's run of f writes into its array arguments (`t = x; t *= v`): then it
    runs another function on arrays than on floats, however close the two are at the point
    (`x * cos(x)` for `x` near 0: values and slopes agree to 1e-6)."""
    moved, error = _numpy_run(f, args)
    if error is not None:  # Python's `if` on arrays: np.vectorize runs it on floats
        return False
    return not all(np.array_equal(a, b) for a, b in zip(moved, args))


def branches_on_arrays(f, args) -> bool:
    """Whether NumPy cannot run f on these arrays because a Python `if` (or `and`, `while`)
    asks for the truth of an array of several elements."""
    _, error = _numpy_run(f, args)
    return isinstance(error, ValueError) and "truth value of an array" in str(error)


# A program whose value moves by more than this (relative to its scale) when every argument
# moves by INPUT_NUDGE (relative) amplifies float64 rounding past the 1e-9 at which Python's
# value, the 40-digit twin's and symgrad's are compared: at --hypothesis-seed=31 a 70-step
# loop `x = 0.5*x + tanh(h1(1.8*cos(x)))` whose helper reads x under no_grad is chaotic, and
# Python's value is 1.7e-7 from the twin's, each step agreeing to an ulp.
INPUT_NUDGE = 1e-12
NUDGED_VALUE_LIMIT = 1e-7


def amplifies_rounding(f, args, value: float) -> bool:
    """Whether f's value at `args` is ill-conditioned: measured on Python's own runs with
    every argument nudged both ways, not on any derivative (no_grad hides a value's
    dependence from those)."""
    for sign in (1.0, -1.0):
        nudged = [
            np.asarray(a, dtype=np.float64) * (1.0 + sign * INPUT_NUDGE) + sign * INPUT_NUDGE for a in args
        ]
        nudged = [
            float(n) if np.ndim(a) == 0 and not isinstance(a, np.ndarray) else n for n, a in zip(nudged, args)
        ]
        moved = float(run_original(f, nudged))
        if not abs(moved - value) <= NUDGED_VALUE_LIMIT * scale_of(value):  # nan too
            return True
    return False


def constant_path_broadcast(prog: Program, got, expected) -> bool:
    """A documented limit (README): in a loop kept as a loop, a branch that sets a number
    (`if k > 3: y = 4.0`) gives it the shape of the other paths, as np.where does, where
    NumPy has the number when that branch ran last. Counted (STATS) and tolerated when every
    element is the number NumPy gives, so that the rest is checked."""
    if "loop_forms" not in prog.meta or np.shape(expected) != ():
        return False
    if np.ndim(got) != 1 or not np.all(np.asarray(got) == expected):
        return False
    STATS["a constant path broadcast"] = STATS.get("a constant path broadcast", 0) + 1
    return True


def check_program(loader: Loader, prog: Program, data) -> None:
    """One output, float or array parameters: value_and_grad against the original function,
    the twin and finite differences; each wrt alone; second order on a subset; and, for float
    parameters, the NumPy flavour against the math flavour."""
    note(prog.source)
    point = draw_point(data, prog)
    args = [point[p] for p in prog.params]
    n = len(args)
    floats = all(shape == () for shape in prog.shapes.values())
    with loader.load(prog.text) as module:
        f = module.f
        probed = settle(module, prog, args)
        original_value = run_original(f, args)
        value = float(original_value)
        if "loop_forms" in prog.meta and amplifies_rounding(f, args, value):
            event("rejected: the value amplifies float64 rounding (a chaotic loop)")
            STATS["rejected: chaotic loop"] = STATS.get("rejected: chaotic loop", 0) + 1
            assume(False)
        exact = twin_of(prog, point)
        assert math.isclose(exact.values()[0], value, rel_tol=1e-9, abs_tol=1e-9), (
            "the twin disagrees (a test bug)"
        )
        ref = probed if prog.uses_stop else f
        scale = scale_of(value)
        tf = torch_f(prog.source)
        t_grads = None if tf is None else torch_value_and_grads(tf, args, value, scale)

        vg = symgrad.value_and_grad(f, wrt=every_parameter(f))
        got_value, grads = run_symgrad("value_and_grad(f)", vg, *args)
        grads = as_tuple(grads, n)
        expect_value("value_and_grad value", got_value, original_value, scale)
        if floats:
            assert is_py_float(got_value) and all(map(is_py_float, grads)), (
                f"floats in, not floats out: {got_value!r}, {grads!r}"
            )
        for i, p in enumerate(prog.params):
            assert np.shape(grads[i]) == np.shape(args[i]), (
                f"d/d{p}: shape {np.shape(grads[i])} != {np.shape(args[i])}"
            )
            exact_i = exact_of(lambda p=p: exact.grad(p), prog)
            expect_close(f"d/d{p} vs sympy", grads[i], exact_i, EXACT_RTOL, EXACT_ATOL * scale)
            expect_fd(f"d/d{p} vs finite differences", grads[i], ref, args, i, scale)
            if t_grads is not None:
                expect_torch(f"d/d{p} vs torch", grads[i], t_grads[i], scale)

        # every parameter on its own: by position, by name, by negative position
        singles = []
        for i, p in enumerate(prog.params):
            wrt = data.draw(st.sampled_from([i, p, i - n]), label=f"wrt for {p}")
            g_i = symgrad.grad(f, wrt=wrt)
            got = run_symgrad(f"grad(f, wrt={wrt!r})", g_i, *args)
            if floats:
                assert is_py_float(got), f"grad(f, wrt={wrt!r}) gave {type(got).__name__}"
            expect_close(f"grad(f, wrt={wrt!r})", got, grads[i], SAME_RTOL, SAME_RTOL * scale)
            singles.append(g_i)

        if "for " in prog.source:  # the same program with every for-range loop kept as a loop
            check_kept_loops(f, prog, args, original_value, exact, scale, t_grads, data)
        count_loops(prog, vg)

        # second order on a subset
        if data.draw(st.integers(0, 3), label="second order") == 0:
            i = data.draw(st.integers(0, n - 1), label="i")
            j = data.draw(st.integers(0, n - 1), label="j")
            what = f"grad(grad(f, wrt={i}), wrt={j})"
            twice = symgrad.grad(singles[i], wrt=j)
            got = run_symgrad(what, twice, *args)
            if KEPT.search(twice.source):
                STATS["second order through a kept loop"] = (
                    STATS.get("second order through a kept loop", 0) + 1
                )
            expected = exact_of(lambda: exact.second(prog.params[i], prog.params[j]), prog)
            expect_close(f"{what} vs sympy", got, expected, 1e-9, 1e-11 * scale)
            if tf is not None:
                expect_second_torch(what, got, tf, args, i, j, scale)
            if not prog.uses_stop:  # (finite differences would see through stop_gradient)
                expect_fd(f"{what} vs finite differences", got, singles[i], args, j, scale, 1e-5, 1e-6)

        # the NumPy flavour on arrays of two points agrees with the math flavour on floats
        if floats:
            moved = next(iter(fd_points(args)))
            value2, grads2 = vg(*moved)
            batch = [np.array([a, b]) for a, b in zip(args, moved)]
            try:
                got_values, got_grads = run_symgrad("value_and_grad(f) on arrays", vg, *batch)
            except symgrad.UnsupportedSyntaxError as e:
                # a helper's `a += v` on the array passed in, twice in one expression (`h(x) *
                # h(x)`): NumPy's first result is that array and changes with the second call;
                # or the `a += v` is in a branch of a Python `if` on the array, which NumPy
                # cannot run and symgrad runs as `where` over both branches (found on Python
                # 3.10, whose hypothesis drew another program)
                assert RETURNED_ALIAS_REFUSAL.search(str(e)), e
                assert writes_into_arguments(f, batch) or branches_on_arrays(f, batch), e
                STATS["in place through a returned array refused"] = (
                    STATS.get("in place through a returned array refused", 0) + 1
                )
                STATS["programs"] += 1
                return
            except (symgrad.ShapeError, symgrad.TracingError) as e:
                # a kept loop's trip count is one number: a `while` or `break` condition on
                # arrays is refused at the loop, naming it (the hint: np.vectorize); so is a
                # `while` body that cannot be kept (on arrays, `t = x; x -= v` writes into t)
                assert not LEAKED_NAME.search(str(e)), f"a name symgrad made, in a refusal: {e}"
                if PATH_SHAPE_REFUSAL.search(str(e)) and branches_on_arrays(f, batch):
                    # NumPy cannot run the batch (an `if` on an array) and symgrad, which runs
                    # both branches, refuses a value whose shape differs between them (drawn
                    # by Python 3.10's and 3.13's hypothesis: `t4 = x` on one path, t4 = 1.0
                    # on the others)
                    STATS["branch shapes refused on arrays"] = (
                        STATS.get("branch shapes refused on arrays", 0) + 1
                    )
                    STATS["programs"] += 1
                    return
                assert "loop_forms" in prog.meta, e
                assert TRIP_COUNT_REFUSAL.search(str(e)), e
                STATS["loops refused on arrays"] = STATS.get("loops refused on arrays", 0) + 1
                STATS["programs"] += 1
                return
            numpy_values = original(f, batch)
            if constant_path_broadcast(prog, got_values, numpy_values):
                got_values = float(np.asarray(got_values)[0])
            expect_value("value on arrays vs NumPy", got_values, numpy_values, scale)
            floats_spread = [value, float(run_original(f, moved))]
            differs = writes_into_arguments(f, batch) or not close(
                np.broadcast_to(numpy_values, (2,)), floats_spread, SAME_RTOL, SAME_RTOL * scale
            )
            on_arrays = lambda *a: original(f, list(a))  # noqa: E731 - np.vectorize where needed
            if not differs and not prog.uses_stop:
                # the values can agree at a point where the programs differ (`t1 = y; y /= c;
                # y += arcsin(tanh(t1)); return t1` at y = 0): compare the slopes too
                singles_fd = [finite_difference(on_arrays, batch, i)[0] for i in range(n)]
                differs = not all(
                    close(d, [grads[i], as_tuple(grads2, n)[i]], 1e-5, 1e-5 * scale)
                    for i, d in enumerate(singles_fd)
                )
            if differs:
                # NumPy itself runs this program differently on arrays (`t = x; t += v` writes
                # through to x on an array and rebinds t on a float): the arrays' gradients are
                # checked against finite differences of the original on arrays instead (not
                # with stop_gradient, which finite differences of the original see through:
                # there the value against NumPy's above is the check)
                for i, p in enumerate(prog.params):
                    if not prog.uses_stop:
                        expect_fd(f"d/d{p} on arrays", as_tuple(got_grads, n)[i], on_arrays, batch, i, scale)
                STATS["programs"] += 1
                return
            # (a value that depends on no argument is a scalar, as in NumPy)
            spread = np.broadcast_to(got_values, (2,))
            expect_close("value on arrays", spread, [got_value, value2], SAME_RTOL, SAME_RTOL * scale)
            for i, p in enumerate(prog.params):
                expected = [grads[i], as_tuple(grads2, n)[i]]
                expect_close(
                    f"d/d{p} on arrays", as_tuple(got_grads, n)[i], expected, SAME_RTOL, SAME_RTOL * scale
                )
    STATS["programs"] += 1


def check_kept_loops(f, prog: Program, args, original_value, exact, scale, t_grads, data) -> None:
    """loops="keep": the value against the original function, the gradient, a tangent and a
    second derivative against the SymPy twin (and torch), whether or not the loops are kept
    (a body that needs its index as an int unrolls, as the source then says)."""
    n = len(args)
    kept = symgrad.value_and_grad(f, wrt=every_parameter(f), loops="keep")
    got_value, grads = run_symgrad("value_and_grad(f, loops='keep')", kept, *args)
    grads = as_tuple(grads, n)
    expect_value("loops='keep' value", got_value, original_value, scale)
    exact_grads = [exact_of(lambda p=p: exact.grad(p), prog) for p in prog.params]
    for i, p in enumerate(prog.params):
        expect_close(
            f"loops='keep' d/d{p} vs sympy", grads[i], exact_grads[i], EXACT_RTOL, EXACT_ATOL * scale
        )
        if t_grads is not None:
            expect_torch(f"loops='keep' d/d{p} vs torch", grads[i], t_grads[i], scale)
    if re.search(r"^\s+for ", kept.source, re.MULTILINE):
        STATS["kept loops"] = STATS.get("kept loops", 0) + 1
    tangents = [data.draw(st.sampled_from([0.5, -1.0, 2.0]), label=f"tangent {p}") for p in prog.params]
    tangents = [np.full(np.shape(a), t) if np.shape(a) else t for a, t in zip(args, tangents)]
    _, tangent = run_symgrad(
        "jvp(f, loops='keep')", symgrad.jvp(f, wrt=every_parameter(f), loops="keep"), args, tuple(tangents)
    )
    expected = sum(np.sum(np.asarray(g) * t) for g, t in zip(exact_grads, tangents))
    expect_close("loops='keep' jvp vs sympy", np.sum(tangent), expected, EXACT_RTOL, EXACT_ATOL * scale * 4)
    if data.draw(st.integers(0, 2), label="kept second order") == 0:
        i = data.draw(st.integers(0, n - 1), label="kept i")
        j = data.draw(st.integers(0, n - 1), label="kept j")
        what = f"grad(grad(f, wrt={i}, loops='keep'), wrt={j})"
        twice = symgrad.grad(symgrad.grad(f, wrt=i, loops="keep"), wrt=j)
        got = run_symgrad(what, twice, *args)
        if KEPT.search(twice.source):
            STATS["second order through a kept loop"] = STATS.get("second order through a kept loop", 0) + 1
        second = exact_of(lambda: exact.second(prog.params[i], prog.params[j]), prog)
        expect_close(f"{what} vs sympy", got, second, 1e-9, 1e-11 * scale)


def check_tuple_program(loader: Loader, prog: Program, data) -> None:
    """Several outputs: jacobian (all parameters and each alone), vjp's value and pullback."""
    note(prog.source)
    point = draw_point(data, prog)
    args = [point[p] for p in prog.params]
    n, m = len(args), prog.n_outputs
    with loader.load(prog.text) as module:
        f = module.f
        probed = settle(module, prog, args)
        original_values = run_original(f, args)
        values = [float(v) for v in original_values]
        exact = twin_of(prog, point)
        assert np.allclose(exact.values(), values, rtol=1e-9, atol=1e-9), "the twin disagrees (a test bug)"
        ref = probed if prog.uses_stop else f
        scale = scale_of(values)

        jac = run_symgrad("jacobian(f)", symgrad.jacobian(f, wrt=every_parameter(f)), *args)
        assert isinstance(jac, np.ndarray) and jac.shape == (m, n), f"jacobian shape {np.shape(jac)}"
        for k in range(m):
            for i, p in enumerate(prog.params):
                exact_ki = exact_of(lambda p=p, k=k: exact.grad(p, k))
                expect_close(f"d out{k}/d{p} vs sympy", jac[k, i], exact_ki, EXACT_RTOL, EXACT_ATOL * scale)
                expect_fd(
                    f"d out{k}/d{p} vs finite differences",
                    jac[k, i],
                    lambda *a, k=k: ref(*a)[k],
                    args,
                    i,
                    scale,
                )
        for i, p in enumerate(prog.params):
            wrt = data.draw(st.sampled_from([i, p]), label=f"wrt for {p}")
            col = run_symgrad(f"jacobian(f, wrt={wrt!r})", symgrad.jacobian(f, wrt=wrt), *args)
            expect_close(
                f"jacobian(f, wrt={wrt!r})", np.reshape(col, (m,)), jac[:, i], SAME_RTOL, SAME_RTOL * scale
            )

        got_values, pullback = run_symgrad("vjp(f)", symgrad.vjp(f, wrt=every_parameter(f)), *args)
        assert isinstance(got_values, tuple) and len(got_values) == m, f"vjp value {got_values!r}"
        for k in range(m):
            expect_value(f"vjp value {k}", got_values[k], original_values[k], scale)
        cot = tuple(data.draw(st.sampled_from([1.0, -0.5, 2.0, 0.25]), label="cotangent") for _ in range(m))
        pulled = as_tuple(pullback(cot), n)
        expect_close("vjp pullback", list(pulled), np.asarray(cot) @ jac, SAME_RTOL, SAME_RTOL * scale)
        tf = torch_f(prog.source)
        if tf is not None:
            for k in range(m):
                onehot = [1.0 if kk == k else 0.0 for kk in range(m)]
                t_row = torch_value_and_grads(tf, args, tuple(values), scale, onehot)
                expect_torch(f"d out{k} vs torch", jac[k], np.array(t_row, dtype=np.float64), scale)
            expect_torch(
                "vjp pullback vs torch",
                list(pulled),
                torch_value_and_grads(tf, args, tuple(values), scale, cot),
                scale,
            )
    STATS["programs"] += 1


# --- the newer families: shared checks -------------------------------------------------------

TANGENTS = (1.0, -0.5, 2.0, 0.25, -1.5)
GUARD_MARGIN = 0.05  # a hazard's guard: points this far from it, or exactly on it


def draw_like(data, like, label: str):
    """A float, or an array shaped like `like`, of small values (tangents, cotangents)."""
    if np.shape(like) == ():
        return data.draw(st.sampled_from(TANGENTS), label=label)
    n = int(np.prod(np.shape(like)))
    values = data.draw(st.lists(st.sampled_from(TANGENTS), min_size=n, max_size=n), label=label)
    return np.reshape(np.array(values, dtype=np.float64), np.shape(like))


def fd_direction(fn, args: list[object], tangents: list[object]):
    """d/de fn(args + e * tangents) at e = 0, elementwise, by Richardson-extrapolated central
    differences; returns (estimate, error estimate)."""
    h = RICHARDSON_H * max(1.0, *(float(np.max(np.abs(a))) for a in args))

    def at(e: float):
        return np.asarray(fn(*[a + e * t for a, t in zip(args, tangents)]), dtype=np.float64)

    d = {k: (at(k * h) - at(-k * h)) / (2 * k * h) for k in FD_STEPS}
    coarse, fine = (4 * d[0.5] - d[1.0]) / 3, (4 * d[0.25] - d[0.5]) / 3
    return fine, np.abs(fine - coarse)


def direction_points(args: list[object], tangents: list[object]):
    h = RICHARDSON_H * max(1.0, *(float(np.max(np.abs(a))) for a in args))
    for k in FD_STEPS:
        for sign in (1.0, -1.0):
            yield [a + sign * k * h * t for a, t in zip(args, tangents)]


def expect_shape(what: str, got, like) -> None:
    assert np.shape(got) == np.shape(like), f"{what}: shape {np.shape(got)} != {np.shape(like)} ({got!r})"


def check_gradients(f, tf, prog: Program, args, expected, scale, ref, fd: bool = True):
    """value_and_grad (value like the original's; each gradient shaped like its argument,
    against finite differences and torch) and grad(f, wrt=p) for each parameter alone."""
    got_value, grads = run_symgrad(
        "value_and_grad(f)", symgrad.value_and_grad(f, wrt=every_parameter(f)), *args
    )
    grads = as_tuple(grads, len(args))
    expect_value("value_and_grad value", got_value, expected, scale)
    t_grads = None if tf is None else torch_value_and_grads(tf, args, expected, scale)
    for i, p in enumerate(prog.params):
        expect_shape(f"d/d{p}", grads[i], args[i])
        if fd:
            expect_fd(f"d/d{p} vs finite differences", grads[i], ref, args, i, scale)
        if t_grads is not None:
            expect_torch(f"d/d{p} vs torch", grads[i], t_grads[i], scale)
        got = run_symgrad(f"grad(f, wrt={p!r})", symgrad.grad(f, wrt=p), *args)
        expect_close(f"grad(f, wrt={p!r})", got, grads[i], SAME_RTOL, SAME_RTOL * scale)
    return grads


def check_jvp(f, tf, args, tangents, expected, scale, ref=None, probed=None):
    """jvp's value like the original's; its tangent against torch's forward mode and, given
    a reference, directional finite differences (where no decision changes along them)."""
    value, tangent = run_symgrad(
        "jvp(f)", symgrad.jvp(f, wrt=every_parameter(f)), tuple(args), tuple(tangents)
    )
    expect_value("jvp value", value, expected, scale)
    expect_shape("jvp tangent", tangent, expected)
    if tf is not None:
        t_value, t_tangent = torch_oracle.jvp(tf, args, tangents)
        assert close(t_value, expected, 1e-9, 1e-9 * scale), "the torch oracle disagrees (a test bug)"
        expect_torch("jvp tangent vs torch", tangent, t_tangent, scale)
    if ref is not None and (
        probed is None or all(probed.same_decisions(m) for m in direction_points(args, tangents))
    ):
        estimate, error = fd_direction(ref, args, tangents)
        assert np.all(np.isfinite(np.asarray(tangent, dtype=np.float64))), f"jvp: non-finite {tangent!r}"
        ok = np.abs(np.asarray(tangent, dtype=np.float64) - estimate) <= (
            FD_ATOL * scale + FD_RTOL * np.abs(estimate) + 2 * error
        )
        assert np.all(ok), (
            f"jvp tangent: symgrad {tangent!r} != finite differences {estimate!r} (+- {error!r})"
        )
    return value, tangent


def check_vjp(f, tf, prog: Program, args, cot, expected, scale, ref=None):
    """vjp's value like the original's; the pullback of a random cotangent against torch and
    finite differences of sum(cot * f)."""
    value, pullback = run_symgrad("vjp(f)", symgrad.vjp(f, wrt=every_parameter(f)), *args)
    expect_value("vjp value", value, expected, scale)
    pulled = as_tuple(run_symgrad("pullback", pullback, cot), len(args))
    t_pulled = None if tf is None else torch_value_and_grads(tf, args, expected, scale, [cot])
    for i, p in enumerate(prog.params):
        expect_shape(f"pullback d/d{p}", pulled[i], args[i])
        if t_pulled is not None:
            expect_torch(f"pullback d/d{p} vs torch", pulled[i], t_pulled[i], scale)
        if ref is not None:
            weighted = lambda *a: np.sum(np.asarray(cot) * np.asarray(ref(*a)))  # noqa: E731
            expect_fd(f"pullback d/d{p} vs finite differences", pulled[i], weighted, args, i, scale)


def loaded_point(loader, prog: Program, data):
    note(prog.source)
    point = draw_point(data, prog)
    return [point[p] for p in prog.params]


# --- mixed floats and arrays (S1, S3) and second order under broadcasting (S8) -------------------


BRANCH_SHAPES = re.compile(r"on one path and \(.*\) on another, and which path runs depends on the value of")
STATIC_HINT = re.compile(r"static=(\([^)]*\))")


def follows_branch_shapes_hint(f, prog: Program, args, expected, scale: float, ref) -> bool:
    """Whether symgrad refuses f because a number's condition picks a branch of another shape
    (NumPy's shape then depends on that number's value); if so, its hint is followed: with the
    named parameters static, the value and every other gradient are checked."""
    try:
        run_symgrad("value_and_grad(f)", symgrad.value_and_grad(f, wrt=every_parameter(f)), *args)
        return False
    except symgrad.ShapeError as e:
        if not BRANCH_SHAPES.search(str(e)):
            raise
        static = ast.literal_eval(STATIC_HINT.search(str(e)).group(1))
    dynamic = tuple(p for p in prog.params if p not in static)
    STATS["branch shapes refused"] = STATS.get("branch shapes refused", 0) + 1
    if not dynamic:
        return True
    vg = symgrad.value_and_grad(f, wrt=dynamic, static=static)
    value, grads = run_symgrad(f"value_and_grad(f, static={static!r})", vg, *args)
    expect_value("value with the hint's static parameters", value, expected, scale)
    for p, g in zip(dynamic, as_tuple(grads, len(dynamic))):
        i = prog.params.index(p)
        expect_shape(f"d/d{p} (static {static!r})", g, args[i])
        expect_fd(f"d/d{p} (static {static!r}) vs finite differences", g, ref, args, i, scale)
    return True


def check_mixed(loader, prog: Program, data) -> None:
    """Floats and arrays of different shapes in one call: value (shape too), value_and_grad,
    grad of each, jvp and vjp against the original, finite differences and torch."""
    args = loaded_point(loader, prog, data)
    with loader.load(prog.text) as module:
        f = module.f
        probed = settle(module, prog, args)
        expected = run_original(f, args)
        scale, tf = scale_of(expected), torch_f(prog.source)
        ref = probed if prog.uses_stop else pure(f)
        if follows_branch_shapes_hint(f, prog, args, expected, scale, ref):
            STATS["programs"] += 1
            return
        check_gradients(f, tf, prog, args, expected, scale, ref)
        tangents = [draw_like(data, a, f"tangent {p}") for a, p in zip(args, prog.params)]
        check_jvp(f, tf, args, tangents, expected, scale, ref, probed)
        check_vjp(f, tf, prog, args, draw_like(data, expected, "cotangent"), expected, scale, ref)
    STATS["programs"] += 1


def check_second_broadcast(loader, prog: Program, data) -> None:
    """grad(grad(f, wrt=i), wrt=j) of mixed-shape programs against torch's double backward
    (d/d args[j] of sum(d sum(f) / d args[i])) and finite differences of the first derivative."""
    args = loaded_point(loader, prog, data)
    n = len(args)
    with loader.load(prog.text) as module:
        f = module.f
        settle(module, prog, args)
        expected = run_original(f, args)
        scale, tf = scale_of(expected), torch_f(prog.source)
        if follows_branch_shapes_hint(f, prog, args, expected, scale, pure(f)):
            STATS["programs"] += 1
            return
        arrays = [k for k in range(n) if np.shape(args[k]) != ()] or list(range(n))
        for _ in range(2):
            i = data.draw(st.sampled_from(range(n)), label="i")
            j = data.draw(st.sampled_from(arrays), label="j")
            what = f"grad(grad(f, wrt={prog.params[i]!r}), wrt={prog.params[j]!r})"
            g_i = symgrad.grad(f, wrt=i)
            got = run_symgrad(what, symgrad.grad(g_i, wrt=j), *args)
            expect_shape(what, got, args[j])
            if tf is not None:
                expect_second_torch(what, got, tf, args, i, j, scale)
            if not prog.uses_stop:
                expect_fd(f"{what} vs finite differences", got, g_i, args, j, scale, 1e-5, 1e-6)
                check_forward_over_gradient(data, g_i, args, i, j, scale)
    STATS["programs"] += 1


def check_forward_over_gradient(data, g_i, args, i: int, j: int, scale: float) -> None:
    """jvp, vjp and jacobian of a gradient program: its value is the gradient (summed over the
    broadcast for a float argument), its tangent (and its jacobian along the tangent) the
    directional derivative of that gradient (finite differences), its pullback of a cotangent
    the gradient of <cotangent, gradient>."""
    first = g_i(*args)
    direction = draw_like(data, args[j], "tangent of a gradient")
    value, tangent = run_symgrad("jvp(grad(f))", symgrad.jvp(g_i, wrt=j), tuple(args), (direction,))
    expect_value("jvp(grad(f)) value", value, first, scale)
    moves = [direction if k == j else 0.0 * np.asarray(a) for k, a in enumerate(args)]
    estimate, error = fd_direction(g_i, list(args), moves)
    ok = (
        np.abs(np.asarray(tangent, dtype=np.float64) - estimate)
        <= 1e-6 * scale + 1e-5 * np.abs(estimate) + 2 * error
    )
    assert np.shape(tangent) == np.shape(first) and np.all(ok), (
        f"jvp(grad(f)) tangent {tangent!r} != finite differences {estimate!r} (+- {error!r})"
    )
    # jacobian(grad(f)): blocks of shape gradient + argument; along the direction, the same
    # directional derivative (it once returned the gradient itself on array programs)
    block = np.asarray(
        run_symgrad("jacobian(grad(f))", symgrad.jacobian(g_i, wrt=j), *args), dtype=np.float64
    )
    assert block.shape == np.shape(first) + np.shape(args[j]), (
        f"jacobian(grad(f)) has shape {block.shape}, not {np.shape(first) + np.shape(args[j])}"
    )
    along = np.tensordot(block, np.asarray(direction, dtype=np.float64), axes=np.ndim(args[j]))
    ok = np.abs(along - estimate) <= 1e-6 * scale + 1e-5 * np.abs(estimate) + 2 * error
    assert np.all(ok), f"jacobian(grad(f)) along the tangent {along!r} != finite differences {estimate!r}"
    cotangent = draw_like(data, first, "cotangent of a gradient")
    value, pullback = run_symgrad("vjp(grad(f))", symgrad.vjp(g_i, wrt=j), *args)
    expect_value("vjp(grad(f)) value", value, first, scale)
    got = pullback(cotangent)
    expect_shape("vjp(grad(f)) pullback", got, args[j])
    weighted = lambda *a: np.sum(np.asarray(cotangent) * np.asarray(g_i(*a)))  # noqa: E731
    expect_fd("vjp(grad(f)) vs finite differences", got, weighted, args, j, scale, 1e-5, 1e-6)


# --- forward mode under branches (S7) ------------------------------------------------------------


def check_hazards(loader, prog: Program, data) -> None:
    """jvp and grad where an untaken branch is NaN or inf: at a point away from the guards
    (against finite differences and torch's forward mode) and at a point on one guard (against
    torch's forward mode, which selects the taken branch's tangent); no NaN may leak; and both
    points at once as arrays."""
    args = loaded_point(loader, prog, data)
    guards = prog.meta["guards"]
    assume(all(abs(args[prog.params.index(v)] - c) > GUARD_MARGIN for v, _, c in guards))
    with loader.load(prog.text) as module:
        f = module.f
        probed = settle(module, prog, args)
        tf = torch_f(prog.source)
        v, _, c = guards[data.draw(st.integers(0, len(guards) - 1), label="guard")]
        on = list(args)
        on[prog.params.index(v)] = float(c)
        on_probe = Probed(module, on)
        assume(on_probe.margin > MARGIN and np.isfinite(on_probe.value) and abs(on_probe.value) < VALUE_LIMIT)
        tangents = [data.draw(st.sampled_from(TANGENTS), label=f"tangent {p}") for p in prog.params]
        results = []
        for point, fd in ((args, True), (on, False)):
            expected = run_original(f, point)
            scale = scale_of(expected)
            ref = (probed if prog.uses_stop else pure(f)) if fd else None
            grads = check_gradients(f, None, prog, point, expected, scale, ref, fd=fd)
            if tf is not None:  # torch's reverse mode multiplies an untaken NaN by zero: NaN
                t_grads = torch_oracle.grad_forward(tf, point)
                for i, p in enumerate(prog.params):
                    expect_torch(f"d/d{p} vs torch (forward mode)", grads[i], t_grads[i], scale)
            value, tangent = check_jvp(f, tf, point, tangents, expected, scale, ref, probed)
            results.append((value, tangent, grads))
        batch = [np.array([a, b]) for a, b in zip(args, on)]
        value, tangent = run_symgrad(
            "jvp(f) on arrays",
            symgrad.jvp(f, wrt=every_parameter(f)),
            tuple(batch),
            tuple(np.array([t, t]) for t in tangents),
        )
        scale = scale_of([r[0] for r in results])
        for what, got, k in (("value", value, 0), ("tangent", tangent, 1)):
            spread = np.broadcast_to(got, (2,))  # a constant is a scalar, as in NumPy
            expect_close(
                f"jvp {what} on arrays", spread, [r[k] for r in results], SAME_RTOL, SAME_RTOL * scale
            )
        grads = as_tuple(
            run_symgrad("grad(f) on arrays", symgrad.grad(f, wrt=every_parameter(f)), *batch), len(args)
        )
        for i, p in enumerate(prog.params):
            expect_close(
                f"d/d{p} on arrays", grads[i], [r[2][i] for r in results], SAME_RTOL, SAME_RTOL * scale
            )
    STATS["programs"] += 1


# --- aliasing and in-place updates (S9) ----------------------------------------------------------

ALIAS_WORDS = re.compile(r"alias|in[- ]?place|view|writes? (?:in)?to|augmented|[-+*/]=", re.IGNORECASE)


class RefusedError(Exception):
    pass


def accept_refusal(what: str, transform, *args):
    """A symgrad call that either works or refuses with a SymgradError about the alias or
    the in-place update; any other exception fails the test."""
    try:
        return run_symgrad(what, transform, *args)
    except symgrad.SymgradError as e:
        assert ALIAS_WORDS.search(str(e)), f"{what}: a refusal that names no alias or in-place update: {e}"
        raise RefusedError(str(e)) from e


def check_aliasing(loader, prog: Program, data) -> None:
    """`t = x` / `t = x[0:2]`, then `t += ...`: symgrad's value is NumPy's (writes through to
    x), its gradient that of the original (finite differences and torch, whose in-place
    semantics are NumPy's), or it refuses naming the alias; the caller's arrays stay as given."""
    args = loaded_point(loader, prog, data)
    with loader.load(prog.text) as module:
        f = module.f
        settle(module, prog, args)
        expected = run_original(f, args)
        scale, tf = scale_of(expected), torch_f(prog.source)
        saved = copies(args)
        try:
            got_value, grads = accept_refusal(
                "value_and_grad(f)", symgrad.value_and_grad(f, wrt=every_parameter(f)), *args
            )
            grads = as_tuple(grads, len(args))
            expect_value("value_and_grad value", got_value, expected, scale)
            t_grads = None if tf is None else torch_value_and_grads(tf, args, expected, scale)
            for i, p in enumerate(prog.params):
                expect_shape(f"d/d{p}", grads[i], args[i])
                expect_fd(f"d/d{p} vs finite differences", grads[i], pure(f), args, i, scale)
                if t_grads is not None:
                    expect_torch(f"d/d{p} vs torch", grads[i], t_grads[i], scale)
            tangents = [draw_like(data, a, f"tangent {p}") for a, p in zip(args, prog.params)]
            value, tangent = accept_refusal(
                "jvp(f)", symgrad.jvp(f, wrt=every_parameter(f)), tuple(args), tuple(tangents)
            )
            expect_value("jvp value", value, expected, scale)
            if tf is not None:
                expect_torch("jvp tangent vs torch", tangent, torch_oracle.jvp(tf, args, tangents)[1], scale)
        except RefusedError:
            STATS["aliasing refused"] = STATS.get("aliasing refused", 0) + 1
        for a, s, p in zip(args, saved, prog.params):
            assert np.array_equal(a, s), f"symgrad changed the caller's {p}: {s!r} became {a!r}"
    STATS["programs"] += 1


# --- captured values (S10) -----------------------------------------------------------------------


def _set_cell(fn, name: str, value) -> None:
    fn.__closure__[fn.__code__.co_freevars.index(name)].cell_contents = value


def change_captured(module, ns, prog: Program, data) -> str:
    """Change K0 (module constant), c (closure cell) and A (module array: rebound or written
    into), some or all, in the module and in the torch oracle's namespace alike."""
    what = []
    if data.draw(st.booleans(), label="change K0"):
        new = data.draw(st.sampled_from([v for v in CAPTURED_VALUES if v != module.K0]), label="K0")
        module.K0 = new
        if ns is not None:
            ns["K0"] = new
        what.append(f"K0 = {new!r}")
    if not what or data.draw(st.booleans(), label="change c"):
        new = data.draw(st.sampled_from([v for v in CELL_VALUES if v != prog.meta["cell"]]), label="c")
        for fn in (module.f, module._probe_f) + (() if ns is None else (ns["f"],)):
            _set_cell(fn, "c", new)
        what.append(f"c = {new!r}")
    if "A" in prog.meta and data.draw(st.booleans(), label="change A"):
        if data.draw(st.booleans(), label="write into A"):
            module.A[1] = 3.0
            what.append("A[1] = 3.0")
        else:
            module.A = np.array(data.draw(st.sampled_from([v for v in ARRAY_VALUES if v != prog.meta["A"]])))
            what.append(f"A = {module.A!r}")
        if ns is not None:
            ns["A"] = torch_oracle.T(np.array(module.A))
    return ", ".join(what)


def check_captured(loader, prog: Program, data) -> None:
    """grad / value_and_grad of f reading a module constant, a module array and a closure
    cell; after changing them (rebinding, or writing into the array), the same transform
    objects must give the original function's new value and gradient (FD and torch)."""
    args = loaded_point(loader, prog, data)
    with loader.load(prog.text) as module:
        f = module.f
        ns = None if torch_oracle is None else torch_oracle.load(prog.source)
        vg, g = symgrad.value_and_grad(f, wrt=every_parameter(f)), symgrad.grad(f, wrt=0)
        when = "before any change"
        for step in range(2):
            settle(module, prog, args)
            expected = run_original(f, args)
            scale = scale_of(expected)
            got_value, grads = run_symgrad("value_and_grad(f)", vg, *args)
            grads = as_tuple(grads, len(args))
            expect_value(f"value {when}", got_value, expected, scale)
            t_grads = None if ns is None else torch_value_and_grads(ns["f"], args, expected, scale)
            for i, p in enumerate(prog.params):
                expect_fd(f"d/d{p} {when} vs finite differences", grads[i], pure(f), args, i, scale)
                if t_grads is not None:
                    expect_torch(f"d/d{p} {when} vs torch", grads[i], t_grads[i], scale)
            got = run_symgrad("grad(f, wrt=0)", g, *args)
            expect_close(f"grad(f, wrt=0) {when}", got, grads[0], SAME_RTOL, SAME_RTOL * scale)
            if step == 0:
                when = f"after {change_captured(module, ns, prog, data)}"
                note(when)
    STATS["programs"] += 1


# --- the property tests --------------------------------------------------------------------------


# Each property runs through `expect_programs`, which fails if Hypothesis checked fewer
# programs than asked (say, because the generator's assumptions rejected most draws). The
# counts add up to at least 2,000 programs a run; the costly families (tuple outputs: a
# jacobian and a vjp each; arrays: shape-specialised variants) draw fewer, the cheap ones
# (aliasing, captured values, precedence) more. Rough cost per program on one core: tuples
# 0.12 s, mixed 0.10 s, arrays and hazards 0.08 s, loops 0.06 s, straight, branches and second
# order 0.05 s, aliasing and captured 0.03 s, precedence 0.02 s.
PROGRAMS = {
    "straight": 600,
    "branches": 400,
    "loops": 320,
    "long loops": 10,  # 2.8 s a program (64-70 steps, dag_diff twins); the loops family draws long loops too
    "tuples": 110,
    "arrays": 140,
    "mixed": 40,
    "second order": 60,
    "hazards": 40,
    "aliasing": 100,
    "captured": 80,
    "precedence": 150,
}


def expect_programs(prop, loader, family: str) -> None:
    before = STATS["programs"]
    STATS[family] = 0  # the summary prints the seed even when the first program fails
    prop(loader)
    checked = STATS["programs"] - before
    STATS[family] = checked
    assert checked >= int(PROGRAMS[family] * SCALE), f"only {checked} {family} programs were checked"


def property_test(name: str, family: str, strategy, check):
    """The test of one family: Hypothesis runs `check` on PROGRAMS[family] programs drawn
    from `strategy`, then `expect_programs` asserts that many were checked. `name` names the
    property in Hypothesis's reports; the family gives it its own key in `.hypothesis/` (the
    properties share this body, which is what Hypothesis's key is otherwise made from)."""

    def prop(loader, prog, data):
        check(loader, prog, data)

    prop.__name__ = prop.__qualname__ = name
    prop._hypothesis_internal_add_digest = family.encode()
    prop = fuzz_settings(PROGRAMS[family])(given(prog=strategy, data=st.data())(prop))

    def test(loader):
        expect_programs(prop, loader, family)

    test.__name__ = test.__qualname__ = f"test_{name}"
    return test


test_straight_line_programs = property_test(
    "straight_line_programs", "straight", programs("straight"), check_program
)
test_branching_programs = property_test("branching_programs", "branches", programs("branches"), check_program)
test_loops_helpers_closures = property_test(
    "loops_helpers_closures", "loops", programs("loops"), check_program
)
test_long_loops_kept = property_test(
    "long_loops_kept", "long loops", programs("loops", long_loop=True), check_program
)
test_tuple_outputs = property_test("tuple_outputs", "tuples", programs("tuples"), check_tuple_program)
test_reductions_over_arrays = property_test(
    "reductions_over_arrays", "arrays", programs("arrays"), check_program
)
test_mixed_scalars_and_arrays = property_test(
    "mixed_scalars_and_arrays", "mixed", mixed_programs(), check_mixed
)
test_second_order_under_broadcasting = property_test(
    "second_order_under_broadcasting", "second order", mixed_programs(), check_second_broadcast
)
test_forward_mode_under_branches = property_test(
    "forward_mode_under_branches", "hazards", hazard_programs(), check_hazards
)
test_aliasing_and_in_place = property_test(
    "aliasing_and_in_place", "aliasing", alias_programs(), check_aliasing
)
test_captured_values_changed = property_test(
    "captured_values_changed", "captured", captured_programs(), check_captured
)
test_printing_precedence = property_test(
    "printing_precedence", "precedence", precedence_programs(), check_program
)


def test_dag_diff_agrees_with_sympy_diff():
    """The twin's chain rule over the DAG (programs with while loops, jumps, long or nested
    loops) against sympy.diff, to first and second order, on a short unrolled recurrence of
    every kind of node it meets: sums, products, powers (numbers and traced), textbook functions."""
    x, y = sympy.Symbol("x", real=True), sympy.Symbol("y", real=True)
    half, s = sympy.Rational(1, 2), x
    for _ in range(2):
        s = half * s + F.sin(s * y) / (1 + s**2) + F.pow(1 + F.tanh(s) ** 2, y) * F.atan2(s, 2 + y)
    point = {x: MP.mpf("0.3"), y: MP.mpf("-0.7")}
    for a, b in ((x, x), (x, y), (y, y)):
        memos: dict = {}
        first = dag_diff(s, a, memos.setdefault(a, {}))
        assert MP.almosteq(mp_eval(first, point), mp_eval(sympy.diff(s, a), point), 1e-30)
        second = dag_diff(first, b, memos.setdefault(b, {}))
        assert MP.almosteq(mp_eval(second, point), mp_eval(sympy.diff(s, a, b), point), 1e-30)


def test_every_rule_has_a_generator():
    """A rule added to symgrad.RULES must be taught to the generator (SPECS)."""
    assert set(SPECS) == set(RULE_BY_KEY)


# --- regressions ---------------------------------------------------------------------------------


def original(f, args):
    """The original function; elementwise (np.vectorize) where it only runs on floats."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return f(*copies(args))
    except (TypeError, ValueError):
        out = np.vectorize(f, otypes=[np.float64])(*copies(args))
        return out.view(Vectorized) if isinstance(out, np.ndarray) else out


class Vectorized(np.ndarray):
    """A value np.vectorize made: broadcast to all arguments' shape whatever the function does,
    so only the numbers count, not whether a constant kept NumPy's own (scalar) shape."""


def regression_torch(source: str, args):
    """The torch oracle of a regression at a point, or None where it does not apply (no torch,
    or Python `if` on arrays, which only np.vectorize runs)."""
    tf = torch_f(source)
    if tf is None:
        return None
    try:
        torch_oracle.value(tf, args)
    except RuntimeError as e:
        if "ambiguous" not in str(e):
            raise
        return None
    return tf


def regression_args(point) -> list[object]:
    return [np.asarray(a, dtype=np.float64) if isinstance(a, list) else float(a) for a in point]


@pytest.mark.parametrize(
    "source,points", REGRESSIONS, ids=[f"regression{k}" for k in range(len(REGRESSIONS))]
)
def test_regressions(loader, source, points):
    """Programs that once exposed a bug: value (and its shape), gradient, each wrt, jvp and
    second order against finite differences of the original function and against torch at
    the recorded points."""
    with loader.load(source) as module:
        f = module.f
        n = f.__code__.co_argcount
        ref = lambda *a: original(f, a)  # noqa: E731
        for point in points:
            args = regression_args(point)
            outputs = original(f, args)
            scale = scale_of(outputs)
            tf = regression_torch(source, args)
            if isinstance(outputs, tuple):
                jac = run_symgrad("jacobian(f)", symgrad.jacobian(f, wrt=every_parameter(f)), *args)
                for k in range(len(outputs)):
                    for i in range(n):
                        expect_fd(f"d out{k}/d arg{i}", jac[k, i], lambda *a, k=k: ref(*a)[k], args, i, scale)
                continue
            value, grads = run_symgrad(
                "value_and_grad(f)", symgrad.value_and_grad(f, wrt=every_parameter(f)), *args
            )
            grads = as_tuple(grads, n)
            expect_value("value", value, outputs, scale)
            t_grads = None if tf is None else torch_value_and_grads(tf, args, outputs, scale)
            for i in range(n):
                expect_shape(f"d/d arg{i}", grads[i], args[i])
                expect_fd(f"d/d arg{i}", grads[i], ref, args, i, scale)
                if t_grads is not None:
                    expect_torch(f"d/d arg{i} vs torch", grads[i], t_grads[i], scale)
                g_i = symgrad.grad(f, wrt=i)
                expect_close(
                    f"grad(f, wrt={i})",
                    run_symgrad(f"grad(f, wrt={i})", g_i, *args),
                    grads[i],
                    SAME_RTOL,
                    SAME_RTOL * scale,
                )
                for j in range(n):
                    what = f"grad(grad(f, wrt={i}), wrt={j})"
                    got = run_symgrad(what, symgrad.grad(g_i, wrt=j), *args)
                    expect_fd(what, got, g_i, args, j, scale, 1e-5, 1e-6)
                    if tf is not None:
                        expect_second_torch(what, got, tf, args, i, j, scale)
            tangents = [np.full(np.shape(a), 1.0) if np.shape(a) else 1.0 for a in args]
            check_jvp(f, tf, args, tangents, outputs, scale, ref)


@pytest.mark.parametrize(
    "source,points", ALIAS_REGRESSIONS, ids=[f"S9_alias{k}" for k in range(len(ALIAS_REGRESSIONS))]
)
def test_S9_in_place_on_alias_regressions(loader, source, points):
    """`+=` on an alias or view: NumPy's value and the original's gradient (finite differences
    and torch), or a refusal naming the alias; the caller's arrays unchanged."""
    with loader.load(source) as module:
        f = module.f
        for point in points:
            args = regression_args(point)
            expected = run_original(f, args)
            scale, tf, saved = scale_of(expected), torch_f(source), copies(args)
            try:
                value, grads = accept_refusal(
                    "value_and_grad(f)", symgrad.value_and_grad(f, wrt=every_parameter(f)), *args
                )
            except RefusedError:
                continue
            finally:
                for a, s in zip(args, saved):
                    assert np.array_equal(a, s), f"symgrad changed the caller's array: {s!r} became {a!r}"
            expect_value("value", value, expected, scale)
            grads = as_tuple(grads, len(args))
            t_grads = None if tf is None else torch_value_and_grads(tf, args, expected, scale)
            for i in range(len(args)):
                expect_fd(f"d/d arg{i}", grads[i], pure(f), args, i, scale)
                if t_grads is not None:
                    expect_torch(f"d/d arg{i} vs torch", grads[i], t_grads[i], scale)


@pytest.mark.parametrize(
    "source,point,changes",
    CAPTURE_REGRESSIONS,
    ids=[f"S10_captured{k}" for k in range(len(CAPTURE_REGRESSIONS))],
)
def test_S10_captured_value_changed_regressions(loader, source, point, changes):
    """A module constant or closure cell changed after the first call: the same transform
    gives the original function's new value and gradient."""
    with loader.load(source) as module:
        args = regression_args(point)
        vg = symgrad.value_and_grad(module.f)
        run_symgrad("value_and_grad(f)", vg, *args)
        for change in changes:
            exec(change, vars(module))
        expected = run_original(module.f, args)
        scale = scale_of(expected)
        value, grad = run_symgrad("value_and_grad(f)", vg, *args)
        expect_value(f"value after {changes}", value, expected, scale)
        expect_fd(f"gradient after {changes}", grad, pure(module.f), args, 0, scale)


def _h_in_place(a):
    if np.sin(1.8 * np.tanh(a)) < -0.5:
        a += 0.3
    return a


def _f_in_place(x):
    return np.tanh(np.clip(_h_in_place(x), -0.25, 0.25) * np.clip(_h_in_place(x), -0.25, 0.25))


def _h_new_array(a):
    if np.sin(1.8 * np.tanh(a)) < -0.5:
        a = a + 0.3
    return a


def _f_new_array(x):
    return np.tanh(np.clip(_h_new_array(x), -0.25, 0.25) * np.clip(_h_new_array(x), -0.25, 0.25))


def test_in_place_branch_of_a_helper_called_twice_on_arrays():
    """The program Python 3.10's hypothesis drew: on floats it differentiates; on arrays, where
    the `if` runs as `where` over both branches, the `a += v` of one branch would change the
    array the first call returned, which is refused; the hint (`a = a + v`) then works."""
    x = 0.1
    got = symgrad.grad(_f_in_place)(x)
    fd = (_f_in_place(x + 1e-6) - _f_in_place(x - 1e-6)) / 2e-6
    assert got == pytest.approx(fd, rel=1e-6)
    batch = np.array([0.1, -3.0])
    with pytest.raises(symgrad.UnsupportedSyntaxError, match=RETURNED_ALIAS_REFUSAL.pattern) as info:
        symgrad.grad(lambda x: np.sum(_f_in_place(x)))(batch)
    assert "a = a + v" in str(info.value)
    grads = symgrad.grad(lambda x: np.sum(_f_new_array(x)))(batch)
    want = [symgrad.grad(_f_new_array)(float(v)) for v in batch]
    np.testing.assert_allclose(grads, want, rtol=1e-12)
