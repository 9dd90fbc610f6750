"""The fakecgfs-only files: simulated charges, OOM, and the background reclaim task."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading

import pytest

from .helpers import (
    UNLIMITED,
    MiB,
    errno_of,
    kv_lines,
    read,
    stat_lines,
    usage,
    wait_for_state,
    wait_until,
    write,
)


def test_charge_and_uncharge_show_in_usage_and_stat(group):
    write(group / "fake.charge", "4M file dirty")
    write(group / "fake.charge", "2M")  # anon by default
    write(group / "fake.charge", "1M file")
    assert usage(group) == 7 * MiB
    st = stat_lines(group)
    assert (st["cache"], st["rss"], st["dirty"]) == (5 * MiB, 2 * MiB, 4 * MiB)
    assert st["total_cache"] == 5 * MiB and st["total_rss"] == 2 * MiB
    assert st["pgpgin"] == 7 * MiB // 4096
    assert int(read(group / "memory.memsw.usage_in_bytes")) == 7 * MiB
    assert int(read(group / "memory.max_usage_in_bytes")) == 7 * MiB
    numa_lines = read(group / "memory.numa_stat").splitlines()
    numa = dict(line.split(" ")[0].split("=") for line in numa_lines)
    assert (numa["total"], numa["file"], numa["anon"]) == (str(7 * 256), str(5 * 256), str(2 * 256))

    write(group / "fake.uncharge", "2M anon")
    write(group / "fake.uncharge", "5M file")
    assert usage(group) == 0
    st = stat_lines(group)
    assert (st["cache"], st["rss"], st["dirty"]) == (0, 0, 0)
    assert int(read(group / "memory.max_usage_in_bytes")) == 7 * MiB


def test_charges_are_hierarchical(group):
    os.mkdir(group / "kid")
    before = usage(group)  # the kernel charges a new child's own structures to the parent
    write(group / "kid" / "fake.charge", "3M file")
    assert usage(group / "kid") == 3 * MiB
    assert usage(group) == before + 3 * MiB
    st = stat_lines(group)
    assert (st["cache"], st["total_cache"]) == (0, 3 * MiB)


def test_charge_sizes_round_down_to_pages(group):
    write(group / "fake.charge", "4097 file")
    write(group / "fake.charge", "4095 file")
    assert usage(group) == 4096


def test_enomem_when_a_charge_cannot_fit(group):
    write(group / "memory.limit_in_bytes", "8M")
    write(group / "fake.charge", "4M anon")
    assert errno_of(lambda: write(group / "fake.charge", "8M anon")) == errno.ENOMEM
    assert usage(group) == 4 * MiB  # nothing of the refused charge stays
    assert stat_lines(group)["rss"] == 4 * MiB
    assert int(read(group / "memory.failcnt")) > 0
    assert kv_lines(group / "memory.oom_control") == {
        "oom_kill_disable": "0", "under_oom": "0", "oom_kill": "1"}  # fmt: skip


def test_file_pages_are_reclaimed_to_make_room(group):
    write(group / "memory.limit_in_bytes", "8M")
    write(group / "fake.charge", "6M file")
    write(group / "fake.charge", "4M anon")
    assert usage(group) <= 8 * MiB
    assert stat_lines(group)["rss"] == 4 * MiB


def _blocked_charge(group, charge: str = "8M anon") -> subprocess.Popen:
    write(group / "memory.limit_in_bytes", "8M")
    write(group / "memory.oom_control", "1")
    write(group / "fake.charge", "4M anon")
    writer = subprocess.Popen(["sh", "-c", f"echo '{charge}' > fake.charge && echo done"],
                              cwd=group, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        wait_until(lambda: kv_lines(group / "memory.oom_control")["under_oom"] == "1",
                   what="the charge to sleep in OOM")  # fmt: skip
    except BaseException:
        writer.kill()
        writer.wait()
        raise
    return writer


def _blocked_writing(pid: int, path) -> bool:
    """Whether process ``pid`` is blocked in a system call on its fd 1, and fd 1 is ``path``
    (/proc/PID/syscall: the call's number and arguments, or "running")."""
    with open(f"/proc/{pid}/syscall") as f:
        fields = f.read().split()
    return (fields[0] not in ("running", "-1") and int(fields[1], 16) == 1
            and os.readlink(f"/proc/{pid}/fd/1") == str(path))  # fmt: skip


def test_oom_kill_disabled_charge_waits_for_a_higher_limit(group):
    writer = _blocked_charge(group)
    try:
        # The charge sleeps in the server, so the shell's write(2) to fake.charge has no reply
        # yet: the shell is blocked in that very call, and has not gone on to "echo done".
        assert kv_lines(group / "memory.oom_control")["under_oom"] == "1"
        assert _blocked_writing(writer.pid, group / "fake.charge")
        assert writer.poll() is None
        write(group / "memory.limit_in_bytes", "64M")
        out, err = writer.communicate(timeout=10)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert (writer.returncode, out, err) == (0, "done\n", "")
    assert usage(group) == 12 * MiB
    assert kv_lines(group / "memory.oom_control")["under_oom"] == "0"


def test_oom_kill_disabled_charge_waits_for_freed_memory(group):
    writer = _blocked_charge(group, "6M anon")
    try:
        write(group / "fake.uncharge", "4M anon")
        out, _ = writer.communicate(timeout=10)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert (writer.returncode, out) == (0, "done\n")
    assert usage(group) == 6 * MiB


def test_a_blocked_charge_is_interrupted_by_sigint(group):
    writer = _blocked_charge(group)
    try:
        writer.send_signal(signal.SIGINT)
        writer.communicate(timeout=10)  # interrupted, it returns (not after the limit rises)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode != 0  # the shell died of the signal
    wait_until(lambda: kv_lines(group / "memory.oom_control")["under_oom"] == "0",
               what="under_oom to clear")  # fmt: skip
    assert usage(group) == 4 * MiB  # nothing of the interrupted charge stays
    assert stat_lines(group)["rss"] == 4 * MiB


@pytest.mark.xfail(
    strict=True,
    reason="FUSE holds the file's inode lock for a whole write(), so a "
    "second write to the same file waits behind a charge asleep in OOM; kernfs "
    "lets writers of one file proceed independently",
)
def test_a_second_charge_does_not_wait_behind_a_sleeping_one(group):
    sleeper = _blocked_charge(group)
    second = subprocess.Popen(["sh", "-c", "echo '1M file' > fake.charge"], cwd=group)
    try:
        try:
            second.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
        assert second.returncode == 0
    finally:
        write(group / "memory.limit_in_bytes", "64M")  # releases both
        for proc in (sleeper, second):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_rmdir_of_a_group_with_a_charge_asleep_in_oom_is_ebusy(group):
    kid = group / "kid"
    os.mkdir(kid)
    writer = _blocked_charge(kid)
    outcome: dict[str, int | None] = {}

    def attempt(key, fn) -> threading.Thread:
        thread = threading.Thread(target=lambda: outcome.update({key: errno_of(fn)}), daemon=True)
        thread.start()
        return thread

    # Each returns at once unless it waits behind the charge; a bound with room for a loaded
    # machine, since it is only reached when the test fails.
    rmdir = attempt("rmdir", lambda: os.rmdir(kid))
    rmdir.join(10)
    reader = attempt("read", lambda: read(kid / "memory.usage_in_bytes"))
    reader.join(10)
    hung = rmdir.is_alive()
    read_hung = reader.is_alive()
    try:
        writer.send_signal(signal.SIGINT)  # EINTR ends the charge: whatever waited goes on
        writer.communicate(timeout=10)
        rmdir.join(10)
        reader.join(10)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert not hung and not read_hung, f"rmdir hung: {hung}, a read in the group hung: {read_hung}"
    assert outcome["rmdir"] == errno.EBUSY


def test_turning_oom_kill_back_on_fails_the_sleeper(group):
    writer = _blocked_charge(group)
    try:
        write(group / "memory.oom_control", "0")
        out, _ = writer.communicate(timeout=10)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode != 0 and out == ""
    assert usage(group) == 4 * MiB


def test_reclaim_daemon_file_format_and_commands(shared, group):
    lines = read(group / "fake.reclaim_daemon").splitlines()
    assert lines[0] == "state stopped"
    assert all(len(line.split(" ", 1)) == 2 for line in lines)
    assert errno_of(lambda: write(group / "fake.reclaim_daemon", "start")) == errno.EINVAL
    write(group / "memory.high_wmark_in_bytes", "48M")
    wait_for_state(group, "sleeping")
    info = kv_lines(group / "fake.reclaim_daemon")
    assert info["high_wmark"] == str(48 * MiB)
    assert int(info["low_wmark"]) < 48 * MiB and info["low_wmark_default"] == "1"
    reclaim_tasks = read(shared.path / "fake.daemons").splitlines()
    assert int(reclaim_tasks[0]) == len(reclaim_tasks) - 1
    assert f"/{group.name}" in reclaim_tasks[1:]

    write(group / "fake.reclaim_daemon", "stop\n")
    assert kv_lines(group / "fake.reclaim_daemon")["state"] == "stopped"
    assert f"/{group.name}" not in read(shared.path / "fake.daemons").splitlines()[1:]
    write(group / "fake.reclaim_daemon", "stop")  # idempotent
    write(group / "fake.reclaim_daemon", " start ")
    write(group / "fake.reclaim_daemon", "start")  # idempotent
    wait_for_state(group, "sleeping")
    assert f"/{group.name}" in read(shared.path / "fake.daemons").splitlines()[1:]


def test_background_reclaim_of_file_pages(group):
    write(group / "memory.limit_in_bytes", "64M")
    write(group / "memory.high_wmark_in_bytes", "48M")
    write(group / "memory.low_wmark_in_bytes", "32M")
    write(group / "fake.charge", "60M file")
    result = subprocess.run(["fakecgfs", "wait", str(group), "--settled", "--timeout", "20"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert usage(group) <= 32 * MiB
    info = kv_lines(group / "fake.reclaim_daemon")
    assert info["state"] == "sleeping"
    assert int(info["wakeups"]) >= 1 and int(info["passes"]) >= 1
    assert int(info["pages_reclaimed"]) >= (60 - 32) * 256


def test_without_swap_anon_pages_stay(group):
    write(group / "memory.high_wmark_in_bytes", "8M")
    write(group / "memory.low_wmark_in_bytes", "4M")
    write(group / "fake.charge", "12M anon")
    wait_until(lambda: int(kv_lines(group / "fake.reclaim_daemon")["no_progress_passes"]) > 0,
               what="a pass without progress")  # fmt: skip
    assert usage(group) == 12 * MiB
    wait_until(lambda: kv_lines(group / "fake.reclaim_daemon")["last_warning"] != "",
               what="the no-progress warning")  # fmt: skip


def test_swap_lets_anon_pages_be_reclaimed(mount_factory):
    mount = mount_factory("--swap", "64M")
    g = mount.path / "g"
    os.mkdir(g)
    write(g / "memory.limit_in_bytes", "64M")
    write(g / "memory.high_wmark_in_bytes", "48M")
    write(g / "memory.low_wmark_in_bytes", "32M")
    write(g / "fake.charge", "60M anon")
    result = subprocess.run(["fakecgfs", "wait", str(g), "--settled", "--timeout", "20"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert usage(g) <= 32 * MiB
    st = stat_lines(g)
    assert st["swap"] >= 28 * MiB
    assert st["rss"] + st["swap"] == 60 * MiB
    assert int(read(g / "memory.memsw.usage_in_bytes")) == 60 * MiB
    write(g / "fake.uncharge", "60M anon")  # frees resident pages, then swap entries
    assert int(read(g / "memory.memsw.usage_in_bytes")) == 0


def test_force_empty_drops_file_pages(group):
    write(group / "fake.charge", "4M file")
    write(group / "fake.charge", "1M anon")
    write(group / "memory.force_empty", "0")
    assert usage(group) == 1 * MiB


def test_fake_daemons_is_root_only(group):
    assert not (group / "fake.daemons").exists()
    assert read(group / "memory.high_wmark_in_bytes") == f"{UNLIMITED}\n"


def _stat(path) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in open(path))}


@pytest.mark.parametrize("touched", [False, True])
def test_touched_pages_are_promoted_by_reclaim_not_freed(mount_factory, touched):
    """fake.touch sets the referenced bit: reclaim promotes such pages to the active list."""
    mnt = mount_factory()
    g = mnt.group("g")
    g.mkdir()
    mnt.write("g/memory.limit_in_bytes", "8M")
    mnt.write("g/fake.charge", "8M file")
    if touched:
        mnt.write("g/fake.touch", "8M file")
    mnt.write("g/fake.charge", "1M file")  # over the limit: direct reclaim scans them
    stat = _stat(g / "memory.stat")
    assert (stat["active_file"] > 0) is touched
    assert stat["cache"] == int((g / "memory.usage_in_bytes").read_text()) <= 8 << 20
