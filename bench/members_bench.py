"""Real processes (``mount --real-processes``): what following members costs and how fast a
limit bites.

* The cost of a read of ``memory.usage_in_bytes`` of a group with 0, 1, 10 and 100 idle members
  (``sleep`` processes): each such read re-samples the group's members first.
* The sampler's CPU with 100 idle members: the server's utime+stime over a window, against the
  same window with no member at all.
* From an over-limit allocation to the kill: a memhog (tests/helpers/memhog.c, built with cc)
  in a group limited to one page is told to touch two; timed from the write of the command to
  the moment its pidfd says it has exited.  Needs cc; skipped without.

Every process here is started by the benchmark and ended through a pidfd.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from . import common
from .common import median_min_max, quantile

ROOT = Path(__file__).resolve().parent.parent
MEMHOG = ROOT / "tests" / "helpers" / "memhog.c"
PAGE = 4096


class _Sleepers:
    """``sleep`` processes, killed through pidfds at the end."""

    def __init__(self) -> None:
        self.processes: list[tuple[subprocess.Popen, int]] = []

    def start(self, n: int) -> list[int]:
        pids = []
        for _ in range(n):
            p = subprocess.Popen(["sleep", "3600"])
            self.processes.append((p, os.pidfd_open(p.pid)))
            pids.append(p.pid)
        return pids

    def end(self) -> None:
        for p, pidfd in self.processes:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            p.wait()
            os.close(pidfd)
        self.processes.clear()


def _join(group: Path, pids: list[int]) -> None:
    for pid in pids:
        common.write_once(str(group / "cgroup.procs"), str(pid).encode())()


def usage_read_cost(m: common.Mount, sizes: tuple[int, ...], iterations: int, repeats: int) -> dict:
    results = {}
    sleepers = _Sleepers()
    try:
        for n in sizes:
            group = m.root / f"members{n}"
            os.mkdir(group)
            _join(group, sleepers.start(n))
            read = common.read_whole(str(group / "memory.usage_in_bytes"))
            results[f"read usage_in_bytes, {n} members"] = common.op_latency_us(
                read, iterations, repeats, warmup=10
            )
            sleepers.end()
    finally:
        sleepers.end()
    return results


def sampler_cpu(m: common.Mount, members: int, window: float) -> dict:
    def busy(seconds: float) -> float:
        before = common.cpu_seconds(m.pid)
        time.sleep(seconds)
        return (common.cpu_seconds(m.pid) - before) / seconds * 100

    idle = busy(window)
    sleepers = _Sleepers()
    try:
        group = m.root / "idle-members"
        os.mkdir(group)
        _join(group, sleepers.start(members))
        time.sleep(1.5)  # past the sampler's fast period after a change
        loaded = busy(window)
    finally:
        sleepers.end()
    return {
        f"sampler CPU, {members} idle members": {
            "value": round(loaded, 3),
            "unit": "% of a core",
            "without members": round(idle, 3),
            "window_s": window,
        }
    }


def _build_memhog(directory: str) -> Path | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    binary = Path(directory) / "memhog"
    subprocess.run([cc, "-O1", "-o", str(binary), str(MEMHOG)], check=True, timeout=120)
    return binary


def time_to_kill(m: common.Mount, binary: Path, repeats: int) -> dict:
    times = []
    for i in range(repeats):
        group = m.root / f"oom{i}"
        os.mkdir(group)
        common.write_once(str(group / "memory.limit_in_bytes"), str(PAGE).encode())()
        p = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        pidfd = os.pidfd_open(p.pid)
        try:
            p.stdout.readline()
            for line in (b"anon 1\n", b"free\n"):  # warm up before joining
                p.stdin.write(line)
                p.stdin.flush()
                p.stdout.readline()
            _join(group, [p.pid])
            t0 = time.perf_counter()
            p.stdin.write(b"anon 2\n")
            p.stdin.flush()
            select.select([pidfd], [], [], 30)
            times.append((time.perf_counter() - t0) * 1000)
        finally:
            if p.poll() is None:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            p.wait()
            os.close(pidfd)
    return {
        "over-limit allocation to kill": {
            **median_min_max(times, "ms"),
            "p90": quantile(times, 0.9),
            "n": len(times),
        }
    }


def run(quick: bool) -> dict:
    if common.fuse_skip_reason():
        return {"skipped": common.fuse_skip_reason()}
    results: dict = {}
    with common.fakecgfs_mount("--real-processes") as m:
        sizes = (0, 1, 10) if quick else (0, 1, 10, 100)
        results.update(usage_read_cost(m, sizes, 50 if quick else 500, 1 if quick else 5))
        results.update(sampler_cpu(m, 10 if quick else 100, 1.0 if quick else 10.0))
        with tempfile.TemporaryDirectory(prefix="fakecgfs-bench-") as tmp:
            binary = _build_memhog(tmp)
            if binary is None:
                results["over-limit allocation to kill"] = "skipped: no cc"
            else:
                results.update(time_to_kill(m, binary, 3 if quick else 30))
    return results
