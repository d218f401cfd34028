"""Numerical stability: on grids reaching |x| = 1e3 (and tiny magnitudes), wherever the exact
value and derivative are finite, symgrad's are finite and within 1e-12 relative of an mpmath
reference (or 1e-300 absolute)."""

import functools
import warnings

import mpmath
import numpy as np
import pytest
import sympy
from sympy.codegen.cfunctions import log1p

from symgrad import grad, hessian, rewrite, value_and_grad
from symgrad.__main__ import demo_softplus_loop
from symgrad.graph import Graph, real_symbol
from tests import stability_cases as cases
from tests.helpers import all_partials, every_parameter

mpmath.mp.dps = 60
FLOAT_MAX = 1.7976931348623157e308
GRID = np.concatenate(
    [np.linspace(-1000.0, 1000.0, 401), -np.logspace(-300, 2, 40), np.logspace(-300, 2, 40)]
)

# name -> (function, exact value, exact derivative, domain of x)
SCALAR = {
    "softplus": (
        cases.softplus,
        lambda x: mpmath.log1p(mpmath.exp(x)),
        lambda x: 1 / (1 + mpmath.exp(-x)),
        None,
    ),
    "sigmoid": (
        cases.sigmoid,
        lambda x: 1 / (1 + mpmath.exp(-x)),
        lambda x: mpmath.exp(-x) / (1 + mpmath.exp(-x)) ** 2,
        None,
    ),
    "sigmoid_ratio": (
        cases.sigmoid_ratio,
        lambda x: 1 / (1 + mpmath.exp(-x)),
        lambda x: mpmath.exp(-x) / (1 + mpmath.exp(-x)) ** 2,
        None,
    ),
    "log_one_plus": (cases.log_one_plus, mpmath.log1p, lambda x: 1 / (1 + x), (-1.0, np.inf)),
    "exp_minus_one": (cases.exp_minus_one, mpmath.expm1, mpmath.exp, None),
}


def _close(got: float, exact: mpmath.mpf) -> bool:
    if not np.isfinite(got):
        return False
    error = abs(mpmath.mpf(got) - exact)
    return error <= 1e-300 or error <= 1e-12 * abs(exact)


def _finite(value: mpmath.mpf) -> bool:
    return abs(value) < FLOAT_MAX


