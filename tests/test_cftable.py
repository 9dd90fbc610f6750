"""The control-file table object the filesystem is given: the default one answers as the
module-level functions of cftypes.py, and an era's table is its own."""

from __future__ import annotations

from fakecgfs.cgroupfs import cftypes
from fakecgfs.cgroupfs.table import MODERN, CfTable
from fakecgfs.controller import MemCgroup
from fakecgfs.eras.rfc2008.cftypes import TABLE as RFC2008


def test_the_default_table_is_cftypes():
    root = MemCgroup("", None)
    child = MemCgroup("c", root)
    for memcg in (root, child):
        for strict in (False, True):
            assert MODERN.files_of(memcg, strict=strict) == cftypes.files_of(memcg, strict=strict)
            for cft in cftypes.CFTYPES:
                assert MODERN.lookup(memcg, cft.name, strict=strict) is \
                    cftypes.lookup(memcg, cft.name, strict=strict)  # fmt: skip


def test_a_table_hides_fake_files_when_strict_and_sorts_by_name():
    root = MemCgroup("", None)
    names = [cft.name for cft in RFC2008.files_of(root, strict=True)]
    assert names == sorted(names) and not any(n.startswith("fake.") for n in names)
    assert RFC2008.lookup(root, "fake.charge", strict=True) is None
    assert RFC2008.lookup(root, "fake.charge") is not None
    assert RFC2008.lookup(root, "memory.oom_control") is None
    assert CfTable([]).files_of(root) == []
