"""Write-side parsers of the cgroup v1 memory controller, bit-exact with Linux.

Each function imitates one kernel routine (named in its docstring) so that a
write to a fakecgfs control file accepts, rejects and rounds exactly the same
inputs as the kernel does. All functions are pure: they take the raw bytes the
writer passed to write(2) (after :func:`terminate`) and return a value or raise
:class:`ParseError` carrying the errno the kernel would return.

Measured against Linux 6.18 with 4 KiB pages; see tests/test_parse.py.
"""

from __future__ import annotations

import errno as _errno
import os as _os
import re as _re

from ..kernel import PAGE_COUNTER_MAX, PAGE_SIZE

__all__ = [
    "PAGE_SIZE",
    "PAGE_COUNTER_MAX",
    "MAX_WRITE",
    "ParseError",
    "terminate",
    "strstrip",
    "memparse",
    "page_counter_memparse",
    "kstrtoull",
    "kstrtoint",
    "parse_pid",
]

#: cgroup files have ``atomic_write_len = PAGE_SIZE``: longer writes get E2BIG.
MAX_WRITE = PAGE_SIZE

_U64_MASK = 2**64 - 1
_INT_MIN = -(2**31)
_INT_MAX = 2**31 - 1

#: Bytes for which the kernel's isspace() is true (lib/ctype.c ``_S``):
#: \t \n \v \f \r, space, and 0xA0 (NBSP in the kernel's latin-1 table).
_KSPACE = frozenset(b"\t\n\v\f\r \xa0")
_KSPACE_BYTES = bytes(sorted(_KSPACE))

#: What simple_strtoull(base 0) reads as plain decimal without looking further: no leading 0
#: (octal, hex), and at most 19 digits, which cannot exceed 2**64 - 1 (so nothing wraps).  Every
#: limit write is parsed; matched in C, this saves the digit-by-digit loop.
_PLAIN_DECIMAL = _re.compile(rb"[1-9][0-9]{0,18}(?![0-9])")
_ZERO = ord("0")
_PLAIN_DIGITS_MAX = 19  # the same plain decimal, as a whole value (bytes.isdigit() is ASCII)

#: memparse() suffixes and their shifts (lib/cmdline.c, case-insensitive).
_SUFFIX_SHIFT = {
    ord("k"): 10,
    ord("m"): 20,
    ord("g"): 30,
    ord("t"): 40,
    ord("p"): 50,
    ord("e"): 60,
}
_SUFFIX_BYTES = frozenset(b"kKmMgGtTpPeE")


class ParseError(OSError):
    """A parse failure carrying the errno the kernel's write() would return.

    Construct as ``ParseError(errno.EINVAL)``; ``e.errno`` is set and
    ``str(e)`` reads like ``[Errno 22] Invalid argument``.
    """

    def __init__(self, err: int, detail: str | None = None) -> None:
        msg = _os.strerror(err)
        if detail:
            msg = f"{msg}: {detail}"
        super().__init__(err, msg)


def terminate(buf: bytes) -> bytes:
    """Return the C string a write handler sees.

    kernfs_fop_write_iter() copies the user buffer and appends a NUL; every
    cgroup handler then treats it as a C string, so the first NUL byte ends
    the value and anything after it is ignored.
    """
    nul = buf.find(b"\0")
    return buf if nul < 0 else buf[:nul]


def strstrip(buf: bytes) -> bytes:
    """Imitate strstrip()/strim() (lib/string_helpers.c, lib/string.c).

    Trailing then leading bytes for which the kernel's isspace() holds are
    removed. The kernel ctype table is latin-1, so 0xA0 counts as space, but
    the other high bytes (e.g. 0x85, 0xC2) and 0x1C-0x1F do not.
    """
    return buf.strip(_KSPACE_BYTES)


def _fixup_radix(buf: bytes, base: int) -> tuple[int, int]:
    """Imitate _parse_integer_fixup_radix(): return (base, index of digits).

    Base 0 becomes 16 only for ``0x``/``0X`` followed by a hex digit, 8 for any
    other leading ``0`` (so ``0x`` alone parses as octal 0 with junk ``x``),
    else 10. A ``0x`` prefix is skipped whenever the base is 16.
    """

    def at(i: int) -> int:
        return buf[i] if i < len(buf) else 0

    if base == 0:
        if at(0) == ord("0"):
            if at(1) | 0x20 == ord("x") and chr(at(2)) in "0123456789abcdefABCDEF":
                base = 16
            else:
                base = 8
        else:
            base = 10
    pos = 0
    if base == 16 and at(0) == ord("0") and at(1) | 0x20 == ord("x"):
        pos = 2
    return base, pos


def _parse_integer(buf: bytes, pos: int, base: int) -> tuple[int, int, bool]:
    """Imitate _parse_integer_limit(): return (value mod 2**64, end, overflowed).

    Digits are consumed while valid for @base; the accumulator wraps modulo
    2**64 and the overflow flag is set when the true value exceeds 2**64-1.
    """
    res = 0
    exact = 0
    i = pos
    n = len(buf)
    while i < n:
        c = buf[i]
        lc = c | 0x20
        if 0x30 <= c <= 0x39:
            val = c - 0x30
        elif ord("a") <= lc <= ord("f"):
            val = lc - ord("a") + 10
        else:
            break
        if val >= base:
            break
        exact = exact * base + val if exact <= _U64_MASK else exact
        res = (res * base + val) & _U64_MASK
        i += 1
    return res, i, exact > _U64_MASK


