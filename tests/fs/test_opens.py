"""OPEN and its RELEASE, answered by the session once libfuse has opened a node and so shown its
path (session._learn_path): a file opens as before, by whatever name it has now, and libfuse
counts back only the opens it counted (a RELEASE it did not count would trip its assert and
end the server)."""

from __future__ import annotations

import os

import pytest
import trio

from .helpers import UNLIMITED, read, write
from .inprocess import served_session, until

LIMIT = "memory.limit_in_bytes"
OPENS = 50


def test_after_the_first_open_of_a_file_the_session_answers(tmp_path):
    async def main() -> None:
        async with served_session(tmp_path) as (fs, session, mnt):
            before = dict(fs._handles)

            def client() -> None:
                os.mkdir(mnt / "g")
                first = os.open(mnt / "g" / LIMIT, os.O_WRONLY)  # libfuse's: it shows the path
                assert session._opened_here == set()
                more = [os.open(mnt / "g" / LIMIT, os.O_RDWR) for _ in range(OPENS)]
                assert len(session._opened_here) == OPENS  # file handles, not these fds
                assert os.write(more[0], b"8M") == 2
                assert os.read(more[1], 4096) == b"8388608\n"  # direct_io: a size-0 file reads
                os.close(first)  # libfuse's count goes back to 0 before the session's opens close
                for fd in more:
                    os.close(fd)

            await trio.to_thread.run_sync(client)
            # A close does not wait for its RELEASE (the kernel sends it in the background).
            await until(lambda: fs._handles == before and not session._opened_here)

    trio.run(main)


def test_files_closed_in_any_order_leave_the_server_serving(group):
    """libfuse's own open closed first, last, and in between the session's: were one of the
    session's RELEASEs counted back by libfuse, its assert would end the server."""
    path = group / LIMIT
    for order in ("first", "last", "middle"):
        fds = [os.open(path, os.O_RDONLY) for _ in range(5)]
        if order == "first":
            closing = fds
        elif order == "last":
            closing = fds[::-1]
        else:
            closing = fds[2:] + fds[:2]
        for fd in closing:
            os.close(fd)
    write(path, "4M")
    assert read(path) == f"{4 << 20}\n"


def test_a_renamed_groups_file_opens_by_its_new_name(group):
    """After rename a node has a new path: the session forgets the paths it learnt, or it would
    open a new group made under the old name."""
    old, new = group / "a", group / "b"
    os.mkdir(old)
    for _ in range(2):  # the second open is the session's
        os.close(os.open(old / LIMIT, os.O_WRONLY))
    os.rename(old, new)
    os.mkdir(old)
    write(new / LIMIT, "16M")
    assert (read(new / LIMIT), read(old / LIMIT)) == (f"{16 << 20}\n", f"{UNLIMITED}\n")


def test_a_removed_groups_file_does_not_open_in_a_new_group_of_its_name(group):
    """A descriptor of a removed group's directory still names its files: opening one is ENOENT,
    as on kernfs, even when a group of the same name exists again.  (The VFS refuses a lookup
    in a removed directory before any request reaches the server: this guards the answer users
    see; the session's forgetting is tested by test_rmdir_forgets_every_path_learnt and, through
    /proc/self/fd, in test_security_opens.)"""
    g = group / "g"
    os.mkdir(g)
    directory = os.open(g, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(2):
            os.close(os.open(g / LIMIT, os.O_WRONLY))
        os.rmdir(g)
        os.mkdir(g)
        with pytest.raises(FileNotFoundError):
            os.open(LIMIT, os.O_WRONLY, dir_fd=directory)
    finally:
        os.close(directory)
    assert read(g / LIMIT) == f"{UNLIMITED}\n"


def test_rmdir_forgets_every_path_learnt(tmp_path):
    """Paths learnt and decoded are forgotten before libfuse serves an rmdir (or a rename, or
    a forget): a removed group's are not kept, neither as a node's path nor as a decoded one."""

    async def main() -> None:
        async with served_session(tmp_path) as (_, session, mnt):

            def learnt() -> tuple[int, int]:
                decoded = session._callbacks._open_path.cache_info().currsize
                return len(session._node_paths), decoded

            def open_twice(name: str) -> None:
                os.mkdir(mnt / name)
                for _ in range(2):
                    os.close(os.open(mnt / name / LIMIT, os.O_RDONLY))

            await trio.to_thread.run_sync(open_twice, "a")
            await trio.to_thread.run_sync(open_twice, "b")
            assert learnt() == (2, 2)
            await trio.to_thread.run_sync(os.rmdir, mnt / "a")
            assert learnt() == (0, 0)

    trio.run(main)
