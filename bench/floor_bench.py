"""The floors of issue 19: fakecgfs against a C libfuse2 filesystem and fusepy, in one run.

Mounted together: the C floor (bench/c_floor.c, built here with cc and pkg-config fuse) in
libfuse's single-threaded (``C -s``) and multithreaded (``C MT``) loops, the fusepy baseline in
both of fusepy's modes, fakecgfs, and the kernel's hierarchy when it has v1.  The C floor and the
fusepy baseline mount with fakecgfs's own options (``server.fuse_options``), so the kernel sends
all of them the same requests for the same system call.

Measured, one mount after the other within each repeat, the median of each repeat's median:

* open + read + close of root ``memory.limit_in_bytes`` (the floors' ``value``), as cat does;
* pread on a kept-open descriptor of it;
* open + write("4096\\n") + close of a group's ``memory.limit_in_bytes`` (the floors' ``g/value``);
* 8 reader processes doing open + read + close, ops/s;

each pinned (client and every server thread on CPU 0: the work per request) and unpinned (with
this machine's cross-CPU wake-ups).  Then each server's CPU per operation: utime + stime from
/proc/PID/stat (every thread, dead ones included) before and after a fixed number of operations,
pinned.  Every fakecgfs figure is also given as a ratio to C -s, C MT and fusepy-nothreads.

Optionally (issue 17), the fusepy baseline also runs on mfusepy, on libfuse2 and on libfuse3,
in both modes (``mfusepy-nothreads-fuse2`` ... ``mfusepy-mt-fuse3``), with each one's ratio to
fusepy in the same mode and fakecgfs's ratio to it.  mfusepy is not a dependency: without it,
or without a libfuse, the section says so in one line and goes on.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from fakecgfs import mounting

from . import common
from .common import Mount, median_min_max

C_SOURCE = common.BENCH_DIR / "c_floor.c"
C_FSTYPE = "fuse.cfloor"
READERS = 8
WRITTEN = b"4096\n"

OPERATIONS = ("open+read+close", "pread", "open+write+close")
FLOORS = ("C -s", "C MT", "fusepy-nothreads")  # what fakecgfs figures are divided by
PINNINGS = (("pinned", 0), ("unpinned", None))
MFUSEPY_LIBFUSES = (("fuse2", "fuse"), ("fuse3", "fuse3"))  # column suffix, FUSE_LIBRARY_NAME
MODES = (("nothreads", True), ("mt", False))


# -- the C floor -------------------------------------------------------------------------------


def build_c_floor(build_dir: Path) -> tuple[Path | None, str]:
    """Compile bench/c_floor.c into ``build_dir``: (the binary, "") or (None, why not)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler (cc); ./scripts/setup --bench installs one"
    if shutil.which("pkg-config") is None:
        return None, "no pkg-config; ./scripts/setup --bench installs it"
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "fuse"], capture_output=True, text=True
    )
    if flags.returncode != 0:
        return None, (
            "no libfuse2 headers (pkg-config fuse); ./scripts/setup --bench installs libfuse-dev"
        )
    binary = build_dir / "c_floor"
    built = subprocess.run(
        [cc, "-O2", "-Wall", "-o", str(binary), str(C_SOURCE), *flags.stdout.split()],
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        return None, f"{cc} failed: {built.stderr.strip()[-300:]}"
    return binary, ""


def c_floor_options() -> str:
    """fakecgfs's mount options, under the floor's own fsname and subtype."""
    import fuse

    from fakecgfs.cgroupfs.server import MountOptions, fuse_options

    options = {**fuse_options(MountOptions()), "fsname": "cfloor", "subtype": "cfloor"}
    return ",".join(fuse.FUSE._normalize_fuse_options(**options))


@contextlib.contextmanager
def c_floor_mount(binary: Path, single_threaded: bool) -> Iterator[Mount]:
    """The C floor in the foreground in a child process, always unmounted and reaped."""
    with tempfile.TemporaryDirectory(prefix="fakecgfs-bench-cfloor-") as tmp:
        mountpoint = Path(tmp) / "mnt"
        mountpoint.mkdir()
        log = Path(tmp) / "server.log"
        command = [str(binary), str(mountpoint), "-f", "-o", c_floor_options()]
        if single_threaded:
            command.append("-s")
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file
            )
        try:
            ready = mounting.wait_until(
                lambda: process.poll() is not None or common.is_mount(str(mountpoint), C_FSTYPE),
                common.MOUNT_TIMEOUT,
            )
            if process.poll() is not None or not ready:
                raise RuntimeError(f"the C floor did not mount: {log.read_text()}")
            name = "C -s" if single_threaded else "C MT"
            yield Mount(name, mountpoint, process.pid, mountpoint / "g", "value", "value", "value")
        finally:
            common.unmount_and_reap(mountpoint, process, C_FSTYPE)


