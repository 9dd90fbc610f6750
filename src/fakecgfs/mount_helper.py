"""``mount.fakecgfs``: the helper mount(8) runs for ``mount -t fuse.fakecgfs`` and fstab lines.

mount(8) looks for ``/sbin/mount.TYPE`` (for ``fuse.fakecgfs``: ``mount.fuse.fakecgfs``, then
``mount.fuse``) and runs it as ``mount.TYPE SOURCE DIR [-sfnv] [-o OPTIONS] [-t TYPE]``, with
the fstab options minus those only mount(8) reads (``noauto``, ``defaults``, ``user``...) and
plus the generic ones it adds (``rw``, ``nosuid``...).  ``fakecgfs install-mount-helper``
places links to this program there.  SOURCE is free text (``fakecgfs`` by convention).

    mount -t fuse.fakecgfs fakecgfs /sys/fs/cgroup/memory -o swap=64M,strict
    fakecgfs  /sys/fs/cgroup/memory  fuse.fakecgfs  swap=64M,reclaim_rate=4M,noauto  0 0
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass

from .mount_options import BY_OPTION

IGNORED_OPTIONS = frozenset({
    # Generic options mount(8) passes on or fstab lines carry; a FUSE mount is always nosuid
    # and nodev, and the others concern files fakecgfs does not have or when to mount.
    "rw", "defaults", "auto", "noauto", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
    "async", "atime", "noatime", "relatime", "strictatime", "nodiratime", "nofail", "_netdev",
    "user", "users", "nouser", "owner", "group", "default_permissions",
})  # fmt: skip
IGNORED_PREFIXES = ("x-", "comment=")  # userspace annotations (systemd's x-systemd.*)

MOUNT_FAILURE = 32  # mount(8)'s exit status for "mount failure"
USAGE = 1  # mount(8)'s "incorrect invocation or permissions"
HELPER_NAMES = ("mount.fakecgfs", "mount.fuse.fakecgfs")  # for -t fakecgfs and -t fuse.fakecgfs
HELPER_DIR = "/sbin"  # where mount(8) looks for helpers (also /sbin/fs.d and /sbin/fs)


class UsageError(Exception):
    pass


def options_to_flags(options: str, *, sloppy: bool = False) -> list[str]:
    """``swap=64M,strict`` -> ``["--swap", "64M", "--strict"]``; UsageError for an unknown or
    malformed option (with ``sloppy``, mount -s, unknown ones are ignored)."""
    flags: list[str] = []
    for option in filter(None, options.split(",")):
        name, has_value, value = option.partition("=")
        if option in IGNORED_OPTIONS or option.startswith(IGNORED_PREFIXES):
            continue
        if option == "ro":
            raise UsageError("ro: a fakecgfs mount is read-write, as cgroupfs is")
        known = BY_OPTION.get(name)
        if known is None:
            if sloppy:
                continue
            raise UsageError(f"unknown option {option!r} (known: {', '.join(BY_OPTION)})")
        if known.switch == bool(has_value) or (has_value and not value):
            form = name if known.switch else f"{name}=VALUE"
            raise UsageError(f"{option!r}: write it as {form}")
        flags += [known.flag] if known.switch else [known.flag, value]
    return flags


@dataclass(frozen=True)
class Invocation:
    mountpoint: str
    flags: list[str]  # for `fakecgfs mount`
    fake: bool = False  # -f: do everything but mount
    verbose: bool = False  # -v


def parse_argv(argv: list[str]) -> Invocation:
    """mount(8)'s helper convention: SOURCE DIR [-sfnv] [-o OPTIONS] [-t TYPE] (-n, no mtab
    to write, means nothing here)."""
    positional: list[str] = []
    options, sloppy, fake, verbose = [], False, False, False
    args = iter(argv)
    for arg in args:
        if arg in ("-o", "-t"):
            value = next(args, None)
            if value is None:
                raise UsageError(f"{arg} needs a value")
            if arg == "-o":
                options.append(value)
        elif arg.startswith("-o") and len(arg) > 2:
            options.append(arg[2:])
        elif arg.startswith("-") and len(arg) > 1:
            for letter in arg[1:]:
                if letter not in "sfnvh":
                    raise UsageError(f"unknown flag -{letter}")
                if letter == "h":
                    raise UsageError("")
                sloppy |= letter == "s"
                fake |= letter == "f"
                verbose |= letter == "v"
        else:
            positional.append(arg)
    if len(positional) != 2:
        raise UsageError("give SOURCE and DIR")
    flags = [f for o in options for f in options_to_flags(o, sloppy=sloppy)]
    return Invocation(positional[1], flags, fake, verbose)


def helper_program() -> str:
    """The installed ``mount.fakecgfs`` (beside this interpreter, or on the PATH)."""
    beside = os.path.join(os.path.dirname(sys.executable), "mount.fakecgfs")
    return beside if os.path.exists(beside) else (shutil.which("mount.fakecgfs") or beside)


def install(directory: str = HELPER_DIR, *, dry_run: bool = False) -> list[tuple[str, str]]:
    """Link ``directory``/mount.fakecgfs and mount.fuse.fakecgfs to the installed helper;
    the (link, target) pairs.  An existing link to elsewhere is replaced; a file is not."""
    target = helper_program()
    if not os.path.exists(target):
        raise FileNotFoundError(f"{target}: mount.fakecgfs is not installed (pip install fakecgfs)")
    made = []
    for name in HELPER_NAMES:
        link = os.path.join(directory, name)
        if os.path.lexists(link) and not os.path.islink(link):
            raise FileExistsError(f"{link} exists and is not a link; not replacing it")
        if not dry_run:
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(target, link)
        made.append((link, target))
    return made
