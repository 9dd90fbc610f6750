"""Structured events: what the controller did, for later layers to log, trace or draw."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class EventKind(str, enum.Enum):
    CHARGE_REFUSED = "charge_refused"  # a charge attempt hit a limit (failcnt rose)
    RECLAIM = "reclaim"  # one reclaim pass: cause (direct, background, limit, force_empty)
    DAEMON_STATE = "daemon_state"  # the reclaim task changed state (kind named as recorded)
    OOM = "oom"  # a charge found nothing to reclaim: killed (oom_kill) or waiting (under_oom)
    WARNING = "warning"  # a watermark setting that cannot work well, or a task backing off
    GROUP = "group"  # a group was created, renamed or removed
    SAMPLE = "sample"  # a group's usage and settings changed (the trace's periodic sampler)


@dataclass(frozen=True, slots=True)
class Event:
    time: float  # the controller's clock (trio.current_time()), seconds
    group: str  # the group's path, "/" for the root
    kind: EventKind
    values: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"time": self.time, "group": self.group, "kind": self.kind.value, **self.values}


Listener = Callable[[Event], None]
