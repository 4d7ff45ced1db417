"""grader.export.nbgrader: the course it writes, and that course run through the real nbgrader.

The first half checks the generated notebooks of every registered lab (cheap). The second
half needs the nbgrader extra (``pip install -e '.[nbgrader]'``): it writes a course, runs
``nbgrader generate_assignment``, autogrades a handful of lab 3 submissions and exports
the grades, and compares them task by task with ``dlkit check`` on the same code.
"""

from __future__ import annotations

import ast
import copy
import csv
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from grader import labs
from grader.declare.context import GENERIC_IDS
from grader.export.nbgrader import solution_cells, source_notebook, split_module
from grader.export.notebook import graded_module, notebook_cells
from grader.export.stubs import solution_path
from tests.conftest import REPO, function_source, grade
from tests.mutants import collect, shown_words

LABS = labs.names()
AUTOGRADED = "lab3"  # the lab the nbgrader run grades (one course, one assignment, a handful of submissions)
COURSE_SEED = 0
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def _notebook(lab: str) -> dict[str, Any]:
    spec = labs.load(lab)
    handout = REPO / "assignments" / lab / "README.md"
    return source_notebook(spec, solution_path(REPO, spec).read_text(), handout.read_text() if handout.is_file() else "",
                           COURSE_SEED)


def _role(cell: dict[str, Any]) -> dict[str, Any]:
    return cell["metadata"].get("nbgrader", {})


# ----------------------------------------------------------------------------- the generated notebooks


@pytest.mark.parametrize("lab", LABS)
def test_every_task_has_a_solution_cell_and_a_locked_test_cell_worth_its_points(lab):
    spec = labs.load(lab)
    cells = {_role(c).get("grade_id"): c for c in _notebook(lab)["cells"] if _role(c)}
    for task in spec.tasks:
        solution, test = cells[f"solution_{task.function}"], cells[f"test_{task.name}"]
        assert _role(solution)["solution"] and not _role(solution)["grade"] and not _role(solution)["locked"]
        assert solution["source"].count(BEGIN) == solution["source"].count(END) == 1
        assert _role(test) | {"points": task.points} == _role(test) and _role(test)["grade"] and _role(test)["locked"]
        visible, hidden = test["source"].split("### BEGIN HIDDEN TESTS")
        assert f'check_task("{lab}", "{task.name}")' in visible and "reference=True" not in visible
        assert f'check_task("{lab}", "{task.name}", seed={COURSE_SEED}, reference=True)' in hidden
        assert hidden.rstrip().endswith("### END HIDDEN TESTS")
    assert sum(_role(c).get("points", 0) for c in cells.values()) == spec.max_score
    assert _role(cells["setup"])["locked"]


@pytest.mark.parametrize("lab", LABS)
def test_the_notebook_holds_exactly_the_reference_module(lab):
    """Graded as dlkit grades a notebook, the source notebook is the reference module, function for function."""
    reference = ast.parse(solution_path(REPO, labs.load(lab)).read_text())
    graded = ast.parse(graded_module(notebook_cells(_notebook(lab))))

    def functions(tree: ast.Module) -> dict[str, str]:
        return {n.name: ast.dump(n) for n in tree.body if isinstance(n, ast.FunctionDef)}

    assert functions(graded) == functions(reference)


@pytest.mark.parametrize("lab", LABS)
def test_the_notebook_is_valid_nbformat(lab):
    nbformat = pytest.importorskip("nbformat", reason="nbformat comes with the nbgrader extra")
    nbformat.validate(nbformat.from_dict(_notebook(lab)))


def test_a_private_helper_goes_with_the_first_function_that_needs_it():
    module = split_module("import math\n\n\ndef a(x):\n    return _h(x)\n\n\ndef b(x):\n    return _h(x) + _g(x)\n\n\n"
                          "def _g(x):\n    return x\n\n\ndef _h(x):\n    return math.floor(x)\n")
    first, second = module.functions
    assert [h.split("(")[0] for h in first.helpers] == ["def _h"] and [h.split("(")[0] for h in second.helpers] == ["def _g"]
    assert module.preamble.strip() == "import math"


