"""Mount points from the outside: is it mounted, is it stale, unmount it, wait for it."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time


def is_stale(path: str) -> bool:
    """A FUSE mount whose server died answers ENOTCONN to everything."""
    try:
        os.stat(path)
    except OSError as e:
        return e.errno == errno.ENOTCONN
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
