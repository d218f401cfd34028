"""A PyTorch float64 oracle: a generated program's own module source, run with torch tensors.

The module text the fuzzer writes is executed unchanged except for three rewrites of its
syntax tree that keep Python's and NumPy's meaning on tensors:

* `a % b` and `a // b` call `_mod` / `_floordiv` (Python's sign convention, like
  `numpy.mod`; torch's forward mode has no rule for a tensor on the right of `%`), and
  `a ** b` calls `_pow` (torch's pow drops the exponent's second-order term at exponent 0);
* `t op= e` calls `_aug`: in place for a tensor of one or more dimensions (what `+=` does to a
  NumPy array, writing through views and aliases), a new value for a 0-d tensor (what it
  does to a Python float);
* assignments inside `with no_grad():` are detached (torch's forward mode ignores no_grad).

`import numpy as np`, `import math` and `from symgrad import ...` bind shims that map each
NumPy / math / symgrad name the generator uses onto torch (`np.maximum` -> torch.maximum,
`np.clip` -> minimum(maximum(x, lo), hi) as NumPy defines it, `stop_gradient` -> detach).
Nothing here imports symgrad. Gradients come from `torch.autograd.grad` (second order with
`create_graph=True`), tangents from forward-mode AD (`torch.autograd.forward_ad`), which
selects the taken branch of `where` without multiplying the other one's NaN by zero.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import math
import operator
import types
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.autograd.forward_ad as fwad

F64 = torch.float64


def T(x: Any) -> torch.Tensor:
    """A float64 tensor of a number, an array or a tensor (booleans stay boolean)."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (list, tuple)) and any(isinstance(v, (torch.Tensor, list, tuple)) for v in x):
        return torch.stack([T(v) for v in x])  # np.mean([a, b]) of tensors: gradients flow
    if isinstance(x, (bool, np.bool_)) or (isinstance(x, np.ndarray) and x.dtype == np.bool_):
        return torch.as_tensor(np.asarray(x))
    return torch.tensor(np.asarray(x, dtype=np.float64), dtype=F64)


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[Any], torch.Tensor]:
    return lambda a: fn(T(a))


def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[Any, Any], Any]:
    return lambda a, b: fn(T(a), T(b))


def _cbrt(a: Any) -> torch.Tensor:
    a = T(a)
    return torch.sign(a) * torch.abs(a) ** (1.0 / 3.0)


def _log(a: Any, base: Any = None) -> torch.Tensor:
    return torch.log(T(a)) if base is None else torch.log(T(a)) / math.log(float(base))


def _clip(x: Any, lo: Any, hi: Any) -> torch.Tensor:
    return torch.minimum(torch.maximum(T(x), T(lo)), T(hi))  # NumPy's definition


def _where(c: Any, a: Any, b: Any) -> torch.Tensor:
    return torch.where(T(c), T(a), T(b))


def _heaviside(x: Any, h0: Any) -> torch.Tensor:
    x = T(x).detach()
    return torch.where(x > 0, T(1.0), torch.where(x == 0, T(h0), T(0.0)))


def _mod(a: Any, b: Any) -> Any:
    if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
        return a % b
    a, b = T(a), T(b)
    return a - b * torch.floor(a / b).detach()


def _fmod(a: Any, b: Any) -> Any:
    """C's fmod, the sign of `a`: a - b * trunc(a / b), the quotient a constant."""
    if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
        return math.fmod(a, b)
    a, b = T(a), T(b)
    return a - b * torch.trunc(a / b).detach()


def _floordiv(a: Any, b: Any) -> Any:
    if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
        return a // b
    return torch.floor(T(a) / T(b)).detach()


def _pow(a: Any, b: Any) -> Any:
    """a ** b; with a tensor exponent and a positive base, exp(b * log(a)): torch's pow
    backward masks the exponent's term where the exponent is exactly 0 (wrong second order)."""
    if not isinstance(b, torch.Tensor):
        return a**b
    a = T(a)
    if bool(torch.all(a.detach() > 0)):
        return torch.exp(b * torch.log(a))
    return torch.pow(a, b)


def _stop(a: Any) -> Any:
    return a.detach() if isinstance(a, torch.Tensor) else a


_INPLACE = {"+": "add_", "-": "sub_", "*": "mul_", "/": "div_", "**": "pow_"}
_PLAIN = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": _pow,
    "%": _mod,
    "//": _floordiv,
}


