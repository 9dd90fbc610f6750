"""The conformance probes that the RFC era answers differently from kernel 6.18, and why.

``tests/golden/kernel-6.18.json`` holds kernel 6.18's answers; a mount of ``--era rfc-2008`` is
2.6.26-rc2-mm1 with the RFC, so most probes do not apply to it.  ``DIFFERENCES`` maps a probe
id, or a prefix of ids, to the reason; the longest matching prefix explains a probe.
tests/eras/test_rfc2008_conformance.py records an RFC-era mount with the conformance tool and
checks that every difference is explained here, that every entry still explains one, and that
every entry names probes that exist.
"""

from __future__ import annotations

ABSENT = (
    "the file does not exist in 2.6.26 with the RFC: cgroup.procs, cgroup.clone_children, "
    "cgroup.sane_behavior, cgroup.event_control, memory.memsw.*, memory.kmem.*, "
    "soft_limit_in_bytes, swappiness, use_hierarchy, move_charge_at_immigrate, oom_control, "
    "numa_stat and pressure_level came later, and shown_ram_in_bytes is a vendor file of "
    "the measured kernel: ENOENT"
)
FILE_SET = "a group lists 2.6.26's control files and the RFC's two watermark files: fewer entries"
MODES = "2.6.26 cgroupfs makes every control file 0644, read-only and write-only ones included"
UNLIMITED = (
    "res_counter's unlimited is LLONG_MAX, read as 9223372036854775807 (the page "
    "counter's reads 9223372036854771712)"
)
STAT = (
    "memory.stat of 2.6.26 has cache, rss, pgpgin, pgpgout, active and inactive only (no split "
    "LRU, swap, hierarchy or total_ lines), and its mode is 0644"
)
TRAP = (
    "the probe writes memory.limit_in_bytes on a fresh group, which is EINVAL: "
    "res_counter_init_wmark() leaves the high watermark at LLONG_MAX and the RFC refuses a "
    "limit below it; the limit then reads back as LLONG_MAX"
)
LIMIT_PARSE = (
    TRAP + "; besides, 2.6.26's parser takes only K, M and G, rounds up, refuses -1 "
    "and leading whitespace"
)
LIMIT_ORDER = (
    "memory.memsw.*, memory.kmem.* and soft_limit_in_bytes do not exist, and every "
    "limit write on a fresh group is EINVAL (the LLONG_MAX high watermark)"
)
FD_WRITE = (
    "the probe writes memory.limit_in_bytes (EINVAL on a fresh group: the LLONG_MAX high "
    "watermark; read back as LLONG_MAX) or a file 2.6.26 lacks (swappiness, oom_control, "
    "soft_limit_in_bytes, cgroup.event_control)"
)
TASKS = (
    '2.6.26\'s tasks parser is sscanf("%d"): EIO without a number, trailing junk ignored, '
    "0x7fffffff read as 0 (the writer itself); and cgroup.procs does not exist"
)
NOTIFY = "2.6.26's notify_on_release takes simple_strtoul(): junk reads as 0, never an error"
EVENTS = "cgroup.event_control came in 2.6.34: ENOENT, and nothing is ever signalled"
MKDIR = "a new group has 2.6.26's file set and reads its limit as LLONG_MAX"
RENAME = (
    "the probe first sets a 1G limit, EINVAL on a fresh group (the LLONG_MAX high "
    "watermark), then reads it back as LLONG_MAX"
)
NO_HIERARCHY = (
    "2.6.26 has no hierarchy and a child inherits nothing; the files these probes set "
    "or read are absent, or keep LLONG_MAX (limit writes are EINVAL on a fresh group)"
)
RECREATE = (
    "the probe sets files before rmdir that are absent (swappiness, oom_control) or "
    "refused (the limit, EINVAL on a fresh group)"
)
META = (
    "the probe writes or reads memory.limit_in_bytes: EINVAL on a fresh group (the LLONG_MAX "
    "high watermark), LLONG_MAX when read"
)
HELD_FD = (
    "a descriptor held across rmdir: FUSE's own answers (lseek, fstat; see "
    "tests/golden/known-differences.json), and the file's 2.6.26 value or absence"
)
FUSE = (
    "FUSE's own difference, as for the default mount (tests/golden/known-differences.json): "
    "statfs's magic and poll()'s events; and for files 2.6.26 lacks, ENOENT"
)

