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
