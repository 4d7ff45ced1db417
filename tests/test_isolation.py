"""Isolation: each attack a hostile student tried, defeated by the layer meant to defeat it.

The attacks come from grading as the cleverest student in the class would (issue "Sandbox v2"):
links in the submission, killing other students' workers, reading their copies or the zygote's
memory, bombs on the wire, undoing the worker's Python rules, rewriting the grader's report,
reading its environment. Tests that need a kernel feature (Landlock, seccomp), root, or a Python
that other users can run skip with the reason where those are missing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from grader.sandbox import confine
from grader.sandbox.intake import BadSubmission, read_lab
from grader.sandbox.host import Sandbox, StudentFailure, SubprocessLauncher, WorkerConfig, ZygoteLauncher
from tests.conftest import REPO, TEST_LIMITS, grade, uid_pool

LAB = "lab3"
VICTIM, BYSTANDER = "linear_params", "conv_output_size"
REFERENCE = REPO / "solutions" / LAB / "conv.py"

needs_landlock = pytest.mark.skipif(not confine.landlock_abi(), reason="this kernel has no Landlock (Linux 5.13+)")
needs_scopes = pytest.mark.skipif(confine.landlock_abi() < 6, reason="Landlock scopes need ABI 6 (Linux 6.12+)")
needs_seccomp = pytest.mark.skipif(not confine.seccomp_available(), reason="no seccomp filter on this machine")


def hostile(submission, body: str, header: str = "") -> Path:
    """Lab 3's reference with the victim task replaced by ``body``.

    The body lives in a module of its own beside ``conv.py`` (``attack.py``), which the source gate
    (``grader/source.py``, a reading of the graded module) does not read: a student clever enough to
    hide a construct from any reading of the source meets the kernel's walls alone, as here."""
    folder = submission(LAB, header + f"\n\ndef {VICTIM}(in_features, out_features, bias=True):\n"
                        "    from attack import attack\n    return attack(in_features, out_features, bias)\n")
    (folder / LAB / "attack.py").write_text("def attack(in_features, out_features, bias):\n"
                                            + textwrap.indent(textwrap.dedent(body), "    "))
    return folder


def only_the_victim_loses(result, words: str = "") -> None:
    tasks = {t.name: t for t in result.tasks}
    assert tasks[VICTIM].score == 0 and tasks[VICTIM].status != "passed"
    assert words in tasks[VICTIM].message, tasks[VICTIM].message
    assert tasks[BYSTANDER].status == "passed", tasks[BYSTANDER].message


def lab0(tmp_path: Path, source: str, name: str = "lab0") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "m.py").write_text(textwrap.dedent(source))
    return folder


