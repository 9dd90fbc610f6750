"""``cgroup.event_control``: registering an eventfd, as memcg_write_event_control() does.

The line is ``<event_fd> <control_fd> [args]`` and both numbers are descriptors of the
*writer*.  The FUSE request names the writing thread.  The server is root and the writer is
anyone, so nothing is read from the writer's descriptor table but the descriptors themselves:

* Both are duplicated first, with pidfd_open() + pidfd_getfd() (Linux 5.6+), and only the
  duplicates are checked (/proc/self/fd, /proc/self/fdinfo): a thread of the writer that
  dup2()s another file over a number cannot change what was checked.  pidfd_getfd() needs
  ptrace-level permission over the writer: a root server has it; a server run by a user has it
  over that user's processes unless Yama forbids it (then EPERM).
* The checks and their errnos come in the kernel's order (mm/memcontrol-v1.c): the line
  (EINVAL), the event_fd (EBADF, EINVAL if not an eventfd), the control_fd (EBADF, also for an
  O_PATH descriptor, which fdget() ignores), the writer's read permission on the control file
  (EACCES: file_permission(cfile, MAY_READ) with the writer's credentials against the file's
  mode and owner here), then the file: one of this mount, regular, watchable, of this group
  (EINVAL), then the args (EINVAL).
* Signals go through Linux AIO (``EventfdSignaller``): the kernel's own eventfd_signal(), which
  never blocks and saturates the counter, so a full blocking eventfd cannot stall the server.
* Registrations of one open eventfd by one user share one server descriptor; each user may make
  the server hold at most MAX_DESCRIPTORS_PER_USER of them (EMFILE beyond) and
  MAX_REGISTRATIONS_PER_USER registrations (ENOSPC beyond).  A registration lasts until its
  group goes, as in the kernel, or until nobody but the server holds its eventfd any more,
  which a scan of /proc finds when a user reaches the descriptor bound (the kernel drops a
  registration when its eventfd is closed: EPOLLHUP).  Root is not bounded.

What fires a registration, and when, is ``fakecgfs.controller.notify``.  docs/security.md has
the model and its tests.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import functools
import logging
import os
import resource
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from weakref import WeakKeyDictionary

import trio

from .. import linux
from ..controller import ControllerError, MemCgroup, MemoryController
from ..controller.notify import PressureLevel, PressureMode, Registration, Watch
from .parse import PAGE_COUNTER_MAX, PAGE_SIZE, memparse, strstrip

log = logging.getLogger("fakecgfs")

EVENTFD_TARGET = "anon_inode:[eventfd]"

MAX_DESCRIPTORS_PER_USER = 256
"""Eventfd descriptors the server may hold for one user's registrations (EMFILE beyond).  The
kernel has no such bound, but it spends no descriptor per registration either: without one, a
user could take every descriptor of the shared server."""

MAX_REGISTRATIONS_PER_USER = 4096
"""Registrations one user may hold (ENOSPC beyond): each costs the server memory and a check on
every usage change of its group."""

SCAN_INTERVAL = 1.0
"""Seconds between two scans of /proc for eventfds nobody but the server holds any more."""

AIO_EVENTS = 64
"""Completions the signalling AIO context can hold; each signal is reaped at once."""

CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_SYS_ADMIN = 21
MAY_READ = 0o4  # the read bit of each class in a mode


def _simple_strtoul(buf: bytes) -> tuple[int, bytes]:
    """Decimal digits at the start (simple_strtoul base 10); value and the rest."""
    i = 0
    while i < len(buf) and 0x30 <= buf[i] <= 0x39:
        i += 1
    return (int(buf[:i]) if i else 0), buf[i:]


def parse_registration(data: bytes) -> tuple[int, int, bytes]:
    """Split '<efd> <cfd> [args]' with the kernel's rules: single spaces only, else EINVAL."""
    buf = strstrip(data)
    efd, rest = _simple_strtoul(buf)
    if not rest.startswith(b" "):
        raise ControllerError(errno.EINVAL, "expected '<event_fd> <control_fd> [args]'")
    cfd, rest = _simple_strtoul(rest[1:])
    if rest == b"":
        args = b""
    elif rest.startswith(b" "):
        args = rest[1:]
    else:
        raise ControllerError(errno.EINVAL, "expected '<event_fd> <control_fd> [args]'")
    return efd, cfd, args


