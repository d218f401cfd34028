# ruff: noqa: N806, N812, RUF001  (D as in the issue; W for workloads; an en dash marks an empty cell)
"""First calls under pyperf: decoration, compile and first call of a fresh object, each in a fresh process.

    python -m benchmarks.first_call --fast -o first.json     # pyperf's options: --rigorous, -p N; --only W4
    python -m benchmarks.first_call --table first.json       # the Markdown tables README quotes
    python -m benchmarks.first_call --quick --debug-single-value -o quick.json   # tiny sizes: the smoke test

A user's first call happens in a fresh process, with SymPy's and XLA's caches cold, so every
value here is the only value of its own worker process: pyperf runs N processes x 1 value x
1 loop x 0 warmups (fixed: `--fast` and `--rigorous` change N only; pyperf's `--fast` would
otherwise ask each process for 2 values, and a second one is not a first call). The rows are
benchmarks.run's decoration table: W4 D=50 and 200 (`value_and_grad(...).variant({'D': D})` and
a first call on floats), W5 n=500 and 2000 (`grad(f, wrt=every parameter).variant()` and a
first call); symgrad with its persistent cache off, symgrad with the cache holding the kernel
(filled by this process in a temporary directory before the workers start; each worker asserts
it loaded the kernel from there), and jax.jit's trace + compile + first call. Not timed, as
one-time costs of a process that a user pays once however many functions they decorate:
importing NumPy, symgrad (with SymPy) or jax, the few SymPy modules that SymPy imports lazily
during a first differentiation, starting XLA's CPU backend, and building the inputs (and W5's
generated module). The garbage collector stays on, as in a user's process (benchmarks.run turns
it off while timing).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np  # one BLAS thread: benchmarks/__init__.py sets it before NumPy loads

from . import workloads as W
from .steady import fmt_time, ratio, stdev_of

COLD = "symgrad cold"
HIT = "symgrad, persistent cache hit"
JAX = "jax.jit first call"
SYSTEMS = (COLD, HIT, JAX)
SIZES = {"W4": (50, 200), "W5": (500, 2000)}  # benchmarks.run's decoration table
QUICK_SIZES = {"W4": (10, 20), "W5": (10, 20)}
# Imported during a first differentiation (SymPy) or a first jit (jaxlib, about 10 ms), as
# comparing sys.modules before and after one shows: one-time costs of a process, like imports.
SYMPY_LAZY = ("sympy.assumptions.wrapper", "sympy.sets.setexpr", "sympy.tensor.tensor")
JAXLIB_LAZY = ("jaxlib.mlir.dialects.builtin", "jaxlib.mlir.dialects.mhlo", "jaxlib.mlir.extras.meta")
HITS_KEY = "symgrad_cache_hits"  # metadata of a hit row in the JSON: "hits/processes"

# (symgrad's Variant, or None for jax; the first call's result): what the timed region returns
Build = Callable[[], tuple[Any, Any]]


@dataclass(frozen=True)
class Case:
    workload: str  # "W4" or "W5"
    size: int  # D or n
    system: str

    @property
    def row(self) -> str:
        return f"{self.workload} {'D' if self.workload == 'W4' else 'n'}={self.size}"

    @property
    def name(self) -> str:  # the pyperf benchmark name, which --table parses back
        return f"{self.row}: {self.system}"


NAME = re.compile(r"(W\d) [Dn]=(\d+): (.+)")


def cases(quick: bool, only: str) -> list[Case]:
    """Every benchmark, in the same order in the parent and in every worker (pyperf's
    --worker-task picks one by its position)."""
    chosen = {k.strip().upper() for k in only.split(",") if k.strip()}
    sizes = QUICK_SIZES if quick else SIZES
    return [
        Case(workload, size, system)
        for workload, pair in sizes.items()
        if not chosen or workload in chosen
        for size in pair
        for system in SYSTEMS
    ]


# --- the untimed preparation of a worker ---------------------------------------------------------


def use_cache(root: Path | None) -> None:
    """symgrad's persistent cache in root/cache, signed with the key root/cache-key (never the
    user's own cache or key); None turns it off."""
    if root is None:
        os.environ["SYMGRAD_NO_CACHE"] = "1"
        os.environ.pop("SYMGRAD_CACHE_DIR", None)
        return
    os.environ["SYMGRAD_NO_CACHE"] = "0"
    os.environ["SYMGRAD_CACHE_DIR"] = str(root / "cache")
    os.environ["SYMGRAD_KEY_FILE"] = str(root / "cache-key")


def _import_symgrad() -> None:
    import symgrad  # noqa: F401  (and SymPy)

    for name in SYMPY_LAZY:
        importlib.import_module(name)


def _import_jax() -> tuple[Any, Any]:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    jax.devices()  # starts the CPU backend: once per process, not per function
    for name in JAXLIB_LAZY:
        with contextlib.suppress(ImportError):  # jaxlib's internal names may change
            importlib.import_module(name)
    return jax, jnp


