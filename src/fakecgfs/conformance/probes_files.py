"""What a probe does, for the root, a fresh child's files, reads through a descriptor, writes
and opens: one function per kind of probe, ``kind(ctx, *case)``, returning the answer.  Which
cases each kind runs on is in tables.py."""

from __future__ import annotations

import os
import select
from typing import Any

from .answers import Steps, capture, err, kind_of, oct_mode, step_label, text
from .context import CLOSED_FD, GROUP_PREFIX, Ctx, listing, read_all, statfs_type, statvfs_dict
from .files import CHILD_FILES

_p = os.path.join


# ---- root (read-only) ------------------------------------------------------------------------


def root_listing(ctx: Ctx) -> Any:
    return {"files": [n for n in listing(ctx.root) if not n.endswith("/")]}


def root_dir(ctx: Ctx) -> Any:
    st = os.stat(ctx.root)
    return {"type": kind_of(st.st_mode), "mode": oct_mode(st.st_mode), "size": st.st_size}


def root_nlink(ctx: Ctx) -> Any:
    return {"nlink": os.stat(ctx.root).st_nlink}


def root_other_dirs(ctx: Ctx) -> Any:
    return {"dirs": [n for n in listing(ctx.root)
                     if n.endswith("/") and not n.startswith(GROUP_PREFIX)]}  # fmt: skip


def root_stat(ctx: Ctx, name: str) -> Any:
    return ctx.stat(_p(ctx.root, name))


def root_read(ctx: Ctx, name: str) -> Any:
    return {"read": ctx.read(_p(ctx.root, name))}


def root_f_type(ctx: Ctx) -> Any:
    return {"f_type": capture("statfs", lambda: hex(statfs_type(ctx.root)))}


def root_statvfs(ctx: Ctx) -> Any:
    return statvfs_dict(ctx.root)


# ---- fresh child: listing, stat, reads -------------------------------------------------------


def child_listing(ctx: Ctx) -> Any:
    return {"listing": listing(ctx.fresh())}


def child_listing_with_subgroup(ctx: Ctx) -> Any:
    g = ctx.fresh()
    ctx.mkdir(_p(g, "sub"))
    own = listing(g)
    sub = listing(_p(g, "sub"))
    return {"listing": own,
            "sub listing": "same as parent's files" if sub == [n for n in own if n != "sub/"]
            else sub}  # fmt: skip


def child_dir_stat(ctx: Ctx) -> Any:
    return ctx.stat(ctx.fresh())


def child_nlink(ctx: Ctx) -> Any:
    g = ctx.fresh()
    S = Steps()
    S.set("before", os.stat(g).st_nlink)
    S.call("mkdir a", "mkdir", ctx.mkdir, _p(g, "a"))
    S.set("after mkdir a", os.stat(g).st_nlink)
    S.call("mkdir b", "mkdir", ctx.mkdir, _p(g, "b"))
    S.set("after mkdir b", os.stat(g).st_nlink)
    S.call("mkdir a/c", "mkdir", ctx.mkdir, _p(g, "a", "c"))
    S.set("after mkdir a/c", os.stat(g).st_nlink)
    S.set("a after mkdir a/c", os.stat(_p(g, "a")).st_nlink)
    S.set("stat a", ctx.stat(_p(g, "a")))
    S.call("rmdir b", "rmdir", ctx.rmdir, _p(g, "b"))
    S.set("after rmdir b", os.stat(g).st_nlink)
    return S.d


def child_stat(ctx: Ctx, name: str) -> Any:
    return ctx.stat(_p(ctx.fresh(), name))


def child_f_type(ctx: Ctx) -> Any:
    g = ctx.fresh()
    return {"f_type": capture("statfs", lambda: hex(statfs_type(g)))}


def child_statvfs(ctx: Ctx) -> Any:
    return statvfs_dict(ctx.fresh())


