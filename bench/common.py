"""What the FUSE benchmarks share: timing loops, mounts (fakecgfs, the fusepy baseline, the
kernel's hierarchy), server RSS and CPU from /proc.

Every mount is a child process, always unmounted (``fusermount -u -z``) and killed in a
``finally``; the benchmarks never touch a mount from its server process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fakecgfs import mounting
from fakecgfs.testing import fuse_unavailable_reason, mounted

BENCH_DIR = Path(__file__).resolve().parent
KERNEL_ROOT = Path("/sys/fs/cgroup/memory")
KERNEL_GROUP_PREFIX = "fakecgfs-conformance-bench-"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MOUNT_TIMEOUT = mounting.SERVER_READY_TIMEOUT


def median_min_max(samples: list[float], unit: str | None = None) -> dict:
    result: dict = {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}
    if unit:
        result["unit"] = unit
    return result


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- timing ------------------------------------------------------------------------------------


def op_latency_us(
    op: Callable[[], object], iterations: int, repeats: int, warmup: int = 50
) -> dict:
    """``op`` timed one call at a time (perf_counter_ns) ``iterations`` times, ``repeats`` times:
    median, min and max over the repeats of each repeat's median, in microseconds; ``p99`` is the
    median over repeats of each repeat's 99th percentile."""
    for _ in range(warmup):
        op()
    medians, p99s = [], []
    clock = time.perf_counter_ns
    for _ in range(repeats):
        samples = []
        append = samples.append
        for _ in range(iterations):
            t0 = clock()
            op()
            append(clock() - t0)
        medians.append(statistics.median(samples) / 1000)
        p99s.append(quantile(samples, 0.99) / 1000)
    return {**median_min_max(medians, "us"), "p99": statistics.median(p99s)}


def read_whole(path: str) -> Callable[[], bytes]:
    """open + read until EOF + close, as cat does (two read() calls for a small file)."""

    def op() -> bytes:
        fd = os.open(path, os.O_RDONLY)
        try:
            data = os.read(fd, 65536)
            while True:
                more = os.read(fd, 65536)
                if not more:
                    return data
                data += more
        finally:
            os.close(fd)

    return op


def write_once(path: str, data: bytes) -> Callable[[], int]:
    """open(O_WRONLY) + one write() + close, as ``echo 4096 > file`` does (without O_TRUNC)."""

    def op() -> int:
        fd = os.open(path, os.O_WRONLY)
        try:
            return os.write(fd, data)
        finally:
            os.close(fd)

    return op


# -- throughput with concurrent readers --------------------------------------------------------


def _reader_loop(path: str, start_at: float, duration: float) -> int:
    op = read_whole(path)
    while time.monotonic() < start_at:
        time.sleep(0.001)
    deadline = start_at + duration
    count = 0
    while time.monotonic() < deadline:
        op()
        count += 1
    return count


def _process_reader(path: str, start_at: float, duration: float, conn) -> None:
    try:
        conn.send(_reader_loop(path, start_at, duration))
    finally:
        conn.close()


def throughput(path: str, readers: int, kind: str, duration: float) -> float:
    """Operations per second of ``readers`` threads or processes each doing open + read + close
    of ``path`` in a loop for ``duration`` seconds, all starting together."""
    start_at = time.monotonic() + (0.3 if kind == "processes" else 0.05)
    if kind == "threads":
        counts = [0] * readers

        def run(i: int) -> None:
            counts[i] = _reader_loop(path, start_at, duration)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(readers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(counts) / duration
    import multiprocessing

    ctx = multiprocessing.get_context("fork")  # this process holds no lock a child could need
    pipes, procs = [], []
    for _ in range(readers):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_process_reader, args=(path, start_at, duration, child))
        p.start()
        child.close()
        pipes.append(parent)
        procs.append(p)
    try:
        total = sum(conn.recv() for conn in pipes)
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    return total / duration


# -- /proc -------------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def set_affinity(pid: int | None, cpus: set[int]) -> None:
    """Move every thread of ``pid`` (None: this process) to ``cpus``; threads it creates later
    inherit the mask from their creator."""
    for tid in [int(t) for t in os.listdir(f"/proc/{pid or 'self'}/task")]:
        try:
            os.sched_setaffinity(tid, cpus)
        except (ProcessLookupError, PermissionError):
            pass


@contextlib.contextmanager
def pinned(pids: list[int], cpu: int | None) -> Iterator[None]:
    """Run the block with this process and the servers ``pids`` on one CPU (None: no pinning)."""
    if cpu is None:
        yield
        return
    everything = os.sched_getaffinity(0)
    for pid in [None, *pids]:
        set_affinity(pid, {cpu})
    try:
        yield
    finally:
        for pid in [None, *pids]:
            set_affinity(pid, everything)


