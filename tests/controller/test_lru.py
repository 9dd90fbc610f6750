"""LRU lists as counts: adding, taking from the tail, freeing, referencing and reparenting."""

from __future__ import annotations

from fakecgfs.controller import PageKind
from fakecgfs.controller.lru import LruList, Lruvec


def test_lru_list_add():
    lru = LruList()
    lru.add(10, dirty=3, referenced=4)
    lru.add(5)
    assert (lru.nr, lru.dirty, lru.referenced) == (15, 3, 4)


def test_take_is_proportional_and_rounds_down():
    lru = LruList()
    lru.add(100, dirty=10, referenced=30)
    assert lru.take(25) == (25, 7, 2)  # 30*25//100, 10*25//100
    assert (lru.nr, lru.referenced, lru.dirty) == (75, 23, 8)


def test_take_everything_carries_the_rounding_remainder():
    lru = LruList()
    lru.add(3, dirty=1, referenced=1)
    assert lru.take(2) == (2, 0, 0)
    assert lru.take(5) == (1, 1, 1)  # more than there is: the rest, with every flag left
    assert (lru.nr, lru.referenced, lru.dirty) == (0, 0, 0)
    assert lru.take(1) == (0, 0, 0)


def test_lru_list_free_clamps_flags():
    lru = LruList()
    lru.add(10, dirty=8, referenced=9)
    assert lru.free(4) == 4
    assert (lru.nr, lru.referenced, lru.dirty) == (6, 6, 6)
    assert lru.free(100) == 6
    assert (lru.nr, lru.referenced, lru.dirty) == (0, 0, 0)


def test_lruvec_lists_by_kind():
    v = Lruvec()
    assert v.lists(PageKind.ANON) == (v.inactive_anon, v.active_anon)
    assert v.lists(PageKind.FILE) == (v.inactive_file, v.active_file)


def test_add_new_goes_to_the_inactive_list():
    v = Lruvec()
    v.add_new(PageKind.FILE, 10, dirty=True)
    v.add_new(PageKind.ANON, 7)
    assert v.inactive_file.nr == 10 and v.inactive_file.dirty == 10
    assert v.inactive_anon.nr == 7 and v.inactive_anon.dirty == 0
    assert v.active_file.nr == v.active_anon.nr == 0


def test_resident_and_dirty():
    v = Lruvec()
    v.add_new(PageKind.FILE, 10, dirty=True)
    v.active_file.add(5, dirty=2)
    v.add_new(PageKind.ANON, 7)
    v.swapped = 100  # swap entries are not resident
    assert v.resident(PageKind.FILE) == 15
    assert v.resident(PageKind.ANON) == 7
    assert v.resident() == 22
    assert v.dirty() == 12


def test_lruvec_free_takes_inactive_first():
    v = Lruvec()
    v.add_new(PageKind.FILE, 10)
    v.active_file.add(10)
    assert v.free(PageKind.FILE, 15) == 15
    assert (v.inactive_file.nr, v.active_file.nr) == (0, 5)
    assert v.free(PageKind.FILE, 15) == 5
    assert v.free(PageKind.ANON, 1) == 0


def test_mark_referenced_only_counts_unreferenced_pages():
    v = Lruvec()
    v.add_new(PageKind.FILE, 10)
    v.active_file.add(10, referenced=4)
    assert v.mark_referenced(PageKind.FILE, 12) == 12
    assert (v.inactive_file.referenced, v.active_file.referenced) == (10, 6)
    assert v.mark_referenced(PageKind.FILE, 100) == 4  # only 4 unreferenced pages were left
    assert v.mark_referenced(PageKind.FILE, 1) == 0


def test_move_to_gives_every_page_and_swap_entry():
    src, dst = Lruvec(), Lruvec()
    src.add_new(PageKind.FILE, 10, dirty=True)
    src.active_anon.add(5, referenced=2)
    src.swapped = 3
    dst.add_new(PageKind.FILE, 1)
    dst.swapped = 1
    src.move_to(dst)
    assert src.resident() == 0 and src.swapped == 0 and src.dirty() == 0
    assert dst.inactive_file.nr == 11 and dst.inactive_file.dirty == 10
    assert dst.active_anon.nr == 5 and dst.active_anon.referenced == 2
    assert dst.swapped == 4
