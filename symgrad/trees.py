"""Parameter trees (JAX's pytrees): tuples, lists, dicts and dataclasses of numbers and arrays."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import keyword
import types
from collections.abc import Callable
from typing import Any

from . import emit

# A tree's structure, hashable: ("leaf",), ("tuple", children), ("list", children),
# ("dict", keys, children), ("dataclass", cls, fields, children).
TreeDef = tuple[Any, ...]
LEAF: TreeDef = ("leaf",)


def is_tree(value: Any) -> bool:
    """A container symgrad differentiates through: tuple, list, dict, dataclass instance."""
    return isinstance(value, (tuple, list, dict)) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    )


def flatten(value: Any) -> tuple[list[Any], TreeDef]:
    """The leaves of `value` (in order: positions, dict keys as given, dataclass fields) and
    its structure.

    >>> flatten({"W": 1.0, "b": (2.0, 3.0)})
    ([1.0, 2.0, 3.0], ('dict', ('W', 'b'), (('leaf',), ('tuple', (('leaf',), ('leaf',))))))
    """
    if isinstance(value, (tuple, list)):
        leaves, children = _flatten_all(list(value))
        # a named tuple (NumPy's `SlogdetResult`) is a tuple: rebuilt as a plain one
        return leaves, ("list" if isinstance(value, list) else "tuple", children)
    if isinstance(value, dict):
        keys = tuple(value)
        leaves, children = _flatten_all([value[k] for k in keys])
        return leaves, ("dict", keys, children)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = tuple(f.name for f in dataclasses.fields(value))
        leaves, children = _flatten_all([getattr(value, f) for f in fields])
        return leaves, ("dataclass", type(value), fields, children)
    return [value], LEAF


def _flatten_all(items: list[Any]) -> tuple[list[Any], tuple[TreeDef, ...]]:
    leaves: list[Any] = []
    children = []
    for item in items:
        found, tree = flatten(item)
        leaves += found
        children.append(tree)
    return leaves, tuple(children)


def unflatten(tree: TreeDef, leaves: list[Any]) -> Any:
    """The inverse of `flatten`: `leaves` (consumed in order) in the structure `tree`."""
    stream = iter(leaves)
    return _build(tree, stream)


def _build(tree: TreeDef, stream: Any) -> Any:
    kind = tree[0]
    if kind == "leaf":
        return next(stream)
    if kind in ("tuple", "list"):
        items = [_build(child, stream) for child in tree[1]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {key: _build(child, stream) for key, child in zip(tree[1], tree[2])}
    cls, fields, children = tree[1], tree[2], tree[3]
    values = {f: _build(child, stream) for f, child in zip(fields, children)}
    init = {f.name for f in dataclasses.fields(cls) if f.init}
    made = cls(**{k: v for k, v in values.items() if k in init})
    for name in set(values) - init:  # fields set by __post_init__: the gradient's own value
        object.__setattr__(made, name, values[name])
    return made


def structured(tree: TreeDef) -> bool:
    """More than a number or a flat tuple of numbers: a dict, a list, nested tuples, a dataclass."""
    return tree[0] != "leaf" and not (tree[0] == "tuple" and all(child == LEAF for child in tree[1]))


def plain(tree: TreeDef) -> bool:
    """Whether `tree` can be written as JSON (for the persistent cache): no dataclass, and
    dict keys that are strings or ints."""
    kind = tree[0]
    if kind == "leaf":
        return True
    if kind == "dict":
        return all(type(k) in (str, int) for k in tree[1]) and all(map(plain, tree[2]))
    return kind in ("tuple", "list") and all(map(plain, tree[1]))


def leaves_as(tree: TreeDef, value: Any) -> list[Any] | None:
    """The leaves of `value` in the order of `tree`'s (dict keys matched by name, so a
    cotangent's keys may come in any order), or None where `value` has another structure.

    >>> leaves_as(("dict", ("a", "b"), (LEAF, LEAF)), {"b": 2.0, "a": 1.0})
    [1.0, 2.0]
    """
    kind = tree[0]
    if kind == "leaf":
        return None if is_tree(value) else [value]
    if kind in ("tuple", "list"):
        if not isinstance(value, (tuple, list)) or len(value) != len(tree[1]):
            return None
        pairs = list(zip(tree[1], value))
    elif kind == "dict":
        if not isinstance(value, dict) or set(value) != set(tree[1]):
            return None
        pairs = [(child, value[key]) for key, child in zip(tree[1], tree[2])]
    else:
        if type(value) is not tree[1]:
            return None
        pairs = [(child, getattr(value, f)) for f, child in zip(tree[2], tree[3])]
    leaves: list[Any] = []
    for child, item in pairs:
        found = leaves_as(child, item)
        if found is None:
            return None
        leaves += found
    return leaves


def describe(tree: TreeDef) -> str:
    """The structure as code a user would write, each leaf (number or array) shown as `value`.

    >>> describe(("dict", ("a", "b"), (LEAF, ("tuple", (LEAF, LEAF)))))
    "{'a': value, 'b': (value, value)}"
    """
    kind = tree[0]
    if kind == "leaf":
        return "value"
    if kind == "tuple":
        items = [describe(child) for child in tree[1]]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if kind == "list":
        return f"[{', '.join(describe(child) for child in tree[1])}]"
    if kind == "dict":
        return "{" + ", ".join(f"{k!r}: {describe(child)}" for k, child in zip(tree[1], tree[2])) + "}"
    fields = ", ".join(f"{f}={describe(child)}" for f, child in zip(tree[2], tree[3]))
    return f"{tree[1].__name__}({fields})"


def leaf_names(param: str, tree: TreeDef, taken: set[str]) -> list[str]:
    """Parameter names for the leaves of `param`'s tree: `params_W`, `params_b`, `xs_0`."""
    names: list[str] = []

    def walk(prefix: str, node: TreeDef) -> None:
        kind = node[0]
        if kind == "leaf":
            names.append(_fresh(prefix, taken))
            return
        if kind in ("tuple", "list"):
            labelled = [(str(i), child) for i, child in enumerate(node[1])]
        elif kind == "dict":
            labelled = [(str(k), child) for k, child in zip(node[1], node[2])]
        else:
            labelled = list(zip(node[2], node[3]))
        for label, child in labelled:
            walk(f"{prefix}_{label}", child)

    walk(param, tree)
    return names


