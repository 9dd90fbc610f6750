"""Groups as directories: mkdir, rmdir, rename, and the things cgroupfs refuses to create."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from .helpers import UNLIMITED, errno_of, kv_lines, read, wait_for_state, wait_until, write

# -- mkdir -----------------------------------------------------------------------------------


def test_mkdir_of_an_existing_group_or_control_file(group):
    os.mkdir(group / "a")
    assert errno_of(lambda: os.mkdir(group / "a")) == errno.EEXIST
    for name in ("tasks", "memory.stat", "memory.limit_in_bytes", "fake.charge", ".", ".."):
        assert errno_of(lambda name=name: os.mkdir(group / name)) == errno.EEXIST, name


def test_mkdir_with_a_newline_is_einval(group):
    assert errno_of(lambda: os.mkdir(group / "a\nb")) == errno.EINVAL
    assert errno_of(lambda: os.mkdir(group / "\n")) == errno.EINVAL
    assert sorted(os.listdir(group)) == sorted(n for n in os.listdir(group) if "\n" not in n)


@pytest.mark.parametrize("name", [".hidden", "with space", "tab\there", "memory.foo", "x" * 256,
                                  "y" * 1000, "ünïcode", "fake.chargeX"])  # fmt: skip
def test_unusual_names_are_fine(group, name):
    os.mkdir(group / name)
    assert name in os.listdir(group)
    assert stat.S_ISDIR(os.stat(group / name).st_mode)
    assert read(group / name / "memory.swappiness") == "60\n"
    os.rmdir(group / name)


def test_non_utf8_name(group):
    name = os.fsencode(group) + b"/caf\xe9"
    os.mkdir(name)
    assert b"caf\xe9" in os.listdir(os.fsencode(group))
    os.rmdir(name)


def test_a_5000_character_name_is_too_long(group):
    assert errno_of(lambda: os.mkdir(group / ("z" * 5000))) == errno.ENAMETOOLONG


def test_mkdir_mode_is_honoured_minus_umask(group):
    old = os.umask(0o022)
    try:
        os.mkdir(group / "private", 0o700)
        os.mkdir(group / "sticky", 0o1777)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(group / "private").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(group / "sticky").st_mode) == 0o1755


def test_mkdir_in_a_missing_or_file_parent(group):
    assert errno_of(lambda: os.mkdir(group / "nope" / "x")) == errno.ENOENT
    assert errno_of(lambda: os.mkdir(group / "tasks" / "x")) == errno.ENOTDIR


# -- rmdir -----------------------------------------------------------------------------------


def test_rmdir_refusals(group):
    os.mkdir(group / "child")
    assert errno_of(lambda: os.rmdir(group)) == errno.EBUSY
    assert errno_of(lambda: os.rmdir(group / "tasks")) == errno.ENOTDIR
    assert errno_of(lambda: os.rmdir(group / "nope")) == errno.ENOENT
    assert errno_of(lambda: os.rmdir(str(group / "child") + "/.")) == errno.EINVAL
    assert errno_of(lambda: os.rmdir(str(group / "child") + "/..")) == errno.ENOTEMPTY
    os.rmdir(group / "child")
    assert "child" not in os.listdir(group)


def test_rmdir_of_the_root_is_refused(shared):
    assert errno_of(lambda: os.rmdir(shared.path)) == errno.EBUSY


def test_rmdir_stops_the_reclaim_task(shared, group):
    write(group / "memory.limit_in_bytes", "64M")
    write(group / "memory.high_wmark_in_bytes", "48M")
    name = "/" + group.name
    count, *reclaim_tasks = read(shared.path / "fake.daemons").splitlines()
    assert name in reclaim_tasks and int(count) == len(reclaim_tasks)
    fd = os.open(group / "fake.reclaim_daemon", os.O_RDONLY)
    try:
        os.rmdir(group)
        after, *reclaim_tasks = read(shared.path / "fake.daemons").splitlines()
        assert name not in reclaim_tasks and int(after) == int(count) - 1
        assert errno_of(lambda: os.read(fd, 4096)) == errno.ENODEV
    finally:
        os.close(fd)
    os.mkdir(group)
    assert kv_lines(group / "fake.reclaim_daemon")["state"] == "stopped"
    assert read(group / "memory.high_wmark_in_bytes") == f"{UNLIMITED}\n"


def test_rmdir_hands_pages_to_the_parent(group):
    os.mkdir(group / "c")
    write(group / "c" / "fake.charge", "1M file")
    os.rmdir(group / "c")
    # (usage also holds the kernel memory the child's creation charged to the parent)
    assert int(read(group / "memory.usage_in_bytes")) >= 1 << 20
    stat_ = dict(line.split() for line in read(group / "memory.stat").splitlines())
    assert stat_["cache"] == stat_["total_cache"] == str(1 << 20)


def test_descriptors_held_across_rmdir(group):
    os.mkdir(group / "gone")
    gone = group / "gone"
    reader = os.open(gone / "memory.limit_in_bytes", os.O_RDONLY)
    writer = os.open(gone / "memory.limit_in_bytes", os.O_WRONLY)
    try:
        os.rmdir(gone)
        assert errno_of(lambda: os.read(reader, 4096)) == errno.ENODEV
        assert errno_of(lambda: os.pread(reader, 4096, 0)) == errno.ENODEV
        assert errno_of(lambda: os.write(writer, b"4096")) == errno.ENODEV
    finally:
        os.close(reader)  # close is fine
        os.close(writer)


def test_fstat_of_a_descriptor_held_across_rmdir(group):
    """Answered from the kernel's attribute cache (libfuse no longer knows the file's path);
    the file was stat-ed when it was opened, so the attributes are there."""
    os.mkdir(group / "gone")
    fd = os.open(group / "gone" / "memory.limit_in_bytes", os.O_RDONLY)
    try:
        os.rmdir(group / "gone")
        st = os.fstat(fd)
        assert stat.S_ISREG(st.st_mode)
    finally:
        os.close(fd)


def test_a_recreated_group_starts_from_defaults(group):
    os.mkdir(group / "again")
    again = group / "again"
    write(again / "memory.limit_in_bytes", "64M")
    write(again / "memory.swappiness", "10")
    write(again / "fake.charge", "1M file")
    os.rmdir(again)
    os.mkdir(again)
    assert read(again / "memory.limit_in_bytes") == f"{UNLIMITED}\n"
    assert read(again / "memory.swappiness") == "60\n"
    assert read(again / "memory.usage_in_bytes") == "0\n"
    assert read(again / "memory.max_usage_in_bytes") == "0\n"


# -- rename ----------------------------------------------------------------------------------


def test_rename_within_the_parent_keeps_values_and_children(group):
    os.mkdir(group / "old")
    write(group / "old" / "memory.limit_in_bytes", "64M")
    os.mkdir(group / "old" / "kid")
    write(group / "old" / "kid" / "fake.charge", "1M file")
    os.rename(group / "old", group / "new")
    assert "old" not in os.listdir(group)
    assert read(group / "new" / "memory.limit_in_bytes") == f"{64 << 20}\n"
    assert read(group / "new" / "kid" / "memory.usage_in_bytes") == f"{1 << 20}\n"
    stat_ = dict(line.split() for line in read(group / "new" / "memory.stat").splitlines())
    assert stat_["total_cache"] == str(1 << 20)
    os.rename(group / "new", group / "new")  # onto itself: nothing happens


def test_rename_refusals(group):
    for name in ("a", "b", "c"):
        os.mkdir(group / name)
    assert errno_of(lambda: os.rename(group / "a", group / "c" / "a")) == errno.EIO
    assert errno_of(lambda: os.rename(group / "a", group / "b")) == errno.EEXIST
    assert errno_of(lambda: os.rename(group / "tasks", group / "t2")) == errno.ENOTDIR
    assert errno_of(lambda: os.rename(group / "a", group / "tasks")) == errno.ENOTDIR
    assert errno_of(lambda: os.rename(group / "a", group / "a" / "x")) == errno.EINVAL
    assert sorted(n for n in os.listdir(group) if len(n) == 1) == ["a", "b", "c"]


def test_renamed_group_keeps_its_reclaim_task(shared, group):
    os.mkdir(group / "old")
    write(group / "old" / "memory.high_wmark_in_bytes", "48M")
    os.rename(group / "old", group / "new")
    reclaim_tasks = read(shared.path / "fake.daemons").splitlines()[1:]
    assert f"/{group.name}/new" in reclaim_tasks
    assert f"/{group.name}/old" not in reclaim_tasks
    wait_for_state(group / "new", "sleeping")


# -- creating and removing anything else -----------------------------------------------------


def test_nothing_else_can_be_created_or_removed(group):
    assert errno_of(lambda: os.open(group / "new", os.O_CREAT | os.O_WRONLY, 0o644)) == errno.EACCES
    assert errno_of(lambda: os.mknod(group / "node", stat.S_IFREG | 0o644)) == errno.EACCES
    assert errno_of(lambda: os.mkfifo(group / "fifo")) == errno.EPERM
    assert errno_of(lambda: os.symlink("tasks", group / "link")) == errno.EPERM
    assert errno_of(lambda: os.link(group / "tasks", group / "hard")) == errno.EPERM
    assert errno_of(lambda: os.unlink(group / "tasks")) == errno.EPERM
    os.mkdir(group / "sub")
    assert errno_of(lambda: os.unlink(group / "sub")) == errno.EISDIR
    assert errno_of(lambda: os.unlink(group / "missing")) == errno.ENOENT
    assert not {"new", "node", "fifo", "link", "hard"} & set(os.listdir(group))


def test_unlink_of_an_open_control_file_is_eperm(group):
    """libfuse would 'hide' an open file by renaming it unless hard_remove is set."""
    fd = os.open(group / "tasks", os.O_RDONLY)
    try:
        assert errno_of(lambda: os.unlink(group / "tasks")) == errno.EPERM
        assert "tasks" in os.listdir(group)
        assert not [n for n in os.listdir(group) if n.startswith(".fuse_hidden")]
    finally:
        os.close(fd)


def test_open_errors(group):
    assert errno_of(lambda: os.open(group / "missing", os.O_RDONLY)) == errno.ENOENT
    assert errno_of(lambda: os.open(group / "tasks", os.O_RDONLY | os.O_DIRECTORY)) == errno.ENOTDIR
    assert errno_of(lambda: os.open(group, os.O_WRONLY)) == errno.EISDIR
    assert (
        errno_of(lambda: os.open(group / "tasks", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        == errno.EEXIST
    )


def test_listing_shows_new_groups_at_once(group):
    os.mkdir(group / "fresh")
    wait_until(lambda: "fresh" in os.listdir(group), timeout=1)
    os.rmdir(group / "fresh")
    assert "fresh" not in os.listdir(group)


def test_statfs(shared):
    st = os.statvfs(shared.path)
    assert st.f_namemax == 255
    assert st.f_bsize == 4096


def _renameat2(old, new, flags: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    AT_FDCWD = -100
    if libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def test_renameat2_flags(group):
    RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
    os.mkdir(group / "a")
    os.mkdir(group / "b")
    assert errno_of(lambda: _renameat2(group / "a", group / "c", RENAME_NOREPLACE)) == errno.EINVAL
    assert errno_of(lambda: _renameat2(group / "a", group / "b", RENAME_NOREPLACE)) == errno.EEXIST
    assert errno_of(lambda: _renameat2(group / "a", group / "b", RENAME_EXCHANGE)) == errno.EINVAL
    assert {"a", "b"} <= set(os.listdir(group)) and "c" not in os.listdir(group)


@pytest.mark.xfail(
    strict=True,
    reason="libfuse's high-level API has no path for a removed "
    "directory: reading a group's directory descriptor held across rmdir is "
    "ENOENT, where kernfs lists it as empty",
)
def test_listing_a_directory_descriptor_held_across_rmdir(group):
    os.mkdir(group / "gone")
    fd = os.open(group / "gone", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.rmdir(group / "gone")
        assert os.listdir(fd) == []
    finally:
        os.close(fd)
