"""What the fuzz tests share (issue 5): the write data strategies and the run profiles (what they
expect of the files is in expectations.py).

Two profiles, chosen by the environment:

* the default, sized for CI: derandomized (the same examples every run), no example database;
* ``FAKECGFS_LONG=1``: the long run, randomized, sized by ``FAKECGFS_FUZZ_WRITES`` (default
  100,000 writes through the mount; the controller fuzz runs ``FAKECGFS_FUZZ_STEPS`` steps,
  default 200,000).  ``scripts/stress --fuzz`` runs it and prints the figures.

With ``FAKECGFS_FIGURES=FILE`` set, each fuzz test merges its figures (writes, errnos met,
invariant checks passed, ...) into that JSON file.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from expectations import UNLIMITED
from fakecgfs.controller import PAGE_COUNTER_MAX

LONG = os.environ.get("FAKECGFS_LONG", "") not in ("", "0")


def profile(*, ci_examples: int, long_examples: int, steps: int | None = None) -> settings:
    """Hypothesis settings: the CI profile (derandomized) or, with FAKECGFS_LONG=1, the long
    one."""
    kwargs: dict[str, Any] = {"deadline": None, "database": None, "print_blob": True,
                              "suppress_health_check": list(HealthCheck)}  # fmt: skip
    if steps is not None:
        kwargs["stateful_step_count"] = steps
    if LONG:
        return settings(max_examples=long_examples, derandomize=False, **kwargs)
    return settings(max_examples=ci_examples, derandomize=True, **kwargs)


# -- write data ---------------------------------------------------------------------------------

WHITESPACE = [b"", b"", b"", b" ", b"\n", b"\t", b"\r\n", b"  ", b"\xa0", b"\x0b", b"\x0c"]
SUFFIXES = [b"", b"", b"", *(bytes([c]) for c in b"kKmMgGtTpPeE")]
SPECIAL_NUMBERS = [0, 1, 2, 200, 201, 4095, 4096, 4097, 2**31 - 1, 2**31, 2**32, 2**63 - 1,
                   2**63, 2**64 - 1, 2**64, UNLIMITED, UNLIMITED - 1, UNLIMITED + 4096,
                   PAGE_COUNTER_MAX]  # fmt: skip
WORDS = [
    b"-1",
    b"-1\n",
    b"-2",
    b"-0",
    b"max",
    b"1MB",
    b"1.5M",
    b"1 M",
    b"+4096",
    b"++1",
    b"0x",
    b"0x1000",
    b"0X1f",
    b"010",
    b"08",
    b"1\n\n",
    b"start",
    b"stop",
    b"start\n",
    b"  stop ",
    b"restart",
    b"anon",
    b"file",
    b"dirty",
    b"1M file",
    b"1M file dirty",
    b"1M anon dirty",
    b"4K  file",
    b"1M\tfile",
    b"1M file dirty extra",
    b"-1 file",
    b"1M swap",
    b"low",
    b"medium,hierarchy",
    b"critical,local,x",
    b"/bin/true",
    b"1 2",
    b"3 4 5M",
    b"0 0",
    b"999999 3",
    b"\xff\xfe",
    b"4096\xa0",
    b"\xc3(",
    b"\x85",
    b"1M\x85",
    b"\x00",
    b"\x001",
]


@st.composite
def number_text(draw) -> bytes:
    """A number as a user might write it: decimal, hex, octal, signed, huge, with or without a
    size suffix and whitespace around it."""
    n = draw(st.one_of(st.integers(0, 1 << 27), st.integers(0, 2**40), st.integers(0, 2**80),
                       st.sampled_from(SPECIAL_NUMBERS)))  # fmt: skip
    form = draw(st.sampled_from(["dec", "dec", "hex", "HEX", "oct", "plus", "minus"]))
    body = {"dec": b"%d" % n, "hex": b"0x%x" % n, "HEX": b"0X%X" % n, "oct": b"0%o" % n,
            "plus": b"+%d" % n, "minus": b"-%d" % n}[form]  # fmt: skip
    return (draw(st.sampled_from(WHITESPACE)) + body + draw(st.sampled_from(SUFFIXES))
            + draw(st.sampled_from(WHITESPACE)))  # fmt: skip


@st.composite
def charge_text(draw) -> bytes:
    """A well-formed fake.charge/uncharge line of a modest size (up to 96 MiB)."""
    n = draw(st.integers(0, 96 << 20))
    size = draw(st.sampled_from([b"%d" % n, b"%dK" % (n >> 10), b"%dM" % (n >> 20), b"0x%x" % n]))
    kind = draw(st.sampled_from([b"", b" anon", b" file", b" file dirty", b"\n", b" anon\n"]))
    return size + kind


def oversized() -> st.SearchStrategy[bytes]:
    """Writes from just under to far over the 4096-byte cap, and over FUSE's 128 KiB max_write."""
    return st.tuples(
        st.sampled_from([4095, 4096, 4097, 8192, 65536, 131072, 131073, 300000]),
        st.sampled_from([b" ", b"1", b"\0", b"x", b"\xff"]),
    ).map(lambda t: (b"4096" + t[1] * t[0])[: t[0]])


def write_data() -> st.SearchStrategy[bytes]:
    """Anything a user or a script might write into a control file."""
    base = st.one_of(
        number_text(),
        number_text(),
        st.sampled_from(WORDS),
        charge_text(),
        st.binary(max_size=48),
        st.text(max_size=24).map(lambda s: s.encode("utf-8")),
    )
    return st.one_of(
        base,
        base,
        base,
        st.tuples(base, st.binary(max_size=8)).map(lambda t: t[0] + b"\0" + t[1]),  # a NUL
        st.tuples(base, st.sampled_from([b"\xff", b"\xa0", b"\xc3\x28", b"\xed\xa0\x80"])).map(
            lambda t: t[0] + t[1]
        ),  # non-UTF-8 after a value
        oversized(),
    )
