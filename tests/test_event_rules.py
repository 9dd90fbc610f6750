"""The pure rules behind cgroup.event_control and the quotas: read permission as
generic_permission() decides it, and kernfs's order of xattr checks."""

from __future__ import annotations

import errno
import functools
import os
from dataclasses import dataclass, field

import pytest

from fakecgfs.cgroupfs.events_control import Credentials
from fakecgfs.cgroupfs.quota import MAX_GROUPS_PER_USER, MAX_XATTR_BYTES_PER_USER, Quotas

USER = Credentials(uid=1000, gid=1000, groups=frozenset({27}), capabilities=0)
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1 << 1, 1 << 2


@pytest.mark.parametrize("mode, uid, gid, readable", [
    (0o400, 1000, 0, True),     # owner bits
    (0o044, 1000, 0, False),    # the owner's bits decide for the owner, even if others may read
    (0o040, 0, 1000, True),     # group bits, primary group
    (0o040, 0, 27, True),       # group bits, supplementary group
    (0o404, 0, 27, False),      # in the group: the group's bits decide
    (0o004, 0, 0, True),        # others
    (0o000, 1000, 1000, False),
])  # fmt: skip
def test_may_read_follows_generic_permission(mode, uid, gid, readable):
    assert USER.may_read(mode, uid, gid) is readable


@pytest.mark.parametrize("capability", [CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH])
def test_dac_capabilities_read_anything(capability):
    root = Credentials(0, 0, frozenset(), capability)
    assert root.may_read(0o000, 1000, 1000)


@dataclass
class Inode:
    xattrs: dict[str, bytes] = field(default_factory=dict)
    xattr_uids: dict[str, int] = field(default_factory=dict)


def errno_of(fn) -> int | None:
    try:
        fn()
    except OSError as e:
        return e.errno
    return None


def test_a_full_file_refuses_before_create_or_replace_is_looked_at():
    quotas, inode = Quotas(), Inode()
    for i in range(128):
        quotas.set_xattr(inode, f"user.{i}", b"v", 0, 1000)
    assert (
        errno_of(lambda: quotas.set_xattr(inode, "user.0", b"w", os.XATTR_CREATE, 1000))
        == errno.ENOSPC
    )  # kernfs counts first: not EEXIST
    assert (
        errno_of(lambda: quotas.set_xattr(inode, "user.x", b"w", os.XATTR_REPLACE, 1000))
        == errno.ENOSPC
    )  # not ENODATA
    quotas.set_xattr(inode, "trusted.x", b"w", 0, 0)  # other namespaces are not counted
    quotas.remove_xattr(inode, "user.0")
    quotas.set_xattr(inode, "user.0", b"w", os.XATTR_CREATE, 1000)


def test_value_bytes_per_file_count_the_value_being_replaced():
    quotas, inode = Quotas(), Inode()
    quotas.set_xattr(inode, "user.a", b"x" * 65536, 0, 1000)
    quotas.set_xattr(inode, "user.b", b"x" * 65536, 0, 1000)  # 128 KiB: the limit, allowed
    assert errno_of(lambda: quotas.set_xattr(inode, "user.b", b"y", 0, 1000)) == errno.ENOSPC


def test_bytes_are_charged_to_who_set_them_and_given_back():
    quotas, inode = Quotas(), Inode()
    quotas.set_xattr(inode, "user.a", b"12345", 0, 1000)
    assert quotas.xattr_bytes[1000] == len("user.a") + 5
    quotas.set_xattr(inode, "user.a", b"1", 0, 2000)  # replaced by another user: moves over
    assert quotas.xattr_bytes[1000] == 0 and quotas.xattr_bytes[2000] == len("user.a") + 1
    quotas.forget(inode)
    assert quotas.xattr_bytes[2000] == 0


def test_per_user_bounds_spare_root():
    quotas = Quotas()
    inodes = [Inode() for _ in range(MAX_XATTR_BYTES_PER_USER // (128 << 10) + 1)]
    value = b"x" * (64 << 10)
    refused = 0
    for inode in inodes:
        for name in ("user.a", "user.b"):
            setting = functools.partial(quotas.set_xattr, inode, name, value, 0, 1000)
            refused += errno_of(setting) == errno.ENOSPC
    assert refused and quotas.xattr_bytes[1000] <= MAX_XATTR_BYTES_PER_USER
    for inode in [Inode() for _ in range(len(inodes))]:  # root, as much again: no refusal
        quotas.set_xattr(inode, "user.a", value, 0, 0)
        quotas.set_xattr(inode, "user.b", value, 0, 0)
    for _ in range(MAX_GROUPS_PER_USER):
        quotas.check_group(1000)
        quotas.group_made(1000)
    assert errno_of(lambda: quotas.check_group(1000)) == errno.ENOSPC
    quotas.check_group(0)  # root is not bounded
    quotas.group_removed(1000)
    quotas.check_group(1000)
