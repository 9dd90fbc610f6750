"""The interface between the controller and the layer that follows real processes.

Its own module, apart from the page kinds in ``real.py``: the group (``memcg.py``) needs the
kinds, and this interface needs the group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .memcg import MemCgroup


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
