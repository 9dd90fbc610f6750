"""The control-file handlers' declared shapes (issue 17): a write that never waits is a plain
function (``write``), one that may wait is an ``async def`` (``write_blocking``), optionally
with a plain fast path (``try_write``); the filesystem branches on the declaration alone."""

from __future__ import annotations

import errno
import inspect
import os
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from fakecgfs.cgroupfs.cftypes import Caller, CfType
from fakecgfs.cgroupfs.fs import CgroupFS
from fakecgfs.cgroupfs.table import MODERN
from fakecgfs.controller import PAGE_SIZE, MemCgroup, MemoryController, PageKind
from fakecgfs.eras.rfc2008.cftypes import TABLE as RFC2008

TABLES = {"6.18": MODERN, "rfc-2008": RFC2008}

# The writes that sleep in the kernel: resizing a limit under usage reclaims
# (mem_cgroup_resize_max), force_empty reclaims; a charge reclaims or waits in OOM; fakecgfs's
# reclaim task is started and stopped by a write that waits for it (kthread_run/kthread_stop in
# the RFC), and event_control may scan for closed eventfds.  Everything else never sleeps.
BLOCKING = {
    "6.18": {
        "cgroup.event_control", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
        "memory.force_empty", "memory.high_wmark_in_bytes", "fake.charge",
        "fake.reclaim_daemon",
    },
    # 2.6.26 + RFC: limits are stored without reclaim and force_empty drops the accounting
    # without reclaiming; a high_wmark write starts memcontd first.
    "rfc-2008": {"memory.high_wmark_in_bytes", "fake.charge"},
}  # fmt: skip
# Writes that usually need no wait, answered without a task when they do not.
FAST_PATH = {
    "6.18": {"memory.limit_in_bytes", "fake.charge"},
    "rfc-2008": {"fake.charge"},
}
CALLER = Caller(pid=os.getpid(), uid=0, gid=0)
MiB = 1 << 20


@pytest.mark.parametrize("era", TABLES)
def test_every_file_declares_one_shape(era: str) -> None:
    for cft in TABLES[era].cftypes:
        assert cft.write is None or cft.write_blocking is None, cft.name
        assert cft.try_write is None or cft.write_blocking is not None, cft.name
        for handler in (cft.read, cft.write, cft.try_write):
            assert handler is None or not inspect.iscoroutinefunction(handler), cft.name
        if cft.write_blocking is not None:
            assert inspect.iscoroutinefunction(cft.write_blocking), cft.name
        assert cft.writable == (cft.write is not None or cft.write_blocking is not None)
        assert cft.blocking == (cft.write_blocking is not None), cft.name


@pytest.mark.parametrize("era", TABLES)
def test_the_writes_that_may_wait_are_the_kernels_sleeping_ones(era: str) -> None:
    cftypes = TABLES[era].cftypes
    assert {cft.name for cft in cftypes if cft.blocking} == BLOCKING[era]
    assert {cft.name for cft in cftypes if cft.try_write is not None} == FAST_PATH[era]


def _sync(ctl: object, memcg: object, data: bytes, caller: Caller) -> None:
    pass


async def _blocking(ctl: object, memcg: object, data: bytes, caller: Caller) -> None:
    pass


def _try(ctl: object, memcg: object, data: bytes, caller: Caller) -> bool:
    return True


async def _try_async(ctl: object, memcg: object, data: bytes, caller: Caller) -> bool:
    return True


@pytest.mark.parametrize(
    "handlers",
    [
        {"write": _sync, "write_blocking": _blocking},
        {"write": _blocking},
        {"write_blocking": _sync},
        {"write": _sync, "try_write": _try},
        {"try_write": _try},
        {"write_blocking": _blocking, "try_write": _try_async},
    ],
    ids=["both", "async-write", "sync-blocking", "try-beside-write", "try-alone", "async-try"],
)
def test_a_malformed_entry_is_refused_when_the_table_is_built(handlers: dict) -> None:
    with pytest.raises(TypeError):
        CfType("x", "doc", **handlers)


def test_well_formed_entries_build() -> None:
    assert CfType("x", "doc", write=_sync).blocking is False
    assert CfType("x", "doc", write_blocking=_blocking, try_write=_try).blocking is True
    assert not CfType("x", "doc").writable and CfType("x", "doc").mode == 0


def _run(test: Callable[[], Awaitable[None]]) -> None:
    trio.run(test, clock=trio.testing.MockClock(autojump_threshold=0))


def test_the_filesystem_branches_on_the_declaration_not_on_the_result() -> None:
    """A plain write is answered at once; a blocking one whose fast path did it too; a blocking
    one that must wait, or has no fast path, is handed to the session as an awaitable."""

    async def main() -> None:
        async with MemoryController.open() as ctl:
            fs = CgroupFS(ctl)
            g: MemCgroup = ctl.create_group(ctl.root, "g")

            def write(name: str, data: bytes) -> int | Awaitable[int]:
                fh = fs.open(f"/g/{name}", os.O_WRONLY)
                try:
                    return fs.write_request(fh, data, CALLER)
                finally:
                    fs.release(f"/g/{name}", fh)

            assert write("memory.swappiness", b"30\n") == 3 and g.swappiness == 30
            # Usage (nothing) fits under 64M: the fast path sets it, no task.
            assert write("memory.limit_in_bytes", b"64M\n") == 4
            assert g.memory.limit == 64 * MiB // PAGE_SIZE
            assert write("fake.charge", b"8M file\n") == 8
            assert g.memory.usage == 8 * MiB // PAGE_SIZE
            # Under usage: it must reclaim first, in a task of the session's.
            pending = write("memory.limit_in_bytes", b"4M\n")
            assert inspect.isawaitable(pending)
            assert g.memory.limit == 64 * MiB // PAGE_SIZE  # nothing done yet
            assert await pending == 3
            assert g.memory.limit == 4 * MiB // PAGE_SIZE
            assert g.memory.usage <= g.memory.limit
            # Over the limit: the charge reclaims, in a task.
            pending = write("fake.charge", b"2M file\n")
            assert inspect.isawaitable(pending)
            assert await pending == 8
            # No fast path: always an awaitable, even with nothing to wait for.
            ctl.uncharge(g, g.memory.usage, PageKind.FILE)
            pending = write("memory.force_empty", b"0\n")
            assert inspect.isawaitable(pending)
            assert await pending == 2

    _run(main)


def test_a_registration_whose_group_went_before_its_task_ran_is_enodev() -> None:
    """cgroup.event_control runs in a task of its own: an rmdir the session serves before that
    task runs makes it answer as a write after rmdir does (ENODEV), registering nothing."""

    async def main() -> None:
        async with MemoryController.open() as ctl:
            fs = CgroupFS(ctl)
            g = ctl.create_group(ctl.root, "g")
            fh = fs.open("/g/cgroup.event_control", os.O_WRONLY)
            pending = fs.write_request(fh, b"3 4", CALLER)
            assert inspect.isawaitable(pending)
            fs.rmdir("/g")
            assert g.removed
            with pytest.raises(OSError) as raised:
                await pending
            assert raised.value.errno == errno.ENODEV
            assert not ctl.notifier._by_group

    _run(main)
