"""The callable that users get back: binds arguments, picks a compiled variant, shapes results."""

from __future__ import annotations

import contextlib
import inspect
import numbers
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic

import numpy as np
import sympy

from . import backends, cache, emit, runtime
from .arraytrace import ShapesNeeded
from .emit import Kernel
from .errors import ArgumentError, ShapeError, SymgradError, WrtError, at_caller
from .graph import Graph, Loop, Multi, ShapeFacts
from .protocols import P, R_co
from .trees import is_tree

_NO_FACTS = ShapeFacts()  # frozen: one instance serves as the default
NO_TREES = object()  # what `Compiled.trees` returns when no dynamic argument is a tree


class Variant:
    """One compiled specialisation (per value of the static arguments).

    A variant loaded from the persistent cache has no graph until someone asks for it;
    then it is traced again (`rebuild`), which is what the cache saved at start-up."""

    def __init__(
        self,
        kernel: Kernel,
        primal_outputs: int,
        shape: tuple[int, int],
        graph: Graph | None = None,
        output_shapes: tuple[tuple[int, ...], ...] = (),
        rebuild: Callable[[], Graph] | None = None,
        facts: ShapeFacts = _NO_FACTS,
        guards: Sequence[cache.Guard] = (),
        captured: Sequence[tuple[tuple[str, ...], tuple[int, ...]]] = (),
    ) -> None:
        self.kernel = kernel
        self.primal_outputs = primal_outputs  # how many values the differentiated function returns
        self.shape = shape  # (m, n) of jacobian and hessian results
        self.output_shapes = output_shapes  # of the differentiated function's outputs (array programs)
        self._graph = graph
        self._rebuild = rebuild
        self.from_cache = graph is None
        self.guards = tuple(guards)  # outside constants folded in: see cache.guards_hold
        self.captured = tuple(captured)  # arrays read from outside: (path, shape), inputs after the arguments
        self.facts = facts  # what decides NumPy's shapes: see graph.ShapeFacts
        self.reaches_all = (
            not facts.cancelled and not facts.aliased and all(len(r) == facts.inputs for r in facts.reach)
        )
        self.every_output_reaches = all(facts.reach)
        # Outputs whose shape depends on how many iterations a `while` loop ran: the program
        # computes them as NumPy does (unless SymPy cancelled something), with the shape of
        # the iterations taken, so they are not broadcast to the arguments' shape.
        self.as_computed = frozenset(() if facts.cancelled else facts.trip_shaped)

    def fits(self, shapes: Sequence[tuple[int, ...]]) -> bool:
        """Whether the elementwise program is exact for arguments of these shapes: it gives
        every value (and gradient) the broadcast shape of all arguments, which is NumPy's
        only when each output is computed from arguments that broadcast to that shape."""
        if self.facts.aliased and any(shapes):  # exact on numbers only: see Graph.aliased
            return False  # NumPy's in-place update writes through to the other names
        if self.facts.branches and any(s != shapes[0] for s in shapes[1:]):
            return False  # a number's condition picks a branch, and its shape
        if all(s == shapes[0] for s in shapes[1:]) and (self.every_output_reaches or not shapes[0]):
            return True
        try:
            full = np.broadcast_shapes(*shapes)
        except ValueError:
            # fine if only unused arguments do not broadcast; else the ShapeError is true
            return not all(_broadcasts([shapes[i] for i in r]) for r in self.facts.reach)
        if self.facts.cancelled:  # an input SymPy cancelled away may be what shapes a value
            return False
        return all(np.broadcast_shapes(*[shapes[i] for i in r]) == full for r in self.facts.reach)

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            assert self._rebuild is not None
            self._graph = self._rebuild()
        return self._graph


@dataclass(frozen=True)
class Call:
    """What a finisher needs to know about one call."""

    args: list[Any]  # dynamic argument values, in graph-input order
    scalar: bool  # every argument was a Python number: results are Python floats
    shape: tuple[int, ...] | None  # broadcast shape of the arguments; None for array programs
    static: dict[str, Any]  # values of the static arguments
    variant: Variant | None = None  # the program that ran (None: the variant for `static`)


Finisher = Callable[["Compiled", tuple[Any, ...], Call], Any]


