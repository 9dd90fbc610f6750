"""cgroup.event_control with real eventfds, through a mount, from a separate listener process.

The listener is examples/listener/cgroup_event_listener.py, written the way the kernel's
documentation describes: it must work unchanged against fakecgfs.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import write

LISTENER = Path(__file__).parents[2] / "examples" / "listener" / "cgroup_event_listener.py"
TIMEOUT = 10


class Listener:
    def __init__(self, group: Path, control: str, args: str = "", count: int = 1) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(LISTENER), str(group), control, args, "--count", str(count)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.process.stdout.readline()
        assert line == "registered\n", self.process.stderr.read()

    def events(self) -> list[int]:
        """Wait for the listener to see all its events; the counts it read."""
        out, err = self.process.communicate(timeout=TIMEOUT)
        assert self.process.returncode == 0, err
        return [int(v) for v in out.split()]

    def next_event(self) -> int:
        """Wait for the listener's next read of its eventfd; the count it read.  A caller that
        acts between two reads sees each signal apart: an eventfd adds up the signals that
        arrive before a read."""
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read()
        return int(line)

    def blocked(self) -> bool:
        try:
            self.process.wait(0.3)
        except subprocess.TimeoutExpired:
            return True
        return False

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def listeners():
    made: list[Listener] = []

    def make(*args, **kwargs) -> Listener:
        made.append(Listener(*args, **kwargs))
        return made[-1]

    yield make
    for listener in made:
        listener.kill()


def test_usage_threshold_fires_on_crossing_both_ways(mnt, listeners):
    g = mnt.group("g")
    g.mkdir()
    listener = listeners(g, "memory.usage_in_bytes", "8M", count=2)
    write(g / "fake.charge", "4M")
    assert listener.blocked()  # below the threshold: nothing yet
    write(g / "fake.charge", "8M")  # 12M: up through 8M
    assert listener.next_event() == 1
    write(g / "fake.uncharge", "8M")  # 4M: down through 8M
    assert listener.events() == [1]


def test_memsw_threshold(mnt, listeners):
    g = mnt.group("g")
    g.mkdir()
    listener = listeners(g, "memory.memsw.usage_in_bytes", "1M")
    write(g / "fake.charge", "2M file")
    assert listener.events() == [1]


def test_oom_fires_when_the_group_runs_out(mnt, listeners):
    g = mnt.group("g")
    g.mkdir()
    write(g / "memory.limit_in_bytes", "4M")
    listener = listeners(g, "memory.oom_control")
    with pytest.raises(OSError) as e:
        write(g / "fake.charge", "8M")
    assert e.value.errno == errno.ENOMEM
    assert listener.events() == [1]


def test_oom_fires_for_a_charge_that_waits(mnt, listeners):
    g = mnt.group("g")
    g.mkdir()
    write(g / "memory.limit_in_bytes", "4M")
    write(g / "memory.oom_control", "1")
    listener = listeners(g, "memory.oom_control")
    charger = subprocess.Popen(["sh", "-c", f"echo 8M > {g}/fake.charge"])
    try:
        assert listener.events() == [1]
        assert "under_oom 1" in (g / "memory.oom_control").read_text()
        write(g / "memory.limit_in_bytes", "16M")
        assert charger.wait(TIMEOUT) == 0
    finally:
        charger.kill()
        charger.wait()


def test_pressure_levels_follow_reclaim_effort(mnt, listeners):
    """Dirty page cache is written back, not freed, when first scanned: reclaim that scans
    much and frees little is medium pressure (85% unfreed in the first window here)."""
    g = mnt.group("g")
    g.mkdir()
    write(g / "memory.limit_in_bytes", "8M")
    medium = listeners(g, "memory.pressure_level", "medium")
    low = listeners(g, "memory.pressure_level", "low,local")
    critical = listeners(g, "memory.pressure_level", "critical")
    write(g / "fake.charge", "8M file dirty")
    write(g / "fake.charge", "4M file")  # over the limit: direct reclaim meets dirty pages
    [medium_count] = medium.events()
    [low_count] = low.events()  # several windows may have been judged before it read
    assert medium_count >= 1 and low_count >= medium_count  # a low listener hears every level
    assert critical.blocked()


def test_clean_page_cache_reclaim_is_low_pressure_only(mnt, listeners):
    g = mnt.group("g")
    g.mkdir()
    write(g / "memory.limit_in_bytes", "8M")
    low = listeners(g, "memory.pressure_level", "low")
    medium = listeners(g, "memory.pressure_level", "medium")
    write(g / "fake.charge", "16M file")
    assert low.events()[0] >= 1
    assert medium.blocked()


def test_high_watermark_registration_fires_when_reclaim_starts_and_ends(mount_factory, listeners):
    mnt = mount_factory("--reclaim-rate", "8M")  # ~1 s of reclaim between the two events
    g = mnt.group("g")
    g.mkdir()
    write(g / "memory.high_wmark_in_bytes", "8M")
    write(g / "memory.low_wmark_in_bytes", "4M")
    listener = listeners(g, "memory.high_wmark_in_bytes", count=2)
    write(g / "fake.charge", "12M file")
    assert listener.events() == [1, 1]  # started, then back asleep
    assert (g / "fake.reclaim_daemon").read_text().startswith("state sleeping")


def test_rmdir_signals_a_blocked_listener(mnt, listeners):
    g = mnt.group("g")
    g.mkdir()
    listener = listeners(g, "memory.usage_in_bytes", "1G")
    assert listener.blocked()
    g.rmdir()
    assert listener.events() == [1]


def test_unmount_signals_a_blocked_listener(mount_factory, listeners):
    mnt = mount_factory()
    g = mnt.group("g")
    g.mkdir()
    listener = listeners(g, "memory.oom_control")
    assert listener.blocked()
    # Plain umount is EBUSY while the listener holds a control file open, as on cgroupfs;
    # --lazy stops the server, which signals every registration as its groups go away.
    busy = subprocess.run(["fakecgfs", "umount", str(mnt.path)], capture_output=True, text=True)
    assert busy.returncode == 1 and "busy" in busy.stderr
    subprocess.run(["fakecgfs", "umount", "--lazy", str(mnt.path)], check=True)
    assert listener.events() == [1]


@pytest.mark.parametrize(
    "line, error",
    [
        ("{efd}  {cfd} 4096", errno.EINVAL),  # two spaces
        ("{efd}\t{cfd}", errno.EINVAL),
        ("999 {cfd} 4096", errno.EBADF),  # closed event fd
        ("{efd} 999 4096", errno.EBADF),  # closed control fd
        ("{pipe} {cfd} 4096", errno.EINVAL),  # not an eventfd
        ("{efd} {stat} 4096", errno.EINVAL),  # not a watchable file
        ("{efd} {cfd} 1MB", errno.EINVAL),  # bad threshold
        ("{efd} {cfd}  4096", errno.EINVAL),  # threshold parsed unstripped
    ],
)
def test_bad_registrations_get_the_kernels_errno(mnt, line, error):
    g = mnt.group("g")
    g.mkdir(exist_ok=True)
    efd = os.eventfd(0)
    cfd = os.open(g / "memory.usage_in_bytes", os.O_RDONLY)
    stat = os.open(g / "memory.stat", os.O_RDONLY)
    pipe_r, pipe_w = os.pipe()
    try:
        text = line.format(efd=efd, cfd=cfd, stat=stat, pipe=pipe_r)
        with pytest.raises(OSError) as e:
            write(g / "cgroup.event_control", text)
        assert e.value.errno == error
    finally:
        for fd in (efd, cfd, stat, pipe_r, pipe_w):
            os.close(fd)


def test_a_control_file_of_another_group_is_refused(mnt):
    a, b = mnt.group("a"), mnt.group("b")
    a.mkdir()
    b.mkdir()
    efd = os.eventfd(0)
    cfd = os.open(b / "memory.usage_in_bytes", os.O_RDONLY)
    try:
        with pytest.raises(OSError) as e:
            write(a / "cgroup.event_control", f"{efd} {cfd} 4096")
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(efd)
        os.close(cfd)
