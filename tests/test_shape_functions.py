"""NumPy's shape functions, scans and statistics (issue 15): `np.repeat`, `np.cumsum`,
`np.roll`, `np.std`, `np.tril`, `np.diag`, `np.hstack`, `np.split`, `np.pad`, `np.sort`, ...

Each function's gradient is checked against Richardson central differences of the original
function and against PyTorch float64 autograd of its torch twin (`torch.repeat_interleave`,
`torch.cumsum`, `torch.roll`, `torch.std(correction=ddof)`, ...); its value against NumPy's
own; its jvp against `torch.func.jvp`; its Hessian against torch's. Nothing here shares code
with symgrad. The functions under test are module-level (symgrad reads their source); each
reduces its array result with `score`, a nonlinear sum that weighs every position
differently, so that an element put at the wrong place changes the gradient."""

import contextlib

import numpy as np
import pytest

from symgrad import grad, hessian, jvp, value_and_grad, vjp
from symgrad.errors import SymgradError, TracingError
from tests.helpers import richardson_gradient as fd_gradient

torch = pytest.importorskip("torch", reason="PyTorch checks need the torch extra: pip install torch==2.13.0")

RNG = np.random.default_rng(20260515)
TOL = {"rtol": 1e-10, "atol": 1e-12}
NOT_FINITE = np.array([0.0, np.nan, np.inf, -np.inf, 0.0])  # np.nan_to_num replaces three
IDX = np.array([[2, 0, 0, 1], [1, 1, 3, 0], [0, 2, 1, 3]])  # take_along_axis indices, rows of 4
COORDS = np.array([0.0, 0.3, 0.5, 1.1, 1.2, 2.0])  # np.gradient's uneven coordinates


def score(y):
    """A number from an array: every element weighed by its own position."""
    return np.sum(np.sin(y) * np.cos(0.5 * y + 0.3 * np.arange(y.size).reshape(y.shape)))


def t_score(y):
    weights = 0.3 * torch.arange(y.numel(), dtype=torch.float64).reshape(y.shape)
    return torch.sum(torch.sin(y) * torch.cos(0.5 * y + weights))


def R(*shape):
    return RNG.normal(size=shape)


def distinct(*shape):
    """Well separated values (sorting, max and min have no ties)."""
    return RNG.permutation(np.arange(np.prod(shape))).reshape(shape) * 0.37 + 0.1 * RNG.random(shape)


def away_from_zero(*shape):
    return RNG.uniform(0.5, 1.5, size=shape) * RNG.choice([-1.0, 1.0], size=shape)


# --- user functions (module level: symgrad reads their source) ---------------------------------


def repeat_int(x):
    return score(np.repeat(x, 2, axis=1))


def repeat_flat(x):
    return score(np.repeat(x, 3))


def repeat_counts(x):
    return score(np.repeat(x, [1, 0, 2], axis=0))


def repeat_method(x):
    return score(x.repeat(2, axis=0) * x.repeat(2, axis=0))


def cumsum_axis0(x):
    return score(np.cumsum(x, axis=0))


def cumsum_flat(x):
    return score(np.cumsum(x) ** 2)


def cumsum_method(x):
    return score(x.cumsum(axis=1))


def cumprod_axis1(x):
    return score(np.cumprod(x, axis=1))


def roll_axis(x):
    return score(np.roll(x, 2, axis=1))


def roll_flat(x):
    return score(np.roll(x, -3))


def roll_two_axes(x):
    return score(np.roll(x, (1, -1), axis=(0, 1)))


def swapaxes_fn(x):
    return score(np.swapaxes(x, 0, 2))


def swapaxes_method(x):
    return score(x.swapaxes(0, 1) @ x)


def moveaxis_fn(x):
    return score(np.moveaxis(x, 0, -1))


def rollaxis_fn(x):
    return score(np.rollaxis(x, 2))


def std_axis(x):
    return score(np.std(x, axis=1, ddof=1, keepdims=True))


def var_all(x):
    return np.var(x) + np.var(x * x)


def std_method(x):
    return x.std() * x.var(axis=0, ddof=2).sum()


def var_of_list(x):
    return np.var([x[0], x[1] * 2.0, x[2] + x[0]])


def tril_fn(x):
    return score(np.tril(x, k=1))


def triu_fn(x):
    return score(np.triu(x, -1))


def triu_batched(x):
    return score(np.triu(x))


def diag_vector(x):
    return score(np.diag(x, 1))


def diag_matrix(x):
    return score(np.diag(x, k=-1) * np.diag(x)[1:])


def diagonal_nd(x):
    return score(np.diagonal(x, 1, 0, 2))


def diagonal_method(x):
    return score(x.diagonal() ** 2)


def hstack_fn(x):
    return score(np.hstack([x, 2.0 * x]))


def vstack_fn(x):
    return score(np.vstack([x, np.sin(x)]))


def row_stack_fn(x):
    return score(np.vstack((x[0], x)))


def column_stack_fn(x):
    return score(np.column_stack([x[:, 0], x, x[:, 1] ** 2]))


def dstack_fn(x):
    return score(np.dstack([x, x * x]))


def split_sections(x):
    a, b, c = np.split(x, 3, axis=1)
    return score(a * b + c)


