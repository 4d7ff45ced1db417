"""The points policy (docs/ENGINE.md): points follow what is right.

A task's points are shared among its aspects and earned by the value checks that judge each; a near
miss keeps most of a check's credit; gates earn nothing and cost a quarter each; checks pending for
the reference keep their weight. The scoring itself is tested on hand-made check results, then on
the submissions the issue that asked for the policy named.
"""

from __future__ import annotations

import pytest

from grader import labs
from grader.run.results import GATE, NEAR_MISS, CheckResult, TaskResult
from tests.conftest import grade

# ----------------------------------------------------------------------------- the scoring


def value(name: str, status: str = "passed", **verdicts: str) -> CheckResult:
    return CheckResult(name, status, "" if status == "passed" else "wrong", verdicts=verdicts)


def gate(name: str, status: str = "passed") -> CheckResult:
    return CheckResult(name, status, "" if status == "passed" else "wrong", gate=True)


SHARES = {"dx": 1 / 3, "dW": 1 / 3, "db": 1 / 3}


def test_each_aspect_earns_its_share_from_the_value_checks_that_judge_it():
    checks = [value("torch", "failed", dx="passed", dW="passed", db="failed"),
              value("reference", "failed", dx="passed", dW="passed", db="failed")]
    task = TaskResult.score_checks("linear_backward", 9, checks, SHARES)
    assert task.score == 6 and task.status == "failed"
    assert [c.points for c in task.checks] == [3, 3]


def test_passing_gates_earn_nothing_and_each_failed_gate_costs_a_quarter():
    right = value("torch", dx="passed", dW="passed", db="passed")
    assert TaskResult.score_checks("t", 8, [gate("raises")], SHARES).score == 0
    assert TaskResult.score_checks("t", 8, [right, gate("raises")], SHARES).score == 8
    one = TaskResult.score_checks("t", 8, [right, gate("raises", "failed")], SHARES)
    two = TaskResult.score_checks("t", 8, [right, gate("raises", "failed"), gate("device", "error")], SHARES)
    assert (one.score, two.score) == (8 * GATE, round(8 * GATE * GATE, 2)) and one.status == "failed"


def test_a_gate_left_unrun_after_a_fatal_failure_costs_nothing_more():
    checks = [value("torch", "timeout", dx="failed", dW="failed", db="failed"),
              CheckResult("raises", "timeout", "not run: timed out", gate=True)]
    assert TaskResult.score_checks("t", 8, checks, SHARES).score == 0


def test_a_near_miss_keeps_three_quarters_of_the_check():
    checks = [value("torch", "failed", dx="near miss", dW="passed", db="passed")]
    assert TaskResult.score_checks("t", 9, checks, SHARES).score == round(9 * (2 + NEAR_MISS) / 3, 2)


def test_an_aspect_whose_every_check_is_skipped_for_a_device_gives_its_share_to_the_others():
    checks = [value("cpu", "passed", values="passed"),
              value("cuda", "skipped", values="skipped", gradients="skipped")]
    task = TaskResult.score_checks("t", 10, checks, {"values": 0.5, "gradients": 0.5})
    assert task.score == 10 and task.status == "passed" and task.pending == 0


def test_a_pending_check_keeps_its_weight_and_says_how_much_it_may_add():
    checks = [value("torch", dx="passed", dW="passed", db="passed"),
              CheckResult("reference", "skipped", "needs the reference solutions (graded on submission)",
                          verdicts={"dx": "pending", "dW": "pending", "db": "pending"}, pending=True)]
    task = TaskResult.score_checks("t", 9, checks, SHARES)
    assert task.status == "passed" and task.score == 4.5 and task.pending == 4.5
    data = task.to_json()
    assert data["pending"] == 4.5 and data["checks"][1]["pending"] == 4.5 and data["checks"][0]["points"] == 4.5
    assert TaskResult.from_json(data).pending == 4.5


def test_the_json_marks_gates_and_shows_the_verdict_of_each_aspect():
    checks = [value("torch", "failed", dx="passed", dW="near miss", db="failed"), gate("raises", "failed")]
    data = TaskResult.score_checks("t", 9, checks, SHARES).to_json()
    assert data["checks"][0]["aspects"] == {"dx": "passed", "dW": "near miss", "db": "failed"}
    assert data["checks"][1]["gate"] is True and "points" not in data["checks"][1]
    assert {"name", "status", "message"} <= set(data["checks"][0])


# ----------------------------------------------------------------------------- declarations


@pytest.mark.parametrize("lab", labs.names())
def test_every_aspect_of_every_task_is_judged_by_a_value_check(lab):
    for task in labs.load(lab).tasks:
        judged = {a for c in task.checks for a in task.judged(c)}
        assert judged == {a.name for a in task.shares}, task.name
        assert abs(sum(a.share for a in task.shares) - 1) < 1e-12


