"""The baseline of the FUSE benchmarks: the smallest useful fusepy filesystem.

    python bench/baseline_fs.py MOUNTPOINT [--nothreads] [--attr-timeout S] [--library mfusepy]

It serves a small file ``value`` (``9223372036854771712\\n``, what an unlimited limit reads) and a
~1 KB ``stat`` (a memory.stat-shaped text), at the root and again in a directory ``g``, so that
every fakecgfs path in the benchmarks has a baseline path of the same depth (same number of FUSE
LOOKUPs).  It registers only getattr, open, read, write and truncate: fusepy registers exactly
the operations its object has, and this class does not inherit fuse.Operations.

It mounts with the FUSE options fakecgfs uses that change the request stream (direct_io,
big_writes, default_permissions, allow_other when root, and the attribute/entry/negative cache
timeout fakecgfs uses, which the benchmarks pass as --attr-timeout), so a ratio compares the
Python work per request and not the kernel's caching.  It runs in the
foreground until unmounted or signalled, like ``fakecgfs mount --foreground``.

``--library mfusepy`` serves the same filesystem through mfusepy instead of fusepy (issue 17:
mfusepy keeps fusepy's API and loads libfuse2 or, with FUSE_LIBRARY_NAME=fuse3, libfuse3).
mfusepy calls the object's methods directly where fusepy goes through ``__call__``.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import stat
import threading
import time

VALUE = b"9223372036854771712\n"
STAT_NAMES = (  # noqa: SIM905 - the kernel's names, read as memory.stat prints them
    "cache rss rss_huge shmem mapped_file dirty writeback swap pgpgin pgpgout pgfault pgmajfault "
    "inactive_anon active_anon inactive_file active_file unevictable hierarchical_memory_limit "
    "hierarchical_memsw_limit"
).split()
STAT = "".join(f"{name} {i * 4096}\n" for i, name in enumerate(STAT_NAMES))
STAT = (
    STAT + "".join(f"total_{name} {i * 4096}\n" for i, name in enumerate(STAT_NAMES[:-2]))
).encode()

LIBRARIES = {"fusepy": "fuse", "mfusepy": "mfusepy"}  # --library -> the module to import
DIRS = ("/", "/g")
FILES = ("value", "stat")


class BaselineFS:
    """getattr, open, read, write, truncate; nothing else is registered."""

    use_ns = True

    def __init__(self) -> None:
        now = time.time_ns()
        self._lock = threading.Lock()
        self._content = {
            f"{d.rstrip('/')}/{f}": (VALUE if f == "value" else STAT) for d in DIRS for f in FILES
        }
        self._times = {"st_atime": now, "st_mtime": now, "st_ctime": now}

    def __call__(self, op, *args):
        return getattr(self, op)(*args)

    def getattr(self, path, fh=None):
        if path in DIRS:
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2, **self._times}
        if path not in self._content:
            raise _error(errno.ENOENT)
        return {"st_mode": stat.S_IFREG | 0o644, "st_nlink": 1, "st_size": 0, **self._times}

    def open(self, path, flags):
        if path not in self._content:
            raise _error(errno.EISDIR if path in DIRS else errno.ENOENT)
        return 0

    def read(self, path, size, offset, fh):
        return self._content[path][offset : offset + size]

    def write(self, path, data, offset, fh):
        value = int(data.strip() or b"0")  # parse, as a control file would
        if path.endswith("/value"):
            with self._lock:
                self._content[path] = b"%d\n" % value
        return len(data)

    def truncate(self, path, length, fh=None):
        return None


def _error(code: int) -> OSError:
    """What both libraries turn into -errno (their FuseOSError is this OSError)."""
    return OSError(code, os.strerror(code))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mountpoint")
    parser.add_argument("--nothreads", action="store_true", help="fusepy's single-threaded mode")
    parser.add_argument(
        "--attr-timeout",
        type=float,
        default=0.0,
        metavar="S",
        help="attr_timeout, entry_timeout and negative_timeout (default 0)",
    )
    parser.add_argument(
        "--library", choices=tuple(LIBRARIES), default="fusepy", help="default fusepy"
    )
    args = parser.parse_args()
    fuse = importlib.import_module(LIBRARIES[args.library])
    t = args.attr_timeout
    options = dict(  # noqa: C408 - fusepy's keyword options, spelt as on the command line
        foreground=True,
        fsname="baseline",
        subtype="baselinefs",
        direct_io=True,
        attr_timeout=t,
        entry_timeout=t,
        negative_timeout=t,
        big_writes=True,
        max_write=131072,
        default_permissions=True,
    )
    if os.getuid() == 0:
        options["allow_other"] = True
    if getattr(fuse, "fuse_version_major", 2) == 3:
        # libfuse3 refuses both ("unknown option"): its writes are always big, and max_write
        # is set in init() through fuse_conn_info (the benchmarks' writes are a few bytes).
        del options["big_writes"], options["max_write"]
    fuse.FUSE(BaselineFS(), args.mountpoint, nothreads=args.nothreads, **options)


if __name__ == "__main__":
    main()
