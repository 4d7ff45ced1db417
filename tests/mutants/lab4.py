"""Lab 4 (recurrent cells): known student mistakes and correct alternatives.

Each function is appended to the reference module under its task's name, so its body
may use what ``recurrent.py`` defines at module level: ``torch``, ``Tensor`` and the
lab's own functions (the ``lstm`` mutants call ``lstm_cell`` as a student would; the
import below only makes that name resolve when this file is run on its own).
"""

from __future__ import annotations

import torch

from solutions.lab4.recurrent import lstm_cell
from tests.mutants import alternative, mistake

# ----------------------------------------------------------------------------- rnn_cell


@mistake("rnn_cell", expect="rnn_cell.sigmoid_where_tanh_belongs")
def rnn_cell_sigmoid_instead_of_tanh(x, h, W_ih, W_hh, b_ih, b_hh):
    return torch.sigmoid(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)  # mistake: sigmoid where tanh belongs


@mistake("rnn_cell", expect="rnn_cell.b_hh_missing_pytorch")
def rnn_cell_forgets_b_hh(x, h, W_ih, W_hh, b_ih, b_hh):
    return torch.tanh(x @ W_ih.T + b_ih + h @ W_hh.T)  # mistake: b_hh is never added


@mistake("rnn_cell", expect="rnn_cell.result_h_n_transpose")
def rnn_cell_column_vector_form(x, h, W_ih, W_hh, b_ih, b_hh):
    # mistake: W x for column vectors, batch along the columns: the result is (H, N)
    return torch.tanh(W_ih @ x.T + b_ih[:, None] + W_hh @ h.T + b_hh[:, None])


@mistake("rnn_cell", expect="rnn_cell.relu_where_tanh_belongs")
def rnn_cell_relu(x, h, W_ih, W_hh, b_ih, b_hh):
    return torch.relu(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)  # mistake: ReLU where tanh belongs


@mistake("rnn_cell", expect="rnn_cell.bias_none")
def rnn_cell_crashes_without_biases(x, h, W_ih, W_hh, b_ih, b_hh):
    # mistake: both biases folded into one up front: None + tensor fails for a layer built with bias=False
    bias = b_ih + b_hh
    return torch.tanh(x @ W_ih.T + h @ W_hh.T + bias)


@alternative("rnn_cell")
def rnn_cell_concatenated_weights(x, h, W_ih, W_hh, b_ih, b_hh):
    # The lecture notes' form: one matrix acting on [x, h], one bias.
    W = torch.cat([W_ih, W_hh], dim=1)
    xh = torch.cat([x, h], dim=-1)
    return torch.tanh(xh @ W.T + sum(b for b in (b_ih, b_hh) if b is not None))


@alternative("rnn_cell")
def rnn_cell_einsum(x, h, W_ih, W_hh, b_ih, b_hh):
    pre = torch.einsum("...i,hi->...h", x, W_ih) + torch.einsum("...k,hk->...h", h, W_hh)
    return torch.tanh(pre + sum(b for b in (b_ih, b_hh) if b is not None))


# ----------------------------------------------------------------------------- lstm_cell


@mistake("lstm_cell", expect="lstm_cell.wrong_gate_order_pytorch")
def lstm_cell_gate_order_ifog(x, h, c, W_ih, W_hh, b_ih, b_hh):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, o, g = gates.chunk(4, dim=1)  # mistake: blocks cut as i, f, o, g; PyTorch's order is i, f, g, o
    i, f, o, g = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(g)
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new


@mistake("lstm_cell", expect="lstm_cell.forget_gate_multiplied_h")
def lstm_cell_forgets_h_instead_of_c(x, h, c, W_ih, W_hh, b_ih, b_hh):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_new = f * h + i * g  # mistake: f multiplies h, not the old cell state c
    return o * torch.tanh(c_new), c_new


@mistake("lstm_cell", expect="lstm_cell.h_come_new_cell")
def lstm_cell_output_from_h(x, h, c, W_ih, W_hh, b_ih, b_hh):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_new = f * c + i * g
    return o * torch.tanh(h), c_new  # mistake: tanh(h), not tanh of the new cell state c_new


@mistake("lstm_cell", expect="lstm_cell.h_come_new_cell_2")
def lstm_cell_output_from_old_c(x, h, c, W_ih, W_hh, b_ih, b_hh):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    h_new = o * torch.tanh(c)  # mistake: h' from the old c, before the new c is computed
    c = f * c + i * g
    return h_new, c


