"""FUSE benchmarks through real mounts: per-operation latency and concurrent throughput against the
fusepy baseline (both modes) and the kernel, a blocked charge's effect on other clients, and mount
and unmount time.

All mounts are up together and measured in turn within each repeat (fakecgfs, fusepy-mt,
fusepy-nothreads, kernel, then the next repeat), so a slow moment of the machine spreads over
every column instead of landing on one.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from fakecgfs import mounting

from . import common
from .common import Mount, median_min_max


def _latency_ops(m: Mount) -> dict[str, tuple]:
    """name -> (op factory, cleanup); factories return a zero-argument op."""
    ops: dict[str, tuple] = {
        "read usage_in_bytes (open+read+close)": (common.read_whole(str(m.root / m.usage)), None),
        "read stat (open+read+close)": (common.read_whole(str(m.root / m.stat)), None),
    }
    fd = os.open(m.root / m.usage, os.O_RDONLY)
    ops["pread usage_in_bytes (kept-open fd)"] = (
        lambda: os.pread(fd, 4096, 0),
        lambda: os.close(fd),
    )
    if m.group is not None:
        ops["write limit_in_bytes 4096 (open+write+close)"] = (
            common.write_once(str(m.group / m.limit), b"4096\n"),
            None,
        )
        ops["read usage_in_bytes in a group (depth 2)"] = (
            common.read_whole(str(m.group / m.usage)),
            None,
        )
    return ops


def latencies(mounts: list[Mount], iterations: int, repeats: int) -> dict:
    """Each operation on each mount: per-repeat medians, repeats interleaved across mounts."""
    per_mount = {m.name: _latency_ops(m) for m in mounts}
    samples: dict[tuple[str, str], list[dict]] = {}
    try:
        for _ in range(repeats):
            for m in mounts:
                for op_name, (op, _cleanup) in per_mount[m.name].items():
                    r = common.op_latency_us(op, iterations, 1, warmup=20)
                    samples.setdefault((op_name, m.name), []).append(r)
    finally:
        for ops in per_mount.values():
            for _op, cleanup in ops.values():
                if cleanup:
                    cleanup()
    results = {}
    for (op_name, mount_name), rs in samples.items():
        medians = [r["median"] for r in rs]
        results[f"{op_name} / {mount_name}"] = {
            **median_min_max(medians, "us"),
            "p99": statistics.median(r["p99"] for r in rs),
        }
    # Ratios against the faster fusepy baseline of the same run (the targets).
    for op_name in per_mount["fakecgfs"]:
        fake = results.get(f"{op_name} / fakecgfs")
        keys = (f"{op_name} / fusepy-mt", f"{op_name} / fusepy-nothreads")
        bases = [results[k]["median"] for k in keys if k in results]
        if fake and bases:
            results[f"{op_name} / ratio to faster fusepy"] = {
                "ratio": fake["median"] / min(bases),
                "unit": "x",
            }
    return results


def concurrency(mounts: list[Mount], duration: float, repeats: int) -> dict:
    """ops/s of 1, 2 and 8 readers (threads, then processes) doing open+read+close of the small
    file, repeats interleaved across mounts."""
    samples: dict[str, list[float]] = {}
    for _ in range(repeats):
        for kind in ("threads", "processes"):
            for readers in (1, 2, 8):
                for m in mounts:
                    rate = common.throughput(str(m.root / m.usage), readers, kind, duration)
                    samples.setdefault(f"{readers} {kind} / {m.name}", []).append(rate)
    return {f"throughput {name}": median_min_max(rates, "ops/s") for name, rates in samples.items()}


def blocked_charge(iterations: int, repeats: int) -> dict:
    """Read latency of memory.usage_in_bytes and of memory.stat in group ``other`` while a charge
    in group ``blocked`` waits under oom_kill_disable 1; then the limit is raised to release it."""
    results: dict = {}
    with common.fakecgfs_mount(group="other") as m:
        blocked = m.root / "blocked"
        os.mkdir(blocked)
        read_other = common.read_whole(str(m.group / "memory.usage_in_bytes"))
        read_other_stat = common.read_whole(str(m.group / "memory.stat"))
        results["blocked charge: read other group, nothing blocked"] = common.op_latency_us(
            read_other, iterations, repeats
        )
        results["blocked charge: read other group's memory.stat, nothing blocked"] = (
            common.op_latency_us(read_other_stat, iterations, repeats)
        )
        common.write_once(str(blocked / "memory.limit_in_bytes"), b"64M")()
        common.write_once(str(blocked / "memory.oom_control"), b"1")()
        outcome: dict = {}

        def charge() -> None:
            try:
                common.write_once(str(blocked / "fake.charge"), b"128M anon")()
                outcome["returned"] = time.perf_counter()
            except OSError as e:
                outcome["error"] = e
                outcome["returned"] = time.perf_counter()

        thread = threading.Thread(target=charge, daemon=True)
        thread.start()
        try:
            waiting = mounting.wait_until(
                lambda: b"under_oom 1" in common.read_whole(str(blocked / "memory.oom_control"))(),
                10.0,
                0.005,
            )
            if not waiting:
                raise RuntimeError("the charge did not block under oom_kill_disable 1")
            results["blocked charge: read other group, while a charge waits"] = (
                common.op_latency_us(read_other, iterations, repeats)
            )
            results["blocked charge: read other group's memory.stat, while a charge waits"] = (
                common.op_latency_us(read_other_stat, iterations, repeats)
            )
            still_blocked = (
                b"under_oom 1" in common.read_whole(str(blocked / "memory.oom_control"))()
            )
            released_at = time.perf_counter()
        finally:
            common.write_once(str(blocked / "memory.limit_in_bytes"), b"256M")()
            thread.join(10)
        results["blocked charge: still blocked after measuring"] = {"value": still_blocked}
        if "returned" in outcome:
            results["blocked charge: limit raise to charge write() return"] = {
                "value": (outcome["returned"] - released_at) * 1000,
                "unit": "ms",
                "charge": "succeeded" if "error" not in outcome else f"failed: {outcome['error']}",
            }
        else:
            results["blocked charge: limit raise to charge write() return"] = {
                "value": "the charge had not returned 10 s after the limit was raised"
            }
        for what in ("read other group", "read other group's memory.stat"):
            during = results[f"blocked charge: {what}, while a charge waits"]["median"]
            before = results[f"blocked charge: {what}, nothing blocked"]["median"]
            results[f"blocked charge: {what}, ratio blocked / unblocked"] = {
                "ratio": during / before,
                "unit": "x",
            }
    return results


# -- mount and unmount time --------------------------------------------------------------------


def _first_read(path: Path, deadline: float) -> float:
    """Poll until ``path`` reads; return perf_counter() at the first successful read."""
    read = common.read_whole(str(path))
    while True:
        try:
            read()
            return time.perf_counter()
        except OSError:
            if time.perf_counter() > deadline:
                raise
            time.sleep(0.0005)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _mount_cli_once() -> dict:
    """`fakecgfs mount DIR` (the command a user runs: it spawns the server and returns once
    the mount is usable) to the first successful read; then `fakecgfs umount DIR` and the
    server's exit."""
    fakecgfs = [sys.executable, "-m", "fakecgfs"]
    with tempfile.TemporaryDirectory(prefix="fakecgfs-bench-mount-") as tmp:
        mnt = Path(tmp) / "mnt"
        mnt.mkdir()
        pid = None
        try:
            t0 = time.perf_counter()
            cli = subprocess.Popen(
                [*fakecgfs, "mount", str(mnt), "--log", f"{tmp}/log"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            t_read = _first_read(mnt / "memory.usage_in_bytes", t0 + 15)
            out, _ = cli.communicate(timeout=15)
            t_cli = time.perf_counter()
            found = re.search(r"server pid (\d+)", out.decode())
            pid = int(found.group(1)) if found else None
            t1 = time.perf_counter()
            subprocess.run([*fakecgfs, "umount", str(mnt)], check=True, capture_output=True)
            t_umount = time.perf_counter()
            mounting.wait_until(lambda: pid is None or _gone(pid), 10, 0.001)
            t_exit = time.perf_counter()
            return {
                "to_first_read": t_read - t0,
                "cli_returned": t_cli - t0,
                "umount_cmd": t_umount - t1,
                "umount_to_server_exit": t_exit - t1,
            }
        finally:
            if common.is_mount(str(mnt), "fuse.fakecgfs") or mounting.is_stale(str(mnt)):
                subprocess.run(["fusermount", "-u", "-z", str(mnt)], capture_output=True)
            if pid is not None and not _gone(pid):
                os.kill(pid, 15)


def _mount_server_once(command: list[str], fstype: str, filename: str) -> dict:
    """A server started directly in the foreground (no spawning CLI) to the first read, then
    `fusermount -u` and the server's exit."""
    with tempfile.TemporaryDirectory(prefix="fakecgfs-bench-mount-") as tmp:
        mnt = Path(tmp) / "mnt"
        mnt.mkdir()
        t0 = time.perf_counter()
        server = subprocess.Popen(
            [*command, str(mnt)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            t_read = _first_read(mnt / filename, t0 + 15)
            t1 = time.perf_counter()
            subprocess.run(["fusermount", "-u", str(mnt)], check=True, capture_output=True)
            t_umount = time.perf_counter()
            server.wait(10)
            t_exit = time.perf_counter()
            return {
                "to_first_read": t_read - t0,
                "umount_cmd": t_umount - t1,
                "umount_to_server_exit": t_exit - t1,
            }
        finally:
            common.unmount_and_reap(mnt, server, fstype)


def mount_times(repeats: int) -> dict:
    samples: dict[str, dict[str, list[float]]] = {}
    foreground = [sys.executable, "-m", "fakecgfs", "mount", "--foreground"]
    baseline = [sys.executable, str(common.BENCH_DIR / "baseline_fs.py")]
    for _ in range(repeats):
        runs = {
            "fakecgfs mount (CLI)": _mount_cli_once(),
            "fakecgfs mount --foreground": _mount_server_once(
                foreground, "fuse.fakecgfs", "memory.usage_in_bytes"
            ),
            "fusepy-mt baseline": _mount_server_once(baseline, "fuse.baselinefs", "value"),
        }
        for name, figures in runs.items():
            for key, value in figures.items():
                samples.setdefault(name, {}).setdefault(key, []).append(value * 1000)
    results = {}
    for name, figures in samples.items():
        for key, values in figures.items():
            results[f"mount time: {name}: {key}"] = median_min_max(values, "ms")
    return results


def run(quick: bool) -> dict:
    reason = common.fuse_skip_reason()
    if reason:
        return {"skipped": reason}
    iterations, repeats = (200, 1) if quick else (2000, 5)
    duration, tp_repeats = (0.25, 1) if quick else (1.0, 3)
    results: dict = {}
    with contextlib.ExitStack() as stack:
        mounts = [
            stack.enter_context(common.fakecgfs_mount()),
            stack.enter_context(common.baseline_mount(nothreads=False)),
            stack.enter_context(common.baseline_mount(nothreads=True)),
        ]
        kernel = stack.enter_context(common.kernel_mount())
        if kernel is not None:
            mounts.append(kernel)
        results["columns"] = {
            "mounts": " ".join(m.name for m in mounts),
            "attr_entry_timeout_s": common.fakecgfs_attr_timeout(),
        }
        pids = [m.pid for m in mounts if m.pid is not None]
        for label, cpu in (("1 CPU", 0), ("2 CPUs", None)):
            with common.pinned(pids, cpu):
                figures = latencies(mounts, iterations, repeats)
            results.update({f"latency ({label}) {name}": v for name, v in figures.items()})
        results.update(concurrency(mounts, duration, tp_repeats))
    results.update(blocked_charge(iterations, repeats))
    results.update(mount_times(1 if quick else 5))
    return results
