"""``cgroup.event_control``: registering an eventfd, as memcg_write_event_control() does.

The line is ``<event_fd> <control_fd> [args]`` and both numbers are descriptors of the
*writer*.  The FUSE request names the writing thread; the server looks the descriptors up in
/proc/<pid>/fd (EBADF if absent), and takes its own duplicate of the eventfd with
pidfd_open() + pidfd_getfd() (Linux 5.6+).  pidfd_getfd() needs ptrace-level permission over
the writer (PTRACE_MODE_ATTACH_REALCREDS): a server running as root has it; a server run by a
user has it over that user's processes unless Yama's ptrace_scope forbids it, in which case
the registration fails with EPERM.  The control file is identified by the path its
descriptor resolves to under the mount point.  What fires a registration, and when, is
``fakecgfs.controller.notify``.
"""

from __future__ import annotations

import ctypes
import errno
import os

from ..controller import ControllerError, MemCgroup, MemoryController
from ..controller.notify import PressureLevel, PressureMode, Registration, Watch
from .parse import PAGE_COUNTER_MAX, PAGE_SIZE, memparse, strstrip

SYS_PIDFD_GETFD = 438  # x86_64 and aarch64 alike (new syscalls share numbers since 5.1)
EVENTFD_TARGET = "anon_inode:[eventfd]"

_libc = ctypes.CDLL(None, use_errno=True)


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


def parse_threshold(args: bytes) -> int:
    """A usage threshold in pages, parsed unstripped as the register function does."""
    if args == b"-1":
        return PAGE_COUNTER_MAX
    value, rest = memparse(args)
    if rest:
        raise ControllerError(errno.EINVAL, "threshold is a size")
    return min(value // PAGE_SIZE, PAGE_COUNTER_MAX)


def parse_pressure(args: bytes) -> tuple[PressureLevel, PressureMode]:
    """'level[,mode]' split on commas; tokens after the mode are ignored (vmpressure)."""
    tokens = args.split(b",")
    levels = {level.value.encode(): level for level in PressureLevel}
    modes = {mode.value.encode(): mode for mode in PressureMode}
    if tokens[0] not in levels or (len(tokens) > 1 and tokens[1] not in modes):
        raise ControllerError(errno.EINVAL, "pressure level: low|medium|critical[,mode]")
    return levels[tokens[0]], modes[tokens[1]] if len(tokens) > 1 else PressureMode.DEFAULT


def _tgid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    raise ControllerError(errno.ESRCH, f"process {pid} is gone")


def steal_fd(pid: int, fd: int) -> int:
    """A duplicate of descriptor ``fd`` of process ``pid`` in this process."""
    try:
        pidfd = os.pidfd_open(_tgid(pid))
    except OSError as e:
        raise ControllerError(e.errno or errno.ESRCH, "cannot open the writer's pidfd") from e
    try:
        dup = _libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if dup < 0:
            code = ctypes.get_errno()
            raise ControllerError(code, f"pidfd_getfd: {os.strerror(code)}")
        os.set_inheritable(dup, False)
        return dup
    finally:
        os.close(pidfd)


class EventfdSignal:
    """Adds 1 to a duplicated eventfd; closes it when the registration goes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def signal(self) -> None:
        try:
            os.eventfd_write(self.fd, 1)
        except OSError:  # a counter at its maximum, or a non-blocking eventfd that is full
            pass

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def register_event(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller) -> None:
    """Check a registration line in the kernel's order, then register it."""
    efd, cfd, args = parse_registration(data)
    if _fd_target(caller.pid, efd) != EVENTFD_TARGET:
        raise ControllerError(errno.EINVAL, "event_fd is not an eventfd")
    target = _fd_target(caller.pid, cfd)
    try:
        watch = Watch(os.path.basename(target))
    except ValueError:
        raise ControllerError(errno.EINVAL, f"{os.path.basename(target)} cannot be watched") from None
    mountpoint = (caller.mountpoint or "").rstrip("/")
    if not target.startswith(mountpoint + "/"):
        raise ControllerError(errno.EINVAL, "control file is not in this hierarchy")
    if (os.path.dirname(target[len(mountpoint):]) or "/") != memcg.path:
        raise ControllerError(errno.EINVAL, "control file belongs to another group")
    registration = Registration(memcg, watch, signal=lambda: None)
    if watch in (Watch.USAGE, Watch.MEMSW_USAGE):
        registration.threshold = parse_threshold(args)
    elif watch is Watch.PRESSURE:
        registration.level, registration.mode = parse_pressure(args)
    eventfd = EventfdSignal(steal_fd(caller.pid, efd))
    registration.signal, registration.release = eventfd.signal, eventfd.release
    ctl.notifier.register(registration)
