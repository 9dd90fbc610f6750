"""The binary layouts the session shares with C, checked against the C headers: libfuse2's
struct fuse_buf (fuse_common.h, from libfuse-dev) and the kernel's FUSE requests and replies
(linux/fuse.h), as the host's C compiler lays them out.  Skipped, saying why, without a C
compiler or the headers (scripts/setup installs libfuse-dev when it is missing)."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

import pytest

from fakecgfs.cgroupfs import session

FUSE_COMMON_H = "/usr/include/fuse/fuse_common.h"
LINUX_FUSE_H = "/usr/include/linux/fuse.h"

PROGRAM = r"""
#define FUSE_USE_VERSION 26
#include <stddef.h>
#include <stdio.h>
#include <fuse_lowlevel.h>  /* fuse_common.h may not be included alone */
#include <linux/fuse.h>

#define FIELD(s, f) \
    printf(#s "." #f " %zu %zu\n", offsetof(struct s, f), sizeof(((struct s *)0)->f))
#define SIZE(s) printf(#s " %zu\n", sizeof(struct s))

int main(void)
{
    SIZE(fuse_buf);
    FIELD(fuse_buf, size);
    FIELD(fuse_buf, flags);
    FIELD(fuse_buf, mem);
    FIELD(fuse_buf, fd);
    FIELD(fuse_buf, pos);
    SIZE(fuse_in_header);
    SIZE(fuse_read_in);
    SIZE(fuse_write_in);
    SIZE(fuse_interrupt_in);
    SIZE(fuse_out_header);
    SIZE(fuse_write_out);
    printf("FUSE_READ %d\nFUSE_WRITE %d\nFUSE_INTERRUPT %d\n", FUSE_READ, FUSE_WRITE,
           FUSE_INTERRUPT);
    SIZE(fuse_release_in);
    FIELD(fuse_release_in, fh);
    printf("FUSE_RELEASE %d\n", FUSE_RELEASE);
    FIELD(fuse_in_header, len);
    FIELD(fuse_in_header, opcode);
    FIELD(fuse_in_header, unique);
    FIELD(fuse_in_header, nodeid);
    FIELD(fuse_in_header, uid);
    FIELD(fuse_in_header, gid);
    FIELD(fuse_in_header, pid);
    SIZE(fuse_open_in);
    FIELD(fuse_open_in, flags);
    SIZE(fuse_open_out);
    FIELD(fuse_open_out, fh);
    FIELD(fuse_open_out, open_flags);
    printf("FUSE_OPEN %d\nFOPEN_DIRECT_IO %d\n", FUSE_OPEN, FOPEN_DIRECT_IO);
    printf("FUSE_FORGET %d\nFUSE_BATCH_FORGET %d\nFUSE_UNLINK %d\nFUSE_RMDIR %d\n"
           "FUSE_RENAME %d\nFUSE_RENAME2 %d\n", FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_UNLINK,
           FUSE_RMDIR, FUSE_RENAME, FUSE_RENAME2);
    return 0;
}
"""


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory) -> dict[str, tuple[int, ...]]:
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        pytest.skip("no C compiler (cc) to read the headers' layouts with")
    for header, package in ((FUSE_COMMON_H, "libfuse-dev"), (LINUX_FUSE_H, "linux-libc-dev")):
        if not os.path.exists(header):
            pytest.skip(f"{header} is missing (install {package}; scripts/setup does)")
    work = tmp_path_factory.mktemp("abi")
    (work / "abi.c").write_text(PROGRAM)
    # The flags libfuse2's pkg-config gives (and fuse_common.h requires).
    subprocess.run([cc, "-D_FILE_OFFSET_BITS=64", "-I/usr/include/fuse", "-o", str(work / "abi"),
                    str(work / "abi.c")], check=True, timeout=60)  # fmt: skip
    out = subprocess.run([str(work / "abi")], check=True, capture_output=True, text=True).stdout
    return {name: tuple(int(n) for n in numbers)
            for name, *numbers in (line.split() for line in out.splitlines())}  # fmt: skip


def test_fuse_buf_matches_fuse_common_h(c_layout):
    buf = session._FuseBuf
    assert c_layout["fuse_buf"] == (ctypes.sizeof(buf),)
    for name, _ in buf._fields_:
        field = getattr(buf, name)
        assert c_layout[f"fuse_buf.{name}"] == (field.offset, field.size), name


def test_request_and_reply_layouts_match_linux_fuse_h(c_layout):
    assert c_layout["fuse_in_header"] == (session.IN_HEADER.size,)
    assert c_layout["fuse_read_in"] == (session.READ_IN.size,)
    assert c_layout["fuse_write_in"] == (session.WRITE_IN.size,)
    assert c_layout["fuse_interrupt_in"] == (session.INTERRUPT_IN.size,)
    assert c_layout["fuse_out_header"] == (session.OUT_HEADER.size,)
    assert c_layout["fuse_write_out"] == (session.WRITE_OUT.size,)
    opcodes = (session.FUSE_READ, session.FUSE_WRITE, session.FUSE_INTERRUPT)
    assert (c_layout["FUSE_READ"], c_layout["FUSE_WRITE"], c_layout["FUSE_INTERRUPT"]) == tuple(
        (opcode,) for opcode in opcodes
    )


def test_the_release_layout_matches_linux_fuse_h(c_layout):
    assert c_layout["fuse_release_in"] == (session.RELEASE_IN.size,)
    assert c_layout["fuse_release_in.fh"] == (0, 8)
    assert c_layout["FUSE_RELEASE"] == (session.FUSE_RELEASE,)
    # RELEASE_REQUEST: len, unique, and fh right after the header
    assert session.RELEASE_REQUEST.size == session.IN_HEADER.size + session.RELEASE_IN.size
    assert _offsets(session.RELEASE_REQUEST) == [
        c_layout["fuse_in_header.len"][0],
        c_layout["fuse_in_header.unique"][0],
        c_layout["fuse_in_header"][0] + c_layout["fuse_release_in.fh"][0],
    ]


def test_the_open_layout_matches_linux_fuse_h(c_layout):
    header = c_layout["fuse_in_header"][0]
    assert session.OPEN_REQUEST.size == header + c_layout["fuse_open_in"][0]
    assert _offsets(session.OPEN_REQUEST) == [
        c_layout["fuse_in_header.len"][0],
        c_layout["fuse_in_header.unique"][0],
        c_layout["fuse_in_header.nodeid"][0],
        header + c_layout["fuse_open_in.flags"][0],
    ]
    assert c_layout["fuse_open_out"] == (session.OPEN_OUT.size,)
    assert _offsets(session.OPEN_OUT)[:2] == [
        c_layout["fuse_open_out.fh"][0],
        c_layout["fuse_open_out.open_flags"][0],
    ]
    assert c_layout["FOPEN_DIRECT_IO"] == (session.FOPEN_DIRECT_IO,)
    # where the session reads an open's node and the request's caller
    assert [4 + o for o in _offsets(session.NODE)] == [  # NODE is read from offset 4
        c_layout["fuse_in_header.opcode"][0],
        c_layout["fuse_in_header.nodeid"][0],
    ]
    assert c_layout["fuse_in_header.uid"][0] == session.CONTEXT_AT
    assert [session.CONTEXT_AT + o for o in _offsets(session.CONTEXT)] == [
        c_layout[f"fuse_in_header.{f}"][0] for f in ("uid", "gid", "pid")
    ]


def test_the_opcodes_after_which_paths_are_forgotten_are_linux_fuse_hs(c_layout):
    names = ("FORGET", "BATCH_FORGET", "UNLINK", "RMDIR", "RENAME", "RENAME2")
    assert {c_layout[f"FUSE_{name}"][0] for name in names} == session.PATH_CHANGES
    assert c_layout["FUSE_OPEN"] == (session.FUSE_OPEN,)


def _offsets(layout) -> list[int]:
    """The offsets of a struct.Struct's fields (pad bytes, "x", skipped), from its format."""
    import re
    import struct

    offsets, at = [], 0
    for count, code in re.findall(r"(\d*)([xIQi])", layout.format.lstrip("=")):
        n = int(count or 1)
        if code == "x":
            at += n
            continue
        for _ in range(n):
            offsets.append(at)
            at += struct.calcsize("=" + code)
    return offsets


def test_the_offset_is_64_bits_wide_as_with_FILE_OFFSET_BITS_64():
    """Also without a compiler: a C long would be 32 bits on 32-bit architectures."""
    assert session._FuseBuf.pos.size == 8
