"""The worker process: both launchers survive what student code does, and report it."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from grader.sandbox.host import Limits, Sandbox, StudentFailure, SubprocessLauncher, WorkerConfig, ZygoteLauncher

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


CHAIN_MODULE = textwrap.dedent('''
    def step(w, dw, state):
        if "v" not in state:
            state["v"] = dw          # keeps the caller's array ...
        else:
            state["v"] *= 0.5        # ... and changes it one step later
            state["v"] += dw
        return w - state["v"], state

    def halt(w, dw, state):
        if state.get("n") == 1:
            raise ValueError("second step")
        state["n"] = 1
        return w, state
''')


@pytest.fixture
def chain_box(tmp_path):
    (tmp_path / "lab0").mkdir()
    (tmp_path / "lab0" / "m.py").write_text(CHAIN_MODULE)
    box = Sandbox(tmp_path / "lab0", WorkerConfig("m", "numpy"), Limits(timeout=5.0, memory_bytes=1024**3))
    yield box
    box.close()


def _loop(n):
    steps = [((np.zeros(2), np.ones(2), {}), {})] + [((None, np.full(2, i + 1.0), None), {}) for i in range(1, n)]
    links = [(i, 0, "result", i - 1, 0) for i in range(1, n)] + [(i, 2, "result", i - 1, 1) for i in range(1, n)]
    return steps, links


def test_a_chain_feeds_each_result_to_the_next_step_and_reports_a_later_change(chain_box):
    steps, links = _loop(3)
    reply = chain_box.call("step", arg_names=("w", "dw", "state"), chain=steps, links=links)
    assert [r[0].tolist() for r in reply.value] == [[-1.0, -1.0], [-3.5, -3.5], [-7.75, -7.75]]
    assert ("dw", 0, False) in reply.modified_at  # step 1's dw, changed by step 2 after it had returned
    assert ("state", 0, True) in reply.modified_at and "dw" in reply.modified


def test_a_chain_can_pass_the_same_argument_object_to_every_step(chain_box):
    steps, links = _loop(2)
    reply = chain_box.call("step", arg_names=("w", "dw", "state"), chain=steps, links=links + [(1, 1, "arg", 0, 1)])
    assert reply.value[1][0].tolist() == [-2.0, -2.0]  # v = dw, then v *= 0.5 halves dw itself: v = 0.5 + 0.5


def test_a_chain_that_raises_reports_the_step(chain_box):
    steps, links = _loop(3)
    with pytest.raises(StudentFailure) as caught:
        chain_box.call("halt", arg_names=("w", "dw", "state"), chain=steps, links=links)
    assert caught.value.step == 1 and "second step" in caught.value.describe()


def test_zygote_workers_run_as_the_worker_user_who_cannot_read_the_graders_private_files(tmp_path):
    """``dlkit grade --worker-user``: the zygote, and so every worker it forks, is that user."""
    import os
    import pwd

    from tests.conftest import unprivileged_venv

    user, _ = unprivileged_venv()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "answers.txt").write_text("the reference")
    (tmp_path / "lab0").mkdir()
    (tmp_path / "lab0" / "m.py").write_text(textwrap.dedent('''
        import os

        def whoami():
            return [os.getuid(), os.getgid(), os.getgroups()]

        def read(path):
            with open(path) as f:
                return f.read()
    '''))
    launcher = ZygoteLauncher("numpy", user)
    box = Sandbox(tmp_path / "lab0", WorkerConfig("m", "numpy"), Limits(timeout=10.0), launcher)
    try:
        account = pwd.getpwnam(user)
        assert box.call("whoami").value == [account.pw_uid, account.pw_gid, []]
        with pytest.raises(StudentFailure) as refused:
            box.call("read", (str(private / "answers.txt"),))
        assert refused.value.exception == "PermissionError"
        assert os.getuid() == 0  # the grader itself is untouched
    finally:
        box.close()
        launcher.close()


def test_a_forked_grading_process_gets_its_workers_from_the_same_zygote_over_a_socket_of_its_own(tmp_path):
    # Two processes asking over one socket could each read the other's answer; and a forked process cannot
    # poll a zygote it did not start, so it used to start a second one (importing PyTorch again: 1 s on lab 4).
    import os
    import subprocess

    (tmp_path / "lab0").mkdir()
    (tmp_path / "lab0" / "m.py").write_text(MODULE)
    config, limits = WorkerConfig("m", "numpy"), Limits(timeout=10.0)
    launcher = ZygoteLauncher("numpy")
    try:
        with Sandbox(tmp_path / "lab0", config, limits, launcher) as box:
            assert box.call("add", (1, 2)).value == 3  # the zygote is up
        own = launcher.channel()
        pid = os.fork()
        if pid == 0:  # a grading process: many workers, each from the zygote, none from a zygote of its own
            code = 1
            try:
                subprocess.Popen = None  # type: ignore[assignment,misc]  (starting a second zygote would need it)
                for n in range(20):
                    with Sandbox(tmp_path / "lab0", config, limits, own, slot=1) as box:
                        assert box.call("add", (n, 1)).value == n + 1
                code = 0
            finally:
                os._exit(code)
        own.close(wait=False)
        for n in range(20):  # meanwhile the parent asks over its own socket
            with Sandbox(tmp_path / "lab0", config, limits, launcher) as box:
                assert box.call("add", (n, 2)).value == n + 2
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        with Sandbox(tmp_path / "lab0", config, limits, launcher) as box:  # the child's socket closed: still served
            assert box.call("add", (5, 5)).value == 10
    finally:
        launcher.close()


@pytest.mark.parametrize("meta", [False, True])
def test_a_pytorch_worker_loads_the_meta_kernels_only_for_a_lab_with_meta_checks(tmp_path, meta):
    # The first operation on the meta device imports sympy (a quarter of a second): a zygote that does it before
    # forking delays every worker, a worker that does it beside its import takes a core from the grading.
    import time

    from grader import labs

    assert [name for name in labs.names() if labs.load(name).meta] == ["lab4"]
    (tmp_path / "lab0").mkdir()
    (tmp_path / "lab0" / "m.py").write_text("import sys\n\ndef loaded():\n    return 'sympy' in sys.modules\n")
    for launcher in (ZygoteLauncher("torch", meta=meta), SubprocessLauncher()):
        box = Sandbox(tmp_path / "lab0", WorkerConfig("m", "torch", meta=meta), Limits(timeout=20.0), launcher)
        try:
            loaded = box.call("loaded").value
            for _ in range(50):  # a worker warms up in a thread beside the module's import
                if loaded or not meta:
                    break
                time.sleep(0.1)
                loaded = box.call("loaded").value
            assert loaded is meta, type(launcher).__name__
        finally:
            box.close()
            if isinstance(launcher, ZygoteLauncher):
                launcher.close()


FORGED_READY = textwrap.dedent('''
    import os, struct
    # a made-up "import failed" reply, written at import to every descriptor the worker may answer on
    body = b"d" + struct.pack("<I", 2) + b"s" + struct.pack("<I", 5) + b"ready" + b"F" \\
        + b"s" + struct.pack("<I", 5) + b"error" + b"i" + struct.pack("<q", 5)
    for fd in range(3, 64):
        try:
            os.write(fd, struct.pack("<Q", len(body)) + body)
        except OSError:
            pass

    def add(a, b):
        return a + b
''')


@pytest.mark.parametrize("launcher", ["subprocess", "zygote"])
def test_a_module_that_forges_a_malformed_import_reply_is_an_import_failure_not_a_grader_error(tmp_path, launcher):
    (tmp_path / "lab0").mkdir()
    (tmp_path / "lab0" / "m.py").write_text(FORGED_READY)
    chosen = SubprocessLauncher() if launcher == "subprocess" else ZygoteLauncher("numpy")
    box = Sandbox(tmp_path / "lab0", WorkerConfig("m", "numpy", {}), Limits(timeout=2.0), chosen)
    try:
        assert not box.ready()
        assert box.import_failure is not None and box.import_failure.kind == "import"
    finally:
        box.close()
        if isinstance(chosen, ZygoteLauncher):
            chosen.close()


def _record_tops_line_by_line(record: str) -> set[str]:
    """RECORD read as CSV, one line at a time (the reading ``host._record_tops`` does in one pass)."""
    tops = set()
    for line in record.splitlines():
        path = line.rsplit(",", 2)[0].strip('"') if line.count(",") >= 2 else line
        top = path.replace("\\", "/").split("/", 1)[0]
        if top and top != "..":
            tops.add(top)
    return tops


def test_the_walls_read_every_installed_distributions_top_level_entries_as_its_record_lists_them():
    from importlib import metadata

    from grader.sandbox.host import _record_tops

    checked = 0
    for dist in metadata.distributions():
        record = dist.read_text("RECORD")
        if record is not None:
            assert _record_tops(dist) == _record_tops_line_by_line(record), dist.metadata["Name"]
            checked += 1
    assert checked >= 10  # torch, numpy, hypothesis, click... are installed in the test environment

    class Quoted:  # a path with a comma is quoted, as the csv module writes it
        @staticmethod
        def read_text(name: str) -> str:
            return '"odd,name/x.py",sha256=abc,12\r\nplain.py,sha256=def,3\r\n../../bin/tool,,\r\n'

    assert _record_tops(Quoted()) == {"odd,name", "plain.py"} == _record_tops_line_by_line(Quoted.read_text(""))


def test_a_launch_that_fails_leaves_no_pipe_open_in_the_grader(tmp_path):
    import os

    class Refusing(SubprocessLauncher):
        def launch(self, *args, **kwargs):
            raise OSError("no process for you")

    (tmp_path / "lab0").mkdir()
    (tmp_path / "lab0" / "m.py").write_text(MODULE)
    box = Sandbox(tmp_path / "lab0", WorkerConfig("m", "numpy"), Limits(timeout=5.0), Refusing())
    before = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError, match="no process for you"):
        box.start()
    assert sorted(os.listdir("/proc/self/fd")) == before
    box.close()


@pytest.mark.parametrize("launch", ["subprocess", "zygote"])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_the_students_code_runs_with_the_garbage_collector_on(tmp_path, launch, kind):
    # The zygote and the worker import their libraries with collections off (they would free nothing and cost a
    # tenth of PyTorch's import): they must be back on before any student code runs.
    (tmp_path / "lab0").mkdir()
    (tmp_path / "lab0" / "m.py").write_text("import gc\n\ndef collecting():\n    return gc.isenabled()\n")
    launcher = SubprocessLauncher() if launch == "subprocess" else ZygoteLauncher(kind, meta=False)
    try:
        with Sandbox(tmp_path / "lab0", WorkerConfig("m", kind), Limits(timeout=60.0), launcher) as box:
            assert box.call("collecting").value is True
    finally:
        launcher.close()
