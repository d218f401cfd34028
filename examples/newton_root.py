"""Newton's method with derivatives from symgrad.

1. Wallis's cubic x**3 - 2*x - 5 = 0, the equation Newton himself used, with `grad` for f'(x);
2. Kepler's equation E - e*sin(E) = M for the eccentric anomaly E, differentiating only in E
   (`wrt="E"`: the eccentricity and the mean anomaly are ordinary inputs);
3. a 2-D system (a circle meets an exponential) with `jacobian` for the Newton matrix.

    python examples/newton_root.py
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from symgrad import grad, jacobian


def wallis(x: float) -> float:
    return x**3 - 2 * x - 5


def kepler(E: float, e: float, M: float) -> float:
    return E - e * math.sin(E) - M


def circle_and_exponential(x: float, y: float) -> tuple[float, float]:
    return x**2 + y**2 - 4, np.exp(x) + y - 1


def newton_scalar(
    f: Callable[[float], float],
    df: Callable[[float], float],
    x: float,
    name: str = "x",
    tol: float = 1e-14,
    steps: int = 50,
) -> float:
    """Newton's iteration x <- x - f(x)/f'(x), printing each iterate and its residual."""
    for k in range(steps):
        fx = f(x)
        print(f"  iter {k:2d}  {name} = {x:.17g}  residual = {abs(fx):.3e}")
        step = fx / df(x)
        x -= step
        if abs(step) <= tol * max(1.0, abs(x)):
            break
    print(f"  root {name} = {x:.17g}  residual = {abs(f(x)):.3e}")
    return x


def main() -> None:
    print("Wallis: x**3 - 2*x - 5 = 0")
    root = newton_scalar(wallis, grad(wallis), 2.0)
    print(f"  f'(root) from symgrad = {grad(wallis)(root):.17g}  (3*x**2 - 2 = {3 * root**2 - 2:.17g})")

    e, M = 0.6, 1.2
    print(f"Kepler: E - e*sin(E) = M with e = {e}, M = {M}")
    dkepler = grad(kepler, wrt="E")  # d/dE only: a single float
    E = newton_scalar(lambda E: kepler(E, e, M), lambda E: dkepler(E, e, M), M, name="E")
    print(f"  check: E - e*sin(E) = {E - e * math.sin(E):.17g}  (M = {M})")

    print("System: x**2 + y**2 = 4, exp(x) + y = 1")
    J = jacobian(circle_and_exponential, wrt=("x", "y"))  # (2, 2): rows are equations, columns x and y
    z = np.array([1.0, -1.0])
    for k in range(50):
        F = np.array(circle_and_exponential(*z))
        print(f"  iter {k:2d}  (x, y) = ({z[0]:.16f}, {z[1]:.16f})  |F| = {np.linalg.norm(F):.3e}")
        step = np.linalg.solve(J(*z), -F)
        z = z + step
        if np.linalg.norm(step) <= 1e-14 * max(1.0, float(np.linalg.norm(z))):
            break
    F = np.array(circle_and_exponential(*z))
    print(f"  root (x, y) = ({z[0]:.17g}, {z[1]:.17g})  residual = {np.linalg.norm(F):.3e}")
    by_hand = np.array([[2 * z[0], 2 * z[1]], [np.exp(z[0]), 1.0]])
    print("  jacobian at the root:", J(*z).tolist())
    print(f"  max |jacobian - [[2x, 2y], [exp(x), 1]]| = {np.max(np.abs(J(*z) - by_hand)):.3e}")


if __name__ == "__main__":
    main()
