"""Conformance tests for fakecgfs.cgroupfs.parse against a measured kernel table.

The tables below were measured on the live kernel (they are data; these tests
never touch /sys). Measurement: a throwaway script created a fresh group
``/sys/fs/cgroup/memory/fakecgfs-conformance-parse-<pid>`` (cgroup v1), did one
os.open()+os.write() per value, recorded the errno or the value read back, and
removed the group in a ``finally``.

    kernel:   6.18.44-fc-v769 (uname -r), x86-64, 4 KiB pages
    date:     2026-11-26 07:10:22 UTC
    pid_max:  32768

How each value was taken:

* LIMIT_TABLE: written to ``memory.limit_in_bytes``; the expected value is what
  the file read back, in bytes (unlimited reads back as 9223372036854771712).
  Each input was written twice, once after resetting the limit to ``-1`` and
  once after ``12288``; both runs agreed except for the empty write, whose
  read-back was the untouched reset value ("NOOP": write() returned 0 and the
  handler never ran). Every row was also written to
  ``memory.soft_limit_in_bytes`` (same mem_cgroup_write() path) and all 158
  outcomes were identical.
* U64_TABLE: written to ``notify_on_release`` (cgroup write_u64: kstrtoull,
  then nonzero -> 1, so it shows the pure parser's range) and to
  ``memory.swappiness`` (kstrtoull, then the file itself rejects > 200 with
  EINVAL, so it shows exact values for 0..200). Reset sentinels were 0/1 and
  17/23.
* PID_TABLE: written to the group's ``tasks``. Only junk, negatives, values
  > INT_MAX and pids above pid_max were written (never 0 or a live pid), so a
  successful parse shows up as ESRCH (no such task) and a failed one as EINVAL.

Errors are recorded by errno name. "NOOP" and "E2BIG" come from the write
layer around the parser (see _limit_write and friends), not from the parser.

Kernel answers that may surprise (all kept as measured):

* ``000004096`` is EINVAL: a leading 0 means octal and ``9`` is not an octal
  digit, so memparse stops there and leaves junk.
* ``0x1e``/``0x1E`` are 30 bytes, not 1 EiB: inside a hex number ``e`` is a
  digit, so no suffix is seen; ``0x1000E`` is 0x1000E = 65550 -> 16 pages.
* ``k``/``K`` alone is 0 (no digits -> 0, then the suffix is eaten) and
  whitespace-only or ``\\x00...`` input is 0 too: limit set to 0, not EINVAL.
* Nothing checks overflow in memparse: ``16E``, ``18446744073709551616``,
  ``0x10000000000000000`` wrap to 0, ``17E`` to 1 EiB, and
  ``99999999999999999999999`` to 99999999999999999999999 mod 2**64.
* Only the exact string ``-1`` (after strstrip, so ``-1\\n`` and ``-1\\xa0`` too)
  means unlimited; ``-0``, ``-2``, ``-01`` are EINVAL and ``+4096`` is EINVAL.
* strstrip strips 0xA0 (latin-1 NBSP in the kernel's ctype table) but not
  0x85 or 0x1C; the UTF-8 NBSP ``\\xc2\\xa0`` loses its ``\\xa0`` but the
  ``\\xc2`` remains, so it is EINVAL.
* kstrtoull files (no strstrip) take exactly one trailing ``\\n``: ``60\\r\\n``,
  `` 60``, ``60\\xa0`` are EINVAL; ``-0`` is EINVAL (unsigned); overflow is
  ERANGE even when junk follows (``99999999999999999999x``).
* A zero-length write() returns 0 and changes nothing on every file, including
  ``tasks`` (it does not mean pid 0 there).
* ``-2147483648`` in tasks is EINVAL via ``pid < 0``, ``2147483648`` via ERANGE
  which cgroup1 reports as EINVAL.
"""

from __future__ import annotations

