"""An unprivileged user (nobody, through setpriv) against modes and owners, as on cgroupfs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fakecgfs import mounting
from fakecgfs.cgroupfs.cftypes import CFTYPES, Where
from fakecgfs.testing.mount import _teardown

from .helpers import NOBODY, NOBODY_UID, UNLIMITED, read, sh, write

pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None or os.getuid() != 0,
                                reason="needs root and setpriv")  # fmt: skip

READABLE = [c.name for c in CFTYPES if c.mode & 0o444 and c.name != "memory.pressure_level"]
WRITABLE = [c.name for c in CFTYPES
            if c.mode & 0o200 and c.mode & 0o444 and c.where is not Where.ROOT]  # fmt: skip


def as_nobody(script: str, cwd) -> subprocess.CompletedProcess:
    return sh(script, cwd, user=NOBODY)


def test_nobody_reads_every_readable_file(group):
    names = [n for n in READABLE if (group / n).exists()]
    result = as_nobody(" && ".join(f"cat {n} >/dev/null" for n in names), group)
    assert result.returncode == 0, result.stderr
    result = as_nobody("cat memory.limit_in_bytes memory.swappiness", group)
    assert result.stdout == f"{UNLIMITED}\n60\n"


@pytest.mark.parametrize("name", WRITABLE)
def test_nobody_cannot_write_root_owned_files(group, name):
    before = read(group / name)
    result = as_nobody(f"echo 1 > {name}", group)
    assert result.returncode != 0
    assert "Permission denied" in result.stderr
    assert read(group / name) == before


def test_nobody_cannot_write_write_only_files(group):
    for name in ("fake.charge", "memory.force_empty", "cgroup.event_control"):
        result = as_nobody(f"echo 1M > {name}", group)
        assert "Permission denied" in result.stderr, name
    assert read(group / "memory.usage_in_bytes") == "0\n"


def test_nobody_cannot_mkdir_or_rmdir_in_a_root_owned_group(group):
    os.mkdir(group / "kid")
    result = as_nobody("mkdir x", group)
    assert result.returncode != 0 and "Permission denied" in result.stderr
    result = as_nobody("rmdir kid", group)
    assert result.returncode != 0 and "Permission denied" in result.stderr
    assert sorted(p.name for p in group.iterdir() if p.is_dir()) == ["kid"]


def test_a_delegated_group(group):
    """chown of the directory and its files hands the group to nobody, as delegation does."""
    os.chown(group, NOBODY_UID, NOBODY_UID)
    for name in os.listdir(group):
        os.chown(group / name, NOBODY_UID, NOBODY_UID)
    result = as_nobody(
        "set -e; echo 64M > memory.limit_in_bytes; cat memory.limit_in_bytes; "
        "echo '1M file' > fake.charge; cat memory.usage_in_bytes; mkdir sub; "
        "echo 32M > sub/memory.limit_in_bytes 2>&1 || echo refused; rmdir sub",
        group,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [str(64 << 20), str(1 << 20)]
    # the files of a group nobody created belong to nobody: it may write them
    assert lines[2:] == []
    st = os.stat(group)
    assert (st.st_uid, st.st_gid) == (NOBODY_UID, NOBODY_UID)


def test_a_group_made_by_nobody_belongs_to_nobody(group):
    os.chown(group, NOBODY_UID, NOBODY_UID)
    result = as_nobody("mkdir mine && stat -c '%u %g %a' mine mine/memory.limit_in_bytes", group)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{NOBODY_UID} {NOBODY_UID} 755",
                                          f"{NOBODY_UID} {NOBODY_UID} 644"]  # fmt: skip


def test_nobody_cannot_chmod_or_chown_root_files(group):
    result = as_nobody("chmod 666 memory.limit_in_bytes", group)
    assert result.returncode != 0
    assert oct(os.stat(group / "memory.limit_in_bytes").st_mode & 0o777) == "0o644"


def test_nobody_may_not_move_a_root_process(group):
    """Moving a process needs its owner (or root): nobody writing a root-owned pid is refused."""
    os.chown(group / "cgroup.procs", NOBODY_UID, NOBODY_UID)
    os.chown(group / "tasks", NOBODY_UID, NOBODY_UID)
    proc = subprocess.Popen(["sleep", "60"])
    try:
        # coreutils echo reports the errno (dash's builtin says "I/O error" for any failure)
        result = as_nobody(f"/bin/echo {proc.pid} > cgroup.procs", group)
        assert result.returncode != 0
        assert "Permission denied" in result.stderr  # EACCES, as __cgroup1_procs_write()
        assert read(group / "tasks") == ""
    finally:
        proc.kill()
        proc.wait()


def test_root_still_writes_after_chown(group):
    os.chown(group / "memory.limit_in_bytes", NOBODY_UID, NOBODY_UID)
    os.chmod(group / "memory.limit_in_bytes", 0o600)
    write(group / "memory.limit_in_bytes", "4M")
    assert read(group / "memory.limit_in_bytes") == f"{4 << 20}\n"


def test_nobody_moves_its_own_process_into_a_delegated_group(group):
    for path in (group, group / "cgroup.procs", group / "tasks"):
        os.chown(path, NOBODY_UID, NOBODY_UID)
    result = as_nobody("sleep 60 & pid=$!; /bin/echo $pid > cgroup.procs; st=$?; "
                       "cat tasks; echo $pid; kill $pid; exit $st", group)  # fmt: skip
    assert result.returncode == 0, result.stderr
    tasks, pid = result.stdout.split()
    assert tasks == pid


# -- who may see the mount at all (issue 5) -------------------------------------------------------


def _mount_options(path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == str(path):
                sep = fields.index("-")
                return fields[5].split(",") + fields[sep + 3].split(",")
    raise AssertionError(f"{path} is not mounted")


def test_a_root_mount_is_visible_to_every_user(shared, group):
    """As cgroupfs: allow_other with default_permissions, so modes decide, not the mounter."""
    options = _mount_options(shared.path)
    assert "allow_other" in options and "default_permissions" in options
    result = as_nobody(f"ls {shared.path} >/dev/null && stat -c %a {group.name} && "
                       "cat memory.usage_in_bytes fake.daemons >/dev/null",
                       shared.path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "755\n"


def test_a_mount_without_allow_other_is_private(tmp_path):
    """What a normal user's mount is unless --allow-other: other users (here nobody) cannot even
    look inside; the owner can.  (Made as root through the server's own option, since a normal
    user cannot mount here: /dev/fuse is 0600.)"""
    directory = tempfile.mkdtemp(prefix="fakecgfs-private-")
    os.chmod(directory, 0o755)
    mountpoint = Path(directory) / "mnt"
    mountpoint.mkdir()
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from fakecgfs.cgroupfs.server import MountOptions, "
         "serve; serve(sys.argv[1], MountOptions(allow_other=False))", str(mountpoint)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert mounting.wait_until(lambda: mounting.is_fakecgfs_mount(str(mountpoint)), 15)
        assert "allow_other" not in _mount_options(mountpoint)
        os.mkdir(mountpoint / "g")
        os.chmod(mountpoint / "g" / "memory.limit_in_bytes", 0o666)  # the modes do not matter
        for script in ("ls mnt", "cat mnt/g/memory.usage_in_bytes", "stat mnt/g",
                       "echo 1M > mnt/g/memory.limit_in_bytes"):  # fmt: skip
            result = as_nobody(script, mountpoint.parent)
            assert result.returncode != 0 and "Permission denied" in result.stderr, script
        assert read(mountpoint / "g" / "memory.limit_in_bytes") == f"{UNLIMITED}\n"
    finally:
        _teardown(mountpoint, server)
        if not mounting.is_fakecgfs_mount(str(mountpoint)):
            shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("uid, option, shared_with_all", [
    (0, None, True),  # root: as cgroupfs
    (1000, None, False),  # a normal user: private...
    (1000, True, True),  # ...unless --allow-other
    (0, True, True),
])  # fmt: skip
def test_who_gets_allow_other(monkeypatch, tmp_path, uid, option, shared_with_all):
    """The decision itself (server.fuse_options), for the mounts this machine cannot make."""
    from fakecgfs.cgroupfs import server as server_module

    monkeypatch.setattr(server_module.os, "getuid", lambda: uid)
    seen = server_module.fuse_options(server_module.MountOptions(allow_other=option))
    assert seen.get("allow_other", False) is shared_with_all
    # The kernel checks modes for root's mounts; the server for a user's (its mounter is superuser).
    assert seen["default_permissions"] is (uid == 0)


def test_setting_release_agent_needs_cap_sys_admin(shared):
    """cgroup_release_agent_write(): EPERM without CAP_SYS_ADMIN, whatever the mode and owner
    (the agent would run with every capability): root without it, and a user it was chowned
    to, are refused; root with it is not."""
    agent = shared.path / "release_agent"
    without = ["setpriv", "--bounding-set=-sys_admin"]
    try:
        result = sh(f"/bin/echo /bin/true > {agent}", shared.path, user=without)
        assert result.returncode != 0 and "Operation not permitted" in result.stderr
        os.chown(agent, NOBODY_UID, NOBODY_UID)
        result = as_nobody(f"/bin/echo /bin/true > {agent}", shared.path)
        assert result.returncode != 0 and "Operation not permitted" in result.stderr
        assert read(agent) == "\n"
        write(agent, "/bin/true")
        assert read(agent) == "/bin/true\n"
    finally:
        os.chown(agent, 0, 0)
        write(agent, "\n")
