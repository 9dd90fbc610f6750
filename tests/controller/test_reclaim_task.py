"""The background reclaim task (the RFC's memcontd): start, sleep, wake, reclaim, back off, stop."""

from __future__ import annotations

import errno

import pytest
import trio

from fakecgfs.controller import (
    PAGE_SIZE,
    ControllerError,
    EventKind,
    MemoryController,
    PageKind,
    ReclaimTask,
    ReclaimTaskState,
    ReclaimTaskStats,
)  # fmt: skip
from fakecgfs.controller.constants import (
    NO_PROGRESS_PASSES,
    SWAP_CLUSTER_MAX,
)  # fmt: skip

from .conftest import (
    EventLog,
    FakeProcesses,
    MiB,
    controller,
    kernel_overhead,
    pages,
    trio_test,
    user_usage,
    wait_for,
)  # fmt: skip


def sleeping(g) -> bool:
    return g.reclaim_task.state is ReclaimTaskState.SLEEPING


async def seed_group(c: MemoryController, name: str = "g", *, high: int = 48 * MiB,
                     low: int | None = 32 * MiB):  # fmt: skip
    """limit 64M, high 48M, low 32M (the seed scenario's settings), task asleep.

    The high write starts the task, which returns asleep; the low write then wakes it once to
    re-evaluate (so stats.wakeups is 1 with a low watermark, 0 without)."""
    g = c.create_group(c.root, name)
    await c.set_limit(g, pages(64 * MiB))
    await c.set_high_wmark(g, pages(high))
    assert sleeping(g) and g.reclaim_task.stats.wakeups == 0
    if low is not None:
        c.set_low_wmark(g, pages(low))
        await wait_for(lambda: g.reclaim_task.stats.wakeups == 1 and sleeping(g))
    return g


# -- the seed scenario -------------------------------------------------------------------------


@trio_test
async def test_seed_scenario_reclaims_to_the_low_watermark_and_sleeps():
    async with controller() as c:
        g = await seed_group(c)
        await c.charge(g, pages(60 * MiB), PageKind.FILE)
        assert g.memory.failcnt == 0  # it fitted under the limit: no direct reclaim
        await wait_for(lambda: g.reclaim_task.stats.passes > 0 and sleeping(g))
        assert g.memory.usage <= pages(32 * MiB)
        assert g.memory.usage > pages(32 * MiB) - 4 * SWAP_CLUSTER_MAX  # stopped near it
        stats = g.reclaim_task.stats
        assert stats.wakeups == 2  # the low-watermark write, then the charge
        assert stats.pages_reclaimed * PAGE_SIZE >= 60 * MiB - 32 * MiB
        assert stats.pages_reclaimed == pages(60 * MiB) - g.memory.usage
        assert stats.passes * SWAP_CLUSTER_MAX <= stats.pages_reclaimed + SWAP_CLUSTER_MAX
        assert stats.pages_scanned >= stats.pages_reclaimed
        assert stats.no_progress_passes == 0 and stats.last_warning == ""
        assert g.memory.failcnt == 0


# -- starting ----------------------------------------------------------------------------------


@trio_test
async def test_task_starts_only_on_a_successful_high_write():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(64 * MiB))
        assert not g.reclaim_task.is_running() and c.reclaim_tasks() == []
        with pytest.raises(ControllerError):
            await c.set_high_wmark(g, pages(128 * MiB))  # above the limit
        await trio.sleep(1)
        assert not g.reclaim_task.is_running() and g.reclaim_task.state is ReclaimTaskState.STOPPED
        assert c.reclaim_tasks() == []
        c.set_low_wmark(g, pages(16 * MiB))  # a low watermark alone starts nothing
        await c.set_limit(g, pages(32 * MiB))
        assert c.reclaim_tasks() == []
        await c.set_high_wmark(g, pages(24 * MiB))
        assert g.reclaim_task.is_running() and c.reclaim_tasks() == [g]
        await wait_for(lambda: sleeping(g))


@trio_test
async def test_start_reclaim_task_without_a_high_watermark_is_einval():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        with pytest.raises(ControllerError) as exc:
            await c.start_reclaim_task(g)
        assert exc.value.errno == errno.EINVAL
        assert not g.reclaim_task.is_running()


