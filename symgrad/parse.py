"""Parse stage: read a function's source into an `ast.FunctionDef` and fence off what cannot be traced."""

from __future__ import annotations

import ast
import inspect
import linecache
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import SourceUnavailableError, SymgradError, UnsupportedSyntaxError


@dataclass(frozen=True)
class Source:
    """A parsed function: its AST with file line numbers, and where it came from."""

    fn: Callable[..., Any]
    tree: ast.FunctionDef
    filename: str
    indent: int  # columns that dedenting removed; added back when reporting a column

    def error(
        self, cls: type[SymgradError], node: ast.AST | None, message: str, hint: str = ""
    ) -> SymgradError:
        """Build an error of class `cls` located at `node` in this source."""
        lineno = getattr(node, "lineno", self.tree.lineno)
        col = getattr(node, "col_offset", 0) + self.indent + 1
        line = linecache.getline(self.filename, lineno) or None
        return cls(message, filename=self.filename, lineno=lineno, col=col, hint=hint, source_line=line)


def load(fn: Callable[..., Any]) -> Source:
    """Read and parse the source of `fn`, with line numbers as in its file, then fence it."""
    name = getattr(fn, "__qualname__", repr(fn))
    code = getattr(fn, "__code__", None)
    if not isinstance(fn, types.FunctionType) or code is None:
        raise SourceUnavailableError(
            f"{name!r} is not a Python function, so symgrad has no source to read",
            hint="differentiate a function defined with `def`; wrap other callables in one",
        )
    filename, first_line = code.co_filename, code.co_firstlineno
    if fn.__name__ == "<lambda>":
        line = linecache.getline(filename, first_line)
        raise SourceUnavailableError(
            "a lambda has no source of its own that symgrad can read",
            filename=filename,
            lineno=first_line,
            col=_column_of(line, "lambda"),
            source_line=line or None,
            hint="define the function with `def name(args): return ...`",
        )
    try:
        lines, first = inspect.getsourcelines(fn)
        tree = _parse(lines, first)
    except (OSError, TypeError, SyntaxError) as exc:
        raise SourceUnavailableError(
            f"cannot read the source of {name!r} ({exc})",
            filename=filename,
            lineno=first_line,
            col=_column_of(linecache.getline(filename, first_line), "def"),
            hint="define the function with `def` in a .py file (not in a REPL or exec)",
        ) from None
    if isinstance(tree, ast.AsyncFunctionDef):
        source = Source(fn=fn, tree=tree, filename=filename, indent=0)  # type: ignore[arg-type]
        raise source.error(
            UnsupportedSyntaxError, tree, "async functions are not supported", "write a plain `def` function"
        )
    if not isinstance(tree, ast.FunctionDef):
        raise SourceUnavailableError(
            f"{name!r} is not defined by a `def` statement",
            filename=filename,
            lineno=first,
            col=_column_of(linecache.getline(filename, first), ""),
            hint="write the function with `def name(args): ... return value`",
        )
    source = Source(fn=fn, tree=tree, filename=filename, indent=0)
    fence(source)
    return source


def _column_of(line: str, word: str) -> int:
    """1-based column of `word` in `line`, else of its first non-blank character."""
    found = line.find(word)
    return found + 1 if found >= 0 else len(line) - len(line.lstrip()) + 1


def _parse(lines: list[str], first: int) -> ast.stmt:
    """Parse a function's source lines with line and column numbers as in its file.

    An indented definition (a method, a closure) is parsed inside `if 1:` rather than
    dedented: dedenting breaks on multi-line strings that start at column 0."""
    text = "".join(lines)
    if lines and lines[0][:1] in (" ", "\t"):
        module = ast.parse("if 1:\n" + text)
        ast.increment_lineno(module, max(first, 1) - 2)
        return module.body[0].body[0]  # type: ignore[attr-defined,no-any-return]
    module = ast.parse(text)
    ast.increment_lineno(module, max(first, 1) - 1)
    return module.body[0]


