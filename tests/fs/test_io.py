"""Reads and writes on descriptors, as seq_file and kernfs do them."""

from __future__ import annotations

import errno
import os
import select

import pytest

from .helpers import UNLIMITED, errno_of, read, sh, write

# -- reads -----------------------------------------------------------------------------------


def test_chunked_reads_reassemble_the_content(group):
    whole = read(group / "memory.stat").encode()
    fd = os.open(group / "memory.stat", os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 3):
            assert len(chunk) <= 3
            chunks.append(chunk)
    finally:
        os.close(fd)
    assert all(len(c) == 3 for c in chunks[:-1])  # read(3) returns 3-byte chunks
    assert b"".join(chunks) == whole


def test_pread_returns_the_tail_and_nothing_past_the_end(group):
    content = read(group / "memory.oom_control").encode()
    fd = os.open(group / "memory.oom_control", os.O_RDONLY)
    try:
        assert os.pread(fd, 4096, 10) == content[10:]
        assert os.pread(fd, 5, 3) == content[3:8]
        assert os.pread(fd, 4096, len(content)) == b""
        assert os.pread(fd, 4096, len(content) + 100) == b""
        assert os.read(fd, 4096) == content
        assert os.read(fd, 4096) == b""  # at the end
    finally:
        os.close(fd)


def test_a_partial_read_keeps_its_snapshot_until_lseek_0(group):
    fd = os.open(group / "memory.oom_control", os.O_RDONLY)
    try:
        head = os.read(fd, 5)
        assert head == b"oom_k"
        write(group / "memory.oom_control", "1")  # through another descriptor
        rest = os.read(fd, 4096)
        assert head + rest == b"oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
        os.lseek(fd, 0, os.SEEK_SET)
        assert os.read(fd, 4096) == b"oom_kill_disable 1\nunder_oom 0\noom_kill 0\n"
    finally:
        os.close(fd)


def test_cat_works(group):
    result = sh("cat memory.limit_in_bytes memory.swappiness", group)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{UNLIMITED}\n60\n"


def test_read_after_write_on_a_read_write_descriptor_continues_at_the_offset(group):
    fd = os.open(group / "memory.limit_in_bytes", os.O_RDWR)
    try:
        assert os.write(fd, b"4096") == 4
        assert os.read(fd, 4096) == b"\n"  # the rest of "4096\n" from offset 4
    finally:
        os.close(fd)


def test_lseek(group):
    fd = os.open(group / "memory.swappiness", os.O_RDONLY)
    try:
        assert os.lseek(fd, 5, os.SEEK_END) == 5  # size 0 + 5
        assert errno_of(lambda: os.lseek(fd, 0, os.SEEK_DATA)) == errno.ENXIO
        assert errno_of(lambda: os.lseek(fd, 0, os.SEEK_HOLE)) == errno.ENXIO
        assert errno_of(lambda: os.lseek(fd, -1, os.SEEK_SET)) == errno.EINVAL
        assert os.lseek(fd, 1, os.SEEK_SET) == 1
        assert os.read(fd, 10) == b"0\n"
    finally:
        os.close(fd)


def test_write_on_a_read_only_descriptor_is_ebadf(group):
    fd = os.open(group / "memory.swappiness", os.O_RDONLY)
    try:
        assert errno_of(lambda: os.write(fd, b"10")) == errno.EBADF
    finally:
        os.close(fd)
    assert read(group / "memory.swappiness") == "60\n"


# -- writes ----------------------------------------------------------------------------------


def test_echo_from_the_shell(group):
    result = sh("echo 4M > memory.limit_in_bytes && cat memory.limit_in_bytes", group)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{4 << 20}\n"


def test_each_write_is_parsed_alone(group):
    fd = os.open(group / "memory.limit_in_bytes", os.O_WRONLY)
    try:
        assert os.write(fd, b"40") == 2
        assert os.write(fd, b"96") == 2
    finally:
        os.close(fd)
    assert read(group / "memory.limit_in_bytes") == "0\n"  # 96 bytes: 0 pages


