"""Lab 6, regularization and normalization: the tasks, their checks and the mistakes they recognise.

PyTorch is the oracle wherever one exists: ``F.batch_norm`` (running statistics
included), ``F.layer_norm``, and autograd for every gradient, computed in float64
on every device present and cast back to the inputs' dtype. Dropout's mask is the
student's own draw, so dropout is checked by properties instead: the output
follows from the returned mask, the kept fraction lies in an interval derived
from the binomial distribution, the mean is preserved, evaluation is the
identity, and the generator alone decides the mask.

The mistakes' producers compute with PyTorch (``_in_float64``): the student release ships this
file, and none of it may run as a solution where the students' code runs (a NumPy lab's worker
cannot import torch).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import numpy as np
from hypothesis import strategies as st

from grader.declare import oracles
from grader.declare.checks import CPU_BOTH, DEVICES_BOTH, Matches, Property, Reference, Torch, Worked, must_match
from grader.declare.compare import difference, kind_of
from grader.declare.context import Context, compare_result
from grader.declare.spec import Aspect, Call, Lab, Mistake, Task, Tolerance, call
from grader.declare.strategies import arrays_with_zeros, float_arrays, reused, shapes, sizes
from grader.sandbox.wire import RngSpec


# Drop probabilities: never only 0.5, where keeping with probability p instead of 1 - p is invisible.
P_DROP = (0.2, 0.1, 0.3, 0.7, 0.9)
# The kept count of a correct dropout falls outside its binomial interval with probability at most
# this (two-sided, alpha / 2 per tail): the interval is a 1 - 1e-9 confidence interval.
ALPHA = 1e-9
LARGE = (200, 200)  # 40 000 units: the kept fraction's standard deviation is at most 0.0025
SMALL = shapes(1, 3, 1, 6)
# The mistakes' producers compute in float64 and give their results back in the inputs' dtype.
_in_float64 = functools.partial(oracles.in_torch, float64=True)
_torch = functools.partial(Torch, float64=True)  # the oracles compute in float64 too


# ----------------------------------------------------------------------------- statistics


@functools.lru_cache(maxsize=None)
def binomial_interval(n: int, q: float, alpha: float = ALPHA) -> tuple[int, int]:
    """The counts [lo, hi] a Binomial(n, q) count K lies in with probability at least 1 - alpha:
    P(K < lo) <= alpha / 2 and P(K > hi) <= alpha / 2, from the exact probabilities."""
    if q <= 0.0:
        return 0, 0
    if q >= 1.0:
        return n, n
    k = np.arange(n + 1)
    log_factorials = np.array([math.lgamma(i + 1) for i in range(n + 1)])
    log_choose = log_factorials[n] - log_factorials - log_factorials[::-1]
    log_pmf = log_choose + k * math.log(q) + (n - k) * math.log1p(-q)
    pmf = np.exp(log_pmf - log_pmf.max())
    pmf /= pmf.sum()
    below = np.cumsum(pmf)  # P(K <= k), summed from the small tail up
    above = np.cumsum(pmf[::-1])[::-1]  # P(K >= k)
    lo = int(np.argmax(below > alpha / 2))  # P(K <= lo - 1) <= alpha / 2
    hi = int(n - np.argmax(above[::-1] > alpha / 2))  # P(K >= hi + 1) <= alpha / 2
    return lo, hi


# ----------------------------------------------------------------------------- dropout_forward


@st.composite
def dropout_calls(draw: st.DrawFn, train: bool = True, shape: st.SearchStrategy[tuple[int, ...]] = SMALL,
                  p: Sequence[float] = P_DROP, constant: bool = False) -> Call:
    """x (random values, or one constant everywhere), p, train and a generator seed."""
    size = draw(shape)
    x = np.full(size, draw(st.sampled_from((1.0, -2.0, 0.5, 3.0)))) if constant else draw(float_arrays(size))
    return call(x, draw(st.sampled_from(tuple(p))), train, RngSpec(draw(st.integers(0, 2**32 - 1))))


class _Unusable(Exception):
    """The result has the wrong structure to judge a property of it."""


def _keep_mask(call_: Call, received: Any) -> tuple[np.ndarray, np.ndarray]:
    """The student's (out, keep-mask) in training, or a failure saying why they are unusable."""
    x = call_.args[0]
    if not isinstance(received, (tuple, list)) or len(received) != 2:
        raise _Unusable(f"the result should be a tuple (out, mask), received {kind_of(received)}")
    out, mask = received
    keep_mask = " (in training mask is the boolean keep-mask, of x's shape)"
    for name, value, like, note in (("mask", mask, np.zeros(x.shape, bool), keep_mask), ("out", out, x, "")):
        problem = difference(like, value, what=name, exact_dtype=False) \
            if not (type(value) is np.ndarray and value.shape == x.shape) else None
        if problem:
            raise _Unusable(problem + note)
    return out, mask != 0


def _student_training(ctx: Context, call_: Call, source: str) -> tuple[Any, np.ndarray, np.ndarray]:
    received = ctx.student(call_)
    try:
        out, keep = _keep_mask(call_, received)
    except _Unusable as unusable:
        raise ctx.fail(call_, str(unusable), source) from None
    return received, out, keep


