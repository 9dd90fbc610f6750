"""Shared helpers for the controller tests: a virtual clock, a fake process table, waiting.

Every async test runs under ``trio.run`` with a MockClock that jumps straight to the next timer
whenever all tasks sleep, so "60 seconds of back-off" costs microseconds and the outcome depends
on nothing but the code under test.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio
import trio.testing

from fakecgfs.controller import PAGE_SIZE, Event, EventKind, MemCgroup, MemoryController

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


def pages(nbytes: int) -> int:
    """Bytes to pages (the controller works in pages; the tests think in MiB)."""
    assert nbytes % PAGE_SIZE == 0
    return nbytes // PAGE_SIZE


def kernel_overhead(memcg: MemCgroup) -> int:
    """Pages in ``memcg``'s memory (and memsw) usage that no test charged: kernel memory.

    As measured on kernel 6.18, creating a child group charges its parent kernel memory for the
    child's structures (KMEM_FIRST_CHILD_PAGES, then KMEM_NEXT_CHILD_PAGES each), through the
    per-CPU stock: memory and memsw grow a whole MEMCG_CHARGE_BATCH at a time, kmem by the exact
    pages.  Counters are hierarchical, so every group of the subtree that made children adds its
    ``kernel_pages`` and its unused ``stock``.  A group that never had children has none.
    """
    return sum(n.kernel_pages + n.stock for n in memcg.subtree())


def user_usage(memcg: MemCgroup) -> int:
    """``memory.usage`` without the kernel overhead: the pages tasks (the tests) charged.

    Use it wherever a test checks usage of a group that has, or had, child groups (the root
    always does); assert ``kernel_overhead`` separately where the test knows what it must be.
    """
    return memcg.memory.usage - kernel_overhead(memcg)


def user_memsw_usage(memcg: MemCgroup) -> int:
    """``memsw.usage`` without the kernel overhead (it is charged to memory+swap as well)."""
    return memcg.memsw.usage - kernel_overhead(memcg)


def trio_test(fn: Callable) -> Callable:
    """Run an ``async def`` test under trio with an autojumping MockClock (virtual time only).

    functools.wraps keeps the signature visible to pytest, so fixtures still work.
    """
    assert inspect.iscoroutinefunction(fn), fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        clock = trio.testing.MockClock(autojump_threshold=0)
        return trio.run(functools.partial(fn, *args, **kwargs), clock=clock)

    return wrapper


async def wait_for(
    predicate: Callable[[], bool], timeout: float = 600.0, step: float = 0.01
) -> None:
    """Poll ``predicate`` every ``step`` virtual seconds; fail after ``timeout`` virtual seconds."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(step)


class FakeProcesses:
    """A ProcessTable with made-up threads: tid -> tgid, nothing read from /proc."""

    def __init__(self) -> None:
        self.threads: dict[int, int] = {}

    def spawn(self, pid: int, *extra_tids: int) -> None:
        """A process ``pid`` whose threads are ``pid`` and ``extra_tids``."""
        for tid in (pid, *extra_tids):
            self.threads[tid] = pid

    def exit(self, tid: int) -> None:
        self.threads.pop(tid, None)

    # -- the ProcessTable protocol -------------------------------------------------------------

    def thread_alive(self, tid: int) -> bool:
        return tid in self.threads

    def thread_group(self, tid: int) -> list[int]:
        tgid = self.threads.get(tid)
        if tgid is None:
            return []
        return sorted(t for t, g in self.threads.items() if g == tgid)

    def tgid_of(self, tid: int) -> int | None:
        return self.threads.get(tid)

    def all_threads(self) -> list[int]:
        return sorted(self.threads)


class EventLog:
    """A listener that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: EventKind, group: str | None = None) -> list[Event]:
        return [e for e in self.events if e.kind is kind and (group is None or e.group == group)]


@asynccontextmanager
async def controller(**kwargs) -> AsyncIterator[MemoryController]:
    """A running controller with a fake (empty) process table unless one is given."""
    kwargs.setdefault("processes", FakeProcesses())
    async with MemoryController.open(**kwargs) as c:
        yield c
