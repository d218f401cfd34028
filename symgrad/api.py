"""Public API and the pipeline driver: parse -> trace -> diff -> emit -> Compiled."""

from __future__ import annotations

import ast
import functools
import inspect
import math
import sys
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union, overload

import numpy as np
import sympy

from . import arrays, backends, cache, callables, diff, emit, parse, rewrite, trace, trees
from . import checkpoint as checkpoints
from .compiled import NO_TREES, Call, Compiled, Variant, fit, fit_value
from .complexes import complex_input, is_complex_symbol
from .errors import ArgumentError, NonScalarOutputError, ShapeError, TracingError, WrtError
from .graph import Graph, ShapeFacts, real_symbol
from .looptrace import LOOP_MODES
from .protocols import Decorator, P, Pullback, Transformed, TuplePullback

Names = Union[str, int, Sequence[Union[str, int]], None]  # noqa: UP007 - a runtime alias on 3.10

_SOURCES: weakref.WeakKeyDictionary[Callable[..., Any], parse.Source] = weakref.WeakKeyDictionary()


def _load(fn: Callable[..., Any]) -> parse.Source:
    """Parse (and fence) a function once; later calls reuse the parsed source."""
    try:
        source = _SOURCES.get(fn)
    except TypeError:  # not weak-referenceable: certainly not a plain function
        return parse.load(fn)
    if source is None:
        source = parse.load(fn)
        _SOURCES[fn] = source
    return source


# --- wrt and static ----------------------------------------------------------------------------


def _names(source: parse.Source, spec: Names, what: str) -> tuple[tuple[str, ...], bool]:
    """Parameter names from names or positions; the flag says a single name was given."""
    params = list(inspect.signature(source.fn).parameters)  # as declared: `*operands` in its place
    if spec is None:
        return (), False
    single = isinstance(spec, (str, int))
    if not single and not isinstance(spec, (tuple, list)):
        raise source.error(
            WrtError,
            source.tree,
            f"`{what}` must be a parameter name, a position, or a tuple of them; got {spec!r}",
            f"e.g. {what}=('x', 'y') or {what}=(0, 1)",
        )
    items = [spec] if single else list(spec)  # type: ignore[arg-type]
    names = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise source.error(
                WrtError,
                source.tree,
                f"`{what}` entries must be parameter names or positions, got {item!r}",
                f"e.g. {what}=('x', 'y') or {what}=(0, 1)",
            )
        if isinstance(item, int):
            if not -len(params) <= item < len(params):
                raise source.error(
                    WrtError,
                    source.tree,
                    f"`{what}` position {item} is out of range: `{source.tree.name}` has {len(params)} parameters",
                    f"use a position from 0 to {len(params) - 1}, or a name from {params}",
                )
            item = params[item]
        if item not in params:
            raise source.error(
                WrtError,
                source.tree,
                f"`{what}` names `{item}`, which is not a parameter of `{source.tree.name}`",
                f"choose from {params}",
            )
        names.append(item)
    return tuple(names), single


def _resolve(
    source: parse.Source, wrt: Names, static: Names
) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    static_names, _ = _names(source, static, "static")
    wrt_names, single = _names(source, wrt, "wrt")
    if wrt is None:  # the first parameter, as jax.grad (argnums=0), autograd and torch.func
        params = list(inspect.signature(source.fn).parameters)  # `*args` where it is declared
        wrt_names = tuple(p for p in params if p not in static_names)[:1]
        single = True
        if not wrt_names:
            raise source.error(
                WrtError,
                source.tree,
                f"`{source.tree.name}` has no parameter to differentiate",
                "pass wrt=... naming a float parameter",
            )
    if not wrt_names:
        raise source.error(
            WrtError,
            source.tree,
            "`wrt=()` names no parameter to differentiate with respect to",
            "name at least one parameter, e.g. wrt=0 or wrt=('x', 'y')",
        )
    clash = set(wrt_names) & set(static_names)
    if clash:
        raise source.error(
            WrtError,
            source.tree,
            f"{sorted(clash)} cannot be both `wrt` and `static`",
            "a static parameter is a constant: remove it from wrt",
        )
    return wrt_names, static_names, single


# --- the pipeline ------------------------------------------------------------------------------


def _symbols(graph: Graph, names: Sequence[str]) -> list[sympy.Symbol]:
    return [graph.inputs[graph.params.index(n)] for n in names]


def _kernel_doc(kind: str, fn: Callable[..., Any], wrt: Sequence[str]) -> str:
    name = f"{fn.__module__}.{fn.__qualname__}"
    return f"{kind} of {name} with respect to {', '.join(wrt)}; generated by symgrad."


def _builder(
    base: Callable[..., Any],
    derive: Callable[[Graph], Graph],
    kind: str,
    wrt: Sequence[str],
    backend: str = "numpy",
    loops: str = "auto",
) -> Callable[..., Variant]:
    def rebuild(
        static_values: dict[str, Any], shapes: dict[str, Any] | None, complex_params: frozenset[str]
    ) -> tuple[Graph, Graph]:
        primal = rewrite.stabilize(trace.trace(_load(base), static_values, shapes, loops, complex_params))
        return primal, derive(primal)

    def build(
        static_values: dict[str, Any],
        shapes: dict[str, Any] | None = None,
        complex_params: frozenset[str] = frozenset(),
    ) -> Variant:
        try:
            return build_variant(static_values, shapes, complex_params)
        except RecursionError:
            source = _load(base)
            raise source.error(
                TracingError,
                source.tree,
                f"`{source.tree.name}` nests too deeply for Python's recursion limit "
                f"({sys.getrecursionlimit()}): helpers calling helpers many levels deep, "
                "or one expression of thousands of nested operations",
                "flatten the chain of helper calls, or raise the limit before the first call: "
                "import sys; sys.setrecursionlimit(10_000)",
            ) from None

    def build_variant(
        static_values: dict[str, Any], shapes: dict[str, Any] | None, complex_params: frozenset[str]
    ) -> Variant:
        key_values = static_values if shapes is None else {**static_values, " shapes": shapes}
        if complex_params:
            key_values = {**key_values, " complex": sorted(complex_params)}
        if loops != "auto":
            key_values = {**key_values, " loops": loops}
        module = backend if backend in emit.MODULE_PRINTERS else None
        if module is not None:  # the kernel holds the program printed for that module too
            key_values = {**key_values, " module": module}
        entry_key = cache.key(base, _description(derive), key_values)
        entry = cache.load(entry_key, base)
        if entry is not None:
            kernel = backends.specialise(emit.load_kernel(entry["kernel"]), backend)
            return Variant(
                kernel,
                entry["primal_outputs"],
                tuple(entry["shape"]),
                rebuild=lambda: rebuild(static_values, shapes, complex_params)[1],
                output_shapes=tuple(tuple(s) for s in entry.get("output_shapes", ())),
                facts=ShapeFacts.from_record(entry["facts"]),
                captured=[(tuple(p), tuple(s)) for p, s in entry["captured"]],
                guards=cache.guards_of(base, [(tuple(p), fp) for p, fp in entry["deps"]]),
            )
        primal, graph = rebuild(static_values, shapes, complex_params)
        name = f"{kind}_{primal.name}"
        kernel = emit.emit(graph, name, _kernel_doc(kind, base, wrt), module)
        outputs = graph.differentiated or primal.outputs  # what this transform differentiated
        output_shapes = tuple(arrays.shape_of(o, graph.shapes) for o in outputs) if graph.shapes else ()
        if primal.cacheable:
            data = {
                "kernel": emit.kernel_record(kernel),
                "primal_outputs": len(outputs),
                "shape": list(graph.shape),
                "output_shapes": [list(s) for s in output_shapes],
                "facts": primal.shape_facts().record(),
                "captured": [[list(p), list(s)] for p, s, _ in primal.captured],
            }
            cache.store(entry_key, primal.deps, data)
        kernel = backends.specialise(kernel, backend)
        return Variant(
            kernel,
            len(outputs),
            graph.shape,
            graph=graph,
            output_shapes=output_shapes,
            facts=primal.shape_facts(),
            guards=primal.guards,
            captured=[(p, s) for p, s, _ in primal.captured],
        )

    return build


def _description(derive: Callable[[Graph], Graph]) -> str:
    return str(getattr(derive, "description", ""))