# -- mounts ------------------------------------------------------------------------------------


def is_mount(path: str, fstype: str) -> bool:
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[4].replace("\\040", " ") == path and fields[sep + 1] == fstype:
                return True
    return False


@dataclass
class Mount:
    name: str  # a column name: fakecgfs, fusepy-mt, fusepy-nothreads, kernel
    root: Path  # where the files are
    pid: int | None  # the server process, None for the kernel
    group: Path  # a directory (depth 1) whose files are written: a child group or baseline's g
    usage: str  # the small file's name, relative to root or group
    stat: str  # the ~1 KB file's name
    limit: str  # the written file's name


def fuse_skip_reason() -> str | None:
    return fuse_unavailable_reason()


@contextlib.contextmanager
def fakecgfs_mount(*options: str, group: str = "bench") -> Iterator[Mount]:
    """A fakecgfs server in a child process (fakecgfs.testing.mounted) with a group ``group``."""
    with (
        tempfile.TemporaryDirectory(prefix="fakecgfs-bench-") as tmp,
        mounted(Path(tmp), *options) as m,
    ):
        os.mkdir(m.path / group)
        yield Mount(
            "fakecgfs",
            m.path,
            m.process.pid,
            m.path / group,
            "memory.usage_in_bytes",
            "memory.stat",
            "memory.limit_in_bytes",
        )


def fakecgfs_attr_timeout() -> float:
    """The attribute/entry cache timeout fakecgfs mounts with (0 if it does not say), which the
    baseline copies so that both see the same stream of requests."""
    try:
        from fakecgfs.cgroupfs import server
    except ImportError:
        return 0.0
    return float(getattr(server, "ATTR_TIMEOUT", 0.0))


@contextlib.contextmanager
def baseline_mount(
    nothreads: bool, *, mfusepy_libfuse: str | None = None, name: str | None = None
) -> Iterator[Mount]:
    """bench/baseline_fs.py in a child process, always unmounted and reaped; on fusepy, or on
    mfusepy with the libfuse ``mfusepy_libfuse`` names ("fuse" or "fuse3") when it is given."""
    with tempfile.TemporaryDirectory(prefix="fakecgfs-bench-baseline-") as tmp:
        mountpoint = Path(tmp) / "mnt"
        mountpoint.mkdir()
        log = Path(tmp) / "server.log"
        command = [
            sys.executable,
            str(BENCH_DIR / "baseline_fs.py"),
            str(mountpoint),
            "--attr-timeout",
            str(fakecgfs_attr_timeout()),
        ]
        if nothreads:
            command.append("--nothreads")
        env = None
        if mfusepy_libfuse is not None:
            command += ["--library", "mfusepy"]
            env = {**os.environ, "FUSE_LIBRARY_NAME": mfusepy_libfuse}  # how mfusepy picks one
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env
            )
        try:
            ready = mounting.wait_until(
                lambda: process.poll() is not None or is_mount(str(mountpoint), "fuse.baselinefs"),
                MOUNT_TIMEOUT,
            )
            if process.poll() is not None or not ready:
                raise RuntimeError(f"baseline did not mount: {log.read_text()}")
            name = name or ("fusepy-nothreads" if nothreads else "fusepy-mt")
            yield Mount(name, mountpoint, process.pid, mountpoint / "g", "value", "stat", "value")
        finally:
            unmount_and_reap(mountpoint, process, "fuse.baselinefs")


def unmount_and_reap(mountpoint: Path, process: subprocess.Popen, fstype: str) -> None:
    try:
        if is_mount(str(mountpoint), fstype) or mounting.is_stale(str(mountpoint)):
            subprocess.run(["fusermount", "-u", "-z", str(mountpoint)], capture_output=True)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def kernel_available() -> bool:
    return (KERNEL_ROOT / "memory.usage_in_bytes").exists()


@contextlib.contextmanager
def kernel_mount() -> Iterator[Mount | None]:
    """The kernel's v1 hierarchy: the root's files are only read (O_RDONLY); a child group named
    fakecgfs-conformance-bench-<hex> is created for the write benchmark (its limit is the only
    file ever written; no task is attached) and removed in the finally.  None without v1."""
    if not kernel_available():
        yield None
        return
    group = KERNEL_ROOT / f"{KERNEL_GROUP_PREFIX}{secrets.token_hex(4)}"
    try:
        os.mkdir(group)
    except OSError:
        group = None  # read-only use only: no write column
    try:
        yield Mount(
            "kernel",
            KERNEL_ROOT,
            None,
            group,
            "memory.usage_in_bytes",
            "memory.stat",
            "memory.limit_in_bytes",
        )
    finally:
        if group is not None:
            for _ in range(50):
                try:
                    os.rmdir(group)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
