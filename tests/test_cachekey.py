"""The result cache's key (grader.cachekey): everything that can change a grade changes it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grader import labs
from grader.export import cachekey
from grader.export.batch import FEEDBACK_VERSION
from grader.run.engine import PROFILES
from tests.conftest import REPO

LAB = labs.load("lab1")


def key(budget=PROFILES["default"], solutions=REPO / "solutions"):
    return cachekey.grade_key(LAB, budget, solutions, FEEDBACK_VERSION)


def test_the_same_inputs_give_the_same_fingerprint():
    assert key().fingerprint("files", 0) == key().fingerprint("files", 0)


def test_files_seed_and_profile_each_change_the_fingerprint():
    base = key().fingerprint("files", 0)
    assert key().fingerprint("other files", 0) != base
    assert key().fingerprint("files", 1) != base  # the seed the batch passes for this submission
    assert key(PROFILES["thorough"]).fingerprint("files", 0) != base
    assert key(PROFILES["ci"]).fingerprint("files", 0) != base


def test_a_changed_reference_solution_changes_the_fingerprint(tmp_path):
    shutil.copytree(REPO / "solutions" / "lab1", tmp_path / "lab1")
    assert key(solutions=tmp_path).fingerprint("f", 0) == key().fingerprint("f", 0)
    with open(tmp_path / "lab1" / "backprop.py", "a") as module:
        module.write("\n# an edit\n")
    assert key(solutions=tmp_path).fingerprint("f", 0) != key().fingerprint("f", 0)
    assert cachekey.reference_digest(LAB, tmp_path / "nowhere") == "none"


def test_an_edited_lab_declaration_changes_the_fingerprint(tmp_path, monkeypatch):
    source = (REPO / "grader" / "labs" / "lab1.py").read_text()
    (tmp_path / "edited_lab1.py").write_text(source.replace("points=", "points= ", 1))
    monkeypatch.syspath_prepend(str(tmp_path))
    before = key().fingerprint("f", 0)
    monkeypatch.setitem(labs.MODULES, "lab1", "edited_lab1")
    try:
        assert key().fingerprint("f", 0) != before
    finally:
        sys.modules.pop("edited_lab1", None)


def test_the_kit_digest_covers_every_grader_module_and_the_version():
    assert len(cachekey.kit_digest()) == 64 and cachekey.kit_version() != ""


def test_the_kit_digest_changes_with_a_lab_module_not_only_with_the_export_modules(monkeypatch):
    lab_module = (REPO / "grader" / "labs" / "lab1.py").resolve()
    real_read_bytes = Path.read_bytes

    def edited(path):  # grader/labs/lab1.py as if edited, without touching the file
        data = real_read_bytes(path)
        return data + b"\n# an edit\n" if path.resolve() == lab_module else data

    cachekey.kit_digest.cache_clear()
    before = cachekey.kit_digest()
    monkeypatch.setattr(Path, "read_bytes", edited)
    cachekey.kit_digest.cache_clear()
    try:
        assert cachekey.kit_digest() != before
    finally:
        cachekey.kit_digest.cache_clear()
