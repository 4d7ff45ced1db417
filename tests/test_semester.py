"""An instructor's semester in miniature, through the CLI: a roster of 10, 8 submissions (one student
missing, one renamed file, one notebook, one crash, one stranger not on the roster), a graded run, a
regrade after a profile change, the same batch in 2 shards joined by 'dlkit gradebook merge', the Canvas
CSV, and the class report opened in a real browser (Chromium through Playwright): it renders, its numbers
match the CSV, and its links resolve to each student's feedback page."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from grader.export.nbgrader import source_notebook
from grader import labs
from tests.conftest import REPO

LAB = labs.load("lab1")
REFERENCE = (REPO / "solutions" / "lab1" / "backprop.py").read_text()
STUB = (REPO / "assignments" / "lab1" / "backprop.py").read_text()
ROSTER = """id,name,email,section
s01,Ada Lovelace,ada@uni.edu,A
s02,Alan Turing,alan@uni.edu,A
s03,Grace Hopper,grace@uni.edu,A
s04,Edsger Dijkstra,edsger@uni.edu,B
s05,=cmd|' /C calc'!A0,barbara@uni.edu,B
s06,Donald Knuth,donald@uni.edu,B
s07,John McCarthy,john@uni.edu,C
s08,Frances Allen,frances@uni.edu,C
s09,Ken Thompson,ken@uni.edu,C
s10,Leslie Lamport,leslie@uni.edu,C
"""


def chromium() -> str | None:
    for candidate in (os.environ.get("DLKIT_CHROMIUM", ""), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                      shutil.which("chromium") or "", shutil.which("google-chrome") or ""):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def run(*args: str) -> object:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def build_class(root: Path) -> None:
    def put(name: str, text: str, where: str = "lab1/backprop.py") -> None:
        (root / name / where).parent.mkdir(parents=True, exist_ok=True)
        (root / name / where).write_text(text)

    put("s01", REFERENCE)
    put("s02", REFERENCE.replace("    return X @ W + b\n", "    return X @ W\n", 1))  # a wrong predict
    put("s03", STUB)
    put("s04", REFERENCE, "backprop (1).py")  # a browser renamed the upload
    put("s05", "import sys\nsys.exit(3)\n")  # crashes at import
    notebook = source_notebook(LAB, REFERENCE, "", seed=0)
    put("s06", json.dumps(notebook), "lab1.ipynb")  # a notebook upload
    put("s07", REFERENCE)
    put("zz-stranger", REFERENCE)  # on no roster
    # s08, s09, s10 submitted nothing: missing


def table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.xdist_group("semester")
def test_an_instructors_semester_in_miniature(tmp_path):
    subs, roster = tmp_path / "submissions", tmp_path / "roster.csv"
    build_class(subs)
    roster.write_text(ROSTER)
    common = ["--lab", "lab1", "--roster", str(roster), "--jobs", "2"]

    # 1. grade: every student of the roster has a row; the stranger is listed, not dropped
    first = run("grade", str(subs), *common, "--profile", "ci", "--feedback", str(tmp_path / "fb"),
                "--output", str(tmp_path / "grades.csv"), "--feedback-format", "html", "--report",
                str(tmp_path / "report.html"))
    rows = {r["submission"]: r for r in table((tmp_path / "grades.csv").read_text())}
    assert [r["student_id"] for r in rows.values()] == [f"s{i:02d}" for i in range(1, 11)] + [""]
    assert rows["s01"]["score"] == rows["s04"]["score"] == rows["s06"]["score"] == rows["s07"]["score"] == "100"
    assert float(rows["s02"]["score"]) < 100 and rows["s03"]["score"] == "0"
    assert rows["s05"]["status"] == "import_error" and rows["s05"]["name"].startswith("'=")
    assert [rows[s]["status"] for s in ("s08", "s09", "s10")] == ["missing"] * 3
    assert rows["zz-stranger"]["score"] == "100"
    assert "not on the roster: zz-stranger" in first.stderr
    assert "status: 7 graded, 3 missing, 1 import_error" in first.stderr and "tasks passed:" in first.stderr
    renamed = json.loads((tmp_path / "fb" / "s04.json").read_text())["found"]
    assert "'backprop (1).py' was graded as lab1/backprop.py" in renamed
    assert "lab1.ipynb" in json.loads((tmp_path / "fb" / "s06.json").read_text())["found"]

    # 2. nothing changed: nothing regraded; a profile change regrades everything
    again = run("grade", str(subs), *common, "--profile", "ci", "--feedback", str(tmp_path / "fb"))
    assert "(8 unchanged since their feedback)" in again.stderr
    regraded = run("grade", str(subs), *common, "--profile", "default", "--feedback", str(tmp_path / "fb"))
    assert "(0 unchanged since their feedback)" in regraded.stderr

    # 3. two shards, then merge: the same gradebook as the single run
    for k in (1, 2):
        run("grade", str(subs), *common, "--profile", "ci", "--shard", f"{k}/2", "--feedback",
            str(tmp_path / f"shard{k}"), "--feedback-format", "html", "--output", str(tmp_path / f"shard{k}.csv"))
    shard_rows = [table((tmp_path / f"shard{k}.csv").read_text()) for k in (1, 2)]
    graded = [r["submission"] for part in shard_rows for r in part if r["status"] != "missing"]
    assert sorted(graded) == sorted(n for n in rows if rows[n]["status"] != "missing")
    merged = run("gradebook", "merge", str(tmp_path / "shard1"), str(tmp_path / "shard2"), "--roster", str(roster),
                 "--output", str(tmp_path / "merged.csv"), "--report", str(tmp_path / "merged.html"))
    assert (tmp_path / "merged.csv").read_text() == (tmp_path / "grades.csv").read_text()
    assert "merged 8 submissions from 2 folders into 11 rows" in merged.stderr

    # 4. the Canvas CSV: Canvas's columns, one row per student of the roster
    run("gradebook", "merge", str(tmp_path / "shard1"), str(tmp_path / "shard2"), "--roster", str(roster),
        "--gradebook-format", "canvas", "--assignment", "Lab 1", "--output", str(tmp_path / "canvas.csv"))
    canvas = list(csv.reader(io.StringIO((tmp_path / "canvas.csv").read_text())))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 1"]
    assert [r[1] for r in canvas[1:]] == [f"s{i:02d}" for i in range(1, 11)]
    assert canvas[1][5] == "100" and canvas[8][5] == "0" and canvas[5][0].startswith("'=")

    # 5. the class report, in a browser
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium on this machine (scripts/setup installs it with apt-get when run as root)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    merged_rows = table((tmp_path / "merged.csv").read_text())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto((tmp_path / "merged.html").as_uri())
        assert page.title() == "lab1: Backpropagation, class report"
        submitted = [r for r in merged_rows if r["status"] != "missing"]
        scores = [float(r["score"]) for r in submitted]
        assert page.inner_text("#submissions") == str(len(submitted)) and page.inner_text("#missing") == "3"
        assert float(page.inner_text("#mean")) == pytest.approx(statistics.fmean(scores), abs=0.01)
        assert float(page.inner_text("#median")) == pytest.approx(statistics.median(scores))
        shown = page.eval_on_selector_all("#students tbody tr", "rows => rows.map(r => [r.dataset.submission, "
                                          "r.dataset.score, r.dataset.status])")
        assert shown == [[r["submission"], r["score"], r["status"]] for r in merged_rows]
        for task in LAB.tasks:
            passed = sum(float(r[task.name]) >= task.points for r in submitted)
            assert page.get_attribute(f'#tasks tr[data-task="{task.name}"]', "data-passed") == str(passed)
        assert sum(int(c) for c in page.eval_on_selector_all("#distribution tr", "rows => rows.map(r => "
                                                                                 "r.dataset.count)")) == len(submitted)
        assert "s05" in page.inner_text("#trouble")
        links = page.eval_on_selector_all("#students a", "links => links.map(a => a.href)")
        assert len(links) == len(submitted)
        for href in links:
            feedback = browser.new_page()
            feedback.goto(href)
            assert feedback.locator("#score").count() == 1, href
            feedback.close()
        assert all(url.startswith("file://") for url in requests)
        browser.close()
