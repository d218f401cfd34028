"""One case for every entry of `symgrad.supported()`: a small user function calling it, example
arguments, and a PyTorch float64 twin.

Nothing is listed twice. Each elementwise and SciPy rule brings its own case: its `example`
(the expression tests/test_rules.py and tests/test_custom_rules.py differentiate), sampled on
its domain away from kinks; the torch twin is the same example run under tests/torch_oracle.py's
NumPy shims, or `TORCH_TWINS` of tests/test_custom_rules.py for SciPy's. The array and
linear-algebra entries are found in the case tables that already exist (tests/test_linalg.py,
tests/test_shape_functions.py, tests/test_custom_rules.py; their checks run there) by reading
which supported functions each case's function calls; `NEW_CASES` below cover the entries that
no table reached, and `LEFT_OUT` says why an entry has no case and what to write instead.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import tempfile
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import test_complex
import test_custom_rules
import test_linalg
import test_rules
import test_shape_functions
import torch
import torch_oracle
from helpers import write_module
from test_shape_functions import score, t_score

import symgrad
from symgrad import arraytrace, rules

F64 = torch.float64
RNG = np.random.default_rng(20260707)


@dataclass(frozen=True)
class Case:
    """`fn(*make())` is a number; `twin` is `fn` written with torch (None: no torch twin).
    `checked_in` names the test file whose table-driven checks run it; None: tests/test_registry.py."""

    name: str
    fn: Callable[..., Any]
    twin: Callable[..., Any] | None
    make: Callable[[], tuple[Any, ...]]
    checked_in: str | None = None
    rule: rules.Rule | None = None  # the elementwise or SciPy rule whose example `fn` is


# --- elementwise and SciPy rules: their examples, all in one module file ------------------------

RULE_MODULE_HEADER = """\
import math

import numpy as np
from scipy import special, stats

