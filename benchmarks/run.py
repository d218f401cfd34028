# ruff: noqa: N803, N806, N812, RUF001  (D as in the issue; W for workloads; en dashes in tables)
"""symgrad benchmark suite: symgrad against JAX, PyTorch, HIPS autograd, SymPy and hand-written code.

    python -m benchmarks.run [--quick] [--only W1,W3,W5v] [--repeats N]

Every system runs in this one process, one after another. Each workload first checks every
system's gradient against the hand-written one (a mismatch is printed loudly, marked in the
table and makes the exit status 1), then times it: a repeat is a loop of enough calls to last
at least ~20 ms (`time.perf_counter`, garbage collector off inside the loop, like `timeit`);
tables give the median and the range over repeats, per call.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import workloads as W

SYMGRAD = "symgrad"
HAND = "hand-written"
JAX = "jax.jit(grad)"
TORCH = "torch autograd"
AUTOGRAD = "autograd (HIPS)"
SYMPY = "sympy diff + lambdify(cse)"
PEERS = (JAX, TORCH, AUTOGRAD, SYMPY)


# --- configuration and peers -------------------------------------------------------------------


@dataclass
class Config:
    quick: bool
    repeats: int
    min_time: float  # seconds one timed loop lasts at least
    setup_repeats: int  # fresh objects built for decoration / first-call timings
    setup_budget: float  # stop repeating a setup timing once this many seconds are spent


@dataclass
class Peers:
    jax: Any = None
    jnp: Any = None
    torch: Any = None
    autograd: Any = None
    anp: Any = None
    sympy: Any = None
    why: dict[str, str] = field(default_factory=dict)


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text[:100]


def load_peers(torch_threads: int = 1) -> Peers:
    peers = Peers()
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        jnp.zeros(1).block_until_ready()
        peers.jax, peers.jnp = jax, jnp
    except Exception as exc:  # absent or broken: the rows say why
        peers.why[JAX] = _reason(exc)
    try:
        import torch

        if torch_threads > 0:
            torch.set_num_threads(torch_threads)
        peers.torch = torch
    except Exception as exc:
        peers.why[TORCH] = _reason(exc)
    try:
        import autograd
        import autograd.numpy as anp

        peers.autograd, peers.anp = autograd, anp
    except Exception as exc:
        peers.why[AUTOGRAD] = _reason(exc)
    try:
        import sympy

        peers.sympy = sympy
    except Exception as exc:
        peers.why[SYMPY] = _reason(exc)
    return peers


# --- timing ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _gc_off() -> Iterator[None]:
    """One full collection first (about 0.1 s with jax and torch loaded), then the collector
    stays off, like `timeit`; callers run cheap young-generation collections between loops."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _loop(fn: Callable[[], Any], number: int) -> float:
    gc.collect(0)
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - start


def time_calls(fn: Callable[[], Any], cfg: Config) -> list[float]:
    """Seconds per call: `repeats` loops, each of enough calls to last >= cfg.min_time."""
    fn()  # warm: first-call costs are reported separately
    with _gc_off():
        number = 1
        while True:
            elapsed = _loop(fn, number)
            if elapsed >= cfg.min_time:
                break
            number = max(number * 2, int(number * cfg.min_time * 1.2 / max(elapsed, 1e-9)))
        times = [elapsed / number]
        times += [_loop(fn, number) / number for _ in range(cfg.repeats - 1)]
    return times


def time_fresh(make: Callable[[], Any], cfg: Config, before: Callable[[], None] | None = None) -> list[float]:
    """Seconds for `make()` (a fresh object each time: decoration, compile, first call)."""
    times: list[float] = []
    with _gc_off():
        while len(times) < cfg.setup_repeats and (not times or sum(times) < cfg.setup_budget):
            if before is not None:
                before()
            gc.collect(1)
            start = time.perf_counter()
            make()
            times.append(time.perf_counter() - start)
    return times


# --- rows, checks and tables --------------------------------------------------------------------


@dataclass
class Row:
    system: str
    times: list[float] | None = None
    note: str = ""  # "skipped: ..." / "failed: ..." when there are no times
    mismatch: bool = False


MISMATCHES: list[str] = []
FAILURES: list[str] = []


def check(
    workload: str, system: str, got: Any, want: Any, rtol: float = 1e-9, atol: float = 1e-12
) -> tuple[bool, str]:
    """Compare a system's gradient to the hand-written one; shout on mismatch."""
    a, b = W.flat(got), W.flat(want)
    if a.shape != b.shape:
        ok, detail = False, f"shape {a.shape} != {b.shape}"
    else:
        err = np.abs(a - b)
        ok = bool(np.all(err <= atol + rtol * np.abs(b)))
        scale = np.maximum(np.abs(b), 1e-300)
        detail = f"max rel err {float(np.max(err / scale)) if err.size else 0.0:.1e}"
    if not ok:
        message = f"!!! MISMATCH in {workload}: {system} gradient differs from hand-written ({detail})"
        MISMATCHES.append(message)
        print(message, file=sys.stderr, flush=True)
    return ok, detail


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{seconds:g} s"


