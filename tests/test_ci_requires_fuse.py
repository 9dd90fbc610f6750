"""Under CI, a machine without a usable FUSE fails the test run instead of skipping most of it
(tests/conftest.py): checked by running pytest where libfuse2 is made to look missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

PLUGIN = """
import fakecgfs.mounting
import fakecgfs.testing
import fakecgfs.testing.mount

def pretended():
    return "libfuse2 is not installed: install libfuse2 (pretended)"

for module in (fakecgfs.mounting, fakecgfs.testing, fakecgfs.testing.mount):
    module.fuse_unavailable_reason = pretended
"""


def run_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "no_libfuse2.py").write_text(PLUGIN)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(tmp_path)
    if ci is not None:
        env["CI"] = ci
    # test_linux.py: tests that need no FUSE, so only the session start can fail the run
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no_libfuse2",
                           "-p", "no:cacheprovider", str(TESTS / "test_linux.py")],
                          capture_output=True, text=True, env=env, cwd=TESTS.parent,
                          timeout=120)  # fmt: skip


def test_ci_fails_loudly_without_fuse(tmp_path):
    result = run_pytest(tmp_path, "true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "CI=true, but FUSE is unusable here: libfuse2 is not installed" in result.stdout
    assert " passed" not in result.stdout  # nothing ran


def test_outside_ci_the_run_goes_on(tmp_path):
    result = run_pytest(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
