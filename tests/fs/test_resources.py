"""Resource bounds (issue 5): floods of groups and of open descriptors leave nothing behind, and
writes are capped as the kernel caps them.

Through a mount, the server's memory is measured from /proc: after each of three rounds of
making and removing 2,000 groups (or opening, reading and closing 2,000 descriptors), its RSS
must stay within ROUND_GROWTH_KIB of what it was after the first round (the allocator keeps what
the first round took; a leak keeps growing), and within TOTAL_GROWTH_KIB of what it was before.
In-process, without FUSE, the filesystem's own tables (open handles, inode metadata) are checked
to be empty again, and Python's traced memory to be back where it was.  scripts/stress floods
10,000 of each.
"""

from __future__ import annotations

import errno
import os

import pytest

from fakecgfs.cgroupfs.cftypes import CFTYPES, Where

from .helpers import errno_of, read, wait_until, write
from .stress import flood_groups, flood_handles, inprocess_churn

FLOOD = 2000
ROUNDS = 3
# The allocator's noise, not leaks: measured 0.4 to 4.5 MiB between rounds 1 and 3 for 2,000
# groups, and up and down by up to 10 MiB, with no trend, over 8 rounds of 10,000.  A leak small
# enough to hide in it is the in-process test's business, which counts Python's bytes.
ROUND_GROWTH_KIB = 16 * 1024
TOTAL_GROWTH_KIB = 32 * 1024  # measured: about +10 MiB for 2,000 groups, +2 MiB for handles
TRACED_GROWTH = 64 * 1024  # Python's own allocations, in-process: measured within +-300 bytes


def test_a_mkdir_flood_leaves_the_server_as_it_was(mnt):
    figures = flood_groups(mnt.path, mnt.process.pid, FLOOD, ROUNDS)
    assert figures["growth_after_first_round_kib"] <= ROUND_GROWTH_KIB, figures
    growth = figures["rss_kib_after_rmdir"][-1] - figures["rss_kib_before"]
    assert growth <= TOTAL_GROWTH_KIB, figures
    assert [p for p in mnt.path.iterdir() if p.is_dir()] == []
    assert mnt.process.poll() is None


def test_a_flood_of_open_descriptors_leaves_the_server_as_it_was(mnt):
    figures = flood_handles(mnt.path, mnt.process.pid, FLOOD, ROUNDS)
    assert figures["growth_after_first_round_kib"] <= ROUND_GROWTH_KIB, figures
    growth = figures["rss_kib_after_close"][-1] - figures["rss_kib_before"]
    assert growth <= TOTAL_GROWTH_KIB, figures
    assert mnt.process.poll() is None


def test_open_handles_and_removed_groups_are_forgotten():
    """In-process (no FUSE): the filesystem's tables are empty again and Python's memory is
    back where it was after a round of 2,000 descriptors and 500 groups with reclaim tasks."""
    figures = inprocess_churn(groups=FLOOD // 4, handles=FLOOD)
    assert figures["open_handles_left"] == 0, figures
    assert figures["group_metadata_left"] == figures["file_metadata_left"] == 0, figures
    assert figures["reclaim_tasks_left"] == 0, figures
    assert figures["traced_growth_bytes"] <= TRACED_GROWTH, figures


# -- writes are capped as the kernel caps them ---------------------------------------------

WRITABLE = sorted(c.name for c in CFTYPES if c.writable and c.where is not Where.ROOT)
SIZES = [4097, 8192, 131072, 131073, 1 << 20]  # over the cap, and over FUSE's 128 KiB max_write


@pytest.mark.parametrize("size", SIZES)
def test_oversized_writes_are_e2big_and_change_nothing(group, size):
    before = {name: read(group / name) for name in ("memory.limit_in_bytes", "memory.stat")}
    for name in WRITABLE:
        data = (b"4096" + b" " * size)[:size]  # a valid value, padded past the cap
        assert errno_of(lambda name=name, data=data: write(group / name, data)) == errno.E2BIG, name
    assert errno_of(lambda: write(group / "fake.charge", b"1M file" + b" " * size)) == errno.E2BIG
    assert {name: read(group / name) for name in before} == before


def test_oversized_write_to_a_read_only_file_is_e2big(group):
    assert errno_of(lambda: write(group / "memory.usage_in_bytes", b"1" * 4097)) == errno.E2BIG


def test_oversized_write_to_a_removed_group_is_e2big(group):
    os.mkdir(group / "gone")
    fd = os.open(group / "gone" / "memory.limit_in_bytes", os.O_WRONLY)
    try:
        os.rmdir(group / "gone")
        assert errno_of(lambda: os.write(fd, b"4096")) == errno.ENODEV
        assert errno_of(lambda: os.write(fd, b"1" * 4097)) == errno.E2BIG
    finally:
        os.close(fd)


def test_the_server_stops_polling_once_requests_stop(mnt):
    """After a request the session polls /dev/fuse for POLL_AFTER_REQUEST_NS before the loop
    sleeps; then an idle server costs no CPU, however busy it just was (clock ticks of
    /proc/<pid>/stat over a second: at most one tick, the resolution)."""
    import time

    from fakecgfs.cgroupfs.session import POLL_AFTER_REQUEST_NS

    def cpu_ticks() -> int:
        with open(f"/proc/{mnt.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def asleep() -> bool:
        """No thread of the server runs or waits for a CPU (state R): the polling is over."""
        states = []
        for tid in os.listdir(f"/proc/{mnt.process.pid}/task"):
            try:
                with open(f"/proc/{mnt.process.pid}/task/{tid}/stat") as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except FileNotFoundError:  # a thread that just ended
                pass
        return "R" not in states

    path = mnt.path / "memory.usage_in_bytes"
    for _ in range(2000):
        path.read_bytes()
    wait_until(asleep, what=f"the server to sleep, {POLL_AFTER_REQUEST_NS} ns after a request")
    before = cpu_ticks()
    time.sleep(1.0)  # a second of an idle mount: what is under test is that nothing runs in it
    assert cpu_ticks() - before <= 1
