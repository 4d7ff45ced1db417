"""The class report, the end-of-run summary, the progress line (grader.classreport) and readable feedback
(grader.feedback_formats)."""

from __future__ import annotations

from grader import labs
from grader.export.batch import Row
from grader.export.classreport import ClassStats, Progress, duration, mistakes, render, summary_lines, troubled
from grader.export.feedback_formats import to_html, to_markdown

LAB = labs.load("lab1")
FULL = {t.name: t.points for t in LAB.tasks}
HINT = LAB.tasks[1].mistakes[0].hint if LAB.tasks[1].mistakes else next(m.hint for t in LAB.tasks for m in t.mistakes)
HINTED = next(t for t in LAB.tasks if any(m.hint == HINT for m in t.mistakes))


def row(name: str, score: float, status: str = "graded", tasks: dict | None = None, cached: bool = False) -> Row:
    return Row(name, score, LAB.max_score, status, FULL if tasks is None else tasks, cached)


def report(name: str, status: str = "graded", message: str = "", elapsed: float | None = None) -> dict:
    found = {"lab": "lab1", "submission": name, "score": 0, "max_score": 100, "status": status, "seed": 3,
             "tasks": [{"name": HINTED.name, "status": "failed" if message else "passed", "score": 0,
                        "max_score": HINTED.points, "message": "",
                        "checks": [{"name": "matches the reference", "status": "failed", "message": message}]}]}
    if elapsed is not None:
        found["elapsed"] = elapsed
    return found


def test_the_summary_counts_statuses_and_gives_mean_median_and_pass_rates_over_submissions():
    stats = ClassStats(LAB, [row("a", 100), row("b", 0, tasks={}), row("c", 50, "import_error", {}),
                             row("d", 0, "missing", {})])
    lines = summary_lines(stats)
    assert lines[0] == "status: 2 graded, 1 import_error, 1 missing"
    assert lines[1] == "score: mean 50, median 50 (of 100), over 3 submissions; 1 missing not counted"
    assert f"{LAB.tasks[0].name} 33% (1/3)" in lines[2]
    assert stats.bins()[0] == 1 and stats.bins()[5] == 1 and stats.bins()[9] == 1


def test_progress_gives_an_eta_from_graded_submissions_only_and_a_line_every_n():
    now = [0.0]
    meter = Progress(10, every=4, clock=lambda: now[0])
    meter.advance(row("a", 1, cached=True))
    assert meter.eta() is None
    now[0] = 20.0
    meter.advance(row("b", 1))  # 1 graded in 20 s, 8 left
    assert meter.eta() == 160.0 and not meter.due()
    meter.advance(row("c", 1))
    meter.advance(row("d", 1))
    assert meter.due() and meter.line() == "graded 4/10 (40%), 20 s elapsed, about 40 s left"
    assert duration(3725) == "1 h 02 min" and duration(75) == "1 min 15 s"


def test_known_mistakes_are_counted_once_per_submission_and_trouble_is_listed():
    reports = {"a": report("a", message=f"wrong\n  hint: {HINT}\n  hint: {HINT}"),
               "b": report("b", message=f"wrong\n  hint: {HINT}"),
               "c": report("c", message="wrong\n  hint: something no lab declares"),
               "d": report("d", "import_error", "SyntaxError: line 3")}
    assert mistakes(LAB, reports) == [(HINTED.name, HINT, 2)]
    assert troubled(reports) == [("d", "import_error", "")]


def test_the_page_escapes_what_students_wrote_and_fetches_nothing():
    evil = "<script>alert(1)</script>"
    page = render(LAB, [row(evil, 10, tasks={})], {evil: report(evil, message=evil, elapsed=2.5)}, {evil: "x.html"})
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "http://" not in page and "https://" not in page


def test_readable_feedback_escapes_the_students_text_in_html_and_markdown():
    data = report("a", message="</pre><img src=x onerror=alert(1)>\n```\n| pipe |")
    data["found"] = "'conv (1).py' was graded as lab3/conv.py"
    html = to_html(data, "a")
    assert "<img" not in html and "&lt;img" in html and "conv (1).py" in html
    markdown = to_markdown(data, "a")
    assert "````" in markdown and "<img src=x onerror=alert(1)>" in markdown.split("````text")[1]
    assert "Note: \\'conv \\(1\\)\\.py\\' was graded" in markdown
