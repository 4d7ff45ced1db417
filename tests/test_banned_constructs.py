"""Banned means banned: the constructs that reach around a ban fail the task, by structure, not by name.

Each hostile submission below returns the right values (through the reference), and uses one construct
that honest solutions never need; the task must score 0 with a message naming the construct, and the
construct must be listed in the lab result's ``flags`` for the instructor. The reference solutions and
every correct alternative in tests/mutants use none of them.
"""

from __future__ import annotations

import importlib

import pytest

from grader import labs
from grader.declare.source import findings
from tests.conftest import REPO, function_source, grade
from tests.mutants import collect

CELL = "def lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):\n"
RIGHT = "    return _reference_cell(x, h, c, W_ih, W_hh, b_ih, b_hh)\n"

# name -> (source appended to the reference module of lab 4, words the message and the flag must contain)
HOSTILE = {
    "the issue's DisableTorchFunction route": (
        CELL + "    with torch._C.DisableTorchFunction():\n"
               "        return getattr(torch._C, '_Variable' + 'Functions').lstm_cell(x, (h, c), W_ih, W_hh, b_ih, b_hh)\n",
        "torch._C"),
    "torch._C": (CELL + "    torch._C._get_tracing_state()\n" + RIGHT, "torch._C"),
    "torch._VF": (CELL + "    kernels = torch._VF\n" + RIGHT, "torch._VF"),
    "torch.ops": (CELL + "    operators = torch.ops.aten\n" + RIGHT, "torch.ops"),
    "torch.overrides": (CELL + "    with torch.overrides.enable_reentrant_dispatch():\n    " + RIGHT, "torch.overrides"),
    "ctypes": (CELL + "    import ctypes\n" + RIGHT, "ctypes"),
    "importlib": (CELL + "    import importlib\n    importlib.import_module('math')\n" + RIGHT, "importlib"),
    "__import__": (CELL + "    __import__('math')\n" + RIGHT, "__import__"),
    "sys.meta_path": (CELL + "    import sys\n    finders = list(sys.meta_path)\n" + RIGHT, "sys.meta_path"),
    "open()": (CELL + "    open(__file__).close()\n" + RIGHT, "open()"),
    "eval()": (CELL + "    eval('1 + 1')\n" + RIGHT, "eval()"),
    "exec()": (CELL + "    exec('pass')\n" + RIGHT, "exec()"),
    "compile()": (CELL + "    compile('1', '<string>', 'eval')\n" + RIGHT, "compile()"),
    "getattr with a computed name": (CELL + "    sig = getattr(torch, 'sig' + 'moid')\n" + RIGHT,
                                     "getattr with a computed name"),
    "setattr with a computed name": (CELL + "    setattr(x, 'note' + 's', 1)\n" + RIGHT, "setattr with a computed name"),
    "a module-level alias": ("_internals = torch._C\n\n\n" + CELL + "    _internals._get_tracing_state()\n" + RIGHT,
                             "torch._C"),
    "a helper the task calls": ("def _kernel():\n    return getattr(torch, 'lstm' + '_cell')\n\n\n"
                                + CELL + "    _kernel()\n" + RIGHT, "getattr with a computed name"),
    "a banned name in a helper": ("def _cell(*args):\n    return torch.lstm_cell(*args)\n\n\n" + CELL
                                  + "    if x.shape[0] < 0:\n        return _cell(x, (h, c), W_ih, W_hh, b_ih, b_hh)\n"
                                  + RIGHT, "torch.lstm_cell"),
}


def _hostile(submission, body: str):
    return submission("lab4", "_reference_cell = lstm_cell\n\n\n" + body)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_construct_that_reaches_around_a_ban_fails_the_task_naming_it(submission, name):
    body, words = HOSTILE[name]
    result = grade("lab4", _hostile(submission, body), tasks=("lstm_cell",))
    (task,) = result.tasks
    assert task.score == 0 and task.status == "failed"
    assert words in task.message and "banned in this lab" in task.message
    assert all(c.status == "skipped" or c.message.startswith("not run:")
               for c in task.checks if c.name != "uses no banned built-in or construct")
    flags = result.to_json()["flags"]
    assert flags and all(f.startswith("lab4/recurrent.py:") for f in flags) and any(words in f for f in flags)


def test_without_the_static_gate_the_issue_s_route_would_pass_every_other_check(submission):
    """The route really is a working answer that the run-time refusal misses: only reading the source stops it."""
    body, _ = HOSTILE["the issue's DisableTorchFunction route"]
    folder = _hostile(submission, body)
    spec = labs.load("lab4")
    bare = type(spec)(**{**spec.__dict__, "banned_source": ()})
    from grader.run.engine import PROFILES, grade_lab

    (task,) = grade_lab(bare, folder, seed=1, tasks=("lstm_cell",), budget=PROFILES["ci"]).tasks
    assert task.status == "passed", task.message


def test_a_numpy_lab_refuses_the_import_machinery_too(submission):
    result = grade("lab3", submission("lab3", """
        _reference = linear_params

        def linear_params(in_features, out_features, bias=True):
            import sys
            sys.meta_path.clear()  # what would let `import torch` through
            return _reference(in_features, out_features, bias)
    """), tasks=("linear_params",))
    (task,) = result.tasks
    assert task.score == 0 and "sys.meta_path" in task.message
    assert any("sys.meta_path" in f for f in result.to_json()["flags"])


@pytest.mark.parametrize("lab", labs.names())
def test_the_reference_and_every_correct_alternative_use_no_banned_construct(tmp_path, lab):
    spec = labs.load(lab)
    path = REPO / "solutions" / lab / f"{spec.module}.py"
    assert spec.banned_source, f"{lab} bans nothing, so nothing reaching around a ban is refused there"
    for task in spec.tasks:
        assert findings(path, task.function, spec.banned_source) == [], task.name
    try:
        mutants = collect(importlib.import_module(f"tests.mutants.{lab}"))
    except ModuleNotFoundError:
        return
    for i, mutant in enumerate(m for m in mutants if m.expect is None):
        spliced = tmp_path / f"alternative{i}.py"  # as it is graded: appended to the reference module
        spliced.write_text(path.read_text() + "\n\n" + function_source(mutant.function, mutant.task) + "\n")
        assert findings(spliced, mutant.task, spec.banned_source) == [], mutant.id
