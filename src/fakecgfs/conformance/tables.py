"""The probe catalogue: every probe the tool runs, in the order it runs them, as tables.

Each ``Family`` names a kind of probe (a function of probes_files.py or probes_tree.py) and the
cases it runs on: one probe per row of its axis, or per combination of its axes' rows, with the
row labels filling the id's ``{}``.  A row is ``(label, value, ...)``; ``each(...)`` makes rows
whose values are their own labels.  To add a probe, add a row; to add a kind, add a function
and a family.  The order is the recording's order: append, do not reorder (recordings are
compared by id, but a reader diffs them as text).
"""

from __future__ import annotations

import os

from .catalogue import Family, each, octal
from .context import is_extension
from .files import (
    ALL_FILES,
    BYTE_FILES,
    BYTE_INPUTS,
    CHILD_FILES,
    NUMBER_FILES,
    NUMBER_INPUTS,
    OPEN_FLAGS,
    PID_INPUTS,
    READ_ONLY_FILES,
    RESET_FILES,
    RESET_INPUTS,
    ROOT_DETERMINISTIC_READS,
    WMARK_FILES,
    inputs,
)  # fmt: skip
from .probes_files import (
    child_dir_stat,
    child_f_type,
    child_listing,
    child_listing_with_subgroup,
    child_nlink,
    child_read,
    child_stat,
    child_statvfs,
    event_control,
    fd_write_sequence,
    force_empty,
    limit_order,
    lseek_sequence,
    memsw_after_limit,
    open_close,
    open_missing,
    pid_write,
    poll_once,
    pread_then_read,
    pressure_event,
    rdwr_read_write_read,
    rdwr_write_then_read,
    read_directory,
    read_in_chunks,
    read_rdwr,
    read_while_changed,
    register_twice,
    reset_write,
    rmdir_signals_eventfds,
    root_dir,
    root_f_type,
    root_listing,
    root_nlink,
    root_other_dirs,
    root_read,
    root_stat,
    root_statvfs,
    write_after_chmod_000,
    write_empty,
    write_then_read,
)  # fmt: skip
from .probes_tree import (
    access,
    below_usage,
    chmod,
    chmod_000_still_usable,
    chown,
    chown_then_mkdir,
    create,
    force_empty_with_child,
    fsync,
    held_across_rmdir,
    inherit_defaults,
    inherit_hierarchical_memsw,
    inherit_limits_and_hierarchical_stat,
    inherit_one,
    link_file,
    link_group,
    mkdir_at,
    mkdir_mode,
    mkdir_named,
    mkdir_nested,
    mkdir_twice,
    mkfifo,
    mknod_fifo,
    mknod_reg,
    open_creat,
    open_creat_excl,
    open_rdonly_creat,
    rename,
    rmdir_after,
    rmdir_recreate,
    symlink,
    symlink_onto_file,
    truncate,
    unlink_group,
    unlink_missing,
    unlink_stat,
    unlink_tasks,
    use_hierarchy_with_child,
    utime,
    xattr,
    xattr_name,
)  # fmt: skip

LIM, SOFT = "memory.limit_in_bytes", "memory.soft_limit_in_bytes"
MEMSW = "memory.memsw.limit_in_bytes"
USAGE, PRESSURE, OOM = "memory.usage_in_bytes", "memory.pressure_level", "memory.oom_control"
SET, CUR, END, DATA, HOLE = os.SEEK_SET, os.SEEK_CUR, os.SEEK_END, os.SEEK_DATA, os.SEEK_HOLE
W, RDONLY, RDWR, DIRECTORY = os.O_WRONLY, os.O_RDONLY, os.O_RDWR, os.O_RDONLY | os.O_DIRECTORY
WMARK_ONLY = is_extension
"""fakecgfs_only for a probe of one of fakecgfs's own files (its kernel answer is ENOENT)."""


def extension_first(name: str, *_: object) -> bool:
    return is_extension(name)


def extension_group_name(name: bytes) -> bool:
    """A group named like a fakecgfs file cannot exist there: EEXIST, as for tasks."""
    return is_extension(os.fsdecode(name))


def machine_dependent_root_read(name: str) -> bool:
    """The root's statistics, PID lists and sysctl-driven files differ between machines."""
    return name not in ROOT_DETERMINISTIC_READS


# -- cases --------------------------------------------------------------------------------------

