"""symgrad over a corpus of user-style functions (tests/corpus.py).

For every case: gradients against finite differences of the original function, values of
`value_and_grad` against calling the function, array evaluation against point-by-point
evaluation, and deterministic generated source. For the cases with a hand-written SymPy
expression, gradients against `sympy.diff`; for smooth cases, second derivatives.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy
from corpus import CORPUS, SECOND_ORDER_CASES, SYMPY_CASES, Case
from helpers import (
    all_partials,
    as_tuple,
    assert_close,
    assert_float_results,
    central_diff,
    check_grads,
    param_names,
)

import symgrad

TESTS = Path(__file__).resolve().parent

_GRADS: dict[str, object] = {}


def cached_grad(case: Case):
    """One compiled gradient per case (tracing is the slow part)."""
    if case.id not in _GRADS:
        _GRADS[case.id] = symgrad.grad(case.fn, wrt=all_partials(case.fn))
    return _GRADS[case.id]


def ids(cases):
    return [case.id for case in cases]


def n_params(case):
    return len(param_names(case.fn))


def pointwise(case):
    """Gradient tuples at each point, from Python floats."""
    g = cached_grad(case)
    return [as_tuple(g(*point), n_params(case)) for point in case.points]


# --- the corpus itself -------------------------------------------------------------------------


def test_corpus_size_and_coverage():
    assert len(CORPUS) >= 65
    assert len(SYMPY_CASES) >= 25
    assert len(SECOND_ORDER_CASES) >= 10
    assert len({case.id for case in CORPUS}) == len(CORPUS), "case ids must be unique"
    categories = {case.category for case in CORPUS}
    assert categories >= {
        "arith",
        "control",
        "loops",
        "calls",
        "closures",
        "math",
        "numpy",
        "builtins",
        "constants",
        "stopgrad",
    }
    for case in CORPUS:
        assert case.points, case.id
        for point in case.points:
            assert len(point) == n_params(case), case.id
            assert all(type(v) is float for v in point), case.id


# --- the finite-difference oracle itself ----------------------------------------------------------


def test_helpers_central_diff_accuracy():
    from corpus import cubic, kinetic_energy, relu_branch

    exact = 9 * 0.3**2 - 4 * 0.3 + 1
    assert abs(central_diff(cubic, [0.3], 0) - exact) < 1e-7
    assert abs(central_diff(cubic, [0.3], 0, richardson=True) - exact) < 1e-9
    # arrays: one difference per element of the summed output; a scalar gets the sum
    m, v = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    np.testing.assert_allclose(central_diff(kinetic_energy, [m, v], 1), m * v, rtol=1e-8)
    assert abs(central_diff(kinetic_energy, [m, 3.0], 1) - 9.0) < 1e-6
    # a function that only runs on floats is applied elementwise
    np.testing.assert_allclose(central_diff(relu_branch, [np.array([-1.0, 2.0])], 0), [0.0, 1.0], atol=1e-8)


def test_helpers_detect_wrong_gradients():
    from corpus import cubic, horner

    with pytest.raises(AssertionError):
        check_grads(cubic, [0.3], compiled=symgrad.grad(horner))
    check_grads(cubic, [0.3], wrt="x")
    check_grads(cubic, [np.array([0.3, -1.0])], wrt=0)


# --- (a) gradients against finite differences --------------------------------------------------


@pytest.mark.parametrize("case", CORPUS, ids=ids(CORPUS))
def test_gradient_matches_finite_differences(case):
    g = cached_grad(case)
    results = []
    for point in case.points:
        # stop_gradient / no_grad: the reference freezes the stopped values at the point.
        reference = case.fn if case.frozen is None else case.frozen(*point)
        results.append(
            check_grads(reference, point, wrt=all_partials(case.fn), compiled=g, check_types=False)
        )
    assert_float_results(results, case.id)


# --- (b) value_and_grad ------------------------------------------------------------------------


@pytest.mark.parametrize("case", CORPUS, ids=ids(CORPUS))
def test_value_and_grad(case):
    vg = symgrad.value_and_grad(case.fn, wrt=all_partials(case.fn))
    for point, expected_grads in zip(case.points, pointwise(case)):
        value, grads = vg(*point)
        expected = float(case.fn(*point))
        assert math.isclose(value, expected, rel_tol=1e-12, abs_tol=1e-13), (case.id, point, value, expected)
        grads = as_tuple(grads, n_params(case))
        for got, want in zip(grads, expected_grads):
            assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-13), (
                case.id,
                point,
                grads,
                expected_grads,
            )
        assert type(value) is float, (case.id, point, value)
        assert all(type(got) is float for got in grads), (case.id, point, grads)


# --- (c) against sympy.diff of an independently written expression ------------------------------

PRECISION = 30


def sympy_symbols(case):
    return [sympy.Symbol(name, real=True) for name in param_names(case.fn)]


def sympy_diff(expr, symbol, n=1):
    """sympy.diff, with floor's derivative (left unevaluated by SymPy) set to 0: the points
    avoid the integers where floor jumps."""
    d = sympy.diff(expr, symbol, n)
    return d.replace(
        lambda e: isinstance(e, sympy.Derivative) and e.expr.has(sympy.floor), lambda e: sympy.S.Zero
    ).doit()


def sympy_at(expr, symbols, point):
    values = {s: sympy.Float(v, PRECISION) for s, v in zip(symbols, point)}
    return float(sympy.N(expr.xreplace(values), PRECISION))


@pytest.mark.parametrize("case", SYMPY_CASES, ids=ids(SYMPY_CASES))
def test_gradient_matches_sympy(case):
    symbols = sympy_symbols(case)
    expr = sympy.sympify(case.sym(*symbols))
    derivatives = [sympy_diff(expr, s) for s in symbols]
    for point, grads in zip(case.points, pointwise(case)):
        # the hand-written expression is the same function
        assert math.isclose(sympy_at(expr, symbols, point), case.fn(*point), rel_tol=1e-12, abs_tol=1e-12)
        for name, got, d in zip(param_names(case.fn), grads, derivatives):
            want = sympy_at(d, symbols, point)
            assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12), (case.id, name, point, got, want)


@pytest.mark.parametrize("case", SYMPY_CASES, ids=ids(SYMPY_CASES))
def test_exprs_match_sympy(case):
    """`.exprs` are SymPy expressions of the partials in the parameter symbols."""
    symbols = sympy_symbols(case)
    expr = sympy.sympify(case.sym(*symbols))
    exprs = cached_grad(case).exprs
    assert len(exprs) == len(symbols)
    for e in exprs:
        free = {s.name for s in sympy.sympify(e).free_symbols}
        assert free <= set(param_names(case.fn)), (case.id, free)
    for point in case.points:
        for s, e in zip(symbols, exprs):
            want = sympy_at(sympy_diff(expr, s), symbols, point)
            got = sympy_at(sympy.sympify(e), symbols, point)
            assert math.isclose(got, want, rel_tol=1e-10, abs_tol=1e-12), (case.id, s, point, got, want)


# --- (d) arrays: elementwise evaluation and broadcasting ------------------------------------------


def columns(case):
    return [np.array([p[i] for p in case.points]) for i in range(n_params(case))]


@pytest.mark.parametrize("case", CORPUS, ids=ids(CORPUS))
def test_array_matches_pointwise(case):
    g = cached_grad(case)
    expected = pointwise(case)
    grads = as_tuple(g(*columns(case)), n_params(case))
    for i, got in enumerate(grads):
        assert isinstance(got, np.ndarray) and got.shape == (len(case.points),)
        want = np.array([e[i] for e in expected])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13, err_msg=case.id)
    # 2-D arrays keep their shape
    grid = [c.reshape(-1, 1) * np.ones((1, 2)) for c in columns(case)]
    grads2 = as_tuple(g(*grid), n_params(case))
    for i, got in enumerate(grads2):
        assert got.shape == (len(case.points), 2)
        want = np.array([e[i] for e in expected])
        np.testing.assert_allclose(
            got, np.stack([want, want], axis=1), rtol=1e-12, atol=1e-13, err_msg=case.id
        )


@pytest.mark.parametrize("case", CORPUS, ids=ids(CORPUS))
def test_array_values(case):
    value, _ = symgrad.value_and_grad(case.fn)(*columns(case))
    want = np.array([case.fn(*p) for p in case.points])
    np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-13, err_msg=case.id)


@pytest.mark.parametrize("case", CORPUS, ids=ids(CORPUS))
def test_scalar_broadcast_gets_summed_gradient(case):
    g = cached_grad(case)
    point = case.points[0]
    expected = pointwise(case)[0]
    repeats = 3
    args = [np.full(repeats, point[0]), *point[1:]]
    grads = as_tuple(g(*args), n_params(case))
    assert isinstance(grads[0], np.ndarray) and grads[0].shape == (repeats,)
    np.testing.assert_allclose(grads[0], np.full(repeats, expected[0]), rtol=1e-12, atol=1e-13)
    for got, want in zip(grads[1:], expected[1:]):
        assert math.isclose(got, repeats * want, rel_tol=1e-12, abs_tol=1e-13), (case.id, got, repeats * want)
        assert type(got) is float, f"{case.id}: a float argument broadcast against an array gave {type(got)}"


# --- (e) determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CORPUS, ids=ids(CORPUS))
def test_source_is_deterministic(case):
    wrt = all_partials(case.fn)
    first, second = symgrad.grad(case.fn, wrt=wrt), symgrad.grad(case.fn, wrt=wrt)
    assert first.source == second.source
    assert first.scalar_source == second.scalar_source
    assert cached_grad(case).source == first.source


_DUMP = """
import json, sys
sys.path.insert(0, {tests!r})
import symgrad
from corpus import CORPUS
from helpers import all_partials
import loop_cases
sources = {{c.id: symgrad.grad(c.fn, wrt=all_partials(c.fn)).source for c in CORPUS}}
# loops whose bodies assign several names under a traced `if` (`break`, `continue`): their
# source, and the program listing `.graph` in the order the tracer merged the branches
for name in ("newton_capped", "skip_some", "branchy", "grow_past"):
    compiled = symgrad.grad(getattr(loop_cases, name))
    sources["loops." + name] = compiled.source + str(compiled.graph)
