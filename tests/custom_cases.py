"""Functions with their own derivative rules, for tests/test_custom_rules.py."""

import numpy as np

from symgrad import custom_derivative


@custom_derivative
def softclip(x):
    return np.tanh(x)


@softclip.defderiv
def _softclip_derivative(x):
    return 1.0 - np.tanh(x) ** 2


@custom_derivative
def straight_through_round(x):
    return np.round(x)


@straight_through_round.defderiv
def _straight_through(x):
    return 1.0  # the straight-through estimator: round's gradient taken as the identity's


@custom_derivative
def product(x, y):
    return x * y


@product.defderiv
def _product_rule(x, y):
    return (y, x)


@custom_derivative
def no_rule(x):
    return x


def uses_softclip(x):
    return 3.0 * softclip(2.0 * x)


def uses_round(x):
    return straight_through_round(x) * x


def uses_product(x, y):
    return product(np.sin(x), y) + product(x, x)


def uses_no_rule(x):
    return no_rule(x)