import errno

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fakecgfs.cgroupfs import parse
from fakecgfs.cgroupfs.parse import (
    MAX_WRITE,
    PAGE_COUNTER_MAX,
    PAGE_SIZE,
    ParseError,
    kstrtoint,
    kstrtoull,
    memparse,
    page_counter_memparse,
    parse_pid,
    strstrip,
    terminate,
)

UNLIMITED = 9223372036854771712
PID_MAX_AT_MEASUREMENT = 32768
SWAPPINESS_MAX = 200

# ---------------------------------------------------------------------------
# Measured tables (Linux 6.18.44-fc-v769, 2026-11-26; see module docstring)
# ---------------------------------------------------------------------------

LIMIT_TABLE: list[tuple[bytes, int | str]] = [
    (b"0", 0),
    (b"1", 0),
    (b"4095", 0),
    (b"4096", 4096),
    (b"4097", 4096),
    (b"8191", 4096),
    (b"8192", 8192),
    (b"12288", 12288),
    (b"1048576", 1048576),
    (b"00", 0),
    (b"000004096", "EINVAL"),
    (b"-1", 9223372036854771712),
    (b"-2", "EINVAL"),
    (b"-0", "EINVAL"),
    (b"--1", "EINVAL"),
    (b"-01", "EINVAL"),
    (b"-1K", "EINVAL"),
    (b"- 1", "EINVAL"),
    (b"-1\n", 9223372036854771712),
    (b" -1 ", 9223372036854771712),
    (b"\t-1\n", 9223372036854771712),
    (b"-1\xa0", 9223372036854771712),
    (b"-1x", "EINVAL"),
    (b"-1\x00junk", 9223372036854771712),
    (b"-18446744073709551615", "EINVAL"),
    (b"1k", 0),
    (b"1K", 0),
    (b"4k", 4096),
    (b"4K", 4096),
    (b"5k", 4096),
    (b"1m", 1048576),
    (b"1M", 1048576),
    (b"1g", 1073741824),
    (b"1G", 1073741824),
    (b"1t", 1099511627776),
    (b"1T", 1099511627776),
    (b"1p", 1125899906842624),
    (b"1P", 1125899906842624),
    (b"1e", 1152921504606846976),
    (b"1E", 1152921504606846976),
    (b"7E", 8070450532247928832),
    (b"8E", 9223372036854771712),
    (b"15E", 9223372036854771712),
    (b"16E", 0),
    (b"17E", 1152921504606846976),
    (b"8P", 9007199254740992),
    (b"8192P", 9223372036854771712),
    (b"16384P", 0),
    (b"16777216T", 0),
    (b"17179869184G", 0),
    (b"18014398509481984k", 0),
    (b"1KK", "EINVAL"),
    (b"1KB", "EINVAL"),
    (b"1MB", "EINVAL"),
    (b"1M\n", 1048576),
    (b"1 M", "EINVAL"),
    (b"1.5M", "EINVAL"),
    (b"1e3", "EINVAL"),
    (b"1E3", "EINVAL"),
    (b"1b", "EINVAL"),
    (b"1B", "EINVAL"),
    (b"1x", "EINVAL"),
    (b"1Z", "EINVAL"),
    (b"1i", "EINVAL"),
    (b"1Ki", "EINVAL"),
    (b"k", 0),
    (b"K", 0),
    (b"M1", "EINVAL"),
    (b"0x1000", 4096),
    (b"0X1000", 4096),
    (b"0x1000k", 4194304),
    (b"0x1k", 0),
    (b"0x1e", 0),
    (b"0x1E", 0),
    (b"0x1000E", 65536),
    (b"0x10000g", 70368744177664),
    (b"0x", "EINVAL"),
    (b"0X", "EINVAL"),
    (b"0xg", "EINVAL"),
    (b"0x 1000", "EINVAL"),
    (b"010000", 4096),
    (b"08", "EINVAL"),
    (b"09", "EINVAL"),
    (b"0k", 0),
    (b"07777", 0),
    (b"010000k", 4194304),
    (b"0b1000", "EINVAL"),
    (b"0o10", "EINVAL"),
    (b"0x0x1000", "EINVAL"),
    (b"0xFFFFFFFFFFFFFFFF", 9223372036854771712),
    (b"0x10000000000000000", 0),
    (b"0x10000000000001000", 4096),
    (b"0xfffffffffffff000", 9223372036854771712),
    (b"01777777777777777777777", 9223372036854771712),
    (b"02000000000000000000000", 0),
    (b"18446744073709551615", 9223372036854771712),
    (b"18446744073709551616", 0),
    (b"18446744073709555712", 4096),
    (b"99999999999999999999999", 200376420520685568),
    (b"9223372036854775807", 9223372036854771712),
    (b"9223372036854775808", 9223372036854771712),
    (b"9223372036854771712", 9223372036854771712),
    (b"9223372036854771711", 9223372036854767616),
    (b"9223372036854767616", 9223372036854767616),
    (b"1000000000000000000000E", 0),
    (b"36893488147419107328", 4096),
    (b" 4096", 4096),
    (b"4096 ", 4096),
    (b"\t4096", 4096),
    (b"4096\t", 4096),
    (b"\n4096", 4096),
    (b"4096\n", 4096),
    (b"4096\n\n", 4096),
    (b"\x0b4096", 4096),
    (b"4096\x0b", 4096),
    (b"\x0c4096", 4096),
    (b"4096\x0c", 4096),
    (b"\r4096", 4096),
    (b"4096\r", 4096),
    (b"\xa04096", 4096),
    (b"4096\xa0", 4096),
    (b" \t\n\x0b\x0c\r\xa04096\xa0\r\x0c\x0b\n\t ", 4096),
    (b"40 96", "EINVAL"),
    (b"4096 k", "EINVAL"),
    (b"4096\tk", "EINVAL"),
    (b"4096\x1c", "EINVAL"),
    (b"\x1c4096", "EINVAL"),
    (b"\x854096", "EINVAL"),
    (b"4096\x85", "EINVAL"),
    (b"\x004096", 0),
    (b"", "NOOP"),
    (b" ", 0),
    (b"\n", 0),
    (b"\t", 0),
    (b"\xa0", 0),
    (b" \t\n\x0b\x0c\r\xa0", 0),
    (b"4096\x00junk", 4096),
    (b"4\x00096", 0),
    (b"4096\x00", 4096),
    (b"4096\x00\x00", 4096),
    (b"\x00", 0),
    (b"+4096", "EINVAL"),
    (b"max", "EINVAL"),
    (b"unlimited", "EINVAL"),
    (b"-1 -1", "EINVAL"),
    (b"infinity", "EINVAL"),
    (b"4096;", "EINVAL"),
    (b"4096,", "EINVAL"),
    (b"\xef\xbc\x94\xef\xbc\x90\xef\xbc\x99\xef\xbc\x96", "EINVAL"),
    (b"4096\xc2\xa0", "EINVAL"),
    (b"\xc2\xa04096", "EINVAL"),
    (b"4096\xe2\x80\x89", "EINVAL"),
    (b"1\xd0\x9a", "EINVAL"),
    (b"\xff", "EINVAL"),
    (b"4096\xff", "EINVAL"),
    (b" " * 4092 + b"4096", 4096),
    (b" " * 4093 + b"4096", "E2BIG"),
    (b"0" * 4095 + b"1", 0),
]

