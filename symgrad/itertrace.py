"""Tracing of Python containers and iteration: lists, dicts, comprehensions and builtins over them.

A mixin of the Tracer. Everything unrolls at trace time: a list of traced values is a tuple of
them (`ListValue`), a comprehension evaluates its element once per item of an iterable whose
length is known while tracing, and `sum`/`min`/`max` fold a sequence as Python does, left to
right, so that the value is computed in Python's order of operations.
"""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import sympy
from sympy.logic.boolalg import BooleanAtom

from . import arrays
from .errors import DataDependentLoopError, TracingError, UnsupportedSyntaxError

# Loop and comprehension iterations a trace unrolls at most, all together (each becomes
# straight-line code: 10,000 steps of a three-operation body take about a minute to decorate).
UNROLL_LIMIT = 20_000

_MISSING = object()

# Environment keys holding which array a name's value lives in (never a Python identifier).
ALIAS = "\0memory:"


class ListValue(tuple):  # type: ignore[type-arg]
    """A Python list while tracing: a tuple of its items that remembers it was a list
    (`isinstance(xs, list)`, `xs.append(v)` rebinding `xs`, slices that stay lists)."""

    __slots__ = ()


def python_value(value: Any) -> Any:
    """`value` with its traced lists as Python lists again: what the traced function returns."""
    if isinstance(value, ListValue):
        return [python_value(item) for item in value]
    if type(value) is tuple:
        return tuple(python_value(item) for item in value)
    if isinstance(value, dict):
        return {key: python_value(item) for key, item in value.items()}
    return value


class ContainerMethod:
    """`d.items`, `xs.index` before the call: the container and the method name."""

    def __init__(self, base: Any, name: str) -> None:
        self.base = base
        self.name = name


# Read-only methods of containers, run on the items as Python runs them.
_METHODS: dict[type, frozenset[str]] = {
    dict: frozenset({"items", "keys", "values", "get"}),
    tuple: frozenset({"index", "count"}),
}
# List methods that change the list: statements that rebind its names (`xs.append(v)`).
LIST_UPDATES = frozenset({"append", "extend", "insert"})


def _traced(value: Any) -> bool:
    return isinstance(value, sympy.Basic) and bool(value.free_symbols)


def sympy_constant(value: Any) -> Any:
    """A constant as a plain Python value: SymPy numbers and booleans collapse."""
    if isinstance(value, BooleanAtom):
        return bool(value)
    if isinstance(value, sympy.Integer):
        return int(value)
    if isinstance(value, sympy.Number):
        return float(value)
    return value


