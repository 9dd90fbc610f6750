"""The tables the probes range over: the kernel's file catalogues (6.18, cgroup v1 memory
controller, swap accounting on) and the inputs written to them."""

from __future__ import annotations

import os

from .answers import input_label, pid_input_is_safe

ROOT_FILES = (
    "cgroup.clone_children", "cgroup.event_control", "cgroup.procs", "cgroup.sane_behavior",
    "memory.failcnt", "memory.force_empty", "memory.kmem.failcnt", "memory.kmem.limit_in_bytes",
    "memory.kmem.max_usage_in_bytes", "memory.kmem.slabinfo", "memory.kmem.tcp.failcnt",
    "memory.kmem.tcp.limit_in_bytes", "memory.kmem.tcp.max_usage_in_bytes",
    "memory.kmem.tcp.usage_in_bytes", "memory.kmem.usage_in_bytes", "memory.limit_in_bytes",
    "memory.max_usage_in_bytes", "memory.memsw.failcnt", "memory.memsw.limit_in_bytes",
    "memory.memsw.max_usage_in_bytes", "memory.memsw.usage_in_bytes",
    "memory.move_charge_at_immigrate", "memory.numa_stat", "memory.oom_control",
    "memory.pressure_level", "memory.soft_limit_in_bytes", "memory.stat", "memory.swappiness",
    "memory.usage_in_bytes", "memory.use_hierarchy", "notify_on_release", "release_agent", "tasks",
)  # fmt: skip
CHILD_FILES = (
    "cgroup.clone_children", "cgroup.event_control", "cgroup.procs", "memory.failcnt",
    "memory.force_empty", "memory.kmem.failcnt", "memory.kmem.limit_in_bytes",
    "memory.kmem.max_usage_in_bytes", "memory.kmem.slabinfo", "memory.kmem.tcp.failcnt",
    "memory.kmem.tcp.limit_in_bytes", "memory.kmem.tcp.max_usage_in_bytes",
    "memory.kmem.tcp.usage_in_bytes", "memory.kmem.usage_in_bytes", "memory.limit_in_bytes",
    "memory.max_usage_in_bytes", "memory.memsw.failcnt", "memory.memsw.limit_in_bytes",
    "memory.memsw.max_usage_in_bytes", "memory.memsw.usage_in_bytes",
    "memory.move_charge_at_immigrate", "memory.numa_stat", "memory.oom_control",
    "memory.pressure_level", "memory.shown_ram_in_bytes", "memory.soft_limit_in_bytes",
    "memory.stat", "memory.swappiness", "memory.usage_in_bytes", "memory.use_hierarchy",
    "notify_on_release", "tasks",
)  # fmt: skip
#: every name probed for stat/read/open, in root and child alike (absence is an answer too)
ALL_FILES = tuple(sorted(set(ROOT_FILES) | set(CHILD_FILES)))
#: files of the 2008 watermark RFC: they do not exist on any kernel (fakecgfs-only)
WMARK_FILES = ("memory.high_wmark_in_bytes", "memory.low_wmark_in_bytes")

#: root files whose content is the same on every machine (the rest are statistics,
#: PID lists or sysctl-driven, hence machine-dependent)
ROOT_DETERMINISTIC_READS = frozenset({
    "cgroup.clone_children", "cgroup.event_control", "cgroup.sane_behavior", "memory.force_empty",
    "memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes", "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes", "memory.move_charge_at_immigrate", "memory.pressure_level",
    "memory.shown_ram_in_bytes", "memory.soft_limit_in_bytes", "memory.use_hierarchy",
    "notify_on_release", "release_agent",
})  # fmt: skip

READ_ONLY_FILES = (
    "memory.kmem.slabinfo", "memory.kmem.tcp.usage_in_bytes", "memory.kmem.usage_in_bytes",
    "memory.memsw.usage_in_bytes", "memory.numa_stat", "memory.pressure_level", "memory.stat",
    "memory.usage_in_bytes",
)  # fmt: skip

BYTE_FILES = (
    "memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes",
    "memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes", "memory.shown_ram_in_bytes",
)  # fmt: skip
NUMBER_FILES = (
    "memory.swappiness", "memory.use_hierarchy", "memory.move_charge_at_immigrate",
    "memory.oom_control", "notify_on_release", "cgroup.clone_children",
)  # fmt: skip
RESET_FILES = (
    "memory.max_usage_in_bytes", "memory.failcnt", "memory.memsw.max_usage_in_bytes",
    "memory.memsw.failcnt", "memory.kmem.max_usage_in_bytes", "memory.kmem.failcnt",
    "memory.kmem.tcp.max_usage_in_bytes", "memory.kmem.tcp.failcnt",
)  # fmt: skip

