"""What fakecgfs says when it cannot load libfuse2: one line naming the package to install."""

from __future__ import annotations

import os
import subprocess
import sys

from fakecgfs.fuselib import libfuse2_package, missing_libfuse2

DEBIAN_12 = {"ID": "debian", "VERSION_ID": "12"}
DEBIAN_13 = {"ID": "debian", "VERSION_ID": "13"}
UBUNTU_2204 = {"ID": "ubuntu", "VERSION_ID": "22.04"}
UBUNTU_2404 = {"ID": "ubuntu", "VERSION_ID": "24.04"}


def only(*present: str):
    return lambda name: f"lib{name}.so" if name in present else None


def test_the_package_name_follows_the_time_t_transition():
    assert libfuse2_package(DEBIAN_12) == "libfuse2"
    assert libfuse2_package(DEBIAN_13) == "libfuse2t64"
    assert libfuse2_package(UBUNTU_2204) == "libfuse2"
    assert libfuse2_package(UBUNTU_2404) == "libfuse2t64"
    assert libfuse2_package({"ID": "fedora", "VERSION_ID": "40"}) == "fuse-libs"
    assert "libfuse2t64" in libfuse2_package({})


def test_nothing_is_missing_with_libfuse2():
    assert missing_libfuse2(only("fuse"), DEBIAN_12) is None
    assert missing_libfuse2(only("fuse", "fuse3"), DEBIAN_13) is None


def test_only_libfuse3_names_what_to_install_in_one_line():
    message = missing_libfuse2(only("fuse3"), UBUNTU_2404)
    assert message == ("libfuse2 is not installed (only libfuse3 is, which fusepy cannot use): "
                       "install libfuse2t64")  # fmt: skip
    assert "\n" not in message


def test_no_libfuse_at_all():
    assert missing_libfuse2(only(), DEBIAN_12) == "libfuse2 is not installed: install libfuse2"


def test_mount_says_what_to_install_instead_of_failing_in_fusepy(tmp_path, monkeypatch, capsys):
    from fakecgfs import cli, fuselib

    monkeypatch.setattr(fuselib.ctypes.util, "find_library", only("fuse3"))
    monkeypatch.setattr(fuselib, "os_release", lambda: DEBIAN_13)
    # 77: "skipped", the status a mount that cannot use FUSE here exits with
    assert cli.main(["mount", str(tmp_path)]) == cli.EXIT_FUSE_UNAVAILABLE == 77
    assert capsys.readouterr().err == (
        "fakecgfs: FUSE is unavailable here: libfuse2 is not installed "
        "(only libfuse3 is, which fusepy cannot use): install libfuse2t64\n")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


# A whole `fakecgfs mount` in a process whose ctypes finds no libfuse2 and finds libfuse3, as on
# a machine with only libfuse3: fusepy cannot even be imported there, so this also checks that
# nothing on the way to the message imports it.
ONLY_LIBFUSE3 = """\
import ctypes.util

ctypes.util.find_library = {"fuse": None, "fuse3": "libfuse3.so.3"}.get
"""


def _with_only_libfuse3(tmp_path, *args: str) -> subprocess.CompletedProcess:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(ONLY_LIBFUSE3)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=30)  # fmt: skip


def test_fusepy_cannot_load_where_only_libfuse3_is(tmp_path):
    result = _with_only_libfuse3(tmp_path, "-c", "import fuse")
    assert result.returncode != 0
    assert "Unable to find libfuse" in result.stderr


def test_the_mount_command_prints_one_line_where_only_libfuse3_is(tmp_path):
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    result = _with_only_libfuse3(tmp_path, "-m", "fakecgfs", "mount", str(mountpoint))
    assert result.returncode == 77, result.stderr
    assert result.stdout == ""
    prefix = ("fakecgfs: FUSE is unavailable here: libfuse2 is not installed "
              "(only libfuse3 is, which fusepy cannot use): install ")  # fmt: skip
    (line,) = result.stderr.splitlines()
    assert line.startswith(prefix), line
    assert list(mountpoint.iterdir()) == []
