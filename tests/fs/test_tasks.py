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


# -- never touch the host (issue 5) ------------------------------------------------------------

SIGNAL_TRAP = """
import signal, sys, time
def note(signum, frame):
    with open(sys.argv[1], "a") as f:
        f.write(f"{signum}\\n")
for s in signal.valid_signals():
    if s not in (signal.SIGKILL, signal.SIGSTOP):
        try:
            signal.signal(s, note)
        except (OSError, ValueError, RuntimeError):
            pass
print("ready", flush=True)
time.sleep(60)  # it traps SIGTERM: make sure it ends even if the test is killed
"""


def _untouched(pid: int) -> None:
    """Alive, not stopped, and nothing pending for it (SIGKILL and SIGSTOP cannot be trapped:
    this is how they would show)."""
    status = dict(line.split(":", 1) for line in read(f"/proc/{pid}/status").splitlines())
    assert status["State"].split()[0] in ("S", "R"), status["State"]
    assert int(status["SigPnd"], 16) == 0 and int(status["ShdPnd"], 16) == 0, status


def test_a_task_is_never_signalled_even_under_oom(group, tmp_path):
    """tasks and cgroup.procs name real processes; OOM in their group, both kill mode (the
    charging write is the victim) and wait mode, reclaim and rmdir never signal them."""
    signalled = tmp_path / "signals"
    signalled.touch()
    with sleeper(sys.executable, "-c", SIGNAL_TRAP, str(signalled)) as trap, sleeper() as plain:
        assert trap.stdout.readline() == "ready\n"
        write(group / "cgroup.procs", str(trap.pid))
        write(group / "tasks", str(plain.pid))
        write(group / "memory.limit_in_bytes", "4M")
        write(group / "memory.high_wmark_in_bytes", "3M")
        write(group / "fake.charge", "3M anon")  # unreclaimable without swap: the task backs off
        # kill mode: the charge is the victim
        assert errno_of(lambda: write(group / "fake.charge", "8M anon")) == errno.ENOMEM
        assert "oom_kill 1" in read(group / "memory.oom_control")
        # wait mode: a charge asleep in OOM, then released
        write(group / "memory.oom_control", "1")
        waiter = subprocess.Popen(["sh", "-c", "echo 2M > fake.charge"], cwd=group)
        try:
            wait_until(lambda: "under_oom 1" in read(group / "memory.oom_control"),
                       what="the charge to sleep in OOM")  # fmt: skip
            write(group / "memory.force_empty", "1")
            write(group / "memory.limit_in_bytes", "64M")
            assert waiter.wait(timeout=10) == 0
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()
        wait_until(lambda: read(group / "fake.reclaim_daemon").startswith("state backoff")
                   or "no_progress_passes 0" not in read(group / "fake.reclaim_daemon"),
                   what="the reclaim task to try")  # fmt: skip
        for proc in (trap, plain):
            assert proc.poll() is None
            _untouched(proc.pid)
        assert read(signalled) == ""  # the trap caught nothing
        assert sorted(_ids(group / "tasks")) == sorted([trap.pid, plain.pid])
        assert errno_of(lambda: os.rmdir(group)) == errno.EBUSY
    wait_until(lambda: read(group / "tasks") == "", what="the dead tasks to leave")
