"""Functions written the way scientists and engineers write them, not tuned to what symgrad supports.

Each `Entry` holds the function, the arguments of one call (floats, arrays, dicts, lists), the
parameters to differentiate (`wrt`), the integer parameters a symgrad user would mark `static`
(loop counts: the documented way to call `grad`), and a category. The expected gradients come
from central finite differences of the function itself (tests/test_user_corpus.py), never from
symgrad. `known` marks an entry whose refusal today breaks the rule "a SymgradError naming
file:line:col in this file with a hint"; test_user_corpus.py makes it a strict xfail.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special
from scipy.special import gammaln, ndtr
from scipy.stats import norm

# --- data the functions capture from the module, as analysis scripts do -------------------------

rng = np.random.default_rng(20240521)

G = 9.81
OBSERVATIONS = rng.normal(1.5, 0.7, size=40)
COUNTS = rng.poisson(3.0, size=25).astype(float)
X = rng.normal(size=(30, 3))
TRUE_W = np.array([1.0, -2.0, 0.5])
y = (X @ TRUE_W + 0.3 * rng.normal(size=30) > 0).astype(float)
y_pm = 2.0 * y - 1.0
Y_REG = X @ TRUE_W + 0.1 * rng.normal(size=30)
LABELS = rng.integers(0, 4, size=12)
FEATURES = rng.normal(size=(12, 5))
SEQUENCE = [rng.normal(size=2) for _ in range(5)]
SIGNAL = np.sin(np.linspace(0, 3 * np.pi, 24))
XS = np.linspace(-1.0, 1.0, 8)
TS = 0.5 * XS**2 - XS + 0.3 * np.cos(4 * XS)
XS_LIST = [0.1, 0.4, 0.7, 1.3, 2.0]
TS_LIST = [0.3, 0.9, 1.6, 2.7, 4.1]
COEFFS = [2.0, -3.0, 0.5, 1.0]  # highest degree first
CASHFLOWS = [-100.0, 20.0, 30.0, 40.0, 50.0]
MU = np.array([0.08, 0.12, 0.05, 0.10])
_A = rng.normal(size=(4, 4))
COV = 0.01 * (_A @ _A.T + 4 * np.eye(4))
INERTIA = np.array([[2.0, 0.1, 0.0], [0.1, 1.5, 0.2], [0.0, 0.2, 1.0]])
POINTS = rng.normal(size=(15, 3)) * 0.1 + np.array([1.0, -0.5, 2.0])
POINTS[:, 0] += 1.2 * np.cos(np.linspace(0, 2 * np.pi, 15))
POINTS[:, 1] += 1.2 * np.sin(np.linspace(0, 2 * np.pi, 15))
GP_X = np.linspace(0.0, 4.0, 7)
GP_Y = np.sin(GP_X) + 0.05 * rng.normal(size=7)
PRICES = 100.0 * np.exp(np.cumsum(0.01 * rng.normal(size=20)))
SPRING_K = 4.0
REST_LENGTH = 1.0
TARGET = np.array([0.3, 1.1])


@dataclass
class Entry:
    """One corpus function and how it is called."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    wrt: tuple[str, ...]
    category: str
    static: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    known: str | None = None  # why its refusal breaks the located-hint rule today (strict xfail)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = getattr(self.fn, "__name__", "entry").replace("<lambda>", "lambda")


# --- physics -----------------------------------------------------------------------------------


def projectile_range_with_drag(v0, angle, drag=0.05, dt=0.01):
    x, y_pos = 0.0, 0.0
    vx = v0 * math.cos(angle)
    vy = v0 * math.sin(angle)
    while y_pos >= 0.0:
        speed = math.sqrt(vx**2 + vy**2)
        vx -= drag * speed * vx * dt
        vy -= (G + drag * speed * vy) * dt
        x += vx * dt
        y_pos += vy * dt
    return x


