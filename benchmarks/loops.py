# ruff: noqa: N803, N806  (N, T: trip counts, named as in the loop issue)
"""Loops kept as loops (workload L of `python -m benchmarks.run --only L`): decoration time
against the trip count, call time against a hand-written forward and reverse loop and the
peers' loop primitives, and the peak memory of a long loop's gradient.

The workload functions are plain module-level Python (symgrad reads their source); the
peers' versions use `jax.lax.fori_loop` / `while_loop` (jax.jit(grad) of them), torch
autograd on 0-d float64 tensors and HIPS autograd over the same Python loop.
"""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from symgrad.looptrace import KEEP_PICKED_FROM

from . import run
from . import workloads as W  # noqa: N812 - as in run.py

# --- the workloads, as users write them ---------------------------------------------------------


def logistic(x, r, N):
    for _ in range(N):
        x = x + 0.001 * r * x * (1 - x)
    return x


def logistic_hand(x: float, r: float, N: int) -> tuple[float, float]:
    """The gradient of `logistic` by hand: a forward loop saving x, a reverse loop."""
    xs = [0.0] * N
    for i in range(N):
        xs[i] = x
        x = x + 0.001 * r * x * (1 - x)
    gx, gr = 1.0, 0.0
    for i in range(N - 1, -1, -1):
        x = xs[i]
        gr += gx * 0.001 * x * (1 - x)
        gx = gx * (1 + 0.001 * r * (1 - 2 * x))
    return gx, gr


def recurrence(h, w, u, T):
    for i in range(T):
        h = np.tanh(w * h + u * np.sin(0.01 * i))
    return h


def recurrence_hand(h: float, w: float, u: float, T: int) -> tuple[float, float, float]:
    hs = [0.0] * T
    for i in range(T):
        hs[i] = h
        h = math.tanh(w * h + u * math.sin(0.01 * i))
    gh, gw, gu = 1.0, 0.0, 0.0
    for i in range(T - 1, -1, -1):
        h_next = math.tanh(w * hs[i] + u * math.sin(0.01 * i))
        d = gh * (1 - h_next * h_next)
        gw += d * hs[i]
        gu += d * math.sin(0.01 * i)
        gh = d * w
    return gh, gw, gu


def newton_sqrt(x):
    y = x
    while abs(y * y - x) > 1e-12 * x:
        y = 0.5 * (y + x / y)
    return y


def newton_sqrt_hand(x: float) -> float:
    ys = []
    y = x
    while abs(y * y - x) > 1e-12 * x:
        ys.append(y)
        y = 0.5 * (y + x / y)
    gy, gx = 1.0, 0.0
    for y in reversed(ys):
        gx += gy * 0.5 / y
        gy = gy * 0.5 * (1 - x / (y * y))
    return gx + gy


def rnn(W, U, b, xs, h0, T):
    h = h0
    for t in range(T):
        h = np.tanh(W @ h + U @ xs[t] + b)
    return np.sum(h)


def rnn_hand(W: np.ndarray, U: np.ndarray, b: np.ndarray, xs: np.ndarray, h0: np.ndarray, T: int) -> tuple:
    """The RNN's gradient by hand in NumPy: a forward loop saving every state, a reverse loop."""
    hs = [h0] * (T + 1)
    for t in range(T):
        hs[t + 1] = np.tanh(W @ hs[t] + U @ xs[t] + b)
    gh = np.ones_like(h0)
    gW, gU, gb, gxs = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b), np.zeros_like(xs)
    for t in range(T - 1, -1, -1):
        d = gh * (1 - hs[t + 1] ** 2)
        gW += np.outer(d, hs[t])
        gU += np.outer(d, xs[t])
        gb += d
        gxs[t] = U.T @ d
        gh = W.T @ d
    return gW, gU, gb, gxs


def rnn_arguments(T: int, hidden: int = 8, inputs: int = 2) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    W = rng.normal(size=(hidden, hidden)) * 0.4
    return (
        W,
        rng.normal(size=(hidden, inputs)),
        rng.normal(size=hidden),
        rng.normal(size=(T, inputs)),
        np.zeros(hidden),
    )


# --- peers ----------------------------------------------------------------------------------------


def _jax_rnn(peers: run.Peers) -> Callable[..., Any]:
    jax, jnp = peers.jax, peers.jnp

    def f(W: Any, U: Any, b: Any, xs: Any, h0: Any) -> Any:
        h, _ = jax.lax.scan(lambda h, x: (jnp.tanh(W @ h + U @ x + b), None), h0, xs)
        return jnp.sum(h)

    return jax.jit(jax.grad(f, argnums=(0, 1, 2, 3)))


