"""Fit a logistic regression with scipy.optimize.minimize, using symgrad's gradient as `jac`."""

import numpy as np
from scipy.optimize import minimize

from symgrad import value_and_grad


def negative_log_likelihood(w, X, y):
    z = X @ w
    return np.sum(np.logaddexp(0.0, z) - y * z)


def make_data(rows: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(rows), rng.normal(size=(rows, 2))])
    true_w = np.array([-0.5, 2.0, -1.0])
    y = (rng.random(rows) < 1 / (1 + np.exp(-X @ true_w))).astype(float)
    return X, y, true_w


def main() -> None:
    X, y, true_w = make_data()
    loss = value_and_grad(negative_log_likelihood, wrt="w")
    result = minimize(loss, np.zeros(3), args=(X, y), jac=True, method="BFGS")
    print(loss.source)  # the generated gradient: matrix code, no loop over the 500 rows
    print(f"converged: {result.success} in {result.nit} iterations, {result.njev} gradient calls")
    print("fitted w:", np.round(result.x, 3), " true w:", true_w)
    finite_differences = minimize(negative_log_likelihood, np.zeros(3), args=(X, y), method="BFGS")
    print(f"with finite-difference gradients: {finite_differences.nfev} function calls")


if __name__ == "__main__":
    main()
