"""Limit writes: reclaim-or-EBUSY, memsw ordering, root refusals, other limits, resets, force_empty,
and the watermark ordering rules as the controller enforces them."""

from __future__ import annotations

import errno

import pytest

from fakecgfs.controller import PAGE_COUNTER_MAX, ControllerError, PageKind, ReclaimTaskState

from .conftest import MiB, controller, kernel_overhead, pages, trio_test, user_usage, wait_for


async def raises(code: int, awaitable_or_callable, *args):
    """Await (or call) and check the ControllerError's errno."""
    with pytest.raises(ControllerError) as exc:
        result = awaitable_or_callable(*args)
        if hasattr(result, "__await__"):
            await result
    assert exc.value.errno == code, exc.value
    return exc.value


def values(g) -> tuple:
    m = g.memory
    return (m.limit, m.hwmark, m.lwmark, m.lwmark_is_default(), g.memsw.limit, m.usage)


# -- memory.limit_in_bytes -------------------------------------------------------------------


@trio_test
async def test_limit_below_usage_reclaims_file_pages_first():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, pages(60 * MiB), PageKind.FILE)
        await c.set_limit(g, pages(32 * MiB))
        assert g.memory.limit == pages(32 * MiB)
        assert g.memory.usage <= pages(32 * MiB)
        assert g.memory.failcnt == 0


@trio_test
async def test_limit_below_unreclaimable_usage_is_ebusy_and_unchanged():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(64 * MiB))
        await c.charge(g, pages(8 * MiB), PageKind.FILE)
        await c.charge(g, pages(40 * MiB), PageKind.ANON)
        await raises(errno.EBUSY, c.set_limit, g, pages(32 * MiB))
        assert g.memory.limit == pages(64 * MiB)
        assert g.memory.failcnt == 0
        assert g.lruvec.resident(PageKind.ANON) == pages(40 * MiB)


@trio_test
async def test_limit_with_swap_swaps_anon_out():
    async with controller(swap_bytes=64 * MiB) as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, pages(40 * MiB), PageKind.ANON)
        await c.set_limit(g, pages(32 * MiB))
        assert g.memory.usage <= pages(32 * MiB)
        assert g.memsw.usage == pages(40 * MiB)


@trio_test
async def test_limits_on_the_root_are_einval():
    async with controller() as c:
        r = c.root
        await raises(errno.EINVAL, c.set_limit, r, pages(1 * MiB))
        await raises(errno.EINVAL, c.set_memsw_limit, r, pages(1 * MiB))
        await raises(errno.EINVAL, c.set_tcp_limit, r, pages(1 * MiB))
        await raises(errno.EINVAL, c.set_kmem_limit, r, pages(1 * MiB))
        await raises(errno.EINVAL, c.set_oom_kill_disable, r, True)
        assert r.memory.limit == r.memsw.limit == r.tcp.limit == PAGE_COUNTER_MAX
        assert not r.oom_kill_disable


# -- memory.memsw.limit_in_bytes -------------------------------------------------------------


@trio_test
async def test_memsw_on_a_fresh_group_only_accepts_unlimited():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await raises(errno.EINVAL, c.set_memsw_limit, g, pages(64 * MiB))
        assert g.memsw.limit == PAGE_COUNTER_MAX
        await c.set_memsw_limit(g, PAGE_COUNTER_MAX)


@trio_test
async def test_memsw_rule_both_ways_and_equality():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(64 * MiB))
        await c.set_memsw_limit(g, pages(128 * MiB))
        await raises(errno.EINVAL, c.set_limit, g, pages(256 * MiB))  # memory > memsw
        assert g.memory.limit == pages(64 * MiB)
        await raises(errno.EINVAL, c.set_memsw_limit, g, pages(32 * MiB))  # memsw < memory
        assert g.memsw.limit == pages(128 * MiB)
        await c.set_limit(g, pages(128 * MiB))  # equal is fine both ways
        await c.set_memsw_limit(g, pages(128 * MiB))
        assert g.memory.limit == g.memsw.limit == pages(128 * MiB)
        # To raise both: memsw first.
        await c.set_memsw_limit(g, pages(256 * MiB))
        await c.set_limit(g, pages(256 * MiB))


