"""Lab 4 scenarios that test_every_lab does not cover: the oracles against PyTorch's layers used the
ordinary way, the tolerances' false-failure rate on the reference, the per-time-step message of the
unrolled LSTM, banned kernels reached by routes the source check cannot see, data moved off the device
(caught on meta tensors without a GPU), and the CUDA checks that are declared and skipped here."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader import labs

from grader.declare import oracles
from grader.declare.compare import difference
from grader.run.engine import grade_lab, load_reference
from grader.labs import lab4
from tests.conftest import REPO, SEED, budget, grade

REFERENCE = load_reference(labs.load("lab4"), REPO / "solutions")
MANY = settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
DTYPES = st.sampled_from([torch.float64, torch.float32])


def _tensors(call, dtype, requires_grad=False):
    return [torch.as_tensor(a).to(dtype).requires_grad_(requires_grad) if a.dtype.kind == "f" else torch.as_tensor(a)
            for a in call.args]


def _agree(expected, received, tolerance) -> str | None:
    return difference(oracles.plain(expected), oracles.plain(received), tolerance)


# ----------------------------------------------------------------------------- the oracles


def _loaded(layer, weights, suffix=""):
    with torch.no_grad():
        for name, w in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), weights):
            getattr(layer, name + suffix).copy_(w)
    return layer


@MANY
@given(st.sampled_from(["rnn_cell", "lstm_cell", "gru_cell"]), st.data())
def test_cell_oracles_equal_the_layers_with_the_weights_copied_in(task, data):
    gates, state = {"rnn_cell": (1, False), "lstm_cell": (4, True), "gru_cell": (3, False)}[task]
    x, h, *rest = _tensors(data.draw(lab4.cell_calls(gates, cell_state=state)), torch.float64)
    c, weights = (rest[0], rest[1:]) if state else (None, rest)
    make = {"rnn_cell": torch.nn.RNNCell, "lstm_cell": torch.nn.LSTMCell, "gru_cell": torch.nn.GRUCell}[task]
    layer = _loaded(make(x.shape[1], h.shape[1], dtype=torch.float64), weights)
    oracle = getattr(lab4, f"torch_{task}")
    if state:
        assert _agree(layer(x, (h, c)), oracle(x, h, c, *weights), lab4.RNN_VALUES) is None
    else:
        assert _agree(layer(x, h), oracle(x, h, *weights), lab4.RNN_VALUES) is None


@MANY
@given(lab4.lstm_calls())
def test_lstm_oracle_equals_nn_lstm_with_its_layer_axis(c):
    xs, h0, c0, *weights = _tensors(c, torch.float64)
    layer = _loaded(torch.nn.LSTM(xs.shape[2], h0.shape[1], dtype=torch.float64), weights, "_l0")
    out, (h, cell) = layer(xs, (h0[None], c0[None]))
    assert _agree((out, (h[0], cell[0])), lab4.torch_lstm(xs, h0, c0, *weights), lab4.RNN_VALUES) is None


# ----------------------------------------------------------------------------- the tolerances


def _leaves(value):
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _leaves(v)]
    return [value]


CALLS = {"rnn_cell": lab4.cell_calls(1), "lstm_cell": lab4.cell_calls(4, cell_state=True),
         "gru_cell": lab4.cell_calls(3), "lstm": lab4.lstm_calls(), "embedding": lab4.embedding_calls()}


@MANY
@given(st.sampled_from(sorted(CALLS)), DTYPES, st.data())
def test_the_reference_is_within_tolerance_of_pytorch_in_values_and_gradients(task, dtype, data):
    """The false-failure rate of the tolerances: the reference never fails them on the lab's inputs."""
    args = _tensors(data.draw(CALLS[task]), dtype, requires_grad=True)
    mine, theirs = getattr(REFERENCE, task)(*args), getattr(lab4, f"torch_{task}")(*args)
    assert _agree(theirs, mine, lab4.RNN_VALUES) is None
    seeds = [torch.randn_like(o) for o in _leaves(mine)]
    wrt = [a for a in args if a.requires_grad]
    received = torch.autograd.grad(_leaves(mine), wrt, seeds, allow_unused=True, materialize_grads=True)
    expected = torch.autograd.grad(_leaves(theirs), wrt, seeds, allow_unused=True, materialize_grads=True)
    for e, r in zip(expected, received):
        assert _agree(e, r, lab4.RNN_GRADS) is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_reference_scores_full_marks_under_other_seeds(seed):
    result = grade("lab4", REPO / "solutions", seed=seed)
    assert {t.name: t.message for t in result.tasks if t.status != "passed"} == {}


