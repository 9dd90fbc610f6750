"""The control files: one declarative table, like the kernel's ``struct cftype`` arrays.

Each entry names a file, where it appears, and its read and write handlers; the mode follows
from the handlers as ``cgroup_file_mode()`` derives it (read: 0444, write: 0200, both: 0644),
unless the kernel says otherwise.  The filesystem layer, the docs and the tests all read this
table; no file's behaviour lives anywhere else.

Handlers run inside the controller's trio loop.  A read handler returns the file's whole
content; a write handler receives one write()'s bytes (already cut at a NUL, never empty, at
most 4096 bytes) and raises an ``OSError`` with the kernel's errno to refuse it.  Each writable
file declares one of two shapes:

* ``write``: a plain function that never waits; the filesystem answers the write at once.
* ``write_blocking``: an ``async def`` that may wait (reclaim, OOM, a task to start or stop);
  the FUSE session awaits it in a task of its own, which an interrupted writer cancels (EINTR).
  It may come with ``try_write``, its fast path: a plain function that does the write if it
  needs no wait and returns True, or changes nothing and returns False.  Only a write that
  must wait then costs a task.
"""

from __future__ import annotations

import enum
import errno
import inspect
import stat
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..controller import (
    MEMORY_STAT_NAMES,
    PAGE_COUNTER_MAX,
    PAGE_SIZE,
    ControllerError,
    MemCgroup,
    MemoryController,
    PageKind,
    ResCounter,
)
from ..members.procfs import PF_NO_SETAFFINITY, proc_ids, stat_flags
from .events_control import (
    CAP_SYS_ADMIN,
    MAX_DESCRIPTORS_PER_USER,
    MAX_REGISTRATIONS_PER_USER,
    register_event,
    writer_credentials,
)
from .parse import kstrtoull, page_counter_memparse, parse_pid, strstrip


class Cgroup(Protocol):
    """What a control file's presence depends on, in any era's group (``CfType.present_in``):
    the modern ``MemCgroup`` and the RFC era's own group both have it."""

    def is_root(self) -> bool: ...


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
    # Who opened the file being written, if not the writer: kernfs keeps the opener's
    # credentials (of->file->f_cred), and cgroup.procs and tasks judge by those.
    opener_uid: int | None = None

    @property
    def opener(self) -> int:
        return self.uid if self.opener_uid is None else self.opener_uid


Ctl = TypeVar("Ctl")  # an era's controller
Grp = TypeVar("Grp", bound=Cgroup)  # and its group

Reader = Callable[[Ctl, Grp], str]
SyncWriter = Callable[[Ctl, Grp, bytes, Caller], None]
BlockingWriter = Callable[[Ctl, Grp, bytes, Caller], Coroutine[Any, Any, None]]
TryWriter = Callable[[Ctl, Grp, bytes, Caller], bool]


@dataclass(frozen=True)
class CfType(Generic[Ctl, Grp]):
    """One control file.  At most one of ``write`` and ``write_blocking``; ``try_write`` only
    beside ``write_blocking`` (the module's docstring says what each is)."""

    name: str
    doc: str
    read: Reader[Ctl, Grp] | None = None
    write: SyncWriter[Ctl, Grp] | None = None
    write_blocking: BlockingWriter[Ctl, Grp] | None = None
    try_write: TryWriter[Ctl, Grp] | None = None
    where: Where = Where.BOTH
    origin: Origin = Origin.KERNEL
    explicit_mode: int | None = None  # only where the kernel's mode does not follow the handlers
    # The reference (docs/files.md and `fakecgfs explain`), in Markdown:
    fmt: str = ""  # what a read returns
    accepts: str = ""  # what a write takes, and what it does
    errors: tuple[tuple[str, str], ...] = ()  # (errno name, when): this file's own refusals

    def __post_init__(self) -> None:
        # Checked when the table is built: the filesystem trusts the declared shape.
        if self.write is not None and self.write_blocking is not None:
            raise TypeError(f"{self.name}: both a write and a write_blocking handler")
        if self.try_write is not None and self.write_blocking is None:
            raise TypeError(f"{self.name}: try_write is the fast path of a write_blocking")
        for handler in (self.read, self.write, self.try_write):
            if handler is not None and inspect.iscoroutinefunction(handler):
                raise TypeError(f"{self.name}: {handler.__name__} may wait: write_blocking")
        if self.write_blocking is not None and not inspect.iscoroutinefunction(self.write_blocking):
            raise TypeError(f"{self.name}: write_blocking must be an async def")

    @property
    def writable(self) -> bool:
        return self.write is not None or self.write_blocking is not None

    @property
    def blocking(self) -> bool:
        """The write may wait (reclaim, OOM), so it may end with EINTR."""
        return self.write_blocking is not None

    @property
    def mode(self) -> int:
        if self.explicit_mode is not None:
            return self.explicit_mode
        mode = 0
        if self.read is not None:
            mode |= stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
        if self.writable:
            mode |= stat.S_IWUSR
        return mode

    def present_in(self, memcg: Cgroup) -> bool:
        if self.where is Where.ROOT:
            return memcg.is_root()
        if self.where is Where.CHILD:
            return not memcg.is_root()
        return True


