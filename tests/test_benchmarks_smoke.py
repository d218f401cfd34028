# ruff: noqa: N812, RUF001  (W: the workloads module; the table header has an en dash)
"""Smoke test of the benchmark suite: `python -m benchmarks.run --quick` runs, prints every
workload's table, and every system's gradient (symgrad's above all) equals the hand-written one.
Absent peers (jax, torch, autograd) give "skipped: ..." rows; the test still passes."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import workloads as W  # noqa: E402

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W5v", "W6", "W7", "W8")
ARRAY_WORKLOADS = ("W5v", "W6", "W7", "W8")  # array programs: a call table and a setup table each


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYMGRAD_NO_CACHE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def test_quick_run_prints_every_table(quick_run: subprocess.CompletedProcess[str]) -> None:
    out = quick_run.stdout
    assert quick_run.returncode == 0, quick_run.stdout[-3000:] + quick_run.stderr[-3000:]
    for name in WORKLOADS:
        assert f"## {name}:" in out, f"{name} missing from the output"
    assert "| system | median | min–max | ratio to best peer | ratio to hand-written |" in out
    assert "peak memory" in out and "operation count" in out


def test_quick_run_gradients_match_hand_written(quick_run: subprocess.CompletedProcess[str]) -> None:
    out = quick_run.stdout + quick_run.stderr
    assert "MISMATCH" not in out, out[-3000:]
    checks = [line for line in quick_run.stdout.splitlines() if line.startswith("Gradient check")]
    assert checks, "no gradient checks were reported"
    assert all("symgrad: ok" in line for line in checks), checks
    for line in quick_run.stdout.splitlines():  # symgrad itself never fails or is skipped
        if line.startswith("| symgrad |"):
            assert "failed" not in line and "skipped" not in line, line


def _section(out: str, name: str) -> str:
    """The text of `## name: ...` up to the next workload heading."""
    start = out.index(f"## {name}:")
    end = out.find("\n## ", start + 1)
    return out[start:] if end < 0 else out[start:end]


@pytest.mark.parametrize("name", ARRAY_WORKLOADS)
def test_quick_run_array_workloads(quick_run: subprocess.CompletedProcess[str], name: str) -> None:
    section = _section(quick_run.stdout, name)
    assert f"### {name} gradient call," in section, section
    assert "decoration / compile time" in section, section
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    for system in ("symgrad", "hand-written", "jax.jit(grad)", "torch autograd", "autograd (HIPS)"):
        assert any(line.startswith(f"| {system} |") for line in rows), (system, section)
    assert any(line.startswith("| symgrad (grad(f, wrt=") for line in rows), section  # setup row
    checks = [line for line in section.splitlines() if line.startswith("Gradient check")]
    assert checks and all("symgrad: ok" in line for line in checks), section


# --- the workloads' hand-written gradients against symgrad, directly -------------------------------


def test_relu_and_smooth_arrays() -> None:
    from symgrad import grad

    x = np.arange(-8, 8, 0.1)
    assert np.array_equal(grad(W.relu)(x), W.relu_grad_hand(x))
    x = np.linspace(-5, 5, 101)
    np.testing.assert_allclose(grad(W.smooth)(x), W.smooth_grad_hand(x), rtol=1e-10, atol=1e-14)
    h = 1e-6  # the hand-written baseline is itself right
    fd = (W.smooth(x + h) - W.smooth(x - h)) / (2 * h)
    np.testing.assert_allclose(W.smooth_grad_hand(x), fd, rtol=1e-6, atol=1e-8)


def test_rosen_floats() -> None:
    from symgrad import grad

    got = grad(W.rosen, wrt=("x", "y"))(-1.2, 1.0)
    assert got == pytest.approx(W.rosen_grad_hand(-1.2, 1.0), rel=1e-14)


@pytest.mark.parametrize("batched", [False, True])
def test_rnn_value_and_grad(batched: bool) -> None:
    from symgrad import value_and_grad

    args: tuple[Any, ...] = (0.3, *(0.5 + 0.05 * i for i in range(10)), 0.1)
    if batched:
        args = (np.linspace(-1, 1, 7), *args[1:])
    D = 13
    value, grads = value_and_grad(W.rnn, wrt=W.W4_PARAMS, static="D")(*args, D)
    want_value, want_grads = W.rnn_value_and_grad_hand(*args, D)
    np.testing.assert_allclose(value, want_value, rtol=1e-13)
    assert len(grads) == len(want_grads) == 12
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_chain_module_and_ops() -> None:
    from symgrad import grad

    module = W.chain_module(6)
    xs = tuple(float(v) for v in np.linspace(-1, 1, 6))
    got = grad(module.chain, wrt=tuple(range(6)))(*xs)
    assert got == pytest.approx(W.chain_grad_hand(*xs), rel=1e-13)
    assert math.isclose(module.chain(*xs), module.make(np)(*xs))
    assert W.count_ops(W.rnn_forward_source(4)) == 12


def _fd(f: Any, args: tuple[Any, ...], i: int, h: float = 1e-6) -> np.ndarray:
    """Central differences of `f(*args)` in its argument `i` (an array or a float)."""
    base = np.asarray(args[i], dtype=np.float64)
    out = np.zeros(base.shape)
    for k in np.ndindex(base.shape):
        values = []
        for step in (h, -h):
            moved = base.copy()
            moved[k] += step
            values.append(f(*args[:i], moved if moved.ndim else float(moved), *args[i + 1 :]))
        out[k] = (values[0] - values[1]) / (2 * h)
    return out


def test_logreg_mlp_chain_vec() -> None:
    from symgrad import grad

    w, X, y = W.logreg_data(300)
    want = W.logreg_grad_hand(w, X, y)
    np.testing.assert_allclose(grad(W.logreg, wrt="w")(w, X, y), want, rtol=1e-12)
    np.testing.assert_allclose(want, _fd(W.logreg, (w, X, y), 0), rtol=1e-6)  # the baseline is right
    params = W.mlp_data(300)
    got, want = grad(W.mlp, wrt=W.W7_PARAMS)(*params), W.mlp_grad_hand(*params)
    assert len(got) == len(want) == 4
    for i, (a, b) in enumerate(zip(got, want)):
        assert np.shape(a) == np.shape(b)
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-15)
        np.testing.assert_allclose(b, _fd(W.mlp, params, i), rtol=1e-5, atol=1e-9)
    x = np.linspace(-1, 1, 50)
    want = W.chain_vec_grad_hand(x)
    np.testing.assert_allclose(grad(W.chain_vec, wrt="x")(x), want, rtol=1e-11, atol=1e-15)
    assert want == pytest.approx(W.chain_grad_hand(*x), rel=1e-12)  # the scalar W5 formula
    *theta, D2, y = W.gp_data(40)
    got, want = grad(W.gp_nll, wrt=W.W8_PARAMS)(*theta, D2, y), W.gp_nll_grad_hand(*theta, D2, y)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a == pytest.approx(b, rel=1e-11)
        assert b == pytest.approx(_fd(W.gp_nll, (*theta, D2, y), i), rel=1e-6)


@pytest.mark.skipif(
    importlib.util.find_spec("numba") is None, reason="numba is not installed (pip install 'symgrad[numba]')"
)
def test_backends_quick_run_prints_every_table() -> None:
    """`python -m benchmarks.backends --quick` without its slow parts (compile processes, Dask)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.backends", "--quick", "--only", "W1,W2,W3,W4,W5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for title in (
        "### W3: gradient",
        "### W1: gradient",
        "### W2: Rosenbrock",
        "### W4 D=10",
        "### W5 n=100",
    ):
        assert title in proc.stdout
    assert "| symgrad backend='numba' |" in proc.stdout


