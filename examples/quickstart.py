"""Quickstart: decorate functions with @grad, read the generated derivative, call it."""

import numpy as np

from symgrad import grad, hessian, value_and_grad


@grad(wrt=("x", "y"))  # the default is the first parameter alone, as in jax.grad
def f(x, y):
    if x > y:
        z = np.sin(x) * y
    else:
        z = x**2 + np.exp(y)
    return z / (1 + y * y)


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def main() -> None:
    dfdx, dfdy = f(1.0, 2.0)  # Python floats in, Python floats out
    print("f'(1, 2) =", (dfdx, dfdy))
    print(f.source)  # the generated derivative code

    g = grad(f.fn)  # the default wrt, the first parameter: a single value, not a tuple
    print("df/dx at (3, 2) =", g(3.0, 2.0))

    value, (gx, gy) = value_and_grad(f.fn, wrt=("x", "y"))(1.0, 2.0)
    print("value and gradient at (1, 2):", value, (gx, gy))

    x = np.arange(-8.0, 8.0, 0.1)
    gx, gy = f(x, 0.5)  # elementwise: gx has x's shape, gy is summed into a float
    print("on an array:", gx.shape, type(gy).__name__, round(gy, 6))

    both = ("x", "y")
    print(value_and_grad(rosenbrock, wrt=both).source)
    print("Rosenbrock gradient at (1, 1):", grad(rosenbrock, wrt=both)(1.0, 1.0))
    print("Rosenbrock Hessian at (1, 1):\n", hessian(rosenbrock, wrt=both)(1.0, 1.0))


if __name__ == "__main__":
    main()