# -- mfusepy (issue 17), optional ---------------------------------------------------------------


def mfusepy_libfuses() -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The libfuses mfusepy can be measured on here, as (column suffix, library name), and
    why each of the others cannot."""
    if importlib.util.find_spec("mfusepy") is None:
        why = "not importable (optional, never a dependency: pip install mfusepy into the venv)"
        return [], {"mfusepy": why}
    usable, skipped = [], {}
    for suffix, library in MFUSEPY_LIBFUSES:
        if ctypes.util.find_library(library) is None:
            skipped[f"mfusepy on {suffix}"] = f"no lib{library} installed"
        else:
            usable.append((suffix, library))
    return usable, skipped


def _maps_library(pid: int, library: str) -> bool:
    """Whether process ``pid`` has lib<library>.so mapped (libfuse.so is not libfuse3.so)."""
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
        return any(f"/lib{library}.so" in line for line in f)


@contextlib.contextmanager
def mfusepy_mount(nothreads: bool, suffix: str, library: str) -> Iterator[Mount]:
    """The fusepy baseline's filesystem on mfusepy and ``library``, checked to be the one
    loaded (a FUSE_LIBRARY_PATH in the environment would override the name)."""
    name = f"mfusepy-{'nothreads' if nothreads else 'mt'}-{suffix}"
    with common.baseline_mount(nothreads, mfusepy_libfuse=library, name=name) as m:
        assert m.pid is not None
        if not _maps_library(m.pid, library):
            raise RuntimeError(f"{name}: the server did not load lib{library}")
        yield m


def mfusepy_ratios(figures: dict, op_name: str, key: str) -> dict:
    """For each mfusepy mount in ``figures``: its ratio to fusepy in the same mode
    ("mfusepy-MODE-fuseN to fusepy-MODE") and fakecgfs's to it ("fakecgfs to mfusepy-...")."""
    out = {}
    fake = figures.get((op_name, "fakecgfs"))
    names = {mount for (op, mount) in figures if op == op_name and mount.startswith("mfusepy-")}
    for name in sorted(names):
        value = figures[(op_name, name)][key]
        fusepy = f"fusepy-{name.split('-')[1]}"  # the same mode
        if figures.get((op_name, fusepy)) and figures[(op_name, fusepy)][key]:
            out[f"{name} to {fusepy}"] = value / figures[(op_name, fusepy)][key]
        if fake is not None and value:
            out[f"fakecgfs to {name}"] = fake[key] / value
    return out


# -- operations --------------------------------------------------------------------------------


@contextlib.contextmanager
def operations(m: Mount) -> Iterator[dict[str, Callable[[], object]]]:
    """The three timed operations on ``m``, with the pread's descriptor open meanwhile."""
    read_path = str(m.root / m.limit)
    fd = os.open(read_path, os.O_RDONLY)
    try:
        ops = {
            "open+read+close": common.read_whole(read_path),
            "pread": lambda: os.pread(fd, 4096, 0),
        }
        if m.group is not None:
            ops["open+write+close"] = common.write_once(str(m.group / m.limit), WRITTEN)
        yield ops
    finally:
        os.close(fd)


