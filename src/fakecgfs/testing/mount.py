"""A real FUSE mount in a directory, served by a child process, always unmounted afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import mounting
from ..mounting import fuse_unavailable_reason as fuse_unavailable_reason  # re-exported

Size = int | str  # bytes, or text the kernel parses: "64M", "0x1000", "-1"


@dataclass
class FakecgfsMount:
    path: Path  # the mount point
    process: subprocess.Popen  # the server, `fakecgfs mount --foreground`
    log: Path  # the server's stdout and stderr
    trace: Path | None = None  # the JSON-lines event trace, if mounted with one

    def group(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    def _dir(self, group: str | os.PathLike) -> Path:
        """A group given as "web/app", "/web/app" (from the mount's root) or a path in the
        mount."""
        path = Path(group)
        if path.is_absolute() and path.is_relative_to(self.path):
            return path
        return self.path.joinpath(str(group).lstrip("/"))

    # -- set up ---------------------------------------------------------------------------

    def mkgroup(
        self,
        group: str | os.PathLike,
        limit: Size | None = None,
        high: Size | None = None,
        low: Size | None = None,
    ) -> Path:
        """mkdir -p the group, then write its limit, high and low watermarks (in that order,
        each one write() as a shell's echo would); an OSError names the file and the errno."""
        path = self._dir(group)
        path.mkdir(parents=True, exist_ok=True)
        for name, value in (("memory.limit_in_bytes", limit),
                            ("memory.high_wmark_in_bytes", high),
                            ("memory.low_wmark_in_bytes", low)):  # fmt: skip
            if value is not None:
                self._write_file(path / name, f"{value}\n")
        return path

    def charge(
        self, group: str | os.PathLike, size: Size, kind: str = "anon", dirty: bool = False
    ) -> None:
        """Charge simulated memory to the group through fake.charge (kind "anon" or "file")."""
        words = [str(size), kind] + (["dirty"] if dirty else [])
        self._write_file(self._dir(group) / "fake.charge", " ".join(words))

    def uncharge(self, group: str | os.PathLike, size: Size, kind: str = "anon") -> None:
        """Free simulated memory of the group through fake.uncharge."""
        self._write_file(self._dir(group) / "fake.uncharge", f"{size} {kind}")

    # -- check ----------------------------------------------------------------------------

    def read_int(self, group: str | os.PathLike, name: str) -> int:
        return int((self._dir(group) / name).read_text())

    def usage(self, group: str | os.PathLike = "/") -> int:
        """memory.usage_in_bytes of the group."""
        return self.read_int(group, "memory.usage_in_bytes")

    def stat(self, group: str | os.PathLike = "/") -> dict[str, int]:
        """memory.stat of the group as a dict."""
        return _pairs((self._dir(group) / "memory.stat").read_text(), int)

    def daemon(self, group: str | os.PathLike = "/") -> dict[str, int | str]:
        """fake.reclaim_daemon (the group's reclaim task) as a dict, numbers as ints as in
        ``stat()`` ("passes" -> 3) and words as strings ("state" -> "sleeping", "last_warning")."""
        return _pairs((self._dir(group) / "fake.reclaim_daemon").read_text(), _int_or_str)

    def wait_settled(self, group: str | os.PathLike = "/", timeout: float = 30.0) -> None:
        """Return once the group's background reclaim task sleeps with nothing to do (it has
        reclaimed down to the low watermark, or usage never went above the high one) or is
        stopped, as `fakecgfs wait --settled`; TimeoutError if not within ``timeout`` s."""
        from ..cliutil import settled

        path = self._dir(group)
        if not mounting.wait_until(lambda: settled(str(path)), timeout, 0.01):
            reclaim_task = self.daemon(path)
            raise TimeoutError(f"{path}: reclaim not settled after {timeout}s (task "
                               f"{reclaim_task['state']}, usage {reclaim_task['usage']}, "
                               f"low watermark {reclaim_task['low_wmark']})")  # fmt: skip

    def events(self, kind: str | None = None, group: str | None = None) -> list[dict[str, Any]]:
        """The controller's events so far, from the trace: dicts with time, group ("/web"),
        kind (reclaim, daemon_state, charge_refused, oom, warning, group) and its values;
        optionally only those of one kind and/or group."""
        if self.trace is None:
            raise RuntimeError("this mount has no trace (mount it with trace=True)")
        try:
            text = self.trace.read_text()
        except FileNotFoundError:
            return []
        wanted_group = None if group is None else "/" + str(group).strip("/")
        result = []
        for line in text.splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # being written
            event = json.loads(line)
            if kind is not None and event["kind"] != kind:
                continue
            if wanted_group is not None and event["group"] != wanted_group:
                continue
            result.append(event)
        return result

    @staticmethod
    def _write_file(path: Path, text: str) -> None:
        """One write() of ``text``; an OSError names the file, the value and the errno."""
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError as e:
            if path.name.startswith("fake.") and path.parent.is_dir():
                why = e.strerror or os.strerror(e.errno or 0)  # strerror may be None
                e.strerror = f"{why} (a strict mount hides the fake.* files)"
            raise
        try:
            os.write(fd, text.encode())
        except OSError as e:
            raise OSError(e.errno, f"{os.strerror(e.errno or 0)}: write {text.strip()!r}",
                          str(path)) from None  # fmt: skip
        finally:
            os.close(fd)

    def read(self, *parts: str) -> str:
        return self.path.joinpath(*parts).read_text()

    def write(self, relpath: str, value: str | bytes) -> int:
        """One write() of ``value``, as the kernel wants it; raises OSError with the errno."""
        data = value.encode() if isinstance(value, str) else value
        fd = os.open(self.path / relpath, os.O_WRONLY)
        try:
            return os.write(fd, data)
        finally:
            os.close(fd)


def _int_or_str(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def _pairs(text: str, convert) -> dict:
    result = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        result[name] = convert(value)
    return result


@contextlib.contextmanager
def mounted(directory: Path, *options: str, trace: bool = False) -> Iterator[FakecgfsMount]:
    """Mount fakecgfs at ``directory``/mnt with extra ``options`` (and, with ``trace``, an
    event trace in ``directory``/trace.jsonl); unmount and reap the server on the way out,
    whatever happened."""
    directory = Path(directory)
    mountpoint = directory / "mnt"
    mountpoint.mkdir()
    log = directory / "server.log"
    trace_path = directory / "trace.jsonl" if trace else None
    if trace_path is not None:
        options += ("--trace", str(trace_path))
    with open(log, "wb") as log_file:
        process = mounting.start_server(str(mountpoint), options, log_file)
    try:
        if not mounting.wait_mounted(process, str(mountpoint)):
            raise RuntimeError(f"fakecgfs did not mount; server log:\n{log.read_text()}")
        yield FakecgfsMount(mountpoint, process, log, trace_path)
    finally:
        _teardown(mountpoint, process)


def _teardown(mountpoint: Path, process: subprocess.Popen) -> None:
    mounting.stop_server(process)
    mounting.detach_leftover(str(mountpoint))
