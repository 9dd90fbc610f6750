"""The plot's texts never overlap, checked on the text boxes of the rendered figure, and its
labels say what the trace shows.  The traces in tests/data/traces were recorded with
`mount --trace`: the demo's run, the tutorial's section 8 (one charge, reclaim paced at 4M/s)
and section 9 (anonymous memory without swap: the task backs off)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")  # the [plot] extra

from matplotlib.text import Text  # noqa: E402

from fakecgfs.teach import plot as plotmod  # noqa: E402
from fakecgfs.trace import read_trace  # noqa: E402

TRACES = Path(__file__).parent / "data" / "traces"
MiB = 1 << 20


def _figure(events: list[dict], group: str):
    with matplotlib.rc_context(plotmod.RC_PARAMS):
        fig = plotmod.draw(plotmod.collect(events, group), source="trace.jsonl")
        texts, renderer = plotmod.drawn_texts(fig)
        boxes = [(t.get_text(), Text.get_window_extent(t, renderer)) for t in texts]
    return fig, boxes


def _overlapping(boxes) -> list[tuple[str, str]]:
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2)
            if box_a.overlaps(box_b)]  # fmt: skip


def _labels(boxes) -> str:
    return "\n".join(text for text, _ in boxes)


@pytest.mark.parametrize(
    "trace, group",
    [
        ("demo.jsonl", "/demo"),
        ("tutorial-section8.jsonl", "/demo"),
        ("tutorial-section9-backoff.jsonl", "/anon"),
    ],
)
def test_no_text_overlaps_another(trace, group):
    _, boxes = _figure(list(read_trace(str(TRACES / trace))), group)
    assert len(boxes) > 10  # title, legend, line labels, ticks, annotations
    assert _overlapping(boxes) == []


def test_what_the_labels_say():
    _, demo = _figure(list(read_trace(str(TRACES / "demo.jsonl"))), "/demo")
    text = _labels(demo)
    assert "the task wakes" in text and "the task sleeps" in text
    # The demo's limit hits all succeeded after direct reclaim: none is called refused.
    assert "direct reclaim\nin the charging write made room" in text
    assert "refused" not in text and "limit hit (failcnt)" in text

    _, backoff = _figure(list(read_trace(str(TRACES / "tutorial-section9-backoff.jsonl"))),
                         "/anon")  # fmt: skip
    text = _labels(backoff)
    assert "the task backs off" in text and "sleeps" not in text


def test_failed_charges_are_told_from_reclaimed_ones():
    sample = {"group": "/g", "kind": "sample", "limit": 16 * MiB, "hwmark": 8 * MiB,
              "lwmark": 7 * MiB, "oom_kill": 0}  # fmt: skip
    events = [
        {**sample, "time": 10.0, "usage": 0, "failcnt": 0, "state": "sleeping"},
        {"time": 10.2, "group": "/g", "kind": "daemon_state", "state": "running",
         "previous": "sleeping", "usage": 12 * MiB},
        {"time": 10.4, "group": "/g", "kind": "daemon_state", "state": "backoff",
         "previous": "running", "usage": 12 * MiB},
        *({"time": 10.5 + i / 100, "group": "/g", "kind": "charge_refused", "pages": 64,
           "counter": "memory", "usage": 16 * MiB, "limit": 16 * MiB} for i in range(3)),
        {"time": 10.6, "group": "/g", "kind": "oom", "action": "kill", "pages": 64},
        {**sample, "time": 11.0, "usage": 12 * MiB, "failcnt": 3, "state": "backoff"},
    ]  # fmt: skip
    _, boxes = _figure(events, "/g")
    text = _labels(boxes)
    assert (
        "limit hit 3x (failcnt): direct reclaim\nmade room, but 1 charge failed (OOM kill)"
    ) in text
    assert "its passes free nothing:\nthe task backs off" in text
    assert _overlapping(boxes) == []