def parse_threshold(args: bytes) -> int:
    """A usage threshold in pages, parsed unstripped as the register function does."""
    if args == b"-1":
        return PAGE_COUNTER_MAX
    value, rest = memparse(args)
    if rest:
        raise ControllerError(errno.EINVAL, "threshold is a size")
    return min(value // PAGE_SIZE, PAGE_COUNTER_MAX)


def parse_pressure(args: bytes) -> tuple[PressureLevel, PressureMode]:
    """'level[,mode]' split on commas; tokens after the mode are ignored (vmpressure)."""
    tokens = args.split(b",")
    levels = {level.value.encode(): level for level in PressureLevel}
    modes = {mode.value.encode(): mode for mode in PressureMode}
    if tokens[0] not in levels or (len(tokens) > 1 and tokens[1] not in modes):
        raise ControllerError(errno.EINVAL, "pressure level: low|medium|critical[,mode]")
    return levels[tokens[0]], modes[tokens[1]] if len(tokens) > 1 else PressureMode.DEFAULT


# -- the writer and its descriptors ----------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What file_permission() looks at: the writer's fsuid, fsgid, groups and capabilities."""

    uid: int
    gid: int
    groups: frozenset[int]
    capabilities: int  # CapEff

    def may_read(self, mode: int, uid: int, gid: int) -> bool:
        """generic_permission(MAY_READ): the owner's bits, else the group's, else the others';
        CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH read anything."""
        if self.capabilities & (1 << CAP_DAC_OVERRIDE | 1 << CAP_DAC_READ_SEARCH):
            return True
        if self.uid == uid:
            bits = mode >> 6
        elif self.gid == gid or gid in self.groups:
            bits = mode >> 3
        else:
            bits = mode
        return bool(bits & MAY_READ)


def _status(tid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{tid}/status", encoding="ascii", errors="replace") as f:
            return dict(line.rstrip("\n").partition(":\t")[::2] for line in f)
    except OSError:
        raise ControllerError(errno.ESRCH, f"the writer {tid} is gone") from None


def writer_credentials(tid: int, uid: int, gid: int) -> tuple[int, Credentials]:
    """The writing thread's process ID and credentials (fsuid and fsgid from the request)."""
    status = _status(tid)
    try:
        tgid = int(status["Tgid"])
        groups = frozenset(int(g) for g in status.get("Groups", "").split())
        capabilities = int(status.get("CapEff", "0"), 16)
    except (KeyError, ValueError):
        raise ControllerError(errno.ESRCH, f"the writer {tid} is gone") from None
    return tgid, Credentials(uid, gid, groups, capabilities)


def fdinfo(fd: int) -> dict[str, str]:
    """/proc/self/fdinfo/FD as a dict ("flags" in octal, "eventfd-id"...)."""
    with open(f"/proc/self/fdinfo/{fd}", encoding="ascii", errors="replace") as f:
        return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in f)}


def is_o_path(info: dict[str, str]) -> bool:
    return bool(int(info.get("flags", "0"), 8) & os.O_PATH)


def is_eventfd(fd: int, info: dict[str, str]) -> bool:
    return os.readlink(f"/proc/self/fd/{fd}") == EVENTFD_TARGET and "eventfd-count" in info


def take_descriptor(pidfd: int, fd: int) -> tuple[int, dict[str, str]]:
    """A duplicate of the writer's descriptor ``fd``, and its fdinfo.  EBADF if the writer has
    no such descriptor or an O_PATH one (fdget() ignores those)."""
    try:
        dup = linux.pidfd_getfd(pidfd, fd)
    except OSError as e:
        raise ControllerError(e.errno or errno.EBADF, f"pidfd_getfd({fd}): {e.strerror}") from e
    info = fdinfo(dup)
    if is_o_path(info):
        os.close(dup)  # an O_PATH file has no flush: closing cannot block
        raise ControllerError(errno.EBADF, f"descriptor {fd} is O_PATH")
    return dup, info


