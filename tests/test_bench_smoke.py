"""scripts/bench --quick runs and writes its JSON (figures are never asserted)."""

import json
import shutil
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
    for section in ("controller", "fs", "scale", "reclaim", "floor"):
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
        _check_floor(data["results"]["floor"], result.stdout)


def _c_toolchain() -> bool:
    if shutil.which("cc") is None or shutil.which("pkg-config") is None:
        return False
    return subprocess.run(["pkg-config", "--exists", "fuse"]).returncode == 0


def _check_floor(floor: dict, stdout: str) -> None:
    """Section floor: every mount's every figure is there, or the C floor says why it is not."""
    mounts = ["fusepy-nothreads", "fusepy-mt", "fakecgfs"]
    if _c_toolchain():
        assert "C floor" not in floor, floor.get("C floor")
        mounts += ["C -s", "C MT"]
    else:
        assert floor["C floor"]["skipped"]  # the line that says why
        assert "| floor: C floor | skipped " in stdout
    for pinning in ("pinned", "unpinned"):
        for op in ("open+read+close", "pread", "open+write+close", "8 readers"):
            for mount in mounts:
                assert floor[f"{pinning} {op} / {mount}"]["median"] > 0
    for op in ("open+read+close", "pread", "open+write+close"):
        for mount in mounts:
            assert f"server CPU per op, {op} / {mount}" in floor
    assert "| operation | " in stdout  # the floor's own table


def test_c_floor_says_why_it_cannot_be_built(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT))
    try:
        from bench import floor_bench
    finally:
        sys.path.remove(str(ROOT))
    monkeypatch.setenv("CC", "/bin/false")
    binary, why = floor_bench.build_c_floor(tmp_path)
    assert binary is None
    if _c_toolchain():
        assert why.startswith("/bin/false failed")
    else:
        assert "./scripts/setup --bench" in why