@trio_test
async def test_start_reclaim_task_is_idempotent_and_restarts_after_stop():
    async with controller() as c:
        g = await seed_group(c)
        await c.start_reclaim_task(g)
        await c.start_reclaim_task(g)
        assert c.reclaim_tasks() == [g]
        await c.stop_reclaim_task(g)
        assert g.reclaim_task.state is ReclaimTaskState.STOPPED and c.reclaim_tasks() == []
        await c.stop_reclaim_task(g)  # stopping a stopped task is fine
        await c.start_reclaim_task(g)  # the watermarks are still armed
        await wait_for(lambda: sleeping(g))
        assert c.reclaim_tasks() == [g]


@trio_test
async def test_start_reclaim_task_needs_a_running_controller():
    c = MemoryController(processes=FakeProcesses())
    g = c.create_group(c.root, "g")
    g.memory.set_hwmark(100)
    with pytest.raises(ControllerError) as exc:
        await c.start_reclaim_task(g)
    assert exc.value.errno == errno.ENODEV


@trio_test
async def test_closing_the_controller_stops_every_task():
    async with controller() as c:
        a = await seed_group(c, "a")
        b = await seed_group(c, "b")
        assert c.reclaim_tasks() == [a, b]
    assert a.reclaim_task.state is b.reclaim_task.state is ReclaimTaskState.STOPPED


# -- sleeping and waking -----------------------------------------------------------------------


@trio_test
async def test_an_idle_task_never_wakes():
    async with controller() as c:
        g = await seed_group(c)
        await c.charge(g, pages(40 * MiB), PageKind.FILE)  # between low and high
        before = (g.reclaim_task.stats.wakeups, g.reclaim_task.stats.passes)
        await trio.sleep(1000)
        assert (g.reclaim_task.stats.wakeups, g.reclaim_task.stats.passes) == before == (1, 0)
        assert sleeping(g) and g.memory.usage == pages(40 * MiB)


@trio_test
async def test_a_charge_crossing_high_wakes_the_task():
    async with controller() as c:
        g = await seed_group(c)
        await c.charge(g, pages(48 * MiB), PageKind.FILE)  # == high: not above it
        await trio.sleep(1)
        assert g.reclaim_task.stats.wakeups == 1  # only seed_group's low-watermark write
        await c.charge(g, 1, PageKind.FILE)
        await wait_for(lambda: g.reclaim_task.stats.passes > 0 and sleeping(g))
        assert g.reclaim_task.stats.wakeups == 2
        assert g.memory.usage <= pages(32 * MiB)


@trio_test
async def test_lowering_high_below_usage_wakes_the_task():
    async with controller() as c:
        g = await seed_group(c, low=None)
        await c.charge(g, pages(40 * MiB), PageKind.FILE)
        await trio.sleep(10)
        assert g.reclaim_task.stats.wakeups == 0
        await c.set_high_wmark(g, pages(24 * MiB))
        await wait_for(lambda: g.reclaim_task.stats.passes > 0 and sleeping(g))
        assert g.reclaim_task.stats.wakeups == 1
        assert g.memory.usage <= g.memory.lwmark < pages(24 * MiB)


@trio_test
async def test_limit_and_low_writes_make_the_task_re_evaluate():
    async with controller() as c:
        g = await seed_group(c)
        await c.charge(g, pages(40 * MiB), PageKind.FILE)
        await c.set_limit(g, pages(60 * MiB))
        await trio.sleep(1)
        stats = g.reclaim_task.stats
        assert stats.wakeups == 2 and stats.passes == 0  # not above high
        c.set_low_wmark(g, pages(16 * MiB))
        await trio.sleep(1)
        assert g.reclaim_task.stats.wakeups == 3 and g.reclaim_task.stats.passes == 0
        assert sleeping(g)


@trio_test
async def test_a_charge_wakes_an_ancestor_above_its_high_watermark():
    async with controller() as c:
        parent = c.create_group(c.root, "parent")
        child = c.create_group(parent, "child")
        await c.set_high_wmark(parent, pages(16 * MiB))
        await wait_for(lambda: sleeping(parent))
        await c.charge(child, pages(20 * MiB), PageKind.FILE)
        await wait_for(lambda: parent.reclaim_task.stats.passes > 0 and sleeping(parent))
        assert parent.reclaim_task.stats.wakeups == 1
        assert parent.memory.usage <= parent.memory.lwmark
        assert child.lruvec.resident() == user_usage(parent)  # reclaimed from the child's lists
        # The kernel memory batch for the child cannot be reclaimed, and the task leaves it be.
        assert kernel_overhead(parent) == 64 and parent.kmem.usage == 3
        assert not child.reclaim_task.is_running()


