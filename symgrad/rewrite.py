"""Rewrite stage: replace forms that overflow or cancel with numerically stable ones.

It runs on the traced graph, before differentiation, so that the function and every
derivative of it are computed from the stable form:

| written                      | computed as               | why                                 |
| ---------------------------- | ------------------------- | ----------------------------------- |
| `log(1 + exp(u))`            | `logaddexp(0, u)`         | exp overflows for u > 709           |
| `1 / (1 + exp(-u))`          | `sigmoid(u)`              | the same overflow, for u < -709     |
| `exp(u) / (1 + exp(u))`      | `sigmoid(u)`              | inf / inf = NaN for u > 709         |
| `log(sum(exp(u)))`           | `logsumexp(u)`            | overflow; underflow to log(0)       |
| `log(1 + u)`                 | `log1p(u)`                | 1 + u rounds away small u           |
| `exp(u) - 1`                 | `expm1(u)`                | cancellation for small u            |
| `sqrt(a*a + b*b)`            | `hypot(a, b)`             | a*a overflows or underflows         |

Graph nodes hold one operation each, so a pattern is matched through the definitions of the
nodes it reads; the nodes it no longer needs are dropped when the program is emitted.
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy.codegen.cfunctions import expm1, hypot, log1p

from . import arrays
from .graph import Graph
from .rules import LogAddExp, Sigmoid

Expr = Any


def stabilize(graph: Graph) -> Graph:
    """A copy of `graph` whose node expressions use the stable forms above."""
    result = graph.extend()
    definitions: dict[Expr, Expr] = {}
    nodes = []
    for symbol, expr in graph.nodes:
        expr = _stable(expr, definitions)
        definitions[symbol] = expr
        nodes.append((symbol, expr))
    result.nodes = nodes
    return result


def _look(value: Expr, definitions: dict[Expr, Expr]) -> Expr:
    """The expression behind a node symbol (one level), or the value itself."""
    return definitions.get(value, value)


def _exp_argument(value: Expr, definitions: dict[Expr, Expr]) -> Expr | None:
    """u when `value` is (a node holding) exp(u)."""
    expr = _look(value, definitions)
    return expr.args[0] if isinstance(expr, sympy.exp) else None


def _one_plus(value: Expr, definitions: dict[Expr, Expr]) -> Expr | None:
    """u when `value` is (a node holding) 1 + u."""
    expr = _look(value, definitions)
    if isinstance(expr, sympy.Add) and len(expr.args) == 2 and sympy.S.One in expr.args:
        return next(a for a in expr.args if a != 1)
    return None


def _stable(expr: Expr, definitions: dict[Expr, Expr]) -> Expr:
    for pattern in (_softplus_or_log1p, _sigmoid, _expm1, _hypot, _logsumexp):
        found = pattern(expr, definitions)
        if found is not None:
            return found
    return expr


def _softplus_or_log1p(expr: Expr, definitions: dict[Expr, Expr]) -> Expr | None:
    if not isinstance(expr, sympy.log):
        return None
    inner = _one_plus(expr.args[0], definitions)
    if inner is None:
        return None
    u = _exp_argument(inner, definitions)
    return LogAddExp(sympy.S.Zero, u) if u is not None else log1p(inner)


def _sigmoid(expr: Expr, definitions: dict[Expr, Expr]) -> Expr | None:
    # c / (1 + exp(-u)) -> c * sigmoid(u);  exp(u) / (1 + exp(u)) -> sigmoid(u)
    if not isinstance(expr, sympy.Mul | sympy.Pow):
        return None
    factors = expr.args if isinstance(expr, sympy.Mul) else (expr,)
    denominators = [f for f in factors if isinstance(f, sympy.Pow) and f.args[1] == -1]
    if len(denominators) != 1:
        return None
    inner = _one_plus(denominators[0].args[0], definitions)
    u = None if inner is None else _exp_argument(inner, definitions)
    if u is None:
        return None
    rest = [f for f in factors if f is not denominators[0]]
    if all(f.is_Number for f in rest):
        return sympy.Mul(*rest) * Sigmoid(_negated(u, definitions))
    if len(rest) == 1 and _exp_argument(rest[0], definitions) == u:
        return Sigmoid(u)
    return None


def _negated(value: Expr, definitions: dict[Expr, Expr]) -> Expr:
    """-value, reading through a node that holds a negation (`t0 = -x` gives x)."""
    expr = _look(value, definitions)
    if isinstance(expr, sympy.Mul) and len(expr.args) == 2 and expr.args[0] == -1:
        return expr.args[1]
    return -value


def _expm1(expr: Expr, definitions: dict[Expr, Expr]) -> Expr | None:
    if isinstance(expr, sympy.Add) and len(expr.args) == 2 and sympy.S.NegativeOne in expr.args:
        other = next(a for a in expr.args if a != -1)
        u = _exp_argument(other, definitions)
        return expm1(u) if u is not None else None
    return None


def _square_root(value: Expr, definitions: dict[Expr, Expr]) -> Expr | None:
    expr = _look(value, definitions)
    if isinstance(expr, sympy.Pow) and expr.args[1] == 2:
        return expr.args[0]
    return None


def _hypot(expr: Expr, definitions: dict[Expr, Expr]) -> Expr | None:
    if not (isinstance(expr, sympy.Pow) and expr.args[1] == sympy.Rational(1, 2)):
        return None
    total = _look(expr.args[0], definitions)
    if not (isinstance(total, sympy.Add) and len(total.args) == 2):
        return None
    roots = [_square_root(term, definitions) for term in total.args]
    if any(r is None for r in roots):
        return None
    return hypot(*roots)


def _logsumexp(expr: Expr, definitions: dict[Expr, Expr]) -> Expr | None:
    if not isinstance(expr, sympy.log):
        return None
    total = _look(expr.args[0], definitions)
    if not isinstance(total, arrays.ArraySum):
        return None
    u = _exp_argument(total.args[0], definitions)
    if u is None or not isinstance(u, sympy.Symbol | sympy.Number):
        return None
    return arrays.LogSumExp.make([u], total.params)