def split_indices(x):
    parts = np.split(x, [1, 3])
    return score(parts[0]) + 2.0 * score(parts[1]) + 3.0 * score(parts[2])


def array_split_fn(x):
    a, b, c = np.array_split(x, 3, axis=0)
    return score(a) + 2.0 * score(b) - score(c)


def hsplit_fn(x):
    a, b = np.hsplit(x, 2)
    return score(a * b)


def vsplit_fn(x):
    a, b = np.vsplit(x, [1])
    return score(a) + 2.0 * score(b)


def dsplit_fn(x):
    a, b = np.dsplit(x, 2)
    return score(a - 2.0 * b)


def append_flat(x):
    return score(np.append(x, x[0] * 3.0))


def append_axis(x):
    return score(np.append(x, x[:1] ** 2, axis=0))


def flip_fn(x):
    return score(np.flip(x, 0))


def flip_all(x):
    return score(np.flip(x))


def fliplr_fn(x):
    return score(np.fliplr(x))


def flipud_fn(x):
    return score(np.flipud(x))


def rot90_fn(x):
    return score(np.rot90(x))


def rot90_three(x):
    return score(np.rot90(x, 3, axes=(1, 2)))


def tile_fn(x):
    return score(np.tile(x, (2, 1, 3)))


def broadcast_to_fn(x):
    return score(np.broadcast_to(x, (3, 2, 4)))


def pad_fn(x):
    return score(np.pad(x, ((1, 2), (0, 1))))


def pad_value(x):
    return score(np.pad(x, 1, constant_values=1.5))


def atleast_2d_fn(x):
    return score(np.atleast_2d(x) @ np.atleast_2d(x).T)


def atleast_3d_fn(x):
    return score(np.atleast_3d(x))


def diff_fn(x):
    return score(np.diff(x, n=2, axis=0))


def diff_last(x):
    return score(np.diff(x))


def average_fn(x):
    return score(np.average(x, axis=1, weights=np.array([1.0, 2.0, 0.5, 3.0])))


def average_traced_weights(x):
    return np.average(x[0], weights=x[1] ** 2)


def ptp_fn(x):
    return score(np.ptp(x, axis=0))


def nansum_fn(x):
    return score(np.nansum(x, axis=1)) + np.nansum(x**2)


def nanmean_fn(x):
    return score(np.nanmean(x, axis=0, keepdims=True)) + np.nanmean(x) ** 2


def sort_fn(x):
    return score(np.sort(x, axis=0))


def sort_flat(x):
    return score(np.sort(x, axis=None))


def take_along_fn(x):
    return score(np.take_along_axis(x, IDX, axis=1))


def linspace_fn(x):
    return score(np.linspace(x[0], x[1], 5))


def linspace_open(x):
    return score(np.linspace(x[0], x[1] * x[0], 4, endpoint=False))


def gradient_even(x):
    return score(np.gradient(x, 0.3, edge_order=2))


def gradient_all_axes(x):
    gx, gy = np.gradient(x)
    return score(gx) + 2.0 * score(gy)


def gradient_axis(x):
    return score(np.gradient(x, 2.0, axis=-1))


def gradient_coords(x):
    return score(np.gradient(x, COORDS, edge_order=2)) + score(np.gradient(x, COORDS))


def gradient_of_coords(t):
    return score(np.gradient(np.sin(t), t, edge_order=2))


# elementwise (issue 15): away from the jumps of mod / fmod and the kinks of copysign, fmax


def mod_fn(x):
    return score(np.mod(x, 0.7) + np.remainder(x[::-1] * 1.3, -0.9) + np.mod(2.5, x))


def fmod_fn(x):
    return score(np.fmod(x, 0.7) * np.fmod(1.7, x))


def sinc_fn(x):
    return score(np.sinc(x))


def logaddexp2_fn(x):
    return score(np.logaddexp2(x, x[::-1] * 2.0))


def fmax_fmin_fn(x):
    return score(np.fmax(x, x[::-1]) - 2.0 * np.fmin(x, 0.3))


def degrees_fn(x):
    return score(np.deg2rad(x * 50.0) + np.radians(x) + np.rad2deg(x) / 50.0 + np.degrees(x) / 60.0)


def copysign_fn(x):
    return score(np.copysign(x, x[::-1]) * x)


def nan_to_num_fn(x):
    return score(np.nan_to_num(x + NOT_FINITE))


# --- torch twins ---------------------------------------------------------------------------------


def t_repeat_int(x):
    return t_score(torch.repeat_interleave(x, 2, dim=1))


def t_repeat_flat(x):
    return t_score(torch.repeat_interleave(x, 3))


def t_repeat_counts(x):
    return t_score(torch.repeat_interleave(x, torch.tensor([1, 0, 2]), dim=0))


def t_repeat_method(x):
    y = torch.repeat_interleave(x, 2, dim=0)
    return t_score(y * y)


def t_cumsum_axis0(x):
    return t_score(torch.cumsum(x, 0))


def t_cumsum_flat(x):
    return t_score(torch.cumsum(x.reshape(-1), 0) ** 2)


def t_cumsum_method(x):
    return t_score(torch.cumsum(x, 1))


def t_cumprod_axis1(x):
    return t_score(torch.cumprod(x, 1))


