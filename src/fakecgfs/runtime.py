"""The server's runtime files, in a directory only its user can write, and proof of who serves.

A root server is shared with every user, so nothing it or the CLI writes may lie in a
world-writable directory under a name a user can guess (a planted symlink would make root
overwrite any file).  The runtime directory is ``/run/fakecgfs`` for root,
``$XDG_RUNTIME_DIR/fakecgfs`` for a user who has one, else ``$TMPDIR/fakecgfs-UID`` (the tmux
scheme): created 0700, and in every case opened with O_NOFOLLOW|O_DIRECTORY and checked on the
open descriptor (a directory, owned by us, no group or other bits) before anything in it is
used; an existing one that fails is refused, never repaired.  Files in it are opened relative to
that descriptor with O_NOFOLLOW.

Per mount point (keyed by the mount namespace and the path) it holds:

* ``KEY.lock``, flock()ed by the server from before it mounts until it has unmounted: a second
  server for the same mount point fails at once, and a pid file found by a lock holder is
  proven stale (its writer is dead), so it may be removed.
* ``KEY.pid``, created exclusively once mounted: ``PID STARTTIME`` then the mount point.
* ``KEY.log``, the background server's output.

``find_server()`` proves that a process is the server of a mount point before anyone signals
it: it opens a pidfd for the pid file's PID first, then checks through /proc that the process
runs as us, started at the recorded time, and runs ``fakecgfs mount`` for that exact mount
point, then that the pidfd's process is still alive (so /proc named the same process all
along).  From then on the pidfd pins it: a recycled PID cannot be hit.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import select
import stat
import tempfile
import time
from dataclasses import dataclass

from . import linux
from .mounting import mount_path

ROOT_RUNTIME_DIR = "/run/fakecgfs"
OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | OPEN_FLAGS


class RuntimeFileError(OSError):
    """A runtime directory or file that fails its checks; str() is a one-line explanation."""


class MountPointBusy(RuntimeFileError):
    """Another server holds the mount point's lock."""


def _private_dir(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def runtime_dir_path() -> str:
    """Where this user's runtime directory is (it may not exist yet)."""
    uid = os.getuid()
    if uid == 0:
        try:
            st = os.lstat(os.path.dirname(ROOT_RUNTIME_DIR))
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode) and st.st_uid == 0 \
                and not st.st_mode & 0o022:  # fmt: skip
            return ROOT_RUNTIME_DIR
    else:
        xdg = os.environ.get("XDG_RUNTIME_DIR", "")
        try:
            if os.path.isabs(xdg) and _private_dir(os.lstat(xdg)):
                return os.path.join(xdg, "fakecgfs")
        except OSError:
            pass
    return os.path.join(tempfile.gettempdir(), f"fakecgfs-{uid}")


