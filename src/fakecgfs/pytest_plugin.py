"""The ``fakecgfs`` pytest fixture: a real fakecgfs mount per test, unmounted afterwards.

Registered through the ``pytest11`` entry point, so installing fakecgfs is enough::

    def test_reader(fakecgfs):
        web = fakecgfs.mkgroup("web", limit="64M", high="48M", low="32M")
        fakecgfs.charge("web", "60M", kind="file")
        fakecgfs.wait_settled("web")
        assert fakecgfs.usage("web") <= 32 << 20
        assert fakecgfs.events(kind="reclaim", group="/web")

Mount options, from the weakest to the strongest: the ini keys ``fakecgfs_strict``,
``fakecgfs_swap`` and ``fakecgfs_reclaim_rate``; the command-line options ``--fakecgfs-strict``,
``--fakecgfs-swap SIZE`` and ``--fakecgfs-reclaim-rate RATE``; and, per test (or per module
with ``pytestmark``), the marker ``@pytest.mark.fakecgfs(strict=True, swap="64M",
reclaim_rate="16M")``.  Where FUSE cannot be used (no /dev/fuse, no libfuse2) the fixture skips
the test and says why.  ``-p no:fakecgfs`` disables the plugin.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import pytest

from .cliutil import parse_size
from .mount_options import BY_DEST, to_argv
from .testing.mount import FakecgfsMount, fuse_unavailable_reason, mounted

MARKER_ARGS = ("strict", "swap", "reclaim_rate")
"""The mount options the fixture takes (switches, or sizes checked as `fakecgfs mount` will)."""


def _size(text: str) -> str:
    """Check a size as `fakecgfs mount` will parse it (4096, 64M, 0x1000)."""
    return str(parse_size(text))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fakecgfs", "fakecgfs mount of the `fakecgfs` fixture")
    for name in MARKER_ARGS:  # as `fakecgfs mount` declares them (mount_options.OPTIONS)
        option = BY_DEST[name]
        flag = "--fakecgfs-" + option.flag.removeprefix("--")
        if option.switch:
            group.addoption(flag, action="store_true", default=None, help=option.help)
            parser.addini(f"fakecgfs_{name}", type="bool", default=False,
                          help=f"fakecgfs fixture: {option.help}")  # fmt: skip
        else:
            group.addoption(flag, metavar=option.metavar, type=_size, default=None,
                            help=option.help)  # fmt: skip
            parser.addini(f"fakecgfs_{name}", default="", help=f"fakecgfs fixture: {option.help}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fakecgfs(strict=False, swap=None, reclaim_rate=None): mount options of the "
        "`fakecgfs` fixture for this test",
    )


def mount_options(node: pytest.Item) -> dict[str, Any]:
    """strict, swap and reclaim_rate for a test: its marker, else the command line, else the
    ini file."""
    config = node.config
    settings: dict[str, Any] = {}
    for name in MARKER_ARGS:  # an empty ini value is no value, but a bool is one
        value = config.getini(f"fakecgfs_{name}")
        settings[name] = value if BY_DEST[name].switch else value or None
    for name in MARKER_ARGS:
        value = config.getoption(f"fakecgfs_{name}")
        if value is not None:
            settings[name] = value
    marker = node.get_closest_marker("fakecgfs")
    if marker is not None:
        if marker.args:
            pytest.fail("@pytest.mark.fakecgfs takes keyword arguments only: "
                        + ", ".join(f"{name}=" for name in MARKER_ARGS), pytrace=False)  # fmt: skip
        unknown = set(marker.kwargs) - set(MARKER_ARGS)
        if unknown:
            pytest.fail(f"@pytest.mark.fakecgfs: unknown option(s) {', '.join(sorted(unknown))}"
                        f"; known: {', '.join(MARKER_ARGS)}", pytrace=False)  # fmt: skip
        settings.update(marker.kwargs)
    for name in MARKER_ARGS:
        if not BY_DEST[name].switch and settings[name] is not None:
            try:
                settings[name] = _size(settings[name])
            except argparse.ArgumentTypeError as e:
                pytest.fail(f"fakecgfs {name}: {e}", pytrace=False)
    return settings


def _command_line(settings: dict[str, Any]) -> list[str]:
    return to_argv({**settings, "strict": bool(settings["strict"])})


@pytest.fixture
def fakecgfs(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakecgfsMount]:  # fmt: skip
    """A fresh fakecgfs mount (a fake cgroup v1 memory hierarchy) for this test, unmounted
    afterwards even if the test fails.  ``.path`` is its root; helpers: ``mkgroup``,
    ``charge``, ``uncharge``, ``usage``, ``stat``, ``daemon``, ``wait_settled``, ``events``,
    ``read``, ``write``.  Options: ``@pytest.mark.fakecgfs(strict=, swap=, reclaim_rate=)``."""
    reason = fuse_unavailable_reason()
    if reason:
        pytest.skip(f"fakecgfs: FUSE is unavailable here: {reason}")
    options = _command_line(mount_options(request.node))
    directory = tmp_path_factory.mktemp("fakecgfs", numbered=True)
    with mounted(directory, *options, trace=True) as mount:
        yield mount