def t_roll_axis(x):
    return t_score(torch.roll(x, 2, 1))


def t_roll_flat(x):
    return t_score(torch.roll(x, -3))


def t_roll_two_axes(x):
    return t_score(torch.roll(x, (1, -1), (0, 1)))


def t_swapaxes_fn(x):
    return t_score(torch.swapaxes(x, 0, 2))


def t_swapaxes_method(x):
    return t_score(x.swapaxes(0, 1) @ x)


def t_moveaxis_fn(x):
    return t_score(torch.movedim(x, 0, -1))


def t_rollaxis_fn(x):
    return t_score(torch.movedim(x, 2, 0))


def t_std_axis(x):
    return t_score(torch.std(x, dim=1, correction=1, keepdim=True))


def t_var_all(x):
    return torch.var(x, correction=0) + torch.var(x * x, correction=0)


def t_std_method(x):
    return torch.std(x, correction=0) * torch.var(x, dim=0, correction=2).sum()


def t_var_of_list(x):
    return torch.var(torch.stack([x[0], x[1] * 2.0, x[2] + x[0]]), correction=0)


def t_tril_fn(x):
    return t_score(torch.tril(x, 1))


def t_triu_fn(x):
    return t_score(torch.triu(x, -1))


def t_triu_batched(x):
    return t_score(torch.triu(x))


def t_diag_vector(x):
    return t_score(torch.diag(x, 1))


def t_diag_matrix(x):
    return t_score(torch.diag(x, -1) * torch.diag(x)[1:])


def t_diagonal_nd(x):
    return t_score(torch.diagonal(x, 1, 0, 2))


def t_diagonal_method(x):
    return t_score(torch.diagonal(x) ** 2)


def t_hstack_fn(x):
    return t_score(torch.hstack([x, 2.0 * x]))


def t_vstack_fn(x):
    return t_score(torch.vstack([x, torch.sin(x)]))


def t_row_stack_fn(x):
    return t_score(torch.vstack((x[0], x)))


def t_column_stack_fn(x):
    return t_score(torch.column_stack([x[:, 0], x, x[:, 1] ** 2]))


def t_dstack_fn(x):
    return t_score(torch.dstack([x, x * x]))


def t_split_sections(x):
    a, b, c = torch.tensor_split(x, 3, dim=1)
    return t_score(a * b + c)


def t_split_indices(x):
    parts = torch.tensor_split(x, [1, 3])
    return t_score(parts[0]) + 2.0 * t_score(parts[1]) + 3.0 * t_score(parts[2])


def t_array_split_fn(x):
    a, b, c = torch.tensor_split(x, 3, dim=0)
    return t_score(a) + 2.0 * t_score(b) - t_score(c)


def t_hsplit_fn(x):
    a, b = torch.hsplit(x, 2)
    return t_score(a * b)


def t_vsplit_fn(x):
    a, b = torch.vsplit(x, [1])
    return t_score(a) + 2.0 * t_score(b)


def t_dsplit_fn(x):
    a, b = torch.dsplit(x, 2)
    return t_score(a - 2.0 * b)


def t_append_flat(x):
    return t_score(torch.cat([x.reshape(-1), (x[0] * 3.0).reshape(-1)]))


def t_append_axis(x):
    return t_score(torch.cat([x, x[:1] ** 2], 0))


def t_flip_fn(x):
    return t_score(torch.flip(x, [0]))


def t_flip_all(x):
    return t_score(torch.flip(x, list(range(x.dim()))))


def t_fliplr_fn(x):
    return t_score(torch.fliplr(x))


def t_flipud_fn(x):
    return t_score(torch.flipud(x))


def t_rot90_fn(x):
    return t_score(torch.rot90(x))


def t_rot90_three(x):
    return t_score(torch.rot90(x, 3, [1, 2]))


def t_tile_fn(x):
    return t_score(torch.tile(x, (2, 1, 3)))


def t_broadcast_to_fn(x):
    return t_score(torch.broadcast_to(x, (3, 2, 4)))


def t_pad_fn(x):
    return t_score(torch.nn.functional.pad(x, (0, 1, 1, 2)))


def t_pad_value(x):
    return t_score(torch.nn.functional.pad(x, (1, 1, 1, 1), value=1.5))


def t_atleast_2d_fn(x):
    return t_score(torch.atleast_2d(x) @ torch.atleast_2d(x).T)


def t_atleast_3d_fn(x):
    return t_score(torch.atleast_3d(x))


def t_diff_fn(x):
    return t_score(torch.diff(x, n=2, dim=0))


def t_diff_last(x):
    return t_score(torch.diff(x))


def t_average_fn(x):
    w = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    return t_score((x * w).sum(1) / w.sum())


def t_average_traced_weights(x):
    w = x[1] ** 2
    return (x[0] * w).sum() / w.sum()


def t_ptp_fn(x):
    return t_score(torch.amax(x, 0) - torch.amin(x, 0))


def t_nansum_fn(x):
    return t_score(torch.nansum(x, 1)) + torch.nansum(x**2)


def t_nanmean_fn(x):
    return t_score(torch.nanmean(x, 0, keepdim=True)) + torch.nanmean(x) ** 2


