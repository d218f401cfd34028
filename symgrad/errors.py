"""Errors raised by symgrad: every refusal names the source location and what to write instead."""

from __future__ import annotations

import linecache
import os
import sys
from typing import Any


class SymgradError(Exception):
    """Base class of every error symgrad raises on purpose.

    Attributes:
        filename: file of the offending source, or None when there is no source location.
        lineno: 1-based line number, or None.
        col: 1-based column, or None.
        hint: what to write instead.
    """

    def __init__(
        self,
        message: str,
        *,
        filename: str | None = None,
        lineno: int | None = None,
        col: int | None = None,
        hint: str = "",
        source_line: str | None = None,
    ) -> None:
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.col = col
        self.hint = hint
        self.source_line = source_line
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.filename is not None and self.lineno is not None:
            where = f"{self.filename}:{self.lineno}:{self.col}: "
        text = where + self.message
        if self.source_line is not None and self.col is not None:
            line = self.source_line.rstrip()
            stripped = line.lstrip()
            caret = " " * max(self.col - 1 - (len(line) - len(stripped)), 0) + "^"
            text += f"\n    {stripped}\n    {caret}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UnsupportedSyntaxError(SymgradError):
    """A construct symgrad cannot trace (while, lambda, try, set comprehensions, ...)."""


class UnknownCalleeError(SymgradError):
    """A call to a function that has no rule and whose source cannot be inlined."""


class DataDependentLoopError(SymgradError):
    """A loop whose trip count depends on a traced (non-static) value."""


class SourceUnavailableError(SymgradError):
    """The function's source cannot be read (defined in a REPL, exec, or a C extension)."""


class SourceChangedError(SourceUnavailableError):
    """The function's file was edited after the function was defined: its text is not what runs."""


class TracingError(SymgradError):
    """A construct that parses but has no meaning for differentiation (e.g. a missing return)."""


class WrtError(SymgradError, ValueError):
    """A bad `wrt` or `static` argument, or a non-float value passed for a `wrt` parameter."""


class NonScalarOutputError(SymgradError):
    """`grad` of a function with a tuple output: use `jacobian` or `vjp` instead."""


class ShapeError(SymgradError, ValueError):
    """Arguments whose shapes do not broadcast together."""


class ArgumentError(SymgradError, TypeError):
    """A compiled derivative called with arguments its function does not accept."""


def at_caller() -> dict[str, Any]:
    """Where the user's code called into symgrad (the first frame outside this package), as
    the location arguments of a `SymgradError`: `WrtError(message, **at_caller(), hint=...)`."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == package:
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return {}
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    col = len(line) - len(line.lstrip()) + 1 if line else 1
    return {
        "filename": frame.f_code.co_filename,
        "lineno": frame.f_lineno,
        "col": col,
        "source_line": line or None,
    }
