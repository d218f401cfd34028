"""Trace stage: interpret a function's AST symbolically into a Graph of SymPy expressions."""

from __future__ import annotations

import ast
import builtins
import dataclasses
import inspect
import logging
import math
import numbers
import operator
import os
import site
import sysconfig
import types
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, cast

import numpy as np
import numpy.typing as npt
import sympy
from sympy.logic.boolalg import Boolean, BooleanAtom

from . import arrays, cache, complexes, jumps, parse, rules, trees
from .arraytrace import (
    ARRAY_CALLS,
    CONSTRUCTORS,
    METHODS,
    PROPERTIES,
    VIEW_METHODS,
    ArrayTracing,
    Method,
    ShapesNeeded,
)
from .arraytrace import _plain as plain_value
from .errors import (
    ShapeError,
    SymgradError,
    TracingError,
    UnknownCalleeError,
    UnsupportedSyntaxError,
)
from .graph import TRIP_COUNT, Graph, real_symbol
from .itertrace import (
    ALIAS as _ALIAS,
)
from .itertrace import (
    LIST_UPDATES,
    SEQUENCE_CALLS,
    UNROLL_LIMIT,
    ContainerMethod,
    IterTracing,
    ListValue,
    kind_of,
    names_bound,
    python_value,
    sympy_constant,
)
from .looptrace import NOT_EVALUATED, LoopTracing, RowSink

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.FloorDiv: lambda a, b: sympy.floor(a / b),
    ast.Mod: sympy.Mod,
}
_STATIC_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    **_BINOPS,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: sympy.Eq,
    ast.NotEq: sympy.Ne,
}
_STATIC_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    **_COMPARE,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_STATIC_ONLY_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def _divided_by_zero(op: ast.operator, left: Any, right: Any) -> Any:
    """NumPy's `left / right` (or `//`, `%`) where `right` is zero and a traced value takes
    part (SymPy makes `x/0` the signless `zoo*x`, printed NaN, and `Mod(x, 0)` raises);
    None otherwise. In IEEE arithmetic `x/0.0` is `x*inf` for every x, 0 and NaN included (and
    `x/-0.0` is `x*-inf`); `x // 0.0` is its floor; `x % 0.0` is NaN."""
    if not isinstance(op, (ast.Div, ast.FloorDiv, ast.Mod)):
        return None
    if not (isinstance(left, sympy.Basic) or isinstance(right, sympy.Basic)):
        return None  # Python numbers only: `1.0 / 0.0` raises, as in the user's function
    denominator = to_sympy(right)
    if not (denominator.is_Number and denominator.is_zero):
        return None
    negative = isinstance(right, float) and math.copysign(1.0, right) < 0  # SymPy has no -0.0
    quotient = to_sympy(left) * (-sympy.oo if negative else sympy.oo)
    if isinstance(op, ast.Div):
        return quotient
    return sympy.floor(quotient) if isinstance(op, ast.FloorDiv) else sympy.nan


def is_traced(value: Any) -> bool:
    """True for SymPy values that depend on an input (numbers and static values are not)."""
    return isinstance(value, sympy.Basic) and bool(value.free_symbols)


def _is_number(value: Any) -> bool:
    """A traced or constant SymPy number (not a condition, not a container)."""
    return isinstance(value, sympy.Expr)


def to_sympy(value: Any) -> Any:
    """A SymPy number for a Python/NumPy number; SymPy values unchanged."""
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, (bool, np.bool_)):
        return sympy.true if value else sympy.false
    if isinstance(value, numbers.Integral):
        return sympy.Integer(int(value))
    if isinstance(value, numbers.Real):
        return sympy.Float(float(value))
    if isinstance(value, numbers.Complex):  # 2j, complex(1, 2), np.complex128(...)
        z = complex(value)
        return sympy.Float(z.real) + sympy.I * sympy.Float(z.imag)
    raise TypeError(type(value).__name__)


def _is_condition(value: Any) -> bool:
    """A SymPy boolean (a relation, And, true); not a symbol, which SymPy counts as one too."""
    return isinstance(value, Boolean) and not isinstance(value, sympy.Symbol)


def as_number(value: Any) -> Any:
    """Booleans in arithmetic count as 1 and 0, as in NumPy: `(x > 0) * x`, `float(x > 0)`."""
    if _is_condition(value):
        if isinstance(value, BooleanAtom):
            return int(bool(value))
        return sympy.Piecewise((1, value), (0, True))
    return value