def projectile_euler(v0, angle, drag, n_steps):
    dt = 0.01
    pos = np.array([0.0, 0.0])
    vel = np.array([v0 * np.cos(angle), v0 * np.sin(angle)])
    for _ in range(n_steps):
        acc = np.array([0.0, -G]) - drag * np.linalg.norm(vel) * vel
        vel = vel + acc * dt
        pos = pos + vel * dt
    return pos[0] + pos[1]


def pendulum_energy(theta, omega, length=1.0, mass=1.0):
    kinetic = 0.5 * mass * (length * omega) ** 2
    potential = mass * G * length * (1 - np.cos(theta))
    return kinetic + potential


def spring_chain_energy(x):
    energy = 0.0
    for i in range(len(x) - 1):
        stretch = x[i + 1] - x[i] - REST_LENGTH
        energy += 0.5 * SPRING_K * stretch**2
    return energy


def spring_chain_vectorized(x):
    return 0.5 * SPRING_K * np.sum((np.diff(x) - REST_LENGTH) ** 2)


def verlet_oscillator(x0, v0, omega, n_steps):
    dt = 0.05
    x, v = x0, v0
    a = -(omega**2) * x
    for _ in range(n_steps):
        x = x + v * dt + 0.5 * a * dt**2
        a_new = -(omega**2) * x
        v = v + 0.5 * (a + a_new) * dt
        a = a_new
    return 0.5 * v**2 + 0.5 * omega**2 * x**2


def coulomb_energy(positions):
    n = len(positions)
    energy = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            energy += 1.0 / np.linalg.norm(positions[i] - positions[j])
    return energy


def lennard_jones_cluster(positions, epsilon=1.0, sigma=1.0):
    diff = positions[:, None, :] - positions[None, :, :]
    r2 = np.sum(diff**2, axis=-1)
    i, j = np.triu_indices(len(positions), k=1)
    sr6 = (sigma**2 / r2[i, j]) ** 3
    return np.sum(4 * epsilon * (sr6**2 - sr6))


def van_der_waals_pressure(V, T, n=1.0, a=0.364, b=4.27e-5):
    R = 8.314
    return n * R * T / (V - n * b) - a * n**2 / V**2


def planck_radiance(wavelength_um, T):
    c1 = 1.191042e8  # W um^4 / (m^2 sr)
    c2 = 1.4387769e4  # um K
    return c1 / wavelength_um**5 / (np.exp(c2 / (wavelength_um * T)) - 1.0)


def heat_equation_explicit(u0, alpha, n_steps):
    u = u0.copy()
    for _ in range(n_steps):
        u[1:-1] = u[1:-1] + alpha * (u[2:] - 2 * u[1:-1] + u[:-2])
    return np.sum(u**2)


def rotational_kinetic_energy(omega):
    return 0.5 * omega @ INERTIA @ omega


def orbital_energy(state, mu=1.0):
    r = state[:3]
    v = state[3:]
    return 0.5 * np.dot(v, v) - mu / np.linalg.norm(r)


def damped_oscillator(t, gamma, omega0):
    omega_d = math.sqrt(omega0**2 - gamma**2)
    return math.exp(-gamma * t) * math.cos(omega_d * t)


# --- statistics --------------------------------------------------------------------------------


def gaussian_log_likelihood(mu, sigma):
    n = len(OBSERVATIONS)
    resid = (OBSERVATIONS - mu) / sigma
    return -0.5 * np.sum(resid**2) - n * np.log(sigma) - 0.5 * n * np.log(2 * np.pi)


def gaussian_loglik_scipy(mu, sigma):
    return np.sum(norm.logpdf(OBSERVATIONS, loc=mu, scale=sigma))


def logistic_regression_nll(w):
    p = 1.0 / (1.0 + np.exp(-(X @ w)))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def logistic_regression_l2(w, b, lam=0.1):
    z = X @ w + b
    loss = np.sum(np.log1p(np.exp(z)) - y * z)
    return loss / len(y) + lam * np.sum(w**2)