def child_read(ctx: Ctx, name: str) -> Any:
    return {"read": ctx.read(_p(ctx.fresh(), name))}


def read_rdwr(ctx: Ctx, name: str) -> Any:
    g = ctx.fresh()
    S = Steps()
    fd = S.call("open", "open", ctx.open, _p(g, name), os.O_RDWR, show=lambda _: "ok")
    if fd is not None:
        S.call("read", "read", read_all, fd, show=text)
        os.close(fd)
    return S.d


# ---- fd reading semantics ---------------------------------------------------------------------


def read_in_chunks(ctx: Ctx, name: str, size: int) -> Any:
    g = ctx.fresh()
    fd = ctx.open(_p(g, name), os.O_RDONLY)
    chunks: list[Any] = []
    try:
        for _ in range(5000):
            try:
                data = os.read(fd, size)
            except OSError as exc:
                chunks.append(err(exc, "read"))
                break
            chunks.append(text(data))
            if not data:
                break
    finally:
        os.close(fd)
    return {"chunks": chunks}


def pread_then_read(ctx: Ctx, name: str, offset: int) -> Any:
    g = ctx.fresh()
    fd = ctx.open(_p(g, name), os.O_RDONLY)
    S = Steps()
    S.call("pread", "pread", os.pread, fd, 100, offset, show=text)
    S.call("then read", "read", os.read, fd, 100, show=text)
    S.call("offset", "lseek", os.lseek, fd, 0, os.SEEK_CUR)
    os.close(fd)
    return S.d


_WHENCE = {os.SEEK_SET: "SET", os.SEEK_CUR: "CUR", os.SEEK_END: "END", os.SEEK_DATA: "DATA",
           os.SEEK_HOLE: "HOLE"}  # fmt: skip


def lseek_sequence(ctx: Ctx, name: str, ops: tuple[tuple[str, int, int], ...]) -> Any:
    """``ops``: ("read", size, 0) or ("seek", offset, whence), in order, on one descriptor."""
    g = ctx.fresh()
    fd = ctx.open(_p(g, name), os.O_RDONLY)
    S = Steps()
    for op, a, b in ops:
        if op == "read":
            S.call(f"read({a})", "read", os.read, fd, a, show=text)
        else:
            S.call(f"lseek({a},{_WHENCE[b]})", "lseek", os.lseek, fd, a, b)
    os.close(fd)
    return S.d


def read_while_changed(ctx: Ctx, steps: tuple[tuple[Any, ...], ...]) -> Any:
    """A descriptor A open on memory.limit_in_bytes while another writer B changes it:
    ``steps`` are (label, "read", size), (label, "pread", size, offset), (label, "lseek",
    offset) on A and (label, "write", data) by B, in order."""
    g = ctx.fresh()
    path = _p(g, "memory.limit_in_bytes")
    S = Steps()
    fa = ctx.open(path, os.O_RDONLY)
    for label, op, *args in steps:
        if op == "read":
            S.call(label, "read", os.read, fa, *args, show=text)
        elif op == "pread":
            S.call(label, "pread", os.pread, fa, *args, show=text)
        elif op == "lseek":
            S.call(label, "lseek", os.lseek, fa, *args, os.SEEK_SET)
        elif op == "write":
            S.set(label, ctx.write(path, *args))
    os.close(fa)
    return S.d


def rdwr_write_then_read(ctx: Ctx, name: str, value: bytes) -> Any:
    g = ctx.fresh()
    S = Steps()
    fd = ctx.open(_p(g, name), os.O_RDWR)
    S.call("write", "write", os.write, fd, value)
    S.call("offset", "lseek", os.lseek, fd, 0, os.SEEK_CUR)
    S.call("read", "read", os.read, fd, 100, show=text)
    S.call("lseek 0", "lseek", os.lseek, fd, 0, os.SEEK_SET)
    S.call("read after lseek", "read", os.read, fd, 100, show=text)
    os.close(fd)
    return S.d


