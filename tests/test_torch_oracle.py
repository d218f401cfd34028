"""The PyTorch oracle itself (tests/torch_oracle.py) on what PyTorch gets wrong by itself."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad
from tests.helpers import write_module

torch_oracle = pytest.importorskip("tests.torch_oracle")

# A CI fuzz program (seed 2244410515): a helper multiplies its argument by itself in place.
SELF_UPDATE = """\
import numpy as np


def scale(a, v):
    a *= v
    return a


def f(x, w, b):
    u = x
    scale(u, u)
    return np.sum(x * np.sin(w)) + np.sum(x * b)
"""


def test_an_array_updated_in_place_by_itself_has_the_derivative_of_its_square(tmp_path):
    # torch's forward mode updates the tangent of `a *= a` in place before reading it as the
    # other operand's: x (1 + x) instead of 2x; the oracle computes such an update first
    x = np.array([0.3, -0.7, 1.1, 1.5])
    w = np.array([0.2, 0.4, -0.5, 0.9])
    b = 0.6
    want = 2 * x * (np.sin(w) + b)  # f is sum(x**2 * (sin(w) + b))
    value, grads = torch_oracle.value_and_grad(torch_oracle.load(SELF_UPDATE)["f"], [x, w, b])
    np.testing.assert_allclose(grads[0], want, rtol=1e-13)
    module = write_module(tmp_path, "self_update", SELF_UPDATE)
    np.testing.assert_allclose(symgrad.grad(module.f)(x.copy(), w, b), want, rtol=1e-13)
    assert value == pytest.approx(module.f(x.copy(), w, b), rel=1e-13)
