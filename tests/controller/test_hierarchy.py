"""The group tree: create, lookup, rename, rmdir, hierarchical charging, limits and inheritance."""

from __future__ import annotations

import errno

import pytest
import trio

from fakecgfs.controller import (
    PAGE_COUNTER_MAX,
    ControllerError,
    EventKind,
    MemCgroup,
    PageKind,
    ReclaimTaskState,
)  # fmt: skip

from .conftest import (
    EventLog,
    KiB,
    MiB,
    controller,
    kernel_overhead,
    pages,
    trio_test,
    user_memsw_usage,
    user_usage,
    wait_for,
)  # fmt: skip


def stat(c, g) -> dict[str, int]:
    return dict(c.memory_stat(g))


# -- MemCgroup on its own ----------------------------------------------------------------------


def test_memcg_tree_helpers():
    root = MemCgroup("", None)
    a = MemCgroup("a", root)
    b = MemCgroup("b", a)
    c = MemCgroup("c", root)
    root.children.update(a=a, c=c)
    a.children["b"] = b
    assert root.is_root() and not a.is_root()
    assert (root.path, a.path, b.path) == ("/", "/a", "/a/b")
    assert list(b.lineage()) == [b, a, root]
    assert list(root.subtree()) == [root, a, b, c]
    assert root.is_ancestor_of(b) and a.is_ancestor_of(b) and b.is_ancestor_of(b)
    assert not c.is_ancestor_of(b) and not b.is_ancestor_of(a)


def test_memcg_bookkeeping():
    root = MemCgroup("", None)
    a = MemCgroup("a", root)
    for node in a.lineage():
        node.memory.charge_unchecked(10)
        node.memsw.charge_unchecked(10)
    a.commit_charge(PageKind.ANON, 10)
    assert (a.pgpgin, a.pgfault, a.lruvec.resident(PageKind.ANON)) == (10, 10, 10)
    a.account_reclaim(dropped=3, swapped=2)
    for node in (a, root):
        assert (node.memory.usage, node.memsw.usage) == (5, 7)
    a.account_reclaim(dropped=0, swapped=0)
    assert a.pgpgout == 5
    a.uncharge_freed(resident=4, swap_entries=2)
    for node in (a, root):
        assert (node.memory.usage, node.memsw.usage) == (1, 1)
    assert a.pgpgout == 9


def test_memcg_hierarchical_limits_and_under_oom():
    root = MemCgroup("", None)
    a = MemCgroup("a", root)
    b = MemCgroup("b", a)
    assert b.hierarchical_limit() == b.hierarchical_memsw_limit() == PAGE_COUNTER_MAX
    a.memory.limit, b.memory.limit = 100, 200  # a child may have a larger limit than its parent
    a.memsw.limit = 300
    assert b.hierarchical_limit() == 100 and b.hierarchical_memsw_limit() == 300
    assert not b.under_oom()
    b.oom_waiters = 1
    assert b.under_oom()


# -- create, lookup, groups, rename --------------------------------------------------------------


@trio_test
async def test_create_lookup_and_groups():
    async with controller() as c:
        log = EventLog()
        c.subscribe(log)
        a = c.create_group(c.root, "a")
        b = c.create_group(a, "b")
        z = c.create_group(c.root, "z")
        assert c.lookup("/") is c.root and c.lookup("") is c.root
        assert c.lookup("/a/b") is b and c.lookup("a/b/") is b
        assert list(c.groups()) == [c.root, a, b, z]
        with pytest.raises(ControllerError) as exc:
            c.lookup("/a/nope")
        assert exc.value.errno == errno.ENOENT
        with pytest.raises(ControllerError) as exc:
            c.create_group(c.root, "a")
        assert exc.value.errno == errno.EEXIST
        created = [e.group for e in log.of(EventKind.GROUP) if e.values["action"] == "created"]
        assert created == ["/a", "/a/b", "/z"]


