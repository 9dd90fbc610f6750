"""How long the FUSE session busy-polls /dev/fuse after a request: the guest haltpoll governor's
rule (drivers/cpuidle/governors/haltpoll.c), applied to a server instead of an idle vCPU.

A poll that catches the client's next request saves a sleep and a wake-up (on a VM, an IPI and a
VM exit); a poll that catches nothing is CPU spent for nothing, taken from other work.  So the
window adapts to what the requests did after the last sleep, as haltpoll's does:

* the next request came within the ceiling (a longer window would have caught it): grow;
* it came later than the ceiling (no window we allow would have caught it): shrink;
* a poll that caught its request leaves the window as it is (it was long enough).

And there is no poll at all when the server may run on one CPU only: the client it answered is
waiting for that CPU, so a poll only holds off the request it waits for.

Pure: the session feeds it the times it measures; tests feed it numbers.
"""

from __future__ import annotations

POLL_GROW = 2
"""Factor of a window's growth and of its shrinking (haltpoll's guest_halt_poll_grow and
guest_halt_poll_shrink): a few sleeps take the window from nothing to the ceiling, and back."""

POLL_GROW_START_DIVISOR = 4
"""The smallest window that is polled at all is the ceiling divided by this (haltpoll's
guest_halt_poll_grow_start): a shorter poll ends before a client's turnaround (the reply, its
next system call) and catches nothing.  A window shrunk below it is no window."""


class PollWindow:
    """The busy-poll window of one session, in ns: ``poll_ns`` is what to poll now."""

    def __init__(self, ceiling_ns: int) -> None:
        self.ceiling_ns = ceiling_ns
        self.window_ns = ceiling_ns  # polls at first, as an idle client's first cat gains most
        self.single_cpu = False

    @property
    def grow_start_ns(self) -> int:
        return self.ceiling_ns // POLL_GROW_START_DIVISOR

    @property
    def poll_ns(self) -> int:
        return 0 if self.single_cpu else self.window_ns

    @property
    def learns(self) -> bool:
        """Whether slept() would change anything: the session spares itself the measure."""
        return not self.single_cpu and self.ceiling_ns > 0

    def slept(self, idle_ns: int) -> None:
        """The session polled ``poll_ns``, caught nothing and slept: the next request came
        ``idle_ns`` after the poll began."""
        if self.single_cpu:
            return  # not polling; what a window would have caught says nothing here
        if idle_ns <= self.ceiling_ns:
            grown = max(self.window_ns * POLL_GROW, self.grow_start_ns)
            self.window_ns = min(grown, self.ceiling_ns)
        else:
            shrunk = self.window_ns // POLL_GROW
            self.window_ns = shrunk if shrunk >= self.grow_start_ns else 0
