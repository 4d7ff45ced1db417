"""The zygote: a clean interpreter with NumPy (and PyTorch) imported, that forks workers.

Started by ``grader.sandbox.ZygoteLauncher`` as ``python -I zygote.py KIND FD``;
the grader never imports it. It loads ``worker.py`` by path, then serves two
requests over its Unix socket:

- ``{"launch": config, "cwd": path}`` with the worker's two pipe ends attached
  (SCM_RIGHTS): fork, and in the child become a worker (``worker.serve``);
  answer ``{"pid": pid}``.
- ``{"status": pid}``: wait for that worker to end; answer ``{"code": status}``
  (negative for a signal, as ``subprocess`` reports it).

Nothing of the grader's memory is here: the zygote is a fresh interpreter, so a
forked worker holds NumPy, PyTorch and the worker code, and nothing else.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys

KIND, CONTROL_FD = sys.argv[1], int(sys.argv[2])

import numpy  # noqa: E402,F401  (imported once here, inherited by every worker)

if KIND == "torch":
    import torch  # noqa: F401

_spec = importlib.util.spec_from_file_location("_dlkit_worker", os.path.join(os.path.dirname(__file__), "worker.py"))
assert _spec is not None and _spec.loader is not None
worker = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = worker
_spec.loader.exec_module(worker)
if KIND == "torch":
    worker.warm_meta()  # what PyTorch loads on first use of the meta device, once for every worker


def _status(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def main() -> None:
    control = socket.socket(fileno=CONTROL_FD)
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 1 << 20, 2)
        except OSError:
            return
        if not data:
            return
        request = json.loads(data)
        if "status" in request:
            try:
                code: int | None = _status(int(request["status"]))
            except ChildProcessError:
                code = None
            control.sendall(json.dumps({"code": code}).encode())
            continue
        pid = os.fork()
        if pid == 0:
            control.close()
            try:
                os.setsid()
                os.chdir(request["cwd"])
                worker.serve(request["launch"], fds[0], fds[1])
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        control.sendall(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    main()
