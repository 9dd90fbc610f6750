"""The teaching and observability commands: ``top``, ``plot`` and ``explain``.

Their parsers are defined here and their modules imported only when run, so that every other
``fakecgfs`` command starts without loading rich or matplotlib.
"""

from __future__ import annotations

import argparse

REFRESH_INTERVAL = 0.25
"""Seconds between two frames of ``top`` (``--interval``)."""


def _top(args: argparse.Namespace) -> int:
    from .top import run

    return run(args)


def _plot(args: argparse.Namespace) -> int:
    from .plot import run

    return run(args)


def _explain(args: argparse.Namespace) -> int:
    from .explain import run

    return run(args)


def _review(args: argparse.Namespace) -> int:
    from .review import run

    return run(args)


def add_commands(sub) -> None:
    p = sub.add_parser("top", help="live view of every group: usage bars, watermarks, tasks",
                       description="A live view of the groups under MOUNTPOINT, read through "
                       "its files: a usage bar marked with the low (L) and high (H) watermarks "
                       "and the limit (|), the reclaim task's state and counters, failcnt, OOM "
                       "kills and the last warnings. Ctrl-C quits. Colour only on a terminal, "
                       "never with NO_COLOR or TERM=dumb; where the screen cannot be redrawn "
                       "(TERM=dumb, a pipe), one frame after another.")  # fmt: skip
    p.add_argument("mountpoint")
    p.add_argument("--once", action="store_true", help="print one frame and exit (for scripts)")
    p.add_argument(
        "--width",
        type=int,
        default=None,
        metavar="COLUMNS",
        help="draw for this many columns (default: the terminal's, or 80)",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=REFRESH_INTERVAL,
        metavar="S",
        help=f"seconds between frames (default {REFRESH_INTERVAL})",
    )
    p.set_defaults(func=_top)

    p = sub.add_parser("plot", help="draw a group's usage over time from a trace (PNG or SVG)",
                       description="Draw one group's memory usage over time from a trace "
                       "written by `mount --trace`: the limit and both watermarks as lines, "
                       "the reclaim task's running spans shaded, reclaim passes, charges that "
                       "hit a limit (failcnt) and OOM kills marked, with labels that say what "
                       "happened (the task waking, sleeping, backing off).")  # fmt: skip
    p.add_argument("trace", metavar="TRACE")
    p.add_argument("--group", "-g", metavar="G",
                   help="the group to draw, e.g. /demo (default: the one with the most "
                   "background reclaim)")  # fmt: skip
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write (default fakecgfs-plot.png); .svg writes SVG",
    )
    p.add_argument(
        "--format",
        choices=("png", "svg"),
        default=None,
        help="force the format (default: from the output's extension)",
    )
    p.add_argument("--title", help="the title (default: 'Background reclaim in G')")
    p.set_defaults(func=_plot)

    p = sub.add_parser("explain", help="what a control file is, reads, accepts and refuses",
                       description="Print FILE's entry of the control-file reference "
                       "(docs/files.md): mode, where it appears, origin, read format, accepted "
                       "writes and errors. FILE may be a path (memory/demo/tasks). Without "
                       "FILE, list every control file.")  # fmt: skip
    p.add_argument("file", nargs="?", metavar="FILE")
    p.add_argument("--markdown", action="store_true", help="print the Markdown source")
    p.set_defaults(func=_explain)

    p = sub.add_parser(
        "review",
        help="the 2008 review of the RFC, live on two mounts",
        description="Balbir Singh's review of the 2008 background-reclaim RFC, "
        "comment by comment, on two mounts side by side: the patch as posted "
        "(--era rfc-2008) and the repaired default. See docs/review-lesson.md.",
    )
    p.add_argument("--step", type=int, metavar="N", help="only step N (default: all)")
    p.add_argument("--all", action="store_true", help="every step (the default)")
    p.add_argument("--no-pause", action="store_true", help="do not wait for Enter between steps")
    p.add_argument(
        "--plot",
        metavar="FILE",
        help="afterwards, draw step 7 on both mounts side by side (PNG or SVG)",
    )
    p.set_defaults(func=_review)
