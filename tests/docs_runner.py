"""Run the command blocks of a Markdown document and compare the outputs it shows.

A document is a walkthrough: its blocks run in order in one bash session, so that ``cd``,
groups and mounts carry over from block to block as they do for a reader.

* ```` ```console ```` blocks: a line starting with ``# `` (root's prompt) or ``$ `` is a
  command; the lines after it, up to the next command, are its output, compared after the
  normalizations below.
* ```` ```sh ```` blocks: every line is a command; outputs are not shown, so not compared,
  but each command must succeed.
* Any other block, and a block not to run, carries a marker on the line before its fence,
  with the reason, so that nothing is skipped silently::

      <!-- docs-runner: skip: a snapshot of a live view -->

Paths under ``/tmp/`` are moved into a private temporary directory (and moved back in what
the commands print), so that a run touches nothing outside it.  Output goes to a pseudo
terminal 80 columns wide (``ls`` lays names out in columns, as on the reader's screen) with
``TERM=dumb`` and ``NO_COLOR`` (no escape sequences to compare).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

SKIP = re.compile(r"<!--\s*docs-runner:\s*skip:\s*(?P<reason>.+?)\s*-->")
FENCE = re.compile(r"^```(?P<language>\S*)\s*$")
PROMPT = re.compile(r"^[#$] ")
COLUMNS = 80
COMMAND_TIMEOUT = 90.0  # seconds; waits in the docs are bounded by their own --timeout
END = "\x1edocs-runner-end"  # an ASCII record separator: never in a command's output

NORMALIZE = [
    # A non-interactive bash names the script line in its messages; a reader's shell does not.
    (re.compile(r"^bash: line \d+: "), "bash: "),
    (re.compile(r"server pid \d+"), "server pid <pid>"),
    (re.compile(r"\blog /[^ )]+"), "log <log>"),  # where runtime files go is not the doc's
    # ls -l's modification time
    (
        re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d\b"),
        "<date>",
    ),
]
JOB_CONTROL = re.compile(r"^\[\d+\][+-]?\s+(\d+|Done.*|Running.*)$")
"""What an interactive shell prints for `&` and finished jobs; a script's shell does not."""


@dataclass
class Step:
    command: str
    expected: list[str] | None  # None: not compared (a ```sh block)
    line: int  # where the command is in the document


@dataclass
class Block:
    line: int
    language: str
    skip: str | None  # the reason given in the marker, if any
    steps: list[Step] = field(default_factory=list)


class DocError(Exception):
    pass


def parse(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, with their steps."""
    blocks: list[Block] = []
    lines = text.splitlines()
    previous = ""  # the last non-blank line outside a block
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        marker = SKIP.search(previous)
        block = Block(i + 1, match["language"], marker["reason"] if marker else None)
        i += 1
        body_start = i
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        if i == len(lines):
            raise DocError(f"line {block.line}: block never closed")
        block.steps = _steps(block, lines[body_start:i], body_start + 1)
        blocks.append(block)
        previous = ""
        i += 1
    return blocks


def _steps(block: Block, body: list[str], first_line: int) -> list[Step]:
    if block.skip is not None:
        return []
    if block.language == "sh":
        return [Step(line, None, first_line + n) for n, line in enumerate(body)
                if line.strip() and not line.lstrip().startswith("#")]  # fmt: skip
    if block.language == "console":
        steps: list[Step] = []
        for n, line in enumerate(body):
            if PROMPT.match(line):
                steps.append(Step(line[2:], [], first_line + n))
            elif not steps:
                raise DocError(f"line {first_line + n}: output before any command")
            else:
                steps[-1].expected.append(line)
        return steps
    raise DocError(f"line {block.line}: a ```{block.language} block is neither run "
                   "(console, sh) nor marked <!-- docs-runner: skip: REASON -->")  # fmt: skip


def normalize(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = line.expandtabs().rstrip()  # ls aligns its columns with tabs on a terminal
        if JOB_CONTROL.match(line):
            continue
        for pattern, replacement in NORMALIZE:
            line = pattern.sub(replacement, line)
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return out


class Shell:
    """One bash reading commands from a pipe, its output on a pseudo terminal."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST  # no \n -> \r\n
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        self._master = master
        self.process = subprocess.Popen(
            ["bash", "--norc", "--noprofile", "-s"], stdin=subprocess.PIPE, stdout=slave,
            stderr=slave, cwd=cwd, env=env, start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self._pending = b""

    def run(self, command: str, timeout: float = COMMAND_TIMEOUT) -> tuple[str, int]:
        """The command's output (stdout and stderr, as on a terminal) and exit status."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{{ {command}\n}} </dev/null\nprintf '{END} %d\\n' $?\n".encode())
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        marker = END.encode()
        while marker not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                raise TimeoutError(f"{command!r}: no end after {timeout:g}s; output so far:\n"
                                   + self._pending.decode(errors="replace"))  # fmt: skip
            ready, _, _ = select.select([self._master], [], [], min(left, 1.0))
            if ready:
                try:
                    self._pending += os.read(self._master, 65536)
                except OSError:  # EIO: the shell exited
                    continue
        output, _, rest = self._pending.partition(marker)
        status, _, self._pending = rest.partition(b"\n")
        return output.decode(errors="replace"), int(status)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        finally:
            os.close(self._master)


@dataclass
class Failure:
    step: Step
    message: str

    def __str__(self) -> str:
        return f"line {self.step.line}: # {self.step.command}\n{self.message}"


def run_document(path: Path, tmp: Path, cwd: Path, env: dict[str, str]) -> list[Failure]:
    """Run every step of ``path`` in one shell; every failure (after the first, what follows
    may fail because of it)."""
    shell = Shell(cwd, {**env, "TMPDIR": str(tmp), "TERM": "dumb", "NO_COLOR": "1",
                        "COLUMNS": str(COLUMNS)})  # fmt: skip
    failures = []
    try:
        for block in parse(path.read_text()):
            for step in block.steps:
                command = step.command.replace("/tmp/", f"{tmp}/")
                output, status = shell.run(command)
                actual = normalize(output.replace(f"{tmp}/", "/tmp/").splitlines())
                if step.expected is None:
                    if status != 0:
                        failures.append(Failure(step, f"exit status {status}:\n{output}"))
                    continue
                expected = normalize(step.expected)
                if actual != expected:
                    failures.append(Failure(step, "expected:\n  " + "\n  ".join(expected)
                                            + "\ngot:\n  " + "\n  ".join(actual)))  # fmt: skip
    finally:
        shell.close()
    return failures
