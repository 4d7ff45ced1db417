"""The worker: the only process in which a student's code ever runs.

Started by ``grader.sandbox``, either as ``python -I worker.py CONFIG`` with two
pipe descriptors, or forked from a forkserver that has NumPy (and PyTorch)
imported already; the grader itself never imports it. In order, it

1. imports NumPy (and PyTorch for a PyTorch lab) and the wire format, by path;
2. closes the doors: caps its address space, blocks imports of the kit's own
   packages (``solutions``, ``grader``, ``cli``) and of libraries the lab bans,
   and replaces banned functions with tripwires;
3. imports the student's module and reports which functions it found;
4. answers call requests one at a time until its input closes.

Nothing here is trusted by the grader: every answer is plain data that the
grader validates, so a student who rewrites this process can only hurt their
own score.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import resource
import sys
import time
import traceback
from typing import Any

import numpy as np  # noqa: E402

_spec = importlib.util.spec_from_file_location("_dlkit_wire", os.path.join(os.path.dirname(__file__), "wire.py"))
assert _spec is not None and _spec.loader is not None
wire = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = wire
_spec.loader.exec_module(wire)

CONFIG: dict[str, Any] = {}
REQUESTS: Any = None
RESPONSES: Any = None
torch: Any = None


def setup(config: dict[str, Any], request_fd: int, response_fd: int) -> None:
    """Take the pipes, silence the standard streams, and import what the lab's code may use."""
    global REQUESTS, RESPONSES, torch
    CONFIG.update(config)
    REQUESTS = os.fdopen(request_fd, "rb", buffering=0)
    RESPONSES = os.fdopen(response_fd, "wb", buffering=0)
    # The student's prints must never reach the grader's standard output.
    devnull = os.open(os.devnull, os.O_RDWR)
    for stream in (0, 1, 2):
        os.dup2(devnull, stream)
    if CONFIG["kind"] == "torch":
        import torch as torch_module

        torch = torch_module
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_num_threads(1)


def send(message: dict[str, Any]) -> None:
    wire.write_frame(RESPONSES, message)


def receive() -> Any:
    header = REQUESTS.read(8)
    if len(header) < 8:
        raise EOFError
    size = int.from_bytes(header, "little")
    chunks, left = [], size
    while left:
        chunk = REQUESTS.read(left)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return wire.parse_frame(b"".join(chunks))


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
    for dotted in names:
        owner_path, _, attr = dotted.rpartition(".")
        parts = owner_path.split(".")
        try:
            owner = sys.modules[parts[0]]
            for part in parts[1:]:
                owner = getattr(owner, part)
            if getattr(owner, attr, None) is None:
                continue
            setattr(owner, attr, _tripwire(dotted))
        except (KeyError, AttributeError, TypeError):
            continue


def close_doors() -> None:
    limit = CONFIG.get("memory_bytes")
    if limit:
        try:
            with open("/proc/self/statm") as f:
                in_use = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            in_use = 0
        cap = in_use + int(limit)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    blocked = {name: f"importing {name} is not allowed in a submission" for name in CONFIG["blocked_imports"]}
    for name, reason in CONFIG.get("banned_imports", {}).items():
        blocked[name] = reason
    for name in blocked:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
    sys.meta_path.insert(0, _Blocker(blocked))
    if torch is not None:
        _install_tripwires(CONFIG.get("banned_calls", []))


# ----------------------------------------------------------------------------- running student code


def _student_frames(tb: Any) -> list[list[Any]]:
    """The frames of a traceback that lie in the student's own files."""
    root = CONFIG["module_dir"]
    frames = []
    for frame in traceback.extract_tb(tb):
        if frame.filename.startswith(root):
            frames.append([os.path.basename(frame.filename), frame.lineno or 0, frame.name, (frame.line or "")[:200]])
    return frames[-4:]


def _describe_exception(exc: BaseException) -> dict[str, Any]:
    try:
        text = str(exc)
    except BaseException:  # a student exception whose __str__ raises
        text = "<unprintable>"
    kind = "error"
    if isinstance(exc, NotImplementedError):
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
    path = CONFIG["module_path"]
    sys.path.insert(0, CONFIG["module_dir"])
    spec = importlib.util.spec_from_file_location(CONFIG["module_name"], path)
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
        return type(after) is np.ndarray and before.shape == after.shape and np.array_equal(before, after, equal_nan=True)
    if torch is not None and isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor) or before.shape != after.shape:
            return False
        a = after.detach()
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


