"""Gradescope as instructors configure it: who sees which test when, and what happens to a late submission.

Visibility (``dlkit gradescope bundle LAB OUT --visibility KEY=VALUE``, repeatable; the bundle passes it
to ``dlkit check --format gradescope``). VALUE is one of Gradescope's ``visible``, ``after_due_date``,
``after_published``, ``hidden``. KEY is

- ``default``: every task's test (otherwise ``visible``);
- a task's name: that task's test;
- ``reference``: the checks that compare with the reference solution. Their messages leave the task's
  test and go to a test of their own per task, "TASK: reference checks", with this visibility and no
  points of its own (the task's points, theirs included, stay on the task's test).

Lateness: Gradescope writes ``/autograder/submission_metadata.json`` (``created_at``, and
``assignment.due_date`` / ``late_due_date``, ISO 8601). ``late_seconds`` is how long after the due date
the submission came (0 when on time), put in the results' ``extra_data``. With ``--late-policy FILE`` in
the bundle, FILE (a Python file of the instructor's, copied into the bundle) defines::

    def adjust(score: float, max_score: float, late_seconds: float, metadata: dict) -> float:
        days = math.ceil(late_seconds / 86400)
        return score * max(0.0, 1 - 0.1 * days)  # 10% off per day or part of a day

and the results' ``score`` becomes what it returns; the output says by how much, and why.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from grader.run.results import LabResult
from grader.declare.spec import Lab

VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")
KINDS = ("default", "reference")


def parse_visibility(specs: Sequence[str], lab: Lab) -> dict[str, str]:
    """``KEY=VALUE`` pairs, checked: ValueError with a sentence for an unknown key or value."""
    found: dict[str, str] = {}
    tasks = [t.name for t in lab.tasks]
    for spec in specs:
        key, _, value = spec.partition("=")
        if value not in VISIBILITIES:
            raise ValueError(f"'{spec}': the visibility must be one of {', '.join(VISIBILITIES)}")
        if key not in KINDS and key not in tasks:
            raise ValueError(f"'{spec}': the key must be default, reference or a task of {lab.name} "
                             f"({', '.join(tasks)})")
        found[key] = value
    return found


def apply_visibility(data: dict[str, Any], result: LabResult, lab: Lab, visibility: dict[str, str]) -> dict[str, Any]:
    """Set each test's visibility; with a ``reference`` visibility, move the reference checks' messages to a
    test of their own per task."""
    from grader.export.gradescope import MARK, task_output

    if not visibility:
        return data
    tests = []
    for test, task in zip(data["tests"], result.tasks):
        test = dict(test, visibility=visibility.get(task.name, visibility.get("default", "visible")))
        if "reference" in visibility:
            names = [c.name for c in lab.task(task.name).checks if c.needs_reference]
            mine = [c for c in task.checks if any(c.name.startswith(n) for n in names)]
            if mine:
                rest = dataclasses.replace(task, checks=tuple(c for c in task.checks if c not in mine))
                test["output"] = task_output(rest) + f"\n({len(mine)} checks against the reference solution are " \
                                                     "shown apart)"
                lines = []
                for check in mine:
                    lines.append(f"{MARK.get(check.status, '✗')} {check.name}")
                    if check.status not in ("passed", "skipped") and check.message:
                        lines += ["    " + line for line in check.message.splitlines()]
                tests.append(test)
                test = {"name": f"{task.name}: reference checks", "output": "\n".join(lines),
                        "visibility": visibility["reference"], "status": "passed" if all(
                            c.status in ("passed", "skipped") for c in mine) else "failed"}
        tests.append(test)
    return dict(data, tests=tests)


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def lateness(metadata: dict[str, Any]) -> float:
    """Seconds between the due date and the submission (0 when on time or when either is unknown)."""
    created = _when(metadata.get("created_at"))
    assignment = metadata.get("assignment")
    due = _when(assignment.get("due_date")) if isinstance(assignment, dict) else None
    if created is None or due is None or created.tzinfo is None or due.tzinfo is None:
        return 0.0
    return max(0.0, (created - due).total_seconds())


def apply_lateness(data: dict[str, Any], metadata_path: Path | None, policy: Path | None) -> dict[str, Any]:
    """Add ``late_seconds`` to the results and, with a policy file, let its ``adjust`` set the score."""
    if metadata_path is None or not metadata_path.is_file():
        return data
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return data
    if not isinstance(metadata, dict):
        return data
    late = lateness(metadata)
    data = dict(data, extra_data=dict(data.get("extra_data", {}), late_seconds=round(late)))
    if policy is None or late <= 0:
        return data
    spec = importlib.util.spec_from_file_location("dlkit_late_policy", policy)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    score = float(data["score"])
    max_score = float(sum(t.get("max_score", 0) for t in data["tests"]))
    adjusted = float(module.adjust(score, max_score, late, metadata))
    hours = late / 3600
    note = f"submitted {hours:.1f} h after the due date: the late policy makes {score:g} into {adjusted:g}"
    return dict(data, score=adjusted, output=f"{data.get('output', '')}\n{note}".strip())
