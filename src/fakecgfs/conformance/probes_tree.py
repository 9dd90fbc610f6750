"""What a probe does, for directories (mkdir, rmdir, rename, create and link), metadata,
descriptors held across rmdir, and inheritance: one function per kind of probe,
``kind(ctx, *case)``, returning the answer.  Which cases each kind runs on is in tables.py."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any

from .answers import Steps, kind_of, oct_mode, stat_dict, step_label, text
from .context import Ctx, listing
from .files import CHILD_FILES, INHERIT_READS

_p = os.path.join
LIM = "memory.limit_in_bytes"


# ---- mkdir ------------------------------------------------------------------------------------


def mkdir_named(ctx: Ctx, name: bytes, mode: int = 0o755, twice: bool = False) -> Any:
    g = ctx.fresh()
    path = os.path.join(os.fsencode(g), name)
    S = Steps()
    S.call("mkdir", "mkdir", ctx.mkdir, path, mode)
    ok = S.d["mkdir"] == "ok"
    if twice:
        S.call("mkdir again", "mkdir", ctx.mkdir, path, mode)
    if ok and name not in (b".", b"..") and name not in [os.fsencode(f) for f in CHILD_FILES]:
        st = os.stat(path)
        S.set("stat", stat_dict(st))
        S.set("control files", len([n for n in listing(path) if not n.endswith("/")]))
        S.set("read limit", ctx.read(os.fsdecode(os.path.join(path, b"memory.limit_in_bytes"))))
    S.set("parent nlink", os.stat(g).st_nlink)
    S.set("parent dirs", len([n for n in listing(g) if n.endswith("/")]))
    return S.d


def mkdir_twice(ctx: Ctx) -> Any:
    return mkdir_named(ctx, b"a", twice=True)


def mkdir_mode(ctx: Ctx, mode: int) -> Any:
    return mkdir_named(ctx, b"a", mode=mode)


def mkdir_at(ctx: Ctx, rel: str) -> Any:
    g = ctx.fresh()
    S = Steps()
    S.call("mkdir", "mkdir", ctx.mkdir, _p(g, rel))
    return S.d


def mkdir_nested(ctx: Ctx, depth: int) -> Any:
    g = ctx.fresh()
    S = Steps()
    path = g
    for level in range(1, depth + 1):
        path = _p(path, f"d{level}")
        S.call(f"mkdir depth {level}", "mkdir", ctx.mkdir, path)
    S.set("deepest stat", ctx.stat(path))
    S.set("deepest memory.stat", ctx.read(_p(path, "memory.stat")))
    return S.d


# ---- rmdir ------------------------------------------------------------------------------------


def rmdir_after(ctx: Ctx, setup: tuple[str, ...], target: str) -> Any:
    g = ctx.fresh()
    for rel in setup:
        ctx.mkdir(_p(g, rel))
    S = Steps()
    S.call("rmdir", "rmdir", ctx.rmdir, _p(g, target))
    S.set("listing dirs", [n for n in listing(g) if n.endswith("/")])
    return S.d


def rmdir_recreate(ctx: Ctx) -> Any:
    g = ctx.fresh()
    x = _p(g, "x")
    ctx.mkdir(x)
    S = Steps()
    for name, value in ((LIM, b"8192"), ("memory.swappiness", b"10"),
                        ("memory.oom_control", b"1"), ("notify_on_release", b"1")):  # fmt: skip
        S.set(f"write {name}", ctx.write(_p(x, name), value))
    S.call("chmod limit 0600", "chmod", ctx.guarded(os.chmod, _p(x, LIM)), 0o600)
    S.call("rmdir", "rmdir", ctx.rmdir, x)
    S.call("mkdir", "mkdir", ctx.mkdir, x)
    for name in (LIM, "memory.swappiness", "memory.oom_control", "notify_on_release"):
        S.set(f"read {name}", ctx.read(_p(x, name)))
    S.set("stat limit", ctx.stat(_p(x, LIM)))
    return S.d


# ---- rename -----------------------------------------------------------------------------------


def _short(rel: str) -> str:
    return "/".join(c if len(c) <= 40 else f"<{c[0]}*{len(c)}>" for c in rel.split("/"))


def rename(ctx: Ctx, setup: tuple[str, ...], src: str, dst: str, flags: int | None) -> Any:
    """rename(2), or renameat2(2) with ``flags``, after making the groups in ``setup``."""
    g = ctx.fresh()
    S = Steps()
    for rel in setup:
        ctx.mkdir(_p(g, rel))
        if rel == "a":  # before any child exists: a group with a child has usage > 0
            S.set("set a limit 1G", ctx.write(_p(g, "a", LIM), b"1G"))
    if flags is None:
        S.call("rename", "rename", ctx.rename, _p(g, src), _p(g, dst))
    else:
        S.call("renameat2", "renameat2", ctx.renameat2, _p(g, src), _p(g, dst), flags)
    tree = []
    for dirpath, dirnames, _ in os.walk(g):
        rel = os.path.relpath(dirpath, g)
        if rel != ".":
            tree.append(rel)
        dirnames.sort()
    S.set("tree", sorted(_short(rel) for rel in tree))
    for rel in sorted(tree):
        S.set(f"{_short(rel)} limit", ctx.read(_p(g, rel, LIM)))
    return S.d


# ---- create, link, unlink ---------------------------------------------------------------------


def create(ctx: Ctx, action: Callable[[Ctx, str], Any], syscall: str, with_sub: bool) -> Any:
    g = ctx.fresh()
    if with_sub:
        ctx.mkdir(_p(g, "sub"))
    S = Steps()
    S.call("op", syscall, action, ctx, g)
    S.set("listing-extra", sorted(set(listing(g)) - set(CHILD_FILES) - {"sub/"}))
    return S.d


def open_creat(ctx: Ctx, g: str) -> None:
    os.close(ctx.open(_p(g, "newfile"), os.O_WRONLY | os.O_CREAT, 0o644))


def open_creat_excl(ctx: Ctx, g: str) -> None:
    os.close(ctx.open(_p(g, "newfile"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def open_rdonly_creat(ctx: Ctx, g: str) -> None:
    os.close(ctx.open(_p(g, "newfile"), os.O_RDONLY | os.O_CREAT, 0o644))


def mknod_reg(ctx: Ctx, g: str) -> None:
    ctx.guarded(os.mknod, _p(g, "nodefile"))(0o644 | stat.S_IFREG)


def mknod_fifo(ctx: Ctx, g: str) -> None:
    ctx.guarded(os.mknod, _p(g, "fifo"))(0o644 | stat.S_IFIFO)


def mkfifo(ctx: Ctx, g: str) -> None:
    ctx.guarded(os.mkfifo, _p(g, "fifo"))(0o644)


def symlink(ctx: Ctx, g: str) -> None:
    ctx.guard(_p(g, "symlink"))
    os.symlink("tasks", _p(g, "symlink"))


def symlink_onto_file(ctx: Ctx, g: str) -> None:
    ctx.guard(_p(g, "memory.stat"))
    os.symlink("tasks", _p(g, "memory.stat"))


def link_file(ctx: Ctx, g: str) -> None:
    ctx.guard(_p(g, "hardlink"))
    ctx.guard(_p(g, "tasks"))
    os.link(_p(g, "tasks"), _p(g, "hardlink"))


def link_group(ctx: Ctx, g: str) -> None:
    ctx.guard(_p(g, "hardlink"))
    ctx.guard(_p(g, "sub"))
    os.link(_p(g, "sub"), _p(g, "hardlink"))


def unlink_tasks(ctx: Ctx, g: str) -> None:
    ctx.guarded(os.unlink, _p(g, "tasks"))()


def unlink_stat(ctx: Ctx, g: str) -> None:
    ctx.guarded(os.unlink, _p(g, "memory.stat"))()


def unlink_group(ctx: Ctx, g: str) -> None:
    ctx.guarded(os.unlink, _p(g, "sub"))()


def unlink_missing(ctx: Ctx, g: str) -> None:
    ctx.guarded(os.unlink, _p(g, "missing"))()


# ---- metadata ---------------------------------------------------------------------------------


def _in(g: str, name: str) -> str:
    return g if name == "." else _p(g, name)


def chmod(ctx: Ctx, name: str, mode: int) -> Any:
    g = ctx.fresh()
    path = _in(g, name)
    S = Steps()
    S.call("chmod", "chmod", ctx.guarded(os.chmod, path), mode)
    S.set("stat", ctx.stat(path))
    if name != ".":
        S.set("read", ctx.read(path))
    return S.d


def chmod_000_still_usable(ctx: Ctx) -> Any:
    g = ctx.fresh()
    path = _p(g, "memory.swappiness")
    S = Steps()
    S.call("chmod 000", "chmod", ctx.guarded(os.chmod, path), 0)
    S.set("write 10", ctx.write(path, b"10"))
    S.set("read", ctx.read(path))
    S.set("access R_OK", os.access(path, os.R_OK))
    S.set("access W_OK", os.access(path, os.W_OK))
    S.set("access X_OK", os.access(path, os.X_OK))
    return S.d


def access(ctx: Ctx, name: str) -> Any:
    path = _in(ctx.fresh(), name)
    return {m: os.access(path, getattr(os, m)) for m in ("F_OK", "R_OK", "W_OK", "X_OK")}


def chown(ctx: Ctx, name: str) -> Any:
    g = ctx.fresh()
    path = _in(g, name)
    S = Steps()
    S.call("chown 65534:65534", "chown", ctx.guarded(os.chown, path), 65534, 65534)
    st = os.stat(path)
    S.set("owner", [st.st_uid, st.st_gid])
    S.call("chown -1:0", "chown", ctx.guarded(os.chown, path), -1, 0)
    st = os.stat(path)
    S.set("owner after gid 0", [st.st_uid, st.st_gid])
    S.call("chown 0:0", "chown", ctx.guarded(os.chown, path), 0, 0)
    st = os.stat(path)
    S.set("owner after back", [st.st_uid, st.st_gid])
    S.set("stat", stat_dict(st))
    return S.d


def chown_then_mkdir(ctx: Ctx) -> Any:
    g = ctx.fresh()
    S = Steps()
    S.call("chown dir", "chown", ctx.guarded(os.chown, g), 65534, 65534)
    ctx.mkdir(_p(g, "sub"))
    st = os.stat(_p(g, "sub"))
    S.set("sub owner", [st.st_uid, st.st_gid])
    st = os.stat(_p(g, "sub", LIM))
    S.set("sub limit owner", [st.st_uid, st.st_gid])
    st = os.stat(_p(g, LIM))
    S.set("own limit owner", [st.st_uid, st.st_gid])
    return S.d


def utime(ctx: Ctx, name: str) -> Any:
    g = ctx.fresh()
    path = _in(g, name)
    S = Steps()
    S.call("utime", "utime", ctx.guarded(os.utime, path), (1_000_000_000, 1_000_000_000))
    st = os.stat(path)
    S.set("mtime set", st.st_mtime == 1_000_000_000)
    S.set("atime set", st.st_atime == 1_000_000_000)
    if name == LIM:
        S.set("write", ctx.write(path, b"8192"))
        S.set("mtime unchanged by write", os.stat(path).st_mtime == 1_000_000_000)
    if name == ".":
        ctx.mkdir(_p(g, "sub"))
        S.set("mtime unchanged by mkdir", os.stat(path).st_mtime == 1_000_000_000)
    return S.d


def xattr(ctx: Ctx, name: str, prefix: str) -> Any:
    g = ctx.fresh()
    path = _in(g, name)
    key = f"{prefix}.fakecgfs"
    S = Steps()
    S.call("listxattr fresh", "listxattr", os.listxattr, path, show=sorted)
    S.call("getxattr missing", "getxattr", os.getxattr, path, key, show=text)
    S.call("setxattr", "setxattr", ctx.guarded(os.setxattr, path), key, b"v1")
    S.call("getxattr", "getxattr", os.getxattr, path, key, show=text)
    S.call("setxattr create existing", "setxattr", ctx.guarded(os.setxattr, path), key, b"v2",
           os.XATTR_CREATE)  # fmt: skip
    S.call("setxattr replace", "setxattr", ctx.guarded(os.setxattr, path), key, b"v3",
           os.XATTR_REPLACE)  # fmt: skip
    S.call("getxattr after replace", "getxattr", os.getxattr, path, key, show=text)
    S.call("setxattr replace missing", "setxattr", ctx.guarded(os.setxattr, path),
           key + "2", b"v", os.XATTR_REPLACE)  # fmt: skip
    S.call("listxattr", "listxattr", os.listxattr, path, show=sorted)
    S.call("removexattr", "removexattr", ctx.guarded(os.removexattr, path), key)
    S.call("getxattr after remove", "getxattr", os.getxattr, path, key, show=text)
    S.call("removexattr missing", "removexattr", ctx.guarded(os.removexattr, path), key)
    if name != ".":
        S.set("read", ctx.read(path))
    return S.d


def xattr_name(ctx: Ctx, key: bytes) -> Any:
    path = _p(ctx.fresh(), LIM)
    S = Steps()
    S.call("setxattr", "setxattr", ctx.guarded(os.setxattr, path), key.decode(), b"v")
    S.call("getxattr", "getxattr", os.getxattr, path, key.decode(), show=text)
    return S.d


_TRUNCATE_OPEN = {"fd-rdonly": os.O_RDONLY, "fd-wronly": os.O_WRONLY, "fd-rdwr": os.O_RDWR}


def truncate(ctx: Ctx, how: str, length: int) -> Any:
    """truncate(2) the limit file ("path") or the group ("dir"), or ftruncate(2) the limit file
    opened as ``how`` says."""
    g = ctx.fresh()
    path = _p(g, LIM)
    S = Steps()
    S.set("write 8192", ctx.write(path, b"8192"))
    if how == "path":
        S.call("truncate", "truncate", ctx.guarded(os.truncate, path), length)
    elif how == "dir":
        S.call("truncate", "truncate", ctx.guarded(os.truncate, g), length)
    else:
        fd = ctx.open(path, _TRUNCATE_OPEN[how])
        S.call("ftruncate", "ftruncate", os.ftruncate, fd, length)
        os.close(fd)
    S.set("read", ctx.read(path))
    S.set("stat", ctx.stat(path))
    return S.d


def fsync(ctx: Ctx, name: str, flags: int) -> Any:
    fd = ctx.open(_in(ctx.fresh(), name), flags)
    S = Steps()
    S.call("fsync", "fsync", os.fsync, fd)
    S.call("fdatasync", "fdatasync", os.fdatasync, fd)
    os.close(fd)
    return S.d


# ---- descriptors held across rmdir ------------------------------------------------------------


def held_across_rmdir(ctx: Ctx, name: str, flags: int, pre_read: int, recreate: bool) -> Any:
    g = ctx.fresh()
    sub = _p(g, "sub")
    ctx.mkdir(sub)
    S = Steps()
    fd = ctx.open(_in(sub, name), flags)
    if pre_read:
        S.call(f"read({pre_read}) before", "read", os.read, fd, pre_read, show=text)
    S.call("rmdir", "rmdir", ctx.rmdir, sub)
    if recreate:
        S.call("mkdir again", "mkdir", ctx.mkdir, sub)
    S.call("read", "read", os.read, fd, 100, show=text)
    S.call("pread", "pread", os.pread, fd, 100, 0, show=text)
    if flags & os.O_ACCMODE != os.O_RDONLY:
        S.call("write", "write", os.write, fd, b"8192")
    S.call("lseek", "lseek", os.lseek, fd, 0, os.SEEK_SET)
    S.call("fstat", "fstat", os.fstat, fd,
           show=lambda st: {"type": kind_of(st.st_mode), "mode": oct_mode(st.st_mode),
                            "size": st.st_size})  # fmt: skip
    S.call("fsync", "fsync", os.fsync, fd)
    S.call("close", "close", os.close, fd)
    if recreate:
        S.set("new group limit", ctx.read(_p(sub, LIM)))
    return S.d


# ---- inheritance and hierarchy ----------------------------------------------------------------


def _read_inherited(ctx: Ctx, S: Steps, prefix: str, group: str) -> None:
    for name in INHERIT_READS:
        S.set(f"{prefix} {name}", ctx.read(_p(group, name)))


def inherit_defaults(ctx: Ctx) -> Any:
    g = ctx.fresh()
    ctx.mkdir(_p(g, "c"))
    S = Steps()
    _read_inherited(ctx, S, "child", _p(g, "c"))
    return S.d


def inherit_one(ctx: Ctx, name: str, first: bytes, second: bytes) -> Any:
    g = ctx.fresh()
    S = Steps()
    S.set(f"parent write {step_label(first)}", ctx.write(_p(g, name), first))
    S.call("mkdir c", "mkdir", ctx.mkdir, _p(g, "c"))
    S.set("child", ctx.read(_p(g, "c", name)))
    S.set(f"parent write {step_label(second)}", ctx.write(_p(g, name), second))
    S.set("parent", ctx.read(_p(g, name)))
    S.set("child after parent change", ctx.read(_p(g, "c", name)))
    S.call("mkdir c2", "mkdir", ctx.mkdir, _p(g, "c2"))
    S.set("new child", ctx.read(_p(g, "c2", name)))
    S.call("mkdir c/gc", "mkdir", ctx.mkdir, _p(g, "c", "gc"))
    S.set("grandchild", ctx.read(_p(g, "c", "gc", name)))
    return S.d


def inherit_limits_and_hierarchical_stat(ctx: Ctx) -> Any:
    g = ctx.fresh()
    S = Steps()
    for name, value in ((LIM, b"1G"), ("memory.memsw.limit_in_bytes", b"2G"),
                        ("memory.soft_limit_in_bytes", b"512M"),
                        ("memory.kmem.tcp.limit_in_bytes", b"256M")):  # fmt: skip
        S.set(f"parent write {name}", ctx.write(_p(g, name), value))
    c = _p(g, "c")
    S.call("mkdir c", "mkdir", ctx.mkdir, c)
    _read_inherited(ctx, S, "child", c)
    S.set("child memory.stat", ctx.read(_p(c, "memory.stat")))
    S.set("child write limit 2G", ctx.write(_p(c, LIM), b"2G"))
    S.set("child write memsw 4G", ctx.write(_p(c, "memory.memsw.limit_in_bytes"), b"4G"))
    S.set("child limit", ctx.read(_p(c, LIM)))
    S.set("child memory.stat after own 2G", ctx.read(_p(c, "memory.stat")))
    S.set("parent write limit 512M", ctx.write(_p(g, LIM), b"512M"))
    S.set("child memory.stat after parent 512M", ctx.read(_p(c, "memory.stat")))
    S.set("child write limit 256M", ctx.write(_p(c, LIM), b"256M"))
    S.set("child memory.stat after own 256M", ctx.read(_p(c, "memory.stat")))
    gc = _p(c, "gc")
    S.call("mkdir gc", "mkdir", ctx.mkdir, gc)
    S.set("grandchild memory.stat", ctx.read(_p(gc, "memory.stat")))
    S.set("grandchild numa_stat", ctx.read(_p(gc, "memory.numa_stat")))
    return S.d


def inherit_hierarchical_memsw(ctx: Ctx) -> Any:
    g = ctx.fresh()
    S = Steps()
    S.set("parent limit 1G", ctx.write(_p(g, LIM), b"1G"))
    S.set("parent memsw 1G", ctx.write(_p(g, "memory.memsw.limit_in_bytes"), b"1G"))
    S.set("parent limit -1 (rejected?)", ctx.write(_p(g, LIM), b"-1"))
    c = _p(g, "c")
    ctx.mkdir(c)
    S.set("child memory.stat", ctx.read(_p(c, "memory.stat")))
    return S.d


def use_hierarchy_with_child(ctx: Ctx) -> Any:
    g = ctx.fresh()
    ctx.mkdir(_p(g, "c"))
    S = Steps()
    for value in (b"0", b"1", b"2", b"0\n"):
        S.set(f"write {step_label(value)}", ctx.write(_p(g, "memory.use_hierarchy"), value))
    S.set("read", ctx.read(_p(g, "memory.use_hierarchy")))
    S.set("child", ctx.read(_p(g, "c", "memory.use_hierarchy")))
    return S.d


def below_usage(ctx: Ctx, name: str, value: bytes) -> Any:
    """A parent with a child has kernel memory charged (usage > 0) but no tasks."""
    g = ctx.fresh()
    ctx.mkdir(_p(g, "c"))
    S = Steps()
    S.set("write", ctx.write(_p(g, name), value))
    S.set("read", ctx.read(_p(g, name)))
    S.set("failcnt", ctx.read(_p(g, "memory.failcnt")))
    return S.d


def force_empty_with_child(ctx: Ctx) -> Any:
    g = ctx.fresh()
    ctx.mkdir(_p(g, "c"))
    return {"write": ctx.write(_p(g, "memory.force_empty"), b"0")}
