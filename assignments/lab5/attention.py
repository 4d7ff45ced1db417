"""Self-attention from tensor operations.

Every position of a sequence asks a question (its query), every position offers a
label (its key) and a content (its value). A query scores each key by a dot product,
the scores divided by sqrt(d) go through a softmax over the keys, and the answer is
the weighted average of the values:

    Attention(Q, K, V) = softmax(Q Kᵀ / sqrt(d)) V

Conventions of this lab (they are those of PyTorch, which grades it):

- Boolean masks are True where a query may attend to a key, as in
  torch.nn.functional.scaled_dot_product_attention. A query whose keys are all
  masked gets zero weights and a zero output, never NaN (gradients included).
- Tensors stay on their device and keep their dtype; autograd must flow through.
- Multi-head attention uses the parameter layout of torch.nn.MultiheadAttention
  with batch_first=True: in_proj_weight stacks W_q, W_k, W_v as (3E, E), and a
  projection is applied as x @ Wᵀ + b.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """out = weights @ v with weights = softmax(q @ kᵀ / sqrt(d)) over the keys (last axis).

    q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv) -> out (..., Lq, dv), weights (..., Lq, Lk).
    mask: optional bool tensor broadcastable to (..., Lq, Lk), True where a query may
    attend to a key; blocked keys get weight 0, and a query row with every key blocked
    gets all-zero weights and a zero output (not NaN). Finite for scores up to ±1e4.
    """
    raise NotImplementedError("Task lab5.scaled_dot_product_attention: not implemented yet")


def causal_mask(length: int, device: torch.device | str | None = None) -> Tensor:
    """Bool (length, length) mask, True on and below the diagonal: query i may attend to keys j <= i."""
    raise NotImplementedError("Task lab5.causal_mask: not implemented yet")


def self_attention(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Attention of a sequence to itself: scaled_dot_product_attention(x @ W_q, x @ W_k, x @ W_v, mask).

    x (N, L, E), W_q and W_k (E, d), W_v (E, dv) -> out (N, L, dv), weights (N, L, L).
    mask as in scaled_dot_product_attention (True = may attend).
    """
    raise NotImplementedError("Task lab5.self_attention: not implemented yet")


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(N, L, E) -> (N, h, L, E/h): head j gets features j*E/h .. (j+1)*E/h - 1 of every position.

    Raises ValueError when E is not divisible by num_heads.
    """
    raise NotImplementedError("Task lab5.split_heads: not implemented yet")


def merge_heads(x: Tensor) -> Tensor:
    """(N, h, L, D) -> (N, L, h*D), the inverse of split_heads: merge_heads(split_heads(x, h)) == x."""
    raise NotImplementedError("Task lab5.merge_heads: not implemented yet")


def multi_head_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    in_proj_weight: Tensor,
    in_proj_bias: Tensor | None,
    out_proj_weight: Tensor,
    out_proj_bias: Tensor | None,
    num_heads: int,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """torch.nn.MultiheadAttention(E, num_heads, batch_first=True)(query, key, value) with these parameters.

    query (N, Lq, E), key and value (N, Lk, E); in_proj_weight (3E, E) stacks the rows of
    W_q, W_k, W_v in that order, in_proj_bias (3E,) likewise; out_proj_weight (E, E),
    out_proj_bias (E,); every projection is x @ Wᵀ + b. Split the projected q, k, v into
    num_heads heads, attend in each head (scaled by the head size E/h), merge the heads
    and apply the output projection.
    Returns out (N, Lq, E) and the attention weights averaged over the heads (N, Lq, Lk).
    mask: bool (Lq, Lk) or (N, Lq, Lk), True = may attend (the opposite of
    nn.MultiheadAttention's attn_mask); a fully masked query gets zero weights, so its
    output is out_proj_bias.
    """
    raise NotImplementedError("Task lab5.multi_head_attention: not implemented yet")


def positional_encoding(length: int, d_model: int) -> Tensor:
    """PE[p, 2i] = sin(p / 10000^(2i/d_model)), PE[p, 2i+1] = cos(p / 10000^(2i/d_model)).

    Returns a (length, d_model) tensor of the default float dtype (torch.get_default_dtype()).
    Even columns hold sines and odd columns cosines, interleaved; d_model may be odd
    (the last column is then a sine).
    """
    raise NotImplementedError("Task lab5.positional_encoding: not implemented yet")
