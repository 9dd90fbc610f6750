"""The README's command blocks and the tutorial's steps run against fresh mounts, their shown
outputs compared (tests/docs_runner.py): a change that makes a document wrong fails here."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from docs_runner import DocError, normalize, parse, run_document
from fakecgfs import mounting
from fakecgfs.mounts import mountpoints
from fakecgfs.testing import fuse_unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = {"README.md": ROOT, "docs/tutorial.md": None}  # document: where its shell starts


def _unmount_leftovers(tmp: Path) -> list[str]:
    """Mounts a failed walkthrough left under ``tmp``, detached (the servers stop)."""
    left = [m for m in mountpoints() if m.startswith(f"{tmp}/")]
    for mountpoint in left:
        subprocess.run([sys.executable, "-m", "fakecgfs", "umount", "--lazy", mountpoint],
                       capture_output=True, timeout=60)  # fmt: skip
        if mounting.is_fakecgfs_mount(mountpoint) or mounting.is_stale(mountpoint):
            mounting.unmount(mountpoint, lazy=True)
    return left


@pytest.mark.skipif(fuse_unavailable_reason() is not None, reason="FUSE unavailable")
@pytest.mark.timeout(600)
@pytest.mark.parametrize("document", sorted(DOCUMENTS))
def test_document_runs_as_written(document):
    tmp = Path(tempfile.mkdtemp(prefix="fakecgfs-docs-"))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    try:
        failures = run_document(ROOT / document, tmp, DOCUMENTS[document] or tmp, env)
    finally:
        left = _unmount_leftovers(tmp)
    assert not failures, f"{document}: " + "\n".join(map(str, failures))
    # The walkthrough leaves the mount (cd out) and unmounts it, as a reader must.
    assert left == [], f"{document} leaves mounted: {left}"
    subprocess.run(["rm", "-rf", str(tmp)], timeout=60)


def test_every_block_is_run_or_marked():
    for document in DOCUMENTS:
        blocks = parse((ROOT / document).read_text())
        assert blocks
        for block in blocks:
            assert block.steps or block.skip, f"{document}:{block.line}: an empty block"


def test_parser():
    blocks = parse(
        "text\n```console\n# echo a; echo b\na\nb\n# true\n```\n"
        "<!-- docs-runner: skip: a picture of a live view -->\n\n```\nanything\n```\n"
        "```sh\n# a comment\nmkdir x   # trailing\n\n```\n"
    )  # fmt: skip
    assert [(b.language, b.skip) for b in blocks] == [
        ("console", None),
        ("", "a picture of a live view"),
        ("sh", None),
    ]
    assert [(s.command, s.expected, s.line) for s in blocks[0].steps] == [
        ("echo a; echo b", ["a", "b"], 3),
        ("true", [], 6),
    ]
    assert [(s.command, s.expected) for s in blocks[2].steps] == [("mkdir x   # trailing", None)]
    with pytest.raises(DocError, match="neither run"):
        parse("```python\nprint()\n```\n")
    with pytest.raises(DocError, match="output before any command"):
        parse("```console\noops\n```\n")


def test_normalize():
    assert normalize(["bash: line 12: echo: write error: Invalid argument  ", "[1] 4242",
                      "fakecgfs: mounted at /tmp/m (server pid 77, log /tmp/fakecgfs-0-ab.log)",
                      "-rw-r--r-- 1 root root 0 Nov  6 07:34 f", ""]) == [
        "bash: echo: write error: Invalid argument",
        "fakecgfs: mounted at /tmp/m (server pid <pid>, log <log>)",
        "-rw-r--r-- 1 root root 0 <date> f"]  # fmt: skip


def test_runner_reports_wrong_outputs_and_failed_commands(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("```console\n# cd /tmp/here && pwd\n/tmp/here\n# echo hi\nbye\n"
                   "# echo 1MB > /nonexistent/file\nbash: /nonexistent/file: No such file or "
                   "directory\n```\n```sh\ntrue\nfalse   # fails\n```\n")  # fmt: skip
    (tmp_path / "here").mkdir()
    failures = run_document(doc, tmp_path, tmp_path, dict(os.environ))
    assert [(f.step.line, f.step.command) for f in failures] == [
        (4, "echo hi"),
        (11, "false   # fails"),
    ]
    assert "expected:\n  bye\ngot:\n  hi" in failures[0].message
    assert failures[1].message.startswith("exit status 1")