def _from_mask(call_: Call, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a correct dropout returns with this keep-mask: (x * mask / (1 - p), mask)."""
    x, p = call_.args[0], call_.args[1]
    return (x.astype(np.float64) * keep / (1 - p)).astype(x.dtype), keep


OUT_FROM_MASK = "the formula out = x * mask / (1 - p), with the mask you returned"


def _out_follows_mask(ctx: Context, call_: Call) -> None:
    received, out, keep = _student_training(ctx, call_, OUT_FROM_MASK)
    expected = _from_mask(call_, keep)
    problem = compare_result(ctx, expected, received, None)
    if problem:
        raise ctx.fail(call_, problem, OUT_FROM_MASK, expected, received)


BINOMIAL = f"the binomial distribution (a {1 - ALPHA:.9f} confidence interval)"


def _kept_fraction(ctx: Context, call_: Call) -> None:
    received, out, keep = _student_training(ctx, call_, BINOMIAL)
    p, n = call_.args[1], keep.size
    lo, hi = binomial_interval(n, 1 - p, ALPHA)
    kept = int(keep.sum())
    if not lo <= kept <= hi:
        problem = (f"kept {kept} of {n} units (a fraction of {kept / n:.4f}); with p = {p} each unit is kept with "
                   f"probability 1 - p = {1 - p:g}, so the kept count is Binomial({n}, {1 - p:g}) and lies in "
                   f"[{lo}, {hi}] (fraction [{lo / n:.4f}, {hi / n:.4f}]) with probability {1 - ALPHA:.9f}")
        raise ctx.fail(call_, problem, BINOMIAL, _from_mask(call_, keep), received)


def _mean_preserved(ctx: Context, call_: Call) -> None:
    received, out, keep = _student_training(ctx, call_, BINOMIAL)
    x, p = call_.args[0], call_.args[1]
    c, n = float(x.flat[0]), x.size
    lo, hi = binomial_interval(n, 1 - p, ALPHA)
    bounds = sorted((c * lo / (n * (1 - p)), c * hi / (n * (1 - p))))
    mean = float(out.astype(np.float64).mean())
    if not bounds[0] - 1e-12 * abs(c) <= mean <= bounds[1] + 1e-12 * abs(c):
        problem = (f"the mean of out is {mean:.6g} for x = {c:g} everywhere; inverted dropout preserves the mean, "
                   f"E[out] = x: with the kept count K ~ Binomial({n}, {1 - p:g}) the mean is {c:g} * K / ({n} * "
                   f"{1 - p:g}), in [{bounds[0]:.6g}, {bounds[1]:.6g}] with probability {1 - ALPHA:.9f}")
        raise ctx.fail(call_, problem, BINOMIAL, _from_mask(call_, keep), received)


def _identity_in_evaluation(ctx: Context, call_: Call) -> None:
    must_match(ctx, call_, (call_.args[0], None), None, "inverted dropout's evaluation mode: (x, None)")


def _mask_from_generator(ctx: Context, call_: Call) -> None:
    source = "calling again with the same generator state"
    first, _, keep = _student_training(ctx, call_, source)
    again = ctx.student(call_)
    problem = compare_result(ctx, first, again, Tolerance(0.0, 0.0))
    if problem:
        raise ctx.fail(call_, f"two calls with the same generator state gave different results: {problem}", source,
                       first, again, Tolerance(0.0, 0.0))
    seed = call_.args[3].seed
    other = call_.with_args(call_.args[:3] + (RngSpec((seed + 1) % 2**32),))
    _, _, other_keep = _student_training(ctx, other, source)
    if np.array_equal(keep, other_keep):
        raise ctx.fail(
            other, f"a different generator (seed {seed} and {(seed + 1) % 2**32}) gave the same mask of "
            f"{keep.size} units: the mask must be drawn from rng, the only source of randomness",
            "two generators with different seeds")


def _masks_differ(c: Call, e: Any, r: Any) -> bool:
    em, rm = e[1], r[1]
    return all(type(m) is np.ndarray and m.dtype == bool for m in (em, rm)) and em.shape == rm.shape \
        and not np.array_equal(em, rm)


def _training_out(c: Call, r: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    out, keep = _keep_mask(c, r)
    return c.args[0].astype(np.float64), out.astype(np.float64), keep, float(c.args[1])


def _not_inverted(c: Call, e: Any, r: Any) -> bool:
    x, out, keep, p = _training_out(c, r)
    return bool(c.args[2]) and p > 0 and np.allclose(out, x * keep) and not np.allclose(out, x * keep / (1 - p))


def _kept_with_probability_p(c: Call, e: Any, r: Any) -> bool:
    x, out, keep, p = _training_out(c, r)
    if not c.args[2] or p in (0.0, 0.5):
        return False
    if np.allclose(out, x * keep / p) and not np.allclose(out, x * keep / (1 - p)):
        return True
    return keep.size >= 1000 and abs(keep.mean() - p) < abs(keep.mean() - (1 - p))


def _scaled_in_evaluation(c: Call, e: Any, r: Any) -> bool:
    x, p = c.args[0].astype(np.float64), float(c.args[1])
    return not c.args[2] and p > 0 and type(r[0]) is np.ndarray and np.allclose(r[0], x * (1 - p))


def _upcast_by_mask(call_: Call, expected: Any, received: Any) -> bool:
    """The right values in float64 for float32 inputs, as x * (mask / (1 - p)) gives them."""
    pairs = list(zip(expected, received)) if isinstance(expected, tuple) and isinstance(received, (tuple, list)) \
        else [(expected, received)]
    return next((bool(np.allclose(r, e, rtol=1e-5, atol=1e-6)) for e, r in pairs
                 if isinstance(e, np.ndarray) and type(r) is np.ndarray and e.shape == r.shape
                 and e.dtype == np.float32 and r.dtype == np.float64), False)


MASK_UPCAST = Mistake(
    "mask_divided_first_upcasts",
    "mask / (1 - p) is float64 (a boolean array divided by a Python float), so x * (mask / (1 - p)) turns a "
    "float32 x into float64; write x * mask / (1 - p), which stays float32", detects=_upcast_by_mask)


DROPOUT_FORWARD = Task(
    "dropout_forward", points=16, returns=("out", "mask"),
    aspects=(Aspect("out and its mask"),),  # one verdict: out is judged through the mask the student drew
    checks=[
        Property("returns out = x * mask / (1 - p) with a boolean keep-mask of x's shape", _out_follows_mask,
                 dropout_calls(), variants=CPU_BOTH, gate=True),
        Property(f"keeps each unit with probability 1 - p (binomial interval, confidence 1 - {ALPHA:g})",
                 _kept_fraction, dropout_calls(shape=st.just(LARGE), p=(0.2, 0.8, 0.1, 0.3, 0.7, 0.9)), max_examples=8,
                 examples=[call(np.ones(LARGE), 0.0, True, RngSpec(0), note="p = 0 keeps every unit")]),
        Property("preserves the mean: E[out] = x", _mean_preserved,
                 dropout_calls(shape=st.just(LARGE), constant=True), max_examples=8),
        Property("is the identity in evaluation: (x, None)", _identity_in_evaluation, dropout_calls(train=False),
                 variants=CPU_BOTH,
                 examples=[call(np.array([1.0, 2.0, 3.0, 4.0]), 0.5, False, RngSpec(0),
                                note="the handout's worked example")]),
        Property("draws the mask from rng: the same seed gives the same mask, another seed another one",
                 _mask_from_generator, dropout_calls(shape=st.tuples(sizes(16, 32), sizes(16, 32))), max_examples=8),
    ],
    mistakes=[
        Mistake("kept_units_were_scaled",
                "the kept units were not scaled: inverted dropout divides the survivors by (1 - p) while training, "
                "out = x * mask / (1 - p)", detects=_not_inverted),
        Mistake("p_drop_probability_keep",
                "p is the drop probability: keep each unit with probability 1 - p (mask = rng.random(x.shape) >= p) "
                "and divide by 1 - p", detects=_kept_with_probability_p),
        Mistake("evaluation_time_inverted_dropout",
                "at evaluation time inverted dropout is the identity: return x unscaled (the survivors were already "
                "divided by 1 - p while training)", detects=_scaled_in_evaluation),
        Mistake("units_were_dropped_evaluation",
                "units were dropped at evaluation time: with train=False return (x, None) without drawing a mask",
                detects=lambda c, e, r: (not c.args[2] and isinstance(r, (tuple, list)) and len(r) == 2
                                         and r[1] is not None)),
        Mistake("mask_boolean_keep_mask",
                "mask must be the boolean keep-mask (True = kept), not the scaled float mask: return the booleans and "
                "compute out = x * mask / (1 - p)",
                detects=lambda c, e, r: bool(c.args[2]) and type(r[1]) is np.ndarray and r[1].dtype.kind == "f"),
        Mistake("mask_drawn_rng_numpy",
                "the mask was not drawn from rng: NumPy's global random state (np.random.rand, np.random.random) "
                "ignores the generator you were given; draw with rng.random(x.shape) so that the same rng state "
                "gives the same mask", detects=_masks_differ),
        MASK_UPCAST,
    ],
)


# ----------------------------------------------------------------------------- dropout_backward


@st.composite
def dropout_backward_calls(draw: st.DrawFn) -> Call:
    """dout, a keep-mask drawn like a correct forward pass draws it, and p."""
    shape = draw(SMALL)
    p = draw(st.sampled_from(P_DROP))
    dout = draw(float_arrays(shape))
    mask = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random(shape) >= p
    return call(dout, mask, p)


def _torch_dropout_grad(dout: Any, mask: Any, p: float) -> Any:
    x = oracles.torch().zeros_like(dout, requires_grad=True)
    return oracles.vjp(x * mask / (1 - p), x, dout)[0]


DROPOUT_BACKWARD = Task(
    "dropout_backward", points=8,
    checks=[
        Worked([(call(np.array([1.0, 2.0, 3.0, 4.0]), np.array(mask), p,
                      note=f"the handout's worked example (p = {p}), as the gradient of the same mask"), np.array(dx))
                for mask, p, dx in (([True, False, True, False], 0.5, [2.0, 0.0, 6.0, 0.0]),
                                    ([True, True, False, True], 0.25, [4 / 3, 8 / 3, 0.0, 16 / 3]))]),
        Matches(_torch("torch.autograd through x * mask / (1 - p)", _torch_dropout_grad), dropout_backward_calls(),
                variants=DEVICES_BOTH),
    ],
    mistakes=[
        Mistake("dx_scaled_inverted_dropout",
                "dx was not scaled: inverted dropout's backward pass divides by (1 - p) too, "
                "dx = dout * mask / (1 - p)", produces=_in_float64(lambda dout, mask, p: dout * mask)),
        Mistake("dx_multiplied_1_p",
                "dx was multiplied by (1 - p): divide by it instead, dx = dout * mask / (1 - p)",
                produces=_in_float64(lambda dout, mask, p: dout * mask * (1 - p))),
        Mistake("gradient_flowed_through_dropped",
                "the gradient flowed through the dropped units: multiply by the mask, so a dropped unit gets 0",
                produces=_in_float64(lambda dout, mask, p: dout / (1 - p))),
        MASK_UPCAST,
    ],
)


# ----------------------------------------------------------------------------- normalization inputs


@reused
@st.composite
def standardizable(draw: st.DrawFn, shape: Sequence[int], axis: int, max_offset: float) -> np.ndarray:
    """x whose slices along ``axis`` (the one statistics are taken over) have their own offset and
    scale: small integers, (normal + offset) * scale with |offset| <= max_offset and scale in
    [0.1, 10], or the same with a low variance (scale in [10^-2.5, 10^-1.5]) where eps matters."""
    style = draw(st.sampled_from(("small integers", "features", "low variance")))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if style == "small integers":
        return rng.integers(-3, 4, size=shape).astype(np.float64)
    stat_shape = tuple(1 if i == axis % len(shape) else n for i, n in enumerate(shape))
    offset = rng.uniform(-max_offset, max_offset, stat_shape)
    scale = 10.0 ** (rng.uniform(-1, 1, stat_shape) if style == "features" else rng.uniform(-2.5, -1.5, stat_shape))
    return (rng.standard_normal(shape) + offset) * scale


@reused
@st.composite
def affine(draw: st.DrawFn, d: int) -> tuple[np.ndarray, np.ndarray]:
    """gamma and beta of length d, at random: with nn.BatchNorm1d's init (gamma = 1, beta = 0) a dx
    that forgets gamma, or an affine step applied the wrong way round, would look right."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        return rng.choice([-2.0, -1.0, 1.0, 2.0, 3.0], d), rng.integers(-2, 3, d).astype(np.float64)
    return rng.choice([-1.0, 1.0], d) * rng.uniform(0.5, 2.0, d), rng.standard_normal(d)


EPS = st.sampled_from((None, 1e-5, 1e-3))


def _given(**options: Any) -> dict[str, Any]:
    """The keyword arguments of a call, those drawn as None (the default) left out."""
    return {name: value for name, value in options.items() if value is not None}


# ----------------------------------------------------------------------------- batchnorm_forward

# In float32, out = x * (gamma / s) + (beta - mean * gamma / s), the scale and shift folded as inference
# engines do, is correct but cancels terms of size |x| |gamma| / s: on a constant feature (s = sqrt(eps))
# that leaves ~2e-5 of rounding in an entry of size 0.04 (seed 168 of scripts/many_seeds.py). Any known
# mistake is off by far more than this atol of 1e-4 (times the largest |out| above 1).
FOLDED_FLOAT32 = {"float32": Tolerance(1e-4, 1e-4, scaled=True)}


@st.composite
def batchnorm_calls(draw: st.DrawFn) -> Call:
    """x (N, D) with per-feature offsets and scales, random gamma, beta and running statistics,
    momentum never 0.5 (where swapped roles agree), eps 1e-5 or 1e-3, both modes."""
    n, d = draw(sizes(2, 32)), draw(sizes(1, 8))
    x = draw(standardizable((n, d), axis=0, max_offset=5.0))
    gamma, beta = draw(affine(d))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    running_mean, running_var = rng.standard_normal(d), rng.uniform(0.1, 3.0, d)
    kwargs = _given(momentum=draw(st.sampled_from((None, 0.1, 0.01, 0.3, 0.0, 1.0))), eps=draw(EPS))
    mode = draw(st.booleans())
    if not mode or draw(st.booleans()):
        kwargs["train"] = mode
    return call(x, gamma, beta, running_mean, running_var, **kwargs)


def _torch_batchnorm(x: Any, gamma: Any, beta: Any, running_mean: Any, running_var: Any, momentum: float = 0.1,
                     eps: float = 1e-5, train: bool = True) -> Any:
    out = oracles.torch().nn.functional.batch_norm(x, running_mean, running_var, gamma, beta, training=bool(train),
                                                   momentum=momentum, eps=eps)
    return out, running_mean, running_var


def _batchnorm_with(*, norm_ddof: int = 0, running_ddof: int = 1, swap: bool = False, batch_in_eval: bool = False,
                    eps_outside: bool = False, axis: int = 0) -> Callable[..., Any]:
    """Batch norm's forward pass with one of its parts done the wrong way (for the mistakes' hints), in PyTorch."""
    def forward(x: Any, gamma: Any, beta: Any, running_mean: Any, running_var: Any, momentum: float = 0.1,
                eps: float = 1e-5, train: bool = True) -> Any:
        if train or batch_in_eval:
            mean, var = x.mean(axis, keepdim=True), x.var(axis, correction=norm_ddof, keepdim=True)
        else:
            mean, var = running_mean, running_var
        scale = var.sqrt() + eps if eps_outside else (var + eps).sqrt()
        out = gamma * (x - mean) / scale + beta
        if not train:
            return out, running_mean, running_var
        m = 1 - momentum if swap else momentum
        return (out, (1 - m) * running_mean + m * x.mean(0),
                (1 - m) * running_var + m * x.var(0, correction=running_ddof))
    return _in_float64(forward)


# The handout's batch (section 4) and the running statistics it leaves behind.
HANDOUT_BATCH = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0], [6.0, 5.0]])
HANDOUT_MEAN = np.array([0.3, 0.2])
HANDOUT_VAR = np.array([0.9 + 0.1 * 20 / 3, 0.9 + 0.1 * 4])
ONES, ZEROS = np.ones(2), np.zeros(2)

