"""Differential conformance probe for a cgroup v1 memory hierarchy.

``record`` runs a fixed, ordered list of small syscall probes against the mount
root of a v1 memory hierarchy (the real ``/sys/fs/cgroup/memory`` or a fakecgfs
mount) and writes every answer to JSON; ``diff`` compares two recordings.  The
kernel recording is the golden answer that fakecgfs must reproduce.

Safety rules built into the tool (they matter when ROOT is the real kernel):

* everything is created under one group ``ROOT/fakecgfs-conformance-<hex>``;
  every mutating helper refuses a path outside that group;
* ROOT itself is only listed, stat-ed and read (O_RDONLY);
* ``tasks`` and ``cgroup.procs`` are only given inputs that cannot name a real
  process (junk, negative, > INT_MAX, or above PID_MAX_LIMIT); a guard refuses
  anything else, so no process is ever attached;
* everything created is removed in a ``finally`` (deepest first, retrying) and
  anything left over is reported.

Answer format: each probe's answer is an ordered dict ``step label -> value``.
A value is the result of the step (text read, decoded as latin-1 so it is
lossless; a byte count; a stat dict with octal mode strings; ...) or
``{"errno": "EINVAL", "syscall": "write"}``.  Nothing racy is recorded (no
times, inode numbers, fd numbers or PIDs).

Usage::

    python -m fakecgfs.conformance record /sys/fs/cgroup/memory -o out.json
    python -m fakecgfs.conformance diff golden.json out.json
    python -m fakecgfs.conformance list [--only PREFIX]
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import errno
import json
import os
import platform
import re
import secrets
import select
import stat
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

TOOL_VERSION = "1.0"
GROUP_PREFIX = "fakecgfs-conformance-"
PID_MAX_LIMIT = 4194304  # the largest value /proc/sys/kernel/pid_max can take (64-bit)
CLOSED_FD = 1000  # an fd number asserted to be closed, used for EBADF probes
UMASK = 0o022

# --------------------------------------------------------------------------------------------
# File catalogues (kernel 6.18, cgroup v1 memory controller, swap accounting on)

ROOT_FILES = (
    "cgroup.clone_children", "cgroup.event_control", "cgroup.procs", "cgroup.sane_behavior",
    "memory.failcnt", "memory.force_empty", "memory.kmem.failcnt", "memory.kmem.limit_in_bytes",
    "memory.kmem.max_usage_in_bytes", "memory.kmem.slabinfo", "memory.kmem.tcp.failcnt",
    "memory.kmem.tcp.limit_in_bytes", "memory.kmem.tcp.max_usage_in_bytes",
    "memory.kmem.tcp.usage_in_bytes", "memory.kmem.usage_in_bytes", "memory.limit_in_bytes",
    "memory.max_usage_in_bytes", "memory.memsw.failcnt", "memory.memsw.limit_in_bytes",
    "memory.memsw.max_usage_in_bytes", "memory.memsw.usage_in_bytes",
    "memory.move_charge_at_immigrate", "memory.numa_stat", "memory.oom_control",
    "memory.pressure_level", "memory.soft_limit_in_bytes", "memory.stat", "memory.swappiness",
    "memory.usage_in_bytes", "memory.use_hierarchy", "notify_on_release", "release_agent", "tasks",
)
CHILD_FILES = (
    "cgroup.clone_children", "cgroup.event_control", "cgroup.procs", "memory.failcnt",
    "memory.force_empty", "memory.kmem.failcnt", "memory.kmem.limit_in_bytes",
    "memory.kmem.max_usage_in_bytes", "memory.kmem.slabinfo", "memory.kmem.tcp.failcnt",
    "memory.kmem.tcp.limit_in_bytes", "memory.kmem.tcp.max_usage_in_bytes",
    "memory.kmem.tcp.usage_in_bytes", "memory.kmem.usage_in_bytes", "memory.limit_in_bytes",
    "memory.max_usage_in_bytes", "memory.memsw.failcnt", "memory.memsw.limit_in_bytes",
    "memory.memsw.max_usage_in_bytes", "memory.memsw.usage_in_bytes",
    "memory.move_charge_at_immigrate", "memory.numa_stat", "memory.oom_control",
    "memory.pressure_level", "memory.shown_ram_in_bytes", "memory.soft_limit_in_bytes",
    "memory.stat", "memory.swappiness", "memory.usage_in_bytes", "memory.use_hierarchy",
    "notify_on_release", "tasks",
)
#: every name probed for stat/read/open, in root and child alike (absence is an answer too)
ALL_FILES = tuple(sorted(set(ROOT_FILES) | set(CHILD_FILES)))
#: files of the 2008 watermark RFC: they do not exist on any kernel (fakecgfs-only)
WMARK_FILES = ("memory.high_wmark_in_bytes", "memory.low_wmark_in_bytes")

#: root files whose content is the same on every machine (the rest are statistics,
#: PID lists or sysctl-driven, hence machine-dependent)
ROOT_DETERMINISTIC_READS = frozenset({
    "cgroup.clone_children", "cgroup.event_control", "cgroup.sane_behavior", "memory.force_empty",
    "memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes", "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes", "memory.move_charge_at_immigrate", "memory.pressure_level",
    "memory.shown_ram_in_bytes", "memory.soft_limit_in_bytes", "memory.use_hierarchy",
    "notify_on_release", "release_agent",
})

READ_ONLY_FILES = (
    "memory.kmem.slabinfo", "memory.kmem.tcp.usage_in_bytes", "memory.kmem.usage_in_bytes",
    "memory.memsw.usage_in_bytes", "memory.numa_stat", "memory.pressure_level", "memory.stat",
    "memory.usage_in_bytes",
)

BYTE_FILES = (
    "memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes",
    "memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes", "memory.shown_ram_in_bytes",
)
NUMBER_FILES = (
    "memory.swappiness", "memory.use_hierarchy", "memory.move_charge_at_immigrate",
    "memory.oom_control", "notify_on_release", "cgroup.clone_children",
)
RESET_FILES = (
    "memory.max_usage_in_bytes", "memory.failcnt", "memory.memsw.max_usage_in_bytes",
    "memory.memsw.failcnt", "memory.kmem.max_usage_in_bytes", "memory.kmem.failcnt",
    "memory.kmem.tcp.max_usage_in_bytes", "memory.kmem.tcp.failcnt",
)

# --------------------------------------------------------------------------------------------
# Answer capture helpers


def errno_name(num: int | None) -> str:
    """Symbolic name of an errno value (``EINVAL``), or ``E<num>`` when unknown."""
    if num is None:
        return "E?"
    return errno.errorcode.get(num, f"E{num}")


def err(exc: OSError, syscall: str) -> dict[str, str]:
    """The recorded form of a failed syscall."""
    return {"errno": errno_name(exc.errno), "syscall": syscall}


def is_err(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"errno", "syscall"}


def capture(syscall: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; return its result, or the errno record if it raised OSError."""
    try:
        return fn(*args, **kwargs)
    except OSError as exc:
        return err(exc, syscall)


def text(data: bytes) -> str:
    """Bytes as recorded in JSON: latin-1 decoding is lossless (JSON escapes the rest)."""
    return data.decode("latin-1")


