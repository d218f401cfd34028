"""Persistent on-disk cache of generated kernels, keyed by everything the generated code reads.

An entry holds the generated source of one compiled variant. It is used only when
(1) its key matches: the function's source, the transformation (kind, wrt), the static
values and the versions of symgrad, SymPy, NumPy and Python; (2) every value the tracer read
from outside the function (globals, closure cells, module attributes, inlined callees'
sources) still has the fingerprint recorded when the entry was written; and (3) its HMAC
matches, with a key that only this cache directory holds. Anything else is ignored and
rewritten: an entry is never executed unless it is exactly what symgrad wrote.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import hashlib
import hmac
import inspect
import json
import os
import platform
import secrets
import tempfile
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sympy

from . import rules

FORMAT = 3
Dependency = tuple[tuple[str, ...], Any]  # (path from the traced function, fingerprint)


def directory() -> Path | None:
    """The cache directory: `SYMGRAD_CACHE_DIR`, else the user cache dir; None when
    `SYMGRAD_NO_CACHE=1` turns the cache off."""
    if os.environ.get("SYMGRAD_NO_CACHE", "") not in ("", "0"):
        return None
    configured = os.environ.get("SYMGRAD_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symgrad"


# --- fingerprints: what a value read from outside the function looked like ---------------------


def fingerprint(value: Any) -> Any:
    """A JSON-able description that changes whenever `value` would trace differently."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return ["v", type(value).__name__, repr(value)]
    if isinstance(value, np.generic):
        return ["v", type(value).__name__, repr(value.item())]
    if isinstance(value, tuple):
        return ["t", [fingerprint(v) for v in value]]
    if isinstance(value, list):  # by content: a list read by the function traces with its items
        return ["l", [fingerprint(v) for v in value]]
    if isinstance(value, dict):
        return ["d", sorted([str(k), fingerprint(v)] for k, v in value.items())]
    if isinstance(value, types.ModuleType):
        return ["m", value.__name__]
    if isinstance(value, types.FunctionType):
        return ["f", value.__qualname__, _source_digest(value), _rule_digest(value)]
    if isinstance(value, np.ndarray):
        return ["a", str(value.dtype), list(value.shape), hashlib.sha256(value.tobytes()).hexdigest()]
    name = getattr(value, "__qualname__", getattr(value, "__name__", type(value).__qualname__))
    return [
        "o",
        type(value).__qualname__,
        str(getattr(value, "__module__", "")),
        str(name),
        _rule_digest(value),
    ]


def _source_digest(fn: types.FunctionType) -> str:
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        text = f"<no source {id(fn)}>"  # never equal across processes: no reuse
    # Two lambdas on one line have one source text (the line): their code tells them apart.
    code = getattr(fn, "__code__", None)
    text += "" if code is None else code.co_code.hex() + repr(code.co_consts)
    return hashlib.sha256(text.encode()).hexdigest()


def _rule_digest(value: Any) -> str:
    # A registered rule changes what a call means, so it is part of the callee's fingerprint.
    rule = rules.lookup(value)
    if rule is None:
        return ""
    build = rule.build
    code = getattr(build, "__code__", None)
    body = code.co_code.hex() + repr(code.co_consts) if code is not None else ""
    return f"{rule.names}|{getattr(build, '__qualname__', repr(build))}|{hashlib.sha256(body.encode()).hexdigest()}"


def resolve(root: Callable[..., Any], path: Sequence[str]) -> Any:
    """Follow a recorded path from the traced function: names through closure cells, globals
    and builtins of the function reached so far; `.attr` through attributes."""
    value: Any = root
    for step in path:
        value = getattr(value, step[1:]) if step.startswith(".") else _lookup(value, step)
    return value


def _lookup(fn: Any, name: str) -> Any:
    code = fn.__code__
    if fn.__closure__ and name in code.co_freevars:
        return fn.__closure__[code.co_freevars.index(name)].cell_contents
    if name in fn.__globals__:
        return fn.__globals__[name]
    return getattr(builtins, name)


