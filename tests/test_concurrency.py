"""Decorating and calling from many threads, and two processes sharing one cache directory."""

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from symgrad import cache, grad, value_and_grad
from tests import api_cases, speed_cases

FUNCTIONS = [
    (api_cases.branchy, (1.0, 2.0)),
    (api_cases.poly, (1.5, 0.5)),
    (speed_cases.product, (3.0, 4.0)),
    (speed_cases.shared_weight, (0.3, 0.8)),
]


def test_eight_threads_decorate_and_call_at_once():
    expected = [grad(fn)(*args) for fn, args in FUNCTIONS]
    shared = [grad(fn) for fn, _ in FUNCTIONS]  # objects shared between threads, compiled lazily
    barrier = threading.Barrier(8)

    def work(k: int) -> list:
        barrier.wait()  # all threads start together
        results = []
        for i, (fn, args) in enumerate(FUNCTIONS):
            own = grad(fn)(*args)  # a fresh object per thread
            results.append((i, own, shared[i](*args), shared[i](*[np.full(3, a) for a in args])))
        return results

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(work, range(8)))
    for results in outcomes:
        for i, own, from_shared, on_arrays in results:
            assert own == pytest.approx(expected[i], rel=1e-15)
            assert from_shared == pytest.approx(expected[i], rel=1e-15)
            np.testing.assert_allclose(np.array(on_arrays, dtype=float)[..., 0], expected[i], rtol=1e-15)


def test_static_variants_built_concurrently():
    g = grad(speed_cases.recurrence, wrt="h", static="n")
    serial = {n: grad(speed_cases.recurrence, wrt="h", static="n")(0.3, 0.7, -0.2, n) for n in range(1, 6)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda k: (k % 5 + 1, g(0.3, 0.7, -0.2, k % 5 + 1)), range(40)))
    for n, value in got:
        assert value == serial[n]


SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, {root!r})
from tests import api_cases, speed_cases
from symgrad import grad, value_and_grad
out = []
for fn, args in [(api_cases.branchy, (1.0, 2.0)), (api_cases.poly, (1.5, 0.5)),
                 (speed_cases.product, (3.0, 4.0)), (speed_cases.shared_weight, (0.3, 0.8))]:
    for kind in (grad, value_and_grad):
        g = kind(fn)
        out.append([repr(g(*args)), g.variant().from_cache])
print(json.dumps(out))
"""


def _spawn(cache_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "SYMGRAD_CACHE_DIR": str(cache_dir)}
    env.pop("SYMGRAD_NO_CACHE", None)
    root = str(Path(__file__).resolve().parent.parent)
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(root=root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_fill_one_cache_directory(tmp_path):
    cache_dir = tmp_path / "shared-cache"
    first, second = _spawn(cache_dir), _spawn(cache_dir)  # at the same time
    results = []
    for process in (first, second):
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
        results.append(json.loads(out.splitlines()[-1]))
    assert [r[0] for r in results[0]] == [r[0] for r in results[1]]
    entries = list(cache_dir.glob("*.json"))
    assert len(entries) == 8
    secret = cache.key_file().read_bytes()  # outside the cache directory
    assert not (cache_dir / "key").exists() and not (cache_dir / "cache-key").exists()
    for entry in entries:  # every entry is complete and carries a valid signature
        wrapper = json.loads(entry.read_text())
        assert wrapper["hmac"] == cache._signature(secret, wrapper["payload"].encode())
        assert json.loads(wrapper["payload"])["key"] == entry.stem
    third = _spawn(cache_dir)
    out, err = third.communicate(timeout=180)
    assert third.returncode == 0, err
    warm = json.loads(out.splitlines()[-1])
    assert all(from_cache for _, from_cache in warm)  # nothing had to be rebuilt
    assert [r[0] for r in warm] == [r[0] for r in results[0]]


def test_runtime_errors_leave_the_cache_intact(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    vg = value_and_grad(api_cases.poly)
    before = vg(1.5, 0.5)
    snapshot = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    assert snapshot
    for bad in [(1, 0.5), (np.ones(2), np.ones(3)), (1j, 0.5), ("x", 0.5)]:
        with pytest.raises(Exception) as info:
            vg(*bad)
        assert type(info.value).__module__.startswith("symgrad")
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.json")} == snapshot
    assert value_and_grad(api_cases.poly)(1.5, 0.5) == before
