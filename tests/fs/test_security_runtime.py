"""Issue 13, as an attacker would try it: a normal user (nobody, through setpriv) plants symlinks
and pid files where the server's runtime files were or are, root mounts and unmounts; servers
that do not answer; a second mount; a trace on a full disk; bad output paths; status on dead
mounts and deep trees.  Every test asserts that nothing outside was touched and that no process
but the test's own server was signalled.  See docs/security.md."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from fakecgfs import linux, mounting, runtime
from fakecgfs.testing import fuse_unavailable_reason

from .helpers import NOBODY, kv_lines, read, wait_until, write

pytestmark = [
    pytest.mark.skipif(fuse_unavailable_reason() is not None,
                       reason=str(fuse_unavailable_reason())),
    pytest.mark.skipif(shutil.which("setpriv") is None or os.getuid() != 0,
                       reason="needs root and setpriv"),
]  # fmt: skip

PRECIOUS = "a file of the test's own that nothing may change\n"


def fakecgfs(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fakecgfs", *args], capture_output=True,
                          text=True, timeout=timeout, **kwargs)  # fmt: skip


def as_nobody(script: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*NOBODY, "sh", "-c", script], capture_output=True, text=True,
                          timeout=30, **kwargs)  # fmt: skip


def server_pid_of(result: subprocess.CompletedProcess) -> int:
    match = re.search(r"server pid (\d+)", result.stdout + result.stderr)
    assert match, (result.stdout, result.stderr)
    return int(match.group(1))


def alive(pidfd: int) -> bool:
    """The pidfd's process has not exited (its pidfd is not readable)."""
    return not select.select([pidfd], [], [], 0)[0]


@contextmanager
def victim():
    """A process of the test's own that nothing may signal: a sleep, with a pidfd."""
    process = subprocess.Popen(["sleep", "600"])
    pidfd = linux.pidfd_open(process.pid)
    try:
        yield process
        assert process.poll() is None, "the victim was signalled"
    finally:
        process.kill()
        process.wait()
        os.close(pidfd)


@contextmanager
def background_mount(mountpoint: Path, *options: str):
    """`fakecgfs mount` there; yields (the result, a pidfd of its server); on the way out the
    server is killed through the pidfd if still alive and the mount detached."""
    result = fakecgfs("mount", str(mountpoint), *options)
    assert result.returncode == 0, result.stderr
    pidfd = linux.pidfd_open(server_pid_of(result))
    try:
        yield result, pidfd
    finally:
        if alive(pidfd):
            linux.pidfd_send_signal(pidfd, signal.SIGCONT)
            linux.pidfd_send_signal(pidfd, signal.SIGKILL)
            select.select([pidfd], [], [], 10)
        os.close(pidfd)
        if mounting.find_mount(str(mountpoint)) is not None:
            mounting.unmount(str(mountpoint), lazy=True)
        with runtime.RuntimeDir() as rundir:  # a killed server leaves them
            for suffix in (".pid", ".lock"):
                rundir.unlink(runtime.mount_key(str(mountpoint)) + suffix)


@pytest.fixture
def world(tmp_path):
    """A 0755 directory of the test (nobody can reach it), with a file nothing may change and
    a mount point."""
    base = Path(tempfile.mkdtemp(prefix="fakecgfs-secrt-"))
    os.chmod(base, 0o755)
    (base / "precious").write_text(PRECIOUS)
    (base / "mnt").mkdir()
    yield base
    if mounting.find_mount(str(base / "mnt")) is None:
        shutil.rmtree(base, ignore_errors=True)


def old_runtime_path(mountpoint: Path, suffix: str) -> str:
    """Where fakecgfs before issue 13 put root's pid and log files."""
    digest = hashlib.sha1(os.path.realpath(mountpoint).encode()).hexdigest()[:10]
    return os.path.join(tempfile.gettempdir(), f"fakecgfs-0-{digest}{suffix}")


# -- 1, 2: planted symlinks and pid files -------------------------------------------------


