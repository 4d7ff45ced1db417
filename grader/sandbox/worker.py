"""The worker: the only process in which a student's code ever runs.

Started by ``grader.sandbox.host``, either as ``python -I worker.py CONFIG`` with two
pipe descriptors, or forked from a forkserver that has NumPy (and PyTorch)
imported already; the grader itself never imports it. In order, it

1. imports NumPy (and PyTorch for a PyTorch lab), the wire format and the walls
   (``confine.py``), by path; closes every descriptor but its two pipes;
2. puts up the kernel's walls (``confine.confine``): an address-space cap and a
   process cap, Landlock (it may read the Python installation and the packages the
   lab needs, and write only its private folder), a seccomp filter (no new
   processes, no sockets, signals only to itself), no capabilities, not dumpable;
   then says which walls it stands behind, before any student code has run;
3. closes the doors in Python too (speed bumps behind the walls): blocks imports of
   the kit's own packages and of libraries the lab bans, replaces banned functions
   with tripwires, and (PyTorch labs) refuses, during every student call, any PyTorch
   function named like a banned one, however it is reached;
4. imports the student's module and says whether it imported;
5. answers call requests one at a time until its input closes.

Nothing here is trusted by the grader: every answer is plain data that the
grader validates, so a student who rewrites this process can only hurt their
own score; what the walls forbid, the kernel refuses whatever this process says.
"""

from __future__ import annotations

import contextlib
import dis
import importlib.abc
import importlib.util
import io
import json
import os
import resource
import sys
import threading
import traceback
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np  # noqa: E402

if TYPE_CHECKING:  # the messages' shapes, for the type checker only: at run time wire.py is loaded by path
    from grader.sandbox.wire import CallReply, CallRequest, FailureInfo, Hello, Ready



def _load(name: str, file: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), file))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


wire = _load("_dlkit_wire", "wire.py")
confine = _load("_dlkit_confine", "confine.py")
eager = _load("_dlkit_eager", "eager.py")

CONFIG: dict[str, Any] = {}
REQUESTS: Any = None
RESPONSES: Any = None
torch: Any = None


def setup(config: dict[str, Any], request_fd: int, response_fd: int) -> None:
    """Take the pipes, silence the standard streams, close every other descriptor, and import what
    the lab's code may use (and, where CUDA is to be used, initialise it while files can be opened)."""
    global REQUESTS, RESPONSES, torch
    CONFIG.update(config)
    _close_other_descriptors({request_fd, response_fd})
    REQUESTS = os.fdopen(request_fd, "rb")  # buffered: read(n) returns n bytes, fewer only at the end
    RESPONSES = os.fdopen(response_fd, "wb", buffering=0)
    # The student's prints must never reach the grader's standard output.
    devnull = os.open(os.devnull, os.O_RDWR)
    for stream in (0, 1, 2):
        os.dup2(devnull, stream)
    os.close(devnull)
    home = CONFIG["module_dir"]
    os.environ.update(HOME=home, TMPDIR=home)
    if CONFIG["kind"] == "torch":
        with eager.no_collections():
            import torch  # (global: the name above)

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_num_threads(1)
        eager.skip_compiler_import()  # no torch._dynamo (a second or more) on the first meta operation
        if CONFIG.get("cuda") and torch.cuda.is_available():
            torch.cuda.init()  # the driver opens its devices and libraries now, before the walls go up


def _close_other_descriptors(keep: set[int]) -> None:
    """Nothing the parent had open reaches the student's code: only the two pipes (and 0, 1, 2)."""
    try:
        found = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        found = list(range(3, 256))
    for fd in found:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def put_up_walls() -> list[str]:
    """The kernel's walls (see ``confine.py``), then the worker's own limits; the layers now up."""
    limit = CONFIG.get("memory_bytes")
    if limit:
        try:
            with open("/proc/self/statm") as f:
                in_use = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            in_use = 0
        cap = in_use + int(limit)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    layers = ["address-space-cap"] if limit else []
    nproc = CONFIG.get("nproc")
    if nproc and os.getuid() != 0:
        tasks = _tasks_of(os.getuid()) + int(nproc)
        resource.setrlimit(resource.RLIMIT_NPROC, (tasks, tasks))
        layers.append(f"nproc-cap-{int(nproc)}")
    walls = CONFIG.get("walls")
    if walls is not None:
        layers += confine.confine(walls["read"], walls["write"], walls.get("devices", []))
    return layers


