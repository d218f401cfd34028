"""symgrad: differentiate Python functions by transforming their source into NumPy code."""

from .api import derivative, grad, hessian, jacobian, jvp, value_and_grad, vjp
from .backends import BackendError
from .compiled import Compiled
from .display import show
from .errors import (
    ArgumentError,
    DataDependentLoopError,
    NonScalarOutputError,
    ShapeError,
    SourceChangedError,
    SourceUnavailableError,
    SymgradError,
    TracingError,
    UnknownCalleeError,
    UnsupportedSyntaxError,
    WrtError,
)
from .export import export
from .registry import supported
from .rules import RULES, custom_derivative, detach, no_grad, register, stop_gradient
from .runtime import logsumexp

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "BackendError",
    "RULES",
    "Compiled",
    "DataDependentLoopError",
    "NonScalarOutputError",
    "ShapeError",
    "SourceChangedError",
    "SourceUnavailableError",
    "SymgradError",
    "TracingError",
    "UnknownCalleeError",
    "UnsupportedSyntaxError",
    "WrtError",
    "__version__",
    "custom_derivative",
    "derivative",
    "detach",
    "export",
    "grad",
    "hessian",
    "jacobian",
    "jvp",
    "logsumexp",
    "no_grad",
    "register",
    "show",
    "stop_gradient",
    "supported",
    "value_and_grad",
    "vjp",
]
