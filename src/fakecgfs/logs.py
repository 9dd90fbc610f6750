"""The server's log: what happened to a mount (mounted, with which options; warnings; OOM
kills; unmounted), written to stderr, which is the log file when `fakecgfs mount` started the
server in the background and the terminal with --foreground.  --debug adds every controller
event and each request that failed unexpectedly."""

from __future__ import annotations

import logging

from .controller.events import Event, EventKind

log = logging.getLogger("fakecgfs")

LOGGED_KINDS = {EventKind.WARNING: logging.WARNING, EventKind.OOM: logging.INFO,
                EventKind.GROUP: logging.DEBUG}  # fmt: skip
"""Controller events worth a line, and at which level; with --debug, every event is logged."""


def configure(*, debug: bool = False) -> None:
    """One line per record, with the time: the log of a mount that ran for hours is read
    afterwards."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s fakecgfs[%(process)d] %(levelname)s: %(message)s",
                        datefmt="%Y-%m-%dT%H:%M:%S")  # fmt: skip
    # fusepy logs every errno answered (each ENOENT of a lookup) at DEBUG: noise, not events.
    logging.getLogger("fuse").setLevel(logging.INFO)


def log_event(event: Event) -> None:
    """A controller listener: warnings and OOM kills (and, at DEBUG, everything)."""
    level = LOGGED_KINDS.get(event.kind, logging.DEBUG)
    if not log.isEnabledFor(level):
        return
    details = " ".join(f"{name}={value}" for name, value in event.values.items())
    log.log(level, "%s %s: %s", event.group, event.kind.value, details)
