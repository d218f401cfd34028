"""Parse stage: read a function's source into an `ast.FunctionDef` and fence off what cannot be traced."""

from __future__ import annotations
import __future__

import ast
import contextlib
import copy
import dis
import inspect
import linecache
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import SourceChangedError, SourceUnavailableError, SymgradError, UnsupportedSyntaxError


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


def load(fn: Callable[..., Any], bound: bool = False) -> Source:
    """Read and parse the source of `fn`, with line numbers as in its file, then fence it
    (`bound`: a method whose `self` is an object, called as `obj.method(...)`)."""
    name = getattr(fn, "__qualname__", repr(fn))
    if inspect.ismethod(fn) and isinstance(fn.__func__, types.FunctionType):
        raise _method_error(fn.__func__, f"bound to a `{type(fn.__self__).__name__}` object")
    code = getattr(fn, "__code__", None)
    if not isinstance(fn, types.FunctionType) or code is None:
        raise SourceUnavailableError(
            f"{name!r} is not a Python function, so symgrad has no source to read",
            hint="differentiate a function defined with `def`; wrap other callables in one",
        )
    filename = code.co_filename
    if fn.__name__ == "<lambda>":
        source = Source(fn=fn, tree=_read_lambda(fn), filename=filename, indent=0)
        fence(source)
        return source  # _read_lambda picked the lambda whose code is the one that runs
    _check_not_wrapped(fn)
    tree, first = _read(fn)
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
    if not bound and _takes_self(fn, tree):
        raise _method_error(fn, "read from its class, so its `self` would be differentiated like a number")
    fence(source)
    _check_unchanged(source)
    return source


def _read(fn: types.FunctionType) -> tuple[ast.stmt, int]:
    """The parsed definition of `fn` and its first line, or a SourceUnavailableError."""
    code = fn.__code__
    try:
        lines, first = inspect.getsourcelines(fn)
        return _parse(lines, first), first
    except (OSError, TypeError, SyntaxError) as exc:
        line = linecache.getline(code.co_filename, code.co_firstlineno)
        if line and not _starts_definition(line, code.co_name):  # lines added or removed above it
            raise _changed_error(fn, code.co_filename, _def_line(code)) from None
        raise SourceUnavailableError(
            f"cannot read the source of {fn.__qualname__!r} ({exc})",
            filename=code.co_filename,
            lineno=code.co_firstlineno,
            col=_column_of(line, "def"),
            hint="define the function with `def` in a .py file (not in a REPL or exec)",
        ) from None


def _read_lambda(fn: types.FunctionType) -> ast.FunctionDef:
    """A lambda as the `def` it stands for (`f = lambda x: x * x` as `def f(x): return x * x`),
    found in its file (or notebook cell, which IPython keeps in linecache) by its line, and
    among the lambdas there by compiling each: the one whose code is `fn`'s."""
    code = fn.__code__
    filename, lineno = code.co_filename, code.co_firstlineno
    line = linecache.getline(filename, lineno)
    candidates = _lambdas_at(filename, lineno)
    for node, name in candidates:
        compiled = _compile_like(fn, ast.Expr(value=node), "<lambda>")
        if compiled is not None and _same_code(compiled, code):
            return _as_def(node, name)
    if candidates:  # lambdas on that line, but none compiles to the code that runs
        raise _changed_error(fn, filename, lineno)
    raise SourceUnavailableError(
        "cannot read the source of this lambda: it was not defined in a file or notebook cell "
        "(`python -c`, `exec` or `eval` keep no source)",
        filename=filename,
        lineno=lineno,
        col=_column_of(line, "lambda"),
        source_line=line or None,
        hint="define the function in a .py file or a notebook cell, as a `def` or a lambda",
    )


def _lambdas_at(filename: str, lineno: int) -> list[tuple[ast.Lambda, str]]:
    """The lambdas starting on line `lineno` of the file, each with the name it is assigned
    to (`f = lambda ...`), else `lambda_`."""
    linecache.checkcache(filename)
    try:
        module = ast.parse("".join(linecache.getlines(filename)))
    except (SyntaxError, ValueError):
        return []
    named = {
        id(node.value): node.targets[0].id
        for node in ast.walk(module)
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
    }
    return [
        (node, named.get(id(node), "lambda_"))
        for node in ast.walk(module)
        if isinstance(node, ast.Lambda) and node.lineno == lineno
    ]