def test_planted_runtime_files_are_neither_followed_nor_trusted(world):
    """nobody plants a symlink to a file at the old log path and a pid file naming a victim at
    the old pid path, and cannot plant anything where the files are now; root mounts and
    unmounts (--lazy, busy, as the EBUSY message recommends): the file is unchanged, the victim
    alive, and only the real server was stopped."""
    mountpoint = world / "mnt"
    old_log, old_pid = old_runtime_path(mountpoint, ".log"), old_runtime_path(mountpoint, ".pid")
    key = runtime.mount_key(str(mountpoint))
    with victim() as sleeper:
        planted = as_nobody(f"ln -s {world}/precious {old_log} && echo {sleeper.pid} > {old_pid}")
        assert planted.returncode == 0, planted.stderr
        try:
            for suffix in (".log", ".pid", ".lock"):
                refused = as_nobody(f"ln -s {world}/precious /run/fakecgfs/{key}{suffix}")
                assert refused.returncode != 0
            with background_mount(mountpoint) as (result, server):
                assert runtime.ROOT_RUNTIME_DIR in result.stdout  # the log's path
                fd = os.open(mountpoint / "memory.stat", os.O_RDONLY)
                try:
                    umount = fakecgfs("umount", "--lazy", str(mountpoint))
                    assert umount.returncode == 0, umount.stderr
                    assert select.select([server], [], [], 20)[0], "the server did not exit"
                finally:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            assert (world / "precious").read_text() == PRECIOUS
            assert os.path.islink(old_log) and Path(old_pid).read_text() == f"{sleeper.pid}\n"
        finally:
            for path in (old_log, old_pid):
                if os.path.lexists(path):
                    os.unlink(path)


def test_umount_never_signals_a_process_it_cannot_prove(world):
    """Even a pid file in the private directory naming another process (a victim of the
    test's, as root, and then the server's own PID with another start time) makes umount
    --lazy detach the mount and signal nothing."""
    mountpoint = world / "mnt"
    name = runtime.mount_key(str(mountpoint)) + ".pid"
    with victim() as sleeper, background_mount(mountpoint) as (result, server):
        real_pid = server_pid_of(result)
        for forged in (f"{sleeper.pid} {runtime._start_time(sleeper.pid)}",
                       f"{real_pid} 1"):  # fmt: skip
            with runtime.RuntimeDir() as rundir:
                fd = rundir.open(name, os.O_WRONLY | os.O_TRUNC)
                os.write(fd, f"{forged}\n{mountpoint}\n".encode())
                os.close(fd)
            found, why = runtime.find_server(str(mountpoint))
            assert found is None and why
        fd = os.open(mountpoint / "memory.stat", os.O_RDONLY)
        try:
            umount = fakecgfs("umount", "--lazy", str(mountpoint))
            assert umount.returncode == 0, umount.stderr
            assert "signalling nothing" in umount.stderr
            assert mounting.find_mount(str(mountpoint)) is None
            assert alive(server)  # not signalled: it serves the open file until it is closed
            assert os.read(fd, 4096).startswith(b"cache ")
        finally:
            os.close(fd)
        # the last reference gone, the kernel ends the connection and the server exits
        assert select.select([server], [], [], 20)[0], "the server did not exit"


def test_the_proof_accepts_the_real_server(world):
    mountpoint = world / "mnt"
    with background_mount(mountpoint) as (result, _):
        found, why = runtime.find_server(str(mountpoint))
        assert found is not None, why
        try:
            assert found.pid == server_pid_of(result)
        finally:
            found.close()
        assert fakecgfs("umount", str(mountpoint)).returncode == 0


# -- the runtime directory --------------------------------------------------------------------


@pytest.fixture
def sticky(tmp_path):
    """A world-writable sticky directory of the test's, as /tmp is."""
    base = Path(tempfile.mkdtemp(prefix="fakecgfs-secrt-sticky-"))
    os.chmod(base, 0o1777)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_the_runtime_directory_is_created_private(sticky):
    with runtime.RuntimeDir(str(sticky / "fakecgfs-0")) as rundir:
        st = os.lstat(rundir.path)
        assert st.st_uid == 0 and (st.st_mode & 0o7777) == 0o700


