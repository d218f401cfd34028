"""Finite-difference reference derivatives for the symgrad tests.

Everything here evaluates the *original* Python function, never symgrad's generated code,
so a gradient that agrees with these numbers is checked against an independent oracle.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import warnings

import numpy as np

import symgrad

DEFAULT_H = 1e-6  # relative step: h = DEFAULT_H * max(1, |x|)
RICHARDSON_H = 1e-4  # a larger step suits the O(h^4) Richardson estimate
DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-7


def _is_array(value):
    return isinstance(value, np.ndarray)


def _as_float_arg(value):
    """float64 copies of the arguments: Python floats stay floats, sequences become arrays."""
    if isinstance(value, (list, tuple)):
        return np.asarray(value, dtype=np.float64)
    if _is_array(value):
        return np.array(value, dtype=np.float64)
    return float(value)


def summed_value(fn, args):
    """sum(fn(*args)) as a Python float.

    The original function may only run on floats (math.sin, `if x > 0:`); when it refuses
    arrays, it is applied element by element with `np.vectorize`, which is what symgrad's
    elementwise semantics promise.
    """
    if any(_is_array(a) for a in args):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = fn(*args)
        except (TypeError, ValueError):
            out = np.vectorize(fn, otypes=[np.float64])(*args)
        out = np.broadcast_to(
            np.asarray(out, dtype=np.float64), np.broadcast_shapes(*[np.shape(a) for a in args])
        )
        return float(np.sum(out))
    return float(fn(*args))


def _step(x, h):
    return h * max(1.0, abs(x))


def _central(fn, args, i, index, h, richardson):
    """d sum(fn) / d args[i][index] (index None for a scalar argument)."""
    x = args[i] if index is None else args[i][index]
    step = _step(float(x), h)

    def at(delta):
        moved = list(args)
        if index is None:
            moved[i] = float(x) + delta
        else:
            arr = np.array(args[i], dtype=np.float64)
            arr[index] = x + delta
            moved[i] = arr
        return summed_value(fn, moved)

    def diff(s):
        return (at(s) - at(-s)) / (2.0 * s)

    if not richardson:
        return diff(step)
    # Richardson extrapolation: (4 D(h/2) - D(h)) / 3 cancels the h^2 error term.
    return (4.0 * diff(step / 2.0) - diff(step)) / 3.0


def central_diff(fn, args, i, h=None, richardson=False):
    """Central finite difference of sum(fn(*args)) with respect to argument `i`.

    Returns a float for a scalar argument and an array shaped like the argument for an array
    argument (one difference per element). With `richardson=True` the estimate is
    extrapolated to O(h^4) (default step then RICHARDSON_H instead of DEFAULT_H).
    """
    args = [_as_float_arg(a) for a in args]
    if h is None:
        h = RICHARDSON_H if richardson else DEFAULT_H
    if not _is_array(args[i]):
        return _central(fn, args, i, None, h, richardson)
    out = np.empty(args[i].shape, dtype=np.float64)
    for index in np.ndindex(args[i].shape):
        out[index] = _central(fn, args, i, index, h, richardson)
    return out


def param_names(fn):
    return list(inspect.signature(fn).parameters)


def every_parameter(fn):
    """The parameters of `fn` without a default value, in order: pass as `wrt=` to get every partial.

    (This was symgrad's default `wrt` before E9; the default is now the first parameter.)
    """
    params = inspect.signature(fn).parameters.values()
    return tuple(p.name for p in params if p.default is inspect.Parameter.empty)


def all_partials(fn):
    """`every_parameter(fn)`, or its one name alone (a single gradient, not a 1-tuple): symgrad's
    default before E9, for tests written for functions of one or several parameters."""
    names = every_parameter(fn)
    return names[0] if len(names) == 1 else names


def wrt_positions(fn, wrt=None):
    """Positions of the `wrt` parameters; None mirrors symgrad's default, the first parameter."""
    params = list(inspect.signature(fn).parameters.values())
    if wrt is None:
        return [0]
    items = [wrt] if isinstance(wrt, (str, int)) else list(wrt)
    names = [p.name for p in params]
    return [names.index(w) if isinstance(w, str) else w % len(names) for w in items]


def as_tuple(grads, n):
    """symgrad returns a bare gradient for a single `wrt`, a tuple otherwise."""
    if n == 1 and not isinstance(grads, tuple):
        return (grads,)
    assert isinstance(grads, tuple), f"expected a tuple of {n} gradients, got {grads!r}"
    assert len(grads) == n, f"expected {n} gradients, got {len(grads)}"
    return grads


def assert_close(got, expected, rtol, atol, label=""):
    got_arr = np.asarray(got, dtype=np.float64)
    exp_arr = np.asarray(expected, dtype=np.float64)
    assert got_arr.shape == exp_arr.shape, f"{label}: shape {got_arr.shape} != {exp_arr.shape}"
    assert np.all(np.isfinite(got_arr)), f"{label}: non-finite gradient {got!r}"
    ok = np.abs(got_arr - exp_arr) <= atol + rtol * np.abs(exp_arr)
    assert np.all(ok), f"{label}: symgrad {got!r} != finite differences {expected!r}"


def check_grads(
    fn,
    args,
    wrt=None,
    rtol=DEFAULT_RTOL,
    atol=DEFAULT_ATOL,
    h=None,
    richardson=True,
    compiled=None,
    check_types=True,
):
    """Assert that symgrad's gradient of `fn` at `args` matches central differences.

    `wrt` is passed to `symgrad.grad` as given (names, positions or None, the first parameter;
    `every_parameter(fn)` checks every partial). Float arguments
    must give float gradients, array arguments arrays of the same shape. The reference is a
    Richardson-extrapolated central difference of the original function unless
    `richardson=False`. `compiled` reuses an existing `grad` object; `check_types=False`
    leaves the float-in/float-out check to the caller. Returns the gradients (as a tuple).
    """
    args = [_as_float_arg(a) for a in args]
    positions = wrt_positions(fn, wrt)
    g = compiled if compiled is not None else symgrad.grad(fn, wrt=wrt)
    grads = as_tuple(g(*args), len(positions))
    wrong_types = []
    for pos, got in zip(positions, grads):
        label = f"{getattr(fn, '__name__', fn)} d/d{param_names(fn)[pos]} at {args}"
        if _is_array(args[pos]):
            assert isinstance(got, np.ndarray), f"{label}: array argument gave {type(got).__name__}"
            assert got.shape == args[pos].shape, f"{label}: gradient shape {got.shape} != {args[pos].shape}"
        expected = central_diff(fn, args, pos, h=h, richardson=richardson)
        assert_close(got, expected, rtol, atol, label)
        if not _is_array(args[pos]) and type(got) is not float:
            wrong_types.append(f"{label}: float argument gave {type(got).__name__}")
    # checked after the values, so that a wrong type does not hide a wrong value
    assert not (check_types and wrong_types), "; ".join(wrong_types)
    return grads


def assert_float_results(results, label=""):
    """Every result of a call on Python floats is a Python float (not int, not np.float64)."""
    flat = [r for item in results for r in (item if isinstance(item, tuple) else (item,))]
    bad = [type(r).__name__ for r in flat if type(r) is not float]
    assert not bad, f"{label}: float arguments gave {bad}"


def write_module(folder, name, text):
    """Import `text` as the module `name` from a file in `folder` (symgrad reads its source)."""
    (folder / f"{name}.py").write_text(text)
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))