def grade_batch(root: Path, tmp_path: Path, *extra: str) -> dict[str, dict[str, str]]:
    result = CliRunner().invoke(main, ["grade", str(root), "--lab", LAB, "--feedback", str(tmp_path / "feedback"),
                                       "--profile", "ci", *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {row["submission"]: row for row in csv.DictReader(io.StringIO(result.stdout))}


# ----------------------------------------------------------------------------- intake: no links, regular files, limits


def test_a_module_that_links_to_the_reference_is_refused_as_bad_file(tmp_path):
    (tmp_path / LAB).mkdir()
    (tmp_path / LAB / "conv.py").symlink_to(REFERENCE)
    result = grade(LAB, tmp_path, tasks=(VICTIM,))
    assert result.status == "bad_file" and result.score == 0
    assert result.tasks[0].message == f"{LAB}/conv.py is a symbolic link"


def test_a_lab_folder_that_links_to_the_solutions_is_refused(tmp_path):
    (tmp_path / LAB).symlink_to(REFERENCE.parent)
    result = grade(LAB, tmp_path, tasks=(VICTIM,))
    assert result.status == "bad_file" and f"{LAB} is a symbolic link" in result.tasks[0].message


def test_a_helper_that_links_to_a_root_only_file_leaks_nothing(tmp_path):
    (tmp_path / LAB).mkdir()
    (tmp_path / LAB / "conv.py").write_text(REFERENCE.read_text())
    (tmp_path / LAB / "helpers.py").symlink_to("/etc/shadow")
    result = grade(LAB, tmp_path, tasks=(VICTIM,))
    assert result.status == "bad_file" and result.tasks[0].message == f"{LAB}/helpers.py is a symbolic link"
    assert "root:" not in json.dumps(result.to_json())


def test_a_named_pipe_where_the_module_should_be_is_refused_without_waiting(tmp_path):
    (tmp_path / LAB).mkdir()
    os.mkfifo(tmp_path / LAB / "conv.py")
    start = time.monotonic()
    with pytest.raises(BadSubmission, match="is a named pipe"):
        read_lab(tmp_path, LAB, "conv")
    assert time.monotonic() - start < 5


def test_a_module_larger_than_the_limit_is_refused(tmp_path):
    (tmp_path / LAB).mkdir()
    (tmp_path / LAB / "conv.py").write_bytes(b"#" * (2 * 1024 * 1024))
    with pytest.raises(BadSubmission, match="larger than 1 MiB"):
        read_lab(tmp_path, LAB, "conv")


def test_links_in_a_batch_are_those_submissions_own_rows_and_the_batch_finishes(tmp_path):
    """A link to /proc/self/mem once crashed the whole batch (no CSV for anyone)."""
    root = tmp_path / "class"
    for name in ("alice", "mallory", "trudy"):
        (root / name / LAB).mkdir(parents=True)
    (root / "alice" / LAB / "conv.py").write_text(REFERENCE.read_text())
    (root / "mallory" / LAB / "conv.py").symlink_to("/proc/self/mem")
    (root / "trudy" / LAB / "conv.py").symlink_to(REFERENCE)
    (root / "eve").symlink_to(REPO / "solutions")  # a whole submission that is a link (to a folder holding lab3/)
    rows = grade_batch(root, tmp_path, "--jobs", "1")
    assert sorted(rows) == ["alice", "eve", "mallory", "trudy"]
    assert (rows["alice"]["status"], rows["alice"]["score"]) == ("graded", "100")
    for name in ("eve", "mallory", "trudy"):
        assert (rows[name]["status"], rows[name]["score"]) == ("bad_file", "0")
    feedback = json.loads((tmp_path / "feedback" / "trudy.json").read_text())
    assert feedback["tasks"][0]["message"] == f"{LAB}/conv.py is a symbolic link"
    assert "def conv2d_forward" not in (tmp_path / "feedback" / "eve.json").read_text()


# ----------------------------------------------------------------------------- Landlock: files out of reach


@needs_landlock
def test_the_reference_loaded_by_path_cannot_be_read(submission):
    body = f"""
    import importlib.util
    spec = importlib.util.spec_from_file_location("ref", {str(REFERENCE)!r})
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    return ref.linear_params(in_features, out_features, bias)
    """
    result = grade(LAB, hostile(submission, body), tasks=(BYSTANDER, VICTIM), limits=TEST_LIMITS)
    only_the_victim_loses(result, "PermissionError")


@needs_landlock
def test_torch_stays_out_of_a_numpy_lab_even_with_the_import_blocker_removed(submission):
    body = """
    import sys
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_Blocker"]
    for name in [m for m in sys.modules if m.startswith("torch")]:
        del sys.modules[name]
    import torch
    return int(torch.tensor(in_features * out_features + (out_features if bias else 0)).item())
    """
    result = grade(LAB, hostile(submission, body), tasks=(BYSTANDER, VICTIM), limits=TEST_LIMITS)
    only_the_victim_loses(result)
    assert "Error" in {t.name: t for t in result.tasks}[VICTIM].message


@needs_landlock
def test_the_kits_checkout_and_other_files_of_the_machine_are_out_of_reach(tmp_path):
    folder = lab0(tmp_path, """
        def read(path):
            try:
                with open(path, "rb") as f:
                    f.read(1)
                return "read"
            except OSError as error:
                return type(error).__name__
    """)
    with Sandbox(folder, WorkerConfig("m", "numpy"), TEST_LIMITS) as box:
        for path in (REPO / "grader" / "run" / "engine.py", REPO / "README.md", Path("/etc/hostname"), Path.home(),
                     Path(sys.prefix) / "pyvenv.cfg"):
            if path.exists():
                assert box.call("read", (str(path),)).value == "PermissionError", path
        assert box.call("read", (os.path.join(os.path.dirname(os.__file__), "os.py"),)).value == "read"


def _concurrent_read(tmp_path: Path, config: WorkerConfig, launcher) -> str:
    a = lab0(tmp_path, "def read(path):\n    return open(path).read()\n", "a")
    b = lab0(tmp_path, 'SECRET = "the work of bob"\n', "b")
    with Sandbox(b, config, TEST_LIMITS, launcher, slot=1) as bob, \
            Sandbox(a, config, TEST_LIMITS, launcher, slot=0) as alice:
        assert bob.ready() and alice.ready()
        target = bob._copy / "m.py"  # the path a student would guess (or read off /tmp)
        with pytest.raises(StudentFailure) as refused:
            alice.call("read", (str(target),))
    return refused.value.exception


@needs_landlock
def test_a_worker_cannot_read_a_concurrent_workers_copy(tmp_path):
    assert _concurrent_read(tmp_path, WorkerConfig("m", "numpy"), None) == "PermissionError"


def test_workers_of_distinct_users_cannot_read_each_others_copy_even_without_landlock(tmp_path):
    launcher = SubprocessLauncher(uid_pool(2))
    assert _concurrent_read(tmp_path, WorkerConfig("m", "numpy", kernel_walls=False), launcher) == "PermissionError"


ZYGOTE_PEEK = """
    import os

    def peek():
        with open(f"/proc/{os.getppid()}/mem", "rb") as f:
            return f.read(1)
"""


@needs_landlock
def test_a_worker_cannot_open_the_zygotes_memory(tmp_path):
    launcher = ZygoteLauncher("numpy")
    try:
        with Sandbox(lab0(tmp_path, ZYGOTE_PEEK), WorkerConfig("m", "numpy"), TEST_LIMITS, launcher) as box:
            with pytest.raises(StudentFailure) as refused:
                box.call("peek")
        assert refused.value.exception == "PermissionError"
    finally:
        launcher.close()


def test_a_worker_user_cannot_open_the_non_dumpable_zygotes_memory_even_without_landlock(tmp_path):
    launcher = ZygoteLauncher("numpy", uid_pool(1))
    try:
        config = WorkerConfig("m", "numpy", kernel_walls=False)
        with Sandbox(lab0(tmp_path, ZYGOTE_PEEK), config, TEST_LIMITS, launcher) as box:
            with pytest.raises(StudentFailure) as refused:
                box.call("peek")
        assert refused.value.exception == "PermissionError"
    finally:
        launcher.close()


@needs_landlock
def test_the_graders_report_cannot_be_rewritten_through_proc(submission, tmp_path):
    body = """
    import os
    for fd in (1, 2):
        try:
            with open(f"/proc/{os.getppid()}/fd/{fd}", "w") as out:
                out.write('{"score": 100}')
        except OSError:
            pass
    try:
        if os.fork() == 0:  # a daemon that would write after the grader has gone
            os.setsid()
            import time
            time.sleep(2)
            open(f"/proc/{os.getppid()}/fd/1", "w").write("rewritten")
            os._exit(0)
    except OSError:
        pass
    return 0
    """
    report = tmp_path / "report.json"
    with open(report, "w") as out:
        proc = subprocess.run([sys.executable, str(REPO / "cli.py"), "check", LAB, BYSTANDER, VICTIM, "--submission",
                               str(hostile(submission, body)), "--format", "json", "--seed", "1", "--profile", "ci"],
                              stdout=out, stderr=subprocess.PIPE, text=True, timeout=300)
    time.sleep(3)  # longer than the daemon would wait
    data = json.loads(report.read_text())  # still exactly one JSON object, the grader's
    scores = {t["name"]: t["score"] for t in data["tasks"]}
    assert scores[VICTIM] == 0 and scores[BYSTANDER] == 8 and proc.returncode == 1


# ----------------------------------------------------------------------------- seccomp and the reaper: processes


@needs_seccomp
def test_a_worker_can_start_no_process_no_program_and_no_socket(tmp_path):
    folder = lab0(tmp_path, """
        import os, socket, subprocess, threading

        def attempt(what):
            try:
                if what == "fork":
                    pid = os.fork()
                    if pid == 0:
                        os._exit(0)
                elif what == "exec":
                    subprocess.run(["/bin/true"])
                elif what == "socket":
                    socket.socket()
                elif what == "thread":
                    t = threading.Thread(target=lambda: None)
                    t.start()
                    t.join()
                return "allowed"
            except OSError as error:
                return type(error).__name__
    """)
    with Sandbox(folder, WorkerConfig("m", "numpy"), TEST_LIMITS) as box:
        assert [box.call("attempt", (w,)).value for w in ("fork", "exec", "socket")] == ["PermissionError"] * 3
        assert box.call("attempt", ("thread",)).value == "allowed"  # threads are not processes


@needs_seccomp
def test_a_worker_can_signal_no_other_process(tmp_path):
    folder = lab0(tmp_path, """
        import os, signal

        def hit(target):
            pid = {"grader": os.getppid(), "group": -os.getpgid(os.getppid())}[target]
            os.kill(pid, signal.SIGKILL)
    """)
    with Sandbox(folder, WorkerConfig("m", "numpy"), TEST_LIMITS) as box:
        # (kill(-1) is tried only as a worker user, below: should the walls ever fail, a root worker would end
        # every process of the machine)
        for target in ("grader", "group"):
            with pytest.raises(StudentFailure) as refused:
                box.call("hit", (target,))
            assert refused.value.exception == "PermissionError", target
    assert os.getpid() > 0  # (still here)


def test_setsid_and_kill_minus_one_during_a_two_job_batch_harm_no_other_submission(tmp_path):
    """Once two correct submissions got 0 as grader_crash: all workers shared one user."""
    users = uid_pool(2)
    root = tmp_path / "class"
    for name in ("alice", "bob", "carol"):
        (root / name / LAB).mkdir(parents=True)
        (root / name / LAB / "conv.py").write_text(REFERENCE.read_text())
    (root / "mallory" / LAB).mkdir(parents=True)
    (root / "mallory" / LAB / "conv.py").write_text(REFERENCE.read_text() + textwrap.dedent(f"""

        def {VICTIM}(in_features, out_features, bias=True):
            import os, signal
            try:
                os.setsid()
            except OSError:
                pass
            for _ in range(50):
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    pass
            return 0
    """))
    rows = grade_batch(root, tmp_path, "--jobs", "2", "--worker-user", users)
    for name in ("alice", "bob", "carol"):
        assert (rows[name]["status"], rows[name]["score"]) == ("graded", "100"), rows[name]
    assert rows["mallory"]["status"] == "graded" and rows["mallory"][VICTIM] == "0"


def test_the_reaper_ends_a_grandchild_that_called_setsid_after_its_parent_died():
    """Without seccomp (another architecture, an old kernel) a submission could start processes; the grading
    process adopts them as a subreaper and ends them after each submission."""
    script = textwrap.dedent("""
        import os, sys, time
        from grader.sandbox.host import contain, end_strays
        assert "subreaper" in contain()
        read, write = os.pipe()
        child = os.fork()
        if child == 0:
            grandchild = os.fork()
            if grandchild == 0:
                os.setsid()
                time.sleep(60)
                os._exit(0)
            os.write(write, str(grandchild).encode())
            os._exit(0)
        os.waitpid(child, 0)
        grandchild = int(os.read(read, 32))
        time.sleep(0.2)
        with open(f"/proc/{grandchild}/stat") as stat:
            assert int(stat.read().rsplit(")", 1)[1].split()[1]) == os.getpid()  # adopted
        assert end_strays() == 1
        assert not os.path.exists(f"/proc/{grandchild}")
        print("ended")
    """)
    if sys.platform != "linux":
        pytest.skip("a child subreaper is a Linux feature")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.stdout.strip() == "ended", proc.stderr


# ----------------------------------------------------------------------------- the wire: no bomb, no hang


BOMB = """
    import struct, sys
    worker = sys.modules.get("_dlkit_worker") or sys.modules["__main__"]
    payload = {payload}
    worker.RESPONSES.write(struct.pack("<Q", len(payload)) + payload)
    return 0
"""
DEEP = '(b"l" + struct.pack("<I", 1)) * 200_000 + b"N"'
WIDE = 'b"l" + struct.pack("<I", 3_000_000) + b"N" * 3_000_000'
PICKLED_LAUGHS = ('__import__("pickle").dumps(__import__("functools").reduce(lambda x, _: [x] * 10, range(12), 0))')


@pytest.mark.parametrize("payload", [DEEP, WIDE, PICKLED_LAUGHS])
def test_a_decode_bomb_in_check_is_that_tasks_error(submission, payload):
    start = time.monotonic()
    result = grade(LAB, hostile(submission, BOMB.format(payload=payload)), tasks=(BYSTANDER, VICTIM, "same_padding"),
                   limits=TEST_LIMITS)
    only_the_victim_loses(result)
    assert {t.name: t for t in result.tasks}["same_padding"].status == "passed"
    assert time.monotonic() - start < 60


def test_a_decode_bomb_and_a_stuck_submission_in_grade_are_their_own_rows(tmp_path):
    root = tmp_path / "class"
    for name in ("alice", "bomber", "sleeper"):
        (root / name / LAB).mkdir(parents=True)
    (root / "alice" / LAB / "conv.py").write_text(REFERENCE.read_text())
    (root / "bomber" / LAB / "conv.py").write_text(REFERENCE.read_text() + f"\n\ndef {VICTIM}(i, o, bias=True):\n"
                                                   "    from attack import attack\n    return attack()\n")
    (root / "bomber" / LAB / "attack.py").write_text(  # out of the source gate's reading, as in hostile()
        "def attack():\n" + textwrap.indent(textwrap.dedent(BOMB.format(payload=DEEP)), "    "))
    (root / "sleeper" / LAB / "conv.py").write_text(REFERENCE.read_text() + textwrap.dedent("""

        def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
            import time
            time.sleep(2)
            return 1
    """))
    rows = grade_batch(root, tmp_path, "--jobs", "2", "--submission-timeout", "10")
    assert (rows["alice"]["status"], rows["alice"]["score"]) == ("graded", "100")
    assert rows["bomber"]["status"] == "graded" and rows["bomber"][VICTIM] == "0"
    assert rows["bomber"]["conv2d_forward"] == "15"
    assert (rows["sleeper"]["status"], rows["sleeper"]["score"]) == ("timeout", "0")
    assert "more than 10 s" in (tmp_path / "feedback" / "sleeper.json").read_text()


# ----------------------------------------------------------------------------- nothing of the grader within reach


def test_the_worker_sees_none_of_the_graders_environment_and_no_descriptor_but_its_pipes(tmp_path, monkeypatch):
    for name in ("GITHUB_TOKEN", "RUNNER_TEMP", "AWS_SECRET_ACCESS_KEY", "DLKIT_SECRET", "PYTHONPATH"):
        monkeypatch.setenv(name, "hunter2")
    folder = lab0(tmp_path, """
        import os

        def environment():
            return dict(os.environ)

        def descriptors():
            found = []
            for fd in range(256):
                try:
                    os.fstat(fd)
                    found.append(fd)
                except OSError:
                    pass
            return found
    """)
    for launcher in (SubprocessLauncher(), ZygoteLauncher("numpy")):
        with Sandbox(folder, WorkerConfig("m", "numpy"), TEST_LIMITS, launcher) as box:
            env = box.call("environment").value
            assert "hunter2" not in json.dumps(env)
            assert env["HOME"] == env["TMPDIR"] == str(box._copy)
            assert len(box.call("descriptors").value) == 5  # standard streams (/dev/null) and the two pipes
        if isinstance(launcher, ZygoteLauncher):
            launcher.close()


def test_a_worker_started_by_root_has_no_capabilities(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only a worker started by root has capabilities to drop")
    if not confine.landlock_abi() and not confine.seccomp_available():
        pytest.skip("no kernel walls here: the capability drop comes with them")
    folder = lab0(tmp_path, """
        import os

        def chown_own_file():
            open("mine.txt", "w").close()
            os.chown("mine.txt", 1, 1)
    """)
    with Sandbox(folder, WorkerConfig("m", "numpy"), TEST_LIMITS) as box:
        with pytest.raises(StudentFailure) as refused:
            box.call("chown_own_file")
        assert refused.value.exception == "PermissionError"
        assert "no-capabilities" in box.layers


def test_the_report_says_which_walls_the_code_ran_behind(submission):
    result = grade(LAB, submission(LAB), tasks=(BYSTANDER,))
    layers = list(result.isolation)
    assert layers == list(result.to_json()["isolation"])
    assert any(layer.startswith("landlock") for layer in layers) == bool(confine.landlock_abi())
    assert ("seccomp" in layers) == confine.seccomp_available()


def test_doctor_proves_the_walls_on_a_real_worker():
    result = CliRunner().invoke(main, ["doctor"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "a worker here stands behind" in result.output
    expected = "refused (PermissionError)" if confine.landlock_abi() else "ALLOWED"
    assert f"reading one of the grader's files from it: {expected}" in result.output


def test_a_uid_range_that_includes_root_is_a_usage_error():
    result = CliRunner().invoke(main, ["check", LAB, "--worker-user", "0-3"])
    assert result.exit_code == 2 and "range of uids" in result.output
