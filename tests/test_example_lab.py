"""The example lab of docs/ENGINE.md ("Declaring a lab"), graded like a real one: the reference scores full
marks, the stub scores 0, each declared mistake loses points with its hint, and a correct alternative passes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from grader.export.stubs import stub_source
from grader.run.engine import PROFILES, grade_lab
from tests.example_lab.lab0 import LAB

SOLUTIONS = Path(__file__).parent / "example_lab" / "solutions"
REFERENCE = (SOLUTIONS / LAB.path).read_text(encoding="utf-8")


def _grade(tmp_path: Path, source: str) -> dict[str, object]:
    (tmp_path / LAB.name).mkdir()
    (tmp_path / LAB.path).write_text(source, encoding="utf-8")
    result = grade_lab(LAB, tmp_path, seed=0, solutions=SOLUTIONS, budget=PROFILES["ci"])
    return {t.name: t for t in result.tasks} | {"score": result.score}


def _with(function: str) -> str:
    """The reference module with one function replaced (the later definition wins)."""
    return REFERENCE + "\n\n" + textwrap.dedent(function)


def test_the_reference_scores_full_marks(tmp_path):
    assert _grade(tmp_path, REFERENCE)["score"] == LAB.max_score == 5


def test_the_stub_scores_zero_with_every_task_not_implemented(tmp_path):
    graded = _grade(tmp_path, stub_source(REFERENCE, LAB))
    assert graded["score"] == 0
    assert {graded[t.name].status for t in LAB.tasks} == {"not_implemented"}


@pytest.mark.parametrize("task, wrong, mistake, hint", [
    ("dot", "def dot(a, b):\n    return a * b\n", "dot.not_summed", "multiplied but not summed"),
    ("normalize", "def normalize(x):\n    return x / (x * x).sum()\n", "normalize.squared_length", "squared length"),
])
def test_a_declared_mistake_loses_points_with_its_hint_confirmed_by_id(tmp_path, task, wrong, mistake, hint):
    graded = _grade(tmp_path, _with(wrong))
    result = graded[task]
    assert result.score == 0 and graded["score"] < LAB.max_score
    assert hint in "\n".join(c.message for c in result.checks)
    assert mistake in {m for c in result.checks for m in c.mistakes}


def test_a_normalize_that_loses_the_dtype_is_told_so_by_the_generic_comparison(tmp_path):
    graded = _grade(tmp_path, _with("def normalize(x):\n    return (x / (x * x).sum() ** 0.5).astype(float)\n"))
    result = graded["normalize"]
    assert 0 < result.score < 3
    assert "float32 in must give float32 out" in "\n".join(c.message for c in result.checks)


def test_a_correct_alternative_keeps_full_marks(tmp_path):
    graded = _grade(tmp_path, _with("""
        import math

        def dot(a, b):
            return math.fsum(float(p) * float(q) for p, q in zip(a, b))

        def normalize(x):
            return x / np.linalg.norm(x)
    """))
    assert graded["score"] == LAB.max_score
