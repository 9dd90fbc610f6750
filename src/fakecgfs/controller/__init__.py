"""The simulated cgroup v1 memory controller (pure: no FUSE, no files).

The public surface: ``MemoryController`` (the tree, charge, limits, reclaim), ``MemCgroup``
(one group), ``ResCounter``/``ResState`` (the RFC's counter and its states), ``PageKind``,
``ReclaimTaskState`` (the background reclaim task's states), events, and ``ControllerError``.
"""

from .constants import PAGE_COUNTER_MAX, PAGE_SIZE, SWAP_CLUSTER_MAX
from .controller import MEMORY_STAT_NAMES, STAT_ITEMS, MemoryController
from .errors import ControllerError
from .events import Event, EventKind
from .lru import PageKind
from .memcg import MemCgroup
from .processes import ProcessTable, ProcFS
from .real import RealKind
from .real_memory import RealMemory
from .reclaim_task import ReclaimTask, ReclaimTaskState, ReclaimTaskStats
from .res_counter import ResCounter, ResState

__all__ = [
    "PAGE_COUNTER_MAX", "PAGE_SIZE", "SWAP_CLUSTER_MAX", "STAT_ITEMS", "MEMORY_STAT_NAMES",
    "MemoryController",
    "ReclaimTaskState", "ReclaimTaskStats", "ReclaimTask", "ControllerError", "Event", "EventKind",
    "PageKind", "MemCgroup", "ProcessTable", "ProcFS", "ResCounter", "ResState",
    "RealKind", "RealMemory",
]  # fmt: skip
