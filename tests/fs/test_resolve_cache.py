"""The path resolution cache (CgroupFS._resolve): a path that named a group or a control file
must name what it names now, after rmdir + mkdir of the same name and after rename, and
permissions are checked on every open against the modes and owners of now.

Through a mount with os calls and as nobody (setpriv), then in-process for a user's mount,
where the server itself checks permissions (no FUSE: the caller is what fuse_get_context
answers)."""

from __future__ import annotations

import errno
import os
import weakref
from unittest import mock

import pytest
import trio

from fakecgfs.cgroupfs import fs as fs_module
from fakecgfs.cgroupfs.fs import CgroupFS
from fakecgfs.controller import MemoryController

from .helpers import NOBODY, UNLIMITED, errno_of, read, sh, write

LIMIT = "memory.limit_in_bytes"


def test_rmdir_then_mkdir_of_the_same_name_opens_the_new_group(group):
    g = group / "g"
    os.mkdir(g)
    write(g / LIMIT, "8M")
    assert read(g / LIMIT) == "8388608\n"  # the path is resolved, and kept
    os.rmdir(g)
    assert errno_of(lambda: read(g / LIMIT)) == errno.ENOENT
    os.mkdir(g)
    assert read(g / LIMIT) == f"{UNLIMITED}\n"  # the new group's, not the removed one's
    assert write(g / LIMIT, "4M") == 2  # the removed group's handle would say ENODEV
    assert read(g / LIMIT) == "4194304\n"


def test_a_renamed_group_is_found_under_its_new_name_only(group):
    old, new = group / "old", group / "new"
    os.mkdir(old)
    write(old / LIMIT, "8M")
    assert read(old / LIMIT) == "8388608\n"
    os.rename(old, new)
    assert errno_of(lambda: read(old / LIMIT)) == errno.ENOENT
    assert read(new / LIMIT) == "8388608\n"
    os.mkdir(old)  # the old name, a new group
    assert read(old / LIMIT) == f"{UNLIMITED}\n"
    write(old / LIMIT, "4M")
    assert read(new / LIMIT) == "8388608\n"


def test_permissions_are_checked_at_every_open_after_chmod_and_chown(group):
    target = group / LIMIT
    os.chmod(group, 0o755)

    def nobody_writes() -> str:
        done = sh(f"echo 4M > {LIMIT} && echo ok", group, user=NOBODY)
        return "ok" if done.returncode == 0 else done.stderr

    assert "Permission denied" in nobody_writes()  # root's 0644 file
    os.chown(target, 65534, 65534)
    assert nobody_writes() == "ok"
    assert read(target) == "4194304\n"
    os.chmod(target, 0o444)
    assert "Permission denied" in nobody_writes()
    os.chmod(target, 0o644)
    os.chown(target, 0, 0)
    assert "Permission denied" in nobody_writes()
    os.chmod(group, 0o700)  # and the directory above, searched on every open
    os.chown(target, 65534, 65534)
    assert "Permission denied" in nobody_writes()


# -- in-process: a user's mount, where the server checks permissions itself --------------------

MOUNTER = 4321


def in_filesystem(test) -> None:
    async def main() -> None:
        async with MemoryController.open() as ctl:
            fs = CgroupFS(ctl, mountpoint="/nowhere", owner=(MOUNTER, MOUNTER),
                          superuser=MOUNTER)  # fmt: skip
            test(fs)

    trio.run(main)


def as_caller(uid: int):
    return mock.patch("fuse.fuse_get_context", return_value=(uid, uid, os.getpid()))


def test_a_users_mount_checks_modes_of_now_on_every_open():
    def test(fs: CgroupFS) -> None:
        with as_caller(MOUNTER):
            fs.mkdir("/g", 0o755)
        path = f"/g/{LIMIT}"
        with as_caller(1000):
            assert fs.open(path, os.O_RDONLY)  # 0644: others may read
            assert errno_of(lambda: fs.open(path, os.O_WRONLY)) == errno.EACCES
        with as_caller(MOUNTER):
            fs.chown(path, 1000, 1000)
        with as_caller(1000):
            assert fs.open(path, os.O_WRONLY)
        with as_caller(MOUNTER):
            fs.chmod("/g", 0o700)
        with as_caller(1000):
            assert errno_of(lambda: fs.open(path, os.O_RDONLY)) == errno.EACCES

    in_filesystem(test)


def test_removed_and_renamed_groups_are_not_kept_or_named():
    def test(fs: CgroupFS) -> None:
        with as_caller(MOUNTER):
            fs.mkdir("/a", 0o755)
            first = fs._handles[fs.open(f"/a/{LIMIT}", os.O_RDONLY)].memcg
            fs.rmdir("/a")
            gone = weakref.ref(first)
            del first
            fs._handles.clear()
            assert gone() is None  # the cache does not keep a removed group alive
            fs.mkdir("/a", 0o755)
            second = fs._handles[fs.open(f"/a/{LIMIT}", os.O_RDONLY)].memcg
            assert not second.removed
            fs.rename("/a", "/b")
            assert errno_of(lambda: fs.open(f"/a/{LIMIT}", os.O_RDONLY)) == errno.ENOENT
            assert fs._handles[fs.open(f"/b/{LIMIT}", os.O_RDONLY)].memcg is second

    in_filesystem(test)


def test_a_group_removed_behind_the_filesystems_back_is_not_named():
    """The controller's own API (used by tests and tools) removes groups without rmdir."""

    def test(fs: CgroupFS) -> None:
        with as_caller(MOUNTER):
            fs.mkdir("/a", 0o755)
            fs.open(f"/a/{LIMIT}", os.O_RDONLY)
            fs.ctl.remove_group_now(fs.ctl.root.children["a"])
            assert errno_of(lambda: fs.open(f"/a/{LIMIT}", os.O_RDONLY)) == errno.ENOENT

    in_filesystem(test)


@pytest.mark.parametrize("names", [8])
def test_the_cache_is_bounded(names, monkeypatch):
    monkeypatch.setattr(fs_module, "RESOLVED_MAX", names)

    def test(fs: CgroupFS) -> None:
        with as_caller(MOUNTER):
            for i in range(3 * names):
                fs.mkdir(f"/g{i}", 0o755)
                fs.getattr(f"/g{i}/{LIMIT}")
                assert len(fs._resolved) <= names

    in_filesystem(test)
