"""Seccomp user notification for ``fakecgfs run``: the filter, the listener, the answers.

The command's child installs a filter (before exec, so that every process of the command,
static binaries included, inherits it) that sends the path system calls the supervisor
presents (open, openat, openat2, statfs, fstatfs, mount, fsopen) to a listener descriptor, and
allows everything else, including any system call of another architecture's table (a 32-bit
program on a 64-bit kernel: seccomp_data.arch differs) which is therefore not presented.

Kernel requirements: the listener (SECCOMP_FILTER_FLAG_NEW_LISTENER) since 5.0,
SECCOMP_USER_NOTIF_FLAG_CONTINUE since 5.5, SECCOMP_IOCTL_NOTIF_ADDFD since 5.9 and
SECCOMP_ADDFD_FLAG_SEND since 5.14.  unavailable_reason() says what is missing.

The ioctl numbers use the generic _IOC encoding (x86, arm, riscv, loongarch); the
architectures with another one (powerpc, mips, sparc) have no entry in linux.PATH_CALLS.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import platform
import struct
from dataclasses import dataclass

from .. import linux

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_GET_NOTIF_SIZES = 3
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3

SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_USER_NOTIF = 0x7FC00000

SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
SECCOMP_ADDFD_FLAG_SEND = 1 << 1

MINIMUM_KERNEL = (5, 14)  # ADDFD_FLAG_SEND, the last of the four

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];
_DATA_NR = 0
_DATA_ARCH = 4

# classic BPF
_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_RET_K = 0x06

_NOTIF = struct.Struct("=QII" + "iIQ6Q")  # id, pid, flags, then seccomp_data
_RESP = struct.Struct("=QqiI")  # id, val, error, flags
_ADDFD = struct.Struct("=QIIII")  # id, flags, srcfd, newfd, newfd_flags


def _ioc(direction: int, number: int, size: int) -> int:
    return direction << 30 | size << 16 | ord("!") << 8 | number


_IOC_WRITE, _IOC_READ = 1, 2
IOCTL_NOTIF_RECV = _ioc(_IOC_READ | _IOC_WRITE, 0, _NOTIF.size)
IOCTL_NOTIF_SEND = _ioc(_IOC_READ | _IOC_WRITE, 1, _RESP.size)
IOCTL_NOTIF_ID_VALID = _ioc(_IOC_WRITE, 2, 8)
IOCTL_NOTIF_ADDFD = _ioc(_IOC_WRITE, 3, _ADDFD.size)


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]  # fmt: skip


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def trapped_numbers(calls: linux.PathCalls) -> list[int]:
    """The system calls the filter sends to the supervisor."""
    numbers = [calls.open, calls.openat, calls.openat2, calls.mount, calls.fsopen]
    if calls.statfs_lp64:
        numbers += [calls.statfs, calls.fstatfs]
    return [n for n in numbers if n is not None]


def build_filter(audit_arch: int, numbers: list[int]) -> list[tuple[int, int, int, int]]:
    """The program, as (code, jt, jf, k): another architecture -> allow; one of ``numbers`` ->
    notify; anything else -> allow."""
    count = len(numbers)
    program = [
        (_BPF_LD_W_ABS, 0, 0, _DATA_ARCH),
        (_BPF_JEQ_K, 0, count + 1, audit_arch),  # no: over the comparisons, to the allow
        (_BPF_LD_W_ABS, 0, 0, _DATA_NR),
    ]
    for i, number in enumerate(numbers):
        # Yes: jump over the rest of the comparisons and the allow, to the notify.
        program.append((_BPF_JEQ_K, count - i, 0, number))
    program += [(_BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), (_BPF_RET_K, 0, 0, SECCOMP_RET_USER_NOTIF)]
    return program


@dataclass
class Filter:
    """A filter program held in memory that the child can install after fork with no
    allocation beyond ctypes' own."""

    program: list[tuple[int, int, int, int]]

    def __post_init__(self) -> None:
        self._insns = (_SockFilter * len(self.program))(*(_SockFilter(*i) for i in self.program))
        self._fprog = _SockFprog(len(self.program), self._insns)

    def install(self) -> int:
        """Install on this thread (before exec: the process's only one) and return the listener
        descriptor (close-on-exec).  Needs no_new_privs or CAP_SYS_ADMIN."""
        return linux.seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                             ctypes.cast(ctypes.pointer(self._fprog), ctypes.c_void_p))  # fmt: skip


