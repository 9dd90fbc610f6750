"""The probes' context: the ROOT, the tool's own group, fresh subgroups, and the guarded
primitives that refuse to touch anything outside that group."""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import time
from collections.abc import Callable
from typing import Any

from .answers import err, pid_input_is_safe, stat_dict, text
from .files import WMARK_FILES

GROUP_PREFIX = "fakecgfs-conformance-"
CLOSED_FD = 1000  # an fd number asserted to be closed, used for EBADF probes

# Probe context


class GuardError(RuntimeError):
    """A probe tried to modify something outside the tool's own group."""


def read_all(fd: int, size: int = 65536, max_reads: int = 10000) -> bytes:
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


def listing(path: str | bytes) -> list[str]:
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


AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


def renameat2(src: str, dst: str, flags: int) -> None:
    """renameat2(2) through the C library (glibc 2.28 and later); ENOSYS where it has none,
    which a recording then shows (no system call number is hard-coded here)."""
    fn = getattr(_libc(), "renameat2", None)
    if fn is None:
        raise OSError(errno.ENOSYS, "the C library has no renameat2")
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags)
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
    return {
        "f_bsize": sv.f_bsize,
        "f_blocks": sv.f_blocks,
        "f_bfree": sv.f_bfree,
        "f_files": sv.f_files,
        "f_ffree": sv.f_ffree,
        "f_namemax": sv.f_namemax,
    }


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
            return text(read_all(fd, size))
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
_CREATED_FILE_NAMES = {
    b"newfile",
    b"newfile2",
    b"nodefile",
    b"fifo",
    b"symlink",
    b"symlink2",
    b"hardlink",
    b"hardlink2",
    b"fifo2",
}
