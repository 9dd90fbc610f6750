"""Serving a mount: one thread, one trio loop, holding the controller and the FUSE session.

The loop runs in the main thread, so that SIGINT, SIGTERM and SIGHUP reach it: each ends the
session, which fails any write still waiting with EINTR, and the mount is taken down.  An
unmount (``fakecgfs umount``, ``fusermount -u``) ends the session the same way.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import signal
from dataclasses import dataclass
from typing import AsyncIterator

import trio

from .. import mounting
from ..controller import MemoryController
from .events_control import raise_descriptor_limit
from .fs import CgroupFS
from .session import FuseSession

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


def fuse_options(options: MountOptions) -> dict[str, object]:
    """The libfuse mount options (see each comment for why)."""
    allow_other = options.allow_other if options.allow_other is not None else os.getuid() == 0
    chosen: dict[str, object] = dict(
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
        hard_remove=True,  # unlink of an open file must reach unlink() (EPERM), not be hidden
    )
    if allow_other:
        chosen["allow_other"] = True
    return chosen


SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What ends a mount, as with libfuse's own handlers (which stand aside: these are set first)."""


def serve(mountpoint: str, options: MountOptions) -> None:
    """Mount at ``mountpoint`` and serve until unmounted or signalled (blocks)."""
    raise_descriptor_limit()  # registrations hold eventfds (events_control)
    trio.run(_serve, os.path.abspath(mountpoint), options)


async def _serve(mountpoint: str, options: MountOptions) -> None:
    async with MemoryController.open(
        swap_bytes=options.swap_bytes, reclaim_rate=options.reclaim_rate
    ) as controller, trio.open_nursery() as nursery:
        trace = None
        if options.trace:
            from ..trace import SAMPLE_INTERVAL, TraceWriter, run_sampler

            trace = TraceWriter(options.trace)
            controller.subscribe(trace)
            interval = options.trace_interval or SAMPLE_INTERVAL
            nursery.start_soon(run_sampler, controller, interval, name="trace-sampler")
        ops = CgroupFS(controller, strict=options.strict, mountpoint=mountpoint,
                       owner=(os.getuid(), os.getgid()))  # fmt: skip
        session = FuseSession(ops, mountpoint, fuse_options(options), encoding=PATH_ENCODING)
        pidfile = mounting.runtime_path(mountpoint, ".pid")  # how `fakecgfs umount --lazy` finds us
        try:
            with trio.open_signal_receiver(*SIGNALS) as signals:
                session.mount()
                with open(pidfile, "w", encoding="ascii") as f:
                    f.write(f"{os.getpid()}\n")
                nursery.start_soon(_end_on_signal, signals, nursery.cancel_scope)
                await session.serve()
        finally:
            nursery.cancel_scope.cancel()  # the sampler, and the signal watcher
            session.unmount()
            with contextlib.suppress(OSError):
                os.unlink(pidfile)
            if trace is not None:
                # Reclaim tasks still stop (and emit) after this block, as the controller
                # closes: stop listening before the file goes.
                controller.unsubscribe(trace)
                trace.close()


async def _end_on_signal(signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
    async for signum in signals:
        log.info("%s: unmounting", signal.Signals(signum).name)
        scope.cancel()
        return
