"""A memory cgroup: its counters, pages, settings and place in the tree (no behaviour of its own
beyond bookkeeping; the charge path and reclaim policy live in the controller)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .constants import PAGE_COUNTER_MAX
from .lru import Lruvec, PageKind
from .real import NR_REAL_KINDS
from .res_counter import ResCounter

if TYPE_CHECKING:
    from .reclaim_task import ReclaimTask

DEFAULT_SWAPPINESS = 60


class MemCgroup:
    """One group (struct mem_cgroup).  Counters are hierarchical: a page charged here is counted
    in ``memory`` (and ``memsw``) of this group and of every ancestor; the LRU lists hold only
    the pages charged to this very group."""

    def __init__(self, name: str, parent: MemCgroup | None) -> None:
        self.name = name
        self.parent = parent
        self.children: dict[str, MemCgroup] = {}
        self.memory = ResCounter()  # memory.usage/limit/max_usage/failcnt and the watermarks
        self.memsw = ResCounter()  # memory+swap: what memory.memsw.* shows
        self.kmem = ResCounter()  # kernel memory: what a child group's structures cost (below)
        self.tcp = ResCounter()  # socket buffers: ditto; its limit is stored and read back
        self.soft_limit = PAGE_COUNTER_MAX  # stored and shown; acts only under global pressure
        self.lruvec = Lruvec()
        self.removed = False  # set by rmdir: open files of a removed group answer ENODEV

        # Settings a child copies at creation, as kernel 6.18 does (mem_cgroup_css_alloc and
        # cgroup core): nothing else is inherited, limits included.
        self.swappiness = DEFAULT_SWAPPINESS
        self.oom_kill_disable = False
        self.clone_children = False
        self.notify_on_release = False
        if parent is not None:
            self.swappiness = parent.swappiness
            self.oom_kill_disable = parent.oom_kill_disable
            self.clone_children = parent.clone_children
            self.notify_on_release = parent.notify_on_release

        self.oom_waiters = 0  # charges sleeping in OOM (oom_kill_disable 1): under_oom while > 0
        self.oom_kill = 0  # charges refused by the simulated OOM killer
        self.pgpgin = 0  # pages charged here (events, not bytes)
        self.pgpgout = 0  # pages uncharged from here, by free or by reclaim
        self.pgfault = 0  # anonymous pages charged here: each one is a fault of a task
        self.tasks: set[int] = set()  # thread IDs attached here (never for the root)
        self.kernel_pages = 0  # kmem charged here for child groups' structures (unreclaimable)
        self.stock = 0  # pages precharged to memory+memsw and not yet used (per-CPU stock)
        self.children_made = 0  # child groups ever created here: the first costs more kmem
        self.kmem_cost = 0  # kmem pages this group's structures cost its parent
        self.charging = 0  # charges in progress here: the simulated tasks rmdir must not orphan
        self.shown_ram = 0  # memory.shown_ram_in_bytes, a vendor file of the measured kernel
        self.reclaim_task: ReclaimTask  # the controller gives every group one as it creates it
        self.real = [0] * NR_REAL_KINDS  # real processes' pages charged here, by RealKind

    # -- the tree ------------------------------------------------------------------------------

    def is_root(self) -> bool:
        return self.parent is None

    @property
    def path(self) -> str:
        if self.parent is None:
            return "/"
        parts = []
        node: MemCgroup | None = self
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(parts))

    def lineage(self) -> Iterator[MemCgroup]:
        """This group, then each ancestor up to the root."""
        node: MemCgroup | None = self
        while node is not None:
            yield node
            node = node.parent

    def subtree(self) -> Iterator[MemCgroup]:
        """This group and its descendants, parents before children."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(list(node.children.values())))

    def is_ancestor_of(self, other: MemCgroup) -> bool:
        """True if ``other`` is this group or below it (lineage() walked without a generator:
        a read with real processes asks it for every member)."""
        node: MemCgroup | None = other
        while node is not None:
            if node is self:
                return True
            node = node.parent
        return False

    # -- bookkeeping shared by charge, uncharge and reclaim ------------------------------------

    def commit_charge(self, kind: PageKind, nr: int, *, dirty: bool = False) -> None:
        """Put pages already charged to the counters on this group's lists."""
        self.lruvec.add_new(kind, nr, dirty=dirty)
        self.pgpgin += nr
        if kind is PageKind.ANON:
            self.pgfault += nr

    def account_reclaim(self, *, dropped: int, swapped: int) -> None:
        """Pages that left this group's lists by reclaim: dropped ones leave memory and memsw;
        swapped ones leave memory but stay charged to memsw (as swap)."""
        if not dropped and not swapped:
            return
        self.pgpgout += dropped + swapped
        for node in self.lineage():
            node.memory.uncharge(dropped + swapped)
            node.memsw.uncharge(dropped)

    def uncharge_freed(self, *, resident: int, swap_entries: int) -> None:
        """Pages a task freed: resident ones leave memory and memsw, swap entries leave memsw."""
        self.pgpgout += resident
        for node in self.lineage():
            node.memory.uncharge(resident)
            node.memsw.uncharge(resident + swap_entries)

    def hierarchical_limit(self) -> int:
        return min(node.memory.limit for node in self.lineage())

    def hierarchical_memsw_limit(self) -> int:
        return min(node.memsw.limit for node in self.lineage())

    def under_oom(self) -> bool:
        return self.oom_waiters > 0
