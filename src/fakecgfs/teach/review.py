"""``fakecgfs review``: Balbir Singh's 2008 review of the background-reclaim RFC, run live.

Two mounts side by side: the patch as posted (``--era rfc-2008``) and the repaired default.
Each step quotes one review comment (or, first, the trap nobody noticed; last, the patch's own
TODO list), runs the same commands on both mounts, prints what each answered, and says what to
see and why the repaired version differs.  docs/review-lesson.md is this output with the story
around it; tests/test_review.py checks that the two agree.

Output conventions (the test relies on them): every step starts with a ``== step N/M:`` line; a
command is a ``  $ `` line followed by one line per mount (``as posted:``, ``repaired:``);
values that depend on timing are printed with a leading ``~`` (``~98 passes/s``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import mounting

SETTLE_TIMEOUT = 30.0
MEASURE_SECONDS = 1.0
"""How long the CPU steps watch both tasks: long enough for the posted loop's ~100 passes."""

LABELS = ("as posted", "repaired")
WIDTH = 78

Action = Callable[[Path], str]


# -- the two mounts -----------------------------------------------------------------------------


@dataclass
class Lesson:
    """The two mount roots (as posted, repaired) and their trace files."""

    posted: Path
    repaired: Path
    traces: tuple[Path, Path]
    out: Callable[[str], None] = print

    @property
    def roots(self) -> tuple[Path, Path]:
        return self.posted, self.repaired

    def say(self, text: str) -> None:
        for paragraph in textwrap.dedent(text).strip().split("\n\n"):
            self.out(textwrap.fill(" ".join(paragraph.split()), WIDTH))
            self.out("")

    def run(self, command: str, posted: Action, repaired: Action | None = None) -> tuple[str, str]:
        """Show ``command`` and what each mount answered to it; return the two answers."""
        self.out(f"  $ {command}")
        answers = (posted(self.posted), (repaired or posted)(self.repaired))
        for label, answer in zip(LABELS, answers, strict=True):
            self.out(f"    {label + ':':<11} {answer}")
        self.out("")
        return answers

    def settle(self, group: str) -> None:
        """Wait (on a condition) until both mounts' tasks of ``group`` have nothing to do."""
        from ..cliutil import settled

        for root in self.roots:
            path = str(root / group)
            if not mounting.wait_until(lambda path=path: settled(path), SETTLE_TIMEOUT, 0.01):
                raise TimeoutError(f"{path}: background reclaim did not settle")


@contextlib.contextmanager
def _mount(directory: Path, name: str, *options: str) -> Iterator[tuple[Path, Path]]:
    """A foreground server of its own at ``directory/name``, with a trace; always unmounted."""
    mountpoint, trace = directory / name, directory / f"{name}.trace.jsonl"
    mountpoint.mkdir()
    options = ("--trace", str(trace), "--trace-interval", "0.02", *options)
    with open(directory / f"{name}.log", "wb") as log:
        server = mounting.start_server(str(mountpoint), options, log)
    try:
        if not mounting.wait_mounted(server, str(mountpoint)):
            raise RuntimeError(f"the {name} mount did not come up (log: {directory}/{name}.log)")
        yield mountpoint, trace
    finally:
        mounting.stop_server(server)
        mounting.detach_leftover(str(mountpoint))


@contextlib.contextmanager
def two_mounts(directory: Path) -> Iterator[Lesson]:
    with _mount(directory, "posted", "--era", "rfc-2008") as (posted, posted_trace), \
            _mount(directory, "repaired") as (repaired, repaired_trace):  # fmt: skip
        yield Lesson(posted, repaired, (posted_trace, repaired_trace))


# -- actions: what a shell command does, answered as a short string ------------------------------


def _errno(e: OSError) -> str:
    return errno.errorcode.get(e.errno or 0, str(e.errno))


