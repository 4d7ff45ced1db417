"""Lab 4's mistake producers that the student release leaves out.

Each of these computes a recurrent cell from the same tensor operations a student uses, with one
mistake in it; without the mistake it would be a working solution, so it cannot ship to students.
In the release their hints are given on submission (``grader.declare.spec.withheld``); every other mistake
of lab 4 is produced by running PyTorch's own layers on changed inputs.
"""

from __future__ import annotations

from typing import Any, Callable

from grader.declare import oracles


def _tanh(value: Any) -> Any:
    return oracles.torch().tanh(value)


def rnn_sigmoid(x: Any, h: Any, W_ih: Any, W_hh: Any, b_ih: Any, b_hh: Any) -> Any:
    """The RNN cell squashed with sigmoid instead of tanh."""
    return oracles.torch().sigmoid(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)


def _lstm_gates(summed: Any, candidate: str = "tanh") -> Any:
    """i, f, g, o of PyTorch's LSTM cell from the gates' sum (the candidate squashed with ``candidate``)."""
    t = oracles.torch()
    i, f, g, o = summed.chunk(4, dim=-1)
    return t.sigmoid(i), t.sigmoid(f), getattr(t, candidate)(g), t.sigmoid(o)


def _cell_from(gates: Any, c: Any) -> tuple[Any, Any]:
    """(h', c') from activated gates i, f, g, o and a cell state c."""
    i, f, g, o = gates
    c_new = f * c + i * g
    return o * _tanh(c_new), c_new


def _lstm_with(cell: Callable[..., tuple[Any, Any]], candidate: str = "tanh") -> Callable[..., tuple[Any, Any]]:
    """A producer: ``cell(h, c, (i, f, g, o))`` returns the (h', c') the mistake computes."""
    def produce(x: Any, h: Any, c: Any, W_ih: Any, W_hh: Any, b_ih: Any, b_hh: Any) -> tuple[Any, Any]:
        return cell(h, c, _lstm_gates(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, candidate))
    return produce


lstm_h_from_old_h = _lstm_with(lambda h, c, gates: (gates[3] * _tanh(h), _cell_from(gates, c)[1]))
lstm_h_from_old_c = _lstm_with(lambda h, c, gates: (gates[3] * _tanh(c), _cell_from(gates, c)[1]))
lstm_no_tanh_on_c = _lstm_with(lambda h, c, gates: (gates[3] * _cell_from(gates, c)[1], _cell_from(gates, c)[1]))
lstm_sigmoid_candidate = _lstm_with(lambda h, c, gates: _cell_from(gates, c), candidate="sigmoid")


def lstm_float32_gates(x: Any, h: Any, c: Any, W_ih: Any, W_hh: Any, b_ih: Any, b_hh: Any) -> tuple[Any, Any]:
    """The gates summed into a float32 buffer (torch.zeros without dtype=) in float64 code."""
    t = oracles.torch()
    gates = t.zeros(x.shape[0], W_ih.shape[0], dtype=t.float32, device=x.device)
    gates += x @ W_ih.T + b_ih
    gates += h @ W_hh.T + b_hh
    return _cell_from(_lstm_gates(gates), c)


def _gru_with(candidate: Callable[..., Any], blend: Callable[[Any, Any, Any], Any] | None = None) -> Callable[..., Any]:
    """A producer: the GRU with its candidate n computed by ``candidate(gi_n, h, W_hn, b_hn, r)``
    (and its blend by ``blend(z, n, h)``)."""
    def produce(x: Any, h: Any, W_ih: Any, W_hh: Any, b_ih: Any, b_hh: Any) -> Any:
        t = oracles.torch()
        (x_r, x_z, x_n), (W_hr, W_hz, W_hn), (b_hr, b_hz, b_hn) = \
            (x @ W_ih.T + b_ih).chunk(3, dim=-1), W_hh.chunk(3), b_hh.chunk(3)
        r = t.sigmoid(x_r + h @ W_hr.T + b_hr)
        z = t.sigmoid(x_z + h @ W_hz.T + b_hz)
        n = candidate(x_n, h, W_hn, b_hn, r)
        return (blend or (lambda z_, n_, h_: (1 - z_) * n_ + z_ * h_))(z, n, h)
    return produce


gru_reset_outside = _gru_with(lambda x_n, h, W_hn, b_hn, r: _tanh(x_n + r * (h @ W_hn.T) + b_hn))
gru_reset_before_matrix = _gru_with(lambda x_n, h, W_hn, b_hn, r: _tanh(x_n + (r * h) @ W_hn.T + b_hn))
gru_update_swapped = _gru_with(lambda x_n, h, W_hn, b_hn, r: _tanh(x_n + r * (h @ W_hn.T + b_hn)),
                               lambda z, n, h: z * n + (1 - z) * h)
gru_sigmoid_candidate = _gru_with(lambda x_n, h, W_hn, b_hn, r: oracles.torch().sigmoid(x_n + r * (h @ W_hn.T + b_hn)))


def gru_summed(x: Any, h: Any, W_ih: Any, W_hh: Any, b_ih: Any, b_hh: Any) -> Any:
    """The GRU with the reset gate applied to the input part of n as well."""
    t = oracles.torch()
    r, z, n = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(3, dim=-1)
    r, z = t.sigmoid(r), t.sigmoid(z)
    return oracles.plain((1 - z) * t.tanh(r * n) + z * h)
