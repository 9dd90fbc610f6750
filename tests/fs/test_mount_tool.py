"""The conventions of a mount tool: --version, mount(8) with -t fuse.fakecgfs and fstab lines,
the man page and completion, list and the clean-up of stale mounts, an unmount refused with
the processes named, a missing mount point, status and wait on --strict mounts, the log."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fakecgfs import linux, mounting
from fakecgfs.cli import build_parser
from fakecgfs.manpage import subcommands
from fakecgfs.mount_helper import Invocation, UsageError, options_to_flags, parse_argv

from .helpers import MiB

BIN = Path(sys.executable).parent


def fakecgfs(*args: str, timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "fakecgfs"), *args], capture_output=True, text=True,
                          timeout=timeout, **kwargs)  # fmt: skip


def _signal(process: subprocess.Popen, signum: int) -> None:
    """Signal a server this test started, through a pidfd."""
    pidfd = linux.pidfd_open(process.pid)
    try:
        linux.pidfd_send_signal(pidfd, signum)
    finally:
        os.close(pidfd)


def test_version():
    from importlib.metadata import version

    result = fakecgfs("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"fakecgfs {version('fakecgfs')}\n"


def test_conformance_help_is_plain_text_under_its_command_name():
    result = fakecgfs("conformance", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: fakecgfs conformance ")
    assert "python -m" not in result.stdout and "``" not in result.stdout
    record = fakecgfs("conformance", "record", "--help")
    assert record.stdout.startswith("usage: fakecgfs conformance record ")


# -- mount.fakecgfs ---------------------------------------------------------------------------


def test_mount_options_map_to_flags():
    assert options_to_flags("rw,nosuid,swap=64M,strict,reclaim_rate=4M,allow_other,"
                            "trace=/tmp/t.jsonl,x-systemd.automount,noauto,defaults") == [
        "--swap", "64M", "--strict", "--reclaim-rate", "4M", "--allow-other",
        "--trace", "/tmp/t.jsonl"]  # fmt: skip
    for bad in ("bogus", "swap", "strict=1", "swap=", "ro"):
        with pytest.raises(UsageError):
            options_to_flags(bad)
    assert options_to_flags("bogus,strict", sloppy=True) == ["--strict"]
    assert parse_argv(["fakecgfs", "/m", "-n", "-o", "rw,strict", "-t", "fuse.fakecgfs"]) == (
        Invocation("/m", ["--strict"])
    )
    assert parse_argv(["fakecgfs", "/m", "-fv", "-oswap=1G"]) == (
        Invocation("/m", ["--swap", "1G"], fake=True, verbose=True)
    )
    with pytest.raises(UsageError):
        parse_argv(["/m"])


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mount(8) and unshare need root")


def _in_namespace_with_helper(tmp_path: Path, script: str) -> subprocess.CompletedProcess:
    """Run ``script`` (sh) in a private mount namespace where /usr/sbin is an overlay, so that
    `fakecgfs install-mount-helper` puts its links where mount(8) looks without touching the
    host's /sbin.  Everything mounted there goes with the namespace's last process, and the
    script unmounts it first anyway."""
    if not (shutil.which("unshare") and shutil.which("mount")):
        pytest.skip("needs unshare(1) and mount(8)")
    sbin = os.path.realpath("/sbin")
    (tmp_path / "upper").mkdir()
    (tmp_path / "work").mkdir()
    prologue = (f"set -eu\nexport PATH={BIN}:$PATH\n"
                f"mount -t overlay overlay -o lowerdir={sbin},upperdir={tmp_path}/upper,"
                f"workdir={tmp_path}/work {sbin}\n"
                f"fakecgfs install-mount-helper >/dev/null\n")  # fmt: skip
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           prologue + textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@needs_root
def test_mount_t_fuse_fakecgfs(tmp_path):
    mnt = tmp_path / "memory"
    mnt.mkdir()
    result = _in_namespace_with_helper(tmp_path, f"""
        mount -t fuse.fakecgfs fakecgfs {mnt} -o swap=64M,strict,log={tmp_path}/log
        trap 'fakecgfs umount {mnt}' EXIT
        ls {mnt} | grep -c '^fake\\.' || true            # --strict: none
        mkdir {mnt}/g
        echo 8M > {mnt}/g/memory.limit_in_bytes
        cat {mnt}/g/memory.limit_in_bytes
        grep ' {mnt} ' /proc/self/mountinfo | grep -c 'fuse.fakecgfs'
        """)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", str(8 * MiB), "1"]
    log = (tmp_path / "log").read_text()
    assert f"mounted at {mnt} (strict=True, swap_bytes={64 * MiB})" in log
    assert not mounting.is_fakecgfs_mount(str(mnt))  # it lived in the namespace only


@needs_root
def test_fstab_line(tmp_path):
    mnt = tmp_path / "memory"
    mnt.mkdir()
    fstab = tmp_path / "fstab"
    options = "swap=64M,reclaim_rate=4M,noauto,defaults,x-systemd.automount"
    fstab.write_text(f"# a comment\nfakecgfs {mnt} fuse.fakecgfs {options} 0 0\n")
    result = _in_namespace_with_helper(tmp_path, f"""
        mount -T {fstab} {mnt}
        trap 'fakecgfs umount {mnt}' EXIT
        ls {mnt} | grep -c '^fake\\.'                   # not strict: the fake.* files
        fakecgfs list {mnt}
        """)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "5"  # fake.charge, .daemons, .reclaim_daemon, .touch, .uncharge
    assert re.fullmatch(rf"{mnt}\s+\d+\s+live", lines[-1])


@needs_root
def test_mount_helper_refuses_unknown_options(tmp_path):
    mnt = tmp_path / "memory"
    mnt.mkdir()
    result = _in_namespace_with_helper(tmp_path, f"mount -t fuse.fakecgfs x {mnt} -o swapp=1G")
    assert result.returncode != 0
    assert "unknown option 'swapp=1G'" in result.stderr


# -- man page and completion ------------------------------------------------------------------


def test_man_page_documents_every_command_and_option():
    result = fakecgfs("man")
    assert result.returncode == 0, result.stderr
    page = result.stdout
    assert page.startswith(".TH FAKECGFS 1 ")
    for name, sub in subcommands(build_parser()).items():
        assert f'.SS "fakecgfs {name}"' in page
        for action in sub._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert option.replace("-", "\\-") in page, (name, option)
    if shutil.which("groff"):
        rendered = subprocess.run(["groff", "-man", "-Tascii", "-ww", "-z"], input=page,
                                  capture_output=True, text=True, timeout=30)  # fmt: skip
        assert rendered.returncode == 0 and rendered.stderr == "", rendered.stderr


def _complete(words: list[str]) -> list[str]:
    """What bash offers for ``words`` (the last one being completed)."""
    script = fakecgfs("completion", "bash").stdout
    line = " ".join(words)
    probe = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'\n"
             "_fakecgfs; printf '%s\\n' \"${COMPREPLY[@]}\"")  # fmt: skip
    result = subprocess.run(["bash", "--norc", "-c", probe], capture_output=True, text=True,
                            timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [w for w in result.stdout.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion():
    assert _complete(["fakecgfs", "mo"]) == ["mount"]
    assert set(_complete(["fakecgfs", ""])) >= {"mount", "umount", "list", "--version"}
    assert set(_complete(["fakecgfs", "mount", "/m", "--s"])) == {"--strict", "--swap"}
    assert _complete(["fakecgfs", "charge", "g", "1M", "--kind", ""]) == ["anon", "file"]
    assert _complete(["fakecgfs", "completion", "--h"]) == ["--help"]


# -- list, and stale mounts -------------------------------------------------------------------


def test_list_and_clean_after_kill_9(mount_factory):
    mount = mount_factory()
    mnt = str(mount.path)
    listed = fakecgfs("list", mnt)
    assert listed.returncode == 0
    assert re.fullmatch(rf"MOUNTPOINT\s+SERVER\s+STATE\n{mnt}\s+{mount.process.pid}\s+live\n",
                        listed.stdout), listed.stdout  # fmt: skip
    _signal(mount.process, signal.SIGKILL)
    mount.process.wait(30)
    assert mounting.wait_until(lambda: mounting.is_stale(mnt), 10)
    listed = fakecgfs("list", mnt)
    assert re.search(rf"^{mnt}\s+-\s+stale ", listed.stdout, re.M), listed.stdout
    cleaned = fakecgfs("list", "--clean", mnt)  # only ours: other tests' mounts are theirs
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout == f"fakecgfs: cleared the stale mount at {mnt}\n"
    assert not mounting.is_fakecgfs_mount(mnt) and not mounting.is_stale(mnt)
    assert fakecgfs("list", mnt).stdout.splitlines()[1:] == []


def test_list_does_not_hang_on_a_stopped_server(mount_factory):
    """A server that cannot answer (stopped here; stuck elsewhere) must not hang the list of
    every mount: a mount whose server is known is not asked anything, others only briefly."""
    mount = mount_factory()
    _signal(mount.process, signal.SIGSTOP)
    try:
        listed = fakecgfs("list", timeout=60)  # every mount of the namespace, others' too
    finally:
        _signal(mount.process, signal.SIGCONT)
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^{mount.path}\s+{mount.process.pid}\s+live$", listed.stdout, re.M)


# -- umount names who keeps it busy; a missing mount point -----------------------------------


def test_umount_busy_names_working_directory_and_open_file(tmp_path):
    mnt = tmp_path / "memory"
    mnt.mkdir()
    assert fakecgfs("mount", str(mnt), "--log", str(tmp_path / "log")).returncode == 0
    (mnt / "g").mkdir()
    holder = subprocess.Popen(["sh", "-c", "exec 3<memory.usage_in_bytes; cd g; echo ready; "
                               "read _"], cwd=mnt, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout.readline() == "ready\n"
        result = fakecgfs("umount", str(mnt))
        assert result.returncode == 1
        assert f"process {holder.pid} (sh): working directory inside" in result.stderr
        assert f"process {holder.pid} (sh): open file {mnt}/memory.usage_in_bytes" in result.stderr
    finally:
        holder.communicate("\n", timeout=30)
        result = fakecgfs("umount", str(mnt))
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "log").read_text()
    assert re.search(rf"INFO: mounted at {mnt} \(defaults\)\n", log), log
    assert re.search(rf"INFO: unmounted {mnt}\n", log), log


def test_mount_on_a_missing_directory_says_so(tmp_path):
    result = fakecgfs("mount", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "no such directory" in result.stderr and "mkdir -p" in result.stderr


def test_foreground_logs_to_stderr_and_debug_logs_events(tmp_path):
    mnt = tmp_path / "memory"
    mnt.mkdir()
    server = subprocess.Popen([str(BIN / "fakecgfs"), "mount", "-f", "--debug", str(mnt)],
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert "INFO: mounted at" in server.stderr.readline()
        (mnt / "g").mkdir()
        (mnt / "g" / "memory.limit_in_bytes").write_text("8M")
        (mnt / "g" / "memory.high_wmark_in_bytes").write_text("4M")
        (mnt / "g" / "memory.low_wmark_in_bytes").write_text("4M")  # gap 0: warned
    finally:
        assert fakecgfs("umount", str(mnt)).returncode == 0
        err = server.communicate(timeout=30)[1]
    assert re.search(r"DEBUG: /g group: ", err), err
    assert re.search(r"WARNING: /g warning: message=watermark gap 0 bytes", err), err
    assert f"INFO: unmounted {mnt}\n" in err
    assert "FuseOSError" not in err  # fusepy's line per errno answered is not an event


# -- status and wait on --strict mounts -------------------------------------------------------


def test_status_and_wait_on_a_strict_mount(mount_factory):
    mount = mount_factory("--strict", "--reclaim-rate", "64M")
    g = mount.path / "g"
    assert fakecgfs("mkgroup", str(g), "--limit", "64M", "--high", "48M", "--low", "32M",
                    "--set", "memory.swappiness=60").returncode == 0  # fmt: skip
    status = fakecgfs("status", str(mount.path))
    assert status.returncode == 0, status.stderr
    assert re.search(r"^/g\s+0\s+64\.0M\s+48\.0M\s+32\.0M\s+0\s+-\s+-$", status.stdout, re.M)
    assert "fake.reclaim_daemon is hidden" in status.stdout
    # Nothing charged (fake.charge is hidden too): usage is under the low watermark, which
    # is what wait holds out for when the task's state cannot be read.
    waited = fakecgfs("wait", str(g), "--timeout", "0")
    assert waited.returncode == 0, waited.stderr
    assert "waiting for usage at or under the low watermark instead" in waited.stderr


def test_wait_settled_is_the_default(mnt):
    g = mnt.mkgroup("g", limit="64M", high="48M", low="32M")
    mnt.charge("g", "60M", "file")
    for args in ([], ["--settled"]):
        result = fakecgfs("wait", str(g), *args, "--timeout", "60")
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""  # not a terminal: no progress line
    assert mnt.usage("g") <= 32 * MiB
    assert mnt.daemon("g")["state"] == "sleeping"
    assert isinstance(mnt.daemon("g")["passes"], int)
