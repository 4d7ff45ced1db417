"""Lab 5 scenarios that test_every_lab does not cover: the oracles against PyTorch's own layers (mask
polarity, fully masked rows, random biases), the float32 tolerance's false-failure rate on the reference,
what each property catches on its own, the ±1e4 check against a hand-written softmax, gradients that
are detached, and banned built-ins reached directly, through a built name, or through torch.ops."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from grader import labs

from grader.declare import oracles
from grader.declare.compare import difference
from grader.run.engine import grade_lab, load_reference
from grader.labs import lab5
from tests.conftest import REPO, SEED, budget, grade

REFERENCE = load_reference(labs.load("lab5"), REPO / "solutions")
MANY = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _tensors(call, dtype):
    return [torch.as_tensor(a).to(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
            else torch.as_tensor(a) if isinstance(a, np.ndarray) else a for a in call.args]


def _agree(expected, received, tolerance=lab5.ATTENTION_VALUES) -> str | None:
    return difference(oracles.plain(expected), oracles.plain(received), tolerance)


# ----------------------------------------------------------------------------- the oracles


@MANY
@given(lab5.mha_calls(kinds=("none", "random", "causal")), st.sampled_from([torch.float64, torch.float32]))
def test_mha_oracle_equals_the_module_itself_with_the_mask_inverted(c, dtype):
    """The oracle is nn.MultiheadAttention's functional form; here the module, with random biases
    copied in and attn_mask=~mask, gives the same (out, weights) wherever a query may attend somewhere."""
    query, key, value, w, b, w_o, b_o, heads, *mask = _tensors(c, torch.float64)
    mask = mask[0] if mask else None
    assume(mask is None or bool(mask.any(-1).all()))
    module = torch.nn.MultiheadAttention(query.shape[-1], heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        module.in_proj_weight.copy_(w)
        module.in_proj_bias.copy_(b)
        module.out_proj.weight.copy_(w_o)
        module.out_proj.bias.copy_(b_o)
    blocked = None if mask is None else (~mask if mask.dim() == 2 else (~mask).repeat_interleave(heads, 0))
    expected = module(query, key, value, attn_mask=blocked)
    args = [a.to(dtype) for a in (query, key, value, w, b, w_o, b_o)]
    received = lab5._mha(*args, heads, mask)
    assert _agree(tuple(e.to(dtype) for e in expected), received) is None


def test_mha_oracle_gives_out_proj_bias_and_finite_gradients_on_a_fully_masked_row():
    """nn.MultiheadAttention gives NaN there; the contract (and so the oracle) gives zero weights,
    out = out_proj_bias, and gradients that stay finite."""
    g = torch.Generator().manual_seed(0)
    n, length, e, heads = 2, 3, 4, 2
    args = [torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True)
            for s in ((n, length, e), (n, length, e), (n, length, e), (3 * e, e), (3 * e,), (e, e), (e,))]
    mask = torch.ones(n, length, length, dtype=torch.bool)
    mask[1, 2] = False
    out, weights = lab5._mha(*args, heads, mask)
    assert torch.equal(out[1, 2], args[6].detach())
    assert torch.equal(weights[1, 2], torch.zeros(length, dtype=torch.float64))
    grads = torch.autograd.grad((out.sum() + weights.sum()), args)
    assert all(torch.isfinite(gr).all() for gr in grads)
    assert torch.equal(grads[0][1, 2], torch.zeros(e, dtype=torch.float64))  # that query reaches nothing


def test_sdpa_oracle_zeroes_fully_masked_rows_whatever_the_pytorch_version_does():
    q, k, v = (torch.randn(2, 3, 4, dtype=torch.float64) for _ in range(3))
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[1] = False
    out, weights = lab5._attend(q, k, v, mask)
    assert torch.equal(out[:, 1], torch.zeros(2, 4, dtype=torch.float64))
    assert torch.equal(weights[:, 1], torch.zeros(2, 3, dtype=torch.float64))
    assert torch.isfinite(out).all()
    assert torch.allclose(weights.sum(-1)[:, [0, 2]], torch.ones(2, 2, dtype=torch.float64))


@settings(max_examples=30, deadline=None, database=None)
@given(lab5.mha_calls())
def test_mha_calls_draw_nonzero_biases(c):
    """nn.MultiheadAttention initialises its biases to zero; inputs with zero biases would let a
    missing in_proj_bias, and a wrong fully-masked output, pass unseen."""
    assert np.abs(c.args[4]).min() > 0 and np.abs(c.args[6]).min() > 0


# ----------------------------------------------------------------------------- tolerances


@MANY
@given(st.one_of(lab5.attention_calls(), lab5.large_score_calls()))
def test_float32_reference_stays_within_tolerance_of_the_float64_oracle(c):
    """The false-failure rate of the float32 parity checks: the reference run in float32 against the
    oracle on the same (float32) inputs, over many draws of the graded strategies."""
    args = _tensors(c, torch.float32)
    assert _agree(lab5._attend(*args), REFERENCE.scaled_dot_product_attention(*args)) is None


@MANY
@given(lab5.mha_calls())
def test_float32_reference_mha_stays_within_tolerance(c):
    args = _tensors(c, torch.float32)
    assert _agree(lab5._mha(*args), REFERENCE.multi_head_attention(*args)) is None


@MANY
@given(lab5.mha_calls())
def test_float32_reference_mha_gradients_stay_within_tolerance(c):
    def grads(fn, dtype):
        args = _tensors(c, dtype)
        for a in args[:7]:
            a.requires_grad_(True)
        out, weights = fn(*args)
        return torch.autograd.grad(out.sum() + (weights * 3).sum(), args[:7])

    expected = [g.to(torch.float32) for g in grads(lab5._mha, torch.float64)]
    assert _agree(tuple(expected), grads(REFERENCE.multi_head_attention, torch.float32), lab5.ATTENTION_GRADS) is None


def test_positional_encoding_tolerance_covers_a_float32_table_up_to_the_longest_graded_length():
    position = torch.arange(64, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, 32, 2, dtype=torch.float32) * (-np.log(10000.0) / 32))
    table = torch.stack([torch.sin(position * div), torch.cos(position * div)], dim=-1).flatten(1)
    assert _agree(lab5._pe(lab5.call(64, 32)), table, lab5.PE_TOLERANCE) is None


# ----------------------------------------------------------------------------- what the properties catch

NAIVE_SOFTMAX = """
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    keep = torch.ones_like(scores[..., :1], dtype=torch.bool)
    if mask is not None:
        keep = mask.any(dim=-1, keepdim=True)
        scores = torch.where(keep, scores.masked_fill(~mask, -1e9), 0.0)
    e = torch.exp(scores)  # no row maximum subtracted: exp(1e4) overflows, exp(-1e4) underflows to 0
    weights = e / e.sum(dim=-1, keepdim=True) * keep
    return weights @ v, weights