_FLOAT64 = np.dtype(np.float64)


def _is_python_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, np.ndarray)


def _float64_or_number(value: Any) -> bool:
    """A float64 ndarray, or a real number (of any dtype): what `Kernel.inplace_fn` accepts."""
    if type(value) is np.ndarray:
        return value.dtype == _FLOAT64 or (value.ndim == 0 and value.dtype.kind in "biuf")
    return isinstance(value, numbers.Real)


def _as_float(value: Any) -> float | complex:
    """A number out of a kernel as a Python float (complex for a complex value)."""
    return complex(value) if np.iscomplexobj(value) else float(value)


def _float_dtype(value: Any) -> Any:
    """float64, or complex128 for a complex value: what an output is fitted to."""
    return np.complex128 if np.iscomplexobj(value) else np.float64


# The transforms that take complex arguments (of a real-valued function, as jax.grad).
_COMPLEX_KINDS = ("grad", "value_and_grad", "vjp")


def _is_complex(value: Any) -> bool:
    """A complex number or array (checked by dtype: a Dask array stays lazy)."""
    if isinstance(value, numbers.Number):
        return isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real)
    dtype = getattr(value, "dtype", None)
    return dtype is not None and np.dtype(dtype).kind == "c"


class Compiled(Generic[P, R_co]):
    """A derivative of a Python function, compiled from its source.

    Call it like the original function (for type checkers, `Compiled[P, R]` takes the
    function's parameters `P` and returns `R`; see `symgrad.protocols`). Attributes: `fn` (the original function), `wrt`
    (parameter names differentiated), `static` (parameter names specialised on),
    `backend`, `source` (generated code: NumPy, or the backend's kernel), `scalar_source` (the plain-Python variant used on floats),
    `graph` (the SSA program), `exprs` (SymPy expressions of the results).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        kind: str,
        wrt: tuple[str, ...],
        static: tuple[str, ...],
        single: bool,
        build: Callable[..., Variant],
        derive: Callable[[Graph], Graph],
        finish: Finisher,
        extra_params: tuple[str, ...] = (),
        backend: str = "numpy",
        invoke: Callable[..., Any] | None = None,
        result: Callable[[Variant, bool], Callable[[list[str]], str] | None] | None = None,
    ) -> None:
        self.fn = fn
        self.kind = kind
        self.wrt = wrt
        self.static = static
        self.single = single
        self._build = build
        self.derive = derive  # primal graph -> this object's graph; composed for higher orders
        self._finish = finish
        self._signature = inspect.signature(fn)
        self.params = tuple(self._signature.parameters)
        # `*args`/`**kwargs`: compiled per number (and names) of the values they take, as trees
        self.starred = any(
            p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in self._signature.parameters.values()
        )
        self.dynamic = tuple(p for p in self.params if p not in static)
        self.extra_params = extra_params
        self.backend = backend  # where the generated program runs (see symgrad.backends)
        self._invoke = invoke  # a different calling convention (vjp, jvp)
        # Arguments that are trees (dicts of arrays...): the call goes to a program of their leaves
        self.trees: Callable[[Compiled, tuple[Any, ...], dict[str, Any]], Any] | None = None
        self.latest_tree: Compiled | None = None  # the program of the leaves that ran last
        # jacobian/hessian of a program of tree leaves: its blocks, per parameter (columns) and
        # per gradient leaf (rows, for jacobian(grad(f))), back in the trees' structures
        self.columns: Callable[[tuple[Any, ...]], Any] | None = None
        self.rows: Callable[[tuple[Any, ...]], Any] | None = None
        self._result = result  # arranges kernel outputs for the floats-only entry point
        self._simple = False  # set after a first call: no static args, skip binding from now on
        self.shaped = False  # set when tracing finds array-level operations: one variant per shape
        self._entries: dict[tuple[Any, ...], Callable[..., Any] | None] = {}  # per static variant
        self._variants: dict[tuple[Any, ...], Variant] = {}
        self._last: Variant | None = None
        self._last_shaped: Variant | None = None  # the last variant compiled for argument shapes
        self._lock = threading.Lock()
        self.__wrapped__ = fn
        self.__name__ = f"{kind}_{getattr(fn, '__name__', 'f')}"
        self.__doc__ = f"{kind} of {getattr(fn, '__qualname__', fn)} with respect to {', '.join(wrt)}."

    # --- compiled variants -------------------------------------------------------------------

    def variant(
        self,
        static_values: dict[str, Any] | None = None,
        shapes: dict[str, tuple[int, ...]] | None = None,
        complex_params: frozenset[str] = frozenset(),
    ) -> Variant:
        """The compiled program for these static values (traced and compiled on first use).

        A function with array-level operations (reductions, `@`, indexing) is compiled once
        per combination of argument shapes, given as `shapes` ({parameter: shape}). A program
        that folded in a module or closure constant is traced again once that constant changed."""
        found = self._variant(static_values, shapes, complex_params)
        stale = found.guards and not cache.guards_hold(self.fn, found.guards)
        if stale or (found.captured and not _captured_fit(self.fn, found.captured)):
            with self._lock:
                self._variants = {k: v for k, v in self._variants.items() if v is not found}
                if self._last is found:
                    self._last = None
            found = self._variant(static_values, shapes, complex_params)
        return found

    def _variant(
        self,
        static_values: dict[str, Any] | None,
        shapes: dict[str, tuple[int, ...]] | None,
        complex_params: frozenset[str] = frozenset(),
    ) -> Variant:
        if not self.static and not self.shaped and self._last is not None and shapes is None:
            return self._last
        if self.shaped and shapes is None:
            latest = self._last or self._last_shaped
            if latest is not None and not static_values:
                return latest
            raise WrtError(
                f"{self.__name__}: `{self.fn.__name__}` uses array operations, so symgrad compiles it "
                "for the shapes of its arguments",
                hint="call it once first, or ask for .variant(shapes={'x': (3,), ...})",
            )
        static_values = static_values or {}
        missing = [s for s in self.static if s not in static_values]
        if missing:
            if self._last is not None and not static_values:
                return self._last
            defaults = {
                n: p.default
                for n, p in self._signature.parameters.items()
                if n in missing and p.default is not inspect.Parameter.empty
            }
            if len(defaults) != len(missing):
                raise WrtError(
                    f"static parameter(s) {', '.join(missing)} have no value yet",
                    hint="call the function once, or use .variant({'n': 3}) to choose the static values",
                )
            static_values = {**static_values, **defaults}
        key = tuple(_static_key(static_values[s]) for s in self.static)
        if shapes is not None:
            key += tuple(tuple(shapes[p]) for p in self.dynamic)
        if complex_params:
            key += ("complex", *sorted(complex_params))
        found = self._variants.get(key)
        if found is None:
            with self._lock:
                found = self._variants.get(key)
                if found is None:
                    try:
                        found = self._build(static_values, shapes, complex_params)
                    except ShapesNeeded:
                        self.shaped = True
                        raise
                    self._variants[key] = found
        if shapes is None or self.shaped:  # an elementwise program's `.source` stays its own
            self._last = found
        if shapes is not None:
            self._last_shaped = found
        return found

    def ran(self, call: Call) -> Variant:
        """The variant that served `call`."""
        return call.variant if call.variant is not None else self.variant(call.static)

    def _latest(self) -> Variant:
        """The variant last used (or the only one), for `.source`, `.graph` and `.exprs`."""
        own = self._last is not None or self._last_shaped is not None
        if self.starred or (self.latest_tree is not None and not own):  # called with trees only
            if self.latest_tree is None:
                raise WrtError(
                    f"{self.__name__}: `{self.fn.__name__}` takes `*args` or `**kwargs`, so symgrad "
                    "compiles it for the values of a call, and has not seen one yet",
                    hint="call it once first",
                )
            return self.latest_tree._latest()
        try:
            return self.variant()
        except ShapesNeeded:
            if self._last_shaped is not None:  # compiled for shapes (a call, or .variant(shapes=...))
                return self._last_shaped
            raise ShapeError(
                f"{self.__name__}: `{self.fn.__name__}` uses array operations, so symgrad compiles it "
                "for the shapes of its arguments, and has not seen any yet",
                hint="call it once first, or ask for .variant(shapes={'x': (3,), ...})",
            ) from None

    @property
    def graph(self) -> Graph:
        """The SSA program of the derivative (`print(f.graph)` lists it)."""
        return self._latest().graph

    @property
    def source(self) -> str:
        """Generated source of the derivative's array flavour: NumPy code, or the backend's
        kernel (numba's loop, the JAX/CuPy program)."""
        return self._latest().kernel.array_source

    @property
    def inplace_source(self) -> str | None:
        """The NumPy program as it runs on float64 arrays (of one shape, for elementwise
        programs): `.source` with each operation written into the array of a temporary that
        dies there (`numpy.tanh(t1, out=t1)`); None where no temporary can be reused."""
        return self._latest().kernel.inplace_source

    @property
    def scalar_source(self) -> str | None:
        """Generated plain-Python source, used when every argument is a Python number
        (None for array programs, which always run as NumPy)."""
        return self._latest().kernel.scalar_source

    @property
    def exprs(self) -> tuple[Any, ...]:
        """The results as SymPy expressions of the inputs (node definitions substituted)."""
        graph = self.graph
        values: dict[Any, Any] = {}
        opaque: dict[Any, Multi] = {}
        for symbol, expr in graph.nodes:
            if isinstance(expr, Loop):  # its results are not expressions of the inputs
                file, line = expr.line[:2] if expr.line else ("?", 0)
                raise SymgradError(
                    f"the results have no closed form: the loop at {file}:{line} is kept as a loop",
                    hint='read the generated program in .source, or pass loops="unroll" for expressions',
                )
            if isinstance(expr, Multi):  # `slogdet(A)`: its outputs stay symbols, checked below
                opaque.update(dict.fromkeys(expr.outputs, expr))
                continue
            values[symbol] = expr.xreplace(values)
        results = tuple(sympy.sympify(o).xreplace(values) for o in graph.outputs)
        for result in results:
            for output in sorted(getattr(result, "free_symbols", set()) & opaque.keys(), key=str):
                node = opaque[output]
                raise SymgradError(
                    f"the results have no closed form: they read `{output}` of "
                    f"`{', '.join(str(s) for s in node.outputs)} = {node.call}`, one call computing "
                    "several values",
                    hint="read the generated program in .source, or the program in .graph",
                )
        return results

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        static = f", static={self.static}" if self.static else ""
        return f"<symgrad {self.kind} of {name} wrt={self.wrt}{static}>"

    def _repr_latex_(self) -> str | None:
        """Notebook display: the results as LaTeX equations (None until compilable)."""
        from .display import repr_latex

        return repr_latex(self)

    def _repr_html_(self) -> str:
        """Notebook display: the equations, with the generated source folded underneath."""
        from .display import html

        return html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Notebook display: readable text, MathML in HTML (no MathJax needed) and LaTeX."""
        from .display import mimebundle

        return mimebundle(self)

    # --- calling -------------------------------------------------------------------------------

    def bind(self, args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        """Static values by name, and dynamic values in graph-input order."""
        if not kwargs and len(args) == len(self.params) and not self.static and not self.starred:
            return {}, list(args)  # (a `*args` parameter takes a tuple, however many are given)
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ArgumentError(
                f"{self.__name__}(): {exc}",
                hint=f"call it like the original function: {self.fn.__name__}{self._signature}",
            ) from None
        bound.apply_defaults()
        values = bound.arguments
        static = {s: values[s] for s in self.static}
        return static, [values[p] for p in self.dynamic]

    def run(
        self, args: Sequence[Any], kwargs: dict[str, Any], extra: Sequence[Any] = ()
    ) -> tuple[tuple[Any, ...], Call]:
        """Bind the arguments like the original function, then `execute`."""
        static, dynamic = self.bind(args, kwargs)
        dynamic = [self._check(name, value) for name, value in zip(self.dynamic, dynamic)]
        return self.execute(static, dynamic, extra)

    def execute(
        self, static: dict[str, Any], dynamic: list[Any], extra: Sequence[Any] = ()
    ) -> tuple[tuple[Any, ...], Call]:
        """Run the kernel: the scalar flavour on Python numbers, else the NumPy flavour."""
        if any(map(_is_complex, dynamic)):
            return self._execute_complex(static, dynamic, extra)
        if not self.shaped:
            with contextlib.suppress(ShapesNeeded):  # found now: `self.shaped` is set
                variant = self.variant(static)
                if not variant.fits([np.shape(v) for v in dynamic]):
                    return self._execute_shaped(static, dynamic, extra)
                kernel = variant.kernel
        if self.shaped:
            return self._execute_shaped(static, dynamic, extra)
        values = [*dynamic, *extra]
        if all(_is_python_number(v) for v in values):
            try:
                raw = kernel.scalar_fn(*values)
            except (ArithmeticError, ValueError):  # math raises where NumPy gives inf/nan
                raw = kernel.array_fn(*[np.float64(v) for v in values])
            return tuple(_as_float(r) for r in raw), Call(dynamic, True, (), static, variant)
        try:
            shape = np.broadcast_shapes(*[np.shape(v) for v in values])
        except ValueError:
            names = (*self.dynamic, *self.extra_params)
            shapes = ", ".join(f"{n}: {np.shape(v)}" for n, v in zip(names, values))
            raise ShapeError(
                f"{self.__name__}(): argument shapes do not broadcast together ({shapes})",
                hint="pass arrays whose shapes broadcast (NumPy rules), or scalars",
            ) from None
        return _array_call(kernel, values), Call(dynamic, False, shape, static, variant)

    def probe(self, static: dict[str, Any], dynamic: list[Any]) -> Variant:
        """The variant for these arguments, specialised on their shapes if the function needs it."""
        complex_params = frozenset(n for n, v in zip(self.dynamic, dynamic) if _is_complex(v))
        if complex_params:  # always for the arguments' shapes (see _execute_complex)
            if self.kind not in _COMPLEX_KINDS:
                raise WrtError(
                    f"{self.__name__}(): complex arguments ({', '.join(sorted(complex_params))}) are supported "
                    f"by {', '.join(_COMPLEX_KINDS)}, not yet by {self.kind}",
                    hint="differentiate with respect to the real and imaginary parts as two float arguments: "
                    "`def g(x, y): return f(x + 1j * y)`",
                )
        elif not self.shaped:
            try:
                variant = self.variant(static)
            except ShapesNeeded:
                pass
            else:
                if variant.fits([np.shape(v) for v in dynamic]):
                    return variant
                # else NumPy gives some value another shape: trace for these shapes
        shapes = {name: tuple(np.shape(value)) for name, value in zip(self.dynamic, dynamic)}
        return self.variant(static, shapes, complex_params)

    def _execute_shaped(
        self, static: dict[str, Any], dynamic: list[Any], extra: Sequence[Any]
    ) -> tuple[tuple[Any, ...], Call]:
        """Array programs: the variant compiled for these argument shapes, as NumPy code."""
        variant = self.probe(static, dynamic)
        kernel = variant.kernel
        values = [*dynamic, *(cache.resolve(self.fn, path) for path, _ in variant.captured), *extra]
        scalar = all(_is_python_number(v) for v in values)
        # float64 arrays (the usual case): the program that reuses dying temporaries' memory.
        inplace = all(map(_float64_or_number, values))
        with np.errstate(all="ignore") if scalar else contextlib.nullcontext():
            raw = _array_call(kernel, values, inplace)
        # numbers in give numbers out, unless the program builds an array (`np.array([x, y])`)
        scalar = scalar and all(np.ndim(r) == 0 for r in raw)
        if scalar:
            raw = tuple(_as_float(r) for r in raw)
        return raw, Call(dynamic, scalar, None, static, variant)

    def _execute_complex(
        self, static: dict[str, Any], dynamic: list[Any], extra: Sequence[Any]
    ) -> tuple[tuple[Any, ...], Call]:
        """Complex arguments: a program for their shapes that reads their real and imaginary
        parts (see trace.trace), run as NumPy code; each gradient is shaped like its argument."""
        variant = self.probe(static, dynamic)
        values = [*dynamic, *(cache.resolve(self.fn, path) for path, _ in variant.captured), *extra]
        return _array_call(variant.kernel, values), Call(dynamic, False, None, static, variant)

    def _install_entry(self, static: dict[str, Any]) -> None:
        """Generated entry points for the common calls (Python floats; float64 arrays of one
        shape): one per static variant, so a call costs about one Python frame more than the
        generated program itself. Array programs (one variant per shape) get none."""
        variant = self.variant(static)
        result = self._result(variant, self.single) if self._result is not None else None
        params = self._signature.parameters.values()
        key = tuple((type(static[n]), static[n]) for n in self.static)
        self._entries[key] = None  # tried: the general path serves it unless replaced below
        if (
            result is None
            or variant.kernel.scalar is None
            or not variant.every_output_reaches
            or variant.facts.aliased  # its floats entry would serve arrays too
        ):
            return  # (an output computed from no argument keeps NumPy's shape: the general path)
        if variant.guards:
            return  # each call checks the outside constants it folded in (the general path)
        if any(p.kind not in (p.POSITIONAL_OR_KEYWORD,) for p in params):
            return
        order = self.params

        def general(*dynamic: Any) -> Any:
            values = dict(zip(self.dynamic, dynamic), **static)
            return self._general(*[values[p] for p in order])

        def finish_arrays(raw: tuple[Any, ...], *args: Any) -> Any:
            return self._finish(self, raw, Call(list(args), False, np.shape(args[0]), static, variant))

        defaults = {p.name: p.default for p in params if p.default is not p.empty}
        if not self.static:
            entry = emit.entry_function(
                variant.kernel, self.dynamic, defaults, result, general, finish_arrays
            )
            self._entries[key] = entry
            self.__class__ = type(type(self).__name__, (Compiled,), {"__call__": staticmethod(entry)})
            return
        entry = emit.entry_function(variant.kernel, self.dynamic, {}, result, general, finish_arrays)
        self._entries[key] = entry
        if type(self) is Compiled:
            dispatch = emit.dispatch_function(
                self.__name__, self.params, self.static, defaults, self._entries, self._general
            )
            self.__class__ = type(type(self).__name__, (Compiled,), {"__call__": staticmethod(dispatch)})

    def _general(self, *args: Any, **kwargs: Any) -> Any:
        """Where entry points send what they do not handle: never back to an entry point."""
        static, dynamic = self.bind(args, kwargs)
        dynamic = [self._check(name, value) for name, value in zip(self.dynamic, dynamic)]
        return self._finish(self, *self.execute(static, dynamic))

    def _call_arrays(self, args: tuple[Any, ...]) -> Any:
        """float64 arrays and floats, positionally, no static arguments: skip binding and checks."""
        shape: tuple[int, ...] | None = None
        for arg in args:
            if type(arg) is np.ndarray:
                if shape is None:
                    shape = arg.shape
                elif arg.shape != shape:
                    shape = None
                    break
        variant = self.variant()
        if shape is None or not variant.reaches_all:  # floats, shapes to broadcast, unused inputs
            return self._finish(self, *self.execute({}, list(args)))
        raw = variant.kernel.array_fn(*args)
        return self._finish(self, raw, Call(list(args), False, shape, {}, variant))

    def _check(self, name: str, value: Any) -> Any:
        if isinstance(value, (bool, np.bool_)):
            value = float(value)
        if isinstance(value, (list, tuple)):
            try:
                value = np.asarray(value, dtype=np.float64)
            except (ValueError, TypeError):  # arrays of different shapes, or not numbers
                raise ArgumentError(
                    f"{self.__name__}(): argument `{name}` is a {type(value).__name__} that is not one "
                    "array (its items have different shapes, or are not numbers)",
                    hint=f"pass each item as its own argument (`def {self.fn.__name__}(a0, a1, ...)` and "
                    "`np.concatenate((a0, a1))` inside), or one array",
                ) from None
        if isinstance(value, np.ndarray) and value.dtype == object:
            raise WrtError(
                f"{self.__name__}(): argument `{name}` is an object array", hint="pass a float array"
            )
        dtype = getattr(value, "dtype", None)  # read, not `np.asarray`: a Dask array stays lazy
        if dtype is None and not isinstance(value, numbers.Number):
            dtype = np.asarray(value).dtype
        kind = np.dtype(dtype).kind if dtype is not None and not isinstance(value, numbers.Number) else None
        if name in self.wrt and (isinstance(value, numbers.Integral) or kind in ("i", "u")):
            raise WrtError(
                f"{self.__name__}(): cannot differentiate with respect to integer argument `{name}`={value!r}",
                hint=f"pass a float (e.g. {name}=1.0 or an array with dtype float), as jax.grad and torch require",
            )
        if is_tree(value) and not isinstance(value, (list, tuple)):
            raise WrtError(
                f"{self.__name__}(): argument `{name}` is a {type(value).__name__}: a gradient of a "
                "gradient (`grad(grad(f))`) takes numbers and arrays, as the gradient of a tree is a "
                "tree, not a number",
                **at_caller(),
                hint=f"use hessian(f) for second derivatives in `{name}`, or jvp(grad(f)) for "
                "Hessian-vector products; both take trees",
            )
        if not isinstance(value, (numbers.Number, np.ndarray, np.generic)) and not hasattr(
            value, "__array__"
        ):
            raise WrtError(
                f"{self.__name__}(): argument `{name}` is a {type(value).__name__}, not a number or array",
                hint="pass floats or NumPy arrays",
            )
        return value

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        """The call (`__call__`): typed as the transform's own signature for type checkers."""
        if self._simple and not kwargs and len(args) == len(self.params) and not self.starred:
            for arg in args:
                if type(arg) is not float and not (type(arg) is np.ndarray and arg.dtype == _FLOAT64):
                    break
            else:
                return self._call_arrays(args)
        if self.trees is not None and (
            self.starred or any(map(is_tree, args)) or any(map(is_tree, kwargs.values()))
        ):
            result = self.trees(self, args, kwargs)  # tuples, lists, dicts, dataclasses as arguments
            if result is not NO_TREES:
                return result
        if self._invoke is not None:
            return self._invoke(self, *args, **kwargs)
        static, dynamic = self.bind(args, kwargs)
        dynamic = [self._check(name, value) for name, value in zip(self.dynamic, dynamic)]
        entry = self._entry_for(static)
        if entry is not None and all(type(v) is float for v in dynamic):
            return entry(*dynamic)  # the floats program is compiled once, inside the entry point
        return self._finish(self, *self.execute(static, dynamic))

    if TYPE_CHECKING:

        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    else:
        __call__ = _call

    def _entry_for(self, static: dict[str, Any]) -> Callable[..., Any] | None:
        """The generated entry point for these static values, made on first use (grad and
        value_and_grad of elementwise programs only)."""
        if self._result is None or self.shaped:
            return None
        key = tuple((type(static[n]), static[n]) for n in self.static)
        try:
            known = key in self._entries
        except TypeError:  # an unhashable static value: the general path explains the error
            return None
        if not known:
            with contextlib.suppress(ShapesNeeded):  # an array program: `self.shaped` is now set
                self._install_entry(static)
            self._simple = not self.static and not self.shaped
        return self._entries.get(key)


def _broadcasts(shapes: Sequence[tuple[int, ...]]) -> bool:
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        return False
    return True


def _static_key(value: Any) -> Any:
    if isinstance(value, list):  # `axes=[1, 0, 2]`: a list of static values, keyed as a tuple
        return ("list", tuple(_static_key(v) for v in value))
    if isinstance(value, tuple):  # `axes=([1], [0])`: tuples of lists too
        return ("tuple", tuple(_static_key(v) for v in value))
    try:
        hash(value)
    except TypeError:
        raise WrtError(
            f"static argument value {value!r} is not hashable",
            hint="pass ints, floats, strings, bools or tuples as static arguments",
        ) from None
    return (type(value).__name__, value)


def _captured_fit(
    root: Callable[..., Any], captured: Sequence[tuple[tuple[str, ...], tuple[int, ...]]]
) -> bool:
    """Whether the arrays a program reads from outside still have the shapes it was compiled
    for (their values are read at every call; another shape, or no array, traces again)."""
    for path, shape in captured:
        try:
            current = cache.resolve(root, path)
        except Exception:  # a name that went away: re-trace, which reports it
            return False
        if not isinstance(current, np.ndarray) or current.shape != shape or current.dtype.kind not in "biuf":
            return False
    return True


def _array_call(kernel: Kernel, values: Sequence[Any], inplace: bool = False) -> Any:
    """The array flavour (`inplace`: the one reusing temporaries, for float64 arrays); arrays
    of other libraries (Dask, ...) run the NumPy program in their own library, so that lazy
    arrays stay lazy."""
    if not isinstance(kernel, backends.ModuleKernel) and any(backends.is_foreign(v) for v in values):
        elementwise = isinstance(kernel, backends.NumbaKernel) or kernel.scalar is not None
        if elementwise and backends.is_dask(values):
            return backends.dask_map(kernel, list(values))  # the whole program on every chunk
        numpy_kernel = getattr(kernel, "numpy_kernel", None) or kernel  # numba: its NumPy program
        return backends.duck_function(numpy_kernel)(*values)
    return (kernel.inplace_fn if inplace else kernel.array_fn)(*values)


def _foreign_call(call: Call, *values: Any) -> Any:
    """The array module of the first foreign array among `values` and the call's arguments."""
    for value in (*values, *call.args):
        if backends.is_foreign(value):
            return backends.namespace_of(value)
    return None


def _fit_foreign(xp: Any, value: Any, shape: tuple[int, ...], call: Call) -> Any:
    """`fit` for arrays of other libraries, in their own library (never materialised)."""
    full = value if backends.is_foreign(value) else xp.asarray(value, dtype=np.float64)
    target = call.shape if call.shape is not None else shape
    full = xp.broadcast_to(full, target)
    if shape != target:
        full = xp.reshape(xp.sum(full, axis=runtime.broadcast_axes(shape, target), keepdims=True), shape)
    return full


def fit(gradient: Any, arg: Any, call: Call) -> Any:
    """Shape a gradient like its argument: broadcast constants, sum over broadcast axes."""
    if call.scalar:
        return float(gradient)
    xp = _foreign_call(call, gradient)
    if xp is not None:
        return _fit_foreign(xp, gradient, np.shape(arg), call)
    dtype = arg.dtype if isinstance(arg, np.ndarray) and arg.dtype.kind in "fc" else np.dtype(np.float64)
    if _is_complex(arg):
        dtype = np.result_type(dtype, np.complex128)
    shape = np.shape(arg)
    if call.shape is None:  # an array program: the gradient already has the argument's shape
        if isinstance(arg, complex):
            return complex(gradient)
        if _is_python_number(arg):
            return float(gradient)
        if _fresh(gradient, shape, dtype, call):
            return gradient
        return np.array(np.broadcast_to(np.asarray(gradient, dtype=dtype), shape), dtype=dtype)
    if shape == call.shape and _fresh(gradient, shape, dtype, call):
        return gradient  # the kernel's own new array: no copy needed
    # Else the argument was broadcast, and the gradient sums over the broadcast, even where
    # the kernel's array already has the argument's shape (`(b > 0)` for a scalar `b`).
    full = np.broadcast_to(np.asarray(gradient, dtype=dtype), call.shape)
    if shape != call.shape:
        full = full.sum(axis=runtime.broadcast_axes(shape, call.shape), keepdims=True).reshape(shape)
    if _is_python_number(arg):
        return float(full)
    return np.array(full, dtype=dtype)  # a fresh, writable array every call


def _fresh(gradient: Any, shape: tuple[int, ...], dtype: Any, call: Call) -> bool:
    """True when `gradient` is a new array made by the kernel, already of the right shape."""
    return (
        isinstance(gradient, np.ndarray)
        and gradient.shape == shape
        and gradient.dtype == dtype
        and gradient.base is None  # not a view (views of inputs and broadcasts have a base)
        and gradient.flags.writeable
        and not any(gradient is a for a in call.args)  # not an input passed straight through
    )


def fit_value(value: Any, call: Call, as_computed: bool = False) -> Any:
    """Shape a function value like the broadcast of the arguments; `as_computed`: as the
    program computed it (see `Variant.as_computed`)."""
    if call.scalar:
        return _as_float(value)
    xp = _foreign_call(call, value)
    if xp is not None:
        return _fit_foreign(xp, value, call.shape if call.shape is not None else np.shape(value), call)
    dtype = _float_dtype(value)
    if call.shape is None or as_computed:
        array = np.asarray(value, dtype=dtype)
        return _as_float(array) if array.ndim == 0 else np.array(array)
    full = np.broadcast_to(np.asarray(value, dtype=dtype), call.shape)
    return _as_float(full) if full.ndim == 0 else np.array(full)
