"""Run HIPS autograd's own gradient tests through symgrad, with `autograd` replaced by a shim.

Usage (from the repository root; the autograd tests are never copied into this repository)::

    python -m benchmarks.autograd_suite PATH

PATH is autograd's `tests/` folder, a checkout of the autograd repository, or a (bare) git
directory of it (its `HEAD:tests` is extracted to a temporary folder). Options: `--files` (test
files, default the six gradient files of DEFAULT_FILES), `--all` (every `tests/test_*.py`),
`--json OUT` (every test's record), `--top N` (refusal reasons shown), `--no-auto-static`,
`-k EXPR` (pytest's selection).

The shim (`install_shim`) puts modules into `sys.modules`: `autograd.numpy` *is* NumPy,
`autograd.numpy.random` is `numpy.random`, `autograd.scipy.*` is SciPy, and `autograd.grad`,
`value_and_grad`, `elementwise_grad`, `jacobian`, `hessian`, `make_jvp` and
`autograd.test_util.check_grads` / `combo_check` / `check_equivalent` call symgrad. Every other
autograd name exists but raises `ShimUnsupported` when used: such a test is reported as
"unsupported by the shim", not as a symgrad failure.

`check_grads(f, argnum=0, modes=None, order=2)(*args)` mirrors autograd's own check
(`autograd/test_util.py`): a random direction `u` in the `argnum` arguments and a random
cotangent `v` of the output; the analytic `<u, symgrad vjp(v)>` (symgrad's `grad` when the
output is a scalar, its `vjp` otherwise) must match `<v, (f(x + eps u / 2) - f(x - eps u / 2)) / eps>`
of the original function in float64, with autograd's constants: `eps = 1e-6`, close when
`|a - b| < 1e-6` or `|a - b| / |a + b| < 1e-6`. Mode "fwd" checks `symgrad.jvp(f)` the same
way. `order=2` (autograd's default) then checks symgrad's `vjp` (and `jvp`) of its own gradient
program `symgrad.grad(f)` against central differences of that program, as autograd checks its
vjp-of-vjp against differences of its vjp. Arguments that are not floats or float arrays (ints,
bools, None, strings, tuples) are passed as symgrad `static` parameters (autograd has no such
notion; `--no-auto-static` turns this off). A check whose arguments are complex runs in reverse
mode, order 1 (symgrad's jvp and higher orders take real arguments only), with autograd's
convention: the gradient g of a real function is df/dx - i df/dy, so the directional
derivative along u is Re(sum(u * g)). A test all of whose checks are complex is reported
separately ("complex", with its own pass count and failure reasons); the real-valued checks of
a mixed test count as usual.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_FILES = (
    "test_scalar_ops.py",
    "test_binary_ops.py",
    "test_numpy.py",
    "test_systematic.py",
    "test_linalg.py",
    "test_wrappers.py",
)
EPS = 1e-6  # autograd's test_util.EPS: the central-difference step
TOL = 1e-6  # autograd's test_util.TOL (absolute) ...
RTOL = 1e-6  # ... and RTOL (relative to |a + b|)

CATEGORIES = (
    "passed",
    "symgrad_error",
    "wrong_gradient",
    "other_failure",
    "complex",
    "shim_unsupported",
    "no_symgrad_call",
)


class ShimUnsupported(Exception):  # noqa: N818 - a verdict, reported as such
    """An autograd API the shim does not map onto symgrad."""


class GradientMismatch(AssertionError):  # noqa: N818 - a verdict, reported as such
    """symgrad's derivative differs from central finite differences of the original function."""


@dataclass
class TestState:
    """What the shim saw during one test."""

    symgrad_calls: int = 0
    real_checks: int = 0
    complex_checks: int = 0
    complex_failures: list[str] = field(default_factory=list)  # per failed complex check: why


STATE = TestState()
AUTO_STATIC = True


def _symgrad() -> Any:
    import symgrad

    STATE.symgrad_calls += 1
    return symgrad


# --- the shim's helpers ------------------------------------------------------------------------


def _is_complex(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_is_complex(v) for v in value)
    if isinstance(value, dict):
        return any(_is_complex(v) for v in value.values())
    return bool(np.iscomplexobj(value)) if isinstance(value, (complex, np.ndarray, np.generic)) else False


