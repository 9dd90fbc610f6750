"""tasks and cgroup.procs with real processes (fakecgfs records membership, never signals)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from contextlib import contextmanager

from .helpers import errno_of, pid_alive, read, wait_until, write

THREADED = """
import threading, time, sys
for _ in range(2):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""


@contextmanager
def sleeper(*command: str):
    """A child process that sleeps; killed and reaped on the way out, whatever happened."""
    proc = subprocess.Popen(list(command) or ["sleep", "60"], stdout=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _ids(path) -> list[int]:
    return [int(line) for line in read(path).splitlines()]


def test_attach_a_process(shared, group):
    with sleeper() as proc:
        pid = proc.pid
        assert write(group / "cgroup.procs", str(pid)) == len(str(pid))
        assert _ids(group / "tasks") == [pid]
        assert _ids(group / "cgroup.procs") == [pid]
        assert pid not in _ids(shared.path / "tasks")
        assert pid not in _ids(shared.path / "cgroup.procs")
        assert errno_of(lambda: os.rmdir(group)) == errno.EBUSY
        assert proc.poll() is None  # never signalled
        proc.kill()
        proc.wait()
        wait_until(lambda: read(group / "tasks") == "", what="the dead task to leave")
        assert read(group / "cgroup.procs") == ""
    os.rmdir(group)
    os.mkdir(group)  # for the fixture


def test_a_task_is_in_exactly_one_group(shared, group):
    os.mkdir(group / "a")
    os.mkdir(group / "b")
    a, b = group / "a", group / "b"
    with sleeper() as proc:
        pid = proc.pid
        write(a / "tasks", f"{pid}\n")
        write(b / "tasks", str(pid))
        assert read(a / "tasks") == ""
        assert _ids(b / "tasks") == [pid]
        write(a / "cgroup.procs", str(pid))
        assert read(b / "tasks") == ""
        assert pid not in _ids(shared.path / "tasks")
        write(shared.path / "cgroup.procs", str(pid))  # back to the root
        assert read(a / "tasks") == read(b / "tasks") == ""
        assert pid in _ids(shared.path / "tasks")
        os.rmdir(a)
        os.rmdir(b)
        assert proc.poll() is None


def test_sorted_lists_and_threads(shared, group):
    with sleeper(sys.executable, "-c", THREADED) as threaded, sleeper() as plain:
        assert threaded.stdout.readline() == "ready\n"
        tids = sorted(int(t) for t in os.listdir(f"/proc/{threaded.pid}/task"))
        assert len(tids) == 3
        write(group / "cgroup.procs", str(threaded.pid))  # the whole process
        write(group / "tasks", str(plain.pid))
        assert _ids(group / "tasks") == sorted([*tids, plain.pid])
        assert _ids(group / "cgroup.procs") == sorted([threaded.pid, plain.pid])
        # one thread moved alone: its process is listed in both groups' cgroup.procs
        os.mkdir(group / "one")
        write(group / "one" / "tasks", str(tids[-1]))
        assert _ids(group / "one" / "tasks") == [tids[-1]]
        assert _ids(group / "one" / "cgroup.procs") == [threaded.pid]
        assert tids[-1] not in _ids(group / "tasks")
        assert threaded.pid in _ids(group / "cgroup.procs")
        assert threaded.poll() is None and plain.poll() is None
    wait_until(lambda: read(group / "tasks") == "" and read(group / "one" / "tasks") == "",
               what="the dead tasks to leave")  # fmt: skip


def test_attached_process_outlives_the_mount_operations(group):
    with sleeper() as proc:
        write(group / "cgroup.procs", str(proc.pid))
        write(group / "fake.charge", "1M")
        write(group / "memory.limit_in_bytes", "64M")
        write(group / "memory.force_empty", "1")
        assert pid_alive(proc.pid) and proc.poll() is None


def test_unused_pid_is_esrch(group):
    assert errno_of(lambda: write(group / "tasks", "4194304")) == errno.ESRCH
    assert errno_of(lambda: write(group / "cgroup.procs", "4194304")) == errno.ESRCH
    assert read(group / "tasks") == ""

