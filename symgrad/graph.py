"""The Graph: an ordered SSA program `t_k = expr_k(parents)`, the data passed between stages."""

from __future__ import annotations

import keyword
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import sympy

from .arrays import shape_of

Expr = Any  # a SymPy expression, boolean or number

# Names the generated code needs for itself; a parameter or variable so named is renamed.
RESERVED = frozenset({"numpy", "math", "builtins", "sg", "scipy_special", "None", "True", "False"})


class Names:
    """Hands out unique, readable, deterministic identifiers: `z`, `z_1`, `t0`, `t1`, ..."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self.taken: set[str] = set(RESERVED) | set(taken)
        self.counters: dict[str, int] = {}

    def fresh(self, hint: str) -> str:
        """`hint` itself if free, else `hint_1`, `hint_2`, ..."""
        name, k = hint, self.counters.get(hint, 0)  # where the last search for this hint ended
        if k:
            name = f"{hint}_{k}"
        while name in self.taken or keyword.iskeyword(name):
            k += 1
            name = f"{hint}_{k}"
        self.counters[hint] = k
        self.taken.add(name)
        return name

    def temp(self, prefix: str) -> str:
        """The next free numbered temporary: `t0`, `t1`, ... (or `c0`, `c1`, ...)."""
        while True:
            k = self.counters.get(f"{prefix}#", 0)
            self.counters[f"{prefix}#"] = k + 1
            name = f"{prefix}{k}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def copy(self) -> Names:
        other = Names()
        other.taken = set(self.taken)
        other.counters = dict(self.counters)
        return other


def real_symbol(name: str) -> sympy.Symbol:
    """Graph values are real: complex symbols would turn Abs' into re/im noise."""
    return sympy.Symbol(name, real=True)


