"""`symgrad.supported()`, the one listing of what symgrad differentiates, and a case for each entry.

The cases are tests/registry_cases.py's. Each case checked here (every elementwise and SciPy
rule's example, and the array entries no other table reaches) is checked the same way: its value
is NumPy's / SciPy's own; its gradient (reverse mode) against Richardson central differences of
the original function and against PyTorch float64 autograd of its twin; its jvp (forward mode)
against a Richardson central difference along the tangent and against torch; its second
derivatives (`symgrad.hessian`) against torch's Hessian of the twin. A rule's example runs on
six points of its domain away from kinks at once (arrays: one call each), its Hessian at two of
them. The finite differences of an example with `stop_gradient`/`detach` would see through
them: those are checked against torch's `detach` only. Cases of the existing tables
(tests/test_linalg.py, tests/test_shape_functions.py, tests/test_custom_rules.py) run the same
checks in their own files and are not repeated here.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch checks need the torch extra: pip install torch==2.13.0")
pytest.importorskip("scipy", reason="the SciPy rules' cases need SciPy")

import registry_cases as cases  # noqa: E402 - after the skips
import torch_oracle  # noqa: E402
from helpers import check_grads, every_parameter, richardson_gradient  # noqa: E402

import symgrad  # noqa: E402
from symgrad import arraytrace, registry, rules  # noqa: E402

HERE = [c for c in cases.CASES if c.checked_in is None]
TOL = {"rtol": 1e-9, "atol": 1e-11}


def numpy_value(fn, args):
    """`fn(*args)` as NumPy computes it; a rule's example that takes floats only (`math.log`)
    element by element, which is what symgrad's elementwise semantics promise."""
    try:
        return np.asarray(fn(*args), dtype=np.float64)
    except (TypeError, ValueError):  # `max(x, 0.5)` of an array: a truth value asked of it
        return np.vectorize(fn, otypes=[np.float64])(*args)


def directional_difference(fn, args, tangents, h=1e-4):
    """d/dt fn(args + t tangents) at 0, by Richardson-extrapolated central differences."""

    def at(t):
        return numpy_value(fn, [a + t * v for a, v in zip(args, tangents)])

    diff = [(at(s) - at(-s)) / (2 * s) for s in (h, h / 2)]
    return (4 * diff[1] - diff[0]) / 3


def torch_value_and_grad(twin, args):
    """PyTorch's value and gradient of the twin; one point at a time where it takes numbers
    only (`max(x, 0.5)` of a tensor of points asks for one truth value)."""
    try:
        return torch_oracle.value_and_grad(twin, args)
    except RuntimeError:
        points = [torch_oracle.value_and_grad(twin, [float(a[k]) for a in args]) for k in range(len(args[0]))]
        values = np.array([float(v) for v, _ in points])
        return values, [np.array([float(g[i]) for _, g in points]) for i in range(len(args))]


def uses_stop_gradient(case):
    return case.rule is not None and ("stop_gradient" in case.rule.example or "detach" in case.rule.example)


@pytest.mark.parametrize("case", HERE, ids=[c.name for c in HERE])
def test_value_gradient_jvp_and_second_order(case):
    args = case.make()
    wrt = every_parameter(case.fn)
    value, grads = symgrad.value_and_grad(case.fn, wrt=wrt)(*args)
    grads = grads if isinstance(grads, tuple) else (grads,)
    np.testing.assert_allclose(value, numpy_value(case.fn, args), rtol=1e-12, atol=1e-13)  # NumPy's own value
    elementwise = np.ndim(value) > 0  # a rule's example on arrays of points: one output each
    if elementwise and not uses_stop_gradient(case):
        check_grads(case.fn, args, wrt=wrt, compiled=symgrad.grad(case.fn, wrt=wrt), check_types=False)
    elif not elementwise:
        for i, got in enumerate(grads):
            np.testing.assert_allclose(got, richardson_gradient(case.fn, args, i), rtol=1e-7, atol=1e-8)
    tangents = tuple(np.linspace(-1.0, 1.5, np.size(a)).reshape(np.shape(a)) for a in args)
    jvp_value, tangent = symgrad.jvp(case.fn, wrt=wrt)(args, tangents)
    np.testing.assert_allclose(jvp_value, value, rtol=1e-13)
    if not uses_stop_gradient(case):
        np.testing.assert_allclose(
            tangent, directional_difference(case.fn, args, tangents), rtol=1e-7, atol=1e-8
        )

    assert case.twin is not None, f"{case.name}: write its torch twin, or list it in NO_TORCH_TWIN"
    t_value, t_grads = torch_value_and_grad(case.twin, args)
    np.testing.assert_allclose(value, t_value, **TOL)
    for got, expected in zip(grads, t_grads):
        np.testing.assert_allclose(got, expected, **TOL)
    t_tangent = sum((g * t if elementwise else np.sum(g * t)) for g, t in zip(t_grads, tangents))
    np.testing.assert_allclose(tangent, t_tangent, **TOL)

    if elementwise:  # the Hessian of a rule's example in (x, y), at two of its points
        for x, y in list(zip(*args))[:2]:
            got = symgrad.hessian(case.fn, wrt=wrt)(float(x), float(y))
            point = torch.tensor([x, y], dtype=torch.float64)
            want = torch.autograd.functional.hessian(lambda v: case.twin(v[0], v[1]), point).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-10, err_msg=case.name)
    else:
        (x,) = args
        got = symgrad.hessian(case.fn)(x)
        want = torch.autograd.functional.hessian(case.twin, torch.tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10, err_msg=case.name)


