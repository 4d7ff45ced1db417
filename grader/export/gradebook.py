"""The course's gradebook: a roster, the rows of a batch matched to it, and the CSV an LMS imports.

A roster is a CSV with a header row. dlkit's own column names, or the ones of a Canvas or Moodle
export (so the course's own export works as it is):

=========  ===========================================  =========================================
column     also read as                                 meaning
=========  ===========================================  =========================================
id         ID, student_id                               the student's id (required)
name       Student, full name                           the student's name
email      Email address                                email
sis_id     SIS User ID, ID number                       the id of the school's information system
login_id   SIS Login ID, username                       the login name
section    Section                                      the section
folder     submission                                   the submission folder's name, where it is
                                                        none of id, sis_id, login_id, email or the
                                                        part of the email before the @
=========  ===========================================  =========================================

Every student of the roster gets a row of the gradebook; one without a submission is ``missing``
with 0. A submission folder that matches no student (or matches a student another folder already
matched) is listed apart: in the plain gradebook with empty roster columns, in the terminal, and in
the class report; never silently dropped.

Formats (``--gradebook-format``):

- ``plain``: dlkit's own (GRADER.md): ``submission,score,max_score,status``, one column per task,
  then, with a roster, ``student_id,name,email,sis_id,section``.
- ``canvas``: Canvas's gradebook import: ``Student,ID,SIS User ID,SIS Login ID,Section``, then one
  column named after the assignment holding the score (docs/gradebook.md gives the sources).
- ``moodle``: Moodle's CSV grade import: the identifier columns ``ID number``, ``Username`` and
  ``Email address`` (map one of them under "Identify user by"), ``Full name`` (to read, or ignore),
  then the assignment's grade column.

Every text cell goes through ``spreadsheet_safe``; numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from grader.export.batch import Row, csv_text, gradebook_csv, row_cells, row_header, spreadsheet_safe
from grader.declare.spec import Lab
from grader.report.render import as_points

FORMATS = ("plain", "canvas", "moodle")
ALIASES = {
    "id": ("id", "student_id", "studentid"),
    "name": ("name", "student", "fullname", "studentname"),
    "email": ("email", "emailaddress"),
    "sis_id": ("sis_id", "sisuserid", "idnumber", "sisid"),
    "login_id": ("login_id", "sisloginid", "username", "loginid"),
    "section": ("section",),
    "folder": ("folder", "submission"),
}
MAX_ROSTER_BYTES = 16 * 1024 * 1024
MAX_FEEDBACK_BYTES = 64 * 1024 * 1024


class RosterError(ValueError):
    """A roster dlkit cannot use; the message says where and why."""


@dataclass(frozen=True)
class Student:
    id: str
    name: str = ""
    email: str = ""
    sis_id: str = ""
    login_id: str = ""
    section: str = ""
    folder: str = ""

    def keys(self) -> set[str]:
        """The submission folder names that are this student's (compared without case)."""
        if self.folder:
            return {self.folder.lower()}
        found = {self.id, self.sis_id, self.login_id, self.email, self.email.partition("@")[0] if self.email else ""}
        return {k.lower() for k in found if k}

    @property
    def expected_folder(self) -> str:
        return self.folder or self.id


@dataclass(frozen=True)
class Entry:
    """One line of a gradebook: a student of the roster (None for a submission that matched none) and the row."""

    student: Student | None
    row: Row
    note: str = ""  # why a submission is unmatched


@dataclass
class Matched:
    entries: list[Entry] = field(default_factory=list)  # roster order, then the unmatched submissions

    @property
    def unmatched(self) -> list[Entry]:
        return [e for e in self.entries if e.student is None]

    @property
    def missing(self) -> list[Entry]:
        return [e for e in self.entries if e.row.status == "missing"]


# ----------------------------------------------------------------------------- the roster


def read_roster(path: Path) -> list[Student]:
    """The students of a roster CSV (a Canvas or Moodle export will do); RosterError when it is unusable."""
    try:
        data = _read_regular(path, MAX_ROSTER_BYTES)
    except OSError as error:
        raise RosterError(f"cannot read the roster '{path}': {error.strerror or error}") from None
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace")))
    header = next(reader, None)
    if header is None:
        raise RosterError(f"the roster '{path}' is empty")
    columns: dict[str, int] = {}
    for index, title in enumerate(header):
        key = title.strip().lower()
        squeezed = "".join(ch for ch in key if ch.isalnum())
        for name, aliases in ALIASES.items():
            if (key in aliases or squeezed in aliases) and name not in columns:
                columns[name] = index
    if "id" not in columns:
        raise RosterError(f"the roster '{path}' has no id column (its header is: {', '.join(header)}); "
                          "name the students' id column 'id'")
    students: list[Student] = []
    seen: dict[str, int] = {}
    for line, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        fields = {name: values[i].strip() if i < len(values) else "" for name, i in columns.items()}
        if fields.get("name", "") == "Points Possible" and not fields["id"]:
            continue  # the second row of a Canvas gradebook export
        if not fields["id"]:
            raise RosterError(f"{path}, line {line}: no id")
        if fields["id"] in seen:
            raise RosterError(f"{path}, line {line}: the id '{fields['id']}' is already on line {seen[fields['id']]}")
        seen[fields["id"]] = line
        students.append(Student(**fields))
    folders: dict[str, str] = {}
    for student in students:
        if student.folder:
            if student.folder.lower() in folders:
                raise RosterError(f"{path}: the folder '{student.folder}' is given to both {folders[student.folder.lower()]} "
                                  f"and {student.id}")
            folders[student.folder.lower()] = student.id
    return students


