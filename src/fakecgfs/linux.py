"""Linux system calls Python's ``os`` module lacks, through the C library where it has them.

glibc 2.36 wraps pidfd_getfd and process_madvise; older C libraries do not, and then the raw
system call is made with this architecture's number.  Numbers differ per architecture (the
pidfd family shares one number everywhere since Linux 5.1, except on alpha, ia64 and MIPS,
which fakecgfs does not support), so they come from one table, never from a literal at the
call site.  Every function raises ``OSError`` with the kernel's errno.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Arch:
    """One architecture's numbers: its seccomp audit value and the system calls we make raw."""

    audit_arch: int  # AUDIT_ARCH_* (include/uapi/linux/audit.h): seccomp_data.arch
    seccomp: int
    setgroups: int = 159  # the generic table's (the 32-bit-gid call: setgroups32 on i386, arm)
    pidfd_send_signal: int = 424
    pidfd_open: int = 434
    pidfd_getfd: int = 438
    process_madvise: int = 440
    # Linux AIO (io_setup...): the generic table's numbers; older architectures have their own.
    io_setup: int = 0
    io_destroy: int = 1
    io_submit: int = 2
    io_getevents: int = 4


_AIO_X86_64 = {"io_setup": 206, "io_destroy": 207, "io_getevents": 208, "io_submit": 209}
_AIO_I386 = {"io_setup": 245, "io_destroy": 246, "io_getevents": 247, "io_submit": 248}
_AIO_ARM = {"io_setup": 243, "io_destroy": 244, "io_getevents": 245, "io_submit": 246}
_AIO_PPC = {"io_setup": 227, "io_destroy": 228, "io_getevents": 229, "io_submit": 230}

# uname -m -> numbers, from each architecture's syscall table (arch/*/entry/syscalls/ and
# include/uapi/asm-generic/unistd.h for the architectures that use the generic table).
ARCHES: dict[str, Arch] = {
    "x86_64": Arch(audit_arch=0xC000003E, seccomp=317, setgroups=116, **_AIO_X86_64),
    "i686": Arch(audit_arch=0x40000003, seccomp=354, setgroups=206, **_AIO_I386),
    "i386": Arch(audit_arch=0x40000003, seccomp=354, setgroups=206, **_AIO_I386),
    "aarch64": Arch(audit_arch=0xC00000B7, seccomp=277),
    "armv7l": Arch(audit_arch=0x40000028, seccomp=383, setgroups=206, **_AIO_ARM),
    "armv6l": Arch(audit_arch=0x40000028, seccomp=383, setgroups=206, **_AIO_ARM),
    "riscv64": Arch(audit_arch=0xC00000F3, seccomp=277),
    "loongarch64": Arch(audit_arch=0xC0000102, seccomp=277),
    "ppc64le": Arch(audit_arch=0xC0000015, seccomp=358, setgroups=81, **_AIO_PPC),
    "s390x": Arch(
        audit_arch=0x80000016, seccomp=348, setgroups=206, **_AIO_ARM
    ),  # s390 numbers match arm's
}


class UnsupportedArchitecture(OSError):
    pass


def arch(machine: str | None = None) -> Arch:
    """This machine's numbers (or those of ``machine``, a ``uname -m`` value)."""
    machine = machine or platform.machine()
    try:
        return ARCHES[machine]
    except KeyError:
        raise UnsupportedArchitecture(f"no system call table for {machine}") from None


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _raise_errno(what: str) -> None:
    number = ctypes.get_errno()
    raise OSError(number, f"{what}: {os.strerror(number)}")


# What syscall(2)'s variadic arguments may be, as ctypes passes them: a C scalar (c_int...), an
# array (decays to a pointer) or byref(); plain ints go as C ints.  The private names are
# typeshed's (annotations are not evaluated at run time).
def _syscall(
    name: str, *args: int | ctypes._SimpleCData[Any] | ctypes.Array[Any] | ctypes._CArgObject
) -> int:
    result = _libc.syscall(ctypes.c_long(getattr(arch(), name)), *args)
    if result < 0:
        _raise_errno(name)
    return int(result)


