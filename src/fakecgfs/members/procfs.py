"""What /proc says about one member process, read through descriptors held since it joined.

A member's ``/proc/PID`` directory is opened once, right after its pidfd, and every later read
goes through that directory descriptor: it names that very process for as long as it lives, so
a recycled PID can never be read (or acted on) in its place.  Files that are read every sample
(``statm``, ``status``, the main thread's ``children``) stay open and are re-read with pread()
at offset 0, one system call each.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass

from ..controller import PAGE_SIZE

KIB_PER_PAGE = PAGE_SIZE // 1024

PF_KTHREAD = 0x00200000
"""include/linux/sched.h: the task is a kernel thread (it has no memory of its own)."""

PF_NO_SETAFFINITY = 0x04000000
"""...userland may not change its CPU affinity: cgroup_procs_write_start() refuses to migrate
such a task (EINVAL), the kernel's rule for kernel threads bound to CPUs."""

_STATUS_FIELDS = re.compile(rb"^(VmLck|RssAnon|RssFile|RssShmem|VmSwap):\s+(\d+) kB", re.M)
_READ_SIZE = 4096  # /proc/PID/status is about 1.5 KiB; statm and children far less


@dataclass(frozen=True, slots=True)
class Usage:
    """A process's memory in pages, from /proc/PID/status."""

    anon: int = 0  # RssAnon: private anonymous pages
    file: int = 0  # RssFile: file-backed pages mapped
    shmem: int = 0  # RssShmem: shared anonymous, SysV shm, memfd and tmpfs pages mapped
    locked: int = 0  # VmLck: mlocked (a size, capped to what is resident by the caller)
    swap: int = 0  # VmSwap: its anonymous pages in swap


