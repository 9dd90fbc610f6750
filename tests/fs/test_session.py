"""The FUSE session's own half of the protocol, without a mount: WRITE and INTERRUPT requests
are built byte by byte as the kernel sends them, and the replies read back from a pipe that
stands for /dev/fuse.  (Through a real mount, every test in tests/fs goes through it too.)"""

from __future__ import annotations

import errno
import os

import pytest
import trio
import trio.testing

from fakecgfs.cgroupfs import session as session_module
from fakecgfs.cgroupfs.cftypes import Caller
from fakecgfs.cgroupfs.server import MountOptions, fuse_options
from fakecgfs.cgroupfs.session import (
    FOPEN_DIRECT_IO,
    FUSE_INTERRUPT,
    FUSE_OPEN,
    FUSE_READ,
    FUSE_RELEASE,
    FUSE_WRITE,
    IN_HEADER,
    INTERRUPT_IN,
    OPEN_IN,
    OPEN_OUT,
    OUT_HEADER,
    READ_IN,
    RELEASE_IN,
    WRITE_IN,
    WRITE_OUT,
    FuseSession,  # fmt: skip
    context_reader,
    fuse_arguments,
)

FUSE_GETATTR = 3  # include/uapi/linux/fuse.h


class Target:
    """A stand-in filesystem: write_request() answers what the test put in ``answers``."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bytes, Caller]] = []
        self.answer = None  # an int, an exception, or an awaitable factory
        self.released: list[tuple[str | None, int]] = []
        self.opened: list[tuple[str, int]] = []

    def read_request(self, fh, size, offset):
        if fh == 13:
            raise OSError(errno.ENODEV, "removed")
        return b"9223372036854771712\n"[offset : offset + size]

    def write_request(self, fh, data, caller):
        self.calls.append((fh, data, caller))
        if isinstance(self.answer, Exception):
            raise self.answer
        if callable(self.answer):
            return self.answer()
        return self.answer

    def open(self, path, flags):
        if path == "/missing":
            raise OSError(errno.ENOENT, "no")
        self.opened.append((path, flags))
        return 100 + len(self.opened)

    def release(self, path, fh):
        if fh == 13:
            raise KeyError("a bug")
        self.released.append((path, fh))


@pytest.fixture
def wire():
    """A session whose /dev/fuse is a pipe: requests go into its buffer, replies come out."""
    target = Target()
    session = FuseSession(target, "/mnt/x", fuse_options(MountOptions()))
    session._view = memoryview(bytearray(4096))
    read_end, write_end = os.pipe()
    session._fd = write_end
    try:
        yield session, target, read_end
    finally:
        os.close(read_end)
        os.close(write_end)


def put_write(session, unique, fh, data, *, uid=1000, gid=100, pid=4242, announced=None) -> int:
    length = IN_HEADER.size + WRITE_IN.size + len(data)
    IN_HEADER.pack_into(session._view, 0, announced or length, FUSE_WRITE, unique, 7, uid, gid,
                        pid, 0)  # fmt: skip
    WRITE_IN.pack_into(session._view, IN_HEADER.size, fh, 0, len(data), 0, 0, 0, 0)
    session._view[IN_HEADER.size + WRITE_IN.size : length] = data
    return length


def put_interrupt(session, unique, target) -> None:
    IN_HEADER.pack_into(session._view, 0, IN_HEADER.size + INTERRUPT_IN.size, FUSE_INTERRUPT,
                        unique, 0, 0, 0, 0, 0)  # fmt: skip
    INTERRUPT_IN.pack_into(session._view, IN_HEADER.size, target)


def put_read(session, unique, fh, size, offset) -> int:
    length = IN_HEADER.size + READ_IN.size
    IN_HEADER.pack_into(session._view, 0, length, FUSE_READ, unique, 7, 0, 0, 4242, 0)
    READ_IN.pack_into(session._view, IN_HEADER.size, fh, offset, size, 0, 0, 0, 0)
    return length


def put_release(session, unique, fh) -> int:
    length = IN_HEADER.size + RELEASE_IN.size
    IN_HEADER.pack_into(session._view, 0, length, FUSE_RELEASE, unique, 7, 0, 0, 4242, 0)
    RELEASE_IN.pack_into(session._view, IN_HEADER.size, fh, os.O_RDONLY, 0, 0)
    return length


def put_open(session, unique, nodeid, flags, *, opcode=FUSE_OPEN) -> int:
    length = IN_HEADER.size + OPEN_IN.size
    IN_HEADER.pack_into(session._view, 0, length, opcode, unique, nodeid, 0, 0, 4242, 0)
    OPEN_IN.pack_into(session._view, IN_HEADER.size, flags, 0)
    return length


def reply(read_end) -> tuple[int, int, bytes]:
    """(unique, errno, payload) of the next reply."""
    message = os.read(read_end, 4096)
    length, error, unique = OUT_HEADER.unpack_from(message)
    assert length == len(message)
    return unique, -error, message[OUT_HEADER.size :]


def test_fuse_arguments_mount_in_the_foreground():
    args = fuse_arguments("/m", {"fsname": "cgroup", "direct_io": True, "ro": False}, "utf-8")
    assert args == [b"fakecgfs", b"-f", b"-o", b"fsname=cgroup,direct_io", b"/m"]


def test_a_write_that_finishes_is_answered_with_its_count(wire):
    session, target, replies = wire
    target.answer = 5

    async def main():
        async with trio.open_nursery() as session._writes:
            session._write(put_write(session, 11, fh=3, data=b"4096\n"))

    trio.run(main)
    assert reply(replies) == (11, 0, WRITE_OUT.pack(5, 0))
    caller = Caller(pid=4242, uid=1000, gid=100, mountpoint="/mnt/x")
    assert target.calls == [(3, b"4096\n", caller)]


def test_a_refused_write_carries_the_errno(wire):
    session, target, replies = wire
    target.answer = OSError(errno.EBUSY, "busy")
    session._write(put_write(session, 12, fh=3, data=b"0"))
    assert reply(replies) == (12, errno.EBUSY, b"")


def test_an_unexpected_failure_is_eio(wire, caplog):
    session, target, replies = wire
    target.answer = ValueError("a bug")
    session._write(put_write(session, 13, fh=3, data=b"0"))
    assert reply(replies) == (13, errno.EIO, b"")
    assert "a bug" in caplog.text


def test_a_malformed_write_is_eio_and_reaches_nobody(wire, caplog):
    session, target, replies = wire
    received = put_write(session, 14, fh=3, data=b"12", announced=999)
    session._write(received)
    assert reply(replies) == (14, errno.EIO, b"")
    assert target.calls == []


def test_a_waiting_write_is_answered_when_done_and_others_go_on(wire):
    session, target, replies = wire
    done = trio.Event()

    async def wait_then_count() -> int:
        await done.wait()
        return 9

    target.answer = wait_then_count

    async def main():
        async with trio.open_nursery() as session._writes:
            session._write(put_write(session, 21, fh=3, data=b"128M anon"))
            await trio.testing.wait_all_tasks_blocked()
            target.answer = 2  # meanwhile another write is answered at once
            session._write(put_write(session, 22, fh=4, data=b"1\n"))
            assert reply(replies) == (22, 0, WRITE_OUT.pack(2, 0))
            assert set(session._waiting) == {21}
            done.set()
        assert session._waiting == {}

    trio.run(main)
    assert reply(replies) == (21, 0, WRITE_OUT.pack(9, 0))


def test_an_interrupt_cancels_a_waiting_write_with_eintr(wire):
    session, target, replies = wire
    cancelled = []

    async def wait_forever() -> int:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append(True)

    target.answer = wait_forever

    async def main():
        async with trio.open_nursery() as session._writes:
            session._write(put_write(session, 31, fh=3, data=b"128M anon"))
            await trio.testing.wait_all_tasks_blocked()
            put_interrupt(session, 32, target=999)  # not ours: left to libfuse
            assert session._interrupt() is False
            put_interrupt(session, 33, target=31)
            assert session._interrupt() is True

    trio.run(main)
    assert cancelled == [True]
    assert reply(replies) == (31, errno.EINTR, b"")


def test_a_write_waiting_when_the_session_ends_gets_eintr(wire):
    session, target, replies = wire
    target.answer = lambda: trio.sleep_forever()

    async def main():
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as session._writes:
                session._write(put_write(session, 41, fh=3, data=b"128M anon"))
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()  # what serve() does as it returns

    trio.run(main)
    assert reply(replies) == (41, errno.EINTR, b"")


def test_a_reply_to_a_request_the_kernel_dropped_is_not_an_error(wire, caplog, monkeypatch):
    session, _, _ = wire

    def gone(fd, data):
        raise OSError(errno.ENOENT, "no such request")

    monkeypatch.setattr(session_module.os, "write", gone)
    session._reply(51, 0, WRITE_OUT.pack(1, 0))
    assert caplog.text == ""


def test_a_read_is_answered_with_its_data_or_errno(wire):
    session, _, replies = wire
    session._read(put_read(session, 61, fh=3, size=4, offset=0))
    assert reply(replies) == (61, 0, b"9223")
    session._read(put_read(session, 62, fh=3, size=4096, offset=20))
    assert reply(replies) == (62, 0, b"")  # at the end: EOF
    session._read(put_read(session, 63, fh=13, size=4096, offset=0))
    assert reply(replies) == (63, errno.ENODEV, b"")
    received = put_read(session, 64, fh=3, size=4, offset=0)
    IN_HEADER.pack_into(session._view, 0, 999, FUSE_READ, 64, 7, 0, 0, 0, 0)
    session._read(received)
    assert reply(replies) == (64, errno.EIO, b"")


class Files:
    """Stand-in operations for the callbacks bound without fusepy's dispatch."""

    def __init__(self) -> None:
        self.released: list[tuple[str | None, int]] = []

    def open(self, path, flags):
        if path == "/missing":
            raise OSError(errno.ENOENT, "no")
        if path == "/bug":
            raise KeyError("a bug")
        return 77

    def release(self, path, fh):
        self.released.append((path, fh))


