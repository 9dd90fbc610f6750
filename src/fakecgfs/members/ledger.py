"""The attribution ledger: which group holds which of a member's pages.

A member's pages are held in *holdings*, oldest first: the first is its *baseline*, what it
had when it joined (charged where it was before, which fakecgfs does not model: the host's
root), then one holding per group it has gained pages in since.  A sample gives the process's
pages by kind; the ledger turns the difference into charges and uncharges:

* pages gained are charged to the group the member is in now (a new holding if it moved);
* pages gone are uncharged from the *latest* holdings first (last in, first out), the baseline
  last: allocate N, free N, and the group is back where it was, whatever came before.

Frees are applied before gains, so that a page changing kind (mlock, swap-out) never makes a
group look over its limit for an instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ..controller import RealKind
from ..controller.real import NR_REAL_KINDS, in_memory

if TYPE_CHECKING:
    from ..controller import MemCgroup, MemoryController


class Holding:
    """Pages of one member held by one group (None: the baseline, charged nowhere here)."""

    __slots__ = ("memcg", "pages")

    def __init__(self, memcg: MemCgroup | None, pages: Sequence[int] | None = None) -> None:
        self.memcg = memcg
        self.pages = list(pages) if pages is not None else [0] * NR_REAL_KINDS


class Ledger:
    """One member's holdings, and the arithmetic that moves them."""

    __slots__ = ("holdings",)

    def __init__(self, baseline: Sequence[int]) -> None:
        self.holdings = [Holding(None, baseline)]

    def held(self, kind: RealKind) -> int:
        return sum(h.pages[kind] for h in self.holdings)

    def groups(self) -> list[MemCgroup]:
        """The groups holding some of these pages."""
        return [h.memcg for h in self.holdings if h.memcg is not None]

    def charged_in(self, groups: set[MemCgroup]) -> int:
        """Pages (memory and swap) this member holds in any of ``groups``."""
        return sum(
            sum(h.pages) for h in self.holdings if h.memcg is not None and _live(h.memcg) in groups
        )

    def memory_charged(self) -> int:
        """Pages in memory this member has charged to groups (its baseline excluded)."""
        return sum(
            h.pages[kind] for h in self.holdings if h.memcg is not None
            for kind in RealKind if in_memory(kind)
        )  # fmt: skip

    def apply(self, ctl: MemoryController, memcg: MemCgroup, target: Sequence[int]) -> None:
        """The member, now in ``memcg``, has ``target`` pages of each kind: charge and
        uncharge the difference."""
        gains = []
        for kind in RealKind:
            delta = target[kind] - self.held(kind)
            if delta < 0:
                self._free(ctl, kind, -delta)
            elif delta > 0:
                gains.append((kind, delta))
        if not gains:
            return
        top = self.holdings[-1]
        if top.memcg is not memcg:
            top = Holding(memcg)
            self.holdings.append(top)
        for kind, delta in gains:
            top.pages[kind] += delta
            ctl.charge_real(memcg, kind, delta)

    def _free(self, ctl: MemoryController, kind: RealKind, nr: int) -> None:
        for holding in reversed(self.holdings):
            take = min(holding.pages[kind], nr)
            if not take:
                continue
            holding.pages[kind] -= take
            nr -= take
            if holding.memcg is not None:
                ctl.uncharge_real(holding.memcg, kind, take)
            if not nr:
                break
        # Drop emptied holdings, the baseline excepted: a member moving back and forth keeps
        # a short list.
        self.holdings[1:] = [h for h in self.holdings[1:] if any(h.pages)]

    def release(self, ctl: MemoryController) -> None:
        """The process is gone (or its image replaced by exec): everything it held is freed."""
        for holding in self.holdings:
            if holding.memcg is not None:
                for kind in RealKind:
                    if holding.pages[kind]:
                        ctl.uncharge_real(holding.memcg, kind, holding.pages[kind])
        self.holdings = [Holding(None)]


def _live(memcg: MemCgroup) -> MemCgroup:
    while memcg.removed and memcg.parent is not None:
        memcg = memcg.parent
    return memcg
