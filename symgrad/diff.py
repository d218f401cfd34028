"""Diff stage: reverse (and forward) accumulation over a Graph, one local partial per node."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sympy
from sympy.logic.boolalg import Boolean, BooleanAtom

from . import arrays, rules
from .errors import SymgradError
from .graph import Graph, is_scaled_symbol

Expr = Any


def local_partial(expr: Expr, wrt: sympy.Symbol, out: Expr | None = None) -> Expr:
    """d expr / d wrt for one small node expression, by the chain rule over its head functions.

    `out` is the symbol holding `expr`'s value, so rules like exp' = exp reuse it.
    """
    if expr == wrt:
        return sympy.S.One
    if wrt not in getattr(expr, "free_symbols", ()):
        return sympy.S.Zero
    self_value = expr if out is None else out
    if isinstance(expr, sympy.Add):
        return sympy.Add(*[local_partial(arg, wrt) for arg in expr.args])
    if isinstance(expr, sympy.Mul):
        return _product_rule(expr, wrt)
    if isinstance(expr, sympy.Pow):
        return _power_rule(expr, wrt, self_value)
    if isinstance(expr, sympy.Piecewise):
        return rules.piecewise(*[(local_partial(e, wrt), c) for e, c in expr.args])
    if isinstance(expr, sympy.Function) or type(expr) in rules.DERIVATIVES:  # Max/Min are no Functions
        return _chain_rule(expr, wrt, self_value)
    return _checked(sympy.diff(expr, wrt), expr)  # anything else is rare and small: SymPy does it


def _product_rule(expr: sympy.Mul, wrt: sympy.Symbol) -> Expr:
    args = expr.args
    terms = []
    for i, arg in enumerate(args):
        d = local_partial(arg, wrt)
        if d != 0:
            terms.append(sympy.Mul(d, *args[:i], *args[i + 1 :]))
    return sympy.Add(*terms)


def _power_rule(expr: sympy.Pow, wrt: sympy.Symbol, value: Expr) -> Expr:
    base, exponent = expr.args
    result = sympy.S.Zero
    if wrt in base.free_symbols:
        result += exponent * base ** (exponent - 1) * local_partial(base, wrt)
    if wrt in exponent.free_symbols and not base.is_zero:  # 0**y is constant (as PyTorch has it)
        result += value * sympy.log(base) * local_partial(exponent, wrt)
    return result


def _chain_rule(expr: Any, wrt: sympy.Symbol, value: Expr) -> Expr:
    override = rules.DERIVATIVES.get(type(expr))
    outer = override(expr.args, value) if override is not None else None
    terms = []
    for i, arg in enumerate(expr.args):
        inner = local_partial(arg, wrt)
        if inner == 0:
            continue
        head = outer[i] if outer is not None else _checked(expr.fdiff(i + 1), expr)
        terms.append(head * inner)
    return sympy.Add(*terms)


def _checked(derivative: Expr, expr: Expr) -> Expr:
    """Refuse a derivative that SymPy could only leave unevaluated."""
    if derivative.has(sympy.Derivative, sympy.Subs):
        raise SymgradError(
            f"no derivative rule for `{type(expr).__name__}` (in `{expr}`)",
            hint="add one to symgrad.rules.DERIVATIVES, or wrap the value in stop_gradient(...)",
        )
    return derivative


# A Piecewise with this many pieces (a long if/elif chain) is differentiated through a
# selector node: each partial is then one `where`, not a Piecewise over every condition.
_MANY_PIECES = 8


def _partials(expr: Expr, out: Expr, add: Callable[[Expr], Expr]) -> Callable[[Expr], Expr]:
    """The local partials of `expr` (the value of `out`), one parent at a time."""
    if not isinstance(expr, sympy.Piecewise) or len(expr.args) < _MANY_PIECES:
        return lambda parent: local_partial(expr, parent, out)
    selector: list[Expr] = []  # made on first use: which piece holds (0, 1, ...), one node

    def partial(parent: Expr) -> Expr:
        if not selector:
            selector.append(add(sympy.Piecewise(*[(k, c) for k, (_, c) in enumerate(expr.args)])))
        terms = [
            rules.piecewise((local_partial(value, parent), sympy.Eq(selector[0], k)), (0, True))
            for k, (value, _) in enumerate(expr.args)
            if parent in getattr(value, "free_symbols", ())
        ]
        return sympy.Add(*terms)

    return partial


def _is_condition(expr: Expr) -> bool:
    # (a SymPy Symbol is a Boolean too: an alias node `dfdy = dfdt3` is a number)
    return isinstance(expr, Boolean) and not isinstance(expr, sympy.Symbol)


def support(expr: Expr) -> Any:
    """A condition outside which `expr` is exactly zero (true when there is none to give)."""
    if not isinstance(expr, sympy.Piecewise):
        return sympy.true
    clauses: list[Any] = []
    earlier: list[Any] = []
    for value, cond in expr.args:
        if value != 0:
            clauses.append(sympy.And(cond, *[sympy.Not(c) for c in earlier]))
        earlier.append(cond)
    return sympy.Or(*clauses)


def _times(bar: Expr, partial: Expr) -> Expr:
    """bar * partial, multiplied into the branches of a piecewise partial: `where(c, bar, 0)`
    reads better and costs less than `bar * where(c, 1, 0)`, and keeps zeros exact."""
    if isinstance(partial, sympy.Piecewise):
        return rules.piecewise(*[(_times(bar, value), cond) for value, cond in partial.args])
    return bar * partial


def _guard(contribution: Expr, partial: Expr, where: Any) -> Expr:
    """Keep a contribution exactly zero outside `where`, so an untaken branch's inf or NaN
    partial (sqrt'(0) in `where(x > 0, sqrt(x), 0)`) never turns 0 * inf into NaN."""
    if where is sympy.true or partial.is_Number:
        return contribution
    return rules.piecewise((contribution, where), (0, True))


# A value used in many places (a shared weight in an unrolled loop) gets its adjoint as a
# running sum every few contributions, instead of one sum at the end that keeps every term alive.
_RUNNING_SUM = 4


def _derivative_line(graph: Graph, symbol: Expr) -> Any:
    """The source line of a value, labelled for the statements that differentiate it."""
    line = graph.lines.get(symbol)
    return None if line is None else (line[0], line[1], "derivative")


def needs_gradient(graph: Graph, wrt: Sequence[sympy.Symbol]) -> set[sympy.Symbol]:
    """Symbols through which some `wrt` input reaches the outputs' value."""
    active = set(wrt)
    for symbol, expr in graph.nodes:
        # conditions carry no gradient (comparisons have derivative 0): asking for partials
        # of a long if/elif chain with respect to each of its conditions was quadratic
        if expr.free_symbols & active and not _is_condition(expr):
            active.add(symbol)
    return active


def reverse(
    graph: Graph,
    wrt: Sequence[sympy.Symbol],
    seeds: Sequence[Expr],
    prefix: str = "f",
    into: Graph | None = None,
) -> Graph:
    """Reverse accumulation: a Graph that also computes d(sum_i seed_i * out_i)/d wrt_j.

    The returned graph's outputs are the gradients, one per `wrt` symbol, named `d{prefix}d{x}`.
    Nodes are appended to `into` when given (to build several passes into one program),
    else to a copy of `graph`.
    """
    result = graph.extend() if into is None else into
    active = needs_gradient(graph, wrt)
    contributions: dict[sympy.Symbol, list[Expr]] = {}
    supports: dict[sympy.Symbol, Any] = {}

    def receive(symbol: Expr, value: Expr, where: Any) -> None:
        if symbol in active and value != 0:
            pending = contributions.setdefault(symbol, [])
            pending.append(value)
            if len(pending) >= _RUNNING_SUM:  # sum as they arrive: their operands can be freed
                pending[:] = [result.add(sympy.Add(*pending), f"d{prefix}d{symbol}_partial")]
            supports[symbol] = sympy.Or(supports.get(symbol, sympy.false), where)

    shapes = result.shapes  # None for elementwise programs, where NumPy broadcasting suffices

    def add(expr: Expr) -> Expr:
        return result.add(expr)

    def shaped(total: Expr, symbol: Expr) -> Expr:
        """An adjoint in its value's shape: a reduction's adjoint arrives smaller."""
        if shapes is None:
            return total
        return arrays.broadcast(total, arrays.shape_of(total, shapes), shapes[symbol], add)

    for out, seed in zip(graph.outputs, seeds):
        receive(out, sympy.sympify(seed), sympy.true)
    for symbol, expr in reversed(graph.nodes):
        if symbol not in contributions:
            continue
        total = sympy.Add(*contributions.pop(symbol))
        if isinstance(expr, arrays.ArrayOp):
            total = shaped(total, symbol)  # array VJPs need the adjoint in full shape
        # A scaled adjoint (`-dfdt3`) is folded into its users rather than given a line.
        bar = (
            total
            if is_scaled_symbol(total) and not isinstance(expr, arrays.ArrayOp)
            else result.add(total, f"d{prefix}d{symbol}", _derivative_line(graph, symbol))
        )
        where = supports.pop(symbol)
        if not isinstance(where, (sympy.Symbol, BooleanAtom)):
            # a node, not an expression: supports grow from supports, and repeating them
            # inside one another grows exponentially with the number of branches
            where = result.add(where)
        if isinstance(expr, arrays.ArrayOp):
            assert shapes is not None
            operand_shapes = [arrays.shape_of(o, shapes) for o in expr.operands]
            for operand, value in zip(expr.operands, expr.vjp(bar, symbol, operand_shapes, add)):
                if value is not None and operand in active:
                    receive(operand, value, sympy.true)
            continue
        partials = _partials(expr, symbol, result.add)
        for parent in sorted(expr.free_symbols & active, key=str):
            partial = partials(parent)
            if partial == 0:
                continue
            reach = sympy.And(where, support(partial))
            value = _guard(_times(bar, partial), partial, where)
            if shapes is not None and shapes[symbol] != shapes[parent]:  # a broadcast's adjoint sums
                value = arrays.sum_to(shaped(value, symbol), shapes[symbol], shapes[parent], add)
                reach = sympy.true  # elementwise in `symbol`'s shape: it cannot guard the sum
            receive(parent, value, reach)
    gradients = []
    for x in wrt:
        total = shaped(sympy.Add(*contributions.get(x, [sympy.S.Zero])), x)
        alias = isinstance(total, sympy.Symbol) and total not in result.inputs  # `dfdy = dfdt3`
        gradients.append(result.add(total, f"d{prefix}d{x}", alias=alias))
    result.outputs = tuple(gradients)
    result.tuple_output = len(gradients) != 1
    return result


def forward(
    graph: Graph, wrt: Sequence[sympy.Symbol], tangents: Sequence[Expr], into: Graph | None = None
) -> Graph:
    """Forward accumulation: a Graph whose outputs are the directional derivatives of the
    outputs along `tangents` (one tangent expression per `wrt` symbol)."""
    result = graph.extend() if into is None else into
    shapes = result.shapes
    dot: dict[Expr, Expr] = {x: sympy.sympify(t) for x, t in zip(wrt, tangents)}
    for symbol, expr in graph.nodes:
        if _is_condition(expr):
            continue  # conditions have no derivative
        if isinstance(expr, arrays.ArrayOp):
            assert shapes is not None
            dots = [dot.get(o, sympy.S.Zero) for o in expr.operands]
            if any(d != 0 for d in dots):
                operand_shapes = [arrays.shape_of(o, shapes) for o in expr.operands]
                dots = [  # a tangent in its value's shape, before a reduction sums it
                    d if d == 0 else arrays.broadcast(d, arrays.shape_of(d, shapes), s, result.add)
                    for d, s in zip(dots, operand_shapes)
                ]
                tangent = expr.jvp(dots, symbol, operand_shapes, result.add)
                dot[symbol] = result.add(tangent, f"d{symbol}", _derivative_line(graph, symbol))
            continue
        terms = []
        partials = _partials(expr, symbol, result.add)
        for parent in sorted(expr.free_symbols & dot.keys(), key=str):
            partial = partials(parent)
            if partial != 0:
                # into the branches of a piecewise partial, as in reverse mode: an untaken
                # branch's inf or NaN tangent (sqrt'(0)) is then never multiplied by 0
                terms.append(_times(dot[parent], partial))
        if terms:
            dot[symbol] = result.add(sympy.Add(*terms), f"d{symbol}", _derivative_line(graph, symbol))
    result.outputs = tuple(result.add(dot.get(o, sympy.S.Zero), f"d{o}") for o in graph.outputs)
    return result