#: lseek then read on one descriptor: ("seek", offset, whence) and ("read", size, 0)
LSEEK_CASES = (
    ("set-5", (("seek", 5, SET), ("read", 100, 0))),
    ("set-0-after-eof", (("read", 100, 0), ("read", 100, 0), ("seek", 0, SET), ("read", 100, 0))),
    ("set-beyond", (("seek", 1000, SET), ("read", 100, 0))),
    ("set-negative", (("seek", -1, SET), ("read", 100, 0))),
    ("cur-0", (("seek", 0, CUR), ("read", 4, 0), ("seek", 0, CUR))),
    ("cur-plus2", (("read", 4, 0), ("seek", 2, CUR), ("read", 100, 0))),
    ("cur-minus2", (("read", 4, 0), ("seek", -2, CUR), ("read", 100, 0))),
    ("cur-negative", (("read", 4, 0), ("seek", -10, CUR), ("read", 100, 0))),
    ("end-0", (("seek", 0, END), ("read", 100, 0))),
    ("end-plus5", (("seek", 5, END), ("read", 100, 0))),
    ("end-minus3", (("seek", -3, END), ("read", 100, 0))),
    ("end-after-read", (("read", 100, 0), ("seek", 0, END), ("read", 100, 0))),
    ("data-0", (("seek", 0, DATA), ("read", 100, 0))),
    ("hole-0", (("seek", 0, HOLE), ("read", 100, 0))),
    ("data-after-read", (("read", 4, 0), ("seek", 2, DATA))),
)  # fmt: skip

POLL_CASES = (
    (LIM, LIM, RDONLY), ("memory.stat", "memory.stat", RDONLY), (OOM, OOM, RDONLY),
    (USAGE, USAGE, RDONLY), (PRESSURE, PRESSURE, RDONLY),
    ("cgroup.event_control", "cgroup.event_control", W), ("tasks", "tasks", RDONLY),
)  # fmt: skip

#: writes in order to one group, then its three limits read back
LIMIT_ORDER_CASES = (
    ("memsw-on-fresh", ((MEMSW, b"1G"),)),
    ("limit-then-memsw-equal", ((LIM, b"8192"), (MEMSW, b"8192"))),
    ("limit-then-memsw-lower", ((LIM, b"8192"), (MEMSW, b"4096"))),
    ("limit-then-memsw-higher", ((LIM, b"8192"), (MEMSW, b"1G"))),
    ("memsw-rounding-down-equal", ((LIM, b"8192"), (MEMSW, b"12287"))),
    ("memsw-rounding-below", ((LIM, b"8192"), (MEMSW, b"8191"))),
    ("limit-rounding-equal", ((LIM, b"8191"), (MEMSW, b"4097"))),
    ("raise-limit-above-memsw", ((LIM, b"8192"), (MEMSW, b"8192"), (LIM, b"16384"))),
    ("raise-both-memsw-first",
     ((LIM, b"8192"), (MEMSW, b"8192"), (MEMSW, b"16384"), (LIM, b"16384"))),
    ("raise-both-limit-first",
     ((LIM, b"8192"), (MEMSW, b"8192"), (LIM, b"16384"), (MEMSW, b"16384"))),
    ("lower-limit-below-memsw", ((LIM, b"16384"), (MEMSW, b"16384"), (LIM, b"8192"))),
    ("limit-unlimited-with-memsw-set", ((LIM, b"8192"), (MEMSW, b"8192"), (LIM, b"-1"))),
    ("memsw-unlimited-then-limit-unlimited",
     ((LIM, b"8192"), (MEMSW, b"8192"), (MEMSW, b"-1"), (LIM, b"-1"))),
    ("memsw-then-limit-0", ((LIM, b"8192"), (MEMSW, b"8192"), (LIM, b"0"))),
    ("memsw-0-after-limit-0", ((LIM, b"0"), (MEMSW, b"0"))),
    ("limit-16E-wraps-with-memsw", ((LIM, b"8192"), (MEMSW, b"8192"), (LIM, b"16E"))),
    ("memsw-huge-then-limit-huge",
     ((LIM, b"8192"), (MEMSW, b"8192"), (MEMSW, b"9223372036854775807"),
      (LIM, b"9223372036854775807"))),
    ("soft-above-limit", ((LIM, b"8192"), (SOFT, b"1G"))),
    ("soft-then-limit-below", ((SOFT, b"1G"), (LIM, b"8192"))),
    ("limit-then-unlimited", ((LIM, b"8192"), (LIM, b"-1"))),
    ("limit-twice", ((LIM, b"8192"), (LIM, b"12288"))),
    ("bad-write-keeps-value", ((LIM, b"8192"), (LIM, b"abc"))),
    ("empty-write-keeps-value", ((LIM, b"8192"), (LIM, b""))),
    ("whitespace-write-sets-0", ((LIM, b"8192"), (LIM, b" "))),
    ("kmem-after-limit", ((LIM, b"8192"), ("memory.kmem.limit_in_bytes", b"4096"))),
    ("tcp-above-limit", ((LIM, b"8192"), ("memory.kmem.tcp.limit_in_bytes", b"1G"))),
)  # fmt: skip

