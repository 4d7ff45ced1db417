"""After a batch (or a merge of shards): the gradebook in the LMS's format, readable feedback, the class report.

``dlkit grade``, ``dlkit gradebook merge`` and ``dlkit report`` all end here, so the three agree: the
same rows (with a roster: every student, the missing ones with 0, then the unmatched folders) give the
CSV, the report's numbers and the terminal summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from grader.export import classreport
from grader.export.batch import Row
from grader.export.feedback_formats import write_file
from grader.export.gradebook import Matched, Student, match, write
from grader.export.shard import Shard
from grader.declare.spec import Lab


@dataclass
class Outcome:
    rows: list[Row]  # the gradebook's rows, in its order
    matched: Matched | None
    gradebook: str  # the CSV text


def gradebook(lab: Lab, graded: Sequence[Row], *, students: Sequence[Student] | None, fmt: str, assignment: str,
              shard: Shard | None = None) -> Outcome:
    """The gradebook of ``graded`` rows in ``fmt``, matched to the roster's ``students`` when given."""
    matched = match(students, graded, lab, holds=shard.holds if shard else None) if students is not None else None
    rows = [e.row for e in matched.entries] if matched is not None else list(graded)
    return Outcome(rows, matched, write(fmt, lab, graded, matched, assignment))


def write_report(lab: Lab, outcome: Outcome, reports: dict[str, dict[str, Any]], folders: Sequence[Path],
                 output: Path) -> None:
    """Write the class report of ``outcome`` to ``output``, linking each submission's feedback (the first
    found in ``folders``) from ``output``'s folder."""
    base = output.resolve().parent
    links: dict[str, str] = {}
    for row in outcome.rows:
        hrefs = (classreport.feedback_link(folder.resolve(), row.submission, base) for folder in folders)
        links[row.submission] = next((href for href in hrefs if href), "")
    output.parent.mkdir(parents=True, exist_ok=True)
    write_file(output, classreport.render(lab, outcome.rows, reports, links, outcome.matched))


def rows_of(reports: dict[str, dict[str, Any]]) -> list[Row]:
    return [Row(name, float(r["score"]), float(r["max_score"]), str(r.get("status", "graded")),
                {str(t["name"]): float(t["score"]) for t in r["tasks"]}) for name, r in sorted(reports.items())]


def unmatched_lines(outcome: Outcome) -> list[str]:
    """One line per submission folder that matched no student (for the terminal)."""
    if outcome.matched is None:
        return []
    return [f"not on the roster: {e.row.submission} ({e.note}; score {e.row.score:g}, {e.row.status})"
            for e in outcome.matched.unmatched]