def filter_for_this_machine() -> Filter:
    calls = linux.path_calls()
    return Filter(build_filter(linux.arch().audit_arch, trapped_numbers(calls)))


def _kernel_version(release: str) -> tuple[int, int]:
    major, minor = [*release.split("."), "0"][:2]
    digits = "".join(c for c in minor if c.isdigit()) or "0"
    return int(major), int(digits)


def unavailable_reason(release: str | None = None) -> str | None:
    """Why the supervisor cannot run here (None: it can)."""
    try:
        linux.arch()
        linux.path_calls()
    except linux.UnsupportedArchitecture as e:
        return str(e)
    sizes = (ctypes.c_uint16 * 3)()
    try:
        linux.seccomp(SECCOMP_GET_NOTIF_SIZES, 0, ctypes.cast(sizes, ctypes.c_void_p))
        action = ctypes.c_uint32(SECCOMP_RET_USER_NOTIF)
        linux.seccomp(SECCOMP_GET_ACTION_AVAIL, 0,
                      ctypes.cast(ctypes.pointer(action), ctypes.c_void_p))  # fmt: skip
    except OSError as e:
        return f"seccomp user notification is not available ({e.strerror})"
    if sizes[0] > _NOTIF.size or sizes[1] > _RESP.size:
        return f"the kernel's notification structures are larger than known ({list(sizes)})"
    release = release or platform.release()
    if _kernel_version(release) < MINIMUM_KERNEL:
        return f"Linux {release} is older than 5.14 (SECCOMP_ADDFD_FLAG_SEND)"
    return None


@dataclass(frozen=True)
class Notification:
    id: int
    pid: int  # the calling thread, in our pid namespace
    nr: int
    arch: int
    args: tuple[int, ...]


def receive(listener: int) -> Notification:
    """The next notification (blocks); OSError ENOENT if its caller went away meanwhile."""
    buffer = bytearray(_NOTIF.size)
    fcntl.ioctl(listener, IOCTL_NOTIF_RECV, buffer)
    id_, pid, _flags, nr, arch, _ip, *args = _NOTIF.unpack(buffer)
    return Notification(id_, pid, nr, arch, tuple(args))


def is_valid(listener: int, notification: Notification) -> bool:
    """The caller still waits for this answer: its thread has not died, nor been replaced by
    another process with the same id.  Check after reading its memory, before acting on it."""
    try:
        fcntl.ioctl(listener, IOCTL_NOTIF_ID_VALID, struct.pack("=Q", notification.id))
    except OSError:
        return False
    return True


def answer(listener: int, notification: Notification, *, value: int = 0, error: int = 0,
           proceed: bool = False) -> None:  # fmt: skip
    """Finish the system call: with ``value``, with -``error``, or, with ``proceed``, let the
    kernel carry it out as if no filter were there.  A caller gone meanwhile is not an error."""
    flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE if proceed else 0
    response = bytearray(_RESP.pack(notification.id, value, -error if error else 0, flags))
    try:
        fcntl.ioctl(listener, IOCTL_NOTIF_SEND, response)
    except OSError as e:
        if e.errno != 2:  # ENOENT: it was interrupted or killed
            raise


def answer_with_fd(listener: int, notification: Notification, fd: int, cloexec: bool) -> int:
    """Install ``fd`` (ours) in the caller and make it the system call's return value; the
    number it got there."""
    request = bytearray(_ADDFD.pack(notification.id, SECCOMP_ADDFD_FLAG_SEND, fd, 0,
                                    os.O_CLOEXEC if cloexec else 0))  # fmt: skip
    return fcntl.ioctl(listener, IOCTL_NOTIF_ADDFD, request)
