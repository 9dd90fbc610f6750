"""The event trace: the controller's events as JSON lines, one object per event."""

from __future__ import annotations

import json
from typing import IO

from .controller import Event


class TraceWriter:
    """A controller listener that appends each event to a file, flushed line by line so a
    reader (tail -f, a plot) sees it at once."""

    def __init__(self, path: str) -> None:
        self._file: IO[str] = open(path, "a", encoding="utf-8", buffering=1)

    def __call__(self, event: Event) -> None:
        self._file.write(json.dumps(event.as_dict(), separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()
