"""A corpus of plain, user-style functions that symgrad must differentiate.

Each entry is a `Case`: the function as a scientist would write it, sample points (away from
kinks and branch boundaries, inside the domain), a category, and optionally:

* `sym`: the same function written independently with SymPy (for `sympy.diff` checks);
* `frozen`: for functions using stop_gradient / detach / no_grad, a factory that, given a
  point, returns the function with the stopped values frozen at that point (finite
  differences of *that* are the expected gradient);
* `second`: the function is smooth at its points, so second derivatives are checked too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

import symgrad
from symgrad import detach, no_grad, stop_gradient


@dataclass
class Case:
    fn: Callable[..., Any]
    points: list[tuple[float, ...]]
    category: str
    sym: Callable[..., Any] | None = None
    frozen: Callable[..., Callable[..., Any]] | None = None
    second: bool = False
    id: str = field(default="")

    def __post_init__(self):
        if not self.id:
            self.id = self.fn.__name__


# --- module-level constants ---------------------------------------------------------------------

GRAVITY = 9.81
DELTA = 1.0
LOWER, UPPER = -1.5, 2.0
HALF_LIFE = np.float64(5730.0)
N_TERMS = 6
COEFFS = (0.5, -1.25, 2.0, 0.75, -3.0)  # highest degree first
DATA = ((0.5, 1.0), (-1.0, 0.0), (2.0, 1.0), (0.2, 0.0), (-0.4, 1.0))
N_DATA = len(DATA)
BRACKETS = ((10.0, 0.1), (40.0, 0.2))  # (upper limit, rate)
TOP_RATE = 0.35


# --- arithmetic --------------------------------------------------------------------------------


def cubic(x):
    return 3 * x**3 - 2 * x**2 + x - 7


def rational(x, y):
    return (x + 2 * y) / (1 + x * x + y * y)


def unary_signs(x, y):
    return -x * y + (-(x - y)) ** 2 + +x


def mixed_powers(x, y):
    return x**2.5 + y**-2 + x**y + 2**x


def floordiv_mod_const(x, y):
    return (x // 0.7) * y + (x % 0.7) * y * y


def mod_traced_divisor(x, y):
    return x % y + x * y


def wrapped_angle_error(theta, target):
    d = (theta - target + math.pi) % (2 * math.pi) - math.pi
    return d * d


def kinetic_energy(m, v):
    return 0.5 * m * v**2


def compound_interest(principal, rate):
    return principal * (1 + rate / 12) ** (12 * 10)


def harmonic_mean(a, b):
    return 2 / (1 / a + 1 / b)


def quadratic_root(a, b, c):
    disc = b * b - 4 * a * c
    return (-b + math.sqrt(disc)) / (2 * a)


def lennard_jones(r, eps, sigma):
    sr6 = (sigma / r) ** 6
    return 4 * eps * (sr6 * sr6 - sr6)


# --- control flow ------------------------------------------------------------------------------


def relu_branch(x):
    if x > 0:
        return x
    return 0.0


def huber(r):
    if abs(r) <= DELTA:
        return 0.5 * r * r
    else:
        return DELTA * (abs(r) - 0.5 * DELTA)


def sigmoid_stable(x):
    if x >= 0:
        z = math.exp(-x)
        return 1 / (1 + z)
    else:
        z = math.exp(x)
        return z / (1 + z)


def piecewise_linear(x):
    if x < -1.0:
        y = -1.0 + 0.5 * (x + 1.0)
    elif x < 0.0:
        y = x
    elif x < 1.0:
        y = 2.0 * x
    else:
        y = 2.0 + 0.25 * (x - 1.0)
    return y * y


def income_tax(income):
    tax = 0.0
    lower = 0.0
    for limit, rate in BRACKETS:
        if income > limit:
            tax += (limit - lower) * rate
        elif income > lower:
            tax += (income - lower) * rate
        lower = limit
    if income > lower:
        tax += (income - lower) * TOP_RATE
    return tax


def chained_comparisons(x, y):
    if 0.0 < x < 1.0 and y > 0:
        return x * y
    elif x >= 1.0 or y <= -1.0:
        return x + y * y
    else:
        return x - y * y


def not_condition(x, y):
    if not (x > 1.0) and not y < 0.0:
        return x**2 * y
    return 2 * x - y


def conditional_expression(x, y):
    a = x * y if x > y else x - y
    s = 1.0 if y > 0 else -1.0
    return a * a + s * y


def multiple_returns(x, y):
    if x < 0:
        return -x * y
    if y < 0:
        return x * y * y
    return x + y


def truthiness(x, y):
    flag = x - 1.0
    if flag:
        return x * y
    return y


def safe_divide(a, b):
    if b == 0.0:
        return 0.0
    return a / b


def nonzero_check(x):
    if x != 2.0:
        return x**3 - 8.0
    return 0.0


def clamp_if(x):
    if x < LOWER:
        x = LOWER
    elif x > UPPER:
        x = UPPER
    return x * x + x


def nested_if(x, y):
    if x > 0:
        if y > 0:
            r = x * y
        else:
            r = x - y
    else:
        r = y * y
    return r + 1.0


def early_return_in_loop(x):
    s = 0.0
    for k in range(1, 8):
        s += x**k / k
        if s > 3.0:
            return 2.0 * s
    return s


def first_crossing(x):
    # Returns from inside the loop at the first step whose value exceeds 1.
    y = x
    for i in range(6):
        y = y * (1.2 + 0.1 * i)
        if y > 1.0:
            return y + i
    return -y


def nested_conditional_expression(x, y):
    """Gain schedule written with nested conditional expressions."""
    k = 2.0 if x > 1.0 else (0.5 if x > -1.0 else -1.0)
    return k * x * y


def projectile_range(v0: float, angle: float) -> float:
    """Range of a projectile on flat ground (annotated, with a docstring)."""
    g: float = GRAVITY
    return v0**2 * math.sin(2 * angle) / g


def anharmonic_energy(x: float, p: float) -> float:
    """Hamiltonian of an anharmonic oscillator."""
    # kinetic part
    kinetic: float = 0.5 * p * p
    potential = 0.5 * x**2 + 0.1 * x**4  # quartic correction
    pass
    return kinetic + potential


# --- loops -------------------------------------------------------------------------------------


def taylor_exp(x):
    term = 1.0
    s = 1.0
    for k in range(1, 12):
        term *= x / k
        s += term
    return s


def horner(x):
    acc = 0.0
    for c in COEFFS:
        acc = acc * x + c
    return acc


def nested_loops(x, y):
    s = 0.0
    for i in range(3):
        for j in range(i + 1):
            s += x**i * y**j / (1 + i + j)
    return s


def loop_with_static_if(x):
    s = 0.0
    for i in range(6):
        if i % 2 == 0:
            s += math.sin(i * x)
        else:
            s -= math.cos(i * x)
    return s


def fibonacci_like(x, y):
    a, b = x, y
    for _ in range(6):
        a, b = b, a + 0.5 * b
    return a * b


def range_with_step(x):
    s = 0.0
    for k in range(0, 10, 3):
        s += (x - k / 10) ** 2
    return s


def halve_or_grow(x):
    y = x
    for _ in range(5):
        if y > 1.0:
            y = y / 2
        else:
            y = y * 1.5 + 0.1
    return y


def euler_ode(k, y0):
    y = y0
    dt = 0.1
    for _ in range(10):
        y = y + dt * (-k * y + math.sin(y))
    return y


def running_max(x, y):
    m = x
    for i in range(4):
        m = max(m, y * i - x)
    return m


def augmented_ops(x, y):
    s = 1.0 * x  # a new array: with `s = x`, NumPy's `s += y` would change x too (test_issue12)
    s += y
    s *= x
    s -= 0.5 * y
    s /= 1 + y * y
    s **= 2
    return s


def logistic_loss(w, b):
    loss = 0.0
    for xi, yi in DATA:
        p = 1 / (1 + np.exp(-(w * xi + b)))
        loss -= yi * np.log(p) + (1 - yi) * np.log(1 - p)
    return loss / N_DATA


def series_constant_bound(x):
    s = 0.0
    for n in range(1, N_TERMS + 1):
        s += (-1) ** (n + 1) * x**n / n
    return s


# --- calls to module-level helpers ---------------------------------------------------------------


def gaussian(x, mu, sigma):
    return math.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def mixture_density(x, w):
    return w * gaussian(x, 0.0, 1.0) + (1 - w) * gaussian(x, 2.0, 0.5)


def softplus(x, k=10.0):
    return math.log(1 + math.exp(k * x)) / k


def softplus_defaults(x, y):
    return softplus(x) + softplus(y, 2.0) + softplus(x * y, k=5.0)


def polar_to_cartesian(r, t):
    return r * math.cos(t), r * math.sin(t)


def distance_from_polar(r, t, s):
    x, y = polar_to_cartesian(r, t)
    return math.hypot(x - s, y)


def clipped(v, lo, hi):
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


def clipped_sum(x):
    s = 0.0
    for i in range(4):
        s += clipped(x * i, 0.5, 2.0) ** 2
    return s


def dot2(a, b, c, d):
    return a * c + b * d


def norm2(a, b):
    return math.sqrt(dot2(a, b, a, b))


def cosine_similarity(a, b, c, d):
    return dot2(a, b, c, d) / (norm2(a, b) * norm2(c, d))


def gaussian_keywords(x, y):
    return gaussian(x, mu=y, sigma=0.7) + gaussian(sigma=1.5, x=y, mu=0.0)


def smooth_abs(x, eps=1e-2):
    return math.sqrt(x * x + eps)


def helper_in_branch(x, y):
    if x > y:
        return smooth_abs(x - y) + clipped(y, -1.0, 1.0)
    return smooth_abs(y - x, 0.5) * x


# --- closures ----------------------------------------------------------------------------------


def make_spring(k, x0):
    def spring_energy(x):
        return 0.5 * k * (x - x0) ** 2

    return spring_energy


spring_energy = make_spring(3.0, 0.5)


def make_quadratic_form(a, b, c):
    def quadratic_form(x, y):
        return a * x * x + b * x * y + c * y * y

    return quadratic_form


quadratic_form = make_quadratic_form(2.0, -1.0, 0.5)


def make_layer(weight, bias, activation):
    def layer(x):
        return activation(weight * x + bias)

    return layer


def tanh_activation(z):
    return math.tanh(z)


layer = make_layer(1.5, -0.25, tanh_activation)


def make_geometric_series(n):
    def geometric_series(x):
        s = 0.0
        for i in range(n):
            s += x**i
        return s

    return geometric_series


geometric_series = make_geometric_series(7)


def make_decay(rate):
    def decay(t, amplitude):
        return amplitude * np.exp(-rate * t)

    return decay


decay = make_decay(np.float64(0.75))


def make_scaled(base, scale):
    def scaled(x):
        return scale * base(x) + base(2 * x)

    return scaled


scaled_spring = make_scaled(spring_energy, 0.25)


# --- math functions ----------------------------------------------------------------------------


def math_trig(x, y):
    return math.sin(x) * math.cos(y) + math.tan(x * y / 4)


def math_inverse_trig(x):
    return math.asin(x / 2) + math.acos(x / 3) + math.atan(x)


def math_hyperbolic(x):
    return (
        math.sinh(x)
        - math.cosh(x / 2)
        + math.tanh(x)
        + math.asinh(x)
        + math.atanh(x / 2)
        + math.acosh(1 + x * x)
    )


def math_exp_log(x, y):
    return (
        math.exp(x) * math.log(y)
        + math.log(x, 2)
        + math.log10(y)
        + math.log2(x * y)
        + math.log1p(x)
        + math.expm1(y)
    )


def math_misc(x, y):
    return math.sqrt(x) + math.hypot(x, y) + math.atan2(y, x) + math.pow(x, y) + math.fabs(y)


def math_floor_ceil(x, y):
    return math.floor(x) * y + math.ceil(y) * x * x


# --- numpy functions ---------------------------------------------------------------------------


def np_trig(x, y):
    return np.sin(x) * np.cos(y) + np.tan(x)


def np_inverse_trig(x):
    return np.arcsin(x) + np.arccos(x / 2) + np.arctan(x) + np.arctan2(x, 1.5)


def np_hyperbolic(x, y):
    return (
        np.sinh(x) * np.cosh(y) + np.tanh(x * y) + np.arcsinh(y) + np.arccosh(2 + x * x) + np.arctanh(x / 3)
    )


def np_exp_log(x):
    return np.exp(x) + np.log(x) + np.log2(x) + np.log10(x) + np.exp2(x) + np.expm1(x) + np.log1p(x)


def np_powers(x, y):
    return np.sqrt(x) + np.cbrt(x - 2) + np.square(y) + np.power(x, y) + np.reciprocal(y)


def log_sum_exp(x, y):
    return 2 * np.logaddexp(x, y) + np.logaddexp(x, 0.0)


def np_where_clip(x, y):
    return np.where(x > y, x * y, x - y) + np.clip(x, -1.0, 1.0) * y


def np_ufunc_arith(x, y):
    return np.add(x, y) * np.multiply(x, y) - np.subtract(x, y) / np.divide(x, 2.0) + np.negative(y)


def np_kinks(x, y):
    return (
        np.abs(x) * np.sign(y)
        + np.fabs(y)
        + np.heaviside(x, 0.5) * y
        + np.maximum(x, y)
        + np.minimum(x, 0.2)
        + np.absolute(x * y)
    )


def np_rounding(x, y):
    return np.floor(x) * y + np.ceil(y) * x + np.round(x * y) + np.rint(y) * x


def gaussian_nll(mu, log_sigma):
    x = 1.3
    sigma = np.exp(log_sigma)
    return 0.5 * ((x - mu) / sigma) ** 2 + log_sigma + 0.5 * np.log(2 * np.pi)


def np_positive_float(x, y):
    return np.positive(x) * float(y) + np.true_divide(x, y)


# --- builtins ----------------------------------------------------------------------------------


def builtin_mix(x, y):
    return abs(x) * max(x, y) + min(y, 0.0) + pow(x, 2) + float(y)


def spread3(x, y, z):
    return max(x, y, z) - min(x, y, z) + max(x, 0.0, z)


def clamp_builtin(x):
    return min(max(x, -1.0), 1.0) * x


def builtin_pow(x, y):
    return pow(x, y) + pow(2.0, x) + pow(y, 3)


def builtin_round(x, y):
    return round(x) * y + abs(y - x)


# --- constants ---------------------------------------------------------------------------------


def circle_stuff(r):
    return math.pi * r**2 + np.pi * r + math.e**r


def pendulum_period(length):
    return 2 * math.pi * math.sqrt(length / GRAVITY)


def radioactive_decay(t, n0):
    return n0 * 0.5 ** (t / HALF_LIFE)


def projectile_height(v0, angle):
    t = 1.5
    return v0 * math.sin(angle) * t - 0.5 * GRAVITY * t**2 + np.e * 0.0


# --- gradient control --------------------------------------------------------------------------


def stop_gradient_product(x, y):
    return x * stop_gradient(x * y) + y


def straight_through_round(x):
    return x + detach(np.round(x) - x)


def no_grad_scale(x, y):
    with no_grad():
        scale = x * x + y
    return scale * x + y


def no_grad_helper(x, y):
    with symgrad.no_grad():
        norm = norm2(x, y)
        shift = 0.5 * x
    return x / norm + y / norm - shift


def detach_in_loop(x):
    s = 0.0
    for i in range(3):
        s += symgrad.detach(x**i) * x
    return s


# --- the registry --------------------------------------------------------------------------------

S = sympy  # short alias for the hand-written SymPy expressions


def _pw(*pieces):
    return S.Piecewise(*pieces)


CORPUS: list[Case] = [
    # arithmetic
    Case(cubic, [(0.3,), (-1.2,), (2.5,)], "arith", sym=lambda x: 3 * x**3 - 2 * x**2 + x - 7, second=True),
    Case(
        rational,
        [(0.3, -0.7), (1.5, 2.0), (-2.0, 0.4)],
        "arith",
        sym=lambda x, y: (x + 2 * y) / (1 + x**2 + y**2),
        second=True,
    ),
    Case(unary_signs, [(0.3, -0.7), (1.5, 2.0)], "arith", sym=lambda x, y: -x * y + (y - x) ** 2 + x),
    Case(
        mixed_powers,
        [(0.7, 1.3), (2.0, -0.6), (1.4, 0.5)],
        "arith",
        sym=lambda x, y: x ** S.Rational(5, 2) + y**-2 + x**y + 2**x,
        second=True,
    ),
    Case(
        floordiv_mod_const,
        [(0.3, 1.1), (1.9, -0.4), (-1.0, 0.8)],
        "arith",
        sym=lambda x, y: (
            S.floor(x / S.Rational(7, 10)) * y
            + (x - S.Rational(7, 10) * S.floor(x / S.Rational(7, 10))) * y**2
        ),
    ),
    Case(
        mod_traced_divisor,
        [(2.3, 0.9), (-2.3, 0.9), (1.7, -0.6), (0.4, 1.3)],
        "arith",
        sym=lambda x, y: x - y * S.floor(x / y) + x * y,
    ),
    Case(wrapped_angle_error, [(4.0, 0.5), (-5.0, 1.0), (1.0, 0.2)], "arith"),
    Case(kinetic_energy, [(2.0, 3.0), (0.5, -1.5)], "arith", sym=lambda m, v: m * v**2 / 2, second=True),
    Case(
        compound_interest, [(1000.0, 0.05), (250.0, 0.12)], "arith", sym=lambda p, r: p * (1 + r / 12) ** 120
    ),
    Case(harmonic_mean, [(1.0, 3.0), (0.4, 2.5)], "arith", sym=lambda a, b: 2 / (1 / a + 1 / b)),
    Case(
        quadratic_root,
        [(1.0, 3.0, 1.0), (0.5, -2.0, -1.0)],
        "arith",
        sym=lambda a, b, c: (-b + S.sqrt(b**2 - 4 * a * c)) / (2 * a),
    ),
    Case(
        lennard_jones,
        [(1.1, 1.0, 1.0), (1.5, 0.5, 1.2)],
        "arith",
        sym=lambda r, e, s: 4 * e * ((s / r) ** 12 - (s / r) ** 6),
        second=True,
    ),
    # control flow
    Case(relu_branch, [(0.7,), (-0.3,), (2.0,)], "control", sym=lambda x: _pw((x, x > 0), (0, True))),
    Case(
        huber,
        [(0.4,), (-0.8,), (2.5,), (-1.7,)],
        "control",
        sym=lambda r: _pw((r**2 / 2, abs(r) <= 1), (abs(r) - S.Rational(1, 2), True)),
    ),
    Case(
        sigmoid_stable, [(0.8,), (-1.3,), (3.0,)], "control", sym=lambda x: 1 / (1 + S.exp(-x)), second=True
    ),
    Case(
        piecewise_linear,
        [(-1.5,), (-0.5,), (0.5,), (1.5,)],
        "control",
        sym=lambda x: _pw(
            ((-1 + (x + 1) / 2) ** 2, x < -1),
            (x**2, x < 0),
            (4 * x**2, x < 1),
            ((2 + (x - 1) / 4) ** 2, True),
        ),
    ),
    Case(income_tax, [(5.0,), (25.0,), (60.0,)], "control"),
    Case(chained_comparisons, [(0.5, 0.5), (1.5, -0.3), (-0.5, 0.4), (0.5, -1.5), (0.3, -0.5)], "control"),
    Case(not_condition, [(0.5, 0.5), (1.5, 0.3), (0.5, -0.3)], "control"),
    Case(
        conditional_expression,
        [(1.2, 0.5), (0.3, 0.9), (-0.4, -1.1)],
        "control",
        sym=lambda x, y: _pw(((x * y) ** 2, x > y), ((x - y) ** 2, True)) + _pw((y, y > 0), (-y, True)),
    ),
    Case(
        multiple_returns,
        [(-0.5, 1.2), (0.7, -0.4), (0.7, 0.4)],
        "control",
        sym=lambda x, y: _pw((-x * y, x < 0), (x * y**2, y < 0), (x + y, True)),
    ),
    Case(truthiness, [(0.5, 2.0), (1.7, -0.3)], "control"),
    Case(safe_divide, [(1.0, 3.0), (-2.0, 0.5)], "control", sym=lambda a, b: a / b),
    Case(nonzero_check, [(1.0,), (-0.5,), (2.5,)], "control"),
    Case(clamp_if, [(-2.0,), (0.3,), (3.0,)], "control"),
    Case(nested_if, [(0.5, 0.5), (0.5, -0.5), (-0.5, 0.5)], "control"),
    Case(early_return_in_loop, [(0.5,), (1.5,), (-0.7,)], "control"),
    Case(first_crossing, [(0.1,), (0.5,), (0.95,), (-0.4,)], "control"),
    Case(
        nested_conditional_expression,
        [(1.5, 0.3), (0.2, -0.7), (-1.5, 0.4)],
        "control",
        sym=lambda x, y: _pw((2 * x * y, x > 1), (x * y / 2, x > -1), (-x * y, True)),
    ),
    Case(
        projectile_range,
        [(10.0, 0.3), (25.0, 1.1)],
        "control",
        sym=lambda v, a: v**2 * S.sin(2 * a) / S.Float(9.81, 30),
        second=True,
    ),
    Case(
        anharmonic_energy,
        [(0.5, 1.0), (-1.5, 0.2)],
        "control",
        sym=lambda x, p: p**2 / 2 + x**2 / 2 + x**4 / 10,
    ),
    # loops
    Case(
        taylor_exp,
        [(0.5,), (-1.2,), (2.0,)],
        "loops",
        sym=lambda x: sum(x**k / S.factorial(k) for k in range(12)),
        second=True,
    ),
    Case(
        horner,
        [(0.5,), (-1.3,), (2.0,)],
        "loops",
        sym=lambda x: S.Rational(1, 2) * x**4 - S.Rational(5, 4) * x**3 + 2 * x**2 + S.Rational(3, 4) * x - 3,
    ),
    Case(
        nested_loops,
        [(0.5, 1.5), (-1.2, 0.3)],
        "loops",
        sym=lambda x, y: sum(x**i * y**j / (1 + i + j) for i in range(3) for j in range(i + 1)),
    ),
    Case(
        loop_with_static_if,
        [(0.3,), (-1.1,), (2.0,)],
        "loops",
        sym=lambda x: sum(S.sin(i * x) if i % 2 == 0 else -S.cos(i * x) for i in range(6)),
        second=True,
    ),
    Case(fibonacci_like, [(0.5, 1.5), (-1.0, 2.0)], "loops"),
    Case(
        range_with_step,
        [(0.3,), (1.2,)],
        "loops",
        sym=lambda x: sum((x - S.Rational(k, 10)) ** 2 for k in range(0, 10, 3)),
    ),
    Case(halve_or_grow, [(0.5,), (1.9,), (3.3,)], "loops"),
    Case(euler_ode, [(0.5, 1.0), (2.0, -0.5)], "loops", second=True),
    Case(running_max, [(0.3, 1.0), (1.0, 0.2), (-0.5, -0.7)], "loops"),
    Case(
        augmented_ops,
        [(0.5, 1.5), (-1.2, 0.3)],
        "loops",
        sym=lambda x, y: (((x + y) * x - y / 2) / (1 + y**2)) ** 2,
        second=True,
    ),
    Case(logistic_loss, [(0.5, -0.2), (-1.0, 0.7)], "loops", second=True),
    Case(
        series_constant_bound,
        [(0.3,), (-0.6,)],
        "loops",
        sym=lambda x: sum((-1) ** (n + 1) * x**n / n for n in range(1, 7)),
    ),
    # calls to helpers
    Case(
        mixture_density,
        [(0.3, 0.4), (1.8, 0.7)],
        "calls",
        sym=lambda x, w: (
            w * S.exp(-(x**2) / 2) / S.sqrt(2 * S.pi)
            + (1 - w) * S.exp(-2 * (x - 2) ** 2) / (S.Rational(1, 2) * S.sqrt(2 * S.pi))
        ),
    ),
    Case(
        softplus_defaults,
        [(0.3, -0.4), (-0.2, 1.1)],
        "calls",
        sym=lambda x, y: (
            S.log(1 + S.exp(10 * x)) / 10 + S.log(1 + S.exp(2 * y)) / 2 + S.log(1 + S.exp(5 * x * y)) / 5
        ),
    ),
    Case(
        distance_from_polar,
        [(1.0, 0.5, 0.3), (2.0, -1.0, 1.5)],
        "calls",
        sym=lambda r, t, s: S.sqrt((r * S.cos(t) - s) ** 2 + (r * S.sin(t)) ** 2),
    ),
    Case(clipped_sum, [(0.3,), (0.8,)], "calls"),
    Case(
        cosine_similarity,
        [(1.0, 2.0, -0.5, 1.5), (0.3, -0.8, 2.0, 0.1)],
        "calls",
        sym=lambda a, b, c, d: (a * c + b * d) / (S.sqrt(a**2 + b**2) * S.sqrt(c**2 + d**2)),
    ),
    Case(gaussian_keywords, [(0.3, 0.1), (-0.5, 1.2)], "calls"),
    Case(helper_in_branch, [(1.0, 0.2), (1.0, 2.5), (-0.5, 0.5)], "calls"),
    # closures
    Case(
        spring_energy,
        [(1.2,), (-0.3,)],
        "closures",
        sym=lambda x: S.Rational(3, 2) * (x - S.Rational(1, 2)) ** 2,
    ),
    Case(quadratic_form, [(1.0, 2.0), (-0.5, 0.3)], "closures", sym=lambda x, y: 2 * x**2 - x * y + y**2 / 2),
    Case(
        layer,
        [(0.4,), (-1.0,)],
        "closures",
        sym=lambda x: S.tanh(S.Rational(3, 2) * x - S.Rational(1, 4)),
        second=True,
    ),
    Case(geometric_series, [(0.5,), (-1.3,)], "closures", sym=lambda x: sum(x**i for i in range(7))),
    Case(decay, [(0.5, 2.0), (3.0, -1.0)], "closures", sym=lambda t, a: a * S.exp(-S.Rational(3, 4) * t)),
    Case(scaled_spring, [(1.2,), (-0.3,)], "closures"),
    # math
    Case(
        math_trig, [(0.3, 0.7), (-1.1, 2.0)], "math", sym=lambda x, y: S.sin(x) * S.cos(y) + S.tan(x * y / 4)
    ),
    Case(
        math_inverse_trig, [(0.3,), (-1.1,)], "math", sym=lambda x: S.asin(x / 2) + S.acos(x / 3) + S.atan(x)
    ),
    Case(
        math_hyperbolic,
        [(0.3,), (-1.1,)],
        "math",
        sym=lambda x: S.sinh(x) - S.cosh(x / 2) + S.tanh(x) + S.asinh(x) + S.atanh(x / 2) + S.acosh(1 + x**2),
    ),
    Case(
        math_exp_log,
        [(0.3, 0.7), (1.1, 2.0)],
        "math",
        sym=lambda x, y: (
            S.exp(x) * S.log(y)
            + S.log(x) / S.log(2)
            + S.log(y) / S.log(10)
            + S.log(x * y) / S.log(2)
            + S.log(1 + x)
            + S.exp(y)
            - 1
        ),
    ),
    Case(
        math_misc,
        [(0.3, 0.7), (1.1, -2.0)],
        "math",
        sym=lambda x, y: S.sqrt(x) + S.sqrt(x**2 + y**2) + S.atan2(y, x) + x**y + abs(y),
    ),
    Case(math_floor_ceil, [(0.3, 0.7), (-1.1, 2.5)], "math"),
    # numpy
    Case(
        np_trig,
        [(0.3, 0.7), (-1.1, 2.0)],
        "numpy",
        sym=lambda x, y: S.sin(x) * S.cos(y) + S.tan(x),
        second=True,
    ),
    Case(
        np_inverse_trig,
        [(0.3,), (-0.6,)],
        "numpy",
        sym=lambda x: S.asin(x) + S.acos(x / 2) + S.atan(x) + S.atan2(x, S.Rational(3, 2)),
    ),
    Case(
        np_hyperbolic,
        [(0.3, 0.7), (-1.1, 0.4)],
        "numpy",
        sym=lambda x, y: (
            S.sinh(x) * S.cosh(y) + S.tanh(x * y) + S.asinh(y) + S.acosh(2 + x**2) + S.atanh(x / 3)
        ),
    ),
    Case(
        np_exp_log,
        [(0.3,), (1.7,)],
        "numpy",
        sym=lambda x: (
            S.exp(x)
            + S.log(x)
            + S.log(x) / S.log(2)
            + S.log(x) / S.log(10)
            + 2**x
            + S.exp(x)
            - 1
            + S.log(1 + x)
        ),
        second=True,
    ),
    Case(np_powers, [(0.3, 0.7), (2.5, -1.3)], "numpy"),
    Case(
        log_sum_exp,
        [(0.3, -0.7), (2.0, 1.5)],
        "numpy",
        sym=lambda x, y: 2 * S.log(S.exp(x) + S.exp(y)) + S.log(S.exp(x) + 1),
        second=True,
    ),
    Case(
        np_where_clip,
        [(0.5, 0.2), (-0.5, 0.3), (1.7, -0.4)],
        "numpy",
        sym=lambda x, y: _pw((x * y, x > y), (x - y, True)) + _pw((-1, x < -1), (1, x > 1), (x, True)) * y,
    ),
    Case(
        np_ufunc_arith,
        [(0.5, 0.2), (-1.5, 0.3)],
        "numpy",
        sym=lambda x, y: (x + y) * x * y - (x - y) / (x / 2) - y,
    ),
    Case(np_kinks, [(0.5, 0.2), (-0.5, 0.3), (1.3, -0.4)], "numpy"),
    Case(np_rounding, [(0.3, 0.8), (-1.3, 1.4)], "numpy"),
    Case(
        gaussian_nll,
        [(0.5, -0.2), (2.0, 0.3)],
        "numpy",
        sym=lambda mu, ls: (S.Rational(13, 10) - mu) ** 2 / (2 * S.exp(2 * ls)) + ls + S.log(2 * S.pi) / 2,
    ),
    Case(np_positive_float, [(0.5, 0.2), (-1.5, 1.3)], "numpy", sym=lambda x, y: x * y + x / y),
    # builtins
    Case(
        builtin_mix,
        [(0.5, 0.2), (-0.5, 0.3), (1.3, -0.4)],
        "builtins",
        sym=lambda x, y: abs(x) * S.Max(x, y) + S.Min(y, 0) + x**2 + y,
    ),
    Case(
        spread3,
        [(0.5, 0.2, 0.9), (-0.5, 0.3, -1.2), (1.3, -0.4, 0.1)],
        "builtins",
        sym=lambda x, y, z: S.Max(x, y, z) - S.Min(x, y, z) + S.Max(x, 0, z),
    ),
    Case(clamp_builtin, [(-1.5,), (0.4,), (2.0,)], "builtins", sym=lambda x: S.Min(S.Max(x, -1), 1) * x),
    Case(builtin_pow, [(0.5, 1.2), (1.7, -0.3)], "builtins", sym=lambda x, y: x**y + 2**x + y**3),
    Case(builtin_round, [(0.3, 0.8), (-1.3, 1.4)], "builtins"),
    # constants
    Case(
        circle_stuff,
        [(0.5,), (2.0,)],
        "constants",
        sym=lambda r: S.pi * r**2 + S.pi * r + S.E**r,
        second=True,
    ),
    Case(
        pendulum_period, [(1.0,), (2.5,)], "constants", sym=lambda L: 2 * S.pi * S.sqrt(L / S.Float(9.81, 30))
    ),
    Case(
        radioactive_decay,
        [(1000.0, 2.0), (9000.0, 0.5)],
        "constants",
        sym=lambda t, n0: n0 * S.Rational(1, 2) ** (t / 5730),
    ),
    Case(
        projectile_height,
        [(10.0, 0.5), (3.0, 1.2)],
        "constants",
        sym=lambda v, a: v * S.sin(a) * S.Rational(3, 2) - S.Float(9.81, 30) * S.Rational(9, 8),
    ),
    # gradient control
    Case(
        stop_gradient_product,
        [(0.5, 1.5), (-1.2, 0.3)],
        "stopgrad",
        frozen=lambda x0, y0: lambda x, y: x * (x0 * y0) + y,
    ),
    Case(
        straight_through_round,
        [(0.3,), (1.8,), (-2.4,)],
        "stopgrad",
        frozen=lambda x0: lambda x: x + (float(np.round(x0)) - x0),
    ),
    Case(
        no_grad_scale,
        [(0.5, 1.5), (-1.2, 0.3)],
        "stopgrad",
        frozen=lambda x0, y0: lambda x, y: (x0 * x0 + y0) * x + y,
    ),
    Case(
        no_grad_helper,
        [(0.5, 1.5), (-1.2, 0.3)],
        "stopgrad",
        frozen=lambda x0, y0: lambda x, y: x / math.hypot(x0, y0) + y / math.hypot(x0, y0) - 0.5 * x0,
    ),
    Case(
        detach_in_loop,
        [(0.5,), (-1.3,)],
        "stopgrad",
        frozen=lambda x0: lambda x: sum(x0**i * x for i in range(3)),
    ),
]

SYMPY_CASES = [case for case in CORPUS if case.sym is not None]
SECOND_ORDER_CASES = [case for case in CORPUS if case.second]
