"""ResCounter: charging, resets, the RFC's watermark ordering rules and its exact state
boundaries."""

from __future__ import annotations

import errno

import pytest

from fakecgfs.controller import PAGE_COUNTER_MAX, ControllerError, ResCounter, ResState


def counter(*, usage: int = 0, limit: int | None = None, high: int | None = None,
            low: int | None = None) -> ResCounter:  # fmt: skip
    c = ResCounter()
    if limit is not None:
        c.set_limit(limit)
    if high is not None:
        c.set_hwmark(high)
    if low is not None:
        c.set_lwmark(low)
    c.charge_unchecked(usage)
    return c


def snapshot(c: ResCounter) -> tuple:
    return (c.usage, c.max_usage, c.limit, c.failcnt, c.hwmark, c.lwmark, c.lwmark_is_default())


# -- charging --------------------------------------------------------------------------------------


def test_fresh_counter_is_unlimited_and_disarmed():
    c = ResCounter()
    assert (c.usage, c.max_usage, c.limit, c.failcnt) == (0, 0, PAGE_COUNTER_MAX, 0)
    assert c.hwmark is None and c.lwmark is None
    assert not c.watermarks_armed()
    assert not c.lwmark_is_default()


def test_margin():
    c = counter(limit=100, usage=30)
    assert c.margin() == 70
    c.charge_unchecked(80)  # over the limit: the margin is 0, never negative
    assert c.margin() == 0


def test_try_charge_fits_and_tracks_max_usage():
    c = counter(limit=100)
    assert c.try_charge(60)
    assert c.try_charge(40)  # exactly to the limit is allowed
    assert (c.usage, c.max_usage, c.failcnt) == (100, 100, 0)


def test_try_charge_refused_counts_each_attempt_and_changes_nothing():
    c = counter(limit=100, usage=90)
    for attempt in range(1, 4):
        assert not c.try_charge(11)
        assert c.failcnt == attempt
    assert c.usage == 90 and c.max_usage == 90


def test_charge_unchecked_ignores_the_limit():
    c = counter(limit=10)
    c.charge_unchecked(25)
    assert c.usage == 25 and c.max_usage == 25 and c.failcnt == 0


def test_uncharge_keeps_max_usage_and_refuses_underflow():
    c = counter(usage=50)
    c.uncharge(20)
    assert c.usage == 30 and c.max_usage == 50
    with pytest.raises(AssertionError):
        c.uncharge(31)
    assert c.usage == 30


def test_reset_max_usage_restarts_from_current_usage():
    c = counter(usage=50)
    c.uncharge(20)
    c.reset_max_usage()
    assert c.max_usage == 30


def test_reset_failcnt():
    c = counter(limit=1)
    c.try_charge(2)
    c.try_charge(2)
    assert c.failcnt == 2
    c.reset_failcnt()
    assert c.failcnt == 0


# -- watermark ordering rules ------------------------------------------------------------------


def test_fresh_counter_accepts_limit_then_high_then_low():
    c = ResCounter()
    c.set_limit(16384)
    c.set_hwmark(12288)
    c.set_lwmark(8192)
    assert (c.limit, c.hwmark, c.lwmark) == (16384, 12288, 8192)
    assert c.watermarks_armed() and not c.lwmark_is_default()


def test_check_limit_validates_without_storing():
    c = counter(limit=100, high=80)
    c.check_limit(80)
    with pytest.raises(ControllerError) as exc:
        c.check_limit(79)
    assert exc.value.errno == errno.EINVAL
    assert c.limit == 100


# The RFC's default low watermark (as Alibaba Cloud Linux, its shipped descendant, sets it):
# 0.5% of the high watermark below it, rounded down to whole pages, but at least one reclaim
# batch (SWAP_CLUSTER_MAX, 32 pages) below it, and never below 0.  Worked out by hand:
@pytest.mark.parametrize(("high", "low"), [
    (1, 0),  # a gap of 32 pages from 1 page: 0
    (32, 0),  # exactly one batch
    (33, 1),
    (200, 168),  # 200 // 200 = 1 page < 32: one batch
    (6400, 6368),  # 6400 // 200 = 32 pages: both rules agree
    (6600, 6567),  # 6600 // 200 = 33 pages > 32
    (12288, 12227),  # 48 MiB: 12288 // 200 = 61 pages
    (100_000, 99_500),  # 100000 // 200 = 500 pages
])  # fmt: skip
def test_default_low_watermark_is_a_gap_below_high(high, low):
    c = counter(high=high)
    assert c.lwmark == low
    assert c.lwmark_is_default()


def test_default_low_watermark_example_values():
    # 48 MiB = 12288 pages: 12288 // 200 = 61 pages > 32, so the gap is 61 pages.
    assert counter(high=12288).lwmark == 12288 - 61
    # 1 MiB = 256 pages: 256 // 200 = 1 < 32, so the gap is one reclaim batch.
    assert counter(high=256).lwmark == 256 - 32


def test_high_above_limit_is_einval():
    c = counter(limit=100)
    before = snapshot(c)
    with pytest.raises(ControllerError) as exc:
        c.set_hwmark(101)
    assert exc.value.errno == errno.EINVAL
    assert snapshot(c) == before