def call(module: Any, request: dict[str, Any]) -> dict[str, Any]:
    fn = getattr(module, request["function"], None)
    if not callable(fn):
        return {"ok": False, "error": {"kind": "missing", "type": "AttributeError",
                                       "message": f"the module has no function {request['function']}",
                                       "frames": [], "banned": []}}
    args = [wire.decode(a, torch, build=True) for a in request["args"]]
    kwargs = {k: wire.decode(v, torch, build=True) for k, v in request["kwargs"]}
    names = request["arg_names"]
    before = [_snapshot(a) for a in args] + [_snapshot(v) for v in kwargs.values()]
    BANNED_HITS.clear()
    grad = request.get("grad")
    if grad is not None:
        for i in grad["wrt"]:
            if isinstance(args[i], torch.Tensor) and args[i].is_floating_point():
                args[i].requires_grad_(True)
    start = time.perf_counter()
    try:
        if grad is not None:
            with torch.enable_grad():
                value = fn(*args, **kwargs)
                grads = _backward(value, args, grad)
        else:
            value = fn(*args, **kwargs)
            grads = None
    except BaseException as exc:  # noqa: BLE001 - everything the student raises is reported
        return {"ok": False, "error": _describe_exception(exc)}
    elapsed = time.perf_counter() - start
    after = list(args) + list(kwargs.values())
    modified = [name for name, b, a in zip(names + list(kwargs), before, after) if b is not None and not _same(b, a)]
    reply: dict[str, Any] = {"ok": True, "value": wire.encode(value, torch), "modified": modified,
                             "elapsed": elapsed, "banned": list(dict.fromkeys(BANNED_HITS))}
    if grads is not None:
        reply["grads"] = grads
    return reply


def _backward(value: Any, args: list[Any], grad: dict[str, Any]) -> Any:
    """Gradients of sum(output * seed) with respect to the requested arguments."""
    outputs = _flatten_tensors(value)
    seeds = [wire.decode(s, torch, build=True) for s in grad["seeds"]]
    if len(outputs) != len(seeds):
        return wire.encode(f"expected {len(seeds)} tensor outputs, got {len(outputs)}")
    wrt = [args[i] for i in grad["wrt"]]
    live = [t for t in wrt if isinstance(t, torch.Tensor) and t.requires_grad]
    pairs = [(o, s.to(o.device, o.dtype)) for o, s in zip(outputs, seeds) if o.requires_grad and o.shape == s.shape]
    if not pairs or not live:
        return wire.encode([None] * len(wrt))
    found = iter(torch.autograd.grad([o for o, _ in pairs], live, [s for _, s in pairs], allow_unused=True))
    grads = [next(found) if isinstance(t, torch.Tensor) and t.requires_grad else None for t in wrt]
    return wire.encode([g if g is None else g.detach() for g in grads], torch)


def serve(config: dict[str, Any], request_fd: int, response_fd: int) -> None:
    """Run as a worker: set up, close the doors, import the student's module, answer calls."""
    if hasattr(os, "setsid") and os.getpid() != os.getsid(0):
        os.setsid()
    setup(config, request_fd, response_fd)
    close_doors()
    try:
        module = load_module()
    except BaseException as exc:  # noqa: BLE001 - a broken module is reported, not raised
        error = _describe_exception(exc)
        if isinstance(exc, SyntaxError):
            error["frames"] = [[os.path.basename(exc.filename or ""), exc.lineno or 0, "<module>", (exc.text or "").strip()]]
        send({"ready": False, "error": error})
        return
    functions = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
    send({"ready": True, "functions": functions})
    while True:
        try:
            request = receive()
        except EOFError:
            return
        reply = call(module, request)
        reply["id"] = request["id"]
        send(reply)


def serve_forked(config: dict[str, Any], requests: Any, responses: Any) -> None:
    """Entry point in a process forked from a pre-loaded forkserver (``grader.sandbox``)."""
    serve(config, os.dup(requests.fileno()), os.dup(responses.fileno()))
    os._exit(0)


if __name__ == "__main__":
    _config = json.loads(sys.argv[1])
    serve(_config, _config["request_fd"], _config["response_fd"])
