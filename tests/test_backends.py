"""backend= on every entry point: numba, JAX and CuPy give the NumPy backend's numbers and errors;
arrays of other libraries (Dask) stay lazy through the NumPy backend."""

from __future__ import annotations

import concurrent.futures
import functools
import importlib.util
import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgrad
from symgrad import backends
from symgrad.backends import BackendError
from tests.helpers import all_partials, every_parameter

HAS_NUMBA = importlib.util.find_spec("numba") is not None
HAS_JAX = importlib.util.find_spec("jax") is not None
HAS_DASK = importlib.util.find_spec("dask") is not None
HAS_DISTRIBUTED = importlib.util.find_spec("distributed") is not None
needs_numba = pytest.mark.skipif(
    not HAS_NUMBA, reason="numba is not installed (pip install 'symgrad[numba]')"
)
needs_jax = pytest.mark.skipif(not HAS_JAX, reason="jax is not installed (pip install 'symgrad[jax]')")
needs_dask = pytest.mark.skipif(not HAS_DASK, reason="dask is not installed (pip install 'symgrad[dask]')")


def _cupy_reason() -> str | None:
    try:
        import cupy
    except ImportError:
        return "cupy is not installed (pip install cupy-cuda12x; needs a CUDA GPU)"
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver or no device
        return f"cupy is installed but no CUDA device is usable ({type(exc).__name__})"
    return None


CUPY_REASON = _cupy_reason()


# --- user-style functions ------------------------------------------------------------------------


def smooth(x):
    return np.sin(x) * np.exp(-(x**2) / 2) / (1 + x**2) + np.log(1 + np.exp(x))


def branchy(x, y):
    if x > 0:
        return x * y + np.tanh(y)
    return np.maximum(x, 0.0) + y**3 / (1 + x * x)


def two_outputs(x, y):
    return x * np.cos(y), np.sqrt(x * x + y * y)


def reduction(x):
    return np.sum(x * x) + x[0]


KINDS = ("grad", "value_and_grad", "jacobian", "vjp", "jvp")
FUNCTIONS = {"smooth": smooth, "branchy": branchy, "two_outputs": two_outputs}


def _args(name: str, case: str) -> tuple[Any, ...]:
    x = np.linspace(-2.0, 2.0, 7)
    y = np.linspace(0.5, 3.0, 7)
    if case == "floats":
        return (0.7,) if name == "smooth" else (0.7, 1.3)
    if case == "broadcast":
        return (x.reshape(7, 1) * 1.0,) if name == "smooth" else (x.reshape(7, 1), y.reshape(1, 7))
    return (x,) if name == "smooth" else (x, y)


@functools.cache
def _compiled(kind: str, name: str, backend: str) -> Any:
    fn = FUNCTIONS[name]
    wrt = every_parameter(fn)  # every partial, a single one as a single value (as before E9)
    wrt = "x" if kind == "jacobian" and name == "smooth" else wrt[0] if len(wrt) == 1 else wrt
    return getattr(symgrad, kind)(fn, wrt=wrt, backend=backend)


def _call(kind: str, name: str, backend: str, args: tuple[Any, ...]) -> Any:
    fn = _compiled(kind, name, backend)
    if kind == "vjp":
        value, pullback = fn(*args)
        out = value if isinstance(value, tuple) else (value,)
        cotangent = tuple(np.full(np.shape(v), 0.5) if np.ndim(v) else 0.5 for v in out)
        return value, pullback(cotangent if len(out) > 1 else cotangent[0])
    if kind == "jvp":
        tangents = tuple(np.ones(np.shape(a)) if np.ndim(a) else 1.0 for a in args)
        return fn(args, tangents)
    return fn(*args)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def assert_same(got: Any, expected: Any, rtol: float = 1e-12) -> None:
    """Same structure, same types (float stays float), same numbers to `rtol` relative."""
    got_leaves, expected_leaves = _leaves(got), _leaves(expected)
    assert len(got_leaves) == len(expected_leaves)
    for g, e in zip(got_leaves, expected_leaves):
        assert isinstance(g, float) == isinstance(e, float), (type(g), type(e))
        assert np.shape(g) == np.shape(e)
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=rtol, atol=0, equal_nan=True)


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*KINDS, "hessian"])
def test_unknown_backend_is_refused_at_decoration(kind: str) -> None:
    with pytest.raises(BackendError, match="unknown backend 'numbaa'") as info:
        getattr(symgrad, kind)(smooth, backend="numbaa")
    assert isinstance(info.value, symgrad.SymgradError) and isinstance(info.value, ValueError)
    assert "'numpy', 'numba', 'jax', 'cupy'" in info.value.hint


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "numba" else real(n, *a))
    with pytest.raises(BackendError, match="needs `numba`, which is not installed") as info:
        symgrad.grad(smooth, backend="numba")
    assert "pip install 'symgrad[numba]'" in info.value.hint
    with pytest.raises(BackendError):
        symgrad.derivative(smooth, wrt="x", backend=3)  # type: ignore[arg-type]


