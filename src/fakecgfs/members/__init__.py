"""Real processes in fake groups (``mount --real-processes``): reading /proc, the attribution
ledger, the sampler, and what is done to members (page-out, OOM kill, stop and continue).

It drives the controller through its public real-page API (``charge_real``, ``uncharge_real``,
``adopt``) and serves it as its ``RealMemory``; nothing below it imports it.
"""

from .ledger import Holding, Ledger
from .tracker import RealProcesses

__all__ = ["Holding", "Ledger", "RealProcesses"]
