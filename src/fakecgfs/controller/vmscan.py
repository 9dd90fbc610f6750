"""Reclaim: the simulated try_to_free_mem_cgroup_pages() over a group's subtree.

The shape is the kernel's (mm/vmscan.c), on page counts instead of pages:

* Priorities run from DEF_PRIORITY down to 0; at each, every group of the subtree scans
  ``lru_size >> priority`` pages of each evictable list, until ``nr_to_reclaim`` pages are freed.
* Anonymous lists are scanned only while swap has room and the group's swappiness is not 0
  (get_scan_count's SCAN_FILE otherwise).
* Active lists are aged (deactivated) when their inactive list is smaller, as inactive_is_low()
  decides; a referenced active page keeps its place once and loses its bit.
* An inactive page that was referenced is activated instead of freed; a dirty file page is
  written back (instantly, in this model) and rotated, to be freed by a later scan; a clean file
  page is dropped; an anonymous page goes to swap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from .constants import DEF_PRIORITY
from .lru import LruList, Lruvec, PageKind


class ReclaimableGroup(Protocol):
    """What reclaim reads and tells of a group: the default mount's MemCgroup, and the RFC
    era's group, which reclaims with the same model."""

    @property
    def lruvec(self) -> Lruvec: ...

    @property
    def swappiness(self) -> int: ...

    def account_reclaim(self, *, dropped: int, swapped: int) -> None: ...


@dataclass
class ReclaimResult:
    scanned: int = 0  # pages looked at on any list
    reclaimed: int = 0  # pages that left memory (dropped, or moved to swap)
    swapped_out: int = 0  # of the reclaimed, anonymous pages that went to swap
    written_back: int = 0  # dirty file pages cleaned on the way

    def add(self, other: ReclaimResult) -> None:
        self.scanned += other.scanned
        self.reclaimed += other.reclaimed
        self.swapped_out += other.swapped_out
        self.written_back += other.written_back


class SwapSpace:
    """The machine's one swap device, shared by every group; size 0 means no swap."""

    __slots__ = ("total", "used")

    def __init__(self, total_pages: int = 0) -> None:
        self.total = total_pages
        self.used = 0

    def free(self) -> int:
        return max(self.total - self.used, 0)


def _age_active(inactive: LruList, active: LruList, nr: int) -> int:
    """shrink_active_list(): move up to ``nr`` pages from the active list's tail to the inactive.

    Referenced pages get a second trip round the active list and lose their bit.
    """
    taken, referenced, dirty = active.take(nr)
    kept = referenced
    active.add(kept, dirty=dirty * kept // taken if taken else 0)
    inactive.add(taken - kept, dirty=dirty - (dirty * kept // taken if taken else 0))
    return taken


def _shrink_inactive(
    lruvec: Lruvec, kind: PageKind, nr: int, swap: SwapSpace | None, result: ReclaimResult
) -> None:
    """shrink_inactive_list() on counts: scan ``nr`` pages from the inactive tail."""
    inactive, active = lruvec.lists(kind)
    taken, referenced, dirty = inactive.take(nr)
    if taken == 0:
        return
    result.scanned += taken
    # Referenced pages are promoted, not freed (dirty ones keep their state).
    promoted_dirty = dirty * referenced // taken
    active.add(referenced, dirty=promoted_dirty)
    candidates = taken - referenced
    dirty_candidates = dirty - promoted_dirty
    if kind is PageKind.FILE:
        # Dirty pages are written back and rotated; clean ones are dropped at once.
        result.written_back += dirty_candidates
        inactive.add(dirty_candidates)
        result.reclaimed += candidates - dirty_candidates
        return
    room = swap.free() if swap is not None else 0
    out = min(candidates, room)
    if swap is not None:
        swap.used += out
    lruvec.swapped += out
    result.reclaimed += out
    result.swapped_out += out
    inactive.add(candidates - out)


def shrink_lruvec(
    lruvec: Lruvec, priority: int, swap: SwapSpace | None, result: ReclaimResult
) -> None:
    """Scan one group's lists at one priority."""
    kinds = [PageKind.FILE]
    if swap is not None and swap.free() > 0:
        kinds.append(PageKind.ANON)
    for kind in kinds:
        inactive, active = lruvec.lists(kind)
        scan_active = active.nr >> priority if priority else active.nr
        scan_inactive = inactive.nr >> priority if priority else inactive.nr
        if inactive.nr < active.nr and scan_active:
            result.scanned += _age_active(inactive, active, scan_active)
            scan_inactive = inactive.nr >> priority if priority else inactive.nr
        if scan_inactive:
            _shrink_inactive(lruvec, kind, scan_inactive, swap, result)


def try_to_free_pages(
    groups: Iterable[ReclaimableGroup], nr_to_reclaim: int, swap: SwapSpace | None
) -> ReclaimResult:
    """Reclaim from ``groups`` (a subtree, the reclaim root first) until ``nr_to_reclaim`` freed.

    ``swap`` is None when the caller may not swap (a memsw limit is what refused the charge:
    moving anon pages to swap would not lower it).  The caller uncharges what left memory.
    """
    groups = list(groups)
    result = ReclaimResult()
    for priority in range(DEF_PRIORITY, -1, -1):
        for memcg in groups:
            reclaimed, swapped = result.reclaimed, result.swapped_out
            # A group with swappiness 0 keeps its anonymous pages (get_scan_count() scans only
            # file pages for cgroup reclaim then), as unreclaimable_pages() counts them.
            shrink_lruvec(memcg.lruvec, priority, swap if memcg.swappiness else None, result)
            swapped = result.swapped_out - swapped
            memcg.account_reclaim(dropped=result.reclaimed - reclaimed - swapped, swapped=swapped)
            if result.reclaimed >= nr_to_reclaim:
                return result
    return result
