"""Attacks on tasks and cgroup.procs: a user names a process that is not theirs.

The kernel's rule (kernel/cgroup/cgroup-v1.c, __cgroup1_procs_write()): the writer's euid must
be 0 or the uid or suid of the task found; for cgroup.procs that task is the thread group's
leader (cgroup_procs_write_start() takes ``tsk->group_leader`` before the check), for tasks the
thread itself.  With --real-processes a member can be stopped, paged out and killed by the
server, so a process moved against this rule is a process the server acts on for a stranger.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import NOBODY, NOBODY_UID, read

pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None or os.getuid() != 0,
                                reason="needs root and setpriv")  # fmt: skip

HELPERS = Path(__file__).resolve().parent.parent / "helpers"


@pytest.fixture(scope="module")
def splitcreds(tmp_path_factory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build tests/helpers/splitcreds.c")
    binary = tmp_path_factory.mktemp("splitcreds") / "splitcreds"
    subprocess.run([cc, "-O1", "-Wall", "-pthread", "-o", str(binary),
                    str(HELPERS / "splitcreds.c")], check=True, timeout=120)  # fmt: skip
    return binary


def delegate_to_nobody(group: Path) -> None:
    for path in (group, group / "cgroup.procs", group / "tasks"):
        os.chown(path, NOBODY_UID, NOBODY_UID)


def nobody_writes(group: Path, name: str, pid: int) -> str:
    """What nobody's write of ``pid`` to ``name`` gave: "ok" or coreutils' message."""
    result = subprocess.run([*NOBODY, "sh", "-c", '/bin/echo "$1" > "$2"', "sh", str(pid),
                             str(group / name)], capture_output=True, text=True,
                            timeout=30)  # fmt: skip
    return "ok" if result.returncode == 0 else result.stderr


def test_a_thread_of_root_running_as_the_user_does_not_give_away_its_process(group, splitcreds):
    """A root process one of whose threads has switched to nobody's uid (per-thread
    credentials): nobody may move that thread (tasks checks the thread), but not the process
    (cgroup.procs checks the leader, root), neither by the leader's PID nor by the thread's."""
    delegate_to_nobody(group)
    process = subprocess.Popen([str(splitcreds), str(NOBODY_UID)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "splitcreds did not start"
        leader, tid = map(int, process.stdout.readline().split())
        assert leader == process.pid and tid != leader
        assert "Permission denied" in nobody_writes(group, "cgroup.procs", tid)
        assert "Permission denied" in nobody_writes(group, "cgroup.procs", leader)
        assert read(group / "cgroup.procs") == ""
        assert nobody_writes(group, "tasks", tid) == "ok"
        assert read(group / "tasks") == f"{tid}\n"
    finally:
        process.kill()
        process.wait()


# A process that opens a file as one user and writes it as another: kernfs judges the move by
# the credentials the file was opened with (commit 1756d7994ad8, "cgroup: Use open-time
# credentials for process migraton perm checks", in cgroup v1 too), so that a descriptor an
# unprivileged user opened and handed to a setuid program (as its stdout, say) cannot move
# root's processes, and one root opened and handed down still can.
SWITCH_AND_WRITE = r"""
import os, sys
path, pid, opener, writer = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.setgroups([])
os.setresgid(opener, opener, 0)
os.setresuid(opener, opener, 0)  # the saved uid 0 lets it become root again
fd = os.open(path, os.O_WRONLY)
os.setresuid(writer, writer, 0)
try:
    os.write(fd, pid.encode())
    print("ok")
except OSError as e:
    print(e.errno)
"""


def opened_by_written_by(path: Path, pid: int, opener: int, writer: int) -> str:
    result = subprocess.run([sys.executable, "-c", SWITCH_AND_WRITE, str(path), str(pid),
                             str(opener), str(writer)], capture_output=True, text=True,
                            timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("name", ["cgroup.procs", "tasks"])
def test_a_move_is_judged_by_who_opened_the_file(group, name):
    delegate_to_nobody(group)
    victim = subprocess.Popen(["sleep", "60"])  # root's
    try:
        assert opened_by_written_by(group / name, victim.pid, NOBODY_UID, 0) == str(errno.EACCES)
        assert read(group / "tasks") == ""
        assert opened_by_written_by(group / name, victim.pid, 0, NOBODY_UID) == "ok"
        assert read(group / "tasks") == f"{victim.pid}\n"
    finally:
        victim.kill()
        victim.wait()