@mistake("lstm_cell", expect="lstm_cell.sigmoid_candidate_g_gates")
def lstm_cell_sigmoid_candidate(x, h, c, W_ih, W_hh, b_ih, b_hh):
    gates = torch.sigmoid(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)  # mistake: sigmoid on all four blocks; g needs tanh
    i, f, g, o = gates.chunk(4, dim=1)
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new


@mistake("lstm_cell", expect="lstm_cell.tanh_missing_cell_state")
def lstm_cell_no_tanh_on_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_new = f * c + i * g
    return o * c_new, c_new  # mistake: no tanh on the cell state: o * tanh(c_new)


@mistake("lstm_cell", expect="lstm_cell.b_hh_missing_gates")
def lstm_cell_forgets_b_hh(x, h, c, W_ih, W_hh, b_ih, b_hh):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T  # mistake: b_hh is never added
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new


@mistake("lstm_cell", expect="lstm_cell.float64_values_went_through")
def lstm_cell_float32_buffer(x, h, c, W_ih, W_hh, b_ih, b_hh):
    # mistake: an accumulator made with torch.zeros: float32 and on the CPU whatever the inputs are
    N, H = x.shape[0], h.shape[1]
    gates = torch.zeros(N, 4 * H)
    gates += x @ W_ih.T + b_ih
    gates += h @ W_hh.T + b_hh
    i = torch.sigmoid(gates[:, :H])
    f = torch.sigmoid(gates[:, H : 2 * H])
    g = torch.tanh(gates[:, 2 * H : 3 * H])
    o = torch.sigmoid(gates[:, 3 * H :])
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new


@mistake("lstm_cell", expect="check:uses no banned built-in or construct")
def lstm_cell_reaches_kernel_by_getattr(x, h, c, W_ih, W_hh, b_ih, b_hh):
    kernel = getattr(torch, "lstm" + "_cell")  # mistake: reaches the banned kernel through a computed getattr
    return kernel(x, (h, c), W_ih, W_hh, b_ih, b_hh)


@mistake("lstm_cell", expect="lstm_cell.bias_none")
def lstm_cell_crashes_without_biases(x, h, c, W_ih, W_hh, b_ih, b_hh):
    # mistake: the biases cut into gate blocks like the weights: None.chunk fails for a layer built with bias=False
    gates = (x @ W_ih.T + h @ W_hh.T).chunk(4, dim=-1)
    biases = [bi + bh for bi, bh in zip(b_ih.chunk(4), b_hh.chunk(4))]
    i, f, g, o = (gate + bias for gate, bias in zip(gates, biases))
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


@alternative("lstm_cell")
def lstm_cell_per_gate_weights(x, h, c, W_ih, W_hh, b_ih, b_hh):
    # Slice each gate's weights out and compute the four gates separately (no bias: zeros).
    H = h.shape[-1]
    b_ih = W_ih.new_zeros(W_ih.shape[0]) if b_ih is None else b_ih
    b_hh = W_hh.new_zeros(W_hh.shape[0]) if b_hh is None else b_hh

    def gate(k):
        rows = slice(k * H, (k + 1) * H)
        return x @ W_ih[rows].T + b_ih[rows] + h @ W_hh[rows].T + b_hh[rows]

    i = torch.sigmoid(gate(0))
    f = torch.sigmoid(gate(1))
    g = torch.tanh(gate(2))
    o = torch.sigmoid(gate(3))
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new


@alternative("lstm_cell")
def lstm_cell_concatenated_weights(x, h, c, W_ih, W_hh, b_ih, b_hh):
    # The lecture notes' form: every gate reads [x, h] through one matrix, tanh(a) = 2 sigmoid(2a) - 1.
    W = torch.cat([W_ih, W_hh], dim=1)
    gates = torch.cat([x, h], dim=-1) @ W.T + sum(b for b in (b_ih, b_hh) if b is not None)
    i, f, g, o = torch.split(gates, h.shape[-1], dim=-1)
    i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
    g = 2 * torch.sigmoid(2 * g) - 1
    c_new = torch.addcmul(f * c, i, g)
    return o * torch.tanh(c_new), c_new


# ----------------------------------------------------------------------------- gru_cell


