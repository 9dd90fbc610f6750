"""Recording: run the catalogue against a v1 memory hierarchy, in order, each probe in fresh
groups under the tool's own group, and return every answer with the run's metadata."""

from __future__ import annotations

import datetime
import os
import platform
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from .catalogue import Probe, expand
from .compare import Recording
from .context import GROUP_PREFIX, Ctx, GuardError, remove_tree
from .tables import CATALOGUE

TOOL_VERSION = "1.0"
UMASK = 0o022

#: base-group settings written once so fresh groups never inherit machine-specific values
BASE_SETUP = (("memory.swappiness", b"60"), ("memory.oom_control", b"0"),
              ("cgroup.clone_children", b"0"), ("notify_on_release", b"0"))  # fmt: skip


def build_catalogue() -> list[Probe]:
    """The fixed, ordered list of probes."""
    return expand(CATALOGUE)


def _open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def _run_probe(ctx: Ctx, probe: Probe) -> Any:
    before = _open_fds()
    try:
        return probe.fn(ctx)
    except GuardError:
        raise
    except Exception as exc:  # a probe must never stop the run: record what went wrong
        return {"probe_error": f"{type(exc).__name__}: {exc}"}
    finally:
        for fd in sorted(_open_fds() - before):
            try:
                os.close(fd)
            except OSError:
                pass
        ctx.finish_probe()


def record(root: str, only: str | None = None,
           log: Callable[[str], None] | None = None) -> Recording:  # fmt: skip
    """Run the probes against the v1 memory hierarchy mounted at ``root``; return the recording."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(root)
    probes = [p for p in build_catalogue() if only is None or p.id.startswith(only)]
    base = os.path.join(root, GROUP_PREFIX + secrets.token_hex(6))
    ctx = Ctx(root, base)
    started = time.monotonic()
    old_umask = os.umask(UMASK)
    results: list[dict[str, Any]] = []
    leftovers: list[str] = []
    base_setup: dict[str, Any] = {}
    try:
        os.mkdir(base, 0o755)
        for name, value in BASE_SETUP:
            base_setup[name] = ctx.write(os.path.join(base, name), value)
        for probe in probes:
            answer = _run_probe(ctx, probe)
            entry: dict[str, Any] = {
                "id": probe.id,
                "answer": answer,
                "machine_dependent": probe.machine_dependent,
            }
            if probe.fakecgfs_only:
                entry["fakecgfs_only"] = True
            if probe.compare_with:
                entry["compare_with"] = {"id": probe.compare_with}
            results.append(entry)
    finally:
        os.umask(old_umask)
        leftovers = ctx.leftovers + remove_tree(base)
        if leftovers and log:
            log("WARNING: could not remove: " + ", ".join(leftovers))
    by_id = {r["id"]: r["answer"] for r in results}
    for entry in results:
        if "compare_with" in entry:
            entry["compare_with"]["answer"] = by_id.get(entry["compare_with"]["id"])
    duration = time.monotonic() - started
    return {
        "meta": {
            "kernel": os.uname().release,
            "machine": platform.machine(),
            "page_size": os.sysconf("SC_PAGE_SIZE"),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "root": root,
            "tool": "fakecgfs.conformance",
            "tool_version": TOOL_VERSION,
            "probe_count": len(results),
            "only": only,
            "umask": f"{UMASK:04o}",
            "duration_seconds": round(duration, 3),
            "base_setup": base_setup,
            "leftovers": leftovers,
            "areas": area_counts(r["id"] for r in results),
        },
        "probes": results,
    }


def area_counts(ids: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pid in ids:
        area = pid.split("/", 1)[0]
        counts[area] = counts.get(area, 0) + 1
    return counts
