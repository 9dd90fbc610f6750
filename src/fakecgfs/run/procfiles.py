"""The /proc files the command of ``fakecgfs run`` reads, as a kernel with the fake for its only
cgroup hierarchy, a v1 memory one, would write them.  Pure text in, text out.

* mounts, mountinfo: the real file's lines, without any cgroup or cgroup2 entry (the host's,
  detached or covered in the run's namespace) and with the fake's FUSE entry rewritten in place
  as the kernel shows a v1 memory hierarchy mounted the way systemd mounts one.  mountinfo keeps
  the fake's mount ID, parent ID, device number (what stat() of its files reports) and optional
  fields.
* cgroup: one line, ``1:memory:/path``.  No ``0::/path`` line (the kernel prints it once cgroup2
  has been mounted anywhere) and no ``name=systemd`` line: tools that find either look for the
  hierarchy in mountinfo and, not finding it, fail or choose the unified hierarchy; a host where
  memory is the only hierarchy ever mounted shows exactly this one line.
* cgroups: the real controllers in the real order, each other controller as not mounted on v1
  (hierarchy 0, as the kernel lists controllers bound to the unified hierarchy), and memory on
  hierarchy 1 with the fake's number of groups.
"""

from __future__ import annotations

MEMORY_HIERARCHY_ID = 1  # the first v1 hierarchy gets 1; 0 is the unified one
MOUNT_OPTIONS = "rw,nosuid,nodev,noexec,relatime"
SUPER_OPTIONS = "rw,memory"
CGROUP_FSTYPES = ("cgroup", "cgroup2")
FAKE_FSTYPE = "fuse.fakecgfs"


def escape(path: str) -> str:
    """A path as the kernel writes it in mounts and mountinfo (mangle(): octal escapes)."""
    return path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011") \
        .replace("\n", "\\012")  # fmt: skip


def present_mounts(real: str, mountpoint: str) -> str:
    """/proc/PID/mounts: ``real`` with the fake at ``mountpoint`` as a cgroup v1 memory mount."""
    lines = []
    escaped = escape(mountpoint)
    for line in real.splitlines(keepends=True):
        fields = line.split(" ")
        if len(fields) < 4 or fields[2] in CGROUP_FSTYPES:
            continue
        if fields[2] == FAKE_FSTYPE and fields[1] == escaped:
            line = f"cgroup {escaped} cgroup {MOUNT_OPTIONS},memory 0 0\n"
        lines.append(line)
    return "".join(lines)


def present_mountinfo(real: str, device: tuple[int, int]) -> str:
    """/proc/PID/mountinfo: ``real`` with the fake (the mount of ``device``, major and minor)
    as a cgroup v1 memory mount."""
    wanted = f"{device[0]}:{device[1]}"
    lines = []
    for line in real.splitlines(keepends=True):
        fields = line.rstrip("\n").split(" ")
        try:
            separator = fields.index("-", 6)
            fstype = fields[separator + 1]
        except (ValueError, IndexError):
            lines.append(line)
            continue
        if fstype in CGROUP_FSTYPES:
            continue
        if fstype == FAKE_FSTYPE and fields[2] == wanted:
            mount_id, parent, dev, _root, point = fields[:5]
            optional = fields[6:separator]
            line = " ".join([mount_id, parent, dev, "/", point, MOUNT_OPTIONS, *optional,
                             "-", "cgroup", "cgroup", SUPER_OPTIONS]) + "\n"  # fmt: skip
        lines.append(line)
    return "".join(lines)


def present_cgroup(group: str) -> str:
    """/proc/PID/cgroup of a process in ``group`` ("/" or "/a/b") of the fake."""
    return f"{MEMORY_HIERARCHY_ID}:memory:{group}\n"


def present_cgroups(real: str, memory_groups: int) -> str:
    """/proc/cgroups, with ``memory_groups`` groups in the fake (its root included)."""
    lines = []
    memory = f"memory\t{MEMORY_HIERARCHY_ID}\t{memory_groups}\t1\n"
    for line in real.splitlines(keepends=True):
        fields = line.split()
        if line.startswith("#") or len(fields) < 4:
            lines.append(line)
        elif fields[0] == "memory":
            lines.append(memory)
            memory = ""
        else:
            lines.append(f"{fields[0]}\t0\t{fields[2]}\t{fields[3]}\n")
    if memory:
        lines.append(memory)
    return "".join(lines)