def student_t_nll(mu, log_sigma, nu):
    sigma = np.exp(log_sigma)
    z = (OBSERVATIONS - mu) / sigma
    logpdf = (
        gammaln((nu + 1) / 2)
        - gammaln(nu / 2)
        - 0.5 * np.log(nu * np.pi)
        - np.log(sigma)
        - (nu + 1) / 2 * np.log1p(z**2 / nu)
    )
    return -np.sum(logpdf)


def poisson_nll(log_rate):
    rate = np.exp(log_rate)
    return np.sum(rate - COUNTS * log_rate + gammaln(COUNTS + 1))


def linear_regression_mse(params):
    a, b = params
    pred = a * XS + b
    return np.mean((pred - TS) ** 2)


def weighted_variance(w):
    mean = np.sum(w * OBSERVATIONS[:10]) / np.sum(w)
    return np.sum(w * (OBSERVATIONS[:10] - mean) ** 2) / np.sum(w)


def kl_gaussians(mu1, s1, mu2, s2):
    return math.log(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2**2) - 0.5


def mixture_log_likelihood(params):
    pi = params["weight"]
    p1 = pi * np.exp(-0.5 * ((OBSERVATIONS - params["mu1"]) / params["sigma"]) ** 2)
    p2 = (1 - pi) * np.exp(-0.5 * ((OBSERVATIONS - params["mu2"]) / params["sigma"]) ** 2)
    return np.sum(np.log((p1 + p2) / (params["sigma"] * np.sqrt(2 * np.pi))))


def huber_loss(w, delta=1.0):
    r = X @ w - Y_REG
    return np.sum(np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)))


def kde_log_likelihood(bandwidth):
    x = OBSERVATIONS[:15]
    kernel = np.exp(-0.5 * ((x[:, None] - x[None, :]) / bandwidth) ** 2)
    density = kernel.mean(axis=1) / (bandwidth * np.sqrt(2 * np.pi))
    return np.sum(np.log(density))


def beta_log_posterior(a, b):
    p = np.clip(OBSERVATIONS[:10] / 4.0, 0.01, 0.99)
    log_prior = -a - b
    log_lik = np.sum((a - 1) * np.log(p) + (b - 1) * np.log(1 - p)) - len(p) * special.betaln(a, b)
    return log_prior + log_lik


# --- machine learning --------------------------------------------------------------------------


def mlp_loss(params):
    h = np.tanh(X @ params["W1"] + params["b1"])
    out = h @ params["W2"] + params["b2"]
    return np.mean((out - Y_REG) ** 2)


def relu_mlp_loss(W1, b1, W2):
    hidden = np.maximum(0, X @ W1 + b1)
    return np.mean((hidden @ W2 - Y_REG) ** 2)


def softmax_cross_entropy(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(log_probs[np.arange(len(LABELS)), LABELS])


def softmax(z):
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_regression_loss(W):
    probs = softmax(FEATURES @ W)
    onehot = np.eye(4)[LABELS]
    return -np.sum(onehot * np.log(probs)) / len(LABELS)


def attention_output(q, K, V):
    d = q.shape[0]
    scores = K @ q / np.sqrt(d)
    weights = np.exp(scores - np.max(scores))
    weights /= weights.sum()
    out = weights @ V
    return np.sum(out**2)


def rnn_over_list(Wh, Wx):
    h = np.zeros(3)
    for x_t in SEQUENCE:
        h = np.tanh(Wh @ h + Wx @ x_t)
    return np.sum(h**2)


def layer_norm_loss(x, gamma, beta):
    mu = x.mean()
    var = x.var()
    normed = (x - mu) / np.sqrt(var + 1e-5)
    out = gamma * normed + beta
    return np.sum(out**2)


def conv1d_energy(kernel):
    k = len(kernel)
    out = [np.dot(SIGNAL[i : i + k], kernel) for i in range(len(SIGNAL) - k + 1)]
    return np.sum(np.array(out) ** 2)


def cosine_similarity_loss(a, b):
    return 1.0 - np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))


class RidgeModel:
    """A model object whose loss method is what gets differentiated."""

    def __init__(self, features, targets, lam):
        self.X = features
        self.y = targets
        self.lam = lam

    def loss(self, w):
        resid = self.X @ w - self.y
        return np.mean(resid**2) + self.lam * np.sum(w**2)