def rdwr_read_write_read(ctx: Ctx) -> Any:
    g = ctx.fresh()
    S = Steps()
    fd = ctx.open(_p(g, "memory.limit_in_bytes"), os.O_RDWR)
    S.call("read(5)", "read", os.read, fd, 5, show=text)
    S.call("write", "write", os.write, fd, b"8192")
    S.call("offset", "lseek", os.lseek, fd, 0, os.SEEK_CUR)
    S.call("read", "read", os.read, fd, 100, show=text)
    os.close(fd)
    S.set("readback", ctx.read(_p(g, "memory.limit_in_bytes")))
    return S.d


def read_directory(ctx: Ctx) -> Any:
    g = ctx.fresh()
    S = Steps()
    fd = ctx.open(g, os.O_RDONLY | os.O_DIRECTORY)
    S.call("read", "read", os.read, fd, 100, show=text)
    S.call("lseek(0,END)", "lseek", os.lseek, fd, 0, os.SEEK_END)
    os.close(fd)
    return S.d


_POLL_ALL = (select.POLLIN | select.POLLPRI | select.POLLOUT | select.POLLERR | select.POLLHUP
             | select.POLLRDNORM | select.POLLWRNORM)  # fmt: skip


def poll_once(ctx: Ctx, name: str, flags: int) -> Any:
    g = ctx.fresh()
    fd = ctx.open(_p(g, name), flags)
    poller = select.poll()
    poller.register(fd, _POLL_ALL)
    events = poller.poll(0)
    os.close(fd)
    return {"revents": hex(events[0][1]) if events else "0x0"}


# ---- writes of single values ------------------------------------------------------------------


def write_then_read(ctx: Ctx, name: str, data: bytes) -> Any:
    g = ctx.fresh()
    path = _p(g, name)
    return {"write": ctx.write(path, data), "read": ctx.read(path)}


def reset_write(ctx: Ctx, name: str, data: bytes) -> Any:
    g = ctx.fresh()
    path = _p(g, name)
    return {"before": ctx.read(path), "write": ctx.write(path, data), "read": ctx.read(path)}


def force_empty(ctx: Ctx, data: bytes) -> Any:
    g = ctx.fresh()
    return {"write": ctx.write(_p(g, "memory.force_empty"), data),
            "usage": ctx.read(_p(g, "memory.usage_in_bytes")),
            "max_usage": ctx.read(_p(g, "memory.max_usage_in_bytes"))}  # fmt: skip


def pid_write(ctx: Ctx, name: str, data: bytes) -> Any:
    g = ctx.fresh()
    return {"write": ctx.write(_p(g, name), data), "tasks": ctx.read(_p(g, "tasks")),
            "cgroup.procs": ctx.read(_p(g, "cgroup.procs"))}  # fmt: skip


def memsw_after_limit(ctx: Ctx, data: bytes, limit: bytes) -> Any:
    g = ctx.fresh()
    path = _p(g, "memory.memsw.limit_in_bytes")
    return {"setup limit": ctx.write(_p(g, "memory.limit_in_bytes"), limit),
            "write": ctx.write(path, data), "read": ctx.read(path),
            "read limit": ctx.read(_p(g, "memory.limit_in_bytes"))}  # fmt: skip


def write_empty(ctx: Ctx, name: str) -> Any:
    return write_then_read(ctx, name, b"")


def limit_order(ctx: Ctx, writes: tuple[tuple[str, bytes], ...]) -> Any:
    g = ctx.fresh()
    S = Steps()
    for name, data in writes:
        S.set(f"write {name} {step_label(data)}", ctx.write(_p(g, name), data))
    for name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
                 "memory.soft_limit_in_bytes"):  # fmt: skip
        S.set(f"read {name}", ctx.read(_p(g, name)))
    return S.d


# ---- writes on one fd -------------------------------------------------------------------------


