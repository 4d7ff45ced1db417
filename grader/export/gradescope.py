"""Gradescope: ``results.json`` from a graded lab, and the autograder bundle that writes it.

``results.json`` follows Gradescope's autograder specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): a top-level ``score``,
``execution_time``, ``output``, ``visibility`` and ``stdout_visibility``, and one test per
task with ``name``, ``score``, ``max_score``, ``status`` ("passed" or "failed"), ``output``
and ``visibility``.

The bundle (``dlkit gradescope bundle LAB OUTPUT``) is the kit for one lab with its reference
solution, plus the two scripts Gradescope runs:

- ``setup.sh``, once, as root, when Gradescope builds the image: Python 3.11 or later, CPU
  PyTorch and the kit in ``/autograder/source/.venv``; the two unprivileged users the student's
  code runs as (``USER0`` and ``USER1``: two workers may run at once, each as its own user);
  ``solutions/`` readable by root only.
- ``run_autograder``, as root, for every submission: runs ``dlkit check LAB --submission
  UPLOAD --find-module --format gradescope --worker-user USER{0..1} --output RESULTS`` (the
  module is found in the upload as ``dlkit gradescope collect`` finds it, by ``grader.sandbox.intake``;
  the student's code runs as those users, who can read neither the reference nor the results,
  behind the worker's kernel walls) and the report is written to
  ``/autograder/results/results.json``, readable by root only, after every process the
  student's code started has ended.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Sequence

from grader.sandbox import intake
from grader.export.notebook import notebook_module
from grader import REPO
from grader.export.release import TORCH_CPU, ReleaseError, write_kit
from grader.run.results import LabResult, TaskResult
from grader.run.seeds import new_secret
from grader.sandbox.host import WorkerUsers
from grader.declare.spec import Lab
from grader.report.render import as_points, seed_line

STUDENT = "student"  # the unprivileged user of the bundle
LATE_POLICY = "late_policy.py"  # the instructor's late-policy hook, when the bundle has one
USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
MARK = {"passed": "✓", "skipped": "-"}


# ----------------------------------------------------------------------------- results.json


def results(result: LabResult, title: str, elapsed: float, reproduce: str = "", note: str = "") -> dict[str, Any]:
    """Gradescope's results for one graded lab: one test per task, partial credit kept; ``note`` says how the
    module was found when it was not where it belongs (a renamed file, a notebook)."""
    lines = [f"{result.lab}: {title}", f"score {as_points(result.score)}/{as_points(result.max_score)}, {seed_line(result)}"]
    if note:
        lines.append(f"note: {note}")
    if reproduce and not result.token:
        lines.append(f"reproduce the PyTorch and worked-example checks at home: {reproduce}")
    if result.error:
        lines.append(f"every task stopped on the same problem with the whole module: {result.error}")
    elif result.status != "graded":
        lines.append(f"this submission could not be graded normally ({result.status}): {result.tasks[0].message}"
                     if result.tasks else f"this submission could not be graded normally ({result.status})")
    return {
        "score": result.score,
        "execution_time": max(0, round(elapsed)),
        "output": "\n".join(lines),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [_test(task) for task in result.tasks],
        "extra_data": {"lab": result.lab, "status": result.status,
                       **({"token": result.token} if result.token else {"seed": result.seed})},
    }


def _test(task: TaskResult) -> dict[str, Any]:
    return {
        "name": task.name,
        "score": task.score,
        "max_score": task.max_score,
        "status": "passed" if task.status == "passed" else "failed",
        "output": task_output(task),
        "visibility": "visible",
        "extra_data": {"status": task.status},
    }


def task_output(task: TaskResult) -> str:
    """What a student reads under a test: the verdict, then every check with its message."""
    lines = [f"{task.status}: {as_points(task.score)}/{as_points(task.max_score)} points"]
    if not task.checks and task.message:
        lines.append(task.message)
    for check in task.checks:
        lines.append(f"{MARK.get(check.status, '✗')} {check.name}" + ("" if check.status == "passed" else f"  ({check.status})"))
        if check.status != "passed" and check.message:
            lines += ["    " + line for line in check.message.splitlines()]
    return "\n".join(lines)





# ----------------------------------------------------------------------------- the student's user


def worker_user_problem(users: WorkerUsers) -> str:
    """Why the student's code could not run as ``users`` here ("" when it can): this process must be root,
    and each user must be able to run this Python with NumPy."""
    if os.geteuid() != 0:
        return "--worker-user needs root: only root can run the student's code as other users"
    for identity in users.members[:2]:
        try:
            probe = subprocess.run([sys.executable, "-I", "-c", "import numpy"], cwd="/", capture_output=True, text=True,
                                   user=identity.uid, group=identity.gid, extra_groups=[], timeout=60, check=False)
        except (OSError, subprocess.SubprocessError) as error:
            return f"user '{identity.name}' cannot run {sys.executable}: {error}"
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["no message"])[-1]
            return (f"user '{identity.name}' cannot import NumPy with {sys.executable}: {last} (the worker users need "
                    "a Python they can read: one outside a folder private to root, such as /usr or /opt)")
    return ""


# ----------------------------------------------------------------------------- the upload


def collect(lab: Lab, upload: Path, target: Path) -> intake.Found:
    """Lay a Gradescope upload out like ``assignments/``: write the student's module (and the ``.py``
    files beside it), found as ``grader.sandbox.intake.discover`` finds it (a renamed ``conv (1).py`` or a notebook
    included), into ``target/LAB/``. Returns what was found (its path in the upload, and a note when it was
    renamed or a notebook); raises ``BadSubmission`` when there is none or it breaks the rules."""
    found = intake.discover(upload, lab.name, lab.module, notebook_module)
    folder = target / lab.name
    folder.mkdir(parents=True, exist_ok=True)
    found.files.write(folder)
    return found


# ----------------------------------------------------------------------------- the bundle


def write_bundle(lab: Lab, output: Path, *, seed: int | None = None, secret: bytes | None = None,
                 student: str = STUDENT, repo: Path = REPO, visibility: Sequence[str] = (),
                 late_policy: Path | None = None) -> Path:
    """Write the autograder of one lab: a ``.zip`` to upload to Gradescope when ``output`` ends in
    ``.zip``, else a folder with the same files (to look at, or to zip yourself).

    With ``seed``, every submission is graded with it; otherwise each with its official seed
    (``grader.seeds``) from ``secret`` (a new random one when None), which the bundle holds as ``secret``."""
    if not USER_NAME.match(student):
        raise ReleaseError(f"'{student}' is not a user name useradd accepts (lowercase letters, digits, '_' and '-')")
    if output.exists() and (output.is_file() and output.suffix != ".zip" or output.is_dir() and any(output.iterdir())):
        raise ReleaseError(f"'{output}' exists; give a new .zip file or an empty folder")
    reference = repo / "solutions" / lab.name
    if not (reference / lab.filename).is_file():
        raise ReleaseError(f"no reference solution solutions/{lab.path} to grade {lab.name} with")
    with tempfile.TemporaryDirectory(prefix="dlkit-gradescope-") as staging:
        stage = Path(staging) / "autograder"  # made with the usual permissions, unlike the private staging folder
        stage.mkdir()
        write_kit(stage, [lab], repo)
        shutil.copytree(reference, stage / "solutions" / lab.name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (stage / "README.md").write_text(f"# dlkit autograder for {lab.name}\n\nBuilt by `dlkit gradescope bundle "
                                         f"{lab.name}`; see docs/release.md in the dlkit repository.\n", encoding="utf-8")
        if late_policy is not None:
            shutil.copyfile(late_policy, stage / LATE_POLICY)
        if seed is None:
            (stage / "secret").write_bytes((secret or new_secret()) + b"\n")
        script = run_script(lab, seed, student, visibility, late_policy is not None)
        for name, text in (("setup.sh", setup_script(student)), ("run_autograder", script)):
            (stage / name).write_text(text, encoding="utf-8")
            (stage / name).chmod(0o755)
        if output.suffix == ".zip":
            output.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(stage.rglob("*")):
                    archive.write(path, path.relative_to(stage).as_posix())  # modes kept: run_autograder stays executable
        else:
            shutil.copytree(stage, output, dirs_exist_ok=True)
    return output


def setup_script(student: str = STUDENT) -> str:
    return f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu 22.04 or later).
# Written by `dlkit gradescope bundle`.
set -euo pipefail
AUTOGRADER=${{AUTOGRADER:-/autograder}}
SOURCE="$AUTOGRADER/source"
cd "$SOURCE"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip
PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    PYTHON=$candidate
    break
  fi
done
if [ -z "$PYTHON" ]; then  # Ubuntu 22.04: Python 3.10 by default, 3.11 as a package
  apt-get install -y --no-install-recommends python3.11 python3.11-venv
  PYTHON=python3.11
fi
"$PYTHON" -m venv .venv
.venv/bin/python -m pip install --upgrade pip
# The CPU build first: a bare `torch` requirement would pull a multi-GB CUDA build.
.venv/bin/python -m {TORCH_CPU}
.venv/bin/python -m pip install -e .
# The users the student's code runs as (two workers may run at once, each as its own user):
# no home, no login shell, no groups.
for worker in {student}0 {student}1; do
  id -u "$worker" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$worker"
done
# Everyone may read the kit and run its Python; only root may read the reference solutions.
chmod a+x "$AUTOGRADER"
chmod -R a+rX "$SOURCE"
chmod -R go-rwx "$SOURCE/solutions"
[ ! -e "$SOURCE/secret" ] || chmod 600 "$SOURCE/secret"
"""


