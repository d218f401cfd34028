"""Issue #12, front end: decorators, edited sources, static flags, rule arguments, inf/nan
constants, library functions and methods. Oracles: the original functions run by Python and
NumPy, central finite differences, and PyTorch float64 where it helps.

The refusals themselves (class, file:line:col, hint) are in the catalogue of
tests/bad_inputs.py; here, what needs more than one call: that following a hint works, and
that what should still work does."""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import os
import sys
import textwrap
import time
import types
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy

import symgrad
from symgrad import (
    ShapeError,
    SourceChangedError,
    SourceUnavailableError,
    TracingError,
    UnknownCalleeError,
    UnsupportedSyntaxError,
    grad,
    value_and_grad,
    vjp,
)
from symgrad import trace as trace_module
from tests import bad_inputs as bad


def _fd(fn: Any, x: float, h: float = 1e-6) -> float:
    return (fn(x + h) - fn(x - h)) / (2 * h)


def _line_of(fn: Any, text: str) -> int:
    """File line of the first line of `fn`'s source that contains `text`."""
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if text in line)


# --- S4: decorated functions ---------------------------------------------------------------------


def test_S4_wrapped_function_is_refused_not_differentiated_undecorated():
    assert bad.decorated(0.7) == pytest.approx(0.98)  # the wrapper doubles x * x
    with pytest.raises(SourceUnavailableError) as info:
        grad(bad.decorated)
    err = info.value
    assert "@doubled" in err.message and "wrapper" in err.message
    assert err.lineno == _line_of(bad.decorated, "@doubled")
    assert "grad(decorated.__wrapped__)" in err.hint


def test_S4_following_the_hint_differentiates_the_undecorated_function():
    undecorated = bad.decorated.__wrapped__
    assert grad(undecorated)(0.7) == pytest.approx(_fd(undecorated, 0.7))  # 1.4, as the hint says
    # Writing the decorator's effect into the function gives the decorated one's derivative.
    assert grad(_doubled_by_hand)(0.7) == pytest.approx(_fd(bad.decorated, 0.7), rel=1e-8)  # 2.8


def _doubled_by_hand(x):
    return 2.0 * (x * x)


def _registry(fn):
    """A decorator that records the function and returns it unchanged."""
    _REGISTERED.append(fn)
    return fn


_REGISTERED: list[Any] = []


@_registry
def registered(x):
    return np.sin(x) * x


def _times_three(fn):
    """A wrapper without functools.wraps: its own source is what grad reads."""

    def wrapper(x):
        return 3.0 * fn(x)

    return wrapper


@_times_three
def tripled(x):
    return x * x


def _wraps_twice(fn):
    @functools.wraps(fn)
    def outer(*args):
        return fn(*args)

    return outer


def test_S4_decorators_that_keep_the_function_still_work():
    assert grad(registered)(0.7) == pytest.approx(_fd(registered, 0.7))
    assert grad(tripled)(0.7) == pytest.approx(_fd(tripled, 0.7))  # 4.2: the wrapper is traced


def test_S4_stacked_grad_and_custom_derivative_still_work():
    second = grad(grad(registered))
    assert second(0.7) == pytest.approx(_fd(grad(registered), 0.7), rel=1e-6)
    with pytest.raises(SourceUnavailableError) as info:
        grad(_wraps_twice(bad.decorated))  # two levels of functools.wraps
    assert "inspect.unwrap(decorated)" in info.value.hint
    assert grad(_calls_custom)(0.3) == pytest.approx(2.0 * (1.0 - np.tanh(0.3) ** 2))


@symgrad.custom_derivative
def _softclip(x):
    return np.tanh(x)


@_softclip.defderiv
def _softclip_derivative(x):
    return 1.0 - np.tanh(x) ** 2


def _calls_custom(x):
    return 2.0 * _softclip(x)


# --- S5: the source file edited after import -----------------------------------------------------


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> tuple[types.ModuleType, Path]:
    name = f"s5_{uuid.uuid4().hex}"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    monkeypatch.setitem(sys.modules, name, module)
    return module, path


def _rewrite(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text))
    later = time.time() + 10  # linecache compares size and mtime: make the edit visible
    os.utime(path, (later, later))


SQUARE = """
    import numpy as np

    def f(x):
        return x ** 2
"""
CUBE_SAME_LINES = SQUARE.replace("x ** 2", "x ** 3")
CUBE_MOVED = SQUARE.replace("def f", "# a new comment line\n\ndef f").replace("x ** 2", "x ** 3")