@mistake("gru_cell", expect="gru_cell.bias_none")
def gru_cell_crashes_without_biases(x, h, W_ih, W_hh, b_ih, b_hh):
    # mistake: right with both biases, but b_ih.chunk fails for a layer built with bias=False (the contract allows None)
    x_r, x_z, x_n = (x @ W_ih.T).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ W_hh.T).chunk(3, dim=-1)
    b_ir, b_iz, b_in = b_ih.chunk(3)
    b_hr, b_hz, b_hn = b_hh.chunk(3)
    r = torch.sigmoid(x_r + b_ir + h_r + b_hr)
    z = torch.sigmoid(x_z + b_iz + h_z + b_hz)
    n = torch.tanh(x_n + b_in + r * (h_n + b_hn))
    return (1 - z) * n + z * h


@alternative("gru_cell")
def gru_cell_zeros_for_missing_biases(x, h, W_ih, W_hh, b_ih, b_hh):
    # a missing bias replaced by zeros on the inputs' device and dtype
    b_ih = torch.zeros(W_ih.shape[0], dtype=x.dtype, device=x.device) if b_ih is None else b_ih
    b_hh = torch.zeros(W_hh.shape[0], dtype=x.dtype, device=x.device) if b_hh is None else b_hh
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    return (1 - z) * torch.tanh(x_n + r * h_n) + z * h


@mistake("gru_cell", expect="gru_cell.reset_gate_applied_outside")
def gru_cell_reset_outside_bias(x, h, W_ih, W_hh, b_ih, b_hh):
    H = h.shape[1]
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    h_r, h_z, _ = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * (h @ W_hh[2 * H :].T) + b_hh[2 * H :])  # mistake: b_hn added outside r * (...)
    return (1 - z) * n + z * h


@mistake("gru_cell", expect="gru_cell.reset_gate_applied_h")
def gru_cell_reset_before_matmul(x, h, W_ih, W_hh, b_ih, b_hh):
    # mistake: the original paper's GRU (Keras reset_after=False): the reset gate scales h itself
    H = h.shape[1]
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    h_r, h_z, _ = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + (r * h) @ W_hh[2 * H :].T + b_hh[2 * H :])
    return (1 - z) * n + z * h


@mistake("gru_cell", expect="gru_cell.reset_gate_multiplied_input")
def gru_cell_sums_projections_first(x, h, W_ih, W_hh, b_ih, b_hh):
    # mistake: adds the input and hidden halves of n before the reset gate can act on the hidden half
    r, z, n = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(3, dim=1)
    r, z = torch.sigmoid(r), torch.sigmoid(z)
    n = torch.tanh(r * n)
    return (1 - z) * n + z * h


@mistake("gru_cell", expect="gru_cell.update_gate_wrong_side")
def gru_cell_z_swapped(x, h, W_ih, W_hh, b_ih, b_hh):
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return z * n + (1 - z) * h  # mistake: z and 1 - z swapped: z keeps the old state


@mistake("gru_cell", expect="gru_cell.wrong_gate_order_blocks")
def gru_cell_gate_order_zrn(x, h, W_ih, W_hh, b_ih, b_hh):
    x_z, x_r, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)  # mistake: blocks cut as z, r, n; the order is r, z, n
    h_z, h_r, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=1)  # mistake: the same wrong order for W_hh's blocks
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


@mistake("gru_cell", expect="gru_cell.sigmoid_candidate_n_gates")
def gru_cell_sigmoid_candidate(x, h, W_ih, W_hh, b_ih, b_hh):
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.sigmoid(x_n + r * h_n)  # mistake: sigmoid on the candidate n; it needs tanh
    return (1 - z) * n + z * h


@mistake("gru_cell", expect="gru_cell.b_hh_missing_gates")
def gru_cell_forgets_b_hh(x, h, W_ih, W_hh, b_ih, b_hh):
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    h_r, h_z, h_n = (h @ W_hh.T).chunk(3, dim=1)  # mistake: b_hh is never added
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


@mistake("gru_cell", expect="gru_cell.tensor_left_inputs_device")
def gru_cell_buffer_on_cpu(x, h, W_ih, W_hh, b_ih, b_hh):
    # mistake: the dtype is right, the device is not: torch.zeros without device= lives on the CPU
    H = h.shape[1]
    h_new = torch.zeros(x.shape[0], H, dtype=x.dtype)
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    h_new = h_new + (1 - z) * n + z * h
    return h_new


