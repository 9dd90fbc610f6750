"""The memory controller of 2.6.26-rc2-mm1 with KAMEZAWA's May 2008 background-reclaim RFC
(patches 2/4 and 3/4) applied as posted: ``fakecgfs mount --era rfc-2008``.

Its own res_counter (``res_counter.py``), thread (``memcontd.py``), controller
(``controller.py``), parser (``parse.py``) and control-file table (``cftypes.py``); the
conformance probes it answers differently from kernel 6.18, and why (``conformance.py``).
"""

from .controller import Group, Rfc2008Controller, sample_values
from .memcontd import THREAD_NAME, YIELD_PASS_CPU_COST, Memcontd, ThreadState
from .res_counter import LLONG_MAX, Member, ResCounter, ResState

__all__ = [
    "Group", "Rfc2008Controller", "sample_values", "THREAD_NAME", "YIELD_PASS_CPU_COST",
    "Memcontd", "ThreadState", "LLONG_MAX", "Member", "ResCounter", "ResState",
]  # fmt: skip
