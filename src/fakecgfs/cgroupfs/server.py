"""Serving a mount: the trio loop with the controller in one thread, libfuse in the main thread.

libfuse owns the main thread so that its SIGINT/SIGTERM/SIGHUP handlers end the loop and
unmount cleanly; when FUSE() returns, the trio loop is told to stop, which stops every reclaim
task and fails any write still waiting with EINTR.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import queue
import sys
import threading
from dataclasses import dataclass

import fuse
import trio

from .. import mounting
from ..controller import MemoryController
from .bridge import Bridge
from .fs import CgroupFS

log = logging.getLogger("fakecgfs")

ATTR_TIMEOUT = 3600.0
"""Seconds the kernel may keep a name or attributes.  Nothing changes them behind the kernel's
back, so long is right; it also lets fstat() of a descriptor held across rmdir answer from the
kernel's cache, as kernfs does, where libfuse could no longer find the file's path."""

PATH_ENCODING = "fakecgfs-utf8-surrogateescape"
"""fusepy decodes names with a codec name only; this one keeps non-UTF-8 names (cgroupfs
accepts them) instead of failing every call on them."""


def _path_codec(name: str) -> codecs.CodecInfo | None:
    if name != PATH_ENCODING.replace("-", "_") and name != PATH_ENCODING:
        return None
    return codecs.CodecInfo(
        name=PATH_ENCODING,
        encode=lambda s, errors="strict": codecs.utf_8_encode(s, "surrogateescape"),
        decode=lambda b, errors="strict": codecs.utf_8_decode(b, "surrogateescape", True),
    )


codecs.register(_path_codec)


@dataclass(frozen=True)
class MountOptions:
    strict: bool = False  # hide the fake.* files
    swap_bytes: int = 0  # size of the simulated swap device
    reclaim_rate: int | None = None  # background reclaim pace in bytes/s; None: full speed
    allow_other: bool | None = None  # None: when mounted by root, as cgroupfs is visible to all
    trace: str | None = None  # JSON-lines event trace file
    trace_interval: float | None = None  # seconds between usage samples; None: the default


class _ControllerThread:
    """The trio loop, running the controller until told to stop."""

    def __init__(self, options: MountOptions) -> None:
        self.options = options
        self._ready: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._main, name="fakecgfs-controller", daemon=True)
        self.controller: MemoryController | None = None
        self.bridge: Bridge | None = None
        self._stop: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    def start(self) -> None:
        self._thread.start()
        error = self._ready.get()
        if error is not None:
            raise error

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as e:  # reported to start() if it happened before ready
            self._ready.put(e)
            log.exception("controller loop failed")

    async def _serve(self) -> None:
        options = self.options
        async with MemoryController.open(
            swap_bytes=options.swap_bytes, reclaim_rate=options.reclaim_rate
        ) as controller, trio.open_nursery() as nursery:
            self.controller = controller
            self.bridge = Bridge(trio.lowlevel.current_trio_token(), nursery)
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            trace = None
            if options.trace:
                from ..trace import SAMPLE_INTERVAL, TraceWriter, run_sampler

                trace = TraceWriter(options.trace)
                controller.subscribe(trace)
                interval = options.trace_interval or SAMPLE_INTERVAL
                nursery.start_soon(run_sampler, controller, interval, name="trace-sampler")
            self._ready.put(None)
            try:
                await self._stop.wait()
            finally:
                nursery.cancel_scope.cancel()
                if trace is not None:
                    # Reclaim tasks still stop (and emit) after this block, as the controller
                    # closes: stop listening before the file goes.
                    controller.unsubscribe(trace)
                    trace.close()

    def stop(self) -> None:
        if self._stop is not None and self._token is not None:
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join(timeout=10)


SWITCH_INTERVAL = 0.0005
"""Seconds a thread may hold the GIL while another waits (Python's default is 5 ms).  Reclaim
passes run back to back in the loop thread; at the default, every FUSE request arriving
meanwhile waited up to 5 ms for the GIL (measured: a stat read's median 2.4 ms during a
full-speed reclaim, 0.4 ms at rest)."""


def serve(mountpoint: str, options: MountOptions) -> None:
    """Mount at ``mountpoint`` and serve until unmounted or signalled (blocks)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    mountpoint = os.path.abspath(mountpoint)
    loop = _ControllerThread(options)
    loop.start()
    assert loop.controller is not None and loop.bridge is not None
    owner = (os.getuid(), os.getgid())
    allow_other = options.allow_other if options.allow_other is not None else os.getuid() == 0
    ops = CgroupFS(loop.controller, loop.bridge, strict=options.strict, mountpoint=mountpoint,
                   owner=owner)  # fmt: skip
    fuse_options = dict(
        foreground=True,
        fsname="cgroup",
        subtype="fakecgfs",
        default_permissions=True,
        direct_io=True,  # size-0 files must still be read to the end, as on cgroupfs
        # The kernel may cache names and attributes: every change to them (mkdir, rmdir,
        # rename, chmod, chown, utime) goes through this mount's VFS, which updates its caches,
        # and sizes are always 0.  Contents are never cached (direct_io).  This saves two or
        # three requests per open.  See ATTR_TIMEOUT.
        attr_timeout=ATTR_TIMEOUT,
        entry_timeout=ATTR_TIMEOUT,
        negative_timeout=ATTR_TIMEOUT,
        big_writes=True,  # see whole writes, so that > 4096 bytes can be refused as E2BIG
        max_write=131072,
        intr=True,  # deliver interrupts, so a blocked charge ends with EINTR on Ctrl-C
        hard_remove=True,  # unlink of an open file must reach unlink() (EPERM), not be hidden
    )
    if allow_other:
        fuse_options["allow_other"] = True
    pidfile = mounting.runtime_path(mountpoint, ".pid")  # how `fakecgfs umount --lazy` finds us
    with open(pidfile, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")
    loop.bridge.in_fuse_requests = True
    try:
        fuse.FUSE(ops, mountpoint, raw_fi=False, encoding=PATH_ENCODING, **fuse_options)
    finally:
        loop.stop()
        with contextlib.suppress(OSError):
            os.unlink(pidfile)