def _static_int(value: Any) -> int | None:
    value = sympy_constant(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _same_kind(like: Any, items: Sequence[Any]) -> Any:
    """`items` as a list if `like` is one, else as a tuple."""
    return ListValue(items) if isinstance(like, ListValue) else tuple(items)


def names_bound(target: ast.expr) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


class IterTracing:
    """Containers, comprehensions and iteration; mixed into `trace.Tracer`."""

    graph: Any
    frame: Any
    error: Callable[..., Any]
    node: Callable[..., Any]
    expr: Callable[..., Any]
    assign: Callable[..., None]
    condition: Callable[..., Any]
    binop: Callable[..., Any]
    shape: Callable[..., tuple[int, ...]]
    op: Callable[..., Any]

    # --- literals ------------------------------------------------------------------------------

    def expr_List(self, node: ast.List, hint: str | None) -> Any:
        return ListValue(self.expr(elt) for elt in node.elts)

    def expr_Dict(self, node: ast.Dict, hint: str | None) -> Any:
        result: dict[Any, Any] = {}
        for key, value in zip(node.keys, node.values):
            if key is None:  # `{**other}`
                raise self.error(
                    UnsupportedSyntaxError, value, "`**` in a dict literal is not supported", "list the items"
                )
            result[self.dict_key(self.expr(key), key)] = self.expr(value)
        return result

    def dict_key(self, key: Any, node: ast.AST) -> Any:
        key = sympy_constant(key)
        if _traced(key) or isinstance(key, sympy.Basic):
            raise self.error(
                TracingError,
                node,
                "a dict key computed from traced values",
                "use constant keys (strings, ints), known while tracing",
            )
        try:
            hash(key)
        except TypeError:
            raise self.error(
                TracingError, node, f"unhashable dict key {key!r}", "use strings or ints"
            ) from None
        return key

    # --- comprehensions ------------------------------------------------------------------------

    def expr_ListComp(self, node: ast.ListComp, hint: str | None) -> Any:
        return ListValue(self.comprehend(node.generators, lambda: self.expr(node.elt)))

    def expr_GeneratorExp(self, node: ast.GeneratorExp, hint: str | None) -> Any:
        # Evaluated at once: the element is free of side effects, so only the order matters.
        return tuple(self.comprehend(node.generators, lambda: self.expr(node.elt)))

    def expr_DictComp(self, node: ast.DictComp, hint: str | None) -> Any:
        pairs = self.comprehend(node.generators, lambda: (self.expr(node.key), self.expr(node.value)))
        return {self.dict_key(k, node.key): v for k, v in pairs}

    def comprehend(self, generators: list[ast.comprehension], element: Callable[[], Any]) -> list[Any]:
        """The elements of a comprehension, one per combination of items; its targets are its
        own names (as in Python 3), so the enclosing names are restored afterwards."""
        env = self.frame.env
        names = [n for g in generators for n in names_bound(g.target)]
        saved = {key: env.get(key, _MISSING) for n in names for key in (n, ALIAS + n)}
        out: list[Any] = []
        try:
            self._generate(generators, element, out)
        finally:
            for key, value in saved.items():
                if value is _MISSING:
                    self.frame.env.pop(key, None)
                else:
                    self.frame.env[key] = value
        return out

    def _generate(
        self, generators: list[ast.comprehension], element: Callable[[], Any], out: list[Any]
    ) -> None:
        if not generators:
            out.append(element())
            return
        first, rest = generators[0], generators[1:]
        if first.is_async:
            raise self.error(UnsupportedSyntaxError, first.iter, "async comprehensions", "use a plain `for`")
        items = self.iterate(self.expr(first.iter), first.iter)
        self.count_unrolled(len(items), first.iter)
        for item in items:
            self.assign(first.target, item)
            if all(self._keeps(test) for test in first.ifs):
                self._generate(rest, element, out)

    def _keeps(self, test: ast.expr) -> bool:
        cond = self.condition(test)
        if _traced(cond):
            raise self.error(
                DataDependentLoopError,
                test,
                f"the filter `if {ast.unparse(test)}` depends on traced values, so the number of "
                "items would too; symgrad unrolls comprehensions while tracing",
                "keep every item and choose its value instead: "
                "`sum(x if x > 0 else 0.0 for x in xs)`, or filter on constants and static arguments",
            )
        return bool(sympy_constant(cond))

    def count_unrolled(self, count: int, node: ast.AST, hint: str | None = None) -> None:
        self.graph.unrolled += count
        if self.graph.unrolled > UNROLL_LIMIT:
            why = [r for f, line, r in self.graph.unrolled_loops if line == getattr(node, "lineno", None)]
            kept = (
                f"this loop could not be kept as a loop ({why[0]}); "
                if why
                else 'symgrad keeps `for i in range(N)` loops over numbers as loops (loops="auto" or "keep"); '
            )
            raise self.error(
                DataDependentLoopError,
                node,
                f"this loop would unroll to {self.graph.unrolled:,} iterations in all; symgrad unrolls "
                f"loops and comprehensions into straight-line code, up to {UNROLL_LIMIT:,} iterations",
                hint
                or kept
                + "else differentiate one step as its own function and run the loop in Python, "
                "chaining the steps' symgrad.vjp pullbacks backwards (reverse mode by hand)",
            )

    # --- iteration -----------------------------------------------------------------------------

    def iterate(self, value: Any, node: ast.AST) -> Sequence[Any]:
        """The items `for v in value` goes through: a list, tuple, range or dict's keys as they
        are; the rows of an array (its first axis) when its shape is known."""
        if isinstance(value, (tuple, range)):
            return value
        if isinstance(value, (list, dict)):
            return tuple(value)
        if _traced(value):
            return self.rows(value, node)
        kind = "a number" if isinstance(value, (int, float, sympy.Basic)) else f"a {type(value).__name__}"
        raise self.error(
            UnsupportedSyntaxError,
            node,
            f"cannot iterate over {kind}",
            "iterate over range(N), a list or tuple (or enumerate/zip/reversed of them), a dict's "
            ".items(), or an array argument",
        )

    def rows(self, value: Any, node: ast.AST) -> tuple[Any, ...]:
        shape = self.shape(value)  # without shapes: ShapesNeeded, traced again for them
        if not shape:
            raise self.error(
                TracingError,
                node,
                "iterating over a number (this argument is a scalar here)",
                "pass an array, or loop over `range(N)` and index",
            )
        self.count_unrolled(
            shape[0],
            node,
            "write it with whole-array operations (`np.sum(X, axis=0)`, `X @ w`) instead of a loop over rows",
        )
        return tuple(self.op(arrays.Index, [value], (k,), None, node) for k in range(shape[0]))

    # --- builtins over sequences ---------------------------------------------------------------

    def sequence_call(
        self,
        name: str,
        callee: Any,
        args: list[Any],
        kwargs: dict[str, Any],
        node: ast.Call,
        hint: str | None,
    ) -> Any:
        """`range`, `enumerate`, `zip`, `sum(xs)`, ...; NotImplemented where the call is not
        about a sequence (`max(x, 0)`, `len(x)` of an array) and takes the ordinary path."""
        handler: Callable[..., Any] = getattr(self, f"seq_{name}")
        try:
            inspect.signature(handler).bind(callee, *args, node=node, hint=hint, **kwargs)
        except TypeError as exc:
            raise self.error(
                TracingError,
                node,
                f"bad arguments for `{ast.unparse(node.func)}`: {exc}",
                "check the signature",
            ) from None
        return handler(callee, *args, node=node, hint=hint, **kwargs)

    def seq_range(self, callee: Any, *bounds: Any, node: ast.Call, hint: str | None) -> Any:
        if any(_traced(b) for b in bounds):
            raise self.error(
                DataDependentLoopError,
                node,
                "the loop's trip count depends on a traced value",
                "make the bound a constant, or mark the parameter static: grad(f, static=('n',))",
            )
        ints = [_static_int(b) for b in bounds]
        if not bounds or any(b is None for b in ints):
            raise self.error(TracingError, node, "range() bounds must be integers", "pass int bounds")
        return range(*[b for b in ints if b is not None])

    def seq_enumerate(
        self, callee: Any, items: Any, start: Any = 0, *, node: ast.Call, hint: str | None
    ) -> Any:
        first = _static_int(start)
        if first is None:
            raise self.error(TracingError, node, "enumerate's start must be an int", "pass an int start")
        return tuple((first + k, v) for k, v in enumerate(self.iterate(items, node)))

    def seq_zip(
        self, callee: Any, *parts: Any, node: ast.Call, hint: str | None, strict: bool = False
    ) -> Any:
        columns = [self.iterate(p, node) for p in parts]
        if strict and len({len(c) for c in columns}) > 1:
            raise self.error(
                TracingError,
                node,
                f"zip(strict=True) of lengths {', '.join(str(len(c)) for c in columns)}",
                "pass sequences of one length",
            )
        return tuple(zip(*columns))

    def seq_reversed(self, callee: Any, items: Any, *, node: ast.Call, hint: str | None) -> Any:
        return self.iterate(items, node)[::-1]

    def seq_list(self, callee: Any, items: Any = (), *, node: ast.Call, hint: str | None) -> Any:
        return ListValue(self.iterate(items, node))

    def seq_tuple(self, callee: Any, items: Any = (), *, node: ast.Call, hint: str | None) -> Any:
        return tuple(self.iterate(items, node))

    def seq_dict(
        self, callee: Any, items: Any = (), *, node: ast.Call, hint: str | None, **named: Any
    ) -> Any:
        pairs = list(items.items()) if isinstance(items, dict) else list(self.iterate(items, node))
        if not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
            raise self.error(
                TracingError, node, "dict() takes (key, value) pairs", "pass pairs: dict(zip(ks, vs))"
            )
        return {**{self.dict_key(k, node): v for k, v in pairs}, **named}

    def seq_len(self, callee: Any, items: Any, *, node: ast.Call, hint: str | None) -> Any:
        if isinstance(items, (tuple, range, list, dict)):
            return len(items)
        return NotImplemented  # an array's len, or a constant's

    def seq_isinstance(self, callee: Any, value: Any, kinds: Any, *, node: ast.Call, hint: str | None) -> Any:
        if _traced(value):
            raise self.error(
                TracingError,
                node,
                f"`{ast.unparse(node)}` of a traced value: the same compiled code serves floats and "
                "arrays, so its type is not known while tracing",
                "decide on the shape instead, which is known for each compiled variant: "
                "`np.ndim(x) == 0` for a number",
            )
        as_seen = list if isinstance(value, ListValue) else tuple if isinstance(value, tuple) else None
        if as_seen is not None:
            return issubclass(as_seen, kinds)
        return isinstance(sympy_constant(value), kinds)

    def seq_sum(self, callee: Any, items: Any, start: Any = 0, *, node: ast.Call, hint: str | None) -> Any:
        return self._fold(ast.Add(), items, start, node, hint)

    def seq_fsum(self, callee: Any, items: Any, *, node: ast.Call, hint: str | None) -> Any:
        return self._fold(ast.Add(), items, 0.0, node, hint)

    def seq_prod(self, callee: Any, items: Any, *, node: ast.Call, hint: str | None, start: Any = 1) -> Any:
        return self._fold(ast.Mult(), items, start, node, hint)

    def _fold(self, op: ast.operator, items: Any, start: Any, node: ast.Call, hint: str | None) -> Any:
        """`sum(xs)`: `start + xs[0] + xs[1] + ...` in Python's order, one node per step."""
        if not _traced_items(items):
            return NotImplemented  # constants: run by Python itself
        if _traced(items):  # an array: its rows added up, as one reduction over the first axis
            reduced = self.reduce_rows("sum" if isinstance(op, ast.Add) else "prod", items, node)
            return self.binop(op, start, reduced, node, hint)
        values = self.iterate(items, node)
        total = start
        for k, value in enumerate(values):
            total = self.binop(op, total, value, node, hint if k == len(values) - 1 else None)
        return total

    def seq_max(
        self, callee: Any, *args: Any, node: ast.Call, hint: str | None, default: Any = _MISSING
    ) -> Any:
        return self._extremum(callee, args, default, node, hint)

    def seq_min(
        self, callee: Any, *args: Any, node: ast.Call, hint: str | None, default: Any = _MISSING
    ) -> Any:
        return self._extremum(callee, args, default, node, hint)

    def _extremum(
        self, callee: Any, args: tuple[Any, ...], default: Any, node: ast.Call, hint: str | None
    ) -> Any:
        """`max(xs)` over a sequence is `max(xs[0], xs[1], ...)`, with max's rule (ties share)."""
        if len(args) != 1 or (not isinstance(args[0], (tuple, list, range, dict)) and not _traced(args[0])):
            return NotImplemented if default is _MISSING else self._bad_default(node)
        if _traced(args[0]):  # an array: the largest of its rows, one reduction over the first axis
            return self.reduce_rows(callee.__name__, args[0], node, hint)
        items = list(self.iterate(args[0], node))
        if not items:
            if default is _MISSING:
                raise self.error(
                    TracingError,
                    node,
                    f"`{ast.unparse(node.func)}()` of an empty sequence",
                    f"give a default: `{ast.unparse(node.func)}(xs, default=0.0)`",
                )
            return default
        if not _traced_items(items):
            return callee(sympy_constant(v) for v in items)  # constants: Python's own max
        return items[0] if len(items) == 1 else self.extremum_of(callee, items, node, hint)

    def _bad_default(self, node: ast.Call) -> Any:
        raise self.error(
            TracingError, node, "`default=` goes with one sequence argument", "pass one sequence"
        )

    extremum_of: Callable[..., Any]  # the Tracer's rule call for `max(a, b, ...)`
    array_call: Callable[..., Any]

    def reduce_rows(self, name: str, value: Any, node: ast.Call, hint: str | None = None) -> Any:
        """`sum(X)`, `max(X)` of an array: what Python's loop over its rows computes."""
        shape = self.shape(value)
        if not shape:
            self.rows(value, node)  # refused: a number has no rows
        if name in ("max", "min") and len(shape) > 1:
            raise self.error(
                TracingError,
                node,
                f"`{name}()` over the rows of a {len(shape)}-D array: Python cannot compare arrays",
                f"take the elementwise {name} over the first axis: `np.{name}(X, axis=0)`",
            )
        return self.array_call(name, [value], {"axis": 0}, node, hint)

    # --- subscripts and methods ----------------------------------------------------------------

    def subscript_container(self, base: Any, node: ast.Subscript) -> Any:
        """`xs[0]`, `xs[-1]`, `xs[1:3]` of a list, tuple or range; `d["w"]` of a dict."""
        if isinstance(base, dict):
            key = self.dict_key(self.expr(node.slice), node.slice)
            if key not in base:
                raise self.error(TracingError, node, f"key {key!r} is not in the dict", "use an existing key")
            return base[key]
        if isinstance(node.slice, ast.Slice):
            bounds = [
                None if b is None else self._static_index(b, node)
                for b in (node.slice.lower, node.slice.upper, node.slice.step)
            ]
            if bounds[2] == 0:
                raise self.error(TracingError, node, "slice step cannot be zero", "use a nonzero step")
            return _same_kind(base, base[slice(*bounds)]) if isinstance(base, tuple) else base[slice(*bounds)]
        picked = self.loop_pick(base, node)  # type: ignore[attr-defined]
        if picked is not None:  # `w[i % 10]` in a kept loop's body
            return picked
        index = self._static_index(node.slice, node)
        if -len(base) <= index < len(base):
            return base[index]
        raise self.error(
            TracingError,
            node,
            f"index {index} is out of range for a {kind_of(base)} of {len(base)}",
            "use a smaller index",
        )

    def _static_index(self, item: ast.expr, node: ast.AST) -> int:
        value = _static_int(self.expr(item))
        if value is None:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                "a list or tuple can only be indexed with constant ints and slices",
                "index with constants, loop counters or static arguments (`xs[i]` in `for i in range(len(xs))`)",
            )
        return value

    def container_method(self, base: Any, name: str) -> ContainerMethod | None:
        allowed = (
            _METHODS[dict] if isinstance(base, dict) else _METHODS[tuple] if isinstance(base, tuple) else ()
        )
        return ContainerMethod(base, name) if name in allowed else None

    def call_container_method(self, method: ContainerMethod, args: list[Any], node: ast.Call) -> Any:
        base, name = method.base, method.name
        if name in ("items", "keys", "values"):
            return tuple(getattr(base, name)())
        if name == "get":
            return base.get(self.dict_key(args[0], node), *args[1:])
        if any(_traced(a) for a in args):
            raise self.error(
                TracingError, node, f"`.{name}` of a traced value", "compare constants, or index by position"
            )
        return getattr(tuple(sympy_constant(v) for v in base), name)(*[sympy_constant(a) for a in args])

    def update_list(self, call: ast.Call, node: ast.stmt) -> None:
        """`xs.append(v)`, `xs.extend(ys)`, `xs.insert(i, v)`: every name of that list is
        rebound to the longer one, which is what Python's change in place looks like."""
        func = call.func
        assert isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
        old = self.expr(func.value)
        if id(old) in self.frame.passed_lists:
            raise self.error(
                UnsupportedSyntaxError,
                node,
                f"`{ast.unparse(func)}` changes a list the caller passed in, which symgrad does not follow",
                f"return the new list instead: `return {func.value.id} + [...]`",
            )
        args = [self.expr(a) for a in call.args]
        items = list(old)
        if func.attr == "append" and len(args) == 1:
            items.append(args[0])
        elif func.attr == "extend" and len(args) == 1:
            items.extend(self.iterate(args[0], call))
        elif func.attr == "insert" and len(args) == 2 and _static_int(args[0]) is not None:
            items.insert(_static_int(args[0]) or 0, args[1])
        else:
            raise self.error(
                TracingError, call, f"bad arguments for `{ast.unparse(func)}`", "check the signature"
            )
        new = ListValue(items)
        for key, value in list(self.frame.env.items()):
            if value is old:  # `ys = xs; xs.append(v)` changes `ys` too, as in Python
                self.frame.env[key] = new


def kind_of(value: Any) -> str:
    return "list" if isinstance(value, ListValue) else type(value).__name__


def _traced_items(items: Any) -> bool:
    """Whether a sequence holds traced values (or is a traced array, iterated by rows)."""
    if _traced(items):
        return True
    if isinstance(items, dict):
        items = tuple(items)
    if isinstance(items, (tuple, list)):
        return any(_traced_items(v) if isinstance(v, tuple) else _traced(v) for v in items)
    return False


# Builtins with a meaning on sequences, and their handler (method `seq_<name>`).
SEQUENCE_CALLS: dict[Any, str] = {
    range: "range",
    enumerate: "enumerate",
    zip: "zip",
    reversed: "reversed",
    list: "list",
    tuple: "tuple",
    dict: "dict",
    len: "len",
    isinstance: "isinstance",
    sum: "sum",
    math.fsum: "fsum",
    math.prod: "prod",
    max: "max",
    min: "min",
}
