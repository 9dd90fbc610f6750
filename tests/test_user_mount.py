"""A normal user's own mount (issue 15): fully usable by its mounter, modes for others with
--allow-other, one line of reason when it fails, and skips where FUSE cannot be used.  Run as
uid 65534 (and 65533) through setpriv, in mount namespaces the tests make."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

from fakecgfs.testing import fuse_unavailable_reason
from users import in_fuse_namespace, user_python

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None
                       or shutil.which("unshare") is None,
                       reason="needs root, setpriv and unshare to act as a user"),
    pytest.mark.skipif(fuse_unavailable_reason() is not None,
                       reason=f"FUSE unavailable: {fuse_unavailable_reason()}"),
]  # fmt: skip


@pytest.fixture
def shared() -> Path:
    """A directory the users may enter, with a mount point owned by uid 65534."""
    directory = Path(tempfile.mkdtemp(prefix="fakecgfs-user-mount-"))
    directory.chmod(0o755)
    (directory / "m").mkdir()
    os.chown(directory / "m", 65534, 65534)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def user_env() -> dict[str, str]:
    python, env = user_python()
    return dict(env, FAKECGFS=f"{python} -m fakecgfs", PY=python)


def run(script: str, **kwargs):
    return in_fuse_namespace(textwrap.dedent(script), env=user_env(), **kwargs)


def test_a_users_mount_is_fully_usable_by_that_user(shared):
    result = run(f"""
        set -e
        $AS_USER $FAKECGFS mount {shared}/m >/dev/null
        $AS_USER stat -c '%A %u' {shared}/m     # the kernel's mode; only its user sees it
        $AS_USER sh -c '
            set -e
            cd {shared}/m
            mkdir x x/y
            echo 64M > x/memory.limit_in_bytes
            cat x/memory.limit_in_bytes
            echo $$ > x/y/tasks
            cat x/y/tasks
            echo $$ > tasks
            rmdir x/y x
            test ! -e x && echo removed'
        $AS_USER $FAKECGFS umount {shared}/m
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[:3] == ["dr-xr-xr-x", "65534", str(64 << 20)]
    assert lines[3].isdigit() and lines[4] == "removed"


def test_allow_other_applies_the_modes_to_others(shared):
    result = run(
        f"""
        $AS_USER $FAKECGFS mount {shared}/m --allow-other >/dev/null || exit 1
        cd {shared}/m
        $AS_OTHER cat memory.limit_in_bytes >/dev/null && echo other-reads
        $AS_OTHER test -r memory.stat && echo other-may-read   # access(2): the server's access()
        $AS_OTHER test -w . || echo other-may-not-write
        $AS_OTHER mkdir y 2>/dev/null || echo other-cannot-mkdir
        $AS_OTHER sh -c 'echo 1 > memory.swappiness' 2>/dev/null || echo other-cannot-write
        $AS_USER mkdir g && $AS_USER chown -R 65533:65533 g && echo delegated
        $AS_OTHER sh -c 'mkdir g/sub && echo 4M > g/sub/memory.limit_in_bytes && rmdir g/sub' \\
            && echo other-uses-its-group
        $AS_OTHER chmod 777 . 2>/dev/null || echo other-cannot-chmod
        $AS_USER rmdir g
        cd /
        $AS_USER $FAKECGFS umount {shared}/m
    """,
        fuse_conf="user_allow_other\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "other-reads", "other-may-read", "other-may-not-write", "other-cannot-mkdir",
        "other-cannot-write", "delegated", "other-uses-its-group", "other-cannot-chmod",
    ]  # fmt: skip


def test_a_failed_mount_says_why_in_one_line(shared):
    result = run(f"$AS_USER $FAKECGFS mount {shared}/m --allow-other", fuse_conf="# nothing\n")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"fakecgfs: cannot mount {shared}/m: fusermount: option allow_other")
    assert "user_allow_other" in line


def test_where_dev_fuse_cannot_be_opened_mount_fixture_and_shell_lib_skip(shared):
    """The host's /dev/fuse as it is (no copy): for uid 65534 it must not be openable."""
    probe = run("$AS_USER $PY -c 'import os; os.open(\"/dev/fuse\", os.O_RDWR)'", device=False)
    if probe.returncode == 0:
        pytest.skip("uid 65534 can open this machine's /dev/fuse")
    (shared / "test_it.py").write_text("def test_needs_it(fakecgfs):\n    pass\n")
    result = run(
        f"""
        $AS_USER $FAKECGFS mount {shared}/m; echo "mount: $?"
        $AS_USER sh -c '. "$($FAKECGFS shell-lib)"; fakecg_mount; echo not reached'
        echo "shell-lib: $?"
        $AS_USER $PY -m pytest -q -rs -p no:cacheprovider {shared}/test_it.py
    """,
        device=False,
    )
    assert "mount: 77" in result.stdout
    reason = "FUSE is unavailable here: cannot open /dev/fuse: Permission denied"
    assert f"fakecgfs: {reason}" in result.stderr  # fakecgfs mount, and the shell library's
    assert "SKIP: fakecg_mount: FUSE is unavailable here" in result.stderr
    assert "shell-lib: 77" in result.stdout and "not reached" not in result.stdout
    assert f"fakecgfs: {reason}" in result.stdout  # the fixture's skip reason, from pytest -rs
    assert "1 skipped" in result.stdout


def test_the_fixture_passes_as_that_user(shared):
    (shared / "test_it.py").write_text(
        textwrap.dedent("""
        import os

        def test_mkdir_limits_tasks_rmdir(fakecgfs):
            group = fakecgfs.mkgroup("web", limit="64M")
            assert fakecgfs.read_int("web", "memory.limit_in_bytes") == 64 << 20
            fakecgfs.write("web/tasks", str(os.getpid()))
            assert str(os.getpid()) in fakecgfs.read("web", "tasks").split()
            fakecgfs.write("tasks", str(os.getpid()))
            group.rmdir()
            fakecgfs.charge("/", "4M")
            assert fakecgfs.usage() >= 4 << 20
    """)
    )
    (shared / "tmp").mkdir()
    os.chown(shared / "tmp", 65534, 65534)
    result = run(f"""
        cd {shared}
        $AS_USER env TMPDIR={shared}/tmp $PY -m pytest -q -p no:cacheprovider \\
            --basetemp={shared}/tmp/base test_it.py
    """)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