U64_TABLE: list[tuple[bytes, int | str, int | str]] = [
    # (input, notify_on_release read-back or errno, memory.swappiness read-back or errno)
    (b"0", 0, 0),
    (b"1", 1, 1),
    (b"2", 1, 2),
    (b"60", 1, 60),
    (b"60\n", 1, 60),
    (b"60\n\n", "EINVAL", "EINVAL"),
    (b" 60", "EINVAL", "EINVAL"),
    (b"60 ", "EINVAL", "EINVAL"),
    (b"\t60", "EINVAL", "EINVAL"),
    (b"60\t", "EINVAL", "EINVAL"),
    (b"60\r", "EINVAL", "EINVAL"),
    (b"60\r\n", "EINVAL", "EINVAL"),
    (b"\n60", "EINVAL", "EINVAL"),
    (b"+60", 1, 60),
    (b"++60", "EINVAL", "EINVAL"),
    (b"+", "EINVAL", "EINVAL"),
    (b"+\n", "EINVAL", "EINVAL"),
    (b"-0", "EINVAL", "EINVAL"),
    (b"-1", "EINVAL", "EINVAL"),
    (b"-60", "EINVAL", "EINVAL"),
    (b"0x10", 1, 16),
    (b"0X10", 1, 16),
    (b"0x", "EINVAL", "EINVAL"),
    (b"0x\n", "EINVAL", "EINVAL"),
    (b"010", 1, 8),
    (b"08", "EINVAL", "EINVAL"),
    (b"0010", 1, 8),
    (b"0x1g", "EINVAL", "EINVAL"),
    (b"1k", "EINVAL", "EINVAL"),
    (b"1e3", "EINVAL", "EINVAL"),
    (b"", "NOOP", "NOOP"),
    (b"\n", "EINVAL", "EINVAL"),
    (b" ", "EINVAL", "EINVAL"),
    (b"60\x00junk", 1, 60),
    (b"\x0060", "EINVAL", "EINVAL"),
    (b"200", 1, 200),
    (b"201", 1, "EINVAL"),
    (b"200\n", 1, 200),
    (b"4294967496", 1, "EINVAL"),
    (b"18446744073709551615", 1, "EINVAL"),
    (b"18446744073709551616", "ERANGE", "ERANGE"),
    (b"99999999999999999999x", "ERANGE", "ERANGE"),
    (b"99999999999999999999", "ERANGE", "ERANGE"),
    (b"0xffffffffffffffff", 1, "EINVAL"),
    (b"0x10000000000000000", "ERANGE", "ERANGE"),
    (b"0x1ffffffffffffffff", "ERANGE", "ERANGE"),
    (b"0000000000000000000000000000000060", 1, 48),
    (b"0x000000000000000000000000001", 1, 1),
    (b"\xa060", "EINVAL", "EINVAL"),
    (b"60\xa0", "EINVAL", "EINVAL"),
    (b"6 0", "EINVAL", "EINVAL"),
    (b"\xef\xbc\x96\xef\xbc\x90", "EINVAL", "EINVAL"),
    (b"4294967296", 1, "EINVAL"),
    (b"-18446744073709551615", "EINVAL", "EINVAL"),
    (b"0x0", 0, 0),
    (b"00", 0, 0),
    (b"1.0", "EINVAL", "EINVAL"),
]