# --- numba -----------------------------------------------------------------------------------------


@needs_numba
@pytest.mark.parametrize("case", ["floats", "arrays", "broadcast"])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("kind", KINDS)
def test_numba_gives_the_numpy_numbers(kind: str, name: str, case: str) -> None:
    args = _args(name, case)
    try:
        expected = _call(kind, name, "numpy", args)
    except symgrad.SymgradError as exc:  # e.g. grad of a tuple output on floats: the same error
        with pytest.raises(type(exc), match="scalar output"):
            _call(kind, name, "numba", args)
        return
    assert_same(_call(kind, name, "numba", args), expected)


@needs_numba
def test_numba_parallel_loop_serves_large_arrays() -> None:
    x = np.linspace(-3.0, 3.0, backends.PARALLEL_MIN_SIZE + 5)
    assert_same(
        _call("value_and_grad", "branchy", "numba", (x, 2.0)),
        _call("value_and_grad", "branchy", "numpy", (x, 2.0)),
    )
    assert_same(_call("grad", "smooth", "numba", (x,)), _call("grad", "smooth", "numpy", (x,)), rtol=1e-10)


@needs_numba
def test_transform_of_a_transform_keeps_the_inner_backend() -> None:
    inner = symgrad.grad(smooth, backend="numba")
    outer = symgrad.grad(inner)  # no backend given: the inner one's
    assert outer.backend == "numba" and symgrad.grad(inner, backend="numpy").backend == "numpy"
    assert symgrad.derivative(smooth, wrt=0, order=2, backend="numba").backend == "numba"
    x = np.linspace(-3.0, 3.0, 11)
    assert_same(outer(x), symgrad.grad(symgrad.grad(smooth))(x), rtol=1e-12)
    assert symgrad.grad(symgrad.grad(smooth)).backend == "numpy"


@needs_numba
def test_numba_kernels_called_from_eight_threads_at_once() -> None:
    """Eight threads calling one numba-backend gradient at once, from its first call (the
    kernel is loaded while they race): the NumPy backend's numbers on every thread (small
    arrays run the serial loop, large ones the parallel one)."""
    g = symgrad.grad(branchy, wrt=(0, 1), backend="numba")
    want = symgrad.grad(branchy, wrt=(0, 1))
    inputs = [np.linspace(-3.0, 3.0, n) for n in (7, 1000, backends.PARALLEL_MIN_SIZE + 3)] * 8
    barrier = threading.Barrier(8)

    def work(k: int) -> list[Any]:
        barrier.wait()
        return [g(x, 0.5 + k) for x in inputs[k::8]]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    for k, got in enumerate(results):
        for x, value in zip(inputs[k::8], got):
            assert_same(value, want(x, 0.5 + k))


@needs_numba
def test_numba_float32_arrays_compute_in_float32_like_numpy() -> None:
    x = np.linspace(-2.0, 2.0, 7, dtype=np.float32)
    got, expected = _call("grad", "smooth", "numba", (x,)), _call("grad", "smooth", "numpy", (x,))
    assert got.dtype == expected.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


@needs_numba
def test_numba_source_is_the_fused_loop() -> None:
    g = _compiled("grad", "branchy", "numba")
    g(np.ones(3), np.ones(3))
    assert "@numba.njit(parallel=True, cache=True" in g.source
    assert "numba.prange" in g.source
    assert "def grad_branchy_scalar(x, y):" in g.source
    assert g.backend == "numba"
    assert "numba" not in _compiled("grad", "branchy", "numpy").source