def table(title: str, rows: Sequence[Row], peers: Sequence[str] = PEERS) -> str:
    timed = {r.system: statistics.median(r.times) for r in rows if r.times}
    best_peer = min((t for s, t in timed.items() if any(s.startswith(p) for p in peers)), default=None)
    hand = timed.get(HAND)
    lines = [
        f"### {title}",
        "",
        "| system | median | min–max | ratio to best peer | ratio to hand-written |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        name = row.system + (" **MISMATCH**" if row.mismatch else "")
        if not row.times:
            lines.append(f"| {name} | {row.note} | – | – | – |")
            continue
        med = statistics.median(row.times)
        span = f"{fmt_time(min(row.times))} – {fmt_time(max(row.times))}"
        vs_peer = f"{med / best_peer:.2f}x" if best_peer else "–"
        vs_hand = f"{med / hand:.2f}x" if hand else "–"
        note = f" ({row.note})" if row.note else ""
        lines.append(f"| {name}{note} | {fmt_time(med)} | {span} | {vs_peer} | {vs_hand} |")
    return "\n".join(lines) + "\n"


class Workload:
    """Collects rows for one table: guards each system so that one failure never stops the suite."""

    def __init__(self, name: str, peers: Peers) -> None:
        self.name = name
        self.peers = peers
        self.rows: list[Row] = []
        self.checks: list[str] = []

    def skip_reason(self, system: str) -> str | None:
        if system in self.peers.why:
            return f"skipped: {self.peers.why[system]}"
        return None

    def add(
        self,
        system: str,
        build: Callable[[], Callable[[], Any]] | None,
        cfg: Config,
        want: Any = None,
        skip: str | None = None,
        rtol: float = 1e-9,
        atol: float = 1e-12,
        note: str = "",
    ) -> Row:
        """`build()` returns a zero-argument call returning the gradient; it is checked
        against `want` (when given), then timed."""
        reason = skip or self.skip_reason(system)
        if reason is not None or build is None:
            row = Row(system, note=reason or "skipped")
            self.rows.append(row)
            return row
        row = Row(system, note=note)
        try:
            call = build()
            if want is not None:
                ok, detail = check(self.name, system, call(), want, rtol, atol)
                row.mismatch = not ok
                self.checks.append(f"{system}: {'ok' if ok else 'MISMATCH'} ({detail})")
            row.times = time_calls(call, cfg)
        except Exception as exc:
            row.note = f"failed: {_reason(exc)}"
            FAILURES.append(f"{self.name}: {system}: {_reason(exc)}")
            print(f"!!! {self.name}: {system} failed: {_reason(exc)}", file=sys.stderr, flush=True)
        self.rows.append(row)
        return row

    def add_fresh(
        self,
        system: str,
        make: Callable[[], Any] | None,
        cfg: Config,
        skip: str | None = None,
        before: Callable[[], None] | None = None,
        note: str = "",
    ) -> Row:
        reason = skip or self.skip_reason(system)
        if reason is not None or make is None:
            row = Row(system, note=reason or "skipped")
        else:
            row = Row(system, note=note)
            try:
                row.times = time_fresh(make, cfg, before)
            except Exception as exc:
                row.note = f"failed: {_reason(exc)}"
                FAILURES.append(f"{self.name}: {system}: {_reason(exc)}")
                print(f"!!! {self.name}: {system} failed: {_reason(exc)}", file=sys.stderr, flush=True)
        self.rows.append(row)
        return row

    def render(self, title: str) -> str:
        text = table(title, self.rows)
        if self.checks:
            text += "\nGradient check against hand-written: " + "; ".join(self.checks) + ".\n"
        return text


def calling(fn: Callable[..., Any], *args: Any) -> Callable[[], Callable[[], Any]]:
    """A builder for `Workload.add`: the call `fn(*args)`, arguments bound now."""
    return lambda: lambda: fn(*args)


@contextlib.contextmanager
def _symgrad_cache_on() -> Iterator[None]:
    """symgrad's persistent cache, switched on in a fresh temporary directory."""
    saved = {k: os.environ.get(k) for k in ("SYMGRAD_NO_CACHE", "SYMGRAD_CACHE_DIR")}
    with tempfile.TemporaryDirectory(prefix="symgrad-bench-cache-") as directory:
        os.environ["SYMGRAD_NO_CACHE"] = "0"
        os.environ["SYMGRAD_CACHE_DIR"] = directory
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _add_cache_hit(wl: Workload, make: Callable[[], Any], cfg: Config, name: str = SYMGRAD) -> None:
    """A row for symgrad's decoration when its persistent cache already holds the kernel
    (a new process, same function): one build fills the cache, then fresh objects are timed."""
    if importlib.util.find_spec("symgrad.cache") is None:
        return
    with _symgrad_cache_on():
        make()  # fills the cache
        wl.add_fresh(f"{name}: persistent cache hit", make, cfg, note="same, kernel source from disk")


def _jax_fresh(peers: Peers) -> Callable[[], None] | None:
    return peers.jax.clear_caches if peers.jax is not None else None


def _block(value: Any) -> Any:
    return value.block_until_ready() if hasattr(value, "block_until_ready") else value


# --- W1: relu --------------------------------------------------------------------------------


def w1(cfg: Config, peers: Peers) -> str:
    from symgrad import grad

    out = ["## W1: gradient of sum(np.maximum(x, 0))\n"]
    sizes = [("np.arange(-8, 8, 0.1), 160 elements", np.arange(-8, 8, 0.1))]
    n_big = 10_000 if cfg.quick else 1_000_000
    sizes.append((f"{n_big:.0e} elements, linspace(-8, 8)", np.linspace(-8, 8, n_big)))
    first = Workload("W1 first call", peers)
    for label, x in sizes:
        assert not np.any(x == 0)  # relu'(0) conventions differ (jax: 0.5)
        want = W.relu_grad_hand(x)
        wl = Workload(f"W1 ({label})", peers)
        g = grad(W.relu)
        wl.add(SYMGRAD, calling(g, x), cfg, want)
        wl.add(HAND, calling(W.relu_grad_hand, x), cfg)
        _add_array_peers(wl, peers, cfg, W.make_relu, x, want)
        out.append(wl.render(f"W1 gradient call, {label}"))
    x = sizes[0][1]
    _add_first_calls(first, peers, cfg, W.relu, W.make_relu, x)
    out.append(
        first.render(
            "W1 first call of a fresh object (decoration / trace + compile + one call), 160 elements"
        )
    )
    return "\n".join(out)


def _add_array_peers(
    wl: Workload,
    peers: Peers,
    cfg: Config,
    make: Callable[..., Any],
    x: np.ndarray,
    want: Any,
    rtol: float = 1e-9,
) -> None:
    def jax_build() -> Callable[[], Any]:
        jax, jnp = peers.jax, peers.jnp
        f = make(jnp, "jax")
        gj = jax.jit(jax.grad(lambda v: jnp.sum(f(v))))
        xj = jnp.asarray(x)
        return lambda: gj(xj).block_until_ready()

    def torch_build() -> Callable[[], Any]:
        torch = peers.torch
        f = make(torch, "torch")
        xt = torch.from_numpy(x)

        def call() -> Any:
            t = xt.detach().requires_grad_(True)
            (gt,) = torch.autograd.grad(f(t).sum(), t)
            return gt.numpy()

        return call

    def autograd_build() -> Callable[[], Any]:
        anp = peers.anp
        f = make(anp, "autograd")
        ga = peers.autograd.grad(lambda v: anp.sum(f(v)))
        return lambda: ga(x)

    wl.add(JAX, jax_build, cfg, want, rtol=rtol)
    wl.add(TORCH, torch_build, cfg, want, rtol=rtol)
    wl.add(AUTOGRAD, autograd_build, cfg, want, rtol=rtol)


def _add_first_calls(
    wl: Workload, peers: Peers, cfg: Config, fn: Callable[..., Any], make: Callable[..., Any], x: np.ndarray
) -> None:
    from symgrad import grad

    wl.add_fresh(SYMGRAD, lambda: grad(fn)(x), cfg)

    def jax_first() -> None:
        jax, jnp = peers.jax, peers.jnp
        f = make(jnp, "jax")
        jax.jit(jax.grad(lambda v: jnp.sum(f(v))))(jnp.asarray(x)).block_until_ready()

    def torch_first() -> None:
        torch = peers.torch
        t = torch.from_numpy(x).requires_grad_(True)
        torch.autograd.grad(make(torch, "torch")(t).sum(), t)

    def autograd_first() -> None:
        anp = peers.anp
        f = make(anp, "autograd")
        peers.autograd.grad(lambda v: anp.sum(f(v)))(x)

    wl.add_fresh(JAX, jax_first, cfg, before=_jax_fresh(peers))
    wl.add_fresh(TORCH, torch_first, cfg)
    wl.add_fresh(AUTOGRAD, autograd_first, cfg)


# --- W2: Rosenbrock on floats ---------------------------------------------------------------------


def w2(cfg: Config, peers: Peers) -> str:
    from symgrad import grad

    x, y = -1.2, 1.0
    want = W.rosen_grad_hand(x, y)
    wl = Workload("W2", peers)
    g = grad(W.rosen, wrt=("x", "y"))
    wl.add(SYMGRAD, calling(g, x, y), cfg, want)
    wl.add(HAND, calling(W.rosen_grad_hand, x, y), cfg)

    def jax_build() -> Callable[[], Any]:
        jax = peers.jax
        gj = jax.jit(jax.grad(W.make_rosen(peers.jnp, "jax"), argnums=(0, 1)))
        return lambda: jax.block_until_ready(gj(x, y))

    def torch_build() -> Callable[[], Any]:
        torch = peers.torch
        f = W.make_rosen(torch, "torch")

        def call() -> Any:
            xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            yt = torch.tensor(y, dtype=torch.float64, requires_grad=True)
            gx, gy = torch.autograd.grad(f(xt, yt), (xt, yt))
            return gx.item(), gy.item()

        return call

    def autograd_build() -> Callable[[], Any]:
        ga = peers.autograd.grad(W.make_rosen(peers.anp, "autograd"), (0, 1))
        return lambda: ga(x, y)

    wl.add(JAX, jax_build, cfg, want)
    wl.add(TORCH, torch_build, cfg, want)
    wl.add(AUTOGRAD, autograd_build, cfg, want)
    return "## W2: Rosenbrock (1-x)**2 + 100*(y-x**2)**2, gradient on Python floats\n\n" + wl.render(
        "W2 gradient call on Python floats (x, y) = (-1.2, 1.0)"
    )


# --- W3: smooth elementwise function on 1e6 float64 -------------------------------------------------


def w3(cfg: Config, peers: Peers) -> str:
    from symgrad import grad

    n = 10_000 if cfg.quick else 1_000_000
    x = np.linspace(-5, 5, n)
    want = W.smooth_grad_hand(x)
    wl = Workload("W3", peers)
    g = grad(W.smooth)
    wl.add(SYMGRAD, calling(g, x), cfg, want)
    wl.add(HAND, calling(W.smooth_grad_hand, x), cfg)
    _add_array_peers(wl, peers, cfg, W.make_smooth, x, want)
    first = Workload("W3 first call", peers)
    _add_first_calls(first, peers, cfg, W.smooth, W.make_smooth, x[:160])
    out = [
        "## W3: sin(x)*exp(-x**2/2)/(1+x**2) + log(1+exp(x)), gradient on float64 arrays\n",
        wl.render(f"W3 gradient call, {n:.0e} elements (linspace(-5, 5))"),
        _w3_memory(x, g, peers),
        first.render("W3 first call of a fresh object, 160 elements"),
    ]
    return "\n".join(out)


def _peak(call: Callable[[], Any]) -> int:
    call()  # warm
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = call()
        peak = tracemalloc.get_traced_memory()[1] - base
        del result
    finally:
        tracemalloc.stop()
    return peak


def _w3_memory(x: np.ndarray, g: Any, peers: Peers) -> str:
    calls: list[tuple[str, Callable[[], Any] | None, str]] = [
        (SYMGRAD, lambda: g(x), ""),
        (HAND, lambda: W.smooth_grad_hand(x), ""),
    ]
    if peers.autograd is not None:
        anp = peers.anp
        f = W.make_smooth(anp, "autograd")
        ga = peers.autograd.grad(lambda v: anp.sum(f(v)))
        calls.append((AUTOGRAD, lambda: ga(x), ""))
    else:
        calls.append((AUTOGRAD, None, f"skipped: {peers.why.get(AUTOGRAD)}"))
    calls.append((JAX, None, "not measured: XLA buffers are not seen by tracemalloc"))
    calls.append((TORCH, None, "not measured: torch tensors are not seen by tracemalloc"))
    lines = [
        f"### W3 peak memory of one gradient call ({x.size:.0e} elements; input {x.nbytes / 2**20:.1f} MiB)",
        "",
        "tracemalloc peak above the memory in use before the call; the returned gradient counts.",
        "",
        "| system | peak (MiB) | peak / input size | ratio to hand-written |",
        "| --- | ---: | ---: | ---: |",
    ]
    peaks: dict[str, int | str] = {}
    for system, call, note in calls:
        if call is None:
            peaks[system] = note
            continue
        try:
            peaks[system] = _peak(call)
        except Exception as exc:
            peaks[system] = f"failed: {_reason(exc)}"
    hand = peaks.get(HAND)
    for system, peak in peaks.items():
        if isinstance(peak, str):
            lines.append(f"| {system} | {peak} | – | – |")
            continue
        ratio = f"{peak / hand:.2f}x" if isinstance(hand, int) and hand else "–"
        lines.append(f"| {system} | {peak / 2**20:.1f} | {peak / x.nbytes:.1f}x | {ratio} |")
    return "\n".join(lines) + "\n"


# --- W4: the unrolled recurrence -----------------------------------------------------------------


def w4(cfg: Config, peers: Peers) -> str:
    from symgrad import value_and_grad

    depths = (10,) if cfg.quick else (50, 200)
    batch = 100 if cfg.quick else 10_000
    out = [
        "## W4: h = tanh(w[i % 10]*h + b) unrolled D times (12 parameters: h0, w0..w9, b; D static)\n",
        "Every system computes value and gradient (symgrad `value_and_grad`, `jax.value_and_grad`, "
        "`autograd.value_and_grad`, torch forward + `autograd.grad`).\n",
    ]
    args = W.W4_ARGS
    rng = np.random.default_rng(0)
    h0s = rng.uniform(-1, 1, batch)
    argnums = tuple(range(12))
    for D in depths:
        # decoration / compile
        setup = Workload(f"W4 D={D} setup", peers)

        def symgrad_setup(D: int = D) -> Any:  # a new decorated object each time
            compiled = value_and_grad(W.rnn, wrt=W.W4_PARAMS, static="D")
            compiled.variant({"D": D})
            return compiled(*args, D)  # kernels compile on first use

        note = "value_and_grad(...).variant({'D': D}) + first call on floats"
        setup.add_fresh(SYMGRAD, symgrad_setup, cfg, note=note)
        _add_cache_hit(setup, symgrad_setup, cfg)

        def jax_first(D: int = D) -> None:
            jax = peers.jax
            f = W.make_rnn(peers.jnp, "jax", D)
            jax.block_until_ready(jax.jit(jax.value_and_grad(f, argnums=argnums))(*args))

        setup.add_fresh(JAX, jax_first, cfg, before=_jax_fresh(peers), note="trace + compile + first call")
        setup.add_fresh(TORCH, None, cfg, skip="no decoration step (eager)")
        setup.add_fresh(AUTOGRAD, None, cfg, skip="no decoration step (eager)")
        out.append(setup.render(f"W4 D={D}: decoration / compile time"))
        out.append(_w4_ops(D, peers, args))
        # calls
        compiled = value_and_grad(W.rnn, wrt=W.W4_PARAMS, static="D")
        for label, inputs in (
            ("Python floats", args),
            (f"a batch of {batch} h0 values (w, b floats)", (h0s, *args[1:])),
        ):
            want = W.rnn_value_and_grad_hand(*inputs, D)
            wl = Workload(f"W4 D={D} {label}", peers)
            wl.add(SYMGRAD, calling(compiled, *inputs, D), cfg, want)
            if label == "Python floats":
                kernel = compiled.variant({"D": D}).kernel.scalar_fn
                wl.add(
                    SYMGRAD + ": scalar kernel called directly",
                    calling(kernel, *args),
                    cfg,
                    want,
                    note="diagnostic, no argument binding",
                )
            wl.add(HAND, calling(W.rnn_value_and_grad_hand, *inputs, D), cfg)
            _add_rnn_peers(wl, peers, cfg, D, inputs, want)
            out.append(wl.render(f"W4 D={D}: value-and-gradient call on {label}"))
    return "\n".join(out)


def _w4_ops(D: int, peers: Peers, args: tuple[float, ...]) -> str:
    from symgrad import value_and_grad

    forward = W.count_ops(W.rnn_forward_source(D))
    compiled = value_and_grad(W.rnn, wrt=W.W4_PARAMS, static="D")
    variant = compiled.variant({"D": D})
    rows = [
        ("forward alone (hand-unrolled source)", forward),
        ("symgrad value_and_grad, NumPy flavour (`.source`)", W.count_ops(variant.kernel.array_source)),
        (
            "symgrad value_and_grad, float flavour (`.scalar_source`)",
            W.count_ops(variant.kernel.scalar_source),
        ),
        ("symgrad SSA graph nodes (`.graph`, before CSE)", len(variant.graph.nodes)),
    ]
    if peers.jax is not None:
        jax = peers.jax
        f = W.make_rnn(peers.jnp, "jax", D)
        rows.append(("jax forward jaxpr equations", len(jax.make_jaxpr(f)(*args).jaxpr.eqns)))
        vg = jax.value_and_grad(f, argnums=tuple(range(12)))
        rows.append(("jax value_and_grad jaxpr equations", len(jax.make_jaxpr(vg)(*args).jaxpr.eqns)))
    lines = [
        f"### W4 D={D}: operation count (ast BinOp + UnaryOp + Call nodes)",
        "",
        "| program | operations | ratio to forward |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {count} | {count / forward:.2f}x |" for name, count in rows]
    return "\n".join(lines) + "\n"


def _add_rnn_peers(
    wl: Workload, peers: Peers, cfg: Config, D: int, inputs: tuple[Any, ...], want: Any
) -> None:
    argnums = tuple(range(12))
    batched = not isinstance(inputs[0], float)

    def jax_build() -> Callable[[], Any]:
        jax, jnp = peers.jax, peers.jnp
        f = W.make_rnn(jnp, "jax", D)
        target = (lambda *a: jnp.sum(f(*a))) if batched else f
        vg = jax.jit(jax.value_and_grad(target, argnums=argnums))
        ins = (jnp.asarray(inputs[0]), *inputs[1:]) if batched else inputs
        return lambda: jax.block_until_ready(vg(*ins))

    def torch_build() -> Callable[[], Any]:
        torch = peers.torch
        f = W.make_rnn(torch, "torch", D)
        h0 = torch.from_numpy(np.asarray(inputs[0]))

        def call() -> Any:
            leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in inputs[1:]]
            if batched:
                first = h0.detach().requires_grad_(True)
            else:
                first = torch.tensor(inputs[0], dtype=torch.float64, requires_grad=True)
            value = f(first, *leaves)
            grads = torch.autograd.grad(value.sum(), (first, *leaves))
            return (value.detach().numpy() if batched else value.item()), tuple(
                g.numpy() if g.ndim else g.item() for g in grads
            )

        return call

    def autograd_build() -> Callable[[], Any]:
        anp = peers.anp
        f = W.make_rnn(anp, "autograd", D)
        target = (lambda *a: anp.sum(f(*a))) if batched else f
        vg = peers.autograd.value_and_grad(target, argnums)
        if not batched:
            return lambda: vg(*inputs)
        fwd = W.make_rnn(np, "numpy", D)

        def call() -> Any:  # autograd's value is the sum: recompute the per-element value for the check
            _, grads = vg(*inputs)
            return fwd(*inputs), grads

        return call

    if batched:  # jax.value_and_grad of the summed function returns the sum: check the gradients
        wl.add(JAX, lambda: _grads_only(jax_build()), cfg, want[1], rtol=1e-8, note="value = sum over batch")
    else:
        wl.add(JAX, jax_build, cfg, want, rtol=1e-8)
    wl.add(TORCH, torch_build, cfg, want, rtol=1e-8)
    wl.add(AUTOGRAD, autograd_build, cfg, want, rtol=1e-8)