"""


def test_softmax_without_the_max_subtracted_fails_only_the_large_score_check(submission):
    result = grade("lab5", submission("lab5", NAIVE_SOFTMAX), tasks=("scaled_dot_product_attention",))
    failed = {c.name for c in result.tasks[0].checks if c.status != "passed" and c.status != "skipped"}
    assert failed == {"finite and correct for scores up to ±1e4 (cpu, float64)",
                      "finite and correct for scores up to ±1e4 (cpu, float32)"}
    assert "nan or infinite" in result.tasks[0].message.lower()


POSITION_AWARE = """
def self_attention(x, W_q, W_k, W_v, mask=None):
    # a position-dependent term: no longer permutation-equivariant
    x = x + 0.1 * torch.arange(x.shape[1], dtype=x.dtype, device=x.device)[:, None]
    return scaled_dot_product_attention(x @ W_q, x @ W_k, x @ W_v, mask)
"""

LEAKS_THE_FUTURE = """
def self_attention(x, W_q, W_k, W_v, mask=None):
    q, k, v = x @ W_q, x @ W_k, x @ W_v
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    if mask is not None:
        weights = weights * mask  # after the softmax: the future still sits in the denominator
    return weights @ v, weights
"""


@pytest.mark.parametrize(("source", "check", "words"), [
    (POSITION_AWARE, "permuting the tokens permutes the output", "permuting the tokens did not permute"),
    (LEAKS_THE_FUTURE, "a causal attention does not look at later tokens", "changing the tokens after position"),
])
def test_self_attention_property_names_what_went_wrong(submission, source, check, words):
    result = grade("lab5", submission("lab5", source), tasks=("self_attention",))
    (found,) = [c for c in result.tasks[0].checks if c.name == check]
    assert found.status == "failed" and words in found.message


DETACHED_WEIGHTS = """
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = torch.where(mask, weights, 0.0)
    weights = weights.detach()  # the values are right, but no gradient reaches q and k
    return weights @ v, weights
