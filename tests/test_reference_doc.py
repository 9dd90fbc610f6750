import errno
import json
from pathlib import Path

from fakecgfs.cgroupfs.cftypes import CFTYPES
from fakecgfs.controller import EventKind
from fakecgfs.teach import reference, tracedoc
from fakecgfs.teach.reference import render
from fakecgfs.trace import COMMON_FIELDS, SCHEMA

DOCS = Path(__file__).parent.parent / "docs"
DOC = DOCS / "files.md"


def test_files_md_is_up_to_date():
    assert DOC.read_text() == render(), f"run: {reference.GENERATOR}"


def test_trace_md_is_up_to_date():
    assert (DOCS / "trace.md").read_text() == tracedoc.render(), f"run: {tracedoc.GENERATOR}"


def test_every_control_file_has_an_entry():
    text = render()
    for cft in CFTYPES:
        assert (
            f"| `{cft.name}` | {cft.mode:04o} |" in text
            or f"| [`{cft.name}`](#{reference.anchor(cft.name)}) | {cft.mode:04o} |" in text
        )
        assert reference.entry(cft) in text


def test_every_entry_is_complete():
    for cft in CFTYPES:
        assert cft.doc and cft.fmt and cft.accepts, cft.name
        for name, when in cft.errors:
            assert hasattr(errno, name) and when, (cft.name, name)
        # A write that may wait says it can be interrupted.
        assert cft.blocking == any(name == "EINTR" for name, _ in cft.errors), cft.name
        if not cft.writable:
            assert not cft.errors and cft.accepts.startswith("nothing"), cft.name
        if cft.read is None:
            assert "EINVAL" in cft.fmt, cft.name


def test_every_event_kind_has_a_schema():
    assert set(SCHEMA) == set(EventKind)
    common = {name for name, _, _ in COMMON_FIELDS}
    for kind, schema in SCHEMA.items():
        example = schema.example
        assert example["kind"] == kind.value
        fields = {name for name, _, _ in schema.fields}
        assert set(example) - common <= fields, kind
        json.dumps(example)
