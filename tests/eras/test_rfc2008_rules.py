"""The RFC era's rules, under a mock clock: expected values come from the patch's code.

* res_counter_init_wmark() sets limit = hwmark = lwmark = LLONG_MAX, and res_counter_write()
  refuses a limit below hwmark with the ``ret = -EINVAL`` set before parsing: the trap.
* mem_cgroup_write() starts the thread before res_counter_write() parses or checks anything,
  and does not stop it when that fails.
* The loop sleeps only in RES_BELOW_LOW; anywhere above, it reclaims and yields.
* mem_cgroup_pre_destroy() stops the thread, then force_empty.
"""

from __future__ import annotations

import errno
import functools

import pytest
import trio
import trio.testing

from fakecgfs.cgroupfs.cftypes import Caller
from fakecgfs.controller import MemoryController, PageKind
from fakecgfs.controller.errors import ControllerError
from fakecgfs.eras.rfc2008 import (
    LLONG_MAX,
    YIELD_PASS_CPU_COST,
    Member,
    ResCounter,
    ResState,
    Rfc2008Controller,
    ThreadState,
)  # fmt: skip
from fakecgfs.eras.rfc2008 import cftypes as rfc_files
from fakecgfs.eras.rfc2008.parse import parse_pid, write_strategy


class FakeProcesses:
    """A process table of made-up single-threaded processes; nothing read from /proc."""

    def __init__(self) -> None:
        self.pids: set[int] = set()

    def spawn(self, pid: int) -> None:
        self.pids.add(pid)

    def thread_alive(self, tid: int) -> bool:
        return tid in self.pids

    def thread_group(self, tid: int) -> list[int]:
        return [tid] if tid in self.pids else []

    def tgid_of(self, tid: int) -> int | None:
        return tid if tid in self.pids else None

    def all_threads(self) -> list[int]:
        return sorted(self.pids)


MiB = 1 << 20
PAGE = 4096


async def until(predicate, timeout: float = 60.0) -> None:
    """Poll ``predicate`` every 10 ms of virtual time; fail after ``timeout`` virtual seconds."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


CALLER = Caller(pid=1, uid=0, gid=0)


def mock_clock(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return trio.run(functools.partial(fn, *args, **kwargs),
                        clock=trio.testing.MockClock(autojump_threshold=0))  # fmt: skip

    return wrapper


def rfc() -> Rfc2008Controller:
    return Rfc2008Controller.open(processes=FakeProcesses())


async def write(ctl, memcg, name: str, value: bytes) -> None:
    """One write through the era's own table, as the filesystem would make it."""
    cft = rfc_files.TABLE.lookup(memcg, name)
    if cft.write_blocking is not None:
        await cft.write_blocking(ctl, memcg, value, CALLER)
    else:
        cft.write(ctl, memcg, value, CALLER)


def errno_of(exc_info) -> str:
    return errno.errorcode[exc_info.value.errno]


# -- res_counter -----------------------------------------------------------------------------------


def test_init_wmark_defaults_everything_to_llong_max():
    res = ResCounter()
    res.init_wmark()
    assert (res.limit, res.hwmark, res.lwmark) == (LLONG_MAX,) * 3 == (9223372036854775807,) * 3
    assert res.state() is ResState.RES_BELOW_LOW


def test_the_ordering_trap_and_the_only_way_out():
    res = ResCounter()
    res.init_wmark()
    with pytest.raises(ControllerError) as e:
        res.write(Member.RES_LIMIT, 64 * MiB)  # hwmark (LLONG_MAX) > new
    assert errno_of(e) == "EINVAL" and res.limit == LLONG_MAX
    with pytest.raises(ControllerError):
        res.write(Member.RES_HWMARK, 48 * MiB)  # new < lwmark (LLONG_MAX)
    res.write(Member.RES_LWMARK, 32 * MiB)
    res.write(Member.RES_HWMARK, 48 * MiB)
    res.write(Member.RES_LIMIT, 48 * MiB)  # equality allowed
    assert (res.lwmark, res.hwmark, res.limit) == (32 * MiB, 48 * MiB, 48 * MiB)


def test_state_boundaries_are_inclusive_and_never_over_limit():
    res = ResCounter()
    res.init_wmark()
    res.write(Member.RES_LWMARK, 2 * PAGE)
    res.write(Member.RES_HWMARK, 4 * PAGE)
    res.write(Member.RES_LIMIT, 8 * PAGE)
    states = [res.charge(PAGE) for _ in range(9)]
    assert states == [ResState.RES_BELOW_LOW] * 2 + [ResState.RES_BELOW_HIGH] * 2 + \
        [ResState.RES_BELOW_LIMIT] * 4 + [ResState.RES_OVER_LIMIT]  # fmt: skip
    assert res.failcnt == 1 and res.usage == 8 * PAGE
    res.limit = 4 * PAGE  # as a 2.6.26 limit write stores it, without reclaim
    assert res.usage > res.limit and res.state() is ResState.RES_BELOW_LIMIT


