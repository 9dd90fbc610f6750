"""The attribution ledger: which group holds which of a member's pages.

A member's pages are held in *holdings*, oldest first: the first is its *baseline*, what it
had when it joined (charged where it was before, which fakecgfs does not model: the host's
root), then one holding per group it has gained pages in since.  A sample gives the process's
pages by kind; the ledger turns the difference into charges and uncharges:

* pages gained are charged to the group the member is in now (a new holding if it moved);
* pages gone are uncharged from the *latest* holdings first (last in, first out), the baseline
  last: allocate N, free N, and the group is back where it was, whatever came before.

Holdings count pages by *base* kind (anonymous, file, shmem, unmapped shmem, swap), locked ones
included.  Being mlocked is a state of pages a holding already has, not a gain: the locked
pages of each kind are assigned to the latest holdings first too, and only decide which lines
(``unevictable`` or the evictable LRU) a group's pages show on.  So a sample caught in the
middle of an mlock() or MAP_POPULATE, whose locked count disagrees with its resident one,
shifts pages between a group's lines at worst, never between groups.

Uncharges are made before charges, so that a page changing kind (swapped out) never makes a
group look over its limit for an instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..controller import RealKind
from ..controller.real import NR_REAL_KINDS, in_memory

if TYPE_CHECKING:
    from ..controller import MemCgroup, MemoryController

LOCKED_OF = {
    RealKind.ANON: RealKind.ANON_LOCKED,
    RealKind.FILE: RealKind.FILE_LOCKED,
    RealKind.SHMEM: RealKind.SHMEM_LOCKED,
}
"""Each base kind that can be mlocked, and the kind its locked pages are charged as."""

BASE_KINDS = (RealKind.ANON, RealKind.FILE, RealKind.SHMEM, RealKind.SHMEM_UNMAPPED,
              RealKind.SWAP)  # fmt: skip


class Holding:
    """Pages of one member held by one group (None: the baseline, charged nowhere here):
    ``pages`` by base kind, locked included; ``charged`` by RealKind, as the group shows them."""

    __slots__ = ("memcg", "pages", "charged")

    def __init__(self, memcg: MemCgroup | None, pages: Sequence[int] | None = None) -> None:
        self.memcg = memcg
        self.pages = list(pages) if pages is not None else [0] * NR_REAL_KINDS
        self.charged = [0] * NR_REAL_KINDS


def _bases(target: Sequence[int]) -> list[int]:
    """A RealKind vector with its locked kinds folded into their base kinds."""
    bases = list(target)
    for base, locked in LOCKED_OF.items():
        bases[base] += bases[locked]
        bases[locked] = 0
    return bases


class Ledger:
    """One member's holdings, and the arithmetic that moves them."""

    __slots__ = ("holdings",)

    def __init__(self, baseline: Sequence[int]) -> None:
        self.holdings = [Holding(None, _bases(baseline))]

    def held(self, kind: RealKind) -> int:
        """Pages of a base kind held, locked ones included."""
        return sum(h.pages[kind] for h in self.holdings)

    def groups(self) -> list[MemCgroup]:
        """The groups holding some of these pages."""
        return [h.memcg for h in self.holdings if h.memcg is not None]

    def charged_in(self, groups: set[MemCgroup]) -> int:
        """Pages (memory and swap) this member has charged to any of ``groups``."""
        return sum(sum(h.charged) for h in self.holdings
                   if h.memcg is not None and _live(h.memcg) in groups)  # fmt: skip

    def memory_charged(self) -> int:
        """Pages in memory this member has charged to groups (its baseline excluded)."""
        return sum(h.charged[kind] for h in self.holdings for kind in RealKind if in_memory(kind))

    def apply(self, ctl: MemoryController, memcg: MemCgroup, target: Sequence[int]) -> None:
        """The member, now in ``memcg``, has ``target`` pages of each RealKind: move the
        holdings, then charge and uncharge each group the difference."""
        bases = _bases(target)
        for kind in BASE_KINDS:
            delta = bases[kind] - self.held(kind)
            if delta < 0:
                self._free(kind, -delta)
            elif delta > 0:
                top = self.holdings[-1]
                if top.memcg is not memcg:
                    top = Holding(memcg)
                    self.holdings.append(top)
                top.pages[kind] += delta
        self._settle(ctl, target)

    def _free(self, kind: RealKind, nr: int) -> None:
        for holding in reversed(self.holdings):
            take = min(holding.pages[kind], nr)
            holding.pages[kind] -= take
            nr -= take
            if not nr:
                break

    def _settle(self, ctl: MemoryController, target: Sequence[int]) -> None:
        """Give each holding its share of the locked pages (latest first), and bring what its
        group is charged in line with what it holds: uncharges first, then charges."""
        locked = {base: target[kind] for base, kind in LOCKED_OF.items()}
        wanted = []
        for holding in reversed(self.holdings):
            shown = list(holding.pages)
            for base, kind in LOCKED_OF.items():
                shown[kind] = min(locked[base], shown[base])
                shown[base] -= shown[kind]
                locked[base] -= shown[kind]
            wanted.append((holding, shown))
        for holding, shown in wanted:
            for kind in RealKind:
                if shown[kind] < holding.charged[kind]:
                    if holding.memcg is not None:
                        ctl.uncharge_real(holding.memcg, kind, holding.charged[kind] - shown[kind])
                    holding.charged[kind] = shown[kind]
        for holding, shown in wanted:
            for kind in RealKind:
                if shown[kind] > holding.charged[kind] and holding.memcg is not None:
                    ctl.charge_real(holding.memcg, kind, shown[kind] - holding.charged[kind])
                    holding.charged[kind] = shown[kind]
        # Emptied holdings go (the baseline stays): a member moving back and forth keeps a
        # short list.
        self.holdings[1:] = [h for h in self.holdings[1:] if any(h.pages)]

    def release(self, ctl: MemoryController) -> None:
        """The process is gone (or its image replaced by exec): everything it held is freed."""
        for holding in self.holdings:
            if holding.memcg is not None:
                for kind in RealKind:
                    if holding.charged[kind]:
                        ctl.uncharge_real(holding.memcg, kind, holding.charged[kind])
        self.holdings = [Holding(None)]


def _live(memcg: MemCgroup) -> MemCgroup:
    while memcg.removed and memcg.parent is not None:
        memcg = memcg.parent
    return memcg
