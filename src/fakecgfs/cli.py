"""The ``fakecgfs`` command: mount and unmount, charge and uncharge, status, and wait."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
from collections.abc import Iterator

from . import mounting, runtime
from .cliutil import (
    STRICT_NOTE,
    UNAVAILABLE,
    read_reclaim_task,
    settled,
    version,
    write_once,
)
from .cliutil import errno_text as _errno_text
from .cliutil import fail as _fail
from .cliutil import read_file as _read
from .eras import ERAS
from .kernel import UNLIMITED
from .mount_options import add_arguments as add_mount_options
from .mount_options import helper_usage, mount_options, to_argv

POLL_INTERVAL = 0.05


# -- mount and umount -----------------------------------------------------------------------


def _exec_with_server_allocator() -> None:
    """Restart this process (same pid, same arguments) on the server's allocator (see
    mounting.SERVER_ALLOCATOR): the interpreter reads PYTHONMALLOC only as it starts.  Servers
    started by `fakecgfs mount` and the test kit have it already and skip this."""
    if "PYTHONMALLOC" in os.environ:
        return
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], mounting.server_environment())


EXIT_FUSE_UNAVAILABLE = 77  # "skipped", as automake's test harness reads it


def _check_outputs(args: argparse.Namespace) -> str | None:
    """Open --trace (and --log) now, as the server will, so that a bad path is a one-line
    error before anything is mounted."""
    for option, path in (("--trace", args.trace), ("--log", args.log)):
        if path:
            try:
                os.close(runtime.open_output(path))
            except OSError as e:
                return f"{option} {path}: {_errno_text(e)}"
    return None


def cmd_mount(args: argparse.Namespace) -> int:
    mountpoint = args.mountpoint
    reason = mounting.fuse_unavailable_reason()
    if reason:
        return _fail(f"FUSE is unavailable here: {reason}", EXIT_FUSE_UNAVAILABLE)
    if args.real_processes and args.era != ERAS[0]:
        return _fail(f"--real-processes needs the {ERAS[0]} era: the {args.era} controller "
                     "does not model real processes", 2)  # fmt: skip
    if args.foreground:
        _exec_with_server_allocator()
    problem = _check_outputs(args)
    if problem:
        return _fail(problem)
    # Only mountinfo and a probe with a timeout look at what is mounted there: a stat of a
    # stopped server's mount would hang.
    if mounting.clear_stale(mountpoint):
        print(f"fakecgfs: cleared a dead mount at {mountpoint}", file=sys.stderr)
    if not os.path.exists(mountpoint):
        return _fail(f"{mountpoint}: no such directory (create it first: mkdir -p {mountpoint})")
    if mounting.is_fakecgfs_mount(mountpoint):
        return _fail(f"{mountpoint}: already mounted")
    if not os.path.isdir(mountpoint):
        return _fail(f"{mountpoint}: not a directory")
    if os.listdir(mountpoint):
        return _fail(f"{mountpoint}: directory is not empty")
    if args.foreground:
        from .cgroupfs.server import serve
        from .logs import configure

        configure(debug=args.debug)
        options = mount_options(args)
        from .cgroupfs.session import MountError

        try:
            serve(mountpoint, options)
        except MountError as e:
            return _fail(f"cannot mount {mountpoint}: {e}")
        except runtime.RuntimeFileError as e:
            return _fail(str(e))
        return 0
    return _spawn_server(args)


def _spawn_server(args: argparse.Namespace) -> int:
    try:
        if args.log:
            log_fd, log_path = runtime.open_output(args.log, 0o600), args.log
        else:
            log_fd, log_path = runtime.default_log(args.mountpoint)
    except OSError as e:
        return _fail(f"server log: {e}")
    trace = os.path.abspath(args.trace) if args.trace else None
    values = {**vars(args), "trace": trace, "log": None}  # the log is the fd given below
    start = os.fstat(log_fd).st_size  # the log may be shared: read only what follows
    try:
        server = mounting.start_server(args.mountpoint, to_argv(values), log_fd,
                                       start_new_session=True)  # fmt: skip
    finally:
        os.close(log_fd)

    def up() -> bool:
        # Our own server's pid file, not just a mount: another server may have won the race.
        recorded = runtime.read_pid_file(args.mountpoint)
        return not isinstance(recorded, str) and recorded[0] == server.pid

    ready = mounting.wait_until(
        lambda: server.poll() is not None or up(), mounting.SERVER_READY_TIMEOUT
    )
    if server.poll() is not None or not ready:
        if server.poll() is None:
            server.kill()
            server.wait()
        try:
            with open(os.open(log_path, os.O_RDONLY | os.O_NOFOLLOW), errors="replace") as f:
                f.seek(start)
                tail = f.read()[-2000:]
        except OSError as e:
            tail = f"(unreadable: {e})"
        return _fail(f"{mounting.mount_failure(tail)} (log: {log_path})")
    print(f"fakecgfs: mounted at {args.mountpoint} (server pid {server.pid}, log {log_path})")
    return 0


def cmd_umount(args: argparse.Namespace) -> int:
    """Unmount; never signal a process not proven to be the mount's server (runtime.py), never
    wait without a bound.  See docs/security.md."""
    mountpoint = mounting.mount_path(args.mountpoint)
    entry = mounting.find_mount(mountpoint)
    if entry is None or entry.fstype != "fuse.fakecgfs":
        return _fail(f"{args.mountpoint}: not a fakecgfs mount")
    health = mounting.probe(mountpoint)
    if health is mounting.Health.DEAD:
        try:
            mounting.unmount(mountpoint, lazy=True)
        except OSError as e:
            return _fail(str(e))
        print(f"fakecgfs: cleared a dead mount at {mountpoint}")
        return 0
    server, why = runtime.find_server(mountpoint)
    try:
        return _umount(args, mountpoint, entry, server, why, health)
    finally:
        if server is not None:
            server.close()


def _umount(args: argparse.Namespace, mountpoint: str, entry: mounting.MountEntry,
            server: runtime.ServerProcess | None, why: str,
            health: mounting.Health) -> int:  # fmt: skip
    try:
        mounting.unmount(mountpoint)
    except OSError as e:
        if not args.lazy:
            from .mounts import busy_message

            return _fail(busy_message(mountpoint, e))
    else:
        if server is not None and not server.wait(mounting.SERVER_EXIT_TIMEOUT):
            print(f"fakecgfs: unmounted {mountpoint}; its server (pid {server.pid}) does not "
                  "run (stopped?): it exits once it runs again", file=sys.stderr)  # fmt: skip
        return 0
    # Busy, and --lazy: stop the server; libfuse detaches the mount, open descriptors get
    # ENOTCONN.  Only a proven server is signalled.
    if server is None:
        print(f"fakecgfs: cannot prove which process serves {mountpoint} ({why}): detaching "
              "it lazily, signalling nothing", file=sys.stderr)  # fmt: skip
    else:
        server.send_signal(signal.SIGTERM)
        if server.wait(mounting.SERVER_EXIT_TIMEOUT):
            if mounting.find_mount(mountpoint) == entry:  # libfuse's teardown did not detach it
                try:
                    mounting.unmount(mountpoint, lazy=True)
                except OSError as e:
                    return _fail(str(e))
            return 0
        print(f"fakecgfs: the server of {mountpoint} (pid {server.pid}) does not exit "
              f"({'stopped' if server.stopped() else 'busy'}): detaching the mount lazily",
              file=sys.stderr)  # fmt: skip
    try:
        mounting.unmount(mountpoint, lazy=True)
    except OSError as e:
        return _fail(str(e))
    # A server that does not answer would leave the writers waiting on it asleep forever.
    stuck = server is not None or health is mounting.Health.STUCK
    if stuck and os.getuid() == 0 and mounting.abort_connection(entry):
        print(f"fakecgfs: aborted its FUSE connection ({mounting.FUSE_CONNECTIONS}/"
              f"{entry.dev_minor}): requests waiting on it fail with ECONNABORTED",
              file=sys.stderr)  # fmt: skip
    return 0


# -- charge, uncharge -----------------------------------------------------------------------


def _charge(args: argparse.Namespace, filename: str) -> int:
    words = [args.size, args.kind] + (["dirty"] if getattr(args, "dirty", False) else [])
    got = write_once(os.path.join(args.group, filename), " ".join(words))
    if got:
        return _fail(
            f"{filename} {' '.join(words)} in {args.group}: {_errno_text(OSError(got, ''))}"
        )
    return 0


def cmd_charge(args: argparse.Namespace) -> int:
    return _charge(args, "fake.charge")


def cmd_uncharge(args: argparse.Namespace) -> int:
    return _charge(args, "fake.uncharge")


# -- status and wait ------------------------------------------------------------------------


def _human(value: int) -> str:
    if value >= UNLIMITED:
        return "max"
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if (value >= 1 << shift and value % (1 << (shift - 4)) == 0) or value >= 10 << shift:
            return f"{value / (1 << shift):.1f}{unit}"
    return str(value)


def _status_row(group: str) -> tuple[str, ...] | None:
    """The status of the group at ``group`` (a path relative to the working directory); None
    if it went away while we looked."""
    try:
        reclaim_task = read_reclaim_task(group)
        usage = int(_read(os.path.join(group, "memory.usage_in_bytes")))
        limit = int(_read(os.path.join(group, "memory.limit_in_bytes")))
        failcnt = _read(os.path.join(group, "memory.failcnt")).strip()
    except (OSError, ValueError):
        return None
    return (_human(usage), _human(limit), _human(int(reclaim_task["high_wmark"])),
            _human(int(reclaim_task["low_wmark"])), failcnt, reclaim_task["state"],
            reclaim_task["passes"])  # fmt: skip


def _walk_groups(root: str) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(path from the root, status row) of every group, in tree order.  Iterative, and by
    relative paths from the working directory: a tree of any depth (cgroupfs has no limit,
    and paths of deep ones exceed PATH_MAX) walks without recursion or long paths.  Renames
    stay within a parent on cgroupfs, so ".." leads back where we came from."""
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.chdir(root)
        row = _status_row(".")
        if row is not None:
            yield "/", row
        path: list[str] = []
        pending: list[list[str]] = [_subgroups(".")]
        while pending:
            if not pending[-1]:
                pending.pop()
                if path:
                    path.pop()
                    os.chdir("..")
                continue
            name = pending[-1].pop()
            try:
                os.chdir(name)
            except OSError:
                continue  # removed while we walked
            path.append(name)
            row = _status_row(".")
            if row is not None:
                yield "/" + "/".join(path), row
            pending.append(_subgroups("."))
    finally:
        os.fchdir(here)
        os.close(here)