def _grads_only(call: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: call()[1]


# --- W5: many scalar parameters -------------------------------------------------------------------


def w5(cfg: Config, peers: Peers) -> str:
    sizes = (10,) if cfg.quick else (10, 100, 500, 1000, 2000)
    out = ["## W5: sum_i exp(x_i)*(x_i - x_{i+1})**2 over n scalar parameters (generated module)\n"]
    sympy_last: list[tuple[int, float]] = []  # (n, seconds) of the naive-SymPy builds so far
    for n in sizes:
        out.extend(_w5_size(n, cfg, peers, sympy_last))
    return "\n".join(out)


def _w5_size(n: int, cfg: Config, peers: Peers, sympy_last: list[tuple[int, float]]) -> list[str]:
    from symgrad import grad

    module = W.chain_module(n)
    xs = tuple(float(v) for v in np.linspace(-1, 1, n))
    want = W.chain_grad_hand(*xs)
    argnums = tuple(range(n))
    setup = Workload(f"W5 n={n} setup", peers)
    calls = Workload(f"W5 n={n}", peers)
    # The call tables reuse the last object built in the setup timing.
    built: dict[str, Any] = {}

    def symgrad_build(key: str) -> None:
        built[key] = grad(module.chain, wrt=argnums)
        built[key].variant()
        built[key](*xs)  # kernels compile on first use

    note = "grad(f, wrt=every parameter).variant() + first call"
    row = setup.add_fresh(SYMGRAD, lambda: symgrad_build(SYMGRAD), cfg, note=note)
    if row.times:
        _add_cache_hit(setup, lambda: symgrad_build("cache"), cfg)
    if row.times is None:  # building again would fail again, after the same work
        calls.rows.append(Row(SYMGRAD, note=row.note))
    else:
        calls.add(SYMGRAD, calling(built[SYMGRAD], *xs), cfg, want)
    calls.add(HAND, calling(W.chain_grad_hand, *xs), cfg)

    def jax_first() -> None:
        jax = peers.jax
        built[JAX] = jax.jit(jax.grad(module.make(peers.jnp), argnums=argnums))
        jax.block_until_ready(built[JAX](*xs))

    setup.add_fresh(JAX, jax_first, cfg, before=_jax_fresh(peers), note="trace + compile + first call")

    def jax_build() -> Callable[[], Any]:
        gj = (
            built[JAX]
            if JAX in built
            else peers.jax.jit(peers.jax.grad(module.make(peers.jnp), argnums=argnums))
        )
        return lambda: peers.jax.block_until_ready(gj(*xs))

    calls.add(JAX, jax_build, cfg, want, rtol=1e-8)

    def torch_build() -> Callable[[], Any]:
        torch = peers.torch
        f = module.make(torch)

        def call() -> Any:
            leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in xs]
            return tuple(g.item() for g in torch.autograd.grad(f(*leaves), leaves))

        return call

    calls.add(TORCH, torch_build, cfg, want, rtol=1e-8)
    setup.add_fresh(TORCH, None, cfg, skip="no decoration step (eager)")

    def autograd_build() -> Callable[[], Any]:
        ga = peers.autograd.grad(module.make(peers.anp), argnums)
        return lambda: ga(*xs)

    calls.add(AUTOGRAD, autograd_build, cfg, want, rtol=1e-8)
    setup.add_fresh(AUTOGRAD, None, cfg, skip="no decoration step (eager)")
    # the naive SymPy path: run it for n <= 100; beyond, only if extrapolating the measured
    # growth (at least n**2) from the last sizes predicts at most a minute
    sympy_skip = None
    if n > 100:
        if not sympy_last:
            sympy_skip = "skipped: > 60 s expected"
        else:
            (n1, t1), (n2, t2) = sympy_last[-2:] if len(sympy_last) > 1 else (sympy_last[-1], sympy_last[-1])
            power = max(2.0, math.log(t2 / t1) / math.log(n2 / n1)) if n2 > n1 else 2.0
            estimate = t2 * (n / n2) ** power
            if estimate > 60:
                sympy_skip = f"skipped: > 60 s expected (~{estimate:.0f} s, growth ~n^{power:.1f})"

    def sympy_make() -> None:
        built[SYMPY] = W.chain_sympy(n)

    srow = setup.add_fresh(SYMPY, sympy_make, cfg, skip=sympy_skip, note="diff per input + lambdify")
    if srow.times:
        sympy_last.append((n, statistics.median(srow.times)))
        calls.add(SYMPY, calling(built[SYMPY], *xs), cfg, want, rtol=1e-8)
    else:
        calls.add(SYMPY, None, cfg, skip=srow.note)
    return [
        setup.render(f"W5 n={n}: decoration / compile time"),
        calls.render(f"W5 n={n}: gradient call on Python floats"),
    ]


