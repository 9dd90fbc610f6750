"""Controller benchmarks (no FUSE): charge throughput and the cost of idle reclaim tasks."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc

import trio

from fakecgfs.controller import MemoryController, PageKind

GiB = 1 << 30
PAGE = 4096


def _median_min_max(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


async def _charge_rate(total: int, batch: int, limited: bool) -> float:
    """Bytes per second charging ``total`` bytes in ``batch``-byte calls (file pages)."""
    async with MemoryController.open() as ctl:
        group = ctl.create_group(ctl.root, "bench")
        if limited:  # a limit half the size: every batch past it reclaims directly
            await ctl.set_limit(group, total // 2 // PAGE)
        start = time.perf_counter()
        for _ in range(total // batch):
            await ctl.charge(group, batch // PAGE, PageKind.FILE)
        return total / (time.perf_counter() - start)


async def _idle_tasks(groups: int, idle_seconds: float) -> dict[str, float]:
    """Arm a high watermark in ``groups`` groups, then idle: count wake-ups and passes."""
    gc.collect()
    tracemalloc.start()
    async with MemoryController.open() as ctl:
        made = []
        for i in range(groups):
            g = ctl.create_group(ctl.root, f"g{i}")
            await ctl.set_limit(g, 64 << 20 >> 12)
            await ctl.set_high_wmark(g, 48 << 20 >> 12)
            made.append(g)
        await trio.sleep(0.01)  # let every task reach its first sleep
        before = sum(g.reclaim_task.stats.wakeups for g in made)
        cpu0 = time.process_time()
        await trio.sleep(idle_seconds)
        cpu = time.process_time() - cpu0
        after = sum(g.reclaim_task.stats.wakeups for g in made)
        passes = sum(g.reclaim_task.stats.passes for g in made)
        current, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {
            "groups": groups,
            "daemons": len(ctl.reclaim_tasks()),
            "idle_s": idle_seconds,
            "wakeups_while_idle": after - before,
            "passes": passes,
            "cpu_s": cpu,
            "bytes_per_group": current / groups,
        }


async def _memory_for_pages(total: int, groups: int) -> float:
    """Traced allocation growth while charging ``total`` bytes across ``groups`` groups."""
    gc.collect()
    tracemalloc.start()
    async with MemoryController.open() as ctl:
        for i in range(groups):
            g = ctl.create_group(ctl.root, f"g{i}")
            await ctl.charge(g, total // groups // PAGE, PageKind.ANON if i % 2 else PageKind.FILE)
        current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return current


def run(quick: bool) -> dict:
    repeats = 1 if quick else 5
    total = (64 << 20) if quick else GiB
    results: dict = {}
    for name, batch, limited in (
        ("charge_256K_batches", 256 << 10, False),
        ("charge_64K_batches_over_limit", 64 << 10, True),
    ):
        rates = [trio.run(_charge_rate, total, batch, limited) for _ in range(repeats)]
        results[name] = {**_median_min_max([r / GiB for r in rates]), "unit": "GiB/s"}
    results["idle_tasks"] = trio.run(_idle_tasks, 500 if quick else 10_000, 0.5 if quick else 10.0)
    results["memory_16GiB_pages"] = {
        "bytes": trio.run(_memory_for_pages, 16 * GiB, 64),
        "unit": "bytes traced",
    }
    return results
