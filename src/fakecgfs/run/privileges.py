"""What the command of ``fakecgfs run`` may not do: the capabilities it loses before exec.

CAP_SYS_ADMIN goes (mount, umount, setns, fsopen: the ways back to a real cgroup hierarchy),
and CAP_SYS_PTRACE with it: a root without it cannot follow /proc/PID/root of a process with
more capabilities than its own (ptrace_may_access), which would otherwise walk into the host's
mount namespace and its cgroup hierarchies.  Each is removed from the bounding set (so that an
exec, which recomputes root's capabilities from the bounding set, cannot bring it back) and
from the effective, permitted and inheritable sets (ambient ones go with them).

These functions run in the forked child before exec (subprocess's preexec_fn): ctypes calls
only, nothing that takes a lock another thread could hold.
"""

from __future__ import annotations

import ctypes
import os

from ..cgroupfs.events_control import CAP_SYS_ADMIN

CAP_SYS_PTRACE = 19
DROPPED = (CAP_SYS_ADMIN, CAP_SYS_PTRACE)

PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]  # fmt: skip


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]  # fmt: skip


def _raise(what: str) -> None:
    number = ctypes.get_errno()
    raise OSError(number, f"{what}: {os.strerror(number)}")


def prctl(option: int, arg: int = 0) -> int:
    result = _libc.prctl(option, arg, 0, 0, 0)
    if result < 0:
        _raise(f"prctl({option})")
    return int(result)


def drop_capabilities(caps: tuple[int, ...] = DROPPED) -> None:
    """Remove ``caps`` from this process's bounding, effective, permitted and inheritable sets."""
    for cap in caps:
        if prctl(PR_CAPBSET_READ, cap):
            prctl(PR_CAPBSET_DROP, cap)  # needs CAP_SETPCAP, which we still have
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if _libc.capget(ctypes.byref(header), data) != 0:
        _raise("capget")
    for cap in caps:
        word, bit = divmod(cap, 32)
        mask = ~(1 << bit) & 0xFFFFFFFF
        data[word].effective &= mask
        data[word].permitted &= mask
        data[word].inheritable &= mask
    if _libc.capset(ctypes.byref(header), data) != 0:
        _raise("capset")


def set_no_new_privs() -> None:
    """No exec may gain privileges (set-user-ID, file capabilities) from here on: what lets a
    process without CAP_SYS_ADMIN install a seccomp filter."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)