def _aug(target: Any, op: str, value: Any) -> Any:
    """`target op= value` as Python does it on NumPy arrays (in place) and floats (rebinding)."""
    if isinstance(target, torch.Tensor) and target.ndim > 0:
        if op in _INPLACE and not _shares_memory(target, value):
            return getattr(target, _INPLACE[op])(T(value))
        # `a *= a`: torch's forward mode updates a's tangent in place before reading it as the
        # other operand's (x(1 + x) for 2x); NumPy's ufunc buffers overlapping operands, which
        # computing the result first and copying it in does too
        return target.copy_(_PLAIN[op](target, value))
    return _PLAIN[op](target, value)


def _shares_memory(target: Any, value: Any) -> bool:
    """Whether `value` is a tensor over the same memory as `target` (the array itself, a view)."""
    if not isinstance(value, torch.Tensor):
        return False
    return bool(value.untyped_storage().data_ptr() == target.untyped_storage().data_ptr())


NUMPY = {
    "sin": torch.sin,
    "cos": torch.cos,
    "tan": torch.tan,
    "arcsin": torch.asin,
    "arccos": torch.acos,
    "arctan": torch.atan,
    "arcsinh": torch.asinh,
    "arccosh": torch.acosh,
    "arctanh": torch.atanh,
    "sinh": torch.sinh,
    "cosh": torch.cosh,
    "tanh": torch.tanh,
    "exp": torch.exp,
    "exp2": torch.exp2,
    "expm1": torch.expm1,
    "log2": torch.log2,
    "log10": torch.log10,
    "log1p": torch.log1p,
    "sqrt": torch.sqrt,
    "square": torch.square,
    "reciprocal": torch.reciprocal,
    "negative": torch.negative,
    "positive": lambda a: +a,
    "abs": torch.abs,
    "absolute": torch.abs,
    # the parts of complex values (of a real tensor: itself, zeros, itself, 0 or pi)
    "real": lambda a: a.real if a.is_complex() else a,
    "imag": lambda a: a.imag if a.is_complex() else torch.zeros_like(a),
    "conj": lambda a: torch.conj(a) if a.is_complex() else a,
    "conjugate": lambda a: torch.conj(a) if a.is_complex() else a,
    "angle": torch.angle,
    "fabs": torch.abs,
    "sign": torch.sign,
    "floor": torch.floor,
    "ceil": torch.ceil,
    "round": torch.round,  # half to even, as NumPy and Python's round
    "rint": torch.round,
    "sum": torch.sum,
    "mean": torch.mean,
    "max": torch.max,
    "min": torch.min,
    "prod": torch.prod,
}
NUMPY = {k: _unary(v) for k, v in NUMPY.items()}


def _reduction(name: str) -> Callable[..., Any]:
    """np.sum / mean / max / min / prod with NumPy's `axis` and `keepdims`."""
    full = {"max": torch.max, "min": torch.min}.get(name, getattr(torch, name))
    along = {"max": torch.amax, "min": torch.amin}.get(name, getattr(torch, name))

    def reduce(a: Any, axis: Any = None, keepdims: bool = False) -> torch.Tensor:
        a = T(a)
        if axis is None:
            out = full(a)
            return out.reshape([1] * a.ndim) if keepdims else out
        return along(a, axis, keepdim=keepdims)

    return reduce


def _index_array(values: Any, dtype: Any = None) -> Any:
    """`np.array` of ints or booleans stays a NumPy array (an index torch accepts); of
    numbers or tensors, a float64 tensor."""
    if isinstance(values, (list, tuple)) and not _holds_tensors(values):
        found = np.asarray(values, dtype=dtype)
        if found.dtype.kind in "biu":
            return found
    return T(values)


def _holds_tensors(values: Any) -> bool:
    """Whether a (nested) list or tuple holds a tensor, read without making a NumPy array."""
    if isinstance(values, torch.Tensor):
        return True
    return isinstance(values, (list, tuple)) and any(_holds_tensors(v) for v in values)


def _arange(*args: Any) -> Any:
    if all(isinstance(a, int) for a in args):
        return np.arange(*args)  # an int array: an index
    return torch.arange(*args, dtype=F64)


def _squeeze(a: Any, axis: Any = None) -> torch.Tensor:
    return T(a).squeeze() if axis is None else T(a).squeeze(axis)


def _trace(a: Any, offset: int = 0) -> torch.Tensor:
    return torch.diagonal(T(a), offset).sum()


def _getitem(x: Any, index: Any) -> Any:
    """`x[index]`, with NumPy's negative-step slices (torch has none) as flipped index arrays."""
    if not isinstance(x, torch.Tensor):
        return x[index]
    items = index if isinstance(index, tuple) else (index,)
    if not any(isinstance(i, slice) and i.step is not None and i.step < 0 for i in items):
        return x[index]
    fixed, axis = [], 0
    for item in items:
        if isinstance(item, slice) and item.step is not None and item.step < 0:
            item = torch.tensor(list(range(x.shape[axis]))[item], dtype=torch.long)
        fixed.append(item)
        axis += item is not None
    return x[tuple(fixed)]


