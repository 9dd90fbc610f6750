"""Real member processes: who they are, what they hold, the sampler, and what is done to them.

``RealProcesses`` is the controller's ``RealMemory``: the controller tells it when a PID is
written into a group and asks it to re-sample before a read, to page out, to kill, to stop and
to continue; it tells the controller, through ``charge_real()``/``uncharge_real()``, what the
members' pages became.

Who is ever acted on: only a *member*, a process a writer moved into a group through ``tasks``
or ``cgroup.procs`` (which enforce who may move what), or a child such a process forked.  Never
PID 1, the server itself, or a kernel thread: those may be written into ``tasks`` as the kernel
allows, but they are never members.  Each member is held by a pidfd taken when it joined and
its /proc directory opened with it; every signal and every process_madvise() goes through the
pidfd, so a recycled PID is never hit.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import signal
import threading
import time
from collections.abc import Callable

import trio

from .. import linux
from ..controller import MemCgroup, MemoryController, RealKind
from ..controller.real import NR_REAL_KINDS
from .ledger import Ledger, _live
from .procfs import (
    PF_KTHREAD,
    LockedSplit,
    LockingReads,
    ProcDir,
    Usage,
    host_has_swap,
    image_of,
    parse_children,
    parse_locked_split,
    parse_status,
    private_anon,
    read_at,
    read_sysvipc_shm,
    reclaimable_ranges,
    shmem_device,
    stat_fields,
)  # fmt: skip

log = logging.getLogger("fakecgfs")

SAMPLE_INTERVAL = 0.02
"""Seconds between two looks at the members while their memory moves: what a limit, a
watermark or a usage threshold may lag behind a member that nobody reads."""

IDLE_SAMPLE_INTERVAL = 0.05
"""...once nothing has changed for IDLE_AFTER seconds: idle members cost less."""

IDLE_AFTER = 1.0

ACTIVE_CPU_BUDGET = 0.05
IDLE_CPU_BUDGET = 0.005
"""At most this fraction of a core goes to looking at members (while some changed recently,
and once all are quiet): with many members a look takes longer, and the sampler waits longer
between two looks (a look costs a few microseconds per member)."""

FULL_SAMPLE_EVERY = 20
"""Every so many looks, read each member's status even if its statm did not change: mlock of
pages already resident changes VmLck and nothing in statm."""

MAX_MEMBERS = 8192
"""Processes followed at most (fewer if the descriptor limit is low): every look costs a few
microseconds per member."""

FDS_PER_MEMBER = 5  # its pidfd, its /proc directory, statm, status, children
RESERVED_FDS = 1024  # for everything else the server opens

OOM_EXIT_TIMEOUT = 5.0
# process_madvise() waits for the member's mmap_lock, which it can keep from being taken (see
# procfs.LockingReads): a reclaim waits this long for one member's page-out, then leaves it to
# its thread and skips that member until it has ended.
PAGEOUT_WAIT = 1.0
"""Seconds to wait for an OOM victim to exit before looking again."""

MADV_PAGEOUT = 21  # include/uapi/asm-generic/mman-common.h
MAX_MAPS_READ = 64 << 20  # a worker thread reads maps: up to the kernel's 65530 mappings
IOV_BATCH = 512  # ranges per process_madvise() call (UIO_MAXIOV is 1024)


class Member:
    """One member process and what fakecgfs knows of it."""

    __slots__ = ("pid", "pidfd", "proc", "memcg", "ledger", "statm", "children", "image",
                 "shmem", "locked", "target", "joined", "stopped_by")  # fmt: skip

    def __init__(self, pid: int, pidfd: int, proc: ProcDir, memcg: MemCgroup) -> None:
        self.pid = pid
        self.pidfd = pidfd  # every action goes through it
        self.proc = proc
        self.memcg = memcg  # the group its gains are charged to
        self.ledger = Ledger([0] * NR_REAL_KINDS)
        self.statm = b""  # the last statm seen: unchanged means nothing to re-read
        self.children = b""  # the last children list seen
        self.image: tuple[int, int] | None = None  # its code's address: a change means exec
        self.shmem = 0  # its last RssShmem, pages
        self.locked: tuple[int, LockedSplit] | None = None  # VmLck, and where those pages are
        self.target: list[int] | None = None  # its pages by RealKind at the last sample
        self.joined = time.time()
        self.stopped_by: MemCgroup | None = None  # the group whose OOM stopped it

    def close(self) -> None:
        self.proc.close()
        os.close(self.pidfd)


class TrackedSegment:
    """A SysV segment a member created: its pages outlive the member, charged to the group
    the member was in, until the segment is removed."""

    __slots__ = ("memcg", "ledger", "owner", "mapped")

    def __init__(self, memcg: MemCgroup, owner: int) -> None:
        self.memcg = memcg
        self.ledger = Ledger([0] * NR_REAL_KINDS)
        self.owner = owner  # the member that created it: its RssShmem counts these pages
        self.mapped = 0  # resident pages while attached (0 once nobody is): not its owner's


class RealProcesses:
    """The members of a controller's groups (the controller's ``RealMemory``)."""

    def __init__(self, controller: MemoryController) -> None:
        self.ctl = controller
        self.members: dict[int, Member] = {}
        self.segments: dict[int, TrackedSegment] = {}  # by shmid
        self.exempt = frozenset({1, os.getpid()})  # never members, never acted on
        self.shmem_dev = shmem_device()
        self.locking_reads = LockingReads()  # smaps, smaps_rollup: never waited for long
        self.swap = host_has_swap()
        self._wakeup = trio.Event()
        self._madvise_refused = False
        self._pageouts_left: dict[int, threading.Event] = {}  # by pid: not ended yet
        self._full_warned = False
        descriptors = _raise_descriptor_limit()
        self.max_members = min(MAX_MEMBERS, max(descriptors - RESERVED_FDS, 0) // FDS_PER_MEMBER)

    # -- joining and leaving -----------------------------------------------------------------

    def attached(self, memcg: MemCgroup, pid: int) -> None:
        member = self.members.get(pid)
        if member is not None:
            self._sample(member)  # what it gained until now stays with the old group
            member.memcg = memcg
            stopped_by = member.stopped_by
            if stopped_by is not None and not stopped_by.is_ancestor_of(memcg):
                self._signal(member, signal.SIGCONT)  # moved out of the group in OOM
                member.stopped_by = None
            if member.stopped_by is None:
                self._stop_if_under_oom(member)
            return
        self._join(memcg, pid, inherit=None)

    def _join(self, memcg: MemCgroup, pid: int, inherit: Member | None) -> Member | None:
        """Make ``pid`` a member.  What it has now is its baseline; a child (``inherit``: its
        parent) that has not exec'd shares its parent's pages, which are charged already, but
        one that has exec'd has nothing but what it made in the group."""
        if pid in self.exempt:
            return None
        if len(self.members) >= self.max_members:
            if not self._full_warned:
                log.warning("%d members: further processes are not followed", self.max_members)
                self._full_warned = True
            return None
        try:
            pidfd = linux.pidfd_open(pid)
        except OSError:
            return None
        try:
            proc = ProcDir(pid)
        except OSError:
            os.close(pidfd)
            return None
        member = Member(pid, pidfd, proc, memcg)
        try:
            linux.pidfd_send_signal(pidfd, 0)  # alive after the opens: they name this process
            stat = proc.read("stat") or b""
            flags = int(stat_fields(stat)[9 - 3])
        except (OSError, ValueError, IndexError):
            member.close()
            return None
        if flags & PF_KTHREAD:  # no memory of its own, and never acted on
            member.close()
            return None
        member.statm = proc.statm()
        member.image = image_of(stat)
        usage = parse_status(proc.status())
        if usage is None:
            member.close()
            return None
        baseline = self._pages(member, usage)
        if inherit is not None:
            if inherit.image != member.image:  # exec'd: its whole image was made in the group
                baseline = [0] * NR_REAL_KINDS
            else:  # what it wrote since fork is its own; the rest is its parent's, charged
                own = private_anon(self.locking_reads.read(proc, "smaps_rollup") or b"")
                baseline[RealKind.ANON] = max(baseline[RealKind.ANON] - own, 0)
        member.ledger = Ledger(baseline)
        self.members[pid] = member
        self._sample(member)
        self._stop_if_under_oom(member)
        self._wakeup.set()
        return member

    def _stop_if_under_oom(self, member: Member) -> None:
        """A process arriving in a subtree that waits in OOM waits too (the kernel would make
        it wait at its first charge)."""
        for node in member.memcg.lineage():
            if node.under_oom() and self._signal(member, signal.SIGSTOP):
                member.stopped_by = node
                return

    def _exited(self, member: Member) -> None:
        member.ledger.release(self.ctl)
        del self.members[member.pid]
        member.close()

    def close(self) -> None:
        """The mount goes away: continue every member an OOM stopped, let go of the rest."""
        for member in list(self.members.values()):
            if member.stopped_by is not None:
                self._signal(member, signal.SIGCONT)
            member.close()
        self.members.clear()

    # -- sampling ------------------------------------------------------------------------------

    def _pages(self, member: Member, usage: Usage) -> list[int]:
        """The member's pages by RealKind, from its status (and smaps when it has locked
        pages); SysV pages it created are the segment's, not its own."""
        shmem = usage.shmem - sum(s.mapped for s in self.segments.values() if s.owner == member.pid)
        shmem = max(shmem, 0)
        split = self._locked_split(member, usage)
        pages = [0] * NR_REAL_KINDS
        pages[RealKind.ANON_LOCKED] = min(split.anon, usage.anon)
        pages[RealKind.ANON] = usage.anon - pages[RealKind.ANON_LOCKED]
        pages[RealKind.SHMEM_LOCKED] = min(split.shmem, shmem)
        pages[RealKind.SHMEM] = shmem - pages[RealKind.SHMEM_LOCKED]
        pages[RealKind.FILE_LOCKED] = min(split.file, usage.file)
        pages[RealKind.FILE] = usage.file - pages[RealKind.FILE_LOCKED]
        pages[RealKind.SWAP] = usage.swap
        return pages

    def _locked_split(self, member: Member, usage: Usage) -> LockedSplit:
        """Which mappings hold the member's mlocked pages, from its smaps, read again only when
        VmLck changes (a locked mapping is wholly resident once mlock() has returned: its kind
        cannot change otherwise; until then smaps shows fewer locked pages than VmLck).
        Beyond MAX_PROC_READ of smaps, locked pages are taken as anonymous first."""
        if not usage.locked:
            return LockedSplit()
        cached = member.locked
        if cached is not None and cached[0] == usage.locked:
            return cached[1]
        smaps = self.locking_reads.read(member.proc, "smaps")
        if smaps is None:
            anon = min(usage.locked, usage.anon)
            shmem = min(usage.locked - anon, usage.shmem)
            split = LockedSplit(anon, shmem, min(usage.locked - anon - shmem, usage.file))
            if self.locking_reads.refused:  # not read now: read again at the next sample
                return split
        else:
            split = parse_locked_split(smaps, self.shmem_dev)
            if split.anon + split.shmem + split.file < usage.locked:
                return split  # mlock() still faulting its pages in: read again next time
        member.locked = (usage.locked, split)
        return split

    def _sample(self, member: Member, *, full: bool = True) -> bool:
        """Bring one member's charges up to date; True if anything changed.  Unless ``full``,
        its status is read only if its statm moved: statm costs a tenth of status, and every
        fault, free, swap-out or exec changes it (an mlock() of pages already resident does
        not: full samples catch that)."""
        statm = member.proc.statm()
        changed = self._adopt_children(member)
        if statm == member.statm and not full:
            return changed
        usage = parse_status(member.proc.status()) if statm else None
        if usage is None:
            self._exited(member)
            return True
        image = image_of(member.proc.read("stat") or b"")
        if image is not None and member.image is not None and image != member.image:
            member.ledger.release(self.ctl)  # exec: the old image is gone, all is new here
            member.target = None
        member.image = image
        member.statm = statm
        member.shmem = usage.shmem
        target = self._pages(member, usage)
        if target == member.target:
            return changed
        member.ledger.apply(self.ctl, member.memcg, target)
        member.target = target
        return True

    def _adopt_children(self, member: Member) -> bool:
        """Children of a member are members of its group; True if its children changed."""
        children = member.proc.children()
        if children == member.children:
            return False
        member.children = children
        for pid in parse_children(children):
            if pid not in self.members and self._join(member.memcg, pid, inherit=member):
                self.ctl.adopt(member.memcg, pid)
        return True

    def _sample_segments(self) -> None:
        """SysV segments: track the new ones members created, follow the tracked ones, and
        uncharge those removed (IPC_RMID and last detach)."""
        found = read_sysvipc_shm()
        for shmid in [s for s in self.segments if s not in found]:
            self.segments.pop(shmid).ledger.release(self.ctl)
        owners: set[int] = set()  # members whose share of RssShmem moved to or from a segment
        settled = []
        for shmid, seg in found.items():
            tracked = self.segments.get(shmid)
            if tracked is None:
                creator = self.members.get(seg.cpid)
                if creator is None or seg.ctime < int(creator.joined):
                    continue
                tracked = self.segments[shmid] = TrackedSegment(creator.memcg, seg.cpid)
            mapped = seg.rss if seg.nattch else 0
            if mapped != tracked.mapped:
                tracked.mapped = mapped
                owners.add(tracked.owner)
            pages = [0] * NR_REAL_KINDS
            pages[RealKind.SHMEM if seg.nattch else RealKind.SHMEM_UNMAPPED] = seg.rss
            pages[RealKind.SWAP] = seg.swap
            settled.append((tracked, pages))
        # The owners first: pages passing from a member to its segment leave the member before
        # they arrive in the segment, so they are never counted twice against a limit.
        for pid in owners:
            if pid in self.members:
                self._sample(self.members[pid])
        for tracked, pages in settled:
            tracked.ledger.apply(self.ctl, tracked.memcg, pages)

    def _segments_wanted(self) -> bool:
        return bool(self.segments) or any(m.shmem for m in self.members.values())

    def _in(self, memcg: MemCgroup) -> list[Member]:
        """Members whose group is in ``memcg``'s subtree."""
        if memcg.is_root():
            return list(self.members.values())
        return [m for m in self.members.values() if memcg.is_ancestor_of(_live(m.memcg))]

    def _holding_in(self, memcg: MemCgroup) -> list[Member]:
        """Members with pages charged in ``memcg``'s subtree: those in it, and those that
        moved out leaving charges behind."""
        if memcg.is_root():
            return list(self.members.values())
        return [
            m for m in self.members.values()
            if memcg.is_ancestor_of(_live(m.memcg))
            or any(memcg.is_ancestor_of(_live(g)) for g in m.ledger.groups())
        ]  # fmt: skip

    def refresh(self, memcg: MemCgroup) -> None:
        if not self.members and not self.segments:
            return
        if self._segments_wanted():
            self._sample_segments()
        for member in self._holding_in(memcg):
            if member.pid in self.members:
                self._sample_guarded(member, full=False)

    def tick(self, *, full: bool = False) -> bool:
        """One look at every member: re-read those whose statm or children changed (all of
        them when ``full``); True if anything changed."""
        changed = False
        if self._segments_wanted():
            self._sample_segments()
        for member in list(self.members.values()):
            if member.pid in self.members:
                changed |= self._sample_guarded(member, full=full)
        return changed

    def _sample_guarded(self, member: Member, *, full: bool) -> bool:
        """_sample(), where /proc saying something unexpected is logged, never fatal: the
        server must outlive whatever a member does."""
        try:
            return self._sample(member, full=full)
        except (OSError, ValueError, IndexError):
            log.exception("sampling member %d failed", member.pid)
            return False

    async def run(self) -> None:
        """The sampler: looks at the members every SAMPLE_INTERVAL while their memory moves,
        every IDLE_SAMPLE_INTERVAL once they are quiet (longer with so many members that a look
        would cost more than its CPU budget), and sleeps without a timer when there are none."""
        looks = 0
        last_change = trio.current_time()
        while True:
            if not self.members and not self.segments:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                last_change = trio.current_time()
                continue
            looks += 1
            started = time.perf_counter()
            if self.tick(full=looks % FULL_SAMPLE_EVERY == 0):
                last_change = trio.current_time()
            spent = time.perf_counter() - started
            if trio.current_time() - last_change >= IDLE_AFTER:
                await trio.sleep(max(IDLE_SAMPLE_INTERVAL, spent / IDLE_CPU_BUDGET))
            else:
                await trio.sleep(max(SAMPLE_INTERVAL, spent / ACTIVE_CPU_BUDGET))

    # -- acting on members ---------------------------------------------------------------------

    def has_members(self, memcg: MemCgroup) -> bool:
        return bool(self._holding_in(memcg))

    def _charged_in(self, member: Member, memcg: MemCgroup) -> int:
        groups = set(memcg.subtree())
        return member.ledger.charged_in(groups)

    async def reclaim(self, memcg: MemCgroup, nr_pages: int) -> int:
        if self._madvise_refused:
            return 0
        before = _real_in_memory(memcg)
        # The kernel reclaims the pages charged to the group, whoever maps them now.
        for member in sorted(self._holding_in(memcg), key=lambda m: -self._charged_in(m, memcg)):
            if not await self._pageout(member):
                break
            if member.pid in self.members:
                self._sample(member)
            if before - _real_in_memory(memcg) >= nr_pages:
                break
        return max(before - _real_in_memory(memcg), 0)

    async def _pageout(self, member: Member) -> bool:
        """MADV_PAGEOUT over the member's reclaimable mappings, in a worker thread (its maps
        may be long, and a large range takes the kernel a while); False if the server may not
        (no CAP_SYS_NICE or ptrace rights)."""
        left = self._pageouts_left.get(member.pid)
        if left is not None:
            if not left.is_set():
                return True  # its last page-out still waits for its mmap_lock: skip it
            del self._pageouts_left[member.pid]
        # The thread gets its own descriptors: the member may be closed while it runs.
        pidfd, dirfd = os.dup(member.pidfd), member.proc.dup()
        done = threading.Event()

        def work() -> None:
            try:
                _pageout(pidfd, dirfd, self.shmem_dev, self.swap)
            finally:
                os.close(pidfd)
                os.close(dirfd)
                done.set()

        with trio.move_on_after(PAGEOUT_WAIT) as waited:
            try:
                await trio.to_thread.run_sync(work, abandon_on_cancel=True)
            except OSError as e:
                if e.errno in (errno.EPERM, errno.EACCES, errno.ENOSYS):
                    log.warning("real reclaim disabled: process_madvise refused (%s)", e)
                    self._madvise_refused = True
                    return False
        if waited.cancelled_caught:
            self._pageouts_left[member.pid] = done
            log.warning("page-out of process %d took over %g s (its mmap_lock is held): "
                        "skipped until it ends", member.pid, PAGEOUT_WAIT)  # fmt: skip
        return True

    async def oom_kill(self, memcg: MemCgroup, killed: Callable[[MemCgroup], None]) -> bool:
        self.refresh(memcg)
        candidates = [(self._charged_in(m, memcg), m.pid, m) for m in self._in(memcg)]
        candidates = [c for c in candidates if c[0] > 0]
        if not candidates:
            return False
        charged, pid, victim = max(candidates, key=lambda c: (c[0], c[1]))
        log.info("OOM in %s: killing member %d (%d pages charged there)", memcg.path, pid, charged)
        pidfd = os.dup(victim.pidfd)
        try:
            try:
                linux.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass  # already gone
            killed(victim.memcg)
            with trio.move_on_after(OOM_EXIT_TIMEOUT):
                await trio.lowlevel.wait_readable(pidfd)
        finally:
            os.close(pidfd)
        if self.members.get(pid) is victim:
            self._sample(victim)
        return True

    def freeze(self, memcg: MemCgroup) -> None:
        for member in self._in(memcg):
            if member.stopped_by is None and self._signal(member, signal.SIGSTOP):
                member.stopped_by = memcg

    def thaw(self, memcg: MemCgroup) -> None:
        for member in list(self.members.values()):
            if member.stopped_by is memcg:
                self._signal(member, signal.SIGCONT)
                member.stopped_by = None

    @staticmethod
    def _signal(member: Member, signum: int) -> bool:
        try:
            linux.pidfd_send_signal(member.pidfd, signum)
        except OSError:
            return False
        return True


