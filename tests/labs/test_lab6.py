"""Lab 6 scenarios that test_every_lab does not cover: the statistics behind the dropout checks
(exact binomial tails, the reference's false-failure rate over many seeds, the power against
keeping with probability p), what the dropout properties catch that no mutant shows, the
freedoms the contract leaves (same object or copy, float or 0-d penalty), and why the float32
batch-norm gradient is compared with a scaled tolerance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grader import labs
from grader.declare.compare import difference
from grader.run.engine import load_reference
from grader.labs import lab6
from grader.declare.oracles import in_torch
from tests.conftest import REPO, grade

REFERENCE = load_reference(labs.load("lab6"), REPO / "solutions")
P_GRADED = tuple(sorted(set(lab6.P_DROP) | {0.8}))


def _tails(n: int, q: float, lo: int, hi: int) -> tuple[float, float]:
    """P(K < lo) and P(K > hi) for K ~ Binomial(n, q), from exact binomial coefficients."""
    pmf = [math.comb(n, k) * q**k * (1 - q) ** (n - k) for k in range(n + 1)]
    return sum(pmf[:lo]), sum(pmf[hi + 1:])


@pytest.mark.parametrize("n", [1, 7, 20, 60])
@pytest.mark.parametrize("q", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("alpha", [0.5, 0.1, 0.01])
def test_binomial_interval_is_the_narrowest_with_both_tails_below_alpha_over_2(n, q, alpha):
    lo, hi = lab6.binomial_interval(n, q, alpha)
    below, above = _tails(n, q, lo, hi)
    assert below <= alpha / 2 + 1e-12 and above <= alpha / 2 + 1e-12
    wider_below, _ = _tails(n, q, lo + 1, hi)
    _, wider_above = _tails(n, q, lo, hi - 1)
    assert wider_below > alpha / 2 and wider_above > alpha / 2  # one count narrower would exceed alpha / 2


def test_binomial_interval_with_p_zero_requires_every_unit_kept():
    assert lab6.binomial_interval(40_000, 1.0) == (40_000, 40_000)


def test_reference_dropout_stays_inside_the_graded_bounds_over_many_seeds():
    """The graded checks use a 1 - 1e-9 interval: over 3 000 draws of 40 000 units the reference
    must never leave it, neither in the kept count nor in the mean of out."""
    n = math.prod(lab6.LARGE)
    outside = []
    for p in P_GRADED:
        lo, hi = lab6.binomial_interval(n, 1 - p)
        for seed in range(500):
            out, mask = REFERENCE.dropout_forward(np.ones(lab6.LARGE), p, True, np.random.default_rng(seed))
            kept, mean = int(mask.sum()), float(out.mean())
            if not (lo <= kept <= hi and lo / (n * (1 - p)) - 1e-12 <= mean <= hi / (n * (1 - p)) + 1e-12):
                outside.append((p, seed, kept))
    assert outside == []


def test_the_kept_fraction_bound_is_calibrated_not_just_wide():
    """At alpha = 0.05 the same construction rejects the reference about 5 % of the time: the
    interval comes from the binomial distribution, it is not a loose guess."""
    n, p, alpha, trials = math.prod(lab6.LARGE), 0.2, 0.05, 2000
    lo, hi = lab6.binomial_interval(n, 1 - p, alpha)
    rejected = 0
    for seed in range(trials):
        kept = int(REFERENCE.dropout_forward(np.ones(lab6.LARGE), p, True, np.random.default_rng(seed))[1].sum())
        rejected += not lo <= kept <= hi
    assert 0.025 <= rejected / trials <= 0.065  # Binomial(2000, ~0.05): about 4.5 standard deviations either side


@pytest.mark.parametrize("p", P_GRADED)
def test_keeping_with_probability_p_lands_far_outside_the_interval(p):
    n = math.prod(lab6.LARGE)
    lo, hi = lab6.binomial_interval(n, 1 - p)
    wrong_lo, wrong_hi = lab6.binomial_interval(n, p)
    assert wrong_hi < lo or wrong_lo > hi  # even the wrong draw's own 1 - 1e-9 interval does not reach it


@pytest.mark.parametrize("seed", range(6))
def test_graded_reference_dropout_passes_whatever_the_seed(seed):
    result = grade("lab6", REPO / "solutions", tasks=("dropout_forward",), seed=seed)
    (task,) = result.tasks
    assert task.status == "passed", task.message


def _check(task, name):
    return next(c for c in task.checks if c.name.startswith(name))


def test_dropout_with_its_own_fixed_generator_fails_the_rng_check(submission):
    folder = submission("lab6", '''
        def dropout_forward(x, p, train, rng):
            if not train:
                return x.copy(), None
            mask = np.random.default_rng(0).random(x.shape) >= p  # same mask whatever rng says
            return x * mask / (1 - p), mask
    ''')
    (task,) = grade("lab6", folder, tasks=("dropout_forward",)).tasks
    check = _check(task, "draws the mask from rng")
    assert check.status == "failed" and "a different generator" in check.message
    assert task.score < task.max_score


def test_float32_dropout_that_upcasts_through_the_mask_fails_on_dtype(submission):
    folder = submission("lab6", '''
        def dropout_forward(x, p, train, rng):
            if not train:
                return x.copy(), None
            mask = rng.random(x.shape) >= p
            return x * (mask / (1 - p)), mask  # bool / float is float64
    ''')
    (task,) = grade("lab6", folder, tasks=("dropout_forward",)).tasks
    formula = "returns out = x * mask / (1 - p) with a boolean keep-mask of x's shape"
    check = _check(task, f"{formula} (cpu, float32)")
    assert check.status == "failed" and "dtype float64, expected float32" in check.message
    assert _check(task, f"{formula} (cpu, float64)").status == "passed"


def test_a_training_mask_of_the_wrong_shape_is_named(submission):
    folder = submission("lab6", '''
        def dropout_forward(x, p, train, rng):
            if not train:
                return x.copy(), None
            mask = rng.random(x.shape) >= p
            return x * mask / (1 - p), mask.ravel()
    ''')
    (task,) = grade("lab6", folder, tasks=("dropout_forward",)).tasks
    assert task.status == "failed" and "mask has shape" in task.message


def test_returning_the_arguments_themselves_where_nothing_changes_is_allowed(submission):
    folder = submission("lab6", '''
        def dropout_forward(x, p, train, rng):
            if not train:
                return x, None
            mask = rng.random(x.shape) >= p
            return x * mask / (1 - p), mask

        def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, train=True):
            if train:
                return _reference_batchnorm(x, gamma, beta, running_mean, running_var, momentum, eps, train)
            return gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta, running_mean, running_var
    ''')
    # keep the reference's training branch under another name
    path = folder / "lab6" / "regularization.py"
    path.write_text(path.read_text().replace("def batchnorm_forward(", "def _reference_batchnorm(", 1))
    result = grade("lab6", folder, tasks=("dropout_forward", "batchnorm_forward"))
    assert {t.name: t.status for t in result.tasks} == {"dropout_forward": "passed", "batchnorm_forward": "passed"}


def test_a_penalty_may_be_a_python_float_or_a_0d_array(submission):
    folder = submission("lab6", '''
        def l2_penalty(W, lam):
            return float(lam * np.sum(W * W)), 2 * lam * W

        def l1_penalty(W, lam):
            return np.array(lam * np.sum(np.abs(W))), lam * np.sign(W)
    ''')
    result = grade("lab6", folder, tasks=("l2_penalty", "l1_penalty"))
    assert {t.status for t in result.tasks} == {"passed"}


def test_float32_batchnorm_gradient_that_cancels_needs_the_scaled_tolerance():
    """dx[2] is -0.047 but comes from terms of about 185: the reference's float32 rounding of those
    terms (about 7e-5) is within the scaled tolerance and outside the elementwise one."""
    x = np.array([[0.08232646435499191], [0.07764698565006256], [0.05459986627101898], [0.07471346855163574]],
                 dtype=np.float32)
    dout = np.array([[2.0], [3.0], [1.0], [1.0]], dtype=np.float32)
    gamma = np.array([2.0], dtype=np.float32)
    expected = in_torch(lab6._torch_batchnorm_grads, float64=True)(dout, x, gamma)
    received = REFERENCE.batchnorm_backward(dout, x, gamma)
    assert difference(expected[0], received[0]) is not None
    assert difference(expected[0], received[0], lab6.CANCELLING_FLOAT32) is None


def test_dropout_forward_may_return_x_itself_in_evaluation(submission):
    """The handout says so (as nn.Dropout in eval mode): the checks compare values and that x is unchanged."""
    folder = submission("lab6", """
        _reference_dropout = dropout_forward

        def dropout_forward(x, p, train, rng):
            return (x, None) if not train else _reference_dropout(x, p, train, rng)
    """)
    (task,) = grade("lab6", folder, tasks=("dropout_forward",)).tasks
    assert task.status == "passed" and task.score == task.max_score, task.message
    handout = " ".join((REPO / "assignments" / "lab6" / "README.md").read_text().split())
    assert "returning `x` itself is fine" in handout


def test_batchnorm_with_scale_and_shift_folded_keeps_full_marks_on_a_constant_float32_feature(submission):
    # many_seeds found it (seed 168): a constant feature makes s = sqrt(eps), and the folded form cancels
    # terms of size |x| |gamma| / s ~ 830 in float32, ~2e-5 of rounding in an entry of size 0.04
    import tests.mutants.lab6 as mutants
    from tests.conftest import mutant_submission
    from tests.mutants import collect

    folded = next(m for m in collect(mutants) if m.id == "batchnorm_forward_scale_and_shift_folded")
    from grader.run.engine import PROFILES, grade_lab

    (task,) = grade_lab(labs.load("lab6"), mutant_submission(submission, "lab6", folded), seed=168,
                        tasks=("batchnorm_forward",), budget=PROFILES["default"]).tasks  # the inputs of seed 168
    assert task.score == task.max_score, task.message
