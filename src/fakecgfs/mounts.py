"""Every fakecgfs mount of this mount namespace, their servers, the dead ones, and who keeps a
mount busy (as ``fuser -m`` finds them: working directories and open files under it)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from . import mounting

FSTYPE = "fuse.fakecgfs"


PROBE_TIMEOUT = 2.0
"""Seconds to wait for a mount without a known server to answer statfs: a stopped or stuck
server never answers, and listing must not hang with it."""


@dataclass(frozen=True)
class Mount:
    mountpoint: str
    server: int | None  # the serving process, if one is found
    stale: bool  # its server is gone: every request fails with ENOTCONN
    answering: bool = True  # False: no server found and statfs got no answer in time

    @property
    def state(self) -> str:
        if self.stale:
            return "stale (server gone; fakecgfs list --clean detaches it)"
        if not self.answering:
            return f"not answering (no server found, statfs waited {PROBE_TIMEOUT:g}s)"
        return "live" if self.server is not None else "live (server not found)"


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mountpoints() -> list[str]:
    """The mount points of every fakecgfs mount, in mount order."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            try:
                fstype = fields[fields.index("-") + 1]
            except (ValueError, IndexError):
                continue
            if fstype == FSTYPE:
                found.append(_unescape(fields[4]))
    return found


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _server_by_cmdline(mountpoint: str) -> int | None:
    """A `fakecgfs mount --foreground MOUNTPOINT` process (a background mount's server, the
    test kit's), its relative path resolved against its working directory."""
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode("utf-8", "surrogateescape") for a in f.read().split(b"\0")]
            if "mount" not in argv or not ("--foreground" in argv or "-f" in argv):
                continue
            if not any(a.endswith("fakecgfs") or a == "fakecgfs.cli" for a in argv):
                continue
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if any(os.path.normpath(os.path.join(cwd, a)) == mountpoint for a in argv[1:]):
            return pid
    return None


def _probe(mountpoint: str) -> bool | None:
    """Is the mount stale (statfs fails with ENOTCONN)?  None if it did not answer within
    PROBE_TIMEOUT: asked from a daemon thread, which a server that never answers leaves
    blocked (a fatal signal or the exit of this process ends the request)."""
    answer: list[bool] = []
    thread = threading.Thread(target=lambda: answer.append(mounting.is_stale(mountpoint)),
                              name=f"statfs {mountpoint}", daemon=True)  # fmt: skip
    thread.start()
    thread.join(PROBE_TIMEOUT)
    return answer[0] if answer else None


def _proven_server(mountpoint: str) -> int | None:
    """The pid of the server its pid file names, if runtime.find_server() proves it (a pid
    file's pid may have been reused)."""
    from . import runtime

    server, _ = runtime.find_server(mountpoint)
    if server is None:
        return None
    try:
        return server.pid
    finally:
        server.close()


def list_mounts(only: list[str] | None = None) -> list[Mount]:
    """The fakecgfs mounts (or only those at the paths ``only``).  A mount whose server is
    found is live without asking it anything; the others are asked a statfs, bounded."""
    wanted = None if only is None else {os.path.realpath(p) for p in only}
    result = []
    for mountpoint in mountpoints():
        if wanted is not None and mountpoint not in wanted:
            continue
        server = _proven_server(mountpoint) or _server_by_cmdline(mountpoint)
        if server is not None:
            result.append(Mount(mountpoint, server, stale=False))
            continue
        stale = _probe(mountpoint)
        result.append(Mount(mountpoint, None, stale=bool(stale), answering=stale is not None))
    return result


def clean_stale(only: list[str] | None = None) -> list[str]:
    """Detach every stale fakecgfs mount (or only those at the paths ``only``); the cleared
    mount points."""
    cleared = []
    for mount in list_mounts(only):
        if mount.stale:
            mounting.unmount(mount.mountpoint, lazy=True)
            cleared.append(mount.mountpoint)
    return cleared


# -- who keeps a mount busy -----------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    what: str  # "working directory", "root directory" or "open file PATH"

    def __str__(self) -> str:
        return f"process {self.pid} ({self.command}): {self.what}"


def _inside(path: str, mountpoint: str) -> bool:
    return path == mountpoint or path.startswith(mountpoint.rstrip("/") + "/")


def holders(mountpoint: str) -> list[Holder]:
    """The processes whose working directory, root or open files are under ``mountpoint``
    (what makes umount fail with EBUSY), as ``fuser -m`` finds them; reading the links does
    not reach the filesystem, so this works on a mount whose server is gone too."""
    mountpoint = os.path.realpath(mountpoint)
    found = []
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
                command = f.read().strip()
        except OSError:
            continue
        whats = []
        for link, what in (("cwd", "working directory"), ("root", "root directory")):
            try:
                if _inside(os.readlink(f"/proc/{pid}/{link}"), mountpoint):
                    whats.append(f"{what} inside")
            except OSError:
                pass
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            fds = []
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if _inside(target, mountpoint):
                whats.append(f"open file {target}")
        found += [Holder(pid, command, what) for what in whats]
    return found


def busy_message(mountpoint: str, error: OSError) -> str:
    """Why an unmount failed, naming the processes that keep the mount busy."""
    found = holders(mountpoint)
    if not found:
        return f"{error} (--lazy stops the server anyway)"
    listed = "\n  ".join(str(h) for h in found)
    return (
        f"{mountpoint}: busy, in use by:\n  {listed}\n"
        "cd out of it and close these files, or unmount with --lazy (stops the server "
        "anyway; open descriptors then fail with ENOTCONN)"
    )
