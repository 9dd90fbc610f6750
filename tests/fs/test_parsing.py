"""Write parsing through the mount: refused inputs with the kernel's errno and no side effect,
and the measured parser tables of tests/test_parse.py replayed through real write() calls."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

import pytest

from fakecgfs.cgroupfs import cftypes
from fakecgfs.cgroupfs.parse import ParseError, parse_pid, terminate
from test_parse import LIMIT_TABLE, PID_TABLE, U64_TABLE

from .helpers import errname, errno_of, read, sh, write

PID_MAX_LIMIT = 4194304  # no process can have this pid or a larger one


@dataclass(frozen=True)
class Bad:
    file: str
    value: bytes
    err: int
    setup: tuple[tuple[str, str], ...] = ()  # writes that come first, in order
    root: bool = False  # write to the mount's root group instead of a fresh child
    watch: tuple[str, ...] = ()  # more files that must read the same before and after

    def __str__(self) -> str:
        where = "root/" if self.root else ""
        return f"{where}{self.file}={self.value!r}->{errname(self.err)}"


BAD_SIZES = [b"abc", b"1MB", b"1KK", b"1 M", b"1.5M", b"1e3", b"+4096", b"-2", b"-0", b"08",
             b"max", b"4096abc", b"-1x", b"- 1", b"0x", b"1 2"]  # fmt: skip

# Each byte file with a value set first, so that "unchanged" means something.
BYTE_FILES = {
    "memory.limit_in_bytes": (("memory.limit_in_bytes", "64M"),),
    "memory.soft_limit_in_bytes": (("memory.soft_limit_in_bytes", "32M"),),
    "memory.memsw.limit_in_bytes": (("memory.limit_in_bytes", "64M"),
                                    ("memory.memsw.limit_in_bytes", "128M")),
    "memory.kmem.limit_in_bytes": (),
    "memory.kmem.tcp.limit_in_bytes": (("memory.kmem.tcp.limit_in_bytes", "16M"),),
    "memory.high_wmark_in_bytes": (("memory.limit_in_bytes", "64M"),
                                   ("memory.high_wmark_in_bytes", "48M")),
    "memory.low_wmark_in_bytes": (("memory.limit_in_bytes", "64M"),
                                  ("memory.high_wmark_in_bytes", "48M"),
                                  ("memory.low_wmark_in_bytes", "32M")),
}  # fmt: skip

USAGE = ("memory.usage_in_bytes", "memory.stat")
TASKS = ("tasks", "cgroup.procs")
LIMITS = ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
E = errno

BAD: list[Bad] = [
    *(
        Bad(name, value, E.EINVAL, setup)
        for name, setup in BYTE_FILES.items()
        for value in BAD_SIZES
    ),
    # u64 files (kstrtoull): no spaces, one trailing newline at most
    *(
        Bad("memory.swappiness", v, E.EINVAL, (("memory.swappiness", "33"),))
        for v in (b"201", b"-1", b" 60", b"60 ", b"60\r\n", b"abc", b"1k", b"\n", b"60\n\n", b"+")
    ),
    Bad("memory.swappiness", b"99999999999999999999", E.ERANGE),
    Bad("memory.swappiness", b"18446744073709551616", E.ERANGE),
    *(Bad("memory.use_hierarchy", v, E.EINVAL) for v in (b"0", b"2", b"abc", b"-1", b" 1")),
    *(Bad("memory.move_charge_at_immigrate", v, E.EINVAL) for v in (b"1", b"2", b"3", b"-1")),
    *(Bad("memory.oom_control", v, E.EINVAL) for v in (b"2", b"-1", b"abc", b" 1", b"1 ")),
    *(Bad("notify_on_release", v, E.EINVAL) for v in (b"abc", b"-1", b" 1")),
    Bad("notify_on_release", b"99999999999999999999", E.ERANGE),
    *(Bad("cgroup.clone_children", v, E.EINVAL) for v in (b"abc", b"-1")),
    Bad("cgroup.clone_children", b"0x10000000000000000", E.ERANGE),
    # tasks and cgroup.procs
    *(
        Bad(name, v, E.EINVAL, watch=TASKS)
        for name in TASKS
        for v in (b"abc", b"-1", b"2147483648", b"-2147483649", b"1 2", b" ", b"12x", b"0x80000000")
    ),
    *(
        Bad(name, v, E.ESRCH, watch=TASKS)
        for name in TASKS
        for v in (b"4194304", b"2147483647", b" 4194305\n")
    ),
    # limits of the root group
    *(
        Bad(name, b"4M", E.EINVAL, root=True)
        for name in (
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.kmem.limit_in_bytes",
            "memory.kmem.tcp.limit_in_bytes",
        )
    ),
    Bad("memory.limit_in_bytes", b"-1", E.EINVAL, root=True),
    Bad("memory.oom_control", b"1", E.EINVAL, root=True),
    Bad("memory.force_empty", b"0", E.EINVAL, root=True, watch=("memory.usage_in_bytes",)),
    # the memsw rule: limit <= memsw.limit, checked after rounding, both ways
    Bad("memory.memsw.limit_in_bytes", b"64M", E.EINVAL, watch=LIMITS),
    Bad(
        "memory.memsw.limit_in_bytes",
        b"32M",
        E.EINVAL,
        (("memory.limit_in_bytes", "64M"), ("memory.memsw.limit_in_bytes", "128M")),
        watch=LIMITS,
    ),
    Bad(
        "memory.memsw.limit_in_bytes",
        b"67104768",
        E.EINVAL,  # 64M - 4096
        (("memory.limit_in_bytes", "64M"), ("memory.memsw.limit_in_bytes", "128M")),
        watch=LIMITS,
    ),
    Bad(
        "memory.limit_in_bytes",
        b"256M",
        E.EINVAL,
        (("memory.limit_in_bytes", "64M"), ("memory.memsw.limit_in_bytes", "128M")),
        watch=LIMITS,
    ),
    Bad(
        "memory.limit_in_bytes",
        b"-1",
        E.EINVAL,
        (("memory.limit_in_bytes", "64M"), ("memory.memsw.limit_in_bytes", "128M")),
        watch=LIMITS,
    ),
    # a limit below what cannot be reclaimed (anonymous memory, no swap)
    Bad(
        "memory.limit_in_bytes",
        b"4M",
        E.EBUSY,
        (("fake.charge", "8M anon"),),
        watch=(*USAGE, "memory.failcnt"),
    ),
    Bad(
        "memory.limit_in_bytes",
        b"0",
        E.EBUSY,
        (("fake.charge", "1M anon"),),
        watch=(*USAGE, "memory.failcnt"),
    ),
    # fake.charge and fake.uncharge
    *(
        Bad("fake.charge", v, E.EINVAL, (("fake.charge", "1M file"),), watch=USAGE)
        for v in (
            b"abc",
            b"4M anonx",
            b"4M anon dirty",
            b" ",
            b"\n",
            b"\t \n",
            b"4M file dirty x",
            b"-1",
            b"4M FILE",
            b"4Mx",
            b"4M file clean",
            b"file 4M",
            b"4M dirty",
        )
    ),
    *(
        Bad("fake.uncharge", v, E.EINVAL, (("fake.charge", "1M file"),), watch=USAGE)
        for v in (b"4M file dirty", b"abc", b"4M swap", b" ", b"-1")
    ),
    # the reclaim task
    *(
        Bad("fake.reclaim_daemon", v, E.EINVAL, watch=("fake.reclaim_daemon",))
        for v in (b"start", b"START", b"foo", b"")
    ),
    # cgroup.event_control
    Bad("cgroup.event_control", b"abc", E.EINVAL),
    Bad("cgroup.event_control", b"1000 1001", E.EBADF),
]
BAD = [row for row in BAD if row.value]  # an empty write is no error (see test_io)


def _observed(directory, row: Bad) -> dict[str, str]:
    names = list(row.watch)
    cft = cftypes.BY_NAME[row.file]
    if cft.read is not None and cft.read is not cftypes.read_not_supported:
        names.insert(0, row.file)
    return {name: read(directory / name) for name in names}


def test_bad_table_is_large():
    assert len(BAD) >= 60
    assert {"memory.limit_in_bytes", "tasks", "cgroup.procs", "fake.charge",
            "memory.high_wmark_in_bytes"} <= {row.file for row in BAD}  # fmt: skip


@pytest.mark.parametrize("row", BAD, ids=str)
def test_bad_input_is_refused_and_changes_nothing(shared, group, row):
    directory = shared.path if row.root else group
    for name, value in row.setup:
        write(group / name, value)
    before = _observed(directory, row)
    assert errname(errno_of(lambda: write(directory / row.file, row.value))) == errname(row.err)
    assert _observed(directory, row) == before


def test_ebusy_limit_counts_no_failure(group):
    write(group / "fake.charge", "8M anon")
    assert errno_of(lambda: write(group / "memory.limit_in_bytes", "4M")) == errno.EBUSY
    assert read(group / "memory.failcnt") == "0\n"
    assert read(group / "memory.usage_in_bytes") == f"{8 << 20}\n"


def test_soft_and_tcp_limits_are_not_checked_against_usage(group):
    write(group / "fake.charge", "8M anon")
    write(group / "memory.soft_limit_in_bytes", "4M")
    write(group / "memory.kmem.tcp.limit_in_bytes", "0")
    assert read(group / "memory.soft_limit_in_bytes") == f"{4 << 20}\n"
    assert read(group / "memory.kmem.tcp.limit_in_bytes") == "0\n"


def test_kmem_limit_write_succeeds_but_stays_unlimited(group):
    assert write(group / "memory.kmem.limit_in_bytes", "64M") == 3
    assert read(group / "memory.kmem.limit_in_bytes") == "9223372036854771712\n"


def test_memsw_rounding(group):
    """The rule compares pages: a memsw value 4095 bytes below... rounds to the same page."""
    write(group / "memory.limit_in_bytes", "64M")
    write(group / "memory.memsw.limit_in_bytes", str((64 << 20) + 4095))
    assert read(group / "memory.memsw.limit_in_bytes") == f"{64 << 20}\n"
    write(group / "memory.memsw.limit_in_bytes", "128M")  # raise memsw first, then the limit
    write(group / "memory.limit_in_bytes", "128M")
    assert read(group / "memory.limit_in_bytes") == f"{128 << 20}\n"


def test_content_is_ignored_by_reset_files(group):
    write(group / "fake.charge", "1M file")
    write(group / "fake.uncharge", "1M file")
    assert read(group / "memory.max_usage_in_bytes") == f"{1 << 20}\n"
    for name in ("memory.max_usage_in_bytes", "memory.failcnt", "memory.memsw.failcnt",
                 "memory.memsw.max_usage_in_bytes", "memory.kmem.failcnt",
                 "memory.kmem.tcp.failcnt", "memory.force_empty"):  # fmt: skip
        assert write(group / name, "abc") == 3, name
    assert read(group / "memory.max_usage_in_bytes") == "0\n"


@pytest.mark.parametrize("name", ["notify_on_release", "cgroup.clone_children"])
def test_flags_take_any_u64(group, name):
    write(group / name, "7")
    assert read(group / name) == "1\n"
    write(group / name, "0")
    assert read(group / name) == "0\n"


def test_swappiness_range(group):
    for value in ("0", "200", "60\n", "0x10"):
        write(group / "memory.swappiness", value)
    assert read(group / "memory.swappiness") == "16\n"


# -- the measured tables of tests/test_parse.py, through real write() calls -------------------

SENTINEL = 12288


def _replay(path, buf: bytes, sentinel: str) -> str | int:
    """Write a sentinel, then ``buf``; the errno name, "NOOP", or the value read back."""
    write(path, sentinel)
    try:
        n = write(path, buf)
    except OSError as e:
        assert read(path) == f"{sentinel}\n", "a refused write changed the value"
        return errno.errorcode[e.errno]
    assert n == len(buf)
    if not buf:
        assert read(path) == f"{sentinel}\n"
        return "NOOP"
    return int(read(path))


def _ids(table):
    return [repr(row[0])[:40] for row in table]


@pytest.mark.parametrize(("buf", "expected"), LIMIT_TABLE, ids=_ids(LIMIT_TABLE))
def test_limit_table_through_the_mount(group, buf, expected):
    assert _replay(group / "memory.limit_in_bytes", buf, str(SENTINEL)) == expected


@pytest.mark.parametrize(("buf", "expected"), LIMIT_TABLE, ids=_ids(LIMIT_TABLE))
def test_high_watermark_parses_like_the_limit(group, buf, expected):
    """The limit is unlimited on a fresh group: every value fits under it.  -1 (or anything as
    large) disarms the watermark, which then reads back as unlimited too."""
    assert _replay(group / "memory.high_wmark_in_bytes", buf, str(SENTINEL)) == expected


@pytest.mark.parametrize(("buf", "notify", "swappiness"), U64_TABLE, ids=_ids(U64_TABLE))
def test_u64_table_through_the_mount(group, buf, notify, swappiness):
    assert _replay(group / "notify_on_release", buf, "0") == notify
    assert _replay(group / "memory.swappiness", buf, "17") == swappiness


def _safe_pid_row(buf: bytes) -> bool:
    """Only rows that cannot name a live process (a parse error, or a pid above the limit)."""
    if not buf:
        return True
    try:
        return parse_pid(terminate(buf)) >= PID_MAX_LIMIT
    except ParseError:
        return True


SAFE_PID_TABLE = [row for row in PID_TABLE if _safe_pid_row(row[0])]


@pytest.mark.parametrize(("buf", "expected"), SAFE_PID_TABLE, ids=_ids(SAFE_PID_TABLE))
@pytest.mark.parametrize("name", ["tasks", "cgroup.procs"])
def test_pid_table_through_the_mount(group, name, buf, expected):
    try:
        n = write(group / name, buf)
    except OSError as e:
        assert errno.errorcode[e.errno] == expected
    else:
        assert (n, expected) == (0, "NOOP")
    assert read(group / name) == ""


def test_pid_table_is_mostly_safe():
    assert len(SAFE_PID_TABLE) >= len(PID_TABLE) - 2


def test_writing_0_attaches_the_writer(group):
    """0 names the writing process itself: a shell attaches itself, and leaves when it exits."""
    result = sh("echo 0 > tasks && cat tasks && echo $$", group)
    assert result.returncode == 0, result.stderr
    *tasks, shell = result.stdout.split()
    assert shell in tasks
    assert read(group / "tasks") == ""  # it has exited
    os.rmdir(group)
    os.mkdir(group)  # for the fixture's clean-up


def test_a_parent_with_a_child_is_never_empty(group):
    """Creating a child charges kernel memory to the parent: limit 0 on it is EBUSY."""
    assert read(group / "memory.usage_in_bytes") == "0\n"
    os.mkdir(group / "kid")
    assert int(read(group / "memory.usage_in_bytes")) > 0
    assert errno_of(lambda: write(group / "memory.limit_in_bytes", "0")) == errno.EBUSY
    assert read(group / "memory.limit_in_bytes") == "9223372036854771712\n"
    assert read(group / "memory.failcnt") == "0\n"
