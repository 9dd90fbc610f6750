"""Fuzzing through a real mount (issue 5): random writes into every control file, interleaved
with charges, uncharges, event registrations, mkdir and rmdir, while reclaim tasks run.

A hypothesis state machine drives one module-wide mount (with 64 MiB of swap, so anonymous
reclaim runs too).  Properties, after every step:

* the server is alive, and no operation ever answers EIO (an unexpected exception in the server);
* a refused write carries an errno the kernel returns for that file (the control-file table, as
  docs/files.md shows it, plus E2BIG over 4096 bytes, EINVAL without a write handler, ENODEV on
  a descriptor held across rmdir);
* no write hangs: one asleep in OOM (oom_kill_disable 1, which the fuzz writes as it likes) is
  released by writing 0 to the sleeping group's oom_control, and must then end with ENOMEM;
* the controller's invariants, observed through the files: usage <= limit, memsw usage <= memsw
  limit, usage <= memsw usage, max_usage >= usage, a parent's usage >= the sum of its
  children's, total_cache + total_rss <= usage, and when no reclaim ran between the reads the
  difference is exactly the kernel memory (kmem usage) plus a per-CPU stock of at most 66 pages
  per group, lwmark <= hwmark <= limit when armed, no charge left under_oom, and fake.daemons
  lists exactly the groups whose reclaim task is alive, each with an armed high watermark;
* every readable file of every group reads in its format (every 20 steps and after each
  example).

The reads are made in an order that reclaim running meanwhile cannot fool: it only lowers
usage.  The exact usage-equals-pages equality is checked in tests/controller/test_fuzz.py.

FAKECGFS_LONG=1 runs FAKECGFS_FUZZ_WRITES writes (100,000 by default; see tests/fuzzing.py).
"""

from __future__ import annotations

import collections
import concurrent.futures
import errno
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from expectations import (
    UNLIMITED,
    allowed_write_errnos,
    check_read_format,
    errname,
    record_figures,
)  # fmt: skip
from fakecgfs import mounting
from fakecgfs.cgroupfs.cftypes import BY_NAME, CFTYPES, Where
from fakecgfs.cgroupfs.parse import MAX_WRITE
from fakecgfs.controller import PAGE_COUNTER_MAX
from fakecgfs.testing import fuse_unavailable_reason, mounted
from fuzzing import LONG, charge_text, oversized, profile, write_data

pytestmark = pytest.mark.skipif(fuse_unavailable_reason() is not None,
                                reason=str(fuse_unavailable_reason()))  # fmt: skip

STEPS = 50
LONG_WRITES = int(os.environ.get("FAKECGFS_FUZZ_WRITES", "100000"))
WRITES_PER_EXAMPLE = 38  # measured: about 3 steps in 4 write something
SETTINGS = profile(ci_examples=80, long_examples=LONG_WRITES // WRITES_PER_EXAMPLE + 1,
                   steps=STEPS)  # fmt: skip

MAX_GROUPS = 8
NAMES = [b"a", b"b", b"c", b"d"]
ODD_NAMES = [b"memory.stat", b"fake.charge", b"\xff\xfeg", b"sp ace", b".dot", b"n" * 255,
             b"l" * 300, b"t" * 1100, b"nl\nx", b"tab\tx"]  # fmt: skip
ALL_FILES = sorted(c.name for c in CFTYPES)
WRITABLE = sorted(c.name for c in CFTYPES if c.writable)
SETTING_FILES = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
                 "memory.high_wmark_in_bytes", "memory.low_wmark_in_bytes",
                 "memory.oom_control", "memory.swappiness", "fake.reclaim_daemon",
                 "memory.force_empty", "memory.max_usage_in_bytes"]  # fmt: skip
WATCHES = [  # (control file, args, registers?): the kernel's rules for each watch
    ("memory.usage_in_bytes", b"4M", True),
    ("memory.usage_in_bytes", b"0", True),
    ("memory.usage_in_bytes", b"-1", True),
    ("memory.usage_in_bytes", b"x", False),
    ("memory.memsw.usage_in_bytes", b"1M", True),
    ("memory.oom_control", b"", True),
    ("memory.oom_control", b"x", True),  # oom_control's args are ignored
    ("memory.pressure_level", b"low", True),
    ("memory.pressure_level", b"medium,hierarchy", True),
    ("memory.pressure_level", b"critical,local", True),
    ("memory.pressure_level", b"x", False),
    ("memory.high_wmark_in_bytes", b"", True),
    ("memory.stat", b"", False),
]
MKDIR_ERRNOS = {errno.EEXIST, errno.ENOMEM, errno.EINVAL, errno.ENAMETOOLONG}
FIRST_WAIT = 0.05  # seconds before a write is suspected of sleeping in OOM
HANG_LIMIT = 30.0  # seconds after which a write that is not asleep in OOM counts as hung
MAX_STOCK_PAGES = 66  # per group: what the per-CPU stock can hold after a kmem charge

