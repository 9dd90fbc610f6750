"""Differential conformance probe for a cgroup v1 memory hierarchy (``fakecgfs conformance``).

A tool with a life of its own: it imports nothing from the rest of fakecgfs, and runs as well
against the kernel's /sys/fs/cgroup/memory as against a fakecgfs mount.

* tables.py: every probe, as families of cases (read this to see what is probed);
* probes_files.py, probes_tree.py: what each kind of probe does;
* files.py: the kernel's file catalogues and the inputs written to them;
* context.py: the guarded primitives (nothing outside the tool's own group is ever changed);
* answers.py: how answers are recorded; record.py and compare.py: record and diff; cli.py.
"""

from __future__ import annotations

from .answers import (
    PID_MAX_LIMIT,
    Steps,
    capture,
    err,
    errno_name,
    escape_bytes,
    input_label,
    is_err,
    kind_of,
    oct_mode,
    pid_input_is_safe,
    stat_dict,
    step_label,
    text,
    unescape_bytes,
)  # fmt: skip
from .catalogue import Family, Probe
from .cli import main
from .compare import (
    MISSING,
    Difference,
    compared_count,
    diff,
    diff_compare_with,
    summary_line,
)  # fmt: skip
from .context import CLOSED_FD, GROUP_PREFIX, Ctx, GuardError, is_extension, remove_tree
from .files import (
    ALL_FILES,
    BYTE_FILES,
    BYTE_INPUTS,
    CHILD_FILES,
    NUMBER_FILES,
    NUMBER_INPUTS,
    PID_INPUTS,
    READ_ONLY_FILES,
    RESET_FILES,
    RESET_INPUTS,
    ROOT_FILES,
    WMARK_FILES,
)  # fmt: skip
from .record import BASE_SETUP, TOOL_VERSION, UMASK, area_counts, build_catalogue, record

__all__ = [
    "ALL_FILES", "BASE_SETUP", "BYTE_FILES", "BYTE_INPUTS", "CHILD_FILES", "CLOSED_FD",
    "GROUP_PREFIX", "MISSING", "NUMBER_FILES", "NUMBER_INPUTS", "PID_INPUTS", "PID_MAX_LIMIT",
    "READ_ONLY_FILES", "RESET_FILES", "RESET_INPUTS", "ROOT_FILES", "TOOL_VERSION", "UMASK",
    "WMARK_FILES", "Ctx", "Difference", "Family", "GuardError", "Probe", "Steps", "area_counts",
    "build_catalogue", "capture", "compared_count", "diff", "diff_compare_with", "err",
    "errno_name", "escape_bytes", "input_label", "is_err", "is_extension", "kind_of", "main",
    "oct_mode", "pid_input_is_safe", "record", "remove_tree", "stat_dict", "step_label",
    "summary_line", "text", "unescape_bytes",
]  # fmt: skip
