"""Grading a whole course: every sub-folder of a directory is one student's submission.

The parent process reads every submission first (``grader.sandbox.intake``: no links, regular
files only, within limits; a submission that breaks a rule, or has no module, gets its
row at once), imports PyTorch and the lab once, then forks ``jobs`` grading processes;
each keeps a zygote (a clean interpreter with NumPy/PyTorch loaded) from which it forks
one worker per submission. So a submission costs its checks, not interpreter starts and
imports. With a pool of worker users, each grading process has its own users, so two
submissions graded at the same time never share an identity.

Every submission gets a row, whatever it does: a grading process that does not answer
within the per-submission deadline is killed (with everything it started) and that
submission's row says ``timeout``; one that dies says ``grader_crash``; the batch goes on.
A submission whose files have not changed since its feedback was written is not graded
again (unless ``force``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import multiprocessing
import multiprocessing.connection
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from grader import REPO, labs
from grader.declare import oracles
from grader.declare.spec import Lab
from grader.export.cachekey import grade_key
from grader.export.feedback_formats import write_file
from grader.export.notebook import notebook_module
from grader.export.shard import Shard
from grader.run import seeds
from grader.run.engine import Budget, grade_lab, load_reference
from grader.run.seeds import Official
from grader.sandbox import intake
from grader.sandbox.intake import BadSubmission, submission_folders
from grader.sandbox.host import Limits, WorkerUsers, ZygoteLauncher, contain, end_strays, forget, started
from grader.report.render import as_points

FEEDBACK_VERSION = 3  # 3: the cache key of grader.cachekey
SUBMISSION_TIMEOUT = 600.0  # seconds one submission may take, all its tasks together


@dataclass(frozen=True)
class Row:
    """One line of the gradebook."""

    submission: str
    score: float
    max_score: float
    status: str  # graded, or why not: empty, missing_module, bad_file, import_error, timeout, grader_crash
    tasks: dict[str, float]
    cached: bool = False
    seed: int | None = None
    token: str | None = None  # an official run's replay token: what the student is shown
    flags: tuple[str, ...] = ()  # constructs for the instructor to review (banned, or reaching around a ban)


def discover(root: Path) -> list[Path]:
    """The submission folders: every non-hidden sub-folder (a link among them included, to be refused
    by name), sorted by name."""
    return [root / name for name, _ in submission_folders(root)]


def _row_from_report(name: str, report: dict[str, Any], cached: bool = False) -> Row:
    seed = report.get("seed")
    return Row(name, float(report["score"]), float(report["max_score"]), str(report["status"]),
               {t["name"]: float(t["score"]) for t in report["tasks"]}, cached,
               seed if isinstance(seed, int) else None, report.get("token"), tuple(report.get("flags", ())))


def _unrun_report(lab: Lab, name: str, seed: int, status: str, message: str, token: str | None = None) -> dict[str, Any]:
    return {"lab": lab.name, "submission": name, "score": 0, "max_score": lab.max_score, "seed": seed,
            **({"token": token} if token else {}),
            "status": status, "tasks": [{"name": t.name, "status": "error", "score": 0, "max_score": t.points,
                                         "message": message, "checks": []} for t in lab.tasks]}


# ----------------------------------------------------------------------------- the grading processes


def _serve(conn: Any, lab_name: str, budget: Budget, limits: Limits, users: WorkerUsers | None) -> None:
    """A grading process: grade the (folder, seed, token) the parent sends until it sends None."""
    contain()
    lab = labs.load(lab_name)
    launcher = ZygoteLauncher(lab.kind, users, meta=lab.meta)
    try:
        for folder, seed, token in iter(conn.recv, None):
            try:
                try:  # found as the parent found it (a notebook upload included)
                    files = intake.discover(Path(folder), lab.name, lab.module, notebook_module).files
                except BadSubmission:
                    files = None  # grade_lab gives the row its reason
                result = grade_lab(lab, Path(folder), seed=seed, budget=budget, limits=limits, launcher=launcher,
                                   find_module=True, files=files)
                report = dataclasses.replace(result, token=token).to_json()
            except Exception as error:  # noqa: BLE001 - a grader bug costs this row, not the batch
                report = _unrun_report(lab, folder, seed, "grader_crash", f"internal grader error: {error!r}", token)
            conn.send((folder, report))
    finally:
        launcher.close()


def grade_all(lab: Lab, folders: Sequence[Path], *, seed: int, jobs: int, budget: Budget, limits: Limits,
              on_result: Callable[[Path, dict[str, Any]], None], users: WorkerUsers | None = None,
              deadline: float = SUBMISSION_TIMEOUT, official: Mapping[Path, Official] | None = None) -> None:
    """Grade ``folders`` in ``jobs`` forked processes; call ``on_result`` as each finishes. Each is
    graded with ``seed``, or with its own official seed where ``official`` has one.

    With ``users``, the student's code runs as those unprivileged users (the grader must be root), each
    grading process with users of its own (so never more processes than users). A grading process that
    has not answered ``deadline`` seconds after it was given a submission is killed, with everything it
    started, and replaced; the submission's row says ``timeout``."""
    contain()
    oracles.torch()  # imported once here, inherited by every forked grading process
    load_reference(lab, REPO / "solutions")
    context = multiprocessing.get_context("fork")
    pending = list(reversed(folders))
    jobs = max(1, min(jobs, len(folders), len(users) if users else jobs))
    busy: dict[Any, tuple[Any, Path | None, float, int]] = {}  # connection -> (process, folder, since, slot)

    def seed_of(folder: Path) -> tuple[int, str | None]:
        chosen = (official or {}).get(folder)
        return (chosen.seed, chosen.token) if chosen else (seed, None)

    def spawn(slot: int) -> None:
        ours, theirs = context.Pipe()
        share = users.share(slot, jobs) if users else None
        process = context.Process(target=_serve, args=(theirs, lab.name, budget, limits, share), daemon=True)
        process.start()
        assert process.pid is not None
        started(process.pid)
        theirs.close()
        busy[ours] = (process, None, 0.0, slot)
        feed(ours)

    def feed(conn: Any) -> None:
        process, _, _, slot = busy[conn]
        folder = pending.pop() if pending else None
        conn.send(None if folder is None else (str(folder), *seed_of(folder)))
        busy[conn] = (process, folder, time.monotonic(), slot)

    def replace(conn: Any, status: str, message: str) -> None:
        """The grading process of ``conn`` failed its submission: kill it and all it started, give its row, go on."""
        process, folder, since, slot = busy.pop(conn)
        process.kill()
        process.join()
        if process.pid is not None:
            forget(process.pid)
        conn.close()
        end_strays()
        assert folder is not None
        its_seed, token = seed_of(folder)
        on_result(folder, dict(_unrun_report(lab, str(folder), its_seed, status, message, token),
                               elapsed=round(time.monotonic() - since, 2)))
        if pending:
            spawn(slot)

    for slot in range(jobs):
        spawn(slot)
    while any(folder is not None for _, folder, _, _ in busy.values()):
        now = time.monotonic()
        for late, (_, folder, since, _) in list(busy.items()):
            if folder is not None and now - since > deadline:
                replace(late, "timeout", f"grading this submission took more than {deadline:g} s (the limit for one "
                                         "submission, all its tasks together): stopped")
        waiting = {conn: process.sentinel for conn, (process, folder, _, _) in busy.items() if folder is not None}
        if not waiting:
            break
        next_deadline = min(since for _, folder, since, _ in busy.values() if folder is not None) + deadline
        for ready in multiprocessing.connection.wait(list(waiting) + list(waiting.values()),
                                                    timeout=max(0.05, next_deadline - time.monotonic())):
            conn: Any = ready if ready in waiting else next(c for c, s in waiting.items() if s == ready)
            if conn not in busy or busy[conn][1] is None:
                continue
            _, folder, since, _ = busy[conn]
            try:
                _, report = conn.recv()
            except (EOFError, OSError):  # the grading process itself died
                replace(conn, "grader_crash", "the grading process ended unexpectedly")
                continue
            report["elapsed"] = round(time.monotonic() - since, 2)  # seconds: the class report's slowest
            assert folder is not None
            on_result(folder, report)
            feed(conn)
    for process, _, _, _ in busy.values():
        process.join(timeout=5)
        if process.exitcode is not None and process.pid is not None:
            forget(process.pid)
    end_strays()