def test_open_and_release_bound_directly(caplog):
    import ctypes

    import fuse

    files = Files()
    callbacks = session_module._Callbacks(files, "utf-8")
    info = fuse.fuse_file_info(flags=os.O_RDONLY)
    assert callbacks._direct_open(b"/memory.limit_in_bytes", ctypes.pointer(info)) == 0
    assert info.fh == 77
    assert callbacks._direct_open(b"/missing", ctypes.pointer(info)) == -errno.ENOENT
    assert callbacks._direct_open(b"/bug", ctypes.pointer(info)) == -errno.EIO
    assert "open failed unexpectedly" in caplog.text
    # open is what the table holds; read, write and release are the session's own (libfuse
    # only counts a release back and replies), never libfuse's to call
    assert callbacks.table.open
    assert not callbacks.table.read and not callbacks.table.write and not callbacks.table.getattr
    assert not callbacks.table.release


def test_a_release_frees_the_handle_it_carries(wire, caplog):
    """The session calls the filesystem's release with the RELEASE's file handle; the reply is
    libfuse's (it counts the open back), so none comes from the session."""
    session, target, replies = wire
    session._release(put_release(session, 71, fh=0xFEDCBA9876543210))
    assert target.released == [(None, 0xFEDCBA9876543210)]
    session._release(put_release(session, 72, fh=13))  # a bug in release is logged, not fatal
    assert "release failed unexpectedly" in caplog.text
    received = put_release(session, 73, fh=5)
    IN_HEADER.pack_into(session._view, 0, 999, FUSE_RELEASE, 73, 7, 0, 0, 0, 0)
    session._release(received)  # malformed: not the filesystem's
    assert "malformed RELEASE" in caplog.text
    assert target.released == [(None, 0xFEDCBA9876543210)]
    os.set_blocking(replies, False)
    with pytest.raises(BlockingIOError):
        os.read(replies, 4096)


