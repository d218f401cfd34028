# ruff: noqa: N803, N806, N812, B023, RUF001  (W and D as in benchmarks/run.py; en dashes in tables;
# every timing lambda is called within its loop iteration)
"""symgrad's backends side by side: `python -m benchmarks.backends [--quick] [--only W3,W5,dask]`.

Rows per workload for `backend="numpy"` and `backend="numba"` (and `"jax"` on W3 and the array
programs W5v, W6, W7, where it is refused), against
`jax.jit` in the same process; kernel compile time in a first and a second process (the
persistent cache: numba's `cache=True` files live in `SYMGRAD_CACHE_DIR`); and a Dask row:
W3 at 1e8 elements on a `distributed.LocalCluster` of 2 workers, against NumPy at 1e7.
Medians of 7 repeats (3 with `--quick`), each a loop lasting >= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import workloads as W

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def per_call(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds per call over `repeats` loops of >= 20 ms each."""
    fn()
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= 0.02:
            break
        number *= 2
    times = [elapsed / number]
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def table(title: str, rows: Sequence[tuple[str, float | None, str]], reference: str) -> str:
    """Markdown table with a ratio column against the row named `reference`."""
    base = next((t for name, t, _ in rows if name == reference and t), None)
    lines = [
        f"### {title}\n",
        f"| system | time | ratio to {reference} | note |",
        "| --- | --- | --- | --- |",
    ]
    for name, t, note in rows:
        ratio = f"{t / base:.2f}x" if t and base else ""
        lines.append(f"| {name} | {fmt(t) if t else '–'} | {ratio} | {note} |")
    return "\n".join(lines) + "\n"


def _jax() -> Any:
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        return jax
    except ImportError:
        return None


def _check(got: Any, want: Any, rtol: float = 1e-9) -> None:
    if isinstance(want, tuple) and any(np.ndim(w) for w in want):  # W7: one array per parameter
        for g, w in zip(got, want, strict=True):
            _check(g, w, rtol)
        return
    got_flat = np.concatenate([np.ravel(np.asarray(g, dtype=float)) for g in np.atleast_1d(got)])
    want_flat = np.concatenate([np.ravel(np.asarray(w, dtype=float)) for w in np.atleast_1d(want)])
    # Where an element is a cancellation of much larger terms (W3 near its zeros), one bit of
    # difference between NumPy's SIMD sin/exp and libm's (numba) is a larger relative error:
    # an absolute tolerance of 1e-15 of the array's scale covers exactly that.
    scale = float(np.max(np.abs(want_flat))) if want_flat.size else 0.0
    np.testing.assert_allclose(got_flat, want_flat, rtol=rtol, atol=1e-15 * scale)


# --- first and second process: what a kernel compile costs, and what the cache saves ----------------


FIRST_CALL = """
import json, sys, time
start = time.perf_counter()
import numpy as np, symgrad
from benchmarks import workloads as W
imported = time.perf_counter()
{setup}
first = time.perf_counter()
print(json.dumps({{"import": imported - start, "first_call": first - imported}}))
"""


def process_times(setup: str, cache_dir: str) -> list[dict[str, float]]:
    """First-call seconds of `setup` in two fresh processes sharing one cache directory."""
    script = FIRST_CALL.format(setup=textwrap.dedent(setup).strip())
    env = {**os.environ, "SYMGRAD_CACHE_DIR": cache_dir, "PYTHONPATH": ROOT}
    env.pop("SYMGRAD_NO_CACHE", None)
    out = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def compile_rows(label: str, setups: dict[str, str]) -> str:
    rows = []
    for backend, setup in setups.items():
        with tempfile.TemporaryDirectory(prefix="symgrad-bench-") as folder:
            first, second = process_times(setup, folder)
        rows.append(f"| {label} | {backend} | {first['first_call']:.2f} s | {second['first_call']:.2f} s |")
    head = "| workload | backend | first process | second process (cache hit) |\n| --- | --- | --- | --- |"
    return head + "\n" + "\n".join(rows) + "\n"


# --- workloads ---------------------------------------------------------------------------------------