print(json.dumps(sources))
"""


def test_source_is_deterministic_across_hash_seeds():
    """The same source in fresh interpreters with different string-hash seeds."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _DUMP.format(tests=str(TESTS))],
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "2")
    ]
    sources = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        sources.append(json.loads(out))
    assert sources[0].keys() == sources[1].keys()
    differing = [k for k in sources[0] if sources[0][k] != sources[1][k]]
    assert not differing, f"generated source depends on the hash seed: {differing}"
    # and the same as in this process (docstrings name the module, which depends on how
    # pytest imported it, so they are left out)

    def code(text):
        return [line for line in text.splitlines() if '"""' not in line]

    here = {case.id: code(cached_grad(case).source) for case in CORPUS}
    assert here == {k: code(v) for k, v in sources[0].items() if not k.startswith("loops.")}


# --- (f) second derivatives ----------------------------------------------------------------------


@pytest.mark.parametrize("case", SECOND_ORDER_CASES, ids=ids(SECOND_ORDER_CASES))
def test_second_derivatives(case):
    names = param_names(case.fn)
    x = names[0]
    first = symgrad.grad(case.fn, wrt=x)
    second = symgrad.grad(symgrad.grad(case.fn, wrt=x), wrt=x)
    mixed = {y: symgrad.grad(symgrad.grad(case.fn, wrt=x), wrt=y) for y in names[1:]}
    for point in case.points:
        got = second(*point)
        want = central_diff(first, point, 0, richardson=True)
        assert_close(got, want, 1e-6, 1e-7, f"{case.id} d2/d{x}2 at {point}")
        assert type(got) is float
        for j, y in enumerate(names[1:], start=1):
            got_xy = mixed[y](*point)
            want_xy = central_diff(first, point, j, richardson=True)
            assert_close(got_xy, want_xy, 1e-6, 1e-7, f"{case.id} d2/d{x}d{y} at {point}")
            # symmetry of second derivatives
            other = symgrad.grad(symgrad.grad(case.fn, wrt=y), wrt=x)(*point)
            assert math.isclose(got_xy, other, rel_tol=1e-10, abs_tol=1e-12), (case.id, got_xy, other)