PID_TABLE: list[tuple[bytes, str]] = [
    (b"", "NOOP"),
    (b" ", "EINVAL"),
    (b"\n", "EINVAL"),
    (b"\xa0", "EINVAL"),
    (b"xyz", "EINVAL"),
    (b"junk", "EINVAL"),
    (b"-1", "EINVAL"),
    (b"-4194304", "EINVAL"),
    (b"-2147483648", "EINVAL"),
    (b"-2147483649", "EINVAL"),
    (b"4194304", "ESRCH"),
    (b" 4194304\n", "ESRCH"),
    (b"4194304\n\n", "ESRCH"),
    (b"\t4194304\r", "ESRCH"),
    (b"\xa04194304\xa0", "ESRCH"),
    (b"+4194304", "ESRCH"),
    (b"++4194304", "EINVAL"),
    (b"--4194304", "EINVAL"),
    (b"-+4194304", "EINVAL"),
    (b"+-4194304", "EINVAL"),
    (b"0x400000", "ESRCH"),
    (b"0X400000", "ESRCH"),
    (b"020000000", "ESRCH"),
    (b"0x400000g", "EINVAL"),
    (b"4194304x", "EINVAL"),
    (b"4194304e3", "EINVAL"),
    (b"4194304 4194305", "EINVAL"),
    (b"4194304\x00junk", "ESRCH"),
    (b"2147483647", "ESRCH"),
    (b"2147483648", "EINVAL"),
    (b"4299161600", "EINVAL"),
    (b"99999999999999999999", "EINVAL"),
    (b"4194304k", "EINVAL"),
    (b"0x7fffffff", "ESRCH"),
    (b"0x80000000", "EINVAL"),
    ("４１９４３０４".encode(), "EINVAL"),  # fullwidth digits: the kernel parses ASCII only
    (b"4194304.5000000", "EINVAL"),
]


