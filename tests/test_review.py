"""``fakecgfs review`` against docs/review-lesson.md: every output line the lesson shows must be
what the command prints, and the timing-dependent values (shown with a ``~``) must meet the
lesson's stated conditions.  The command mounts both eras itself, so this needs FUSE."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fakecgfs.testing import fuse_unavailable_reason

LESSON = Path(__file__).parent.parent / "docs" / "review-lesson.md"
STEPS = 9
MEASURED = re.compile(r"~\d+(?:\.\d+)?")
STEP_HEADER = re.compile(r"(?m)^(?=== step \d+/\d+:)")

pytestmark = pytest.mark.timeout(300)


def review(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fakecgfs", "review", "--no-pause", *args],
                          capture_output=True, text=True, timeout=240, cwd=cwd)  # fmt: skip


def split_steps(text: str) -> dict[int, list[str]]:
    """Step number -> the lines of its output, trailing blank lines dropped."""
    steps = {}
    for chunk in STEP_HEADER.split(text):
        match = re.match(r"== step (\d+)/", chunk)
        if match:
            steps[int(match.group(1))] = chunk.rstrip("\n").splitlines()
    return steps


def lesson_blocks() -> dict[int, list[str]]:
    blocks = re.findall(r"```text\n(.*?)```", LESSON.read_text(), re.S)
    return split_steps("".join(b for b in blocks if b.startswith("== step")))


def normalized(lines: list[str]) -> list[str]:
    return [MEASURED.sub("~N", line.rstrip()) for line in lines]


@pytest.fixture(scope="module")
def run_all(tmp_path_factory):
    reason = fuse_unavailable_reason()
    if reason:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("review")
    done = review("--all", "--plot", str(directory / "review.png"), cwd=directory)
    assert done.returncode == 0, done.stderr
    return done.stdout, directory / "review.png"


def test_the_lesson_shows_every_step():
    assert sorted(lesson_blocks()) == list(range(1, STEPS + 1))


@pytest.mark.parametrize("number", range(1, STEPS + 1))
def test_the_lessons_shown_output_is_what_review_prints(run_all, number):
    printed = split_steps(run_all[0])[number]
    assert normalized(printed) == normalized(lesson_blocks()[number])


def _measurements(lines: list[str]) -> list[tuple[str, float, float, str]]:
    """(mount, passes/s, CPU s per s, state) of every "(watching both tasks" block."""
    found = []
    pattern = re.compile(r"^\s+(as posted|repaired):\s+~?([\d.]+) passes/s, ~?([\d.]+) s CPU "
                         r"per s, state (\w+)$")  # fmt: skip
    for line in lines:
        match = pattern.match(line)
        if match:
            found.append((match[1], float(match[2]), float(match[3]), match[4]))
    return found


def test_the_yield_loop_burns_a_cpu_and_the_repaired_task_does_not(run_all):
    first_posted, first_repaired, then_posted, then_repaired = _measurements(
        split_steps(run_all[0])[7]
    )
    for mount, rate, cpu, state in (first_posted, then_posted):
        assert (mount, state) == ("as posted", "running")
        assert rate >= 20 and cpu >= 0.5
    assert first_repaired == ("repaired", 0.0, 0.0, "sleeping")
    mount, rate, cpu, state = then_repaired
    assert state == "backoff" and rate <= 10 and cpu <= 0.1


def test_the_plot_is_drawn(run_all):
    assert run_all[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_step_alone_makes_what_it_looks_at_first(tmp_path):
    if fuse_unavailable_reason():
        pytest.skip(fuse_unavailable_reason())
    done = review("--step", "5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert normalized(split_steps(done.stdout)[5]) == normalized(lesson_blocks()[5])


def test_a_step_out_of_range_is_refused(tmp_path):
    done = review("--step", str(STEPS + 1), cwd=tmp_path)
    assert done.returncode == 2 and "steps are 1 to 9" in done.stderr