# --- W6, W7, W5v: array programs (reductions, matmul, slices) over many rows ----------------------


def _model_peers(
    wl: Workload,
    peers: Peers,
    cfg: Config,
    make: Callable[..., Any],
    params: tuple[Any, ...],
    data: tuple[np.ndarray, ...],
    want: Any,
    rtol: float = 1e-9,
) -> None:
    """jax / torch / autograd rows for `f(*params, *data)` differentiated w.r.t. the params
    (NumPy arrays or Python floats); one parameter gives one gradient, several a tuple."""
    k = len(params)
    argnums: int | tuple[int, ...] = 0 if k == 1 else tuple(range(k))

    def jax_build() -> Callable[[], Any]:
        jax, jnp = peers.jax, peers.jnp
        gj = jax.jit(jax.grad(make(jnp, "jax"), argnums=argnums))
        ins = [jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in (*params, *data)]
        return lambda: jax.block_until_ready(gj(*ins))

    def torch_build() -> Callable[[], Any]:
        torch = peers.torch
        f = make(torch, "torch")
        arrays = [torch.from_numpy(p) if isinstance(p, np.ndarray) else p for p in params]
        tdata = [torch.from_numpy(a) for a in data]

        def call() -> Any:
            leaves = [
                a.detach().requires_grad_(True)
                if isinstance(a, torch.Tensor)
                else torch.tensor(a, dtype=torch.float64, requires_grad=True)
                for a in arrays
            ]
            grads = torch.autograd.grad(f(*leaves, *tdata), leaves)
            out = tuple(g.numpy() if g.ndim else g.item() for g in grads)
            return out[0] if k == 1 else out

        return call

    def autograd_build() -> Callable[[], Any]:
        ga = peers.autograd.grad(make(peers.anp, "autograd"), argnums)
        return lambda: ga(*params, *data)

    wl.add(JAX, jax_build, cfg, want, rtol=rtol)
    wl.add(TORCH, torch_build, cfg, want, rtol=rtol)
    wl.add(AUTOGRAD, autograd_build, cfg, want, rtol=rtol)