FIGURES: collections.Counter = collections.Counter()
ERRNOS: collections.Counter = collections.Counter()
MOUNT = None  # the module's FakecgfsMount, set by the fixture
POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="fuzz-writer")


def present(name: str, is_root: bool) -> bool:
    where = BY_NAME[name].where
    return where is Where.BOTH or (where is Where.ROOT) == is_root


def read_all(path: bytes) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write_once(path: bytes, data: bytes) -> int | None:
    """open(O_WRONLY) and one write(): the errno, or None on success."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        return e.errno
    try:
        n = os.write(fd, data)
        assert n == len(data), f"short write {n} of {len(data)}"
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)
    return None


class MountFuzz(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mount = MOUNT
        self.root = os.fsencode(self.mount.path)
        self.groups: list[bytes] = [b""]  # relative paths, parents before children; b"": root
        self.fds: dict[tuple[bytes, str], int] = {}  # read descriptors, kept across steps
        self.events: dict[bytes, list[int]] = collections.defaultdict(list)  # eventfds, cfds
        self.steps = 0

    # -- plumbing -----------------------------------------------------------------------------

    def path(self, group: bytes, name: str | bytes = b"") -> bytes:
        name = os.fsencode(name)
        return b"/".join(p for p in (self.root, group, name) if p)

    def pick(self, index: int) -> bytes:
        return self.groups[index % len(self.groups)]

    def pread(self, group: bytes, name: str) -> bytes:
        """The whole file, rendered afresh (a read at offset 0), through a kept descriptor."""
        key = (group, name)
        fd = self.fds.get(key)
        if fd is None:
            fd = self.fds[key] = os.open(self.path(group, name), os.O_RDONLY)
        chunks, offset = [], 0
        while chunk := os.pread(fd, 65536, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def read_int(self, group: bytes, name: str) -> int:
        return int(self.pread(group, name))

    def read_pairs(self, group: bytes, name: str) -> dict[str, str]:
        return dict(ln.partition(" ")[::2] for ln in self.pread(group, name).decode().splitlines())

    def forget(self, group: bytes) -> None:
        for key in [k for k in self.fds if k[0] == group]:
            os.close(self.fds.pop(key))
        for fd in self.events.pop(group, []):
            os.close(fd)

    def release_oom(self) -> int:
        """Write 0 to oom_control of every group with a charge asleep in OOM: each must then
        fail with ENOMEM at once."""
        released = 0
        for g in self.groups[1:]:
            if self.read_pairs(g, "memory.oom_control")["under_oom"] == "1":
                assert write_once(self.path(g, "memory.oom_control"), b"0") is None
                released += 1
        return released

    def write(self, group: bytes, name: str, data: bytes) -> int | None:
        """One write() that must not hang; the errno or None.  EIO fails at once."""
        future = POOL.submit(write_once, self.path(group, name), data)
        try:
            code = future.result(timeout=FIRST_WAIT)
        except concurrent.futures.TimeoutError:
            start = time.monotonic()
            released = 0
            while True:
                try:
                    code = future.result(timeout=0.05)
                    break
                except concurrent.futures.TimeoutError:
                    pass
                assert not released or time.monotonic() - released < 5, (
                    f"{name}: write {data[:60]!r} still asleep 5 s after its release"
                )
                if not released and self.release_oom():
                    released = time.monotonic()
                assert time.monotonic() - start < HANG_LIMIT, (
                    f"write {data[:60]!r} to {group!r}/{name} hangs (not in OOM)"
                )
            if released:
                FIGURES["writes_released_from_oom"] += 1
                assert code == errno.ENOMEM or name != "fake.charge", (
                    f"a charge released from OOM answered {errname(code)}, not ENOMEM"
                )
        assert code != errno.EIO, f"EIO from write {data[:60]!r} to {group!r}/{name}"
        assert self.mount.process.poll() is None, "the server died"
        FIGURES["writes"] += 1
        ERRNOS[errname(code)] += 1
        return code

    def check_write(self, group: bytes, name: str, data: bytes) -> None:
        code = self.write(group, name, data)
        allowed = allowed_write_errnos(BY_NAME[name], data)
        assert code is None or code in allowed, (
            f"write {data[:80]!r} to {group!r}/{name}: {errname(code)}; the kernel returns "
            f"one of {sorted(errname(c) for c in allowed)} (or succeeds)"
        )

    # -- rules --------------------------------------------------------------------------------

    @initialize()
    def clean_start(self) -> None:
        assert os.listdir(self.root).count("a") == 0, "a previous example left groups behind"

    @precondition(lambda self: len(self.groups) < MAX_GROUPS)
    @rule(parent=st.integers(0, 15), name=st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES),
                                                     st.sampled_from(ODD_NAMES)))  # fmt: skip
    def mkdir(self, parent: int, name: bytes) -> None:
        base = self.pick(parent)
        if base.count(b"/") >= 2:
            base = b""
        rel = base + b"/" + name if base else name
        try:
            os.mkdir(self.path(rel))
        except OSError as e:
            assert e.errno in MKDIR_ERRNOS, f"mkdir {rel!r}: {errname(e.errno)}"
            FIGURES[f"mkdir_{errname(e.errno)}"] += 1
            return
        assert name not in (b"t" * 1100, b"nl\nx") and not name.startswith((b"memory.", b"fake."))
        self.groups.append(rel)
        FIGURES["mkdir"] += 1

    @precondition(lambda self: len(self.groups) > 1)
    @rule(index=st.integers(0, 15), held=st.sampled_from(WRITABLE), data=write_data())
    def rmdir(self, index: int, held: str, data: bytes) -> None:
        """rmdir, with a descriptor held across it: its writes are then ENODEV."""
        group = self.groups[1 + index % (len(self.groups) - 1)]
        fd = os.open(self.path(group, held), os.O_WRONLY) if present(held, False) else None
        try:
            try:
                os.rmdir(self.path(group))
            except OSError as e:
                assert e.errno == errno.EBUSY, f"rmdir {group!r}: {errname(e.errno)}"
                FIGURES["rmdir_EBUSY"] += 1
                return
            self.forget(group)
            self.groups.remove(group)
            FIGURES["rmdir"] += 1
            if fd is not None and data:
                try:
                    os.write(fd, data)
                    code = None
                except OSError as e:
                    code = e.errno
                expected = errno.E2BIG if len(data) > MAX_WRITE else errno.ENODEV  # size first
                assert code == expected, f"write to a removed group's {held}: {errname(code)}"
                FIGURES["writes_after_rmdir"] += 1
        finally:
            if fd is not None:
                os.close(fd)

    @rule(index=st.integers(0, 15), name=st.sampled_from(ALL_FILES), data=write_data())
    def write_anything(self, index: int, name: str, data: bytes) -> None:
        group = self.pick(index)
        if not present(name, group == b""):
            assert write_once(self.path(group, name), data) == errno.ENOENT
            return
        self.check_write(group, name, data)

    @rule(index=st.integers(0, 15), name=st.sampled_from(SETTING_FILES),
          data=st.one_of(st.integers(0, 8192).map(lambda p: b"%d" % (p * 4096)),
                         st.integers(0, 48).map(lambda m: b"%dM\n" % m),
                         st.sampled_from([b"-1", b"0", b"1", b"start", b"stop"])))  # fmt: skip
    def write_setting(self, index: int, name: str, data: bytes) -> None:
        """Well-formed values around where limits, watermarks and OOM meet."""
        self.check_write(self.pick(index), name, data)

    @rule(index=st.integers(0, 15), name=st.sampled_from(ALL_FILES), data=oversized())
    def write_oversized(self, index: int, name: str, data: bytes) -> None:
        group = self.pick(index)
        if present(name, group == b""):
            self.check_write(group, name, data)

    @precondition(lambda self: len(self.groups) > 1)
    @rule(
        index=st.integers(0, 15),
        limit=st.integers(0, 2048),
        memsw=st.booleans(),
        oom_disable=st.booleans(),
        kind=st.sampled_from([b"anon", b"file", b"file dirty"]),
    )
    def squeeze(self, index: int, limit: int, memsw: bool, oom_disable: bool, kind: bytes) -> None:
        """A tight spot: a small limit (maybe memsw too, maybe oom_kill_disable 1), then a charge
        beyond it: direct reclaim, swap, ENOMEM, or a sleep in OOM that the fuzz releases."""
        group = self.groups[1 + index % (len(self.groups) - 1)]
        size = b"%d" % (limit * 4096)
        for name, data in (("memory.memsw.limit_in_bytes", b"-1"),
                           ("memory.limit_in_bytes", size),
                           ("memory.memsw.limit_in_bytes", size if memsw else b"-1"),
                           ("memory.oom_control", b"%d" % oom_disable)):  # fmt: skip
            code = self.write(group, name, data)
            assert code in (None, errno.EBUSY, errno.EINVAL), f"{name} {data!r}: {errname(code)}"
        self.check_write(group, "fake.charge", b"%d %s" % ((limit * 2 + 64) * 4096, kind))

    @rule(index=st.integers(0, 15), data=charge_text())
    def charge(self, index: int, data: bytes) -> None:
        self.check_write(self.pick(index), "fake.charge", data)

    @rule(index=st.integers(0, 15), data=charge_text())
    def uncharge(self, index: int, data: bytes) -> None:
        self.check_write(self.pick(index), "fake.uncharge", data)

    @rule(index=st.integers(0, 15), watch=st.sampled_from(WATCHES))
    def register_event(self, index: int, watch) -> None:
        group = self.pick(index)
        name, args, valid = watch
        efd = os.eventfd(0, os.EFD_CLOEXEC)
        cfd = os.open(self.path(group, name), os.O_RDONLY)
        self.events[group] += [efd, cfd]
        line = b"%d %d" % (efd, cfd) + (b" " + args if args else b"")
        code = self.write(group, "cgroup.event_control", line)
        assert code == (None if valid else errno.EINVAL), f"register {line!r}: {errname(code)}"
        FIGURES["event_registrations"] += valid

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def invariants_hold(self) -> None:
        assert self.mount.process.poll() is None, "the server died"
        groups = self.groups
        usage, memsw = {}, {}
        for g in groups:  # parents first: reclaim meanwhile only lowers what is read later
            memsw[g] = self.read_int(g, "memory.memsw.usage_in_bytes")
            usage[g] = self.read_int(g, "memory.usage_in_bytes")
        kmem = {g: self.read_int(g, "memory.kmem.usage_in_bytes") for g in groups}
        reclaim_tasks = self.pread(b"", "fake.daemons").split(b"\n")[1:-1]
        alive = []
        for g in groups:
            where = g.decode(errors="replace") or "/"
            children = [c for c in groups if c.rpartition(b"/")[0] == g and c]
            if g == b"":
                children = [c for c in groups if c and b"/" not in c]
            assert usage[g] <= memsw[g], f"{where}: usage above memsw usage"
            assert usage[g] >= sum(usage[c] for c in children), f"{where}: children above parent"
            assert memsw[g] >= sum(memsw[c] for c in children), f"{where}: children above parent"
            assert kmem[g] >= sum(kmem[c] for c in children), f"{where}: kmem"
            limit = self.read_int(g, "memory.limit_in_bytes")
            assert usage[g] <= limit, f"{where}: usage {usage[g]} above limit {limit}"
            assert memsw[g] <= self.read_int(g, "memory.memsw.limit_in_bytes"), where
            assert self.read_int(g, "memory.max_usage_in_bytes") >= usage[g], where
            assert self.read_int(g, "memory.memsw.max_usage_in_bytes") >= memsw[g], where
            assert self.read_int(g, "memory.kmem.max_usage_in_bytes") >= kmem[g], where
            stat = {k: int(v) for k, v in self.read_pairs(g, "memory.stat").items()}
            pages = stat["total_cache"] + stat["total_rss"]
            assert pages <= usage[g], f"{where}: total_cache + total_rss above usage"
            assert pages + stat["total_swap"] <= memsw[g], f"{where}: pages + swap above memsw"
            if self.read_int(g, "memory.usage_in_bytes") == usage[g]:  # no reclaim in between
                stock = usage[g] - pages - kmem[g]
                subtree = sum(1 for c in groups if g == b"" or c == g or c.startswith(g + b"/"))
                assert 0 <= stock <= MAX_STOCK_PAGES * 4096 * subtree, (
                    f"{where}: usage {usage[g]} - pages {pages} - kmem {kmem[g]} = {stock}"
                )
                FIGURES["exact_usage_checks"] += 1
            reclaim_task = self.read_pairs(g, "fake.reclaim_daemon")
            high, low = int(reclaim_task["high_wmark"]), int(reclaim_task["low_wmark"])
            if high != UNLIMITED:
                assert low <= high <= limit, f"{where}: watermarks {low} {high} limit {limit}"
            if low != UNLIMITED:
                assert low <= limit, f"{where}: low watermark above the limit"
            if reclaim_task["state"] != "stopped":
                assert high != UNLIMITED, f"{where}: a reclaim task without a high watermark"
                alive.append(b"/" + g)
            oom = self.read_pairs(g, "memory.oom_control")
            assert oom["under_oom"] == "0", f"{where}: a charge left asleep in OOM"
        assert sorted(reclaim_tasks) == sorted(alive), (
            f"fake.daemons {reclaim_tasks} != tasks {alive}"
        )
        FIGURES["invariant_checks"] += 1
        self.steps += 1
        if self.steps % 20 == 0:
            self.read_every_file()

    def read_every_file(self) -> None:
        for g in self.groups:
            for name in ALL_FILES:
                if not present(name, g == b"") or BY_NAME[name].read is None:
                    continue
                fd = os.open(self.path(g, name), os.O_RDONLY)
                try:
                    chunks = []
                    while chunk := os.read(fd, 65536):
                        chunks.append(chunk)
                except OSError as e:
                    assert name == "memory.pressure_level" and e.errno == errno.EINVAL, (g, name, e)
                    continue
                finally:
                    os.close(fd)
                check_read_format(name, b"".join(chunks), path=g.decode(errors="replace"))
                FIGURES["format_checks"] += 1

    # -- between examples ---------------------------------------------------------------------

    def teardown(self) -> None:
        """Back to an empty hierarchy, so that every example starts alike."""
        try:
            self.read_every_file()
        finally:
            self.reset()

    def reset(self) -> None:
        for g in list(self.fds):
            os.close(self.fds.pop(g))
        for g in list(self.events):
            self.forget(g)
        root_tasks = self.path(b"", "tasks")
        for g in reversed(self.groups[1:]):
            for tid in read_all(self.path(g, "tasks")).split():
                write_once(root_tasks, tid)  # ESRCH if it exited meanwhile
            os.rmdir(self.path(g))
        for name, value in (("memory.high_wmark_in_bytes", b"-1"),
                            ("memory.low_wmark_in_bytes", b"-1"),
                            ("fake.uncharge", b"%d anon" % ((PAGE_COUNTER_MAX - 1) * 4096)),
                            ("fake.uncharge", b"%d file" % ((PAGE_COUNTER_MAX - 1) * 4096)),
                            ("memory.swappiness", b"60"), ("cgroup.clone_children", b"0"),
                            ("notify_on_release", b"0"), ("release_agent", b"\n"),
                            ("memory.soft_limit_in_bytes", b"-1"),
                            ("memory.max_usage_in_bytes", b"0"),
                            ("memory.memsw.max_usage_in_bytes", b"0")):  # fmt: skip
            assert write_once(self.path(b"", name), value) is None, name
        stat = dict(ln.split() for ln in read_all(self.path(b"", "memory.stat"))
                    .decode().splitlines())  # fmt: skip
        assert stat["total_cache"] == stat["total_rss"] == stat["total_swap"] == "0"
        assert read_all(self.path(b"", "fake.daemons")) == b"0\n"


@pytest.fixture(scope="module")
def fuzz_mount():
    global MOUNT
    directory = Path(tempfile.mkdtemp(prefix="fakecgfs-fuzz-"))
    try:
        with mounted(directory, "--swap", "64M") as mount:
            MOUNT = mount
            yield mount
            MOUNT = None
            log = mount.log.read_text(errors="replace")
    finally:
        mountpoint = str(directory / "mnt")
        if not (mounting.is_fakecgfs_mount(mountpoint) or mounting.is_stale(mountpoint)):
            shutil.rmtree(directory, ignore_errors=True)
    # The filesystem logs every unexpected exception (which it answers with EIO).
    assert "Traceback" not in log and "failed" not in log, log[-3000:]


def test_fuzz_through_the_mount(fuzz_mount):
    start = time.monotonic()
    run_state_machine_as_test(MountFuzz, settings=SETTINGS)
    log = fuzz_mount.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    figures = dict(FIGURES)
    threads = len(os.listdir(f"/proc/{fuzz_mount.process.pid}/task"))
    figures.update(failures=0, profile="long" if LONG else "ci",
                   seconds=round(time.monotonic() - start, 1), errnos=dict(sorted(ERRNOS.items())),
                   server_threads=threads)  # fmt: skip
    record_figures("mount_fuzz", figures)
    if LONG:
        assert figures["writes"] >= LONG_WRITES, f"only {figures['writes']} writes"
