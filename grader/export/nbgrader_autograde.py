"""dlkit's stages in nbgrader's pipelines (nbgrader itself is imported here, and only here).

- ``GradeTestCells`` runs in ``nbgrader autograde`` right after the notebook has been executed
  (the course's ``nbgrader_config.py`` puts it there). It grades the notebook's code in
  nbgrader's own process, as ``dlkit check`` grades a module, and writes each dlkit test
  cell's outputs from that result, replacing whatever the kernel printed. The student's code
  runs in the worker process only; the kernel, where a notebook's cells run with the
  instructor's files in reach, decides nothing.
- ``TaskCsvExport`` is an ``nbgrader export`` plugin: one row per student, assignment and task.
- ``feedback_templates`` gives ``nbgrader generate_feedback`` nbgrader's own feedback template with one
  change: its summary names each test cell by its task ("conv2d_forward"), where nbgrader writes "Test cell"
  for every one. The course's ``dlkit_config.py`` points ``HTMLExporter`` at it.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode, from_dict
from traitlets import Unicode

from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin
from nbgrader.preprocessors import NbGraderPreprocessor

from grader import REPO, labs
from grader.export.batch import spreadsheet_safe
from grader.export.notebook import (Verdict, explain_unparsable, grade_module, graded_module, notebook_cells,
                                    read_test_cell, unparsable)
from grader.run.seeds import official, read_secret
from grader.report.render import as_points


class GradeTestCells(NbGraderPreprocessor):
    """Grade a notebook's dlkit test cells from its code cells, outside the kernel, and set their outputs."""

    profile = Unicode("", help="Hypothesis budget: default, ci or thorough (empty: $DLKIT_PROFILE or default)."
                      ).tag(config=True)
    solutions = Unicode("", help="Folder of the reference solutions (empty: the kit's solutions/).").tag(config=True)
    secret_file = Unicode("", help="The instructor secret official seeds come from (grader.seeds; empty: the seed "
                                   "each test cell names).").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        # Test cells: grade cells (restored from the gradebook by OverwriteCells) that call check_task.
        tests: dict[int, tuple[str, str, int]] = {}
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
                call = read_test_cell(cell.source)
                if call is not None:
                    tests[index] = (call[0], call[1], 0 if call[2] is None else call[2])
        if not tests:
            return nb, resources
        cells = notebook_cells(nb)
        module = graded_module(cells)
        broken = unparsable(cells)  # a cell with a syntax error: "this cell does not parse", not a missing function
        solutions = Path(self.solutions) if self.solutions else REPO / "solutions"
        secret = read_secret(Path(self.secret_file)) if self.secret_file else None
        verdicts: dict[tuple[str, str], Verdict] = {}
        for lab_name, cell_seed in sorted({(lab, seed) for lab, _, seed in tests.values()}):
            lab = labs.load(lab_name)
            seed, token = cell_seed, None
            if secret is not None:  # the student's own seed, from the secret, their id and their code
                student = str(resources.get("nbgrader", {}).get("student", "") or "notebook")
                chosen = official(secret, lab.name, student, hashlib.sha256(module.encode()).hexdigest())
                seed, token = chosen.seed, chosen.token
            reference = solutions / lab.path
            if not reference.is_file():
                raise RuntimeError(f"cannot grade {lab.name}: no reference solution at {reference}")
            wanted = tuple(dict.fromkeys(t for l, t, s in tests.values() if l == lab_name and s == cell_seed))
            self.log.info("dlkit: grading %s of %s (%s) outside the kernel", ", ".join(wanted), lab.name,
                          f"official seed, token {token}" if token else f"seed {seed}")
            result = grade_module(lab, module, wanted, seed, solutions=solutions, profile=self.profile or None)
            for graded in explain_unparsable(lab, result.tasks, broken):
                verdicts[(lab_name, graded.name)] = Verdict(graded, seed, token)
        for index, (lab_name, task_name, _) in tests.items():
            nb.cells[index].outputs = [from_dict(o) for o in verdicts[(lab_name, task_name)].outputs()]
        return nb, resources


class TaskCsvExport(ExportPlugin):
    """``nbgrader export --exporter grader.export.nbgrader_autograde.TaskCsvExport``: one row per student,
    assignment and autograded cell (for dlkit's notebooks: one per task), with its points."""

    def export(self, gradebook: Gradebook) -> None:
        destination = self.to or "grades_by_task.csv"
        self.log.info("Exporting grades by task to %s", destination)
        with open(destination, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["assignment", "student_id", "notebook", "task", "score", "max_score"])
            for assignment in gradebook.assignments:
                if self.assignment and assignment.name not in self.assignment:
                    continue
                for student in gradebook.students:
                    if self.student and student.id not in self.student:
                        continue
                    for notebook in assignment.notebooks:
                        for cell in notebook.grade_cells:
                            try:
                                grade = gradebook.find_grade(cell.name, notebook.name, assignment.name, student.id)
                                score = grade.score
                            except MissingEntry:
                                score = 0.0
                            task = cell.name.removeprefix("test_")
                            writer.writerow([spreadsheet_safe(assignment.name), spreadsheet_safe(student.id),
                                             spreadsheet_safe(notebook.name), spreadsheet_safe(task),
                                             as_points(score or 0.0), as_points(cell.max_score or 0.0)])



NBGRADER_TEMPLATES = Path(utils.__file__).resolve().parent / "server_extensions" / "formgrader" / "templates"
FEEDBACK_TEMPLATE = "dlkit_feedback"
TEST_CELL_LABEL = '">Test cell</a>'


def feedback_templates(course: str | Path) -> list[str]:
    """Write nbgrader's feedback template, its summary naming tasks, under ``course/.dlkit-templates``; return the
    template folders for ``HTMLExporter.extra_template_basedirs`` (ours first, then nbgrader's)."""
    base = Path(course) / ".dlkit-templates"
    target = base / FEEDBACK_TEMPLATE
    shutil.copytree(NBGRADER_TEMPLATES / "feedback", target, dirs_exist_ok=True)
    index = target / "index.html.j2"
    text = index.read_text(encoding="utf-8")
    index.write_text(text.replace(TEST_CELL_LABEL, '">{{ cell.metadata.nbgrader.grade_id | replace("test_", "", 1) }}'
                                                    "</a>"), encoding="utf-8")
    return [str(base), str(NBGRADER_TEMPLATES)]
