"""An attacker's-eye review of OPEN and RELEASE answered in the session (session._open,
session._release, after libfuse showed a node's path: session._learn_path).

The attacker is uid 65534 with a delegated group on a root mount with allow_other, or a second
user on a user's own mount (where the server checks permissions itself, fs._permit).  Each test
is one attack; docs/security.md ("Opens answered by the session") lists them."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .security import PYTHON, USER_A, World

pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None or os.getuid() != 0,
                                reason="needs root and setpriv")  # fmt: skip

LIMIT = "memory.limit_in_bytes"
LONGEST_NAME = "n" * 255  # NAME_MAX: the longest a group's name can make each step of a path


def server_rss(world: World) -> int:
    """The server's resident memory in bytes."""
    with open(f"/proc/{world.mount.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) << 10
    raise AssertionError("no VmRSS")


# A chain of groups, each named with NAME_MAX bytes, made by descriptor (no path is ever longer
# than a name), then every file of its deepest groups opened twice (libfuse's open, then the
# session's): libfuse names each node by its whole path, a quarter of a megabyte at this depth.
DEEP_CHAIN = r"""
import os, sys
group, depth, opened_groups, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fd = os.open(group, os.O_RDONLY | os.O_DIRECTORY)
chain = []
for _ in range(depth):
    os.mkdir(name, dir_fd=fd)
    chain.append(fd)
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
chain.append(fd)
opens = 0
for directory in chain[-opened_groups:]:
    for entry in os.listdir(directory):
        if entry == name:
            continue
        for _ in range(2):
            try:
                os.close(os.open(entry, os.O_RDONLY, dir_fd=directory))
                opens += 1
            except PermissionError:  # write-only files
                pass
print(opens, flush=True)
sys.stdin.readline()  # the server is measured now
for directory in reversed(chain[:-1]):
    os.rmdir(name, dir_fd=directory)
"""
DEEP = 1024  # groups: paths of 256 KiB
DEEP_OPENED = 16  # of them whose files are opened (some 900 files)
KEPT_GROWTH_MAX = 64 << 20
"""What the server may grow by after the chain is made, walked and removed: its groups and
nodes are a few megabytes; paths kept whole would be hundreds."""


def test_deep_paths_do_not_make_the_server_keep_their_bytes(world):
    """The session's learnt paths (NODE_PATHS_KEPT), OPEN's decoded paths (OPEN_PATHS_KEPT) and
    the filesystem's resolved paths (RESOLVED_MAX) are bounded in number; a path is bounded only
    by the depth of the tree.  A user with a delegated group made them a quarter of a megabyte
    each and the server kept hundreds of megabytes of them (a megabyte each at the 4096 groups a
    user may make: gigabytes).  Paths longer than PATH_MAX, which no system call can name, are
    no longer kept."""
    group = world.delegate("deep", USER_A)
    before = server_rss(world)
    attack = subprocess.Popen([*as_nobody(), PYTHON, "-c", DEEP_CHAIN, str(group), str(DEEP),
                               str(DEEP_OPENED), LONGEST_NAME], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert int(attack.stdout.readline()) > 500  # opens made
        grown = server_rss(world) - before
    finally:
        attack.communicate("\n", timeout=300)
    assert attack.returncode == 0
    assert grown < KEPT_GROWTH_MAX


def as_nobody() -> list[str]:
    return ["setpriv", f"--reuid={USER_A}", f"--regid={USER_A}", "--clear-groups"]
