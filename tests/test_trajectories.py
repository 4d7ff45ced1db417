"""Optimizer paths on the 2-D surfaces (grader/export/trajectories.py): the surfaces themselves, torch.optim's
paths, the student's paths run in the worker, and the verdict that compares them. Drawing is in
test_plot.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tests.mutants.lab2 as lab2_mutants
from grader import labs
from grader.export import trajectories
from grader.run.engine import worker_config
from grader.sandbox.host import Sandbox
from grader.export.trajectories import SURFACES, Race
from tests.conftest import REPO, TEST_LIMITS, function_source
from tests.mutants import Mutant, collect

LAB = labs.load("lab2")
assert LAB.plot is not None
PATHS = LAB.plot
OPTIMIZERS = tuple(PATHS.optimizers)
SCHEDULES = trajectories.schedules(PATHS)
MUTANTS = [m for m in collect(lab2_mutants) if m.task in OPTIMIZERS]
ALTERNATIVES = [m for m in MUTANTS if m.expect is None]
# Mistakes a picture cannot show: the path is right, only the dtype or the caller's arrays suffer
# (float64 in gives float64 out anyway; the plot hands every call fresh arrays), eps is too
# small to matter on these surfaces, or a step count kept between runs (the first run is right).
UNSEEN = {"sgd_copies_to_float64", "momentum_float64_velocity", "momentum_aliases_gradient", "adagrad_without_eps",
          "adagrad_eps_inside_sqrt", "adam_step_count_in_default"}
SEEN = [m for m in MUTANTS if m.expect is not None and m.id not in UNSEEN]


def _races(folder: Path, optimizers: tuple[str, ...] | list[str], steps: int | None = None) -> list[Race]:
    with Sandbox(folder / "lab2", worker_config(LAB), TEST_LIMITS) as sandbox:
        sandbox.start()
        return trajectories.race(sandbox, PATHS, SURFACES, optimizers, steps)


def _with(submission, source: str) -> Path:
    return submission("lab2", source)


def _mutant(submission, mutant: Mutant) -> Path:
    return submission("lab2", function_source(mutant.function, mutant.task))


# ----------------------------------------------------------------------------- the surfaces


@pytest.mark.parametrize("where", SURFACES, ids=lambda s: s.name)
def test_surface_gradient_matches_central_differences_of_its_value(where):
    rng = np.random.default_rng(0)
    (x0, x1), (y0, y1) = where.window
    for w in rng.uniform((x0, y0), (x1, y1), size=(20, 2)):
        h = 1e-6
        numeric = [(where.value(w + h * e) - where.value(w - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(where.gradient(w), numeric, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("where", SURFACES, ids=lambda s: s.name)
def test_surface_minimum_is_a_stationary_point_and_the_start_lies_in_the_window(where):
    np.testing.assert_allclose(where.gradient(np.array(where.minimum)), [0.0, 0.0], atol=1e-12)
    (x0, x1), (y0, y1) = where.window
    assert x0 < where.start[0] < x1 and y0 < where.start[1] < y1
    assert set(where.hyper) == set(OPTIMIZERS)


@pytest.mark.parametrize("where", SURFACES, ids=lambda s: s.name)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_torch_path_makes_progress_and_stays_in_the_picture(where, name):
    """The tuning: every reference path takes all its steps and ends below where it started."""
    path = trajectories.reference_path(PATHS, where, name)
    assert path.steps == where.steps and not path.stopped
    assert where.value(path.points[-1]) < where.value(path.points[0]) / 3
    (x0, x1), (y0, y1) = where.window
    assert np.all((x0 <= path.points[:, 0]) & (path.points[:, 0] <= x1)), path.points[:, 0].min()
    assert np.all((y0 <= path.points[:, 1]) & (path.points[:, 1] <= y1)), path.points[:, 1].max()


def test_torch_path_follows_the_update_rule_step_by_step():
    """SGD on the quadratic, by hand: w_{t+1} = w_t - lr * grad(w_t)."""
    where = trajectories.QUADRATIC
    path = trajectories.reference_path(PATHS, where, "sgd")
    w = np.array(where.start)
    for expected in path.points[1:6]:
        w = w - where.hyper["sgd"]["lr"] * where.gradient(w)
        np.testing.assert_allclose(expected, w, rtol=1e-15)


# ----------------------------------------------------------------------------- the student's paths


def test_reference_solutions_stay_on_torch_path_at_every_step_of_every_race():
    races = _races(REPO / "solutions", OPTIMIZERS)
    assert len(races) == len(SURFACES) * len(OPTIMIZERS)
    for race in races:
        assert race.yours.steps == race.surface.steps, race.verdict()
        assert race.departs is None and race.gap < 1e-12, (race.optimizer, race.surface.name, race.verdict())
        assert race.verdict().startswith("on torch.optim's path at every step")


@pytest.mark.parametrize("mutant", ALTERNATIVES, ids=lambda m: m.id)
def test_correct_alternative_stays_on_torch_path_on_both_surfaces(submission, mutant):
    """Round-off must not grow into a visible gap: the surfaces are tuned so that it does not."""
    for race in _races(_mutant(submission, mutant), [mutant.task]):
        assert race.departs is None and not race.yours.stopped, (race.surface.name, race.verdict())


@pytest.mark.parametrize("mutant", SEEN, ids=lambda m: m.id)
def test_known_mistake_leaves_torch_path_or_stops_on_the_quadratic(submission, mutant):
    (quadratic, _) = _races(_mutant(submission, mutant), [mutant.task])
    assert quadratic.departs is not None or quadratic.yours.stopped, quadratic.verdict()


@pytest.mark.parametrize(("mutant_id", "step"), [
    ("momentum_lecture_form_wrong_sign", 1),
    ("nesterov_as_plain_momentum", 1),
    ("adagrad_not_accumulating", 2),  # the first step is right: h = dw**2 either way
    ("adam_no_bias_correction", 1),
    ("adam_betas_swapped", 2),
    ("rmsprop_alpha_swapped", 1),
])
def test_verdict_names_the_step_where_a_mistake_leaves_torch_path(submission, mutant_id, step):
    (mutant,) = [m for m in MUTANTS if m.id == mutant_id]
    quadratic, rosenbrock = _races(_mutant(submission, mutant), [mutant.task])
    for race in (quadratic, rosenbrock):
        assert race.departs == step
        assert f"leaves torch.optim's path at step {step}: yours (" in race.verdict()
        assert not np.allclose(race.yours.points[step], race.reference.points[step])
        np.testing.assert_allclose(race.yours.points[:step], race.reference.points[:step], rtol=1e-12)


def test_step_count_incremented_after_use_divides_by_zero_and_the_path_stops_at_step_1(submission):
    (mutant,) = [m for m in MUTANTS if m.id == "adam_step_incremented_after_use"]
    for race in _races(_mutant(submission, mutant), ["adam"]):
        assert race.yours.steps == 0 and race.yours.brief == "diverged at step 1"
        assert "diverged: w = (nan" in race.yours.stopped or "inf" in race.yours.stopped


def test_student_path_is_the_student_loop_own_points(submission):
    """The path is what the student's code returned, step after step: a mistake run here in-process,
    on the same gradients at its own points, gives the very same points."""
    (mutant,) = [m for m in MUTANTS if m.id == "momentum_dampened"]
    quadratic, _ = _races(_mutant(submission, mutant), ["momentum"])
    where, state = quadratic.surface, {}
    w = np.array(where.start)
    for expected in quadratic.yours.points[1:]:
        w, state = mutant.function(w.copy(), where.gradient(w), state, **where.hyper["momentum"])
        np.testing.assert_allclose(expected, w, rtol=1e-15)


def test_module_level_step_count_leaves_torch_path_on_the_second_surface(submission):
    """A global counter survives from one race to the next, as it would from one training run to the next."""
    folder = _with(submission, """
        _T = [0]

        def adam(w, dw, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
            _T[0] += 1
            m = beta1 * state.get("m", np.zeros_like(w)) + (1 - beta1) * dw
            v = beta2 * state.get("v", np.zeros_like(w)) + (1 - beta2) * dw * dw
            state["m"], state["v"] = m, v
            return w - lr * (m / (1 - beta1 ** _T[0])) / (np.sqrt(v / (1 - beta2 ** _T[0])) + eps), state
    """)
    quadratic, rosenbrock = _races(folder, ["adam"])
    assert quadratic.departs is None
    assert rosenbrock.departs == 1


# ----------------------------------------------------------------------------- paths that stop


def test_stubs_take_no_step_and_say_not_implemented():
    races = _races(REPO / "assignments", OPTIMIZERS, steps=3)
    assert {(r.yours.steps, r.yours.brief, r.verdict()) for r in races} == {(0, "not implemented yet", "not implemented yet")}
    assert all(r.reference.steps == 3 for r in races)


def test_exception_mid_path_stops_it_there_with_the_student_line(submission):
    folder = _with(submission, """
        def sgd(w, dw, state, lr=0.01):
            state["t"] = state.get("t", 0) + 1
            if state["t"] == 4:
                raise ValueError("boom at four")
            return w - lr * dw, state
    """)
    quadratic, _ = _races(folder, ["sgd"], steps=10)
    assert quadratic.yours.steps == 3 and quadratic.yours.brief == "raised ValueError at step 4"
    assert "ValueError: boom at four" in quadratic.yours.stopped and "optimizers.py, line" in quadratic.yours.stopped
    assert quadratic.departs is None and "stopped after step 3" in quadratic.verdict()


def test_gradient_ascent_diverges_and_the_path_stops_before_the_blow_up(submission):
    folder = _with(submission, """
        def sgd(w, dw, state, lr=0.01):
            return w + lr * dw, state
    """)
    for race in _races(folder, ["sgd"]):
        assert race.yours.brief.startswith("diverged at step")
        assert np.all(np.isfinite(race.yours.points)) and np.all(np.abs(race.yours.points) < trajectories.ESCAPE)
        assert race.departs == 1


@pytest.mark.parametrize(("body", "said"), [
    ("return w - lr * dw", "an optimizer returns the pair (w_new, state)"),
    ("return (w - lr * dw).tolist(), state", "returned list as w_new"),
    ("return w - lr * dw, [1, 2]", "the second item must be the state dict"),
    ("return (w - lr * dw)[:1], state", "shape (1,)"),
    ("return w - lr * dw, {**state, 'f': lambda: 0}", "cannot be passed back in"),
])
def test_malformed_result_stops_the_path_with_what_was_wrong(submission, body, said):
    folder = _with(submission, f"""
        def sgd(w, dw, state, lr=0.01):
            {body}
    """)
    quadratic, _ = _races(folder, ["sgd"], steps=3)
    assert quadratic.yours.steps == 0 and quadratic.yours.brief == "bad result at step 1"
    assert said in quadratic.yours.stopped


def test_infinite_loop_costs_its_call_limit_and_the_other_optimizers_still_run(submission):
    folder = _with(submission, """
        def adagrad(w, dw, state, lr=0.01, eps=1e-10):
            while True:
                pass
    """)
    races = _races(folder, ["adagrad", "sgd"], steps=5)
    assert [r.yours.brief for r in races if r.optimizer == "adagrad"] == ["timed out at step 1"] * 2
    assert all(r.yours.steps == 5 and r.departs is None for r in races if r.optimizer == "sgd")


def test_steps_override_sets_every_surface_and_the_report_says_so():
    races = _races(REPO / "solutions", ["sgd"], steps=7)
    assert [(r.surface.steps, r.yours.steps, r.reference.steps) for r in races] == [(7, 7, 7)] * 2
    text = trajectories.report(races, "solutions/lab2/optimizers.py")
    assert "7 steps from (-7, 2)" in text and "7 steps from (-1.5, 2)" in text
    assert text.count("on torch.optim's path at every step") == 2


def test_a_slow_optimizer_is_cut_short_after_the_path_time_limit(submission, monkeypatch):
    monkeypatch.setattr(trajectories, "PATH_SECONDS", 0.3)
    folder = _with(submission, """
        import time

        def sgd(w, dw, state, lr=0.01):
            time.sleep(0.05)
            return w - lr * dw, state
    """)
    quadratic, _ = _races(folder, ["sgd"], steps=40)
    assert 3 <= quadratic.yours.steps < 40
    assert quadratic.yours.brief == f"too slow: stopped at step {quadratic.yours.steps + 1}"
    assert "ms a step" in quadratic.yours.stopped and quadratic.departs is None


# ----------------------------------------------------------------------------- learning-rate schedules

SCHEDULE_MUTANTS = [m for m in collect(lab2_mutants) if m.task in {s.name for s in SCHEDULES}]


def _curves(folder: Path) -> list[trajectories.Curve]:
    with Sandbox(folder / "lab2", worker_config(LAB), TEST_LIMITS) as sandbox:
        sandbox.start()
        return trajectories.curves(sandbox, PATHS)


def test_step_lr_reference_is_lr0_times_gamma_to_the_floor_of_t_over_step_size():
    (step,) = [s for s in SCHEDULES if s.name == "step_decay"]
    assert [step.expected(t) for t in range(trajectories.SCHEDULE_STEPS)] == \
        [0.1 * 0.5 ** (t // 10) for t in range(trajectories.SCHEDULE_STEPS)]


def test_reference_schedules_match_at_every_t_and_stubs_are_not_implemented():
    for curve in _curves(REPO / "solutions"):
        assert len(curve.yours) == trajectories.SCHEDULE_STEPS and curve.departs is None, curve.verdict()
        assert curve.verdict() == f"matches {curve.schedule.source} at every t"
    assert {(len(c.yours), c.brief) for c in _curves(REPO / "assignments")} == {(0, "not implemented yet")}


@pytest.mark.parametrize(("mutant_id", "t"), [
    ("exponential_decay_growing", 1),
    ("exponential_decay_k_as_base", 1),
    ("exponential_decay_counts_from_one", 0),
    ("inverse_time_decay_precedence", 1),
    ("inverse_time_decay_counts_from_one", 0),
    ("inverse_time_decay_compounded", 2),  # (1 + k)**t agrees with 1 + k*t at t = 0 and 1
    ("step_decay_rounds", 6),  # round(5/10) is 0 (half to even), round(6/10) is 1
    ("step_decay_without_floor", 1),
    ("step_decay_drops_early", 9),  # the first drop one step before step_size
])
def test_schedule_mistake_differs_from_the_first_t_where_it_should(submission, mutant_id, t):
    (mutant,) = [m for m in SCHEDULE_MUTANTS if m.id == mutant_id]
    (curve,) = [c for c in _curves(_mutant(submission, mutant)) if c.schedule.name == mutant.task]
    assert curve.departs == t
    assert f"from t = {t}: yours " in curve.verdict()
    assert len(curve.yours) == trajectories.SCHEDULE_STEPS and not curve.stopped


@pytest.mark.parametrize("mutant", [m for m in SCHEDULE_MUTANTS if m.expect is None], ids=lambda m: m.id)
def test_correct_schedule_alternative_matches_at_every_t(submission, mutant):
    (curve,) = [c for c in _curves(_mutant(submission, mutant)) if c.schedule.name == mutant.task]
    assert curve.departs is None and not curve.stopped, curve.verdict()


@pytest.mark.parametrize(("body", "brief", "said"), [
    ("return None", "bad result at t = 0", "returned None; a schedule returns a finite float"),
    ("return float('nan') if t == 3 else lr0", "bad result at t = 3", "returned nan"),
    ("return lr0 / t", "raised ZeroDivisionError at t = 0", "ZeroDivisionError"),
])
def test_schedule_that_does_not_return_a_number_stops_there(submission, body, brief, said):
    folder = _with(submission, f"""
        def exponential_decay(lr0, k, t):
            {body}
    """)
    (curve, *_) = _curves(folder)
    assert curve.brief == brief and said in curve.stopped