def _torch_rnn(peers: run.Peers) -> Callable[..., Any]:
    torch = peers.torch

    def g(W: Any, U: Any, b: Any, xs: Any, h0: Any, T: int) -> tuple[np.ndarray, ...]:
        leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (W, U, b, xs)]
        Wt, Ut, bt, xst = leaves
        h = torch.tensor(h0, dtype=torch.float64)
        for t in range(T):
            h = torch.tanh(Wt @ h + Ut @ xst[t] + bt)
        return tuple(g.numpy() for g in torch.autograd.grad(h.sum(), leaves))

    return g


def _autograd_rnn(peers: run.Peers) -> Callable[..., Any]:
    anp = peers.anp

    def f(W: Any, U: Any, b: Any, xs: Any, h0: Any, T: int) -> Any:
        h = h0
        for t in range(T):
            h = anp.tanh(anp.dot(W, h) + anp.dot(U, xs[t]) + b)
        return anp.sum(h)

    grads = peers.autograd.grad(f, (0, 1, 2, 3))
    return grads


def _jax_logistic(peers: run.Peers, N: int) -> Callable[..., Any]:
    jax = peers.jax

    def f(x: Any, r: Any) -> Any:
        return jax.lax.fori_loop(0, N, lambda i, x: x + 0.001 * r * x * (1 - x), x)

    return jax.jit(jax.grad(f, argnums=(0, 1)))


def _jax_recurrence(peers: run.Peers, T: int) -> Callable[..., Any]:
    jax, jnp = peers.jax, peers.jnp

    def f(h: Any, w: Any, u: Any) -> Any:
        return jax.lax.fori_loop(0, T, lambda i, h: jnp.tanh(w * h + u * jnp.sin(0.01 * i)), h)

    return jax.jit(jax.grad(f, argnums=(0, 1, 2)))


def _jax_newton(peers: run.Peers) -> Callable[..., Any]:
    """jax's while_loop has no reverse-mode rule: grad needs fixed trip counts (a custom_vjp
    or implicit differentiation otherwise). Forward mode works: jacfwd."""
    jax = peers.jax

    def f(x: Any) -> Any:
        cond = lambda y: abs(y * y - x) > 1e-12 * x  # noqa: E731
        return jax.lax.while_loop(cond, lambda y: 0.5 * (y + x / y), x)

    return jax.jit(jax.jacfwd(f))


def _torch_grad(peers: run.Peers, fn: Callable[..., Any], n: int) -> Callable[..., Any]:
    torch = peers.torch

    def g(*args: float) -> tuple[float, ...]:
        leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args[:n]]
        out = fn(torch, *leaves, *args[n:])
        return tuple(float(v) for v in torch.autograd.grad(out, leaves))

    return g


def _torch_logistic(torch: Any, x: Any, r: Any, N: int) -> Any:
    for _ in range(N):
        x = x + 0.001 * r * x * (1 - x)
    return x


def _torch_recurrence(torch: Any, h: Any, w: Any, u: Any, T: int) -> Any:
    for i in range(T):
        h = torch.tanh(w * h + u * math.sin(0.01 * i))
    return h


def _autograd_grad(peers: run.Peers, fn: Callable[..., Any], n: int) -> Callable[..., Any]:
    grads = [peers.autograd.grad(fn, k) for k in range(n)]
    return lambda *args: tuple(float(g(*args)) for g in grads)


def _autograd_recurrence(peers: run.Peers) -> Callable[..., Any]:
    anp = peers.anp

    def f(h: Any, w: Any, u: Any, T: int) -> Any:
        for i in range(T):
            h = anp.tanh(w * h + u * anp.sin(0.01 * i))
        return h

    return f


def _numba(fn: Callable[..., Any], wrt: tuple[str, ...], static: str, *args: Any) -> Any:
    from symgrad import grad

    try:
        import numba  # noqa: F401
    except ImportError:
        return None
    return run.calling(grad(fn, wrt=wrt, static=static, backend="numba"), *args)