def test_high_below_armed_low_is_einval():
    c = counter(limit=100, high=80, low=50)
    before = snapshot(c)
    with pytest.raises(ControllerError) as exc:
        c.set_hwmark(49)
    assert exc.value.errno == errno.EINVAL
    assert snapshot(c) == before


def test_low_above_armed_high_is_einval():
    c = counter(limit=100, high=80)
    before = snapshot(c)
    with pytest.raises(ControllerError) as exc:
        c.set_lwmark(81)
    assert exc.value.errno == errno.EINVAL
    assert snapshot(c) == before


def test_low_above_limit_is_einval():
    c = counter(limit=100)  # no high watermark: only the limit bounds the low one
    before = snapshot(c)
    with pytest.raises(ControllerError) as exc:
        c.set_lwmark(101)
    assert exc.value.errno == errno.EINVAL
    assert snapshot(c) == before


def test_limit_below_armed_high_is_einval():
    c = counter(limit=100, high=80)
    before = snapshot(c)
    with pytest.raises(ControllerError) as exc:
        c.set_limit(79)
    assert exc.value.errno == errno.EINVAL
    assert snapshot(c) == before


def test_limit_below_armed_low_is_einval_even_without_high():
    c = counter(limit=100, high=80, low=50)
    c.set_hwmark(None)  # disarm high; the written low watermark stays
    before = snapshot(c)
    with pytest.raises(ControllerError) as exc:
        c.set_limit(49)
    assert exc.value.errno == errno.EINVAL
    assert snapshot(c) == before
    c.set_limit(50)
    assert c.limit == 50


def test_equality_is_allowed_everywhere():
    c = counter(limit=100)
    c.set_hwmark(100)  # high == limit
    c.set_lwmark(100)  # low == high
    c.set_limit(100)  # limit == high
    c.set_hwmark(100)  # high == low
    assert (c.limit, c.hwmark, c.lwmark) == (100, 100, 100)


def test_disarmed_watermarks_take_no_part_in_checks():
    c = counter(limit=100, high=80)
    c.set_hwmark(None)
    assert not c.watermarks_armed() and c.lwmark is None
    c.set_limit(10)  # would be below the old high watermark
    assert c.limit == 10


def test_set_lwmark_none_returns_to_the_default():
    c = counter(high=12288, low=100)
    assert not c.lwmark_is_default()
    c.set_lwmark(None)
    assert c.lwmark_is_default() and c.lwmark == 12288 - 61


# -- states and predicates ---------------------------------------------------------------------


def test_state_boundaries_are_exact():
    c = counter(limit=100, high=80, low=50)
    expected = {
        0: ResState.BELOW_LOW,
        49: ResState.BELOW_LOW,
        50: ResState.BELOW_LOW,  # usage == lwmark
        51: ResState.BELOW_HIGH,
        80: ResState.BELOW_HIGH,  # usage == hwmark
        81: ResState.BELOW_LIMIT,
        100: ResState.BELOW_LIMIT,  # usage == limit
        101: ResState.OVER_LIMIT,  # usage > limit, which the RFC never reported
    }
    for usage, state in expected.items():
        c.usage = usage
        assert c.state() is state, usage


def test_predicates_at_the_boundaries():
    c = counter(limit=100, high=80, low=50)
    c.usage = 50
    assert c.below_low_watermark() and not c.above_high_watermark() and not c.over_limit()
    c.usage = 51
    assert not c.below_low_watermark()
    c.usage = 80
    assert not c.above_high_watermark()
    c.usage = 81
    assert c.above_high_watermark() and not c.over_limit()
    c.usage = 100
    assert not c.over_limit()
    c.usage = 101
    assert c.over_limit() and c.above_high_watermark()


def test_over_limit_state_after_a_limit_is_set_below_usage():
    c = counter(usage=200)
    c.set_limit(100)  # the counter does not check usage; the controller reclaims first
    assert c.state() is ResState.OVER_LIMIT and c.over_limit()


def test_state_without_watermarks():
    c = counter(limit=100, usage=10)
    assert c.state() is ResState.BELOW_LIMIT
    assert c.below_low_watermark()  # nothing to reclaim towards
    assert not c.above_high_watermark()


def test_state_with_default_low_watermark():
    c = counter(high=1000)
    low = 1000 - 32  # 1000 // 200 = 5 pages < one batch: the default is a batch below
    assert c.lwmark == low
    c.usage = low
    assert c.state() is ResState.BELOW_LOW
    c.usage = low + 1
    assert c.state() is ResState.BELOW_HIGH


def test_states_are_unordered():
    with pytest.raises(TypeError):
        ResState.BELOW_LOW < ResState.BELOW_HIGH  # noqa: B015
    with pytest.raises(TypeError):
        ResState.OVER_LIMIT > ResState.BELOW_LIMIT  # noqa: B015
    assert len({ResState.BELOW_LOW, ResState.BELOW_HIGH, ResState.BELOW_LIMIT,
                ResState.OVER_LIMIT}) == 4  # fmt: skip
