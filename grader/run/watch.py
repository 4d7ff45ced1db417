"""Watch mode: a warm grader that regrades a submission each time the student saves it.

``Watcher`` loads once what every run needs (PyTorch, Hypothesis, the lab's declaration and
reference, a zygote with the worker code and NumPy/PyTorch imported), then polls the lab's
files (their modification times every ``POLL_SECONDS`` seconds, their contents when a time
moved: standard library only, no inotify). On a change it grades first the tasks whose code
changed (``changed_tasks``: a task's function, or a top-level name it reaches, differs from
the last run's), then the rest. Every version of the module runs in a worker of its own,
forked from the zygote: a worker that ran one version's code is never given another.
"""

from __future__ import annotations

import ast
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from grader.declare.spec import Lab, Task
from grader.run.engine import PROFILES, Budget, Oracle, collect, read_submission, unread, worker_config
from grader.run.results import LabResult, TaskResult
from grader.sandbox.host import Limits, Sandbox, WorkerUsers, ZygoteLauncher, end_strays
from grader.sandbox.intake import BadSubmission

POLL_SECONDS = 0.2


def definitions(source: str) -> dict[str, tuple[str, frozenset[str]]] | None:
    """Each top-level name the module binds, with a digest of the statements that bind it (their syntax
    tree, so that moving a function or editing a comment changes nothing) and the module-level names
    those statements read. Statements that bind no name go under "" (they may affect every task).
    None when the source does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    parts: dict[str, list[str]] = {}
    reads: dict[str, set[str]] = {}
    for statement in tree.body:
        dump = ast.dump(statement)
        used = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        for name in _bound_names(statement) or [""]:
            parts.setdefault(name, []).append(dump)
            reads.setdefault(name, set()).update(used)
    return {name: (hashlib.sha256("\n".join(dumps).encode()).hexdigest(), frozenset(reads[name]))
            for name, dumps in parts.items()}


def _bound_names(statement: ast.stmt) -> list[str]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [statement.name]
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return [(alias.asname or alias.name).split(".")[0] for alias in statement.names]
    targets = statement.targets if isinstance(statement, ast.Assign) else \
        [statement.target] if isinstance(statement, (ast.AnnAssign, ast.AugAssign)) else []
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def changed_tasks(lab: Lab, before: str | None, after: str) -> list[Task]:
    """The tasks whose code differs between two versions of the module: the task's function, or any
    top-level definition it reaches through the names it reads (a helper, a constant, an import), or a
    statement that binds no name. Every task when either version does not parse."""
    old, new = definitions(before) if before is not None else None, definitions(after)
    if old is None or new is None or old.get("") != new.get(""):
        return list(lab.tasks)
    differs = {name for name in set(old) | set(new) if old.get(name, ("",))[0] != new.get(name, ("",))[0]}
    return [task for task in lab.tasks if _reach(task.function, new, old) & differs]


def _reach(function: str, *versions: dict[str, tuple[str, frozenset[str]]]) -> set[str]:
    """The top-level names a function reads, directly or through the definitions it reads, in any version."""
    seen: set[str] = set()
    todo = [function]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for version in versions:
            if name in version:
                todo.extend(version[name][1] - seen)
    return seen


@dataclass(frozen=True)
class Run:
    """One report of watch mode: ``part`` is "changed" (the changed tasks alone) or "lab" (every task)."""

    part: str
    result: LabResult
    changed: tuple[str, ...]


class Watcher:
    """A warm grader for one submission folder of one lab."""

    def __init__(self, lab: Lab, submission: Path, *, seed: int, budget: Budget = PROFILES["default"],
                 limits: Limits | None = None, users: WorkerUsers | None = None):
        self.lab, self.submission, self.seed, self.budget = lab, submission, seed, budget
        self.limits = limits or Limits()
        self.launcher = ZygoteLauncher(lab.kind, users, meta=lab.meta)
        self.launcher.start()  # NumPy/PyTorch and the worker code load there while the oracles load here
        self.oracle = Oracle.load(lab)
        self.config = worker_config(lab)  # imports PyTorch where the lab has CUDA checks
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._digest: str | None = None
        self._source: str | None = None

    def close(self) -> None:
        self.launcher.close(wait=False)
        end_strays()

    # -- noticing a save ----------------------------------------------------------------

    def _stamps(self) -> tuple[tuple[str, int, int], ...]:
        folder = self.submission / self.lab.name
        try:
            return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in folder.iterdir()
                                if e.is_file()))
        except OSError:
            return ()

    def changed(self) -> bool:
        """Whether the lab's files differ from those of the last run (their contents, not only their times)."""
        stamp = self._stamps()
        if stamp == self._stamp:
            return False
        try:
            digest = read_submission(self.lab, self.submission).digest()
        except BadSubmission as bad:
            digest = f"{bad.status}:{bad.reason}"
        if digest != self._digest:
            return True
        self._stamp = stamp  # touched, or saved unchanged: nothing to grade
        return False

    def wait(self, stop: Callable[[], bool] = lambda: False) -> bool:
        """Poll until the files change (True) or ``stop`` says so (False)."""
        while not stop():
            if self.changed():
                return True
            time.sleep(POLL_SECONDS)
        return False

    # -- grading a version ----------------------------------------------------------------

    def runs(self) -> Iterator[Run]:
        """The reports of the current version: on the first run the whole lab's; after a save, first the
        changed tasks' (when some tasks did not change), then the whole lab's. Stops early, with no
        report, when the files change again during the run."""
        self._stamp = self._stamps()
        try:
            files = read_submission(self.lab, self.submission)
        except BadSubmission as bad:
            self._digest = f"{bad.status}:{bad.reason}"
            yield Run("lab", unread(self.lab, self.submission, self.seed, self.lab.tasks, bad), ())
            return
        self._digest = files.digest()
        source = files.files.get(self.lab.filename, b"").decode("utf-8", "replace")
        first = self._source is None
        changed = changed_tasks(self.lab, self._source, source)
        if definitions(source) is not None:  # a version that does not parse is no base to compare the next one to
            self._source = source
        rest = [t for t in self.lab.tasks if t not in changed]
        names = () if first else tuple(t.name for t in changed)  # the first run compares with nothing
        with Sandbox(files, self.config, self.limits, self.launcher) as sandbox:  # this version's own worker
            sandbox.start()
            if first or not rest or not changed:
                yield Run("lab", self._grade(sandbox, self.lab.tasks, []), names)
                return
            early = self._grade(sandbox, changed, [])
            yield Run("changed", early, names)
            if self.changed():
                return
            yield Run("lab", self._grade(sandbox, rest, list(early.tasks)), names)

    def _grade(self, sandbox: Sandbox, tasks: Sequence[Task], earlier: list[TaskResult]) -> LabResult:
        """``tasks`` graded in ``sandbox``, reported with the results of ``earlier`` tasks of the same version."""
        results = earlier + self.oracle.grade(tasks, sandbox, self.seed, self.budget)
        selected = [t for t in self.lab.tasks if t.name in {r.name for r in results}]
        try:
            return collect(self.lab, self.submission, self.seed, selected, results,
                           sandbox.import_failure is not None, sandbox.layers)
        finally:
            end_strays()