@pytest.mark.parametrize("text, value", [
    (b"4M\n", 4 * MiB), (b"1", PAGE), (b"0x1000", PAGE), (b"010", PAGE), (b"\n", 0),
    (b"1k", PAGE), (b"9223372036854775807", 2**63), (b"18446744073709551615", 0),
])  # fmt: skip
def test_write_strategy_of_2_6_26(text, value):
    assert write_strategy(text) == value


@pytest.mark.parametrize("text", [b" 4M", b"-1", b"4MB", b"1T", b"0x", b"max", b"4 M"])
def test_write_strategy_refuses(text):
    with pytest.raises(ControllerError) as e:
        write_strategy(text)
    assert errno_of(e) == "EINVAL"


def test_tasks_pid_parse_is_sscanf_with_eio():
    assert parse_pid(b" 42\n") == 42 and parse_pid(b"7abc") == 7
    with pytest.raises(ControllerError) as e:
        parse_pid(b"abc")
    assert errno_of(e) == "EIO"


# -- the controller: the trap through the table ----------------------------------------------------


@mock_clock
async def test_a_fresh_groups_limit_write_fails_with_einval():
    async with rfc() as ctl:
        g = ctl.create_group(ctl.root, "g")
        with pytest.raises(ControllerError) as e:
            await write(ctl, g, "memory.limit_in_bytes", b"64M\n")
        assert errno_of(e) == "EINVAL"
        assert rfc_files.TABLE.lookup(g, "memory.limit_in_bytes").read(ctl, g) == f"{LLONG_MAX}\n"
        for name, value in (("memory.low_wmark_in_bytes", b"32M"),
                            ("memory.high_wmark_in_bytes", b"48M"),
                            ("memory.limit_in_bytes", b"64M")):  # fmt: skip
            await write(ctl, g, name, value)
        assert g.res.limit == 64 * MiB


# -- memcontd --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"48M", b"junk", b"-1"])
@mock_clock
async def test_an_invalid_high_wmark_write_starts_the_thread_and_leaves_it_running(value):
    async with rfc() as ctl:
        g = ctl.create_group(ctl.root, "g")
        assert g.reclaim_task.state is ThreadState.STOPPED and ctl.reclaim_tasks() == []
        with pytest.raises(ControllerError) as e:
            await write(ctl, g, "memory.high_wmark_in_bytes", value)  # 48M < lwmark LLONG_MAX
        assert errno_of(e) == "EINVAL" and g.res.hwmark == LLONG_MAX
        await until(lambda: g.reclaim_task.state is ThreadState.SLEEPING)  # it starts, then sleeps
        assert ctl.reclaim_tasks() == [g]
        assert rfc_files.read_daemons(ctl, ctl.root) == "1\n/g\n"


@mock_clock
async def test_low_and_limit_writes_never_start_the_thread():
    async with rfc() as ctl:
        g = ctl.create_group(ctl.root, "g")
        await write(ctl, g, "memory.low_wmark_in_bytes", b"8M")
        with pytest.raises(ControllerError):
            await write(ctl, g, "memory.limit_in_bytes", b"8M")
        assert ctl.reclaim_tasks() == []


