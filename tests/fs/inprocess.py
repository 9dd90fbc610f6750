"""A mount served in the test's own process, so that a test can look at the filesystem's tables
while it drives the mount with os calls: the server is the trio loop of the test (its main
thread), the client's calls run in a worker thread (trio.to_thread), since they wait for the
loop to answer them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from fakecgfs.cgroupfs.fs import CgroupFS
from fakecgfs.cgroupfs.server import PATH_ENCODING, MountOptions, fuse_options
from fakecgfs.cgroupfs.session import FuseSession
from fakecgfs.controller import MemoryController
from fakecgfs.testing import fuse_unavailable_reason


@contextlib.asynccontextmanager
async def served(directory: Path) -> AsyncIterator[tuple[CgroupFS, Path]]:
    """The filesystem and its mount point, mounted under ``directory`` as the server mounts it
    (the same options); unmounted on the way out, whatever happened."""
    async with served_session(directory) as (fs, _, mountpoint):
        yield fs, mountpoint


@contextlib.asynccontextmanager
async def served_session(directory: Path, *, mounter: int | None = None,
                         ) -> AsyncIterator[tuple[CgroupFS, FuseSession, Path]]:  # fmt: skip
    """served(), with the session that serves the mount; with ``mounter``, served as that
    user's own mount is (no default_permissions: the server checks, and the mounter passes).
    The test is skipped, saying why, where FUSE is not available."""
    reason = fuse_unavailable_reason()
    if reason:
        pytest.skip(reason)
    mountpoint = directory / "mnt"
    mountpoint.mkdir()
    uid = os.getuid()
    options = fuse_options(MountOptions())
    superuser = None if uid == 0 else uid  # as the server sets it
    if mounter is not None:
        options["default_permissions"], superuser = False, mounter
    async with MemoryController.open() as ctl, trio.open_nursery() as nursery:
        fs = CgroupFS(ctl, mountpoint=str(mountpoint), owner=(uid, os.getgid()),
                      superuser=superuser)  # fmt: skip
        session = FuseSession(fs, str(mountpoint), options, encoding=PATH_ENCODING)
        session.mount()
        try:
            nursery.start_soon(session.serve)
            yield fs, session, mountpoint
        finally:
            nursery.cancel_scope.cancel()
            session.unmount()


async def until(predicate, timeout: float = 10.0) -> None:
    """Wait, letting the loop serve, until ``predicate()`` holds; TooSlowError after timeout."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.005)
