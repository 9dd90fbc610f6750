"""The test-kit subcommands of ``fakecgfs``: one line each to set up and check state from a
shell test (``mkgroup``, ``write``, ``expect``), ``shell-lib`` and ``run``."""

from __future__ import annotations

import argparse
import errno
import functools
import os
import sys
import time
from importlib import resources

from ..cliutil import errno_text as _errno_text
from ..cliutil import fail as _fail
from ..cliutil import parse_size, write_once
from ..mount_options import add_arguments as add_mount_options
from ..mount_options import to_argv
from ..tty import Progress

POLL_INTERVAL = 0.05


def shell_lib_path() -> str:
    """The installed fakecgfs-sh, to be sourced: . "$(fakecgfs shell-lib)"."""
    return str(resources.files("fakecgfs").joinpath("shell", "fakecgfs-sh"))


def cmd_shell_lib(args: argparse.Namespace) -> int:
    path = shell_lib_path()
    if not os.path.isfile(path):
        return _fail(f"the shell library is missing from this installation ({path})")
    print(path)
    return 0


# -- write ----------------------------------------------------------------------------------


def errno_number(name: str) -> int:
    """EINVAL, einval or 22 -> 22."""
    if name.isdigit():
        return int(name)
    number = getattr(errno, name.upper(), None)
    if not isinstance(number, int) or not name.upper().startswith("E"):
        raise argparse.ArgumentTypeError(f"not an errno name: {name!r} (e.g. EINVAL, EBUSY)")
    return number


def _name(number: int) -> str:
    return errno.errorcode.get(number, str(number))


def cmd_write(args: argparse.Namespace) -> int:
    got = write_once(args.file, args.value)
    what = f"{args.file}: write {args.value!r}"
    if args.expect is None:
        if got == 0:
            return 0
        print(_name(got))
        return _fail(f"{what}: {_errno_text(OSError(got, ''))}")
    if got == args.expect:
        return 0
    if got == 0:
        return _fail(f"{what}: expected {_name(args.expect)}, but it succeeded")
    print(_name(got))
    return _fail(f"{what}: expected {_name(args.expect)}, got {_errno_text(OSError(got, ''))}")


# -- expect ---------------------------------------------------------------------------------