def _describe(
    derive: Callable[[Graph], Graph], inner: Callable[[Graph], Graph], kind: str, wrt: Sequence[str]
) -> None:
    """Name a graph transform for cache keys: the chain of kinds and wrt that produced it."""
    derive.description = f"{_description(inner)}|{kind}{tuple(wrt)}"  # type: ignore[attr-defined]


def _base_and_derive(fn: Any) -> tuple[Callable[..., Any], Callable[[Graph], Graph], Names | None]:
    """For a symgrad object, its original function and graph transform (higher order)."""
    if isinstance(fn, Compiled):
        if fn.kind not in ("grad",):
            raise WrtError(
                f"cannot differentiate the result of {fn.kind}() again",
                hint="differentiate a function or a grad(...) object",
            )
        return fn.fn, fn.derive, fn.static
    if not callable(fn):
        raise WrtError(
            f"expected a function, got {type(fn).__name__}", hint="pass a function defined with def"
        )
    return callables.as_function(fn), (lambda g: g), None


def _transform(
    base: Callable[..., Any],
    inner: Callable[[Graph], Graph],
    kind: str,
    derive: Callable[[Graph], Graph],
    wrt_names: tuple[str, ...],
    static_names: tuple[str, ...],
    single: bool,
    finish: Any,
    backend: str,
    loops: str,
    **calling: Any,
) -> Compiled:
    """The `Compiled` object of one transform: `derive` maps the traced graph to its program."""
    _describe(derive, inner, kind, wrt_names)
    compiled = Compiled(
        base,
        kind=kind,
        wrt=wrt_names,
        static=static_names,
        single=single,
        build=_builder(base, derive, kind, wrt_names, backend, loops),
        backend=backend,
        derive=derive,
        finish=finish,
        **calling,
    )
    # Built on a gradient (`jvp(grad(f))`): on arrays, the elementwise program computes each
    # gradient per element of the broadcast, and grad sums it to its parameter's shape after
    # the kernel; so do the values, tangents and jacobian rows of this transform.
    compiled.loops = loops  # type: ignore[attr-defined]
    compiled.output_params = getattr(inner, "output_params", ())  # type: ignore[attr-defined]
    compiled.output_tuple = getattr(inner, "output_tuple", None)  # type: ignore[attr-defined]
    return compiled


def _returns_tuple(compiled: Compiled, call: Call) -> bool:
    """Whether the differentiated function returns a tuple (`grad(f, wrt=(0,))`, `return (y,)`):
    then jvp's and vjp's values, tangents and cotangents are tuples too, as in JAX."""
    inner = getattr(compiled, "output_tuple", None)
    return bool(compiled.ran(call).facts.tuple_output if inner is None else inner)


def _output_tree(compiled: Compiled, variant: Variant) -> trees.TreeDef | None:
    """The structure of what the differentiated function returns when it is more than a
    number or a flat tuple (a dict, a list, nested tuples): jvp, vjp and jacobian give their
    results in it, as JAX does. None for a transform of a gradient, whose outputs are its
    gradients."""
    if getattr(compiled, "output_tuple", None) is not None:
        return None
    return variant.facts.output_tree  # type: ignore[no-any-return]


def _fit_outputs(compiled: Compiled, outputs: Sequence[Any], call: Call) -> tuple[Any, ...]:
    """The differentiated function's outputs (values, tangents) as it returns them."""
    params = getattr(compiled, "output_params", ())
    if not params or call.shape is None:
        exact = compiled.ran(call).as_computed
        return tuple(fit_value(v, call, n in exact) for n, v in enumerate(outputs))
    args = dict(zip(compiled.dynamic, call.args))
    return tuple(fit(v, args[p], call) for v, p in zip(outputs, params))


# --- public API --------------------------------------------------------------------------------