def echo(value: str, rel: str) -> Action:
    """``echo VALUE > REL``: one write(); "ok" or the errno's name."""

    def action(root: Path) -> str:
        try:
            fd = os.open(root / rel, os.O_WRONLY)
            try:
                os.write(fd, f"{value}\n".encode())
            finally:
                os.close(fd)
        except OSError as e:
            return _errno(e)
        return "ok"

    return action


def cat(rel: str, *keys: str) -> Action:
    """``cat REL`` on one line; with ``keys``, only those ``name value`` lines."""

    def action(root: Path) -> str:
        try:
            text = (root / rel).read_text()
        except OSError as e:
            return _errno(e)
        if not keys:
            return " ".join(text.split())
        pairs = dict(line.partition(" ")[::2] for line in text.splitlines())
        return ", ".join(f"{k} {pairs[k] or '(empty)'}" if k in pairs else f"(no {k})"
                         for k in keys)  # fmt: skip

    return action


def sequence(*actions: Action) -> Action:
    return lambda root: " ".join(action(root) for action in actions)


def mkdir(rel: str) -> Action:
    def action(root: Path) -> str:
        try:
            os.mkdir(root / rel)
        except OSError as e:
            return _errno(e)
        return "ok"

    return action


def rmdir(rel: str) -> Action:
    def action(root: Path) -> str:
        try:
            os.rmdir(root / rel)
        except OSError as e:
            return _errno(e)
        return "ok"

    return action


def _reclaim_task(root: Path, group: str) -> dict[str, str]:
    text = (root / group / "fake.reclaim_daemon").read_text()
    return dict(line.partition(" ")[::2] for line in text.splitlines())


def measure(lesson: Lesson, group: str) -> tuple[str, str]:
    """Passes and CPU of both tasks of ``group`` over MEASURE_SECONDS of wall time."""
    before = [(_reclaim_task(root, group), time.monotonic()) for root in lesson.roots]
    deadline = time.monotonic() + MEASURE_SECONDS
    mounting.wait_until(lambda: time.monotonic() >= deadline, MEASURE_SECONDS + 1, 0.05)
    answers = []
    for root, (start, t0) in zip(lesson.roots, before, strict=True):
        now = _reclaim_task(root, group)
        elapsed = time.monotonic() - t0
        passes = int(now["passes"]) - int(start["passes"])
        cpu = (int(now["time_running_ns"]) - int(start["time_running_ns"])) / 1e9
        if passes:
            measured = f"~{passes / elapsed:.0f} passes/s, ~{cpu / elapsed:.2f} s CPU per s"
        else:
            measured = "0 passes/s, 0 s CPU per s"
        answers.append(f"{measured}, state {now['state']}")
    lesson.out(f"  (watching both tasks for {MEASURE_SECONDS:.0f} s)")
    for label, answer in zip(LABELS, answers, strict=True):
        lesson.out(f"    {label + ':':<11} {answer}")
    lesson.out("")
    return answers[0], answers[1]


def arm(lesson: Lesson, group: str, *, low: str, high: str, limit: str | None = None) -> None:
    """Set a group's watermarks (and limit) in the order each mount needs: the patch's
    defaults force low, high, limit; the repaired mount takes limit, high, low."""
    posted = [("memory.low_wmark_in_bytes", low), ("memory.high_wmark_in_bytes", high)]
    if limit:
        posted.append(("memory.limit_in_bytes", limit))
    repaired = list(reversed(posted))
    shown = "; ".join(f"echo {v} > {group}/{name}" for name, v in posted)
    lesson.run(shown,
               sequence(*(echo(v, f"{group}/{name}") for name, v in posted)),
               sequence(*(echo(v, f"{group}/{name}") for name, v in repaired)))  # fmt: skip


# -- the steps -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    title: str
    quote: str  # the review comment (or the patch's words) the step is about
    show: Callable[[Lesson], None]