@trio_test
async def test_wake_from_charge_only_wakes_a_sleeping_task():
    async with controller() as c:
        g = await seed_group(c)
        g.reclaim_task.wake_from_charge()  # sleeping: woken, finds nothing to do, sleeps again
        await trio.sleep(1)
        assert g.reclaim_task.stats.wakeups == 2 and sleeping(g)  # seed_group's low write, and this
        await c.stop_reclaim_task(g)
        g.reclaim_task.wake_from_charge()  # stopped: nothing happens
        g.reclaim_task.kick()
        assert (
            g.reclaim_task.state is ReclaimTaskState.STOPPED and g.reclaim_task.stats.wakeups == 2
        )


@trio_test
async def test_uncharge_kicks_a_backing_off_task_to_sleep():
    async with controller() as c:
        g = await seed_group(c)
        await c.charge(g, pages(50 * MiB), PageKind.ANON)
        await wait_for(lambda: g.reclaim_task.state is ReclaimTaskState.BACKOFF)
        await trio.sleep(30)  # well into a long back-off
        c.uncharge(g, pages(20 * MiB), PageKind.ANON)  # now under the low watermark
        await wait_for(lambda: sleeping(g), timeout=0.05)  # at once, not after the back-off


@trio_test
async def test_frees_do_not_wake_a_sleeping_task():
    async with controller() as c:
        g = await seed_group(c)
        await c.charge(g, pages(40 * MiB), PageKind.FILE)
        for _ in range(100):
            c.uncharge(g, 1, PageKind.FILE)  # usage only falls: nothing for the task to do
        await trio.sleep(10)
        assert g.reclaim_task.stats.wakeups == 1 and sleeping(g)  # seed_group's low write only


# -- stopping ----------------------------------------------------------------------------------


@trio_test
async def test_stop_is_synchronous():
    async with controller() as c:
        g = await seed_group(c)
        await c.stop_reclaim_task(g)
        assert g.reclaim_task.state is ReclaimTaskState.STOPPED
        assert not g.reclaim_task.is_running() and c.reclaim_tasks() == []


@trio_test
async def test_rmdir_stops_a_sleeping_task_synchronously():
    async with controller() as c:
        g = await seed_group(c)
        await c.remove_group(g)
        assert g.reclaim_task.state is ReclaimTaskState.STOPPED and g.removed
        assert c.reclaim_tasks() == []


@trio_test
async def test_rmdir_while_running_returns_after_the_task_exited():
    async with controller(reclaim_rate=1 * MiB) as c:  # slow: a pass every ~0.2 virtual s
        g = await seed_group(c)
        log = EventLog()
        c.subscribe(log)
        await c.charge(g, pages(60 * MiB), PageKind.FILE)
        await wait_for(lambda: g.reclaim_task.stats.passes >= 3)
        assert g.reclaim_task.state is ReclaimTaskState.RUNNING
        usage = c.root.memory.usage
        await c.remove_group(g)
        assert g.reclaim_task.state is ReclaimTaskState.STOPPED and c.reclaim_tasks() == []
        kinds = [(e.kind, e.values.get("state") or e.values.get("action")) for e in log.events
                 if e.group == "/g"
                 and e.kind in (EventKind.DAEMON_STATE, EventKind.GROUP)]  # fmt: skip
        assert kinds[-2:] == [(EventKind.DAEMON_STATE, "stopped"), (EventKind.GROUP, "removed")]
        passes = g.reclaim_task.stats.passes
        await trio.sleep(100)
        assert g.reclaim_task.stats.passes == passes  # nothing ran after rmdir returned
        assert c.root.memory.usage == usage  # the remaining pages went to the root