# --- the listing ---------------------------------------------------------------------------------


def test_every_supported_function_has_a_case_or_a_reason():
    entries = symgrad.supported()
    missing = [e.name for e in entries if not cases.cases_for(e) and e.name not in cases.LEFT_OUT]
    assert not missing, (
        f"no case calls {missing}: add a user function calling it, its torch twin and example "
        "arguments to NEW_CASES in tests/registry_cases.py (or a case to the table of "
        "tests/test_linalg.py / tests/test_shape_functions.py), or list it in LEFT_OUT there with "
        "the reason and what to write instead"
    )
    names = {e.name for e in entries}
    assert not [n for n in cases.LEFT_OUT if n not in names], (
        "LEFT_OUT names a function symgrad does not list"
    )
    assert not [n for n in cases.LEFT_OUT if n in names and cases.cases_for(registry_entry(n))], (
        "a LEFT_OUT entry has a case now: remove it from LEFT_OUT"
    )


def registry_entry(name):
    return next(e for e in symgrad.supported() if e.name == name)


def test_the_listing_is_read_from_the_tracers_tables():
    entries = symgrad.supported()
    functions = [e.function for e in entries]
    for table in (rules.RULES, rules.SCIPY_RULES):
        for rule in table:
            for name in rule.names:
                fn = rules._resolve(name)
                assert fn is None or any(f is fn or f == fn for f in functions), name
    assert all(any(f is fn for f in functions) for fn in arraytrace.ARRAY_CALLS if fn is not None)
    assert all(any(f is fn for f in functions) for fn in arraytrace.CONSTRUCTORS)
    assert {f"ndarray.{m}" for m in arraytrace.METHODS | set(arraytrace.PROPERTIES)} <= {
        e.name for e in entries
    }
    assert len({e.name for e in entries}) == len(entries)
    assert [e.kind for e in entries] == sorted((e.kind for e in entries), key=registry.KINDS.index)
    assert sum(len(symgrad.supported(kind)) for kind in registry.KINDS) == len(entries)


def test_names_are_spelled_as_users_write_them():
    by_name = {e.name: e for e in symgrad.supported()}
    assert (
        by_name["np.linalg.solve"].function is np.linalg.solve and by_name["np.linalg.solve"].kind == "linalg"
    )
    assert by_name["np.sin"].function is np.sin and by_name["np.sin"].kind == "elementwise"
    assert by_name["math.sin"].kind == "elementwise" and by_name["abs"].function is abs
    assert by_name["scipy.special.ndtr"].kind == "scipy" and by_name["scipy.special.softmax"].kind == "scipy"
    assert (
        by_name["ndarray.reshape"].function is np.ndarray.reshape
        and by_name["symgrad.logsumexp"].kind == "array"
    )
    assert by_name["zip"].kind == "python"


def test_the_listing_is_read_only_and_rules_stays_as_it_was():
    entries = symgrad.supported()
    assert isinstance(entries, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entries[0].name = "changed"  # type: ignore[misc]
    assert symgrad.RULES is rules.RULES and isinstance(symgrad.RULES, tuple)
    with pytest.raises(ValueError, match="kind must be one of"):
        symgrad.supported("ufunc")
    assert "kind" in inspect.signature(symgrad.supported).parameters


def test_every_case_has_a_torch_twin():
    assert not [c.name for c in cases.CASES if c.twin is None]
