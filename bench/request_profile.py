"""Where a FUSE server's time goes, in figures that do not depend on the machine's load.

    .venv/bin/python bench/request_profile.py [--ops N] [--no-callgrind] [--json FILE]

For each operation of issue 19 (open+read+close, pread, open+write+close), on the C floor
(bench/c_floor.c), the fusepy baseline and fakecgfs, with the same mount options:

* **requests**: the FUSE requests the kernel sends per operation, by opcode, counted from
  libfuse's debug output (-d) of the C floor; the mount options being the same, every server
  gets these (fakecgfs answers READ and WRITE in its session, the rest through libfuse).
* **system calls**: read() and write() calls of the server per operation, from /proc/PID/io
  (syscr, syscw: every thread, at no cost to the server), pinned to one CPU and unpinned; its
  sleeps (voluntary context switches) and CPU time (schedstat) per operation.  A server reads
  /dev/fuse once per request; fakecgfs's extra reads are its busy-poll's empty ones (EAGAIN).
  fakecgfs is run twice: as it is, and with POLL_AFTER_REQUEST_NS = 0.
* **instructions** (unless --no-callgrind): user-space instructions of the server per
  operation, counted by valgrind's callgrind between two dumps (callgrind_control), and for
  fakecgfs the layers that take them (LAYERS); then one pread after the server went idle,
  which adds going to sleep and waking up (and, polling on, the poll window).  Under valgrind
  a server runs 50 to 100 times slower, so a time-based poll polls less than natively: compare
  fakecgfs with its poll off, and take the cost of one empty poll from the difference.

Exact and repeatable: the requests, the C floor's instructions, and fakecgfs's per-layer
instructions.  fakecgfs's total moves by a few percent from run to run: when it finds no request
queued it takes a turn of the trio loop, whose instructions count too ("sleeps" says how often).
The system calls with polling on, the sleeps and the CPU times depend on timing and load.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from bench import common, floor_bench  # noqa: E402
from fakecgfs import mounting  # noqa: E402

OPERATIONS = floor_bench.OPERATIONS
VALGRIND_MOUNT_TIMEOUT = 120.0
WARMUP = 50
PAUSE = 0.02  # s between preads for the server (under valgrind) to go idle

# Starts the fakecgfs CLI with the session's poll window set first (argv[1], in ns).
FAKECGFS_RUNNER = (
    "import sys; from fakecgfs.cgroupfs import session; "
    "session.POLL_AFTER_REQUEST_NS = int(sys.argv.pop(1)); "
    "from fakecgfs.cli import main; sys.exit(main())"
)


class Server:
    """A server to start: its command (mount point last), its fstype, and the paths its
    operations use, relative to the mount point."""

    def __init__(
        self,
        name: str,
        command: list[str],
        fstype: str,
        read: str,
        write: str,
        group: str | None = None,
        env: dict | None = None,
    ) -> None:
        self.name, self.command, self.fstype = name, command, fstype
        self.read, self.write, self.group, self.env = read, write, group, env


def _under_callgrind(out: str) -> list[str]:
    """The command prefix that runs a server under callgrind, its profile written in ``out``."""
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.out", "--dump-instr=no"]


def servers(c_floor: Path | None) -> list[Server]:
    python = sys.executable
    out = []
    if c_floor is not None:
        options = ["-f", "-o", floor_bench.c_floor_options()]
        out.append(
            Server("C -s", [str(c_floor), *options, "-s"], floor_bench.C_FSTYPE, "value", "g/value")
        )
        out.append(
            Server("C MT", [str(c_floor), *options], floor_bench.C_FSTYPE, "value", "g/value")
        )
    baseline = [
        python,
        str(common.BENCH_DIR / "baseline_fs.py"),
        "--attr-timeout",
        str(common.fakecgfs_attr_timeout()),
    ]
    out.append(
        Server(
            "fusepy-nothreads", [*baseline, "--nothreads"], "fuse.baselinefs", "value", "g/value"
        )
    )
    out.append(Server("fusepy-mt", baseline, "fuse.baselinefs", "value", "g/value"))
    from fakecgfs.cgroupfs import session

    for poll_ns in (session.POLL_AFTER_REQUEST_NS, 0):
        name = "fakecgfs" if poll_ns else "fakecgfs, no poll"
        out.append(
            Server(
                name,
                [python, "-c", FAKECGFS_RUNNER, str(poll_ns), "mount", "--foreground"],
                "fuse.fakecgfs",
                "memory.limit_in_bytes",
                "bench/memory.limit_in_bytes",
                group="bench",
                env=mounting.server_environment(),
            )
        )
    return out


@contextlib.contextmanager
def started(
    server: Server, prefix: list[str] = (), timeout: float = common.MOUNT_TIMEOUT
) -> Iterator[tuple[Path, subprocess.Popen, Path]]:
    """``server`` mounted (under ``prefix``, e.g. valgrind) in a temporary directory: its
    mount point, its process and its log; always unmounted and reaped."""
    with tempfile.TemporaryDirectory(prefix="fakecgfs-profile-") as tmp:
        mountpoint = Path(tmp) / "mnt"
        mountpoint.mkdir()
        log = Path(tmp) / "server.log"
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                [*prefix, *server.command, str(mountpoint)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=server.env,
                cwd=tmp,
            )
        try:
            ready = mounting.wait_until(
                lambda: (
                    process.poll() is not None or common.is_mount(str(mountpoint), server.fstype)
                ),
                timeout,
            )
            if process.poll() is not None or not ready:
                raise RuntimeError(f"{server.name} did not mount: {log.read_text()}")
            if server.group:
                os.mkdir(mountpoint / server.group)
            yield mountpoint, process, log
        finally:
            common.unmount_and_reap(mountpoint, process, server.fstype)


@contextlib.contextmanager
def operations(server: Server, mountpoint: Path) -> Iterator[dict[str, Callable[[], object]]]:
    read_path = str(mountpoint / server.read)
    fd = os.open(read_path, os.O_RDONLY)
    try:
        yield {
            "open+read+close": common.read_whole(read_path),
            "pread": lambda: os.pread(fd, 4096, 0),
            "open+write+close": common.write_once(
                str(mountpoint / server.write), floor_bench.WRITTEN
            ),
        }
    finally:
        os.close(fd)


# -- requests ----------------------------------------------------------------------------------


def requests_per_operation(c_floor: Path, count: int) -> dict[str, dict[str, float]]:
    """operation -> {opcode: requests per operation}, from the C floor's libfuse debug log."""
    server = servers(c_floor)[0]
    server = Server(server.name, [*server.command, "-d"], server.fstype, server.read, server.write)
    result = {}
    with started(server) as (mountpoint, _process, log), operations(server, mountpoint) as ops:

        def opcodes() -> collections.Counter:
            return collections.Counter(re.findall(r"opcode: (\w+)", log.read_text()))

        def settled(before: collections.Counter) -> collections.Counter:
            # The log is written as requests are answered: wait until it stops growing.
            last = before
            while True:
                time.sleep(0.05)
                now = opcodes()
                if now == last:
                    return now
                last = now

        for name, op in ops.items():
            for _ in range(WARMUP):
                op()
            before = settled(opcodes())
            for _ in range(count):
                op()
            after = settled(before)
            result[name] = {
                k: (after[k] - before[k]) / count for k in after if after[k] > before[k]
            }
    return result


