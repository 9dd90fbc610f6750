"""The real processes the ``tasks`` and ``cgroup.procs`` files name, read from /proc.

fakecgfs only records which group a thread is "in"; it never signals or otherwise touches a
process.  The table is an object so that controller tests can substitute a fake one.
"""

from __future__ import annotations

import os
from typing import Protocol


class ProcessTable(Protocol):
    def thread_alive(self, tid: int) -> bool: ...
    def thread_group(self, tid: int) -> list[int]: ...
    def tgid_of(self, tid: int) -> int | None: ...
    def all_threads(self) -> list[int]: ...


class ProcFS:
    """The host's processes, from procfs."""

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc

    def thread_alive(self, tid: int) -> bool:
        """The thread exists and has not exited (a zombie has already left its cgroup)."""
        try:
            with open(f"{self.proc}/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return False
        # The state letter follows the parenthesised command name, which may contain ") ".
        state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
        return state not in (b"Z", b"X", b"")

    def tgid_of(self, tid: int) -> int | None:
        try:
            with open(f"{self.proc}/{tid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"Tgid:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            return None
        return None

    def thread_group(self, tid: int) -> list[int]:
        """Every live thread of the process that ``tid`` belongs to."""
        tgid = self.tgid_of(tid)
        if tgid is None:
            return []
        try:
            threads = [int(t) for t in os.listdir(f"{self.proc}/{tgid}/task")]
        except OSError:
            return []
        return [t for t in threads if self.thread_alive(t)]

    def all_threads(self) -> list[int]:
        tids: list[int] = []
        for entry in os.listdir(self.proc):
            if entry.isdigit():
                try:
                    tids.extend(int(t) for t in os.listdir(f"{self.proc}/{entry}/task"))
                except OSError:
                    continue
        return tids