# ----------------------------------------------------------------------------- the examples


def _task(lab: str, submission, source: str, task: str):
    (result,) = grade(lab, submission(lab, source), tasks=(task,)).tasks
    return result


def test_a_dtype_slip_with_right_values_is_a_near_miss_not_zero(submission):
    task = _task("lab5", submission, """
        _reference_pe = positional_encoding

        def positional_encoding(length, d_model):
            return _reference_pe(length, d_model).to(torch.float64)
    """, "positional_encoding")
    values = [c for c in task.checks if not c.gate]
    assert {v for c in values for v in c.verdicts.values()} == {"near miss"}
    assert task.score == task.max_score * NEAR_MISS and "float64" in task.message


def test_epsilon_outside_the_square_root_keeps_the_running_statistics_and_a_near_miss(submission):
    task = _task("lab6", submission, """
        def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, train=True):
            if train:
                mean, var = x.mean(axis=0), x.var(axis=0)
                n = x.shape[0]
                new_mean = (1 - momentum) * running_mean + momentum * mean
                new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
            else:
                mean, var = running_mean, running_var
                new_mean, new_var = running_mean.copy(), running_var.copy()
            return gamma * (x - mean) / (np.sqrt(var) + eps) + beta, new_mean, new_var
    """, "batchnorm_forward")
    values = [c for c in task.checks if not c.gate and c.ran]
    assert {c.verdicts["the running statistics"] for c in values} == {"passed"}
    assert {c.verdicts["out"] for c in values} == {"near miss", "failed"}  # the handout's example is a near miss
    assert task.max_score / 2 < task.score < task.max_score


def test_a_missing_scale_loses_far_more_than_a_slip(submission):
    task = _task("lab5", submission, """
        def scaled_dot_product_attention(q, k, v, mask=None):
            scores = q @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            weights = torch.softmax(scores, dim=-1)
            if mask is not None:
                weights = weights * mask.any(dim=-1, keepdim=True)
            return weights @ v, weights
    """, "scaled_dot_product_attention")
    values = {c.name: c.verdicts for c in task.checks if not c.gate and c.ran}
    assert values["reproduces the handout's worked examples"] == {"out": "failed", "weights": "failed"}
    assert {v["gradients"] for v in values.values() if "gradients" in v} == {"failed"}
    # what remains: the weights sum to one over the allowed keys, and scores of 1e4 saturate the softmax anyway
    assert 0 < task.score < task.max_score / 4


def test_a_detach_that_kills_every_gradient_keeps_the_values_share_only(submission):
    task = _task("lab4", submission, """
        _reference_lstm = lstm

        def lstm(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
            out, (h, c) = _reference_lstm(xs, h0, c0, W_ih, W_hh, b_ih, b_hh)
            return out.detach(), (h.detach(), c.detach())
    """, "lstm")
    gradients = next(a for a in labs.load("lab4").task("lstm").shares if a.name == "gradients")
    assert gradients.share == 0.5
    assert task.score == task.max_score * (1 - gradients.share)
    assert "no gradient reached" in task.message


def test_a_wrong_db_leaves_dx_and_dw_their_shares(submission):
    task = _task("lab1", submission, """
        def linear_backward(dout, x, W):
            return dout @ W.T, x.T @ dout, dout.sum(axis=0) * 2
    """, "linear_backward")
    assert task.score == task.max_score * 2 / 3
    values = [c for c in task.checks if c.ran and not c.gate]
    assert {c.verdicts["db"] for c in values} == {"failed"} and {c.verdicts["dx"] for c in values} == {"passed"}


def test_sgd_that_never_moves_w_scores_zero(submission):
    task = _task("lab2", submission, """
        def sgd(w, dw, state, lr=0.01):
            return w.copy(), state
    """, "sgd")
    passed = [c.name for c in task.checks if c.status == "passed"]
    assert task.score == 0 and passed and all(c.gate for c in task.checks if c.status == "passed")


def test_zeros_like_h_for_rnn_cell_scores_zero(submission):
    task = _task("lab4", submission, """
        def rnn_cell(x, h, W_ih, W_hh, b_ih, b_hh):
            return torch.zeros_like(h)
    """, "rnn_cell")
    assert task.score == 0 and any(c.gate and c.status == "passed" for c in task.checks)


def test_right_values_from_code_that_modifies_its_argument_lose_a_gate_only(submission):
    task = _task("lab3", submission, """
        _reference_conv = conv2d_forward

        def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1):
            out = _reference_conv(x, w, b, stride, padding, dilation)
            x *= 0  # scratch use of the input
            return out
    """, "conv2d_forward")
    (modified,) = [c for c in task.checks if c.gate and c.status == "failed"]
    assert "modified its argument 'x' in place" in modified.message and task.message.startswith(modified.name)
    assert task.score == task.max_score * GATE