def run_script(lab: Lab, seed: int | None = None, student: str = STUDENT, visibility: Sequence[str] = (),
               late_policy: bool = False) -> str:
    options = "".join(f" --visibility {shlex.quote(v)}" for v in visibility)
    options += ' --submission-metadata "$AUTOGRADER/submission_metadata.json"'
    if late_policy:
        options += f' --late-policy "$SOURCE/{LATE_POLICY}"'
    if seed is None:
        seeding = ("each submission is graded with its own\n# official seed, from the bundle's secret, "
                   "its submission id and its files (students see a replay token).")
        identity = ("""IDENTITY=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("id", ""))' \\
  "$AUTOGRADER/submission_metadata.json" 2>/dev/null || true)\n""")
        how = '--secret-file "$SOURCE/secret" --identity "${IDENTITY:-submission}"'
    else:
        seeding, identity, how = f"every submission is graded with seed {seed}.", "", f"--seed {seed}"
    return f"""#!/usr/bin/env bash
# Gradescope runs this as root for every submission. Written by `dlkit gradescope bundle`.
# The student's code runs as the unprivileged users '{student}0' and '{student}1', who can read
# neither the reference solutions, the secret nor the results; {seeding}
set -uo pipefail
AUTOGRADER=${{AUTOGRADER:-/autograder}}
SOURCE="$AUTOGRADER/source"
RESULTS="$AUTOGRADER/results"
STUDENT=${{DLKIT_STUDENT:-{student}0,{student}1}}
PYTHON="$SOURCE/.venv/bin/python"
[ -x "$PYTHON" ] || PYTHON=python3

chmod -R go-rwx "$SOURCE/solutions"
[ ! -e "$SOURCE/secret" ] || chmod 600 "$SOURCE/secret"
mkdir -p "$RESULTS"
chmod 700 "$RESULTS"

{identity}# The report is written by dlkit itself, to a folder only root can open, once every process the
# student's code started has ended.
"$PYTHON" "$SOURCE/cli.py" check {lab.name} --submission "$AUTOGRADER/submission" --find-module \\
  --format gradescope --worker-user "$STUDENT" {how} --profile default --output "$RESULTS/results.json" \\
  {options.strip()}
status=$?
if [ "$status" -gt 1 ]; then
  echo "dlkit check ended with status $status: no results.json written" >&2
  exit 1
fi
"""
