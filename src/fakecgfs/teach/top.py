"""``fakecgfs top MOUNTPOINT``: a live view of every group, read through the filesystem only.

One row per group: a usage bar scaled to the limit with the low (``L``) and high (``H``)
watermarks marked on it, the numbers, the reclaim task's state and counters, failcnt and OOM
kills; the groups' last warnings are listed under the table.  Nothing here imports the
controller: what ``top`` shows is what ``cat`` would show, so it works the same on a mount
served by another process (or, without the ``fake.*`` files, on a ``--strict`` mount).

Narrow terminals drop columns, least useful first, down to group, bar, usage and task state.
Without a UTF-8 terminal the bar is drawn in ASCII.  Colour only on a terminal, never with
NO_COLOR or TERM=dumb (fakecgfs.tty); where the screen cannot be redrawn (TERM=dumb, a pipe),
the live view prints plain frames one after another.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..kernel import UNLIMITED  # what a limit or a disarmed watermark reads as

BAR_MIN, BAR_MAX = 10, 40  # width of the usage bar, in cells


# -- reading the mount ----------------------------------------------------------------------


@dataclass
class GroupRow:
    """One group as its files read (bytes; None: unlimited or disarmed or not shown)."""

    path: str
    usage: int
    limit: int | None
    hwmark: int | None
    lwmark: int | None
    failcnt: int
    oom_kill: int
    under_oom: bool
    state: str  # the reclaim task's state; "-" without fake.reclaim_daemon (--strict)
    passes: int | None = None
    pages_reclaimed: int | None = None
    last_warning: str = ""


def _read(directory: str | int, name: str) -> str:
    """A file of a group directory, named by its path or by an open descriptor."""
    if isinstance(directory, int):
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=directory)
    else:
        fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_CLOEXEC)
    with open(fd, encoding="utf-8", errors="replace") as f:
        return f.read()


def _pairs(text: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        pairs[name] = value
    return pairs


def _bytes(text: str) -> int | None:
    value = int(text.strip())
    return None if value >= UNLIMITED else value


def read_group(directory: str | int, path: str) -> GroupRow:
    """One group's row, from its directory's path or an open descriptor of it; OSError or
    ValueError if it went away while being read."""
    f = lambda name: (directory, name)
    usage = int(_read(*f("memory.usage_in_bytes")))
    limit = _bytes(_read(*f("memory.limit_in_bytes")))
    failcnt = int(_read(*f("memory.failcnt")))
    try:
        oom = _pairs(_read(*f("memory.oom_control")))
    except FileNotFoundError:  # a mount of an era before oom_control (--era rfc-2008)
        oom = {}
    row = GroupRow(path, usage, limit, None, None, failcnt, int(oom.get("oom_kill", 0)),
                   oom.get("under_oom") == "1", "-")  # fmt: skip
    try:
        reclaim_task = _pairs(_read(*f("fake.reclaim_daemon")))
    except FileNotFoundError:  # --strict: the watermark files still tell the settings
        row.hwmark = _bytes(_read(*f("memory.high_wmark_in_bytes")))
        row.lwmark = _bytes(_read(*f("memory.low_wmark_in_bytes"))) if row.hwmark else None
        return row
    row.hwmark = _bytes(reclaim_task["high_wmark"])
    row.lwmark = _bytes(reclaim_task["low_wmark"]) if row.hwmark is not None else None
    row.state = reclaim_task["state"]
    row.passes = int(reclaim_task["passes"])
    row.pages_reclaimed = int(reclaim_task["pages_reclaimed"])
    row.last_warning = reclaim_task.get("last_warning", "")
    return row


class _OpenDir:
    """A directory kept open while some of its subdirectories are still to be entered."""

    def __init__(self, fd: int, pending: int) -> None:
        self.fd = fd
        self.pending = pending

    def entered_one(self) -> None:
        self.pending -= 1
        if not self.pending:
            os.close(self.fd)


def _subdirectories(fd: int) -> list[str]:
    """The subdirectories of an open directory, by name.  FUSE gives no entry types, so each
    candidate is stat()ed, which costs a path lookup in the server: stop once a directory's
    link count (2 + its subdirectories, on kernfs as here) says all are found, looking from
    the end, where cgroupfs lists them."""
    wanted = os.fstat(fd).st_nlink - 2
    found: list[str] = []
    for name in reversed(os.listdir(fd)):
        if len(found) == wanted:
            break
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            continue  # removed meanwhile
        if stat.S_ISDIR(mode):
            found.append(name)
    return sorted(found)


def walk_groups(root: str) -> Iterator[tuple[int, str]]:
    """Every group directory under ``root``, parents before children, siblings by name: an
    open descriptor of it (valid until the next step) and its path from the root.  A loop,
    not recursion, and each directory is opened relative to its parent's descriptor: no depth
    or path length (PATH_MAX) limits it.  Only ancestors with subdirectories still to enter
    stay open, so a deep chain costs a descriptor or two.  The root must be readable; a group
    removed meanwhile is skipped."""
    stack: list[tuple[_OpenDir | None, str, str]] = [(None, root, "/")]
    try:
        while stack:
            parent, name, path = stack.pop()
            try:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=parent.fd if parent else None)  # fmt: skip
            except OSError:
                if parent is None:
                    raise
                continue  # removed while we walked
            finally:
                if parent is not None:
                    parent.entered_one()
            try:
                children = _subdirectories(fd)
            except OSError:
                os.close(fd)
                if parent is None:
                    raise
                continue
            opened = _OpenDir(fd, len(children) + 1)  # + 1: the caller's turn with it
            prefix = path.rstrip("/")
            stack.extend((opened, child, f"{prefix}/{child}") for child in reversed(children))
            try:
                yield fd, path
            finally:
                opened.entered_one()
    finally:
        for parent, _, _ in stack:
            if parent is not None and parent.pending > 0:
                parent.pending = 1
                parent.entered_one()


def snapshot(mountpoint: str) -> list[GroupRow]:
    """Every group of the mount, parents before children, siblings by name."""
    rows = []
    for fd, path in walk_groups(os.path.abspath(mountpoint)):
        try:
            rows.append(read_group(fd, path))
        except (OSError, ValueError, KeyError):
            if path == "/":
                raise
            continue  # removed while we walked
    return rows


# -- drawing --------------------------------------------------------------------------------


def human(value: int | None) -> str:
    """Bytes as a short size: 0, 512, 4.0K, 48.0M, 1.5G; "max" for unlimited or disarmed."""
    if value is None:
        return "max"
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if value >= 1 << shift:
            return f"{value / (1 << shift):.1f}{unit}"
    return str(value)


def _zone_style(row: GroupRow) -> str:
    if row.limit is not None and row.usage >= row.limit:
        return "bold red"
    if row.hwmark is not None and row.usage > row.hwmark:
        return "red"
    if row.lwmark is not None and row.usage > row.lwmark:
        return "yellow"
    return "green"


def common_scale(rows: list[GroupRow]) -> int:
    """The scale of the bars of unlimited groups: a quarter more than the largest usage or
    watermark shown, so that their bars compare with each other."""
    values = [v for r in rows for v in (r.usage, r.hwmark, r.lwmark) if v is not None]
    return max(max(values, default=0) * 5 // 4, 1)


def usage_bar(row: GroupRow, width: int, *, scale: int | None = None,
              ascii_only: bool = False) -> Text:  # fmt: skip
    """``█████····L····H····|``: usage scaled to the limit (unlimited: to ``scale``)."""
    fill_char, empty_char = ("#", ".") if ascii_only else ("█", "·")
    cells = max(width - 1, 1)  # the last cell is the limit's mark
    if row.limit is not None:
        scale = row.limit
    elif scale is None:
        scale = common_scale([row])
    scale = max(scale, 1)

    def cell(value: int) -> int:
        return min(cells - 1, value * cells // scale)

    filled = min(cells, -(-row.usage * cells // scale))  # round up: any usage shows
    chars = [fill_char if i < filled else empty_char for i in range(cells)]
    styles = [_zone_style(row) if i < filled else "dim" for i in range(cells)]
    for value, mark, style in ((row.lwmark, "L", "bold green"), (row.hwmark, "H", "bold red")):
        if value is not None:
            i = cell(value)
            chars[i] = mark
            styles[i] = style + (" reverse" if i < filled else "")
    text = Text()
    for ch, style in zip(chars, styles, strict=True):
        text.append(ch, style)
    text.append("|" if row.limit is not None else " ", "bold")
    return text


# Columns after GROUP, USAGE, the bar and TASK (always shown), in display order...
OPTIONAL_COLUMNS = ("LIMIT", "HIGH", "LOW", "PASSES", "FREED", "FAIL", "OOM")
# ...and in the order a narrow terminal gives them up (the bar still marks limit and watermarks).
DROP_ORDER = ("FREED", "LOW", "HIGH", "LIMIT", "PASSES", "OOM", "FAIL")
COLUMN_WIDTH = {"USAGE": 7, "TASK": 8, "FAIL": 5, "OOM": 4, "LIMIT": 7, "HIGH": 7, "LOW": 7,
                "PASSES": 6, "FREED": 7}  # fmt: skip
BAR_PREFERRED = 20  # columns are dropped before the bar gets narrower than this


def _cell(row: GroupRow, column: str) -> Text:
    if column == "USAGE":
        return Text(human(row.usage), _zone_style(row))
    if column == "TASK":
        style = {"running": "bold red", "backoff": "bold magenta", "sleeping": "cyan"}
        return Text(row.state, style.get(row.state, "dim"))
    if column == "FAIL":
        return Text(str(row.failcnt), "bold red" if row.failcnt else "")
    if column == "OOM":
        text = str(row.oom_kill) + ("*" if row.under_oom else "")
        return Text(text, "bold red" if row.oom_kill or row.under_oom else "")
    if column == "LIMIT":
        return Text(human(row.limit))
    if column == "HIGH":
        return Text(human(row.hwmark) if row.hwmark is not None else "-")
    if column == "LOW":
        return Text(human(row.lwmark) if row.lwmark is not None else "-")
    if column == "PASSES":
        return Text("-" if row.passes is None else str(row.passes))
    if column == "FREED":
        freed = row.pages_reclaimed
        return Text("-" if freed is None else human(freed * 4096))
    raise ValueError(column)


def layout(rows: list[GroupRow], width: int) -> tuple[int, list[str], int]:
    """(group column width, optional columns kept, bar width) that fit in ``width``: columns
    go (DROP_ORDER) before the bar shrinks under BAR_PREFERRED, then the bar down to BAR_MIN."""
    group_width = min(max([5, *(len(r.path) for r in rows)]), max(8, width // 4))
    dropped: list[str] = []

    def needed(bar: int) -> int:
        columns = ["USAGE", "TASK", *(c for c in OPTIONAL_COLUMNS if c not in dropped)]
        return group_width + bar + sum(COLUMN_WIDTH[c] for c in columns) + len(columns) + 1

    for column in DROP_ORDER:
        if needed(BAR_PREFERRED) <= width:
            break
        dropped.append(column)
    kept = [c for c in OPTIONAL_COLUMNS if c not in dropped]
    bar = max(BAR_MIN, min(BAR_MAX, width - needed(0)))
    return group_width, kept, bar


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _short_path(path: str, width: int) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def render(mountpoint: str, rows: list[GroupRow], width: int, *, ascii_only: bool = False,
           live: bool = False) -> RenderableType:  # fmt: skip
    group_width, kept, bar_width = layout(rows, width)
    scale = common_scale(rows)
    running = sum(1 for r in rows if r.state in ("running", "backoff"))
    tasks = sum(1 for r in rows if r.state not in ("stopped", "-"))
    title = Text.assemble(
        (time.strftime("%H:%M:%S"), "dim"), " ", ("fakecgfs top ", "bold"),
        (mountpoint, "bold cyan"),
        f"  {_count(len(rows), 'group')}, {_count(tasks, 'reclaim task')}, "
        f"{running} reclaiming",
        no_wrap=True, overflow="ellipsis",
    )  # fmt: skip
    fill = "#" if ascii_only else "█"
    legend = Text.assemble(
        ("bar: ", "dim"), (fill, "green"), (" usage  ", "dim"), ("L", "bold green"),
        (" low  ", "dim"), ("H", "bold red"), (" high wmark  ", "dim"), ("|", "bold"),
        (" limit", "dim"), ("   Ctrl-C quits" if live else "", "dim"),
        no_wrap=True, overflow="ellipsis",
    )  # fmt: skip
    table = Table(box=None, padding=(0, 1, 0, 0), show_edge=False, pad_edge=False,
                  header_style="bold", expand=False)  # fmt: skip
    table.add_column("GROUP", width=group_width, no_wrap=True, overflow="ellipsis")
    table.add_column("USAGE", width=COLUMN_WIDTH["USAGE"], justify="right", no_wrap=True)
    table.add_column("", width=bar_width, no_wrap=True)
    table.add_column("TASK", width=COLUMN_WIDTH["TASK"], no_wrap=True)
    for column in OPTIONAL_COLUMNS:
        if column in kept:
            table.add_column(column, width=COLUMN_WIDTH[column], justify="right", no_wrap=True)
    for row in rows:
        cells = [Text(_short_path(row.path, group_width)), _cell(row, "USAGE"),
                 usage_bar(row, bar_width, scale=scale, ascii_only=ascii_only),
                 _cell(row, "TASK")]  # fmt: skip
        cells += [_cell(row, c) for c in OPTIONAL_COLUMNS if c in kept]
        table.add_row(*cells)
    parts: list[RenderableType] = [title, legend, table]
    warnings = [(r.path, r.last_warning) for r in rows if r.last_warning]
    if warnings:
        parts.append(Text("last warnings:", "bold yellow"))
        for path, message in warnings:
            parts.append(Text.assemble(("! ", "bold yellow"), (path, "bold"), f": {message}"))
    return Group(*parts)


# -- the command ----------------------------------------------------------------------------


def _console(width: int | None) -> Console:
    from ..tty import wants_colour

    colour = wants_colour(sys.stdout)
    return Console(width=width, highlight=False, soft_wrap=False, no_color=not colour,
                   color_system="auto" if colour else None)  # fmt: skip


def _ascii_only(console: Console) -> bool:
    return not (console.encoding or "").lower().replace("-", "").startswith("utf8")


def _frame(args: argparse.Namespace, console: Console, live: bool) -> RenderableType:
    try:
        rows = snapshot(args.mountpoint)
    except OSError as e:
        return Text(f"fakecgfs top: {args.mountpoint}: {e.strerror or e}", "bold red")
    return render(args.mountpoint, rows, console.width, ascii_only=_ascii_only(console),
                  live=live)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if not os.path.exists(os.path.join(args.mountpoint, "memory.usage_in_bytes")):
        print(f"fakecgfs: {args.mountpoint}: not a memory cgroup hierarchy", file=sys.stderr)
        return 1
    console = _console(args.width)
    if args.once:
        console.print(_frame(args, console, live=False))
        return 0
    from ..tty import can_redraw

    if not can_redraw(sys.stdout):
        return _plain_frames(args, console)
    from rich.live import Live

    try:
        with Live(_frame(args, console, True), console=console, auto_refresh=False,
                  screen=console.is_terminal, redirect_stdout=False) as view:  # fmt: skip
            while True:
                time.sleep(args.interval)
                view.update(_frame(args, console, True), refresh=True)
    except KeyboardInterrupt:
        pass
    return 0


def _plain_frames(args: argparse.Namespace, console: Console) -> int:
    """The live view where nothing can be redrawn: a frame, a blank line, the next frame."""
    try:
        while True:
            console.print(_frame(args, console, live=True))
            console.print()
            console.file.flush()
            time.sleep(args.interval)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    return 0
