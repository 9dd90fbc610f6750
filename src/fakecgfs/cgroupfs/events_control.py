"""``cgroup.event_control``: the registration line, checked as memcg_write_event_control() does.

The writer's descriptors are looked up in /proc/<pid>/fd (the FUSE request names the writer).
Delivering notifications on the eventfd (thresholds, OOM, pressure) is not implemented yet:
a valid registration is accepted and recorded, and nothing is signalled.
"""

from __future__ import annotations

import errno
import os

from ..controller import ControllerError, MemCgroup, MemoryController
from .parse import memparse, strstrip

CONTROL_FILES = (
    "memory.usage_in_bytes",
    "memory.memsw.usage_in_bytes",
    "memory.oom_control",
    "memory.pressure_level",
)
PRESSURE_LEVELS = (b"low", b"medium", b"critical")
PRESSURE_MODES = (b"hierarchy", b"local", b"default")


def _simple_strtoul(buf: bytes) -> tuple[int, bytes]:
    """Decimal digits at the start (simple_strtoul base 10); value and the rest."""
    i = 0
    while i < len(buf) and 0x30 <= buf[i] <= 0x39:
        i += 1
    return (int(buf[:i]) if i else 0), buf[i:]


def parse_registration(data: bytes) -> tuple[int, int, bytes]:
    """Split '<efd> <cfd> [args]' with the kernel's rules: single spaces only, else EINVAL."""
    buf = strstrip(data)
    efd, rest = _simple_strtoul(buf)
    if not rest.startswith(b" "):
        raise ControllerError(errno.EINVAL, "expected '<event_fd> <control_fd> [args]'")
    cfd, rest = _simple_strtoul(rest[1:])
    if rest == b"":
        args = b""
    elif rest.startswith(b" "):
        args = rest[1:]
    else:
        raise ControllerError(errno.EINVAL, "expected '<event_fd> <control_fd> [args]'")
    return efd, cfd, args


def _fd_target(pid: int, fd: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError as e:
        raise ControllerError(errno.EBADF, f"no descriptor {fd} in process {pid}") from e


def check_args(control: str, args: bytes) -> None:
    """The arguments as each register function reads them: a threshold is parsed unstripped
    (page_counter_memparse), pressure is 'level[,mode]' split on commas (extra tokens ignored),
    OOM takes none and ignores any."""
    if control in ("memory.usage_in_bytes", "memory.memsw.usage_in_bytes"):
        if args != b"-1" and memparse(args)[1]:
            raise ControllerError(errno.EINVAL, "threshold is a size")
    elif control == "memory.pressure_level":
        tokens = args.split(b",")
        if tokens[0] not in PRESSURE_LEVELS or (len(tokens) > 1 and tokens[1] not in PRESSURE_MODES):
            raise ControllerError(errno.EINVAL, "pressure level: low|medium|critical[,mode]")


def register_event(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller,
                   mountpoint: str | None = None) -> None:  # fmt: skip
    efd, cfd, args = parse_registration(data)
    if _fd_target(caller.pid, efd) != "anon_inode:[eventfd]":
        raise ControllerError(errno.EINVAL, "event_fd is not an eventfd")
    target = _fd_target(caller.pid, cfd)
    control = os.path.basename(target)
    if control not in CONTROL_FILES:
        raise ControllerError(errno.EINVAL, f"{control} cannot be watched")
    if mountpoint is not None and target.startswith(mountpoint.rstrip("/") + "/"):
        group_path = os.path.dirname(target[len(mountpoint.rstrip("/")):]) or "/"
        if group_path != memcg.path:
            raise ControllerError(errno.EINVAL, "control file belongs to another group")
    check_args(control, args)