def parse_status(text: bytes) -> Usage | None:
    """The memory lines of /proc/PID/status, or None when it has none (a zombie: no mm)."""
    fields = {name: int(kib) // KIB_PER_PAGE for name, kib in _STATUS_FIELDS.findall(text)}
    if b"RssAnon" not in fields:
        return None
    return Usage(anon=fields[b"RssAnon"], file=fields.get(b"RssFile", 0),
                 shmem=fields.get(b"RssShmem", 0), locked=fields.get(b"VmLck", 0),
                 swap=fields.get(b"VmSwap", 0))  # fmt: skip


def stat_fields(text: bytes) -> list[bytes]:
    """/proc/PID/stat's fields after the command name (which may hold spaces and parentheses):
    element 0 is field 3 (state), so field N is element N - 3."""
    return text[text.rfind(b")") + 2 :].split()


def stat_flags(pid: int, proc: str = "/proc") -> int | None:
    """The task's PF_* flags (field 9 of /proc/PID/stat), or None if it is gone."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            return int(stat_fields(f.read())[9 - 3])
    except (OSError, ValueError, IndexError):
        return None


def proc_uids(pid: int, proc: str = "/proc") -> tuple[int, int] | None:
    """(uid, suid) of a process, as a migration's permission check compares them with the
    writer's euid: from the Uid: line of /proc/PID/status (real, effective, saved,
    filesystem); None if it is gone."""
    try:
        with open(f"{proc}/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    fields = line.split()
                    return int(fields[1]), int(fields[3])
    except (OSError, ValueError, IndexError):
        return None
    return None


def proc_ids(tid: int, proc: str = "/proc") -> tuple[int, int, int] | None:
    """(thread group ID, real uid, saved uid) of a thread, from the Tgid: and Uid: lines of
    /proc/TID/status; None if it is gone."""
    tgid = None
    try:
        with open(f"{proc}/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    tgid = int(line.split()[1])
                elif line.startswith(b"Uid:") and tgid is not None:
                    fields = line.split()
                    return tgid, int(fields[1]), int(fields[3])
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True, slots=True)
class LockedSplit:
    """mlocked pages by the kind of mapping that holds them (from /proc/PID/smaps)."""

    anon: int = 0
    shmem: int = 0
    file: int = 0


_SMAPS_HEADER = re.compile(rb"^[0-9a-f]+-[0-9a-f]+ (\S{4}) \S+ (\S+) \d+ ?\s*(.*)$")


def parse_locked_split(text: bytes, shmem_dev: bytes) -> LockedSplit:
    """Per mapping: its locked pages are anonymous up to its ``Anonymous`` figure (private
    pages written to), the rest shmem for a shared mapping of the internal shmem mount
    (``/dev/zero``, SysV, memfd), else file pages."""
    anon = shmem = file = 0
    shared = on_shmem = False
    anonymous = 0
    for line in text.splitlines():
        header = _SMAPS_HEADER.match(line)
        if header:
            perms, dev, _ = header.groups()
            shared, on_shmem, anonymous = perms[3:4] == b"s", dev == shmem_dev, 0
        elif line.startswith(b"Anonymous:"):
            anonymous = int(line.split()[1]) // KIB_PER_PAGE
        elif line.startswith(b"Locked:"):
            locked = int(line.split()[1]) // KIB_PER_PAGE
            if not locked:
                continue
            in_anon = min(locked, anonymous)
            anon += in_anon
            if shared and on_shmem:
                shmem += locked - in_anon
            else:
                file += locked - in_anon
    return LockedSplit(anon, shmem, file)


def shmem_device() -> bytes:
    """The device of the kernel's internal shmem mount, as /proc/PID/maps prints it ("00:01"):
    where shared anonymous mappings, SysV segments and memfds live."""
    fd = os.memfd_create("fakecgfs-probe", os.MFD_CLOEXEC)
    try:
        dev = os.fstat(fd).st_dev
    finally:
        os.close(fd)
    return f"{os.major(dev):02x}:{os.minor(dev):02x}".encode()


_MAPS_LINE = re.compile(rb"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ (\S+) (\d+)[ \t]*(.*)$", re.M)
_SPECIAL = (b"[vsyscall]", b"[vvar]", b"[vdso]", b"[vvar_vclock]", b"[uprobes]")


def reclaimable_ranges(maps: bytes, shmem_dev: bytes, *, anon: bool) -> list[tuple[int, int]]:
    """(start, length) of the mappings MADV_PAGEOUT can free pages of: file-backed ones, and,
    when ``anon`` (the host has swap), anonymous and shmem ones too."""
    ranges = []
    for start, end, _perms, dev, inode, path in _MAPS_LINE.findall(maps):
        if path.startswith(_SPECIAL):
            continue
        file_backed = inode != b"0" and dev != shmem_dev
        if file_backed or anon:
            ranges.append((int(start, 16), int(end, 16) - int(start, 16)))
    return ranges


def private_anon(smaps_rollup: bytes) -> int:
    """Anonymous pages the process has to itself (written since fork: no longer shared
    copy-on-write with its parent), from /proc/PID/smaps_rollup."""
    fields = {}
    for line in smaps_rollup.splitlines():
        name, _, rest = line.partition(b":")
        if name in (b"Private_Dirty", b"Anonymous"):
            fields[name] = int(rest.split()[0]) // KIB_PER_PAGE
    return min(fields.get(b"Private_Dirty", 0), fields.get(b"Anonymous", 0))


def parse_children(text: bytes) -> list[int]:
    return [int(pid) for pid in text.split()]


@dataclass(frozen=True, slots=True)
class Segment:
    """A SysV shared memory segment, from /proc/sysvipc/shm."""

    shmid: int
    cpid: int  # its creator
    nattch: int  # processes attached
    ctime: int  # creation (or last IPC_SET) time, seconds since the epoch
    rss: int  # pages resident
    swap: int  # pages in swap


def parse_sysvipc_shm(text: bytes) -> dict[int, Segment]:
    """Columns: key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss
    swap (ipc/shm.c sysvipc_shm_proc_show(); rss and swap in bytes)."""
    segments = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 16:
            continue
        shmid = int(fields[1])
        segments[shmid] = Segment(shmid, cpid=int(fields[4]), nattch=int(fields[6]),
                                  ctime=int(fields[13]), rss=int(fields[14]) // PAGE_SIZE,
                                  swap=int(fields[15]) // PAGE_SIZE)  # fmt: skip
    return segments


def read_sysvipc_shm(path: str = "/proc/sysvipc/shm") -> dict[int, Segment]:
    try:
        with open(path, "rb") as f:
            return parse_sysvipc_shm(f.read())
    except OSError:
        return {}


def host_has_swap(path: str = "/proc/swaps") -> bool:
    """Some swap device is active: MADV_PAGEOUT can then swap anonymous pages out."""
    try:
        with open(path, "rb") as f:
            return len(f.read().splitlines()) > 1
    except OSError:
        return False


MAX_PROC_READ = 1 << 20
"""Bytes of a /proc file read in the server's loop at most; smaps takes about 500 bytes a
mapping, so this is some 2,000 mappings (a typical program has under 100)."""


class ProcDir:
    """A process's /proc directory and the files sampled from it, held open."""

    __slots__ = ("dirfd", "_statm", "_status", "_children")

    def __init__(self, pid: int, proc: str = "/proc") -> None:
        self.dirfd = os.open(f"{proc}/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._statm = self._status = self._children = -1
        try:
            self._statm = self._open("statm")
            self._status = self._open("status")
        except OSError:
            self.close()
            raise
        try:
            self._children = self._open(f"task/{pid}/children")
        except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: no fork detection
            pass

    def _open(self, name: str) -> int:
        return os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.dirfd)

    def statm(self) -> bytes:
        """/proc/PID/statm (sizes in pages: size resident shared text lib data dt); empty once
        the process is gone."""
        return _pread(self._statm)

    def status(self) -> bytes:
        return _pread(self._status)

    def children(self) -> bytes:
        """Child PIDs of its main thread (none known without CONFIG_PROC_CHILDREN)."""
        return _pread(self._children) if self._children >= 0 else b""

    def read(self, name: str, limit: int = MAX_PROC_READ) -> bytes | None:
        """A file read whole (stat, smaps_rollup, smaps); empty if the process is gone, None
        if it is longer than ``limit`` bytes (a process with a great many mappings: reading
        all of them would hold up the server)."""
        return read_at(self.dirfd, name, limit)

    def dup(self) -> int:
        """A descriptor of the /proc directory for a worker thread, which closes it."""
        return os.dup(self.dirfd)

    def close(self) -> None:
        for fd in (self._statm, self._status, self._children, self.dirfd):
            if fd >= 0:
                os.close(fd)
        self._statm = self._status = self._children = self.dirfd = -1