def _method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """`x.name(...)` with NumPy's meaning when `x` is a tensor (`x.max(axis=0)`, `x.copy()`)."""
    if not isinstance(obj, torch.Tensor):
        return getattr(obj, name)(*args, **kwargs)
    if name == "copy":
        return obj.clone()
    if name == "astype":
        return obj
    if name == "transpose":
        return obj.permute(*args) if args else obj.T
    if name in NUMPY:
        return NUMPY[name](obj, *args, **kwargs)
    return getattr(obj, name)(*args, **kwargs)


NUMPY.update(
    {
        "arctan2": _binary(torch.atan2),
        "hypot": _binary(torch.hypot),
        "logaddexp": _binary(torch.logaddexp),
        "power": _pow,
        "add": _binary(torch.add),
        "subtract": _binary(torch.sub),
        "multiply": _binary(torch.mul),
        "divide": _binary(torch.div),
        "true_divide": _binary(torch.div),
        "maximum": _binary(torch.maximum),
        "minimum": _binary(torch.minimum),
        "dot": _binary(torch.matmul),
        "cbrt": _cbrt,
        "log": _log,
        "clip": _clip,
        "where": _where,
        "heaviside": _heaviside,
        # issue 15
        "mod": _mod,
        "remainder": _mod,
        "fmod": _fmod,
        "sinc": _unary(torch.sinc),
        "logaddexp2": _binary(torch.logaddexp2),
        "fmax": _binary(torch.fmax),
        "fmin": _binary(torch.fmin),
        "deg2rad": _unary(torch.deg2rad),
        "radians": _unary(torch.deg2rad),
        "rad2deg": _unary(torch.rad2deg),
        "degrees": _unary(torch.rad2deg),
        "copysign": _binary(torch.copysign),
        "nan_to_num": _unary(torch.nan_to_num),
        **{name: _reduction(name) for name in ("sum", "mean", "max", "min", "prod")},
        "array": _index_array,
        "asarray": _index_array,
        "arange": _arange,
        "ones": lambda n: torch.ones(n, dtype=F64),
        "zeros": lambda n: torch.zeros(n, dtype=F64),
        "eye": lambda n: torch.eye(n, dtype=F64),
        "zeros_like": lambda a: torch.zeros_like(T(a)),
        "newaxis": None,
        "reshape": lambda a, shape: T(a).reshape(shape),
        "ravel": lambda a: T(a).reshape(-1),
        "squeeze": _squeeze,
        "expand_dims": lambda a, axis: T(a).unsqueeze(axis),
        "trace": _trace,
        "transpose": lambda a, axes=None: T(a).T if axes is None else T(a).permute(*axes),
        "stack": lambda parts, axis=0: torch.stack([T(p) for p in parts], axis),
        "concatenate": lambda parts, axis=0: torch.cat([T(p) for p in parts], axis),
    }
)
MATH = {
    "asin": NUMPY["arcsin"],
    "acos": NUMPY["arccos"],
    "atan": NUMPY["arctan"],
    "atan2": NUMPY["arctan2"],
    "asinh": NUMPY["arcsinh"],
    "acosh": NUMPY["arccosh"],
    "atanh": NUMPY["arctanh"],
    "pow": _pow,
    **{
        k: NUMPY[k]
        for k in [
            "sin",
            "cos",
            "tan",
            "sinh",
            "cosh",
            "tanh",
            "exp",
            "exp2",
            "expm1",
            "log",
            "log2",
            "log10",
            "log1p",
            "sqrt",
            "cbrt",
            "hypot",
            "fabs",
            "floor",
            "ceil",
            "fmod",
            "radians",
            "degrees",
            "copysign",
        ]
    },
    "fsum": lambda items: sum(items),
    "prod": math.prod,
    "pi": math.pi,
    "e": math.e,
}


@contextlib.contextmanager
def _no_grad() -> Any:
    yield  # the rewrite detaches what the block assigns


SYMGRAD = {"stop_gradient": _stop, "detach": _stop, "no_grad": _no_grad}
SHIMS = {
    "numpy": types.SimpleNamespace(**NUMPY),
    "math": types.SimpleNamespace(**MATH),
    "symgrad": types.SimpleNamespace(**SYMGRAD),
}


def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    if level == 0 and name in SHIMS:
        return SHIMS[name]
    return builtins.__import__(name, globals, locals, fromlist, level)


