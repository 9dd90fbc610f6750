"""The seccomp supervisor of ``fakecgfs run``: what the command sees of the fake's identity.

It runs as a thread of the ``fakecgfs run`` process, not in the FUSE server: the server's one
trio loop must never wait for a command, and the supervisor reads the fake through the mount
(the ``tasks`` files, to find a process's group) as any other client does.  It answers, for
every process of the command:

* statfs/fstatfs of a file on the fake: CGROUP_SUPER_MAGIC and the rest of a kernfs statfs,
  written into the caller's buffer (the supervisor resolves the caller's path itself, through
  /proc/TID/root, /proc/TID/cwd or /proc/TID/fd/N, and compares the device with the fake's);
* opens of /proc/{self,thread-self,PID,PID/task/TID}/{mounts,mountinfo,cgroup}, /proc/mounts
  and /proc/cgroups: a memfd holding the presented text (procfiles.py), installed in the caller
  as the call's result (SECCOMP_ADDFD_FLAG_SEND), close-on-exec if O_CLOEXEC was asked;
* mount(2) of a cgroup or cgroup2 file system, and fsopen("cgroup"/"cgroup2"): EPERM.

Everything else goes on untouched (SECCOMP_USER_NOTIF_FLAG_CONTINUE).  Any failure of ours
answers CONTINUE, and statfs, which may have to wait on another FUSE file system (one the
command serves itself could be waiting on us), is given STATFS_TIMEOUT before it does: no
notification is left waiting.  When this process exits, the kernel fails the trapped calls of
any process the command left behind with ENOSYS.

Not a security boundary.  The path is read from the caller's memory, which another of its
threads may change after we read it: the worst that does to an open we answer is that the
caller gets our text for a path it swapped in, and for CONTINUE the kernel reads the path
afresh and applies its own rules.  The boundary is the namespace and the missing
CAP_SYS_ADMIN; this is presentation.  After reading the caller's memory and before answering,
SECCOMP_IOCTL_NOTIF_ID_VALID confirms that the thread still waits (its id was not reused).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import logging
import os
import posixpath
import re
import select
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .. import linux
from . import procfiles
from .seccomp import Notification, answer, answer_with_fd, is_valid, receive

log = logging.getLogger("fakecgfs.run")

CGROUP_SUPER_MAGIC = 0x27E0EB
NAME_MAX = 255
ST_NOSUID, ST_NODEV, ST_NOEXEC, ST_VALID, ST_RELATIME = 0x2, 0x4, 0x8, 0x20, 0x1000
FAKE_STATFS_FLAGS = ST_VALID | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_RELATIME  # MOUNT_OPTIONS
PATH_MAX = 4096
AT_FDCWD = -100
STATFS_TIMEOUT = 5.0  # seconds a statfs resolution may take before the kernel does it alone

# The generic 64-bit struct statfs: f_type, f_bsize, f_blocks, f_bfree, f_bavail, f_files,
# f_ffree, f_fsid[2], f_namelen, f_frsize, f_flags, f_spare[4].
_STATFS_LP64 = struct.Struct("=qq5Q2iqqq4q")
_OPEN_HOW = struct.Struct("=QQQ")  # flags, mode, resolve

# Opens we answer must be plain reads: anything else gets the kernel's own answer.
_NOT_A_PLAIN_READ = (os.O_ACCMODE | os.O_CREAT | os.O_DIRECTORY | os.O_PATH | os.O_TRUNC
                     | getattr(os, "O_TMPFILE", 0))  # fmt: skip
_PRESENTED_NAMES = {b"mounts", b"mountinfo", b"cgroup", b"cgroups"}
_PRESENTED_PATH = re.compile(
    r"/proc/(?:(?P<global>mounts|cgroups)"
    r"|(?P<who>self|thread-self|\d+)(?:/task/(?P<task>\d+))?/(?P<file>mounts|mountinfo|cgroup))"
)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.process_vm_readv.restype = ctypes.c_ssize_t
_libc.process_vm_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong,
                                   ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]  # fmt: skip


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def read_memory(pid: int, address: int, size: int) -> bytes:
    """Up to ``size`` bytes of another process's memory (fewer where a mapping ends)."""
    buffer = ctypes.create_string_buffer(size)
    local = _Iovec(ctypes.cast(buffer, ctypes.c_void_p), size)
    remote = _Iovec(address, size)
    got = _libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if got < 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))
    return buffer.raw[:got]