#: (label, the steps of descriptor A and writer B on one limit file); see read_while_changed
READ_WHILE_CHANGED_CASES = (
    ("snapshot-after-partial-read",
     (("A read(3)", "read", 3), ("B write 8192", "write", b"8192"), ("A read(100)", "read", 100),
      ("A read(100) again", "read", 100), ("A lseek(0)", "lseek", 0),
      ("A read(100) after lseek", "read", 100))),
    ("open-then-change-then-read",
     (("B write 8192", "write", b"8192"), ("A read(100)", "read", 100))),
    ("pread-after-change",
     (("A pread(3,0)", "pread", 3, 0), ("B write 8192", "write", b"8192"),
      ("A pread(100,0)", "pread", 100, 0), ("A pread(100,3)", "pread", 100, 3))),
)  # fmt: skip

#: (label, file, open flags, operations on the one descriptor); see fd_write_sequence
FD_WRITE_CASES = (
    ("two-writes-40-96", LIM, W, (("write", b"40"), ("write", b"96"))),
    ("two-writes-8192-12288", LIM, W,
     (("write", b"8192"), ("readback", None), ("write", b"12288"))),
    ("writev-40-96", LIM, W, (("writev", [b"40", b"96"]),)),
    ("writev-4096-nl", LIM, W, (("writev", [b"4096", b"\n"]),)),
    ("writev-1-2-2-88", LIM, W, (("writev", [b"1", b"2", b"2", b"88"]),)),
    ("writev-8192-empty", LIM, W, (("writev", [b"8192", b""]),)),
    ("writev-bad-good", LIM, W, (("writev", [b"abc", b"8192"]),)),
    ("pwrite-at-10", LIM, W, (("pwrite", (b"8192", 10)),)),
    ("pwrite-at-1M", LIM, W, (("pwrite", (b"8192", 1 << 20)),)),
    ("lseek-then-write", LIM, W, (("lseek", 100), ("write", b"8192"))),
    ("bad-then-good", LIM, W, (("write", b"abc"), ("write", b"8192"))),
    ("good-then-bad", LIM, W, (("write", b"8192"), ("write", b"abc"))),
    ("exact-4096-bytes", LIM, W, (("write", b" " * 4092 + b"8192"),)),
    ("4097-bytes", LIM, W, (("write", b" " * 4093 + b"8192"),)),
    ("8192-bytes", LIM, W, (("write", b" " * 8188 + b"8192"),)),
    ("4097-then-good", LIM, W, (("write", b" " * 4093 + b"8192"), ("write", b"12288"))),
    ("zero-byte", LIM, W, (("write", b""),)),
    ("zero-byte-after-value", LIM, W, (("write", b"8192"), ("write", b""))),
    ("nul-inside", LIM, W, (("write", b"8192\x00junk"),)),
    ("nul-first", LIM, W, (("write", b"\x008192"),)),
    ("append-mode", LIM, W | os.O_APPEND, (("write", b"8192"), ("write", b"12288"))),
    ("trunc-mode", LIM, W | os.O_TRUNC, (("write", b"8192"),)),
    ("rdwr-write-read", LIM, RDWR, (("write", b"8192"), ("read", None))),
    ("rdonly-write", LIM, RDONLY, (("write", b"8192"),)),
    ("swappiness-two-writes", "memory.swappiness", W, (("write", b"10"), ("write", b"20"))),
    ("swappiness-writev", "memory.swappiness", W, (("writev", [b"1", b"0"]),)),
    ("oom_control-writev", OOM, W, (("writev", [b"1", b"\n"]),)),
    ("oom_control-4097", OOM, W, (("write", b"1" + b"\n" * 4096),)),
    ("swappiness-4096", "memory.swappiness", W, (("write", b"10" + b"\n" + b"\x00" * 4093),)),
    ("failcnt-4097", "memory.failcnt", W, (("write", b"0" * 4097),)),
    ("event_control-4097", "cgroup.event_control", W, (("write", b"x" * 4097),)),
    ("soft-two-writes", SOFT, W, (("write", b"8192"), ("write", b"1M"))),
)  # fmt: skip