def richardson_gradient(fn, args, i=0, h=1e-4):
    """d fn / d args[i] by Richardson-extrapolated central differences (O(h^4)) of the
    original function, whose output is one number (not broadcast against the argument)."""
    base = np.array(args[i], dtype=np.float64)
    out = np.zeros_like(base)

    def at(index, delta):
        moved = base.copy()
        moved[index] += delta
        return float(fn(*args[:i], moved, *args[i + 1 :]))

    for index in np.ndindex(base.shape):
        step = h * max(1.0, abs(base[index]))
        diff = [(at(index, s) - at(index, -s)) / (2 * s) for s in (step, step / 2)]
        out[index] = (4 * diff[1] - diff[0]) / 3
    return out


def compile_c_harness(folder, stem, harness=None):
    """`cc -O2 -Wall -Werror` of an exported `<stem>.c` and its `<stem>_test.c` in `folder`
    (symgrad export --lang c): the harness program's path."""
    harness = folder / (harness or f"{stem}_test")
    command = ["cc", "-O2", "-Wall", "-Werror", "-o", str(harness), f"{stem}.c", f"{stem}_test.c", "-lm"]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr + "\n" + (folder / f"{stem}.c").read_text()
    return harness


def run_c_harness(harness, args=()):
    """The harness's printed results, `[(label, value), ...]`, at `args` (none: its built-in
    values)."""
    command = [str(harness), *(repr(float(a)) for a in args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    return [(line.split()[0], float(line.split()[1])) for line in done.stdout.splitlines()]