def _number(text: str) -> int | None:
    """An integer as a control file shows it, or a size as a limit is written (64M)."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return parse_size(text)
    except argparse.ArgumentTypeError:
        return None


def _actual(args: argparse.Namespace) -> str:
    with open(args.file, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if args.key is None:
        return text.strip()
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == args.key:
            return value.strip()
    raise LookupError(f"no line {args.key!r}")


def _mismatch(args: argparse.Namespace, actual: str) -> str | None:
    """Why ``actual`` does not meet the expectation, or None if it does."""
    number = _number(actual)
    if args.value is not None:
        want = _number(args.value)
        if want is not None and number is not None:
            if number != want:
                return f"got {actual}, want {args.value}" + (
                    f" ({want})" if str(want) != args.value else ""
                )
        elif actual != args.value.strip():
            return f"got {actual!r}, want {args.value.strip()!r}"
    for bound, ok, word in ((args.at_least, lambda n, b: n >= b, "at least"),
                            (args.at_most, lambda n, b: n <= b, "at most")):  # fmt: skip
        if bound is None:
            continue
        if number is None:
            return f"got {actual!r}, not a number"
        if not ok(number, bound):
            return f"got {actual}, want {word} {bound}"
    return None


def cmd_expect(args: argparse.Namespace) -> int:
    if args.key is not None:
        if len(args.key) > 2 or (len(args.key) == 2 and args.value is not None):
            return _fail("expect: --key NAME [VALUE] takes one VALUE, given once", 2)
        if len(args.key) == 2:
            args.value = args.key[1]
        args.key = args.key[0]
    if args.value is None and args.at_least is None and args.at_most is None:
        return _fail("expect: give VALUE, --at-least or --at-most", 2)
    where = args.file + (f" {args.key}" if args.key else "")
    deadline = time.monotonic() + args.timeout
    with Progress(sys.stderr, f"waiting for {where}") as progress:
        while True:
            try:
                problem = _mismatch(args, _actual(args))
            except OSError as e:
                return _fail(f"{where}: cannot read: {_errno_text(e)}", 2)
            except LookupError as e:
                problem = str(e)
            if problem is None:
                return 0
            if time.monotonic() >= deadline:
                after = f" after {args.timeout:g}s" if args.timeout else ""
                return _fail(f"{where}: {problem}{after}")
            progress.show(functools.partial(str, problem))
            time.sleep(POLL_INTERVAL)


# -- mkgroup --------------------------------------------------------------------------------


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"not FILE=VALUE: {text!r}")
    return name, value


def cmd_mkgroup(args: argparse.Namespace) -> int:
    try:
        os.makedirs(args.group, exist_ok=True)
    except OSError as e:
        return _fail(f"mkdir {args.group}: {_errno_text(e)}")
    writes = [(name, value) for name, value in (("memory.limit_in_bytes", args.limit),
                                                 ("memory.high_wmark_in_bytes", args.high),
                                                 ("memory.low_wmark_in_bytes", args.low))
              if value is not None] + list(args.set)  # fmt: skip
    for name, value in writes:
        path = os.path.join(args.group, name)
        got = write_once(path, value)
        if got:
            return _fail(f"{path}: write {value!r}: {_errno_text(OSError(got, ''))}")
    return 0


# -- run ------------------------------------------------------------------------------------


RUN_MOUNT_OPTIONS = ("strict", "swap", "reclaim_rate")
"""The mount options `fakecgfs run` passes on as given (--trace is created first, and
--real-processes is run()'s to add)."""


def cmd_run(args: argparse.Namespace) -> int:
    from ..run import run

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        return _fail("run: no COMMAND given (fakecgfs run [--mount-at PATH] -- COMMAND ...)", 2)
    mount_options = to_argv({name: getattr(args, name) for name in RUN_MOUNT_OPTIONS})
    if args.trace:
        trace = os.path.abspath(args.trace)
        try:  # created out here: a file new in a directory covered in the namespace is lost
            open(trace, "a").close()
        except OSError as e:
            return _fail(f"--trace {trace}: {_errno_text(e)}", 125)
        mount_options += ["--trace", trace]
    return run(command, args.mount_at, mount_options, keep_cap_sys_admin=args.keep_cap_sys_admin,
               real_processes=args.real_processes)  # fmt: skip


# -- the parsers ----------------------------------------------------------------------------


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the test-kit subcommands to the ``fakecgfs`` parser."""
    p = sub.add_parser("mkgroup", help="create a group and set its limit and watermarks",
                       description="mkdir -p GROUPDIR, then write its limit, high and low "
                       "watermarks (in that order) and any --set FILE=VALUE, one write() "
                       "each, values as given (64M, 0x1000, -1). Exit 1 naming the file "
                       "and errno at the first refused write.")  # fmt: skip
    p.add_argument("group", metavar="GROUPDIR")
    p.add_argument("--limit", metavar="SIZE", help="memory.limit_in_bytes")
    p.add_argument("--high", metavar="SIZE", help="memory.high_wmark_in_bytes")
    p.add_argument("--low", metavar="SIZE", help="memory.low_wmark_in_bytes")
    p.add_argument(
        "--set",
        metavar="FILE=VALUE",
        type=_assignment,
        action="append",
        default=[],
        help="write VALUE to GROUPDIR/FILE afterwards (repeatable)",
    )
    p.set_defaults(func=cmd_mkgroup)

    p = sub.add_parser("write", help="one write() to a control file, reporting the errno",
                       description="Write VALUE (exactly, no newline added) to FILE with a "
                       "single write(), as the kernel wants it. Exit 0 if it succeeded; "
                       "otherwise print the errno name (EINVAL) on stdout, a message on "
                       "stderr, and exit 1. With --expect ERRNO, exit 0 only if the write "
                       "failed with that errno.")  # fmt: skip
    p.add_argument("file", metavar="FILE")
    p.add_argument("value", metavar="VALUE")
    p.add_argument("--expect", metavar="ERRNO", type=errno_number,
                   help="the write must fail with this errno (a name such as EINVAL, or a "
                   "number)")  # fmt: skip
    p.set_defaults(func=cmd_write)

    p = sub.add_parser("expect", help="check a control file's value",
                       description="Read FILE (or, with --key NAME, the value of its 'NAME "
                       "value' line, as in memory.stat or fake.reclaim_daemon) and check it: "
                       "equal to VALUE (numerically when both are numbers; sizes such as 64M "
                       "allowed), --at-least, --at-most. Exit 0 if it holds, 1 with a message "
                       "if not (after polling for --timeout seconds), 2 if FILE cannot be "
                       "read.")  # fmt: skip
    p.add_argument("file", metavar="FILE")
    p.add_argument("value", metavar="VALUE", nargs="?")
    p.add_argument("--key", nargs="+", metavar=("NAME", "VALUE"),
                   help="check the value of the line NAME (and compare it with VALUE, so that "
                   "'--key state sleeping' reads as it should)")  # fmt: skip
    p.add_argument("--at-least", type=parse_size, metavar="SIZE")
    p.add_argument("--at-most", type=parse_size, metavar="SIZE")
    p.add_argument(
        "--timeout",
        type=float,
        default=0.0,
        metavar="S",
        help="keep checking for up to S seconds (default: check once)",
    )
    p.set_defaults(func=cmd_expect)

    p = sub.add_parser("shell-lib", help="print the path of the fakecgfs-sh shell library",
                       description='Print the path of fakecgfs-sh, the POSIX sh library for '
                       'shell tests: . "$(fakecgfs shell-lib)"')  # fmt: skip
    p.set_defaults(func=cmd_shell_lib)

    p = sub.add_parser("run", help="run a command with the fake mounted at /sys/fs/cgroup/memory",
                       description="Run COMMAND in a private mount namespace where a fresh "
                       "fakecgfs is mounted at PATH (default /sys/fs/cgroup/memory), so that "
                       "a tool hard-coding that path is tested unmodified; nothing changes "
                       "outside the namespace. Exits with COMMAND's status (128+N if killed "
                       "by signal N; 125 if fakecgfs run itself failed, 126/127 if COMMAND "
                       "cannot be run). FAKECG_ROOT is set to PATH. As root, or as a user "
                       "where unprivileged user namespaces are allowed. The fake is the only "
                       "cgroup hierarchy the command finds, and it looks like one to /proc and "
                       "statfs(); see docs/testing-with-fakecgfs.md.")  # fmt: skip
    p.add_argument(
        "--mount-at",
        metavar="PATH",
        default="/sys/fs/cgroup/memory",
        help="where to mount the fake (default /sys/fs/cgroup/memory)",
    )
    add_mount_options(p, (*RUN_MOUNT_OPTIONS, "trace"))
    p.add_argument("--keep-cap-sys-admin", action="store_true",
                   help="UNSAFE: leave COMMAND CAP_SYS_ADMIN and CAP_SYS_PTRACE, with which it can "
                   "mount and change the host's real cgroup hierarchies")  # fmt: skip
    p.add_argument("--no-real-processes", dest="real_processes", action="store_false",
                   help="do not pass --real-processes to the server (the default where the "
                   "server has it)")  # fmt: skip
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    p.set_defaults(func=cmd_run)