def w1_w3(repeats: int, n: int) -> str:
    """Every numpy/numba row first, then the jax rows: XLA's threads keep spinning for a while
    after a jax call, and a numba parallel loop timed right after one waited for a core
    (W1's loop read 10 ms instead of 0.26 ms on 2 cores)."""
    from symgrad import grad
    from symgrad.backends import NumbaKernel

    jax = _jax()
    x3 = np.linspace(-5.0, 5.0, n)
    x1 = np.linspace(-8.0, 8.0, n)
    cases = (("W3", W.smooth, x3, W.smooth_grad_hand), ("W1", relu, x1, lambda x: (x > 0).astype(float)))
    tables: dict[str, list[tuple[str, float | None, str]]] = {}
    for name, fn, x, hand in cases:
        rows = tables[name] = []
        want = hand(x)
        reference = grad(fn)(x)
        for backend in ("numpy", "numba"):
            g = grad(fn, backend=backend)
            _check(g(x), want)
            _check(g(x), reference, rtol=1e-12)  # every backend: the NumPy backend's numbers
            fused = isinstance(g.variant().kernel, NumbaKernel)
            note = "" if backend == "numpy" else "fused parallel loop" if fused else "runs the NumPy program"
            rows.append((f"symgrad backend={backend!r}", per_call(lambda g=g: g(x), repeats), note))
        rows.append(("hand-written NumPy", per_call(lambda: hand(x), repeats), ""))
    for name, fn, x, hand in cases if jax is not None else ():
        rows, want = tables[name], hand(x)
        jnp = jax.numpy
        xj = jnp.asarray(x)
        scalar = W.make_smooth(jnp, "jax") if name == "W3" else (lambda v: jnp.maximum(v, 0.0))
        if name == "W3":
            gj = grad(fn, backend="jax")
            _check(gj(xj), want)
            timed = per_call(lambda: jax.block_until_ready(gj(xj)), repeats)
            rows.append(("symgrad backend='jax'", timed, "jax.jit of the NumPy program"))
        vm = jax.jit(jax.vmap(jax.grad(scalar)))
        _check(vm(xj), want)
        rows.append(
            ("jax.jit(jax.vmap(jax.grad(f)))", per_call(lambda: jax.block_until_ready(vm(xj)), repeats), "")
        )
        summed = jax.jit(jax.grad(lambda v: jnp.sum(scalar(v))))
        rows.append(
            ("jax.jit(jax.grad(sum f))", per_call(lambda: jax.block_until_ready(summed(xj)), repeats), "")
        )
    title = "{}: gradient on {:.0e} float64 elements"
    return "\n".join(
        table(title.format(k, n), v, "jax.jit(jax.vmap(jax.grad(f)))") for k, v in tables.items()
    )


def relu(x):
    return np.sum(np.maximum(x, 0.0))


def w2_w4(repeats: int, depths: Sequence[int]) -> str:
    from symgrad import grad, value_and_grad

    jax = _jax()
    out = []
    rows: list[tuple[str, float | None, str]] = []
    for backend in ("numpy", "numba"):
        g = grad(W.rosen, wrt=("x", "y"), backend=backend)
        _check(g(0.5, 0.8), W.rosen_grad_hand(0.5, 0.8))
        rows.append(
            (
                f"symgrad backend={backend!r}",
                per_call(lambda g=g: g(0.5, 0.8), repeats),
                "short program: inlined Python on floats",
            )
        )
    if jax is not None:
        gj = jax.jit(jax.grad(W.make_rosen(jax.numpy, "jax"), argnums=(0, 1)))
        rows.append(
            ("jax.jit(jax.grad(f))", per_call(lambda: jax.block_until_ready(gj(0.5, 0.8)), repeats), "")
        )
    out.append(table("W2: Rosenbrock gradient on Python floats", rows, "symgrad backend='numpy'"))
    args = W.W4_ARGS
    for D in depths:
        rows = []
        want = W.rnn_value_and_grad_hand(*args, D)
        for backend in ("numpy", "numba"):
            f = value_and_grad(W.rnn, wrt=W.W4_PARAMS, static="D", backend=backend)
            value, grads = f(*args, D)
            _check((value, *grads), (want[0], *want[1]))
            heavy = bool(getattr(f.variant({"D": D}).kernel, "njit_floats", False))
            note = (
                "njit scalar kernel" if heavy else "inlined Python (program shorter than the njit threshold)"
            )
            rows.append(
                (
                    f"symgrad backend={backend!r}",
                    per_call(lambda f=f: f(*args, D), repeats),
                    note if backend == "numba" else "",
                )
            )
        if jax is not None:
            fj = jax.jit(jax.value_and_grad(W.make_rnn(jax.numpy, "jax", D), argnums=tuple(range(12))))
            rows.append(
                (
                    "jax.jit(value_and_grad)",
                    per_call(lambda fj=fj: jax.block_until_ready(fj(*args)), repeats),
                    "",
                )
            )
        out.append(table(f"W4 D={D}: value and gradient on Python floats", rows, "symgrad backend='numpy'"))
    return "\n".join(out)


