"""A probe family: one kind of probe over the cases of its axes, and its expansion into the
fixed, ordered list of probes that record() runs."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .context import Ctx

Row = tuple[Any, ...]
"""One case of an axis: its label (a component of the probe id), then the values it passes."""

Flag = bool | Callable[..., bool]
"""A probe flag: fixed, or decided from the case's values."""


def each(values: Iterable[Any], label: Callable[[Any], str] = str) -> tuple[Row, ...]:
    """An axis whose values are their own labels (file names), or labelled by ``label``."""
    return tuple((label(value), value) for value in values)


def octal(mode: int) -> str:
    return f"{mode:04o}"


@dataclass(frozen=True)
class Probe:
    id: str
    fn: Callable[[Ctx], Any]
    machine_dependent: bool = False
    fakecgfs_only: bool = False
    compare_with: str | None = None


class Family:
    """Probes ``run(ctx, *values, *args)``, one per combination of the axes' rows (the first
    axis outermost); the id is ``id`` formatted with the rows' labels."""

    def __init__(self, id: str, run: Callable[..., Any], *axes: Sequence[Row],
                 args: tuple[Any, ...] = (), machine_dependent: Flag = False,
                 fakecgfs_only: Flag = False, compare_with: str | None = None) -> None:  # fmt: skip
        self.id, self.run, self.axes, self.args = id, run, axes, args
        self.machine_dependent, self.fakecgfs_only = machine_dependent, fakecgfs_only
        self.compare_with = compare_with

    def probes(self) -> Iterator[Probe]:
        for rows in itertools.product(*self.axes):
            labels = [row[0] for row in rows]
            values = tuple(value for row in rows for value in row[1:])
            run = functools.partial(_call, self.run, values + self.args)
            compare_with = self.compare_with.format(*labels) if self.compare_with else None
            yield Probe(self.id.format(*labels), run,
                        machine_dependent=_decide(self.machine_dependent, values),
                        fakecgfs_only=_decide(self.fakecgfs_only, values),
                        compare_with=compare_with)  # fmt: skip


def _call(run: Callable[..., Any], case: Row, ctx: Ctx) -> Any:
    return run(ctx, *case)


def _decide(flag: Flag, values: Row) -> bool:
    return flag(*values) if callable(flag) else flag


def expand(families: Iterable[Family]) -> list[Probe]:
    probes = [probe for family in families for probe in family.probes()]
    ids = [probe.id for probe in probes]
    duplicates = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    assert not duplicates, f"duplicate probe ids: {duplicates}"
    return probes