BATCHNORM_FORWARD = Task(
    "batchnorm_forward", points=24, returns=("out", "new_running_mean", "new_running_var"),
    aspects=(Aspect("out"), Aspect("the running statistics", parts=("new_running_mean", "new_running_var"))),
    checks=[
        Worked([
            (call(HANDOUT_BATCH, ONES, ZEROS, ZEROS, ONES, momentum=0.1, eps=1e-5, train=True,
                  note="the handout's worked example (training)"),
             (np.stack([(HANDOUT_BATCH[:, 0] - 3) / np.sqrt(5 + 1e-5), (HANDOUT_BATCH[:, 1] - 2) / np.sqrt(3 + 1e-5)],
                       axis=1),
              HANDOUT_MEAN, HANDOUT_VAR)),
            (call(np.array([[3.0, 2.0]]), ONES, ZEROS, HANDOUT_MEAN, HANDOUT_VAR, momentum=0.1, eps=1e-5, train=False,
                  note="the handout's worked example (evaluation with the running statistics)"),
             ((np.array([[3.0, 2.0]]) - HANDOUT_MEAN) / np.sqrt(HANDOUT_VAR + 1e-5), HANDOUT_MEAN, HANDOUT_VAR)),
            (call(np.array([[3.0, 2.0]]), np.array([2.0, 1.0]), np.array([0.0, 0.5]), HANDOUT_MEAN, HANDOUT_VAR,
                  momentum=0.1, eps=1e-5, train=False,
                  note="the handout's worked example (evaluation, gamma = (2, 1), beta = (0, 0.5))"),
             (np.array([[2.0, 1.0]]) * (np.array([[3.0, 2.0]]) - HANDOUT_MEAN) / np.sqrt(HANDOUT_VAR + 1e-5)
              + np.array([0.0, 0.5]), HANDOUT_MEAN, HANDOUT_VAR)),
        ]),
        Matches(_torch("torch.nn.functional.batch_norm (running statistics included)", _torch_batchnorm),
                batchnorm_calls(), variants=DEVICES_BOTH, tolerance=FOLDED_FLOAT32),
        Matches(Reference(), batchnorm_calls()),
    ],
    mistakes=[
        Mistake("batch_normalized_unbiased_variance",
                "the batch was normalized with the unbiased variance (N - 1): normalize with the biased variance "
                "x.var(axis=0) (divide by N); only the running variance takes the unbiased one",
                produces=_batchnorm_with(norm_ddof=1)),
        Mistake("running_variance_updated_biased",
                "the running variance was updated with the biased batch variance: it takes the unbiased one, "
                "var * N / (N - 1), as PyTorch does", produces=_batchnorm_with(running_ddof=0)),
        Mistake("momentum_roles_swapped_pytorch",
                "momentum roles swapped: in PyTorch momentum weights the new batch statistic, "
                "new = (1 - momentum) * old + momentum * batch", produces=_batchnorm_with(swap=True)),
        Mistake("evaluation_mode_train_false",
                "evaluation mode (train=False) must normalize with running_mean and running_var, not with the "
                "batch's own statistics", produces=_batchnorm_with(batch_in_eval=True)),
        Mistake("eps_belongs_inside_square",
                "eps belongs inside the square root: divide by sqrt(var + eps), not sqrt(var) + eps",
                produces=_batchnorm_with(eps_outside=True)),
        Mistake("statistics_were_taken_per",
                "the statistics were taken per sample (over its features): batch norm takes each feature's mean and "
                "variance over the batch axis, axis=0", produces=_batchnorm_with(axis=1)),
    ],
)