def t_sort_fn(x):
    return t_score(torch.sort(x, dim=0).values)


def t_sort_flat(x):
    return t_score(torch.sort(x.reshape(-1)).values)


def t_take_along_fn(x):
    return t_score(torch.take_along_dim(x, torch.tensor(IDX), dim=1))


def t_linspace_fn(x):
    steps = torch.arange(5, dtype=torch.float64)
    line = x[0] + steps * (x[1] - x[0]) / 4
    return t_score(torch.cat([line[:-1], x[1:2]]))


def t_linspace_open(x):
    steps = torch.arange(4, dtype=torch.float64)
    return t_score(x[0] + steps * (x[1] * x[0] - x[0]) / 4)


def t_gradient_even(x):
    return t_score(torch.gradient(x, spacing=0.3, edge_order=2)[0])


def t_gradient_all_axes(x):
    gx, gy = torch.gradient(x)
    return t_score(gx) + 2.0 * t_score(gy)


def t_gradient_axis(x):
    return t_score(torch.gradient(x, spacing=2.0, dim=-1)[0])


def t_gradient_coords(x):
    coords = (torch.tensor(COORDS),)
    return t_score(torch.gradient(x, spacing=coords, edge_order=2)[0]) + t_score(
        torch.gradient(x, spacing=coords)[0]
    )


def t_gradient_of_coords(t):
    return t_score(torch.gradient(torch.sin(t), spacing=(t,), edge_order=2)[0])


def t_mod_fn(x):
    def mod(a, b):  # Python's sign convention (the divisor's), as np.mod: torch.remainder
        return torch.remainder(a, b)

    b = torch.tensor(2.5, dtype=torch.float64)
    return t_score(mod(x, 0.7) + mod(torch.flip(x, [0]) * 1.3, -0.9) + mod(b, x))


def t_fmod_fn(x):
    return t_score(torch.fmod(x, 0.7) * torch.fmod(torch.tensor(1.7, dtype=torch.float64), x))


def t_sinc_fn(x):
    return t_score(torch.sinc(x))


def t_logaddexp2_fn(x):
    return t_score(torch.logaddexp2(x, torch.flip(x, [0]) * 2.0))


def t_fmax_fmin_fn(x):
    return t_score(
        torch.fmax(x, torch.flip(x, [0])) - 2.0 * torch.fmin(x, torch.tensor(0.3, dtype=torch.float64))
    )


def t_degrees_fn(x):
    return t_score(
        torch.deg2rad(x * 50.0) + torch.deg2rad(x) + torch.rad2deg(x) / 50.0 + torch.rad2deg(x) / 60.0
    )


def t_copysign_fn(x):
    return t_score(torch.copysign(x, torch.flip(x, [0])) * x)


def t_nan_to_num_fn(x):
    shift = torch.tensor([0.0, float("nan"), float("inf"), -float("inf"), 0.0], dtype=torch.float64)
    return t_score(torch.nan_to_num(x + shift))


def partition_rows(x):
    # rows 0 and 1 of a partition at kth=1 are the smallest two in order; the rest NumPy's
    # own order (test_partition_moves_gradients_as_its_permutation checks those)
    return score(np.partition(x, 1, axis=0)[:2])


def t_partition_rows(x):
    return t_score(torch.sort(x, dim=0).values[:2])


def select_pieces(x):
    return score(np.select([x > 0.5, x < -0.5], [x**2, 3.0 * x], default=np.sin(x)))


def t_select_pieces(x):
    return t_score(torch.where(x > 0.5, x**2, torch.where(x < -0.5, 3.0 * x, torch.sin(x))))


def dtype_read(x):
    return score((2.0 * x).astype(x.dtype))


def t_dtype_read(x):
    return t_score(2.0 * x)


