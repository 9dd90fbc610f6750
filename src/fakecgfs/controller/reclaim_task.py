"""The background reclaim task: the RFC's per-group ``memcontd`` kernel thread, as a trio task.

Life cycle (each point answers the 2008 review or the patch's TODO list):

* It is started by the first *successful* write of a high watermark (the RFC started it before
  validating the value), and by an explicit ``start``; ``-1`` to the high watermark, an explicit
  ``stop`` and rmdir stop it, synchronously like kthread_stop(): ``stop()`` returns after the
  task has exited.
* It sleeps on a wake-up (a trio.Event, the patch's wait queue) while usage is not above the high
  watermark; it never polls and never spins on yield().
* Once woken above the high watermark, it reclaims one SWAP_CLUSTER_MAX batch per pass while
  usage is above the low watermark, resting between passes by a named pace; then it sleeps again
  (the reviewer's "stop below the low watermark").
* A charge that leaves usage above the high watermark wakes it, and so do writes that change a
  watermark or the limit (the RFC re-read nothing until the next charge).
* After NO_PROGRESS_PASSES passes that free nothing (anonymous pages and no swap, say) it records a
  warning and backs off exponentially instead of burning a CPU, the patch's TODO.
"""

from __future__ import annotations

import enum
import weakref
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from .constants import BACKOFF_MAX, BACKOFF_MIN, NO_PROGRESS_PASSES, PAGE_SIZE, SWAP_CLUSTER_MAX
from .events import EventKind
from .res_counter import ResCounter

BACKOFF_WARNING = (
    f"{NO_PROGRESS_PASSES} reclaim passes freed nothing: usage above the low "
    "watermark is not reclaimable (anonymous memory without swap?); backing off"
)


class ReclaimTarget(Protocol):
    """What the task needs of its group (a MemCgroup): its name and its memory counter."""

    @property
    def path(self) -> str: ...

    memory: ResCounter


class PassResult(Protocol):
    """What one reclaim pass did (a vmscan.ReclaimResult)."""

    scanned: int
    reclaimed: int


class EpisodeListener(Protocol):
    """Told when a reclaim episode starts or ends (notify.Notifier: vmpressure's view)."""

    def reclaim_task_changed(self, memcg: Any) -> None: ...


class ReclaimHost(Protocol):
    """What the task needs of the controller that runs it: a reclaim pass (simulated pages,
    then real members'), the pace between passes, and where to report.  The reclaim task receives
    it rather than importing the controller, so the controller's modules import one way:
    controller -> memcg -> reclaim_task."""

    @property
    def notifier(self) -> EpisodeListener: ...

    def reclaim(self, memcg: Any, nr_to_reclaim: int, *, cause: str) -> PassResult: ...

    async def reclaim_real(self, memcg: Any, nr_pages: int, *, cause: str) -> int: ...

    async def pace_background_reclaim(self, reclaimed: int) -> None: ...

    def emit(self, memcg: Any, kind: EventKind, **values: Any) -> None: ...


class ReclaimTaskState(enum.Enum):
    STOPPED = "stopped"  # no task: never started, stopped, or its group removed
    SLEEPING = "sleeping"  # waiting for a wake-up; usage is not above the high watermark
    RUNNING = "running"  # reclaiming towards the low watermark, one batch per pass
    BACKOFF = "backoff"  # passes free nothing: resting longer and longer before trying again


WOKEN_BY_KICK = (ReclaimTaskState.SLEEPING, ReclaimTaskState.BACKOFF)
"""The states kick() wakes (a running task re-reads everything at its next pass).  A tuple made
once: every limit write kicks, and on Python 3.11 each ``ReclaimTaskState.X`` is a descriptor
call."""


@dataclass
class ReclaimTaskStats:
    wakeups: int = 0  # times a sleeping task was woken
    passes: int = 0  # reclaim passes run
    pages_scanned: int = 0  # pages looked at by those passes
    pages_reclaimed: int = 0  # pages they freed or moved to swap
    no_progress_passes: int = 0  # passes that freed nothing
    time_running: float = 0.0  # seconds spent in RUNNING (pacing included, back-off excluded)
    last_warning: str = ""  # the latest warning, also emitted as an event


