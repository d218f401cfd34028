"""Array updates and indexing (tests/indexing_cases.py) against NumPy, finite differences and
PyTorch float64: item updates with value semantics, fancy / masked / step indexing, `None`
and `...`, unpacking arrays, and the array methods; then the refusals, each with a hint that works."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgrad
from symgrad import arrays, hessian, jacobian, jvp, value_and_grad, vjp
from tests import indexing_cases as cases

torch_oracle = pytest.importorskip("torch_oracle", reason="PyTorch checks need the torch extra")

RNG = np.random.default_rng(7)
TOL = {"rtol": 1e-6, "atol": 1e-7}


@dataclass
class Case:
    fn: Any
    args: tuple[Any, ...]
    static: tuple[str, ...] = ()
    wrt: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.wrt:
            names = list(inspect.signature(self.fn).parameters)
            self.wrt = tuple(n for n in names if n not in self.static)

    @property
    def id(self) -> str:
        return self.fn.__name__


def _x(*shape: int) -> np.ndarray:
    return RNG.uniform(-1.0, 1.0, size=shape)


CASES = [
    Case(cases.fancy_list, (_x(4),)),
    Case(cases.fancy_module, (_x(4),)),
    Case(cases.fancy_rows, (_x(2, 3), _x(3))),
    Case(cases.fancy_pairs, (_x(3, 3),)),
    Case(cases.masked, (_x(4),)),
    Case(cases.local_index, (_x(4),)),
    Case(cases.outer_by_newaxis, (_x(3),)),
    Case(cases.newaxis_spelled, (_x(3),)),
    Case(cases.ellipsis, (_x(2, 3),)),
    Case(cases.reversed_steps, (_x(4),)),
    Case(cases.every_other, (_x(4),)),
    Case(cases.column_and_row, (_x(2, 3),)),
    Case(cases.unpack_pair, (_x(2),)),
    Case(cases.unpack_rows, (_x(2, 3),)),
    Case(cases.static_index, (_x(3, 3), (1, 2)), static=("idx",)),
    Case(cases.set_item, (_x(4),)),
    Case(cases.set_argument, (_x(3),)),
    Case(cases.add_to_item, (_x(4),)),
    Case(cases.set_slices, (_x(4),)),
    Case(cases.set_column, (_x(2, 3), _x(2))),
    Case(cases.set_row_number, (_x(2, 3),)),
    Case(cases.set_mask, (_x(4),)),
    Case(cases.set_fancy, (_x(4),)),
    Case(cases.through_alias, (_x(3),)),
    Case(cases.helper_writes, (_x(3),)),
    Case(cases.recurrence, (_x(5),)),
    Case(cases.reshape_tuple, (_x(6), _x(3))),
    Case(cases.reshape_ints, (_x(6),)),
    Case(cases.ravel_flatten, (_x(2, 3),)),
    Case(cases.squeeze_expand, (_x(3),)),
    Case(cases.reshape_function, (_x(6),)),
    Case(cases.astype_clip_copy, (_x(5),)),
    Case(cases.transposes, (_x(2, 3), _x(2))),
    Case(cases.method_reductions, (_x(2, 3),)),
    Case(cases.method_dot, (_x(4),)),
    Case(cases.trace_offsets, (_x(3, 3),)),
    Case(cases.squeeze_method, (_x(3, 3),)),
]
PARAMS = [pytest.param(c, id=c.id) for c in CASES]


def central_diff(fn, args, i, h=1e-4, richardson=True):
    """d fn(*args) / d args[i] for a scalar-valued `fn` of arrays, by Richardson-extrapolated
    central differences (tests/helpers.py's version broadcasts the value over the inputs)."""
    del richardson
    args = [np.array(a, dtype=float) if isinstance(a, np.ndarray) else a for a in args]
    out = np.zeros(np.shape(args[i]))
    for index in np.ndindex(out.shape):

        def at(delta, index=index):
            moved = list(args)
            moved[i] = np.array(args[i])
            moved[i][index] += delta
            return float(fn(*moved))

        def diff(step):
            return (at(step) - at(-step)) / (2.0 * step)

        out[index] = (4.0 * diff(h / 2.0) - diff(h)) / 3.0
    return out


def _copies(args: tuple[Any, ...]) -> list[Any]:
    return [np.array(a) if isinstance(a, np.ndarray) else a for a in args]


def _numpy(case: Case) -> Any:
    return case.fn(*_copies(case.args))  # on copies: the function may write into its arguments


def _positions(case: Case) -> list[int]:
    names = list(inspect.signature(case.fn).parameters)
    return [names.index(n) for n in case.wrt]


def _weights(value: Any) -> Any:
    return RNG.uniform(0.5, 1.5, size=np.shape(value)) if np.ndim(value) else 1.0


def _grads(result: Any, n: int) -> tuple[Any, ...]:
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("case", PARAMS)
def test_value_and_pullback_against_numpy_and_finite_differences(case):
    want = _numpy(case)
    args = _copies(case.args)
    value, pullback = vjp(case.fn, wrt=case.wrt, static=case.static)(*args)
    for got, before in zip(args, case.args):  # the generated code never writes an argument
        np.testing.assert_array_equal(got, before)
    np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-14)
    weights = _weights(want)
    grads = _grads(pullback(weights), len(case.wrt))

    def weighted(*a):
        return np.sum(weights * case.fn(*_copies(a)))

    for i, got in zip(_positions(case), grads):
        expected = central_diff(weighted, list(case.args), i, richardson=True)
        np.testing.assert_allclose(got, expected, **TOL)


