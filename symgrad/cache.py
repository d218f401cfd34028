"""Persistent on-disk cache of generated kernels, keyed by everything the generated code reads.

An entry holds the generated source of one compiled variant. It is used only when
(1) its key matches: the function's source, the transformation (kind, wrt), the static
values and the versions of symgrad, SymPy, NumPy and Python; (2) every value the tracer read
from outside the function (globals, closure cells, module attributes, inlined callees'
sources) still has the fingerprint recorded when the entry was written; and (3) its HMAC
matches, with the user's signing key. Anything else is ignored and rewritten: an entry is
never executed unless it is exactly what symgrad wrote with this user's key.

Where things live (platformdirs, so that each OS gets its own conventions): entries in
`SYMGRAD_CACHE_DIR`, else `platformdirs.user_cache_dir("symgrad")` (`~/.cache/symgrad` or
`$XDG_CACHE_HOME/symgrad` on Linux, `~/Library/Caches/symgrad` on macOS,
`%LOCALAPPDATA%\\symgrad\\Cache` on Windows); the key in `SYMGRAD_KEY_FILE`, else
`cache-key` in `platformdirs.user_data_dir("symgrad")` (`~/.local/share/symgrad`,
`~/Library/Application Support/symgrad`, `%LOCALAPPDATA%\\symgrad`): never in the cache
directory. platformdirs is a dependency, not an optional import: it is small, pure Python and
without dependencies of its own, and a fallback would keep the hand-written Linux paths (and
move the cache and the key whenever it came and went).

Threat model. The HMAC is protection, not a checksum: an entry is generated Python that is
compiled and executed, so an entry that someone else wrote is code run with the user's
rights. The key is 32 random bytes in a file of mode 0600 (its folder is created 0700), apart
from the entries. It protects against anyone who can write the cache directory but cannot read
the key: another user or process with write access to a shared or group-writable cache
directory (`SYMGRAD_CACHE_DIR` on a shared disk, in /tmp), a copied or restored cache, an
entry edited by hand. Their entries fail the signature and are recompiled and overwritten,
never run (entries of another user, signed with that user's key, are likewise recompiled: a
cache directory shared between users is safe but not shared in effect). A key file that others
could read or that the user does not own (POSIX) is not trusted: it is replaced by a new key,
which invalidates the entries signed with the old one. It does not protect against an attacker
with the user's own rights (who can read the key, or edit symgrad and its dependencies
directly), nor against someone who can read the user's files (the key) and write the cache.
On Windows the file mode is not enforced; the key relies on the per-user permissions of
`%LOCALAPPDATA%`. Without a readable or creatable key the cache is skipped, not trusted.
Not covered by the signature: the numba backend's kernel modules and numba's own cache files
(`numba/` in the cache directory: source, bytecode and pickled object code, loaded by Python
and numba): with `backend="numba"`, the cache directory must be writable by the user only.
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
import platformdirs
import sympy

from . import rules

FORMAT = 3
Dependency = tuple[tuple[str, ...], Any]  # (path from the traced function, fingerprint)


def directory() -> Path | None:
    """The cache directory: `SYMGRAD_CACHE_DIR`, else the user cache dir
    (`platformdirs.user_cache_dir`); None when `SYMGRAD_NO_CACHE=1` turns the cache off."""
    if os.environ.get("SYMGRAD_NO_CACHE", "") not in ("", "0"):
        return None
    configured = os.environ.get("SYMGRAD_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(platformdirs.user_cache_dir("symgrad", appauthor=False))


def key_file() -> Path:
    """The file holding the key that signs cache entries: `SYMGRAD_KEY_FILE`, else `cache-key`
    in the user data dir (`platformdirs.user_data_dir`), outside the cache directory."""
    configured = os.environ.get("SYMGRAD_KEY_FILE")
    if configured:
        return Path(configured)
    return Path(platformdirs.user_data_dir("symgrad", appauthor=False)) / "cache-key"


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


KEY_BYTES = 32


def _secret() -> bytes:
    """The signing key: read from `key_file()`, created there (mode 0600) if missing, replaced if
    it is not private to this user. Raises OSError when no trusted key can be had."""
    path = key_file()
    try:
        data = _private_key(path)
    except FileNotFoundError:
        _new_key(path, replace=False)
    else:
        if data is not None:
            return data
        _new_key(path, replace=True)  # short, or readable by others: not a secret any more
    data = _private_key(path)
    if data is None:
        raise OSError(f"the cache key {path} is not private to this user")
    return data


def _private_key(path: Path) -> bytes | None:
    """The key in `path`, or None if it is malformed or others may read it (POSIX)."""
    with open(path, "rb") as stream:
        if os.name == "posix":
            info = os.fstat(stream.fileno())
            if info.st_mode & 0o077 or info.st_uid != os.geteuid():
                return None
        data = stream.read(KEY_BYTES + 1)
    return data if len(data) == KEY_BYTES else None


def _new_key(path: Path, replace: bool) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-key-")  # mode 0600
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(secrets.token_bytes(KEY_BYTES))
        if replace:
            os.replace(temp, path)
            return
        try:  # a link does not overwrite: of two processes creating the key, the first wins
            os.link(temp, path)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            os.replace(temp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


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
        if not hmac.compare_digest(wrapper["hmac"], _signature(_secret(), payload)):
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
        secret = _secret()
        wrapper = {"hmac": _signature(secret, payload.encode()), "payload": payload}
        _atomic_write(folder / f"{entry_key}.json", json.dumps(wrapper).encode())
    except (OSError, TypeError, ValueError):
        return
