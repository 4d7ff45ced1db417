"""The part of each lab's notes (``docs/labN-notes.md``) that says what the grader runs, generated from the
lab's declaration: per task, every check with its devices and dtypes, how many inputs it draws, and the fixed
inputs it always tries (the handout's worked examples, the edge cases), so that the notes cannot promise
examples or inputs the declarations do not have.

    python -m grader.export.notes          # rewrite the generated section of every lab's notes
    python -m grader.export.notes --check  # exit 1 where a lab's notes differ from its declaration
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from grader import REPO, labs
from grader.declare.describe import describe_call
from grader.declare.signatures import read_signatures
from grader.declare.spec import Call, Check, Lab
from grader.run.engine import PROFILES, lab_checks
from grader.sandbox.wire import TensorValue

BEGIN = "<!-- generated from grader/labs/{lab}.py by `python -m grader.export.notes`: do not edit by hand -->"
END = "<!-- end of the generated section -->"
HEADING = "## What the grader runs (generated from the declarations)"


def notes_path(root: Path, lab: Lab) -> Path:
    return root / "docs" / f"{lab.name}-notes.md"


def _fixed(check: Check) -> list[Call]:
    return [e for e in check.examples if e.args or e.kwargs]


def _check_line(check: Check) -> str:
    kind = "gate" if check.gate else "value check"
    where = "; ".join(v.label for v in check.variants)
    drawn = (f"{PROFILES['default'].examples(check.max_examples)} drawn inputs with the default profile"
             if check.cases is not None else "no drawn inputs")
    return f"- {check.name} ({kind}; {where}): {drawn}, {len(_fixed(check))} fixed"


def _short(value: Any) -> str:
    """A written-down expected value, on one line."""
    if isinstance(value, np.ndarray):
        shown = value.squeeze() if value.size <= 16 else value.ravel()[:8]
        return repr(shown.tolist()) + ("" if value.size <= 16 else " ...")
    if isinstance(value, TensorValue):
        return _short(value.array)
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    return repr(value)


def section(lab: Lab, root: Path = REPO) -> str:
    """The generated section for ``lab``: its markers, heading and one block per task."""
    signatures = read_signatures(root / "assignments" / lab.name / f"{lab.module}.py")
    lines = [BEGIN.format(lab=lab.name), HEADING, "",
             "Per task: each check (a value check earns the task's points, a gate only costs them when it fails), "
             "where it runs (device, dtype), how many inputs it draws, and the fixed inputs it always tries.", ""]
    for task in lab.tasks:
        lines += [f"### {task.name} ({task.points:g} points)", ""]
        for check in [*lab_checks(lab), *task.checks]:
            lines.append(_check_line(check))
            for example in _fixed(check):
                shown = describe_call(task.function, example, signatures.get(task.function))
                shown = shown if len(shown) <= 160 else shown[:157] + "..."
                expected = "" if example.expected is None else f" → `{_short(example.expected)[:120]}`"
                lines.append(f"  - {example.note + ': ' if example.note else ''}`{shown}`{expected}")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def with_section(text: str, lab: Lab, root: Path = REPO) -> str:
    """``text`` (a lab's notes) with its generated section replaced, or appended where it has none."""
    begin = BEGIN.format(lab=lab.name)
    if begin in text and END in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(END, 1)[1]
        return head + section(lab, root) + tail
    return text.rstrip("\n") + "\n\n" + section(lab, root) + "\n"


def main(argv: Sequence[str]) -> int:
    stale = []
    for name in labs.names():
        lab = labs.load(name)
        path = notes_path(REPO, lab)
        text = path.read_text(encoding="utf-8")
        fresh = with_section(text, lab)
        if fresh == text:
            continue
        if "--check" in argv:
            stale.append(str(path.relative_to(REPO)))
        else:
            path.write_text(fresh, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    if stale:
        print(f"notes that differ from the declarations (run 'python -m grader.export.notes'): {', '.join(stale)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
