# ruff: noqa: N812, RUF001  (W for workloads, as benchmarks.run; the tables print the multiplication sign)
"""The steady-state targets under pyperf: calibrated loops in fresh worker processes, mean ± std dev.

    python -m benchmarks.steady --fast -o steady.json      # pyperf's options: --rigorous, -p N...
    python -m benchmarks.steady --table steady.json        # the Markdown table README quotes

`benchmarks.run` times every system in one process (its peak-memory rows stay there; first
calls and decoration run under pyperf in `benchmarks.first_call`); its per-call medians swung
0.94-1.61x between runs. This script
times the per-call rows that README's targets quote (symgrad against the hand-written gradient
and jax.jit) with pyperf: each benchmark runs in several fresh processes, each calibrating its
loop count, with warmups discarded; the table gives pyperf's mean ± standard deviation over all
values of all processes, and each ratio's spread from the two means' relative deviations.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np  # one BLAS thread: benchmarks/__init__.py sets it before NumPy loads

from . import workloads as W

Maker = Callable[[], Callable[[], Any]]  # builds a benchmark's call (data, compiled gradient)


class Lazy:
    """A benchmark's callable, built on its first call: pyperf runs every worker through the
    whole script, and only the benchmark a worker measures should pay for its setup (a jit)."""

    def __init__(self, make: Maker) -> None:
        self.make = make
        self.fn: Callable[[], Any] | None = None

    def __call__(self) -> Any:
        if self.fn is None:
            self.fn = self.make()
            self.fn()  # the first call compiles (symgrad traces, jax jits): not measured
        return self.fn()


def _jax() -> Any:
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _symgrad_call(fn: Any, args: tuple[Any, ...], wrt: Any = 0) -> Callable[[], Any]:
    import symgrad

    g = symgrad.grad(fn, wrt=wrt)
    return lambda: g(*args)


def _jax_call(make: Callable[[Any, str], Any], args: tuple[Any, ...], argnums: Any = 0) -> Callable[[], Any]:
    jax = _jax()
    f = make(jax.numpy, "jax")
    # the gradient of the sum, as symgrad's of an array output (W1's relu)
    g = jax.jit(jax.grad(lambda *a: jax.numpy.sum(f(*a)), argnums=argnums))
    jargs = tuple(jax.numpy.asarray(a) if isinstance(a, np.ndarray) else a for a in args)

    def call() -> Any:
        return jax.block_until_ready(g(*jargs))

    return call


def _relu_args(n: int) -> tuple[Any, ...]:
    return (np.linspace(-8.0, 8.0, n),)


def _logreg_args() -> tuple[Any, ...]:
    return W.logreg_data(100_000)  # benchmarks.run's W6 data


def _chain_args() -> tuple[Any, ...]:
    return (np.linspace(-1.0, 1.0, 100_000),)  # benchmarks.run's W5v at n = 1e5


def _gp_args() -> tuple[Any, ...]:
    return W.gp_data(500)


def _hand(fn: Callable[..., Any], make_args: Callable[[], tuple[Any, ...]]) -> Maker:
    def make() -> Callable[[], Any]:
        args = make_args()
        return lambda: fn(*args)

    return make


def _symgrad(fn: Callable[..., Any], make_args: Callable[[], tuple[Any, ...]], wrt: Any = 0) -> Maker:
    return lambda: _symgrad_call(fn, make_args(), wrt)


def _jax_of(
    make: Callable[[Any, str], Any], make_args: Callable[[], tuple[Any, ...]], argnums: Any = 0
) -> Maker:
    return lambda: _jax_call(make, make_args(), argnums)


def _floats() -> tuple[Any, ...]:
    return (0.5, 1.5)


def _workload(
    key: str, title: str, symgrad: Maker, hand: Maker, jax: Maker | None
) -> list[tuple[str, str, str, Maker]]:
    rows = [(f"{key}: symgrad", title, "symgrad", symgrad), (f"{key}: hand", title, "hand-written", hand)]
    return rows + ([(f"{key}: jax", title, "jax.jit(grad)", jax)] if jax is not None else [])


def _relu160() -> tuple[Any, ...]:
    return _relu_args(160)


def _relu1e6() -> tuple[Any, ...]:
    return _relu_args(1_000_000)


# (benchmark name, workload, system, maker): the systems of one workload are compared.
BENCHMARKS: list[tuple[str, str, str, Maker]] = [
    *_workload(
        "W1",
        "W1 relu, 160 elements",
        _symgrad(W.relu, _relu160),
        _hand(W.relu_grad_hand, _relu160),
        _jax_of(W.make_relu, _relu160),
    ),
    *_workload(
        "W1b", "W1 relu, 1e6 elements", _symgrad(W.relu, _relu1e6), _hand(W.relu_grad_hand, _relu1e6), None
    ),
    *_workload(
        "W2",
        "W2 Rosenbrock, floats",
        _symgrad(W.rosen, _floats, (0, 1)),
        _hand(W.rosen_grad_hand, _floats),
        _jax_of(W.make_rosen, _floats, (0, 1)),
    ),
    *_workload(
        "W6",
        "W6 logistic regression, 100,000 x 10",
        _symgrad(W.logreg, _logreg_args),
        _hand(W.logreg_grad_hand, _logreg_args),
        _jax_of(W.make_logreg, _logreg_args),
    ),
    *_workload(
        "W5v",
        "W5v chain, 1e5 elements",
        _symgrad(W.chain_vec, _chain_args),
        _hand(W.chain_vec_grad_hand, _chain_args),
        _jax_of(W.make_chain_vec, _chain_args),
    ),
    *_workload(
        "W8",
        "W8 GP likelihood, 500 points",
        _symgrad(W.gp_nll, _gp_args, (0, 1, 2)),
        _hand(W.gp_nll_grad_hand, _gp_args),
        _jax_of(W.make_gp_nll, _gp_args, (0, 1, 2)),
    ),
]


def table(path: str) -> str:
    """README's table from a pyperf JSON file: per workload, each system's mean ± std dev and
    its ratio to symgrad's, with the ratio's spread (relative deviations added in quadrature)."""
    import pyperf

    suite = pyperf.BenchmarkSuite.load(path)
    found = {b.get_name(): b for b in suite.get_benchmarks()}
    lines = [
        "| workload | system | mean ± std dev | time ÷ symgrad's | processes × values |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for workload in dict.fromkeys(w for _, w, _, _ in BENCHMARKS):
        rows = [(name, system) for name, w, system, _ in BENCHMARKS if w == workload and name in found]
        if not rows:
            continue
        base = (
            found[next(n for n, s in rows if s == "symgrad")]
            if any(s == "symgrad" for _, s in rows)
            else None
        )
        for name, system in rows:
            bench = found[name]
            mean, dev = bench.mean(), stdev_of(bench)
            relative = ""
            if base is not None and bench is not base:
                r, spread = ratio(bench, base)
                relative = f"{r:.2f} ± {spread:.2f}"
            runs = bench.get_runs()
            workers = [run for run in runs if run.values]
            shape = f"{len(workers)} × {len(workers[0].values) if workers else 0}"
            lines.append(
                f"| {workload} | {system} | {fmt_time(mean)} ± {fmt_time(dev)} | {relative} | {shape} |"
            )
    return "\n".join(lines)


def stdev_of(bench: Any) -> float:
    """pyperf's standard deviation of all values, 0 for a single value (no spread known)."""
    return float(bench.stdev()) if bench.get_nvalue() > 1 else 0.0