# ---------------------------------------------------------------------------
# Write-layer models used to compare the parsers with the measured tables
# ---------------------------------------------------------------------------


def _errname(e: ParseError) -> str:
    return errno.errorcode[e.errno]


def _write_layer(buf: bytes) -> str | None:
    """kernfs/cgroup: empty write is a no-op, > MAX_WRITE bytes is E2BIG."""
    if not buf:
        return "NOOP"
    if len(buf) > MAX_WRITE:
        return "E2BIG"
    return None


def _limit_write(buf: bytes) -> int | str:
    pre = _write_layer(buf)
    if pre:
        return pre
    try:
        return page_counter_memparse(terminate(buf)) * PAGE_SIZE
    except ParseError as e:
        return _errname(e)


def _notify_write(buf: bytes) -> int | str:
    pre = _write_layer(buf)
    if pre:
        return pre
    try:
        return int(kstrtoull(terminate(buf), 0) != 0)
    except ParseError as e:
        return _errname(e)


def _swappiness_write(buf: bytes) -> int | str:
    pre = _write_layer(buf)
    if pre:
        return pre
    try:
        value = kstrtoull(terminate(buf), 0)
    except ParseError as e:
        return _errname(e)
    # mem_cgroup_swappiness_write() itself rejects > 200; not the parser.
    return value if value <= SWAPPINESS_MAX else "EINVAL"


def _tasks_write(buf: bytes) -> str:
    pre = _write_layer(buf)
    if pre:
        return pre
    try:
        pid = parse_pid(terminate(buf))
    except ParseError as e:
        return _errname(e)
    # Only pids above pid_max were written, so a good parse was ESRCH.
    assert pid > PID_MAX_AT_MEASUREMENT
    return "ESRCH"


def _ids(table: list) -> list[str]:
    return [repr(row[0])[:40] for row in table]


@pytest.mark.parametrize(("buf", "expected"), LIMIT_TABLE, ids=_ids(LIMIT_TABLE))
def test_limit_in_bytes_matches_kernel(buf: bytes, expected: int | str) -> None:
    assert _limit_write(buf) == expected


@pytest.mark.parametrize(("buf", "notify", "swappiness"), U64_TABLE, ids=_ids(U64_TABLE))
def test_u64_files_match_kernel(buf: bytes, notify: int | str, swappiness: int | str) -> None:
    assert _notify_write(buf) == notify
    assert _swappiness_write(buf) == swappiness


@pytest.mark.parametrize(("buf", "expected"), PID_TABLE, ids=_ids(PID_TABLE))
def test_tasks_matches_kernel(buf: bytes, expected: str) -> None:
    assert _tasks_write(buf) == expected


def test_table_sizes() -> None:
    assert len(LIMIT_TABLE) >= 80
    assert len(U64_TABLE) >= 30
    assert len(PID_TABLE) >= 15


# ---------------------------------------------------------------------------
# Direct unit tests
# ---------------------------------------------------------------------------


def test_constants() -> None:
    assert PAGE_SIZE == 4096
    assert MAX_WRITE == 4096
    assert PAGE_COUNTER_MAX == 2251799813685247
    assert PAGE_COUNTER_MAX * PAGE_SIZE == UNLIMITED


def test_parse_error() -> None:
    e = ParseError(errno.EINVAL)
    assert isinstance(e, OSError)
    assert e.errno == errno.EINVAL
    assert str(e) == "[Errno 22] Invalid argument"
    e = ParseError(errno.ERANGE, "too big")
    assert e.errno == errno.ERANGE
    assert "too big" in str(e) and "Numerical result out of range" in str(e)


