"""The performance targets of issues 6 and 19, checked against one run's results.

Information only: a MISS is printed, never raised; nothing in the test suite asserts a figure.
In a --quick run the sizes are not the targets' sizes (200 groups, 64 MiB), so its verdicts mean
nothing either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

MB = 1_000_000
MiB = 1 << 20


def _find(results: dict, section: str, *needles: str) -> tuple[str, dict] | None:
    """The first item of ``section`` whose name contains every needle."""
    for name, value in results.get(section, {}).items():
        if all(n in name for n in needles) and isinstance(value, dict):
            return name, value
    return None


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _ratio(label: str, op: str, cpus: str, limit: float) -> Callable[[dict], tuple | None]:
    def check(results: dict):
        found = _find(results, "fs", f"latency ({cpus}) {op}", "ratio to faster fusepy")
        if not found:
            return None
        ratio = found[1]["ratio"]
        return f"{label} ({cpus})", f"{_fmt(ratio)}x", f"<= {limit}x", ratio <= limit

    return check


def _throughput(kind: str) -> Iterator[Callable[[dict], tuple | None]]:
    def get(results: dict, mount: str) -> float | None:
        found = _find(results, "fs", f"throughput 8 {kind} / {mount}")
        return found[1]["median"] if found else None

    def vs_mt(results: dict):
        fake, mt = get(results, "fakecgfs"), get(results, "fusepy-mt")
        if fake is None or mt is None:
            return None
        return (
            f"8 concurrent readers ({kind}) vs fusepy-mt",
            f"{_fmt(fake)} vs {_fmt(mt)} ops/s",
            ">= fusepy-mt",
            fake >= mt,
        )

    def vs_nothreads(results: dict):
        fake, single = get(results, "fakecgfs"), get(results, "fusepy-nothreads")
        if fake is None or single is None:
            return None
        return (
            f"8 concurrent readers ({kind}) vs fusepy-nothreads",
            f"{_fmt(fake)} vs {_fmt(single)} ops/s",
            ">= half of fusepy-nothreads",
            fake >= single / 2,
        )

    yield vs_mt
    yield vs_nothreads


def _value(
    label: str,
    section: str,
    needles: tuple[str, ...],
    key: str,
    unit: str,
    limit: float,
    below: bool,
    scale: float = 1.0,
) -> Callable[[dict], tuple | None]:
    def check(results: dict):
        found = _find(results, section, *needles)
        if not found or key not in found[1]:
            return None
        x = found[1][key] * scale
        ok = x < limit if below else x >= limit
        return label, f"{_fmt(x)} {unit}", f"{'<' if below else '>='} {_fmt(limit)} {unit}", ok

    return check


def _rss_back(results: dict):
    found = _find(results, "scale", "server RSS 1 s after rmdir")
    if not found:
        return None
    pct = found[1]["vs_start_pct"]
    return (
        "RSS back near the start after removing all groups",
        f"{pct:+.1f}% of start",
        "within 10%",
        abs(pct) <= 10,
    )


CHECKS: list[Callable[[dict], tuple | None]] = [
    *(
        _ratio(f"read {f} open+read+close", f"read {f} (open+read+close)", cpus, 1.3)
        for cpus in ("1 CPU", "2 CPUs")
        for f in ("usage_in_bytes", "stat")
    ),
    *(
        _ratio("pread on a kept-open fd", "pread usage_in_bytes", cpus, 1.3)
        for cpus in ("1 CPU", "2 CPUs")
    ),
    *(
        _ratio("write limit_in_bytes open+write+close", "write limit_in_bytes", cpus, 2.0)
        for cpus in ("1 CPU", "2 CPUs")
    ),
    *_throughput("processes"),
    *_throughput("threads"),
    _value("mkdir rate", "scale", ("mkdir",), "value", "groups/s", 500, below=False),
    _value(
        "server RSS with all groups armed",
        "scale",
        ("server RSS with the groups armed",),
        "value",
        "MB",
        150.0001,
        below=True,
        scale=MiB / MB,
    ),
    _value(
        "server CPU over idle seconds with all tasks armed",
        "scale",
        ("server CPU idle",),
        "value",
        "% of a core",
        1,
        below=True,
    ),
    _rss_back,
    _value(
        "fake.charge of 1 GiB (one write)",
        "reclaim",
        ("fake.charge", "MiB file"),
        "median",
        "s",
        0.5,
        below=True,
        scale=1e-3,
    ),
    _value(
        "reclaim 1 GiB high->low at full speed (client)",
        "reclaim",
        ("high->low: charge write() return to settled",),
        "median",
        "s",
        1,
        below=True,
        scale=1e-3,
    ),
    _value(
        "wake-up latency, write() call to first pass (median)",
        "reclaim",
        ("wake-up: write() call to first background pass done",),
        "median",
        "ms",
        1,
        below=True,
        scale=1e-3,
    ),
    _value(
        "mount to first read (fakecgfs mount CLI)",
        "fs",
        ("mount time: fakecgfs mount (CLI): to_first_read",),
        "median",
        "s",
        1,
        below=True,
        scale=1e-3,
    ),
]


def _to_floor(
    label: str, key: str, floor: str, limit: float, at_least: bool = False
) -> Callable[[dict], tuple | None]:
    """Issue 19: a fakecgfs figure of section floor as a ratio to a floor's."""

    def check(results: dict):
        value = results.get("floor", {}).get(f"{key} / fakecgfs to {floor}")
        if not isinstance(value, dict):
            return None
        ratio = value["ratio"]
        ok = ratio >= limit if at_least else ratio <= limit
        return label, f"{_fmt(ratio)}x", f"{'>=' if at_least else '<='} {limit}x {floor}", ok

    return check


CHECKS += [
    *(
        _to_floor(f"{op} pinned, to C", f"pinned {op}", "C -s", 1.5)
        for op in ("open+read+close", "pread", "open+write+close")
    ),
    _to_floor("8 readers unpinned, to C MT", "unpinned 8 readers", "C MT", 0.8, at_least=True),
    *(
        _to_floor(f"server CPU per {op}, to C", f"server CPU per op, {op}", "C -s", 1.5)
        for op in ("open+read+close", "pread", "open+write+close")
    ),
]


def _members_read(results: dict):
    """Issue 19: a read of usage_in_bytes in a group of 10 members, against none."""
    members = results.get("members", {})
    with_ten = members.get("read usage_in_bytes, 10 members")
    without = members.get("read usage_in_bytes, 0 members")
    if not isinstance(with_ten, dict) or not isinstance(without, dict):
        return None
    ratio = with_ten["median"] / without["median"]
    return "read usage_in_bytes with 10 members, to none", f"{_fmt(ratio)}x", "<= 2x", ratio <= 2


CHECKS.append(_members_read)


def evaluate(results: dict) -> list[dict]:
    rows = []
    for check in CHECKS:
        row = check(results)
        if row is not None:
            target, measured, limit, ok = row
            rows.append(
                {
                    "target": target,
                    "measured": measured,
                    "limit": limit,
                    "result": "PASS" if ok else "MISS",
                }
            )
    return rows