# ----------------------------------------------------------------------------- batchnorm_backward


@st.composite
def batchnorm_backward_calls(draw: st.DrawFn) -> Call:
    """dout and x (N, D) with N >= 4 (at N = 2 the normalized batch is +-1 whatever x is, and dx is
    rounding noise), per-feature offsets and scales, a random gamma, eps default, 1e-5 or 1e-3."""
    n, d = draw(sizes(4, 32)), draw(sizes(1, 8))
    dout = draw(float_arrays((n, d), styles=("small integers", "normal")))
    x = draw(standardizable((n, d), axis=0, max_offset=5.0))
    gamma, _ = draw(affine(d))
    return call(dout, x, gamma, **_given(eps=draw(EPS)))


def _torch_batchnorm_grads(dout: Any, x: Any, gamma: Any, eps: float = 1e-5) -> Any:
    t = oracles.torch()
    x, gamma = x.requires_grad_(True), gamma.requires_grad_(True)
    beta = t.zeros_like(gamma, requires_grad=True)
    out = t.nn.functional.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)
    return oracles.vjp(out, (x, gamma, beta), dout)


BATCHNORM_GRADS = _torch("torch.autograd through torch.nn.functional.batch_norm (training)", _torch_batchnorm_grads)


def _batchnorm_grads_with(*, ddof: int = 0, through_mean: bool = True, through_var: bool = True,
                          times_gamma: bool = True, dgamma_of_x_hat: bool = True,
                          means: bool = False) -> Callable[..., Any]:
    """Batch norm's gradients with one of their parts done the wrong way (for the mistakes' hints), in PyTorch."""
    def backward(dout: Any, x: Any, gamma: Any, eps: float = 1e-5) -> Any:
        s = (x.var(0, correction=ddof) + eps).sqrt()
        x_hat = (x - x.mean(0)) / s
        dbeta, dgamma = dout.sum(0), (dout * x_hat if dgamma_of_x_hat else dout).sum(0)
        dx_hat = dout - (dout.mean(0) if through_mean else 0) - (x_hat * (dout * x_hat).mean(0) if through_var else 0)
        dx = (gamma if times_gamma else 1) / s * dx_hat
        n = x.shape[0] if means else 1
        return dx, dgamma / n, dbeta / n
    return _in_float64(backward)


