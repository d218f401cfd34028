"""Minimize the Rosenbrock function with scipy.optimize, three ways.

1. trust-exact, a Newton method, with the gradient (`jac=`) and the Hessian (`hess=`) from symgrad;
2. BFGS with symgrad's gradient;
3. BFGS with scipy's finite-difference gradient (no `jac=`).

Each run prints its iteration count, the function/gradient/Hessian evaluation counts that scipy
reports, how many times the objective's code actually ran, and the optimum it found.

    python examples/rosenbrock_scipy.py
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult, minimize, rosen_der, rosen_hess

from symgrad import grad, hessian, value_and_grad

X0 = np.array([-1.2, 1.0])  # the classic starting point


def rosenbrock(x: np.ndarray) -> Any:  # x[0] of an ndarray is Any to mypy
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


class Counted:
    """Wraps a callable and counts how many times it runs."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.fn(*args)


def report(label: str, result: OptimizeResult, calls: int) -> None:
    counts = " ".join(f"{k}={getattr(result, k, 0)}" for k in ("nit", "nfev", "njev", "nhev"))
    x = ", ".join(f"{v:.10f}" for v in result.x)
    print(f"{label:<22} success={result.success} {counts} objective_runs={calls} x=[{x}] f={result.fun:.3e}")


def check_derivatives() -> float:
    """Largest difference between symgrad's derivatives and scipy's hand-written ones."""
    g, h = grad(rosenbrock), hessian(rosenbrock)
    points = np.random.default_rng(0).uniform(-2, 2, size=(5, 2))
    worst = 0.0
    for p in (X0, *points):
        worst = max(worst, float(np.max(np.abs(g(p) - rosen_der(p)))))
        worst = max(worst, float(np.max(np.abs(h(p) - rosen_hess(p)))))
    return worst


def main() -> None:
    value_grad = value_and_grad(rosenbrock)  # one program: (f, df/dx)
    hess = hessian(rosenbrock)  # a (2, 2) array for a vector x of length 2
    print("symgrad gradient at x0:", value_grad(X0)[1])
    print("symgrad Hessian at x0:", hess(X0).tolist())
    print(f"max |symgrad - scipy.optimize.rosen_der/rosen_hess| = {check_derivatives():.3e}")

    objective = Counted(value_grad)
    newton = minimize(objective, X0, jac=True, hess=hess, method="trust-exact")
    report("trust-exact symgrad", newton, objective.calls)

    objective = Counted(value_grad)
    bfgs = minimize(objective, X0, jac=True, method="BFGS")
    report("BFGS symgrad", bfgs, objective.calls)

    objective = Counted(rosenbrock)
    finite_differences = minimize(objective, X0, method="BFGS")  # scipy's 2-point differences
    report("BFGS finite-diff", finite_differences, objective.calls)


if __name__ == "__main__":
    main()
