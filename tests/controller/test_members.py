"""The members layer's pure parts: the attribution ledger (against a controller, under a mock
clock) and the /proc parsers (on recorded text)."""

from __future__ import annotations

import os

from fakecgfs.controller import PAGE_SIZE, RealKind
from fakecgfs.controller.real import NR_REAL_KINDS
from fakecgfs.members import Ledger
from fakecgfs.members.procfs import (
    image_of,
    parse_children,
    parse_locked_split,
    parse_status,
    parse_sysvipc_shm,
    private_anon,
    proc_ids,
    proc_uids,
    read_at,
    reclaimable_ranges,
    stat_fields,
)  # fmt: skip

from .conftest import controller, trio_test


def vec(**pages: int) -> list[int]:
    v = [0] * NR_REAL_KINDS
    for name, nr in pages.items():
        v[RealKind[name.upper()]] = nr
    return v


@trio_test
async def test_gains_go_to_the_current_group_and_frees_come_back_last_in_first_out():
    async with controller() as c:
        a, b = c.create_group(c.root, "a"), c.create_group(c.root, "b")
        ledger = Ledger(vec(anon=50))  # what it had on joining: charged nowhere here
        ledger.apply(c, a, vec(anon=60))
        assert a.real[RealKind.ANON] == 10
        ledger.apply(c, b, vec(anon=65))  # moved: a keeps its 10
        assert (a.real[RealKind.ANON], b.real[RealKind.ANON]) == (10, 5)
        ledger.apply(c, b, vec(anon=58))  # 7 freed: b's 5, then 2 of a's
        assert (a.real[RealKind.ANON], b.real[RealKind.ANON]) == (8, 0)
        ledger.apply(c, b, vec(anon=40))  # a's 8, then the baseline
        assert (a.real[RealKind.ANON], b.real[RealKind.ANON]) == (0, 0)
        ledger.apply(c, b, vec(anon=41))
        assert b.real[RealKind.ANON] == 1
        assert [h.memcg for h in ledger.holdings] == [None, b]


@trio_test
async def test_locking_pages_moves_them_between_lines_never_between_groups():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        ledger = Ledger(vec(anon=27))
        # mid-MAP_POPULATE: 60 pages made, smaps already counts 87 locked
        ledger.apply(c, g, vec(anon_locked=87))
        assert g.real[RealKind.ANON_LOCKED] == 60 and g.real[RealKind.ANON] == 0
        ledger.apply(c, g, vec(anon=27, anon_locked=100))
        assert g.real[RealKind.ANON_LOCKED] == 100 and g.real[RealKind.ANON] == 0
        ledger.apply(c, g, vec(anon=127))  # munlock: still the group's, now evictable
        assert g.real[RealKind.ANON] == 100 and g.real[RealKind.ANON_LOCKED] == 0
        ledger.apply(c, g, vec(anon=27))
        assert g.memory.usage == 0


@trio_test
async def test_a_page_changing_kind_never_overshoots_a_limit():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, 10)
        ledger = Ledger(vec())
        ledger.apply(c, g, vec(anon=10))
        ledger.apply(c, g, vec(anon=5, swap=5))  # swapped out: memory drops, memsw stays
        assert g.memory.usage == 5 and g.memsw.usage == 10 and g.memory.failcnt == 0


@trio_test
async def test_release_frees_everything_charged():
    async with controller() as c:
        a, b = c.create_group(c.root, "a"), c.create_group(c.root, "b")
        ledger = Ledger(vec(anon=5))
        ledger.apply(c, a, vec(anon=7, file=3))
        ledger.apply(c, b, vec(anon=9, file=3, shmem=2))
        ledger.release(c)
        assert a.memory.usage == b.memory.usage == 0
        assert ledger.held(RealKind.ANON) == 0


STATUS = b"""Name:\tmemhog
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t    2736 kB
VmLck:\t     400 kB
VmRSS:\t    1992 kB
RssAnon:\t     508 kB
RssFile:\t    1484 kB
RssShmem:\t       8 kB
VmSwap:\t       4 kB
Threads:\t1
"""


def test_parse_status_in_pages():
    usage = parse_status(STATUS)
    assert (usage.anon, usage.file, usage.shmem, usage.locked, usage.swap) == (127, 371, 2, 100, 1)


def test_a_zombie_has_no_memory_lines():
    assert parse_status(b"Name:\tx\nState:\tZ (zombie)\nThreads:\t1\n") is None


# An anonymous mapping's header line ends in a space (\x20), as the kernel writes it.
SMAPS = b"""562cf7193000-562cf7194000 rw-p 00000000 00:00 0\x20
Rss:                   4 kB
Anonymous:             4 kB
Locked:                0 kB
7f0000000000-7f0000064000 rw-p 00000000 00:00 0\x20
Rss:                 400 kB
Anonymous:           400 kB
Locked:              400 kB
7f1000000000-7f1000008000 rw-s 00000000 00:01 2049                       /dev/zero (deleted)
Rss:                  32 kB
Anonymous:             0 kB
Locked:               32 kB
7f2000000000-7f2000004000 r--s 00000000 fe:00 339380                     /tmp/data
Rss:                  16 kB
Anonymous:             0 kB
Locked:               16 kB
"""


def test_locked_pages_split_by_the_mapping_that_holds_them():
    split = parse_locked_split(SMAPS, b"00:01")
    assert (split.anon, split.shmem, split.file) == (100, 8, 4)


