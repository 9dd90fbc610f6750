"""scripts/bench --quick runs and writes its JSON (figures are never asserted)."""

import ctypes.util
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fakecgfs.testing import fuse_unavailable_reason

ROOT = Path(__file__).parent.parent
OPS = 20  # operations per figure in the profile's smoke run


@pytest.mark.timeout(300)  # every section, quick: about 30 s alone, more on a busy machine
def test_bench_quick_runs(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench"), "--quick",
                             "--json", str(out)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
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
    _check_mfusepy(floor, stdout)


def _check_mfusepy(floor: dict, stdout: str) -> None:
    """The optional mfusepy columns (issue 17): there on each libfuse found, or one line why not."""
    if importlib.util.find_spec("mfusepy") is None:
        assert floor["mfusepy"]["skipped"].startswith("not importable")
        assert "| floor: mfusepy | skipped not importable" in stdout
        return
    for suffix, library in (("fuse2", "fuse"), ("fuse3", "fuse3")):
        if ctypes.util.find_library(library) is None:
            assert f"| floor: mfusepy on {suffix} | skipped no lib{library}" in stdout
            continue
        for mode, floor_of_mode in (("nothreads", "fusepy-nothreads"), ("mt", "fusepy-mt")):
            name = f"mfusepy-{mode}-{suffix}"
            assert floor[f"pinned pread / {name}"]["median"] > 0
            assert floor[f"pinned pread / {name} to {floor_of_mode}"]["ratio"] > 0


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


@pytest.mark.timeout(240)
def test_request_profile_counts_requests_and_system_calls(tmp_path):
    """bench/request_profile.py without callgrind: the kernel's requests per operation (open,
    two reads for cat's read to EOF, release; one READ per pread), and every server reads each
    request once and answers it with one write."""
    if fuse_unavailable_reason() is not None:
        return
    out = tmp_path / "profile.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "request_profile.py"),
                             "--no-callgrind", "--ops", str(OPS), "--json", str(out)],
                            capture_output=True, text=True, timeout=240)  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    data = json.loads(out.read_text())
    expected = {"open+read+close": {"OPEN": 1, "READ": 2, "RELEASE": 1},
                "pread": {"READ": 1},
                "open+write+close": {"OPEN": 1, "WRITE": 1, "RELEASE": 1}}  # fmt: skip
    if _c_toolchain():
        assert data["requests"] == expected
    servers = {key.split(" | ")[0] for key in data["syscalls"]}
    assert {"fusepy-nothreads", "fusepy-mt", "fakecgfs", "fakecgfs, no poll"} <= servers
    for key, figures in data["syscalls"].items():
        operation = key.split(" | ")[2]
        requests = sum(expected[operation].values()) * OPS
        # The kernel counts a write() when it returns, after it woke the client: a reply's count
        # can land in the next interval (the same goes for the read() that took the request).
        assert abs(round(figures["writes"] * OPS) - requests) <= 1, key
        assert round(figures["reads"] * OPS) >= requests - 1, key
    assert "## FUSE requests per operation" in result.stdout


def test_the_members_read_target_compares_ten_members_with_none():
    """Issue 19's target on real processes: 10 members within 2x of none, from the members
    section's two medians (and no row without them)."""
    sys.path.insert(0, str(ROOT))
    try:
        from bench import targets
    finally:
        sys.path.remove(str(ROOT))

    def rows(ten: float, none: float) -> list[dict]:
        members = {"read usage_in_bytes, 10 members": {"median": ten},
                   "read usage_in_bytes, 0 members": {"median": none}}  # fmt: skip
        found = targets.evaluate({"members": members})
        return [r for r in found if "10 members" in r["target"]]

    assert [(r["measured"], r["result"]) for r in rows(120.0, 60.0)] == [("2x", "PASS")]
    assert [(r["measured"], r["result"]) for r in rows(121.0, 60.0)] == [("2.02x", "MISS")]
    assert targets.evaluate({"members": {}}) == []