def take_fs_identity(fsuid: int, fsgid: int, groups: list[int]) -> None:
    """This thread alone (not the process: glibc's setgroups() would change every thread)
    takes file-system identity ``fsuid``, ``fsgid`` and supplementary ``groups``, as path
    lookups check them; a fsuid other than 0 also drops its file-system capabilities.  Needs
    CAP_SETUID and CAP_SETGID; for a worker thread that ends after."""
    if sorted(groups) != sorted(os.getgroups()):  # (a user namespace may deny setgroups)
        array = (ctypes.c_uint * max(len(groups), 1))(*groups)
        _syscall("setgroups", ctypes.c_int(len(groups)), array)
    _libc.setfsgid(ctypes.c_uint(fsgid))
    _libc.setfsuid(ctypes.c_uint(fsuid))
    # set*fsid() report no error; the kernel keeps the old id when it refuses
    if _libc.setfsuid(ctypes.c_uint(0xFFFFFFFF)) != fsuid:
        raise PermissionError(errno.EPERM, f"setfsuid({fsuid}) refused")
    if _libc.setfsgid(ctypes.c_uint(0xFFFFFFFF)) != fsgid:
        raise PermissionError(errno.EPERM, f"setfsgid({fsgid}) refused")


def pidfd_open(pid: int) -> int:
    """A pidfd for ``pid`` (close-on-exec, as every pidfd is)."""
    return os.pidfd_open(pid)


def pidfd_send_signal(pidfd: int, signum: int) -> None:
    """Signal the process a pidfd names: a recycled PID cannot be hit."""
    import signal

    signal.pidfd_send_signal(pidfd, signum)


def pidfd_getfd(pidfd: int, targetfd: int) -> int:
    """A duplicate, in this process, of descriptor ``targetfd`` of the pidfd's process
    (close-on-exec).  Needs PTRACE_MODE_ATTACH_REALCREDS over it."""
    wrapper = getattr(_libc, "pidfd_getfd", None)
    if wrapper is not None:
        wrapper.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_uint]
        result = wrapper(pidfd, targetfd, 0)
        if result < 0:
            _raise_errno("pidfd_getfd")
        return int(result)
    return _syscall("pidfd_getfd", ctypes.c_int(pidfd), ctypes.c_int(targetfd), ctypes.c_uint(0))


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def process_madvise(pidfd: int, ranges: list[tuple[int, int]], advice: int) -> int:
    """madvise() on another process's address ranges (start, length); bytes advised.  Needs
    PTRACE_MODE_READ over it and CAP_SYS_NICE."""
    if not ranges:
        return 0
    iov = (_Iovec * len(ranges))(*(_Iovec(start, length) for start, length in ranges))
    wrapper = getattr(_libc, "process_madvise", None)
    if wrapper is not None:
        wrapper.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                            ctypes.c_uint]  # fmt: skip
        wrapper.restype = ctypes.c_ssize_t
        result = wrapper(pidfd, iov, len(ranges), advice, 0)
        if result < 0:
            _raise_errno("process_madvise")
        return int(result)
    return _syscall("process_madvise", ctypes.c_int(pidfd), ctypes.cast(iov, ctypes.c_void_p),
                    ctypes.c_size_t(len(ranges)), ctypes.c_int(advice),
                    ctypes.c_uint(0))  # fmt: skip


def seccomp(operation: int, flags: int, args: ctypes.c_void_p | None) -> int:
    """seccomp(2), which glibc does not wrap."""
    return _syscall("seccomp", ctypes.c_uint(operation), ctypes.c_uint(flags),
                    args if args is not None else ctypes.c_void_p(0))  # fmt: skip


@dataclass(frozen=True)
class PathCalls:
    """One architecture's numbers for the calls ``fakecgfs run`` presents (run/seccomp.py):
    None where the architecture has no such call (the generic table has no open(2)).

    ``statfs_lp64``: struct statfs is the generic 64-bit one (every field a long or a u64,
    120 bytes), which is all the supervisor knows how to write; elsewhere statfs is not
    trapped.  32-bit architectures also have statfs64/fstatfs64, with their own layout.
    """

    open: int | None
    openat: int
    statfs: int
    fstatfs: int
    mount: int
    statfs64: int | None = None
    fstatfs64: int | None = None
    unshare: int = 97  # the generic table's; with clone, the calls that make user namespaces
    clone: int = 220
    openat2: int = 437  # the same everywhere since Linux 5.6
    fsopen: int = 430  # since 5.2
    clone3: int = 435  # since 5.3
    statfs_lp64: bool = True


