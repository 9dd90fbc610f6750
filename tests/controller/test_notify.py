"""Notifications, without eventfds: registrations whose signal counts calls."""

from __future__ import annotations

import errno

import pytest
import trio

from fakecgfs.controller import PageKind
from fakecgfs.controller.notify import (
    VMPRESSURE_WINDOW,
    PressureLevel,
    PressureMode,
    Registration,
    Watch,
    pressure_level,
)

from .conftest import MiB, controller, pages, trio_test, wait_for


class Counter:
    def __init__(self) -> None:
        self.signals = 0
        self.released = False

    def signal(self) -> None:
        self.signals += 1

    def release(self) -> None:
        self.released = True


def register(c, memcg, watch, **fields) -> Counter:
    counter = Counter()
    c.notifier.register(Registration(memcg, watch, counter.signal, counter.release, **fields))
    return counter


@trio_test
async def test_threshold_fires_on_each_crossing_in_either_direction_only():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        t = register(c, g, Watch.USAGE, threshold=pages(8 * MiB))
        await c.charge(g, pages(4 * MiB), PageKind.FILE)
        assert t.signals == 0
        await c.charge(g, pages(4 * MiB), PageKind.FILE)  # exactly at the threshold: crossed
        assert t.signals == 1
        await c.charge(g, pages(4 * MiB), PageKind.FILE)  # further up: no new crossing
        assert t.signals == 1
        c.uncharge(g, pages(8 * MiB), PageKind.FILE)  # 4M: down through it
        assert t.signals == 2


@trio_test
async def test_reclaim_and_memsw_thresholds():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        mem = register(c, g, Watch.USAGE, threshold=pages(6 * MiB))
        memsw = register(c, g, Watch.MEMSW_USAGE, threshold=pages(2 * MiB))
        await c.charge(g, pages(8 * MiB), PageKind.FILE)
        assert (mem.signals, memsw.signals) == (1, 1)
        await c.set_limit(g, pages(4 * MiB))  # reclaim brings usage down through 6M
        assert (mem.signals, memsw.signals) == (2, 1)


@trio_test
async def test_oom_signals_the_subtree_that_ran_out_and_late_registrations():
    async with controller() as c:
        parent = c.create_group(c.root, "p")
        child = c.create_group(parent, "c")
        other = c.create_group(c.root, "o")
        await c.set_limit(parent, pages(4 * MiB))
        on_parent, on_child, on_other = (register(c, g, Watch.OOM) for g in (parent, child, other))
        with pytest.raises(OSError) as oom:  # over the parent's limit: the charger is killed
            await c.charge(child, pages(8 * MiB), PageKind.ANON)
        assert oom.value.errno == errno.ENOMEM
        assert (on_parent.signals, on_child.signals, on_other.signals) == (1, 1, 0)
        c.set_oom_kill_disable(parent, True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(c.charge, child, pages(8 * MiB), PageKind.ANON)
            await wait_for(parent.under_oom)
            late = register(c, parent, Watch.OOM)  # registering under OOM signals at once
            assert late.signals == 1
            await c.set_limit(parent, pages(16 * MiB))


def test_pressure_level_thresholds():
    assert pressure_level(100, 100) is PressureLevel.LOW
    assert pressure_level(100, 41) is PressureLevel.LOW
    assert pressure_level(100, 40) is PressureLevel.MEDIUM
    assert pressure_level(100, 5) is PressureLevel.CRITICAL
    assert pressure_level(0, 0) is PressureLevel.LOW


@trio_test
async def test_pressure_walks_up_by_mode_and_level():
    async with controller() as c:
        parent = c.create_group(c.root, "p")
        child = c.create_group(parent, "c")
        hierarchy = register(c, parent, Watch.PRESSURE, level=PressureLevel.LOW,
                             mode=PressureMode.HIERARCHY)  # fmt: skip
        local = register(c, parent, Watch.PRESSURE, level=PressureLevel.LOW,
                         mode=PressureMode.LOCAL)  # fmt: skip
        default_child = register(c, child, Watch.PRESSURE, level=PressureLevel.LOW)
        default_parent = register(c, parent, Watch.PRESSURE, level=PressureLevel.LOW)
        critical = register(c, child, Watch.PRESSURE, level=PressureLevel.CRITICAL)
        c.notifier.reclaimed(child, VMPRESSURE_WINDOW - 1, 0)  # window not full yet
        assert default_child.signals == 0
        c.notifier.reclaimed(child, 1, 0)  # nothing freed: critical
        assert (critical.signals, default_child.signals) == (1, 1)
        assert hierarchy.signals == 1  # hears pressure below it
        assert local.signals == 0  # only its own group's
        assert default_parent.signals == 0  # a listener below was signalled already
        c.notifier.reclaimed(child, VMPRESSURE_WINDOW, VMPRESSURE_WINDOW)  # all freed: low
        assert (critical.signals, default_child.signals) == (1, 2)


@trio_test
async def test_watermark_registration_fires_at_episode_start_and_end():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_high_wmark(g, pages(8 * MiB))
        c.set_low_wmark(g, pages(4 * MiB))
        w = register(c, g, Watch.WMARK)
        await wait_for(lambda: g.reclaim_task.state.value == "sleeping")
        await c.charge(g, pages(12 * MiB), PageKind.FILE)
        await wait_for(lambda: g.memory.below_low_watermark()
                       and g.reclaim_task.state.value == "sleeping")  # fmt: skip
        assert w.signals == 2


@trio_test
async def test_removing_a_group_signals_and_releases_each_registration_once():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        regs = [register(c, g, watch, threshold=1) for watch in Watch]
        await c.remove_group(g)
        assert all(r.signals == 1 and r.released for r in regs)
        assert c.notifier.registrations(g) == []


@trio_test
async def test_closing_the_controller_signals_everything_left():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        r = register(c, g, Watch.OOM)
    assert r.signals == 1 and r.released