def _raise_descriptor_limit() -> int:
    """Members hold descriptors: take the hard limit on them, as servers of many clients do;
    return the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            pass
    return soft if soft != resource.RLIM_INFINITY else MAX_MEMBERS * FDS_PER_MEMBER * 2


def _real_in_memory(memcg: MemCgroup) -> int:
    return sum(n.real[k] for n in memcg.subtree() for k in RealKind if k is not RealKind.SWAP)


def _pageout(pidfd: int, dirfd: int, shmem_dev: bytes, anon: bool) -> None:
    """In a worker thread: read the process's maps, then process_madvise(MADV_PAGEOUT) its
    reclaimable ranges in batches; a batch refused because one of its mappings cannot be paged
    out (mlocked: EINVAL; unmapped meanwhile: ENOMEM) is retried range by range, skipping
    those."""
    maps = read_at(dirfd, "maps", MAX_MAPS_READ)
    ranges = reclaimable_ranges(maps or b"", shmem_dev, anon=anon)
    for i in range(0, len(ranges), IOV_BATCH):
        batch = ranges[i : i + IOV_BATCH]
        try:
            linux.process_madvise(pidfd, batch, MADV_PAGEOUT)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOMEM):
                raise
            for one in batch:
                try:
                    linux.process_madvise(pidfd, [one], MADV_PAGEOUT)
                except OSError as e:
                    if e.errno not in (errno.EINVAL, errno.ENOMEM, errno.ESRCH):
                        raise