BUILTINS = {
    **vars(builtins),
    "__import__": _import,
    "float": lambda a=0.0: a if isinstance(a, torch.Tensor) else float(a),  # keeps the tangent
    "round": lambda a: torch.round(a) if isinstance(a, torch.Tensor) else round(a),
    "complex": lambda a=0.0, b=0.0: (
        torch.complex(*torch.broadcast_tensors(torch.as_tensor(a), torch.as_tensor(b)))
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor)
        else complex(a, b)
    ),
    # the builtin pow(a, b) as `a ** b` (torch's pow masks the exponent's term at exponent 0)
    "pow": lambda a, b, mod=None: _pow(a, b) if mod is None else builtins.pow(a, b, mod),
}


# --- the rewrite ---------------------------------------------------------------------------------

_OP_TEXT = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.Mod: "%",
    ast.FloorDiv: "//",
}


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


_METHODS = frozenset({"sum", "mean", "max", "min", "prod", "copy", "astype", "transpose", "squeeze"})


def _is_module(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("np", "numpy", "math")


def _index_expr(index: ast.expr) -> ast.expr:
    """The index of a subscript as a value: slices as `slice(a, b, c)` calls."""
    if isinstance(index, ast.Slice):
        none = ast.Constant(None)
        return _call("slice", index.lower or none, index.upper or none, index.step or none)
    if isinstance(index, ast.Tuple):
        return ast.Tuple(elts=[_index_expr(e) for e in index.elts], ctx=ast.Load())
    return index


class _Rewrite(ast.NodeTransformer):
    def __init__(self) -> None:
        self.in_no_grad = 0

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Mod):
            return _call("_mod", node.left, node.right)
        if isinstance(node.op, ast.FloorDiv):
            return _call("_floordiv", node.left, node.right)
        if isinstance(node.op, ast.Pow):
            return _call("_pow", node.left, node.right)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.ctx, ast.Load):
            return node
        return _call("_getitem", node.value, _index_expr(node.slice))

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _METHODS and not _is_module(func.value):
            call = _call("_method", func.value, ast.Constant(func.attr), *node.args)
            call.keywords = node.keywords
            return call
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        if isinstance(node.target, ast.Subscript):  # `x[i] += v`: torch updates the item in place
            node.value = self.visit(node.value)
            return node
        self.generic_visit(node)
        target = node.target
        assert isinstance(target, ast.Name), "the generator augments names only"
        value: ast.expr = _call(
            "_aug", ast.Name(id=target.id, ctx=ast.Load()), ast.Constant(_OP_TEXT[type(node.op)]), node.value
        )
        if self.in_no_grad:
            value = _call("_stop", value)
        return ast.Assign(targets=[ast.Name(id=target.id, ctx=ast.Store())], value=value)

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        self.generic_visit(node)
        if self.in_no_grad:
            if isinstance(node.value, ast.Tuple):
                node.value.elts = [_call("_stop", e) for e in node.value.elts]
            else:
                node.value = _call("_stop", node.value)
        return node

    def visit_With(self, node: ast.With) -> ast.AST:
        self.in_no_grad += 1
        self.generic_visit(node)
        self.in_no_grad -= 1
        return node


def load(source: str, name: str = "torch_program") -> dict[str, Any]:
    """The namespace of `source` executed under the torch shims (its `f` is the function)."""
    tree = ast.fix_missing_locations(_Rewrite().visit(ast.parse(source)))
    namespace: dict[str, Any] = {
        "__name__": name,
        "__builtins__": BUILTINS,
        "_mod": _mod,
        "_floordiv": _floordiv,
        "_aug": _aug,
        "_getitem": _getitem,
        "_method": _method,
        "_pow": _pow,
        "_stop": _stop,
    }
    exec(compile(tree, f"<{name}>", "exec"), namespace)
    return namespace


# --- derivatives ---------------------------------------------------------------------------------


def _outputs(out: Any) -> tuple[torch.Tensor, ...]:
    return tuple(T(o) for o in out) if isinstance(out, tuple) else (T(out),)


