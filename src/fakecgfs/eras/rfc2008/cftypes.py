"""The control files of 2.6.26-rc2-mm1 with the RFC: that kernel's cftype arrays as one table.

mem_cgroup_files[] of 2.6.26 (usage, max_usage, limit, failcnt, force_empty, stat) plus the
patch's high_wmark_in_bytes and low_wmark_in_bytes, and cgroup core's tasks,
notify_on_release and (root only) release_agent.  2.6.26 cgroupfs makes every file 0644,
whatever its handlers; a read of a file with no read handler, or a write to one with no write
handler, is EINVAL.  The fake.* files are kept so that memory can be charged.
"""

from __future__ import annotations

import errno

from ...cgroupfs.cftypes import (
    BlockingWriter,
    Caller,
    CfType,
    Origin,
    Reader,
    SyncWriter,
    TryWriter,
    Where,
)
from ...cgroupfs.parse import strstrip
from ...cgroupfs.table import CfTable
from ...controller.constants import PAGE_SIZE
from ...controller.errors import ControllerError
from ...controller.lru import PageKind
from ...members.procfs import proc_uids
from .controller import Group, Rfc2008Controller
from .memcontd import THREAD_NAME
from .parse import parse_pid, write_strategy
from .res_counter import Member

MODE = 0o644
"""cgroup_add_file() of 2.6.26: ``cgroup_create_file(dentry, 0644 | S_IFREG, ...)``."""

ERA = "2.6.26-rc2-mm1 + RFC"


def _u64(value: int) -> str:
    return f"{value}\n"  # read_u64: "%llu\n"


def _reader(field: str) -> Reader[Rfc2008Controller, Group]:
    def read(ctl: Rfc2008Controller, memcg: Group) -> str:
        return _u64(getattr(memcg.res, field))

    return read


def _res_writer(member: Member) -> SyncWriter[Rfc2008Controller, Group]:
    def write(ctl: Rfc2008Controller, memcg: Group, data: bytes, caller: Caller) -> None:
        ctl.write_res(memcg, member, write_strategy(data))

    return write


async def write_high_wmark(ctl: Rfc2008Controller, memcg: Group, data: bytes,
                           caller: Caller) -> None:  # fmt: skip
    """mem_cgroup_write() for RES_HWMARK: start memcontd *before* res_counter_write() parses
    and checks the value, and leave it running if that then fails (the patch's comment: undoing
    it needs "ugly codes" and "it's not so big problem")."""
    await ctl.start_reclaim_task(memcg)
    ctl.write_res(memcg, Member.RES_HWMARK, write_strategy(data))


def write_reset_max(ctl: Rfc2008Controller, memcg: Group, data: bytes, caller: Caller) -> None:
    memcg.res.reset_max()


def write_reset_failcnt(ctl: Rfc2008Controller, memcg: Group, data: bytes, caller: Caller) -> None:
    memcg.res.reset_failcnt()


def write_force_empty(ctl: Rfc2008Controller, memcg: Group, data: bytes, caller: Caller) -> None:
    ctl.force_empty(memcg)


def read_stat(ctl: Rfc2008Controller, memcg: Group) -> str:
    return "".join(f"{name} {value}\n" for name, value in ctl.memory_stat(memcg))


def read_tasks(ctl: Rfc2008Controller, memcg: Group) -> str:
    return "".join(f"{tid}\n" for tid in ctl.tasks(memcg))


def write_tasks(ctl: Rfc2008Controller, memcg: Group, data: bytes, caller: Caller) -> None:
    """attach_task_by_pid() of 2.6.26: 0 is the writer; a writer other than root must have the
    task's uid or suid as its euid (EACCES); ESRCH for no such task."""
    pid = parse_pid(data)
    if pid == 0:
        pid = caller.pid
    if caller.uid != 0:
        uids = proc_uids(pid)
        if uids is not None and caller.uid not in uids:
            raise ControllerError(errno.EACCES, "not the owner of that task")
    ctl.attach(memcg, pid)


def read_notify_on_release(ctl: Rfc2008Controller, memcg: Group) -> str:
    return _u64(int(getattr(memcg, "notify_on_release", False)))


def write_notify_on_release(
    ctl: Rfc2008Controller, memcg: Group, data: bytes, caller: Caller
) -> None:
    """simple_strtoul(buf, NULL, 10) != 0: junk reads as 0, never an error."""
    digits = strstrip(data)
    n = 0
    while n < len(digits) and digits[n : n + 1].isdigit():
        n += 1
    memcg.notify_on_release = bool(n and int(digits[:n]))


def read_release_agent(ctl: Rfc2008Controller, memcg: Group) -> str:
    return f"{ctl.release_agent}\n"


