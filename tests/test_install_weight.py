"""What `pip install fakecgfs` costs: the filesystem, the CLI, mount.fakecgfs, the fixture and
the shell helpers, in less than 30 MB over a fresh venv; matplotlib only with the [plot] extra.

Slow-ish (a venv and a pip install, half a minute or more on a loaded machine), and in the
suite on purpose: a heavy dependency creeping back in fails here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 30 * 1000 * 1000  # bytes pip install . may add to a fresh venv


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                total += os.lstat(full).st_size
    return total


@pytest.mark.timeout(600)
def test_pip_install_is_light(tmp_path):
    source = tmp_path / "source"  # pip builds in the tree it is given: not in the checkout
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "*.egg-info", "__pycache__", ".pytest_cache", "tests", "bench"
        ),
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    before = _size(venv)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", str(source)],
                             capture_output=True, text=True, timeout=500)  # fmt: skip
    if install.returncode and "No matching distribution" in install.stderr:
        pytest.skip(f"no package index reachable: {install.stderr[-300:]}")
    assert install.returncode == 0, install.stderr
    added = _size(venv) - before
    assert added < BUDGET, f"pip install . added {added / 1e6:.1f} MB"

    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, timeout=120).stdout.lower()  # fmt: skip
    for heavy in ("matplotlib", "numpy", "pillow"):
        assert f"\n{heavy}==" not in "\n" + listed

    fakecgfs = venv / "bin" / "fakecgfs"
    assert (venv / "bin" / "mount.fakecgfs").exists()
    assert subprocess.run([str(fakecgfs), "--version"], capture_output=True, text=True,
                          timeout=60).stdout.startswith("fakecgfs ")  # fmt: skip
    shell_lib = subprocess.run([str(fakecgfs), "shell-lib"], capture_output=True, text=True,
                               timeout=60).stdout.strip()  # fmt: skip
    assert Path(shell_lib).is_file()
    assert subprocess.run([str(python), "-c", "import fakecgfs.testing  # the fixture's kit"],
                          timeout=60).returncode == 0  # fmt: skip
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"time": 1.0, "group": "/a", "kind": "group", "action": "created"}\n')
    plot = subprocess.run([str(fakecgfs), "plot", str(trace)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert plot.returncode == 1
    assert "pip install 'fakecgfs[plot]'" in plot.stderr