# ----------------------------------------------------------------------------- the unrolled lstm


def test_lstm_names_the_first_time_step_where_it_leaves_nn_lstm(submission):
    """A loop that drops the cell state from the third step on is right for two steps, then wrong."""
    folder = submission("lab4", """
        def lstm(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
            h, c, outputs = h0, c0, []
            for t in range(xs.shape[0]):
                h, c = lstm_cell(xs[t], h, c if t < 2 else c0, W_ih, W_hh, b_ih, b_hh)
                outputs.append(h)
            return torch.stack(outputs), (h, c)
    """)
    (task,) = grade("lab4", folder, tasks=("lstm",)).tasks
    check = next(c for c in task.checks if c.name.startswith("matches torch.nn.LSTM at every time step"))
    assert check.status == "failed"
    assert "first leaves torch.nn.LSTM at time step t = 2 of T = " in check.message
    assert "out[0] to out[1] match" in check.message


# ----------------------------------------------------------------------------- banned kernels


ROUTES = {
    "lstm_cell": [
        # read-only: no tripwire can replace it, the worker's TorchFunctionMode refuses it by name
        'getattr(getattr(torch, "_" + "C"), "_Variable" + "Functions").lstm_cell(x, (h, c), W_ih, W_hh, b_ih, b_hh)',
        'getattr(torch.ops.aten, "lstm" + "_cell").default(x, [h, c], W_ih, W_hh, b_ih, b_hh)',
        # a layer built under another name: its forward reaches the kernel
        '__import__("sys").modules["torch.nn.modules.rnn"].LSTMCell(x.shape[1], h.shape[1], device="meta")'
        '.to(x.dtype).to_empty(device=x.device)(x, (h, c))',
    ],
    "embedding": [
        'getattr(torch.nn.functional, "embed" + "ding")(ids, table)',
        'vars(torch)["embed" + "ding"](table, ids)',
        'torch.ops.aten.embedding.default(table, ids)',
    ],
}
SIGNATURES = {"lstm_cell": "x, h, c, W_ih, W_hh, b_ih, b_hh", "embedding": "ids, table"}


@pytest.mark.parametrize(("task", "route"), [(t, r) for t, rs in ROUTES.items() for r in rs],
                         ids=[f"{t}-{i}" for t, rs in ROUTES.items() for i in range(len(rs))])
def test_a_banned_kernel_is_refused_at_run_time_however_it_is_reached(submission, task, route):
    folder = submission("lab4", f"""
        def {task}({SIGNATURES[task]}):
            return {route}
    """)
    # the run-time refusal alone, as if the source were not read (a route the reading might miss) ...
    runtime_only = replace(labs.load("lab4"), banned_source=())
    (result,) = grade_lab(runtime_only, folder, seed=SEED, tasks=(task,), budget=budget()).tasks
    assert result.status == "error" and result.score == 0
    assert "banned in this lab" in result.message
    # ... and with it: every one of these routes is a construct that voids the task before it runs
    (read,) = grade("lab4", folder, tasks=(task,)).tasks
    assert read.score == 0 and "banned in this lab" in read.message and read.checks[0].gate


def test_the_reference_passes_under_the_run_time_refusal():
    """The refusal matches names, so the operations the reference uses (index_select, chunk, matmul,
    stack) stay allowed: nothing the reference calls has a banned name."""
    names = {n.rpartition(".")[2] for n in lab4.LAB.banned_calls}
    assert not names & {"index_select", "chunk", "matmul", "stack", "sigmoid", "tanh", "reshape", "one_hot"}


# ----------------------------------------------------------------------------- devices