# ----------------------------------------------------------------------------- the gradebook


def grade_directory(lab: Lab, root: Path, feedback: Path, *, seed: int, jobs: int, budget: Budget,
                    limits: Limits = Limits(), force: bool = False, users: WorkerUsers | None = None,
                    progress: Callable[[Row], None] | None = None, deadline: float = SUBMISSION_TIMEOUT,
                    shard: Shard | None = None, secret: bytes | None = None) -> list[Row]:
    """Grade every submission under ``root`` (with ``shard``, only that shard's); write one feedback JSON
    each; return the rows by name.

    With ``secret``, each submission is graded with its official seed (``grader.run.seeds``: from the
    secret, its folder's name and its files), recorded with its token in its feedback and its row;
    ``seed`` is then unused."""
    feedback.mkdir(parents=True, exist_ok=True)
    rows: dict[str, Row] = {}
    prints: dict[str, str] = {}
    notes: dict[str, str] = {}  # how a misplaced, renamed or notebook module was found (grader.intake.discover)
    to_grade: list[Path] = []
    key = grade_key(lab, budget, REPO / "solutions", FEEDBACK_VERSION)
    official: dict[Path, Official] = {}
    for name, problem in submission_folders(root):
        if shard is not None and not shard.holds(name):
            continue
        folder = root / name
        unrun: tuple[str, str] | None = None  # a row that needs no worker: (status, reason)
        try:
            if problem:
                raise BadSubmission("bad_file", problem)
            found = intake.discover(folder, lab.name, lab.module, notebook_module)
            digest = found.files.digest()
            notes[name] = found.note
        except BadSubmission as bad:
            status = "empty" if bad.status == "missing_module" and not _has_entries(folder) else bad.status
            unrun = (status, "the submission folder is empty" if status == "empty" else bad.reason)
            digest = ":".join(unrun)
        if secret is not None:
            official[folder] = seeds.official(secret, lab.name, name, digest)
        mine = official[folder].seed if secret is not None else seed
        prints[name] = key.fingerprint(digest, mine)
        cached = _cached(feedback / f"{name}.json", prints[name])
        if cached is not None and not force:
            rows[name] = _row_from_report(name, cached, cached=True)
        elif unrun is not None:
            rows[name] = _store(feedback, name, prints[name],
                                _unrun_report(lab, name, mine, *unrun, official[folder].token if secret else None))
        else:
            to_grade.append(folder)
        if name in rows and progress is not None:
            progress(rows[name])

    def finished(folder: Path, report: dict[str, Any]) -> None:
        report["submission"] = folder.name
        if notes.get(folder.name):
            report["found"] = notes[folder.name]
        rows[folder.name] = _store(feedback, folder.name, prints[folder.name], report)
        if progress is not None:
            progress(rows[folder.name])

    if to_grade:
        grade_all(lab, to_grade, seed=seed, jobs=jobs, budget=budget, limits=limits, on_result=finished, users=users,
                  deadline=deadline, official=official)
    return [rows[name] for name in sorted(rows)]