async def _between_watermarks(ctl, g, *, repaired: bool) -> None:
    """12 MiB of anonymous memory, no swap (nothing reclaimable), then watermarks 16 MiB / 8 MiB:
    usage sits between them and was never pushed above the high one by a charge."""
    await ctl.charge(g, 12 * MiB // PAGE, PageKind.ANON)
    if repaired:
        await ctl.set_high_wmark(g, 16 * MiB // PAGE)
        ctl.set_low_wmark(g, 8 * MiB // PAGE)
    else:
        await write(ctl, g, "memory.low_wmark_in_bytes", b"8M")
        await write(ctl, g, "memory.high_wmark_in_bytes", b"16M")


@mock_clock
async def test_the_yield_loop_burns_cpu_between_the_watermarks():
    async with rfc() as ctl:
        g = ctl.create_group(ctl.root, "g")
        await _between_watermarks(ctl, g, repaired=False)
        assert g.res.state() is ResState.RES_BELOW_HIGH
        await until(lambda: g.reclaim_task.stats.passes > 0)  # it is in its loop
        before, t0, cpu0 = (
            g.reclaim_task.stats.passes,
            trio.current_time(),
            g.reclaim_task.time_running_now(),
        )
        await trio.sleep(10.0)
        passes = g.reclaim_task.stats.passes - before
        elapsed = trio.current_time() - t0
        # Never asleep above lwmark: on the CPU all the time, one pass per YIELD_PASS_CPU_COST.
        assert g.reclaim_task.state is ThreadState.RUNNING
        assert g.reclaim_task.time_running_now() - cpu0 == pytest.approx(elapsed)
        assert passes / elapsed == pytest.approx(1 / YIELD_PASS_CPU_COST, rel=0.02)
        stats = g.reclaim_task.stats
        assert stats.no_progress_passes == stats.passes  # nothing reclaimable
        assert g.res.usage == 12 * MiB and g.reclaim_task.stats.wakeups == 0


@mock_clock
async def test_the_repaired_task_does_not_run_between_the_watermarks():
    async with MemoryController.open(processes=FakeProcesses()) as ctl:
        g = ctl.create_group(ctl.root, "g")
        await _between_watermarks(ctl, g, repaired=True)
        before = g.reclaim_task.stats.passes
        await trio.sleep(10.0)
        assert g.reclaim_task.stats.passes - before == 0
        assert g.reclaim_task.stats.time_running == 0.0 and g.reclaim_task.state.value == "sleeping"


@mock_clock
async def test_a_charge_above_hwmark_wakes_it_and_it_sleeps_at_lwmark():
    async with rfc() as ctl:
        g = ctl.create_group(ctl.root, "g")
        for name, value in (("memory.low_wmark_in_bytes", b"8M"),
                            ("memory.high_wmark_in_bytes", b"16M")):  # fmt: skip
            await write(ctl, g, name, value)
        await ctl.charge(g, 16 * MiB // PAGE, PageKind.FILE)  # == hwmark: BELOW_HIGH, no wake
        await trio.sleep(1)
        assert g.reclaim_task.stats.wakeups == 0 and g.reclaim_task.stats.passes == 0
        await ctl.charge(g, 1, PageKind.FILE)  # above hwmark: wake
        await until(
            lambda: g.reclaim_task.state is ThreadState.SLEEPING and g.reclaim_task.stats.wakeups
        )
        assert g.reclaim_task.stats.wakeups == 1 and g.res.usage <= 8 * MiB
        assert g.reclaim_task.stats.passes > 0


@mock_clock
async def test_uncharge_and_watermark_writes_never_wake_it():
    async with rfc() as ctl:
        g = ctl.create_group(ctl.root, "g")
        await write(ctl, g, "memory.low_wmark_in_bytes", b"32M")
        await write(ctl, g, "memory.high_wmark_in_bytes", b"32M")
        await ctl.charge(g, 24 * MiB // PAGE, PageKind.FILE)
        await write(ctl, g, "memory.low_wmark_in_bytes", b"8M")  # now between: still asleep
        await trio.sleep(5)
        assert g.reclaim_task.state is ThreadState.SLEEPING and g.reclaim_task.stats.passes == 0


@mock_clock
async def test_rmdir_stops_the_thread_before_force_empty():
    async with rfc() as ctl:
        g = ctl.create_group(ctl.root, "g")
        await _between_watermarks(ctl, g, repaired=False)
        await until(lambda: g.reclaim_task.state is ThreadState.RUNNING)
        ctl.remove_group_now(g)
        passes = g.reclaim_task.stats.passes
        assert not g.reclaim_task.is_running() and g.reclaim_task.state is ThreadState.STOPPED
        assert g.res.usage == 0 and ctl.reclaim_tasks() == []  # force_empty dropped the accounting
        await trio.sleep(5)
        assert g.reclaim_task.stats.passes == passes


@mock_clock
async def test_rmdir_refuses_a_group_with_tasks_and_keeps_the_thread():
    processes = FakeProcesses()
    processes.spawn(100)
    async with Rfc2008Controller.open(processes=processes) as ctl:
        g = ctl.create_group(ctl.root, "g")
        with pytest.raises(ControllerError):
            await write(ctl, g, "memory.high_wmark_in_bytes", b"1M")  # EINVAL, thread started
        ctl.attach(g, 100)
        with pytest.raises(ControllerError) as e:
            ctl.remove_group_now(g)
        assert errno_of(e) == "EBUSY" and g.reclaim_task.is_running()


# -- the trace -----------------------------------------------------------------------------------


@mock_clock
async def test_trace_samples_carry_the_default_mounts_fields():
    from fakecgfs.controller import EventKind
    from fakecgfs.eras.rfc2008 import sample_values
    from fakecgfs.trace import SCHEMA, Sampler

    async with rfc() as ctl:
        g = ctl.create_group(ctl.root, "g")
        await write(ctl, g, "memory.low_wmark_in_bytes", b"8M")
        events = []
        ctl.subscribe(events.append)
        assert Sampler(ctl, sample_values).sample() == 2  # the root and g
        sample = next(e for e in events if e.group == "/g")
        expected = {name for name, _, _ in SCHEMA[EventKind.SAMPLE].fields}
        assert set(sample.values) == expected
        assert sample.values == {"usage": 0, "limit": None, "hwmark": None, "lwmark": 8 * MiB,
                                 "failcnt": 0, "oom_kill": 0, "state": "stopped"}  # fmt: skip


# -- the 2.6.26 charge path ------------------------------------------------------------------------


async def _limited(ctl, limit: bytes):
    g = ctl.create_group(ctl.root, "g")
    for name, value in (("memory.low_wmark_in_bytes", limit), ("memory.high_wmark_in_bytes", limit),
                        ("memory.limit_in_bytes", limit)):  # fmt: skip
        await write(ctl, g, name, value)
    return g


@mock_clock
async def test_nothing_reclaimable_fails_after_five_retries():
    """`if (!nr_retries--)` with MEM_CGROUP_RECLAIM_RETRIES 5: six refused attempts, then OOM."""
    async with rfc() as ctl:
        g = await _limited(ctl, b"1M")
        with pytest.raises(ControllerError) as e:
            await ctl.charge(g, 2 * MiB // PAGE, PageKind.ANON)
        assert errno_of(e) == "ENOMEM"
        assert g.res.failcnt == 6 and g.oom_kill == 1
        assert g.res.usage == 0 and g.res.max_usage == 1 * MiB  # the request's pages were freed


@mock_clock
async def test_direct_reclaim_makes_room_for_page_cache():
    async with rfc() as ctl:
        g = await _limited(ctl, b"1M")
        await ctl.charge(g, 1 * MiB // PAGE, PageKind.FILE)
        await ctl.charge(g, 1 * MiB // PAGE, PageKind.FILE)
        assert g.res.failcnt >= 1 and g.res.usage <= 1 * MiB
        assert dict(ctl.memory_stat(g))["pgpgin"] == 2 * MiB // PAGE


@mock_clock
async def test_memory_stat_force_empty_and_uncharge():
    processes = FakeProcesses()
    processes.spawn(100)
    async with Rfc2008Controller.open(processes=processes) as ctl:
        g = ctl.create_group(ctl.root, "g")
        await ctl.charge(g, 3, PageKind.ANON)
        await ctl.charge(g, 2, PageKind.FILE)
        assert ctl.uncharge(g, 1, PageKind.ANON) == 1
        assert rfc_files.read_stat(ctl, g) == (
            f"cache {2 * PAGE}\nrss {2 * PAGE}\npgpgin 5\npgpgout 1\nactive 0\n"
            f"inactive {4 * PAGE}\n")  # fmt: skip
        ctl.attach(g, 100)
        with pytest.raises(ControllerError) as e:
            await write(ctl, g, "memory.force_empty", b"0")
        assert errno_of(e) == "EBUSY"
        processes.pids.discard(100)
        await write(ctl, g, "memory.force_empty", b"0")
        assert g.res.usage == 0 and dict(ctl.memory_stat(g))["pgpgout"] == 5


@mock_clock
async def test_lookup_and_rename_are_cgroup_cores():
    """The tree is cgroup core's in 2.6.26 as in 6.18: a rename stays in its parent, keeps the
    group's children and state, refuses a sibling's name (EEXIST) and the root (EBUSY)."""
    async with rfc() as ctl:
        a = ctl.create_group(ctl.root, "a")
        b = ctl.create_group(a, "b")
        ctl.create_group(ctl.root, "z")
        await write(ctl, a, "memory.low_wmark_in_bytes", b"1M")
        events = []
        ctl.subscribe(events.append)
        ctl.rename_group(a, "renamed")
        assert ctl.lookup("/renamed") is a and ctl.lookup("renamed/b/") is b
        assert b.path == "/renamed/b" and a.res.lwmark == 1 * MiB
        assert [(e.group, e.values) for e in events] == [
            ("/renamed", {"action": "renamed", "old": "/a"})
        ]
        ctl.rename_group(a, "renamed")  # to its own name: nothing happens
        assert len(events) == 1
        for group, name, error in ((a, "z", "EEXIST"), (ctl.root, "x", "EBUSY")):
            with pytest.raises(ControllerError) as e:
                ctl.rename_group(group, name)
            assert errno_of(e) == error
        with pytest.raises(ControllerError) as e:
            ctl.lookup("/a")
        assert errno_of(e) == "ENOENT"
        ctl.unsubscribe(events.append)
        ctl.create_group(ctl.root, "later")
        assert len(events) == 1
