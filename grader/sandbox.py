"""The grader's side of the worker: start it, call into it, survive it.

A ``Sandbox`` owns one worker process running ``worker.py`` on a private copy
of the submission. Each call has a wall-clock deadline and a memory ceiling
(an address-space cap inside the worker, and the resident size watched from
here); a worker that overruns either, exits, or crashes is killed with its
whole process group and a fresh one is started for the next call.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from grader import wire

WORKER = Path(__file__).with_name("worker.py")
ZYGOTE = Path(__file__).with_name("zygote.py")
KIT_PACKAGES = ("solutions", "grader", "cli", "assignments", "tests")


@dataclass(frozen=True)
class Limits:
    """Per-call wall-clock limit and memory ceiling of a worker."""

    timeout: float = 10.0
    memory_bytes: int = 2 * 1024**3
    startup_timeout: float = 60.0


@dataclass
class StudentFailure(Exception):
    """The student's code did not return: it raised, hung, crashed or was refused."""

    kind: str  # error | not_implemented | timeout | crash | memory | banned | missing | import
    message: str
    frames: list[list[Any]] = field(default_factory=list)
    exception: str = ""
    banned: list[str] = field(default_factory=list)
    step: int | None = None  # in a chain of calls, the step (from 0) that did not return

    def __str__(self) -> str:
        return self.describe()

    @property
    def status(self) -> str:
        """The task status this failure maps to in a report."""
        return {"not_implemented": "not_implemented", "timeout": "timeout"}.get(self.kind, "error")

    def where(self) -> str:
        if not self.frames:
            return ""
        name, line, func, text = self.frames[-1]
        return f"{name}, line {line}, in {func}: {text}".rstrip(": ")

    def describe(self) -> str:
        head = f"{self.exception}: {self.message}" if self.exception else self.message
        where = self.where()
        return f"{head}\n  at {where}" if where else head


@dataclass(frozen=True)
class Reply:
    """What a call returned: the decoded value and what the worker observed."""

    value: Any
    modified: tuple[str, ...]
    elapsed: float
    banned: tuple[str, ...]
    grads: Any = None
    warnings: tuple[str, ...] = ()  # the warnings the call raised, as "Category: message"
    # in a chain of calls: (argument, step from 0, True if its own call changed it, False if a later one did)
    modified_at: tuple[tuple[str, int, bool], ...] = ()


@dataclass(frozen=True)
class WorkerConfig:
    """Everything that decides how a worker is set up for one lab."""

    module_name: str
    kind: str  # "numpy" or "torch"
    banned_imports: dict[str, str] = field(default_factory=dict)
    banned_calls: tuple[str, ...] = ()
    cap_address_space: bool = True


