"""Helpers of the security tests: a root mount in a 0755 directory, users who attack it through
tests/fs/attacker.py (run with setpriv and the system python3), and a second user reading."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakecgfs import mounting
from fakecgfs.testing import fuse_unavailable_reason, mounted

ATTACKER = Path(__file__).with_name("attacker.py")
USER_A, USER_B = 65534, 65533  # nobody, and a second user (no passwd entry needed)
PYTHON = "/usr/bin/python3"  # the system's: the venv may sit where these users cannot read
TIMEOUT = 120
ANSWER_WITHIN = 1.0  # seconds: any slower read of the other user means the server stalled


def as_user(uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


class World:
    """A root mount in a 0755 directory, the attack script copied beside it."""

    def __init__(self, directory: Path, mount) -> None:
        self.directory = directory
        self.mount = mount
        self.script = directory / "attacker.py"
        shutil.copy(ATTACKER, self.script)
        os.chmod(self.script, 0o644)

    @property
    def path(self) -> Path:
        return self.mount.path

    def delegate(self, name: str, uid: int) -> Path:
        """A group chowned, with its files, to ``uid``: delegated, as an admin would."""
        group = self.path / name
        os.mkdir(group)
        os.chown(group, uid, uid)
        for entry in os.listdir(group):
            os.chown(group / entry, uid, uid)
        return group

    def start(self, uid: int, attack: str, *args: str) -> subprocess.Popen:
        return subprocess.Popen([*as_user(uid), PYTHON, str(self.script), attack, *args],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    def run(self, uid: int, attack: str, *args: str) -> dict:
        return self.finish(self.start(uid, attack, *args))

    def finish(self, process: subprocess.Popen, stdin: str = "") -> dict:
        """What an attack (or the reader) printed, once it exits; a test failure if it does
        not within TIMEOUT."""
        try:
            out, err = process.communicate(stdin, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stop(process)
            raise AssertionError(f"no answer within {TIMEOUT} s: the server stalled") from None
        assert process.returncode == 0, err
        return json.loads(out.splitlines()[-1])

    def stop(self, process: subprocess.Popen) -> None:
        """Kill a process, and the server if it must: a process inside a FUSE request that the
        server has received cannot die until the server answers or goes."""
        if process.poll() is not None:
            return
        process.kill()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.mount.process.kill()
            process.wait()

    def server_eventfds(self) -> int:
        return self.server_fds().count("anon_inode:[eventfd]")

    def server_fds(self) -> list[str]:
        pid = self.mount.process.pid
        links = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except FileNotFoundError:
                pass
        return links


@pytest.fixture
def world():
    reason = fuse_unavailable_reason()
    if reason:
        pytest.skip(reason)
    if not os.access(PYTHON, os.X_OK):
        pytest.skip(f"no {PYTHON}")
    with world_mounted() as world:
        yield world


@contextlib.contextmanager
def world_mounted(*options: str) -> Iterator[World]:
    """A root mount with ``options`` in a fresh 0755 directory that every user may reach; the
    directory is removed unless a mount is left on it."""
    directory = Path(tempfile.mkdtemp(prefix="fakecgfs-sec-"))
    os.chmod(directory, 0o755)
    try:
        with mounted(directory, *options) as mount:
            yield World(directory, mount)
    finally:
        mountpoint = str(directory / "mnt")
        if not (mounting.is_fakecgfs_mount(mountpoint) or mounting.is_stale(mountpoint)):
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def other_user_reads(world):
    """User B reading a file of the mount over and over; its slowest read once stopped."""
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        started.append(world.start(USER_B, "reader", str(world.path / "memory.usage_in_bytes")))
        return started[-1]

    yield start
    for process in started:
        world.stop(process)
