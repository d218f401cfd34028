"""Backends: where a generated derivative runs (NumPy, numba, JAX, CuPy), and arrays of other libraries.

The NumPy program that `emit` prints is the reference. Every other backend is derived from it
(or from its plain-Python scalar flavour), so that all backends compute the same expressions:

- `"numba"`: elementwise programs become one fused, parallel loop (`numba.prange`) over the
  flattened broadcast inputs, calling the scalar flavour compiled with `njit` once per element;
  on Python floats, long (scalar-heavy) programs of up to `NJIT_MAX_PARAMS` parameters call
  the `njit` scalar kernel; short ones, and ones with many parameters, stay inlined Python (a
  numba call costs more than a short program, and unboxing each argument adds up). Kernels are written to files
  in symgrad's cache directory, named by a hash of their source, so that numba's `cache=True`
  pays the compile once per machine. Array programs (reductions, `@`, indexing) and programs
  calling functions numba lacks (`scipy.special`) run the NumPy program.
- `"jax"`, `"cupy"`: the program printed for `jax.numpy` / `cupy` (`emit.JaxArrayPrinter`,
  `emit.CuPyArrayPrinter`: SymPy's `JaxPrinter` and `CuPyPrinter` with symgrad's overrides)
  when the kernel is emitted; elementwise programs only. JAX's is `jax.jit`-compiled, its
  kept loops printed as `jax.lax.scan` (`emit.render_scan`, run by `_jax_scan`).
- Other array types (Dask, ...) given to the NumPy backend run the NumPy program with a
  `numpy` whose `asarray` keeps them as they are: a Dask array stays lazy. On the numba
  backend, Dask arrays get the fused loop mapped over their chunks (`dask_map`).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import hashlib
import importlib.util
import linecache
import math
import os
import sys
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import cache, emit, runtime
from .emit import GeneratedFunction, Kernel
from .errors import SymgradError

# backend name -> (module it needs, what to install)
BACKENDS: dict[str, tuple[str, str] | None] = {
    "numpy": None,
    "numba": ("numba", "pip install 'symgrad[numba]'"),
    "jax": ("jax", "pip install 'symgrad[jax]'"),
    "cupy": ("cupy", "pip install cupy-cuda12x (a CUDA GPU is needed)"),
}

# On Python floats, a numba call (argument unboxing, tuple boxing) costs more than a short
# program run as inlined Python: only programs with at least this many statements call it.
NJIT_MIN_STATEMENTS = 200
# Arrays with fewer elements run the fused loop on one thread (each flavour compiles on first use).
PARALLEL_MIN_SIZE = 32768
# ... and numba unboxes every argument on each call (about 60 ns each): with 1000 float
# arguments (W5) that cost more than the inlined Python (257 us against 197 us); with 100 it
# was 2.4x faster. Programs with more parameters than this stay inlined Python on floats.
NJIT_MAX_PARAMS = 256


class BackendError(SymgradError, ValueError):
    """An unknown `backend=` name, a backend whose library is not installed, or a program
    that backend cannot run."""


def check(name: Any) -> str:
    """Validate a `backend=` argument early: a known name whose library can be imported.

    >>> check("numpy")
    'numpy'
    """
    if not isinstance(name, str) or name not in BACKENDS:
        raise BackendError(
            f"unknown backend {name!r}",
            hint=f"choose one of {', '.join(repr(b) for b in BACKENDS)}",
        )
    need = BACKENDS[name]
    if need is not None and importlib.util.find_spec(need[0]) is None:
        raise BackendError(f"backend={name!r} needs `{need[0]}`, which is not installed", hint=need[1])
    return name


def specialise(kernel: Kernel, backend: str) -> Kernel:
    """The kernel that runs `kernel`'s program on `backend` (itself for NumPy)."""
    if backend == "numpy":
        return kernel
    if backend == "numba":
        return _numba_kernel(kernel)
    return _module_kernel(kernel, backend)


# --- arrays of other libraries -----------------------------------------------------------------


def is_foreign(value: Any) -> bool:
    """An array of another library (Dask, CuPy, JAX, ...): not NumPy's, not a Python number."""
    return not isinstance(value, (np.ndarray, np.generic, float, int)) and (
        hasattr(value, "__array_function__") or hasattr(value, "__array_namespace__")
    )


def is_dask(values: Any) -> bool:
    """Some of `values` are Dask arrays, and the others NumPy arrays or numbers."""
    roots = {type(v).__module__.split(".")[0] for v in values if is_foreign(v)}
    return roots == {"dask"}


