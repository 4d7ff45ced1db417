"""The score of a CI run in Markdown, from the reports of ``dlkit check --format json``.

    python -m grader.report.summary dlkit-reports/lab3.json ... >> "$GITHUB_STEP_SUMMARY"

The student release's workflow publishes this as the job summary. Failure messages
quote the student's code (its exceptions, its values), so nothing of theirs reaches
the page as Markdown, HTML or a workflow command: a table cell gets one line with every
ASCII punctuation character backslash-escaped, a full message goes in a code fence longer
than any run of backticks in it, control characters are dropped and no line starts with
``::``. Scores come from the reports' numbers only. One line per lab goes to standard error,
for the log.

The exit status is 0 when every report could be read, whatever its tasks did (the score is the
output: a CI job stays green while tasks still fail, so its caches are saved), and 1 when a report
is missing or unreadable (grading itself broke). ``--strict`` also fails while any task fails.
``--classroom FILE`` also writes what GitHub Classroom reads as the points of the run ("Points
X/Y" in the output of the check run named "Autograding Tests", as Classroom's own reporter action
writes it): the JSON body of that check run's update, for ``gh api --method PATCH --input FILE``.
"""

from __future__ import annotations

import json
import re
import string
import sys
from pathlib import Path
from typing import Any, Sequence

from grader.run.results import STATUSES
from grader.report.render import as_points

GRADED_ON_SUBMISSION = "needs the reference solutions (graded on submission)"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_COMMAND = re.compile(r"^(\s*)::")  # a workflow command, were the line ever printed to a runner's log


class BadReport(Exception):
    """A report that is not what ``dlkit check --format json`` writes."""


def cell(text: str, limit: int = 160) -> str:
    """One line of untrusted text, safe in a Markdown table cell: first line only, shortened,
    control characters dropped, every ASCII punctuation character escaped (``|`` included)."""
    first = _CONTROL.sub("", text.strip().split("\n")[0].replace("\r", " ").replace("\t", " "))
    if len(first) > limit or "\n" in text.strip():
        first = first[:limit].rstrip() + " ..."
    return _PUNCTUATION.sub(r"\\\1", first)


def block(text: str, limit: int = 4000) -> str:
    """Untrusted multi-line text as a fenced code block it cannot close, with no line that a
    runner could take for a workflow command."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    "))
    if len(text) > limit:
        text = text[:limit] + "\n..."
    lines = [_COMMAND.sub(r"\1: :", line) for line in text.split("\n")]
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([fence + "text", *lines, fence])


def _number(value: Any) -> float:
    if type(value) not in (int, float):
        raise BadReport(f"not a number: {value!r}")
    return float(value)


def _name(value: Any) -> str:
    if type(value) is not str or not _NAME.match(value):
        raise BadReport(f"not a name: {value!r}")
    return value



def read_report(path: Path) -> dict[str, Any]:
    """A report, validated: the keys and types of GRADER.md's JSON contract."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise BadReport(f"no report ({type(error).__name__})") from None
    if type(data) is not dict or type(data.get("tasks")) is not list:
        raise BadReport("not a dlkit report")
    tasks = []
    for task in data["tasks"]:
        if type(task) is not dict or task.get("status") not in STATUSES or type(task.get("checks", [])) is not list:
            raise BadReport("not a dlkit report")
        checks = [c for c in task.get("checks", []) if type(c) is dict]
        tasks.append({"name": _name(task.get("name")), "status": task["status"], "score": _number(task.get("score")),
                      "max_score": _number(task.get("max_score")), "message": str(task.get("message", "")),
                      "checks": [{"status": str(c.get("status")), "message": str(c.get("message", ""))} for c in checks]})
    seed = data.get("seed")
    return {"lab": _name(data.get("lab")), "score": _number(data.get("score")), "max_score": _number(data.get("max_score")),
            "seed": int(_number(seed)) if seed is not None else None, "tasks": tasks}


def passed(report: dict[str, Any]) -> bool:
    return all(t["status"] in ("passed", "skipped") for t in report["tasks"])


