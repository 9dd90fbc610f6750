"""Seccomp user notification for ``fakecgfs run``: the filter, the listener, the answers.

The command's child installs a filter (before exec, so that every process of the command,
static binaries included, inherits it) that sends the path system calls the supervisor
presents (open, openat, openat2, statfs, fstatfs, mount, fsopen) to a listener descriptor, and
allows everything else but a new user namespace.  The creator of a user namespace has every
capability in it, CAP_SYS_ADMIN included, whatever it dropped, and there mounts the host's
hierarchies (a cgroup namespace makes them mountable): unshare() and clone() with
CLONE_NEWUSER are EPERM, and clone3(), whose flags a filter cannot read, is ENOSYS (C
libraries then use clone()).  The same holds in the 32-bit table a 64-bit kernel also serves
(x86_64's int 0x80: another seccomp_data.arch), whose calls are otherwise allowed and not
presented; a table not known here (another arch, x86_64's x32 numbers) is ENOSYS throughout.

Kernel requirements: the listener (SECCOMP_FILTER_FLAG_NEW_LISTENER) since 5.0,
SECCOMP_USER_NOTIF_FLAG_CONTINUE since 5.5, SECCOMP_IOCTL_NOTIF_ADDFD since 5.9 and
SECCOMP_ADDFD_FLAG_SEND since 5.14.  unavailable_reason() says what is missing.

The ioctl numbers use the generic _IOC encoding (x86, arm, riscv, loongarch); the
architectures with another one (powerpc, mips, sparc) have no entry in linux.PATH_CALLS.
"""

from __future__ import annotations

import ctypes
import errno
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
SECCOMP_RET_ERRNO = 0x00050000

CLONE_NEWUSER = 0x10000000
X32_SYSCALL_BIT = 0x40000000  # x86_64's x32 numbers; no table has a number this high

SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
SECCOMP_ADDFD_FLAG_SEND = 1 << 1

MINIMUM_KERNEL = (5, 14)  # ADDFD_FLAG_SEND, the last of the four

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];
_DATA_NR = 0
_DATA_ARCH = 4
_DATA_ARG0_LOW = 16  # args[0]'s low half: every architecture in linux.PATH_CALLS is little-endian

# classic BPF
_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
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


Insn = tuple[int, int, int, int]


class _Assembler:
    """Classic BPF with named forward jumps."""

    def __init__(self) -> None:
        self.insns: list[tuple[int, str | None, str | None, int]] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self.labels[name] = len(self.insns)

    def op(self, code: int, k: int, jt: str | None = None, jf: str | None = None) -> None:
        self.insns.append((code, jt, jf, k))

    def program(self) -> list[Insn]:
        def offset(at: int, target: str | None) -> int:
            if target is None:
                return 0
            distance = self.labels[target] - at - 1
            assert 0 <= distance <= 255, "classic BPF jumps forward by at most 255"
            return distance

        return [(code, offset(i, jt), offset(i, jf), k)
                for i, (code, jt, jf, k) in enumerate(self.insns)]  # fmt: skip


def build_filter(
    audit_arch: int, calls: linux.PathCalls, compat: tuple[int, linux.PathCalls] | None = None
) -> list[Insn]:
    """The program, as (code, jt, jf, k): this architecture's path calls -> notify; a new user
    namespace -> EPERM (clone3: ENOSYS); anything else -> allow.  In the ``compat`` table
    (audit value, numbers), the same without presenting; any other table -> ENOSYS."""
    a = _Assembler()
    a.op(_BPF_LD_W_ABS, _DATA_ARCH)
    a.op(_BPF_JEQ_K, audit_arch, jt="native")
    if compat is not None:
        a.op(_BPF_JEQ_K, compat[0], jt="compat")
    a.op(_BPF_RET_K, SECCOMP_RET_ERRNO | errno.ENOSYS)
    a.label("native")
    a.op(_BPF_LD_W_ABS, _DATA_NR)
    a.op(_BPF_JGE_K, X32_SYSCALL_BIT, jt="enosys")
    for number in trapped_numbers(calls):
        a.op(_BPF_JEQ_K, number, jt="notify")
    _refuse_user_namespaces(a, calls)
    if compat is not None:
        a.label("compat")
        a.op(_BPF_LD_W_ABS, _DATA_NR)
        _refuse_user_namespaces(a, compat[1])
    a.label("flags")
    a.op(_BPF_LD_W_ABS, _DATA_ARG0_LOW)  # unshare(flags), clone(flags, ...) on every arch here
    a.op(_BPF_JSET_K, CLONE_NEWUSER, jt="eperm")
    a.op(_BPF_RET_K, SECCOMP_RET_ALLOW)
    a.label("notify")
    a.op(_BPF_RET_K, SECCOMP_RET_USER_NOTIF)
    a.label("eperm")
    a.op(_BPF_RET_K, SECCOMP_RET_ERRNO | errno.EPERM)
    a.label("enosys")
    a.op(_BPF_RET_K, SECCOMP_RET_ERRNO | errno.ENOSYS)
    return a.program()


def _refuse_user_namespaces(a: _Assembler, calls: linux.PathCalls) -> None:
    """With the call number loaded: unshare and clone to their flags' check, clone3 to ENOSYS,
    anything else allowed."""
    a.op(_BPF_JEQ_K, calls.unshare, jt="flags")
    a.op(_BPF_JEQ_K, calls.clone, jt="flags")
    a.op(_BPF_JEQ_K, calls.clone3, jt="enosys")
    a.op(_BPF_RET_K, SECCOMP_RET_ALLOW)


@dataclass
class Filter:
    """A filter program held in memory that the child can install after fork with no
    allocation beyond ctypes' own."""

    program: list[Insn]

    def __post_init__(self) -> None:
        self._insns = (_SockFilter * len(self.program))(*(_SockFilter(*i) for i in self.program))
        self._fprog = _SockFprog(len(self.program), self._insns)

    def install(self) -> int:
        """Install on this thread (before exec: the process's only one) and return the listener
        descriptor (close-on-exec).  Needs no_new_privs or CAP_SYS_ADMIN."""
        return linux.seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                             ctypes.cast(ctypes.pointer(self._fprog), ctypes.c_void_p))  # fmt: skip


def filter_for_this_machine() -> Filter:
    machine = platform.machine()
    compat_machine = linux.COMPAT_MACHINE.get(machine)
    compat = None
    if compat_machine is not None:
        compat = (linux.arch(compat_machine).audit_arch, linux.path_calls(compat_machine))
    return Filter(build_filter(linux.arch(machine).audit_arch, linux.path_calls(machine), compat))


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
