"""The control files: one declarative table, like the kernel's ``struct cftype`` arrays.

Each entry names a file, where it appears, and its read and write handlers; the mode follows
from the handlers as ``cgroup_file_mode()`` derives it (read: 0444, write: 0200, both: 0644),
unless the kernel says otherwise.  The filesystem layer, the docs and the tests all read this
table; no file's behaviour lives anywhere else.

Handlers run inside the controller's trio loop.  A read handler returns the file's whole
content; a write handler receives one write()'s bytes (already cut at a NUL, never empty, at
most 4096 bytes) and raises an ``OSError`` with the kernel's errno to refuse it.
"""

from __future__ import annotations

import enum
import errno
import stat
from dataclasses import dataclass
from typing import Awaitable, Callable

from ..controller import (
    PAGE_COUNTER_MAX,
    PAGE_SIZE,
    ControllerError,
    MemCgroup,
    MemoryController,
    PageKind,
    ResCounter,
)
from .events_control import register_event
from .parse import kstrtoull, page_counter_memparse, parse_pid, strstrip


class Where(enum.Enum):
    BOTH = "root and children"
    ROOT = "root only"
    CHILD = "children only"


class Origin(enum.Enum):
    KERNEL = "kernel 6.18"
    VENDOR = "this machine's kernel (vendor patch)"
    RFC = "2008 RFC"
    FAKECGFS = "fakecgfs only"


@dataclass(frozen=True)
class Caller:
    """Who is writing, from the FUSE request context, and where the hierarchy is mounted."""

    pid: int
    uid: int
    gid: int
    mountpoint: str | None = None


Reader = Callable[[MemoryController, MemCgroup], str]
Writer = Callable[[MemoryController, MemCgroup, bytes, Caller], Awaitable[None] | None]


@dataclass(frozen=True)
class CfType:
    name: str
    doc: str
    read: Reader | None = None
    write: Writer | None = None
    where: Where = Where.BOTH
    origin: Origin = Origin.KERNEL
    explicit_mode: int | None = None  # only where the kernel's mode does not follow the handlers
    blocking: bool = False  # the write may wait (reclaim, OOM): run it interruptibly

    @property
    def mode(self) -> int:
        if self.explicit_mode is not None:
            return self.explicit_mode
        mode = 0
        if self.read is not None:
            mode |= stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
        if self.write is not None:
            mode |= stat.S_IWUSR
        return mode

    def present_in(self, memcg: MemCgroup) -> bool:
        if self.where is Where.ROOT:
            return memcg.is_root()
        if self.where is Where.CHILD:
            return not memcg.is_root()
        return True


def _einval(reason: str) -> ControllerError:
    return ControllerError(errno.EINVAL, reason)


# -- read helpers ---------------------------------------------------------------------------


def _u64(value: int) -> str:
    return f"{value}\n"


def _pages(value: int) -> str:
    return f"{value * PAGE_SIZE}\n"


def _counter_reader(counter: str, field: str) -> Reader:
    def read(ctl: MemoryController, memcg: MemCgroup) -> str:
        res: ResCounter = getattr(memcg, counter)
        value = getattr(res, field)
        return _u64(value) if field == "failcnt" else _pages(value)

    return read


