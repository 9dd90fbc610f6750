"""The tree's own bounds: the memcg ID space, and depth (no walk recurses)."""

from __future__ import annotations

import errno
import sys

import pytest

from fakecgfs.controller import ControllerError, PageKind

from .conftest import MiB, controller, pages, trio_test

MEMCG_IDS = 65535  # IDs 1..USHRT_MAX (MEM_CGROUP_ID_MAX); the root holds one
DEPTH = 5000


@trio_test
async def test_mkdir_past_the_memcg_id_space_is_enospc():
    async with controller() as c:
        parent = c.create_group(c.root, "p")
        for i in range(MEMCG_IDS - 2):  # the root and p hold two IDs
            c.create_group(parent if i % 2 else c.root, f"g{i}")
        with pytest.raises(ControllerError) as raised:
            c.create_group(parent, "one-more")
        assert raised.value.errno == errno.ENOSPC
        with pytest.raises(ControllerError) as raised:
            c.create_group(c.root, "g0")  # an existing name is EEXIST first, as in the kernel
        assert raised.value.errno == errno.EEXIST
        c.remove_group_now(c.lookup("/g0"))
        c.create_group(parent, "one-more")  # the freed ID serves again


@trio_test
async def test_deep_trees_are_walked_without_recursion():
    assert sys.getrecursionlimit() < DEPTH
    async with controller() as c:
        node = c.root
        for _ in range(DEPTH):
            node = c.create_group(node, "d")
        assert node.path == "/d" * DEPTH
        assert c.lookup(node.path) is node
        assert sum(1 for _ in node.lineage()) == DEPTH + 1
        assert sum(1 for _ in c.root.subtree()) == DEPTH + 1
        await c.charge(node, pages(1 * MiB), PageKind.FILE)
        assert dict(c.memory_stat(c.root))["total_cache"] == 1 * MiB
        c.reclaim(c.root, pages(1 * MiB), cause="test")  # a pass over the whole subtree
        while node is not c.root:
            parent = node.parent
            c.remove_group_now(node)
            node = parent
        assert list(c.root.subtree()) == [c.root]