def read_string(pid: int, address: int) -> bytes:
    """A NUL-terminated string of at most PATH_MAX bytes from another process, read a page at
    a time so that a string ending just before an unmapped page is still read."""
    if address == 0:
        raise OSError(errno.EFAULT, "NULL")
    result = b""
    while len(result) < PATH_MAX:
        chunk = read_memory(pid, address, 4096 - address % 4096)
        end = chunk.find(b"\0")
        if end >= 0:
            return result + chunk[:end]
        if not chunk:
            break
        result += chunk
        address += len(chunk)
    raise OSError(errno.ENAMETOOLONG, "no NUL")


def fs_identity(tid: int) -> tuple[int, int, list[int]]:
    """A thread's fsuid, fsgid and supplementary groups, from /proc/TID/status."""
    fields: dict[bytes, list[bytes]] = {}
    with open(f"/proc/{tid}/status", "rb") as f:
        for line in f:
            key, _, value = line.partition(b":")
            fields[key] = value.split()
    return int(fields[b"Uid"][3]), int(fields[b"Gid"][3]), [int(g) for g in fields[b"Groups"]]


def _int32(value: int) -> int:
    """A C int argument (a descriptor, AT_FDCWD) from its 64-bit register."""
    return ctypes.c_int32(value & 0xFFFFFFFF).value


