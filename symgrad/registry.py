"""The one listing of every function symgrad differentiates, read from the tracer's own tables."""

from __future__ import annotations

import importlib
import types
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import arraytrace, itertrace, linalgtrace, rules

KINDS = ("elementwise", "complex", "scipy", "array", "linalg", "python")

# Where a callable's user-facing name is looked up, in order: the prefix it is written with.
_NAMESPACES: tuple[tuple[str, str], ...] = (
    ("np.", "numpy"),
    ("np.linalg.", "numpy.linalg"),
    ("scipy.special.", "scipy.special"),
    ("math.", "math"),
    ("", "builtins"),
)


@dataclass(frozen=True)
class Supported:
    """One supported function: `name` as a user writes it (`np.linalg.solve`, `math.sin`,
    `scipy.special.ndtr`, `ndarray.reshape`), its `kind` (one of `KINDS`) and the `function`
    itself (for a method or property, the attribute of `numpy.ndarray`)."""

    name: str
    kind: str
    function: Any

    def __repr__(self) -> str:
        return f"Supported(name={self.name!r}, kind={self.kind!r})"


def _user_name(rule_name: str) -> str:
    """`numpy.sin` as `np.sin`, `builtins.abs` as `abs`; other dotted names as they are."""
    if rule_name.startswith("numpy."):
        return "np." + rule_name[len("numpy.") :]
    if rule_name.startswith("builtins."):
        return rule_name[len("builtins.") :]
    return rule_name


def _module(name: str) -> types.ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:  # scipy is optional
        return None


def _name_of(fn: Any) -> str:
    """The name a user calls `fn` by: `np.cumsum`, `np.linalg.inv`, `scipy.special.softmax`."""
    short: str | None = getattr(fn, "__name__", None)
    if getattr(fn, "__module__", None) == "symgrad.runtime":
        return f"symgrad.{short}"  # symgrad.logsumexp
    for prefix, module_name in _NAMESPACES:
        module = _module(module_name)
        if short is not None and module is not None and getattr(module, short, None) is fn:
            return prefix + short
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _kind_of_array_call(fn: Any, name: str) -> str:
    if fn in linalgtrace.LINALG_CALLS or name.startswith("np.linalg."):
        return "linalg"
    return "scipy" if name.startswith("scipy.") else "array"


def _entries() -> list[Supported]:
    found: list[Supported] = []
    tables = (("elementwise", rules.RULES), ("complex", rules.COMPLEX_RULES), ("scipy", rules.SCIPY_RULES))
    for kind, table in tables:
        for rule in table:
            for rule_name in rule.names:
                fn = rules._resolve(rule_name)
                if fn is not None:  # math.cbrt only exists from Python 3.11
                    found.append(Supported(_user_name(rule_name), kind, fn))
    for fn in arraytrace.ARRAY_CALLS:
        if fn is not None:
            name = _name_of(fn)
            found.append(Supported(name, _kind_of_array_call(fn, name), fn))
    found += [Supported(f"np.{name}", "array", fn) for fn, name in arraytrace.CONSTRUCTORS.items()]
    attributes = sorted(arraytrace.METHODS | set(arraytrace.PROPERTIES))
    found += [Supported(f"ndarray.{name}", "array", getattr(np.ndarray, name)) for name in attributes]
    found += [Supported(_name_of(fn), "python", fn) for fn in itertrace.SEQUENCE_CALLS]
    return found


def supported(kind: str | None = None) -> tuple[Supported, ...]:
    """Every function symgrad differentiates, or those of one kind.

    The listing is read from the tables the tracer itself dispatches on (the elementwise rules
    `symgrad.RULES`, SciPy's rules, the array and linear-algebra handlers, NumPy's array
    constructors, the methods and properties of traced arrays, Python's builtins over
    sequences), so a function that symgrad learns appears here without being listed twice.
    A name that several tables know (`len`, `max`) is listed once, under the first kind.
    Functions registered at run time with `symgrad.register` are not listed.

    Args:
      kind: one of `"elementwise"` (NumPy ufuncs and `math` functions, e.g. `np.sin`),
        `"complex"` (the parts of complex values: `np.real`, `np.angle`, `complex`),
        `"scipy"` (`scipy.special.ndtr`, `scipy.stats.norm.logpdf`, `scipy.special.softmax`),
        `"array"` (reductions, shapes, constructors and `ndarray` methods: `np.sum`,
        `ndarray.reshape`), `"linalg"` (`np.linalg.solve`, `np.einsum`) or `"python"`
        (builtins over sequences: `sum`, `zip`); None for every kind.

    Returns:
      A tuple of `Supported(name, kind, function)` entries, sorted by kind (in the order
      above) and then by name; `name` is spelled as a user writes the call.

    Raises:
      ValueError: `kind` is not one of the kinds above.

    >>> import numpy as np
    >>> import symgrad
    >>> entry = next(s for s in symgrad.supported("linalg") if s.function is np.linalg.solve)
    >>> entry
    Supported(name='np.linalg.solve', kind='linalg')
    >>> {"np.sin", "math.sin", "ndarray.reshape"} <= {s.name for s in symgrad.supported()}
    True
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} or None, not {kind!r}")
    unique: dict[str, Supported] = {}
    for entry in _entries():
        unique.setdefault(entry.name, entry)
    chosen = [e for e in unique.values() if kind is None or e.kind == kind]
    return tuple(sorted(chosen, key=lambda e: (KINDS.index(e.kind), e.name)))
