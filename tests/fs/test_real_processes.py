"""mount --real-processes: real processes' memory charged to their groups, through a real mount.

Every process here is a memhog (tests/helpers/memhog.c) this test started; each is warmed up
(every code path run once) before it joins its group, so that what it gains afterwards is
exactly what its commands allocate.  Expected values are the kernel's v1 rules
(mm/memcontrol-v1.c memcg1_stat_show): anon -> rss and inactive_anon; mapped file -> cache,
mapped_file, inactive_file; shmem (MAP_SHARED /dev/zero, memfd, SysV) -> cache, shmem,
mapped_file and the anon LRU, not rss; mlocked -> unevictable, not on the evictable lists.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fakecgfs import mounting
from fakecgfs.testing import fuse_unavailable_reason, mounted

from .conftest import remove_tree
from .helpers import write
from .realprocs import PAGE, Memhog, build_memhog, oom_control, pages_of, stat, wait_until

N = 100  # pages a command allocates


@pytest.fixture(scope="module")
def memhog_binary(tmp_path_factory) -> Path:
    return build_memhog(tmp_path_factory.mktemp("memhog"))


@pytest.fixture(scope="module")
def real():
    """One --real-processes mount for the module, in a 0755 directory."""
    reason = fuse_unavailable_reason()
    if reason:
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="fakecgfs-real-"))
    os.chmod(directory, 0o755)
    try:
        with mounted(directory, "--real-processes") as mount:
            yield mount
    finally:
        if not (mounting.is_fakecgfs_mount(str(directory / "mnt"))
                or mounting.is_stale(str(directory / "mnt"))):  # fmt: skip
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def hogs(memhog_binary):
    """Start memhogs (warmed up); every one is killed through its pidfd at the end."""
    started: list[Memhog] = []

    def start() -> Memhog:
        hog = Memhog(memhog_binary)
        started.append(hog)
        return hog.warm()

    yield start
    for hog in started:
        hog.end()


_names = iter(range(10**6))


@pytest.fixture
def group(real, request) -> Path:
    path = real.path / f"{request.node.originalname}-{next(_names)}"
    os.mkdir(path)
    yield path
    wait_until(lambda: _removable(path), what=f"{path} to lose its tasks")
    remove_tree(path)


def _removable(path: Path) -> bool:
    return all(not (p / "tasks").read_text() for p in [path, *path.glob("**/")] if p.is_dir())


# -- what each kind of memory shows -----------------------------------------------------------


def test_anonymous_pages_are_rss_exactly_and_back_to_zero(real, group, hogs):
    hog = hogs().join(group)
    before = stat(group)
    usage_before = real.usage(group)
    hog.cmd(f"anon {N}")
    after = stat(group)
    assert pages_of(before, after, "rss", "inactive_anon", "cache", "shmem", "mapped_file",
                    "unevictable", "inactive_file") == {
        "rss": N, "inactive_anon": N, "cache": 0, "shmem": 0, "mapped_file": 0,
        "unevictable": 0, "inactive_file": 0}  # fmt: skip
    usage = real.usage(group)
    assert usage - usage_before == N * PAGE
    assert N * PAGE <= usage <= (N + 8) * PAGE  # plus what the warmed helper still touches
    assert after["total_rss"] == after["rss"]
    hog.cmd("free")
    assert stat(group)["rss"] == before["rss"]
    assert real.usage(group) == usage_before


@pytest.mark.parametrize("command", ["shared", "memfd"])
def test_shared_anonymous_pages_are_cache_shmem_mapped_file_not_rss(real, group, hogs, command):
    hog = hogs().join(group)
    before = stat(group)
    hog.cmd(f"{command} {N}")
    after = stat(group)
    assert pages_of(before, after, "cache", "shmem", "mapped_file", "rss", "inactive_anon",
                    "inactive_file") == {
        "cache": N, "shmem": N, "mapped_file": N, "rss": 0, "inactive_anon": N,
        "inactive_file": 0}  # fmt: skip
    hog.cmd("free")
    assert pages_of(before, stat(group), "cache", "shmem", "mapped_file") == {
        "cache": 0,
        "shmem": 0,
        "mapped_file": 0,
    }


def test_mapped_file_pages_are_cache_and_mapped_file(real, group, hogs, tmp_path):
    data = tmp_path / "data"
    data.write_bytes(b"x" * (N * PAGE))
    with open(data, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(tmp_path, 0o755)
    hog = hogs().join(group)
    before = stat(group)
    hog.cmd(f"file {data} {N}")
    after = stat(group)
    assert pages_of(before, after, "cache", "mapped_file", "inactive_file", "rss", "shmem",
                    "inactive_anon") == {
        "cache": N, "mapped_file": N, "inactive_file": N, "rss": 0, "shmem": 0,
        "inactive_anon": 0}  # fmt: skip
    hog.cmd("free")
    assert pages_of(before, stat(group), "cache", "mapped_file") == {"cache": 0, "mapped_file": 0}


@pytest.mark.parametrize("command", ["mlock", "locked"])
def test_locked_pages_are_unevictable(real, group, hogs, command):
    hog = hogs().join(group)
    before = stat(group)
    hog.cmd(f"{command} {N}")
    after = stat(group)
    assert pages_of(before, after, "unevictable", "rss", "inactive_anon", "active_anon") == {
        "unevictable": N,
        "rss": N,
        "inactive_anon": 0,
        "active_anon": 0,
    }
    hog.cmd("free")
    assert pages_of(before, stat(group), "unevictable", "rss") == {"unevictable": 0, "rss": 0}


def _rmid(shmid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    IPC_RMID = 0
    if libc.shmctl(shmid, IPC_RMID, None) != 0:
        raise OSError(ctypes.get_errno(), "shmctl IPC_RMID")


def test_sysv_shm_outlives_its_process_until_removed(real, group, hogs):
    hog = hogs().join(group)
    before = stat(group)
    shmid = int(hog.cmd(f"sysv {N}").split()[1])
    try:
        after = stat(group)
        assert pages_of(before, after, "cache", "shmem", "mapped_file", "rss") == {
            "cache": N,
            "shmem": N,
            "mapped_file": N,
            "rss": 0,
        }
        hog.cmd("shmdt")  # no longer mapped: still cache and shmem
        assert pages_of(before, stat(group), "cache", "shmem", "mapped_file") == {
            "cache": N,
            "shmem": N,
            "mapped_file": 0,
        }
        hog.end()
        wait_until(lambda: not (group / "tasks").read_text(), what="the helper to leave")
        assert pages_of(before, stat(group), "cache", "shmem") == {"cache": N, "shmem": N}
    finally:
        _rmid(shmid)
    assert pages_of(before, stat(group), "cache", "shmem") == {"cache": 0, "shmem": 0}


# -- attribution ------------------------------------------------------------------------------


def test_a_moved_process_leaves_its_charges_behind(real, group, hogs):
    first, second = group / "first", group / "second"
    first.mkdir()
    second.mkdir()
    hog = hogs().join(first)
    hog.cmd(f"anon {N}")
    assert stat(first)["rss"] == N * PAGE
    hog.join(second)
    assert stat(first)["rss"] == N * PAGE and stat(second)["rss"] == 0
    hog.cmd("anon 30")
    assert stat(first)["rss"] == N * PAGE and stat(second)["rss"] == 30 * PAGE
    assert stat(group)["total_rss"] == (N + 30) * PAGE
    hog.cmd("free")  # the latest charges are uncharged first
    assert stat(first)["rss"] == 0 and stat(second)["rss"] == 0


def test_what_a_process_had_before_joining_is_not_charged(real, group, hogs):
    hog = hogs()
    hog.cmd(f"anon {N}")
    hog.join(group)
    assert stat(group)["rss"] == 0
    hog.cmd("anon 10")
    assert stat(group)["rss"] == 10 * PAGE


def test_children_are_members_of_their_group(real, group, hogs):
    hog = hogs().join(group)
    before = stat(group)["rss"]
    child = int(hog.cmd(f"fork {N}").split()[1])
    assert str(child) in (group / "cgroup.procs").read_text().split()
    rss = (stat(group)["rss"] - before) // PAGE
    # Its own pages, plus those it broke copy-on-write (its stack, libc's data): at most its
    # whole anonymous memory; what it shares with its parent is the parent's.
    with open(f"/proc/{child}/status") as f:
        child_anon = next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))
    assert N <= rss <= child_anon * 1024 // PAGE
    hog.cmd("reap")
    wait_until(lambda: str(child) not in (group / "cgroup.procs").read_text().split())
    assert stat(group)["rss"] == before


def test_max_usage_keeps_the_peak_and_a_write_resets_it(real, group, hogs):
    hog = hogs().join(group)
    hog.cmd(f"anon {N}")
    peak = real.read_int(group, "memory.max_usage_in_bytes")
    assert peak >= N * PAGE
    hog.cmd("free")
    assert real.read_int(group, "memory.max_usage_in_bytes") == peak
    write(group / "memory.max_usage_in_bytes", "0")
    assert real.read_int(group, "memory.max_usage_in_bytes") == real.usage(group) < N * PAGE


# -- limits -----------------------------------------------------------------------------------


def test_over_the_limit_the_member_is_killed(real, group, hogs):
    write(group / "memory.limit_in_bytes", str(PAGE))
    hog = hogs().join(group)
    hog.send("anon 2")
    assert hog.wait() == -9
    assert real.read_int(group, "memory.failcnt") > 0
    assert oom_control(group)["oom_kill"] == 1
    wait_until(lambda: real.usage(group) == 0, what="the victim's pages to be uncharged")


def test_over_a_parents_limit_the_member_is_killed(real, group, hogs):
    child = group / "child"
    child.mkdir()
    limit = real.usage(group) + PAGE  # the parent holds kernel memory for its child
    write(group / "memory.limit_in_bytes", str(limit))
    hog = hogs().join(child)
    hog.send("anon 2")
    assert hog.wait() == -9
    assert real.read_int(group, "memory.failcnt") > 0
    assert oom_control(group)["oom_kill"] == 1
    assert oom_control(child)["oom_kill"] == 1  # counted where the victim was, and above


def test_oom_notification_fires_on_a_kill(real, group, hogs):
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    cfd = os.open(group / "memory.oom_control", os.O_RDONLY)
    try:
        write(group / "cgroup.event_control", f"{efd} {cfd}")
        write(group / "memory.limit_in_bytes", str(PAGE))
        hog = hogs().join(group)
        hog.send("anon 2")
        assert hog.wait() == -9
        wait_until(lambda: _eventfd_count(efd) > 0, what="the OOM notification")
    finally:
        os.close(cfd)
        os.close(efd)


def _eventfd_count(efd: int) -> int:
    try:
        return os.eventfd_read(efd)
    except BlockingIOError:
        return 0


def test_oom_kill_disable_stops_the_member_until_the_limit_is_raised(real, group, hogs):
    write(group / "memory.limit_in_bytes", str(10 * PAGE))
    write(group / "memory.oom_control", "1")
    hog = hogs().join(group)
    hog.send(f"grow {N}")  # a page a millisecond: it is stopped half way
    wait_until(lambda: oom_control(group)["under_oom"] == 1, what="under_oom 1")
    wait_until(lambda: hog.state() == "T", what="the member to be stopped")
    assert N * PAGE > real.usage(group) > 10 * PAGE
    write(group / "memory.limit_in_bytes", "-1")
    assert hog._reply(20.0) == "ok"  # continued, it finished its allocation
    assert oom_control(group)["under_oom"] == 0
    assert hog.state() != "T"
    assert stat(group)["rss"] >= N * PAGE


def test_oom_kill_disable_a_member_moved_out_continues(real, group, hogs):
    inside, outside = group / "inside", group / "outside"
    inside.mkdir()
    outside.mkdir()
    write(inside / "memory.limit_in_bytes", str(10 * PAGE))
    write(inside / "memory.oom_control", "1")
    hog = hogs().join(inside)
    hog.send(f"grow {N}")
    wait_until(lambda: hog.state() == "T", what="the member to be stopped")
    hog.join(outside)
    assert hog._reply(20.0) == "ok"
    hog.cmd("free")


def test_force_empty_cannot_free_anonymous_memory_and_rmdir_is_ebusy(real, group, hogs):
    hog = hogs().join(group)
    hog.cmd(f"anon {N}")
    write(group / "memory.force_empty", "0")  # succeeds, as the kernel's does
    assert real.usage(group) >= N * PAGE  # no swap: nothing to reclaim
    with pytest.raises(OSError) as e:
        os.rmdir(group)
    assert e.value.errno == errno.EBUSY
    hog.end()
    wait_until(lambda: not (group / "tasks").read_text(), what="the member to leave")
    assert real.usage(group) == 0


def test_background_reclaim_pages_out_a_members_file_pages(real, group, hogs, tmp_path):
    nr = 512
    data = tmp_path / "data"
    data.write_bytes(b"y" * (nr * PAGE))
    with open(data, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(tmp_path, 0o755)
    hog = hogs().join(group)
    hog.cmd(f"file {data} {nr}")
    resident = hog.status_kib("RssFile")
    assert stat(group)["mapped_file"] == nr * PAGE
    write(group / "memory.high_wmark_in_bytes", str(nr * PAGE // 2))
    real.wait_settled(group)
    assert hog.status_kib("RssFile") <= resident - nr * PAGE // 1024 // 2
    reclaim_task = real.daemon(group)
    assert int(reclaim_task["pages_reclaimed"]) >= nr // 2
    assert real.usage(group) <= int(reclaim_task["low_wmark"])


# -- who is never a member --------------------------------------------------------------------


def _bound_kernel_thread() -> int | None:
    PF_NO_SETAFFINITY = 0x04000000
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat_line = f.read()
        except OSError:
            continue
        if int(stat_line[stat_line.rfind(b")") + 2 :].split()[6]) & PF_NO_SETAFFINITY:
            return int(entry)
    return None


def test_a_kernel_thread_bound_to_cpus_cannot_join_a_group(real, group):
    pid = _bound_kernel_thread()
    if pid is None:
        pytest.skip("no kernel thread with PF_NO_SETAFFINITY visible")
    for name in ("tasks", "cgroup.procs"):
        with pytest.raises(OSError) as e:
            write(group / name, str(pid))
        assert e.value.errno == errno.EINVAL


def test_the_server_is_never_a_member(real, group):
    write(group / "memory.limit_in_bytes", str(PAGE))
    write(group / "cgroup.procs", str(real.process.pid))
    assert real.usage(group) == 0  # its memory is not followed
    assert real.process.poll() is None
    write(real.path / "cgroup.procs", str(real.process.pid))


# -- from a shell -----------------------------------------------------------------------------


def _sh(script: str, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script, "sh", *args], capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def test_shell_a_process_over_its_limit_is_killed(real, group, memhog_binary):
    result = _sh(
        'echo 4096 > "$1/memory.limit_in_bytes" && echo $$ > "$1/cgroup.procs" && '
        'exec "$2" <<EOF\nanon 64\npause\nEOF',
        str(group),
        str(memhog_binary),
    )
    assert result.returncode == -9, result
    result = _sh('grep "^oom_kill " "$1/memory.oom_control"; cat "$1/memory.failcnt"', str(group))
    kill_line, failcnt = result.stdout.splitlines()
    assert kill_line == "oom_kill 1" and int(failcnt) > 0


def test_shell_usage_moves_by_what_a_member_allocates(real, group, memhog_binary, tmp_path):
    # The shell starts memhog, warms it up, moves it in by its PID ($!) and reads rss before
    # and after it allocates.  The shell itself stays out: its own memory moves as it runs.
    script = r"""
        mkfifo "$3/in" "$3/out"
        "$2" < "$3/in" > "$3/out" &
        exec 3> "$3/in" 4< "$3/out"
        read ready <&4
        for warm in "anon 1" "free"; do echo "$warm" >&3; read r <&4; done
        echo $! > "$1/cgroup.procs"
        grep -qx $! "$1/tasks" || exit 3
        while read name value; do [ "$name" = rss ] && before=$value; done < "$1/memory.stat"
        echo anon 100 >&3; read r <&4
        while read name value; do [ "$name" = rss ] && after=$value; done < "$1/memory.stat"
        echo exit >&3; read r <&4
        wait
        echo $(( (after - before) / 4096 ))
    """
    os.chmod(tmp_path, 0o755)
    result = _sh(script, str(group), str(memhog_binary), str(tmp_path))
    assert result.returncode == 0, result
    assert int(result.stdout.split()[-1]) == 100


# -- the mount going away, and fakecgfs run ---------------------------------------------------


def test_members_an_oom_stopped_are_continued_when_the_mount_goes_away(tmp_path, hogs):
    if fuse_unavailable_reason():
        pytest.skip(fuse_unavailable_reason())
    with mounted(tmp_path, "--real-processes") as mount:
        group = mount.path / "g"
        group.mkdir()
        write(group / "memory.limit_in_bytes", str(10 * PAGE))
        write(group / "memory.oom_control", "1")
        hog = hogs().join(group)
        hog.send(f"grow {N}")
        wait_until(lambda: hog.state() == "T", what="the member to be stopped")
    # unmounted (SIGTERM to the server): the member runs again and finishes
    assert hog._reply(20.0) == "ok"


RUN_SCRIPT = r"""
    R=$FAKECG_ROOT
    mkdir "$R/g"
    mkfifo "$1/in"
    sh -c 'echo $$ > "$1/g/cgroup.procs" && exec "$2" < "$3/in" > "$3/replies"' \
        sh "$R" "$2" "$1" &
    exec 3> "$1/in"
    printf 'anon 1\nfree\nanon 256\n' >&3
    tries=0
    until [ "$(grep -c ok "$1/replies" 2>/dev/null)" = 3 ]; do
        tries=$((tries + 1)); [ $tries -lt 400 ] || exit 3; sleep 0.05
    done
    while read name value; do [ "$name" = rss ] && echo $((value / 4096)); done < "$R/g/memory.stat"
    echo exit >&3
    wait