def step_trap(lesson: Lesson) -> None:
    lesson.say("""
        res_counter_init_wmark() sets the limit and both watermarks to LLONG_MAX, and
        res_counter_write() refuses a limit below the high watermark. Nobody in the thread
        noticed what follows: on a fresh group, the first thing everybody does fails.""")
    lesson.run("mkdir s1", mkdir("s1"))
    lesson.run("cat s1/memory.high_wmark_in_bytes", cat("s1/memory.high_wmark_in_bytes"))
    lesson.run("echo 64M > s1/memory.limit_in_bytes", echo("64M", "s1/memory.limit_in_bytes"))
    lesson.run("echo 32M > s1/memory.low_wmark_in_bytes; echo 48M > "
               "s1/memory.high_wmark_in_bytes; echo 64M > s1/memory.limit_in_bytes",
               sequence(echo("32M", "s1/memory.low_wmark_in_bytes"),
                        echo("48M", "s1/memory.high_wmark_in_bytes"),
                        echo("64M", "s1/memory.limit_in_bytes")))  # fmt: skip
    lesson.say("""
        What to see: as posted, the limit write fails with EINVAL until the low watermark, then
        the high one, have been brought under it, in that order. Repaired, a watermark nobody
        wrote is disarmed and takes part in no check, so the limit comes first as on any
        kernel. (The repaired mount also shows the unlimited value of today's page counter,
        9223372036854771712, where 2.6.26 showed LLONG_MAX.)""")


def step_members(lesson: Lesson) -> None:
    lesson.say("""
        The patch adds struct { wait_queue_head_t waitq; struct task_struct *thread; } daemon
        to struct mem_cgroup, uncommented. What the comments would have had to say: thread is
        set by the first write to memory.high_wmark_in_bytes, before the value is even parsed,
        and only rmdir clears it; waitq is where the thread sleeps at or under the low
        watermark.""")
    lesson.run("mkdir s2", mkdir("s2"))
    lesson.run("echo 48M > s2/memory.high_wmark_in_bytes",
               echo("48M", "s2/memory.high_wmark_in_bytes"))  # fmt: skip
    lesson.run("cat fake.daemons", cat("fake.daemons"))
    lesson.run(
        "cat s2/fake.reclaim_daemon  # state, name", cat("s2/fake.reclaim_daemon", "state", "name")
    )
    lesson.say("""
        What to see: as posted, the write fails (48M is below the low watermark, still
        LLONG_MAX) and yet a thread called memcontd now runs for s2, and stays. Repaired, the
        write succeeds and starts the task; a write that fails starts nothing. The repaired
        task's members are documented in src/fakecgfs/controller/reclaim_task.py.""")


def step_threads(lesson: Lesson) -> None:
    lesson.say("""
        One kernel thread per group that ever had its high watermark written, each named
        memcontd, each with its own stack, sleeping or not. A workqueue would share a few
        workers among all groups.""")
    for name in ("s3a", "s3b", "s3c"):
        lesson.run(
            f"mkdir {name}; echo 0 > {name}/memory.high_wmark_in_bytes",
            sequence(mkdir(name), echo("0", f"{name}/memory.high_wmark_in_bytes")),
        )
    lesson.run("cat fake.daemons", cat("fake.daemons"))
    lesson.say("""
        What to see: as posted, three more threads, although every write failed (0 is below the
        low watermark). Repaired, three more tasks too: fakecgfs keeps one task per armed group,
        as the patch did, because a trio task costs about a kilobyte and sleeps without a
        thread; it is a work item in all but name. Its name carries the group's path, so tasks
        can be told apart.""")


