"""How a submission's module is found (grader.intake.discover): the same rules for dlkit grade,
dlkit check --find-module and dlkit gradescope collect."""

from __future__ import annotations

import json

import pytest

from grader import labs
from grader.sandbox.intake import BadSubmission, discover
from grader.export.nbgrader import source_notebook
from grader.export.notebook import notebook_module
from tests.conftest import REPO

LAB = labs.load("lab1")
MODULE = "backprop.py"


def test_the_module_where_it_belongs_is_taken_without_a_note(tmp_path):
    (tmp_path / "lab1").mkdir()
    (tmp_path / "lab1" / MODULE).write_text("A = 1\n")
    found = discover(tmp_path, "lab1", "backprop")
    assert found.note == "" and found.files.files == {MODULE: b"A = 1\n"}


@pytest.mark.parametrize("name", ["backprop (1).py", "backprop(2).py", "backprop 2.py"])
def test_a_renamed_copy_is_graded_as_the_module_and_the_note_says_so(tmp_path, name):
    (tmp_path / name).write_text("A = 1\n")
    (tmp_path / "helpers.py").write_text("B = 2\n")
    found = discover(tmp_path, "lab1", "backprop")
    assert found.files.files == {MODULE: b"A = 1\n", "helpers.py": b"B = 2\n"}
    assert f"'{name}' was graded as lab1/{MODULE}" in found.note and "renamed" in found.note


def test_the_latest_of_several_renamed_copies_is_taken(tmp_path):
    (tmp_path / "backprop (1).py").write_text("OLD = 1\n")
    (tmp_path / "backprop (2).py").write_text("NEW = 1\n")
    assert discover(tmp_path, "lab1", "backprop").files.files[MODULE] == b"NEW = 1\n"


def test_a_renamed_copy_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "secret.txt").write_text("x")
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "backprop (1).py").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(BadSubmission):
        discover(tmp_path / "up", "lab1", "backprop")


def test_a_notebook_upload_is_graded_as_its_code_cells(tmp_path):
    notebook = source_notebook(LAB, (REPO / "solutions" / "lab1" / MODULE).read_text(), "", seed=0)
    (tmp_path / "my work.ipynb").write_text(json.dumps(notebook))
    found = discover(tmp_path, "lab1", "backprop", notebook_module)
    assert "def predict" in found.files.files[MODULE].decode() and "my work.ipynb" in found.note
    assert "dlkit nbgrader extract" in found.note


def test_a_notebook_of_another_lab_is_not_taken_and_the_message_says_what_was_looked_for(tmp_path):
    notebook = source_notebook(labs.load("lab3"), (REPO / "solutions" / "lab3" / "conv.py").read_text(), "", seed=0)
    (tmp_path / "lab3.ipynb").write_text(json.dumps(notebook))
    with pytest.raises(BadSubmission, match=r"no file lab1/backprop.py .*no renamed copy .*no notebook lab1.ipynb"):
        discover(tmp_path, "lab1", "backprop", notebook_module)