def write_release_agent(ctl: Rfc2008Controller, memcg: Group, data: bytes, caller: Caller) -> None:
    ctl.release_agent = strstrip(data).decode("utf-8", "surrogateescape")


# -- fake.* ---------------------------------------------------------------------------------------


def _parse_charge(data: bytes) -> tuple[int, PageKind, bool]:
    """``SIZE [anon|file] [dirty]``, SIZE parsed as this era parses limits (rounded up)."""
    words = data.split()
    if not words or len(words) > 3:
        raise ControllerError(errno.EINVAL, "expected: SIZE [anon|file] [dirty]")
    nr_pages = write_strategy(words[0]) // PAGE_SIZE
    kinds = {b"anon": PageKind.ANON, b"file": PageKind.FILE}
    kind = kinds.get(words[1]) if len(words) > 1 else PageKind.ANON
    if kind is None:
        raise ControllerError(errno.EINVAL, "kind is anon or file")
    dirty = len(words) == 3
    if dirty and (words[2] != b"dirty" or kind is not PageKind.FILE):
        raise ControllerError(errno.EINVAL, "only file pages can be dirty")
    return nr_pages, kind, dirty


def try_write_charge(ctl: Rfc2008Controller, memcg: Group, data: bytes, caller: Caller) -> bool:
    nr_pages, kind, dirty = _parse_charge(data)
    return ctl.charge_now(memcg, nr_pages, kind, dirty=dirty)


async def write_charge(ctl: Rfc2008Controller, memcg: Group, data: bytes, caller: Caller) -> None:
    nr_pages, kind, dirty = _parse_charge(data)
    await ctl.charge(memcg, nr_pages, kind, dirty=dirty)


def write_uncharge(ctl: Rfc2008Controller, memcg: Group, data: bytes, caller: Caller) -> None:
    nr_pages, kind, dirty = _parse_charge(data)
    if dirty:
        raise ControllerError(errno.EINVAL, "uncharge takes no dirty flag")
    ctl.uncharge(memcg, nr_pages, kind)


def write_touch(ctl: Rfc2008Controller, memcg: Group, data: bytes, caller: Caller) -> None:
    nr_pages, kind, dirty = _parse_charge(data)
    if dirty:
        raise ControllerError(errno.EINVAL, "touch takes no dirty flag")
    ctl.touch(memcg, nr_pages, kind)


def read_reclaim_daemon(ctl: Rfc2008Controller, memcg: Group) -> str:
    reclaim_task = memcg.reclaim_task
    stats = reclaim_task.stats
    res = memcg.res
    lines = [
        f"state {reclaim_task.state.value}",
        f"name {THREAD_NAME if reclaim_task.is_running() else ''}".rstrip(),
        f"nice {reclaim_task.nice}",
        f"high_wmark {res.hwmark}",
        f"low_wmark {res.lwmark}",
        f"usage {res.usage}",
        f"res_state {res.state().name}",
        f"wakeups {stats.wakeups}",
        f"passes {stats.passes}",
        f"pages_scanned {stats.pages_scanned}",
        f"pages_reclaimed {stats.pages_reclaimed}",
        f"no_progress_passes {stats.no_progress_passes}",
        f"time_running_ns {int(reclaim_task.time_running_now() * 1e9)}",
        "last_warning ",
    ]
    return "\n".join(lines) + "\n"


def read_daemons(ctl: Rfc2008Controller, memcg: Group) -> str:
    groups = ctl.reclaim_tasks()
    failures = "".join(f"stopped: {why}\n" for why in ctl.failed_listeners)
    return f"{len(groups)}\n" + "".join(f"{g.path}\n" for g in groups) + failures


def _cft(
    name: str,
    doc: str,
    *,
    where: Where = Where.BOTH,
    origin: Origin = Origin.KERNEL,
    read: Reader[Rfc2008Controller, Group] | None = None,
    write: SyncWriter[Rfc2008Controller, Group] | None = None,
    write_blocking: BlockingWriter[Rfc2008Controller, Group] | None = None,
    try_write: TryWriter[Rfc2008Controller, Group] | None = None,
    fmt: str = "",
    accepts: str = "",
    errors: tuple[tuple[str, str], ...] = (),
) -> CfType[Rfc2008Controller, Group]:
    """A file of this era: 0644 whatever its handlers."""
    return CfType(
        name,
        doc,
        read=read,
        write=write,
        write_blocking=write_blocking,
        try_write=try_write,
        where=where,
        origin=origin,
        explicit_mode=MODE,
        fmt=fmt,
        accepts=accepts,
        errors=errors,
    )


