"""Comparing two recordings: by probe id, skipping machine-dependent and fakecgfs-only probes
unless asked; and fakecgfs-only probes against the kernel answers they are paired with."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

Recording = dict[str, Any]
"""A recording as record() returns it and JSON holds it: meta and probes."""


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass
class Difference:
    id: str
    golden: Any = field(default=MISSING)
    new: Any = field(default=MISSING)

    def render(self) -> str:
        def show(value: Any) -> str:
            if value is MISSING:
                return "<missing>"
            return json.dumps(value, sort_keys=False)

        return f"DIFF {self.id}\n  golden: {show(self.golden)}\n  new:    {show(self.new)}"


def _compared(
    golden: Recording, new: Recording, ignore_machine_dependent: bool, ignore_fakecgfs_only: bool
) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    g = {p["id"]: p for p in golden.get("probes", [])}
    n = {p["id"]: p for p in new.get("probes", [])}
    ids = list(g) + [i for i in n if i not in g]

    def skipped(pid: str) -> bool:
        for side in (g, n):
            p = side.get(pid)
            if p is None:
                continue
            if ignore_machine_dependent and p.get("machine_dependent"):
                return True
            if ignore_fakecgfs_only and p.get("fakecgfs_only"):
                return True
        return False

    return [i for i in ids if not skipped(i)], g, n


def diff(
    golden: Recording,
    new: Recording,
    ignore_machine_dependent: bool = True,
    ignore_fakecgfs_only: bool = True,
) -> list[Difference]:
    """Differences between two recordings (a probe present in only one counts too).

    Machine-dependent probes (flagged in either file) are skipped by default, and so
    are fakecgfs-only probes (their kernel answer is ENOENT by design; compare them
    with :func:`diff_compare_with`).
    """
    ids, g, n = _compared(golden, new, ignore_machine_dependent, ignore_fakecgfs_only)
    out = []
    for pid in ids:
        ga = g[pid]["answer"] if pid in g else MISSING
        na = n[pid]["answer"] if pid in n else MISSING
        if ga is MISSING or na is MISSING or ga != na:
            out.append(Difference(pid, ga, na))
    return out


def compared_count(
    golden: Recording,
    new: Recording,
    ignore_machine_dependent: bool = True,
    ignore_fakecgfs_only: bool = True,
) -> int:
    return len(_compared(golden, new, ignore_machine_dependent, ignore_fakecgfs_only)[0])


def diff_compare_with(golden: Recording, new: Recording) -> list[Difference]:
    """For each fakecgfs-only probe of ``new``, compare its answer with the golden
    answer of the probe it is paired with (``compare_with``): e.g. fakecgfs's
    ``memory.high_wmark_in_bytes`` parser against the kernel's limit parser."""
    g = {p["id"]: p["answer"] for p in golden.get("probes", [])}
    out = []
    for p in new.get("probes", []):
        cw = p.get("compare_with")
        if not cw:
            continue
        ref = g.get(cw["id"], MISSING)
        if ref is MISSING or ref != p["answer"]:
            out.append(Difference(p["id"], ref, p["answer"]))
    return out


def summary_line(n_differences: int, n_probes: int) -> str:
    return f"{n_differences} differences over {n_probes} probes"