def read_at(dirfd: int, name: str, limit: int) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dirfd)
    except OSError:
        return b""
    try:
        chunks, size = [], 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return None
        return b"".join(chunks)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _pread(fd: int) -> bytes:
    try:
        return os.pread(fd, _READ_SIZE, 0)
    except OSError:  # ESRCH: the process has been reaped
        return b""


def image_of(stat: bytes) -> tuple[int, int] | None:
    """What identifies the program a process runs: where its code starts and ends (fields 26
    and 27 of /proc/PID/stat).  exec() replaces them, even by the same program (its address is
    randomised); fork() keeps them.  None if the process is gone."""
    fields = stat_fields(stat)
    try:
        return int(fields[26 - 3]), int(fields[27 - 3])
    except (IndexError, ValueError):
        return None


log = logging.getLogger("fakecgfs")

# A read of smaps or smaps_rollup takes the process's mmap_lock, which the process can keep from
# being taken as long as it likes (a thread reading its own memory through /proc/self/mem at a
# page of a FUSE file its owner does not answer holds it for reading; a second thread's mmap()
# then waits for it, and every new reader behind that one).  The server thread must never wait
# for that: it waits this long for a worker thread, then leaves the read to it.
LOCKING_READ_WAIT = 0.1
# ...and once a read was left, reads no such file until it has ended and this long after, so
# that a member who keeps doing it costs the server one wait per this many seconds.
LOCKING_READ_PAUSE = 10.0


class LockingReads:
    """Reads of the /proc files that take a process's mmap_lock, made in worker threads."""

    def __init__(self) -> None:
        self._left: threading.Event | None = None  # the read left to its thread, if any
        self._resume = 0.0
        self.refused = False  # the last read() was not made (or not waited for)

    def read(self, proc: ProcDir, name: str, limit: int = MAX_PROC_READ) -> bytes | None:
        """As ProcDir.read(); None also if the read did not end within LOCKING_READ_WAIT, or
        one left before has not ended, or ended less than LOCKING_READ_PAUSE ago."""
        now = time.monotonic()
        if self._left is not None and self._left.is_set():
            self._left = None
            self._resume = now + LOCKING_READ_PAUSE
        self.refused = self._left is not None or now < self._resume
        if self.refused:
            return None
        dirfd = proc.dup()  # the member may be closed meanwhile: the thread owns this one
        done = threading.Event()
        result: list[bytes | None] = [None]

        def work() -> None:
            try:
                result[0] = read_at(dirfd, name, limit)
            finally:
                os.close(dirfd)
                done.set()

        threading.Thread(target=work, name=f"fakecgfs {name}", daemon=True).start()
        if done.wait(LOCKING_READ_WAIT):
            return result[0]
        self._left = done
        self.refused = True
        log.warning(
            "a member's %s took over %g s (its mmap_lock is held): not read until that "
            "read ends, and %g s after",
            name,
            LOCKING_READ_WAIT,
            LOCKING_READ_PAUSE,
        )
        return None
