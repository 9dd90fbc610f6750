"""cgroup.event_control attacked by unprivileged users of a root server (issue 13, items 4-7).

Each attack runs as the attacker would: a normal user (setpriv) with a delegated group,
through tests/fs/attacker.py.  Another user keeps being served meanwhile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from fakecgfs.cgroupfs.events_control import MAX_DESCRIPTORS_PER_USER

from .helpers import wait_until
from .security import (
    ANSWER_WITHIN,
    TIMEOUT,
    USER_A,
    USER_B,
)

pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None or os.getuid() != 0,
                                reason="needs root and setpriv")  # fmt: skip


def test_a_full_blocking_eventfd_stalls_no_one(world, other_user_reads):
    """Item 4: the counter at its maximum (refilled by a second thread) each of the 400 times
    a threshold is crossed: the server must not block in the eventfd, and B's reads keep
    being answered."""
    group = world.delegate("attacker", USER_A)
    reader = other_user_reads()
    attack = world.run(USER_A, "full_eventfd", str(group), "200")
    served = world.finish(reader, "stop\n")
    assert attack["registered"] == "ok"
    # The kernel's eventfd_signal() saturates: the last crossing took the counter from the
    # most a write can put (2^64 - 2) to the most it holds, and the listener sees it readable.
    assert attack["count"] == 2**64 - 1 and attack["readable"]
    assert served["reads"] > 0 and served["slowest"] < ANSWER_WITHIN, served


def test_a_descriptor_swapped_during_registration_is_never_written(world, other_user_reads):
    """Item 5: a second thread dup2()s a socket and the eventfd over the registered number in
    turn.  What was checked is what the server holds: a registration either takes the eventfd
    or is refused, and the socket never receives a byte nor stays in the server."""
    group = world.delegate("attacker", USER_A)
    reader = other_user_reads()
    attack = world.run(USER_A, "swap_race", str(group), "400")
    served = world.finish(reader, "stop\n")
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
        finish_flood(world, flood)
    assert world.server_eventfds() == MAX_DESCRIPTORS_PER_USER + 1
    # A's eventfds are closed: the server finds so (at A's bound) and drops them.
    wait_until(lambda: world.run(USER_A, "flood", str(group_a), "1")["outcomes"] == {"ok": 1},
               TIMEOUT, interval=0.2, what="A's closed eventfds to be released")  # fmt: skip
    # That scan also dropped B's registration, whose eventfd B's exit closed, as the kernel
    # drops a registration when its eventfd is closed: only A's new one is left.
    assert world.server_eventfds() == 1


def finish_flood(world, process: subprocess.Popen) -> None:
    try:
        process.communicate("exit\n", timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        world.stop(process)
        raise AssertionError("the flooder did not exit: the server stalled") from None


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
    assert world.finish(process, "go\n") == {"result": "EACCES"}
    os.chmod(group / "memory.oom_control", 0o644)  # readable by others again: accepted
    process = world.start(USER_A, "held_open", str(group), "memory.oom_control")
    assert process.stdout.readline() == "opened\n"
    assert world.finish(process, "go\n") == {"result": "ok"}