def test_writev_is_one_write(group):
    fd = os.open(group / "memory.limit_in_bytes", os.O_WRONLY)
    try:
        assert os.writev(fd, [b"40", b"96"]) == 4
    finally:
        os.close(fd)
    assert read(group / "memory.limit_in_bytes") == "4096\n"


def test_pwrite_ignores_the_offset(group):
    fd = os.open(group / "memory.limit_in_bytes", os.O_WRONLY)
    try:
        assert os.pwrite(fd, b"8192", 10) == 4
    finally:
        os.close(fd)
    assert read(group / "memory.limit_in_bytes") == "8192\n"


def test_a_bad_write_does_not_spoil_the_descriptor(group):
    fd = os.open(group / "memory.limit_in_bytes", os.O_WRONLY)
    try:
        assert errno_of(lambda: os.write(fd, b"abc")) == errno.EINVAL
        assert os.write(fd, b"12288") == 5
    finally:
        os.close(fd)
    assert read(group / "memory.limit_in_bytes") == "12288\n"


def test_write_size_limit(group):
    path = group / "memory.limit_in_bytes"
    padded = b"8192" + b" " * 4092  # trailing spaces are stripped
    assert len(padded) == 4096
    assert write(path, padded) == 4096
    assert read(path) == "8192\n"
    assert errno_of(lambda: write(path, b"4096" + b" " * 4093)) == errno.E2BIG
    assert read(path) == "8192\n"


def test_empty_write_changes_nothing(group):
    write(group / "memory.limit_in_bytes", "12288")
    for name in ("memory.limit_in_bytes", "tasks", "memory.swappiness", "fake.charge"):
        before = read(group / "memory.limit_in_bytes")
        assert write(group / name, b"") == 0
        assert read(group / "memory.limit_in_bytes") == before
    assert read(group / "memory.limit_in_bytes") == "12288\n"
    assert read(group / "memory.usage_in_bytes") == "0\n"


def test_nul_ends_the_value(group):
    assert write(group / "memory.limit_in_bytes", b"4096\0junk") == 9
    assert read(group / "memory.limit_in_bytes") == "4096\n"
    assert write(group / "memory.swappiness", b"33\0x") == 4
    assert read(group / "memory.swappiness") == "33\n"


def test_append_and_trunc_and_creat_on_an_existing_file(group):
    path = group / "memory.limit_in_bytes"
    for flags, value in ((os.O_APPEND, b"8192"), (os.O_TRUNC, b"12288"), (os.O_CREAT, b"16384")):
        fd = os.open(path, os.O_WRONLY | flags)
        try:
            assert os.write(fd, value) == len(value)
        finally:
            os.close(fd)
        assert read(path) == value.decode() + "\n"


def test_whitespace_only_write_sets_zero(group):
    write(group / "memory.limit_in_bytes", "12288")
    assert write(group / "memory.limit_in_bytes", "\n") == 1
    assert read(group / "memory.limit_in_bytes") == "0\n"


def test_fsync_is_fine(group):
    fd = os.open(group / "memory.limit_in_bytes", os.O_WRONLY)
    try:
        os.write(fd, b"4096")
        os.fsync(fd)
    finally:
        os.close(fd)


@pytest.mark.xfail(
    strict=True,
    reason="fusepy has no poll operation, so the FUSE default answers "
    "(POLLIN|POLLOUT); kernfs_fop_poll() adds POLLERR|POLLPRI (0xf for IN|PRI|OUT)",
)
def test_poll_answers_like_kernfs(group):
    fd = os.open(group / "memory.usage_in_bytes", os.O_RDONLY)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI | select.POLLOUT)
        assert poller.poll(0) == [(fd, 0xF)]
        poller.modify(fd, select.POLLIN)
        assert poller.poll(0) == [(fd, select.POLLIN | select.POLLERR)]
    finally:
        os.close(fd)
