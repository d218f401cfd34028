"""Smooth functions of 2-3 scalar arguments, each written twice: with NumPy for symgrad
(`*_np`, traced from this file's source) and with PyTorch for the reference (`*_torch`).

Used by tests/test_torch_parity.py. The NumPy twin must keep to what symgrad traces
(elementwise NumPy calls, arithmetic, tuples of outputs); the torch twin computes the same
mathematical function so that `torch.autograd.functional` gives reference derivatives.
Every case lists a box `domain` where the function is smooth and well conditioned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# --- scalar outputs ------------------------------------------------------------------------------


def sin_mul_np(x, y):
    return np.sin(x) * y + x * x


def sin_mul_torch(x, y):
    return torch.sin(x) * y + x * x


def exp_log_np(x, y):
    return np.exp(x * y) - np.log1p(y * y)


def exp_log_torch(x, y):
    return torch.exp(x * y) - torch.log1p(y * y)


def rosenbrock_np(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def rosenbrock_torch(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def logaddexp_np(x, y):
    return np.logaddexp(x, 2.0 * y) * x


def logaddexp_torch(x, y):
    return torch.logaddexp(x, 2.0 * y) * x


def tanh_sigmoid_np(x, y, z):
    return np.tanh(x * y) + 1.0 / (1.0 + np.exp(-z * x))


def tanh_sigmoid_torch(x, y, z):
    return torch.tanh(x * y) + 1.0 / (1.0 + torch.exp(-z * x))


def norm3_np(x, y, z):
    return np.sqrt(x * x + y * y + z * z)


def norm3_torch(x, y, z):
    return torch.sqrt(x * x + y * y + z * z)


def power_np(x, y):
    return np.power(x, y) + x**3 / y


def power_torch(x, y):
    return torch.pow(x, y) + x**3 / y


def inverse_trig_np(x, y):
    return np.arctan(x * y) + np.arcsinh(x - y) + np.arcsin(0.3 * x * y)


def inverse_trig_torch(x, y):
    return torch.arctan(x * y) + torch.arcsinh(x - y) + torch.arcsin(0.3 * x * y)


def logs_np(x, y, z):
    return np.log(x) / y + np.log2(x * z) - np.log10(y + z) * x


def logs_torch(x, y, z):
    return torch.log(x) / y + torch.log2(x * z) - torch.log10(y + z) * x


def rational_np(x, y, z):
    return (x * y - z) / (1.0 + x * x + z * z)


def rational_torch(x, y, z):
    return (x * y - z) / (1.0 + x * x + z * z)


def expm1_tan_np(x, y, z):
    return np.expm1(x * y) * np.sqrt(z) + np.tan(0.5 * x) * np.cos(y * z)


def expm1_tan_torch(x, y, z):
    return torch.expm1(x * y) * torch.sqrt(z) + torch.tan(0.5 * x) * torch.cos(y * z)


def atan2_hypot_np(x, y):
    return np.arctan2(y, x) * np.hypot(x, y)


def atan2_hypot_torch(x, y):
    return torch.atan2(y, x) * torch.hypot(x, y)


def horner_np(x, y):
    acc = 0.0
    for c in (1.0, -2.0, 0.5, 3.0):
        acc = acc * x + c * y
    return acc * np.exp(-0.5 * x)


def horner_torch(x, y):
    acc = 0.0
    for c in (1.0, -2.0, 0.5, 3.0):
        acc = acc * x + c * y
    return acc * torch.exp(-0.5 * x)


# --- tuple outputs -------------------------------------------------------------------------------


def polar_np(r, t):
    return r * np.cos(t), r * np.sin(t)


def polar_torch(r, t):
    return r * torch.cos(t), r * torch.sin(t)


def spherical_np(r, t, p):
    return r * np.sin(t) * np.cos(p), r * np.sin(t) * np.sin(p), r * np.cos(t)


def spherical_torch(r, t, p):
    return r * torch.sin(t) * torch.cos(p), r * torch.sin(t) * torch.sin(p), r * torch.cos(t)


def hyperbolic_np(x, y):
    return np.sinh(x) * np.cosh(y), np.cosh(x) - np.sinh(x * y)


def hyperbolic_torch(x, y):
    return torch.sinh(x) * torch.cosh(y), torch.cosh(x) - torch.sinh(x * y)


def gaussians_np(x, y, z):
    s = np.exp(-(x * x + y * y))
    return s * z, x * np.exp(-y) + z * z, y * np.exp(-x) * s


def gaussians_torch(x, y, z):
    s = torch.exp(-(x * x + y * y))
    return s * z, x * torch.exp(-y) + z * z, y * torch.exp(-x) * s


def mixed_np(x, y, z):
    u = x * y + np.sin(z)
    v = np.log(1.0 + u * u)
    return v * z, u / (1.0 + v)


def mixed_torch(x, y, z):
    u = x * y + torch.sin(z)
    v = torch.log(1.0 + u * u)
    return v * z, u / (1.0 + v)


# --- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    f_np: Callable[..., Any]
    f_torch: Callable[..., Any]
    n_in: int
    n_out: int
    domain: tuple[tuple[float, float], ...]  # one (low, high) per argument


def _case(f_np, f_torch, n_out, *domain):
    name = f_np.__name__.removesuffix("_np")
    return Case(name, f_np, f_torch, len(domain), n_out, tuple(domain))


WIDE = (-1.5, 1.5)
POSITIVE = (0.3, 2.0)

CASES: tuple[Case, ...] = (
    _case(sin_mul_np, sin_mul_torch, 1, WIDE, WIDE),
    _case(exp_log_np, exp_log_torch, 1, WIDE, WIDE),
    _case(rosenbrock_np, rosenbrock_torch, 1, WIDE, WIDE),
    _case(logaddexp_np, logaddexp_torch, 1, WIDE, WIDE),
    _case(tanh_sigmoid_np, tanh_sigmoid_torch, 1, WIDE, WIDE, WIDE),
    _case(norm3_np, norm3_torch, 1, POSITIVE, WIDE, WIDE),
    _case(power_np, power_torch, 1, POSITIVE, POSITIVE),
    _case(inverse_trig_np, inverse_trig_torch, 1, WIDE, WIDE),
    _case(logs_np, logs_torch, 1, POSITIVE, POSITIVE, POSITIVE),
    _case(rational_np, rational_torch, 1, WIDE, WIDE, WIDE),
    _case(expm1_tan_np, expm1_tan_torch, 1, WIDE, WIDE, POSITIVE),
    _case(atan2_hypot_np, atan2_hypot_torch, 1, POSITIVE, WIDE),
    _case(horner_np, horner_torch, 1, WIDE, WIDE),
    _case(polar_np, polar_torch, 2, POSITIVE, WIDE),
    _case(spherical_np, spherical_torch, 3, POSITIVE, WIDE, WIDE),
    _case(hyperbolic_np, hyperbolic_torch, 2, WIDE, WIDE),
    _case(gaussians_np, gaussians_torch, 3, WIDE, WIDE, WIDE),
    _case(mixed_np, mixed_torch, 2, WIDE, WIDE, WIDE),
)

SCALAR_CASES = tuple(c for c in CASES if c.n_out == 1)
TUPLE_CASES = tuple(c for c in CASES if c.n_out > 1)


def points(case: Case, count: int = 3, seed: int = 0) -> list[tuple[float, ...]]:
    """`count` points (tuples of Python floats) drawn uniformly from the case's domain."""
    rng = np.random.default_rng([seed, len(case.name), *map(ord, case.name)])
    return [tuple(float(rng.uniform(lo, hi)) for lo, hi in case.domain) for _ in range(count)]


def arrays(
    case: Case, shapes: tuple[tuple[int, ...], ...] | None = None, seed: int = 1
) -> tuple[np.ndarray, ...]:
    """float64 arrays from the case's domain; by default all of shape (2, 3)."""
    rng = np.random.default_rng([seed, len(case.name), *map(ord, case.name)])
    shapes = shapes or ((2, 3),) * case.n_in
    return tuple(rng.uniform(lo, hi, size=shape) for (lo, hi), shape in zip(case.domain, shapes, strict=True))
