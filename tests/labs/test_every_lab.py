"""Every registered lab: the reference scores full marks, the stubs nothing, every known
mistake loses points with a message naming it, and every correct alternative keeps full marks."""

from __future__ import annotations

import importlib
import inspect

import pytest

from grader import labs
from grader.run import engine
from tests.conftest import REPO, grade, mutant_submission
from tests.mutants import Mutant, collect

LABS = labs.names()


def _mutants(kind: str) -> list[tuple[str, Mutant]]:
    found = []
    for lab in LABS:
        try:
            module = importlib.import_module(f"tests.mutants.{lab}")
        except ModuleNotFoundError:
            continue
        found += [(lab, m) for m in collect(module) if (m.expect is None) == (kind == "alternative")]
    return found


MISTAKES = _mutants("mistake")
ALTERNATIVES = _mutants("alternative")


@pytest.mark.parametrize("lab", LABS)
def test_every_task_has_a_measured_cost_for_sharing_the_tasks_between_processes(lab):
    missing = [t.name for t in labs.load(lab).tasks if t.name not in engine.measured_costs(lab)]
    assert not missing, f"run: python scripts/measure_costs.py --lab {lab}  (no cost for {missing})"


@pytest.mark.parametrize("lab", LABS)
def test_reference_solution_scores_full_marks(lab):
    result = grade(lab, REPO / "solutions")
    failures = {t.name: t.message for t in result.tasks if t.status != "passed"}
    assert failures == {}
    assert result.score == result.max_score == 100


@pytest.mark.parametrize("lab", LABS)
def test_untouched_stubs_score_zero_with_every_task_not_implemented(lab):
    result = grade(lab, REPO / "assignments")
    assert result.score == 0
    assert {t.status for t in result.tasks} == {"not_implemented"}


@pytest.mark.parametrize("lab", LABS)
def test_every_task_has_a_mistake_and_the_lab_has_mutants(lab):
    spec = labs.load(lab)
    covered = {m.task for l, m in MISTAKES if l == lab}
    assert covered == {t.name for t in spec.tasks}, "each task needs realistic wrong implementations in tests/mutants"


@pytest.mark.parametrize(("lab", "mutant"), MISTAKES, ids=[f"{l}-{m.id}" for l, m in MISTAKES])
def test_known_mistake_loses_points_with_a_message_naming_it(submission, lab, mutant):
    result = grade(lab, mutant_submission(submission, lab, mutant), tasks=(mutant.task,))
    (task,) = result.tasks
    assert task.status != "passed" and task.score < task.max_score
    failed = [c for c in task.checks if c.status not in ("passed", "skipped")]
    confirmed = {m for c in failed for m in c.mistakes}
    if mutant.expect.startswith("check:"):
        assert mutant.expect.removeprefix("check:") in {c.name for c in failed}, task.message
    else:
        assert mutant.expect in confirmed, f"the feedback confirms {sorted(confirmed)}, not {mutant.expect}:\n{task.message}"
        hinted = [h.text for c in failed for h in c.parts.hints if h.id == mutant.expect]
        assert any(f"hint: {text}" in c.message for c in failed for text in hinted), "the hint is not in the message"


@pytest.mark.parametrize("lab", LABS)
def test_every_mutant_names_a_declared_mistake_and_every_declared_mistake_has_a_mutant(lab):
    spec = labs.load(lab)
    declared = {t.mistake_id(m) for t in spec.tasks for m in t.mistakes}
    named = {m.expect for l, m in MISTAKES if l == lab}
    unknown = {e for e in named if not e.startswith(("check:", "generic.")) and e not in declared}
    assert not unknown, f"mutants name mistakes the lab does not declare: {sorted(unknown)}"
    without = declared - named
    assert not without, f"declared mistakes with no mutant in tests/mutants/{lab}.py: {sorted(without)}"


@pytest.mark.parametrize("lab", LABS)
def test_every_mistake_marks_its_faulty_line_and_no_alternative_has_one(lab):
    # a reader of tests/mutants sees at once where each bug is: "# mistake: ..." on (or above) the faulty line
    def marked(m: Mutant) -> bool:
        return any(line.strip().startswith("# mistake:") or "  # mistake:" in line
                   for line in inspect.getsource(m.function).splitlines())

    unmarked = [m.id for l, m in MISTAKES if l == lab and not marked(m)]
    assert not unmarked, f"mistakes without a '# mistake:' comment on their faulty line: {unmarked}"
    marked_alternatives = [m.id for l, m in ALTERNATIVES if l == lab and marked(m)]
    assert not marked_alternatives, f"correct alternatives marked as mistakes: {marked_alternatives}"


@pytest.mark.parametrize(("lab", "mutant"), ALTERNATIVES, ids=[f"{l}-{m.id}" for l, m in ALTERNATIVES])
def test_correct_alternative_keeps_full_marks(submission, lab, mutant):
    result = grade(lab, mutant_submission(submission, lab, mutant), tasks=(mutant.task,))
    (task,) = result.tasks
    assert task.status == "passed", task.message