Input = tuple[str, bytes]
"""An input and its label in probe ids (escaped: see input_label)."""


def inputs(*items: bytes | Input) -> tuple[Input, ...]:
    """Inputs labelled by input_label(), or by the label given with them (long ones)."""
    out = tuple(item if isinstance(item, tuple) else (input_label(item), item) for item in items)
    labels = [label for label, _ in out]
    assert len(set(labels)) == len(labels), "duplicate input labels"
    return out


BYTE_INPUTS = inputs(
    b"4096", b"4096\n", b"\n4096", b"4096\n\n", b" 4096", b"4096 ", b"\t4096\t", b"\r4096\r\n",
    b"\v4096\f", b"0", b"0\n", b"1", b"4095", b"4097", b"8191", b"8192", b"12288",
    b"123456789", b"1K", b"1k", b"4k", b"4K\n", b"1M", b"1m", b"1G", b"1g", b"1T", b"1t",
    b"1P", b"1E", b"7E", b"8E", b"16E", b"1KK", b"1MB", b"1KB", b"1 M", b"1.5M", b"1e3",
    b"+4096", b"-1", b"-1\n", b" -1 ", b"-2", b"-0", b"-4096", b"--1", b"-1K", b"4096abc",
    b"abc", b"max", b"K", b"-", b"", b"\n", b" ", b"\t\n", b"010", b"08", b"00", b"0x1000",
    b"0X1000", b"0x1000k", b"0x", b"0xg", b"0x10M", b"0b101", b"1_000",
    b"9223372036854771711", b"9223372036854771712", b"9223372036854775807",
    b"9223372036854775808", b"18446744073709551615", b"18446744073709551616",
    b"99999999999999999999999", b"4096\x00junk", b"4096\x00", b"\x004096", b"4096 4096",
    b"4096\n4096", b"1k\n", b" 1G ", b"\xff", b"4096\xff",
    ("pad4096", b" " * 4092 + b"8192"), ("pad4097", b" " * 4093 + b"8192"),
    ("trailnl4096", b"8192" + b"\n" * 4092),
)  # fmt: skip

NUMBER_INPUTS = inputs(
    b"0", b"1", b"2", b"60", b"100", b"200", b"201", b"-1", b"abc", b"", b"\n", b" 1", b"1 ",
    b"1\n", b"1\n\n", b"0x10", b"010", b"08", b"+1", b"1K", b"4294967296",
    b"18446744073709551615", b"18446744073709551616", b"1\x00junk",
)  # fmt: skip

RESET_INPUTS = inputs(
    b"0", b"0\n", b"1", b"4096", b"-1", b"abc", b"\n", b" ", b"", b"99999999999999999999999",
)  # fmt: skip

#: only junk, negatives, > INT_MAX, or PIDs above PID_MAX_LIMIT (which no process can have)
PID_INPUTS = inputs(
    b"abc", b"", b"\n", b" ", b"-1", b"-1\n", b"-2147483648", b"-4194305", b"2147483647",
    b"2147483647\n", b" 2147483647 ", b"+2147483647", b"0x7fffffff", b"4194305",
    b"2147483648", b"4294967295", b"4294967296", b"99999999999999999999", b"2147483647abc",
    b"abc2147483647", b"2147483647 2147483647", b"2147483647\n2147483647",
    b"2147483647\x00junk", b"-2147483647x",
)  # fmt: skip


OPEN_FLAGS: tuple[tuple[str, int], ...] = (
    ("rdonly", os.O_RDONLY),
    ("wronly", os.O_WRONLY),
    ("rdwr", os.O_RDWR),
    ("append", os.O_WRONLY | os.O_APPEND),
    ("trunc", os.O_WRONLY | os.O_TRUNC),
    ("creat", os.O_WRONLY | os.O_CREAT),
    ("creat-excl", os.O_WRONLY | os.O_CREAT | os.O_EXCL),
    ("directory", os.O_RDONLY | os.O_DIRECTORY),
)  # fmt: skip


INHERIT_READS = (
    "memory.swappiness", "memory.oom_control", "cgroup.clone_children", "notify_on_release",
    "memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes",
    "memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes", "memory.use_hierarchy",
    "memory.move_charge_at_immigrate", "memory.shown_ram_in_bytes",
)  # fmt: skip


assert all(pid_input_is_safe(data) for _, data in PID_INPUTS), "a PID input could name a process"