def _as_def(node: ast.Lambda, name: str) -> ast.FunctionDef:
    body = ast.copy_location(ast.Return(value=node.body), node.body)
    tree = ast.FunctionDef(name=name, args=node.args, body=[body], decorator_list=[], returns=None)
    if sys.version_info >= (3, 12):
        tree.type_params = []
    return ast.copy_location(tree, node)


# --- what runs must be what the source says --------------------------------------------------


def _check_not_wrapped(fn: types.FunctionType) -> None:
    """A `functools.wraps` wrapper shows the source of the function it wraps, not its own
    code: tracing that source would differentiate the undecorated function."""
    try:
        inner = inspect.unwrap(fn)
    except ValueError:  # a cycle of __wrapped__
        inner = fn.__wrapped__  # type: ignore[attr-defined]
    if inner is fn or getattr(inner, "__code__", None) is fn.__code__:
        return
    depth, link = 0, fn
    while link is not inner:
        depth, link = depth + 1, link.__wrapped__  # type: ignore[attr-defined]
    raise _wrapped_error(fn, inner, depth)


def _wrapped_error(fn: types.FunctionType, inner: Any, depth: int) -> SymgradError:
    """Located at the decorator that made the wrapper, else at the wrapper's own `def`."""
    name = fn.__name__
    undecorated = f"{name}.__wrapped__" if depth == 1 else f"inspect.unwrap({name})"
    hint = (
        f"differentiate the undecorated function, `grad({undecorated})`, "
        f"or write what the decorator does into `{name}` itself"
    )
    decorator = _decorator_of(fn, inner)
    if decorator is None:
        code = fn.__code__
        line = linecache.getline(code.co_filename, code.co_firstlineno)
        return SourceUnavailableError(
            f"`{name}` is a wrapper (functools.wraps) around another function; symgrad reads the "
            "source of the wrapped function and cannot see what the wrapper does",
            filename=code.co_filename,
            lineno=code.co_firstlineno,
            col=_column_of(line, "def"),
            source_line=line or None,
            hint=hint,
        )
    filename, node = decorator
    line = linecache.getline(filename, node.lineno)
    return SourceUnavailableError(
        f"`{name}` is wrapped by the decorator `@{ast.unparse(node)}`; symgrad reads the source "
        "of the undecorated `def` and cannot see what the wrapper does",
        filename=filename,
        lineno=node.lineno,
        col=max(node.col_offset, 1),  # the `@` before the expression
        source_line=line or None,
        hint=hint,
    )


def _decorator_of(fn: types.FunctionType, inner: Any) -> tuple[str, ast.expr] | None:
    """The decorator of `inner`'s `def` that made the wrapper `fn`, with its file: the one
    named like the wrapper's own definition (`double.<locals>.wrapper`), else the outermost."""
    code = getattr(inner, "__code__", None)
    if code is None:
        return None
    try:
        tree = _parse(*inspect.getsourcelines(inner))
    except (OSError, TypeError, SyntaxError):
        return None
    decorators = getattr(tree, "decorator_list", [])
    if not decorators:
        return None
    maker = getattr(fn.__code__, "co_qualname", "").split(".")[0]  # Python 3.11+
    for node in decorators:
        called = node.func if isinstance(node, ast.Call) else node
        if ast.unparse(called).rpartition(".")[2] == maker:
            return code.co_filename, node
    return code.co_filename, decorators[0]


def _takes_self(fn: types.FunctionType, tree: ast.FunctionDef) -> bool:
    """A function defined in a class body whose first parameter is `self` (`Model.loss`)."""
    parts = fn.__qualname__.split(".")
    params = [*tree.args.posonlyargs, *tree.args.args]
    return len(parts) >= 2 and parts[-2] != "<locals>" and bool(params) and params[0].arg == "self"


def _method_error(func: types.FunctionType, how: str) -> SymgradError:
    """A method is refused at its `def`, with the module-level function to write instead."""
    tree: ast.stmt | None = None
    with contextlib.suppress(SymgradError):
        tree = _read(func)[0]
    code = func.__code__
    filename = code.co_filename
    lineno = getattr(tree, "lineno", code.co_firstlineno)
    line = linecache.getline(filename, lineno)
    return UnsupportedSyntaxError(
        f"`{func.__qualname__}` is a method {how}; symgrad differentiates plain functions, not methods",
        filename=filename,
        lineno=lineno,
        col=_column_of(line, "def"),
        source_line=line or None,
        hint=_method_hint(func, tree),
    )