def _dx_sums_to_zero(ctx: Context, call_: Call) -> None:
    received = ctx.student(call_)
    source = "a property of every correct dx: per feature, the entries of dx sum to 0"
    dx = received[0] if isinstance(received, (tuple, list)) and len(received) == 3 else None
    x = call_.args[1]
    if type(dx) is not np.ndarray or dx.shape != x.shape or dx.dtype.kind != "f":
        raise ctx.fail(call_, f"dx should be a numpy.ndarray of shape {x.shape}, received {kind_of(dx)}", source)
    # The sum cancels terms as large as |gamma| / s * sum(|dout|): the rounding it may leave scales with them.
    dout, gamma = call_.args[0], call_.args[2]
    s = np.sqrt(x.astype(np.float64).var(0) + call_.kwargs.get("eps", 1e-5))
    scale = np.abs(dx.astype(np.float64)).sum(0) + np.abs(gamma) / s * np.abs(dout.astype(np.float64)).sum(0)
    sums = dx.astype(np.float64).sum(0)
    tol = SUM_RTOL[x.dtype.name] * scale
    if not np.all(np.abs(sums) <= tol):
        j = int(np.argmax(np.abs(sums) - tol))
        problem = (f"the entries of dx for feature {j} sum to {sums[j]:.6g}, expected 0 (tolerance: {tol[j]:.3g}, "
                   f"{SUM_RTOL[x.dtype.name]:g} x the size of the terms that cancel): shifting every sample of a "
                   "feature by the same amount changes nothing after normalization, so dx has no component along "
                   "that shift")
        raise ctx.fail(call_, problem, source, BATCHNORM_GRADS(ctx, call_), received)