def render(reports: Sequence[tuple[str, dict[str, Any] | BadReport]]) -> str:
    """The Markdown summary: one row per lab, then each lab's tasks and its failures in full."""
    out = ["## dlkit: your score", "", "| lab | score | tasks passed | seed |", "|---|---:|---:|---:|"]
    for name, report in reports:
        if isinstance(report, BadReport):
            out.append(f"| {cell(name)} | {cell(str(report))}; see the log of the step 'Run the checks' | | |")
            continue
        done = sum(t["status"] == "passed" for t in report["tasks"])
        out.append(f"| {report['lab']} | {as_points(report['score'])}/{as_points(report['max_score'])} | "
                   f"{done}/{len(report['tasks'])} | {report['seed'] if report['seed'] is not None else ''} |")
    for _, report in reports:
        if isinstance(report, BadReport):
            continue
        out += ["", f"### {report['lab']}", "", "| task | status | points | first problem |", "|---|---|---:|---|"]
        for task in report["tasks"]:
            problem = {"passed": "", "not_implemented": "not implemented yet"}.get(task["status"], cell(task["message"]))
            out.append(f"| {task['name']} | {task['status']} | {as_points(task['score'])}/{as_points(task['max_score'])} | {problem} |")
        later = sum(c["status"] == "skipped" and c["message"] == GRADED_ON_SUBMISSION
                    for t in report["tasks"] for c in t["checks"])
        if later:
            out += ["", f"{later} checks need the reference solutions: they are graded on submission "
                        "(skipped here, they cost nothing)."]
        if report["seed"] is not None:
            out += ["", f"Reproduce: `dlkit check {report['lab']} --seed {report['seed']}`"]
        for task in report["tasks"]:
            if task["status"] not in ("passed", "skipped", "not_implemented") and task["message"]:
                out += ["", f"<details><summary>{task['name']}: {task['status']}</summary>", "", block(task["message"]),
                        "", "</details>"]
    return "\n".join(out) + "\n"


def classroom_body(reports: Sequence[tuple[str, dict[str, Any] | BadReport]]) -> dict[str, Any]:
    """The check-run update that GitHub Classroom reads its points from ("Points X/Y"): a report that could not
    be read counts 0 of nothing."""
    read = [r for _, r in reports if not isinstance(r, BadReport)]
    points = f"Points {as_points(sum(r['score'] for r in read))}/{as_points(sum(r['max_score'] for r in read))}"
    return {"output": {"title": "Autograding", "summary": points, "text": points,
                       "annotations": [{"path": ".github", "start_line": 1, "end_line": 1, "annotation_level": "notice",
                                        "message": points, "title": "Autograding complete"}]}}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    strict = "--strict" in args
    args = [a for a in args if a != "--strict"]
    classroom = None
    if "--classroom" in args:
        at = args.index("--classroom")
        if at + 1 >= len(args):
            print("--classroom needs a file name", file=sys.stderr)
            return 2
        classroom = Path(args[at + 1])
        del args[at:at + 2]
    paths = [Path(a) for a in args]
    if not paths:
        print("usage: python -m grader.report.summary [--strict] [--classroom BODY.json] REPORT.json ... "
              ">> \"$GITHUB_STEP_SUMMARY\"", file=sys.stderr)
        return 2
    reports: list[tuple[str, dict[str, Any] | BadReport]] = []
    for path in paths:
        try:
            reports.append((path.stem, read_report(path)))
        except BadReport as bad:
            reports.append((path.stem, bad))
    sys.stdout.write(render(reports))
    for name, report in reports:
        if isinstance(report, BadReport):
            line = f"{name if _NAME.match(name) else 'a report'}: no report"
        else:
            line = (f"{report['lab']}: {as_points(report['score'])}/{as_points(report['max_score'])}"
                    f"{'' if passed(report) else ' (some tasks do not pass yet)'}")
        print(line, file=sys.stderr)
    if classroom is not None:
        classroom.write_text(json.dumps(classroom_body(reports)), encoding="utf-8")
    if any(isinstance(r, BadReport) for _, r in reports):
        return 1
    return 0 if not strict or all(passed(r) for _, r in reports if not isinstance(r, BadReport)) else 1


if __name__ == "__main__":
    sys.exit(main())