def dependencies_hold(root: Callable[..., Any], deps: Sequence[Dependency]) -> bool:
    """True when every recorded value still has its recorded fingerprint."""
    for path, expected in deps:
        try:
            current = fingerprint(resolve(root, path))
        except Exception:  # anything that cannot be resolved any more is a change
            return False
        if current != expected:
            return False
    return True


Guard = tuple[tuple[str, ...], Any, Any]  # (path, the value traced, its fingerprint)


def guards_hold(root: Callable[..., Any], guards: Sequence[Guard]) -> bool:
    """True when every constant read from outside the function is still the value traced:
    the same object (a number cannot change), else one with the same fingerprint."""
    for path, traced, expected in guards:
        try:
            current = resolve(root, path)
        except Exception:  # a name that went away: re-trace, which reports it
            return False
        mutable = isinstance(current, (np.ndarray, list, dict))  # may change in place
        if (current is not traced or mutable) and fingerprint(current) != expected:
            return False
    return True


def guards_of(root: Callable[..., Any], deps: Sequence[Dependency]) -> list[Guard]:
    """The guards of a stored entry: its recorded data values, as they are now (they hold)."""
    found = []
    for path, expected in deps:
        if expected[0] in ("v", "t", "l", "d", "a"):  # numbers, strings, tuples, lists, dicts, arrays
            with contextlib.suppress(Exception):
                found.append((path, resolve(root, path), expected))
    return found


# --- keys and entries --------------------------------------------------------------------------


def key(fn: Callable[..., Any], description: str, static_values: dict[str, Any]) -> str:
    """The entry name: a digest of the function's source, the transformation and versions."""
    from . import __version__

    parts = {
        "format": FORMAT,
        "symgrad": __version__,
        "symgrad_code": _package_digest(),
        "sympy": sympy.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "function": f"{fn.__module__}.{fn.__qualname__}",
        "source": _source_digest(fn),  # type: ignore[arg-type]
        "transform": description,
        "static": [[k, fingerprint(v)] for k, v in sorted(static_values.items())],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@functools.cache
def _package_digest() -> str:
    """symgrad's own code: an entry written by other code (even the same version) is foreign."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _secret(folder: Path) -> bytes:
    path = folder / "key"
    try:
        data = path.read_bytes()
        if len(data) == 32:
            return data
    except OSError:
        pass
    data = secrets.token_bytes(32)
    _atomic_write(path, data)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    return path.read_bytes()  # another process may have won the race: use what is on disk


def _atomic_write(path: Path, data: bytes) -> None:
    # Write aside, then rename: readers see the old entry or the new one, never half of one.
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _signature(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def load(entry_key: str, root: Callable[..., Any]) -> dict[str, Any] | None:
    """The stored entry for `entry_key` if it is intact and its dependencies still hold."""
    folder = directory()
    if folder is None:
        return None
    try:
        raw = (folder / f"{entry_key}.json").read_bytes()
        wrapper = json.loads(raw)
        payload = wrapper["payload"].encode()
        if not hmac.compare_digest(wrapper["hmac"], _signature(_secret(folder), payload)):
            return None
        entry = json.loads(payload)
        if entry.get("format") != FORMAT or entry.get("key") != entry_key:
            return None
        deps = [(tuple(path), fp) for path, fp in entry["deps"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, truncated, garbled or foreign: recompile and rewrite
    if not dependencies_hold(root, deps):
        return None
    return entry  # type: ignore[no-any-return]


def store(entry_key: str, deps: Sequence[Dependency], data: dict[str, Any]) -> None:
    """Write an entry; a cache that cannot be written is silently skipped."""
    folder = directory()
    if folder is None:
        return
    entry = {"format": FORMAT, "key": entry_key, "deps": [[list(p), fp] for p, fp in deps], **data}
    try:
        payload = json.dumps(entry, sort_keys=True)
        secret = _secret(folder)
        wrapper = {"hmac": _signature(secret, payload.encode()), "payload": payload}
        _atomic_write(folder / f"{entry_key}.json", json.dumps(wrapper).encode())
    except (OSError, TypeError, ValueError):
        return
