"""The grader's side of the worker: start it, call into it, survive it.

A ``Sandbox`` owns one worker process running ``worker.py`` on a private copy
of the submission (written from what ``grader.sandbox.intake`` read, never copied by
path). Each call has a wall-clock deadline and a memory ceiling (an address-space
cap inside the worker, and the resident size watched from here); a worker that
overruns either, exits, or crashes is killed with its whole process group and a
fresh one is started for the next call. What the worker sends back is read within
a budget (``wire.parse_frame``): a reply too large or too deep is that call's error.

The walls a worker puts up (``confine.py``) are decided here: ``walls`` lists what it
may read (the Python installation and the packages its lab needs, nothing of the kit,
of ``solutions/`` or of other submissions) and write (its private folder). With a pool
of worker users (``WorkerUsers``), concurrent workers also run as distinct unprivileged
uids, in 0700 folders they own. ``contain`` and ``end_strays`` make a grading process
the reaper of everything its workers start.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Callable, Collection, Literal, Sequence, get_args

from grader.sandbox import confine, wire
from grader.sandbox.intake import LabFiles, read_below

WORKER = Path(__file__).with_name("worker.py")
ZYGOTE = Path(__file__).with_name("zygote.py")
KIT_PACKAGES = ("solutions", "grader", "cli", "assignments", "tests")
THREADS_PER_WORKER = 64  # with a worker user: threads it may start (it may start no process at all)


@dataclass(frozen=True)
class Limits:
    """A worker's deadlines and memory ceiling: ``timeout`` per call (a task may declare its own),
    ``import_timeout`` for importing the student's module, ``startup_timeout`` for the worker's own start
    before any student code runs (the interpreter, NumPy/PyTorch, the walls: the kit's code, not the
    student's, so a slow machine is not mistaken for a slow submission)."""

    timeout: float = 10.0
    memory_bytes: int = 2 * 1024**3
    startup_timeout: float = 60.0
    # the student's module, imported: a module that only defines functions takes milliseconds
    import_timeout: float = 5.0


# Why a call did not return: it raised (error), still raises NotImplementedError, ran out of time or memory,
# crashed the worker, called a banned function, is not in the module; or the module did not import; or the
# machine could not put up the worker's walls (sandbox: not the student's fault).
FailureKind = Literal["error", "not_implemented", "timeout", "crash", "memory", "banned", "missing", "import", "sandbox"]


@dataclass
class StudentFailure(Exception):
    """The student's code did not return: it raised, hung, crashed or was refused."""

    kind: FailureKind
    message: str
    frames: list[list[Any]] = field(default_factory=list)
    exception: str = ""
    banned: list[str] = field(default_factory=list)
    step: int | None = None  # in a chain of calls, the step (from 0) that did not return
    printed: str = ""  # what the student's code printed during the call (trimmed by the worker)

    @property
    def status(self) -> Literal["not_implemented", "timeout", "error"]:
        """The task status this failure maps to in a report."""
        return "not_implemented" if self.kind == "not_implemented" else "timeout" if self.kind == "timeout" else "error"

    def where(self) -> str:
        if not self.frames:
            return ""
        name, line, func, text = self.frames[-1]
        return f"{name}, line {line}, in {func}: {text}".rstrip(": ")

    def describe(self) -> str:
        head = f"{self.exception}: {self.message}" if self.exception else self.message
        where = self.where()
        return f"{head}\n  at {where}" if where else head

    __str__ = describe


@dataclass(frozen=True)
class Reply:
    """What a call returned: the decoded value and what the worker observed."""

    value: Any
    modified: tuple[str, ...]
    banned: tuple[str, ...]
    grads: Any = None
    warnings: tuple[str, ...] = ()  # the warnings the call raised, as "Category: message"
    printed: str = ""  # what the student's code printed during the call (trimmed by the worker)
    # in a chain of calls: (argument, step from 0, True if its own call changed it, False if a later one did)
    modified_at: tuple[tuple[str, int, bool], ...] = ()
    global_rng: bool = False  # the call changed NumPy's global random state (np.random.seed, np.random.randn, ...)


@dataclass(frozen=True)
class WorkerConfig:
    """Everything that decides how a worker is set up for one lab."""

    module_name: str
    kind: str  # "numpy" or "torch"
    banned_imports: dict[str, str] = field(default_factory=dict)
    banned_calls: tuple[str, ...] = ()
    cap_address_space: bool = True
    cuda: bool = False  # initialise CUDA before the walls go up (a lab with CUDA checks, on a machine with a GPU)
    meta: bool = True  # load PyTorch's meta kernels beside the module's import (a lab with checks on the meta device)
    kernel_walls: bool = True  # Landlock and seccomp (the tests turn them off to prove the other layers alone)
    also_readable: tuple[str, ...] = ()  # trusted folders the kit itself puts in reach (never a submission's)


class Sandbox:
    """One student module, loaded in a worker process, called through plain data.

    ``files`` is what ``grader.sandbox.intake`` read of the lab's folder (a folder path is read through
    it too). ``slot`` picks the worker's identity from the launcher's pool of worker users: two
    sandboxes alive at the same time get different slots.
    """

    def __init__(self, files: LabFiles | Path, config: WorkerConfig, limits: Limits = Limits(),
                 launcher: "Launcher | None" = None, slot: int = 0):
        self.files = files if isinstance(files, LabFiles) else read_below(files, (), shown=files.name)
        self.launcher = launcher
        self.config = config
        self.limits = limits
        self.identity = (launcher.users.pick(slot) if launcher is not None and launcher.users else None)
        self._root = Path(tempfile.mkdtemp(prefix="dlkit-"))
        self._copy = self._root / "lab"
        self.lab_dir = self._root / "source"  # the grader's own copy, for checks that read the source as text
        self._proc: Launched | None = None
        self._ready: dict[str, Any] | None = None
        self._ids = itertools.count()
        self.layers: tuple[str, ...] = ()  # the walls the worker stands behind, as it said before any student code ran
        self.import_failure: StudentFailure | None = None
        self._copy_submission()

    # -- lifecycle -------------------------------------------------------------------

    def _copy_submission(self) -> None:
        for folder in (self._copy, self.lab_dir):
            folder.mkdir(mode=0o700)
            self.files.write(folder)
        if self.identity is not None:  # the worker's own 0700 folder; the folder above it only traversable
            self._root.chmod(0o711)
            for path in [self._copy, *self._copy.iterdir()]:
                os.chown(path, self.identity.uid, self.identity.gid)

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
            "nproc": THREADS_PER_WORKER if self.identity is not None else None,
            "cuda": self.config.cuda,
            "meta": self.config.meta,
            "walls": (walls(self.config.kind, self._copy, self.config.cuda, self.config.also_readable)
                      if self.config.kernel_walls else None),
        }
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        try:  # the worker's ends of the two pipes: the worker has its own copies once launched
            self._proc = (self.launcher or SubprocessLauncher()).launch(config, self._copy, self.identity,
                                                                        (req_r, res_w))
        except BaseException:  # no worker: the grader's ends too
            os.close(req_w)
            os.close(res_r)
            raise
        finally:
            os.close(req_r)
            os.close(res_w)
        self._requests = os.fdopen(req_w, "wb", buffering=0)
        self._responses = res_r

    def ready(self) -> bool:
        """Wait for the module to import; False (with ``import_failure`` set) if it did not."""
        if self.import_failure is not None:
            return False
        self.start()
        if self._ready is None:
            try:
                hello = self._receive(self.limits.startup_timeout, during="starting the worker")
                if "confined" not in hello:
                    raise StudentFailure("sandbox", str(hello.get("error", "the worker did not say how it is confined")))
                self.layers = tuple(str(layer) for layer in hello["confined"])
                self._ready = self._receive(self.limits.import_timeout, during="importing the module")
                if not self._ready.get("ready"):
                    error = self._ready.get("error", {})
                    error = error if type(error) is dict else {}  # the module may have written this reply itself
                    raise StudentFailure("import", str(error.get("message", "")), _frames(error.get("frames")),
                                         str(error.get("type", "")))
            except StudentFailure as failure:
                if failure.kind != "sandbox":
                    failure.kind = "import"
                self.import_failure = failure
                self._kill()
                return False
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
        With ``chain`` (one ``(args, kwargs)`` per step; ``args`` and ``kwargs`` are then ignored) the value is
        the list of the step results, and ``links`` pass objects of an earlier step on (``worker.run``)."""
        if not self.ready():
            assert self.import_failure is not None
            raise self.import_failure
        steps = list(chain) or [(args, kwargs or {})]
        width = max(len(a) for a, _ in steps)
        request: wire.CallRequest = {
            "id": next(self._ids),
            "function": function,
            "steps": [[[wire.encode_argument(a) for a in step_args],
                       [[k, wire.encode_argument(v)] for k, v in step_kwargs.items()]]
                      for step_args, step_kwargs in steps],
            "links": [[int(s), int(a), str(source), int(f), int(i)] for s, a, source, f, i in links],
            "arg_names": list(arg_names[:width]) + [f"arg{i}" for i in range(len(arg_names), width)],
        }
        if grad is not None:
            request["grad"] = {"wrt": list(grad["wrt"]), "seeds": [wire.encode_argument(s) for s in grad["seeds"]]}
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
            error = error if type(error) is dict else {}
            step = error.get("step")
            # the worker is the student's: believe only a kind the grader knows
            kind: FailureKind = error["kind"] if error.get("kind") in get_args(FailureKind) else "error"
            raise StudentFailure(kind, str(error.get("message", "")),
                                 _frames(error.get("frames")), str(error.get("type", "")),
                                 _strings(error.get("banned")), step if type(step) is int else None,
                                 _printed(reply))
        try:
            values = reply.get("values")
            if type(values) is not list:
                raise wire.ProtocolError("the reply has no list of values")
            decoded = [wire.decode(v) for v in values]
            grads = wire.decode(reply["grads"]) if "grads" in reply else None
        except wire.ProtocolError as exc:
            raise StudentFailure("error", f"the result is not plain data ({exc})") from None
        modified_at = tuple((m[0], m[1], m[2]) for m in reply.get("modified", []) if type(m) is list and len(m) == 3
                            and type(m[0]) is str and type(m[1]) is int and type(m[2]) is bool)
        return Reply(
            value=decoded if chain else (decoded[0] if decoded else None),
            modified=tuple(dict.fromkeys(m[0] for m in modified_at)),
            banned=tuple(_strings(reply.get("banned"))),
            grads=grads,
            warnings=tuple(_strings(reply.get("warnings"))),
            modified_at=modified_at,
            printed=_printed(reply),
            global_rng=reply.get("global_rng") is True,
        )

    def _receive(self, timeout: float, during: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        header = self._read_exactly(8, deadline, timeout, during)
        (size,) = struct.unpack("<Q", header)
        if size > wire.MAX_FRAME:
            self._kill()
            raise StudentFailure("crash", f"the worker sent {size} bytes, more than a result may be")
        payload = self._read_exactly(size, deadline, timeout, during)
        try:
            message = wire.parse_frame(payload, seconds=max(1.0, min(wire.DECODE_SECONDS, deadline - time.monotonic())))
        except wire.TooLarge as exc:  # the frame was read whole: the worker can go on
            raise StudentFailure("error", f"the result is too large or too deep ({exc})") from None
        except wire.ProtocolError as exc:
            self._kill()
            raise StudentFailure("crash", f"the worker sent something that is not plain data ({exc})") from None
        if type(message) is not dict:
            self._kill()
            raise StudentFailure("crash", "the worker sent something that is not a reply")
        return message

    def _read_exactly(self, size: int, deadline: float, timeout: float, during: str) -> bytes:
        assert self._proc is not None
        chunks: list[bytes] = []
        while size:
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill()
                raise StudentFailure("timeout", f"no answer within {timeout:g} s while {during}: "
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


def _frames(value: Any) -> list[list[Any]]:
    if type(value) is not list:
        return []
    return [f for f in value if type(f) is list and len(f) == 4 and type(f[0]) is str and type(f[1]) is int
            and type(f[2]) is str and type(f[3]) is str][-4:]


def _printed(reply: dict[str, Any]) -> str:
    """The student's printed output a reply carries ("" for none, or anything that is not text)."""
    text = reply.get("printed", "")
    return text[:2000] if type(text) is str else ""


