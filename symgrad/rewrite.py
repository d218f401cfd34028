"""Rewrite stage: replace forms that overflow or cancel with numerically stable ones.

It runs on the traced graph, before differentiation, so that the function and every
derivative of it are computed from the stable form:

| written                                   | computed as                 | why                            |
| ----------------------------------------- | --------------------------- | ------------------------------ |
| `log(1 + exp(u))`, `log1p(exp(u))`        | `logaddexp(0, u)`           | exp overflows for u > 709      |
| `log(exp(a) + exp(b) + ...)`, `log(exp(u))` | `logaddexp(logaddexp(a, b), ...)`, `u` | the same overflow |
| `log(sum(exp(u)))`, `log(mean(exp(u)))`   | `logsumexp(u)` (+ log(1/n)) | overflow; underflow to log(0)  |
| `log(sigmoid(u))`                         | `-logaddexp(0, -u)`         | sigmoid underflows to 0        |
| `1 / (1 + exp(-u))`, `exp(u) / (1 + exp(u))` | `sigmoid(u)`             | inf / inf = NaN for u > 709    |
| `exp(a) / sum(exp(u))`, `exp(a) / (exp(a) + exp(b))` | `exp(a - logsumexp(u))` | inf / inf again       |
| `exp(a) * exp(b)`                         | `exp(a + b)`                | inf * 0 = NaN                  |
| `1 - sigmoid(u)`                          | `sigmoid(-u)`               | cancellation for u > 37        |
| `log(1 + u)`                              | `log1p(u)`                  | 1 + u rounds away small u      |
| `exp(u) - 1`                              | `expm1(u)`                  | cancellation for small u       |
| `sqrt(a*a + b*b)`                         | `hypot(a, b)`               | a*a overflows or underflows    |

Negations come for free (`u` is any expression: `log1p(exp(-x))`, `exp(-x) / (1 + exp(-x))`).

Each rewrite is one small function from an expression to its stable form (or None). Graph
nodes hold one operation each, so a pattern reads the definitions of the nodes it refers to
(`e = exp(u); s = 1 + e; y = log(s)` is matched at `y`). The pass applies every pattern to
every subexpression of every node, bottom-up, until none applies; nodes are visited in
order and a pattern only looks backwards, so one visit per node reaches the fixed point. An
array operation a pattern needs (`logsumexp`) becomes a node of its own, inserted before the
node being rewritten; nodes that nothing reads any more are dropped when the program is emitted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import sympy
from sympy.codegen.cfunctions import expm1, hypot, log1p

from . import arrays
from .graph import Graph, Loop, Multi, Names, real_symbol
from .rules import LogAddExp, Sigmoid

Expr = Any
_ROUNDS = 8  # rewrites of one subexpression in a row; each makes it simpler, so few are needed


def stabilize(graph: Graph, names: Names | None = None) -> Graph:
    """A copy of `graph` in which every occurrence of a form above is replaced by its stable
    form (in loop bodies too: `names`, the whole program's, name what a body inserts)."""
    result = graph.extend()
    if names is not None:
        result.names = names
    rewriter = _Rewriter(result)
    for symbol, expr in graph.nodes:
        if isinstance(expr, Loop):
            rewriter.nodes.append(
                (symbol, dataclasses.replace(expr, body=stabilize(expr.body, result.names)))
            )
            continue
        if isinstance(expr, Multi):  # a call of array operands: no pattern to rewrite
            rewriter.nodes.append((symbol, expr))
            continue
        rewriter.rewrite_node(symbol, expr)
    return rewriter.result


class _Rewriter:
    """The graph being rebuilt: the definitions patterns read, and the nodes they insert."""

    def __init__(self, result: Graph) -> None:
        self.result = result
        self.nodes: list[tuple[sympy.Symbol, Expr]] = []
        result.nodes = self.nodes
        self.definitions: dict[Expr, Expr] = {}
        self.inserted: dict[Expr, sympy.Symbol] = {}
        self.fresh: list[sympy.Symbol] = []  # inserted while rewriting the current node
        self.line: tuple[Any, ...] | None = None

    def rewrite_node(self, symbol: sympy.Symbol, expr: Expr) -> None:
        self.line, self.fresh = self.result.lines.get(symbol), []
        new = self._fold_back(everywhere(expr, self))
        if new in self.inserted:  # folded back: this node now holds what was inserted for it
            self.inserted[new] = symbol
        self.definitions[symbol] = new
        self.nodes.append((symbol, new))
        if new != expr:
            self.result.memo.setdefault(new, symbol)

    def look(self, value: Expr) -> Expr:
        """The expression behind a node symbol (one level), or the value itself."""
        return self.definitions.get(value, value)

    def atom(self, expr: Expr) -> Expr:
        """`expr` as a graph value: itself if a symbol or number, else a node inserted for it."""
        if isinstance(expr, sympy.Symbol | sympy.Number):
            return expr
        if expr in self.inserted:
            return self.inserted[expr]
        symbol = real_symbol(self.result.names.temp("t"))
        if self.result.shapes is not None:
            self.result.shapes[symbol] = arrays.shape_of(expr, self.result.shapes)
        if self.line is not None:
            self.result.lines[symbol] = self.line
        self.nodes.append((symbol, expr))
        self.definitions[symbol], self.inserted[expr] = expr, symbol
        self.result.memo.setdefault(expr, symbol)
        self.fresh.append(symbol)
        return symbol

    def _fold_back(self, new: Expr) -> Expr:
        """A node that became the node just inserted for it (`y = t7`) takes t7's expression."""
        if not (self.fresh and self.nodes[-1][0] == new and new in self.fresh):
            return new
        _, expr = self.nodes.pop()
        del self.definitions[new]
        self.result.lines.pop(new, None)
        if self.result.shapes is not None:
            del self.result.shapes[new]
        return expr


def everywhere(expr: Expr, rewriter: _Rewriter) -> Expr:
    """`expr` with the patterns applied to every subexpression until none applies.

    A pattern is tried on a whole expression before its parts, so that `exp(u) / (1 + exp(u))`
    becomes sigmoid(u) before its denominator alone becomes sigmoid(-u) (leaving exp(u) * 0).
    """
    for _ in range(_ROUNDS):
        if not expr.args:
            return expr
        found = _first_match(expr, rewriter)
        if found is not None and found != expr:
            expr = found
            continue
        args = tuple(everywhere(arg, rewriter) for arg in expr.args)
        if args == expr.args:
            return expr
        expr = expr.func(*args)
    return expr


def _first_match(expr: Expr, rewriter: _Rewriter) -> Expr | None:
    for pattern in PATTERNS:
        found = pattern(expr, rewriter)
        if found is not None:
            return found
    return None


# --- reading values through the graph ----------------------------------------------------------


def _terms(value: Expr, rewriter: _Rewriter) -> list[Expr]:
    """The terms of a sum, read through the nodes that hold partial sums (`s = s + exp(x_i)`)."""
    terms, pending = [], [value]
    while pending:  # a loop, not recursion: a sum built in a long loop is a deep chain of nodes
        expr = rewriter.look(pending.pop())
        if isinstance(expr, sympy.Add):
            pending.extend(reversed(expr.args))
        else:
            terms.append(expr)
    return terms


def _exponent(value: Expr, rewriter: _Rewriter) -> Expr | None:
    """u with `value` = exp(u): exp(u) itself, a positive number, or products and powers of these."""
    expr = rewriter.look(value)
    if isinstance(expr, sympy.exp):
        return expr.args[0]
    if getattr(expr, "is_Number", False):
        return _log_of_number(expr)
    if isinstance(expr, sympy.Mul):
        parts = [_exponent(factor, rewriter) for factor in expr.args]
        return None if any(p is None for p in parts) else sympy.Add(*parts)
    if isinstance(expr, sympy.Pow) and expr.args[1].is_Number:
        base = _exponent(expr.args[0], rewriter)
        return None if base is None else expr.args[1] * base
    return None


def _log_of_number(c: Expr) -> Expr | None:
    if not c.is_positive:
        return None
    return sympy.S.Zero if c == 1 else sympy.Float(math.log(float(c)))


def _negated(value: Expr, rewriter: _Rewriter) -> Expr:
    """-value, reading through a node that holds a negation (`t0 = -x` gives x)."""
    expr = rewriter.look(value)
    if isinstance(expr, sympy.Mul) and len(expr.args) == 2 and expr.args[0] == -1:
        return expr.args[1]
    return -value


# --- log of a positive value built from exponentials -------------------------------------------


def stable_log(value: Expr, rewriter: _Rewriter) -> Expr | None:
    """A stable expression for log(value) where value is built from exponentials, else None."""
    expr = rewriter.look(value)
    if isinstance(expr, sympy.exp):
        return expr.args[0]
    if isinstance(expr, Sigmoid):
        return -LogAddExp(sympy.S.Zero, _negated(expr.args[0], rewriter))
    if isinstance(expr, sympy.Add):
        return _log_of_sum(_terms(expr, rewriter), rewriter)
    if isinstance(expr, arrays.ArraySum):
        return _log_of_reduction(expr, rewriter)
    if isinstance(expr, sympy.Mul):
        return _log_of_product(expr.args, rewriter)
    if isinstance(expr, sympy.Pow) and expr.args[1].is_Number:
        base = stable_log(expr.args[0], rewriter)
        return None if base is None else expr.args[1] * base
    return None


def _log_of_sum(terms: Sequence[Expr], rewriter: _Rewriter) -> Expr | None:
    """log(t1 + t2 + ...) for terms t = exp(u), None unless each term is such a one."""
    exponents = [u for u in (_exponent(term, rewriter) for term in terms) if u is not None]
    if len(exponents) < len(terms) or all(u.is_Number for u in exponents):
        return None
    return _log_of_exponents(exponents, rewriter)


def _log_of_exponents(exponents: Sequence[Expr], rewriter: _Rewriter) -> Expr:
    """log(exp(u1) + exp(u2) + ...) as nested logaddexp, one node per level."""
    total = exponents[0]
    for u in exponents[1:-1]:
        total = rewriter.atom(LogAddExp(total, u))
    return LogAddExp(total, exponents[-1]) if len(exponents) > 1 else total


def _log_of_reduction(total: arrays.ArraySum, rewriter: _Rewriter) -> Expr | None:
    """log(sum(exp(u), axis)) as the array operation logsumexp(u, axis)."""
    u = _exponent(total.args[0], rewriter)
    if u is None or u.is_Number:
        return None
    return rewriter.atom(arrays.LogSumExp.make([rewriter.atom(u)], total.params))


def _log_of_product(factors: Sequence[Expr], rewriter: _Rewriter) -> Expr | None:
    """log(c * v * ...) for positive numbers c and values v with a stable log (`mean` = sum / n)."""
    logs = [_log_of_number(f) if f.is_Number else stable_log(f, rewriter) for f in factors]
    if any(part is None for part in logs) or all(f.is_Number for f in factors):
        return None
    return sympy.Add(*logs)


# --- the patterns ------------------------------------------------------------------------------


def _log(expr: Expr, rewriter: _Rewriter) -> Expr | None:
    """log(v) and log1p(v) of sums, sums over arrays, products of exponentials, sigmoids."""
    if isinstance(expr, sympy.log):
        return stable_log(expr.args[0], rewriter)
    if isinstance(expr, log1p):
        return _log_of_sum([sympy.S.One, *_terms(expr.args[0], rewriter)], rewriter)
    return None


def _quotient(expr: Expr, rewriter: _Rewriter) -> Expr | None:
    """n * exp(a) / d**k for d built from exponentials: exp(a - k log d), log d computed stably."""
    if not isinstance(expr, sympy.Mul | sympy.Pow):
        return None
    factors = list(sympy.Mul.make_args(expr))
    for i, factor in enumerate(factors):
        if not _is_reciprocal(factor):
            continue
        others = factors[:i] + factors[i + 1 :]
        exps = [f for f in others if isinstance(rewriter.look(f), sympy.exp)]
        numerator = sympy.Add(*[rewriter.look(f).args[0] for f in exps])
        exponent = _quotient_exponent(numerator, factor.args[0], factor.args[1], rewriter)
        if exponent is not None:
            return sympy.Mul(*[f for f in others if f not in exps]) * sympy.exp(exponent)
    return None


def _is_reciprocal(factor: Expr) -> bool:
    return isinstance(factor, sympy.Pow) and factor.args[1].is_Number and factor.args[1] < 0


def _quotient_exponent(a: Expr, d: Expr, k: Expr, rewriter: _Rewriter) -> Expr | None:
    """log(exp(a) * d**k). Where a is one of the exponents of the sum d (softmax, sigmoid), it is
    -log(1 + sum(exp(u - a))): the differences come first, so its derivative does not cancel."""
    if k == -1 and isinstance(rewriter.look(d), sympy.Add):
        exponents = [_exponent(t, rewriter) for t in _terms(d, rewriter)]
        if a in exponents and None not in exponents:
            exponents.remove(a)
            return -_log_of_exponents([sympy.S.Zero, *(u - a for u in exponents)], rewriter)
    log_d = stable_log(d, rewriter)
    return None if log_d is None else a + k * log_d


def _exp_of_softplus(expr: Expr, rewriter: _Rewriter) -> Expr | None:
    """exp(-k logaddexp(0, d)) = sigmoid(-d)**k."""
    if not isinstance(expr, sympy.exp):
        return None
    inner = rewriter.look(expr.args[0])
    k, softplus = inner.as_coeff_Mul() if isinstance(inner, sympy.Mul) else (sympy.S.One, inner)
    softplus = rewriter.look(softplus)
    if not (k.is_negative and isinstance(softplus, LogAddExp) and sympy.S.Zero in softplus.args):
        return None
    d = softplus.args[1] if softplus.args[0] == 0 else softplus.args[0]
    return Sigmoid(_negated(d, rewriter)) ** -k


def _exp_product(expr: Expr, rewriter: _Rewriter) -> Expr | None:
    """exp(a) * exp(b) = exp(a + b): inf * 0 = NaN where a + b is moderate (exp(a) / sum(exp(u)))."""
    if not isinstance(expr, sympy.Mul):
        return None
    exps = [f for f in expr.args if isinstance(rewriter.look(f), sympy.exp)]
    if len(exps) < 2:
        return None
    rest = [f for f in expr.args if not isinstance(rewriter.look(f), sympy.exp)]
    return sympy.Mul(*rest) * sympy.exp(sympy.Add(*[rewriter.look(f).args[0] for f in exps]))


def _one_minus_sigmoid(expr: Expr, rewriter: _Rewriter) -> Expr | None:
    """1 - sigmoid(u) = sigmoid(-u)."""
    if not (isinstance(expr, sympy.Add) and sympy.S.One in expr.args):
        return None
    for term in expr.args:
        if isinstance(term, sympy.Mul) and len(term.args) == 2 and term.args[0] == -1:
            inner = rewriter.look(term.args[1])
            if isinstance(inner, Sigmoid):
                rest = [t for t in expr.args if t is not term and t != 1]
                return sympy.Add(*rest) + Sigmoid(_negated(inner.args[0], rewriter))
    return None


def _log1p(expr: Expr, rewriter: _Rewriter) -> Expr | None:
    """log(1 + u) = log1p(u)."""
    if not isinstance(expr, sympy.log):
        return None
    inner = rewriter.look(expr.args[0])
    if isinstance(inner, sympy.Add) and len(inner.args) == 2 and sympy.S.One in inner.args:
        return log1p(next(a for a in inner.args if a != 1))
    return None


def _expm1(expr: Expr, rewriter: _Rewriter) -> Expr | None:
    """exp(u) - 1 = expm1(u)."""
    if isinstance(expr, sympy.Add) and len(expr.args) == 2 and sympy.S.NegativeOne in expr.args:
        other = rewriter.look(next(a for a in expr.args if a != -1))
        return expm1(other.args[0]) if isinstance(other, sympy.exp) else None
    return None


def _hypot(expr: Expr, rewriter: _Rewriter) -> Expr | None:
    """sqrt(a**2 + b**2) = hypot(a, b)."""
    if not (isinstance(expr, sympy.Pow) and expr.args[1] == sympy.Rational(1, 2)):
        return None
    total = rewriter.look(expr.args[0])
    if not (isinstance(total, sympy.Add) and len(total.args) == 2):
        return None
    roots = [_square_root(term, rewriter) for term in total.args]
    return None if any(r is None for r in roots) else hypot(*roots)


def _square_root(value: Expr, rewriter: _Rewriter) -> Expr | None:
    expr = rewriter.look(value)
    return expr.args[0] if isinstance(expr, sympy.Pow) and expr.args[1] == 2 else None


# Tried in order on each subexpression; the first that applies wins (sigmoid before log1p).
PATTERNS: tuple[Callable[[Expr, _Rewriter], Expr | None], ...] = (
    _log,
    _quotient,
    _exp_of_softplus,
    _exp_product,
    _one_minus_sigmoid,
    _log1p,
    _expm1,
    _hypot,
)
