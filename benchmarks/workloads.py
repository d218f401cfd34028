# ruff: noqa: N803, N806  (D: the loop bound, named as in the benchmark issue)
"""Workload functions of the benchmark suite, written once per system.

symgrad reads source, so its versions are plain module-level functions written with `np`.
The peers' versions are built by small factories (`make_*`) so that this module imports
without jax, torch or autograd installed. The hand-written gradients are the baselines.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

GENERATED = Path(__file__).resolve().parent / "_generated"

# --- W1: relu summed (the seed tutorial) --------------------------------------------------------


def relu(x):
    return np.maximum(x, 0)


def relu_grad_hand(x):
    return (x > 0).astype(float)


def make_relu(xp: Any, kind: str) -> Callable[..., Any]:
    if kind == "torch":
        return lambda x: xp.clamp(x, min=0)
    return lambda x: xp.maximum(x, 0)


# --- W2: Rosenbrock on Python floats -------------------------------------------------------------


def rosen(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def rosen_grad_hand(x, y):
    r = y - x * x
    return (-2.0 * (1.0 - x) - 400.0 * x * r, 200.0 * r)


def make_rosen(xp: Any, kind: str) -> Callable[..., Any]:
    return lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2


# --- W3: a smooth elementwise function on 1e6 float64 ---------------------------------------------


def smooth(x):
    return np.sin(x) * np.exp(-(x**2) / 2) / (1 + x**2) + np.log(1 + np.exp(x))


def smooth_grad_hand(x):
    """d/dx [sin(x) e^(-x^2/2) / (1+x^2) + log(1+e^x)], written by hand with few temporaries."""
    q = x * x
    q += 1.0  # q = 1 + x^2
    e = np.exp(-0.5 * (q - 1.0))  # e^(-x^2/2)
    e /= q
    s = np.sin(x)
    t = 2.0 / q
    t += 1.0
    t *= x
    t *= s  # x sin(x) (1 + 2/q)
    g = np.cos(x)
    g -= t
    g *= e
    ex = np.exp(x)
    ex /= 1.0 + ex  # softplus' = sigmoid
    g += ex
    return g


def make_smooth(xp: Any, kind: str) -> Callable[..., Any]:
    return lambda x: xp.sin(x) * xp.exp(-(x**2) / 2) / (1 + x**2) + xp.log(1 + xp.exp(x))


def flat(value: Any) -> np.ndarray:
    """A result (a number, an array, a tensor, or tuples of them) as one float64 vector, for
    comparing every system's gradient with the hand-written one."""
    if isinstance(value, (tuple, list)):
        return np.concatenate([flat(v) for v in value]) if value else np.zeros(0)
    if hasattr(value, "detach"):  # torch
        value = value.detach().numpy()
    return np.asarray(value, dtype=np.float64).ravel()


# --- W4: a scalar recurrence h = tanh(w[i % 10] * h + b), unrolled D times ------------------------

W4_PARAMS = ("h0", *(f"w{i}" for i in range(10)), "b")
W4_ARGS = (0.3, *(0.5 + 0.05 * i for i in range(10)), 0.1)  # the floats every W4 row runs on


def rnn(h0, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, b, D):
    w = (w0, w1, w2, w3, w4, w5, w6, w7, w8, w9)
    h = h0
    for i in range(D):
        h = np.tanh(w[i % 10] * h + b)
    return h


def make_rnn(xp: Any, kind: str, D: int) -> Callable[..., Any]:
    def f(h0, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, b):
        w = (w0, w1, w2, w3, w4, w5, w6, w7, w8, w9)
        h = h0
        for i in range(D):
            h = xp.tanh(w[i % 10] * h + b)
        return h

    return f


def rnn_value_and_grad_hand(h0: Any, *rest: Any) -> tuple[Any, tuple[Any, ...]]:
    """Hand-written reverse pass of `rnn(h0, w0, ..., w9, b, D)`; Python floats use `math`,
    a 1-D array of h0 values uses NumPy (w and b shared: their gradients are summed)."""
    *w, b, D = rest
    assert len(w) == 10
    scalar = type(h0) is float
    tanh = math.tanh if scalar else np.tanh
    hs = [h0]
    h = h0
    for i in range(D):
        h = tanh(w[i % 10] * h + b)
        hs.append(h)
    gh = 1.0
    gw = [0.0] * 10
    gb = 0.0
    for i in range(D - 1, -1, -1):
        h = hs[i + 1]
        d = gh * (1.0 - h * h)
        if scalar:
            gw[i % 10] += d * hs[i]
            gb += d
        else:  # a batch of h0 values sharing the parameters w, b (1-D arrays)
            gw[i % 10] += float(np.dot(d, hs[i]))
            gb += float(np.sum(d))
        gh = d * w[i % 10]
    return hs[-1], (gh, *gw, gb)