def _fresh(name: str, taken: set[str]) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    if not name.isidentifier() or keyword.iskeyword(name):
        name = f"leaf_{name}"
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _rebuild_expr(tree: TreeDef, names: Any, classes: dict[str, type]) -> ast.expr:
    """The expression that rebuilds a tree from its leaf parameters (`{"W": params_W, ...}`)."""
    kind = tree[0]
    if kind == "leaf":
        return ast.Name(id=next(names), ctx=ast.Load())
    if kind in ("tuple", "list"):
        items = [_rebuild_expr(child, names, classes) for child in tree[1]]
        return (
            ast.Tuple(elts=items, ctx=ast.Load()) if kind == "tuple" else ast.List(elts=items, ctx=ast.Load())
        )
    if kind == "dict":
        keys: list[ast.expr | None] = [ast.Constant(value=k) for k in tree[1]]
        return ast.Dict(keys=keys, values=[_rebuild_expr(child, names, classes) for child in tree[2]])
    cls = tree[1]
    label = f"{cls.__name__}_{len(classes)}" if cls.__name__ in classes else cls.__name__
    classes[label] = cls
    keywords = [
        ast.keyword(arg=f, value=_rebuild_expr(child, names, classes)) for f, child in zip(tree[2], tree[3])
    ]
    return ast.Call(func=ast.Name(id=label, ctx=ast.Load()), args=[], keywords=keywords)


def flat_function(
    fn: Callable[..., Any], params: list[str], trees: dict[str, TreeDef]
) -> tuple[types.FunctionType, dict[str, list[str]]]:
    """A function of the leaves of `fn`'s tree parameters that rebuilds the trees and calls
    `fn`: `def loss_flat(params_W, params_b, x): return loss({"W": params_W, ...}, x)`; a
    `*args` parameter's tuple is passed spread out, a `**kwargs` dict as keywords.
    Returns it with the leaf names of each tree parameter."""
    taken = set(params)
    leaves = {p: leaf_names(p, trees[p], taken) for p in params if p in trees}
    kinds = {name: p.kind for name, p in inspect.signature(fn).parameters.items()}
    classes: dict[str, type] = {}
    flat_params: list[ast.arg] = []
    args: list[ast.expr] = []
    keywords: list[ast.keyword] = []
    for p in params:
        if p in trees:
            flat_params += [ast.arg(arg=n) for n in leaves[p]]
            value = _rebuild_expr(trees[p], iter(leaves[p]), classes)
        else:
            flat_params.append(ast.arg(arg=p))
            value = ast.Name(id=p, ctx=ast.Load())
        kind = kinds.get(p)
        if kind is inspect.Parameter.VAR_POSITIONAL and isinstance(value, ast.Tuple):
            args += value.elts
        elif kind is inspect.Parameter.VAR_KEYWORD and isinstance(value, ast.Dict):
            keywords += [ast.keyword(arg=k.value, value=v) for k, v in zip(value.keys, value.values)]  # type: ignore[union-attr]
        elif kind is inspect.Parameter.KEYWORD_ONLY:
            keywords.append(ast.keyword(arg=p, value=value))
        else:
            args.append(value)
    inner = getattr(fn, "__name__", "function")
    inner = inner if inner.isidentifier() else "function"
    call = ast.Call(func=ast.Name(id=inner, ctx=ast.Load()), args=args, keywords=keywords)
    arguments = ast.arguments(posonlyargs=[], args=flat_params, kwonlyargs=[], kw_defaults=[], defaults=[])
    definition = ast.FunctionDef(
        name=f"{inner}_flat", args=arguments, body=[ast.Return(value=call)], decorator_list=[]
    )
    if hasattr(definition, "type_params"):
        definition.type_params = []
    module = ast.fix_missing_locations(ast.Module(body=[definition], type_ignores=[]))
    namespace: dict[str, Any] = {inner: fn, **classes}
    flat: types.FunctionType = emit.compile_source(ast.unparse(module) + "\n", definition.name, namespace)  # type: ignore[assignment]
    flat.__module__ = getattr(fn, "__module__", None) or __name__
    return flat, leaves