# The handlers of this era, as the helpers below make them.
_Reader = Reader[MemoryController, MemCgroup]
_Writer = SyncWriter[MemoryController, MemCgroup]


def _einval(reason: str) -> ControllerError:
    return ControllerError(errno.EINVAL, reason)


# -- read helpers ---------------------------------------------------------------------------


def _u64(value: int) -> str:
    return f"{value}\n"


def _pages(value: int) -> str:
    return f"{value * PAGE_SIZE}\n"


def _counter_reader(counter: str, field: str) -> _Reader:
    # Usage, its peak and failcnt move with real members: re-sample them first.
    exact = counter in ("memory", "memsw") and field != "limit"

    def read(ctl: MemoryController, memcg: MemCgroup) -> str:
        if exact:
            ctl.refresh(memcg)
        res: ResCounter = getattr(memcg, counter)
        value = getattr(res, field)
        return _u64(value) if field == "failcnt" else _pages(value)

    return read


def _reset_writer(counter: str, field: str) -> _Writer:
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


def try_write_limit(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> bool:
    return ctl.set_limit_now(memcg, page_counter_memparse(data))


async def write_limit(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
    await ctl.set_limit(memcg, page_counter_memparse(data))  # reclaims first if it must


async def write_memsw_limit(
    ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller
) -> None:
    await ctl.set_memsw_limit(memcg, page_counter_memparse(data))


def write_kmem_limit(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
    ctl.set_kmem_limit(memcg, page_counter_memparse(data))


def write_tcp_limit(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
    ctl.set_tcp_limit(memcg, page_counter_memparse(data))


def write_soft_limit(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
    ctl.set_soft_limit(memcg, page_counter_memparse(data))


def read_soft_limit(ctl: MemoryController, memcg: MemCgroup) -> str:
    return _pages(memcg.soft_limit)


def read_high_wmark(ctl: MemoryController, memcg: MemCgroup) -> str:
    return _watermark_pages(memcg.memory.hwmark)


def read_low_wmark(ctl: MemoryController, memcg: MemCgroup) -> str:
    return _watermark_pages(memcg.memory.lwmark)


async def write_high_wmark(
    ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller
) -> None:
    await ctl.set_high_wmark(memcg, _byte_value(data))


def write_low_wmark(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
    ctl.set_low_wmark(memcg, _byte_value(data))


async def write_force_empty(
    ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller
) -> None:
    await ctl.force_empty(memcg)


_STAT_FORMAT = "".join(f"{name} %d\n" for name in MEMORY_STAT_NAMES)


def read_stat(ctl: MemoryController, memcg: MemCgroup) -> str:
    ctl.refresh(memcg)
    return _STAT_FORMAT % ctl.memory_stat_values(memcg)


def read_numa_stat(ctl: MemoryController, memcg: MemCgroup) -> str:
    ctl.refresh(memcg)
    items = ctl.numa_stat(memcg)
    return "".join(f"{name}={value} N0={value}\n" for name, value in items)


def read_oom_control(ctl: MemoryController, memcg: MemCgroup) -> str:
    ctl.refresh(memcg)
    return (
        f"oom_kill_disable {int(memcg.oom_kill_disable)}\n"
        f"under_oom {int(memcg.under_oom())}\n"
        f"oom_kill {memcg.oom_kill}\n"
    )


def write_oom_control(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
    value = kstrtoull(data)
    if value not in (0, 1):
        raise _einval("oom_control takes 0 or 1")
    ctl.set_oom_kill_disable(memcg, bool(value))


def read_swappiness(ctl: MemoryController, memcg: MemCgroup) -> str:
    return _u64(memcg.swappiness)


MAX_SWAPPINESS = 200


def write_swappiness(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
    value = kstrtoull(data)
    if value > MAX_SWAPPINESS:
        raise _einval("swappiness is 0..200")
    memcg.swappiness = value


def read_use_hierarchy(ctl: MemoryController, memcg: MemCgroup) -> str:
    return _u64(1)


def write_use_hierarchy(
    ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller
) -> None:
    """Since 5.11 every group is hierarchical: 1 is accepted, anything else refused."""
    if kstrtoull(data) != 1:
        raise _einval("use_hierarchy can only be 1")


def read_move_charge(ctl: MemoryController, memcg: MemCgroup) -> str:
    return _u64(0)


def write_move_charge(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
    """Charge moving is gone from 6.x: only 0 is accepted."""
    if kstrtoull(data) != 0:
        raise _einval("move_charge_at_immigrate can only be 0")


def read_empty(ctl: MemoryController, memcg: MemCgroup) -> str:
    return ""


def read_not_supported(ctl: MemoryController, memcg: MemCgroup) -> str:
    """memory.pressure_level and friends are readable by mode but have no show handler."""
    raise _einval("this file cannot be read")


def read_shown_ram(ctl: MemoryController, memcg: MemCgroup) -> str:
    return _u64(memcg.shown_ram)


def write_shown_ram(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
    memcg.shown_ram = min(kstrtoull(data) // PAGE_SIZE, PAGE_COUNTER_MAX) * PAGE_SIZE


# -- cgroup core handlers -------------------------------------------------------------------


def _flag_reader(attr: str) -> _Reader:
    return lambda ctl, memcg: _u64(int(getattr(memcg, attr)))


def _flag_writer(attr: str) -> _Writer:
    def write(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
        setattr(memcg, attr, kstrtoull(data) != 0)

    return write


def read_tasks(ctl: MemoryController, memcg: MemCgroup) -> str:
    ctl.refresh(memcg)  # members' children join their group
    return "".join(f"{tid}\n" for tid in ctl.tasks(memcg))


def read_procs(ctl: MemoryController, memcg: MemCgroup) -> str:
    ctl.refresh(memcg)
    return "".join(f"{pid}\n" for pid in ctl.procs(memcg))


def _may_move(euid: int, tid: int, whole_process: bool) -> bool:
    """__cgroup1_procs_write(): euid 0, or the uid or suid of the task, which for cgroup.procs
    is the thread group's leader (cgroup_procs_write_start() takes it before the check)."""
    ids = proc_ids(tid)
    if ids is not None and whole_process and ids[0] != tid:
        ids = proc_ids(ids[0])
    if ids is None:
        raise ControllerError(errno.ESRCH, f"no process {tid}")
    return euid == 0 or euid in ids[1:]


def _migration_refused(pid: int) -> bool:
    """cgroup_procs_write_start() refuses (EINVAL) to move a task flagged PF_NO_SETAFFINITY,
    as kernel threads bound to CPUs are: "Just say no"."""
    flags = stat_flags(pid)
    return flags is not None and bool(flags & PF_NO_SETAFFINITY)


def _attach_writer(whole_process: bool) -> _Writer:
    def write(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
        pid = parse_pid(data)
        if pid == 0:  # the writer itself, as the kernel reads it
            pid = caller.pid
        if not memcg.is_root() and _migration_refused(pid):
            raise _einval("a kernel thread bound to its CPUs cannot be moved")
        if not _may_move(caller.opener, pid, whole_process):
            raise ControllerError(errno.EACCES, "not the owner of that process")
        ctl.attach(memcg, pid, whole_process=whole_process)

    return write


def read_sane_behavior(ctl: MemoryController, memcg: MemCgroup) -> str:
    return "0\n"


def read_release_agent(ctl: MemoryController, memcg: MemCgroup) -> str:
    return f"{ctl.release_agent}\n"


def _capable(caller: Caller, capability: int) -> bool:
    """The writer has ``capability`` in its effective set; a writer already gone (its write no
    longer matters to it) is judged by its uid, as root had every capability."""
    try:
        _, credentials = writer_credentials(caller.pid, caller.uid, caller.gid)
    except ControllerError:
        return caller.uid == 0
    return bool(credentials.capabilities & 1 << capability)


def write_release_agent(
    ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller
) -> None:
    """cgroup_release_agent_write(): the agent would run with every capability, so setting it
    takes CAP_SYS_ADMIN, whatever the file's mode (EPERM)."""
    if not _capable(caller, CAP_SYS_ADMIN):
        raise ControllerError(errno.EPERM, "setting release_agent needs CAP_SYS_ADMIN")
    ctl.release_agent = strstrip(data).decode("utf-8", "surrogateescape")


async def write_event_control(
    ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller
) -> None:
    await register_event(ctl, memcg, data, caller)


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


def try_write_charge(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> bool:
    nr_pages, kind, dirty = _parse_charge(data)
    return ctl.charge_now(memcg, nr_pages, kind, dirty=dirty)


async def write_charge(
    ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller
) -> None:
    nr_pages, kind, dirty = _parse_charge(data)
    await ctl.charge(memcg, nr_pages, kind, dirty=dirty)  # reclaims, or OOM, if it must


def write_uncharge(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
    nr_pages, kind, dirty = _parse_charge(data)
    if dirty:
        raise _einval("uncharge takes no dirty flag")
    ctl.uncharge(memcg, nr_pages, kind)


def write_touch(ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller) -> None:
    nr_pages, kind, dirty = _parse_charge(data)
    if dirty:
        raise _einval("touch takes no dirty flag")
    ctl.touch(memcg, nr_pages, kind)


def read_reclaim_daemon(ctl: MemoryController, memcg: MemCgroup) -> str:
    reclaim_task = memcg.reclaim_task
    stats = reclaim_task.stats
    res = memcg.memory
    lines = [
        f"state {reclaim_task.state.value}",
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


async def write_reclaim_daemon(
    ctl: MemoryController, memcg: MemCgroup, data: bytes, caller: Caller
) -> None:
    command = strstrip(data)
    if command == b"start":
        await ctl.start_reclaim_task(memcg)
    elif command == b"stop":
        await ctl.stop_reclaim_task(memcg)
    else:
        raise _einval("write start or stop")


def read_daemons(ctl: MemoryController, memcg: MemCgroup) -> str:
    groups = ctl.reclaim_tasks()
    failures = "".join(f"stopped: {why}\n" for why in ctl.failed_listeners)
    return f"{len(groups)}\n" + "".join(f"{g.path}\n" for g in groups) + failures


# -- the table ------------------------------------------------------------------------------
#
# Besides the handlers, each entry says what a reader of docs/files.md and of
# `fakecgfs explain FILE` needs: the read format, what a write accepts, and the file's own
# errors (the ones every file shares are in the page's header).

_SIZE = (
    "a size, parsed as the kernel parses limits: surrounding whitespace stripped, decimal, "
    "`0x` hex or leading-`0` octal, one optional `K` `M` `G` `T` `P` `E` suffix in either "
    "case; rounded down to whole pages; `-1` means unlimited, and so does anything from "
    "9223372036854771712 up; a write of only whitespace means 0"
)
_SIZE_EINVAL = (
    "EINVAL",
    "junk in the size (`1MB`, `1.5M`, `1 M`, `max`, `+4096`), or a negative value other than `-1`",
)
_U64 = (
    "an unsigned number (kstrtoull): decimal, `0x` hex or leading-`0` octal, an optional "
    "leading `+`, at most one trailing newline and no other whitespace"
)
_U64_ERRORS = (
    ("EINVAL", "not a number, a sign other than `+`, spaces, or junk after it"),
    ("ERANGE", "above 2^64-1"),
)
_ROOT_EINVAL = ("EINVAL", "written on the root group (it has no limits)")
_BYTES = "bytes, a multiple of 4096, then a newline"
_UNLIMITED = "9223372036854771712 (the page counter's maximum)"
_EINTR = ("EINTR", "the writer got a signal (Ctrl-C) while the write was reclaiming or waiting")
_PID_ERRORS = (
    ("EINVAL", "not a number (kstrtoint after stripping whitespace), negative, or above INT_MAX"),
    ("ESRCH", "no such process or thread"),
    ("EACCES", "the writer is not root and owns neither the real nor the saved user ID of the "
     "process"),
    ("EINVAL", "a kernel thread bound to its CPUs (PF_NO_SETAFFINITY) written into a child "
     "group"),
)  # fmt: skip


def _counter_files(
    prefix: str,
    counter: str,
    *,
    limit_write: _Writer | None = None,
    limit_write_blocking: BlockingWriter[MemoryController, MemCgroup] | None = None,
    limit_try_write: TryWriter[MemoryController, MemCgroup] | None = None,
    usage: bool = True,
    doc: str,
    limit_accepts: str,
    limit_errors: tuple[tuple[str, str], ...] = (),
    usage_fmt: str = "",
) -> list[CfType[MemoryController, MemCgroup]]:
    files = []
    title = doc[0].upper() + doc[1:]
    if usage:
        files.append(CfType(f"{prefix}usage_in_bytes", f"{title} usage in bytes.",
                            read=_counter_reader(counter, "usage"),
                            fmt=usage_fmt or f"{_BYTES}: the group's and its descendants' "
                            f"{doc} usage.", accepts="nothing (read-only)."))  # fmt: skip
    files += [
        CfType(f"{prefix}max_usage_in_bytes",
               f"Peak {doc} usage; any write resets it to the current usage.",
               read=_counter_reader(counter, "max_usage"),
               write=_reset_writer(counter, "max_usage"),
               fmt=f"{_BYTES}: the highest usage since the group was made or the last reset.",
               accepts="anything (the content is ignored): the peak restarts from the current "
               "usage."),
        CfType(f"{prefix}limit_in_bytes", f"{title} limit in bytes; -1 for unlimited.",
               read=_counter_reader(counter, "limit"), write=limit_write,
               write_blocking=limit_write_blocking, try_write=limit_try_write,
               fmt=f"{_BYTES}; {_UNLIMITED} when unlimited (the default: a child does not "
               "copy its parent's limits).",
               accepts=f"{_SIZE}. {limit_accepts}",
               errors=(_SIZE_EINVAL, _ROOT_EINVAL, *limit_errors)),
        CfType(f"{prefix}failcnt", f"Refused {doc} charges; any write resets it to 0.",
               read=_counter_reader(counter, "failcnt"), write=_reset_writer(counter, "failcnt"),
               fmt="a count, then a newline: charge attempts the limit refused, one per "
               "attempt, retries after reclaim included.",
               accepts="anything (the content is ignored): resets the count to 0."),
    ]  # fmt: skip
    return files


# fmt: off
CFTYPES: tuple[CfType[MemoryController, MemCgroup], ...] = tuple(sorted(
    [
        CfType("cgroup.clone_children", "cpuset-only flag, copied by children; 0 or 1.",
               read=_flag_reader("clone_children"), write=_flag_writer("clone_children"),
               fmt="`0` or `1`, then a newline.",
               accepts=f"{_U64}; any nonzero value reads back as 1.", errors=_U64_ERRORS),
        CfType("cgroup.event_control", "Register an eventfd: '<event_fd> <control_fd> [args]'.",
               write_blocking=write_event_control,
               fmt="nothing: a read is EINVAL.",
               accepts="`<event_fd> <control_fd> [args]`, single spaces between, both "
               "descriptors of the writing process. The control file is the group's "
               "`memory.usage_in_bytes` or `memory.memsw.usage_in_bytes` (args: a threshold "
               "size, signalled when usage crosses it either way), `memory.oom_control` (no "
               "args; signalled on OOM), `memory.pressure_level` (args `low`, `medium` or "
               "`critical`, optionally `,hierarchy`, `,local` or `,default`) or, fakecgfs only, "
               "`memory.high_wmark_in_bytes` (signalled when the reclaim task starts and ends "
               "an episode). Removing the group signals every registration once.",
               errors=(("EINVAL", "a malformed line (a tab, two spaces), an event_fd that is "
                        "not an eventfd, a control file that cannot be watched or belongs to "
                        "another group, or bad args"),
                       ("EBADF", "a descriptor the writer does not have open, or an O_PATH "
                        "one"),
                       ("EACCES", "the writer may not read the control file (its mode and "
                        "owner, as file_permission())"),
                       ("EPERM", "the server may not take the writer's eventfd (pidfd_getfd "
                        "needs ptrace rights over the writer)"),
                       ("EMFILE", "fakecgfs only: the writer's user already has the server "
                        f"hold {MAX_DESCRIPTORS_PER_USER} eventfds (docs/security.md)"),
                       ("ENOSPC", "fakecgfs only: the writer's user already holds "
                        f"{MAX_REGISTRATIONS_PER_USER} registrations"),
                       ("EOPNOTSUPP", "fakecgfs only: the server has no Linux AIO to signal "
                        "eventfds with (as the kernel on PREEMPT_RT)"),
                       ("EINTR", "the writer got a signal while the server looked for eventfds "
                        "closed by their listeners, which it does when the writer's user is "
                        "at its bound of eventfds"))),
        CfType("cgroup.procs", "Processes in the group; write a PID to move a whole process.",
               read=read_procs, write=_attach_writer(whole_process=True),
               fmt="one process ID per line, sorted; empty for a group without tasks; the root "
               "lists every process of the host not in another group.",
               accepts="a process ID (0: the writer): every thread of that process leaves its "
               "group for this one. Its charges stay where they are, as in 6.18. With "
               "`--real-processes`, what it gains from now on (and its children) is charged "
               "here (docs/real-processes.md).",
               errors=_PID_ERRORS),
        CfType("cgroup.sane_behavior", "Legacy flag, always 0.", read=read_sane_behavior,
               where=Where.ROOT, fmt="`0`, then a newline.", accepts="nothing (read-only)."),
        CfType("notify_on_release", "Run release_agent when the group empties; 0 or 1.",
               read=_flag_reader("notify_on_release"), write=_flag_writer("notify_on_release"),
               fmt="`0` or `1`, then a newline; copied by children at creation.",
               accepts=f"{_U64}; any nonzero value reads back as 1. Stored only: no agent "
               "is ever run.", errors=_U64_ERRORS),
        CfType("release_agent", "Path of the release agent program.", read=read_release_agent,
               write=write_release_agent, where=Where.ROOT,
               fmt="the path, then a newline (empty at first).",
               accepts="a path, surrounding whitespace stripped. Stored only: never run."),
        CfType("tasks", "Threads in the group; write a TID to move one thread.",
               read=read_tasks, write=_attach_writer(whole_process=False),
               fmt="one thread ID per line, sorted; threads that exited are gone; the root "
               "lists every thread of the host not in another group.",
               accepts="a thread ID (0: the writer): that thread alone moves here. Nothing of "
               "its memory is charged, and no signal is ever sent to it, unless mounted with "
               "`--real-processes`: then its process's memory gained from now on is charged "
               "here, and limits may page it out, stop or kill it (docs/real-processes.md).",
               errors=_PID_ERRORS),
        *_counter_files("memory.", "memory", limit_write_blocking=write_limit,
                        limit_try_write=try_write_limit, doc="memory",
                        limit_accepts="A limit under the usage reclaims first, and is stored "
                        "only once usage fits. A successful write wakes the group's reclaim "
                        "task to re-check its watermarks.",
                        limit_errors=(
                            ("EINVAL", "above `memory.memsw.limit_in_bytes`, or below an armed "
                             "`memory.high_wmark_in_bytes` or a written "
                             "`memory.low_wmark_in_bytes` (`lwmark <= hwmark <= limit`)"),
                            ("EBUSY", "usage cannot be reclaimed under the new limit (value "
                             "unchanged; failcnt unchanged)"),
                            _EINTR)),
        *_counter_files("memory.memsw.", "memsw", limit_write_blocking=write_memsw_limit,
                        doc="memory+swap",
                        limit_accepts="Must stay at or above `memory.limit_in_bytes`: on a "
                        "fresh group set `memory.limit_in_bytes` first, and to raise both, "
                        "raise this one first. A limit under the usage reclaims first (without "
                        "swapping, which cannot lower memory+swap).",
                        limit_errors=(
                            ("EINVAL", "below `memory.limit_in_bytes`"),
                            ("EBUSY", "usage cannot be reclaimed under the new limit"),
                            _EINTR)),
        *_counter_files("memory.kmem.", "kmem", limit_write=write_kmem_limit,
                        doc="kernel memory",
                        usage_fmt=f"{_BYTES}: kernel memory for the structures of child groups in "
                        "the subtree (making a child charges its parent 3 pages for the first "
                        "child and 2 for each later one).",
                        limit_accepts="The write is parsed and succeeds, but the limit stays "
                        "unlimited: the knob is deprecated, as in 6.18."),
        *_counter_files("memory.kmem.tcp.", "tcp", limit_write=write_tcp_limit,
                        doc="TCP buffer memory",
                        usage_fmt=f"{_BYTES}: always 0 (no sockets in the model).",
                        limit_accepts="Stored and read back; not checked against usage."),
        CfType("memory.kmem.slabinfo", "Slab statistics (none in the model).", read=read_empty,
               fmt="nothing (an empty file).", accepts="nothing (read-only)."),
        CfType("memory.force_empty", "Reclaim as much of the group's memory as possible.",
               write_blocking=write_force_empty, fmt="nothing: a read is EINVAL.",
               accepts="anything (the content is ignored): reclaims the group's pages until "
               "none are left or 16 passes free nothing; succeeds even when usage stays above "
               "0 (anonymous memory without swap).",
               errors=(("EINVAL", "written on the root group"), _EINTR)),
        CfType("memory.move_charge_at_immigrate", "Removed feature: only 0 is accepted.",
               read=read_move_charge, write=write_move_charge, fmt="`0`, then a newline.",
               accepts=f"{_U64}; only 0.",
               errors=(("EINVAL", "anything but 0 (charge moving was removed)"),
                       ("ERANGE", "above 2^64-1"))),
        CfType("memory.numa_stat", "Per-node page counts (one node).", read=read_numa_stat,
               fmt="lines `name=PAGES N0=PAGES` in pages, not bytes: `total`, `file`, `anon`, "
               "`unevictable` of this group, then the same four as `hierarchical_*` for its "
               "subtree. There is one node, N0.", accepts="nothing (read-only)."),
        CfType("memory.oom_control", "oom_kill_disable (0 or 1), under_oom, oom_kill.",
               read=read_oom_control, write=write_oom_control,
               fmt="three lines: `oom_kill_disable 0|1` (copied by children at creation), "
               "`under_oom 0|1` (1 while a charge waits in OOM) and `oom_kill N` (charges "
               "refused by the OOM killer).",
               accepts=f"{_U64}: 0 (the charging write is the OOM victim and fails with ENOMEM) "
               "or 1 (it waits until memory is freed or a limit is raised). Every charge "
               "waiting in OOM re-decides at once. With `--real-processes`, members over a "
               "limit are the victims: 0 kills the largest with SIGKILL, 1 stops them all "
               "until usage fits (docs/real-processes.md).",
               errors=(("EINVAL", "anything but 0 or 1, or written on the root group"),
                       ("ERANGE", "above 2^64-1"))),
        CfType("memory.pressure_level", "Only for cgroup.event_control registrations.",
               read=read_not_supported, explicit_mode=0o444,
               fmt="nothing: a read is EINVAL although the mode says readable, as on the "
               "kernel.", accepts="nothing (a write is EINVAL)."),
        CfType("memory.soft_limit_in_bytes", "Soft limit in bytes (stored; no global pressure).",
               read=read_soft_limit, write=write_soft_limit,
               fmt=f"{_BYTES}; {_UNLIMITED} when unlimited.",
               accepts=f"{_SIZE}. Stored and read back; it acts only under global memory "
               "pressure, which the model has not.", errors=(_SIZE_EINVAL,)),
        CfType("memory.stat", "Statistics: this group's, the limits, then total_ (subtree).",
               read=read_stat,
               fmt="lines `name value` in kernel 6.18's order: `cache`, `rss`, `rss_huge`, "
               "`shmem`, `mapped_file`, `dirty`, `writeback`, `workingset_refault_anon`, "
               "`workingset_refault_file`, `swap`, `swapcached`, `pgpgin`, `pgpgout`, "
               "`pgfault`, `pgmajfault`, `inactive_anon`, `active_anon`, `inactive_file`, "
               "`active_file`, `unevictable` for this group (bytes, except the `pg*` event "
               "counts), then `hierarchical_memory_limit` and `hierarchical_memsw_limit` (the "
               "smallest limit on the path to the root), then each item again as `total_*` "
               "for the whole subtree.", accepts="nothing (read-only)."),
        CfType("memory.swappiness", "0..200; copied by children at creation.",
               read=read_swappiness, write=write_swappiness,
               fmt="a number, then a newline (60 by default; a child copies its parent's).",
               accepts=f"{_U64}, 0 to 200. At 0 the group's anonymous memory is not swapped.",
               errors=(("EINVAL", "above 200, or not a number"), ("ERANGE", "above 2^64-1"))),
        CfType("memory.use_hierarchy", "Always 1 since Linux 5.11; only 1 is accepted.",
               read=read_use_hierarchy, write=write_use_hierarchy,
               fmt="`1`, then a newline.", accepts=f"{_U64}; only 1.",
               errors=(("EINVAL", "anything but 1"), ("ERANGE", "above 2^64-1"))),
        CfType("memory.shown_ram_in_bytes", "Vendor file of this machine's kernel; a u64.",
               read=read_shown_ram, write=write_shown_ram, where=Where.CHILD,
               origin=Origin.VENDOR, fmt="bytes, then a newline (0 at first).",
               accepts=f"{_U64}; rounded down to whole pages. Stored only.",
               errors=_U64_ERRORS),
        CfType("memory.high_wmark_in_bytes",
               "Background reclaim starts above it; a successful write starts the task, -1 "
               "disarms and stops it.", read=read_high_wmark, write_blocking=write_high_wmark,
               origin=Origin.RFC,
               fmt=f"{_BYTES}; {_UNLIMITED} while disarmed (the default).",
               accepts=f"{_SIZE}. A value arms it: the first successful write starts the "
               "group's reclaim task, and every write wakes it to re-check. When usage (of "
               "the group and its descendants) goes above it, the task reclaims in passes that "
               "each aim at one 32-page batch, until usage is at or under the low watermark "
               "(the last pass may go a little under it). `-1` disarms it and stops the task "
               "(the write returns once the task has exited). A gap to the low watermark "
               "under one batch, or a low watermark under the memory no reclaim can free, is "
               "warned about in `fake.reclaim_daemon`.",
               errors=(_SIZE_EINVAL,
                       ("EINVAL", "above `memory.limit_in_bytes`, or below a written "
                        "`memory.low_wmark_in_bytes` (equality is allowed)"),
                       ("EINTR", "the writer got a signal while the write waited for the "
                        "reclaim task to start, or (`-1`) to exit"))),
        CfType("memory.low_wmark_in_bytes",
               "Background reclaim stops at it; -1 returns to the default below the high one.",
               read=read_low_wmark, write=write_low_wmark, origin=Origin.RFC,
               fmt=f"{_BYTES}: the low watermark in force. Unless written, it is 0.5% below "
               "the high watermark (at least one 32-page batch), or "
               f"{_UNLIMITED} while the high one is disarmed.",
               accepts=f"{_SIZE}. The reclaim task stops reclaiming at or under it and "
               "sleeps; a write wakes the task to re-check. `-1` returns to the default.",
               errors=(_SIZE_EINVAL,
                       ("EINVAL", "above an armed `memory.high_wmark_in_bytes`, or above "
                        "`memory.limit_in_bytes` (equality is allowed)"))),
        CfType("fake.charge", "Charge simulated memory: 'SIZE [anon|file] [dirty]'.",
               write_blocking=write_charge, try_write=try_write_charge, origin=Origin.FAKECGFS,
               fmt="nothing: a read is EINVAL.",
               accepts="`SIZE [anon|file] [dirty]`: SIZE parsed like a limit (rounded down to "
               "pages; 0 charges nothing), then the kind (default `anon`), then `dirty` for "
               "page cache that starts dirty. The pages are charged to the group and every "
               "ancestor as a task faulting them in would: what fits at once, then batches, "
               "each batch that a limit refuses running direct reclaim (`failcnt` rises), "
               "then OOM. A charge that leaves usage above a high watermark wakes that "
               "group's reclaim task.",
               errors=(("EINVAL", "a malformed line, a junk size, `-1`, or `dirty` on anon"),
                       ("ENOMEM", "OOM with `oom_kill_disable 0`: nothing left to reclaim "
                        "under a limit; what this write had charged is freed and `oom_kill` "
                        "rises. With `oom_kill_disable 1` the write waits instead"),
                       _EINTR)),
        CfType("fake.uncharge", "Free simulated memory: 'SIZE [anon|file]'.",
               write=write_uncharge, origin=Origin.FAKECGFS, fmt="nothing: a read is EINVAL.",
               accepts="`SIZE [anon|file]` (default `anon`): frees up to SIZE of this group's "
               "own pages of that kind (anonymous: resident pages first, then swap entries). "
               "Freeing more than there is frees what there is, without an error.",
               errors=(("EINVAL", "a malformed line, a junk size, `-1`, or `dirty`"),)),
        CfType("fake.touch", "Mark simulated pages referenced: 'SIZE [anon|file]'.",
               write=write_touch, origin=Origin.FAKECGFS, fmt="nothing: a read is EINVAL.",
               accepts="`SIZE [anon|file]` (default `anon`): sets the referenced bit on up to "
               "SIZE of this group's own pages of that kind not yet referenced, inactive list "
               "first, as a task using them would. Reclaim then promotes a referenced inactive "
               "page instead of freeing it, and keeps a referenced active page active once, "
               "clearing the bit: scanning them is effort that frees nothing (pressure rises).",
               errors=(("EINVAL", "a malformed line, a junk size, `-1`, or `dirty`"),)),
        CfType("fake.reclaim_daemon", "The background reclaim task: state and statistics; "
               "write start or stop.", read=read_reclaim_daemon,
               write_blocking=write_reclaim_daemon,
               origin=Origin.FAKECGFS,
               fmt="lines `name value`: `state` (`stopped`, `sleeping`, `running` or "
               "`backoff`), `high_wmark` and `low_wmark` (bytes, as their files read), "
               "`low_wmark_default` (1 while the low one is derived), `usage`, `wakeups`, "
               "`passes`, `pages_scanned`, `pages_reclaimed`, `no_progress_passes`, "
               "`time_running_ns`, and `last_warning` (text, empty if none). The statistics "
               "survive stop and start.",
               accepts="`start` (start the task; idempotent) or `stop` (stop it and return "
               "once it has exited), surrounding whitespace stripped.",
               errors=(("EINVAL", "another word, or `start` while the high watermark is "
                        "disarmed (nothing could ever wake the task)"),
                       ("EINTR", "the writer got a signal while the write waited for the task "
                        "to start or to exit"))),
        CfType("fake.daemons", "Live reclaim tasks: their count, then one group per line.",
               read=read_daemons, where=Where.ROOT, origin=Origin.FAKECGFS,
               fmt="the number of live reclaim tasks, then the path of each task's group, one "
               "per line, in tree order; then, if the event trace (`mount --trace`) failed, "
               "one line `stopped: trace FILE: ERRNO (why), tracing stopped`.",
               accepts="nothing (read-only)."),
    ],
    key=lambda cft: cft.name,
))
# fmt: on

BY_NAME: dict[str, CfType[MemoryController, MemCgroup]] = {cft.name: cft for cft in CFTYPES}


def files_of(
    memcg: MemCgroup, *, strict: bool = False
) -> list[CfType[MemoryController, MemCgroup]]:
    """The control files of a group, as its directory lists them."""
    return [
        cft for cft in CFTYPES
        if cft.present_in(memcg) and not (strict and cft.origin is Origin.FAKECGFS)
    ]  # fmt: skip


def lookup(
    memcg: MemCgroup, name: str, *, strict: bool = False
) -> CfType[MemoryController, MemCgroup] | None:
    cft = BY_NAME.get(name)
    if cft is None or not cft.present_in(memcg) or (strict and cft.origin is Origin.FAKECGFS):
        return None
    return cft