def latencies(mounts: list[Mount], iterations: int, repeats: int, cpu: int | None) -> dict:
    """(operation, mount) -> median [min–max] over repeats of each repeat's median, in us."""
    samples: dict[tuple[str, str], list[float]] = {}
    pids = [m.pid for m in mounts if m.pid is not None]
    with contextlib.ExitStack() as stack, common.pinned(pids, cpu):
        per_mount = {m.name: stack.enter_context(operations(m)) for m in mounts}
        for _ in range(repeats):
            for m in mounts:
                for op_name, op in per_mount[m.name].items():
                    r = common.op_latency_us(op, iterations, 1, warmup=20)
                    samples.setdefault((op_name, m.name), []).append(r["median"])
    return {key: median_min_max(values, "us") for key, values in samples.items()}


def readers(mounts: list[Mount], duration: float, repeats: int, cpu: int | None) -> dict:
    """mount -> ops/s of READERS processes doing open+read+close (they inherit the pinning)."""
    samples: dict[str, list[float]] = {}
    pids = [m.pid for m in mounts if m.pid is not None]
    with common.pinned(pids, cpu):
        for _ in range(repeats):
            for m in mounts:
                rate = common.throughput(str(m.root / m.limit), READERS, "processes", duration)
                samples.setdefault(m.name, []).append(rate)
    return {name: median_min_max(values, "ops/s") for name, values in samples.items()}


def server_cpu(mounts: list[Mount], count: int) -> dict:
    """(operation, mount) -> the server's CPU (utime + stime) per operation over ``count`` of
    them, in us, pinned; and the resolution (one clock tick over ``count``)."""
    results = {}
    servers = [m for m in mounts if m.pid is not None]
    with contextlib.ExitStack() as stack, common.pinned([m.pid for m in servers], 0):
        per_mount = {m.name: stack.enter_context(operations(m)) for m in servers}
        for m in servers:
            for op_name, op in per_mount[m.name].items():
                for _ in range(20):
                    op()
                before = common.cpu_seconds(m.pid)
                for _ in range(count):
                    op()
                used = common.cpu_seconds(m.pid) - before
                results[(op_name, m.name)] = {
                    "value": used / count * 1e6,
                    "unit": "us",
                    "resolution_us": 1e6 / common.CLK_TCK / count,
                }
    return results


# -- the section -------------------------------------------------------------------------------


def _ratios(figures: dict, op_name: str, key: str) -> dict:
    """floor -> fakecgfs's figure over the floor's (latency and CPU: lower is better; ops/s:
    higher is better)."""
    fake = figures.get((op_name, "fakecgfs"))
    out = {}
    for floor in FLOORS:
        base = figures.get((op_name, floor))
        if fake is not None and base is not None and base[key]:
            out[floor] = fake[key] / base[key]
    return out


