"""Charge and background reclaim: 1 GiB through ``fake.charge``, the reclaim task taking 1 GiB from
the high to the low watermark, charge throughput of the Python API, and the wake-up latency from
the write that lifts usage above the high watermark to the task's first pass.

Clocks.  The server's event trace (``--trace``) stamps events with trio.current_time(), which for
trio's default clock is ``time.perf_counter()`` plus a random offset fixed per run; perf_counter is
CLOCK_MONOTONIC, shared by every process of the machine.  The offset is recovered from the
"group created" events of a few mkdirs: each event happened between the client's perf_counter()
before and after its mkdir(), which brackets the offset; the tightest bracket over all mkdirs is
kept and its width is reported as the uncertainty of every cross-process latency.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import trio

from fakecgfs.controller import EventKind, MemoryController, PageKind

from . import common
from .common import median_min_max

MiB = 1 << 20
GiB = 1 << 30
PAGE = 4096


def _reclaim_task(group: Path) -> dict[str, str]:
    text = common.read_whole(str(group / "fake.reclaim_daemon"))().decode()
    return dict(line.partition(" ")[::2] for line in text.splitlines())


# -- through the mount, no trace ---------------------------------------------------------------


def charge_through_mount(m: common.Mount, size: int, repeats: int) -> dict:
    """One write of 'SIZE file' to fake.charge in a fresh, unlimited group."""
    times = []
    text = f"{size} file".encode()
    for i in range(repeats):
        group = m.root / f"charge{i}"
        os.mkdir(group)
        t0 = time.perf_counter()
        common.write_once(str(group / "fake.charge"), text)()
        times.append(time.perf_counter() - t0)
        common.write_once(str(group / "fake.uncharge"), text)()
        os.rmdir(group)
    label = f"fake.charge {size // MiB} MiB file (one write)"
    return {label: median_min_max([t * 1000 for t in times], "ms")}


def reclaim_through_mount(m: common.Mount, size: int, repeats: int) -> dict:
    """High watermark 64 MiB + ``size``, low 64 MiB: one write charges one page over the high
    watermark, and the task (full speed, the default pace) reclaims ``size`` bytes + 1 page.
    Timed on the client: from the charge write's return until fake.reclaim_daemon reads
    sleeping with usage at the low watermark (polled in a loop: each poll is one read, so the
    figure includes the polling's own load); and on the server: the task's time_running_ns.
    Each poll also times a read of memory.stat in another group (rendered in the trio loop), to
    compare with the same read while nothing runs: what a full-speed task costs other clients."""
    low = 64 * MiB
    high = low + size
    client, server, passes, poll_lat = [], [], [], []
    other = m.root / "other"
    os.mkdir(other)
    read_other = common.read_whole(str(other / "memory.stat"))
    idle = common.op_latency_us(read_other, 200 if repeats > 1 else 50, 1, warmup=10)
    for i in range(repeats):
        group = m.root / f"reclaim{i}"
        os.mkdir(group)
        common.write_once(str(group / "memory.high_wmark_in_bytes"), str(high).encode())()
        common.write_once(str(group / "memory.low_wmark_in_bytes"), str(low).encode())()
        before = int(_reclaim_task(group)["time_running_ns"])
        t0 = time.perf_counter()
        common.write_once(str(group / "fake.charge"), f"{high + PAGE} file".encode())()
        t_write = time.perf_counter()
        while True:
            p0 = time.perf_counter()
            read_other()
            p1 = time.perf_counter()
            poll_lat.append(p1 - p0)
            d = _reclaim_task(group)
            if d["state"] == "sleeping" and int(d["usage"]) <= low:
                break
            if p1 - t0 > 60:
                raise RuntimeError(f"reclaim did not finish: {d}")
            time.sleep(0.001)
        client.append(p1 - t_write)
        server.append((int(d["time_running_ns"]) - before) / 1e9)
        passes.append(int(d["passes"]))
        common.write_once(str(group / "memory.high_wmark_in_bytes"), b"-1")()
        os.rmdir(group)
    label = f"reclaim {size // MiB} MiB high->low"
    return {
        f"{label}: charge write() return to settled (client, 1 ms polls)": median_min_max(
            [t * 1000 for t in client], "ms"
        ),
        f"{label}: task time running (server, time_running_ns)": median_min_max(
            [t * 1000 for t in server], "ms"
        ),
        f"{label}: passes": {"value": statistics.median(passes)},
        "read another group's memory.stat, nothing running": idle,
        f"read another group's memory.stat while the task reclaims {size // MiB} MiB": {
            **median_min_max([t * 1e6 for t in poll_lat], "us"),
            "p99": common.quantile([t * 1e6 for t in poll_lat], 0.99),
            "reads": len(poll_lat),
        },
    }


# -- through the mount, with the trace: wake-up latency ----------------------------------------


def _events(trace: Path) -> list[dict]:
    with open(trace) as f:
        return [json.loads(line) for line in f if line.strip()]


def _calibrate(root: Path, trace: Path, samples: int) -> tuple[float, float]:
    """The trio clock's offset to perf_counter, from mkdir brackets: (offset, uncertainty)."""
    brackets = {}
    for i in range(samples):
        name = f"calib{i}"
        t0 = time.perf_counter()
        os.mkdir(root / name)
        t1 = time.perf_counter()
        brackets[f"/{name}"] = (t0, t1)
    low, high = float("-inf"), float("inf")
    for ev in _events(trace):
        if ev["kind"] == "group" and ev.get("action") == "created" and ev["group"] in brackets:
            t0, t1 = brackets[ev["group"]]
            low = max(low, ev["time"] - t1)
            high = min(high, ev["time"] - t0)
    for i in range(samples):
        os.rmdir(root / f"calib{i}")
    if low > high:
        raise RuntimeError("inconsistent clock calibration")
    return (low + high) / 2, (high - low) / 2


def wakeup_through_mount(repeats: int, calibration: int) -> dict:
    """Group ``wake``: high watermark 64 MiB, low 60 MiB, usage parked at the low watermark.  Each
    repeat writes '8M file' to fake.charge on an open descriptor (lifting usage 4 MiB above the
    high watermark), then waits for the task to settle.  From the trace: the task's wake-up (its
    daemon_state event to "running", emitted just before the first pass) and the end of its first
    pass (the first "reclaim" event with cause "background", emitted after the pass).  Latencies
    count from the client's perf_counter() just before write(), so they include the request's
    trip through the kernel to the server; "from return" counts from write() returning."""
    with tempfile.TemporaryDirectory(prefix="fakecgfs-bench-trace-") as tmp:
        trace = Path(tmp) / "trace.jsonl"
        with common.fakecgfs_mount("--trace", str(trace), group="wake") as m:
            offset, uncertainty = _calibrate(m.root, trace, calibration)
            group = m.group
            common.write_once(str(group / "memory.high_wmark_in_bytes"), b"64M")()
            common.write_once(str(group / "memory.low_wmark_in_bytes"), b"60M")()
            common.write_once(str(group / "fake.charge"), b"60M file")()
            writes = []
            for _ in range(repeats):
                fd = os.open(group / "fake.charge", os.O_WRONLY)
                try:
                    t0 = time.perf_counter()
                    os.write(fd, b"8M file")
                    t1 = time.perf_counter()
                finally:
                    os.close(fd)
                writes.append((t0, t1))
                while True:
                    d = _reclaim_task(group)
                    if d["state"] == "sleeping" and int(d["usage"]) <= 60 * MiB:
                        break
                    time.sleep(0.001)
            events = [ev for ev in _events(trace) if ev["group"] == "/wake"]
    woke = [
        ev["time"] - offset
        for ev in events
        if ev["kind"] == "daemon_state" and ev.get("state") == "running"
    ]
    passes = [
        ev["time"] - offset
        for ev in events
        if ev["kind"] == "reclaim" and ev.get("cause") == "background"
    ]
    figures: dict[str, list[float]] = {"running": [], "pass": [], "pass_from_return": []}
    for t0, t1 in writes:
        first_woke = min((t for t in woke if t >= t0 - uncertainty), default=None)
        first_pass = min((t for t in passes if t >= t0 - uncertainty), default=None)
        if first_woke is None or first_pass is None:
            continue
        figures["running"].append((first_woke - t0) * 1e6)
        figures["pass"].append((first_pass - t0) * 1e6)
        figures["pass_from_return"].append((first_pass - t1) * 1e6)
    n = len(figures["pass"])
    return {
        "wake-up: write() call to the task running (mount, trace)": {
            **median_min_max(figures["running"], "us"),
            "samples": n,
            "clock_uncertainty_us": uncertainty * 1e6,
        },
        "wake-up: write() call to first background pass done (mount, trace)": {
            **median_min_max(figures["pass"], "us"),
            "samples": n,
            "clock_uncertainty_us": uncertainty * 1e6,
        },
        "wake-up: write() return to first background pass done (mount, trace)": {
            **median_min_max(figures["pass_from_return"], "us"),
            "samples": n,
        },
    }


# -- in process: the controller API, no FUSE ---------------------------------------------------


async def _api_charge_rate(total_pages: int, per_call: int) -> float:
    async with MemoryController.open() as ctl:
        group = ctl.create_group(ctl.root, "bench")
        calls = total_pages // per_call
        t0 = time.perf_counter()
        for _ in range(calls):
            await ctl.charge(group, per_call, PageKind.FILE)
        return calls * per_call / (time.perf_counter() - t0)


async def _api_wakeup_and_reclaim(size: int, repeats: int) -> dict:
    """In one controller: the time from the start of the charge call that lifts usage above the
    high watermark to the task's first background pass (trio clock), and the task's time from
    that charge to sleeping at the low watermark for ``size`` bytes."""
    first_pass: list[float] = []
    running: list[float] = []
    asleep: list[float] = []

    def listener(ev) -> None:
        if (
            ev.kind is EventKind.RECLAIM
            and ev.values.get("cause") == "background"
            and not first_pass
        ):
            first_pass.append(ev.time)
        if (
            ev.kind is EventKind.DAEMON_STATE
            and ev.values.get("state") == "running"
            and not running
        ):
            running.append(ev.time)
        if ev.kind is EventKind.DAEMON_STATE and ev.values.get("state") == "sleeping":
            asleep.append(ev.time)

    woke, wake, reclaim = [], [], []
    async with MemoryController.open() as ctl:
        ctl.subscribe(listener)
        for i in range(repeats):
            group = ctl.create_group(ctl.root, f"g{i}")
            low = 64 * MiB // PAGE
            await ctl.set_high_wmark(group, low + size // PAGE)
            ctl.set_low_wmark(group, low)
            await trio.sleep(0.01)
            first_pass.clear()
            running.clear()
            asleep.clear()
            t0 = trio.current_time()
            await ctl.charge(group, low + size // PAGE + 1, PageKind.FILE)
            while not (asleep and group.memory.usage <= low):
                await trio.sleep(0.0005)
            woke.append((running[0] - t0) * 1e6)
            wake.append((first_pass[0] - t0) * 1e6)
            reclaim.append((asleep[-1] - t0) * 1e3)
            await ctl.remove_group(group)
    return {"woke": woke, "wake": wake, "reclaim": reclaim}


def api(quick: bool) -> dict:
    total_pages = (64 * MiB if quick else GiB) // PAGE
    results = {}
    for per_call in (1, 64, total_pages):
        pages = total_pages // 16 if per_call == 1 else total_pages  # 1-page calls: fewer
        rates = [trio.run(_api_charge_rate, pages, per_call) for _ in range(1 if quick else 3)]
        label = "all at once" if per_call == total_pages else f"{per_call}-page calls"
        results[f"API charge throughput, {label}"] = median_min_max(rates, "pages/s")
    size = 64 * MiB if quick else GiB
    r = trio.run(_api_wakeup_and_reclaim, size, 1 if quick else 5)
    results.update(
        {
            "wake-up: charge() call to the task running (API, no FUSE)": median_min_max(
                r["woke"], "us"
            ),
            "wake-up: charge() call to first background pass done (API, no FUSE)": median_min_max(
                r["wake"], "us"
            ),
            f"reclaim {size // MiB} MiB high->low: charge to task asleep (API, no FUSE)": (
                median_min_max(r["reclaim"], "ms")
            ),
        }
    )
    return results


def run(quick: bool) -> dict:
    results: dict = {}
    results.update(api(quick))
    reason = common.fuse_skip_reason()
    if reason:
        results["mount"] = {"skipped": reason}
        return results
    size = 64 * MiB if quick else GiB
    repeats = 1 if quick else 5
    with common.fakecgfs_mount() as m:
        results.update(charge_through_mount(m, size, repeats))
        results.update(reclaim_through_mount(m, size, repeats))
    results.update(wakeup_through_mount(5 if quick else 50, 20 if quick else 100))
    return results