def test_open_decodes_paths_with_the_sessions_codec():
    """The callbacks look the codec up once: a name that is not UTF-8 still opens (cgroupfs
    accepts such names), decoded as the rest of fusepy decodes it."""
    import ctypes

    import fuse

    from fakecgfs.cgroupfs.server import PATH_ENCODING

    opened: list[str] = []

    class Recorder:
        def open(self, path, flags):
            opened.append(path)
            return 5

    callbacks = session_module._Callbacks(Recorder(), PATH_ENCODING)
    info = fuse.fuse_file_info(flags=os.O_RDONLY)
    raw = b"/g\xff\xfe/memory.limit_in_bytes"
    assert callbacks._direct_open(raw, ctypes.pointer(info)) == 0
    assert opened == [raw.decode(PATH_ENCODING)] == ["/g\udcff\udcfe/memory.limit_in_bytes"]
    assert info.fh == 5
    # decoded once per path, and the paths kept are bounded
    assert callbacks._direct_open(raw, ctypes.pointer(info)) == 0
    assert callbacks._direct_open(b"/memory.stat", ctypes.pointer(info)) == 0
    assert opened[1:] == [opened[0], "/memory.stat"]
    cached = callbacks._open_path.cache_info()
    assert (cached.hits, cached.misses) == (1, 2)
    for i in range(session_module.OPEN_PATHS_KEPT + 10):
        callbacks._direct_open(b"/g%d" % i, ctypes.pointer(info))
    assert callbacks._open_path.cache_info().currsize == session_module.OPEN_PATHS_KEPT