def namespace_of(value: Any) -> Any:
    """The NumPy-like module of a foreign array: `dask.array`, `cupy`, `jax.numpy`, ..."""
    root = type(value).__module__.split(".")[0]
    if root == "dask":
        import dask.array

        return dask.array
    if root in ("jax", "jaxlib"):
        import jax.numpy

        return jax.numpy
    if hasattr(value, "__array_namespace__"):
        return value.__array_namespace__()
    return sys.modules[root]


class _Duck(types.ModuleType):
    """`numpy` for generated code given foreign arrays: NumPy's functions (which dispatch to
    the array's library through `__array_function__`/`__array_ufunc__`), except `asarray`,
    which would copy a Dask array into memory: a foreign array is cast in its own library."""

    def __init__(self, base: Any, name: str) -> None:
        super().__init__(name)
        self._base = base

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    @staticmethod
    def asarray(value: Any, dtype: Any = None) -> Any:
        if is_foreign(value):
            return value if dtype is None or value.dtype == dtype else value.astype(dtype)
        return np.asarray(value, dtype=dtype)


_DUCK = _Duck(np, "numpy")


def duck_function(kernel: Kernel) -> Callable[..., Any]:
    """`kernel`'s NumPy program compiled against `_Duck`: lazy arrays stay lazy."""
    fn = kernel._compiled.get("duck")
    if fn is None:
        namespace = {"numpy": _DUCK, "math": math, "sg": runtime, "scipy_special": emit._scipy_special()}
        fn = kernel._compiled["duck"] = _compile(kernel.array_source, kernel.name, "duck", namespace)
    return fn