@pytest.mark.parametrize("edited", [CUBE_SAME_LINES, CUBE_MOVED], ids=["same-lines", "moved"])
def test_S5_edited_source_is_refused(tmp_path, monkeypatch, edited):
    module, path = _module(tmp_path, monkeypatch, SQUARE)
    _rewrite(path, edited)
    assert module.f(0.7) == pytest.approx(0.49)  # what runs is still x ** 2
    with pytest.raises(SourceChangedError) as info:
        value_and_grad(module.f)
    err = info.value
    assert isinstance(err, SourceUnavailableError)
    assert err.filename == str(path) and str(path) in err.message
    assert err.lineno is not None and "def f" in path.read_text().splitlines()[err.lineno - 1]
    assert "importlib.reload" in err.hint


def test_S5_following_the_hint_differentiates_the_new_text(tmp_path, monkeypatch):
    module, path = _module(tmp_path, monkeypatch, SQUARE)
    _rewrite(path, CUBE_SAME_LINES)
    with pytest.raises(SourceChangedError):
        grad(module.f)
    module = importlib.reload(module)
    value, slope = value_and_grad(module.f)(0.7)
    assert value == pytest.approx(module.f(0.7)) and value == pytest.approx(0.343)
    assert slope == pytest.approx(_fd(module.f, 0.7))


def test_S5_edits_that_do_not_change_the_code_still_work(tmp_path, monkeypatch):
    module, path = _module(tmp_path, monkeypatch, SQUARE)
    _rewrite(path, SQUARE.replace("return x ** 2", "# only a comment\n        return x ** 2"))
    assert value_and_grad(module.f)(0.7) == pytest.approx((0.49, 1.4))


KINDS = '''
    from __future__ import annotations

    import math
    import numpy as np
    from numpy import sin

    SCALE = 2.0

    def make(k):
        def closure(x):
            return k * np.sin(x)
        return closure

    closure = make(3.0)

    class Holder:
        __factor = 5.0

        @staticmethod
        def static(x: float) -> float:
            return math.exp(x) * sin(x)

    def helper(t):
        return t * SCALE

    def uses_helper(x):
        """A docstring."""
        y = -0.0
        for i in range(2):
            y = y + helper(x) * (i + 1.5)
        return y if x > 0 else -y
'''


def test_S5_unchanged_files_are_not_refused(tmp_path, monkeypatch):
    module, _ = _module(tmp_path, monkeypatch, KINDS)
    for fn in (module.closure, module.Holder.static, module.uses_helper):
        assert grad(fn)(0.7) == pytest.approx(_fd(fn, 0.7), rel=1e-7), fn.__qualname__


# Found by the fuzzer: `np.f(...)` compiles to a shorter call form in a module that imports
# `np` than on its own, so a jump over many such calls needs EXTENDED_ARG in one code only.
def _branchy(branches: int) -> str:
    body = "".join(
        f"    {'if' if k == 0 else 'elif'} x > {k / 10}:\n        x = np.sin(np.cos(x)) + np.exp(x)\n"
        for k in range(branches)
    )
    return f"import numpy as np\n\n\ndef f(x):\n{body}    return x\n"


def test_S5_long_jumps_over_method_calls_are_not_refused(tmp_path, monkeypatch):
    for branches in range(1, 16):
        module, _ = _module(tmp_path, monkeypatch, _branchy(branches))
        symgrad.parse.load(module.f)  # raises SourceChangedError on a false mismatch
    assert grad(module.f)(0.05) == pytest.approx(_fd(module.f, 0.05), rel=1e-6)


def test_S5_check_costs_little():
    source = symgrad.parse.load(bad.good)
    start = time.perf_counter()
    for _ in range(20):
        symgrad.parse._check_unchanged(source)
    assert (time.perf_counter() - start) / 20 < 0.01  # well under the cost of a trace


# --- E3: static string flags, messages in the user's terms, `or` ----------------------------------


def flagged(x, mode):
    if mode == "double":
        return 2.0 * x * x
    if mode != "square" and mode in ("negate", "minus"):
        return -x * x
    if mode is None:
        return x
    return x * x


@pytest.mark.parametrize("mode", ["double", "square", "negate", "other", None])
def test_E3_static_string_flags(mode):
    derivative = grad(flagged, wrt="x", static=("mode",))
    assert derivative(0.7, mode) == pytest.approx(_fd(lambda t: flagged(t, mode), 0.7))