def test_the_request_context_is_the_served_requests_header():
    """uid, gid and pid as fuse_get_context() gives them: the fuse_in_header's, read from the
    buffer as it holds the request now (a later request in the same buffer answers anew)."""
    raw = bytearray(IN_HEADER.size)
    context = context_reader(memoryview(raw))
    IN_HEADER.pack_into(raw, 0, len(raw), 1, 0x1122334455, 9, 1000, 100, 4242, 0)
    assert context() == (1000, 100, 4242)
    IN_HEADER.pack_into(raw, 0, len(raw), 1, 0x1122334456, 9, 65534, 65533, 7, 0)
    assert context() == (65534, 65533, 7)


def test_the_read_request_layout_is_the_kernels():
    """READ_REQUEST, the one unpack the session makes of a READ, reads the fields of
    fuse_in_header and fuse_read_in where the kernel's ABI puts them."""
    from fakecgfs.cgroupfs.session import READ_REQUEST

    raw = bytearray(IN_HEADER.size + READ_IN.size)
    IN_HEADER.pack_into(raw, 0, len(raw), FUSE_READ, 0x1122334455, 9, 1000, 100, 4242, 0)
    READ_IN.pack_into(raw, IN_HEADER.size, 0xABCDEF, 1 << 40, 131072, 0, 77, os.O_RDONLY, 0)
    assert READ_REQUEST.size == len(raw) == 80
    assert READ_REQUEST.unpack_from(raw) == (80, 0x1122334455, 0xABCDEF, 1 << 40, 131072)


def test_the_write_request_layout_is_the_kernels():
    """WRITE_REQUEST, the one unpack the session makes of a WRITE's headers, reads the fields of
    fuse_in_header and fuse_write_in where the kernel's ABI puts them."""
    from fakecgfs.cgroupfs.session import WRITE_REQUEST

    raw = bytearray(IN_HEADER.size + WRITE_IN.size)
    IN_HEADER.pack_into(raw, 0, len(raw) + 5, FUSE_WRITE, 0x1122334455, 9, 1000, 100, 4242, 0)
    WRITE_IN.pack_into(raw, IN_HEADER.size, 0xABCDEF, 1 << 40, 5, 1, 77, os.O_WRONLY, 0)
    assert WRITE_REQUEST.size == len(raw) == 80
    assert WRITE_REQUEST.unpack_from(raw) == (85, 0x1122334455, 1000, 100, 4242, 0xABCDEF, 5)


def test_each_writer_is_its_own_caller(wire):
    """The session keeps the last writer's Caller: another pid, uid or gid is another Caller."""
    session, target, replies = wire
    target.answer = 1
    writers = [(1000, 100, 4242), (1000, 100, 4242), (1001, 100, 4242), (1001, 101, 4242),
               (1001, 101, 4243), (1000, 100, 4242)]  # fmt: skip
    for unique, (uid, gid, pid) in enumerate(writers):
        session._write(put_write(session, unique, fh=3, data=b"1", uid=uid, gid=gid, pid=pid))
        assert reply(replies) == (unique, 0, WRITE_OUT.pack(1, 0))
    callers = [caller for _, _, caller in target.calls]
    assert callers == [Caller(pid=pid, uid=uid, gid=gid, mountpoint="/mnt/x")
                       for uid, gid, pid in writers]  # fmt: skip


