"""Helpers for the end-to-end tests: one-syscall reads and writes, errno capture, shell runs."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

UNLIMITED = 9223372036854771712  # what an unlimited byte value reads back as
KiB = 1024
MiB = 1024 * KiB

# Run a command as nobody (the tests themselves run as root).
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
NOBODY_UID = 65534


def read(path: Path | str) -> str:
    """The whole content, read with one open() and read() calls until EOF."""
    return read_bytes(path).decode()


def read_bytes(path: Path | str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write(path: Path | str, value: str | bytes) -> int:
    """One open(O_WRONLY) and one write() of ``value``; raises OSError with the errno."""
    data = value.encode() if isinstance(value, str) else value
    fd = os.open(path, os.O_WRONLY)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def errno_of(fn: Callable[[], object]) -> int | None:
    """The errno ``fn`` fails with, or None if it succeeds."""
    try:
        fn()
    except OSError as e:
        return e.errno
    return None


def errname(err: int | None) -> str:
    return "ok" if err is None else errno.errorcode.get(err, str(err))


def sh(script: str, cwd: Path | str, *, user: list[str] | None = None,
       timeout: float = 30) -> subprocess.CompletedProcess:  # fmt: skip
    """``sh -c script`` in ``cwd`` (optionally under ``user``, e.g. NOBODY), text output."""
    return subprocess.run([*(user or []), "sh", "-c", script], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01,
               what: str = "condition") -> None:  # fmt: skip
    """Poll until ``predicate()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def stat_lines(group: Path) -> dict[str, int]:
    """memory.stat as a dict."""
    return {name: int(value) for name, value in
            (line.split(" ") for line in read(group / "memory.stat").splitlines())}  # fmt: skip


def kv_lines(path: Path) -> dict[str, str]:
    """A file of 'name value' lines (oom_control, fake.reclaim_daemon) as a dict."""
    return dict(line.partition(" ")[::2] for line in read(path).splitlines())


def usage(group: Path) -> int:
    return int(read(group / "memory.usage_in_bytes"))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_for_state(group: Path, *states: str, timeout: float = 5.0) -> None:
    """Poll until the group's reclaim task is in one of ``states``.  A task armed by a write is
    started asynchronously: right after the write it may still read ``stopped``."""
    wait_until(lambda: kv_lines(group / "fake.reclaim_daemon")["state"] in states, timeout,
               what=f"the reclaim task of {group.name} to be {'/'.join(states)}")  # fmt: skip
