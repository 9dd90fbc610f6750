"""scripts/bench --quick runs and writes its JSON (figures are never asserted)."""

import json
import subprocess
import sys
from pathlib import Path

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