"""


@pytest.mark.parametrize(
    "flags, rss_wanted",
    [((), lambda rss: rss >= 256), (("--no-real-processes",), lambda rss: rss == 0)],
)
def test_run_follows_real_processes_unless_told_not_to(tmp_path, memhog_binary, flags, rss_wanted):
    if os.geteuid() != 0 or fuse_unavailable_reason():
        pytest.skip("fakecgfs run needs root and FUSE")
    os.chmod(tmp_path, 0o755)
    result = subprocess.run(
        [sys.executable, "-m", "fakecgfs", "run", *flags, "--mount-at", str(tmp_path / "mnt"),
         "--", "sh", "-c", RUN_SCRIPT, "sh", str(tmp_path), str(memhog_binary)],
        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result
    assert rss_wanted(int(result.stdout.split()[-1])), result.stdout


def test_a_process_joining_a_group_in_oom_waits_too(real, group, hogs):
    write(group / "memory.limit_in_bytes", str(10 * PAGE))
    write(group / "memory.oom_control", "1")
    first = hogs().join(group)
    first.send(f"grow {N}")
    wait_until(lambda: first.state() == "T", what="the first member to be stopped")
    second = hogs().join(group)
    wait_until(lambda: second.state() == "T", what="the second member to be stopped")
    write(group / "memory.limit_in_bytes", "-1")
    assert first._reply(20.0) == "ok"
    wait_until(lambda: second.state() != "T", what="the second member to continue")
    second.cmd("anon 1")


def test_a_usage_threshold_fires_without_anybody_reading(real, group, hogs):
    """The sampler follows members between reads: the eventfd is signalled although nothing
    reads the group's files."""
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    cfd = os.open(group / "memory.usage_in_bytes", os.O_RDONLY)
    try:
        write(group / "cgroup.event_control", f"{efd} {cfd} {N // 2 * PAGE}")
        hog = hogs().join(group)
        hog.cmd(f"anon {N}")
        wait_until(lambda: _eventfd_count(efd) > 0, what="the threshold notification")
    finally:
        os.close(cfd)
        os.close(efd)


