"""Mounting and unmounting: background mounts, dead mounts, signals to the server."""

from __future__ import annotations

import errno
import os
import re
import select
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from fakecgfs import linux, mounting, runtime
from fakecgfs.testing import fuse_unavailable_reason

from .helpers import errno_of, kv_lines, read, wait_for_state, wait_until, write

pytestmark = pytest.mark.skipif(fuse_unavailable_reason() is not None,
                                reason=str(fuse_unavailable_reason()))  # fmt: skip


def fakecgfs(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["fakecgfs", *args], capture_output=True, text=True, timeout=timeout)


_servers: dict[int, int] = {}
"""pid -> pidfd of each server these tests started, opened as its pid was reported and checked
to be that fakecgfs server: the tests signal only through these, never by a bare pid."""


def process_gone(pid: int) -> bool:
    """Exited (its pidfd is readable once it has), or a zombie nobody has reaped yet."""
    pidfd = _servers.get(pid)
    if pidfd is not None:
        return bool(select.select([pidfd], [], [], 0)[0])
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except OSError:
        return True


def server_pid_of(result: subprocess.CompletedProcess) -> int:
    """The pid of the server `fakecgfs mount` reported; a pidfd on it is kept for kill_server()
    if it is alive and is a fakecgfs server (its command line names fakecgfs)."""
    match = re.search(r"server pid (\d+)", result.stdout + result.stderr)
    assert match, (result.stdout, result.stderr)
    pid = int(match.group(1))
    try:
        pidfd = linux.pidfd_open(pid)
    except ProcessLookupError:
        return pid  # already gone: nothing to signal
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read()
    if b"fakecgfs" in cmdline and not select.select([pidfd], [], [], 0)[0]:
        _servers[pid] = pidfd
    else:
        os.close(pidfd)
    return pid


def kill_server(pid: int) -> None:
    """SIGKILL a server these tests started, through the pidfd taken when it was reported."""
    linux.pidfd_send_signal(_servers[pid], signal.SIGKILL)


def _forget_server(pid: int) -> None:
    pidfd = _servers.pop(pid, None)
    if pidfd is not None:
        os.close(pidfd)


def mount_in_background(mountpoint: Path, log: str, pids: list[int]) -> subprocess.CompletedProcess:
    """`fakecgfs mount MOUNTPOINT --log LOG`, which must succeed; its server's pid joins
    ``pids`` (of background_mounts)."""
    result = fakecgfs("mount", str(mountpoint), "--log", log)
    assert result.returncode == 0, result.stderr
    pids.append(server_pid_of(result))
    return result


@contextmanager
def background_mounts(mountpoint: Path):
    """Collects the pids of servers started with `fakecgfs mount`; on the way out, whatever
    happened, kills those still alive and detaches whatever is left at ``mountpoint``."""
    pids: list[int] = []
    try:
        yield pids
    finally:
        for pid in pids:
            if pid in _servers and not process_gone(pid):
                kill_server(pid)
            _forget_server(pid)
        if mounting.is_fakecgfs_mount(str(mountpoint)) or mounting.is_stale(str(mountpoint)):
            subprocess.run(["fusermount", "-u", "-z", str(mountpoint)], capture_output=True)
        # A killed server leaves its pid and lock files behind (the next server of the mount
        # point would find them stale and replace them).
        with runtime.RuntimeDir() as rundir:
            for suffix in (".pid", ".lock"):
                rundir.unlink(runtime.mount_key(str(mountpoint)) + suffix)


def test_sigterm_unmounts_cleanly(mnt):
    os.mkdir(mnt.path / "g")
    mnt.process.send_signal(signal.SIGTERM)
    assert mnt.process.wait(timeout=10) == 0
    assert not mounting.is_fakecgfs_mount(str(mnt.path))
    assert not mounting.is_stale(str(mnt.path))
    assert os.listdir(mnt.path) == []


def test_sigint_unmounts_cleanly(mnt):
    mnt.process.send_signal(signal.SIGINT)
    assert mnt.process.wait(timeout=10) == 0
    assert not mounting.is_fakecgfs_mount(str(mnt.path))


def test_fusermount_u_ends_the_server(mnt):
    subprocess.run(["fusermount", "-u", str(mnt.path)], check=True)
    assert mnt.process.wait(timeout=10) == 0


