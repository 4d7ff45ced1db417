"""Lab 5 (self-attention): the mistakes students make, and correct variants.

Each function is a complete student answer for one task; it replaces the reference
function of that name in an otherwise correct submission, so a mistake here is
judged on its own. Bodies use only ``math`` and ``torch`` (the reference module's
imports); they do not call other lab functions, so each one stands alone.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from tests.mutants import alternative, mistake

# ----------------------------------------------------------------------------- scaled_dot_product_attention


@mistake("scaled_dot_product_attention", expect="scaled_dot_product_attention.scores_scaled_divide_q")
def scaled_dot_product_attention_no_scaling(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    scores = q @ k.transpose(-2, -1)  # mistake: scores never divided by sqrt(d)
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask.any(dim=-1, keepdim=True)
    return weights @ v, weights


@mistake("scaled_dot_product_attention", expect="scaled_dot_product_attention.scores_were_divided_d")
def scaled_dot_product_attention_scaled_by_d(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / d  # mistake: divided by d, not sqrt(d)
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask.any(dim=-1, keepdim=True)
    return weights @ v, weights


@mistake("scaled_dot_product_attention", expect="scaled_dot_product_attention.softmax_ran_over_queries")
def scaled_dot_product_attention_softmax_over_queries(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-2)  # mistake: softmax over the queries (dim=-2), not the keys
    if mask is not None:
        weights = weights * mask
    return weights @ v, weights


@mistake("scaled_dot_product_attention", expect="scaled_dot_product_attention.mask_applied_after_softmax")
def scaled_dot_product_attention_mask_after_softmax(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask  # mistake: zero the blocked keys, but the row no longer sums to 1
    return weights @ v, weights


@mistake("scaled_dot_product_attention", expect="scaled_dot_product_attention.nan_fully_masked_query")
def scaled_dot_product_attention_nan_on_fully_masked_row(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # mistake: -inf: a fully masked row's softmax is NaN
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


@mistake("scaled_dot_product_attention", expect="scaled_dot_product_attention.mask_s_polarity_inverted")
def scaled_dot_product_attention_mask_polarity_inverted(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        # mistake: nn.MultiheadAttention's habit: True means "blocked"
        scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1) * (~mask).any(dim=-1, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


@mistake("scaled_dot_product_attention", expect="scaled_dot_product_attention.blocked_scores_were_set")
def scaled_dot_product_attention_masked_scores_set_to_zero(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, 0.0)  # mistake: exp(0) = 1: blocked keys still get weight
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


@alternative("scaled_dot_product_attention")
def scaled_dot_product_attention_einsum_large_negative(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    scores = torch.einsum("...qd,...kd->...qk", q, k) / math.sqrt(q.shape[-1])
    if mask is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        scores = scores.masked_fill(~mask, -1e9)
        weights = torch.softmax(scores, dim=-1)
        # rows whose keys are all blocked came out uniform: zero them explicitly
        weights = weights * mask.any(dim=-1, keepdim=True)
    out = torch.einsum("...qk,...kd->...qd", weights, v)
    return out, weights


@alternative("scaled_dot_product_attention")
def scaled_dot_product_attention_explicit_stable_softmax(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    row_max = scores.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    e = torch.exp(scores - row_max.detach())
    total = e.sum(dim=-1, keepdim=True)
    weights = e / torch.where(total > 0, total, torch.ones_like(total))
    return weights @ v, weights


# ----------------------------------------------------------------------------- causal_mask


@mistake("causal_mask", expect="causal_mask.mask_lets_query_see")
def causal_mask_upper_triangle(length: int, device: torch.device | str | None = None) -> Tensor:
    # mistake: triu lets a query see the future; tril keeps j <= i
    return torch.triu(torch.ones(length, length, dtype=torch.bool, device=device))


@mistake("causal_mask", expect="causal_mask.diagonal_true_query_may")
def causal_mask_without_diagonal(length: int, device: torch.device | str | None = None) -> Tensor:
    # mistake: diagonal=-1 blocks a query's own position
    return torch.tril(torch.ones(length, length, dtype=torch.bool, device=device), diagonal=-1)


@mistake("causal_mask", expect="causal_mask.causal_mask_return_bool")
def causal_mask_float_ones(length: int, device: torch.device | str | None = None) -> Tensor:
    return torch.tril(torch.ones(length, length, device=device))  # mistake: no dtype=torch.bool: float 0/1


@mistake("causal_mask", expect="causal_mask.causal_mask_return_bool")
def causal_mask_additive_minus_inf(length: int, device: torch.device | str | None = None) -> Tensor:
    # mistake: an additive 0/-inf float mask, not a bool one
    return torch.triu(torch.full((length, length), float("-inf"), device=device), diagonal=1)


@mistake("causal_mask", expect="check:creates the mask on the requested device")
def causal_mask_ignores_device(length: int, device: torch.device | str | None = None) -> Tensor:
    return torch.tril(torch.ones(length, length, dtype=torch.bool))  # mistake: no device=: the mask is made on the CPU


@alternative("causal_mask")
def causal_mask_index_comparison(length: int, device: torch.device | str | None = None) -> Tensor:
    i = torch.arange(length, device=device)
    return i[:, None] >= i[None, :]


# ----------------------------------------------------------------------------- self_attention


@mistake("self_attention", expect="self_attention.scores_were_scaled_square")
def self_attention_scaled_by_embedding_size(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    q, k, v = x @ W_q, x @ W_k, x @ W_v
    scores = q @ k.transpose(-2, -1) / math.sqrt(x.shape[-1])  # mistake: E = x.shape[-1], not d = q.shape[-1]
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask.any(dim=-1, keepdim=True)
    return weights @ v, weights


@mistake("self_attention", expect="self_attention.keys_were_projected_w")
def self_attention_keys_from_query_weights(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    q, k, v = x @ W_q, x @ W_q, x @ W_v  # mistake: copy-paste slip: keys projected with W_q, not W_k
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask.any(dim=-1, keepdim=True)
    return weights @ v, weights


@mistake("self_attention", expect="self_attention.mask_ignored_pass_attention")
def self_attention_ignores_mask(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    q, k, v = x @ W_q, x @ W_k, x @ W_v
    # mistake: the mask is never applied to the scores
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v, weights


@alternative("self_attention")
def self_attention_fused_projection(x: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    d = W_q.shape[1]
    qkv = x @ torch.cat([W_q, W_k, W_v], dim=1)  # one matmul for all three projections
    q, k, v = qkv[..., :d], qkv[..., d : 2 * d], qkv[..., 2 * d :]
    scores = torch.einsum("nid,njd->nij", q, k) / math.sqrt(d)
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask.any(dim=-1, keepdim=True)
    return weights @ v, weights


# ----------------------------------------------------------------------------- split_heads


@mistake("split_heads", expect="split_heads.heads_were_split_bare")
def split_heads_reshape_without_transpose(x: Tensor, num_heads: int) -> Tensor:
    n, length, embed = x.shape
    return x.reshape(n, num_heads, length, embed // num_heads)  # mistake: a bare reshape mixes the positions


@mistake("split_heads", expect="split_heads.head_j_took_interleaved")
def split_heads_interleaved_features(x: Tensor, num_heads: int) -> Tensor:
    n, length, embed = x.shape
    # mistake: head j gets features j, j+h, j+2h, ... instead of one contiguous block
    return x.reshape(n, length, embed // num_heads, num_heads).permute(0, 3, 1, 2)


@alternative("split_heads")
def split_heads_chunk_and_stack(x: Tensor, num_heads: int) -> Tensor:
    if x.shape[-1] % num_heads:
        raise ValueError("embedding size must be divisible by num_heads")
    return torch.stack(x.chunk(num_heads, dim=-1), dim=1)


@alternative("split_heads")
def split_heads_view_permute(x: Tensor, num_heads: int) -> Tensor:
    n, length, embed = x.shape
    if embed % num_heads:
        raise ValueError("embedding size must be divisible by num_heads")
    return x.reshape(n, length, num_heads, -1).permute(0, 2, 1, 3)


# ----------------------------------------------------------------------------- merge_heads


@mistake("merge_heads", expect="merge_heads.heads_were_merged_bare")
def merge_heads_reshape_without_transpose(x: Tensor) -> Tensor:
    n, heads, length, head_dim = x.shape
    return x.reshape(n, length, heads * head_dim)  # mistake: bare reshape, no transpose(1, 2) first


@mistake("merge_heads", expect="merge_heads.heads_features_came_out")
def merge_heads_interleaved_features(x: Tensor) -> Tensor:
    n, heads, length, head_dim = x.shape
    # mistake: (N, L, D, h): feature-major, so the heads' features end up interleaved
    return x.permute(0, 2, 3, 1).reshape(n, length, heads * head_dim)


@mistake("merge_heads", expect="merge_heads.heads_were_reduced_away")
def merge_heads_mean_over_heads(x: Tensor) -> Tensor:
    return x.mean(dim=1)  # mistake: averages the heads away instead of concatenating them


@alternative("merge_heads")
def merge_heads_concatenate_heads(x: Tensor) -> Tensor:
    return torch.cat(x.unbind(dim=1), dim=-1)


# ----------------------------------------------------------------------------- multi_head_attention


@mistake("multi_head_attention", expect="multi_head_attention.weights_were_returned_per")
def multi_head_attention_per_head_weights(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    n, lq, e = query.shape
    lk, hd = key.shape[1], e // num_heads
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, b_k, b_v = in_proj_bias.chunk(3)
    q = (query @ w_q.T + b_q).reshape(n, lq, num_heads, hd).transpose(1, 2)
    k = (key @ w_k.T + b_k).reshape(n, lk, num_heads, hd).transpose(1, 2)
    v = (value @ w_v.T + b_v).reshape(n, lk, num_heads, hd).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
    if mask is not None:
        m = mask.unsqueeze(1) if mask.dim() == 3 else mask
        scores = scores.masked_fill(~m, -1e9)
        weights = torch.softmax(scores, dim=-1) * m.any(dim=-1, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(n, lq, e)
    return out @ out_proj_weight.T + out_proj_bias, weights  # mistake: weights per head (N, h, Lq, Lk), not their mean


@mistake("multi_head_attention", expect="multi_head_attention.weights_were_summed_over")
def multi_head_attention_weights_summed_over_heads(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    n, lq, e = query.shape
    lk, hd = key.shape[1], e // num_heads
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, b_k, b_v = in_proj_bias.chunk(3)
    q = (query @ w_q.T + b_q).reshape(n, lq, num_heads, hd).transpose(1, 2)
    k = (key @ w_k.T + b_k).reshape(n, lk, num_heads, hd).transpose(1, 2)
    v = (value @ w_v.T + b_v).reshape(n, lk, num_heads, hd).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
    if mask is not None:
        m = mask.unsqueeze(1) if mask.dim() == 3 else mask
        scores = scores.masked_fill(~m, -1e9)
        weights = torch.softmax(scores, dim=-1) * m.any(dim=-1, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(n, lq, e)
    return out @ out_proj_weight.T + out_proj_bias, weights.sum(dim=1)  # mistake: summed over the heads, not averaged


@mistake("multi_head_attention", expect="multi_head_attention.q_k_v_blocks")
def multi_head_attention_qkv_blocks_in_wrong_order(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    n, lq, e = query.shape
    lk, hd = key.shape[1], e // num_heads
    w_k, w_q, w_v = in_proj_weight.chunk(3)  # mistake: cut as k, q, v; the blocks are q, k, v
    b_k, b_q, b_v = in_proj_bias.chunk(3)  # mistake: the biases in the same wrong order
    q = (query @ w_q.T + b_q).reshape(n, lq, num_heads, hd).transpose(1, 2)
    k = (key @ w_k.T + b_k).reshape(n, lk, num_heads, hd).transpose(1, 2)
    v = (value @ w_v.T + b_v).reshape(n, lk, num_heads, hd).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
    if mask is not None:
        m = mask.unsqueeze(1) if mask.dim() == 3 else mask
        scores = scores.masked_fill(~m, -1e9)
        weights = torch.softmax(scores, dim=-1) * m.any(dim=-1, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(n, lq, e)
    return out @ out_proj_weight.T + out_proj_bias, weights.mean(dim=1)


@mistake("multi_head_attention", expect="multi_head_attention.projections_were_applied_x")
def multi_head_attention_weights_not_transposed(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    n, lq, e = query.shape
    lk, hd = key.shape[1], e // num_heads
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, b_k, b_v = in_proj_bias.chunk(3)
    q = (query @ w_q + b_q).reshape(n, lq, num_heads, hd).transpose(1, 2)  # mistake: x @ W, as in self_attention
    k = (key @ w_k + b_k).reshape(n, lk, num_heads, hd).transpose(1, 2)  # mistake: w_k without .T
    v = (value @ w_v + b_v).reshape(n, lk, num_heads, hd).transpose(1, 2)  # mistake: w_v without .T
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
    if mask is not None:
        m = mask.unsqueeze(1) if mask.dim() == 3 else mask
        scores = scores.masked_fill(~m, -1e9)
        weights = torch.softmax(scores, dim=-1) * m.any(dim=-1, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(n, lq, e)
    return out @ out_proj_weight + out_proj_bias, weights.mean(dim=1)  # mistake: out_proj_weight without .T


@mistake("multi_head_attention", expect="multi_head_attention.scores_were_scaled_sqrt")
def multi_head_attention_scaled_by_embedding_size(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    n, lq, e = query.shape
    lk, hd = key.shape[1], e // num_heads
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, b_k, b_v = in_proj_bias.chunk(3)
    q = (query @ w_q.T + b_q).reshape(n, lq, num_heads, hd).transpose(1, 2)
    k = (key @ w_k.T + b_k).reshape(n, lk, num_heads, hd).transpose(1, 2)
    v = (value @ w_v.T + b_v).reshape(n, lk, num_heads, hd).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(e)  # mistake: sqrt(e); should be the head size e // num_heads
    if mask is not None:
        m = mask.unsqueeze(1) if mask.dim() == 3 else mask
        scores = scores.masked_fill(~m, -1e9)
        weights = torch.softmax(scores, dim=-1) * m.any(dim=-1, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(n, lq, e)
    return out @ out_proj_weight.T + out_proj_bias, weights.mean(dim=1)


@mistake("multi_head_attention", expect="multi_head_attention.heads_were_split_merged")
def multi_head_attention_heads_split_without_transpose(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    n, lq, e = query.shape
    lk, hd = key.shape[1], e // num_heads
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, b_k, b_v = in_proj_bias.chunk(3)
    q = (query @ w_q.T + b_q).reshape(n, num_heads, lq, hd)  # mistake: bare reshape, no transpose(1, 2)
    k = (key @ w_k.T + b_k).reshape(n, num_heads, lk, hd)  # mistake: bare reshape, no transpose(1, 2)
    v = (value @ w_v.T + b_v).reshape(n, num_heads, lk, hd)  # mistake: bare reshape, no transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
    if mask is not None:
        m = mask.unsqueeze(1) if mask.dim() == 3 else mask
        scores = scores.masked_fill(~m, -1e9)
        weights = torch.softmax(scores, dim=-1) * m.any(dim=-1, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=-1)
    out = (weights @ v).reshape(n, lq, e)  # mistake: merged by a bare reshape, no transpose(1, 2)
    return out @ out_proj_weight.T + out_proj_bias, weights.mean(dim=1)


@mistake("multi_head_attention", expect="multi_head_attention.mask_s_polarity_inverted")
def multi_head_attention_mask_polarity_inverted(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    n, lq, e = query.shape
    lk, hd = key.shape[1], e // num_heads
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, b_k, b_v = in_proj_bias.chunk(3)
    q = (query @ w_q.T + b_q).reshape(n, lq, num_heads, hd).transpose(1, 2)
    k = (key @ w_k.T + b_k).reshape(n, lk, num_heads, hd).transpose(1, 2)
    v = (value @ w_v.T + b_v).reshape(n, lk, num_heads, hd).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
    if mask is not None:
        m = mask.unsqueeze(1) if mask.dim() == 3 else mask
        scores = scores.masked_fill(m, -1e9)  # mistake: nn.MultiheadAttention's convention: True = blocked
        weights = torch.softmax(scores, dim=-1) * (~m).any(dim=-1, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(n, lq, e)
    return out @ out_proj_weight.T + out_proj_bias, weights.mean(dim=1)


@mistake("multi_head_attention", expect="multi_head_attention.nan_fully_masked_query")
def multi_head_attention_nan_on_fully_masked_row(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    n, lq, e = query.shape
    lk, hd = key.shape[1], e // num_heads
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, b_k, b_v = in_proj_bias.chunk(3)
    q = (query @ w_q.T + b_q).reshape(n, lq, num_heads, hd).transpose(1, 2)
    k = (key @ w_k.T + b_k).reshape(n, lk, num_heads, hd).transpose(1, 2)
    v = (value @ w_v.T + b_v).reshape(n, lk, num_heads, hd).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
    if mask is not None:
        m = mask.unsqueeze(1) if mask.dim() == 3 else mask
        scores = scores.masked_fill(~m, float("-inf"))  # mistake: -inf: a fully masked row's softmax is NaN
    weights = torch.softmax(scores, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(n, lq, e)
    return out @ out_proj_weight.T + out_proj_bias, weights.mean(dim=1)


@mistake("multi_head_attention", expect="multi_head_attention.proj_bias_added_each")
def multi_head_attention_forgets_input_bias(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    n, lq, e = query.shape
    lk, hd = key.shape[1], e // num_heads
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    # mistake: in_proj_bias is never added: q, k, v lack b_q, b_k, b_v
    q = (query @ w_q.T).reshape(n, lq, num_heads, hd).transpose(1, 2)
    k = (key @ w_k.T).reshape(n, lk, num_heads, hd).transpose(1, 2)
    v = (value @ w_v.T).reshape(n, lk, num_heads, hd).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
    if mask is not None:
        m = mask.unsqueeze(1) if mask.dim() == 3 else mask
        scores = scores.masked_fill(~m, -1e9)
        weights = torch.softmax(scores, dim=-1) * m.any(dim=-1, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(n, lq, e)
    return out @ out_proj_weight.T + out_proj_bias, weights.mean(dim=1)


@mistake("multi_head_attention", expect="multi_head_attention.proj_bias_none")
def multi_head_attention_crashes_without_biases(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    # mistake: right whenever both biases are given; in_proj_bias.chunk fails for a layer built with bias=False
    n, lq, e = query.shape
    lk, hd = key.shape[1], e // num_heads
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, b_k, b_v = in_proj_bias.chunk(3)
    q = (query @ w_q.T + b_q).reshape(n, lq, num_heads, hd).transpose(1, 2)
    k = (key @ w_k.T + b_k).reshape(n, lk, num_heads, hd).transpose(1, 2)
    v = (value @ w_v.T + b_v).reshape(n, lk, num_heads, hd).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
    if mask is not None:
        m = mask.unsqueeze(1) if mask.dim() == 3 else mask
        scores = scores.masked_fill(~m, -1e9)
        weights = torch.softmax(scores, dim=-1) * m.any(dim=-1, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(n, lq, e)
    return out @ out_proj_weight.T + out_proj_bias, weights.mean(dim=1)


@alternative("multi_head_attention")
def multi_head_attention_loop_over_heads(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    e = query.shape[-1]
    hd = e // num_heads
    outs, weight_sum = [], 0.0
    for j in range(num_heads):
        # head j owns rows j*hd .. (j+1)*hd of each of the three stacked blocks
        rows = [block * e + j * hd for block in range(3)]
        w = [in_proj_weight[r : r + hd] for r in rows]
        b = [in_proj_bias[r : r + hd] if in_proj_bias is not None else 0.0 for r in rows]
        q, k, v = query @ w[0].T + b[0], key @ w[1].T + b[1], value @ w[2].T + b[2]
        scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
            keep = mask.any(dim=-1, keepdim=True)
            scores = torch.where(keep, scores, torch.zeros_like(scores))
            weights = torch.softmax(scores, dim=-1) * keep
        else:
            weights = torch.softmax(scores, dim=-1)
        outs.append(weights @ v)
        weight_sum = weight_sum + weights
    out = torch.cat(outs, dim=-1) @ out_proj_weight.T
    if out_proj_bias is not None:
        out = out + out_proj_bias
    return out, weight_sum / num_heads


@alternative("multi_head_attention")
def multi_head_attention_einsum(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    n, lq, e = query.shape
    hd = e // num_heads
    # (3, h, hd, E): block, head, feature within head, input feature
    w = in_proj_weight.reshape(3, num_heads, hd, e)
    b = in_proj_bias.reshape(3, num_heads, 1, hd) if in_proj_bias is not None else torch.zeros(3, num_heads, 1, hd, dtype=query.dtype, device=query.device)
    q = torch.einsum("nle,hde->nhld", query, w[0]) + b[0]
    k = torch.einsum("nle,hde->nhld", key, w[1]) + b[1]
    v = torch.einsum("nle,hde->nhld", value, w[2]) + b[2]
    scores = torch.einsum("nhqd,nhkd->nhqk", q, k) / math.sqrt(hd)
    if mask is not None:
        m = mask[:, None] if mask.dim() == 3 else mask
        scores = scores.masked_fill(~m, -1e9)
        weights = torch.softmax(scores, dim=-1) * m.any(dim=-1, keepdim=True)
    else:
        weights = torch.softmax(scores, dim=-1)
    heads = torch.einsum("nhqk,nhkd->nqhd", weights, v).reshape(n, lq, e)
    out = torch.einsum("nqe,fe->nqf", heads, out_proj_weight)
    if out_proj_bias is not None:
        out = out + out_proj_bias
    return out, weights.mean(dim=1)


# ----------------------------------------------------------------------------- positional_encoding


@mistake("positional_encoding", expect="positional_encoding.sin_cos_swapped_even")
def positional_encoding_cos_on_even_columns(length: int, d_model: int) -> Tensor:
    pe = torch.zeros(length, d_model)
    position = torch.arange(length).unsqueeze(1).float()
    div_term = torch.pow(10000.0, torch.arange(0, d_model, 2).float() / d_model)
    pe[:, 0::2] = torch.cos(position / div_term)  # mistake: cos on the even columns, not sin
    pe[:, 1::2] = torch.sin(position / div_term)[:, : d_model // 2]  # mistake: sin on the odd columns, not cos
    return pe


@mistake("positional_encoding", expect="positional_encoding.sines_cosines_were_concatenated")
def positional_encoding_concatenated_halves(length: int, d_model: int) -> Tensor:
    position = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    div_term = torch.pow(10000.0, torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    angles = position / div_term
    pe = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)[:, :d_model]  # mistake: [sin | cos], not interleaved
    return pe.to(torch.get_default_dtype())


@mistake("positional_encoding", expect="positional_encoding.exponent_uses_i_instead")
def positional_encoding_exponent_uses_i(length: int, d_model: int) -> Tensor:
    position = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    i = torch.arange((d_model + 1) // 2, dtype=torch.float64)
    angles = position / torch.pow(10000.0, i / d_model)  # mistake: i / d_model; should be 2i / d_model
    pe = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(1)[:, :d_model]
    return pe.to(torch.get_default_dtype())


@mistake("positional_encoding", expect="positional_encoding.cosine_column_2i_1")
def positional_encoding_column_index_in_exponent(length: int, d_model: int) -> Tensor:
    position = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    j = torch.arange(d_model, dtype=torch.float64)  # mistake: column index, not 2i: odd columns get their own frequency
    angles = position / torch.pow(10000.0, j / d_model)
    even = (torch.arange(d_model) % 2 == 0)
    pe = torch.where(even, torch.sin(angles), torch.cos(angles))
    return pe.to(torch.get_default_dtype())


@mistake("positional_encoding", expect="check:works for an odd d_model")
def positional_encoding_tutorial_fails_on_odd_d_model(length: int, d_model: int) -> Tensor:
    pe = torch.zeros(length, d_model)
    position = torch.arange(0, length, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)  # mistake: for odd d_model, one cos column too many for 1::2
    return pe


@mistake("positional_encoding", expect="positional_encoding.wrong_dtype_positional_encoding")
def positional_encoding_numpy_float64(length: int, d_model: int) -> Tensor:
    import numpy as np

    pos = np.arange(length)[:, None]
    two_i = np.arange(0, d_model, 2)[None, :]
    angles = pos / np.power(10000.0, two_i / d_model)
    pe = np.zeros((length, d_model))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, : d_model // 2])
    return torch.from_numpy(pe)  # mistake: float64 from NumPy, not the default dtype


@mistake("positional_encoding", expect="positional_encoding.positions_were_counted_1")
def positional_encoding_positions_from_one(length: int, d_model: int) -> Tensor:
    position = torch.arange(1, length + 1, dtype=torch.float64).unsqueeze(1)  # mistake: positions counted from 1, not 0
    div_term = torch.pow(10000.0, torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    angles = position / div_term
    pe = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(1)[:, :d_model]
    return pe.to(torch.get_default_dtype())


@alternative("positional_encoding")
def positional_encoding_exp_log_tutorial_form(length: int, d_model: int) -> Tensor:
    pe = torch.zeros(length, d_model, dtype=torch.float64)
    position = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)[:, : d_model // 2]
    return pe.to(torch.get_default_dtype())


@alternative("positional_encoding")
def positional_encoding_loop_over_columns(length: int, d_model: int) -> Tensor:
    position = torch.arange(length, dtype=torch.float64)
    columns = []
    for j in range(d_model):
        two_i = j - j % 2
        angle = position / 10000.0 ** (two_i / d_model)
        columns.append(torch.sin(angle) if j % 2 == 0 else torch.cos(angle))
    if not columns:
        return torch.zeros(length, 0)
    return torch.stack(columns, dim=1).to(torch.get_default_dtype())


@mistake("multi_head_attention", expect="multi_head_attention.mask_without_head_axis")
def multi_head_attention_mask_without_head_axis(
    query: Tensor, key: Tensor, value: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor | None,
    out_proj_weight: Tensor, out_proj_bias: Tensor | None, num_heads: int, mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    # mistake: the per-batch mask (N, Lq, Lk) goes to the heads' scores (N, h, Lq, Lk) as it is, without unsqueeze(1)
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, b_k, b_v = (None, None, None) if in_proj_bias is None else in_proj_bias.chunk(3)
    q = split_heads(_project(query, w_q, b_q), num_heads)
    k = split_heads(_project(key, w_k, b_k), num_heads)
    v = split_heads(_project(value, w_v, b_v), num_heads)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    return _project(merge_heads(out), out_proj_weight, out_proj_bias), weights.mean(dim=1)