# -- system calls ------------------------------------------------------------------------------


def _io(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f)}


def _cpu_ns(pid: int) -> int:
    """CPU time of the live threads of ``pid`` (schedstat, in ns; exited threads are missed,
    which matters only for the multithreaded servers, whose figure is then a lower bound)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def _warm_up(op: Callable[[], object], pinned_at: float) -> None:
    """WARMUP operations, and more until fakecgfs's session has looked at the CPUs it may run
    on since the pinning changed (it looks at most every AFFINITY_RECHECK_NS, and polls only
    when it may run on more than one): otherwise the first figures after a change measure the
    previous pinning's poll."""
    from fakecgfs.cgroupfs.session import AFFINITY_RECHECK_NS

    settled = pinned_at + 2 * AFFINITY_RECHECK_NS / 1e9
    done = 0
    while done < WARMUP or time.monotonic() < settled:
        op()
        done += 1


def syscalls_per_operation(server_list: list[Server], count: int) -> dict:
    """(server, pinning, operation) -> read()s, write()s and CPU (us) of the server per op."""
    result = {}
    for server in server_list:
        with started(server) as (mountpoint, process, _), operations(server, mountpoint) as ops:
            for label, cpu in floor_bench.PINNINGS:
                with common.pinned([process.pid], cpu):
                    pinned_at = time.monotonic()
                    for name, op in ops.items():
                        _warm_up(op, pinned_at)
                        io0, cpu0 = _io(process.pid), _cpu_ns(process.pid)
                        sleeps0 = _sleeps(process.pid)
                        for _ in range(count):
                            op()
                        io1, cpu1 = _io(process.pid), _cpu_ns(process.pid)
                        sleeps1 = _sleeps(process.pid)
                        result[f"{server.name} | {label} | {name}"] = {
                            "reads": (io1["syscr"] - io0["syscr"]) / count,
                            "writes": (io1["syscw"] - io0["syscw"]) / count,
                            "sleeps": (sleeps1 - sleeps0) / count,
                            "cpu_us": (cpu1 - cpu0) / count / 1000,
                        }
    return result


