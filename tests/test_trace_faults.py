"""The trace writer on a failing disk (/dev/full: every write is ENOSPC): it stops, once, and
never raises into the controller that emitted the event (issue 13)."""

from __future__ import annotations

import logging
import os

import pytest
import trio

from fakecgfs.controller import Event, EventKind, MemoryController
from fakecgfs.trace import TraceWriter


def event() -> Event:
    return Event(1.0, "/g", EventKind.GROUP, {"action": "created"})


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_disk_stops_the_trace_once(caplog):
    failures: list[str] = []
    writer = TraceWriter("/dev/full", on_failure=failures.append)
    with caplog.at_level(logging.ERROR, logger="fakecgfs"):
        writer(event())  # does not raise
        writer(event())
    assert failures == ["trace /dev/full: ENOSPC (No space left on device), tracing stopped"]
    assert writer.failure == failures[0]
    assert [r.getMessage() for r in caplog.records] == failures
    writer.close()


def test_a_failed_listener_is_dropped_and_reported():
    controller = MemoryController()
    calls: list[Event] = []
    why = "trace x: EIO (Input/output error), tracing stopped"

    def listener(e: Event) -> None:
        calls.append(e)
        controller.listener_failed(listener, why)

    async def emit_twice() -> None:
        for _ in range(2):
            controller.emit(controller.root, EventKind.GROUP, action="created")

    controller.subscribe(listener)
    trio.run(emit_twice)
    assert len(calls) == 1
    assert controller.failed_listeners == [why]


def test_a_trace_path_through_a_symlink_is_refused(tmp_path):
    (tmp_path / "target").write_text("kept\n")
    os.symlink(tmp_path / "target", tmp_path / "trace")
    with pytest.raises(OSError):
        TraceWriter(str(tmp_path / "trace"))
    assert (tmp_path / "target").read_text() == "kept\n"
