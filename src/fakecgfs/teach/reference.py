"""docs/files.md, generated from the control-file table: ``python -m fakecgfs.teach.reference``."""

from __future__ import annotations

import sys

from ..cgroupfs.cftypes import CFTYPES, CfType, Origin

HEADER = """\
# Control files

Generated from `src/fakecgfs/cgroupfs/cftypes.py` by `python -m fakecgfs.teach.reference`;
do not edit by hand (a test fails when this page is stale).

Modes follow the kernel's rule (a read handler gives 0444, a write handler 0200, both 0644).
Writes are parsed one `write()` at a time; an empty write changes nothing, a write over 4096
bytes is `E2BIG`, a NUL ends the value. Reading a file without a read handler, or writing one
without a write handler, is `EINVAL`, as on the kernel.

| file | mode | where | origin | what it is |
|---|---|---|---|---|
"""


def entry(cft: CfType) -> str:
    return f"| `{cft.name}` | {cft.mode:04o} | {cft.where.value} | {cft.origin.value} | {cft.doc} |"


def render() -> str:
    order = {Origin.KERNEL: 0, Origin.VENDOR: 1, Origin.RFC: 2, Origin.FAKECGFS: 3}
    rows = sorted(CFTYPES, key=lambda c: (order[c.origin], c.name))
    return HEADER + "\n".join(entry(c) for c in rows) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
