"""Quotas (issue 13, item 8): extended attributes and groups bounded as kernfs and memcg bound
them, plus a per-user bound where the kernel's would still let one user fill the server; and
trees deeper than any recursion limit or PATH_MAX."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from fakecgfs.cgroupfs.quota import MAX_GROUPS_PER_USER, MAX_XATTR_BYTES_PER_USER

from .security import (
    ANSWER_WITHIN,
    USER_A,
    USER_B,
)

pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None or os.getuid() != 0,
                                reason="needs root and setpriv")  # fmt: skip

KiB = 1024
# kernfs's limits on user.* attributes per file (fs/kernfs/inode.c), measured on 6.18 too.
KERNFS_XATTRS, KERNFS_XATTR_BYTES = 128, 128 * KiB
XATTR_VALUE_MAX = 64 * KiB  # XATTR_SIZE_MAX: the VFS refuses bigger values (E2BIG) itself
DEPTH = 5000


def test_user_xattrs_per_file_stop_where_kernfs_stops(world):
    group = world.delegate("attacker", USER_A)
    path = str(group / "memory.limit_in_bytes")
    assert world.run(USER_A, "xattrs", path, "2000", "16") == {"set": KERNFS_XATTRS,
                                                              "error": "ENOSPC"}  # fmt: skip
    # a full file refuses even a replacement: kernfs counts before it looks
    with pytest.raises(OSError) as raised:
        os.setxattr(path, "user.a0", b"y")
    assert raised.value.errno == 28  # ENOSPC
    other = str(group / "memory.soft_limit_in_bytes")
    assert world.run(USER_A, "xattrs", other, "3", str(XATTR_VALUE_MAX)) == {
        "set": KERNFS_XATTR_BYTES // XATTR_VALUE_MAX,
        "error": "ENOSPC",
    }
    os.removexattr(other, "user.a1")
    os.setxattr(other, "user.b", b"z" * XATTR_VALUE_MAX)  # room again


def test_one_user_cannot_fill_the_server_with_xattrs(world):
    """Full directories (the user's own subgroups), one after another, until the per-user
    bound: then ENOSPC for that user only; another user still sets attributes, and a removal
    makes room."""
    group = world.delegate("attacker", USER_A)
    count = MAX_XATTR_BYTES_PER_USER // KERNFS_XATTR_BYTES + 2
    assert world.run(USER_A, "mkdirs", str(group), str(count))["error"] is None
    files = [f"g{i}" for i in range(count)]
    held = 0
    refused = None
    for name in files:
        result = world.run(USER_A, "xattrs", str(group / name), "2", str(XATTR_VALUE_MAX))
        held += sum(len(f"user.a{i}") + XATTR_VALUE_MAX for i in range(result["set"]))
        if result["error"] is not None:
            refused = (name, result)
            break
    assert refused is not None, "no bound"
    assert refused[1]["error"] == "ENOSPC"
    assert MAX_XATTR_BYTES_PER_USER - 2 * (XATTR_VALUE_MAX + 8) < held <= MAX_XATTR_BYTES_PER_USER
    group_b = world.delegate("other", USER_B)
    assert world.run(USER_B, "xattrs", str(group_b / "memory.limit_in_bytes"), "2",
                     str(XATTR_VALUE_MAX)) == {"set": 2, "error": None}  # fmt: skip
    os.removexattr(group / files[0], "user.a0")
    assert world.run(USER_A, "xattrs", str(group / refused[0]), "1", "8")["error"] is None
    # removing the groups gives back what they held
    for name in files:
        os.rmdir(group / name)
    os.rmdir(group)
    group = world.delegate("again", USER_A)
    assert world.run(USER_A, "xattrs", str(group / "memory.limit_in_bytes"), "2",
                     str(XATTR_VALUE_MAX)) == {"set": 2, "error": None}  # fmt: skip


@pytest.mark.timeout(600)
def test_one_user_cannot_fill_the_server_with_groups(world, other_user_reads):
    group = world.delegate("attacker", USER_A)
    reader = other_user_reads()
    result = world.run(USER_A, "mkdirs", str(group), str(MAX_GROUPS_PER_USER + 10))
    served = world.finish(reader, "stop\n")
    assert result == {"made": MAX_GROUPS_PER_USER, "error": "ENOSPC"}
    assert served["slowest"] < ANSWER_WITHIN, served
    group_b = world.delegate("other", USER_B)
    assert world.run(USER_B, "mkdirs", str(group_b), "3") == {"made": 3, "error": None}
    os.rmdir(group / "g0")
    assert world.run(USER_A, "mkdirs", str(group / "g1"), "1") == {"made": 1, "error": None}


def _make_chain(root: str, depth: int) -> None:
    """mkdir d/d/d/... ``depth`` deep, each relative to its parent's descriptor (the path is
    longer than PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open("memory.usage_in_bytes", os.O_RDONLY, dir_fd=fd)) as f:
            assert f.read() == "0\n"
    finally:
        os.close(fd)


def _remove_chain(root: str, depth: int) -> None:
    """rmdir the chain, deepest first: down by descriptor, then up through "..", one
    descriptor open at a time."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth - 1):
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        for _ in range(depth):
            os.rmdir("d", dir_fd=fd)
            parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = parent
    finally:
        os.close(fd)


@pytest.mark.timeout(600)
def test_a_tree_5000_deep_breaks_nothing(world):
    """Path resolution, the controller's walks and `fakecgfs top` (which walks by
    descriptor, without recursion) on a chain deeper than Python's recursion limit and
    PATH_MAX."""
    root = str(world.path / "deep")
    os.mkdir(root)
    _make_chain(root, DEPTH)
    top = subprocess.run([sys.executable, "-m", "fakecgfs", "top", str(world.path), "--once",
                          "--width", "120"],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert top.returncode == 0, top.stderr[-2000:]
    assert f"{DEPTH + 2} groups" in top.stdout  # the root, /deep, and the chain
    _remove_chain(root, DEPTH)
    os.rmdir(root)
    assert sorted(p for p in os.listdir(world.path) if os.path.isdir(world.path / p)) == []
