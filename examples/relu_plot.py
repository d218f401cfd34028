"""The seed tutorial's relu and its gradient, plotted.

PyTorch: x = torch.arange(-8, 8, 0.1, requires_grad=True); y = x.relu(); y.sum().backward();
then plot y and x.grad. Here the gradient comes from symgrad's generated NumPy code.

    python examples/relu_plot.py [out.png]     (default: relu.png in the current directory)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display needed: render straight to a file

import matplotlib.pyplot as plt
import numpy as np

from symgrad import grad


def relu(x: np.ndarray) -> Any:  # numpy's stubs type np.maximum as Any
    return np.maximum(x, 0)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "relu.png")

    x = np.arange(-8, 8, 0.1)
    y = relu(x)
    dydx = grad(relu)(x)  # x.grad after y.sum().backward()

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(x, y, label="relu(x)")
    ax.plot(x, dydx, label="d relu / dx (symgrad)", linestyle="--")
    ax.set_xlabel("x")
    ax.set_title("relu and its gradient")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

    print("wrote", path.resolve())
    print("gradient equals (x > 0):", bool(np.array_equal(dydx, (x > 0).astype(float))))


if __name__ == "__main__":
    main()
