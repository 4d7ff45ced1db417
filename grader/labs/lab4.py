"""Lab 4, recurrent cells from PyTorch primitives: the tasks, their checks and the mistakes they recognise.

PyTorch's own layers are the oracle: ``nn.RNNCell``, ``nn.LSTMCell``, ``nn.GRUCell`` and ``nn.LSTM``
called with the student's weights (``torch.func.functional_call`` on a layer built once on the meta
device), and ``F.embedding``. Values and gradients (autograd through both sides, with respect to every
floating argument) are compared on every device present, in float64 (tight) and float32, with TF32 off.
A third run hands the function "meta" tensors, which have a shape, a dtype and a device but no data:
a tensor made on the CPU inside the function, or data moved off the device, shows up there even on a
machine without a GPU. The unrolled ``lstm`` is compared step by step, so a failure names the first
time step at which it leaves ``nn.LSTM``. Banned layers and kernels are refused in the source and,
however they are reached, at run time.

The mistakes' producers run PyTorch's own layers on changed inputs (their gate blocks reordered, a
bias zeroed, c replaced by h), which the students' code may not call; the few that must compute
a cell from the same tensor operations a student uses live in ``grader.labs.lab4_withheld``,
which the student release leaves out (their hints are given on submission).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np
from hypothesis import strategies as st

from grader.declare import oracles
from grader.declare.checks import (DEVICES_BOTH, Gradients, Matches, Property, Torch, Worked, blocks_in_wrong_order,
                                   fails_on_none, swap_blocks)
from grader.declare.compare import difference
from grader.declare.context import Context
from grader.declare.spec import Call, Lab, Mistake, Task, Tolerance, Variant, call, withheld
from grader.declare.strategies import MODERATE, float_arrays, reused, shapes, sizes
from grader.sandbox.wire import TensorValue

# Measured worst cases (docs/lab4-notes.md): float64 agrees to rounding, float32 needs 2e-7 (values)
# and 1.2e-5 (lstm gradients). float64 stays tight: a float32 buffer inside float64 code is off by ~1e-8.
RNN_VALUES = {"float64": Tolerance(1e-10, 1e-12), "float32": Tolerance(1e-4, 1e-5)}
RNN_GRADS = {"float64": Tolerance(1e-10, 1e-10), "float32": Tolerance(1e-4, 1e-4)}

_RNN_LAYERS = ("RNN", "RNNCell", "LSTM", "LSTMCell", "GRU", "GRUCell")
_RNN_KERNELS = ("lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell",
                "quantized_lstm_cell", "quantized_gru_cell", "quantized_rnn_tanh_cell", "quantized_rnn_relu_cell",
                "embedding", "embedding_bag", "_embedding_bag")
# Replaced by tripwires in the worker; for each, every PyTorch function of the same last name is refused
# at run time however it is reached (torch._C._VariableFunctions, torch.ops.aten, getattr with a built string).
RNN_TRIPWIRES = (
    *(f"{module}.{name}" for module in ("torch.nn", "torch.nn.modules", "torch.nn.modules.rnn")
      for name in _RNN_LAYERS),
    "torch.nn.Embedding", "torch.nn.EmbeddingBag", "torch.nn.modules.Embedding", "torch.nn.modules.sparse.Embedding",
    "torch.nn.functional.embedding", "torch.nn.functional.embedding_bag",
    *(f"{module}.{name}" for module in ("torch", "torch._VF") for name in _RNN_KERNELS),
)
_lab4_withheld = functools.partial(withheld, "grader.labs.lab4_withheld")  # producers the student release leaves out


# ----------------------------------------------------------------------------- oracles


@functools.lru_cache(maxsize=None)
def _layer(kind: str, inputs: int, hidden: int, **options: Any) -> Any:
    """One PyTorch layer ``nn.<kind>`` per configuration, on the meta device: its parameters are never used,
    ``functional_call`` swaps in the student's weights for each call."""
    return getattr(oracles.torch().nn, kind)(inputs, hidden, device="meta", **options)


