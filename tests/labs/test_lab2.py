"""Lab 2 scenarios that test_every_lab does not cover: what running an optimizer as a loop in one
worker request catches that single calls cannot (a gradient aliased into the state and changed a
step later, a step count kept outside the state, a state that cannot be saved), what the per-step
message says (the step and the state entry that went wrong), the properties (Adam's bound,
Adagrad's shrinking rate, SGD's fixed point) on their own, and the tolerances against torch.optim's
multi-tensor (foreach) kernels, which CUDA runs by default."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from grader import labs
from grader.run.engine import PROFILES, grade_lab, load_reference
from grader.labs import lab2
from tests.conftest import REPO, grade

REFERENCE = load_reference(labs.load("lab2"), REPO / "solutions")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam")


def _check(task, name_part):
    (found,) = [c for c in task.checks if name_part in c.name]
    return found


def _messages(task) -> str:
    return "\n".join([task.message] + [c.message for c in task.checks])


# ----------------------------------------------------------------------------- the loop in the worker


def test_momentum_storing_dw_itself_is_caught_when_a_later_step_changes_it(submission):
    """v = dw then v *= mu one step later overwrites the caller's gradient: a single call cannot see it."""
    folder = submission("lab2", """
        def momentum(w, dw, state, lr=0.01, mu=0.9):
            if "v" not in state:
                state["v"] = dw
            else:
                state["v"] *= mu
                state["v"] += dw
            return w - lr * state["v"], state
    """)
    (task,) = grade("lab2", folder, tasks=("momentum",)).tasks
    assert task.status == "failed"
    assert "'dw' passed to momentum at step 1 was modified in place after that call had returned" in task.message


def test_adam_with_a_module_level_step_count_fails_from_the_second_run_on(submission):
    """The handout warns against a global counter; no mutant can keep module state, so this is its test."""
    folder = submission("lab2", """
        _T = [0]

        def adam(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
            _T[0] += 1
            t = _T[0]
            m = beta1 * state.get("m", np.zeros_like(w)) + (1 - beta1) * dw
            v = beta2 * state.get("v", np.zeros_like(w)) + (1 - beta2) * dw * dw
            state.update(m=m, v=v)
            return w - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps), state
    """)
    (task,) = grade("lab2", folder, tasks=("adam",)).tasks
    assert task.status == "failed" and task.score < task.max_score
    assert "nothing in your state holds torch's 'step'" in _messages(task)


def test_a_state_that_cannot_be_saved_fails_the_resumed_check_with_a_reason(submission):
    folder = submission("lab2", """
        class _Velocity:
            def __init__(self, w):
                self.v = np.zeros_like(w)

        def momentum(w, dw, state, lr=0.01, mu=0.9):
            box = state.setdefault("box", _Velocity(w))
            box.v = mu * box.v + dw
            return w - lr * box.v, state
    """)
    (task,) = grade("lab2", folder, tasks=("momentum",)).tasks
    resumed = _check(task, "resumed mid-run (the returned state passed back in) (cpu, float64)")
    assert resumed.status == "failed"
    assert "cannot be saved and passed back in: keep only arrays and numbers in state" in resumed.message
    assert _check(task, "from a fresh state (cpu, float64)").status == "passed"


def test_an_optimizer_that_returns_only_w_is_told_the_calling_convention(submission):
    folder = submission("lab2", """
        def sgd(w, dw, state, lr=0.01):
            return w - lr * dw
    """)
    (task,) = grade("lab2", folder, tasks=("sgd",)).tasks
    assert "an optimizer returns the pair (w_new, state)" in task.message


# ----------------------------------------------------------------------------- what a failure says


def test_the_message_names_the_step_the_state_entry_and_the_mistake(submission):
    folder = submission("lab2", """
        def momentum(w, dw, state, lr=0.01, mu=0.9):
            v = mu * state.get("v", np.zeros_like(w)) + dw
            return w - lr * v, state
    """)
    (task,) = grade("lab2", folder, tasks=("momentum",)).tasks
    fresh = _check(task, "from a fresh state (cpu, float64)").message
    assert fresh.startswith("w after step 2 of 2 has wrong values")  # shrunk to the first step that can differ
    assert "nothing in your state holds torch's 'momentum_buffer'" in fresh
    assert "hint: the velocity is not kept in state between steps" in fresh
    assert "expected values from torch.optim.SGD(lr=0.01, momentum=0.9) on cpu, float64" in fresh


