"""The same code and seed draw the same inputs, however the grader was started.

Nothing about the launcher (a worker started per sandbox or forked from a zygote), the number of
grading processes, the modules the grading process happens to have imported (``dlkit check`` and
``dlkit grade`` import different ones; the reference solutions are there or not) or the time things
take may change what Hypothesis draws. The engine's own record of the calls it makes is compared,
check by check, and so are the results of a partly correct submission.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from grader import labs

from grader.run import engine
from grader.declare.context import Context
from grader import REPO
from grader.run.engine import grade_lab
from grader.sandbox.host import ZygoteLauncher
from tests.conftest import SEED, budget

LAB = "lab3"
# A partly correct submission: wrong enough that several checks fail and shrink, right elsewhere.
PARTLY = '''

def conv2d_backward(dout, x, w, stride=1, padding=0):
    dx, dw, db = _reference_backward(dout, x, w, stride, padding)
    return dx, dw, dout.mean(axis=(0, 2, 3))  # db averaged instead of summed


def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    return _reference_max_pool(x, kernel_size, 1 if stride is None else stride, padding)


def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1  # never raises
'''


def partly_correct(folder: Path) -> Path:
    module = folder / LAB / "conv.py"
    module.parent.mkdir(parents=True)
    reference = (REPO / "solutions" / LAB / "conv.py").read_text()
    module.write_text(reference + "\n\n_reference_backward = conv2d_backward\n_reference_max_pool = max_pool2d_forward\n"
                      + PARTLY)
    return folder


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    """Grade with every student call the engine makes written to a file (forked grading processes too)."""
    def run(name: str, **options: Any) -> tuple[dict[str, list[str]], dict[str, Any]]:
        log = tmp_path / f"{name}.calls"
        original = Context.student
        running = {"check": ""}  # the check being run (in each forked grading process, its own copy)

        def student(self: Context, call: Any, function: str | None = None, grad: Any = None) -> Any:
            with open(log, "a") as f:
                f.write(json.dumps([self.task.name, running["check"], self.variant.label,
                                    self.describe(call, function)]) + "\n")
            return original(self, call, function, grad)

        def run_check(check: Any, ctx: Context, seed: int, budget: Any) -> Any:
            running["check"] = check.name
            return original_run(check, ctx, seed, budget)

        original_run = engine.run_check
        engine._DRAWN.clear()  # each run draws with Hypothesis (none replays another's inputs)
        monkeypatch.setattr(Context, "student", student)
        monkeypatch.setattr(engine, "run_check", run_check)
        result = grade_lab(labs.load(LAB), partly_correct(tmp_path / name), seed=SEED, budget=budget(), **options)
        monkeypatch.setattr(Context, "student", original)
        monkeypatch.setattr(engine, "run_check", original_run)
        calls: dict[str, list[str]] = {}
        for line in log.read_text().splitlines():
            task, check, variant, described = json.loads(line)
            calls.setdefault(f"{task}: {check} ({variant})", []).append(described)
        return calls, {t.name: t.to_json() for t in result.tasks}
    return run


def _local_constants_module(folder: Path) -> None:
    """Import a module of many constants from outside site-packages: a local module, whose literals
    Hypothesis used to mix into what it draws."""
    path = folder / "constants_of_another_launcher.py"
    path.write_text("VALUES = [" + ", ".join(str(v) for v in (*range(3, 300, 7), 0.375, 1e-3, 2.5e4)) + "]\n")
    spec = importlib.util.spec_from_file_location("constants_of_another_launcher", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


def test_the_inputs_and_the_results_do_not_depend_on_jobs_launcher_or_imported_modules(recorded, tmp_path):
    calls, results = recorded("one process")
    assert sum(map(len, calls.values())) > 100 and any(t["status"] == "failed" for t in results.values())
    forked = recorded("two processes", jobs=2)
    launcher = ZygoteLauncher("numpy")
    try:
        zygote = recorded("forked from a zygote", launcher=launcher)
        zygote_forked = recorded("forked from a zygote, two processes", launcher=launcher, jobs=2)
    finally:
        launcher.close()
    ahead_calls, ahead_results = recorded("drawn ahead", jobs=2, ahead=True)
    _local_constants_module(tmp_path)
    imported = recorded("other modules imported")
    for name, (other_calls, other_results) in {"jobs=2": forked, "zygote": zygote, "zygote, jobs=2": zygote_forked,
                                               "imports": imported}.items():
        assert other_calls == calls, name
        assert other_results == results, name
    # inputs drawn ahead are replayed up to the first that fails, then Hypothesis draws them all again: more
    # calls, the same report
    assert ahead_results == results and set(ahead_calls) == set(calls)


def test_without_the_reference_the_checks_that_run_draw_the_same_inputs_and_say_the_same(recorded):
    calls, results = recorded("official")
    local_calls, local_results = recorded("local", solutions=None)
    reference_checks = {c.name for t in labs.load(LAB).tasks for c in t.checks if c.needs_reference}
    assert reference_checks
    for task, local in local_results.items():
        official = {c["name"]: c for c in results[task]["checks"]}
        for check in local["checks"]:
            if check["status"] != "skipped":
                assert check == official[check["name"]], (task, check["name"])
    # the checks that ran in both made the same calls, in the same order; the others need the reference
    assert {key for key in calls if key not in local_calls} == {
        key for key in calls if any(f": {name} (" in key for name in reference_checks)}
    assert all(local_calls[key] == calls[key] for key in local_calls)


def test_a_submission_graded_on_inputs_replayed_from_an_earlier_one_gets_the_same_report(tmp_path, monkeypatch):
    """A check that passed on a seed's inputs for one submission replays them for the next (no Hypothesis
    engine); where the next fails, Hypothesis runs the check as before. The reports are those of a cold run."""
    lab = labs.load(LAB)
    engine._DRAWN.clear()
    cold = grade_lab(lab, partly_correct(tmp_path / "cold"), seed=SEED, budget=budget()).to_json()
    reference = tmp_path / "reference"
    (reference / LAB).mkdir(parents=True)
    (reference / LAB / "conv.py").write_text((REPO / "solutions" / LAB / "conv.py").read_text())
    engine._DRAWN.clear()
    grade_lab(lab, reference, seed=SEED, budget=budget())
    outcomes: list[bool] = []
    original = engine._replay

    def replay(*args: Any) -> bool:
        outcomes.append(original(*args))
        return outcomes[-1]

    monkeypatch.setattr(engine, "_replay", replay)
    warm = grade_lab(lab, partly_correct(tmp_path / "warm"), seed=SEED, budget=budget()).to_json()
    assert True in outcomes and False in outcomes  # some checks replayed through, some fell back to Hypothesis
    for report in (cold, warm):
        report.pop("submission")
    assert warm == cold


@pytest.mark.parametrize("name", ["lab1", "lab2"])
def test_inputs_drawn_ahead_in_a_process_of_their_own_are_replayed_and_change_no_report(name, tmp_path, monkeypatch):
    """``dlkit check`` draws the inputs in a forked process while it imports PyTorch (``draw_ahead``): the checks
    replay them, where one fails Hypothesis runs it as before, and a strategy that needs PyTorch (lab 1 draws
    a sigmoid's output through it) is left to Hypothesis. The reports are those of a run without it."""
    lab = labs.load(name)
    mutant = tmp_path / "mutant"
    (mutant / name).mkdir(parents=True)
    (mutant / lab.path).write_text(_a_mutant(name))
    outcomes: list[bool] = []
    original = engine._replay

    def replay(*args: Any) -> bool:
        outcomes.append(original(*args))
        return outcomes[-1]

    reports, replays = {}, {}
    monkeypatch.setattr(engine, "_replay", replay)
    for ahead in (False, True):
        outcomes.clear()
        for folder in (REPO / "solutions", mutant):
            engine._DRAWN.clear()
            reports[ahead, folder] = grade_lab(lab, folder, seed=SEED, budget=budget(), ahead=ahead).to_json()
        replays[ahead] = outcomes.count(True), outcomes.count(False)
    assert replays[True][0] > replays[False][0] + 20  # the drawn checks replayed...
    assert replays[True][1] > 0  # ...and the mutant's failures fell back to Hypothesis
    for folder in (REPO / "solutions", mutant):
        assert reports[True, folder] == reports[False, folder]
    assert reports[True, mutant]["score"] < reports[True, REPO / "solutions"]["score"]


def _a_mutant(name: str) -> str:
    """The reference module of a lab with one mistake from ``tests/mutants``, applied to its source."""
    source = (REPO / "solutions" / labs.load(name).path).read_text()
    wrong = {"lab1": ("e = np.exp(-np.abs(x))", "e = np.exp(-np.abs(x) * 1.01)"),  # every sigmoid a little off
             "lab2": ('"exp_avg", w) + (1 - beta1) * dw', '"exp_avg", w) + dw')}[name]  # Adam's m without (1 - beta1)
    assert wrong[0] in source
    return source.replace(wrong[0], wrong[1])


def _best_split(costs: list[float]) -> float:
    """The smallest possible load of the heavier of two groups (every split tried)."""
    total = sum(costs)
    return min(max(s := sum(c for i, c in enumerate(costs) if mask >> i & 1), total - s)
               for mask in range(1 << (len(costs) - 1)))


@pytest.mark.parametrize("name", labs.names())
def test_two_grading_processes_get_tasks_of_nearly_equal_measured_cost(name):
    lab = labs.load(name)
    costs = engine.measured_costs(name)
    groups = engine._share(lab, list(lab.tasks), 2, budget())
    assert sorted(t.name for g in groups for t in g) == sorted(t.name for t in lab.tasks)
    heavier = max(sum(costs[t.name] for t in g) for g in groups)
    assert heavier <= 1.02 * _best_split([costs[t.name] for t in lab.tasks])
    assert engine._share(lab, list(lab.tasks), 2, budget()) == groups  # the same split every time


def test_without_a_measured_cost_for_every_task_the_share_counts_examples(monkeypatch):
    lab = labs.load("lab1")
    measured = dict(engine.measured_costs("lab1"))
    measured.pop("train_xor")  # a task added since the table was measured
    monkeypatch.setattr(engine, "measured_costs", lambda name: measured)
    groups = engine._share(lab, list(lab.tasks), 2, budget())
    # train_xor's four fixed calls count as 4 examples: the cheapest task, whatever its seconds
    examples = {t.name: sum(len(c.variants) * (budget().examples(c.max_examples) if c.cases is not None else 1)
                            for c in t.checks) for t in lab.tasks}
    assert min(examples, key=examples.__getitem__) == "train_xor"
    loads = [sum(examples[t.name] for t in g) for g in groups]
    assert abs(loads[0] - loads[1]) <= min(examples.values())
