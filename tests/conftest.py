"""Test session setup: a private persistent-cache directory, so runs never share entries."""

import os
import random
import sys
import tempfile

import pytest

_CACHE = tempfile.mkdtemp(prefix="symgrad-test-cache-")
os.environ["SYMGRAD_CACHE_DIR"] = _CACHE


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