@mistake("gru_cell", expect="check:uses no banned built-in or construct")
def gru_cell_calls_vf_kernel(x, h, W_ih, W_hh, b_ih, b_hh):
    return torch._VF.gru_cell(x, h, W_ih, W_hh, b_ih, b_hh)  # mistake: calls the banned torch._VF kernel


@alternative("gru_cell")
def gru_cell_interpolation_form(x, h, W_ih, W_hh, b_ih, b_hh):
    # PyTorch's own arithmetic: h' = n + z * (h - n), gates cut with split.
    H = h.shape[-1]
    x_r, x_z, x_n = torch.split(x @ W_ih.T if b_ih is None else x @ W_ih.T + b_ih, H, dim=-1)
    h_r, h_z, h_n = torch.split(h @ W_hh.T if b_hh is None else h @ W_hh.T + b_hh, H, dim=-1)
    rz = torch.sigmoid(torch.cat([x_r + h_r, x_z + h_z], dim=-1))
    r, z = rz[..., :H], rz[..., H:]
    n = torch.tanh(x_n + r * h_n)
    return n + z * (h - n)


@alternative("gru_cell")
def gru_cell_per_gate_weights(x, h, W_ih, W_hh, b_ih, b_hh):
    H = h.shape[-1]
    b_ih = W_ih.new_zeros(3 * H) if b_ih is None else b_ih
    b_hh = W_hh.new_zeros(3 * H) if b_hh is None else b_hh
    W_ir, W_iz, W_in = W_ih[:H], W_ih[H : 2 * H], W_ih[2 * H :]
    W_hr, W_hz, W_hn = W_hh[:H], W_hh[H : 2 * H], W_hh[2 * H :]
    b_ir, b_iz, b_in = b_ih[:H], b_ih[H : 2 * H], b_ih[2 * H :]
    b_hr, b_hz, b_hn = b_hh[:H], b_hh[H : 2 * H], b_hh[2 * H :]
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    return (1 - z) * n + z * h


# ----------------------------------------------------------------------------- lstm


