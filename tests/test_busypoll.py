"""The session's busy-poll window: guest haltpoll's rule, fed numbers (no timing)."""

from __future__ import annotations

import pytest

from fakecgfs.cgroupfs.busypoll import PollWindow

CEILING = 40_000


def test_starts_at_the_ceiling() -> None:
    window = PollWindow(CEILING)
    assert window.poll_ns == CEILING and window.learns


def test_a_request_later_than_the_ceiling_shrinks_the_window_to_nothing() -> None:
    window = PollWindow(CEILING)
    seen = []
    for _ in range(4):
        window.slept(CEILING + 1)
        seen.append(window.poll_ns)
    # halved while at least the grow start (a quarter of the ceiling), then no poll at all
    assert seen == [CEILING // 2, CEILING // 4, 0, 0]


def test_a_request_within_the_ceiling_grows_the_window_back() -> None:
    window = PollWindow(CEILING)
    for _ in range(3):
        window.slept(10 * CEILING)
    assert window.poll_ns == 0
    seen = []
    for _ in range(4):
        window.slept(CEILING)  # a longer window would have caught it
        seen.append(window.poll_ns)
    # from nothing to the grow start, then doubled, never past the ceiling
    assert seen == [CEILING // 4, CEILING // 2, CEILING, CEILING]


def test_alternating_requests_keep_the_window_between_its_bounds() -> None:
    window = PollWindow(CEILING)
    for idle in [CEILING * 3, 1, CEILING * 3, CEILING * 3, 5, 7] * 10:
        window.slept(idle)
        assert window.poll_ns in (0, CEILING // 4, CEILING // 2, CEILING)


@pytest.mark.parametrize("idle", [1, CEILING, CEILING + 1, 10 * CEILING])
def test_one_cpu_polls_nothing_and_learns_nothing(idle: int) -> None:
    window = PollWindow(CEILING)
    window.single_cpu = True
    assert window.poll_ns == 0 and not window.learns
    window.slept(idle)
    window.single_cpu = False
    assert window.poll_ns == CEILING  # what it was before the pin


def test_a_zero_ceiling_never_polls() -> None:
    window = PollWindow(0)
    assert not window.learns
    for idle in (0, 1, 10**9):
        window.slept(idle)
        assert window.poll_ns == 0