# -- instructions ------------------------------------------------------------------------------


def _callgrind(pid: int, command: str) -> None:
    subprocess.run(
        ["callgrind_control", command, str(pid)], check=True, capture_output=True, timeout=60
    )


def _total(dump: Path) -> int:
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def instructions_per_operation(server_list: list[Server], count: int) -> dict:
    """(server, operation) -> user-space instructions per operation under callgrind, and for
    fakecgfs the instructions in each of LAYERS."""
    result = {}
    for server in server_list:
        with tempfile.TemporaryDirectory(prefix="fakecgfs-callgrind-") as out:
            prefix = _under_callgrind(out)
            with (
                started(server, prefix, VALGRIND_MOUNT_TIMEOUT) as (mountpoint, process, _),
                operations(server, mountpoint) as ops,
            ):
                for n, (name, op) in enumerate(ops.items()):
                    for _ in range(WARMUP):
                        op()
                    _callgrind(process.pid, "-z")
                    sleeps = _sleeps(process.pid)
                    for _ in range(count):
                        op()
                    sleeps = _sleeps(process.pid) - sleeps
                    _callgrind(process.pid, "-d")
                    dump = Path(out) / f"cg.out.{n + 1}"
                    mounting.wait_until(dump.exists, 30)
                    key = f"{server.name} | {name}"
                    result[key] = {"instructions": _total(dump) / count, "sleeps": sleeps / count}
                    if server.name.startswith("fakecgfs"):
                        result[key]["layers"] = _layers(dump, count)
    return result


def wakeup_instructions(server_list: list[Server], count: int, pause: float) -> dict:
    """server -> instructions, read() calls and sleeps (voluntary context switches) per pread
    when the client pauses ``pause`` s between preads, so that the server has gone idle before
    each: the work of going to sleep and waking up, and for fakecgfs with polling on, of the
    whole poll window (fewer polls than natively: valgrind runs the server slower)."""
    result = {}
    for server in server_list:
        with tempfile.TemporaryDirectory(prefix="fakecgfs-callgrind-") as out:
            prefix = _under_callgrind(out)
            with (
                started(server, prefix, VALGRIND_MOUNT_TIMEOUT) as (mountpoint, process, _),
                operations(server, mountpoint) as ops,
            ):
                op = ops["pread"]
                for _ in range(WARMUP):
                    op()
                _callgrind(process.pid, "-z")
                time.sleep(pause)
                io0, switches0 = _io(process.pid), _sleeps(process.pid)
                for _ in range(count):
                    op()
                    time.sleep(pause)
                io1, switches1 = _io(process.pid), _sleeps(process.pid)
                _callgrind(process.pid, "-d")
                dump = Path(out) / "cg.out.1"
                mounting.wait_until(dump.exists, 30)
                result[server.name] = {
                    "instructions": _total(dump) / count,
                    "reads": (io1["syscr"] - io0["syscr"]) / count,
                    "sleeps": (switches1 - switches0) / count,
                }
    return result


