"""fakecgfs against the kernel's recorded answers (tests/golden/kernel-6.18.json).

Every difference must be a known, explained one (tests/golden/known-differences.json, also
described in docs/differences.md): a new difference fails, and so does a fixed one that is still
listed.  No kernel memcg is needed: the golden file was recorded once on a live 6.18 kernel.
"""

import json
from pathlib import Path

import pytest

from fakecgfs import conformance

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    from fakecgfs.testing import fuse_unavailable_reason, mounted

    reason = fuse_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with mounted(tmp_path_factory.mktemp("conformance"), "--strict") as mnt:
        return conformance.record(str(mnt.path))


def test_every_difference_from_the_kernel_is_known_and_explained(recording):
    golden = json.loads((GOLDEN / "kernel-6.18.json").read_text())
    known = json.loads((GOLDEN / "known-differences.json").read_text())
    found = {d.id: d.render() for d in conformance.diff(golden, recording)}
    unexpected = sorted(set(found) - set(known))
    fixed = sorted(set(known) - set(found))
    new = "\n".join(found[i] for i in unexpected)
    assert not unexpected, "new differences from the kernel:\n" + new
    assert not fixed, f"no longer different, remove from known-differences.json: {fixed}"
    assert recording["meta"]["leftovers"] == []


def test_watermark_files_parse_like_the_kernels_limit_file(tmp_path_factory):
    """The RFC's files have no kernel answer; they must answer as limit_in_bytes does."""
    from fakecgfs.testing import fuse_unavailable_reason, mounted

    reason = fuse_unavailable_reason()
    if reason:
        pytest.skip(reason)
    golden = json.loads((GOLDEN / "kernel-6.18.json").read_text())
    with mounted(tmp_path_factory.mktemp("wmark")) as mnt:
        new = conformance.record(str(mnt.path), only="write/memory.")
    differences = conformance.diff_compare_with(golden, new)
    assert differences == [], "\n".join(d.render() for d in differences)


def test_known_differences_are_documented():
    known = json.loads((GOLDEN / "known-differences.json").read_text())
    doc = (Path(__file__).parent.parent / "docs" / "differences.md").read_text()
    for reason in set(known.values()):
        assert reason in doc, reason
