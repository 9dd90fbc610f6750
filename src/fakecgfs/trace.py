"""The event trace: the controller's events as JSON lines, one object per event.

``fakecgfs mount --trace FILE`` subscribes a :class:`TraceWriter` to the controller and runs
:func:`run_sampler` beside it, which adds a ``sample`` event for each group whose usage, limits,
watermarks, failcnt, OOM kills or task state changed since its last sample (so an idle mount
writes nothing).  Every line is ``{"time": ..., "group": ..., "kind": ..., <values>}``;
:data:`SCHEMA` lists each kind's values, and docs/trace.md is generated from it
(``python -m fakecgfs.teach.tracedoc``).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import trio

from .controller import PAGE_COUNTER_MAX, PAGE_SIZE, Event, EventKind, MemCgroup, MemoryController
from .runtime import open_output

log = logging.getLogger("fakecgfs")

SAMPLE_INTERVAL = 0.1
"""Seconds between two looks of the sampler at every group (``mount --trace-interval``)."""


class TraceWriter:
    """A controller listener that appends each event to a file, one write() per line so a
    reader (tail -f, a plot) sees it at once.

    Times are written as Unix time: the controller's monotonic clock (``trio.current_time()``,
    whose origin is arbitrary) plus the offset to the wall clock taken when the writer is made,
    so traces of successive mounts appended to one file stay in order.

    The trace is a witness, never a reason to fail: the first write that fails (a full disk,
    an I/O error) stops it, says so once in the log, and calls ``on_failure`` with the reason
    (the server shows it in ``fake.daemons``); the event that was being written is dropped.
    The file is opened as every output the user names: appending, never through a symlink.
    """

    def __init__(self, path: str, on_failure: Callable[[str], None] | None = None) -> None:
        self.path = path
        self._fd = open_output(path)
        self._on_failure = on_failure
        self.failure = ""  # why the trace stopped, once it has
        try:
            self._offset = time.time() - trio.current_time()
        except RuntimeError:  # made outside a trio loop (a test): keep the clock as it is
            self._offset = 0.0

    def __call__(self, event: Event) -> None:
        if self._fd < 0:
            return
        record = event.as_dict()
        record["time"] = round(event.time + self._offset, 6)
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        try:
            while line:
                line = line[os.write(self._fd, line) :]
        except OSError as e:
            self._fail(e)

    def _fail(self, error: OSError) -> None:
        name = errno.errorcode.get(error.errno or 0, str(error.errno))
        self.failure = (
            f"trace {self.path}: {name} ({os.strerror(error.errno or 0)}), tracing stopped"
        )
        log.error("%s", self.failure)
        self.close()
        if self._on_failure is not None:
            self._on_failure(self.failure)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.close(fd)
            except OSError:
                pass


# -- the sampler ----------------------------------------------------------------------------


def _bytes_or_none(nr_pages: int | None) -> int | None:
    """A page count in bytes; None for disarmed or unlimited."""
    if nr_pages is None or nr_pages >= PAGE_COUNTER_MAX:
        return None
    return nr_pages * PAGE_SIZE


def sample_values(memcg: MemCgroup) -> dict[str, Any]:
    """The values of a ``sample`` event for one group (bytes; None: unlimited or disarmed)."""
    res = memcg.memory
    return {
        "usage": res.usage * PAGE_SIZE,
        "limit": _bytes_or_none(res.limit),
        "hwmark": _bytes_or_none(res.hwmark),
        "lwmark": _bytes_or_none(res.lwmark) if res.hwmark is not None else None,
        "failcnt": res.failcnt,
        "oom_kill": memcg.oom_kill,
        "state": memcg.reclaim_task.state.value if memcg.reclaim_task is not None else "stopped",
    }


class Sampler:
    """Emits a ``sample`` event for each group whose values changed since its last one."""

    def __init__(
        self, controller: MemoryController, values: Callable[[Any], dict[str, Any]] = sample_values
    ) -> None:
        self.controller = controller
        self.values = values  # a group's sample values (an era's controller has its own)
        self._last: dict[str, dict[str, Any]] = {}  # group path -> values of its last sample

    def sample(self) -> int:
        """Look at every group once; return how many samples were emitted."""
        seen = set()
        emitted = 0
        for memcg in self.controller.groups():
            path = memcg.path
            seen.add(path)
            values = self.values(memcg)
            if self._last.get(path) != values:
                self._last[path] = values
                self.controller.emit(memcg, EventKind.SAMPLE, **values)
                emitted += 1
        for path in set(self._last) - seen:  # removed or renamed groups
            del self._last[path]
        return emitted


async def run_sampler(
    controller: MemoryController,
    interval: float = SAMPLE_INTERVAL,
    values: Callable[[Any], dict[str, Any]] = sample_values,
) -> None:
    """Sample every ``interval`` seconds until cancelled."""
    sampler = Sampler(controller, values)
    while True:
        sampler.sample()
        await trio.sleep(interval)


# -- reading a trace ------------------------------------------------------------------------


def read_trace(path: str) -> Iterator[dict[str, Any]]:
    """The events of a trace file, skipping lines that are not whole JSON objects (a trace
    being written may end in half a line)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and {"time", "group", "kind"} <= record.keys():
                yield record


# -- the schema (docs/trace.md is generated from it) -----------------------------------------