def _method_hint(func: types.FunctionType, tree: ast.stmt | None) -> str:
    parts = func.__qualname__.split(".")
    instance = parts[-2].lower() if len(parts) >= 2 and parts[-2] != "<locals>" else "obj"
    params = list(inspect.signature(func).parameters)[1:]
    read, called = _self_attributes(tree)
    name = func.__name__
    text = "write a module-level function that takes what it reads from `self` as parameters: "
    text += f"`def {name}({', '.join([*read, *params])}):`"
    if read:
        text += " with " + ", ".join(f"`self.{a}` replaced by `{a}`" for a in read)
    quoted = [f'"{p}"' for p in params]
    wrt = f", wrt={quoted[0]}" if len(quoted) == 1 else f", wrt=({', '.join(quoted)})"
    wrt = wrt if params and read else ""  # without attributes, the parameters are all there is
    args = ", ".join([*(f"{instance}.{a}" for a in read), *params])
    text += f", then call `grad({name}{wrt})({args})`"
    if called:
        text += "; methods it calls (" + ", ".join(f"`self.{c}`" for c in called) + ") become functions too"
    return text


def _self_attributes(tree: ast.stmt | None) -> tuple[list[str], list[str]]:
    """Attributes of `self` the method reads, and those it calls, in order of appearance."""
    read: list[str] = []
    called: list[str] = []
    calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)} if tree else set()
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            found = called if id(node) in calls else read
            if node.attr not in found:
                found.append(node.attr)
    return read, called


# Future features change how code compiles: the check compiles with the function's own.
_FUTURE_FLAGS = 0
for _feature in __future__.all_feature_names:
    _flag = getattr(__future__, _feature).compiler_flag
    _FUTURE_FLAGS |= _flag if _flag > 0x10 else 0  # below: CO_NESTED and friends, not futures


def _check_unchanged(source: Source) -> None:
    """Refuse a function whose file was edited after it was compiled (a notebook, a reload):
    its source now says something else than the code that runs."""
    fn = source.fn
    if not isinstance(fn, types.FunctionType):
        return
    if source.tree.name == fn.__code__.co_name:
        compiled = _compile_like(fn, _undecorated(source.tree), source.tree.name)
        if compiled is None or _same_code(compiled, fn.__code__):
            return
    raise _changed_error(fn, source.filename, source.tree.lineno)


def _starts_definition(line: str, name: str) -> bool:
    """The first line of a function's source: a decorator or its `def`."""
    words = line.strip().replace("(", " ").split()
    return line.lstrip().startswith("@") or words[:2] == ["def", name] or words[:3] == ["async", "def", name]


def _def_line(code: types.CodeType) -> int:
    """Where `def name` is now in the file, if it is there once; else where it was."""
    lines = linecache.getlines(code.co_filename)
    found = [n for n, line in enumerate(lines, 1) if line.split("(")[0].split() == ["def", code.co_name]]
    return found[0] if len(found) == 1 else code.co_firstlineno


def _changed_error(fn: types.FunctionType, filename: str, lineno: int) -> SymgradError:
    name = fn.__name__
    line = linecache.getline(filename, lineno)
    return SourceChangedError(
        f"the source of `{name}` in {filename} has changed since `{name}` was defined: "
        "the text now in the file is not the function that runs",
        filename=filename,
        lineno=lineno,
        col=_column_of(line, "def"),
        source_line=line or None,
        hint=f"reload the module (`importlib.reload(module)`) or re-run the cell that defines `{name}`, "
        "then apply grad to the new function",
    )