SUM_RTOL = {"float64": 1e-9, "float32": 1e-4}
# In float32, dx = gamma / s * (dout - mean(dout) - x_hat * mean(dout * x_hat)) can cancel terms of
# size |gamma| / s * |dout| down to nearly 0, leaving their rounding (~1e-7 of them) in that entry.
CANCELLING_FLOAT32 = {"float32": Tolerance(1e-4, 1e-5, scaled=True)}

# The handout's section 5: feature 0 of the batch normalized, (x - 3) / sqrt(5 + eps), and
# dx = (N g - dbeta - x_hat dgamma) / (N s) with g touching only sample 0.
HANDOUT_X_HAT = (HANDOUT_BATCH[:, 0] - 3) / np.sqrt(5 + 1e-5)

BATCHNORM_BACKWARD = Task(
    "batchnorm_backward", points=22, returns=("dx", "dgamma", "dbeta"),
    checks=[
        Worked([(call(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]), HANDOUT_BATCH, ONES, eps=1e-5,
                      note="the handout's worked example (dout touches only sample 0, feature 0)"),
                 (np.stack([(np.array([4.0, 0.0, 0.0, 0.0]) - 1 - HANDOUT_X_HAT * HANDOUT_X_HAT[0])
                            / (4 * np.sqrt(5 + 1e-5)), np.zeros(4)], axis=1),
                  np.array([HANDOUT_X_HAT[0], 0.0]), np.array([1.0, 0.0])))]),
        Matches(BATCHNORM_GRADS, batchnorm_backward_calls(), variants=DEVICES_BOTH, tolerance=CANCELLING_FLOAT32),
        Matches(Reference(), batchnorm_backward_calls()),
        Property("per feature, the entries of dx sum to 0", _dx_sums_to_zero, batchnorm_backward_calls(),
                 variants=CPU_BOTH, gate=True),
    ],
    mistakes=[
        Mistake("dx_treats_batch_mean",
                "dx treats the batch mean and variance as constants: every x_i also moves the mean and the variance, "
                "so dx = gamma / (N s) * (N dout - dbeta - x_hat * dgamma)",
                produces=_batchnorm_grads_with(through_mean=False, through_var=False)),
        Mistake("dx_misses_path_through",
                "dx misses the path through the variance: subtract x_hat * mean(dout * x_hat) as well as mean(dout)",
                produces=_batchnorm_grads_with(through_var=False)),
        Mistake("dgamma_sum_over_batch",
                "dgamma is the sum over the batch of dout * x_hat, not of dout alone (gamma multiplies x_hat)",
                produces=_batchnorm_grads_with(dgamma_of_x_hat=False)),
        Mistake("dx_multiplied_gamma_gradient",
                "dx was not multiplied by gamma: the gradient reaching x_hat is gamma * dout",
                produces=_batchnorm_grads_with(times_gamma=False)),
        Mistake("statistics_were_recomputed_unbiased",
                "the statistics were recomputed with the unbiased variance (N - 1): the forward pass normalized with "
                "the biased variance (divide by N), so recompute that one", produces=_batchnorm_grads_with(ddof=1)),
        Mistake("dgamma_dbeta_sum_over",
                "dgamma and dbeta are a sum over the batch, not a mean: every sample's output used the same gamma "
                "and beta", produces=_batchnorm_grads_with(means=True)),
    ],
)


