"""Mount points from the outside: is it mounted, is it stale, unmount it, wait for it."""

from __future__ import annotations

import enum
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

SERVER_ALLOCATOR = "malloc"
"""The server runs on glibc's malloc, not Python's pymalloc.  After a burst of rmdirs the
controller hands free memory back (compact(): malloc_trim), which pymalloc defeats: any object
that outlived the burst pins its whole arena.  RSS after removing many armed groups stays close
to where it started with malloc, far above with pymalloc, and request latency does not change
measurably (figures: docs/performance.md)."""


def server_environment() -> dict[str, str]:
    """The environment to start a server in: this one, with SERVER_ALLOCATOR unless the user
    chose an allocator (PYTHONMALLOC)."""
    return {"PYTHONMALLOC": SERVER_ALLOCATOR, **os.environ}


SERVER_EXIT_TIMEOUT = 10.0  # seconds a server asked to end has to unmount and exit
SERVER_READY_TIMEOUT = 15.0  # seconds a server just started has to mount


def start_server(mountpoint: str, options: Sequence[str], log: IO[bytes] | int, *,
                 env: Mapping[str, str] | None = None,
                 start_new_session: bool = False) -> subprocess.Popen:  # fmt: skip
    """``fakecgfs mount --foreground MOUNTPOINT OPTIONS`` in a child on the server's
    environment (``env`` if given), its output to ``log``; it may not have mounted yet
    (wait_mounted)."""
    return subprocess.Popen(
        [sys.executable, "-m", "fakecgfs", "mount", "--foreground", mountpoint, *options],
        env=server_environment() if env is None else env, stdin=subprocess.DEVNULL,
        stdout=log, stderr=log, start_new_session=start_new_session,
    )  # fmt: skip


def wait_mounted(server: subprocess.Popen, mountpoint: str,
                 timeout: float = SERVER_READY_TIMEOUT) -> bool:  # fmt: skip
    """Whether ``server`` has mounted at ``mountpoint`` within ``timeout`` s and still runs
    (False as soon as it exits)."""
    ready = wait_until(lambda: server.poll() is not None or is_fakecgfs_mount(mountpoint), timeout)
    return ready and server.poll() is None


def stop_server(server: subprocess.Popen, timeout: float = SERVER_EXIT_TIMEOUT) -> None:
    """End a server we started: SIGTERM (libfuse's handler unmounts and returns), SIGKILL if it
    has not exited after ``timeout`` s; reaped either way."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def detach_leftover(path: str) -> None:
    """Lazily detach a fakecgfs mount, live or dead, that a stopped server left at ``path``."""
    if is_fakecgfs_mount(path) or is_stale(path):
        unmount(path, lazy=True)


def is_stale(path: str) -> bool:
    """A FUSE mount whose server died answers ENOTCONN to every request (the first one after
    the death, aborted with the connection, gets ECONNABORTED).  statfs always makes a request;
    stat may be answered from the kernel's attribute cache."""
    try:
        os.statvfs(path)
    except OSError as e:
        return e.errno in (errno.ENOTCONN, errno.ECONNABORTED)
    return False


def mount_path(path: str) -> str:
    """The absolute path of a mount point, resolving symlinks above it but never looking at the
    mount point itself (a stat of it would wait for its server, which may be stopped)."""
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


@dataclass(frozen=True)
class MountEntry:
    point: str
    fstype: str
    dev_minor: int  # a FUSE mount's st_dev minor: its connection in /sys/fs/fuse/connections


def find_mount(path: str) -> MountEntry | None:
    """The topmost mount at ``path``, from /proc/self/mountinfo: never looks at the mount itself
    (which would wait for its server)."""
    path = mount_path(path)
    found = None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                fields = line.split()
                sep = fields.index("-")
                mount_point = fields[4].replace("\\040", " ")
                if mount_point == path:
                    minor = int(fields[2].split(":")[1])
                    found = MountEntry(mount_point, fields[sep + 1], minor)
    except (OSError, ValueError):
        return None
    return found


def is_fakecgfs_mount(path: str) -> bool:
    entry = find_mount(path)
    return entry is not None and entry.fstype == "fuse.fakecgfs"