def test_a_state_entry_that_stops_following_torch_is_named_with_its_step(submission):
    """Adam with beta1 and beta2 swapped in v only: m and the step count follow torch, v does not."""
    folder = submission("lab2", """
        def adam(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
            t = state.get("t", 0) + 1
            m = beta1 * state.get("m", np.zeros_like(w)) + (1 - beta1) * dw
            v = beta1 * state.get("v", np.zeros_like(w)) + (1 - beta1) * dw * dw
            state.update(t=t, m=m, v=v)
            return w - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta1**t)) + eps), state
    """)
    (task,) = grade("lab2", folder, tasks=("adam",)).tasks
    text = _messages(task)
    assert "'m' = torch's 'exp_avg'" in text and "'t' = torch's 'step'" in text
    assert "nothing in your state holds torch's 'exp_avg_sq'" in text or "your 'v' held torch's 'exp_avg_sq'" in text


def test_the_lecture_form_velocity_is_recognised_as_torchs_buffer_times_minus_lr():
    ws, torch_states = lab2._torch_run("momentum", lab2.call(np.zeros(3), [np.array([1.0, -2.0, 3.0])] * 3, lr=0.1),
                                       lab2.Variant())
    mine = [{"v": -0.1 * s["momentum_buffer"]} for s in torch_states]
    assert lab2._state_story(torch_states, mine, 2) == ["state after step 3 still matches torch: "
                                                       "'v' = torch's 'momentum_buffer' times -0.1"]


# ----------------------------------------------------------------------------- the properties alone


def _property_result(submission, task_name, check_part, body):
    (task,) = grade("lab2", submission("lab2", body), tasks=(task_name,)).tasks
    return _check(task, check_part)


def test_adam_bound_is_lr_at_the_first_step_and_holds_for_the_reference_over_many_runs():
    assert lab2.adam_bound(0.01, 0.9, 0.999, 1) == pytest.approx(0.01)
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(300):
        h = {k: float(rng.choice(v)) for k, v in lab2.HYPER["adam"].items()}
        w, state = rng.standard_normal(4), {}
        for t in range(1, 40):
            # gradients of one sign and growing size push the ratio m_hat / sqrt(v_hat) up
            g = rng.standard_normal(4) * 10.0 ** rng.integers(-3, 3) if t % 7 else np.full(4, 10.0 ** (t % 5))
            new, state = REFERENCE.adam(w.copy(), g, state, **h)
            worst = max(worst, float(np.abs(new - w).max() / lab2.adam_bound(h["lr"], h["beta1"], h["beta2"], t)))
            w = new
    assert worst <= 1 + 1e-9


def test_adam_bound_property_catches_the_missing_bias_correction(submission):
    result = _property_result(submission, "adam", "at most about lr", """
        def adam(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
            m = beta1 * state.get("m", np.zeros_like(w)) + (1 - beta1) * dw
            v = beta2 * state.get("v", np.zeros_like(w)) + (1 - beta2) * dw * dw
            state.update(m=m, v=v)
            return w - lr * m / (np.sqrt(v) + eps), state
    """)
    assert result.status == "failed" and "more than Adam ever moves a coordinate" in result.message
    assert "hint: no bias correction" in result.message


def test_adagrad_rate_property_catches_an_average_in_place_of_the_sum(submission):
    """RMSprop-style forgetting (h = 0.9 h + 0.1 dw**2) lets the rate grow again: the property sees it."""
    result = _property_result(submission, "adagrad", "never grows", """
        def adagrad(w, dw, state, lr=0.01, eps=1e-10):
            h = 0.9 * state.get("h", np.zeros_like(w)) + 0.1 * dw * dw
            state["h"] = h
            return w - lr * dw / (np.sqrt(h) + eps), state
    """)
    assert result.status == "failed" and "grew from" in result.message


