"""The FUSE session, served from the controller's own trio loop.

libfuse2's loops give a request a thread and send the reply when the callback returns.  For a
Python filesystem that is the wrong shape twice over: every libfuse worker thread makes and
destroys a Python thread state per callback and fights the others for the GIL (a multithreaded
fusepy server costs several times a single-threaded one per request: docs/performance.md), and a
write that has
to wait (a charge asleep in OOM) either holds a thread or stalls everyone.  So the session is a
trio task in the loop that owns the controller:

* It waits until /dev/fuse is readable, then reads and serves requests one after another until
  none has come for POLL_AFTER_REQUEST_NS (the descriptor is non-blocking), REQUESTS_PER_TURN at
  most before letting the loop's other tasks (reclaim, waiting writes) run.
* The data path, READ and WRITE, is answered here, from the request's fuse_in_header and
  fuse_read_in or fuse_write_in (the kernel ABI, stable since protocol 7.9): these requests carry
  a file handle, nothing of libfuse's state, and they are most of the traffic.  A write that must
  wait (write_request() returns what it waits for) becomes a task which replies when done, and
  an INTERRUPT naming the request cancels the task, which replies EINTR.  Nothing in the server
  ever blocks a thread.
* So are OPEN and its RELEASE, once libfuse has opened the node and so shown its path (see
  _learn_path): most opens are of files opened before.
* Every other request, the namespace (LOOKUP, GETATTR, MKDIR, a node's first OPEN...), goes to
  libfuse's high-level library (fuse_session_process_buf), which keeps the node table and calls
  fusepy, which calls the filesystem, synchronously in this thread: handlers use the controller
  directly, with no locks and no trip between threads.

fusepy still converts those requests' arguments and results (``_Callbacks``); only its
fuse_main() is replaced, by fuse_setup() + this loop + fuse_teardown().
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import errno
import functools
import logging
import os
import signal
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

import fuse
import trio

from ..kernel import PATH_MAX
from .busypoll import PollWindow
from .cftypes import Caller

log = logging.getLogger("fakecgfs")

REQUESTS_PER_TURN = 64
"""Requests served back to back before the session lets the loop's other tasks run: enough to
drain a burst from many readers in one turn, few enough that a reclaim pass or a finished charge
waits at most a few milliseconds."""

POLL_AFTER_REQUEST_NS = 50_000
"""The longest the session keeps reading /dev/fuse after a request when nothing is queued, before
the loop may sleep.  A client reading a file sends its next request (read again, close) a few
microseconds after its reply; had the server slept, that request costs a cross-CPU wake-up (on
a VM, an IPI and a VM exit), and so does its reply.  The idea of the kernel's busy_poll and of
guest haltpoll, whose rule sizes the window below this ceiling (busypoll.PollWindow); the figures
that chose this value are in docs/performance.md.  It only follows a request: an idle server
does not poll at all."""

AFFINITY_RECHECK_NS = 100_000_000
"""How often, at most, the session looks at the CPUs it may run on (pinned to one, it does not
poll): a pin (taskset, a cpuset) takes effect at the next look, and a look is a system call not
worth making on every wake-up."""

POLLED_ENOUGH = 1  # a poll deadline long past: stop at the next empty read

# The kernel's FUSE ABI (include/uapi/linux/fuse.h), in the host's byte order ("=").
FUSE_FORGET = 2
FUSE_UNLINK = 10
FUSE_RMDIR = 11
FUSE_RENAME = 12
FUSE_OPEN = 14
FUSE_READ = 15
FUSE_WRITE = 16
FUSE_RELEASE = 18
FUSE_INTERRUPT = 36
FUSE_BATCH_FORGET = 42
FUSE_RENAME2 = 45
FOPEN_DIRECT_IO = 1 << 0  # fuse_open_out.open_flags
IN_HEADER = struct.Struct("=IIQQIIII")  # len, opcode, unique, nodeid, uid, gid, pid, padding
CONTEXT = struct.Struct("=III")  # fuse_in_header's uid, gid, pid
CONTEXT_AT = 24  # their offset in fuse_in_header
READ_IN = struct.Struct("=QQIIQII")  # fh, offset, size, read_flags, lock_owner, flags, padding
WRITE_IN = struct.Struct("=QQIIQII")  # fh, offset, size, write_flags, lock_owner, flags, padding
INTERRUPT_IN = struct.Struct("=Q")  # unique of the interrupted request
RELEASE_IN = struct.Struct("=QIIQ")  # fh, flags, release_flags, lock_owner
OPEN_IN = struct.Struct("=II")  # flags, open_flags (unused before protocol 7.37)
# A RELEASE's fuse_in_header and fuse_release_in in one unpack: len, unique; fh.
RELEASE_REQUEST = struct.Struct("=I4xQ24xQ16x")
# A READ's fuse_in_header and fuse_read_in in one unpack, only the fields the session uses:
# len, unique; fh, offset, size (pad bytes "x" skip the others).
READ_REQUEST = struct.Struct("=I4xQ24xQQI20x")
# A WRITE's fuse_in_header and fuse_write_in in one unpack: len, unique, uid, gid, pid; fh, size.
WRITE_REQUEST = struct.Struct("=I4xQ8xIII4xQ8xI20x")
# An OPEN's fuse_in_header and fuse_open_in in one unpack: len, unique, nodeid; flags.
OPEN_REQUEST = struct.Struct("=I4xQQ16xI4x")
NODE = struct.Struct("=I8xQ")  # fuse_in_header's opcode and nodeid, from offset 4
OUT_HEADER = struct.Struct("=IiQ")  # len, error (-errno), unique
OPEN_OUT = struct.Struct("=QII")  # fh, open_flags, padding
WRITE_OUT = struct.Struct("=II")  # size, padding


class DataPath(Protocol):
    """What the session hands reads and writes to (the filesystem)."""

    def read_request(self, fh: int, size: int, offset: int) -> bytes: ...  # at most size

    def write_request(self, fh: int, data: bytes, caller: Caller) -> int | Awaitable[int]: ...

    def open(self, path: str, flags: int) -> int: ...  # a new file handle

    def release(self, path: str | None, fh: int) -> None: ...  # path: always None here

    # The session sets this when it mounts: the uid, gid and pid of the request being served,
    # valid while an operation runs (what libfuse's fuse_get_context() answers).
    request_context: Callable[[], tuple[int, int, int]]


class _FuseBuf(ctypes.Structure):
    """libfuse's struct fuse_buf (fuse_common.h).  libfuse2 is built, and its headers insist on
    being used, with _FILE_OFFSET_BITS=64: off_t is 64 bits on every architecture (a C long is
    32 bits on 32-bit ones).  tests/test_fuse_abi.py compares this layout with the header's."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("flags", ctypes.c_int),  # enum fuse_buf_flags
        ("mem", ctypes.c_void_p),
        ("fd", ctypes.c_int),
        ("pos", ctypes.c_int64),  # off_t
    ]


