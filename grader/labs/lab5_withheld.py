"""Lab 5's mistake producers that the student release leaves out.

Each of these computes attention, multi-head attention or the positional encoding from the same
tensor operations a student uses, with one mistake in it; without the mistake it would be a
working solution, so it cannot ship to students. In the release their hints are given on
submission (``grader.declare.spec.withheld``); lab 5's other mistakes run the oracles (built on PyTorch's
own attention, which the students' code may not call) on changed inputs.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from grader.declare import oracles
from grader.labs.lab5 import _attend, _scaled


def _attend_with(softmax_dim: int = -1, blocked_as_zero: bool = False,
                 mask_after: bool = False) -> Callable[..., Any]:
    """Attention computed a wrong way."""
    def produce(q: Any, k: Any, v: Any, mask: Any = None) -> tuple[Any, Any]:
        t = oracles.torch()
        dtype = q.dtype
        q, k, v = q.double(), k.double(), v.double()
        scores = _scaled(q, k)
        if mask is not None and not mask_after:
            scores = scores.masked_fill(~mask, 0.0 if blocked_as_zero else t.finfo(t.float64).min)
        weights = t.softmax(scores, dim=softmax_dim)
        if mask is not None and (mask_after or softmax_dim != -1):
            weights = weights * mask
        elif mask is not None and not blocked_as_zero:
            weights = weights * mask.any(dim=-1, keepdim=True)
        return (weights @ v).to(dtype), weights.to(dtype)
    return produce


attend_softmax_over_queries = _attend_with(softmax_dim=-2)
attend_mask_after_softmax = _attend_with(mask_after=True)
attend_blocked_as_zero = _attend_with(blocked_as_zero=True)


def mha_bare_reshape(query: Any, key: Any, value: Any, w: Any, b: Any, w_o: Any, b_o: Any, h: int,
                     mask: Any = None) -> tuple[Any, Any]:
    """Multi-head attention whose heads are split and merged by reshapes without the transposes."""
    dtype = query.dtype
    n, lq, e = query.shape
    q, k, v = ((x.double() @ w_x.T + b_x).reshape(n, h, x.shape[1], e // h)
               for x, w_x, b_x in zip((query, key, value), w.double().chunk(3), b.double().chunk(3)))
    per_head = None if mask is None else mask[:, None] if mask.dim() == 3 else mask  # broadcast over the heads
    out, weights = _attend(q, k, v, per_head)
    return (out.reshape(n, lq, e) @ w_o.double().T + b_o.double()).to(dtype), weights.mean(dim=1).to(dtype)


def _table(length: int, d_model: int, *, exponent: Callable[[np.ndarray], np.ndarray] = lambda j: j - j % 2,
           even: Any = np.sin, odd: Any = np.cos, start: int = 0, halves: bool = False) -> Any:
    """The sinusoidal table built a wrong way, in float64, returned in the default dtype."""
    t = oracles.torch()
    position = np.arange(start, start + length, dtype=np.float64)[:, None]
    column = np.arange(d_model)
    angles = position / 10000.0 ** (exponent(column) / d_model)
    table = np.where(column % 2 == 0, even(angles), odd(angles))
    if halves:  # [sin of every pair | cos of every pair]
        pairs = angles[:, 0::2]
        table = np.concatenate([np.sin(pairs), np.cos(pairs)], axis=1)[:, :d_model]
    return t.as_tensor(table).to(t.get_default_dtype())


pe_sin_cos_swapped = functools.partial(_table, even=np.cos, odd=np.sin)
pe_halves = functools.partial(_table, halves=True)
pe_exponent_of_i = functools.partial(_table, exponent=lambda j: j // 2)
pe_exponent_of_own_column = functools.partial(_table, exponent=lambda j: j)
pe_from_position_one = functools.partial(_table, start=1)
