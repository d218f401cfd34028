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
from typing import Any

import sympy

from .errors import SymgradError, TracingError
from .graph import Graph, Loop, real_symbol
from .itertrace import ALIAS

# `for` loops with at least this many iterations are kept as loops by default (loops="auto");
# shorter ones unroll, which lets SymPy simplify across iterations and costs little.
KEEP_FROM = 64
LOOP_MODES = ("auto", "keep", "unroll")

# Statements a kept loop's body may not hold: they leave the loop or the function.
_LEAVING = (ast.Return, ast.Break, ast.Continue, ast.Raise, ast.Yield, ast.YieldFrom, ast.Try)


class _NotKept(Exception):  # noqa: N818 - the reason a loop is unrolled instead
    pass


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


def _leaves(body: Sequence[ast.stmt]) -> ast.AST | None:
    """The first statement that would leave a kept loop's body early."""
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, _LEAVING):
                return node
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
        if mode == "unroll" or self.graph.shapes is not None or not isinstance(items, range):
            return False
        if not isinstance(stmt.target, ast.Name) or not items:
            return False
        return mode == "keep" or len(items) >= KEEP_FROM

    def keep_for(self, stmt: ast.For, items: Sequence[Any]) -> bool:
        """Trace `for target in items:` as one Loop node; False (nothing changed) when its
        body cannot be kept, with the reason recorded for the generated source."""
        assert isinstance(stmt.target, ast.Name) and isinstance(items, range)
        try:
            self._keep(stmt, stmt.body, items, None)
        except _NotKept as reason:
            self.graph.unrolled_loops.append((self.frame.source.filename, stmt.lineno, str(reason)))
            return False
        return True

    def stmt_While(self, stmt: ast.While) -> bool:
        if stmt.orelse:
            raise self.error(  # type: ignore[attr-defined]
                TracingError, stmt, "`while ... else` is not supported", "remove the else clause"
            )
        if self.graph.shapes is not None:
            return self._unroll_while(stmt, None)
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
                    f"kept as a loop{why}"
                    + ("" if reason else " in a program with array operations (reductions, `@`, indexing)"),
                    "compute numbers in the loop's body (no lists, tuples or array operations), or "
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
    ) -> None:
        leaving = _leaves(body_stmts)
        if leaving is not None:
            raise _NotKept(f"its body has `{type(leaving).__name__.lower()}`")
        outer, env = self.graph, self.frame.env
        target = stmt.target.id if isinstance(stmt, ast.For) and isinstance(stmt.target, ast.Name) else None
        names = [n for n in assigned_names(body_stmts) if n != target]
        for name in names:
            if name in env and not _is_number(env[name]):
                raise _NotKept(f"`{name}` holds a {type(env[name]).__name__}, not a number")
        index = sympy.Symbol(outer.names.fresh(target or "k"), integer=True)
        carries = tuple(real_symbol(outer.names.fresh(n)) for n in names)
        body = _body_graph(outer, index, carries)
        saved_env = dict(env)
        for name, carry in zip(names, carries):
            env[name] = carry
            env.pop(ALIAS + name, None)
        if target is not None:
            assert items is not None
            env[target] = index if (items.start, items.step) == (0, 1) else items.start + items.step * index
        self.graph = body
        try:
            condition = None if test is None else self._loop_condition(test)
            self.block(body_stmts)  # type: ignore[attr-defined]
            after = self.frame.env  # an `if` in the body leaves a new dict
            updates = tuple(self._update(body, after.get(name), name) for name in names)
            _check_unchanged(after, saved_env, {*names, target})
        except SymgradError as exc:
            self.frame.env = saved_env
            raise _NotKept(exc.message) from None
        except _NotKept:
            self.frame.env = saved_env
            raise
        finally:
            self.graph = outer
            _merge_facts(outer, body)
        body.outputs = tuple(updates)
        init = tuple(outer.add(sympy.sympify(saved_env.get(name, 0.0))) for name in names)
        count = real_symbol(outer.names.fresh("steps")) if test is not None else None
        loop = Loop(
            body=body,
            index=index,
            carries=carries,
            init=init,
            length=None if items is None else len(items),
            condition=condition,
            count=count,
            line=(self.frame.source.filename, stmt.lineno, stmt.col_offset + 1),
        )
        label = real_symbol(outer.names.temp("loop"))
        outer.nodes.append((label, loop))
        outer.lines[label] = (self.frame.source.filename, stmt.lineno)  # for its comment
        # a carry may take any value the loop reads in some iteration: it reaches their inputs
        reach = outer.inputs_reaching(sympy.Tuple(*loop.reads()))
        for carry in carries:
            outer.sources[carry] = reach
        env = self.frame.env = dict(saved_env)
        env.update({name: carry for name, carry in zip(names, carries)})
        for name in names:
            env.pop(ALIAS + name, None)
        if target is not None:
            assert items is not None
            env[target] = items[-1]  # Python leaves the last item bound

    @staticmethod
    def _update(body: Graph, value: Any, name: str) -> Any:
        if not _is_number(value):
            raise _NotKept(f"`{name}` becomes a {type(value).__name__}, not a number")
        return body.add(sympy.sympify(value))

    def _loop_condition(self, test: ast.expr) -> Any:
        cond = self.condition(test)  # type: ignore[attr-defined]
        if not isinstance(cond, sympy.Basic) or isinstance(cond, sympy.logic.boolalg.BooleanAtom):
            raise _NotKept("its condition does not depend on the loop's values")
        return self.graph.add(cond)


def _check_unchanged(env: dict[str, Any], before: dict[str, Any], assigned: set[Any]) -> None:
    """A kept body may change only the numbers it assigns (lists are values: `xs.append(v)`
    rebinds `xs`, which would be appended to once instead of once per iteration)."""
    for key, value in before.items():
        if not key.startswith(ALIAS) and key not in assigned and env.get(key) is not value:
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
    )
    body.sources = dict(outer.sources)
    body.unrolled = outer.unrolled
    return body


def _merge_facts(outer: Graph, body: Graph) -> None:
    """What tracing the body found out about the whole program."""
    outer.unrolled = body.unrolled
    outer.cacheable = outer.cacheable and body.cacheable
    for flag in ("cancelled", "aliased", "per_element", "wrote_through", "branches"):
        setattr(outer, flag, getattr(outer, flag) or getattr(body, flag))
