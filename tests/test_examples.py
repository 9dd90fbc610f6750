"""The examples in examples/ run as part of the suite, each copied out of the repository first
and run as a user would run it in their own project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fakecgfs import mounting
from fakecgfs.testing import fuse_unavailable_reason

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.skipif(
    fuse_unavailable_reason() is not None, reason=f"FUSE unavailable: {fuse_unavailable_reason()}"
)


def copy_example(name: str, tmp_path: Path) -> Path:
    """The example, alone in a fresh directory, as if copied into another project."""
    destination = tmp_path / "project" / name
    shutil.copytree(EXAMPLES / name, destination)
    return destination


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **env))  # fmt: skip


def fakecgfs_mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if f" {path}/" in line and "fuse.fakecgfs" in line]


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="fakecgfs run needs root")


@needs_root
def test_limit_tool_suite_under_fakecgfs_run(tmp_path):
    example = copy_example("limit-tool", tmp_path)
    result = run(["fakecgfs", "run", "--", "sh", "test_memlimit.sh"], example)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not ok" not in result.stdout
    assert result.stdout.rstrip().endswith("1..8")
    assert not mounting.is_fakecgfs_mount("/sys/fs/cgroup/memory")


@needs_root
def test_limit_tool_suite_runs_itself_under_fakecgfs_run(tmp_path):
    example = copy_example("limit-tool", tmp_path)
    result = run(["sh", str(example / "test_memlimit.sh")], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("\nok ") == 7  # and "ok 1" on the first line


def test_pytest_example(tmp_path):
    example = copy_example("pytest", tmp_path)
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], example)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout
    assert not fakecgfs_mounts_under(tmp_path)


def test_sh_example(tmp_path):
    example = copy_example("sh", tmp_path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = run(["sh", "test_limits.sh"], example, TMPDIR=str(scratch))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not ok" not in result.stdout
    assert result.stdout.rstrip().endswith("1..6")
    assert not fakecgfs_mounts_under(scratch)
    assert os.listdir(scratch) == []  # fakecg_umount removed its temp dir