@needs_numba
def test_numba_raises_the_same_errors() -> None:
    for backend in ("numpy", "numba"):
        with pytest.raises(symgrad.NonScalarOutputError):
            symgrad.grad(two_outputs, backend=backend)(1.0, 2.0)
        with pytest.raises(symgrad.WrtError, match="integer argument"):
            symgrad.grad(smooth, backend=backend)(np.arange(3))
        with pytest.raises(symgrad.ShapeError, match="do not broadcast"):
            symgrad.grad(branchy, backend=backend)(np.ones(3), np.ones(4))


@needs_numba
def test_numba_runs_array_programs_as_numpy() -> None:
    x = np.linspace(0.0, 1.0, 5)
    ours, reference = symgrad.grad(reduction, backend="numba"), symgrad.grad(reduction)
    assert_same(ours(x), reference(x))
    assert ours.source == reference.source  # documented: reductions stay NumPy programs


def recurrence(h, w, b, D):
    for _ in range(D):
        h = np.tanh(w * h + b)
    return h


@needs_numba
def test_numba_njit_serves_long_float_programs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "NJIT_MIN_STATEMENTS", 10)
    ours = symgrad.value_and_grad(recurrence, static="D", backend="numba")
    reference = symgrad.value_and_grad(recurrence, static="D")
    assert_same(ours(0.1, 0.9, 0.2, 8), reference(0.1, 0.9, 0.2, 8))
    assert "= value_and_grad_recurrence_scalar(h, w, b)" in ours.scalar_source
    assert_same(ours(0.1, 0.9, 0.2, D=9), reference(0.1, 0.9, 0.2, D=9))


@needs_numba
def test_numba_kernel_is_compiled_once_per_machine(tmp_path: Path) -> None:
    """A second process loads numba's cached machine code instead of compiling again."""
    script = textwrap.dedent(
        """
        import time, numpy as np, symgrad
        from tests.test_backends import smooth
        start = time.perf_counter()
        symgrad.grad(smooth, backend="numba")(np.ones(10))
        print(time.perf_counter() - start)
        """
    )
    env = {**os.environ, "SYMGRAD_CACHE_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    runs = [
        subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), runs
    kernels = list((tmp_path / "numba").glob("symgrad_kernel_grad_smooth_*.py"))
    assert len(kernels) == 1
    assert list((tmp_path / "numba" / "__pycache__").glob("*.nbi")), "numba wrote no cache index"


# --- JAX and CuPy ----------------------------------------------------------------------------------


@needs_jax
@pytest.mark.parametrize("kind", ["grad", "value_and_grad", "jacobian", "vjp", "jvp"])
def test_jax_gives_the_numpy_numbers_as_jax_arrays(kind: str) -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    args = _args("branchy", "arrays")
    got = _call(kind, "branchy", "jax", tuple(jnp.asarray(a) for a in args))
    assert all(isinstance(leaf, jax.Array) for leaf in _leaves(got))
    expected = _call(kind, "branchy", "numpy", args)
    np.testing.assert_allclose(
        np.concatenate([np.ravel(np.asarray(g)) for g in _leaves(got)]),
        np.concatenate([np.ravel(e) for e in _leaves(expected)]),
        rtol=1e-12,
    )
    assert "jax.numpy.where(" in _compiled(kind, "branchy", "jax").source


@needs_jax
def test_jax_refuses_array_programs() -> None:
    with pytest.raises(BackendError, match="elementwise programs only"):
        symgrad.grad(reduction, backend="jax")(np.ones(3))


@pytest.mark.skipif(CUPY_REASON is not None, reason=CUPY_REASON or "")
def test_cupy_gives_the_numpy_numbers() -> None:  # pragma: no cover - needs a GPU
    import cupy

    x, y = _args("branchy", "arrays")
    got = symgrad.grad(branchy, wrt=("x", "y"), backend="cupy")(cupy.asarray(x), cupy.asarray(y))
    assert_same(tuple(cupy.asnumpy(g) for g in got), symgrad.grad(branchy, wrt=("x", "y"))(x, y))


def kept_logistic(x, r):
    for _i in range(100):
        if x > 0.5:
            x = x + 0.001 * r * x * (1 - x)
        else:
            x = x + 0.002 * np.sin(r * x)
    return x