@trio_test
async def test_concurrent_stops_all_wait_for_the_exit():
    async with controller(reclaim_rate=1 * MiB) as c:
        g = await seed_group(c)
        await c.charge(g, pages(60 * MiB), PageKind.FILE)
        await wait_for(lambda: g.reclaim_task.state is ReclaimTaskState.RUNNING)
        states: list[ReclaimTaskState] = []

        async def stop_then_look(stop):
            await stop(g)
            states.append(g.reclaim_task.state)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_then_look, c.stop_reclaim_task)
            nursery.start_soon(stop_then_look, c.remove_group)
        assert states == [ReclaimTaskState.STOPPED, ReclaimTaskState.STOPPED]
        assert g.removed


def slow_to_exit(reclaim_task: ReclaimTask) -> None:
    """Make ``ReclaimTask.stop()`` return a (virtual) second after the task exited: the window in
    which rmdir waits for the exit, wide enough for another operation to run in it."""
    stop = reclaim_task.stop

    async def slow_stop() -> None:
        await stop()
        await trio.sleep(1)

    reclaim_task.stop = slow_stop


@trio_test
async def test_a_watermark_write_during_rmdir_cannot_restart_the_task():
    """Issue 5: rmdir waited for the task's exit before removing the group, and a high
    watermark write landing in that wait started a new task, which then outlived its group."""
    async with controller() as c:
        g = await seed_group(c)
        slow_to_exit(g.reclaim_task)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(c.remove_group, g)
            await trio.sleep(0.5)  # rmdir is waiting for the task to exit
            with pytest.raises(ControllerError) as refused:
                await c.set_high_wmark(g, pages(56 * MiB))
            assert refused.value.errno == errno.ENODEV  # as any write to a removed group
        assert (
            g.removed
            and not g.reclaim_task.is_running()
            and g.reclaim_task.state is ReclaimTaskState.STOPPED
        )
        await trio.sleep(10)
        assert not g.reclaim_task.is_running() and c.reclaim_tasks() == []


@trio_test
async def test_a_charge_during_rmdir_cannot_leave_an_armed_group_without_its_task():
    """rmdir stopped the task, then failed with EBUSY if a charge had arrived in the wait,
    leaving the group armed with no task.  Now nothing arrives once its checks have passed."""
    async with controller() as c:
        g = await seed_group(c)
        c.set_oom_kill_disable(g, True)
        slow_to_exit(g.reclaim_task)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(c.remove_group, g)
            await trio.sleep(0.5)
            with pytest.raises(ControllerError) as refused:
                await c.charge(g, pages(100 * MiB))  # would sleep in OOM: a task of the group
            assert refused.value.errno == errno.ENOENT
        assert g.removed and c.reclaim_tasks() == []


# -- no progress and back-off ------------------------------------------------------------------


@trio_test
async def test_no_progress_backs_off_with_a_warning_and_bounded_passes():
    async with controller() as c:
        g = await seed_group(c)
        log = EventLog()
        c.subscribe(log)
        await c.charge(g, pages(50 * MiB), PageKind.ANON)  # no swap: nothing is reclaimable
        await wait_for(lambda: g.reclaim_task.state is ReclaimTaskState.BACKOFF)
        stats = g.reclaim_task.stats
        assert stats.passes == stats.no_progress_passes == NO_PROGRESS_PASSES
        assert "backing off" in stats.last_warning
        [warning] = log.of(EventKind.WARNING, "/g")
        assert warning.values["message"] == stats.last_warning
        t0, passes0 = trio.current_time(), stats.passes
        await trio.sleep(60)
        assert stats.passes - passes0 < 20  # a few per minute, not a spin
        assert stats.passes > passes0
        assert len(log.of(EventKind.WARNING, "/g")) == 1  # warned once per episode
        assert g.memory.usage == pages(50 * MiB)
        # Back-off intervals: the time from each BACKOFF to the next RUNNING.
        backoffs, entered = [], None
        for e in log.of(EventKind.DAEMON_STATE, "/g"):
            if e.values["state"] == "backoff":
                entered = e.time
            elif e.values["state"] == "running" and entered is not None:
                backoffs.append(e.time - entered)
                entered = None
        # The documented schedule (README, "back off exponentially"): 0.1 s, doubling, at
        # most 10 s; written out, not computed from the constants under test.
        documented = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4]
        assert len(backoffs) >= 9
        expected = documented + [10.0] * (len(backoffs) - len(documented))
        assert backoffs == pytest.approx(expected, abs=1e-6)
        assert trio.current_time() - t0 == pytest.approx(60)