_RES_ERRORS = (
    (
        "EINVAL",
        "junk after the number (leading spaces, `-1`, `1MB`), or the "
        "ordering `lwmark <= hwmark <= limit` broken by the value written",
    ),
)

CFTYPES: tuple[CfType[Rfc2008Controller, Group], ...] = (
    _cft(
        "tasks",
        "Threads in the group; write a TID to move it.",
        read=read_tasks,
        write=write_tasks,
        fmt="one TID per line, sorted.",
        accepts="a TID (`%d` as sscanf reads it; 0 is the writer).",
        errors=(
            ("EIO", "no number"),
            ("ESRCH", "no such thread"),
            ("EACCES", "the writer is not root and has neither the task's uid nor suid"),
        ),
    ),
    _cft(
        "notify_on_release",
        "Stored only.",
        read=read_notify_on_release,
        write=write_notify_on_release,
        fmt="`0` or `1`.",
        accepts="a decimal number.",
    ),
    _cft(
        "release_agent",
        "Stored only.",
        where=Where.ROOT,
        read=read_release_agent,
        write=write_release_agent,
        fmt="the path, then a newline.",
        accepts="a path.",
    ),
    _cft(
        "memory.usage_in_bytes",
        "Usage in bytes.",
        read=_reader("usage"),
        fmt="bytes.",
        accepts="nothing (EINVAL).",
    ),
    _cft(
        "memory.max_usage_in_bytes",
        "Peak usage; a write resets it to the usage.",
        read=_reader("max_usage"),
        write=write_reset_max,
        fmt="bytes.",
        accepts="anything: resets.",
    ),
    _cft(
        "memory.limit_in_bytes",
        "The limit; stored, never reclaimed to.",
        read=_reader("limit"),
        write=_res_writer(Member.RES_LIMIT),
        fmt="bytes; 9223372036854775807 at first.",
        accepts="a size (2.6.26 memparse, rounded up); EINVAL below the high watermark, "
        "which is 9223372036854775807 until written.",
        errors=_RES_ERRORS,
    ),
    _cft(
        "memory.failcnt",
        "Refused charges; a write resets it.",
        read=_reader("failcnt"),
        write=write_reset_failcnt,
        fmt="a count.",
        accepts="anything: resets.",
    ),
    _cft(
        "memory.force_empty",
        "Drop the accounting of the group's pages.",
        write=write_force_empty,
        fmt="nothing (EINVAL).",
        accepts="anything.",
        errors=(("EBUSY", "the group has tasks"),),
    ),
    _cft(
        "memory.stat",
        "cache, rss, pgpgin, pgpgout, active, inactive.",
        read=read_stat,
        fmt="`name value` lines: bytes, pg* counts.",
        accepts="nothing (EINVAL).",
    ),
    _cft(
        "memory.high_wmark_in_bytes",
        "Background reclaim starts above it; any write starts memcontd, first.",
        origin=Origin.RFC,
        read=_reader("hwmark"),
        write_blocking=write_high_wmark,
        fmt="bytes; 9223372036854775807 at first.",
        accepts="a size; memcontd is started before the value is even parsed, and stays.",
        errors=_RES_ERRORS,
    ),
    _cft(
        "memory.low_wmark_in_bytes",
        "memcontd reclaims down to it.",
        origin=Origin.RFC,
        read=_reader("lwmark"),
        write=_res_writer(Member.RES_LWMARK),
        fmt="bytes; 9223372036854775807 at first.",
        accepts="a size.",
        errors=_RES_ERRORS,
    ),
    _cft(
        "fake.charge",
        "Charge simulated memory: 'SIZE [anon|file] [dirty]'.",
        origin=Origin.FAKECGFS,
        write_blocking=write_charge,
        try_write=try_write_charge,
    ),
    _cft(
        "fake.uncharge",
        "Free simulated memory: 'SIZE [anon|file]'.",
        origin=Origin.FAKECGFS,
        write=write_uncharge,
    ),
    _cft(
        "fake.touch",
        "Mark simulated pages referenced: 'SIZE [anon|file]'.",
        origin=Origin.FAKECGFS,
        write=write_touch,
    ),
    _cft(
        "fake.reclaim_daemon",
        "memcontd's state and statistics (read only: the RFC has no start/stop interface).",
        origin=Origin.FAKECGFS,
        read=read_reclaim_daemon,
    ),
    _cft(
        "fake.daemons",
        "Live memcontd threads: their count, then one group per line.",
        where=Where.ROOT,
        origin=Origin.FAKECGFS,
        read=read_daemons,
    ),
)

TABLE: CfTable[Rfc2008Controller, Group] = CfTable(CFTYPES)
