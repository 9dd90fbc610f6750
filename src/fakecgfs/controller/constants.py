"""Named constants of the simulated memory controller.

Kernel values carry the kernel's names so that a reader can look them up; the fakecgfs-only knobs
say where their default comes from.
"""

# Shared with every layer (fakecgfs.kernel imports nothing); re-exported here, the controller's
# home for its constants.
from ..kernel import PAGE_COUNTER_MAX as PAGE_COUNTER_MAX
from ..kernel import PAGE_SIZE as PAGE_SIZE
from ..kernel import UNLIMITED as UNLIMITED

SWAP_CLUSTER_MAX = 32
"""Pages one reclaim batch aims to free (include/linux/swap.h); also the reclaim task's pass
size."""

DEF_PRIORITY = 12
"""Reclaim starts by scanning lru_size >> DEF_PRIORITY pages of each list, then halves the shift."""

MEM_CGROUP_RECLAIM_RETRIES = 5
"""Reclaim attempts without progress before a charge goes to OOM in 2.6.26 (the rfc-2008 era)."""

MAX_RECLAIM_RETRIES = 16
"""Its modern successor (mm/memcontrol.c): retries without progress of a charge before OOM
(try_charge_memcg), of limit shrinking and of force_empty."""

MEMCG_CHARGE_BATCH = 64
"""Pages charged at a time once a request no longer fits under the limits, as a faulting task
would."""

KMEM_FIRST_CHILD_PAGES = 3
"""Kernel memory a parent is charged for its first child group's structures (measured, 6.18)."""

KMEM_NEXT_CHILD_PAGES = 2
"""...and for each later child.  It is charged through the per-CPU stock, so the parent's
memory usage grows by a whole MEMCG_CHARGE_BATCH (256 KiB) at once, as measured: a parent with
a child is never empty, and ``limit_in_bytes`` 0 on it is EBUSY."""

INT_MAX = 2**31 - 1
"""Largest PID the tasks and cgroup.procs parsers accept."""

# -- the background reclaim task (the RFC's memcontd) ------------------------------------------

RECLAIM_TASK_PASS_INTERVAL = 0.0
"""Seconds the task rests between two reclaim passes by default.

The RFC ran each pass at nice 0 and called yield(); the reviewer asked for a named constant instead
of a bare 0.  Zero here means "only a scheduling checkpoint", the trio equivalent of yield() that
still lets every other operation run between passes.  --reclaim-rate slows it down to a pace.
"""

NO_PROGRESS_PASSES = 4
"""Consecutive passes that free nothing before the task backs off (the RFC spun forever)."""

BACKOFF_MIN = 0.1
"""First back-off sleep in seconds; the Dec 2007 version of the patch rested HZ/10 between
passes."""

BACKOFF_MAX = 10.0
"""Back-off doubles up to this many seconds, so a hopeless task costs at most a pass every 10 s."""

DEFAULT_WMARK_GAP_DIVISOR = 200
"""A group that arms only the high watermark stops reclaiming 0.5% of it lower.

Alibaba Cloud Linux, the descendant of this RFC that shipped, defaults memory.wmark_scale_factor
to 50 (0.5% of the limit) for the gap between its high and low watermarks.
"""

DEFAULT_WMARK_GAP_MIN = SWAP_CLUSTER_MAX
"""...but never less than one reclaim batch, so one pass can always finish an episode."""

MEM_CGROUP_ID_MAX = 0xFFFF
"""Memory cgroup IDs run from 1 to this (include/linux/memcontrol.h), the root's included: a
mkdir past it fails with ENOSPC, so the hierarchy never holds more groups."""
