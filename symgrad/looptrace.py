"""Tracing of loops kept as loops: `for i in range(N)` and `while` over a body traced once.

A mixin of the Tracer. The body of a long `for` loop (or any `while` loop) is interpreted once,
with each name it assigns standing for its value at the start of an iteration (a carry): the
result is a `graph.Loop` node whose body program the later stages differentiate and print as
a loop, so that decoration, memory and the generated source no longer grow with the trip
count. A body that needs the iteration's index as a Python int (`xs[i]` of a tuple,
`range(i)`), or that changes anything but numbers, is unrolled instead, and the generated
source says why.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from . import arrays, complexes, jumps, rules
from .errors import SymgradError, TracingError
from .graph import TRIP_COUNT, Graph, Loop, defined_by, reads_of, real_symbol
from .itertrace import ALIAS

# `for` loops with at least this many iterations are kept as loops by default (loops="auto");
# shorter ones unroll, which lets SymPy simplify across iterations and costs little.
KEEP_FROM = 64
# A body that reads a tuple at an index computed from the loop's (`w[i % 10]`) is kept from
# this many iterations on: its adjoint is one `where` per element and iteration, which makes
# the kept loop ~4x slower to call than the unrolled one (W4); unrolling costs ~1.8 ms of
# decoration per iteration, so from here on a kept loop is the better default.
KEEP_PICKED_FROM = 1000
LOOP_MODES = ("auto", "keep", "unroll")

# Statements a kept loop's body may not hold: they leave the loop or the function.
_LEAVING = (ast.Return, ast.Break, ast.Continue, ast.Raise, ast.Yield, ast.YieldFrom, ast.Try)


NOT_EVALUATED = object()  # row_binding did not evaluate the loop's iterable


class _NotKept(Exception):  # noqa: N818 - the reason a loop is unrolled instead
    pass


class _Grows(_NotKept):
    """A carry's shape changes in the first iteration (`s = 0.0` before `s = s + x`): a `for`
    loop runs that iteration unrolled and keeps the rest."""


@dataclass
class RowSink:
    """An array a kept body writes one row of per iteration and does not read (`hs[t] = h`):
    the rows are a stack of the loop, written into the array after it."""

    name: str
    array: Any
    path: Any
    written: tuple[int, int, Any] | None = None  # (first row, stride, the row's value)


@dataclass
class Binding:
    """How a kept `for` binds its variables in each iteration: `counter` to the range's
    value (or enumerate's count), each of `rows` (name, array) to the array's row."""

    counter: str | None = None
    rows: list[tuple[str, Any]] = field(default_factory=list)
    items: range = range(0)

    def names(self) -> list[str]:
        return [*([self.counter] if self.counter else []), *(name for name, _ in self.rows)]


@dataclass
class Iteration:
    """What a kept `for` loop's body knows while it is traced: its index runs over
    `start + step * k` for k < length, and the rows of arrays it reads at that index
    (`xs[t]`) are its items, by (array, offset, stride)."""

    index: sympy.Symbol
    start: int
    step: int
    length: int
    items: dict[tuple[Any, int, int], tuple[sympy.Symbol, Any]] = field(default_factory=dict)

    def stepping(self, value: sympy.Expr) -> tuple[int, int] | None:
        """(first, stride) where `value` is `first + stride * index` with ints, stride != 0."""
        first = value.subs(self.index, 0)
        stride = value.subs(self.index, 1) - first
        if not (first.is_Integer and stride.is_Integer and stride != 0):
            return None
        if sympy.expand(value - first - stride * self.index) != 0:
            return None
        return int(first), int(stride)

    def span(self, first: int, stride: int) -> tuple[Any, ...]:
        """The encoded index of the rows `first, first + stride, ...` the loop goes over."""
        stop = first + stride * self.length
        return (("slice", first or None, None if stop < 0 else stop, None if stride == 1 else stride),)


def assigned_names(body: Sequence[ast.stmt]) -> list[str]:
    """The names a block of statements assigns (not those bound inside comprehensions), in
    order of first assignment."""
    found: dict[str, None] = {}

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.ListComp, ast.DictComp, ast.GeneratorExp, ast.SetComp, ast.Lambda)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.setdefault(node.id, None)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for stmt in body:
        visit(stmt)
    return list(found)


def _leaves(body: Sequence[ast.stmt], nested: bool = False) -> ast.AST | None:
    """The first statement that would leave a kept loop's body early; the `break` and
    `continue` of a loop nested in it (`nested`) leave only that loop."""
    for stmt in body:
        if isinstance(stmt, (ast.Break, ast.Continue)):
            if not nested:
                return stmt
        elif isinstance(stmt, (ast.For, ast.While)):
            found = _leaves(stmt.body, nested=True) or _leaves(stmt.orelse, nested)
            if found is not None:
                return found
        elif isinstance(stmt, (ast.If, ast.With)):
            found = _leaves(stmt.body, nested) or _leaves(getattr(stmt, "orelse", []), nested)
            if found is not None:
                return found
        else:
            found = next((node for node in ast.walk(stmt) if isinstance(node, _LEAVING)), None)
            if found is not None:
                return found
    return None


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, sympy.Expr)


class LoopTracing:
    """Keeping `for` and `while` loops as `Loop` nodes (mixed into the Tracer)."""

    graph: Graph
    frame: Any

    def keeps_for(self, stmt: ast.For, items: Any) -> bool:
        """Whether `for` over `items` is kept as a loop (else it unrolls)."""
        mode = self.graph.loops
        if mode == "unroll" or not isinstance(items, range):
            return False
        if not isinstance(stmt.target, ast.Name) or not items:
            return False
        return mode == "keep" or len(items) >= KEEP_FROM

    def row_binding(self, stmt: ast.For) -> tuple[Binding | None, Any]:
        """`for row in X`, `for a, b in zip(X, Y)`, `for i, row in enumerate(X)` over traced
        arrays of one length (at least KEEP_FROM rows, any with loops="keep"), in a program
        traced for shapes: the loop's variables bound to rows (its items), or None; and the
        value of `stmt.iter` where it was evaluated (else NOT_EVALUATED), so that it is
        evaluated once."""
        source = stmt.iter
        if self.graph.loops == "unroll" or self.graph.shapes is None:
            return None, NOT_EVALUATED
        if isinstance(source, ast.Call) and isinstance(source.func, ast.Name) and not source.keywords:
            # zip / enumerate of names: their arrays are read here, the call itself only if unrolled
            called = self._builtin(source.func)
            plain = all(isinstance(a, (ast.Name, ast.Attribute)) for a in source.args)
            target = stmt.target
            if called is enumerate and len(source.args) == 1 and plain and _names(target, 2):
                assert isinstance(target, ast.Tuple)
                counter, row = (e.id for e in target.elts)  # type: ignore[attr-defined]
                return self._rows_of([row], [self.expr(source.args[0])], counter), NOT_EVALUATED  # type: ignore[attr-defined]
            if called is zip and source.args and plain and _names(target, len(source.args)):
                assert isinstance(target, ast.Tuple)
                values = [self.expr(a) for a in source.args]  # type: ignore[attr-defined]
                return self._rows_of([e.id for e in target.elts], values, None), NOT_EVALUATED  # type: ignore[attr-defined]
            return None, NOT_EVALUATED
        value = self.expr(source)  # type: ignore[attr-defined]
        if not isinstance(stmt.target, ast.Name):
            return None, value
        return self._rows_of([stmt.target.id], [value], None), value

    def _builtin(self, func: ast.Name) -> Any:
        try:
            return self.expr(func)  # type: ignore[attr-defined]
        except SymgradError:
            return None

    def _rows_of(self, names: list[str], values: list[Any], counter: str | None) -> Binding | None:
        shape = self.shape  # type: ignore[attr-defined]
        if not all(isinstance(v, sympy.Basic) and v.free_symbols for v in values):
            return None
        lengths = {shape(v)[0] if shape(v) else 0 for v in values}
        if len(lengths) != 1 or not (n := lengths.pop()):
            return None  # zip of unequal lengths stops at the shortest: unrolled
        if self.graph.loops != "keep" and n < KEEP_FROM:
            return None
        rows = [(name, arrays.atom(v, self.graph.add)) for name, v in zip(names, values)]
        return Binding(counter=counter, rows=rows, items=range(n))

    def keep_rows(self, stmt: ast.For, binding: Binding, test: ast.expr | None = None) -> bool:
        """Trace a `for` over the rows of arrays as one Loop node (the rows are its items);
        False when its body cannot be kept, with the reason recorded for the generated source."""
        try:
            self._keep(stmt, stmt.body, binding.items, test, binding)
        except _NotKept as reason:
            self._unrolled_because(stmt, str(reason))
            return False
        return True

    def keep_for(self, stmt: ast.For, items: Sequence[Any], test: ast.expr | None = None) -> bool:
        """Trace `for target in items:` as one Loop node (that stops early where `test`, a
        `break` flag's, fails); False (nothing changed) when its body cannot be kept, with the
        reason recorded for the generated source."""
        assert isinstance(stmt.target, ast.Name) and isinstance(items, range)
        try:
            self._keep(stmt, stmt.body, items, test, Binding(counter=stmt.target.id))
            return True
        except _Grows:
            pass
        except _NotKept as reason:
            self._unrolled_because(stmt, str(reason))
            return False
        # the first iteration gives the carries their shapes (`s = 0.0` before `s = s + x`):
        # it runs unrolled, and the rest is kept
        self._unroll_items(stmt, items[:1])
        try:
            self._keep(stmt, stmt.body, items[1:], test, Binding(counter=stmt.target.id))
        except _NotKept as reason:
            grows = " in every iteration" if isinstance(reason, _Grows) else ""
            self._unrolled_because(stmt, f"{reason}{grows}")
            self._unroll_items(stmt, items[1:], test)
        return True

    def _unrolled_because(self, stmt: ast.For, reason: str) -> None:
        self.graph.unrolled_loops.append((self.frame.source.filename, stmt.lineno, reason))

    def _unroll_items(self, stmt: ast.For, items: range, test: ast.expr | None = None) -> None:
        self.count_unrolled(len(items), stmt)  # type: ignore[attr-defined]
        body = stmt.body if test is None else [ast.copy_location(ast.If(test, stmt.body, []), stmt)]
        for item in items:
            self.assign(stmt.target, item)  # type: ignore[attr-defined]
            if self.block(body):  # type: ignore[attr-defined]
                raise AssertionError("a kept loop's body has no return")  # checked by _keep

    def stmt_While(self, stmt: ast.While) -> bool:
        if stmt.orelse:
            raise self.error(  # type: ignore[attr-defined]
                TracingError, stmt, "`while ... else` is not supported", "remove the else clause"
            )
        if any(True for _ in jumps.jumps(stmt.body)):  # `break`, `continue`: flags and guards
            rewritten = jumps.rewrite(stmt)
            self.block(rewritten.before)  # type: ignore[attr-defined]
            test = stmt.test if rewritten.test is None else _both(rewritten.test, stmt.test)
            stmt = ast.copy_location(ast.While(test, rewritten.body, []), stmt)
        try:
            self._keep(stmt, stmt.body, None, stmt.test)
        except _NotKept as reason:
            return self._unroll_while(stmt, str(reason))
        return False

    def _unroll_while(self, stmt: ast.While, reason: str | None) -> bool:
        """A `while` whose condition is known while tracing: run it as Python would."""
        while True:
            cond = self.condition(stmt.test)  # type: ignore[attr-defined]
            if isinstance(cond, sympy.Basic) and not isinstance(cond, sympy.logic.boolalg.BooleanAtom):
                why = f" ({reason})" if reason else ""
                raise self.error(  # type: ignore[attr-defined]
                    TracingError,
                    stmt,
                    "this `while` loop's condition depends on traced values, and its body cannot be "
                    f"kept as a loop{why}",
                    "compute numbers or arrays in the loop's body (no lists or tuples), or "
                    "write `for k in range(N):` with the body under `if <condition>:`",
                )
            if not bool(cond):
                return False
            self.count_unrolled(1, stmt)  # type: ignore[attr-defined]
            if self.block(stmt.body):  # type: ignore[attr-defined]
                return True

    def _keep(
        self,
        stmt: ast.For | ast.While,
        body_stmts: list[ast.stmt],
        items: range | None,
        test: ast.expr | None,
        binding: Binding | None = None,
    ) -> None:
        """Trace the body once into a Loop node: over `items` with the loop's variables bound
        as `binding` says (a `for`), while `test` holds (a `while`, or a `for` with `break`)."""
        leaving = _leaves(body_stmts)
        if leaving is not None:
            raise _NotKept(f"its body has `{type(leaving).__name__.lower()}`")
        outer, env = self.graph, self.frame.env
        binding = binding or Binding()
        bound = binding.names()
        names = [n for n in assigned_names(body_stmts) if n not in bound]
        for name in names:
            if name in env and not _is_number(env[name]):
                raise _NotKept(f"`{name}` holds a {type(env[name]).__name__}, not a number")
            if name in env and complexes.is_complex(env[name]):
                raise _NotKept(f"`{name}` holds a complex value (kept loops carry real values)")
        updated = _updated_in_place(body_stmts)
        for row, _ in binding.rows:
            if row in updated:
                raise _NotKept(f"its body updates `{row}` in place, a row of the array it goes over")
        in_place = [n for n in updated if n in names]
        self._check_not_shared(in_place, "at the loop's start")
        # a loop that may stop early leaves its variables at the iteration it stopped in: carried
        carried_vars = list(bound) if test is not None and items is not None else []
        index_name = binding.counter if binding.counter and not binding.rows else "k"
        index = sympy.Symbol(outer.names.fresh(index_name), integer=True)
        carries = tuple(real_symbol(outer.names.fresh(n)) for n in [*names, *carried_vars])
        body = _body_graph(outer, index, carries)
        saved_env = dict(env)
        # an `if` in the body sets the path for its branches and restores it when done; a
        # refusal raised inside the branch leaves the body's path (a symbol of the body's
        # program, undefined outside it), which the unrolled trace would read (`numpy.where(c4,
        # ...)` with c4 never computed): restored below with the environment
        saved_path = self.frame.path
        if outer.shapes is not None:  # a carry has the shape of the value it starts from
            outer.shapes[index] = ()
            shape = self.shape  # type: ignore[attr-defined]
            outer.shapes.update({c: shape(sympy.sympify(env.get(n, 0.0))) for n, c in zip(names, carries)})
            outer.shapes.update({c: () for c in carries[len(names) :]})  # set from their updates
        for name, carry in zip(names, carries):
            env[name] = carry
            env.pop(ALIAS + name, None)
        if items is not None:
            body.iteration = Iteration(index, items.start, items.step, len(items))
            self._bind(binding, body, items)
        sinks = self._sinks(body_stmts, names, bound) if items is not None else []
        if sinks and test is not None:  # the rows after a `break` keep their old values: unrolled
            self.frame.env = saved_env
            raise _NotKept(f"its body writes rows of `{sinks[0].name}` and may stop early (`break`)")
        for sink in sinks:
            env[sink.name] = sink
        self.graph = body
        try:
            condition = None if test is None else self._loop_condition(test)
            self.block(body_stmts)  # type: ignore[attr-defined]
            after = self.frame.env  # an `if` in the body leaves a new dict
            updates = tuple(self._update(body, after.get(name), name) for name in [*names, *carried_vars])
            _check_unchanged(after, saved_env, {*names, *bound, *(sink.name for sink in sinks)})
            self._check_not_shared(in_place, "at the end of an iteration")
            all_names = [*names, *carried_vars]
            _check_shapes(body, carries, updates, all_names, grows=items is not None and not binding.rows)
        except SymgradError as exc:
            self.frame.env, self.frame.path = saved_env, saved_path
            raise _NotKept(exc.message) from None
        except _NotKept:
            self.frame.env, self.frame.path = saved_env, saved_path
            raise
        finally:
            self.graph = outer
            _merge_facts(outer, body)
        written = [sink for sink in sinks if sink.written is not None]
        body.outputs = (*updates, *(sink.written[2] for sink in written))  # type: ignore[index]
        if items is not None and len(items) > 0:  # runs at least once: its invariants can go first
            _hoist_invariants(body, outer)
        init = tuple(outer.add(sympy.sympify(saved_env.get(name, 0.0))) for name in names)
        init += tuple(sympy.S.Zero for _ in carried_vars)
        count = real_symbol(outer.names.fresh("steps")) if test is not None else None
        if count is not None and outer.shapes is not None:
            outer.shapes[count] = ()
        stacks = tuple(real_symbol(outer.names.fresh(f"{sink.name}_rows")) for sink in written)
        for stack, sink in zip(stacks, written):
            assert outer.shapes is not None and sink.written is not None and items is not None
            outer.shapes[stack] = (len(items), *arrays.shape_of(sink.written[2], outer.shapes))
        loop = Loop(
            body=body,
            index=index,
            carries=carries,
            init=init,
            items=tuple(body.iteration.items.values()) if body.iteration is not None else (),
            length=None if items is None else len(items),
            stacked=stacks,
            condition=condition,
            count=count,
            line=(self.frame.source.filename, stmt.lineno, stmt.col_offset + 1),
        )
        label = real_symbol(outer.names.temp("loop"))
        outer.nodes.append((label, loop))
        outer.lines[label] = (self.frame.source.filename, stmt.lineno)  # for its comment
        for carry, reach in _carry_reach(outer, loop).items():
            outer.sources[carry] = reach
        env = self.frame.env = dict(saved_env)
        env.update({name: carry for name, carry in zip([*names, *carried_vars], carries)})
        for name in names:
            env.pop(ALIAS + name, None)
        if items is not None and not carried_vars:
            self._bind_last(binding, items, stmt)
        for stack, sink in zip(stacks, written):  # the rows written, into a copy of the array
            assert sink.written is not None and items is not None and outer.shapes is not None
            first, stride, _ = sink.written
            rows = outer.add(arrays.AsArray.make([stack], (outer.shapes[stack], False)), sink.name)
            if (first, stride, len(items)) == (0, 1, arrays.shape_of(sink.array, outer.shapes)[0]):
                env[sink.name] = rows  # every row written: the array is the rows
                continue
            span = body.iteration.span(first, stride)
            into = arrays.atom(sink.array, outer.add)
            env[sink.name] = outer.add(arrays.SetItem.make([into, rows], span), sink.name)

    def _sinks(
        self, body_stmts: Sequence[ast.stmt], names: Sequence[str], bound: Sequence[str]
    ) -> list[RowSink]:
        """The arrays the body only writes rows of (`hs[t] = h`), never reading or rebinding
        them, and that share their memory with no other name."""
        env, found = self.frame.env, []
        for name in _row_writes(body_stmts):
            value = env.get(name)
            if name in names or name in bound or not isinstance(value, sympy.Basic) or not value.free_symbols:
                continue
            if not self.shape(value):  # type: ignore[attr-defined]
                continue
            memory = env.get(ALIAS + name)
            if memory is not None and (self.sharers(name) or id(memory.root) in self.frame.outer):  # type: ignore[attr-defined]
                continue  # NumPy writes through to the other names: the unrolled loop follows
            found.append(RowSink(name, value, self.frame.path))
        return found

    def sink_write(self, sink: RowSink, target: ast.Subscript, value: Any) -> None:
        """`hs[t] = v` in a kept body: the row at the loop's index, one per iteration."""
        graph = self.graph
        iteration = graph.iteration
        text = ast.unparse(target)
        if sink.written is not None or self.frame.path != sink.path or iteration is None:
            raise SymgradError(
                f"`{text} = ...` writes a row more than once per iteration, or under a condition"
            )
        shape = self.shape(sink.array)  # type: ignore[attr-defined]
        index = _expanded(self.expr(target.slice), graph) if _mentions_names(target.slice) else None  # type: ignore[attr-defined]
        if isinstance(target.slice, (ast.Slice, ast.Tuple)) or not isinstance(index, sympy.Expr):
            raise SymgradError(f"`{text} = ...` writes a part of the array not at the loop's index")
        steps = iteration.stepping(index)
        if steps is None:
            raise SymgradError(f"`{text} = ...` writes at an index that does not step with the loop")
        first, stride = steps
        last = first + stride * (iteration.length - 1)
        if not (min(first, last) >= 0 and max(first, last) < shape[0]):
            raise SymgradError(f"`{text} = ...` writes outside the array in some iteration")
        row = sympy.sympify(value)
        assert graph.shapes is not None  # rows are written in programs traced for shapes
        row = arrays.broadcast(row, arrays.shape_of(row, graph.shapes), shape[1:], graph.add)
        sink.written = (first, stride, arrays.atom(row, graph.add))

    def _bind(self, binding: Binding, body: Graph, items: range) -> None:
        """The loop's variables in the body: the counter `start + step * index`, each row the
        loop's item (a view of its array, as in NumPy)."""
        env, index = self.frame.env, body.iteration.index
        if binding.counter is not None:
            first, step = items.start, items.step
            env[binding.counter] = index if (first, step) == (0, 1) else first + step * index
        for name, rows in binding.rows:
            env[name] = self._item_of(rows, index, body, [body], name=name)
            self._share_item(ast.Name(id=name, ctx=ast.Store()), None, False)  # type: ignore[attr-defined]

    def _bind_last(self, binding: Binding, items: range, stmt: ast.stmt) -> None:
        """Python leaves a loop's variables bound to the last iteration's values."""
        env = self.frame.env
        if binding.counter is not None:
            env[binding.counter] = items[-1]
        for name, rows in binding.rows:
            env[name] = self.op(arrays.Index, [rows], (len(items) - 1,), None, stmt)  # type: ignore[attr-defined]

    def _check_not_shared(self, names: list[str], when: str) -> None:
        """A kept body's carries are values: one it updates in place (`h += v`, `h[i] = v`)
        must not share its array with another name, which NumPy would change too (in every
        iteration, where the kept loop would not)."""
        env = self.frame.env
        for name in names:
            memory = env.get(ALIAS + name)
            if memory is None:
                continue
            others = self.sharers(name)  # type: ignore[attr-defined]
            if not (others or id(memory.root) in self.frame.outer or memory.root.from_sequence):
                continue
            if self.graph.shapes is None:  # numbers rebind; arrays are traced again for shapes
                self.graph.aliased = True
                continue
            if self.graph.rebind or not self.shape(env[name]):  # type: ignore[attr-defined]
                continue
            visible = [o for o in others if not o.startswith("\0")]  # not the tracer's own keys
            shared = (
                f"`{visible[0]}`"
                if visible
                else "an item of a tuple or list"
                if others
                else "an array passed in"
            )
            raise _NotKept(
                f"its body updates `{name}` in place, and {when} `{name}` shares its array with {shared} "
                f"(if {shared} need not change with it, write `{name} = {name}.copy()` before the loop to keep it)"
            )

    def loop_item(self, base: Any, node: ast.Subscript) -> sympy.Symbol | None:
        """`xs[t]` in a kept loop's body, of an array from outside the body at an index that
        steps with the loop (`t`, `t + 1`, `2 * t`, `-1 - t`): the loop's item, one row per
        iteration (a loop reads it as `lax.scan` reads its `xs`), else None."""
        graph = self.graph
        if graph.iteration is None or graph.shapes is None or not isinstance(base, sympy.Symbol):
            return None  # (without shapes, indexing asks for a trace with them)
        if isinstance(node.slice, ast.Tuple) and node.slice.elts:
            # `xs[t, 0]`, `X[t, 1:]`: a part of the row; `X[:, t]`: a row of the array with
            # that axis first (a column); `X[:, t, 0]`: a part of it
            elements = node.slice.elts
            position = next((k for k, e in enumerate(elements) if _mentions_names(e)), len(elements))
            if position == len(elements) or any(isinstance(e, ast.Starred) for e in elements):
                return None
            before = elements[:position]  # constant parts (`X[0, t]`): taken once, before the loop
            if not all(
                isinstance(e, ast.Slice) or (isinstance(e, ast.Constant) and type(e.value) is int)
                for e in before
            ):
                return None
            axis = sum(isinstance(e, ast.Slice) for e in before)
            taken = None
            if not all(_whole(e) for e in before):
                shape = self.shape(base)  # type: ignore[attr-defined]
                if len(shape) <= len(before):
                    return None
                whole = ast.copy_location(
                    ast.Subscript(node.value, ast.Tuple(list(before), ast.Load()), ast.Load()), node
                )
                taken = self.index_of(base, whole)  # type: ignore[attr-defined]
            row = self._loop_row(base, elements[position], axis, taken)
            rest = elements[position + 1 :]
            if row is None or not rest:
                return row
            lead = [ast.Slice() for _ in range(axis)]  # the axes before `axis` stay where they were
            part = ast.copy_location(
                ast.Subscript(node.value, ast.Tuple([*lead, *rest], ast.Load()), ast.Load()), node
            )
            index = self.index_of(row, part)  # type: ignore[attr-defined]
            return self.op(arrays.Index, [row], index, None, node)  # type: ignore[attr-defined]
        return self._loop_row(base, node.slice)

    def _loop_row(self, base: Any, item: ast.expr, axis: int = 0, taken: Any = None) -> Any:
        """The loop's item for `base[..., item, ...]` with `item` stepping with a kept loop's
        index at `axis` of `base[taken]` (`taken`: the constant index before it, or None)."""
        graph = self.graph
        if isinstance(item, (ast.Slice, ast.Starred)) or not _mentions_names(item):
            return None
        value = _expanded(self.expr(item), graph)  # type: ignore[attr-defined]
        if not isinstance(value, sympy.Expr) or not value.free_symbols:
            return None
        level: Graph | None = graph
        inside: list[Graph] = []
        while level is not None and level.iteration is not None:
            inside.append(level)
            if value.free_symbols == {level.iteration.index}:
                if axis or taken is not None:  # the part of the array with that axis first, made once
                    if inside == [level] and _defines(level, base):
                        _hoist_invariants(level, level.parent)  # type: ignore[arg-type]
                    if any(_defines(g, base) for g in inside):
                        return None
                    assert level.parent is not None
                    name = str(base)
                    if taken is not None:
                        base = level.parent.add(arrays.Index.make([base], taken), f"{name}_part")
                    ndim = len(self.shape(base))  # type: ignore[attr-defined]
                    if ndim <= axis:
                        return None
                    if axis:
                        order = (axis, *(k for k in range(ndim) if k != axis))
                        base = level.parent.add(arrays.Transpose.make([base], order), f"{name}_by_{axis}")
                return self._item_of(base, value, level, inside)
            level = level.parent
        return None

    def loop_pick(self, base: tuple[Any, ...], node: ast.Subscript) -> Any:
        """`w[i % 10]` in a kept loop's body, of a tuple of numbers (or of arrays of one
        shape) at an index computed from the loop's index: the element the index picks in
        each iteration (`rules.Pick`), else None. Every index the loop takes is checked to be
        within the tuple."""
        graph = self.graph
        if graph.iteration is None or isinstance(node.slice, ast.Slice) or not base:
            return None
        if not _mentions_names(node.slice) or not all(_is_number(v) for v in base):
            return None
        index = self.expr(node.slice)  # type: ignore[attr-defined]
        value = _expanded(index, graph)
        if not isinstance(value, sympy.Expr) or not value.free_symbols:
            return None
        level: Graph | None = graph
        while level is not None and level.iteration is not None:
            if value.free_symbols == {level.iteration.index}:
                break
            level = level.parent
        else:
            return None
        if graph.loops == "auto" and level.iteration.length < KEEP_PICKED_FROM:
            raise SymgradError(
                f"`{ast.unparse(node)}` reads a tuple at an index computed from the loop's, and below "
                f"{KEEP_PICKED_FROM:,} iterations the unrolled loop runs faster",
                hint='loops="keep" keeps it',
            )
        positions = _positions(value, level.iteration)
        if positions is None:
            return None
        n = len(base)
        if positions.min() < -n or positions.max() >= n:
            return None  # some iteration indexes past the end: Python's IndexError is the tracer's
        if graph.shapes is not None and len({self.shape(sympy.sympify(v)) for v in base}) > 1:  # type: ignore[attr-defined]
            return None
        if positions.min() < 0:
            index = index + n if positions.max() < 0 else sympy.Mod(index, n)
        return graph.add(rules.Pick(sympy.sympify(index), *(sympy.sympify(v) for v in base)))

    def _item_of(
        self, base: sympy.Symbol, value: sympy.Expr, body: Graph, inside: list[Graph], name: str | None = None
    ) -> Any:
        iteration, outer = body.iteration, body.parent
        assert outer is not None and body.shapes is not None
        if inside == [body] and _defines(body, base):  # `xs[:, 1][t]`: computed in the body, but
            _hoist_invariants(body, outer)  # maybe from values of outside only: then before it
        if any(_defines(g, base) for g in inside):
            return None  # computed in the loop: an index into a value of this iteration
        steps = iteration.stepping(value)
        shape = body.shapes[base]
        if steps is None or not shape:
            return None
        first, stride = steps
        last, rows = first + stride * (iteration.length - 1), shape[0]
        if min(first, last) < 0 and max(first, last) < 0:
            first, last = first + rows, last + rows
        if not (min(first, last) >= 0 and max(first, last) < rows):
            return None  # some iteration reads out of bounds: NumPy's IndexError is the tracer's
        key = (base, first, stride)
        if key not in iteration.items:
            whole = first == 0 and stride == 1 and iteration.length == rows
            span = iteration.span(first, stride)
            stack = base if whole else outer.add(arrays.Index.make([base], span), f"{base}_rows")
            item = real_symbol(body.names.fresh(name or f"{base}_{iteration.index}"))
            body.shapes[item] = shape[1:]
            body.inputs = (*body.inputs, item)
            body.params = (*body.params, str(item))
            body.sources[item] = outer.inputs_reaching(stack)
            iteration.items[key] = (item, stack)
        return iteration.items[key][0]

    @staticmethod
    def _update(body: Graph, value: Any, name: str) -> Any:
        if not _is_number(value):
            raise _NotKept(f"`{name}` becomes a {type(value).__name__}, not a number")
        if complexes.is_complex(value):
            raise _NotKept(f"`{name}` becomes a complex value (kept loops carry real values)")
        return body.add(sympy.sympify(value))

    def _loop_condition(self, test: ast.expr) -> Any:
        cond = self.condition(test)  # type: ignore[attr-defined]
        if not isinstance(cond, sympy.Basic) or isinstance(cond, sympy.logic.boolalg.BooleanAtom):
            raise _NotKept("its condition does not depend on the loop's values")
        return self.graph.add(cond)


def _row_writes(body: Sequence[ast.stmt]) -> list[str]:
    """Names whose only appearances in a block are as the owner of `name[i] = v` (one target)."""
    stores: dict[str, int] = {}
    uses: dict[str, int] = {}
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                    stores[target.value.id] = stores.get(target.value.id, 0) + 1
            if isinstance(node, ast.Name):
                uses[node.id] = uses.get(node.id, 0) + 1
    return [name for name, n in stores.items() if uses.get(name) == n]


def _updated_in_place(body: Sequence[ast.stmt]) -> list[str]:
    """The names whose arrays a block updates in place: `h += v`, `h[i] = v`, `h[i] += v`."""
    found: dict[str, None] = {}
    for stmt in body:
        for node in ast.walk(stmt):
            targets: list[ast.expr] = []
            if isinstance(node, ast.AugAssign):
                targets = [node.target]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                targets = [t for t in targets if isinstance(t, ast.Subscript)]
            for target in targets:
                owner = target.value if isinstance(target, ast.Subscript) else target
                if isinstance(owner, ast.Name):
                    found.setdefault(owner.id, None)
    return list(found)


def _expanded(value: Any, graph: Graph) -> Any:
    """An index value in terms of loop indices: the body nodes it reads written out
    (`t3` for `79 - t` is `79 - t`), through the bodies of enclosing kept loops."""
    definitions: dict[Any, Any] = {}
    level: Graph | None = graph
    while level is not None and level.iteration is not None:
        definitions.update((s, e) for s, e in level.nodes if not isinstance(e, Loop))
        level = level.parent
    for _ in range(16):  # index arithmetic is short; a chain longer than this stays unread
        if not isinstance(value, sympy.Basic) or not value.free_symbols & definitions.keys():
            return value
        value = value.xreplace(definitions)
    return value


def _positions(value: sympy.Expr, iteration: Iteration) -> Any:
    """The values an index expression of a loop's index takes over the loop's iterations (an
    int array), or None when it is not an integer function of the index."""
    steps = np.arange(iteration.length)
    try:
        values = sympy.lambdify(iteration.index, value, "numpy")(steps)
    except (TypeError, ValueError, NameError, ZeroDivisionError):
        return None
    values = np.broadcast_to(np.asarray(values), steps.shape)
    if values.dtype.kind not in "iu" and not (
        values.dtype.kind == "f" and np.all(values == np.round(values))
    ):
        return None
    return values.astype(np.int64)


def _hoist_invariants(body: Graph, outer: Graph) -> None:
    """Move the body's values that no iteration changes (`0.01 * r`, `np.cos(w)`: computed from
    values read from outside only) before the loop, where they are computed once; the reverse
    loop then reads them too instead of computing them again."""
    varying: set[Any] = set(body.inputs)
    kept: list[tuple[Any, Any]] = []
    for symbol, expr in body.nodes:
        if isinstance(expr, Loop) or reads_of(expr) & varying:
            kept.append((symbol, expr))
            varying.update(defined_by(symbol, expr))
            continue
        outer.nodes.append((symbol, expr))
        outer.memo.setdefault(expr, symbol)
        if symbol in body.lines:
            outer.lines[symbol] = body.lines[symbol]
    body.nodes = kept


def _names(target: ast.expr, n: int) -> bool:
    """Whether a `for` target is a tuple of `n` plain names (`for a, b in zip(X, Y)`)."""
    return (
        isinstance(target, ast.Tuple)
        and len(target.elts) == n
        and all(isinstance(e, ast.Name) for e in target.elts)
    )


def _both(first: ast.expr, second: ast.expr) -> ast.expr:
    return ast.copy_location(ast.BoolOp(op=ast.And(), values=[first, second]), second)


def _whole(element: ast.expr) -> bool:
    """`:` in an index: every element along that axis."""
    return (
        isinstance(element, ast.Slice)
        and element.lower is None
        and element.upper is None
        and element.step is None
    )


def _mentions_names(node: ast.expr) -> bool:
    return any(isinstance(n, ast.Name) for n in ast.walk(node))


def _defines(graph: Graph, symbol: Any) -> bool:
    """Whether a (body) program gives `symbol` its value, as an input or a node."""
    return graph.input_position(symbol) is not None or any(symbol in defined_by(s, e) for s, e in graph.nodes)


def _check_shapes(
    body: Graph, carries: Sequence[Any], updates: Sequence[Any], names: Sequence[str], grows: bool
) -> None:
    """Each carry keeps its shape from one iteration to the next (NumPy would give a value
    that grows, `s = s + x` from `s = 0.0`, its new shape: the loop runs as numbers cannot)."""
    shapes = body.shapes
    if shapes is None:
        return
    read = set().union(
        *(reads_of(e) for _, e in body.nodes), *(getattr(o, "free_symbols", ()) for o in body.outputs)
    )
    for carry, update, name in zip(carries, updates, names):
        shape = arrays.shape_of(update, shapes)
        if carry not in read:  # assigned before it is read: it takes the update's shape
            shapes[carry] = shape
        elif shape != shapes[carry]:
            if name.startswith(jumps.FLAGS):  # a `break`/`continue` flag: its condition's shape
                raise _NotKept(
                    f"the condition of its `break` or `continue` is an array of shape {shape}, whose "
                    "elements may disagree on the iteration to stop or skip in"
                )
            change = f"`{name}` changes shape from {shapes[carry]} to {shape}"
            if grows:
                raise _Grows(change)
            raise _NotKept(
                f"{change}; give it its final shape before the loop (`{name} = np.zeros({shape})`)"
            )


def _check_unchanged(env: dict[str, Any], before: dict[str, Any], assigned: set[Any]) -> None:
    """A kept body may change only the numbers it assigns (lists are values: `xs.append(v)`
    rebinds `xs`, which would be appended to once instead of once per iteration)."""
    for key, value in before.items():
        if not key.startswith(ALIAS) and key not in assigned and env.get(key) is not value:
            if isinstance(value, tuple) and isinstance(env.get(key), tuple):
                raise _NotKept(
                    f"its body adds to the list `{key}` (to keep the loop, write each row into an "
                    f"array made before it: `{key} = np.zeros((N, ...))`, then `{key}[t] = ...`)"
                )
            raise _NotKept(f"its body changes `{key}` in another way than assigning a number")


def _body_graph(outer: Graph, index: sympy.Symbol, carries: tuple[sympy.Symbol, ...]) -> Graph:
    """An empty program for one iteration, sharing the trace's names and records."""
    body = Graph(
        name=outer.name,
        params=(str(index), *(str(c) for c in carries)),
        inputs=(index, *carries),
        names=outer.names,
        memo=dict(outer.memo),  # a value of the enclosing program is read, not computed again
        deps=outer.deps,
        guards=outer.guards,
        skipped=outer.skipped,
        rebind=outer.rebind,
        loops=outer.loops,
        unrolled_loops=outer.unrolled_loops,
        shapes=outer.shapes,  # one dict: the body's names are the program's
        parent=outer,
        complex_values=True,
    )
    body.sources = dict(outer.sources)
    body.unrolled = outer.unrolled
    return body


def _carry_reach(outer: Graph, loop: Loop) -> dict[sympy.Symbol, frozenset[int]]:
    """The inputs each carry's final value is computed from, which shape it as NumPy's:
    iteration by iteration, those of what its update reads (other carries as the iteration
    before left them, items, values from outside), from the starts' before the first. A
    carry that reads no array stays a number (`t = j`), and one set to a constant
    (`y = 4.0`) becomes one, as in NumPy. A loop with a traced trip count (`while`, `break`)
    ends after any number of iterations: a carry whose inputs differ from one iteration to
    the next gets all of them and `TRIP_COUNT` (its shape is that of the iterations taken)."""
    reads: dict[Any, frozenset[Any]] = {}  # body value -> the body inputs and outside values it reads
    for symbol, expr in loop.body.nodes:
        found = frozenset().union(*(reads.get(s, frozenset({s})) for s in reads_of(expr)))
        for made in defined_by(symbol, expr):
            reads[made] = found
    updates = {
        c: frozenset().union(*(reads.get(s, frozenset({s})) for s in getattr(u, "free_symbols", ())))
        for c, u in zip(loop.carries, loop.updates)
    }
    stacks = dict(loop.items)

    def after(reach: dict[Any, frozenset[int]]) -> dict[Any, frozenset[int]]:
        """Each carry's inputs after one more iteration."""
        return {
            c: frozenset().union(
                *(reach[s] if s in reach else outer.inputs_reaching(stacks.get(s, s)) for s in read)
            )
            for c, read in updates.items()
        }

    # Sets of finitely many inputs: the iterations' states repeat, usually from the first on.
    states = [{c: outer.inputs_reaching(start) for c, start in zip(loop.carries, loop.init)}]
    while (state := after(states[-1])) not in states:
        states.append(state)
    first = states.index(state)  # states[first:] repeat in a cycle
    if loop.count is None:  # a `for` loop runs all its iterations: the last state is NumPy's
        n = int(loop.length)
        return states[n] if n < len(states) else states[first + (n - first) % (len(states) - first)]
    reach = {c: frozenset().union(*(s[c] for s in states)) for c in loop.carries}
    return {c: r | {TRIP_COUNT} if any(s[c] != r for s in states) else r for c, r in reach.items()}


def _merge_facts(outer: Graph, body: Graph) -> None:
    """What tracing the body found out about the whole program."""
    outer.unrolled = body.unrolled
    outer.cacheable = outer.cacheable and body.cacheable
    for flag in ("cancelled", "aliased", "per_element", "wrote_through", "branches"):
        setattr(outer, flag, getattr(outer, flag) or getattr(body, flag))
