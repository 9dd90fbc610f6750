"""tasks and cgroup.procs against a fake process table, plus one look at the real /proc."""

from __future__ import annotations

import errno
import os
import threading

import pytest

from fakecgfs.controller import ControllerError, MemoryController, PageKind, ProcessTable, ProcFS

from .conftest import FakeProcesses, controller, trio_test


def table() -> FakeProcesses:
    procs = FakeProcesses()
    procs.spawn(1)  # init
    procs.spawn(100, 101, 102)  # a process with two extra threads
    procs.spawn(200)
    return procs


def test_fake_table_implements_the_protocol():
    procs: ProcessTable = table()  # type-checks against the Protocol
    assert procs.thread_group(101) == [100, 101, 102]
    assert procs.tgid_of(102) == 100 and procs.tgid_of(999) is None
    assert procs.thread_group(999) == []
    assert procs.all_threads() == [1, 100, 101, 102, 200]


def test_controller_defaults_to_procfs():
    assert isinstance(MemoryController().processes, ProcFS)


@trio_test
async def test_attach_a_dead_pid_is_esrch():
    async with controller(processes=table()) as c:
        g = c.create_group(c.root, "g")
        for whole in (False, True):
            with pytest.raises(ControllerError) as exc:
                c.attach(g, 999, whole_process=whole)
            assert exc.value.errno == errno.ESRCH
        assert c.tasks(g) == []


@trio_test
async def test_attach_one_thread():
    async with controller(processes=table()) as c:
        g = c.create_group(c.root, "g")
        c.attach(g, 101, whole_process=False)
        assert c.tasks(g) == [101]
        assert c.procs(g) == [100]
        assert c.tasks(c.root) == [1, 100, 102, 200]
        assert c.procs(c.root) == [1, 100, 200]


@trio_test
async def test_attach_whole_process_moves_every_thread():
    async with controller(processes=table()) as c:
        a = c.create_group(c.root, "a")
        b = c.create_group(c.root, "b")
        c.attach(a, 101, whole_process=False)
        c.attach(b, 102, whole_process=True)  # any thread names its process
        assert c.tasks(a) == []
        assert c.tasks(b) == [100, 101, 102] and c.procs(b) == [100]


@trio_test
async def test_a_thread_is_in_exactly_one_group():
    async with controller(processes=table()) as c:
        a = c.create_group(c.root, "a")
        b = c.create_group(a, "b")
        c.attach(a, 200, whole_process=False)
        c.attach(b, 200, whole_process=False)
        assert c.tasks(a) == [] and c.tasks(b) == [200]
        assert 200 not in c.tasks(c.root)
        c.attach(c.root, 200, whole_process=False)  # back to the root
        assert c.tasks(b) == [] and 200 in c.tasks(c.root)
        assert all(200 not in g.tasks for g in c.groups())
        c.attach(a, 100, whole_process=True)
        c.attach(c.root, 100, whole_process=True)
        assert c.tasks(a) == [] and c.tasks(c.root) == [1, 100, 101, 102, 200]


@trio_test
async def test_exited_threads_disappear():
    procs = table()
    async with controller(processes=procs) as c:
        g = c.create_group(c.root, "g")
        c.attach(g, 100, whole_process=True)
        procs.exit(101)
        assert c.tasks(g) == [100, 102]
        procs.exit(100)
        procs.exit(102)
        assert c.tasks(g) == [] and c.procs(g) == []
        assert c.tasks(c.root) == [1, 200]


@trio_test
async def test_rmdir_with_a_live_task_is_ebusy_then_ok_after_it_exits():
    procs = table()
    async with controller(processes=procs) as c:
        g = c.create_group(c.root, "g")
        await c.charge(g, 10, PageKind.ANON)
        c.attach(g, 200, whole_process=False)
        with pytest.raises(ControllerError) as exc:
            await c.remove_group(g)
        assert exc.value.errno == errno.EBUSY and not g.removed
        procs.exit(200)
        await c.remove_group(g)
        assert g.removed


@trio_test
async def test_attach_to_a_removed_group_is_enodev():
    async with controller(processes=table()) as c:
        g = c.create_group(c.root, "g")
        await c.remove_group(g)
        with pytest.raises(ControllerError) as exc:
            c.attach(g, 200, whole_process=False)
        assert exc.value.errno == errno.ENODEV


# -- the real ProcFS ------------------------------------------------------------------------


def test_procfs_sees_this_process_and_its_threads():
    proc = ProcFS()
    pid = os.getpid()
    started, release = threading.Event(), threading.Event()
    tids: list[int] = []

    def worker():
        tids.append(threading.get_native_id())
        started.set()
        release.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    try:
        started.wait(10)
        [tid] = tids
        assert proc.thread_alive(pid) and proc.thread_alive(tid)
        assert proc.tgid_of(pid) == pid and proc.tgid_of(tid) == pid
        group = proc.thread_group(tid)
        assert pid in group and tid in group
        assert {pid, tid} <= set(proc.all_threads())
    finally:
        release.set()
        t.join()
    # (Whether the thread is gone right after join() is up to the OS: the pthread may outlive
    # the Python thread for a moment, so that is tested on a made-up tree below instead.)


def test_procfs_on_a_made_up_proc_tree(tmp_path):
    """Parsing details, on files we write: a ") " in the command name, zombies, bad entries."""

    def process(pid: int, threads: dict[int, str], comm: str = "x") -> None:
        for tid, state in threads.items():
            d = tmp_path / str(pid) / "task" / str(tid)
            d.mkdir(parents=True)
            for where in (d, tmp_path / str(tid)):
                where.mkdir(exist_ok=True)
                (where / "stat").write_text(f"{tid} ({comm}) {state} 1 2 3\n")
                (where / "status").write_text(f"Name:\t{comm}\nTgid:\t{pid}\nPid:\t{tid}\n")

    process(10, {10: "S", 11: "R", 12: "Z"}, comm="evil) Z (name")
    process(20, {20: "X"})
    (tmp_path / "self").mkdir()  # non-numeric entries are skipped
    (tmp_path / "30").mkdir()  # a process that vanished: no task directory
    proc = ProcFS(str(tmp_path))
    assert proc.thread_alive(10) and proc.thread_alive(11)
    assert not proc.thread_alive(12) and not proc.thread_alive(20)  # zombie, dead
    assert not proc.thread_alive(99)
    assert proc.tgid_of(11) == 10 and proc.tgid_of(99) is None
    assert sorted(proc.thread_group(11)) == [10, 11]
    assert proc.thread_group(99) == []
    assert sorted(proc.all_threads()) == [10, 11, 12, 20]
    (tmp_path / "40").mkdir()
    (tmp_path / "40" / "status").write_text("Name:\tx\nTgid:\tnotanumber\n")
    assert proc.tgid_of(40) is None
    (tmp_path / "41").mkdir()
    (tmp_path / "41" / "status").write_text("Name:\tx\n")
    assert proc.tgid_of(41) is None
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "status").write_text("Tgid:\t30\n")  # its process has no task dir
    assert proc.thread_group(42) == []