@pytest.mark.parametrize("name", ["branchy", "kept_logistic"])
def test_the_cupy_program_computes_the_numpy_numbers(name: str) -> None:
    # No GPU here: NumPy stands in for the `cupy` module (the same API) to run the program
    # CuPyArrayPrinter printed, so that its numbers are checked where cupy cannot run.
    import scipy.special

    from symgrad import diff, emit, parse, rewrite, trace

    fn = branchy if name == "branchy" else kept_logistic
    primal = rewrite.stabilize(trace.trace(parse.load(fn), {}))
    gradient = diff.reverse(primal, list(primal.inputs), [1])
    kernel = emit.emit(gradient, f"grad_{name}", "gradient", module="cupy")
    assert kernel.module_source is not None and "cupy." in kernel.module_source
    assert "numpy." not in kernel.module_source.split('"""')[-1]  # the code, past the docstring
    assert name == "branchy" or "for _i in range(100):" in kernel.module_source  # a kept loop
    namespace = {"cupy": np, "math": math, "sg": backends._xp_runtime(np), "scipy_special": scipy.special}
    program = backends._compile(kernel.module_source, kernel.name, "cupy", namespace)
    x, y = _args("branchy", "arrays")
    args = (x, y) if name == "branchy" else (np.linspace(0.1, 0.9, 7), y)
    assert_same(program(*args), kernel.array_fn(*args))


# --- Dask: the NumPy backend on lazy arrays --------------------------------------------------------


def _refuse_to_compute(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("symgrad computed a Dask array while building the gradient")


@needs_dask
@pytest.mark.parametrize("kind", ["grad", "value_and_grad", "jacobian", "vjp"])
def test_dask_arrays_stay_lazy(kind: str) -> None:
    import dask
    import dask.array as da

    x, y = _args("branchy", "arrays")
    lazy = (da.from_array(x, chunks=3), da.from_array(y, chunks=3))
    with dask.config.set(scheduler=_refuse_to_compute):
        got = _call(kind, "branchy", "numpy", lazy)
    assert all(isinstance(leaf, da.Array) for leaf in _leaves(got))
    with dask.config.set(scheduler="threads"), np.errstate(all="ignore"):
        computed = dask.compute(*_leaves(got))
    assert_same(list(computed), _leaves(_call(kind, "branchy", "numpy", (x, y))))


@needs_dask
@needs_numba
@pytest.mark.parametrize("case", ["arrays", "broadcast"])
def test_dask_arrays_get_the_numba_loop_per_chunk(case: str) -> None:
    """A Dask array (with a NumPy array beside it) on the numba backend: the fused loop mapped
    over the chunks, lazily; the gradient of the broadcast argument is summed lazily."""
    import dask
    import dask.array as da

    x, y = _args("branchy", case)
    with dask.config.set(scheduler=_refuse_to_compute):
        got = _call("value_and_grad", "branchy", "numba", (da.from_array(x, chunks=3), y))
    assert all(isinstance(leaf, da.Array) for leaf in _leaves(got))
    graph = dict(got[0].__dask_graph__())
    assert any("ChunkKernel" in repr(task) for task in graph.values())  # numba's loop, per chunk
    expected = _leaves(_call("value_and_grad", "branchy", "numpy", (x, y)))
    with dask.config.set(scheduler="threads"), np.errstate(all="ignore"):
        assert_same(list(dask.compute(*_leaves(got))), expected)


@needs_dask
@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=needs_numba)])
def test_dask_runs_a_kept_loop_per_chunk_lazily(backend: str) -> None:
    """An elementwise program with a kept loop (100 Euler steps) on Dask: lazy, and each chunk
    runs the whole program, its forward and reverse loops included."""
    import dask
    import dask.array as da

    from tests import loop_cases

    x = np.linspace(0.1, 0.9, 10)
    with dask.config.set(scheduler=_refuse_to_compute):
        got = symgrad.grad(loop_cases.euler, wrt=(0, 1), backend=backend)(da.from_array(x, chunks=4), 2.0)
    assert all(isinstance(leaf, da.Array) for leaf in got)
    if backend == "numba":
        assert any("ChunkKernel" in repr(task) for task in dict(got[0].__dask_graph__()).values())
    with dask.config.set(scheduler="threads"):
        computed = dask.compute(*got)
    for lazy, eager in zip(computed, symgrad.grad(loop_cases.euler, wrt=(0, 1))(x, 2.0)):
        np.testing.assert_allclose(lazy, eager, rtol=1e-12)