@trio_test
async def test_a_charge_does_not_cut_a_back_off_short():
    async with controller() as c:
        g = await seed_group(c)
        await c.charge(g, pages(50 * MiB), PageKind.ANON)
        await wait_for(lambda: g.reclaim_task.state is ReclaimTaskState.BACKOFF)
        await trio.sleep(30)  # well into the back-off doubling
        passes = g.reclaim_task.stats.passes
        for _ in range(100):
            await c.charge(g, 1, PageKind.ANON)
        assert (
            g.reclaim_task.state is ReclaimTaskState.BACKOFF
            and g.reclaim_task.stats.passes == passes
        )


@trio_test
async def test_with_swap_anon_pages_are_swapped_out():
    async with controller(swap_bytes=64 * MiB) as c:
        g = await seed_group(c)
        await c.charge(g, pages(50 * MiB), PageKind.ANON)
        await wait_for(lambda: g.reclaim_task.stats.passes > 0 and sleeping(g))
        assert g.memory.usage <= pages(32 * MiB)
        assert g.memsw.usage == pages(50 * MiB)  # swap-out moves pages, memsw keeps them
        assert g.lruvec.swapped == c.swap.used == pages(50 * MiB) - g.memory.usage
        assert g.reclaim_task.stats.no_progress_passes == 0


@trio_test
async def test_adding_swap_wakes_a_backing_off_task():
    async with controller() as c:
        g = await seed_group(c)
        await c.charge(g, pages(50 * MiB), PageKind.ANON)
        await wait_for(lambda: g.reclaim_task.state is ReclaimTaskState.BACKOFF)
        await trio.sleep(30)
        c.set_swap_size(pages(64 * MiB))
        await wait_for(lambda: sleeping(g), timeout=0.05)  # woken at once, not at back-off end
        assert g.memory.usage <= pages(32 * MiB) and c.swap.used > 0


# -- write-time warnings -----------------------------------------------------------------------


@trio_test
async def test_a_gap_under_one_batch_warns():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        log = EventLog()
        c.subscribe(log)
        await c.set_high_wmark(g, pages(48 * MiB))
        assert log.of(EventKind.WARNING) == []  # the default gap is at least one batch
        c.set_low_wmark(g, pages(48 * MiB) - SWAP_CLUSTER_MAX)  # exactly one batch: fine
        assert log.of(EventKind.WARNING) == []
        c.set_low_wmark(g, pages(48 * MiB) - SWAP_CLUSTER_MAX + 1)
        [w] = log.of(EventKind.WARNING, "/g")
        assert (
            "gap" in w.values["message"]
            and g.reclaim_task.stats.last_warning == w.values["message"]
        )


@trio_test
async def test_a_low_watermark_below_unreclaimable_anon_warns():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, pages(20 * MiB), PageKind.ANON)
        await c.charge(g, pages(20 * MiB), PageKind.FILE)
        log = EventLog()
        c.subscribe(log)
        await c.set_high_wmark(g, pages(48 * MiB))
        c.set_low_wmark(g, pages(20 * MiB))  # == the anon: reachable
        assert log.of(EventKind.WARNING) == []
        c.set_low_wmark(g, pages(16 * MiB))
        [w] = log.of(EventKind.WARNING, "/g")
        assert "cannot be reclaimed" in w.values["message"]


@trio_test
async def test_no_unreclaimable_warning_with_swap():
    async with controller(swap_bytes=64 * MiB) as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, pages(20 * MiB), PageKind.ANON)
        log = EventLog()
        c.subscribe(log)
        await c.set_high_wmark(g, pages(48 * MiB))
        c.set_low_wmark(g, pages(16 * MiB))
        assert log.of(EventKind.WARNING) == []
        assert c.unreclaimable_pages(g) == 0


@trio_test
async def test_unreclaimable_pages():
    async with controller() as c:
        a = c.create_group(c.root, "a")
        b = c.create_group(a, "b")
        await c.charge(a, 100, PageKind.ANON)
        await c.charge(b, 50, PageKind.ANON)
        await c.charge(b, 70, PageKind.FILE)
        assert c.unreclaimable_pages(a) == 150  # no swap: all anon, subtree included
        c.set_swap_size(1000)
        assert c.unreclaimable_pages(a) == 0
        b.swappiness = 0
        assert c.unreclaimable_pages(a) == 50  # only the group that refuses to swap