def _reset_writer(counter: str, field: str) -> Writer:
    """max_usage and failcnt files: any content resets (mem_cgroup_reset)."""

    def write(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
        res: ResCounter = getattr(memcg, counter)
        if field == "failcnt":
            res.reset_failcnt()
        else:
            res.reset_max_usage()

    return write


def _watermark_pages(value: int | None) -> str:
    return _pages(PAGE_COUNTER_MAX if value is None else value)


def _byte_value(data: bytes) -> int | None:
    """A byte-valued write in pages; None for "unlimited" (-1, or anything that large)."""
    nr_pages = page_counter_memparse(data)
    return None if nr_pages >= PAGE_COUNTER_MAX else nr_pages


# -- memory.* handlers ----------------------------------------------------------------------


async def write_limit(ctl, memcg, data, caller):
    await ctl.set_limit(memcg, page_counter_memparse(data))


async def write_memsw_limit(ctl, memcg, data, caller):
    await ctl.set_memsw_limit(memcg, page_counter_memparse(data))


def write_kmem_limit(ctl, memcg, data, caller):
    ctl.set_kmem_limit(memcg, page_counter_memparse(data))


def write_tcp_limit(ctl, memcg, data, caller):
    ctl.set_tcp_limit(memcg, page_counter_memparse(data))


def write_soft_limit(ctl, memcg, data, caller):
    ctl.set_soft_limit(memcg, page_counter_memparse(data))


def read_soft_limit(ctl, memcg):
    return _pages(memcg.soft_limit)


def read_high_wmark(ctl, memcg):
    return _watermark_pages(memcg.memory.hwmark)


def read_low_wmark(ctl, memcg):
    return _watermark_pages(memcg.memory.lwmark)


async def write_high_wmark(ctl, memcg, data, caller):
    await ctl.set_high_wmark(memcg, _byte_value(data))


def write_low_wmark(ctl, memcg, data, caller):
    ctl.set_low_wmark(memcg, _byte_value(data))


async def write_force_empty(ctl, memcg, data, caller):
    await ctl.force_empty(memcg)


def read_stat(ctl, memcg):
    return "".join(f"{name} {value}\n" for name, value in ctl.memory_stat(memcg))


def read_numa_stat(ctl, memcg):
    items = ctl.numa_stat(memcg)
    return "".join(f"{name}={value} N0={value}\n" for name, value in items)


def read_oom_control(ctl, memcg):
    return (
        f"oom_kill_disable {int(memcg.oom_kill_disable)}\n"
        f"under_oom {int(memcg.under_oom())}\n"
        f"oom_kill {memcg.oom_kill}\n"
    )


def write_oom_control(ctl, memcg, data, caller):
    value = kstrtoull(data)
    if value not in (0, 1):
        raise _einval("oom_control takes 0 or 1")
    ctl.set_oom_kill_disable(memcg, bool(value))


def read_swappiness(ctl, memcg):
    return _u64(memcg.swappiness)


MAX_SWAPPINESS = 200


def write_swappiness(ctl, memcg, data, caller):
    value = kstrtoull(data)
    if value > MAX_SWAPPINESS:
        raise _einval("swappiness is 0..200")
    memcg.swappiness = value


def read_use_hierarchy(ctl, memcg):
    return _u64(1)


def write_use_hierarchy(ctl, memcg, data, caller):
    """Since 5.11 every group is hierarchical: 1 is accepted, anything else refused."""
    if kstrtoull(data) != 1:
        raise _einval("use_hierarchy can only be 1")


def read_move_charge(ctl, memcg):
    return _u64(0)


def write_move_charge(ctl, memcg, data, caller):
    """Charge moving is gone from 6.x: only 0 is accepted."""
    if kstrtoull(data) != 0:
        raise _einval("move_charge_at_immigrate can only be 0")


def read_empty(ctl, memcg):
    return ""


def read_not_supported(ctl, memcg):
    """memory.pressure_level and friends are readable by mode but have no show handler."""
    raise _einval("this file cannot be read")


def read_shown_ram(ctl, memcg):
    return _u64(memcg.shown_ram)


def write_shown_ram(ctl, memcg, data, caller):
    memcg.shown_ram = min(kstrtoull(data) // PAGE_SIZE, PAGE_COUNTER_MAX) * PAGE_SIZE


# -- cgroup core handlers -------------------------------------------------------------------


def _flag_reader(attr: str) -> Reader:
    return lambda ctl, memcg: _u64(int(getattr(memcg, attr)))


def _flag_writer(attr: str) -> Writer:
    def write(ctl, memcg, data, caller):
        setattr(memcg, attr, kstrtoull(data) != 0)

    return write


def read_tasks(ctl, memcg):
    return "".join(f"{tid}\n" for tid in ctl.tasks(memcg))


def read_procs(ctl, memcg):
    return "".join(f"{pid}\n" for pid in ctl.procs(memcg))


def _proc_uids(pid: int) -> tuple[int, int] | None:
    """(real/effective uid, saved uid) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    fields = line.split()
                    return int(fields[1]), int(fields[3])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _attach_writer(whole_process: bool) -> Writer:
    def write(ctl, memcg, data, caller):
        pid = parse_pid(data)
        if pid == 0:  # the writer itself, as the kernel reads it
            pid = caller.pid
        if caller.uid != 0:
            uids = _proc_uids(pid)
            if uids is not None and caller.uid not in uids:
                raise ControllerError(errno.EACCES, "not the owner of that process")
        ctl.attach(memcg, pid, whole_process=whole_process)

    return write


def read_sane_behavior(ctl, memcg):
    return "0\n"


def read_release_agent(ctl, memcg):
    return f"{ctl.release_agent}\n"


def write_release_agent(ctl, memcg, data, caller):
    ctl.release_agent = strstrip(data).decode("utf-8", "surrogateescape")


def write_event_control(ctl, memcg, data, caller):
    register_event(ctl, memcg, data, caller)


# -- fake.* handlers ------------------------------------------------------------------------


def _parse_charge(data: bytes) -> tuple[int, PageKind, bool]:
    """``SIZE [anon|file] [dirty]``: a size as limits parse it, then the page kind."""
    words = data.split()
    if not words or len(words) > 3:
        raise _einval("expected: SIZE [anon|file] [dirty]")
    nr_pages = page_counter_memparse(words[0])
    kinds = {b"anon": PageKind.ANON, b"file": PageKind.FILE}
    kind = PageKind.ANON
    dirty = False
    if len(words) >= 2:
        if words[1] not in kinds:
            raise _einval("kind is anon or file")
        kind = kinds[words[1]]
    if len(words) == 3:
        if words[2] != b"dirty" or kind is not PageKind.FILE:
            raise _einval("only file pages can be dirty")
        dirty = True
    if nr_pages >= PAGE_COUNTER_MAX:
        raise _einval("cannot charge an unlimited size")
    return nr_pages, kind, dirty


async def write_charge(ctl, memcg, data, caller):
    nr_pages, kind, dirty = _parse_charge(data)
    await ctl.charge(memcg, nr_pages, kind, dirty=dirty)


def write_uncharge(ctl, memcg, data, caller):
    nr_pages, kind, dirty = _parse_charge(data)
    if dirty:
        raise _einval("uncharge takes no dirty flag")
    ctl.uncharge(memcg, nr_pages, kind)


def read_reclaim_daemon(ctl, memcg):
    daemon = memcg.daemon
    stats = daemon.stats
    res = memcg.memory
    lines = [
        f"state {daemon.state.value}",
        f"high_wmark {_watermark_pages(res.hwmark).strip()}",
        f"low_wmark {_watermark_pages(res.lwmark).strip()}",
        f"low_wmark_default {int(res.lwmark_is_default())}",
        f"usage {res.usage * PAGE_SIZE}",
        f"wakeups {stats.wakeups}",
        f"passes {stats.passes}",
        f"pages_scanned {stats.pages_scanned}",
        f"pages_reclaimed {stats.pages_reclaimed}",
        f"no_progress_passes {stats.no_progress_passes}",
        f"time_running_ns {int(stats.time_running * 1e9)}",
        f"last_warning {stats.last_warning}",
    ]
    return "\n".join(lines) + "\n"


async def write_reclaim_daemon(ctl, memcg, data, caller):
    command = strstrip(data)
    if command == b"start":
        await ctl.start_daemon(memcg)
    elif command == b"stop":
        await ctl.stop_daemon(memcg)
    else:
        raise _einval("write start or stop")


def read_daemons(ctl, memcg):
    groups = ctl.daemons()
    return f"{len(groups)}\n" + "".join(f"{g.path}\n" for g in groups)


# -- the table ------------------------------------------------------------------------------


def _counter_files(prefix: str, counter: str, *, limit_writer: Writer, usage: bool = True,
                   doc: str) -> list[CfType]:  # fmt: skip
    files = []
    title = doc[0].upper() + doc[1:]
    if usage:
        files.append(CfType(f"{prefix}usage_in_bytes", f"{title} usage in bytes.",
                            read=_counter_reader(counter, "usage")))  # fmt: skip
    files += [
        CfType(f"{prefix}max_usage_in_bytes", f"Peak {doc} usage; any write resets it to the current usage.",
               read=_counter_reader(counter, "max_usage"),
               write=_reset_writer(counter, "max_usage")),
        CfType(f"{prefix}limit_in_bytes", f"{title} limit in bytes; -1 for unlimited.",
               read=_counter_reader(counter, "limit"), write=limit_writer,
               blocking=counter in ("memory", "memsw")),
        CfType(f"{prefix}failcnt", f"Refused {doc} charges; any write resets it to 0.",
               read=_counter_reader(counter, "failcnt"), write=_reset_writer(counter, "failcnt")),
    ]  # fmt: skip
    return files


CFTYPES: tuple[CfType, ...] = tuple(sorted(
    [
        CfType("cgroup.clone_children", "cpuset-only flag, copied by children; 0 or 1.",
               read=_flag_reader("clone_children"), write=_flag_writer("clone_children")),
        CfType("cgroup.event_control", "Register an eventfd: '<event_fd> <control_fd> [args]'.",
               write=write_event_control),
        CfType("cgroup.procs", "Processes in the group; write a PID to move a whole process.",
               read=read_procs, write=_attach_writer(whole_process=True)),
        CfType("cgroup.sane_behavior", "Legacy flag, always 0.", read=read_sane_behavior,
               where=Where.ROOT),
        CfType("notify_on_release", "Run release_agent when the group empties; 0 or 1.",
               read=_flag_reader("notify_on_release"), write=_flag_writer("notify_on_release")),
        CfType("release_agent", "Path of the release agent program.", read=read_release_agent,
               write=write_release_agent, where=Where.ROOT),
        CfType("tasks", "Threads in the group; write a TID to move one thread.",
               read=read_tasks, write=_attach_writer(whole_process=False)),
        *_counter_files("memory.", "memory", limit_writer=write_limit, doc="memory"),
        *_counter_files("memory.memsw.", "memsw", limit_writer=write_memsw_limit,
                        doc="memory+swap"),
        *_counter_files("memory.kmem.", "kmem", limit_writer=write_kmem_limit,
                        doc="kernel memory"),
        *_counter_files("memory.kmem.tcp.", "tcp", limit_writer=write_tcp_limit,
                        doc="TCP buffer memory"),
        CfType("memory.kmem.slabinfo", "Slab statistics (none in the model).", read=read_empty),
        CfType("memory.force_empty", "Reclaim as much of the group's memory as possible.",
               write=write_force_empty, blocking=True),
        CfType("memory.move_charge_at_immigrate", "Removed feature: only 0 is accepted.",
               read=read_move_charge, write=write_move_charge),
        CfType("memory.numa_stat", "Per-node page counts (one node).", read=read_numa_stat),
        CfType("memory.oom_control", "oom_kill_disable (0 or 1), under_oom, oom_kill.",
               read=read_oom_control, write=write_oom_control),
        CfType("memory.pressure_level", "Only for cgroup.event_control registrations.",
               read=read_not_supported, explicit_mode=0o444),
        CfType("memory.soft_limit_in_bytes", "Soft limit in bytes (stored; no global pressure).",
               read=read_soft_limit, write=write_soft_limit),
        CfType("memory.stat", "Statistics: this group's, the limits, then total_ (subtree).",
               read=read_stat),
        CfType("memory.swappiness", "0..200; copied by children at creation.",
               read=read_swappiness, write=write_swappiness),
        CfType("memory.use_hierarchy", "Always 1 since Linux 5.11; only 1 is accepted.",
               read=read_use_hierarchy, write=write_use_hierarchy),
        CfType("memory.shown_ram_in_bytes", "Vendor file of this machine's kernel; a u64.",
               read=read_shown_ram, write=write_shown_ram, where=Where.CHILD,
               origin=Origin.VENDOR),
        CfType("memory.high_wmark_in_bytes",
               "Background reclaim starts above it; a successful write starts the task, -1 "
               "disarms and stops it.", read=read_high_wmark, write=write_high_wmark,
               origin=Origin.RFC),
        CfType("memory.low_wmark_in_bytes",
               "Background reclaim stops at it; -1 returns to the default below the high one.",
               read=read_low_wmark, write=write_low_wmark, origin=Origin.RFC),
        CfType("fake.charge", "Charge simulated memory: 'SIZE [anon|file] [dirty]'.",
               write=write_charge, origin=Origin.FAKECGFS, blocking=True),
        CfType("fake.uncharge", "Free simulated memory: 'SIZE [anon|file]'.",
               write=write_uncharge, origin=Origin.FAKECGFS),
        CfType("fake.reclaim_daemon", "The background reclaim task: state and statistics; "
               "write start or stop.", read=read_reclaim_daemon, write=write_reclaim_daemon,
               origin=Origin.FAKECGFS),
        CfType("fake.daemons", "Live reclaim tasks: their count, then one group per line.",
               read=read_daemons, where=Where.ROOT, origin=Origin.FAKECGFS),
    ],
    key=lambda cft: cft.name,
))  # fmt: skip

BY_NAME: dict[str, CfType] = {cft.name: cft for cft in CFTYPES}


def files_of(memcg: MemCgroup, *, strict: bool = False) -> list[CfType]:
    """The control files of a group, as its directory lists them."""
    return [
        cft for cft in CFTYPES
        if cft.present_in(memcg) and not (strict and cft.origin is Origin.FAKECGFS)
    ]  # fmt: skip


def lookup(memcg: MemCgroup, name: str, *, strict: bool = False) -> CfType | None:
    cft = BY_NAME.get(name)
    if cft is None or not cft.present_in(memcg) or (strict and cft.origin is Origin.FAKECGFS):
        return None
    return cft