def test_sigterm_with_a_running_reclaim_task(mount_factory):
    mount = mount_factory("--reclaim-rate", "64K")
    g = mount.path / "g"
    os.mkdir(g)
    write(g / "memory.high_wmark_in_bytes", "8M")
    write(g / "memory.low_wmark_in_bytes", "4M")
    write(g / "fake.charge", "12M file")
    wait_for_state(g, "running")
    mount.process.send_signal(signal.SIGTERM)
    assert mount.process.wait(timeout=10) == 0
    assert not mounting.is_fakecgfs_mount(str(mount.path))


@contextmanager
def charge_asleep_in_oom(group: Path):
    """A shell whose charge sleeps in OOM in ``group`` (oom_kill_disable 1); killed and reaped
    on the way out, whatever happened."""
    os.mkdir(group)
    write(group / "memory.limit_in_bytes", "4M")
    write(group / "memory.oom_control", "1")
    writer = subprocess.Popen(["sh", "-c", "echo '8M anon' > fake.charge; echo rc=$?"],
                              cwd=group, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        wait_until(lambda: kv_lines(group / "memory.oom_control")["under_oom"] == "1",
                   what="the charge to sleep in OOM")  # fmt: skip
        yield writer
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_with_a_charge_asleep_in_oom(mnt, signum):
    """libfuse waits for the requests in progress before it returns: a write asleep in OOM
    must end (EINTR) or the server would never exit.  SIGINT is Ctrl-C on `mount -f`."""
    with charge_asleep_in_oom(mnt.path / "g") as writer:
        mnt.process.send_signal(signum)
        assert mnt.process.wait(timeout=10) == 0
        out, _ = writer.communicate(timeout=10)
        assert out.strip() != "rc=0"
    assert not mounting.is_fakecgfs_mount(str(mnt.path))
    assert not mounting.is_stale(str(mnt.path))


def test_umount_with_a_charge_asleep_in_oom(tmp_path):
    """The sleeping writer holds a file open: `fakecgfs umount` refuses (busy), and --lazy stops
    the server, which ends the write; nothing hangs."""
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    with background_mounts(mountpoint) as pids:
        mount_in_background(mountpoint, str(tmp_path / "log"), pids)
        pid = pids[-1]
        with charge_asleep_in_oom(mountpoint / "g") as writer:
            result = fakecgfs("umount", str(mountpoint), timeout=10)
            assert result.returncode != 0 and "--lazy" in result.stderr
            start = time.monotonic()
            result = fakecgfs("umount", "--lazy", str(mountpoint), timeout=20)
            assert result.returncode == 0, result.stderr
            out, _ = writer.communicate(timeout=10)
            assert out.strip() != "rc=0"
            assert time.monotonic() - start < 10
        wait_until(lambda: process_gone(pid), timeout=10, what="the server to exit")
        assert not mounting.is_fakecgfs_mount(str(mountpoint))
        assert not mounting.is_stale(str(mountpoint))


def test_kill_9_with_a_charge_asleep_in_oom(tmp_path):
    """kill -9 of the server: the sleeping write fails at once (the kernel aborts the
    connection), the mount is dead (ENOTCONN), and `fakecgfs mount` mounts again there."""
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    log = str(tmp_path / "log")
    with background_mounts(mountpoint) as pids:
        mount_in_background(mountpoint, log, pids)
        with charge_asleep_in_oom(mountpoint / "g") as writer:
            kill_server(pids[0])
            out, _ = writer.communicate(timeout=10)
            assert out.strip() != "rc=0"
        wait_until(lambda: process_gone(pids[0]), what="the server to die")
        # (stat may still answer from the kernel's cache here; anything reaching the server
        # cannot)
        assert errno_of(lambda: os.listdir(mountpoint)) in (errno.ENOTCONN, errno.ECONNABORTED)
        assert errno_of(lambda: os.listdir(mountpoint)) == errno.ENOTCONN
        assert errno_of(lambda: read(mountpoint / "g" / "memory.stat")) == errno.ENOTCONN
        result = mount_in_background(mountpoint, log, pids)
        assert "cleared a dead mount" in result.stderr
        assert os.listdir(mountpoint).count("g") == 0 and "memory.stat" in os.listdir(mountpoint)
        assert fakecgfs("umount", str(mountpoint)).returncode == 0
        wait_until(lambda: process_gone(pids[1]), timeout=10, what="the server to exit")


def test_background_mount_refuses_a_non_empty_directory(tmp_path):
    mountpoint = tmp_path / "busy"
    mountpoint.mkdir()
    (mountpoint / "file").write_text("x")
    with background_mounts(mountpoint) as pids:
        result = fakecgfs("mount", str(mountpoint), "--log", str(tmp_path / "log"))
        if "server pid" in result.stdout:
            pids.append(server_pid_of(result))
        assert result.returncode != 0
        assert "not empty" in result.stderr
        assert not mounting.is_fakecgfs_mount(str(mountpoint))


def test_background_mount_refuses_a_mounted_directory(mnt, tmp_path):
    result = fakecgfs("mount", str(mnt.path), "--log", str(tmp_path / "log"))
    assert result.returncode != 0
    assert "already mounted" in result.stderr
    assert mnt.process.poll() is None


def test_background_mount_and_dead_mount_recovery(tmp_path):
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    log = str(tmp_path / "server.log")
    with background_mounts(mountpoint) as pids:
        mount_in_background(mountpoint, log, pids)
        first = pids[-1]
        assert mounting.is_fakecgfs_mount(str(mountpoint))
        os.mkdir(mountpoint / "g")
        assert read(mountpoint / "g" / "memory.swappiness") == "60\n"

        kill_server(first)
        wait_until(lambda: process_gone(first), what="the server to die")
        # the first request after the death was aborted with the connection; then ENOTCONN
        # (listing makes a request; a stat may be answered from the kernel's attribute cache)
        assert errno_of(lambda: os.listdir(mountpoint)) in (errno.ECONNABORTED, errno.ENOTCONN)
        assert errno_of(lambda: os.listdir(mountpoint)) == errno.ENOTCONN

        result = fakecgfs("mount", str(mountpoint), "--log", log)  # clears the dead mount
        assert result.returncode == 0, result.stderr
        second = server_pid_of(result)
        pids.append(second)
        assert second != first
        assert "cleared a dead mount" in result.stderr
        assert "memory.stat" in os.listdir(mountpoint)  # usable again
        assert "g" not in os.listdir(mountpoint)  # a fresh hierarchy

        result = fakecgfs("umount", str(mountpoint))
        assert result.returncode == 0, result.stderr
        wait_until(lambda: process_gone(second), timeout=10, what="the server to exit")
        assert not mounting.is_fakecgfs_mount(str(mountpoint))
        assert not mounting.is_stale(str(mountpoint))


def test_umount_clears_a_dead_mount(tmp_path):
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    with background_mounts(mountpoint) as pids:
        mount_in_background(mountpoint, str(tmp_path / "log"), pids)
        pid = pids[-1]
        kill_server(pid)
        wait_until(lambda: process_gone(pid), what="the server to die")
        result = fakecgfs("umount", str(mountpoint))  # its first look gets ECONNABORTED
        assert result.returncode == 0, result.stderr
        assert not mounting.is_stale(str(mountpoint))
        assert not mounting.is_fakecgfs_mount(str(mountpoint))
        assert os.listdir(mountpoint) == []


def test_umount_of_something_else_is_refused(tmp_path):
    result = fakecgfs("umount", str(tmp_path))
    assert result.returncode != 0
    assert "not a fakecgfs mount" in result.stderr


def test_umount_refuses_a_busy_mount_without_lazy(tmp_path):
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    with background_mounts(mountpoint) as pids:
        mount_in_background(mountpoint, str(tmp_path / "log"), pids)
        pid = pids[-1]
        fd = os.open(mountpoint / "memory.stat", os.O_RDONLY)
        try:
            result = fakecgfs("umount", str(mountpoint))
            assert result.returncode != 0
            assert mounting.is_fakecgfs_mount(str(mountpoint))
            result = fakecgfs("umount", "--lazy", str(mountpoint))
            assert result.returncode == 0, result.stderr
            wait_until(lambda: process_gone(pid), timeout=10, what="the server to exit")
            assert not mounting.is_fakecgfs_mount(str(mountpoint))
        finally:
            try:
                os.close(fd)
            except OSError:  # the file system is gone: its flush cannot be answered
                pass


def test_mount_right_after_a_server_death(tmp_path):
    """The first look at a dead mount is ECONNABORTED, not ENOTCONN: mount must still clear it."""
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    log = str(tmp_path / "log")
    with background_mounts(mountpoint) as pids:
        mount_in_background(mountpoint, log, pids)
        kill_server(pids[0])
        wait_until(lambda: process_gone(pids[0]), what="the server to die")
        mount_in_background(mountpoint, log, pids)
        assert "memory.stat" in os.listdir(mountpoint)
        assert fakecgfs("umount", str(mountpoint)).returncode == 0
        wait_until(lambda: process_gone(pids[1]), timeout=10, what="the server to exit")
