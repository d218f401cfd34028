"""The Graph: an ordered SSA program `t_k = expr_k(parents)`, the data passed between stages."""

from __future__ import annotations

import keyword
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import sympy

from .arrays import ArrayOp, broadcast, shape_of
from .complexes import complex_input, is_complex, real_imag

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


# A position in `Graph.sources` beside the inputs': the value is computed from a carry of a
# `while` loop (or a loop that can `break`) that becomes an array only once an iteration has
# run; NumPy then gives it the shape of the iterations actually taken.
TRIP_COUNT = -1


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
            inputs and earlier node symbols. Two other kinds of node stand where an
            expression would, under a label symbol: a kept loop (`Loop`) and an operation
            with several results (`Multi`); each defines the symbols its `defines()` gives.
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
    # While tracing: a complex value becomes two real nodes (graph values are real); the
    # stages after the trace keep a complex expression whole (a gradient `dfdz_re - I*dfdz_im`).
    complex_values: bool = False
    cancelled: bool = False  # while tracing: SymPy cancelled a value away (`w - w`), see Tracer.keep_shape
    # Per output of the traced function, the positions of the inputs it is computed from: what
    # shapes its value when NumPy runs the function (an unused array argument shapes nothing).
    reach: tuple[tuple[int, ...], ...] = ()
    # The outputs (positions) computed from a `while` loop's carry whose shape depends on how
    # many iterations ran (`b = -1.0` stays a number if none ran, as in NumPy): see TRIP_COUNT.
    trip_shaped: tuple[int, ...] = ()
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
    # How `for` loops are traced ("auto": kept as loops from looptrace.KEEP_FROM iterations on,
    # "keep", "unroll"), and the loops that were unrolled, with why: (file, line, reason).
    loops: str = "auto"
    unrolled_loops: list[tuple[str, int, str]] = field(default_factory=list)
    # Per loop (by its label), the stacks in which it saves its carries for a reverse pass.
    saved: dict[Any, dict[Any, Any]] = field(default_factory=dict)
    # While tracing a kept loop's body: the program around it (arrays read from outside are
    # its inputs), and for a `for` loop what the body knows of its iterations (looptrace.Iteration).
    parent: Graph | None = None
    iteration: Any = None
    # `inputs` and each input's first position in it, kept for the tuple it was made from:
    # a lookup per node in a tuple of n inputs made tracing W5 quadratic in n
    _positions: tuple[tuple[sympy.Symbol, ...], dict[sympy.Symbol, int]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def add(
        self, expr: Expr, hint: str | None = None, line: tuple[Any, ...] | None = None, alias: bool = False
    ) -> Expr:
        """Append `expr` as a node and return its symbol; atoms and repeats are not re-added,
        except that `alias=True` names a symbol again (`dfdy = dfdt3`) for readable outputs."""
        if _is_atom(expr) and not (alias and isinstance(expr, sympy.Symbol)):
            return expr
        if self.complex_values and is_complex(expr):
            return self._add_parts(expr, hint, line)
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

    def add_complex(self, value: Expr, hint: str, line: tuple[Any, ...] | None = None) -> sympy.Symbol:
        """A complex value the program returns, `out = out_re + 1j*out_im`: the one kind of
        node whose symbol is not real (its adjoint reaches the parts as real parts)."""
        real, imag = (
            self.add(part, f"{hint}_{suffix}", line) for part, suffix in zip(real_imag(value), ("re", "im"))
        )
        symbol = complex_input(self.names.fresh(hint))
        if self.shapes is not None:
            self.shapes[symbol] = shape_of(real + imag, self.shapes)
        self.nodes.append((symbol, real + sympy.I * imag))
        self.sources[symbol] = self.inputs_reaching(real + imag)
        if line is not None:
            self.lines[symbol] = line
        return symbol

    def _add_parts(self, expr: Expr, hint: str | None, line: tuple[Any, ...] | None) -> Expr:
        """A complex value as two real nodes, its real and imaginary parts: `a + I*b`."""
        if isinstance(expr, ArrayOp):
            real, imag = self._array_parts(expr)
        else:
            real, imag = real_imag(expr)
        real = self.add(real, None if hint is None else f"{hint}_re", line)
        if imag == 0:
            return real
        return real + sympy.I * self.add(imag, None if hint is None else f"{hint}_im", line)

    def _array_parts(self, expr: Any) -> tuple[Expr, Expr]:
        """The parts of an array operation on complex operands: of each part for a linear
        one (a sum, an index, a reshape), four real products for a product (`@`, outer)."""
        parts = [real_imag(o) for o in expr.operands]
        head, params = type(expr), expr.params
        if head.complex_form == "bilinear":
            (a, b), (c, d) = parts
            real = self._product(head, a, c, params) - self._product(head, b, d, params)
            return real, self._product(head, a, d, params) + self._product(head, b, c, params)
        real = self.add(head.make([p[0] for p in parts], params))
        if all(p[1] == 0 for p in parts):
            return real, sympy.S.Zero
        imag = [p[1] if p[1] != 0 else self._zeros(o) for p, o in zip(parts, expr.operands)]
        return real, self.add(head.make(imag, params))

    def _product(self, head: Any, a: Expr, b: Expr, params: Any) -> Expr:
        if a == 0 or b == 0:
            return sympy.S.Zero
        return self.add(head.make([a, b], params))

    def _zeros(self, operand: Expr) -> Expr:
        """A zero imaginary part, in the shape of a real operand beside complex ones."""
        assert self.shapes is not None
        return broadcast(sympy.S.Zero, (), shape_of(operand, self.shapes), self.add)

    def add_multi(self, call: Any, line: tuple[Any, ...] | None = None) -> tuple[sympy.Symbol, ...]:
        """Append a node computing all outputs of `call` (an `arrays.MultiOp` application) at
        once, named after NumPy's fields of the result (`sign`, `logabsdet`); return them.
        The same call twice is one node, as `add` makes one node of an expression."""
        for _, expr in self.nodes:
            if isinstance(expr, Multi) and expr.call == call:
                return expr.outputs
        outputs = tuple(real_symbol(self.names.fresh(name)) for name in call.fields)
        if self.shapes is not None:
            operand_shapes = [shape_of(o, self.shapes) for o in call.operands]
            self.shapes.update(zip(outputs, call.output_shapes(operand_shapes)))
        label = real_symbol(self.names.temp(call.label))  # names the node, not a value
        self.nodes.append((label, Multi(call, outputs)))
        reach = self.inputs_reaching(call)
        for symbol in (label, *outputs):
            self.sources[symbol] = reach
            if line is not None:
                self.lines[symbol] = line
        return outputs

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
            trip_shaped=self.trip_shaped,
            guards=self.guards,
            captured=list(self.captured),
            skipped=self.skipped,
            loops=self.loops,
            unrolled_loops=self.unrolled_loops,
            saved=dict(self.saved),
        )

    def shape_facts(self) -> ShapeFacts:
        """What a traced (primal) graph tells about the shapes NumPy gives its values."""
        return ShapeFacts(
            reach=self.reach,
            trip_shaped=self.trip_shaped,
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
        if self.parent is not None:
            return self.parent.capture(path, shape, hint)
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
            elif (position := self.input_position(symbol)) is not None:
                found |= {position}
        return found

    def input_position(self, symbol: Any) -> int | None:
        """The first position of `symbol` among the inputs, or None if it is not one."""
        if self._positions is None or self._positions[0] is not self.inputs:
            positions: dict[sympy.Symbol, int] = {}
            for k, each in enumerate(self.inputs):
                positions.setdefault(each, k)
            self._positions = (self.inputs, positions)
        return self._positions[1].get(symbol)

    def __str__(self) -> str:
        head = f"{self.name}({', '.join(str(s) for s in self.inputs)}):"
        tail = f"  return {', '.join(str(o) for o in self.outputs)}"
        return "\n".join([head, *self.listing("  "), tail])

    def listing(self, indent: str) -> list[str]:
        """The nodes as lines, a loop's body indented under its head."""
        lines: list[str] = []
        for symbol, expr in self.nodes:
            structured = isinstance(expr, (Loop, Multi))
            lines += expr.listing(indent) if structured else [f"{indent}{symbol} = {expr}"]
        return lines

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes>"


@dataclass(frozen=True)
class ShapeFacts:
    """What decides the shape NumPy would give each value of a traced function: which inputs
    each output is computed from, and whether cancellation, aliasing or branches make the
    elementwise program inexact for arguments of other shapes (see `Graph`'s fields)."""

    reach: tuple[tuple[int, ...], ...] = ()
    trip_shaped: tuple[int, ...] = ()
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
            **{
                **record,
                "reach": tuple(tuple(r) for r in record["reach"]),
                "trip_shaped": tuple(record.get("trip_shaped", ())),
                "output_tree": _tuples(tree),
            }
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


@dataclass(eq=False)
class Loop:
    """A loop kept as a loop: scan semantics over a body program, nothing mutated.

    Each iteration binds `index` (0, 1, ... or, `reverse`, from the last down), the carried
    values `carries` and, per stack in `items`, the stack's element at the index; it runs
    `body` and carries its first outputs (`updates`) to the next iteration; the rest of its
    outputs are written at the index of the stacks in `stacked`. A `while` loop checks
    `condition` (a body value of the carries, computed first) before each iteration and
    counts its iterations into `count`. In the enclosing program the loop defines its carries
    (their final values: the same symbols as the body's inputs, as in the generated code),
    its stacks and its count, and its derivative is again such a loop.

    Attributes:
        body: the program of one iteration; inputs `(index, *carries, *item inputs)`.
        index: the iteration's index (an integer symbol).
        carries: the carried values: body inputs, and in the enclosing program their finals.
        init: the values the carries start from (enclosing program's atoms).
        items: (body input, enclosing stack) pairs: the stack's element at the index.
        stacked: enclosing stacks written at the index with the body outputs after `updates`.
        length: the number of iterations: an int, or the enclosing count of another loop.
        condition: for `while`, the body value that must hold for an iteration to run.
        count: for `while`, the enclosing symbol of the number of iterations run.
        reverse: iterate from `length - 1` down to 0 (a reverse-mode pass).
        line: (file, line) of the loop statement.
    """

    body: Graph
    index: sympy.Symbol
    carries: tuple[sympy.Symbol, ...]
    init: tuple[Expr, ...]
    items: tuple[tuple[sympy.Symbol, sympy.Symbol], ...] = ()
    stacked: tuple[sympy.Symbol, ...] = ()
    length: Any = None
    condition: Expr = None
    count: sympy.Symbol | None = None
    reverse: bool = False
    line: tuple[Any, ...] | None = None

    @property
    def updates(self) -> tuple[Expr, ...]:
        return self.body.outputs[: len(self.carries)]

    @property
    def stacked_values(self) -> tuple[Expr, ...]:
        return self.body.outputs[len(self.carries) :]

    def defines(self) -> tuple[sympy.Symbol, ...]:
        """The symbols of the enclosing program this loop gives values to."""
        return (*self.carries, *self.stacked, *((self.count,) if self.count is not None else ()))

    def listing(self, indent: str) -> list[str]:
        """`f.graph`'s lines for this loop: its head, its body, what it carries on."""
        starts = ", ".join(f"{c} = {v}" for c, v in zip(self.carries, self.init))
        items = "".join(f", {item} = {stack}[{self.index}]" for item, stack in self.items)
        if self.length is None:
            head = f"while {self.condition} (counting {self.index} into {self.count}; {starts}{items}):"
        else:
            order = f"reversed(range({self.length}))" if self.reverse else f"range({self.length})"
            until = "" if self.condition is None else f"while {self.condition}, counting into {self.count}; "
            head = f"for {self.index} in {order} ({until}{starts}{items}):"
        inner = indent + "    "
        carried = [f"{inner}{c} <- {u}" for c, u in zip(self.carries, self.updates)]
        pushed = [f"{inner}{s}[{self.index}] = {v}" for s, v in zip(self.stacked, self.stacked_values)]
        return [f"{indent}{head}", *self.body.listing(inner), *pushed, *carried]

    def reads(self) -> frozenset[Any]:
        """The enclosing program's symbols this loop reads (its loop-invariant values too)."""
        found: set[Any] = set()
        for value in (*self.init, *(stack for _, stack in self.items), self.length):
            found |= getattr(value, "free_symbols", set())
        return frozenset(found | invariants(self.body))


class StackSum(sympy.Function):
    """The item-by-item sum of stacks (a loop's per-iteration values, as Python lists): the
    adjoint of a stack read by several loops."""

    def _numpycode(self, printer: Any) -> str:
        names = [f"_s{k}" for k in range(len(self.args))]
        stacks = ", ".join(printer._print(a) for a in self.args)
        return f"[{' + '.join(names)} for {', '.join(names)} in zip({stacks})]"

    _pythoncode = _numpycode


def invariants(body: Graph) -> set[Any]:
    """The symbols a body program reads from the enclosing one (defined neither by it nor as
    its inputs), through nested loops too."""
    defined: set[Any] = set(body.inputs)
    read: set[Any] = set()
    for symbol, expr in body.nodes:
        if isinstance(expr, (Loop, Multi)):
            read |= expr.reads() - defined
            defined |= set(expr.defines())
        else:
            read |= expr.free_symbols - defined
        defined.add(symbol)
    for output in body.outputs:
        read |= getattr(output, "free_symbols", set()) - defined
    return read


def reads_of(expr: Any) -> frozenset[Any] | set[Any]:
    """The symbols a node reads: an expression's free symbols, or what a loop or a
    multi-output operation reads."""
    return expr.reads() if isinstance(expr, (Loop, Multi)) else expr.free_symbols


def defined_by(symbol: sympy.Symbol, expr: Any) -> tuple[sympy.Symbol, ...]:
    """The symbols a node defines: its own, a loop's carries, stacks and count, or the
    outputs of a multi-output operation."""
    return expr.defines() if isinstance(expr, (Loop, Multi)) else (symbol,)


@dataclass(frozen=True)
class Multi:
    """One operation computing several values at once (one LAPACK call): the third kind of
    node, beside an assignment and a loop. Like a loop it defines symbols of the enclosing
    program (`outputs`) under a label of its own; unlike a loop it holds no program, only
    the application of an `arrays.MultiOp` (its operands are atoms of the program).

    `f.graph` lists it as `sign, logabsdet = slogdet(A)`, the generated code as
    `sign, logabsdet = numpy.linalg.slogdet(A)`; its derivative is the op's VJP (or JVP),
    which reads its outputs, so that a second derivative goes through the same node again.

    Attributes:
        call: the operation applied to its operands, e.g. `arrays.SlogDet(A, ...)`.
        outputs: one symbol per output, in the order of NumPy's result tuple.
    """

    call: Any
    outputs: tuple[sympy.Symbol, ...]

    def defines(self) -> tuple[sympy.Symbol, ...]:
        """The symbols of the enclosing program this operation gives values to."""
        return self.outputs

    def reads(self) -> frozenset[Any]:
        return frozenset(self.call.free_symbols)

    def differentiable(self) -> tuple[sympy.Symbol, ...]:
        """The outputs through which a gradient flows (not slogdet's sign, for one)."""
        return tuple(s for k, s in enumerate(self.outputs) if k not in self.call.constant)

    def listing(self, indent: str) -> list[str]:
        return [f"{indent}{', '.join(str(s) for s in self.outputs)} = {self.call}"]

    def xreplace(self, rename: dict[Any, Any]) -> Multi:
        """The same operation on renamed operands (its outputs keep their names)."""
        return Multi(self.call.xreplace(rename), self.outputs)
