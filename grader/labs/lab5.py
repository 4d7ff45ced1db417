"""Lab 5, self-attention: the tasks, their checks and the mistakes they recognise.

PyTorch is the oracle throughout, on every device present and in float32 and
float64: ``torch.nn.functional.scaled_dot_product_attention`` for attention
outputs (its softmax, written out in float64, for the weights it does not
return), the functional form of ``torch.nn.MultiheadAttention`` for multi-head
attention (the grader turns the lab's "True = may attend" mask into the
module's "True = blocked" one), and autograd through both for gradients.
Both PyTorch layers disagree with the lab's contract on one point, a query whose
keys are all masked (zeros here; NaN in the module, and in ``F.scaled_dot_product_attention``
before PyTorch 2.5), so the oracles run those rows unmasked and zero them afterwards.

Properties that hold for any correct answer complete the parity checks: weight
rows sum to one over the allowed keys, permuting the tokens permutes the output,
a causal attention does not look ahead, scores of ±1e4 stay finite, and fully
masked rows give zeros (the properties that zeros satisfy too are gates).

The mistakes' producers run these oracles (built on PyTorch's own attention, which the
students' code may not call) on changed inputs; the few that must compute attention or the
positional encoding from the same tensor operations a student uses live in
``grader.labs.lab5_withheld``, which the student release leaves out (their hints are given on
submission). The oracles of the small tasks take the call itself, so none of them can stand in
for a student's function.
"""

from __future__ import annotations

import ast
import functools
import math
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st

from grader.declare import oracles
from grader.declare.checks import (CPU_64, CPU_BOTH, DEVICES, DEVICES_BOTH, Gradients, Matches, Property, Torch, Worked,
                                   blocks_in_wrong_order, fails_on_none, must_match)
from grader.declare.context import CheckFailed, Context, StudentRaised, compare_result
from grader.declare.spec import Call, Lab, Mistake, Task, Tolerance, call, withheld
from grader.declare.strategies import float_arrays, moderate, reused, shapes, sizes
from grader.sandbox.wire import TensorValue


# Observed: values within 1e-15 (float64) and 2e-6 (float32) of the oracle, gradients within 1e-14 and 2e-6.
ATTENTION_VALUES = {"float64": Tolerance(1e-9, 1e-10), "float32": Tolerance(1e-5, 1e-5)}
ATTENTION_GRADS = {"float64": Tolerance(1e-9, 1e-9), "float32": Tolerance(1e-4, 1e-4)}
EXACT = Tolerance(0.0, 0.0)

# The built-ins the lab reimplements, the kernels behind them, and their other names.
_ATTENTION_KERNELS = ("_native_multi_head_attention", "_scaled_dot_product_attention_math",
                      "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
                      "_scaled_dot_product_cudnn_attention", "_transformer_encoder_layer_fwd")
_TRANSFORMER_LAYERS = ("Transformer", "TransformerEncoder", "TransformerEncoderLayer", "TransformerDecoder",
                       "TransformerDecoderLayer")
ATTENTION_TRIPWIRES = (
    "torch.nn.functional.scaled_dot_product_attention",
    "torch._C._nn.scaled_dot_product_attention",
    "torch.nn.functional.multi_head_attention_forward",
    *(f"{module}.MultiheadAttention" for module in ("torch.nn", "torch.nn.modules", "torch.nn.modules.activation")),
    *(f"{module}.{name}" for module in ("torch.nn", "torch.nn.modules", "torch.nn.modules.transformer")
      for name in _TRANSFORMER_LAYERS),
    *(f"torch.{name}" for name in _ATTENTION_KERNELS),
)
_lab5_withheld = functools.partial(withheld, "grader.labs.lab5_withheld")  # producers the student release leaves out


def _pair_of_tensors(ctx: Context, call_: Call, oracle: Callable[..., Any]) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """The oracle's result (for ``ctx.fail``, which adds the hints of the known mistakes ``received`` matches), the
    student's result ``received`` and its (out, weights) arrays; the comparison's complaint when it is not such a
    pair."""
    received = ctx.student(call_)
    expected = oracles.plain(oracle(*oracles.materialize(call_.args), **oracles.materialize(call_.kwargs)))
    shaped = isinstance(received, (tuple, list)) and len(received) == 2 and all(
        isinstance(r, TensorValue) and r.shape == e.shape for r, e in zip(received, expected))
    if not shaped:
        problem = compare_result(ctx, expected, received, ATTENTION_VALUES) or "the result is not a pair (out, weights)"
        raise ctx.fail(call_, problem, "PyTorch (this task's oracle)", expected, received, ATTENTION_VALUES)
    return expected, received, received[0].array.astype(np.float64), received[1].array.astype(np.float64)


def _mask_of(call_: Call, position: int) -> np.ndarray | None:
    mask = call_.args[position] if len(call_.args) > position else call_.kwargs.get("mask")
    return None if mask is None else np.asarray(mask.array if isinstance(mask, TensorValue) else mask, dtype=bool)


def _nan_where_fully_masked(position: int) -> Callable[[Call, Any, Any], bool]:
    """Detects NaN in a result whose mask has a query row with every key blocked."""
    def detects(call_: Call, expected: Any, received: Any) -> bool:
        mask = _mask_of(call_, position)
        if mask is None or mask.any(axis=-1).all() or not isinstance(received, (tuple, list)):
            return False
        return any(isinstance(r, TensorValue) and r.array.dtype.kind == "f" and bool(np.isnan(r.array).any())
                   for r in received)
    return detects


# ----------------------------------------------------------------------------- inputs


