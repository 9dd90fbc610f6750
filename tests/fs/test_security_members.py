"""Attacks on the real-process sampler (mount --real-processes) by a member's owner.

Reading /proc/PID/smaps or smaps_rollup takes the process's mmap_lock for reading, and a
process can keep that lock from being taken for as long as it likes: a thread reading its own
memory through /proc/self/mem at a page of a file whose file system does not answer (one its
owner serves with FUSE) holds the lock for reading, and a second thread's mmap() then waits
for it and makes every new reader wait behind (tests/helpers/mmap_lock.c).  The server thread
must never be that reader.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakecgfs.testing import fuse_unavailable_reason

from .security import USER_A, USER_B, as_user, world_mounted

pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None or os.getuid() != 0,
                                reason="needs root and setpriv")  # fmt: skip

HELPERS = Path(__file__).resolve().parent.parent / "helpers"
SLOWFS = Path(__file__).with_name("slowfs.py")
ANSWER_WITHIN = 5  # seconds: a read held up by the member's lock never answers at all


@pytest.fixture
def real_world():
    reason = fuse_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with world_mounted("--real-processes") as world:
        yield world


@pytest.fixture
def slow_file(real_world):
    """The file of a file system whose reads wait; yields (file, release)."""
    mountpoint = real_world.directory / "slow"
    gate = real_world.directory / "gate"
    mountpoint.mkdir()
    server = subprocess.Popen([sys.executable, str(SLOWFS), str(mountpoint), str(gate)])
    deadline = time.monotonic() + 30
    while not os.path.ismount(mountpoint):
        assert server.poll() is None and time.monotonic() < deadline, "slowfs did not mount"
        time.sleep(0.05)
    try:
        yield mountpoint / "f", gate.touch
    finally:
        gate.touch()
        subprocess.run(["fusermount", "-u", str(mountpoint)], check=False, timeout=30)
        server.wait(30)


@pytest.fixture(scope="module")
def mmap_lock(tmp_path_factory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build tests/helpers/mmap_lock.c")
    directory = tmp_path_factory.mktemp("mmap_lock")
    binary = directory / "mmap_lock"
    subprocess.run([cc, "-O1", "-Wall", "-pthread", "-o", str(binary),
                    str(HELPERS / "mmap_lock.c")], check=True, timeout=120)  # fmt: skip
    os.chmod(directory, 0o755)
    return binary


def reply(process: subprocess.Popen) -> str:
    ready, _, _ = select.select([process.stdout], [], [], 60)
    assert ready, "mmap_lock did not answer"
    return process.stdout.readline().strip()


def start_reading(uid: int, path: Path) -> subprocess.Popen:
    """``uid``'s cat of ``path``, in a process of its own: a read the server does not answer
    cannot be killed (FUSE waits for the answer once the request was read), so nothing of the
    test's own may make it."""
    return subprocess.Popen([*as_user(uid), "cat", str(path)], stdout=subprocess.DEVNULL)


def answered_within(reader: subprocess.Popen, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while reader.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return reader.poll() == 0


def test_a_member_holding_its_mmap_lock_stalls_no_one(real_world, slow_file, mmap_lock):
    """Before the fix the server thread waited in the read of the member's smaps (its VmLck
    had just changed) until the file system answered: every request of every user hung."""
    file, release = slow_file
    group = real_world.delegate("locker", USER_A)
    member = subprocess.Popen([*as_user(USER_A), str(mmap_lock), str(file),
                               str(group / "cgroup.procs")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    answered, readers = [], []
    try:
        assert reply(member) == f"joined {member.pid}"
        assert (group / "tasks").read_text().split()[:1] == [str(member.pid)]
        member.stdin.write("go\n")
        member.stdin.flush()
        assert reply(member) == f"held {member.pid}"
        # Reads of usage and tasks sample every member first: none may wait for this one.
        for name in ("memory.usage_in_bytes", "tasks", "memory.usage_in_bytes"):
            readers.append(start_reading(USER_B, real_world.path / name))
            answered.append(answered_within(readers[-1], ANSWER_WITHIN))
    finally:
        release()  # the lock is let go: whatever waited for it goes on
        member.stdin.close()
        member.wait(60)
        for reader in readers:
            reader.wait(60)
    assert answered == [True, True, True]
    assert member.returncode == 0


def test_a_member_holding_its_mmap_lock_does_not_hang_a_limit_write(real_world, slow_file,
                                                                     mmap_lock):  # fmt: skip
    """Reclaim pages a member out with process_madvise(), which waits for its mmap_lock: root
    lowering the limit of the member's group must still be answered (EBUSY here, as the
    kernel's resize loop gives up), and so must everyone else."""
    file, release = slow_file
    group = real_world.delegate("locker", USER_A)
    member = subprocess.Popen([*as_user(USER_A), str(mmap_lock), str(file),
                               str(group / "cgroup.procs")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    answered, writer, readers = [], None, []
    try:
        assert reply(member) == f"joined {member.pid}"
        member.stdin.write("go\n")
        member.stdin.flush()
        assert reply(member) == f"held {member.pid}"
        writer = subprocess.Popen(["sh", "-c", f"echo 4096 > {group}/memory.limit_in_bytes"],
                                  stderr=subprocess.PIPE, text=True)  # fmt: skip
        answered.append(answered_within(writer, ANSWER_WITHIN * 4) or writer.poll() is not None)
        readers.append(start_reading(USER_B, real_world.path / "memory.usage_in_bytes"))
        answered.append(answered_within(readers[-1], ANSWER_WITHIN))
    finally:
        release()
        member.stdin.close()
        member.wait(60)
        for process in [*readers, *([writer] if writer else [])]:
            process.wait(60)
    assert answered == [True, True]
    assert member.returncode == 0