def _pyperf_table(module: str, options: list[str], out: Path, env: dict[str, str], timeout: int) -> str:
    """Run `python -m module` with pyperf's `options` into `out`, then its `--table` of `out`."""
    command = [sys.executable, "-m", module, *options, "-o", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    table = [sys.executable, "-m", module, "--table", str(out)]
    return subprocess.run(table, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env).stdout


def test_steady_state_targets_run_under_pyperf_and_make_a_table(tmp_path: Path) -> None:
    """`python -m benchmarks.steady` (pyperf: fresh worker processes) measures the Rosenbrock
    rows and `--table` turns its JSON into README's table, with a ratio and its spread."""
    pytest.importorskip("pyperf", reason="pyperf is in the test and bench extras")
    env = {**os.environ, "SYMGRAD_NO_CACHE": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "steady.json"
    table = _pyperf_table("benchmarks.steady", ["--debug-single-value", "--only", "W2"], out, env, 180)
    rows = [line for line in table.splitlines() if line.startswith("| W2")]
    assert [row.split(" | ")[1] for row in rows][:2] == ["symgrad", "hand-written"]
    assert "±" in rows[1].split(" | ")[3]  # hand-written's time relative to symgrad's, with its spread


def test_first_calls_run_under_pyperf_and_the_cache_row_hits(tmp_path: Path) -> None:
    """`python -m benchmarks.first_call --quick` (pyperf: one fresh worker process per value)
    times every decoration row at tiny sizes; each cache-hit worker loaded its kernel from the
    cache the parent filled (asserted there, counted into the JSON), and `--table` prints the
    rows and the ratios README's targets quote."""
    pyperf = pytest.importorskip("pyperf", reason="pyperf is in the test and bench extras")
    from benchmarks import first_call

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "first.json"
    table = _pyperf_table("benchmarks.first_call", ["--quick", "--debug-single-value"], out, env, 300)
    benches = {b.get_name(): b for b in pyperf.BenchmarkSuite.load(str(out)).get_benchmarks()}
    cases = first_call.cases(quick=True, only="")
    assert sorted(benches) == sorted(case.name for case in cases)
    for case in cases:
        if case.system == first_call.HIT:
            assert benches[case.name].get_metadata()[first_call.HITS_KEY] == "1/1", case.name
    rows = {line.split(" | ")[0]: line for line in table.splitlines() if line.startswith("| W")}
    for label in ("| W4 D=10", "| W4 D=20", "| W5 n=10", "| W5 n=20"):
        assert label in rows and "–" not in rows[label], table  # every system's cell is filled
    assert "W4 D=10 1/1" in table and "W5 n=20 1/1" in table, table
    assert "| W4 symgrad cold, D=20 ÷ D=10 |" in table and "cold ÷ cache hit" in table, table
    assert "jax.jit first call ÷ symgrad cold" in table, table