def test_an_open_is_answered_here_once_libfuse_showed_the_nodes_path(wire):
    """The first OPEN of a node is libfuse's (False); its open of the filesystem, with that OPEN
    in the buffer, shows the node's path; the node's next OPENs are answered here, as libfuse's
    fuse_reply_open() answers them (the handle, FOPEN_DIRECT_IO for a direct_io mount)."""
    session, target, replies = wire
    assert not session._open(put_open(session, 81, nodeid=9, flags=os.O_WRONLY))
    session._learn_path("/g/memory.limit_in_bytes")  # libfuse calls open: OPEN 81 is in the buffer
    assert session._open(put_open(session, 82, nodeid=9, flags=os.O_WRONLY))
    assert target.opened == [("/g/memory.limit_in_bytes", os.O_WRONLY)]
    assert reply(replies) == (82, 0, OPEN_OUT.pack(101, FOPEN_DIRECT_IO, 0))
    assert not session._open(put_open(session, 83, nodeid=10, flags=os.O_RDONLY))  # another node
    put_open(session, 84, nodeid=10, flags=0, opcode=FUSE_GETATTR)
    session._learn_path("/g")  # an open made for another request shows no node's path
    assert not session._open(put_open(session, 85, nodeid=10, flags=os.O_RDONLY))


def test_an_open_answered_here_is_released_here(wire):
    """Only the RELEASE of an open answered here is answered here; libfuse counts its own opens
    back (False), and must never see one it did not count."""
    session, target, replies = wire
    put_open(session, 91, nodeid=9, flags=os.O_RDONLY)
    session._learn_path("/memory.usage_in_bytes")
    assert session._open(put_open(session, 92, nodeid=9, flags=os.O_RDONLY))
    assert reply(replies) == (92, 0, OPEN_OUT.pack(101, FOPEN_DIRECT_IO, 0))
    assert not session._release(put_release(session, 93, fh=77))  # libfuse's open
    assert session._release(put_release(session, 94, fh=101))
    assert reply(replies) == (94, 0, b"")
    assert not session._release(put_release(session, 95, fh=101))  # released once only
    assert target.released == [(None, 77), (None, 101), (None, 101)]


def test_a_refused_or_interrupted_open_holds_no_handle(wire, monkeypatch):
    """A refusal carries the filesystem's errno; an open whose answer reaches no one (the
    opener was killed: ENOENT) is released at once, as libfuse cancels it."""
    session, target, replies = wire
    put_open(session, 101, nodeid=5, flags=os.O_RDONLY)
    session._learn_path("/missing")
    assert session._open(put_open(session, 102, nodeid=5, flags=os.O_RDONLY))
    assert reply(replies) == (102, errno.ENOENT, b"")
    put_open(session, 103, nodeid=6, flags=os.O_RDONLY)
    session._learn_path("/memory.stat")

    def gone(fd, data):
        raise OSError(errno.ENOENT, "no such request")

    monkeypatch.setattr(session_module.os, "write", gone)
    assert session._open(put_open(session, 104, nodeid=6, flags=os.O_RDONLY))
    assert target.opened == [("/memory.stat", os.O_RDONLY)]
    assert target.released == [(None, 101)]
    assert session._opened_here == set()


def test_the_open_request_layout_is_the_kernels():
    """OPEN_REQUEST, the one unpack the session makes of an OPEN, reads the fields of
    fuse_in_header and fuse_open_in where the kernel's ABI puts them."""
    from fakecgfs.cgroupfs.session import OPEN_REQUEST

    raw = bytearray(IN_HEADER.size + OPEN_IN.size)
    IN_HEADER.pack_into(raw, 0, len(raw), FUSE_OPEN, 0x1122334455, 0x99887766, 1000, 100, 4242, 0)
    OPEN_IN.pack_into(raw, IN_HEADER.size, os.O_WRONLY | os.O_TRUNC, 0)
    assert OPEN_REQUEST.size == len(raw) == 48
    assert OPEN_REQUEST.unpack_from(raw) == (48, 0x1122334455, 0x99887766, os.O_WRONLY | os.O_TRUNC)


@pytest.mark.parametrize(
    "options",
    [{"direct_io": True}, {"hard_remove": True, "direct_io": True, "kernel_cache": True},
     {"hard_remove": True, "auto_cache": True}],
)  # fmt: skip
def test_every_open_stays_libfuses_where_libfuse_needs_its_count_or_sets_the_flags(options):
    """Without hard_remove libfuse hides an open file removed or renamed over, by its count of
    opens; with a cache option it decides the reply's flags itself: no open is answered here."""
    session = FuseSession(Target(), "/mnt/x", options)
    session._view = memoryview(bytearray(4096))
    put_open(session, 1, nodeid=9, flags=os.O_RDONLY)
    session._learn_path("/memory.stat")
    assert not session._open(put_open(session, 2, nodeid=9, flags=os.O_RDONLY))
