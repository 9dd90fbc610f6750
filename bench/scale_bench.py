"""Scale through a real mount: create many groups, arm a high watermark in each (one reclaim task
per group), idle, then remove them all; the server's RSS and CPU come from /proc/<pid>."""

from __future__ import annotations

import gc
import os
import time

from . import common

MiB = 1 << 20


def _reclaim_tasks(root) -> int:
    return int(common.read_whole(str(root / "fake.daemons"))().split(b"\n", 1)[0])


def run(quick: bool) -> dict:
    reason = common.fuse_skip_reason()
    if reason:
        return {"skipped": reason}
    groups = 200 if quick else 10_000
    idle = 1.0 if quick else 10.0
    results: dict = {"groups": {"value": groups}}
    gc.collect()
    with common.fakecgfs_mount() as m:
        root, pid = m.root, m.pid
        # Warm the server up (first reads import and allocate what every later read reuses).
        for _ in range(200):
            common.read_whole(str(m.group / "memory.stat"))()
        iterations = 50 if quick else 200
        read_before = common.op_latency_us(
            common.read_whole(str(m.group / "memory.usage_in_bytes")), iterations, 1, warmup=5
        )
        time.sleep(0.2)
        rss_start = common.rss_bytes(pid)
        names = [root / f"s{i}" for i in range(groups)]

        t0 = time.perf_counter()
        for path in names:
            os.mkdir(path)
        mkdir_s = time.perf_counter() - t0
        rss_groups = common.rss_bytes(pid)

        t0 = time.perf_counter()
        for path in names:
            common.write_once(str(path / "memory.high_wmark_in_bytes"), b"48M")()
        arm_s = time.perf_counter() - t0
        reclaim_tasks = _reclaim_tasks(root)
        time.sleep(0.5)  # let every task reach its first sleep
        rss_armed = common.rss_bytes(pid)

        cpu0, t0 = common.cpu_seconds(pid), time.perf_counter()
        time.sleep(idle)
        idle_cpu = common.cpu_seconds(pid) - cpu0
        idle_wall = time.perf_counter() - t0

        # What group count does to reads: a group's own file, and the root's hierarchical stat.
        read_group = common.op_latency_us(
            common.read_whole(str(names[-1] / "memory.usage_in_bytes")), iterations, 1, warmup=5
        )
        read_root_stat = common.op_latency_us(
            common.read_whole(str(root / "memory.stat")), iterations // 5, 1, warmup=2
        )
        read_daemons = common.op_latency_us(
            common.read_whole(str(root / "fake.daemons")), iterations // 5, 1, warmup=2
        )

        t0 = time.perf_counter()
        for path in names:
            os.rmdir(path)
        rmdir_s = time.perf_counter() - t0
        rss_removed = common.rss_bytes(pid)
        time.sleep(1.0)
        rss_removed_1s = common.rss_bytes(pid)
        reclaim_tasks_left = _reclaim_tasks(root)

    results.update(
        {
            "mkdir": {"value": groups / mkdir_s, "unit": "groups/s", "total_s": mkdir_s},
            "arm high watermark (write + task start)": {
                "value": arm_s,
                "unit": "s",
                "per_group_us": arm_s / groups * 1e6,
            },
            "reclaim tasks running": {"value": reclaim_tasks},
            "server RSS at start": {"value": rss_start / MiB, "unit": "MiB"},
            "server RSS with the groups": {"value": rss_groups / MiB, "unit": "MiB"},
            "server RSS with the groups armed": {
                "value": rss_armed / MiB,
                "unit": "MiB",
                "per_group_KiB": (rss_armed - rss_start) / groups / 1024,
            },
            "server CPU idle with tasks armed": {
                "value": idle_cpu / idle_wall * 100,
                "unit": "% of one core",
                "over_s": idle_wall,
                "resolution_pct": 100 / common.CLK_TCK / idle_wall,
            },
            "read usage_in_bytes of one group, before the groups": read_before,
            "read usage_in_bytes of one group, with the groups": read_group,
            "read root memory.stat, with the groups": read_root_stat,
            "read root fake.daemons, with the groups": read_daemons,
            "rmdir all": {"value": rmdir_s, "unit": "s", "per_group_us": rmdir_s / groups * 1e6},
            "server RSS after rmdir": {
                "value": rss_removed / MiB,
                "unit": "MiB",
                "vs_start_pct": (rss_removed / rss_start - 1) * 100,
            },
            "server RSS 1 s after rmdir": {
                "value": rss_removed_1s / MiB,
                "unit": "MiB",
                "vs_start_pct": (rss_removed_1s / rss_start - 1) * 100,
            },
            "reclaim tasks left": {"value": reclaim_tasks_left},
        }
    )
    return results