def test_data_moved_off_the_device_is_an_error_with_a_hint_not_an_unfinished_stub(submission):
    """.cpu() is a no-op on a CPU-only machine; on meta tensors PyTorch refuses it with a
    NotImplementedError, which must not read as "not implemented yet"."""
    folder = submission("lab4", """
        def rnn_cell(x, h, W_ih, W_hh, b_ih, b_hh):
            return torch.tanh(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).cpu()
    """)
    (task,) = grade("lab4", folder, tasks=("rnn_cell",)).tasks
    meta = next(c for c in task.checks if "meta tensors" in c.name)
    assert task.status == "error" and meta.status == "error"
    assert "Cannot copy out of meta tensor" in meta.message and "device=x.device" in meta.message
    assert 0 < task.score < task.max_score


def test_every_task_checks_values_and_gradients_on_cuda_in_both_dtypes_skipped_without_it():
    result = grade("lab4", REPO / "solutions")
    for task in result.tasks:
        cuda = [c for c in task.checks if "(cuda, " in c.name]
        assert {c.name.rpartition("(")[2] for c in cuda} == {"cuda, float64)", "cuda, float32)"}
        assert len(cuda) >= 4  # values and gradients, each in both dtypes
        expected = "passed" if torch.cuda.is_available() else "skipped"
        assert {c.status for c in cuda} == {expected}


def test_a_value_read_that_meta_tensors_cannot_answer_is_inconclusive_not_a_failure(submission):
    """Issue 15: bool((ids < 0).any()) is right on every real device; the meta check skips it (no points lost)."""
    folder = submission("lab4", """
        def embedding(ids, table):
            if bool((ids < 0).any()):
                raise IndexError("negative id")
            return table[ids]
    """)
    (task,) = grade("lab4", folder, tasks=("embedding",)).tasks
    meta = next(c for c in task.checks if "meta tensors" in c.name)
    assert meta.status == "skipped" and "inconclusive on meta tensors" in meta.message
    assert task.status == "passed" and task.score == task.max_score


def test_a_buffer_left_on_the_cpu_still_fails_the_meta_check(submission):
    # (code that also reads a value first is inconclusive on meta: the CUDA checks judge it where there is a GPU)
    folder = submission("lab4", """
        def embedding(ids, table):
            return torch.zeros(*ids.shape, table.shape[1], dtype=table.dtype) + table[ids]
    """)
    (task,) = grade("lab4", folder, tasks=("embedding",)).tasks
    meta = next(c for c in task.checks if "meta tensors" in c.name)
    assert meta.status in ("error", "failed") and "device" in meta.message
    assert task.score < task.max_score


@pytest.mark.parametrize("task_name", ["rnn_cell", "lstm_cell", "gru_cell", "lstm"])
def test_cells_are_tried_without_biases_and_code_that_needs_them_fails_a_gate(submission, task_name):
    """Issue 15: the contract allows b_ih = None or b_hh = None; code using them unguarded loses points."""
    crash = {"rnn_cell": "def rnn_cell(x, h, W_ih, W_hh, b_ih, b_hh):\n    return torch.tanh(x @ W_ih.T + b_ih.clone() + h @ W_hh.T + b_hh.clone())",
             "lstm_cell": "_ref = lstm_cell\ndef lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):\n    return _ref(x, h, c, W_ih, W_hh, b_ih.clone(), b_hh.clone())",
             "gru_cell": "_ref = gru_cell\ndef gru_cell(x, h, W_ih, W_hh, b_ih, b_hh):\n    return _ref(x, h, W_ih, W_hh, b_ih.clone(), b_hh.clone())",
             "lstm": "_ref = lstm\ndef lstm(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):\n    return _ref(xs, h0, c0, W_ih, W_hh, b_ih.clone(), b_hh.clone())"}
    (task,) = grade("lab4", submission("lab4", crash[task_name]), tasks=(task_name,)).tasks
    gate = next(c for c in task.checks if c.name.startswith(lab4.BIAS_FREE))
    assert gate.status == "error" and "bias=False" in gate.message
    assert task.score < task.max_score