@pytest.mark.parametrize("name", list(SCALAR))
@pytest.mark.parametrize("flavour", ["floats", "array"])
def test_value_and_derivative_match_mpmath(name, flavour):
    fn, exact_value, exact_derivative, domain = SCALAR[name]
    xs = [x for x in GRID if domain is None or domain[0] < x < domain[1]]
    exact = {x: (exact_value(mpmath.mpf(x)), exact_derivative(mpmath.mpf(x))) for x in xs}
    xs = [x for x in xs if _finite(exact[x][0]) and _finite(exact[x][1])]  # where the truth is finite
    compiled = value_and_grad(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warnings either
        if flavour == "floats":
            results = [compiled(float(x)) for x in xs]
        else:
            values, grads = compiled(np.array(xs))
            results = list(zip(values, grads))
    bad = []
    for x, (value, derivative) in zip(xs, results):
        exact_v, exact_d = exact[x]
        if not _close(float(value), exact_v):
            bad.append(f"value at {x!r}: {value!r} vs {mpmath.nstr(exact_v, 17)}")
        if not _close(float(derivative), exact_d):
            bad.append(f"derivative at {x!r}: {derivative!r} vs {mpmath.nstr(exact_d, 17)}")
    assert len(xs) > 250  # most of the grid is checked
    assert not bad, "\n".join(bad[:10])


def test_hypot_over_and_underflow():
    magnitudes = [1e-300, 1e-200, 1e-5, 1.0, 1e3, 1e200, 1e300]
    compiled = value_and_grad(cases.norm2, wrt=("x", "y"))
    for a in magnitudes:
        for b in magnitudes:
            for x, y in ((a, b), (-a, b)):
                value, (dx, dy) = compiled(x, y)
                exact = mpmath.sqrt(mpmath.mpf(x) ** 2 + mpmath.mpf(y) ** 2)
                assert _close(value, exact), (x, y, value)
                assert _close(dx, mpmath.mpf(x) / exact) and _close(dy, mpmath.mpf(y) / exact), (x, y)


def test_logsumexp_of_large_and_small_values():
    compiled = value_and_grad(cases.log_sum_exp)
    for scale in (1e-3, 1.0, 100.0, 1000.0, -1000.0):
        x = scale * np.array([1.0, 0.5, -1.0, 0.25])
        value, gradient = compiled(x)
        exps = [mpmath.exp(mpmath.mpf(v)) for v in x]
        exact = mpmath.log(sum(exps))
        assert _close(value, exact)
        for g, e in zip(gradient, exps):
            assert _close(g, e / sum(exps))


def test_stable_forms_are_what_the_code_computes():
    for fn, expected in [
        (cases.softplus, "numpy.logaddexp(0"),
        (cases.sigmoid, "sg.sigmoid(x)"),
        (cases.sigmoid_ratio, "sg.sigmoid(x)"),
        (cases.log_one_plus, "numpy.log1p(x)"),
        (cases.exp_minus_one, "numpy.expm1(x)"),
    ]:
        compiled = value_and_grad(fn)
        compiled(0.5)
        assert expected in compiled.source, (fn.__name__, compiled.source)


# --- S12: the stable rewrites are a pass over the whole program ---------------------------------
# Each program is written the naive way; its exact form is the same formula in mpmath, and its
# exact derivatives come from mpmath.diff at 60 digits (independent of symgrad).


def log1p_exp(x):
    return np.log1p(np.exp(x))


def log1p_exp_negated(x):
    return np.log1p(np.exp(-x))


def minus_softplus(x):
    return -np.log(1 + np.exp(x))


def sigmoid_of_negated(x):
    return np.exp(-x) / (1 + np.exp(-x))


def sigmoid_reversed(x):
    return 1 / (1 + np.exp(x))


def softplus_over_statements(x):
    e = np.exp(x)
    s = 1 + e
    y = np.log(s)
    return y


def softplus_nested(x):
    return x * np.log1p(np.exp(2 * x)) + 3


def log_sigmoid(x):
    return np.log(1 / (1 + np.exp(-x)))


def one_minus_sigmoid(x):
    return 1 - 1 / (1 + np.exp(-x))


def log_of_three_exps(x):
    return np.log(np.exp(x) + 2 * np.exp(-x) + 1)


def softmax_of_two(x):
    return np.exp(x) / (np.exp(x) + np.exp(0.5 * x))


def softplus_in_branch(x):
    if x > 1:
        y = np.log1p(np.exp(x)) * 2
    else:
        y = np.exp(x) / (1 + np.exp(x))
    return y


def log1p_exp_product(w, h):
    return np.log1p(np.exp(w * h))


def logaddexp_written_out(a, b):
    return np.log(np.exp(a) + np.exp(b))


def logsumexp_over_statements(a, b):
    s = np.exp(a)
    s = s + np.exp(b)
    s = s + np.exp(a - b)
    return np.log(s)


def softplus_loop(x, w):  # the demo's loop (symgrad/__main__.py)
    h = x
    for _ in range(3):
        h = np.log1p(np.exp(w * h))
    return h


X, Y = sympy.symbols("x y", real=True)
EXP, LOG = sympy.exp, sympy.log
S12_SCALAR = {  # program -> the same formula in SymPy, written as naively
    log1p_exp: LOG(1 + EXP(X)),
    log1p_exp_negated: LOG(1 + EXP(-X)),
    minus_softplus: -LOG(1 + EXP(X)),
    sigmoid_of_negated: EXP(-X) / (1 + EXP(-X)),
    sigmoid_reversed: 1 / (1 + EXP(X)),
    softplus_over_statements: LOG(1 + EXP(X)),
    softplus_nested: X * LOG(1 + EXP(2 * X)) + 3,
    log_sigmoid: LOG(1 / (1 + EXP(-X))),
    one_minus_sigmoid: 1 - 1 / (1 + EXP(-X)),
    log_of_three_exps: LOG(EXP(X) + 2 * EXP(-X) + 1),
    softmax_of_two: EXP(X) / (EXP(X) + EXP(X / 2)),
    softplus_in_branch: sympy.Piecewise((LOG(1 + EXP(X)) * 2, X > 1), (EXP(X) / (1 + EXP(X)), True)),
}


def _loop(x, w):
    h = x
    for _ in range(3):
        h = LOG(1 + EXP(w * h))
    return h


GRID_2D = [(float(a), float(b)) for a in np.linspace(-1000, 1000, 21) for b in np.linspace(-1000, 1000, 21)]
S12_PAIRS = {
    log1p_exp_product: (
        LOG(1 + EXP(X * Y)),
        [(w, float(h)) for w in (-3.0, -1.0, 0.5, 1.0, 1.5) for h in GRID[::3]],
    ),
    logaddexp_written_out: (
        LOG(EXP(X) + EXP(Y)),
        [(800.0, 800.0), (-800.0, 800.0), (800.0, -800.0), (-800.0, -800.0), *GRID_2D],
    ),
    logsumexp_over_statements: (LOG(EXP(X) + EXP(Y) + EXP(X - Y)), GRID_2D),
    softplus_loop: (_loop(X, Y), [(float(x), w) for x in GRID[::3] for w in (-1.5, -0.5, 0.5, 1.0, 1.5)]),
}
EXACT_DIGITS = 340  # the naive formulas cancel (1 - (1 - e^-700)): 1e-300 absolute needs 300 digits


class Exact:
    """A SymPy formula and its derivatives, evaluated by mpmath at EXACT_DIGITS digits."""

    def __init__(self, expr, symbols):
        self.symbols = symbols
        self.value = sympy.lambdify(symbols, expr, "mpmath")
        self.first = [sympy.lambdify(symbols, expr.diff(s), "mpmath") for s in symbols]
        self.expr = expr

    def second(self):
        return [
            [sympy.lambdify(self.symbols, self.expr.diff(a, b), "mpmath") for b in self.symbols]
            for a in self.symbols
        ]

    @staticmethod
    def at(fn, point):
        with mpmath.workdps(EXACT_DIGITS):
            return +fn(*(mpmath.mpf(v) for v in point))


def _run(compiled, points, flavour):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warnings either
        if flavour == "floats":
            results = [compiled(*p) for p in points]
        else:
            results = [compiled(*(np.array(c) for c in zip(*points)))]
    if flavour == "array":
        value, gradient = results[0]
        return [
            (value[k], [g[k] for g in gradient] if len(points[0]) > 1 else [gradient[k]])
            for k in range(len(points))
        ]
    return [(v, list(g) if len(points[0]) > 1 else [g]) for v, g in results]


@functools.cache
def _truth(expr, symbols, points):
    exact = Exact(expr, symbols)
    return {p: (Exact.at(exact.value, p), [Exact.at(d, p) for d in exact.first]) for p in points}


def _check_first_order(fn, expr, symbols, points, flavour):
    truth = _truth(expr, symbols, tuple(points))
    points = [p for p in points if _finite(truth[p][0]) and all(_finite(d) for d in truth[p][1])]
    bad = []
    for p, (value, gradient) in zip(points, _run(value_and_grad(fn, wrt=all_partials(fn)), points, flavour)):
        exact_v, exact_d = truth[p]
        if not _close(float(value), exact_v):
            bad.append(f"value at {p}: {value!r} vs {mpmath.nstr(exact_v, 17)}")
        for i, (got, want) in enumerate(zip(gradient, exact_d)):
            if not _close(float(got), want):
                bad.append(f"d/d{symbols[i]} at {p}: {got!r} vs {mpmath.nstr(want, 17)}")
    assert len(points) > 250
    assert not bad, f"{len(bad)} bad:\n" + "\n".join(bad[:10])


@pytest.mark.parametrize("fn", list(S12_SCALAR), ids=lambda f: f.__name__)
@pytest.mark.parametrize("flavour", ["floats", "array"])
def test_S12_scalar_forms_match_mpmath(fn, flavour):
    _check_first_order(fn, S12_SCALAR[fn], (X,), [(float(x),) for x in GRID], flavour)


@pytest.mark.parametrize("fn", list(S12_PAIRS), ids=lambda f: f.__name__)
@pytest.mark.parametrize("flavour", ["floats", "array"])
def test_S12_two_argument_forms_match_mpmath(fn, flavour):
    expr, points = S12_PAIRS[fn]
    _check_first_order(fn, expr, (X, Y), points, flavour)


def softmax_weighted(x, w):
    p = np.exp(x) / np.sum(np.exp(x))
    return np.sum(p * w)


def softmax_over_statements(x, w):
    r = 1 / np.sum(np.exp(x))
    p = np.exp(x) * r
    return np.sum(p * w)


def softmax_rows(x, w):
    p = np.exp(x) / np.sum(np.exp(x), axis=1, keepdims=True)
    return np.sum(p * w)


def log_mean_exp(x, w):
    return np.log(np.mean(np.exp(x))) * w[0]


def logsumexp_rows(x, w):
    return np.sum(np.log(np.sum(np.exp(x), axis=1)) * w)


def _softmax_sum(row, weights):
    return sum(EXP(a) * b for a, b in zip(row, weights)) / sum(EXP(a) for a in row)


ROWS = [[1.0, 0.5, -1.0], [0.25, -0.75, 0.1]]
VECTOR = [1.0, 0.5, -1.0, 0.25]
# program -> (the same formula in SymPy over nested lists of element symbols, x, w)
S12_ARRAYS = {
    softmax_weighted: (lambda x, w: _softmax_sum(x, w), VECTOR, [0.3, -1.2, 2.0, 0.7]),
    softmax_over_statements: (lambda x, w: _softmax_sum(x, w), VECTOR, [0.3, -1.2, 2.0, 0.7]),
    softmax_rows: (
        lambda x, w: sum(_softmax_sum(r, v) for r, v in zip(x, w)),
        ROWS,
        [[0.3, -1.2, 2.0], [0.7, 1.1, -0.4]],
    ),
    log_mean_exp: (lambda x, w: LOG(sum(EXP(a) for a in x) / len(x)) * w[0], VECTOR, [1.5, 0.0]),
    logsumexp_rows: (
        lambda x, w: sum(LOG(sum(EXP(a) for a in r)) * v for r, v in zip(x, w)),
        ROWS,
        [0.5, 2.0],
    ),
}


def _symbols_like(name, shape):
    flat = sympy.symbols(f"{name}0:{int(np.prod(shape))}", real=True)
    return flat, np.array(flat, dtype=object).reshape(shape).tolist()


@pytest.mark.parametrize("fn", list(S12_ARRAYS), ids=lambda f: f.__name__)
@pytest.mark.parametrize("scale", [1e-3, 1.0, 100.0, 1000.0, -1000.0])
def test_S12_array_reductions_match_mpmath(fn, scale):
    build, x, w = S12_ARRAYS[fn]
    x, w = scale * np.array(x), np.array(w)
    xs, x_nested = _symbols_like("x", x.shape)
    ws, w_nested = _symbols_like("w", w.shape)
    expr, symbols, point = build(x_nested, w_nested), (*xs, *ws), (*x.ravel(), *w.ravel())
    exact = Exact(expr, symbols)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, (gx, gw) = value_and_grad(fn, wrt=every_parameter(fn))(x, w)
    assert _close(float(value), Exact.at(exact.value, point)), (value, Exact.at(exact.value, point))
    got = [*np.ravel(gx), *np.ravel(gw)]
    want = [Exact.at(d, point) for d in exact.first]
    # A softmax gradient p (w - sum(p w)) cancels where p is near 1: exact to 1e-12 of its size.
    size = max(abs(v) for v in want)
    bad = [
        (s, g, mpmath.nstr(e, 17))
        for s, g, e in zip(symbols, got, want)
        if not (_close(g, e) or abs(g - e) <= 1e-12 * size)
    ]
    assert not bad, bad


def _second_order_close(got, exact):
    # Second derivatives cancel near their zeros (sigmoid'' = s(x) s(-x) (s(-x) - s(x)) at x ~ 0):
    # finite always, and within 1e-10 relative or 1e-15 absolute of the exact value.
    return np.isfinite(got) and abs(mpmath.mpf(float(got)) - exact) <= 1e-10 * abs(exact) + 1e-15


@pytest.mark.parametrize("fn", list(S12_SCALAR), ids=lambda f: f.__name__)
def test_S12_second_derivative_stays_finite(fn):
    second = sympy.lambdify((X,), S12_SCALAR[fn].diff(X, 2), "mpmath")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        on_array = grad(grad(fn))(GRID)
        second_on_floats = grad(grad(fn))  # one transform for every float point
        on_floats = [second_on_floats(float(x)) for x in GRID[::4]]
    bad = [(x, g) for x, g in zip(GRID, on_array) if not _second_order_close(g, Exact.at(second, (x,)))]
    bad += [
        (x, g) for x, g in zip(GRID[::4], on_floats) if not _second_order_close(g, Exact.at(second, (x,)))
    ]
    assert not bad, bad[:10]


@pytest.mark.parametrize("fn", list(S12_PAIRS), ids=lambda f: f.__name__)
def test_S12_hessian_stays_finite(fn):
    expr, points = S12_PAIRS[fn]
    exact = Exact(expr, (X, Y)).second()
    points = points[::7] + [(800.0, 800.0), (-800.0, 800.0), (1000.0, 1.5), (-1000.0, 1.5)]
    compiled = hessian(fn, wrt=every_parameter(fn))
    bad = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for p in points:
            got = compiled(*p)
            for i in range(2):
                for j in range(2):
                    want = Exact.at(exact[i][j], p)
                    if _finite(want) and not _second_order_close(got[i, j], want):
                        bad.append((p, i, j, got[i, j], mpmath.nstr(want, 17)))
    assert not bad, bad[:10]


def test_S12_nested_occurrences_inside_one_node_are_rewritten():
    # The tracer gives one operation per node; a node holding a whole formula is rewritten inside.
    x, w = real_symbol("x"), real_symbol("w")
    naive = (
        x * log1p(sympy.exp(w * x))
        + 3
        + 1 / (1 + sympy.exp(-x))
        + sympy.log(sympy.exp(x) + sympy.exp(w) + sympy.exp(2 * w))
        - sympy.log(1 + sympy.exp(-w))
    )
    graph = Graph(name="f", params=("x", "w"), inputs=(x, w))
    graph.outputs = (graph.add(naive),)
    stable = rewrite.stabilize(graph)
    definitions = dict(stable.nodes)
    assert not any(e.has(sympy.exp) for e in definitions.values()), stable
    point = {x: 0.3, w: -1.2}
    exact = float(naive.evalf(30, subs=point))
    inlined = definitions[graph.outputs[0]]
    for _ in range(len(definitions)):  # the inserted logaddexp nodes, substituted back
        inlined = inlined.xreplace(definitions)
    assert abs(float(inlined.xreplace(point)) - exact) <= 1e-12 * abs(exact)


def test_S12_the_demo_loop_is_finite_at_large_x():
    compiled = value_and_grad(demo_softplus_loop, wrt=("x", "w"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, (dx, dw) = compiled(800.0, 1.5)
        values, (dxs, dws) = compiled(np.array([710.0, 800.0, 1000.0]), np.array([1.5, 1.0, -1.0]))
    assert (value, dx, dw) == (2700.0, 3.375, 3 * 1.5**2 * 800.0)  # h = w^3 x exactly once exp(-w h) < ulp
    assert np.isfinite(values).all() and np.isfinite(dxs).all() and np.isfinite(dws).all()
    assert "numpy.exp(" not in compiled.source and "numpy.logaddexp(0, " in compiled.source
