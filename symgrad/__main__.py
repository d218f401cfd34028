"""`python -m symgrad`: a demo that decorates a few functions and prints their derivatives."""

from __future__ import annotations

import numpy as np

from .api import grad, value_and_grad


def demo_branch(x, y):  # type: ignore[no-untyped-def]
    if x > y:  # noqa: SIM108 - an if statement is what the demo shows
        z = np.sin(x) * y
    else:
        z = x**2 + np.exp(y)
    return z / (1 + y * y)


def demo_relu(x):  # type: ignore[no-untyped-def]
    return np.maximum(x, 0)


def demo_softplus_loop(x, w):  # type: ignore[no-untyped-def]
    h = x
    for _ in range(3):
        h = np.log1p(np.exp(w * h))
    return h


def main() -> int:
    """Print the generated derivative source and values of three example functions."""
    for fn, args in (
        (demo_branch, (1.0, 2.0)),
        (demo_relu, (np.arange(-2.0, 2.5, 1.0),)),
        (demo_softplus_loop, (0.5, 1.5)),
    ):
        compiled = value_and_grad(fn)
        print(f"=== {fn.__name__} ===")
        print(compiled.source)
        value, gradient = compiled(*args)
        print(f"value_and_grad{args!r}:\n  value = {value!r}\n  gradient = {gradient!r}\n")
    print("relu'(x) on arange(-2, 2.5, 1):", grad(demo_relu)(np.arange(-2.0, 2.5, 1.0)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
