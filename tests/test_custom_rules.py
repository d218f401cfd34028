"""Custom rules: explicit derivative rules in Python, and the scipy.special defaults."""

import importlib.util
import sys

import numpy as np
import pytest
import sympy

import symgrad
from symgrad import derivative, grad, register, rules
from tests import custom_cases as cases
from tests.helpers import central_diff, every_parameter, richardson_gradient


def test_custom_rule_gives_the_gradient_and_second_order():
    x = 0.3
    assert grad(cases.uses_softclip)(x) == pytest.approx(6.0 * (1 - np.tanh(0.6) ** 2), rel=1e-14)
    second = derivative(cases.uses_softclip, wrt="x", order=2)(x)
    assert second == pytest.approx(central_diff(grad(cases.uses_softclip), [x], 0), rel=1e-7)
    np.testing.assert_allclose(
        grad(cases.uses_softclip)(np.array([0.3, -1.0])), 6.0 * (1 - np.tanh([0.6, -2.0]) ** 2)
    )


def test_the_rule_wins_over_the_body():
    # round has derivative 0; the straight-through rule says 1: d/dx [round(x) * x] = 1 * x + round(x)
    assert grad(cases.uses_round)(2.3) == pytest.approx(2.3 + 2.0)
    assert symgrad.value_and_grad(cases.uses_round)(2.3)[0] == pytest.approx(2.0 * 2.3)


def test_multi_argument_rule():
    gx, gy = grad(cases.uses_product, wrt=("x", "y"))(0.4, 1.5)
    assert gx == pytest.approx(np.cos(0.4) * 1.5 + 2 * 0.4)
    assert gy == pytest.approx(np.sin(0.4))


def test_missing_rule_is_a_clear_error():
    with pytest.raises(symgrad.TracingError) as info:
        grad(cases.uses_no_rule)(1.0)
    assert "defderiv" in info.value.hint


def test_register_a_sympy_function():
    def my_sinc(x):
        return np.sin(x) / x

    register(my_sinc, lambda x: sympy.sin(x) / x)
    try:
        assert rules.lookup(my_sinc) is not None
    finally:
        del rules.CALLABLES[my_sinc]


pytest.importorskip("scipy", reason="the scipy.special rules need SciPy")


def _example_module(rule, tmp_path, prefix):
    """A scipy rule's example as `f(x, y)` in a module file (symgrad reads source), imported;
    the caller removes it from sys.modules."""
    module_path = tmp_path / f"{prefix}_{abs(hash(rule.names[0]))}.py"
    module_path.write_text(
        "import numpy as np\nfrom scipy import special, stats\n\n\ndef f(x, y):\n    return "
        + rule.example
        + "\n"
    )
    spec = importlib.util.spec_from_file_location(module_path.stem, module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_path.stem] = module
    spec.loader.exec_module(module)
    return module_path, module


@pytest.mark.parametrize("rule", rules.SCIPY_RULES, ids=[r.names[0] for r in rules.SCIPY_RULES])
def test_scipy_special_rule_against_finite_differences(rule, tmp_path):
    module_path, module = _example_module(rule, tmp_path, "scipy_rule")
    try:
        rng = np.random.default_rng(7)
        lo, hi = rule.domain
        g = grad(module.f, wrt=every_parameter(module.f))
        for x, y in rng.uniform(lo, hi, size=(4, 2)):
            got = g(float(x), float(y))
            for i in range(2):
                assert got[i] == pytest.approx(
                    central_diff(module.f, [float(x), float(y)], i), rel=1e-6, abs=1e-8
                )
            arrays = g(np.array([x]), np.array([y]))
            np.testing.assert_allclose([a[0] for a in arrays], got, rtol=1e-12)
    finally:
        del sys.modules[module_path.stem]


# --- the scipy rules against PyTorch's own implementations, to second order --------------------

torch = pytest.importorskip("torch", reason="PyTorch checks need the torch extra: pip install torch==2.13.0")
_dist = torch.distributions


def _t_log_prob(x, y):
    return _dist.StudentT(y + 1.0).log_prob(x)


