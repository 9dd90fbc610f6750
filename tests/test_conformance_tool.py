"""Tests of the conformance tool itself (no kernel, no FUSE).

Recording against a plain directory is not meaningful, so the helpers that capture
answers, the safety guards, the catalogue's shape and ``diff`` are tested instead.
"""

from __future__ import annotations

import errno
import json
import os

import pytest

from fakecgfs import conformance as c

# -- answer capture ------------------------------------------------------------------------


def test_errno_name():
    assert c.errno_name(errno.EINVAL) == "EINVAL"
    assert c.errno_name(errno.ENOENT) == "ENOENT"
    assert c.errno_name(99999) == "E99999"


def test_capture_records_errno_and_syscall(tmp_path):
    missing = str(tmp_path / "missing")
    enoent = {"errno": "ENOENT", "syscall": "open"}
    assert c.capture("open", os.open, missing, os.O_RDONLY) == enoent
    assert c.is_err(c.capture("rmdir", os.rmdir, missing))
    assert c.capture("stat", lambda: 42) == 42
    assert not c.is_err(42)


def test_capture_does_not_swallow_other_exceptions():
    with pytest.raises(ZeroDivisionError):
        c.capture("write", lambda: 1 / 0)


def test_steps_labels_are_unique_and_ordered(tmp_path):
    s = c.Steps()
    s.set("read", "a")
    s.set("read", "b")
    s.set("read", "c")
    assert list(s.d.items()) == [("read", "a"), ("read#2", "b"), ("read#3", "c")]


def test_steps_call(tmp_path):
    s = c.Steps()
    assert s.call("mkdir", "mkdir", os.mkdir, str(tmp_path / "d")) is None
    assert s.call("mkdir again", "mkdir", os.mkdir, str(tmp_path / "d")) is None
    assert s.call("len", "read", len, b"abc") == 3
    assert s.call("shown", "read", lambda: b"x\n", show=c.text) == b"x\n"
    assert s.d == {
        "mkdir": "ok",
        "mkdir again": {"errno": "EEXIST", "syscall": "mkdir"},
        "len": 3,
        "shown": "x\n",
    }


def test_ctx_read_write_record_errnos(tmp_path):
    base = tmp_path / "fakecgfs-conformance-test"
    base.mkdir()
    ctx = c.Ctx(str(tmp_path), str(base))
    f = base / "value"
    f.write_bytes(b"")
    assert ctx.write(str(f), b"4096\n") == 5
    assert ctx.read(str(f)) == "4096\n"
    assert ctx.read(str(base / "missing")) == {"errno": "ENOENT", "syscall": "open"}
    assert ctx.write(str(base), b"1") == {"errno": "EISDIR", "syscall": "open"}
    assert ctx.read(str(base)) == {"errno": "EISDIR", "syscall": "read"}
    assert ctx.stat(str(base / "missing")) == {"errno": "ENOENT", "syscall": "stat"}


# -- byte escaping ---------------------------------------------------------------------------


def test_text_is_lossless_through_json():
    data = bytes(range(256))
    assert json.loads(json.dumps(c.text(data))).encode("latin-1") == data


@pytest.mark.parametrize(
    "raw, escaped",
    [
        (b"4096", "4096"),
        (b"4096\n", "4096\\n"),
        (b"\t\r\v", "\\t\\r\\v"),
        (b"4096\x00junk", "4096\\x00junk"),
        (b"a\\b", "a\\\\b"),
        (b"\xff", "\\xff"),
        (b"", ""),
    ],
)
def test_escape_bytes(raw, escaped):
    assert c.escape_bytes(raw) == escaped
    assert c.unescape_bytes(escaped) == raw


def test_escape_roundtrip_all_bytes():
    data = bytes(range(256)) * 2
    assert c.unescape_bytes(c.escape_bytes(data)) == data
    assert c.unescape_bytes(c.escape_bytes(data, extra=b" /")) == data
    assert c.escape_bytes(data).isascii()


def test_input_label():
    assert c.input_label(b"") == "(empty)"
    assert c.input_label(b"1 M") == "1\\x20M"
    assert c.input_label(b"a/b") == "a\\x2fb"
    assert c.input_label(b"0x1000k") == "0x1000k"
    assert "/" not in c.input_label(b"//")


def test_step_label_abbreviates():
    assert c.step_label(b"") == "(empty)"
    assert c.step_label(b"8192\n") == "8192\\n"
    long = c.step_label(b" " * 4092 + b"8192")
    assert "(4096 bytes)" in long and len(long) < 60