def _declare(lib: ctypes.CDLL) -> ctypes.PyDLL:
    """Prototypes of the libfuse2 session calls the loop uses (fusepy declares none of them),
    on a PyDLL of the same library: a call keeps the GIL (there is one thread, and the
    callbacks libfuse makes would only take it back).  Pointers are passed as addresses
    (c_void_p), since checking a byref() against a POINTER type costs ctypes an isinstance()
    through the metaclass, every call."""
    lib = ctypes.PyDLL(lib._name, handle=lib._handle)
    p, c_int, c_size_t = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    prototypes = {
        "fuse_setup": (p, [c_int, p, p, c_size_t, ctypes.POINTER(ctypes.c_char_p),
                           ctypes.POINTER(c_int), p]),
        "fuse_teardown": (None, [p, ctypes.c_char_p]),
        "fuse_get_session": (p, [p]),
        "fuse_session_next_chan": (p, [p, p]),
        "fuse_chan_bufsize": (c_size_t, [p]),
        "fuse_chan_fd": (c_int, [p]),
        "fuse_session_process_buf": (None, [p, p, p]),  # session, fuse_buf *, fuse_chan *
        "fuse_session_exited": (c_int, [p]),
    }  # fmt: skip
    for name, (restype, argtypes) in prototypes.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


