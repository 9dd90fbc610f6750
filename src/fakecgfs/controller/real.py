"""Real pages: memory of real processes, charged to groups as the members layer observes it.

The controller never reads /proc.  A layer above it (``fakecgfs.members``) follows the real
member processes of the groups, and tells the controller what appeared and what went away,
kind by kind, with ``MemoryController.charge_real()`` and ``uncharge_real()``.  Those pages are
counted in ``memory``/``memsw`` and shown in ``memory.stat`` as kernel 6.18's v1 controller
shows them (mm/memcontrol-v1.c, memcg1_stat_show(): the memcg1_stats table, then one line per
LRU list):

* ``cache`` is NR_FILE_PAGES, page cache *including* shmem/tmpfs;
* ``rss`` is NR_ANON_MAPPED: private anonymous memory, not shmem;
* ``shmem`` is NR_SHMEM; ``mapped_file`` is NR_FILE_MAPPED, mapped file pages, shmem included;
* shmem pages are swap-backed, so they sit on the *anon* LRU lists;
* mlocked pages sit on the unevictable list instead of their evictable one, while still
  counting in ``rss``/``cache``/``shmem``/``mapped_file`` as their kind;
* ``swap`` is swap entries: charged to memory+swap, not to memory.

Real pages are not on the simulated LRU lists: simulated reclaim never frees them by
arithmetic.  They leave only when the members layer sees them gone (freed, paged out by the
``process_madvise`` it was asked to do, or their process killed).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from .memcg import MemCgroup


class RealKind(enum.IntEnum):
    """What a real page is, for accounting (an index into ``MemCgroup.real``)."""

    ANON = 0  # private anonymous memory (RssAnon)
    ANON_LOCKED = 1  # ...mlocked
    FILE = 2  # file-backed pages mapped by a member (RssFile)
    FILE_LOCKED = 3  # ...mlocked
    SHMEM = 4  # shared anonymous, SysV shm, memfd, tmpfs, mapped (RssShmem)
    SHMEM_LOCKED = 5  # ...mlocked
    SHMEM_UNMAPPED = 6  # SysV shm pages no process maps any more (still cache and shmem)
    SWAP = 7  # swap entries (VmSwap): memory+swap only


NR_REAL_KINDS = len(RealKind)

STAT_OF_KIND: dict[RealKind, tuple[str, ...]] = {
    RealKind.ANON: ("rss", "inactive_anon"),
    RealKind.ANON_LOCKED: ("rss", "unevictable"),
    RealKind.FILE: ("cache", "mapped_file", "inactive_file"),
    RealKind.FILE_LOCKED: ("cache", "mapped_file", "unevictable"),
    RealKind.SHMEM: ("cache", "shmem", "mapped_file", "inactive_anon"),
    RealKind.SHMEM_LOCKED: ("cache", "shmem", "mapped_file", "unevictable"),
    RealKind.SHMEM_UNMAPPED: ("cache", "shmem", "inactive_anon"),
    RealKind.SWAP: ("swap",),
}
"""The memory.stat lines (STAT_ITEMS names) a page of each kind adds PAGE_SIZE to.  New pages
start on the inactive lists, as the kernel adds them since 5.9; real pages are never aged."""

LOCKED_KINDS = frozenset({RealKind.ANON_LOCKED, RealKind.FILE_LOCKED, RealKind.SHMEM_LOCKED})
ANON_LRU_KINDS = frozenset({RealKind.ANON, RealKind.SHMEM, RealKind.SHMEM_UNMAPPED})
FILE_LRU_KINDS = frozenset({RealKind.FILE})


def in_memory(kind: RealKind) -> bool:
    """Pages of this kind count in memory usage (all but swap entries, which count in
    memory+swap only)."""
    return kind is not RealKind.SWAP


class RealMemory(Protocol):
    """What the controller asks of the layer that follows real processes.  Only processes a
    writer moved into a group (and their children) are ever acted on, by that layer."""

    def refresh(self, memcg: MemCgroup) -> None:
        """Re-sample the members of ``memcg``'s subtree now, synchronously (a read is about to
        show their usage): a few small /proc reads, no waiting."""

    def attached(self, memcg: MemCgroup, pid: int) -> None:
        """Process ``pid`` was written into ``memcg`` (tasks or cgroup.procs): from now on what
        it gains is charged there."""

    def has_members(self, memcg: MemCgroup) -> bool:
        """Some member process lives in ``memcg``'s subtree."""

    async def reclaim(self, memcg: MemCgroup, nr_pages: int) -> int:
        """Ask the kernel to page out members' pages in the subtree (process_madvise), aiming at
        ``nr_pages``; re-sample and return how many pages left the subtree's usage."""

    async def oom_kill(self, memcg: MemCgroup, killed: Callable[[MemCgroup], None]) -> bool:
        """Kill the member of the subtree holding the largest charge there, calling
        ``killed(its group)`` as the signal is sent; wait for it to go and re-sample.  False if
        there was no member to kill."""

    def freeze(self, memcg: MemCgroup) -> None:
        """Stop every member of the subtree (oom_kill_disable 1: they wait in OOM)."""

    def thaw(self, memcg: MemCgroup) -> None:
        """Continue the members this subtree's OOM stopped."""
