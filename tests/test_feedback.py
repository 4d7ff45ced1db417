"""The feedback a student reads: hints only when confirmed, the failure's parts as data, what the code printed,
what was expected when it raised, and a problem with the whole module said once."""

from __future__ import annotations

import json

from grader.report.render import print_text
from grader.run.results import SEE_ABOVE, LabResult
from tests.conftest import grade

LAB = "lab3"


def _render(result: LabResult) -> str:
    import io

    out = io.StringIO()
    print_text(result, "test", out, color=False)
    return out.getvalue()


def test_a_confirmed_mistake_is_a_hint_with_its_id_in_the_json(submission):
    folder = submission(LAB, """
        def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
            return round((n + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1
    """)
    (task,) = grade(LAB, folder, tasks=("conv_output_size",)).tasks
    data = json.loads(json.dumps(task.to_json()))
    failed = [c for c in data["checks"] if c["status"] == "failed"]
    assert failed and {"input", "expected", "received", "max_abs_error", "hint", "possible_causes"} <= set(failed[0])
    ids = {h["id"] for c in failed for h in c["hint"]}
    assert "conv_output_size.matches_round_instead_floor" in ids
    assert all(c["possible_causes"] == [] for c in failed if c["hint"])
    assert failed[0]["input"].startswith("conv_output_size(")


def test_the_students_printed_output_and_the_expected_value_are_shown_when_the_code_raises(submission):
    folder = submission(LAB, """
        def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
            print("debug: n =", n)
            raise RuntimeError("not finished")
    """)
    (task,) = grade(LAB, folder, tasks=("conv_output_size",)).tasks
    check = next(c for c in task.checks if c.status == "error")
    assert "your code printed" in check.message and "| debug: n =" in check.message
    assert "\n  expected: " in check.message
    assert check.to_json()["expected"] is not None and check.to_json()["received"] is None


def test_a_banned_import_at_the_top_is_reported_once(submission):
    folder = submission(LAB, "import torch\n")
    result = grade(LAB, folder, tasks=("conv_output_size", "pool_output_size", "same_padding"))
    assert "torch" in result.error and result.to_json()["error"] == result.error
    assert all(t.message.endswith(SEE_ABOVE) for t in result.tasks)
    text = _render(result)
    assert text.count("banned in this lab") == 1
