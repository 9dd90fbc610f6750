"""docs/trace.md, generated from the trace schema: ``python -m fakecgfs.teach.tracedoc``.

Every kind of ``fakecgfs.controller.EventKind`` has an entry in ``fakecgfs.trace.SCHEMA``;
tests/test_reference_doc.py fails when one is missing or the committed page is stale.
"""

from __future__ import annotations

import json
import sys

from ..controller import EventKind
from ..trace import COMMON_FIELDS, SAMPLE_INTERVAL, SCHEMA

GENERATOR = "python -m fakecgfs.teach.tracedoc > docs/trace.md"

HEADER = f"""\
# The event trace

Generated from `src/fakecgfs/trace.py` (the schema of each `EventKind`) by
`{GENERATOR}`; do not edit by hand (a test fails when this page is stale).

`fakecgfs mount MOUNTPOINT --trace FILE` appends what the simulated controller does to FILE, one
JSON object per line, flushed line by line (`tail -f FILE` follows it live). Nothing is written
without `--trace`. Besides the controller's own events, a sampler looks at every group every
`--trace-interval` seconds (default {SAMPLE_INTERVAL}) and writes a `sample` line for each group
whose usage, limit, watermarks, failcnt, OOM kills or reclaim task state changed since its last
sample: an idle mount writes nothing.

`fakecgfs plot FILE --group G -o out.png` draws one group from it. Each line is small enough
for `jq`:

```sh
jq -c 'select(.kind == "daemon_state")' trace.jsonl        # the task's wake-ups and sleeps
jq -s 'map(select(.kind == "reclaim" and .cause == "background")) | length' trace.jsonl
```

Sizes named `usage`, `limit`, `hwmark` and `lwmark` are in bytes; `pages` and `scanned` /
`reclaimed` are in 4096-byte pages.

## Fields of every line

| field | type | meaning |
|---|---|---|
"""


def render() -> str:
    out = [HEADER.rstrip("\n")]
    out += [f"| `{name}` | {kind} | {meaning} |" for name, kind, meaning in COMMON_FIELDS]
    out.append("")
    out.append("## Kinds")
    out.append("")
    out.append(" · ".join(f"[`{k.value}`](#{k.value})" for k in EventKind))
    out.append("")
    for kind in EventKind:
        schema = SCHEMA[kind]
        out.append(f"### {kind.value}")
        out.append("")
        out.append(schema.summary)
        out.append("")
        out.append("| field | type | meaning |")
        out.append("|---|---|---|")
        out += [f"| `{name}` | {typ} | {meaning} |" for name, typ, meaning in schema.fields]
        out.append("")
        out.append("```json")
        out.append(json.dumps(schema.example, separators=(",", ":")))
        out.append("```")
        out.append("")
    return "\n".join(out)


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
