"""Pages on a group's LRU lists, kept as counts.

A page is never a Python object: each list holds a count of pages, how many of them have the
referenced bit set, and (file lists) how many are dirty.  Which pages a scan meets is decided
proportionally and deterministically, so 16 GiB of simulated pages cost a few integers.
"""

from __future__ import annotations

import enum


class PageKind(enum.Enum):
    ANON = "anon"  # anonymous memory: reclaimable only by swapping it out
    FILE = "file"  # page cache: clean pages are dropped, dirty ones written back first


class LruList:
    """One LRU list: how many pages, how many referenced since the last scan, how many dirty."""

    __slots__ = ("nr", "referenced", "dirty")

    def __init__(self) -> None:
        self.nr = 0
        self.referenced = 0
        self.dirty = 0

    def add(self, nr: int, *, dirty: int = 0, referenced: int = 0) -> None:
        self.nr += nr
        self.dirty += dirty
        self.referenced += referenced

    def take(self, nr: int) -> tuple[int, int, int]:
        """Remove ``nr`` pages from the tail; return (taken, of which referenced, of which dirty).

        Referenced and dirty pages are assumed spread evenly along the list, so a scan of a
        fraction of the list meets that fraction of them (rounded down, deterministic).
        """
        nr = min(nr, self.nr)
        if nr == 0:
            return 0, 0, 0
        referenced = self.referenced * nr // self.nr
        dirty = self.dirty * nr // self.nr
        # The last page of a list carries whatever the rounding left.
        if nr == self.nr:
            referenced, dirty = self.referenced, self.dirty
        self.nr -= nr
        self.referenced -= referenced
        self.dirty -= dirty
        return nr, referenced, dirty

    def free(self, nr: int) -> int:
        """Drop up to ``nr`` pages (an uncharge), preferring clean unreferenced ones; return the
        count."""
        nr = min(nr, self.nr)
        self.nr -= nr
        self.referenced = min(self.referenced, self.nr)
        self.dirty = min(self.dirty, self.nr)
        return nr


class Lruvec:
    """A group's four evictable lists (the kernel's split LRU) and its anonymous pages in swap."""

    __slots__ = ("inactive_anon", "active_anon", "inactive_file", "active_file", "swapped")

    def __init__(self) -> None:
        self.inactive_anon = LruList()
        self.active_anon = LruList()
        self.inactive_file = LruList()
        self.active_file = LruList()
        self.swapped = 0  # anonymous pages of this group now in swap (memsw-charged, not memory)

    def lists(self, kind: PageKind) -> tuple[LruList, LruList]:
        """(inactive, active) lists of one kind."""
        if kind is PageKind.ANON:
            return self.inactive_anon, self.active_anon
        return self.inactive_file, self.active_file

    def resident(self, kind: PageKind | None = None) -> int:
        if kind is None:
            return self.resident(PageKind.ANON) + self.resident(PageKind.FILE)
        inactive, active = self.lists(kind)
        return inactive.nr + active.nr

    def dirty(self) -> int:
        return self.inactive_file.dirty + self.active_file.dirty

    def add_new(self, kind: PageKind, nr: int, *, dirty: bool = False) -> None:
        """New pages start on the inactive list, as since Linux 5.9 for both kinds."""
        inactive, _ = self.lists(kind)
        inactive.add(nr, dirty=nr if dirty else 0)

    def free(self, kind: PageKind, nr: int) -> int:
        """Free up to ``nr`` resident pages of a kind, inactive first; return how many."""
        inactive, active = self.lists(kind)
        freed = inactive.free(nr)
        return freed + active.free(nr - freed)

    def mark_referenced(self, kind: PageKind, nr: int) -> int:
        """Set the referenced bit on up to ``nr`` pages not yet referenced, inactive list first."""
        done = 0
        for lru in self.lists(kind):
            n = min(nr - done, lru.nr - lru.referenced)
            lru.referenced += n
            done += n
        return done

    def move_to(self, other: Lruvec) -> None:
        """Give every page to ``other`` (reparenting at rmdir)."""
        for name in ("inactive_anon", "active_anon", "inactive_file", "active_file"):
            src, dst = getattr(self, name), getattr(other, name)
            dst.add(src.nr, dirty=src.dirty, referenced=src.referenced)
            src.nr = src.dirty = src.referenced = 0
        other.swapped += self.swapped
        self.swapped = 0