CASES = [  # (function, torch twin, argument maker)
    (partition_rows, t_partition_rows, lambda: distinct(4, 3)),
    (select_pieces, t_select_pieces, lambda: R(3, 4)),
    (dtype_read, t_dtype_read, lambda: R(2, 3)),
    (repeat_int, t_repeat_int, lambda: R(3, 2, 4)),
    (repeat_flat, t_repeat_flat, lambda: R(2, 3)),
    (repeat_counts, t_repeat_counts, lambda: R(3, 2)),
    (repeat_method, t_repeat_method, lambda: R(2, 3)),
    (cumsum_axis0, t_cumsum_axis0, lambda: R(4, 3)),
    (cumsum_flat, t_cumsum_flat, lambda: R(3, 4)),
    (cumsum_method, t_cumsum_method, lambda: R(3, 4)),
    (cumprod_axis1, t_cumprod_axis1, lambda: away_from_zero(3, 4)),
    (roll_axis, t_roll_axis, lambda: R(4, 5)),
    (roll_flat, t_roll_flat, lambda: R(3, 4)),
    (roll_two_axes, t_roll_two_axes, lambda: R(3, 4)),
    (swapaxes_fn, t_swapaxes_fn, lambda: R(2, 3, 4)),
    (swapaxes_method, t_swapaxes_method, lambda: R(3, 2)),
    (moveaxis_fn, t_moveaxis_fn, lambda: R(2, 3, 4)),
    (rollaxis_fn, t_rollaxis_fn, lambda: R(2, 3, 4)),
    (std_axis, t_std_axis, lambda: R(3, 4)),
    (var_all, t_var_all, lambda: R(3, 4)),
    (std_method, t_std_method, lambda: R(4, 3)),
    (var_of_list, t_var_of_list, lambda: R(3)),
    (tril_fn, t_tril_fn, lambda: R(4, 4)),
    (triu_fn, t_triu_fn, lambda: R(3, 5)),
    (triu_batched, t_triu_batched, lambda: R(2, 3, 3)),
    (diag_vector, t_diag_vector, lambda: R(3)),
    (diag_matrix, t_diag_matrix, lambda: R(4, 4)),
    (diagonal_nd, t_diagonal_nd, lambda: R(3, 2, 4)),
    (diagonal_method, t_diagonal_method, lambda: R(3, 4)),
    (hstack_fn, t_hstack_fn, lambda: R(2, 3)),
    (vstack_fn, t_vstack_fn, lambda: R(3)),
    (row_stack_fn, t_row_stack_fn, lambda: R(2, 3)),
    (column_stack_fn, t_column_stack_fn, lambda: R(3, 2)),
    (dstack_fn, t_dstack_fn, lambda: R(2, 3)),
    (split_sections, t_split_sections, lambda: R(2, 6)),
    (split_indices, t_split_indices, lambda: R(5, 2)),
    (array_split_fn, t_array_split_fn, lambda: R(7, 2)),
    (hsplit_fn, t_hsplit_fn, lambda: R(3, 4)),
    (vsplit_fn, t_vsplit_fn, lambda: R(3, 4)),
    (dsplit_fn, t_dsplit_fn, lambda: R(2, 2, 4)),
    (append_flat, t_append_flat, lambda: R(2, 3)),
    (append_axis, t_append_axis, lambda: R(2, 3)),
    (flip_fn, t_flip_fn, lambda: R(3, 4)),
    (flip_all, t_flip_all, lambda: R(2, 3, 2)),
    (fliplr_fn, t_fliplr_fn, lambda: R(3, 4)),
    (flipud_fn, t_flipud_fn, lambda: R(3, 4)),
    (rot90_fn, t_rot90_fn, lambda: R(3, 4)),
    (rot90_three, t_rot90_three, lambda: R(2, 3, 4)),
    (tile_fn, t_tile_fn, lambda: R(2, 3)),
    (broadcast_to_fn, t_broadcast_to_fn, lambda: R(2, 1)),
    (pad_fn, t_pad_fn, lambda: R(2, 3)),
    (pad_value, t_pad_value, lambda: R(2, 3)),
    (atleast_2d_fn, t_atleast_2d_fn, lambda: R(3)),
    (atleast_3d_fn, t_atleast_3d_fn, lambda: R(2, 3)),
    (diff_fn, t_diff_fn, lambda: R(5, 3)),
    (diff_last, t_diff_last, lambda: R(3, 4)),
    (average_fn, t_average_fn, lambda: R(3, 4)),
    (average_traced_weights, t_average_traced_weights, lambda: R(2, 5)),
    (ptp_fn, t_ptp_fn, lambda: distinct(4, 3)),
    (nansum_fn, t_nansum_fn, lambda: R(3, 4)),
    (nanmean_fn, t_nanmean_fn, lambda: R(3, 4)),
    (sort_fn, t_sort_fn, lambda: distinct(4, 3)),
    (sort_flat, t_sort_flat, lambda: distinct(3, 3)),
    (take_along_fn, t_take_along_fn, lambda: R(3, 4)),
    (linspace_fn, t_linspace_fn, lambda: R(2)),
    (linspace_open, t_linspace_open, lambda: R(2)),
    (gradient_even, t_gradient_even, lambda: R(6)),
    (gradient_all_axes, t_gradient_all_axes, lambda: R(3, 4)),
    (gradient_axis, t_gradient_axis, lambda: R(2, 3, 2)),
    (gradient_coords, t_gradient_coords, lambda: R(6)),
    (gradient_of_coords, t_gradient_of_coords, lambda: np.sort(distinct(5))),
    (mod_fn, t_mod_fn, lambda: np.array([0.31, -1.2, 2.05, 0.93, -0.44])),
    (fmod_fn, t_fmod_fn, lambda: np.array([0.31, -1.2, 2.05, 0.93, -0.44])),
    (sinc_fn, t_sinc_fn, lambda: R(5)),
    (logaddexp2_fn, t_logaddexp2_fn, lambda: R(5)),
    (fmax_fmin_fn, t_fmax_fmin_fn, lambda: distinct(5) - 0.7),
    (degrees_fn, t_degrees_fn, lambda: R(5)),
    (copysign_fn, t_copysign_fn, lambda: away_from_zero(5)),
    (nan_to_num_fn, t_nan_to_num_fn, lambda: R(5)),
]
IDS = [case[0].__name__ for case in CASES]


def torch_gradient(torch_fn, x):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    torch_fn(t).backward()
    return t.grad.numpy()


# --- first order: reverse mode -----------------------------------------------------------------


