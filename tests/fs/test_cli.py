"""The fakecgfs command against real mounts: help, charge/uncharge, status, wait."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakecgfs.cli import build_parser

from .helpers import MiB, read, stat_lines, usage, wait_for_state, write


def fakecgfs(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["fakecgfs", *args], capture_output=True, text=True, timeout=timeout)


def _subcommands() -> list[str]:
    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(action.choices)


def test_help():
    result = fakecgfs("--help")
    assert result.returncode == 0
    for name in _subcommands():
        assert name in result.stdout


@pytest.mark.parametrize("name", _subcommands())
def test_subcommand_help(name):
    result = fakecgfs(name, "--help")
    assert result.returncode == 0, result.stderr
    usage_line = result.stdout.splitlines()[0]
    assert usage_line.startswith("usage: ") and name in usage_line


def test_subcommands_are_the_expected_ones():
    assert set(_subcommands()) >= {"mount", "umount", "charge", "uncharge", "status", "wait"}


def test_no_subcommand_is_an_error():
    assert fakecgfs().returncode == 2


def test_charge_and_uncharge(group):
    assert fakecgfs("charge", str(group), "4M", "--kind", "file").returncode == 0
    assert fakecgfs("charge", str(group), "2M").returncode == 0
    assert fakecgfs("charge", str(group), "1M", "--kind", "file", "--dirty").returncode == 0
    st = stat_lines(group)
    assert (st["cache"], st["rss"], st["dirty"]) == (5 * MiB, 2 * MiB, 1 * MiB)
    assert fakecgfs("uncharge", str(group), "3M", "--kind", "file").returncode == 0
    assert fakecgfs("uncharge", str(group), "2M", "--kind", "anon").returncode == 0
    assert stat_lines(group)["cache"] == 2 * MiB
    assert usage(group) == 2 * MiB


def test_charge_errors_name_the_errno(group):
    write(group / "memory.limit_in_bytes", "1M")
    result = fakecgfs("charge", str(group), "4M")
    assert result.returncode == 1
    assert "ENOMEM" in result.stderr
    result = fakecgfs("charge", str(group), "4MB")
    assert result.returncode == 1 and "EINVAL" in result.stderr
    result = fakecgfs("charge", str(group / "missing"), "4M")
    assert result.returncode == 1 and "ENOENT" in result.stderr
    assert fakecgfs("charge", str(group), "4M", "--kind", "swap").returncode == 2
    assert usage(group) == 0


def test_status_lists_every_group(shared, group):
    os.mkdir(group / "kid")
    write(group / "memory.limit_in_bytes", "64M")
    write(group / "memory.high_wmark_in_bytes", "48M")
    write(group / "kid" / "fake.charge", "2M file")
    wait_for_state(group, "sleeping")
    result = fakecgfs("status", str(shared.path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["GROUP", "USAGE", "LIMIT", "HIGH", "LOW", "FAILCNT", "TASK",
                                "PASSES"]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["/"][2:4] == ["max", "max"]
    row = rows[f"/{group.name}"]
    assert row[2:4] == ["64.0M", "48.0M"] and row[6] == "sleeping"
    kid = rows[f"/{group.name}/kid"]
    assert kid[1] == "2.0M" and kid[2] == "max" and kid[6] == "stopped"
    names = [line.split()[0] for line in lines[1:]]
    assert names.index(f"/{group.name}") < names.index(f"/{group.name}/kid")


def test_status_refuses_what_is_not_a_mount(tmp_path):
    result = fakecgfs("status", str(tmp_path))
    assert result.returncode == 1 and "not a fakecgfs mount" in result.stderr


def test_wait_times_out_while_reclaim_is_slow(mount_factory):
    mount = mount_factory("--reclaim-rate", "64K")
    g = mount.path / "g"
    os.mkdir(g)
    write(g / "memory.limit_in_bytes", "64M")
    write(g / "memory.high_wmark_in_bytes", "48M")
    write(g / "memory.low_wmark_in_bytes", "32M")
    write(g / "fake.charge", "60M file")
    result = fakecgfs("wait", str(g), "--settled", "--timeout", "0.5")
    assert result.returncode == 1
    assert "not settled" in result.stderr
    wait_for_state(g, "running")
    # disarming stops the task: settled at once
    write(g / "memory.high_wmark_in_bytes", "-1")
    assert fakecgfs("wait", str(g), "--settled", "--timeout", "0.5").returncode == 0


def test_wait_succeeds_once_settled(group):
    write(group / "memory.limit_in_bytes", "64M")
    write(group / "memory.high_wmark_in_bytes", "48M")
    write(group / "memory.low_wmark_in_bytes", "32M")
    write(group / "fake.charge", "60M file")
    result = fakecgfs("wait", str(group), "--settled", "--timeout", "20")
    assert result.returncode == 0, result.stderr
    assert usage(group) <= 32 * MiB


def test_wait_on_a_quiet_group_is_immediate(group):
    assert fakecgfs("wait", str(group), "--settled", "--timeout", "0.5").returncode == 0


def test_wait_on_a_missing_group_is_an_error(group):
    result = fakecgfs("wait", str(group / "missing"), "--settled", "--timeout", "0.5")
    assert result.returncode == 2 and "ENOENT" in result.stderr


def test_shell_use_from_the_docs(group):
    script = """
    set -e
    echo 64M > memory.limit_in_bytes
    fakecgfs charge . 8M --kind file
    cat memory.usage_in_bytes
    """
    result = subprocess.run(["sh", "-c", script], cwd=group, capture_output=True, text=True,
                            timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{8 * MiB}\n"
    assert read(group / "memory.limit_in_bytes") == f"{64 * MiB}\n"


def test_the_server_runs_on_glibc_malloc_with_its_pid_kept(shared):
    """testing.mounted() starts the server with PYTHONMALLOC=malloc (mounting.SERVER_ALLOCATOR),
    as `fakecgfs mount` does; `mount --foreground` started without it re-executes itself."""
    environ = Path(f"/proc/{shared.process.pid}/environ").read_bytes().split(b"\0")
    assert b"PYTHONMALLOC=malloc" in environ


def test_a_chosen_allocator_is_kept(monkeypatch):
    from fakecgfs import cli, mounting

    execs = []
    monkeypatch.setattr(cli.os, "execve", lambda *args: execs.append(args))
    monkeypatch.setenv("PYTHONMALLOC", "pymalloc_debug")
    assert mounting.server_environment()["PYTHONMALLOC"] == "pymalloc_debug"
    cli._exec_with_server_allocator()
    assert execs == []
    monkeypatch.delenv("PYTHONMALLOC")
    assert mounting.server_environment()["PYTHONMALLOC"] == mounting.SERVER_ALLOCATOR == "malloc"
    cli._exec_with_server_allocator()
    ((executable, argv, env),) = execs
    assert executable == sys.executable and argv[1:] == sys.orig_argv[1:]
    assert env["PYTHONMALLOC"] == "malloc"


def test_a_foreground_server_started_without_it_re_executes_itself(tmp_path, monkeypatch):
    from fakecgfs import mounting
    from fakecgfs.testing import mount as testing_mount

    monkeypatch.delenv("PYTHONMALLOC", raising=False)
    monkeypatch.setattr(mounting, "server_environment", lambda: dict(os.environ))
    with testing_mount.mounted(tmp_path) as m:  # started with no PYTHONMALLOC at all
        environ = Path(f"/proc/{m.process.pid}/environ").read_bytes().split(b"\0")
        assert b"PYTHONMALLOC=malloc" in environ  # the same pid, after its exec
        assert (m.path / "memory.usage_in_bytes").read_text() == "0\n"