def _is_traced_kind(value: Any) -> bool:
    """A float or a float array: what a symgrad parameter that is not static holds."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (float, np.floating)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "fc"
    return False


def _wrt(argnum: Any) -> int | tuple[int, ...]:
    if isinstance(argnum, (list, tuple)):
        return tuple(int(a) for a in argnum)
    return int(argnum)


def _indices(argnum: Any) -> tuple[int, ...]:
    spec = _wrt(argnum)
    return spec if isinstance(spec, tuple) else (spec,)


def _static(
    args: Sequence[Any], kwargs: dict[str, Any], argnum: Any, fun: Any = None
) -> tuple[int | str, ...]:
    """Positions and names of the arguments that are not floats or float arrays, and (given
    `fun`) the names of its parameters left at a default that is none either (a test's
    `def fun(x, y, num=num)`, `def fun(a, _r=np.sum)`: autograd never differentiates those)."""
    if not AUTO_STATIC:
        return ()
    wrt = set(_indices(argnum))
    found: list[int | str] = [i for i, a in enumerate(args) if i not in wrt and not _is_traced_kind(a)]
    found += [k for k, v in kwargs.items() if not _is_traced_kind(v)]
    return tuple(found + _defaults_left(fun, args, kwargs, wrt))


def _defaults_left(fun: Any, args: Sequence[Any], kwargs: dict[str, Any], wrt: set[int]) -> list[str]:
    """`fun`'s parameters the call leaves at a default that is not a float or float array."""
    import symgrad

    if fun is None or isinstance(fun, symgrad.compiled.Compiled):
        return []  # a symgrad transform keeps the static names it was made with
    try:
        params = list(inspect.signature(symgrad.callables.as_function(fun)).parameters.values())
    except Exception:  # symgrad's own refusal comes when the test calls it
        return []
    found = []
    for i, p in enumerate(params):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is p.empty or p.name in kwargs:
            continue
        if (p.kind is not p.KEYWORD_ONLY and i < len(args)) or i in wrt:
            continue
        if not _is_traced_kind(p.default):
            found.append(p.name)
    return found