def fd_write_sequence(ctx: Ctx, name: str, flags: int, ops: tuple[tuple[str, Any], ...]) -> Any:
    """``ops`` on one descriptor: ("write", data), ("writev", [data...]), ("pwrite", (data,
    offset)), ("lseek", offset), ("read", None) or ("readback", None): a fresh open's read."""
    g = ctx.fresh()
    path = _p(g, name)
    S = Steps()
    fd = S.call("open", "open", ctx.open, path, flags, show=lambda _: "ok")
    if fd is None:
        return S.d
    for op, arg in ops:
        if op == "write":
            S.call(f"write {step_label(arg)}", "write", os.write, fd, arg)
        elif op == "writev":
            S.call("writev " + "|".join(step_label(a) for a in arg), "writev", os.writev, fd, arg)
        elif op == "pwrite":
            data, off = arg
            S.call(f"pwrite {step_label(data)} @{off}", "pwrite", os.pwrite, fd, data, off)
        elif op == "lseek":
            S.call(f"lseek {arg}", "lseek", os.lseek, fd, arg, os.SEEK_SET)
        elif op == "read":
            S.call("read", "read", os.read, fd, 100, show=text)
        elif op == "readback":
            S.set("readback", ctx.read(path))
    S.call("close", "close", os.close, fd)
    S.set("readback", ctx.read(path))
    return S.d


def write_after_chmod_000(ctx: Ctx) -> Any:
    g = ctx.fresh()
    path = _p(g, "memory.limit_in_bytes")
    S = Steps()
    S.call("chmod 000", "chmod", ctx.guarded(os.chmod, path), 0)
    S.set("write 8192", ctx.write(path, b"8192"))
    S.set("read", ctx.read(path))
    S.set("stat", ctx.stat(path))
    return S.d


# ---- open flags -------------------------------------------------------------------------------


def open_close(ctx: Ctx, name: str, flags: int) -> Any:
    g = ctx.fresh()
    path = g if name == "." else _p(g, name)
    S = Steps()
    fd = S.call("open", "open", ctx.open, path, flags, 0o644, show=lambda _: "ok")
    if fd is not None:
        S.call("close", "close", os.close, fd)
    if name != "." and flags & (os.O_TRUNC | os.O_APPEND | os.O_CREAT):
        S.set("readback", ctx.read(path))
        S.set("stat", ctx.stat(path))
    return S.d


def open_missing(ctx: Ctx, flags: int) -> Any:
    g = ctx.fresh()
    S = Steps()
    fd = S.call("open", "open", ctx.open, _p(g, "memory.nonexistent"), flags, show=lambda _: "ok")
    if fd is not None:
        os.close(fd)
    S.set("listing-extra", sorted(set(listing(g)) - set(CHILD_FILES)))
    return S.d


# ---- cgroup.event_control ---------------------------------------------------------------------


