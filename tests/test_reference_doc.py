from pathlib import Path

from fakecgfs.cgroupfs.cftypes import CFTYPES
from fakecgfs.teach.reference import render

DOC = Path(__file__).parent.parent / "docs" / "files.md"


def test_files_md_is_up_to_date():
    assert DOC.read_text() == render(), "run: python -m fakecgfs.teach.reference > docs/files.md"


def test_every_control_file_has_an_entry():
    text = render()
    for cft in CFTYPES:
        assert f"| `{cft.name}` | {cft.mode:04o} |" in text