def _has_entries(folder: Path) -> bool:
    try:
        return any(not entry.name.startswith(".") for entry in os.scandir(folder))
    except OSError:
        return False


def _cached(path: Path, print_: str) -> dict[str, Any] | None:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) and stored.get("fingerprint") == print_ else None


def _store(feedback: Path, name: str, print_: str, report: dict[str, Any]) -> Row:
    report = dict(report, fingerprint=print_)
    write_file(feedback / f"{name}.json", json.dumps(report, indent=2))
    return _row_from_report(name, report)


def gradebook_csv(lab: Lab, rows: Iterable[Row]) -> str:
    """The gradebook: submission,score,max_score,status, one column per task, then flags (constructs for the
    instructor to review, "; "-separated) and, for official runs, each row's seed and replay token."""
    rows = list(rows)
    official = any(row.token for row in rows)
    return csv_text([[*row_header(lab), "flags", *(["seed", "token"] if official else [])]]
                    + [[*row_cells(lab, row), spreadsheet_safe("; ".join(row.flags)),
                        *([row.seed if row.seed is not None else "", row.token or ""] if official else [])]
                       for row in rows])


def row_header(lab: Lab) -> list[str]:
    """The gradebook's first columns (GRADER.md): submission,score,max_score,status, then one per task."""
    return ["submission", "score", "max_score", "status", *[t.name for t in lab.tasks]]


def row_cells(lab: Lab, row: Row) -> list[str]:
    """A row's cells under ``row_header``."""
    return [spreadsheet_safe(row.submission), as_points(row.score), as_points(row.max_score),
            spreadsheet_safe(row.status), *[as_points(row.tasks.get(t.name, 0.0)) for t in lab.tasks]]


def csv_text(lines: Iterable[Sequence[Any]]) -> str:
    """CSV text, one line per item of ``lines``, each ended by a newline."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(lines)
    return out.getvalue()


def spreadsheet_safe(cell: str) -> str:
    """A text cell a spreadsheet shows as text: one that begins with =, +, -, @, a tab or a carriage return
    would be read as a formula (a submission folder named ``=HYPERLINK(...)``), so it gets a leading '."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell



def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