def _logistic_log_prob(x, scale):  # torch has no logistic distribution: its density by hand
    z = x / scale
    return -z - 2 * torch.nn.functional.softplus(-z) - torch.log(scale)


# each rule's example (rules._scipy_rules), written with torch's functions
TORCH_TWINS = {
    "scipy.special.erf": lambda x, y: torch.special.erf(x * y),
    "scipy.special.erfc": lambda x, y: torch.special.erfc(x * y),
    "scipy.special.expit": lambda x, y: torch.special.expit(x * y),
    "scipy.special.logit": lambda x, y: torch.special.logit(0.5 + 0.4 * torch.tanh(x * y)),
    "scipy.special.gammaln": lambda x, y: torch.special.gammaln(x * y),
    "scipy.special.digamma": lambda x, y: torch.special.digamma(x * y),
    "scipy.special.xlogy": lambda x, y: torch.special.xlogy(x, y),
    "scipy.special.xlog1py": lambda x, y: torch.special.xlog1py(x, y),
    "scipy.special.ndtr": lambda x, y: torch.special.ndtr(x * y),
    "scipy.special.log_ndtr": lambda x, y: torch.special.log_ndtr(x * y - 3.0),
    "scipy.special.ndtri": lambda x, y: torch.special.ndtri(x * y),
    "scipy.special.betaln": lambda x, y: torch.lgamma(x) + torch.lgamma(y) - torch.lgamma(x + y),
    "scipy.special.gamma": lambda x, y: torch.exp(torch.lgamma(x * y)),  # positive arguments
    "scipy.stats.norm.logpdf": lambda x, y: _dist.Normal(y, 1.5).log_prob(x),
    "scipy.stats.norm.pdf": lambda x, y: torch.exp(_dist.Normal(y, 1.0).log_prob(x)),
    "scipy.stats.norm.cdf": lambda x, y: _dist.Normal(y, 0.7).cdf(x),
    "scipy.stats.norm.logcdf": lambda x, y: torch.special.log_ndtr(x * y - 2.0),
    "scipy.stats.norm.sf": lambda x, y: 1.0 - _dist.Normal(0.0, y).cdf(x),
    "scipy.stats.norm.logsf": lambda x, y: torch.special.log_ndtr(-(x * y + 2.0)),
    "scipy.stats.norm.ppf": lambda x, y: _dist.Normal(y, 1.0).icdf(x),
    "scipy.stats.laplace.logpdf": lambda x, y: _dist.Laplace(y + 3.0, 1.0).log_prob(x),
    "scipy.stats.logistic.logpdf": _logistic_log_prob,
    "scipy.stats.cauchy.logpdf": lambda x, y: _dist.Cauchy(0.5, y).log_prob(x),
    "scipy.stats.t.logpdf": _t_log_prob,
}


def test_every_scipy_rule_has_a_torch_twin():
    assert {r.names[0] for r in rules.SCIPY_RULES} == set(TORCH_TWINS)


@pytest.mark.parametrize("rule", rules.SCIPY_RULES, ids=[r.names[0] for r in rules.SCIPY_RULES])
def test_scipy_rule_value_gradient_jvp_and_hessian_against_torch(rule, tmp_path):
    module_path, module = _example_module(rule, tmp_path, "scipy_twin")
    twin = TORCH_TWINS[rule.names[0]]
    wrt = ("x", "y")
    try:
        lo, hi = rule.domain
        for x, y in np.random.default_rng(11).uniform(lo, hi, size=(3, 2)):
            x, y = float(x), float(y)
            value, gradient = symgrad.value_and_grad(module.f, wrt=wrt)(x, y)
            assert value == pytest.approx(float(module.f(x, y)), rel=1e-13, abs=1e-15)  # SciPy's value
            tx, ty = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x, y))
            expected = torch.autograd.grad(twin(tx, ty), (tx, ty))
            np.testing.assert_allclose(gradient, [float(e) for e in expected], rtol=1e-9, atol=1e-12)
            _, tangent = symgrad.jvp(module.f, wrt=wrt)((x, y), (0.5, -1.5))
            assert tangent == pytest.approx(
                0.5 * float(expected[0]) - 1.5 * float(expected[1]), rel=1e-9, abs=1e-12
            )
            point = torch.tensor([x, y], dtype=torch.float64)
            hess = torch.autograd.functional.hessian(lambda v: twin(v[0], v[1]), point).numpy()
            np.testing.assert_allclose(symgrad.hessian(module.f, wrt=wrt)(x, y), hess, rtol=1e-7, atol=1e-10)
    finally:
        del sys.modules[module_path.stem]


