"""Stability comparison: the naive forms of tests/stability_cases.py through symgrad, jax.grad
and PyTorch autograd, on the grid of tests/test_stability.py; counts of grid points whose value
and derivative are finite and within 1e-12 relative (or 1e-300 absolute) of mpmath.

Run: python -m benchmarks.stability
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import mpmath

from symgrad import value_and_grad
from tests import stability_cases as cases
from tests.test_stability import GRID, SCALAR, _close, _finite


def _symgrad(name: str) -> Callable[[float], tuple[float, float]]:
    compiled = value_and_grad(getattr(cases, name))
    return lambda x: compiled(float(x))


def _jax(name: str) -> Callable[[float], tuple[float, float]] | None:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    forms: dict[str, Any] = {
        "softplus": lambda x: jnp.log(1 + jnp.exp(x)),
        "sigmoid": lambda x: 1 / (1 + jnp.exp(-x)),
        "sigmoid_ratio": lambda x: jnp.exp(x) / (1 + jnp.exp(x)),
        "log_one_plus": lambda x: jnp.log(1 + x),
        "exp_minus_one": lambda x: jnp.exp(x) - 1,
    }
    vg = jax.jit(jax.value_and_grad(forms[name]))
    return lambda x: tuple(float(v) for v in vg(float(x)))  # type: ignore[return-value]


def _torch(name: str) -> Callable[[float], tuple[float, float]] | None:
    try:
        import torch
    except ImportError:
        return None
    forms: dict[str, Any] = {
        "softplus": lambda x: torch.log(1 + torch.exp(x)),
        "sigmoid": lambda x: 1 / (1 + torch.exp(-x)),
        "sigmoid_ratio": lambda x: torch.exp(x) / (1 + torch.exp(x)),
        "log_one_plus": lambda x: torch.log(1 + x),
        "exp_minus_one": lambda x: torch.exp(x) - 1,
    }

    def run(x: float) -> tuple[float, float]:
        t = torch.tensor(float(x), dtype=torch.float64, requires_grad=True)
        y = forms[name](t)
        (d,) = torch.autograd.grad(y, t)
        return float(y), float(d)

    return run


def count(fn: Callable[[float], tuple[float, float]], name: str) -> tuple[int, int]:
    _, exact_value, exact_derivative, domain = SCALAR[name]
    good = total = 0
    for x in GRID:
        if domain is not None and not domain[0] < x < domain[1]:
            continue
        v, d = exact_value(mpmath.mpf(x)), exact_derivative(mpmath.mpf(x))
        if not (_finite(v) and _finite(d)):
            continue
        total += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value, derivative = fn(x)
        good += _close(value, v) and _close(derivative, d)
    return good, total


def main() -> None:
    systems = {"symgrad": _symgrad, "jax.grad": _jax, "PyTorch": _torch}
    print("| function (as written) | " + " | ".join(systems) + " |")
    print("| --- |" + " ---: |" * len(systems))
    for name in SCALAR:
        cells = []
        for make in systems.values():
            fn = make(name)
            if fn is None:
                cells.append("not installed")
                continue
            good, total = count(fn, name)
            cells.append(f"{good}/{total}")
        print(f"| `{name}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
