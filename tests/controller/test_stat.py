"""memory.stat and memory.numa_stat: names, order, units, consistency with usage."""

from __future__ import annotations

from fakecgfs.controller import MEMORY_STAT_NAMES, PAGE_COUNTER_MAX, PAGE_SIZE, STAT_ITEMS, PageKind

from .conftest import MiB, controller, kernel_overhead, pages, trio_test, user_usage


def test_stat_items_are_kernel_6_18_order():
    assert STAT_ITEMS == (
        "cache", "rss", "rss_huge", "shmem", "mapped_file", "dirty", "writeback",
        "workingset_refault_anon", "workingset_refault_file", "swap", "swapcached",
        "pgpgin", "pgpgout", "pgfault", "pgmajfault",
        "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
    )  # fmt: skip


@trio_test
async def test_memory_stat_names_and_order():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        names = [name for name, _ in c.memory_stat(g)]
        assert names == [
            *STAT_ITEMS, "hierarchical_memory_limit", "hierarchical_memsw_limit",
            *(f"total_{n}" for n in STAT_ITEMS),
        ]  # fmt: skip
        assert all(isinstance(v, int) for _, v in c.memory_stat(g))


@trio_test
async def test_fresh_group_stat():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        s = dict(c.memory_stat(g))
        assert s["hierarchical_memory_limit"] == s["hierarchical_memsw_limit"]
        assert s["hierarchical_memory_limit"] == PAGE_COUNTER_MAX * PAGE_SIZE == 9223372036854771712
        assert all(v == 0 for k, v in s.items() if not k.startswith("hierarchical_"))


@trio_test
async def test_leaf_cache_plus_rss_is_usage():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(16 * MiB))
        await c.charge(g, pages(10 * MiB), PageKind.FILE, dirty=True)
        await c.charge(g, pages(4 * MiB), PageKind.ANON)
        await c.charge(g, pages(6 * MiB), PageKind.ANON)  # over the limit: some cache dropped
        c.uncharge(g, pages(1 * MiB), PageKind.ANON)
        s = dict(c.memory_stat(g))
        usage = g.memory.usage * PAGE_SIZE
        assert s["cache"] + s["rss"] == usage
        assert s["rss"] == 9 * MiB and s["swap"] == 0
        assert s["inactive_anon"] + s["active_anon"] == s["rss"]
        assert s["inactive_file"] + s["active_file"] == s["cache"]
        assert s["dirty"] <= s["cache"]
        assert s["pgpgin"] == pages(20 * MiB)  # events, not bytes
        assert s["pgfault"] == pages(10 * MiB)
        assert s["pgpgin"] - s["pgpgout"] == g.memory.usage
        assert {k: s[k] for k in STAT_ITEMS} == {k: s[f"total_{k}"] for k in STAT_ITEMS}


@trio_test
async def test_swap_in_stat():
    async with controller(swap_bytes=64 * MiB) as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, pages(8 * MiB), PageKind.ANON)
        await c.set_limit(g, pages(4 * MiB))
        s = dict(c.memory_stat(g))
        assert s["swap"] == g.lruvec.swapped * PAGE_SIZE > 0
        assert s["rss"] + s["swap"] == 8 * MiB == g.memsw.usage * PAGE_SIZE


@trio_test
async def test_total_items_sum_over_the_subtree():
    async with controller() as c:
        a = c.create_group(c.root, "a")
        b = c.create_group(a, "b")
        d = c.create_group(b, "d")
        await c.charge(a, pages(1 * MiB), PageKind.FILE)
        await c.charge(b, pages(2 * MiB), PageKind.ANON)
        await c.charge(d, pages(4 * MiB), PageKind.FILE, dirty=True)
        s = dict(c.memory_stat(a))
        assert (s["cache"], s["rss"]) == (1 * MiB, 0)
        assert s["total_cache"] == 5 * MiB and s["total_rss"] == 2 * MiB
        assert s["total_dirty"] == 4 * MiB
        assert s["total_pgpgin"] == pages(7 * MiB)
        assert s["total_cache"] + s["total_rss"] == user_usage(a) * PAGE_SIZE
        # Kernel memory is in usage but in no page list: one 64-page batch for each group of the
        # subtree that made a child (root for a, a for b, b for d).
        overhead = {c.root: 192, a: 128, b: 64, d: 0}
        for node, kernel in overhead.items():
            ns = dict(c.memory_stat(node))
            assert ns["total_cache"] + ns["total_rss"] == user_usage(node) * PAGE_SIZE
            assert kernel_overhead(node) == kernel


@trio_test
async def test_numa_stat_in_pages():
    async with controller() as c:
        a = c.create_group(c.root, "a")
        b = c.create_group(a, "b")
        await c.charge(a, 10, PageKind.FILE)
        await c.charge(a, 5, PageKind.ANON)
        await c.charge(b, 100, PageKind.FILE)
        assert c.numa_stat(a) == [
            ("total", 15), ("file", 10), ("anon", 5), ("unevictable", 0),
            ("hierarchical_total", 115), ("hierarchical_file", 110), ("hierarchical_anon", 5),
            ("hierarchical_unevictable", 0),
        ]  # fmt: skip


@trio_test
async def test_each_list_has_its_own_line_and_values_follow_the_names():
    async with controller() as c:
        a = c.create_group(c.root, "a")
        b = c.create_group(a, "b")
        await c.charge(a, pages(4 * MiB), PageKind.ANON)
        await c.charge(a, pages(8 * MiB), PageKind.FILE, dirty=True)
        await c.charge(b, pages(2 * MiB), PageKind.FILE)
        a.lruvec.inactive_file.nr -= 100  # as if 100 pages had been found referenced twice
        a.lruvec.active_file.nr += 100
        s = dict(c.memory_stat(a))
        lru = a.lruvec
        for name in ("inactive_anon", "active_anon", "inactive_file", "active_file"):
            assert s[name] == getattr(lru, name).nr * PAGE_SIZE, name
        assert s["active_file"] == 100 * PAGE_SIZE
        assert s["dirty"] == lru.dirty() * PAGE_SIZE == 8 * MiB
        assert (s["total_inactive_file"]
                == s["inactive_file"] + b.lruvec.inactive_file.nr * PAGE_SIZE)  # fmt: skip
        assert c.memory_stat_values(a) == tuple(value for _, value in c.memory_stat(a))
        assert len(c.memory_stat_values(b)) == len(MEMORY_STAT_NAMES) == 2 * len(STAT_ITEMS) + 2