def _subgroups(directory: str) -> list[str]:
    """Child group names, last first (the walk pops from the end)."""
    try:
        with os.scandir(directory) as entries:
            names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    return sorted(names, reverse=True)


def cmd_status(args: argparse.Namespace) -> int:
    root = args.mountpoint
    if mounting.is_fakecgfs_mount(root):
        health = mounting.probe(root)
        if health is mounting.Health.DEAD:
            return _fail(f"{root}: the mount is dead (its server exited); `fakecgfs umount "
                         f"{root}` clears it")  # fmt: skip
        if health is mounting.Health.STUCK:
            return _fail(f"{root}: its server does not answer (stopped?)")
    elif not os.path.isdir(root):
        return _fail(f"{root}: no such directory")
    if not os.path.exists(os.path.join(root, "memory.usage_in_bytes")):
        return _fail(f"{root}: not a fakecgfs mount (no memory.usage_in_bytes)")
    rows: list[tuple[str, ...]] = [
        ("GROUP", "USAGE", "LIMIT", "HIGH", "LOW", "FAILCNT", "TASK", "PASSES")
    ]
    try:
        rows += [(group, *row) for group, row in _walk_groups(root)]
    except OSError as e:
        return _fail(f"{root}: {_errno_text(e)}")
    strict = any(row[6] == UNAVAILABLE for row in rows[1:])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    if strict:
        print(f"({STRICT_NOTE})")
    return 0


