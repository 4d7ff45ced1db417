"""What a notebook's test cell calls: grade one task of the code written in the notebook.

A notebook is graded as the module its code cells make: ``graded_module`` keeps their
imports, function and class definitions and assignments, and leaves out everything
else (calls, prints, loops: a notebook's experiments). That module is written to a
temporary submission folder and graded like ``dlkit check`` grades a file: the student's
code runs only in the worker process, with its time and memory limits.

A test cell of a generated notebook reads::

    # dlkit test cell: lab3.conv2d_forward, 15 points (locked)
    from grader.export.notebook import check_task
    check_task("lab3", "conv2d_forward")
    ### BEGIN HIDDEN TESTS
    check_task("lab3", "conv2d_forward", seed=0, reference=True)
    ### END HIDDEN TESTS

``check_task`` returns the task's score when it earns points (nbgrader reads a number
as the cell's partial credit) and raises ``TaskFailed`` (an AssertionError) with the
same message as ``dlkit check`` when it earns none. Without ``reference`` it runs in
the kernel, with the checks that need no reference solution; with ``reference`` it runs
``dlkit check`` in a process of its own, so the reference solution never enters a kernel.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from grader import REPO, labs
from grader.sandbox import intake
from grader.run.results import LabResult, TaskResult
from grader.declare.spec import Lab
from grader.report.render import as_points

MARKER = "# dlkit test cell"  # first line of a generated test cell: such cells are not part of the graded module
KIT_PACKAGES = ("grader",)  # imported by test cells; the worker refuses them, so they are left out of the module
# Set by the course's nbgrader_config.py: nbgrader's own process grades the test cells after the notebook
# has run (grader.export.nbgrader_autograde), so during `nbgrader autograde` the kernel need not grade them.
GRADED_OUTSIDE = ("DLKIT_NBGRADER", "graded-outside-kernel")


class TaskFailed(AssertionError):
    """A task earned no points; the message is the one ``dlkit check`` prints for it."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback into the grader
        return [f"{type(self).__name__}: {self}"]


# ----------------------------------------------------------------------------- the graded module


def graded_module(cells: Iterable[str]) -> str:
    """The module a notebook's code cells make, as dlkit grades it.

    Cells are taken in order; a cell that appears twice counts once, at its last place;
    test cells and cells that do not parse are left out. From each cell it keeps imports
    (except of the kit's own ``grader``), function and class definitions, and assignments
    (an assignment that raises leaves its name unbound, as in the kernel); other top-level
    statements are the notebook's experiments and are left out. ``from __future__``
    imports move to the top.
    """
    sources = [c for c in cells if c.strip() and not is_test_cell(c)]
    latest = {source: i for i, source in enumerate(sources)}
    future: list[str] = []
    blocks: list[str] = []
    for i, source in enumerate(sources):
        if latest[source] != i:
            continue
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        lines = source.splitlines()
        texts = [t for t in (_kept_statement(node, lines) for node in tree.body) if t is not None]
        future += [t for t in texts if t.startswith("from __future__")]
        kept = [t for t in texts if not t.startswith("from __future__")]
        if kept:
            blocks.append("\n".join(kept))
    header = "# The notebook's code as dlkit grades it: imports, definitions and assignments.\n"
    return "\n".join(dict.fromkeys(future)) + ("\n" if future else "") + header + "\n\n".join(blocks) + "\n"


