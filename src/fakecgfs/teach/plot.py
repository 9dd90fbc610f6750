"""``fakecgfs plot TRACE [--group G] -o out.png``: one group's usage over time, from a trace.

The picture a teacher puts on a slide: the group's memory usage as a line, its limit and both
watermarks as labelled step lines, the spans where the background reclaim task was running
shaded, and under it a strip with one tick per event: background reclaim passes, direct
reclaim, charges that hit a limit (failcnt: most succeed after direct reclaim) and OOM (the
charges that failed, or wait).  Labels say what the trace shows (the task waking, sleeping or
backing off; limit hits and failed charges) and are moved until no text overlaps another.
PNG or SVG, chosen by the output's extension or ``--format``.  Uses matplotlib's Agg renderer:
no display needed.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from unittest import mock

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

MiB = 1 << 20
FIGSIZE = (12.8, 7.2)  # inches: 16:9, a slide
DPI = 150  # a 1920x1080 PNG

COLORS = {
    "usage": "#1f4e9c",
    "limit": "#b2182b",
    "hwmark": "#e66101",
    "lwmark": "#1a9641",
    "running": "#fdb863",
    "backoff": "#c2a5cf",
    "oom": "#b2182b",
}


@dataclass
class Series:
    """What the trace says about one group, times in seconds from the group's first event."""

    group: str
    t0: float = 0.0
    usage: list[tuple[float, float]] = field(default_factory=list)  # (t, MiB)
    # (t, limit, high watermark, low watermark)
    settings: list[tuple[float, float, float, float]] = field(default_factory=list)
    states: list[tuple[float, str]] = field(default_factory=list)  # (t, task state)
    background: list[float] = field(default_factory=list)  # background passes that freed pages
    idle_passes: list[float] = field(default_factory=list)  # background passes that freed nothing
    direct: list[float] = field(default_factory=list)  # direct reclaim passes (a limit was hit)
    refused: list[float] = field(default_factory=list)  # refused charges (failcnt)
    oom: list[float] = field(default_factory=list)  # OOM kills
    oom_waits: list[float] = field(default_factory=list)
    warnings: list[tuple[float, str]] = field(default_factory=list)
    end: float = 0.0


def _mib(value: Any) -> float:
    return math.nan if value is None else value / MiB


def groups_in(events: list[dict[str, Any]]) -> list[str]:
    return sorted({e["group"] for e in events})


def pick_group(events: list[dict[str, Any]]) -> str:
    """The group with the most background reclaim, else the busiest child group, else /."""
    counts: dict[str, int] = {}
    for e in events:
        if e["kind"] == "reclaim" and e.get("cause") == "background":
            counts[e["group"]] = counts.get(e["group"], 0) + 1
    if not counts:
        for e in events:
            if e["group"] != "/":
                counts[e["group"]] = counts.get(e["group"], 0) + 1
    return max(counts, key=lambda g: (counts[g], g)) if counts else "/"


def collect(events: list[dict[str, Any]], group: str) -> Series:
    mine = sorted((e for e in events if e["group"] == group), key=lambda e: e["time"])
    if not mine:
        raise ValueError(f"no events of group {group} in the trace")
    series = Series(group, t0=mine[0]["time"])
    for e in mine:
        t = e["time"] - series.t0
        kind = e["kind"]
        if "usage" in e and not (kind == "charge_refused" and e.get("counter") != "memory"):
            series.usage.append((t, _mib(e["usage"])))
        if kind == "sample":
            series.settings.append((t, _mib(e["limit"]), _mib(e["hwmark"]), _mib(e["lwmark"])))
            if not series.states or series.states[-1][1] != e["state"]:
                series.states.append((t, e["state"]))
        elif kind == "daemon_state":
            series.states.append((t, e["state"]))
        elif kind == "reclaim":
            if e.get("cause") == "background":
                (series.background if e.get("reclaimed") else series.idle_passes).append(t)
            elif e.get("cause") == "direct":
                series.direct.append(t)
        elif kind == "charge_refused":
            series.refused.append(t)
        elif kind == "oom":
            (series.oom if e.get("action") == "kill" else series.oom_waits).append(t)
        elif kind == "warning":
            series.warnings.append((t, e.get("message", "")))
        series.end = t
    return series


def _steps(points: list[tuple[float, float]], end: float) -> tuple[list[float], list[float]]:
    xs = [p[0] for p in points] + ([end] if points else [])
    ys = [p[1] for p in points] + ([points[-1][1]] if points else [])
    return xs, ys