#: (label, line written to cgroup.event_control, control file, event fd kind, control fd kind)
EVENT_CASES = (
    ("usage/4096", "{efd} {cfd} 4096", USAGE, "eventfd", "file"),
    ("usage/4096-newline", "{efd} {cfd} 4096\n", USAGE, "eventfd", "file"),
    ("usage/0", "{efd} {cfd} 0", USAGE, "eventfd", "file"),
    ("usage/1M", "{efd} {cfd} 1M", USAGE, "eventfd", "file"),
    ("usage/4097", "{efd} {cfd} 4097", USAGE, "eventfd", "file"),
    ("usage/minus1", "{efd} {cfd} -1", USAGE, "eventfd", "file"),
    ("usage/abc", "{efd} {cfd} abc", USAGE, "eventfd", "file"),
    ("usage/4096abc", "{efd} {cfd} 4096abc", USAGE, "eventfd", "file"),
    ("usage/4096-space-extra", "{efd} {cfd} 4096 extra", USAGE, "eventfd", "file"),
    ("usage/no-args", "{efd} {cfd}", USAGE, "eventfd", "file"),
    ("usage/no-args-newline", "{efd} {cfd}\n", USAGE, "eventfd", "file"),
    ("usage/trailing-space", "{efd} {cfd} ", USAGE, "eventfd", "file"),
    ("usage/tab-separator", "{efd}\t{cfd} 4096", USAGE, "eventfd", "file"),
    ("usage/two-spaces-before-cfd", "{efd}  {cfd} 4096", USAGE, "eventfd", "file"),
    ("usage/two-spaces-before-args", "{efd} {cfd}  4096", USAGE, "eventfd", "file"),
    ("usage/leading-space", " {efd} {cfd} 4096", USAGE, "eventfd", "file"),
    ("usage/only-efd", "{efd}", USAGE, "eventfd", "file"),
    ("usage/only-efd-space", "{efd} ", USAGE, "eventfd", "file"),
    ("usage/efd-junk", "abc {cfd} 4096", USAGE, "eventfd", "file"),
    ("usage/efd-negative", "-1 {cfd} 4096", USAGE, "eventfd", "file"),
    ("usage/efd-hex", "0x{efd} {cfd} 4096", USAGE, "eventfd", "file"),
    ("usage/cfd-junk", "{efd} abc 4096", USAGE, "eventfd", "file"),
    ("usage/newline", "\n", USAGE, "eventfd", "file"),
    ("usage/closed-efd", "{efd} {cfd} 4096", USAGE, "closed", "file"),
    ("usage/closed-cfd", "{efd} {cfd} 4096", USAGE, "eventfd", "closed"),
    ("usage/efd-is-pipe", "{efd} {cfd} 4096", USAGE, "pipe", "file"),
    ("usage/efd-is-cgroup-file", "{efd} {cfd} 4096", USAGE, "file", "file"),
    ("usage/cfd-is-directory", "{efd} {cfd} 4096", USAGE, "eventfd", "dir"),
    ("usage/cfd-other-group", "{efd} {cfd} 4096", USAGE, "eventfd", "other-group"),
    ("memsw.usage/4096", "{efd} {cfd} 4096", "memory.memsw.usage_in_bytes", "eventfd", "file"),
    ("memsw.usage/no-args", "{efd} {cfd}", "memory.memsw.usage_in_bytes", "eventfd", "file"),
    ("kmem.usage/4096", "{efd} {cfd} 4096", "memory.kmem.usage_in_bytes", "eventfd", "file"),
    ("kmem.tcp.usage/4096", "{efd} {cfd} 4096", "memory.kmem.tcp.usage_in_bytes", "eventfd",
     "file"),
    ("limit_in_bytes/4096", "{efd} {cfd} 4096", LIM, "eventfd", "file"),
    ("stat/4096", "{efd} {cfd} 4096", "memory.stat", "eventfd", "file"),
    ("max_usage/4096", "{efd} {cfd} 4096", "memory.max_usage_in_bytes", "eventfd", "file"),
    ("swappiness/4096", "{efd} {cfd} 4096", "memory.swappiness", "eventfd", "file"),
    ("tasks/4096", "{efd} {cfd} 4096", "tasks", "eventfd", "file"),
    ("oom_control/no-args", "{efd} {cfd}", OOM, "eventfd", "file"),
    ("oom_control/args", "{efd} {cfd} foo", OOM, "eventfd", "file"),
    ("oom_control/cfd-wronly", "{efd} {cfd}", OOM, "eventfd", "wronly"),
    ("oom_control/other-group", "{efd} {cfd}", OOM, "eventfd", "other-group"),
)  # fmt: skip

