"""Helpers of the real-process tests: the memhog program (tests/helpers/memhog.c), compiled
once per session, driven line by line through pipes, and always ended through a pidfd."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parent.parent / "helpers"
PAGE = os.sysconf("SC_PAGE_SIZE")
REPLY_TIMEOUT = 20.0


def build_memhog(directory: Path) -> Path:
    """Compile memhog with the system's C compiler; skip the test if there is none."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build tests/helpers/memhog.c")
    binary = directory / "memhog"
    subprocess.run([cc, "-O1", "-Wall", "-o", str(binary), str(HELPERS / "memhog.c")],
                   check=True, timeout=120)  # fmt: skip
    os.chmod(directory, 0o755)
    return binary


class Memhog:
    """A running memhog.  ``warm()`` runs each code path once so that what the process touches
    afterwards is exactly what the commands allocate."""

    def __init__(self, binary: Path) -> None:
        self.process = subprocess.Popen([str(binary)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)  # fmt: skip
        self.binary = binary
        self.pid = self.process.pid
        self.pidfd = os.pidfd_open(self.pid)
        ready = self._reply(REPLY_TIMEOUT)
        assert ready == f"ready {self.pid}", ready

    def _reply(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return None
        return self.process.stdout.readline().decode().strip() or None

    def send(self, line: str) -> None:
        self.process.stdin.write(f"{line}\n".encode())
        self.process.stdin.flush()

    def cmd(self, line: str, timeout: float = REPLY_TIMEOUT) -> str:
        """Send a command; return its reply (which must start with "ok" or "child")."""
        self.send(line)
        reply = self._reply(timeout)
        assert reply is not None and reply.split()[0] in ("ok", "child"), (line, reply)
        return reply

    def warm(self) -> Memhog:
        """Run every allocating command once, so that the code and data pages of those paths
        (and the 16 pages the kernel maps around each file fault) are resident before the
        process joins a group."""
        for line in ("anon 1", "shared 1", "memfd 1", f"file {self.binary} 1", "mlock 1",
                     "locked 1", "grow 1"):  # fmt: skip
            self.cmd(line)
        shmid = self.cmd("sysv 1").split()[1]
        self.cmd(f"shmrm {shmid}")
        self.cmd("free")
        return self

    def join(self, group: Path, file: str = "cgroup.procs") -> Memhog:
        fd = os.open(group / file, os.O_WRONLY)
        try:
            os.write(fd, f"{self.pid}\n".encode())
        finally:
            os.close(fd)
        return self

    def state(self) -> str:
        """The process's state letter (R, S, T, Z...), from /proc."""
        return self.state_of(self.pid)

    @staticmethod
    def state_of(pid: int) -> str:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rfind(b")") + 2 :].split()[0].decode()

    def status_kib(self, field: str) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def wait(self, timeout: float = REPLY_TIMEOUT) -> int:
        return self.process.wait(timeout)

    def end(self) -> None:
        """SIGKILL through the pidfd (never by bare PID), reap, close."""
        if self.pidfd < 0:
            return
        if self.process.poll() is None:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            self.process.wait(REPLY_TIMEOUT)
        os.close(self.pidfd)
        self.pidfd = -1
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


def wait_until(predicate: Callable[[], bool], timeout: float = REPLY_TIMEOUT,
               what: str = "condition") -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def _flat_keyed(path: Path) -> dict[str, int]:
    """A file of "name value" lines, as a dict."""
    return {name: int(value) for name, value in
            (line.split() for line in path.read_text().splitlines())}  # fmt: skip


def stat(group: Path) -> dict[str, int]:
    return _flat_keyed(group / "memory.stat")


def oom_control(group: Path) -> dict[str, int]:
    return _flat_keyed(group / "memory.oom_control")


def pages_of(before: dict[str, int], after: dict[str, int], *names: str) -> dict[str, int]:
    """How many pages each memory.stat line moved."""
    return {name: (after[name] - before[name]) // PAGE for name in names}