def _model_setup(
    name: str,
    peers: Peers,
    cfg: Config,
    fn: Callable[..., Any],
    wrt: str | tuple[str, ...],
    make: Callable[..., Any],
    params: tuple[Any, ...],
    data: tuple[np.ndarray, ...],
) -> Workload:
    """Decoration + first call (symgrad, a fresh object each time, SYMGRAD_NO_CACHE=1) against
    jax.jit(grad) trace + compile + first call, on the timed shapes."""
    from symgrad import grad

    setup = Workload(f"{name} setup", peers)
    args = (*params, *data)

    def symgrad_first() -> Any:
        return grad(fn, wrt=wrt)(*args)  # compiled for these shapes on first call

    wrt_text = repr(wrt) if isinstance(wrt, str) else "(" + ", ".join(map(repr, wrt)) + ")"
    row = setup.add_fresh(SYMGRAD, symgrad_first, cfg, note=f"grad(f, wrt={wrt_text}) + first call")
    if row.times:
        _add_cache_hit(setup, symgrad_first, cfg)
    jins: list[Any] = []
    if peers.jax is not None:
        jins = [peers.jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]

    def jax_first() -> None:
        jax = peers.jax
        argnums = 0 if len(params) == 1 else tuple(range(len(params)))
        jax.block_until_ready(jax.jit(jax.grad(make(peers.jnp, "jax"), argnums=argnums))(*jins))

    setup.add_fresh(JAX, jax_first, cfg, before=_jax_fresh(peers), note="trace + compile + first call")
    setup.add_fresh(TORCH, None, cfg, skip="no decoration step (eager)")
    setup.add_fresh(AUTOGRAD, None, cfg, skip="no decoration step (eager)")
    return setup