def event_control(ctx: Ctx, line: str, cfile: str, efd_kind: str, cfd_kind: str) -> Any:
    """Write one registration ``line`` ({efd} and {cfd} replaced by the descriptors) naming an
    event fd of ``efd_kind`` (eventfd, pipe, file, closed) and a control file ``cfile`` opened
    as ``cfd_kind`` (file, other-group, dir, wronly, closed)."""
    g = ctx.fresh()
    S = Steps()
    ecfd = ctx.open(_p(g, "cgroup.event_control"), os.O_WRONLY)
    to_close = [ecfd]
    if cfd_kind == "file":
        cfd = ctx.open(_p(g, cfile), os.O_RDONLY)
        to_close.append(cfd)
    elif cfd_kind == "other-group":
        h = ctx.fresh()
        cfd = ctx.open(_p(h, cfile), os.O_RDONLY)
        to_close.append(cfd)
    elif cfd_kind == "dir":
        cfd = ctx.open(g, os.O_RDONLY | os.O_DIRECTORY)
        to_close.append(cfd)
    elif cfd_kind == "wronly":
        cfd = ctx.open(_p(g, cfile), os.O_WRONLY)
        to_close.append(cfd)
    else:  # closed
        cfd = CLOSED_FD
    efd_is_eventfd = False
    if efd_kind == "eventfd":
        efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        efd_is_eventfd = True
        to_close.append(efd)
    elif efd_kind == "pipe":
        r, w = os.pipe()
        efd = r
        to_close += [r, w]
    elif efd_kind == "file":
        efd = ctx.open(_p(g, "memory.stat"), os.O_RDONLY)
        to_close.append(efd)
    else:  # closed
        efd = CLOSED_FD
    for fd in (cfd, efd):
        if fd == CLOSED_FD:
            try:
                os.fstat(CLOSED_FD)
            except OSError:
                pass
            else:
                raise RuntimeError(f"fd {CLOSED_FD} unexpectedly open")
    data = line.replace("{efd}", str(efd)).replace("{cfd}", str(cfd)).encode()
    S.call("write", "write", whole_write, ecfd, data)
    if efd_is_eventfd:
        S.call("eventfd count", "read", os.eventfd_read, efd)
    for fd in reversed(to_close):
        os.close(fd)
    return S.d


def pressure_event(ctx: Ctx, argument: bytes) -> Any:
    line = "{efd} {cfd} " + argument.decode() if argument else "{efd} {cfd}"
    return event_control(ctx, line, "memory.pressure_level", "eventfd", "file")


def whole_write(fd: int, line: bytes) -> str:
    """Write a registration line; event_control lines hold fd numbers, which depend on the
    recording process, so record that the whole line was taken rather than its length."""
    return "ok (whole line)" if os.write(fd, line) == len(line) else "short write"


def rmdir_signals_eventfds(ctx: Ctx) -> Any:
    g = ctx.fresh()
    sub = _p(g, "sub")
    ctx.mkdir(sub)
    S = Steps()
    ecfd = ctx.open(_p(sub, "cgroup.event_control"), os.O_WRONLY)
    efds = {}
    cfds = []
    for label, cfile, args in (("usage", "memory.usage_in_bytes", " 4096"),
                               ("memsw", "memory.memsw.usage_in_bytes", " 4096"),
                               ("oom", "memory.oom_control", ""),
                               ("pressure", "memory.pressure_level", " low")):  # fmt: skip
        efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        cfd = ctx.open(_p(sub, cfile), os.O_RDONLY)
        cfds.append(cfd)
        efds[label] = efd
        S.call(f"register {label}", "write", whole_write, ecfd, f"{efd} {cfd}{args}".encode())
        S.call(f"{label} count after register", "read", os.eventfd_read, efd)
    os.close(ecfd)
    for cfd in cfds:
        os.close(cfd)
    S.call("rmdir", "rmdir", ctx.rmdir, sub)
    for label, efd in efds.items():
        readable, _, _ = select.select([efd], [], [], 3.0)
        S.set(f"{label} signalled", bool(readable))
        S.call(f"{label} count after rmdir", "read", os.eventfd_read, efd)
        os.close(efd)
    return S.d


def register_twice(ctx: Ctx) -> Any:
    g = ctx.fresh()
    S = Steps()
    ecfd = ctx.open(_p(g, "cgroup.event_control"), os.O_WRONLY)
    cfd = ctx.open(_p(g, "memory.usage_in_bytes"), os.O_RDONLY)
    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    S.call("first", "write", whole_write, ecfd, f"{efd} {cfd} 4096".encode())
    S.call("second same", "write", whole_write, ecfd, f"{efd} {cfd} 4096".encode())
    S.call("third other threshold", "write", whole_write, ecfd, f"{efd} {cfd} 8192".encode())
    S.call("count", "read", os.eventfd_read, efd)
    for fd in (efd, cfd, ecfd):
        os.close(fd)
    return S.d
