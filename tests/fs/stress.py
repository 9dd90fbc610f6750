"""Concurrency stress of a mount (issue 5): worker processes hammer one hierarchy at once.

Each worker is its own process (as shells in a class would be), looping over random operations on
a shared set of groups: writing limits and watermarks, charging and uncharging, reading the
statistics files (every read must parse), and making and removing groups, while the reclaim tasks
the watermarks start run.  Every refused write must carry an errno the kernel returns for that
file, or ENOENT/ENODEV when another worker removed the group first; anything else is a failure.

Every ``check_interval`` seconds the workers pause (each acknowledges at its next operation:
one that cannot is stuck, i.e. a deadlock) and the hierarchy is checked at rest: usage <= limit,
max_usage >= usage, a parent's usage >= its children's, lwmark <= hwmark <= limit when armed, no
charge left under_oom, and fake.daemons lists exactly the groups with an armed high watermark
(the workers never write start/stop).  Meanwhile the server's thread count and memory are sampled.

Also here, for item 5 of the issue: floods of groups and of open descriptors through a mount
(the server's RSS after each round), and the same churn in-process (Python's traced memory, and
the filesystem's tables).

Used by tests/fs/test_stress.py and tests/fs/test_resources.py (short runs) and by scripts/stress
(the long ones).  Run as a script, this file is one worker:
``python stress.py worker MOUNTPOINT ID SEED CONTROLDIR``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import errno
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __name__ == "__main__":  # a worker: make the tests' shared modules importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from expectations import UNLIMITED, allowed_write_errnos, check_read_format, errname
from fakecgfs.cgroupfs.cftypes import BY_NAME

TOP = ["g0", "g1", "g2", "g3", "g4", "g5"]
KIDS = ["k0", "k1", "k2"]
GROUPS = TOP + [f"{t}/{k}" for t in TOP[:3] for k in KIDS]  # the names workers may use
READS = ["memory.stat", "memory.usage_in_bytes", "fake.reclaim_daemon", "memory.numa_stat",
         "memory.oom_control", "memory.max_usage_in_bytes", "memory.limit_in_bytes",
         "memory.memsw.usage_in_bytes", "memory.kmem.usage_in_bytes", "tasks"]  # fmt: skip
GONE = {errno.ENOENT, errno.ENODEV}  # another worker removed the group first
PAUSE_ACK_TIMEOUT = 20.0  # seconds for every worker to reach a pause: longer is a deadlock
CHECK_TIMEOUT = 30.0


# -- a worker --------------------------------------------------------------------------------------


def _size(rng: random.Random) -> bytes:
    return rng.choice([b"%dM" % rng.randint(1, 64), b"%d" % (rng.randint(0, 16384) * 4096),
                       b"%dK" % rng.randint(0, 65536), b"-1"])  # fmt: skip


class Worker:
    def __init__(self, mountpoint: str, ident: int, seed: int, control: str) -> None:
        self.mount = Path(mountpoint)
        self.ident = ident
        self.rng = random.Random(seed)
        self.control = Path(control)
        self.ops: collections.Counter = collections.Counter()
        self.errnos: collections.Counter = collections.Counter()
        self.failures: list[str] = []

    def fail(self, what: str) -> None:
        if len(self.failures) < 20:
            self.failures.append(what)

    def write(self, group: str, name: str, data: bytes) -> int | None:
        path = self.mount / group / name
        try:
            fd = os.open(path, os.O_WRONLY)
        except OSError as e:
            code = e.errno
        else:
            try:
                os.write(fd, data)
                code = None
            except OSError as e:
                code = e.errno
            finally:
                os.close(fd)
        allowed = allowed_write_errnos(BY_NAME[name], data) | GONE
        if code is not None and code not in allowed:
            self.fail(f"write {data!r} to {group}/{name}: {errname(code)}")
        self.errnos[errname(code)] += 1
        return code

    def read(self, group: str, name: str) -> None:
        try:
            fd = os.open(self.mount / group / name, os.O_RDONLY)
        except OSError as e:
            if e.errno not in GONE:
                self.fail(f"open {group}/{name}: {errname(e.errno)}")
            return
        try:
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
        except OSError as e:
            if e.errno not in GONE:
                self.fail(f"read {group}/{name}: {errname(e.errno)}")
            return
        finally:
            os.close(fd)
        text = b"".join(chunks)
        try:
            check_read_format(name, text, path=group)
            if name == "fake.reclaim_daemon":  # one read is one snapshot: its values agree
                values = dict(ln.partition(" ")[::2] for ln in text.decode().splitlines())
                high, low = int(values["high_wmark"]), int(values["low_wmark"])
                if high != UNLIMITED and low > high:
                    self.fail(f"{group}: low watermark {low} above the high one {high}")
            if name == "memory.stat":
                stat = dict(ln.split(" ") for ln in text.decode().splitlines())
                if int(stat["total_cache"]) < int(stat["cache"]):
                    self.fail(f"{group}: total_cache below cache")
        except AssertionError as e:
            self.fail(str(e))

    def step(self) -> None:
        rng = self.rng
        group = rng.choice(GROUPS)
        op = rng.choices(["limit", "high", "low", "charge", "uncharge", "read", "mkdir",
                          "rmdir", "misc"], weights=[8, 6, 4, 14, 8, 30, 8, 3, 4])[0]  # fmt: skip
        self.ops[op] += 1
        if op == "limit":
            name = rng.choice(["memory.limit_in_bytes"] * 3 + ["memory.memsw.limit_in_bytes"])
            self.write(group, name, _size(rng))
        elif op == "high":
            self.write(group, "memory.high_wmark_in_bytes", _size(rng))
        elif op == "low":
            self.write(group, "memory.low_wmark_in_bytes", _size(rng))
        elif op == "charge":
            kind = rng.choice([b"anon", b"file", b"file", b"file dirty"])
            self.write(group, "fake.charge", b"%dK %s" % (rng.randint(0, 8192), kind))
        elif op == "uncharge":
            kind = rng.choice([b"anon", b"file"])
            self.write(group, "fake.uncharge", b"%dK %s" % (rng.randint(0, 16384), kind))
        elif op == "read":
            name = rng.choice([*READS, "fake.daemons"])
            self.read("" if name == "fake.daemons" else rng.choice(["", group]), name)
        elif op == "mkdir":
            try:
                os.mkdir(self.mount / group)
                self.errnos["mkdir ok"] += 1
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOENT, errno.ENOMEM):
                    self.fail(f"mkdir {group}: {errname(e.errno)}")
        elif op == "rmdir":
            try:
                os.rmdir(self.mount / group)
                self.errnos["rmdir ok"] += 1
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOENT):
                    self.fail(f"rmdir {group}: {errname(e.errno)}")
        else:
            name, data = rng.choice([("memory.max_usage_in_bytes", b"0"),
                                     ("memory.failcnt", b"0"), ("memory.force_empty", b"1"),
                                     ("memory.swappiness", b"%d" % rng.randint(0, 200)),
                                     ("memory.soft_limit_in_bytes", _size(rng))])  # fmt: skip
            self.write(group, name, data)

    def run(self) -> None:
        pause, stop = self.control / "pause", self.control / "stop"
        ack = self.control / f"ack.{self.ident}"
        while not stop.exists():
            if pause.exists():
                ack.touch()
                while pause.exists() and not stop.exists():
                    time.sleep(0.002)
                ack.unlink()
                continue
            self.step()
        result = {"ops": dict(self.ops), "errnos": dict(self.errnos), "failures": self.failures}
        (self.control / f"result.{self.ident}.json").write_text(json.dumps(result))


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class StressResult:
    processes: int
    seconds: float
    ops: collections.Counter = field(default_factory=collections.Counter)
    errnos: collections.Counter = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    pauses: int = 0
    invariant_checks: int = 0  # checks at rest that passed
    samples: int = 0
    peak_threads: int = 0
    peak_rss_kib: int = 0
    start_rss_kib: int = 0
    end_rss_kib: int = 0
    hwm_kib: int = 0

    def figures(self) -> dict:
        return {
            "processes": self.processes, "seconds": round(self.seconds, 1),
            "operations": sum(self.ops.values()), "by_operation": dict(sorted(self.ops.items())),
            "errnos": dict(sorted(self.errnos.items())), "failures": len(self.failures),
            "pauses": self.pauses, "invariant_checks_passed": self.invariant_checks,
            "peak_server_threads": self.peak_threads, "server_rss_kib_start": self.start_rss_kib,
            "server_rss_kib_peak_sampled": self.peak_rss_kib, "server_vmhwm_kib": self.hwm_kib,
            "server_rss_kib_end": self.end_rss_kib,
        }  # fmt: skip


def server_threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def server_memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of the server in KiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def _read(path: Path) -> bytes:
    return path.read_bytes()


def check_at_rest(mount: Path) -> None:
    """The hierarchy's invariants, read while no worker runs (reclaim tasks may: they only lower
    usage, so every read of a usage comes before what it is compared with)."""
    groups = [""] + [g for g in GROUPS if (mount / g).is_dir()]
    usage = {g: int(_read(mount / g / "memory.usage_in_bytes")) for g in groups}
    armed = []
    for g in groups:
        where = g or "/"
        children = [c for c in groups if c and c.rpartition("/")[0] == g]
        assert usage[g] >= sum(usage[c] for c in children), f"{where}: children above the parent"
        limit = int(_read(mount / g / "memory.limit_in_bytes"))
        assert usage[g] <= limit, f"{where}: usage {usage[g]} above the limit {limit}"
        assert int(_read(mount / g / "memory.max_usage_in_bytes")) >= usage[g], where
        memsw_limit = int(_read(mount / g / "memory.memsw.limit_in_bytes"))
        assert int(_read(mount / g / "memory.memsw.usage_in_bytes")) <= memsw_limit, where
        reclaim_task = dict(ln.partition(" ")[::2] for ln in
                      _read(mount / g / "fake.reclaim_daemon").decode().splitlines())  # fmt: skip
        high, low = int(reclaim_task["high_wmark"]), int(reclaim_task["low_wmark"])
        if high != UNLIMITED:
            assert low <= high <= limit, f"{where}: watermarks {low} {high}, limit {limit}"
            armed.append(f"/{g}")
            assert reclaim_task["state"] != "stopped", f"{where}: armed but no reclaim task"
        else:
            assert reclaim_task["state"] == "stopped", f"{where}: a reclaim task, disarmed"
        if low != UNLIMITED:
            assert low <= limit, f"{where}: low watermark above the limit"
        oom = _read(mount / g / "memory.oom_control").decode()
        assert "under_oom 0" in oom, f"{where}: a charge left asleep in OOM"
    reclaim_tasks = _read(mount / "fake.daemons").decode().splitlines()
    assert int(reclaim_tasks[0]) == len(reclaim_tasks) - 1
    assert sorted(d.rstrip("/") or "/" for d in reclaim_tasks[1:]) == sorted(
        a.rstrip("/") or "/" for a in armed
    ), f"fake.daemons {reclaim_tasks[1:]} != armed {armed}"


def _diagnose(pids: list[int], server: int) -> str:
    lines = []
    for pid in [*pids, server]:
        for tid in os.listdir(f"/proc/{pid}/task") if os.path.exists(f"/proc/{pid}") else []:
            try:
                wchan = Path(f"/proc/{pid}/task/{tid}/wchan").read_text()
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                state = stat.rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            lines.append(f"pid {pid} tid {tid}: {state} {wchan}")
    return "\n".join(lines)


def run_stress(mountpoint: Path, server_pid: int, *, processes: int = 8, seconds: float = 60.0,
               check_interval: float = 2.0, seed: int | None = None,
               sample_interval: float = 0.02,
               workdir: Path | None = None) -> StressResult:  # fmt: skip
    """Run ``processes`` workers on the mount for ``seconds``; the caller asserts on the
    result."""
    seed = random.randrange(2**32) if seed is None else seed
    control = Path(workdir or mountpoint.parent) / "stress-control"
    control.mkdir(exist_ok=True)
    for leftover in control.iterdir():
        leftover.unlink()
    result = StressResult(processes, seconds)
    result.start_rss_kib = server_memory(server_pid)[0]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    workers = [subprocess.Popen([sys.executable, __file__, "worker", str(mountpoint), str(i),
                                 str(seed + i), str(control)], env=env)
               for i in range(processes)]  # fmt: skip
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="stress-check")
    try:
        start = time.monotonic()
        next_check = start + check_interval
        while time.monotonic() - start < seconds:
            result.peak_threads = max(result.peak_threads, server_threads(server_pid))
            rss, _ = server_memory(server_pid)
            result.peak_rss_kib = max(result.peak_rss_kib, rss)
            result.samples += 1
            for w in workers:
                assert w.poll() is None, f"worker {w.pid} exited early ({w.returncode})"
            if time.monotonic() >= next_check:
                _pause_and_check(control, workers, mountpoint, server_pid, pool, result)
                next_check = time.monotonic() + check_interval
            time.sleep(sample_interval)
        result.seconds = time.monotonic() - start
        (control / "stop").touch()
        for w in workers:
            try:
                w.wait(PAUSE_ACK_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    "a worker did not stop: deadlock?\n"
                    + _diagnose([w.pid for w in workers], server_pid)
                ) from None
            assert w.returncode == 0, f"worker {w.pid} failed ({w.returncode})"
        pool.submit(check_at_rest, mountpoint).result(CHECK_TIMEOUT)
        result.invariant_checks += 1
        for i in range(processes):
            data = json.loads((control / f"result.{i}.json").read_text())
            result.ops.update(data["ops"])
            result.errnos.update(data["errnos"])
            result.failures += [f"worker {i}: {f}" for f in data["failures"]]
        result.end_rss_kib, result.hwm_kib = server_memory(server_pid)
        result.peak_threads = max(result.peak_threads, server_threads(server_pid))
        return result
    finally:
        (control / "stop").touch()
        for w in workers:
            if w.poll() is None:
                w.kill()
            w.wait()
        pool.shutdown(wait=False)


def _pause_and_check(control, workers, mountpoint, server_pid, pool, result) -> None:
    (control / "pause").touch()
    try:
        deadline = time.monotonic() + PAUSE_ACK_TIMEOUT
        while sum(1 for p in control.glob("ack.*")) < len(workers):
            if time.monotonic() > deadline:
                raise AssertionError(
                    "workers did not reach the pause: deadlock?\n"
                    + _diagnose([w.pid for w in workers], server_pid)
                )
            time.sleep(0.005)
        result.peak_threads = max(result.peak_threads, server_threads(server_pid))
        pool.submit(check_at_rest, mountpoint).result(CHECK_TIMEOUT)
        result.invariant_checks += 1
        result.pauses += 1
    finally:
        (control / "pause").unlink()


# -- resource floods (issue 5, item 5) ---------------------------------------------------------


def flood_groups(mountpoint: Path, server_pid: int, count: int, rounds: int = 3) -> dict:
    """``rounds`` times: mkdir ``count`` groups, then rmdir them all; the server's memory after
    each round.  A leak grows round after round; the allocator keeps what the first round took
    (Python returns little of it to the system), so the rounds after it must stay flat."""
    start = time.monotonic()
    kmem_before = int((mountpoint / "memory.kmem.usage_in_bytes").read_text())
    before = server_memory(server_pid)[0]
    after, peaks = [], []
    for _ in range(rounds):
        for i in range(count):
            os.mkdir(mountpoint / f"flood{i}")
        assert len(os.listdir(mountpoint)) >= count
        peaks.append(server_memory(server_pid)[0])
        for i in range(count):
            os.rmdir(mountpoint / f"flood{i}")
        after.append(server_memory(server_pid)[0])
    assert (mountpoint / "fake.daemons").read_text() == "0\n"
    kmem_after = int((mountpoint / "memory.kmem.usage_in_bytes").read_text())
    return {"groups": count, "rounds": rounds, "seconds": round(time.monotonic() - start, 1),
            "rss_kib_before": before, "rss_kib_with_groups": peaks, "rss_kib_after_rmdir": after,
            "growth_after_first_round_kib": after[-1] - after[0],
            "root_kmem_growth_bytes": kmem_after - kmem_before}  # fmt: skip


def flood_handles(mountpoint: Path, server_pid: int, count: int, rounds: int = 3,
                  names: tuple[str, ...] = ("memory.stat", "fake.reclaim_daemon",
                                            "memory.usage_in_bytes")) -> dict:  # fmt: skip
    """``rounds`` times: open ``count`` descriptors at once (reading each, so each holds a
    snapshot), then close them all; the server's memory after each round."""
    start = time.monotonic()
    before = server_memory(server_pid)[0]
    after, peaks = [], []
    for _ in range(rounds):
        fds = [os.open(mountpoint / names[i % len(names)], os.O_RDONLY) for i in range(count)]
        try:
            for fd in fds:
                assert os.read(fd, 65536)
            peaks.append(server_memory(server_pid)[0])
        finally:
            for fd in fds:
                os.close(fd)
        # RELEASE is asynchronous: the server answers it after close() returned
        _wait_for_idle_connection(mountpoint)
        after.append(server_memory(server_pid)[0])
    return {
        "handles": count,
        "rounds": rounds,
        "seconds": round(time.monotonic() - start, 1),
        "rss_kib_before": before,
        "rss_kib_with_handles": peaks,
        "rss_kib_after_close": after,
        "growth_after_first_round_kib": after[-1] - after[0],
    }


