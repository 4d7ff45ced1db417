"""An nbgrader course made from the kit: a configuration and one source notebook per lab.

The notebook of a lab is derived, like the stubs, from the lab's declaration, its handout
(``assignments/labN/README.md``) and its reference module (``solutions/labN/<module>.py``):

1. the handout, one markdown cell per section;
2. the module's imports and constants, in a locked cell;
3. for every public function, a solution cell (signature and docstring visible, the body
   between ``### BEGIN SOLUTION`` / ``### END SOLUTION``; the private helpers it is the first
   to use go inside the same region), and for every task a locked test cell after it
   (``grader.export.notebook``), worth the task's points, with the reference-based grading between
   ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``.

Nothing here imports nbgrader: writing a course needs only the kit.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from grader.export.notebook import MARKER
from grader.declare.spec import Lab
from grader.run.seeds import write_secret
from grader.export.stubs import solution_path
from grader.report.render import as_points

SCHEMA_VERSION = 3  # nbgrader's cell metadata schema
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
BANNER = re.compile(r"^# -{10,}$")


@dataclass(frozen=True)
class Cell:
    """One notebook cell: its kind, source and nbgrader role."""

    kind: str  # "markdown" or "code"
    source: str
    grade_id: str = ""
    role: str = ""  # "" (plain), "locked", "solution", "test"
    points: float = 0

    def to_json(self) -> dict[str, Any]:
        cell: dict[str, Any] = {"cell_type": self.kind, "id": self.grade_id or _cell_id(self.source),
                                "metadata": {}, "source": self.source}
        if self.kind == "code":
            cell.update(execution_count=None, outputs=[])
        if self.role:
            cell["metadata"]["nbgrader"] = {
                "grade": self.role == "test", "grade_id": self.grade_id, "locked": self.role in ("locked", "test"),
                "schema_version": SCHEMA_VERSION, "solution": self.role == "solution", "task": False,
            }
            if self.role == "test":
                cell["metadata"]["nbgrader"]["points"] = self.points
        if self.role in ("locked", "test"):
            cell["metadata"].update(deletable=False, editable=False)
        return cell


def _cell_id(source: str) -> str:
    import hashlib

    return "c" + hashlib.sha1(source.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- the module, cut into cells


@dataclass(frozen=True)
class Function:
    """A public function of the reference module, as its solution cell shows it."""

    name: str
    head: str  # leading comments, decorators, signature and docstring: what the release shows
    body: str  # the body after the docstring: the solution
    helpers: tuple[str, ...]  # the private helpers this function is the first to use (their source)
    section: str  # the banner title above it, "" if none


@dataclass(frozen=True)
class Module:
    preamble: str  # docstring, imports and constants: everything but the functions
    functions: tuple[Function, ...]


def split_module(source: str) -> Module:
    """Cut a lab module into its preamble and its public functions, each with the helpers it needs first."""
    tree = ast.parse(source)
    lines = source.splitlines()
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    private = {n.name: n for n in defs if n.name.startswith("_")}
    public = [n for n in defs if not n.name.startswith("_")]
    uses = {n.name: {m.id for m in ast.walk(n) if isinstance(m, ast.Name)} & set(private) for n in defs}

    def needs(name: str) -> list[str]:
        """Private helpers reachable from ``name``, in module order."""
        seen: set[str] = set()
        todo = list(uses[name])
        while todo:
            helper = todo.pop()
            if helper not in seen:
                seen.add(helper)
                todo += uses[helper]
        return [h for h in private if h in seen]

    placed: set[str] = set()
    functions = []
    for i, node in enumerate(public):
        mine = [h for h in needs(node.name) if h not in placed]
        if i == len(public) - 1:  # helpers nobody uses still belong to the solution
            mine += [h for h in private if h not in placed and h not in mine]
        placed.update(mine)
        first = _first_line(node, lines)
        head, body = _head_and_body(node, lines, first)
        helpers = tuple("\n".join(lines[_first_line(private[h], lines):private[h].end_lineno]) for h in mine)
        functions.append(Function(node.name, head, body, helpers, _section(lines, first)))
    taken = {i for node in defs
             for i in range(_first_line(node, lines), node.end_lineno)}  # type: ignore[arg-type]
    preamble = "\n".join(line for i, line in enumerate(lines) if i not in taken and not BANNER.match(line)
                         and not _is_banner_title(lines, i))
    return Module(_squeeze(preamble), tuple(functions))


def _head_and_body(node: ast.FunctionDef, lines: list[str], first: int) -> tuple[str, str]:
    """What the release shows of a function (through its docstring) and what it hides (the rest)."""
    if node.body[0].lineno == node.lineno:
        raise ValueError(f"{node.name}: write the body on lines of its own, not after the colon")
    has_doc = ast.get_docstring(node) is not None
    split = node.body[0].end_lineno if has_doc else node.body[0].lineno - 1  # 1-based last line of the head
    assert split is not None and node.end_lineno is not None
    return "\n".join(lines[first:split]), "\n".join(lines[split:node.end_lineno]).strip("\n")


def _first_line(node: ast.FunctionDef, lines: list[str]) -> int:
    """0-based first line of a function: its decorators and the comments right above it."""
    first = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
    while first > 0 and lines[first - 1].lstrip().startswith("#") and not BANNER.match(lines[first - 1].strip()):
        first -= 1
    return first


def _is_banner_title(lines: list[str], i: int) -> bool:
    return 0 < i < len(lines) - 1 and bool(BANNER.match(lines[i - 1])) and bool(BANNER.match(lines[i + 1]))


def _section(lines: list[str], first: int) -> str:
    """The title of the banner comment (# ---- / # Title / # ----) closest above line ``first``."""
    for i in range(first - 1, 0, -1):
        if _is_banner_title(lines, i):
            return lines[i].lstrip("# ").strip()
    return ""


def _squeeze(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n\n", text).strip() + "\n"


def solution_source(function: Function) -> str:
    """A solution cell: the head as the release shows it, the body and its helpers inside the solution region."""
    indent = re.match(r"\s*", function.body).group(0) if function.body.strip() else "    "  # type: ignore[union-attr]
    parts = [function.head, f"{indent}### BEGIN SOLUTION", function.body.rstrip()]
    for helper in function.helpers:
        parts += ["", "", helper.rstrip()]
    parts.append(f"{indent}### END SOLUTION")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- the notebook


def checking_cell(lab: Lab, task: str, points: float, seed: int) -> str:
    """A test cell: the checks that need no reference where students see them, the full grading hidden."""
    return "\n".join([
        f"{MARKER}: {lab.name}.{task}, {as_points(points)} points. Locked: nbgrader restores it before grading.",
        "from grader.export.notebook import check_task",
        f'check_task("{lab.name}", "{task}")  # the checks that need no reference solution',
        "### BEGIN HIDDEN TESTS",
        f'check_task("{lab.name}", "{task}", seed={seed}, reference=True)  # every check, as `dlkit check` runs them',
        "### END HIDDEN TESTS",
    ])


def handout_cells(handout: str, lab: Lab) -> list[Cell]:
    """The handout, one markdown cell per section (split at level-2 headings outside code blocks)."""
    sections: list[list[str]] = [[]]
    fenced = False
    for line in handout.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if line.startswith("## ") and not fenced and any(s.strip() for s in sections[-1]):
            sections.append([])
        sections[-1].append(line)
    cells = [Cell("markdown", notebook_text("\n".join(s)).strip().removesuffix("---").strip()) for s in sections
             if any(x.strip() for x in s)]
    note = (f"**This is the notebook edition of {lab.name}.** Write each function in its cell below, where the "
            f"handout says `{lab.path}`. The cell after each function runs the same checks as "
            f"`dlkit check {lab.name} TASK` on the code of this notebook (its imports, functions, classes and "
            "assignments; calls and prints are left out) and shows the same messages. When you submit, the "
            "same checks also compare your code with the reference solution.")
    return cells[:1] + [Cell("markdown", note)] + cells[1:]


ROOT_SENTENCE = re.compile(r"(?:\*\*Run the grader\.\*\* From the repository root:|Run the grader from the repository root:)")


def notebook_text(section: str) -> str:
    """A handout section as the notebook edition says it: the repository edition's "run dlkit check from the
    repository root" and its command block become "run the test cell after each function"."""
    out: list[str] = []
    lines = section.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].lstrip().startswith("```")), len(lines) - 1)
            body = [x for x in lines[i + 1:end] if x.strip()]
            if not (body and all(x.lstrip().startswith("dlkit check") for x in body)):
                out += lines[i:end + 1]
            i = end + 1
            continue
        out.append(ROOT_SENTENCE.sub("In this notebook, run the test cell after each function: it runs the same "
                                     "checks as `dlkit check` on the code of this notebook.", line))
        i += 1
    return "\n".join(out)


