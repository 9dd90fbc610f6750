"""memcontd: the RFC's per-group reclaim kernel thread, as posted (RFC 3/4), as a trio task.

The patch's loop, line by line::

    css_get; PF_SWAPWRITE; set_user_nice(current, 0); set_freezable()
    while (!kthread_should_stop()) {
        prepare_to_wait(&mem->daemon.waitq, &wait, TASK_INTERRUPTIBLE);
        if (res_counter_state(&mem->res) == RES_BELOW_LOW) {
            if (!kthread_should_stop()) { schedule(); try_to_freeze(); }
            finish_wait(...); continue;
        }
        finish_wait(...);
        ret = try_to_free_mem_cgroup_pages(mem, GFP_HIGHUSER_MOVABLE);
        yield();
    }

So the task sleeps only at or under the low watermark; anywhere above it, it runs a reclaim pass
and yields, again and again, whether the pass freed anything or not.  yield() at nice 0 hands
the CPU only to another runnable task of its class and comes straight back, so such a task is on
the CPU the whole time: here each pass plus its yield() is a trio checkpoint followed by
YIELD_PASS_CPU_COST seconds of simulated CPU, all counted in ``time_running``.

kthread_should_stop() is the task's cancel scope; the single trio loop stands in for the
patch's memcont_daemon_lock and for prepare_to_wait()'s protection against a lost wake-up (the
state check and the sleep run with no checkpoint between them).  The freezer is not modelled.
"""

from __future__ import annotations

import enum
import weakref
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from ...controller.events import EventKind
from .res_counter import ResCounter, ResState


class ThreadGroup(Protocol):
    """What the thread reads of its group (the era's ``Group``)."""

    res: ResCounter


class ThreadHost(Protocol):
    """What the thread asks of its controller (the era's ``Rfc2008Controller``), received
    rather than imported, so that the controller may import this module."""

    def background_pass(self, memcg: Any) -> object: ...  # the thread reads no result

    def emit(self, memcg: Any, kind: EventKind, **values: Any) -> None: ...


THREAD_NAME = "memcontd"
"""kthread_run(mem_cgroup_reclaim_daemon, mem, "memcontd"): every group's task has this name."""

YIELD_PASS_CPU_COST = 0.01
"""Simulated CPU seconds of one reclaim pass and its yield().  The patch gives no figure; this
one makes a spinning task's 100 passes a second easy to watch in ``top`` and to count in tests.
(On a real 2.6.26, a pass that scans without freeing 32 pages also naps HZ/10 per priority
below 10 in congestion_wait(); the reclaim model has no congestion: see docs/differences.md.)"""


class ThreadState(enum.Enum):
    STOPPED = "stopped"  # mem->daemon.thread == NULL: never started, or stopped by rmdir
    SLEEPING = "sleeping"  # in schedule(), on mem->daemon.waitq: usage <= lwmark
    RUNNING = "running"  # reclaiming and yielding: usage > lwmark


@dataclass
class ThreadStats:
    """What fake.reclaim_daemon shows (the kernel thread kept no statistics)."""

    wakeups: int = 0  # times the sleeping task was woken through its wait queue
    passes: int = 0  # try_to_free_mem_cgroup_pages() calls
    pages_scanned: int = 0
    pages_reclaimed: int = 0
    no_progress_passes: int = 0  # passes that freed nothing (the loop does not care)
    time_running: float = 0.0  # seconds on the CPU: every second not spent asleep


class Memcontd:
    """One group's ``mem->daemon``: the thread (``scope``, NULL when None) and its wait queue."""

    def __init__(self, controller: ThreadHost, memcg: ThreadGroup) -> None:
        self.controller = controller
        self._memcg = weakref.ref(memcg)  # the group owns it; see controller/reclaim_task.py
        self.thread: trio.CancelScope | None = None  # mem->daemon.thread
        self._waitq: trio.Event | None = None  # mem->daemon.waitq; set while the task sleeps
        self.nice = 0  # set_user_nice(current, 0): the bare 0 Balbir asked to name
        self.state = ThreadState.STOPPED
        self.stats = ThreadStats()
        self._state_since = 0.0

    @property
    def memcg(self) -> ThreadGroup:
        memcg = self._memcg()
        assert memcg is not None, "the memcontd of a freed group"
        return memcg

    # -- mem_cgroup_start_daemon / mem_cgroup_stop_daemon / mem_cgroup_schedule_reclaim ----------

    def is_running(self) -> bool:
        return self.thread is not None

    async def start(self, nursery: trio.Nursery) -> None:
        """mem_cgroup_start_daemon(): kthread_run() unless the thread exists; returns once the
        thread runs."""
        if self.thread is not None:
            return
        self.thread = scope = trio.CancelScope()
        await nursery.start(self._run, self.memcg, scope, name=THREAD_NAME)

    def stop(self) -> None:
        """mem_cgroup_stop_daemon(): kthread_stop(); thread = NULL.  The task exits at its next
        checkpoint, before anything else in the loop runs: no pass of it follows this."""
        if self.thread is not None:
            self.thread.cancel()
            self.thread = None
            self._set_state(ThreadState.STOPPED)

    def waitqueue_active(self) -> bool:
        return self._waitq is not None

    def wake_up_interruptible(self) -> None:
        if self._waitq is not None:
            self._waitq.set()

    # -- mem_cgroup_reclaim_daemon ------------------------------------------------------------

    async def _run(self, memcg: ThreadGroup, scope: trio.CancelScope,
                   task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:  # fmt: skip
        with scope:
            try:
                task_status.started()
                del task_status
                while True:  # while (!kthread_should_stop()): the cancel scope
                    if memcg.res.state() == ResState.RES_BELOW_LOW:
                        await self._schedule()
                        continue
                    self._set_state(ThreadState.RUNNING)
                    self.controller.background_pass(memcg)
                    await self._yield()
            finally:
                if self.thread is None or self.thread is scope:
                    self.thread = None
                    self._set_state(ThreadState.STOPPED)
                self._waitq = None

    async def _schedule(self) -> None:
        """schedule() in TASK_INTERRUPTIBLE on the wait queue, until woken."""
        self._set_state(ThreadState.SLEEPING)
        self._waitq = waitq = trio.Event()
        try:
            await waitq.wait()
        finally:
            self._waitq = None
        self.stats.wakeups += 1

    async def _yield(self) -> None:
        """yield(): the scheduler's turn (a checkpoint), and the CPU the pass cost."""
        await trio.lowlevel.checkpoint()
        await trio.sleep(YIELD_PASS_CPU_COST)

    def _set_state(self, state: ThreadState) -> None:
        if state is self.state:
            return
        now = trio.current_time()
        if self.state is ThreadState.RUNNING:
            self.stats.time_running += now - self._state_since
        self._state_since = now
        previous, self.state = self.state, state
        self.controller.emit(self.memcg, EventKind.DAEMON_STATE, state=state.value,
                             previous=previous.value, usage=self.memcg.res.usage)  # fmt: skip

    def time_running_now(self) -> float:
        """time_running including the current stretch on the CPU."""
        if self.state is ThreadState.RUNNING:
            return self.stats.time_running + trio.current_time() - self._state_since
        return self.stats.time_running