#: the argument after "{efd} {cfd} " of a memory.pressure_level registration
PRESSURE_ARGUMENTS = inputs(
    b"low", b"medium", b"critical", b"low,hierarchy", b"medium,local", b"critical,default",
    b"low,default", b"critical,hierarchy", b"LOW", b"Low", b"low,HIERARCHY", b"low,",
    b",hierarchy", b"hierarchy", b"foo", b"low,hierarchy,local", b"low hierarchy", b"low\n",
    b"low,local\n", b"", b" low",
)  # fmt: skip

MKDIR_NAMES = (
    ("simple", b"a"), ("control-file-tasks", b"tasks"),
    ("control-file-memory.stat", b"memory.stat"),
    ("control-file-limit", b"memory.limit_in_bytes"), ("control-file-procs", b"cgroup.procs"),
    ("dot", b"."), ("dotdot", b".."), ("newline", b"a\nb"), ("trailing-newline", b"a\n"),
    ("carriage-return", b"a\rb"), ("tab", b"a\tb"), ("space", b"a b"),
    ("memory.foo", b"memory.foo"), ("cgroup.foo", b"cgroup.foo"), ("hidden", b".hidden"),
    ("non-utf8", b"\xff\xfe"), ("utf8", "é".encode()), ("colon", b"a:b"),
    ("release_agent", b"release_agent"), ("sane_behavior", b"cgroup.sane_behavior"),
    ("wmark-name", b"memory.high_wmark_in_bytes"),
    ("len255", b"n" * 255), ("len256", b"n" * 256), ("len1000", b"n" * 1000),
    ("len5000", b"n" * 5000),
)  # fmt: skip

MKDIR_MODES = (0o700, 0o1777, 0o777, 0o0, 0o755, 0o2755, 0o4755, 0o555)

#: (label, groups made first, the rmdir target)
RMDIR_CASES = (
    ("empty", ("x",), "x"),
    ("with-child", ("x", "x/y"), "x"),
    ("control-file", (), "memory.stat"),
    ("control-file-tasks", (), "tasks"),
    ("x-dot", ("x",), "x/."),
    ("x-dotdot", ("x",), "x/.."),
    ("x-dotdot-with-sibling", ("x", "y"), "x/.."),
    ("missing", (), "missing"),
    ("under-control-file", (), "memory.stat/x"),
    ("trailing-slash", ("x",), "x/"),
    ("grandchild", ("x", "x/y"), "x/y"),
)  # fmt: skip

NOREPLACE, EXCHANGE = 1, 2  # renameat2's RENAME_NOREPLACE, RENAME_EXCHANGE

