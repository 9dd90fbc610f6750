"""Which libfuse fakecgfs can use here, and what to install when it cannot.

fakecgfs runs on libfuse2 (through fusepy, whose internals cgroupfs/session.py uses: see the
pin in pyproject.toml).  A machine may have only libfuse3, which fusepy cannot load: then
``import fuse`` fails with "Unable to find libfuse", and this module says in one line what to
install instead.  Nothing here imports fusepy.
"""

from __future__ import annotations

import ctypes.util
from collections.abc import Callable


def os_release() -> dict[str, str]:
    """/etc/os-release as a dict (empty if there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    fields[key] = value.strip('"')
    except OSError:
        pass
    return fields


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()


def libfuse2_package(release: dict[str, str] | None = None) -> str:
    """The package that provides libfuse.so.2 on this distribution: Debian 13 and Ubuntu 24.04
    renamed it for the 64-bit time_t transition."""
    release = os_release() if release is None else release
    distro, version = release.get("ID", ""), _version(release.get("VERSION_ID", ""))
    if distro == "debian" and version:
        return "libfuse2t64" if version >= (13,) else "libfuse2"
    if distro == "ubuntu" and version:
        return "libfuse2t64" if version >= (24, 4) else "libfuse2"
    if distro in ("fedora", "rhel", "centos", "rocky", "almalinux"):
        return "fuse-libs"
    return "libfuse2 (libfuse2t64 on Debian 13 and Ubuntu 24.04, fuse-libs on Fedora)"


def missing_libfuse2(find_library: Callable[[str], str | None] | None = None,
                     release: dict[str, str] | None = None) -> str | None:  # fmt: skip
    """None when libfuse2 can be loaded; else one line saying what to install."""
    find_library = find_library or ctypes.util.find_library
    if find_library("fuse") is not None:
        return None
    package = libfuse2_package(release)
    if find_library("fuse3") is not None:
        return (f"libfuse2 is not installed (only libfuse3 is, which fusepy cannot use): "
                f"install {package}")  # fmt: skip
    return f"libfuse2 is not installed: install {package}"
