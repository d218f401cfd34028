"""Test session setup: a private persistent-cache directory, so runs never share entries."""

import os
import tempfile

_CACHE = tempfile.mkdtemp(prefix="symgrad-test-cache-")
os.environ["SYMGRAD_CACHE_DIR"] = _CACHE


def pytest_terminal_summary(terminalreporter):
    """How many random programs the property tests checked (tests/test_fuzz.py)."""
    fuzz = __import__("sys").modules.get("test_fuzz")
    if fuzz is not None and fuzz.STATS["programs"]:
        counts = ", ".join(f"{k} {v}" for k, v in fuzz.STATS.items() if k != "programs")
        terminalreporter.write_line(f"fuzz: {fuzz.STATS['programs']} generated programs checked ({counts})")