PATH_CHANGES = frozenset({FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_UNLINK, FUSE_RMDIR, FUSE_RENAME,
                          FUSE_RENAME2})  # fmt: skip
"""Requests after which a node libfuse knows may no longer have the path it had (renamed, removed,
or forgotten and its id free to be given again): the session forgets the paths it learnt."""

NODE_PATHS_KEPT = 4096
"""Nodes whose path the session keeps at most (a full table starts again empty), each path at
most PATH_MAX long: bounds what a user who opens many files makes the server keep."""

OPEN_PATHS_KEPT = 1024
"""Decoded paths kept for OPEN (the least recently opened go first), each at most PATH_MAX long:
what a user who opens many paths makes the server keep is bounded."""

SESSION_OPERATIONS = frozenset({"release"})
"""Operations the filesystem has that libfuse must not call: the session calls them itself, from
the raw request (read and write are not even operations of the filesystem's)."""

_TIMESPEC_FIELDS = {"st_atime": "st_atimespec", "st_mtime": "st_mtimespec",
                    "st_ctime": "st_ctimespec"}  # fmt: skip
"""stat times (what getattr returns) and the c_stat fields holding them."""


class _Callbacks(fuse.FUSE):
    """fusepy's table of callbacks (argument and result conversion, errno from exceptions) built
    without calling fuse_main(): the session owns mounting and the loop."""

    def __init__(self, operations: Any, encoding: str,
                 opened: Callable[[str], None] = lambda path: None) -> None:  # fmt: skip
        # no super(): it would mount
        self.operations = operations
        self._opened = opened  # told the path of every open that succeeds
        self.raw_fi = False
        self.encoding = encoding
        self._decode = codecs.getdecoder(encoding)
        self._open_path = functools.lru_cache(maxsize=OPEN_PATHS_KEPT)(self._decode_path)
        self.use_ns = True
        self._FUSE__critical_exception = None  # fusepy's _wrapper records fatal errors here
        self.table = fuse.fuse_operations()
        for name, prototype, *_ in fuse.fuse_operations._fields_:
            # ftruncate and fgetattr are fusepy's own, made of truncate and getattr
            wanted = name[1:] if name in ("ftruncate", "fgetattr") else name
            value = getattr(operations, wanted, None)
            if value is None or name in SESSION_OPERATIONS:
                continue
            if hasattr(prototype, "argtypes"):
                direct = getattr(self, f"_direct_{name}", None)
                if direct is not None:
                    value = prototype(direct)
                else:
                    value = prototype(functools.partial(self._wrapper, getattr(self, name)))
            setattr(self.table, name, value)

    def fgetattr(self, path: bytes | None, buf: Any, fip: Any) -> int:
        """fusepy's fgetattr (getattr calls it), but filling the stat by constant field names.
        fusepy's set_st_attrs() looks up ``key + "spec"``, a new string per time field and
        request, which CPython's type attribute cache keeps alive until the next lookup: an
        object allocated amid a burst of requests outlives it and pins the heap page it landed
        on.  (The controller used to empty that cache with a private CPython call.)"""
        ctypes.memset(buf, 0, ctypes.sizeof(fuse.c_stat))
        st = buf.contents
        fh = fip.contents.fh if fip else fip
        attrs = self.operations("getattr", self._decode_optional_path(path), fh)
        for key, value in attrs.items():
            timespec_field = _TIMESPEC_FIELDS.get(key)
            if timespec_field is not None:  # use_ns: times are integer nanoseconds
                timespec = getattr(st, timespec_field)
                timespec.tv_sec, timespec.tv_nsec = divmod(int(value), 10**9)
            elif hasattr(st, key):
                setattr(st, key, value)
        return 0

    # OPEN, which every cat makes, skips fusepy's three layers of dispatch (partial, _wrapper,
    # operations.__call__): same conversions, one Python frame.  Its path is decoded once per
    # path up to PATH_MAX (_open_path): a path's codec (server.PATH_ENCODING) is Python code,
    # and a tool opens the same few files again and again.

    def forget_paths(self) -> None:
        self._open_path.cache_clear()

    def _decode_path(self, path: bytes) -> str:
        return self._decode(path)[0]

    def _direct_open(self, path: bytes, fip: Any) -> int:
        try:
            info = fip.contents
            decoded = self._open_path(path) if len(path) <= PATH_MAX else self._decode_path(path)
            info.fh = self.operations.open(decoded, info.flags)
            self._opened(decoded)
            return 0
        except Exception as e:
            return -_errno_of("open", e)