def _model_workload(
    name: str,
    label: str,
    peers: Peers,
    cfg: Config,
    fn: Callable[..., Any],
    wrt: str | tuple[str, ...],
    hand: Callable[..., Any],
    make: Callable[..., Any],
    params: tuple[Any, ...],
    data: tuple[np.ndarray, ...],
) -> list[str]:
    from symgrad import grad

    args = (*params, *data)
    want = hand(*args)
    wl = Workload(f"{name} ({label})", peers)
    wl.add(SYMGRAD, calling(grad(fn, wrt=wrt), *args), cfg, want)
    wl.add(HAND, calling(hand, *args), cfg)
    _model_peers(wl, peers, cfg, make, params, data, want)
    setup = _model_setup(name, peers, cfg, fn, wrt, make, params, data)
    return [
        wl.render(f"{name} gradient call, {label}"),
        setup.render(f"{name} {label}: decoration / compile time (first call of a fresh object)"),
    ]


def w6(cfg: Config, peers: Peers) -> str:
    rows = 1_000 if cfg.quick else 100_000
    w, X, y = W.logreg_data(rows)
    out = ["## W6: logistic regression, gradient of sum(logaddexp(0, X @ w) - y * (X @ w)) w.r.t. w\n"]
    out += _model_workload(
        "W6", f"X {rows:.0e} x 10", peers, cfg, W.logreg, "w", W.logreg_grad_hand, W.make_logreg, (w,), (X, y)
    )
    return "\n".join(out)