# ----------------------------------------------------------------------------- the command


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("command", [["nbgrader"], ["nbgrader", "course"], ["nbgrader", "extract"]])
def test_nbgrader_commands_have_help(command):
    result = _cli(*command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_course_writes_the_kits_config_the_instructors_config_and_a_notebook_per_lab(tmp_path):
    result = _cli("nbgrader", "course", str(tmp_path / "course"), AUTOGRADED, "--seed", "7", "--timeout", "60")
    assert result.exit_code == 0, result.output
    config = (tmp_path / "course" / "dlkit_config.py").read_text()
    for setting in ('c.CourseDirectory.course_id = \'dlkit\'', "sqlite:///", 'kernel_name = "python3"',
                    "c.Execute.timeout = 60", "raise_on_iopub_timeout = False", "grader.export.nbgrader_autograde.GradeTestCells"):
        assert setting in config
    assert "load_subconfig('dlkit_config.py')" in (tmp_path / "course" / "nbgrader_config.py").read_text()
    notebook = json.loads((tmp_path / "course" / "source" / AUTOGRADED / f"{AUTOGRADED}.ipynb").read_text())
    assert any("seed=7, reference=True" in c["source"] for c in notebook["cells"])


def test_the_instructors_config_survives_and_a_lab_is_added_without_force(tmp_path):
    course = tmp_path / "course"
    assert _cli("nbgrader", "course", str(course), "lab1").exit_code == 0
    with open(course / "nbgrader_config.py", "a") as config:
        config.write('c.Exchange.root = "/srv/exchange"\n')
    (course / "source" / "lab1" / "lab1.ipynb").write_text("{}")  # the instructor's edits to a notebook
    added = _cli("nbgrader", "course", str(course), "lab1", AUTOGRADED)
    assert added.exit_code == 0, added.output
    assert f"wrote {course / 'source' / AUTOGRADED / (AUTOGRADED + '.ipynb')}" in added.output
    assert "kept" in added.output and (course / "source" / "lab1" / "lab1.ipynb").read_text() == "{}"
    assert 'c.Exchange.root = "/srv/exchange"' in (course / "nbgrader_config.py").read_text()
    from traitlets.config.loader import PyFileConfigLoader

    loaded = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    assert loaded.Exchange.root == "/srv/exchange" and loaded.CourseDirectory.course_id == "dlkit"
    assert _cli("nbgrader", "course", str(course), "lab1", "--force").exit_code == 0
    assert (course / "source" / "lab1" / "lab1.ipynb").read_text() != "{}"


def test_a_cell_that_does_not_parse_is_named_in_its_task_not_reported_missing():
    from grader.export.notebook import explain_unparsable, unparsable

    lab = labs.load("lab1")
    cells = [(REPO / "solutions" / "lab1" / "backprop.py").read_text().replace(
        "def predict(X", "def predict_unused(X"), "def predict(X, W, b):\n    return X @ W +\n"]
    broken = unparsable(cells)
    assert broken == {"predict": "this cell does not parse: line 2: invalid syntax"}
    result = explain_unparsable(lab, grade("lab1", REPO / "solutions", tasks=("predict", "mse_loss")).tasks,
                                broken)
    assert result[0].status == "passed"  # a task that passes anyway (a later cell) is left alone
    failed = grade("lab1", REPO / "assignments", tasks=("predict",))
    told = explain_unparsable(lab, failed.tasks, broken)[0]
    assert told.status == "error" and told.message == "predict: this cell does not parse: line 2: invalid syntax"


def test_the_notebook_handout_does_not_send_students_to_a_repository_root():
    notebook = source_notebook(labs.load("lab1"), (REPO / "solutions" / "lab1" / "backprop.py").read_text(),
                               (REPO / "assignments" / "lab1" / "README.md").read_text(), seed=0)
    text = "\n".join(c["source"] for c in notebook["cells"] if c["cell_type"] == "markdown")
    assert "repository root" not in text and "dlkit check lab1 relu_backward" not in text
    assert "run the test cell after each function" in text


@pytest.mark.parametrize(("args", "words"), [
    (["nbgrader", "course", "somewhere", "lab99"], "unknown lab 'lab99'"),
    (["nbgrader", "extract", "no/such/notebook.ipynb", "out"], "does not exist"),
])
def test_nbgrader_usage_errors_exit_2_with_one_line(args, words):
    result = _cli(*args)
    assert result.exit_code == 2 and words in result.output and len(result.output.strip().splitlines()) == 1


def test_extract_writes_the_module_a_notebook_is_graded_as(tmp_path):
    path = tmp_path / "lab.ipynb"
    path.write_text(json.dumps(_notebook(AUTOGRADED)))
    result = _cli("nbgrader", "extract", str(path), str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    spec = labs.load(AUTOGRADED)
    module = (tmp_path / "out" / AUTOGRADED / f"{spec.module}.py").read_text()
    assert module == graded_module(notebook_cells(_notebook(AUTOGRADED)))
    assert BEGIN in module  # the markers are comments: they stay in the module, harmlessly
    bad = tmp_path / "other.ipynb"
    bad.write_text(json.dumps({"cells": []}))
    assert _cli("nbgrader", "extract", str(bad), str(tmp_path / "out")).exit_code == 2


# ----------------------------------------------------------------------------- the real nbgrader

pytestmark = pytest.mark.xdist_group("nbgrader")  # one worker runs the course below, once


def _called_elsewhere(source: str, name: str) -> bool:
    """Whether a function of the module other than ``name`` itself calls ``name``."""
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
               for fn in ast.parse(source).body if isinstance(fn, ast.FunctionDef) and fn.name != name
               for node in ast.walk(fn))


def _replace_function(module: str, name: str, source: str) -> str:
    """``module`` with the top-level function ``name`` replaced by ``source``."""
    tree = ast.parse(module)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    lines = module.splitlines()
    first = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
    return "\n".join(lines[:first] + source.rstrip().splitlines() + lines[node.end_lineno:]) + "\n"


def _fill(release: dict[str, Any], module: str, extra_cells: tuple[str, ...] = ()) -> dict[str, Any]:
    """The release notebook as a student who wrote ``module`` hands it in (plus cells of their own at the end)."""
    notebook = copy.deepcopy(release)
    answers = solution_cells(labs.load(AUTOGRADED), module)
    for cell in notebook["cells"]:
        if _role(cell).get("grade_id") in answers:
            cell["source"] = answers[_role(cell)["grade_id"]]
    for i, source in enumerate(extra_cells):
        notebook["cells"].append({"cell_type": "code", "id": f"student-{i}", "metadata": {}, "execution_count": None,
                                  "outputs": [], "source": source})
    return notebook


# Tasks no other reference function calls, so a broken one costs only its own points.
LOOP_TASK, CHEAT_TASK, PARTIAL_TASK = "same_padding", "same_padding", "conv2d_forward"
SWALLOWING_LOOP = '''def same_padding(kernel_size, dilation=1):
    while True:
        try:
            pass
        except KeyboardInterrupt:
            pass
'''
CHEATING = '''def same_padding(kernel_size, dilation=1):
    from solutions.lab3.conv import same_padding as reference
    return reference(kernel_size, dilation)
'''
# A cell that, in the kernel at autograde time, reaches the reference the way a student could. (Inside a
# function that the cell calls: a module whose own top-level code used importlib would lose every task at
# the source gate; this student keeps the rest of the notebook clean.)
REACH_THE_REFERENCE = '''def _peek():
    import importlib, pathlib, sys
    import grader
    kit = pathlib.Path(grader.__file__).resolve().parent.parent
    sys.path.insert(0, str(kit))
    reference = importlib.import_module("solutions.lab3.conv")
    print("the reference is importable in the kernel:", reference.linear_params(3, 2))
    get_ipython().history_manager.input_hist_parsed.append((kit / "solutions" / "lab3" / "conv.py").read_text())


_peek()
'''
FLOAT64_ALWAYS = '''def conv2d_forward(x, w, b, stride=1, padding=0, dilation=1):
    out = _correlate(_pad(x, _pair(padding)), w, _pair(stride), _pair(dilation))
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out.astype(np.float64)
'''


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DLKIT_PROFILE=os.environ.get("DLKIT_PROFILE", "ci"))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A course of every registered lab, released, with lab 3 submissions autograded and exported."""
    pytest.importorskip("nbgrader", reason="the nbgrader extra is not installed: pip install -e '.[nbgrader]'")
    root = tmp_path_factory.mktemp("nbgrader") / "course"
    result = CliRunner().invoke(main, ["nbgrader", "course", str(root), "--seed", str(COURSE_SEED), "--timeout", "15"])
    assert result.exit_code == 0, result.output
    _nbgrader(root, "generate_assignment", "*")

    spec = labs.load(AUTOGRADED)
    reference = solution_path(REPO, spec).read_text()
    release = json.loads((root / "release" / AUTOGRADED / f"{AUTOGRADED}.ipynb").read_text())
    # the first known mistake in a task no other function of the module calls (a bug in conv_output_size
    # rightly costs trace_shapes too, on the networks where rounding and flooring differ)
    bug = next(m for m in collect(importlib.import_module(f"tests.mutants.{AUTOGRADED}"))
               if m.expect is not None and not _called_elsewhere(reference, m.task))
    tampered = copy.deepcopy(release)
    for cell in tampered["cells"]:
        if _role(cell).get("grade"):
            cell["source"] = "pass  # every test passes"
    modules = {
        "reference": reference,
        "stubs": None,
        "bug": _replace_function(reference, bug.task, function_source(bug.function, bug.task)),
        "partial": _replace_function(reference, PARTIAL_TASK, FLOAT64_ALWAYS),
        "loop": _replace_function(reference, LOOP_TASK, SWALLOWING_LOOP),
        "cheater": _replace_function(reference, CHEAT_TASK, CHEATING),
        "tampered": None,
    }
    extra = {"loop": (f"{LOOP_TASK}(3, 2)  # the kernel never comes back from this call",),
             "cheater": (REACH_THE_REFERENCE,)}
    notebooks = {"stubs": release, "tampered": tampered}
    for student, module in modules.items():
        notebook = notebooks.get(student) or _fill(release, module, extra.get(student, ()))
        path = root / "submitted" / student / AUTOGRADED / f"{AUTOGRADED}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(notebook))
    _nbgrader(root, "autograde", AUTOGRADED)
    _nbgrader(root, "export")
    _nbgrader(root, "export", "--exporter", "grader.export.nbgrader_autograde.TaskCsvExport", "--to", "by_task.csv")
    with open(root / "grades.csv") as f:
        totals = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f) if row["assignment"] == AUTOGRADED}
    with open(root / "by_task.csv") as f:
        by_task: dict[str, dict[str, float]] = {}
        for row in csv.DictReader(f):
            if row["assignment"] == AUTOGRADED:
                by_task.setdefault(row["student_id"], {})[row["task"]] = float(row["score"])
    return {"root": root, "release": release, "modules": modules, "bug": bug, "totals": totals, "by_task": by_task}


def _autograded(course: dict[str, Any], student: str) -> dict[str, Any]:
    return json.loads((course["root"] / "autograded" / student / AUTOGRADED / f"{AUTOGRADED}.ipynb").read_text())


def _dlkit_check(course: dict[str, Any], student: str, tmp_path: Path) -> dict[str, float]:
    """Per-task points of `dlkit check` on the code of a submitted notebook (as `dlkit nbgrader extract` writes it)."""
    submitted = course["root"] / "submitted" / student / AUTOGRADED / f"{AUTOGRADED}.ipynb"
    result = CliRunner().invoke(main, ["nbgrader", "extract", str(submitted), str(tmp_path / student)])
    assert result.exit_code == 0, result.output
    graded = grade(AUTOGRADED, tmp_path / student, seed=COURSE_SEED)
    return {t.name: t.score for t in graded.tasks}


def test_generate_assignment_releases_stubs_without_solutions_or_hidden_tests(course):
    for lab in LABS:
        spec = labs.load(lab)
        released = json.loads((course["root"] / "release" / lab / f"{lab}.ipynb").read_text())
        text = "\n".join(c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in released["cells"])
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "reference=True" not in text
        sources = {_role(c).get("grade_id"): "".join(c["source"]) for c in released["cells"] if _role(c)}
        for task in spec.tasks:
            assert "raise NotImplementedError()" in sources[f"solution_{task.function}"]
            assert f'check_task("{lab}", "{task.name}")' in sources[f"test_{task.name}"]
        body_lines = {line.strip() for f in split_module(solution_path(REPO, spec).read_text()).functions
                      for line in f.body.splitlines() if len(line.strip()) > 30}
        leaked = [line for line in text.splitlines() if line.strip() in body_lines]
        assert leaked == [], f"reference code in the release of {lab}: {leaked[:3]}"


def test_reference_gets_full_points_and_untouched_stubs_none(course):
    spec = labs.load(AUTOGRADED)
    assert course["totals"]["reference"] == spec.max_score
    assert course["by_task"]["reference"] == {t.name: t.points for t in spec.tasks}
    assert course["totals"]["stubs"] == 0
    failures = [o for c in _autograded(course, "stubs")["cells"] if _role(c).get("grade") for o in c["outputs"]]
    assert all(o["output_type"] == "error" and "not implemented yet" in o["evalue"] for o in failures)
    assert len(failures) == len(spec.tasks)


def test_a_known_bug_loses_points_on_its_task_only_with_the_same_message(course, tmp_path):
    bug, spec = course["bug"], labs.load(AUTOGRADED)
    scores = course["by_task"]["bug"]
    assert scores[bug.task] < spec.task(bug.task).points
    assert {t: s for t, s in scores.items() if t != bug.task} == {t.name: t.points for t in spec.tasks if t.name != bug.task}
    cell = next(c for c in _autograded(course, "bug")["cells"] if _role(c).get("grade_id") == f"test_{bug.task}")
    shown = "".join(o.get("evalue", "") + "".join(o.get("text", "")) for o in cell["outputs"])
    hints = {ident: text for text, ident in GENERIC_IDS.items()}
    hints.update({spec.task(bug.task).mistake_id(m): m.hint for m in spec.task(bug.task).mistakes})
    assert shown_words(bug, hints)[:60] in shown
    # the same points as dlkit check on the .py module the notebook was written from
    folder = tmp_path / "module"
    (folder / AUTOGRADED).mkdir(parents=True)
    (folder / AUTOGRADED / f"{spec.module}.py").write_text(course["modules"]["bug"])
    assert {t.name: t.score for t in grade(AUTOGRADED, folder, seed=COURSE_SEED).tasks} == scores


def test_partial_credit_is_the_share_of_checks_passed_as_in_dlkit_check(course):
    scores = course["by_task"]["partial"]
    assert 0 < scores[PARTIAL_TASK] < labs.load(AUTOGRADED).task(PARTIAL_TASK).points
    cell = next(c for c in _autograded(course, "partial")["cells"] if _role(c).get("grade_id") == f"test_{PARTIAL_TASK}")
    printed, result = cell["outputs"]
    assert printed["name"] == "stdout" and "float32" in "".join(printed["text"])
    assert float("".join(result["data"]["text/plain"])) == scores[PARTIAL_TASK]


def test_an_infinite_loop_loses_its_task_and_the_others_are_graded(course):
    spec = labs.load(AUTOGRADED)
    scores = course["by_task"]["loop"]
    assert scores[LOOP_TASK] == 0
    assert {t: s for t, s in scores.items() if t != LOOP_TASK} == {t.name: t.points for t in spec.tasks if t.name != LOOP_TASK}
    cell = next(c for c in _autograded(course, "loop")["cells"] if _role(c).get("grade_id") == f"test_{LOOP_TASK}")
    assert "timeout" in cell["outputs"][0]["evalue"]
    stuck = _autograded(course, "loop")["cells"][-1]  # the kernel swallowed the interrupt: that cell timed out
    assert any(o.get("ename") == "CellTimeoutError" for o in stuck["outputs"])


def test_edited_test_cells_are_restored_before_grading(course):
    assert course["totals"]["tampered"] == 0
    cells = [c for c in _autograded(course, "tampered")["cells"] if _role(c).get("grade")]
    sources = ["".join(c["source"]) for c in cells]  # nbformat may store a cell's source as a list of lines
    assert sources and all("check_task(" in s and "HIDDEN TESTS" in s for s in sources)


def test_importing_the_reference_from_the_notebook_does_not_help(course):
    """At autograde time the reference sits on the same machine: the notebook's kernel can import it
    (and forge its own history), but the graded code runs in the worker, which refuses it."""
    spec = labs.load(AUTOGRADED)
    notebook = _autograded(course, "cheater")
    printed = "".join("".join(o.get("text", "")) for o in notebook["cells"][-1]["outputs"])
    assert "the reference is importable in the kernel: 8" in printed
    scores = course["by_task"]["cheater"]
    assert scores[CHEAT_TASK] == 0
    assert {t: s for t, s in scores.items() if t != CHEAT_TASK} == {t.name: t.points for t in spec.tasks if t.name != CHEAT_TASK}
    cell = next(c for c in notebook["cells"] if _role(c).get("grade_id") == f"test_{CHEAT_TASK}")
    assert "importing solutions is not allowed" in cell["outputs"][0]["evalue"]


@pytest.mark.parametrize("student", ["reference", "bug", "partial", "cheater"])
def test_export_gives_the_points_of_dlkit_check_task_by_task(course, student, tmp_path):
    assert course["by_task"][student] == _dlkit_check(course, student, tmp_path)
    assert course["totals"][student] == pytest.approx(sum(course["by_task"][student].values()))


def test_grading_writes_nothing_to_stderr_and_leaves_no_hypothesis_folder(course):
    for student in course["modules"]:
        notebook = _autograded(course, student)
        tests = [c for c in notebook["cells"] if _role(c).get("grade")]
        assert not [o for c in tests for o in c["outputs"] if o.get("name") == "stderr"]
        assert not (course["root"] / "autograded" / student / AUTOGRADED / ".hypothesis").exists()
    assert not (course["root"] / ".hypothesis").exists()


def test_test_cells_grade_in_the_kernel_too_quietly(course, tmp_path, monkeypatch):
    """Outside `nbgrader autograde` a test cell grades in the notebook's kernel (its hidden part through
    `dlkit check`): run two of them from the source notebook, as an instructor validating it would."""
    nbformat = pytest.importorskip("nbformat")
    from nbgrader.preprocessors import Execute

    source = json.loads((course["root"] / "source" / AUTOGRADED / f"{AUTOGRADED}.ipynb").read_text())
    keep = {"setup", "solution_same_padding", "test_same_padding", "solution_linear_params", "test_linear_params"}
    source["cells"] = [c for c in source["cells"] if _role(c).get("grade_id") in keep]
    work = tmp_path / "validate"
    work.mkdir()
    monkeypatch.setenv("DLKIT_PROFILE", os.environ.get("DLKIT_PROFILE", "ci"))
    executed, _ = Execute(timeout=300).preprocess(nbformat.from_dict(source), {"metadata": {"path": str(work)}})
    spec = labs.load(AUTOGRADED)
    results = {}
    for cell in executed.cells:
        assert not [o for o in cell.outputs if o.output_type == "error" or o.get("name") == "stderr"], cell.outputs
        if _role(cell).get("grade"):
            (value,) = [o for o in cell.outputs if o.output_type == "execute_result"]
            results[_role(cell)["grade_id"]] = float(value.data["text/plain"])
    assert results == {"test_same_padding": spec.task("same_padding").points,
                       "test_linear_params": spec.task("linear_params").points}
    assert list(work.iterdir()) == []  # no .hypothesis/, nothing else


def test_the_feedback_template_names_each_test_cell_by_its_task(tmp_path):
    from grader.export.nbgrader_autograde import FEEDBACK_TEMPLATE, TEST_CELL_LABEL, feedback_templates

    ours, theirs = feedback_templates(tmp_path)
    index = (Path(ours) / FEEDBACK_TEMPLATE / "index.html.j2").read_text()
    assert TEST_CELL_LABEL in (Path(theirs) / "feedback" / "index.html.j2").read_text()  # nbgrader's, unchanged
    assert TEST_CELL_LABEL not in index and 'grade_id | replace("test_", "", 1)' in index


def test_autograde_grades_each_student_with_an_official_seed_and_shows_only_its_token(course):
    """The course's secret (dlkit_secret, written by `dlkit nbgrader course`, never released) gives each
    notebook its own seed; the feedback names a replay token, not the seed the test cell was written with."""
    root = course["root"]
    assert (root / "dlkit_secret").stat().st_mode & 0o077 == 0
    assert not list((root / "release").rglob("dlkit_secret"))
    notebook = _autograded(course, "bug")
    texts = ["".join(o.get("text", "")) + str(o.get("evalue", "")) for c in notebook["cells"] if _role(c).get("grade")
             for o in c.get("outputs", [])]
    shown = "\n".join(texts)
    assert "official run, replay token dk1-" in shown and "\nseed " not in shown
