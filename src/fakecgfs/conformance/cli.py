"""``fakecgfs conformance``: record, diff, list."""

from __future__ import annotations

import argparse
import json
import sys

from .compare import Recording, compared_count, diff, diff_compare_with, summary_line
from .record import build_catalogue, record

DESCRIPTION = """\
Differential conformance probe for a cgroup v1 memory hierarchy.

record runs a fixed, ordered list of small syscall probes against the mount root
of a v1 memory hierarchy (the kernel's /sys/fs/cgroup/memory or a fakecgfs mount)
and writes every answer to JSON; diff compares two recordings.  The kernel's
recording is the golden answer that fakecgfs must reproduce.

Safe on the kernel's own hierarchy:
  - everything is created under one group ROOT/fakecgfs-conformance-<hex>, and
    every mutating step refuses a path outside it;
  - ROOT itself is only listed, stat-ed and read;
  - tasks and cgroup.procs are only given inputs that cannot name a process
    (junk, negative, above INT_MAX or above the largest PID), so no process is
    ever attached;
  - everything created is removed at the end, even on failure, and anything
    left over is reported (exit status 2).

Each answer is an ordered map of step -> value: text read (latin-1, lossless),
a byte count, a stat summary, or {"errno": "EINVAL", "syscall": "write"}.
Nothing racy is recorded (no times, inode numbers, fd numbers or PIDs).
"""

EPILOG = """\
examples:
  fakecgfs conformance record /sys/fs/cgroup/memory -o kernel.json
  fakecgfs conformance record /mnt/fake -o fake.json
  fakecgfs conformance diff kernel.json fake.json
  fakecgfs conformance list --only write/memory.limit
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fakecgfs conformance", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="run the probes against a v1 memory hierarchy")
    rec.add_argument("root", help="mount root of the hierarchy, e.g. /sys/fs/cgroup/memory")
    rec.add_argument("-o", "--output", required=True, help="JSON file to write")
    rec.add_argument("--only", metavar="PREFIX", help="only probes whose id starts with PREFIX")
    dif = sub.add_parser("diff", help="compare two recordings")
    dif.add_argument("golden")
    dif.add_argument("new")
    dif.add_argument(
        "--ignore-machine-dependent",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip probes flagged machine_dependent (default: on)",
    )
    dif.add_argument(
        "--ignore-fakecgfs-only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip fakecgfs-only probes (default: on)",
    )
    dif.add_argument(
        "--compare-with",
        action="store_true",
        help="instead compare NEW's fakecgfs-only probes with GOLDEN's paired answers",
    )
    lst = sub.add_parser("list", help="print the probe ids")
    lst.add_argument("--only", metavar="PREFIX")
    return parser


def _load(path: str) -> Recording:
    with open(path, encoding="utf-8") as fh:
        recording: Recording = json.load(fh)
    return recording


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    if args.cmd == "list":
        for probe in build_catalogue():
            if args.only is None or probe.id.startswith(args.only):
                print(probe.id)
        return 0

    if args.cmd == "record":
        data = record(args.root, only=args.only, log=lambda m: print(m, file=sys.stderr))
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.write("\n")
        meta = data["meta"]
        print(f"recorded {meta['probe_count']} probes from {meta['root']} "
              f"in {meta['duration_seconds']:.2f}s -> {args.output}")  # fmt: skip
        if meta["leftovers"]:
            print("left behind: " + ", ".join(meta["leftovers"]), file=sys.stderr)
            return 2
        return 0

    golden, new = _load(args.golden), _load(args.new)
    if args.compare_with:
        diffs = diff_compare_with(golden, new)
        total = sum(1 for p in new.get("probes", []) if p.get("compare_with"))
    else:
        diffs = diff(golden, new, args.ignore_machine_dependent, args.ignore_fakecgfs_only)
        total = compared_count(golden, new, args.ignore_machine_dependent,
                               args.ignore_fakecgfs_only)  # fmt: skip
    for d in diffs:
        print(d.render())
    print(summary_line(len(diffs), total))
    return 0 if not diffs else 1