"""


def test_detached_weights_pass_the_values_and_fail_the_gradients(submission):
    result = grade("lab5", submission("lab5", DETACHED_WEIGHTS), tasks=("scaled_dot_product_attention",))
    by_status = {c.name: c.status for c in result.tasks[0].checks if c.status != "skipped"}
    assert by_status["matches torch.nn.functional.scaled_dot_product_attention (cpu, float64)"] == "passed"
    gradients = "gradients match autograd through torch.nn.functional.scaled_dot_product_attention (cpu, float64)"
    assert by_status[gradients] == "failed"


MOVES_THE_MASK = """
def causal_mask(length, device=None):
    return torch.tril(torch.ones(length, length, dtype=torch.bool)).to(device)
"""


def test_causal_mask_that_moves_its_result_to_the_device_passes(submission):
    result = grade("lab5", submission("lab5", MOVES_THE_MASK), tasks=("causal_mask",))
    assert result.tasks[0].status == "passed", result.tasks[0].message


# ----------------------------------------------------------------------------- banned built-ins


@pytest.mark.parametrize("body", [
    "    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask), None\n",
    "    return torch.ops.aten.scaled_dot_product_attention(q, k, v), None\n",
])
def test_a_banned_call_in_the_source_is_refused(submission, body):
    source = "def scaled_dot_product_attention(q, k, v, mask=None):\n" + body
    result = grade("lab5", submission("lab5", source), tasks=("scaled_dot_product_attention",))
    task = result.tasks[0]
    assert task.score == 0 and "banned" in "\n".join(c.message for c in task.checks)


def test_a_banned_layer_reached_through_a_built_name_is_refused_at_run_time(submission):
    source = '''
def multi_head_attention(query, key, value, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
                         num_heads, mask=None):
    layer = getattr(torch.nn, "Multihead" + "Attention")(query.shape[-1], num_heads, batch_first=True)
    return layer(query, key, value)
'''
    folder = submission("lab5", source)
    runtime_only = replace(labs.load("lab5"), banned_source=())  # as if the source were not read
    task = grade_lab(runtime_only, folder, seed=SEED, tasks=("multi_head_attention",), budget=budget()).tasks[0]
    assert task.score == 0 and "banned" in task.message and "torch.nn.MultiheadAttention" in task.message
    read = grade("lab5", folder, tasks=("multi_head_attention",)).tasks[0]
    assert read.score == 0 and "getattr with a computed name" in read.message


def test_multi_head_attention_is_tried_without_biases_and_code_that_needs_them_fails_a_gate(submission):
    """Issue 15: in_proj_bias and out_proj_bias may be None (bias=False); None was never tried before."""
    folder = submission("lab5", """
        _ref = multi_head_attention

        def multi_head_attention(query, key, value, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
                                 num_heads, mask=None):
            return _ref(query, key, value, in_proj_weight, in_proj_bias.clone(), out_proj_weight,
                        out_proj_bias.clone(), num_heads, mask)
    """)
    (task,) = grade("lab5", folder, tasks=("multi_head_attention",)).tasks
    gate = next(c for c in task.checks if c.name.startswith("takes either bias as None"))
    assert gate.status == "error" and "bias=False" in gate.message
    assert task.score < task.max_score


def test_the_mha_oracle_without_biases_equals_zero_biases():
    (first, second, both) = lab5._mha_bias_free()
    args = [torch.as_tensor(a) if isinstance(a, np.ndarray) else a for a in both.args]
    zeros = list(args)
    zeros[4], zeros[6] = torch.zeros(12, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    for got, want in zip(lab5._mha(*args), lab5._mha(*zeros)):
        assert torch.allclose(got, want)
    assert bool((~both.args[8]).all(axis=-1).any())  # a fully masked row: its output must be 0 without a bias
