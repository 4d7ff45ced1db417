"""The kernel's walls around a worker: Landlock, a seccomp filter, capabilities, process flags.

Everything in Python inside the student's process is a speed bump: the student's code can
undo it. What it cannot undo is what the kernel enforces once the process has asked for it,
so the worker calls ``confine`` after it has imported what it needs and before it imports
the student's module:

- **Landlock** (Linux 5.13+, no privileges needed; ABI read at run time): the process may
  read only the paths it is given (the Python installation and the packages the lab needs)
  and write only its own private folder; with ABI 4+ it can neither bind nor connect TCP
  sockets; with ABI 6+ it can signal nothing and reach no abstract unix socket outside its
  own domain (the grader, the zygote, other workers are all outside it).
- **A seccomp filter** (x86_64 and aarch64): no new processes (``fork``/``vfork``, ``clone``
  without ``CLONE_THREAD``: threads still work), no ``execve``, no sockets, no ``ptrace`` or
  ``process_vm_*``, no namespaces, and signals only to itself. The filter is inherited and
  cannot be removed.
- **No capabilities**: a worker that runs as root (``dlkit check`` started by root without
  ``--worker-user``) drops every capability, bounding set included, so uid 0 is only a number.
- ``PR_SET_NO_NEW_PRIVS`` (required by both filters) and ``PR_SET_DUMPABLE 0`` (no other
  process of the same user may read its memory or attach to it).

The grader side uses ``set_subreaper``, ``set_dumpable`` and ``probe`` (what this machine
offers, for ``dlkit doctor`` and the report); the grader and the zygote end what their workers
leave behind with ``end_children``.

Why ctypes and not a binding: the worker loads this file by path before any third-party
import, so it may use the standard library only; the Landlock bindings on PyPI are young or
pre-releases (``landlock`` 1.0.0.dev5, ``py-landlock`` 0.1) and cover Landlock alone, while the
worker also needs the seccomp filter and the capability drop. The kernel interface used here is
three Landlock system calls, ``seccomp(2)``, ``prctl(2)`` and ``capset(2)``, with constants from
``linux/landlock.h``, ``linux/seccomp.h``, ``linux/filter.h`` and ``linux/capability.h``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import signal
import struct
import sys
from typing import Any, Callable, Iterable

# ----------------------------------------------------------------------------- Landlock

SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

# The filesystem access rights, bit by bit in the kernel's order (uapi/linux/landlock.h):
# REFER came with ABI 2, TRUNCATE with ABI 3, IOCTL_DEV with ABI 5.
(FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR, FS_REMOVE_DIR, FS_REMOVE_FILE, FS_MAKE_CHAR, FS_MAKE_DIR,
 FS_MAKE_REG, FS_MAKE_SOCK, FS_MAKE_FIFO, FS_MAKE_BLOCK, FS_MAKE_SYM, FS_REFER, FS_TRUNCATE,
 FS_IOCTL_DEV) = (1 << bit for bit in range(16))
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
READ = FS_READ_FILE | FS_READ_DIR
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV  # all a non-folder may get

# ----------------------------------------------------------------------------- prctl and capabilities

PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
CAP_LAST = 63
_CAP_VERSION_3 = 0x20080522

# ----------------------------------------------------------------------------- seccomp

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
CLONE_THREAD = 0x00010000
# (audit arch, seccomp(2) number, {name: number}) per machine
_ARCHES: dict[str, tuple[int, int, dict[str, int]]] = {
    "x86_64": (0xC000003E, 317, {
        "fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "execve": 59, "execveat": 322,
        "socket": 41, "socketpair": 53, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
        "unshare": 272, "setns": 308, "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129,
        "rt_tgsigqueueinfo": 297, "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
    }),
    "aarch64": (0xC00000B7, 277, {
        "clone": 220, "clone3": 435, "execve": 221, "execveat": 281, "socket": 198, "socketpair": 199,
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "unshare": 97, "setns": 268,
        "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
        "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
    }),
}
_ARCHES["arm64"] = _ARCHES["aarch64"]
_ARCHES["amd64"] = _ARCHES["x86_64"]


class ConfinementError(OSError):
    """A wall that this machine offers could not be put up: the worker must not run student code."""


def _libc() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    return libc


def _fail(what: str) -> ConfinementError:
    code = ctypes.get_errno()
    return ConfinementError(code, f"{what}: {os.strerror(code)}")


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers (0: none, or not Linux)."""
    if sys.platform != "linux":
        return 0
    try:
        version = _libc().syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                                  ctypes.c_uint32(CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(0, int(version))


def seccomp_available() -> bool:
    """True where this module knows the machine's system-call numbers and the kernel has seccomp filters."""
    if sys.platform != "linux" or platform.machine() not in _ARCHES:
        return False
    try:
        with open("/proc/self/status") as status:
            return any(line.startswith("Seccomp:") for line in status)
    except OSError:
        return False


def prctl(option: int, value: int) -> None:
    if _libc().prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        raise _fail(f"prctl({option})")


def set_subreaper() -> bool:
    """Make this process adopt its orphaned descendants (a process that called ``setsid()`` and whose
    parent died included), so that it can find and end them. False where the kernel has no such thing."""
    if sys.platform != "linux":
        return False
    try:
        prctl(PR_SET_CHILD_SUBREAPER, 1)
    except OSError:
        return False
    return True


def set_dumpable(dumpable: bool) -> None:
    """Non-dumpable: no process of the same user may attach to this one or open its ``/proc/PID/mem``."""
    if sys.platform == "linux":
        try:
            prctl(PR_SET_DUMPABLE, 1 if dumpable else 0)
        except OSError:
            pass


def end_children(spare: Callable[[int], bool]) -> int:
    """Kill every child of this process that ``spare`` does not name, and reap it, until none is left (a
    subreaper adopts the orphans of its children's descendants each time one of their parents dies).
    Returns how many it ended."""
    ended = 0
    for _ in range(64):
        strays = [pid for pid in _children() if not spare(pid)]
        if not strays:
            break
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)  # our own unreaped child: the pid cannot name another process
            except ProcessLookupError:
                pass
        for pid in strays:
            try:
                os.waitpid(pid, 0)
                ended += 1
            except ChildProcessError:
                pass
    return ended


