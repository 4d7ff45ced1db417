"""Reading a submission: regular files only, reached through no link, within limits.

Everything the grader reads of a submission is read here, as the grader's own user (root,
on a course server or in Gradescope), before any worker exists. So nothing here may follow
a symbolic link (``lab3/conv.py -> ../../solutions/lab3/conv.py`` would hand the reference in
as the student's work; a link to ``/etc/shadow`` would leak it into the feedback; a link to
``/proc/self/mem`` would hang or crash the reader), open a FIFO or a device, or read without
a limit. Every path is opened one component at a time from a folder descriptor, with
``O_NOFOLLOW``, and checked with ``fstat`` on the opened descriptor (no race between the check
and the read). A submission that breaks a rule is ``BadSubmission``: its own row in a
gradebook (status ``bad_file``) with a one-line reason, never a crashed batch.

What is read: the ``.py`` files directly inside the lab's folder (the module and any helper
modules beside it); other files and sub-folders are not the grader's business and are skipped.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal

MAX_FILE_BYTES = 1024 * 1024  # one Python file
MAX_FILES = 64  # Python files in the lab's folder
MAX_NOTEBOOK_BYTES = 32 * 1024 * 1024
MAX_SCAN_ENTRIES = 20_000  # entries looked at when searching a submission for a misplaced module
MAX_SCAN_DEPTH = 8


class BadSubmission(Exception):
    """A submission the grader will not read: ``status`` (``bad_file``, ``missing_module``) and a reason."""

    def __init__(self, status: Literal["bad_file", "missing_module"], reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class LabFiles:
    """The Python files of one lab's folder, as read: file name -> contents."""

    files: dict[str, bytes]

    def digest(self) -> str:
        """A digest of the names and contents (what a cached grade is keyed on)."""
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return h.hexdigest()

    def write(self, folder: Path) -> None:
        """Write the files into ``folder`` (a fresh private folder of the grader's)."""
        for name, data in self.files.items():
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)


# ----------------------------------------------------------------------------- opening without following


_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))


