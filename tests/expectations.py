"""What the reliability tests (issue 5) expect of a mount: the errnos a write may return, the
read format of every control file, and where their figures go.  No hypothesis here: the stress
workers import it too."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from fakecgfs.cgroupfs.cftypes import CfType
from fakecgfs.cgroupfs.parse import MAX_WRITE

# What an unlimited byte value reads back as: PAGE_COUNTER_MAX (LONG_MAX / PAGE_SIZE on 64-bit)
# pages of 4096 bytes, as kernel 6.18 answers (tests/golden/kernel-6.18.json).
UNLIMITED = 9223372036854771712

GOLDEN = Path(__file__).resolve().parent / "golden" / "kernel-6.18.json"


def _recorded_stat_names() -> list[str]:
    """memory.stat's names, in order, as kernel 6.18 answered a read of a child group's."""
    probes = json.loads(GOLDEN.read_text())["probes"]
    text = next(p["answer"]["read"] for p in probes if p["id"] == "read/memory.stat")
    return [line.split(" ")[0] for line in text.splitlines()]


RECORDED_STAT_NAMES = _recorded_stat_names()


def record_figures(section: str, figures: dict) -> None:
    """Merge a test's figures into $FAKECGFS_FIGURES (JSON), if set; print them either way (seen
    with pytest -s)."""
    print(f"\n[{section}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    path = os.environ.get("FAKECGFS_FIGURES")
    if not path:
        return
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        data = {}
    data[section] = figures
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# -- the errnos a write may return --------------------------------------------------------------


def allowed_write_errnos(cft: CfType, data: bytes) -> set[int]:
    """What the kernel may answer to one write() of ``data`` to a live group's file: the file's
    own errors from the control-file table (docs/files.md), plus what every file shares: E2BIG
    over 4096 bytes, EINVAL without a write handler.

    Over 4096 bytes the kernel answers E2BIG before anything else (kernfs_fop_write_iter checks
    atomic_write_len first), read-only files included.
    """
    if len(data) > MAX_WRITE:
        return {errno.E2BIG}
    if not cft.writable:
        return {errno.EINVAL}
    return {getattr(errno, name) for name, _ in cft.errors}


def errname(code: int | None) -> str:
    return "ok" if code is None else errno.errorcode.get(code, str(code))


# -- read formats -------------------------------------------------------------------------------


class FormatError(AssertionError):
    pass


def check_read_format(name: str, text: bytes, *, path: str = "") -> None:
    """Fail unless ``text``, just read from control file ``name``, has the file's format."""
    where = f"{path or '?'}/{name}"

    def fail(why: str) -> None:
        raise FormatError(f"{where}: {why}: {text[:300]!r}")

    if name == "release_agent":
        if not text.endswith(b"\n"):
            fail("no newline")
        return
    if name == "memory.kmem.slabinfo":
        if text:
            fail("not empty")
        return
    lines = text.decode("ascii", "replace").split("\n")
    if not text.endswith(b"\n") and text:
        fail("no final newline")
    lines = lines[:-1]
    if name in ("tasks", "cgroup.procs"):
        if any(not ln.isdigit() for ln in lines):
            fail("not one id per line")
        if [int(x) for x in lines] != sorted(int(x) for x in lines):
            fail("not sorted")
        return
    if name == "fake.daemons":
        if not lines or not lines[0].isdigit() or int(lines[0]) != len(lines) - 1:
            fail("count does not match the lines")
        return
    if name == "memory.stat":
        names = [ln.split(" ")[0] for ln in lines]
        if names != RECORDED_STAT_NAMES:
            fail("unexpected items")
        for ln in lines:
            value = ln.split(" ", 1)[1]
            if not value.isdigit():
                fail(f"not a number in {ln!r}")
        return
    if name == "memory.numa_stat":
        for ln in lines:
            head, _, node = ln.partition(" ")
            _, _, value = head.partition("=")
            if not value.isdigit() or node != f"N0={value}":
                fail(f"bad line {ln!r}")
        return
    if name == "memory.oom_control":
        keys = [ln.split(" ")[0] for ln in lines]
        if keys != ["oom_kill_disable", "under_oom", "oom_kill"]:
            fail("unexpected keys")
        if any(not ln.split(" ")[1].isdigit() for ln in lines):
            fail("not a number")
        return
    if name == "fake.reclaim_daemon":
        pairs = [ln.partition(" ") for ln in lines]
        keys = [k for k, _, _ in pairs]
        if keys != ["state", "high_wmark", "low_wmark", "low_wmark_default", "usage", "wakeups",
                    "passes", "pages_scanned", "pages_reclaimed", "no_progress_passes",
                    "time_running_ns", "last_warning"]:  # fmt: skip
            fail("unexpected keys")
        values = {k: v for k, _, v in pairs}
        if values["state"] not in ("stopped", "sleeping", "running", "backoff"):
            fail("unknown state")
        for k in keys[1:-1]:
            if not values[k].isdigit():
                fail(f"{k} is not a number")
        return
    # Every other readable file is one number and a newline.
    if len(lines) != 1 or not lines[0].isdigit():
        fail("not one number")
    if name.endswith("_in_bytes") and int(lines[0]) % 4096:
        fail("not a multiple of the page size")