def w7(cfg: Config, peers: Peers) -> str:
    rows = 1_000 if cfg.quick else 100_000
    *params, X, y = W.mlp_data(rows)
    out = [
        "## W7: two-layer tanh MLP, gradient of mean((tanh(X @ W1 + b1) @ W2 + b2 - y)**2) "
        "w.r.t. (W1, b1, W2, b2)\n"
    ]
    label = f"X {rows:.0e} x 10, 32 hidden units"
    out += _model_workload(
        "W7", label, peers, cfg, W.mlp, W.W7_PARAMS, W.mlp_grad_hand, W.make_mlp, tuple(params), (X, y)
    )
    return "\n".join(out)


def w8(cfg: Config, peers: Peers) -> str:
    points = 50 if cfg.quick else 500
    *params, D2, y = W.gp_data(points)
    out = [
        "## W8: Gaussian process negative log marginal likelihood (np.linalg.cholesky, "
        "np.linalg.solve), gradient w.r.t. (log_ell, log_sf, log_sn)\n"
    ]
    label = f"{points} points, squared-exponential kernel"
    out += _model_workload(
        "W8",
        label,
        peers,
        cfg,
        W.gp_nll,
        W.W8_PARAMS,
        W.gp_nll_grad_hand,
        W.make_gp_nll,
        tuple(params),
        (D2, y),
    )
    return "\n".join(out)


