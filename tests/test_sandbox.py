"""The worker process: both launchers survive what student code does, and report it."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from grader.sandbox import Limits, Sandbox, StudentFailure, SubprocessLauncher, WorkerConfig, ZygoteLauncher

MODULE = textwrap.dedent('''
    import os, sys
    import numpy as np
    print("noise at import")

    def add(a, b):
        return a + b

    def mutate(a):
        a[0] = 5
        return a

    def spin():
        while True:
            pass

    def bomb():
        return np.ones(10**10)

    def leave():
        sys.exit(3)

    def vanish():
        os._exit(0)

    def cheat():
        import solutions

    def peek():
        import grader

    def torch_please():
        import torch

    def stub(x):
        raise NotImplementedError("Task lab0.stub: not implemented yet")

    def overflow(x):
        return np.exp(x) + np.exp(2 * x)

    def library_refuses():
        import numbers
        return numbers.Complex.__add__(1, 2)
''')


@pytest.fixture(params=["subprocess", "zygote"])
def sandbox(request, tmp_path):
    (tmp_path / "lab0").mkdir()
    (tmp_path / "lab0" / "m.py").write_text(MODULE)
    launcher = SubprocessLauncher() if request.param == "subprocess" else ZygoteLauncher("numpy")
    box = Sandbox(tmp_path / "lab0", WorkerConfig("m", "numpy", {"torch": "no torch in lab0"}),
                  Limits(timeout=2.0, memory_bytes=1024**3), launcher)
    yield box
    box.close()
    if isinstance(launcher, ZygoteLauncher):
        launcher.close()


def test_a_call_returns_plain_data(sandbox):
    reply = sandbox.call("add", (np.ones(3), 2.0), arg_names=("a", "b"))
    assert type(reply.value) is np.ndarray and reply.value.tolist() == [3.0, 3.0, 3.0]
    assert reply.modified == ()


def test_modified_arguments_are_reported_by_name(sandbox):
    assert sandbox.call("mutate", (np.ones(3),), arg_names=("a",)).modified == ("a",)


@pytest.mark.parametrize(("function", "kind", "words"), [
    ("spin", "timeout", "no answer within 2 s"),
    ("bomb", "memory", "MemoryError"),
    ("leave", "error", "sys.exit(3)"),
    ("vanish", "crash", "exited with status 0"),
    ("cheat", "error", "importing solutions is not allowed"),
    ("peek", "error", "importing grader is not allowed"),
    ("torch_please", "error", "no torch in lab0"),
    ("stub", "not_implemented", "Task lab0.stub"),
    ("library_refuses", "error", "NotImplementedError"),  # raised by a library, not by an unfinished stub
    ("missing", "missing", "no function missing"),
])
def test_failures_are_reported_and_the_next_call_still_works(sandbox, function, kind, words):
    with pytest.raises(StudentFailure) as caught:
        sandbox.call(function, (1,) if function == "stub" else ())
    assert caught.value.kind == kind and words in caught.value.describe()
    assert sandbox.call("add", (1, 2)).value == 3


def test_a_traceback_points_at_the_students_own_line(sandbox):
    with pytest.raises(StudentFailure) as caught:
        sandbox.call("add", (np.ones(2), np.ones(3)))
    assert "m.py, line 7, in add" in caught.value.describe()


def test_warnings_a_call_raises_are_reported_once_per_place(sandbox):
    reply = sandbox.call("overflow", (np.full(3, 1000.0),))
    assert reply.warnings == ("RuntimeWarning: overflow encountered in exp",)
    assert sandbox.call("overflow", (np.zeros(3),)).warnings == ()
