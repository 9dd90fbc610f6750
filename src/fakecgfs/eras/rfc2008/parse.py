"""The write-side parsers of 2.6.26, bit-exact with that kernel's code (not today's).

``res_counter_write()`` copies the buffer, NUL-terminates it and calls ``strstrip(buf)``, whose
return value (the first non-space character) it discards: trailing whitespace goes, leading
whitespace stays and then fails the parse.  ``mem_cgroup_write_strategy()`` runs ``memparse()``
(``simple_strtoull`` in base 0, then one optional K/M/G suffix), refuses anything left over, and
rounds *up* to a page.  Arithmetic is u64 and wraps, as in C.
"""

from __future__ import annotations

import errno

from ...controller.constants import PAGE_SIZE
from ...controller.errors import ControllerError

U64_MASK = 2**64 - 1
_SPACE = frozenset(b"\t\n\v\f\r \xa0")  # the kernel's isspace(), lib/ctype.c
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_SHIFT = {ord("k"): 10, ord("K"): 10, ord("m"): 20, ord("M"): 20, ord("g"): 30, ord("G"): 30}


def strstrip_trailing(buf: bytes) -> bytes:
    """What strstrip() leaves in ``buf`` when its result is ignored: trailing whitespace cut."""
    end = len(buf)
    while end and buf[end - 1] in _SPACE:
        end -= 1
    return buf[:end]


def simple_strtoull(buf: bytes, base: int = 0) -> tuple[int, int]:
    """lib/vsprintf.c of 2.6.26: (value mod 2**64, index where parsing stopped).  No sign, no
    leading whitespace; base 0 means decimal, ``0`` octal, ``0x`` hex (only if a hex digit
    follows the x)."""
    i = 0
    if base == 0:
        base = 10
        if buf[:1] == b"0":
            base = 8
            i = 1
            following = buf[i + 1 : i + 2]
            if buf[i : i + 1] in (b"x", b"X") and following and following[0] in _HEX_DIGITS:
                i += 1
                base = 16
    result = 0
    while i < len(buf):
        if buf[i] not in _HEX_DIGITS:
            break
        value = int(chr(buf[i]), 16)
        if value >= base:
            break
        result = (result * base + value) & U64_MASK
        i += 1
    return result, i


def memparse(buf: bytes) -> tuple[int, int]:
    """lib/cmdline.c of 2.6.26: a number, then at most one of K, M, G (either case)."""
    value, end = simple_strtoull(buf)
    if end < len(buf) and buf[end] in _SHIFT:
        value = (value << _SHIFT[buf[end]]) & U64_MASK
        end += 1
    return value, end


def write_strategy(data: bytes) -> int:
    """mem_cgroup_write_strategy() on what res_counter_write() hands it: bytes, rounded up to a
    page (u64 arithmetic: a value within a page of 2**64 wraps to 0).  EINVAL on junk."""
    buf = strstrip_trailing(data)
    value, end = memparse(buf)
    if end != len(buf):
        raise ControllerError(errno.EINVAL, "junk after the number")
    return (((value + PAGE_SIZE - 1) & U64_MASK) // PAGE_SIZE) * PAGE_SIZE


def parse_pid(data: bytes) -> int:
    """attach_task_by_pid() of 2.6.26: ``sscanf(buf, "%d", &pid)``, EIO when it matches nothing.
    sscanf skips leading whitespace, takes an optional sign, and ignores what follows."""
    text = data.decode("latin-1").lstrip(" \t\n\v\f\r")
    digits = ""
    if text[:1] in ("+", "-"):
        digits, text = text[0], text[1:]
    while text[:1].isdigit() and text[:1].isascii():
        digits, text = digits + text[0], text[1:]
    if digits in ("", "+", "-"):
        raise ControllerError(errno.EIO, "not a pid")
    value = int(digits)
    if not -(2**31) <= value < 2**31:
        # 2.6.26 stores simple_strtol()'s long into the int, keeping the low 32 bits:
        # 4294967297 names PID 1.  A fake must not let text name a process it does not
        # spell, so such a number names none (see docs/differences.md, "The RFC era").
        raise ControllerError(errno.ESRCH, "pid out of range")
    return value