def step_state_compare(lesson: Lesson) -> None:
    lesson.say("""
        if (state > RES_BELOW_HIGH) mem_cgroup_schedule_reclaim(mem); -- the charge path wakes
        the thread by comparing enum values by order. The order hides a bug the review also
        found: res_counter_state() never returns RES_OVER_LIMIT.""")
    lesson.run("mkdir s4", mkdir("s4"))
    arm(lesson, "s4", low="8M", high="16M", limit="64M")
    lesson.run("echo '16M file' > s4/fake.charge", echo("16M file", "s4/fake.charge"))
    lesson.settle("s4")
    lesson.run("cat s4/fake.reclaim_daemon", cat("s4/fake.reclaim_daemon", "passes", "usage"))
    lesson.run("echo '4M file' > s4/fake.charge", echo("4M file", "s4/fake.charge"))
    lesson.settle("s4")
    lesson.run("cat s4/fake.reclaim_daemon",
               cat("s4/fake.reclaim_daemon", "state", "passes", "usage"))  # fmt: skip
    lesson.say("""
        What to see: at exactly the high watermark no pass runs (the boundary is <=); one
        charge past it wakes both tasks, and both reclaim to the low watermark (8M, 8388608
        bytes; the last pass goes a little under). The repaired charge path asks
        res.above_high_watermark(), and its ResState has no order to compare.

        The order hid a bug: res_counter_state(), which the thread polls, never returns
        RES_OVER_LIMIT. 2.6.26 stores a limit without reclaiming, so usage can sit above it.""")
    lesson.run(
        "mkdir s4b; echo '12M anon' > s4b/fake.charge",
        sequence(mkdir("s4b"), echo("12M anon", "s4b/fake.charge")),
    )
    arm(lesson, "s4b", low="4M", high="8M", limit="8M")
    lesson.run(
        "cat s4b/memory.limit_in_bytes s4b/memory.usage_in_bytes",
        sequence(cat("s4b/memory.limit_in_bytes"), cat("s4b/memory.usage_in_bytes")),
    )
    lesson.run(
        "cat s4b/fake.reclaim_daemon  # res_state", cat("s4b/fake.reclaim_daemon", "res_state")
    )
    lesson.run("rmdir s4b", rmdir("s4b"))
    lesson.say("""
        What to see: as posted, the limit is stored under the usage and the state says
        RES_BELOW_LIMIT. Repaired, the limit write must reclaim first and, with only anonymous
        memory and no swap, fails with EBUSY; its res_counter reports OVER_LIMIT whenever usage
        is above the limit (it has no res_state line: the state is internal).""")


def step_nice(lesson: Lesson) -> None:
    lesson.say("""
        set_user_nice(current, 0); /* we don't want to use cpu too much. */ -- kthreads ran at
        nice -5 then; 0 was meant to be weaker. Balbir asked for a #define.""")
    lesson.run("cat s2/fake.reclaim_daemon  # nice", cat("s2/fake.reclaim_daemon", "nice"))
    lesson.say("""
        What to see: as posted, a bare nice 0. Repaired, there is no nice value to tune: the
        task does not spin, and its pace is a named constant (RECLAIM_TASK_PASS_INTERVAL,
        controller/constants.py) and a mount option (--reclaim-rate). Nice would not have
        helped anyway: a spinning thread at any nice value takes every idle cycle.""")


def step_wait_loop(lesson: Lesson) -> None:
    lesson.say("""
        prepare_to_wait(); if (res_counter_state(&mem->res) == RES_BELOW_LOW) { if
        (!kthread_should_stop()) { schedule(); try_to_freeze(); } finish_wait(); continue; }
        -- it says: sleep only when usage
        is at or under the low watermark; check for a stop first; let the freezer in.""")
    lesson.run("mkdir s6", mkdir("s6"))
    arm(lesson, "s6", low="8M", high="16M", limit="64M")
    lesson.run("echo '24M file' > s6/fake.charge", echo("24M file", "s6/fake.charge"))
    lesson.settle("s6")
    lesson.run("cat s6/fake.reclaim_daemon",
               cat("s6/fake.reclaim_daemon", "state", "passes", "usage"))  # fmt: skip
    lesson.say("""
        What to see: both tasks woke, reclaimed page cache down to the low watermark (8M,
        8388608 bytes; the last pass goes a little under) and went back to sleep. The repaired loop
        says the same in two lines: sleep until usage is above the high watermark, then
        reclaim while it is above the low one.""")