def _njit_hand(fn: Callable[..., Any], *args: Any) -> Any:
    """The hand-written forward and reverse loops compiled by `numba.njit` (the target of the
    numba backend): its call, or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    return run.calling(numba.njit(cache=False)(fn), *args)


# --- tables ---------------------------------------------------------------------------------------


def _decoration(cfg: run.Config, peers: run.Peers) -> str:
    from symgrad import grad

    wl = run.Workload("L decoration", peers)
    sizes = (2_000, 100_000) if not cfg.quick else (200, 2_000)
    for N in sizes:
        wl.add_fresh(
            f"symgrad N={N:,}", lambda N=N: grad(logistic, wrt=("x", "r"), static="N")(0.1, 2.0, N), cfg
        )
    for N in sizes:  # the program alone, without the first call's N iterations
        wl.add_fresh(
            f"symgrad N={N:,}, decoration only (.variant)",
            lambda N=N: grad(logistic, wrt=("x", "r"), static="N").variant({"N": N}),
            cfg,
        )
    unrolled = 1_000 if not cfg.quick else 100
    wl.add_fresh(
        f"symgrad loops='unroll' N={unrolled:,}",
        lambda: grad(logistic, wrt=("x", "r"), static="N", loops="unroll")(0.1, 2.0, unrolled),
        cfg,
    )
    fresh = run._jax_fresh(peers)
    for N in sizes:
        make = None if peers.jax is None else (lambda N=N: _jax_logistic(peers, N)(0.1, 2.0))
        wl.add_fresh(f"{run.JAX} fori_loop N={N:,}", make, cfg, before=fresh)
    T = 1_000 if not cfg.quick else 100
    wl.add_fresh(
        f"symgrad recurrence T={T:,}",
        lambda: grad(recurrence, wrt=("h", "w", "u"), static="T")(0.2, 0.9, 0.5, T),
        cfg,
    )
    make = None if peers.jax is None else (lambda: _jax_recurrence(peers, T)(0.2, 0.9, 0.5))
    wl.add_fresh(f"{run.JAX} fori_loop recurrence T={T:,}", make, cfg, before=fresh)
    args = rnn_arguments(T)
    wl.add_fresh(
        f"symgrad RNN (8 units, arrays) T={T:,}",
        lambda: grad(rnn, wrt=("W", "U", "b", "xs"), static="T")(*args, T),
        cfg,
    )
    make = None if peers.jax is None else (lambda: _jax_rnn(peers)(*args))
    wl.add_fresh(f"{run.JAX} lax.scan RNN T={T:,}", make, cfg, before=fresh)
    return wl.render(
        "L: decoration + first call (logistic Euler loop; tanh recurrence; RNN on arrays), by trip count"
    )


def _calls(cfg: run.Config, peers: run.Peers) -> list[str]:
    from symgrad import grad

    out = []
    N = 10_000 if not cfg.quick else 1_000
    want = logistic_hand(0.1, 2.0, N)
    wl = run.Workload(f"L logistic N={N}", peers)
    compiled = grad(logistic, wrt=("x", "r"), static="N")
    wl.add(run.SYMGRAD, run.calling(compiled, 0.1, 2.0, N), cfg, want)
    wl.add(run.HAND, run.calling(logistic_hand, 0.1, 2.0, N), cfg, want)
    checkpointed = grad(logistic, wrt=("x", "r"), static="N", checkpoint=True)
    wl.add(f"{run.SYMGRAD} checkpoint=True", run.calling(checkpointed, 0.1, 2.0, N), cfg, want)
    wl.add(f"{run.SYMGRAD} backend='numba'", _numba(logistic, ("x", "r"), "N", 0.1, 2.0, N), cfg, want)
    wl.add(f"{run.HAND}, numba.njit", _njit_hand(logistic_hand, 0.1, 2.0, N), cfg, want)
    jax_call = None if peers.jax is None else run.calling(_jax_logistic(peers, N), 0.1, 2.0)
    wl.add(f"{run.JAX} fori_loop", jax_call, cfg, want, rtol=1e-7)
    torch_call = (
        None if peers.torch is None else run.calling(_torch_grad(peers, _torch_logistic, 2), 0.1, 2.0, N)
    )
    wl.add(run.TORCH, torch_call, cfg, want)
    ag = None if peers.autograd is None else run.calling(_autograd_grad(peers, logistic, 2), 0.1, 2.0, N)
    wl.add(run.AUTOGRAD, ag, cfg, want)
    out.append(wl.render(f"L: gradient of the logistic Euler loop, N = {N:,}, on Python floats"))

    T = 1_000 if not cfg.quick else 100
    want = recurrence_hand(0.2, 0.9, 0.5, T)
    wl = run.Workload(f"L recurrence T={T}", peers)
    compiled = grad(recurrence, wrt=("h", "w", "u"), static="T")
    wl.add(run.SYMGRAD, run.calling(compiled, 0.2, 0.9, 0.5, T), cfg, want)
    wl.add(run.HAND, run.calling(recurrence_hand, 0.2, 0.9, 0.5, T), cfg, want)
    wl.add(
        f"{run.SYMGRAD} backend='numba'",
        _numba(recurrence, ("h", "w", "u"), "T", 0.2, 0.9, 0.5, T),
        cfg,
        want,
    )
    wl.add(f"{run.HAND}, numba.njit", _njit_hand(recurrence_hand, 0.2, 0.9, 0.5, T), cfg, want)
    jax_call = None if peers.jax is None else run.calling(_jax_recurrence(peers, T), 0.2, 0.9, 0.5)
    wl.add(f"{run.JAX} fori_loop", jax_call, cfg, want, rtol=1e-7)
    torch_call = (
        None
        if peers.torch is None
        else run.calling(_torch_grad(peers, _torch_recurrence, 3), 0.2, 0.9, 0.5, T)
    )
    wl.add(run.TORCH, torch_call, cfg, want)
    ag = (
        None
        if peers.autograd is None
        else run.calling(_autograd_grad(peers, _autograd_recurrence(peers), 3), 0.2, 0.9, 0.5, T)
    )
    wl.add(run.AUTOGRAD, ag, cfg, want)
    out.append(wl.render(f"L: gradient of a tanh recurrence, T = {T:,}, on Python floats"))

    out.append(_rnn_calls(cfg, peers))

    want = newton_sqrt_hand(2.0)
    wl = run.Workload("L newton", peers)
    wl.add(run.SYMGRAD, run.calling(grad(newton_sqrt), 2.0), cfg, want)
    wl.add(run.HAND, run.calling(newton_sqrt_hand, 2.0), cfg, want)
    jax_call = None if peers.jax is None else run.calling(_jax_newton(peers), 2.0)
    wl.add(f"{run.JAX} jacfwd(while_loop)", jax_call, cfg, want, rtol=1e-7)
    out.append(wl.render("L: derivative of Newton's square root (`while` with a tolerance) at x = 2"))
    return out


def _jax_arrays(cfg: run.Config, peers: run.Peers) -> list[str]:
    """The logistic loop on 1,000-element jax arrays: backend="jax" (the kept loop as
    `lax.scan`) against jax's own `fori_loop`, first call and later calls."""
    from symgrad import grad

    N = 10_000 if not cfg.quick else 1_000
    x = np.linspace(0.1, 0.9, 1_000)
    want = grad(logistic, wrt=("x", "r"), static="N")(x, 2.0, N)
    jnp = peers.jnp

    def symgrad_jax() -> Callable[[], Any]:
        g = grad(logistic, wrt=("x", "r"), static="N", backend="jax")
        return lambda: peers.jax.block_until_ready(g(jnp.asarray(x), 2.0, N))

    def jax_own() -> Callable[[], Any]:
        jax = peers.jax

        def f(x: Any, r: Any) -> Any:
            return jax.lax.fori_loop(0, N, lambda i, x: x + 0.001 * r * x * (1 - x), x).sum()

        g = jax.jit(jax.grad(f, argnums=(0, 1)))
        return lambda: jax.block_until_ready(g(jnp.asarray(x), 2.0))

    ready = peers.jax is not None
    first = run.Workload(f"L jax first N={N}", peers)
    fresh = run._jax_fresh(peers)
    first.add_fresh(
        f"{run.SYMGRAD} backend='jax'", (lambda: symgrad_jax()()) if ready else None, cfg, before=fresh
    )
    first.add_fresh(f"{run.JAX} fori_loop", (lambda: jax_own()()) if ready else None, cfg, before=fresh)
    calls = run.Workload(f"L jax arrays N={N}", peers)
    calls.add(run.SYMGRAD, run.calling(grad(logistic, wrt=("x", "r"), static="N"), x, 2.0, N), cfg, want)
    calls.add(f"{run.SYMGRAD} backend='jax'", symgrad_jax if ready else None, cfg, want, rtol=1e-10)
    calls.add(f"{run.JAX} fori_loop", jax_own if ready else None, cfg, want, rtol=1e-10)
    where = f"the logistic Euler loop on 1,000-element arrays, N = {N:,}"
    return [
        first.render(f"L: decoration + first call with backend='jax' (kept loop as lax.scan), {where}"),
        calls.render(f"L: gradient calls on arrays, {where}"),
    ]


