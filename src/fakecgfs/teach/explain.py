"""``fakecgfs explain FILE``: one control file's entry of docs/files.md, in a terminal."""

from __future__ import annotations

import argparse
import shutil
import sys

from ..cgroupfs.cftypes import CFTYPES
from .reference import entry, lookup, ordered, plain, suggestions


def run(args: argparse.Namespace) -> int:
    if args.file is None:
        width = max(len(c.name) for c in CFTYPES)
        for listed in ordered():
            print(f"{listed.name:<{width}}  {listed.mode:04o}  {listed.origin.value:<13}  "
                  f"{listed.doc}")  # fmt: skip
        return 0
    cft = lookup(args.file)
    if cft is None:
        close = suggestions(args.file)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        print(f"fakecgfs: no control file {args.file!r}{hint}", file=sys.stderr)
        return 1
    if args.markdown:
        sys.stdout.write(entry(cft))
    else:
        width = min(shutil.get_terminal_size((80, 24)).columns, 100) - 1
        sys.stdout.write(plain(cft, width))
    return 0
