"""Metadata a user can change, and the no-op truncation cgroupfs accepts."""

from __future__ import annotations

import errno
import os
import stat
import subprocess

import pytest

from .helpers import errno_of, read, write


@pytest.mark.parametrize("name", ["memory.limit_in_bytes", "tasks", "fake.charge", ""])
def test_chmod_and_chown_stick(group, name):
    path = group / name if name else group
    kind = stat.S_IFMT(os.stat(path).st_mode)
    os.chmod(path, 0o600)
    os.chown(path, 1234, 5678)
    st = os.stat(path)
    assert st.st_mode == kind | 0o600
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.chown(path, -1, 42)  # -1 leaves the owner alone
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (1234, 42)


def test_root_bypasses_a_0000_mode(group):
    os.chmod(group / "memory.limit_in_bytes", 0)
    write(group / "memory.limit_in_bytes", "8192")
    assert read(group / "memory.limit_in_bytes") == "8192\n"


def test_utime_sticks_and_a_write_does_not_touch_mtime(group):
    path = group / "memory.limit_in_bytes"
    os.utime(path, ns=(1_000_000_000, 2_000_000_000))
    assert os.stat(path).st_mtime_ns == 2_000_000_000
    write(path, "4096")
    assert os.stat(path).st_mtime_ns == 2_000_000_000
    os.utime(group, ns=(5_000_000_000, 6_000_000_000))
    assert os.stat(group).st_mtime_ns == 6_000_000_000


@pytest.mark.parametrize("namespace", ["user.", "trusted.", "security."])
@pytest.mark.parametrize("name", ["memory.stat", ""])
def test_xattrs(group, namespace, name):
    path = group / name if name else group
    key = namespace + "fakecgfs_test"
    os.setxattr(path, key, b"value")
    assert os.getxattr(path, key) == b"value"
    assert key in os.listxattr(path)
    os.setxattr(path, key, b"other")
    assert os.getxattr(path, key) == b"other"
    assert errno_of(lambda: os.setxattr(path, key, b"x", os.XATTR_CREATE)) == errno.EEXIST
    os.removexattr(path, key)
    assert key not in os.listxattr(path)
    assert errno_of(lambda: os.getxattr(path, key)) == errno.ENODATA
    assert errno_of(lambda: os.removexattr(path, key)) == errno.ENODATA
    assert errno_of(lambda: os.setxattr(path, key, b"x", os.XATTR_REPLACE)) == errno.ENODATA


def test_xattrs_are_per_file(group):
    os.setxattr(group / "tasks", "user.a", b"1")
    assert "user.a" not in os.listxattr(group / "cgroup.procs")
    assert "user.a" not in os.listxattr(group)


def test_truncate_is_a_no_op(group):
    path = group / "memory.limit_in_bytes"
    write(path, "8192")
    os.truncate(path, 0)
    os.truncate(path, 100)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    assert read(path) == "8192\n"
    assert os.stat(path).st_size == 0


def test_truncate_of_a_directory_is_eisdir(group):
    assert errno_of(lambda: os.truncate(group, 0)) == errno.EISDIR


def test_ftruncate_on_a_read_only_descriptor_is_einval(group):
    fd = os.open(group / "memory.limit_in_bytes", os.O_RDONLY)
    try:
        assert errno_of(lambda: os.ftruncate(fd, 0)) == errno.EINVAL
    finally:
        os.close(fd)


def test_metadata_survives_rename(group):
    os.mkdir(group / "a")
    os.chmod(group / "a" / "tasks", 0o640)
    os.setxattr(group / "a", "user.k", b"v")
    os.rename(group / "a", group / "b")
    assert stat.S_IMODE(os.stat(group / "b" / "tasks").st_mode) == 0o640
    assert os.getxattr(group / "b", "user.k") == b"v"


def test_recreated_group_forgets_metadata(group):
    os.mkdir(group / "a")
    os.chmod(group / "a" / "tasks", 0o600)
    os.rmdir(group / "a")
    os.mkdir(group / "a")
    assert stat.S_IMODE(os.stat(group / "a" / "tasks").st_mode) == 0o644


@pytest.mark.xfail(
    strict=True,
    reason="a FUSE file system always reports the FUSE magic "
    "0x65735546 to statfs; cgroupfs reports CGROUP_SUPER_MAGIC 0x27e0eb",
)
def test_statfs_type_is_cgroups(shared):
    result = subprocess.run(["stat", "-f", "-c", "%t", str(shared.path)], capture_output=True,
                            text=True, check=True)  # fmt: skip
    assert result.stdout.strip() == "27e0eb"