def _static_value(value: Any) -> Any:
    """Collapse SymPy constants (numbers, true/false) and NumPy scalars back to Python values."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()  # np.where(True, 2.0, 3.0) is a 0-d array: a number to the tracer
    return sympy_constant(value)


@dataclass
class Frame:
    """The state of one function being interpreted (the traced function or an inlined callee)."""

    source: parse.Source
    env: dict[str, Any]
    path: Any = sympy.true
    returns: list[tuple[Any, Any]] = field(default_factory=list)
    no_grad: bool = False
    fn_path: tuple[str, ...] | None = ()  # how the cache finds this function from the traced one
    # parameters bound to objects read from outside (`self`): where the caller found them
    origins: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # arrays the callers passed in: an in-place update of one changes the caller's names too
    outer: frozenset[int] = frozenset()
    passed_lists: frozenset[int] = frozenset()  # lists the caller passed in (`xs.append` refused)
    # Per `return`: the memory of a caller's array it returns by name (`return a` after
    # `a += v`: NumPy returns the caller's array itself), else None.
    returned_memories: list[Any] = field(default_factory=list)
    # Calls of the current statement that returned a caller's array: (its memory, the callee),
    # and by call node, for `y = h(x)` to make `y` that array too.
    live_results: list[tuple[Any, str]] = field(default_factory=list)
    call_aliases: dict[int, Any] = field(default_factory=dict)


class Tracer(ArrayTracing, IterTracing, LoopTracing):
    """Interprets statements and expressions of one function, appending nodes to a Graph."""

    def __init__(self, graph: Graph, stack: tuple[Callable[..., Any], ...] = ()) -> None:
        self.graph = graph
        self.stack = stack
        self.frame: Frame
        self.conditional = False  # inlined under a condition on traced values (see `fail`)

    # --- entry points ----------------------------------------------------------------------

    def run(
        self,
        source: parse.Source,
        env: dict[str, Any],
        fn_path: tuple[str, ...] | None = (),
        outer: frozenset[int] = frozenset(),
        origins: dict[str, tuple[str, ...]] | None = None,
    ) -> Any:
        """Interpret `source`'s body with `env` bound and return its (merged) return value."""
        lists = frozenset(id(v) for v in env.values() if isinstance(v, ListValue))
        self.frame = Frame(
            source=source, env=env, fn_path=fn_path, outer=outer, origins=origins or {}, passed_lists=lists
        )
        if not self.block(source.tree.body):
            if self.stack and not self.frame.returns:
                return None  # a helper without `return` (`put(a, v)` updating `a`), as in Python
            last = source.tree.body[-1]
            raise source.error(
                TracingError,
                last,
                "not every path through the function returns a value",
                "end every branch with `return <value>`",
            )
        return self._merge_returns()

    def _merge_returns(self) -> Any:
        returns = self.frame.returns
        conds = [c for c, _ in returns[:-1]] + [sympy.true]
        values = [v for _, v in returns]
        try:
            return self._select_many(conds, values)
        except _StructureMismatchError:
            raise self.error(
                TracingError,
                self.frame.source.tree,
                "return statements give values of different structure (tuple sizes differ)",
                "return the same number of values on every path",
            ) from None

    # --- errors ----------------------------------------------------------------------------

    def error(self, cls: type[SymgradError], node: ast.AST, message: str, hint: str = "") -> SymgradError:
        return self.frame.source.error(cls, node, message, hint)

    # --- statements ------------------------------------------------------------------------

    def block(self, stmts: Sequence[ast.stmt]) -> bool:
        """Interpret statements in order; True if every path through them returned."""
        return any(self.statement(stmt) for stmt in stmts)  # stops at the first that returns

    def statement(self, stmt: ast.stmt) -> bool:
        self.frame.live_results.clear()  # results of calls do not outlive their statement
        method = getattr(self, f"stmt_{type(stmt).__name__}", None)
        if method is None:
            raise self.error(
                UnsupportedSyntaxError,
                stmt,
                f"`{type(stmt).__name__}` statements are not supported",
                "use assignments, if/elif/else, for-range loops and return",
            )
        try:
            return bool(method(stmt))
        except (SymgradError, ShapesNeeded, RecursionError, _Raised):
            raise
        except Exception as exc:  # a SymPy or Python error while tracing: report where
            raise self.error(
                TracingError,
                stmt,
                f"cannot trace this statement ({type(exc).__name__}: {exc})",
                "simplify the statement or check the types of its operands",
            ) from exc

    def stmt_Pass(self, stmt: ast.Pass) -> bool:
        return False

    def stmt_Expr(self, stmt: ast.Expr) -> bool:
        if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            return False  # docstring
        if isinstance(stmt.value, ast.Call) and self.call_statement(stmt.value, stmt):
            return False
        raise self.error(
            UnsupportedSyntaxError,
            stmt,
            "an expression statement has no effect on the result",
            "remove it, or assign its value: `y = ...` (print, logging and warnings.warn calls "
            "are skipped; a helper called as a statement counts for its in-place updates)",
        )

    def call_statement(self, call: ast.Call, stmt: ast.stmt) -> bool:
        """A call statement symgrad follows: `xs.append(v)`, a helper's in-place updates
        (`update(x, v)`), or output with no numeric effect (`print`, logging, `warnings.warn`),
        which the generated code skips and names in a comment."""
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in LIST_UPDATES
            and isinstance(func.value, ast.Name)
            and isinstance(self.frame.env.get(func.value.id), ListValue)
        ):
            self.update_list(call, stmt)
            return True
        callee = self.expr(func)
        if _is_output(callee):
            self.graph.skipped.append((self.frame.source.filename, stmt.lineno))
            return True
        if self._is_inlined(callee):
            self.expr(call)  # `update(x, v)`: its in-place updates of `x` count
            return True
        return False

    # --- checks: assert and raise run while tracing, on static values (as under jax.jit) ------

    def stmt_Assert(self, stmt: ast.Assert) -> bool:
        cond = self.condition(stmt.test)
        if is_traced(cond):
            raise self.error(
                TracingError,
                stmt,
                f"`assert {ast.unparse(stmt.test)}` checks a traced value, which is not known while "
                "tracing (symgrad runs asserts once, on static values, as jax.jit does)",
                f"check the arguments before the call instead (`{ast.unparse(stmt)}` in the caller, "
                "then `grad(f)(...)`), and remove the assert from the function",
            )
        if _static_value(cond):
            return False
        message = () if stmt.msg is None else (_static_value(self.expr(stmt.msg)),)
        self.fail(AssertionError(*message), stmt)

    def stmt_Raise(self, stmt: ast.Raise) -> bool:
        if stmt.exc is None:
            raise self.error(TracingError, stmt, "a bare `raise` outside `except`", "raise an exception")
        self.fail(self._exception(stmt.exc), stmt)

    def _exception(self, node: ast.expr) -> BaseException:
        """The exception `raise E(...)` makes, from the class and static arguments."""
        call = node if isinstance(node, ast.Call) else None
        made = self.expr(call.func if call is not None else node)
        if isinstance(made, type) and issubclass(made, BaseException):
            args = [] if call is None else [self.expr(a) for a in call.args]
            return made(*[f"<traced {a}>" if is_traced(a) else _static_value(a) for a in args])
        if isinstance(made, BaseException) and call is None:
            return made
        raise self.error(
            TracingError, node, f"`raise {ast.unparse(node)}` is not an exception", "raise an exception class"
        )

    def fail(self, exc: BaseException, stmt: ast.stmt) -> NoReturn:
        """Raise the function's own exception, as Python would, where it is reached on every
        call; one that only some values of traced arguments reach cannot be compiled."""
        if self.conditional or self.frame.returns or is_traced(self.frame.path):
            what = "assert fails" if isinstance(stmt, ast.Assert) else "raise runs"
            raise self.error(
                TracingError,
                stmt,
                f"this {what} only for some values of the traced arguments (it is under a "
                "condition on them), and symgrad's generated code does not raise",
                "check the arguments before the call (`if x < 0: raise ...` in the caller, then "
                "`grad(f)(x)`), and remove the check from the function; a condition on static "
                "arguments only is fine",
            )
        at = self.error(TracingError, stmt, "")
        name = self.frame.source.fn.__name__
        raise _Raised(
            exc, f"raised by `{name}` at {at.filename}:{at.lineno}:{at.col} while symgrad traced it"
        )

    def stmt_Assign(self, stmt: ast.Assign) -> bool:
        hint = (
            stmt.targets[0].id if len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) else None
        )
        value = self.expr(stmt.value, hint)
        # the arrays the right side names, as they are before the targets are rebound
        # (`t1, x = x, ...`: t1 is the old x, not the new one)
        env = self.frame.env
        before = {
            n.id: env.setdefault(_ALIAS + n.id, _Memory())
            for n in ast.walk(stmt.value)
            if isinstance(n, ast.Name) and n.id in env
        }
        for target in stmt.targets:
            self.assign(target, value)
            self.share(target, stmt.value, before)
        return False

    # --- aliasing: which names hold the same array (NumPy's in-place updates write through) ---

    def share(self, target: ast.expr, value: ast.expr, before: dict[str, _Memory] | None = None) -> None:
        """After `target = value`: `t = x` makes `t` the same array as `x`; `t = x[0:2]` or
        `t = x.T` a view of it. Tracked so that `t += 1` can do what NumPy does to `x`.
        `before`: the memories of the names `value` reads, taken before the assignment."""
        if isinstance(target, ast.Tuple) and isinstance(value, (ast.Tuple, ast.List)):
            for elt, item in zip(target.elts, value.elts):
                self.share(elt, item, before)
            return
        if (
            isinstance(target, ast.Tuple)
            and isinstance(value, ast.Name)
            and is_traced(self.frame.env.get(value.id))
        ):
            for elt in target.elts:  # `a, b = P`: the rows of P, views of it
                self.share(elt, ast.Subscript(value=value, slice=ast.Constant(0)), before)
            return
        if not isinstance(target, ast.Name):
            return
        env = self.frame.env
        viewed = _viewed_name(value)

        def memory_of(name: str) -> _Memory:
            found = (before or {}).get(name)
            return found if found is not None else env.setdefault(_ALIAS + name, _Memory())

        if isinstance(value, ast.Name) and value.id in env:
            env[_ALIAS + target.id] = memory_of(value.id)
        elif isinstance(value, ast.Call) and id(value) in self.frame.call_aliases:
            env[_ALIAS + target.id] = self.frame.call_aliases.pop(id(value))  # `y = h(x)`: x's array
        elif (
            viewed is not None
            and viewed in env
            and is_traced(env[target.id])
            and not self.is_copy(env[target.id])
        ):
            env[_ALIAS + target.id] = _Memory(view_of=memory_of(viewed))

    def sharers(self, name: str) -> list[str]:
        """The other bound names whose arrays share memory with `name`'s."""
        env = self.frame.env
        memory = env.get(_ALIAS + name)
        if memory is None:
            return []
        return [
            key[len(_ALIAS) :]
            for key, other in env.items()
            if key.startswith(_ALIAS) and key != _ALIAS + name and other.root is memory.root
        ]

    def stmt_AnnAssign(self, stmt: ast.AnnAssign) -> bool:
        if stmt.value is None:
            return False
        hint = stmt.target.id if isinstance(stmt.target, ast.Name) else None
        self.assign(stmt.target, self.expr(stmt.value, hint))
        return False

    def stmt_AugAssign(self, stmt: ast.AugAssign) -> bool:
        if isinstance(stmt.target, ast.Subscript):
            self.assign_item(stmt.target, self.expr(stmt.value), stmt.op)
            return False
        if not isinstance(stmt.target, ast.Name):
            raise self.error(
                UnsupportedSyntaxError,
                stmt.target,
                "only plain names and array items can be updated in place",
                "assign to a new variable: `y = x + 1`",
            )
        # the right side first: a helper it calls may update the target's array in place
        # (`t /= 1 + h(t)`), and NumPy's in-place operator then sees the updated array
        operand = self.expr(stmt.value)
        current = self.name(stmt.target)
        value = self.binop(stmt.op, current, operand, stmt, stmt.target.id)
        name, op = stmt.target.id, _OP_TEXT.get(type(stmt.op), "+")
        self.write_in_place(stmt, name, current, value, f"`{name} {op}= ...`", f"`{name} = {name} {op} ...`")
        return False

    def assign_item(self, target: ast.Subscript, value: Any, op: ast.operator | None) -> None:
        """`x[i] = v` / `x[i] += v` on an array: a new value of `x`, and of every other name of
        its array, as NumPy writes through them; the generated code copies."""
        owner = target.value
        if not isinstance(owner, ast.Name) or owner.id not in self.frame.env:
            raise self.error(
                UnsupportedSyntaxError,
                target,
                f"`{ast.unparse(target)} = ...` writes into "
                + (
                    "an array from outside the function"
                    if isinstance(owner, ast.Name)
                    else "a part of a value"
                ),
                f"copy it into a name first: `t = {ast.unparse(owner)}.copy()`, then write `t[...] = ...`"
                if isinstance(owner, (ast.Name, ast.Attribute))
                else "write one subscript: `x[i, j] = v` rather than `x[i][j] = v`",
            )
        current = self.frame.env[owner.id]
        if isinstance(current, RowSink) and op is None:  # `hs[t] = h` in a kept loop: a row per iteration
            self.sink_write(current, target, value)
            return
        if not is_traced(current):
            raise self.error(
                UnsupportedSyntaxError,
                target,
                f"item assignment on {'a list' if isinstance(current, tuple) else 'a constant'}: "
                "lists and constants are values here",
                "build a new list: `xs = xs[:i] + [v] + xs[i + 1 :]`"
                if isinstance(current, tuple)
                else "make it an array argument, or build the value with np.array([...])",
            )
        new = self.updated(current, target, value, op)
        text = ast.unparse(target)
        self.write_in_place(
            target, owner.id, current, new, f"`{text} = ...`", f"`{owner.id} = {owner.id}.copy()` first"
        )

    def write_in_place(
        self, stmt: ast.AST, name: str, current: Any, value: Any, what: str, instead: str
    ) -> None:
        """Bind `name` to `value`, the result of an in-place update of its array: NumPy changes
        every other name of that array too (here and in the callers that passed it in)."""
        writes_through = self._in_place_sharers(stmt, name, current, what, instead)
        memory = self.frame.env.get(_ALIAS + name)
        self.assign(ast.copy_location(ast.Name(id=name, ctx=ast.Store()), stmt), value)
        if writes_through is None:
            return
        for other in writes_through:  # the same array under other names: NumPy changed it too
            self.frame.env[other] = value
        assert memory is not None
        self.frame.env[_ALIAS + name] = memory
        memory.root.written = value  # read back by the callers that passed this array in
        memory.root.writes += 1

    def _in_place_sharers(
        self, stmt: ast.AST, name: str, current: Any, what: str, instead: str
    ) -> list[str] | None:
        """The names that NumPy's in-place `t += v` also changes: on an array, every other name
        of the same array, here and in the callers that passed it in; None where `t` is
        rebound. A number is rebound (Python floats are immutable), so the answer depends on
        the shapes: an elementwise trace rebinds (right for numbers) and marks the graph, so
        that calls with arrays run a program traced for their shapes."""
        memory = self.frame.env.get(_ALIAS + name)
        others = self.sharers(name)
        if memory is None or not is_traced(current):
            return None
        passed_in = id(memory.root) in self.frame.outer
        if not (others or passed_in or memory.root.from_sequence):
            return None
        if self.graph.shapes is None:
            self.graph.aliased = True
            return None
        if self.graph.rebind or not self.shape(current):
            return None
        views = [n for n in others if self.frame.env[_ALIAS + n] is not memory]
        if memory.view_of is not None or views or memory.root.from_sequence:
            shared = (
                "an array of the sequence the loop goes over"
                if memory.root.from_sequence
                else f"`{(views or others)[0]}`"
                if views or others
                else "a view the caller passed in"
            )
            raise self.error(
                UnsupportedSyntaxError,
                stmt,
                f"{what} changes an array in place, and "
                f"`{name}` shares memory with {shared}: NumPy would change that array too, "
                "which symgrad does not follow",
                f"make a new array instead: {instead}",
            )
        self.graph.wrote_through = True
        return others

    def assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            if self.frame.no_grad and is_traced(value):
                value = self.node(rules.StopGradient(value), target.id, target)
            self.frame.env[target.id] = value
            self.frame.env.pop(_ALIAS + target.id, None)  # a new value: its own memory
            return
        if isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, (range, dict)):
                value = tuple(value)
            if is_traced(value):  # `a, b = p`: the rows of an array
                value = self.unpack(value, len(target.elts), target) or value
            if not isinstance(value, tuple) or len(value) != len(target.elts):
                size = len(value) if isinstance(value, tuple) else 1
                raise self.error(
                    TracingError,
                    target,
                    f"cannot unpack {size} value(s) into {len(target.elts)} names",
                    "make both sides the same length",
                )
            for elt, item in zip(target.elts, value):
                self.assign(elt, item)
            return
        if isinstance(target, ast.Subscript):
            self.assign_item(target, value, None)
            return
        raise self.error(
            UnsupportedSyntaxError,
            target,
            "assignment to attributes mutates a value",
            "assign to a new variable name instead",
        )

    def stmt_Return(self, stmt: ast.Return) -> bool:
        if stmt.value is None:
            raise self.error(TracingError, stmt, "`return` without a value", "return the function's value")
        value = self.expr(stmt.value, "out")
        if not self.stack:  # the traced function's outputs; a helper may return any value
            self._check_output(value, stmt)
        self.frame.returns.append((self.frame.path, value))
        memory = self.frame.env.get(_ALIAS + stmt.value.id) if isinstance(stmt.value, ast.Name) else None
        passed = memory.root if memory is not None and id(memory.root) in self.frame.outer else None
        self.frame.returned_memories.append(passed)
        return True

    def _check_output(self, value: Any, stmt: ast.Return) -> None:
        for item in trees.flatten(value)[0]:  # a number, or a tree of them (JAX's pytrees)
            if isinstance(item, (bool, np.bool_)) or (
                isinstance(item, Boolean) and not isinstance(item, sympy.Symbol)
            ):
                raise self.error(
                    TracingError,
                    stmt,
                    "the function returns a condition, which has no derivative",
                    "return a number, e.g. `1.0 if cond else 0.0`",
                )
            if not isinstance(item, (sympy.Expr, numbers.Complex)):
                raise self.error(
                    TracingError,
                    stmt,
                    f"the function returns a {type(item).__name__}, not a number",
                    "return a number, or a tuple, list or dict of numbers",
                )

    def stmt_If(self, stmt: ast.If) -> bool:
        """`if`/`elif`/.../`else`, walked as one chain (not one nested call per `elif`, which
        hit Python's recursion limit at a few hundred branches), then joined innermost first."""
        levels, final = _elif_chain(stmt)
        frame = self.frame
        outer_path = frame.path
        taken: list[tuple[Any, dict[str, Any], bool, ast.If]] = []  # traced branches, in order
        for level in levels:
            cond = self.condition(level.test)
            if not is_traced(cond):
                if _static_value(cond):
                    final = level.body
                    break
                continue
            else_env, else_path = frame.env, frame.path
            frame.env, frame.path = dict(else_env), sympy.And(else_path, cond)
            done = self.block(level.body)
            taken.append((cond, frame.env, done, level))
            # the path of what follows: a node, so that a long chain's paths stay small
            frame.env, frame.path = dict(else_env), self._path(sympy.And(else_path, sympy.Not(cond)))
        done_rest = self.block(final)
        env_rest = frame.env
        for cond, env_true, done_true, level in reversed(taken):
            env_rest, done_rest = self._join(cond, env_true, done_true, env_rest, done_rest, level)
        frame.path = outer_path
        frame.env = env_rest
        return done_rest

    def _path(self, path: Any) -> Any:
        return (
            path
            if isinstance(path, (sympy.Symbol, BooleanAtom, sympy.core.relational.Relational))
            else self.graph.add(path)
        )

    def _join(
        self,
        cond: Any,
        env_true: dict[str, Any],
        done_true: bool,
        env_false: dict[str, Any],
        done_false: bool,
        stmt: ast.If,
    ) -> tuple[dict[str, Any], bool]:
        """The environment after `if cond:` with these two paths (done: it returned)."""
        if done_true and done_false:
            return env_false, True
        if done_true or done_false:
            return (env_false if done_true else env_true), False
        return self.merge_envs(cond, env_true, env_false, stmt), False

    def merge_envs(
        self, cond: Any, env_true: dict[str, Any], env_false: dict[str, Any], stmt: ast.If
    ) -> dict[str, Any]:
        merged = {}
        for key in dict.fromkeys([*env_true, *env_false]):  # in order: the program is deterministic
            if key.startswith(_ALIAS):  # memory shared on both paths stays shared
                if env_true.get(key) is env_false.get(key):
                    merged[key] = env_true[key]
                continue
            if key not in env_true or key not in env_false:
                # Defined on one path only: Python would fail on the other path if it is read.
                merged[key] = env_true.get(key, env_false.get(key))
                continue
            a, b = env_true[key], env_false[key]
            try:
                merged[key] = a if a is b else self._select_many([cond, sympy.true], [a, b], key, stmt)
            except _StructureMismatchError:
                raise self.error(
                    TracingError,
                    stmt,
                    f"`{key}` has a different structure in the two branches",
                    "give the variable the same kind of value in both branches (a number, or a list or "
                    "tuple of the same length: append `v if cond else 0.0` on every path)",
                ) from None
        return merged

    def _select_many(
        self, conds: list[Any], values: list[Any], hint: str | None = "out", at: ast.AST | None = None
    ) -> Any:
        """The first value whose condition holds; tuples are selected element by element."""
        if len(values) == 1:
            return values[0]
        if all(isinstance(v, tuple) for v in values):
            sizes = {len(v) for v in values}
            if len(sizes) != 1:
                raise _StructureMismatchError
            picked = [self._select_many(conds, list(items), hint, at) for items in zip(*values)]
            return ListValue(picked) if isinstance(values[0], ListValue) else tuple(picked)
        if any(isinstance(v, tuple) for v in values):
            raise _StructureMismatchError
        if all(v is values[0] or v == values[0] for v in values[1:]) and not any(
            isinstance(v, sympy.Basic) and not isinstance(v, sympy.Expr) for v in values
        ):
            return values[0]
        try:
            pieces = [(to_sympy(v), c) for v, c in zip(values, conds)]
        except TypeError:
            raise _StructureMismatchError from None
        self._check_branch_shapes(pieces, hint, at)
        return self.node(rules.piecewise(*pieces), hint)

    def _check_branch_shapes(
        self, pieces: list[tuple[Any, Any]], what: str | None, at: ast.AST | None
    ) -> None:
        """NumPy gives the result the shape of the branch a number's condition takes; symgrad's
        program has one shape per argument shapes, so branches of other shapes are refused
        (an array's condition selects element by element: all broadcast, as np.where)."""
        if self.graph.shapes is None:
            # paths computed from different arguments may differ in shape: calls whose
            # arguments differ in shape run a program traced for them
            reached = {self.graph.inputs_reaching(v) for v, _ in pieces if is_traced(v)}
            self.graph.branches = self.graph.branches or len(reached) > 1
            return
        # a constant path takes the others' shape (np.where's): its value and zero gradient
        # are the same numbers however many times they repeat
        shapes = {self.shape(v) for v, _ in pieces if is_traced(v)}
        if len(shapes) <= 1 or any(self.shape(c) for _, c in pieces if is_traced(c)):
            return
        reached = self.graph.inputs_reaching(sympy.Tuple(*[c for _, c in pieces]))
        inputs = [self.graph.params[i] for i in sorted(reached) if i != TRIP_COUNT]
        name = f"`{what}`" if what and what != "out" else "the result"
        first, second = sorted(shapes)[:2]
        if what and what.startswith(jumps.FLAGS):  # the flag of a `break` (jumps.rewrite)
            raise self.error(
                ShapeError,
                at or self.frame.source.tree,
                f"whether the loop stops or skips (its `break` or `continue`) is decided by a "
                f"value of shape {first} on one path and {second} on another: NumPy gives the "
                "shape of the path taken, symgrad's compiled program one shape for all values",
                "make the condition of the `break` or `continue` the same shape on every path",
            )
        raise self.error(
            ShapeError,
            at or self.frame.source.tree,
            f"{name} has shape {first} on one path and {second} on another, and which path runs "
            f"depends on the value of {', '.join(f'`{i}`' for i in inputs) or 'a number'}: NumPy gives "
            "the shape of the path taken, symgrad's compiled program one shape for all values",
            f"give {name} the same shape on every path (add `np.zeros_like(...)` of the larger "
            f"array where it is smaller), or pass the deciding value as static: "
            f"grad(f, static=({', '.join(repr(i) for i in inputs)},))",
        )

    def stmt_For(self, stmt: ast.For) -> bool:
        if stmt.orelse:
            raise self.error(
                UnsupportedSyntaxError, stmt, "`for ... else` is not supported", "remove the else clause"
            )
        kept, test, body = stmt, None, stmt.body
        if any(True for _ in jumps.jumps(stmt.body)):  # `break`, `continue`: flags and guards
            rewritten = jumps.rewrite(stmt)
            self.block(rewritten.before)
            kept = ast.copy_location(ast.For(stmt.target, stmt.iter, rewritten.body, [], None), stmt)
            test, body = rewritten.test, rewritten.guarded
        binding, iterable = self.row_binding(stmt)
        if binding is not None and self.keep_rows(kept, binding, test):
            return False
        if iterable is NOT_EVALUATED:
            iterable = self.expr(stmt.iter)
        items = self.iterate(iterable, stmt.iter)
        if self.keeps_for(stmt, items) and self.keep_for(kept, items, test):
            return False
        self.count_unrolled(len(items), stmt)
        literal = stmt.iter.elts if isinstance(stmt.iter, (ast.Tuple, ast.List)) else None
        held = self._hold_items(stmt, literal, items) if literal and len(literal) == len(items) else {}
        try:
            for k, item in enumerate(items):
                self.assign(stmt.target, self.frame.env[held[k]] if k in held else item)
                self._share_item(stmt.target, held.get(k), literal is not None)
                if self.block(body):
                    return True
            return False
        finally:
            for key in held.values():
                self.frame.env.pop(key, None)
                self.frame.env.pop(_ALIAS + key, None)

    def _hold_items(self, stmt: ast.For, literal: list[ast.expr], items: Sequence[Any]) -> dict[int, str]:
        """`for j in (y, 2 * y)`: the tuple holds the array `y` itself, so an in-place update
        of `y` during the loop changes the item it gives later, as in NumPy. Each such item is
        kept under a hidden name that shares `y`'s memory."""
        env = self.frame.env
        held = {}
        for k, element in enumerate(literal):
            if isinstance(element, ast.Name) and element.id in env and is_traced(env[element.id]):
                key = f"\0item:{id(stmt)}:{k}"
                env[key] = items[k]
                env[_ALIAS + key] = env.setdefault(_ALIAS + element.id, _Memory())
                held[k] = key
        return held

    def _share_item(self, target: ast.expr, held: str | None, literal: bool) -> None:
        """The loop variable is the item's array, as in NumPy: `for j in (y, 2 * y)` makes `j`
        the array `y` first (`t = j; t -= 1` changes `y`). An item of another sequence (a list
        variable, `zip(...)`) may be any array: updating it in place is refused."""
        if held is not None:
            self.share(target, ast.Name(id=held, ctx=ast.Load()))
            return
        if literal:
            return  # a new value (`2 * y`): its own memory
        for name in names_bound(target):
            if is_traced(self.frame.env.get(name)):
                self.frame.env[_ALIAS + name] = _Memory(from_sequence=True)

    def _callee_is(self, func: ast.expr, target: Any) -> bool:
        try:
            return self.expr(func) is target
        except SymgradError:
            return False

    def stmt_With(self, stmt: ast.With) -> bool:
        items = stmt.items
        if len(items) != 1 or not isinstance(items[0].context_expr, ast.Call) or items[0].optional_vars:
            raise self.error(
                UnsupportedSyntaxError,
                stmt,
                "only `with no_grad():` is supported",
                "remove the with statement, or use `with no_grad():`",
            )
        if not self._callee_is(items[0].context_expr.func, rules.no_grad):
            raise self.error(
                UnsupportedSyntaxError,
                stmt,
                "only `with no_grad():` is supported",
                "remove the with statement, or use `with symgrad.no_grad():`",
            )
        outer = self.frame.no_grad
        self.frame.no_grad = True
        try:
            return self.block(stmt.body)
        finally:
            self.frame.no_grad = outer

    # --- expressions -----------------------------------------------------------------------

    def node(self, expr: Any, hint: str | None = None, at: ast.AST | None = None) -> Any:
        lineno = getattr(at, "lineno", None)
        line = None if lineno is None else (self.frame.source.filename, lineno)
        return self.graph.add(expr, hint, line)

    def expr(self, node: ast.expr, hint: str | None = None) -> Any:
        method = getattr(self, f"expr_{type(node).__name__}", None)
        if method is None:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"`{type(node).__name__}` expressions are not supported",
                "use arithmetic, comparisons, calls to supported functions and names",
            )
        try:
            return method(node, hint)
        except complexes.ComplexUnsupported:
            what = ast.unparse(node.func if isinstance(node, ast.Call) else node)
            raise self.error(
                TracingError,
                node,
                f"`{what}` of a complex value is not supported: symgrad computes complex values with "
                f"{complexes.SUPPORTED}",
                "compute with the real and imaginary parts, which are real arrays: "
                "`a, b = np.real(z), np.imag(z)`",
            ) from None

    def expr_Constant(self, node: ast.Constant, hint: str | None) -> Any:
        return node.value

    def expr_JoinedStr(self, node: ast.JoinedStr, hint: str | None) -> Any:
        """An f-string of a message (`raise ValueError(f"n = {n}")`), formatted while tracing."""
        return "".join(str(self.expr(part)) for part in node.values)

    def expr_FormattedValue(self, node: ast.FormattedValue, hint: str | None) -> Any:
        value = self.expr(node.value)
        if is_traced(value):
            return f"<traced {ast.unparse(node.value)}>"  # known only when the code runs
        value = _static_value(value)
        convert = _CONVERSIONS.get(node.conversion)
        value = value if convert is None else convert(value)
        spec = "" if node.format_spec is None else self.expr(node.format_spec)
        return format(value, spec)

    def expr_Tuple(self, node: ast.Tuple, hint: str | None) -> Any:
        return tuple(self.expr(elt) for elt in node.elts)

    def expr_Name(self, node: ast.Name, hint: str | None) -> Any:
        return self.name(node)

    def name(self, node: ast.Name) -> Any:
        env = self.frame.env
        if node.id in env:
            return env[node.id]
        fn = self.frame.source.fn
        code = fn.__code__
        if fn.__closure__ and node.id in code.co_freevars:
            value = fn.__closure__[code.co_freevars.index(node.id)].cell_contents
        elif node.id in fn.__globals__:
            value = fn.__globals__[node.id]
        elif hasattr(builtins, node.id):
            value = getattr(builtins, node.id)
        else:
            raise self.error(TracingError, node, f"name `{node.id}` is not defined", "define it before use")
        path = self.chain(node)
        self.depend(path, value)
        return self.external(value, node, path)

    def depend(self, path: tuple[str, ...] | None, value: Any) -> None:
        """Record a value read from outside the function (at `path` from the traced function,
        None when it has none), for the persistent cache and the guards."""
        if path is None:
            self.graph.cacheable = False
            return
        self.graph.deps.append((path, cache.fingerprint(value)))
        if _is_captured_array(value):
            return  # an input of the program, read at every call (see `captured`)
        if isinstance(value, _DATA):  # a constant of the program: checked again at each call
            self.graph.guards.append((path, value, cache.fingerprint(value)))

    def chain(self, node: ast.expr) -> tuple[str, ...] | None:
        """Where the value of `np.linalg.norm` or `self.w` is found from the traced function
        (see cache.resolve): ("np", ".linalg", ".norm") after this function's own path; for a
        parameter bound to such a value by the caller (`self`), the caller's path of it."""
        if isinstance(node, ast.Name):
            if node.id in self.frame.env:
                return self.frame.origins.get(node.id)
            return None if self.frame.fn_path is None else (*self.frame.fn_path, node.id)
        if isinstance(node, ast.Attribute):
            inner = self.chain(node.value)
            return None if inner is None else (*inner, f".{node.attr}")
        return None

    def external(self, value: Any, node: ast.AST, steps: tuple[str, ...] | None) -> Any:
        """A value from outside the function: numbers become constants; an array (module data,
        a closure's, an attribute of a module-level object) an input of the program that
        the call reads where the function reads it, so that it is never stale."""
        if _is_captured_array(value):
            return self.captured(value, node, steps)
        if isinstance(value, np.ndarray):
            return value.item()  # 0-d
        if isinstance(value, np.generic):
            return value.item()
        return value

    def captured(self, value: npt.NDArray[Any], node: ast.AST, steps: tuple[str, ...] | None) -> Any:
        """The input standing for the array `value` read from outside at `steps`."""
        if steps is None:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                "this array comes from outside the function by a way symgrad cannot read again at each call",
                "pass the array as an argument, or read it from a module-level name",
            )
        if value.dtype.kind == "c":
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"the array `{ast.unparse(node)}` read from outside the function is complex: symgrad reads "
                "complex arrays as arguments only",
                f"pass it as an argument: `def {self.frame.source.tree.name}(..., {ast.unparse(node)})`",
            )
        if value.dtype.kind not in "biuf":
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"the array `{ast.unparse(node)}` holds {value.dtype} values, not numbers",
                "read a float array",
            )
        self.needs_shapes()  # the program is compiled for its shape
        return self.graph.capture(steps, value.shape, _capture_name(steps))

    def _cancelled_array(self, base: Any) -> bool:
        """A constant that may be an array SymPy cancelled (`(w - w)[0]`, `(w - w).T`): only a
        trace with shapes knows (there it is a broadcast node), so restart with shapes."""
        if self.graph.cancelled and self.graph.shapes is None and isinstance(base, sympy.Basic):
            raise ShapesNeeded
        return False

    def expr_Attribute(self, node: ast.Attribute, hint: str | None) -> Any:
        base = self.expr(node.value)
        part = _COMPLEX_PARTS.get(node.attr)
        if part is not None and isinstance(base, sympy.Expr):  # z.real, z.imag, z.conj()
            if node.attr in ("real", "imag"):
                return self.node(self.keep_shape(part(base), [base]), hint, node)
            return _PartOf(part, base)
        if node.attr in PROPERTIES or node.attr in METHODS:
            self._cancelled_array(base)
        if is_traced(base) and (node.attr in PROPERTIES or node.attr in METHODS) and self.shape(base):
            if node.attr in PROPERTIES:
                return self.array_call(PROPERTIES[node.attr], [base], {}, node, hint)
            return Method(base, node.attr)
        if node.attr in PROPERTIES and _is_number(base):
            # a number is a NumPy scalar here (np.float64: shape (), ndim 0, size 1, as JAX's)
            return self.array_call(PROPERTIES[node.attr], [base], {}, node, hint)
        method = self.container_method(base, node.attr)
        if method is not None:
            return method
        if isinstance(base, tuple) and node.attr in getattr(base, "_fields", ()):
            return getattr(base, node.attr)  # a named result: `np.linalg.slogdet(a).logabsdet`
        if is_traced(base) or isinstance(base, (sympy.Basic, tuple, dict)):
            known = node.attr in PROPERTIES or node.attr in METHODS
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"`.{node.attr}` of a number (only arrays have it)"
                if known
                else f"attribute `.{node.attr}` of a traced value is not supported",
                f"call `np.{PROPERTIES.get(node.attr, node.attr)}(...)` instead, which takes numbers too"
                if known and node.attr not in ("shape", "ndim", "size")
                else "pass an array for this argument"
                if known
                else f"arrays support .{', .'.join(sorted(set(PROPERTIES) | set(METHODS)))}; otherwise "
                "call a NumPy function that symgrad has a rule for (symgrad.supported()), e.g. np.abs(x)",
            )
        if not hasattr(base, node.attr):
            raise self.error(
                TracingError,
                node,
                f"`{ast.unparse(node.value)}` has no attribute `{node.attr}`",
                "check the spelling",
            )
        value = getattr(base, node.attr)
        steps = self.chain(node)
        if steps is not None:
            self.depend(steps, value)
        return self.external(value, node, steps)

    def expr_Subscript(self, node: ast.Subscript, hint: str | None) -> Any:
        base = self.expr(node.value)
        if base is np.r_ or base is np.c_:
            return self.joined(base is np.c_, node, hint)
        self._cancelled_array(base)
        if is_traced(base):
            return self.index(base, node, hint)
        if isinstance(base, (tuple, range, dict)):
            return self.subscript_container(base, node)
        raise self.error(
            UnsupportedSyntaxError,
            node,
            "indexing is only supported on arrays, lists, tuples and dicts, with constant indices",
            "pass the elements as separate arguments, or index a tuple with a constant or static int",
        )

    def joined(self, columns: bool, node: ast.Subscript, hint: str | None) -> Any:
        """`np.r_[a, b, 1:4]` (joined along the first axis) and `np.c_[a, b]` (vectors as
        columns, side by side), for arrays of at least one dimension and constant ranges."""
        elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        parts = []
        for element in elements:
            if isinstance(element, ast.Slice):  # `1:10`: np.arange(1, 10) as floats
                bounds = [self.expr(b) for b in (element.lower, element.upper, element.step) if b is not None]
                parts.append(self.constant("arange", [float(plain_value(b)) for b in bounds], {}, node, None))
                continue
            value = self.expr(element)
            if not self.shape(value) and not isinstance(value, np.ndarray):
                name = "np.c_" if columns else "np.r_"
                raise self.error(
                    UnsupportedSyntaxError,
                    element,
                    f"{name}[...] of a number",
                    "join arrays: `np.concatenate([np.atleast_1d(a), b])`, or `np.array([a, b])` for numbers",
                )
            parts.append(value)
        if columns:
            parts = [
                self.array_call("reshape", [p, (-1, 1)], {}, node, None) if len(self._shape_of(p)) == 1 else p
                for p in parts
            ]
        return self.array_call("concatenate", [ListValue(parts)], {"axis": -1 if columns else 0}, node, hint)

    def _shape_of(self, value: Any) -> tuple[int, ...]:
        return tuple(np.shape(value)) if isinstance(value, np.ndarray) else tuple(self.shape(value))

    def expr_BinOp(self, node: ast.BinOp, hint: str | None) -> Any:
        left, right = self.expr(node.left), self.expr(node.right)
        if isinstance(node.op, ast.MatMult) and (is_traced(left) or is_traced(right) or self.graph.cancelled):
            # after a cancellation `(w - w) @ v` has constant operands but w's shape
            return self.array_call("matmul", [left, right], {}, node, hint)
        return self.binop(node.op, left, right, node, hint)

    def binop(self, op: ast.operator, left: Any, right: Any, node: ast.AST, hint: str | None = None) -> Any:
        if isinstance(left, tuple) or isinstance(right, tuple):
            return self._sequence_binop(op, left, right, node)
        for operand in (left, right):
            self._check_number(operand, node)
        left, right = as_number(left), as_number(right)
        by_zero = _divided_by_zero(op, left, right)
        if by_zero is not None:
            return self.node(self.keep_shape(by_zero, [to_sympy(left), to_sympy(right)]), hint, node)
        if not (is_traced(left) or is_traced(right)):
            static = _STATIC_BINOPS.get(type(op))
            if static is None:
                raise self._bad_operator(op, node)
            return static(_static_value(left), _static_value(right))
        fn = _BINOPS.get(type(op))
        if fn is None:
            raise self._bad_operator(op, node)
        operands = [to_sympy(left), to_sympy(right)]
        if self.graph.shapes is not None:
            self._check_broadcast(operands, node)
        return self.node(self.keep_shape(fn(*operands), operands), hint, node)

    def _sequence_binop(self, op: ast.operator, left: Any, right: Any, node: ast.AST) -> Any:
        """`xs + [v]` joins lists (or tuples), `[0.0] * n` repeats one, as in Python."""
        if isinstance(op, ast.Add) and isinstance(left, tuple) and type(left) is type(right):
            return type(left)((*left, *right))
        times = _static_value(right if isinstance(left, tuple) else left)
        if isinstance(op, ast.Mult) and isinstance(times, int) and not isinstance(times, bool):
            items = left if isinstance(left, tuple) else right
            if len(items) * times > UNROLL_LIMIT:  # a list that long would unroll every use
                self.count_unrolled(len(items) * times, node)
            return type(items)(tuple(items) * times)
        self._check_number(left if isinstance(left, tuple) else right, node)  # refused: says why
        return None

    def _check_broadcast(self, operands: Sequence[Any], node: ast.AST) -> None:
        shapes = [self.shape(o) for o in operands]
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            raise self.error(
                ShapeError,
                node,
                f"operands of shapes {' and '.join(map(str, shapes))} do not broadcast together",
                "make the shapes compatible (NumPy broadcasting rules), e.g. with `.T`, or pass arguments whose shapes match",
            ) from None

    def keep_shape(self, expr: Any, operands: Sequence[Any]) -> Any:
        """`expr` with the broadcast shape of its operands. SymPy cancels `w - w` to 0 and
        `w * 0 + x` to `x`, while NumPy keeps `w`'s shape: what cancelled is broadcast back.
        (Without shapes the program is elementwise, and its value and gradients take the
        broadcast shape of all arguments anyway, `compiled.fit`, unless an array function
        reduces what cancelled: then the trace restarts with shapes.)"""
        before: set[Any] = set().union(*(getattr(o, "free_symbols", set()) for o in operands))
        if getattr(expr, "free_symbols", set()) >= before:
            return expr
        if self.graph.shapes is None:
            self.graph.cancelled = True  # an array function of what is left needs shapes
            return expr
        target = tuple(np.broadcast_shapes(*(self.shape(o) for o in operands)))
        if isinstance(expr, sympy.Integer):
            expr = sympy.Float(float(expr))  # NumPy's result is float64, not an int array
        return arrays.broadcast(expr, self.shape(expr), target, self.graph.add)

    def _bad_operator(self, op: ast.AST, node: ast.AST) -> SymgradError:
        symbol = {
            ast.MatMult: "@",
            ast.BitAnd: "&",
            ast.BitOr: "|",
            ast.BitXor: "^",
            ast.LShift: "<<",
            ast.RShift: ">>",
            ast.Invert: "~",
        }.get(type(op), type(op).__name__)
        return self.error(
            UnsupportedSyntaxError,
            node,
            f"operator `{symbol}` is not supported",
            "use + - * / ** // % and comparisons; `and`/`or`/`not` for conditions",
        )

    def _check_number(self, value: Any, node: ast.AST) -> None:
        if isinstance(value, (sympy.Expr, numbers.Number, sympy.logic.boolalg.Boolean)):
            return
        kind = (
            "a list"
            if isinstance(value, ListValue)
            else "a tuple"
            if isinstance(value, tuple)
            else f"a value of type {type(value).__name__}"
        )
        raise self.error(
            TracingError,
            node,
            f"arithmetic on {kind}",
            "only numbers and traced values can be combined; unpack tuples first"
            if not isinstance(value, tuple)
            else "on a list or tuple, `+` joins and `* n` repeats, as in Python; for arithmetic on every "
            "item write a comprehension (`[2.0 * v for v in xs]`) or make an array: `np.array(xs) * 2.0`",
        )

    def expr_UnaryOp(self, node: ast.UnaryOp, hint: str | None) -> Any:
        if isinstance(node.op, ast.Not):
            value = self.condition(node.operand)
            return sympy.Not(value) if is_traced(value) else not _static_value(value)
        operand = self.expr(node.operand)
        self._check_number(operand, node)
        operand = as_number(operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.USub):
            return self.node(-to_sympy(operand), hint, node) if is_traced(operand) else -operand
        raise self._bad_operator(node.op, node)

    def _numbers_only(self, value: Any) -> None:
        """`value` goes where NumPy takes only numbers; an array there runs per element."""
        if self.graph.shapes is not None and is_traced(value) and self.shape(to_sympy(value)):
            self.graph.per_element = True

    def condition(self, node: ast.expr) -> Any:
        """A condition: a traced SymPy boolean, or a Python bool when it is static."""
        if isinstance(node, ast.BoolOp):  # `if a or b`: only the truth of the operands counts
            return self._boolop(node.op, (self.condition(v) for v in node.values))
        value = self.expr(node)
        if is_traced(value):
            self._numbers_only(value)  # NumPy cannot take the truth of an array
            return rules.as_condition(value)
        value = _static_value(value)
        if isinstance(value, tuple):
            raise self.error(TracingError, node, "a tuple used as a condition", "compare numbers instead")
        return bool(value)

    def expr_Compare(self, node: ast.Compare, hint: str | None) -> Any:
        left = self.expr(node.left)
        parts = []
        for op, comparator in zip(node.ops, node.comparators):
            right = self.expr(comparator)
            parts.append(self.compare(op, left, right, node))
            left = right
        if len(parts) == 1:
            return parts[0]
        return self._boolop(ast.And(), parts)

    def compare(self, op: ast.cmpop, left: Any, right: Any, node: ast.AST) -> Any:
        if not _has_traced([left, right], {}):
            return self.static_compare(op, left, right, node)  # static flags: `mode == "double"`
        if type(op) not in _COMPARE:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"comparison `{type(op).__name__}` is not supported",
                "use <, <=, >, >=, == or !=",
            )
        for operand in (left, right):
            self._check_number(operand, node)
        result = _COMPARE[type(op)](to_sympy(left), to_sympy(right))
        return _static_value(result) if isinstance(result, BooleanAtom) else result

    def static_compare(self, op: ast.cmpop, left: Any, right: Any, node: ast.AST) -> Any:
        """A comparison of constants and static values, with Python's meaning (strings too)."""
        compare = _STATIC_COMPARE.get(type(op)) or _STATIC_ONLY_COMPARE[type(op)]
        try:
            return _static_value(compare(_static_value(left), _static_value(right)))
        except TypeError as exc:
            raise self.error(
                TracingError, node, f"cannot compare these values: {exc}", "compare values of the same kind"
            ) from None

    def expr_BoolOp(self, node: ast.BoolOp, hint: str | None) -> Any:
        """`a or b` is one of its operands, as in Python: `n or 1`, `x or y` (x unless it is 0)."""
        is_and = isinstance(node.op, ast.And)
        picked: list[Any] = []  # the operands that can be the result; the last one if none decides
        for position, operand in enumerate(node.values):
            value = self.expr(operand)
            if is_traced(value):
                picked.append(value)
            elif bool(_static_value(value)) != is_and or position == len(node.values) - 1:
                picked.append(_static_value(value))  # `3 or ...`, `0 and ...`: Python stops here
                break
        if all(isinstance(v, bool) or _is_condition(v) for v in picked):
            return self._boolop(node.op, picked)  # conditions: `x > 0 and y > 0`
        result = picked[-1]
        for value in picked[:-1]:
            self._numbers_only(value)  # `x or y` takes the truth of x
        for value in reversed(picked[:-1]):
            first, second = (result, value) if is_and else (value, result)
            values = [as_number(first), as_number(second)]
            try:
                result = self._select_many([rules.as_condition(value), sympy.true], values, hint, node)
            except _StructureMismatchError:
                raise self.error(
                    TracingError,
                    node,
                    f"`{ast.unparse(node)}` picks between values of different structure",
                    "give every operand the same kind of value",
                ) from None
        return result

    def _boolop(self, op: ast.boolop, values: Iterable[Any]) -> Any:
        is_and = isinstance(op, ast.And)
        traced = []
        for value in values:  # lazily, when a generator: `n > 0 and 1 / n > 2` with n = 0
            if is_traced(value):
                traced.append(value)
            elif bool(value) != is_and:  # static short circuit: `False and ...`, `True or ...`
                return bool(value)
        if not traced:
            return is_and
        return sympy.And(*traced) if is_and else sympy.Or(*traced)

    def expr_IfExp(self, node: ast.IfExp, hint: str | None) -> Any:
        cond = self.condition(node.test)
        if not is_traced(cond):
            return self.expr(node.body if cond else node.orelse, hint)
        body, orelse = self.expr(node.body), self.expr(node.orelse)
        try:
            return self._select_many([cond, sympy.true], [body, orelse], hint, node)
        except _StructureMismatchError:
            raise self.error(
                TracingError,
                node,
                "the two sides of the conditional expression differ in structure",
                "give both sides the same kind of value",
            ) from None

    # --- calls -----------------------------------------------------------------------------

    def expr_Call(self, node: ast.Call, hint: str | None) -> Any:
        callee = self.expr(node.func)
        args, kwargs = self.call_arguments(node)
        if isinstance(callee, Method):
            return self.array_call(callee.name, [callee.base, *args], kwargs, node, hint)
        if isinstance(callee, _PartOf) and not args and not kwargs:
            return self.node(callee.part(callee.base), hint, node)
        if isinstance(callee, ContainerMethod):
            return self.call_container_method(callee, args, node)
        sequence = _lookup_in(SEQUENCE_CALLS, callee)
        if sequence is not None:
            result = self.sequence_call(sequence, callee, args, kwargs, node, hint)
            if result is not NotImplemented:
                return result
        rule = rules.lookup(callee)
        if rule is not None:
            return self.call_rule(callee, rule, args, kwargs, node, hint)
        constructor = _lookup_in(CONSTRUCTORS, callee)
        if constructor is not None:
            return self.constant(constructor, args, kwargs, node, hint)
        array_handler = _array_handler(callee)
        if array_handler is not None and (_has_traced(args, kwargs) or self.graph.cancelled):
            # after a cancellation, `np.mean(w - w)` has constant arguments but w's shape
            return self.array_call(array_handler, args, kwargs, node, hint)
        if isinstance(callee, rules.CustomRule):
            return self.call_custom(callee, args, kwargs, node, hint)
        if self._is_inlined(callee):
            return self.inline(callee, args, kwargs, node)
        if isinstance(callee, type) and dataclasses.is_dataclass(callee):
            return self.construct(callee, args, kwargs, node)
        if (
            inspect.ismethod(callee)
            and self._is_inlined(callee.__func__)
            and isinstance(node.func, ast.Attribute)
        ):
            # `self.helper(x)` on an object read from outside: the method's source, its `self` that object
            owner = self.chain(node.func.value)
            function = cast(types.FunctionType, callee.__func__)
            return self.inline(function, [callee.__self__, *args], kwargs, node, owner)
        if _foldable(callee, args, kwargs):
            return self.call_static(callee, args, node, None, kwargs)
        raise self.unknown_callee(callee, node)

    def call_arguments(self, node: ast.Call) -> tuple[list[Any], dict[str, Any]]:
        """The values of a call's arguments; `*xs` and `**d` spread a tuple, list or dict known
        while tracing (`f(*args)` in a function that took `*args`)."""
        args: list[Any] = []
        for arg in node.args:
            if not isinstance(arg, ast.Starred):
                args.append(self.expr(arg))
                continue
            value = self.expr(arg.value)
            if not isinstance(value, tuple):
                raise self.error(
                    UnsupportedSyntaxError,
                    arg,
                    f"`*` spreads a sequence; `{ast.unparse(arg.value)}` is a {_kind(value)}",
                    "spread a tuple or list, or pass the arguments one by one",
                )
            args.extend(value)
        kwargs: dict[str, Any] = {}
        for keyword in node.keywords:
            value = self.expr(keyword.value)
            if keyword.arg is not None:
                kwargs[keyword.arg] = value
            elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
                kwargs.update(value)
            else:
                raise self.error(
                    UnsupportedSyntaxError,
                    keyword.value,
                    "`**` spreads a dict with string keys",
                    "pass the keyword arguments one by one",
                )
        return args, kwargs

    def _by_position(
        self,
        callee: Any,
        args: list[Any],
        kwargs: dict[str, Any],
        node: ast.Call,
        label: str,
        build: Callable[..., Any] | None = None,
    ) -> list[Any]:
        """`np.clip(x, a_min=0.0, a_max=1.0)` as `np.clip(x, 0.0, 1.0)`: keywords that name the
        callee's next positional parameters, in order; where the callee's signature does not
        name them, those of the rule's `build` (with their defaults in the gaps:
        `stats.norm.sf(x, scale=s)` is `sf(x, 0.0, s)`)."""
        names = _keyword_positions(callee, len(args), kwargs)
        defaults: dict[str, Any] = {}
        if names is None and build is not None:
            names = _keyword_positions(build, len(args), kwargs, gaps=True)
            defaults = _defaults(build)
        if names is not None and all(n in kwargs or n in defaults for n in names):
            return [*args, *(kwargs[n] if n in kwargs else defaults[n] for n in names)]
        raise self.error(
            UnsupportedSyntaxError,
            node,
            f"keyword arguments {sorted(kwargs)} to `{label}` are not supported",
            "pass them by position",
        )

    def construct(self, cls: type, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
        """`Params(W=w, b=b)`: a dataclass holding traced values (a parameter tree), built now."""
        try:
            return cls(*args, **kwargs)
        except Exception as exc:  # its __init__ or __post_init__ cannot take traced values
            raise self.error(
                TracingError,
                node,
                f"cannot build `{cls.__name__}` from traced values ({type(exc).__name__}: {exc})",
                "keep __post_init__ free of arithmetic on the fields, or pass the fields separately",
            ) from None

    @staticmethod
    def _is_inlined(callee: Any) -> bool:
        """A function of the user's own code, traced through from its source."""
        return (
            isinstance(callee, types.FunctionType)
            and not isinstance(callee, rules.CustomRule)
            and rules.lookup(callee) is None
            and _library_of(callee) is None
        )

    def unknown_callee(self, callee: Any, node: ast.Call) -> SymgradError:
        label = ast.unparse(node.func)
        register = f"symgrad.register({label}, <sympy function>)"
        fn = callee.__func__ if inspect.ismethod(callee) else callee
        library = _library_of(fn) if isinstance(fn, types.FunctionType) else None
        twin = _numpy_twin(fn)
        if twin is not None:  # scipy.linalg.solve: NumPy's function of the same name has a rule
            return self.error(
                UnknownCalleeError,
                node,
                f"symgrad has no rule for `{label}`; it has one for NumPy's `{twin}`",
                f"call `{twin}(...)` instead (SciPy's cholesky gives the upper factor: "
                "`np.linalg.cholesky(a, upper=True)`)"
                if twin.endswith("cholesky")
                else f"call `{twin}(...)` instead",
            )
        if library is not None:  # its source is not the user's: never traced, never blamed
            return self.error(
                UnknownCalleeError,
                node,
                f"symgrad has no rule for `{label}`, a function of the installed library `{library}` "
                "(symgrad does not trace into library code)",
                f"write the computation with supported functions (see symgrad.supported()), or give a "
                f"function of numbers a rule: {register}",
            )
        if fn is not callee and isinstance(fn, types.FunctionType):
            return self.error(
                UnknownCalleeError,
                node,
                f"`{label}` is a method; symgrad traces plain functions, not methods",
                "call a module-level function that takes what the method reads from its object as arguments",
            )
        return self.error(
            UnknownCalleeError,
            node,
            f"symgrad has no rule for `{label}`",
            f"use a supported function (see symgrad.supported()), or register one: {register}",
        )

    def extremum_of(self, callee: Any, items: list[Any], node: ast.Call, hint: str | None) -> Any:
        """`max(xs)` as `max(xs[0], xs[1], ...)`: the rule of max with every item."""
        rule = rules.lookup(callee)
        assert rule is not None
        return self.call_rule(callee, rule, items, {}, node, hint)

    def call_rule(
        self,
        callee: Any,
        rule: rules.Rule,
        args: list[Any],
        kwargs: dict[str, Any],
        node: ast.Call,
        hint: str | None,
    ) -> Any:
        label = ast.unparse(node.func)
        if kwargs:  # by the callee's signature, else the rule's (`stats.norm.cdf(x, *args, **kwds)`)
            args = self._by_position(callee, args, kwargs, node, label, rule.build)
        traced = any(is_traced(a) for a in args)
        if _only_numbers(callee):
            for arg in args:
                self._numbers_only(arg)
        for arg in args:  # a string only as a constant: `float("inf")`
            if not isinstance(arg, Boolean) and not (isinstance(arg, str) and not traced):
                self._check_number(arg, node)
        problem = rules.check_arguments(rule, label, len(args))
        if not traced and (problem is None or rule.build is not rules.WHERE):
            return self.call_static(callee, args, node, problem)  # e.g. round(x, 2) on constants
        if problem is not None:
            raise self.error(TracingError, node, *problem)
        if rule.build is not rules.WHERE:  # where's first argument is a condition
            args = [as_number(a) for a in args]
        try:
            expr = rule.build(*[to_sympy(a) for a in args])
        except TypeError as exc:  # a rule given with symgrad.register that takes other arguments
            raise self.error(
                TracingError,
                node,
                f"the rule registered for `{label}` does not take these arguments ({exc})",
                "check the number of arguments",
            ) from None
        return self.node(self.keep_shape(expr, [to_sympy(a) for a in args]), hint, node)

    def call_static(
        self,
        callee: Any,
        args: list[Any],
        node: ast.Call,
        problem: tuple[str, str] | None,
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        """Run a call on constant arguments now, as Python would: `float("nan")`, `math.log(2.0)`."""
        try:
            return _static_value(callee(*[_static_value(a) for a in args], **(kwargs or {})))
        except (TypeError, ValueError, ArithmeticError) as exc:
            if problem is not None:
                raise self.error(TracingError, node, *problem) from None
            raise self.error(
                TracingError,
                node,
                f"`{ast.unparse(node)}` raises {type(exc).__name__} on these constant arguments: {exc}",
                "change the arguments: the function raises here when run as written",
            ) from None

    def call_custom(
        self,
        callee: rules.CustomRule,
        args: list[Any],
        kwargs: dict[str, Any],
        node: ast.Call,
        hint: str | None,
    ) -> Any:
        """A function with its own derivative rule: its value from its body, its partials
        from the rule, both traced like any other code."""
        if callee.derivative is None:
            raise self.error(
                TracingError,
                node,
                f"`{callee.fn.__name__}` has no derivative rule yet",
                f"register one with @{callee.fn.__name__}.defderiv",
            )
        if kwargs:
            raise self.error(
                UnsupportedSyntaxError, node, "keyword arguments to a custom rule", "pass them by position"
            )
        value = self.inline(cast(types.FunctionType, callee.fn), args, {}, node)
        partials = self.inline(cast(types.FunctionType, callee.derivative), args, {}, node)
        partials = partials if isinstance(partials, tuple) else (partials,)
        if len(partials) != len(args):
            raise self.error(
                TracingError,
                node,
                f"the derivative rule of `{callee.fn.__name__}` gives {len(partials)} "
                f"partials for {len(args)} arguments",
                "return one partial derivative per argument",
            )
        operands = [to_sympy(v) for v in (value, *args, *partials)]
        return self.node(rules.CustomDerivative(*operands), hint, node)

    def inline(
        self,
        fn: types.FunctionType,
        args: list[Any],
        kwargs: dict[str, Any],
        node: ast.Call,
        bound_self: tuple[str, ...] | None = None,
    ) -> Any:
        """Trace a call of the user's function `fn` through its source (`bound_self`: a method
        called on an object read from outside, `self.helper(x)`: where that object is)."""
        if fn in self.stack or fn is self.frame.source.fn:
            raise self.error(
                TracingError,
                node,
                f"recursive call to `{fn.__name__}` cannot be unrolled",
                "rewrite the recursion as a `for i in range(N)` loop",
            )
        signature = inspect.signature(fn)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise self.error(
                TracingError, node, f"bad call to `{fn.__name__}`: {exc}", "match its signature"
            ) from None
        bound.apply_defaults()
        # `Model_loss(self, x)`: a method's function called on an object, not on a number
        on_object = bool(args) and not isinstance(args[0], (sympy.Basic, numbers.Number, tuple, str))
        source = parse.load(fn, bound=on_object)
        path = self.chain(node.func)
        if path is not None:  # default values were computed when the callee was defined
            self.graph.deps.append(((*path, ".__defaults__"), cache.fingerprint(fn.__defaults__)))
            self.graph.deps.append(((*path, ".__kwdefaults__"), cache.fingerprint(fn.__kwdefaults__)))
        else:
            self.graph.cacheable = False
        callee = Tracer(self.graph, (*self.stack, self.frame.source.fn))
        callee.conditional = self.conditional or bool(self.frame.returns) or is_traced(self.frame.path)
        saved_no_grad = self.frame.no_grad
        env = dict(bound.arguments)
        arguments = _argument_nodes(signature, node, bound_self is not None)
        passed = self._pass_memories(arguments, env)
        writes = {id(m.root): m.root.writes for m in passed}
        outer = self.frame.outer | set(writes)
        origins = self._origins(signature, arguments, env, bound_self)
        result = callee.run(source, env, path, outer, origins)
        self._read_back(passed, writes, node, fn.__name__)
        returned = callee.frame.returned_memories
        if returned and returned[0] is not None and all(r is returned[0] for r in returned):
            # NumPy's result is the caller's array itself, which later in-place updates change
            self.frame.call_aliases[id(node)] = returned[0]
            self.frame.live_results.append((returned[0], fn.__name__))
        if saved_no_grad and is_traced(result):
            result = self.node(rules.StopGradient(result), fn.__name__, node)
        return result

    def _origins(
        self,
        signature: inspect.Signature,
        arguments: dict[str, Any],
        env: dict[str, Any],
        bound_self: tuple[str, ...] | None,
    ) -> dict[str, tuple[str, ...]]:
        """For the callee's parameters bound to objects from outside (`helper(cfg)`, `self`):
        where they are found from the traced function, so that arrays read from them are
        inputs and numbers read from them are guarded."""
        found: dict[str, tuple[str, ...]] = {}
        if bound_self is not None and signature.parameters:
            found[next(iter(signature.parameters))] = bound_self
        for param, arg in arguments.items():
            if param in found or not isinstance(arg, ast.expr):
                continue
            if isinstance(env.get(param), (sympy.Basic, numbers.Number, str)):
                continue
            path = self.chain(arg)
            if path is not None:
                found[param] = path
        return found

    def _pass_memories(self, arguments: dict[str, Any], env: dict[str, Any]) -> list[_Memory]:
        """Give the callee's parameters the memory of the caller's arrays passed by name
        (`h(x)`), so that the callee's `a += v` changes `x` here too, as in NumPy."""
        passed = []
        for param, arg in arguments.items():
            if isinstance(arg, ast.Name) and arg.id in self.frame.env and is_traced(env.get(param)):
                memory = self.frame.env.setdefault(_ALIAS + arg.id, _Memory())
                env[_ALIAS + param] = memory
                passed.append(memory)
        return passed

    def _read_back(self, passed: list[_Memory], writes: dict[int, int], node: ast.Call, fn_name: str) -> None:
        """After the call: every name here of an array the callee changed in place holds the
        new value; a view of it (which NumPy would change too) is refused."""
        for root in {id(m.root): m.root for m in passed}.values():
            if root.writes == writes[id(root)]:
                continue
            earlier = [name for memory, name in self.frame.live_results if memory is root]
            if earlier:
                raise self.error(
                    UnsupportedSyntaxError,
                    node,
                    f"this call changes an array in place that an earlier call in the same "
                    f"statement, to `{earlier[0]}`, returned: NumPy's result of that call is the "
                    "same array and changes too, which symgrad does not follow inside an expression",
                    f"assign the earlier call's result to a name in its own statement first "
                    f"(`y = {earlier[0]}(...)`), or make `{earlier[0]}` return a new array "
                    "(`a = a + v` instead of `a += v`)",
                )
            names = [k for k, m in self.frame.env.items() if k.startswith(_ALIAS) and m.root is root]
            views = [k[len(_ALIAS) :] for k in names if self.frame.env[k].view_of is not None]
            if views:
                raise self.error(
                    UnsupportedSyntaxError,
                    node,
                    f"this call changes an array in place that `{views[0]}` is a view of: NumPy would "
                    "change the view too, which symgrad does not follow",
                    f"in `{fn_name}`, make a new array instead of updating the argument in place "
                    "(`a = a + v` instead of `a += v`)",
                )
            for key in names:
                self.frame.env[key[len(_ALIAS) :]] = root.written


# Pure functions that may run at trace time on constant arguments: `len(DATA)`, `math.comb(n, k)`.
_FOLDABLE = frozenset({len, int, float, abs, round, min, max, pow, sum, bool})


# The attributes of a complex number (or array) that read its parts: `z.real`, `z.conj()`.
_COMPLEX_PARTS: dict[str, Callable[[Any], Any]] = {
    "real": sympy.re,
    "imag": sympy.im,
    "conj": sympy.conjugate,
    "conjugate": sympy.conjugate,
}


@dataclass(frozen=True)
class _PartOf:
    """`z.conj` before it is called: the part and the value it reads."""

    part: Callable[[Any], Any]
    base: Any


def _numpy_twin(fn: Any) -> str | None:
    """`np.linalg.solve` for `scipy.linalg.solve`: the NumPy function of the same name that
    symgrad has a rule for, where SciPy's counterpart has none."""
    if not getattr(fn, "__module__", "").startswith("scipy.linalg"):
        return None
    twin = getattr(np.linalg, getattr(fn, "__name__", ""), None)
    return f"np.linalg.{fn.__name__}" if twin is not None and _array_handler(twin) is not None else None


def _library_roots() -> tuple[str, ...]:
    """Folders of the standard library and of installed packages (site-packages)."""
    paths = sysconfig.get_paths()
    found = [paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    found += [*site.getsitepackages(), site.getusersitepackages()] if hasattr(site, "getsitepackages") else []
    return tuple(os.path.join(os.path.realpath(p), "") for p in found if p)


_LIBRARY_ROOTS = _library_roots()
_LIBRARIES = frozenset({"numpy", "scipy", "sympy"})  # wherever they are installed


def _library_of(fn: types.FunctionType) -> str | None:
    """The top-level package of a function defined in an installed library, else None.

    symgrad's own functions are traced wherever symgrad is installed."""
    package = (getattr(fn, "__module__", None) or "").partition(".")[0]
    if package == "symgrad" or getattr(fn, "__symgrad_wrapper__", False):
        return None
    if package in _LIBRARIES:
        return package
    filename = os.path.realpath(fn.__code__.co_filename)
    if any(filename.startswith(root) for root in _LIBRARY_ROOTS):
        return package or os.path.basename(filename)
    return None


def _array_handler(callee: Any) -> str | None:
    return _lookup_in(ARRAY_CALLS, callee)


def _lookup_in(table: dict[Any, str], callee: Any) -> str | None:
    try:
        return table.get(callee)
    except TypeError:  # unhashable callee
        return None


def _only_numbers(callee: Any) -> bool:
    """Whether NumPy would refuse an array here: `math.tanh(x)`, `min(x, y)`, `float(x)`."""
    return getattr(callee, "__module__", None) == "math" or callee in (min, max, float, int, round)


def _has_traced(args: list[Any], kwargs: dict[str, Any]) -> bool:
    """Whether a traced value is among the arguments, nested lists (`[[x, 1.0]]`) included."""
    return any(_traced_within(v) for v in [*args, *kwargs.values()])


def _traced_within(value: Any) -> bool:
    if isinstance(value, tuple):
        return any(_traced_within(v) for v in value)
    return is_traced(value)


def _foldable(callee: Any, args: list[Any], kwargs: dict[str, Any]) -> bool:
    if any(_traced_within(a) for a in [*args, *kwargs.values()]):
        return callee is len and len(args) == 1 and isinstance(args[0], tuple) and not kwargs
    try:
        return callee in _FOLDABLE or callee in ARRAY_CALLS or getattr(callee, "__module__", None) == "math"
    except TypeError:  # unhashable callee
        return False


def _elif_chain(stmt: ast.If) -> tuple[list[ast.If], list[ast.stmt]]:
    """`if a: ... elif b: ... else: ...` as its tests in order and the final else block."""
    levels = [stmt]
    while len(levels[-1].orelse) == 1 and isinstance(levels[-1].orelse[0], ast.If):
        levels.append(levels[-1].orelse[0])
    return levels, levels[-1].orelse


# Values from outside the function that become constants of the generated program.
_DATA = (numbers.Number, str, bytes, tuple, list, dict, np.ndarray, np.generic, type(None))


def _argument_nodes(signature: inspect.Signature, node: ast.Call, skip_self: bool) -> dict[str, Any]:
    """The callee's parameters and the caller's expressions bound to them (`h(x, scale=s)`);
    empty for a call that spreads `*xs` or `**d`, whose expressions are not one per parameter."""
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        return {}
    placeholder = [ast.Constant(value=None)] * skip_self  # `self` of `obj.method(...)`
    try:
        bound = signature.bind_partial(
            *placeholder, *node.args, **{k.arg: k.value for k in node.keywords if k.arg}
        )
    except TypeError:
        return {}
    return dict(bound.arguments)


def _kind(value: Any) -> str:
    """A value's kind in the user's terms."""
    return "number or array" if isinstance(value, (sympy.Basic, numbers.Number)) else kind_of(value)


def _viewed_name(value: ast.expr) -> str | None:
    """The name whose array `value` is a view of in NumPy: `x[0:2]`, `x.T`, `x.reshape(2, 3)`,
    `np.ravel(x)`; None for a new array."""
    if isinstance(value, (ast.Subscript, ast.Attribute)) and isinstance(value.value, ast.Name):
        return value.value.id
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in VIEW_METHODS
    ):
        if isinstance(value.func.value, ast.Name) and value.func.value.id not in ("np", "numpy"):
            return value.func.value.id  # x.reshape(...)
        if value.args and isinstance(value.args[0], ast.Name):
            return value.args[0].id  # np.reshape(x, ...)
    return None


def _is_captured_array(value: Any) -> bool:
    """An array read from outside the function: an input of the program, not a constant."""
    return isinstance(value, np.ndarray) and value.ndim > 0


def _capture_name(path: tuple[str, ...]) -> str:
    """`X` for `X`, `self_w` for `self.w`: the program's parameter for a captured array (the
    path's last name and the attributes after it)."""
    names = [i for i, step in enumerate(path) if not step.startswith(".")]
    name = "_".join(step.lstrip(".") for step in path[names[-1] if names else 0 :])
    return name if name.isidentifier() else "data"


_OP_TEXT = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.FloorDiv: "//",
    ast.Mod: "%",
}


class _Memory:
    """One array's memory, as names share it: `t = x` (the same), `t = x[0:2]` (a view)."""

    def __init__(self, view_of: _Memory | None = None, from_sequence: bool = False) -> None:
        self.view_of = view_of
        self.root: _Memory = self if view_of is None else view_of.root
        self.from_sequence = from_sequence  # an item of a list or tuple: some array, unknown
        self.written: Any = None  # the value last written in place
        self.writes = 0  # how many times: a caller reads `written` back if this grew in a call


class _Raised(Exception):  # noqa: N818 - carries the user's exception out of the trace
    """The traced function's own `raise` or failing `assert`, reached on static values."""

    def __init__(self, exc: BaseException, note: str) -> None:
        super().__init__(str(exc))
        self.exc = exc
        self.note = note


# f-string conversions: `!s`, `!r`, `!a`.
_CONVERSIONS: dict[int, Callable[[Any], str]] = {115: str, 114: repr, 97: ascii}

# Calls with no numeric effect, skipped by the generated code: print, logging, warnings.warn.
_LOG_NAMES = frozenset({"debug", "info", "warning", "warn", "error", "critical", "exception", "log"})


def _is_output(callee: Any) -> bool:
    if callee is print or callee is warnings.warn:
        return True
    name = getattr(callee, "__name__", "")
    if getattr(callee, "__module__", None) == "logging" and name in _LOG_NAMES:
        return True  # logging.info(...)
    owner = getattr(callee, "__self__", None)
    return isinstance(owner, (logging.Logger, logging.LoggerAdapter)) and name in _LOG_NAMES


class _StructureMismatchError(Exception):
    """Values to select between are not all numbers, or are tuples of different sizes."""


def trace(
    source: parse.Source,
    static: dict[str, Any],
    shapes: dict[str, tuple[int, ...]] | None = None,
    loops: str = "auto",
    complex_params: frozenset[str] = frozenset(),
) -> Graph:
    """Interpret `source` into a Graph whose inputs are its non-static parameters.

    A parameter in `complex_params` takes complex values: the program reads its real and
    imaginary parts (`z_re = numpy.real(z)`) and computes with pairs of real values.

    With `shapes` (one per input), every node knows its shape and array-level operations
    (reductions, `@`, indexing) are allowed; without, the program must be elementwise, and
    `ShapesNeeded` is raised at the first array-level operation.

    An in-place update writes through to the other names of an array, as NumPy does, unless
    the function runs per element on these arrays (`Graph.per_element`): then it is traced
    again with in-place updates rebinding, as they do on the numbers it runs on."""
    try:
        graph = _trace(source, static, shapes, rebind=False, loops=loops, complex_params=complex_params)
        if graph.per_element and graph.wrote_through:
            graph = _trace(source, static, shapes, rebind=True, loops=loops, complex_params=complex_params)
    except _Raised as raised:  # the user's exception, as Python would raise it, with where
        if hasattr(raised.exc, "add_note"):  # Python 3.11+
            raised.exc.add_note(raised.note)
        raise raised.exc from None
    return graph


def _trace(
    source: parse.Source,
    static: dict[str, Any],
    shapes: dict[str, tuple[int, ...]] | None,
    rebind: bool,
    loops: str = "auto",
    complex_params: frozenset[str] = frozenset(),
) -> Graph:
    params = [
        a.arg for a in (*source.tree.args.posonlyargs, *source.tree.args.args, *source.tree.args.kwonlyargs)
    ]
    dynamic = [p for p in params if p not in static]
    graph = Graph(
        name=source.tree.name,
        params=tuple(dynamic),
        inputs=(),
        rebind=rebind,
        loops=loops,
        complex_values=True,
    )
    inputs = tuple(
        (complexes.complex_input if p in complex_params else real_symbol)(graph.names.fresh(p))
        for p in dynamic
    )
    graph.inputs = inputs
    if shapes is not None:
        graph.shapes = {symbol: tuple(shapes[p]) for symbol, p in zip(inputs, dynamic)}
    env: dict[str, Any] = dict(zip(dynamic, inputs))
    for p, symbol in zip(dynamic, inputs):
        if p in complex_params:  # read as its parts: every value the program computes is real
            real = graph.add(sympy.re(symbol), f"{symbol}_re")
            env[p] = real + sympy.I * graph.add(sympy.im(symbol), f"{symbol}_im")
    env.update(static)
    result = Tracer(graph).run(source, env)
    outputs, tree = trees.flatten(python_value(result))
    graph.outputs = tuple(_output_atom(graph, o, source) for o in outputs)
    graph.tuple_output = isinstance(result, tuple)
    if trees.structured(tree):  # a dict, a list, nested tuples: results come in this structure
        graph.output_tree = tree
        graph.cacheable = graph.cacheable and trees.plain(tree)
    parameters = len(dynamic)  # the arguments', not the arrays read from outside (captured)
    reached = [graph.inputs_reaching(o) for o in graph.outputs]
    graph.reach = tuple(tuple(sorted(i for i in r if 0 <= i < parameters)) for r in reached)
    graph.trip_shaped = tuple(n for n, r in enumerate(reached) if TRIP_COUNT in r)
    return graph


def _keyword_positions(fn: Any, given: int, kwargs: dict[str, Any], gaps: bool = False) -> list[str] | None:
    """The positional parameters of `fn` after the `given` first that `kwargs` fill: the next
    ones in order, or (`gaps`) up to the last keyword named, the others taking their
    defaults. None when the keywords name no such parameters."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    rest = positional[given:]
    if not gaps:
        names = rest[: len(kwargs)]
        return names if set(names) == set(kwargs) else None
    if not set(kwargs) <= set(rest):
        return None
    return rest[: max(rest.index(k) for k in kwargs) + 1]


def _defaults(fn: Any) -> dict[str, Any]:
    return {p.name: p.default for p in inspect.signature(fn).parameters.values() if p.default is not p.empty}


def _output_atom(graph: Graph, value: Any, source: parse.Source) -> Any:
    try:
        value = to_sympy(value)
    except TypeError:
        raise source.error(
            TracingError,
            source.tree,
            f"the function returns a {type(value).__name__}, not a number",
            "return a number, or a tuple, list or dict of numbers",
        ) from None
    if isinstance(value, Boolean) and not isinstance(value, sympy.Symbol):
        raise source.error(
            TracingError,
            source.tree,
            "the function returns a condition, which has no derivative",
            "return a number, e.g. `1.0 if cond else 0.0`",
        )
    if complexes.is_complex(value):  # vjp and jvp take it; grad refuses it (api.real_outputs)
        return graph.add_complex(value, "out")
    return graph.add(value, "out")