def _compile_like(fn: types.FunctionType, definition: ast.stmt, name: str) -> types.CodeType | None:
    """Compile the parsed `def` (or lambda) inside the classes and functions named by `fn`'s
    qualified name, so that names resolve (closure, global, mangled) as they did, and return
    the code object named `name`; None if it cannot."""
    scopes = _enclosing_scopes(fn.__qualname__)
    if scopes is None:
        return None
    freevars = [v for v in fn.__code__.co_freevars if v != "__class__"]  # a class makes that cell
    if freevars and not any(kind == "def" for kind, _ in scopes):
        scopes.insert(0, ("def", "_symgrad_outer"))  # a closure whose maker is not in the name
    text, depth = "", 0
    for kind, scope in scopes:
        text += "    " * depth + ("def " + scope + "():\n" if kind == "def" else "class " + scope + ":\n")
        depth += 1
    text += "    " * depth + "pass\n"
    try:
        module = ast.parse(text)
        if freevars:
            _bind_in_innermost_def(module, freevars)
        _innermost_body(module)[-1:] = [definition]  # in place of the `pass`
        _rewrite_asserts_like(fn, module)
        flags = fn.__code__.co_flags & _FUTURE_FLAGS
        code = compile(ast.fix_missing_locations(module), fn.__code__.co_filename, "exec", flags, True)
    except (SyntaxError, ValueError, TypeError):
        return None
    return _find_code(code, name)


def _rewrite_asserts_like(fn: types.FunctionType, module: ast.Module) -> None:
    """pytest rewrites the `assert` statements of test modules as it imports them: compile
    the check's copy the same way, or every function with an assert in a test file would
    look edited."""
    if "@pytest_ar" not in fn.__globals__:
        return
    rewrite = getattr(sys.modules.get("_pytest.assertion.rewrite"), "rewrite_asserts", None)
    if rewrite is not None:
        ast.fix_missing_locations(module)  # the rewriter reads the line of the first statement
        with contextlib.suppress(Exception):  # another pytest: the check compares plain code
            rewrite(module, b"", fn.__code__.co_filename, None)


def _enclosing_scopes(qualname: str) -> list[tuple[str, str]] | None:
    """`outer.<locals>.Model.loss` -> [("def", "outer"), ("class", "Model")]."""
    parts = qualname.split(".")[:-1]
    scopes: list[tuple[str, str]] = []
    i = 0
    while i < len(parts):
        is_def = i + 1 < len(parts) and parts[i + 1] == "<locals>"
        if not parts[i].isidentifier():
            if not is_def:
                return None
            # made in a lambda (`lambda y: lambda x: x ** y`) or a comprehension: a function
            # scope all the same, which closes over the same names
            scopes.append(("def", "_symgrad_scope"))
            i += 2
            continue
        scopes.append(("def" if is_def else "class", parts[i]))
        i += 2 if is_def else 1
    return scopes


def _innermost_body(module: ast.Module) -> list[ast.stmt]:
    body: list[ast.stmt] = module.body
    while isinstance(body[-1], (ast.FunctionDef, ast.ClassDef)):
        body = body[-1].body
    return body


def _bind_in_innermost_def(module: ast.Module, names: list[str]) -> None:
    """`a = b = None` in the innermost enclosing function: the names become closure cells."""
    defs = [n for n in ast.walk(module) if isinstance(n, ast.FunctionDef)]
    targets: list[ast.expr] = [ast.Name(id=n, ctx=ast.Store()) for n in names]
    defs[-1].body.insert(0, ast.Assign(targets=targets, value=ast.Constant(value=None)))


def _undecorated(tree: ast.FunctionDef) -> ast.FunctionDef:
    node = copy.copy(tree)  # decorators run outside the function's code: not part of the check
    node.decorator_list = []
    return node


def _find_code(code: types.CodeType, name: str) -> types.CodeType | None:
    """The shallowest code object named `name` among the constants of `code`."""
    queue = [code]
    while queue:
        current = queue.pop(0)
        for const in current.co_consts:
            if isinstance(const, types.CodeType):
                if const.co_name == name:
                    return const
                queue.append(const)
    return None


_CODE_FIELDS = (
    "co_name",
    "co_names",
    "co_varnames",
    "co_freevars",
    "co_cellvars",
    "co_argcount",
    "co_posonlyargcount",
    "co_kwonlyargcount",
)


def _same_code(a: types.CodeType, b: types.CodeType) -> bool:
    """Same instructions, names and constants (nested code compared alike); lines aside."""
    if any(getattr(a, f) != getattr(b, f) for f in _CODE_FIELDS) or len(a.co_consts) != len(b.co_consts):
        return False
    if not all(_same_constant(x, y) for x, y in zip(a.co_consts, b.co_consts)):
        return False
    return a.co_code == b.co_code or _instructions(a) == _instructions(b)


