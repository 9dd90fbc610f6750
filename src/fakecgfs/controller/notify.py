"""Notifications: what ``cgroup.event_control`` registrations are told, and when.

The controller knows nothing of eventfds: a registration carries a ``signal`` callable (the
filesystem layer's eventfd write) and a ``release`` callable.  The semantics are the kernel's:

* **Usage thresholds** (memory.usage_in_bytes, memory.memsw.usage_in_bytes): signalled whenever
  usage crosses the threshold in either direction: up when old < t <= new, down when
  new < t <= old (mem_cgroup_threshold()).  The kernel looks only every ~128 page events;
  fakecgfs looks after every change, so it never misses a crossing.
* **OOM** (memory.oom_control): signalled when the group, or an ancestor whose limit it counts
  against, goes out of memory; at once on registration if the group is already under OOM.
* **Pressure** (memory.pressure_level, ``low|medium|critical[,hierarchy|local|default]``), as
  mm/vmpressure.c: reclaim effort is gathered per reclaim root over windows of
  VMPRESSURE_WINDOW scanned pages; pressure = 100 * (scanned - reclaimed) / scanned; 95 or more
  is critical, 60 or more medium, else low.  A listener hears its level and every level above.
  The event walks up the hierarchy: ``local`` listeners hear only their own group, ``default``
  ones only if no listener below was signalled, ``hierarchy`` ones always.
* **Background reclaim** (memory.high_wmark_in_bytes, fakecgfs only): signalled when the group's
  reclaim task starts a reclaim episode and when it goes back to sleep.
* Removing a group signals each of its registrations once and drops them (as cgroup v1 does);
  so does stopping the controller (unmount), where every group goes away.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .constants import SWAP_CLUSTER_MAX

if TYPE_CHECKING:
    from .memcg import MemCgroup

VMPRESSURE_WINDOW = SWAP_CLUSTER_MAX * 16
"""Scanned pages per pressure sample (mm/vmpressure.c's vmpressure_win)."""

VMPRESSURE_MEDIUM = 60
"""Percent of scanned pages left unreclaimed from which pressure is medium..."""

VMPRESSURE_CRITICAL = 95
"""...and critical."""


class Watch(enum.Enum):
    USAGE = "memory.usage_in_bytes"
    MEMSW_USAGE = "memory.memsw.usage_in_bytes"
    OOM = "memory.oom_control"
    PRESSURE = "memory.pressure_level"
    WMARK = "memory.high_wmark_in_bytes"


class PressureLevel(enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    CRITICAL = "critical"

    def at_least(self, other: PressureLevel) -> bool:
        """This level is ``other`` or more severe (listeners hear their level and above)."""
        order = (PressureLevel.LOW, PressureLevel.MEDIUM, PressureLevel.CRITICAL)
        return order.index(self) >= order.index(other)


class PressureMode(enum.Enum):
    DEFAULT = "default"  # heard unless a listener below was already signalled
    HIERARCHY = "hierarchy"  # heard for pressure anywhere below
    LOCAL = "local"  # heard only for pressure in this very group


def pressure_level(scanned: int, reclaimed: int) -> PressureLevel:
    """vmpressure_calc_level(): how much of what was scanned could not be reclaimed."""
    pressure = 100 * (scanned - min(reclaimed, scanned)) // scanned if scanned else 0
    if pressure >= VMPRESSURE_CRITICAL:
        return PressureLevel.CRITICAL
    if pressure >= VMPRESSURE_MEDIUM:
        return PressureLevel.MEDIUM
    return PressureLevel.LOW


@dataclass(eq=False)
class Registration:
    memcg: MemCgroup
    watch: Watch
    signal: Callable[[], None]  # adds 1 to the listener's eventfd
    release: Callable[[], None] = lambda: None  # closes what ``signal`` writes to
    threshold: int = 0  # pages, for USAGE and MEMSW_USAGE
    level: PressureLevel = PressureLevel.LOW
    mode: PressureMode = PressureMode.DEFAULT


@dataclass
class _Thresholds:
    """One group's usage registrations and the usage they were last compared with."""

    registrations: list[Registration] = field(default_factory=list)
    last_usage: dict[Watch, int] = field(default_factory=dict)


class Notifier:
    """Every registration of a controller, and the checks that fire them."""

    def __init__(self) -> None:
        self._by_group: dict[MemCgroup, list[Registration]] = {}
        self._thresholds: dict[MemCgroup, _Thresholds] = {}  # only groups with usage watches
        self._pressure_window: dict[MemCgroup, tuple[int, int]] = {}  # scanned, reclaimed

    def register(self, registration: Registration) -> None:
        memcg = registration.memcg
        self._by_group.setdefault(memcg, []).append(registration)
        if registration.watch in (Watch.USAGE, Watch.MEMSW_USAGE):
            entry = self._thresholds.setdefault(memcg, _Thresholds())
            entry.registrations.append(registration)
            entry.last_usage[registration.watch] = _usage(memcg, registration.watch)
        if registration.watch is Watch.OOM and memcg.under_oom():
            registration.signal()

    def unregister(self, registration: Registration) -> None:
        """Drop one registration without signalling it, as the kernel does when the listener
        closes its eventfd (memcg_event_wake() on EPOLLHUP); then release it."""
        memcg = registration.memcg
        registrations = self._by_group.get(memcg, [])
        if registration not in registrations:
            return
        registrations.remove(registration)
        if not registrations:
            del self._by_group[memcg]
        entry = self._thresholds.get(memcg)
        if entry is not None and registration in entry.registrations:
            entry.registrations.remove(registration)
            if not entry.registrations:
                del self._thresholds[memcg]
        registration.release()

    def registrations(self, memcg: MemCgroup) -> list[Registration]:
        return list(self._by_group.get(memcg, ()))

    # -- checks the controller calls -----------------------------------------------------------

    def usage_changed(self) -> None:
        """Compare every watched usage with what it was; signal the thresholds crossed."""
        for memcg, entry in self._thresholds.items():
            for watch, old in list(entry.last_usage.items()):
                new = _usage(memcg, watch)
                if new == old:
                    continue
                entry.last_usage[watch] = new
                low, high = min(old, new), max(old, new)
                for registration in entry.registrations:
                    if registration.watch is watch and low < registration.threshold <= high:
                        registration.signal()

    def out_of_memory(self, memcg: MemCgroup) -> None:
        """mem_cgroup_oom_notify(): every OOM listener in the subtree that ran out."""
        for node in memcg.subtree():
            for registration in self._by_group.get(node, ()):
                if registration.watch is Watch.OOM:
                    registration.signal()

    def reclaimed(self, memcg: MemCgroup, scanned: int, reclaimed: int) -> None:
        """vmpressure(): gather reclaim effort on the reclaim root; judge it per window."""
        if not scanned:
            return
        total_scanned, total_reclaimed = self._pressure_window.get(memcg, (0, 0))
        total_scanned += scanned
        total_reclaimed += reclaimed
        if total_scanned < VMPRESSURE_WINDOW:
            self._pressure_window[memcg] = (total_scanned, total_reclaimed)
            return
        self._pressure_window.pop(memcg, None)
        level = pressure_level(total_scanned, total_reclaimed)
        signalled_below = False  # per group, as vmpressure_event()'s ``signalled`` argument
        for depth, node in enumerate(memcg.lineage()):
            signalled_here = False
            for registration in self._by_group.get(node, ()):
                if registration.watch is not Watch.PRESSURE:
                    continue
                if not level.at_least(registration.level):
                    continue
                if depth and registration.mode is PressureMode.LOCAL:
                    continue
                if signalled_below and registration.mode is PressureMode.DEFAULT:
                    continue
                registration.signal()
                signalled_here = True
            signalled_below = signalled_below or signalled_here

    def reclaim_task_changed(self, memcg: MemCgroup) -> None:
        """The reclaim task started an episode or went back to sleep (fake.reclaim_daemon says
        which)."""
        for registration in self._by_group.get(memcg, ()):
            if registration.watch is Watch.WMARK:
                registration.signal()

    def group_removed(self, memcg: MemCgroup) -> None:
        """Signal each of the group's registrations once, then drop them."""
        for registration in self._by_group.pop(memcg, ()):
            registration.signal()
            registration.release()
        self._thresholds.pop(memcg, None)
        self._pressure_window.pop(memcg, None)

    def close(self) -> None:
        """The controller stops: every group goes away."""
        for memcg in list(self._by_group):
            self.group_removed(memcg)


def _usage(memcg: MemCgroup, watch: Watch) -> int:
    return memcg.memsw.usage if watch is Watch.MEMSW_USAGE else memcg.memory.usage
