"""The error catalogue: every bad input gets a SymgradError naming file:line:col and a hint.

Each case names the expected error class and a word its hint must contain (the suggested
alternative). Cases with a source location find their expected line through the marker comment
`# BAD: <case id>` in tests/bad_inputs.py, so no line number is hard-coded here.

Stages:
- DECORATE: `grad(f)` itself raises (the fence, `wrt`/`static` checks, unreadable source).
- TRACE: `grad(f)` succeeds; the first call (or `.source`) traces the function and raises.
- RUNTIME: a bad call of a good function (arguments, shapes, dtypes); no source location needed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy

import symgrad
from symgrad import (
    DataDependentLoopError,
    NonScalarOutputError,
    ShapeError,
    SourceUnavailableError,
    SymgradError,
    TracingError,
    UnknownCalleeError,
    UnsupportedSyntaxError,
    WrtError,
    grad,
    value_and_grad,
)
from tests import bad_inputs as bad

DECORATE, TRACE, RUNTIME = "decorate", "trace", "runtime"

BAD_FILE = Path(bad.__file__).resolve()
BAD_LINES = BAD_FILE.read_text().splitlines()
_MARKER = re.compile(r"#\s*BAD:\s*([\w\-]+(?:\s+[\w\-]+)*)\s*$")


def _markers() -> dict[str, int]:
    """Case id -> 1-based line of tests/bad_inputs.py that carries `# BAD: <case id>`."""
    found: dict[str, int] = {}
    for lineno, line in enumerate(BAD_LINES, start=1):
        match = _MARKER.search(line)
        if match is None:
            continue
        for tag in match.group(1).split():
            assert tag not in found, f"marker {tag!r} appears twice in bad_inputs.py"
            found[tag] = lineno
    return found


MARKERS = _markers()


@dataclass(frozen=True)
class Case:
    id: str
    error: type[SymgradError]
    hint: str  # a word the hint must contain (case-insensitive): the suggested alternative
    stage: str
    build: Callable[[], Any]  # DECORATE: raises; TRACE: must not raise; RUNTIME: the whole trigger
    args: tuple[Any, ...] = ()  # TRACE: arguments of the first call
    kwargs: dict[str, Any] = field(default_factory=dict)
    at: str | None = None  # the text the column must point at, where unambiguous
    source_too: bool = True  # TRACE: `.source` raises the same error as the first call

    @property
    def located(self) -> bool:
        return self.stage != RUNTIME

    def trigger(self) -> Any:
        result = self.build()
        if self.stage == TRACE:
            return result(*self.args, **self.kwargs)
        return result


def refused(
    id: str,
    fn: Any,
    error: type[SymgradError],
    hint: str,
    at: str | None = None,
    make: Callable[..., Any] = grad,
    **options: Any,
) -> Case:
    """`make(fn, **options)` raises at decoration time, located at the `# BAD: id` line."""
    return Case(id, error, hint, DECORATE, lambda: make(fn, **options), at=at)


def traced(
    id: str,
    fn: Any,
    error: type[SymgradError],
    hint: str,
    at: str | None = None,
    args: tuple[Any, ...] = (1.5,),
    make: Callable[..., Any] = grad,
    source_too: bool = True,
    **options: Any,
) -> Case:
    """`make(fn, **options)` succeeds; calling it with `args` raises, located at `# BAD: id`."""
    return Case(id, error, hint, TRACE, lambda: make(fn, **options), args=args, at=at, source_too=source_too)


def runtime(id: str, trigger: Callable[[], Any], error: type[SymgradError], hint: str) -> Case:
    return Case(id, error, hint, RUNTIME, trigger)


CASES: list[Case] = [
    # --- syntax the fence refuses at decoration time -------------------------------------------
    refused("lambda", bad.lambda_inside, UnsupportedSyntaxError, "def", at="lambda"),
    refused("setcomp", bad.set_comp, UnsupportedSyntaxError, "list comprehension", at="{x * i"),
    refused("try", bad.try_block, UnsupportedSyntaxError, "check inputs", at="try"),
    refused("global", bad.global_stmt, UnsupportedSyntaxError, "argument", at="global"),
    refused("nonlocal", bad.nonlocal_stmt, UnsupportedSyntaxError, "argument", at="nonlocal"),
    refused("yield", bad.yield_value, UnsupportedSyntaxError, "return", at="yield"),
    refused("yield-from", bad.yield_from, UnsupportedSyntaxError, "return", at="yield from"),
    refused("async", bad.async_def, UnsupportedSyntaxError, "def", at="async"),
    refused("classdef", bad.class_inside, UnsupportedSyntaxError, "outside", at="class"),
    refused("nested-def", bad.nested_def, UnsupportedSyntaxError, "module level", at="def square"),
    refused("walrus", bad.walrus, UnsupportedSyntaxError, "separate", at="y :="),
    refused("fstring", bad.fstring_arithmetic, UnsupportedSyntaxError, "remove", at='f"'),
    traced("star-call", bad.star_call, UnsupportedSyntaxError, "tuple or list", at="*x"),
    refused("star-assign", bad.star_assign, UnsupportedSyntaxError, "explicitly", at="*rest"),
    refused("del", bad.del_stmt, UnsupportedSyntaxError, "remove", at="del"),
    refused("import", bad.import_inside, UnsupportedSyntaxError, "module level", at="import math"),
    refused("from-import", bad.from_import_inside, UnsupportedSyntaxError, "module level", at="from math"),
    refused("set", bad.set_literal, UnsupportedSyntaxError, "variables", at="{x, 2.0}"),
    refused("match", bad.match_stmt, UnsupportedSyntaxError, "if", at="match"),
    refused("flush-left-string", bad.flush_left_string, UnsupportedSyntaxError, "remove", at="try"),
    # --- syntax refused while tracing -----------------------------------------------------------
    traced("with", bad.with_open, UnsupportedSyntaxError, "no_grad", at="with"),
    traced("no-grad-as", bad.no_grad_with_target, UnsupportedSyntaxError, "no_grad", at="with"),
    traced("matmul", bad.matmul, UnsupportedSyntaxError, "*", at="x @ x"),
    traced("bitand", bad.bit_and, UnsupportedSyntaxError, "and", at="(x > 0.0) &"),
    traced("bitor", bad.bit_or, UnsupportedSyntaxError, "or", at="(x < 0.0) |"),
    traced("xor", bad.bit_xor, UnsupportedSyntaxError, "**", at="x ^ 2"),
    traced("lshift", bad.left_shift, UnsupportedSyntaxError, "*", at="x << 1"),
    traced("invert", bad.invert, UnsupportedSyntaxError, "not", at="~x"),
    traced("is", bad.is_comparison, UnsupportedSyntaxError, "==", at="x is None"),
    traced("in", bad.in_comparison, UnsupportedSyntaxError, "==", at="x in"),
    traced("for-else", bad.for_else, UnsupportedSyntaxError, "else", at="for"),
    traced("rule-kwargs", bad.keyword_to_rule, UnsupportedSyntaxError, "position", at="np.clip("),
    traced("index", bad.indexing, UnsupportedSyntaxError, "separate arguments", at="x[0]"),
    traced("slice", bad.slicing, UnsupportedSyntaxError, "separate arguments", at="x[1:]"),
    # --- iteration and checks: what still cannot unroll or be decided while tracing -------------
    traced(
        "genexp-traced-filter",
        bad.generator_filter_traced,
        DataDependentLoopError,
        "if x > 0 else",
        at="v > 0.0",
        args=(1.5, -2.0),
    ),
    traced("genexp-unroll", bad.long_generator, DataDependentLoopError, "vjp", at="range(30_000)"),
    traced("raise-traced", bad.raise_stmt, TracingError, "before the call", at="raise"),
    traced("assert-traced", bad.assert_stmt, TracingError, "before the call", at="assert"),
    traced("dict-traced-key", bad.dict_traced_key, TracingError, "constant keys", at="x: 1.0"),
    traced(
        "list-traced-index",
        bad.list_traced_index,
        UnsupportedSyntaxError,
        "constants",
        at="xs[n]",
        args=(1.5, 1.0),
    ),
    traced("iterate-number", bad.iterate_number, TracingError, "range", at="x:"),
    traced("isinstance-traced", bad.isinstance_traced, TracingError, "np.ndim", at="isinstance("),
    traced("append-passed-list", bad.appends_in_helper, UnsupportedSyntaxError, "return", at="xs.append"),
    # --- semantics -------------------------------------------------------------------------------
    traced("range-traced", bad.static_loop, DataDependentLoopError, "static", at="range(n)", args=(1.5, 3.0)),
    traced(
        "range-start-traced",
        bad.range_start_traced,
        DataDependentLoopError,
        "static",
        at="range(1, n)",
        args=(1.5, 3.0),
    ),
    traced("range-computed", bad.range_computed, DataDependentLoopError, "static", at="range(m)"),
    traced(
        "range-float-static",
        bad.static_loop,
        TracingError,
        "int",
        at="range(n)",
        args=(1.5, 2.5),
        static="n",
        source_too=False,
    ),
    traced("recursion", bad.recursive, TracingError, "range", at="recursive(x / 2.0)"),
    traced("mutual-recursion", bad.ping, TracingError, "range", at="ping(x)"),
    traced("setattr", bad.set_attribute, UnsupportedSyntaxError, "new variable", at="x.attr"),
    traced("augattr", bad.augassign_attribute, UnsupportedSyntaxError, "new variable", at="x.count"),
    traced(
        "subscript-augassign", bad.subscript_augassign, UnsupportedSyntaxError, "one subscript", at="x[0][1]"
    ),
    traced("method-call", bad.method_call, UnsupportedSyntaxError, "np.sum", at="x.sum"),
    traced("attribute", bad.attribute_read, UnsupportedSyntaxError, "np.", at="x.nbytes"),
    traced("np-float-power", bad.unknown_numpy, UnknownCalleeError, "register", at="np.float_power(x, 3.0)"),
    traced("user-class", bad.user_class, UnknownCalleeError, "register", at="Point(x)"),
    traced("expr-stmt", bad.expression_statement, UnsupportedSyntaxError, "assign", at="np.sin(x)"),
    traced("print-assign", bad.print_assigned, UnknownCalleeError, "register", at="print(x)"),
    traced("str-arith", bad.string_arithmetic, TracingError, "number", at='x + "a"'),
    traced("none-arith", bad.none_arithmetic, TracingError, "number", at="x * None"),
    traced("tuple-arith", bad.tuple_arithmetic, TracingError, "tuple", at="p * 2.0"),
    traced("missing-return", bad.missing_return, TracingError, "return", at="if x > 0.0"),
    traced("no-return", bad.no_return, TracingError, "return", at="y = x"),
    traced("bare-return", bad.bare_return, TracingError, "return", at="return"),
    traced("return-condition", bad.return_condition, TracingError, "1.0 if"),
    traced("return-string", bad.return_string, TracingError, "number"),
    traced("nested-tuple", bad.nested_tuple, NonScalarOutputError, "has_aux", source_too=False),
    traced(
        "tuple-output", bad.tuple_output, NonScalarOutputError, "jacobian", args=(1.0, 2.0), source_too=False
    ),
    traced(
        "value-and-grad-tuple-output",
        bad.tuple_output,
        NonScalarOutputError,
        "vjp",
        args=(1.0, 2.0),
        make=value_and_grad,
        source_too=False,
    ),
    traced("unpack-mismatch", bad.unpack_mismatch, TracingError, "same length", at="a, b"),
    traced("ifexp-mismatch", bad.conditional_mismatch, TracingError, "same kind", at="(x, x) if"),
    traced("branch-mismatch", bad.branch_mismatch, TracingError, "same kind", at="if x > 0.0"),
    traced("undefined-name", bad.undefined_name, TracingError, "define", at="undefined_thing"),
    traced("bad-module-attr", bad.misspelled_numpy, TracingError, "spelling", at="np.sinx"),
    traced("rule-arity", bad.rule_arity, TracingError, "number of arguments", at="np.sin("),
    traced("helper-try", bad.calls_helper_with_try, UnsupportedSyntaxError, "remove", at="try"),
    traced("helper-signature", bad.calls_helper_badly, TracingError, "signature", at="good(x, x, x)"),
    # --- wrt / static: refused at decoration, located at the def line --------------------------
    refused("wrt-missing", bad.product, WrtError, "['x', 'y']", at="def product", wrt="z"),
    refused("wrt-range", bad.product, WrtError, "0 to 1", at="def product", wrt=2),
    refused("wrt-type", bad.product, WrtError, "wrt=", at="def product", wrt=1.5),
    refused("wrt-static-clash", bad.product, WrtError, "static", at="def product", wrt="x", static="x"),
    refused("static-missing", bad.product, WrtError, "['x', 'y']", at="def product", static="n"),
    refused("no-params", bad.constant, WrtError, "wrt", at="def constant"),
    # --- functions whose source symgrad cannot use ---------------------------------------------
    runtime("exec", lambda: grad(bad.from_exec), SourceUnavailableError, "def"),
    runtime("exec-lambda", lambda: grad(bad.LAMBDA_FROM_EXEC), SourceUnavailableError, "notebook cell"),
    runtime("callable-without-rule", lambda: grad(np.linalg.eig), UnknownCalleeError, "symgrad.supported()"),
    runtime(
        "partial-of-star-args",
        lambda: grad(functools.partial(bad.star_args, 1.0)),
        SourceUnavailableError,
        "def",
    ),
    runtime("not-callable", lambda: grad(3.0), WrtError, "function"),
    runtime("grad-of-value-and-grad", lambda: grad(value_and_grad(bad.good)), WrtError, "grad"),
    # --- issue #12: decorators, methods, rule arguments, library functions ---------------------
    refused("decorated", bad.decorated, SourceUnavailableError, "grad(decorated.__wrapped__)", at="@doubled"),
    refused("unbound-method", bad.Model.loss, UnsupportedSyntaxError, "module-level", at="def loss"),
    traced("abs-arity", bad.abs_two_args, TracingError, "`abs(x)`", at="abs(x, x)"),
    traced("clip-arity", bad.clip_one_arg, TracingError, "`np.clip(x, lo, hi)`", at="np.clip("),
    traced("log-arity", bad.log_three_args, TracingError, "`math.log(x, base)`", at="math.log("),
    traced("where-one-arg", bad.where_one_arg, TracingError, "np.where(cond, a, b)", at="np.where("),
    traced("float-bad-string", bad.float_of_bad_string, TracingError, "arguments", at='float("one")'),
    traced("library-function", bad.library_function, UnknownCalleeError, "register", at="np.triu_indices("),
    # --- runtime: bad calls of good functions ---------------------------------------------------
    runtime("too-few-args", lambda: grad(bad.product)(1.0), SymgradError, "product(x, y)"),
    runtime("too-many-args", lambda: grad(bad.product)(1.0, 2.0, 3.0), SymgradError, "product(x, y)"),
    runtime("unknown-kwarg", lambda: grad(bad.product)(1.0, z=2.0), SymgradError, "product(x, y)"),
    runtime("int-wrt", lambda: grad(bad.product)(1, 2.0), WrtError, "float"),
    runtime("int-array-wrt", lambda: grad(bad.product)(np.arange(3), 2.0), WrtError, "float"),
    runtime("complex", lambda: grad(bad.product)(1.0 + 2.0j, 2.0), TracingError, "np.abs(w)**2"),
    runtime(
        "complex-array", lambda: grad(bad.product)(np.ones(3, dtype=complex), 2.0), TracingError, "np.real"
    ),
    runtime("string-arg", lambda: grad(bad.product)("a", 2.0), WrtError, "float"),
    runtime("object-array", lambda: grad(bad.product)(np.array([1.0, None]), 2.0), WrtError, "float"),
    runtime("shapes", lambda: grad(bad.product)(np.ones(3), np.ones(4)), ShapeError, "broadcast"),
    runtime("unhashable-static", lambda: grad(bad.static_loop, static="n")(1.5, {"n": 3}), WrtError, "tuple"),
    runtime("static-unset", lambda: grad(bad.static_loop, static="n").source, WrtError, "variant"),
]

LOCATED = [c for c in CASES if c.located]
LAZY = [c for c in CASES if c.stage == TRACE and c.source_too]


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def _raised(action: Callable[[], Any]) -> BaseException | None:
    """What `action` raises (None if nothing); never lets an exception escape."""
    try:
        action()
    except Exception as exc:
        return exc
    return None


# --- checks --------------------------------------------------------------------------------------


def check_common(err: BaseException, case: Case) -> None:
    assert isinstance(err, case.error), f"expected {case.error.__name__}, got {type(err).__name__}: {err}"
    assert isinstance(err, SymgradError)
    assert err.hint.strip(), "the hint is empty"
    assert case.hint.lower() in err.hint.lower(), f"hint {err.hint!r} does not mention {case.hint!r}"
    assert err.hint in str(err), "the message does not show the hint"
    # A location is all or nothing: never `<unknown>:None:1:`.
    if err.filename is None:
        assert err.lineno is None
        assert err.col is None
    else:
        assert isinstance(err.lineno, int) and err.lineno >= 1, f"filename set but lineno={err.lineno!r}"
        assert isinstance(err.col, int) and err.col >= 1, f"filename set but col={err.col!r}"
    assert ":None" not in str(err)


def check_location(err: SymgradError, case: Case) -> None:
    line_no = MARKERS[case.id]
    line = BAD_LINES[line_no - 1]
    assert err.filename is not None and Path(err.filename).resolve() == BAD_FILE
    assert err.lineno == line_no, f"line {err.lineno}, expected {line_no}: {line.strip()!r}"
    code = line.split("# BAD:")[0].rstrip()
    assert isinstance(err.col, int) and 1 <= err.col <= len(code), f"column {err.col} is outside {code!r}"
    assert not code[err.col - 1].isspace(), f"column {err.col} points at blank space in {code!r}"
    if case.at is not None:
        assert code[err.col - 1 :].startswith(case.at), (
            f"column {err.col} points at {code[err.col - 1 :]!r}, expected {case.at!r}"
        )
    assert f"bad_inputs.py:{line_no}:{err.col}:" in str(err)


# --- the catalogue ------------------------------------------------------------------------------


def test_catalogue_is_large_and_consistent():
    assert len(CASES) >= 45
    assert len(set(_ids(CASES))) == len(CASES), "duplicate case ids"
    assert set(MARKERS) == set(_ids(LOCATED)), (
        f"markers without a case: {sorted(set(MARKERS) - set(_ids(LOCATED)))}; "
        f"located cases without a marker: {sorted(set(_ids(LOCATED)) - set(MARKERS))}"
    )


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_error(case: Case):
    if case.stage == TRACE:
        compiled = case.build()  # tracing is lazy: decorating does not raise
        with pytest.raises(SymgradError) as info:
            compiled(*case.args, **case.kwargs)
    else:
        with pytest.raises(SymgradError) as info:
            case.build()
    check_common(info.value, case)
    if case.located:
        check_location(info.value, case)


# Array-level constructs (`@`, indexing, methods) are checked once argument shapes are known:
# before a first call, `.source` can only say that it needs them.
NEEDS_SHAPES = {"matmul", "index", "slice", "method-call", "iterate-number"}


@pytest.mark.parametrize("case", LAZY, ids=_ids(LAZY))
def test_trace_errors_also_raised_by_source(case: Case):
    compiled = case.build()
    with pytest.raises(SymgradError) as info:
        compiled.source  # noqa: B018 - the property traces the function
    if case.id in NEEDS_SHAPES:
        assert isinstance(info.value, ShapeError)
        assert "call it once first" in info.value.hint
        return
    check_common(info.value, case)
    check_location(info.value, case)


def test_no_case_raises_a_foreign_exception():
    """Every case raises a SymgradError: no KeyError, AttributeError, SyntaxError, SymPy error."""
    wrong = []
    for case in CASES:
        exc = _raised(case.trigger)
        if not isinstance(exc, SymgradError):
            wrong.append(f"{case.id}: {type(exc).__name__}: {exc}" if exc else f"{case.id}: nothing raised")
    assert not wrong, "\n".join(wrong)


# --- symgrad is still usable after an error ------------------------------------------------------


def _good_still_works() -> None:
    assert grad(bad.good)(2.0) == pytest.approx(12.0)
    assert value_and_grad(bad.good)(2.0) == pytest.approx((8.0, 12.0))
    assert grad(bad.product, wrt=("x", "y"))(np.array([1.0, 2.0]), 3.0)[1] == pytest.approx(3.0)


def test_state_not_corrupted_after_any_error():
    _good_still_works()
    for case in CASES:
        _raised(case.trigger)
        _good_still_works()


def test_repeated_errors_are_identical():
    """A failed trace caches nothing: the same object fails the same way again."""
    for case in CASES:
        if case.stage == TRACE:
            compiled = case.build()
            first = _raised(lambda: compiled(*case.args, **case.kwargs))
            second = _raised(lambda: compiled(*case.args, **case.kwargs))
        else:
            first, second = _raised(case.build), _raised(case.build)
        assert type(first) is type(second), case.id
        assert str(first) == str(second), case.id


def test_following_the_hints_fixes_the_errors():
    # DataDependentLoopError: mark the bound static.
    assert grad(bad.static_loop, wrt="x", static="n")(1.5, 3) == pytest.approx(4 * 1.5**3)
    # NonScalarOutputError: use jacobian.
    jac = np.asarray(symgrad.jacobian(bad.tuple_output, wrt=("x", "y"))(1.0, 2.0), dtype=float)
    assert jac.ravel().tolist() == pytest.approx([2.0, 1.0, 1.0, 1.0])
    # WrtError for an integer argument: pass a float.
    assert grad(bad.product, wrt=("x", "y"))(1.0, 2.0) == pytest.approx((2.0, 1.0))
    # UnknownCalleeError: register a rule.
    cube = bad.unknown_numpy
    assert isinstance(_raised(lambda: grad(cube)(0.5)), UnknownCalleeError)
    symgrad.register(np.float_power, sympy.Pow)
    try:
        assert grad(cube)(0.5) == pytest.approx(3.0 * 0.5**2)
    finally:
        symgrad.rules.CALLABLES.pop(np.float_power, None)
    assert isinstance(_raised(lambda: grad(cube)(0.5)), UnknownCalleeError)
