"""symgrad over tests/user_corpus.py: a gradient that matches finite differences, or a located, hinted refusal.

For each entry, `symgrad.grad(fn, wrt=..., static=...)` is called with the entry's arguments.
It passes when the gradient matches central finite differences of the original function
(relative step 1e-6, |g - fd| <= 1e-5 |fd| + 1e-6 max(1, max |fd|)), or when symgrad raises a
SymgradError whose location (`filename`, `lineno`, `col`, also in the message as
`file:line:col`) is inside tests/user_corpus.py and whose `hint` is not empty. Anything else
(another exception, a wrong gradient, a refusal located elsewhere or without a hint) fails;
entries that do so today are strict xfails naming what is wrong (`Entry.known`).

`pytest -s tests/test_user_corpus.py` (or `python tests/test_user_corpus.py`) prints the tally.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from user_corpus import ENTRIES, Entry

import symgrad

CORPUS_FILE = (Path(__file__).resolve().parent / "user_corpus.py").resolve()
H = 1e-6
RTOL = 1e-5
ATOL = 1e-6


# --- finite differences of the original function, through floats, arrays, dicts and lists -----


def flatten(value: Any) -> np.ndarray:
    """The float leaves of a value, in order (dicts by key order)."""
    if isinstance(value, dict):
        parts = [flatten(v) for v in value.values()]
    elif isinstance(value, (list, tuple)):
        parts = [flatten(v) for v in value]
    else:
        return np.asarray(value, dtype=np.float64).ravel()
    return np.concatenate(parts) if parts else np.zeros(0)


def unflatten(template: Any, flat: np.ndarray) -> Any:
    """A value shaped like `template` from the leaves `flat`."""
    out, used = _unflatten(template, flat, 0)
    assert used == flat.size
    return out


def _unflatten(template: Any, flat: np.ndarray, at: int) -> tuple[Any, int]:
    if isinstance(template, dict):
        result = {}
        for key, v in template.items():
            result[key], at = _unflatten(v, flat, at)
        return result, at
    if isinstance(template, (list, tuple)):
        items = []
        for v in template:
            item, at = _unflatten(v, flat, at)
            items.append(item)
        return type(template)(items), at
    if isinstance(template, np.ndarray):
        n = template.size
        return flat[at : at + n].reshape(template.shape).copy(), at + n
    return float(flat[at]), at + 1


def _call(entry: Entry, args: list[Any]) -> float:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(np.sum(entry.fn(*args, **entry.kwargs)))


def _copy(value: Any) -> Any:
    return copy.deepcopy(value)


def expected_gradients(entry: Entry) -> list[Any]:
    """Central differences of the entry's own function, one per `wrt` parameter."""
    names = list(_param_names(entry))
    grads = []
    for name in entry.wrt:
        i = names.index(name)
        base = flatten(entry.args[i])
        g = np.zeros_like(base)
        for k in range(base.size):
            step = H * max(1.0, abs(base[k]))
            plus, minus = base.copy(), base.copy()
            plus[k] += step
            minus[k] -= step
            args_p = [_copy(a) for a in entry.args]
            args_m = [_copy(a) for a in entry.args]
            args_p[i] = unflatten(entry.args[i], plus)
            args_m[i] = unflatten(entry.args[i], minus)
            g[k] = (_call(entry, args_p) - _call(entry, args_m)) / (2 * step)
        grads.append(unflatten(entry.args[i], g))
    return grads


def _param_names(entry: Entry) -> tuple[str, ...]:
    code = entry.fn.__code__
    names = code.co_varnames[: code.co_argcount]
    return names[1:] if hasattr(entry.fn, "__self__") else names


def same_structure(template: Any, value: Any) -> bool:
    """Whether `value` is shaped like `template` (dict keys, sequence lengths, array shapes)."""
    if isinstance(template, dict):
        return (
            isinstance(value, dict)
            and list(value) == list(template)
            and all(same_structure(template[k], value[k]) for k in template)
        )
    if isinstance(template, (list, tuple)):
        return (
            isinstance(value, (list, tuple, np.ndarray))
            and len(value) == len(template)
            and all(same_structure(t, v) for t, v in zip(template, value))
        )
    return np.shape(value) == np.shape(template)


# --- one entry's outcome -----------------------------------------------------------------------


@dataclass
class Outcome:
    """What symgrad did with one entry."""

    kind: str  # "pass", "refused" (located, hinted), or "bad" (breaks the rule)
    detail: str = ""
    reason: str = ""  # the refusal's first message line, or what went wrong


