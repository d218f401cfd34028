"""Numerical stability: on grids reaching |x| = 1e3 (and tiny magnitudes), wherever the exact
value and derivative are finite, symgrad's are finite and within 1e-12 relative of an mpmath
reference (or 1e-300 absolute)."""

import warnings

import mpmath
import numpy as np
import pytest

from symgrad import value_and_grad
from tests import stability_cases as cases

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
    compiled = value_and_grad(cases.norm2)
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