@dataclass(frozen=True)
class KindSchema:
    summary: str  # when the event is written
    fields: tuple[tuple[str, str, str], ...]  # (name, JSON type, meaning) after time/group/kind
    example: dict[str, Any]  # one line of a real trace


COMMON_FIELDS = (
    ("time", "number", "Unix time in seconds (the controller's monotonic clock, anchored to "
     "the wall clock when the mount started)"),
    ("group", "string", "the group's path in the hierarchy: `/` for the root, `/a/b` below"),
    ("kind", "string", "what happened: one of the kinds below"),
)  # fmt: skip

SCHEMA: dict[EventKind, KindSchema] = {
    EventKind.CHARGE_REFUSED: KindSchema(
        "A charge attempt found no room under a limit (the group's `failcnt` rose). `group` is "
        "the group whose limit refused, which may be an ancestor of the charged one. Direct "
        "reclaim follows.",
        (
            ("pages", "integer", "pages the attempt wanted (one batch of the request)"),
            ("counter", "string", "`memory` or `memsw` (memory+swap): which limit refused"),
            ("usage", "integer", "that counter's usage in bytes"),
            ("limit", "integer", "that counter's limit in bytes"),
            ("real", "boolean", "present (true) when real member processes' pages caused it "
             "(`mount --real-processes`)"),
        ),
        {"time": 1795678312.52881, "group": "/demo", "kind": "charge_refused", "pages": 64,
         "counter": "memory", "usage": 66875392, "limit": 67108864},
    ),
    EventKind.RECLAIM: KindSchema(
        "One reclaim pass over the group's subtree.",
        (
            ("cause", "string", "`background` (the reclaim task), `direct` (a charge hit a "
             "limit), `limit` (a limit write shrinking usage) or `force_empty`"),
            ("scanned", "integer", "pages looked at"),
            ("reclaimed", "integer", "pages freed or moved to swap"),
            ("usage", "integer", "the group's memory usage in bytes after the pass"),
            ("real", "boolean", "present (true) when real member processes' pages caused it "
             "(`mount --real-processes`)"),
        ),
        {"time": 1795678305.32029, "group": "/demo", "kind": "reclaim", "cause": "background",
         "scanned": 46, "reclaimed": 46, "usage": 54337536},
    ),
    EventKind.DAEMON_STATE: KindSchema(
        "The group's background reclaim task changed state: `stopped`, `sleeping`, `running` "
        "(reclaiming towards the low watermark) or `backoff` (passes free nothing).",
        (
            ("state", "string", "the new state"),
            ("previous", "string", "the state it left"),
            ("usage", "integer", "the group's memory usage in bytes at the change"),
        ),
        {"time": 1795678305.319849, "group": "/demo", "kind": "daemon_state",
         "state": "running", "previous": "sleeping", "usage": 54525952},
    ),
    EventKind.OOM: KindSchema(
        "A charge found nothing left to reclaim under a limit. With `oom_kill_disable 0` the "
        "charging write fails with ENOMEM (`oom_kill` rises); with 1 it waits (`under_oom`).",
        (
            ("action", "string", "`kill` (the write failed with ENOMEM) or `wait`"),
            ("pages", "integer", "pages the refused batch wanted"),
            ("real", "boolean", "present (true) when real member processes' pages caused it "
             "(`mount --real-processes`)"),
        ),
        {"time": 1795678361.916712, "group": "/g", "kind": "oom", "action": "kill",
         "pages": 64},
    ),
    EventKind.WARNING: KindSchema(
        "A watermark setting that cannot work well (written), or a reclaim task backing off "
        "after passes that free nothing; also the `last_warning` of `fake.reclaim_daemon`.",
        (("message", "string", "the warning, in English"),),
        {"time": 1795678361.915214, "group": "/g", "kind": "warning",
         "message": "4 reclaim passes freed nothing: usage above the low watermark is not "
         "reclaimable (anonymous memory without swap?); backing off"},
    ),
    EventKind.GROUP: KindSchema(
        "A group was created (mkdir), renamed or removed (rmdir).",
        (
            ("action", "string", "`created`, `renamed` or `removed`"),
            ("old", "string", "only for `renamed`: the path it had"),
        ),
        {"time": 1795678362.523769, "group": "/h", "kind": "group", "action": "renamed",
         "old": "/g"},
    ),
    EventKind.SAMPLE: KindSchema(
        "Written by the trace's sampler (every `--trace-interval` seconds, default "
        f"{SAMPLE_INTERVAL}) for each group whose values differ from its previous sample; the "
        "first look writes one for every group. An idle mount writes none.",
        (
            ("usage", "integer", "`memory.usage_in_bytes`"),
            ("limit", "integer or null", "`memory.limit_in_bytes`; null when unlimited"),
            ("hwmark", "integer or null", "`memory.high_wmark_in_bytes`; null when disarmed"),
            ("lwmark", "integer or null", "the low watermark in force (written or default); "
             "null while the high one is disarmed"),
            ("failcnt", "integer", "`memory.failcnt`"),
            ("oom_kill", "integer", "`oom_kill` of `memory.oom_control`"),
            ("state", "string", "the reclaim task's state, as in `daemon_state`"),
        ),
        {"time": 1795678304.036853, "group": "/demo", "kind": "sample", "usage": 4194304,
         "limit": 67108864, "hwmark": 50331648, "lwmark": 33554432, "failcnt": 0,
         "oom_kill": 0, "state": "sleeping"},
    ),
}  # fmt: skip
