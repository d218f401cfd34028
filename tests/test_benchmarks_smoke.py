# ruff: noqa: N812, RUF001  (W: the workloads module; the table header has an en dash)
"""Smoke test of the benchmark suite: `python -m benchmarks.run --quick` runs, prints every
workload's table, and every system's gradient (symgrad's above all) equals the hand-written one.
Absent peers (jax, torch, autograd) give "skipped: ..." rows; the test still passes."""

from __future__ import annotations

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

WORKLOADS = ("W1", "W2", "W3", "W4", "W5")


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

    got = grad(W.rosen)(-1.2, 1.0)
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
    got = grad(module.chain)(*xs)
    assert got == pytest.approx(W.chain_grad_hand(*xs), rel=1e-13)
    assert math.isclose(module.chain(*xs), module.make(np)(*xs))
    assert W.count_ops(W.rnn_forward_source(4)) == 12
