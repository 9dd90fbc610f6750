"""The review's picture: one group on the two mounts side by side, from their traces.

Three rows per mount, sharing the time axis: usage with both watermarks, reclaim passes of the
reclaim task (cumulative), and the CPU time the task spent running (cumulative).  The
columns are the patch as posted and the repaired default.  matplotlib is imported only here,
and only when drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..trace import read_trace

MiB = 1 << 20
FIGSIZE = (12.8, 7.2)
DPI = 150
TITLES = ("the patch as posted (--era rfc-2008)", "repaired (default)")


@dataclass
class Run:
    """One group's story in one trace, times in seconds from the group's first event."""

    usage: list[tuple[float, float]] = field(default_factory=list)  # (t, MiB)
    hwmark: list[tuple[float, float]] = field(default_factory=list)
    lwmark: list[tuple[float, float]] = field(default_factory=list)
    passes: list[tuple[float, int]] = field(default_factory=list)  # (t, passes so far)
    cpu: list[tuple[float, float]] = field(default_factory=list)  # (t, seconds running so far)
    end: float = 0.0


def collect(events: list[dict[str, Any]], group: str) -> Run:
    mine = [e for e in events if e["group"] == group]
    run = Run()
    if not mine:
        return run
    t0 = mine[0]["time"]
    running_since: float | None = None
    cpu = 0.0
    for e in mine:
        t = e["time"] - t0
        kind = e["kind"]
        if kind == "sample":
            run.usage.append((t, e["usage"] / MiB))
            for key, series in (("hwmark", run.hwmark), ("lwmark", run.lwmark)):
                if e.get(key) is not None:
                    series.append((t, e[key] / MiB))
        elif kind == "reclaim" and e.get("cause") == "background":
            run.passes.append((t, len(run.passes) + 1))
        elif kind == "daemon_state":
            if running_since is not None:
                cpu += t - running_since
                run.cpu.append((t, cpu))
            running_since = t if e["state"] == "running" else None
            run.cpu.append((t, cpu))
        run.end = t
    if running_since is not None:
        run.cpu.append((run.end, cpu + run.end - running_since))
    return run


def _xy(points: Sequence[tuple[float, float]], end: float) -> tuple[list[float], list[float]]:
    if not points:
        return [0.0, end], [0.0, 0.0]
    xs = [p[0] for p in points] + [end]
    ys = [p[1] for p in points] + [points[-1][1]]
    return xs, ys


def draw(runs: tuple[Run, Run]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    axes = fig.subplots(3, 2, sharex="col", sharey="row")
    for column, (run, title) in enumerate(zip(runs, TITLES, strict=True)):
        end = max(run.end, 1e-3)
        usage, passes, cpu = axes[0][column], axes[1][column], axes[2][column]
        usage.set_title(title, fontsize=12, fontweight="bold")
        lines = ((run.usage, "usage", "#1f4e9c", "-"),
                 (run.hwmark, "high watermark", "#e66101", "--"),
                 (run.lwmark, "low watermark", "#1a9641", "--"))  # fmt: skip
        for points, label, color, style in lines:
            usage.plot(*_xy(points, end), drawstyle="steps-post", color=color, ls=style,
                       lw=2, label=label)  # fmt: skip
        passes.plot(*_xy(run.passes, end), drawstyle="steps-post", color="#e66101", lw=2)
        cpu.plot(*_xy(run.cpu, end), color="#b2182b", lw=2)
        cpu.set_xlabel("time (s)")
        for ax in (usage, passes, cpu):
            ax.grid(True, alpha=0.25)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
    axes[0][0].set_ylabel("memory (MiB)")
    axes[1][0].set_ylabel("reclaim passes")
    axes[2][0].set_ylabel("task CPU (s)")
    axes[0][1].legend(loc="lower right", fontsize=9, frameon=False)
    fig.suptitle("the reclaim task between and above the watermarks, nothing reclaimable",
                 fontsize=15, x=0.01, ha="left")  # fmt: skip
    return fig


def plot_side_by_side(posted_trace: Path, repaired_trace: Path, output: str, *,
                      group: str) -> None:  # fmt: skip
    """Draw ``group`` of both traces into ``output`` (PNG, or SVG by its extension)."""
    import matplotlib

    matplotlib.use("Agg")
    runs = tuple(collect(list(read_trace(str(path))), group)
                 for path in (posted_trace, repaired_trace))  # fmt: skip
    fig = draw(runs)  # type: ignore[arg-type]
    fig.savefig(output, format="svg" if output.endswith(".svg") else "png")