@dataclass
class Graph:
    """An SSA program over SymPy expressions.

    Attributes:
        name: the traced function's name.
        params: the parameter names of the generated function, in order.
        inputs: one real SymPy symbol per parameter (same order).
        nodes: `(symbol, expression)` pairs in evaluation order; expressions refer only to
            inputs and earlier node symbols.
        outputs: atoms (node symbols, inputs or numbers) that the program returns.
        lines: source line of each node, for the listing and generated comments.
    """

    name: str
    params: tuple[str, ...]
    inputs: tuple[sympy.Symbol, ...]
    nodes: list[tuple[sympy.Symbol, Expr]] = field(default_factory=list)
    outputs: tuple[Expr, ...] = ()
    lines: dict[sympy.Symbol, tuple[Any, ...]] = field(default_factory=dict)  # (file, line[, label])
    names: Names = field(default_factory=Names)
    memo: dict[Expr, sympy.Symbol] = field(default_factory=dict)
    tuple_output: bool = False
    # What the function returns when it is more than a number or a flat tuple (a dict, a
    # list, nested tuples: trees.TreeDef); `outputs` are its leaves in order.
    output_tree: Any = None
    shape: tuple[int, int] = (0, 0)  # (m, n) for jacobian and hessian programs
    deps: list[tuple[tuple[str, ...], Any]] = field(default_factory=list)  # values read from outside
    cacheable: bool = True  # False when some outside value could not be given a path
    shapes: dict[sympy.Symbol, tuple[int, ...]] | None = None  # per symbol, when traced for shapes
    differentiated: tuple[Expr, ...] = ()  # outputs of the graph a transform differentiated
    cancelled: bool = False  # while tracing: SymPy cancelled a value away (`w - w`), see Tracer.keep_shape
    # Per output of the traced function, the positions of the inputs it is computed from: what
    # shapes its value when NumPy runs the function (an unused array argument shapes nothing).
    reach: tuple[tuple[int, ...], ...] = ()
    unrolled: int = 0  # while tracing: loop iterations unrolled so far
    # An in-place update (`t += v`) of a name that shares its array: right for numbers as
    # traced without shapes; arrays need a trace for their shapes (NumPy writes through).
    aliased: bool = False
    # Traced for shapes: the function applies to an array what only numbers support
    # (`math.tanh(x)`, `if x > 0:`, `min(x, y)`), which NumPy refuses and symgrad runs element
    # by element (np.vectorize's meaning), so an in-place update must rebind as on numbers.
    per_element: bool = False
    wrote_through: bool = False  # traced for shapes: an in-place update changed other names
    rebind: bool = False  # the trace's mode: in-place updates rebind (see trace.trace)
    # Traced without shapes: a traced condition selects between values (an `if`, `a if c
    # else b`): with a scalar condition NumPy's result has the shape of the branch taken.
    branches: bool = False
    sources: dict[Any, frozenset[int]] = field(default_factory=dict)  # node -> input positions it reads
    # Module and closure values folded into the program as constants, by their path from the
    # traced function (see cache.resolve), with their fingerprints: a call re-traces when one of them has changed.
    guards: list[tuple[tuple[str, ...], Any, Any]] = field(default_factory=list)
    # Arrays read from outside (module data, closures): inputs after the parameters, each with
    # its path and the shape the program was compiled for; the call reads them (Variant.captured).
    captured: list[tuple[tuple[str, ...], tuple[int, ...], Any]] = field(default_factory=list)
    # Statements of the traced code with no numeric effect (print, logging), as (file, line):
    # the generated code skips them and says so in a comment.
    skipped: list[tuple[str, int]] = field(default_factory=list)

    def add(
        self, expr: Expr, hint: str | None = None, line: tuple[Any, ...] | None = None, alias: bool = False
    ) -> Expr:
        """Append `expr` as a node and return its symbol; atoms and repeats are not re-added,
        except that `alias=True` names a symbol again (`dfdy = dfdt3`) for readable outputs."""
        if _is_atom(expr) and not (alias and isinstance(expr, sympy.Symbol)):
            return expr
        found = self.memo.get(expr)
        if found is not None and not alias:
            return found
        if hint is None:  # conditions read as c0, c1, ... like the ones CSE names
            hint_name = self.names.temp("c" if isinstance(expr, sympy.logic.boolalg.Boolean) else "t")
        else:
            hint_name = self.names.fresh(hint)
        symbol = real_symbol(hint_name)
        if self.shapes is not None:
            self.shapes[symbol] = shape_of(expr, self.shapes)
        self.nodes.append((symbol, expr))
        self.sources[symbol] = self.inputs_reaching(expr)
        if not alias:
            self.memo[expr] = symbol
        if line is not None:
            self.lines[symbol] = line
        return symbol

    def definitions(self) -> dict[sympy.Symbol, Expr]:
        return dict(self.nodes)

    def extend(self) -> Graph:
        """A copy that later stages can append to without touching this graph."""
        return Graph(
            name=self.name,
            params=self.params,
            inputs=self.inputs,
            nodes=list(self.nodes),
            outputs=self.outputs,
            lines=dict(self.lines),
            names=self.names.copy(),
            memo=dict(self.memo),
            tuple_output=self.tuple_output,
            output_tree=self.output_tree,
            shape=self.shape,
            deps=self.deps,
            cacheable=self.cacheable,
            shapes=None if self.shapes is None else dict(self.shapes),
            cancelled=self.cancelled,
            aliased=self.aliased,
            per_element=self.per_element,
            wrote_through=self.wrote_through,
            rebind=self.rebind,
            branches=self.branches,
            sources=dict(self.sources),
            reach=self.reach,
            guards=self.guards,
            captured=list(self.captured),
            skipped=self.skipped,
        )

    def shape_facts(self) -> ShapeFacts:
        """What a traced (primal) graph tells about the shapes NumPy gives its values."""
        return ShapeFacts(
            reach=self.reach,
            cancelled=self.cancelled,
            aliased=self.aliased,
            branches=self.branches,
            inputs=len(self.inputs),
            tuple_output=self.tuple_output,
            output_tree=self.output_tree,
        )

    def capture(self, path: tuple[str, ...], shape: tuple[int, ...], hint: str) -> sympy.Symbol:
        """The input for an array read from outside the traced function at `path` (from the
        traced function: see cache.resolve), added after the parameters on first use."""
        for known, _, symbol in self.captured:
            if known == path:
                return symbol
        symbol = real_symbol(self.names.fresh(hint))
        self.inputs = (*self.inputs, symbol)
        self.params = (*self.params, str(symbol))
        if self.shapes is not None:
            self.shapes[symbol] = tuple(shape)
        self.captured.append((path, tuple(shape), symbol))
        return symbol

    def inputs_reaching(self, expr: Any) -> frozenset[int]:
        """The positions of the inputs `expr` is computed from (through nodes added so far)."""
        found: frozenset[int] = frozenset()
        for symbol in getattr(expr, "free_symbols", ()):
            if symbol in self.sources:
                found |= self.sources[symbol]
            elif symbol in self.inputs:
                found |= {self.inputs.index(symbol)}
        return found

    def __str__(self) -> str:
        head = f"{self.name}({', '.join(str(s) for s in self.inputs)}):"
        body = [f"  {sym} = {expr}" for sym, expr in self.nodes]
        tail = f"  return {', '.join(str(o) for o in self.outputs)}"
        return "\n".join([head, *body, tail])

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes>"


@dataclass(frozen=True)
class ShapeFacts:
    """What decides the shape NumPy would give each value of a traced function: which inputs
    each output is computed from, and whether cancellation, aliasing or branches make the
    elementwise program inexact for arguments of other shapes (see `Graph`'s fields)."""

    reach: tuple[tuple[int, ...], ...] = ()
    cancelled: bool = False
    aliased: bool = False
    branches: bool = False
    inputs: int = 0
    tuple_output: bool = False  # returns a tuple (even of one value): so do jvp and vjp
    output_tree: Any = None  # returns a dict, list or nested tuples: see Graph.output_tree

    def record(self) -> dict[str, Any]:
        """As JSON for the persistent cache."""
        return {**asdict(self), "reach": [list(r) for r in self.reach]}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ShapeFacts:
        tree = record.get("output_tree")
        return cls(
            **{**record, "reach": tuple(tuple(r) for r in record["reach"]), "output_tree": _tuples(tree)}
        )


def _tuples(record: Any) -> Any:
    """A tree structure read back from JSON, which wrote its tuples as lists."""
    return tuple(_tuples(item) for item in record) if isinstance(record, list) else record


def _is_atom(expr: Expr) -> bool:
    return isinstance(expr, (sympy.Symbol, sympy.Number, sympy.logic.boolalg.BooleanAtom, sympy.NumberSymbol))


def is_scaled_symbol(expr: Expr) -> bool:
    """`c * t` for a number `c`: cheap enough to fold into its users instead of naming it."""
    return (
        isinstance(expr, sympy.Mul)
        and len(expr.args) == 2
        and expr.args[0].is_Number
        and isinstance(expr.args[1], sympy.Symbol)
    )
