"""The cgroupfs layer's part of giving memory back: the filesystem's handle tables shrink when
the controller compacts (the server registers the hook), and the session fills a stat without
building a new string per request (fusepy's set_st_attrs() builds ``key + "spec"`` for every
time field, which CPython's type attribute cache keeps until the next lookup)."""

from __future__ import annotations

import ctypes
import os
import sys
import tracemalloc

import fuse
import trio

from fakecgfs.cgroupfs.fs import CgroupFS
from fakecgfs.cgroupfs.session import _Callbacks
from fakecgfs.controller import MemoryController


def test_the_filesystem_shrinks_its_handle_table_when_the_controller_compacts():
    async def main() -> None:
        async with MemoryController.open() as ctl:
            fs = CgroupFS(ctl, mountpoint="/nowhere")
            ctl.on_compact(fs.compact)  # as the server does
            empty = sys.getsizeof(fs._handles)
            kept = fs.open("/memory.stat", os.O_RDONLY)
            fhs = [fs.open("/memory.usage_in_bytes", os.O_RDONLY) for _ in range(5000)]
            for fh in fhs:
                fs.release(None, fh)
            peak = sys.getsizeof(fs._handles)
            assert peak > 100 * empty  # a dict keeps its peak size after deletions
            ctl.compact()
            assert sys.getsizeof(fs._handles) < peak // 100
            assert list(fs._handles) == [kept] and fs.read_request(kept, 4096, 0)

    trio.run(main)


class _Stat:
    """An operations object that answers getattr as CgroupFS does (times in nanoseconds)."""

    def __call__(self, op: str, path: str, fh: object) -> dict:
        assert op == "getattr" and path == "/g"
        return {"st_mode": 0o40755, "st_nlink": 2, "st_uid": 7, "st_gid": 8, "st_size": 0,
                "st_atime": 1_500_000_000_123_456_789, "st_mtime": 1_600_000_000_000_000_001,
                "st_ctime": 1_700_000_000_999_999_999}  # fmt: skip


def test_getattr_fills_the_stat_as_fusepy_does():
    callbacks = _Callbacks(_Stat(), "utf-8")
    ours, theirs = fuse.c_stat(), fuse.c_stat()
    assert callbacks.fgetattr(b"/g", ctypes.pointer(ours), None) == 0
    fuse.set_st_attrs(theirs, _Stat()("getattr", "/g", None), use_ns=True)
    assert bytes(ours) == bytes(theirs)
    assert (ours.st_mode, ours.st_uid, ours.st_mtimespec.tv_sec, ours.st_mtimespec.tv_nsec) == (
        0o40755,
        7,
        1_600_000_000,
        1,
    )


def test_getattr_keeps_nothing_per_request():
    callbacks = _Callbacks(_Stat(), "utf-8")
    buf = ctypes.pointer(fuse.c_stat())
    for _ in range(1000):  # warm up: whatever is allocated once
        callbacks.fgetattr(b"/g", buf, None)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20000):
            callbacks.fgetattr(b"/g", buf, None)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Anything kept per request (a 61-byte string, a dict) would be over 1 MiB here.
    assert grown < 16 * 1024, grown
