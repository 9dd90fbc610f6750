"""The tutorial's answers that went stale once (docs/tutorial.md, exercises 6.2, 8.2, 9.1),
checked against a mount, so that a change of the controller or of top that makes one wrong
fails here as the tutorial's shown outputs fail in test_docs.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fakecgfs import mounting
from fakecgfs.teach.top import GroupRow, layout

MiB = 1 << 20
TUTORIAL = (Path(__file__).resolve().parent.parent / "docs" / "tutorial.md").read_text()


def test_answer_6_2_an_emptied_parent_can_be_limited_to_0(mnt):
    team = mnt.mkgroup("team", limit="32M")
    mnt.mkgroup("team/a", limit="64M")
    mnt.mkgroup("team/b")
    mnt.charge("team/a", "20M", "file")
    mnt.charge("team/b", "20M", "file")
    os.rmdir(team / "b")
    os.rmdir(team / "a")
    assert mnt.stat("team")["cache"] == 33181696  # as the answer says
    assert mnt.read_int("team", "memory.kmem.usage_in_bytes") == 0
    assert mnt.usage("team") == 33181696 + 256 * 1024  # and the per-CPU stock
    mnt.write("team/memory.limit_in_bytes", "0")  # succeeds
    assert mnt.usage("team") == 0 and mnt.read_int("team", "memory.limit_in_bytes") == 0
    assert "33181696 bytes of page\ncache" in TUTORIAL and "reads 0" in TUTORIAL


def test_answer_8_2_reclaim_tasks_before_and_after_rmdir(mount_factory):
    mount = mount_factory("--reclaim-rate", "4M")
    mount.mkgroup("demo", limit="64M", high="48M", low="32M")
    mount.charge("demo", "60M", "file")
    mount.wait_settled("demo", timeout=60)
    mount.charge("demo", "20M", "file")  # past the high watermark: the task runs
    assert mounting.wait_until(lambda: mount.daemon("demo")["state"] == "running", 30)
    assert mount.read("fake.daemons") == "1\n/demo\n"
    os.rmdir(mount.path / "demo")
    assert mount.read("fake.daemons") == "0\n"
    assert "**8.2** Before: `1` and `/demo`" in TUTORIAL


def test_answer_9_1_freed_column_from_100_columns():
    rows = [
        GroupRow("/", 0, None, None, None, 0, 0, False, "-"),
        GroupRow("/anon", 40 * MiB, 64 * MiB, 32 * MiB, 24 * MiB, 0, 0, False, "backoff"),
    ]
    assert "FREED" not in layout(rows, 80)[1]
    assert "FREED" in layout(rows, 100)[1]
    assert "on a terminal of 100 columns or more, `FREED`" in TUTORIAL


def test_answer_9_1_top_shows_backoff_and_the_warning(mnt):
    g = mnt.mkgroup("anon", limit="64M")
    mnt.charge("anon", "40M")
    mnt.write("anon/memory.high_wmark_in_bytes", "32M")
    mnt.write("anon/memory.low_wmark_in_bytes", "24M")
    expect = subprocess.run([sys.executable, "-m", "fakecgfs", "expect",
                             str(g / "fake.reclaim_daemon"), "--key", "state", "backoff",
                             "--timeout", "30"], timeout=60)  # fmt: skip
    assert expect.returncode == 0
    top = subprocess.run([sys.executable, "-m", "fakecgfs", "top", str(mnt.path), "--once",
                          "--width", "100"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    row = next(line for line in top.stdout.splitlines() if line.startswith("/anon"))
    assert "backoff" in row and row.split()[-3] == "0"  # FREED, before FAIL and OOM
    assert "last warnings:" in top.stdout and "backing off" in top.stdout