@trio_test
async def test_rename_keeps_state_and_children():
    async with controller() as c:
        a = c.create_group(c.root, "a")
        b = c.create_group(a, "b")
        await c.set_limit(a, pages(64 * MiB))
        await c.set_high_wmark(a, pages(48 * MiB))
        await c.charge(b, pages(8 * MiB), PageKind.FILE)
        log = EventLog()
        c.subscribe(log)
        c.rename_group(a, "renamed")
        assert c.lookup("/renamed") is a and c.lookup("/renamed/b") is b
        assert b.path == "/renamed/b"
        assert a.memory.limit == pages(64 * MiB) and user_usage(a) == pages(8 * MiB)
        assert a.memory.usage == pages(8 * MiB) + 64 and a.kmem.usage == 3  # kmem for b kept
        assert a.reclaim_task.is_running()
        [e] = log.of(EventKind.GROUP)
        assert (e.group, e.values) == ("/renamed", {"action": "renamed", "old": "/a"})
        c.rename_group(a, "renamed")  # to its own name: nothing happens
        assert len(log.of(EventKind.GROUP)) == 1
        with pytest.raises(ControllerError):
            c.lookup("/a")


@trio_test
async def test_rename_onto_a_sibling_is_eexist_and_root_is_ebusy():
    async with controller() as c:
        a = c.create_group(c.root, "a")
        c.create_group(c.root, "b")
        with pytest.raises(ControllerError) as exc:
            c.rename_group(a, "b")
        assert exc.value.errno == errno.EEXIST
        assert c.lookup("/a") is a
        with pytest.raises(ControllerError) as exc:
            c.rename_group(c.root, "x")
        assert exc.value.errno == errno.EBUSY


# -- rmdir ---------------------------------------------------------------------------------------


@trio_test
async def test_rmdir_with_children_is_ebusy():
    async with controller() as c:
        a = c.create_group(c.root, "a")
        c.create_group(a, "b")
        with pytest.raises(ControllerError) as exc:
            await c.remove_group(a)
        assert exc.value.errno == errno.EBUSY
        assert not a.removed and c.lookup("/a") is a


@trio_test
async def test_rmdir_of_the_root_is_ebusy():
    async with controller() as c:
        with pytest.raises(ControllerError) as exc:
            await c.remove_group(c.root)
        assert exc.value.errno == errno.EBUSY


@trio_test
async def test_rmdir_moves_pages_to_the_parent():
    async with controller() as c:
        a = c.create_group(c.root, "a")
        b = c.create_group(a, "b")
        await c.charge(a, pages(2 * MiB), PageKind.ANON)
        await c.charge(b, pages(3 * MiB), PageKind.FILE, dirty=True)
        await c.charge(b, pages(1 * MiB), PageKind.ANON)
        before = stat(c, a)
        usage = a.memory.usage
        log = EventLog()
        c.subscribe(log)
        await c.remove_group(b)
        assert b.removed and "b" not in a.children
        assert a.memory.usage == usage  # hierarchical: already counted
        assert user_usage(a) == pages(6 * MiB)
        # b made no children, so nothing of its own leaves; a keeps its kmem batch for b.
        assert usage == pages(6 * MiB) + 64 and a.kmem.usage == 0  # b's structures freed
        after = stat(c, a)
        assert after["cache"] == before["cache"] + 3 * MiB
        assert after["rss"] == before["rss"] + 1 * MiB
        assert after["dirty"] == 3 * MiB
        assert after["total_cache"] == before["total_cache"]
        [e] = log.of(EventKind.GROUP)
        assert (e.group, e.values["action"]) == ("/a/b", "removed")
        # The moved pages are the parent's own now: they can be freed from it.
        assert c.uncharge(a, pages(3 * MiB), PageKind.FILE) == pages(3 * MiB)


@trio_test
async def test_rmdir_moves_swap_entries_to_the_parent():
    async with controller(swap_bytes=16 * MiB) as c:
        a = c.create_group(c.root, "a")
        b = c.create_group(a, "b")
        await c.charge(b, 100, PageKind.ANON)
        c.reclaim(b, 1000, cause="test")
        await c.remove_group(b)
        assert a.lruvec.swapped == 100 and user_memsw_usage(a) == 100
        assert a.memsw.usage == 100 + 64  # a's kmem batch for b is charged to memsw as well
        assert c.uncharge(a, 100, PageKind.ANON) == 100
        assert c.swap.used == 0 and user_memsw_usage(a) == 0 and a.memsw.usage == 64