class RuntimeDir:
    """The open runtime directory (a descriptor; files are opened relative to it)."""

    def __init__(self, path: str | None = None, *, create: bool = True) -> None:
        self.path = path or runtime_dir_path()
        if create:
            try:
                os.mkdir(self.path, 0o700)
            except FileExistsError:
                pass
            except OSError as e:
                raise RuntimeFileError(
                    e.errno, f"cannot create {self.path}: {e.strerror}"
                ) from None
        try:
            self.fd = os.open(self.path, DIR_FLAGS)
        except OSError as e:
            why = "a symlink" if e.errno in (errno.ELOOP, errno.ENOTDIR) else e.strerror
            raise RuntimeFileError(
                e.errno, f"runtime directory {self.path}: {why}; refusing it"
            ) from None
        st = os.fstat(self.fd)
        if not _private_dir(st):
            os.close(self.fd)
            raise RuntimeFileError(
                errno.EPERM,
                f"runtime directory {self.path}: owned by uid {st.st_uid} with "
                f"mode {stat.S_IMODE(st.st_mode):04o}, not by uid {os.getuid()} with 0700; "
                "refusing it (remove it)",
            )

    def open(self, name: str, flags: int, mode: int = 0o600) -> int:
        """Open a file of the directory, never through a symlink; it must be ours, and regular."""
        fd = os.open(name, flags | OPEN_FLAGS, mode, dir_fd=self.fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
            os.close(fd)
            raise RuntimeFileError(errno.EPERM, f"{self.path}/{name}: not a regular file of ours")
        return fd

    def unlink(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> RuntimeDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def mount_key(mountpoint: str) -> str:
    """The runtime files' name for a mount point: its mount namespace and path, hashed."""
    try:
        namespace = os.readlink("/proc/self/ns/mnt")
    except OSError:
        namespace = ""
    text = f"{namespace}\0{mount_path(mountpoint)}"
    return hashlib.sha256(text.encode(errors="surrogateescape")).hexdigest()[:24]


def default_log(mountpoint: str) -> tuple[int, str]:
    """The background server's log, opened for appending: (fd, path for messages)."""
    with RuntimeDir() as rundir:
        name = f"{mount_key(mountpoint)}.log"
        fd = rundir.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        return fd, os.path.join(rundir.path, name)


def open_output(path: str, mode: int = 0o644) -> int:
    """A file the user named (--log, --trace), for appending: never through a symlink."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | OPEN_FLAGS, mode)


def _start_time(pid: int | str) -> int:
    """Field 22 of /proc/PID/stat: clock ticks after boot; with the PID, a process's identity."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[19])


# -- the server's side ----------------------------------------------------------------------------


class ServerClaim:
    """Held by a server from before it mounts until after it unmounts (see the module doc)."""

    def __init__(self, mountpoint: str) -> None:
        self.mountpoint = mount_path(mountpoint)
        key = mount_key(mountpoint)
        self._lock_name, self._pid_name = f"{key}.lock", f"{key}.pid"
        self._dir = RuntimeDir()
        try:
            self._lock = self._take_lock()
        except BaseException:
            self._dir.close()
            raise
        self._published = False

    def _take_lock(self) -> int:
        while True:
            fd = self._dir.open(self._lock_name, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise MountPointBusy(errno.EBUSY, f"{self.mountpoint}: another fakecgfs server "
                                     "is mounting or serving it") from None  # fmt: skip
            # The holder before us unlinks the file as it leaves: locked the unlinked one?
            try:
                linked = os.stat(self._lock_name, dir_fd=self._dir.fd, follow_symlinks=False)
            except FileNotFoundError:
                linked = None
            here = os.fstat(fd)
            if linked is not None and (linked.st_dev, linked.st_ino) == (here.st_dev, here.st_ino):
                # A pid file now can only be a dead server's (it never got to remove it).
                self._dir.unlink(self._pid_name)
                return fd
            os.close(fd)

    def publish(self) -> None:
        """Write the pid file, exclusively (the mount is up)."""
        fd = self._dir.open(self._pid_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            os.write(
                fd,
                f"{os.getpid()} {_start_time('self')}\n{self.mountpoint}\n".encode(
                    errors="surrogateescape"
                ),
            )
        finally:
            os.close(fd)
        self._published = True

    def withdraw(self) -> None:
        """Remove the pid file (the mount is gone).  Idempotent."""
        if self._published:
            self._dir.unlink(self._pid_name)
            self._published = False

    def release(self) -> None:
        """Remove the pid file and the lock.  Idempotent."""
        if self._lock < 0:
            return
        self.withdraw()
        self._dir.unlink(self._lock_name)  # under the lock: see _take_lock
        os.close(self._lock)
        self._lock = -1
        self._dir.close()


# -- the CLI's side ---------------------------------------------------------------------------


@dataclass
class ServerProcess:
    """A process proven to be the server of a mount point, pinned by a pidfd."""

    pid: int
    pidfd: int

    def send_signal(self, signum: int) -> None:
        linux.pidfd_send_signal(self.pidfd, signum)

    def stopped(self) -> bool:
        """Stopped (SIGSTOP, a debugger): it answers nothing until continued."""
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                return f.read().rsplit(b")", 1)[1].split()[0] in (b"T", b"t")
        except OSError:
            return False

    def wait(self, timeout: float) -> bool:
        """Wait for it to exit (the pidfd turns readable); False if it has not in ``timeout`` s
        or is stopped (then it will not, until continued)."""
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while True:
            if poller.poll(50):
                return True
            if self.stopped() or time.monotonic() >= deadline:
                return False

    def close(self) -> None:
        os.close(self.pidfd)


def _argv_names(pid: int, mountpoint: str) -> bool:
    """/proc/PID/cmdline is ``... fakecgfs mount ... MOUNTPOINT`` (a relative mount point is
    read from the process's own working directory)."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = [os.fsdecode(a) for a in f.read().split(b"\0")[:-1]]
    if len(argv) < 4:
        return False
    runs_fakecgfs = argv[1:3] == ["-m", "fakecgfs"] or os.path.basename(argv[1]) == "fakecgfs"
    if not runs_fakecgfs or "mount" not in argv:
        return False
    cwd = os.readlink(f"/proc/{pid}/cwd")
    rest = argv[argv.index("mount") + 1 :]
    return any(mount_path(os.path.join(cwd, arg)) == mountpoint for arg in rest)


def read_pid_file(mountpoint: str) -> tuple[int, int] | str:
    """(pid, start time) from the mount point's pid file, or why there is none to trust."""
    mountpoint = mount_path(mountpoint)
    try:
        with RuntimeDir(create=False) as rundir:
            fd = rundir.open(f"{mount_key(mountpoint)}.pid", os.O_RDONLY)
            with os.fdopen(fd, "rb") as f:
                text = f.read(8192).decode(errors="surrogateescape")
    except FileNotFoundError:
        return "no pid file for it (its server is not ours, or is gone)"
    except OSError as e:
        return str(e)
    try:
        first, recorded_mountpoint = text.split("\n")[:2]
        pid_text, start_text = first.split()
        pid, start = int(pid_text), int(start_text)
    except ValueError:
        return "its pid file is malformed"
    if recorded_mountpoint != mountpoint or pid <= 1:
        return "its pid file names another mount point"
    return pid, start


def find_server(mountpoint: str) -> tuple[ServerProcess | None, str]:
    """The proven server of ``mountpoint`` and "", or None and why it could not be proven."""
    mountpoint = mount_path(mountpoint)
    recorded = read_pid_file(mountpoint)
    if isinstance(recorded, str):
        return None, recorded
    pid, start = recorded
    try:
        pidfd = linux.pidfd_open(pid)
    except OSError:
        return None, f"process {pid} of its pid file is gone"
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        if any(int(uid) != os.getuid() for uid in uids):
            why = f"process {pid} does not run as uid {os.getuid()}"
        elif _start_time(pid) != start:
            why = f"process {pid} is not the one that wrote the pid file (PID reused)"
        elif not _argv_names(pid, mountpoint):
            why = f"process {pid} is not a fakecgfs server of {mountpoint}"
        else:
            linux.pidfd_send_signal(pidfd, 0)  # alive: what /proc showed was this process
            return ServerProcess(pid, pidfd), ""
    except (OSError, StopIteration, ValueError) as e:
        why = f"process {pid} could not be checked ({e})"
    os.close(pidfd)
    return None, why