@overload
def grad(
    fn: Callable[P, Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[False] = ...,
    loops: str | None = ...,
    checkpoint: int | bool | None = ...,
) -> Compiled[P, Any]: ...


@overload
def grad(
    fn: Callable[P, Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[True],
    loops: str | None = ...,
    checkpoint: int | bool | None = ...,
) -> Transformed[P, tuple[Any, Any]]: ...


@overload
def grad(
    fn: Callable[P, Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: bool,
    loops: str | None = ...,
    checkpoint: int | bool | None = ...,
) -> Transformed[P, Any]: ...


@overload
def grad(
    fn: None = None,
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: bool = ...,
    loops: str | None = ...,
    checkpoint: int | bool | None = ...,
) -> Decorator[Any]: ...


def grad(
    fn: Callable[..., Any] | None = None,
    *,
    wrt: Names = None,
    argnums: Names = None,
    static: Names = (),
    backend: str | None = None,
    has_aux: bool = False,
    loops: str | None = None,
    checkpoint: int | bool | None = None,
) -> Any:
    """Gradient of `fn`, compiled from its source.

    Args:
        fn: a Python function of floats (or arrays, elementwise), or a `grad` object to
            differentiate again. May be omitted to use `@grad(wrt=...)` as a decorator.
        wrt: parameter names or positions to differentiate with respect to. Default: the
            first parameter not in `static` (as `jax.grad`'s `argnums=0`, autograd and
            `torch.func.grad`), so `scipy.optimize.minimize(f, x0, args=..., jac=grad(f))`
            works. A single name or position, or the default, gives a single gradient; a
            tuple gives a tuple.
        argnums: JAX's name for `wrt` (positions or names), for code ported from JAX; give
            one of the two.
        static: parameters to specialise on (loop bounds, flags): one compiled variant per value.
        backend: where the generated program runs: `"numpy"` (default; for a transform of a
            transform, the inner one's backend), `"numba"` (a fused, parallel loop on arrays;
            `njit` on long float programs), `"jax"` or `"cupy"` (their arrays, elementwise
            programs). Every backend gives the same numbers.
        has_aux: as in JAX, `fn` returns `(value, aux)`: the gradient is of `value`, and the
            call returns `(gradient, aux)`, aux being what `fn` itself returns (it runs once
            per call; aux is not differentiated).
        loops: how `for` loops become code: `"auto"` (default; a transform of a transform
            takes the inner one's) keeps a loop over `range(N)` with N >= 64 iterations, and
            every `while` loop, as a loop (a forward loop saving what a backward loop needs),
            and unrolls shorter loops; `"keep"` keeps every `for` loop over a range; `"unroll"`
            unrolls every `for` loop into straight-line code. A body that needs its index as a
            Python int (`range(i)`) or changes a list unrolls, and `.source` says why.
        checkpoint: memory for long kept `for` loops: `k` runs each as segments of `k`
            iterations, `True` as segments of about sqrt(N); the gradient then saves one
            value per carried variable and segment, and runs each segment forward again
            (ADOL-C's and Tapenade's checkpoints): O(N / k + k) saved values instead of O(N),
            for one more forward pass. Default None: every iteration's values are saved.

    Returns:
        A `Compiled` callable with `fn`'s signature returning the gradient of the sum of
        `fn`'s output, shaped like each `wrt` argument (PyTorch's `y.sum().backward()`).
        Arguments may be trees (dicts, tuples, lists, dataclasses of numbers and arrays, as
        JAX's pytrees): their gradients have the same structure.

    >>> import numpy as np
    >>> from symgrad import grad
    >>> def f(x, y):
    ...     return np.sin(x) * y
    >>> grad(f)(0.0, 2.0)
    2.0
    >>> dfdx, dfdy = grad(f, wrt=("x", "y"))(0.0, 2.0)
    >>> dfdx, dfdy
    (2.0, 0.0)
    """
    wrt = _wrt_or_argnums("grad", wrt, argnums)
    if fn is None:
        return functools.partial(
            grad, wrt=wrt, static=static, backend=backend, has_aux=has_aux, loops=loops, checkpoint=checkpoint
        )
    if has_aux:
        return WithAux(_make(callables.first_output(fn), "grad", wrt, static, backend, loops, checkpoint), fn)
    return _make(fn, "grad", wrt, static, backend, loops, checkpoint)


@overload
def value_and_grad(
    fn: Callable[P, Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[False] = ...,
    loops: str | None = ...,
    checkpoint: int | bool | None = ...,
) -> Compiled[P, tuple[Any, Any]]: ...


@overload
def value_and_grad(
    fn: Callable[P, Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[True],
    loops: str | None = ...,
    checkpoint: int | bool | None = ...,
) -> Transformed[P, tuple[Any, Any]]: ...


@overload
def value_and_grad(
    fn: Callable[P, Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: bool,
    loops: str | None = ...,
    checkpoint: int | bool | None = ...,
) -> Transformed[P, tuple[Any, Any]]: ...


@overload
def value_and_grad(
    fn: None = None,
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: bool = ...,
    loops: str | None = ...,
    checkpoint: int | bool | None = ...,
) -> Decorator[tuple[Any, Any]]: ...


def value_and_grad(
    fn: Callable[..., Any] | None = None,
    *,
    wrt: Names = None,
    argnums: Names = None,
    static: Names = (),
    backend: str | None = None,
    has_aux: bool = False,
    loops: str | None = None,
    checkpoint: int | bool | None = None,
) -> Any:
    """Like `grad` (same `wrt` or `argnums`, default the first parameter), but the callable
    returns `(value, gradient)` from one generated program; with `has_aux`,
    `((value, aux), gradient)` as in JAX.

    >>> from symgrad import value_and_grad
    >>> def f(x):
    ...     return x ** 3
    >>> value_and_grad(f)(2.0)
    (8.0, 12.0)
    >>> def g(x, y):
    ...     return x * y
    >>> value_and_grad(g, wrt=("x", "y"))(2.0, 3.0)
    (6.0, (3.0, 2.0))
    """
    wrt = _wrt_or_argnums("value_and_grad", wrt, argnums)
    if fn is None:
        return functools.partial(
            value_and_grad,
            wrt=wrt,
            static=static,
            backend=backend,
            has_aux=has_aux,
            loops=loops,
            checkpoint=checkpoint,
        )
    if has_aux:
        return WithAux(
            _make(callables.first_output(fn), "value_and_grad", wrt, static, backend, loops, checkpoint), fn
        )
    return _make(fn, "value_and_grad", wrt, static, backend, loops, checkpoint)


class WithAux:
    """A transform with `has_aux=True`: the transform of `f`'s first output, and `f`'s second.

    The generated program computes the value and the derivatives; the auxiliary output is
    what `f` returns when it runs on the same arguments (it is data, not differentiated).
    As in JAX: `grad` gives `(gradient, aux)`, `value_and_grad` `((value, aux), gradient)`,
    `vjp` `(value, pullback, aux)`, `jvp` `(value, tangent, aux)`, `jacobian` and `hessian`
    `(matrix, aux)`."""

    def __init__(self, compiled: Compiled, fn: Callable[..., Any]) -> None:
        self.compiled = compiled
        self.fn = fn
        functools.update_wrapper(self, compiled, assigned=("__doc__",), updated=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.compiled(*args, **kwargs)
        kind = self.compiled.kind
        if kind == "jvp":  # jvp(f)(primals, tangents): f runs on the primals
            primals = args[0] if args else kwargs.get("primals", ())
            value, tangent = result
            return value, tangent, self.fn(*primals)[1]
        aux = self.fn(*args, **kwargs)[1]
        if kind == "value_and_grad":
            value, gradient = result
            return (value, aux), gradient
        if kind == "vjp":
            value, pullback = result
            return value, pullback, aux
        return result, aux

    # What the program is: the transform's (`.source`, `.graph`, `.variant(...)`, ...).
    @property
    def kind(self) -> str:
        return self.compiled.kind

    @property
    def wrt(self) -> tuple[str, ...]:
        return self.compiled.wrt

    @property
    def static(self) -> tuple[str, ...]:
        return self.compiled.static

    @property
    def backend(self) -> str:
        return self.compiled.backend

    @property
    def source(self) -> str:
        return self.compiled.source

    @property
    def scalar_source(self) -> str | None:
        return self.compiled.scalar_source

    @property
    def graph(self) -> Graph:
        return self.compiled.graph

    @property
    def exprs(self) -> tuple[Any, ...]:
        return self.compiled.exprs

    def variant(
        self,
        static_values: dict[str, Any] | None = None,
        shapes: dict[str, tuple[int, ...]] | None = None,
        complex_params: frozenset[str] = frozenset(),
    ) -> Variant:
        return self.compiled.variant(static_values, shapes, complex_params)

    def __getattr__(self, name: str) -> Any:  # the rest of the program's attributes
        if name == "compiled":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.compiled, name)

    def __repr__(self) -> str:
        return f"<{self.compiled!r} with aux>"


def _wrt_or_argnums(where: str, wrt: Names, argnums: Names) -> Names:
    """`argnums` (JAX's spelling) is `wrt` by another name: one of them, never both."""
    if argnums is None:
        return wrt
    if wrt is not None:
        raise WrtError(
            f"{where}() got both wrt={wrt!r} and argnums={argnums!r}",
            hint="argnums is JAX's name for wrt: pass one of them",
        )
    return argnums


def _inherit(fn: Any, backend: str | None) -> str:
    """The backend asked for; else, for a transform of a transform, the inner one's."""
    if backend is not None:
        return backend
    return str(fn.backend) if isinstance(fn, Compiled) else "numpy"


def _loop_mode(fn: Any, loops: str | None) -> str:
    """How `for` loops are traced: asked for, else a transformed transform's, else "auto"."""
    if loops is None:
        return str(getattr(fn, "loops", "auto")) if isinstance(fn, Compiled) else "auto"
    if loops not in LOOP_MODES:
        raise WrtError(
            f"loops must be one of {', '.join(map(repr, LOOP_MODES))}, got {loops!r}",
            hint='loops="auto" keeps long loops as loops, "keep" every loop, "unroll" none',
        )
    return loops


def _checkpoint_size(checkpoint: Any) -> int | bool | None:
    if checkpoint is None or checkpoint is False:
        return None
    if checkpoint is True or (
        isinstance(checkpoint, int) and not isinstance(checkpoint, bool) and checkpoint > 0
    ):
        return checkpoint
    raise WrtError(
        f"checkpoint must be a positive int (iterations per segment) or True, got {checkpoint!r}",
        hint="checkpoint=True runs long loops as segments of about sqrt(N) iterations; checkpoint=100 of 100",
    )


def _make(
    fn: Any,
    kind: str,
    wrt: Names,
    static: Names,
    backend: str | None,
    loops: str | None,
    checkpoint: int | bool | None = None,
) -> Compiled:
    base, inner, wrt_names, static_names, single, backend = _primal(fn, wrt, static, backend)
    segments = _checkpoint_size(checkpoint)

    def derive(primal: Graph) -> Graph:
        graph = inner(primal)
        if segments is not None:  # long loops as segments: the reverse pass saves one value each
            graph = checkpoints.segmented(graph, segments)
        seeds = [sympy.S.One] * len(graph.outputs)
        real_outputs(graph, base)
        gradients = diff.reverse(graph, _symbols(graph, wrt_names), seeds)
        if kind == "value_and_grad":
            gradients.outputs = (*graph.outputs, *gradients.outputs)
        gradients.differentiated = graph.outputs
        return gradients

    if kind == "grad":  # its outputs are the gradients, fitted to these parameters' shapes
        derive.output_params = wrt_names  # type: ignore[attr-defined]
        derive.output_tuple = not single  # type: ignore[attr-defined]
    finish = _finish_value_and_grad if kind == "value_and_grad" else _finish_grad
    result = _value_and_grad_result if kind == "value_and_grad" else _grad_result
    compiled = _transform(
        base,
        inner,
        kind,
        derive,
        wrt_names,
        static_names,
        single,
        finish,
        backend,
        loops=_loop_mode(fn, loops),
        result=result,
    )
    if segments is not None:  # another program: another cache entry
        derive.description += f"|checkpoint={segments}"  # type: ignore[attr-defined]
    if not isinstance(fn, Compiled):  # parameter trees for first derivatives
        compiled.trees = functools.partial(_call_with_trees, kind)
    return compiled


def _call_with_trees(kind: str, compiled: Compiled, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A transform called with arguments that are trees (JAX's pytrees: tuples, lists, dicts,
    dataclasses of numbers and arrays): the same transform of the program of their leaves,
    each gradient (or tangent) in its argument's structure (`{"W": dW, "b": db}`)."""
    if kind == "jvp":  # jvp(f)(primals, tangents)
        primals, tangents = (args[0], args[1]) if len(args) == 2 and not kwargs else ((), ())
        args, kwargs = tuple(primals), {}
    static, dynamic = compiled.bind(args, kwargs)
    values = dict(zip(compiled.dynamic, dynamic))
    structures = {p: trees.flatten(v)[1] for p, v in values.items() if trees.is_tree(v)}
    if not structures:
        return NO_TREES
    flat_compiled, leaves = _tree_program(kind, compiled, structures)
    compiled.latest_tree = flat_compiled  # what `.source` shows
    flat_args = {**static}
    for p, v in values.items():
        flat_args.update(zip(leaves[p], trees.flatten(v)[0]) if p in leaves else [(p, v)])
    regroup = functools.partial(_regroup, compiled.wrt, compiled.single, leaves, structures)
    # Of grad(f) (`jvp(grad(loss))`, a Hessian-vector product): its values, tangents and
    # cotangents are gradients, in the structures of the parameters grad differentiates.
    inner_wrt, inner_single = _inner_gradient(compiled)
    gradients = functools.partial(_regroup, inner_wrt, inner_single, leaves, structures)
    if kind == "jvp":
        given = tangents if isinstance(tangents, (tuple, list)) else (tangents,)
        flat_tangents = _per_leaf(compiled.wrt, given, structures, "tangent for `{}`")
        order = list(inspect.signature(flat_compiled.fn).parameters)
        value, tangent = flat_compiled(tuple(flat_args[n] for n in order), tuple(flat_tangents))
        return (gradients(value), gradients(tangent)) if inner_wrt else (value, tangent)
    out = flat_compiled(**flat_args)
    if kind in ("jacobian", "hessian"):  # arranged in the arguments' structures (`columns`)
        return out
    if kind == "vjp":
        value, pullback = out
        if inner_wrt:
            flat_cotangent = functools.partial(_gradient_leaves, inner_wrt, inner_single, structures)
            return gradients(value), lambda cotangent: regroup(pullback(flat_cotangent(cotangent)))
        return value, lambda cotangent: regroup(pullback(cotangent))
    if kind == "value_and_grad":
        return out[0], regroup(out[1])
    return regroup(out)


def _tree_program(
    kind: str, compiled: Compiled, structures: dict[str, Any]
) -> tuple[Compiled, dict[str, list[str]]]:
    """The transform of the function of the leaves, compiled once per structure of the trees."""
    key = tuple(sorted(structures.items(), key=lambda item: item[0]))
    cache_of = compiled.__dict__.setdefault("_tree_programs", {})
    found = cache_of.get(key)
    if found is None:
        params = list(compiled._signature.parameters)
        flat_fn, leaves = trees.flat_function(compiled.fn, params, structures)
        flat_wrt = tuple(n for p in compiled.wrt for n in leaves.get(p, [p]))
        makers: dict[str, Callable[..., Any]] = {
            "value_and_grad": value_and_grad,
            "grad": grad,
            "vjp": vjp,
            "jvp": jvp,
            "jacobian": jacobian,
            "hessian": hessian,
        }
        maker = makers[kind]
        inner_wrt, inner_single = _inner_gradient(compiled)
        target: Any = flat_fn
        if inner_wrt:
            flat_inner = tuple(n for p in inner_wrt for n in leaves.get(p, [p]))
            target = grad(flat_fn, wrt=flat_inner, static=compiled.static, backend=compiled.backend)
        transform = maker(target, wrt=flat_wrt, static=compiled.static, backend=compiled.backend)
        # jacobian and hessian blocks of the leaves, per output: in their trees' structures
        transform.columns = functools.partial(
            _regroup, compiled.wrt, compiled.single, leaves, dict(structures)
        )
        if inner_wrt:  # jacobian(grad(f)): its rows are the gradient's leaves
            transform.rows = functools.partial(_regroup, inner_wrt, inner_single, leaves, dict(structures))
        found = cache_of[key] = (transform, leaves)
    return found  # type: ignore[no-any-return]


def _inner_gradient(compiled: Compiled) -> tuple[tuple[str, ...], bool]:
    """For a transform of grad(f, wrt=...): those parameters, and whether grad gives one
    gradient (not a tuple); no parameters for a transform of f itself."""
    return getattr(compiled, "output_params", ()), not getattr(compiled, "output_tuple", None)


def _regroup(
    wrt: Sequence[str], single: bool, leaves: dict[str, list[str]], structures: dict[str, Any], flat: Any
) -> Any:
    """Gradients of the leaves, back in the structures of the arguments `wrt` they belong to
    (one of them if `single`, else a tuple)."""
    grads = list(flat) if isinstance(flat, tuple) else [flat]
    shaped = []
    for p in wrt:
        if p in leaves:
            count = len(leaves[p])
            shaped.append(trees.unflatten(structures[p], grads[:count]))
            grads = grads[count:]
        else:
            shaped.append(grads.pop(0))
    return shaped[0] if single else tuple(shaped)


def _per_leaf(wrt: Sequence[str], given: Sequence[Any], structures: dict[str, Any], what: str) -> list[Any]:
    """Values given per parameter `wrt` (tangents, cotangents), a tree for a tree parameter,
    as one value per leaf; `what` names one of them (`{}`: the parameter)."""
    return [
        leaf
        for p, value in zip(wrt, given)
        for leaf in (_leaves_in(structures[p], value, what.format(p)) if p in structures else [value])
    ]


def _gradient_leaves(wrt: Sequence[str], single: bool, structures: dict[str, Any], cotangent: Any) -> Any:
    """A cotangent for a gradient (of parameters `wrt`, in their structures), as the flat
    program of the leaves takes it: one value per leaf."""
    given = (cotangent,) if single else tuple(cotangent)
    flat = _per_leaf(wrt, given, structures, "cotangent for the gradient of `{}`")
    return flat[0] if len(flat) == 1 else tuple(flat)


def _gradients(compiled: Compiled, raw: Sequence[Any], call: Call) -> Any:
    args = dict(zip(compiled.dynamic, call.args))
    grads = tuple(fit(g, args[name], call) for g, name in zip(raw, compiled.wrt))
    return grads[0] if compiled.single else grads


def _check_scalar_output(compiled: Compiled, call: Call) -> None:
    variant = compiled.ran(call)
    tree = _output_tree(compiled, variant)
    if (call.scalar and variant.primal_outputs > 1) or tree is not None:
        source = _load(compiled.fn)
        containers = (ast.Tuple, ast.List, ast.Dict)
        returns = [
            n for n in ast.walk(source.tree) if isinstance(n, ast.Return) and isinstance(n.value, containers)
        ]
        what = f"{variant.primal_outputs} values" if tree is None else trees.describe(tree)
        raise source.error(
            NonScalarOutputError,
            returns[0] if returns else source.tree,
            f"grad needs a scalar output, but `{source.tree.name}` returns {what}",
            "use symgrad.jacobian(f) for all partials, or symgrad.vjp(f) to weight the outputs "
            "(like PyTorch's 'grad can be implicitly created only for scalar outputs'); "
            "to return extra values beside the loss, return `(loss, extras)` and pass has_aux=True",
        )


def _finish_grad(compiled: Compiled, raw: tuple[Any, ...], call: Call) -> Any:
    _check_scalar_output(compiled, call)
    return _gradients(compiled, raw, call)


def _finish_value_and_grad(compiled: Compiled, raw: tuple[Any, ...], call: Call) -> Any:
    _check_scalar_output(compiled, call)
    n = compiled.ran(call).primal_outputs
    exact = compiled.ran(call).as_computed
    values = tuple(fit_value(v, call, k in exact) for k, v in enumerate(raw[:n]))
    value = values[0] if n == 1 else values
    return value, _gradients(compiled, raw[n:], call)


def _grad_result(variant: Variant, single: bool) -> Callable[[list[str]], str] | None:
    """How the floats-only entry point returns grad's outputs (None: no entry point)."""
    if variant.primal_outputs != 1:
        return None  # tuple outputs on floats are an error, which the general path raises
    return lambda outs: outs[0] if single else _tuple_text(outs)


def _value_and_grad_result(variant: Variant, single: bool) -> Callable[[list[str]], str] | None:
    if variant.primal_outputs != 1:
        return None
    return lambda outs: f"({outs[0]}, {outs[1]})" if single else f"({outs[0]}, {_tuple_text(outs[1:])})"


def _tuple_text(items: list[str]) -> str:
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


# --- the derivative family (one graph, one emitter) ----------------------------------------------


def real_outputs(graph: Graph, base: Callable[..., Any]) -> None:
    """Refuse a complex output where a gradient needs a real one (grad, jacobian, hessian)."""
    if any(map(is_complex_symbol, graph.outputs)):
        source = _load(base)
        raise source.error(
            TracingError,
            source.tree,
            "the function returns a complex value: a gradient is of a real-valued function (of real or "
            "complex arguments), as in jax.grad; vjp and jvp take complex outputs",
            "return a real number computed from it, e.g. `np.abs(w)**2`, `np.real(w)` or `np.angle(w)`; "
            "or use vjp(f)(z) with a complex cotangent",
        )


def _with_inputs(graph: Graph, hints: Sequence[str], like: Sequence[Any]) -> tuple[Graph, list[sympy.Symbol]]:
    """A copy of `graph` taking extra parameters (cotangents, tangents) after its own, each
    shaped like the corresponding value in `like`."""
    result = graph.extend()
    # the cotangent of a complex output is complex (see Graph.add_complex)
    extra = [
        (complex_input if is_complex_symbol(v) else real_symbol)(result.names.fresh(h))
        for h, v in zip(hints, like)
    ]
    if result.shapes is not None:
        for symbol, value in zip(extra, like):
            result.shapes[symbol] = arrays.shape_of(value, result.shapes)
    result.inputs = (*graph.inputs, *extra)
    result.params = (*graph.params, *(str(s) for s in extra))
    return result, extra


def _primal(
    fn: Any, wrt: Names, static: Names, backend: str | None
) -> tuple[Callable[..., Any], Callable[[Graph], Graph], tuple[str, ...], tuple[str, ...], bool, str]:
    """What every transform starts from: the function whose source is traced, the inner
    transforms' derivation, the resolved `wrt` and `static` names, and the backend."""
    backend = _inherit(fn, backend)
    backends.check(backend)
    base, inner, inner_static = _base_and_derive(fn)
    if inner_static is not None and not static:
        static = inner_static
    static = _with_options(static, getattr(base, "__symgrad_static__", ()))
    wrt_names, static_names, single = _resolve(_load(base), wrt, static)
    return base, inner, wrt_names, static_names, single, backend


def _with_options(static: Names, options: tuple[str, ...]) -> Names:
    """`static` and the options of a NumPy function passed directly (`grad(np.sum)`: `axis`)."""
    if not options:
        return static
    given = [] if static is None else [static] if isinstance(static, (str, int)) else list(static)
    return tuple(given + [o for o in options if o not in given])


_ONCE: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _once(
    kind: str,
    fn: Any,
    wrt: Names,
    static: Names,
    backend: str | None,
    has_aux: bool,
    loops: str | None,
    count: int,
) -> Any:
    """The curried transform behind JAX's one-shot forms (`vjp(f, x, y)`, `jvp(f, primals,
    tangents)`), made once per function and options, so that calling them in a loop compiles
    once. Without `wrt`: with respect to every primal (`count` of them) not in `static`, as
    a tuple, as JAX differentiates every primal."""
    maker = vjp if kind == "vjp" else jvp
    key = repr((kind, wrt, static, backend, has_aux, loops, count if wrt is None else None))
    try:
        known = _ONCE.setdefault(fn, {})
    except TypeError:  # not weak-referenceable: made for this call alone
        known = {}
    found = known.get(key)
    if found is None:
        if wrt is None:
            curried = maker(fn, static=static, backend=backend, has_aux=has_aux, loops=loops)
            wrt = _every_primal(curried, count)
        found = known[key] = maker(fn, wrt=wrt, static=static, backend=backend, has_aux=has_aux, loops=loops)
    return found


def _every_primal(transform: Any, count: int) -> tuple[int, ...]:
    """The positions of `count` positional arguments that are not static (a `*args`
    parameter counts once: its tuple is one primal's tree)."""
    positions = []
    for i, param in enumerate(inspect.signature(transform.fn).parameters.values()):
        if i >= count or param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            break
        if param.name not in transform.static:
            positions.append(i)
    return tuple(positions)


@overload
def vjp(
    fn: Callable[P, Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[False] = ...,
    loops: str | None = ...,
) -> Compiled[P, tuple[Any, Pullback]]: ...


@overload
def vjp(
    fn: Callable[P, Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[True],
    loops: str | None = ...,
) -> Transformed[P, tuple[Any, Pullback, Any]]: ...


@overload
def vjp(
    fn: Callable[..., Any],
    primal: Any,
    /,
    *primals: Any,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[False] = ...,
    loops: str | None = ...,
) -> tuple[Any, TuplePullback]: ...


@overload
def vjp(
    fn: Callable[..., Any],
    primal: Any,
    /,
    *primals: Any,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[True],
    loops: str | None = ...,
) -> tuple[Any, TuplePullback, Any]: ...


@overload
def vjp(
    fn: Callable[..., Any],
    *primals: Any,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: bool,
    loops: str | None = ...,
) -> Any: ...


def vjp(
    fn: Callable[..., Any],
    *primals: Any,
    wrt: Names = None,
    argnums: Names = None,
    static: Names = (),
    backend: str | None = None,
    has_aux: bool = False,
    loops: str | None = None,
) -> Any:
    """Vector-Jacobian product: PyTorch's `y.backward(v)`, JAX's `jax.vjp`.

    Two forms. JAX's, `vjp(f, *primals)`, gives `(value, pullback)` at once, and
    `pullback(v)` returns a tuple with one gradient per primal, as `jax.vjp` and
    `torch.func.vjp`. symgrad's curried form, `vjp(f)(*args)`, is a reusable object (with
    `.source`) whose pullback returns what `grad` would: a single gradient for the default
    `wrt` (the first parameter) or a single name or position, a tuple for a tuple `wrt`.

    Args:
        fn: the function (or a `grad` object: `vjp(grad(loss))`).
        *primals: JAX's form: the arguments, all positional; the pullback gives the
            gradient for each (or for the `wrt` parameters alone when `wrt` is given).
        wrt, argnums, static, backend, loops: as in `grad`.
        has_aux: as in JAX, `fn` returns `(value, aux)`: the result is
            `(value, pullback, aux)`, `pullback` of `value`.

    Returns:
        The curried form: a callable giving `(value, pullback)`; with primals, that pair.
        `pullback(v)`, with `v` shaped like the output (a tuple of them for tuple outputs),
        returns the gradient of `sum(v * f(*args))` for each `wrt` argument, shaped like it.

    >>> import numpy as np
    >>> from symgrad import vjp
    >>> def f(x):
    ...     return x * x
    >>> y, pullback = vjp(f)(np.array([1.0, 2.0]))
    >>> pullback(np.array([1.0, 10.0]))
    array([ 2., 40.])
    >>> def g(x, y):
    ...     return x * y
    >>> value, pullback = vjp(g, 2.0, 3.0)  # jax.vjp's form: one gradient per primal
    >>> value, pullback(1.0)
    (6.0, (3.0, 2.0))
    """
    wrt = _wrt_or_argnums("vjp", wrt, argnums)
    if primals:  # jax.vjp(f, *primals): with respect to every primal, a tuple pullback
        transform = _once("vjp", fn, wrt, static, backend, has_aux, loops, len(primals))
        return transform(*primals)
    if has_aux:
        return WithAux(
            vjp(callables.first_output(fn), wrt=wrt, static=static, backend=backend, loops=loops), fn
        )
    base, inner, wrt_names, static_names, single, backend = _primal(fn, wrt, static, backend)

    def derive(primal: Graph) -> Graph:
        graph = inner(primal)
        hints = ["v"] if len(graph.outputs) == 1 else [f"v{i}" for i in range(len(graph.outputs))]
        graph, cotangents = _with_inputs(graph, hints, graph.outputs)
        result = diff.reverse(graph, _symbols(graph, wrt_names), cotangents)
        result.outputs = (*graph.outputs, *result.outputs)
        result.differentiated = graph.outputs
        return result

    compiled = _transform(
        base,
        inner,
        "vjp",
        derive,
        wrt_names,
        static_names,
        single,
        _finish_vjp,
        backend,
        loops=_loop_mode(fn, loops),
        invoke=_run_for_vjp,
    )
    compiled.trees = functools.partial(_call_with_trees, "vjp")  # of f, or of grad(f)
    return compiled


def _finish_vjp(compiled: Compiled, raw: tuple[Any, ...], call: Call) -> Any:
    n = compiled.ran(call).primal_outputs
    values = _fit_outputs(compiled, raw[:n], call)

    shapes = compiled.probe(call.static, call.args).output_shapes
    tree = _output_tree(compiled, compiled.ran(call))
    as_tuple = n > 1 or _returns_tuple(compiled, call)

    def pullback(v: Any) -> Any:
        if tree is not None:  # a dict, list, nested tuples: a cotangent of the same structure
            cotangents = tuple(_leaves_in(tree, v, "cotangent"))
        else:
            cotangents = tuple(v) if n > 1 or (as_tuple and isinstance(v, tuple)) else (v,)
        if len(cotangents) != n:
            raise ShapeError(
                f"pullback expects {n} cotangents, one per output",
                hint="pass a tuple with one array per output",
            )
        if shapes:  # an array program: each cotangent in its output's shape
            cotangents = tuple(_shaped_like(c, s, "cotangent") for c, s in zip(cotangents, shapes))
        else:  # elementwise: a cotangent broadcasts with the value, or its shape is named here
            for c, value in zip(cotangents, values):
                _broadcasts_with(c, np.shape(value), "cotangent")
        out, inner_call = compiled.execute(call.static, call.args, cotangents)
        return _gradients(compiled, out[n:], inner_call)

    if tree is not None:
        return trees.unflatten(tree, list(values)), pullback
    return (values if as_tuple else values[0]), pullback


def _leaves_in(tree: trees.TreeDef, value: Any, what: str) -> list[Any]:
    """The leaves of a cotangent (or tangent) that must have the structure `tree`."""
    leaves = trees.leaves_as(tree, value)
    if leaves is None:
        expected = trees.describe(tree)
        raise ShapeError(
            f"the {what} has another structure than the value it belongs to, {expected}",
            hint=f"pass a {what} of the same structure (the same keys and lengths): {expected}",
        )
    return leaves


def _run_for_vjp(compiled: Compiled, *args: Any, **kwargs: Any) -> Any:
    # The value comes from the same program, with unit cotangents.
    static, dynamic = compiled.bind(args, kwargs)
    dynamic = [compiled._check(n, v) for n, v in zip(compiled.dynamic, dynamic)]
    variant = compiled.probe(static, dynamic)
    ones: list[Any] = [np.ones(s) for s in variant.output_shapes] or [1.0] * variant.primal_outputs
    raw, call = compiled.execute(static, dynamic, ones)
    return compiled._finish(compiled, raw, call)


def _shaped_like(value: Any, shape: tuple[int, ...], what: str) -> Any:
    if np.shape(value) == shape:
        return value
    try:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), shape)
    except ValueError:
        raise ShapeError(
            f"a {what} of shape {np.shape(value)} does not fit a value of shape {shape}",
            hint=f"pass a {what} shaped {shape}",
        ) from None


def _broadcasts_with(value: Any, shape: tuple[int, ...], what: str) -> None:
    try:
        np.broadcast_shapes(np.shape(value), shape)
    except ValueError:
        raise ShapeError(
            f"a {what} of shape {np.shape(value)} does not fit a value of shape {shape}",
            hint=f"pass a {what} shaped {shape}",
        ) from None


@overload
def jvp(
    fn: Callable[..., Any],
    primals: None = None,
    tangents: None = None,
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[False] = ...,
    loops: str | None = ...,
) -> Compiled[[Sequence[Any], Any], tuple[Any, Any]]: ...


@overload
def jvp(
    fn: Callable[..., Any],
    primals: None = None,
    tangents: None = None,
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[True],
    loops: str | None = ...,
) -> Transformed[[Sequence[Any], Any], tuple[Any, Any, Any]]: ...


@overload
def jvp(
    fn: Callable[..., Any],
    primals: Sequence[Any],
    tangents: Sequence[Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[False] = ...,
    loops: str | None = ...,
) -> tuple[Any, Any]: ...


@overload
def jvp(
    fn: Callable[..., Any],
    primals: Sequence[Any],
    tangents: Sequence[Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[True],
    loops: str | None = ...,
) -> tuple[Any, Any, Any]: ...


@overload
def jvp(
    fn: Callable[..., Any],
    primals: Sequence[Any] | None = ...,
    tangents: Sequence[Any] | None = ...,
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: bool,
    loops: str | None = ...,
) -> Any: ...


def jvp(
    fn: Callable[..., Any],
    primals: Sequence[Any] | None = None,
    tangents: Sequence[Any] | None = None,
    *,
    wrt: Names = None,
    argnums: Names = None,
    static: Names = (),
    backend: str | None = None,
    has_aux: bool = False,
    loops: str | None = None,
) -> Any:
    """Jacobian-vector product by forward accumulation over the same graph (JAX's `jax.jvp`).

    Two forms. JAX's, `jvp(f, primals, tangents)`, gives `(value, tangent_out)` at once, with
    one tangent per primal, as `jax.jvp`. symgrad's curried form, `jvp(f)(primals, tangents)`,
    is a reusable object (with `.source`) whose tangents are one per `wrt` parameter (by
    default the first parameter alone).

    Args:
        fn: the function (or a `grad` object: `jvp(grad(loss))` for Hessian-vector products).
        primals: JAX's form: a tuple (or list) of every argument.
        tangents: JAX's form: a tuple of one tangent per primal (per `wrt` parameter when
            `wrt` is given), each shaped like its primal.
        wrt, argnums, static, backend, loops: as in `grad`.
        has_aux: as in JAX, `fn` returns `(value, aux)`: the result is
            `(value, tangent_out, aux)`, the tangent of `value`.

    Returns:
        The curried form: a callable taking `(primals, tangents)`, `primals` a tuple of all
        arguments and `tangents` one per `wrt` parameter, giving `(value, tangent_out)`;
        with primals and tangents, that pair.

    >>> from symgrad import jvp
    >>> def f(x, y):
    ...     return x * y
    >>> jvp(f, (2.0, 3.0), (1.0, 0.0))  # jax.jvp's form: a tangent per primal
    (6.0, 3.0)
    >>> jvp(f)((2.0, 3.0), (1.0,))
    (6.0, 3.0)
    >>> jvp(f, wrt=("x", "y"))((2.0, 3.0), (1.0, 1.0))
    (6.0, 5.0)
    """
    wrt = _wrt_or_argnums("jvp", wrt, argnums)
    if primals is not None or tangents is not None:  # jax.jvp(f, primals, tangents)
        if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
            raise ArgumentError(
                "jvp(f, primals, tangents) takes a tuple of every argument and a tuple of "
                f"tangents, got {type(primals).__name__} and {type(tangents).__name__}",
                hint="e.g. jvp(f, (x, y), (dx, dy)), as jax.jvp; or the curried jvp(f)((x, y), (dx,))",
            )
        transform = _once("jvp", fn, wrt, static, backend, has_aux, loops, len(primals))
        return transform(tuple(primals), tuple(tangents))
    if has_aux:
        return WithAux(
            jvp(callables.first_output(fn), wrt=wrt, static=static, backend=backend, loops=loops), fn
        )
    base, inner, wrt_names, static_names, single, backend = _primal(fn, wrt, static, backend)

    def derive(primal: Graph) -> Graph:
        graph = inner(primal)
        graph, tangents = _with_inputs(graph, [f"d{n}" for n in wrt_names], _symbols(graph, wrt_names))
        result = diff.forward(graph, _symbols(graph, wrt_names), tangents)
        result.outputs = (*graph.outputs, *result.outputs)
        result.differentiated = graph.outputs
        return result

    compiled = _transform(
        base,
        inner,
        "jvp",
        derive,
        wrt_names,
        static_names,
        single,
        _finish_jvp,
        backend,
        loops=_loop_mode(fn, loops),
        invoke=_call_jvp,
    )
    compiled.trees = functools.partial(_call_with_trees, "jvp")  # of f, or of grad(f)
    return compiled


def _finish_jvp(compiled: Compiled, raw: tuple[Any, ...], call: Call) -> Any:
    n = compiled.ran(call).primal_outputs
    values = _fit_outputs(compiled, raw[:n], call)
    tangents = tuple(_like(t, v) for t, v in zip(_fit_outputs(compiled, raw[n:], call), values))
    tree = _output_tree(compiled, compiled.ran(call))
    if tree is not None:  # a dict, list, nested tuples: values and tangents in that structure
        return trees.unflatten(tree, list(values)), trees.unflatten(tree, list(tangents))
    if n == 1 and not _returns_tuple(compiled, call):
        return values[0], tangents[0]
    return values, tangents


def _like(tangent: Any, value: Any) -> Any:
    """A tangent in its value's shape (a zero or a sum arrives as a number)."""
    if (
        isinstance(value, np.ndarray)
        and np.shape(tangent) != value.shape
        and not backends.is_foreign(tangent)
    ):
        return np.array(np.broadcast_to(np.asarray(tangent, dtype=np.float64), value.shape))
    return tangent


def _call_jvp(compiled: Compiled, primals: Sequence[Any], tangents: Any) -> Any:
    tangents = (tangents,) if not isinstance(tangents, (tuple, list)) else tuple(tangents)
    if len(tangents) != len(compiled.wrt):
        raise ShapeError(
            f"jvp expects {len(compiled.wrt)} tangents (one per wrt parameter {compiled.wrt}), got {len(tangents)}",
            hint="pass a tuple of tangents in the order of wrt",
        )
    static, dynamic = compiled.bind(tuple(primals), {})
    dynamic = [compiled._check(n, v) for n, v in zip(compiled.dynamic, dynamic)]
    if compiled.probe(static, dynamic).output_shapes:  # an array program: tangents in full shape
        values = dict(zip(compiled.dynamic, dynamic))
        tangents = tuple(
            _shaped_like(t, np.shape(values[n]), "tangent") for t, n in zip(tangents, compiled.wrt)
        )
    raw, call = compiled.execute(static, dynamic, tangents)
    return compiled._finish(compiled, raw, call)


@overload
def jacobian(
    fn: Callable[P, Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[False] = ...,
    loops: str | None = ...,
) -> Compiled[P, Any]: ...


@overload
def jacobian(
    fn: Callable[P, Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: bool,
    loops: str | None = ...,
) -> Transformed[P, Any]: ...


def jacobian(
    fn: Callable[..., Any],
    *,
    wrt: Names = None,
    argnums: Names = None,
    static: Names = (),
    backend: str | None = None,
    has_aux: bool = False,
    loops: str | None = None,
) -> Any:
    """Jacobian matrix: one reverse pass per output, all in one generated program.

    `wrt` (or `argnums`), `static`, `backend` and `loops` are as in `grad`; with `has_aux`,
    `fn` returns `(value, aux)` and the call `(jacobian of value, aux)`, as in JAX.

    Returns:
        A callable giving an `(m, n)` array (m outputs, n `wrt` parameters; by default the
        first parameter alone, n = 1) on numbers; on arrays, JAX's layout: for each output and `wrt` parameter a block of shape output
        shape + parameter shape (a tuple of blocks for several of either).

    >>> from symgrad import jacobian
    >>> def f(x, y):
    ...     return x * y, x + y
    >>> jacobian(f, wrt=("x", "y"))(2.0, 3.0)
    array([[3., 2.],
           [1., 1.]])
    """
    wrt = _wrt_or_argnums("jacobian", wrt, argnums)
    if has_aux:
        return WithAux(
            jacobian(callables.first_output(fn), wrt=wrt, static=static, backend=backend, loops=loops), fn
        )
    base, inner, wrt_names, static_names, single, backend = _primal(fn, wrt, static, backend)

    def derive(primal: Graph) -> Graph:
        graph = inner(primal)
        real_outputs(graph, base)
        result = _jacobian_graph(graph, _symbols(graph, wrt_names))
        result.differentiated = graph.outputs
        return result

    compiled = _transform(
        base,
        inner,
        "jacobian",
        derive,
        wrt_names,
        static_names,
        single,
        _finish_matrix,
        backend,
        loops=_loop_mode(fn, loops),
        invoke=_call_matrix,
    )
    compiled.trees = functools.partial(_call_with_trees, "jacobian")  # of f, or of grad(f)
    if isinstance(fn, Compiled):  # jacobian(grad(f)): array programs take grad's pullbacks
        compiled.of = fn  # type: ignore[attr-defined]
    return compiled


def _jacobian_graph(graph: Graph, wrt: Sequence[sympy.Symbol]) -> Graph:
    result = graph.extend()
    entries: list[Any] = []
    m = len(graph.outputs)
    for i, out in enumerate(graph.outputs):
        seeds = [sympy.S.One if j == i else sympy.S.Zero for j in range(m)]
        prefix = "f" if m == 1 else str(out)
        entries.extend(diff.reverse(graph, wrt, seeds, prefix=prefix, into=result).outputs)
    result.outputs = tuple(entries)
    result.shape = (m, len(wrt))
    return result


@overload
def hessian(
    fn: Callable[P, Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: Literal[False] = ...,
    loops: str | None = ...,
) -> Compiled[P, Any]: ...


@overload
def hessian(
    fn: Callable[P, Any],
    *,
    wrt: Names = ...,
    argnums: Names = ...,
    static: Names = ...,
    backend: str | None = ...,
    has_aux: bool,
    loops: str | None = ...,
) -> Transformed[P, Any]: ...


def hessian(
    fn: Callable[..., Any],
    *,
    wrt: Names = None,
    argnums: Names = None,
    static: Names = (),
    backend: str | None = None,
    has_aux: bool = False,
    loops: str | None = None,
) -> Any:
    """Hessian matrix of a scalar function: reverse over reverse on the same graph.

    `wrt` (or `argnums`), `static`, `backend` and `loops` are as in `grad`; with `has_aux`,
    `fn` returns `(value, aux)` and the call `(hessian of value, aux)`, as in JAX.

    Returns:
        A callable giving an `(n, n)` array on numbers, for n `wrt` parameters (by default the
        first parameter alone); on arrays, the jacobian of the
        gradient (of the sum of the outputs) in JAX's layout: parameter shape + parameter shape.

    >>> from symgrad import hessian
    >>> def f(x, y):
    ...     return x * x * y
    >>> hessian(f, wrt=("x", "y"))(1.0, 2.0)
    array([[4., 2.],
           [2., 0.]])
    """
    wrt = _wrt_or_argnums("hessian", wrt, argnums)
    if has_aux:
        return WithAux(
            hessian(callables.first_output(fn), wrt=wrt, static=static, backend=backend, loops=loops), fn
        )
    base, inner, wrt_names, static_names, single, backend = _primal(fn, wrt, static, backend)

    def derive(primal: Graph) -> Graph:
        graph = inner(primal)
        real_outputs(graph, base)
        symbols = _symbols(graph, wrt_names)
        gradients = diff.reverse(graph, symbols, [sympy.S.One] * len(graph.outputs))
        result = _jacobian_graph(gradients, symbols)
        result.shape = (len(symbols), len(symbols))
        result.differentiated = graph.outputs
        return result

    compiled = _transform(
        base,
        inner,
        "hessian",
        derive,
        wrt_names,
        static_names,
        single,
        _finish_matrix,
        backend,
        loops=_loop_mode(fn, loops),
        invoke=_call_matrix,
    )
    if not isinstance(fn, Compiled):
        compiled.trees = functools.partial(_call_with_trees, "hessian")
    return compiled


def _call_matrix(compiled: Compiled, *args: Any, **kwargs: Any) -> Any:
    """jacobian/hessian: one program on elementwise functions; on array programs, one
    pullback per output element (JAX's layout: output shape + input shape)."""
    static, dynamic = compiled.bind(args, kwargs)
    dynamic = [compiled._check(n, v) for n, v in zip(compiled.dynamic, dynamic)]
    variant = compiled.probe(static, dynamic)
    tree = _output_tree(compiled, variant) if compiled.kind == "jacobian" else None
    if variant.output_shapes:
        blocks = _pullback_blocks(compiled, tree, dict(zip(compiled.dynamic, dynamic)), args, kwargs)
    else:
        raw, call = compiled.execute(static, dynamic)
        if call.shape is None or not any(np.shape(v) for v in dynamic):
            matrix = compiled._finish(compiled, raw, call)  # numbers: the (m, n) matrix
            if tree is None and compiled.columns is None:
                return matrix
            blocks = _matrix_blocks(matrix)
        else:  # arrays: JAX's layout (output shape + argument shape), however the body is written
            blocks = _elementwise_blocks(compiled, raw, call)
    return _arrange(compiled, blocks, tree)


def _arrange(compiled: Compiled, blocks: list[list[Any]], tree: trees.TreeDef | None) -> Any:
    """Blocks (per output, per `wrt` parameter) in JAX's layout: a block for one output and
    one parameter, else tuples of them; in the output's structure (a dict of outputs) and in
    the parameters' (`Compiled.columns`: a dict parameter's blocks as a dict)."""
    columns, rows = compiled.columns, compiled.rows
    if compiled.kind == "hessian" and columns is not None:  # rows and columns: the parameters'
        return columns(tuple(columns(tuple(row)) for row in blocks))
    one = len(compiled.wrt) == 1 and compiled.single
    per_output = [columns(tuple(b)) if columns else b[0] if one else tuple(b) for b in blocks]
    if rows is not None:
        return rows(tuple(per_output))
    if tree is not None:
        return trees.unflatten(tree, per_output)
    return per_output[0] if len(per_output) == 1 else tuple(per_output)


def _matrix_blocks(matrix: Any) -> list[list[Any]]:
    """The (..., m, n) matrix of an elementwise program, as blocks per output, per parameter."""
    m, n = matrix.shape[-2:]
    return [[_number_if_0d(matrix[..., i, j]) for j in range(n)] for i in range(m)]


def _number_if_0d(value: Any) -> Any:
    return float(value) if isinstance(value, np.ndarray) and value.ndim == 0 else value


def _pullback_blocks(
    compiled: Compiled,
    tree: trees.TreeDef | None,
    values: dict[str, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> list[list[Any]]:
    """An array program's blocks: one pullback per output element (`values`: the dynamic
    arguments by name, as the call bound them)."""
    inner = getattr(compiled, "_pullbacks", None)
    if inner is None:
        # the function whose jacobian this is: f, a gradient (jacobian(grad(f))), or for a
        # hessian f's gradient
        target = (
            getattr(compiled, "of", compiled.fn)
            if compiled.kind == "jacobian"
            else grad(compiled.fn, wrt=compiled.wrt, static=compiled.static, backend=compiled.backend)
        )
        inner = compiled._pullbacks = vjp(  # type: ignore[attr-defined]
            target, wrt=compiled.wrt, static=compiled.static, backend=compiled.backend
        )
    value, pullback = inner(*args, **kwargs)
    outputs: Sequence[Any] = (
        trees.flatten(value)[0] if tree is not None else value if isinstance(value, tuple) else (value,)
    )

    def pack(cotangents: list[Any]) -> Any:  # what the pullback takes: the output's structure
        if tree is not None:
            return trees.unflatten(tree, cotangents)
        return tuple(cotangents) if len(outputs) > 1 else cotangents[0]

    return [
        list(_jacobian_block(pullback, pack, outputs, k, values, compiled.wrt)) for k in range(len(outputs))
    ]


def _elementwise_blocks(compiled: Compiled, raw: tuple[Any, ...], call: Call) -> list[list[Any]]:
    """jacobian/hessian of an elementwise program on arrays, in JAX's layout: entry (r, c) of
    a block sums the partials at the elements i of the broadcast shape where row element r
    and argument element c meet (for a jacobian, row r is the output element itself).
    Arrays of other libraries (Dask) stay in their library, lazily."""
    m, n = compiled.ran(call).shape
    shape = call.shape or ()
    args = dict(zip(compiled.dynamic, call.args))
    arg_shapes = [np.shape(args[name]) for name in compiled.wrt]
    params = getattr(compiled, "output_params", ())
    rows = arg_shapes if compiled.kind == "hessian" else [np.shape(args[p]) for p in params] or [shape] * m
    foreign = [v for v in (*raw, *call.args) if backends.is_foreign(v)]
    xp = backends.namespace_of(foreign[0]) if foreign else np
    blocks = []
    for i in range(m):
        block = []
        for j in range(n):
            values = xp.reshape(xp.broadcast_to(xp.asarray(raw[i * n + j], dtype=np.float64), shape), (-1,))
            entry = xp.reshape(_meet(xp, values, shape, rows[i], arg_shapes[j]), (*rows[i], *arg_shapes[j]))
            block.append(float(entry) if xp is np and entry.ndim == 0 else entry)
        blocks.append(block)
    return blocks


def _meet(xp: Any, values: Any, shape: tuple[int, ...], row: tuple[int, ...], column: tuple[int, ...]) -> Any:
    """The (row size, column size) matrix whose entry (r, c) sums `values` (one per element of
    the broadcast `shape`) where row element r and column element c are read."""
    rows, columns = _reads(shape, row), _reads(shape, column)
    width = math.prod(column)
    if xp is np:  # a scatter: linear in the elements, where the one-hot product is cubic
        flat = np.bincount(rows * width + columns, weights=values, minlength=math.prod(row) * width)
        return flat.reshape(math.prod(row), width)
    return xp.einsum("i,ir,ic->rc", values, _one_hot(rows, math.prod(row)), _one_hot(columns, width))


def _reads(shape: tuple[int, ...], target: tuple[int, ...]) -> Any:
    """Which element (flat index) of an argument of shape `target` each element of the
    broadcast `shape` reads: broadcasting aligns on the right; a length-1 axis is index 0."""
    index = np.indices(shape).reshape(len(shape), -1) if shape else np.zeros((0, 1), dtype=np.intp)
    offset = len(shape) - len(target)
    columns = [
        index[offset + d] if size != 1 else np.zeros(index.shape[1], dtype=np.intp)
        for d, size in enumerate(target)
    ]
    return np.ravel_multi_index(columns, target) if target else np.zeros(index.shape[1], dtype=np.intp)


def _one_hot(reads: Any, size: int) -> Any:
    hot = np.zeros((len(reads), size))
    hot[np.arange(len(reads)), reads] = 1.0
    return hot


def _jacobian_block(
    pullback: Any,
    pack: Callable[[list[Any]], Any],
    outputs: Sequence[Any],
    k: int,
    args: dict[str, Any],
    wrt: Sequence[str],
) -> tuple[Any, ...]:
    """d outputs[k] / d each wrt argument, stacked in the output's shape + the argument's."""
    shape = np.shape(outputs[k])
    rows: list[list[Any]] = [[] for _ in wrt]
    for i in range(int(np.prod(shape))):
        basis = np.zeros(shape)
        basis.flat[i] = 1.0
        cotangents = [basis if j == k else np.zeros(np.shape(o)) for j, o in enumerate(outputs)]
        grads = pullback(pack(cotangents))
        grads = grads if isinstance(grads, tuple) else (grads,)
        for row, g in zip(rows, grads):
            row.append(np.asarray(g, dtype=np.float64))
    blocks = [np.stack(row).reshape((*shape, *np.shape(args[name]))) for row, name in zip(rows, wrt)]
    return tuple(float(b) if b.ndim == 0 else b for b in blocks)  # a number's partial: a float


def _finish_matrix(compiled: Compiled, raw: tuple[Any, ...], call: Call) -> Any:
    if compiled.kind == "hessian":
        _check_scalar_output(compiled, call)
    m, n = compiled.ran(call).shape
    if call.scalar:
        return np.array(raw, dtype=np.float64).reshape(m, n)
    shape = call.shape or ()  # elementwise programs only: array programs go through pullbacks
    foreign = [v for v in (*raw, *call.args) if backends.is_foreign(v)]
    xp = backends.namespace_of(foreign[0]) if foreign else np  # Dask, JAX: stay in their library
    entries = [xp.broadcast_to(xp.asarray(e, dtype=np.float64), shape) for e in raw]
    stacked = xp.stack(entries, axis=-1) if entries else xp.zeros((*shape, 0))
    return stacked.reshape(*shape, m, n)


def derivative(
    fn: Callable[P, Any],
    *,
    wrt: str | int,
    order: int = 1,
    static: Names = (),
    backend: str | None = None,
    loops: str | None = None,
) -> Compiled[P, Any]:
    """The `order`-th derivative with respect to one parameter: grad applied `order` times,
    each time to the previous derivative's graph (never to generated source).

    >>> from symgrad import derivative
    >>> def f(x):
    ...     return x ** 4
    >>> derivative(f, wrt="x", order=3)(1.0)
    24.0
    """
    if not isinstance(order, int) or order < 1:
        raise WrtError(
            f"order must be a positive int, got {order!r}", hint="e.g. order=2 for a second derivative"
        )
    result: Any = fn
    for _ in range(order):
        result = grad(result, wrt=wrt, static=static, backend=backend, loops=loops)
    return result  # type: ignore[no-any-return]


if TYPE_CHECKING:  # mypy checks that what the transforms return is what their types promise

    def _conforms(
        compiled: Compiled[P, Any], aux: WithAux
    ) -> tuple[Transformed[P, Any], Transformed[P, Any]]:
        return compiled, aux