def context_reader(request: memoryview) -> Callable[[], tuple[int, int, int]]:
    """What answers "who makes the request being served" (uid, gid, pid), read from the request
    in the session's buffer, whose callbacks run while it is there: fuse_get_context() copies
    the same fields of the same fuse_in_header, at the cost of a call into libfuse."""
    return functools.partial(CONTEXT.unpack_from, request, CONTEXT_AT)


def fuse_arguments(mountpoint: str, options: dict[str, Any], encoding: str) -> list[bytes]:
    """The command line fuse_setup() parses: always in the foreground (-f), as fusepy builds it."""
    normalized = ",".join(fuse.FUSE._normalize_fuse_options(**options))
    return [arg.encode(encoding) for arg in ("fakecgfs", "-f", "-o", normalized, mountpoint)]


class MountError(RuntimeError):
    """The mount failed; the message is libfuse's or fusermount's reason, on one line."""


@contextlib.contextmanager
def _stderr_captured() -> Iterator[list[str]]:
    """Descriptor 2 into a file for the duration (C code and child processes write there too);
    the text is in the yielded list's only item afterwards."""
    said = [""]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            said[0] = capture.read().decode(errors="replace")


class FuseSession:
    """One mount: fuse_setup() mounts, serve() answers requests, unmount() tears it down."""

    def __init__(self, operations: Any, mountpoint: str, options: dict[str, Any], *,
                 encoding: str = "utf-8") -> None:  # fmt: skip
        self._lib = _declare(fuse._libfuse)
        self._callbacks = _Callbacks(operations, encoding, opened=self._learn_path)
        self._target: DataPath = operations
        self.mountpoint = mountpoint
        self._args = fuse_arguments(mountpoint, options, encoding)
        self._fuse: int | None = None  # struct fuse *
        self._c_mountpoint = ctypes.c_char_p()  # malloc'ed by fuse_setup, freed by teardown
        self._waiting: dict[int, trio.CancelScope] = {}  # unique -> a write that waits
        # The last writer (pid, uid, gid) and its Caller (immutable): a writer mostly writes again.
        self._last_writer: tuple[tuple[int, int, int], Caller] | None = None
        # OPEN of a node libfuse has opened once is answered here (_open); see _learn_path.
        self._node_paths: dict[int, str] = {}  # nodeid -> its path
        self._opened_here: set[int] = set()  # the file handles of those opens, until RELEASE
        # What libfuse's fuse_reply_open() sets for this mount's options.  Every OPEN stays
        # libfuse's with a cache option (libfuse's own logic decides the flags), and without
        # hard_remove, where libfuse hides an open file that is removed or renamed over, by
        # the open count the session's opens are not in.
        self._open_flags = FOPEN_DIRECT_IO if options.get("direct_io") else 0
        self._opens_here = bool(options.get("hard_remove")) and not any(
            options.get(o) for o in ("kernel_cache", "auto_cache")
        )

    # -- mounting ------------------------------------------------------------------------------

    def mount(self) -> None:
        """Mount and connect (fuse_setup: parse options, mount, fuse_new).  libfuse installs its
        own SIGINT/SIGTERM/SIGHUP handlers only where none is set: the caller sets them first."""
        argv = (ctypes.c_char_p * len(self._args))(*self._args)
        multithreaded = ctypes.c_int()
        table = self._callbacks.table
        with _stderr_captured() as said:  # libfuse's and fusermount's reasons
            handle = self._lib.fuse_setup(len(self._args), argv, ctypes.byref(table),
                                          ctypes.sizeof(table), ctypes.byref(self._c_mountpoint),
                                          ctypes.byref(multithreaded), None)  # fmt: skip
        reason = "; ".join(line.strip() for line in said[0].splitlines() if line.strip())
        if not handle:
            raise MountError(reason or "fuse_setup failed, libfuse did not say why")
        if reason:
            print(reason, file=sys.stderr)  # a warning on the way to a working mount
        self._fuse = handle
        self._session = self._lib.fuse_get_session(handle)
        self._channel = self._lib.fuse_session_next_chan(self._session, None)
        self._fd = self._lib.fuse_chan_fd(self._channel)
        bufsize = self._lib.fuse_chan_bufsize(self._channel)
        self._memory = ctypes.create_string_buffer(bufsize)
        self._view = memoryview(self._memory).cast("B")
        self._buf = _FuseBuf(bufsize, 0, ctypes.addressof(self._memory), -1, 0)
        self._channel_ref = ctypes.c_void_p(self._channel)
        os.set_blocking(self._fd, False)
        self._target.request_context = context_reader(self._view)

    def unmount(self) -> None:
        """Unmount (lazily, if still busy), destroy the session and free what fuse_setup made.
        Idempotent.  libfuse resets SIGPIPE to the default on the way: Python ignores it."""
        if self._fuse is None:
            return
        handle, self._fuse = self._fuse, None
        self._lib.fuse_teardown(handle, self._c_mountpoint)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    # -- the loop ------------------------------------------------------------------------------

    async def serve(self) -> None:
        """Answer requests until the file system is unmounted (or libfuse exits the session);
        then end every write still waiting, with EINTR.  Cancelling serve() does the same."""
        assert self._fuse is not None, "mount() first"
        async with trio.open_nursery() as self._writes:
            try:
                await self._serve_requests()
            finally:
                self._writes.cancel_scope.cancel()

    async def _serve_requests(self) -> None:
        lib, session = self._lib, self._session
        process = lib.fuse_session_process_buf
        buf, channel, buf_ref = self._buf, self._channel_ref, ctypes.addressof(self._buf)
        view, fd, readv, into = self._view, self._fd, os.readv, [self._view]
        opcode_at = struct.Struct("=I").unpack_from
        clock = time.perf_counter_ns
        window = PollWindow(POLL_AFTER_REQUEST_NS)
        affinity_checked = -AFFINITY_RECHECK_NS
        poll_began = 0
        slept_after = 0  # when the poll that ended in the last sleep began; 0: no poll did
        while not lib.fuse_session_exited(session):
            await trio.lowlevel.wait_readable(self._fd)
            now = clock()
            if now - affinity_checked >= AFFINITY_RECHECK_NS:
                affinity_checked = now
                window.single_cpu = len(os.sched_getaffinity(0)) == 1
            if slept_after:
                window.slept(now - slept_after)
            poll_ns, slept_after = window.poll_ns, 0
            served, poll_until = 0, 0
            while served < REQUESTS_PER_TURN:
                # What libfuse's receive does for a channel that does not splice (the session
                # never asks for splice_read), read() into the buffer, without its ctypes call.
                try:
                    received = readv(fd, into)
                except BlockingIOError:
                    received = -1
                except FileNotFoundError:
                    continue  # ENOENT: the request was interrupted before it was read
                except OSError as e:
                    if e.errno != errno.ENODEV:  # unmounted
                        log.error("reading /dev/fuse: %s", e.strerror)
                    return
                if received < 0:
                    now = clock()  # none queued: poll a little longer, then let the loop sleep
                    if not poll_until:
                        poll_began, poll_until = now, now + poll_ns
                    if now < poll_until:
                        continue
                    if poll_until != POLLED_ENOUGH and window.learns:
                        slept_after = poll_began
                    break
                served, poll_until = served + 1, 0
                if received < IN_HEADER.size:
                    log.error("reading /dev/fuse: a short read (%d bytes)", received)
                    return  # as libfuse's loop ends on its receive's EIO
                (opcode,) = opcode_at(view, 4)
                if opcode == FUSE_READ:
                    self._read(received)
                elif opcode == FUSE_WRITE:
                    self._write(received)
                    # No polling after a write: what it woke (a reclaim task, a charge waiting
                    # in OOM) runs as soon as the queue is empty.  (Its writer does not wait for
                    # the RELEASE that follows.)
                    poll_until = POLLED_ENOUGH
                elif opcode == FUSE_OPEN and self._open(received):
                    pass  # a node whose path the session knows
                elif opcode == FUSE_RELEASE:
                    if not self._release(received):
                        buf.size = received  # libfuse's bookkeeping, and the reply
                        process(session, buf_ref, channel)
                elif opcode == FUSE_INTERRUPT and self._interrupt():
                    pass  # it cancelled a write waiting here; it needs no reply
                else:
                    if opcode in PATH_CHANGES:
                        self._forget_paths()
                    buf.size = received
                    process(session, buf_ref, channel)

    # -- reads and writes, answered here -------------------------------------------------------

    def _read(self, received: int) -> None:
        length, unique, fh, offset, size = READ_REQUEST.unpack_from(self._view)
        if length != received or received != READ_REQUEST.size:
            log.error("malformed READ request (%d bytes, %d announced)", received, length)
            self._reply(unique, errno.EIO)
            return
        try:
            data = self._target.read_request(fh, size, offset)
        except Exception as e:
            self._reply(unique, _errno_of("read", e))
            return
        self._reply(unique, 0, data)

    def _write(self, received: int) -> None:
        view = self._view
        length, unique, uid, gid, pid, fh, size = WRITE_REQUEST.unpack_from(view)
        start = WRITE_REQUEST.size
        if length != received or start + size != received:
            log.error("malformed WRITE request (%d bytes, %d announced, %d of data)",
                      received, length, size)  # fmt: skip
            self._reply(unique, errno.EIO)
            return
        data = view[start:received].tobytes()
        writer = (pid, uid, gid)
        last = self._last_writer
        if last is not None and last[0] == writer:
            caller = last[1]
        else:
            caller = Caller(pid=pid, uid=uid, gid=gid, mountpoint=self.mountpoint)
            self._last_writer = (writer, caller)
        try:
            result = self._target.write_request(fh, data, caller)
        except Exception as e:
            self._reply(unique, _errno_of("write", e))
            return
        if isinstance(result, int):  # done; otherwise what it waits for (DataPath)
            self._reply(unique, 0, WRITE_OUT.pack(result, 0))
        else:
            self._writes.start_soon(self._finish_write, unique, result, name=f"write:{unique}")

    # -- opens, answered here once libfuse has shown a node's path --------------------------------
    #
    # libfuse's OPEN is: the node's path from its node table, the filesystem's open, the node's
    # open count up by one, and the reply (fuse_lib_open).  Only the path needs libfuse, and
    # libfuse shows it: when it calls the filesystem's open for an OPEN, the request, with its
    # nodeid, is in the session's buffer (_learn_path).  The node's next OPENs are answered
    # here, from the raw request, and so are their RELEASEs: those handles were never counted
    # in the node, so libfuse must not count them back (fuse_do_release() asserts the count
    # stays positive).  A node's path can change only by a request that goes through libfuse
    # (PATH_CHANGES), and the session forgets every path it learnt before libfuse serves one.

    def _forget_paths(self) -> None:
        """Forget the nodes' paths, and the decoded paths of opens: after rmdir, those are
        mostly the removed groups', and kept they would pin the heap pages they were allocated
        in amid a burst (the scale benchmark's RSS after removing its groups shows it)."""
        self._node_paths.clear()
        self._callbacks.forget_paths()

    def _learn_path(self, path: str) -> None:
        """libfuse's open of ``path`` succeeded: keep the path of the node it opened."""
        opcode, nodeid = NODE.unpack_from(self._view, 4)
        if opcode != FUSE_OPEN or not self._opens_here or len(path) > PATH_MAX:
            return  # a longer path is not kept (PATH_MAX): that node's OPENs stay libfuse's
        if len(self._node_paths) >= NODE_PATHS_KEPT:
            self._node_paths.clear()
        self._node_paths[nodeid] = path

    def _open(self, received: int) -> bool:
        """An OPEN of a node whose path the session knows, answered as libfuse answers it;
        False for any other (libfuse's, which shows the path)."""
        length, unique, nodeid, flags = OPEN_REQUEST.unpack_from(self._view)
        path = self._node_paths.get(nodeid)
        if path is None or length != received or received != OPEN_REQUEST.size:
            return False
        try:
            fh = self._target.open(path, flags)
        except Exception as e:
            self._reply(unique, _errno_of("open", e))
            return True
        self._opened_here.add(fh)  # before the answer, which the opener may act on at once
        if not self._reply(unique, 0, OPEN_OUT.pack(fh, self._open_flags, 0)):
            self._opened_here.discard(fh)  # the open was interrupted: cancelled, as libfuse does
            self._target.release(None, fh)
        return True

    def _release(self, received: int) -> bool:
        """The filesystem's release, from a RELEASE's fuse_release_in (it carries the file
        handle).  For an open answered here, the session replies: True.  For an open libfuse
        answered, libfuse, which has no release to call (SESSION_OPERATIONS), must then do its
        own bookkeeping and reply (False).  It must: fuse_lib_open() counts each open in its
        node (open_count, an int), which only fuse_do_release() counts back down; a count that
        only grew would overflow after 2**31 opens of one file, and fuse_do_release() asserts it
        is positive when an interrupted open is cancelled (and libfuse2 is built with asserts).
        Without the callback, what libfuse does for a RELEASE is C only: no path (flag_nopath),
        no flush or lock release (neither operation is registered), no interrupt handling (the
        intr option is off), the count, and the reply (no error)."""
        length, unique, fh = RELEASE_REQUEST.unpack_from(self._view)
        if length != received or received != RELEASE_REQUEST.size:
            log.error("malformed RELEASE request (%d bytes, %d announced)", received, length)
            return False  # libfuse still answers it
        try:
            self._target.release(None, fh)
        except Exception as e:
            _errno_of("release", e)  # logged; a RELEASE's answer is not seen by anyone
        if fh not in self._opened_here:
            return False
        self._opened_here.discard(fh)
        self._reply(unique, 0)
        return True

    async def _finish_write(self, unique: int, pending: Awaitable[int]) -> None:
        """Wait for a write that must wait, then answer it; EINTR when it is interrupted, and
        when the mount is going away (the writer must not hang until the connection dies)."""
        scope = self._waiting[unique] = trio.CancelScope()
        try:
            with scope:
                count = await pending
        except trio.Cancelled:
            self._reply(unique, errno.EINTR)
            raise
        except Exception as e:
            self._reply(unique, _errno_of("write", e))
            return
        finally:
            del self._waiting[unique]
        if scope.cancelled_caught:
            self._reply(unique, errno.EINTR)
        else:
            self._reply(unique, 0, WRITE_OUT.pack(count, 0))

    def _interrupt(self) -> bool:
        """An INTERRUPT for a write that waits here cancels it.  Any other (a request libfuse
        answered, or one of ours already answered) is libfuse's to handle: False."""
        (target,) = INTERRUPT_IN.unpack_from(self._view, IN_HEADER.size)
        scope = self._waiting.get(target)
        if scope is None:
            return False
        scope.cancel()
        return True

    def _reply(self, unique: int, error: int, payload: bytes = b"") -> bool:
        """Answer a request; False if the answer reached no one."""
        message = OUT_HEADER.pack(OUT_HEADER.size + len(payload), -error, unique) + payload
        try:
            os.write(self._fd, message)
        except OSError as e:
            # ENOENT: the kernel gave up on the request (interrupted, aborted); ENODEV: unmounted
            if e.errno not in (errno.ENOENT, errno.ENODEV):
                log.error("replying to request %d: %s", unique, e)
            return False
        return True


def _errno_of(operation: str, error: Exception) -> int:
    """The errno a failed operation answers: the kernel's, carried by the OSError; EIO (logged)
    for anything unexpected."""
    if isinstance(error, OSError) and error.errno and error.errno > 0:
        return error.errno
    log.error("%s failed unexpectedly", operation, exc_info=error)
    return errno.EIO