@needs_dask
def test_dask_gradient_of_a_broadcast_scalar_is_summed_lazily() -> None:
    import dask
    import dask.array as da

    x = np.linspace(-1.0, 1.0, 10)
    with dask.config.set(scheduler=_refuse_to_compute):
        gx, gy = symgrad.grad(branchy, wrt=every_parameter(branchy))(da.from_array(x, chunks=4), 2.0)
    assert isinstance(gy, da.Array) and gy.shape == ()
    expected = symgrad.grad(branchy, wrt=every_parameter(branchy))(x, 2.0)
    assert_same([float(gx.sum().compute()), float(gy.compute())], [float(np.sum(expected[0])), expected[1]])


def _cluster_array() -> Any:
    """A 1e8-element array (763 MiB) in 100 chunks, built lazily."""
    import dask.array as da

    return da.linspace(-5.0, 5.0, 100_000_000, chunks=1_000_000)


@functools.cache
def _cluster_reference() -> float:
    """The NumPy backend in this process, one chunk at a time (the same for every backend)."""
    plain = symgrad.grad(smooth)
    return math.fsum(
        float(np.sum(plain(block.compute(scheduler="synchronous")))) for block in _cluster_array().blocks
    )


@pytest.fixture(scope="module")
def cluster_client() -> Any:
    """2 worker processes, started once for the tests that use them (a start takes seconds);
    not the default scheduler, so no other test's `compute` reaches it."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


@needs_dask
@pytest.mark.skipif(not HAS_DISTRIBUTED, reason="distributed is not installed (pip install 'symgrad[dask]')")
@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=needs_numba)])
def test_dask_local_cluster_sums_the_gradient(cluster_client: Any, backend: str) -> None:
    """2 worker processes, a 1e8-element array (763 MiB) in 100 chunks, the gradient summed
    lazily on the cluster; on the numba backend the workers receive the kernel module by value.
    The reference: the NumPy backend in this process, one chunk at a time."""
    total = symgrad.grad(smooth, backend=backend)(_cluster_array()).sum()
    got = float(cluster_client.compute(total).result())
    assert got == pytest.approx(_cluster_reference(), rel=1e-10)


@needs_dask
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_dask_gradient_holds_a_few_chunks_not_the_array(backend: str) -> None:
    """Each chunk runs the whole program (numpy: freeing its temporaries as it goes; numba:
    one fused loop), so memory is a few chunks whatever the array's size: 40 chunks here,
    computed one at a time (the synchronous scheduler) and measured by tracemalloc."""
    if backend == "numba" and not HAS_NUMBA:
        pytest.skip("numba is not installed (pip install 'symgrad[numba]')")
    import tracemalloc

    import dask.array as da

    chunk = 250_000
    g = symgrad.grad(smooth, backend=backend)
    total = g(da.linspace(-5.0, 5.0, 40 * chunk, chunks=chunk)).sum()
    g(da.linspace(-5.0, 5.0, chunk, chunks=chunk)).sum().compute(scheduler="synchronous")  # compiled
    tracemalloc.start()
    try:
        got = float(total.compute(scheduler="synchronous"))
        peak_chunks = tracemalloc.get_traced_memory()[1] / (chunk * 8)
    finally:
        tracemalloc.stop()
    assert got == pytest.approx(
        float(np.sum(symgrad.grad(smooth)(np.linspace(-5.0, 5.0, 40 * chunk)))), rel=1e-10
    )
    # measured: 7 chunks on the NumPy program (input, output and its live temporaries), 2 on numba's
    assert peak_chunks < (8.5 if backend == "numpy" else 3.0), f"{peak_chunks:.1f} chunks at the peak"


# --- the corpus of user-style functions, through every backend --------------------------------------


def _corpus() -> list[Any]:
    from tests.corpus import CORPUS

    return CORPUS


def _corpus_leaves(result: Any) -> list[Any]:
    value, gradients = result
    return [value, *(gradients if isinstance(gradients, tuple) else (gradients,))]


@pytest.mark.parametrize("backend", ["numba", "jax", "dask", "dask+numba"])
@pytest.mark.parametrize("case", _corpus(), ids=lambda c: c.id)
def test_corpus_gives_the_numpy_numbers(case: Any, backend: str) -> None:
    """Each corpus function's value and gradient on an array of its sample points."""
    needs = {"numba": HAS_NUMBA, "jax": HAS_JAX, "dask": HAS_DASK, "dask+numba": HAS_DASK and HAS_NUMBA}
    if not needs[backend]:
        pytest.skip(f"{backend} is not installed (pip install 'symgrad[{backend.replace('+', ',')}]')")
    points = np.array(case.points, dtype=np.float64)
    args = [points[:, i].copy() for i in range(points.shape[1])]
    with np.errstate(all="ignore"):
        expected = _corpus_leaves(symgrad.value_and_grad(case.fn, wrt=all_partials(case.fn))(*args))
    if backend == "numba":
        got = _corpus_leaves(
            symgrad.value_and_grad(case.fn, wrt=all_partials(case.fn), backend="numba")(*args)
        )
    elif backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        got = _corpus_leaves(
            symgrad.value_and_grad(case.fn, wrt=all_partials(case.fn), backend="jax")(
                *map(jax.numpy.asarray, args)
            )
        )
    else:
        import dask
        import dask.array as da

        on = "numba" if backend == "dask+numba" else "numpy"
        with dask.config.set(scheduler=_refuse_to_compute):
            lazy = _corpus_leaves(
                symgrad.value_and_grad(case.fn, wrt=all_partials(case.fn), backend=on)(
                    *[da.from_array(a, chunks=2) for a in args]
                )
            )
        with dask.config.set(scheduler="threads"), np.errstate(all="ignore"):
            got = list(dask.compute(*lazy))
    got_flat = np.concatenate([np.ravel(np.asarray(g, dtype=np.float64)) for g in got])
    expected_flat = np.concatenate([np.ravel(e) for e in expected])
    scale = max(1.0, float(np.nanmax(np.abs(expected_flat))))  # cancellations: one bit of the terms
    np.testing.assert_allclose(got_flat, expected_flat, rtol=1e-12, atol=1e-15 * scale, equal_nan=True)


