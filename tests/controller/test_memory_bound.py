"""Pages are counts, never objects: 16 GiB of simulated memory costs kilobytes of Python memory."""

from __future__ import annotations

import tracemalloc

from fakecgfs.controller import PAGE_SIZE, PageKind

from .conftest import GiB, MiB, controller, kernel_overhead, trio_test, user_memsw_usage, user_usage

GROUPS = 64
TOTAL_PAGES = 16 * GiB // PAGE_SIZE  # 4194304
# Kernel memory for 64 children, as measured on 6.18: 3 pages for the first, 2 for each next.
PARENT_KMEM = 3 + 63 * 2  # 129 pages
# memory and memsw grow by whole per-CPU stock batches of 64 pages: 3 batches cover 129 pages.
PARENT_OVERHEAD = 3 * 64


@trio_test
async def test_16_gib_of_pages_costs_kilobytes():
    assert TOTAL_PAGES == 4194304
    per_group = TOTAL_PAGES // GROUPS
    async with controller(swap_bytes=1 * GiB) as c:
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            parent = c.create_group(c.root, "all")
            for i in range(GROUPS):
                g = c.create_group(parent, f"g{i}")
                half = per_group // 2
                await c.charge(g, half, PageKind.FILE, dirty=i % 2 == 0)
                await c.charge(g, per_group - half, PageKind.ANON)
                c.touch(g, per_group // 8)
            assert user_usage(c.root) == user_memsw_usage(parent) == TOTAL_PAGES
            # Plus kernel memory for the groups: the parent's for its 64 children, and the
            # root's one batch for the parent.
            assert parent.kmem.usage == PARENT_KMEM
            assert parent.memsw.usage == TOTAL_PAGES + PARENT_OVERHEAD
            assert kernel_overhead(c.root) == PARENT_OVERHEAD + 64 == 256
            # Some reclaim too: the lists move counts around, not pages.
            result = c.reclaim(parent, 256 * MiB // PAGE_SIZE, cause="test")
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.swapped_out > 0 and result.reclaimed > result.swapped_out
        assert user_usage(c.root) == TOTAL_PAGES - result.reclaimed
        assert c.root.memory.usage == TOTAL_PAGES - result.reclaimed + 256  # kmem is unreclaimable
        assert c.swap.used == result.swapped_out
        growth = after - before
        assert growth < 150 * MiB
        assert peak - before < 150 * MiB
        assert growth < 2 * MiB, f"{growth} bytes for {GROUPS} groups"  # in fact tens of KiB
