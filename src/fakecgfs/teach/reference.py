"""docs/files.md, generated from the control-file table: ``python -m fakecgfs.teach.reference``.

One entry per control file (mode, where it appears, origin, read format, accepted writes, its own
errors), all taken from ``fakecgfs.cgroupfs.cftypes.CFTYPES``; ``fakecgfs explain FILE`` prints
the same entry in a terminal.  tests/test_reference_doc.py fails when the committed page is stale.
"""

from __future__ import annotations

import difflib
import os
import sys
import textwrap

from ..cgroupfs.cftypes import BY_NAME, CFTYPES, CfType, Origin

GENERATOR = "python -m fakecgfs.teach.reference > docs/files.md"

HEADER = f"""\
# Control files

Generated from `src/fakecgfs/cgroupfs/cftypes.py` by `{GENERATOR}`;
do not edit by hand (a test fails when this page is stale). `fakecgfs explain FILE` prints one
entry in a terminal.

Modes follow the kernel's rule (a read handler gives 0444, a write handler 0200, both 0644).
What every file shares, as on the kernel:

* Writes are parsed one `write()` at a time (`echo` does one); the file offset is ignored.
* An empty write changes nothing; a NUL ends the value; a write over 4096 bytes is `E2BIG`.
* Reading a file without a read handler, or writing one without a write handler, is `EINVAL`
  (the open succeeds).
* Once its group is removed, an open file's reads and writes are `ENODEV`.

Origins: *kernel 6.18* files behave as measured on Linux 6.18 (see docs/differences.md for the
few known differences); the *2008 RFC* files are KAMEZAWA Hiroyuki's watermarks with the review's
defects repaired (see the README); *fakecgfs only* files (`fake.*`) drive and show the
simulation and are hidden by `mount --strict`.

"""

ORDER = {Origin.KERNEL: 0, Origin.VENDOR: 1, Origin.RFC: 2, Origin.FAKECGFS: 3}
TITLES = {
    Origin.KERNEL: "Files of the kernel 6.18 v1 memory controller",
    Origin.VENDOR: "A vendor file of the measured kernel",
    Origin.RFC: "The 2008 RFC's watermarks",
    Origin.FAKECGFS: "fakecgfs-only files",
}


def ordered() -> list[CfType]:
    return sorted(CFTYPES, key=lambda c: (ORDER[c.origin], c.name))


def anchor(name: str) -> str:
    """GitHub's heading anchor for ``### `name` ``."""
    return "".join(ch for ch in name.lower() if ch.isalnum() or ch in "-_ ").replace(" ", "-")


def summary_row(cft: CfType) -> str:
    return (f"| [`{cft.name}`](#{anchor(cft.name)}) | {cft.mode:04o} | {cft.where.value} "
            f"| {cft.origin.value} | {cft.doc} |")  # fmt: skip


def entry(cft: CfType) -> str:
    """One file's entry, in Markdown."""
    lines = [
        f"### `{cft.name}`",
        "",
        f"{cft.mode:04o} · {cft.where.value} · {cft.origin.value}",
        "",
        cft.doc,
        "",
        f"* **Read:** {_sentence(cft.fmt)}",
        f"* **Write:** {_sentence(cft.accepts)}",
    ]
    if cft.errors:
        lines.append("* **Errors:**")
        lines += [f"  * `{name}`: {when}." for name, when in cft.errors]
    return "\n".join(lines) + "\n"


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return "—"
    return text[0].upper() + text[1:]


def render() -> str:
    rows = ordered()
    table = ["| file | mode | where | origin | what it is |", "|---|---|---|---|---|"]
    table += [summary_row(c) for c in rows]
    sections = []
    current = None
    for cft in rows:
        if cft.origin is not current:
            current = cft.origin
            sections.append(f"## {TITLES[current]}\n")
        sections.append(entry(cft))
    return HEADER + "\n".join(table) + "\n\n" + "\n".join(sections)


# -- fakecgfs explain ------------------------------------------------------------------------


def lookup(name: str) -> CfType | None:
    """A control file by name, or by a path that ends in one (/sys/fs/cgroup/memory/x/tasks)."""
    return BY_NAME.get(os.path.basename(name.rstrip("/")))


def suggestions(name: str) -> list[str]:
    base = os.path.basename(name.rstrip("/"))
    names = [c.name for c in CFTYPES]
    close = difflib.get_close_matches(base, names, n=5, cutoff=0.5)
    return close or [n for n in names if base and base in n][:5]


def plain(cft: CfType, width: int = 80) -> str:
    """The entry for a terminal: Markdown's markup removed, paragraphs wrapped."""
    out = []
    for line in entry(cft).splitlines():
        text = line.replace("`", "").replace("**", "")
        if text.startswith("### "):
            out.append(text[4:])
            out.append("=" * len(text[4:]))
            continue
        indent = len(text) - len(text.lstrip(" "))
        if text.lstrip().startswith("* "):
            lead = " " * indent + "* "
            body = text.lstrip()[2:]
            hanging = " " * len(lead)
            out.append(textwrap.fill(body, width, initial_indent=lead, break_on_hyphens=False,
                                     subsequent_indent=hanging) if body else lead)  # fmt: skip
        elif text:
            out.append(textwrap.fill(text, width, break_on_hyphens=False))
        else:
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
