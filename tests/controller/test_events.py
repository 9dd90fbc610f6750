"""Events: subscribe, emit, the kinds the controller produces, and their values."""

from __future__ import annotations

import errno

import pytest
import trio

from fakecgfs.controller import ControllerError, Event, EventKind, PageKind, ReclaimTaskState

from .conftest import EventLog, MiB, controller, pages, trio_test, wait_for


def test_event_as_dict():
    e = Event(1.5, "/a", EventKind.RECLAIM, {"cause": "direct", "reclaimed": 3})
    assert e.as_dict() == {"time": 1.5, "group": "/a", "kind": "reclaim", "cause": "direct",
                           "reclaimed": 3}  # fmt: skip
    assert Event(0.0, "/", EventKind.GROUP).values == {}


def test_controller_error():
    e = ControllerError(errno.EBUSY, "group has tasks")
    assert isinstance(e, OSError)
    assert e.errno == errno.EBUSY and e.errno_name == "EBUSY"
    assert e.reason == "group has tasks" and e.strerror == "group has tasks"
    bare = ControllerError(errno.EINVAL)
    assert bare.reason == "" and bare.strerror  # the system's message
    assert ControllerError(9999).errno_name == "9999"


@trio_test
async def test_subscribe_emit_unsubscribe():
    async with controller() as c:
        first, second = EventLog(), EventLog()
        c.emit(c.root, EventKind.WARNING, message="nobody listens")  # no listeners: fine
        c.subscribe(first)
        c.subscribe(second)
        await trio.sleep(2.5)
        c.emit(c.root, EventKind.WARNING, message="hi")
        c.unsubscribe(first)
        c.emit(c.root, EventKind.WARNING, message="again")
        assert [e.values["message"] for e in first.events] == ["hi"]
        assert [e.values["message"] for e in second.events] == ["hi", "again"]
        assert first.events[0] == Event(2.5, "/", EventKind.WARNING, {"message": "hi"})
        with pytest.raises(ValueError):
            c.unsubscribe(first)


@trio_test
async def test_a_listener_may_unsubscribe_itself_while_called():
    async with controller() as c:
        seen = []

        def once(event):
            seen.append(event)
            c.unsubscribe(once)

        c.subscribe(once)
        other = EventLog()
        c.subscribe(other)
        c.create_group(c.root, "a")
        c.create_group(c.root, "b")
        assert len(seen) == 1 and len(other.events) == 2


@trio_test
async def test_every_kind_is_emitted_with_time_group_and_values():
    async with controller() as c:
        log = EventLog()
        c.subscribe(log)
        await trio.sleep(1)
        g = c.create_group(c.root, "g")
        await c.set_limit(g, pages(64 * MiB))
        await c.set_high_wmark(g, pages(48 * MiB))
        c.set_low_wmark(g, pages(48 * MiB) - 1)  # a gap under one batch: warning
        await c.charge(g, pages(60 * MiB), PageKind.FILE)
        await wait_for(
            lambda: (
                g.reclaim_task.stats.passes > 0
                and g.reclaim_task.state is ReclaimTaskState.SLEEPING
            )
        )
        await trio.sleep(1)
        c.set_oom_kill_disable(g, False)
        await c.charge(g, pages(60 * MiB), PageKind.FILE)  # over the limit: direct reclaim
        with pytest.raises(ControllerError):
            await c.charge(g, pages(80 * MiB), PageKind.ANON)  # OOM
        await c.stop_reclaim_task(g)
        await c.remove_group(g)
        # SAMPLE is written by the trace's sampler (fakecgfs.trace), not by the controller.
        assert {e.kind for e in log.events} == set(EventKind) - {EventKind.SAMPLE}
        assert all(e.group == "/g" for e in log.events)
        assert all(e.time >= 1.0 for e in log.events)
        assert [e.time for e in log.events] == sorted(e.time for e in log.events)

        refused = log.of(EventKind.CHARGE_REFUSED)[0]
        assert refused.values["counter"] == "memory"
        assert refused.values["limit"] == 64 * MiB and refused.values["usage"] <= 64 * MiB
        assert refused.values["pages"] > 0
        causes = {e.values["cause"] for e in log.of(EventKind.RECLAIM)}
        assert {"background", "direct"} <= causes
        for e in log.of(EventKind.RECLAIM):
            assert set(e.values) == {"cause", "scanned", "reclaimed", "usage"}
        state = log.of(EventKind.DAEMON_STATE)[0]
        assert set(state.values) == {"state", "previous", "usage"}
        assert log.of(EventKind.OOM)[0].values == {"action": "kill", "pages": 64}
        assert "gap" in log.of(EventKind.WARNING)[0].values["message"]
        actions = [e.values["action"] for e in log.of(EventKind.GROUP)]
        assert actions == ["created", "removed"]


@trio_test
async def test_reclaim_and_force_empty_causes():
    async with controller() as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, pages(4 * MiB), PageKind.FILE)
        log = EventLog()
        c.subscribe(log)
        result = c.reclaim(g, 32, cause="manual")
        assert result.reclaimed >= 32
        [e] = log.events
        assert e.values["cause"] == "manual" and e.values["reclaimed"] == result.reclaimed
        assert e.values["usage"] == g.memory.usage * 4096
        await c.set_limit(g, pages(2 * MiB))
        await c.force_empty(g)
        causes = [e.values["cause"] for e in log.of(EventKind.RECLAIM)]
        assert "limit" in causes and "force_empty" in causes
        assert g.memory.usage == 0