def _inputs(leaves: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    # arrays are copies (non-leaves) so that `+=` on them or their views runs in place
    return [leaf.clone() if leaf.ndim > 0 else leaf for leaf in leaves]


def _leaves(args: Sequence[Any]) -> list[torch.Tensor]:
    return [T(a).clone().requires_grad_(True) for a in args]


def _grads(
    outs: Sequence[torch.Tensor], leaves: Sequence[torch.Tensor], create: bool = False, cot: Any = None
) -> list[torch.Tensor]:
    live = [(o, c) for o, c in zip(outs, cot or [None] * len(outs)) if o.requires_grad]
    if not live:
        return [torch.zeros_like(leaf) for leaf in leaves]
    total = sum((o * T(c)).sum() if c is not None else o.sum() for o, c in live)
    got = torch.autograd.grad(total, list(leaves), allow_unused=True, create_graph=create)
    return [torch.zeros_like(leaf) if g is None else g for leaf, g in zip(leaves, got)]


def value(f: Callable[..., Any], args: Sequence[Any]) -> Any:
    """The program's outputs on float64 tensors, as NumPy (a tuple for several outputs)."""
    with torch.no_grad():
        outs = _outputs(f(*_inputs([T(a).clone() for a in args])))
    values = tuple(o.numpy() for o in outs)
    return values if len(values) > 1 else values[0]


def _is_inplace_error(e: RuntimeError) -> bool:
    text = str(e)
    return "inplace" in text or "in-place" in text or "single memory location" in text


def value_and_grad(
    f: Callable[..., Any], args: Sequence[Any], cot: Any = None
) -> tuple[Any, list[np.ndarray]]:
    """Outputs and the gradient of sum(cot * outputs) (cot None: of sum(outputs)) for every
    argument, by reverse mode; by forward mode (one tangent per element) where torch's reverse
    mode refuses an in-place update it needed the old value of, or gives NaN for finite values."""
    leaves = _leaves(args)
    outs = _outputs(f(*_inputs(leaves)))
    values = tuple(o.detach().numpy(force=True) for o in outs)
    try:
        grads = [g.detach().numpy(force=True) for g in _grads(outs, leaves, cot=cot)]
    except RuntimeError as e:
        if not _is_inplace_error(e):
            raise
        grads = grad_forward(f, args, cot)
    if all(np.all(np.isfinite(v)) for v in values) and not all(np.all(np.isfinite(g)) for g in grads):
        grads = grad_forward(f, args, cot)  # an untaken `where` branch's NaN times zero
    return (values if len(values) > 1 else values[0]), grads


def _basis(args: Sequence[Any], i: int, index: Any) -> list[Any]:
    tangents = [np.zeros(np.shape(a)) for a in args]
    tangents[i][index] = 1.0
    return tangents


def grad_forward(f: Callable[..., Any], args: Sequence[Any], cot: Any = None) -> list[np.ndarray]:
    """The gradient of sum(cot * outputs) by forward mode, one basis tangent per element: no
    NaN of an untaken `where` branch times zero, and in-place updates need no saved values."""
    grads = []
    for i, a in enumerate(args):
        g = np.zeros(np.shape(a))
        for index in np.ndindex(np.shape(a)):
            _, tangents = jvp(f, args, _basis(args, i, index))
            tangents = tangents if isinstance(tangents, tuple) else (tangents,)
            cots = cot or [1.0] * len(tangents)
            g[index] = sum(float(np.sum(np.asarray(c) * t)) for c, t in zip(cots, tangents))
        grads.append(g)
    return grads


def jvp(f: Callable[..., Any], args: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """Outputs and tangent outputs by forward-mode AD (dual numbers)."""
    with warnings.catch_warnings(), fwad.dual_level():
        # torch's forward mode scripts its decompositions on first use (deprecated API)
        warnings.filterwarnings("ignore", message=".*torch.jit.script", category=DeprecationWarning)
        duals = [
            fwad.make_dual(T(a).clone(), T(t).expand(np.shape(a)).clone()) for a, t in zip(args, tangents)
        ]
        outs = _outputs(f(*_inputs(duals)))
        values, tans = [], []
        for o in outs:
            primal, tangent = fwad.unpack_dual(o)
            values.append(primal.detach().numpy(force=True).copy())
            tans.append(
                np.zeros(primal.shape) if tangent is None else tangent.detach().numpy(force=True).copy()
            )
    if len(values) > 1:
        return tuple(values), tuple(tans)
    return values[0], tans[0]


def second(f: Callable[..., Any], args: Sequence[Any], i: int, j: int) -> np.ndarray | None:
    """d/d args[j] of sum(d sum(f) / d args[i]): symgrad's grad(grad(f, wrt=i), wrt=j); None
    where torch's double backward gives NaN (an untaken `where` branch's NaN times zero)."""
    leaves = _leaves(args)
    outs = _outputs(f(*_inputs(leaves)))
    first = _grads(outs, [leaves[i]], create=True)[0]
    result = _grads([first], [leaves[j]])[0].detach().numpy(force=True)
    return result if np.all(np.isfinite(result)) else None