def _read_regular(path: Path, limit: int) -> bytes:
    """A regular file, reached through no link at its last component, at most ``limit`` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb", buffering=0) as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path} is not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"{path} is larger than {limit // (1024 * 1024)} MiB")
    return data


# ----------------------------------------------------------------------------- matching


def match(students: Sequence[Student], rows: Iterable[Row], lab: Lab, holds: Any = None) -> Matched:
    """Every student with their row (``missing`` with 0 when no folder is theirs), then the submissions
    that match no student. ``holds(folder_name)``: with a shard, only the missing students whose
    expected folder is this shard's get a row here."""
    by_key: dict[str, list[Student]] = {}
    for student in students:
        for key in student.keys():
            by_key.setdefault(key, []).append(student)
    taken: dict[str, Row] = {}
    unmatched: list[Entry] = []
    for row in rows:
        found = by_key.get(row.submission.lower(), [])
        if len(found) > 1:
            unmatched.append(Entry(None, row, f"matches several students: {', '.join(s.id for s in found)}"))
        elif not found:
            unmatched.append(Entry(None, row, "matches no student of the roster"))
        elif found[0].id in taken:
            unmatched.append(Entry(None, row, f"a second submission of {found[0].id} "
                                              f"(graded: {taken[found[0].id].submission})"))
        else:
            taken[found[0].id] = row
    result = Matched()
    for student in students:
        if student.id in taken:
            result.entries.append(Entry(student, taken[student.id]))
        elif holds is None or holds(student.expected_folder):
            result.entries.append(Entry(student, Row(student.expected_folder, 0.0, lab.max_score, "missing", {})))
    result.entries += unmatched
    return result


# ----------------------------------------------------------------------------- writing


# The identifier columns of Canvas's and Moodle's grade imports (the assignment's score column follows).
LMS_COLUMNS: dict[str, tuple[list[str], Callable[[Student], tuple[str, ...]]]] = {
    "canvas": (["Student", "ID", "SIS User ID", "SIS Login ID", "Section"],
               lambda s: (s.name, s.id, s.sis_id, s.login_id, s.section)),
    "moodle": (["ID number", "Username", "Email address", "Full name"],
               lambda s: (s.sis_id or s.id, s.login_id, s.email, s.name)),
}


def write(fmt: str, lab: Lab, rows: Sequence[Row], matched: Matched | None, assignment: str) -> str:
    """The gradebook in ``fmt`` (plain, canvas, moodle); canvas and moodle need a roster."""
    if fmt == "plain":
        return gradebook_csv(lab, rows) if matched is None else _plain(lab, matched)
    if matched is None:
        raise ValueError(f"the {fmt} gradebook needs a roster (--roster): {fmt} matches students by their ids")
    if fmt not in LMS_COLUMNS:
        raise ValueError(f"unknown gradebook format '{fmt}'; the formats are: {', '.join(FORMATS)}")
    header, who = LMS_COLUMNS[fmt]
    return csv_text([[*header, assignment]] + [[*map(spreadsheet_safe, who(e.student)), as_points(e.row.score)]
                                               for e in matched.entries if e.student is not None])


def _plain(lab: Lab, matched: Matched) -> str:
    lines = [[*row_header(lab), "student_id", "name", "email", "sis_id", "section"]]
    for entry in matched.entries:
        s = entry.student
        who = (s.id, s.name, s.email, s.sis_id, s.section) if s else ("", "", "", "", "")
        lines.append([*row_cells(lab, entry.row), *map(spreadsheet_safe, who)])
    return csv_text(lines)


# ----------------------------------------------------------------------------- feedback folders and merging


def read_feedback(folder: Path) -> dict[str, dict[str, Any]]:
    """The feedback JSON reports of a folder (``NAME.json``, written by ``dlkit grade``), by submission name.
    Links and anything but regular files are skipped; so is a file that is not a dlkit report."""
    found: dict[str, dict[str, Any]] = {}
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            try:
                report = json.loads(_read_regular(Path(entry.path), MAX_FEEDBACK_BYTES).decode("utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(report, dict) and isinstance(report.get("tasks"), list) and "score" in report:
                found[entry.name.removesuffix(".json")] = report
    return found


def merge(folders: Sequence[Path], lab: Lab) -> dict[str, dict[str, Any]]:
    """The reports of several shards' feedback folders, joined; ValueError when two shards graded the
    same submission differently or a report is of another lab."""
    merged: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    for folder in folders:
        for name, report in read_feedback(folder).items():
            if report.get("lab") != lab.name:
                raise ValueError(f"{folder / (name + '.json')} is a report of {report.get('lab')}, not {lab.name}")
            if name in merged and merged[name].get("fingerprint") != report.get("fingerprint"):
                raise ValueError(f"'{name}' was graded in both {origin[name]} and {folder}, differently: "
                                 "grade it again in one shard")
            merged[name] = report
            origin[name] = folder
    return merged