def _value_at(points: list[tuple[float, float]], t: float) -> float:
    value = math.nan
    for pt, pv in points:
        if pt > t:
            break
        value = pv
    return value


def _state_at(states: list[tuple[float, str]], t: float) -> str | None:
    state = None
    for st, value in states:
        if st > t:
            break
        state = value
    return state


def _spans(states: list[tuple[float, str]], wanted: str, end: float) -> list[tuple[float, float]]:
    spans = []
    start = None
    for t, state in states:
        if state == wanted and start is None:
            start = t
        elif state != wanted and start is not None:
            spans.append((start, t))
            start = None
    if start is not None:
        spans.append((start, end))
    return spans


def _margin_labels(ax, labels: list[tuple[float, str, str]]) -> list:
    """Each line's name and last value in the right margin, at its height (separate() moves
    them apart once the figure is laid out)."""
    return [ax.annotate(text, (1.0, y), xycoords=ax.get_yaxis_transform(), xytext=(6, 0),
                        textcoords="offset points", va="center", ha="left", color=color,
                        fontsize=11, fontweight="bold", annotation_clip=False)
            for y, text, color in sorted(labels, key=lambda item: item[0])]  # fmt: skip


def _line_end(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Where a step line (steps-post, NaN: not drawn) ends: x and the value it ends at."""
    last = max(i for i, y in enumerate(ys) if not math.isnan(y))
    return (xs[last + 1] if last + 1 < len(xs) else xs[last]), ys[last]


def draw(series: Series, *, title: str | None = None, source: str = ""):
    """The figure (matplotlib's object-oriented API, no pyplot state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax, strip = fig.subplots(2, 1, sharex=True, height_ratios=(5, 1.15))
    end = max(series.end, 1e-3)
    pad = end * 0.02

    for start, stop in _spans(series.states, "running", end):
        ax.axvspan(start, stop, color=COLORS["running"], alpha=0.28, lw=0)
    for start, stop in _spans(series.states, "backoff", end):
        ax.axvspan(start, stop, color=COLORS["backoff"], alpha=0.35, lw=0)

    settings = series.settings
    labels: list[tuple[float, str, str]] = []
    names = (("limit", "limit", 1), ("hwmark", "high watermark", 2), ("lwmark", "low watermark", 3))
    for key, name, index in names:
        points = [(s[0], s[index]) for s in settings]
        xs, ys = _steps(points, end)
        if xs and not all(math.isnan(y) for y in ys):
            ax.plot(xs, ys, drawstyle="steps-post", color=COLORS[key],
                    lw=2.4 if key == "limit" else 2, ls="-" if key == "limit" else "--",
                    label=name)  # fmt: skip
            x_end, y_end = _line_end(xs, ys)
            ends_early = x_end < end * 0.98
            labels.append((y_end, f"{name}\n{_size(y_end)}" + (" (until "
                           f"{x_end:.1f} s)" if ends_early else ""), COLORS[key]))  # fmt: skip

    xs, ys = _steps(series.usage, end)
    ax.plot(xs, ys, drawstyle="steps-post", color=COLORS["usage"], lw=2.6, label="usage",
            zorder=5)  # fmt: skip
    if series.oom:
        ax.plot(series.oom, [_value_at(series.usage, t) for t in series.oom], "X",
                color=COLORS["oom"], ms=12, mec="white", zorder=6, label="OOM kill")  # fmt: skip

    annotations = _annotate(ax, series)

    top = max([y for y in ys if not math.isnan(y)] + [1.0])
    for s in settings:
        top = max([top] + [v for v in s[1:] if not math.isnan(v)])
    ax.set_ylim(0, top * 1.12)
    margin = _margin_labels(ax, labels)
    ax.set_xlim(-pad, end + pad)
    ax.set_ylabel("memory (MiB)", fontsize=12)
    ax.grid(True, alpha=0.25)
    from matplotlib.patches import Patch

    handles, names = ax.get_legend_handles_labels()
    if _spans(series.states, "running", end):
        handles.append(Patch(color=COLORS["running"], alpha=0.4))
        names.append("reclaim task running")
    if _spans(series.states, "backoff", end):
        handles.append(Patch(color=COLORS["backoff"], alpha=0.5))
        names.append("reclaim task backing off")
    ax.legend(handles, names, loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=10,
              frameon=False, ncols=len(names))  # fmt: skip
    fig.suptitle(title or f"Background reclaim in {series.group}", fontsize=16,
                 fontweight="bold", x=0.01, ha="left")  # fmt: skip
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    rows = [
        ("background pass", series.background, COLORS["hwmark"]),
        ("pass, nothing freed", series.idle_passes, COLORS["backoff"]),
        ("direct reclaim", series.direct, COLORS["usage"]),
        ("limit hit (failcnt)", series.refused, COLORS["limit"]),
        ("OOM (charge failed or waits)", series.oom + series.oom_waits, "black"),
    ]
    rows = [r for r in rows if r[1]] or rows[:1]
    strip.eventplot([r[1] for r in rows], colors=[r[2] for r in rows], lineoffsets=range(len(rows)),
                    linelengths=0.7, linewidths=1.0)  # fmt: skip
    strip.set_yticks(range(len(rows)), [f"{r[0]} ({len(r[1])})" for r in rows], fontsize=9)
    strip.set_ylim(-0.6, len(rows) - 0.4)
    strip.invert_yaxis()
    strip.set_xlabel("time (s)", fontsize=12)
    strip.grid(True, axis="x", alpha=0.25)
    for side in ("top", "right"):
        strip.spines[side].set_visible(False)
    if source:
        fig.text(0.995, 0.004, source, ha="right", va="bottom", fontsize=7, color="0.5")
    separate(fig, ax, margin + annotations)
    return fig


def _size(mib: float) -> str:
    return f"{mib:.0f} MiB" if abs(mib - round(mib)) < 0.05 else f"{mib:.1f} MiB"


def _annotate(ax, series: Series) -> list:
    """Say what the trace shows, each label pointing at where it happens: the task's first
    wake-up above the high watermark, how that episode ended (asleep at the low watermark, or
    backing off because its passes free nothing), and the charges that hit a limit, telling
    those direct reclaim made room for (failcnt) from those that failed (OOM kills)."""
    span = max(series.end, 1e-3)
    labels = []

    def label(text: str, t: float, at: float, dy: float) -> None:
        if math.isnan(at):
            return
        right_half = t > span * 0.55  # keep the text inside the plot, clear of the margin
        x = t - span * 0.03 if right_half else t + span * 0.03
        labels.append(ax.annotate(text, (t, at), xytext=(x, max(at + dy, 0.5)), fontsize=10,
                                  ha="right" if right_half else "left", color="0.15",
                                  bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none",
                                        "alpha": 0.85},
                                  arrowprops={"arrowstyle": "->", "color": "0.25"}))  # fmt: skip

    top = max([u for _, u in series.usage if not math.isnan(u)] + [1.0])
    running = _spans(series.states, "running", series.end)
    if running:
        start, stop = running[0]
        if not math.isnan(_value_at([(s[0], s[2]) for s in series.settings], start + 1e-9)):
            label("usage above the high watermark:\nthe task wakes", start,
                  _value_at(series.usage, start), top * 0.08)  # fmt: skip
        after = _state_at(series.states, stop + 1e-9)
        ending = {"sleeping": "at the low watermark:\nthe task sleeps",
                  "backoff": "its passes free nothing:\nthe task backs off",
                  "stopped": "the task is stopped"}  # fmt: skip
        if stop < series.end and after in ending:
            label(ending[after], stop, _value_at(series.usage, stop), -top * 0.4)
    else:
        backoff = _spans(series.states, "backoff", series.end)
        if backoff:
            t = backoff[0][0]
            label("its passes free nothing:\nthe task backs off", t, _value_at(series.usage, t),
                  -top * 0.4)  # fmt: skip
    if series.refused:
        t = series.refused[0]
        failed = len(series.oom)
        text = (f"limit hit {len(series.refused)}x (failcnt): direct reclaim\n"
                + ("in the charging write made room" if not failed else
                   f"made room, but {failed} charge{'s' if failed > 1 else ''} failed "
                   "(OOM kill)"))  # fmt: skip
        label(text, t, _value_at(series.usage, t), -top * 0.55)
    return labels


def _shift(annotation, ax, home: tuple[float, float], pixels: float) -> None:
    """Put an annotation's text ``pixels`` above ``home`` (its coordinates as first given)."""
    if annotation.anncoords == "offset points":
        annotation.xyann = (home[0], home[1] + pixels * 72 / ax.figure.dpi)
        return
    x, y = ax.transData.transform(home)
    annotation.xyann = tuple(ax.transData.inverted().transform((x, y + pixels)))


def _overlaps(a, b, pad: float) -> bool:
    return not (a.x1 + pad <= b.x0 or b.x1 + pad <= a.x0 or a.y1 + pad <= b.y0
                or b.y1 + pad <= a.y0)  # fmt: skip


def _text_box(text, renderer):
    """The box of a text's letters (an annotation's own extent would include its arrow)."""
    from matplotlib.text import Text

    return Text.get_window_extent(text, renderer)


def drawn_texts(fig) -> tuple[list, object]:
    """The texts a render of ``fig`` really draws (tick labels outside the view are made but
    not drawn), recorded as they are drawn, and the renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # lays the figure out: every text gets its place
    renderer = canvas.get_renderer()
    drawn: list = []
    draw = Text.draw

    def record(text, renderer):
        if text.get_visible() and text.get_text().strip() and text not in drawn:
            drawn.append(text)
        return draw(text, renderer)

    # the one way to see what is drawn; Annotation.draw ends in Text.draw
    with mock.patch.object(Text, "draw", record):
        fig.draw(renderer)
    return drawn, renderer


def separate(fig, ax, movable: list, *, pad: float = 4.0) -> None:
    """Move the annotations ``movable`` up or down, in order, until none overlaps another
    text of the figure (the line labels in the margin, the legend, the title, the ticks,
    each other), staying inside the plot."""
    for annotation in movable:
        if annotation.anncoords != "offset points":  # not the margin's: they need the room
            annotation.set_in_layout(False)  # moving it must not move the axes
    drawn, renderer = drawn_texts(fig)
    fixed = [_text_box(t, renderer) for t in drawn if t not in movable]
    inside = ax.get_window_extent(renderer)
    placed: list = []
    for annotation in movable:
        home = annotation.xyann
        for step in range(0, 80):
            # 0, +1, -1, +2, -2 ... steps of a quarter line (pixels) from where it was put
            shift = (step + 1) // 2 * (1 if step % 2 else -1) * 6.0
            _shift(annotation, ax, home, shift)
            box = _text_box(annotation, renderer)
            if box.y0 < inside.y0 or box.y1 > inside.y1:
                continue
            if not any(_overlaps(box, other, pad) for other in fixed + placed):
                break
        placed.append(_text_box(annotation, renderer))


RC_PARAMS: dict[RcKeyType, Any] = {"svg.fonttype": "none", "font.family": "DejaVu Sans"}
"""SVG text kept as text (editable on a slide); one font everywhere, so sizes are known."""


def plot(trace: str, output: str, *, group: str | None = None, fmt: str | None = None,
         title: str | None = None) -> str:  # fmt: skip
    """Write the picture of ``group`` (default: the one with most background reclaim) from
    ``trace`` to ``output``; return the group drawn."""
    import matplotlib

    matplotlib.use("Agg")
    from ..trace import read_trace

    events = list(read_trace(trace))
    if not events:
        raise ValueError(f"{trace}: no events (was the mount started with --trace?)")
    if group is None:
        group = pick_group(events)
    elif not group.startswith("/"):
        group = "/" + group
    if group not in groups_in(events):
        known = ", ".join(groups_in(events))
        raise ValueError(f"no group {group} in {trace}; groups: {known}")
    series = collect(events, group)
    fmt = fmt or os.path.splitext(output)[1].lstrip(".").lower() or "png"
    with matplotlib.rc_context(RC_PARAMS):
        fig = draw(series, title=title, source=f"fakecgfs trace {os.path.basename(trace)}")
        fig.savefig(output, format=fmt, dpi=DPI)
    return group


MISSING_MATPLOTLIB = (
    "fakecgfs plot needs matplotlib, an optional extra: pip install 'fakecgfs[plot]'\n"
    "(in a checkout: pip install -e '.[plot]', or ./scripts/setup)"
)


def run(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"fakecgfs: {MISSING_MATPLOTLIB}", file=sys.stderr)
        return 1
    output = args.output or f"fakecgfs-plot.{args.format or 'png'}"
    try:
        group = plot(args.trace, output, group=args.group, fmt=args.format, title=args.title)
    except (OSError, ValueError) as e:
        print(f"fakecgfs: {e}", file=sys.stderr)
        return 1
    print(f"fakecgfs: wrote {output} (group {group})")
    return 0
