"""Helpers shared by the ``fakecgfs`` command (cli.py) and the test kit (testing/): messages,
sizes as options take them, one write() to a control file, and the state of a group's
reclaim task.

Cheap to import: every ``fakecgfs`` call imports this module, so the kernel parsers are loaded
only when a size is parsed, and nothing here imports the controller (or trio).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from .kernel import UNLIMITED


def fail(message: str, code: int = 1) -> int:
    """Print ``fakecgfs: message`` on stderr; return ``code`` (the exit status)."""
    print(f"fakecgfs: {message}", file=sys.stderr)
    return code


def errno_text(e: OSError) -> str:
    """``EINVAL (Invalid argument)``."""
    name = errno.errorcode.get(e.errno or 0, str(e.errno))
    return f"{name} ({os.strerror(e.errno or 0)})"


def parse_size(text: str) -> int:
    """A size for an option, as the kernel parses limits (memparse): 4096, 4K, 64M, 0x1000.
    argparse.ArgumentTypeError if it is not one."""
    from .cgroupfs.parse import ParseError, memparse

    try:
        value, rest = memparse(str(text).strip().encode())
    except ParseError:
        rest = b"?"
    if rest or not str(text).strip():
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return value


def write_once(path: str, value: str) -> int:
    """Open ``path`` and write ``value`` with a single write(); 0 or the errno."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        return e.errno or errno.EIO
    try:
        os.write(fd, value.encode("utf-8", "surrogateescape"))
    except OSError as e:
        return e.errno or errno.EIO
    finally:
        os.close(fd)
    return 0


def version() -> str:
    """The installed version of fakecgfs."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("fakecgfs")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def read_file(path: str) -> str:
    """The whole text of a small file (a control file)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


UNAVAILABLE = "-"
"""What a value of fake.reclaim_daemon reads as on a --strict mount (the file is hidden)."""

STRICT_NOTE = ("--strict mount: the reclaim task's state and counters are unavailable "
               "(fake.reclaim_daemon is hidden)")  # fmt: skip


def read_reclaim_task(group: str) -> dict[str, str]:
    """fake.reclaim_daemon as a dict of its 'name value' lines.  On a --strict mount, where it
    is hidden, what the kernel's files tell: the watermarks and usage, with the task's state
    and counters as UNAVAILABLE."""
    try:
        text = read_file(os.path.join(group, "fake.reclaim_daemon"))
    except FileNotFoundError:
        if not os.path.exists(os.path.join(group, "memory.usage_in_bytes")):
            raise
        return {"state": UNAVAILABLE, "passes": UNAVAILABLE,
                "high_wmark": read_file(os.path.join(group, "memory.high_wmark_in_bytes")).strip(),
                "low_wmark": read_file(os.path.join(group, "memory.low_wmark_in_bytes")).strip(),
                "usage": read_file(os.path.join(group, "memory.usage_in_bytes")).strip(),
                }  # fmt: skip
    result = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        result[name] = value
    return result


def settled(group: str) -> bool:
    """The group's reclaim task is asleep or stopped with nothing to do: usage not above the
    high watermark, whenever one is armed.  The task sleeps until usage goes above the high
    watermark and then reclaims to the low one, so a sleeping task above the high watermark has
    a wake-up pending, and one between the watermarks (a charge that never crossed the high one,
    a low watermark lowered later) will do nothing more.

    On a --strict mount the state is hidden: settled there means no high watermark armed, or
    usage at or under the low one (the only usage a running task certainly stops at)."""
    reclaim_task = read_reclaim_task(group)
    if reclaim_task["state"] == UNAVAILABLE:
        return (int(reclaim_task["high_wmark"]) >= UNLIMITED
                or int(reclaim_task["usage"]) <= int(reclaim_task["low_wmark"]))  # fmt: skip
    if reclaim_task["state"] not in ("sleeping", "stopped"):
        return False
    if int(reclaim_task["high_wmark"]) >= UNLIMITED:
        return True
    return int(reclaim_task["usage"]) <= int(reclaim_task["high_wmark"])