def _rnn_calls(cfg: run.Config, peers: run.Peers) -> str:
    from symgrad import grad

    T = 1_000 if not cfg.quick else 100
    args = rnn_arguments(T)
    want = rnn_hand(*args, T)
    wl = run.Workload(f"L RNN T={T}", peers)
    wl.add(run.SYMGRAD, run.calling(grad(rnn, wrt=("W", "U", "b", "xs"), static="T"), *args, T), cfg, want)
    wl.add(run.HAND, run.calling(rnn_hand, *args, T), cfg, want)
    jax_call = None if peers.jax is None else run.calling(_jax_rnn(peers), *args)
    wl.add(f"{run.JAX} lax.scan", jax_call, cfg, want, rtol=1e-7)
    torch_call = None if peers.torch is None else run.calling(_torch_rnn(peers), *args, T)
    wl.add(run.TORCH, torch_call, cfg, want)
    ag = None if peers.autograd is None else run.calling(_autograd_rnn(peers), *args, T)
    wl.add(run.AUTOGRAD, ag, cfg, want)
    table = wl.render(f"L: gradient of a tanh RNN, 8 hidden units, 2 inputs, T = {T:,} steps, on arrays")
    return table + _rnn_memory(args, T, peers)


def _jax_w4(peers: run.Peers, D: int) -> Callable[..., Any]:
    """W4 with `lax.fori_loop`, the weights stacked so that `w[i % 10]` indexes at run time."""
    jax, jnp = peers.jax, peers.jnp

    def f(h0: Any, *rest: Any) -> Any:
        ws, b = jnp.stack(rest[:-1]), rest[-1]
        return jax.lax.fori_loop(0, D, lambda i, h: jnp.tanh(ws[i % 10] * h + b), h0)

    return jax.jit(jax.value_and_grad(f, argnums=tuple(range(12))))


