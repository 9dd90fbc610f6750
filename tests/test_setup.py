"""scripts/setup installs only what is missing and never removes a package, checked with its
dry run (apt-get -s, which prints a "Remv" line for every package apt would remove).  Nothing
is installed by these tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parent.parent / "scripts" / "setup"

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None,
                                reason="not a Debian/Ubuntu system")  # fmt: skip


def dry_run(assume_missing: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, FAKECGFS_SETUP_ASSUME_MISSING=assume_missing, LC_ALL="C")
    return subprocess.run([str(SETUP), "--dry-run"], capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip


def test_a_second_run_does_nothing():
    """The suite ran scripts/setup before it started: run again, it has nothing to do."""
    result = dry_run()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "setup: nothing to do\n"


@pytest.mark.parametrize("missing", ["libfuse2", "fusermount", "headers", "cc",
                                     "libfuse2 fusermount headers cc"])  # fmt: skip
def test_what_it_would_install_removes_nothing(missing):
    result = dry_run(missing)
    if "Unable to locate package" in result.stderr:
        pytest.skip("apt's package lists are not downloaded (apt-get update)")
    wanted = re.search(r"^setup: would install Debian packages: (.*)$", result.stdout, re.M)
    assert wanted, result.stdout
    packages = wanted.group(1).split()
    assert "fuse" not in packages  # Debian's old fuse conflicts with fuse3 and removes it
    assert not re.search(r"^Remv ", result.stdout, re.M), result.stdout
    # apt either would install without removing, or refuses (--no-remove) and says so
    refused = result.returncode == 100 and "remove is disabled" in result.stderr
    assert result.returncode == 0 or refused, result


def test_the_library_package_follows_the_distribution():
    result = dry_run("libfuse2")
    wanted = re.search(r"would install Debian packages: libfuse2(t64)?\b", result.stdout)
    assert wanted, result.stdout


def test_a_compiler_is_installed_for_the_suite():
    """The suite compiles its helper programs: a machine without cc gets gcc and libc6-dev."""
    result = dry_run("cc")
    wanted = re.search(r"^setup: would install Debian packages: (.*)$", result.stdout, re.M)
    assert wanted, result.stdout
    assert {"gcc", "libc6-dev"} <= set(wanted.group(1).split())
