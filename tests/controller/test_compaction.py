"""Memory after rmdir: a removed group is freed at once, and compact() gives memory back
without changing anything a reader can see."""

from __future__ import annotations

import gc
import sys
import weakref

import trio
import trio.testing

from fakecgfs.controller import PageKind, ReclaimTaskState
from fakecgfs.controller.compaction import COMPACT_AFTER_REMOVALS, COMPACT_IDLE, shrink_dict

from .conftest import MiB, controller, pages, trio_test, wait_for


async def armed_group(c, parent, name):
    g = c.create_group(parent, name)
    await c.set_limit(g, pages(64 * MiB))
    await c.set_high_wmark(g, pages(48 * MiB))
    return g


async def wait_state(g, state):
    """(A function of its own: a lambda in the test would hold ``g`` in a closure cell.)"""
    await wait_for(lambda: g.reclaim_task.state is state)


@trio_test
async def test_a_removed_group_is_freed_without_the_cycle_collector():
    """Nothing of an armed group is in a reference cycle: rmdir frees it by reference counting,
    not at some later full collection (10,000 groups' worth of memory waited for one)."""
    async with controller() as c:
        g = await armed_group(c, c.root, "g")
        await c.charge(g, pages(60 * MiB), PageKind.FILE)  # wakes the task: it reclaims
        await wait_state(g, ReclaimTaskState.SLEEPING)
        refs = [weakref.ref(g), weakref.ref(g.reclaim_task), weakref.ref(g.reclaim_task.stats)]
        gc.disable()
        try:
            await c.remove_group(g)
            del g
            # The task exits, and with it the last references: gc is off, so only reference
            # counting can free them (a cycle would keep them until the wait times out).
            await wait_for(lambda: all(ref() is None for ref in refs))
        finally:
            gc.enable()


@trio_test
async def test_a_reclaiming_task_keeps_its_group_alive():
    """The reclaim task holds its group weakly; while its task runs, the task holds the group (what
    a strong back-reference used to ensure), even with no other reference."""
    async with controller(reclaim_rate=1 * MiB) as c:  # slow: the task runs for a while
        g = await armed_group(c, c.root, "g")
        await c.charge(g, pages(60 * MiB), PageKind.FILE)
        await wait_state(g, ReclaimTaskState.RUNNING)
        reclaim_task = g.reclaim_task
        ref = weakref.ref(g)
        del c.root.children["g"]  # nothing but the task holds the group now
        del g
        await trio.sleep(0.5)
        assert ref() is not None and reclaim_task.memcg is ref() and reclaim_task.stats.passes > 1
        await reclaim_task.stop()


def test_shrink_dict_keeps_order_identity_and_values():
    d = {f"g{i}": i for i in range(10000)}
    for i in range(9990):
        del d[f"g{i}"]
    before = sys.getsizeof(d)
    same = d
    assert shrink_dict(d)
    assert same is d and list(d.items()) == [(f"g{i}", i) for i in range(9990, 10000)]
    assert sys.getsizeof(d) < before // 100
    assert not shrink_dict(d)  # already the right size


@trio_test
async def test_compact_changes_nothing_visible():
    async with controller() as c:
        parent = c.create_group(c.root, "p")
        groups = [await armed_group(c, parent, f"g{i}") for i in range(300)]
        for g in groups[::7]:
            await c.charge(g, pages(1 * MiB), PageKind.ANON)
        for g in groups[:290]:
            await c.remove_group(g)
        kept = groups[290:]
        children = parent.children
        size_before = sys.getsizeof(children)

        def snapshot():
            return [
                (g.path, g.memory.usage, g.memory.max_usage, g.memory.hwmark, g.kmem.usage,
                 g.stock, g.kernel_pages, g.children_made, g.reclaim_task.state, c.memory_stat(g))
                for g in c.groups()
            ]  # fmt: skip

        before = snapshot()
        c.compact()
        assert snapshot() == before
        assert parent.children is children and list(children.values()) == kept
        assert sys.getsizeof(children) < size_before
        assert c.removals_since_compact == 0
        await c.charge(kept[0], pages(60 * MiB), PageKind.FILE)  # the tasks still work
        await wait_for(lambda: kept[0].reclaim_task.stats.passes > 0 and kept[0].reclaim_task.state
                       is ReclaimTaskState.SLEEPING)  # fmt: skip


@trio_test
async def test_the_controller_compacts_once_a_burst_of_removals_pauses():
    async with controller() as c:
        groups = [c.create_group(c.root, f"g{i}") for i in range(COMPACT_AFTER_REMOVALS + 1)]
        for g in groups[:-1]:
            await c.remove_group(g)
        assert c.removals_since_compact == COMPACT_AFTER_REMOVALS
        # Removals keep coming: no compaction while they do.
        await trio.sleep(COMPACT_IDLE * 0.9)
        await c.remove_group(groups[-1])
        await trio.sleep(COMPACT_IDLE * 0.9)
        assert c.removals_since_compact == COMPACT_AFTER_REMOVALS + 1
        # A pause of COMPACT_IDLE after the last one: compacted.
        await trio.sleep(COMPACT_IDLE * 0.2)
        assert c.removals_since_compact == 0
        assert sys.getsizeof(c.root.children) == sys.getsizeof({})
        # Fewer removals than COMPACT_AFTER_REMOVALS start nothing.
        g = c.create_group(c.root, "again")
        await c.remove_group(g)
        await trio.sleep(COMPACT_IDLE * 10)
        assert c.removals_since_compact == 1


@trio_test
async def test_compact_runs_the_hooks_other_layers_registered():
    """A layer above (the filesystem) shrinks its own tables at each compact(), after the
    controller's dicts and before the free lists are emptied."""
    async with controller() as c:
        calls = []
        c.on_compact(lambda: calls.append("fs"))
        c.on_compact(lambda: calls.append("other"))
        c.compact()
        c.compact()
        assert calls == ["fs", "other", "fs", "other"]