def memparse(buf: bytes) -> tuple[int, bytes]:
    """Imitate memparse() (lib/cmdline.c); return (value, unparsed rest).

    simple_strtoull(base 0) never fails: it stops at the first non-digit and
    silently wraps modulo 2**64 (no sign handling, so ``-`` and ``+`` stop it
    at once with value 0). One K/M/G/T/P/E suffix, either case, then shifts
    left by 10..60 bits, also wrapping modulo 2**64.
    """
    plain = _PLAIN_DECIMAL.match(buf)
    if plain is not None:
        value, end = int(plain.group()), plain.end()
    else:
        base, pos = _fixup_radix(buf, 0)
        value, end, _ = _parse_integer(buf, pos, base)
    if end < len(buf) and buf[end] in _SUFFIX_BYTES:
        value = (value << _SUFFIX_SHIFT[buf[end] | 0x20]) & _U64_MASK
        end += 1
    return value, buf[end:]


def page_counter_memparse(buf: bytes) -> int:
    """Imitate mem_cgroup_write() + page_counter_memparse(buf, "-1", ...).

    The buffer is strstrip()ped; exactly ``-1`` means PAGE_COUNTER_MAX;
    otherwise memparse() must consume everything (else EINVAL) and the byte
    count is truncated down to whole pages, capped at PAGE_COUNTER_MAX.
    Whitespace-only (or empty) input therefore yields 0 pages.
    """
    buf = strstrip(terminate(buf))
    if buf.isdigit() and buf[0] != _ZERO and len(buf) <= _PLAIN_DIGITS_MAX:
        return min(int(buf) // PAGE_SIZE, PAGE_COUNTER_MAX)  # what most writes are
    if buf == b"-1":
        return PAGE_COUNTER_MAX
    value, rest = memparse(buf)
    if rest:
        raise ParseError(_errno.EINVAL, f"junk after number: {rest!r}")
    return min(value // PAGE_SIZE, PAGE_COUNTER_MAX)


def _kstrtoull_nosign(buf: bytes, base: int) -> int:
    """Imitate _kstrtoull(): digits, one optional ``\\n``, nothing else.

    Overflow is reported (ERANGE) before trailing junk is looked at.
    """
    base, pos = _fixup_radix(buf, base)
    value, end, overflow = _parse_integer(buf, pos, base)
    if overflow:
        raise ParseError(_errno.ERANGE)
    if end == pos:
        raise ParseError(_errno.EINVAL, "no digits")
    if end < len(buf) and buf[end] == ord("\n"):
        end += 1
    if end < len(buf):
        raise ParseError(_errno.EINVAL, f"junk after number: {buf[end:]!r}")
    return value


def kstrtoull(buf: bytes, base: int = 0) -> int:
    """Imitate kstrtoull() (lib/kstrtox.c), used by cgroup write_u64 files.

    One leading ``+`` is allowed, then _kstrtoull(): no whitespace except a
    single trailing newline; EINVAL for junk or no digits, ERANGE above
    2**64-1.
    """
    buf = terminate(buf)
    if buf[:1] == b"+":
        buf = buf[1:]
    return _kstrtoull_nosign(buf, base)


def _kstrtoll(buf: bytes, base: int) -> int:
    """Imitate kstrtoll(): a leading ``-`` or ``+``, ERANGE outside int64."""
    if buf[:1] == b"-":
        tmp = _kstrtoull_nosign(buf[1:], base)
        if tmp > 2**63:
            raise ParseError(_errno.ERANGE)
        return -tmp
    tmp = kstrtoull(buf, base)
    if tmp >= 2**63:
        raise ParseError(_errno.ERANGE)
    return tmp


def kstrtoint(buf: bytes, base: int = 0) -> int:
    """Imitate kstrtoint(): kstrtoll() then ERANGE unless it fits in int32."""
    value = _kstrtoll(terminate(buf), base)
    if not _INT_MIN <= value <= _INT_MAX:
        raise ParseError(_errno.ERANGE)
    return value


def parse_pid(buf: bytes) -> int:
    """Imitate cgroup_procs_write_start()'s parse for cgroup1 tasks/procs.

    ``kstrtoint(strstrip(buf), 0, &pid) || pid < 0`` -> EINVAL: every parse
    failure, including ERANGE, becomes EINVAL. 0 means "the writer itself";
    a pid with no task is ESRCH, which is the caller's business.
    """
    try:
        pid = kstrtoint(strstrip(terminate(buf)), 0)
    except ParseError as e:
        raise ParseError(_errno.EINVAL, f"bad pid ({e.strerror})") from None
    if pid < 0:
        raise ParseError(_errno.EINVAL, "negative pid")
    return pid
