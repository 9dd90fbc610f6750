"""The RFC era against kernel 6.18's recorded answers: every difference must be explained by
``fakecgfs.eras.rfc2008.conformance.DIFFERENCES``, every entry there must still explain one, and
name probes that exist.  The conformance tool is driven through its command line
(``fakecgfs conformance list|record|diff``), as a user would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fakecgfs.eras.rfc2008.conformance import DIFFERENCES, reason_for
from fakecgfs.testing import fuse_unavailable_reason, mounted

GOLDEN = Path(__file__).parent.parent / "golden" / "kernel-6.18.json"

pytestmark = pytest.mark.timeout(300)


def conformance(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fakecgfs", "conformance", *args],
                          capture_output=True, text=True, timeout=240)  # fmt: skip


@pytest.fixture(scope="module")
def probe_ids() -> list[str]:
    listed = conformance("list")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


@pytest.fixture(scope="module")
def differences(tmp_path_factory) -> tuple[list[str], dict]:
    reason = fuse_unavailable_reason()
    if reason:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("rfc-conformance")
    out = directory / "rfc.json"
    with mounted(directory, "--strict", "--era", "rfc-2008") as mnt:
        recorded = conformance("record", str(mnt.path), "-o", str(out))
    assert recorded.returncode in (0, 2), recorded.stderr  # 2: something was left behind
    diffed = conformance("diff", str(GOLDEN), str(out))
    ids = re.findall(r"(?m)^DIFF (.*)$", diffed.stdout)
    assert ids, diffed.stdout[-2000:]
    return ids, json.loads(out.read_text())


def test_every_entry_names_probes_that_exist(probe_ids):
    for prefix, reason in DIFFERENCES:
        assert reason and any(i.startswith(prefix) for i in probe_ids), prefix


def test_every_difference_from_the_kernel_is_explained(differences):
    ids, _ = differences
    unexplained = [i for i in ids if reason_for(i) is None]
    assert not unexplained, unexplained


def test_every_entry_still_explains_a_difference(differences):
    ids, _ = differences
    stale = [prefix for prefix, _ in DIFFERENCES if not any(i.startswith(prefix) for i in ids)]
    assert not stale, f"no longer different, remove: {stale}"


def test_only_the_writer_attached_by_0x7fffffff_is_left_behind(differences):
    """2.6.26 reads "0x7fffffff" with sscanf("%d") as 0, which names the writer: the recording
    process sits in that probe's group until it exits, so the group and the tool's base group
    cannot be removed (nothing is done to the process: it is a fake)."""
    _, recording = differences
    leftovers = set(recording["meta"]["leftovers"])
    assert len(leftovers) == 2
    assert sum(1 for path in leftovers if Path(path).name.startswith("fakecgfs-conformance-")) == 1
    answer = next(p["answer"] for p in recording["probes"] if p["id"] == "write/tasks/0x7fffffff")
    assert answer["write"] == len("0x7fffffff") and answer["tasks"].strip().isdigit()