@pytest.mark.parametrize(
    ("buf", "expected"),
    [
        (b"", b""),
        (b"4096", b"4096"),
        (b"4096\x00junk", b"4096"),
        (b"\x004096", b""),
        (b"4\x00096\x00", b"4"),
        (b"\n\x00", b"\n"),
    ],
)
def test_terminate(buf: bytes, expected: bytes) -> None:
    assert terminate(buf) == expected


@pytest.mark.parametrize(
    ("buf", "expected"),
    [
        (b"", b""),
        (b" \t\n\v\f\r\xa0", b""),
        (b" a b ", b"a b"),
        (b"\xa0x\xa0", b"x"),
        (b"\t\n 12 \r\f\v", b"12"),
        (b"\x1cx\x1f", b"\x1cx\x1f"),  # FS..US are control chars, not space
        (b"\x85x\x85", b"\x85x\x85"),  # NEL is a control char in latin-1
        (b"\xc2\xa0x\xc2\xa0", b"\xc2\xa0x\xc2"),  # UTF-8 NBSP: only 0xA0 goes
        (b"\x00 x", b"\x00 x"),  # NUL is not space (terminate() handles it)
    ],
)
def test_strstrip(buf: bytes, expected: bytes) -> None:
    assert strstrip(buf) == expected


@pytest.mark.parametrize(
    ("buf", "value", "rest"),
    [
        (b"", 0, b""),
        (b"4096", 4096, b""),
        (b"1k", 1024, b""),
        (b"1KB", 1024, b"B"),
        (b"1KK", 1024, b"K"),
        (b"3M", 3 << 20, b""),
        (b"2g", 2 << 30, b""),
        (b"1T", 1 << 40, b""),
        (b"1p", 1 << 50, b""),
        (b"1E", 1 << 60, b""),
        (b"16E", 0, b""),
        (b"17e", 1 << 60, b""),
        (b"1.5M", 1, b".5M"),
        (b"1e3", 1 << 60, b"3"),
        (b"1 M", 1, b" M"),
        (b" 1", 0, b" 1"),  # memparse itself does not skip spaces
        (b"-1", 0, b"-1"),
        (b"+1", 0, b"+1"),
        (b"k", 0, b""),
        (b"0x1000", 4096, b""),
        (b"0X1000k", 4096 << 10, b""),
        (b"0x1e", 30, b""),
        (b"0x", 0, b"x"),
        (b"0xg", 0, b"xg"),
        (b"010", 8, b""),
        (b"08", 0, b"8"),
        (b"000004096", 0o40, b"96"),  # octal stops at the 9
        (b"18446744073709551615", 2**64 - 1, b""),
        (b"18446744073709551616", 0, b""),
        (b"99999999999999999999999", 99999999999999999999999 % 2**64, b""),
        (b"0x10000000000001000", 4096, b""),
        (b"4096\n", 4096, b"\n"),
    ],
)
def test_memparse(buf: bytes, value: int, rest: bytes) -> None:
    assert memparse(buf) == (value, rest)


@pytest.mark.parametrize(
    ("buf", "pages"),
    [
        (b"-1", PAGE_COUNTER_MAX),
        (b" -1\n", PAGE_COUNTER_MAX),
        (b"", 0),
        (b" \n\xa0", 0),
        (b"4095", 0),
        (b"4096", 1),
        (b"8E", PAGE_COUNTER_MAX),
        (b"7E", 7 << 48),
        (b"9223372036854771711", PAGE_COUNTER_MAX - 1),
        (b"16E", 0),
    ],
)
def test_page_counter_memparse(buf: bytes, pages: int) -> None:
    assert page_counter_memparse(buf) == pages


@pytest.mark.parametrize("buf", [b"-2", b"-0", b"+1", b"1KB", b"1 M", b"max", b"-1 -1"])
def test_page_counter_memparse_einval(buf: bytes) -> None:
    with pytest.raises(ParseError) as ei:
        page_counter_memparse(buf)
    assert ei.value.errno == errno.EINVAL


