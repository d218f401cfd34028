"""Callables that are not `def` functions (NumPy, math and SciPy functions, partials) as plain functions with source."""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import inspect
import operator
import sys
import types
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from . import emit, rules
from .compiled import Compiled
from .errors import SourceUnavailableError, SymgradError, UnknownCalleeError, at_caller

_WRAPPERS: weakref.WeakKeyDictionary[Any, types.FunctionType] = weakref.WeakKeyDictionary()
_BY_ID: dict[int, tuple[Any, types.FunctionType]] = {}  # ufuncs and builtins: not weak-referenceable


def as_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` itself when it is a Python function (or a symgrad object); otherwise a plain
    function with readable source that calls it: `grad(np.sin)` differentiates
    `def sin(x): return numpy.sin(x)`, and `grad(functools.partial(f, a=1.0))` a function
    of the remaining parameters that calls `f` with `a=1.0`.

    >>> import numpy as np
    >>> print(inspect.getsource(as_function(np.sin)).strip())
    def sin(x):
        return numpy.sin(x)
    """
    if isinstance(fn, (types.FunctionType, Compiled)) and not _library_array_function(fn):
        return fn  # a symgrad object is differentiated through its own derivation
    if not callable(fn):
        return fn
    method = _python_method(fn)
    if method is not None:
        return _method_wrapper(method)  # not remembered: bound anew on every attribute access
    known = _known(fn)
    if known is not None:
        return known
    wrapper = _partial_wrapper(fn) if isinstance(fn, functools.partial) else _library_wrapper(fn)
    _remember(fn, wrapper)
    return wrapper


def _library_array_function(fn: Any) -> bool:
    """A NumPy or SciPy function written in Python that the tracer has a handler for
    (`np.row_stack`, `scipy.special.logsumexp`): differentiated as the handler's call, with
    its options (`axis=None`, `dtype=None`) static, not through its own source."""
    module = (getattr(fn, "__module__", None) or "").partition(".")[0]
    return isinstance(fn, types.FunctionType) and module in ("numpy", "scipy") and _is_array_function(fn)


def _python_method(fn: Any) -> types.MethodType | None:
    """`model.loss` (a bound method, a classmethod), or `model` itself when its class defines
    `__call__` in Python (a callable dataclass): the method, bound to its object."""
    if inspect.ismethod(fn) and isinstance(fn.__func__, types.FunctionType):
        return fn
    call = next((vars(k)["__call__"] for k in type(fn).__mro__ if "__call__" in vars(k)), None)
    if isinstance(call, types.FunctionType) and not isinstance(fn, type):
        return types.MethodType(call, fn)
    return None


def _method_wrapper(method: types.MethodType) -> types.FunctionType:
    """`def loss(x): return Model_loss(self, x)` for `model.loss`, where the global `self` is
    the object: what the method reads from `self` is read from it at every call."""
    func = method.__func__
    first = next(iter(inspect.signature(func).parameters), "self")
    owner = func.__qualname__.rsplit(".", 1)[0].replace(".<locals>", "").replace(".", "_")
    inner = f"{owner}_{func.__name__}" if owner.isidentifier() else f"{func.__name__}_method"
    return _partial_wrapper(functools.partial(func, method.__self__), func.__name__, inner, (first,))


def _known(fn: Any) -> types.FunctionType | None:
    try:
        found = _WRAPPERS.get(fn)
    except TypeError:
        entry = _BY_ID.get(id(fn))
        found = entry[1] if entry is not None and entry[0] is fn else None
    return found


def _remember(fn: Any, wrapper: types.FunctionType) -> None:
    try:
        _WRAPPERS[fn] = wrapper
    except TypeError:
        _BY_ID[id(fn)] = (fn, wrapper)  # keeps `fn` alive, so its id is never reused


# --- NumPy, math and SciPy functions ------------------------------------------------------------


# `operator.mul` and friends: the operator itself, as Python writes it.
_BINARY_OPERATORS: dict[Any, type[ast.operator]] = {
    operator.add: ast.Add,
    operator.sub: ast.Sub,
    operator.mul: ast.Mult,
    operator.truediv: ast.Div,
    operator.floordiv: ast.FloorDiv,
    operator.mod: ast.Mod,
    operator.pow: ast.Pow,
    operator.matmul: ast.MatMult,
}
_UNARY_OPERATORS: dict[Any, type[ast.unaryop]] = {operator.neg: ast.USub, operator.pos: ast.UAdd}


def _operator_wrapper(fn: Any) -> types.FunctionType | None:
    """`def mul(a, b): return a * b` for `operator.mul`."""
    name = fn.__name__
    if fn in _BINARY_OPERATORS:
        body: ast.expr = ast.BinOp(left=_load("a"), op=_BINARY_OPERATORS[fn](), right=_load("b"))
        params = ["a", "b"]
    elif fn in _UNARY_OPERATORS:
        body, params = ast.UnaryOp(op=_UNARY_OPERATORS[fn](), operand=_load("a")), ["a"]
    else:
        return None
    return _compile(_definition(name, [ast.arg(arg=p) for p in params], [], [], body), {}, "operator")


def _library_wrapper(fn: Any) -> types.FunctionType:
    """`def sin(x): return numpy.sin(x)` for a library function symgrad has a rule for."""
    with contextlib.suppress(TypeError):  # unhashable callables are no operators
        found = _operator_wrapper(fn)
        if found is not None:
            return found
    dotted = _dotted_name(fn)
    if dotted is None:
        raise _no_rule_error(fn)
    module, _, _ = dotted.partition(".")
    name = dotted.rpartition(".")[2]
    handler = _handler_parameters(fn)
    if handler is not None:  # an array function: the parameters its tracing handler takes
        required, star, options = handler
    else:
        required, star, options = _positional_params(fn), None, {}
    keywords = [ast.keyword(arg=k, value=_load(k)) for k in options]
    args: list[ast.expr] = [_load(p) for p in required]
    if star is not None:
        args.append(ast.Starred(value=_load(star), ctx=ast.Load()))
    call = ast.Call(func=_dotted_expr(dotted), args=args, keywords=keywords)
    positional = [ast.arg(arg=p) for p in required]
    defaults: list[ast.expr] = [ast.Constant(value=v) for v in options.values()]
    if star is None:  # `def sum(x, axis=None, keepdims=False)`
        definition = _definition(name, positional + [ast.arg(arg=k) for k in options], [], [], call, defaults)
    else:  # `def einsum(subscripts, *operands, optimize=False)`
        kwonly = [ast.arg(arg=k) for k in options]
        definition = _definition(name, positional, kwonly, list(defaults), call, star=star)
    wrapper = _compile(definition, {module: importlib.import_module(module)}, dotted.rpartition(".")[0])
    # options (axis=) and settings among the required parameters (np.repeat's `repeats`) pick
    # a program: static, one variant per value
    static = (*options, *(p for p in required if p in _SETTINGS))
    wrapper.__symgrad_static__ = static  # type: ignore[attr-defined]
    return wrapper


# Parameter names of NumPy's array functions that are settings, not arrays to differentiate:
# `np.repeat(x, repeats)`, `np.split(x, indices_or_sections)`, `np.einsum(subscripts, ...)`.
_SETTINGS = frozenset(
    {
        "subscripts",
        "indices_or_sections",
        "repeats",
        "reps",
        "shift",
        "pad_width",
        "axes",
        "axis",
        "source",
        "destination",
        "indices",
        "newshape",
        "shape",
        "num",
        "n",
        "k",
        "ord",
        "kth",
    }
)


def _handler_parameters(fn: Any) -> tuple[list[str], str | None, dict[str, Any]] | None:
    """For an array function, the parameters of the tracer's handler of it: the required
    ones in order, the name of a `*` parameter (np.einsum's operands), and the options with
    their defaults (`axis=None, keepdims=False` of np.sum), so that `grad(np.split)(x, 3)`
    and `grad(np.sum)(x, axis=0)` take what NumPy takes. None for other functions."""
    from .arraytrace import ARRAY_CALLS, ArrayTracing  # the tracer's table of array functions

    try:
        handler = getattr(ArrayTracing, f"array_{ARRAY_CALLS[fn]}", None)
    except (KeyError, TypeError):
        return None
    if handler is None:
        return None
    required: list[str] = []
    star: str | None = None
    options: dict[str, Any] = {}
    for p in list(inspect.signature(handler).parameters.values())[1:]:  # after self
        if p.name in ("node", "hint") or p.kind is p.VAR_KEYWORD:
            continue
        if p.kind is p.VAR_POSITIONAL:
            star = p.name
        elif p.default is p.empty:
            required.append(p.name)
        else:
            options[p.name] = p.default
    return required, star, options


def _dotted_name(fn: Any) -> str | None:
    """How the rules table (or the array functions') spells `fn`: `numpy.sin`, `math.exp`."""
    rule = rules.lookup(fn)
    candidates = list(rule.names) if rule is not None else []
    name = getattr(fn, "__name__", None)
    if name is not None:
        candidates += [f"numpy.{name}", f"numpy.linalg.{name}", f"scipy.special.{name}"]
    for dotted in candidates:
        if _resolve(dotted) is fn and (rule is not None or _is_array_function(fn)):
            return dotted
    return None


def _is_array_function(fn: Any) -> bool:
    from .arraytrace import ARRAY_CALLS  # the tracer's table of array-level NumPy functions

    try:
        return fn in ARRAY_CALLS
    except TypeError:
        return False


def _resolve(dotted: str) -> Any:
    module_name, _, attr = dotted.rpartition(".")
    module = sys.modules.get(module_name)
    return getattr(module, attr, None) if module is not None else None


def _positional_params(fn: Any) -> list[str]:
    """The parameters a derivative is taken in: a ufunc's inputs (`x` or `x1, x2`), else the
    positional parameters without a default."""
    if isinstance(fn, np.ufunc):
        return ["x"] if fn.nin == 1 else [f"x{i + 1}" for i in range(fn.nin)]
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return ["x"]
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in signature.parameters.values() if p.kind in kinds and p.default is p.empty]


def _dotted_expr(dotted: str) -> ast.expr:
    first, *rest = dotted.split(".")
    node: ast.expr = _load(first)
    for attr in rest:
        node = ast.Attribute(value=node, attr=attr, ctx=ast.Load())
    return node


def _no_rule_error(fn: Any) -> SymgradError:
    label = _label(fn)
    return UnknownCalleeError(
        f"`{label}` is not a Python function with source, and symgrad has no rule for it",
        **at_caller(),
        hint=f"differentiate a function that computes it with supported operations (see symgrad.supported()): "
        f"`def f(x): return ...`, or, for a function of numbers, register one: "
        f"symgrad.register({label}, <sympy function>)",
    )


def _label(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    return f"{module}.{name}" if module and module != "builtins" else name


# --- has_aux: the first of two outputs ----------------------------------------------------------


def first_output(fn: Callable[..., Any]) -> types.FunctionType:
    """`def loss_value(params, x): return loss(params, x)[0]` for `loss` returning `(value, aux)`
    (JAX's `has_aux`), with `fn`'s parameters and defaults."""
    target = as_function(fn)
    namespace: dict[str, Any] = {"_function": target}
    forward = _Forwarding()
    for param in inspect.signature(target).parameters.values():
        forward.add(param, namespace, fn)
    args, keywords = forward.args, forward.keywords
    call = ast.Call(func=_load("_function"), args=args, keywords=keywords)
    first = ast.Subscript(value=call, slice=ast.Constant(value=0), ctx=ast.Load())
    name = f"{getattr(target, '__name__', 'function')}_value".replace("<lambda>", "lambda")
    definition = forward.definition(name, first)
    return _compile(definition, namespace, getattr(target, "__module__", None) or __name__)


class _Forwarding:
    """A wrapper's parameters, copied from a signature, and the call passing them on."""

    def __init__(self) -> None:
        self.positional: list[ast.arg] = []
        self.kwonly: list[ast.arg] = []
        self.defaults: list[ast.expr] = []
        self.kw_defaults: list[ast.expr | None] = []
        self.args: list[ast.expr] = []
        self.keywords: list[ast.keyword] = []

    def add(self, param: inspect.Parameter, namespace: dict[str, Any], fn: Any) -> None:
        """`param` as a parameter of the wrapper (its default a global of the wrapper)."""
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise _no_source_error(fn, "it takes `*args` or `**kwargs`")
        default: ast.expr | None = None
        if param.default is not param.empty:
            namespace[f"_default_{param.name}"] = param.default
            default = _load(f"_default_{param.name}")
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            self.kwonly.append(ast.arg(arg=param.name))
            self.kw_defaults.append(default)
            self.keywords.append(ast.keyword(arg=param.name, value=_load(param.name)))
            return
        self.positional.append(ast.arg(arg=param.name))
        if default is not None:
            self.defaults.append(default)
        self.args.append(_load(param.name))

    def definition(self, name: str, body: ast.expr) -> ast.FunctionDef:
        return _definition(name, self.positional, self.kwonly, self.kw_defaults, body, self.defaults)


# --- functools.partial --------------------------------------------------------------------------


def _partial_signature(fn: functools.partial[Any]) -> inspect.Signature:
    """The parameters `fn` leaves open. NumPy before 2.3 gives a ufunc no signature
    (`inspect.signature(np.power)` raises): its inputs are positional, x1 to x{nin}."""
    inner = fn.func
    if not isinstance(inner, np.ufunc) or fn.keywords:
        return inspect.signature(fn)
    params = _positional_params(inner)[len(fn.args) :]
    if len(fn.args) > inner.nin:
        raise TypeError(f"{inner.__name__} takes {inner.nin} inputs")
    return inspect.Signature([inspect.Parameter(p, inspect.Parameter.POSITIONAL_ONLY) for p in params])


def _partial_wrapper(
    fn: functools.partial[Any],
    wrapper_name: str | None = None,
    inner_name: str | None = None,
    bound_names: tuple[str, ...] = (),
) -> types.FunctionType:
    """`def f_partial(x): return f(_bound0, x, a=_bound_a)` for `partial(f, 1.0, a=2.0)`: the
    bound values are globals of the wrapper, read (and checked for changes) like any module
    constant or array; `bound_names` names the first ones (`self` for a method)."""
    try:
        remaining = _partial_signature(fn)
    except (TypeError, ValueError):
        raise _no_source_error(fn, "its signature cannot be read") from None
    inner = fn.func
    name = getattr(inner, "__name__", "")
    name = inner_name or (name if name.isidentifier() else "function")
    namespace: dict[str, Any] = {name: inner}
    args: list[ast.expr] = []
    for i, value in enumerate(fn.args):
        bound = bound_names[i] if i < len(bound_names) else f"_bound{i}"
        namespace[bound] = value
        args.append(_load(bound))
    keywords = []
    for key, value in fn.keywords.items():
        namespace[f"_bound_{key}"] = value
        keywords.append(ast.keyword(arg=key, value=_load(f"_bound_{key}")))
    forward = _Forwarding()
    library = not isinstance(inner, types.FunctionType)
    for param in remaining.parameters.values():
        if param.name in fn.keywords or (library and param.default is not param.empty):
            continue  # a ufunc's `out=None`, `where=True`: options, not numbers
        forward.add(param, namespace, fn)
    args += forward.args
    keywords += forward.keywords
    call = ast.Call(func=_load(name), args=args, keywords=keywords)
    definition = forward.definition(wrapper_name or f"{name}_partial", call)
    return _compile(definition, namespace, getattr(inner, "__module__", None) or __name__)


def _no_source_error(fn: Any, why: str) -> SymgradError:
    return SourceUnavailableError(
        f"cannot differentiate `{fn!r}`: {why}",
        **at_caller(),
        hint="write a `def` function that calls it with every argument named",
    )


# --- building the wrapper -----------------------------------------------------------------------


def _load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def _definition(
    name: str,
    positional: list[ast.arg],
    kwonly: list[ast.arg],
    kw_defaults: list[ast.expr | None],
    call: ast.expr,
    defaults: list[ast.expr] | None = None,
    star: str | None = None,
) -> ast.FunctionDef:
    arguments = ast.arguments(
        posonlyargs=[],
        args=positional,
        vararg=None if star is None else ast.arg(arg=star),
        kwonlyargs=kwonly,
        kw_defaults=kw_defaults,
        defaults=defaults or [],
    )
    tree = ast.FunctionDef(name=name, args=arguments, body=[ast.Return(value=call)], decorator_list=[])
    if sys.version_info >= (3, 12):
        tree.type_params = []
    return tree


def _compile(definition: ast.FunctionDef, namespace: dict[str, Any], module_name: str) -> types.FunctionType:
    """Compile the wrapper from its AST's source text, registered so that symgrad (and
    `inspect.getsource`) read it like a user's function; named as in `module_name`."""
    module = ast.fix_missing_locations(ast.Module(body=[definition], type_ignores=[]))
    fn: types.FunctionType = emit.compile_source(ast.unparse(module) + "\n", definition.name, namespace)  # type: ignore[assignment]
    fn.__module__ = module_name
    fn.__symgrad_wrapper__ = True  # type: ignore[attr-defined]  # traced, though named after a library
    return fn