def picks(x, y):
    return x or y


def picks_static(x, n):
    return x * (n or 3)


def picks_and(x, y):
    return (x and y) + 1.0


@pytest.mark.parametrize("x, y", [(0.7, 0.4), (0.0, 0.4), (-1.5, 0.0)])
def test_E3_or_picks_an_operand_as_python_does(x, y):
    # Python: `x or y` is x unless x is 0; `x and y` is y unless x is 0.
    for fn, x_wins in ((picks, x != 0.0), (picks_and, x == 0.0)):
        value, grads = value_and_grad(fn, wrt=("x", "y"))(x, y)
        assert value == pytest.approx(fn(x, y))
        assert grads == pytest.approx((1.0, 0.0) if x_wins else (0.0, 1.0)), fn.__name__


@pytest.mark.parametrize("n", [0, 2])
def test_E3_or_on_static_values(n):
    assert grad(picks_static, wrt="x", static="n")(0.7, n) == pytest.approx(float(n or 3))


def test_E3_messages_name_the_call_as_written():
    for fn, word in [
        (bad.abs_two_args, "`abs`"),
        (bad.clip_one_arg, "`np.clip`"),
        (bad.log_three_args, "`math.log`"),
        (bad.where_one_arg, "`np.where(cond)`"),
    ]:
        with pytest.raises(TracingError) as info:
            grad(fn)(0.7)
        text = str(info.value)
        assert word in text
        for internal in ("_clip", "_log", "_where", "Abs", "Piecewise"):
            assert internal not in text, text


def test_E3_where_hint_works():
    assert grad(_where_three)(0.7) == pytest.approx(1.0)
    assert grad(_where_three)(-0.7) == pytest.approx(0.0)


def _where_three(x):
    return np.where(x > 0.0, x, 0.0)


def square(x):
    return x * x


def test_E3_vjp_cotangent_of_the_wrong_shape_is_named():
    _, pullback = vjp(square)(np.ones(3))
    with pytest.raises(ShapeError) as info:
        pullback(np.ones(4))
    assert "cotangent" in str(info.value) and "(4,)" in str(info.value)
    assert "x:" not in str(info.value)
    assert pullback(np.arange(3.0)) == pytest.approx(2.0 * np.arange(3.0))  # the hint's shape works


# --- E6: inf and nan constants ---------------------------------------------------------------------


def log_or_minus_inf(x):
    return np.where(x > 0.0, np.log(np.abs(x)), -np.inf)


def clipped_above(x):
    return np.clip(x, float("-inf"), 1.0) * 2.0


def capped(x):
    return np.minimum(x, float("inf")) + np.maximum(x, -math.inf)


def nan_where_negative(x):
    return np.where(x > 0.0, x * x, np.nan)


def running_max(x):
    best = float("-inf")
    for k in range(3):
        best = max(best, x * (k - 1.0))
    return best


def adds_nan(x):
    return x * 0.0 + float("nan") + math.nan


def _torch_grad(fn: Any, x: np.ndarray) -> np.ndarray:
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    fn(t, torch).sum().backward()
    return t.grad.numpy()


TORCH = {
    log_or_minus_inf: lambda t, torch: torch.where(t > 0, torch.log(t.abs()), -math.inf),
    clipped_above: lambda t, torch: torch.clamp(t, max=1.0) * 2.0,
    capped: lambda t, torch: 2.0 * t,
    nan_where_negative: lambda t, torch: torch.where(t > 0, t * t, math.nan),
}


@pytest.mark.parametrize("fn", list(TORCH), ids=lambda f: f.__name__)
def test_E6_inf_and_nan_constants_in_arrays(fn):
    x = np.array([0.7, -1.5, 2.5, 0.25])
    value, slope = value_and_grad(fn)(x)
    np.testing.assert_array_equal(value, fn(x))  # inf and nan where the original has them
    np.testing.assert_allclose(slope, _torch_grad(TORCH[fn], x), rtol=1e-12)


@pytest.mark.parametrize("fn", [*TORCH, running_max, adds_nan], ids=lambda f: f.__name__)
@pytest.mark.parametrize("x", [0.7, -1.5])
def test_E6_inf_and_nan_constants_on_floats(fn, x):
    with np.errstate(all="ignore"):
        expected = float(fn(x))
    value, slope = value_and_grad(fn)(x)
    np.testing.assert_array_equal(value, expected)
    if math.isfinite(expected) and fn is not adds_nan:
        assert slope == pytest.approx(_fd(fn, x), rel=1e-7)


