"""`python -m symgrad` and the `symgrad` command: without arguments, a demo; else the CLI."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

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


def demo() -> int:
    """Print the generated derivative source and values of three example functions."""
    for fn, wrt, args in (
        (demo_branch, ("x", "y"), (1.0, 2.0)),
        (demo_relu, "x", (np.arange(-2.0, 2.5, 1.0),)),
        (demo_softplus_loop, ("x", "w"), (0.5, 1.5)),
    ):
        compiled = value_and_grad(fn, wrt=wrt)  # every parameter: a tuple of partials
        print(f"=== {fn.__name__} ===")
        print(compiled.source)
        value, gradient = compiled(*args)
        print(f"value_and_grad{args!r}:\n  value = {value!r}\n  gradient = {gradient!r}\n")
    print("relu'(x) on arange(-2, 2.5, 1):", grad(demo_relu)(np.arange(-2.0, 2.5, 1.0)))
    # exp(1.5 * 800) overflows; the loop runs as logaddexp(0, w*h), so both stay finite.
    print("softplus loop at (800.0, 1.5):", value_and_grad(demo_softplus_loop, wrt=("x", "w"))(800.0, 1.5))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `symgrad` command: the demo without arguments, else `symgrad.cli` (show, check, plot)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if not args:
            return demo()
        from .cli import main as cli_main

        return cli_main(args, demo=demo)
    except BrokenPipeError:  # `symgrad show ... | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