# --- user source that mentions `sg.` (S13) ----------------------------------------------------------

sg = symgrad  # what `import symgrad as sg` binds


def uses_sg_alias(x, y):
    # the user's lines, which the generated code quotes, read `sg.` here and below
    return x * sg.stop_gradient(x) + np.sin(y) * x


@needs_numba
def test_S13_numba_runs_user_code_that_mentions_sg() -> None:
    g = symgrad.value_and_grad(uses_sg_alias, wrt=(0, 1), backend="numba")
    x, y = np.linspace(-2.0, 2.0, 7), np.linspace(0.5, 3.0, 7)
    value, (dx, dy) = g(x, y)
    assert "numba.prange" in g.source  # the fused loop, not the NumPy program
    assert "sg.stop_gradient(x)" in g.source  # ... although the quoted user line reads `sg.`
    # the function itself, and its derivative by hand: stop_gradient(x) is a constant
    np.testing.assert_allclose(value, uses_sg_alias(x, y), rtol=1e-12)
    np.testing.assert_allclose(dx, x + np.sin(y), rtol=1e-12)
    np.testing.assert_allclose(dy, x * np.cos(y), rtol=1e-12)
    on_floats = g(0.5, 1.5)
    assert on_floats[0] == pytest.approx(uses_sg_alias(0.5, 1.5), rel=1e-12)
    assert on_floats[1] == pytest.approx((0.5 + math.sin(1.5), 0.5 * math.cos(1.5)), rel=1e-12)


def test_S13_numba_support_is_read_from_the_code_not_its_comments() -> None:
    quoting = '''def f(x):
    """grad of sg.f with respect to x; generated by symgrad."""
    # line 3: return sg.stop_gradient(scipy_special.erf(x))
    return (x,)
'''
    calling = '''def f(x):
    """grad of f with respect to x; generated by symgrad."""
    return (scipy_special.erf(x),)
'''
    assert backends._numba_supported(quoting)
    assert not backends._numba_supported(calling)
    assert not backends._numba_supported(calling.replace("scipy_special.erf", "sg.sigmoid"))