def test_reclaimable_ranges_are_file_backed_unless_there_is_swap():
    maps = (b"562cf718f000-562cf7190000 r-xp 00001000 fe:00 2146819   /usr/bin/memhog\n"
            b"562cf7193000-562cf7194000 rw-p 00000000 00:00 0 \n"
            b"562d3315e000-562d3317f000 rw-p 00000000 00:00 0         [heap]\n"
            b"7f1000000000-7f1000008000 rw-s 00000000 00:01 2049      /dev/zero (deleted)\n"
            b"7f038f72b000-7f038f751000 r--p 00000000 fe:00 339380    /usr/lib/libc.so.6\n"
            b"7f038f918000-7f038f91c000 r--p 00000000 00:00 0         [vvar]\n")  # fmt: skip
    assert reclaimable_ranges(maps, b"00:01", anon=False) == [
        (0x562CF718F000, PAGE_SIZE),
        (0x7F038F72B000, 0x26000),
    ]
    assert len(reclaimable_ranges(maps, b"00:01", anon=True)) == 5  # not [vvar]


def test_sysvipc_shm_columns():
    text = (b"       key      shmid perms                  size  cpid  lpid nattch   uid   gid  "
            b"cuid  cgid      atime      dtime      ctime                   rss"
            b"                  swap\n"
            b"         0          7   600                409600  1234  1234      1     0     0     "
            b"0     0 1764751000          0 1764750999                409600"
            b"                     0\n")  # fmt: skip
    (segment,) = parse_sysvipc_shm(text).values()
    assert (segment.shmid, segment.cpid, segment.nattch, segment.ctime, segment.rss) == (
        7,
        1234,
        1,
        1764750999,
        100,
    )


def test_small_parsers():
    assert parse_children(b"12 34 ") == [12, 34]
    stat = (
        b"9 (memhog) S 8 9 8 34816 9 4194304 111 0 0 0 0 0 0 0 20 0 1 0 1234 2801664 "
        b"120 18446744073709551615 94589734789120 94589734793625 140721 0 0 0 0 0 0 0 0 0"
    )
    assert image_of(stat) == (94589734789120, 94589734793625)
    assert image_of(b"") is None
    fields = stat_fields(b"42 (a) b) c) S 1 42 42 0 -1 4194560 0")
    assert fields[0] == b"S" and int(fields[9 - 3]) == 4194560
    rollup = b"Rss:  100 kB\nPrivate_Dirty:  40 kB\nAnonymous:  60 kB\n"
    assert private_anon(rollup) == 10


def test_read_at_gives_up_beyond_its_limit():
    dirfd = os.open("/proc/self", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_at(dirfd, "maps", 10) is None
        assert b"[stack]" in read_at(dirfd, "maps", 1 << 20)
        assert read_at(dirfd, "no-such-file", 10) == b""
    finally:
        os.close(dirfd)


def test_the_sampler_sleeps_without_a_timer_while_no_group_has_members():
    import math
    import signal
    import subprocess

    import trio
    import trio.testing

    from fakecgfs.controller import MemoryController
    from fakecgfs.members import RealProcesses

    def next_deadline() -> float:
        return trio.lowlevel.current_statistics().seconds_to_next_deadline

    async def main() -> None:
        async with MemoryController.open() as c, trio.open_nursery() as nursery:
            real = c.real = RealProcesses(c)
            nursery.start_soon(real.run)
            await trio.testing.wait_all_tasks_blocked()
            assert next_deadline() == math.inf  # the compactor waits on an event too
            child = subprocess.Popen(["sleep", "60"])
            pidfd = os.pidfd_open(child.pid)
            try:
                c.attach(c.create_group(c.root, "g"), child.pid, whole_process=True)
                assert child.pid in real.members
                await trio.testing.wait_all_tasks_blocked()
                assert next_deadline() < 1  # now it looks every few tens of milliseconds
            finally:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                child.wait()
                os.close(pidfd)
            real.tick()  # the look that finds it gone
            assert not real.members
            clock.jump(1)
            await trio.testing.wait_all_tasks_blocked()
            assert next_deadline() == math.inf
            nursery.cancel_scope.cancel()

    clock = trio.testing.MockClock()
    trio.run(main, clock=clock)


def test_proc_uids_are_the_real_and_saved_ones(tmp_path):
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "status").write_bytes(
        b"Name:\tsetuid-tool\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t42\n"
        b"Uid:\t1000\t0\t1001\t0\nGid:\t1000\t1000\t1000\t1000\n"
    )
    assert proc_uids(42, str(tmp_path)) == (1000, 1001)
    assert proc_uids(43, str(tmp_path)) is None  # gone
    assert proc_uids(os.getpid()) == (os.getuid(), os.getresuid()[2])


def test_proc_ids_name_the_thread_group_and_its_real_and_saved_uids(tmp_path):
    (tmp_path / "43").mkdir()  # a thread (43) of process 42, with its own credentials
    (tmp_path / "43" / "status").write_bytes(
        b"Name:\tworker\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t42\nNgid:\t0\nPid:\t43\n"
        b"Uid:\t65534\t0\t65533\t0\nGid:\t65534\t65534\t65534\t65534\n"
    )
    assert proc_ids(43, str(tmp_path)) == (42, 65534, 65533)
    assert proc_ids(44, str(tmp_path)) is None  # gone
    assert proc_ids(os.getpid()) == (os.getpid(), os.getuid(), os.getresuid()[2])