def ratio(num: Any, den: Any) -> tuple[float, float]:
    """The ratio of two benchmarks' means and its spread: the two relative standard deviations
    added in quadrature (independent measurements, first-order error propagation)."""
    r = num.mean() / den.mean()
    return r, r * math.hypot(stdev_of(num) / num.mean(), stdev_of(den) / den.mean())


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def main() -> None:
    """Under pyperf's Runner (its command line), or `--table FILE` for the Markdown table."""
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        print(table(sys.argv[2]))
        return
    import pyperf

    # set here, not at import: a test importing this module must not turn off the cache of
    # the rest of its process (tests/test_concurrency.py found that)
    os.environ.setdefault("SYMGRAD_NO_CACHE", "1")

    def forward(cmd: list[str], args: Any) -> None:  # the workers measure the same selection
        if args.only:
            cmd.extend(("--only", args.only))

    runner = pyperf.Runner(program_args=("-m", "benchmarks.steady"), add_cmdline_args=forward)
    runner.argparser.add_argument("--only", default="", help="comma-separated workload keys, e.g. W1,W8")
    runner.metadata["description"] = __doc__.splitlines()[0]
    chosen = {k.strip().upper() for k in runner.parse_args().only.split(",") if k.strip()}
    for name, _, _, make in BENCHMARKS:
        if not chosen or name.split(":")[0].upper() in chosen:
            runner.bench_func(name, Lazy(make))


if __name__ == "__main__":
    main()