def eventfd_ids_held(ids: set[int], server_pid: int) -> set[int] | None:
    """Which of these eventfd IDs some process other than the server holds a descriptor of;
    None if a process could not be looked at (then nothing can be known).  Runs in a worker
    thread: it reads every process's descriptor table."""
    held: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == server_pid:
            continue
        try:
            fds = os.listdir(f"/proc/{entry.name}/fd")
        except FileNotFoundError:
            continue  # exited meanwhile
        except OSError:
            return None
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry.name}/fd/{fd}") != EVENTFD_TARGET:
                    continue
                with open(f"/proc/{entry.name}/fdinfo/{fd}", encoding="ascii") as f:
                    for line in f:
                        if line.startswith("eventfd-id:"):
                            held.add(int(line.split()[1]))
            except (OSError, ValueError):
                continue  # closed or exited meanwhile
    return held & ids


# -- signalling ------------------------------------------------------------------------------


class EventfdSignaller:
    """eventfd_signal() from user space: a one-byte read of /dev/zero submitted through Linux
    AIO with IOCB_FLAG_RESFD, whose completion makes the kernel add 1 to the eventfd.  That is
    the kernel's own increment: it never blocks, and on a full counter it saturates at
    ULLONG_MAX (a signal beyond is lost; the listener still finds the eventfd readable).  A
    write(2) would block on a full blocking eventfd, and O_NONBLOCK cannot be set on a
    duplicate without changing the writer's own descriptor (they share one open file)."""

    def __init__(self) -> None:
        self._zero = os.open("/dev/zero", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._context = linux.io_setup(AIO_EVENTS)
        except OSError:
            os.close(self._zero)
            raise
        self._buffer = ctypes.create_string_buffer(1)
        self._iocb = linux.Iocb(aio_lio_opcode=linux.IOCB_CMD_PREAD, aio_fildes=self._zero,
                                aio_buf=ctypes.addressof(self._buffer), aio_nbytes=1,
                                aio_flags=linux.IOCB_FLAG_RESFD)  # fmt: skip
        self._finalizer = weakref.finalize(self, _close_signaller, self._context, self._zero)

    def signal(self, eventfd: int) -> None:
        self._iocb.aio_resfd = eventfd
        try:
            linux.io_submit(self._context, [self._iocb])
            linux.io_getevents(self._context, AIO_EVENTS)
        except OSError as e:
            log.warning("cannot signal an eventfd: %s", e.strerror)


def _close_signaller(context: int, zero: int) -> None:
    linux.io_destroy(context)
    os.close(zero)


# -- the registry ----------------------------------------------------------------------------


@dataclass(eq=False)
class HeldEventfd:
    """One eventfd the server holds a descriptor of for one user: every registration of that
    open eventfd (one eventfd-id) by that user shares it."""

    fd: int
    uid: int
    eventfd_id: int | None  # None: the kernel shows none, nothing is shared
    registrations: list[Registration] = field(default_factory=list)


class ControlFile(Protocol):
    """What is asked of a control file (a cftypes.CfType, which imports this module)."""

    @property
    def name(self) -> str: ...


class InodeModes(Protocol):
    """What is asked of a file's metadata (an fs.Inode) for the writer's read permission."""

    @property
    def mode(self) -> int: ...
    @property
    def uid(self) -> int: ...
    @property
    def gid(self) -> int: ...


_File = TypeVar("_File", bound=ControlFile)
Resolve = Callable[[str], tuple[MemCgroup, _File | None]]  # path -> group, control file or None
InodeOf = Callable[[MemCgroup, _File | None], InodeModes]  # the file resolve gave -> metadata


class EventControl(Generic[_File]):
    """A mount's registrations' descriptors: shared, bounded per user, released when nobody but
    the server holds them.  Made by the filesystem, which lends it the paths and inodes."""

    def __init__(
        self, mountpoint: str | None, resolve: Resolve[_File], inode_of: InodeOf[_File]
    ) -> None:
        self.mountpoint = os.path.realpath(mountpoint) if mountpoint else None
        self._resolve = resolve
        self._inode_of = inode_of
        self._held: dict[tuple[int, int], HeldEventfd] = {}  # (uid, eventfd-id) -> descriptor
        self.descriptors = collections.Counter[int]()  # per uid: eventfds and pending closes
        self.registrations = collections.Counter[int]()  # per uid
        self._signaller: EventfdSignaller | None = None
        self._signaller_failed = False  # logged once
        self._last_scan = float("-inf")
        self._scanning = False
        # Made now, before anyone can use up the host's AIO events (fs.aio-max-nr) first.
        with contextlib.suppress(ControllerError):
            self._signaller_or_refuse()

    # -- entry point ---------------------------------------------------------------------------

    async def register(self, ctl: MemoryController, memcg: MemCgroup, data: bytes,
                       caller) -> None:  # fmt: skip
        """Check a registration line in the kernel's order, then register it.  It waits only
        when the writer's user is at its bound of eventfds: for a scan for closed ones."""
        if memcg.removed:
            # Removed after the write was taken, before its task ran: answered as a write
            # after rmdir is, before any of the writer's descriptors is taken.
            raise ControllerError(errno.ENODEV, "the group was removed")
        self._signaller_or_refuse()
        efd, cfd, args = parse_registration(data)
        tgid, credentials = writer_credentials(caller.pid, caller.uid, caller.gid)
        eventfd, eventfd_id, registration = self._take_descriptors(
            tgid, caller.pid, efd, cfd, memcg, credentials, args
        )
        try:
            await self._bind(ctl, registration, caller.uid, eventfd, eventfd_id)
        except BaseException:
            os.close(eventfd)  # an eventfd has no flush: closing cannot block
            raise

    # -- the checks, in the kernel's order -----------------------------------------------------

    def _signaller_or_refuse(self) -> EventfdSignaller:
        if self._signaller is None:
            try:
                self._signaller = EventfdSignaller()
            except OSError as e:
                if not self._signaller_failed:
                    log.error("no Linux AIO (%s): cgroup.event_control refuses registrations",
                              e.strerror)  # fmt: skip
                self._signaller_failed = True
        if self._signaller is None:
            # As the kernel on PREEMPT_RT: no safe way to signal, no registrations.
            raise ControllerError(errno.EOPNOTSUPP, "the server cannot signal eventfds here")
        return self._signaller

    def _take_descriptors(self, tgid: int, tid: int, efd: int, cfd: int, memcg: MemCgroup,
                          credentials: Credentials,
                          args: bytes) -> tuple[int, int | None, Registration]:  # fmt: skip
        """Duplicate both descriptors and check the duplicates: the eventfd's duplicate, its
        ID, and the registration they make (not yet bound to a descriptor)."""
        try:
            pidfd = linux.pidfd_open(tgid)
        except OSError as e:
            raise ControllerError(e.errno or errno.ESRCH, "cannot open the writer's pidfd") from e
        try:
            if not os.path.exists(f"/proc/{tgid}/task/{tid}"):  # the PID was not recycled
                raise ControllerError(errno.ESRCH, f"the writer {tid} is gone")
            eventfd, info = take_descriptor(pidfd, efd)
            if not is_eventfd(eventfd, info):
                self._close_later(eventfd, credentials.uid, charged=True)
                raise ControllerError(errno.EINVAL, "event_fd is not an eventfd")
            try:
                control, _ = take_descriptor(pidfd, cfd)
                target = os.readlink(f"/proc/self/fd/{control}")
                relative = self._relative(target)
                # Closing a file of this mount waits for this server only, which answers: it
                # does not count against the writer.  Any other file may never close.
                self._close_later(control, credentials.uid, charged=relative is None)
                watch = self._check_control_file(target, relative, memcg, credentials)
                registration = Registration(memcg, watch, signal=_nothing)
                _parse_args(registration, args)
            except BaseException:
                os.close(eventfd)  # an eventfd has no flush: closing cannot block
                raise
        finally:
            os.close(pidfd)
        eventfd_id = info.get("eventfd-id", "")
        return eventfd, int(eventfd_id) if eventfd_id.isdigit() else None, registration

    def _relative(self, target: str) -> str | None:
        """The path of a descriptor's file within this mount ("/g/memory.usage_in_bytes"), or
        None if it is not under the mount point."""
        if self.mountpoint is None:
            return None
        root = self.mountpoint.rstrip("/")
        return target[len(root) :] if target.startswith(root + "/") else None

    def _check_control_file(self, target: str, relative: str | None, memcg: MemCgroup,
                            credentials: Credentials) -> Watch:  # fmt: skip
        """file_permission(MAY_READ) for the writer, then: a regular file of this group, one
        that can be watched (EINVAL otherwise)."""
        if relative is None:
            # Not a file of this mount: EINVAL.  (The kernel checks a foreign file's read
            # permission first; looking at it here could wait on another file system.)
            raise ControllerError(errno.EINVAL, "control file is not in this hierarchy")
        try:
            group, cft = self._resolve(relative)
        except OSError:
            raise ControllerError(
                errno.EINVAL, f"{target} is not a file of the hierarchy"
            ) from None
        inode = self._inode_of(group, cft)
        if not credentials.may_read(inode.mode, inode.uid, inode.gid):
            raise ControllerError(errno.EACCES, f"the writer may not read {target}")
        if cft is None:
            raise ControllerError(errno.EINVAL, "control file is a directory")
        try:
            watch = Watch(cft.name)
        except ValueError:
            raise ControllerError(errno.EINVAL, f"{cft.name} cannot be watched") from None
        if group is not memcg:
            raise ControllerError(errno.EINVAL, "control file belongs to another group")
        return watch

    # -- descriptors: shared, bounded, released ------------------------------------------------

    async def _bind(self, ctl: MemoryController, registration: Registration, uid: int,
                    eventfd: int, eventfd_id: int | None) -> None:  # fmt: skip
        bounded = uid != 0
        if bounded and self.registrations[uid] >= MAX_REGISTRATIONS_PER_USER:
            raise ControllerError(errno.ENOSPC, f"uid {uid} holds {MAX_REGISTRATIONS_PER_USER} "
                                  "registrations")  # fmt: skip
        held = self._held.get((uid, eventfd_id)) if eventfd_id is not None else None
        if held is None and bounded and self.descriptors[uid] >= MAX_DESCRIPTORS_PER_USER:
            if self._scanning or trio.current_time() - self._last_scan < SCAN_INTERVAL:
                raise ControllerError(errno.EMFILE, f"uid {uid} has {MAX_DESCRIPTORS_PER_USER} "
                                      "eventfds registered")  # fmt: skip
            await self._scan_then_bind(ctl, registration, uid, eventfd, eventfd_id)
            return
        self._attach(ctl, registration, uid, eventfd, eventfd_id, held)

    def _attach(self, ctl: MemoryController, registration: Registration, uid: int, eventfd: int,
                eventfd_id: int | None, held: HeldEventfd | None) -> None:  # fmt: skip
        if held is None:
            held = HeldEventfd(eventfd, uid, eventfd_id)
            self.descriptors[uid] += 1
            if eventfd_id is not None:
                self._held[(uid, eventfd_id)] = held
        else:
            os.close(eventfd)  # the one already held serves: an eventfd closes without flush
        signaller = self._signaller
        assert signaller is not None
        registration.signal = functools.partial(signaller.signal, held.fd)
        registration.release = functools.partial(self._release, held, registration)
        held.registrations.append(registration)
        self.registrations[uid] += 1
        ctl.notifier.register(registration)

    def _release(self, held: HeldEventfd, registration: Registration) -> None:
        held.registrations.remove(registration)
        self.registrations[held.uid] -= 1
        if held.registrations:
            return
        os.close(held.fd)
        self.descriptors[held.uid] -= 1
        if held.eventfd_id is not None:
            self._held.pop((held.uid, held.eventfd_id), None)

    async def _scan_then_bind(self, ctl: MemoryController, registration: Registration, uid: int,
                              eventfd: int, eventfd_id: int | None) -> None:  # fmt: skip
        """Bind once a scan has released what it can (register() closes the eventfd on
        failure, an interrupted scan included)."""
        await self.release_closed_eventfds(ctl)
        if self.descriptors[uid] >= MAX_DESCRIPTORS_PER_USER:
            raise ControllerError(errno.EMFILE, f"uid {uid} has {MAX_DESCRIPTORS_PER_USER} "
                                  "eventfds registered")  # fmt: skip
        if registration.memcg.removed:  # rmdir while the scan ran
            raise ControllerError(errno.EINVAL, "the group was removed")
        self._attach(
            ctl,
            registration,
            uid,
            eventfd,
            eventfd_id,
            self._held.get((uid, eventfd_id)) if eventfd_id is not None else None,
        )

    async def release_closed_eventfds(self, ctl: MemoryController) -> None:
        """Drop, without a signal, the registrations whose eventfd nobody but the server holds
        any more: the listener closed it (the kernel drops those at once, on EPOLLHUP)."""
        self._scanning = True
        try:
            ids = {held.eventfd_id for held in self._held.values()}
            if not ids:
                return
            held_elsewhere = await trio.to_thread.run_sync(
                eventfd_ids_held, {i for i in ids if i is not None}, os.getpid()
            )
        finally:
            self._scanning = False
            self._last_scan = trio.current_time()
        if held_elsewhere is None:
            log.warning("cannot read every process's descriptors: no registration released")
            return
        for held in list(self._held.values()):
            if held.eventfd_id not in held_elsewhere:
                for registration in list(held.registrations):
                    ctl.notifier.unregister(registration)

    def _close_later(self, fd: int, uid: int, *, charged: bool) -> None:
        """Close a duplicate of a file that may have a flush (a FUSE file, this mount's own, or
        NFS...) in a thread: close() would wait for that flush, here for this very server.  A
        ``charged`` descriptor counts against the user until it is closed."""
        if charged:
            self.descriptors[uid] += 1
        token = trio.lowlevel.current_trio_token()

        def closed(_outcome: object) -> None:
            if not charged:
                return
            try:
                token.run_sync_soon(self._closed, uid)
            except trio.RunFinishedError:
                pass

        trio.lowlevel.start_thread_soon(functools.partial(os.close, fd), closed,
                                        name="fakecgfs:close")  # fmt: skip

    def _closed(self, uid: int) -> None:
        self.descriptors[uid] -= 1


def _nothing() -> None:
    pass


def _parse_args(registration: Registration, args: bytes) -> None:
    """The register function's own parsing of the args (EINVAL)."""
    if registration.watch in (Watch.USAGE, Watch.MEMSW_USAGE):
        registration.threshold = parse_threshold(args)
    elif registration.watch is Watch.PRESSURE:
        registration.level, registration.mode = parse_pressure(args)


def raise_descriptor_limit() -> None:
    """Let the server hold as many descriptors as it may (the soft RLIMIT_NOFILE up to the
    hard one): registrations hold eventfds, MAX_DESCRIPTORS_PER_USER per user."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_registries: WeakKeyDictionary[MemoryController, EventControl[Any]] = WeakKeyDictionary()


def attach(ctl: MemoryController, events: EventControl[Any]) -> None:
    """Make ``events`` the registry of ``ctl``'s mount (one filesystem per controller)."""
    _registries[ctl] = events


async def register_event(ctl: MemoryController, memcg: MemCgroup, data: bytes,
                         caller) -> None:  # fmt: skip
    """The cgroup.event_control write handler."""
    events = _registries.get(ctl)
    if events is None:
        raise ControllerError(errno.EOPNOTSUPP, "no filesystem serves this controller")
    await events.register(ctl, memcg, data, caller)
