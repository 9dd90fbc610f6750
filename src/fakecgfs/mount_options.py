"""The options of a fakecgfs mount, declared once.

Each row names the `fakecgfs mount` flag, the ``-o`` name that ``mount.fakecgfs`` (and so
mount(8) and fstab) takes for it, its help, and the ``MountOptions`` field it sets.  From the
table come the mount command's argparse options, the ``-o`` parser, and the argument vector
that asks a server for given options (the CLI's background server, the test kit, ``fakecgfs
run``, the pytest fixture): a new option is one new row.

Cheap to import (mount.fakecgfs and every ``fakecgfs`` call read it): the server's modules,
and with them trio, are imported only to build a ``MountOptions``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cliutil import parse_size
from .eras import ERAS

if TYPE_CHECKING:
    from .cgroupfs.server import MountOptions


@dataclass(frozen=True)
class MountOption:
    flag: str  # `fakecgfs mount --swap`
    option: str  # `mount.fakecgfs -o swap=`
    help: str
    field: str | None  # the MountOptions field it sets; None: how the server process runs
    metavar: str | None = None  # the value's name; with neither this nor choices, a switch
    type: Callable[[str], Any] | None = None  # text -> value; None: the text itself
    choices: tuple[str, ...] | None = None
    default: Any = None  # argparse's, when the flag is not given (a switch: False)

    @property
    def dest(self) -> str:
        """The argparse destination: ``--reclaim-rate`` -> ``reclaim_rate``."""
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def switch(self) -> bool:
        return self.metavar is None and self.choices is None


OPTIONS: tuple[MountOption, ...] = (
    MountOption("--strict", "strict", "hide the fakecgfs-only fake.* files", "strict",
                default=False),
    MountOption("--swap", "swap",
                "simulated swap size (default 0: anonymous memory cannot be reclaimed)",
                "swap_bytes", metavar="SIZE", type=parse_size, default=0),
    MountOption("--reclaim-rate", "reclaim_rate",
                "background reclaim speed in bytes per second, e.g. 4M (default: full)",
                "reclaim_rate", metavar="RATE", type=parse_size),
    MountOption("--trace", "trace",
                "append the controller's events as JSON lines (see docs/trace.md)",
                "trace", metavar="FILE"),
    MountOption("--trace-interval", "trace_interval",
                "with --trace: seconds between usage samples of each group (default 0.1); a "
                "sample is written only when something changed",
                "trace_interval", metavar="S", type=float),
    MountOption("--allow-other", "allow_other",
                "let other users see the mount (default when mounted by root)", "allow_other",
                default=False),
    MountOption("--log", "log",
                "server log (default: a file in the private runtime directory, /run/fakecgfs "
                "for root)", None, metavar="FILE"),
    MountOption("--era", "era",
                "6.18 (default): kernel 6.18's v1 controller with the RFC repaired; rfc-2008: "
                "2.6.26-rc2-mm1 with the 2008 RFC exactly as posted",
                "era", choices=ERAS, default=ERAS[0]),
    MountOption("--real-processes", "real_processes",
                "charge the real memory of processes moved into groups to them; limits then "
                "reclaim, stop or kill them (docs/real-processes.md)", "real_processes",
                default=False),
    MountOption("--debug", "debug",
                "log every controller event and failed request, not only what happened to the "
                "mount (mounted, options, warnings, OOM kills, unmounted)", None, default=False),
)  # fmt: skip
"""In `fakecgfs mount --help` order."""

BY_DEST = {o.dest: o for o in OPTIONS}
BY_OPTION = {o.option: o for o in OPTIONS}
BY_FIELD = {o.field: o for o in OPTIONS if o.field is not None}


def add_arguments(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """Add the options (all, or those whose dest is in ``names``) to ``parser``."""
    for o in OPTIONS if names is None else [BY_DEST[name] for name in names]:
        if o.switch:
            parser.add_argument(o.flag, action="store_true", help=o.help)
        else:
            parser.add_argument(o.flag, type=o.type or str, choices=o.choices, default=o.default,
                                metavar=o.metavar, help=o.help)  # fmt: skip


def to_argv(values: Mapping[str, Any]) -> list[str]:
    """The flags that ask `fakecgfs mount` for ``values`` (by dest, as in its parsed
    arguments; a value that is None or its default is left out, in table order):
    ``{"swap": 4096, "strict": True}`` -> ``["--strict", "--swap", "4096"]``."""
    argv: list[str] = []
    for o in OPTIONS:
        value = values.get(o.dest)
        if value is None or value == o.default:
            continue
        if o.switch:
            if value is not True:
                raise ValueError(f"{o.flag} is a switch: {value!r}")
            argv.append(o.flag)
        else:
            argv += [o.flag, str(value)]
    return argv


def mount_options(args: argparse.Namespace) -> MountOptions:
    """The MountOptions of parsed `fakecgfs mount` arguments (a flag not given leaves its
    field's own default: allow_other None, decided by who mounts)."""
    from .cgroupfs.server import MountOptions

    given = {o.field: getattr(args, o.dest) for o in OPTIONS if o.field is not None}
    return MountOptions(
        **{field: value for field, value in given.items() if value != BY_FIELD[field].default}
    )


def argv_of(options: MountOptions) -> list[str]:
    """The flags that give a server ``options`` (the inverse of mount_options).  ValueError
    for what no flag asks for: a switch's field other than True or its default
    (allow_other=False; not given, it is None: decided by who mounts)."""
    defaults = {f.name: f.default for f in dataclasses.fields(options)}
    values = {}
    for o in OPTIONS:
        if o.field is None:
            continue
        value = getattr(options, o.field)
        if o.switch and value is not True and value != defaults[o.field]:
            raise ValueError(f"MountOptions.{o.field}={value!r}: no flag asks for it")
        values[o.dest] = value
    return to_argv(values)


def helper_usage() -> str:
    """The ``-o`` options as mount.fakecgfs's usage and the man page list them."""
    return ", ".join(o.option if o.switch else f"{o.option}=VALUE" for o in OPTIONS)