def w5v(cfg: Config, peers: Peers) -> str:
    sizes = (100,) if cfg.quick else (1_000, 100_000)
    out = ["## W5v: W5 vectorised, gradient of sum(exp(x[:-1]) * (x[:-1] - x[1:])**2) on one array\n"]
    for n in sizes:
        x = np.linspace(-1, 1, n)
        out += _model_workload(
            "W5v", f"n={n}", peers, cfg, W.chain_vec, "x", W.chain_vec_grad_hand, W.make_chain_vec, (x,), ()
        )
    return "\n".join(out)


# --- main ----------------------------------------------------------------------------------------


def loops(cfg: Config, peers: Peers) -> str:
    """Workload L (benchmarks/loops.py): loops kept as loops."""
    from .loops import workload  # (it builds on this module)

    return workload(cfg, peers)


WORKLOADS: dict[str, Callable[[Config, Peers], str]] = {
    "W1": w1,
    "W2": w2,
    "W3": w3,
    "W4": w4,
    "W5": w5,
    "W5v": w5v,
    "W6": w6,
    "W7": w7,
    "W8": w8,
    "L": loops,
}


def environment(peers: Peers) -> str:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        cpu = platform.processor() or "unknown"
    import sympy

    versions = [
        f"Python {platform.python_version()}",
        f"numpy {np.__version__} (OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')})",
        f"sympy {sympy.__version__}",
        f"jax {peers.jax.__version__}" if peers.jax else "jax absent",
        f"torch {peers.torch.__version__} ({peers.torch.get_num_threads()} threads)"
        if peers.torch
        else "torch absent",
        f"autograd {_dist_version('autograd')}" if peers.autograd else "autograd absent",
    ]
    commit = _commit()
    return (
        f"Machine: {os.cpu_count()} CPUs (nproc), {cpu}, {platform.system()} {platform.machine()}. "
        + ", ".join(versions)
        + f". symgrad at commit {commit}.\n"
    )


def _commit() -> str:
    """The checked-out commit, read from .git (without running git)."""
    try:
        git = Path(__file__).resolve().parents[1] / ".git"
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:10]
        ref = head[5:]
        if (git / ref).exists():
            return (git / ref).read_text().strip()[:10]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:10]
    except OSError:
        pass
    return "unknown"


def _dist_version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "?"


def main(argv: Sequence[str] | None = None) -> int:
    # cold decoration timings; set here, not at import, which would turn off the cache of an
    # importing process
    os.environ.setdefault("SYMGRAD_NO_CACHE", "1")
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (smoke test)")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W3,W5v")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed loops per system (default 7, quick 3)"
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch.set_num_threads (default 1, like NumPy; 0 keeps torch's default)",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    cfg = Config(
        quick=args.quick,
        repeats=max(1, repeats),
        min_time=0.005 if args.quick else 0.02,
        setup_repeats=2 if args.quick else max(1, min(repeats, 5)),
        setup_budget=2.0 if args.quick else 20.0,
    )
    by_upper = {name.upper(): name for name in WORKLOADS}  # --only w5v, W5V, W5v
    names = [by_upper.get(n.strip().upper(), n.strip()) for n in args.only.split(",") if n.strip()]
    names = names or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    peers = load_peers(args.torch_threads)
    start = time.perf_counter()
    print("# symgrad benchmarks" + (" (--quick)" if args.quick else "") + "\n")
    print(environment(peers))
    print(
        f"Per-call times: median and range over {cfg.repeats} repeats; each repeat loops for >= "
        f"{cfg.min_time * 1e3:.0f} ms. Setup (decoration / compile) times: up to {cfg.setup_repeats} fresh "
        f"objects each. Peers: {', '.join(PEERS)}. 'ratio to best peer' divides by the fastest peer row.\n",
        flush=True,
    )
    for name in names:
        t0 = time.perf_counter()
        text = WORKLOADS[name](cfg, peers)
        print(text)
        print(f"_{name} took {time.perf_counter() - t0:.1f} s._\n", flush=True)
    print(f"_Total {time.perf_counter() - start:.1f} s._\n")
    if MISMATCHES or FAILURES:
        print("## Problems\n")
        for line in MISMATCHES + FAILURES:
            print(f"- {line}")
        print()
    return 1 if MISMATCHES else 0


if __name__ == "__main__":
    sys.exit(main())