DEFINES = re.compile(r"^(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


def unparsable(cells: Iterable[str]) -> dict[str, str]:
    """For each function that a cell which does not parse tries to define: "this cell does not parse: line N: ..."
    (the graded module leaves such a cell out, so the function would otherwise just look missing). A later
    cell that parses and defines the function wins."""
    broken: dict[str, str] = {}
    for source in cells:
        if not source.strip() or is_test_cell(source):
            continue
        try:
            ast.parse(source)
        except SyntaxError as error:
            for name in DEFINES.findall(source):
                broken[name] = f"this cell does not parse: line {error.lineno}: {error.msg}"
            continue
        except ValueError:
            continue
        for name in DEFINES.findall(source):
            broken.pop(name, None)
    return broken


def explain_unparsable(lab: Lab, tasks: Sequence[TaskResult], broken: dict[str, str]) -> list[TaskResult]:
    """``tasks`` with each whose function's cell does not parse reported as such, not as missing."""
    return [TaskResult.unrun(t.name, t.max_score, "error", f"{t.name}: {broken[lab.task(t.name).function]}")
            if lab.task(t.name).function in broken and t.status != "passed" else t for t in tasks]


def is_test_cell(source: str) -> bool:
    return any(line.strip().startswith(MARKER) for line in source.splitlines())


def _kept_statement(node: ast.stmt, lines: list[str]) -> str | None:
    first = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
    text = "\n".join(lines[first - 1:node.end_lineno])
    if isinstance(node, ast.Import):
        names = [a for a in node.names if a.name.partition(".")[0] not in KIT_PACKAGES]
        if not names:
            return None
        return text if len(names) == len(node.names) else ast.unparse(ast.Import(names=names))
    if isinstance(node, ast.ImportFrom):
        return None if node.level == 0 and (node.module or "").partition(".")[0] in KIT_PACKAGES else text
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return text
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        body = "\n".join("    " + line for line in text.splitlines())
        return f"try:\n{body}\nexcept Exception:\n    pass"
    return None


def write_submission(lab: Lab, module: str, folder: Path) -> Path:
    """A submission folder laid out like ``assignments/`` holding ``module`` as the lab's file."""
    target = folder / lab.path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(module, encoding="utf-8")
    return folder


def kernel_cells() -> list[str]:
    """The code cells this IPython kernel has run, in order (as Python: magics already translated)."""
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None  # type: ignore[assignment]
    shell = get_ipython() if get_ipython is not None else None
    if shell is None:
        raise RuntimeError("check_task grades the code of a running notebook: call it from a notebook cell, "
                           "or grade a .py file with `dlkit check`")
    return [str(cell) for cell in shell.history_manager.input_hist_parsed if cell]


def notebook_cells(notebook: dict[str, Any]) -> list[str]:
    """The code cells of a notebook (nbformat 4, as a dict), in order, translated to Python; nbgrader's
    autograder test cells (grade cells that are not answers) are left out."""
    translate = _ipython_translator()
    cells = []
    for cell in notebook.get("cells", []):
        role = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or (role.get("grade") and not role.get("solution")):
            continue
        cells.append(translate(_text(cell.get("source", ""))))
    return cells


def notebook_lab(notebook: dict[str, Any]) -> tuple[str, str]:
    """The lab a dlkit notebook belongs to (named by its test cells) and the module it is graded as."""
    found = {call[0] for cell in notebook.get("cells", []) if cell.get("cell_type") == "code"
             for call in [read_test_cell(_text(cell.get("source", "")))] if call is not None}
    if len(found) != 1:
        raise ValueError("no dlkit test cell names its lab" if not found else f"test cells of several labs: {sorted(found)}")
    return found.pop(), graded_module(notebook_cells(notebook))


def read_test_cell(source: str) -> tuple[str, str, int | None] | None:
    """(lab, task, seed) of the last ``check_task(...)`` call in a test cell's source, or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    found = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name != "check_task" or len(node.args) < 2:
            continue
        args = [a.value for a in node.args[:2] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        seeds = [k.value.value for k in node.keywords
                 if k.arg == "seed" and isinstance(k.value, ast.Constant) and isinstance(k.value.value, int)]
        if len(args) == 2 and (found is None or node.lineno >= found[0]):
            found = (node.lineno, args[0], args[1], seeds[0] if seeds else None)
    return None if found is None else (found[1], found[2], found[3])


def _text(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def _ipython_translator() -> Callable[[str], str]:
    """IPython's own translation of magics (``%timeit``, ``!ls``) into Python, where IPython is installed."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return lambda source: source
    manager = TransformerManager()

    def translate(source: str) -> str:
        try:
            return str(manager.transform_cell(source))
        except Exception:  # noqa: BLE001 - a cell IPython cannot read is left as written (and may not parse)
            return source
    return translate


# ----------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdict:
    """One task's result, as a notebook cell shows it."""

    task: TaskResult
    seed: int
    token: str | None = None  # an official run's replay token, shown instead of the seed

    @property
    def earned(self) -> float:
        """Points for nbgrader: the task's score (full marks when no check could run here)."""
        return float(self.task.max_score if self.task.status == "skipped" else self.task.score)

    @property
    def passed(self) -> bool:
        return self.task.status in ("passed", "skipped")

    def text(self) -> str:
        """The task's lines of ``dlkit check``'s report, with its score and seed."""
        from grader.report.render import failure_lines

        head = f"{self.task.name}: {self.task.status}, {as_points(self.task.score)}/{as_points(self.task.max_score)} points"
        lines = [head] + [line for _, line in failure_lines(self.task)]
        if self.task.status == "skipped":
            lines.append(f"  {self.task.message}")
        lines.append(f"official run, replay token {self.token}" if self.token else f"seed {self.seed}")
        return "\n".join(lines)

    def conclude(self) -> float:
        """What the test cell does: return the points earned (printing what failed, if anything),
        or raise ``TaskFailed`` when there are none."""
        if not self.passed and self.earned == 0:
            raise TaskFailed(self.text())
        if not self.passed:
            print(self.text())
        return self.earned

    def outputs(self) -> list[dict[str, Any]]:
        """The nbformat outputs of a test cell that ran ``conclude``."""
        if not self.passed and self.earned == 0:
            message = self.text()
            return [{"output_type": "error", "ename": "TaskFailed", "evalue": message,
                     "traceback": [f"TaskFailed: {message}"]}]
        printed = [] if self.passed else [{"output_type": "stream", "name": "stdout", "text": self.text() + "\n"}]
        return printed + [{"output_type": "execute_result", "execution_count": None, "metadata": {},
                           "data": {"text/plain": repr(self.earned)}}]



# ----------------------------------------------------------------------------- grading


def check_task(lab: str, task: str, *, seed: int | None = None, reference: bool = False) -> float:
    """Grade one task of this notebook's code: the test cell of a generated notebook.

    Returns the points earned (a number: nbgrader's partial credit); raises ``TaskFailed``
    with ``dlkit check``'s message when the task earns none. Without ``reference``, the checks
    that need no reference solution run here; with it, every check runs in ``dlkit check``.
    """
    if os.environ.get("NBGRADER_EXECUTION") == "autograde" and os.environ.get(GRADED_OUTSIDE[0]) == GRADED_OUTSIDE[1]:
        # nbgrader's process grades this cell after the notebook has run and replaces this output;
        # nothing the kernel says counts, so it does no work (and no points, should that not happen).
        print(f"{task}: graded by dlkit outside the notebook kernel")
        return 0.0
    spec = _lab(lab, task)
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    cells = kernel_cells()
    module = graded_module(cells)
    with quiet():
        if reference:
            result = check_with_dlkit(spec, module, task, seed)
        else:
            result = grade_module(spec, module, (task,), seed, solutions=None).tasks[0]
    return Verdict(explain_unparsable(spec, [result], unparsable(cells))[0], seed).conclude()


def _lab(lab: str, task: str) -> Lab:
    if lab not in labs.MODULES:
        raise ValueError(f"unknown lab '{lab}'; the labs are: {', '.join(labs.names())}")
    spec = labs.load(lab)
    if task not in [t.name for t in spec.tasks]:
        raise ValueError(f"{lab} has no task '{task}'")
    return spec


def grade_module(lab: Lab, module: str, tasks: Sequence[str], seed: int, *, solutions: Path | None,
                 profile: str | None = None) -> LabResult:
    """Grade ``module`` (a lab's source text) in this process, its code in the worker, as ``dlkit check`` does."""
    from grader.run.engine import PROFILES, grade_lab

    use_private_hypothesis_home()
    budget = PROFILES[profile or os.environ.get("DLKIT_PROFILE", "default")]
    with tempfile.TemporaryDirectory(prefix="dlkit-notebook-") as folder:
        submission = write_submission(lab, module, Path(folder))
        return grade_lab(lab, submission, seed=seed, tasks=tasks, solutions=solutions, budget=budget, jobs=1)


def check_with_dlkit(lab: Lab, module: str, task: str, seed: int) -> TaskResult:
    """Every check of ``task``, the reference solution's included, by ``dlkit check`` in a process of its own."""
    reference = REPO / "solutions" / lab.path
    if not reference.is_file():
        raise RuntimeError(f"the hidden tests need the reference solutions ({reference} is missing): "
                           "they run where the course was generated")
    with tempfile.TemporaryDirectory(prefix="dlkit-notebook-") as folder:
        write_submission(lab, module, Path(folder))
        env = dict(os.environ, HYPOTHESIS_STORAGE_DIRECTORY=str(hypothesis_home()))
        proc = subprocess.run(
            [sys.executable, "-I", "-m", "cli", "check", lab.name, task, "--submission", folder, "--format", "json",
             "--seed", str(seed), "--profile", os.environ.get("DLKIT_PROFILE", "default")],
            capture_output=True, text=True, cwd=folder, env=env, stdin=subprocess.DEVNULL)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"dlkit check failed (status {proc.returncode}): {proc.stderr.strip()}")
    return TaskResult.from_json(json.loads(proc.stdout)["tasks"][0])