def _sleeps(pid: int) -> int:
    """Voluntary context switches of every live thread of ``pid``: how often it blocked."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


LAYERS = {
    "_ctypes_callproc": "ctypes calls into libfuse (receive, process), with its callbacks",
    "closure_fcn": "ctypes callbacks from libfuse into Python (open, release, the namespace)",
    "PyCPointerType_from_param": "ctypes checking byref() arguments against POINTER types",
    "take_gil": "taking the GIL back",
    "PyUnicode_Decode": "decoding paths",
    "Struct_unpack_from": "struct.unpack_from (request headers)",
    "os_write": "os.write (the session's own replies)",
    "select_epoll_poll": "epoll (trio's sleep)",
}


def _layers(dump: Path, count: int) -> dict[str, float]:
    """Inclusive instructions per operation of the C functions in LAYERS (callgrind_annotate;
    the largest entry of each name, recursion levels ('2) left out)."""
    command = ["callgrind_annotate", "--inclusive=yes", "--threshold=100", "--auto=no", str(dump)]
    text = subprocess.run(command, capture_output=True, text=True).stdout
    found: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+\S*:(\w+)(\s|$)", line)
        if m and m.group(2) in LAYERS:
            value = int(m.group(1).replace(",", "")) / count
            found[m.group(2)] = max(found.get(m.group(2), 0.0), value)
    return found


# -- report ------------------------------------------------------------------------------------


def report(results: dict) -> str:
    lines = [
        "## FUSE requests per operation (every server gets these)",
        "",
        "| operation | requests |",
        "|---|---|",
    ]
    for op, counts in results.get("requests", {}).items():
        lines.append(f"| {op} | " + ", ".join(f"{k} {v:g}" for k, v in counts.items()) + " |")
    lines += [
        "",
        "## read() and write() calls and CPU of the server per operation",
        "",
        "| server | pinning | operation | read() | write() | sleeps | CPU µs |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, v in results.get("syscalls", {}).items():
        lines.append(
            f"| {key} | {v['reads']:.2f} | {v['writes']:.2f} | {v['sleeps']:.2f} "
            f"| {v['cpu_us']:.1f} |"
        )
    if "instructions" in results:
        lines += [
            "",
            "## User-space instructions of the server per operation (callgrind)",
            "",
            "| server | operation | instructions | sleeps |",
            "|---|---|---|---|",
        ]
        for key, v in results["instructions"].items():
            lines.append(f"| {key} | {v['instructions']:,.0f} | {v['sleeps']:.3f} |")
        lines += [
            "",
            "## One pread after the server went idle (callgrind)",
            "",
            "| server | instructions | read() | sleeps |",
            "|---|---|---|---|",
        ]
        for key, v in results.get("wakeups", {}).items():
            lines.append(
                f"| {key} | {v['instructions']:,.0f} | {v['reads']:.2f} | {v['sleeps']:.2f} |"
            )
        layered = {k: v["layers"] for k, v in results["instructions"].items() if "layers" in v}
        if layered:
            lines += [
                "",
                "## fakecgfs: instructions per operation in each layer (inclusive: layers nest)",
                "",
                "| function | what | " + " | ".join(k.replace(" | ", ": ") for k in layered) + " |",
                "|---|---|" + "---|" * len(layered),
            ]
            for name, what in LAYERS.items():
                cells = " | ".join(f"{v.get(name, 0):,.0f}" for v in layered.values())
                lines.append(f"| {name} | {what} | {cells} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=2000, help="operations per figure")
    parser.add_argument("--no-callgrind", action="store_true")
    parser.add_argument(
        "--paused-ops", type=int, default=200, help="preads after the server went idle, per server"
    )
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument(
        "--server", action="append", help="only this server (repeatable), e.g. 'fakecgfs, no poll'"
    )
    parser.add_argument("--no-syscalls", action="store_true", help="skip the system-call counts")
    args = parser.parse_args()
    reason = common.fuse_skip_reason()
    if reason:
        print(f"profile: no FUSE here: {reason}")
        return 1
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="fakecgfs-bench-build-") as build:
        c_floor, why = floor_bench.build_c_floor(Path(build))
        if c_floor is None:
            print(f"profile: no C floor: {why}")
        elif not args.server:
            results["requests"] = requests_per_operation(c_floor, args.ops)
        server_list = servers(c_floor)
        if args.server:
            server_list = [s for s in server_list if s.name in args.server]
        if not args.no_syscalls:
            results["syscalls"] = syscalls_per_operation(server_list, args.ops)
        if not args.no_callgrind:
            if shutil.which("valgrind") is None:
                print("profile: no valgrind: instruction counts skipped")
            else:
                single = [s for s in server_list if s.name not in ("C MT", "fusepy-mt")]
                results["instructions"] = instructions_per_operation(single, args.ops)
                results["wakeups"] = wakeup_instructions(single, args.paused_ops, PAUSE)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
