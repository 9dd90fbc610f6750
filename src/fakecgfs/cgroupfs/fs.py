"""The filesystem: paths, files and errno, presented the way kernfs presents cgroupfs.

* Files have size 0 and nlink 1, modes from the cftype table; groups are 0755 directories with
  nlink 2 + subgroups, the root 0555.  The mount uses direct_io, so reads ignore the size.
* A read at offset 0 (or anywhere but where the previous read on this descriptor stopped) renders
  the content afresh into the descriptor; later reads slice that snapshot, as seq_file does.
* Every write() is parsed on its own, the offset ignored; it returns len(data) or the kernel's
  errno.  Writes over 4096 bytes are E2BIG; an empty write changes nothing.  truncate is a no-op.
* Every operation runs in the controller's trio loop, called by the FUSE session (session.py)
  between two of the loop's other steps, so handlers use the controller directly and need no
  lock.  No operation may block: a write that has to wait returns what it waits for, and the
  session finishes it as a task of its own.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from weakref import WeakKeyDictionary

import fuse

from ..controller import MemCgroup, MemoryController
from ..controller.compaction import shrink_dict
from ..kernel import PATH_MAX
from .cftypes import Caller, CfType
from .events_control import EventControl, attach
from .parse import MAX_WRITE, terminate
from .quota import USER_XATTR_PREFIX, Quotas
from .table import MODERN, CfTable

log = logging.getLogger("fakecgfs")

GROUP_DIR_MODE = 0o755
ROOT_DIR_MODE = 0o555
BLOCK_SIZE = 4096
NAME_MAX = 255  # what statfs reports; like cgroupfs, longer names are accepted anyway
XATTR_NAMESPACES = ("user.", "trusted.", "security.")
RESOLVED_MAX = 4096
"""Paths the resolution cache (CgroupFS._resolve) holds at most: it bounds what a user who names
many paths makes the server keep; a full cache starts again empty.  Only paths up to PATH_MAX
are kept, so that a deep tree cannot make each entry a megabyte."""


@dataclass
class Inode:
    """Metadata a user can change (chmod, chown, utime, xattrs) for one file or directory."""

    mode: int
    uid: int
    gid: int
    mtime_ns: int
    xattrs: dict[str, bytes] = field(default_factory=dict)
    creator: tuple[int, int] = (0, 0)  # a group's files belong to whoever made the group
    xattr_uids: dict[str, int] = field(default_factory=dict)  # who each user.* is charged to


@dataclass(slots=True)
class OpenFile:
    """One open descriptor of a control file: what it names and its seq_file-like snapshot."""

    memcg: MemCgroup
    cft: CfType
    snapshot: bytes = b""  # content rendered by the last read pass
    read_end: int = -1  # offset where the previous read stopped; -1: nothing read yet
    opener_uid: int = 0  # whose credentials the descriptor carries (of->file->f_cred)


class CgroupFS:
    """fusepy operations for a fake cgroup v1 memory hierarchy.

    Not a fuse.Operations: fusepy registers every method it finds, and each registered one is a
    Python call per request.  What is left out the kernel handles alone: flush and fsync of a
    file (ENOSYS counts as success), access (default_permissions checks the modes).  Neither
    are read and write: the session answers READ and WRITE itself (read_request(),
    write_request()), so that reads skip libfuse and a write can wait without holding up
    anything else.
    """

    use_ns = True
    # Operations on an open descriptor (fstat, ftruncate, release) reach us, with path None, even
    # after rmdir removed its group, as they do on kernfs, instead of failing with ENOENT.
    flag_nullpath_ok = True
    # ...and they need no path at all: libfuse then neither builds one nor locks the path's
    # directories for them, which saves work on every release.
    flag_nopath = True

    def __init__(self, controller: MemoryController, *, strict: bool = False,
                 mountpoint: str | None = None, owner: tuple[int, int] = (0, 0),
                 superuser: int | None = None, table: CfTable = MODERN) -> None:  # fmt: skip
        self.ctl = controller
        self.table = table  # the control files of the mount's era
        # None: the kernel checks modes (default_permissions, a mount by root).  Otherwise a
        # user's mount: the server checks them, and this uid (the mounter) passes every check,
        # as root does on cgroupfs; see _permit().
        self._superuser = superuser
        self.strict = strict  # hide the fake.* files
        self.mountpoint = mountpoint
        self._owner = owner  # uid, gid of the root directory and its files
        self._handles: dict[int, OpenFile] = {}
        # path -> what it names, for the paths that resolved; see _resolve()
        self._resolved: dict[str, tuple[MemCgroup, CfType | None]] = {}
        self._dirs_open: dict[int, MemCgroup] = {}  # opendir handles
        self._next_fh = itertools.count(1)
        self._dirs: WeakKeyDictionary[MemCgroup, Inode] = WeakKeyDictionary()
        self._files: WeakKeyDictionary[MemCgroup, dict[str, Inode]] = WeakKeyDictionary()
        self._dirs[controller.root] = Inode(ROOT_DIR_MODE, *owner, time.time_ns(), creator=owner)
        self.quotas = Quotas()
        # Who makes the request being served: libfuse's answer, until the session that serves
        # the mount gives its own (session.DataPath).
        self.request_context: Callable[[], tuple[int, int, int]] = _libfuse_context
        attach(controller, EventControl(mountpoint, self._resolve, self._inode_of))

    # -- dispatch: every operation's unexpected failure is EIO, logged, never fatal ------------

    def __call__(self, op: str, *args: Any) -> Any:
        try:
            return getattr(self, op)(*args)
        except fuse.FuseOSError:
            raise
        except OSError as e:
            if e.errno and e.errno > 0:
                raise fuse.FuseOSError(e.errno) from e
            log.exception("operation %s%r failed", op, args)
            raise fuse.FuseOSError(errno.EIO) from e
        except Exception as e:
            log.exception("operation %s%r failed", op, args)
            raise fuse.FuseOSError(errno.EIO) from e

    # -- paths ---------------------------------------------------------------------------------

    def _resolve(self, path: str) -> tuple[MemCgroup, CfType | None]:
        """The group a path names, or the group and control file; ENOENT otherwise.

        Every open and lookup resolves a path, so what a path named is kept (only names that
        resolved: a failure is not kept, and creating a group cannot change what a path that
        resolved names, since mkdir refuses existing names and the control files' names).  An
        entry is no longer trusted once its group is removed (whoever removed it: a removed
        group's subgroups went first), and the cache is emptied on rmdir (not to keep removed
        groups alive) and on rename (a group's new name changes what paths below it name).
        Only the names are cached: permissions are checked on every call, against the modes
        and owners of now (the kernel's, or _permit()).  A path longer than PATH_MAX is walked
        every time: kept, a deep tree's paths would cost the server their length each."""
        hit = self._resolved.get(path)
        if hit is not None and not hit[0].removed:
            return hit
        found = self._walk(path)
        if len(path) > PATH_MAX:
            return found
        if len(self._resolved) >= RESOLVED_MAX:
            self._resolved.clear()
        self._resolved[path] = found
        return found

    def _forget_paths(self) -> None:
        """What paths name has changed (a group removed or renamed)."""
        self._resolved.clear()

    def _walk(self, path: str) -> tuple[MemCgroup, CfType | None]:
        memcg, cft = self.ctl.root, None
        parts = [p for p in path.split("/") if p]
        for i, part in enumerate(parts):
            memcg, cft = self._step(memcg, part, last=i == len(parts) - 1)
        return memcg, cft

    def _step(self, memcg: MemCgroup, part: str, *, last: bool) -> tuple[MemCgroup, CfType | None]:
        """One name below the group ``memcg``: a subgroup, or, as a path's last name, a control
        file; ENOTDIR below a file, ENOENT for anything else."""
        child = memcg.children.get(part)
        if child is not None:
            return child, None
        cft = self.table.lookup(memcg, part, strict=self.strict)
        if cft is not None and last:
            return memcg, cft
        raise fuse.FuseOSError(errno.ENOTDIR if cft is not None else errno.ENOENT)

    def _group(self, path: str) -> MemCgroup:
        memcg, cft = self._resolve(path)
        if cft is not None:
            raise fuse.FuseOSError(errno.ENOTDIR)
        return memcg

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        parent, _, name = path.rstrip("/").rpartition("/")
        return parent or "/", name

    def _caller(self) -> Caller:
        uid, gid, pid = self.request_context()
        return Caller(pid=pid, uid=uid, gid=gid, mountpoint=self.mountpoint)

    # -- permissions, where the server checks them ---------------------------------------------

    def _permit(self, path: str, mask: int, *, on_parent: bool = False) -> None:
        """A user's mount has no default_permissions (it would stop the mounter at the root's
        0555, where cgroupfs lets root through): the server checks instead.  The mounter and
        root pass; anyone else (reaching it only with allow_other) needs search permission on
        every directory above ``path``, and ``mask`` (R_OK, W_OK, X_OK) on ``path``, or on its
        parent with ``on_parent``; EACCES otherwise, as generic_permission() answers."""
        if self._superuser is None:
            return
        uid, gid, pid = self.request_context()
        if uid in (0, self._superuser):
            return
        groups = _groups_of(pid, gid)
        parts = [p for p in path.split("/") if p]
        last = len(parts) - 1 if on_parent else len(parts)
        # One walk down, checking each directory before the name below it, as the kernel's path
        # walk does (resolving each prefix anew cost the square of the depth).
        memcg, cft = self.ctl.root, None
        for depth in range(last + 1):
            if depth:
                memcg, cft = self._step(memcg, parts[depth - 1], last=depth == len(parts))
            inode = self._inode_of(memcg, cft)
            if not _allows(inode, uid, groups, mask if depth == last else os.X_OK):
                raise fuse.FuseOSError(errno.EACCES)

    def _permit_owner(self, path: str) -> None:
        """chmod, chown, utime, xattrs on a user's mount: the owner or the superuser (EPERM)."""
        self._permit(path, 0)
        if self._superuser is None:
            return
        uid = self.request_context()[0]
        if uid not in (0, self._superuser) and uid != self._inode(path)[0].uid:
            raise fuse.FuseOSError(errno.EPERM)

    def access(self, path: str, amode: int) -> None:
        """access(2) and chdir on a user's mount (the kernel asks only without
        default_permissions)."""
        self._permit(path, amode)

    # -- metadata ------------------------------------------------------------------------------

    def _dir_inode(self, memcg: MemCgroup) -> Inode:
        inode = self._dirs.get(memcg)
        if inode is None:  # created outside mkdir (the controller API): the mount's owner
            inode = self._dirs[memcg] = Inode(GROUP_DIR_MODE, *self._owner, time.time_ns(),
                                              creator=self._owner)  # fmt: skip
        return inode

    def _file_inode(self, memcg: MemCgroup, cft: CfType) -> Inode:
        files = self._files.setdefault(memcg, {})
        inode = files.get(cft.name)
        if inode is None:
            d = self._dirs.get(memcg)
            uid, gid = d.creator if d is not None else self._owner
            born = d.mtime_ns if d is not None else time.time_ns()
            inode = files[cft.name] = Inode(cft.mode, uid, gid, born)
        return inode

    def _inode_of(self, memcg: MemCgroup, cft: CfType | None) -> Inode:
        return self._dir_inode(memcg) if cft is None else self._file_inode(memcg, cft)

    def _touch_dir(self, memcg: MemCgroup) -> None:
        """A directory's entries changed: its mtime moves, as kernfs's does."""
        self._dir_inode(memcg).mtime_ns = time.time_ns()

    def _inode(self, path: str) -> tuple[Inode, bool]:
        memcg, cft = self._resolve(path)
        if cft is None:
            return self._dir_inode(memcg), True
        return self._file_inode(memcg, cft), False

    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        handle = self._handles.get(fh) if fh is not None else None
        if handle is not None:
            inode, is_dir, memcg = self._file_inode(handle.memcg, handle.cft), False, handle.memcg
        elif path is None:
            raise fuse.FuseOSError(errno.ENOENT)
        else:
            self._permit(path, 0)  # a lookup: search permission on the directories above
            memcg, cft = self._resolve(path)
            is_dir = cft is None
            inode = self._dir_inode(memcg) if cft is None else self._file_inode(memcg, cft)
        kind = stat.S_IFDIR if is_dir else stat.S_IFREG
        return {
            "st_mode": kind | inode.mode,
            "st_nlink": 2 + len(memcg.children) if is_dir else 1,
            "st_size": 0,
            "st_blocks": 0,
            "st_blksize": BLOCK_SIZE,
            "st_uid": inode.uid,
            "st_gid": inode.gid,
            "st_atime": inode.mtime_ns,
            "st_mtime": inode.mtime_ns,
            "st_ctime": inode.mtime_ns,
        }

    def chmod(self, path: str, mode: int) -> None:
        self._permit_owner(path)
        inode, _ = self._inode(path)
        inode.mode = stat.S_IMODE(mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        self._permit_owner(path)
        inode, _ = self._inode(path)
        if uid != -1 and uid != 0xFFFFFFFF:
            inode.uid = uid
        if gid != -1 and gid != 0xFFFFFFFF:
            inode.gid = gid

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> None:
        self._permit_owner(path)
        inode, _ = self._inode(path)
        inode.mtime_ns = times[1] if times else time.time_ns()

    @staticmethod
    def _check_xattr_name(name: str) -> None:
        """kernfs keeps user., trusted. and security. attributes; a bare prefix is EINVAL."""
        if not name.startswith(XATTR_NAMESPACES):
            raise fuse.FuseOSError(errno.EOPNOTSUPP)
        if name in XATTR_NAMESPACES:
            raise fuse.FuseOSError(errno.EINVAL)

    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> None:
        self._check_xattr_name(name)
        self._permit_owner(path)
        inode, _ = self._inode(path)
        self.quotas.set_xattr(inode, name, value, options, self._caller().uid)

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        """A user's mount: a user.* value takes read permission, as xattr_permission() asks
        (trusted.* the VFS refuses first; security.* is left to the LSM)."""
        self._check_xattr_name(name)
        self._permit(path, os.R_OK if name.startswith(USER_XATTR_PREFIX) else 0)
        inode, _ = self._inode(path)
        try:
            return inode.xattrs[name]
        except KeyError:
            raise fuse.FuseOSError(errno.ENODATA) from None

    def listxattr(self, path: str) -> list[str]:
        self._permit(path, 0)  # the names need no permission on the file, only the path walk
        inode, _ = self._inode(path)
        return list(inode.xattrs)

    def removexattr(self, path: str, name: str) -> None:
        self._check_xattr_name(name)
        self._permit_owner(path)
        inode, _ = self._inode(path)
        self.quotas.remove_xattr(inode, name)

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": BLOCK_SIZE, "f_frsize": BLOCK_SIZE, "f_namemax": NAME_MAX}

    # -- directories ---------------------------------------------------------------------------

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> None:
        raise fuse.FuseOSError(errno.EINVAL)  # kernfs directories have no fsync

    def opendir(self, path: str) -> int:
        """Directories get handles too: with flag_nopath, readdir names its directory by one."""
        self._permit(path, os.R_OK)
        fh = next(self._next_fh)
        self._dirs_open[fh] = self._group(path)
        return fh

    def releasedir(self, path: str | None, fh: int) -> None:
        self._dirs_open.pop(fh, None)

    def readdir(self, path: str | None, fh: int) -> list[str]:
        memcg = self._dirs_open.get(fh)
        if memcg is None:
            if path is None:  # no handle and, with flag_nopath, no path either (as getattr)
                raise fuse.FuseOSError(errno.ENOENT)
            memcg = self._group(path)
        files = [cft.name for cft in self.table.files_of(memcg, strict=self.strict)]
        return [".", "..", *files, *memcg.children]

    def mkdir(self, path: str, mode: int) -> None:
        self._permit(path, os.W_OK | os.X_OK, on_parent=True)
        parent_path, name = self._split(path)
        parent = self._group(parent_path)
        if "\n" in name:
            raise fuse.FuseOSError(errno.EINVAL)
        if self.table.lookup(parent, name, strict=self.strict) is not None:
            raise fuse.FuseOSError(errno.EEXIST)
        caller = self._caller()
        if name not in parent.children:  # EEXIST comes first
            self.quotas.check_group(caller.uid)
        memcg = self.ctl.create_group(parent, name)
        self.quotas.group_made(caller.uid)
        owner = (caller.uid, caller.gid)
        self._dirs[memcg] = Inode(stat.S_IMODE(mode), *owner, time.time_ns(), creator=owner)
        self._touch_dir(parent)

    def rmdir(self, path: str) -> None:
        self._permit(path, os.W_OK | os.X_OK, on_parent=True)
        memcg, cft = self._resolve(path)
        if cft is not None:
            raise fuse.FuseOSError(errno.ENOTDIR)
        self.ctl.remove_group_now(memcg)  # its reclaim task exits before anything else runs
        self._forget_paths()
        inode = self._dir_inode(memcg)
        self.quotas.group_removed(inode.creator[0])
        for file_inode in [inode, *self._files.get(memcg, {}).values()]:
            self.quotas.forget(file_inode)
        if memcg.parent is not None:
            self._touch_dir(memcg.parent)

    def rename(self, old: str, new: str) -> None:
        self._permit(old, os.W_OK | os.X_OK, on_parent=True)
        self._permit(new, os.W_OK | os.X_OK, on_parent=True)
        memcg, cft = self._resolve(old)
        if cft is not None:
            raise fuse.FuseOSError(errno.ENOTDIR)
        new_parent_path, new_name = self._split(new)
        new_parent = self._group(new_parent_path)
        if "\n" in new_name:
            raise fuse.FuseOSError(errno.EINVAL)
        existing = new_parent.children.get(new_name)
        if self.table.lookup(new_parent, new_name, strict=self.strict) is not None:
            raise fuse.FuseOSError(errno.ENOTDIR)
        if existing is not None and existing is not memcg:
            raise fuse.FuseOSError(errno.EEXIST)
        if new_parent is not memcg.parent:
            raise fuse.FuseOSError(errno.EIO)  # cgroup v1 refuses to move a group elsewhere
        self.ctl.rename_group(memcg, new_name)
        self._forget_paths()
        self._touch_dir(new_parent)

    # -- creating and removing files: cgroupfs has no such operations --------------------------

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        raise fuse.FuseOSError(errno.EACCES)

    def mknod(self, path: str, mode: int, dev: int) -> None:
        raise fuse.FuseOSError(errno.EACCES if stat.S_ISREG(mode) else errno.EPERM)

    def unlink(self, path: str) -> None:
        _, cft = self._resolve(path)
        raise fuse.FuseOSError(errno.EISDIR if cft is None else errno.EPERM)

    def symlink(self, target: str, source: str) -> None:
        raise fuse.FuseOSError(errno.EPERM)

    def link(self, target: str, source: str) -> None:
        raise fuse.FuseOSError(errno.EPERM)

    def readlink(self, path: str) -> str:
        raise fuse.FuseOSError(errno.EINVAL)

    # -- files ---------------------------------------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        if self._superuser is not None:  # otherwise the kernel has checked (_permit)
            self._permit(path, _OPEN_MASKS[flags & os.O_ACCMODE])
        memcg, cft = self._resolve(path)
        if cft is None:
            raise fuse.FuseOSError(errno.EISDIR)
        fh = next(self._next_fh)
        self._handles[fh] = OpenFile(memcg, cft, opener_uid=self.request_context()[0])
        return fh

    def release(self, path: str, fh: int) -> None:
        self._handles.pop(fh, None)

    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        """cgroupfs accepts truncation and does nothing: ``echo 4M > f`` opens with O_TRUNC."""
        if path is not None:  # None: ftruncate on a descriptor whose group was removed
            self._permit(path, os.W_OK)
            self._resolve(path)

    def _handle(self, fh: int) -> OpenFile:
        handle = self._handles.get(fh)
        if handle is None:
            raise fuse.FuseOSError(errno.EBADF)
        return handle

    def read_request(self, fh: int, size: int, offset: int) -> bytes:
        """One read() of an open control file, from the FUSE session; an OSError carries the
        kernel's errno."""
        handle = self._handle(fh)
        cft = handle.cft
        if cft.read is None:
            raise fuse.FuseOSError(errno.EINVAL)
        # Continuing where the last read stopped serves the snapshot, even after rmdir (as
        # seq_file does); anything else renders afresh, which a removed group cannot.
        if offset == 0 or offset != handle.read_end:
            if handle.memcg.removed:
                raise fuse.FuseOSError(errno.ENODEV)
            text = cft.read(self.ctl, handle.memcg)
            handle.snapshot = text.encode("utf-8", "surrogateescape")
        data = handle.snapshot[offset : offset + size]
        handle.read_end = offset + len(data)
        return data

    def write_request(self, fh: int, data: bytes, caller: Caller) -> int | Awaitable[int]:
        """One write() to an open control file, from the FUSE session: the number of bytes
        taken, or, for a file declared ``write_blocking`` whose fast path (if any) did not do
        it, the write to wait for, which yields that number (the session awaits it in a task
        that an interrupted writer cancels); an OSError carries the kernel's errno."""
        handle = self._handle(fh)
        # kernfs_fop_write_iter()'s order: the size, then the node's liveness, then the handler.
        if len(data) > MAX_WRITE:
            raise fuse.FuseOSError(errno.E2BIG)
        if handle.memcg.removed:
            raise fuse.FuseOSError(errno.ENODEV)
        cft = handle.cft
        if not cft.writable:
            raise fuse.FuseOSError(errno.EINVAL)
        if not data:
            return 0
        if caller.uid != handle.opener_uid:  # a descriptor passed on, or a setuid writer
            caller = replace(caller, opener_uid=handle.opener_uid)
        count, data = len(data), terminate(data)
        if cft.write is not None:
            cft.write(self.ctl, handle.memcg, data, caller)
            return count
        assert cft.write_blocking is not None  # writable
        if cft.try_write is not None and cft.try_write(self.ctl, handle.memcg, data, caller):
            return count
        return _finish(cft.write_blocking(self.ctl, handle.memcg, data, caller), count)

    # -- after a burst: the controller's compact() calls this (registered by the server) -------

    def compact(self) -> None:
        """Shrink the tables of open descriptors to their size now: a dict keeps its peak size
        after a flood of opens is closed.  Changes no handle, order or identity."""
        shrink_dict(self._handles)
        shrink_dict(self._dirs_open)


async def _finish(pending: Awaitable[None], count: int) -> int:
    await pending
    return count


def _libfuse_context() -> tuple[int, int, int]:
    """uid, gid and pid of the request being served, as libfuse tells it."""
    uid, gid, pid = fuse.fuse_get_context()
    return uid, gid, pid


_OPEN_MASKS = {os.O_RDONLY: os.R_OK, os.O_WRONLY: os.W_OK, os.O_RDWR: os.R_OK | os.W_OK, 3: 0}


def _allows(inode: Inode, uid: int, groups: set[int], mask: int) -> bool:
    """The mode's owner, group or other bits (whichever class the caller is in) grant mask."""
    if uid == inode.uid:
        bits = inode.mode >> 6
    elif inode.gid in groups:
        bits = inode.mode >> 3
    else:
        bits = inode.mode
    return bits & mask == mask


def _groups_of(pid: int, gid: int) -> set[int]:
    """The caller's group and its supplementary groups (FUSE passes the first only)."""
    groups = {gid}
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Groups:"):
                    groups.update(int(g) for g in line.split()[1:])
                    break
    except (OSError, ValueError):
        pass
    return groups