_NAMED_ESCAPES = {0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r", 0x0B: "\\v", 0x5C: "\\\\"}


def escape_bytes(data: bytes, extra: bytes = b"") -> str:
    """Readable, reversible ASCII form of bytes: ``b"4096\\n"`` -> ``4096\\n``.

    Backslash, non-printable bytes and any byte in ``extra`` are escaped (``\\n``,
    ``\\t``, ``\\r``, ``\\v``, ``\\\\`` or ``\\xNN``).
    """
    out = []
    for byte in data:
        if byte in _NAMED_ESCAPES and byte not in extra:
            out.append(_NAMED_ESCAPES[byte])
        elif byte < 0x20 or byte >= 0x7F or byte in extra:
            out.append(f"\\x{byte:02x}")
        else:
            out.append(chr(byte))
    return "".join(out)


def unescape_bytes(escaped: str) -> bytes:
    """Inverse of :func:`escape_bytes`."""
    rev = {"n": 0x0A, "t": 0x09, "r": 0x0D, "v": 0x0B, "\\": 0x5C}
    out = bytearray()
    i = 0
    while i < len(escaped):
        ch = escaped[i]
        if ch != "\\":
            out.append(ord(ch))
            i += 1
            continue
        nxt = escaped[i + 1]
        if nxt == "x":
            out.append(int(escaped[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(rev[nxt])
            i += 2
    return bytes(out)


def input_label(data: bytes) -> str:
    """Id component for an input: escaped, with space and ``/`` escaped too."""
    if not data:
        return "(empty)"
    return escape_bytes(data, extra=b" /")


def step_label(data: bytes, limit: int = 32) -> str:
    """Short readable form of written data for a step label (long data abbreviated)."""
    if not data:
        return "(empty)"
    if len(data) <= limit:
        return escape_bytes(data)
    return f"{escape_bytes(data[:6])}...{escape_bytes(data[-6:])} ({len(data)} bytes)"


def oct_mode(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "reg"
    if stat.S_ISLNK(mode):
        return "lnk"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "other"


def stat_dict(st: os.stat_result) -> dict[str, Any]:
    """Deterministic stat fields only (no times, inode, device, uid/gid)."""
    return {"type": _kind(st.st_mode), "mode": oct_mode(st.st_mode), "size": st.st_size,
            "nlink": st.st_nlink, "blocks": st.st_blocks, "blksize": st.st_blksize}


def pid_input_is_safe(data: bytes) -> bool:
    """True when no kernel-style integer in ``data`` can name an existing process.

    Conservative: every alphanumeric token (with an optional sign) is parsed with the
    kernel's base-0 rules and must not fall in ``0..PID_MAX_LIMIT``.  ``0`` (the
    writer itself) and every real PID are therefore refused.
    """
    for token in re.findall(rb"[+-]?[0-9A-Za-z]+", data):
        sign = -1 if token[:1] == b"-" else 1
        body = token.lstrip(b"+-")
        try:
            if body[:2].lower() == b"0x":
                value = int(body[2:], 16)
            elif body[:1] == b"0" and len(body) > 1:
                value = int(body, 8)
            else:
                value = int(body, 10)
        except ValueError:
            continue
        if 0 <= sign * value <= PID_MAX_LIMIT:
            return False
    return True


class Steps:
    """Ordered record of a probe's steps: label -> value (labels made unique)."""

    def __init__(self) -> None:
        self.d: dict[str, Any] = {}

    def set(self, label: str, value: Any) -> Any:
        key, n = label, 2
        while key in self.d:
            key = f"{label}#{n}"
            n += 1
        self.d[key] = value
        return value

    def call(self, label: str, syscall: str, fn: Callable[..., Any], *args: Any,
             show: Callable[[Any], Any] | None = None) -> Any:
        """Run ``fn``; record ``show(result)`` (default "ok" for None) or the errno.

        Returns the raw result, or None when the call failed.
        """
        try:
            result = fn(*args)
        except OSError as exc:
            self.set(label, err(exc, syscall))
            return None
        if show is not None:
            self.set(label, show(result))
        else:
            self.set(label, "ok" if result is None else result)
        return result


# --------------------------------------------------------------------------------------------
# Inputs

Input = tuple[str, bytes]


def _inputs(items: Iterable[bytes | tuple[str, bytes]]) -> list[Input]:
    out: list[Input] = []
    for item in items:
        if isinstance(item, tuple):
            out.append(item)
        else:
            out.append((input_label(item), item))
    labels = [label for label, _ in out]
    assert len(set(labels)) == len(labels), "duplicate input labels"
    return out


BYTE_INPUTS: list[Input] = _inputs([
    b"4096", b"4096\n", b"\n4096", b"4096\n\n", b" 4096", b"4096 ", b"\t4096\t", b"\r4096\r\n",
    b"\v4096\f", b"0", b"0\n", b"1", b"4095", b"4097", b"8191", b"8192", b"12288",
    b"123456789", b"1K", b"1k", b"4k", b"4K\n", b"1M", b"1m", b"1G", b"1g", b"1T", b"1t",
    b"1P", b"1E", b"7E", b"8E", b"16E", b"1KK", b"1MB", b"1KB", b"1 M", b"1.5M", b"1e3",
    b"+4096", b"-1", b"-1\n", b" -1 ", b"-2", b"-0", b"-4096", b"--1", b"-1K", b"4096abc",
    b"abc", b"max", b"K", b"-", b"", b"\n", b" ", b"\t\n", b"010", b"08", b"00", b"0x1000",
    b"0X1000", b"0x1000k", b"0x", b"0xg", b"0x10M", b"0b101", b"1_000",
    b"9223372036854771711", b"9223372036854771712", b"9223372036854775807",
    b"9223372036854775808", b"18446744073709551615", b"18446744073709551616",
    b"99999999999999999999999", b"4096\x00junk", b"4096\x00", b"\x004096", b"4096 4096",
    b"4096\n4096", b"1k\n", b" 1G ", b"\xff", b"4096\xff",
    ("pad4096", b" " * 4092 + b"8192"), ("pad4097", b" " * 4093 + b"8192"),
    ("trailnl4096", b"8192" + b"\n" * 4092),
])

NUMBER_INPUTS: list[Input] = _inputs([
    b"0", b"1", b"2", b"60", b"100", b"200", b"201", b"-1", b"abc", b"", b"\n", b" 1", b"1 ",
    b"1\n", b"1\n\n", b"0x10", b"010", b"08", b"+1", b"1K", b"4294967296",
    b"18446744073709551615", b"18446744073709551616", b"1\x00junk",
])

RESET_INPUTS: list[Input] = _inputs([
    b"0", b"0\n", b"1", b"4096", b"-1", b"abc", b"\n", b" ", b"", b"99999999999999999999999",
])

#: only junk, negatives, > INT_MAX, or PIDs above PID_MAX_LIMIT (which no process can have)
PID_INPUTS: list[Input] = _inputs([
    b"abc", b"", b"\n", b" ", b"-1", b"-1\n", b"-2147483648", b"-4194305", b"2147483647",
    b"2147483647\n", b" 2147483647 ", b"+2147483647", b"0x7fffffff", b"4194305",
    b"2147483648", b"4294967295", b"4294967296", b"99999999999999999999", b"2147483647abc",
    b"abc2147483647", b"2147483647 2147483647", b"2147483647\n2147483647",
    b"2147483647\x00junk", b"-2147483647x",
])


# --------------------------------------------------------------------------------------------
# Probe context


class GuardError(RuntimeError):
    """A probe tried to modify something outside the tool's own group."""


def _read_all(fd: int, size: int = 65536, max_reads: int = 10000) -> bytes:
    chunks = []
    for _ in range(max_reads):
        chunk = os.read(fd, size)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def is_extension(name: str) -> bool:
    """A file fakecgfs adds to the kernel's set (the RFC's watermarks, ``fake.*``): listings
    leave them out so the kernel's own files are compared; their behaviour has probes of its
    own, marked fakecgfs-only."""
    return name in WMARK_FILES or name.startswith("fake.")


def _listing(path: str | bytes) -> list[str]:
    """Sorted names, directories suffixed with ``/`` (names decoded as latin-1), without the
    fakecgfs extensions."""
    bpath = os.fsencode(path)
    names = []
    for entry in os.scandir(bpath):
        name = text(entry.name)
        if is_extension(name) and not entry.is_dir(follow_symlinks=False):
            continue
        if entry.is_dir(follow_symlinks=False):
            name += "/"
        names.append(name)
    return sorted(names)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


_RENAMEAT2_SYSCALL = {"x86_64": 316, "aarch64": 276, "riscv64": 276, "ppc64le": 357,
                      "s390x": 347, "i686": 353}
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


def renameat2(src: str, dst: str, flags: int) -> None:
    libc = _libc()
    bsrc, bdst = os.fsencode(src), os.fsencode(dst)
    fn = getattr(libc, "renameat2", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        rc = fn(AT_FDCWD, bsrc, AT_FDCWD, bdst, flags)
    else:
        nr = _RENAMEAT2_SYSCALL.get(platform.machine())
        if nr is None:
            raise OSError(errno.ENOSYS, "renameat2 unavailable")
        libc.syscall.restype = ctypes.c_long
        rc = libc.syscall(ctypes.c_long(nr), ctypes.c_int(AT_FDCWD), bsrc, ctypes.c_int(AT_FDCWD),
                          bdst, ctypes.c_uint(flags))
    if rc != 0:
        num = ctypes.get_errno()
        raise OSError(num, os.strerror(num))


def statfs_type(path: str) -> int:
    """``f_type`` of statfs(2) (x86_64/aarch64 layout: first field is a long)."""
    if platform.machine() not in ("x86_64", "aarch64", "riscv64", "ppc64le"):
        raise OSError(errno.ENOSYS, "statfs layout unknown")
    libc = _libc()
    buf = ctypes.create_string_buffer(256)
    if libc.statfs(os.fsencode(path), buf) != 0:
        num = ctypes.get_errno()
        raise OSError(num, os.strerror(num))
    return ctypes.c_long.from_buffer(buf).value


def statvfs_dict(path: str) -> Any:
    try:
        sv = os.statvfs(path)
    except OSError as exc:
        return err(exc, "statfs")
    return {"f_bsize": sv.f_bsize, "f_blocks": sv.f_blocks, "f_bfree": sv.f_bfree,
            "f_files": sv.f_files, "f_ffree": sv.f_ffree, "f_namemax": sv.f_namemax}


class Ctx:
    """State shared by probes: the ROOT, the tool's own group and fresh subgroups."""

    def __init__(self, root: str, base: str) -> None:
        self.root = root
        self.base = base
        self._bbase = os.fsencode(base)
        self._seq = 0
        self.probe_dirs: list[str] = []
        self.leftovers: list[str] = []

    # -- safety ------------------------------------------------------------------------------
    def inside(self, path: str | bytes) -> bool:
        """Whether ``path`` is the tool's own group or below it."""
        p = os.path.normpath(os.fsencode(path))
        return p == self._bbase or p.startswith(self._bbase + b"/")

    def guard(self, path: str | bytes) -> None:
        if not self.inside(path):
            raise GuardError(f"refusing to modify {path!r}: outside {self.base}")

    # -- groups ------------------------------------------------------------------------------
    def fresh(self) -> str:
        """A new, empty subgroup of the tool's group for the current probe."""
        self._seq += 1
        path = os.path.join(self.base, f"p{self._seq:05d}")
        self.guard(path)
        os.mkdir(path)
        self.probe_dirs.append(path)
        return path

    def finish_probe(self) -> None:
        for path in reversed(self.probe_dirs):
            self.leftovers.extend(remove_tree(path))
        self.probe_dirs = []

    # -- guarded primitives ------------------------------------------------------------------
    def open(self, path: str | bytes, flags: int, mode: int = 0o644) -> int:
        # outside the tool's group (ROOT's own files) only plain O_RDONLY opens are allowed
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
            self.guard(path)
        return os.open(path, flags, mode)

    def mkdir(self, path: str | bytes, mode: int = 0o755) -> None:
        self.guard(path)
        os.mkdir(path, mode)

    def rmdir(self, path: str | bytes) -> None:
        self.guard(path)
        os.rmdir(path)

    def rename(self, src: str, dst: str) -> None:
        self.guard(src)
        self.guard(dst)
        os.rename(src, dst)

    def renameat2(self, src: str, dst: str, flags: int) -> None:
        self.guard(src)
        self.guard(dst)
        renameat2(src, dst, flags)

    def guarded(self, fn: Callable[..., Any], *paths: str) -> Callable[..., Any]:
        """``fn`` to be called with ``paths`` first, after guarding them."""
        for path in paths:
            self.guard(path)
        return lambda *rest: fn(*paths, *rest)

    # -- recorded helpers ---------------------------------------------------------------------
    def read(self, path: str, size: int = 65536) -> Any:
        """Whole content of ``path`` (as text) or the errno of the failing syscall."""
        try:
            fd = self.open(path, os.O_RDONLY)
        except OSError as exc:
            return err(exc, "open")
        try:
            return text(_read_all(fd, size))
        except OSError as exc:
            return err(exc, "read")
        finally:
            os.close(fd)

    def write(self, path: str, data: bytes, flags: int = os.O_WRONLY) -> Any:
        """One open, one write(), one close: the write's return value or the errno."""
        if os.path.basename(path) in ("tasks", "cgroup.procs") and not pid_input_is_safe(data):
            raise GuardError(f"refusing to write {data!r} to {path}: could name a process")
        try:
            fd = self.open(path, flags)
        except OSError as exc:
            return err(exc, "open")
        try:
            result: Any = os.write(fd, data)
        except OSError as exc:
            result = err(exc, "write")
        try:
            os.close(fd)
        except OSError as exc:  # never seen on the kernel, but record it if it happens
            return {"write": result, "close": err(exc, "close")}
        return result

    def stat(self, path: str | bytes) -> Any:
        try:
            return stat_dict(os.stat(path, follow_symlinks=False))
        except OSError as exc:
            return err(exc, "stat")


def whole_write(fd: int, line: bytes) -> str:
    """Write a registration line; event_control lines hold fd numbers, which depend on the
    recording process, so record that the whole line was taken rather than its length."""
    return "ok (whole line)" if os.write(fd, line) == len(line) else "short write"


def remove_tree(path: str, attempts: int = 5) -> list[str]:
    """Remove a group tree deepest first, retrying; return paths that could not be removed."""
    bpath = os.fsencode(path)
    try:  # the common case, a group without subgroups, costs one rmdir instead of a walk
        os.rmdir(bpath)
        return []
    except FileNotFoundError:
        return []
    except OSError:
        pass
    left: list[str] = []
    for attempt in range(attempts):
        if not os.path.lexists(bpath):
            return []
        left = []
        for dirpath, dirnames, filenames in os.walk(bpath, topdown=False):
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                if os.path.islink(full) or name in _CREATED_FILE_NAMES:
                    try:
                        os.unlink(full)
                    except OSError:
                        pass
            try:
                os.rmdir(dirpath)
            except FileNotFoundError:
                pass
            except OSError:
                left.append(text(dirpath))
        if not left:
            return []
        time.sleep(0.05 * (attempt + 1))
    return left


#: names the create/link probes may create on a lenient file system (removed at cleanup)
_CREATED_FILE_NAMES = {b"newfile", b"newfile2", b"nodefile", b"fifo", b"symlink",
                       b"symlink2", b"hardlink", b"hardlink2", b"fifo2"}


# --------------------------------------------------------------------------------------------
# Probe catalogue


@dataclass
class Probe:
    id: str
    fn: Callable[[Ctx], Any]
    machine_dependent: bool = False
    fakecgfs_only: bool = False
    compare_with: str | None = None


def _p(*parts: str) -> str:
    return os.path.join(*parts)


# ---- root (read-only) --------------------------------------------------------------------


def _root_probes(add: Callable[..., None]) -> None:
    def listing(ctx: Ctx) -> Any:
        return {"files": [n for n in _listing(ctx.root) if not n.endswith("/")]}

    add("root/listing", listing)

    def root_dir(ctx: Ctx) -> Any:
        st = os.stat(ctx.root)
        return {"type": _kind(st.st_mode), "mode": oct_mode(st.st_mode), "size": st.st_size}

    add("root/stat/.", root_dir)

    def root_nlink(ctx: Ctx) -> Any:
        return {"nlink": os.stat(ctx.root).st_nlink}

    add("root/nlink", root_nlink, machine_dependent=True)

    def root_other_dirs(ctx: Ctx) -> Any:
        return {"dirs": [n for n in _listing(ctx.root)
                         if n.endswith("/") and not n.startswith(GROUP_PREFIX)]}

    add("root/listing-dirs", root_other_dirs, machine_dependent=True)

    for name in ALL_FILES:
        add(f"root/stat/{name}", lambda ctx, n=name: ctx.stat(_p(ctx.root, n)))
    for name in ALL_FILES:
        add(f"root/read/{name}", lambda ctx, n=name: {"read": ctx.read(_p(ctx.root, n))},
            machine_dependent=name not in ROOT_DETERMINISTIC_READS)

    add("root/statfs/f_type", lambda ctx: {"f_type": capture("statfs", lambda: hex(statfs_type(ctx.root)))})
    add("root/statfs/statvfs", lambda ctx: statvfs_dict(ctx.root))


# ---- fresh child: listing, stat, reads ----------------------------------------------------


def _child_probes(add: Callable[..., None]) -> None:
    def listing(ctx: Ctx) -> Any:
        return {"listing": _listing(ctx.fresh())}

    add("child/listing", listing)

    def listing_with_sub(ctx: Ctx) -> Any:
        g = ctx.fresh()
        ctx.mkdir(_p(g, "sub"))
        own = _listing(g)
        sub = _listing(_p(g, "sub"))
        return {"listing": own,
                "sub listing": "same as parent's files" if sub == [n for n in own if n != "sub/"]
                else sub}

    add("child/listing-with-subgroup", listing_with_sub)

    def dir_stat(ctx: Ctx) -> Any:
        return ctx.stat(ctx.fresh())

    add("child/stat/.", dir_stat)

    def nlink(ctx: Ctx) -> Any:
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

    add("child/nlink", nlink)

    for name in ALL_FILES + WMARK_FILES:
        add(f"child/stat/{name}", lambda ctx, n=name: ctx.stat(_p(ctx.fresh(), n)),
            fakecgfs_only=name in WMARK_FILES)

    def f_type(ctx: Ctx) -> Any:
        g = ctx.fresh()
        return {"f_type": capture("statfs", lambda: hex(statfs_type(g)))}

    # f_type cannot match under FUSE (0x65735546); it is kept apart so the rest still compares
    add("child/statfs/f_type", f_type)
    add("child/statfs/statvfs", lambda ctx: statvfs_dict(ctx.fresh()))

    for name in ALL_FILES + WMARK_FILES:
        add(f"read/{name}", lambda ctx, n=name: {"read": ctx.read(_p(ctx.fresh(), n))},
            fakecgfs_only=name in WMARK_FILES)

    def read_rdwr(ctx: Ctx, name: str) -> Any:
        g = ctx.fresh()
        S = Steps()
        fd = S.call("open", "open", ctx.open, _p(g, name), os.O_RDWR, show=lambda _: "ok")
        if fd is not None:
            S.call("read", "read", _read_all, fd, show=text)
            os.close(fd)
        return S.d

    for name in ("memory.limit_in_bytes", "memory.stat", "memory.oom_control", "tasks",
                 "memory.force_empty", "cgroup.event_control"):
        add(f"read-rdwr/{name}", lambda ctx, n=name: read_rdwr(ctx, n))


# ---- fd reading semantics -----------------------------------------------------------------


def _fd_read_probes(add: Callable[..., None]) -> None:
    chunk_files = ("memory.limit_in_bytes", "memory.oom_control", "memory.stat",
                   "memory.numa_stat", "memory.swappiness", "tasks", "memory.kmem.slabinfo")

    def chunked(ctx: Ctx, name: str, size: int) -> Any:
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

    for name in chunk_files:
        add(f"fd-read/read3/{name}", lambda ctx, n=name: chunked(ctx, n, 3))
    add("fd-read/read1/memory.limit_in_bytes", lambda ctx: chunked(ctx, "memory.limit_in_bytes", 1))
    add("fd-read/read1/memory.oom_control", lambda ctx: chunked(ctx, "memory.oom_control", 1))

    def pread(ctx: Ctx, name: str, offset: int) -> Any:
        g = ctx.fresh()
        fd = ctx.open(_p(g, name), os.O_RDONLY)
        S = Steps()
        S.call("pread", "pread", os.pread, fd, 100, offset, show=text)
        S.call("then read", "read", os.read, fd, 100, show=text)
        S.call("offset", "lseek", os.lseek, fd, 0, os.SEEK_CUR)
        os.close(fd)
        return S.d

    for name in ("memory.limit_in_bytes", "memory.oom_control", "memory.stat"):
        for off in (0, 1, 5, 19, 20, 21, 30, 4096, 1 << 20):
            add(f"fd-read/pread/{name}/{off}", lambda ctx, n=name, o=off: pread(ctx, n, o))

    def lseek_seq(ctx: Ctx, name: str, ops: list[tuple[str, int, int]]) -> Any:
        g = ctx.fresh()
        fd = ctx.open(_p(g, name), os.O_RDONLY)
        S = Steps()
        for op, a, b in ops:
            if op == "read":
                S.call(f"read({a})", "read", os.read, fd, a, show=text)
            else:
                label = {os.SEEK_SET: "SET", os.SEEK_CUR: "CUR", os.SEEK_END: "END",
                         os.SEEK_DATA: "DATA", os.SEEK_HOLE: "HOLE"}[b]
                S.call(f"lseek({a},{label})", "lseek", os.lseek, fd, a, b)
        os.close(fd)
        return S.d

    SET, CUR, END = os.SEEK_SET, os.SEEK_CUR, os.SEEK_END
    lseek_cases: dict[str, list[tuple[str, int, int]]] = {
        "set-5": [("seek", 5, SET), ("read", 100, 0)],
        "set-0-after-eof": [("read", 100, 0), ("read", 100, 0), ("seek", 0, SET), ("read", 100, 0)],
        "set-beyond": [("seek", 1000, SET), ("read", 100, 0)],
        "set-negative": [("seek", -1, SET), ("read", 100, 0)],
        "cur-0": [("seek", 0, CUR), ("read", 4, 0), ("seek", 0, CUR)],
        "cur-plus2": [("read", 4, 0), ("seek", 2, CUR), ("read", 100, 0)],
        "cur-minus2": [("read", 4, 0), ("seek", -2, CUR), ("read", 100, 0)],
        "cur-negative": [("read", 4, 0), ("seek", -10, CUR), ("read", 100, 0)],
        "end-0": [("seek", 0, END), ("read", 100, 0)],
        "end-plus5": [("seek", 5, END), ("read", 100, 0)],
        "end-minus3": [("seek", -3, END), ("read", 100, 0)],
        "end-after-read": [("read", 100, 0), ("seek", 0, END), ("read", 100, 0)],
        "data-0": [("seek", 0, os.SEEK_DATA), ("read", 100, 0)],
        "hole-0": [("seek", 0, os.SEEK_HOLE), ("read", 100, 0)],
        "data-after-read": [("read", 4, 0), ("seek", 2, os.SEEK_DATA)],
    }
    for name in ("memory.limit_in_bytes", "memory.stat"):
        for case, ops in lseek_cases.items():
            add(f"fd-read/lseek/{name}/{case}", lambda ctx, n=name, o=ops: lseek_seq(ctx, n, o))

    def snapshot(ctx: Ctx) -> Any:
        g = ctx.fresh()
        path = _p(g, "memory.limit_in_bytes")
        S = Steps()
        fa = ctx.open(path, os.O_RDONLY)
        S.call("A read(3)", "read", os.read, fa, 3, show=text)
        S.set("B write 8192", ctx.write(path, b"8192"))
        S.call("A read(100)", "read", os.read, fa, 100, show=text)
        S.call("A read(100) again", "read", os.read, fa, 100, show=text)
        S.call("A lseek(0)", "lseek", os.lseek, fa, 0, os.SEEK_SET)
        S.call("A read(100) after lseek", "read", os.read, fa, 100, show=text)
        os.close(fa)
        return S.d

    add("fd-read/snapshot-after-partial-read", snapshot)

    def snapshot_unread(ctx: Ctx) -> Any:
        g = ctx.fresh()
        path = _p(g, "memory.limit_in_bytes")
        S = Steps()
        fa = ctx.open(path, os.O_RDONLY)
        S.set("B write 8192", ctx.write(path, b"8192"))
        S.call("A read(100)", "read", os.read, fa, 100, show=text)
        os.close(fa)
        return S.d

    add("fd-read/open-then-change-then-read", snapshot_unread)

    def pread_after_change(ctx: Ctx) -> Any:
        g = ctx.fresh()
        path = _p(g, "memory.limit_in_bytes")
        S = Steps()
        fa = ctx.open(path, os.O_RDONLY)
        S.call("A pread(3,0)", "pread", os.pread, fa, 3, 0, show=text)
        S.set("B write 8192", ctx.write(path, b"8192"))
        S.call("A pread(100,0)", "pread", os.pread, fa, 100, 0, show=text)
        S.call("A pread(100,3)", "pread", os.pread, fa, 100, 3, show=text)
        os.close(fa)
        return S.d

    add("fd-read/pread-after-change", pread_after_change)

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

    add("fd-read/rdwr-write-then-read/memory.limit_in_bytes",
        lambda ctx: rdwr_write_then_read(ctx, "memory.limit_in_bytes", b"8192"))
    add("fd-read/rdwr-write-then-read/memory.swappiness",
        lambda ctx: rdwr_write_then_read(ctx, "memory.swappiness", b"10"))

    def read_then_write_then_read(ctx: Ctx) -> Any:
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

    add("fd-read/rdwr-read-write-read", read_then_write_then_read)

    def read_dir(ctx: Ctx) -> Any:
        g = ctx.fresh()
        S = Steps()
        fd = ctx.open(g, os.O_RDONLY | os.O_DIRECTORY)
        S.call("read", "read", os.read, fd, 100, show=text)
        S.call("lseek(0,END)", "lseek", os.lseek, fd, 0, os.SEEK_END)
        os.close(fd)
        return S.d

    add("fd-read/read-directory", read_dir)

    def poll_probe(ctx: Ctx, name: str, flags: int) -> Any:
        g = ctx.fresh()
        fd = ctx.open(_p(g, name), flags)
        poller = select.poll()
        mask = (select.POLLIN | select.POLLPRI | select.POLLOUT | select.POLLERR | select.POLLHUP
                | select.POLLRDNORM | select.POLLWRNORM)
        poller.register(fd, mask)
        events = poller.poll(0)
        os.close(fd)
        return {"revents": hex(events[0][1]) if events else "0x0"}

    for name, flags in (("memory.limit_in_bytes", os.O_RDONLY), ("memory.stat", os.O_RDONLY),
                        ("memory.oom_control", os.O_RDONLY), ("memory.usage_in_bytes", os.O_RDONLY),
                        ("memory.pressure_level", os.O_RDONLY),
                        ("cgroup.event_control", os.O_WRONLY), ("tasks", os.O_RDONLY)):
        add(f"fd-read/poll/{name}", lambda ctx, n=name, f=flags: poll_probe(ctx, n, f))


# ---- writes of single values ----------------------------------------------------------------


def _write_probes(add: Callable[..., None]) -> None:
    def one_write(ctx: Ctx, name: str, data: bytes) -> Any:
        g = ctx.fresh()
        path = _p(g, name)
        return {"write": ctx.write(path, data), "read": ctx.read(path)}

    for name in BYTE_FILES:
        for label, data in BYTE_INPUTS:
            add(f"write/{name}/{label}", lambda ctx, n=name, d=data: one_write(ctx, n, d))

    for name in WMARK_FILES:
        for label, data in BYTE_INPUTS:
            add(f"write/{name}/{label}", lambda ctx, n=name, d=data: one_write(ctx, n, d),
                fakecgfs_only=True, compare_with=f"write/memory.limit_in_bytes/{label}")

    for name in NUMBER_FILES:
        for label, data in NUMBER_INPUTS:
            add(f"write/{name}/{label}", lambda ctx, n=name, d=data: one_write(ctx, n, d))

    def reset_write(ctx: Ctx, name: str, data: bytes) -> Any:
        g = ctx.fresh()
        path = _p(g, name)
        return {"before": ctx.read(path), "write": ctx.write(path, data), "read": ctx.read(path)}

    for name in RESET_FILES:
        for label, data in RESET_INPUTS:
            add(f"write/{name}/{label}", lambda ctx, n=name, d=data: reset_write(ctx, n, d))

    def force_empty(ctx: Ctx, data: bytes) -> Any:
        g = ctx.fresh()
        return {"write": ctx.write(_p(g, "memory.force_empty"), data),
                "usage": ctx.read(_p(g, "memory.usage_in_bytes")),
                "max_usage": ctx.read(_p(g, "memory.max_usage_in_bytes"))}

    for label, data in RESET_INPUTS:
        add(f"write/memory.force_empty/{label}", lambda ctx, d=data: force_empty(ctx, d))

    def pid_write(ctx: Ctx, name: str, data: bytes) -> Any:
        g = ctx.fresh()
        return {"write": ctx.write(_p(g, name), data), "tasks": ctx.read(_p(g, "tasks")),
                "cgroup.procs": ctx.read(_p(g, "cgroup.procs"))}

    for name in ("tasks", "cgroup.procs"):
        for label, data in PID_INPUTS:
            assert pid_input_is_safe(data), data
            add(f"write/{name}/{label}", lambda ctx, n=name, d=data: pid_write(ctx, n, d))

    def memsw_after_limit(ctx: Ctx, limit: bytes, data: bytes) -> Any:
        g = ctx.fresh()
        path = _p(g, "memory.memsw.limit_in_bytes")
        return {"setup limit": ctx.write(_p(g, "memory.limit_in_bytes"), limit),
                "write": ctx.write(path, data), "read": ctx.read(path),
                "read limit": ctx.read(_p(g, "memory.limit_in_bytes"))}

    for label, data in BYTE_INPUTS:
        add(f"write-memsw-after-limit0/memory.memsw.limit_in_bytes/{label}",
            lambda ctx, d=data: memsw_after_limit(ctx, b"0", d))
    for label, data in BYTE_INPUTS:
        add(f"write-memsw-after-limit8k/memory.memsw.limit_in_bytes/{label}",
            lambda ctx, d=data: memsw_after_limit(ctx, b"8192", d))

    def write_readonly(ctx: Ctx, name: str, data: bytes) -> Any:
        g = ctx.fresh()
        return {"write": ctx.write(_p(g, name), data), "read": ctx.read(_p(g, name))}

    for name in READ_ONLY_FILES:
        for label, data in ((input_label(b"0"), b"0"), (input_label(b"4096\n"), b"4096\n")):
            add(f"write-readonly/{name}/{label}",
                lambda ctx, n=name, d=data: write_readonly(ctx, n, d))

    def write_empty(ctx: Ctx, name: str) -> Any:
        g = ctx.fresh()
        return {"write": ctx.write(_p(g, name), b""), "read": ctx.read(_p(g, name))}

    for name in CHILD_FILES:
        add(f"write-empty/{name}", lambda ctx, n=name: write_empty(ctx, n))

    # memsw / limit ordering
    def order(ctx: Ctx, seq: list[tuple[str, bytes]]) -> Any:
        g = ctx.fresh()
        S = Steps()
        for name, data in seq:
            S.set(f"write {name} {step_label(data)}", ctx.write(_p(g, name), data))
        for name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
                     "memory.soft_limit_in_bytes"):
            S.set(f"read {name}", ctx.read(_p(g, name)))
        return S.d

    L, M, SOFT = "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes"
    order_cases: dict[str, list[tuple[str, bytes]]] = {
        "memsw-on-fresh": [(M, b"1G")],
        "limit-then-memsw-equal": [(L, b"8192"), (M, b"8192")],
        "limit-then-memsw-lower": [(L, b"8192"), (M, b"4096")],
        "limit-then-memsw-higher": [(L, b"8192"), (M, b"1G")],
        "memsw-rounding-down-equal": [(L, b"8192"), (M, b"12287")],
        "memsw-rounding-below": [(L, b"8192"), (M, b"8191")],
        "limit-rounding-equal": [(L, b"8191"), (M, b"4097")],
        "raise-limit-above-memsw": [(L, b"8192"), (M, b"8192"), (L, b"16384")],
        "raise-both-memsw-first": [(L, b"8192"), (M, b"8192"), (M, b"16384"), (L, b"16384")],
        "raise-both-limit-first": [(L, b"8192"), (M, b"8192"), (L, b"16384"), (M, b"16384")],
        "lower-limit-below-memsw": [(L, b"16384"), (M, b"16384"), (L, b"8192")],
        "limit-unlimited-with-memsw-set": [(L, b"8192"), (M, b"8192"), (L, b"-1")],
        "memsw-unlimited-then-limit-unlimited": [(L, b"8192"), (M, b"8192"), (M, b"-1"), (L, b"-1")],
        "memsw-then-limit-0": [(L, b"8192"), (M, b"8192"), (L, b"0")],
        "memsw-0-after-limit-0": [(L, b"0"), (M, b"0")],
        "limit-16E-wraps-with-memsw": [(L, b"8192"), (M, b"8192"), (L, b"16E")],
        "memsw-huge-then-limit-huge": [(L, b"8192"), (M, b"8192"), (M, b"9223372036854775807"),
                                       (L, b"9223372036854775807")],
        "soft-above-limit": [(L, b"8192"), (SOFT, b"1G")],
        "soft-then-limit-below": [(SOFT, b"1G"), (L, b"8192")],
        "limit-then-unlimited": [(L, b"8192"), (L, b"-1")],
        "limit-twice": [(L, b"8192"), (L, b"12288")],
        "bad-write-keeps-value": [(L, b"8192"), (L, b"abc")],
        "empty-write-keeps-value": [(L, b"8192"), (L, b"")],
        "whitespace-write-sets-0": [(L, b"8192"), (L, b" ")],
        "kmem-after-limit": [(L, b"8192"), ("memory.kmem.limit_in_bytes", b"4096")],
        "tcp-above-limit": [(L, b"8192"), ("memory.kmem.tcp.limit_in_bytes", b"1G")],
    }
    for case, seq in order_cases.items():
        add(f"limit-order/{case}", lambda ctx, s=seq: order(ctx, s))


# ---- writes on one fd ---------------------------------------------------------------------


def _fd_write_probes(add: Callable[..., None]) -> None:
    LIM = "memory.limit_in_bytes"

    def seq(ctx: Ctx, name: str, flags: int, ops: list[tuple[str, Any]]) -> Any:
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
                S.call("writev " + "|".join(step_label(a) for a in arg), "writev",
                       os.writev, fd, arg)
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

    W = os.O_WRONLY
    cases: dict[str, tuple[str, int, list[tuple[str, Any]]]] = {
        "two-writes-40-96": (LIM, W, [("write", b"40"), ("write", b"96")]),
        "two-writes-8192-12288": (LIM, W, [("write", b"8192"), ("readback", None),
                                           ("write", b"12288")]),
        "writev-40-96": (LIM, W, [("writev", [b"40", b"96"])]),
        "writev-4096-nl": (LIM, W, [("writev", [b"4096", b"\n"])]),
        "writev-1-2-2-88": (LIM, W, [("writev", [b"1", b"2", b"2", b"88"])]),
        "writev-8192-empty": (LIM, W, [("writev", [b"8192", b""])]),
        "writev-bad-good": (LIM, W, [("writev", [b"abc", b"8192"])]),
        "pwrite-at-10": (LIM, W, [("pwrite", (b"8192", 10))]),
        "pwrite-at-1M": (LIM, W, [("pwrite", (b"8192", 1 << 20))]),
        "lseek-then-write": (LIM, W, [("lseek", 100), ("write", b"8192")]),
        "bad-then-good": (LIM, W, [("write", b"abc"), ("write", b"8192")]),
        "good-then-bad": (LIM, W, [("write", b"8192"), ("write", b"abc")]),
        "exact-4096-bytes": (LIM, W, [("write", b" " * 4092 + b"8192")]),
        "4097-bytes": (LIM, W, [("write", b" " * 4093 + b"8192")]),
        "8192-bytes": (LIM, W, [("write", b" " * 8188 + b"8192")]),
        "4097-then-good": (LIM, W, [("write", b" " * 4093 + b"8192"), ("write", b"12288")]),
        "zero-byte": (LIM, W, [("write", b"")]),
        "zero-byte-after-value": (LIM, W, [("write", b"8192"), ("write", b"")]),
        "nul-inside": (LIM, W, [("write", b"8192\x00junk")]),
        "nul-first": (LIM, W, [("write", b"\x008192")]),
        "append-mode": (LIM, W | os.O_APPEND, [("write", b"8192"), ("write", b"12288")]),
        "trunc-mode": (LIM, W | os.O_TRUNC, [("write", b"8192")]),
        "rdwr-write-read": (LIM, os.O_RDWR, [("write", b"8192"), ("read", None)]),
        "rdonly-write": (LIM, os.O_RDONLY, [("write", b"8192")]),
        "swappiness-two-writes": ("memory.swappiness", W, [("write", b"10"), ("write", b"20")]),
        "swappiness-writev": ("memory.swappiness", W, [("writev", [b"1", b"0"])]),
        "oom_control-writev": ("memory.oom_control", W, [("writev", [b"1", b"\n"])]),
        "oom_control-4097": ("memory.oom_control", W, [("write", b"1" + b"\n" * 4096)]),
        "swappiness-4096": ("memory.swappiness", W, [("write", b"10" + b"\n" + b"\x00" * 4093)]),
        "failcnt-4097": ("memory.failcnt", W, [("write", b"0" * 4097)]),
        "event_control-4097": ("cgroup.event_control", W, [("write", b"x" * 4097)]),
        "soft-two-writes": ("memory.soft_limit_in_bytes", W, [("write", b"8192"), ("write", b"1M")]),
    }
    for case, (name, flags, ops) in cases.items():
        add(f"fd-write/{case}", lambda ctx, n=name, f=flags, o=ops: seq(ctx, n, f, o))

    def write_after_chmod(ctx: Ctx) -> Any:
        g = ctx.fresh()
        path = _p(g, LIM)
        S = Steps()
        S.call("chmod 000", "chmod", ctx.guarded(os.chmod, path), 0)
        S.set("write 8192", ctx.write(path, b"8192"))
        S.set("read", ctx.read(path))
        S.set("stat", ctx.stat(path))
        return S.d

    add("fd-write/after-chmod-000", write_after_chmod)


# ---- open flags -----------------------------------------------------------------------------


OPEN_FLAGS: tuple[tuple[str, int], ...] = (
    ("rdonly", os.O_RDONLY),
    ("wronly", os.O_WRONLY),
    ("rdwr", os.O_RDWR),
    ("append", os.O_WRONLY | os.O_APPEND),
    ("trunc", os.O_WRONLY | os.O_TRUNC),
    ("creat", os.O_WRONLY | os.O_CREAT),
    ("creat-excl", os.O_WRONLY | os.O_CREAT | os.O_EXCL),
    ("directory", os.O_RDONLY | os.O_DIRECTORY),
)


def _open_probes(add: Callable[..., None]) -> None:
    def open_probe(ctx: Ctx, name: str, flags: int) -> Any:
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

    for name in (".",) + CHILD_FILES + WMARK_FILES:
        for label, flags in OPEN_FLAGS:
            add(f"open/{name}/{label}", lambda ctx, n=name, f=flags: open_probe(ctx, n, f),
                fakecgfs_only=name in WMARK_FILES)

    def open_missing(ctx: Ctx, flags: int) -> Any:
        g = ctx.fresh()
        S = Steps()
        fd = S.call("open", "open", ctx.open, _p(g, "memory.nonexistent"), flags, show=lambda _: "ok")
        if fd is not None:
            os.close(fd)
        S.set("listing-extra", sorted(set(_listing(g)) - set(CHILD_FILES)))
        return S.d

    for label, flags in OPEN_FLAGS:
        add(f"open/(missing)/{label}", lambda ctx, f=flags: open_missing(ctx, f))


# ---- event_control ------------------------------------------------------------------------


def _event_probes(add: Callable[..., None]) -> None:
    def ev(ctx: Ctx, fmt: str, cfile: str = "memory.usage_in_bytes", efd_kind: str = "eventfd",
           cfd_kind: str = "file") -> Any:
        g = ctx.fresh()
        S = Steps()
        ecfd = ctx.open(_p(g, "cgroup.event_control"), os.O_WRONLY)
        to_close = [ecfd]
        # control fd
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
        # event fd
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
        line = fmt.replace("{efd}", str(efd)).replace("{cfd}", str(cfd)).encode()
        S.call("write", "write", whole_write, ecfd, line)
        if efd_is_eventfd:
            S.call("eventfd count", "read", os.eventfd_read, efd)
        for fd in reversed(to_close):
            os.close(fd)
        return S.d

    cases: dict[str, dict[str, Any]] = {
        "usage/4096": dict(fmt="{efd} {cfd} 4096"),
        "usage/4096-newline": dict(fmt="{efd} {cfd} 4096\n"),
        "usage/0": dict(fmt="{efd} {cfd} 0"),
        "usage/1M": dict(fmt="{efd} {cfd} 1M"),
        "usage/4097": dict(fmt="{efd} {cfd} 4097"),
        "usage/minus1": dict(fmt="{efd} {cfd} -1"),
        "usage/abc": dict(fmt="{efd} {cfd} abc"),
        "usage/4096abc": dict(fmt="{efd} {cfd} 4096abc"),
        "usage/4096-space-extra": dict(fmt="{efd} {cfd} 4096 extra"),
        "usage/no-args": dict(fmt="{efd} {cfd}"),
        "usage/no-args-newline": dict(fmt="{efd} {cfd}\n"),
        "usage/trailing-space": dict(fmt="{efd} {cfd} "),
        "usage/tab-separator": dict(fmt="{efd}\t{cfd} 4096"),
        "usage/two-spaces-before-cfd": dict(fmt="{efd}  {cfd} 4096"),
        "usage/two-spaces-before-args": dict(fmt="{efd} {cfd}  4096"),
        "usage/leading-space": dict(fmt=" {efd} {cfd} 4096"),
        "usage/only-efd": dict(fmt="{efd}"),
        "usage/only-efd-space": dict(fmt="{efd} "),
        "usage/efd-junk": dict(fmt="abc {cfd} 4096"),
        "usage/efd-negative": dict(fmt="-1 {cfd} 4096"),
        "usage/efd-hex": dict(fmt="0x{efd} {cfd} 4096"),
        "usage/cfd-junk": dict(fmt="{efd} abc 4096"),
        "usage/newline": dict(fmt="\n"),
        "usage/closed-efd": dict(fmt="{efd} {cfd} 4096", efd_kind="closed"),
        "usage/closed-cfd": dict(fmt="{efd} {cfd} 4096", cfd_kind="closed"),
        "usage/efd-is-pipe": dict(fmt="{efd} {cfd} 4096", efd_kind="pipe"),
        "usage/efd-is-cgroup-file": dict(fmt="{efd} {cfd} 4096", efd_kind="file"),
        "usage/cfd-is-directory": dict(fmt="{efd} {cfd} 4096", cfd_kind="dir"),
        "usage/cfd-other-group": dict(fmt="{efd} {cfd} 4096", cfd_kind="other-group"),
        "memsw.usage/4096": dict(fmt="{efd} {cfd} 4096", cfile="memory.memsw.usage_in_bytes"),
        "memsw.usage/no-args": dict(fmt="{efd} {cfd}", cfile="memory.memsw.usage_in_bytes"),
        "kmem.usage/4096": dict(fmt="{efd} {cfd} 4096", cfile="memory.kmem.usage_in_bytes"),
        "kmem.tcp.usage/4096": dict(fmt="{efd} {cfd} 4096", cfile="memory.kmem.tcp.usage_in_bytes"),
        "limit_in_bytes/4096": dict(fmt="{efd} {cfd} 4096", cfile="memory.limit_in_bytes"),
        "stat/4096": dict(fmt="{efd} {cfd} 4096", cfile="memory.stat"),
        "max_usage/4096": dict(fmt="{efd} {cfd} 4096", cfile="memory.max_usage_in_bytes"),
        "swappiness/4096": dict(fmt="{efd} {cfd} 4096", cfile="memory.swappiness"),
        "tasks/4096": dict(fmt="{efd} {cfd} 4096", cfile="tasks"),
        "oom_control/no-args": dict(fmt="{efd} {cfd}", cfile="memory.oom_control"),
        "oom_control/args": dict(fmt="{efd} {cfd} foo", cfile="memory.oom_control"),
        "oom_control/cfd-wronly": dict(fmt="{efd} {cfd}", cfile="memory.oom_control",
                                       cfd_kind="wronly"),
        "oom_control/other-group": dict(fmt="{efd} {cfd}", cfile="memory.oom_control",
                                        cfd_kind="other-group"),
    }
    for arg in ("low", "medium", "critical", "low,hierarchy", "medium,local", "critical,default",
                "low,default", "critical,hierarchy", "LOW", "Low", "low,HIERARCHY", "low,",
                ",hierarchy", "hierarchy", "foo", "low,hierarchy,local", "low hierarchy",
                "low\n", "low,local\n", "", " low"):
        key = "pressure_level/" + (input_label(arg.encode()))
        cases[key] = dict(fmt="{efd} {cfd} " + arg if arg != "" else "{efd} {cfd}",
                          cfile="memory.pressure_level")
    cases["pressure_level/other-group"] = dict(fmt="{efd} {cfd} low", cfile="memory.pressure_level",
                                               cfd_kind="other-group")
    for key, kw in cases.items():
        add(f"event_control/{key}", lambda ctx, k=kw: ev(ctx, **k))

    def rmdir_signals(ctx: Ctx) -> Any:
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
                                   ("pressure", "memory.pressure_level", " low")):
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

    add("event_control/rmdir-signals-eventfds", rmdir_signals)

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

    add("event_control/register-twice", register_twice)


# ---- directory operations -------------------------------------------------------------------


def _mkdir_probes(add: Callable[..., None]) -> None:
    def mk(ctx: Ctx, name: bytes, mode: int = 0o755, twice: bool = False) -> Any:
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
            S.set("control files", len([n for n in _listing(path) if not n.endswith("/")]))
            S.set("read limit", ctx.read(os.fsdecode(os.path.join(path, b"memory.limit_in_bytes"))))
        S.set("parent nlink", os.stat(g).st_nlink)
        S.set("parent dirs", len([n for n in _listing(g) if n.endswith("/")]))
        return S.d

    names: list[tuple[str, bytes]] = [
        ("simple", b"a"), ("control-file-tasks", b"tasks"),
        ("control-file-memory.stat", b"memory.stat"),
        ("control-file-limit", b"memory.limit_in_bytes"), ("control-file-procs", b"cgroup.procs"),
        ("dot", b"."), ("dotdot", b".."), ("newline", b"a\nb"), ("trailing-newline", b"a\n"),
        ("carriage-return", b"a\rb"), ("tab", b"a\tb"), ("space", b"a b"),
        ("memory.foo", b"memory.foo"), ("cgroup.foo", b"cgroup.foo"), ("hidden", b".hidden"),
        ("non-utf8", b"\xff\xfe"), ("utf8", "é".encode()), ("colon", b"a:b"),
        ("release_agent", b"release_agent"), ("sane_behavior", b"cgroup.sane_behavior"),
        ("wmark-name", b"memory.high_wmark_in_bytes"),
        ("len255", b"n" * 255), ("len256", b"n" * 256), ("len1000", b"n" * 1000),
        ("len5000", b"n" * 5000),
    ]
    for label, name in names:
        # A group named like a fakecgfs file cannot exist there: EEXIST, as for tasks.
        add(f"mkdir/name/{label}", lambda ctx, n=name: mk(ctx, n),
            fakecgfs_only=is_extension(os.fsdecode(name)))
    add("mkdir/existing", lambda ctx: mk(ctx, b"a", twice=True))
    for mode in (0o700, 0o1777, 0o777, 0o0, 0o755, 0o2755, 0o4755, 0o555):
        add(f"mkdir/mode/{mode:04o}", lambda ctx, m=mode: mk(ctx, b"a", mode=m))

    def mk_where(ctx: Ctx, rel: str) -> Any:
        g = ctx.fresh()
        S = Steps()
        S.call("mkdir", "mkdir", ctx.mkdir, _p(g, rel))
        return S.d

    add("mkdir/in-missing-parent", lambda ctx: mk_where(ctx, "missing/a"))
    add("mkdir/under-control-file", lambda ctx: mk_where(ctx, "memory.stat/a"))

    def nested(ctx: Ctx) -> Any:
        g = ctx.fresh()
        S = Steps()
        path = g
        for depth in range(1, 9):
            path = _p(path, f"d{depth}")
            S.call(f"mkdir depth {depth}", "mkdir", ctx.mkdir, path)
        S.set("deepest stat", ctx.stat(path))
        S.set("deepest memory.stat", ctx.read(_p(path, "memory.stat")))
        return S.d

    add("mkdir/nested-8", nested)


def _rmdir_probes(add: Callable[..., None]) -> None:
    def rm(ctx: Ctx, setup: list[str], target: str) -> Any:
        g = ctx.fresh()
        for rel in setup:
            ctx.mkdir(_p(g, rel))
        S = Steps()
        S.call("rmdir", "rmdir", ctx.rmdir, _p(g, target))
        S.set("listing dirs", [n for n in _listing(g) if n.endswith("/")])
        return S.d

    cases = {
        "empty": (["x"], "x"),
        "with-child": (["x", "x/y"], "x"),
        "control-file": ([], "memory.stat"),
        "control-file-tasks": ([], "tasks"),
        "x-dot": (["x"], "x/."),
        "x-dotdot": (["x"], "x/.."),
        "x-dotdot-with-sibling": (["x", "y"], "x/.."),
        "missing": ([], "missing"),
        "under-control-file": ([], "memory.stat/x"),
        "trailing-slash": (["x"], "x/"),
        "grandchild": (["x", "x/y"], "x/y"),
    }
    for label, (setup, target) in cases.items():
        add(f"rmdir/{label}", lambda ctx, s=setup, t=target: rm(ctx, s, t))

    def recreate(ctx: Ctx) -> Any:
        g = ctx.fresh()
        x = _p(g, "x")
        ctx.mkdir(x)
        S = Steps()
        for name, value in (("memory.limit_in_bytes", b"8192"), ("memory.swappiness", b"10"),
                            ("memory.oom_control", b"1"), ("notify_on_release", b"1")):
            S.set(f"write {name}", ctx.write(_p(x, name), value))
        S.call("chmod limit 0600", "chmod", ctx.guarded(os.chmod, _p(x, "memory.limit_in_bytes")),
               0o600)
        S.call("rmdir", "rmdir", ctx.rmdir, x)
        S.call("mkdir", "mkdir", ctx.mkdir, x)
        for name in ("memory.limit_in_bytes", "memory.swappiness", "memory.oom_control",
                     "notify_on_release"):
            S.set(f"read {name}", ctx.read(_p(x, name)))
        S.set("stat limit", ctx.stat(_p(x, "memory.limit_in_bytes")))
        return S.d

    add("rmdir/recreate-starts-from-defaults", recreate)


def _rename_probes(add: Callable[..., None]) -> None:
    def rn(ctx: Ctx, setup: list[str], src: str, dst: str, flags: int | None = None) -> Any:
        g = ctx.fresh()
        S = Steps()
        for rel in setup:
            ctx.mkdir(_p(g, rel))
            if rel == "a":  # before any child exists: a group with a child has usage > 0
                S.set("set a limit 1G", ctx.write(_p(g, "a", "memory.limit_in_bytes"), b"1G"))
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

        def short(rel: str) -> str:
            return "/".join(c if len(c) <= 40 else f"<{c[0]}*{len(c)}>" for c in rel.split("/"))

        S.set("tree", sorted(short(rel) for rel in tree))
        for rel in sorted(tree):
            limit = _p(g, rel, "memory.limit_in_bytes")
            S.set(f"{short(rel)} limit", ctx.read(limit))
        return S.d

    long_name = "n" * 300
    cases: dict[str, tuple[list[str], str, str, int | None]] = {
        "within-parent": (["a", "a/c"], "a", "z", None),
        "same-name": (["a"], "a", "a", None),
        "across-parents": (["a", "b"], "a", "b/a", None),
        "to-grandparent": (["a", "b", "b/c"], "b/c", "c", None),
        "onto-existing-group": (["a", "b"], "a", "b", None),
        "onto-existing-group-with-child": (["a", "b", "b/c"], "a", "b", None),
        "onto-control-file": (["a"], "a", "memory.stat", None),
        "onto-control-file-tasks": (["a"], "a", "tasks", None),
        "control-file-to-new-name": ([], "memory.stat", "foo", None),
        "control-file-onto-control-file": ([], "tasks", "memory.stat", None),
        "control-file-onto-group": (["a"], "memory.stat", "a", None),
        "into-own-child": (["a", "a/c"], "a", "a/c/x", None),
        "missing-source": ([], "missing", "z", None),
        "to-newline-name": (["a"], "a", "a\nb", None),
        "to-long-name": (["a"], "a", long_name, None),
        "to-dot": (["a"], "a", ".", None),
        "noreplace-new-name": (["a"], "a", "z", RENAME_NOREPLACE),
        "noreplace-existing": (["a", "b"], "a", "b", RENAME_NOREPLACE),
        "exchange": (["a", "b"], "a", "b", RENAME_EXCHANGE),
        "exchange-missing-target": (["a"], "a", "z", RENAME_EXCHANGE),
        "flags-0": (["a"], "a", "z", 0),
    }
    for label, (setup, src, dst, flags) in cases.items():
        add(f"rename/{label}", lambda ctx, s=setup, a=src, b=dst, f=flags: rn(ctx, s, a, b, f))


def _create_probes(add: Callable[..., None]) -> None:
    def cr(ctx: Ctx, action: Callable[[Ctx, str], Any], syscall: str, setup_sub: bool = False) -> Any:
        g = ctx.fresh()
        if setup_sub:
            ctx.mkdir(_p(g, "sub"))
        S = Steps()
        S.call("op", syscall, action, ctx, g)
        S.set("listing-extra", sorted(set(_listing(g)) - set(CHILD_FILES) - {"sub/"}))
        return S.d

    def create_new(ctx: Ctx, g: str) -> None:
        os.close(ctx.open(_p(g, "newfile"), os.O_WRONLY | os.O_CREAT, 0o644))

    def create_excl(ctx: Ctx, g: str) -> None:
        os.close(ctx.open(_p(g, "newfile"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))

    def create_rdonly(ctx: Ctx, g: str) -> None:
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

    def link(ctx: Ctx, g: str) -> None:
        ctx.guard(_p(g, "hardlink"))
        ctx.guard(_p(g, "tasks"))
        os.link(_p(g, "tasks"), _p(g, "hardlink"))

    def link_dir(ctx: Ctx, g: str) -> None:
        ctx.guard(_p(g, "hardlink"))
        ctx.guard(_p(g, "sub"))
        os.link(_p(g, "sub"), _p(g, "hardlink"))

    def unlink_file(ctx: Ctx, g: str) -> None:
        ctx.guarded(os.unlink, _p(g, "tasks"))()

    def unlink_stat(ctx: Ctx, g: str) -> None:
        ctx.guarded(os.unlink, _p(g, "memory.stat"))()

    def unlink_group(ctx: Ctx, g: str) -> None:
        ctx.guarded(os.unlink, _p(g, "sub"))()

    def unlink_missing(ctx: Ctx, g: str) -> None:
        ctx.guarded(os.unlink, _p(g, "missing"))()

    cases: list[tuple[str, Callable[[Ctx, str], Any], str, bool]] = [
        ("open-creat-new", create_new, "open", False),
        ("open-creat-excl-new", create_excl, "open", False),
        ("open-rdonly-creat-new", create_rdonly, "open", False),
        ("mknod-reg", mknod_reg, "mknod", False),
        ("mknod-fifo", mknod_fifo, "mknod", False),
        ("mkfifo", mkfifo, "mknod", False),
        ("symlink", symlink, "symlink", False),
        ("symlink-onto-control-file", symlink_onto_file, "symlink", False),
        ("link-control-file", link, "link", False),
        ("link-group", link_dir, "link", True),
        ("unlink-control-file", unlink_file, "unlink", False),
        ("unlink-memory.stat", unlink_stat, "unlink", False),
        ("unlink-group", unlink_group, "unlink", True),
        ("unlink-missing", unlink_missing, "unlink", False),
    ]
    for label, fn, syscall, sub in cases:
        add(f"create/{label}", lambda ctx, f=fn, s=syscall, u=sub: cr(ctx, f, s, u))


# ---- metadata -------------------------------------------------------------------------------


def _meta_probes(add: Callable[..., None]) -> None:
    LIM = "memory.limit_in_bytes"

    def chmod_probe(ctx: Ctx, name: str, mode: int) -> Any:
        g = ctx.fresh()
        path = g if name == "." else _p(g, name)
        S = Steps()
        S.call("chmod", "chmod", ctx.guarded(os.chmod, path), mode)
        S.set("stat", ctx.stat(path))
        if name != ".":
            S.set("read", ctx.read(path))
        return S.d

    for name, mode in ((LIM, 0o600), (LIM, 0o000), (LIM, 0o777), (LIM, 0o4755), (LIM, 0o1644),
                       ("memory.stat", 0o644), ("memory.force_empty", 0o644), ("tasks", 0o666),
                       (".", 0o700), (".", 0o1777), (".", 0o000)):
        add(f"meta/chmod/{name}/{mode:04o}", lambda ctx, n=name, m=mode: chmod_probe(ctx, n, m))

    def chmod_000_read_write(ctx: Ctx) -> Any:
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

    add("meta/chmod-000-still-usable-by-root", chmod_000_read_write)

    def access(ctx: Ctx, name: str) -> Any:
        g = ctx.fresh()
        path = g if name == "." else _p(g, name)
        return {m: os.access(path, getattr(os, m)) for m in ("F_OK", "R_OK", "W_OK", "X_OK")}

    for name in (".", LIM, "memory.stat", "memory.force_empty", "tasks"):
        add(f"meta/access/{name}", lambda ctx, n=name: access(ctx, n))

    def chown_probe(ctx: Ctx, name: str) -> Any:
        g = ctx.fresh()
        path = g if name == "." else _p(g, name)
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

    for name in (".", LIM, "memory.stat", "tasks"):
        add(f"meta/chown/{name}", lambda ctx, n=name: chown_probe(ctx, n))

    def chown_subgroup_inherits(ctx: Ctx) -> Any:
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

    add("meta/chown-then-mkdir", chown_subgroup_inherits)

    def utime_probe(ctx: Ctx, name: str) -> Any:
        g = ctx.fresh()
        path = g if name == "." else _p(g, name)
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

    for name in (".", LIM, "memory.stat"):
        add(f"meta/utime/{name}", lambda ctx, n=name: utime_probe(ctx, n))

    def xattr_probe(ctx: Ctx, name: str, prefix: str) -> Any:
        g = ctx.fresh()
        path = g if name == "." else _p(g, name)
        key = f"{prefix}.fakecgfs"
        S = Steps()
        S.call("listxattr fresh", "listxattr", os.listxattr, path, show=sorted)
        S.call("getxattr missing", "getxattr", os.getxattr, path, key, show=text)
        S.call("setxattr", "setxattr", ctx.guarded(os.setxattr, path), key, b"v1")
        S.call("getxattr", "getxattr", os.getxattr, path, key, show=text)
        S.call("setxattr create existing", "setxattr", ctx.guarded(os.setxattr, path), key, b"v2",
               os.XATTR_CREATE)
        S.call("setxattr replace", "setxattr", ctx.guarded(os.setxattr, path), key, b"v3",
               os.XATTR_REPLACE)
        S.call("getxattr after replace", "getxattr", os.getxattr, path, key, show=text)
        S.call("setxattr replace missing", "setxattr", ctx.guarded(os.setxattr, path),
               key + "2", b"v", os.XATTR_REPLACE)
        S.call("listxattr", "listxattr", os.listxattr, path, show=sorted)
        S.call("removexattr", "removexattr", ctx.guarded(os.removexattr, path), key)
        S.call("getxattr after remove", "getxattr", os.getxattr, path, key, show=text)
        S.call("removexattr missing", "removexattr", ctx.guarded(os.removexattr, path), key)
        if name != ".":
            S.set("read", ctx.read(path))
        return S.d

    for name in (".", LIM, "memory.stat"):
        for prefix in ("user", "trusted", "security"):
            add(f"meta/xattr/{name}/{prefix}", lambda ctx, n=name, p=prefix: xattr_probe(ctx, n, p))

    def xattr_bad(ctx: Ctx, key: str) -> Any:
        g = ctx.fresh()
        path = _p(g, LIM)
        S = Steps()
        S.call("setxattr", "setxattr", ctx.guarded(os.setxattr, path), key, b"v")
        S.call("getxattr", "getxattr", os.getxattr, path, key, show=text)
        return S.d

    for key in ("foo.bar", "system.posix_acl_access", "user."):
        add(f"meta/xattr-name/{input_label(key.encode())}", lambda ctx, k=key: xattr_bad(ctx, k))

    def truncate_probe(ctx: Ctx, how: str, length: int) -> Any:
        g = ctx.fresh()
        path = _p(g, LIM)
        S = Steps()
        S.set("write 8192", ctx.write(path, b"8192"))
        if how == "path":
            S.call("truncate", "truncate", ctx.guarded(os.truncate, path), length)
        elif how == "dir":
            S.call("truncate", "truncate", ctx.guarded(os.truncate, g), length)
        else:
            flags = {"fd-rdonly": os.O_RDONLY, "fd-wronly": os.O_WRONLY, "fd-rdwr": os.O_RDWR}[how]
            fd = ctx.open(path, flags)
            S.call("ftruncate", "ftruncate", os.ftruncate, fd, length)
            os.close(fd)
        S.set("read", ctx.read(path))
        S.set("stat", ctx.stat(path))
        return S.d

    for how in ("path", "fd-rdonly", "fd-wronly", "fd-rdwr", "dir"):
        for length in (0, 100):
            add(f"meta/truncate/{how}/{length}", lambda ctx, h=how, n=length: truncate_probe(ctx, h, n))

    def sync_probe(ctx: Ctx, name: str, flags: int) -> Any:
        g = ctx.fresh()
        path = g if name == "." else _p(g, name)
        fd = ctx.open(path, flags)
        S = Steps()
        S.call("fsync", "fsync", os.fsync, fd)
        S.call("fdatasync", "fdatasync", os.fdatasync, fd)
        os.close(fd)
        return S.d

    add("meta/fsync/memory.limit_in_bytes/rdonly", lambda ctx: sync_probe(ctx, LIM, os.O_RDONLY))
    add("meta/fsync/memory.limit_in_bytes/wronly", lambda ctx: sync_probe(ctx, LIM, os.O_WRONLY))
    add("meta/fsync/memory.stat/rdonly", lambda ctx: sync_probe(ctx, "memory.stat", os.O_RDONLY))
    add("meta/fsync/./directory", lambda ctx: sync_probe(ctx, ".", os.O_RDONLY | os.O_DIRECTORY))


# ---- fds held across rmdir ------------------------------------------------------------------


def _held_fd_probes(add: Callable[..., None]) -> None:
    def held(ctx: Ctx, name: str, flags: int, pre_read: int, recreate: bool = False) -> Any:
        g = ctx.fresh()
        sub = _p(g, "sub")
        ctx.mkdir(sub)
        S = Steps()
        path = sub if name == "." else _p(sub, name)
        fd = ctx.open(path, flags)
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
               show=lambda st: {"type": _kind(st.st_mode), "mode": oct_mode(st.st_mode),
                                "size": st.st_size})
        S.call("fsync", "fsync", os.fsync, fd)
        S.call("close", "close", os.close, fd)
        if recreate:
            S.set("new group limit", ctx.read(_p(sub, "memory.limit_in_bytes")))
        return S.d

    cases = {
        "memory.limit_in_bytes/rdwr": ("memory.limit_in_bytes", os.O_RDWR, 0, False),
        "memory.limit_in_bytes/wronly": ("memory.limit_in_bytes", os.O_WRONLY, 0, False),
        "memory.limit_in_bytes/rdonly-partial": ("memory.limit_in_bytes", os.O_RDONLY, 3, False),
        "memory.stat/rdonly": ("memory.stat", os.O_RDONLY, 0, False),
        "memory.stat/rdonly-partial": ("memory.stat", os.O_RDONLY, 10, False),
        "memory.oom_control/rdonly": ("memory.oom_control", os.O_RDONLY, 0, False),
        "tasks/rdonly": ("tasks", os.O_RDONLY, 0, False),
        "cgroup.event_control/wronly": ("cgroup.event_control", os.O_WRONLY, 0, False),
        "memory.limit_in_bytes/rdwr-recreated": ("memory.limit_in_bytes", os.O_RDWR, 3, True),
        "directory": (".", os.O_RDONLY | os.O_DIRECTORY, 0, False),
    }
    for label, (name, flags, pre, rec) in cases.items():
        add(f"held-fd/{label}", lambda ctx, n=name, f=flags, p=pre, r=rec: held(ctx, n, f, p, r))


# ---- inheritance and hierarchy --------------------------------------------------------------


INHERIT_READS = (
    "memory.swappiness", "memory.oom_control", "cgroup.clone_children", "notify_on_release",
    "memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes",
    "memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes", "memory.use_hierarchy",
    "memory.move_charge_at_immigrate", "memory.shown_ram_in_bytes",
)


def _inherit_probes(add: Callable[..., None]) -> None:
    def read_all(ctx: Ctx, S: Steps, prefix: str, group: str) -> None:
        for name in INHERIT_READS:
            S.set(f"{prefix} {name}", ctx.read(_p(group, name)))

    def defaults(ctx: Ctx) -> Any:
        g = ctx.fresh()
        ctx.mkdir(_p(g, "c"))
        S = Steps()
        read_all(ctx, S, "child", _p(g, "c"))
        return S.d

    add("inherit/defaults", defaults)

    def one(ctx: Ctx, name: str, first: bytes, second: bytes) -> Any:
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

    for name, first, second in (
        ("memory.swappiness", b"30", b"90"),
        ("memory.oom_control", b"1", b"0"),
        ("cgroup.clone_children", b"1", b"0"),
        ("notify_on_release", b"1", b"0"),
        ("memory.limit_in_bytes", b"1G", b"512M"),
        ("memory.soft_limit_in_bytes", b"512M", b"256M"),
        ("memory.kmem.tcp.limit_in_bytes", b"256M", b"128M"),
        ("memory.kmem.limit_in_bytes", b"256M", b"128M"),
        ("memory.shown_ram_in_bytes", b"1G", b"512M"),
        ("memory.move_charge_at_immigrate", b"0", b"0"),
    ):
        add(f"inherit/{name}", lambda ctx, n=name, a=first, b=second: one(ctx, n, a, b))

    def limits_and_stat(ctx: Ctx) -> Any:
        g = ctx.fresh()
        S = Steps()
        for name, value in (("memory.limit_in_bytes", b"1G"), ("memory.memsw.limit_in_bytes", b"2G"),
                            ("memory.soft_limit_in_bytes", b"512M"),
                            ("memory.kmem.tcp.limit_in_bytes", b"256M")):
            S.set(f"parent write {name}", ctx.write(_p(g, name), value))
        c = _p(g, "c")
        S.call("mkdir c", "mkdir", ctx.mkdir, c)
        read_all(ctx, S, "child", c)
        S.set("child memory.stat", ctx.read(_p(c, "memory.stat")))
        S.set("child write limit 2G", ctx.write(_p(c, "memory.limit_in_bytes"), b"2G"))
        S.set("child write memsw 4G", ctx.write(_p(c, "memory.memsw.limit_in_bytes"), b"4G"))
        S.set("child limit", ctx.read(_p(c, "memory.limit_in_bytes")))
        S.set("child memory.stat after own 2G", ctx.read(_p(c, "memory.stat")))
        S.set("parent write limit 512M", ctx.write(_p(g, "memory.limit_in_bytes"), b"512M"))
        S.set("child memory.stat after parent 512M", ctx.read(_p(c, "memory.stat")))
        S.set("child write limit 256M", ctx.write(_p(c, "memory.limit_in_bytes"), b"256M"))
        S.set("child memory.stat after own 256M", ctx.read(_p(c, "memory.stat")))
        gc = _p(c, "gc")
        S.call("mkdir gc", "mkdir", ctx.mkdir, gc)
        S.set("grandchild memory.stat", ctx.read(_p(gc, "memory.stat")))
        S.set("grandchild numa_stat", ctx.read(_p(gc, "memory.numa_stat")))
        return S.d

    add("inherit/limits-and-hierarchical-stat", limits_and_stat)

    def memsw_only(ctx: Ctx) -> Any:
        g = ctx.fresh()
        S = Steps()
        S.set("parent limit 1G", ctx.write(_p(g, "memory.limit_in_bytes"), b"1G"))
        S.set("parent memsw 1G", ctx.write(_p(g, "memory.memsw.limit_in_bytes"), b"1G"))
        S.set("parent limit -1 (rejected?)", ctx.write(_p(g, "memory.limit_in_bytes"), b"-1"))
        c = _p(g, "c")
        ctx.mkdir(c)
        S.set("child memory.stat", ctx.read(_p(c, "memory.stat")))
        return S.d

    add("inherit/hierarchical-memsw", memsw_only)

    def use_hierarchy_with_child(ctx: Ctx) -> Any:
        g = ctx.fresh()
        ctx.mkdir(_p(g, "c"))
        S = Steps()
        for value in (b"0", b"1", b"2", b"0\n"):
            S.set(f"write {step_label(value)}", ctx.write(_p(g, "memory.use_hierarchy"), value))
        S.set("read", ctx.read(_p(g, "memory.use_hierarchy")))
        S.set("child", ctx.read(_p(g, "c", "memory.use_hierarchy")))
        return S.d

    add("inherit/use_hierarchy-with-child", use_hierarchy_with_child)

    def below_usage(ctx: Ctx, name: str, value: bytes) -> Any:
        # a parent with a child has kernel memory charged (usage > 0) but no tasks
        g = ctx.fresh()
        ctx.mkdir(_p(g, "c"))
        S = Steps()
        S.set("write", ctx.write(_p(g, name), value))
        S.set("read", ctx.read(_p(g, name)))
        S.set("failcnt", ctx.read(_p(g, "memory.failcnt")))
        return S.d

    for name, value in (("memory.limit_in_bytes", b"0"), ("memory.limit_in_bytes", b"4096"),
                        ("memory.soft_limit_in_bytes", b"0"),
                        ("memory.kmem.tcp.limit_in_bytes", b"0"),
                        ("memory.kmem.limit_in_bytes", b"0")):
        add(f"inherit/below-usage/{name}/{input_label(value)}",
            lambda ctx, n=name, v=value: below_usage(ctx, n, v))

    def force_empty_with_child(ctx: Ctx) -> Any:
        g = ctx.fresh()
        ctx.mkdir(_p(g, "c"))
        return {"write": ctx.write(_p(g, "memory.force_empty"), b"0")}

    add("inherit/force_empty-with-child", force_empty_with_child)


# ---- catalogue --------------------------------------------------------------------------------


def build_catalogue() -> list[Probe]:
    """The fixed, ordered list of probes."""
    probes: list[Probe] = []

    def add(pid: str, fn: Callable[[Ctx], Any], **kw: Any) -> None:
        probes.append(Probe(pid, fn, **kw))

    _root_probes(add)
    _child_probes(add)
    _fd_read_probes(add)
    _write_probes(add)
    _fd_write_probes(add)
    _open_probes(add)
    _event_probes(add)
    _mkdir_probes(add)
    _rmdir_probes(add)
    _rename_probes(add)
    _create_probes(add)
    _meta_probes(add)
    _held_fd_probes(add)
    _inherit_probes(add)
    ids = [p.id for p in probes]
    dup = {i for i in ids if ids.count(i) > 1} if len(set(ids)) != len(ids) else set()
    assert not dup, f"duplicate probe ids: {sorted(dup)}"
    return probes


# --------------------------------------------------------------------------------------------
# Recording


#: base-group settings written once so fresh groups never inherit machine-specific values
BASE_SETUP = (("memory.swappiness", b"60"), ("memory.oom_control", b"0"),
              ("cgroup.clone_children", b"0"), ("notify_on_release", b"0"))


def _open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def _run_probe(ctx: Ctx, probe: Probe) -> Any:
    before = _open_fds()
    try:
        return probe.fn(ctx)
    except GuardError:
        raise
    except Exception as exc:  # a probe must never stop the run: record what went wrong
        return {"probe_error": f"{type(exc).__name__}: {exc}"}
    finally:
        for fd in sorted(_open_fds() - before):
            try:
                os.close(fd)
            except OSError:
                pass
        ctx.finish_probe()


def record(root: str, only: str | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Run the probes against the v1 memory hierarchy mounted at ``root``; return the recording."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(root)
    probes = [p for p in build_catalogue() if only is None or p.id.startswith(only)]
    base = os.path.join(root, GROUP_PREFIX + secrets.token_hex(6))
    ctx = Ctx(root, base)
    started = time.monotonic()
    old_umask = os.umask(UMASK)
    results: list[dict[str, Any]] = []
    leftovers: list[str] = []
    base_setup: dict[str, Any] = {}
    try:
        os.mkdir(base, 0o755)
        for name, value in BASE_SETUP:
            base_setup[name] = ctx.write(os.path.join(base, name), value)
        for probe in probes:
            answer = _run_probe(ctx, probe)
            entry: dict[str, Any] = {"id": probe.id, "answer": answer,
                                     "machine_dependent": probe.machine_dependent}
            if probe.fakecgfs_only:
                entry["fakecgfs_only"] = True
            if probe.compare_with:
                entry["compare_with"] = {"id": probe.compare_with}
            results.append(entry)
    finally:
        os.umask(old_umask)
        leftovers = ctx.leftovers + remove_tree(base)
        if leftovers and log:
            log("WARNING: could not remove: " + ", ".join(leftovers))
    by_id = {r["id"]: r["answer"] for r in results}
    for entry in results:
        if "compare_with" in entry:
            entry["compare_with"]["answer"] = by_id.get(entry["compare_with"]["id"])
    duration = time.monotonic() - started
    return {
        "meta": {
            "kernel": os.uname().release,
            "machine": platform.machine(),
            "page_size": os.sysconf("SC_PAGE_SIZE"),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "root": root,
            "tool": "fakecgfs.conformance",
            "tool_version": TOOL_VERSION,
            "probe_count": len(results),
            "only": only,
            "umask": f"{UMASK:04o}",
            "duration_seconds": round(duration, 3),
            "base_setup": base_setup,
            "leftovers": leftovers,
            "areas": area_counts(r["id"] for r in results),
        },
        "probes": results,
    }


def area_counts(ids: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pid in ids:
        area = pid.split("/", 1)[0]
        counts[area] = counts.get(area, 0) + 1
    return counts


# --------------------------------------------------------------------------------------------
# Diff


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass
class Difference:
    id: str
    golden: Any = field(default=MISSING)
    new: Any = field(default=MISSING)

    def render(self) -> str:
        def show(value: Any) -> str:
            if value is MISSING:
                return "<missing>"
            return json.dumps(value, sort_keys=False)
        return f"DIFF {self.id}\n  golden: {show(self.golden)}\n  new:    {show(self.new)}"


def _compared(golden: dict, new: dict, ignore_machine_dependent: bool,
              ignore_fakecgfs_only: bool) -> tuple[list[str], dict, dict]:
    g = {p["id"]: p for p in golden.get("probes", [])}
    n = {p["id"]: p for p in new.get("probes", [])}
    ids = list(g) + [i for i in n if i not in g]

    def skipped(pid: str) -> bool:
        for side in (g, n):
            p = side.get(pid)
            if p is None:
                continue
            if ignore_machine_dependent and p.get("machine_dependent"):
                return True
            if ignore_fakecgfs_only and p.get("fakecgfs_only"):
                return True
        return False

    return [i for i in ids if not skipped(i)], g, n


def diff(golden: dict, new: dict, ignore_machine_dependent: bool = True,
         ignore_fakecgfs_only: bool = True) -> list[Difference]:
    """Differences between two recordings (a probe present in only one counts too).

    Machine-dependent probes (flagged in either file) are skipped by default, and so
    are fakecgfs-only probes (their kernel answer is ENOENT by design; compare them
    with :func:`diff_compare_with`).
    """
    ids, g, n = _compared(golden, new, ignore_machine_dependent, ignore_fakecgfs_only)
    out = []
    for pid in ids:
        ga = g[pid]["answer"] if pid in g else MISSING
        na = n[pid]["answer"] if pid in n else MISSING
        if ga is MISSING or na is MISSING or ga != na:
            out.append(Difference(pid, ga, na))
    return out


def compared_count(golden: dict, new: dict, ignore_machine_dependent: bool = True,
                   ignore_fakecgfs_only: bool = True) -> int:
    return len(_compared(golden, new, ignore_machine_dependent, ignore_fakecgfs_only)[0])


def diff_compare_with(golden: dict, new: dict) -> list[Difference]:
    """For each fakecgfs-only probe of ``new``, compare its answer with the golden
    answer of the probe it is paired with (``compare_with``): e.g. fakecgfs's
    ``memory.high_wmark_in_bytes`` parser against the kernel's limit parser."""
    g = {p["id"]: p["answer"] for p in golden.get("probes", [])}
    out = []
    for p in new.get("probes", []):
        cw = p.get("compare_with")
        if not cw:
            continue
        ref = g.get(cw["id"], MISSING)
        if ref is MISSING or ref != p["answer"]:
            out.append(Difference(p["id"], ref, p["answer"]))
    return out


def summary_line(n_differences: int, n_probes: int) -> str:
    return f"{n_differences} differences over {n_probes} probes"


# --------------------------------------------------------------------------------------------
# CLI


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fakecgfs.conformance", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="run the probes against a v1 memory hierarchy")
    rec.add_argument("root", help="mount root of the hierarchy, e.g. /sys/fs/cgroup/memory")
    rec.add_argument("-o", "--output", required=True, help="JSON file to write")
    rec.add_argument("--only", metavar="PREFIX", help="only probes whose id starts with PREFIX")
    dif = sub.add_parser("diff", help="compare two recordings")
    dif.add_argument("golden")
    dif.add_argument("new")
    dif.add_argument("--ignore-machine-dependent", action=argparse.BooleanOptionalAction,
                     default=True, help="skip probes flagged machine_dependent (default: on)")
    dif.add_argument("--ignore-fakecgfs-only", action=argparse.BooleanOptionalAction,
                     default=True, help="skip fakecgfs-only probes (default: on)")
    dif.add_argument("--compare-with", action="store_true",
                     help="instead compare NEW's fakecgfs-only probes with GOLDEN's paired answers")
    lst = sub.add_parser("list", help="print the probe ids")
    lst.add_argument("--only", metavar="PREFIX")
    args = parser.parse_args(argv)

    if args.cmd == "list":
        for probe in build_catalogue():
            if args.only is None or probe.id.startswith(args.only):
                print(probe.id)
        return 0

    if args.cmd == "record":
        data = record(args.root, only=args.only, log=lambda m: print(m, file=sys.stderr))
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.write("\n")
        meta = data["meta"]
        print(f"recorded {meta['probe_count']} probes from {meta['root']} "
              f"in {meta['duration_seconds']:.2f}s -> {args.output}")
        if meta["leftovers"]:
            print("left behind: " + ", ".join(meta["leftovers"]), file=sys.stderr)
            return 2
        return 0

    golden, new = _load(args.golden), _load(args.new)
    if args.compare_with:
        diffs = diff_compare_with(golden, new)
        total = sum(1 for p in new.get("probes", []) if p.get("compare_with"))
    else:
        diffs = diff(golden, new, args.ignore_machine_dependent, args.ignore_fakecgfs_only)
        total = compared_count(golden, new, args.ignore_machine_dependent,
                               args.ignore_fakecgfs_only)
    for d in diffs:
        print(d.render())
    print(summary_line(len(diffs), total))
    return 0 if not diffs else 1


if __name__ == "__main__":
    sys.exit(main())