def rnn_forward_source(D: int) -> str:
    """The function alone, unrolled by hand: the reference for the operation count."""
    lines = [f"def rnn_unrolled({', '.join(W4_PARAMS)}):", "    h = h0"]
    lines += [f"    h = np.tanh(w{i % 10} * h + b)" for i in range(D)]
    lines.append("    return h")
    return "\n".join(lines) + "\n"


def count_ops(source: str) -> int:
    """Arithmetic operators and calls in `source`: ast BinOp, UnaryOp and Call nodes."""
    return sum(isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Call)) for node in ast.walk(ast.parse(source)))


# --- W5: sum_i exp(x_i) (x_i - x_{i+1})^2 over n scalar parameters (a generated module) ----------


def chain_source(n: int) -> str:
    args = ", ".join(f"x{i}" for i in range(n))
    body = ["    s = 0.0"]
    body += [f"    s = s + XP.exp(x{i}) * (x{i} - x{i + 1}) ** 2" for i in range(n - 1)]
    body.append("    return s")
    numpy_body = "\n".join(body).replace("XP.", "np.")
    peer_body = "\n".join("    " + line for line in body).replace("XP.", "xp.")
    return (
        f'"""Generated by benchmarks/workloads.py: W5 with n = {n}."""\n\n'
        "import numpy as np\n\n\n"
        f"def chain({args}):\n{numpy_body}\n\n\n"
        "def make(xp):\n"
        f"    def chain({args}):\n{peer_body}\n\n"
        "    return chain\n"
    )


def chain_module(n: int) -> ModuleType:
    """Write (if needed) and import `benchmarks/_generated/w5_n{n}.py`."""
    GENERATED.mkdir(exist_ok=True)
    path = GENERATED / f"w5_n{n}.py"
    text = chain_source(n)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)
    name = f"benchmarks._generated.w5_n{n}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def chain_grad_hand(*x: float) -> tuple[float, ...]:
    n = len(x)
    g = [0.0] * n
    exp = math.exp
    for i in range(n - 1):
        e = exp(x[i])
        d = x[i] - x[i + 1]
        ed = e * d
        g[i] += ed * d + 2.0 * ed
        g[i + 1] -= 2.0 * ed
    return tuple(g)


def chain_sympy(n: int) -> Callable[..., Any]:
    """The naive SymPy path: one expression, `diff` per input, `lambdify(cse=True)`."""
    import sympy

    xs = sympy.symbols(f"x0:{n}", real=True)
    expr = sympy.Add(*[sympy.exp(xs[i]) * (xs[i] - xs[i + 1]) ** 2 for i in range(n - 1)])
    grads = [sympy.diff(expr, x) for x in xs]
    return sympy.lambdify(xs, grads, modules="math", cse=True)  # type: ignore[no-any-return]


# --- W6: logistic regression, negative log-likelihood over 1e5 rows ------------------------------


def logreg(w, X, y):
    z = X @ w
    return np.sum(np.logaddexp(0.0, z) - y * z)


def logreg_grad_hand(w, X, y):
    """X.T @ (sigmoid(X @ w) - y). The sigmoid 1/(1 + exp(-z)) is stable in float64: where
    exp(-z) overflows to inf it gives 1/inf = 0, the right value (never inf/inf, unlike
    exp(z)/(1 + exp(z))), with full relative accuracy elsewhere; computed in place."""
    s = X @ w
    np.negative(s, out=s)
    with np.errstate(over="ignore"):
        np.exp(s, out=s)
    s += 1.0
    np.reciprocal(s, out=s)
    s -= y
    return X.T @ s


def make_logreg(xp: Any, kind: str) -> Callable[..., Any]:
    if kind == "torch":  # torch.logaddexp wants two tensors

        def f(w, X, y):
            z = X @ w
            return xp.sum(xp.logaddexp(xp.zeros((), dtype=z.dtype), z) - y * z)

        return f

    def f(w, X, y):
        z = X @ w
        return xp.sum(xp.logaddexp(0.0, z) - y * z)

    return f


