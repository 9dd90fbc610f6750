"""Serving a mount: one thread, one trio loop, holding the controller and the FUSE session.

The loop runs in the main thread, so that SIGINT, SIGTERM and SIGHUP reach it: each ends the
session, which fails any write still waiting with EINTR, and the mount is taken down.  An
unmount (``fakecgfs umount``, ``fusermount -u``) ends the session the same way.
"""

from __future__ import annotations

import codecs
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import trio

from ..controller import MemoryController
from ..runtime import ServerClaim
from .events_control import raise_descriptor_limit
from .fs import CgroupFS
from .session import FuseSession, MountError
from .table import MODERN, CfTable

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
    era: str = "6.18"  # "6.18", or "rfc-2008": 2.6.26-rc2-mm1 with the RFC as posted
    real_processes: bool = False  # charge member processes' real memory (docs/real-processes.md)


def fuse_options(options: MountOptions) -> dict[str, object]:
    """The libfuse mount options (see each comment for why)."""
    allow_other = options.allow_other if options.allow_other is not None else os.getuid() == 0
    chosen: dict[str, object] = {
        "fsname": "cgroup",
        "subtype": "fakecgfs",
        # The kernel checks modes for a mount by root.  A user's mount checks them in the
        # server, where its mounter is the superuser as root is on cgroupfs (fs.CgroupFS._permit).
        "default_permissions": os.getuid() == 0,
        "direct_io": True,  # size-0 files must still be read to the end, as on cgroupfs
        # The kernel may cache names and attributes: every change to them (mkdir, rmdir,
        # rename, chmod, chown, utime) goes through this mount's VFS, which updates its caches,
        # and sizes are always 0.  Contents are never cached (direct_io).  This saves two or
        # three requests per open.  See ATTR_TIMEOUT.
        "attr_timeout": ATTR_TIMEOUT,
        "entry_timeout": ATTR_TIMEOUT,
        "negative_timeout": ATTR_TIMEOUT,
        "big_writes": True,  # see whole writes, so that > 4096 bytes can be refused as E2BIG
        "max_write": 131072,
        "hard_remove": True,  # unlink of an open file must reach unlink() (EPERM), not be hidden
    }
    if allow_other:
        chosen["allow_other"] = True
    return chosen


SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What ends a mount, as with libfuse's own handlers (which stand aside: these are set first)."""


def serve(mountpoint: str, options: MountOptions) -> None:
    """Mount at ``mountpoint`` and serve until unmounted or signalled (blocks).  A failed mount
    raises session.MountError, out of trio's exception group; MountPointBusy (an OSError) if
    another server holds the mount point, before anything is touched."""
    # Ours alone from before the mount until after it: a second server of the mount point
    # fails here; the pid file is how `fakecgfs umount` finds us.
    claim = ServerClaim(mountpoint)
    raise_descriptor_limit()  # registrations hold eventfds (events_control)
    try:
        trio.run(_serve, os.path.abspath(mountpoint), options, claim)
    except BaseExceptionGroup as group:
        failed, rest = group.split(MountError)
        if failed is None or rest is not None:
            raise
        error: MountError | BaseExceptionGroup[MountError] = failed
        while isinstance(error, BaseExceptionGroup):
            error = error.exceptions[0]
        raise error from None
    finally:
        claim.release()


def _era(era: str) -> tuple[Any, CfTable, Callable[[Any], dict[str, Any]]]:
    """The controller class, control-file table and trace sample of an era."""
    if era == "rfc-2008":
        from ..eras.rfc2008 import Rfc2008Controller, sample_values
        from ..eras.rfc2008.cftypes import TABLE

        return Rfc2008Controller, TABLE, sample_values
    if era != "6.18":
        raise ValueError(f"unknown era {era!r}")
    from ..trace import sample_values as modern_sample_values

    return MemoryController, MODERN, modern_sample_values


async def _serve(mountpoint: str, options: MountOptions, claim: ServerClaim) -> None:
    controller_class, table, sample = _era(options.era)
    async with (
        controller_class.open(
            swap_bytes=options.swap_bytes, reclaim_rate=options.reclaim_rate
        ) as controller,
        trio.open_nursery() as nursery,
    ):
        trace = None
        if options.trace:
            from ..trace import SAMPLE_INTERVAL, TraceWriter, run_sampler

            trace = TraceWriter(
                options.trace, on_failure=lambda why: controller.listener_failed(trace, why)
            )
            controller.subscribe(trace)
            interval = options.trace_interval or SAMPLE_INTERVAL
            nursery.start_soon(run_sampler, controller, interval, sample, name="trace-sampler")
        real = None
        if options.real_processes:
            from ..members import RealProcesses

            real = controller.real = RealProcesses(controller)
            nursery.start_soon(real.run, name="members-sampler")
        from ..logs import log_event

        controller.subscribe(log_event)  # warnings and OOM kills in the log
        ops = CgroupFS(controller, strict=options.strict, mountpoint=mountpoint,
                       owner=(os.getuid(), os.getgid()), table=table,
                       superuser=None if os.getuid() == 0 else os.getuid())  # fmt: skip
        controller.on_compact(ops.compact)
        session = FuseSession(ops, mountpoint, fuse_options(options), encoding=PATH_ENCODING)
        try:
            with trio.open_signal_receiver(*SIGNALS) as signals:
                session.mount()
                claim.publish()
                log.info("mounted at %s (%s)", mountpoint, _describe(options))
                nursery.start_soon(_end_on_signal, signals, nursery.cancel_scope)
                await session.serve()
        finally:
            nursery.cancel_scope.cancel()  # the sampler, and the signal watcher
            if real is not None:
                real.close()  # members an OOM stopped are continued
            session.unmount()
            log.info("unmounted %s", mountpoint)
            claim.withdraw()
            if trace is not None:
                # Reclaim tasks still stop (and emit) after this block, as the controller
                # closes: stop listening before the file goes.
                if not trace.failure:
                    controller.unsubscribe(trace)
                trace.close()


def _describe(options: MountOptions) -> str:
    """The options as the log says them: only those that differ from the defaults."""
    chosen = [f"{name}={value}" for name, value in vars(options).items()
              if value != MountOptions.__dataclass_fields__[name].default]  # fmt: skip
    return ", ".join(chosen) or "defaults"


async def _end_on_signal(signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
    async for signum in signals:
        log.info("%s: unmounting", signal.Signals(signum).name)
        scope.cancel()
        return