def _guard(args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    if _is_complex(list(args)) or _is_complex(kwargs):
        STATE.complex_checks += 1  # the test is counted with the complex ones


def _as_tuple(value: Any, several: bool) -> tuple[Any, ...]:
    return tuple(value) if several else (value,)


def _inner(a: Any, b: Any) -> float:
    """Sum of elementwise products, through tuples and lists; of complex values its real part
    (a direction u and a gradient g = df/dx - i df/dy give the directional derivative)."""
    if isinstance(a, (tuple, list)):
        return float(sum(_inner(x, y) for x, y in zip(a, b)))
    return float(np.real(np.sum(np.asarray(a) * np.asarray(b))))


def _random_like(value: Any, rng: np.random.Generator) -> Any:
    if isinstance(value, (tuple, list)):
        return type(value)(_random_like(v, rng) for v in value)
    if np.iscomplexobj(value):
        return _random_like(np.real(value), rng) + 1j * _random_like(np.real(value), rng)
    if np.ndim(value) == 0:
        return float(rng.standard_normal())
    return rng.standard_normal(np.shape(value))


def _shape_of(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_shape_of(v) for v in value)
    return np.shape(value)


def scalar_close(a: float, b: float) -> bool:
    """autograd's test_util.scalar_close."""
    diff = abs(a - b)
    return bool(diff < TOL or (abs(a + b) > 0 and diff / abs(a + b) < RTOL))


def _combine(a: Any, b: Any, scale: float) -> Any:
    """(a - b) * scale, through tuples."""
    if isinstance(a, (tuple, list)):
        return tuple(_combine(x, y, scale) for x, y in zip(a, b))
    dtype = np.result_type(np.asarray(a), np.asarray(b), np.float64)  # complex values stay complex
    return (np.asarray(a, dtype=dtype) - np.asarray(b, dtype=dtype)) * scale


def _numeric_jvp(
    fun: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    idx: Sequence[int],
    dirs: Sequence[Any],
) -> Any:
    """Central difference of `fun` along `dirs` in the arguments at `idx`: autograd's numerical jvp."""
    plus, minus = list(args), list(args)
    for i, d in zip(idx, dirs):
        plus[i] = _moved(args[i], d, EPS / 2)
        minus[i] = _moved(args[i], d, -EPS / 2)
    with np.errstate(all="ignore"):
        return _combine(fun(*plus, **kwargs), fun(*minus, **kwargs), 1.0 / EPS)


def _moved(value: Any, direction: Any, step: float) -> Any:
    """value + step * direction, through tuples and lists (autograd's vector spaces)."""
    if isinstance(value, (tuple, list)):
        return type(value)(_moved(v, d, step) for v, d in zip(value, direction))
    return value + direction * step


def _name(fun: Any) -> str:
    return getattr(fun, "__name__", type(fun).__name__)


def _positional(fun: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """All arguments as one positional tuple, for `symgrad.jvp(f)(primals, tangents)`."""
    if not kwargs:
        return tuple(args)
    try:
        # the signature symgrad differentiates: a NumPy function's own one has `out=`, `where=`...
        bound = inspect.signature(_symgrad().callables.as_function(fun)).bind(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ShimUnsupported(f"cannot pass keyword arguments to symgrad.jvp: {exc}") from None
    bound.apply_defaults()
    if bound.kwargs:
        raise ShimUnsupported("symgrad.jvp takes positional primals; the function has keyword-only ones")
    return tuple(bound.args)


def _check_rev(
    fun: Callable[..., Any],
    reference: Callable[..., Any],
    argnum: Any,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    stage: str,
    rng: np.random.Generator,
) -> None:
    """symgrad's vjp of `fun` against central differences of `reference` (the same function)."""
    idx = _indices(argnum)
    several = isinstance(_wrt(argnum), tuple)
    static = _static(args, kwargs, argnum, fun)
    with np.errstate(all="ignore"):
        y = reference(*args, **kwargs)
    dirs = [_random_like(args[i], rng) for i in idx]
    cot = _random_like(y, rng)
    sg = _symgrad()
    if not isinstance(y, (tuple, list)) and np.ndim(y) == 0 and not np.iscomplexobj(y):
        grads = sg.grad(fun, wrt=_wrt(argnum), static=static)(*args, **kwargs)
        grads = tuple(np.asarray(g) * cot for g in _as_tuple(grads, several))
    else:
        _, pullback = sg.vjp(fun, wrt=_wrt(argnum), static=static)(*args, **kwargs)
        grads = _as_tuple(pullback(cot), several)
    for i, g in zip(idx, grads):
        if _shape_of(g) != _shape_of(args[i]):
            raise GradientMismatch(
                f"{stage} check of {_name(fun)}: gradient of argument {i} has shape {np.shape(g)}, "
                f"the argument {np.shape(args[i])}"
            )
    analytic = _inner(dirs, grads)
    numeric = _inner(cot, _numeric_jvp(reference, args, kwargs, idx, dirs))
    if not scalar_close(analytic, numeric):
        raise GradientMismatch(
            f"{stage} check of {_name(fun)} failed: symgrad {analytic!r}, central differences {numeric!r}"
        )


def _check_fwd(
    fun: Callable[..., Any],
    reference: Callable[..., Any],
    argnum: Any,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    stage: str,
    rng: np.random.Generator,
) -> None:
    """symgrad's jvp of `fun` against central differences of `reference`."""
    idx = _indices(argnum)
    static = _static(args, kwargs, argnum, fun)
    dirs = [_random_like(args[i], rng) for i in idx]
    sg = _symgrad()
    primals = _positional(fun, args, kwargs)
    _, tangent = sg.jvp(fun, wrt=_wrt(argnum), static=static)(primals, tuple(dirs))
    numeric = _numeric_jvp(reference, args, kwargs, idx, dirs)
    if _shape_of(tangent) != _shape_of(numeric):
        raise GradientMismatch(
            f"{stage} check of {_name(fun)}: jvp has shape {_shape_of(tangent)}, the output {_shape_of(numeric)}"
        )
    probe = _random_like(numeric, rng)
    if not scalar_close(_inner(probe, tangent), _inner(probe, numeric)):
        raise GradientMismatch(
            f"{stage} check of {_name(fun)} failed: symgrad jvp differs from central differences"
        )


_ADAPTERS: dict[tuple[int, int, tuple[str, ...]], Callable[..., Any]] = {}


def _positional_adapter(fun: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """autograd's `argnum` counts the call's positional arguments; symgrad's `wrt` positions
    count the declared parameters, and a function with a `*` parameter (np.einsum's operands,
    a test's `lambda *args: ...`) declares one for all of them. For such a function, a module
    file with `def einsum_3(a0, a1, a2): return numpy.einsum(a0, a1, a2)` (`_fn(a0, ...)` for a
    Python function) for this call's arity, whose positions are the call's (symgrad reads its
    source); `fun` itself otherwise."""
    if getattr(fun, "_grad_of", None) is not None:
        return fun
    from symgrad import callables

    dotted: str | None = None
    try:
        if isinstance(fun, types.FunctionType):  # a test's `lambda *args: ...`: called as `_fn`
            wrapper = fun
        else:
            wrapper, dotted = callables.as_function(fun), callables._dotted_name(fun)
            if dotted is None:
                return fun
    except Exception:  # symgrad's own refusal comes when the test calls it
        return fun
    params = inspect.signature(wrapper).parameters.values()
    if not any(p.kind is p.VAR_POSITIONAL for p in params):
        return fun
    key = (id(fun), len(args), tuple(sorted(kwargs)))
    if key not in _ADAPTERS:
        names = [f"a{i}" for i in range(len(args))]
        keywords = ", ".join(f"{k}={k}" for k in sorted(kwargs))
        head = ", ".join([*names, *(f"{k}=None" for k in sorted(kwargs))])
        call = ", ".join([*names, *([keywords] if keywords else [])])
        base = dotted.rpartition(".")[2] if dotted is not None else "function"
        name = f"{base}_{len(args)}"
        callee = dotted if dotted is not None else "_fn"
        _ADAPTERS[key] = _module_function(name, f"    return {callee}({call})\n", head, fun)
    return _ADAPTERS[key]


def _summed(fun: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Callable[..., Any]:
    """For a function returning a list of arrays (np.split), a module file with
    `def split_summed(a0, a1): total = 0.0; for part in _fn(a0, a1): total = total + numpy.sum(part)`,
    whose gradient is the one order 2 differentiates again (as grad of an array output is that
    of its sum)."""
    names = [f"a{i}" for i in range(len(args))]
    head = ", ".join([*names, *(f"{k}=None" for k in sorted(kwargs))])
    call = ", ".join([*names, *(f"{k}={k}" for k in sorted(kwargs))])
    name = f"{getattr(fun, '__name__', 'fn')}_summed"
    body = f"    total = 0.0\n    for part in _fn({call}):\n        total = total + numpy.sum(part)\n    return total\n"
    return _module_function(name, body, head, fun)


def _module_function(name: str, body: str, head: str, fun: Callable[..., Any]) -> Callable[..., Any]:
    """`def name(head): body` written to a module file of its own (symgrad reads source) and
    imported, with `numpy` and the tested function as `_fn` in its globals."""
    folder = Path(tempfile.mkdtemp(prefix="symgrad_shim_"))
    (folder / f"{name}.py").write_text(f"import numpy\n\n\ndef {name}({head}):\n{body}")
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module._fn = fun  # type: ignore[attr-defined]
    spec.loader.exec_module(module)
    return getattr(module, name)  # type: ignore[no-any-return]


def _check(
    fun: Callable[..., Any], argnum: Any, modes: Sequence[str], order: int, args: Any, kwargs: Any
) -> None:
    if _is_complex(list(args)) or _is_complex(kwargs):
        STATE.complex_checks += 1  # counted apart: a failing one leaves the test's real checks be
        rng = np.random.default_rng(STATE.complex_checks)
        adapted = _positional_adapter(fun, args, kwargs)
        try:
            _check_rev(adapted, adapted, argnum, args, kwargs, "rev (complex)", rng)
        except Exception as exc:
            STATE.complex_failures.append(f"{type(exc).__name__}: {_first_line(exc)}")
        return
    fun = _positional_adapter(fun, args, kwargs)
    STATE.real_checks += 1
    rng = np.random.default_rng(STATE.real_checks)
    if "rev" in modes:
        _check_rev(fun, fun, argnum, args, kwargs, "rev order-1", rng)
    if "fwd" in modes:
        _check_fwd(fun, fun, argnum, args, kwargs, "fwd order-1", rng)
    if order > 1:
        # symgrad's own gradient program, differentiated again, against its central differences.
        # (grad of an array output is that of its sum; of a list of arrays, `_summed` of it.)
        with np.errstate(all="ignore"):
            several = isinstance(fun(*args, **kwargs), (list, tuple))
        target = _summed(fun, args, kwargs) if several else fun
        gradient = _symgrad().grad(target, wrt=_wrt(argnum), static=_static(args, kwargs, argnum, target))
        if "rev" in modes:
            _check_rev(gradient, gradient, argnum, args, kwargs, "rev order-2", rng)
        if "fwd" in modes:
            _check_fwd(gradient, gradient, argnum, args, kwargs, "fwd order-2", rng)


# --- the autograd API, on symgrad --------------------------------------------------------------


def check_grads(
    fun: Callable[..., Any], argnum: Any = 0, modes: Any = None, order: int = 2
) -> Callable[..., None]:
    """autograd.test_util.check_grads: symgrad's derivatives against central differences."""
    chosen = ["fwd", "rev"] if modes is None else list(modes)

    def check(*args: Any, **kwargs: Any) -> None:
        _check(fun, argnum, chosen, order, args, kwargs)

    return check


def combo_check(fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., None]:
    """autograd.test_util.combo_check: check_grads over every combination of arguments."""
    from itertools import product

    def _combo(*arg_lists: Any, **kwarg_lists: Any) -> None:
        kwarg_pairs = [[(k, x) for x in xs] for k, xs in kwarg_lists.items()]
        for chosen_args in product(*arg_lists):
            for chosen_kwargs in product(*kwarg_pairs):
                check_grads(fun, *args, **kwargs)(*chosen_args, **dict(chosen_kwargs))

    return _combo


def check_equivalent(x: Any, y: Any) -> None:
    """autograd.test_util.check_equivalent: same shape, inner products with a random vector close."""
    assert _shape_of(x) == _shape_of(y), f"shape mismatch: {_shape_of(x)} and {_shape_of(y)}"
    probe = _random_like(x, np.random.default_rng(0))
    assert scalar_close(_inner(probe, x), _inner(probe, y)), f"value mismatch:\nx: {x}\ny: {y}"


def grad(fun: Callable[..., Any], argnum: Any = 0) -> Callable[..., Any]:
    """autograd.grad on symgrad.grad (wrt = argnum; non-float arguments static)."""

    def gradfun(*args: Any, **kwargs: Any) -> Any:
        _guard(args, kwargs)
        target = _as_symgrad(fun, args, kwargs)
        return _symgrad().grad(target, wrt=_wrt(argnum), static=_static(args, kwargs, argnum, target))(
            *args, **kwargs
        )

    gradfun._grad_of = (fun, argnum)  # type: ignore[attr-defined]  # grad(grad(f)) is symgrad's own
    return gradfun


def _as_symgrad(fun: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """A shim gradient (`grad(f)` of this module) as the symgrad object it stands for, so that
    `grad(grad(f))` differentiates symgrad's gradient, not the shim's Python wrapper."""
    spec = getattr(fun, "_grad_of", None)
    if spec is None:
        return fun
    inner, argnum = spec
    return _symgrad().grad(
        _as_symgrad(inner, args, kwargs), wrt=_wrt(argnum), static=_static(args, kwargs, argnum, inner)
    )


def elementwise_grad(fun: Callable[..., Any], argnum: Any = 0) -> Callable[..., Any]:
    """autograd.elementwise_grad (the vjp with a cotangent of ones) is symgrad.grad's summed output."""
    return grad(fun, argnum)


def value_and_grad(fun: Callable[..., Any], argnum: Any = 0) -> Callable[..., Any]:
    """autograd.value_and_grad on symgrad.value_and_grad."""

    def both(*args: Any, **kwargs: Any) -> Any:
        _guard(args, kwargs)
        static = _static(args, kwargs, argnum, fun)
        return _symgrad().value_and_grad(fun, wrt=_wrt(argnum), static=static)(*args, **kwargs)

    return both


def _reshaped(result: Any, shape: tuple[int, ...]) -> Any:
    """autograd's layout (output shape + input shape) from symgrad's matrix for numbers."""
    array = np.asarray(result)
    return array.reshape(shape) if array.size == math.prod(shape) else result


def jacobian(fun: Callable[..., Any], argnum: int = 0) -> Callable[..., Any]:
    """autograd.jacobian on symgrad.jacobian, shaped output shape + argument shape."""

    def jac(*args: Any, **kwargs: Any) -> Any:
        _guard(args, kwargs)
        out = _symgrad().jacobian(fun, wrt=argnum, static=_static(args, kwargs, argnum, fun))(*args, **kwargs)
        return _reshaped(out, np.shape(fun(*args, **kwargs)) + np.shape(args[argnum]))

    return jac


def hessian(fun: Callable[..., Any], argnum: int = 0) -> Callable[..., Any]:
    """autograd.hessian on symgrad.hessian, shaped argument shape twice."""

    def hess(*args: Any, **kwargs: Any) -> Any:
        _guard(args, kwargs)
        out = _symgrad().hessian(fun, wrt=argnum, static=_static(args, kwargs, argnum, fun))(*args, **kwargs)
        return _reshaped(out, np.shape(args[argnum]) * 2)

    return hess


def make_jvp(fun: Callable[..., Any], argnum: int = 0) -> Callable[..., Any]:
    """autograd.make_jvp(f)(x)(v) -> (value, tangent), on symgrad.jvp."""

    def at(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        _guard(args, kwargs)
        compiled = _symgrad().jvp(fun, wrt=argnum, static=_static(args, kwargs, argnum, fun))
        primals = _positional(fun, args, kwargs)
        return lambda v: compiled(primals, (v,))

    return at


def _unsupported(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ShimUnsupported(f"autograd.{name} has no symgrad counterpart in the shim")

    refuse.__name__ = name.rpartition(".")[2]
    return refuse


def _module(name: str, attrs: dict[str, Any]) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)

    def missing(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _unsupported(f"{name.partition('.')[2] or name}.{attr}".removeprefix("autograd."))

    module.__getattr__ = missing  # type: ignore[method-assign]
    return module


def install_shim() -> dict[str, Any]:
    """Put the `autograd` shim into `sys.modules`; returns the previous entries."""
    import builtins

    api = {
        "grad": grad,
        "value_and_grad": value_and_grad,
        "elementwise_grad": elementwise_grad,
        "jacobian": jacobian,
        "hessian": hessian,
        "make_jvp": make_jvp,
        "tuple": builtins.tuple,
        "list": builtins.list,
        "dict": builtins.dict,
        "isinstance": builtins.isinstance,
        "type": builtins.type,
    }
    modules: dict[str, Any] = {
        "autograd": _module("autograd", api),
        "autograd.numpy": np,
        "autograd.numpy.random": np.random,
        "autograd.test_util": _module(
            "autograd.test_util",
            {
                "check_grads": check_grads,
                "combo_check": combo_check,
                "check_equivalent": check_equivalent,
                "scalar_close": scalar_close,
            },
        ),
        "autograd.tracer": _module("autograd.tracer", {"isbox": lambda x: False}),
        "autograd.builtins": _module(
            "autograd.builtins", {k: api[k] for k in ("tuple", "list", "dict", "isinstance", "type")}
        ),
    }
    for sub in ("core", "extend", "util", "misc", "wrap_util"):
        modules[f"autograd.{sub}"] = _module(f"autograd.{sub}", {})
    try:
        import scipy
        import scipy.linalg
        import scipy.signal
        import scipy.special
        import scipy.stats

        modules["autograd.scipy"] = scipy
        for sub in ("special", "stats", "linalg", "signal"):
            modules[f"autograd.scipy.{sub}"] = getattr(scipy, sub)
        for dist in ("norm", "t", "gamma", "beta", "poisson", "dirichlet", "multivariate_normal", "chi2"):
            modules[f"autograd.scipy.stats.{dist}"] = getattr(scipy.stats, dist)
    except ImportError:  # scipy is optional: autograd.scipy tests then fail to import
        pass
    previous = {k: sys.modules.get(k) for k in modules}
    sys.modules.update(modules)
    root = modules["autograd"]
    for key, value in modules.items():
        parts = key.split(".")
        if len(parts) == 2:
            setattr(root, parts[1], value)
    return previous


# --- which NumPy names symgrad has rules for ---------------------------------------------------


def _registered(obj: Any) -> bool:
    """Whether symgrad knows `obj`: an elementwise rule (symgrad.rules) or an array operation."""
    from symgrad import arraytrace, rules

    try:
        return (
            rules.lookup(obj) is not None or obj in arraytrace.ARRAY_CALLS or obj in arraytrace.CONSTRUCTORS
        )
    except TypeError:  # unhashable
        return False


def numpy_names(tree: ast.AST, alias: str = "np") -> set[str]:
    """Dotted names `np.a.b` referenced in `tree` (outermost attribute chains rooted at `alias`)."""
    found: set[str] = set()
    inner: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            parts: list[str] = []
            cur: ast.expr = node
            while isinstance(cur, ast.Attribute):
                inner.add(id(cur))
                parts.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id == alias:
                found.add(".".join(reversed(parts)))
    return found


def classify_name(dotted: str) -> str:
    """'supported', 'unsupported' or 'neutral' (constants, dtypes, random setup, version)."""
    if dotted.split(".")[0] in ("random", "testing"):
        return "neutral"
    obj: Any = np
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return "unsupported"
    if not callable(obj) or (isinstance(obj, type) and issubclass(obj, np.generic)):
        return "neutral"
    if isinstance(obj, types.ModuleType):
        return "neutral"
    return "supported" if _registered(obj) else "unsupported"


def _module_functions(tree: ast.Module) -> dict[str, ast.AST]:
    """Module-level defs and `name = lambda ...` of a test file."""
    table: dict[str, ast.AST] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            table.setdefault(stmt.name, stmt)  # a redefinition: pytest collects the last one; fine
        elif isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Lambda):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    table[target.id] = stmt.value
    return table


def referenced_numpy(path: Path, function: str) -> set[str]:
    """np names in a test function and, transitively, in the module-level helpers it names."""
    tree = ast.parse(path.read_text())
    table = _module_functions(tree)
    for stmt in tree.body:  # the last definition wins, as at import
        if isinstance(stmt, ast.FunctionDef):
            table[stmt.name] = stmt
    seen: set[str] = set()
    todo = [function]
    names: set[str] = set()
    while todo:
        current = todo.pop()
        if current in seen or current not in table:
            continue
        seen.add(current)
        node = table[current]
        names |= numpy_names(node)
        todo += [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in table]
    return names


# --- running and recording ---------------------------------------------------------------------


@dataclass
class Record:
    """One collected test and what became of it."""

    file: str
    name: str
    category: str
    error_class: str = ""
    message: str = ""
    symgrad_calls: int = 0
    real_checks: int = 0
    complex_checks: int = 0
    complex_outcome: str = ""  # of a "complex" test: passed, symgrad_error, wrong_gradient, ...
    complex_failures: list[str] = field(default_factory=list)  # of its complex checks: why each failed
    numpy_names: list[str] = field(default_factory=list)
    unsupported_names: list[str] = field(default_factory=list)
    where: str = ""  # a SymgradError's file:line:col; for another exception, its innermost symgrad frame
    hinted: bool = False  # a SymgradError with a non-empty hint
    seconds: float = 0.0


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__


def where(exc: BaseException | None) -> tuple[str, bool]:
    """A SymgradError's location (and whether it has a hint), or another exception's innermost symgrad frame."""
    if exc is None:
        return "", False
    if getattr(exc, "lineno", None) is not None and hasattr(exc, "hint"):
        return f"{Path(str(exc.filename)).name}:{exc.lineno}:{exc.col}", bool(str(exc.hint).strip())
    if hasattr(exc, "hint"):
        return "(no location)", bool(str(exc.hint).strip())
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        parts = Path(tb.tb_frame.f_code.co_filename).parts
        if "symgrad" in parts[:-1]:
            found = f"{'/'.join(parts[-2:])}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found, False


def categorize(exc: BaseException | None, state: TestState) -> tuple[str, str, str]:
    """(category, error class, first message line) of a finished test; a test whose checks
    were all complex is "complex" (its outcome: `outcome`)."""
    category, cls, line = outcome(exc, state)
    if (
        state.complex_checks
        and not state.real_checks
        and category not in ("shim_unsupported", "no_symgrad_call")
    ):
        return "complex", cls, line
    return category, cls, line


def _complex_outcome(exc: BaseException | None, state: TestState) -> str:
    """A complex test passes when it raised nothing and every complex check held."""
    found = outcome(exc, state)[0]
    if found == "passed" and state.complex_failures:
        return "failed check"
    return found


def outcome(exc: BaseException | None, state: TestState) -> tuple[str, str, str]:
    """What became of a test, complex or not: passed, or the kind of its failure."""
    from symgrad import SymgradError

    if exc is None:
        return ("no_symgrad_call" if state.symgrad_calls == 0 else "passed"), "", ""
    cls, line = type(exc).__name__, _first_line(exc)
    if isinstance(exc, SymgradError):
        return "symgrad_error", cls, line
    if isinstance(exc, ShimUnsupported):
        return "shim_unsupported", cls, line
    if isinstance(exc, AttributeError) and str(exc).startswith("module 'numpy' has no attribute"):
        return "shim_unsupported", cls, f"autograd.numpy extension: {line}"  # e.g. np.make_diagonal
    if isinstance(exc, GradientMismatch):
        return "wrong_gradient", cls, line
    if state.symgrad_calls == 0:
        return "no_symgrad_call", cls, line
    return "other_failure", cls, line


class Recorder:
    """pytest plugin: resets the shim's state per test and records each outcome."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.records: list[Record] = []
        self.collect_errors: list[tuple[str, str]] = []
        self._start = 0.0
        self._exc: BaseException | None = None
        self._failed_phase = False

    def pytest_runtest_setup(self, item: Any) -> None:
        global STATE
        STATE = TestState()
        self._start = time.perf_counter()
        self._exc = None
        self._failed_phase = False

    def pytest_runtest_makereport(self, item: Any, call: Any) -> None:
        if call.excinfo is not None and not self._failed_phase and call.when in ("setup", "call"):
            self._exc = call.excinfo.value
            self._failed_phase = True

    def pytest_runtest_teardown(self, item: Any) -> None:
        path = Path(str(item.fspath))
        category, cls, message = categorize(self._exc, STATE)
        complex_outcome = _complex_outcome(self._exc, STATE) if category == "complex" else ""
        base = getattr(item, "originalname", None) or item.name
        names = sorted(referenced_numpy(path, base))
        location, hinted = where(self._exc)
        self.records.append(
            Record(
                file=path.name,
                name=item.name,
                category=category,
                error_class=cls,
                message=message,
                symgrad_calls=STATE.symgrad_calls,
                real_checks=STATE.real_checks,
                complex_checks=STATE.complex_checks,
                complex_outcome=complex_outcome,
                complex_failures=list(STATE.complex_failures),
                numpy_names=names,
                unsupported_names=[n for n in names if classify_name(n) == "unsupported"],
                where=location,
                hinted=hinted,
                seconds=round(time.perf_counter() - self._start, 3),
            )
        )

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.collect_errors.append((str(report.nodeid), str(report.longrepr).strip().splitlines()[-1]))


def tests_folder(path: Path, scratch: Path) -> Path:
    """autograd's tests folder from a tests folder, a checkout, or a git directory."""
    if (path / "conftest.py").exists() or any(path.glob("test_*.py")):
        source = path
    elif (path / "tests").is_dir():
        source = path / "tests"
    else:  # a git directory (bare or .git): extract HEAD:tests
        archive = subprocess.run(
            ["git", f"--git-dir={path}", "archive", "HEAD", "tests"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive, check=True)
        return scratch / "tests"
    target = scratch / "tests"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def run(
    tests: Path, files: Sequence[str], scratch: Path, keyword: str | None = None
) -> tuple[list[Record], list[tuple[str, str]]]:
    """Run the given autograd test files under the shim; the records of every test."""
    import warnings

    import pytest

    install_shim()
    ini = scratch / "pytest.ini"
    ini.write_text("[pytest]\n")  # not autograd's own configuration (its warnings-as-errors)
    recorder = Recorder(tests)
    argv = [
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-c",
        str(ini),
        "--rootdir",
        str(tests),
        "--no-header",
        "--tb=no",
        "-rN",
        "-W",
        "ignore",
    ]
    if keyword:
        argv += ["-k", keyword]
    argv += [str(tests / f) for f in files]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.main(argv, plugins=[recorder])
    return recorder.records, recorder.collect_errors


def _reason_key(message: str) -> str:
    """A message with its quoted names blanked, so refusals of the same kind group together."""
    return re.sub(r"`[^`]*`|'[^']*'", "…", message)


def in_metric(record: Record) -> bool:
    """Real-valued, symgrad-exercising tests whose np names symgrad all has rules for."""
    real = record.category in ("passed", "symgrad_error", "wrong_gradient", "other_failure")
    return real and not record.unsupported_names


def report(records: Sequence[Record], collect_errors: Sequence[tuple[str, str]], top: int) -> str:
    """The per-file table, the target metric and the commonest refusals, as Markdown."""
    out: list[str] = []
    header = ["file", "tests", *CATEGORIES, "mixed complex"]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + " --- |" * len(header))
    files = sorted({r.file for r in records})
    totals: Counter[str] = Counter()
    for name in [*files, "total"]:
        rows = [r for r in records if name in ("total", r.file)]
        counts = Counter(r.category for r in rows)
        mixed = sum(1 for r in rows if r.complex_checks and r.real_checks)
        cells = [str(len(rows)), *(str(counts.get(c, 0)) for c in CATEGORIES), str(mixed)]
        label = f"**{name}**" if name == "total" else name
        out.append(f"| {label} | " + " | ".join(cells) + " |")
        if name != "total":
            totals.update(counts)
    for node, line in collect_errors:
        out.append(f"\ncollection error: {node}: {line}")

    real = [
        r for r in records if r.category in ("passed", "symgrad_error", "wrong_gradient", "other_failure")
    ]
    metric = [r for r in records if in_metric(r)]
    passed_metric = sum(r.category == "passed" for r in metric)
    passed_real = sum(r.category == "passed" for r in real)
    pct = lambda a, b: f"{100.0 * a / b:.1f}%" if b else "n/a"  # noqa: E731
    out.append("")
    out.append(
        f"**Target metric** (real-valued tests using only NumPy names symgrad has rules for): "
        f"{passed_metric} of {len(metric)} pass = {pct(passed_metric, len(metric))} (target 90%)"
    )
    out.append(
        f"All real-valued tests that reach symgrad: {passed_real} of {len(real)} pass = {pct(passed_real, len(real))}"
    )
    per_file = ", ".join(
        f"{f}: {sum(r.category == 'passed' for r in metric if r.file == f)}/{sum(r.file == f for r in metric)}"
        for f in files
    )
    out.append(f"Metric per file: {per_file}")
    missing = Counter(n for r in real for n in r.unsupported_names)
    if missing:
        out.append(
            "NumPy names without a symgrad rule (tests excluded from the metric): "
            + ", ".join(f"np.{n} ({c})" for n, c in missing.most_common())
        )

    failures = [r for r in records if r.category in ("symgrad_error", "wrong_gradient", "other_failure")]
    reasons: Counter[tuple[str, str]] = Counter()
    example: dict[tuple[str, str], str] = {}
    blanked: dict[tuple[str, str], Counter[str]] = {}
    for r in failures:
        key = (r.error_class, _reason_key(r.message))
        reasons[key] += 1
        example.setdefault(key, f"{r.file}::{r.name}")
        blanked.setdefault(key, Counter()).update(re.findall(r"`[^`]*`|'[^']*'", r.message))
    out.append("")
    out.append(f"Top {top} failure reasons (error class: first line, quoted names blanked as …):")
    out.append("")
    out.append("| count | class | reason | commonest blanked names | example |")
    out.append("| --- | --- | --- | --- | --- |")
    for key, count in reasons.most_common(top):
        cls, msg = key
        names = ", ".join(f"{n} ({c})" for n, c in blanked[key].most_common(6))
        cells = [str(count), cls, msg, textwrap.shorten(names, 120), example[key]]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    refusals = [r for r in records if r.category == "symgrad_error"]
    located = sum(1 for r in refusals if r.where.split(":")[0] in files)
    hinted = sum(r.hinted for r in refusals)
    out.append("")
    out.append(
        f"SymgradErrors naming file:line:col in the autograd test file: {located} of {len(refusals)}; "
        f"with a hint: {hinted} of {len(refusals)}"
    )
    out += _complex_report(records, top)
    others = [r for r in records if r.category in ("wrong_gradient", "other_failure")]
    if others:
        out.append("")
        out.append("Wrong gradients and crashes:")
        out += [f"- {r.file}::{r.name}: {r.error_class}: {r.message} (at {r.where or '?'})" for r in others]
    unsupported = Counter(_reason_key(r.message) for r in records if r.category == "shim_unsupported")
    if unsupported:
        out.append("")
        out.append(
            "Unsupported by the shim: " + "; ".join(f"{m} ({c})" for m, c in unsupported.most_common())
        )
    return "\n".join(out)


def _complex_report(records: Sequence[Record], top: int) -> list[str]:
    """The tests all of whose checks are complex, and every complex check, apart from the real ones."""
    chosen = [r for r in records if r.category == "complex"]
    checks = sum(r.complex_checks for r in records)
    failures = [f for r in records for f in r.complex_failures]
    if not chosen and not checks:
        return []
    counts = Counter(r.complex_outcome for r in chosen)
    reasons = Counter(_reason_key(f) for f in failures)
    raised = [r for r in chosen if r.complex_outcome not in ("passed", "failed check")]
    reasons.update(_reason_key(f"{r.error_class}: {r.message}") for r in raised)
    out = [
        "",
        f"Complex-valued tests (every check complex): {counts['passed']} of {len(chosen)} pass. "
        "Complex checks (reverse mode, order 1; in these and in the mixed tests): "
        f"{checks - len(failures)} of {checks} pass.",
        "",
        "| count | why a complex check or test failed |",
        "| --- | --- |",
    ]
    for msg, count in reasons.most_common(top):
        out.append(f"| {count} | {msg.replace('|', chr(92) + '|')} |")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the suite, print the tables."""
    global AUTO_STATIC
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.autograd_suite", description=__doc__.splitlines()[0]
    )
    parser.add_argument("path", type=Path, help="autograd's tests/ folder, a checkout, or its git directory")
    parser.add_argument("--files", nargs="+", default=list(DEFAULT_FILES))
    parser.add_argument("--all", action="store_true", help="every tests/test_*.py")
    parser.add_argument("--json", type=Path, help="write every test's record here")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--no-auto-static", action="store_true", help="pass non-float arguments as traced")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression")
    options = parser.parse_args(argv)
    AUTO_STATIC = not options.no_auto_static
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="autograd-suite-") as tmp:
        scratch = Path(tmp)
        tests = tests_folder(options.path.resolve(), scratch)
        files = sorted(p.name for p in tests.glob("test_*.py")) if options.all else options.files
        records, errors = run(tests, files, scratch, options.keyword)
    print()
    print(
        f"autograd's tests through symgrad ({len(files)} files, {time.perf_counter() - start:.0f} s; "
        f"auto-static {'on' if AUTO_STATIC else 'off'})"
    )
    print()
    print(report(records, errors, options.top))
    if options.json:
        options.json.write_text(json.dumps([asdict(r) for r in records], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
