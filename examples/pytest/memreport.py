"""memreport: read a cgroup v1 memory group's usage, limit and page cache, for a dashboard.

The function under test in test_reader.py.  It takes the hierarchy's root as a parameter
(default: where the v1 memory controller is usually mounted), so a test can point it at a
fakecgfs mount.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CGROUP_MEMORY = "/sys/fs/cgroup/memory"
UNLIMITED = 9223372036854771712  # what memory.limit_in_bytes shows for -1 (with 4 KiB pages)


@dataclass(frozen=True)
class MemoryReport:
    group: str
    usage: int  # bytes
    limit: int | None  # bytes; None when unlimited
    cache: int  # page cache, from memory.stat
    rss: int  # anonymous memory, from memory.stat
    failcnt: int  # charges the limit refused

    @property
    def percent(self) -> float | None:
        return None if self.limit is None else 100.0 * self.usage / self.limit


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def read_memory(group: str, root: str | os.PathLike = CGROUP_MEMORY) -> MemoryReport:
    """The report of ``group`` ("web/app", relative to ``root``)."""
    directory = os.path.join(root, group.strip("/"))
    stat = {}
    for line in _read(os.path.join(directory, "memory.stat")).splitlines():
        name, value = line.split()
        stat[name] = int(value)
    limit = int(_read(os.path.join(directory, "memory.limit_in_bytes")))
    return MemoryReport(
        group=group,
        usage=int(_read(os.path.join(directory, "memory.usage_in_bytes"))),
        limit=None if limit >= UNLIMITED else limit,
        cache=stat["cache"],
        rss=stat["rss"],
        failcnt=int(_read(os.path.join(directory, "memory.failcnt"))),
    )


def busiest(root: str | os.PathLike = CGROUP_MEMORY, top: int = 3) -> list[MemoryReport]:
    """The ``top`` groups under ``root`` with the highest usage, highest first."""
    root = os.fspath(root)
    reports = []
    for dirpath, _, files in os.walk(root):
        if dirpath != root and "memory.usage_in_bytes" in files:
            reports.append(read_memory(os.path.relpath(dirpath, root), root))
    return sorted(reports, key=lambda r: r.usage, reverse=True)[:top]
