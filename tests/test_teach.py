"""The teaching and observability tools against real mounts: the trace, top, plot, explain."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakecgfs import mounting
from fakecgfs.cgroupfs.cftypes import BY_NAME
from fakecgfs.cliutil import read_reclaim_task
from fakecgfs.controller import EventKind
from fakecgfs.teach import plot as plotmod
from fakecgfs.teach import top
from fakecgfs.teach.reference import entry
from fakecgfs.trace import COMMON_FIELDS, SCHEMA, read_trace

MiB = 1 << 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fakecgfs(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fakecgfs", *args], capture_output=True,
                          text=True, check=check, timeout=60)  # fmt: skip


def settle(group: Path) -> None:
    fakecgfs("wait", str(group), "--settled", "--timeout", "20")


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _group_dir(mnt, group: str) -> Path:
    return mnt.path if group == "/" else mnt.group(group.lstrip("/"))


def _caught_up(mnt, trace: Path, groups: tuple[str, ...]) -> list[str] | None:
    # One read of the file, whole lines only: a sample written after it must count as new
    # (a second read for the records, as this once did, let one slip in between).
    text = trace.read_text() if trace.exists() else ""
    lines = text[: text.rfind("\n") + 1].splitlines()
    last = {}
    for record in map(json.loads, lines):
        if record["kind"] == "sample":
            last[record["group"]] = record
    for group in groups:
        directory = _group_dir(mnt, group)
        now = {"usage": int((directory / "memory.usage_in_bytes").read_text()),
               "failcnt": int((directory / "memory.failcnt").read_text()),
               "state": read_reclaim_task(str(directory))["state"]}  # fmt: skip
        sample = last.get(group)
        if sample is None or {key: sample[key] for key in now} != now:
            return None
    return lines


def wait_caught_up(mnt, trace: Path, *groups: str, timeout: float = 20.0) -> list[str]:
    """The trace's lines once its latest sample of each group shows the group as the mount
    does now (usage, failcnt, the reclaim task's state): the sampler has seen all that was
    done.  Each sampler pass writes every group that changed, so what a later pass writes is
    exactly what changed after this."""
    deadline = time.monotonic() + timeout
    while (lines := _caught_up(mnt, trace, groups)) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"the trace did not catch up with {groups} in {timeout}s")
        time.sleep(0.02)
    return lines


def sawtooth(mnt, group: str = "g", bursts: int = 2) -> Path:
    """Limit 64M, watermarks 48M/32M, then page cache charged above the high watermark
    ``bursts`` times, each time waiting for the task to bring usage back down."""
    mnt.group(group).mkdir()
    mnt.write(f"{group}/memory.limit_in_bytes", "64M")
    mnt.write(f"{group}/memory.high_wmark_in_bytes", "48M")
    mnt.write(f"{group}/memory.low_wmark_in_bytes", "32M")
    mnt.write(f"{group}/fake.charge", "60M file")
    settle(mnt.group(group))
    for _ in range(bursts - 1):
        mnt.write(f"{group}/fake.charge", "20M file")
        settle(mnt.group(group))
    return mnt.group(group)


# -- the trace ------------------------------------------------------------------------------


def test_trace_schema_samples_and_idle(mount_factory, tmp_path):
    trace = tmp_path / "trace.jsonl"
    mnt = mount_factory("--trace", str(trace), "--reclaim-rate", "128M",
                        "--trace-interval", "0.05")  # fmt: skip
    sawtooth(mnt)
    mnt.group("other").mkdir()
    mnt.write("other/memory.limit_in_bytes", "4M")
    with pytest.raises(OSError) as e:  # an OOM kill: anonymous memory, no swap, a small limit
        mnt.write("other/fake.charge", "8M")
    assert e.value.errno == errno.ENOMEM
    lines = wait_caught_up(mnt, trace, "/", "/g", "/other")

    kinds = {k.value for k in EventKind}
    seen = set()
    for line in lines:
        record = json.loads(line)
        assert {"time", "group", "kind"} <= record.keys()
        assert isinstance(record["time"], float) and record["group"].startswith("/")
        kind = EventKind(record["kind"])
        assert record["kind"] in kinds
        documented = {f[0] for f in COMMON_FIELDS} | {f[0] for f in SCHEMA[kind].fields}
        assert record.keys() <= documented, f"undocumented fields in {line}"
        seen.add(kind)
    assert {EventKind.SAMPLE, EventKind.RECLAIM, EventKind.DAEMON_STATE, EventKind.GROUP,
            EventKind.CHARGE_REFUSED, EventKind.OOM} <= seen  # fmt: skip
    times = [json.loads(line)["time"] for line in lines]
    assert times == sorted(times)
    assert abs(times[-1] - time.time()) < 120  # Unix time, not the trio clock

    samples = [json.loads(line) for line in lines if '"kind":"sample"' in line]
    mine = [s for s in samples if s["group"] == "/g"]
    assert max(s["usage"] for s in mine) > 48 * MiB
    assert mine[-1]["usage"] <= 32 * MiB and mine[-1]["state"] == "sleeping"
    assert mine[-1]["limit"] == 64 * MiB
    assert (mine[-1]["hwmark"], mine[-1]["lwmark"]) == (48 * MiB, 32 * MiB)
    root = [s for s in samples if s["group"] == "/"]
    assert root[0]["limit"] is None and root[0]["hwmark"] is None  # unlimited, disarmed

    # An idle mount writes nothing more, nor do writes that change no sampled value; a change
    # is sampled again.  The pass that samples the uncharge would also write anything else
    # changed (or re-sampled) since, so what it writes must be exactly the two groups it changed.
    mnt.write("g/memory.failcnt", "0")  # no change (failcnt was 0)
    mnt.write("other/memory.swappiness", "10")  # not sampled
    mnt.write("g/fake.uncharge", "1M file")
    later = wait_caught_up(mnt, trace, "/", "/g", "/other")
    new = [json.loads(x) for x in later[len(lines) :]]
    assert {(n["kind"], n["group"]) for n in new} == {("sample", "/g"), ("sample", "/")}
    assert len(new) == 2


def test_no_trace_without_option(mnt, tmp_path):
    mnt.group("g").mkdir()
    mnt.write("g/fake.charge", "1M")
    assert not list(tmp_path.glob("*.jsonl"))


def test_trace_appends_across_mounts(tmp_path):
    from fakecgfs.testing import fuse_unavailable_reason, mounted

    if fuse_unavailable_reason():
        pytest.skip(fuse_unavailable_reason())
    trace = tmp_path / "trace.jsonl"
    for run in ("a", "b"):
        directory = tmp_path / run
        directory.mkdir()
        with mounted(directory, "--trace", str(trace)) as mnt:
            mnt.group(run).mkdir()
            wait_caught_up(mnt, trace, "/", f"/{run}")
    records = list(read_trace(str(trace)))
    groups = [r["group"] for r in records if r["kind"] == "group"]
    assert groups == ["/a", "/b"]
    times = [r["time"] for r in records]
    assert times == sorted(times)


# -- top ------------------------------------------------------------------------------------


def test_top_once(mount_factory, tmp_path):
    mnt = mount_factory("--reclaim-rate", "128M")
    sawtooth(mnt, "web", bursts=1)
    mnt.group("batch").mkdir()
    mnt.group("batch", "nested").mkdir()
    mnt.write("batch/nested/fake.charge", "2M")
    out = fakecgfs("top", str(mnt.path), "--once", "--width", "120").stdout
    lines = out.splitlines()
    for group in ("/", "/web", "/batch", "/batch/nested"):
        assert any(line.split()[:1] == [group] for line in lines), group
    row = next(line for line in lines if line.startswith("/web "))
    assert "sleeping" in row
    assert re.search(r"[█#]+.*L.*H.*\|", row), row  # usage bar, low, high, limit marks
    assert "64.0M" in row and "48.0M" in row and "32.0M" in row  # limit, high, low
    header = next(line for line in lines if line.startswith("GROUP"))
    for column in ("USAGE", "TASK", "LIMIT", "HIGH", "LOW", "PASSES", "FREED", "FAIL", "OOM"):
        assert column in header
    assert "stopped" in next(line for line in lines if line.startswith("/batch "))


def test_top_narrow_and_warnings(mount_factory):
    mnt = mount_factory()
    mnt.group("a-group-with-a-long-name").mkdir()
    g = mnt.group("anon")
    g.mkdir()
    mnt.write("anon/fake.charge", "8M")  # anonymous and no swap: the task cannot progress
    mnt.write("anon/memory.high_wmark_in_bytes", "4M")
    assert mounting.wait_until(lambda: top.read_group(str(g), "/anon").last_warning, 20, 0.05)
    for width in (60, 40):
        out = fakecgfs("top", str(mnt.path), "--once", "--width", str(width)).stdout
        lines = out.splitlines()
        assert all(len(line) <= width for line in lines), out
        row = next(line for line in lines if line.startswith("/anon "))
        assert "backoff" in row or "running" in row
        assert re.search(r"[█#].*H", row)
        assert any("long-name" in line for line in lines)  # truncated on the left
        assert any(line.startswith("! /anon") for line in lines)  # the last warning
    out = fakecgfs("top", str(mnt.path), "--once", "--width", "60").stdout
    assert "FAIL" in out and "FREED" not in out  # FREED is the first to go, FAIL the last


@pytest.mark.parametrize("width", [30, 40, 60, 80, 100, 140, 200])
def test_top_layout_fits(width):
    rows = [top.GroupRow("/", 300 * MiB, None, None, None, 0, 0, False, "stopped"),
            top.GroupRow("/a/deeply/nested/group", 60 * MiB, 64 * MiB, 48 * MiB, 32 * MiB, 12,
                         3, True, "running", 123456, 99999, "a warning")]  # fmt: skip
    from rich.console import Console

    with open(os.devnull, "w") as sink:
        console = Console(width=width, record=True, file=sink)
        console.print(top.render("/mnt", rows, width))
    text = console.export_text()
    assert all(len(line) <= width for line in text.splitlines()), text
    assert "running" in text and "L" in text and "H" in text


def test_top_ascii_bar():
    row = top.GroupRow("/g", 40 * MiB, 64 * MiB, 48 * MiB, 32 * MiB, 0, 0, False, "sleeping")
    bar = top.usage_bar(row, 33, ascii_only=True).plain
    assert len(bar) == 33 and bar.endswith("|")
    assert bar.index("L") == 32 * 32 // 64 and bar.index("H") == 48 * 32 // 64
    assert bar[:10] == "#" * 10 and bar[-2] == "."


def test_top_reads_files_only_and_other_commands_load_no_plotting():
    """top must not import the controller (it reads the mount like cat); the other commands
    must not pay for rich or matplotlib."""
    code = (
        "import sys, fakecgfs.teach.top; "
        "print('fakecgfs.controller' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]
    code = (
        "import sys; from fakecgfs import cli; cli.build_parser(); "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["False"]


def test_top_refuses_a_non_mount(tmp_path):
    result = fakecgfs("top", str(tmp_path), "--once", check=False)
    assert result.returncode == 1 and "not a memory cgroup hierarchy" in result.stderr


# -- plot -----------------------------------------------------------------------------------


def test_plot_png_and_svg(mount_factory, tmp_path):
    trace = tmp_path / "trace.jsonl"
    mnt = mount_factory("--trace", str(trace), "--reclaim-rate", "128M")
    sawtooth(mnt, bursts=3)
    wait_caught_up(mnt, trace, "/", "/g")

    series = plotmod.collect(list(read_trace(str(trace))), "/g")
    assert max(u for _, u in series.usage) > 48  # MiB: above the high watermark...
    assert series.usage[-1][1] <= 32  # ...and brought down to the low one
    assert len([s for s in series.states if s[1] == "running"]) == 3  # three episodes
    assert series.background and not series.refused

    png = tmp_path / "out.png"
    result = fakecgfs("plot", str(trace), "--group", "g", "-o", str(png))
    assert "wrote" in result.stdout and "/g" in result.stdout
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 30_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1920, 1080)

    svg = tmp_path / "out.svg"
    fakecgfs("plot", str(trace), "-o", str(svg))  # the group with most reclaim: /g
    text = svg.read_text()
    assert text.startswith("<?xml") and "<svg" in text
    for label in ("high watermark", "low watermark", "limit", "Background reclaim in /g"):
        assert label in text  # text kept as text (svg.fonttype none): editable on a slide

    forced = tmp_path / "forced.img"
    fakecgfs("plot", str(trace), "--format", "svg", "-o", str(forced))
    assert "<svg" in forced.read_text()


def test_plot_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("not json\n")
    result = fakecgfs("plot", str(empty), "-o", str(tmp_path / "x.png"), check=False)
    assert result.returncode == 1 and "no events" in result.stderr
    trace = tmp_path / "t.jsonl"
    trace.write_text(json.dumps({"time": 1.0, "group": "/a", "kind": "group",
                                 "action": "created"}) + "\n")  # fmt: skip
    result = fakecgfs("plot", str(trace), "--group", "/b", "-o", str(tmp_path / "x.png"),
                      check=False)  # fmt: skip
    assert result.returncode == 1 and "no group /b" in result.stderr and "/a" in result.stderr


def test_plot_oom_and_backoff(tmp_path):
    """A synthetic trace with OOM kills, a task backing off and a half-written last line."""
    events = [
        {"time": 10.0, "group": "/g", "kind": "group", "action": "created"},
        {"time": 10.1, "group": "/g", "kind": "sample", "usage": 0, "limit": 16 * MiB,
         "hwmark": 8 * MiB, "lwmark": 7 * MiB, "failcnt": 0, "oom_kill": 0, "state": "sleeping"},
        {"time": 10.2, "group": "/g", "kind": "daemon_state", "state": "running",
         "previous": "sleeping", "usage": 12 * MiB},
        {"time": 10.3, "group": "/g", "kind": "reclaim", "cause": "background", "scanned": 0,
         "reclaimed": 0, "usage": 12 * MiB},
        {"time": 10.4, "group": "/g", "kind": "daemon_state", "state": "backoff",
         "previous": "running", "usage": 12 * MiB},
        {"time": 10.5, "group": "/g", "kind": "charge_refused", "pages": 64,
         "counter": "memory", "usage": 16 * MiB, "limit": 16 * MiB},
        {"time": 10.6, "group": "/g", "kind": "oom", "action": "kill", "pages": 64},
        {"time": 11.0, "group": "/g", "kind": "sample", "usage": 12 * MiB, "limit": 16 * MiB,
         "hwmark": 8 * MiB, "lwmark": 7 * MiB, "failcnt": 7, "oom_kill": 1, "state": "backoff"},
    ]  # fmt: skip
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(json.dumps(e) + "\n" for e in events) + '{"time": 12, "gr')
    out = tmp_path / "oom.png"
    assert plotmod.plot(str(trace), str(out)) == "/g"
    assert out.read_bytes().startswith(PNG_SIGNATURE)


# -- explain and the reference ---------------------------------------------------------------


def test_explain():
    out = fakecgfs("explain", "memory.limit_in_bytes").stdout
    assert out.startswith("memory.limit_in_bytes\n=====")
    for text in ("0644", "kernel 6.18", "Read:", "Write:", "EINVAL", "EBUSY", "EINTR"):
        assert text in out
    assert "`" not in out and "**" not in out
    by_path = fakecgfs("explain", "/sys/fs/cgroup/memory/web/memory.limit_in_bytes").stdout
    assert by_path == out
    markdown = fakecgfs("explain", "--markdown", "memory.high_wmark_in_bytes").stdout
    assert markdown == entry(BY_NAME["memory.high_wmark_in_bytes"])
    assert markdown in Path(__file__).parent.parent.joinpath("docs", "files.md").read_text()
    listing = fakecgfs("explain").stdout
    assert all(name in listing for name in BY_NAME)
    wrong = fakecgfs("explain", "memory.limit", check=False)
    assert wrong.returncode == 1 and "memory.limit_in_bytes" in wrong.stderr


def _documented_names(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+)", text))


@pytest.mark.parametrize("name", ["fake.reclaim_daemon", "memory.oom_control", "memory.stat",
                                  "memory.numa_stat"])  # fmt: skip
def test_reference_read_formats_match_the_files(mnt, name):
    """The names a multi-line file's entry lists are the names a read shows."""
    mnt.group("g").mkdir()
    text = mnt.read("g", name)
    names = {re.split(r"[ =]", line)[0] for line in text.splitlines()}
    names = {n for n in names if not n.startswith(("total_", "hierarchical_"))}
    assert names <= _documented_names(BY_NAME[name].fmt)


def test_cli_help_lists_the_commands():
    out = fakecgfs("--help").stdout
    for command in ("top", "plot", "explain"):
        assert re.search(rf"^\s+{command}\s", out, re.M)
    assert "--trace-interval" in fakecgfs("mount", "--help").stdout
