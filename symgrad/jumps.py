"""`break` and `continue` rewritten away: a loop's jumps become flags, and what follows a jump guarded.

`break` sets two flags, `continue` one: `_skip<line>` (the rest of this iteration is skipped)
and `_break<line>` (no iteration follows). The statements after a statement that may jump run
under `if _skip<line> < 0.5:`, so a jump under a traced condition is a branch like any other.
A kept loop then stops where the `break` flag is set, by a condition it checks before each
iteration (`Loop.condition`), and its derivative goes through the iterations taken; an
unrolled loop runs its body under `if _break<line> < 0.5:`. The flags are numbers (0.0 and
1.0), so they are carried by a kept loop like its other values.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# the statements of a loop whose jumps would leave it (a nested loop's jumps are its own)
_LOOPS = (ast.For, ast.While, ast.AsyncFor)
# the prefixes of the flags' names (never a user's: names starting with `_skip`/`_break` and
# a line number are the rewriting's own)
FLAGS = ("_skip", "_break")


@dataclass
class Rewritten:
    """A loop without `break`/`continue`.

    Attributes:
        before: statements to run before the loop (the break flag set to 0.0).
        body: one iteration's statements: the skip flag reset, then the guarded body.
        test: for a loop with `break`, the condition an iteration runs under (`_break < 0.5`).
        guarded: `body` under `if <test>:`, for a loop that runs every iteration (unrolled).
    """

    before: list[ast.stmt]
    body: list[ast.stmt]
    test: ast.expr | None
    guarded: list[ast.stmt]


def jumps(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """The `break` and `continue` statements of a loop's body (not of loops nested in it)."""
    for stmt in body:
        if isinstance(stmt, (ast.Break, ast.Continue)):
            yield stmt
        elif not isinstance(stmt, _LOOPS):
            for field in ("body", "orelse"):
                yield from jumps(getattr(stmt, field, ()))


def rewrite(loop: ast.For | ast.While) -> Rewritten:
    """`loop`'s body with its jumps turned into flags, named after the loop's line."""
    skip, stop = f"{FLAGS[0]}{loop.lineno}", f"{FLAGS[1]}{loop.lineno}"
    breaks = any(isinstance(j, ast.Break) for j in jumps(loop.body))
    body = [_set(skip, 0.0, loop), *_guarded(loop.body, skip, stop)]
    test = _below_half(stop, loop) if breaks else None
    before = [_set(stop, 0.0, loop)] if breaks else []
    guarded: list[ast.stmt] = body
    if test is not None:  # an unrolled loop runs every iteration, each under the break flag
        guarded = [ast.copy_location(ast.If(test=test, body=body, orelse=[]), loop)]
    return Rewritten(before, body, test, guarded)


def _guarded(stmts: Sequence[ast.stmt], skip: str, stop: str) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for k, stmt in enumerate(stmts):
        if isinstance(stmt, ast.Break):
            return [*out, _set(skip, 1.0, stmt), _set(stop, 1.0, stmt)]
        if isinstance(stmt, ast.Continue):
            return [*out, _set(skip, 1.0, stmt)]
        if not any(True for _ in jumps([stmt])):
            out.append(stmt)
            continue
        out.append(_compound(stmt, skip, stop))
        rest = stmts[k + 1 :]
        if rest:  # what follows a statement that may jump runs only if it did not
            guard = ast.If(test=_below_half(skip, rest[0]), body=_guarded(rest, skip, stop), orelse=[])
            out.append(ast.copy_location(guard, rest[0]))
        return out
    return out


def _compound(stmt: ast.stmt, skip: str, stop: str) -> ast.stmt:
    """An `if` or `with` holding a jump, its blocks guarded."""
    new = ast.copy_location(type(stmt)(**{f: getattr(stmt, f) for f in stmt._fields}), stmt)
    new.body = _guarded(stmt.body, skip, stop) or [ast.copy_location(ast.Pass(), stmt)]  # type: ignore[attr-defined]
    if isinstance(stmt, ast.If):
        new.orelse = _guarded(stmt.orelse, skip, stop)  # type: ignore[attr-defined]
    return new


def _set(name: str, value: float, where: ast.AST) -> ast.stmt:
    assign = ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())], value=ast.Constant(value=value))
    return ast.fix_missing_locations(ast.copy_location(assign, where))


def _below_half(name: str, where: ast.AST) -> ast.expr:
    test = ast.Compare(
        left=ast.Name(id=name, ctx=ast.Load()), ops=[ast.Lt()], comparators=[ast.Constant(0.5)]
    )
    return ast.fix_missing_locations(ast.copy_location(test, where))