class Sandbox:
    """One student module, loaded in a worker process, called through plain data."""

    def __init__(self, lab_dir: Path, config: WorkerConfig, limits: Limits = Limits(),
                 launcher: "Launcher | None" = None):
        self.lab_dir = lab_dir
        self.launcher = launcher
        self.config = config
        self.limits = limits
        self._root = Path(tempfile.mkdtemp(prefix="dlkit-"))
        self._copy = self._root / lab_dir.name
        self._proc: Launched | None = None
        self._ready: dict[str, Any] | None = None
        self._timeout = limits.timeout
        self._ids = itertools.count()
        self.functions: tuple[str, ...] = ()
        self.import_failure: StudentFailure | None = None
        self._copy_submission()

    # -- lifecycle -------------------------------------------------------------------

    def _copy_submission(self) -> None:
        self._copy.mkdir()
        for source in sorted(self.lab_dir.glob("*.py")):
            shutil.copyfile(source, self._copy / source.name)

    def start(self) -> None:
        """Start a worker without waiting for it (it imports while the grader does)."""
        if self._proc is not None:
            return
        config = {
            "kind": self.config.kind,
            "module_name": self.config.module_name,
            "module_path": str(self._copy / f"{self.config.module_name}.py"),
            "module_dir": str(self._copy),
            "blocked_imports": list(KIT_PACKAGES),
            "banned_imports": self.config.banned_imports,
            "banned_calls": list(self.config.banned_calls),
            "memory_bytes": self.limits.memory_bytes if self.config.cap_address_space else None,
        }
        self._proc = (self.launcher or SubprocessLauncher()).launch(config, self._copy)
        self._requests = os.fdopen(self._proc.request_fd, "wb", buffering=0)
        self._responses = self._proc.response_fd
        self._ready = None

    def ready(self) -> bool:
        """Wait for the module to import; False (with ``import_failure`` set) if it did not."""
        if self.import_failure is not None:
            return False
        self.start()
        if self._ready is None:
            try:
                self._ready = self._receive(self.limits.startup_timeout, during="importing the module")
            except StudentFailure as failure:
                failure.kind = "import"
                self.import_failure = failure
                self._kill()
                return False
            if not self._ready.get("ready"):
                error = self._ready.get("error", {})
                self.import_failure = StudentFailure(
                    "import", str(error.get("message", "")), list(error.get("frames", [])), str(error.get("type", "")))
                self._kill()
                return False
            self.functions = tuple(str(f) for f in self._ready.get("functions", []))
        return True

    def close(self) -> None:
        self._kill()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        self._ready = None
        if proc is None:
            return
        proc.kill()
        self._requests.close()
        os.close(self._responses)

    # -- calls -----------------------------------------------------------------------

    def call(self, function: str, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
             arg_names: tuple[str, ...] = (), timeout: float | None = None, grad: dict[str, Any] | None = None,
             chain: Sequence[tuple[tuple[Any, ...], dict[str, Any]]] = (),
             links: Sequence[tuple[int, int, str, int, int]] = ()) -> Reply:
        """Run ``function(*args, **kwargs)`` in the worker; raise ``StudentFailure`` if it does not return.

        With ``chain`` (a list of ``(args, kwargs)``, one per step; ``args`` and ``kwargs`` are then
        ignored) the worker calls the function once per step, in one request, and the value is the
        list of the step results. ``links`` ``(step, arg, source, from_step, index)`` pass objects of
        an earlier step on: item ``index`` of its result (``source="result"``) or its argument
        ``index`` (``source="arg"``) becomes argument ``arg`` of ``step`` (steps count from 0).
        """
        if not self.ready():
            assert self.import_failure is not None
            raise self.import_failure
        if chain:
            args, kwargs = chain[0]
        kwargs = kwargs or {}
        request = {
            "id": next(self._ids),
            "function": function,
            "args": [wire.encode_argument(a) for a in args],
            "kwargs": [[k, wire.encode_argument(v)] for k, v in kwargs.items()],
            "arg_names": list(arg_names[: len(args)]) + [f"arg{i}" for i in range(len(arg_names), len(args))],
        }
        if grad is not None:
            request["grad"] = {"wrt": list(grad["wrt"]), "seeds": [wire.encode_argument(s) for s in grad["seeds"]]}
        if chain:
            request["chain"] = [[[wire.encode_argument(a) for a in step_args],
                                 [[k, wire.encode_argument(v)] for k, v in step_kwargs.items()]]
                                for step_args, step_kwargs in chain]
            request["links"] = [[int(s), int(a), str(source), int(f), int(i)] for s, a, source, f, i in links]
        try:
            wire.write_frame(self._requests, request)  # type: ignore[arg-type]
        except (BrokenPipeError, OSError):
            self._kill()
            raise StudentFailure("crash", "the worker process had already ended") from None
        reply = self._receive(timeout or self.limits.timeout, during=f"running {function}")
        if reply.get("id") != request["id"]:
            self._kill()
            raise StudentFailure("crash", "the worker answered out of turn (did the code write to the grader's pipe?)")
        if not reply.get("ok"):
            error = reply.get("error", {})
            step = error.get("step")
            raise StudentFailure(str(error.get("kind", "error")), str(error.get("message", "")),
                                 list(error.get("frames", [])), str(error.get("type", "")),
                                 [str(b) for b in error.get("banned", [])], step if type(step) is int else None)
        return Reply(
            value=wire.decode(reply["value"]),
            modified=tuple(str(m) for m in reply.get("modified", [])),
            elapsed=float(reply.get("elapsed", 0.0)),
            banned=tuple(str(b) for b in reply.get("banned", [])),
            grads=wire.decode(reply["grads"]) if "grads" in reply else None,
            warnings=tuple(str(w) for w in reply.get("warnings", []) if isinstance(w, str)),
            modified_at=tuple((m[0], m[1], m[2]) for m in reply.get("modified_at", [])
                              if type(m) is list and len(m) == 3 and type(m[0]) is str and type(m[1]) is int
                              and type(m[2]) is bool),
        )

    def _receive(self, timeout: float, during: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        self._timeout = timeout
        header = self._read_exactly(8, deadline, during)
        (size,) = struct.unpack("<Q", header)
        if size > wire.MAX_FRAME:
            self._kill()
            raise StudentFailure("crash", f"the worker sent {size} bytes, more than a result may be")
        try:
            message = wire.parse_frame(self._read_exactly(size, deadline, during))
        except wire.ProtocolError as exc:
            self._kill()
            raise StudentFailure("crash", f"the worker sent something that is not plain data ({exc})") from None
        if type(message) is not dict:
            self._kill()
            raise StudentFailure("crash", "the worker sent something that is not a reply")
        return message

    def _read_exactly(self, size: int, deadline: float, during: str) -> bytes:
        assert self._proc is not None
        chunks: list[bytes] = []
        while size:
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill()
                raise StudentFailure("timeout", f"no answer within {self._timeout:g} s while {during}: "
                                                "is there an infinite loop or a very slow Python loop?")
            readable, _, _ = select.select([self._responses], [], [], min(left, 0.1))
            if not readable:
                self._watch_memory(during)
                continue
            chunk = os.read(self._responses, min(size, 1 << 20))
            if not chunk:
                code = self._proc.exit_code()
                self._kill()
                raise StudentFailure("crash", self._death_message(code, during))
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _watch_memory(self, during: str) -> None:
        assert self._proc is not None
        try:
            with open(f"/proc/{self._proc.pid}/statm") as f:
                resident = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            return
        if resident > self.limits.memory_bytes + 512 * 1024**2:
            self._kill()
            raise StudentFailure("memory", f"used more than {self.limits.memory_bytes // 1024**2} MiB of memory while {during}")

    @staticmethod
    def _death_message(code: int | None, during: str) -> str:
        if code is None:
            return f"the worker process ended while {during}"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (a segmentation fault)" if name == "SIGSEGV" else ""
            return f"the worker process was killed by {name}{hint} while {during}"
        return f"the worker process exited with status {code} while {during} (sys.exit or os._exit in the code?)"


# ----------------------------------------------------------------------------- launching workers


class Launched:
    """A running worker: its pid, the grader's ends of the two pipes, and how to end it."""

    def __init__(self, pid: int, request_fd: int, response_fd: int, wait: Any, terminate: Any):
        self.pid = pid
        self.request_fd = request_fd
        self.response_fd = response_fd
        self._wait = wait
        self._terminate = terminate

    def exit_code(self) -> int | None:
        """Wait for the process to end and return its status (negative: killed by that signal)."""
        return self._wait()

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._terminate()


class SubprocessLauncher:
    """A fresh interpreter per worker: ``python -I worker.py`` (imports NumPy each time).

    With ``user`` (the grader must be root) the worker runs as that user, with no
    supplementary groups: it can read its copy of the submission and the kit's code,
    but nothing the grader keeps private (the Gradescope autograder uses this).
    """

    def __init__(self, user: str | None = None):
        self.user = user

    def launch(self, config: dict[str, Any], cwd: Path) -> Launched:
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        config = dict(config, request_fd=req_r, response_fd=res_w)
        env = worker_environment()
        identity = _identity(self.user)
        if identity:
            _open_to_others(cwd)
            env["HOME"] = identity.pop("home")
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", str(WORKER), json.dumps(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(req_r, res_w), cwd=cwd, env=env, start_new_session=True, **identity,
        )
        os.close(req_r)
        os.close(res_w)
        return Launched(proc.pid, req_w, res_r, proc.wait, proc.wait)