def _torch_fn(case: Case) -> tuple[Any, list[Any]]:
    """The torch twin of the case, with its static arguments bound, and the other arguments."""
    namespace = torch_oracle.load(Path(cases.__file__).read_text(), "indexing_cases")
    names = list(inspect.signature(case.fn).parameters)
    static = {n: a for n, a in zip(names, case.args) if n in case.static}
    dynamic = [a for n, a in zip(names, case.args) if n not in case.static]
    twin = namespace[case.fn.__name__]
    return (lambda *a: twin(*a, **static)), dynamic


@pytest.mark.parametrize("case", PARAMS)
def test_gradient_against_torch(case):
    want = _numpy(case)
    weights = _weights(want)
    twin, dynamic = _torch_fn(case)
    value, grads = torch_oracle.value_and_grad(twin, dynamic, cot=[weights])
    np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-14)
    _, pullback = vjp(case.fn, wrt=case.wrt, static=case.static)(*_copies(case.args))
    for got, expected in zip(_grads(pullback(weights), len(case.wrt)), grads):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


# (torch's double backward refuses `x[2] += x[0] * x[1]`: an in-place update of a saved value)
SECOND = ["fancy_module", "reversed_steps", "set_item", "set_mask", "set_column", "unpack_pair"]
SECOND += ["squeeze_expand", "method_reductions", "trace_offsets", "helper_writes"]


@pytest.mark.parametrize("case", [c for c in PARAMS if c.id in SECOND])
def test_second_order_against_torch(case):
    """hessian(f).sum(axis=0) is d/dx of sum(grad f): torch's double backward."""
    twin, dynamic = _torch_fn(case)
    x = case.args[0]
    if np.ndim(_numpy(case)):
        pytest.skip("second order of a scalar function")
    h = hessian(case.fn, wrt=case.wrt[0], static=case.static)(*_copies(case.args))
    expected = torch_oracle.second(twin, dynamic, 0, 0)
    np.testing.assert_allclose(h.reshape(x.size, x.size).sum(axis=0).reshape(x.shape), expected, **TOL)


JVPS = [
    "fancy_pairs",
    "every_other",
    "set_slices",
    "set_fancy",
    "recurrence",
    "ravel_flatten",
    "set_argument",
]


@pytest.mark.parametrize("case", [c for c in PARAMS if c.id in JVPS])
def test_jvp_and_jacobian_against_torch(case):
    twin, dynamic = _torch_fn(case)
    x = case.args[0]
    tangent = _x(*x.shape)
    value, tangent_out = jvp(case.fn, wrt=case.wrt[0], static=case.static)(
        tuple(_copies(case.args)), (tangent,)
    )
    zeros = [np.zeros(np.shape(a)) for a in dynamic[1:]]
    want_value, want_tangent = torch_oracle.jvp(twin, dynamic, [tangent, *zeros])
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    np.testing.assert_allclose(tangent_out, want_tangent, rtol=1e-10, atol=1e-12)
    J = jacobian(case.fn, wrt=case.wrt[0], static=case.static)(*_copies(case.args))
    out_size = np.size(want_value)
    flat = J.reshape(out_size, x.size) @ tangent.ravel()
    np.testing.assert_allclose(flat, np.ravel(want_tangent), rtol=1e-10, atol=1e-12)


def test_value_and_grad_of_a_recurrence_written_with_item_updates():
    x = _x(6)

    def loss(x):
        return np.sum(cases.recurrence(x) ** 2)

    value, g = value_and_grad(loss)(x)
    assert value == pytest.approx(loss(x.copy()), rel=1e-12)
    np.testing.assert_allclose(g, central_diff(loss, [x], 0, richardson=True), **TOL)


