"""The seed tutorial's first example: x = arange(-8, 8, 0.1); y = relu(x); y.sum().backward()."""

import numpy as np

from symgrad import grad


def relu(x):
    return np.maximum(x, 0)


def main() -> None:
    x = np.arange(-8, 8, 0.1)
    dydx = grad(relu)(x)  # PyTorch: y = x.relu(); y.sum().backward(); x.grad
    print(grad(relu).source)
    print("gradient equals (x > 0):", bool(np.array_equal(dydx, (x > 0).astype(float))))
    print("relu'(0) =", grad(relu)(0.0), "(the torch.relu convention)")


if __name__ == "__main__":
    main()