def source_notebook(lab: Lab, module_source: str, handout: str, seed: int) -> dict[str, Any]:
    """The nbgrader source notebook of a lab: the instructor's version, solutions and hidden tests included."""
    module = split_module(module_source)
    points = {t.function: t for t in lab.tasks}
    missing = [t.name for t in lab.tasks if t.function not in {f.name for f in module.functions}]
    if missing:
        raise ValueError(f"{lab.name}: the module has no function for the tasks {', '.join(missing)}")
    cells = handout_cells(handout, lab) if handout.strip() else [Cell("markdown", f"# {lab.name}: {lab.title}")]
    cells.append(Cell("markdown", "## Your code\n\nThe module's imports and constants (locked: they are part of "
                                  "what is graded)."))
    cells.append(Cell("code", module.preamble.rstrip(), "setup", "locked"))
    section = ""
    for function in module.functions:
        if function.section and function.section != section:
            section = function.section
            cells.append(Cell("markdown", f"## {section}"))
        task = points.get(function.name)
        title = f"### `{function.name}`" + (f" ({as_points(task.points)} points)" if task else "")
        cells.append(Cell("markdown", title + ("" if task else "\n\nUsed by the tasks; it has no test of its own.")))
        cells.append(Cell("code", solution_source(function), f"solution_{function.name}", "solution"))
        if task:
            cells.append(Cell("code", checking_cell(lab, task.name, task.points, seed), f"test_{task.name}", "test",
                              task.points))
    return {
        "cells": [c.to_json() for c in cells],
        "metadata": {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def solution_cells(lab: Lab, module_source: str) -> dict[str, str]:
    """The code of each solution cell of a lab's notebook written from ``module_source``, without
    the solution markers: what a student who wrote that module would have in each cell."""
    markers = ("### BEGIN SOLUTION", "### END SOLUTION")
    return {f"solution_{function.name}": "\n".join(line for line in solution_source(function).splitlines()
                                                   if line.strip() not in markers)
            for function in split_module(module_source).functions}



# ----------------------------------------------------------------------------- the course


KIT_CONFIG = "dlkit_config.py"  # the settings the kit owns; rewritten by every `dlkit nbgrader course`
INCLUDE = f"load_subconfig({KIT_CONFIG!r})"


def instructor_config_source() -> str:
    """The course's nbgrader_config.py, written once and then the instructor's: it includes the kit's settings
    first, so that whatever follows overrides them."""
    return f'''"""nbgrader configuration of this course: yours to edit. `dlkit nbgrader course` never rewrites it.

Run nbgrader from this folder (it reads this file from the working directory). The settings dlkit needs
live in {KIT_CONFIG}, which dlkit rewrites when you add a lab or regenerate the course; the line below
includes them, and anything you set after it overrides them (c.Exchange.root, c.CourseDirectory.course_id...).
"""

c = get_config()  # noqa: F821 - nbgrader defines get_config when it reads this file
{INCLUDE}  # noqa: F821 - the kit's settings (nbgrader defines load_subconfig)

# Your settings below, for example:
# c.Exchange.root = "/srv/nbgrader/exchange"
'''


def config_source(course_id: str, timeout: int) -> str:
    """The kit's settings (dlkit_config.py): headless, SQLite gradebook, test cells graded outside the kernel."""
    return f'''"""The settings dlkit needs in this nbgrader course, written by `dlkit nbgrader course`: do not edit,
it is rewritten each time; put your own settings in nbgrader_config.py (which includes this file).
"""

import os

c = get_config()  # noqa: F821 - nbgrader defines get_config when it reads this file

HERE = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = HERE
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")

# Headless execution: the ipykernel kernel of the Python that runs nbgrader.
c.ExecutePreprocessor.kernel_name = "python3"
c.Execute.timeout = {timeout}  # seconds per cell
c.Execute.interrupt_on_timeout = True
# A cell whose code swallows the interrupt times out (and so does every cell after it in that kernel):
# the notebook is still graded instead of failing that student's autograde.
c.Execute.raise_on_iopub_timeout = False
# A test cell the student deleted is put back and graded.
c.OverwriteCells.add_missing_cells = True

# The test cells are graded in nbgrader's own process after the notebook has run, from the notebook's
# code cells, with the reference solutions (grader.export.nbgrader_autograde.GradeTestCells): nothing a notebook
# does in its kernel can change a score, and a kernel never holds the reference. The kernel learns from
# this variable that its own test cells need not grade during `nbgrader autograde`.
os.environ["DLKIT_NBGRADER"] = "graded-outside-kernel"
# The feedback pages name each test cell by its task (nbgrader's own template says "Test cell" for all).
try:
    from grader.export.nbgrader_autograde import FEEDBACK_TEMPLATE, feedback_templates

    c.HTMLExporter.template_name = FEEDBACK_TEMPLATE
    c.HTMLExporter.extra_template_basedirs = feedback_templates(HERE)
except ImportError:  # nbgrader is not installed where this file is read
    pass
# Each student's notebook is graded with its own official seed, from this course's secret (written once by
# `dlkit nbgrader course`, readable by you only; never released), the student's id and their code: the
# seed in a test cell is then unused, and the feedback shows a replay token instead of a seed.
if os.path.exists(os.path.join(HERE, "dlkit_secret")):
    c.GradeTestCells.secret_file = os.path.join(HERE, "dlkit_secret")
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute",
    "grader.export.nbgrader_autograde.GradeTestCells",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
'''


def write_course(root: Path, repo: Path, course_labs: Sequence[Lab], *, course_id: str, seed: int,
                 timeout: int, force: bool = False) -> tuple[list[Path], list[Path]]:
    """Write the kit's ``dlkit_config.py`` (always), ``nbgrader_config.py`` (when absent: then it is the
    instructor's) and ``source/LAB/LAB.ipynb`` for each lab (when absent, or with ``force``) under ``root``;
    return the files written and the notebooks left as they were."""
    written, kept = [], []
    root.mkdir(parents=True, exist_ok=True)
    (root / KIT_CONFIG).write_text(config_source(course_id, timeout), encoding="utf-8")
    written.append(root / KIT_CONFIG)
    config = root / "nbgrader_config.py"
    if not config.exists():
        config.write_text(instructor_config_source(), encoding="utf-8")
        written.append(config)
    if not (root / "dlkit_secret").exists():
        write_secret(root / "dlkit_secret")
        written.append(root / "dlkit_secret")
    for lab in course_labs:
        target = root / "source" / lab.name / f"{lab.name}.ipynb"
        if target.exists() and not force:
            kept.append(target)
            continue
        handout_path = repo / "assignments" / lab.name / "README.md"
        handout = handout_path.read_text(encoding="utf-8") if handout_path.is_file() else ""
        notebook = source_notebook(lab, solution_path(repo, lab).read_text(encoding="utf-8"), handout, seed)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written, kept


def includes_kit_config(config: Path) -> bool:
    """Whether an nbgrader_config.py loads the kit's settings."""
    try:
        return KIT_CONFIG in config.read_text(encoding="utf-8")
    except OSError:
        return False
