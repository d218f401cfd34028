"""Test session setup: a private persistent-cache directory and signing key, so runs never share
entries."""

import os
import random
import sys
import tempfile

import pytest

_CACHE = tempfile.mkdtemp(prefix="symgrad-test-cache-")
os.environ["SYMGRAD_CACHE_DIR"] = _CACHE
# The signing key too: tests never create or read the user's own key (symgrad/cache.py).
os.environ["SYMGRAD_KEY_FILE"] = os.path.join(tempfile.mkdtemp(prefix="symgrad-test-key-"), "cache-key")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Every run draws new programs from a seed it prints, so a failing run can be replayed
    whole with `--hypothesis-seed=N` (before Hypothesis's own plugin reads the option)."""
    if getattr(config.option, "hypothesis_seed", "absent") is None:
        config.option.hypothesis_seed = random.SystemRandom().randrange(2**32)


def pytest_terminal_summary(terminalreporter):
    """How many random programs the property tests checked (tests/test_fuzz.py), and the seed."""
    fuzz = sys.modules.get("test_fuzz")
    if fuzz is not None and len(fuzz.STATS) > 1:  # some property ran
        counts = ", ".join(f"{k} {v}" for k, v in fuzz.STATS.items() if k != "programs")
        seed = terminalreporter.config.option.hypothesis_seed
        terminalreporter.write_line(
            f"fuzz: {fuzz.STATS['programs']} generated programs checked ({counts}); "
            f"replay with --hypothesis-seed={seed}"
        )