def _torch_w4(peers: run.Peers, D: int) -> Callable[..., Any]:
    torch, f = peers.torch, W.make_rnn(peers.torch, "torch", D)

    def call(*args: float) -> tuple[float, tuple[float, ...]]:
        leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
        value = f(*leaves)
        return value.item(), tuple(g.item() for g in torch.autograd.grad(value, leaves))

    return call


def _autograd_w4(peers: run.Peers, D: int) -> Callable[..., Any]:
    return peers.autograd.value_and_grad(W.make_rnn(peers.anp, "autograd", D), tuple(range(12)))


def _w4(cfg: run.Config, peers: run.Peers) -> list[str]:
    """W4 (`h = tanh(w[i % 10] * h + b)`, a tuple read at the loop's index) as a kept loop."""
    from symgrad import value_and_grad

    depths = (200, 1_000, 10_000) if not cfg.quick else (200,)
    setup = run.Workload("L W4 setup", peers)
    for D in depths:
        setup.add_fresh(
            f"symgrad D={D:,} ({'kept' if D >= KEEP_PICKED_FROM else 'unrolled'})",
            lambda D=D: value_and_grad(W.rnn, wrt=W.W4_PARAMS, static="D")(*W.W4_ARGS, D),
            cfg,
        )
    setup.add_fresh(
        "symgrad D=200 loops='keep'",
        lambda: value_and_grad(W.rnn, wrt=W.W4_PARAMS, static="D", loops="keep")(*W.W4_ARGS, 200),
        cfg,
    )
    fresh = run._jax_fresh(peers)
    for D in depths:
        make = None if peers.jax is None else (lambda D=D: _jax_w4(peers, D)(*W.W4_ARGS))
        setup.add_fresh(f"{run.JAX} fori_loop D={D:,}", make, cfg, before=fresh)
    out = [setup.render("L: W4 decoration + first call (value and gradient), by depth")]
    for D in depths:
        want = W.rnn_value_and_grad_hand(*W.W4_ARGS, D)
        wl = run.Workload(f"L W4 D={D}", peers)
        compiled = value_and_grad(W.rnn, wrt=W.W4_PARAMS, static="D")
        kept = D >= KEEP_PICKED_FROM
        mode = "a kept loop" if kept else f"unrolled (kept from {KEEP_PICKED_FROM:,} iterations)"
        wl.add(run.SYMGRAD, run.calling(compiled, *W.W4_ARGS, D), cfg, want, note=mode)
        if not kept:
            keep = value_and_grad(W.rnn, wrt=W.W4_PARAMS, static="D", loops="keep")
            wl.add(f"{run.SYMGRAD} loops='keep'", run.calling(keep, *W.W4_ARGS, D), cfg, want)
        wl.add(run.HAND, run.calling(W.rnn_value_and_grad_hand, *W.W4_ARGS, D), cfg, want)
        jax_call = None if peers.jax is None else run.calling(_jax_w4(peers, D), *W.W4_ARGS)
        wl.add(f"{run.JAX} fori_loop", jax_call, cfg, want, rtol=1e-8)
        torch_call = None if peers.torch is None else run.calling(_torch_w4(peers, D), *W.W4_ARGS)
        wl.add(run.TORCH, torch_call, cfg, want, rtol=1e-8)
        ag = None if peers.autograd is None else run.calling(_autograd_w4(peers, D), *W.W4_ARGS)
        wl.add(run.AUTOGRAD, ag, cfg, want, rtol=1e-8)
        out.append(wl.render(f"L: W4 value and gradient, D = {D:,}, on Python floats"))
    D = depths[-1]
    compiled = value_and_grad(W.rnn, wrt=W.W4_PARAMS, static="D")
    rows = [
        ("symgrad (saves every h)", _peak(lambda: compiled(*W.W4_ARGS, D))),
        ("hand-written (saves every h)", _peak(lambda: W.rnn_value_and_grad_hand(*W.W4_ARGS, D))),
    ]
    if peers.autograd is not None:
        rows.append(("autograd (HIPS)", _peak(lambda: _autograd_w4(peers, D)(*W.W4_ARGS))))
    lines = "".join(f"| {name} | {mib:.2f} MiB |\n" for name, mib in rows)
    out.append(
        f"Peak memory of one W4 call, D = {D:,} (tracemalloc; jax and torch allocate outside what "
        "it sees):\n\n| system | peak |\n| --- | ---: |\n" + lines
    )
    return out