def tgid_of(tid: int) -> int:
    with open(f"/proc/{tid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"Tgid:"):
                return int(line.split()[1])
    raise OSError(errno.ESRCH, f"no thread {tid}")


@dataclass(frozen=True)
class Fake:
    """The run's fake, as the namespace sees it."""

    mountpoint: str
    device: int  # st_dev of every file on it

    def statfs(self) -> bytes:
        """What statfs of a file on it returns (kernfs: simple_statfs() and an fsid)."""
        page = os.sysconf("SC_PAGE_SIZE")
        # kernfs gives each hierarchy an fsid of its own; the fake's is derived from its device.
        fsid = struct.unpack("=2i", hashlib.sha1(str(self.device).encode()).digest()[:8])
        return _STATFS_LP64.pack(CGROUP_SUPER_MAGIC, page, 0, 0, 0, 0, 0, *fsid, NAME_MAX,
                                 page, FAKE_STATFS_FLAGS, 0, 0, 0, 0)  # fmt: skip

    def group_of(self, tid: int) -> str:
        """The fake group whose ``tasks`` lists ``tid``: "/a/b", or "/" (the root lists every
        thread that is not elsewhere)."""
        for directory, subdirs, _files in os.walk(self.mountpoint):
            subdirs.sort()
            if directory == self.mountpoint:
                continue
            try:
                with open(os.path.join(directory, "tasks"), "rb") as f:
                    tasks = f.read().split()
            except OSError:
                continue  # removed meanwhile
            if str(tid).encode() in tasks:
                return "/" + os.path.relpath(directory, self.mountpoint)
        return "/"

    def group_count(self) -> int:
        return sum(1 for _ in os.walk(self.mountpoint))


# -- answers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proceed:
    """Let the kernel carry the call out."""


@dataclass(frozen=True)
class Fail:
    error: int


@dataclass(frozen=True)
class Return:
    value: int
    write: tuple[int, bytes] | None = None  # first copy these bytes to this caller address


@dataclass(frozen=True)
class ReturnFile:
    name: str
    content: bytes
    cloexec: bool


Answer = Proceed | Fail | Return | ReturnFile
PROCEED = Proceed()


class Supervisor:
    """The thread answering a listener's notifications until stop()."""

    def __init__(self, listener: int, fake: Fake, calls: linux.PathCalls) -> None:
        self.listener = listener
        self.fake = fake
        handlers: dict[int | None, Callable[[Notification], Answer]] = {
            calls.open: self._open,
            calls.openat: self._openat,
            calls.openat2: self._openat2,
            calls.mount: self._mount,
            calls.fsopen: self._fsopen,
        }
        if calls.statfs_lp64:
            handlers[calls.statfs] = self._statfs
            handlers[calls.fstatfs] = self._fstatfs
        handlers.pop(None, None)
        self._handlers = handlers
        self._slow = {calls.statfs, calls.fstatfs}
        self._stop_read, self._stop_write = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._serve, name="seccomp-supervisor",
                                        daemon=True)  # fmt: skip

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and close the listener: calls still trapped fail with ENOSYS."""
        os.write(self._stop_write, b"x")
        self._thread.join()
        self._close_listener()
        for fd in (self._stop_read, self._stop_write):
            os.close(fd)

    def _close_listener(self) -> None:
        if self.listener >= 0:
            os.close(self.listener)
            self.listener = -1

    # -- the loop ------------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            self._loop()
        except BaseException:
            # Never leave the command waiting on a supervisor that is gone: with the listener
            # closed, the kernel fails every trapped call with ENOSYS instead.
            log.exception("the seccomp supervisor failed; trapped system calls now fail")
            self._close_listener()

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        poller.register(self._stop_read, select.POLLIN)
        while True:
            ready = dict(poller.poll())
            if self._stop_read in ready:
                return
            events = ready.get(self.listener, 0)
            if events & (select.POLLHUP | select.POLLERR) and not events & select.POLLIN:
                return  # every process of the command has gone
            try:
                notification = receive(self.listener)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.EINTR):  # the caller went away meanwhile
                    continue
                raise
            self._reply(notification)

    def _reply(self, notification: Notification) -> None:
        handler = self._handlers.get(notification.nr)
        try:
            if handler is None:
                result: Answer = PROCEED
            elif notification.nr in self._slow:
                result = _bounded(handler, notification, STATFS_TIMEOUT)
            else:
                result = handler(notification)
        except Exception:
            log.debug("notification %s: answering CONTINUE", notification, exc_info=True)
            result = PROCEED
        try:
            self._send(notification, result)
        except OSError:
            log.debug("notification %s: the answer failed", notification, exc_info=True)
            if not isinstance(result, Proceed):
                answer(self.listener, notification, proceed=True)

    def _send(self, notification: Notification, result: Answer) -> None:
        if isinstance(result, Proceed):
            answer(self.listener, notification, proceed=True)
        elif isinstance(result, Fail):
            if is_valid(self.listener, notification):
                answer(self.listener, notification, error=result.error)
        elif isinstance(result, Return):
            if result.write is not None:
                address, data = result.write
                # Opened before the check: the descriptor holds this thread's memory even if
                # the thread dies and its id is reused after is_valid().
                mem = os.open(f"/proc/{notification.pid}/mem", os.O_RDWR | os.O_CLOEXEC)
                try:
                    if not is_valid(self.listener, notification):
                        return
                    os.pwrite(mem, data, address)
                finally:
                    os.close(mem)
            answer(self.listener, notification, value=result.value)
        else:
            self._send_file(notification, result)

    def _send_file(self, notification: Notification, result: ReturnFile) -> None:
        memfd = os.memfd_create(result.name, os.MFD_CLOEXEC)
        try:
            os.write(memfd, result.content)
            # The caller gets a read-only descriptor, as the /proc file would be.
            reader = os.open(f"/proc/self/fd/{memfd}", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            os.close(memfd)
        try:
            if is_valid(self.listener, notification):
                answer_with_fd(self.listener, notification, reader, result.cloexec)
        finally:
            os.close(reader)

    # -- opens ---------------------------------------------------------------------------------

    def _open(self, n: Notification) -> Answer:
        return self._opened(n, AT_FDCWD, n.args[0], n.args[1])

    def _openat(self, n: Notification) -> Answer:
        return self._opened(n, _int32(n.args[0]), n.args[1], n.args[2])

    def _openat2(self, n: Notification) -> Answer:
        if n.args[3] < _OPEN_HOW.size:
            return PROCEED
        flags, _mode, resolve = _OPEN_HOW.unpack(read_memory(n.pid, n.args[2], _OPEN_HOW.size))
        if resolve:  # RESOLVE_* rules (no symlinks, beneath): the kernel's to apply
            return PROCEED
        return self._opened(n, _int32(n.args[0]), n.args[1], flags)

    def _opened(self, n: Notification, dirfd: int, address: int, flags: int) -> Answer:
        if flags & _NOT_A_PLAIN_READ:
            return PROCEED
        raw = read_string(n.pid, address)
        if raw.rpartition(b"/")[2] not in _PRESENTED_NAMES:  # most opens stop here
            return PROCEED
        path = self._lexical_path(n.pid, dirfd, raw)
        if path is None:
            return PROCEED
        if flags & os.O_NOFOLLOW and path == "/proc/mounts":  # a symlink: ELOOP
            return PROCEED
        match = _PRESENTED_PATH.fullmatch(path)
        if match is None:
            return PROCEED
        content = self._present(n.pid, match)
        if content is None or not is_valid(self.listener, n):
            return PROCEED
        return ReturnFile(path.rpartition("/")[2], content, bool(flags & os.O_CLOEXEC))

    @staticmethod
    def _lexical_path(tid: int, dirfd: int, raw: bytes) -> str | None:
        """The absolute, normalised path the caller names, or None where its root is not ours
        (a chroot: not presented)."""
        if os.readlink(f"/proc/{tid}/root") != "/":
            return None
        path = raw.decode("utf-8", "surrogateescape")
        if not path.startswith("/"):
            base = f"/proc/{tid}/cwd" if dirfd == AT_FDCWD else f"/proc/{tid}/fd/{dirfd}"
            directory = os.readlink(base)
            if not directory.startswith("/"):
                return None
            path = f"{directory}/{path}"
        path = posixpath.normpath(path)
        return "/" + path.lstrip("/")  # normpath keeps a leading "//"

    def _present(self, tid: int, match: re.Match[str]) -> bytes | None:
        """The content of a presented /proc file for thread ``tid``, or None to let the kernel
        answer (a process that does not exist: ENOENT)."""
        if match["global"] == "cgroups":
            with open("/proc/cgroups", encoding="utf-8") as f:
                real = f.read()
            return procfiles.present_cgroups(real, self.fake.group_count()).encode()
        name = match["global"] or match["file"]
        who = match["who"] or "self"
        if who == "thread-self":
            if match["task"]:
                return None
            subject = tid
        else:
            subject = tgid_of(tid) if who == "self" else int(who)
            if match["task"]:
                if not os.path.isdir(f"/proc/{subject}/task/{match['task']}"):
                    return None
                subject = int(match["task"])
        if name == "cgroup":
            if not os.path.isdir(f"/proc/{subject}"):
                return None
            return procfiles.present_cgroup(self.fake.group_of(subject)).encode()
        try:
            with open(f"/proc/{subject}/{name}", encoding="utf-8", errors="surrogateescape") as f:
                real = f.read()
        except OSError:
            return None
        if name == "mounts":
            text = procfiles.present_mounts(real, self.fake.mountpoint)
        else:
            device = (os.major(self.fake.device), os.minor(self.fake.device))
            text = procfiles.present_mountinfo(real, device)
        return text.encode("utf-8", "surrogateescape")

    # -- statfs --------------------------------------------------------------------------------

    def _statfs(self, n: Notification) -> Answer:
        raw = read_string(n.pid, n.args[0])
        if not raw:
            return PROCEED  # ENOENT from the kernel
        path = raw.decode("utf-8", "surrogateescape")
        if path.startswith("/"):
            path = self._own_proc(n.pid, path)
            where = f"/proc/{n.pid}/root{path}"
        else:
            where = f"/proc/{n.pid}/cwd/{path}"
        return self._statfs_of(n, where)

    def _fstatfs(self, n: Notification) -> Answer:
        return self._statfs_of(n, f"/proc/{n.pid}/fd/{_int32(n.args[0])}")

    def _statfs_of(self, n: Notification, where: str) -> Answer:
        # The kernel resolves the path as the caller: so does this thread (_bounded's own, which
        # ends after), lest a path the caller may not search be answered (EACCES there).
        linux.take_fs_identity(*fs_identity(n.pid))
        if os.stat(where).st_dev != self.fake.device:
            return PROCEED
        if not is_valid(self.listener, n):
            return PROCEED
        return Return(0, write=(n.args[1], self.fake.statfs()))

    @staticmethod
    def _own_proc(tid: int, path: str) -> str:
        """/proc/self and /proc/thread-self name the caller, not us."""
        parts = path.split("/")
        if len(parts) > 2 and parts[1] == "proc" and parts[2] in ("self", "thread-self"):
            tgid = tgid_of(tid)
            parts[2] = str(tgid) if parts[2] == "self" else f"{tgid}/task/{tid}"
        return "/".join(parts)

    # -- mounts --------------------------------------------------------------------------------

    def _mount(self, n: Notification) -> Answer:
        return self._refuse_cgroup(n, n.args[2])

    def _fsopen(self, n: Notification) -> Answer:
        return self._refuse_cgroup(n, n.args[0])

    def _refuse_cgroup(self, n: Notification, address: int) -> Answer:
        if address == 0:
            return PROCEED
        if read_string(n.pid, address) in (b"cgroup", b"cgroup2"):
            return Fail(errno.EPERM)
        return PROCEED


def _bounded(handler: Callable[[Notification], Answer], notification: Notification,
             timeout: float) -> Answer:  # fmt: skip
    """handler(notification) in a thread of its own, or PROCEED if it takes over ``timeout``
    seconds (the thread finishes on its own later; its answer is dropped)."""
    box: list[Answer] = []

    def work() -> None:
        try:
            box.append(handler(notification))
        except Exception:
            log.debug("notification %s: answering CONTINUE", notification, exc_info=True)
            box.append(PROCEED)

    thread = threading.Thread(target=work, name="seccomp-statfs", daemon=True)
    thread.start()
    thread.join(timeout)
    return box[0] if box else PROCEED