DIFFERENCES: tuple[tuple[str, str], ...] = (
    ("root/listing", FILE_SET),
    ("root/stat/cgroup.clone_children", ABSENT),
    ("root/stat/cgroup.event_control", ABSENT),
    ("root/stat/cgroup.procs", ABSENT),
    ("root/stat/cgroup.sane_behavior", ABSENT),
    ("root/stat/memory.force_empty", MODES),
    ("root/stat/memory.kmem.", ABSENT),
    ("root/stat/memory.memsw.", ABSENT),
    ("root/stat/memory.move_charge_at_immigrate", ABSENT),
    ("root/stat/memory.numa_stat", ABSENT),
    ("root/stat/memory.oom_control", ABSENT),
    ("root/stat/memory.pressure_level", ABSENT),
    ("root/stat/memory.soft_limit_in_bytes", ABSENT),
    ("root/stat/memory.stat", MODES),
    ("root/stat/memory.swappiness", ABSENT),
    ("root/stat/memory.usage_in_bytes", MODES),
    ("root/stat/memory.use_hierarchy", ABSENT),
    ("root/read/cgroup.clone_children", ABSENT),
    ("root/read/cgroup.event_control", ABSENT),
    ("root/read/cgroup.sane_behavior", ABSENT),
    ("root/read/memory.kmem.", ABSENT),
    ("root/read/memory.limit_in_bytes", UNLIMITED),
    ("root/read/memory.memsw.", ABSENT),
    ("root/read/memory.move_charge_at_immigrate", ABSENT),
    ("root/read/memory.pressure_level", ABSENT),
    ("root/read/memory.soft_limit_in_bytes", ABSENT),
    ("root/read/memory.use_hierarchy", ABSENT),
    ("child/listing", FILE_SET),
    ("child/stat/cgroup.clone_children", ABSENT),
    ("child/stat/cgroup.event_control", ABSENT),
    ("child/stat/cgroup.procs", ABSENT),
    ("child/stat/memory.force_empty", MODES),
    ("child/stat/memory.kmem.", ABSENT),
    ("child/stat/memory.memsw.", ABSENT),
    ("child/stat/memory.move_charge_at_immigrate", ABSENT),
    ("child/stat/memory.numa_stat", ABSENT),
    ("child/stat/memory.oom_control", ABSENT),
    ("child/stat/memory.pressure_level", ABSENT),
    ("child/stat/memory.shown_ram_in_bytes", ABSENT),
    ("child/stat/memory.soft_limit_in_bytes", ABSENT),
    ("child/stat/memory.stat", MODES),
    ("child/stat/memory.swappiness", ABSENT),
    ("child/stat/memory.usage_in_bytes", MODES),
    ("child/stat/memory.use_hierarchy", ABSENT),
    ("read/cgroup.clone_children", ABSENT),
    ("read/cgroup.event_control", ABSENT),
    ("read/cgroup.procs", ABSENT),
    ("read/memory.kmem.", ABSENT),
    ("read/memory.limit_in_bytes", UNLIMITED),
    ("read/memory.memsw.", ABSENT),
    ("read/memory.move_charge_at_immigrate", ABSENT),
    ("read/memory.numa_stat", ABSENT),
    ("read/memory.oom_control", ABSENT),
    ("read/memory.pressure_level", ABSENT),
    ("read/memory.shown_ram_in_bytes", ABSENT),
    ("read/memory.soft_limit_in_bytes", ABSENT),
    ("read/memory.stat", STAT),
    ("read/memory.swappiness", ABSENT),
    ("read/memory.use_hierarchy", ABSENT),
    ("read-rdwr/memory.limit_in_bytes", UNLIMITED),
    ("read-rdwr/memory.stat", STAT),
    ("read-rdwr/memory.oom_control", ABSENT),
    ("read-rdwr/cgroup.event_control", ABSENT),
    ("fd-read/read3/memory.limit_in_bytes", UNLIMITED),
    ("fd-read/read3/memory.oom_control", ABSENT),
    ("fd-read/read3/memory.stat", STAT),
    ("fd-read/read3/memory.numa_stat", ABSENT),
    ("fd-read/read3/memory.swappiness", ABSENT),
    ("fd-read/read3/memory.kmem.", ABSENT),
    ("fd-read/read1/memory.limit_in_bytes", UNLIMITED),
    ("fd-read/read1/memory.oom_control", ABSENT),
    ("fd-read/pread/memory.limit_in_bytes", UNLIMITED),
    ("fd-read/pread/memory.oom_control", ABSENT),
    ("fd-read/pread/memory.stat", STAT),
    ("fd-read/lseek/memory.limit_in_bytes", UNLIMITED),
    ("fd-read/lseek/memory.stat", STAT),
    ("fd-read/snapshot-after-partial-read", TRAP),
    ("fd-read/open-then-change-then-read", TRAP),
    ("fd-read/pread-after-change", TRAP),
    ("fd-read/rdwr-write-then-read/memory.limit_in_bytes", UNLIMITED),
    ("fd-read/rdwr-write-then-read/memory.swappiness", ABSENT),
    ("fd-read/rdwr-read-write-read", TRAP),
    ("write/memory.limit_in_bytes", LIMIT_PARSE),
    ("write/memory.soft_limit_in_bytes", ABSENT),
    ("write/memory.memsw.", ABSENT),
    ("write/memory.kmem.", ABSENT),
    ("write/memory.shown_ram_in_bytes", ABSENT),
    ("write/memory.swappiness", ABSENT),
    ("write/memory.use_hierarchy", ABSENT),
    ("write/memory.move_charge_at_immigrate", ABSENT),
    ("write/memory.oom_control", ABSENT),
    ("write/notify_on_release", NOTIFY),
    ("write/cgroup.clone_children", ABSENT),
    ("write/tasks", TASKS),
    ("write/cgroup.procs", ABSENT),
    ("write-memsw-after-limit", ABSENT),
    ("write-readonly/memory.kmem.", ABSENT),
    ("write-readonly/memory.memsw.", ABSENT),
    ("write-readonly/memory.numa_stat", ABSENT),
    ("write-readonly/memory.pressure_level", ABSENT),
    ("write-readonly/memory.stat", STAT),
    ("write-empty/cgroup.clone_children", ABSENT),
    ("write-empty/cgroup.event_control", ABSENT),
    ("write-empty/cgroup.procs", ABSENT),
    ("write-empty/memory.kmem.", ABSENT),
    ("write-empty/memory.limit_in_bytes", UNLIMITED),
    ("write-empty/memory.memsw.", ABSENT),
    ("write-empty/memory.move_charge_at_immigrate", ABSENT),
    ("write-empty/memory.numa_stat", ABSENT),
    ("write-empty/memory.oom_control", ABSENT),
    ("write-empty/memory.pressure_level", ABSENT),
    ("write-empty/memory.shown_ram_in_bytes", ABSENT),
    ("write-empty/memory.soft_limit_in_bytes", ABSENT),
    ("write-empty/memory.stat", STAT),
    ("write-empty/memory.swappiness", ABSENT),
    ("write-empty/memory.use_hierarchy", ABSENT),
    ("limit-order/", LIMIT_ORDER),
    ("fd-write/", FD_WRITE),
    ("open/cgroup.clone_children", ABSENT),
    ("open/cgroup.event_control", ABSENT),
    ("open/cgroup.procs", ABSENT),
    ("open/memory.force_empty", MODES),
    ("open/memory.kmem.", ABSENT),
    ("open/memory.limit_in_bytes", UNLIMITED),
    ("open/memory.memsw.", ABSENT),
    ("open/memory.move_charge_at_immigrate", ABSENT),
    ("open/memory.numa_stat", ABSENT),
    ("open/memory.oom_control", ABSENT),
    ("open/memory.pressure_level", ABSENT),
    ("open/memory.shown_ram_in_bytes", ABSENT),
    ("open/memory.soft_limit_in_bytes", ABSENT),
    ("open/memory.stat", STAT),
    ("open/memory.swappiness", ABSENT),
    ("open/memory.usage_in_bytes", MODES),
    ("open/memory.use_hierarchy", ABSENT),
    ("event_control/", EVENTS),
    ("mkdir/", MKDIR),
    ("rmdir/recreate-starts-from-defaults", RECREATE),
    ("rename/", RENAME),
    ("meta/chmod/", META),
    ("meta/chmod/memory.stat", STAT),
    ("meta/chmod-000-still-usable-by-root", ABSENT),
    ("meta/chown/memory.stat", STAT),
    ("meta/utime/", META),
    ("meta/xattr/", META),
    ("meta/xattr/memory.stat", STAT),
    ("meta/truncate/", META),
    ("inherit/", NO_HIERARCHY),
    ("held-fd/", HELD_FD),
    ("fd-read/poll/", FUSE),
    ("root/statfs", FUSE),
    ("child/statfs", FUSE),
)
"""(probe id or prefix, reason); the longest prefix that matches a probe's id explains it."""


def reason_for(probe_id: str) -> str | None:
    """Why the RFC era answers ``probe_id`` differently from kernel 6.18, or None if unknown."""
    matches = [(prefix, reason) for prefix, reason in DIFFERENCES if probe_id.startswith(prefix)]
    return max(matches, key=lambda m: len(m[0]))[1] if matches else None
