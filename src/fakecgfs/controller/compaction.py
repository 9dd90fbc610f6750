"""Giving memory back after a burst of rmdirs: what ``MemoryController.compact()`` does.

A removed group is freed at once by reference counting (nothing of it is in a reference cycle),
but freed memory stays in the process until the allocator gives it back:

* dict tables keep their peak size after deletions: a parent's ``children`` is rebuilt;
* the interpreter's free lists (small tuples, floats, dicts...) keep blocks scattered all over
  the heap: ``gc.collect()`` empties them (and frees any cycle other layers left);
* glibc keeps free pages in the middle of its heap until ``malloc_trim`` returns them.

The last step only helps for memory glibc manages: run the server with PYTHONMALLOC=malloc.
CPython's own small-object allocator (the default) returns an arena only when every object in
it is gone, and any long-lived object allocated during a burst (an int of a parent's counters,
a trio object) keeps the arena it landed in, freed groups and all.

Other layers keep tables of their own (the filesystem's open handles, say): they register a
hook with ``MemoryController.on_compact()``, run before the free lists are emptied.  Nothing
here knows of them, or of any FUSE library.

None of it changes a value, an order or an identity anyone holds (dicts are rebuilt in place).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from collections.abc import Callable
from typing import Any

COMPACT_AFTER_REMOVALS = 1000
"""Removals that make a compaction worth its cost (a full gc pass, a walk of the tree)."""

COMPACT_IDLE = 0.2
"""Seconds without a removal before compacting: a burst of rmdirs is compacted once, after it."""


def shrink_dict(table: dict[Any, Any]) -> bool:
    """Rebuild ``table`` in place if its hash table is oversized (a dict never shrinks on
    deletion); keeps insertion order and identity.  True if it was rebuilt."""
    copy = dict(table)
    if sys.getsizeof(copy) >= sys.getsizeof(table):
        return False
    table.clear()  # frees the old table
    table.update(copy)
    return True


def _load_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # no glibc (musl has no malloc_trim)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_malloc_trim = _load_malloc_trim()


def clear_free_lists() -> None:
    """Empty the interpreter's free lists: a full collection does (it also frees any cycle)."""
    gc.collect()


def trim_malloc() -> None:
    """Let glibc hand its free pages back to the system (nothing without glibc)."""
    if _malloc_trim is not None:
        _malloc_trim(0)