RIDGE = RidgeModel(X, Y_REG, 0.05)


def svm_hinge_loss(w, lam=0.01):
    margins = y_pm * (X @ w)
    return np.mean(np.maximum(0, 1 - margins)) + lam * w @ w


def gp_negative_log_marginal(lengthscale, noise):
    n = len(GP_X)
    K = np.exp(-0.5 * (GP_X[:, None] - GP_X[None, :]) ** 2 / lengthscale**2) + noise * np.eye(n)
    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(K, GP_Y)
    return 0.5 * GP_Y @ alpha + np.sum(np.log(np.diag(L))) + 0.5 * n * np.log(2 * np.pi)


squared_error = lambda w: np.sum((X @ w - Y_REG) ** 2)  # noqa: E731 - written the way people do


def line_fit_sum_generator(w, b):
    return sum((w * x + b - t) ** 2 for x, t in zip(XS_LIST, TS_LIST)) / len(XS_LIST)


def gradient_descent_meta(lr):
    w = 0.0
    target = 3.0
    for _ in range(10):
        w -= lr * 2 * (w - target)
    return (w - target) ** 2


# --- numerical methods -------------------------------------------------------------------------


def newton_sqrt(a):
    x = a
    while abs(x * x - a) > 1e-12:
        x = 0.5 * (x + a / x)
    return x


def newton_cube_root(c):
    x = 1.0
    for _ in range(30):
        x = x - (x**3 - c) / (3 * x**2)
    return x


def trapezoid_gaussian(a, b):
    xs = np.linspace(a, b, 101)
    ys = np.exp(-(xs**2))
    h = (b - a) / 100
    return h * (ys[0] / 2 + ys[1:-1].sum() + ys[-1] / 2)


def trapezoid_loop(k, n=50):
    total = 0.0
    dx = math.pi / n
    for i in range(n):
        x0 = i * dx
        x1 = x0 + dx
        total += 0.5 * (math.sin(k * x0) + math.sin(k * x1)) * dx
    return total


def horner(x):
    result = 0.0
    for c in COEFFS:
        result = result * x + c
    return result


def polyval_numpy(x):
    return np.polyval(COEFFS, x)


def rk4_step(y0, t, h):
    def f(t, y_val):
        return -y_val + math.sin(t)

    k1 = f(t, y0)
    k2 = f(t + h / 2, y0 + h / 2 * k1)
    k3 = f(t + h / 2, y0 + h / 2 * k2)
    k4 = f(t + h, y0 + h * k3)
    return y0 + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def rk4_decay(k, n_steps):
    y_val, t, h = 1.0, 0.0, 0.1
    for _ in range(n_steps):
        k1 = -k * y_val
        k2 = -k * (y_val + h / 2 * k1)
        k3 = -k * (y_val + h / 2 * k2)
        k4 = -k * (y_val + h * k3)
        y_val += h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t += h
    return y_val


def simpson_rule(k):
    n = 20
    xs = np.linspace(0, np.pi, n + 1)
    fx = np.sin(k * xs) * np.exp(-xs)
    h = np.pi / n
    return h / 3 * (fx[0] + 4 * fx[1:-1:2].sum() + 2 * fx[2:-1:2].sum() + fx[-1])


def fixed_point_cos(a):
    x = 0.5
    for _ in range(100):
        x = math.cos(a * x)
    return x


def dirichlet_energy(u):
    return np.sum((u[1:] - u[:-1]) ** 2) + u[0] ** 2 + u[-1] ** 2


def secant_root(c):
    x0, x1 = 1.0, 2.0
    for _ in range(12):
        f0, f1 = x0**3 - c, x1**3 - c
        if f1 == f0:
            break
        x0, x1 = x1, x1 - f1 * (x1 - x0) / (f1 - f0)
    return x1


# --- finance -----------------------------------------------------------------------------------


