"""What a terminal can be given: colour (only on a tty, never with NO_COLOR or TERM=dumb, as
https://no-color.org and terminfo's "dumb" ask), redrawing in place, and a progress line for
waits that last."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TextIO

PROGRESS_AFTER = 1.0
"""Seconds a wait stays silent before it shows progress: short waits print nothing."""


def is_dumb(environ: Mapping[str, str] | None = None) -> bool:
    """TERM=dumb (or unset): the terminal cannot move the cursor or show attributes."""
    env = os.environ if environ is None else environ
    return env.get("TERM", "dumb") in ("", "dumb")


def wants_colour(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour on ``stream``: a terminal that is not dumb, and NO_COLOR unset or empty."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if is_dumb(env):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def can_redraw(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """A terminal where a line can be rewritten in place (\\r and erase to end of line)."""
    try:
        return stream.isatty() and not is_dumb(environ)
    except (AttributeError, ValueError):
        return False


class Progress:
    """One status line on ``stream``, rewritten in place, shown only once the wait has lasted
    PROGRESS_AFTER seconds and only where it can be redrawn; erased at the end.

    ``show()`` returns False, so that it can ride along a polling predicate:
    ``wait_until(lambda: done() or progress.show(state), ...)``.
    """

    def __init__(self, stream: TextIO, what: str, *, after: float = PROGRESS_AFTER) -> None:
        self._stream = stream
        self._what = what
        self._after = after
        self._enabled = can_redraw(stream)
        self._start = time.monotonic()
        self._shown = False

    def show(self, state: Callable[[], str]) -> bool:
        """Redraw the line with ``state()`` (called only when the line is shown)."""
        elapsed = time.monotonic() - self._start
        if self._enabled and elapsed >= self._after:
            self._stream.write(f"\r\033[K{self._what}: {state()} ({elapsed:.0f}s)")
            self._stream.flush()
            self._shown = True
        return False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()