from symgrad import detach, stop_gradient
"""

ALL_RULES = (*rules.RULES, *rules.COMPLEX_RULES, *rules.SCIPY_RULES)


def _rule_module() -> Any:
    text = RULE_MODULE_HEADER + "".join(
        f"\n\ndef rule_{k}(x, y):\n    return {rule.example}\n" for k, rule in enumerate(ALL_RULES)
    )
    return write_module(Path(tempfile.mkdtemp(prefix="symgrad-registry-")), "registry_rule_examples", text)


RULE_MODULE = _rule_module()


def _points(rule: rules.Rule, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """test_rules' sample points of the rule's domain, away from every example's kinks, as
    two arrays: the elementwise gradient at all of them comes from one call."""
    points = test_rules.sample_points(rule, seed)
    return np.array([p[0] for p in points]), np.array([p[1] for p in points])


def _torch_twin(k: int, rule: rules.Rule) -> Callable[..., Any] | None:
    if rule in rules.SCIPY_RULES:
        return test_custom_rules.TORCH_TWINS.get(rule.names[0])
    try:
        return torch_oracle.load(test_rules.MODULE_TEMPLATE.format(example=rule.example), f"rule_{k}")["f"]
    except AttributeError:  # the oracle has no shim for a name the example uses
        return None


RULE_CASES = [
    Case(
        rule.names[0],
        getattr(RULE_MODULE, f"rule_{k}"),
        _torch_twin(k, rule),
        lambda rule=rule, k=k: _points(rule, 3000 + k),
        rule=rule,
    )
    for k, rule in enumerate(ALL_RULES)
]


# --- array entries no existing table calls: user functions (module level: symgrad reads them) ---


def distinct(*shape: int) -> np.ndarray:
    """Well separated values away from 0 (max, min and prod have no ties or zeros)."""
    values = RNG.permutation(np.arange(1, 1 + math.prod(shape))).reshape(shape)
    return values * 0.21 * RNG.choice([-1.0, 1.0], size=shape)


def reductions(x):
    a = np.mean(x, axis=0) * np.amin(x, axis=0)
    b = np.max(x, axis=1) ** 2 + np.min(x, axis=1)
    return np.sum(a) + np.sum(b) + np.amax(x) * np.prod(x[0]) + x.max() * x.min(axis=0).sum()


def t_reductions(x):
    a = x.mean(0) * x.amin(0)
    b = x.amax(1) ** 2 + x.amin(1)
    return a.sum() + b.sum() + x.max() * x[0].prod() + x.max() * x.amin(0).sum()


def method_reductions(x):
    return x.mean(axis=1).prod() + x.prod(axis=0).sum() * x.mean() + x.max(axis=0).sum()


def t_method_reductions(x):
    return x.mean(1).prod() + x.prod(0).sum() * x.mean() + x.amax(0).sum()


def reshapes(x):
    parts = [np.ravel(x), x.ravel(), x.flatten(), np.reshape(np.transpose(x), (6,)), x.transpose().ravel()]
    stacked = np.stack([x, np.squeeze(np.expand_dims(x, 0)), x.squeeze()], axis=1)
    return score(np.concatenate(parts)) + score(stacked) + score(np.atleast_1d(x[0, 1]))


def t_reshapes(x):
    parts = [x.reshape(-1), x.reshape(-1), x.reshape(-1), x.T.reshape(6), x.T.reshape(-1)]
    stacked = torch.stack([x, x.unsqueeze(0).squeeze(0), x.squeeze()], 1)
    return t_score(torch.cat(parts)) + t_score(stacked) + t_score(x[0, 1].reshape(1))


def copies(x):
    y = np.copy(x) * x.copy() + x.astype(float)
    return score(y) + score(x.clip(-0.5, 0.5)) + score(x.cumprod(axis=1))


def t_copies(x):
    y = x.clone() * x.clone() + x
    return t_score(y) + t_score(torch.clamp(x, -0.5, 0.5)) + t_score(torch.cumprod(x, 1))


def products(x):
    return np.trace(np.matmul(x, x)) + np.sum(np.outer(x[0], x[:, 1]) ** 2) + np.trace(x, 1)


def t_products(x):
    return torch.trace(x @ x) + torch.sum(torch.outer(x[0], x[:, 1]) ** 2) + torch.diagonal(x, 1).sum()


def constructors(x):
    a = np.array([x[0], x[1] * 2.0, 1.5])
    b = np.asarray([x[2], x[0]])
    w = np.arange(3.0) + np.ones(3) - np.zeros(3) + np.full(3, 0.5)
    m = np.eye(3) + 2.0 * np.identity(3)
    return np.sum(a * w) + np.sum(b**2) + np.sum(m @ x * x) + np.sum(np.zeros_like(x) + np.ones_like(x) * x)


def t_constructors(x):
    a = torch.stack([x[0], x[1] * 2.0, torch.tensor(1.5, dtype=F64)])
    b = torch.stack([x[2], x[0]])
    w = torch.arange(3.0, dtype=F64) + 1.5
    m = 3.0 * torch.eye(3, dtype=F64)
    return torch.sum(a * w) + torch.sum(b**2) + torch.sum(m @ x * x) + torch.sum(x)


def shape_queries(x):
    n = np.size(x) + np.ndim(x) + len(x) + x.size + x.ndim + np.shape(x)[1] + x.shape[0]
    return np.sum(np.sin(x)) * n  # whole numbers: no derivative of their own


def t_shape_queries(x):
    n = 6 + 2 + 2 + 6 + 2 + 3 + 2
    return torch.sum(torch.sin(x)) * n


def log_determinants(x):
    s = x @ x.T + 3.0 * np.eye(3)  # symmetric positive definite, distinct eigenvalues
    sign, logdet = np.linalg.slogdet(s)
    w, v = np.linalg.eigh(s)
    return sign * logdet + np.sum(w**2 * np.array([0.5, -1.0, 2.0])) + np.sum(v[:, 0] ** 2 * x[0])


def t_log_determinants(x):
    s = x @ x.T + 3.0 * torch.eye(3, dtype=F64)
    sign, logdet = torch.linalg.slogdet(s)
    w, v = torch.linalg.eigh(s)
    return (
        sign * logdet
        + torch.sum(w**2 * torch.tensor([0.5, -1.0, 2.0], dtype=F64))
        + torch.sum(v[:, 0] ** 2 * x[0])
    )


def symgrad_logsumexp(x):
    return symgrad.logsumexp(x) + np.sum(symgrad.logsumexp(x * 2.0, axis=0))


def t_symgrad_logsumexp(x):
    return torch.logsumexp(x, (0, 1)) + torch.sum(torch.logsumexp(x * 2.0, 0))


def sequences(x):
    values = [x[i] * (i + 1.0) for i in range(len(x))]
    pairs = list(zip(values, reversed(values)))
    total = sum(a * b for a, b in pairs)
    named = dict(first=values[0], last=values[-1])
    weights = tuple(k * 0.5 * v for k, v in enumerate(values))
    scale = 2.0 if isinstance(named, dict) else 1.0
    return total + scale * math.fsum([named["first"], named["last"]]) + math.prod(values[:2]) + sum(weights)


def t_sequences(x):
    values = [x[i] * (i + 1.0) for i in range(len(x))]
    total = sum(a * b for a, b in zip(values, reversed(values)))
    weights = [k * 0.5 * v for k, v in enumerate(values)]
    return total + 2.0 * (values[0] + values[-1]) + values[0] * values[1] + sum(weights)


NEW_CASES = [  # (function, torch twin, argument maker)
    (reductions, t_reductions, lambda: (distinct(3, 4),)),
    (method_reductions, t_method_reductions, lambda: (distinct(3, 4),)),
    (reshapes, t_reshapes, lambda: (RNG.normal(size=(2, 3)),)),
    (copies, t_copies, lambda: (RNG.normal(size=(2, 3)),)),
    (products, t_products, lambda: (RNG.normal(size=(3, 3)),)),
    (constructors, t_constructors, lambda: (RNG.normal(size=3),)),
    (shape_queries, t_shape_queries, lambda: (RNG.normal(size=(2, 3)),)),
    (log_determinants, t_log_determinants, lambda: (RNG.normal(size=(3, 3)),)),
    (symgrad_logsumexp, t_symgrad_logsumexp, lambda: (RNG.normal(size=(2, 3)),)),
    (sequences, t_sequences, lambda: (RNG.normal(size=4),)),
]


# --- the tables that exist: their cases, named by the file whose tests run them -----------------


def _one_argument(make: Callable[[], Any]) -> Callable[[], tuple[Any, ...]]:
    return lambda: (make(),)


EXISTING = [
    *(Case(f.__name__, f, t, m, "tests/test_linalg.py") for f, t, m in test_linalg.CASES),
    *(
        Case(f.__name__, f, t, _one_argument(m), "tests/test_shape_functions.py")
        for f, t, m in test_shape_functions.CASES
    ),
    *(
        Case(f.__name__, f, t, lambda x=x: (x,), "tests/test_custom_rules.py")
        for f, t, x in test_custom_rules.ARRAY_CASES
    ),
]
COMPLEX_CASES = [
    Case(name, fn, twin, lambda args=args: args, "tests/test_complex.py")
    for name, fn, args, twin in test_complex.CASES
]
CASES = [*RULE_CASES, *(Case(f.__name__, f, t, m) for f, t, m in NEW_CASES), *EXISTING]

# Entries with no case: why, and what a user writes instead.
LEFT_OUT: dict[str, str] = {}
if hasattr(np, "row_stack"):  # removed in NumPy 2.5
    LEFT_OUT["np.row_stack"] = (
        "deprecated alias of np.vstack (NumPy 2.0 warns at every call), traced by the same "
        "handler; write np.vstack, which tests/test_shape_functions.py checks"
    )


# --- which supported functions a case calls ------------------------------------------------------

_ATTRIBUTES = arraytrace.METHODS | set(arraytrace.PROPERTIES)


def _called(fn: Callable[..., Any]) -> tuple[list[Any], set[str]]:
    """The objects the names and attribute chains of `fn`'s source resolve to (in its module's
    globals, then builtins), and the array attributes it reads of local values (`x.sum`)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    namespace = fn.__globals__

    def resolve(node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            return namespace[node.id] if node.id in namespace else getattr(builtins, node.id, None)
        if isinstance(node, ast.Attribute):
            base = resolve(node.value)
            return None if base is None else getattr(base, node.attr, None)
        return None

    objects, attributes = [], set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # np.row_stack and friends warn when read
                found = resolve(node)
            if found is not None:
                objects.append(found)
            elif isinstance(node, ast.Attribute) and node.attr in _ATTRIBUTES and resolve(node.value) is None:
                attributes.add(f"ndarray.{node.attr}")
    return objects, attributes


def _same(a: Any, b: Any) -> bool:
    try:
        return a is b or (bool(a == b) and callable(a))  # bound methods: equal, not identical
    except Exception:  # an array compared with a function, ...
        return False


def cases_for(entry: symgrad.registry.Supported) -> list[Case]:
    """The cases that check `entry`: for a rule's function, the case of its rule's example
    (aliases such as math.sin share np.sin's rule); else every case whose function calls it."""
    if entry.kind == "complex":  # tests/test_complex.py checks them on complex arguments
        return [c for c in COMPLEX_CASES if entry.name.rsplit(".", 1)[-1] in c.fn.__code__.co_names]
    if entry.kind in ("elementwise", "scipy"):
        rule = rules.lookup(entry.function)
        found = [c for c in RULE_CASES if c.rule is rule and rule is not None]
        if found or entry.kind == "elementwise":
            return found
    hits = []
    for case in CASES:
        if case.rule is not None:
            continue
        objects, attributes = CALLS[case.name, case.checked_in]
        if entry.name in attributes or (
            not entry.name.startswith("ndarray.") and any(_same(o, entry.function) for o in objects)
        ):
            hits.append(case)
    return hits


CALLS = {(c.name, c.checked_in): _called(c.fn) for c in CASES if c.rule is None}  # not COMPLEX_CASES: lambdas