@trio_test
async def test_a_recreated_group_starts_from_defaults():
    async with controller() as c:
        a = c.create_group(c.root, "a")
        await c.set_limit(a, pages(64 * MiB))
        await c.set_high_wmark(a, pages(48 * MiB))
        await c.remove_group(a)
        a2 = c.create_group(c.root, "a")
        assert a2 is not a
        assert a2.memory.limit == PAGE_COUNTER_MAX and a2.memory.hwmark is None
        assert not a2.reclaim_task.is_running()


@trio_test
async def test_rmdir_of_a_removed_group_is_enoent_and_spares_its_successor():
    async with controller() as c:
        old = c.create_group(c.root, "a")
        await c.remove_group(old)
        new = c.create_group(c.root, "a")
        with pytest.raises(ControllerError) as exc:
            await c.remove_group(old)
        assert exc.value.errno == errno.ENOENT
        assert c.lookup("/a") is new and not new.removed


@trio_test
async def test_concurrent_rmdir_of_one_group():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_high_wmark(g, pages(48 * MiB))
        await wait_for(lambda: g.reclaim_task.state is ReclaimTaskState.SLEEPING)
        results: list[object] = []

        async def rmdir():
            try:
                await c.remove_group(g)
                results.append("ok")
            except ControllerError as e:
                results.append(e.errno)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(rmdir)
            nursery.start_soon(rmdir)
        assert sorted(results, key=str) == sorted(["ok", errno.ENOENT], key=str)
        assert c.root.children == {} and g.reclaim_task.state is ReclaimTaskState.STOPPED


# -- kernel memory for child groups ------------------------------------------------------------


@trio_test
async def test_creating_children_charges_the_parent_kernel_memory_as_measured():
    """Kernel 6.18, measured: the first child costs its parent 3 kmem pages, each later one 2,
    charged through the per-CPU stock, so memory and memsw grow by a whole batch of 64 pages."""
    async with controller() as c:
        parent = c.create_group(c.root, "parent")
        assert parent.memory.usage == parent.memsw.usage == parent.kmem.usage == 0
        root_usage = (c.root.memory.usage, c.root.memsw.usage, c.root.kmem.usage)
        assert root_usage == (64, 64, 3)  # the root paid the same for "parent"

        first = c.create_group(parent, "first")
        assert parent.memory.usage == parent.memsw.usage == 64
        assert parent.kmem.usage == 3 and parent.memory.max_usage == 64
        assert (parent.kernel_pages, parent.stock, parent.children_made) == (3, 61, 1)
        assert first.memory.usage == first.kmem.usage == 0  # the charge is the parent's
        # Hierarchical: the ancestors count the parent's batch and kmem too.
        assert (c.root.memory.usage, c.root.memsw.usage, c.root.kmem.usage) == (128, 128, 6)

        second = c.create_group(parent, "second")
        assert parent.kmem.usage == 5
        assert parent.memory.usage == parent.memsw.usage == parent.memory.max_usage == 64
        assert (parent.kernel_pages, parent.stock) == (5, 59)
        assert (c.root.memory.usage, c.root.kmem.usage) == (128, 8)

        # Removing the children frees their structures: kmem goes down, but the pages return
        # to the parent's stock, so memory usage does not move (as measured after rmdir).
        await c.remove_group(first)
        await c.remove_group(second)
        assert parent.memory.usage == parent.memsw.usage == 64 and parent.kmem.usage == 0
        assert (parent.kernel_pages, parent.stock) == (0, 64)
        assert (c.root.memory.usage, c.root.kmem.usage) == (128, 3)
        assert user_usage(parent) == 0 and kernel_overhead(parent) == 64

        # So churn costs nothing more: the stock pays for the next children.
        for i in range(100):
            await c.remove_group(c.create_group(parent, f"churn{i}"))
        assert parent.memory.usage == 64 and parent.kmem.usage == 0

        # Removing the parent gives its ancestors its kmem and stock back.
        await c.remove_group(parent)
        assert (c.root.memory.usage, c.root.memsw.usage, c.root.kmem.usage) == (64, 64, 0)