class ReclaimTask:
    """One group's background reclaim task and its statistics (kept across stop and start)."""

    def __init__(self, controller: ReclaimHost, memcg: ReclaimTarget) -> None:
        self.controller = controller  # reclaim, pacing and events go through it
        # The group whose usage this task brings down (and its subtree), held weakly: the group
        # owns its task (memcg.reclaim_task), and a strong back-reference would make every group
        # a reference cycle that only the cycle collector frees, long after rmdir.  Callers reach
        # the task through its group, and a running task holds the group (_run's argument).
        self._memcg = weakref.ref(memcg)
        self.state = ReclaimTaskState.STOPPED
        self.stats = ReclaimTaskStats()
        self._wakeup = trio.Event()  # the patch's mem->daemon.waitq: set() wakes a waiting task
        self._cancel_scope: trio.CancelScope | None = None  # the patch's mem->daemon.thread
        self._exited = trio.Event()  # set when run() has returned: stop() waits on it
        self._state_since = 0.0  # clock time of the last state change, for time_running
        self._exited.set()

    @property
    def memcg(self) -> ReclaimTarget:
        memcg = self._memcg()
        assert memcg is not None, "the reclaim task of a freed group"
        return memcg

    # -- control -------------------------------------------------------------------------------

    def is_running(self) -> bool:
        """True from start() until stop() or the task's exit (any state but STOPPED)."""
        return self._cancel_scope is not None

    async def start(self, nursery: trio.Nursery) -> None:
        """Start the task if it is not running already (idempotent), and return once it has
        looked at usage and is asleep or reclaiming (kthread_run() returns a running thread),
        so the write that started it never reads back "stopped"."""
        if self.is_running():
            return
        self._cancel_scope = trio.CancelScope()
        self._exited = trio.Event()
        self._wakeup = trio.Event()
        await nursery.start(self._run, self.memcg, self._cancel_scope, self._exited,
                            name=f"reclaim_task:{self.memcg.path}")  # fmt: skip

    def cancel(self) -> None:
        """Tell the task to stop, without waiting: it exits at its next checkpoint, so no pass
        of it runs after this returns (everything here shares one loop); it is STOPPED now."""
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()
            self._cancel_scope = None
            self._set_state(ReclaimTaskState.STOPPED)

    async def stop(self) -> None:
        """Stop the task and return once it has exited (kthread_stop semantics)."""
        self.cancel()
        # Wait even when another caller has already cancelled the task (rmdir racing a "-1"
        # high watermark write): each caller may rely on the exit.  Set when nothing runs.
        await self._exited.wait()

    def wake_from_charge(self) -> None:
        """A charge left usage above the high watermark: wake the task if it sleeps.

        Like the patch's waitqueue_active() test, a task that is running or backing off is left
        alone, so a stream of charges cannot cut a back-off short.
        """
        if self.state is ReclaimTaskState.SLEEPING:
            self._wake()

    def kick(self) -> None:
        """A watermark, the limit, swap or usage changed: re-evaluate, sleeping or backing off."""
        if self.state in WOKEN_BY_KICK:
            self._wake()

    def _wake(self) -> None:
        if not self._wakeup.is_set():
            self._wakeup.set()

    def warn(self, message: str) -> None:
        self.stats.last_warning = message
        self.controller.emit(self.memcg, EventKind.WARNING, message=message)

    # -- the task ------------------------------------------------------------------------------

    async def _run(self, memcg: ReclaimTarget, cancel_scope: trio.CancelScope, exited: trio.Event,
                   task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:  # fmt: skip
        """The task; ``memcg`` keeps its group alive while it runs (the task holds it weakly)."""
        with cancel_scope:
            try:
                # start() resumes at our first checkpoint, after the state below is set.
                task_status.started()
                # The status holds the temporary nursery start() ran us in (its cancel scope and
                # their sets), about 1 KiB per task for as long as the task sleeps: let it go.
                del task_status
                while True:
                    await self._sleep_until_above_high_watermark()
                    await self._reclaim_to_low_watermark()
                    # An episode always yields, even one that had nothing to do, so that no
                    # state of the counters can make this loop starve the others.
                    await trio.lowlevel.checkpoint()
            finally:
                # This run is still the current one unless start() replaced it while it was
                # ending.  stop() has cleared the scope already; a closing controller cancels
                # the nursery instead and leaves it set, so clear it here, or the task would
                # still count as running (and SLEEPING) after it is gone.
                if self._cancel_scope is None or self._cancel_scope is cancel_scope:
                    self._cancel_scope = None
                    self._set_state(ReclaimTaskState.STOPPED)
                exited.set()

    async def _wait_for_wakeup(self) -> None:
        self._wakeup = trio.Event()
        await self._wakeup.wait()

    def _has_work(self) -> bool:
        """Above the high watermark, and so above the low one.  The second half only matters if
        the watermarks were ever out of order (low above high): there is then nothing to
        reclaim towards, and the task must sleep, not wake and find nothing, forever."""
        memory = self.memcg.memory
        return memory.above_high_watermark() and not memory.below_low_watermark()

    async def _sleep_until_above_high_watermark(self) -> None:
        while not self._has_work():
            self._set_state(ReclaimTaskState.SLEEPING)
            await self._wait_for_wakeup()
            self.stats.wakeups += 1

    async def _reclaim_to_low_watermark(self) -> None:
        self._set_state(ReclaimTaskState.RUNNING)
        idle_passes = 0
        backoff = BACKOFF_MIN
        while not self.memcg.memory.below_low_watermark():
            result = self.controller.reclaim(self.memcg, SWAP_CLUSTER_MAX, cause="background")
            if not result.reclaimed:  # real members' pages, paged out by the kernel on request
                real = await self.controller.reclaim_real(self.memcg, SWAP_CLUSTER_MAX,
                                                          cause="background")  # fmt: skip
                result.scanned += real
                result.reclaimed += real
            stats = self.stats
            stats.passes += 1
            stats.pages_scanned += result.scanned
            stats.pages_reclaimed += result.reclaimed
            if result.reclaimed:
                idle_passes = 0
                backoff = BACKOFF_MIN
                await self.controller.pace_background_reclaim(result.reclaimed)
                continue
            stats.no_progress_passes += 1
            idle_passes += 1
            if idle_passes < NO_PROGRESS_PASSES:
                await self.controller.pace_background_reclaim(0)
                continue
            # Said once as it starts backing off, and again if another warning (a watermark
            # write's) has taken its place since: the last warning tells what the task does.
            if self.stats.last_warning != BACKOFF_WARNING:
                self.warn(BACKOFF_WARNING)
            self._set_state(ReclaimTaskState.BACKOFF)
            with trio.move_on_after(backoff):
                await self._wait_for_wakeup()
            backoff = min(backoff * 2, BACKOFF_MAX)
            self._set_state(ReclaimTaskState.RUNNING)

    def _set_state(self, state: ReclaimTaskState) -> None:
        if state is self.state:
            return
        now = trio.current_time()
        if self.state is ReclaimTaskState.RUNNING:
            self.stats.time_running += now - self._state_since
        self._state_since = now
        previous, self.state = self.state, state
        # An episode starts (not a return from back-off) or ends (not the first sleep).
        starts = state is ReclaimTaskState.RUNNING and previous is not ReclaimTaskState.BACKOFF
        ends = state is ReclaimTaskState.SLEEPING and previous is not ReclaimTaskState.STOPPED
        if starts or ends:
            self.controller.notifier.reclaim_task_changed(self.memcg)
        self.controller.emit(
            self.memcg,
            EventKind.DAEMON_STATE,
            state=state.value,
            previous=previous.value,
            usage=self.memcg.memory.usage * PAGE_SIZE,
        )