def test_oct_mode_and_stat_dict(tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    os.chmod(f, 0o644)
    d = c.stat_dict(os.stat(f))
    assert d["type"] == "reg" and d["mode"] == "0644" and d["nlink"] == 1
    assert set(d) == {"type", "mode", "size", "nlink", "blocks", "blksize"}  # no times/inodes
    assert c.oct_mode(0o41755) == "1755"


# -- safety guards ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"0",
        b"-0",
        b"+0",
        b"00",
        b"0x0",
        b"0\n",
        b" 0 ",
        b"1",
        b"1.5",
        b"010",
        b"4194304",
        b"1234",
        b"abc 1",
        b"0\x00",
        b"2147483647 1",
    ],
)
def test_pid_guard_refuses_anything_that_may_name_a_process(data):
    assert not c.pid_input_is_safe(data)


def test_pid_guard_accepts_the_catalogue_inputs():
    for _, data in c.PID_INPUTS:
        assert c.pid_input_is_safe(data), data
    assert c.pid_input_is_safe(b"4194305")
    assert c.pid_input_is_safe(b"-1")
    assert c.pid_input_is_safe(b"")


def test_ctx_guard(tmp_path):
    base = tmp_path / "fakecgfs-conformance-test"
    base.mkdir()
    ctx = c.Ctx(str(tmp_path), str(base))
    ctx.guard(str(base))
    ctx.guard(str(base / "a" / "b"))
    ctx.guard(str(base / "a" / ".."))
    for bad in (
        str(tmp_path),
        str(tmp_path / "other"),
        str(base / ".." / "x"),
        str(base) + "-sibling",
    ):
        with pytest.raises(c.GuardError):
            ctx.guard(bad)
    with pytest.raises(c.GuardError):
        ctx.open(str(tmp_path / "x"), os.O_WRONLY | os.O_CREAT)
    with pytest.raises(c.GuardError):
        ctx.mkdir(str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
    (base / "tasks").write_text("")
    with pytest.raises(c.GuardError):
        ctx.write(str(base / "tasks"), b"0")
    assert (base / "tasks").read_text() == ""


def test_remove_tree(tmp_path):
    base = tmp_path / "fakecgfs-conformance-test"
    (base / "a" / "b").mkdir(parents=True)
    (base / "a" / "newfile").write_text("")
    os.symlink("tasks", base / "a" / "symlink")
    (base / "p" / ("n" * 200)).mkdir(parents=True)
    assert c.remove_tree(str(base)) == []
    assert not base.exists()
    assert c.remove_tree(str(base)) == []


def test_record_cleans_up_after_itself(tmp_path):
    # not a meaningful recording (a plain directory), only the bookkeeping is checked
    data = c.record(str(tmp_path), only="root/stat/.")
    assert [p["id"] for p in data["probes"]] == ["root/stat/."]
    assert data["meta"]["probe_count"] == 1 and data["meta"]["leftovers"] == []
    assert os.listdir(tmp_path) == []


# -- catalogue -------------------------------------------------------------------------------


def test_catalogue_shape():
    probes = c.build_catalogue()
    ids = [p.id for p in probes]
    assert len(ids) >= 400
    assert len(set(ids)) == len(ids)
    assert ids == [p.id for p in c.build_catalogue()]  # deterministic order
    assert len(c.BYTE_INPUTS) >= 60
    assert "write/memory.limit_in_bytes/0x1000k" in ids
    areas = c.area_counts(ids)
    for area in (
        "root",
        "child",
        "read",
        "fd-read",
        "write",
        "fd-write",
        "open",
        "event_control",
        "mkdir",
        "rmdir",
        "rename",
        "create",
        "meta",
        "held-fd",
        "inherit",
    ):
        assert areas.get(area, 0) > 0, area
    # areas are contiguous, so the report groups cleanly
    seen: list[str] = []
    for pid in ids:
        area = pid.split("/", 1)[0]
        if not seen or seen[-1] != area:
            assert area not in seen, area
            seen.append(area)


def test_watermark_probes_pair_with_limit_probes():
    probes = c.build_catalogue()
    ids = {p.id for p in probes}
    paired = [p for p in probes if p.compare_with]
    assert len(paired) == 2 * len(c.BYTE_INPUTS)
    for p in paired:
        assert p.fakecgfs_only
        assert p.compare_with in ids
        assert p.compare_with.startswith("write/memory.limit_in_bytes/")
        assert p.id.split("/")[-1] == p.compare_with.split("/")[-1]


# -- diff ------------------------------------------------------------------------------------


def _rec(*entries):
    return {
        "meta": {},
        "probes": [
            dict({"id": pid, "answer": answer, "machine_dependent": False}, **extra)
            for pid, answer, extra in entries
        ],
    }


GOLDEN = _rec(
    ("write/memory.limit_in_bytes/4096", {"write": 4, "read": "4096\n"}, {}),
    ("read/memory.stat", {"read": "cache 0\n"}, {}),
    ("root/read/memory.usage_in_bytes", {"read": "123\n"}, {"machine_dependent": True}),
    (
        "write/memory.high_wmark_in_bytes/4096",
        {"write": {"errno": "ENOENT", "syscall": "open"}},
        {
            "fakecgfs_only": True,
            "compare_with": {
                "id": "write/memory.limit_in_bytes/4096",
                "answer": {"write": 4, "read": "4096\n"},
            },
        },
    ),
)


def _copy(rec):
    return json.loads(json.dumps(rec))


def test_diff_identical():
    assert c.diff(GOLDEN, _copy(GOLDEN)) == []
    assert c.compared_count(GOLDEN, GOLDEN) == 2


def test_diff_one_changed_answer():
    new = _copy(GOLDEN)
    new["probes"][0]["answer"]["read"] = "8192\n"
    diffs = c.diff(GOLDEN, new)
    assert [d.id for d in diffs] == ["write/memory.limit_in_bytes/4096"]
    assert diffs[0].golden == {"write": 4, "read": "4096\n"}
    assert diffs[0].new == {"write": 4, "read": "8192\n"}


def test_diff_missing_probe_counts_on_either_side():
    new = _copy(GOLDEN)
    del new["probes"][1]
    diffs = c.diff(GOLDEN, new)
    assert [d.id for d in diffs] == ["read/memory.stat"] and diffs[0].new is c.MISSING
    diffs = c.diff(new, GOLDEN)
    assert [d.id for d in diffs] == ["read/memory.stat"] and diffs[0].golden is c.MISSING
    assert "<missing>" in diffs[0].render()


def test_diff_ignores_machine_dependent_by_default():
    new = _copy(GOLDEN)
    new["probes"][2]["answer"]["read"] = "456\n"
    assert c.diff(GOLDEN, new) == []
    assert [d.id for d in c.diff(GOLDEN, new, ignore_machine_dependent=False)] == [
        "root/read/memory.usage_in_bytes"
    ]


def test_diff_ignores_fakecgfs_only_by_default_and_compare_with():
    new = _copy(GOLDEN)
    new["probes"][3]["answer"] = {"write": 4, "read": "4096\n"}
    assert c.diff(GOLDEN, new) == []
    assert len(c.diff(GOLDEN, new, ignore_fakecgfs_only=False)) == 1
    assert c.diff_compare_with(GOLDEN, new) == []
    new["probes"][3]["answer"] = {"write": 4, "read": "8192\n"}
    assert [d.id for d in c.diff_compare_with(GOLDEN, new)] == [
        "write/memory.high_wmark_in_bytes/4096"
    ]


def test_diff_cli_summary_line(tmp_path, capsys):
    g, n = tmp_path / "g.json", tmp_path / "n.json"
    g.write_text(json.dumps(GOLDEN))
    n.write_text(json.dumps(GOLDEN))
    assert c.main(["diff", str(g), str(n)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["0 differences over 2 probes"]

    changed = _copy(GOLDEN)
    changed["probes"][1]["answer"] = {"read": {"errno": "EINVAL", "syscall": "read"}}
    n.write_text(json.dumps(changed))
    assert c.main(["diff", str(g), str(n)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "1 differences over 2 probes"
    assert out[0] == "DIFF read/memory.stat"
    assert sum(1 for line in out if "differences over" in line) == 1

    assert c.main(["diff", str(g), str(n), "--no-ignore-machine-dependent"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "1 differences over 3 probes"


def test_summary_line():
    assert c.summary_line(0, 1801) == "0 differences over 1801 probes"


def test_listings_leave_out_fakecgfs_extensions_only():
    from fakecgfs.conformance import is_extension

    assert is_extension("memory.high_wmark_in_bytes") and is_extension("fake.charge")
    assert not is_extension("memory.limit_in_bytes") and not is_extension("fakecgfs-x")


def test_help_names_the_command_and_is_plain_text(capsys):
    with pytest.raises(SystemExit) as exit_:
        c.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fakecgfs conformance ")
    assert "python -m" not in out and "``" not in out and "::" not in out