def black_scholes_call(S, K, T, r, sigma):
    d1 = (np.log(S / K) + (r + 0.5 * sigma**2) * T) / (sigma * np.sqrt(T))
    d2 = d1 - sigma * np.sqrt(T)
    return S * ndtr(d1) - K * np.exp(-r * T) * ndtr(d2)


def norm_cdf(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black_scholes_put(S, K, T, r, sigma):
    d1 = (math.log(S / K) + (r + sigma**2 / 2) * T) / (sigma * math.sqrt(T))
    d2 = d1 - sigma * math.sqrt(T)
    return K * math.exp(-r * T) * norm_cdf(-d2) - S * norm_cdf(-d1)


def portfolio_variance(w):
    return w @ COV @ w


def sharpe_ratio(w, rf=0.02):
    return (w @ MU - rf) / np.sqrt(w @ COV @ w)


def log_return_volatility(prices):
    log_returns = np.log(prices[1:] / prices[:-1])
    return np.std(log_returns) * np.sqrt(252)


def bond_price(ytm, coupon=5.0, face=100.0, n_periods=10):
    pv = sum(coupon / (1 + ytm) ** t for t in range(1, n_periods + 1))
    return pv + face / (1 + ytm) ** n_periods


def net_present_value(rate):
    return sum(cf / (1 + rate) ** t for t, cf in enumerate(CASHFLOWS))


def binomial_option(S, sigma, K=100.0, T=1.0, r=0.03, n=20):
    dt = T / n
    u = math.exp(sigma * math.sqrt(dt))
    d = 1 / u
    p = (math.exp(r * dt) - d) / (u - d)
    values = [max(S * u**j * d ** (n - j) - K, 0.0) for j in range(n + 1)]
    for step in range(n, 0, -1):
        values = [math.exp(-r * dt) * (p * values[j + 1] + (1 - p) * values[j]) for j in range(step)]
    return values[0]


def mean_variance_utility(weights, risk_aversion=3.0):
    w = weights / np.sum(weights)
    return w @ MU - 0.5 * risk_aversion * w @ COV @ w


# --- geometry ----------------------------------------------------------------------------------


def point_distance(p, q):
    return np.linalg.norm(p - q)


def triangle_area(pts):
    (x1, y1), (x2, y2), (x3, y3) = pts
    return 0.5 * abs(x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2))


def angle_between(u, v):
    cos_angle = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return np.arccos(cos_angle)


def polygon_perimeter(vertices):
    return sum(np.linalg.norm(vertices[i] - vertices[i - 1]) for i in range(len(vertices)))


def sphere_fit_loss(center, radius):
    distances = np.linalg.norm(POINTS - center, axis=1)
    return np.sum((distances - radius) ** 2)


def rotate_to_target(theta, point):
    c, s = np.cos(theta), np.sin(theta)
    R = np.array([[c, -s], [s, c]])
    return np.sum((R @ point - TARGET) ** 2)


def polar_to_cartesian_distance(r, phi):
    x, y_coord = r * math.cos(phi), r * math.sin(phi)
    return math.hypot(x - 1.0, y_coord + 0.5) + math.atan2(y_coord, x)


# --- everyday Python ---------------------------------------------------------------------------


def comprehension_sum_squares(x):
    return sum([xi**2 for xi in x])


def enumerate_weighted(x):
    total = 0.0
    for i, xi in enumerate(x):
        total += (i + 1) * xi**2
    return total


def zip_neighbours(x):
    return sum(a * b for a, b in zip(x, x[1:]))  # noqa: RUF007 - as people write it


def list_literal_poly(a, b, c, t=1.7):
    coeffs = [a, b, c]
    return sum(coef * t**i for i, coef in enumerate(coeffs))


def pairwise_gaussian(x):
    return np.sum(np.exp(-((x[:, None] - x[None, :]) ** 2)))


def running_sum_inplace(x):
    out = np.zeros_like(x)
    for i in range(len(x)):
        out[i] = x[i] ** 2 + (out[i - 1] if i > 0 else 0.0)
    return out.sum()


