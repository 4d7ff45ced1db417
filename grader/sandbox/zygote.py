"""The zygote: a clean interpreter with NumPy (and PyTorch) imported, that forks workers.

Started by ``grader.sandbox.host.ZygoteLauncher`` as ``python -I zygote.py KIND FD META``;
the grader never imports it. It loads ``worker.py`` by path, then serves two
requests over its Unix socket (and any it is given to serve as well):

- ``{"launch": config, "cwd": path[, "uid": uid, "gid": gid]}`` with the worker's two
  pipe ends attached (SCM_RIGHTS): fork, and in the child start a new session, enter
  ``cwd``, become that unprivileged user (no supplementary groups) if one is given, and
  become a worker (``worker.serve``, which puts up its walls before anything else);
  answer ``{"pid": pid}``.
- ``{"status": pid}``: wait for that worker to end; answer ``{"code": status}``
  (negative for a signal, as ``subprocess`` reports it).
- ``{"serve": true}`` with a socket attached: serve that socket too (a grading process the grader
  forks asks over a socket of its own, so that no process reads another's answer); answer
  ``{"served": true}``.
- ``{"kill": pid}``: kill that worker and its process group, then wait for it as above.
  Only a pid this zygote forked and has not reaped yet is ever signalled (so the pid
  cannot have been reused by another process).

After each ``status`` and ``kill`` it ends every other child it has: as a subreaper it
adopts whatever a worker started that outlived its parent. It is not dumpable, so a
worker running as the same user can neither attach to it nor read its memory.

Nothing of the grader's memory is here: the zygote is a fresh interpreter, so a
forked worker holds NumPy, PyTorch and the worker code, and nothing else.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import select
import signal
import socket
import sys

KIND, CONTROL_FD, META = sys.argv[1], int(sys.argv[2]), sys.argv[3:] == ["meta"]

# No collections while the libraries load (eager.no_collections, by hand: eager.py is loaded with the worker,
# after them): their new objects set off collections that free nothing. Back on before any fork.
gc.disable()
import numpy  # noqa: E402,F401  (imported once here, inherited by every worker)

if KIND == "torch":
    import torch  # noqa: F401

_spec = importlib.util.spec_from_file_location("_dlkit_worker", os.path.join(os.path.dirname(__file__), "worker.py"))
assert _spec is not None and _spec.loader is not None
worker = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = worker
_spec.loader.exec_module(worker)
if KIND == "torch":
    worker.eager.skip_compiler_import()  # before the meta kernels load: they would import torch._dynamo
    if META:  # a lab with checks on the meta device: what PyTorch loads on its first use, once for every worker
        worker.warm_meta()
gc.freeze()  # what is loaded now stays: no worker's collections walk it, nor copy its pages to do so
gc.enable()


worker.confine.set_dumpable(False)
worker.confine.set_subreaper()
WORKERS: set[int] = set()  # forked and not yet reaped


def _status(pid: int) -> int | None:
    if pid not in WORKERS:
        return None
    WORKERS.discard(pid)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    finally:  # kill and reap every other child (orphans adopted from workers' descendants)
        worker.confine.end_children(WORKERS.__contains__)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _kill(pid: int) -> int | None:
    if pid in WORKERS:
        for send in (os.killpg, os.kill):
            try:
                send(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    return _status(pid)


def main() -> None:
    first = socket.socket(fileno=CONTROL_FD)
    controls = [first]
    while True:
        for control in select.select(controls, [], [])[0]:
            try:
                data, fds, _, _ = socket.recv_fds(control, 1 << 20, 2)
            except OSError:
                data, fds = b"", []
            if not data:  # the grader has gone (its first socket), or one of its forked grading processes
                if control is first:
                    return
                controls.remove(control)
                control.close()
                continue
            _answer(control, json.loads(data), fds, controls)


def _answer(control: socket.socket, request: dict, fds: list[int], controls: list[socket.socket]) -> None:
    if "serve" in request:  # a socket of its own for a grading process the grader forks
        controls.append(socket.socket(fileno=fds[0]))
        control.sendall(b'{"served": true}')
        return
    if "status" in request or "kill" in request:
        code = _status(int(request["status"])) if "status" in request else _kill(int(request["kill"]))
        control.sendall(json.dumps({"code": code}).encode())
        return
    pid = os.fork()
    if pid == 0:
        for other in controls:
            other.close()
        try:
            os.setsid()
            os.chdir(request["cwd"])
            if "uid" in request:  # that unprivileged user, with no supplementary groups
                os.setgroups([])
                os.setgid(int(request["gid"]))
                os.setuid(int(request["uid"]))
            worker.serve(request["launch"], fds[0], fds[1])
        finally:
            os._exit(0)
    WORKERS.add(pid)
    for fd in fds:
        os.close(fd)
    control.sendall(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    main()
    for pid in list(WORKERS):  # the grader has gone: so do the workers it left, and whatever they started
        _kill(pid)
    worker.confine.end_children(WORKERS.__contains__)
    os._exit(0)  # without unloading PyTorch (half a second)