def hypothesis_home() -> Path:
    """Where Hypothesis keeps its files for dlkit's notebook grading: never in the graded folder."""
    return Path(tempfile.gettempdir()) / "dlkit-hypothesis"


def use_private_hypothesis_home() -> None:
    """Keep Hypothesis' ``.hypothesis/`` folder out of the working directory (a student's or nbgrader's)."""
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(hypothesis_home())


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Nothing reaches standard error while grading: nbgrader scores a cell 0 when it writes there.

    Warnings are ignored, and both ``sys.stderr`` and file descriptor 2 (where C libraries
    write, and which ipykernel forwards to the notebook) point elsewhere until the end.
    """
    saved_fd = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        with warnings.catch_warnings(action="ignore"), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        os.close(devnull)


def notebook_module(path: Path, lab: str) -> str | None:
    """The module a notebook is graded as, if it is ``LAB.ipynb`` or a dlkit notebook of ``lab``."""
    try:
        content = json.loads(intake.read_notebook(path).decode("utf-8"))
    except (intake.BadSubmission, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(content, dict):
        return None
    try:
        named, module = notebook_lab(content)
    except (ValueError, KeyError, TypeError, AttributeError):
        named, module = "", ""
    if named == lab:
        return module
    if not named and path.stem == lab:
        try:
            return graded_module(notebook_cells(content))
        except (KeyError, TypeError, AttributeError):
            return None
    return None