@reused
@st.composite
def masks(draw: st.DrawFn, batch: tuple[int, ...], lq: int, lk: int, kinds: tuple[str, ...],
          broadcast_padding: bool = True) -> np.ndarray | None:
    """A bool mask (True = may attend) for scores of shape batch + (lq, lk), or None.

    Kinds: "none"; "random" (about 70% allowed); "fully masked" (random, then one query row
    with every key blocked); "causal" (key j <= query i); "padding" (each sequence's keys
    past a random length blocked, shape batch + (1, lk) or expanded to batch + (lq, lk);
    a length of 0 blocks whole rows). The other kinds are (lq, lk), broadcast over the
    batch, or have the batch axes themselves.
    """
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "padding":
        mask = np.arange(lk) < rng.integers(0, lk + 1, size=batch + (1, 1))
        return mask if broadcast_padding else np.broadcast_to(mask, batch + (lq, lk)).copy()
    batched: bool = draw(st.booleans())
    full = batch + (lq, lk) if batch and batched else (lq, lk)
    if kind == "causal":
        return np.broadcast_to(np.tril(np.ones((lq, lk), dtype=bool)), full).copy()
    mask = rng.random(full) < 0.7
    if kind == "fully masked":
        row = mask.reshape(-1, lq, lk)[rng.integers(mask.size // (lq * lk))]
        row[rng.integers(lq)] = False
    return mask


MASK_KINDS = ("none", "random", "fully masked", "causal", "padding")


def _with_mask(args: tuple[Any, ...], mask: np.ndarray | None) -> Call:
    return call(*args) if mask is None else call(*args, mask)


# q, k and v of moderate values: the scores stay small, so float32 rounding does not swamp the comparison;
# the ±1e4 check draws its own, exactly representable, large scores.
@st.composite
def attention_calls(draw: st.DrawFn, kinds: tuple[str, ...] = MASK_KINDS) -> Call:
    """q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv) with 0 to 2 batch axes, and a mask of the given kinds."""
    batch = draw(shapes(0, 2, 1, 3))
    lq, lk, d, dv = draw(sizes(1, 5)), draw(sizes(1, 5)), draw(sizes(1, 6)), draw(sizes(1, 4))
    q, k, v = (draw(moderate(*batch, *shape)) for shape in ((lq, d), (lk, d), (lk, dv)))
    return _with_mask((q, k, v), draw(masks(batch, lq, lk, kinds)))


@st.composite
def large_score_calls(draw: st.DrawFn) -> Call:
    """Scores up to about ±1e4, exactly representable in float32 (so both dtypes agree on them)."""
    batch = draw(shapes(0, 1, 1, 2))
    lq, lk, d, dv = draw(sizes(1, 4)), draw(sizes(2, 5)), draw(st.sampled_from((1, 4, 16))), draw(sizes(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q, k = (rng.integers(-3, 4, size=batch + (length, d)).astype(np.float64) for length in (lq, lk))
    top = np.abs(q @ np.swapaxes(k, -1, -2)).max() / math.sqrt(d)
    q *= 2.0 ** math.floor(math.log2(1e4 / top)) if top > 0 else 1.0  # powers of two: scores stay exact
    v = draw(moderate(*batch, lk, dv))
    return _with_mask((q, k, v), draw(masks(batch, lq, lk, ("none", "random", "fully masked"))))


@reused
def projections(shape: tuple[int, ...], fan_in: int) -> st.SearchStrategy[np.ndarray]:
    """A weight matrix scaled like a layer's initialisation (entries of size 1/sqrt(fan_in))."""
    return float_arrays(shape, styles=("normal",)).map(lambda w: w / math.sqrt(max(fan_in, 1)))


@st.composite
def self_attention_calls(draw: st.DrawFn,
                         kinds: tuple[str, ...] = ("none", "random", "fully masked", "causal")) -> Call:
    """x (N, L, E), W_q and W_k (E, d), W_v (E, dv) with E, d and dv drawn apart, and a mask."""
    n, length, e, d, dv = draw(sizes(1, 3)), draw(sizes(1, 5)), draw(sizes(1, 6)), draw(sizes(1, 5)), draw(sizes(1, 4))
    x = draw(moderate(n, length, e))
    w_q, w_k, w_v = draw(projections((e, d), e)), draw(projections((e, d), e)), draw(projections((e, dv), e))
    return _with_mask((x, w_q, w_k, w_v), draw(masks((n,), length, length, kinds)))


@st.composite
def mha_calls(draw: st.DrawFn, kinds: tuple[str, ...] = MASK_KINDS) -> Call:
    """query (N, Lq, E), key and value (N, Lk, E), nn.MultiheadAttention's parameters (random biases:
    the module's own are zero), num_heads, and a mask (Lq, Lk) or (N, Lq, Lk)."""
    n, lq, lk = draw(sizes(1, 3)), draw(sizes(1, 4)), draw(sizes(1, 4))
    heads, head_dim = draw(sizes(1, 4)), draw(sizes(1, 3))
    e = heads * head_dim
    query, key, value = draw(moderate(n, lq, e)), draw(moderate(n, lk, e)), draw(moderate(n, lk, e))
    params = (draw(projections((3 * e, e), e)), draw(float_arrays((3 * e,), styles=("normal",))),
              draw(projections((e, e), e)), draw(float_arrays((e,), styles=("normal",))))
    return _with_mask((query, key, value, *params, heads), draw(masks((n,), lq, lk, kinds, broadcast_padding=False)))


# ----------------------------------------------------------------------------- scaled_dot_product_attention


def _scaled(q: Any, k: Any) -> Any:
    """The scores q @ kᵀ / sqrt(d)."""
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def _attend(q: Any, k: Any, v: Any, mask: Any = None) -> tuple[Any, Any]:
    """(out, weights) as the contract defines them, in float64, back in the inputs' dtype.

    out comes from F.scaled_dot_product_attention, weights from its softmax written out;
    fully masked rows run unmasked and are zeroed afterwards (gradients included).
    """
    t = oracles.torch()
    dtype = q.dtype
    q, k, v = q.double(), k.double(), v.double()
    scores = _scaled(q, k)
    keep = None
    if mask is not None:
        keep = mask.any(dim=-1, keepdim=True)  # queries with at least one allowed key
        mask = mask | ~keep
        scores = scores.masked_fill(~mask, -math.inf)
    weights = t.softmax(scores, dim=-1)
    out = t.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if keep is not None:
        weights, out = weights * keep, out * keep
    return out.to(dtype), weights.to(dtype)


def _inverted(fn: Callable[..., Any], position: int) -> Callable[..., Any]:
    """A producer: the oracle with the mask negated (the nn.MultiheadAttention habit, True = blocked)."""
    def produce(*args: Any, mask: Any = None) -> Any:
        if len(args) > position:
            args, mask = args[:position], args[position]
        if mask is None:
            raise ValueError("no mask, no inverted mask")
        return fn(*args, ~mask)
    return produce


def _handout_attention() -> tuple[tuple[np.ndarray, ...], Any, Any]:
    """The handout's example (d = 4): the inputs, and the exact values without and with key 1 blocked."""
    q = np.array([[1.0, 0, 1, 0]])
    k = np.array([[1.0, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]])
    v = np.array([[1.0, 0], [0, 1], [1, 1]])
    e = np.exp([1.0, 0.0, 0.5])  # scores q.k / sqrt(4)

    def result(w: np.ndarray) -> tuple[TensorValue, TensorValue]:
        return TensorValue(w[None] @ v, "float64", "cpu"), TensorValue(w[None], "float64", "cpu")
    return (q, k, v), result(e / e.sum()), result(np.array([0.0, e[1], e[2]]) / (e[1] + e[2]))


_HANDOUT_QKV, _HANDOUT_PLAIN, _HANDOUT_MASKED = _handout_attention()
LARGE_SCORES = [
    call(np.array([[200.0, 0, 0, 0]]), np.array([[100.0, 0, 0, 0], [99, 0, 0, 0], [-100, 0, 0, 0]]),
         np.array([[1.0, 0], [0, 1], [1, 1]]), note="the handout's scores 1e4, 9900, -1e4"),
    call(np.array([[-200.0, 0, 0, 0], [200, 0, 0, 0]]), np.array([[100.0, 0, 0, 0], [100, 0, 0, 0]]),
         np.array([[1.0, 2], [3, 4]]), note="rows of equal scores -1e4 and 1e4"),
]


def _rows_sum_to_one(ctx: Context, call_: Call) -> None:
    expected, received, _, weights = _pair_of_tensors(ctx, call_, _attend)
    mask = _mask_of(call_, 3)
    allowed = np.ones(weights.shape, dtype=bool) if mask is None else np.broadcast_to(mask, weights.shape)
    tol = 1e-10 if ctx.variant.dtype == "float64" else 1e-5
    blocked = np.abs(np.where(allowed, 0.0, weights))
    sums = np.asarray(np.where(allowed, weights, 0.0).sum(axis=-1))
    wanted = np.asarray(allowed.any(axis=-1), dtype=np.float64)
    if blocked.max(initial=0.0) > tol:
        where = np.unravel_index(int(np.argmax(blocked)), weights.shape)
        problem = (f"weights{list(map(int, where))} = {weights[where]:.6g} is the weight of a masked key: it must be 0 "
                   f"(tolerance: {tol:g})")
    elif not np.all(np.abs(sums - wanted) <= tol * weights.shape[-1]):
        where = np.unravel_index(int(np.argmax(np.abs(sums - wanted))), sums.shape)
        problem = (f"row {list(map(int, where))} of the weights sums to {sums[where]:.6g} over its allowed keys, "
                   f"expected {wanted[where]:g} (tolerance: {tol * weights.shape[-1]:g}): the softmax runs over the keys "
                   "(the last axis), the allowed ones only"
                   + (" (a row with no allowed key is all zeros)" if wanted[where] == 0 else ""))
    else:
        return
    raise ctx.fail(call_, problem, "the softmax over the keys (every row of weights sums to 1)", expected, received,
                   ATTENTION_VALUES)


def _fully_masked_rows_are_zero(ctx: Context, call_: Call, position: int, oracle: Callable[..., Any],
                                bias_at: int | None = None) -> None:
    """Every query row whose keys are all masked has zero weights and a zero output (out_proj_bias at ``bias_at``)."""
    expected, received, out, weights = _pair_of_tensors(ctx, call_, oracle)
    mask = _mask_of(call_, position)
    assert mask is not None
    empty = np.broadcast_to(~mask.any(axis=-1), weights.shape[:-1])
    tol = 1e-10 if ctx.variant.dtype == "float64" else 1e-5
    bias = None if bias_at is None else call_.args[bias_at]
    wanted = np.broadcast_to(np.zeros(1) if bias is None else bias.array.astype(np.float64), out.shape)
    what = "zero" if bias_at is None else "out_proj_bias"
    for index in zip(*np.nonzero(empty)):
        row = tuple(int(i) for i in index)
        if not (np.isfinite(weights[row]).all() and np.isfinite(out[row]).all()):
            problem = f"query row {list(row)} is fully masked (no key may be attended) and its result is not finite"
        elif np.abs(weights[row]).max(initial=0.0) > tol:
            problem = (f"query row {list(row)} is fully masked, so its weights must be 0 (tolerance: {tol:g}); "
                       f"received {weights[row]}")
        elif np.abs(out[row] - wanted[row]).max(initial=0.0) > tol * (1 + np.abs(wanted[row]).max(initial=0.0)):
            problem = (f"query row {list(row)} is fully masked, so its output must be {what} (tolerance: {tol:g} "
                       f"x (1 + its largest entry)); received {out[row]}")
        else:
            continue
        source = f"the contract (a fully masked query gets zero weights and {what})"
        raise ctx.fail(call_, problem, source, expected, received, ATTENTION_VALUES)


SDPA = Torch("torch.nn.functional.scaled_dot_product_attention", _attend)

SCALED_DOT_PRODUCT_ATTENTION = Task(
    "scaled_dot_product_attention", points=24, returns=("out", "weights"),
    checks=[
        Worked([(call(*_HANDOUT_QKV, note="the handout's example"), _HANDOUT_PLAIN),
                (call(*_HANDOUT_QKV, np.array([[False, True, True]]), note="the handout's example with key 1 masked"),
                 _HANDOUT_MASKED)]),
        Matches(SDPA, attention_calls(), variants=DEVICES_BOTH, tolerance=ATTENTION_VALUES, max_examples=10),
        Gradients("autograd through torch.nn.functional.scaled_dot_product_attention", _attend, wrt=(0, 1, 2),
                  cases=attention_calls(), variants=DEVICES_BOTH, tolerance=ATTENTION_GRADS, max_examples=6),
        Property("weight rows sum to one over the allowed keys", _rows_sum_to_one,
                 cases=attention_calls(("random", "fully masked", "padding")), variants=CPU_64, max_examples=8,
                 aspects=("weights",)),
        Property("a fully masked query row gives zero weights and a zero output",
                 lambda ctx, c: _fully_masked_rows_are_zero(ctx, c, 3, _attend),
                 cases=attention_calls(("fully masked",)), variants=CPU_BOTH, max_examples=6, gate=True),
        Matches(SDPA, large_score_calls(), examples=LARGE_SCORES, variants=DEVICES_BOTH,
                tolerance=ATTENTION_VALUES, max_examples=6, name="finite and correct for scores up to ±1e4"),
    ],
    mistakes=[
        Mistake("scores_scaled_divide_q",
                "the scores are not scaled: divide q @ kᵀ by sqrt(d), d = q.shape[-1]",
                produces=lambda q, k, v, mask=None: _attend(q * math.sqrt(q.shape[-1]), k, v, mask)),
        Mistake("scores_were_divided_d",
                "the scores were divided by d instead of sqrt(d): the dot product of d unit-variance terms has "
                "variance d, so its standard deviation is sqrt(d)",
                produces=lambda q, k, v, mask=None: _attend(q / math.sqrt(q.shape[-1]), k, v, mask)),
        Mistake("softmax_ran_over_queries",
                "the softmax ran over the queries (dim=-2): each query's weights are a softmax over the keys, "
                "the last axis (softmax(scores, dim=-1))", produces=_lab5_withheld("attend_softmax_over_queries")),
        Mistake("mask_applied_after_softmax",
                "the mask was applied after the softmax: blocked keys must be removed before it (scores filled with "
                "-inf or a very negative number), so that each row renormalises over the allowed keys",
                produces=_lab5_withheld("attend_mask_after_softmax")),
        Mistake("mask_s_polarity_inverted",
                "the mask's polarity is inverted: in this lab True means 'may attend' (as in "
                "F.scaled_dot_product_attention); fill the scores where the mask is False",
                produces=_inverted(_attend, 3)),
        Mistake("blocked_scores_were_set",
                "the blocked scores were set to 0 instead of -inf (or a very negative number): exp(0) = 1, so "
                "blocked keys still get weight", produces=_lab5_withheld("attend_blocked_as_zero")),
        Mistake("nan_fully_masked_query",
                "NaN on a fully masked query row: when every key of a row is blocked, softmax of all -inf is 0/0; "
                "fill with a large finite negative number (torch.finfo(dtype).min) and zero those rows explicitly",
                detects=_nan_where_fully_masked(3)),
    ],
)


# ----------------------------------------------------------------------------- causal_mask


def _lower(length: int, device: Any, diagonal: int) -> Any:
    """A bool (length, length) tensor on ``device``, True on and below the ``diagonal``-th diagonal (NumPy's tri)."""
    return oracles.tensor(np.tri(length, length, diagonal, dtype=bool), device)


def _causal_matches(ctx: Context, call_: Call) -> None:
    if call_.kwargs or ctx.variant.device != "cpu":  # the variant's device (on the CPU a call may leave it out)
        call_ = call_.with_args(call_.args, {"device": ctx.variant.device})
    expected = oracles.plain(_lower(call_.args[0], ctx.variant.device, 0))
    must_match(ctx, call_, expected, EXACT, "torch.ones(L, L, dtype=torch.bool).tril() (the mask of "
               f"F.scaled_dot_product_attention's is_causal=True) on {ctx.variant.device}")


def _uses_device(ctx: Context, call_: Call) -> None:
    """causal_mask passes its device argument on (read from the source: without a GPU, every tensor is on the CPU
    whatever the code does; where CUDA is present, the check above also runs on it)."""
    path = ctx.sandbox.lab_dir / ctx.lab.filename
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == ctx.task.function:
            params = [a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]]
            name = params[1] if len(params) > 1 else "device"
            if not any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node)):
                raise CheckFailed(f"{ctx.task.function} never uses its argument '{name}': create the mask on the "
                                  f"requested device (torch.ones(..., device={name})), not on the default device")


CAUSAL_MASK = Task(
    "causal_mask", points=6,
    checks=[
        Property("matches torch.ones(L, L, dtype=torch.bool).tril()", _causal_matches,
                 examples=[call(0), call(1), call(4, note="the handout's 4x4 causal mask")],
                 cases=st.builds(lambda n, d: call(n, device="cpu") if d else call(n), sizes(1, 9), st.booleans()),
                 variants=DEVICES, max_examples=6),
        Property("creates the mask on the requested device", _uses_device, examples=[Call(())], gate=True),
    ],
    mistakes=[
        Mistake("mask_lets_query_see",
                "the mask lets a query see the future: True must be on and below the diagonal (key j <= query i), "
                "torch.tril, not torch.triu", produces=lambda n, device=None: _lower(n, device, 0).T),
        Mistake("diagonal_true_query_may",
                "the diagonal must be True: a query may attend to its own position (tril with diagonal=0)",
                produces=lambda n, device=None: _lower(n, device, -1)),
        Mistake("causal_mask_return_bool",
                "causal_mask must return a bool tensor (True = may attend), not 0/1 floats or an additive 0/-inf mask",
                detects=lambda c, e, r: isinstance(r, TensorValue) and r.dtype != "bool"),
    ],
)


# ----------------------------------------------------------------------------- self_attention


def _self_attend(x: Any, w_q: Any, w_k: Any, w_v: Any, mask: Any = None) -> tuple[Any, Any]:
    dtype = x.dtype
    x, w_q, w_k, w_v = x.double(), w_q.double(), w_k.double(), w_v.double()
    out, weights = _attend(x @ w_q, x @ w_k, x @ w_v, mask)
    return out.to(dtype), weights.to(dtype)


def _permuting_tokens_permutes_output(ctx: Context, call_: Call) -> None:
    """self_attention(x[:, p]) == self_attention(x)[:, p], with the mask's rows and columns permuted too."""
    x, *weights = call_.args[:4]
    mask = _mask_of(call_, 4)
    length = x.shape[1]
    perm = np.random.default_rng(length).permutation(length)
    if length > 1 and (perm == np.arange(length)).all():
        perm = np.roll(perm, 1)
    moved = [TensorValue(np.ascontiguousarray(x.array[:, perm]), x.dtype, x.device), *weights]
    if mask is not None:
        moved.append(TensorValue(np.ascontiguousarray(mask[..., perm, :][..., perm]), "bool", x.device))
    permuted = call(*moved, note=f"x with its tokens in the order {perm.tolist()}")
    _, _, out, w = _pair_of_tensors(ctx, call_, _self_attend)
    expected, received, out_p, w_p = _pair_of_tensors(ctx, permuted, _self_attend)
    tol = ATTENTION_VALUES[ctx.variant.dtype or "float64"]
    for name, before, after in (("out", out[:, perm], out_p), ("weights", w[:, perm][:, :, perm], w_p)):
        if not np.allclose(after, before, rtol=tol.rtol, atol=tol.atol):
            problem = (f"permuting the tokens did not permute {name} the same way: attention treats every position "
                       f"alike, so self_attention(x[:, p]) must equal self_attention(x)[:, p] (p = {perm.tolist()}; "
                       f"tolerance: rtol={tol.rtol:g}, atol={tol.atol:g})")
            raise ctx.fail(permuted, problem, "permutation equivariance", expected, received, ATTENTION_VALUES)


def _causal_does_not_look_ahead(ctx: Context, call_: Call) -> None:
    """With a causal mask, changing the tokens after position t leaves the outputs up to t unchanged."""
    x, *weights = call_.args[:4]
    length = x.shape[1]
    t = (length - 1) // 2
    mask = TensorValue(np.tril(np.ones((length, length), dtype=bool)), "bool", x.device)
    future = x.array.copy()
    future[:, t + 1:] = future[:, t + 1:] * -2.0 + 1.0
    before = call(x, *weights, mask)
    after = call(TensorValue(future, x.dtype, x.device), *weights, mask,
                 note=f"the same x with the tokens after position {t} changed")
    _, _, out, w = _pair_of_tensors(ctx, before, _self_attend)
    expected, received, out_f, w_f = _pair_of_tensors(ctx, after, _self_attend)
    tol = ATTENTION_VALUES[ctx.variant.dtype or "float64"]
    for name, a, b in (("out", out, out_f), ("weights", w, w_f)):
        if not np.allclose(a[:, :t + 1], b[:, :t + 1], rtol=tol.rtol, atol=tol.atol):
            problem = (f"with a causal mask, changing the tokens after position {t} changed {name} at positions "
                       f"0..{t} (tolerance: rtol={tol.rtol:g}, atol={tol.atol:g}): a query may only see keys at or "
                       "before its own position (the causal mask must block the future keys before the softmax)")
            raise ctx.fail(after, problem, "causality", expected, received, ATTENTION_VALUES)


SELF_ATTENTION = Task(
    "self_attention", points=12, returns=("out", "weights"),
    checks=[
        Matches(Torch("torch.nn.functional.scaled_dot_product_attention of the projections", _self_attend),
                self_attention_calls(), variants=DEVICES_BOTH, tolerance=ATTENTION_VALUES, max_examples=10),
        Gradients("autograd through torch.nn.functional.scaled_dot_product_attention", _self_attend, wrt=(0, 1, 2, 3),
                  cases=self_attention_calls(), variants=DEVICES_BOTH, tolerance=ATTENTION_GRADS, max_examples=6),
        Property("permuting the tokens permutes the output", _permuting_tokens_permutes_output,
                 cases=self_attention_calls(("none", "random")), variants=CPU_64, max_examples=6, gate=True),
        Property("a causal attention does not look at later tokens", _causal_does_not_look_ahead,
                 cases=self_attention_calls(("none",)).filter(lambda c: c.args[0].shape[1] > 1),
                 variants=CPU_64, max_examples=6, gate=True),
    ],
    mistakes=[
        Mistake("scores_were_scaled_square",
                "the scores were scaled by the square root of the embedding size E = x.shape[-1]: scale by sqrt(d), "
                "d = W_q.shape[1], the size of the queries",
                produces=lambda x, w_q, w_k, w_v, mask=None: _self_attend(
                    x, w_q * math.sqrt(w_q.shape[1] / x.shape[-1]), w_k, w_v, mask)),
        Mistake("keys_were_projected_w",
                "the keys were projected with W_q: keys are x @ W_k", produces=lambda x, w_q, w_k, w_v, mask=None:
                _self_attend(x, w_q, w_q, w_v, mask)),
        Mistake("mask_ignored_pass_attention",
                "the mask was ignored: pass it on to the attention, blocked keys get weight 0",
                produces=lambda x, w_q, w_k, w_v, mask=None: _self_attend(x, w_q, w_k, w_v)),
    ],
)


# ----------------------------------------------------------------------------- split_heads, merge_heads


def _split(call_: Call) -> Any:
    """split_heads of the call: head j of position l holds features j*E/h to (j+1)*E/h - 1 (NumPy's reshape
    and transpose, back as a tensor of the input's dtype on its device). Like _merge and _pe it takes the call,
    not the task's arguments, so that the release holds no working solution (Torch's on_call)."""
    x, heads = call_.args
    n, length, e = x.shape
    return oracles.tensor(x.array.reshape(n, length, heads, e // heads).transpose(0, 2, 1, 3), x.device)


def _merge(call_: Call) -> Any:
    """merge_heads of the call: split_heads undone (NumPy, back as a tensor on the input's device)."""
    (x,) = call_.args
    n, heads, length, d = x.shape
    return oracles.tensor(x.array.transpose(0, 2, 1, 3).reshape(n, length, heads * d), x.device)


def _integers(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Distinct-looking small integers: a misplaced block of features shows at a glance."""
    return np.random.default_rng(seed).integers(-9, 10, shape).astype(np.float64)


split_calls = st.builds(lambda n, length, h, d, seed: call(_integers((n, length, h * d), seed), h),
                        sizes(1, 3), sizes(1, 5), sizes(1, 4), sizes(1, 4), st.integers(0, 2**32 - 1))
merge_calls = st.builds(lambda n, h, length, d, seed: call(_integers((n, h, length, d), seed)),
                        sizes(1, 3), sizes(1, 4), sizes(1, 5), sizes(1, 4), st.integers(0, 2**32 - 1))
_HANDOUT_X = np.array([[[10.0, 11, 12, 13], [20, 21, 22, 23]]])
_HANDOUT_HEADS = np.array([[[[10.0, 11], [20, 21]], [[12, 13], [22, 23]]]])


def _round_trip(ctx: Context, call_: Call) -> None:
    """merge_heads(split_heads(x, h)) == x, with the grader's own split."""
    x = call_.args[0]
    merged = call(TensorValue(oracles.plain(_split(call_)).array, x.dtype, x.device))
    must_match(ctx, merged, x, EXACT, "x itself (merge_heads undoes split_heads)")


SPLIT_HEADS = Task(
    "split_heads", points=8,
    checks=[
        Worked([(call(_HANDOUT_X, 2, note="the handout's example"), TensorValue(_HANDOUT_HEADS, "float64", "cpu"))],
               tolerance=EXACT),
        Matches(Torch("x.reshape(N, L, h, E // h).transpose(1, 2)", _split, on_call=True), split_calls,
                variants=DEVICES_BOTH, tolerance=EXACT, max_examples=8),
    ],
    mistakes=[
        Mistake("heads_were_split_bare",
                "the heads were split by a bare reshape to (N, h, L, E/h), which mixes positions: reshape to "
                "(N, L, h, E/h), then transpose the position and head axes",
                produces=lambda x, h: x.reshape(x.shape[0], h, x.shape[1], x.shape[2] // h)),
        Mistake("head_j_took_interleaved",
                "head j took interleaved features (every h-th one) instead of the contiguous block "
                "j*E/h .. (j+1)*E/h - 1: reshape to (N, L, h, E/h), not (N, L, E/h, h)",
                produces=lambda x, h: x.reshape(x.shape[0], x.shape[1], x.shape[2] // h, h).permute(0, 3, 1, 2)),
    ],
)

MERGE_HEADS = Task(
    "merge_heads", points=8,
    checks=[
        Worked([(call(_HANDOUT_HEADS, note="the handout's example"), TensorValue(_HANDOUT_X, "float64", "cpu"))],
               tolerance=EXACT),
        Matches(Torch("x.transpose(1, 2).reshape(N, L, h * D)", _merge, on_call=True), merge_calls,
                variants=DEVICES_BOTH, tolerance=EXACT, max_examples=8),
        Property("merge_heads undoes split_heads", _round_trip, cases=split_calls, max_examples=4),
    ],
    mistakes=[
        Mistake("heads_were_merged_bare",
                "the heads were merged by a bare reshape, which glues pieces of different positions together: "
                "transpose to (N, L, h, D) first, then reshape to (N, L, h*D)",
                produces=lambda x: x.reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3])),
        Mistake("heads_features_came_out",
                "the heads' features came out interleaved: concatenate head after head (transpose to (N, L, h, D), "
                "not (N, L, D, h))", produces=lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1)),
        Mistake("heads_were_reduced_away",
                "the heads were reduced away: merge_heads concatenates them, so the result has shape (N, L, h*D)",
                detects=lambda c, e, r: isinstance(r, TensorValue) and r.shape == e.shape[:2] + (c.args[0].shape[3],)),
    ],
)


# ----------------------------------------------------------------------------- multi_head_attention


def _mha(query: Any, key: Any, value: Any, in_proj_weight: Any, in_proj_bias: Any, out_proj_weight: Any,
         out_proj_bias: Any, num_heads: int, mask: Any = None) -> tuple[Any, Any]:
    """nn.MultiheadAttention(batch_first=True) in float64 (its functional form, so that gradients reach
    the parameters), with the mask's polarity converted and fully masked rows set to the contract's answer."""
    t = oracles.torch()
    dtype = query.dtype
    blocked, keep = None, None
    if mask is not None:
        keep = mask.any(dim=-1, keepdim=True)  # (Lq, 1) or (N, Lq, 1)
        blocked = ~(mask | ~keep)  # nn.MultiheadAttention: True = blocked; fully masked rows run unmasked
        if blocked.dim() == 3:
            blocked = blocked.repeat_interleave(num_heads, dim=0)  # (N*h, Lq, Lk), batch-major
    q, k, v = (a.double().transpose(0, 1) for a in (query, key, value))
    in_bias, out_bias = (None if b is None else b.double() for b in (in_proj_bias, out_proj_bias))
    out, weights = t.nn.functional.multi_head_attention_forward(
        q, k, v, query.shape[-1], num_heads, in_proj_weight.double(), in_bias, None, None, False, 0.0,
        out_proj_weight.double(), out_bias, training=False, need_weights=True, attn_mask=blocked,
        average_attn_weights=True)
    out = out.transpose(0, 1)
    if keep is not None:
        out = t.where(keep, out, out_bias if out_bias is not None else t.zeros((), dtype=out.dtype, device=out.device))
        weights = weights * keep
    return out.to(dtype), weights.to(dtype)


def _mha_with(change: Callable[..., tuple[Any, ...]]) -> Callable[..., Any]:
    """A producer: the oracle on parameters changed the way a mistake changes them."""
    def produce(query: Any, key: Any, value: Any, w: Any, b: Any, w_o: Any, b_o: Any, h: int, mask: Any = None) -> Any:
        w, b, w_o, b_o = change(w, b, w_o, b_o, h)
        return _mha(query, key, value, w, b, w_o, b_o, h, mask)
    return produce


def _per_head_weights(call_: Call, expected: Any, received: Any) -> bool:
    return (isinstance(received, (tuple, list)) and len(received) == 2 and isinstance(received[1], TensorValue)
            and received[1].shape == (expected[1].shape[0], call_.args[7]) + expected[1].shape[1:])


def _mha_bias_free() -> list[Call]:
    """Layers built with bias=False (the contract allows either bias None): N = 2, Lq = 3, Lk = 2, E = 4, 2 heads;
    the last with a per-batch mask that blocks one query row entirely (its output is then 0)."""
    rng = np.random.default_rng(15)
    query, key, value = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 2, 4)), rng.standard_normal((2, 2, 4))
    w, b, w_o, b_o = rng.standard_normal((12, 4)) / 2, rng.standard_normal(12), rng.standard_normal((4, 4)) / 2, \
        rng.standard_normal(4)
    mask = np.array([[[True, False], [False, False], [True, True]], [[False, True], [True, True], [True, False]]])
    return [call(query, key, value, w, None, w_o, b_o, 2, note="in_proj_bias = None (bias=False)"),
            call(query, key, value, w, b, w_o, None, 2, note="out_proj_bias = None (bias=False)"),
            call(query, key, value, w, None, w_o, None, 2, mask, note="both biases None (bias=False), a masked row")]


def _mask_missing_head_axis(call_: Call, error: str) -> bool:
    """A shape error on a call with a 3-D mask whose batch size is not 1 nor the number of heads: broadcast as
    it is, (N, Lq, Lk) against (N, h, Lq, Lk) either fails or grows the scores an axis, which fails later."""
    heads = call_.args[7] if len(call_.args) > 7 else call_.kwargs.get("num_heads")
    shape: tuple[int, ...] = tuple(getattr(_mask_of(call_, 8), "shape", ()))
    shape_errors = ("must match the size of tensor", "cannot be multiplied", "is invalid for input of size")
    return len(shape) == 3 and shape[0] not in (1, heads) and any(e in error for e in shape_errors)


MHA = Torch("torch.nn.MultiheadAttention(batch_first=True) with attn_mask=~mask", _mha)

MULTI_HEAD_ATTENTION = Task(
    "multi_head_attention", points=28, returns=("out", "weights"),
    checks=[
        Matches(MHA, examples=_mha_bias_free(), variants=DEVICES_BOTH, tolerance=ATTENTION_VALUES,
                gate=True, name="takes either bias as None (a layer built with bias=False)"),
        Matches(MHA, mha_calls(), variants=DEVICES_BOTH, tolerance=ATTENTION_VALUES, max_examples=10),
        Gradients("autograd through torch.nn.MultiheadAttention", _mha, wrt=tuple(range(7)), cases=mha_calls(),
                  variants=DEVICES_BOTH, tolerance=ATTENTION_GRADS, max_examples=6),
        Property("a fully masked query row gives zero weights and out_proj_bias",
                 lambda ctx, c: _fully_masked_rows_are_zero(ctx, c, 8, _mha, bias_at=6),
                 cases=mha_calls(("fully masked",)), variants=CPU_64, max_examples=4),
    ],
    mistakes=[
        Mistake("weights_were_returned_per",
                "the weights were returned per head (N, h, Lq, Lk): average them over the heads (mean over dim 1), "
                "as nn.MultiheadAttention does by default", detects=_per_head_weights),
        Mistake("weights_were_summed_over",
                "the weights were summed over the heads instead of averaged: divide by num_heads (or take the mean)",
                produces=lambda *a, **kw: (lambda o, w: (o, w * a[7]))(*_mha(*a, **kw))),
        Mistake("q_k_v_blocks",
                "the q, k, v blocks of in_proj_weight were taken in the wrong order: rows 0:E are W_q, E:2E W_k, "
                "2E:3E W_v (and the same order for in_proj_bias)",
                detects=blocks_in_wrong_order(_mha, (3, 4), 3, ATTENTION_VALUES)),
        Mistake("projections_were_applied_x",
                "the projections were applied as x @ W: nn.MultiheadAttention stores its weights in the nn.Linear "
                "layout (out_features, in_features) and applies them as x @ W.T + b",
                produces=_mha_with(lambda w, b, w_o, b_o, h: (
                    oracles.torch().cat([blk.T for blk in w.chunk(3)]), b, w_o.T, b_o))),
        Mistake("scores_were_scaled_sqrt",
                "the scores were scaled by sqrt(E): each head attends with its own queries, so scale by the "
                "square root of the head size E / num_heads",
                produces=_mha_with(lambda w, b, w_o, b_o, h: (
                    oracles.torch().cat([w.chunk(3)[0] / math.sqrt(h), *w.chunk(3)[1:]]),
                    oracles.torch().cat([b.chunk(3)[0] / math.sqrt(h), *b.chunk(3)[1:]]), w_o, b_o))),
        Mistake("heads_were_split_merged",
                "the heads were split or merged by a bare reshape, without the transpose: split with "
                "reshape(N, L, h, D).transpose(1, 2), merge with transpose(1, 2).reshape(N, L, E)",
                produces=_lab5_withheld("mha_bare_reshape")),
        Mistake("mask_s_polarity_inverted",
                "the mask's polarity is inverted: in this lab True means 'may attend' (nn.MultiheadAttention's "
                "attn_mask uses the opposite, True = blocked)", produces=_inverted(_mha, 8)),
        Mistake("nan_fully_masked_query",
                "NaN on a fully masked query row: such a query must get zero weights (so its output is "
                "out_proj_bias), never NaN; fill with a large finite negative number and zero those rows",
                detects=_nan_where_fully_masked(8)),
        Mistake("mask_without_head_axis",
                "a per-batch mask (N, Lq, Lk) needs a head axis to broadcast against the scores (N, h, Lq, Lk): "
                "mask.unsqueeze(1) gives (N, 1, Lq, Lk); without it the batch axis lines up with the heads",
                raises=_mask_missing_head_axis),
        Mistake("proj_bias_none", "a bias was None and the code used it anyway: the contract allows in_proj_bias = None or "
                "out_proj_bias = None (a layer built with bias=False), which adds no bias; add each only when it is "
                "not None", raises=fails_on_none((4, 6))),
        Mistake("proj_bias_added_each",
                "in_proj_bias was not added: each projection is x @ W.T + b, with b the matching third of in_proj_bias",
                produces=_mha_with(lambda w, b, w_o, b_o, h: (w, oracles.torch().zeros_like(b), w_o, b_o))),
    ],
)


# ----------------------------------------------------------------------------- positional_encoding


def _pe(call_: Call) -> Any:
    """The call's table from the formula, in float64 (NumPy), returned in the default dtype."""
    length, d_model = call_.args
    t = oracles.torch()
    column = np.arange(d_model)
    angles = np.arange(length, dtype=np.float64)[:, None] / 10000.0 ** ((column - column % 2) / d_model)
    return t.as_tensor(np.where(column % 2 == 0, np.sin(angles), np.cos(angles))).to(t.get_default_dtype())


def _odd_d_model(ctx: Context, call_: Call) -> None:
    """An odd d_model has one more sine column than cosine columns."""
    try:
        received = ctx.student(call_)
    except StudentRaised as raised:
        raise CheckFailed(f"raised {raised.failure.exception} for an odd d_model: there is one more sine column "
                          "than cosine columns (slice the cosines to d_model // 2 columns)\n  "
                          f"{raised.failure.describe()}\n  input: {ctx.describe(call_)}") from None
    expected = oracles.plain(_pe(call_))
    problem = compare_result(ctx, expected, received, PE_TOLERANCE)
    if problem:
        raise ctx.fail(call_, problem + "\n  (an odd d_model: the last column is a sine)", "the formula, in float64",
                       expected, received, PE_TOLERANCE)


# A float32 table computed in float32 is off by about 1e-7 * position from the float64 formula.
PE_TOLERANCE = Tolerance(1e-5, 1e-5)
_PE_ROWS = np.array([[0, 1, 0, 1], [0.841471, 0.540302, 0.010000, 0.999950], [0.909297, -0.416147, 0.019999, 0.999800],
                     [0.141120, -0.989992, 0.029996, 0.999550]], dtype=np.float32)
_PE_ODD = np.array([[0, 1, 0, 1, 0], [0.841471, 0.540302, 0.025116, 0.999685, 0.000631]], dtype=np.float32)

POSITIONAL_ENCODING = Task(
    "positional_encoding", points=14,
    checks=[
        Worked([(call(4, 4, note="the handout's table, d_model = 4"), TensorValue(_PE_ROWS, "float32", "cpu")),
                (call(2, 5, note="the handout's odd example, d_model = 5"), TensorValue(_PE_ODD, "float32", "cpu"))],
               tolerance=Tolerance(0.0, 1e-6)),
        Matches(Torch("the formula, in float64", _pe, on_call=True),
                st.builds(call, sizes(1, 64), sizes(1, 32)), examples=[call(0, 4, note="no positions (max_len = 0)")],
                tolerance=PE_TOLERANCE, max_examples=10),
        Property("works for an odd d_model", _odd_d_model,
                 cases=st.builds(lambda n, i: call(n, 2 * i + 1), sizes(1, 40), sizes(0, 12)), max_examples=4),
    ],
    mistakes=[
        Mistake("sin_cos_swapped_even",
                "sin and cos are swapped: even columns 2i hold the sines, odd columns 2i+1 the cosines",
                produces=_lab5_withheld("pe_sin_cos_swapped")),
        Mistake("sines_cosines_were_concatenated",
                "the sines and cosines were concatenated in two halves [sin | cos] instead of interleaved "
                "[sin, cos, sin, cos, ...]", produces=_lab5_withheld("pe_halves")),
        Mistake("exponent_uses_i_instead",
                "the exponent uses i instead of 2i: the angle of pair i is p / 10000^(2i / d_model)",
                produces=_lab5_withheld("pe_exponent_of_i")),
        Mistake("cosine_column_2i_1",
                "the cosine column 2i+1 used its own index in the exponent: both columns of pair i share the "
                "angle p / 10000^(2i / d_model)", produces=_lab5_withheld("pe_exponent_of_own_column")),
        Mistake("positions_were_counted_1",
                "positions were counted from 1 instead of 0: row 0 is position 0, [0, 1, 0, 1, ...]",
                produces=_lab5_withheld("pe_from_position_one")),
        Mistake("wrong_dtype_positional_encoding",
                "wrong dtype: positional_encoding returns torch.get_default_dtype() (float32 unless changed); "
                "a table built in NumPy is float64, convert it with .to(torch.get_default_dtype())",
                detects=lambda c, e, r: isinstance(r, TensorValue) and r.dtype != e.dtype),
    ],
)


LAB = Lab(
    name="lab5",
    title="Self-attention",
    module="attention",
    kind="torch",
    tasks=[SCALED_DOT_PRODUCT_ATTENTION, CAUSAL_MASK, SELF_ATTENTION, SPLIT_HEADS, MERGE_HEADS, MULTI_HEAD_ATTENTION,
           POSITIONAL_ENCODING],
    banned_calls=ATTENTION_TRIPWIRES,
    # torch.ops.aten's operators get no tripwire: PyTorch's own lazily imported modules (meta kernels,
    # distributed tensors) read them, so a submission's source is searched for them instead.
    banned_source=(*ATTENTION_TRIPWIRES,
                   *(f"torch.ops.aten.{name}" for name in ("scaled_dot_product_attention", *_ATTENTION_KERNELS))),
    withheld="grader.labs.lab5_withheld",
)