# --- scipy.special's array functions: softmax, log_softmax, logsumexp with weights ------------

WEIGHTS = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])


def softmax_of_vector(x):
    return np.sum(special.softmax(x) * WEIGHTS[0]) + np.sum(special.log_softmax(x * 2.0) * WEIGHTS[1])


def softmax_along_rows(X):
    return np.sum(special.softmax(X, axis=1) * WEIGHTS) + np.sum(special.log_softmax(X, axis=0) ** 2)


def weighted_logsumexp(X):
    rows = special.logsumexp(X, axis=0, b=np.array([1.0, 2.0])[:, None])
    return special.logsumexp(X, b=WEIGHTS**2) + np.sum(rows * WEIGHTS[0])


def torch_softmax_of_vector(x):
    w = torch.tensor(WEIGHTS)
    return torch.sum(torch.softmax(x, 0) * w[0]) + torch.sum(torch.log_softmax(x * 2.0, 0) * w[1])


def torch_softmax_along_rows(X):
    return torch.sum(torch.softmax(X, 1) * torch.tensor(WEIGHTS)) + torch.sum(torch.log_softmax(X, 0) ** 2)


def torch_weighted_logsumexp(X):
    w = torch.tensor(WEIGHTS)
    rows = torch.logsumexp(X + torch.log(torch.tensor([1.0, 2.0], dtype=torch.float64))[:, None], 0)
    return torch.logsumexp(X + torch.log(w**2), (0, 1)) + torch.sum(rows * w[0])


special = pytest.importorskip("scipy.special")
ARRAY_CASES = [
    (softmax_of_vector, torch_softmax_of_vector, np.array([0.3, -0.2, 0.9])),
    (softmax_along_rows, torch_softmax_along_rows, np.array([[0.3, -0.2, 0.9], [1.1, 0.4, -0.7]])),
    (weighted_logsumexp, torch_weighted_logsumexp, np.array([[0.3, -0.2, 0.9], [1.1, 0.4, -0.7]])),
]


@pytest.mark.parametrize("fn,torch_fn,x", ARRAY_CASES, ids=[c[0].__name__ for c in ARRAY_CASES])
def test_scipy_array_functions_against_torch_to_second_order(fn, torch_fn, x):
    value, gradient = symgrad.value_and_grad(fn)(x)
    assert value == pytest.approx(fn(x), rel=1e-14)  # SciPy's value
    t = torch.tensor(x, requires_grad=True)
    torch_fn(t).backward()
    np.testing.assert_allclose(gradient, t.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gradient, richardson_gradient(fn, [x]), rtol=1e-7, atol=1e-9)
    tangent = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
    _, jvp_value = symgrad.jvp(fn)((x,), (tangent,))
    assert jvp_value == pytest.approx(float(np.sum(t.grad.numpy() * tangent)), rel=1e-11, abs=1e-13)
    hess = torch.autograd.functional.hessian(torch_fn, torch.tensor(x)).numpy().reshape(x.size, x.size)
    np.testing.assert_allclose(symgrad.hessian(fn)(x).reshape(x.size, x.size), hess, rtol=1e-9, atol=1e-12)


def signed_logsumexp(x):
    return special.logsumexp(x, b=np.array([1.0, -1.0]), return_sign=True)[0]


def test_logsumexp_with_return_sign_is_refused_at_the_call():
    with pytest.raises(symgrad.TracingError) as info:
        grad(signed_logsumexp)(np.array([0.3, -0.2]))
    assert info.value.lineno == signed_logsumexp.__code__.co_firstlineno + 1
    assert "return_sign" in info.value.message and "positive" in info.value.hint
