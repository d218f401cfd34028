"""Custom rules: explicit derivative rules in Python, and the scipy.special defaults."""

import importlib.util
import sys

import numpy as np
import pytest
import sympy

import symgrad
from symgrad import derivative, grad, register, rules
from tests import custom_cases as cases
from tests.helpers import central_diff, every_parameter


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


@pytest.mark.parametrize("rule", rules.SCIPY_RULES, ids=[r.names[0] for r in rules.SCIPY_RULES])
def test_scipy_special_rule_against_finite_differences(rule, tmp_path):
    module_path = tmp_path / f"scipy_rule_{abs(hash(rule.names[0]))}.py"
    module_path.write_text(
        "import numpy as np\nfrom scipy import special\n\n\ndef f(x, y):\n    return " + rule.example + "\n"
    )
    spec = importlib.util.spec_from_file_location(module_path.stem, module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_path.stem] = module
    spec.loader.exec_module(module)
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