def fuse_requests_waiting(mountpoint: Path) -> int:
    """Requests on the mount's FUSE connection not answered yet (fusectl's ``waiting``).
    fusectl is mounted in a private mount namespace, never on the host (root and unshare(1))."""
    minor = os.minor(os.stat(mountpoint).st_dev)
    connections = "/sys/fs/fuse/connections"
    script = f"mount -t fusectl none {connections} && cat {connections}/{minor}/waiting"
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert result.returncode == 0, f"cannot read fusectl: {result.stderr.strip()}"
    return int(result.stdout)


def _wait_for_idle_connection(mountpoint: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (waiting := fuse_requests_waiting(mountpoint)) > 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"{waiting} FUSE requests still unanswered after {timeout}s")
        time.sleep(0.01)


def inprocess_churn(groups: int, handles: int) -> dict:
    """Without FUSE: the filesystem object over a running controller, its operations called
    directly in the loop, as the FUSE session calls them.  Three rounds of opening, reading and
    releasing ``handles`` descriptors and making (with a watermark, so a reclaim task) and
    removing ``groups`` groups; Python's traced memory is compared between the ends of rounds 2
    and 3 (round 1 grows tables to their size, and tracing starts with round 2), and the
    filesystem's tables must be empty again."""
    import gc
    import inspect
    import tracemalloc
    from unittest import mock

    import fuse
    import trio
    import trio.testing

    from fakecgfs.cgroupfs.cftypes import Caller
    from fakecgfs.cgroupfs.fs import CgroupFS
    from fakecgfs.controller import MemoryController

    names = ("memory.stat", "fake.reclaim_daemon", "memory.usage_in_bytes")
    caller = Caller(pid=os.getpid(), uid=0, gid=0, mountpoint="/nowhere")

    async def main() -> dict:
        async with MemoryController.open() as ctl:
            fs = CgroupFS(ctl, mountpoint="/nowhere")

            async def churn() -> None:
                fhs = [fs.open(f"/{names[i % 3]}", os.O_RDWR) for i in range(handles)]
                for fh in fhs:
                    assert fs.read_request(fh, 65536, 0)
                for fh in fhs:
                    fs.release(None, fh)
                for i in range(groups):
                    fs.mkdir(f"/g{i}", 0o755)
                    fs.getattr(f"/g{i}/memory.limit_in_bytes")  # gives the file its metadata
                    fh = fs.open(f"/g{i}/memory.high_wmark_in_bytes", os.O_WRONLY)
                    written = fs.write_request(fh, b"8M", caller)  # and the group a reclaim task
                    assert (await written if inspect.isawaitable(written) else written) == 2
                    fs.release(None, fh)
                for i in range(groups):
                    fs.rmdir(f"/g{i}")
                await trio.testing.wait_all_tasks_blocked()  # the reclaim tasks have exited

            await churn()
            tracemalloc.start()
            try:
                await churn()
                gc.collect()
                before = tracemalloc.get_traced_memory()[0]
                await churn()
                gc.collect()
                after = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
            return {
                "groups": groups, "handles": handles, "traced_growth_bytes": after - before,
                "open_handles_left": len(fs._handles),
                "group_metadata_left": len([m for m in fs._dirs if m is not fs.ctl.root]),
                "file_metadata_left": len([m for m in fs._files if m is not fs.ctl.root]),
                "reclaim_tasks_left": len(ctl.reclaim_tasks()),
            }  # fmt: skip

    with mock.patch.object(fuse, "fuse_get_context", lambda: (0, 0, os.getpid())):
        return trio.run(main)


def remove_groups(mountpoint: Path) -> None:
    """rmdir what the workers left, deepest first."""
    for g in sorted(GROUPS, key=lambda g: -g.count("/")):
        try:
            os.rmdir(mountpoint / g)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "worker":
        sys.exit("usage: stress.py worker MOUNTPOINT ID SEED CONTROLDIR")
    Worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]).run()