@pytest.mark.parametrize("plant", [
    "ln -s {world} {dir}",  # a symlink to a directory of the test's
    "mkdir {dir}",  # the attacker's own directory
    "mkdir -m 0777 {dir}",
], ids=["symlink", "owned-by-the-attacker", "world-writable"])  # fmt: skip
def test_a_planted_runtime_directory_is_refused(sticky, world, plant):
    target = sticky / "fakecgfs-0"
    assert as_nobody(plant.format(world=world, dir=target)).returncode == 0
    with pytest.raises(runtime.RuntimeFileError) as refused:
        runtime.RuntimeDir(str(target))
    assert "refusing it" in str(refused.value) and "\n" not in str(refused.value)
    assert sorted(os.listdir(world)) == ["mnt", "precious"]


def test_a_runtime_directory_of_ours_with_open_modes_is_refused(sticky):
    (sticky / "fakecgfs-0").mkdir(mode=0o755)
    os.chmod(sticky / "fakecgfs-0", 0o755)
    with pytest.raises(runtime.RuntimeFileError):
        runtime.RuntimeDir(str(sticky / "fakecgfs-0"))


def test_where_a_normal_user_keeps_runtime_files(sticky):
    """$XDG_RUNTIME_DIR/fakecgfs when it is the user's and private; else $TMPDIR/fakecgfs-UID,
    never a file directly in the shared directory."""
    show = [*NOBODY, sys.executable, "-c",
            "from fakecgfs import runtime; print(runtime.runtime_dir_path())"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["TMPDIR"] = str(sticky)
    out = subprocess.run(show, env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{sticky}/fakecgfs-65534"
    xdg = sticky / "xdg"
    assert as_nobody(f"mkdir -m 0700 {xdg}").returncode == 0
    out = subprocess.run(show, env=dict(env, XDG_RUNTIME_DIR=str(xdg)), capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.strip() == f"{xdg}/fakecgfs"
    os.chown(xdg, 0, 0)  # not the user's: not trusted
    out = subprocess.run(show, env=dict(env, XDG_RUNTIME_DIR=str(xdg)), capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.strip() == f"{sticky}/fakecgfs-65534"


# -- 9: servers that do not answer ----------------------------------------------------------


def test_umount_of_a_stopped_server_does_not_hang(mnt):
    """SIGSTOP the server: umount (the probe, fusermount and the wait are bounded) unmounts,
    says the server does not run, and signals nothing; continued, the server exits."""
    mnt.process.send_signal(signal.SIGSTOP)
    try:
        result = fakecgfs("umount", str(mnt.path), timeout=60)
        assert result.returncode == 0, result.stderr
        assert "stopped?" in result.stderr
        assert mounting.find_mount(str(mnt.path)) is None
    finally:
        mnt.process.send_signal(signal.SIGCONT)
    assert mnt.process.wait(timeout=20) == 0


def test_umount_lazy_of_a_stopped_busy_server_does_not_hang(mnt):
    """Stopped and busy (a file open in it): umount refuses without --lazy, and with it
    detaches the mount after a bounded wait; the SIGTERM it sent the proven server ends it
    once continued.  (The file is held by a process of its own: any process that closes a
    file of a stopped server's mount waits for the server, a forked child included.)"""
    holder = subprocess.Popen(["sh", "-c", "exec 3<memory.stat; echo open; exec sleep 600"],
                              cwd=mnt.path, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline() == "open\n"
        mnt.process.send_signal(signal.SIGSTOP)
        try:
            result = fakecgfs("umount", str(mnt.path), timeout=60)
            assert result.returncode != 0 and "--lazy" in result.stderr
            result = fakecgfs("umount", "--lazy", str(mnt.path), timeout=60)
            assert result.returncode == 0, result.stderr
            assert "detaching the mount lazily" in result.stderr
            assert mounting.find_mount(str(mnt.path)) is None
        finally:
            mnt.process.send_signal(signal.SIGCONT)
        assert mnt.process.wait(timeout=20) == 0
    finally:
        holder.kill()
        holder.wait()


def test_status_of_a_dead_or_missing_mount_fails(world):
    mountpoint = world / "mnt"
    with background_mount(mountpoint) as (_, server):
        linux.pidfd_send_signal(server, signal.SIGKILL)
        assert select.select([server], [], [], 10)[0]
        result = fakecgfs("status", str(mountpoint))
        assert result.returncode != 0 and "dead" in result.stderr
    result = fakecgfs("status", str(world / "missing"))
    assert result.returncode != 0 and "no such directory" in result.stderr


# -- 9: a second mount -------------------------------------------------------------------------


def test_a_second_server_of_a_mount_point_fails_touching_nothing(world):
    """The lock decides, whoever looked first: a second server fails before mounting, and the
    first one's pid file and mount stay."""
    mountpoint = world / "mnt"
    with background_mount(mountpoint) as (result, server):
        pid = server_pid_of(result)
        with pytest.raises(runtime.MountPointBusy):
            runtime.ServerClaim(str(mountpoint))
        assert runtime.read_pid_file(str(mountpoint))[0] == pid
        second = fakecgfs("mount", str(mountpoint))
        assert second.returncode != 0 and "already mounted" in second.stderr
        assert runtime.read_pid_file(str(mountpoint))[0] == pid
        assert read(mountpoint / "memory.swappiness") == "60\n"
        assert fakecgfs("umount", str(mountpoint)).returncode == 0
        assert select.select([server], [], [], 20)[0]


def test_two_mounts_at_once_one_wins(world):
    mountpoint = world / "mnt"
    racers = [subprocess.Popen([sys.executable, "-m", "fakecgfs", "mount", str(mountpoint)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]  # fmt: skip
    results = [(*r.communicate(timeout=60), r.returncode) for r in racers]
    winners = [out for out, _, rc in results if rc == 0]
    try:
        assert len(winners) == 1, results
        (loser,) = [err for _, err, rc in results if rc != 0]
        assert "already mounted" in loser or "another fakecgfs server" in loser, loser
        pid = int(re.search(r"server pid (\d+)", winners[0]).group(1))
        assert runtime.read_pid_file(str(mountpoint))[0] == pid
        assert read(mountpoint / "memory.swappiness") == "60\n"
    finally:
        result = fakecgfs("umount", "--lazy", str(mountpoint))
        assert result.returncode == 0, result.stderr


# -- 9: a full disk, bad paths --------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path):
    """A tmpfs of 16 KiB of the test's own, unmounted afterwards."""
    directory = tmp_path / "small"
    directory.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k,mode=0700", "tmpfs", str(directory)],
                   check=True)  # fmt: skip
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def test_the_trace_on_a_full_disk_stops_and_says_so(mount_factory, full_disk):
    trace = full_disk / "trace.jsonl"
    mount = mount_factory("--trace", str(trace), "--trace-interval", "0.01")
    for i in range(400):  # each mkdir, limit and charge writes events: far more than 16 KiB
        group = mount.path / f"g{i}"
        os.mkdir(group)
        write(group / "memory.limit_in_bytes", "64M")
        write(group / "fake.charge", "1M")
        if "stopped: trace" in read(mount.path / "fake.daemons"):
            break
    reclaim_tasks = read(mount.path / "fake.daemons")
    assert f"stopped: trace {trace}: ENOSPC" in reclaim_tasks, reclaim_tasks
    assert mount.process.poll() is None
    os.mkdir(mount.path / "after")  # the server goes on
    write(mount.path / "after" / "memory.limit_in_bytes", "8M")
    assert read(mount.path / "after" / "memory.limit_in_bytes") == f"{8 << 20}\n"
    log = mount.log.read_text()
    assert log.count("tracing stopped") == 1 and "Traceback" not in log


@pytest.mark.parametrize("option", ["--trace", "--log"])
@pytest.mark.parametrize("foreground", [False, True], ids=["background", "foreground"])
def test_bad_output_paths_are_one_line_errors_before_mounting(world, option, foreground):
    mountpoint = world / "mnt"
    os.symlink(world / "precious", world / "planted")
    for bad in (world / "no-such-dir" / "file", world / "planted"):
        args = ["mount", str(mountpoint), option, str(bad)] + (["-f"] if foreground else [])
        result = fakecgfs(*args)
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1 and option in result.stderr
        assert mounting.find_mount(str(mountpoint)) is None
    assert (world / "precious").read_text() == PRECIOUS


# -- 9: EINTR on unmount ------------------------------------------------------------------


def test_a_write_asleep_in_oom_gets_eintr_on_umount(world):
    """The write's own system call fails with EINTR (docs promise it); a caller that retries
    on EINTR (sh's echo, Python's os.write) then meets the unmounted file system."""
    mountpoint = world / "mnt"
    writer_code = (
        "import ctypes, os, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY)\n"
        "print(libc.write(fd, b'8M anon', 7), ctypes.get_errno(), flush=True)\n"
    )  # a raw write(2): no retry on EINTR
    with background_mount(mountpoint) as (_, server):
        group = mountpoint / "g"
        os.mkdir(group)
        write(group / "memory.limit_in_bytes", "4M")
        write(group / "memory.oom_control", "1")
        writer = subprocess.Popen([sys.executable, "-c", writer_code, str(group / "fake.charge")],
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            wait_until(lambda: kv_lines(group / "memory.oom_control")["under_oom"] == "1",
                       what="the charge to sleep in OOM")  # fmt: skip
            result = fakecgfs("umount", "--lazy", str(mountpoint))
            assert result.returncode == 0, result.stderr
            out, _ = writer.communicate(timeout=20)
            assert out.split() == ["-1", str(errno.EINTR)]
            assert select.select([server], [], [], 20)[0]
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()


# -- 8: status walks any depth -----------------------------------------------------------


@pytest.mark.timeout(240)
def test_status_walks_a_tree_deeper_than_recursion_and_path_max(mount_factory):
    """1,500 nested groups: deeper than Python's recursion limit, and their paths longer than
    PATH_MAX."""
    mount = mount_factory()
    depth = 1500
    fd = os.open(mount.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("ddd", dir_fd=fd)
            child = os.open("ddd", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        charge = os.open("fake.charge", os.O_WRONLY, dir_fd=fd)
        os.write(charge, b"1M")
        os.close(charge)
    finally:
        os.close(fd)
    result = fakecgfs("status", str(mount.path), timeout=200)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = result.stdout.splitlines()[1:]
    assert len(rows) == depth + 1
    deepest = rows[-1].split()
    assert deepest[0] == "/ddd" * depth and deepest[1] == "1.0M"
    assert len(deepest[0]) > os.pathconf("/", "PC_PATH_MAX")


RAW_WRITER = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "fd = os.open(sys.argv[1], os.O_WRONLY)\n"
    "print(libc.write(fd, b'8M anon', 7), ctypes.get_errno(), flush=True)\n"
)  # a raw write(2): no retry on EINTR


@pytest.mark.skipif(shutil.which("unshare") is None, reason="no unshare")
def test_umount_lazy_aborts_the_connection_of_a_stopped_server(mnt):
    """A write asleep in OOM on a stopped server: umount --lazy, as root where fusectl is
    mounted, detaches the mount and aborts its connection, and the write fails at once.
    fusectl is mounted in a private mount namespace of the test's, never on the host; the
    writer runs there too, so that the namespace's copy of the mount is the busy one."""
    group = mnt.path / "g"
    os.mkdir(group)
    write(group / "memory.limit_in_bytes", "4M")
    write(group / "memory.oom_control", "1")
    script = f"""
        mount -t fusectl none /sys/fs/fuse/connections || exit 9
        "$0" -c "$1" {group}/fake.charge > {mnt.path.parent}/writer.out &
        tries=0
        until grep -q 'under_oom 1' {group}/memory.oom_control; do
            tries=$((tries + 1)); [ "$tries" -lt 400 ] || exit 8; sleep 0.05
        done
        echo ready
        read -r _
        "$0" -m fakecgfs umount --lazy {mnt.path}
        wait
    """
    namespace = subprocess.Popen(["unshare", "-m", "sh", "-c", script, sys.executable,
                                  RAW_WRITER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert namespace.stdout.readline() == "ready\n"
        mnt.process.send_signal(signal.SIGSTOP)
        try:
            _, err = namespace.communicate("go\n", timeout=60)
            assert namespace.returncode == 0, err
            assert "signalling nothing" in err  # the pid file is keyed by mount namespace
            assert "aborted its FUSE connection" in err
            out = (mnt.path.parent / "writer.out").read_text()
            assert out.split() == ["-1", str(errno.ECONNABORTED)]
        finally:
            mnt.process.send_signal(signal.SIGCONT)
        assert mnt.process.wait(timeout=20) == 0  # its connection gone, it exits
    finally:
        if namespace.poll() is None:
            namespace.kill()
            namespace.wait()