@pytest.mark.parametrize("fn,torch_fn,make", CASES, ids=IDS)
def test_gradient_against_torch_and_finite_differences(fn, torch_fn, make):
    x = make()
    got = grad(fn)(x)
    assert isinstance(got, np.ndarray) and got.shape == x.shape
    np.testing.assert_allclose(got, fd_gradient(fn, [x]), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(got, torch_gradient(torch_fn, x), **TOL)


@pytest.mark.parametrize("fn,torch_fn,make", CASES, ids=IDS)
def test_value_is_numpys_own(fn, torch_fn, make):
    x = make()
    value, _ = value_and_grad(fn)(x)
    assert type(value) is float
    # the same NumPy calls, except that symgrad multiplies by 1/n where NumPy divides by n
    np.testing.assert_allclose(value, fn(x), rtol=1e-14, atol=1e-15)


# --- forward mode and second order --------------------------------------------------------------


@pytest.mark.parametrize("fn,torch_fn,make", CASES, ids=IDS)
def test_jvp_against_torch(fn, torch_fn, make):
    x = make()
    tangent = RNG.normal(size=x.shape)
    value, got = jvp(fn)((x,), (tangent,))
    t_value, expected = torch.func.jvp(torch_fn, (torch.tensor(x),), (torch.tensor(tangent),))
    np.testing.assert_allclose(value, t_value.item(), **TOL)
    np.testing.assert_allclose(got, expected.item(), **TOL)


@pytest.mark.parametrize("fn,torch_fn,make", CASES, ids=IDS)
def test_hessian_against_torch(fn, torch_fn, make):
    x = make()
    got = hessian(fn)(x)
    expected = torch.autograd.functional.hessian(torch_fn, torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


# --- values exactly NumPy's, code NumPy's own calls ---------------------------------------------


def shape_only(x):
    return np.sum(np.cumsum(np.roll(np.repeat(np.tile(x, (2, 1)), 2, axis=1), 3, axis=0), axis=1) ** 3)


def test_composed_value_is_numpys_bit_for_bit():
    x = R(3, 4)
    value, g = value_and_grad(shape_only)(x)
    assert value == shape_only(x)
    np.testing.assert_allclose(g, fd_gradient(shape_only, [x]), rtol=1e-7, atol=1e-8)


def cumsum_both_ways(x):
    return np.sum(np.cumsum(x, axis=1) * np.sort(x, axis=1))


def test_generated_code_calls_numpys_scans():
    vg = value_and_grad(cumsum_both_ways)
    vg(distinct(3, 4))
    source = vg.source
    assert "numpy.cumsum(x, axis=1)" in source, source
    assert "numpy.flip(numpy.cumsum(numpy.flip(" in source, source  # the adjoint: a reversed cumsum
    assert "numpy.sort(x, axis=1)" in source and "sg.sorted_put(" in source, source


# --- conventions ----------------------------------------------------------------------------------


def cumprod_plain(x):
    return np.sum(np.cumprod(x))


def test_cumprod_gradient_at_a_zero_is_not_defined():
    """The documented limit: reverse_cumsum(bar * out) / x divides by the zero (as np.prod)."""
    with np.errstate(all="ignore"):
        g = grad(cumprod_plain)(np.array([2.0, 0.0, 3.0]))
    assert np.isfinite(g[0]) and not np.isfinite(g[1])
    np.testing.assert_allclose(grad(cumprod_plain)(np.array([2.0, 0.5, 3.0])), [1.5 + 0.5 * 3, 2 + 6, 1.0])


def sort_ties(x):
    return np.sum(np.sort(x) * np.array([1.0, 2.0, 3.0]))


def test_sort_ties_keep_their_order():
    """A stable sort: tied elements take the positions in the order they came (PyTorch's
    `torch.sort(stable=True)` gives the same gradient)."""
    x = np.array([1.0, 0.0, 1.0])
    t = torch.tensor(x, requires_grad=True)
    torch.sum(torch.sort(t, stable=True).values * torch.tensor([1.0, 2.0, 3.0])).backward()
    np.testing.assert_array_equal(grad(sort_ties)(x), t.grad.numpy())
    np.testing.assert_array_equal(grad(sort_ties)(x), [2.0, 1.0, 3.0])


def std_of_constant(x):
    return np.std(x * 0.0 + 1.0) + np.sum(x)


def test_std_at_zero_variance_is_nan_as_in_torch():
    with np.errstate(all="ignore"):
        ours = grad(std_of_constant)(np.ones(3))
    t = torch.ones(3, dtype=torch.float64, requires_grad=True)
    (torch.std(t * 0.0 + 1.0, correction=0) + t.sum()).backward()
    assert np.all(np.isnan(ours)) == bool(torch.all(torch.isnan(t.grad)))


# --- refusals name the line -----------------------------------------------------------------------


def roll_by_traced(x):
    return np.sum(np.roll(x, x[0] > 0.0))


def pad_edge(x):
    return np.sum(np.pad(x, 1, mode="edge"))


def split_unevenly(x):
    a, b = np.split(x, 2)
    return np.sum(a * b)


def too_much_ddof(x):
    return np.var(x, ddof=3)


def partition_out_of_range(x):
    return np.sum(np.partition(x, 5))


def gradient_too_short(x):
    return np.sum(np.gradient(x[:2], edge_order=2))


@pytest.mark.parametrize(
    "fn,says,hint",
    [
        (roll_by_traced, "`np.roll` with the shift computed from traced values", "constant int shift"),
        (pad_edge, "mode='edge'", "np.concatenate"),
        (split_unevenly, "does not split into 2 equal parts", "np.array_split"),
        (too_much_ddof, "ddof=3 leaves no degrees of freedom for 3 elements", "smaller"),
        (gradient_too_short, "edge_order=2 needs 3 or more elements", "edge_order=1"),
        (partition_out_of_range, "kth=5 is out of bounds for an axis of length 3", "from -3 to 2"),
    ],
    ids=["roll", "pad", "split", "ddof", "gradient", "partition"],
)
def test_refusals_name_the_line_and_say_what_works(fn, says, hint):
    with pytest.raises(TracingError) as info:
        grad(fn)(R(3))
    err = info.value
    assert isinstance(err, SymgradError) and err.filename == __file__
    assert err.source_line is not None and "np." in err.source_line
    assert says in str(err) and hint in err.hint, (str(err), err.hint)


def test_nan_reductions_skip_nans_with_torchs_gradient():
    # NaN elements add nothing and count for nothing; the chain rule then multiplies nansum's
    # derivative 0 there by the inner function's, NaN at a NaN: torch gives the same
    x = R(3, 4)
    x[0, 1] = x[2, 3] = np.nan
    for fn, t_fn in ((nansum_fn, t_nansum_fn), (nanmean_fn, t_nanmean_fn)):
        value, gradient = value_and_grad(fn)(x)
        assert value == pytest.approx(fn(x), rel=1e-14)
        t = torch.tensor(x, requires_grad=True)
        t_fn(t).backward()
        np.testing.assert_allclose(gradient, t.grad.numpy(), rtol=1e-12, atol=1e-14)  # nan there too
    direct = grad(plain_nansum)(x)  # nansum's own derivative at a NaN is 0, as torch.nansum's
    assert direct[0, 1] == 0.0 and direct[2, 3] == 0.0 and direct[0, 0] == 1.0


def plain_nansum(x):
    return np.nansum(x)


# --- NumPy functions passed directly, their keywords, nested lists --------------------------------


def stacks_with_dtype(x):
    a = np.vstack([x, x * x], dtype=float, casting="same_kind")
    b = np.stack([x, 2.0 * x], axis=1, dtype=np.float64)
    c = np.concatenate([x, x[::-1]], 0, None, "float64")
    return score(a) + score(b) + score(c) + score(np.hstack((x, x), dtype=None))


def t_stacks_with_dtype(x):
    a, b = torch.vstack([x, x * x]), torch.stack([x, 2.0 * x], 1)
    return t_score(a) + t_score(b) + t_score(torch.cat([x, torch.flip(x, [0])])) + t_score(torch.cat([x, x]))


def append_nested(x):
    return score(np.append([[x[0], 2.0], [x[1], x[2]]], [[x[0] * x[1], 1.0]], axis=0))


def test_stack_keywords_of_numpy_are_taken():
    x = R(3)
    np.testing.assert_allclose(grad(stacks_with_dtype)(x), torch_gradient(t_stacks_with_dtype, x), **TOL)
    np.testing.assert_allclose(grad(append_nested)(x), fd_gradient(append_nested, [x]), rtol=1e-7, atol=1e-8)


def vstack_float32(x):
    return np.sum(np.vstack([x, x], dtype=np.float32))


def test_stack_dtype_other_than_float64_is_refused_at_the_line():
    with pytest.raises(SymgradError) as info:
        grad(vstack_float32)(R(3))
    assert info.value.filename == __file__ and "dtype=float32" in str(info.value)
    assert "dtype=float" in info.value.hint


@pytest.mark.parametrize("name", ["row_stack", "vstack"])
def test_row_stack_passed_directly_is_vstack(name):
    """np.row_stack is a Python function (`dtype=None` keyword): its call, not its source."""
    fn = getattr(np, name, None)
    if fn is None:
        pytest.skip("np.row_stack was removed in NumPy 2.5")
    parts = (R(2, 3), R(1, 3))
    cot = R(3, 3)
    value, pullback = vjp(fn)(parts)
    with pytest.warns(DeprecationWarning) if name == "row_stack" else contextlib.nullcontext():
        expected = fn(parts)
    np.testing.assert_array_equal(value, expected)
    got = pullback(cot)
    np.testing.assert_array_equal(got[0], cot[:2])
    np.testing.assert_array_equal(got[1], cot[2:])
    _, tangent = jvp(fn)((parts,), ((np.ones((2, 3)), np.zeros((1, 3))),))
    np.testing.assert_array_equal(tangent, np.vstack([np.ones((2, 3)), np.zeros((1, 3))]))


def test_scipy_logsumexp_passed_directly():
    special = pytest.importorskip("scipy.special")
    x = R(4)
    value, pullback = vjp(special.logsumexp)(x)
    assert value == pytest.approx(special.logsumexp(x), rel=1e-14)
    np.testing.assert_allclose(pullback(1.0), special.softmax(x), rtol=1e-13)
    np.testing.assert_allclose(grad(special.logsumexp)(x, axis=0), special.softmax(x), rtol=1e-13)


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((R(5),), {}),
        ((R(3, 4), 0.5, 2.0), {}),
        ((R(3, 4, 3),), {"axis": (0, -1), "edge_order": 2}),
        ((R(2, 3),), {"axis": 1}),
    ],
    ids=["vector", "spacings", "axes", "axis"],
)
def test_np_gradient_passed_directly_values_vjp_and_jvp(args, kwargs):
    x = args[0]
    expected = np.gradient(*args, **kwargs)
    value, pullback = vjp(np.gradient)(*args, **kwargs)
    assert type(value) is type(expected)  # one array for one axis, a tuple of them for several
    for got, want in zip(*(v if isinstance(v, tuple) else (v,) for v in (value, expected))):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)
    cot = tuple(R(*x.shape) for _ in expected) if isinstance(expected, tuple) else R(*x.shape)
    dims = kwargs.get("axis", tuple(range(x.ndim)))
    spacing = {"spacing": args[1:]} if len(args) > 1 else {}
    t = torch.tensor(x, requires_grad=True)
    outs = torch.gradient(t, dim=dims, edge_order=kwargs.get("edge_order", 1), **spacing)
    torch.autograd.backward(outs, tuple(torch.tensor(c) for c in (cot if isinstance(cot, tuple) else (cot,))))
    got = pullback(cot)
    np.testing.assert_allclose(got, t.grad.numpy(), **TOL)
    tangent = R(*x.shape)
    _, tangent_out = jvp(np.gradient, wrt=0)(args, (tangent,)) if not kwargs else (None, None)
    if tangent_out is not None:  # linear: the jvp is the function of the tangent
        want = np.gradient(tangent, *args[1:])
        for a, b in zip(*(v if isinstance(v, tuple) else (v,) for v in (tangent_out, want))):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