def _tasks_of(uid: int) -> int:
    """Threads already running as ``uid`` (RLIMIT_NPROC counts them all, this process's included)."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue
    return count


def warm_meta() -> None:
    """Load what PyTorch loads on the first operation on the meta device (the zygote calls it too)."""
    import torch as t

    try:
        t.zeros(1, device="meta") + 1
    except Exception:  # noqa: BLE001 - a PyTorch without meta kernels: the checks will say so
        pass


def send(message: Hello | Ready | CallReply) -> None:
    wire.write_frame(RESPONSES, message)


def receive() -> Any:
    header = REQUESTS.read(8)
    if len(header) < 8:
        raise EOFError
    size = int.from_bytes(header, "little")
    payload = REQUESTS.read(size)
    if len(payload) < size:
        raise EOFError
    return wire.parse_frame(payload)


# ----------------------------------------------------------------------------- closing the doors


class _Blocker(importlib.abc.MetaPathFinder):
    """Refuse imports of the kit's own packages and of libraries the lab bans."""

    def __init__(self, blocked: dict[str, str]):
        self.blocked = blocked

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        reason = self.blocked.get(fullname.partition(".")[0])
        if reason is not None:
            raise ImportError(reason)
        return None


class BannedCall(Exception):
    """Raised by a tripwire standing in for a banned function."""


BANNED_HITS: list[str] = []


def _tripwire(name: str) -> Any:
    def banned(*args: Any, **kwargs: Any) -> Any:
        BANNED_HITS.append(name)
        raise BannedCall(f"{name} is banned in this lab: write it from tensor operations")

    banned.__name__ = name.rpartition(".")[2]
    return banned


def _install_tripwires(names: list[str]) -> None:
    """Replace each banned name by a tripwire where its owner allows it. Some cannot be replaced
    (``torch._C._VariableFunctions`` is read-only) and one object has many names (``torch.lstm_cell``,
    ``torch._VF.lstm_cell``, ``torch.ops.aten.lstm_cell``): ``_refusing_mode`` closes those routes."""
    for dotted in names:
        owner_path, _, attr = dotted.rpartition(".")
        parts = owner_path.split(".")
        try:
            owner = sys.modules[parts[0]]
            for part in parts[1:]:
                owner = getattr(owner, part)
            if getattr(owner, attr, None) is not None:
                setattr(owner, attr, _tripwire(dotted))
        except (KeyError, AttributeError, TypeError):
            continue


REFUSING: Any = contextlib.nullcontext()  # entered around every student call; see _refusing_mode


