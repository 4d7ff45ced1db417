"""What a batch says about the class: the end-of-run summary, the progress line, and the HTML report.

``dlkit report FEEDBACK_DIR --output report.html`` (and ``dlkit grade ... --report``) writes one
self-contained page: no script, nothing fetched (a Content-Security-Policy forbids it), so it opens
from a file, a course share or an email attachment. It shows

- the score distribution (ten bins of a tenth of the points each) with the mean and median;
- each task's pass rate (the share of submissions whose task earned all its points);
- the known mistakes diagnosed most often across the class: the hints of the lab's declared mistakes
  (``Task.mistakes``) found in the feedback, each counted once per submission, with the task;
- the slowest submissions and those that crashed, timed out, did not import or were refused;
- a table of the students linking to each one's readable feedback (``NAME.html``, else ``NAME.md``,
  else ``NAME.json``), with the roster's missing students and unmatched folders when a roster is given.

Every number is computed from the same rows as the gradebook CSV, so the two agree.
"""

from __future__ import annotations

import html
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from grader.export.batch import Row
from grader.export.feedback_formats import page
from grader.export.gradebook import Matched
from grader.declare.spec import Lab
from grader.report.render import as_points

TROUBLE = ("grader_crash", "timeout", "import_error", "bad_file")
BINS = 10


@dataclass
class ClassStats:
    """The numbers of a batch, from its rows (a roster's missing students are counted apart)."""

    lab: Lab
    rows: Sequence[Row]
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.counts = Counter(r.status for r in self.rows)

    @property
    def submitted(self) -> list[Row]:
        return [r for r in self.rows if r.status != "missing"]

    @property
    def mean(self) -> float:
        return round(statistics.fmean([r.score for r in self.submitted]), 2) if self.submitted else 0.0

    @property
    def median(self) -> float:
        return round(statistics.median([r.score for r in self.submitted]), 2) if self.submitted else 0.0

    def passes(self, task: str) -> int:
        """Submissions whose ``task`` earned all its points."""
        points = self.lab.task(task).points
        return sum(r.tasks.get(task, 0.0) >= points for r in self.submitted)

    def bins(self) -> list[int]:
        """How many submissions scored in each tenth of the points (the last bin includes full marks)."""
        counts = [0] * BINS
        top = self.lab.max_score or 1.0
        for row in self.submitted:
            counts[min(BINS - 1, max(0, int(row.score / top * BINS)))] += 1
        return counts


def summary_lines(stats: ClassStats) -> list[str]:
    """The end-of-run summary: counts by status, mean and median, each task's pass rate."""
    n = len(stats.submitted)
    by_status = ", ".join(f"{count} {status}" for status, count in stats.counts.most_common())
    lines = [f"status: {by_status}"]
    if n:
        lines.append(f"score: mean {as_points(stats.mean)}, median {as_points(stats.median)} (of {as_points(stats.lab.max_score)}), "
                     f"over {n} submissions" + (f"; {stats.counts['missing']} missing not counted"
                                                if stats.counts["missing"] else ""))
        lines.append("tasks passed: " + ", ".join(f"{t.name} {_percent(stats.passes(t.name), n)} "
                                                    f"({stats.passes(t.name)}/{n})" for t in stats.lab.tasks))
    return lines


def _percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else "-"


# ----------------------------------------------------------------------------- progress


class Progress:
    """Progress of a batch with an ETA: the time per graded submission so far times those left
    (submissions taken from the cache cost nothing and do not count towards the rate). ``line()`` is the
    text; ``due()`` says when a non-terminal output should print it (every ``every`` submissions, and
    at the end)."""

    def __init__(self, total: int, every: int = 10, clock: Any = time.monotonic):
        self.total = total
        self.every = max(1, every)
        self.done = 0
        self.graded = 0
        self.clock = clock
        self.started = clock()

    def advance(self, row: Row) -> None:
        self.done += 1
        self.graded += not row.cached

    def eta(self) -> float | None:
        """Seconds left, or None before the first graded submission."""
        if not self.graded:
            return None
        return (self.clock() - self.started) / self.graded * (self.total - self.done)

    def due(self) -> bool:
        return self.done == self.total or self.done % self.every == 0

    def line(self) -> str:
        left = self.eta()
        eta = "" if left is None or self.done == self.total else f", about {duration(left)} left"
        return (f"graded {self.done}/{self.total} ({_percent(self.done, self.total)}), "
                f"{duration(self.clock() - self.started)} elapsed{eta}")


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# ----------------------------------------------------------------------------- mistakes and trouble


