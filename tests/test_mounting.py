"""mounting's server helpers, shared by `fakecgfs mount`, `fakecgfs run`, the test kit and the
review lesson: start a foreground server, wait for its mount, stop it, detach what it left."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fakecgfs import mounting
from fakecgfs.testing import fuse_unavailable_reason


def test_stop_server_kills_what_ignores_sigterm():
    ignoring = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n"
                                 "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                 "print(flush=True)\ntime.sleep(60)"],
                                stdout=subprocess.PIPE)  # fmt: skip
    assert ignoring.stdout is not None and ignoring.stdout.readline() == b"\n"  # handler set
    mounting.stop_server(ignoring, timeout=0.2)
    assert ignoring.returncode == -9
    polite = subprocess.Popen(["sleep", "60"])
    mounting.stop_server(polite)
    assert polite.returncode == -15
    mounting.stop_server(polite)  # already reaped: nothing to do


def test_a_server_that_cannot_mount_is_not_waited_for(tmp_path):
    log = tmp_path / "log"
    with open(log, "wb") as f:
        server = mounting.start_server(str(tmp_path / "missing"), ["--strict"], f)
    try:
        assert not mounting.wait_mounted(server, str(tmp_path / "missing"), timeout=60)
        assert server.poll() == 1
    finally:
        mounting.stop_server(server)
    assert "no such directory" in log.read_text()


@pytest.mark.skipif(fuse_unavailable_reason() is not None, reason="FUSE unavailable")
def test_start_wait_stop_and_detach(tmp_path):
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    with open(tmp_path / "log", "wb") as f:
        server = mounting.start_server(str(mountpoint), ["--strict"], f)
    try:
        assert mounting.wait_mounted(server, str(mountpoint))
        assert (mountpoint / "memory.limit_in_bytes").exists()
        assert not (mountpoint / "fake.charge").exists()  # the options reached it
        server.kill()  # dies without unmounting: a dead mount is left
        server.wait()
        assert mounting.is_stale(str(mountpoint))
    finally:
        mounting.stop_server(server)
        mounting.detach_leftover(str(mountpoint))
    assert not mounting.is_fakecgfs_mount(str(mountpoint))
    mounting.detach_leftover(str(mountpoint))  # nothing there: nothing done
