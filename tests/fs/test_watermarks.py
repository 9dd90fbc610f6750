"""The RFC's watermark files: ordering rules, defaults, and arming/disarming the reclaim task."""

from __future__ import annotations

import errno

import pytest

from .helpers import UNLIMITED, MiB, errno_of, kv_lines, read, wait_for_state, wait_until, write

HIGH = "memory.high_wmark_in_bytes"
LOW = "memory.low_wmark_in_bytes"
LIMIT = "memory.limit_in_bytes"


def _value(group, name) -> int:
    return int(read(group / name))


# The default low watermark, worked out by hand from the RFC's rule (0.5% of the high watermark
# below it, in whole pages, but at least one 32-page reclaim batch; never below 0):
LOW_FOR_HIGH_48M = 50_081_792  # 48 MiB = 12,288 pages; 12,288 // 200 = 61; 12,227 pages
LOW_FOR_HIGH_1M = 917_504  # 1 MiB = 256 pages; 256 // 200 = 1 < 32; 224 pages


def _reclaim_tasks(shared) -> list[str]:
    return read(shared.path / "fake.daemons").splitlines()[1:]


def test_limit_then_high_then_low(group):
    write(group / LIMIT, "64M")
    write(group / HIGH, "48M")
    write(group / LOW, "32M")
    assert (_value(group, LIMIT), _value(group, HIGH), _value(group, LOW)) == (
        64 * MiB, 48 * MiB, 32 * MiB)  # fmt: skip
    assert kv_lines(group / "fake.reclaim_daemon")["low_wmark_default"] == "0"


def test_high_alone_gives_the_default_low(shared, group):
    write(group / HIGH, "48M")
    assert _value(group, HIGH) == 48 * MiB
    assert _value(group, LOW) == LOW_FOR_HIGH_48M
    assert kv_lines(group / "fake.reclaim_daemon")["low_wmark_default"] == "1"
    assert f"/{group.name}" in _reclaim_tasks(shared)


def test_small_high_keeps_a_one_batch_gap(group):
    write(group / HIGH, "1M")
    assert _value(group, LOW) == LOW_FOR_HIGH_1M
    write(group / HIGH, "64K")  # 16 pages: a batch below is below 0
    assert _value(group, LOW) == 0


def test_low_alone_without_high(shared, group):
    write(group / LOW, "32M")
    assert _value(group, LOW) == 32 * MiB
    assert _value(group, HIGH) == UNLIMITED
    assert f"/{group.name}" not in _reclaim_tasks(shared)  # nothing armed the task


@pytest.mark.parametrize(("setup", "name", "value"), [
    ((("memory.limit_in_bytes", "64M"),), HIGH, "65M"),  # high > limit
    ((("memory.limit_in_bytes", "64M"),), LOW, "65M"),  # low > limit
    (((HIGH, "48M"),), LOW, "49M"),  # low > high
    (((HIGH, "48M"), (LOW, "32M")), HIGH, "31M"),  # high < low
    (((HIGH, "48M"),), LIMIT, "40M"),  # limit < high
    (((LOW, "32M"),), LIMIT, "16M"),  # limit < low
    (((LIMIT, "64M"), (HIGH, "48M"), (LOW, "32M")), LIMIT, "47M"),
], ids=["high>limit", "low>limit", "low>high", "high<low", "limit<high", "limit<low",
        "limit<high-all-set"])  # fmt: skip
def test_ordering_violations(group, setup, name, value):
    for file, v in setup:
        write(group / file, v)
    before = {n: read(group / n) for n in (LIMIT, HIGH, LOW)}
    assert errno_of(lambda: write(group / name, value)) == errno.EINVAL
    assert {n: read(group / n) for n in (LIMIT, HIGH, LOW)} == before


def test_equality_is_allowed(group):
    write(group / LIMIT, "64M")
    write(group / HIGH, "64M")
    write(group / LOW, "64M")
    assert _value(group, LOW) == _value(group, HIGH) == _value(group, LIMIT) == 64 * MiB


def test_limit_is_checked_after_page_rounding(group):
    write(group / HIGH, "8192")
    write(group / LIMIT, "12287")  # 2 pages
    assert _value(group, LIMIT) == 8192


def test_minus_one_disarms_high_and_stops_the_task(shared, group):
    write(group / LIMIT, "64M")
    write(group / HIGH, "48M")
    wait_for_state(group, "sleeping")
    write(group / HIGH, "-1")
    assert read(group / HIGH) == f"{UNLIMITED}\n"
    assert read(group / LOW) == f"{UNLIMITED}\n"
    assert kv_lines(group / "fake.reclaim_daemon")["state"] == "stopped"
    assert f"/{group.name}" not in _reclaim_tasks(shared)
    write(group / LIMIT, "1M")  # nothing armed constrains the limit now
    assert _value(group, LIMIT) == 1 * MiB


def test_minus_one_returns_low_to_its_default(group):
    write(group / HIGH, "48M")
    write(group / LOW, "16M")
    write(group / LOW, "-1")
    assert _value(group, LOW) == LOW_FOR_HIGH_48M
    assert kv_lines(group / "fake.reclaim_daemon")["low_wmark_default"] == "1"


def test_a_refused_high_does_not_start_the_task(shared, group):
    write(group / LIMIT, "64M")
    assert errno_of(lambda: write(group / HIGH, "65M")) == errno.EINVAL
    assert kv_lines(group / "fake.reclaim_daemon")["state"] == "stopped"
    assert f"/{group.name}" not in _reclaim_tasks(shared)


def test_lowering_high_wakes_the_task(group):
    write(group / "fake.charge", "20M file")
    write(group / HIGH, "48M")
    write(group / LOW, "8M")
    wait_for_state(group, "sleeping")
    write(group / HIGH, "16M")  # usage is now above the high watermark: reclaim to low
    wait_until(lambda: int(read(group / "memory.usage_in_bytes")) <= 8 * MiB,
               what="reclaim down to the low watermark")  # fmt: skip
