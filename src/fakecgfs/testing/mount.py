"""A real FUSE mount in a directory, served by a child process, always unmounted afterwards."""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .. import mounting

READY_TIMEOUT = 15.0
EXIT_TIMEOUT = 10.0


def fuse_unavailable_reason() -> str | None:
    """Why a FUSE mount cannot be made here, or None if it can."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse (load the fuse module or pass --device /dev/fuse)"
    if ctypes.util.find_library("fuse") is None:
        return "libfuse2 is not installed (apt-get install libfuse2 fuse)"
    return None


@dataclass
class FakecgfsMount:
    path: Path  # the mount point
    process: subprocess.Popen  # the server, `fakecgfs mount --foreground`
    log: Path  # the server's stdout and stderr

    def group(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    def read(self, *parts: str) -> str:
        return self.path.joinpath(*parts).read_text()

    def write(self, relpath: str, value: str | bytes) -> int:
        """One write() of ``value``, as the kernel wants it; raises OSError with the errno."""
        data = value.encode() if isinstance(value, str) else value
        fd = os.open(self.path / relpath, os.O_WRONLY)
        try:
            return os.write(fd, data)
        finally:
            os.close(fd)


@contextlib.contextmanager
def mounted(directory: Path, *options: str) -> Iterator[FakecgfsMount]:
    """Mount fakecgfs at ``directory``/mnt with extra ``options``; unmount and reap the server
    on the way out, whatever happened."""
    mountpoint = directory / "mnt"
    mountpoint.mkdir()
    log = directory / "server.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "fakecgfs", "mount", "--foreground", str(mountpoint), *options],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
        )  # fmt: skip
    try:
        ready = mounting.wait_until(
            lambda: process.poll() is not None or mounting.is_fakecgfs_mount(str(mountpoint)),
            READY_TIMEOUT,
        )
        if process.poll() is not None or not ready:
            raise RuntimeError(f"fakecgfs did not mount; server log:\n{log.read_text()}")
        yield FakecgfsMount(mountpoint, process, log)
    finally:
        _teardown(mountpoint, process)


def _teardown(mountpoint: Path, process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # libfuse's handler unmounts and returns
        try:
            process.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if mounting.is_fakecgfs_mount(str(mountpoint)) or mounting.is_stale(str(mountpoint)):
        mounting.unmount(str(mountpoint), lazy=True)