def mistakes(lab: Lab, reports: dict[str, dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(task, hint, submissions) of the lab's declared mistakes found in the reports, most frequent first."""
    known = {(t.name, m.hint) for t in lab.tasks for m in t.mistakes}
    seen: Counter[tuple[str, str]] = Counter()
    for report in reports.values():
        found: set[tuple[str, str]] = set()
        for task in report.get("tasks", []):
            texts = [str(task.get("message", ""))] + [str(c.get("message", "")) for c in task.get("checks", [])]
            for text in texts:
                for line in text.splitlines():
                    hint = line.strip().removeprefix("hint: ") if line.strip().startswith("hint: ") else ""
                    if (task.get("name"), hint) in known:
                        found.add((str(task["name"]), hint))
        seen.update(found)
    return [(task, hint, count) for (task, hint), count in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))]


def troubled(reports: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(submission, status, first line of why) of each submission that crashed, timed out, did not import or
    was refused, or one of whose tasks raised or timed out."""
    found = []
    for name, report in sorted(reports.items()):
        status = str(report.get("status", "graded"))
        bad = [t for t in report.get("tasks", []) if t.get("status") in ("error", "timeout")]
        if status in TROUBLE or bad:
            first = bad[0] if bad else (report.get("tasks") or [{}])[0]
            why = str(first.get("message", "")).strip().splitlines()[:1]
            label = status if status in TROUBLE else f"{first.get('name')}: {first.get('status')}"
            found.append((name, label, why[0][:200] if why else ""))
    return found


# ----------------------------------------------------------------------------- the page


def feedback_link(folder: Path, name: str, base: Path) -> str:
    """The href of a student's most readable feedback file, relative to the report's folder ("" if none)."""
    for suffix in (".html", ".md", ".json"):
        path = folder / f"{name}{suffix}"
        if os.path.lexists(path) and not path.is_symlink():
            return Path(os.path.relpath(path, base)).as_posix()
    return ""


def render(lab: Lab, rows: Sequence[Row], reports: dict[str, dict[str, Any]], links: dict[str, str],
           matched: Matched | None = None, title: str = "") -> str:
    """The class report page."""
    e = html.escape
    stats = ClassStats(lab, rows)
    n = len(stats.submitted)
    title = title or f"{lab.name}: {lab.title}, class report"
    parts = [f"<h1>{e(title)}</h1>",
             f'<p id="overview"><span id="submissions">{n}</span> submissions'
             + (f', <span id="missing">{stats.counts["missing"]}</span> missing' if stats.counts["missing"] else "")
             + f'; mean <span id="mean">{as_points(stats.mean)}</span>, median <span id="median">{as_points(stats.median)}'
             f"</span> of {as_points(lab.max_score)} points.</p>",
             "<h2>Status</h2>", "<table id=\"status\"><tbody>"]
    parts += [f'<tr data-status="{e(s)}"><td>{e(s)}</td><td class="num">{c}</td></tr>'
              for s, c in stats.counts.most_common()]
    parts += ["</tbody></table>", "<h2>Score distribution</h2>", '<table id="distribution"><tbody>']
    bins = stats.bins()
    widest = max(bins) or 1
    step = lab.max_score / BINS
    for i, count in enumerate(bins):
        label = f"{as_points(i * step)}–{as_points((i + 1) * step)}" + ("" if i == BINS - 1 else " (excl.)")
        parts.append(f'<tr data-count="{count}"><td>{label}</td><td class="num">{count}</td>'
                     f'<td><span class="bar" style="width:{round(20 * count / widest, 2)}rem"></span></td></tr>')
    parts += ["</tbody></table>", "<h2>Tasks</h2>",
              '<table id="tasks"><thead><tr><th>task</th><th class="num">points</th><th class="num">passed</th>'
              '<th class="num">pass rate</th><th></th></tr></thead><tbody>']
    for task in lab.tasks:
        passed = stats.passes(task.name)
        parts.append(f'<tr data-task="{e(task.name)}" data-passed="{passed}"><td>{e(task.name)}</td>'
                     f'<td class="num">{as_points(task.points)}</td><td class="num">{passed}/{n}</td>'
                     f'<td class="num">{_percent(passed, n)}</td><td><span class="bar" '
                     f'style="width:{round(10 * passed / n, 2) if n else 0}rem"></span></td></tr>')
    found = [f'<tr data-count="{count}"><td class="num">{count}</td><td>{e(task)}</td><td>{e(hint)}</td></tr>'
             for task, hint, count in mistakes(lab, reports)[:15]]
    parts += ["</tbody></table>", "<h2>Known mistakes diagnosed most often</h2>", _table_or(
        "mistakes", found, "No declared mistake was recognised in these submissions.",
        '<thead><tr><th class="num">submissions</th><th>task</th><th>mistake</th></tr></thead>', "\n")]
    timed = sorted(((float(r.get("elapsed", 0.0)), name) for name, r in reports.items() if "elapsed" in r), reverse=True)
    slowest = [f'<tr><td>{e(name)}</td><td class="num">{seconds:.1f} s</td></tr>' for seconds, name in timed[:5]]
    parts += ["<h2>Slowest submissions</h2>", _table_or(
        "slowest", slowest, "No timings in these reports (they were graded before dlkit recorded them).")]
    parts += ["<h2>Crashes, timeouts and refusals</h2>", _table_or(
        "trouble", [f"<tr><td>{e(name)}</td><td>{e(label)}</td><td>{e(why)}</td></tr>"
                    for name, label, why in troubled(reports)], "None.")]
    parts += ["<h2>Students</h2>", '<table id="students"><thead><tr><th>submission</th><th>student</th>'
              '<th class="num">score</th><th>status</th><th>feedback</th></tr></thead><tbody>']
    entries = matched.entries if matched is not None else []
    who = {en.row.submission: (en.student.name or en.student.id) if en.student else "" for en in entries}
    notes = {en.row.submission: en.note for en in entries if en.student is None}
    for row in rows:
        href = links.get(row.submission, "")
        link = f'<a href="{e(href)}">feedback</a>' if href else ""
        note = f" ({e(notes[row.submission])})" if row.submission in notes else ""
        parts.append(f'<tr data-submission="{e(row.submission)}" data-score="{as_points(row.score)}" '
                     f'data-status="{e(row.status)}"><td>{e(row.submission)}</td><td>{e(who.get(row.submission, ""))}'
                     f'{note}</td><td class="num">{as_points(row.score)}</td><td class="{e(row.status)}">{e(row.status)}'
                     f"</td><td>{link}</td></tr>")
    parts.append("</tbody></table>")
    seeds = sorted({str(r.get("seed")) for r in reports.values() if r.get("seed") is not None})
    parts.append(f"<p><small>Written by dlkit from {len(reports)} feedback reports"
                 + (f"; seeds {e(', '.join(seeds[:5]))}{' ...' if len(seeds) > 5 else ''}" if seeds else "")
                 + ".</small></p>")
    return page(title, "\n".join(parts))


def _table_or(id_: str, rows: list[str], empty: str, head: str = "", sep: str = "") -> str:
    """A table of ``rows`` (``<tr>`` elements, ``sep`` between them and around them), or the paragraph
    ``empty`` when there are none."""
    if not rows:
        return f'<p id="{id_}">{empty}</p>'
    return f'<table id="{id_}">{head}<tbody>{sep}{sep.join(rows)}{sep}</tbody></table>'
