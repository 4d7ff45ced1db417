"""Shared fixtures: grading a submission in-process, and building submissions from source."""

from __future__ import annotations

import ast
import inspect
import os
import pwd
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from grader import labs
from grader.run.engine import PROFILES, grade_lab
from grader.run.results import LabResult
from grader.sandbox.host import Limits
from tests.mutants import Mutant

REPO = Path(__file__).resolve().parent.parent
SEED = 20261122
# Short limits keep the hostile tests quick; real runs use the task's own limits.
TEST_LIMITS = Limits(timeout=3.0, memory_bytes=1024**3, startup_timeout=30.0)


def budget():
    return PROFILES[os.environ.get("DLKIT_PROFILE", "ci")]


def grade(lab: str, submission: Path, tasks: tuple[str, ...] = (), seed: int = SEED,
          limits: Limits | None = None) -> LabResult:
    """Grade a submission folder the way `dlkit check` does, in this process."""
    return grade_lab(labs.load(lab), submission, seed=seed, tasks=tasks, budget=budget(), limits=limits)


def function_source(fn: Callable[..., object], name: str) -> str:
    """The source of ``fn`` without decorators, renamed to ``name``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef)
    node.decorator_list = []
    node.name = name
    return ast.unparse(node)


@pytest.fixture
def submission(tmp_path: Path) -> Callable[..., Path]:
    """Build a submission: the reference module of a lab with source appended (or replaced)."""

    def build(lab: str, extra: str = "", whole: str | None = None) -> Path:
        spec = labs.load(lab)
        folder = tmp_path / "submission"
        target = folder / lab / f"{spec.module}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        if whole is not None:
            target.write_text(textwrap.dedent(whole))
        else:
            reference = (REPO / "solutions" / lab / f"{spec.module}.py").read_text()
            target.write_text(reference + "\n\n" + textwrap.dedent(extra) + "\n")
        return folder

    return build


def mutant_submission(build: Callable[..., Path], lab: str, mutant: Mutant) -> Path:
    return build(lab, function_source(mutant.function, mutant.task))


def copy_lab(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def unprivileged_venv() -> tuple[str, Path]:
    """A user and a Python environment that user can run; skip where this machine has none."""
    if os.geteuid() != 0:
        pytest.skip("running the student's code as another user needs root")
    if "nobody" not in {entry.pw_name for entry in pwd.getpwall()}:
        pytest.skip("no user 'nobody' here")
    venv = Path(os.environ.get("DLKIT_TEST_VENV", sys.prefix))
    account = pwd.getpwnam("nobody")
    try:
        probe = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", "import numpy, torch"], capture_output=True,
                               timeout=120, cwd="/", user=account.pw_uid, group=account.pw_gid, extra_groups=[])
    except OSError:
        probe = None
    if probe is None or probe.returncode != 0:
        pytest.skip(f"user 'nobody' cannot run {venv}/bin/python here (set DLKIT_TEST_VENV to a venv it can run)")
    return "nobody", venv


FIRST_TEST_UID = 61000  # bare uids (no account): what `--worker-user 61000-61001` runs workers as


def uid_pool(size: int) -> str:
    """A ``--worker-user`` range of ``size`` bare uids that can run this Python; skip where this machine has none."""
    if os.geteuid() != 0:
        pytest.skip("running the student's code as other users needs root")
    try:
        probe = subprocess.run([sys.executable, "-I", "-c", "import numpy, torch"], capture_output=True, timeout=120,
                               cwd="/", user=FIRST_TEST_UID, group=FIRST_TEST_UID, extra_groups=[])
    except OSError:
        probe = None
    if probe is None or probe.returncode != 0:
        pytest.skip(f"uid {FIRST_TEST_UID} cannot run {sys.executable} here (its Python sits in a folder private to "
                    "root: build the venv from a Python all users can read, as scripts/setup does when run as root)")
    return f"{FIRST_TEST_UID}-{FIRST_TEST_UID + size - 1}"


def task_checks(result, task_name: str):
    """One task of a lab result, and its checks by name."""
    (task,) = [t for t in result.tasks if t.name == task_name]
    return task, {c.name: c for c in task.checks}
