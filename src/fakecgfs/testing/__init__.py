"""Helpers for tests that need a real fakecgfs mount (used by this project's suite)."""

from .mount import FakecgfsMount, fuse_unavailable_reason, mounted

__all__ = ["FakecgfsMount", "fuse_unavailable_reason", "mounted"]
