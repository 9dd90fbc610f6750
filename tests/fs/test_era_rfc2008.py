"""A mount of the RFC era (``--era rfc-2008``): 2.6.26's files and formats, the RFC's trap and
thread, through the filesystem.  Expected values come from 2.6.26 and the patch, not from the
code under test."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fakecgfs import mounting
from fakecgfs.testing import fuse_unavailable_reason, mounted

from .helpers import MiB, read, write

LLONG_MAX = 9223372036854775807

# mem_cgroup_files[] of 2.6.26 + the RFC's two files, cgroup core's files of 2.6.26
# (release_agent at the root only), and the fake.* files.
KERNEL_FILES = {
    "memory.usage_in_bytes",
    "memory.max_usage_in_bytes",
    "memory.limit_in_bytes",
    "memory.failcnt",
    "memory.force_empty",
    "memory.stat",
    "memory.high_wmark_in_bytes",
    "memory.low_wmark_in_bytes",
    "tasks",
    "notify_on_release",
}
FAKE_FILES = {"fake.charge", "fake.uncharge", "fake.touch", "fake.reclaim_daemon"}


@pytest.fixture(scope="module")
def rfc():
    """One RFC-era mount for the module, in a 0755 directory so that nobody can reach it."""
    reason = fuse_unavailable_reason()
    if reason:
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="fakecgfs-rfc-"))
    os.chmod(directory, 0o755)
    try:
        with mounted(directory, "--era", "rfc-2008") as mount:
            yield mount
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def group(rfc, request):
    path = rfc.path / request.node.name.replace("[", "-").replace("]", "")[:60]
    path.mkdir()
    yield path
    if path.exists():
        os.rmdir(path)


def test_file_set_of_2_6_26_with_the_rfc(rfc, group):
    assert set(os.listdir(rfc.path)) - {group.name} == \
        KERNEL_FILES | FAKE_FILES | {"release_agent", "fake.daemons"}  # fmt: skip
    assert set(os.listdir(group)) == KERNEL_FILES | FAKE_FILES
    for name in KERNEL_FILES:  # 2.6.26 cgroupfs makes every control file 0644
        assert stat.S_IMODE(os.stat(group / name).st_mode) == 0o644, name


def test_formats_of_a_fresh_group(group):
    for name in ("memory.limit_in_bytes", "memory.high_wmark_in_bytes",
                 "memory.low_wmark_in_bytes"):  # fmt: skip
        assert read(group / name) == f"{LLONG_MAX}\n"
    assert read(group / "memory.usage_in_bytes") == "0\n"
    assert read(group / "memory.stat") == \
        "cache 0\nrss 0\npgpgin 0\npgpgout 0\nactive 0\ninactive 0\n"  # fmt: skip


def test_read_only_and_write_only_files_answer_einval(group):
    with pytest.raises(OSError) as e:
        write(group / "memory.usage_in_bytes", "0")
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        read(group / "memory.force_empty")
    assert e.value.errno == errno.EINVAL


def test_the_trap_through_sh(group):
    """`echo 64M > memory.limit_in_bytes` on a fresh group fails: hwmark is LLONG_MAX."""
    limit = group / "memory.limit_in_bytes"
    done = subprocess.run(["sh", "-c", f"echo 64M > {limit}"], capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    assert done.returncode != 0 and read(limit) == f"{LLONG_MAX}\n"
    # dash's echo says only "I/O error"; bash names the errno.
    done = subprocess.run(["bash", "-c", f"echo 64M > {limit}"], capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    assert done.returncode != 0 and os.strerror(errno.EINVAL) in done.stderr
    script = (
        f"cd {group} && echo 32M > memory.low_wmark_in_bytes && "
        "echo 48M > memory.high_wmark_in_bytes && echo 64M > memory.limit_in_bytes"
    )
    subprocess.run(["sh", "-c", script], check=True, timeout=30)
    assert read(limit) == f"{64 * MiB}\n"
    assert read(group / "memory.high_wmark_in_bytes") == f"{48 * MiB}\n"


def test_parsing_is_2_6_26s(group):
    write(group / "memory.low_wmark_in_bytes", "1\n")  # rounded up
    assert read(group / "memory.low_wmark_in_bytes") == "4096\n"
    for junk in (" 4M", "-1", "4MB", "1T"):
        with pytest.raises(OSError) as e:
            write(group / "memory.low_wmark_in_bytes", junk)
        assert e.value.errno == errno.EINVAL, junk


def test_a_rejected_high_wmark_write_starts_memcontd(rfc, group):
    with pytest.raises(OSError) as e:
        write(group / "memory.high_wmark_in_bytes", "48M")  # below lwmark LLONG_MAX
    assert e.value.errno == errno.EINVAL
    reclaim_tasks = read(rfc.path / "fake.daemons").splitlines()
    assert f"/{group.name}" in reclaim_tasks[1:]
    reclaim_task = rfc.daemon(group)
    assert (reclaim_task["name"], reclaim_task["nice"]) == ("memcontd", 0)
    assert reclaim_task["high_wmark"] == LLONG_MAX
    os.rmdir(group)  # pre_destroy stops it
    assert f"/{group.name}" not in read(rfc.path / "fake.daemons").splitlines()[1:]


def test_the_spin_is_visible_in_fake_reclaim_daemon(rfc, group):
    write(group / "fake.charge", "12M anon")  # no swap: nothing reclaimable
    write(group / "memory.low_wmark_in_bytes", "8M")
    write(group / "memory.high_wmark_in_bytes", "16M")
    assert mounting.wait_until(lambda: int(rfc.daemon(group)["passes"]) >= 20, 30)
    reclaim_task = rfc.daemon(group)
    assert reclaim_task["state"] == "running" and int(reclaim_task["time_running_ns"]) > 0
    assert reclaim_task["passes"] == reclaim_task["no_progress_passes"]
    assert reclaim_task["res_state"] == "RES_BELOW_HIGH"


def test_the_stop_interface_does_not_exist(group):
    with pytest.raises(OSError) as e:
        write(group / "fake.reclaim_daemon", "stop")
    assert e.value.errno == errno.EINVAL


def test_top_shows_the_rfc_mount(rfc, group):
    write(group / "memory.low_wmark_in_bytes", "8M")
    with pytest.raises(OSError):
        write(group / "memory.high_wmark_in_bytes", "4M")  # below lwmark: EINVAL, thread runs
    done = subprocess.run(["fakecgfs", "top", "--once", "--width", "120", str(rfc.path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert group.name in done.stdout and "sleeping" in done.stdout


def test_mount_command_takes_the_era(tmp_path):
    """`fakecgfs mount --era rfc-2008` in the background, `status` on it, then umount."""
    if fuse_unavailable_reason():
        pytest.skip(fuse_unavailable_reason())
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    done = subprocess.run(["fakecgfs", "mount", "--era", "rfc-2008", str(mountpoint),
                           "--log", str(tmp_path / "log")], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    try:
        assert done.returncode == 0, done.stderr
        os.mkdir(mountpoint / "g")
        assert read(mountpoint / "g" / "memory.limit_in_bytes") == f"{LLONG_MAX}\n"
        status = subprocess.run(["fakecgfs", "status", str(mountpoint)], capture_output=True,
                                text=True, timeout=60)  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert "/g" in status.stdout and "stopped" in status.stdout
    finally:
        subprocess.run(["fakecgfs", "umount", "--lazy", str(mountpoint)], timeout=60)
        assert mounting.wait_until(lambda: not mounting.is_fakecgfs_mount(str(mountpoint)), 15)


def test_an_unknown_era_is_refused(tmp_path):
    done = subprocess.run(["fakecgfs", "mount", "--era", "2.6.29", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_tasks_of_2_6_26(rfc, group):
    """sscanf("%d"): EIO without a number; ESRCH for no such task; a non-owner is EACCES."""
    for text, code in (("abc", errno.EIO), ("-1", errno.ESRCH), ("4194305", errno.ESRCH)):
        with pytest.raises(OSError) as e:
            write(group / "tasks", text)
        assert e.value.errno == code, text
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               "sh", "-c", f"echo {sleeper.pid} > {group}/tasks"],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        assert done.returncode != 0  # mode 0644, root's file: nobody may not even open it
        os.chown(group / "tasks", 65534, 65534)  # delegated: now nobody may write, not move root's
        attempt = (
            "import errno, os\n"
            f"fd = os.open({str(group / 'tasks')!r}, os.O_WRONLY)\n"
            f"try: os.write(fd, b'{sleeper.pid}')\n"
            "except OSError as e: print(errno.errorcode[e.errno])\n"
        )
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               sys.executable, "-c", attempt], capture_output=True, text=True,
                              timeout=30)  # fmt: skip
        assert done.stdout.strip() == "EACCES", done.stderr
        write(group / "tasks", f"{sleeper.pid}\n")
        assert read(group / "tasks") == f"{sleeper.pid}\n"
        with pytest.raises(OSError) as e:
            os.rmdir(group)
        assert e.value.errno == errno.EBUSY
    finally:
        sleeper.kill()
        sleeper.wait()
    assert mounting.wait_until(lambda: read(group / "tasks") == "", 10)
