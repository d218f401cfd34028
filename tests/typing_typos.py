"""Mistakes that mypy --strict reports (tests/test_typing.py checks each line's error)."""

from typing import Any

from symgrad import grad, value_and_grad, vjp


def f(x: float, y: float) -> Any:
    return x * y


g = grad(f)
print(g.sourse)  # error: has no attribute "sourse"; maybe "source"?
g(1.0)  # error: Missing positional argument "y"
g(1.0, "two")  # error: has incompatible type "str"; expected "float"
value, gradient, extra = value_and_grad(f)(1.0, 2.0)  # error: Need more than 2 values to unpack
print(grad(f, has_aux=True).sorce)  # error: has no attribute "sorce"
out, pullback = vjp(f)(1.0, 2.0)
pullback(1.0, 2.0)  # error: Too many arguments
grad(f, wrt="x", argnum=0)  # error: No overload variant of "grad" matches argument types
