"""grader.export.notebook: the module a notebook is graded as, and what a test cell shows."""

from __future__ import annotations

import os
import sys

import pytest

from grader import labs
from grader.export.notebook import (MARKER, TaskFailed, Verdict, grade_module, graded_module, notebook_cells, notebook_lab,
                             quiet, read_test_cell)
from grader.run.results import CheckResult, TaskResult
from tests.conftest import REPO, SEED

LAB = "lab3"


def test_graded_module_keeps_definitions_and_leaves_experiments_out():
    cells = [
        "import numpy as np\nfrom grader.export.notebook import check_task\nimport grader, math",
        "def f(x):\n    return np.asarray(x) * 2\n\nprint(f(3))\nf(4)\nfor i in range(10**9):\n    pass",
        "SCALE = 3\nBROKEN = undefined_name + 1",
        "@staticmethod\ndef g():\n    return SCALE",
        "while True:\n    pass",
        "this is not python",
    ]
    module = graded_module(cells)
    namespace: dict[str, object] = {}
    exec(compile(module, "<graded>", "exec"), namespace)  # nothing loops, nothing raises
    assert namespace["f"](2).tolist() == 4 and namespace["SCALE"] == 3 and "BROKEN" not in namespace
    assert "import math" in module and "grader" not in module.replace("dlkit grades", "")
    assert "print(" not in module and "while True" not in module and "range(10**9)" not in module


def test_graded_module_leaves_test_cells_out_and_counts_a_rerun_cell_once_at_its_last_place():
    first, second = "def f():\n    return 1", "def f():\n    return 2"
    test = f"{MARKER}: lab3.f\nfrom grader.export.notebook import check_task\ncheck_task('lab3', 'f')"
    module = graded_module([first, second, test, first])
    namespace: dict[str, object] = {}
    exec(module, namespace)
    assert namespace["f"]() == 1 and "check_task" not in module
    assert module.count("return 1") == 1


def test_graded_module_moves_future_imports_to_the_top():
    module = graded_module(["x = 1", "from __future__ import annotations\ndef f(a: Undefined) -> None:\n    pass"])
    assert module.startswith("from __future__ import annotations\n")
    compile(module, "<graded>", "exec")


def test_graded_module_keeps_an_import_of_the_reference_so_that_the_worker_refuses_it():
    module = graded_module(["from solutions.lab3.conv import *", "import solutions.lab3.conv as ref"])
    assert "from solutions.lab3.conv import *" in module and "import solutions.lab3.conv as ref" in module


def test_notebook_cells_translate_magics_and_leave_autograder_test_cells_out():
    notebook = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# title"},
        {"cell_type": "code", "metadata": {}, "source": ["%matplotlib inline\n", "import numpy as np"]},
        {"cell_type": "code", "metadata": {"nbgrader": {"grade": True, "solution": False}}, "source": "assert False"},
        {"cell_type": "code", "metadata": {"nbgrader": {"grade": False, "solution": True}}, "source": "def f():\n  pass"},
    ]}
    cells = notebook_cells(notebook)
    assert len(cells) == 2 and "run_line_magic" in cells[0] and "def f" in cells[1]
    assert "import numpy as np" in graded_module(cells)


def test_test_call_reads_the_last_check_task_call_of_a_test_cell():
    source = ("from grader.export.notebook import check_task\ncheck_task('lab3', 'same_padding')\n"
              "### BEGIN HIDDEN TESTS\ncheck_task('lab3', 'same_padding', seed=42, reference=True)\n")
    assert read_test_cell(source) == ("lab3", "same_padding", 42)
    assert read_test_cell("check_task('lab3', 'same_padding')") == ("lab3", "same_padding", None)
    assert read_test_cell("assert 1 + 1 == 2") is None and read_test_cell("not python") is None


def test_notebook_lab_names_the_lab_of_the_test_cells():
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": "def f():\n    pass"},
                          {"cell_type": "code", "metadata": {}, "source": f"{MARKER}\ncheck_task('lab3', 'f')"}]}
    lab, module = notebook_lab(notebook)
    assert lab == "lab3" and "def f" in module
    with pytest.raises(ValueError, match="no dlkit test cell"):
        notebook_lab({"cells": []})


def _task(status: str, score: float, checks: tuple[CheckResult, ...] = ()) -> TaskResult:
    return TaskResult("same_padding", status, score, 5, checks[0].message if checks else "", checks)


def test_a_passed_task_returns_its_points_and_prints_nothing(capsys):
    verdict = Verdict(_task("passed", 5, (CheckResult("a check", "passed", ""),)), seed=3)
    assert verdict.conclude() == 5.0
    assert capsys.readouterr() == ("", "")
    assert verdict.outputs() == [{"output_type": "execute_result", "execution_count": None, "metadata": {},
                                  "data": {"text/plain": "5.0"}}]


def test_a_task_with_no_points_raises_an_assertion_error_with_the_check_message():
    checks = (CheckResult("reproduces the handout's worked examples", "failed", "same_padding(3) returned 2"),)
    verdict = Verdict(_task("failed", 0, checks), seed=3)
    with pytest.raises(AssertionError) as raised:
        verdict.conclude()
    assert isinstance(raised.value, TaskFailed)
    text = str(raised.value)
    assert text.startswith("same_padding: failed, 0/5 points")
    assert "✗ reproduces the handout's worked examples" in text and "same_padding(3) returned 2" in text
    assert text.endswith("seed 3")
    assert raised.value._render_traceback_() == [f"TaskFailed: {text}"]
    (output,) = verdict.outputs()
    assert output["output_type"] == "error" and output["evalue"] == text


def test_partial_credit_prints_what_failed_and_returns_the_score(capsys):
    checks = (CheckResult("one", "passed", ""), CheckResult("two", "failed", "wrong dtype"))
    verdict = Verdict(_task("failed", 2.5, checks), seed=0)
    assert verdict.conclude() == 2.5
    out, err = capsys.readouterr()
    assert "✗ two" in out and "wrong dtype" in out and err == ""
    printed, result = verdict.outputs()
    assert printed["name"] == "stdout" and result["data"]["text/plain"] == "2.5"


def test_quiet_keeps_warnings_and_both_kinds_of_stderr_away(capfd):
    import warnings

    with quiet():
        warnings.warn("a warning")
        print("python-level", file=sys.stderr)
        os.write(2, b"c-level\n")
    print("after", file=sys.stderr)
    assert capfd.readouterr().err == "after\n"


def test_grade_module_grades_like_dlkit_check_and_without_the_reference_skips_its_checks():
    lab = labs.load(LAB)
    source = (REPO / "solutions" / LAB / f"{lab.module}.py").read_text()
    full = grade_module(lab, source, ("same_padding", "conv2d_forward"), SEED, solutions=REPO / "solutions")
    assert [t.status for t in full.tasks] == ["passed", "passed"]
    visible = grade_module(lab, source, ("conv2d_forward",), SEED, solutions=None)
    (task,) = visible.tasks
    assert task.status == "passed"
    assert {c.status for c in task.checks if "reference" in c.name} == {"skipped"}