# --- E7: functions of installed libraries -----------------------------------------------------------


def zeta_library(x):
    return special.zeta(x, 2.0)


def gamma_cdf_library(x):
    return stats.gamma.cdf(x, 2.0)


special: Any = None  # scipy.special and scipy.stats, set by the test (SciPy is optional)
stats: Any = None


@pytest.mark.parametrize("fn, call", [(zeta_library, "special.zeta"), (gamma_cdf_library, "stats.gamma.cdf")])
def test_E7_library_functions_are_refused_at_the_users_call(fn, call, monkeypatch):
    monkeypatch.setitem(globals(), "special", pytest.importorskip("scipy.special"))
    monkeypatch.setitem(globals(), "stats", pytest.importorskip("scipy.stats"))
    with pytest.raises(UnknownCalleeError) as info:
        grad(fn)(np.array([0.5, 1.5]))
    err = info.value
    assert err.filename == __file__ and err.lineno == _line_of(fn, call)
    assert f"`{call}`" in err.message and "scipy" in err.message
    assert "site-packages" not in str(err)


def test_E7_following_the_hint_for_an_array_function():
    torch = pytest.importorskip("torch")
    x = np.array([0.5, 1.5, -0.25])
    t = torch.tensor(x, requires_grad=True)
    torch.softmax(t, 0)[0].backward()
    assert grad(_first_softmax_by_hand)(x) == pytest.approx(t.grad.numpy(), rel=1e-12)


def _first_softmax_by_hand(x):
    e = np.exp(x - np.max(x))
    return (e / np.sum(e))[0]


LIBRARY = """
    import math

    def softplus(t):
        return math.log1p(math.exp(t))
"""


def _uses_library(x):
    return _LIB.softplus(x) * 2.0


_LIB: Any = None


def test_E7_an_installed_library_without_rule_gets_the_register_hint(tmp_path, monkeypatch):
    module, _ = _module(tmp_path, monkeypatch, LIBRARY)
    monkeypatch.setattr(
        trace_module, "_LIBRARY_ROOTS", (*trace_module._LIBRARY_ROOTS, str(tmp_path) + os.sep)
    )
    monkeypatch.setitem(globals(), "_LIB", module)
    with pytest.raises(UnknownCalleeError) as info:
        grad(_uses_library)(0.7)
    assert info.value.filename == __file__ and info.value.lineno == _line_of(_uses_library, "softplus")
    assert "symgrad.register(_LIB.softplus" in info.value.hint
    symgrad.register(module.softplus, lambda t: sympy.log(1 + sympy.exp(t)))
    try:
        assert grad(_uses_library)(0.7) == pytest.approx(2.0 / (1.0 + math.exp(-0.7)))
    finally:
        symgrad.rules.CALLABLES.pop(module.softplus, None)


def test_E7_user_helpers_are_still_inlined(tmp_path, monkeypatch):
    module, _ = _module(tmp_path, monkeypatch, LIBRARY)  # not under a library folder
    monkeypatch.setitem(globals(), "_LIB", module)
    assert grad(_uses_library)(0.7) == pytest.approx(2.0 / (1.0 + math.exp(-0.7)))


# --- E10: methods -------------------------------------------------------------------------------------


def loss(w, x):  # what the hint of bad.Model.loss says to write
    return w * x * x


def test_E10_bound_methods_work_and_unbound_methods_name_their_def():
    assert grad(bad.MODEL.loss)(0.7) == pytest.approx(_fd(bad.MODEL.loss, 0.7))  # self.w is data
    for method in (bad.Model.loss,):
        with pytest.raises(UnsupportedSyntaxError) as info:
            grad(method)
        err = info.value
        assert err.filename == bad.__file__ and err.lineno == _line_of(bad.Model.loss, "def loss")
        assert "is a method" in err.message and "not a Python function" not in err.message
        assert 'grad(loss, wrt="x")(model.w, x)' in err.hint


def test_E10_following_the_hint_gives_the_methods_gradient():
    model = bad.MODEL
    assert grad(loss, wrt="x")(model.w, 0.7) == pytest.approx(_fd(model.loss, 0.7))


class _WithStatic:
    @staticmethod
    def scaled(x):
        return 3.0 * x * x


def test_E10_static_methods_are_plain_functions():
    assert grad(_WithStatic.scaled)(0.7) == pytest.approx(_fd(_WithStatic.scaled, 0.7))
