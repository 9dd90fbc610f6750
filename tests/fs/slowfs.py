"""A FUSE file system whose one file, ``f``, answers no read until GATE exists: the stand-in
for a file system an attacker serves (any user can, where /dev/fuse is open to all).

``python slowfs.py MOUNTPOINT GATE``; root runs it with allow_other in the tests.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time

import fuse

SIZE = 1 << 20


class Slow(fuse.Operations):
    def __init__(self, gate: str) -> None:
        self.gate = gate

    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}
        if path == "/f":
            return {"st_mode": stat.S_IFREG | 0o644, "st_nlink": 1, "st_size": SIZE}
        raise fuse.FuseOSError(errno.ENOENT)

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", "f"]

    def open(self, path: str, flags: int) -> int:
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        while not os.path.exists(self.gate):
            time.sleep(0.05)
        return bytes(min(size, max(SIZE - offset, 0)))


if __name__ == "__main__":
    fuse.FUSE(Slow(sys.argv[2]), sys.argv[1], foreground=True, allow_other=True)
