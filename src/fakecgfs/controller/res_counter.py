"""The resource counter: usage against a limit, plus the RFC's two watermarks.

This is the 2008 patch's ``struct res_counter`` in today's page_counter shape: counts are in pages,
"unlimited" is PAGE_COUNTER_MAX.  The RFC's ``enum res_state`` is here with its exact boundaries,
but nothing outside this module compares states by order: callers ask the predicates
(``above_high_watermark()``, ``below_low_watermark()``, ``over_limit()``), as the review asked.

Watermark rules (the RFC's ``lwmark <= hwmark <= limit``, repaired):

* A watermark is *armed* once written and *disarmed* (``None``) before that or after ``-1``.
  A disarmed watermark takes part in no ordering check.  The RFC defaulted both to LLONG_MAX, which
  made every limit write on a fresh group fail; disarming is how we keep its rule without its trap.
* Writing the high watermark: EINVAL if above the limit, or below an armed low watermark.
* Writing the low watermark: EINVAL if above an armed high watermark, or above the limit.
* Writing the limit: EINVAL if below an armed high watermark (or an armed low one).
* Equality is allowed everywhere, as in the RFC.
* With only the high watermark armed, the low one defaults to a gap below it
  (see ``constants.DEFAULT_WMARK_GAP_DIVISOR``).
"""

from __future__ import annotations

import enum
import errno

from .constants import DEFAULT_WMARK_GAP_DIVISOR, DEFAULT_WMARK_GAP_MIN, PAGE_COUNTER_MAX
from .errors import ControllerError


class ResState(enum.Enum):
    """Where usage stands against the watermarks and the limit (the RFC's enum res_state).

    A plain Enum on purpose: its members have no order, so ``state > BELOW_HIGH`` cannot be written.
    """

    BELOW_LOW = "below_low"  # usage <= lwmark
    BELOW_HIGH = "below_high"  # lwmark < usage <= hwmark
    BELOW_LIMIT = "below_limit"  # hwmark < usage <= limit
    OVER_LIMIT = "over_limit"  # usage > limit (the RFC's state query never said so)


class ResCounter:
    """One counter: usage, its peak, a limit, refused charges, and optional watermarks (pages)."""

    __slots__ = ("usage", "max_usage", "limit", "failcnt", "hwmark", "_lwmark")

    def __init__(self) -> None:
        self.usage = 0  # pages charged to this group and its descendants
        self.max_usage = 0  # highest usage since creation or the last reset
        self.limit = PAGE_COUNTER_MAX  # a charge that would exceed it is refused
        self.failcnt = 0  # refused charge attempts, one per attempt, retries included
        self.hwmark: int | None = None  # above it the reclaim task is woken; None: disarmed
        self._lwmark: int | None = None  # the task reclaims down to it; None: derived from hwmark

    # -- charging ------------------------------------------------------------------------------

    def margin(self) -> int:
        """Pages that can still be charged before the limit."""
        return max(self.limit - self.usage, 0)

    def try_charge(self, nr_pages: int) -> bool:
        """Charge if it fits under the limit; otherwise count a failure and change nothing."""
        if self.usage + nr_pages > self.limit:
            self.failcnt += 1
            return False
        self.usage += nr_pages
        if self.usage > self.max_usage:
            self.max_usage = self.usage
        return True

    def charge_unchecked(self, nr_pages: int) -> None:
        """Charge without a limit check (the root, and pages moving to a parent)."""
        self.usage += nr_pages
        if self.usage > self.max_usage:
            self.max_usage = self.usage

    def uncharge(self, nr_pages: int) -> None:
        if nr_pages > self.usage:
            raise AssertionError(f"uncharge of {nr_pages} pages exceeds usage {self.usage}")
        self.usage -= nr_pages

    def reset_max_usage(self) -> None:
        """What a write to max_usage_in_bytes does: the peak restarts from current usage."""
        self.max_usage = self.usage

    def reset_failcnt(self) -> None:
        self.failcnt = 0

    # -- watermarks ----------------------------------------------------------------------------

    @property
    def lwmark(self) -> int | None:
        """The low watermark in force: the one written, else a default gap below the high one."""
        if self._lwmark is not None:
            return self._lwmark
        if self.hwmark is None:
            return None
        gap = max(self.hwmark // DEFAULT_WMARK_GAP_DIVISOR, DEFAULT_WMARK_GAP_MIN)
        return max(self.hwmark - gap, 0)

    def lwmark_is_default(self) -> bool:
        """True while the low watermark is derived from the high one rather than written."""
        return self._lwmark is None and self.hwmark is not None

    def watermarks_armed(self) -> bool:
        return self.hwmark is not None

    def set_limit(self, nr_pages: int) -> None:
        """Store a new limit after the ordering checks (usage is the caller's business)."""
        self.check_limit(nr_pages)
        self.limit = nr_pages

    def check_limit(self, nr_pages: int) -> None:
        if self.hwmark is not None and nr_pages < self.hwmark:
            raise ControllerError(errno.EINVAL, "limit below the high watermark")
        if self._lwmark is not None and nr_pages < self._lwmark:
            raise ControllerError(errno.EINVAL, "limit below the low watermark")

    def set_hwmark(self, nr_pages: int | None) -> None:
        """Arm (or with None disarm) the high watermark."""
        if nr_pages is not None:
            if nr_pages > self.limit:
                raise ControllerError(errno.EINVAL, "high watermark above the limit")
            if self._lwmark is not None and nr_pages < self._lwmark:
                raise ControllerError(errno.EINVAL, "high watermark below the low watermark")
        self.hwmark = nr_pages

    def set_lwmark(self, nr_pages: int | None) -> None:
        """Arm (or with None return to the default of) the low watermark."""
        if nr_pages is not None:
            if self.hwmark is not None and nr_pages > self.hwmark:
                raise ControllerError(errno.EINVAL, "low watermark above the high watermark")
            if nr_pages > self.limit:
                raise ControllerError(errno.EINVAL, "low watermark above the limit")
        self._lwmark = nr_pages

    # -- state and predicates ------------------------------------------------------------------

    def state(self) -> ResState:
        """The RFC's res_counter_state(), with OVER_LIMIT reported whenever usage > limit."""
        if self.usage > self.limit:
            return ResState.OVER_LIMIT
        lwmark = self.lwmark
        if lwmark is not None and self.usage <= lwmark:
            return ResState.BELOW_LOW
        if self.hwmark is not None and self.usage <= self.hwmark:
            return ResState.BELOW_HIGH
        return ResState.BELOW_LIMIT

    def above_high_watermark(self) -> bool:
        """Usage is over an armed high watermark: the reclaim task should be running."""
        return self.hwmark is not None and self.usage > self.hwmark

    def below_low_watermark(self) -> bool:
        """Usage is at or under the low watermark in force: the reclaim task may sleep.

        With no watermark armed there is nothing to reclaim towards, so this is True.
        """
        lwmark = self.lwmark
        return lwmark is None or self.usage <= lwmark

    def over_limit(self) -> bool:
        return self.usage > self.limit