# Verified against this round's headers (asm/unistd_64.h, asm/unistd_32.h,
# asm-generic/unistd.h); architectures missing here get no supervisor, and say so.
_GENERIC = PathCalls(open=None, openat=56, statfs=43, fstatfs=44, mount=40)
# fmt: off
PATH_CALLS: dict[str, PathCalls] = {
    "x86_64": PathCalls(open=2, openat=257, statfs=137, fstatfs=138, mount=165, unshare=272,
                        clone=56),
    "i686": PathCalls(open=5, openat=295, statfs=99, fstatfs=100, mount=21, statfs64=268,
                      fstatfs64=269, unshare=310, clone=120, statfs_lp64=False),
    "i386": PathCalls(open=5, openat=295, statfs=99, fstatfs=100, mount=21, statfs64=268,
                      fstatfs64=269, unshare=310, clone=120, statfs_lp64=False),
    "aarch64": _GENERIC,
    "riscv64": _GENERIC,
    "loongarch64": _GENERIC,
}
# fmt: on


# The 32-bit table a 64-bit kernel also serves to any process (x86_64: int 0x80, with
# CONFIG_IA32_EMULATION), under another seccomp_data.arch.  Others' compat tables (arm on
# aarch64) are not tabled: a filter must then refuse that arch's calls outright.
COMPAT_MACHINE: dict[str, str] = {"x86_64": "i686"}


def path_calls(machine: str | None = None) -> PathCalls:
    """The numbers ``fakecgfs run`` traps on this machine (or ``machine``)."""
    machine = machine or platform.machine()
    try:
        return PATH_CALLS[machine]
    except KeyError:
        raise UnsupportedArchitecture(f"no table of path system calls for {machine}") from None


# -- Linux AIO, for one thing: eventfd_signal() from user space ---------------------------------
#
# An iocb submitted with IOCB_FLAG_RESFD makes the kernel call eventfd_signal() on that eventfd
# when the iocb completes: the kernel's own increment, which never blocks and saturates at
# ULLONG_MAX, where a write(2) of the same increment would block on a full counter.

IOCB_CMD_PREAD = 0
IOCB_FLAG_RESFD = 1 << 0


class Iocb(ctypes.Structure):
    """struct iocb (include/uapi/linux/aio_abi.h); aio_key and aio_rw_flags swap places on
    big-endian machines, and both stay 0 here."""

    _fields_ = [("aio_data", ctypes.c_uint64), ("aio_key", ctypes.c_uint32),
                ("aio_rw_flags", ctypes.c_int32), ("aio_lio_opcode", ctypes.c_uint16),
                ("aio_reqprio", ctypes.c_int16), ("aio_fildes", ctypes.c_uint32),
                ("aio_buf", ctypes.c_uint64), ("aio_nbytes", ctypes.c_uint64),
                ("aio_offset", ctypes.c_int64), ("aio_reserved2", ctypes.c_uint64),
                ("aio_flags", ctypes.c_uint32), ("aio_resfd", ctypes.c_uint32)]  # fmt: skip


class IoEvent(ctypes.Structure):
    """struct io_event."""

    _fields_ = [("data", ctypes.c_uint64), ("obj", ctypes.c_uint64),
                ("res", ctypes.c_int64), ("res2", ctypes.c_int64)]  # fmt: skip


def io_setup(nr_events: int) -> int:
    """A new AIO context able to hold ``nr_events`` completions; its handle."""
    context = ctypes.c_ulong(0)
    _syscall("io_setup", ctypes.c_uint(nr_events), ctypes.byref(context))
    return context.value


def io_destroy(context: int) -> None:
    _syscall("io_destroy", ctypes.c_ulong(context))


def io_submit(context: int, iocbs: list[Iocb]) -> int:
    """Submit the iocbs; how many the kernel took."""
    array = (ctypes.POINTER(Iocb) * len(iocbs))(*(ctypes.pointer(cb) for cb in iocbs))
    return _syscall("io_submit", ctypes.c_ulong(context), ctypes.c_long(len(iocbs)), array)


def io_getevents(context: int, max_nr: int) -> list[IoEvent]:
    """The completions already there, at most ``max_nr``, without waiting (min_nr 0 and a zero
    timeout)."""
    events = (IoEvent * max_nr)()
    timeout = (ctypes.c_long * 2)(0, 0)  # struct timespec {0, 0}
    count = _syscall("io_getevents", ctypes.c_ulong(context), ctypes.c_long(0),
                     ctypes.c_long(max_nr), events, timeout)  # fmt: skip
    return list(events[:count])