def step_yield(lesson: Lesson) -> None:
    lesson.say("""
        ret = try_to_free_mem_cgroup_pages(mem, GFP_HIGHUSER_MOVABLE); yield(); -- the loop
        sleeps only at or under the low watermark, so anywhere above it the thread runs pass
        after pass, whether a pass freed anything or not. Here: 12M of anonymous memory and no
        swap, then watermarks 8M and 16M.""")
    lesson.run(
        "mkdir s7; echo '12M anon' > s7/fake.charge",
        sequence(mkdir("s7"), echo("12M anon", "s7/fake.charge")),
    )
    arm(lesson, "s7", low="8M", high="16M")
    measure(lesson, "s7")
    lesson.say("""
        What to see: as posted, the thread started by the high-watermark write found usage
        above the low watermark and has not slept since: about a hundred passes a second,
        each freeing nothing, one CPU second per second. Repaired, usage is not above the high
        watermark, so the task sleeps: zero passes. Now push usage above the high
        watermark.""")
    lesson.run("echo '8M anon' > s7/fake.charge", echo("8M anon", "s7/fake.charge"))
    mounting.wait_until(lambda: _reclaim_task(lesson.repaired, "s7")["state"] == "backoff",
                        SETTLE_TIMEOUT, 0.01)  # fmt: skip
    measure(lesson, "s7")
    lesson.run(
        "cat s7/fake.reclaim_daemon  # last_warning", cat("s7/fake.reclaim_daemon", "last_warning")
    )
    lesson.say("""
        What to see: as posted, still a hundred empty passes a second. Repaired, a few passes
        freed nothing, the task warned and backs off (0.1 s, doubling to 10 s): a pass now
        and then, almost no CPU.""")


def step_stop(lesson: Lesson) -> None:
    lesson.say("""
        The low-watermark code is the RES_BELOW_LOW test of step 6:
        the thread sleeps there. It is never stopped but by rmdir.""")
    lesson.run("cat fake.daemons", cat("fake.daemons"))
    lesson.run("echo stop > s6/fake.reclaim_daemon", echo("stop", "s6/fake.reclaim_daemon"))
    lesson.run("echo -1 > s7/memory.high_wmark_in_bytes",
               echo("-1", "s7/memory.high_wmark_in_bytes"))  # fmt: skip
    lesson.run(
        "rmdir s3a s3b s3c; cat fake.daemons",
        sequence(rmdir("s3a"), rmdir("s3b"), rmdir("s3c"), cat("fake.daemons")),
    )
    lesson.say("""
        What to see: as posted, every thread ever started is still there, s7's still spinning;
        there is no way to stop one (EINVAL: no interface, and -1 is not a number in 2.6.26)
        but rmdir, which stops it before force_empty. Repaired, a sleeping task is the stopped
        state the reviewer asked for (it costs nothing), and `stop` or -1 ends it for good.""")


