"""Test session setup: a private persistent-cache directory, so runs never share entries."""

import os
import tempfile

_CACHE = tempfile.mkdtemp(prefix="symgrad-test-cache-")
os.environ["SYMGRAD_CACHE_DIR"] = _CACHE