def w5(repeats: int, n: int) -> str:
    from symgrad import grad

    jax = _jax()
    module = W.chain_module(n)
    xs = tuple(float(v) for v in np.linspace(-1, 1, n))
    want = W.chain_grad_hand(*xs)
    rows: list[tuple[str, float | None, str]] = []
    for backend in ("numpy", "numba"):
        g = grad(module.chain, wrt=tuple(range(n)), backend=backend)
        _check(g(*xs), want)
        heavy = bool(getattr(g.variant().kernel, "njit_floats", False))
        note = "njit scalar kernel" if heavy else "inlined Python"
        if backend == "numba" and not heavy:
            note += f" ({n} parameters: more than numba's per-argument unboxing pays for)"
        rows.append((f"symgrad backend={backend!r}", per_call(lambda g=g: g(*xs), repeats), note))
    if jax is not None:
        x = jax.numpy.asarray(np.array(xs))
        gv = jax.jit(jax.grad(W.make_chain_vec(jax.numpy, "jax")))
        _check(gv(x), want)
        rows.append(
            (
                "jax.jit(jax.grad(vectorised f)) on one array",
                per_call(lambda: jax.block_until_ready(gv(x)), repeats),
                "the target",
            )
        )
        ga = jax.jit(jax.grad(module.make(jax.numpy), argnums=tuple(range(n))))
        rows.append(
            (
                f"jax.jit(jax.grad(f, argnums=0..{n - 1})) on floats",
                per_call(lambda: jax.block_until_ready(ga(*xs)), repeats),
                "",
            )
        )
    return table(f"W5 n={n}: gradient on Python floats", rows, "jax.jit(jax.grad(vectorised f)) on one array")


def array_programs(repeats: int, rows: int) -> str:
    """W5v, W6 and W7: array programs (reductions, `@`, slices), which every backend but
    NumPy's hands back to the NumPy program (numba) or refuses (jax, cupy), against jax.jit."""
    from symgrad import BackendError, grad

    jax = _jax()
    cases = [
        ("W5v", W.chain_vec, ("x",), (np.linspace(-1.0, 1.0, rows),), W.make_chain_vec),
        ("W6", W.logreg, ("w",), W.logreg_data(rows), W.make_logreg),
        ("W7", W.mlp, W.W7_PARAMS, W.mlp_data(rows), W.make_mlp),
    ]
    parts = []
    for label, fn, wrt, args, make in cases:
        rows_: list[tuple[str, float | None, str]] = []
        want = grad(fn, wrt=wrt)(*args)
        for backend in ("numpy", "numba", "jax"):
            try:
                g = grad(fn, wrt=wrt, backend=backend)
                got = g(*args)
            except BackendError as exc:
                rows_.append((f"symgrad backend={backend!r}", None, f"refused: {str(exc).split(';')[0]}"))
                continue
            _check(got, want)
            note = "the NumPy program (array-level operations)" if backend == "numba" else ""
            rows_.append((f"symgrad backend={backend!r}", per_call(lambda g=g: g(*args), repeats), note))
        if jax is not None:
            jargs = [jax.numpy.asarray(a) for a in args]
            argnums = tuple(range(len(wrt)))
            gj = jax.jit(jax.grad(make(jax.numpy, "jax"), argnums=argnums))  # a tuple, like symgrad's
            _check(jax.tree_util.tree_map(np.asarray, gj(*jargs)), want)
            rows_.append(
                ("jax.jit(jax.grad(f))", per_call(lambda: jax.block_until_ready(gj(*jargs)), repeats), "")
            )
        parts.append(table(f"{label}: gradient, {rows:.0e} rows", rows_, "jax.jit(jax.grad(f))"))
    return "\n".join(parts)


def compile_times(n5: int, D: int) -> str:
    w3 = "symgrad.grad(W.smooth, backend={b!r})(np.linspace(-5.0, 5.0, 1000))"
    w4 = (
        "args = (0.3, *(0.5 + 0.05 * i for i in range(10)), 0.1)\n"
        f"symgrad.value_and_grad(W.rnn, wrt=W.W4_PARAMS, static='D', backend={{b!r}})(*args, {D})"
    )
    w5 = (
        f"m = W.chain_module({n5})\n"
        f"symgrad.grad(m.chain, wrt=tuple(range({n5})), backend={{b!r}})(*np.linspace(-1, 1, {n5}).tolist())"
    )
    parts = []
    for label, code in (("W3 (1e3 elements)", w3), (f"W4 D={D}", w4), (f"W5 n={n5}", w5)):
        parts.append(compile_rows(label, {b: code.format(b=b) for b in ("numpy", "numba")}))
    head = (
        "### First call in a fresh process: trace + emit + compile (first), persistent cache hit (second)\n\n"
        "Both processes share one new `SYMGRAD_CACHE_DIR`; import time excluded.\n\n"
    )
    return head + "\n".join(parts)