@mistake("lstm", expect="lstm.out_stacked_along_wrong")
def lstm_stacks_batch_first(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    h, c = h0, c0
    outputs = []
    for t in range(xs.shape[0]):
        h, c = lstm_cell(xs[t], h, c, W_ih, W_hh, b_ih, b_hh)
        outputs.append(h)
    return torch.stack(outputs, dim=1), (h, c)  # mistake: dim=1 stacks batch-first (N, T, H); time goes first


@mistake("lstm", expect="lstm.torch_cat_glued_steps")
def lstm_cat_instead_of_stack(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    h, c = h0, c0
    outputs = []
    for t in range(xs.shape[0]):
        h, c = lstm_cell(xs[t], h, c, W_ih, W_hh, b_ih, b_hh)
        outputs.append(h)
    return torch.cat(outputs, dim=0), (h, c)  # mistake: torch.cat glues the steps into (T*N, H); stack them


@mistake("lstm", expect="lstm.final_state_last_step")
def lstm_final_state_batch_first_index(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    # mistake: out[:, -1] is the batch_first idiom; with time first it picks the last sample at every step
    h, c = h0, c0
    outputs, cells = [], []
    for t in range(xs.shape[0]):
        h, c = lstm_cell(xs[t], h, c, W_ih, W_hh, b_ih, b_hh)
        outputs.append(h)
        cells.append(c)
    out = torch.stack(outputs)
    return out, (out[:, -1], torch.stack(cells)[:, -1])


@mistake("lstm", expect="lstm.final_state_first_step")
def lstm_final_state_from_first_step(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    h, c = h0, c0
    outputs, cells = [], []
    for t in range(xs.shape[0]):
        h, c = lstm_cell(xs[t], h, c, W_ih, W_hh, b_ih, b_hh)
        outputs.append(h)
        cells.append(c)
    return torch.stack(outputs), (outputs[0], cells[0])  # mistake: the first step's state, not the last step's


@mistake("lstm", expect="lstm.off_one_out_t")
def lstm_output_before_step(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    h, c = h0, c0
    outputs = []
    for t in range(xs.shape[0]):
        outputs.append(h)  # mistake: appended before the step: out[t] is the state after xs[t]
        h, c = lstm_cell(xs[t], h, c, W_ih, W_hh, b_ih, b_hh)
    return torch.stack(outputs), (h, c)


@mistake("lstm", expect="lstm.cell_state_carried_each")
def lstm_cell_state_not_carried(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    h = h0
    outputs = []
    for t in range(xs.shape[0]):
        h, c = lstm_cell(xs[t], h, c0, W_ih, W_hh, b_ih, b_hh)  # mistake: c0 at every step instead of the carried c
        outputs.append(h)
    return torch.stack(outputs), (h, c)


@mistake("lstm", expect="lstm.h0_c0_were_ignored")
def lstm_ignores_initial_state(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    # mistake: nn.LSTM's default when no state is passed, but here h0 and c0 are given
    h, c = torch.zeros_like(h0), torch.zeros_like(c0)
    outputs = []
    for t in range(xs.shape[0]):
        h, c = lstm_cell(xs[t], h, c, W_ih, W_hh, b_ih, b_hh)
        outputs.append(h)
    return torch.stack(outputs), (h, c)


@mistake("lstm", expect="lstm.out_float32_float64_inputs")
def lstm_float32_output_buffer(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    T, N = xs.shape[0], xs.shape[1]
    out = torch.zeros(T, N, h0.shape[1])  # mistake: no dtype=: a float32 buffer (and on the CPU)
    h, c = h0, c0
    for t in range(T):
        h, c = lstm_cell(xs[t], h, c, W_ih, W_hh, b_ih, b_hh)
        out[t] = h
    return out, (out[-1], c)


@mistake("lstm", expect="lstm.bias_none")
def lstm_crashes_without_biases(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    # mistake: one bias for every step, summed up front: None + None fails for a layer built with bias=False
    bias = b_ih + b_hh
    h, c = h0, c0
    outputs = []
    for x in xs:
        i, f, g, o = (x @ W_ih.T + h @ W_hh.T + bias).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs), (h, c)


@alternative("lstm")
def lstm_input_projection_hoisted(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    # The input half of every gate for all steps in one product, then only the recurrence in the loop.
    x_gates = xs @ W_ih.T if b_ih is None else xs @ W_ih.T + b_ih
    h, c = h0, c0
    outputs = []
    for t in range(xs.shape[0]):
        i, f, g, o = (x_gates[t] + h @ W_hh.T + (0 if b_hh is None else b_hh)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs), (h, c)


@alternative("lstm")
def lstm_preallocated_output(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    # A buffer made from the input (same device and dtype), filled step by step.
    T, N = xs.shape[0], xs.shape[1]
    out = xs.new_empty(T, N, h0.shape[-1])
    h, c = h0, c0
    for t in range(T):
        h, c = lstm_cell(xs[t], h, c, W_ih, W_hh, b_ih, b_hh)
        out[t] = h
    return out, (out[T - 1], c)


# ----------------------------------------------------------------------------- embedding


@mistake("embedding", expect="embedding.one_hot_matrix_has")
def embedding_one_hot_float32(ids, table):
    one_hot = torch.nn.functional.one_hot(ids, table.shape[0]).float()  # mistake: float32, not the table's dtype
    return one_hot @ table


@mistake("embedding", expect="embedding.one_hot_ids_without")
def embedding_one_hot_inferred_width(ids, table):
    one_hot = torch.nn.functional.one_hot(ids).to(table.dtype)  # mistake: no num_classes: max id + 1 wide, not V
    return one_hot @ table


@mistake("embedding", expect="embedding.ids_were_flattened_result")
def embedding_flattens_ids(ids, table):
    return table[ids.flatten()]  # mistake: ids flattened, the result never reshaped


@mistake("embedding", expect="generic.detached")
def embedding_detached_table(ids, table):
    return table.detach()[ids]  # mistake: detach() stops the gradient reaching the table


@mistake("embedding", expect="check:uses no banned built-in or construct")
def embedding_calls_functional(ids, table):
    return torch.nn.functional.embedding(ids, table)  # mistake: calls the banned built-in embedding


@alternative("embedding")
def embedding_fancy_indexing(ids, table):
    return table[ids]


@alternative("embedding")
def embedding_one_hot_matmul(ids, table):
    # The lookup as a product: one-hot rows (in the table's dtype) times the table.
    one_hot = torch.nn.functional.one_hot(ids, num_classes=table.shape[0]).to(table.dtype)
    return one_hot @ table


@mistake("rnn_cell", expect="rnn_cell.b_ih_missing_pytorch")
def rnn_cell_one_bias(x, h, W_ih, W_hh, b_ih, b_hh):
    # mistake: the textbook cell has one bias; PyTorch's has two, and this drops the input's
    return torch.tanh(x @ W_ih.T + h @ W_hh.T + b_hh)


@mistake("rnn_cell", expect="rnn_cell.weights_were_used_without")
def rnn_cell_weights_untransposed(x, h, W_ih, W_hh, b_ih, b_hh):
    # mistake: W x + U h written for row vectors without the .T: right only when the shapes happen to fit
    return torch.tanh(x @ W_ih + b_ih + h @ W_hh + b_hh)


@mistake("rnn_cell", expect="rnn_cell.tensor_left_inputs_device")
def rnn_cell_bias_sum_on_cpu(x, h, W_ih, W_hh, b_ih, b_hh):
    # mistake: torch.tensor(...) without device= puts the summed bias on the CPU
    bias = torch.tensor((b_ih + b_hh).tolist(), dtype=x.dtype)
    return torch.tanh(x @ W_ih.T + h @ W_hh.T + bias)


@mistake("lstm_cell", expect="lstm_cell.h_c_swapped_return")
def lstm_cell_returns_c_first(x, h, c, W_ih, W_hh, b_ih, b_hh):
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return c_next, torch.sigmoid(o) * torch.tanh(c_next)  # mistake: c' and h' swapped: return (h', c')


@mistake("lstm_cell", expect="lstm_cell.wrong_gate_order_pytorch_2")
def lstm_cell_gate_order_igfo(x, h, c, W_ih, W_hh, b_ih, b_hh):
    # mistake: cuts the blocks as i, g, f, o (the order some blog posts draw them in)
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, g, f, o = gates.chunk(4, dim=-1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_next), c_next


@mistake("lstm_cell", expect="lstm_cell.tensor_left_inputs_device")
def lstm_cell_zero_state_on_cpu(x, h, c, W_ih, W_hh, b_ih, b_hh):
    # mistake: a fresh buffer for the gates, made without device=
    gates = torch.zeros(x.shape[0], W_ih.shape[0], dtype=x.dtype)
    gates = gates + x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_next), c_next


@mistake("lstm", expect="lstm.tensor_left_inputs_device")
def lstm_output_buffer_on_cpu(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    # mistake: the output buffer made with torch.zeros and no device=, then filled step by step
    out = torch.zeros(xs.shape[0], h0.shape[0], h0.shape[1], dtype=xs.dtype)
    h, c = h0, c0
    for t in range(xs.shape[0]):
        h, c = lstm_cell(xs[t], h, c, W_ih, W_hh, b_ih, b_hh)
        out = out + torch.stack([h if s == t else torch.zeros_like(h) for s in range(xs.shape[0])])
    return out, (h, c)


@mistake("embedding", expect="embedding.tensor_left_inputs_device")
def embedding_one_hot_on_cpu(ids, table):
    # mistake: the one-hot matrix built with torch.zeros (no device=), then filled in
    one_hot = torch.zeros(ids.numel(), table.shape[0], dtype=table.dtype)
    one_hot[torch.arange(ids.numel()), ids.reshape(-1).cpu()] = 1
    return (one_hot @ table).reshape(*ids.shape, table.shape[1])


@mistake("gru_cell", expect="generic.detached")
def gru_cell_detaches_the_state(x, h, W_ih, W_hh, b_ih, b_hh):
    # mistake: .detach() "to save memory": no gradient reaches h (nor, through it, the earlier steps)
    h = h.detach()
    gi, gh, H = x @ W_ih.T + b_ih, h @ W_hh.T + b_hh, h.shape[1]
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
    return (1 - z) * torch.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :]) + z * h


@alternative("embedding")
def embedding_validates_ids(ids, table):
    # A data-dependent check (right on CPU and CUDA): meta tensors cannot answer it, which proves nothing.
    if bool((ids < 0).any()) or bool((ids >= table.shape[0]).any()):
        raise IndexError("an id is outside [0, V)")
    return table[ids]


@mistake("embedding", expect="embedding.tensor_left_inputs_device")
def embedding_zeros_buffer_on_the_cpu(ids, table):
    # mistake: torch.zeros without device= lives on the CPU, whatever device the table is on
    out = torch.zeros(*ids.shape, table.shape[1], dtype=table.dtype)
    return out + table[ids]
