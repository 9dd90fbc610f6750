"""Mount points from the outside: is it mounted, is it stale, unmount it, wait for it."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time


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


SERVER_EXIT_TIMEOUT = 10.0  # seconds a stopped server has to unmount and exit


def is_stale(path: str) -> bool:
    """A FUSE mount whose server died answers ENOTCONN to every request (the first one after
    the death, aborted with the connection, gets ECONNABORTED).  statfs always makes a request;
    stat may be answered from the kernel's attribute cache."""
    try:
        os.statvfs(path)
    except OSError as e:
        return e.errno in (errno.ENOTCONN, errno.ECONNABORTED)
    return False


def is_fakecgfs_mount(path: str) -> bool:
    path = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                sep = fields.index("-")
                mount_point = fields[4].replace("\\040", " ")
                if mount_point == path and fields[sep + 1] == "fuse.fakecgfs":
                    return True
    except (OSError, ValueError):
        return False
    return False


def _fusermount() -> str:
    return shutil.which("fusermount") or shutil.which("fusermount3") or "fusermount"


def unmount(path: str, *, lazy: bool = False) -> None:
    """fusermount -u (root or the mounting user); -z detaches even a busy or dead mount."""
    args = [_fusermount(), "-u"] + (["-z"] if lazy else []) + [path]
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(errno.EBUSY, result.stderr.strip() or f"cannot unmount {path}")


def clear_stale(path: str) -> bool:
    """Detach a dead mount at ``path``; True if there was one."""
    if not is_stale(path):
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


def runtime_path(mountpoint: str, suffix: str) -> str:
    """A per-user, per-mount point file in the temp dir (the server's log and pid file)."""
    digest = hashlib.sha1(os.path.realpath(mountpoint).encode()).hexdigest()[:10]
    return os.path.join(tempfile.gettempdir(), f"fakecgfs-{os.getuid()}-{digest}{suffix}")


def server_pid(mountpoint: str) -> int | None:
    """The pid of the server of ``mountpoint``, from the file it writes while it serves."""
    try:
        with open(runtime_path(mountpoint, ".pid"), encoding="ascii") as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def stop_server(mountpoint: str) -> bool:
    """Ask the server to stop (SIGTERM: libfuse detaches the mount, the controller signals every
    registered eventfd) and wait for it to exit; False if no server is known."""
    pid = server_pid(mountpoint)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie child of ours (the test kit's) has exited too.
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
        except OSError:
            return True

    return wait_until(gone, SERVER_EXIT_TIMEOUT)


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
    libfuse's or fusermount's, else the log's last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for prefix in ("fakecgfs: cannot mount", "fakecgfs: FUSE is unavailable", "fuse:",
                   "fusermount:"):  # fmt: skip
        found = [line for line in lines if line.startswith(prefix)]
        if found:
            return found[-1].removeprefix("fakecgfs: ")
    return lines[-1] if lines else "the server exited without a word"
