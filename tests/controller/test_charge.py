"""The charge path: hierarchical counting, failcnt, direct reclaim, OOM kill and OOM wait."""

from __future__ import annotations

import errno

import pytest
import trio

from fakecgfs.controller import ControllerError, EventKind, MemCgroup, MemoryController, PageKind

from .conftest import (
    EventLog,
    MiB,
    controller,
    kernel_overhead,
    pages,
    trio_test,
    user_memsw_usage,
    user_usage,
    wait_for,
)  # fmt: skip


@trio_test
async def test_charge_counts_in_the_group_and_every_ancestor():
    async with controller() as c:
        a = c.create_group(c.root, "a")
        b = c.create_group(a, "b")
        await c.charge(b, pages(3 * MiB), PageKind.FILE)
        await c.charge(b, pages(1 * MiB), PageKind.ANON)
        for g in (b, a, c.root):
            assert user_usage(g) == user_memsw_usage(g) == pages(4 * MiB)
        # Kernel memory for the child groups: one batch charged by a for b, one by the root for a.
        assert (kernel_overhead(b), kernel_overhead(a), kernel_overhead(c.root)) == (0, 64, 128)
        assert b.memory.usage == pages(4 * MiB) and c.root.memory.usage == pages(4 * MiB) + 128
        assert b.lruvec.resident() == pages(4 * MiB)
        assert a.lruvec.resident() == c.root.lruvec.resident() == 0  # lists hold own pages only
        assert b.pgpgin == pages(4 * MiB) and b.pgfault == pages(1 * MiB)


@trio_test
async def test_charge_of_nothing_is_a_no_op():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, 0)
        await c.charge(g, -5)
        assert g.memory.usage == 0 and g.pgpgin == 0


@trio_test
async def test_dirty_charge_marks_pages_dirty():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, 100, PageKind.FILE, dirty=True)
        assert g.lruvec.dirty() == 100


@trio_test
async def test_uncharge_frees_own_pages_and_returns_the_count():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, 100, PageKind.FILE)
        await c.charge(g, 50, PageKind.ANON)
        assert c.uncharge(g, 30, PageKind.FILE) == 30
        assert c.uncharge(g, 500, PageKind.ANON) == 50  # only what there is
        assert c.uncharge(g, 1, PageKind.ANON) == 0
        assert g.memory.usage == user_usage(c.root) == 70
        assert c.root.memory.usage == 70 + 64  # plus the root's kernel memory batch for g
        assert g.pgpgout == 80


@trio_test
async def test_uncharge_of_anon_frees_swap_entries_after_resident_pages():
    async with controller(swap_bytes=16 * MiB) as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, 100, PageKind.ANON)
        c.reclaim(g, 1000, cause="test")
        assert g.lruvec.swapped == 100 and c.swap.used == 100
        assert g.memory.usage == 0 and g.memsw.usage == 100
        assert c.uncharge(g, 60, PageKind.ANON) == 60
        assert g.lruvec.swapped == 40 and c.swap.used == 40 and g.memsw.usage == 40


@trio_test
async def test_touch_marks_pages_referenced_so_reclaim_keeps_them_once():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, 64, PageKind.FILE)
        assert c.touch(g, 64) == 64
        assert c.touch(g, 10, PageKind.ANON) == 0
        result = c.reclaim(g, 1, cause="test")
        assert g.lruvec.active_file.nr > 0  # referenced pages were promoted, not dropped
        assert result.reclaimed < result.scanned


@trio_test
async def test_failcnt_counts_every_refused_attempt_and_direct_reclaim_makes_room():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(16 * MiB))
        await c.charge(g, pages(12 * MiB), PageKind.FILE)
        log = EventLog()
        c.subscribe(log)
        await c.charge(g, pages(8 * MiB), PageKind.ANON)
        assert g.memory.usage <= g.memory.limit
        assert g.lruvec.resident(PageKind.ANON) == pages(8 * MiB)  # the charge succeeded
        assert g.lruvec.resident(PageKind.FILE) <= pages(8 * MiB)  # by dropping page cache
        refused = log.of(EventKind.CHARGE_REFUSED, "/g")
        assert g.memory.failcnt == len(refused) > 0
        assert all(e.values["counter"] == "memory" for e in refused)
        direct = [e for e in log.of(EventKind.RECLAIM, "/g") if e.values["cause"] == "direct"]
        assert direct and sum(e.values["reclaimed"] for e in direct) > 0


