"""Concurrency (issue 5): worker processes hammer one mount at once (see stress.py).

The suite's run is 8 processes for 8 seconds; `scripts/stress --processes 8 --seconds 60` is the
long one.  Nothing may deadlock, every read must parse, every refused write must carry an errno the
kernel returns for that file, the invariants must hold at every pause, fake.daemons must match the
groups with an armed high watermark, and the server must stay one thread.

The thread bound: the server is one thread (its trio loop serves the FUSE session and runs the
controller; a write that waits is a task, not a thread), however many processes hammer it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from expectations import record_figures
from fakecgfs import mounting
from fakecgfs.testing import fuse_unavailable_reason, mounted

from .stress import remove_groups, run_stress

pytestmark = pytest.mark.skipif(fuse_unavailable_reason() is not None,
                                reason=str(fuse_unavailable_reason()))  # fmt: skip

ROOT = Path(__file__).resolve().parent.parent.parent
PROCESSES = 8
SECONDS = 8.0


SERVER_THREADS = 1


@pytest.fixture
def stress_mount():
    directory = Path(tempfile.mkdtemp(prefix="fakecgfs-stress-"))
    try:
        with mounted(directory, "--swap", "32M") as mount:
            yield mount
    finally:
        mountpoint = str(directory / "mnt")
        if not (mounting.is_fakecgfs_mount(mountpoint) or mounting.is_stale(mountpoint)):
            shutil.rmtree(directory, ignore_errors=True)


def test_concurrent_workers(stress_mount):
    mount = stress_mount
    result = run_stress(mount.path, mount.process.pid, processes=PROCESSES, seconds=SECONDS,
                        check_interval=1.0, seed=5)  # fmt: skip
    figures = result.figures()
    record_figures("stress_suite", figures)
    assert result.failures == [], "\n".join(result.failures)
    assert mount.process.poll() is None
    assert result.pauses >= SECONDS / 2, "the workers were too slow to pause"
    # Every kind of operation ran (how many a second is a figure, not an assertion).
    assert result.ops.keys() == {"limit", "high", "low", "charge", "uncharge", "read", "mkdir",
                                 "rmdir", "misc"}, figures  # fmt: skip
    # the mix did what it is for: groups came and went, limits refused, charges failed
    for outcome in ("mkdir ok", "rmdir ok", "ok", "EINVAL"):
        assert result.errnos[outcome] > 0, outcome
    assert result.peak_threads == SERVER_THREADS, figures
    assert "Traceback" not in mount.log.read_text(errors="replace")
    remove_groups(mount.path)
    assert (mount.path / "fake.daemons").read_text() == "0\n"
    assert not [p for p in mount.path.iterdir() if p.is_dir()]


def test_the_stress_script_runs(tmp_path):
    """scripts/stress, the long runs' driver, in a smoke-sized run (its figures mean nothing)."""
    figures = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "stress"), "--only", "stress", "--processes", "2",
         "--seconds", "1", "--only", "resources", "--groups", "50", "--handles", "50",
         "--json", str(figures)], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(figures.read_text())
    assert data["stress"]["operations"] > 0 and data["stress"]["failures"] == 0
    assert data["resources"]["groups"]["groups"] == 50