@trio_test
async def test_kmem_beyond_the_stock_charges_another_whole_batch():
    async with controller() as c:
        parent = c.create_group(c.root, "parent")
        for i in range(31):  # 3 + 30 * 2 = 63 kmem pages: still within the first batch
            c.create_group(parent, f"g{i}")
        assert (parent.kmem.usage, parent.stock, parent.memory.usage) == (63, 1, 64)
        c.create_group(parent, "g31")  # 65 pages: the stock of 1 is not enough
        assert (parent.kmem.usage, parent.stock, parent.memory.usage) == (65, 63, 128)
        assert parent.memsw.usage == parent.memory.max_usage == 128


# -- hierarchical charging and limits -----------------------------------------------------------


@trio_test
async def test_parent_limit_reclaims_from_the_child():
    async with controller() as c:
        parent = c.create_group(c.root, "parent")
        child = c.create_group(parent, "child")
        await c.set_limit(parent, pages(32 * MiB))
        await c.charge(child, pages(60 * MiB), PageKind.FILE)
        # The parent's kmem batch for the child (64 pages, 256 KiB) counts against its limit
        # too, and reclaim of page cache always progresses, so the stock is never drained: the
        # child gets at most 32M - 256K.
        assert child.memory.usage <= pages(32 * MiB - 256 * KiB)
        assert parent.memory.usage == child.memory.usage + 64 <= pages(32 * MiB)
        assert user_usage(parent) == child.memory.usage
        assert (parent.kernel_pages, parent.stock) == (3, 61)
        assert parent.memory.failcnt > 0 and child.memory.failcnt == 0
        assert child.memory.limit == PAGE_COUNTER_MAX
        assert child.pgpgin == pages(60 * MiB)


@trio_test
async def test_parent_limit_oom_kills_in_the_parent():
    async with controller() as c:
        parent = c.create_group(c.root, "parent")
        child = c.create_group(parent, "child")
        await c.set_limit(parent, pages(8 * MiB))
        with pytest.raises(ControllerError) as exc:
            await c.charge(child, pages(16 * MiB), PageKind.ANON)
        assert exc.value.errno == errno.ENOMEM
        assert parent.oom_kill == 1 and child.oom_kill == 0
        assert user_usage(parent) == child.memory.usage == 0
        # Before OOM the charge path drained the parent's stock; the 3 kmem pages stay.
        assert parent.stock == 0 and parent.memory.usage == parent.kmem.usage == 3


@trio_test
async def test_setting_a_parent_limit_reclaims_from_children():
    async with controller() as c:
        parent = c.create_group(c.root, "parent")
        a = c.create_group(parent, "a")
        b = c.create_group(parent, "b")
        await c.charge(a, pages(20 * MiB), PageKind.FILE)
        await c.charge(b, pages(20 * MiB), PageKind.FILE)
        await c.set_limit(parent, pages(16 * MiB))
        assert parent.memory.usage <= pages(16 * MiB)
        assert a.memory.usage + b.memory.usage == user_usage(parent)
        # The kmem batch for a and b (5 pages used, 59 in stock) counts against the new limit,
        # and is not drained since reclaiming page cache progresses: the children keep at most
        # 16M - 256K.
        assert parent.memory.usage == a.memory.usage + b.memory.usage + 64
        assert (parent.kernel_pages, parent.stock, parent.kmem.usage) == (5, 59, 5)
        assert a.memory.usage + b.memory.usage <= pages(16 * MiB - 256 * KiB)


@trio_test
async def test_hierarchical_memory_limit_is_the_minimum_on_the_path():
    async with controller() as c:
        a = c.create_group(c.root, "a")
        b = c.create_group(a, "b")
        cc = c.create_group(b, "c")
        await c.set_limit(a, pages(64 * MiB))
        await c.set_limit(b, pages(128 * MiB))  # larger than the parent's: allowed
        await c.set_limit(cc, pages(96 * MiB))
        await c.set_memsw_limit(b, pages(256 * MiB))
        assert cc.hierarchical_limit() == pages(64 * MiB)
        s = stat(c, cc)
        assert s["hierarchical_memory_limit"] == 64 * MiB
        assert s["hierarchical_memsw_limit"] == 256 * MiB
        # unlimited reads as kernel 6.18 answers it (tests/golden/kernel-6.18.json)
        assert stat(c, c.root)["hierarchical_memory_limit"] == 9223372036854771712