def _children() -> list[int]:
    found: set[int] = set()
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as f:
                found.update(int(pid) for pid in f.read().split())
    except OSError:
        pass
    return sorted(found)


# ----------------------------------------------------------------------------- the worker's walls


def _ruleset(abi: int) -> tuple[bytes, int]:
    fs = _FS_BY_ABI.get(abi, (1 << 16) - 1)
    # struct landlock_ruleset_attr: the network rights came with ABI 4, the scopes with ABI 6
    fields = (fs, NET_BIND_TCP | NET_CONNECT_TCP, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
    used = fields[:1 + (abi >= 4) + (abi >= 6)]
    return struct.pack(f"={len(used)}Q", *used), fs


def landlock(read: Iterable[str], write: Iterable[str], devices: Iterable[str] = ()) -> int:
    """Restrict this thread (and every thread and process it starts later) to reading ``read``,
    reading and writing ``write`` (folders or files), and reading, writing and ``ioctl`` on the
    device files ``devices``. Paths that do not exist are skipped. Returns the ABI used (0: no
    Landlock here, nothing done). Raises ``ConfinementError`` if the kernel refuses."""
    abi = landlock_abi()
    if abi <= 0:
        return 0
    libc = _libc()
    attr, handled = _ruleset(abi)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, buffer, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise _fail("landlock_create_ruleset")
    writes = (FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR | FS_MAKE_REG | FS_TRUNCATE
              | FS_REFER) & handled
    try:
        for paths, rights in ((read, READ), (write, READ | writes),
                              (devices, (FS_READ_FILE | FS_WRITE_FILE | FS_IOCTL_DEV) & handled)):
            for path in dict.fromkeys(paths):
                _allow(libc, ruleset, path, rights)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise _fail("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _allow(libc: Any, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # nothing there: nothing to allow
    try:
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS
        rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)
        if libc.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH), rule,
                        ctypes.c_uint32(0)) != 0:
            raise _fail(f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def _filter(arch: int, numbers: dict[str, int], pid: int) -> bytes:
    """The seccomp program, as ``struct sock_filter`` entries (code, jt, jf, k)."""
    ld_w, jeq, jge, and_k, ret = 0x20, 0x15, 0x35, 0x54, 0x06
    deny = RET_ERRNO | errno.EPERM
    program: list[tuple[int, int, int, int]] = []

    def emit(code: int, k: int, jt: int = 0, jf: int = 0) -> None:
        program.append((code, jt, jf, k))

    refuse = [numbers[n] for n in ("fork", "vfork", "execve", "execveat", "socket", "socketpair", "ptrace",
                                   "process_vm_readv", "process_vm_writev", "unshare", "setns", "tkill",
                                   "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "pidfd_send_signal",
                                   "pidfd_getfd") if n in numbers]
    emit(ld_w, 4)  # seccomp_data.arch
    emit(jeq, arch, 1, 0)
    emit(ret, deny)  # another ABI (i386 on x86_64): nothing of it is allowed
    emit(ld_w, 0)  # seccomp_data.nr
    emit(jge, 0x40000000, 0, 1)  # x32 system calls
    emit(ret, deny)
    for number in refuse:
        emit(jeq, number, 0, 1)
        emit(ret, deny)
    emit(jeq, numbers["clone3"], 0, 1)
    emit(ret, RET_ERRNO | errno.ENOSYS)  # glibc then falls back to clone(), checked below
    # clone: a thread (CLONE_THREAD set) is allowed, a process is not
    emit(jeq, numbers["clone"], 0, 5)
    emit(ld_w, 16)  # args[0], low half (little-endian)
    emit(and_k, CLONE_THREAD)
    emit(jeq, CLONE_THREAD, 0, 1)
    emit(ret, RET_ALLOW)
    emit(ret, deny)
    # kill(pid, sig) and tgkill(tgid, tid, sig): only to this process itself
    emit(ld_w, 0)
    for name in ("kill", "tgkill"):
        emit(jeq, numbers[name], 0, 4)
        emit(ld_w, 16)
        emit(jeq, pid, 1, 0)
        emit(ret, deny)
        emit(ret, RET_ALLOW)
    emit(ret, RET_ALLOW)
    return b"".join(struct.pack("=HBBI", *entry) for entry in program)


def seccomp(available: bool) -> bool:
    """Install the filter (on every thread of the process). False where ``available`` (the caller's
    ``seccomp_available()``) says this machine has no seccomp or an unknown architecture; raises
    ``ConfinementError`` if the kernel refuses."""
    if not available:
        return False
    arch, number, numbers = _ARCHES[platform.machine()]
    code = _filter(arch, numbers, os.getpid())
    filters = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    fprog = struct.pack("@HP", len(code) // 8, ctypes.addressof(filters))
    prog = ctypes.create_string_buffer(fprog, len(fprog))
    libc = _libc()
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    if libc.syscall(ctypes.c_long(number), ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
                    ctypes.c_uint(SECCOMP_FILTER_FLAG_TSYNC), prog) != 0:
        raise _fail("seccomp")
    return True


def drop_capabilities() -> bool:
    """Drop every capability, bounding set included (only matters for a process running as root).
    True when there were some to drop."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    libc = _libc()
    for cap in range(CAP_LAST + 1):
        if libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), ctypes.c_ulong(0), ctypes.c_ulong(0),
                      ctypes.c_ulong(0)) != 0 and ctypes.get_errno() != errno.EINVAL:
            raise _fail("prctl(PR_CAPBSET_DROP)")
    header = ctypes.create_string_buffer(struct.pack("=Ii", _CAP_VERSION_3, 0), 8)
    data = ctypes.create_string_buffer(bytes(24), 24)
    if libc.capset(header, data) != 0:
        raise _fail("capset")
    return True


def confine(read: Iterable[str], write: Iterable[str], devices: Iterable[str] = ()) -> list[str]:
    """Every wall this machine offers, strongest first; returns the names of the layers now up.

    Call it with no other Python thread running (Landlock binds the calling thread and the threads
    and processes it starts later, not threads that exist already; native threads that a library
    started, such as CUDA's, run no Python code, and the seccomp filter binds every thread). Raises
    ``ConfinementError`` when a wall that the machine offers cannot be put up: the caller must then
    refuse to run student code."""
    import threading

    if threading.active_count() != 1:
        raise ConfinementError(errno.EBUSY, f"{threading.active_count()} Python threads: Landlock would "
                                            "bind only one of them")
    layers = []
    filters = seccomp_available()  # read from /proc before Landlock closes it
    abi = landlock(read, write, devices)
    if abi:
        layers.append(f"landlock-v{abi}")
    if drop_capabilities():
        layers.append("no-capabilities")
    if seccomp(available=filters):
        layers.append("seccomp")
    set_dumpable(False)
    return layers


def probe() -> dict[str, Any]:
    """What this machine offers, without changing anything (``dlkit doctor``, the report's isolation line)."""
    abi = landlock_abi()
    return {
        "platform": f"{sys.platform} {platform.machine()} {platform.release()}",
        "landlock": abi,
        "landlock_files": abi >= 1,
        "landlock_network": abi >= 4,
        "landlock_scopes": abi >= 6,
        "seccomp": seccomp_available(),
        "subreaper": sys.platform == "linux",
        "root": hasattr(os, "geteuid") and os.geteuid() == 0,
    }