def logreg_data(rows: int, features: int = 10, seed: int = 0) -> tuple[Any, Any, Any]:
    """(w, X, y): standard-normal X, 0/1 labels drawn from a logistic model, w away from the optimum."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    w_true = rng.standard_normal(features)
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-(X @ w_true)))).astype(np.float64)
    w = 0.5 * rng.standard_normal(features)
    return w, X, y


# --- W7: a two-layer tanh MLP, mean squared error over 1e5 rows ------------------------------------

W7_PARAMS = ("W1", "b1", "W2", "b2")


def mlp(W1, b1, W2, b2, X, y):
    return np.mean((np.tanh(X @ W1 + b1) @ W2 + b2 - y) ** 2)


def mlp_grad_hand(W1, b1, W2, b2, X, y):
    """Backpropagation by hand: (dW1, db1, dW2, db2), few temporaries."""
    H = X @ W1
    H += b1
    np.tanh(H, out=H)
    d = H @ W2
    d += b2 - y
    d *= 2.0 / len(y)  # dL/d(output)
    gW2 = H.T @ d
    gb2 = float(np.sum(d))
    H *= H
    np.subtract(1.0, H, out=H)  # tanh' = 1 - tanh^2
    H *= d[:, None]
    H *= W2  # dL/d(pre-activation)
    return X.T @ H, H.sum(axis=0), gW2, gb2


def make_mlp(xp: Any, kind: str) -> Callable[..., Any]:
    def f(W1, b1, W2, b2, X, y):
        return xp.mean((xp.tanh(X @ W1 + b1) @ W2 + b2 - y) ** 2)

    return f


def mlp_data(rows: int, features: int = 10, hidden: int = 32, seed: int = 0) -> tuple[Any, ...]:
    """(W1, b1, W2, b2, X, y): b2 a Python float; targets from a noisy nonlinear function of X."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(rows)
    W1 = rng.standard_normal((features, hidden)) / np.sqrt(features)
    b1 = 0.1 * rng.standard_normal(hidden)
    W2 = rng.standard_normal(hidden) / np.sqrt(hidden)
    return W1, b1, W2, 0.1, X, y


# --- W5v: W5 vectorised, one array x ---------------------------------------------------------------


def chain_vec(x):
    return np.sum(np.exp(x[:-1]) * (x[:-1] - x[1:]) ** 2)


def chain_vec_grad_hand(x):
    """`chain_grad_hand` vectorised: g[:-1] += e d^2 + 2 e d, g[1:] -= 2 e d."""
    e = np.exp(x[:-1])
    d = x[:-1] - x[1:]
    e *= d  # e d
    g = np.empty_like(x)
    g[:-1] = d
    g[:-1] += 2.0
    g[:-1] *= e
    g[-1] = 0.0
    e *= 2.0
    g[1:] -= e
    return g


def make_chain_vec(xp: Any, kind: str) -> Callable[..., Any]:
    def f(x):
        return xp.sum(xp.exp(x[:-1]) * (x[:-1] - x[1:]) ** 2)

    return f


# --- W8: a Gaussian process's negative log marginal likelihood (cholesky, solve) ----------------

W8_PARAMS = ("log_ell", "log_sf", "log_sn")
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def gp_nll(log_ell, log_sf, log_sn, D2, y):
    """-log p(y | X) of a zero-mean GP with a squared-exponential kernel, from the pairwise
    squared distances D2 of the inputs: the hyperparameters' gradient is the workload."""
    n = len(y)
    K = np.exp(2 * log_sf) * np.exp(-0.5 * D2 / np.exp(2 * log_ell)) + np.exp(2 * log_sn) * np.eye(n)
    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, y))
    return 0.5 * (y @ alpha) + np.sum(np.log(np.diagonal(L))) + n * _HALF_LOG_2PI


def gp_nll_grad_hand(log_ell, log_sf, log_sn, D2, y):
    """0.5 tr((K^-1 - alpha alpha^T) dK/dtheta) per hyperparameter (Rasmussen & Williams 5.9)."""
    n = len(y)
    ell2, sf2, sn2 = math.exp(2 * log_ell), math.exp(2 * log_sf), math.exp(2 * log_sn)
    Kf = sf2 * np.exp(-0.5 * D2 / ell2)
    L = np.linalg.cholesky(Kf + sn2 * np.eye(n))
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, y))
    W = np.linalg.solve(L.T, np.linalg.solve(L, np.eye(n)))
    W -= np.outer(alpha, alpha)
    return (
        0.5 * float(np.sum(W * Kf * D2)) / ell2,
        float(np.sum(W * Kf)),
        float(np.trace(W)) * sn2,
    )


def make_gp_nll(xp: Any, kind: str) -> Callable[..., Any]:
    def f(log_ell, log_sf, log_sn, D2, y):
        n = y.shape[0]
        eye = xp.eye(n, dtype=D2.dtype) if kind == "torch" else xp.eye(n)
        K = xp.exp(2 * log_sf) * xp.exp(-0.5 * D2 / xp.exp(2 * log_ell)) + xp.exp(2 * log_sn) * eye
        L = xp.linalg.cholesky(K)
        alpha = xp.linalg.solve(L.T, xp.linalg.solve(L, y))
        diagonal = xp.diag(L) if kind == "autograd" else xp.diagonal(L)  # autograd: diag's VJP
        logdet = xp.sum(xp.log(diagonal))
        return 0.5 * (y @ alpha) + logdet + n * _HALF_LOG_2PI

    return f


def gp_data(points: int, seed: int = 0) -> tuple[Any, ...]:
    """(log_ell, log_sf, log_sn, D2, y): 2-D inputs in the unit square, y a noisy sine."""
    rng = np.random.default_rng(seed)
    X = rng.random((points, 2))
    D2 = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
    y = np.sin(6.0 * X[:, 0]) + np.cos(4.0 * X[:, 1]) + 0.1 * rng.standard_normal(points)
    return math.log(0.3), math.log(1.2), math.log(0.2), D2, y