def _located_here(err: symgrad.SymgradError) -> str:
    """'' when the error names file:line:col inside the corpus file with a hint, else what is wrong."""
    if err.filename is None or err.lineno is None or err.col is None:
        return "no file:line:col"
    if Path(err.filename).resolve() != CORPUS_FILE:
        return f"located outside tests/user_corpus.py ({Path(err.filename).name}:{err.lineno})"
    if f"{err.filename}:{err.lineno}:{err.col}" not in str(err):
        return "location missing from the message"
    if not err.hint.strip():
        return "no hint"
    return ""


_OUTCOMES: dict[str, Outcome] = {}


def outcome(entry: Entry) -> Outcome:
    """Run symgrad on the entry once (cached) and judge the result."""
    if entry.id in _OUTCOMES:
        return _OUTCOMES[entry.id]
    wrt: Any = entry.wrt[0] if len(entry.wrt) == 1 else entry.wrt
    args = [_copy(a) for a in entry.args]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = symgrad.grad(entry.fn, wrt=wrt, static=entry.static)(*args, **entry.kwargs)
    except symgrad.SymgradError as err:
        line = err.message.strip().splitlines()[0] if err.message.strip() else type(err).__name__
        wrong = _located_here(err)
        kind = "bad" if wrong else "refused"
        result = Outcome(
            kind, f"{type(err).__name__}: {wrong or line}\n{err}", f"{type(err).__name__}: {line}"
        )
    except Exception as err:
        result = Outcome(
            "bad", f"{type(err).__name__} (not a SymgradError): {err}", f"crash {type(err).__name__}"
        )
    else:
        result = _compare(entry, got)
    _OUTCOMES[entry.id] = result
    return result


def _compare(entry: Entry, got: Any) -> Outcome:
    got_list = [got] if len(entry.wrt) == 1 else list(got)
    expected = expected_gradients(entry)
    for name, g, e in zip(entry.wrt, got_list, expected):
        if not same_structure(e, g):
            return Outcome("bad", f"gradient of {name} is shaped {g!r}, expected like {e!r}", "wrong shape")
        a, b = flatten(g), flatten(e)
        if not np.all(np.abs(a - b) <= RTOL * np.abs(b) + ATOL * max(1.0, float(np.max(np.abs(b))))):
            return Outcome(
                "bad", f"wrong gradient of {name}: symgrad {a}, finite differences {b}", "wrong gradient"
            )
    return Outcome("pass")


def _param(entry: Entry) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=entry.known)] if entry.known else []
    return pytest.param(entry, id=entry.id, marks=marks)


# --- the tests ---------------------------------------------------------------------------------


def test_corpus_shape():
    assert len(ENTRIES) >= 60
    assert len({e.id for e in ENTRIES}) == len(ENTRIES), "entry ids must be unique"
    assert {e.category for e in ENTRIES} >= {"physics", "statistics", "ml", "numerical", "finance"}
    for entry in ENTRIES:
        assert set(entry.wrt) <= set(_param_names(entry)), entry.id


@pytest.mark.parametrize("entry", [_param(e) for e in ENTRIES])
def test_gradient_or_located_refusal(entry: Entry):
    result = outcome(entry)
    assert result.kind in ("pass", "refused"), result.detail


def summary() -> str:
    """'N of M corpus functions pass; K refused with a located hint', and the refusal reasons."""
    results = {e.id: outcome(e) for e in ENTRIES}
    kinds = Counter(r.kind for r in results.values())
    lines = [
        f"{kinds['pass']} of {len(ENTRIES)} corpus functions pass; {kinds['refused']} refused with a "
        f"located hint; {kinds['bad']} break the rule (wrong gradient, crash, or unlocated refusal)"
    ]
    by_category = Counter(e.category for e in ENTRIES)
    passed = Counter(e.category for e in ENTRIES if results[e.id].kind == "pass")
    lines.append("per category: " + ", ".join(f"{c} {passed[c]}/{n}" for c, n in sorted(by_category.items())))
    lines.append("refusal reasons:")
    reasons = Counter(r.reason for r in results.values() if r.kind == "refused")
    lines += [f"  {n:3d}  {reason}" for reason, n in reasons.most_common()]
    bad = [(e.id, results[e.id]) for e in ENTRIES if results[e.id].kind == "bad"]
    if bad:
        lines.append("breaking the rule:")
        lines += [f"  {eid}: {r.detail.splitlines()[0]}" for eid, r in bad]
    lines.append("passing: " + ", ".join(e.id for e in ENTRIES if results[e.id].kind == "pass"))
    return "\n".join(lines)


def test_summary():
    text = summary()
    print("\n" + text)  # shown with `pytest -s`
    assert text


if __name__ == "__main__":
    print(summary())
    sys.exit(0)