def _peak(call: Callable[[], Any]) -> float:
    """Peak traced memory of one call in MiB (tracemalloc sees NumPy's buffers and Python's
    objects, not the allocators of jax or torch)."""
    call()
    tracemalloc.start()
    call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def _rnn_memory(args: tuple[np.ndarray, ...], T: int, peers: run.Peers) -> str:
    from symgrad import grad

    compiled = grad(rnn, wrt=("W", "U", "b", "xs"), static="T")
    rows = [
        ("symgrad (saves every state)", _peak(lambda: compiled(*args, T))),
        ("hand-written (saves every state)", _peak(lambda: rnn_hand(*args, T))),
    ]
    if peers.autograd is not None:
        rows.append(
            ("autograd (HIPS, a tape of every operation)", _peak(lambda: _autograd_rnn(peers)(*args, T)))
        )
    lines = "".join(f"| {name} | {mib:.2f} MiB |\n" for name, mib in rows)
    return (
        f"\nPeak memory of one gradient call, T = {T:,} (tracemalloc; jax and torch allocate outside "
        "what it sees, so they have no row):\n\n| system | peak |\n| --- | ---: |\n" + lines
    )


def _memory(cfg: run.Config) -> str:
    from symgrad import grad

    N = 1_000_000 if not cfg.quick else 10_000
    rows = []
    for label, checkpoint in (("saves every carry", None), ("checkpoint=True: segments of sqrt(N)", True)):
        compiled = grad(logistic, wrt=("x", "r"), static="N", checkpoint=checkpoint)
        rows.append((f"symgrad ({label})", _peak(lambda c=compiled: c(0.1, 2.0, N))))
    rows.append(("hand-written (saves every carry)", _peak(lambda: logistic_hand(0.1, 2.0, N))))
    lines = "".join(f"| {name} | {mib:.2f} MiB |\n" for name, mib in rows)
    return (
        f"### L: peak memory of the logistic loop's gradient, N = {N:,} (tracemalloc)\n\n"
        "| system | peak |\n| --- | ---: |\n" + lines
    )


def workload(cfg: run.Config, peers: run.Peers) -> str:
    """Workload L: loops kept as loops."""
    parts = [
        "## L: loops kept as loops (issue 14)\n",
        _decoration(cfg, peers),
        *_calls(cfg, peers),
        *_w4(cfg, peers),
        *_jax_arrays(cfg, peers),
        _memory(cfg),
    ]
    return "\n".join(parts)
