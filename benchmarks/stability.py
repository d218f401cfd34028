"""Stability comparison: naive forms (tests/stability_cases.py and the S12 programs of
tests/test_stability.py) through symgrad, jax.grad and PyTorch autograd, on the grid of
tests/test_stability.py; counts of grid points whose value and derivative are finite and within
1e-12 relative (or 1e-300 absolute) of mpmath.

Run: python -m benchmarks.stability
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath

from symgrad import value_and_grad
from tests import stability_cases as cases
from tests import test_stability as stability
from tests.test_stability import GRID, SCALAR, _close, _finite

Pair = Callable[[float], tuple[float, float]]
W = 1.5  # the weight of the softplus loop row


@dataclass(frozen=True)
class Row:
    """One naive form: how symgrad, JAX and PyTorch get it, and its exact value and derivative."""

    label: str
    symgrad: Callable[[], Pair]
    form: Callable[[Any, Any], Any]  # (array module, x) -> value, for jax.numpy and torch
    exact: Callable[[Any], Any]
    derivative: Callable[[Any], Any]
    domain: tuple[float, float] | None = None


def _symgrad_of(fn: Callable[..., Any], *extra: float, **options: Any) -> Callable[[], Pair]:
    def make() -> Pair:
        compiled = value_and_grad(fn, **options)
        return lambda x: compiled(float(x), *extra)  # type: ignore[no-any-return]

    return make


def _loop(m: Any, x: Any) -> Any:
    h = x
    for _ in range(3):
        h = m.log1p(m.exp(W * h))
    return h


CASE_FORMS: dict[str, tuple[str, Callable[[Any, Any], Any]]] = {
    "softplus": ("np.log(1 + np.exp(x))", lambda m, x: m.log(1 + m.exp(x))),
    "sigmoid": ("1 / (1 + np.exp(-x))", lambda m, x: 1 / (1 + m.exp(-x))),
    "sigmoid_ratio": ("np.exp(x) / (1 + np.exp(x))", lambda m, x: m.exp(x) / (1 + m.exp(x))),
    "log_one_plus": ("np.log(1 + x)", lambda m, x: m.log(1 + x)),
    "exp_minus_one": ("np.exp(x) - 1", lambda m, x: m.exp(x) - 1),
}
S12_FORMS: dict[str, tuple[str, Callable[[Any, Any], Any]]] = {
    "log1p_exp": ("np.log1p(np.exp(x))", lambda m, x: m.log1p(m.exp(x))),
    "log_sigmoid": ("np.log(1 / (1 + np.exp(-x)))", lambda m, x: m.log(1 / (1 + m.exp(-x)))),
    "one_minus_sigmoid": ("1 - 1 / (1 + np.exp(-x))", lambda m, x: 1 - 1 / (1 + m.exp(-x))),
    "log_of_three_exps": (
        "np.log(np.exp(x) + 2 * np.exp(-x) + 1)",
        lambda m, x: m.log(m.exp(x) + 2 * m.exp(-x) + 1),
    ),
    "softmax_of_two": (
        "np.exp(x) / (np.exp(x) + np.exp(0.5 * x))",
        lambda m, x: m.exp(x) / (m.exp(x) + m.exp(0.5 * x)),
    ),
}


def _rows() -> list[Row]:
    rows = []
    for name, (label, form) in CASE_FORMS.items():
        _, value, derivative, domain = SCALAR[name]
        rows.append(Row(label, _symgrad_of(getattr(cases, name)), form, value, derivative, domain))
    for name, (label, form) in S12_FORMS.items():
        fn = getattr(stability, name)
        exact = stability.Exact(stability.S12_SCALAR[fn], (stability.X,))
        rows.append(Row(label, _symgrad_of(fn), form, exact.value, exact.first[0]))
    loop = stability.S12_PAIRS[stability.softplus_loop][0].subs(stability.Y, W)
    exact = stability.Exact(loop, (stability.X,))
    label = f"3 x `h = np.log1p(np.exp(w * h))`, w = {W}"
    rows.append(
        Row(label, _symgrad_of(stability.softplus_loop, W, wrt="x"), _loop, exact.value, exact.first[0])
    )
    return rows


def _jax(row: Row) -> Pair | None:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    vg = jax.jit(jax.value_and_grad(lambda x: row.form(jnp, x)))
    return lambda x: tuple(float(v) for v in vg(float(x)))  # type: ignore[return-value]


def _torch(row: Row) -> Pair | None:
    try:
        import torch
    except ImportError:
        return None

    def run(x: float) -> tuple[float, float]:
        t = torch.tensor(float(x), dtype=torch.float64, requires_grad=True)
        y = row.form(torch, t)
        (d,) = torch.autograd.grad(y, t)
        return float(y), float(d)

    return run


def count(fn: Pair, row: Row) -> tuple[int, int]:
    good = total = 0
    for x in GRID:
        if row.domain is not None and not row.domain[0] < x < row.domain[1]:
            continue
        with mpmath.workdps(stability.EXACT_DIGITS):  # the naive formulas cancel: digits to spare
            v, d = +row.exact(mpmath.mpf(x)), +row.derivative(mpmath.mpf(x))
        if not (_finite(v) and _finite(d)):
            continue
        total += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value, derivative = fn(x)
        good += _close(value, v) and _close(derivative, d)
    return good, total


def main() -> None:
    systems: dict[str, Callable[[Row], Pair | None]] = {
        "symgrad": lambda row: row.symgrad(),
        "jax.grad": _jax,
        "PyTorch": _torch,
    }
    print("| function (as written) | " + " | ".join(systems) + " |")
    print("| --- |" + " ---: |" * len(systems))
    for row in _rows():
        cells = []
        for make in systems.values():
            fn = make(row)
            if fn is None:
                cells.append("not installed")
                continue
            good, total = count(fn, row)
            cells.append(f"{good}/{total}")
        label = row.label if row.label.startswith("3 x") else f"`{row.label}`"
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
