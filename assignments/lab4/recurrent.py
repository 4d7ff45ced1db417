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


def rnn_cell(x: Tensor, h: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
    """h' = tanh(x @ W_ihᵀ + b_ih + h @ W_hhᵀ + b_hh), as torch.nn.RNNCell (nonlinearity='tanh').

    x (N, I), h (N, H), W_ih (H, I), W_hh (H, H), b_ih and b_hh (H,) -> h' (N, H).
    """
    raise NotImplementedError("Task lab4.rnn_cell: not implemented yet")


def lstm_cell(
    x: Tensor, h: Tensor, c: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None
) -> tuple[Tensor, Tensor]:
    """c' = f * c + i * g and h' = o * tanh(c'), as torch.nn.LSTMCell; returns (h', c').

    The four gate blocks come from one product, in the order i, f, g, o:
    [i | f | g | o] = x @ W_ihᵀ + b_ih + h @ W_hhᵀ + b_hh, then i, f, o = sigmoid(.), g = tanh(.).
    x (N, I), h and c (N, H), W_ih (4H, I), W_hh (4H, H), b_ih and b_hh (4H,) -> h', c' (N, H).
    """
    raise NotImplementedError("Task lab4.lstm_cell: not implemented yet")


def gru_cell(x: Tensor, h: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
    """h' = (1 - z) * n + z * h with n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), as torch.nn.GRUCell.

    Gate blocks in the order r, z, n: [r | z | n] rows of W_ih, W_hh, b_ih, b_hh;
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z = sigmoid(W_iz x + b_iz + W_hz h + b_hz).
    The reset gate r multiplies the whole hidden term (W_hn h + b_hn), bias included.
    x (N, I), h (N, H), W_ih (3H, I), W_hh (3H, H), b_ih and b_hh (3H,) -> h' (N, H).
    """
    raise NotImplementedError("Task lab4.gru_cell: not implemented yet")


def lstm(
    xs: Tensor, h0: Tensor, c0: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """lstm_cell unrolled over time: starting from (h, c) = (h0, c0), for t = 0 .. T-1
    (h, c) = lstm_cell(xs[t], h, c, W_ih, W_hh, b_ih, b_hh) and out[t] = h.

    One layer of torch.nn.LSTM (batch_first=False) with its num_layers axis dropped.
    xs (T, N, I) with T >= 1, h0 and c0 (N, H) -> out (T, N, H), (h_T, c_T) each (N, H):
    the states after the last step (so h_T equals out[T - 1]).
    """
    raise NotImplementedError("Task lab4.lstm: not implemented yet")


def embedding(ids: Tensor, table: Tensor) -> Tensor:
    """vectors[..., :] = table[ids[...], :]: row ids[...] of the table for every id (one-hot(ids) @ table).

    ids: int64 of any shape, each in [0, V); table (V, E) -> vectors ids.shape + (E,).
    Gradients flow to the table (only the selected rows receive any).
    """
    raise NotImplementedError("Task lab4.embedding: not implemented yet")
