"""scripts/bench --quick runs and writes its JSON (figures are never asserted)."""

import json
import subprocess
import sys
from pathlib import Path

from fakecgfs.testing import fuse_unavailable_reason

ROOT = Path(__file__).parent.parent


def test_bench_quick_runs(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench"), "--quick",
                             "--json", str(out)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("| benchmark | figures |")
    data = json.loads(out.read_text())
    assert data["meta"]["quick"] is True
    assert data["results"]["controller"]["idle_tasks"]["daemons"] > 0
    # Every section ran and shows in the table; the targets table follows (PASS or MISS alike).
    for section in ("controller", "fs", "scale", "reclaim"):
        assert section in data["results"]
        assert f"| {section}: " in result.stdout
    if fuse_unavailable_reason() is None:
        for row in ("fs: latency (1 CPU) read usage_in_bytes (open+read+close) / fusepy-mt",
                    "fs: throughput 8 processes / fakecgfs", "fs: blocked charge:",
                    "fs: mount time: fakecgfs mount (CLI): to_first_read", "scale: mkdir",
                    "reclaim: wake-up: write() call to first background pass done"):  # fmt: skip
            assert f"| {row}" in result.stdout
        assert "| target | measured | wanted | result |" in result.stdout
        assert data["targets"] and {t["result"] for t in data["targets"]} <= {"PASS", "MISS"}