# ----------------------------------------------------------------------------- layernorm_forward


@st.composite
def layernorm_calls(draw: st.DrawFn) -> Call:
    """x of shape (D,), (N, D) with N != D or (N, L, D) with L != D (a statistic over the wrong axis
    then cannot broadcast by accident), per-sample offsets and scales, random gamma and beta."""
    d = draw(sizes(1, 8))
    leading = draw(st.sampled_from((1, 2, 0)))
    shape = tuple(draw(sizes(1, 6).filter(lambda k: k != d)) for _ in range(leading)) + (d,)
    x = draw(standardizable(shape, axis=-1, max_offset=3.0))
    gamma, beta = draw(affine(d))
    return call(x, gamma, beta, **_given(eps=draw(EPS)))


def _torch_layernorm(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> Any:
    return oracles.torch().nn.functional.layer_norm(x, x.shape[-1:], gamma, beta, eps)


def _layernorm_with(*, axis: int = -1, ddof: int = 0, eps_outside: bool = False,
                    keepdims: bool = True) -> Callable[..., Any]:
    """Layer norm with one of its parts done the wrong way (for the mistakes' hints), in PyTorch."""
    def forward(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> Any:
        mean, var = x.mean(axis, keepdim=keepdims), x.var(axis, correction=ddof, keepdim=keepdims)
        scale = var.sqrt() + eps if eps_outside else (var + eps).sqrt()
        return gamma * (x - mean) / scale + beta
    return _in_float64(forward)


# Explicit inputs on which a statistic over the wrong axis, or without keepdims, broadcasts and gives
# wrong values (the generated shapes make it raise instead, which carries no hint).
SQUARE = np.array([[1.0, -2.0, 0.0], [3.0, 1.0, -1.0], [2.0, 2.0, -3.0]])
CUBE = np.array([SQUARE, [[0.0, 1.0, 3.0], [-1.0, -1.0, 2.0], [1.0, 0.0, 0.0]],
                 [[2.0, -3.0, 1.0], [0.0, 2.0, 2.0], [-2.0, 1.0, 3.0]]])

LAYERNORM_FORWARD = Task(
    "layernorm_forward", points=14,
    checks=[
        Matches(_torch("torch.nn.functional.layer_norm", _torch_layernorm), layernorm_calls(), variants=DEVICES_BOTH,
                examples=[call(SQUARE, np.array([1.0, 2.0, -1.0]), np.array([0.0, 1.0, 0.5]),
                               note="a square batch (N = D = 3)"),
                          call(CUBE, np.array([1.0, 2.0, -1.0]), np.array([0.0, 1.0, 0.5]),
                               note="a batch of sequences (N = L = D = 3)")]),
        Worked([(call(np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]), np.ones(3), np.zeros(3),
                      note="the handout's worked example"),
                 np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0]]) / np.sqrt(np.array([[2 / 3], [8 / 3]]) + 1e-5))]),
        Matches(Reference(), layernorm_calls()),
    ],
    mistakes=[
        Mistake("statistics_were_taken_over",
                "the statistics were taken over the wrong axis: layer norm normalizes each sample over its last axis "
                "(axis=-1), whatever the number of leading axes",
                detects=lambda c, e, r: any(difference(_layernorm_with(axis=axis)(*c.args, **c.kwargs), r) is None
                                            for axis in range(c.args[0].ndim - 1))),
        Mistake("statistics_broadcast_against_wrong",
                "the statistics broadcast against the wrong axis: keep the reduced axis "
                "(x.mean(axis=-1, keepdims=True)) so that they line up with each sample",
                produces=_layernorm_with(keepdims=False)),
        Mistake("normalize_biased_variance_divide",
                "normalize with the biased variance (divide by D, np.var's default ddof=0), not the unbiased one",
                produces=_layernorm_with(ddof=1)),
        Mistake("eps_belongs_inside_square",
                "eps belongs inside the square root: divide by sqrt(var + eps), not sqrt(var) + eps",
                produces=_layernorm_with(eps_outside=True)),
    ],
)


