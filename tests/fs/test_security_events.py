"""cgroup.event_control attacked by unprivileged users of a root server (issue 13, items 4-7).

Each attack runs as the attacker would: a normal user (setpriv) with a delegated group,
through tests/fs/attacker.py.  Another user keeps being served meanwhile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from fakecgfs import mounting
from fakecgfs.cgroupfs.events_control import MAX_DESCRIPTORS_PER_USER
from fakecgfs.testing import fuse_unavailable_reason, mounted

from .helpers import wait_until

pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None or os.getuid() != 0,
                                reason="needs root and setpriv")  # fmt: skip

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
        process = self.start(uid, attack, *args)
        return finish(process)

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


def finish(process: subprocess.Popen, stdin: str = "") -> dict:
    try:
        out, err = process.communicate(stdin, timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    return json.loads(out.splitlines()[-1])


@pytest.fixture
def world():
    reason = fuse_unavailable_reason()
    if reason:
        pytest.skip(reason)
    if not os.access(PYTHON, os.X_OK):
        pytest.skip(f"no {PYTHON}")
    directory = Path(tempfile.mkdtemp(prefix="fakecgfs-sec-"))
    os.chmod(directory, 0o755)
    try:
        with mounted(directory) as mount:
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
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_full_blocking_eventfd_stalls_no_one(world, other_user_reads):
    """Item 4: the counter at its maximum, refilled by a second thread, thresholds crossed
    400 times: the server must not block in the eventfd, and B's reads keep being answered."""
    group = world.delegate("attacker", USER_A)
    reader = other_user_reads()
    attack = world.run(USER_A, "full_eventfd", str(group), "200")
    served = finish(reader, "stop\n")
    assert attack["registered"] == "ok"
    assert attack["readable"]  # a signal that could not be counted still leaves it readable
    assert served["reads"] > 0 and served["slowest"] < ANSWER_WITHIN, served


def test_a_descriptor_swapped_during_registration_is_never_written(world, other_user_reads):
    """Item 5: a second thread dup2()s a socket and the eventfd over the registered number in
    turn.  What was checked is what the server holds: a registration either takes the eventfd
    or is refused, and the socket never receives a byte nor stays in the server."""
    group = world.delegate("attacker", USER_A)
    reader = other_user_reads()
    attack = world.run(USER_A, "swap_race", str(group), "400")
    served = finish(reader, "stop\n")
    outcomes = attack["outcomes"]
    assert set(outcomes) <= {"ok", "EINVAL"} and sum(outcomes.values()) == 400, outcomes
    assert attack["leaked"] == 0
    assert attack["signals"] == outcomes.get("ok", 0) * 2  # each took the eventfd: up, down
    wait_until(lambda: attack["socket"] not in world.server_fds(), TIMEOUT,
               what="the server to let go of the socket")  # fmt: skip
    assert served["slowest"] < ANSWER_WITHIN, served


def test_registrations_of_one_eventfd_share_one_descriptor(world):
    """Item 6: 1,014 registrations of one eventfd cost the server one descriptor, and each
    is still signalled (1,014 crossings counted)."""
    group = world.delegate("attacker", USER_A)
    before = len(world.server_fds())
    attack = world.run(USER_A, "many_registrations", str(group), "1014")
    assert attack["outcomes"] == {"ok": 1014}
    assert attack["signals"] == 1014
    assert world.server_eventfds() == 1
    # Besides, the control files' duplicates are closed (in a thread, soon), and the server
    # opened what it signals with (/dev/zero): a few descriptors, not a thousand.
    wait_until(lambda: len(world.server_fds()) <= before + 2, TIMEOUT,
               what="the control files' duplicates to be closed")  # fmt: skip
    os.rmdir(group)
    assert world.server_eventfds() == 0


def test_a_flood_of_eventfds_is_bounded_per_user(world):
    """Item 6: user A floods the server with eventfds: beyond its bound it gets EMFILE, and
    user B still registers; once A's process is gone (its eventfds closed), the server lets go
    of them and A may register again."""
    group_a = world.delegate("a", USER_A)
    group_b = world.delegate("b", USER_B)
    flood = world.start(USER_A, "flood", str(group_a), str(MAX_DESCRIPTORS_PER_USER + 20), "hold")
    try:
        report = json.loads(flood.stdout.readline())
        assert report["outcomes"] == {"ok": MAX_DESCRIPTORS_PER_USER, "EMFILE": 20}
        assert world.run(USER_B, "flood", str(group_b), "1")["outcomes"] == {"ok": 1}
    finally:
        finish_flood(flood)
    assert world.server_eventfds() == MAX_DESCRIPTORS_PER_USER + 1
    # A's eventfds are closed: the server finds so (at A's bound) and drops them.
    wait_until(lambda: world.run(USER_A, "flood", str(group_a), "1")["outcomes"] == {"ok": 1},
               TIMEOUT, interval=0.2, what="A's closed eventfds to be released")  # fmt: skip
    # That scan also dropped B's registration, whose eventfd B's exit closed, as the kernel
    # drops a registration when its eventfd is closed: only A's new one is left.
    assert world.server_eventfds() == 1


def finish_flood(process: subprocess.Popen) -> None:
    try:
        process.communicate("exit\n", timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("name", ["memory.usage_in_bytes", "memory.pressure_level"])
def test_o_path_descriptors_are_ebadf(world, name):
    """Item 7: fdget() ignores O_PATH files, so the kernel answers EBADF: for a control file
    the user may not read (root's, 0600; pressure_level, 0000) and for an O_PATH event_fd."""
    group = world.delegate("attacker", USER_A)
    os.chown(group / name, 0, 0)
    if name != "memory.pressure_level":
        os.chmod(group / name, 0o600)
    assert world.run(USER_A, "o_path", str(group), name) == {"control": "EBADF", "event": "EBADF"}


def test_a_control_file_the_writer_may_no_longer_read_is_eacces(world):
    """Item 7: file_permission(MAY_READ) is checked on the file's mode now, whatever the open
    descriptor allowed: the admin takes the file back, the registration fails with EACCES."""
    group = world.delegate("attacker", USER_A)
    process = world.start(USER_A, "held_open", str(group), "memory.oom_control")
    assert process.stdout.readline() == "opened\n"
    os.chown(group / "memory.oom_control", 0, 0)
    os.chmod(group / "memory.oom_control", 0o600)
    assert finish(process, "go\n") == {"result": "EACCES"}
    os.chmod(group / "memory.oom_control", 0o644)  # readable by others again: accepted
    process = world.start(USER_A, "held_open", str(group), "memory.oom_control")
    assert process.stdout.readline() == "opened\n"
    assert finish(process, "go\n") == {"result": "ok"}
