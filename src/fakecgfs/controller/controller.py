"""The simulated memory controller: the group tree, the charge path, limits, OOM and reclaim.

All state lives in one trio loop; nothing here takes a lock.  Methods that may have to wait
(a charge sleeping in OOM, a limit write that reclaims, rmdir stopping a task) are ``async`` and
check for cancellation between batches, which is how an interrupted write returns EINTR.
Everything is in pages; the filesystem layer converts bytes.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import trio

from .cgroup import EventSource, lookup, rename
from .compaction import (
    COMPACT_AFTER_REMOVALS,
    COMPACT_IDLE,
    clear_free_lists,
    shrink_dict,
    trim_malloc,
)  # fmt: skip
from .constants import (
    KMEM_FIRST_CHILD_PAGES,
    KMEM_NEXT_CHILD_PAGES,
    MAX_RECLAIM_RETRIES,
    MEM_CGROUP_ID_MAX,
    MEMCG_CHARGE_BATCH,
    PAGE_SIZE,
    RECLAIM_TASK_PASS_INTERVAL,
    SWAP_CLUSTER_MAX,
)
from .errors import ControllerError
from .events import EventKind, Listener
from .lru import PageKind
from .memcg import MemCgroup
from .notify import Notifier
from .processes import ProcessTable, ProcFS
from .real import LOCKED_KINDS, STAT_OF_KIND, RealKind, in_memory
from .real_memory import RealMemory
from .reclaim_task import ReclaimTask, ReclaimTaskState
from .res_counter import ResCounter
from .vmscan import ReclaimResult, SwapSpace, try_to_free_pages

STAT_ITEMS = (
    "cache", "rss", "rss_huge", "shmem", "mapped_file", "dirty", "writeback",
    "workingset_refault_anon", "workingset_refault_file", "swap", "swapcached",
    "pgpgin", "pgpgout", "pgfault", "pgmajfault",
    "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
)  # fmt: skip
"""memory.stat's per-group items in kernel 6.18's order; each is repeated as total_<item>."""


MEMORY_STAT_NAMES = (
    *STAT_ITEMS,
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    *(f"total_{name}" for name in STAT_ITEMS),
)
"""Every line of memory.stat, in order: the group's own items, its limits, its subtree's totals."""


_REAL_STAT_INDEXES = {
    kind: tuple(STAT_ITEMS.index(name) for name in names) for kind, names in STAT_OF_KIND.items()
}


def _real_stat(memcg: MemCgroup) -> list[int]:
    """What real pages add to one group's memory.stat items (bytes, STAT_ITEMS' order)."""
    added = [0] * len(STAT_ITEMS)
    for kind, indexes in _REAL_STAT_INDEXES.items():
        nr = memcg.real[kind]
        if nr:
            for index in indexes:
                added[index] += nr * PAGE_SIZE
    return added


def _local_stat(memcg: MemCgroup) -> tuple[int, ...]:
    """One group's own memory.stat items in STAT_ITEMS' order (bytes, or event counts for pg*).
    A tuple, not a dict: memory.stat is read often, and sums over whole subtrees."""
    simulated = _simulated_stat(memcg)
    if not any(memcg.real):
        return simulated
    return tuple(map(sum, zip(simulated, _real_stat(memcg), strict=True)))


def _simulated_stat(memcg: MemCgroup) -> tuple[int, ...]:
    lru = memcg.lruvec
    inactive_anon, active_anon = lru.inactive_anon.nr, lru.active_anon.nr
    inactive_file, active_file = lru.inactive_file.nr, lru.active_file.nr
    return (
        (inactive_file + active_file) * PAGE_SIZE,  # cache
        (inactive_anon + active_anon) * PAGE_SIZE,  # rss
        0,  # rss_huge
        0,  # shmem
        0,  # mapped_file
        lru.dirty() * PAGE_SIZE,  # dirty
        0,  # writeback: write-back completes instantly in the model
        0,  # workingset_refault_anon
        0,  # workingset_refault_file
        lru.swapped * PAGE_SIZE,  # swap
        0,  # swapcached
        memcg.pgpgin,
        memcg.pgpgout,
        memcg.pgfault,
        0,  # pgmajfault
        inactive_anon * PAGE_SIZE,
        active_anon * PAGE_SIZE,
        inactive_file * PAGE_SIZE,
        active_file * PAGE_SIZE,
        0,  # unevictable
    )


class MemoryController(EventSource):
    """The whole simulated controller.  Use ``async with MemoryController.open() as c``."""

    def __init__(
        self,
        *,
        swap_bytes: int = 0,
        reclaim_rate: int | None = None,
        processes: ProcessTable | None = None,
    ) -> None:
        self.root = self._new_group("", None)
        self.swap = SwapSpace(swap_bytes // PAGE_SIZE)  # shared by all groups; 0: no swap
        self.reclaim_rate = reclaim_rate  # background reclaim pace in bytes/s; None: full speed
        self.processes: ProcessTable = processes if processes is not None else ProcFS()
        self._listeners: list[Listener] = []
        self.failed_listeners: list[str] = []  # why each listener that gave up did (fake.daemons)
        self._nursery: trio.Nursery | None = None  # where the reclaim tasks run
        self._memory_freed = trio.Event()  # charges waiting in OOM sleep on it
        # How many sleep on it: counted here, as asking the event (statistics()) costs a
        # limit write more than the rest of its bookkeeping.
        self._memory_freed_sleepers = 0
        self.release_agent = ""  # the root's release_agent path: stored, never run
        self.notifier = Notifier()  # cgroup.event_control registrations
        self.removals_since_compact = 0  # rmdirs since the last compact()
        self._last_removal = 0.0  # clock time of the latest rmdir
        self._compaction_wanted = trio.Event()  # set once COMPACT_AFTER_REMOVALS add up
        self.real: RealMemory | None = None  # real processes' memory (mount --real-processes)
        self._enforcing: set[MemCgroup] = set()  # groups over a limit because of real pages
        self._compaction_hooks: list[Callable[[], None]] = []  # other layers' tables: on_compact()
        self.nr_groups = 1  # the root's included: each holds one of MEM_CGROUP_ID_MAX IDs

    @classmethod
    @asynccontextmanager
    async def open(cls, **kwargs) -> AsyncIterator[MemoryController]:
        """Run a controller; every reclaim task is stopped when the block exits."""
        controller = cls(**kwargs)
        async with trio.open_nursery() as nursery:
            controller._nursery = nursery
            # Started with the controller, so that nothing of it is allocated amid a burst of
            # groups (where it would outlive them and pin their freed memory).
            nursery.start_soon(controller._compactor, name="fakecgfs:compactor")
            try:
                yield controller
            finally:
                controller._nursery = None
                controller.notifier.close()
                nursery.cancel_scope.cancel()

    # -- the tree ------------------------------------------------------------------------------

    def _new_group(self, name: str, parent: MemCgroup | None) -> MemCgroup:
        memcg = MemCgroup(name, parent)
        memcg.reclaim_task = ReclaimTask(self, memcg)
        return memcg

    def lookup(self, path: str) -> MemCgroup:
        """The group at ``path`` ("/", "/a/b"); ENOENT if there is none."""
        return lookup(self.root, path)

    def groups(self) -> Iterator[MemCgroup]:
        return self.root.subtree()

    def create_group(self, parent: MemCgroup, name: str) -> MemCgroup:
        if name in parent.children:
            raise ControllerError(errno.EEXIST, f"group {name} exists")
        if self.nr_groups >= MEM_CGROUP_ID_MAX:  # mem_cgroup_alloc(): no ID left
            raise ControllerError(errno.ENOSPC, f"{MEM_CGROUP_ID_MAX} groups exist")
        kmem = KMEM_NEXT_CHILD_PAGES if parent.children_made else KMEM_FIRST_CHILD_PAGES
        self._charge_kernel_memory(parent, kmem)  # ENOMEM if the parent cannot afford it
        memcg = self._new_group(name, parent)
        memcg.kmem_cost = kmem
        parent.children[name] = memcg
        parent.children_made += 1
        self.nr_groups += 1
        self.emit(memcg, EventKind.GROUP, action="created")
        return memcg

    def _charge_kernel_memory(self, memcg: MemCgroup, nr: int) -> None:
        """Charge kernel memory the way the kernel does, through the per-CPU stock: kmem by the
        pages used, memory and memsw a whole MEMCG_CHARGE_BATCH at a time while that fits
        under the limits, else just what is needed, reclaiming for it; ENOMEM if even that
        cannot be had."""
        retries = MAX_RECLAIM_RETRIES
        while memcg.stock < nr:
            if self._counters_try_charge(memcg, MEMCG_CHARGE_BATCH) is None:
                memcg.stock += MEMCG_CHARGE_BATCH
                continue
            need = nr - memcg.stock
            refused = self._counters_try_charge(memcg, need)
            if refused is None:
                memcg.stock += need
                continue
            over, memsw = refused
            result = self.reclaim(over, SWAP_CLUSTER_MAX, cause="direct", may_swap=not memsw)
            if not result.reclaimed:
                if not retries:
                    raise ControllerError(errno.ENOMEM, "no memory for the group's structures")
                retries -= 1
        memcg.stock -= nr
        memcg.kernel_pages += nr
        for node in memcg.lineage():
            node.kmem.charge_unchecked(nr)
        self.notifier.usage_changed()

    def _drain_stock(self, memcg: MemCgroup) -> bool:
        """drain_all_stock(): give back the precharged pages of ``memcg``'s subtree; True if
        there were any."""
        drained = False
        for node in memcg.subtree():
            if node.stock:
                for ancestor in node.lineage():
                    ancestor.memory.uncharge(node.stock)
                    ancestor.memsw.uncharge(node.stock)
                node.stock = 0
                drained = True
        if drained:
            self.notifier.usage_changed()
        return drained

    def _free_child_structures(self, child: MemCgroup) -> None:
        """A removed child's structures are freed: its kmem pages leave the parent's kmem
        counter and go back to the parent's stock, as freed kernel objects refill the per-CPU
        stock, so memory usage does not move (as measured right after rmdir) and the next
        children are paid from that stock: mkdir/rmdir churn cannot grow usage."""
        parent = child.parent
        assert parent is not None
        parent.kernel_pages -= child.kmem_cost
        parent.stock += child.kmem_cost
        for node in parent.lineage():
            node.kmem.uncharge(child.kmem_cost)
        child.kmem_cost = 0

    def _release_kernel_memory(self, memcg: MemCgroup) -> None:
        """A removed group's kernel memory and stock leave its ancestors' counters."""
        held = memcg.kernel_pages + memcg.stock
        for node in memcg.lineage():
            node.memory.uncharge(held)
            node.memsw.uncharge(held)
            node.kmem.uncharge(memcg.kernel_pages)
        memcg.kernel_pages = memcg.stock = 0
        self.notifier.usage_changed()

    def rename_group(self, memcg: MemCgroup, new_name: str) -> None:
        """Rename within the same parent; the group keeps its state and children."""
        old = rename(memcg, new_name)
        if old is not None:
            self.emit(memcg, EventKind.GROUP, action="renamed", old=old)

    def remove_group_now(self, memcg: MemCgroup) -> None:
        """rmdir: EBUSY with children or live tasks; else tell the reclaim task to stop, hand
        the remaining pages to the parent, and forget the group.  The task exits at its next
        checkpoint: no pass of it can run after this returns (remove_group() also waits)."""
        parent = memcg.parent
        if parent is None:
            raise ControllerError(errno.EBUSY, "the root cannot be removed")
        self._check_not_removed(memcg)
        self._check_removable(memcg)
        # The group goes at once, with the checks: nothing can then arrive in it (a charge, a
        # task), and nothing can start its reclaim task again (start_reclaim_task refuses a removed
        # group).  The parent's counters already include these pages (hierarchical
        # accounting); they now sit on its own lists, as ~2.6.29 to 3.x kernels moved charges
        # to the parent.
        memcg.lruvec.move_to(parent.lruvec)
        for kind in RealKind:  # and real ones (members' exited, SysV shm): see _live()
            parent.real[kind] += memcg.real[kind]
            memcg.real[kind] = 0
        self._release_kernel_memory(memcg)
        self._free_child_structures(memcg)
        del parent.children[memcg.name]
        self.nr_groups -= 1
        memcg.removed = True
        memcg.reclaim_task.cancel()
        self._note_removal()
        self.notifier.group_removed(memcg)
        self.emit(memcg, EventKind.GROUP, action="removed")

    def _note_removal(self) -> None:
        """Count a removal; once COMPACT_AFTER_REMOVALS have added up, the compactor runs
        compact() as soon as no removal has come for COMPACT_IDLE seconds."""
        self.removals_since_compact += 1
        self._last_removal = trio.current_time()
        if self.removals_since_compact >= COMPACT_AFTER_REMOVALS:
            self._compaction_wanted.set()

    async def _compactor(self) -> None:
        """The debounced compaction: one compact() after each burst of removals."""
        while True:
            await self._compaction_wanted.wait()
            while (deadline := self._last_removal + COMPACT_IDLE) > trio.current_time():
                await trio.sleep_until(deadline)
            self._compaction_wanted = trio.Event()
            self.compact()

    def on_compact(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` at each compact(), before the free lists are emptied: a layer above
        shrinks its own tables there (the filesystem's handles)."""
        self._compaction_hooks.append(hook)

    def compact(self) -> None:
        """Give the memory of removed groups back to the system (see compaction.py).  Changes
        no value, order or identity; costs a full gc pass and a walk of the tree.  Runs by
        itself COMPACT_IDLE seconds after the last of COMPACT_AFTER_REMOVALS removals."""
        for memcg in self.groups():
            shrink_dict(memcg.children)
        for hook in self._compaction_hooks:
            hook()
        clear_free_lists()
        trim_malloc()
        self.removals_since_compact = 0

    async def remove_group(self, memcg: MemCgroup) -> None:
        """remove_group_now(), then wait until the reclaim task has exited."""
        self.remove_group_now(memcg)
        await memcg.reclaim_task.stop()

    def _check_not_removed(self, memcg: MemCgroup) -> None:
        if memcg.removed:
            raise ControllerError(errno.ENOENT, f"group {memcg.path} was removed")

    def _check_removable(self, memcg: MemCgroup) -> None:
        if memcg.children:
            raise ControllerError(errno.EBUSY, "group has child groups")
        if memcg.charging:  # a charge in progress stands for a task of the group
            raise ControllerError(errno.EBUSY, "a charge to the group is in progress")
        self._prune_tasks(memcg)
        if memcg.tasks:
            raise ControllerError(errno.EBUSY, "group has tasks")

    # -- charge and uncharge -------------------------------------------------------------------

    async def charge(
        self,
        memcg: MemCgroup,
        nr_pages: int,
        kind: PageKind = PageKind.ANON,
        *,
        dirty: bool = False,
    ) -> None:
        """Charge ``nr_pages`` new pages to ``memcg``, as a task faulting them in would.

        What fits under every limit on the way up is charged at once; beyond that, pages are
        charged a batch at a time, each batch reclaiming (direct reclaim) when a limit refuses it.
        A request that fails (OOM: ENOMEM; interrupted) frees what it had charged: the simulated
        OOM victim is the charging task itself, and its memory goes with it.
        """
        if self.charge_now(memcg, nr_pages, kind, dirty=dirty):
            return
        committed = 0
        memcg.charging += 1
        try:
            while committed < nr_pages:
                wanted = nr_pages - committed
                margin = self._charge_margin(memcg)
                batch = wanted if margin >= wanted else min(wanted, max(margin, MEMCG_CHARGE_BATCH))
                await self._try_charge(memcg, batch)
                memcg.commit_charge(kind, batch, dirty=dirty)
                committed += batch
                self.notifier.usage_changed()
                self._wake_reclaim_tasks_above_high(memcg)
                if committed < nr_pages:
                    await trio.lowlevel.checkpoint()
        except BaseException:
            if committed:
                self._free(memcg, kind, committed)
            raise
        finally:
            memcg.charging -= 1

    def charge_now(
        self,
        memcg: MemCgroup,
        nr_pages: int,
        kind: PageKind = PageKind.ANON,
        *,
        dirty: bool = False,
    ) -> bool:
        """The charge's fast path: if every page fits under every limit on the way up, charge
        them all and return True; else change nothing and return False (charge() then reclaims
        batch by batch).  Needs no await, so the filesystem can run it without a task."""
        self._check_not_removed(memcg)
        if nr_pages <= 0:
            return True
        if self._charge_margin(memcg) < nr_pages:
            return False
        refused = self._counters_try_charge(memcg, nr_pages)
        assert refused is None, "a charge within every margin was refused"
        memcg.commit_charge(kind, nr_pages, dirty=dirty)
        self.notifier.usage_changed()
        self._wake_reclaim_tasks_above_high(memcg)
        return True

    def _charge_margin(self, memcg: MemCgroup) -> int:
        return min(min(n.memory.margin(), n.memsw.margin()) for n in memcg.lineage())

    def _counters_try_charge(self, memcg: MemCgroup, nr: int) -> tuple[MemCgroup, bool] | None:
        """Charge memsw then memory all the way up (page_counter_try_charge).  On refusal undo,
        and return the group whose limit refused and whether it was its memsw limit."""
        charged: list[ResCounter] = []
        for counter_name in ("memsw", "memory"):
            for node in memcg.lineage():
                counter: ResCounter = getattr(node, counter_name)
                if not counter.try_charge(nr):
                    for done in charged:
                        done.uncharge(nr)
                    return node, counter_name == "memsw"
                charged.append(counter)
        return None

    async def _try_charge(self, memcg: MemCgroup, nr: int) -> None:
        """try_charge_memcg(): charge, or reclaim and retry, then OOM."""
        retries = MAX_RECLAIM_RETRIES
        drained = False
        while True:
            refused = self._counters_try_charge(memcg, nr)
            if refused is None:
                return
            over, memsw = refused
            counter = over.memsw if memsw else over.memory
            self.emit(over, EventKind.CHARGE_REFUSED, pages=nr,
                      counter="memsw" if memsw else "memory",
                      usage=counter.usage * PAGE_SIZE, limit=counter.limit * PAGE_SIZE)  # fmt: skip
            # Swapping out cannot lower memory+swap, so a memsw refusal reclaims without it.
            result = self.reclaim(
                over, max(nr, SWAP_CLUSTER_MAX), cause="direct", may_swap=not memsw
            )
            if counter.margin() >= nr or result.reclaimed:
                # Progress: retry, but let others run first, as the kernel's reclaim
                # cond_resched()s; a pass that "frees" forever cannot stall the loop.
                await trio.lowlevel.checkpoint()
                continue
            if not drained:
                drained = self._drain_stock(over) or True
                continue
            if retries:
                retries -= 1
                continue
            await self._out_of_memory(over, nr)
            retries = MAX_RECLAIM_RETRIES

    async def _out_of_memory(self, over: MemCgroup, nr: int) -> None:
        """Nothing left to reclaim under ``over``'s limit.  With oom_kill_disable 0 the charging
        task is the victim (ENOMEM); with 1 it sleeps, under_oom, until memory is freed or a
        limit or the setting changes, and then the caller retries."""
        if not over.oom_kill_disable:
            over.oom_kill += 1
            self.notifier.out_of_memory(over)
            self.emit(over, EventKind.OOM, action="kill", pages=nr)
            raise ControllerError(errno.ENOMEM, "out of memory")
        over.oom_waiters += 1
        self.notifier.out_of_memory(over)
        self.emit(over, EventKind.OOM, action="wait", pages=nr)
        try:
            await self._wait_memory_freed()
        finally:
            over.oom_waiters -= 1

    def _signal_memory_freed(self) -> None:
        """Wake every charge sleeping in OOM so it retries (memcg_oom_recover).  With none
        asleep the event is kept: a new one per limit or watermark write, allocated amid a burst
        of mkdirs, would outlive the burst and pin an allocator arena of its freed memory."""
        if self._memory_freed_sleepers:
            self._memory_freed.set()
            self._memory_freed = trio.Event()

    def _wake_reclaim_tasks_above_high(self, memcg: MemCgroup) -> None:
        for node in memcg.lineage():
            if node.memory.above_high_watermark():
                node.reclaim_task.wake_from_charge()

    def uncharge(self, memcg: MemCgroup, nr_pages: int, kind: PageKind = PageKind.ANON) -> int:
        """Free up to ``nr_pages`` of the group's own pages of a kind (anonymous: resident pages
        first, then swap entries); return how many were freed."""
        freed = self._free(memcg, kind, nr_pages)
        if freed:
            for node in memcg.lineage():
                # Only a task backing off can have new work after a free (usage reached the low
                # watermark); a sleeping one is not above its high watermark and stays so, and
                # waking it would count a spurious wake-up for every page freed.
                if node.reclaim_task.state is ReclaimTaskState.BACKOFF:
                    node.reclaim_task.kick()
        return freed

    def _free(self, memcg: MemCgroup, kind: PageKind, nr: int) -> int:
        resident = memcg.lruvec.free(kind, nr)
        swap_entries = 0
        if kind is PageKind.ANON and resident < nr:
            swap_entries = min(nr - resident, memcg.lruvec.swapped)
            memcg.lruvec.swapped -= swap_entries
            self.swap.used -= swap_entries
        memcg.uncharge_freed(resident=resident, swap_entries=swap_entries)
        self.notifier.usage_changed()
        if swap_entries:  # swap room is shared: any backing-off task may progress now
            for node in self.groups():
                if node.reclaim_task.state is ReclaimTaskState.BACKOFF:
                    node.reclaim_task.kick()
        if resident or swap_entries:
            self._signal_memory_freed()
        return resident + swap_entries

    def touch(self, memcg: MemCgroup, nr_pages: int, kind: PageKind = PageKind.FILE) -> int:
        """Set the referenced bit on up to ``nr_pages`` of the group's pages (a task used them)."""
        return memcg.lruvec.mark_referenced(kind, nr_pages)

    # -- real pages (mount --real-processes) --------------------------------------------------

    @staticmethod
    def _live(memcg: MemCgroup) -> MemCgroup:
        """The group that holds a removed group's pages now: its nearest live ancestor (rmdir
        hands them up; the members layer may still name the removed group)."""
        while memcg.removed and memcg.parent is not None:
            memcg = memcg.parent
        return memcg

    def refresh(self, memcg: MemCgroup) -> None:
        """Bring real members' usage in ``memcg``'s subtree up to date before a read shows it."""
        if self.real is not None:
            self.real.refresh(memcg)

    def charge_real(self, memcg: MemCgroup, kind: RealKind, nr_pages: int) -> None:
        """Pages a member process already has (it faulted them in): charge them, whatever the
        limits.  A group pushed over its limit counts a failure, and a task of the controller
        then does what the kernel's charge path would have: reclaim, then OOM."""
        if nr_pages <= 0:
            return
        memcg = self._live(memcg)
        memcg.real[kind] += nr_pages
        for node in memcg.lineage():
            if in_memory(kind):
                node.memory.charge_unchecked(nr_pages)
            node.memsw.charge_unchecked(nr_pages)
        if in_memory(kind):
            memcg.pgpgin += nr_pages
            if kind is RealKind.ANON or kind is RealKind.ANON_LOCKED:
                memcg.pgfault += nr_pages
        self.notifier.usage_changed()
        self._wake_reclaim_tasks_above_high(memcg)
        self._check_real_limits(memcg)

    def uncharge_real(self, memcg: MemCgroup, kind: RealKind, nr_pages: int) -> int:
        """Pages a member no longer has (freed, paged out, exited): uncharge up to ``nr_pages``
        of that kind from the group holding them; return how many."""
        memcg = self._live(memcg)
        nr_pages = min(nr_pages, memcg.real[kind])
        if nr_pages <= 0:
            return 0
        memcg.real[kind] -= nr_pages
        for node in memcg.lineage():
            if in_memory(kind):
                node.memory.uncharge(nr_pages)
            node.memsw.uncharge(nr_pages)
        if in_memory(kind):
            memcg.pgpgout += nr_pages
        self.notifier.usage_changed()
        self._signal_memory_freed()
        return nr_pages

    @staticmethod
    def _excess(memcg: MemCgroup) -> int:
        """Pages by which the group is over its memory or memory+swap limit (0: it fits)."""
        return max(
            memcg.memory.usage - memcg.memory.limit, memcg.memsw.usage - memcg.memsw.limit, 0
        )

    def _check_real_limits(self, memcg: MemCgroup) -> None:
        """After a real charge: the lowest group on the way up that is over a limit is where
        the kernel's page_counter_try_charge() would have failed."""
        for node in memcg.lineage():
            if not self._excess(node):
                continue
            memsw = node.memsw.usage > node.memsw.limit
            counter = node.memsw if memsw else node.memory
            counter.failcnt += 1
            self.emit(node, EventKind.CHARGE_REFUSED, pages=counter.usage - counter.limit,
                      counter="memsw" if memsw else "memory", usage=counter.usage * PAGE_SIZE,
                      limit=counter.limit * PAGE_SIZE, real=True)  # fmt: skip
            if node not in self._enforcing and self._nursery is not None:
                self._enforcing.add(node)
                self._nursery.start_soon(self._enforce_limit, node, name=f"oom:{node.path}")
            return

    async def _enforce_limit(self, over: MemCgroup) -> None:
        """try_charge_memcg() for pages that are already there: reclaim simulated pages, then
        real ones, retrying while that makes progress; then OOM, until the group fits."""
        try:
            retries = MAX_RECLAIM_RETRIES
            while not over.removed and (excess := self._excess(over)):
                memsw = over.memsw.usage > over.memsw.limit
                progress = self.reclaim(over, max(excess, SWAP_CLUSTER_MAX), cause="direct",
                                        may_swap=not memsw).reclaimed  # fmt: skip
                if self._excess(over):
                    progress += await self.reclaim_real(over, self._excess(over), cause="direct")
                if not self._excess(over):
                    break
                if progress and retries:
                    retries -= 1
                    continue
                await self._real_out_of_memory(over)
                retries = MAX_RECLAIM_RETRIES
        finally:
            self._enforcing.discard(over)
        if not over.removed and over.parent is not None and self._excess(over.parent):
            self._check_real_limits(over.parent)

    async def _real_out_of_memory(self, over: MemCgroup) -> None:
        """mem_cgroup_oom() for real members: with oom_kill_disable 0 kill the largest member
        of the subtree; with 1 stop them all (under_oom) until the group fits again."""
        assert self.real is not None
        self.notifier.out_of_memory(over)
        if not over.oom_kill_disable:
            self.emit(over, EventKind.OOM, action="kill", pages=self._excess(over), real=True)
            if await self.real.oom_kill(over, self._count_oom_kill):
                return
            # No member to kill (the pages outlived them: SysV shm): wait for a change.
            await self._wait_memory_freed()
            return
        over.oom_waiters += 1
        self.emit(over, EventKind.OOM, action="wait", pages=self._excess(over), real=True)
        self.real.freeze(over)
        try:
            while self._excess(over) and over.oom_kill_disable and not over.removed:
                await self._wait_memory_freed()
        finally:
            over.oom_waiters -= 1
            self.real.thaw(over)

    def _count_oom_kill(self, victim: MemCgroup) -> None:
        """MEMCG_OOM_KILL is counted in the victim's group and its ancestors, the root excepted
        (memcg_memory_event()), as the kill is sent."""
        for node in self._live(victim).lineage():
            if not node.is_root():
                node.oom_kill += 1

    async def _wait_memory_freed(self) -> None:
        """Sleep until memory is freed, or a limit or oom_control changes."""
        self._memory_freed_sleepers += 1
        try:
            await self._memory_freed.wait()
        finally:
            self._memory_freed_sleepers -= 1

    async def reclaim_real(self, memcg: MemCgroup, nr_pages: int, *, cause: str) -> int:
        """Ask the members layer to page out real pages of the subtree; pages that left."""
        if self.real is None or not self.real.has_members(memcg):
            return 0
        reclaimed = await self.real.reclaim(memcg, max(nr_pages, SWAP_CLUSTER_MAX))
        self.emit(memcg, EventKind.RECLAIM, cause=cause, scanned=reclaimed, reclaimed=reclaimed,
                  usage=memcg.memory.usage * PAGE_SIZE, real=True)  # fmt: skip
        return reclaimed

    # -- reclaim -------------------------------------------------------------------------------

    def reclaim(
        self, memcg: MemCgroup, nr_to_reclaim: int, *, cause: str, may_swap: bool = True
    ) -> ReclaimResult:
        """One reclaim pass over ``memcg``'s subtree (try_to_free_mem_cgroup_pages)."""
        swap = self.swap if may_swap and self.swap.free() > 0 else None
        result = try_to_free_pages(memcg.subtree(), nr_to_reclaim, swap)
        if result.reclaimed:
            self._signal_memory_freed()
            self.notifier.usage_changed()
        self.notifier.reclaimed(memcg, result.scanned, result.reclaimed)
        self.emit(memcg, EventKind.RECLAIM, cause=cause, scanned=result.scanned,
                  reclaimed=result.reclaimed, usage=memcg.memory.usage * PAGE_SIZE)  # fmt: skip
        return result

    async def pace_background_reclaim(self, reclaimed: int) -> None:
        """Rest between two background passes: the simulated reclaim speed (--reclaim-rate)."""
        if self.reclaim_rate:
            await trio.sleep(max(reclaimed, SWAP_CLUSTER_MAX) * PAGE_SIZE / self.reclaim_rate)
        elif RECLAIM_TASK_PASS_INTERVAL:
            await trio.sleep(RECLAIM_TASK_PASS_INTERVAL)
        else:
            await trio.lowlevel.checkpoint()

    async def _shrink_to(self, memcg: MemCgroup, counter: ResCounter, nr_pages: int, *,
                         may_swap: bool) -> None:  # fmt: skip
        """Reclaim until ``counter`` fits under ``nr_pages``, or EBUSY when a pass frees
        nothing (mem_cgroup_resize_max)."""
        drained = False
        real_passes = MAX_RECLAIM_RETRIES  # a running member may fault its pages back in
        while counter.usage > nr_pages:
            result = self.reclaim(memcg, SWAP_CLUSTER_MAX, cause="limit", may_swap=may_swap)
            if not result.reclaimed:
                if real_passes and await self.reclaim_real(memcg, counter.usage - nr_pages,
                                                           cause="limit"):  # fmt: skip
                    real_passes -= 1
                    continue
                if drained:
                    raise ControllerError(errno.EBUSY, "cannot reclaim below the new limit")
                drained = self._drain_stock(memcg) or True
            await trio.lowlevel.checkpoint()

    async def force_empty(self, memcg: MemCgroup) -> None:
        """Reclaim as much as possible; give up after MAX_RECLAIM_RETRIES passes without progress.
        Succeeds even when usage stays above zero, as the kernel does."""
        if memcg.is_root():
            raise ControllerError(errno.EINVAL, "force_empty on the root")
        retries = MAX_RECLAIM_RETRIES
        while retries and memcg.memory.usage:
            if not self.reclaim(memcg, SWAP_CLUSTER_MAX, cause="force_empty").reclaimed:
                retries -= 1
                # Real pages next.  A pass over them counts as a retry even when it frees
                # some: a running member may fault them back in as fast.
                await self.reclaim_real(memcg, memcg.memory.usage, cause="force_empty")
            await trio.lowlevel.checkpoint()

    # -- limits --------------------------------------------------------------------------------

    def _check_not_root(self, memcg: MemCgroup) -> None:
        if memcg.is_root():
            raise ControllerError(errno.EINVAL, "limits cannot be set on the root group")

    async def set_limit(self, memcg: MemCgroup, nr_pages: int) -> None:
        """memory.limit_in_bytes: reclaim down to it first; EBUSY (value unchanged) if
        impossible."""
        if self.set_limit_now(memcg, nr_pages):
            return
        self._check_limit(memcg, nr_pages)
        await self._shrink_to(memcg, memcg.memory, nr_pages, may_swap=True)
        self._check_limit(memcg, nr_pages)  # re-read: other writes ran while we reclaimed
        memcg.memory.set_limit(nr_pages)
        self._settings_changed(memcg)

    def set_limit_now(self, memcg: MemCgroup, nr_pages: int) -> bool:
        """set_limit()'s fast path: if usage already fits, set it and return True; if reclaim
        is needed, change nothing and return False.  Invalid limits raise as set_limit does."""
        self._check_not_root(memcg)
        self._check_limit(memcg, nr_pages)
        if memcg.memory.usage > nr_pages:
            return False
        memcg.memory.limit = nr_pages  # _check_limit() passed, and nothing has run since
        self._settings_changed(memcg)
        return True

    def _check_limit(self, memcg: MemCgroup, nr_pages: int) -> None:
        if nr_pages > memcg.memsw.limit:
            raise ControllerError(errno.EINVAL, "memory limit above the memory+swap limit")
        memcg.memory.check_limit(nr_pages)

    async def set_memsw_limit(self, memcg: MemCgroup, nr_pages: int) -> None:
        """memory.memsw.limit_in_bytes: must stay >= the memory limit (EINVAL either way)."""
        self._check_not_root(memcg)
        if nr_pages < memcg.memory.limit:
            raise ControllerError(errno.EINVAL, "memory+swap limit below the memory limit")
        await self._shrink_to(memcg, memcg.memsw, nr_pages, may_swap=False)
        if nr_pages < memcg.memory.limit:
            raise ControllerError(errno.EINVAL, "memory+swap limit below the memory limit")
        memcg.memsw.limit = nr_pages
        self._settings_changed(memcg)

    def set_tcp_limit(self, memcg: MemCgroup, nr_pages: int) -> None:
        self._check_not_root(memcg)
        memcg.tcp.limit = nr_pages

    def set_kmem_limit(self, memcg: MemCgroup, nr_pages: int) -> None:
        """Kernel 6.18 accepts the write and keeps kmem unlimited (the knob is deprecated)."""
        self._check_not_root(memcg)

    def set_soft_limit(self, memcg: MemCgroup, nr_pages: int) -> None:
        memcg.soft_limit = nr_pages

    def set_oom_kill_disable(self, memcg: MemCgroup, disable: bool) -> None:
        if memcg.is_root():
            raise ControllerError(errno.EINVAL, "oom_control on the root group")
        memcg.oom_kill_disable = disable
        self._signal_memory_freed()  # sleepers re-decide: kill now, or keep waiting

    def set_swap_size(self, nr_pages: int) -> None:
        self.swap.total = nr_pages
        for memcg in self.groups():
            memcg.reclaim_task.kick()

    def _settings_changed(self, memcg: MemCgroup) -> None:
        """A limit or watermark moved: OOM sleepers retry, the group's task re-evaluates."""
        self._signal_memory_freed()
        memcg.reclaim_task.kick()

    # -- watermarks and the reclaim task ---------------------------------------------------------

    async def set_high_wmark(self, memcg: MemCgroup, nr_pages: int | None) -> None:
        """Arm the high watermark and make sure the task runs; None disarms it and stops it."""
        memcg.memory.set_hwmark(nr_pages)
        if nr_pages is None:
            await memcg.reclaim_task.stop()
            return
        if memcg.reclaim_task.is_running():
            memcg.reclaim_task.kick()  # re-evaluate against the new watermark
        else:
            await self.start_reclaim_task(memcg)  # a new task evaluates it when it starts
        self._warn_about_watermarks(memcg)
        self._signal_memory_freed()

    def set_low_wmark(self, memcg: MemCgroup, nr_pages: int | None) -> None:
        """Arm the low watermark; None returns it to the default below the high one."""
        memcg.memory.set_lwmark(nr_pages)
        self._warn_about_watermarks(memcg)
        self._settings_changed(memcg)

    async def start_reclaim_task(self, memcg: MemCgroup) -> None:
        """Start the group's reclaim task (idempotent); EINVAL without a high watermark, since
        such a task could never be woken."""
        if memcg.removed:
            raise ControllerError(errno.ENODEV, "group removed")
        if not memcg.memory.watermarks_armed():
            raise ControllerError(errno.EINVAL, "no high watermark: nothing would wake the task")
        if self._nursery is None:
            raise ControllerError(errno.ENODEV, "controller is not running")
        await memcg.reclaim_task.start(self._nursery)

    async def stop_reclaim_task(self, memcg: MemCgroup) -> None:
        await memcg.reclaim_task.stop()

    def reclaim_tasks(self) -> list[MemCgroup]:
        """Groups whose reclaim task is alive, in tree order."""
        return [memcg for memcg in self.groups() if memcg.reclaim_task.is_running()]

    def unreclaimable_pages(self, memcg: MemCgroup) -> int:
        """Pages of the subtree that no reclaim can free now: anonymous pages when there is no
        swap room or swappiness is 0."""
        if self.swap.free() > 0:
            return sum(
                n.lruvec.resident(PageKind.ANON) for n in memcg.subtree() if not n.swappiness
            )
        return sum(n.lruvec.resident(PageKind.ANON) for n in memcg.subtree())

    def _warn_about_watermarks(self, memcg: MemCgroup) -> None:
        """The patch's TODO: "too small low watermark just consumes CPU.  Should we warn?"  Yes."""
        res = memcg.memory
        if res.hwmark is None:
            return
        lwmark = res.lwmark
        assert lwmark is not None
        if res.hwmark - lwmark < SWAP_CLUSTER_MAX:
            memcg.reclaim_task.warn(
                f"watermark gap {(res.hwmark - lwmark) * PAGE_SIZE} bytes is under one reclaim "
                f"batch ({SWAP_CLUSTER_MAX * PAGE_SIZE} bytes): the task will wake for every "
                "few pages charged"
            )
        unreclaimable = self.unreclaimable_pages(memcg)
        if lwmark < unreclaimable:
            memcg.reclaim_task.warn(
                f"low watermark {lwmark * PAGE_SIZE} is below the {unreclaimable * PAGE_SIZE} "
                "bytes that cannot be reclaimed (anonymous memory without swap): the task "
                "would run without progress"
            )

    # -- tasks ---------------------------------------------------------------------------------

    def _prune_tasks(self, memcg: MemCgroup) -> None:
        """Exited threads leave their group, as cgroup_exit() makes them."""
        memcg.tasks = {tid for tid in memcg.tasks if self.processes.thread_alive(tid)}

    def _owner(self, tid: int) -> MemCgroup:
        for memcg in self.groups():
            if tid in memcg.tasks:
                return memcg
        return self.root

    def attach(self, memcg: MemCgroup, pid: int, *, whole_process: bool) -> None:
        """Move a thread (tasks) or every thread of its process (cgroup.procs) into ``memcg``.
        ESRCH for a thread that does not exist.  Charges stay where they are, as in 6.18."""
        if memcg.removed:
            raise ControllerError(errno.ENODEV, "group removed")
        if not self.processes.thread_alive(pid):
            raise ControllerError(errno.ESRCH, f"no process {pid}")
        tids = self.processes.thread_group(pid) if whole_process else [pid]
        for tid in tids:
            self._owner(tid).tasks.discard(tid)
            if not memcg.is_root():
                memcg.tasks.add(tid)
        if self.real is not None:
            tgid = self.processes.tgid_of(pid)
            if tgid is not None:
                self.real.attached(memcg, tgid)

    def adopt(self, memcg: MemCgroup, pid: int) -> None:
        """A member's child was born in the member's group, as fork() leaves it (every thread of
        it, as the child has only those it made since)."""
        if memcg.removed or not self.processes.thread_alive(pid):
            return
        for tid in self.processes.thread_group(pid):
            self._owner(tid).tasks.discard(tid)
            if not memcg.is_root():
                memcg.tasks.add(tid)

    def tasks(self, memcg: MemCgroup) -> list[int]:
        """Sorted thread IDs in the group; the root holds every host thread not elsewhere."""
        if memcg.is_root():
            elsewhere: set[int] = set()
            for node in self.groups():
                elsewhere |= node.tasks
            return sorted(set(self.processes.all_threads()) - elsewhere)
        self._prune_tasks(memcg)
        return sorted(memcg.tasks)

    def procs(self, memcg: MemCgroup) -> list[int]:
        """Sorted process IDs with at least one thread in the group."""
        tgids = {self.processes.tgid_of(tid) for tid in self.tasks(memcg)}
        return sorted(t for t in tgids if t is not None)

    # -- statistics ----------------------------------------------------------------------------

    def memory_stat(self, memcg: MemCgroup) -> list[tuple[str, int]]:
        """memory.stat's lines as (name, value), in kernel 6.18's order and units."""
        return list(zip(MEMORY_STAT_NAMES, self.memory_stat_values(memcg), strict=True))

    def memory_stat_values(self, memcg: MemCgroup) -> tuple[int, ...]:
        """memory.stat's values alone, in MEMORY_STAT_NAMES' order."""
        local = _local_stat(memcg)
        if memcg.children:
            totals = tuple(map(sum, zip(*map(_local_stat, memcg.subtree()), strict=True)))
        else:
            totals = local
        limits = (memcg.hierarchical_limit() * PAGE_SIZE,
                  memcg.hierarchical_memsw_limit() * PAGE_SIZE)  # fmt: skip
        return (*local, *limits, *totals)

    def numa_stat(self, memcg: MemCgroup) -> list[tuple[str, int]]:
        """memory.numa_stat's items in pages (one node), local then hierarchical."""

        def items(nodes: list[MemCgroup]) -> dict[str, int]:
            file = sum(n.lruvec.resident(PageKind.FILE) + n.real[RealKind.FILE] for n in nodes)
            anon = sum(n.lruvec.resident(PageKind.ANON) + n.real[RealKind.ANON]
                       + n.real[RealKind.SHMEM] + n.real[RealKind.SHMEM_UNMAPPED]
                       for n in nodes)  # fmt: skip
            unevictable = sum(n.real[kind] for n in nodes for kind in LOCKED_KINDS)
            return {"total": file + anon + unevictable, "file": file, "anon": anon,
                    "unevictable": unevictable}  # fmt: skip

        local = items([memcg])
        total = items(list(memcg.subtree()))
        return [*local.items(), *((f"hierarchical_{k}", v) for k, v in total.items())]
