"""The mount options' one declaration (fakecgfs.mount_options): every MountOptions field has a
row, and every option goes through `fakecgfs mount`'s flags and mount.fakecgfs's -o and comes
back as the same MountOptions."""

from __future__ import annotations

import dataclasses

import pytest

from fakecgfs.cgroupfs.server import MountOptions
from fakecgfs.cli import build_parser
from fakecgfs.mount_helper import options_to_flags
from fakecgfs.mount_options import BY_FIELD, OPTIONS, argv_of, mount_options, to_argv

MiB = 1 << 20

# Every field away from its default, and the same options written by hand both ways.
EVERY = MountOptions(strict=True, swap_bytes=64 * MiB, reclaim_rate=4 * MiB, allow_other=True,
                     trace="/tmp/t.jsonl", trace_interval=0.5, era="rfc-2008",
                     real_processes=True)  # fmt: skip
EVERY_ARGV = ["--strict", "--swap", str(64 * MiB), "--reclaim-rate", str(4 * MiB),
              "--trace", "/tmp/t.jsonl", "--trace-interval", "0.5", "--allow-other",
              "--era", "rfc-2008", "--real-processes"]  # fmt: skip
EVERY_O = ("strict,swap=64M,reclaim_rate=4M,allow_other,trace=/tmp/t.jsonl,trace_interval=0.5,"
           "era=rfc-2008,real_processes")  # fmt: skip


def _parsed(flags: list[str]):
    return build_parser().parse_args(["mount", "/m", *flags])


def test_every_field_has_one_row():
    fields = [f.name for f in dataclasses.fields(MountOptions)]
    assert sorted(BY_FIELD) == sorted(fields)
    assert len({o.flag for o in OPTIONS}) == len({o.option for o in OPTIONS}) == len(OPTIONS)
    assert all(getattr(EVERY, f.name) != f.default for f in dataclasses.fields(MountOptions))


def test_round_trip_through_argv():
    assert argv_of(EVERY) == EVERY_ARGV
    assert mount_options(_parsed(EVERY_ARGV)) == EVERY
    assert argv_of(MountOptions()) == []
    assert mount_options(_parsed([])) == MountOptions()


def test_round_trip_through_o():
    assert mount_options(_parsed(options_to_flags(EVERY_O))) == EVERY
    # The rows that are not MountOptions fields: how the server process runs.
    args = _parsed(options_to_flags("log=/tmp/s.log,debug"))
    assert (args.log, args.debug) == ("/tmp/s.log", True)
    assert mount_options(args) == MountOptions()


@pytest.mark.parametrize("option", BY_FIELD.values(), ids=lambda o: o.option)
def test_each_option_alone(option):
    """One option given, by flag and by -o: only its own field moves from the default."""
    alone = dataclasses.replace(MountOptions(), **{option.field: getattr(EVERY, option.field)})
    argv = argv_of(alone)
    assert argv[0] == option.flag
    assert mount_options(_parsed(argv)) == alone
    written = option.option if option.switch else f"{option.option}={argv[1]}"
    assert options_to_flags(written) == argv


def test_what_no_flag_asks_for_is_refused():
    with pytest.raises(ValueError, match="allow_other"):
        argv_of(MountOptions(allow_other=False))
    with pytest.raises(ValueError, match="--strict is a switch"):
        to_argv({"strict": "yes"})


def test_defaults_and_none_are_left_out():
    assert to_argv({"swap": 0, "era": "6.18", "strict": False, "trace": None}) == []
    assert to_argv({"swap": "64M", "debug": True, "log": "/l"}) == [
        "--swap", "64M", "--log", "/l", "--debug"]  # fmt: skip


def test_run_passes_its_mount_options_on(monkeypatch, tmp_path):
    import fakecgfs.run
    from fakecgfs.cli import main

    calls = []
    monkeypatch.setattr(fakecgfs.run, "run", lambda *a, **kw: calls.append((a, kw)) or 0)
    trace = tmp_path / "t.jsonl"
    assert main(["run", "--strict", "--swap", "64M", "--reclaim-rate", "4M", "--trace",
                 str(trace), "--", "true"]) == 0  # fmt: skip
    (command, mount_at, options), kwargs = calls[0]
    assert (command, mount_at) == (["true"], "/sys/fs/cgroup/memory")
    assert options == ["--strict", "--swap", str(64 * MiB), "--reclaim-rate", str(4 * MiB),
                       "--trace", str(trace)]  # fmt: skip
    assert trace.exists()  # created out here, before the namespace covers anything
    assert kwargs["real_processes"] is True
    assert main(["run", "--no-real-processes", "--", "true"]) == 0
    assert calls[1][0][2] == [] and calls[1][1]["real_processes"] is False
