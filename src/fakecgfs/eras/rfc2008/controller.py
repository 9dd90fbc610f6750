"""The memory controller of 2.6.26-rc2-mm1 with RFC 2/4 and 3/4 applied, as posted.

What 2.6.26 has and today's kernel does not, and the other way round:

* No hierarchy: each group's res_counter counts only the pages charged to that group; a child
  starts from a fresh counter (``res_counter_init_wmark()``: limit, hwmark, lwmark LLONG_MAX).
* A limit write only stores the value (no reclaim, even under the usage); the RFC refuses it
  with EINVAL while it is below the high watermark.
* Charges go one page at a time through ``res_counter_charge()``; a refusal runs one reclaim
  pass, retries, and after MEM_CGROUP_RECLAIM_RETRIES passes without progress the charge fails
  (the simulated OOM victim is the charging write: ENOMEM).
* rmdir: EBUSY with tasks or children; then ``pre_destroy``: stop memcontd, then force_empty,
  which in 2.6.26 drops the pages' accounting (the pages themselves stay in memory, charged to
  nobody).  No memsw, no kmem, no OOM control, no soft limit, no event notifications.

Reused from the modern model, where 2.6.26's algorithm is the same in shape: the page lists
(``controller/lru.py``) and reclaim (``controller/vmscan.py``: priorities 12..0, 32-page
batches).  Where 2.6.26 differs, and what is done here:

* 2.6.26 has one active/inactive pair per zone (anon and file mixed; split LRU came in 2.6.28)
  and a ``reclaim_mapped`` heuristic; the model keeps its split lists and memory.stat shows the
  sums as ``active``/``inactive``.
* 2.6.26 puts new anon pages on the active list, cache on the inactive; the model puts both on
  the inactive list (as 5.9+ does).
* 2.6.26's do_try_to_free_pages() naps HZ/10 in congestion_wait() after each priority below 10
  that scanned without reaching 32 pages; the model has no congestion and no nap.
* Progress, for the charge retry loop, is "the pass freed at least SWAP_CLUSTER_MAX pages", as
  do_try_to_free_pages() returned it for a memcg; anything less counts as none.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ...controller.cgroup import EventSource, lookup, rename
from ...controller.constants import MEM_CGROUP_RECLAIM_RETRIES, PAGE_SIZE, SWAP_CLUSTER_MAX
from ...controller.errors import ControllerError
from ...controller.events import EventKind, Listener
from ...controller.lru import Lruvec, PageKind
from ...controller.processes import ProcessTable, ProcFS
from ...controller.vmscan import ReclaimResult, SwapSpace, try_to_free_pages
from .memcontd import Memcontd
from .res_counter import LLONG_MAX, Member, ResCounter, ResState

VM_SWAPPINESS = 60
"""2.6.26 has no per-group swappiness: reclaim uses the global vm_swappiness."""

STAT_NAMES = ("cache", "rss", "pgpgin", "pgpgout", "active", "inactive")
"""memory.stat of 2.6.26, in mem_control_stat_show()'s order: bytes, except the pg* counts."""


class Group:
    """struct mem_cgroup of 2.6.26 with the RFC's ``daemon`` member (``reclaim_task`` here)."""

    def __init__(self, controller: Rfc2008Controller, name: str, parent: Group | None) -> None:
        self.name = name
        self.parent = parent
        self.children: dict[str, Group] = {}
        self.res = ResCounter()
        self.res.init_wmark()  # mem_cgroup_create(): res_counter_init_wmark(&mem->res)
        self.lruvec = Lruvec()
        self.swappiness = VM_SWAPPINESS  # read by the shared reclaim model
        self.removed = False
        self.tasks: set[int] = set()
        self.notify_on_release = False  # cgroup core's flag: stored only
        self.pgpgin = 0
        self.pgpgout = 0
        self.oom_kill = 0  # charges that failed after the retries (mem_cgroup_out_of_memory)
        self.reclaim_task = Memcontd(controller, self)  # mem->daemon: thread and wait queue

    def is_root(self) -> bool:
        return self.parent is None

    @property
    def path(self) -> str:
        parts: list[str] = []
        node: Group | None = self
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(parts))

    def subtree(self) -> Iterator[Group]:
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(list(node.children.values())))

    def account_reclaim(self, *, dropped: int, swapped: int) -> None:
        """Pages reclaim took off this group's lists leave its counter (and only its own)."""
        if dropped or swapped:
            self.pgpgout += dropped + swapped
            self.res.uncharge((dropped + swapped) * PAGE_SIZE)