# ----------------------------------------------------------------------------- penalties


@st.composite
def penalty_calls(draw: st.DrawFn) -> Call:
    """W of 1 to 3 axes with about 30 % exact zeros (where sign(0) matters), lam in [1e-4, 1]."""
    W = draw(arrays_with_zeros(draw(shapes(1, 3, 1, 5))))
    return call(W, draw(st.sampled_from((0.1, 1e-4, 0.01, 0.5, 1.0))))


def _penalty_task(kind: str, formula: str, worked: Sequence[tuple[Call, Any]], mistakes: list[Mistake]) -> Task:
    """The l2 or l1 penalty's task: the handout's examples, and autograd through ``formula`` on every device."""
    def compute(W: Any, lam: float) -> Any:
        W.requires_grad_(True)
        penalty = lam * (W.square().sum() if kind == "l2" else W.abs().sum())
        return penalty, *oracles.torch().autograd.grad(penalty, W)
    return Task(f"{kind}_penalty", points=8, returns=("penalty", "dW"), mistakes=mistakes, checks=[
        Worked(worked),
        Matches(_torch(f"torch.autograd through {formula}", compute), penalty_calls(), variants=DEVICES_BOTH)])


def _differs_only_at_zeros(c: Call, e: Any, r: Any) -> bool:
    W, dW = c.args[0], r[1]
    if type(dW) is not np.ndarray or dW.shape != W.shape:
        return False
    with np.errstate(invalid="ignore"):
        wrong = ~np.isclose(dW.astype(np.float64), e[1].astype(np.float64), rtol=1e-4, atol=1e-8) | np.isnan(dW)
    return bool(wrong.any()) and bool(np.all(W[wrong] == 0))


HANDOUT_PENALTY_W = np.array([[0.5, -1.0], [0.0, 2.0]])

L2_PENALTY = _penalty_task(
    "l2", "lam * (W ** 2).sum()",
    [(call(HANDOUT_PENALTY_W, 0.1, note="the handout's worked example"),
      (0.525, np.array([[0.1, -0.2], [0.0, 0.4]]))),
     (call(HANDOUT_PENALTY_W, 0.0, note="lam = 0: no penalty"), (0.0, np.zeros((2, 2))))],
    mistakes=[
        Mistake("dw_missing_factor_2",
                "dW is missing the factor 2: the derivative of lam * W² is 2 * lam * W",
                produces=_in_float64(lambda W, lam: (lam * (W**2).sum(), lam * W))),
        Mistake("1_2_lam_sum",
                "this is the 1/2 * lam * sum(W²) convention: this lab grades lam * sum(W²), whose gradient is "
                "2 * lam * W", produces=_in_float64(lambda W, lam: (0.5 * lam * (W**2).sum(), lam * W))),
        Mistake("squares_were_averaged_mean",
                "the squares were averaged (a mean): the penalty is lam times their sum over every entry",
                produces=_in_float64(lambda W, lam: (lam * (W**2).mean(), 2 * lam * W / W.numel()))),
        Mistake("norm_squared_penalty_lam",
                "the norm is not squared: the penalty is lam * sum(W²), not lam * ||W||",
                produces=_in_float64(lambda W, lam: (lam * (W**2).sum().sqrt(), 2 * lam * W))),
    ],
)

L1_PENALTY = _penalty_task(
    "l1", "lam * W.abs().sum()",
    [(call(HANDOUT_PENALTY_W, 0.1, note="the handout's worked example"),
      (0.35, np.array([[0.1, -0.1], [0.0, 0.1]]))),
     (call(np.zeros((2, 3)), 0.5, note="W all zero: no penalty and no gradient"),
      (0.0, np.zeros((2, 3))))],
    mistakes=[
        Mistake("sign_0_0_weight",
                "sign(0) must be 0: a weight that is exactly 0 gets no L1 gradient (np.sign(0) is 0, while W / |W| "
                "is NaN there and a two-way sign gives +-lam)", detects=_differs_only_at_zeros),
        Mistake("l1_gradient_lam_sign",
                "the L1 gradient is lam * sign(W), not lam * W",
                produces=_in_float64(lambda W, lam: (lam * W.abs().sum(), lam * W))),
        Mistake("penalty_sums_w_absolute",
                "the penalty sums W, not its absolute values: lam * sum(|W|)",
                produces=_in_float64(lambda W, lam: (lam * W.sum(), lam * W.sign()))),
    ],
)


LAB = Lab(
    name="lab6",
    title="Regularization and normalization",
    module="regularization",
    kind="numpy",
    banned_source=("torch",),
    tasks=[DROPOUT_FORWARD, DROPOUT_BACKWARD, BATCHNORM_FORWARD, BATCHNORM_BACKWARD, LAYERNORM_FORWARD,
           L2_PENALTY, L1_PENALTY],
)