# What the fence refuses, and what to write instead. The tracer handles every node type not
# listed here; attribute calls, unknown callees and data-dependent loops are caught while tracing.
_REFUSED: dict[type[ast.AST], tuple[str, str]] = {
    ast.While: ("`while` loops cannot be unrolled", "use `for i in range(N)` with a constant or static N"),
    ast.Lambda: ("lambdas are not supported", "define a named function with `def` and call it"),
    ast.ListComp: ("list comprehensions are not supported", "write a `for i in range(N)` loop"),
    ast.SetComp: ("set comprehensions are not supported", "write a `for i in range(N)` loop"),
    ast.DictComp: ("dict comprehensions are not supported", "write a `for i in range(N)` loop"),
    ast.GeneratorExp: ("generator expressions are not supported", "write a `for i in range(N)` loop"),
    ast.Try: ("`try` blocks are not supported", "remove the try/except; check inputs outside the function"),
    ast.ClassDef: ("class definitions are not supported here", "define the class outside the function"),
    ast.FunctionDef: (
        "nested function definitions are not supported",
        "define the helper at module level and call it",
    ),
    ast.AsyncFunctionDef: ("async functions are not supported", "write a plain `def` function"),
    ast.Await: ("`await` is not supported", "write a plain `def` function"),
    ast.Yield: ("generators are not supported", "return a value instead of yielding it"),
    ast.YieldFrom: ("generators are not supported", "return a value instead of yielding it"),
    ast.Global: ("`global` is not supported", "pass the value as an argument"),
    ast.Nonlocal: ("`nonlocal` is not supported", "pass the value as an argument and return the new one"),
    ast.NamedExpr: ("the walrus operator `:=` is not supported", "assign in a separate statement"),
    ast.JoinedStr: ("f-strings have no derivative", "remove the string from the computation"),
    ast.Starred: ("star-unpacking is not supported", "list the values explicitly"),
    ast.Break: ("`break` cannot be traced in an unrolled loop", "put the rest of the body under an `if`"),
    ast.Continue: (
        "`continue` cannot be traced in an unrolled loop",
        "put the rest of the body under an `if`",
    ),
    ast.Delete: ("`del` is not supported", "remove the `del` statement"),
    ast.Import: ("imports inside the function are not supported", "import at module level"),
    ast.ImportFrom: ("imports inside the function are not supported", "import at module level"),
    ast.Raise: ("`raise` is not supported", "check inputs before calling the function"),
    ast.Assert: ("`assert` is not supported", "check inputs before calling the function"),
    ast.Dict: ("dicts are not supported", "use separate variables"),
    ast.Set: ("sets are not supported", "use separate variables"),
    ast.List: ("lists are not supported", "use a tuple `(a, b)` or separate variables"),
    ast.AsyncFor: ("async loops are not supported", "use `for i in range(N)`"),
    ast.AsyncWith: ("async `with` is not supported", "remove it"),
}
if hasattr(ast, "Match"):
    _REFUSED[ast.Match] = ("`match` statements are not supported", "use `if`/`elif`/`else`")


def fence(source: Source) -> None:
    """Refuse, with location and hint, every construct the tracer does not support."""
    tree = source.tree
    args = tree.args
    if args.vararg or args.kwarg:
        star = args.vararg or args.kwarg
        raise source.error(
            UnsupportedSyntaxError,
            star,
            "`*args`/`**kwargs` parameters are not supported",
            "list every parameter by name",
        )
    call_lists = {
        id(arg)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for arg in node.args
        if isinstance(arg, ast.List)
    }  # np.stack([a, b]): a list literal as a call argument is a tuple of parts
    for stmt in tree.body:
        for node in ast.walk(stmt):
            if id(node) in call_lists:
                continue
            refused = _REFUSED.get(type(node))
            if refused is not None:
                raise source.error(UnsupportedSyntaxError, node, *refused)
            if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
                _check_string(source, stmt, node)


def _check_string(source: Source, stmt: ast.stmt, node: ast.Constant) -> None:
    # A docstring is fine; strings elsewhere may only be keyword values like axis names.
    if isinstance(stmt, ast.Expr) and stmt.value is node:
        return
    if isinstance(stmt, ast.Expr):
        raise source.error(UnsupportedSyntaxError, node, "a string has no derivative", "remove the string")