def dask_row(n_big: int, n_small: int, chunk: int) -> str:
    """W3 at `n_big` on a LocalCluster of 2 worker processes, gradient summed lazily (NumPy
    backend: the NumPy program per chunk; numba backend: the fused loop per chunk), against
    the NumPy backend on `n_small` in this process."""
    import dask.array as da
    from distributed import Client, LocalCluster
    from distributed.diagnostics import MemorySampler

    from symgrad import grad

    g = grad(W.smooth)
    x = np.linspace(-5.0, 5.0, n_small)
    numpy_s = per_call(lambda: float(np.sum(g(x))), 3)
    expected = n_big / n_small * float(np.sum(g(x)))  # same grid shape: sums scale with n
    rows = [
        "| system | elements | time | throughput | peak cluster memory | sum of the gradient |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| NumPy backend, one process | {n_small:.0e} | {fmt(numpy_s)} | {n_small / numpy_s / 1e6:.0f} M elements/s | – | {expected:.6e} (scaled to {n_big:.0e}) |",
    ]
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        for backend in ("numpy", "numba"):
            sampler = MemorySampler()
            xd = da.linspace(-5.0, 5.0, n_big, chunks=chunk)
            total = grad(W.smooth, backend=backend)(xd).sum()  # lazy: nothing computed yet
            client.compute(da.linspace(-5.0, 5.0, 4 * chunk, chunks=chunk)).result()  # workers warm
            with sampler.sample(backend, interval=0.05):
                start = time.perf_counter()
                result = float(client.compute(total).result())
                elapsed = time.perf_counter() - start
            samples = [m for _, m in sampler.samples[backend]]
            peak, before = float(max(samples)), float(samples[0])
            rows.append(
                f"| {backend} backend on Dask, LocalCluster(2 workers x 1 thread), chunks of {chunk:.0e} "
                f"| {n_big:.0e} | {fmt(elapsed)} | {n_big / elapsed / 1e6:.0f} M elements/s "
                f"| {peak / 2**20:.0f} MiB ({before / 2**20:.0f} MiB before; a chunk: {chunk * 8 / 2**20:.0f} MiB; "
                f"the array: {n_big * 8 / 2**20:.0f} MiB) | {result:.6e} |"
            )
    return "### Dask: W3 gradient summed lazily\n\n" + "\n".join(rows) + "\n"


def environment() -> str:
    import numba

    jax = _jax()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as stream:
            cpu = next(line.split(":", 1)[1].strip() for line in stream if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    jax_version = jax.__version__ if jax is not None else "not installed"
    return (
        f"Machine: {cpu}, {os.cpu_count()} cores (shared with other jobs: timings are noisy). "
        f"Python {platform.python_version()}, NumPy {np.__version__}, numba {numba.__version__} "
        f"({numba.get_num_threads()} threads), jax {jax_version} (XLA CPU, default threads).\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repeats")
    parser.add_argument(
        "--only",
        default="W1,W2,W3,W4,W5,arrays,compile,dask",
        help="comma-separated parts (arrays: W5v, W6, W7)",
    )
    args = parser.parse_args(argv)
    only = {p.strip().lower() for p in args.only.split(",")}
    repeats = 3 if args.quick else 7
    os.environ.setdefault("SYMGRAD_CACHE_DIR", tempfile.mkdtemp(prefix="symgrad-bench-"))
    print("## Backends\n")
    print(environment())
    if only & {"w1", "w3"}:
        print(w1_w3(repeats, 10_000 if args.quick else 1_000_000))
    if only & {"w2", "w4"}:
        print(w2_w4(repeats, (10,) if args.quick else (50, 200)))
    if "w5" in only:
        print(w5(repeats, 100 if args.quick else 1000))
    if "arrays" in only:
        print(array_programs(repeats, 1000 if args.quick else 100_000))
    if "compile" in only:
        print(compile_times(100 if args.quick else 1000, 10 if args.quick else 200))
    if "dask" in only:
        big, small, chunk = (10**6, 10**5, 10**5) if args.quick else (10**8, 10**7, 10**6)
        print(dask_row(big, small, chunk))
    return 0


if __name__ == "__main__":
    sys.exit(main())
