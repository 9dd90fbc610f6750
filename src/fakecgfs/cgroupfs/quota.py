"""Quotas: what one file, and one user, may make the shared server keep in memory.

* Extended attributes are kept as kernfs keeps them: a file takes at most
  KERNFS_MAX_USER_XATTRS ``user.*`` attributes whose values add up to at most
  KERNFS_USER_XATTR_SIZE_LIMIT bytes, ENOSPC beyond, checked in kernfs_vfs_user_xattr_add()'s
  order.  ``trusted.*`` and ``security.*`` have no limit there, and only CAP_SYS_ADMIN may set
  them (the VFS checks that before the request reaches us).
* The kernel's bounds still let one user fill the server: 65,535 groups of some sixty files,
  each with 128 KiB of attributes.  So each user but root may also hold at most
  MAX_XATTR_BYTES_PER_USER bytes of ``user.*`` names and values across the mount and may have
  created at most MAX_GROUPS_PER_USER groups (ENOSPC beyond, as the kernel's own bounds).
  An attribute is charged to the user who set it, a group to its creator, until removed.

The hierarchy-wide bound on groups (MEM_CGROUP_ID_MAX) is the controller's.
"""

from __future__ import annotations

import collections
import errno
import os
from typing import Protocol

KERNFS_MAX_USER_XATTRS = 128
"""user.* attributes per file (fs/kernfs/inode.c)."""

KERNFS_USER_XATTR_SIZE_LIMIT = 128 << 10
"""Bytes of user.* values per file (fs/kernfs/inode.c)."""

MAX_XATTR_BYTES_PER_USER = 4 << 20
"""Bytes of user.* names and values one user may have set across the mount (fakecgfs only)."""

MAX_GROUPS_PER_USER = 4096
"""Groups one user may have created and not removed (fakecgfs only)."""

USER_XATTR_PREFIX = "user."


class HasXattrs(Protocol):
    xattrs: dict[str, bytes]
    xattr_uids: dict[str, int]  # who each user.* attribute is charged to


class QuotaError(OSError):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)


def _cost(name: str, value: bytes) -> int:
    return len(name.encode("utf-8", "surrogateescape")) + len(value)


class Quotas:
    """Who holds what: bytes of user.* attributes and groups, per uid."""

    def __init__(self) -> None:
        self.xattr_bytes = collections.Counter[int]()
        self.groups = collections.Counter[int]()

    # -- extended attributes -------------------------------------------------------------------

    def set_xattr(self, inode: HasXattrs, name: str, value: bytes, flags: int, uid: int) -> None:
        """Set an attribute with kernfs's limits (ENOSPC), then XATTR_CREATE/XATTR_REPLACE
        (EEXIST, ENODATA), then the per-user bound (ENOSPC)."""
        old = inode.xattrs.get(name)
        if name.startswith(USER_XATTR_PREFIX):
            # kernfs counts the new attribute, and adds its size, before it knows whether it
            # replaces one: a full file refuses even a replacement.
            user = [n for n in inode.xattrs if n.startswith(USER_XATTR_PREFIX)]
            if len(user) + 1 > KERNFS_MAX_USER_XATTRS:
                raise QuotaError(errno.ENOSPC, f"{KERNFS_MAX_USER_XATTRS} user xattrs")
            size = sum(len(inode.xattrs[n]) for n in user)
            if size + len(value) > KERNFS_USER_XATTR_SIZE_LIMIT:
                raise QuotaError(errno.ENOSPC, f"{KERNFS_USER_XATTR_SIZE_LIMIT} bytes of xattrs")
        if flags & os.XATTR_CREATE and old is not None:
            raise QuotaError(errno.EEXIST, f"{name} exists")
        if flags & os.XATTR_REPLACE and old is None:
            raise QuotaError(errno.ENODATA, f"no {name}")
        if name.startswith(USER_XATTR_PREFIX):
            credit = (
                _cost(name, old) if old is not None and inode.xattr_uids.get(name) == uid else 0
            )
            held = self.xattr_bytes[uid] - credit + _cost(name, value)
            if uid != 0 and held > MAX_XATTR_BYTES_PER_USER:
                raise QuotaError(errno.ENOSPC, f"uid {uid} holds {MAX_XATTR_BYTES_PER_USER} "
                                 "bytes of xattrs")  # fmt: skip
            self._uncharge(inode, name)
            self.xattr_bytes[uid] += _cost(name, value)
            inode.xattr_uids[name] = uid
        inode.xattrs[name] = value

    def remove_xattr(self, inode: HasXattrs, name: str) -> None:
        if name not in inode.xattrs:
            raise QuotaError(errno.ENODATA, f"no {name}")
        self._uncharge(inode, name)
        del inode.xattrs[name]

    def forget(self, inode: HasXattrs) -> None:
        """The file went (its group was removed): its attributes are no one's any more."""
        for name in list(inode.xattr_uids):
            self._uncharge(inode, name)

    def _uncharge(self, inode: HasXattrs, name: str) -> None:
        uid = inode.xattr_uids.pop(name, None)
        if uid is not None:
            self.xattr_bytes[uid] -= _cost(name, inode.xattrs[name])

    # -- groups --------------------------------------------------------------------------------

    def check_group(self, uid: int) -> None:
        if uid != 0 and self.groups[uid] >= MAX_GROUPS_PER_USER:
            raise QuotaError(errno.ENOSPC, f"uid {uid} made {MAX_GROUPS_PER_USER} groups")

    def group_made(self, uid: int) -> None:
        self.groups[uid] += 1

    def group_removed(self, uid: int) -> None:
        if self.groups[uid] > 0:  # groups made through the controller were never counted
            self.groups[uid] -= 1