def _w4(case: Case) -> tuple[Build, Any]:
    D = case.size
    want = W.rnn_value_and_grad_hand(*W.W4_ARGS, D)
    argnums = tuple(range(12))
    if case.system == JAX:
        jax, jnp = _import_jax()

        def jax_build() -> tuple[Any, Any]:
            f = W.make_rnn(jnp, "jax", D)
            return None, jax.block_until_ready(jax.jit(jax.value_and_grad(f, argnums=argnums))(*W.W4_ARGS))

        return jax_build, want
    _import_symgrad()
    from symgrad import value_and_grad

    def build() -> tuple[Any, Any]:
        compiled = value_and_grad(W.rnn, wrt=W.W4_PARAMS, static="D")
        variant = compiled.variant({"D": D})
        return variant, compiled(*W.W4_ARGS, D)  # kernels compile on first use

    return build, want


def _w5(case: Case) -> tuple[Build, Any]:
    n = case.size
    module = W.chain_module(n)  # the user's module is imported before they decorate its function
    xs = tuple(float(v) for v in np.linspace(-1, 1, n))
    argnums = tuple(range(n))
    want = W.chain_grad_hand(*xs)
    if case.system == JAX:
        jax, jnp = _import_jax()

        def jax_build() -> tuple[Any, Any]:
            g = jax.jit(jax.grad(module.make(jnp), argnums=argnums))
            return None, jax.block_until_ready(g(*xs))

        return jax_build, want
    _import_symgrad()
    from symgrad import grad

    def build() -> tuple[Any, Any]:
        compiled = grad(module.chain, wrt=argnums)
        variant = compiled.variant()
        return variant, compiled(*xs)

    return build, want


def prepare(case: Case) -> tuple[Build, Any]:
    """The timed build and the hand-written result it must reproduce; imports and data first."""
    return _w4(case) if case.workload == "W4" else _w5(case)


def _marker_folder(root: Path, case: Case) -> Path:
    return root / "hits" / re.sub(r"\W+", "-", case.name)


def verify(case: Case, variant: Any, result: Any, want: Any, root: Path) -> None:
    """After the timing: the result is the hand-written one, the cold row compiled and the hit
    row loaded its kernel from the cache (a marker per process lets the parent count them)."""
    if not np.allclose(W.flat(result), W.flat(want), rtol=1e-8, atol=1e-12):
        raise AssertionError(f"{case.name}: the first call's result differs from the hand-written one")
    if case.system == JAX:
        return
    if variant.from_cache is not (case.system == HIT):
        raise AssertionError(f"{case.name}: Variant.from_cache is {variant.from_cache}")
    if case.system == HIT:
        folder = _marker_folder(root, case)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / str(os.getpid())).touch()


def measure(case: Case, root: Path) -> Callable[[int], float]:
    """pyperf's time function for one case: prepare, time one fresh build, verify."""

    def time_func(loops: int) -> float:
        if loops != 1:  # a second loop in this process would not be a first call
            raise SystemExit(f"{case.name}: run with --loops 1 (got {loops})")
        use_cache(root if case.system == HIT else None)
        build, want = prepare(case)
        if case.system == COLD:
            from symgrad import cache

            assert cache.directory() is None, "the cold row must run without a cache"
        gc.collect()  # every process starts the build from the same heap
        start = time.perf_counter()
        variant, result = build()
        elapsed = time.perf_counter() - start
        verify(case, variant, result, want, root)
        return elapsed

    return time_func


# --- the parent: fill the cache, run the workers, count the hits ----------------------------------


def _entries(root: Path) -> int:
    return len(list((root / "cache").glob("*.json")))


def fill(case: Case, root: Path) -> None:
    """Write the kernel of a hit row into the cache, in this (parent) process."""
    use_cache(root)
    before = _entries(root)
    build, want = prepare(case)
    variant, result = build()
    if variant.from_cache or _entries(root) <= before:
        raise SystemExit(f"{case.name}: the cache in {root / 'cache'} was not written")
    if not np.allclose(W.flat(result), W.flat(want), rtol=1e-8, atol=1e-12):
        raise SystemExit(f"{case.name}: the result differs from the hand-written one")
    use_cache(None)


def count_hits(case: Case, root: Path) -> int:
    folder = _marker_folder(root, case)
    return len(list(folder.iterdir())) if folder.is_dir() else 0


def record_hits(path: str, hits: dict[str, str]) -> None:
    """Add each hit row's count of cache hits to its benchmark's metadata in the JSON file."""
    import pyperf

    suite = pyperf.BenchmarkSuite.load(path)
    for bench in suite.get_benchmarks():
        if bench.get_name() in hits:
            bench.update_metadata({HITS_KEY: hits[bench.get_name()]})
    suite.dump(path, replace=True)


