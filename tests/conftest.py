"""Shared fixtures: a real fakecgfs mount in a temp dir, unmounted even when a test fails."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fakecgfs.testing import fuse_unavailable_reason, mounted

# Under CI, a skip fails the test unless ci_policy.CI_MAY_SKIP says why CI may take it.
pytest_plugins = ["ci_policy"]
pytest.register_assert_rewrite("ci_policy")  # imported here before pytest loads it as a plugin
from ci_policy import UNDER_CI  # noqa: E402

# Shell snippets in the tests call `fakecgfs` as a user would: put this venv's on the PATH.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI (CI=true, which CI sets), a machine where FUSE cannot be used fails the run at
    once: otherwise every test that mounts would skip, most of the suite, and the run would
    still look green.  Elsewhere those tests skip, saying why."""
    if UNDER_CI:
        reason = fuse_unavailable_reason()
        if reason:
            pytest.exit(f"CI=true, but FUSE is unusable here: {reason}", returncode=1)


@pytest.fixture
def mount_factory(tmp_path):
    """Call with extra `fakecgfs mount` options to get a FakecgfsMount; at most one per test."""
    stack = []

    def make(*options: str):
        reason = fuse_unavailable_reason()
        if reason:
            pytest.skip(reason)
        cm = mounted(tmp_path, *options)
        stack.append(cm)
        return cm.__enter__()

    yield make
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


@pytest.fixture
def mnt(mount_factory):
    """A default mount (no swap, full-speed reclaim, fake.* files shown)."""
    return mount_factory()