def _run(kind: str, inputs: tuple[Any, ...], weights: Sequence[Any], suffix: str = "", **options: Any) -> Any:
    from torch.func import functional_call

    names = [f"{n}{suffix}" for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    layer = _layer(kind, weights[0].shape[1], weights[1].shape[1], **options)
    return functional_call(layer, dict(zip(names, weights)), inputs)


def torch_rnn_cell(x: Any, h: Any, *weights: Any) -> Any:
    return _run("RNNCell", (x, h), weights)


def torch_lstm_cell(x: Any, h: Any, c: Any, *weights: Any) -> Any:
    return _run("LSTMCell", (x, (h, c)), weights)


def torch_gru_cell(x: Any, h: Any, *weights: Any) -> Any:
    return _run("GRUCell", (x, h), weights)


def torch_lstm(xs: Any, h0: Any, c0: Any, *weights: Any) -> Any:
    # nn.LSTM's kernel takes no None among its weights: a missing bias adds nothing, as zeros do
    weights = tuple(w if w is not None else weights[0].new_zeros(weights[0].shape[0]) for w in weights)
    out, (h, c) = _run("LSTM", (xs, (h0[None], c0[None])), weights, suffix="_l0")
    return out, (h[0], c[0])


def torch_embedding(ids: Any, table: Any) -> Any:
    return oracles.torch().nn.functional.embedding(ids, table)


def _on_meta(label: str, fn: Callable[..., Any], cases: st.SearchStrategy[Call]) -> Matches:
    """The gate that hands the function "meta" tensors; its oracle is ``fn`` on CPU zeros of the arguments' shapes
    and dtypes, its tensors relabelled "meta" (only their shapes and dtypes are compared; PyTorch takes seconds to
    load its meta kernels)."""
    def compute(*args: Any) -> Any:
        t = oracles.torch()
        on_cpu = [t.zeros(a.shape, dtype=a.dtype) if isinstance(a, t.Tensor) else a for a in args]
        return oracles.nested(oracles.plain(fn(*on_cpu)), lambda v: TensorValue(v.array, v.dtype, "meta")
                              if isinstance(v, TensorValue) else v)
    return Matches(Torch(label, compute), cases, variants=(Variant("meta", "float64"),),
                   name="keeps every tensor on the inputs' device (meta tensors)", max_examples=4, gate=True)


# ----------------------------------------------------------------------------- inputs


# Inputs of moderate size: wide-ranging values saturate every gate, which hides mistakes and lets
# float32 rounding of large pre-activations swamp the comparison.
@reused
def _arrays(shape: tuple[int, ...], scale: float = 1.0) -> st.SearchStrategy[np.ndarray]:
    return float_arrays(shape, styles=MODERATE).map(lambda a: a * scale)


def _weights(draw: st.DrawFn, gates: int, inputs: int, hidden: int) -> list[np.ndarray]:
    """W_ih, W_hh, b_ih, b_hh with ``gates`` blocks, halved so that the gates do not all saturate."""
    rows = gates * hidden
    return [draw(_arrays(shape, 0.5)) for shape in ((rows, inputs), (rows, hidden), (rows,), (rows,))]


@st.composite
def cell_calls(draw: st.DrawFn, gates: int, cell_state: bool = False) -> Call:
    """x (N, I), h (and c) (N, H) and the weights of a cell with ``gates`` gate blocks."""
    n, inputs, hidden = draw(sizes(1, 3)), draw(sizes(1, 3)), draw(sizes(1, 3))
    states = [draw(_arrays((n, hidden))) for _ in range(2 if cell_state else 1)]
    return call(draw(_arrays((n, inputs))), *states, *_weights(draw, gates, inputs, hidden))


@st.composite
def lstm_calls(draw: st.DrawFn) -> Call:
    """xs (T, N, I) with T >= 1, a non-zero (h0, c0) and the weights of an LSTM."""
    steps, n, inputs, hidden = draw(sizes(1, 5)), draw(sizes(1, 3)), draw(sizes(1, 3)), draw(sizes(1, 3))
    xs = draw(_arrays((steps, n, inputs)))
    h0, c0 = (draw(_arrays((n, hidden)).filter(lambda a: bool(np.any(a)))) for _ in range(2))
    return call(xs, h0, c0, *_weights(draw, 4, inputs, hidden))


@st.composite
def embedding_calls(draw: st.DrawFn, min_dims: int = 0) -> Call:
    """int64 ids of 0 to 3 axes (with repeats; never empty: ``EMBEDDING_EDGES`` tries empty ids, so a failure
    does not shrink to them unless emptiness is the cause), and a (V, E) table. The ids often stay below V / 2,
    as in a batch that does not use the whole vocabulary."""
    vocabulary, width = draw(sizes(2, 12)), draw(sizes(1, 4))
    high = draw(st.sampled_from((max(1, vocabulary // 2), vocabulary)))
    shape = draw(shapes(min_dims, 3, 1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return call(rng.integers(0, high, size=shape).astype(np.int64), draw(_arrays((vocabulary, width))))


def _fixed(seed: int, *shapes_: tuple[int, ...]) -> list[np.ndarray]:
    """Standard normal arrays of the given shapes, the same on every run (for explicit examples)."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes_]


def _cell_arrays(seed: int, n: int, inputs: int, hidden: int, gates: int, cell_state: bool) -> list[np.ndarray]:
    rows = gates * hidden
    states = [(n, hidden)] * (2 if cell_state else 1)
    return _fixed(seed, (n, inputs), *states, (rows, inputs), (rows, hidden), (rows,), (rows,))


BIAS_FREE = "takes either bias as None (a layer built with bias=False)"


EMBEDDING_EDGES = [
    call(np.array([[0, 2, 2], [1, 0, 2]], dtype=np.int64), _fixed(9, (11, 3))[0], note="2-D ids with repeats"),
    call(np.zeros((2, 0, 4), dtype=np.int64), _fixed(10, (5, 2))[0], note="empty ids of shape (2, 0, 4)"),
]


# ----------------------------------------------------------------------------- worked examples


def _tensor(values: Any) -> TensorValue:
    return TensorValue(np.array(values, dtype=np.float64), "float64", "cpu")


def _rnn_fading(w_hh: float, steps: Sequence[float]) -> list[tuple[Call, TensorValue]]:
    """The handout's RNN whose memory fades: x = 1, 0, 0, 0 through one unit, one step per call."""
    return [(call(np.array([[1.0 if t == 0 else 0.0]]), np.array([[h]]), np.array([[1.0]]), np.array([[w_hh]]),
                  np.zeros(1), np.zeros(1), note=f"the handout's fading-memory RNN with W_hh = {w_hh}, step {t + 1}"),
             _tensor([[expected]])) for t, (h, expected) in enumerate(zip((0.0, *steps), steps))]


LSTM_EXAMPLE = (np.array([[1.0]]), np.array([[0.0]]), np.array([[0.5]]), np.array([[1.0], [2.0], [1.0], [0.5]]),
                np.zeros((4, 1)), np.zeros(4), np.zeros(4))
LSTM_H, LSTM_C = 0.47331958398573226, 0.9971684801348808
TABLE = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9], [1.0, 1.1, 1.2]])


# ----------------------------------------------------------------------------- mistakes shared by every task


OFF_DEVICE = Mistake(
    "tensor_left_inputs_device",
    "a tensor left the inputs' device: torch.zeros / torch.ones / torch.tensor without device= make it on the CPU, "
    "and .cpu(), .numpy() and .item() take data off the device. This check hands your function 'meta' tensors "
    "(a shape and a dtype but no data), standing in for a GPU: create new tensors from the inputs "
    "(torch.zeros_like(h), h.new_zeros(N, H), torch.zeros(N, H, dtype=x.dtype, device=x.device)) and keep data "
    "where it is", raises=lambda call_, error: any(s in error for s in ("meta", "same device", "expected device")))


def _untransposed_product(call_: Call, error: str) -> bool:
    """A matrix product that failed on shapes where x @ W_ih and h @ W_hh do not fit but x @ W_ih.T and
    h @ W_hh.T do: the weights were used without .T."""
    x, h, w_ih, w_hh = (call_.args[i].shape for i in range(4))
    return any(s in error for s in ("cannot be multiplied", "same reduction dim", "size mismatch")) \
        and (x[-1] != w_ih[0] or h[-1] != w_hh[0]) and x[-1] == w_ih[1] and h[-1] == w_hh[1]


def _bias_none(positions: Sequence[int]) -> Mistake:
    return Mistake("bias_none", "a bias was None and the code used it anyway: the contract allows b_ih = None or b_hh = None "
                   "(a layer built with bias=False), which adds no bias; add each bias only when it is not None",
                   raises=fails_on_none(positions))


def _cell_task(name: str, points: int, layer: str, oracle: Callable[..., Any], gates: int,
               worked: Sequence[tuple[Call, Any]], mistakes: Sequence[Mistake], cell_state: bool = False,
               returns: Sequence[str] = (), drawn_first: bool = False) -> Task:
    """A cell's task: the handout's examples, ``torch.nn.<layer>`` with either bias None (a gate) and on drawn inputs,
    autograd through it, meta tensors; its own mistakes, then a bias used though None and a tensor off the device."""
    label, cases, arguments = f"torch.nn.{layer}", cell_calls(gates, cell_state), 7 if cell_state else 6
    # an empty batch, and I = H = N (where a transposed weight has the right shape but wrong values)
    edges = [call(*_cell_arrays(n + gates, n, inputs, hidden, gates, cell_state), note=note)
             for n, inputs, hidden, note in ((0, 2, 3, "an empty batch (N = 0)"), (2, 2, 2, "N = I = H = 2"))]
    # a layer built with bias=False: b_ih None, b_hh None, and both (the contract allows either)
    *arrays, b_ih, b_hh = _cell_arrays(20 + gates, 2, 3, 2, gates, cell_state)
    bias_free = Matches(Torch(label, oracle), examples=[
        call(*arrays, *biases, note=f"{note} (a layer built with bias=False)") for biases, note in
        (((None, b_hh), "b_ih = None"), ((b_ih, None), "b_hh = None"), ((None, None), "b_ih = b_hh = None"))],
        variants=DEVICES_BOTH, tolerance=RNN_VALUES, name=BIAS_FREE, gate=True)
    drawn = Matches(Torch(label, oracle), cases, examples=edges, variants=DEVICES_BOTH,
                    tolerance=RNN_VALUES)
    return Task(name, points=points, returns=returns, checks=[
        Worked(worked, tolerance=RNN_VALUES), *((drawn, bias_free) if drawn_first else (bias_free, drawn)),
        Gradients(f"autograd through {label}", oracle, wrt=tuple(range(arguments)), cases=cases, examples=edges,
                  variants=DEVICES_BOTH, tolerance=RNN_GRADS, max_examples=8),
        _on_meta(label, oracle, cases),
    ], mistakes=[*mistakes, _bias_none((arguments - 2, arguments - 1)), OFF_DEVICE])


# ----------------------------------------------------------------------------- rnn_cell


RNN_CELL = _cell_task(
    "rnn_cell", 14, "RNNCell", torch_rnn_cell, gates=1,
    worked=_rnn_fading(0.5, (0.7615941559557649, 0.36339948438905245, 0.1797262071203191, 0.0896219895402626))
    + _rnn_fading(2.0, (0.7615941559557649,)),
    mistakes=[
        Mistake("sigmoid_where_tanh_belongs",
                "sigmoid where tanh belongs: the RNN cell squashes with tanh, so h' lies in (-1, 1), not (0, 1)",
                produces=_lab4_withheld("rnn_sigmoid")),
        Mistake("relu_where_tanh_belongs",
                "ReLU where tanh belongs: torch.nn.RNNCell's nonlinearity is tanh",
                produces=lambda x, h, *weights: _run("RNNCell", (x, h), weights, nonlinearity="relu")),
        Mistake("b_hh_missing_pytorch",
                "b_hh is missing: PyTorch's cells add both biases, x @ W_ih.T + b_ih + h @ W_hh.T + b_hh",
                produces=lambda x, h, W_ih, W_hh, b_ih, b_hh: torch_rnn_cell(x, h, W_ih, W_hh, b_ih, 0 * b_hh)),
        Mistake("b_ih_missing_pytorch",
                "b_ih is missing: PyTorch's cells add both biases, x @ W_ih.T + b_ih + h @ W_hh.T + b_hh",
                produces=lambda x, h, W_ih, W_hh, b_ih, b_hh: torch_rnn_cell(x, h, W_ih, W_hh, 0 * b_ih, b_hh)),
        Mistake("result_h_n_transpose",
                "the result is (H, N), the transpose of h': W x is the formula for one column vector; with one sample "
                "per row compute x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, which is (N, H) already",
                produces=lambda *a: torch_rnn_cell(*a).T),
        Mistake("weights_were_used_without",
                "the weights were used without .T: W_ih is stored (H, I) and W_hh (H, H), so the batch form is "
                "x @ W_ih.T + h @ W_hh.T (transpose them)",
                produces=lambda x, h, W_ih, W_hh, b_ih, b_hh: torch_rnn_cell(x, h, W_ih.T, W_hh.T, b_ih, b_hh),
                raises=_untransposed_product),
    ],
)


# ----------------------------------------------------------------------------- lstm_cell


LSTM_CELL = _cell_task(
    "lstm_cell", 24, "LSTMCell", torch_lstm_cell, gates=4, cell_state=True, returns=("h'", "c'"), drawn_first=True,
    worked=[(call(*LSTM_EXAMPLE, note="the handout's LSTM cell example"), (_tensor([[LSTM_H]]), _tensor([[LSTM_C]])))],
    mistakes=[
        Mistake("wrong_gate_order_pytorch",
                "wrong gate order: PyTorch stacks the blocks of W_ih, W_hh, b_ih and b_hh as i, f, g, o (the candidate "
                "g third, the output gate o last); cutting them as i, f, o, g swaps the candidate and the output gate",
                produces=lambda x, h, c, *w: torch_lstm_cell(x, h, c, *swap_blocks(w, (0, 1, 3, 2)))),
        Mistake("wrong_gate_order_pytorch_2",
                "wrong gate order: PyTorch stacks the gate blocks as i, f, g, o; "
                "gates.chunk(4, dim=-1) then gives them in that order",
                detects=blocks_in_wrong_order(torch_lstm_cell, range(3, 7), 4, RNN_VALUES, named=[(0, 1, 3, 2)])),
        Mistake("forget_gate_multiplied_h",
                "the forget gate multiplied h where the old cell state belongs: c' = f * c + i * g",
                produces=lambda x, h, c, *w: torch_lstm_cell(x, h, h, *w)),
        Mistake("h_come_new_cell",
                "h' must come from the new cell state: h' = o * tanh(c'), not o * tanh(h)",
                produces=_lab4_withheld("lstm_h_from_old_h")),
        Mistake("h_come_new_cell_2",
                "h' must come from the new cell state: compute c' = f * c + i * g first, then h' = o * tanh(c'), "
                "not o * tanh(c) of the old cell state",
                produces=_lab4_withheld("lstm_h_from_old_c")),
        Mistake("sigmoid_candidate_g_gates",
                "sigmoid on the candidate g: the gates i, f and o use sigmoid, but the candidate g uses tanh "
                "(new content may be negative)",
                produces=_lab4_withheld("lstm_sigmoid_candidate")),
        Mistake("tanh_missing_cell_state",
                "tanh is missing on the cell state: h' = o * tanh(c'), not o * c'",
                produces=_lab4_withheld("lstm_no_tanh_on_c")),
        Mistake("b_hh_missing_gates",
                "b_hh is missing: the gates add both biases, x @ W_ih.T + b_ih + h @ W_hh.T + b_hh",
                produces=lambda x, h, c, W_ih, W_hh, b_ih, b_hh: torch_lstm_cell(x, h, c, W_ih, W_hh, b_ih, 0 * b_hh)),
        Mistake("h_c_swapped_return",
                "h' and c' are swapped: return (h', c') in that order",
                produces=lambda *a: tuple(reversed(torch_lstm_cell(*a)))),
        Mistake("float64_values_went_through",
                "float64 values went through a float32 tensor (a torch.zeros(...) buffer without dtype=, or .float()), "
                "which rounds them: the dtype of every tensor you create must be the inputs' (dtype=x.dtype, "
                "device=x.device), or build the result from the inputs without a buffer",
                produces=_lab4_withheld("lstm_float32_gates")),
    ],
)


GRU_CELL = _cell_task(
    "gru_cell", 24, "GRUCell", torch_gru_cell, gates=3,
    worked=[(call(np.array([[1.0]]), np.array([[0.5]]), np.array([[1.0], [-1.0], [2.0]]), np.ones((3, 1)),
                  np.zeros(3), np.array([0.0, 0.0, 0.5]), note="the handout's GRU cell example"),
             _tensor([[0.8068009361582222]]))],
    mistakes=[
        Mistake("reset_gate_applied_outside",
                "the reset gate was applied outside (W_hn h + b_hn): r multiplies the whole hidden term, its bias "
                "included, n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), not r * (W_hn h) + b_hn",
                produces=_lab4_withheld("gru_reset_outside")),
        Mistake("reset_gate_applied_h",
                "the reset gate was applied to h before the matrix, W_hn (r * h) (the original paper's GRU): "
                "PyTorch applies it after, n = tanh(W_in x + b_in + r * (W_hn h + b_hn))",
                produces=_lab4_withheld("gru_reset_before_matrix")),
        Mistake("reset_gate_multiplied_input",
                "the reset gate multiplied the input part of n too: keep x @ W_ih.T + b_ih and h @ W_hh.T + b_hh "
                "apart for the n block, and let r multiply only (W_hn h + b_hn)",
                detects=lambda c, e, r: difference(_lab4_withheld("gru_summed")(*oracles.materialize(c.args)), r,
                                                   RNN_VALUES) is None),
        Mistake("update_gate_wrong_side",
                "the update gate is on the wrong side (z and 1 - z swapped): PyTorch's GRU is "
                "h' = (1 - z) * n + z * h, so z keeps the old state",
                produces=_lab4_withheld("gru_update_swapped")),
        Mistake("wrong_gate_order_blocks",
                "wrong gate order: the blocks of W_ih, W_hh, b_ih and b_hh are r, z, n (reset, update, candidate)",
                detects=blocks_in_wrong_order(torch_gru_cell, range(2, 6), 3, RNN_VALUES)),
        Mistake("sigmoid_candidate_n_gates",
                "sigmoid on the candidate n: the gates r and z use sigmoid, the candidate n uses tanh",
                produces=_lab4_withheld("gru_sigmoid_candidate")),
        Mistake("b_hh_missing_gates",
                "b_hh is missing: the gates add both biases, and b_hn sits inside r * (W_hn h + b_hn)",
                produces=lambda x, h, W_ih, W_hh, b_ih, b_hh: torch_gru_cell(x, h, W_ih, W_hh, b_ih, 0 * b_hh)),
    ],
)


# ----------------------------------------------------------------------------- lstm


def _unrolled_with(change: Callable[[Any, Any, Any, Any], Any], carry_c: bool = True) -> Callable[..., Any]:
    """A producer: ``change(hs, cs, h0, c0)`` makes the (out, (h_T, c_T)) of a mistake from every step's h and c
    (each (T, N, H)) of nn.LSTMCell run over xs; ``carry_c=False`` feeds c0 to every step."""
    def produce(xs: Any, h0: Any, c0: Any, *weights: Any) -> Any:
        h, c, hs, cs = h0, c0, [], []
        for x in xs:
            h, c = torch_lstm_cell(x, h, c if carry_c else c0, *weights)
            hs.append(h)
            cs.append(c)
        return change(oracles.torch().stack(hs), oracles.torch().stack(cs), h0, c0)
    return produce


def _lstm_float32_out(xs: Any, h0: Any, c0: Any, *weights: Any) -> Any:
    out, (h, c) = torch_lstm(xs, h0, c0, *weights)
    return out.float(), (out[-1].float(), c)


def _steps_match(ctx: Context, call_: Call) -> None:
    """The result equals nn.LSTM's; where it does not, say at which time step ``out`` first leaves it."""
    expected = oracles.plain(torch_lstm(*oracles.materialize(call_.args)))
    received = ctx.student(call_)
    problem = _first_difference(expected, received)
    if problem:
        raise ctx.fail(call_, problem, f"torch.nn.LSTM on {ctx.variant.label}", expected, received, RNN_VALUES)


def _first_difference(expected: Any, received: Any) -> str | None:
    out, (h_T, c_T) = expected
    if not (isinstance(received, (tuple, list)) and len(received) == 2 and isinstance(received[1], (tuple, list))
            and len(received[1]) == 2):
        return difference(expected, received, RNN_VALUES, "the result (expected (out, (h_T, c_T)))")
    got = received[0]
    problem = difference(out, got, RNN_VALUES, "out")
    if problem and isinstance(got, TensorValue) and (got.shape, got.dtype) == (out.shape, out.dtype):
        steps = out.shape[0]
        for t in range(steps):
            step = difference(_at(out, t), _at(got, t), RNN_VALUES, f"out[{t}]")
            if step:
                before = {0: "", 1: "out[0] matches, "}.get(t, f"out[0] to out[{t - 1}] match, ")
                return (f"the unrolled LSTM first leaves torch.nn.LSTM at time step t = {t} of T = {steps} "
                        f"({before}out[{t}] is the state after reading xs[{t}]): {step}")
    return (problem or difference(h_T, received[1][0], RNN_VALUES, "h_T")
            or difference(c_T, received[1][1], RNN_VALUES, "c_T"))


def _at(value: TensorValue, t: int) -> TensorValue:
    return TensorValue(value.array[t], value.dtype, value.device)


LSTM = Task(
    "lstm", points=22, returns=("out", "(h_T, c_T)"),
    checks=[
        Worked([(call(LSTM_EXAMPLE[0][None], *LSTM_EXAMPLE[1:], note="the handout's LSTM cell example as a sequence "
                      "of one step (T = 1)"), (_tensor([[[LSTM_H]]]), (_tensor([[LSTM_H]]), _tensor([[LSTM_C]]))))],
               tolerance=RNN_VALUES),
        Property(BIAS_FREE, _steps_match, variants=DEVICES_BOTH, gate=True, examples=[
            call(*_fixed(11, (2, 2, 3), (2, 2), (2, 2), (8, 3), (8, 2)), None, None,
                 note="b_ih = b_hh = None (a layer built with bias=False)")]),
        Property("matches torch.nn.LSTM at every time step", _steps_match, lstm_calls(), variants=DEVICES_BOTH,
                 examples=[call(*_fixed(8, (3, 0, 2), (0, 2), (0, 2), (8, 2), (8, 2), (8,), (8,)),
                                note="an empty batch (N = 0)")]),
        # the long sequence checks gradients through 20 steps; generated inputs keep value failures small
        Gradients("autograd through torch.nn.LSTM", torch_lstm, wrt=tuple(range(7)), cases=lstm_calls(),
                  variants=DEVICES_BOTH, tolerance=RNN_GRADS, max_examples=8, examples=[
                      call(*_fixed(7, (20, 2, 3), (2, 2), (2, 2), (8, 3), (8, 2), (8,), (8,)),
                           note="a long sequence (T = 20)")]),
        _on_meta("torch.nn.LSTM", torch_lstm, lstm_calls()),
    ],
    mistakes=[
        Mistake("out_stacked_along_wrong",
                "out was stacked along the wrong axis: torch.stack(outputs, dim=0) puts time first, (T, N, H); "
                "dim=1 gives the batch-first (N, T, H)",
                produces=_unrolled_with(lambda hs, cs, h0, c0: (hs.transpose(0, 1), (hs[-1], cs[-1])))),
        Mistake("torch_cat_glued_steps",
                "torch.cat glued the steps into (T*N, H): torch.stack them along a new first (time) axis",
                produces=_unrolled_with(lambda hs, cs, h0, c0: (hs.reshape(-1, hs.shape[-1]), (hs[-1], cs[-1])))),
        Mistake("final_state_last_step",
                "the final state is not the last step's: out[:, -1] is the batch-first idiom; with time first "
                "the state after the last step is out[-1] (and c_T the last c), each (N, H)",
                produces=_unrolled_with(lambda hs, cs, h0, c0: (hs, (hs[:, -1], cs[:, -1])))),
        Mistake("final_state_first_step",
                "the final state is the first step's: (h_T, c_T) is the state after the last step",
                produces=_unrolled_with(lambda hs, cs, h0, c0: (hs, (hs[0], cs[0])))),
        Mistake("off_one_out_t",
                "off by one: out[t] is the state after reading xs[t] (append h after the step), so out[0] is "
                "never h0",
                produces=_unrolled_with(lambda hs, cs, h0, c0:
                                        (oracles.torch().cat([h0[None], hs[:-1]]), (hs[-1], cs[-1])))),
        Mistake("cell_state_carried_each",
                "the cell state is not carried: each step must get the c of the step before, not c0",
                produces=_unrolled_with(lambda hs, cs, h0, c0: (hs, (hs[-1], cs[-1])), carry_c=False)),
        Mistake("h0_c0_were_ignored",
                "h0 and c0 were ignored: start from the given state (nn.LSTM starts from zeros only when no "
                "state is passed)", produces=lambda xs, h0, c0, *weights: torch_lstm(xs, 0 * h0, 0 * c0, *weights)),
        Mistake("out_float32_float64_inputs",
                "out is float32 for float64 inputs: a torch.zeros(T, N, H) buffer without dtype= is float32 "
                "(and on the CPU); keep the dtype and device of the inputs (xs.new_zeros, or stack the steps)",
                produces=_lstm_float32_out),
        _bias_none((5, 6)),
        OFF_DEVICE,
    ],
)


# ----------------------------------------------------------------------------- embedding


EMBEDDING = Task(
    "embedding", points=16,
    checks=[
        Worked([(call(np.array([3, 1]), TABLE, note="the handout's fruit table"), _tensor(TABLE[[3, 1]])),
                (call(np.array(3), TABLE, note="the handout's fruit table, a single (0-d) id"), _tensor(TABLE[3]))],
               tolerance=RNN_VALUES),
        Matches(Torch("torch.nn.functional.embedding", torch_embedding), embedding_calls(),
                examples=EMBEDDING_EDGES, variants=DEVICES_BOTH, tolerance=RNN_VALUES),
        Gradients("autograd through torch.nn.functional.embedding", torch_embedding, wrt=(1,), cases=embedding_calls(),
                  examples=EMBEDDING_EDGES[:1], variants=DEVICES_BOTH, tolerance=RNN_GRADS, max_examples=8),
        # 0-d ids are left out here: indexing with a 0-d meta tensor asks for its value, which meta has not
        _on_meta("torch.nn.functional.embedding", torch_embedding, embedding_calls(min_dims=1)),
    ],
    mistakes=[
        Mistake("ids_were_flattened_result",
                "the ids were flattened and the result never reshaped: it has shape ids.shape + (E,) "
                "(for 2-D ids, (N, L, E))", produces=lambda ids, table: table[ids.reshape(-1)]),
        Mistake("one_hot_ids_without",
                "one_hot(ids) without num_classes is only as wide as the largest id + 1, not V: pass "
                "num_classes=table.shape[0] (or select the rows by indexing)",
                raises=lambda call_, error: "cannot be multiplied" in error or "number of classes" in error),
        Mistake("one_hot_matrix_has",
                "the one-hot matrix has the wrong dtype: .float() makes it float32, so it cannot multiply a float64 "
                "table; convert with .to(table.dtype)",
                raises=lambda call_, error: "same dtype" in error or "float != double" in error),
        OFF_DEVICE,
    ],
)


LAB = Lab(
    name="lab4",
    title="Recurrent cells from PyTorch primitives",
    module="recurrent",
    kind="torch",
    tasks=[RNN_CELL, LSTM_CELL, GRU_CELL, LSTM, EMBEDDING],
    banned_calls=RNN_TRIPWIRES,
    # Refused when the task's source names them (torch.ops.aten gets no tripwire: PyTorch's own lazily
    # imported modules read its operators; the run-time refusal covers it by name).
    banned_source=(*RNN_TRIPWIRES, "torch._VF", "torch._C._VariableFunctions",
                   *(f"torch.ops.aten.{name}" for name in _RNN_KERNELS)),
    withheld="grader.labs.lab4_withheld",
)