def run() -> None:
    """The pyperf Runner: in the parent, fills the cache before each hit row and counts its hits."""
    import pyperf

    def forward(cmd: list[str], args: Any) -> None:  # the workers measure the same selection
        cmd.extend(("--cache-root", args.cache_root))
        cmd.extend(("--only", args.only) if args.only else ())
        cmd.extend(("--quick",) if args.quick else ())

    runner = pyperf.Runner(
        values=1, warmups=0, loops=1, program_args=("-m", "benchmarks.first_call"), add_cmdline_args=forward
    )
    parser = runner.argparser
    parser.add_argument("--only", default="", help="comma-separated workload keys: W4, W5")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    parser.add_argument("--cache-root", default="", help="set by the parent for its workers")
    runner.metadata["description"] = __doc__.splitlines()[0]
    args = runner.parse_args()
    args.values, args.warmups, args.loops = 1, 0, 1  # after pyperf's --fast, which asks for 2 values
    selected = cases(args.quick, args.only)
    if args.worker:
        for case in selected:
            runner.bench_time_func(case.name, measure(case, Path(args.cache_root)))
        return
    hits: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="symgrad-first-call-") as tmp:
        root = Path(tmp)
        args.cache_root = tmp
        for case in selected:
            if case.system == HIT:
                fill(case, root)
            runner.bench_time_func(case.name, measure(case, root))
            if case.system == HIT:
                found = count_hits(case, root)
                hits[case.name] = f"{found}/{args.processes}"
                if found != args.processes:
                    raise SystemExit(f"{case.name}: cache hit in {hits[case.name]} worker processes")
    if args.output:
        record_hits(args.output, hits)


# --- the tables ---------------------------------------------------------------------------------


def _cell(bench: Any) -> str:
    return "–" if bench is None else f"{fmt_time(bench.mean())} ± {fmt_time(stdev_of(bench))}"


def _ratio_row(label: str, num: Any, den: Any, target: str) -> str | None:
    if num is None or den is None:
        return None
    r, spread = ratio(num, den)
    return f"| {label} | {r:.2f} ± {spread:.2f} | {target} |"


def _processes(benches: Sequence[Any]) -> str:
    counts = {len([run for run in b.get_runs() if run.values]) for b in benches}
    return "/".join(str(c) for c in sorted(counts))


def table(path: str) -> str:
    """README's tables from a pyperf JSON file: each row's mean ± std dev over its processes,
    then the ratios README's targets quote, each with its spread (relative deviations added in
    quadrature)."""
    import pyperf

    found: dict[tuple[str, int], dict[str, Any]] = {}
    for bench in pyperf.BenchmarkSuite.load(path).get_benchmarks():
        match = NAME.fullmatch(bench.get_name())
        if match:
            found.setdefault((match[1], int(match[2])), {})[match[3]] = bench
    lines = [
        "| decoration + first call, each in a fresh process | symgrad cold | symgrad, persistent cache hit"
        " | jax.jit first call | processes |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for (workload, size), row in found.items():
        label = Case(workload, size, COLD).row
        cells = " | ".join(_cell(row.get(system)) for system in SYSTEMS)
        lines.append(f"| {label} | {cells} | {_processes(list(row.values()))} |")
    hits = [
        f"{Case(w, s, HIT).row} {row[HIT].get_metadata().get(HITS_KEY, '?')}"
        for (w, s), row in found.items()
        if HIT in row
    ]
    lines += ["", f"Processes whose kernel came from the persistent cache: {', '.join(hits)}.", ""]
    return "\n".join(lines + _ratios(found))


def _ratios(found: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """README's targets: decoration growth with size, the cache's speedup, jax's first call."""
    lines = ["| ratio | mean ± spread | README's target |", "| --- | ---: | --- |"]
    rows: list[str | None] = []
    for workload in dict.fromkeys(w for w, _ in found):
        sizes = sorted(s for w, s in found if w == workload)
        small, large = found[(workload, sizes[0])], found[(workload, sizes[-1])]
        letter = "D" if workload == "W4" else "n"
        label = f"{workload} symgrad cold, {letter}={sizes[-1]} ÷ {letter}={sizes[0]}"
        rows.append(_ratio_row(label, large.get(COLD), small.get(COLD), "≤ 4.5"))
        for size in sizes:
            row = found[(workload, size)]
            target = "≥ 20" if workload == "W4" and size == sizes[-1] else ""
            where = Case(workload, size, COLD).row
            rows.append(_ratio_row(f"{where} cold ÷ cache hit", row.get(COLD), row.get(HIT), target))
            rows.append(
                _ratio_row(f"{where} jax.jit first call ÷ symgrad cold", row.get(JAX), row.get(COLD), "> 1")
            )
    return lines + [row for row in rows if row is not None]


def main() -> None:
    """Under pyperf's Runner (its command line), or `--table FILE` for the Markdown tables."""
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        print(table(sys.argv[2]))
        return
    run()


if __name__ == "__main__":
    main()
