"""Reclaim on counts: priorities, clean/dirty/referenced file pages, anon and swap."""

from __future__ import annotations

from fakecgfs.controller import PageKind
from fakecgfs.controller.lru import Lruvec
from fakecgfs.controller.memcg import MemCgroup
from fakecgfs.controller.vmscan import ReclaimResult, SwapSpace, shrink_lruvec, try_to_free_pages


def charged(memcg: MemCgroup, kind: PageKind, nr: int, *, dirty: bool = False) -> None:
    """Charge and commit pages the way the controller does, without a controller."""
    for node in memcg.lineage():
        node.memory.charge_unchecked(nr)
        node.memsw.charge_unchecked(nr)
    memcg.commit_charge(kind, nr, dirty=dirty)


def test_reclaim_result_add():
    a = ReclaimResult(scanned=1, reclaimed=2, swapped_out=3, written_back=4)
    a.add(ReclaimResult(scanned=10, reclaimed=20, swapped_out=30, written_back=40))
    assert a == ReclaimResult(scanned=11, reclaimed=22, swapped_out=33, written_back=44)


def test_swap_space_free():
    s = SwapSpace(10)
    assert s.free() == 10
    s.used = 4
    assert s.free() == 6
    s.total = 2  # shrunk below what is in use
    assert s.free() == 0
    assert SwapSpace().free() == 0


def test_shrink_lruvec_drops_clean_file_pages():
    v = Lruvec()
    v.add_new(PageKind.FILE, 4096)
    r = ReclaimResult()
    shrink_lruvec(v, 0, None, r)  # priority 0 scans the whole list
    assert r.reclaimed == 4096 and r.scanned == 4096
    assert v.resident() == 0


def test_shrink_lruvec_scans_lru_size_shifted_by_priority():
    v = Lruvec()
    v.add_new(PageKind.FILE, 4096)
    r = ReclaimResult()
    shrink_lruvec(v, 10, None, r)
    assert r.scanned == 4096 >> 10 == r.reclaimed
    assert v.inactive_file.nr == 4096 - 4


def test_dirty_file_pages_are_written_back_then_freed_by_a_later_scan():
    v = Lruvec()
    v.add_new(PageKind.FILE, 100, dirty=True)
    r = ReclaimResult()
    shrink_lruvec(v, 0, None, r)
    assert r.reclaimed == 0 and r.written_back == 100
    assert v.inactive_file.nr == 100 and v.dirty() == 0
    shrink_lruvec(v, 0, None, r)
    assert r.reclaimed == 100 and v.resident() == 0


def test_referenced_pages_are_promoted_then_age_back():
    v = Lruvec()
    v.add_new(PageKind.FILE, 100)
    v.mark_referenced(PageKind.FILE, 100)
    r = ReclaimResult()
    shrink_lruvec(v, 0, None, r)
    # Referenced inactive pages are activated (the scan consumed their bit), not freed.
    assert r.reclaimed == 0
    assert (v.inactive_file.nr, v.active_file.nr, v.active_file.referenced) == (0, 100, 0)
    # Next scan: the inactive list is smaller, so the active one is aged, then dropped.
    shrink_lruvec(v, 0, None, r)
    assert v.resident() == 0 and r.reclaimed == 100


def test_referenced_active_pages_keep_their_place_once():
    v = Lruvec()
    v.active_file.add(100, referenced=100)
    r = ReclaimResult()
    shrink_lruvec(v, 0, None, r)
    assert (v.active_file.nr, v.active_file.referenced, r.reclaimed) == (100, 0, 0)
    shrink_lruvec(v, 0, None, r)
    assert v.resident() == 0 and r.reclaimed == 100


def test_anon_pages_are_not_scanned_without_swap():
    v = Lruvec()
    v.add_new(PageKind.ANON, 100)
    r = ReclaimResult()
    shrink_lruvec(v, 0, None, r)
    assert r == ReclaimResult()
    shrink_lruvec(v, 0, SwapSpace(0), r)  # a swap device with no room is no swap
    assert r == ReclaimResult()


def test_anon_pages_go_to_swap_while_it_has_room():
    v = Lruvec()
    v.add_new(PageKind.ANON, 100)
    swap = SwapSpace(60)
    r = ReclaimResult()
    shrink_lruvec(v, 0, swap, r)
    assert r.reclaimed == r.swapped_out == 60
    assert swap.used == 60 and v.swapped == 60 and v.resident(PageKind.ANON) == 40


def test_try_to_free_pages_stops_at_the_target_and_uncharges_the_lineage():
    root = MemCgroup("", None)
    child = MemCgroup("a", root)
    root.children["a"] = child
    charged(child, PageKind.FILE, 16384)
    r = try_to_free_pages(child.subtree(), 32, None)
    assert 32 <= r.reclaimed < 16384
    for node in (child, root):
        assert node.memory.usage == 16384 - r.reclaimed
        assert node.memsw.usage == 16384 - r.reclaimed
    assert child.pgpgout == r.reclaimed


def test_try_to_free_pages_walks_the_subtree():
    root = MemCgroup("", None)
    a = MemCgroup("a", root)
    b = MemCgroup("b", a)
    root.children["a"], a.children["b"] = a, b
    charged(b, PageKind.FILE, 1000)
    r = try_to_free_pages(a.subtree(), 10_000, None)
    assert r.reclaimed == 1000
    assert b.memory.usage == a.memory.usage == root.memory.usage == 0


def test_try_to_free_pages_swapped_pages_stay_in_memsw():
    root = MemCgroup("", None)
    charged(root, PageKind.ANON, 100)
    swap = SwapSpace(1000)
    r = try_to_free_pages([root], 1000, swap)
    assert r.reclaimed == r.swapped_out == 100
    assert root.memory.usage == 0 and root.memsw.usage == 100
    assert root.lruvec.swapped == 100


def test_try_to_free_pages_returns_what_it_could_when_nothing_is_reclaimable():
    root = MemCgroup("", None)
    charged(root, PageKind.ANON, 100)
    r = try_to_free_pages([root], 32, None)
    assert r.reclaimed == 0 and root.memory.usage == 100
