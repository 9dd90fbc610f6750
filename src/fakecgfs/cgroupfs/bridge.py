"""The bridge from libfuse's threads into the controller's trio loop.

fusepy calls arrive on libfuse worker threads; every controller operation is sent to the one trio
thread (trio.from_thread), so the controller needs no locks.  A write that may wait (a charge in
OOM, a limit write reclaiming) is run as its own trio task that the FUSE thread can cancel when the
kernel reports the request interrupted (the writer got a signal, e.g. Ctrl-C): that is how such a
write ends with EINTR instead of hanging.
"""

from __future__ import annotations

import ctypes
import errno
import threading
from typing import Any, Awaitable, Callable, TypeVar

import trio

from ..controller import ControllerError

T = TypeVar("T")

INTERRUPT_POLL_INTERVAL = 0.05
"""Seconds between two checks of fuse_interrupted() while a blocking write waits."""


def _load_fuse_interrupted() -> Callable[[], int]:
    try:
        import fuse

        fn = fuse._libfuse.fuse_interrupted
        fn.restype = ctypes.c_int
        fn.argtypes = []
        return fn
    except (ImportError, AttributeError, OSError):  # no libfuse: never interrupted
        return lambda: 0


def _load_fuse_exited() -> Callable[[], int]:
    """fuse_exited() of the calling request's session, set by libfuse's SIGINT/SIGTERM/SIGHUP
    handlers: libfuse then waits for the requests in progress before FUSE() returns."""
    try:
        import fuse

        get_context = fuse._libfuse.fuse_get_context
        exited = fuse._libfuse.fuse_exited
        exited.restype = ctypes.c_int
        exited.argtypes = [ctypes.c_void_p]
    except (ImportError, AttributeError, OSError):  # no libfuse: never exiting
        return lambda: 0

    def fuse_exited() -> int:
        instance = get_context().contents.fuse
        return exited(instance) if instance else 0

    return fuse_exited


class Bridge:
    """Runs controller code in the trio loop on behalf of a FUSE thread."""

    def __init__(self, token: trio.lowlevel.TrioToken, nursery: trio.Nursery) -> None:
        self.token = token  # the controller's loop
        self.nursery = nursery  # where interruptible writes run as tasks
        # Set by the server once libfuse serves the mount: only inside a libfuse request may
        # fuse_interrupted() and fuse_exited() be asked (elsewhere libfuse's thread-local
        # context is undefined, and asking crashes), e.g. when tests drive CgroupFS directly.
        self.in_fuse_requests = False
        self._fuse_interrupted = _load_fuse_interrupted()
        self._fuse_exited = _load_fuse_exited()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a synchronous function in the trio loop and return its result."""
        try:
            return trio.from_thread.run_sync(fn, *args, trio_token=self.token)
        except trio.RunFinishedError as e:
            raise ControllerError(errno.ENOTCONN, "the controller has stopped") from e

    def _soon(self, callback: Callable[[], None]) -> bool:
        """Queue ``callback`` in the loop without waiting for it; False if the loop is gone."""
        try:
            self.token.run_sync_soon(callback)
        except trio.RunFinishedError:
            return False
        return True

    def call_async(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        try:
            return trio.from_thread.run(fn, *args, trio_token=self.token)
        except trio.RunFinishedError as e:
            raise ControllerError(errno.ENOTCONN, "the controller has stopped") from e

    def call_interruptible(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Like call_async, but EINTR as soon as FUSE reports the request interrupted, and also
        when the mount is ending (a signal to the server, or the controller shutting down) while
        the call waits: libfuse joins its workers before FUSE() returns, so a write asleep in OOM
        must end first or the server would never exit."""
        done = threading.Event()
        outcome: dict[str, Any] = {}
        scope = trio.CancelScope()

        async def task() -> None:
            try:
                with scope:
                    outcome["value"] = await fn(*args)
                if scope.cancelled_caught:
                    outcome["error"] = ControllerError(errno.EINTR, "interrupted")
            except BaseException as e:  # delivered to the FUSE thread, which re-raises it
                outcome["error"] = (
                    ControllerError(errno.EINTR, "interrupted") if isinstance(e, trio.Cancelled) else e
                )
                if not isinstance(e, Exception):
                    raise
            finally:
                done.set()

        def spawn() -> None:  # runs in the loop; must not raise there
            try:
                self.nursery.start_soon(task)
            except RuntimeError:  # the nursery is closing: the mount is going away
                outcome["error"] = ControllerError(errno.ENOTCONN, "the controller has stopped")
                done.set()

        # Fire and forget (no round trip): the task itself tells us when it is done.
        if not self._soon(spawn):
            raise ControllerError(errno.ENOTCONN, "the controller has stopped")
        while not done.wait(INTERRUPT_POLL_INTERVAL):
            if self.in_fuse_requests and (self._fuse_interrupted() or self._fuse_exited()):
                if not self._soon(scope.cancel):
                    break
        done.wait(5)
        if "error" in outcome:
            raise outcome["error"]
        if "value" not in outcome:
            raise ControllerError(errno.EINTR, "interrupted")
        return outcome["value"]