@pytest.mark.parametrize(
    "case",
    [c for c in SECOND_ORDER_CASES if c.sym is not None],
    ids=ids([c for c in SECOND_ORDER_CASES if c.sym is not None]),
)
def test_second_derivatives_match_sympy(case):
    symbols = sympy_symbols(case)
    expr = sympy.sympify(case.sym(*symbols))
    x = param_names(case.fn)[0]
    d2 = sympy_diff(expr, symbols[0], 2)
    second = symgrad.grad(symgrad.grad(case.fn, wrt=x), wrt=x)
    for point in case.points:
        got = second(*point)
        want = sympy_at(d2, symbols, point)
        assert math.isclose(got, want, rel_tol=1e-10, abs_tol=1e-12), (case.id, point, got, want)


def test_second_derivative_on_arrays():
    case = next(c for c in SECOND_ORDER_CASES if c.id == "sigmoid_stable")
    second = symgrad.grad(symgrad.grad(case.fn, wrt="x"), wrt="x")
    xs = np.array([p[0] for p in case.points])
    np.testing.assert_allclose(second(xs), [second(float(v)) for v in xs], rtol=1e-12, atol=1e-14)


# --- closures decorated inside their factory -------------------------------------------------------


def make_decorated_potential(k, r0):
    @symgrad.grad
    def force(r):
        return k * (r - r0) ** 2 + k / r

    return force


def test_closure_decorated_in_factory():
    k, r0 = 2.5, 1.2
    force = make_decorated_potential(k, r0)
    other = make_decorated_potential(1.0, 0.0)
    for r in (0.5, 1.0, 2.0):
        assert math.isclose(force(r), 2 * k * (r - r0) - k / r**2, rel_tol=1e-13)
        assert math.isclose(other(r), 2 * r - 1 / r**2, rel_tol=1e-13)
    check_grads(force.fn, [1.7], compiled=force)
