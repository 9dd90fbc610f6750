"""Tests of memreport against a fake cgroup v1 memory hierarchy.

The ``fakecgfs`` fixture comes with fakecgfs (pip install fakecgfs; no conftest.py needed): a
fresh mount per test at ``fakecgfs.path``, unmounted afterwards.  Run: python -m pytest
"""

import errno

import pytest

from memreport import busiest, read_memory


def test_a_new_group_is_empty_and_unlimited(fakecgfs):
    fakecgfs.mkgroup("web")
    report = read_memory("web", root=fakecgfs.path)
    assert (report.usage, report.limit, report.cache, report.rss) == (0, None, 0, 0)
    assert report.percent is None


def test_usage_limit_and_page_cache(fakecgfs):
    fakecgfs.mkgroup("web/app", limit="64M")
    fakecgfs.charge("web/app", "16M", kind="anon")
    fakecgfs.charge("web/app", "8M", kind="file")
    report = read_memory("web/app", root=fakecgfs.path)
    assert report.usage == 24 << 20
    assert report.limit == 64 << 20
    assert (report.rss, report.cache) == (16 << 20, 8 << 20)
    assert report.percent == pytest.approx(37.5)


def test_failcnt_counts_refused_charges(fakecgfs):
    fakecgfs.mkgroup("small", limit="8M")
    fakecgfs.charge("small", "6M")
    with pytest.raises(OSError) as refused:  # anonymous memory, no swap: the charge fails
        fakecgfs.charge("small", "4M")
    assert refused.value.errno == errno.ENOMEM
    assert read_memory("small", root=fakecgfs.path).failcnt > 0


@pytest.mark.fakecgfs(swap="64M")
def test_with_swap_anonymous_memory_is_reclaimed_under_the_limit(fakecgfs):
    fakecgfs.mkgroup("batch", limit="8M")
    fakecgfs.charge("batch", "12M")  # 4M go to the simulated swap
    report = read_memory("batch", root=fakecgfs.path)
    assert report.usage <= 8 << 20
    assert fakecgfs.events(kind="reclaim", group="batch")


def test_background_reclaim_settles_under_the_low_watermark(fakecgfs):
    fakecgfs.mkgroup("cache", limit="64M", high="48M", low="32M")
    fakecgfs.charge("cache", "60M", kind="file")
    fakecgfs.wait_settled("cache")
    assert read_memory("cache", root=fakecgfs.path).usage <= 32 << 20


def test_busiest_orders_groups_by_usage(fakecgfs):
    for name, size in (("a", "1M"), ("b", "4M"), ("c", "1M"), ("c/d", "2M")):
        fakecgfs.mkgroup(name)
        fakecgfs.charge(name, size)
    names = [r.group for r in busiest(root=fakecgfs.path, top=3)]
    assert names == ["b", "c", "c/d"]  # c's usage includes its child's 2M (hierarchy)
