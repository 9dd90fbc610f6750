"""The mount namespace of ``fakecgfs run``: private, without the host's cgroup hierarchies, with
an empty directory for the fake.

This process leaves the host's mount namespace (unshare(CLONE_NEWNS), or, without root,
CLONE_NEWUSER|CLONE_NEWNS with the caller mapped to root, as ``unshare -rm`` does), makes every
mount private so that nothing propagates back, and hides the host's cgroup hierarchies: each
cgroup and cgroup2 mount is detached (a user namespace cannot detach what it inherited: those
stay, covered), and /sys/fs/cgroup gets a fresh tmpfs, so that the fake is all the command
finds there.  The namespace, and every mount made in it, disappears with its last process:
the host never sees any of it.

Outside /sys/fs/cgroup, PATH is covered by an empty tmpfs; if it does not exist, it is not
created on the host: its nearest existing ancestor is covered by a tmpfs in which the ancestor's
entries are bind-mounted back (so siblings stay visible) and the missing directories are made.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_FSTYPES = ("cgroup", "cgroup2")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]  # fmt: skip
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]


class RunError(Exception):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def unshare(flags: int) -> None:
    if hasattr(os, "unshare"):  # Python 3.12+
        os.unshare(flags)
    else:
        _check(_libc.unshare(flags), f"unshare({flags:#x})")


def unshare_mounts() -> None:
    unshare(CLONE_NEWNS)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enter_user_namespace() -> None:
    """A new user and mount namespace where the caller is root (``unshare -rm``): it may
    mount there, and FUSE mounts work in it (Linux 4.18) where /dev/fuse can be opened."""
    uid, gid = os.geteuid(), os.getegid()
    unshare(CLONE_NEWUSER | CLONE_NEWNS)
    _write("/proc/self/setgroups", "deny")  # required before an unprivileged gid_map
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:  # fmt: skip
    encode = lambda s: None if s is None else os.fsencode(s)
    _check(_libc.mount(encode(source), encode(target), encode(fstype), flags,
                       encode(data)), f"mount {target}")  # fmt: skip


def detach(target: str) -> None:
    _check(_libc.umount2(os.fsencode(target), MNT_DETACH), f"umount {target}")


def _unescape(field: str) -> str:
    """A mount point as mountinfo escapes it (space, tab, newline, backslash in octal)."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")  # fmt: skip


def cgroup_mounts(mountinfo: str) -> list[str]:
    """The mount points of every cgroup and cgroup2 mount in a mountinfo text, deepest
    first (the order to detach them in)."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        try:
            fstype = fields[fields.index("-", 6) + 1]
        except (ValueError, IndexError):
            continue
        if fstype in CGROUP_FSTYPES:
            points.append(_unescape(fields[4]))
    return sorted(points, key=lambda p: p.count("/"), reverse=True)


def hide_cgroup_hierarchies() -> None:
    """Detach every cgroup mount, then give /sys/fs/cgroup a fresh, empty tmpfs.  Mounts a
    user namespace inherited are locked (EINVAL): the tmpfs covers those instead; they are
    still listed in /proc/self/mountinfo, which the supervisor leaves them out of."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        points = cgroup_mounts(f.read())
    for point in points:
        try:
            detach(point)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM, errno.ENOENT):
                raise
    if os.path.isdir(CGROUP_ROOT):
        mount("tmpfs", CGROUP_ROOT, "tmpfs", 0, "mode=755")


def _cover_with_tmpfs(path: str) -> None:
    st = os.stat(path)
    mode = f"mode={stat.S_IMODE(st.st_mode):o}"
    try:
        mount("tmpfs", path, "tmpfs", 0, f"{mode},uid={st.st_uid},gid={st.st_gid}")
    except OSError as e:
        # In a user namespace the owner may not be mapped (it shows as the overflow uid,
        # 65534), and tmpfs refuses an unmapped uid= with EINVAL: the namespace's root owns it.
        if e.errno != errno.EINVAL:
            raise
        mount("tmpfs", path, "tmpfs", 0, mode)


def _mirror_and_create(target: str) -> None:
    """Make ``target`` (which does not exist) without touching the host: cover its nearest
    existing ancestor with a tmpfs holding bind mounts of the ancestor's entries."""
    ancestor = os.path.dirname(target)
    while not os.path.isdir(ancestor):
        if os.path.lexists(ancestor):
            raise RunError(f"{ancestor} is not a directory")
        ancestor = os.path.dirname(ancestor)
    if ancestor == "/":
        raise RunError(f"{target}: will not cover / with a tmpfs; create {target} first")
    entries = os.listdir(ancestor)
    original = os.open(ancestor, os.O_PATH | os.O_DIRECTORY)
    try:
        _cover_with_tmpfs(ancestor)
        old = f"/proc/self/fd/{original}"  # still reaches the covered directory and its mounts
        for name in entries:
            source, here = os.path.join(old, name), os.path.join(ancestor, name)
            try:
                st = os.lstat(source)
                if stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(source), here)
                    continue
                if stat.S_ISDIR(st.st_mode):
                    os.mkdir(here)
                else:
                    os.close(os.open(here, os.O_CREAT | os.O_WRONLY, 0o600))
                mount(source, here, None, MS_BIND | MS_REC)
            except OSError as e:
                print(f"fakecgfs run: {ancestor}/{name} not visible in the namespace: {e}",
                      file=sys.stderr)  # fmt: skip
    finally:
        os.close(original)
    os.makedirs(target, mode=0o755)


def _enter_namespace() -> None:
    """A private mount namespace: as root directly, otherwise in a user namespace."""
    if os.geteuid() == 0:
        try:
            unshare_mounts()
            return
        except PermissionError:  # root without CAP_SYS_ADMIN (a container): try as a user
            pass
    enter_user_namespace()


def prepare(target: str) -> None:
    """Leave the host's mount namespace, hide its cgroup hierarchies and give ``target`` an
    empty directory to mount on."""
    _enter_namespace()
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    hide_cgroup_hierarchies()
    in_fresh_tmpfs = target == CGROUP_ROOT or target.startswith(CGROUP_ROOT + "/")
    if in_fresh_tmpfs and os.path.isdir(CGROUP_ROOT):
        os.makedirs(target, mode=0o755, exist_ok=True)
    elif os.path.isdir(target):
        _cover_with_tmpfs(target)
    elif os.path.lexists(target):
        raise RunError(f"{target}: not a directory")
    else:
        _mirror_and_create(target)