@pytest.mark.parametrize(
    ("buf", "base", "expected"),
    [
        (b"0", 0, 0),
        (b"60\n", 0, 60),
        (b"+60", 0, 60),
        (b"0x10", 0, 16),
        (b"010", 0, 8),
        (b"010", 10, 10),
        (b"10", 16, 16),
        (b"0x10", 16, 16),
        (b"ff", 16, 255),
        (b"18446744073709551615", 0, 2**64 - 1),
        (b"0xffffffffffffffff", 0, 2**64 - 1),
        (b"60\x00junk", 0, 60),
        (b"18446744073709551616", 0, "ERANGE"),
        (b"99999999999999999999x", 0, "ERANGE"),
        (b"", 0, "EINVAL"),
        (b"\n", 0, "EINVAL"),
        (b"+", 0, "EINVAL"),
        (b"-0", 0, "EINVAL"),
        (b"-1", 0, "EINVAL"),
        (b" 1", 0, "EINVAL"),
        (b"1 ", 0, "EINVAL"),
        (b"1\n\n", 0, "EINVAL"),
        (b"0x", 0, "EINVAL"),
        (b"0x", 16, "EINVAL"),
        (b"08", 0, "EINVAL"),
        (b"19", 8, "EINVAL"),
        (b"1k", 0, "EINVAL"),
    ],
)
def test_kstrtoull(buf: bytes, base: int, expected: int | str) -> None:
    if isinstance(expected, int):
        assert kstrtoull(buf, base) == expected
    else:
        with pytest.raises(ParseError) as ei:
            kstrtoull(buf, base)
        assert errno.errorcode[ei.value.errno] == expected


@pytest.mark.parametrize(
    ("buf", "expected"),
    [
        (b"0", 0),
        (b"-0", 0),
        (b"+0", 0),
        (b"-1", -1),
        (b"2147483647", 2**31 - 1),
        (b"-2147483648", -(2**31)),
        (b"0x7fffffff", 2**31 - 1),
        (b"-0x80000000", -(2**31)),
        (b"-010", -8),
        (b"42\n", 42),
        (b"2147483648", "ERANGE"),
        (b"-2147483649", "ERANGE"),
        (b"4294967297", "ERANGE"),  # no int32 wrap
        (b"9223372036854775808", "ERANGE"),
        (b"-9223372036854775808", "ERANGE"),
        (b"-18446744073709551615", "ERANGE"),
        (b"18446744073709551616", "ERANGE"),
        (b"--1", "EINVAL"),
        (b"-+1", "EINVAL"),
        (b"+-1", "EINVAL"),
        (b"- 1", "EINVAL"),
        (b"", "EINVAL"),
        (b"-", "EINVAL"),
        (b" 1", "EINVAL"),
    ],
)
def test_kstrtoint(buf: bytes, expected: int | str) -> None:
    if isinstance(expected, int):
        assert kstrtoint(buf) == expected
    else:
        with pytest.raises(ParseError) as ei:
            kstrtoint(buf)
        assert errno.errorcode[ei.value.errno] == expected


def test_kstrtoint_base() -> None:
    assert kstrtoint(b"-10", 16) == -16
    assert kstrtoint(b"7fffffff", 16) == 2**31 - 1
    with pytest.raises(ParseError):
        kstrtoint(b"80000000", 16)


@pytest.mark.parametrize(
    ("buf", "expected"),
    [
        (b"0", 0),  # the writer itself; never written to the live kernel
        (b"-0", 0),
        (b"1", 1),
        (b" 4194304\n", 4194304),
        (b"\xa04194304\xa0", 4194304),
        (b"4194304\n\n", 4194304),
        (b"+4194304", 4194304),
        (b"0x400000", 4194304),
        (b"020000000", 4194304),
        (b"2147483647", 2**31 - 1),
    ],
)
def test_parse_pid(buf: bytes, expected: int) -> None:
    assert parse_pid(buf) == expected


