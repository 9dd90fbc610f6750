"""The test kit (issue 7): the pytest plugin, the shell commands and library, fakecgfs run."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fakecgfs import cli, mounting
from fakecgfs.run import command as run_command
from fakecgfs.run import namespace
from fakecgfs.testing import fuse_unavailable_reason
from fakecgfs.testing.commands import shell_lib_path

pytest_plugins = ["pytester"]

needs_fuse = pytest.mark.skipif(
    fuse_unavailable_reason() is not None, reason=f"FUSE unavailable: {fuse_unavailable_reason()}"
)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount namespaces)")


def fakecgfs_mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if f" {path}" in line and "fuse.fakecgfs" in line]


# -- the pytest plugin: the fixture used directly -------------------------------------------


def test_plugin_is_registered_through_its_entry_point(pytestconfig):
    plugin = pytestconfig.pluginmanager.get_plugin("fakecgfs")
    assert plugin is not None and plugin.__name__ == "fakecgfs.pytest_plugin"


def test_fixture_helpers(fakecgfs):
    web = fakecgfs.mkgroup("web/app", limit="64M", high="48M", low="32M")
    assert web == fakecgfs.path / "web" / "app"
    assert fakecgfs.read("web/app/memory.limit_in_bytes") == f"{64 << 20}\n"
    assert fakecgfs.mkgroup("/web/app") == web  # exists already: fine, nothing written
    fakecgfs.charge("web/app", "60M", kind="file")
    fakecgfs.wait_settled(web, timeout=10)
    assert fakecgfs.usage("web/app") <= 32 << 20
    assert fakecgfs.usage("web") >= fakecgfs.usage("web/app")  # hierarchical (+ kernel memory)
    assert fakecgfs.daemon("web/app")["state"] == "sleeping"
    assert fakecgfs.stat("web/app")["cache"] == fakecgfs.usage("web/app")
    fakecgfs.uncharge(web, "8M", kind="file")
    assert fakecgfs.stat("web/app")["cache"] <= 24 << 20

    reclaims = fakecgfs.events(kind="reclaim", group="/web/app")
    assert reclaims and all(e["cause"] == "background" for e in reclaims)
    assert {"time", "group", "kind"} <= set(reclaims[0])
    assert fakecgfs.events(kind="group", group="web")[0]["action"] == "created"
    assert {e["kind"] for e in fakecgfs.events()} >= {"group", "reclaim", "daemon_state"}


def test_wait_settled_between_the_watermarks_is_immediate(fakecgfs):
    """The task only reclaims once usage goes above the high watermark: resting between the
    watermarks, it is settled (this waited for the whole timeout before)."""
    fakecgfs.mkgroup("g", limit="64M", high="48M", low="32M")
    fakecgfs.charge("g", "40M", kind="file")  # never above the high watermark
    fakecgfs.wait_settled("g", timeout=2)
    assert fakecgfs.usage("g") == 40 << 20
    fakecgfs.charge("g", "20M", kind="file")  # above it: reclaimed down to the low one
    fakecgfs.wait_settled("g", timeout=10)
    assert fakecgfs.usage("g") <= 32 << 20
    fakecgfs.mkgroup("h", limit="64M", high="48M")  # low: just under the high watermark
    fakecgfs.charge("h", "60M", kind="file")
    fakecgfs.wait_settled("h", timeout=10)
    fakecgfs.mkgroup("h", low="32M")  # lowered later: the task stays asleep above it
    fakecgfs.wait_settled("h", timeout=2)
    assert fakecgfs.daemon("h")["state"] == "sleeping"
    assert fakecgfs.usage("h") > 32 << 20


def test_fixture_helpers_report_errnos(fakecgfs):
    fakecgfs.mkgroup("small", limit="8M")
    with pytest.raises(OSError) as raised:
        fakecgfs.mkgroup("small", high="16M")  # above the limit
    assert raised.value.errno == errno.EINVAL
    assert raised.value.filename.endswith("small/memory.high_wmark_in_bytes")
    with pytest.raises(OSError) as raised:
        fakecgfs.charge("small", "16M")  # anonymous, no swap
    assert raised.value.errno == errno.ENOMEM
    fakecgfs.charge("small", "4M")
    with pytest.raises(TimeoutError, match="not settled"):
        fakecgfs.mkgroup("small", high="2M")  # 4M anonymous and no swap: cannot settle
        fakecgfs.wait_settled("small", timeout=0.2)


# -- the pytest plugin: inner sessions ------------------------------------------------------


@needs_fuse
def test_fixture_unmounts_when_the_test_fails(pytester):
    record = pytester.path / "record"
    pytester.makepyfile(f"""
        def test_fails(fakecgfs):
            fakecgfs.mkgroup("web", limit="64M")
            fakecgfs.charge("web", "1M")
            with open({str(record)!r}, "w") as f:
                f.write(f"{{fakecgfs.path}}\\n{{fakecgfs.process.pid}}")
            assert False, "deliberately"
    """)  # fmt: skip
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    mountpoint, pid = record.read_text().split("\n")
    assert not mounting.is_fakecgfs_mount(mountpoint)
    assert not mounting.is_stale(mountpoint)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)


@needs_fuse
def test_marker_command_line_and_ini_options(pytester):
    pytester.makeini("[pytest]\nfakecgfs_reclaim_rate = 8M\n")
    pytester.makepyfile("""
        import errno
        import pytest

        def test_default(fakecgfs):
            assert (fakecgfs.path / "fake.charge").exists()
            assert "--reclaim-rate 8388608 " in " ".join(fakecgfs.process.args)  # ini
            fakecgfs.mkgroup("g", limit="8M")
            fakecgfs.charge("g", "12M")  # needs --fakecgfs-swap from the command line

        @pytest.mark.fakecgfs(strict=True, swap=0, reclaim_rate="1M")
        def test_marker_wins(fakecgfs):
            assert not (fakecgfs.path / "fake.charge").exists()
            assert "--strict --swap 0 --reclaim-rate 1048576 " in " ".join(fakecgfs.process.args)
            with pytest.raises(FileNotFoundError, match="a strict mount hides the fake"):
                fakecgfs.charge("/", "1M")

        @pytest.mark.fakecgfs(swp="64M")
        def test_misspelt(fakecgfs):
            pass
    """)  # fmt: skip
    result = pytester.runpytest("--fakecgfs-swap", "64M")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.fakecgfs: unknown option(s) swp*"])
    assert "fakecgfs(strict=False" in "\n".join(pytester.runpytest("--markers").outlines)


@needs_fuse
def test_bad_size_on_the_command_line(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--fakecgfs-swap", "lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--fakecgfs-swap*not a size*"])


def test_fixture_skips_where_fuse_is_unavailable(pytester, monkeypatch):
    import fakecgfs.pytest_plugin

    monkeypatch.setattr(
        fakecgfs.pytest_plugin,
        "fuse_unavailable_reason",
        lambda: "no /dev/fuse (load the fuse module or pass --device /dev/fuse)",
    )
    pytester.makepyfile("def test_needs_it(fakecgfs): pass")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*fakecgfs: FUSE is unavailable here: no /dev/fuse*"])


def test_fuse_unavailable_reasons(monkeypatch):
    import ctypes.util

    from fakecgfs.testing import mount

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert "libfuse2" in mount.fuse_unavailable_reason()
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: p != "/dev/fuse" and real_exists(p))
    assert mount.fuse_unavailable_reason().startswith("no /dev/fuse")


# -- the shell commands ---------------------------------------------------------------------


def test_write_reports_the_errno(fakecgfs, capsys):
    limit = str(fakecgfs.path / "memory.limit_in_bytes")
    group = fakecgfs.mkgroup("g")
    assert cli.main(["write", f"{group}/memory.limit_in_bytes", "-1"]) == 0
    assert cli.main(["write", limit, "64M"]) == 1  # the root's limit cannot be set
    out, err = capsys.readouterr()
    assert out == "EINVAL\n"
    assert err == f"fakecgfs: {limit}: write '64M': EINVAL (Invalid argument)\n"
    assert cli.main(["write", "--expect", "EINVAL", "--", limit, "64M"]) == 0
    assert cli.main(["write", "--expect", "einval", limit, "64M"]) == 0
    assert cli.main(["write", "--expect", str(errno.EINVAL), limit, "64M"]) == 0
    capsys.readouterr()
    assert cli.main(["write", "--expect", "EBUSY", limit, "64M"]) == 1
    assert "expected EBUSY, got EINVAL (Invalid argument)" in capsys.readouterr().err
    assert cli.main(["write", "--expect", "EINVAL", f"{group}/memory.limit_in_bytes", "1G"]) == 1
    assert "expected EINVAL, but it succeeded" in capsys.readouterr().err
    assert cli.main(["write", "--expect", "ENOENT", f"{group}/nosuch", "1"]) == 0  # open fails
    with pytest.raises(SystemExit):
        cli.main(["write", "--expect", "NOTANERRNO", limit, "1"])


def test_write_is_one_write_of_the_exact_value(fakecgfs):
    group = fakecgfs.mkgroup("g")
    assert cli.main(["write", f"{group}/memory.limit_in_bytes", "64M\0garbage"]) == 0
    assert fakecgfs.read_int("g", "memory.limit_in_bytes") == 64 << 20  # a NUL ends the value
    assert cli.main(["write", "--expect", "E2BIG", f"{group}/memory.limit_in_bytes",
                     "1" * 4097]) == 0  # fmt: skip


def test_mkgroup(fakecgfs, capsys):
    group = str(fakecgfs.path / "a" / "b")
    assert cli.main(["mkgroup", group, "--limit", "64M", "--high", "48M", "--low", "32M",
                     "--set", "memory.swappiness=10"]) == 0  # fmt: skip
    assert fakecgfs.read_int("a/b", "memory.low_wmark_in_bytes") == 32 << 20
    assert fakecgfs.read_int("a/b", "memory.swappiness") == 10
    assert cli.main(["mkgroup", group, "--limit", "16M"]) == 1  # under the high watermark
    assert capsys.readouterr().err == (f"fakecgfs: {group}/memory.limit_in_bytes: write '16M': "
                                       "EINVAL (Invalid argument)\n")  # fmt: skip
    with pytest.raises(SystemExit):
        cli.main(["mkgroup", group, "--set", "noequals"])


def test_expect(fakecgfs, capsys):
    fakecgfs.mkgroup("g", limit="64M")
    fakecgfs.charge("g", "3M", kind="file")
    g = str(fakecgfs.path / "g")
    ok = lambda *args: cli.main(["expect", *args]) == 0
    assert ok(f"{g}/memory.limit_in_bytes", "64M")
    assert ok(f"{g}/memory.limit_in_bytes", str(64 << 20))
    assert ok(f"{g}/memory.usage_in_bytes", "--at-least", "3M", "--at-most", "3M")
    assert ok(f"{g}/memory.stat", "--key", "cache", "3M")
    assert ok(f"{g}/memory.stat", "3M", "--key", "cache")
    assert ok(f"{g}/fake.reclaim_daemon", "--key", "state", "stopped")
    assert ok(f"{g}/memory.oom_control", "--key", "oom_kill", "--at-most", "0")
    capsys.readouterr()
    assert cli.main(["expect", f"{g}/memory.limit_in_bytes", "32M"]) == 1
    assert capsys.readouterr().err == (f"fakecgfs: {g}/memory.limit_in_bytes: got 67108864, "
                                       "want 32M (33554432)\n")  # fmt: skip
    assert cli.main(["expect", f"{g}/fake.reclaim_daemon", "--key", "state", "running"]) == 1
    assert "got 'stopped', want 'running'" in capsys.readouterr().err
    assert cli.main(["expect", f"{g}/memory.usage_in_bytes", "--at-most", "1M",
                     "--timeout", "0.1"]) == 1  # fmt: skip
    assert "want at most 1048576 after 0.1s" in capsys.readouterr().err
    assert cli.main(["expect", f"{g}/memory.stat", "--key", "nosuch", "1"]) == 1
    assert cli.main(["expect", f"{g}/nosuch", "1"]) == 2
    assert cli.main(["expect", f"{g}/memory.limit_in_bytes"]) == 2  # nothing to check


def test_expect_polls_until_the_timeout(fakecgfs):
    fakecgfs.mkgroup("g", limit="64M", high="48M", low="32M")
    fakecgfs.charge("g", "60M", kind="file")
    assert cli.main(["expect", str(fakecgfs.path / "g/memory.usage_in_bytes"),
                     "--at-most", "32M", "--timeout", "10"]) == 0  # fmt: skip


# -- the shell library ----------------------------------------------------------------------


def test_shell_lib_is_installed_and_posix(capsys):
    assert cli.main(["shell-lib"]) == 0
    path = capsys.readouterr().out.strip()
    assert path == shell_lib_path() and os.path.isfile(path)
    for shell in ("sh", "dash", "bash"):
        if shutil.which(shell):
            assert subprocess.run([shell, "-n", path]).returncode == 0
    assert "[[" not in Path(path).read_text()  # no bashisms


def sh(script: str, tmp_path: Path, **kwargs) -> subprocess.CompletedProcess:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    script = '. "$(fakecgfs shell-lib)"\n' + textwrap.dedent(script)
    return subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, TMPDIR=str(scratch)), timeout=60,
                          **kwargs)  # fmt: skip


@needs_fuse
def test_shell_lib_mounts_and_unmounts_from_a_trap_when_the_script_fails(tmp_path):
    result = sh("""
        fakecg_mount || exit 99
        trap fakecg_umount EXIT
        echo "$FAKECG_ROOT"
        cd "$FAKECG_ROOT"
        fakecg_mkgroup web --limit 64M --high 48M
        cd web                                   # busy: fakecg_umount falls back to lazy
        fakecg_expect memory.limit_in_bytes 64M || exit 98
        fakecg_expect_errno EINVAL memory.low_wmark_in_bytes 60M || exit 97
        fakecg_expect_errno EINVAL memory.low_wmark_in_bytes 40M  # succeeds: the test fails
        exit 3
    """, tmp_path)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "write '40M': expected EINVAL, but it succeeded" in result.stderr
    mountpoint = result.stdout.strip()
    assert mountpoint.startswith(str(tmp_path / "scratch" / "fakecgfs-sh."))
    assert not mounting.is_fakecgfs_mount(mountpoint)
    assert os.listdir(tmp_path / "scratch") == []


@needs_fuse
def test_shell_lib_unmounts_on_a_signal(tmp_path):
    process = subprocess.Popen(
        ["sh", "-c", textwrap.dedent("""
            . "$(fakecgfs shell-lib)"
            fakecg_mount --strict || exit 99
            trap fakecg_umount EXIT
            trap 'exit 143' TERM
            echo "$FAKECG_ROOT"
            sleep 30 & wait
        """)], stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, TMPDIR=str(tmp_path)),
    )  # fmt: skip
    mountpoint = process.stdout.readline().strip()
    assert mounting.is_fakecgfs_mount(mountpoint)
    assert not os.path.exists(os.path.join(mountpoint, "fake.charge"))  # --strict was passed
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 143
    process.stdout.close()
    assert not mounting.is_fakecgfs_mount(mountpoint)
    assert os.listdir(tmp_path) == []


@needs_fuse
def test_shell_lib_mount_in_a_given_directory_twice_and_umount_twice(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = sh(f"""
        fakecg_mount {mnt} || exit 99
        fakecg_mount {mnt} && exit 98            # already mounted
        fakecg_charge "$FAKECG_ROOT" 1M
        fakecg_expect "$FAKECG_ROOT/memory.usage_in_bytes" 1M || exit 97
        fakecg_umount && fakecg_umount || exit 96
        fakecg_mount {mnt} || exit 95            # again, after an unmount
        fakecg_umount
    """, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "already mounted" in result.stderr
    assert mnt.is_dir() and not mounting.is_fakecgfs_mount(str(mnt))  # not removed: not ours


def test_shell_lib_usage_errors(tmp_path):
    result = sh("fakecg_expect_errno EINVAL onlyafile", tmp_path)
    assert result.returncode == 2
    assert "usage: fakecg_expect_errno ERRNO FILE VALUE" in result.stderr


# -- fakecgfs run ---------------------------------------------------------------------------


def fakecgfs_run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fakecgfs", "run", *args], capture_output=True,
                          text=True, timeout=60, **kwargs)  # fmt: skip


def host_view(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split(" - ")[1] for line in f if f" {path} " in line]


@needs_root
@needs_fuse
def test_run_mounts_the_fake_at_the_default_path_and_leaves_the_host_alone():
    default = "/sys/fs/cgroup/memory"
    before = host_view(default)
    host_file = os.path.join(default, "memory.limit_in_bytes")
    host_value = Path(host_file).read_text() if os.path.exists(host_file) else None
    probe = os.path.join(default, "fakecgfs-testkit-probe")
    assert not os.path.exists(probe)
    try:
        result = fakecgfs_run("--", "sh", "-c", f"""
            set -e
            cat {host_file}
            test -e {default}/fake.daemons          # the fake, or stop before mkdir
            mkdir {probe}
            echo 4M > {probe}/memory.limit_in_bytes
            cat {probe}/memory.limit_in_bytes
            echo "$FAKECG_ROOT"
            grep " {default} " /proc/self/mountinfo | tail -n1
        """)  # fmt: skip
        assert result.returncode == 0, result.stderr
        limit, probe_limit, root, mount_line = result.stdout.splitlines()
        assert limit == "9223372036854771712"
        assert probe_limit == str(4 << 20)
        assert root == default
        assert mount_line.endswith(" - cgroup cgroup rw,memory")  # as the supervisor shows it
        assert host_view(default) == before
        assert not os.path.exists(probe)
        if host_value is not None:
            assert Path(host_file).read_text() == host_value
    finally:
        if os.path.isdir(probe):  # the namespace was not private after all: undo
            os.rmdir(probe)


@needs_root
@needs_fuse
def test_run_exit_status():
    assert fakecgfs_run("--", "sh", "-c", "exit 7").returncode == 7
    assert fakecgfs_run("sh", "-c", "kill -TERM $$").returncode == 128 + signal.SIGTERM
    result = fakecgfs_run("--", "no-such-command-anywhere")
    assert result.returncode == 127
    assert "no-such-command-anywhere: command not found" in result.stderr
    result = fakecgfs_run("--")
    assert result.returncode == 2 and "no COMMAND given" in result.stderr


@needs_root
@needs_fuse
def test_run_passes_sigterm_on_and_stops_the_server(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "fakecgfs", "run", "--mount-at", str(mnt), "--",
         "sh", "-c", "echo ready; exec sleep 30"], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 128 + signal.SIGTERM
    process.stdout.close()
    servers = subprocess.run(["pgrep", "-f", f"fakecgfs mount --foreground {mnt}"],
                             capture_output=True, text=True).stdout  # fmt: skip
    assert servers == ""
    assert os.listdir(mnt) == []


@needs_root
@needs_fuse
def test_run_at_a_missing_path_creates_nothing_on_the_host(tmp_path):
    (tmp_path / "sibling").write_text("still here\n")
    target = tmp_path / "sys" / "memory"
    result = fakecgfs_run("--mount-at", str(target), "--swap", "64M", "--trace",
                          str(tmp_path / "trace.jsonl"), "--", "sh", "-c", f"""
        set -e
        cat {tmp_path}/sibling
        mkdir {target}/g
        echo 8M > {target}/g/memory.limit_in_bytes
        echo 12M > {target}/g/fake.charge      # fits only with swap
        echo written >> {tmp_path}/sibling       # bind-mounted: the host's file
        echo lost > {tmp_path}/new-file          # new in the covered directory: not the host's
    """, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "still here\n"
    assert not (tmp_path / "sys").exists()
    assert (tmp_path / "sibling").read_text() == "still here\nwritten\n"
    assert not (tmp_path / "new-file").exists()
    assert '"group":"/g"' in (tmp_path / "trace.jsonl").read_text()


@needs_root
@needs_fuse
def test_run_refuses_to_cover_the_root_and_non_directories(tmp_path):
    result = fakecgfs_run("--mount-at", "/fakecgfs-testkit-nowhere", "--", "true")
    assert result.returncode == 125 and "will not cover /" in result.stderr
    (tmp_path / "file").write_text("")
    result = fakecgfs_run("--mount-at", str(tmp_path / "file"), "--", "true")
    assert result.returncode == 125 and "not a directory" in result.stderr


def test_run_without_privilege_message_in_process(monkeypatch, capsys):
    def refuse():
        raise PermissionError(errno.EPERM, "Operation not permitted")

    # Never leave the test's namespace, as root or as a user.
    monkeypatch.setattr(namespace, "unshare_mounts", refuse)
    monkeypatch.setattr(namespace, "enter_user_namespace", refuse)
    monkeypatch.setattr(mounting, "fuse_unavailable_reason", lambda: None)
    assert cli.main(["run", "--", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) == 125
    err = capsys.readouterr().err
    assert "cannot create a mount namespace" in err
    assert "sudo fakecgfs run -- cat /sys/fs/cgroup/memory/memory.limit_in_bytes" in err
    assert "unprivileged user namespaces" in err


def test_run_without_fuse(monkeypatch, capsys):
    monkeypatch.setattr(mounting, "fuse_unavailable_reason", lambda: "no /dev/fuse")
    monkeypatch.setattr(run_command, "prepare", lambda target: pytest.fail("must not get here"))
    assert cli.main(["run", "true"]) == 125
    assert "FUSE is unavailable here: no /dev/fuse" in capsys.readouterr().err