def _strings(value: Any) -> list[str]:
    return [v for v in value if type(v) is str][:16] if type(value) is list else []


# ----------------------------------------------------------------------------- the walls


def walls(kind: str, private: Path, cuda: bool = False, also: Sequence[str] = ()) -> dict[str, list[str]]:
    """What a worker of a ``kind`` lab may touch once its walls are up (``confine.confine``)."""
    read = list(readable(kind)) + list(also)
    devices: list[str] = []
    if cuda:
        read += ["/proc/driver/nvidia", "/sys", "/proc/self"]
        devices = sorted(str(p) for p in Path("/dev").glob("nvidia*"))
    return {"read": read, "write": [str(private), os.devnull], "devices": devices}


@functools.cache
def readable(kind: str) -> tuple[str, ...]:
    """The paths a worker may read: Python's standard library, the packages its lab needs and their
    requirements (NumPy; PyTorch too in a PyTorch lab, and in a NumPy lab nothing of it), the system's
    shared libraries, and a few files the C library reads. Never the kit, ``solutions/``, the
    submissions, site-packages as a whole, or Python folders other than the standard library's."""
    paths: list[str] = []
    libraries = {os.path.realpath(p) for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}}
    for library in sorted(libraries):
        paths += _entries(library, lambda name: name not in ("site-packages", "dist-packages"))
    paths += package_paths(("torch", "numpy") if kind == "torch" else ("numpy",))
    # (a folder reached twice through links: its entries once, as the result is de-duplicated below)
    for root in ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib"):
        paths += _entries(os.path.realpath(root), lambda name: not name.startswith("python"))
    paths += ["/etc/ld.so.cache", "/etc/localtime", "/usr/share/zoneinfo", "/dev/urandom", "/dev/zero"]
    return tuple(dict.fromkeys(paths))