#: (label, groups made first, source, target, renameat2 flags or None for rename(2))
RENAME_CASES = (
    ("within-parent", ("a", "a/c"), "a", "z", None),
    ("same-name", ("a",), "a", "a", None),
    ("across-parents", ("a", "b"), "a", "b/a", None),
    ("to-grandparent", ("a", "b", "b/c"), "b/c", "c", None),
    ("onto-existing-group", ("a", "b"), "a", "b", None),
    ("onto-existing-group-with-child", ("a", "b", "b/c"), "a", "b", None),
    ("onto-control-file", ("a",), "a", "memory.stat", None),
    ("onto-control-file-tasks", ("a",), "a", "tasks", None),
    ("control-file-to-new-name", (), "memory.stat", "foo", None),
    ("control-file-onto-control-file", (), "tasks", "memory.stat", None),
    ("control-file-onto-group", ("a",), "memory.stat", "a", None),
    ("into-own-child", ("a", "a/c"), "a", "a/c/x", None),
    ("missing-source", (), "missing", "z", None),
    ("to-newline-name", ("a",), "a", "a\nb", None),
    ("to-long-name", ("a",), "a", "n" * 300, None),
    ("to-dot", ("a",), "a", ".", None),
    ("noreplace-new-name", ("a",), "a", "z", NOREPLACE),
    ("noreplace-existing", ("a", "b"), "a", "b", NOREPLACE),
    ("exchange", ("a", "b"), "a", "b", EXCHANGE),
    ("exchange-missing-target", ("a",), "a", "z", EXCHANGE),
    ("flags-0", ("a",), "a", "z", 0),
)  # fmt: skip

#: (label, what is done in a fresh group, the syscall named in an error, a subgroup "sub" first)
CREATE_CASES = (
    ("open-creat-new", open_creat, "open", False),
    ("open-creat-excl-new", open_creat_excl, "open", False),
    ("open-rdonly-creat-new", open_rdonly_creat, "open", False),
    ("mknod-reg", mknod_reg, "mknod", False),
    ("mknod-fifo", mknod_fifo, "mknod", False),
    ("mkfifo", mkfifo, "mknod", False),
    ("symlink", symlink, "symlink", False),
    ("symlink-onto-control-file", symlink_onto_file, "symlink", False),
    ("link-control-file", link_file, "link", False),
    ("link-group", link_group, "link", True),
    ("unlink-control-file", unlink_tasks, "unlink", False),
    ("unlink-memory.stat", unlink_stat, "unlink", False),
    ("unlink-group", unlink_group, "unlink", True),
    ("unlink-missing", unlink_missing, "unlink", False),
)  # fmt: skip

CHMOD_CASES = (
    ("memory.limit_in_bytes/0600", LIM, 0o600), ("memory.limit_in_bytes/0000", LIM, 0o000),
    ("memory.limit_in_bytes/0777", LIM, 0o777), ("memory.limit_in_bytes/4755", LIM, 0o4755),
    ("memory.limit_in_bytes/1644", LIM, 0o1644), ("memory.stat/0644", "memory.stat", 0o644),
    ("memory.force_empty/0644", "memory.force_empty", 0o644), ("tasks/0666", "tasks", 0o666),
    ("./0700", ".", 0o700), ("./1777", ".", 0o1777), ("./0000", ".", 0o000),
)  # fmt: skip

FSYNC_CASES = (
    ("memory.limit_in_bytes/rdonly", LIM, RDONLY),
    ("memory.limit_in_bytes/wronly", LIM, W),
    ("memory.stat/rdonly", "memory.stat", RDONLY),
    ("./directory", ".", DIRECTORY),
)  # fmt: skip

#: (label, file opened, open flags, bytes read before rmdir, mkdir the group again)
HELD_FD_CASES = (
    ("memory.limit_in_bytes/rdwr", LIM, RDWR, 0, False),
    ("memory.limit_in_bytes/wronly", LIM, W, 0, False),
    ("memory.limit_in_bytes/rdonly-partial", LIM, RDONLY, 3, False),
    ("memory.stat/rdonly", "memory.stat", RDONLY, 0, False),
    ("memory.stat/rdonly-partial", "memory.stat", RDONLY, 10, False),
    ("memory.oom_control/rdonly", OOM, RDONLY, 0, False),
    ("tasks/rdonly", "tasks", RDONLY, 0, False),
    ("cgroup.event_control/wronly", "cgroup.event_control", W, 0, False),
    ("memory.limit_in_bytes/rdwr-recreated", LIM, RDWR, 3, True),
    ("directory", ".", DIRECTORY, 0, False),
)  # fmt: skip

#: (label, file, written to the parent before mkdir, then after)
INHERIT_CASES = (
    ("memory.swappiness", "memory.swappiness", b"30", b"90"),
    ("memory.oom_control", OOM, b"1", b"0"),
    ("cgroup.clone_children", "cgroup.clone_children", b"1", b"0"),
    ("notify_on_release", "notify_on_release", b"1", b"0"),
    ("memory.limit_in_bytes", LIM, b"1G", b"512M"),
    ("memory.soft_limit_in_bytes", SOFT, b"512M", b"256M"),
    ("memory.kmem.tcp.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes", b"256M", b"128M"),
    ("memory.kmem.limit_in_bytes", "memory.kmem.limit_in_bytes", b"256M", b"128M"),
    ("memory.shown_ram_in_bytes", "memory.shown_ram_in_bytes", b"1G", b"512M"),
    ("memory.move_charge_at_immigrate", "memory.move_charge_at_immigrate", b"0", b"0"),
)  # fmt: skip