PROBE_TIMEOUT = 2.0  # seconds a mount's server has to answer a statfs before it counts as stuck


class Health(enum.Enum):
    ANSWERS = "answers"
    DEAD = "dead"  # its server is gone: ENOTCONN
    STUCK = "stuck"  # its server does not answer (stopped, or blocked)


_PROBE = """
import errno, os, sys
try:
    os.statvfs(sys.argv[1])
except OSError as e:
    sys.exit(3 if e.errno in (errno.ENOTCONN, errno.ECONNABORTED) else 4)
"""


def probe(path: str, timeout: float = PROBE_TIMEOUT) -> Health:
    """Ask the file system at ``path`` one statfs, from a child process that is killed if it
    gets no answer in ``timeout`` s: a stopped server must not hang the caller, and a request
    left waiting would keep the mount busy (a killed process's request does not)."""
    try:
        result = subprocess.run([sys.executable, "-c", _PROBE, path], timeout=timeout,
                                stdin=subprocess.DEVNULL, capture_output=True)  # fmt: skip
    except subprocess.TimeoutExpired:
        return Health.STUCK
    return Health.DEAD if result.returncode == 3 else Health.ANSWERS


def _fusermount() -> str:
    return shutil.which("fusermount") or shutil.which("fusermount3") or "fusermount"


UNMOUNT_TIMEOUT = 10.0  # seconds fusermount may take


def unmount(path: str, *, lazy: bool = False, timeout: float = UNMOUNT_TIMEOUT) -> None:
    """fusermount -u (root or the mounting user); -z detaches even a busy or dead mount.
    ETIMEDOUT if fusermount has not finished in ``timeout`` s (it is killed)."""
    args = [_fusermount(), "-u"] + (["-z"] if lazy else []) + [path]
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise OSError(
            errno.ETIMEDOUT, f"fusermount -u {path} did not finish in {timeout:g}s"
        ) from None
    if result.returncode != 0:
        raise OSError(errno.EBUSY, result.stderr.strip() or f"cannot unmount {path}")


FUSE_CONNECTIONS = "/sys/fs/fuse/connections"


def abort_connection(entry: MountEntry) -> bool:
    """End a FUSE mount's connection through fusectl (root, fusectl mounted): every request
    waiting on it fails with ECONNABORTED at once.  True if it was done."""
    try:
        with open(os.path.join(FUSE_CONNECTIONS, str(entry.dev_minor), "abort"), "w") as f:
            f.write("1")
    except OSError:
        return False
    return True


def clear_stale(path: str) -> bool:
    """Detach a dead mount at ``path``; True if there was one."""
    if find_mount(path) is None or probe(path) is not Health.DEAD:
        return False
    unmount(path, lazy=True)
    return True


def wait_until(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def fuse_unavailable_reason() -> str | None:
    """Why a FUSE mount cannot be made here, or None if it can.  libfuse opens /dev/fuse itself
    before it would fall back to fusermount, so a /dev/fuse this process cannot open fails every
    mount, fusermount's set-user-ID root notwithstanding."""
    from .fuselib import missing_libfuse2

    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse (load the fuse module or pass --device /dev/fuse)"
    missing = missing_libfuse2()
    if missing:
        return missing
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC))
    except OSError as e:
        return f"cannot open /dev/fuse: {e.strerror}"
    if os.geteuid() != 0 and not shutil.which("fusermount") and not shutil.which("fusermount3"):
        return "no fusermount, which mounts for users who are not root (apt-get install fuse)"
    return None


def mount_failure(log: str) -> str:
    """The one line that says why a server did not mount, from its log: its own message, else
    libfuse's or fusermount's, else any refusal of its own (a line "fakecgfs: ...", as log
    records start with their time), else the log's last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for prefix in ("fakecgfs: cannot mount", "fakecgfs: FUSE is unavailable", "fuse:",
                   "fusermount:", "fakecgfs: "):  # fmt: skip
        found = [line for line in lines if line.startswith(prefix)]
        if found:
            return found[-1].removeprefix("fakecgfs: ")
    return lines[-1] if lines else "the server exited without a word"
