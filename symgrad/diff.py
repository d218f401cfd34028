"""Diff stage: reverse (and forward) accumulation over a Graph, one local partial per node."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import sympy
from sympy.logic.boolalg import Boolean, BooleanAtom

from . import arrays, rules
from .complexes import is_complex_symbol, is_part_of_input
from .errors import SymgradError
from .graph import Graph, Loop, Multi, StackSum, invariants, is_scaled_symbol, reads_of, real_symbol

Expr = Any


def local_partial(expr: Expr, wrt: sympy.Symbol, out: Expr | None = None) -> Expr:
    """d expr / d wrt for one small node expression, by the chain rule over its head functions.

    `out` is the symbol holding `expr`'s value, so rules like exp' = exp reuse it.
    """
    if expr == wrt:
        return sympy.S.One
    if is_part_of_input(expr) and expr.args[0] == wrt:
        # A complex argument z = x + iy: the gradient of a real f is df/dx - i df/dy, as in
        # JAX and autograd (PyTorch's z.grad is its conjugate).
        return sympy.S.One if isinstance(expr, sympy.re) else -sympy.I
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
        if isinstance(expr, Loop):
            active |= _active_loop_outputs(expr, active)
            continue
        if isinstance(expr, Multi):
            if expr.reads() & active:
                active |= set(expr.differentiable())
            continue
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

    stacks = _stacks(graph)  # lists of per-iteration values: their adjoints add item by item

    def receive(symbol: Expr, value: Expr, where: Any) -> None:
        if symbol in active and value != 0:
            pending = contributions.setdefault(symbol, [])
            pending.append(value)
            if symbol in stacks and len(pending) > 1:
                pending[:] = [result.add(StackSum(*pending))]
            elif len(pending) >= _RUNNING_SUM:  # sum as they arrive: their operands can be freed
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
        if isinstance(expr, Loop):
            if any(s in contributions for s in expr.defines()):
                finals = {s: sympy.Add(*contributions.pop(s, [])) for s in expr.defines()}
                for target, value in _reverse_loop(symbol, expr, finals, active, prefix, result):
                    receive(target, value, sympy.true)
            continue
        if isinstance(expr, Multi):
            if any(s in contributions for s in expr.outputs):
                bars = []
                for out in expr.outputs:  # an adjoint per output, in its shape, 0 where none came
                    supports.pop(out, None)
                    total = sympy.Add(*contributions.pop(out, []))
                    if total != 0:
                        total = result.add(
                            shaped(total, out), f"d{prefix}d{out}", _derivative_line(graph, out)
                        )
                    bars.append(total)
                for target, value in _reverse_multi(expr, bars, shapes, add):
                    receive(target, value, sympy.true)
            continue
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
            if is_complex_symbol(symbol) and parent.is_real:
                # a complex output's parts: the real part of its cotangent times the partial is
                # the gradient of Re(cotangent * output), JAX's and autograd's vjp
                value = sympy.re(value)
            if shapes is not None and shapes[symbol] != shapes[parent]:  # a broadcast's adjoint sums
                value = arrays.sum_to(shaped(value, symbol), shapes[symbol], shapes[parent], add)
                reach = sympy.true  # elementwise in `symbol`'s shape: it cannot guard the sum
            receive(parent, value, reach)
    gradients = []
    for x in wrt:
        total = shaped(sympy.Add(*contributions.get(x, [sympy.S.Zero])), x)
        # `dfdy = dfdt3` (but not `dfdy_1 = dfdy`: a loop's sum already has the name)
        alias = (
            isinstance(total, sympy.Symbol) and total not in result.inputs and str(total) != f"d{prefix}d{x}"
        )
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
    # With loops, each value's tangent follows it (a loop carries tangents computed before it);
    # a straight-line program keeps its values first, then the tangents.
    interleave = any(isinstance(expr, Loop) for _, expr in graph.nodes)
    if interleave:
        del result.nodes[len(result.nodes) - len(graph.nodes) :]
    for symbol, expr in graph.nodes:
        if isinstance(expr, Loop):
            result.nodes.append((symbol, _forward_loop(expr, dot, result)))
            continue
        if interleave:
            result.nodes.append((symbol, expr))
        if isinstance(expr, Multi):
            _forward_multi(graph, expr, dot, result)
            continue
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


# --- operations with several results ---------------------------------------------------------


def _reverse_multi(
    node: Multi, bars: Sequence[Expr], shapes: dict[Any, Any] | None, add: Callable[[Expr], Expr]
) -> list[tuple[Any, Expr]]:
    """(operand, adjoint) pairs from the adjoints of a multi-output node's outputs: the VJP
    reads the outputs (eigh's w and V), so a second derivative goes through the node again."""
    assert shapes is not None  # traced for shapes: these operations take arrays
    call = node.call
    operand_shapes = [arrays.shape_of(o, shapes) for o in call.operands]
    contributions = call.vjp_all(bars, node.outputs, operand_shapes, add)
    return [(o, v) for o, v in zip(call.operands, contributions) if v is not None]


def _forward_multi(graph: Graph, node: Multi, dot: dict[Expr, Expr], result: Graph) -> None:
    """The tangents of a multi-output node's outputs (into `dot`), from its operands'."""
    call, shapes = node.call, result.shapes
    dots = [dot.get(o, sympy.S.Zero) for o in call.operands]
    if all(d == 0 for d in dots):
        return
    assert shapes is not None
    operand_shapes = [arrays.shape_of(o, shapes) for o in call.operands]
    dots = [  # in the operands' shapes (a tangent may arrive smaller, as a broadcast scalar)
        d if d == 0 else arrays.broadcast(d, arrays.shape_of(d, shapes), s, result.add)
        for d, s in zip(dots, operand_shapes)
    ]
    tangents = call.jvp_all(dots, node.outputs, operand_shapes, result.add)
    for out, tangent in zip(node.outputs, tangents):
        if tangent != 0:
            dot[out] = result.add(tangent, f"d{out}", _derivative_line(graph, out))


# --- loops: the derivative of a loop is a loop ------------------------------------------------


def _stacks(graph: Graph) -> set[Any]:
    return {stack for _, expr in graph.nodes if isinstance(expr, Loop) for stack in expr.stacked}


def _reads(value: Expr) -> set[Any]:
    return set(getattr(value, "free_symbols", ()))


def _active_body_inputs(loop: Loop, active: set[Any]) -> tuple[set[Any], set[Any]]:
    """The body inputs through which `active` values reach a loop's results (carries whose
    initial value is active, or that some iteration makes active: a fixed point), and the
    body values that are then active."""
    inputs = {c for c, v in zip(loop.carries, loop.init) if _reads(v) & active}
    inputs |= {item for item, stack in loop.items if stack in active}
    outside = invariants(loop.body) & active
    while True:
        inside = needs_gradient(loop.body, [*inputs, *outside])
        more = {c for c, u in zip(loop.carries, loop.updates) if _reads(u) & inside} - inputs
        if not more:
            return inputs, inside
        inputs |= more


def _active_loop_outputs(loop: Loop, active: set[Any]) -> set[Any]:
    inputs, inside = _active_body_inputs(loop, active)
    carried = {c for c in loop.carries if c in inputs}
    return carried | {s for s, v in zip(loop.stacked, loop.stacked_values) if _reads(v) & inside}


def _entry(graph: Graph, label: Expr) -> int:
    return next(i for i, (symbol, _) in enumerate(graph.nodes) if symbol == label)


def _saved_carries(label: Expr, loop: Loop, result: Graph) -> dict[Any, Any]:
    """The stacks in which the loop (as it now is in `result`) saves each carry at the start
    of every iteration, for its reverse pass: added to the loop the first time."""
    saved = result.saved.get(label)
    if saved is not None:
        return saved
    current = result.nodes[_entry(result, label)][1]
    return _saved(label, current.carries, result)


def _saved(label: Expr, values: Sequence[Any], result: Graph) -> dict[Any, Any]:
    """Stacks in which the loop saves `values` (its carries, or values its body computes) in
    every iteration, added to it where not yet there; all its stacks of saved values."""
    saved = result.saved.setdefault(label, {})
    new = [v for v in values if v not in saved]
    if new:
        position = _entry(result, label)
        current = result.nodes[position][1]
        stacks = {v: _stack_of(result, current, v, f"saved_{v}") for v in new}
        body = _copy_body(current.body, result)
        body.outputs = (*body.outputs, *new)
        augmented = dataclasses.replace(current, body=body, stacked=(*current.stacked, *stacks.values()))
        result.nodes[position] = (label, augmented)
        saved.update(stacks)
    return saved


def _residuals(body: Graph, primal_nodes: int) -> list[Any]:
    """The values of an iteration's recomputation (the first `primal_nodes` nodes of a
    reverse body) that its derivative reads: saved by the forward loop instead, in programs
    on arrays, where each recomputed operation (`W @ h`, `tanh`) costs far more than a stack."""
    read: set[Any] = set()
    for _, expr in body.nodes[primal_nodes:]:
        read |= set(reads_of(expr))
    for output in body.outputs:
        read |= _reads(output)
    return [s for s, e in body.nodes[:primal_nodes] if s in read and not isinstance(e, Loop)]


def _copy_body(body: Graph, result: Graph, rename: dict[Any, Any] | None = None) -> Graph:
    """A copy of a loop body (its inputs and nodes renamed by `rename`) that adds its
    nodes under the names of the whole program."""
    rename = rename or {}
    copy = Graph(
        name=body.name,
        params=body.params,
        inputs=tuple(rename.get(x, x) for x in body.inputs),
        names=result.names,
        lines=dict(body.lines),
        shapes=result.shapes,
    )
    for symbol, expr in body.nodes:
        new = _renamed(expr, rename, result) if isinstance(expr, Loop) else expr.xreplace(rename)
        copy.nodes.append((symbol, new))
        if not isinstance(expr, Loop):
            copy.memo.setdefault(new, symbol)
    copy.outputs = tuple(sympy.sympify(o).xreplace(rename) for o in body.outputs)
    copy.saved = dict(body.saved)
    return copy


def _renamed(loop: Loop, rename: dict[Any, Any], result: Graph) -> Loop:
    """A nested loop reading renamed values of the loop around it."""
    return dataclasses.replace(
        loop,
        body=_copy_body(loop.body, result, rename),
        init=tuple(sympy.sympify(v).xreplace(rename) for v in loop.init),
        items=tuple((item, rename.get(stack, stack)) for item, stack in loop.items),
        length=rename.get(loop.length, loop.length),
    )


def _fresh(result: Graph, symbol: Any, integer: bool = False, like: Any = None) -> Any:
    """A new symbol named after `symbol`, with the shape of `like` (default: `symbol`'s) in a
    program traced for shapes."""
    name = result.names.fresh(str(symbol))
    new = sympy.Symbol(name, integer=True) if integer else real_symbol(name)
    if result.shapes is not None:
        result.shapes[new] = () if integer else result.shapes[symbol if like is None else like]
    return new


def _stack_of(result: Graph, loop: Loop, value: Any, hint: str) -> Any:
    """A new stack for one `value` of the body per iteration: a list in the generated code,
    given the shape of the array it would make."""
    stack = real_symbol(result.names.fresh(hint))
    if result.shapes is not None:
        length = loop.length if isinstance(loop.length, int) else 0
        result.shapes[stack] = (length, *arrays.shape_of(value, result.shapes))
    return stack


def _list_stacks(result: Graph) -> set[Any]:
    return {s for _, expr in result.nodes if isinstance(expr, Loop) for s in expr.stacked}


def _zeros_like(result: Graph, symbol: Any) -> Expr:
    """A carry's zero start: an array of zeros where the carry is one (a while loop may run no
    iteration, and the adjoint of an array is an array)."""
    shape = () if result.shapes is None else result.shapes[symbol]
    return sympy.S.Zero if not shape else result.add(arrays.Full.make([], (shape, 0.0)))


def _start(result: Graph, value: Expr, symbol: Any) -> Expr:
    """A derivative carry's start `value` in the shape of `symbol` (an adjoint from a reduction
    arrives smaller), as a value of the program: a loop starts from atoms, so that the
    derivative of the start (second order) goes through nodes, whose adjoints know their
    shapes (`1 + 2 * dfdt2 * t1` reaches the scalar dfdt2 summed)."""
    if value == 0:
        return _zeros_like(result, symbol)
    if result.shapes is not None:
        value = arrays.broadcast(
            value, arrays.shape_of(value, result.shapes), result.shapes[symbol], result.add
        )
    return result.add(value)


def _reverse_loop(
    label: Expr, loop: Loop, finals: dict[Any, Expr], active: set[Any], prefix: str, result: Graph
) -> list[tuple[Any, Expr]]:
    """Append the reverse pass of `loop` to `result`: a loop over the iterations from the
    last to the first, recomputing each from its saved carries and accumulating the adjoints
    of the values the loop reads. Returns (value read, its adjoint) pairs."""
    inputs, _ = _active_body_inputs(loop, active)
    saved = _saved_carries(label, loop, result)
    # the reverse body recomputes an iteration: its inputs renamed, since the loop's own
    # input names hold its final values in the enclosing program
    index = _fresh(result, loop.index, integer=True)
    rename: dict[Any, Any] = {loop.index: index}
    rename.update({c: _fresh(result, c) for c in loop.carries})
    rename.update({item: _fresh(result, item) for item, _ in loop.items})
    primal = _copy_body(loop.body, result, rename)
    primal.memo.update({e: s for e, s in result.memo.items()})
    outside = sorted(invariants(loop.body) & active, key=str)
    # the loop's adjoints take the plain names (dfdr: the sum over iterations); an
    # iteration's own adjoints are named after them
    sums = {v: _fresh(result, f"d{prefix}d{v}", like=v) for v in outside}
    carried = [c for c in loop.carries if c in inputs]
    bars = {c: _fresh(result, f"d{prefix}d{c}", like=c) for c in carried}
    seeds: list[Expr] = [bars.get(c, sympy.S.Zero) for c in loop.carries]
    items: list[tuple[Any, Any]] = [(rename[c], saved[c]) for c in loop.carries]
    items += [(rename[item], stack) for item, stack in loop.items]
    for stack in loop.stacked:
        adjoint = finals.get(stack, sympy.S.Zero)
        if adjoint == 0:
            seeds.append(sympy.S.Zero)
            continue
        bar = _fresh(result, f"d{prefix}d{stack}_item", like=stack)
        if result.shapes is not None:
            result.shapes[bar] = result.shapes[stack][1:]
        seeds.append(bar)
        items.append((bar, result.add(adjoint, f"d{prefix}d{stack}")))
    wrt = [rename[c] for c in carried] + [rename[i] for i, s in loop.items if s in active] + outside
    primal_nodes = len(primal.nodes)
    body = reverse(primal, wrt, seeds, prefix=prefix, into=primal)
    grads = dict(zip(wrt, body.outputs))
    sums = {v: sums[v] for v in outside if grads[v] != 0}
    updates = [grads[rename[c]] for c in carried]
    updates += [body.add(sums[v] + grads[v], f"d{prefix}d{v}_sum") for v in sums]
    stacked_items = [(i, s) for i, s in loop.items if s in active and grads[rename[i]] != 0]
    stacked = [_fresh(result, f"d{prefix}d{s}", like=s) for _, s in stacked_items]
    if not updates and not stacked:
        return []
    body.outputs = (*updates, *(grads[rename[i]] for i, _ in stacked_items))
    if result.shapes is not None:  # on arrays: save what the derivative reads, not recompute it
        residuals = _residuals(body, primal_nodes)
        if residuals:
            stacks = _saved(label, residuals, result)
            body.nodes = [(s, e) for s, e in body.nodes if s not in set(residuals)]
            items += [(r, stacks[r]) for r in residuals]
    body.inputs = (index, *bars.values(), *sums.values(), *(item for item, _ in items))
    reverse_loop = Loop(
        body=body,
        index=index,
        carries=(*bars.values(), *sums.values()),
        init=(
            *(_start(result, finals.get(c, sympy.S.Zero), c) for c in carried),
            *(_zeros_like(result, v) for v in sums),
        ),
        items=tuple(items),
        stacked=tuple(stacked),
        length=loop.count if loop.count is not None else loop.length,
        reverse=not loop.reverse,
        line=loop.line,
    )
    label = real_symbol(result.names.temp("loop"))
    result.nodes.append((label, reverse_loop))
    if loop.line is not None:
        result.lines[label] = (*loop.line[:2], "derivative")
    pairs: list[tuple[Any, Expr]] = []
    for c, bar in bars.items():
        init = loop.init[loop.carries.index(c)]
        pairs += [(s, _chain(init, s, bar)) for s in _reads(init)]
    pairs += [(v, sums[v]) for v in sums]
    lists = _list_stacks(result)
    for (_, stack), bar in zip(stacked_items, stacked):
        if result.shapes is not None and stack not in lists:  # rows of an array: an array of rows
            padded = loop.count is not None  # stopped early: fewer rows than the array's
            bar = result.add(arrays.AsArray.make([bar], (result.shapes[stack], padded)))
        pairs.append((stack, bar))
    return pairs


def _chain(init: Expr, symbol: Any, bar: Expr) -> Expr:
    """The adjoint a carry's initial value passes to a symbol it is computed from."""
    return bar if init == symbol else bar * local_partial(init, symbol)


def _forward_loop(loop: Loop, dot: dict[Expr, Expr], result: Graph) -> Loop:
    """`loop` carrying the tangents of its values too (those in `dot` give them)."""
    known = set(dot)
    inputs, _ = _active_body_inputs(loop, known)
    outside = sorted(invariants(loop.body) & known, key=str)
    carried = [c for c in loop.carries if c in inputs]
    tangents = {c: _fresh(result, f"d{c}", like=c) for c in carried}
    item_tangents = {
        item: _fresh(result, f"d{item}", like=item) for item, stack in loop.items if stack in known
    }
    body = _copy_body(loop.body, result)
    wrt = [*carried, *item_tangents, *outside]
    given = [*tangents.values(), *item_tangents.values(), *(dot[v] for v in outside)]
    tangent_body = forward(loop.body, wrt, given, into=body)
    n = len(loop.carries)
    d_updates = [tangent_body.outputs[loop.carries.index(c)] for c in carried]
    d_stacked = list(tangent_body.outputs[n:])
    moving = [(s, d) for s, d in zip(loop.stacked, d_stacked) if d != 0]
    stacks = {s: _fresh(result, f"d{s}", like=s) for s, _ in moving}
    body.outputs = (*loop.updates, *d_updates, *loop.stacked_values, *(d for _, d in moving))
    body.inputs = (*loop.body.inputs, *tangents.values(), *item_tangents.values())
    new_loop = dataclasses.replace(
        loop,
        body=body,
        carries=(*loop.carries, *tangents.values()),
        init=(
            *loop.init,
            *(_start(result, _tangent_of(loop.init[loop.carries.index(c)], dot, result), c) for c in carried),
        ),
        items=(
            *loop.items,
            *((t, dot[s]) for (i, s) in loop.items if i in item_tangents for t in [item_tangents[i]]),
        ),
        stacked=(*loop.stacked, *stacks.values()),
    )
    dot.update(tangents)
    dot.update({s: stacks[s] for s, _ in moving})
    return new_loop


def _tangent_of(init: Expr, dot: dict[Expr, Expr], result: Graph) -> Expr:
    """The tangent of a carry's initial value (an atom of the enclosing program)."""
    if init in dot:
        return dot[init]
    terms = [local_partial(init, s) * dot[s] for s in _reads(init) if s in dot]
    return result.add(sympy.Add(*terms)) if terms else sympy.S.Zero