def _same_constant(x: Any, y: Any) -> bool:
    if isinstance(x, types.CodeType):
        return isinstance(y, types.CodeType) and _same_code(x, y)
    if isinstance(x, frozenset):  # `in {"a", "b"}`: its order comes from the process that compiled it
        return type(y) is frozenset and sorted(map(repr, x)) == sorted(map(repr, y))
    return type(x) is type(y) and repr(x) == repr(y)  # repr: -0.0 is not 0.0, nan is nan


# Python 3.11+ compiles `np.clip(x)` without LOAD_METHOD when `np` was bound by an import of
# the module, which a function compiled on its own cannot know: both forms count as the same.
_SAME_OP = {"LOAD_METHOD": "LOAD_ATTR", "CALL_METHOD": "CALL_FUNCTION"}
_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)
_CONSTS = frozenset(dis.hasconst)
_LEFT_OUT = frozenset({"EXTENDED_ARG", "PUSH_NULL"})  # PUSH_NULL: the other call form's NULL


def _instructions(code: types.CodeType) -> list[tuple[str, str]]:
    """The instructions as (operation, argument), jumps by instruction index, not offset.

    The two method-call forms differ in size, so a jump over one may need an EXTENDED_ARG
    prefix in one code and not in the other: prefixes are left out (with the PUSH_NULL of
    the attribute form), a jump to one counts as a jump to the instruction after it."""
    found = list(dis.get_instructions(code))
    index: dict[int, int] = {}  # offset -> position among the kept instructions
    kept = 0
    for ins in found:
        index[ins.offset] = kept
        kept += ins.opname not in _LEFT_OUT
    result = []
    for ins in found:
        if ins.opname in _LEFT_OUT:
            continue
        if ins.opcode in _JUMPS:
            text = repr(index.get(ins.argval, ins.argval))
        else:  # a constant by its position: the constants are compared on their own
            text = repr(ins.arg if ins.opcode in _CONSTS else ins.argval)
        result.append((_SAME_OP.get(ins.opname, ins.opname), text))
    return result


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
    ast.Lambda: ("lambdas are not supported", "define a named function with `def` and call it"),
    ast.SetComp: ("set comprehensions are not supported", "write a list comprehension `[... for ...]`"),
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
    ast.Delete: ("`del` is not supported", "remove the `del` statement"),
    ast.Import: ("imports inside the function are not supported", "import at module level"),
    ast.ImportFrom: ("imports inside the function are not supported", "import at module level"),
    ast.Set: ("sets are not supported", "use separate variables"),
    ast.AsyncFor: ("async loops are not supported", "use `for i in range(N)`"),
    ast.AsyncWith: ("async `with` is not supported", "remove it"),
}
if hasattr(ast, "Match"):
    _REFUSED[ast.Match] = ("`match` statements are not supported", "use `if`/`elif`/`else`")


def fence(source: Source) -> None:
    """Refuse, with location and hint, every construct the tracer does not support."""
    tree = source.tree
    messages = _messages(tree)
    spread = {id(a) for node in ast.walk(tree) if isinstance(node, ast.Call) for a in node.args}
    for stmt in tree.body:
        for node in ast.walk(stmt):
            if id(node) in messages or (isinstance(node, ast.Starred) and id(node) in spread):
                continue  # `f(*args)`: the tracer spreads a sequence it knows
            refused = _REFUSED.get(type(node))
            if refused is not None:
                raise source.error(UnsupportedSyntaxError, node, *refused)
            if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
                _check_string(source, stmt, node)


def _messages(tree: ast.FunctionDef) -> set[int]:
    """The f-strings of messages (`raise E(f"...")`, `assert c, f"..."`, `print(f"...")`):
    strings that never meet a number, allowed where other f-strings are refused."""
    spans = [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.Raise, ast.Assert))
        or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call))
    ]
    return {
        id(n) for span in spans for n in ast.walk(span) if isinstance(n, (ast.JoinedStr, ast.FormattedValue))
    }


def _check_string(source: Source, stmt: ast.stmt, node: ast.Constant) -> None:
    # A docstring is fine, and so are the messages of call statements (`print("loss", x)`);
    # strings elsewhere may only be keyword values like axis names.
    if isinstance(stmt, ast.Expr) and (stmt.value is node or isinstance(stmt.value, ast.Call)):
        return
    if isinstance(stmt, ast.Expr):
        raise source.error(UnsupportedSyntaxError, node, "a string has no derivative", "remove the string")
