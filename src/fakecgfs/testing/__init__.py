"""Helpers for tests that need a real fakecgfs mount: this project's suite, the pytest plugin
(fakecgfs.pytest_plugin) and the test-kit commands (mkgroup, write, expect, run)."""

from .mount import FakecgfsMount, fuse_unavailable_reason, mounted

__all__ = ["FakecgfsMount", "fuse_unavailable_reason", "mounted"]