@trio_test
async def test_warn_records_and_emits():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        log = EventLog()
        c.subscribe(log)
        await trio.sleep(3)
        g.reclaim_task.warn("hello")
        assert g.reclaim_task.stats.last_warning == "hello"
        [e] = log.of(EventKind.WARNING)
        assert (e.time, e.group, e.values) == (3.0, "/g", {"message": "hello"})


# -- pace ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [4 * MiB, 16 * MiB, 64 * MiB])
@trio_test
async def test_reclaim_rate_paces_high_to_low(rate):
    async with controller(reclaim_rate=rate) as c:
        g = await seed_group(c)
        await c.charge(g, pages(48 * MiB) + 1, PageKind.FILE)  # just above high
        t0 = trio.current_time()
        await wait_for(lambda: g.reclaim_task.stats.passes > 0 and sleeping(g), step=0.001)
        elapsed = trio.current_time() - t0
        expected = (48 * MiB - 32 * MiB) / rate
        assert elapsed == pytest.approx(expected, rel=0.05)
        assert g.reclaim_task.stats.time_running == pytest.approx(elapsed, abs=0.002)


@trio_test
async def test_pace_background_reclaim():
    async with controller() as c:
        t0 = trio.current_time()
        await c.pace_background_reclaim(1000)
        assert trio.current_time() == t0  # full speed: only a checkpoint
    async with controller(reclaim_rate=PAGE_SIZE * 100) as c:
        t0 = trio.current_time()
        await c.pace_background_reclaim(200)
        assert trio.current_time() - t0 == pytest.approx(2.0)
        t0 = trio.current_time()
        await c.pace_background_reclaim(0)  # at least one batch's worth of time
        assert trio.current_time() - t0 == pytest.approx(SWAP_CLUSTER_MAX / 100)


# -- statistics and events -------------------------------------------------------------------


@trio_test
async def test_stats_survive_stop_and_start():
    async with controller() as c:
        g = await seed_group(c)
        await c.charge(g, pages(60 * MiB), PageKind.FILE)
        await wait_for(lambda: g.reclaim_task.stats.passes > 0 and sleeping(g))
        passes = g.reclaim_task.stats.passes
        await c.stop_reclaim_task(g)
        await c.start_reclaim_task(g)
        await wait_for(lambda: sleeping(g))
        assert g.reclaim_task.stats.passes == passes


@trio_test
async def test_reclaim_task_state_events():
    async with controller() as c:
        log = EventLog()
        c.subscribe(log)
        g = await seed_group(c)
        await c.charge(g, pages(60 * MiB), PageKind.FILE)
        await wait_for(lambda: g.reclaim_task.stats.passes > 0 and sleeping(g))
        await c.stop_reclaim_task(g)
        states = [(e.values["previous"], e.values["state"])
                  for e in log.of(EventKind.DAEMON_STATE, "/g")]  # fmt: skip
        assert states == [("stopped", "sleeping"), ("sleeping", "running"),
                          ("running", "sleeping"), ("sleeping", "stopped")]  # fmt: skip
        running = log.of(EventKind.DAEMON_STATE, "/g")[1]
        assert running.values["usage"] == 60 * MiB
        reclaims = [e for e in log.of(EventKind.RECLAIM, "/g") if e.values["cause"] == "background"]
        assert len(reclaims) == g.reclaim_task.stats.passes
        assert sum(e.values["reclaimed"] for e in reclaims) == g.reclaim_task.stats.pages_reclaimed


def test_reclaim_task_stats_defaults():
    s = ReclaimTaskStats()
    assert (s.wakeups, s.passes, s.pages_scanned, s.pages_reclaimed, s.no_progress_passes) == (
        0,
    ) * 5
    assert s.time_running == 0.0 and s.last_warning == ""


def test_reclaim_task_state_values():
    assert [s.value for s in ReclaimTaskState] == ["stopped", "sleeping", "running", "backoff"]


