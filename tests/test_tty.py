"""Colour and redrawing only where they belong: on a terminal, never with NO_COLOR or
TERM=dumb (fakecgfs.tty), as `top`, `wait` and the demo use them."""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakecgfs import linux
from fakecgfs.testing import fuse_unavailable_reason
from fakecgfs.tty import Progress, can_redraw, wants_colour

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ESC = b"\x1b"
needs_fuse = pytest.mark.skipif(fuse_unavailable_reason() is not None, reason="FUSE unavailable")


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize("tty, env, colour", [
    (True, {"TERM": "xterm-256color"}, True),
    (False, {"TERM": "xterm-256color"}, False),            # a pipe or a file
    (True, {"TERM": "xterm", "NO_COLOR": "1"}, False),
    (True, {"TERM": "xterm", "NO_COLOR": ""}, True),        # no-color.org: set and not empty
    (True, {"TERM": "dumb"}, False),
    (True, {}, False),                                      # no TERM: assume nothing
])  # fmt: skip
def test_colour_decision(tty, env, colour):
    assert wants_colour(FakeStream(tty), env) is colour


def test_redraw_decision():
    assert can_redraw(FakeStream(True), {"TERM": "xterm", "NO_COLOR": "1"})  # plain, but can
    assert not can_redraw(FakeStream(True), {"TERM": "dumb"})
    assert not can_redraw(FakeStream(False), {"TERM": "xterm"})


def test_progress_only_after_a_second_and_erased(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    stream = FakeStream(True)
    with Progress(stream, "waiting", after=0.0) as progress:
        assert progress.show(lambda: "task running") is False
    assert stream.getvalue().startswith("\r\x1b[Kwaiting: task running (0s)")
    assert stream.getvalue().endswith("\r\x1b[K")
    quiet = FakeStream(True)
    with Progress(quiet, "waiting") as progress:  # the first second: nothing
        progress.show(lambda: pytest.fail("state read although nothing is shown"))
    assert quiet.getvalue() == ""
    piped = FakeStream(False)
    with Progress(piped, "waiting", after=0.0) as progress:
        progress.show(lambda: "x")
    assert piped.getvalue() == ""


def run_on_pty(
    argv: list[str], env: dict[str, str], *, until: bytes | None = None, timeout: float = 60
) -> bytes:
    """Run ``argv`` with stdout and stderr on a pseudo terminal; its output.  With ``until``,
    stop it (SIGINT, as Ctrl-C) once the output contains it three times."""
    master, slave = pty.openpty()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                               env=env)  # fmt: skip
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if until is not None and output.count(until) >= 3:
                pidfd = linux.pidfd_open(process.pid)
                try:
                    linux.pidfd_send_signal(pidfd, signal.SIGINT)
                finally:
                    os.close(pidfd)
                until = None
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other side closed
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        os.close(master)
    return output


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    return {**env, **extra}


@needs_fuse
@pytest.mark.parametrize("env, colour", [({"TERM": "xterm-256color"}, True),
                                         ({"TERM": "xterm-256color", "NO_COLOR": "1"}, False),
                                         ({"TERM": "dumb"}, False)])  # fmt: skip
def test_top_once_colours_only_where_wanted(mnt, env, colour):
    mnt.mkgroup("g", limit="64M", high="48M", low="32M")
    out = run_on_pty([str(BIN / "fakecgfs"), "top", str(mnt.path), "--once", "--width", "100"],
                     _env(**env))  # fmt: skip
    assert b"/g" in out
    assert (ESC in out) is colour, out[:300]
    piped = subprocess.run([str(BIN / "fakecgfs"), "top", str(mnt.path), "--once"],
                           capture_output=True, env=_env(TERM="xterm"), timeout=60)  # fmt: skip
    assert b"/g" in piped.stdout and ESC not in piped.stdout


@needs_fuse
def test_live_top_under_term_dumb_prints_plain_frames(mnt):
    mnt.mkgroup("g", limit="64M")
    out = run_on_pty([str(BIN / "fakecgfs"), "top", str(mnt.path), "--interval", "0.05"],
                     _env(TERM="dumb"), until=b"fakecgfs top ")  # fmt: skip
    assert out.count(b"fakecgfs top ") >= 3  # one frame after another...
    assert ESC not in out and b"\r" not in out.replace(b"\r\n", b"")  # ...never redrawn
    assert out.count(b"/g ") >= 3


@needs_fuse
def test_wait_shows_progress_on_a_terminal_only(mount_factory):
    mount = mount_factory("--reclaim-rate", "8M")
    g = mount.mkgroup("g", limit="64M", high="48M", low="32M")
    mount.charge("g", "60M", "file")  # 28M to reclaim at 8M/s: a few seconds
    out = run_on_pty([str(BIN / "fakecgfs"), "wait", str(g), "--timeout", "60"],
                     _env(TERM="xterm"))  # fmt: skip
    assert f"waiting for {g} to settle: task running".encode() in out
    assert out.endswith(b"\r\x1b[K")  # erased at the end
    mount.charge("g", "24M", "file")
    dumb = run_on_pty([str(BIN / "fakecgfs"), "wait", str(g), "--timeout", "60"],
                      _env(TERM="dumb"))  # fmt: skip
    assert dumb == b""


@needs_fuse
def test_expect_with_a_timeout_shows_progress_on_a_terminal(mount_factory):
    mount = mount_factory("--reclaim-rate", "8M")
    g = mount.mkgroup("g", limit="64M", high="48M", low="32M")
    mount.charge("g", "60M", "file")
    out = run_on_pty([str(BIN / "fakecgfs"), "expect", str(g / "memory.usage_in_bytes"),
                      "--at-most", "32M", "--timeout", "60"], _env(TERM="xterm"))  # fmt: skip
    assert f"waiting for {g}/memory.usage_in_bytes: got ".encode() in out
    assert b", want at most 33554432" in out and out.endswith(b"\r\x1b[K")


@needs_fuse
@pytest.mark.timeout(240)
def test_demo_into_a_pipe_has_no_colour(tmp_path):
    help_text = subprocess.run([str(ROOT / "scripts" / "demo"), "--help"], capture_output=True,
                               text=True, timeout=60)  # fmt: skip
    assert help_text.returncode == 0 and help_text.stdout.startswith("usage: ./scripts/demo ")
    assert "--reclaim-rate RATE" in help_text.stdout
    result = subprocess.run([str(ROOT / "scripts" / "demo"), "--plot", str(tmp_path / "d.png")],
                            capture_output=True, env=_env(TERM="xterm-256color"),
                            timeout=230)  # fmt: skip
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert ESC not in result.stdout and ESC not in result.stderr
    assert b"# 1. Mount a fake v1 memory hierarchy" in result.stdout
    assert (tmp_path / "d.png").exists()