def _compile(source: str, name: str, flavour: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """Like `emit.compile_source`, with the caller's module bindings (`numpy` = another module)."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    filename = f"<symgrad:{name}:{flavour}:{digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]  # type: ignore[no-any-return]


# --- JAX and CuPy: the NumPy program in another array module ----------------------------------


def _xp_runtime(xp: Any) -> types.SimpleNamespace:
    # The `sg.` helpers elementwise programs call, written for the module `xp`.
    helpers = types.SimpleNamespace(
        sigmoid=lambda x: 1.0 / (1.0 + xp.exp(-x)), while_condition=runtime.while_condition
    )
    if xp.__name__ == "jax.numpy":
        helpers.scan = _jax_scan
    return helpers


def _jax_scan(body: Callable[..., Any], init: tuple[Any, ...], xs: tuple[Any, ...], reverse: bool) -> Any:
    """`jax.lax.scan(body, init, xs)` for a kept loop whose carries start smaller than they
    become (a sum from 0.0 adding arrays, float32 promoted): each starts at the shape and
    dtype its update has, found with `jax.eval_shape` (shapes only grow, so this ends)."""
    import jax
    import jax.numpy as jnp

    carry = tuple(jnp.asarray(c) for c in init)
    item = tuple(
        jax.ShapeDtypeStruct(  # type: ignore[no-untyped-call]
            jnp.shape(x)[1:], jnp.result_type(x)
        )
        for x in xs
    )
    while True:
        updates, _ = jax.eval_shape(body, carry, item)
        grown = tuple(
            jnp.broadcast_to(c, jnp.broadcast_shapes(c.shape, u.shape)).astype(
                jnp.promote_types(c.dtype, u.dtype)
            )
            for c, u in zip(carry, updates)
        )
        if all(g.shape == c.shape and g.dtype == c.dtype for g, c in zip(grown, carry)):
            break
        carry = grown

    def fitted(old: tuple[Any, ...], step: tuple[Any, ...]) -> Any:
        new, stacked = body(old, step)  # an update may still be smaller (a constant)
        return tuple(jnp.broadcast_to(n, o.shape).astype(o.dtype) for n, o in zip(new, old)), stacked

    return jax.lax.scan(fitted, carry, xs, reverse=reverse)


def _modules(backend: str) -> tuple[Any, Any, Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """(array module, its scipy.special, a compiler) for `backend`."""
    if backend == "jax":
        import jax
        import jax.numpy as jnp
        import jax.scipy.special as jsp

        return jnp, jsp, jax.jit
    import cupy
    import cupyx.scipy.special as csp

    return cupy, csp, lambda fn: fn


@dataclass
class ModuleKernel(Kernel):
    """A kernel whose array flavour runs in JAX or CuPy: the program printed for that module
    (`Kernel.module_source`); Python numbers still run the scalar flavour."""

    backend: str = "jax"

    @property
    def array_fn(self) -> Callable[..., Any]:
        fn = self._compiled.get("array")
        if fn is None:
            if self.module_refusal is not None:
                raise BackendError(
                    "backend='jax' compiles the program with jax.jit, where the condition of a "
                    "`while` loop (or of a loop's `break`) on traced values has no Python truth value",
                    hint="use backend='numpy' (the default) for functions with `while` loops or `break`",
                )
            xp, special, jit = _modules(self.backend)
            namespace = {
                self.backend: sys.modules[self.backend],  # `jax.numpy.exp`, `cupy.exp`
                "math": math,
                "sg": _xp_runtime(xp),
                "scipy_special": special,
            }
            fn = self._compiled["array"] = jit(
                _compile(self.array_source, self.name, self.backend, namespace)
            )
        return fn


def _module_kernel(kernel: Kernel, backend: str) -> Kernel:
    if kernel.scalar is None:
        raise BackendError(
            f"backend={backend!r} runs elementwise programs only; this one has array-level "
            "operations (reductions, `@`, indexing)",
            hint="use backend='numpy' for it",
        )
    assert kernel.array_module == backend, "emit the kernel for its module (api._builder does)"
    return ModuleKernel(
        name=kernel.name,
        array_source=kernel.module_source or "",
        scalar=kernel.scalar,
        has_loops=kernel.has_loops,
        n_outputs=kernel.n_outputs,
        array_module=kernel.array_module,
        module_source=kernel.module_source,
        module_refusal=kernel.module_refusal,
        backend=backend,
    )


# --- numba ------------------------------------------------------------------------------------


def flat_inputs(*values: Any) -> tuple[tuple[int, ...], list[Any] | None]:
    """The broadcast shape of `values`, and each value as a contiguous 1-d float64 array of
    that many elements (a view where the value already is one); None instead of the arrays
    when one is a float array of another precision (float32: the NumPy program computes in it).

    >>> flat_inputs(np.ones(2), 3.0)
    ((2,), [array([1., 1.]), array([3., 3.])])
    """
    shape = np.broadcast_shapes(*[np.shape(v) for v in values])
    dtypes = [np.dtype(getattr(v, "dtype", _FLOAT64)) for v in values]
    if any(d.kind == "f" and d != _FLOAT64 for d in dtypes):
        return shape, None
    flat = [
        np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=np.float64), shape)).reshape(-1)
        for v in values
    ]
    return shape, flat


def numba_source(kernel: Kernel) -> str:
    """The numba module for an elementwise program: the scalar kernel (`njit`), the fused
    parallel loop over flattened inputs, and the Python wrapper that broadcasts and reshapes."""
    assert kernel.scalar is not None
    name = kernel.name
    params, body, outputs = kernel.scalar.params, kernel.scalar.body, kernel.scalar.outputs
    outs = [f"_out{k}" for k in range(len(outputs))]
    loop_args = ", ".join([*(f"_a_{p}" for p in params), *outs])
    call = ", ".join(f"_a_{p}[_i]" for p in params)
    lines = [
        f'"""numba kernels of {name}, generated by symgrad from its scalar program (backend="numba")."""',
        "",
        "import math",
        "",
        "import numba",
        "import numpy",
        "",
        "from symgrad.backends import flat_inputs",
        "",
        "_numpy_program = None  # the NumPy flavour of the same program: symgrad sets it on loading",
        "",
        "",
        '@numba.njit(cache=True, error_model="numpy")',
        f"def {name}_scalar({', '.join(params)}):",
        *body,
        f"    return {kernel.scalar.returned}",
        "",
        "",
        "# One pass over the data computes every output: the elementwise program, fused.",
        *_loop_lines(f"{name}_loop", loop_args, f"{name}_scalar", call, outs, parallel=True),
        "",
        "",
        "# The same loop on one thread, for small arrays: waking threads costs more than they save.",
        *_loop_lines(f"{name}_serial", loop_args, f"{name}_scalar", call, outs, parallel=False),
        "",
        "",
        f"def {name}({', '.join(params)}):",
        f'    """{kernel.scalar.doc}"""',
        f"    _shape, _flat = flat_inputs({', '.join(params)}{',' if len(params) == 1 else ''})",
        "    if _flat is None:  # float32 arrays: the NumPy program, in their precision",
        f"        return _numpy_program({', '.join(params)})",
        *(f"    {o} = numpy.empty(_shape)" for o in outs),
        f"    _loop = {name}_loop if _flat[0].size >= {PARALLEL_MIN_SIZE} else {name}_serial",
        f"    _loop(*_flat, {', '.join(o + '.reshape(-1)' for o in outs)})",
        f"    return ({', '.join(outs)},)",
    ]
    return "\n".join(lines) + "\n"


def _loop_lines(name: str, args: str, scalar: str, call: str, outs: list[str], parallel: bool) -> list[str]:
    flags = "parallel=True, cache=True" if parallel else "cache=True"
    loop = "numba.prange" if parallel else "range"
    return [
        f'@numba.njit({flags}, error_model="numpy")',
        f"def {name}({args}):",
        f"    for _i in {loop}(_out0.shape[0]):",
        f"        _r = {scalar}({call})",
        *(f"        {o}[_i] = _r[{k}]" for k, o in enumerate(outs)),
    ]


# Modules of generated code that numba cannot call from compiled code (Python objects):
# symgrad's own helpers and scipy.special. Their names are reserved (`graph.RESERVED`), so no
# user variable is called so.
_NUMBA_LACKS = frozenset({"sg", "scipy_special"})


def _numba_supported(scalar_source: str | None) -> bool:
    """Whether numba compiles this scalar program: decided on the names its code reads (from
    its syntax tree), never on its text, whose comments quote the user's lines (`sg.` there
    is `import symgrad as sg` in the user's own code)."""
    if scalar_source is None:
        return False
    names = {node.id for node in ast.walk(ast.parse(scalar_source)) if isinstance(node, ast.Name)}
    return not names & _NUMBA_LACKS


def _kernel_folder() -> Path:
    folder = cache.directory()
    if folder is None:  # SYMGRAD_NO_CACHE: a folder for this process only
        folder = Path(_process_folder())
    return folder / "numba"


_PROCESS_FOLDER: list[str] = []


def _process_folder() -> str:
    if not _PROCESS_FOLDER:
        _PROCESS_FOLDER.append(tempfile.mkdtemp(prefix="symgrad-"))
    return _PROCESS_FOLDER[0]


def load_module(source: str, name: str) -> types.ModuleType:
    """Import generated source from a file named by its hash (written once, never rewritten:
    numba's cache is keyed by the file's path and modification time)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    module_name = f"symgrad_kernel_{name}_{digest}"
    found = sys.modules.get(module_name)
    if found is not None:
        return found
    # numba's OpenMP threads spin between parallel loops by default; on a machine with other
    # busy threads (jax's, a shared CI box) that made a 1e4-element loop 40x slower (10 ms
    # against 0.25 ms). Passive waiting unless the user chose otherwise; read once, at the
    # first parallel launch.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    folder = _kernel_folder()
    path = folder / f"{module_name}.py"
    try:
        if not path.exists() or path.read_text() != source:
            cache._atomic_write(path, source.encode())
    except OSError:  # an unwritable cache: this process's own folder
        path = Path(_process_folder()) / "numba" / f"{module_name}.py"
        cache._atomic_write(path, source.encode())
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[module_name] = module
    return module


_FLOAT64 = np.dtype(np.float64)


@dataclass
class NumbaKernel(Kernel):
    """An elementwise kernel whose array flavour is a fused numba loop (see `numba_source`)."""

    numpy_kernel: Kernel | None = None
    njit_floats: bool = False  # Python floats call the njit scalar kernel (long programs)

    def module(self) -> types.ModuleType:
        found: Any = self._compiled.get("module")
        if found is None:
            found = self._compiled["module"] = load_module(self.array_source, self.name)  # type: ignore[assignment]
            numpy_kernel = self.numpy_kernel
            assert numpy_kernel is not None
            found._numpy_program = lambda *args: numpy_kernel.array_fn(*args)
        return found  # type: ignore[no-any-return]

    @property
    def array_fn(self) -> Callable[..., Any]:
        return getattr(self.module(), self.name)  # type: ignore[no-any-return]

    @property
    def scalar_fn(self) -> Callable[..., Any]:
        if not self.njit_floats:
            assert self.numpy_kernel is not None
            return self.numpy_kernel.scalar_fn
        scalar = getattr(self.module(), f"{self.name}_scalar")
        return lambda *args: scalar(*[float(a) for a in args])

    def scope(self) -> dict[str, Any]:
        if not self.njit_floats:
            return {}
        return {f"{self.name}_scalar": getattr(self.module(), f"{self.name}_scalar")}


def _numba_floats(scalar: GeneratedFunction) -> GeneratedFunction:
    """The floats flavour that calls the njit scalar kernel (inlined by `emit.entry_function`)."""
    results = tuple(f"_r{k}" for k in range(len(scalar.outputs)))
    call = f"    {', '.join(results)}, = {scalar.name}_scalar({', '.join(scalar.params)})"
    return dataclasses.replace(scalar, body=(call,), outputs=results, indent="    ")


def _numba_kernel(kernel: Kernel) -> Kernel:
    if not _numba_supported(kernel.scalar_source):
        return kernel  # array programs and scipy.special: the NumPy program (documented)
    scalar = kernel.scalar
    assert scalar is not None
    statements = sum(1 for line in scalar.body if line.strip() and not line.strip().startswith("#"))
    # a kept loop runs its body many times: worth compiling however short it is
    heavy = (statements >= NJIT_MIN_STATEMENTS or kernel.has_loops) and len(scalar.params) <= NJIT_MAX_PARAMS
    return NumbaKernel(
        name=kernel.name,
        array_source=numba_source(kernel),
        scalar=_numba_floats(scalar) if heavy else scalar,
        n_outputs=kernel.n_outputs,
        has_loops=kernel.has_loops,
        numpy_kernel=kernel,
        njit_floats=heavy,
    )


class ChunkKernel:
    """A numba kernel as Dask ships it to workers: by its source, loaded (from the numba cache)
    on first use in each process, so that worker processes need nothing but symgrad."""

    def __init__(self, kernel: NumbaKernel) -> None:
        assert kernel.numpy_kernel is not None
        self.source, self.name, self.numpy_source = (
            kernel.array_source,
            kernel.name,
            kernel.numpy_kernel.array_source,
        )
        self.single = kernel.n_outputs == 1
        self._fn: Callable[..., Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fn": None}

    def __call__(self, *args: Any) -> Any:
        if self._fn is None:
            module: Any = load_module(self.source, self.name)
            if module._numpy_program is None:
                module._numpy_program = emit.compile_source(self.numpy_source, self.name)
            self._fn = getattr(module, self.name)
        out = self._fn(*args)
        return out[0] if self.single else out


class ChunkProgram:
    """An elementwise NumPy program as Dask ships it to workers: by its source, compiled on
    first use in each process. It runs whole on each chunk, freeing its temporaries as it
    goes, so a worker holds a few chunks, not one per operation of the program."""

    def __init__(self, kernel: Kernel) -> None:
        self.source, self.name, self.single = kernel.array_source, kernel.name, kernel.n_outputs == 1
        self._fn: Callable[..., Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fn": None}

    def __call__(self, *args: Any) -> Any:
        if self._fn is None:
            self._fn = emit.compile_source(self.source, self.name)
        shape = np.broadcast_shapes(*(np.shape(a) for a in args))
        # a constant output (a derivative of 1) is the chunk's shape, as Dask expects
        out = tuple(np.broadcast_to(np.asarray(o, dtype=np.float64), shape) for o in self._fn(*args))
        return out[0] if self.single else out


def dask_map(kernel: Kernel, values: list[Any]) -> tuple[Any, ...]:
    """An elementwise kernel over each chunk of Dask arrays, lazily (`dask.array.apply_gufunc`):
    numba's fused loop (no chunk-sized temporaries), or the whole NumPy program per chunk."""
    da: Any = importlib.import_module("dask.array")  # untyped in parts: Any, with or without dask
    # One chunking for every array argument (apply_gufunc wants equal chunks); numbers stay.
    arrays = [i for i, v in enumerate(values) if getattr(v, "ndim", 0) > 0]
    for i, unified in zip(arrays, da.broadcast_arrays(*[da.asarray(values[i]) for i in arrays])):
        values[i] = unified
    n = kernel.n_outputs
    signature = f"{','.join(['()'] * len(values))}->{','.join(['()'] * n)}"
    chunk = ChunkKernel(kernel) if isinstance(kernel, NumbaKernel) else ChunkProgram(kernel)
    out = da.apply_gufunc(chunk, signature, *values, output_dtypes=float if n == 1 else (float,) * n)
    return (out,) if n == 1 else tuple(out)


def threads() -> int:
    """Threads numba's parallel loops use (`NUMBA_NUM_THREADS`, default: the cores)."""
    with contextlib.suppress(ImportError):
        import numba

        return int(numba.get_num_threads())
    return os.cpu_count() or 1
