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


def _masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over the last axis restricted to mask == True; all-masked rows give zeros."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    # Give blocked keys the lowest finite score (not -inf, so no row turns into NaN).
    lowest = torch.finfo(scores.dtype).min
    weights = torch.softmax(torch.where(mask, scores, lowest), dim=-1)
    # Zero the blocked entries: this clears the rows whose keys were all blocked.
    return torch.where(mask, weights, 0.0)


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """out = weights @ v with weights = softmax(q @ kᵀ / sqrt(d)) over the keys (last axis).

    q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv) -> out (..., Lq, dv), weights (..., Lq, Lk).
    mask: optional bool tensor broadcastable to (..., Lq, Lk), True where a query may
    attend to a key; blocked keys get weight 0, and a query row with every key blocked
    gets all-zero weights and a zero output (not NaN). Finite for scores up to ±1e4.
    """
    # Scores: one dot product per (query, key) pair, scaled by 1/sqrt(d).
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    # Weights: softmax over the keys, then the weighted sum of the values.
    weights = _masked_softmax(scores, mask)
    return weights @ v, weights


def causal_mask(length: int, device: torch.device | str | None = None) -> Tensor:
    """Bool (length, length) mask, True on and below the diagonal: query i may attend to keys j <= i."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def self_attention(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Attention of a sequence to itself: scaled_dot_product_attention(x @ W_q, x @ W_k, x @ W_v, mask).

    x (N, L, E), W_q and W_k (E, d), W_v (E, dv) -> out (N, L, dv), weights (N, L, L).
    mask as in scaled_dot_product_attention (True = may attend).
    """
    return scaled_dot_product_attention(x @ W_q, x @ W_k, x @ W_v, mask)


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(N, L, E) -> (N, h, L, E/h): head j gets features j*E/h .. (j+1)*E/h - 1 of every position.

    Raises ValueError when E is not divisible by num_heads.
    """
    n, length, embed = x.shape
    if embed % num_heads != 0:
        raise ValueError(f"embedding size {embed} is not divisible by num_heads={num_heads}")
    # Cut the feature axis into heads, then bring the head axis in front of the positions.
    return x.reshape(n, length, num_heads, embed // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(N, h, L, D) -> (N, L, h*D), the inverse of split_heads: merge_heads(split_heads(x, h)) == x."""
    n, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(n, length, heads * head_dim)


def _project(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """x @ weightᵀ + bias, the layout of torch.nn.Linear."""
    out = x @ weight.transpose(0, 1)
    return out if bias is None else out + bias


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
    # Project: the three stacked blocks of in_proj are W_q, W_k, W_v.
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, b_k, b_v = (None, None, None) if in_proj_bias is None else in_proj_bias.chunk(3)
    q = split_heads(_project(query, w_q, b_q), num_heads)
    k = split_heads(_project(key, w_k, b_k), num_heads)
    v = split_heads(_project(value, w_v, b_v), num_heads)
    # Attend in every head at once; a per-batch mask gets a head axis to broadcast over.
    if mask is not None and mask.dim() == 3:
        mask = mask.unsqueeze(1)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    # Merge the heads, project, and average the weights over the heads.
    return _project(merge_heads(out), out_proj_weight, out_proj_bias), weights.mean(dim=1)


def positional_encoding(length: int, d_model: int) -> Tensor:
    """PE[p, 2i] = sin(p / 10000^(2i/d_model)), PE[p, 2i+1] = cos(p / 10000^(2i/d_model)).

    Returns a (length, d_model) tensor of the default float dtype (torch.get_default_dtype()).
    Even columns hold sines and odd columns cosines, interleaved; d_model may be odd
    (the last column is then a sine).
    """
    # Angles p / 10000^(2i/d_model), computed in float64 for accuracy at large p.
    position = torch.arange(length, dtype=torch.float64)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angles = position[:, None] / 10000.0 ** (two_i / d_model)
    # Interleave: column 2i is the sine and column 2i+1 the cosine of the same angle.
    pe = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(1)[:, :d_model]
    return pe.to(torch.get_default_dtype())