class Rfc2008Controller(EventSource):
    """The whole 2.6.26 + RFC controller.  Use ``async with Rfc2008Controller.open() as c``."""

    era = "rfc-2008"

    def __init__(self, *, swap_bytes: int = 0, reclaim_rate: int | None = None,
                 processes: ProcessTable | None = None) -> None:  # fmt: skip
        # reclaim_rate is the modern task's pace; memcontd has none (it yields), so it is unused.
        self.swap = SwapSpace(swap_bytes // PAGE_SIZE)
        self.processes: ProcessTable = processes if processes is not None else ProcFS()
        self.release_agent = ""
        self._listeners: list[Listener] = []
        self.failed_listeners: list[str] = []  # why each listener that gave up did (fake.daemons)
        self._nursery: trio.Nursery | None = None
        self.root = Group(self, "", None)

    @classmethod
    @asynccontextmanager
    async def open(cls, **kwargs: Any) -> AsyncIterator[Rfc2008Controller]:
        controller = cls(**kwargs)
        async with trio.open_nursery() as nursery:
            controller._nursery = nursery
            try:
                yield controller
            finally:
                controller._nursery = None
                nursery.cancel_scope.cancel()

    def on_compact(self, hook: Any) -> None:
        """The server's compaction hook.  This era never compacts (it is a teaching mount, not
        built for bursts of thousands of groups), so the hook is never called."""

    # -- the tree -------------------------------------------------------------------------------

    def lookup(self, path: str) -> Group:
        return lookup(self.root, path)

    def groups(self) -> Iterator[Group]:
        return self.root.subtree()

    def create_group(self, parent: Group, name: str) -> Group:
        if name in parent.children:
            raise ControllerError(errno.EEXIST, f"group {name} exists")
        memcg = parent.children[name] = Group(self, name, parent)
        self.emit(memcg, EventKind.GROUP, action="created")
        return memcg

    def rename_group(self, memcg: Group, new_name: str) -> None:
        old = rename(memcg, new_name)
        if old is not None:
            self.emit(memcg, EventKind.GROUP, action="renamed", old=old)

    def remove_group_now(self, memcg: Group) -> None:
        """rmdir: cgroup core's EBUSY checks, then mem_cgroup_pre_destroy(): stop the thread,
        then force_empty; then the group is gone."""
        parent = memcg.parent
        if parent is None:
            raise ControllerError(errno.EBUSY, "the root cannot be removed")
        if memcg.removed:
            raise ControllerError(errno.ENOENT, "group removed")
        if memcg.children:
            raise ControllerError(errno.EBUSY, "group has child groups")
        if self.tasks(memcg):
            raise ControllerError(errno.EBUSY, "group has tasks")
        memcg.reclaim_task.stop()  # mem_cgroup_stop_daemon(mem)
        self._drop_accounting(memcg)  # mem_cgroup_force_empty(mem)
        del parent.children[memcg.name]
        memcg.removed = True
        self.emit(memcg, EventKind.GROUP, action="removed")

    # -- charge ---------------------------------------------------------------------------------

    def charge_now(self, memcg: Group, nr_pages: int, kind: PageKind = PageKind.ANON, *,
                   dirty: bool = False) -> bool:  # fmt: skip
        """Charge if every page fits under the limit (each page's res_counter_charge() then
        succeeds); else change nothing and return False for charge() to do it page by page."""
        self._check_alive(memcg)
        if memcg.res.usage + nr_pages * PAGE_SIZE > memcg.res.limit:
            return False
        if nr_pages > 0:
            self._commit(memcg, memcg.res.charge(nr_pages * PAGE_SIZE), kind, nr_pages, dirty)
        return True

    async def charge(self, memcg: Group, nr_pages: int, kind: PageKind = PageKind.ANON, *,
                     dirty: bool = False) -> None:  # fmt: skip
        """mem_cgroup_charge_common() for ``nr_pages`` new pages.  The pages that fit are charged
        together (their states only grow, so the last one's is what the wake-up test sees); a
        page that does not fit runs the retry loop.  ENOMEM frees what this request charged."""
        committed = 0
        try:
            while committed < nr_pages:
                room = max(memcg.res.limit - memcg.res.usage, 0) // PAGE_SIZE
                fits = min(nr_pages - committed, room)
                if fits:
                    self.charge_now(memcg, fits, kind, dirty=dirty)
                    committed += fits
                    continue
                state = await self._charge_one_page_retrying(memcg)
                self._commit(memcg, state, kind, 1, dirty)
                committed += 1
                await trio.lowlevel.checkpoint()
        except BaseException:
            if committed:
                self.uncharge(memcg, committed, kind)
            raise

    async def _charge_one_page_retrying(self, memcg: Group) -> ResState:
        """The loop around res_counter_charge(&mem->res, PAGE_SIZE) of 2.6.26."""
        nr_retries = MEM_CGROUP_RECLAIM_RETRIES
        while True:
            self._check_alive(memcg)
            state = memcg.res.charge(PAGE_SIZE)
            if state != ResState.RES_OVER_LIMIT:
                return state
            res = memcg.res
            self.emit(memcg, EventKind.CHARGE_REFUSED, pages=1, counter="memory",
                      usage=res.usage, limit=res.limit)  # fmt: skip
            if self.reclaim(memcg, cause="direct").reclaimed >= SWAP_CLUSTER_MAX:
                continue
            if memcg.res.check_under_limit():
                continue
            if not nr_retries:
                memcg.oom_kill += 1  # mem_cgroup_out_of_memory(): here the charging write
                self.emit(memcg, EventKind.OOM, action="kill", pages=1)
                raise ControllerError(errno.ENOMEM, "out of memory")
            nr_retries -= 1
            await trio.lowlevel.checkpoint()

    def _commit(self, memcg: Group, state: ResState, kind: PageKind, nr: int, dirty: bool) -> None:
        memcg.lruvec.add_new(kind, nr, dirty=dirty)
        memcg.pgpgin += nr
        # As posted; the review asked for a predicate instead of an ordered comparison.
        if state > ResState.RES_BELOW_HIGH:
            self._schedule_reclaim(memcg)

    @staticmethod
    def _schedule_reclaim(memcg: Group) -> None:
        """mem_cgroup_schedule_reclaim(): wake the thread only if it exists and sleeps."""
        reclaim_task = memcg.reclaim_task
        if not reclaim_task.is_running():
            return
        if not reclaim_task.waitqueue_active():
            return
        reclaim_task.wake_up_interruptible()

    def uncharge(self, memcg: Group, nr_pages: int, kind: PageKind = PageKind.ANON) -> int:
        """Free up to ``nr_pages`` of the group's own pages of a kind (resident first, then swap
        entries); no state is computed and nothing is woken, as in the patch."""
        freed = memcg.lruvec.free(kind, nr_pages)
        memcg.res.uncharge(freed * PAGE_SIZE)
        memcg.pgpgout += freed
        if kind is PageKind.ANON and freed < nr_pages:
            entries = min(nr_pages - freed, memcg.lruvec.swapped)
            memcg.lruvec.swapped -= entries
            self.swap.used -= entries
            freed += entries
        return freed

    def touch(self, memcg: Group, nr_pages: int, kind: PageKind = PageKind.FILE) -> int:
        return memcg.lruvec.mark_referenced(kind, nr_pages)

    def _check_alive(self, memcg: Group) -> None:
        if memcg.removed:
            raise ControllerError(errno.ENODEV, "group removed")

    # -- reclaim --------------------------------------------------------------------------------

    def reclaim(self, memcg: Group, *, cause: str) -> ReclaimResult:
        """try_to_free_mem_cgroup_pages(mem, gfp): one pass over this group's own lists."""
        swap = self.swap if self.swap.free() > 0 else None
        result = try_to_free_pages([memcg], SWAP_CLUSTER_MAX, swap)
        self.emit(memcg, EventKind.RECLAIM, cause=cause, scanned=result.scanned,
                  reclaimed=result.reclaimed, usage=memcg.res.usage)  # fmt: skip
        return result

    def background_pass(self, memcg: Group) -> ReclaimResult:
        """One pass of memcontd's loop, counted in its statistics."""
        result = self.reclaim(memcg, cause="background")
        stats = memcg.reclaim_task.stats
        stats.passes += 1
        stats.pages_scanned += result.scanned
        stats.pages_reclaimed += result.reclaimed
        if not result.reclaimed:
            stats.no_progress_passes += 1
        return result

    def force_empty(self, memcg: Group) -> None:
        """memory.force_empty of 2.6.26: EBUSY while the group has tasks; else drop accounting."""
        if self.tasks(memcg):
            raise ControllerError(errno.EBUSY, "group has tasks")
        self._drop_accounting(memcg)

    def _drop_accounting(self, memcg: Group) -> None:
        """The pages stop being charged to the group; in 2.6.26 they stay in memory, charged to
        nobody, so here they simply leave the model (and their swap entries with them)."""
        lru = memcg.lruvec
        resident = lru.resident()
        memcg.pgpgout += resident
        memcg.res.uncharge(resident * PAGE_SIZE)
        self.swap.used -= lru.swapped
        memcg.lruvec = Lruvec()

    # -- the RFC's files ------------------------------------------------------------------------

    def write_res(self, memcg: Group, member: Member, value: int) -> None:
        """The store of res_counter_write(): a limit is only stored, never reclaimed to."""
        self._check_alive(memcg)
        memcg.res.write(member, value)

    async def start_reclaim_task(self, memcg: Group) -> None:
        """mem_cgroup_start_daemon(), as mem_cgroup_write() calls it for RES_HWMARK."""
        if self._nursery is None:
            raise ControllerError(errno.ENODEV, "controller is not running")
        await memcg.reclaim_task.start(self._nursery)

    def reclaim_tasks(self) -> list[Group]:
        return [memcg for memcg in self.groups() if memcg.reclaim_task.is_running()]

    # -- tasks ----------------------------------------------------------------------------------

    def tasks(self, memcg: Group) -> list[int]:
        if memcg.is_root():
            elsewhere: set[int] = set()
            for node in self.groups():
                elsewhere |= node.tasks
            return sorted(set(self.processes.all_threads()) - elsewhere)
        memcg.tasks = {tid for tid in memcg.tasks if self.processes.thread_alive(tid)}
        return sorted(memcg.tasks)

    def attach(self, memcg: Group, pid: int) -> None:
        """attach_task_by_pid(): one thread; ESRCH if there is none."""
        self._check_alive(memcg)
        if pid <= 0 or not self.processes.thread_alive(pid):
            raise ControllerError(errno.ESRCH, f"no process {pid}")
        for node in self.groups():
            node.tasks.discard(pid)
        if not memcg.is_root():
            memcg.tasks.add(pid)

    # -- statistics -----------------------------------------------------------------------------

    def memory_stat(self, memcg: Group) -> list[tuple[str, int]]:
        lru = memcg.lruvec
        active = lru.active_anon.nr + lru.active_file.nr
        inactive = lru.inactive_anon.nr + lru.inactive_file.nr
        values = (
            lru.resident(PageKind.FILE) * PAGE_SIZE,
            lru.resident(PageKind.ANON) * PAGE_SIZE,
            memcg.pgpgin,
            memcg.pgpgout,
            active * PAGE_SIZE,
            inactive * PAGE_SIZE,
        )
        return list(zip(STAT_NAMES, values, strict=True))


def sample_values(memcg: Group) -> dict[str, Any]:
    """A trace ``sample`` event's values for a group of this era, with the default mount's
    fields (docs/trace.md): bytes; None for LLONG_MAX; oom_kill counts the failed charges."""
    res = memcg.res

    def shown(value: int) -> int | None:
        return None if value >= LLONG_MAX else value

    return {
        "usage": res.usage,
        "limit": shown(res.limit),
        "hwmark": shown(res.hwmark),
        "lwmark": shown(res.lwmark),
        "failcnt": res.failcnt,
        "oom_kill": memcg.oom_kill,
        "state": memcg.reclaim_task.state.value,
    }
