"""Fuzzing the controller and the control files' handlers in-process (issue 5), no FUSE.

Each example is a random program: mkdir, rmdir, writes of random bytes into every control file
(through the handlers of the cftype table, exactly as the filesystem calls them), charges,
uncharges, page references, task moves and the passing of (virtual) time, run in a fresh
controller under trio's autojumping MockClock.  After every step:

* a refused write carries one of the errnos the kernel returns for that file (docs/files.md),
  and no handler raises anything but an errno (which the mount would turn into EIO);
* the controller's invariants hold exactly, for every group: usage <= limit (memory and
  memory+swap), usage equals the sum over the subtree of the pages on the LRU lists plus the
  kernel pages and the per-CPU stock, a parent's usage >= the sum of its children's,
  lwmark <= hwmark <= limit when armed, max_usage >= usage, the swap device's use equals the
  swapped pages, and a running reclaim task has an armed high watermark;
* and at the end every readable file renders in its format.

A write that waits (a charge asleep in OOM) is cancelled after 300 virtual seconds, as Ctrl-C
would end it; that exercises the interrupted paths too.  FAKECGFS_LONG=1 runs it long.
"""

from __future__ import annotations

import collections
import errno
import os

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from expectations import allowed_write_errnos, check_read_format, errname, record_figures
from fakecgfs.cgroupfs.cftypes import BY_NAME, CFTYPES, Caller, files_of
from fakecgfs.cgroupfs.parse import MAX_WRITE, terminate
from fakecgfs.controller import MemoryController, PageKind, ReclaimTaskState
from fuzzing import LONG, profile, write_data

from .conftest import FakeProcesses, wait_for

