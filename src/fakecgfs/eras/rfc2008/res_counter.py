"""struct res_counter of 2.6.26-rc2-mm1 with RFC 2/4 ("memcg: high-low watermark") applied.

Bytes, not pages, as the patch has it: memcg charges PAGE_SIZE at a time.  Everything here is
the patch's code, including what the review and this project later repaired:

* ``res_counter_init_wmark()`` sets limit, hwmark and lwmark to LLONG_MAX, so the first write of
  a limit below that fails with EINVAL (hwmark > new limit): a fresh group must be given its low
  watermark, then its high one, then its limit.
* ``enum res_state`` is ordered, and callers compare it by order (``state > RES_BELOW_HIGH``).
* ``res_counter_state()`` never answers RES_OVER_LIMIT, even when usage is above the limit.
"""

from __future__ import annotations

import enum
import errno

from ...controller.errors import ControllerError

LLONG_MAX = 2**63 - 1
"""What res_counter_init() and res_counter_init_wmark() store as "no limit"."""


class ResState(enum.IntEnum):
    """The patch's enum res_state: ORDER MATTERS, the charge path tests ``state > RES_BELOW_HIGH``.

    The boundaries are ``<=`` (Li Zefan's correction, which the author accepted); the patch's
    comments said ``<``.
    """

    RES_BELOW_LOW = 0  # usage <= lwmark
    RES_BELOW_HIGH = 1  # lwmark < usage <= hwmark
    RES_BELOW_LIMIT = 2  # hwmark < usage <= limit
    RES_OVER_LIMIT = 3  # only from a charge: usage + val > limit, and the charge was refused


class Member(enum.Enum):
    """The members a write may name (the patch's RES_* private values of the cftypes)."""

    RES_LIMIT = "limit"
    RES_HWMARK = "hwmark"
    RES_LWMARK = "lwmark"


class ResCounter:
    """One group's counter.  Not hierarchical: 2.6.26 had no hierarchy."""

    __slots__ = ("usage", "max_usage", "limit", "failcnt", "hwmark", "lwmark", "use_watermark")

    def __init__(self) -> None:
        # res_counter_init(): limit = LLONG_MAX, the rest zeroed.
        self.usage = 0
        self.max_usage = 0
        self.limit = LLONG_MAX
        self.failcnt = 0
        self.hwmark = 0
        self.lwmark = 0
        self.use_watermark = False

    def init_wmark(self) -> None:
        """res_counter_init_wmark(): what mem_cgroup_create() calls for every group, root too."""
        self.limit = self.hwmark = self.lwmark = LLONG_MAX
        self.use_watermark = True

    # -- charge ---------------------------------------------------------------------------------

    def charge(self, val: int) -> ResState:
        """res_counter_charge(): RES_OVER_LIMIT (failcnt + 1, usage unchanged), or the state of
        usage after the charge."""
        if self.usage + val > self.limit:
            self.failcnt += 1
            return ResState.RES_OVER_LIMIT
        self.usage += val
        if self.usage > self.max_usage:
            self.max_usage = self.usage
        if self.use_watermark:
            if self.usage <= self.lwmark:
                return ResState.RES_BELOW_LOW
            if self.usage <= self.hwmark:
                return ResState.RES_BELOW_HIGH
        return ResState.RES_BELOW_LIMIT

    def uncharge(self, val: int) -> None:
        """res_counter_uncharge(): WARN_ON(usage < val), then clamp.  No state is computed."""
        if self.usage < val:
            val = self.usage
        self.usage -= val

    def state(self) -> ResState:
        """res_counter_state(), memcontd's poll: never RES_OVER_LIMIT (YAMAMOTO's and Balbir's
        comment on 2/4; "It's Bug", and never reposted)."""
        if self.use_watermark:
            if self.usage <= self.lwmark:
                return ResState.RES_BELOW_LOW
            if self.usage <= self.hwmark:
                return ResState.RES_BELOW_HIGH
        return ResState.RES_BELOW_LIMIT

    def check_under_limit(self) -> bool:
        """res_counter_check_under_limit(): usage < limit (strictly)."""
        return self.usage < self.limit

    def reset_max(self) -> None:
        self.max_usage = self.usage

    def reset_failcnt(self) -> None:
        self.failcnt = 0

    # -- write ----------------------------------------------------------------------------------

    def write(self, member: Member, value: int) -> None:
        """The store at the end of res_counter_write(), under the counter's lock: the patch's
        ``lwmark <= hwmark <= limit`` check against the *other stored values*, EINVAL (the
        ``ret`` already set before parsing) and nothing stored on violation."""
        if self.use_watermark:
            if member is Member.RES_LIMIT and self.hwmark > value:
                raise ControllerError(errno.EINVAL, "limit below the high watermark")
            if member is Member.RES_HWMARK and (value < self.lwmark or value > self.limit):
                raise ControllerError(errno.EINVAL, "high watermark outside [lwmark, limit]")
            if member is Member.RES_LWMARK and value > self.hwmark:
                raise ControllerError(errno.EINVAL, "low watermark above the high watermark")
        setattr(self, member.value, value)