@trio_test
async def test_memsw_limit_below_usage_drops_file_pages_without_swapping_or_is_ebusy():
    async with controller(swap_bytes=64 * MiB) as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(32 * MiB))
        await c.set_memsw_limit(g, pages(64 * MiB))
        await c.charge(g, pages(20 * MiB), PageKind.FILE)
        await c.charge(g, pages(20 * MiB), PageKind.ANON)  # over memory.limit: some swap-out
        swapped = c.swap.used
        assert swapped > 0 and g.memsw.usage > pages(32 * MiB)
        await c.set_memsw_limit(g, pages(32 * MiB))
        assert g.memsw.limit == pages(32 * MiB) and g.memsw.usage <= pages(32 * MiB)
        assert c.swap.used == swapped  # swap-out cannot lower memory+swap: only file was dropped
        assert g.lruvec.resident(PageKind.ANON) + g.lruvec.swapped == pages(20 * MiB)
        # Below the anonymous memory + swap: nothing can be dropped once the cache is gone.
        await c.set_limit(g, pages(16 * MiB))
        await raises(errno.EBUSY, c.set_memsw_limit, g, pages(16 * MiB))
        assert g.memsw.limit == pages(32 * MiB) and g.memsw.failcnt == 0
        assert g.lruvec.resident(PageKind.FILE) == 0


# -- other limits ------------------------------------------------------------------------------


@trio_test
async def test_soft_limit_is_stored():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, pages(8 * MiB), PageKind.ANON)
        c.set_soft_limit(g, pages(1 * MiB))  # not checked against usage
        assert g.soft_limit == pages(1 * MiB)
        assert g.memory.usage == pages(8 * MiB)


@trio_test
async def test_kmem_limit_is_accepted_but_stays_unlimited():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        c.set_kmem_limit(g, pages(1 * MiB))
        assert g.kmem.limit == PAGE_COUNTER_MAX


@trio_test
async def test_tcp_limit_is_stored():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        c.set_tcp_limit(g, pages(1 * MiB))
        assert g.tcp.limit == pages(1 * MiB)


# -- resets ----------------------------------------------------------------------------------


@trio_test
async def test_max_usage_reset_restarts_from_current_usage():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, pages(10 * MiB), PageKind.FILE)
        c.uncharge(g, pages(4 * MiB), PageKind.FILE)
        assert g.memory.max_usage == pages(10 * MiB)
        g.memory.reset_max_usage()
        assert g.memory.max_usage == g.memory.usage == pages(6 * MiB)


@trio_test
async def test_failcnt_reset():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(1 * MiB))
        await c.charge(g, pages(2 * MiB), PageKind.FILE)
        assert g.memory.failcnt > 0
        g.memory.reset_failcnt()
        assert g.memory.failcnt == 0


@trio_test
async def test_limit_zero_on_a_parent_is_ebusy_and_a_limit_fitting_its_kmem_drains_the_stock():
    """As measured on 6.18: a parent with a child is never empty, so limit 0 is EBUSY; a limit
    that the kmem pages fit under succeeds once the per-CPU stock is drained."""
    async with controller() as c:
        parent = c.create_group(c.root, "parent")
        c.create_group(parent, "child")
        assert parent.memory.usage == 64 and parent.kmem.usage == 3
        before = values(parent)
        await raises(errno.EBUSY, c.set_limit, parent, 0)
        assert values(parent)[:5] == before[:5]  # the limit (and the rest) unchanged
        assert parent.memory.limit == PAGE_COUNTER_MAX
        # The failed write did drain the stock (that is not undone); the kmem stays.
        assert parent.stock == 0 and parent.memory.usage == parent.kmem.usage == 3

        other = c.create_group(c.root, "other")
        c.create_group(other, "child")
        assert (other.memory.usage, other.stock) == (64, 61)
        await c.set_limit(other, 4)  # 4 pages: the 3 kmem pages fit, the 61 of stock do not
        assert other.memory.limit == 4
        assert other.stock == 0 and kernel_overhead(other) == 3
        assert other.memory.usage == other.memsw.usage == other.kmem.usage == 3
        assert user_usage(other) == 0


# -- force_empty -------------------------------------------------------------------------------


@trio_test
async def test_force_empty_drops_file_pages_and_leaves_anon_without_swap():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        child = c.create_group(g, "child")
        await c.charge(g, pages(10 * MiB), PageKind.FILE, dirty=True)
        await c.charge(child, pages(5 * MiB), PageKind.FILE)
        await c.charge(g, pages(3 * MiB), PageKind.ANON)
        await c.force_empty(g)  # returns normally although anon stays
        assert g.lruvec.resident(PageKind.FILE) == child.lruvec.resident(PageKind.FILE) == 0
        assert user_usage(g) == pages(3 * MiB)
        # The kmem batch charged to g for its child is not reclaimable and stays too.
        assert kernel_overhead(g) == 64 and g.memory.usage == pages(3 * MiB) + 64
        assert g.kmem.usage == 3


