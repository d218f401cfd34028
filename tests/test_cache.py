"""The persistent cache: reuse across processes, invalidation by dependencies, tamper-proofing."""

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import platformdirs
import pytest

from symgrad import cache, grad

ROOT = Path(__file__).resolve().parent.parent

HELPER = """
SCALE = {scale}

def helper(x, c=2.0):
    return c * x ** {power}
"""

MAIN = """
import json, sys
import numpy as np
from helper_mod import SCALE, helper
from symgrad import value_and_grad

def f(x, y):
    return SCALE * helper(x) + np.sin(y)

g = value_and_grad(f, wrt=("x", "y"))
value, grads = g(1.5, 0.5)
print(json.dumps({"value": value, "grads": grads, "cached": g.variant().from_cache}))
"""


def _write(folder: Path, scale: float, power: int) -> None:
    (folder / "helper_mod.py").write_text(HELPER.format(scale=scale, power=power))
    (folder / "main_mod.py").write_text(MAIN)


def _run(folder: Path, cache_dir: Path, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "SYMGRAD_NO_CACHE"}
    # No .pyc files: a module rewritten within the same second must be read again.
    # This checkout's symgrad, not an installed one.
    path = os.pathsep.join([str(folder), str(ROOT)])
    environment.update(SYMGRAD_CACHE_DIR=str(cache_dir), PYTHONPATH=path, PYTHONDONTWRITEBYTECODE="1", **env)
    result = subprocess.run(
        [sys.executable, str(folder / "main_mod.py")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def _expected(scale: float, power: int) -> tuple[float, float]:
    import math

    return scale * 2.0 * power * 1.5 ** (power - 1), math.cos(0.5)


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    _write(folder, 3.0, 2)
    return folder, tmp_path / "cache"


def test_second_process_reuses_the_entry(project):
    folder, cache_dir = project
    cold = _run(folder, cache_dir)
    warm = _run(folder, cache_dir)
    assert not cold["cached"] and warm["cached"]
    assert warm["value"] == cold["value"] and warm["grads"] == cold["grads"]
    assert warm["grads"] == pytest.approx(_expected(3.0, 2), rel=1e-15)


def test_changed_constant_or_callee_source_is_not_reused(project):
    folder, cache_dir = project
    _run(folder, cache_dir)
    _write(folder, 5.0, 2)  # a module constant read through an import changed
    changed = _run(folder, cache_dir)
    assert not changed["cached"]
    assert changed["grads"] == pytest.approx(_expected(5.0, 2), rel=1e-15)
    _write(folder, 5.0, 3)  # the inlined helper's source changed
    changed = _run(folder, cache_dir)
    assert not changed["cached"]
    assert changed["grads"] == pytest.approx(_expected(5.0, 3), rel=1e-15)


def _entries(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.glob("*.json"))


@pytest.mark.parametrize(
    "damage", ["truncate", "garble", "edit-payload", "edit-and-rehash", "foreign-key", "empty"]
)
def test_damaged_entries_are_recompiled_and_rewritten(project, damage):
    folder, cache_dir = project
    _run(folder, cache_dir)
    (entry,) = _entries(cache_dir)
    raw = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(raw[: len(raw) // 2])
    elif damage == "garble":
        entry.write_bytes(bytes(b ^ 0x5A for b in raw))
    elif damage == "empty":
        entry.write_bytes(b"")
    else:
        wrapper = json.loads(raw)
        payload = json.loads(wrapper["payload"])
        # a malicious edit: make the generated code return something else
        scalar = payload["kernel"]["scalar"]
        scalar["outputs"] = [f"1e9 + {o}" for o in scalar["outputs"]]
        wrapper["payload"] = json.dumps(payload, sort_keys=True)
        if damage == "edit-and-rehash":  # a forger who recomputes a plain checksum still fails
            import hashlib

            wrapper["hmac"] = hashlib.sha256(wrapper["payload"].encode()).hexdigest()
        if damage == "foreign-key":  # an entry signed with another cache's key
            import hmac as hmac_module

            wrapper["hmac"] = hmac_module.new(b"x" * 32, wrapper["payload"].encode(), "sha256").hexdigest()
        entry.write_text(json.dumps(wrapper))
    again = _run(folder, cache_dir)
    assert not again["cached"]
    assert again["grads"] == pytest.approx(_expected(3.0, 2), rel=1e-15)
    rewritten = _run(folder, cache_dir)
    assert rewritten["cached"]  # the entry was rewritten and is trusted again
    assert rewritten["grads"] == again["grads"]


def test_no_cache_writes_nothing(project):
    folder, cache_dir = project
    result = _run(folder, cache_dir, SYMGRAD_NO_CACHE="1")
    assert not result["cached"]
    assert not cache_dir.exists() or not _entries(cache_dir)


def test_directory_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "here"))
    monkeypatch.delenv("SYMGRAD_NO_CACHE", raising=False)
    assert cache.directory() == tmp_path / "here"
    monkeypatch.setenv("SYMGRAD_NO_CACHE", "1")
    assert cache.directory() is None
    monkeypatch.delenv("SYMGRAD_NO_CACHE")
    monkeypatch.delenv("SYMGRAD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.directory() == Path(platformdirs.user_cache_dir("symgrad", appauthor=False))
    if sys.platform.startswith("linux"):  # platformdirs follows the XDG variables there
        assert cache.directory() == tmp_path / "xdg" / "symgrad"


def test_key_file_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMGRAD_KEY_FILE", str(tmp_path / "k"))
    assert cache.key_file() == tmp_path / "k"
    monkeypatch.delenv("SYMGRAD_KEY_FILE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert cache.key_file() == Path(platformdirs.user_data_dir("symgrad", appauthor=False)) / "cache-key"
    if sys.platform.startswith("linux"):
        assert cache.key_file() == tmp_path / "data" / "symgrad" / "cache-key"


# --- the signing key: outside the cache directory, private to the user -------------------------


def test_key_is_a_private_file_outside_the_cache_directory(project, tmp_path):
    folder, cache_dir = project
    key = tmp_path / "private" / "symgrad" / "cache-key"
    _run(folder, cache_dir, SYMGRAD_KEY_FILE=str(key))
    assert len(key.read_bytes()) == 32
    assert _entries(cache_dir)
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted(p.name for p in _entries(cache_dir))
    if os.name == "posix":
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700  # created by symgrad


def test_entry_signed_with_another_key_is_recompiled(project, tmp_path):
    """Another user's (or process's) key: its entries are never run, only overwritten."""
    folder, cache_dir = project
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    assert not _run(folder, cache_dir, SYMGRAD_KEY_FILE=str(theirs))["cached"]
    written = {p.name: p.read_bytes() for p in _entries(cache_dir)}
    again = _run(folder, cache_dir, SYMGRAD_KEY_FILE=str(mine))
    assert not again["cached"]  # their entry fails my key: recompiled, and rewritten
    assert again["grads"] == pytest.approx(_expected(3.0, 2), rel=1e-15)
    assert {p.name: p.read_bytes() for p in _entries(cache_dir)} != written
    assert _run(folder, cache_dir, SYMGRAD_KEY_FILE=str(mine))["cached"]
    assert mine.read_bytes() != theirs.read_bytes()


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_key_readable_by_others_is_replaced(project, tmp_path):
    folder, cache_dir = project
    key = tmp_path / "key"
    _run(folder, cache_dir, SYMGRAD_KEY_FILE=str(key))
    old = key.read_bytes()
    key.chmod(0o644)  # someone could have read it: it is no secret any more
    result = _run(folder, cache_dir, SYMGRAD_KEY_FILE=str(key))
    assert not result["cached"]  # the entries signed with the old key are not trusted
    assert key.read_bytes() != old and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert _run(folder, cache_dir, SYMGRAD_KEY_FILE=str(key))["cached"]


def test_short_key_is_replaced(monkeypatch, tmp_path):
    key = tmp_path / "key"
    key.write_bytes(b"short")
    key.chmod(0o600)
    monkeypatch.setenv("SYMGRAD_KEY_FILE", str(key))
    secret = cache._secret()
    assert len(secret) == 32 and key.read_bytes() == secret
    assert cache._secret() == secret  # stable once written


def test_unusable_key_location_skips_the_cache(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SYMGRAD_KEY_FILE", str(blocker / "key"))
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    cache.store("0" * 64, [], {"kernel": {}})
    assert not list((tmp_path / "cache").glob("*.json"))  # nothing written unsigned
    assert cache.load("0" * 64, lambda: None) is None


def test_unwritable_cache_directory_is_not_an_error(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(blocker / "cache"))
    module = tmp_path / "unwritable_mod.py"
    module.write_text(
        textwrap.dedent("""
        def f(x):
            return x * x * x
    """)
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import unwritable_mod

        assert grad(unwritable_mod.f)(2.0) == 12.0
    finally:
        sys.path.remove(str(tmp_path))


def test_lists_are_fingerprinted_by_their_items():
    """Static lists (`axes=[0, 2, 1]`) and module lists key entries by content: two lists
    once shared a fingerprint, so another process reused a program traced for other axes."""
    from symgrad import cache

    assert cache.fingerprint([0, 2, 1]) != cache.fingerprint([1, 0, 2])
    assert cache.fingerprint([0.5]) != cache.fingerprint((0.5,))