@trio_test
async def test_oom_kill_fails_with_enomem_and_frees_the_request():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(16 * MiB))
        await c.charge(g, pages(8 * MiB), PageKind.ANON)
        log = EventLog()
        c.subscribe(log)
        with pytest.raises(ControllerError) as exc:
            await c.charge(g, pages(16 * MiB), PageKind.ANON)
        assert exc.value.errno == errno.ENOMEM and exc.value.errno_name == "ENOMEM"
        assert g.oom_kill == 1
        assert g.memory.usage == pages(8 * MiB) == user_usage(c.root)  # its own pages went
        assert c.root.memory.usage == pages(8 * MiB) + 64  # the root's kmem batch for g stays
        assert g.memsw.usage == pages(8 * MiB)
        assert not g.under_oom()
        # One refused attempt, one more after draining the per-CPU stock (try_charge_memcg
        # drains once and retries, even with no stock to give back, as here), then 16 more
        # without progress (its nr_retries = MAX_RECLAIM_RETRIES, 16 since 5.9; 2.6.26 had 5).
        assert g.stock == 0 and kernel_overhead(g) == 0
        assert g.memory.failcnt == 1 + 1 + 16
        [oom] = log.of(EventKind.OOM)
        assert oom.group == "/g" and oom.values["action"] == "kill"


async def oom_disabled(c: MemoryController, *, limit: int, charged: int) -> MemCgroup:
    """A group g under the root with oom_kill_disable set, ``limit`` pages as its limit and
    ``charged`` anonymous pages charged."""
    g = c.create_group(c.root, "g")
    await c.set_limit(g, limit)
    c.set_oom_kill_disable(g, True)
    await c.charge(g, charged, PageKind.ANON)
    return g


@trio_test
async def test_oom_wait_completes_when_memory_is_uncharged():
    async with controller() as c:
        g = await oom_disabled(c, limit=pages(16 * MiB), charged=pages(16 * MiB))
        done = trio.Event()

        async def charger():
            await c.charge(g, pages(1 * MiB), PageKind.ANON)
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(charger)
            await wait_for(g.under_oom)
            await trio.sleep(100)  # it stays asleep: nothing changes by itself
            assert g.under_oom() and not done.is_set()
            assert g.oom_kill == 0
            c.uncharge(g, pages(1 * MiB), PageKind.ANON)
            await wait_for(done.is_set)
        assert not g.under_oom()
        assert g.memory.usage == pages(16 * MiB)


@trio_test
async def test_oom_wait_completes_when_the_limit_is_raised():
    async with controller() as c:
        g = await oom_disabled(c, limit=pages(16 * MiB), charged=pages(16 * MiB))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(c.charge, g, pages(4 * MiB), PageKind.ANON)
            await wait_for(g.under_oom)
            await c.set_limit(g, pages(32 * MiB))
        assert not g.under_oom()
        assert g.memory.usage == pages(20 * MiB)


@trio_test
async def test_oom_wait_can_be_cancelled_and_leaves_nothing_charged():
    async with controller() as c:
        g = await oom_disabled(c, limit=pages(16 * MiB), charged=pages(8 * MiB))
        with trio.move_on_after(30) as scope:
            # Partly fits: 8 MiB are committed before the charge sleeps in OOM.
            await c.charge(g, pages(16 * MiB), PageKind.ANON)
        assert scope.cancelled_caught
        assert not g.under_oom() and g.oom_waiters == 0
        assert g.memory.usage == g.memsw.usage == user_usage(c.root) == pages(8 * MiB)
        assert c.root.memory.usage == pages(8 * MiB) + 64  # the root's kmem batch for g
        assert g.lruvec.resident() == pages(8 * MiB)


@trio_test
async def test_switching_oom_kill_disable_off_fails_the_waiting_charge():
    async with controller() as c:
        g = await oom_disabled(c, limit=pages(16 * MiB), charged=pages(16 * MiB))
        outcome: list[BaseException] = []

        async def charger():
            try:
                await c.charge(g, pages(1 * MiB), PageKind.ANON)
            except ControllerError as e:
                outcome.append(e)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(charger)
            await wait_for(g.under_oom)
            c.set_oom_kill_disable(g, False)
        [err] = outcome
        assert err.errno == errno.ENOMEM
        assert g.oom_kill == 1 and not g.under_oom()
        assert g.memory.usage == pages(16 * MiB)


@trio_test
async def test_oom_events_report_wait_then_kill_with_time_and_values():
    async with controller() as c:
        g = await oom_disabled(c, limit=pages(1 * MiB), charged=pages(1 * MiB))
        log = EventLog()
        c.subscribe(log)
        errors: list[ControllerError] = []

        async def charger():
            try:
                await c.charge(g, 1, PageKind.ANON)
            except ControllerError as e:
                errors.append(e)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(charger)
            await wait_for(g.under_oom)
            await trio.sleep(5)
            c.set_oom_kill_disable(g, False)
        assert [e.errno for e in errors] == [errno.ENOMEM]
        wait, kill = log.of(EventKind.OOM)
        assert (wait.group, wait.values["action"], wait.values["pages"]) == ("/g", "wait", 1)
        assert (kill.group, kill.values["action"], kill.values["pages"]) == ("/g", "kill", 1)
        assert wait.time == 0.0 and kill.time == pytest.approx(5.0, abs=0.02)


