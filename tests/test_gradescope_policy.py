"""Gradescope as instructors configure it (grader.gradescope_policy): visibility and late submissions."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main
from grader import labs
from grader.export.gradescope import results, run_script
from grader.export.gradescope_policy import apply_lateness, apply_visibility, lateness, parse_visibility
from tests.conftest import REPO, grade

LAB = labs.load("lab3")
TASKS = ("conv_output_size", "max_pool2d_forward")


def test_visibility_is_set_per_task_with_a_default_and_reference_checks_go_to_a_test_of_their_own():
    result = grade("lab3", REPO / "solutions", tasks=TASKS)
    data = results(result, LAB.title, 1.0)
    shown = apply_visibility(data, result, LAB, parse_visibility(
        ["default=after_due_date", "max_pool2d_forward=visible", "reference=hidden"], LAB))
    by_name = {t["name"]: t for t in shown["tests"]}
    assert by_name["conv_output_size"]["visibility"] == "after_due_date"
    assert by_name["max_pool2d_forward"]["visibility"] == "visible"
    apart = [t for t in shown["tests"] if t["name"].endswith(": reference checks")]
    assert apart and all(t["visibility"] == "hidden" and "max_score" not in t for t in apart)
    assert sum(t.get("score", 0) for t in shown["tests"]) == result.score  # the points stay on the tasks


@pytest.mark.parametrize(("spec", "words"), [("default=secret", "must be one of"), ("conv9=hidden", "a task of lab3")])
def test_a_bad_visibility_is_refused_with_what_is_allowed(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_visibility([spec], LAB)


def test_lateness_comes_from_gradescopes_metadata_and_the_policy_sets_the_score(tmp_path):
    metadata = {"created_at": "2026-03-02T13:00:00.000000-08:00",
                "assignment": {"due_date": "2026-03-01T23:59:00.000000-08:00"}}
    assert lateness(metadata) == 13 * 3600 + 60
    assert lateness({"created_at": "2026-03-01T10:00:00-08:00", "assignment": metadata["assignment"]}) == 0
    (tmp_path / "meta.json").write_text(json.dumps(metadata))
    (tmp_path / "policy.py").write_text("import math\n\ndef adjust(score, max_score, late_seconds, metadata):\n"
                                        "    return score * max(0.0, 1 - 0.1 * math.ceil(late_seconds / 86400))\n")
    data = {"score": 80.0, "output": "lab3", "tests": [{"max_score": 100}], "extra_data": {"seed": 0}}
    late = apply_lateness(data, tmp_path / "meta.json", tmp_path / "policy.py")
    assert late["score"] == pytest.approx(72.0) and late["extra_data"]["late_seconds"] == 46860
    assert "the late policy makes 80 into 72" in late["output"]
    assert apply_lateness(data, tmp_path / "absent.json", tmp_path / "policy.py") == data


def test_the_bundle_passes_visibility_metadata_and_the_policy_to_dlkit_check(tmp_path):
    script = run_script(LAB, 0, "student", ["reference=after_due_date"], late_policy=True)
    assert "--visibility reference=after_due_date" in script
    assert '--submission-metadata "$AUTOGRADER/submission_metadata.json"' in script
    assert '--late-policy "$SOURCE/late_policy.py"' in script
    refused = CliRunner().invoke(main, ["gradescope", "bundle", "lab3", str(tmp_path / "b.zip"), "--visibility", "x=y"])
    assert refused.exit_code == 2 and "--visibility" in refused.output