def step_todo(lesson: Lesson) -> None:
    lesson.say("""
        The patch's own TODO list: an interface to start/stop the daemon; wise NUMA support;
        "too small low watermark target just consumes CPU. Should we warn?"; what is the best
        value for hwmark/lwmark in general.""")
    lesson.run("mkdir s9", mkdir("s9"))
    arm(lesson, "s9", low="16380K", high="16M")
    lesson.run("echo stop > s9/fake.reclaim_daemon; echo start > s9/fake.reclaim_daemon",
               sequence(echo("stop", "s9/fake.reclaim_daemon"),
                        echo("start", "s9/fake.reclaim_daemon")))  # fmt: skip
    lesson.run("cat s9/memory.numa_stat", cat("s9/memory.numa_stat"))
    lesson.run(
        "cat s9/fake.reclaim_daemon  # last_warning", cat("s9/fake.reclaim_daemon", "last_warning")
    )
    lesson.run("mkdir s9b; echo 48M > s9b/memory.high_wmark_in_bytes; "
               "cat s9b/memory.low_wmark_in_bytes",
               sequence(mkdir("s9b"), echo("48M", "s9b/memory.high_wmark_in_bytes"),
                        cat("s9b/memory.low_wmark_in_bytes")))  # fmt: skip
    lesson.say("""
        What to see, item by item. Start/stop: as posted there is none (EINVAL); repaired,
        fake.reclaim_daemon takes start and stop, and -1 disarms. NUMA: both model one node
        (2.6.26 had no numa_stat; RFC 4/4's node choice is not modelled). The small gap: as
        posted, a 4 KiB gap is silently accepted; repaired, it is accepted with a warning,
        as is a low watermark under what cannot be reclaimed. Defaults: as posted, LLONG_MAX
        for both (the trap of step 1, and a task that can never do anything); repaired, a
        high watermark alone gets a low one 0.5% below it, at least one 32-page batch
        (Alibaba Cloud Linux's shipped default gap).""")


STEPS = (
    Step("a fresh group, and a limit", "(nobody noticed)", step_trap),
    Step("comments on the members", "Comments on each of the members would be nice.", step_members),
    Step(
        "threads or workqueues",
        "I suspect we are using threads. Aren't workqueues better than threads?",
        step_threads,
    ),
    Step(
        "state > RES_BELOW_HIGH",
        "I really don't like state > RES_BELOW_HIGH sort of checks. "
        "Could we please abstract them into functions",
        step_state_compare,
    ),
    Step(
        "the magic nice value",
        "Shouldn't this (0) be a #define, what if we would like to "
        "degrade our nice value even further later?",
        step_nice,
    ),
    Step("the sleep", "I am afraid, I fail to understand the code above.", step_wait_loop),
    Step(
        "yield()", "Why do we yeild here? Shouldn't our waitqueue handle the waiting?", step_yield
    ),
    Step(
        "stopping below the low watermark",
        "I failed to see code for the low watermark. "
        "Shouldn't we stop the thread once we go below the low watermark?",
        step_stop,
    ),
    Step("the patch's TODO list", "(the patch's own)", step_todo),
)

DEPENDS = {5: (2,), 8: (3, 6, 7)}
"""Steps that look at groups an earlier step made: ``--step N`` runs these first, silently."""


def run_steps(lesson: Lesson, numbers: list[int], *, pause: bool) -> None:
    for n in numbers:
        step = STEPS[n - 1]
        lesson.out(f"== step {n}/{len(STEPS)}: {step.title} ==")
        lesson.out(textwrap.fill(f"> {step.quote}", WIDTH, subsequent_indent="> "))
        lesson.out("")
        step.show(lesson)
        if pause and n != numbers[-1]:
            input("-- Enter for the next step --")


def run(args: argparse.Namespace) -> int:
    if args.step is not None and not 1 <= args.step <= len(STEPS):
        print(f"fakecgfs review: steps are 1 to {len(STEPS)}", file=sys.stderr)
        return 2
    numbers = list(range(1, len(STEPS) + 1)) if args.step is None else [args.step]
    pause = not args.no_pause and args.step is None and sys.stdin.isatty()
    with tempfile.TemporaryDirectory(prefix="fakecgfs-review-") as directory:
        with two_mounts(Path(directory)) as lesson:
            if args.step is not None:
                quiet = Lesson(lesson.posted, lesson.repaired, lesson.traces, out=lambda _: None)
                for n in DEPENDS.get(args.step, ()):
                    STEPS[n - 1].show(quiet)
            run_steps(lesson, numbers, pause=pause)
        if args.plot:
            from .review_plot import plot_side_by_side

            plot_side_by_side(*lesson.traces, args.plot, group="/s7")
            print(f"fakecgfs review: step 7 on both mounts drawn in {args.plot}", file=sys.stderr)
    return 0
