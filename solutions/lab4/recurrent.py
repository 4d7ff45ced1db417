"""Recurrent cells from tensor operations.

A recurrent network reads a sequence one step at a time and carries a state from
step to step. A cell is the rule for one step: it takes the input x_t and the state
of the previous step and returns the new state. The same weights are used at every
step, so a sequence of any length needs only one set of parameters.

    RNN:   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
    LSTM:  a cell state c beside h, written through gates:  c' = f * c + i * g,  h' = o * tanh(c')
    GRU:   one state h, blended with a candidate n:  h' = (1 - z) * n + z * h

Conventions of this lab (they are those of PyTorch, which grades it):

- Weight layouts are those of torch.nn.RNNCell / LSTMCell / GRUCell: W_ih (G*H, I),
  W_hh (G*H, H), b_ih and b_hh (G*H,), with G = 1, 4, 3 gate blocks stacked along
  the first axis in the order (i, f, g, o) for the LSTM and (r, z, n) for the GRU.
  Either bias may be None (a layer built with bias=False): then it is not added.
  Weights act on row-vector batches as x @ Wᵀ + b, so x (N, I) gives (N, G*H).
- Tensors stay on their device and keep their dtype; autograd must flow through.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _affine(x: Tensor, W: Tensor, b: Tensor | None) -> Tensor:
    """x @ Wᵀ + b, or x @ Wᵀ where there is no bias (b is None)."""
    return x @ W.T if b is None else x @ W.T + b


def rnn_cell(x: Tensor, h: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
    """h' = tanh(x @ W_ihᵀ + b_ih + h @ W_hhᵀ + b_hh), as torch.nn.RNNCell (nonlinearity='tanh').

    x (N, I), h (N, H), W_ih (H, I), W_hh (H, H), b_ih and b_hh (H,) -> h' (N, H).
    """
    return torch.tanh(_affine(x, W_ih, b_ih) + _affine(h, W_hh, b_hh))


def lstm_cell(
    x: Tensor, h: Tensor, c: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None
) -> tuple[Tensor, Tensor]:
    """c' = f * c + i * g and h' = o * tanh(c'), as torch.nn.LSTMCell; returns (h', c').

    The four gate blocks come from one product, in the order i, f, g, o:
    [i | f | g | o] = x @ W_ihᵀ + b_ih + h @ W_hhᵀ + b_hh, then i, f, o = sigmoid(.), g = tanh(.).
    x (N, I), h and c (N, H), W_ih (4H, I), W_hh (4H, H), b_ih and b_hh (4H,) -> h', c' (N, H).
    """
    # Pre-activations of all four gates at once, then cut them apart (order i, f, g, o).
    gates = _affine(x, W_ih, b_ih) + _affine(h, W_hh, b_hh)
    i, f, g, o = gates.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    # Forget part of the old cell state, write the gated candidate, expose a gated view of it.
    c_next = f * c + i * g
    h_next = o * torch.tanh(c_next)
    return h_next, c_next


def gru_cell(x: Tensor, h: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
    """h' = (1 - z) * n + z * h with n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), as torch.nn.GRUCell.

    Gate blocks in the order r, z, n: [r | z | n] rows of W_ih, W_hh, b_ih, b_hh;
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z = sigmoid(W_iz x + b_iz + W_hz h + b_hz).
    The reset gate r multiplies the whole hidden term (W_hn h + b_hn), bias included.
    x (N, I), h (N, H), W_ih (3H, I), W_hh (3H, H), b_ih and b_hh (3H,) -> h' (N, H).
    """
    # The input and hidden projections stay apart: r touches only the hidden part of n.
    x_r, x_z, x_n = _affine(x, W_ih, b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = _affine(h, W_hh, b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    # Blend: z keeps the old state, 1 - z takes the candidate.
    return (1 - z) * n + z * h


def lstm(
    xs: Tensor, h0: Tensor, c0: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """lstm_cell unrolled over time: starting from (h, c) = (h0, c0), for t = 0 .. T-1
    (h, c) = lstm_cell(xs[t], h, c, W_ih, W_hh, b_ih, b_hh) and out[t] = h.

    One layer of torch.nn.LSTM (batch_first=False) with its num_layers axis dropped.
    xs (T, N, I) with T >= 1, h0 and c0 (N, H) -> out (T, N, H), (h_T, c_T) each (N, H):
    the states after the last step (so h_T equals out[T - 1]).
    """
    if xs.shape[0] == 0:
        raise ValueError("lstm needs at least one time step (torch.nn.LSTM refuses T = 0)")
    # Walk the sequence, carrying both states from each step to the next.
    h, c = h0, c0
    outputs = []
    for x in xs:
        h, c = lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh)
        outputs.append(h)
    # Stack the hidden states along a new leading time axis.
    return torch.stack(outputs, dim=0), (h, c)


def embedding(ids: Tensor, table: Tensor) -> Tensor:
    """vectors[..., :] = table[ids[...], :]: row ids[...] of the table for every id (one-hot(ids) @ table).

    ids: int64 of any shape, each in [0, V); table (V, E) -> vectors ids.shape + (E,).
    Gradients flow to the table (only the selected rows receive any).
    """
    # Select the rows (index_select, like torch.nn.Embedding, rejects negative ids), then restore ids' shape.
    rows = table.index_select(0, ids.reshape(-1))
    return rows.reshape(*ids.shape, table.shape[1])
