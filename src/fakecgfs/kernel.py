"""The kernel's values that every layer shares (the controller, the parsers, the readers such
as ``fakecgfs top`` and ``status``), in a module that imports nothing: reading a constant must
not start the controller (or trio).  controller/constants.py re-exports them."""

PAGE_SIZE = 4096
"""Bytes per page: x86_64's base page, what every byte value is rounded to."""

PAGE_COUNTER_MAX = (2**63 - 1) // PAGE_SIZE
"""The "unlimited" page count of mm/page_counter.c on 64-bit (LONG_MAX / PAGE_SIZE)."""

UNLIMITED = PAGE_COUNTER_MAX * PAGE_SIZE
"""What an unlimited counter reads back as, in bytes (9223372036854771712): a limit at or above
it is no limit."""

PATH_MAX = 4096
"""The longest path a system call takes (linux/limits.h).  A path FUSE hands the server can be
longer (libfuse names a node by its whole path, however deep), so caches of paths keep only
paths up to this long: what they hold is bounded in bytes, not only in entries."""
