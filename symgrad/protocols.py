"""The types of what the transforms return, for type checkers (mypy --strict, pyright).

`grad(f)` is a `Transformed[P, R]`: callable with `f`'s own parameters `P` (a ParamSpec, so
`grad(f)(1.0, "a")` is checked against `f`'s signature), returning `R`, and exposing the
generated program (`.source`, `.graph`, `.variant(...)`); a misspelt attribute
(`grad(f).sourse`) is a type error. What the transforms return at run time are `Compiled`
objects (or a wrapper for `has_aux=True`), which these protocols describe structurally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from .compiled import Variant
    from .graph import Graph

if TYPE_CHECKING:  # with defaults (PEP 696): a bare `Compiled` is `Compiled[..., Any]`
    from typing_extensions import ParamSpec as _ParamSpec
    from typing_extensions import TypeVar as _TypeVar

    P = _ParamSpec("P", default=...)
    R_co = _TypeVar("R_co", covariant=True, default=Any)
    R = _TypeVar("R", default=Any)
else:  # at run time no default is needed, nor typing_extensions (Python 3.10 to 3.12)
    P = ParamSpec("P")
    R_co = TypeVar("R_co", covariant=True)
    R = TypeVar("R")

Pullback = Callable[[Any], Any]
"""`vjp(f)(x)`'s pullback: a cotangent of the output in, the gradient(s) `grad` would give out."""

TuplePullback = Callable[[Any], tuple[Any, ...]]
"""`vjp(f, *primals)`'s pullback (JAX's form): a tuple with one gradient per primal."""


class Program(Protocol):
    """What every transform exposes besides being called: the generated program."""

    @property
    def fn(self) -> Callable[..., Any]:
        """The function that was differentiated."""

    @property
    def kind(self) -> str:
        """`"grad"`, `"value_and_grad"`, `"vjp"`, `"jvp"`, `"jacobian"` or `"hessian"`."""

    @property
    def wrt(self) -> tuple[str, ...]:
        """The names of the parameters differentiated."""

    @property
    def static(self) -> tuple[str, ...]:
        """The names of the parameters specialised on."""

    @property
    def backend(self) -> str:
        """Where the generated program runs (`"numpy"`, `"numba"`, `"jax"`, `"cupy"`)."""

    @property
    def source(self) -> str:
        """The generated source of the derivative (NumPy code, or the backend's kernel)."""

    @property
    def scalar_source(self) -> str | None:
        """The plain-Python flavour run on Python floats (None for array programs)."""

    @property
    def graph(self) -> Graph:
        """The SSA program of the derivative (`print(g.graph)` lists it)."""

    @property
    def exprs(self) -> tuple[Any, ...]:
        """The results as SymPy expressions of the inputs."""

    def variant(
        self,
        static_values: dict[str, Any] | None = None,
        shapes: dict[str, tuple[int, ...]] | None = None,
        complex_params: frozenset[str] = frozenset(),
    ) -> Variant:
        """The compiled program for these static values (and, for array programs, shapes)."""


class Transformed(Program, Protocol[P, R_co]):
    """A transform of a function with parameters `P`, called like it, returning `R_co`.

    Every transform is one: `grad(f)` and `jacobian(f)` give `Any` (a float, an array, a
    tuple or a tree of them), `value_and_grad(f)` gives `tuple[Any, Any]`, `vjp(f)`
    `tuple[Any, Pullback]`, and the curried `jvp(f)` is a
    `Transformed[[Sequence[Any], Any], tuple[Any, Any]]` (called with primals and tangents).
    Without `has_aux` they are `symgrad.Compiled[P, R]` objects, which this protocol describes.

    >>> from symgrad import grad
    >>> from symgrad.protocols import Transformed
    >>> def f(x: float) -> float:
    ...     return x * x
    >>> g: Transformed[[float], object] = grad(f)
    >>> g(3.0), g.wrt
    (6.0, ('x',))
    """

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


class Decorator(Protocol[R]):
    """`grad(wrt=...)` without a function: a decorator giving a `Transformed` of what it
    decorates."""

    def __call__(self, fn: Callable[P, Any], /) -> Transformed[P, R]: ...