def _wait_state(group: str) -> str:
    reclaim_task = read_reclaim_task(group)
    return (f"task {reclaim_task['state']}, usage {reclaim_task['usage']}, "
            f"low watermark {reclaim_task['low_wmark']}")  # fmt: skip


def cmd_wait(args: argparse.Namespace) -> int:
    from .tty import Progress

    try:
        if read_reclaim_task(args.group)["state"] == UNAVAILABLE:
            print(f"fakecgfs: {args.group}: {STRICT_NOTE}; waiting for usage at or under the "
                  "low watermark instead", file=sys.stderr)  # fmt: skip
        with Progress(sys.stderr, f"waiting for {args.group} to settle") as progress:
            ok = mounting.wait_until(
                lambda: settled(args.group) or progress.show(lambda: _wait_state(args.group)),
                args.timeout,
                POLL_INTERVAL,
            )
    except OSError as e:
        return _fail(f"{args.group}: {_errno_text(e)}", 2)
    if not ok:
        return _fail(f"{args.group}: not settled after {args.timeout}s ({_wait_state(args.group)})")
    return 0


# -- the parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fakecgfs",
        description="A FUSE imitation of the Linux cgroup v1 memory controller, with the 2008 "
        "high/low watermark background reclaim RFC.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("mount", help="mount a fake memory hierarchy",
                       description="Mount a fake cgroup v1 memory hierarchy at MOUNTPOINT. Returns "
                       "once it is usable, leaving the server in the background, unless "
                       "--foreground. A dead mount at the same path is cleared first.")  # fmt: skip
    p.add_argument("mountpoint")
    p.add_argument("--foreground", "-f", action="store_true", help="serve in this process")
    add_mount_options(p)
    p.set_defaults(func=cmd_mount)

    p = sub.add_parser("umount", help="unmount (also clears a dead mount)",
                       description="Unmount MOUNTPOINT; the server exits. A dead mount (ENOTCONN) "
                       "is detached.")  # fmt: skip
    p.add_argument("mountpoint")
    p.add_argument(
        "--lazy",
        "-z",
        action="store_true",
        help="even if files are open in it: stop the server, detach the mount",
    )
    p.set_defaults(func=cmd_umount)

    for name, verb in (("charge", "charge simulated memory to"), ("uncharge", "free memory of")):
        p = sub.add_parser(name, help=f"{verb} a group",
                           description=f"{verb.capitalize()} GROUPDIR through its fake.{name} "
                           "file; SIZE is parsed like a limit (4096, 64M).")  # fmt: skip
        p.add_argument("group", metavar="GROUPDIR")
        p.add_argument("size", metavar="SIZE")
        p.add_argument("--kind", choices=("anon", "file"), default="anon")
        if name == "charge":
            p.add_argument("--dirty", action="store_true", help="file pages start dirty")
        p.set_defaults(func=cmd_charge if name == "charge" else cmd_uncharge)

    p = sub.add_parser(
        "status",
        help="one row per group",
        description="Usage, limit, watermarks and reclaim task of every group.",
    )
    p.add_argument("mountpoint")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("conformance", help="probe a v1 memory hierarchy, or diff two recordings",
                       add_help=False,
                       description="record ROOT -o OUT.json | diff GOLDEN NEW | list "
                       "(see: fakecgfs conformance --help)")  # fmt: skip
    p.set_defaults(func=lambda args: 2)  # dispatched by main() before parsing

    p = sub.add_parser("wait", help="wait until background reclaim has settled",
                       description="Exit 0 once GROUPDIR's reclaim task is asleep with nothing "
                       "to do (usage at or under the low watermark, or never above the high "
                       "one) or stopped; 1 on timeout. On a terminal, waits longer than a "
                       "second show progress. On a --strict mount the task's state is hidden: "
                       "it waits for usage at or under the low watermark.")  # fmt: skip
    p.add_argument("group", metavar="GROUPDIR")
    p.add_argument(
        "--settled",
        action="store_true",
        help="the condition to wait for (the default, and the only one so far)",
    )
    p.add_argument("--timeout", type=float, default=30.0, metavar="S")
    p.set_defaults(func=cmd_wait)

    from .testing.commands import add_commands  # mkgroup, write, expect, shell-lib, run

    add_commands(sub)

    from .teach.commands import add_commands as add_teaching_commands  # top, plot, explain

    add_teaching_commands(sub)

    from .tooling import add_commands as add_tool_commands  # list, man, completion, ...

    add_tool_commands(sub)
    parser.set_defaults(parser=parser)  # for man and completion, generated from it
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["conformance"]:  # its own parser owns every option, --help included
        from . import conformance

        return conformance.main(argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)


def mount_helper_main(argv: list[str] | None = None) -> int:
    """``mount.fakecgfs SOURCE DIR [-sfnv] [-o OPTIONS]``, as mount(8) runs it for
    ``-t fuse.fakecgfs`` and fstab lines: the options become ``fakecgfs mount`` flags."""
    from .mount_helper import MOUNT_FAILURE, USAGE, UsageError, parse_argv

    argv = sys.argv[1:] if argv is None else argv
    try:
        invocation = parse_argv(argv)
    except UsageError as e:
        if str(e):
            print(f"mount.fakecgfs: {e}", file=sys.stderr)
        print("usage: mount.fakecgfs SOURCE DIR [-sfnv] [-o OPTION[,OPTION...]]\n"
              "options: " + helper_usage(),
              file=sys.stderr)  # fmt: skip
        return USAGE
    if invocation.fake:
        return 0
    # Silent on success, as mount helpers are; -v keeps `fakecgfs mount`'s line.
    with contextlib.redirect_stdout(sys.stdout if invocation.verbose else io.StringIO()):
        failed = main(["mount", invocation.mountpoint, *invocation.flags])
    return MOUNT_FAILURE if failed else 0


if __name__ == "__main__":
    sys.exit(main())