class ZygoteLauncher:
    """Workers forked from a zygote that has NumPy (and PyTorch) imported already.

    The zygote (``zygote.py``) is a fresh interpreter, not a fork of the grader,
    so nothing of the grader's memory (reference solutions included) is in it;
    each worker then costs a fork instead of an interpreter start and its imports.
    One zygote serves one grader process; it ends when its socket closes.

    With ``user`` (the grader must be root) the zygote itself runs as that user, with no
    supplementary groups, so every worker it forks does too (``dlkit grade --worker-user``).
    """

    def __init__(self, kind: str, user: str | None = None):
        self.kind = kind
        self.user = user
        self._socket: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def _ensure(self) -> socket.socket:
        if self._socket is None or self._proc is None or self._proc.poll() is not None:
            ours, theirs = socket.socketpair()
            env, identity = worker_environment(), _identity(self.user)
            if identity:
                env["HOME"] = identity.pop("home")
                identity["cwd"] = "/"
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-B", str(ZYGOTE), self.kind, str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),), env=env, start_new_session=True, **identity,
            )
            theirs.close()
            self._socket = ours
        return self._socket

    def _ask(self, request: dict[str, Any], fds: list[int] = []) -> dict[str, Any]:
        control = self._ensure()
        socket.send_fds(control, [json.dumps(request).encode()], fds)
        answer = control.recv(1 << 16)
        if not answer:
            raise StudentFailure("crash", "the worker launcher stopped")
        result: dict[str, Any] = json.loads(answer)
        return result

    def launch(self, config: dict[str, Any], cwd: Path) -> Launched:
        if self.user is not None:
            _open_to_others(cwd)
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            pid = int(self._ask({"launch": config, "cwd": str(cwd)}, [req_r, res_w])["pid"])
        finally:
            os.close(req_r)
            os.close(res_w)
        codes: list[int | None] = []

        def wait() -> int | None:
            if not codes:
                codes.append(self._ask({"status": pid}).get("code"))
            return codes[0]

        return Launched(pid, req_w, res_r, wait, wait)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._proc is not None:
            self._proc.wait()
            self._proc = None


Launcher = SubprocessLauncher | ZygoteLauncher


def _identity(user: str | None) -> dict[str, Any]:
    """``subprocess.Popen`` arguments that run a process as ``user``, and its home folder as "home"
    (nothing for None: the grader's own user)."""
    if user is None:
        return {}
    import pwd

    account = pwd.getpwnam(user)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": [], "home": account.pw_dir}


def _open_to_others(copy: Path) -> None:
    """Let another user read the submission's private copy: its folder readable, the folder
    above it (the sandbox's own temporary folder) only traversable. Nothing is writable."""
    copy.parent.chmod(0o711)
    copy.chmod(0o755)
    for path in copy.iterdir():
        path.chmod(0o644)


def worker_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DLKIT"))}
    env.update(single_threaded())
    return env


def single_threaded() -> dict[str, str]:
    """Student code runs on one thread: BLAS pools only add memory and noise to the limits."""
    return {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