def unpack_params_loss(params):
    a, b, c = params
    pred = a * np.exp(-b * XS) + c
    return np.mean((pred - TS) ** 2)


def dict_of_floats(p):
    return p["k"] * p["x"] ** 2 + math.sin(p["phase"])


def clipped_objective(x):
    return np.sum(np.clip(x, -1.0, 1.0) ** 2 + 0.1 * x)


def keyword_only_scale(x, *, scale=2.0):
    return scale * np.sum(np.sin(x))


def max_of_list(a, b):
    return max([a * b, a + b, a - b]) + min(a, b)


def string_formatting_ignored(x):
    label = f"x={x:.3f}"  # people log as they go
    return x**2 + len(label) * 0.0


def early_return(x):
    if x < 0:
        return -x
    return x**2


def accumulate_list_append(x):
    terms = []
    for k in range(1, 6):
        terms.append(x**k / math.factorial(k))
    return sum(terms)


def numpy_mean_std_zscore(x):
    z = (x - np.mean(x)) / np.std(x)
    return np.sum(z**3)


def cumulative_sum_loss(x):
    return np.sum(np.cumsum(x) ** 2)


# --- the entries -------------------------------------------------------------------------------

ENTRIES: list[Entry] = [
    # physics
    Entry(projectile_range_with_drag, (20.0, 0.7), ("v0", "angle"), "physics"),
    Entry(projectile_euler, (15.0, 0.8, 0.02, 60), ("v0", "angle", "drag"), "physics", static=("n_steps",)),
    Entry(pendulum_energy, (0.4, 1.3), ("theta", "omega"), "physics"),
    Entry(spring_chain_energy, (np.array([0.0, 1.1, 2.3, 2.9, 4.2]),), ("x",), "physics"),
    Entry(spring_chain_vectorized, (np.array([0.0, 1.1, 2.3, 2.9, 4.2]),), ("x",), "physics"),
    Entry(verlet_oscillator, (1.0, 0.0, 2.0, 40), ("x0", "v0", "omega"), "physics", static=("n_steps",)),
    Entry(coulomb_energy, (rng.normal(size=(4, 3)),), ("positions",), "physics"),
    Entry(
        lennard_jones_cluster,
        (np.array([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [0.5, 1.0, 0.0], [0.4, 0.3, 0.9]]),),
        ("positions",),
        "physics",
    ),
    Entry(van_der_waals_pressure, (0.024, 300.0), ("V", "T"), "physics"),
    Entry(planck_radiance, (0.5, 5800.0), ("wavelength_um", "T"), "physics"),
    Entry(
        heat_equation_explicit,
        (np.sin(np.linspace(0, np.pi, 8)), 0.2, 5),
        ("u0", "alpha"),
        "physics",
        static=("n_steps",),
    ),
    Entry(rotational_kinetic_energy, (np.array([0.3, -1.0, 2.0]),), ("omega",), "physics"),
    Entry(orbital_energy, (np.array([1.0, 0.2, -0.1, 0.0, 0.9, 0.1]),), ("state",), "physics"),
    Entry(damped_oscillator, (1.5, 0.3, 2.0), ("t", "gamma", "omega0"), "physics"),
    # statistics
    Entry(gaussian_log_likelihood, (1.2, 0.8), ("mu", "sigma"), "statistics"),
    Entry(gaussian_loglik_scipy, (1.2, 0.8), ("mu", "sigma"), "statistics"),
    Entry(logistic_regression_nll, (np.array([0.5, -1.0, 0.2]),), ("w",), "statistics"),
    Entry(logistic_regression_l2, (np.array([0.5, -1.0, 0.2]), 0.1), ("w", "b"), "statistics"),
    Entry(student_t_nll, (1.3, -0.2, 4.0), ("mu", "log_sigma", "nu"), "statistics"),
    Entry(poisson_nll, (np.full(25, 1.0),), ("log_rate",), "statistics"),
    Entry(linear_regression_mse, (np.array([0.7, -0.2]),), ("params",), "statistics"),
    Entry(weighted_variance, (np.linspace(0.5, 1.5, 10),), ("w",), "statistics"),
    Entry(kl_gaussians, (0.1, 1.2, -0.3, 0.8), ("mu1", "s1", "mu2", "s2"), "statistics"),
    Entry(
        mixture_log_likelihood,
        ({"weight": 0.4, "mu1": 1.0, "mu2": 2.0, "sigma": 0.6},),
        ("params",),
        "statistics",
    ),
    Entry(huber_loss, (np.array([0.9, -1.7, 0.4]),), ("w",), "statistics"),
    Entry(kde_log_likelihood, (0.4,), ("bandwidth",), "statistics"),
    Entry(beta_log_posterior, (2.0, 3.0), ("a", "b"), "statistics"),
    # machine learning
    Entry(
        mlp_loss,
        (
            {
                "W1": rng.normal(size=(3, 4)) * 0.5,
                "b1": np.zeros(4) + 0.1,
                "W2": rng.normal(size=4) * 0.5,
                "b2": 0.2,
            },
        ),
        ("params",),
        "ml",
    ),
    Entry(
        relu_mlp_loss,
        (rng.normal(size=(3, 5)), rng.normal(size=5) * 0.1 + 0.05, rng.normal(size=5)),
        ("W1", "b1", "W2"),
        "ml",
    ),
    Entry(softmax_cross_entropy, (rng.normal(size=(12, 4)),), ("logits",), "ml"),
    Entry(softmax_regression_loss, (rng.normal(size=(5, 4)) * 0.3,), ("W",), "ml"),
    Entry(
        attention_output,
        (rng.normal(size=4), rng.normal(size=(6, 4)), rng.normal(size=(6, 3))),
        ("q", "K", "V"),
        "ml",
    ),
    Entry(rnn_over_list, (rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(3, 2))), ("Wh", "Wx"), "ml"),
    Entry(layer_norm_loss, (rng.normal(size=6), 1.5, 0.2), ("x", "gamma", "beta"), "ml"),
    Entry(conv1d_energy, (np.array([0.25, 0.5, 0.25]),), ("kernel",), "ml"),
    Entry(cosine_similarity_loss, (rng.normal(size=5), rng.normal(size=5)), ("a", "b"), "ml"),
    Entry(RIDGE.loss, (np.array([0.9, -1.8, 0.6]),), ("w",), "ml", id="ridge_method"),
    Entry(svm_hinge_loss, (np.array([0.3, -0.6, 0.1]),), ("w",), "ml"),
    Entry(gp_negative_log_marginal, (1.2, 0.1), ("lengthscale", "noise"), "ml"),
    Entry(squared_error, (np.array([0.9, -1.8, 0.6]),), ("w",), "ml", id="squared_error_lambda"),
    Entry(line_fit_sum_generator, (1.5, 0.2), ("w", "b"), "ml"),
    Entry(gradient_descent_meta, (0.1,), ("lr",), "ml"),
    # numerical methods
    Entry(newton_sqrt, (2.0,), ("a",), "numerical"),
    Entry(newton_cube_root, (5.0,), ("c",), "numerical"),
    Entry(trapezoid_gaussian, (-0.5, 1.5), ("a", "b"), "numerical"),
    Entry(trapezoid_loop, (1.3,), ("k",), "numerical"),
    Entry(horner, (0.7,), ("x",), "numerical"),
    Entry(polyval_numpy, (0.7,), ("x",), "numerical"),
    Entry(rk4_step, (1.0, 0.3, 0.1), ("y0", "h"), "numerical"),
    Entry(rk4_decay, (0.8, 10), ("k",), "numerical", static=("n_steps",)),
    Entry(simpson_rule, (1.7,), ("k",), "numerical"),
    Entry(fixed_point_cos, (0.9,), ("a",), "numerical"),
    Entry(dirichlet_energy, (np.array([0.1, 0.5, 0.4, 0.9, 0.2]),), ("u",), "numerical"),
    Entry(secant_root, (5.0,), ("c",), "numerical"),
    # finance
    Entry(black_scholes_call, (100.0, 95.0, 0.5, 0.03, 0.25), ("S", "K", "T", "r", "sigma"), "finance"),
    Entry(black_scholes_put, (100.0, 105.0, 0.75, 0.02, 0.3), ("S", "sigma"), "finance"),
    Entry(portfolio_variance, (np.array([0.3, 0.2, 0.4, 0.1]),), ("w",), "finance"),
    Entry(sharpe_ratio, (np.array([0.3, 0.2, 0.4, 0.1]),), ("w",), "finance"),
    Entry(log_return_volatility, (PRICES.copy(),), ("prices",), "finance"),
    Entry(bond_price, (0.04,), ("ytm",), "finance"),
    Entry(net_present_value, (0.07,), ("rate",), "finance"),
    Entry(binomial_option, (102.0, 0.25), ("S", "sigma"), "finance"),
    Entry(mean_variance_utility, (np.array([1.0, 2.0, 1.5, 0.5]),), ("weights",), "finance"),
    # geometry
    Entry(point_distance, (np.array([1.0, 2.0, 0.5]), np.array([-0.5, 0.3, 1.0])), ("p", "q"), "geometry"),
    Entry(triangle_area, (np.array([[0.0, 0.1], [1.2, 0.3], [0.4, 1.5]]),), ("pts",), "geometry"),
    Entry(angle_between, (np.array([1.0, 0.2, 0.0]), np.array([0.3, 1.0, 0.5])), ("u", "v"), "geometry"),
    Entry(
        polygon_perimeter,
        (np.array([[0.0, 0.0], [1.0, 0.1], [1.2, 1.0], [0.1, 0.9]]),),
        ("vertices",),
        "geometry",
    ),
    Entry(sphere_fit_loss, (np.array([0.9, -0.4, 2.1]), 1.1), ("center", "radius"), "geometry"),
    Entry(rotate_to_target, (0.3, np.array([1.0, 0.5])), ("theta", "point"), "geometry"),
    Entry(polar_to_cartesian_distance, (1.4, 0.6), ("r", "phi"), "geometry"),
    # everyday Python
    Entry(comprehension_sum_squares, (np.array([0.5, -1.0, 2.0]),), ("x",), "everyday"),
    Entry(enumerate_weighted, (np.array([0.5, -1.0, 2.0]),), ("x",), "everyday"),
    Entry(zip_neighbours, (np.array([0.5, -1.0, 2.0, 0.3]),), ("x",), "everyday"),
    Entry(list_literal_poly, (0.5, -1.0, 2.0), ("a", "b", "c"), "everyday"),
    Entry(pairwise_gaussian, (np.array([0.1, 0.7, -0.4, 1.2]),), ("x",), "everyday"),
    Entry(running_sum_inplace, (np.array([0.5, -1.0, 2.0, 0.3]),), ("x",), "everyday"),
    Entry(unpack_params_loss, (np.array([1.2, 0.8, -0.1]),), ("params",), "everyday"),
    Entry(
        dict_of_floats,
        ({"k": 2.0, "x": 0.7, "phase": 0.3},),
        ("p",),
        "everyday",
    ),
    Entry(clipped_objective, (np.array([0.5, -1.4, 2.0, 0.3]),), ("x",), "everyday"),
    Entry(keyword_only_scale, (np.array([0.5, -1.4, 2.0]),), ("x",), "everyday", kwargs={"scale": 3.0}),
    Entry(max_of_list, (1.5, 2.5), ("a", "b"), "everyday"),
    Entry(string_formatting_ignored, (1.3,), ("x",), "everyday"),
    Entry(early_return, (1.3,), ("x",), "everyday"),
    Entry(accumulate_list_append, (0.8,), ("x",), "everyday"),
    Entry(numpy_mean_std_zscore, (np.array([0.5, -1.4, 2.0, 0.3, 1.1]),), ("x",), "everyday"),
    Entry(cumulative_sum_loss, (np.array([0.5, -1.4, 2.0, 0.3]),), ("x",), "everyday"),
]
