"""Grading a whole course: every sub-folder of a directory is one student's submission.

The parent process imports PyTorch and the lab once, then forks ``jobs`` grading
processes; each keeps a zygote (a clean interpreter with NumPy/PyTorch loaded)
from which it forks one worker per submission. So a submission costs its checks,
not interpreter starts and imports. Every submission gets a row, whatever it
does; a submission whose files have not changed since its feedback was written
is not graded again (unless ``force``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import multiprocessing.connection
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from grader import labs, oracles
from grader.engine import Budget, grade_lab, load_reference, REPO
from grader.sandbox import Limits, ZygoteLauncher
from grader.spec import Lab

FEEDBACK_VERSION = 1


@dataclass(frozen=True)
class Row:
    """One line of the gradebook."""

    submission: str
    score: float
    max_score: float
    status: str  # graded, or why not: empty, missing_module, import_error, grader_crash
    tasks: dict[str, float]
    cached: bool = False


def discover(root: Path) -> list[Path]:
    """The submission folders: every non-hidden sub-folder, sorted by name."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def fingerprint(folder: Path, lab: Lab, seed: int) -> str:
    """A digest of everything that decides a submission's grade: its files, the lab, the seed."""
    digest = hashlib.sha256(f"{FEEDBACK_VERSION}/{lab.name}/{seed}".encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _row_from_report(name: str, report: dict[str, Any], cached: bool = False) -> Row:
    return Row(name, float(report["score"]), float(report["max_score"]), str(report["status"]),
               {t["name"]: float(t["score"]) for t in report["tasks"]}, cached)


def _unrun_report(lab: Lab, name: str, seed: int, status: str, message: str) -> dict[str, Any]:
    return {"lab": lab.name, "submission": name, "score": 0, "max_score": lab.max_score, "seed": seed,
            "status": status, "tasks": [{"name": t.name, "status": "error", "score": 0, "max_score": t.points,
                                         "message": message, "checks": []} for t in lab.tasks]}


# ----------------------------------------------------------------------------- the grading processes


def _serve(conn: Any, lab_name: str, seed: int, budget: Budget, limits: Limits, user: str | None) -> None:
    """A grading process: grade the folders the parent sends until it sends None."""
    lab = labs.load(lab_name)
    launcher = ZygoteLauncher(lab.kind, user)
    try:
        while True:
            folder = conn.recv()
            if folder is None:
                return
            try:
                report = grade_lab(lab, Path(folder), seed=seed, budget=budget, limits=limits, launcher=launcher).to_json()
            except Exception as error:  # noqa: BLE001 - a grader bug costs this row, not the batch
                report = _unrun_report(lab, folder, seed, "grader_crash", f"internal grader error: {error!r}")
            conn.send((folder, report))
    finally:
        launcher.close()


def grade_all(lab: Lab, folders: Sequence[Path], *, seed: int, jobs: int, budget: Budget, limits: Limits,
              on_result: Callable[[Path, dict[str, Any]], None], user: str | None = None) -> None:
    """Grade ``folders`` in ``jobs`` forked processes; call ``on_result`` as each finishes.

    With ``user``, the student's code runs as that unprivileged user (the grader must be root)."""
    oracles.torch()  # imported once here, inherited by every forked grading process
    load_reference(lab, REPO / "solutions")
    context = multiprocessing.get_context("fork")
    pending = list(reversed(folders))
    busy: dict[Any, tuple[Any, Path | None]] = {}  # connection -> (process, folder in progress)
    report: dict[str, Any]

    def spawn() -> Any:
        ours, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs, lab.name, seed, budget, limits, user), daemon=True)
        process.start()
        theirs.close()
        busy[ours] = (process, None)
        return ours

    def feed(conn: Any) -> None:
        process, _ = busy[conn]
        folder = pending.pop() if pending else None
        conn.send(None if folder is None else str(folder))
        busy[conn] = (process, folder)

    for _ in range(max(1, min(jobs, len(folders)))):
        feed(spawn())
    while any(folder is not None for _, folder in busy.values()):
        waiting = {conn: process.sentinel for conn, (process, folder) in busy.items() if folder is not None}
        for ready in multiprocessing.connection.wait(list(waiting) + list(waiting.values())):
            conn: Any = ready if ready in waiting else next(c for c, s in waiting.items() if s == ready)
            process, folder = busy[conn]
            if folder is None:
                continue
            try:
                _, report = conn.recv()
            except (EOFError, OSError):  # the grading process itself died
                report = _unrun_report(lab, str(folder), seed, "grader_crash", "the grading process ended unexpectedly")
                del busy[conn]
                process.join()
                on_result(folder, report)
                if pending:
                    feed(spawn())
                continue
            busy[conn] = (process, None)
            on_result(folder, report)
            feed(conn)
    for process, _ in busy.values():
        process.join(timeout=5)


# ----------------------------------------------------------------------------- the gradebook


def grade_directory(lab: Lab, root: Path, feedback: Path, *, seed: int, jobs: int, budget: Budget,
                    limits: Limits = Limits(), force: bool = False, user: str | None = None,
                    progress: Callable[[Row], None] | None = None) -> list[Row]:
    """Grade every submission under ``root``; write one feedback JSON each; return the rows by name."""
    feedback.mkdir(parents=True, exist_ok=True)
    rows: dict[str, Row] = {}
    prints: dict[str, str] = {}
    to_grade: list[Path] = []
    for folder in discover(root):
        prints[folder.name] = fingerprint(folder, lab, seed)
        cached = _cached(feedback / f"{folder.name}.json", prints[folder.name])
        if cached is not None and not force:
            rows[folder.name] = _row_from_report(folder.name, cached, cached=True)
        elif not any(p.is_file() for p in folder.rglob("*")):
            rows[folder.name] = _store(feedback, folder.name, prints[folder.name],
                                       _unrun_report(lab, folder.name, seed, "empty", "the submission folder is empty"))
        else:
            to_grade.append(folder)
        if folder.name in rows and progress is not None:
            progress(rows[folder.name])

    def finished(folder: Path, report: dict[str, Any]) -> None:
        report["submission"] = folder.name
        rows[folder.name] = _store(feedback, folder.name, prints[folder.name], report)
        if progress is not None:
            progress(rows[folder.name])

    if to_grade:
        grade_all(lab, to_grade, seed=seed, jobs=jobs, budget=budget, limits=limits, on_result=finished, user=user)
    return [rows[name] for name in sorted(rows)]


def _cached(path: Path, print_: str) -> dict[str, Any] | None:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) and stored.get("fingerprint") == print_ else None


def _store(feedback: Path, name: str, print_: str, report: dict[str, Any]) -> Row:
    report = dict(report, fingerprint=print_)
    (feedback / f"{name}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return _row_from_report(name, report)


def gradebook_csv(lab: Lab, rows: Iterable[Row]) -> str:
    """The gradebook: submission,score,max_score,status, then one column per task."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["submission", "score", "max_score", "status", *[t.name for t in lab.tasks]])
    for row in rows:
        writer.writerow([row.submission, _num(row.score), _num(row.max_score), row.status,
                         *[_num(row.tasks.get(t.name, 0.0)) for t in lab.tasks]])
    return out.getvalue()


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