def _kind(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def _mode(name: str | Path, parent: int | None = None) -> int:
    """The file type and mode bits of ``name`` itself (inside ``parent``; a link is not followed), or 0
    where it cannot be looked at."""
    try:
        return os.lstat(name, dir_fd=parent).st_mode
    except OSError:
        return 0


def _open_dir(name: str, shown: str, parent: int | None = None) -> int:
    """A descriptor of folder ``name`` (inside ``parent``), refusing a link or anything not a folder."""
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except FileNotFoundError:
        raise
    except OSError as error:
        mode = _mode(name, parent)
        if mode and not stat.S_ISDIR(mode):
            raise BadSubmission("bad_file", f"{shown} is {_kind(mode)}, not a folder") from None
        raise BadSubmission("bad_file", f"{shown} could not be opened: {error.strerror}") from None


def _read_file(name: str, shown: str, parent: int | None, limit: int) -> bytes:
    """The contents of regular file ``name`` (inside ``parent``), at most ``limit`` bytes."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=parent)
    except OSError as error:
        mode = _mode(name, parent)
        if mode and not stat.S_ISREG(mode):
            raise BadSubmission("bad_file", f"{shown} is {_kind(mode)}") from None
        raise BadSubmission("bad_file", f"{shown} could not be read: {error.strerror}") from None
    with os.fdopen(fd, "rb", buffering=0) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BadSubmission("bad_file", f"{shown} is {_kind(info.st_mode)}")
        if info.st_size > limit:
            raise BadSubmission("bad_file", f"{shown} is larger than {_size(limit)}")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise BadSubmission("bad_file", f"{shown} is larger than {_size(limit)}")
    return data


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def _open_path(root: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of folder ``root/parts...``: ``root`` as given (the instructor's or the student's
    own choice), every part below it refused if it is a link."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts):
            inner = _open_dir(part, "/".join(parts[:i + 1]), fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


# ----------------------------------------------------------------------------- a lab's files


def read_lab(submission: Path, lab: str, module: str) -> LabFiles:
    """The Python files of ``submission/lab/`` (which must hold ``module.py``), read safely.

    Raises ``BadSubmission``: ``missing_module`` when there is no ``lab/module.py`` (naming a
    misplaced copy where one is found), ``bad_file`` when an entry breaks a rule."""
    try:
        return read_below(submission, (lab,), module)
    except FileNotFoundError:  # (raised only by opening the folder: an unreadable file is BadSubmission)
        raise BadSubmission("missing_module", _missing(submission, lab, f"{module}.py")) from None
    except NotADirectoryError:
        raise BadSubmission("missing_module", f"the submission folder '{submission}' is not a folder") from None


def read_below(root: Path, parts: tuple[str, ...], module: str | None = None, shown: str = "") -> LabFiles:
    """The Python files directly inside ``root/parts...``, reached from ``root`` through no link, read
    safely; with ``module``, that file must be among them."""
    fd = _open_path(root, parts)
    try:
        return _read_python_files(fd, shown or "/".join(parts) or ".", f"{module}.py" if module else None)
    finally:
        os.close(fd)


def _read_python_files(folder: int, shown: str, required: str | None) -> LabFiles:
    names = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".py") and not entry.name.startswith("."):
                names.append(entry.name)
                if len(names) > MAX_FILES:
                    raise BadSubmission("bad_file", f"{shown} holds more than {MAX_FILES} Python files")
    if required is not None and required not in names:
        raise BadSubmission("missing_module", f"the submission has no file {shown}/{required}")
    files = {name: _read_file(name, f"{shown}/{name}", folder, MAX_FILE_BYTES) for name in sorted(names)}
    return LabFiles(files)


def _missing(submission: Path, lab: str, filename: str) -> str:
    missing = f"the submission has no file {lab}/{filename}"
    stray = [str(p.relative_to(submission)) for p in find(submission, filename)][:3]
    if stray:
        missing += f" (found {', '.join(stray)}: move it to {lab}/{filename})"
    return missing


def find(root: Path, filename: str) -> list[Path]:
    """Regular files named ``filename`` anywhere under ``root``, shallowest first, looking into no
    link and no hidden folder, within ``MAX_SCAN_ENTRIES`` entries and ``MAX_SCAN_DEPTH`` levels."""
    found = [path for path, is_file in _walk(root) if is_file and path.name == filename]
    return sorted(found, key=lambda p: (len(p.parts), str(p)))


def _walk(root: Path) -> Iterator[tuple[Path, bool]]:
    seen = 0
    level = [root]
    for _ in range(MAX_SCAN_DEPTH):
        below = []
        for folder in level:
            try:
                with os.scandir(folder) as entries:
                    listing = list(entries)
            except OSError:
                continue
            for entry in sorted(listing, key=lambda e: e.name):
                seen += 1
                if seen > MAX_SCAN_ENTRIES:
                    return
                if entry.name.startswith(".") or entry.name in ("__MACOSX", "__pycache__"):
                    continue
                try:
                    mode = entry.stat(follow_symlinks=False).st_mode
                except OSError:
                    continue
                path = Path(entry.path)
                if stat.S_ISDIR(mode):
                    below.append(path)
                elif stat.S_ISREG(mode):
                    yield path, True
        level = below


# ----------------------------------------------------------------------------- batches and uploads


def locate(root: Path, lab: str, module: str) -> tuple[Path, LabFiles]:
    """A lab's module wherever an upload put it (Gradescope, an LMS archive): the first of
    ``assignments/LAB/MODULE.py``, ``LAB/MODULE.py``, ``MODULE.py``, else the shallowest ``MODULE.py``
    anywhere (no link followed, no hidden or ``__MACOSX`` folder); returns its path and the Python
    files beside it, read safely. Raises ``BadSubmission`` (``missing_module``, ``bad_file``)."""
    filename = f"{module}.py"
    preferred = [("assignments", lab, filename), (lab, filename), (filename,)]
    candidates = find(root, filename)
    ranked = sorted(candidates, key=lambda p: next((i for i, parts in enumerate(preferred)
                                                    if p.relative_to(root).parts == parts), len(preferred)))
    if not ranked:
        for parts in preferred:  # a module that is a link or no regular file: say so, not "missing"
            mode = _mode(root.joinpath(*parts))
            if mode:
                raise BadSubmission("bad_file", f"{'/'.join(parts)} is {_kind(mode)}")
        raise BadSubmission("missing_module", f"the upload has no file {filename}")
    found = ranked[0]
    return found, read_below(root, found.parent.relative_to(root).parts, module)


@dataclass(frozen=True)
class Found:
    """A submission's module as discovered: its files, where it was, and what was done to find it ("" when
    it was where it belongs)."""

    files: LabFiles
    path: Path
    note: str = ""


def renamed(names: list[str], module: str) -> str | None:
    """The copy of ``MODULE.py`` a browser or a file manager renamed (``conv (1).py``, ``conv(2).py``,
    ``conv 2.py``), the highest number first; None when there is none."""
    pattern = re.compile(rf"^{re.escape(module)} ?\(?(\d{{1,3}})\)?\.py$")
    found = sorted(((int(m.group(1)), name) for name in names for m in [pattern.match(name)] if m), reverse=True)
    return found[0][1] if found else None


def discover(root: Path, lab: str, module: str,
             notebook: "Callable[[Path, str], str | None] | None" = None) -> Found:
    """A submission's module, by the same rules everywhere (``dlkit grade``, ``dlkit check --find-module``,
    ``dlkit gradescope collect``): ``LAB/MODULE.py``; else wherever ``locate`` finds ``MODULE.py``; else a
    renamed copy (``MODULE (1).py``, beside the other files) taken as ``MODULE.py``; else a notebook
    (``LAB.ipynb``, or the one whose dlkit test cells name LAB) whose code cells are graded as the module,
    as ``dlkit nbgrader extract`` writes it (``notebook(path, lab)``: the module a notebook is graded as,
    or None; given by the callers that know notebooks, ``grader.export.notebook.notebook_module``).
    The note says what was done, for the student's feedback.
    Raises ``BadSubmission`` when there is none of these (naming what was looked for)."""
    filename = f"{module}.py"
    for parts in (("assignments", lab), (lab,)):  # where it belongs: read as it is there, a link refused
        if os.path.lexists(root.joinpath(*parts, filename)):
            return Found(read_below(root, parts, module), root.joinpath(*parts, filename),
                         "" if parts == (lab,) else f"{'/'.join(parts)}/{filename} was graded as {lab}/{filename}")
    try:
        path, files = locate(root, lab, module)
        return Found(files, path, f"{path.relative_to(root)} was graded as {lab}/{filename}")
    except BadSubmission as bad:
        if bad.status != "missing_module":
            raise
    for path, _ in _walk(root):
        if path.suffix == ".py" and renamed([path.name], module):
            folder = path.parent.relative_to(root).parts
            files = read_below(root, folder)
            chosen = renamed(list(files.files), module)
            assert chosen is not None
            others = dict(files.files)
            others[filename] = others.pop(chosen)
            return Found(LabFiles(others), path.parent / chosen,
                         f"'{Path(*folder, chosen)}' was graded as {lab}/{filename} (the file was renamed, "
                         f"by a browser perhaps: name it {filename})")
    notebooks = sorted((p for p, _ in _walk(root) if p.suffix == ".ipynb"),  # (.ipynb_checkpoints is hidden)
                       key=lambda p: (p.stem != lab, len(p.parts), str(p)))
    for path in notebooks[:8]:
        source = notebook(path, lab) if notebook is not None else None
        if source is not None:
            return Found(LabFiles({filename: source.encode("utf-8")}), path,
                         f"the code cells of '{path.relative_to(root)}' were graded as {lab}/{filename} "
                         "(imports, definitions and assignments, as 'dlkit nbgrader extract' writes them)")
    raise BadSubmission("missing_module", f"the submission has no file {lab}/{filename} (and no file {filename} "
                        f"anywhere in it, no renamed copy such as '{module} (1).py', no notebook {lab}.ipynb)")


def submission_folders(root: Path) -> list[tuple[str, str]]:
    """The entries of a folder of submissions, by name: ``(name, problem)`` where ``problem`` is ""
    for a real sub-folder and a reason for an entry that is a link (or something else not a folder
    where a folder is expected). Hidden entries and plain files are not submissions."""
    found = []
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                found.append((entry.name, ""))
            elif stat.S_ISLNK(mode):
                found.append((entry.name, f"{entry.name} is a symbolic link, not a folder"))
    return found


def read_notebook(path: Path) -> bytes:
    """A notebook file, refused if it is a link or not a regular file, at most ``MAX_NOTEBOOK_BYTES``."""
    folder = _open_path(path.parent, ())
    try:
        return _read_file(path.name, path.name, folder, MAX_NOTEBOOK_BYTES)
    finally:
        os.close(folder)
