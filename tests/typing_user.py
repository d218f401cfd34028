"""A user's code, as a type checker sees it: tests/test_typing.py runs mypy --strict on it
(with no error expected) and on `typing_typos.py` beside it (with the errors listed there)."""

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

import symgrad
from symgrad import grad, hessian, jacobian, jvp, value_and_grad, vjp
from symgrad.protocols import Pullback, Transformed

Array = NDArray[np.float64]


def loss(w: Array, x: Array, y: float) -> Any:
    return np.sum((np.tanh(w * x) - y) ** 2)


def f(x: float, y: float) -> Any:
    return np.sin(x) * y


def with_aux(x: float) -> tuple[float, dict[str, float]]:
    return x * x, {"x": x}


# grad and value_and_grad: called like the function, with the program's attributes
g = grad(f)
dfdx = g(1.0, 2.0)
source: str = g.source
scalar: str | None = g.scalar_source
names: tuple[str, ...] = g.wrt
print(g.graph, g.variant(), g.static, g.backend, g.fn, g.kind)
dfdx, dfdy = grad(f, argnums=(0, 1))(1.0, 2.0)
value, dw = value_and_grad(loss)(np.ones(3), np.ones(3), 0.5)
(value, aux), gradient = value_and_grad(with_aux, has_aux=True)(3.0)
gradient, aux = grad(with_aux, has_aux=True)(3.0)
print(grad(with_aux, has_aux=True).source)

# the other transforms
H = hessian(f, wrt=("x", "y"))(1.0, 2.0)
J = jacobian(f, argnums=1)(1.0, 2.0)
third = symgrad.derivative(f, wrt="x", order=3)(1.0, 2.0)
second = grad(grad(f))(1.0, 2.0)
of_numpy = grad(np.sin)(0.5)
of_partial = grad(functools.partial(f, y=2.0))(1.0)

# vjp and jvp, curried (symgrad's) and JAX's forms
out, pullback = vjp(f)(1.0, 2.0)
cotangent_in: Pullback = pullback
out, tuple_pullback = vjp(f, 1.0, 2.0)
gradients: tuple[Any, ...] = tuple_pullback(1.0)
out, pullback, aux = vjp(with_aux, 1.0, has_aux=True)
out, pullback, aux = vjp(with_aux, has_aux=True)(1.0)
primals: Sequence[float] = (1.0, 2.0)
value, tangent = jvp(f, primals, (1.0, 0.0))
value, tangent = jvp(f)(primals, (1.0,))
value, tangent, aux = jvp(with_aux, (1.0,), (1.0,), has_aux=True)


@grad(wrt="x")
def decorated(x: float, y: float) -> Any:
    return x * y


decorated(1.0, 2.0)
print(decorated.source)

# the types to annotate with
compiled: symgrad.Compiled = grad(f)
typed: symgrad.Compiled[[float, float], Any] = grad(f)
described: Transformed[[float, float], tuple[Any, Any]] = value_and_grad(f)
flag = bool(int("1"))  # a has_aux that is not a literal: still a transform
maybe: Transformed[[float, float], Any] = grad(f, has_aux=flag)
