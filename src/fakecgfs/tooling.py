"""The conventions of a mount tool: ``list`` (live and stale mounts), ``man``, ``completion``
and ``install-mount-helper``."""

from __future__ import annotations

import argparse
import sys


def cmd_list(args: argparse.Namespace) -> int:
    from .cliutil import errno_text as _errno_text
    from .cliutil import fail as _fail
    from .mounts import clean_stale, list_mounts

    if args.clean:
        try:
            cleared = clean_stale(args.mountpoints or None)
        except OSError as e:
            return _fail(f"clearing a stale mount: {_errno_text(e)}")
        for mountpoint in cleared:
            print(f"fakecgfs: cleared the stale mount at {mountpoint}")
        return 0
    mounts = list_mounts(args.mountpoints or None)
    rows = [("MOUNTPOINT", "SERVER", "STATE")]
    rows += [(m.mountpoint, str(m.server) if m.server else "-", m.state) for m in mounts]
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    for mountpoint, server, state in rows:
        print(f"{mountpoint:<{width[0]}}  {server:<{width[1]}}  {state}")
    return 0


def cmd_man(args: argparse.Namespace) -> int:
    from .cliutil import version
    from .manpage import man_page

    sys.stdout.write(man_page(args.parser, version()))
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from .manpage import bash_completion

    sys.stdout.write(bash_completion(args.parser))
    return 0


def cmd_install_mount_helper(args: argparse.Namespace) -> int:
    from .cliutil import errno_text as _errno_text
    from .cliutil import fail as _fail
    from .mount_helper import install

    try:
        made = install(args.dir, dry_run=args.dry_run)
    except OSError as e:
        return _fail(str(e) if not e.errno else f"{args.dir}: {_errno_text(e)}")
    for link, target in made:
        print(f"{'would link' if args.dry_run else 'linked'} {link} -> {target}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    from .mount_helper import HELPER_DIR

    p = sub.add_parser("list", help="list the fakecgfs mounts, their servers, stale ones",
                       description="List every fakecgfs mount of this mount namespace (from "
                       "/proc/self/mountinfo) with its server's pid, and those whose server "
                       "is gone (stale: every access fails with ENOTCONN, as after a kill -9 "
                       "of the server). --clean detaches the stale ones.")  # fmt: skip
    p.add_argument(
        "mountpoints",
        nargs="*",
        metavar="MOUNTPOINT",
        help="only these (default: every fakecgfs mount)",
    )
    p.add_argument("--clean", action="store_true", help="detach the stale mounts")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("man", help="print the man page (roff), generated from these options",
                       description="Print the fakecgfs(1) man page: man -l <(fakecgfs man), or "
                       "fakecgfs man > /usr/local/share/man/man1/fakecgfs.1")  # fmt: skip
    p.set_defaults(func=cmd_man)

    p = sub.add_parser("completion", help="print the shell completion script",
                       description="Print the completion script for SHELL: "
                       "fakecgfs completion bash > /etc/bash_completion.d/fakecgfs, or "
                       "eval \"$(fakecgfs completion bash)\" in ~/.bashrc.")  # fmt: skip
    p.add_argument("shell", choices=("bash",), help="the shell (bash)")
    p.set_defaults(func=cmd_completion)

    p = sub.add_parser("install-mount-helper",
                       help="link mount.fakecgfs where mount(8) looks, for -t fuse.fakecgfs",
                       description="Link DIR/mount.fakecgfs and DIR/mount.fuse.fakecgfs to the "
                       "installed mount.fakecgfs, so that `mount -t fuse.fakecgfs fakecgfs "
                       "DIR -o swap=64M,strict` and /etc/fstab lines work. Needs root for "
                       f"{HELPER_DIR}.")  # fmt: skip
    p.add_argument("--dir", default=HELPER_DIR, help=f"where to link (default {HELPER_DIR})")
    p.add_argument("--dry-run", action="store_true", help="say what would be linked")
    p.set_defaults(func=cmd_install_mount_helper)