@trio_test
async def test_force_empty_with_swap_empties_the_group():
    async with controller(swap_bytes=64 * MiB) as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, pages(10 * MiB), PageKind.FILE)
        await c.charge(g, pages(3 * MiB), PageKind.ANON)
        await c.force_empty(g)
        assert g.memory.usage == 0 and g.memsw.usage == pages(3 * MiB)


@trio_test
async def test_force_empty_on_the_root_is_einval():
    async with controller() as c:
        await raises(errno.EINVAL, c.force_empty, c.root)


# -- watermark ordering through the controller -------------------------------------------------


@trio_test
async def test_fresh_group_limit_then_high_then_low():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(64 * MiB))
        await c.set_high_wmark(g, pages(48 * MiB))
        c.set_low_wmark(g, pages(32 * MiB))
        assert values(g)[:3] == (pages(64 * MiB), pages(48 * MiB), pages(32 * MiB))


@trio_test
async def test_high_alone_works_with_a_default_low():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_high_wmark(g, pages(48 * MiB))
        high = pages(48 * MiB)
        assert g.memory.hwmark == high
        # 12,288 pages; 0.5% of them, 61 pages, is over one 32-page batch: 61 pages below.
        assert g.memory.lwmark == 12_227
        assert g.memory.lwmark_is_default()
        g2 = c.create_group(c.root, "g2")
        await c.set_high_wmark(g2, pages(1 * MiB))
        assert g2.memory.lwmark == pages(1 * MiB) - 32


@pytest.mark.parametrize(
    "case",
    ["high>limit", "high<low", "low>high", "low>limit", "limit<high", "limit<low"],
)
@trio_test
async def test_each_ordering_violation_is_einval_and_changes_nothing(case):
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(64 * MiB))
        if case in ("high<low", "low>high", "limit<high", "limit<low"):
            await c.set_high_wmark(g, pages(48 * MiB))
        if case in ("high<low", "limit<low"):
            c.set_low_wmark(g, pages(32 * MiB))
        if case == "limit<low":
            await c.set_high_wmark(g, None)  # only the low watermark stays armed
        before = values(g)
        running = g.reclaim_task.is_running()
        if case == "high>limit":
            await raises(errno.EINVAL, c.set_high_wmark, g, pages(64 * MiB) + 1)
        elif case == "high<low":
            await raises(errno.EINVAL, c.set_high_wmark, g, pages(32 * MiB) - 1)
        elif case == "low>high":
            await raises(errno.EINVAL, c.set_low_wmark, g, pages(48 * MiB) + 1)
        elif case == "low>limit":
            await raises(errno.EINVAL, c.set_low_wmark, g, pages(64 * MiB) + 1)
        elif case == "limit<high":
            await raises(errno.EINVAL, c.set_limit, g, pages(48 * MiB) - 1)
        elif case == "limit<low":
            await raises(errno.EINVAL, c.set_limit, g, pages(32 * MiB) - 1)
        assert values(g) == before
        assert g.reclaim_task.is_running() == running


@trio_test
async def test_equality_allowed_in_each_rule():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(64 * MiB))
        await c.set_high_wmark(g, pages(64 * MiB))  # high == limit
        c.set_low_wmark(g, pages(64 * MiB))  # low == high (and == limit)
        await c.set_limit(g, pages(64 * MiB))  # limit == high
        c.set_low_wmark(g, pages(32 * MiB))
        await c.set_high_wmark(g, pages(32 * MiB))  # high == low
        await c.set_limit(g, pages(32 * MiB))  # limit == high == low
        assert values(g)[:3] == (pages(32 * MiB),) * 3


@trio_test
async def test_disarming_high_stops_the_task_and_frees_the_limit():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(64 * MiB))
        await c.set_high_wmark(g, pages(48 * MiB))
        await wait_for(lambda: g.reclaim_task.state is ReclaimTaskState.SLEEPING)
        await c.set_high_wmark(g, None)
        assert g.reclaim_task.state is ReclaimTaskState.STOPPED and not g.reclaim_task.is_running()
        assert g.memory.hwmark is None and g.memory.lwmark is None
        await c.set_limit(g, pages(16 * MiB))  # no watermark in the way any more
        assert g.memory.limit == pages(16 * MiB)


@trio_test
async def test_low_with_none_returns_to_the_default():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_high_wmark(g, pages(48 * MiB))
        c.set_low_wmark(g, pages(16 * MiB))
        c.set_low_wmark(g, None)
        assert g.memory.lwmark_is_default()