STEPS_PER_EXAMPLE = 60
LONG_STEPS = int(os.environ.get("FAKECGFS_FUZZ_STEPS", "200000"))
SETTINGS = profile(ci_examples=500, long_examples=max(LONG_STEPS // (STEPS_PER_EXAMPLE // 2), 1))

NAMES = ["a", "b", "c", "d", "e"]
ALL_FILES = sorted(c.name for c in CFTYPES)
SETTING_FILES = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
                 "memory.high_wmark_in_bytes", "memory.low_wmark_in_bytes",
                 "memory.oom_control", "memory.swappiness", "fake.reclaim_daemon",
                 "memory.force_empty", "memory.max_usage_in_bytes"]  # fmt: skip
PIDS = [100, 101, 200]  # fake processes: 100 has threads 100 and 101; 200 is alone
WAIT_LIMIT = 300.0  # virtual seconds a blocked write may wait before it is "interrupted"
CALLER = Caller(pid=2**22 + 7, uid=0, gid=0, mountpoint=None)  # no such process

FIGURES: collections.Counter = collections.Counter()
ERRNOS: collections.Counter = collections.Counter()


def setting_value() -> st.SearchStrategy[bytes]:
    """Sizes around where things happen (0 to 64 MiB), -1, and the two oom/swappiness words."""
    return st.one_of(
        st.integers(0, 16384).map(lambda p: b"%d" % (p * 4096)),
        st.integers(0, 64).map(lambda m: b"%dM" % m),
        st.sampled_from([b"-1", b"0", b"1", b"60", b"start", b"stop", b"x"]),
    )


kinds = st.sampled_from([PageKind.ANON, PageKind.FILE])
group = st.integers(0, 15)
OPS = st.one_of(
    st.tuples(st.just("mkdir"), group, st.sampled_from(NAMES)),
    st.tuples(st.just("rmdir"), group),
    st.tuples(st.just("write"), group, st.sampled_from(ALL_FILES), write_data()),
    st.tuples(st.just("write"), group, st.sampled_from(ALL_FILES), write_data()),
    st.tuples(st.just("write"), group, st.sampled_from(SETTING_FILES), setting_value()),
    st.tuples(st.just("write"), group, st.sampled_from(SETTING_FILES), setting_value()),
    st.tuples(st.just("charge"), group, st.integers(0, 24576), kinds, st.booleans()),
    st.tuples(st.just("charge"), group, st.integers(0, 24576), kinds, st.booleans()),
    st.tuples(st.just("uncharge"), group, st.integers(0, 24576), kinds),
    st.tuples(st.just("touch"), group, st.integers(0, 4096), kinds),
    st.tuples(st.just("attach"), group, st.sampled_from(PIDS), st.booleans()),
    st.tuples(st.just("exit"), st.sampled_from(PIDS)),
    st.tuples(st.just("sleep"), st.floats(0, 30)),
    # A tight spot: a small limit (and maybe memsw at the same value, and oom_kill_disable 1),
    # then a charge beyond it, left running in the background as a faulting task would.
    st.tuples(st.just("squeeze"), group, st.integers(0, 4096), st.booleans(), st.booleans()),
    st.tuples(st.just("bgcharge"), group, st.integers(0, 16384), kinds),
)


def check_invariants(ctl: MemoryController, background: int = 0) -> None:
    """The controller's invariants, exactly (see the module docstring); ``background``:
    charges still running as tasks."""
    groups = list(ctl.groups())
    swapped = 0
    for g in groups:
        subtree = list(g.subtree())
        resident = sum(n.lruvec.resident() for n in subtree)
        kernel = sum(n.kernel_pages + n.stock for n in subtree)
        swap = sum(n.lruvec.swapped for n in subtree)
        mem, memsw = g.memory, g.memsw
        where = g.path
        assert mem.usage <= mem.limit, f"{where}: usage {mem.usage} > limit {mem.limit}"
        assert memsw.usage <= memsw.limit, f"{where}: memsw usage > memsw limit"
        assert mem.usage == resident + kernel, (
            f"{where}: usage {mem.usage} != pages {resident} + kernel {kernel}"
        )
        assert memsw.usage == resident + swap + kernel, f"{where}: memsw usage != pages + swap"
        assert g.kmem.usage == sum(n.kernel_pages for n in subtree), f"{where}: kmem usage"
        assert mem.usage >= sum(c.memory.usage for c in g.children.values()), where
        assert memsw.usage >= sum(c.memsw.usage for c in g.children.values()), where
        for counter in (mem, memsw, g.kmem, g.tcp):
            assert counter.max_usage >= counter.usage, f"{where}: max_usage < usage"
            assert counter.failcnt >= 0
        assert 0 <= g.stock < 64 + 3, f"{where}: stock {g.stock}"
        if mem.hwmark is not None:
            assert mem.lwmark is not None
            assert 0 <= mem.lwmark <= mem.hwmark <= mem.limit, f"{where}: watermarks out of order"
        elif mem._lwmark is not None:
            assert mem._lwmark <= mem.limit, f"{where}: low watermark above the limit"
        if g.reclaim_task.is_running():
            assert mem.hwmark is not None, f"{where}: a reclaim task without a high watermark"
        assert (g.reclaim_task.state is ReclaimTaskState.STOPPED) == (
            not g.reclaim_task.is_running()
        ), where
        if not background:
            assert g.oom_waiters == 0 and g.charging == 0, f"{where}: a charge left behind"
        assert g.oom_waiters <= g.charging or any(n.charging for n in g.subtree()), (
            f"{where}: under_oom without a charge"
        )
        lru = g.lruvec
        for lst in (lru.inactive_anon, lru.active_anon, lru.inactive_file, lru.active_file):
            assert 0 <= lst.referenced <= lst.nr and 0 <= lst.dirty <= lst.nr, where
        assert lru.inactive_anon.dirty == lru.active_anon.dirty == 0, where
        assert lru.swapped >= 0
        swapped += lru.swapped
        assert not g.removed
        if g.parent is not None:
            assert g.parent.children.get(g.name) is g
    assert ctl.swap.used == swapped <= ctl.swap.total, "swap device use != swapped pages"
    assert ctl.reclaim_tasks() == [g for g in groups if g.reclaim_task.is_running()]
    FIGURES["invariant_checks"] += 1


async def write_file(ctl: MemoryController, memcg, name: str, data: bytes) -> int | None:
    """One write() as CgroupFS.write makes it: the errno, or None."""
    cft = BY_NAME[name]
    if len(data) > MAX_WRITE:
        return errno.E2BIG
    if not cft.writable:
        return errno.EINVAL
    if not data:
        return None
    data = terminate(data)
    try:
        with trio.move_on_after(WAIT_LIMIT) as scope:
            if cft.write is not None:
                cft.write(ctl, memcg, data, CALLER)
            elif cft.try_write is None or not cft.try_write(ctl, memcg, data, CALLER):
                await cft.write_blocking(ctl, memcg, data, CALLER)
        if scope.cancelled_caught:
            FIGURES["writes_interrupted"] += 1
            return errno.EINTR
    except OSError as e:
        assert e.errno and e.errno > 0, f"{name}: an OSError without an errno: {e!r}"
        return e.errno
    return None


def read_file(ctl: MemoryController, memcg, name: str) -> None:
    cft = BY_NAME[name]
    if cft.read is None:
        return
    try:
        text = cft.read(ctl, memcg)
    except OSError as e:
        assert name == "memory.pressure_level" and e.errno == errno.EINVAL, (name, e)
        return
    check_read_format(name, text.encode("utf-8", "surrogateescape"), path=memcg.path)
    FIGURES["reads"] += 1


async def run_program(ops: list, swap_pages: int) -> None:
    processes = FakeProcesses()
    processes.spawn(100, 101)
    processes.spawn(200)
    async with MemoryController.open(swap_bytes=swap_pages * 4096, processes=processes) as ctl:
        alive = [ctl.root]
        pending = {"n": 0}
        async with trio.open_nursery() as nursery:
            await steps(ctl, processes, ops, alive, nursery, pending)
            # Every background charge ends within WAIT_LIMIT, one way or another (the nursery
            # alone would wait for a stuck one until the test's timeout, saying nothing).
            await wait_for(lambda: pending["n"] == 0, timeout=WAIT_LIMIT + 10, step=1.0)
        await finish(ctl, alive)


async def background_charge(ctl, memcg, nr_pages, kind, pending) -> None:
    """A charge running as a task: it may sleep in OOM until released, or be interrupted."""
    pending["n"] += 1
    outcome = "ok"
    try:
        with trio.move_on_after(WAIT_LIMIT) as scope:
            await ctl.charge(memcg, nr_pages, kind)
        if scope.cancelled_caught:
            outcome = "interrupted"
    except OSError as e:
        assert e.errno in (errno.ENOMEM, errno.ENOENT), e  # ENOENT: its group was removed first
        outcome = errname(e.errno)
    finally:
        pending["n"] -= 1
    FIGURES[f"background_charges_{outcome}"] += 1


async def steps(ctl, processes, ops, alive, nursery, pending) -> None:
    for op in ops:
        kind, args = op[0], op[1:]
        target = alive[args[0] % len(alive)] if kind not in ("sleep", "exit") else None
        if kind == "mkdir":
            if len(alive) < 12 and len(list(target.lineage())) < 4:
                try:
                    alive.append(ctl.create_group(target, args[1]))
                except OSError as e:
                    assert e.errno in (errno.EEXIST, errno.ENOMEM), (op, e)
        elif kind == "rmdir":
            try:
                await ctl.remove_group(target)
                alive.remove(target)
            except OSError as e:
                assert e.errno == errno.EBUSY, (op, e)
        elif kind == "write":
            name, data = args[1], args[2]
            if not BY_NAME[name].present_in(target):
                continue
            code = await write_file(ctl, target, name, data)
            allowed = allowed_write_errnos(BY_NAME[name], data) | {errno.EINTR}
            assert code is None or code in allowed, (
                f"write {data[:60]!r} to {target.path}/{name}: {errname(code)}, the kernel "
                f"returns one of {sorted(errname(c) for c in allowed)}"
            )
            ERRNOS[f"{name} {errname(code)}"] += 1
            FIGURES["writes"] += 1
        elif kind == "charge":
            outcome = "ok"
            with trio.move_on_after(WAIT_LIMIT) as scope:
                try:
                    await ctl.charge(target, args[1], args[2],
                                     dirty=args[3] and args[2] is PageKind.FILE)  # fmt: skip
                except OSError as e:
                    assert e.errno == errno.ENOMEM, (op, e)
                    outcome = "ENOMEM"
            if scope.cancelled_caught:
                outcome = "interrupted"
            FIGURES["charges"] += 1
            FIGURES[f"charges_{outcome}"] += 1
        elif kind == "uncharge":
            assert ctl.uncharge(target, args[1], args[2]) <= args[1]
        elif kind == "touch":
            ctl.touch(target, args[1], args[2])
        elif kind == "attach":
            if args[1] in processes.threads:
                ctl.attach(target, args[1], whole_process=args[2])
        elif kind == "exit":
            processes.exit(args[0])
        elif kind == "sleep":
            await trio.sleep(args[0])
        elif kind == "squeeze":
            if not target.is_root():
                size = b"%d" % (args[1] * 4096)
                for name, data in (("memory.memsw.limit_in_bytes", b"-1"),
                                   ("memory.limit_in_bytes", size),
                                   ("memory.memsw.limit_in_bytes", size if args[2] else b"-1"),
                                   ("memory.oom_control", b"%d" % args[3])):  # fmt: skip
                    code = await write_file(ctl, target, name, data)
                    assert code in (None, errno.EBUSY, errno.EINVAL), (op, name, code)
            nursery.start_soon(background_charge, ctl, target, args[1] * 2 + 64, PageKind.ANON,
                               pending)  # fmt: skip
        elif kind == "bgcharge":
            nursery.start_soon(background_charge, ctl, target, args[1], args[2], pending)
        await trio.lowlevel.checkpoint()
        check_invariants(ctl, pending["n"])
        FIGURES["steps"] += 1


async def finish(ctl, alive) -> None:
    await trio.sleep(1)
    check_invariants(ctl)
    for memcg in alive:
        for cft in files_of(memcg):
            read_file(ctl, memcg, cft.name)
    for memcg in reversed(alive[1:]):  # every group can still be removed, deepest first
        for tid in list(memcg.tasks):
            ctl.attach(ctl.root, tid, whole_process=False)
        await ctl.remove_group(memcg)
    check_invariants(ctl)
    assert ctl.reclaim_tasks() == [ctl.root] * ctl.root.reclaim_task.is_running()


@SETTINGS
@given(ops=st.lists(OPS, min_size=STEPS_PER_EXAMPLE // 4, max_size=STEPS_PER_EXAMPLE),
       swap_pages=st.sampled_from([0, 0, 256, 16384]))  # fmt: skip
def test_fuzz_the_controller_and_its_files(ops, swap_pages):
    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(run_program, ops, swap_pages, clock=clock)
    FIGURES["examples"] += 1


def test_the_fuzz_run_reached_every_outcome():
    """The fuzz test above would pass vacuously if its programs never reached the paths worth
    fuzzing: check that they did (each outcome of a charge, interruption included, and the
    main errnos of writes), then report the figures (pytest -s, or FAKECGFS_FIGURES).  The CI
    profile is derandomized, so what it reaches does not change from run to run."""
    if not FIGURES:
        pytest.skip("the fuzz test did not run (this one reads its figures)")
    figures = dict(FIGURES)
    figures["failures"] = 0
    figures["profile"] = "long" if LONG else "ci"
    errnos = collections.Counter(k.split(" ")[1] for k in ERRNOS.elements())
    figures["errnos"] = dict(sorted(errnos.items()))
    record_figures("controller_fuzz", figures)
    assert figures["invariant_checks"] >= figures["steps"] > 0
    for outcome in ("writes", "reads", "charges_ok", "charges_ENOMEM", "charges_interrupted",
                    "background_charges_ok", "background_charges_ENOMEM",
                    "background_charges_interrupted"):  # fmt: skip
        assert figures.get(outcome, 0) > 0, f"no {outcome} in {figures}"
    assert {"ok", "EINVAL", "E2BIG", "EBUSY"} <= errnos.keys(), errnos
