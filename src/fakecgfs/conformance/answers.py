"""How an answer is recorded: errno records, lossless text, escaped labels, stat dicts, and
the ordered steps of a probe.  Nothing racy is kept (no times, inode or fd numbers, PIDs)."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable
from typing import Any

PID_MAX_LIMIT = 4194304  # the largest value /proc/sys/kernel/pid_max can take (64-bit)


def errno_name(num: int | None) -> str:
    """Symbolic name of an errno value (``EINVAL``), or ``E<num>`` when unknown."""
    if num is None:
        return "E?"
    return errno.errorcode.get(num, f"E{num}")


def err(exc: OSError, syscall: str) -> dict[str, str]:
    """The recorded form of a failed syscall."""
    return {"errno": errno_name(exc.errno), "syscall": syscall}


def is_err(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"errno", "syscall"}


def capture(syscall: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; return its result, or the errno record if it raised OSError."""
    try:
        return fn(*args, **kwargs)
    except OSError as exc:
        return err(exc, syscall)


def text(data: bytes) -> str:
    """Bytes as recorded in JSON: latin-1 decoding is lossless (JSON escapes the rest)."""
    return data.decode("latin-1")


_NAMED_ESCAPES = {0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r", 0x0B: "\\v", 0x5C: "\\\\"}


def escape_bytes(data: bytes, extra: bytes = b"") -> str:
    """Readable, reversible ASCII form of bytes: ``b"4096\\n"`` -> ``4096\\n``.

    Backslash, non-printable bytes and any byte in ``extra`` are escaped (``\\n``,
    ``\\t``, ``\\r``, ``\\v``, ``\\\\`` or ``\\xNN``).
    """
    out = []
    for byte in data:
        if byte in _NAMED_ESCAPES and byte not in extra:
            out.append(_NAMED_ESCAPES[byte])
        elif byte < 0x20 or byte >= 0x7F or byte in extra:
            out.append(f"\\x{byte:02x}")
        else:
            out.append(chr(byte))
    return "".join(out)


def unescape_bytes(escaped: str) -> bytes:
    """Inverse of :func:`escape_bytes`."""
    rev = {"n": 0x0A, "t": 0x09, "r": 0x0D, "v": 0x0B, "\\": 0x5C}
    out = bytearray()
    i = 0
    while i < len(escaped):
        ch = escaped[i]
        if ch != "\\":
            out.append(ord(ch))
            i += 1
            continue
        nxt = escaped[i + 1]
        if nxt == "x":
            out.append(int(escaped[i + 2 : i + 4], 16))
            i += 4
        else:
            out.append(rev[nxt])
            i += 2
    return bytes(out)


def input_label(data: bytes) -> str:
    """Id component for an input: escaped, with space and ``/`` escaped too."""
    if not data:
        return "(empty)"
    return escape_bytes(data, extra=b" /")


def step_label(data: bytes, limit: int = 32) -> str:
    """Short readable form of written data for a step label (long data abbreviated)."""
    if not data:
        return "(empty)"
    if len(data) <= limit:
        return escape_bytes(data)
    return f"{escape_bytes(data[:6])}...{escape_bytes(data[-6:])} ({len(data)} bytes)"


def oct_mode(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"


def kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "reg"
    if stat.S_ISLNK(mode):
        return "lnk"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "other"


def stat_dict(st: os.stat_result) -> dict[str, Any]:
    """Deterministic stat fields only (no times, inode, device, uid/gid)."""
    return {
        "type": kind_of(st.st_mode),
        "mode": oct_mode(st.st_mode),
        "size": st.st_size,
        "nlink": st.st_nlink,
        "blocks": st.st_blocks,
        "blksize": st.st_blksize,
    }


def pid_input_is_safe(data: bytes) -> bool:
    """True when no kernel-style integer in ``data`` can name an existing process.

    Conservative: every alphanumeric token (with an optional sign) is parsed with the
    kernel's base-0 rules and must not fall in ``0..PID_MAX_LIMIT``.  ``0`` (the
    writer itself) and every real PID are therefore refused.
    """
    for token in re.findall(rb"[+-]?[0-9A-Za-z]+", data):
        sign = -1 if token[:1] == b"-" else 1
        body = token.lstrip(b"+-")
        try:
            if body[:2].lower() == b"0x":
                value = int(body[2:], 16)
            elif body[:1] == b"0" and len(body) > 1:
                value = int(body, 8)
            else:
                value = int(body, 10)
        except ValueError:
            continue
        if 0 <= sign * value <= PID_MAX_LIMIT:
            return False
    return True


class Steps:
    """Ordered record of a probe's steps: label -> value (labels made unique)."""

    def __init__(self) -> None:
        self.d: dict[str, Any] = {}

    def set(self, label: str, value: Any) -> Any:
        key, n = label, 2
        while key in self.d:
            key = f"{label}#{n}"
            n += 1
        self.d[key] = value
        return value

    def call(
        self,
        label: str,
        syscall: str,
        fn: Callable[..., Any],
        *args: Any,
        show: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Run ``fn``; record ``show(result)`` (default "ok" for None) or the errno.

        Returns the raw result, or None when the call failed.
        """
        try:
            result = fn(*args)
        except OSError as exc:
            self.set(label, err(exc, syscall))
            return None
        if show is not None:
            self.set(label, show(result))
        else:
            self.set(label, "ok" if result is None else result)
        return result