def test_generated_code_copies_and_reads_as_numpy():
    f = symgrad.grad(cases.set_fancy)
    x = _x(4)
    f(x)
    source = f.source
    assert "sg.setitem(" in source and "[[1, 2]]" in source
    g = symgrad.grad(cases.fancy_list)
    np.testing.assert_allclose(g(np.arange(4.0)), [0.0, 0.0, 8.0, 0.0])  # the repeat accumulates
    assert "sg.scatter(" in g.source


def test_a_changed_module_index_array_traces_again():
    f = symgrad.grad(cases.fancy_module)
    x = _x(4)
    before = f(x)
    saved = cases.IDX.copy()
    try:
        cases.IDX[:] = [1, 1, 2]
        after = f(x)
        np.testing.assert_allclose(after, central_diff(cases.fancy_module, [x], 0, richardson=True), **TOL)
        assert not np.allclose(before, after)
    finally:
        cases.IDX[:] = saved


REFUSED = [
    ("view", cases.bad_view_write, cases.fixed_view_write, "t = t.copy()"),
    ("cast", cases.bad_int_cast, cases.fixed_int_cast, "np.floor(x)"),
    ("traced index", cases.bad_traced_index, cases.fixed_traced_index, "np.where(cond, x, 0.0)"),
    ("repeat", cases.bad_repeat_write, cases.fixed_repeat_write, "each index once"),
    ("outside", cases.bad_outside_write, cases.fixed_outside_write, "t = OUTSIDE.copy()"),
    ("list", cases.bad_list_item, cases.fixed_list_item, "xs = xs[:i] + [v] + xs[i + 1 :]"),
]


@pytest.mark.parametrize(("marker", "bad", "fixed", "hint"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refusals_name_the_line_and_their_hint_works(marker, bad, fixed, hint):
    x = _x(4)
    with pytest.raises(symgrad.SymgradError) as info:
        symgrad.grad(bad)(x.copy())
    lines = Path(cases.__file__).read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if f"# BAD: {marker}" in text)
    assert f"indexing_cases.py:{line}:" in str(info.value)
    assert hint in str(info.value)
    value, g = value_and_grad(fixed)(x.copy())
    assert value == pytest.approx(fixed(x.copy()), rel=1e-12)
    np.testing.assert_allclose(g, central_diff(fixed, [x], 0), **TOL)


def test_unpacking_an_array_of_another_length_is_refused():
    with pytest.raises(symgrad.SymgradError, match="length 3 into 2 names"):
        symgrad.grad(cases.bad_unpack_length)(_x(3))


@pytest.mark.parametrize(
    "fn,arg",
    [
        (cases.joined_rows, np.array([[0.5, -1.0], [2.0, 0.3], [1.5, -0.2]])),
        (cases.joined_columns, np.array([[0.5, -1.0], [2.0, 0.3], [1.5, -0.2]])),
        (cases.joined_with_a_range, np.array([0.7, -1.3])),
    ],
    ids=["r_rows", "c_columns", "r_range"],
)
def test_r_and_c_index_tricks(fn, arg):
    value, gradient = value_and_grad(fn)(arg)
    assert value == pytest.approx(fn(arg))
    np.testing.assert_allclose(gradient, central_diff(fn, (arg,), 0), rtol=1e-7, atol=1e-9)


def _diagonal_sum(A):
    return np.sum(np.log(np.diagonal(A)))


def test_long_index_lists_print_as_aranges_and_read_the_same():
    # np.diagonal of a 12 x 12 matrix is a fancy index of [0, ..., 11] twice: printed as
    # numpy.arange, not as two lists of 12 numbers (a 500-point GP printed 1,000 numbers)
    A = np.eye(12) * 2.0 + 0.1
    g = symgrad.value_and_grad(_diagonal_sum)
    value, gradient = g(A)
    assert value == pytest.approx(_diagonal_sum(A), rel=1e-15)
    np.testing.assert_array_equal(gradient, np.diag(1.0 / np.diagonal(A)))
    assert "numpy.arange(0, 12)" in g.source and "11]" not in g.source
    assert arrays.index_text(([5, 3, 1, -1, -3, -5, -7, -9, -11],)) == "numpy.arange(5, -13, -2)"
    assert np.array_equal(
        np.arange(20)[np.arange(5, -13, -2)], np.arange(20)[[5, 3, 1, -1, -3, -5, -7, -9, -11]]
    )
    assert arrays.index_text(([0, 1, 2],)) == "[0, 1, 2]"  # short lists stay lists
