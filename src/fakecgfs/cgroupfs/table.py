"""A set of control files, as the filesystem asks for it: which files a group has, and by name.

``CgroupFS`` is given one table at mount time: ``MODERN`` (kernel 6.18's files, cftypes.py) by
default, or an era's own (``fakecgfs.eras``).  The filesystem never asks which era it serves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic

from ..controller import MemCgroup, MemoryController
from .cftypes import CFTYPES, CfType, Cgroup, Ctl, Grp, Origin


class CfTable(Generic[Ctl, Grp]):
    """Control files sorted by name, with the two questions the filesystem asks."""

    def __init__(self, cftypes: Iterable[CfType[Ctl, Grp]]) -> None:
        self.cftypes = tuple(sorted(cftypes, key=lambda cft: cft.name))
        self.by_name = {cft.name: cft for cft in self.cftypes}

    def files_of(self, memcg: Cgroup, *, strict: bool = False) -> list[CfType[Ctl, Grp]]:
        """The control files of a group, as its directory lists them."""
        return [cft for cft in self.cftypes
                if cft.present_in(memcg)
                and not (strict and cft.origin is Origin.FAKECGFS)]  # fmt: skip

    def lookup(self, memcg: Cgroup, name: str, *, strict: bool = False) -> CfType[Ctl, Grp] | None:
        cft = self.by_name.get(name)
        if cft is None or not cft.present_in(memcg) or (strict and cft.origin is Origin.FAKECGFS):
            return None
        return cft


MODERN: CfTable[MemoryController, MemCgroup] = CfTable(CFTYPES)
"""Kernel 6.18's v1 memory controller, the repaired RFC, and the fake.* files."""