def test_a_member_that_execs_is_charged_for_its_whole_new_image(real, group):
    """Even exec'ing the very same program (sh): its new image was made in the group."""
    if Path("/proc/sys/kernel/randomize_va_space").read_text().strip() == "0":
        pytest.skip(
            "address space randomisation is off: an exec of the same program at the "
            "same address cannot be told from /proc"
        )
    shell = subprocess.Popen(["sh", "-c", 'echo $$ > "$1/cgroup.procs" && exec sh -c "read x"',
                              "sh", str(group)], stdin=subprocess.PIPE)  # fmt: skip
    pidfd = os.pidfd_open(shell.pid)
    try:

        def status(field: str) -> int:
            with open(f"/proc/{shell.pid}/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

        def cmdline() -> bytes:
            return Path(f"/proc/{shell.pid}/cmdline").read_bytes()

        wait_until(lambda: b"read x" in cmdline() and str(shell.pid) in
                   (group / "tasks").read_text().split(), what="the exec")  # fmt: skip
        wait_until(lambda: Memhog.state_of(shell.pid) == "S", what="sh to wait in read")
        s = stat(group)
        assert s["rss"] == status("RssAnon") * 1024
        assert s["mapped_file"] == status("RssFile") * 1024
    finally:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        shell.wait()
        os.close(pidfd)


# -- who may make a member --------------------------------------------------------------------

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
needs_setpriv = pytest.mark.skipif(shutil.which("setpriv") is None or os.getuid() != 0,
                                   reason="needs root and setpriv")  # fmt: skip


@pytest.fixture
def public_memhog(memhog_binary) -> Path:
    """memhog where nobody can run it (pytest's temp tree is 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="fakecgfs-memhog-"))
    os.chmod(directory, 0o755)
    shutil.copy(memhog_binary, directory / "memhog")
    yield directory / "memhog"
    shutil.rmtree(directory)


@needs_setpriv
def test_a_user_cannot_make_a_member_of_someone_elses_process(real, group, hogs):
    os.chown(group, 65534, 65534)
    for name in ("cgroup.procs", "tasks", "memory.limit_in_bytes"):
        os.chown(group / name, 65534, 65534)
    hog = hogs()  # root's
    # coreutils echo reports the errno (dash's builtin says "I/O error" for any failure)
    result = subprocess.run([*NOBODY, "sh", "-c", '/bin/echo "$1" > "$2/cgroup.procs"', "sh",
                             str(hog.pid), str(group)], capture_output=True, text=True,
                            timeout=30)  # fmt: skip
    assert result.returncode != 0 and "Permission denied" in result.stderr
    write(group / "memory.limit_in_bytes", str(PAGE))  # were it a member, it would die
    hog.cmd(f"anon {N}")
    assert str(hog.pid) not in (group / "tasks").read_text().split()
    assert real.usage(group) == 0 and hog.state() != "Z"
    hog.cmd("free")


@needs_setpriv
def test_a_user_makes_a_member_of_their_own_process(real, group, public_memhog):
    os.chown(group, 65534, 65534)
    for name in ("cgroup.procs", "tasks"):
        os.chown(group / name, 65534, 65534)
    script = r"""
        "$1" < "$3/in" > "$3/out" &
        exec 3> "$3/in" 4< "$3/out"
        read ready <&4
        for warm in "anon 1" "free"; do echo "$warm" >&3; read r <&4; done
        echo $! > "$2/cgroup.procs" || exit 3
        echo anon 100 >&3; read r <&4
        while read name value; do [ "$name" = rss ] && echo "$value"; done < "$2/memory.stat"
        echo exit >&3; read r <&4
        wait
    """
    fifos = Path(tempfile.mkdtemp(prefix="fakecgfs-fifos-"))
    try:
        for name in ("in", "out"):
            os.mkfifo(fifos / name)
        shutil.chown(fifos, 65534, 65534)
        for name in ("in", "out"):
            shutil.chown(fifos / name, 65534, 65534)
        result = subprocess.run([*NOBODY, "sh", "-c", script, "sh", str(public_memhog),
                                 str(group), str(fifos)], capture_output=True, text=True,
                                timeout=30)  # fmt: skip
    finally:
        shutil.rmtree(fifos)
    assert result.returncode == 0, result
    assert int(result.stdout.split()[-1]) == N * PAGE


def test_the_trace_marks_what_real_processes_caused(tmp_path, hogs):
    if fuse_unavailable_reason():
        pytest.skip(fuse_unavailable_reason())
    with mounted(tmp_path, "--real-processes", trace=True) as mount:
        group = mount.path / "g"
        group.mkdir()
        write(group / "memory.limit_in_bytes", str(PAGE))
        hog = hogs().join(group)
        hog.send("anon 2")
        assert hog.wait() == -9
        wait_until(lambda: mount.events("oom", "/g"), what="the OOM event in the trace")
        (oom,) = mount.events("oom", "/g")
        assert oom["action"] == "kill" and oom["real"] is True
        assert all(e["real"] for e in mount.events("charge_refused", "/g"))


def test_shell_oom_kill_disable_stops_then_a_raised_limit_lets_it_finish(
    real, group, memhog_binary, tmp_path
):
    script = r"""
        G=$1
        echo 40960 > "$G/memory.limit_in_bytes"
        echo 1 > "$G/memory.oom_control"
        mkfifo "$3/in" "$3/out"
        "$2" < "$3/in" > "$3/out" &
        exec 3> "$3/in" 4< "$3/out"
        read ready <&4
        for warm in "grow 1" "free"; do echo "$warm" >&3; read r <&4; done
        echo $! > "$G/cgroup.procs"
        echo grow 100 >&3
        tries=0
        until grep -qx "under_oom 1" "$G/memory.oom_control" &&
                grep -q "^State:.*stopped" /proc/$!/status; do
            tries=$((tries + 1)); [ $tries -lt 400 ] || exit 3; sleep 0.05
        done
        echo -1 > "$G/memory.limit_in_bytes"
        read r <&4
        echo "$r"
        grep under_oom "$G/memory.oom_control"
        echo exit >&3; read r <&4
        wait
    """
    os.chmod(tmp_path, 0o755)
    result = _sh(script, str(group), str(memhog_binary), str(tmp_path))
    assert result.returncode == 0, result
    assert result.stdout.split("\n")[:2] == ["ok", "under_oom 0"]