#: a limit under the usage a child's kernel memory gives its parent
BELOW_USAGE_CASES = (
    ("memory.limit_in_bytes/0", LIM, b"0"),
    ("memory.limit_in_bytes/4096", LIM, b"4096"),
    ("memory.soft_limit_in_bytes/0", SOFT, b"0"),
    ("memory.kmem.tcp.limit_in_bytes/0", "memory.kmem.tcp.limit_in_bytes", b"0"),
    ("memory.kmem.limit_in_bytes/0", "memory.kmem.limit_in_bytes", b"0"),
)  # fmt: skip


# -- the catalogue, in recording order ----------------------------------------------------------

CATALOGUE = (
    # the root: only listed, stat-ed and read
    Family("root/listing", root_listing),
    Family("root/stat/.", root_dir),
    Family("root/nlink", root_nlink, machine_dependent=True),
    Family("root/listing-dirs", root_other_dirs, machine_dependent=True),
    Family("root/stat/{}", root_stat, each(ALL_FILES)),
    Family("root/read/{}", root_read, each(ALL_FILES),
           machine_dependent=machine_dependent_root_read),
    Family("root/statfs/f_type", root_f_type),
    Family("root/statfs/statvfs", root_statvfs),
    # a fresh child: listing, stat, reads
    Family("child/listing", child_listing),
    Family("child/listing-with-subgroup", child_listing_with_subgroup),
    Family("child/stat/.", child_dir_stat),
    Family("child/nlink", child_nlink),
    Family("child/stat/{}", child_stat, each(ALL_FILES + WMARK_FILES), fakecgfs_only=WMARK_ONLY),
    # f_type cannot match under FUSE (0x65735546); it is kept apart so the rest still compares
    Family("child/statfs/f_type", child_f_type),
    Family("child/statfs/statvfs", child_statvfs),
    Family("read/{}", child_read, each(ALL_FILES + WMARK_FILES), fakecgfs_only=WMARK_ONLY),
    Family("read-rdwr/{}", read_rdwr, each((LIM, "memory.stat", OOM, "tasks", "memory.force_empty",
                                            "cgroup.event_control"))),
    # reading through a descriptor
    Family("fd-read/read3/{}", read_in_chunks, each((LIM, OOM, "memory.stat", "memory.numa_stat",
                                                     "memory.swappiness", "tasks",
                                                     "memory.kmem.slabinfo")), args=(3,)),
    Family("fd-read/read1/{}", read_in_chunks, each((LIM, OOM)), args=(1,)),
    Family("fd-read/pread/{}/{}", pread_then_read, each((LIM, OOM, "memory.stat")),
           each((0, 1, 5, 19, 20, 21, 30, 4096, 1 << 20))),
    Family("fd-read/lseek/{}/{}", lseek_sequence, each((LIM, "memory.stat")), LSEEK_CASES),
    Family("fd-read/{}", read_while_changed, READ_WHILE_CHANGED_CASES),
    Family("fd-read/rdwr-write-then-read/{}", rdwr_write_then_read,
           ((LIM, LIM, b"8192"), ("memory.swappiness", "memory.swappiness", b"10"))),
    Family("fd-read/rdwr-read-write-read", rdwr_read_write_read),
    Family("fd-read/read-directory", read_directory),
    Family("fd-read/poll/{}", poll_once, POLL_CASES),
    # one write, then a read
    Family("write/{}/{}", write_then_read, each(BYTE_FILES), BYTE_INPUTS),
    Family("write/{}/{}", write_then_read, each(WMARK_FILES), BYTE_INPUTS, fakecgfs_only=True,
           compare_with="write/memory.limit_in_bytes/{1}"),
    Family("write/{}/{}", write_then_read, each(NUMBER_FILES), NUMBER_INPUTS),
    Family("write/{}/{}", reset_write, each(RESET_FILES), RESET_INPUTS),
    Family("write/memory.force_empty/{}", force_empty, RESET_INPUTS),
    Family("write/{}/{}", pid_write, each(("tasks", "cgroup.procs")), PID_INPUTS),
    Family("write-memsw-after-limit0/memory.memsw.limit_in_bytes/{}", memsw_after_limit,
           BYTE_INPUTS, args=(b"0",)),
    Family("write-memsw-after-limit8k/memory.memsw.limit_in_bytes/{}", memsw_after_limit,
           BYTE_INPUTS, args=(b"8192",)),
    Family("write-readonly/{}/{}", write_then_read, each(READ_ONLY_FILES), inputs(b"0", b"4096\n")),
    Family("write-empty/{}", write_empty, each(CHILD_FILES)),
    Family("limit-order/{}", limit_order, LIMIT_ORDER_CASES),
    # writes on one descriptor
    Family("fd-write/{}", fd_write_sequence, FD_WRITE_CASES),
    Family("fd-write/after-chmod-000", write_after_chmod_000),
    # open flags
    Family("open/{}/{}", open_close, each((".", *CHILD_FILES, *WMARK_FILES)), OPEN_FLAGS,
           fakecgfs_only=extension_first),
    Family("open/(missing)/{}", open_missing, OPEN_FLAGS),
    # cgroup.event_control
    Family("event_control/{}", event_control, EVENT_CASES),
    Family("event_control/pressure_level/{}", pressure_event, PRESSURE_ARGUMENTS),
    Family("event_control/pressure_level/other-group", event_control,
           args=("{efd} {cfd} low", PRESSURE, "eventfd", "other-group")),
    Family("event_control/rmdir-signals-eventfds", rmdir_signals_eventfds),
    Family("event_control/register-twice", register_twice),
    # directories
    Family("mkdir/name/{}", mkdir_named, MKDIR_NAMES, fakecgfs_only=extension_group_name),
    Family("mkdir/existing", mkdir_twice),
    Family("mkdir/mode/{}", mkdir_mode, each(MKDIR_MODES, label=octal)),
    Family("mkdir/{}", mkdir_at, (("in-missing-parent", "missing/a"),
                                  ("under-control-file", "memory.stat/a"))),
    Family("mkdir/nested-8", mkdir_nested, args=(8,)),
    Family("rmdir/{}", rmdir_after, RMDIR_CASES),
    Family("rmdir/recreate-starts-from-defaults", rmdir_recreate),
    Family("rename/{}", rename, RENAME_CASES),
    Family("create/{}", create, CREATE_CASES),
    # metadata
    Family("meta/chmod/{}", chmod, CHMOD_CASES),
    Family("meta/chmod-000-still-usable-by-root", chmod_000_still_usable),
    Family("meta/access/{}", access,
           each((".", LIM, "memory.stat", "memory.force_empty", "tasks"))),
    Family("meta/chown/{}", chown, each((".", LIM, "memory.stat", "tasks"))),
    Family("meta/chown-then-mkdir", chown_then_mkdir),
    Family("meta/utime/{}", utime, each((".", LIM, "memory.stat"))),
    Family("meta/xattr/{}/{}", xattr, each((".", LIM, "memory.stat")),
           each(("user", "trusted", "security"))),
    Family("meta/xattr-name/{}", xattr_name,
           inputs(b"foo.bar", b"system.posix_acl_access", b"user.")),
    Family("meta/truncate/{}/{}", truncate,
           each(("path", "fd-rdonly", "fd-wronly", "fd-rdwr", "dir")), each((0, 100))),
    Family("meta/fsync/{}", fsync, FSYNC_CASES),
    # descriptors held across rmdir
    Family("held-fd/{}", held_across_rmdir, HELD_FD_CASES),
    # inheritance and the hierarchy
    Family("inherit/defaults", inherit_defaults),
    Family("inherit/{}", inherit_one, INHERIT_CASES),
    Family("inherit/limits-and-hierarchical-stat", inherit_limits_and_hierarchical_stat),
    Family("inherit/hierarchical-memsw", inherit_hierarchical_memsw),
    Family("inherit/use_hierarchy-with-child", use_hierarchy_with_child),
    Family("inherit/below-usage/{}", below_usage, BELOW_USAGE_CASES),
    Family("inherit/force_empty-with-child", force_empty_with_child),
)  # fmt: skip