def partition_fn(x):
    return score(np.partition(x, [0, 2], axis=0))


def partition_flat(x):
    return score(np.partition(x, -2, axis=None))


@pytest.mark.parametrize(
    "fn,axis,kth", [(partition_fn, 0, [0, 2]), (partition_flat, None, -2)], ids=["axis", "flat"]
)
def test_partition_moves_gradients_as_its_permutation(fn, axis, kth):
    """np.partition's values are NumPy's own; its derivative is the permutation's, as
    torch's indexing by np.argpartition's order (torch has no partition)."""
    x = distinct(5, 3)
    value, got = value_and_grad(fn)(x)
    assert value == fn(x)
    np.testing.assert_allclose(got, fd_gradient(fn, [x]), rtol=1e-7, atol=1e-8)
    order = torch.tensor(np.argpartition(x, kth, axis=axis))
    t = torch.tensor(x, requires_grad=True)
    moved = torch.take_along_dim(t, order, dim=0) if axis == 0 else t.reshape(-1)[order]
    t_score(moved).backward()
    np.testing.assert_allclose(got, t.grad.numpy(), **TOL)
    out, pullback = vjp(np.partition)(x, kth, axis=axis)
    np.testing.assert_array_equal(out, np.partition(x, kth, axis=axis))
    u, v = R(5, 3), R(*out.shape)
    _, tangent = jvp(np.partition, wrt=0)((x, kth, axis), (u,))
    assert np.sum(v * tangent) == pytest.approx(np.sum(pullback(v) * u), rel=1e-12)  # <v, J u> = <J^T v, u>