def _entries(folder: str, keep: Any) -> list[str]:
    try:
        return [os.path.join(folder, name) for name in sorted(os.listdir(folder)) if keep(name)]
    except OSError:
        return []


# A RECORD line's path up to its first separator: quoted (a path with a comma in it) or not
_RECORD_TOP = re.compile(r'^(?:"([^"/\\\r\n]*)|([^,/\\\r\n]*))', re.MULTILINE)


def _record_tops(dist: Any) -> set[str]:
    """The first path component of every file a distribution installed, read from its RECORD as text
    (``dist.files`` builds an object per file: a second and more for PyTorch's 20,000)."""
    record = dist.read_text("RECORD")
    if record is None:
        return {PurePath(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
    return {quoted or plain for quoted, plain in _RECORD_TOP.findall(record)} - {"", ".."}


@functools.cache
def package_paths(names: tuple[str, ...]) -> tuple[str, ...]:
    """The top-level files and folders of the installed distributions ``names`` and of everything they
    require (extras left out), as ``importlib.metadata`` records them."""
    from importlib import metadata

    paths: list[str] = []
    todo, seen = list(names), set()
    while todo:
        try:
            dist = metadata.distribution(todo.pop())
        except metadata.PackageNotFoundError:
            continue
        about = dist.metadata  # parsed once: each ``dist.metadata`` parses the file again
        key = re.sub(r"[-_.]+", "-", str(about["Name"]).lower())
        if key in seen:
            continue
        seen.add(key)
        base = Path(str(dist.locate_file("")))
        paths += [str(base / top) for top in sorted(_record_tops(dist)) if not top.endswith(".pth")]
        for requirement in about.get_all("Requires-Dist") or dist.requires or []:
            if "extra ==" not in requirement:
                todo.append(re.split(r"[\s;<>=!~\[(]", requirement.strip(), maxsplit=1)[0])
    return tuple(paths)


# ----------------------------------------------------------------------------- worker users


@dataclass(frozen=True)
class Identity:
    """An unprivileged user a worker runs as."""

    name: str
    uid: int
    gid: int


class WorkerUsers:
    """A pool of unprivileged users for workers (``--worker-user``): concurrent workers take distinct ones.

    The specification is one user (``nobody``), a comma-separated list (``dlkit-w0,dlkit-w1``), a numbered
    family (``dlkit-w{0..7}``), or a range of bare uids (``60000-60007``: no accounts needed; each worker
    runs as that uid with the same number as its group).
    """

    def __init__(self, spec: str):
        self.members = tuple(_identities(spec))

    def __len__(self) -> int:  # (an empty pool is false)
        return len(self.members)

    def pick(self, slot: int) -> Identity:
        return self.members[slot % len(self.members)]

    def share(self, index: int, count: int) -> "WorkerUsers":
        """The members for grading process ``index`` of ``count`` (every ``count``-th, from ``index``):
        processes running at once never share a user."""
        part = WorkerUsers.__new__(WorkerUsers)
        part.members = self.members[index::count]
        return part


def _identities(spec: str) -> list[Identity]:
    import pwd

    spec = spec.strip()
    numbered = re.fullmatch(r"(\d+)-(\d+)", spec)
    if numbered:
        low, high = int(numbered.group(1)), int(numbered.group(2))
        if not 0 < low <= high or high - low > 1023:
            raise ValueError(f"'{spec}' is not a range of uids such as 60000-60007 (at most 1024, not 0)")
        return [Identity(str(uid), uid, uid) for uid in range(low, high + 1)]
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        family = re.fullmatch(r"(.*)\{(\d+)\.\.(\d+)\}(.*)", part)
        if family:
            first, last = int(family.group(2)), int(family.group(3))
            names += [f"{family.group(1)}{i}{family.group(4)}" for i in range(first, last + 1)]
        else:
            names.append(part)
    found = []
    for name in names:
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            raise ValueError(f"no user '{name}' on this machine (create it: useradd --system --no-create-home "
                             f"--shell /usr/sbin/nologin {name})") from None
        if account.pw_uid == 0:
            raise ValueError(f"'{name}' is root: a worker user must be unprivileged")
        found.append(Identity(name, account.pw_uid, account.pw_gid))
    if not found:
        raise ValueError("no worker user given")
    return found


# ----------------------------------------------------------------------------- launching workers


@dataclass(frozen=True)
class Launched:
    """A running worker: its pid, and how to end it."""

    pid: int
    # wait for the process to end and return its status (negative: killed by that signal)
    exit_code: Callable[[], int | None]
    # end the worker and its process group (the pid is its parent's unreaped child until then, so it
    # names no other process), and collect its status
    kill: Callable[[], None]


class SubprocessLauncher:
    """A fresh interpreter per worker: ``python -I worker.py`` (imports NumPy each time).

    With ``users`` (the grader must be root) each worker runs as one of those users, with no
    supplementary groups: it can read its copy of the submission and the kit's code,
    but nothing the grader keeps private (the Gradescope autograder uses this).
    """

    def __init__(self, users: "WorkerUsers | str | None" = None):
        self.users = WorkerUsers(users) if isinstance(users, str) else users

    def channel(self) -> "SubprocessLauncher":
        """This launcher for a forked grading process: itself (each worker is a process of the caller's own)."""
        return self

    def close(self, wait: bool = True) -> None:
        """Nothing to stop: each worker ended with its sandbox."""

    def launch(self, config: dict[str, Any], cwd: Path, identity: Identity | None,
               fds: tuple[int, int]) -> Launched:
        """Start a worker on ``fds``, the read end of its requests' pipe and the write end of its replies'."""
        config = dict(config, request_fd=fds[0], response_fd=fds[1])
        who: dict[str, Any] = {}
        if identity is not None:
            who = {"user": identity.uid, "group": identity.gid, "extra_groups": []}
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", str(WORKER), json.dumps(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=fds, cwd=cwd, env=worker_environment(), start_new_session=True, **who,
        )
        started(proc.pid)

        def wait() -> int | None:
            code = proc.wait()
            _STARTED.discard(proc.pid)
            return code

        def kill() -> None:
            if proc.poll() is None:  # not reaped yet: the pid (and its group) is still this worker's
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                proc.kill()
            wait()

        return Launched(proc.pid, wait, kill)


class ZygoteLauncher:
    """Workers forked from a zygote that has NumPy (and PyTorch) imported already.

    The zygote (``zygote.py``) is a fresh interpreter, not a fork of the grader,
    so nothing of the grader's memory (reference solutions included) is in it;
    each worker then costs a fork instead of an interpreter start and its imports.
    One zygote serves one grader process; it ends when its socket closes. It runs as
    the grader's user, is not dumpable, and reaps its workers' orphans; with ``users``
    (the grader must be root) each worker it forks becomes one of those users before it
    does anything else (``dlkit grade --worker-user``).
    """

    def __init__(self, kind: str, users: "WorkerUsers | str | None" = None, meta: bool = True):
        self.kind = kind
        self.users = WorkerUsers(users) if isinstance(users, str) else users
        self.meta = meta  # a PyTorch zygote loads the meta kernels before forking (for a lab with meta checks)
        self._socket: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = os.getpid()  # only the process that started the zygote can tell whether it still runs

    def start(self) -> None:
        """Start the zygote now, without waiting for its imports (they run while the caller does its own)."""
        self._ensure()

    def channel(self) -> "ZygoteLauncher":
        """This launcher for a grading process about to be forked: the same zygote, over a socket of its own
        (two processes asking over one socket could each read the other's answer). Ask in the parent, before
        the fork; the parent closes its copy (``close``) after it."""
        ours, theirs = socket.socketpair()
        try:
            self._ask({"serve": True}, [theirs.fileno()])
        finally:
            theirs.close()
        twin = copy.copy(self)
        twin._socket, twin._proc, twin._owner = ours, None, -1  # never starts one of its own, nor waits for this one
        return twin

    def _ensure(self) -> socket.socket:
        if self._owner != os.getpid():  # a forked grading process: its Popen cannot poll a zygote it did not start
            if self._socket is None:
                raise StudentFailure("crash", "the worker launcher stopped")
            return self._socket
        if self._socket is None or self._proc is None or self._proc.poll() is not None:
            ours, theirs = socket.socketpair()
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-B", str(ZYGOTE), self.kind, str(theirs.fileno()), "meta" if self.meta else "-"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),), env=worker_environment(), cwd="/", start_new_session=True,
            )
            started(self._proc.pid)
            theirs.close()
            self._socket = ours
        return self._socket

    def _ask(self, request: dict[str, Any], fds: list[int] = []) -> dict[str, Any]:
        control = self._ensure()
        socket.send_fds(control, [json.dumps(request).encode()], fds)
        answer = control.recv(1 << 16)
        if not answer:
            raise StudentFailure("crash", "the worker launcher stopped")
        return json.loads(answer)

    def launch(self, config: dict[str, Any], cwd: Path, identity: Identity | None,
               fds: tuple[int, int]) -> Launched:
        """Fork a worker on ``fds`` (as ``SubprocessLauncher.launch``), sent to the zygote."""
        request: dict[str, Any] = {"launch": config, "cwd": str(cwd)}
        if identity is not None:
            request["uid"], request["gid"] = identity.uid, identity.gid
        pid = int(self._ask(request, list(fds))["pid"])
        codes: list[int | None] = []

        def wait() -> int | None:
            if not codes:
                codes.append(self._ask({"status": pid}).get("code"))
            return codes[0]

        def kill() -> None:
            if not codes:  # the zygote, its parent, kills it (and its group) before it reaps it
                codes.append(self._ask({"kill": pid}).get("code"))

        return Launched(pid, wait, kill)

    def close(self, wait: bool = True) -> None:
        """Stop the zygote (it ends its workers first); with ``wait``, wait until it has."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._proc is not None and wait:
            self._proc.wait()
            _STARTED.discard(self._proc.pid)
            self._proc = None


Launcher = SubprocessLauncher | ZygoteLauncher


def worker_environment() -> dict[str, str]:
    """The environment of a worker (and of a zygote): an allow-list, so no token, no CI variable, no path
    of the grader's reaches the student's code. HOME and TMPDIR are set to the private folder by the worker."""
    keep = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "CUDA_HOME",
            "NVIDIA_VISIBLE_DEVICES", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = "/usr/bin:/bin"
    # student code runs on one thread: BLAS pools only add memory and noise to the limits
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
    return env


# ----------------------------------------------------------------------------- what workers leave behind

_REAPING = False
_STARTED: set[int] = set()  # children this process started on purpose (workers, zygotes, grading processes)


def started(pid: int) -> int:
    """Record a child started on purpose, so that ``end_strays`` leaves it alone while it runs."""
    _STARTED.add(pid)
    return pid


def forget(pid: int) -> None:
    """A child recorded by ``started`` has been reaped."""
    _STARTED.discard(pid)


def contain() -> list[str]:
    """Make this process (a grading process: ``dlkit check``, a batch's grading processes, the batch's parent)
    the reaper of every process its workers start, and not dumpable (no process of the same user may read
    its memory or its descriptors). Returns the layers now up here."""
    global _REAPING
    layers = []
    if confine.set_subreaper():
        _REAPING = True
        layers.append("subreaper")
    confine.set_dumpable(False)
    return layers


def end_strays(keep: Collection[int] = ()) -> int:
    """Kill every child of this process that it did not start on purpose (or that is in ``keep``), and reap
    it, until none is left: as a subreaper it adopts the orphans of its workers' descendants, ``setsid()`` or
    not, each time one of their parents dies. Only a process that called ``contain`` does this (elsewhere no
    orphan is adopted). Returns how many it ended."""
    if not _REAPING:
        return 0
    return confine.end_children(lambda pid: pid in keep or pid in _STARTED)