@trio_test
async def test_memsw_limit_refusal_reclaims_without_swapping():
    async with controller(swap_bytes=64 * MiB) as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(16 * MiB))
        await c.set_memsw_limit(g, pages(16 * MiB))
        await c.charge(g, pages(12 * MiB), PageKind.ANON)
        log = EventLog()
        c.subscribe(log)
        with pytest.raises(ControllerError) as exc:
            await c.charge(g, pages(8 * MiB), PageKind.ANON)
        assert exc.value.errno == errno.ENOMEM
        assert c.swap.used == 0  # swapping would not have lowered memory+swap
        assert g.memsw.failcnt > 0 and g.memory.failcnt == 0
        assert {e.values["counter"] for e in log.of(EventKind.CHARGE_REFUSED)} == {"memsw"}
        assert g.memory.usage == pages(12 * MiB)


@trio_test
async def test_memory_limit_refusal_swaps_anon_out_when_swap_exists():
    async with controller(swap_bytes=64 * MiB) as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(16 * MiB))
        await c.charge(g, pages(12 * MiB), PageKind.ANON)
        await c.charge(g, pages(8 * MiB), PageKind.ANON)
        assert g.memory.usage <= pages(16 * MiB)
        assert g.memsw.usage == pages(20 * MiB)  # swapped pages stay charged to memory+swap
        assert g.lruvec.swapped == c.swap.used >= pages(4 * MiB)


@trio_test
async def test_rmdir_is_busy_while_a_charge_waits_in_oom():
    """A charge in progress stands for a task of the group: rmdir must not orphan it."""
    async with controller() as c:
        g = await oom_disabled(c, limit=pages(16 * MiB), charged=pages(16 * MiB))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(c.charge, g, pages(1 * MiB), PageKind.ANON)
            await wait_for(g.under_oom)
            with pytest.raises(ControllerError) as e:
                await c.remove_group(g)
            assert e.value.errno == errno.EBUSY
            await c.set_limit(g, pages(32 * MiB))
        assert g.charging == 0
        c.uncharge(g, pages(17 * MiB), PageKind.ANON)
        await c.remove_group(g)
        assert user_usage(c.root) == 0
        # The kernel memory the root was charged for g stays the root's (as measured on 6.18).
        assert c.root.memory.usage == 64 and c.root.kmem.usage == 0  # back in the stock


@trio_test
async def test_charging_a_removed_group_is_refused():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.remove_group(g)
        with pytest.raises(ControllerError) as e:
            await c.charge(g, 1, PageKind.ANON)
        assert e.value.errno == errno.ENOENT
        assert user_usage(c.root) == 0 and c.root.memory.usage == 64  # only the kmem batch


@trio_test
async def test_a_charge_that_fits_only_once_the_stock_is_drained_succeeds_without_oom():
    """Before OOM the charge path gives back the per-CPU stock (drain_all_stock), so precharged
    but unused kernel pages never cause an OOM kill."""
    async with controller() as c:
        parent = c.create_group(c.root, "parent")
        child = c.create_group(parent, "child")
        assert (parent.memory.usage, parent.kernel_pages, parent.stock) == (64, 3, 61)
        await c.set_limit(parent, pages(1 * MiB))  # 256 pages: 64 already used by the batch
        log = EventLog()
        c.subscribe(log)
        # 253 anonymous pages: with no swap nothing is reclaimable, and they fit under 256 only
        # next to the 3 kmem pages, not next to the whole batch of 64.
        await c.charge(child, 256 - 3, PageKind.ANON)
        assert child.memory.usage == 253 and child.lruvec.resident(PageKind.ANON) == 253
        assert parent.memory.usage == parent.memory.limit == 256
        assert parent.stock == 0 and parent.kernel_pages == parent.kmem.usage == 3
        assert parent.oom_kill == child.oom_kill == 0 and not log.of(EventKind.OOM)
        assert parent.memory.failcnt > 0  # it was refused before the drain
        # Exactly full now: one more page is an OOM kill.
        with pytest.raises(ControllerError) as exc:
            await c.charge(child, 1, PageKind.ANON)
        assert exc.value.errno == errno.ENOMEM and parent.oom_kill == 1
        assert child.memory.usage == 253 and parent.memory.usage == 256