def run(quick: bool) -> dict:
    reason = common.fuse_skip_reason()
    if reason:
        return {"skipped": reason}
    iterations, repeats = (100, 1) if quick else (2000, 5)
    duration, tp_repeats = (0.2, 1) if quick else (1.0, 3)
    cpu_count = 200 if quick else 20000
    results: dict = {}
    with (
        tempfile.TemporaryDirectory(prefix="fakecgfs-bench-build-") as build_dir,
        contextlib.ExitStack() as stack,
    ):
        binary, why = build_c_floor(Path(build_dir))
        mounts: list[Mount] = []
        if binary is None:
            results["C floor"] = {"skipped": why}
        else:
            mounts += [
                stack.enter_context(c_floor_mount(binary, single_threaded=single))
                for single in (True, False)
            ]
        mounts += [
            stack.enter_context(common.baseline_mount(nothreads=True)),
            stack.enter_context(common.baseline_mount(nothreads=False)),
            stack.enter_context(common.fakecgfs_mount()),
        ]
        libfuses, skipped = mfusepy_libfuses()
        results.update({key: {"skipped": why} for key, why in skipped.items()})
        mounts += [
            stack.enter_context(mfusepy_mount(nothreads, suffix, library))
            for suffix, library in libfuses
            for _, nothreads in MODES
        ]
        kernel = stack.enter_context(common.kernel_mount())
        if kernel is not None:
            mounts.append(kernel)
        results["columns"] = {
            "mounts": ", ".join(m.name for m in mounts),
            "repeats": repeats,
            "iterations": iterations,
        }
        for label, cpu in PINNINGS:
            figures = latencies(mounts, iterations, repeats, cpu)
            figures.update(
                {
                    ("8 readers", name): v
                    for name, v in readers(mounts, duration, tp_repeats, cpu).items()
                }
            )
            for (op_name, mount_name), value in figures.items():
                results[f"{label} {op_name} / {mount_name}"] = value
            for op_name in (*OPERATIONS, "8 readers"):
                for floor, ratio in _ratios(figures, op_name, "median").items():
                    results[f"{label} {op_name} / fakecgfs to {floor}"] = {
                        "ratio": ratio,
                        "unit": "x",
                    }
                for pair, ratio in mfusepy_ratios(figures, op_name, "median").items():
                    results[f"{label} {op_name} / {pair}"] = {"ratio": ratio, "unit": "x"}
        cpu_figures = server_cpu(mounts, cpu_count)
        for (op_name, mount_name), value in cpu_figures.items():
            results[f"server CPU per op, {op_name} / {mount_name}"] = value
        for op_name in OPERATIONS:
            for floor, ratio in _ratios(cpu_figures, op_name, "value").items():
                results[f"server CPU per op, {op_name} / fakecgfs to {floor}"] = {
                    "ratio": ratio,
                    "unit": "x",
                }
            for pair, ratio in mfusepy_ratios(cpu_figures, op_name, "value").items():
                results[f"server CPU per op, {op_name} / {pair}"] = {"ratio": ratio, "unit": "x"}
    return results


def summary(results: dict) -> str:
    """The issue's table: one row per operation and pinning, one column per mount, then
    fakecgfs's ratios to the floors; and the servers' CPU per operation."""
    if "columns" not in results:
        return ""
    names = results["columns"]["mounts"].split(", ")
    head = ["operation", *names, *(f"fakecgfs / {f}" for f in FLOORS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(key: str) -> str:
        value = results.get(key)
        if not isinstance(value, dict):
            return "–"
        number = value.get("median", value.get("value", value.get("ratio")))
        return f"{number:.3g}{'x' if 'ratio' in value else ''}"

    for label, _ in PINNINGS:
        for op_name in (*OPERATIONS, "8 readers"):
            unit = "ops/s" if op_name == "8 readers" else "us"
            row = [f"{op_name}, {label} ({unit})"]
            row += [cell(f"{label} {op_name} / {n}") for n in names]
            row += [cell(f"{label} {op_name} / fakecgfs to {f}") for f in FLOORS]
            lines.append("| " + " | ".join(row) + " |")
    for op_name in OPERATIONS:
        row = [f"server CPU per {op_name} (us)"]
        row += [cell(f"server CPU per op, {op_name} / {n}") for n in names]
        row += [cell(f"server CPU per op, {op_name} / fakecgfs to {f}") for f in FLOORS]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines + _mfusepy_summary(results, cell))


def _mfusepy_summary(results: dict, cell: Callable[[str], str]) -> list[str]:
    """The mfusepy ratios, a table of their own (none without mfusepy columns)."""
    prefix = "pinned open+read+close / "
    pairs = sorted(
        (
            pair
            for pair in (key.removeprefix(prefix) for key in results if key.startswith(prefix))
            if " to " in pair and pair.startswith(("mfusepy-", "fakecgfs to mfusepy-"))
        ),
        key=lambda pair: (pair.startswith("fakecgfs"), pair),
    )
    if not pairs:
        return []
    lines = ["", "| operation | " + " | ".join(pairs) + " |", "|" + "---|" * (len(pairs) + 1)]
    rows = [
        (f"{op_name}, {label}", f"{label} {op_name}")
        for label, _ in PINNINGS
        for op_name in (*OPERATIONS, "8 readers")
    ]
    rows += [(f"server CPU per {op}", f"server CPU per op, {op}") for op in OPERATIONS]
    for title, key in rows:
        lines.append("| " + " | ".join([title, *(cell(f"{key} / {p}") for p in pairs)]) + " |")
    return lines
