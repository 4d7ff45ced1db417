"""Hostile submissions change nothing but their own score.

Each test builds a lab 3 submission from the reference with one task replaced by
something hostile, and checks that exactly that task (or, for attacks at import
time, the module) loses its points while the grader itself carries on.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from grader.run.results import SEE_ABOVE
from tests.conftest import REPO, TEST_LIMITS, grade

LAB = "lab3"
# Two cheap tasks: the victim is the hostile one, the bystander must be unaffected.
VICTIM, BYSTANDER = "linear_params", "conv_output_size"


def _hostile(submission, body: str, header: str = ""):
    return submission(LAB, header + f"\n\ndef {VICTIM}(in_features, out_features, bias=True):\n" + body)


def _assert_only_victim_fails(result, status: str | tuple[str, ...] | None = None) -> None:
    by_name = {t.name: t for t in result.tasks}
    victim, bystander = by_name[VICTIM], by_name[BYSTANDER]
    assert victim.score == 0 and victim.status != "passed"
    if status:
        assert victim.status in ((status,) if isinstance(status, str) else status), victim.message
    assert bystander.status == "passed" and bystander.score == bystander.max_score


HOSTILE_BODIES = {
    "lying __eq__": (
        "    class Always:\n"
        "        def __eq__(self, other): return True\n"
        "        def __ne__(self, other): return False\n"
        "        def __int__(self): return in_features * out_features + out_features\n"
        "    return Always()\n", "failed"),
    "int subclass that lies": (
        "    class Liar(int):\n"
        "        def __eq__(self, other): return True\n"
        "    return Liar(0)\n", "failed"),
    "sys.exit(0) inside the task": ("    import sys\n    sys.exit(0)\n", "error"),
    "os._exit(0) inside the task": ("    import os\n    os._exit(0)\n", "error"),
    "infinite loop": ("    while True:\n        pass\n", "timeout"),
    # stopped by the address-space cap (error), or, when a loaded machine writes its pages slowly, by the
    # call's deadline (timeout): either way the damage stays in its own task
    "memory bomb": ("    import numpy as np\n    blocks = []\n    while True:\n        blocks.append(np.ones(10**8))\n",
                    ("error", "timeout")),
    "importing the reference": ("    from solutions.lab3.conv import linear_params as ref\n    return ref(in_features, out_features, bias)\n",
                                "error"),
    # refused by reading the source (banned in a NumPy lab): the task is void before it runs
    "importing torch in a NumPy lab": ("    import torch\n    return int(torch.tensor(in_features * out_features).item())\n",
                                       "failed"),
    "ctypes (a segmentation fault)": ("    import ctypes\n    ctypes.string_at(0)\n", "failed"),
    "segmentation fault": ("    import os, signal\n    os.kill(os.getpid(), signal.SIGSEGV)\n", "error"),
    "killing its own process group": ("    import os, signal\n    os.killpg(0, signal.SIGKILL)\n", "error"),
}


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
def test_hostile_task_loses_only_its_own_points(submission, name):
    body, status = HOSTILE_BODIES[name]
    result = grade(LAB, _hostile(submission, body), tasks=(BYSTANDER, VICTIM, "same_padding"), limits=TEST_LIMITS)
    _assert_only_victim_fails(result, status)
    assert {t.name: t for t in result.tasks}["same_padding"].status == "passed"


def test_importing_the_reference_is_reported_as_refused(submission):
    body, _ = HOSTILE_BODIES["importing the reference"]
    result = grade(LAB, _hostile(submission, body), tasks=(VICTIM,), limits=TEST_LIMITS)
    assert "importing solutions is not allowed" in result.tasks[0].message


def test_ndarray_subclass_is_refused_as_a_result(submission):
    extra = ("class Sneaky(np.ndarray):\n"
             "    def __eq__(self, other): return np.ones(self.shape, dtype=bool)\n"
             "def max_pool2d_forward(x, kernel_size, stride=None, padding=0):\n"
             "    return np.zeros(1).view(Sneaky)\n")
    result = grade(LAB, submission(LAB, extra), tasks=("max_pool2d_forward",), limits=TEST_LIMITS)
    (task,) = result.tasks
    assert task.score == 0
    assert "subclass of numpy.ndarray" in task.message


def test_monkeypatching_numpy_at_import_does_not_fool_the_comparison(submission):
    header = ("import numpy\n"
              "numpy.allclose = lambda *a, **k: True\n"
              "numpy.array_equal = lambda *a, **k: True\n"
              "numpy.testing.assert_allclose = lambda *a, **k: None\n")
    body = "    return 0\n"
    result = grade(LAB, _hostile(submission, body, header), tasks=(BYSTANDER, VICTIM), limits=TEST_LIMITS)
    _assert_only_victim_fails(result, "failed")


def test_patching_the_worker_only_changes_what_the_worker_says(submission):
    """A module that rewrites the worker's encoder can only send values, and values are checked."""
    header = ("import sys\n"
              "wire = sys.modules.get('_dlkit_wire')\n"
              "if wire is not None:\n"
              "    wire.encode = lambda value, torch=None: 7\n")
    body = "    return 0\n"
    result = grade(LAB, _hostile(submission, body, header), tasks=(VICTIM,), limits=TEST_LIMITS)
    assert result.tasks[0].score == 0


@pytest.mark.parametrize("attack", ["import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n",
                                    "while True:\n    pass\n", "raise RuntimeError('broken at import')\n",
                                    "def broken(:\n    pass\n"])
def test_a_module_that_cannot_be_imported_fails_every_task_and_says_why_once(submission, attack):
    folder = submission(LAB, attack)
    result = grade(LAB, folder, tasks=(BYSTANDER, VICTIM), limits=TEST_LIMITS)
    assert result.status == "import_error"
    assert result.score == 0
    assert all(t.status in ("error", "timeout") for t in result.tasks)
    assert all(t.message.endswith(SEE_ABOVE) for t in result.tasks)  # the error itself is said once, for the lab
    message = result.error
    assert "could not be imported" in message or "import" in message
    if "RuntimeError" in attack:
        assert "broken at import" in message and "line" in message
    if "def broken" in attack:
        assert "SyntaxError" in message


def test_missing_module_is_reported_for_every_task(tmp_path):
    (tmp_path / LAB).mkdir()
    result = grade(LAB, tmp_path, tasks=(BYSTANDER, VICTIM))
    assert result.status == "missing_module"
    assert all(t.status == "error" and "no file lab3/conv.py" in t.message for t in result.tasks)


def test_printing_a_fake_score_leaves_the_json_report_intact(submission):
    header = ("import sys, json\n"
              "print(json.dumps({'lab': 'lab3', 'score': 100, 'max_score': 100}))\n"
              "sys.stderr.write('{\"score\": 100}\\n')\n")
    body = "    print('{\"score\": 100, \"max_score\": 100}')\n    return 0\n"
    folder = _hostile(submission, body, header)
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), "check", LAB, BYSTANDER, VICTIM,
                           "--submission", str(folder), "--format", "json", "--seed", "1", "--profile", "ci"],
                          capture_output=True, text=True, timeout=300)
    report = json.loads(proc.stdout)  # exactly one JSON object, nothing else on stdout
    scores = {t["name"]: t["score"] for t in report["tasks"]}
    assert scores[VICTIM] == 0 and scores[BYSTANDER] == 8
    assert report["score"] == 8 and proc.returncode == 1