@pytest.mark.parametrize(
    "buf", [b"", b" ", b"-1", b"-2147483648", b"2147483648", b"99999999999999999999", b"1x", b"++1"]
)
def test_parse_pid_einval(buf: bytes) -> None:
    # kstrtoint's ERANGE is folded into EINVAL, as cgroup_procs_write_start does.
    with pytest.raises(ParseError) as ei:
        parse_pid(buf)
    assert ei.value.errno == errno.EINVAL


# -- the fast paths agree with the kernel's rules, on any input --------------------------------

_PARSE_ALPHABET = b"0123456789xXaAfFgGkKmMeE \t\n\v\f\r\xa0\x85\x1c-+\0"


def _strim_by_the_rule(buf: bytes) -> bytes:
    """strstrip(): trailing, then leading bytes for which the kernel's isspace() holds."""
    space = set(b"\t\n\v\f\r \xa0")
    end = len(buf)
    while end and buf[end - 1] in space:
        end -= 1
    start = 0
    while start < end and buf[start] in space:
        start += 1
    return buf[start:end]


_PARSE_BYTES = st.lists(st.sampled_from(_PARSE_ALPHABET), max_size=24).map(bytes)
_NUMBERS = st.from_regex(rb"\A[0-9]{1,24}[kKmMgGeExX]?[0-9a-f \n]{0,3}\Z")


@given(st.binary(max_size=24) | _PARSE_BYTES)
def test_strstrip_is_the_kernels_rule(buf):
    assert parse.strstrip(buf) == _strim_by_the_rule(buf)


@given(_NUMBERS | _PARSE_BYTES)
def test_memparse_reads_plain_decimals_as_simple_strtoull_does(buf):
    """memparse() reads a plain decimal (no leading 0, at most 19 digits) without the
    digit-by-digit loop; the loop (_fixup_radix + _parse_integer: simple_strtoull's rules) must
    give the same value and end, and so the same rest, on every input."""
    base, pos = parse._fixup_radix(buf, 0)
    value, end, _ = parse._parse_integer(buf, pos, base)
    if end < len(buf) and buf[end] in b"kKmMgGtTpPeE":
        value = value << {107: 10, 109: 20, 103: 30, 116: 40, 112: 50, 101: 60}[buf[end] | 0x20]
        value &= 2**64 - 1
        end += 1
    assert parse.memparse(buf) == (value, buf[end:])


@given(_NUMBERS | _PARSE_BYTES)
@example(b"0100000000\n")  # octal: 16 MiB, where decimal would read 95 MiB
@example(b"18446744073709555712")  # 2**64 + 4096, 20 digits: wraps to one page
@example(b"1844674407370955161")  # 19 digits, the longest plain decimal
def test_page_counter_memparse_takes_plain_decimals_as_the_digit_loop_does(buf):
    """page_counter_memparse() takes a whole plain decimal straight to int(); by the kernel's
    rules (strstrip, "-1", simple_strtoull's digit loop, one suffix, nothing left, whole pages,
    capped) every input gives the same pages or the same EINVAL."""
    stripped = _strim_by_the_rule(buf.split(b"\0")[0])
    if stripped == b"-1":
        expected: int | None = PAGE_COUNTER_MAX
    else:
        base, pos = parse._fixup_radix(stripped, 0)
        value, end, _ = parse._parse_integer(stripped, pos, base)
        if end < len(stripped) and stripped[end] in b"kKmMgGtTpPeE":
            value <<= {107: 10, 109: 20, 103: 30, 116: 40, 112: 50, 101: 60}[stripped[end] | 0x20]
            value &= 2**64 - 1
            end += 1
        expected = min(value // 4096, PAGE_COUNTER_MAX) if end == len(stripped) else None
    if expected is None:
        with pytest.raises(ParseError) as e:
            parse.page_counter_memparse(buf)
        assert e.value.errno == errno.EINVAL
    else:
        assert parse.page_counter_memparse(buf) == expected
