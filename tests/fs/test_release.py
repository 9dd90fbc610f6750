"""RELEASE, answered by the session from the raw request: every closed descriptor frees its
handle in the filesystem (and libfuse still counts the open back, which no test can see)."""

from __future__ import annotations

import os

import trio

from .inprocess import served, until

DESCRIPTORS = 500


def test_closing_descriptors_frees_their_handles(tmp_path):
    async def main() -> None:
        async with served(tmp_path) as (fs, mnt):
            before = dict(fs._handles)

            def client() -> None:
                os.mkdir(mnt / "g")
                fds = [os.open(mnt / "memory.limit_in_bytes", os.O_RDONLY)
                       for _ in range(DESCRIPTORS)]  # fmt: skip
                fds += [os.open(mnt / "g" / "memory.limit_in_bytes", os.O_WRONLY)
                        for _ in range(DESCRIPTORS)]  # fmt: skip
                assert len(fs._handles) == len(before) + 2 * DESCRIPTORS
                for fd in fds[:DESCRIPTORS]:
                    assert os.read(fd, 4096) == b"9223372036854771712\n"
                for fd in fds[DESCRIPTORS:]:
                    assert os.write(fd, b"4096\n") == 5
                for fd in fds:
                    os.close(fd)
                with open(mnt / "g" / "memory.limit_in_bytes", "rb") as f:
                    assert f.read() == b"4096\n"

            await trio.to_thread.run_sync(client)
            # A close does not wait for its RELEASE (the kernel sends it in the background).
            await until(lambda: fs._handles == before)

    trio.run(main)