def _refusing_mode(names: list[str]) -> Any:
    """A ``torch.overrides.TorchFunctionMode`` that refuses every PyTorch function whose name is the
    last part of a banned ``torch.*`` name, however it is reached: ``torch.lstm_cell``,
    ``torch._VF.lstm_cell``, ``torch._C._VariableFunctions.lstm_cell`` (read-only, so no tripwire),
    ``torch.ops.aten.lstm_cell.default``, ``getattr(torch, "lstm" + "_cell")``, or a layer that calls it."""
    kernels: dict[str, str] = {}
    for dotted in names:
        if dotted.startswith("torch."):
            kernels.setdefault(dotted.rpartition(".")[2], dotted)
    if not kernels:
        return contextlib.nullcontext()

    class Refuse(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            name = getattr(func, "__name__", "")
            banned = kernels.get(name.partition(".")[0]) if isinstance(name, str) else None  # "lstm_cell.default"
            if banned is not None:
                BANNED_HITS.append(banned)
                raise BannedCall(f"{banned} is banned in this lab (reached as {name}): write it from tensor operations")
            return func(*args, **(kwargs or {}))

    return Refuse()


def close_doors() -> None:
    """The rules in Python (behind the kernel's walls): blocked imports, tripwires, the refusing mode."""
    blocked = {name: f"importing {name} is not allowed in a submission" for name in CONFIG["blocked_imports"]}
    blocked.update(CONFIG.get("banned_imports", {}))
    for name in blocked:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
    sys.meta_path.insert(0, _Blocker(blocked))
    if torch is not None:
        global REFUSING
        _install_tripwires(CONFIG.get("banned_calls", []))
        REFUSING = _refusing_mode(CONFIG.get("banned_calls", []))


# ----------------------------------------------------------------------------- running student code


def _student_frames(tb: Any) -> list[list[Any]]:
    """The frames of a traceback that lie in the student's own files."""
    return [[os.path.basename(frame.filename), frame.lineno or 0, frame.name, (frame.line or "")[:200]]
            for frame in traceback.extract_tb(tb) if frame.filename.startswith(CONFIG["module_dir"])][-4:]


def _raised_by_student(exc: BaseException) -> bool:
    """True when a ``raise`` statement in the student's files raised ``exc`` (a stub's body), not a
    library refusing an operation (PyTorch's "Cannot copy out of meta tensor" is a NotImplementedError
    too, raised from inside the call on the student's line)."""
    tb = exc.__traceback__
    if tb is None:
        return True
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    if not code.co_filename.startswith(CONFIG["module_dir"]):
        return False
    try:
        return any(i.offset == tb.tb_lasti and i.opname.startswith("RAISE") for i in dis.get_instructions(code))
    except Exception:  # noqa: BLE001 - unreadable code: keep the plain rule
        return True


def _describe_exception(exc: BaseException) -> FailureInfo:
    try:
        text = str(exc)
    except BaseException:  # a student exception whose __str__ raises
        text = "<unprintable>"
    kind = "error"
    if isinstance(exc, NotImplementedError) and _raised_by_student(exc):
        kind = "not_implemented"
    elif isinstance(exc, BannedCall) or BANNED_HITS:
        kind = "banned"
    elif isinstance(exc, MemoryError):
        kind = "memory"
    if isinstance(exc, SystemExit):
        text = f"the code called sys.exit({exc.code!r})"
    return {
        "kind": kind,
        "type": type(exc).__name__ if isinstance(type(exc).__name__, str) else "Exception",
        "message": text[:2000],
        "frames": _student_frames(exc.__traceback__),
        "banned": list(dict.fromkeys(BANNED_HITS)),
    }


def load_module() -> Any:
    sys.path.insert(0, CONFIG["module_dir"])
    spec = importlib.util.spec_from_file_location(CONFIG["module_name"], CONFIG["module_path"])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[CONFIG["module_name"]] = module
    spec.loader.exec_module(module)
    return module


def _snapshot(value: Any) -> Any:
    if type(value) is np.ndarray:
        return value.copy()
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().clone()
    if type(value) is dict:
        return {k: _snapshot(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return [_snapshot(v) for v in value]
    return None


def _same(before: Any, after: Any) -> bool:
    if type(before) is np.ndarray:
        if type(after) is not np.ndarray or before.shape != after.shape:
            return False
        # the same bytes are the same values (and cost a microsecond, where array_equal costs twenty)
        return (before.dtype == after.dtype and before.tobytes() == after.tobytes()) \
            or bool(np.array_equal(before, after, equal_nan=True))
    if torch is not None and isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor) or before.shape != after.shape:
            return False
        a = after.detach()
        if a.is_meta or before.is_meta:  # no data, nothing to compare (and torch.equal has no meta kernel)
            return before.dtype == a.dtype
        return bool(torch.equal(before.isnan(), a.isnan()) and torch.equal(before.nan_to_num(), a.nan_to_num()))
    if type(before) is dict:
        return type(after) is dict and before.keys() == after.keys() and all(_same(before[k], after[k]) for k in before)
    if type(before) is list:
        return type(after) in (list, tuple) and len(before) == len(after) and all(map(_same, before, after))
    return True


def _flatten_tensors(value: Any) -> list[Any]:
    if isinstance(value, torch.Tensor):
        return [value]
    if type(value) in (tuple, list):
        return [t for v in value for t in _flatten_tensors(v)]
    return []


def _missing(function: str) -> CallReply:
    return {"ok": False, "error": {"kind": "missing", "type": "AttributeError",
                                   "message": f"the module has no function {function}", "frames": [], "banned": []}}


def _describe_warnings(caught: list[Any]) -> list[str]:
    """The distinct warnings of a call as "Category: message" (at most 8)."""
    found: dict[str, None] = {}  # in the order first raised
    for record in caught:
        try:
            text = f"{record.category.__name__}: {record.message}"[:300]
        except BaseException:  # noqa: BLE001 - a warning whose message cannot be printed
            text = "Warning: <unprintable>"
        found[text] = None
    return list(found)[:8]


def run(module: Any, request: CallRequest) -> CallReply:
    """Call one function once per step of ``request["steps"]``, as a loop in the student's own
    program would (a single call is a loop of one step).

    ``request["links"]`` says which arguments are objects of an earlier step instead:
    ``[step, arg, "result", from_step, index]`` is item ``index`` of that step's result,
    ``[step, arg, "arg", from_step, index]`` its argument ``index`` (the very same object, as a
    loop passes it). Each result is encoded as soon as its call returns; the loop stops early
    when a result lacks the item a link needs. An argument counts as modified when its own call
    changed it, or when it had changed by the end of the loop (a reference kept and changed by a
    later step). With ``request["grad"]`` (one step), autograd runs through the call too.
    """
    fn = getattr(module, request["function"], None)
    if not callable(fn):
        return _missing(request["function"])
    names = list(request["arg_names"])
    steps = [([wire.decode(a, torch, build=True) for a in args],
              {k: wire.decode(v, torch, build=True) for k, v in kwargs}) for args, kwargs in request["steps"]]
    BANNED_HITS.clear()
    global_state = np.random.get_state(legacy=False)
    printed = _Printed()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
        warnings.simplefilter("default")
        reply = _run_steps(fn, steps, request.get("links", []), names, request.get("grad"))
    if reply["ok"]:
        reply["warnings"] = _describe_warnings(caught)
        reply["global_rng"] = not _same_rng_state(global_state, np.random.get_state(legacy=False))
    if printed.text:
        reply["printed"] = printed.text
    return reply


class _Printed(io.TextIOBase):
    """What the student's code prints during a call (its own debugging output, shown under a failure): the
    first ``LIMIT`` characters, the rest counted but dropped."""

    LIMIT = 2000

    def __init__(self) -> None:
        super().__init__()
        self.text = ""

    def writable(self) -> bool:
        return True

    def write(self, text: Any) -> int:
        text = str(text)
        if len(self.text) < self.LIMIT:
            self.text += text[:self.LIMIT - len(self.text)]
        return len(text)


def _same_rng_state(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether NumPy's global random state (np.random.seed, np.random.randn, ...) is where it was."""
    return before["bit_generator"] == after["bit_generator"] and \
        before["has_gauss"] == after["has_gauss"] and before["gauss"] == after["gauss"] and \
        np.array_equal(before["state"]["key"], after["state"]["key"]) and before["state"]["pos"] == after["state"]["pos"]


def _run_steps(fn: Any, steps: list[Any], links: list[Any], names: list[str], grad: Any) -> CallReply:
    results: list[Any] = []
    values: list[Any] = []
    watched: list[tuple[int, str, Any, Any]] = []
    modified: list[list[Any]] = []
    grads = None
    for i, (args, kwargs) in enumerate(steps):
        for step, arg, source, from_step, index in links:
            if step != i:
                continue
            if source == "arg":
                args[arg] = steps[from_step][0][index]
                continue
            found = results[from_step]
            if type(found) not in (tuple, list) or not 0 <= index < len(found):
                return _reply(values, modified, grads)
            args[arg] = found[index]
        objects = list(zip(names + [f"arg{j}" for j in range(len(names), len(args))], args)) + list(kwargs.items())
        before = [_snapshot(obj) for _, obj in objects]
        try:
            if grad is not None:
                for k in grad["wrt"]:
                    if isinstance(args[k], torch.Tensor) and args[k].is_floating_point():
                        args[k].requires_grad_(True)
            with torch.enable_grad() if grad is not None else contextlib.nullcontext(), REFUSING:
                value = fn(*args, **kwargs)
                if grad is not None:
                    grads = _backward(value, args, grad)
        except BaseException as exc:  # noqa: BLE001 - everything the student raises is reported
            error = _describe_exception(exc)
            error["step"] = i
            return {"ok": False, "error": error}
        results.append(value)
        values.append(_encode(value))
        for (name, obj), b in zip(objects, before):
            if b is None:
                continue
            if _same(b, obj):
                watched.append((i, name, b, obj))
            else:
                modified.append([name, i, True])
    for i, name, b, obj in watched:
        if not _same(b, obj):
            modified.append([name, i, False])
    return _reply(values, modified, grads)


def _encode(value: Any) -> Any:
    try:
        return wire.encode(value, torch)
    except Exception as exc:  # noqa: BLE001 - a value that cannot be read (a tensor of a broken subclass...)
        return ("unsupported", f"a value that could not be read ({type(exc).__name__})")


def _reply(values: list[Any], modified: list[list[Any]], grads: Any) -> CallReply:
    reply: CallReply = {"ok": True, "values": values, "modified": modified, "banned": list(dict.fromkeys(BANNED_HITS))}
    if grads is not None:
        reply["grads"] = grads
    return reply


def _backward(value: Any, args: list[Any], grad: dict[str, Any]) -> Any:
    """Gradients of sum(output * seed) with respect to the requested arguments."""
    outputs = _flatten_tensors(value)
    seeds = [wire.decode(s, torch, build=True) for s in grad["seeds"]]
    if len(outputs) != len(seeds):
        return wire.encode(f"expected {len(seeds)} tensor outputs, got {len(outputs)}")
    for k, (o, s) in enumerate(zip(outputs, seeds)):
        if o.shape != s.shape:  # otherwise every gradient would look missing
            return wire.encode(f"tensor output {k + 1} of {len(seeds)} has shape {tuple(o.shape)}, expected "
                               f"{tuple(s.shape)}, so its gradients cannot be compared")
    wrt = [args[i] for i in grad["wrt"]]
    live = [t for t in wrt if isinstance(t, torch.Tensor) and t.requires_grad]
    pairs = [(o, s.to(o.device, o.dtype)) for o, s in zip(outputs, seeds) if o.requires_grad]
    if not pairs or not live:
        return wire.encode([None] * len(wrt))
    # One scalar, sum(output * seed): the same gradients as passing the seeds as grad_outputs, without the
    # shape checks that import sympy (a third of a second) on the first non-scalar autograd.grad.
    loss = sum((o * s).sum() for o, s in pairs)
    found = iter(torch.autograd.grad(loss, live, allow_unused=True))
    grads = [next(found) if isinstance(t, torch.Tensor) and t.requires_grad else None for t in wrt]
    return wire.encode([g if g is None else g.detach() for g in grads], torch)


def serve(config: dict[str, Any], request_fd: int, response_fd: int) -> None:
    """Run as a worker: set up, put up the walls, close the doors, import the student's module,
    answer calls."""
    if hasattr(os, "setsid") and os.getpid() != os.getsid(0):
        os.setsid()
    setup(config, request_fd, response_fd)
    try:
        layers = put_up_walls()
    except OSError as exc:  # a wall this machine offers could not be put up: run nothing
        send({"error": f"the sandbox could not be set up: {exc}"})
        return
    send({"confined": layers})  # before any student code: the grader may believe it
    if torch is not None and CONFIG.get("meta", True):
        # The first operation on the meta device (a check's stand-in for a GPU) loads PyTorch's meta
        # kernels: do it beside the module's import and the first calls (a thread started after the
        # walls, so it stands behind them too).
        threading.Thread(target=warm_meta, daemon=True).start()
    close_doors()
    try:
        module = load_module()
    except BaseException as exc:  # noqa: BLE001 - a broken module is reported, not raised
        error = _describe_exception(exc)
        if isinstance(exc, SyntaxError):
            error["frames"] = [[os.path.basename(exc.filename or ""), exc.lineno or 0, "<module>", (exc.text or "").strip()]]
        send({"ready": False, "error": error})
        return
    send({"ready": True})
    while True:
        try:
            request = receive()
        except EOFError:
            return
        reply = run(module, request)
        reply["id"] = request["id"]
        try:
            send(reply)
        except (wire.ProtocolError, ValueError, OverflowError):
            send({"id": request["id"], "ok": False, "error": {
                "kind": "error", "type": "ValueError", "message": "the result is too large or too deep",
                "frames": [], "banned": []}})


if __name__ == "__main__":
    _config = json.loads(sys.argv[1])
    serve(_config, _config["request_fd"], _config["response_fd"])
