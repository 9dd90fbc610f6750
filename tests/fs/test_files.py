"""Every control file of the cftype table, through a real mount: where it appears, its stat, how
it answers reads and writes in the wrong direction, and a fresh group's exact content."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from fakecgfs.cgroupfs import cftypes
from fakecgfs.cgroupfs.cftypes import CFTYPES, Origin, Where
from fakecgfs.controller.controller import STAT_ITEMS

from .helpers import UNLIMITED, errno_of, read, read_bytes, write

ROOT_NAMES = sorted(c.name for c in CFTYPES if c.where in (Where.BOTH, Where.ROOT))
CHILD_NAMES = sorted(c.name for c in CFTYPES if c.where in (Where.BOTH, Where.CHILD))
PLACES = [(cft, "root") for cft in CFTYPES if cft.where is not Where.CHILD] + [
    (cft, "child") for cft in CFTYPES if cft.where is not Where.ROOT
]


def _ids(rows):
    return [f"{cft.name}@{where}" for cft, where in rows]


def _dir(shared, group, where):
    return shared.path if where == "root" else group


def _readable(cft) -> bool:
    """The file has a show handler (pressure_level is 0444 but has none)."""
    return cft.read is not None and cft.read is not cftypes.read_not_supported


# Files whose content may legitimately be empty: the kernel prints nothing for them.
MAY_BE_EMPTY = {("memory.kmem.slabinfo", "root"), ("memory.kmem.slabinfo", "child"),
                ("tasks", "child"), ("cgroup.procs", "child")}  # fmt: skip


def _entries(path) -> tuple[list[str], list[str]]:
    files, dirs = [], []
    for entry in os.scandir(path):
        (dirs if entry.is_dir() else files).append(entry.name)
    return sorted(files), sorted(dirs)


def test_root_lists_exactly_the_root_files(shared):
    files, _ = _entries(shared.path)
    assert files == ROOT_NAMES


def test_child_lists_exactly_the_child_files(group):
    files, dirs = _entries(group)
    assert files == CHILD_NAMES
    assert dirs == []


def test_root_has_no_child_only_file_and_child_no_root_only_file(shared, group):
    for cft in CFTYPES:
        if cft.where is Where.CHILD:
            path = shared.path / cft.name
        elif cft.where is Where.ROOT:
            path = group / cft.name
        else:
            continue
        assert errno_of(lambda path=path: os.stat(path)) == errno.ENOENT, cft.name


@pytest.mark.parametrize(("cft", "where"), PLACES, ids=_ids(PLACES))
def test_stat_of_every_file(shared, group, cft, where):
    st = os.stat(_dir(shared, group, where) / cft.name)
    assert st.st_mode == stat.S_IFREG | cft.mode
    assert (st.st_size, st.st_nlink, st.st_blocks, st.st_blksize) == (0, 1, 0, 4096)
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_modes_follow_the_handlers():
    """cgroup_file_mode(): 0644 read-write, 0444 read-only, 0200 write-only."""
    for cft in CFTYPES:
        if cft.explicit_mode is not None:
            continue
        expected = {(True, True): 0o644, (True, False): 0o444, (False, True): 0o200}
        assert cft.mode == expected[(cft.read is not None, cft.writable)], cft.name


@pytest.mark.parametrize(("cft", "where"), PLACES, ids=_ids(PLACES))
def test_read_of_every_file(shared, group, cft, where):
    path = _dir(shared, group, where) / cft.name
    fd = os.open(path, os.O_RDONLY)  # opening succeeds as root, whatever the mode
    try:
        if not _readable(cft):
            assert errno_of(lambda: os.read(fd, 4096)) == errno.EINVAL
            return
        content = b""
        while chunk := os.read(fd, 65536):
            content += chunk
    finally:
        os.close(fd)
    if (cft.name, where) in MAY_BE_EMPTY and content == b"":
        return
    assert content.endswith(b"\n"), content
    assert b"\n\n" not in content, content


READ_ONLY_PLACES = [(cft, where) for cft, where in PLACES if not cft.writable]


@pytest.mark.parametrize(("cft", "where"), READ_ONLY_PLACES, ids=_ids(READ_ONLY_PLACES))
def test_wrong_direction_write(shared, group, cft, where):
    """A read-only file opens for writing as root; the write() is EINVAL."""
    fd = os.open(_dir(shared, group, where) / cft.name, os.O_WRONLY)
    try:
        assert errno_of(lambda: os.write(fd, b"0")) == errno.EINVAL
    finally:
        os.close(fd)


def test_write_only_files_exist():
    """The table still has write-only files (the read test above checks their EINVAL)."""
    write_only = {c.name for c in CFTYPES if c.read is None}
    assert {"memory.force_empty", "cgroup.event_control", "fake.charge"} <= write_only
    for name in write_only:
        assert cftypes.BY_NAME[name].mode == 0o200


def test_directory_modes_and_links(shared, group):
    root = os.stat(shared.path)
    assert stat.S_ISDIR(root.st_mode) and stat.S_IMODE(root.st_mode) == 0o555
    _, groups = _entries(shared.path)
    assert root.st_nlink == 2 + len(groups)
    st = os.stat(group)
    assert st.st_mode == stat.S_IFDIR | 0o755
    assert st.st_nlink == 2
    os.mkdir(group / "x")
    os.mkdir(group / "y")
    assert os.stat(group).st_nlink == 4
    os.rmdir(group / "y")
    assert os.stat(group).st_nlink == 3
    assert (st.st_size, st.st_blocks) == (0, 0)


def test_strict_hides_exactly_the_fake_files(mount_factory):
    mount = mount_factory("--strict")
    fake = {c.name for c in CFTYPES if c.origin is Origin.FAKECGFS}
    assert fake and all(name.startswith("fake.") for name in fake)
    files, _ = _entries(mount.path)
    assert files == [n for n in ROOT_NAMES if n not in fake]
    os.mkdir(mount.path / "g")
    files, _ = _entries(mount.path / "g")
    assert files == [n for n in CHILD_NAMES if n not in fake]
    for name in fake:
        assert errno_of(lambda name=name: os.stat(mount.path / "g" / name)) == errno.ENOENT
        assert errno_of(lambda name=name: os.stat(mount.path / name)) == errno.ENOENT
    # a group may now take a fake file's name, as on the kernel
    os.mkdir(mount.path / "fake.charge")


# -- a fresh group's exact bytes, as kernel 6.18 shows them ----------------------------------

# memory.stat of a fresh group on kernel 6.18 (measured; see the behaviours document).
KERNEL_STAT_NAMES = [
    "cache", "rss", "rss_huge", "shmem", "mapped_file", "dirty", "writeback",
    "workingset_refault_anon", "workingset_refault_file", "swap", "swapcached",
    "pgpgin", "pgpgout", "pgfault", "pgmajfault",
    "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
]  # fmt: skip

FRESH_STAT = (
    "".join(f"{name} 0\n" for name in KERNEL_STAT_NAMES)
    + f"hierarchical_memory_limit {UNLIMITED}\nhierarchical_memsw_limit {UNLIMITED}\n"
    + "".join(f"total_{name} 0\n" for name in KERNEL_STAT_NAMES)
)

FRESH_NUMA_STAT = (
    "total=0 N0=0\nfile=0 N0=0\nanon=0 N0=0\nunevictable=0 N0=0\n"
    "hierarchical_total=0 N0=0\nhierarchical_file=0 N0=0\nhierarchical_anon=0 N0=0\n"
    "hierarchical_unevictable=0 N0=0\n"
)

FRESH_CHILD = {
    "cgroup.clone_children": "0\n",
    "cgroup.procs": "",
    "notify_on_release": "0\n",
    "tasks": "",
    "memory.kmem.slabinfo": "",
    "memory.move_charge_at_immigrate": "0\n",
    "memory.numa_stat": FRESH_NUMA_STAT,
    "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
    "memory.shown_ram_in_bytes": "0\n",
    "memory.soft_limit_in_bytes": f"{UNLIMITED}\n",
    "memory.stat": FRESH_STAT,
    "memory.swappiness": "60\n",
    "memory.use_hierarchy": "1\n",
    "memory.high_wmark_in_bytes": f"{UNLIMITED}\n",
    "memory.low_wmark_in_bytes": f"{UNLIMITED}\n",
}
for _prefix in ("memory.", "memory.memsw.", "memory.kmem.", "memory.kmem.tcp."):
    FRESH_CHILD[f"{_prefix}usage_in_bytes"] = "0\n"
    FRESH_CHILD[f"{_prefix}max_usage_in_bytes"] = "0\n"
    FRESH_CHILD[f"{_prefix}limit_in_bytes"] = f"{UNLIMITED}\n"
    FRESH_CHILD[f"{_prefix}failcnt"] = "0\n"

FRESH_ROOT_ONLY = {"cgroup.sane_behavior": "0\n", "release_agent": "\n"}


def test_stat_items_are_the_kernels():
    assert list(STAT_ITEMS) == KERNEL_STAT_NAMES


def test_every_readable_file_has_an_expectation():
    """A new readable non-fake file must be added to the tables above."""
    for cft in CFTYPES:
        if _readable(cft) and cft.origin is not Origin.FAKECGFS:
            assert cft.name in FRESH_CHILD or cft.name in FRESH_ROOT_ONLY, cft.name


@pytest.mark.parametrize("name", sorted(FRESH_CHILD))
def test_fresh_child_content(group, name):
    assert read_bytes(group / name).decode() == FRESH_CHILD[name]


@pytest.mark.parametrize("name", sorted(FRESH_ROOT_ONLY))
def test_root_only_content(shared, name):
    assert read(shared.path / name) == FRESH_ROOT_ONLY[name]


def test_fresh_reclaim_daemon_format(group):
    lines = read(group / "fake.reclaim_daemon").splitlines()
    assert lines[0] == "state stopped"
    fields = dict(line.partition(" ")[::2] for line in lines)
    assert fields["high_wmark"] == fields["low_wmark"] == str(UNLIMITED)
    assert fields["usage"] == "0"
    for line in lines:
        name, sep, _ = line.partition(" ")
        assert sep == " " and name and " " not in name, line
    for name in ("wakeups", "passes", "pages_scanned", "pages_reclaimed", "no_progress_passes",
                 "time_running_ns"):  # fmt: skip
        assert int(fields[name]) == 0


def test_root_reads(shared):
    assert int(read(shared.path / "memory.usage_in_bytes")) >= 0
    assert read(shared.path / "memory.limit_in_bytes") == f"{UNLIMITED}\n"
    tasks = read(shared.path / "tasks").split()
    assert str(os.getpid()) in tasks  # the root holds every thread not in a group
    assert [int(t) for t in tasks] == sorted(int(t) for t in tasks)
    assert read(shared.path / "fake.daemons").splitlines()[0].isdigit()


def test_child_inherits_settings_but_not_limits(group):
    write(group / "memory.swappiness", "17")
    write(group / "memory.oom_control", "1")
    write(group / "notify_on_release", "5")
    write(group / "cgroup.clone_children", "1")
    write(group / "memory.limit_in_bytes", "64M")
    write(group / "memory.soft_limit_in_bytes", "32M")
    os.mkdir(group / "kid")
    kid = group / "kid"
    assert read(kid / "memory.swappiness") == "17\n"
    assert read(kid / "memory.oom_control").startswith("oom_kill_disable 1\n")
    assert read(kid / "notify_on_release") == "1\n"
    assert read(kid / "cgroup.clone_children") == "1\n"
    assert read(kid / "memory.limit_in_bytes") == f"{UNLIMITED}\n"
    assert read(kid / "memory.soft_limit_in_bytes") == f"{UNLIMITED}\n"
    stat_ = dict(line.split() for line in read(kid / "memory.stat").splitlines())
    assert stat_["hierarchical_memory_limit"] == str(64 << 20)
    # later changes to the parent do not propagate
    write(group / "memory.swappiness", "30")
    assert read(kid / "memory.swappiness") == "17\n"