def scalar_attributes(x):
    total = np.sum(x)  # np.float64 in NumPy: shape (), ndim 0, size 1
    assert total.shape == () and total.ndim == 0 and total.size == 1 and total.dtype == np.float64
    assert x.dtype == np.float64 and x.T.shape == x.shape
    return total.T * total * total.size + x[0].ndim


def number_attributes(a):
    assert a.shape == () and a.ndim == 0 and a.size == 1 and a.dtype == np.float64
    return a**2


def test_numbers_have_numpy_scalar_attributes():
    """As np.float64 (and a JAX tracer of a number): `.shape` is (), `.ndim` 0, `.size` 1."""
    x = R(3)
    value, got = value_and_grad(scalar_attributes)(x)
    assert value == scalar_attributes(x)
    np.testing.assert_allclose(got, 2.0 * np.sum(x) * np.ones(3), **TOL)
    assert grad(number_attributes)(3.0) == 6.0
    assert grad(number_attributes)(np.float64(3.0)) == 6.0


MASK = RNG.normal(size=(3, 4)) > 0


def select_fn(x):
    return score(np.select([MASK, x > 0.5, x < -1.0], [x, x**2, 2.0 * x], default=1.5))


def t_select_fn(x):
    mask = torch.tensor(MASK)
    inner = torch.where(x < -1.0, 2.0 * x, torch.full_like(x, 1.5))
    return t_score(torch.where(mask, x, torch.where(x > 0.5, x**2, inner)))


def test_select_is_nested_wheres():
    x = R(3, 4)
    value, got = value_and_grad(select_fn)(x)
    assert value == select_fn(x)
    np.testing.assert_allclose(got, fd_gradient(select_fn, [x]), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(got, torch_gradient(t_select_fn, x), **TOL)
    tangent = R(3, 4)
    _, dot = jvp(select_fn)((x,), (tangent,))
    assert dot == pytest.approx(np.sum(got * tangent), rel=1e-12)