@trio_test
async def test_reclaim_task_direct_use():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        d = ReclaimTask(c, g)
        assert d.state is ReclaimTaskState.STOPPED and not d.is_running()
        g.memory.set_hwmark(100)
        async with trio.open_nursery() as nursery:
            await d.start(nursery)
            await d.start(nursery)  # idempotent
            assert d.is_running()
            await wait_for(lambda: d.state is ReclaimTaskState.SLEEPING)
            d.kick()
            await trio.sleep(0.1)
            assert d.stats.wakeups == 1
            await d.stop()
            assert d.state is ReclaimTaskState.STOPPED and not d.is_running()


@trio_test
async def test_cancel_stops_at_once_and_the_task_never_runs_again():
    async with controller(reclaim_rate=1 * MiB) as c:  # slow: a pass every ~0.2 virtual s
        g = await seed_group(c)
        await c.charge(g, pages(60 * MiB), PageKind.FILE)
        await wait_for(lambda: g.reclaim_task.stats.passes >= 2)
        g.reclaim_task.cancel()  # no await: what rmdir from the FUSE session uses
        assert g.reclaim_task.state is ReclaimTaskState.STOPPED and not g.reclaim_task.is_running()
        passes = g.reclaim_task.stats.passes
        await trio.sleep(100)
        assert g.reclaim_task.stats.passes == passes
        g.reclaim_task.cancel()  # idempotent
        # and stop() after cancel() returns at once: the task has exited
        await g.reclaim_task.stop()
        assert g.reclaim_task.state is ReclaimTaskState.STOPPED


@trio_test
async def test_remove_group_now_removes_before_returning_and_stops_the_task():
    async with controller(reclaim_rate=1 * MiB) as c:
        g = await seed_group(c)
        log = EventLog()
        c.subscribe(log)
        await c.charge(g, pages(60 * MiB), PageKind.FILE)
        await wait_for(lambda: g.reclaim_task.stats.passes >= 2)
        usage = c.root.memory.usage
        c.remove_group_now(g)
        assert g.removed and "g" not in c.root.children and c.reclaim_tasks() == []
        kinds = [(e.kind, e.values.get("state") or e.values.get("action")) for e in log.events
                 if e.group == "/g"
                 and e.kind in (EventKind.DAEMON_STATE, EventKind.GROUP)]  # fmt: skip
        assert kinds[-2:] == [(EventKind.DAEMON_STATE, "stopped"), (EventKind.GROUP, "removed")]
        passes = g.reclaim_task.stats.passes
        await trio.sleep(100)
        assert g.reclaim_task.stats.passes == passes and c.root.memory.usage == usage
        with pytest.raises(ControllerError) as e:
            c.remove_group_now(g)
        assert e.value.errno == errno.ENOENT
        with pytest.raises(ControllerError) as e:
            c.remove_group_now(c.root)
        assert e.value.errno == errno.EBUSY


# -- loops stay bounded when an invariant breaks (issue 13) -----------------------------------


def _without_watermark_order_check(monkeypatch) -> None:
    """Break the invariant low <= high: set_lwmark stores whatever it is given."""
    from fakecgfs.controller.res_counter import ResCounter

    monkeypatch.setattr(ResCounter, "set_lwmark",
                        lambda self, nr_pages: setattr(self, "_lwmark", nr_pages))  # fmt: skip


def test_out_of_order_watermarks_cannot_spin_the_task(monkeypatch):
    """With the low watermark above the high one, usage between them is above high and below
    low at once.  The task must sleep, not wake and find nothing to do in a loop without a
    checkpoint (which hung the whole trio loop, and the suite, until killed)."""
    _without_watermark_order_check(monkeypatch)

    @trio_test
    async def scenario():
        async with controller() as c:
            g = await seed_group(c, high=16 * MiB, low=None)
            c.set_low_wmark(g, pages(32 * MiB))
            assert g.memory.lwmark > g.memory.hwmark  # the broken invariant is in place
            await c.charge(g, pages(24 * MiB), PageKind.FILE)
            assert g.memory.above_high_watermark() and g.memory.below_low_watermark()
            with trio.fail_after(60):  # virtual time: passes only if the task lets it
                await trio.sleep(10)
            assert sleeping(g)
            assert g.reclaim_task.stats.passes == 0
            assert user_usage(g) == pages(24 * MiB)

    scenario()