@trio_test
async def test_a_child_copies_some_settings_at_creation_only():
    async with controller() as c:
        parent = c.create_group(c.root, "parent")
        parent.swappiness = 10
        c.set_oom_kill_disable(parent, True)
        parent.clone_children = True
        parent.notify_on_release = True
        await c.set_limit(parent, pages(64 * MiB))
        await c.set_memsw_limit(parent, pages(128 * MiB))
        c.set_soft_limit(parent, pages(32 * MiB))
        c.set_tcp_limit(parent, pages(1 * MiB))
        await c.set_high_wmark(parent, pages(48 * MiB))
        c.set_low_wmark(parent, pages(32 * MiB))
        child = c.create_group(parent, "child")
        assert child.swappiness == 10 and child.oom_kill_disable
        assert child.clone_children and child.notify_on_release
        assert child.memory.limit == child.memsw.limit == PAGE_COUNTER_MAX
        assert child.soft_limit == child.tcp.limit == PAGE_COUNTER_MAX
        assert child.memory.hwmark is None and child.memory.lwmark is None
        assert not child.reclaim_task.is_running()
        # Later changes to the parent do not propagate.
        parent.swappiness = 90
        c.set_oom_kill_disable(parent, False)
        parent.clone_children = parent.notify_on_release = False
        assert child.swappiness == 10 and child.oom_kill_disable
        assert child.clone_children and child.notify_on_release


@trio_test
async def test_root_defaults():
    async with controller() as c:
        r = c.root
        assert r.swappiness == 60 and not r.oom_kill_disable
        assert not r.clone_children and not r.notify_on_release
        child = c.create_group(r, "child")
        assert child.swappiness == 60


@trio_test
async def test_swappiness_zero_keeps_a_groups_anon_pages_out_of_swap():
    async with controller(swap_bytes=64 * MiB) as c:
        keep = c.create_group(c.root, "keep")
        swap = c.create_group(c.root, "swap")
        keep.swappiness = 0
        await c.charge(keep, pages(8 * MiB), PageKind.ANON)
        await c.charge(swap, pages(8 * MiB), PageKind.ANON)
        c.reclaim(c.root, pages(64 * MiB), cause="test")
        assert keep.lruvec.swapped == 0 and keep.memory.usage == pages(8 * MiB)
        assert swap.lruvec.swapped == pages(8 * MiB)
        # ...which is what the unreclaimable estimate behind the write-time warning assumes.
        assert c.unreclaimable_pages(keep) == pages(8 * MiB)
        with pytest.raises(ControllerError) as exc:
            await c.set_limit(keep, pages(4 * MiB))
        assert exc.value.errno == errno.EBUSY


@trio_test
async def test_mkdir_under_a_full_parent_reclaims_for_its_structures_or_fails_enomem():
    """Kernel memory is charged under the limits like any page: usage never exceeds a limit."""
    async with controller() as c:
        parent = c.create_group(c.root, "p")
        await c.set_limit(parent, pages(1 * MiB))
        await c.charge(parent, pages(1 * MiB), PageKind.FILE)  # full, but of page cache
        child = c.create_group(parent, "c")  # reclaims page cache to fit its 3 kmem pages
        assert parent.memory.usage <= parent.memory.limit and parent.kmem.usage == 3
        await c.charge(child, parent.memory.margin(), PageKind.ANON)  # now full of anon
        c.uncharge(parent, pages(1 * MiB), PageKind.FILE)
        await c.charge(child, parent.memory.margin(), PageKind.ANON)
        with pytest.raises(ControllerError) as e:
            c.create_group(parent, "d")
        assert e.value.errno == errno.ENOMEM and "d" not in parent.children
        assert parent.memory.usage <= parent.memory.limit
