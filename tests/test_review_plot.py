"""The review's side-by-side plot: what it reads from a trace (no mount needed)."""

from __future__ import annotations

import json

import pytest

from fakecgfs.teach.review_plot import collect, plot_side_by_side

MiB = 1 << 20


def _events() -> list[dict]:
    t = 1000.0
    return [
        {"time": t, "group": "/g", "kind": "sample", "usage": 12 * MiB, "limit": None,
         "hwmark": 16 * MiB, "lwmark": 8 * MiB, "failcnt": 0, "oom_kill": 0, "state": "stopped"},
        {"time": t + 1, "group": "/g", "kind": "daemon_state", "state": "running",
         "previous": "stopped", "usage": 12 * MiB},
        {"time": t + 1.5, "group": "/g", "kind": "reclaim", "cause": "background", "scanned": 0,
         "reclaimed": 0, "usage": 12 * MiB},
        {"time": t + 1.6, "group": "/g", "kind": "reclaim", "cause": "direct", "scanned": 0,
         "reclaimed": 0, "usage": 12 * MiB},
        {"time": t + 2, "group": "/g", "kind": "reclaim", "cause": "background", "scanned": 0,
         "reclaimed": 0, "usage": 12 * MiB},
        {"time": t + 3, "group": "/g", "kind": "daemon_state", "state": "sleeping",
         "previous": "running", "usage": 8 * MiB},
        {"time": t + 4, "group": "/other", "kind": "daemon_state", "state": "running",
         "previous": "sleeping", "usage": 0},
    ]  # fmt: skip


def test_collect_counts_background_passes_and_running_time():
    run = collect(_events(), "/g")
    assert run.passes == [(1.5, 1), (2.0, 2)]  # direct reclaim is not the task's
    assert run.cpu[-1] == (3.0, 2.0)  # running from 1 s to 3 s
    assert run.usage == [(0.0, 12.0)] and run.hwmark == [(0.0, 16.0)] and run.end == 3.0


def test_a_task_still_running_at_the_end_counts_until_the_last_event():
    run = collect(_events()[:5], "/g")
    assert run.cpu[-1] == (2.0, 1.0)


def test_plot_side_by_side_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(json.dumps(e) + "\n" for e in _events()))
    out = tmp_path / "p.png"
    plot_side_by_side(trace, trace, str(out), group="/g")
    assert out.read_bytes()[:4] == b"\x89PNG"
