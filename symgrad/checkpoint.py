"""Checkpointed loops: a long kept loop run as segments, so that its reverse pass keeps O(n/k + k) values.

`segmented` rewrites each kept `for` loop of n iterations into a loop over n // k segments
whose body is a loop over the k iterations of one segment (and a loop over the n % k left).
Nothing else changes: reverse mode then saves the carries once per segment, and each
iteration of its reverse loop runs the segment forward again, saving that segment's k carries,
before going back over them (two-level checkpointing, as ADOL-C's and Tapenade's
checkpoints, and JAX's `scan` under `jax.checkpoint`). The price is one more forward run.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import sympy

from . import arrays
from .diff import _copy_body, _fresh
from .graph import Graph, Loop, real_symbol


def segment_length(length: int, size: int | bool) -> int:
    """The iterations per segment: `size`, or about sqrt(length) for `True`."""
    return max(1, math.isqrt(length - 1) + 1) if size is True else int(size)


def segmented(graph: Graph, size: int | bool) -> Graph:
    """A copy of `graph` whose kept `for` loops (no early exit, long enough) run as segments of
    `size` iterations (`True`: about sqrt(n)); its values and derivatives are those of `graph`."""
    result = graph.extend()
    result.nodes = []
    for label, expr in graph.nodes:
        if isinstance(expr, Loop) and _splittable(expr, size):
            _split(label, expr, segment_length(expr.length, size), result)
        else:
            result.nodes.append((label, expr))
    return result


def _splittable(loop: Loop, size: int | bool) -> bool:
    if loop.condition is not None or loop.stacked or loop.reverse or not isinstance(loop.length, int):
        return False
    return loop.length >= 2 * segment_length(loop.length, size)


def _split(label: Any, loop: Loop, k: int, result: Graph) -> None:
    n = loop.length
    q, r = divmod(n, k)
    shapes = result.shapes
    # the segments' loop carries to the rest's loop (when n % k), which defines the finals
    middle = loop.carries if r == 0 else tuple(_fresh(result, c) for c in loop.carries)
    segment = sympy.Symbol(result.names.fresh("segment"), integer=True)
    if shapes is not None:
        shapes[segment] = ()
    rows = []  # per item: the outer loop's item (one segment's rows) and its stack
    for item, stack in loop.items:
        head = stack if q * k == n else _rows(result, stack, 0, q * k)
        row_shape = shapes[stack][1:] if shapes is not None else ()
        blocks = result.add(arrays.Reshape.make([head], (q, k, *row_shape)), f"{stack}_segments")
        rows.append((_fresh(result, f"{item}_segment", like=blocks), blocks))
        if shapes is not None:
            shapes[rows[-1][0]] = (k, *row_shape)
    segment_items = tuple(s for s, _ in rows)
    inner = _part(loop, result, k, k * segment, middle, segment_items)
    body = Graph(
        name=loop.body.name,
        params=(str(segment), *(str(c) for c in middle), *(str(s) for s in segment_items)),
        inputs=(segment, *middle, *segment_items),
        names=result.names,
        shapes=shapes,
    )
    inner_label = real_symbol(result.names.temp("loop"))
    body.nodes.append((inner_label, inner))
    body.outputs = inner.carries
    if loop.line is not None:
        body.lines[inner_label] = loop.line[:2]
    outer = dataclasses.replace(loop, body=body, index=segment, carries=middle, items=tuple(rows), length=q)
    result.nodes.append((label, outer))
    if r:
        items = tuple((item, _rows(result, stack, q * k, n)) for item, stack in loop.items)
        rest = _part(
            dataclasses.replace(loop, items=items), result, r, sympy.Integer(q * k), middle, (), own=True
        )
        rest_label = real_symbol(result.names.temp("loop"))
        result.nodes.append((rest_label, rest))
        if loop.line is not None:
            result.lines[rest_label] = loop.line[:2]


def _part(
    loop: Loop,
    result: Graph,
    length: int,
    offset: Any,
    init: tuple[Any, ...],
    blocks: tuple[Any, ...],
    own: bool = False,
) -> Loop:
    """`loop` over `length` of its iterations from `offset` on, its carries starting from
    `init`; its items are the rows of `blocks` (one segment's) where given, else its own.
    Its carries are new symbols, or with `own` the loop's (which then defines the finals)."""
    index = _fresh(result, loop.index, integer=True)
    position = _fresh(result, loop.index, like=index)  # the iteration's index in the whole loop
    carries = loop.carries if own else tuple(_fresh(result, c) for c in loop.carries)
    rename: dict[Any, Any] = {loop.index: position, **dict(zip(loop.carries, carries))}
    items = tuple(_fresh(result, item) for item, _ in loop.items)
    rename.update({item: new for (item, _), new in zip(loop.items, items)})
    body = _copy_body(loop.body, result, rename)
    body.inputs = (index, *carries, *items)
    body.params = tuple(str(s) for s in body.inputs)
    body.nodes.insert(0, (position, offset + index))
    stacks = blocks or tuple(stack for _, stack in loop.items)
    return dataclasses.replace(
        loop,
        body=body,
        index=index,
        carries=carries,
        init=init,
        items=tuple(zip(items, stacks)),
        length=length,
    )


def _rows(result: Graph, stack: Any, start: int, stop: int) -> Any:
    return result.add(arrays.Index.make([stack], (("slice", start or None, stop, None),)), f"{stack}_rows")
