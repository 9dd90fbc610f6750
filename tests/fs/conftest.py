"""Fixtures of the end-to-end filesystem tests.

``shared`` is one default mount for a whole module, for tests that cannot disturb each other;
each of them works in its own fresh group from the ``group`` fixture, removed afterwards.  Tests
that need mount options, or that end the server, use ``mount_factory``/``mnt`` (tests/conftest.py).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from fakecgfs import mounting
from fakecgfs.cgroupfs.cftypes import CFTYPES
from fakecgfs.testing import FakecgfsMount, fuse_unavailable_reason, mounted

# The security tests' fixtures (a root mount with delegated users), offered to every module here
# so that the modules using them need not import them (a test's parameter would shadow the import).
from .security import other_user_reads, world  # noqa: F401  fixtures, used by pytest by name

_names = itertools.count()


@pytest.fixture(scope="module")
def shared() -> FakecgfsMount:
    """A default mount shared by a module's tests.  It lives in a 0755 directory outside
    pytest's 0700 temp tree, so that tests running commands as nobody can reach it."""
    reason = fuse_unavailable_reason()
    if reason:
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="fakecgfs-fs-"))
    os.chmod(directory, 0o755)
    try:
        with mounted(directory) as mount:
            yield mount
    finally:
        mountpoint = str(directory / "mnt")
        if not (mounting.is_fakecgfs_mount(mountpoint) or mounting.is_stale(mountpoint)):
            shutil.rmtree(directory, ignore_errors=True)


CONTROL_FILES = frozenset(cft.name for cft in CFTYPES)


def remove_tree(path: Path) -> None:
    """rmdir a group and its subgroups, deepest first; ignore what is already gone."""
    try:
        os.rmdir(path)
        return
    except OSError:
        pass
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        if name not in CONTROL_FILES:
            remove_tree(path / name)
    try:
        os.rmdir(path)
    except OSError:
        pass


@pytest.fixture
def group(shared, request) -> Path:
    """A fresh child group of the shared mount's root."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.originalname)[:60]
    path = shared.path / f"{name}-{next(_names)}"
    os.mkdir(path)
    yield path
    remove_tree(path)