@pytest.mark.parametrize("seed", [1022, 1030, 139, 154, 156])
def test_adagrad_reference_keeps_its_rate_property_where_a_tiny_move_of_a_large_w_rounds(seed):
    """Issue 15: these seeds drew a move of 1e-8 on |w| = 993, whose rounding made equal rates look grown."""
    result = grade_lab(labs.load("lab2"), REPO / "solutions", seed=seed, tasks=("adagrad", "adam"),
                       budget=PROFILES["default"])
    for task in result.tasks:
        assert task.status == "passed", task.message


def test_adagrad_rate_property_states_its_tolerance(submission):
    result = _property_result(submission, "adagrad", "never grows", """
        def adagrad(w, dw, state, lr=0.01, eps=1e-10):
            h = 0.9 * state.get("h", np.zeros_like(w)) + 0.1 * dw * dw
            state["h"] = h
            return w - lr * dw / (np.sqrt(h) + eps), state
    """)
    assert f"rtol={lab2.MOVE_RTOL:g}" in result.message and "ulps of |w|" in result.message


def test_sgd_zero_gradient_property_catches_weight_decay(submission):
    result = _property_result(submission, "sgd", "zero gradient leaves w unchanged (cpu, float64)", """
        def sgd(w, dw, state, lr=0.01):
            return w - lr * (dw + 1e-4 * w), state
    """)
    assert result.status == "failed" and result.message.startswith("a zero gradient moved w")


# ----------------------------------------------------------------------------- tolerances


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reference_is_well_inside_the_step_tolerance_of_torchs_foreach_kernels(name, dtype):
    """CUDA runs torch.optim's multi-tensor kernels, which round differently from the single-tensor
    ones on CPU; 30 steps with gradients from 1e-6 to 1e3 stay below half the allowance."""
    import torch

    rng = np.random.default_rng(1)
    worst = 0.0
    for trial in range(40):
        h = {**lab2.DEFAULTS[name], **({k: float(rng.choice(v)) for k, v in lab2.HYPER[name].items()} if trial % 2 else {})}
        w = rng.standard_normal(6).astype(dtype)
        grads = (rng.standard_normal((30, 6)) * 10.0 ** rng.integers(-6, 4, size=(30, 6))).astype(dtype)
        p = torch.tensor(w.copy(), requires_grad=True)
        optimizer = lab2.torch_optimizer(name, p, h, foreach=True)
        state: dict = {}
        for g in grads:
            p.grad = torch.tensor(g.copy())
            optimizer.step()
            w, state = getattr(REFERENCE, name)(w, g.copy(), state, **h)
            expected = p.detach().numpy()
            tol = lab2._tolerance(expected)
            worst = max(worst, float((np.abs(w - expected) / (tol.atol + tol.rtol * np.abs(expected))).max()))
    assert worst < 0.5


def test_every_mistake_rule_differs_from_torch_on_some_generated_run():
    """A hint can only be shown when the mistake's run differs from the expected one; a rule that
    equals torch everywhere would be dead code."""
    rng = np.random.default_rng(2)
    for task in labs.load("lab2").tasks[:len(OPTIMIZERS)]:
        for mistake in task.mistakes:
            if mistake.produces is None:
                continue
            differs = False
            for trial in range(20):
                hyper = {k: float(rng.choice(v)) for k, v in lab2.HYPER[task.name].items()} if trial % 2 else {}
                run = lab2.call(rng.standard_normal(3), list(rng.standard_normal((6, 3)) * 10.0 ** rng.integers(-4, 2)),
                                **hyper)
                expected, _ = lab2._torch_run(task.name, run, lab2.Variant())
                if not lab2._same_run(expected, lab2._mistake_run(task.name, mistake.produces, run)):
                    differs = True
                    break
            assert differs, (task.name, mistake.hint)


def test_the_graders_defaults_are_the_reference_signatures_defaults():
    """Mistake rules and oracles fill in lab2.DEFAULTS where a call leaves a hyperparameter out."""
    for name in OPTIMIZERS:
        params = inspect.signature(getattr(REFERENCE, name)).parameters
        assert {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty} == lab2.DEFAULTS[name]
