"""The CI summary: the score from the reports' numbers, nothing of the student's as Markdown or a command."""

from __future__ import annotations

import json
import re

import pytest

from grader.report.summary import GRADED_ON_SUBMISSION, block, cell, main, render

HOSTILE = ("wrong\n::error::injected\n| lab3 | 100/100 | 12/12 | 0 |\n## dlkit: your score\n"
           "<img src=x onerror=alert(1)> **bold** [link](http://x) `code` \x1b[31mred\r::warning::x")


def _report(message: str = HOSTILE, score: float = 4, status: str = "failed") -> dict:
    return {"lab": "lab3", "submission": "assignments", "score": score, "max_score": 12, "seed": 7, "status": "graded",
            "tasks": [{"name": "conv_output_size", "status": "passed", "score": 8, "max_score": 8, "message": "",
                       "checks": [{"name": "matches the reference solution", "status": "skipped",
                                   "message": GRADED_ON_SUBMISSION}]},
                      {"name": "linear_params", "status": status, "score": score - 8 if score >= 8 else 0,
                       "max_score": 4, "message": message, "checks": []}]}


def _write(tmp_path, name: str, data: object) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_a_table_cell_is_one_line_with_every_markdown_and_html_character_escaped():
    out = cell(HOSTILE)
    assert "\n" not in out and "\r" not in out and "\x1b" not in out
    assert re.search(r"(?<!\\)[|<>*\[\]`:#]", out) is None  # every special character has its backslash
    assert out.startswith("wrong")


def test_a_code_block_cannot_be_closed_from_inside_and_no_line_is_a_workflow_command():
    text = "```\n~~~\n````` closed?\n  ::error::x\n::set-output name=a::b"
    out = block(text)
    fence = out.split("\n")[0].removesuffix("text")
    assert len(fence) > 5 and out.endswith("\n" + fence)
    assert fence not in out[len(fence):-len(fence)]
    assert not any(line.lstrip().startswith("::") for line in out.split("\n"))


def markdown_outside_code(text: str) -> list[str]:
    """The lines a Markdown renderer reads as Markdown: those outside fenced code blocks."""
    lines, fence = [], None
    for line in text.splitlines():
        if fence is None and line.startswith("```"):
            fence = line[: len(line) - len(line.lstrip("`"))]
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            lines.append(line)
    return lines


def test_the_summary_shows_the_reports_score_and_nothing_the_student_wrote_as_markup(tmp_path, capsys):
    status = main([_write(tmp_path, "lab3", _report())])
    out, err = capsys.readouterr()
    markdown = markdown_outside_code(out)
    assert [line for line in markdown if line.startswith("| lab3 |")] == ["| lab3 | 4/12 | 1/2 | 7 |"]
    assert not any("100/100" in line or "<img" in line for line in markdown)
    assert [line for line in markdown if line.startswith("#")] == ["## dlkit: your score", "### lab3"]
    assert "injected" in out  # the message is shown, as text
    assert not any(line.lstrip().startswith("::") for line in (out + err).splitlines())
    assert "1 checks need the reference solutions: they are graded on submission" in out
    assert err.strip() == "lab3: 4/12 (some tasks do not pass yet)"
    assert status == 0  # a failing task is the score, not a broken run
    assert main(["--strict", _write(tmp_path, "lab3", _report())]) == 1


def test_classroom_reads_points_from_the_check_run_body_the_summary_writes(tmp_path, capsys):
    body = tmp_path / "classroom.json"
    assert main(["--classroom", str(body), _write(tmp_path, "lab3", _report())]) == 0
    output = json.loads(body.read_text())["output"]
    assert output["summary"] == output["text"] == output["annotations"][0]["message"] == "Points 4/12"


def test_every_lab_passing_exits_0(tmp_path, capsys):
    report = _report(message="", score=12, status="passed")
    assert main([_write(tmp_path, "lab3", report)]) == 0
    assert "| lab3 | 12/12 | 2/2 | 7 |" in capsys.readouterr().out


@pytest.mark.parametrize("content", ["", "not json", "[]", json.dumps({"lab": "lab3", "tasks": [{"name": "x"}]}),
                                     json.dumps(_report() | {"score": "100"}),
                                     json.dumps(_report() | {"lab": "lab3 | 100/100"})])
def test_a_missing_or_forged_report_counts_as_not_passed_and_shows_no_score(tmp_path, capsys, content):
    status = main([_write(tmp_path, "lab3", content), str(tmp_path / "absent.json")])
    out = capsys.readouterr().out
    assert status == 1
    assert "100/100" not in out and "| lab3 | 4/12" not in out
    assert "see the log" in out


def test_render_lists_every_failing_task_in_full_inside_a_fenced_block():
    out = render([("lab3", {"lab": "lab3", "score": 0.0, "max_score": 4.0, "seed": None, "tasks": [
        {"name": "linear_params", "status": "failed", "score": 0.0, "max_score": 4.0,
         "message": "line one\nline two", "checks": []}]})])
    assert "<details><summary>linear_params: failed</summary>" in out
    assert "```text\nline one\nline two\n```" in out
