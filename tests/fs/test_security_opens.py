"""An attacker's-eye review of OPEN and RELEASE answered in the session (session._open,
session._release, after libfuse showed a node's path: session._learn_path).

The attacker is uid 65534 with a delegated group on a root mount with allow_other, or a second
user on a user's own mount (where the server checks permissions itself, fs._permit).  Each test
is one attack; docs/security.md ("Opens answered by the session") lists them."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from fakecgfs import linux

from .helpers import UNLIMITED, read, write
from .inprocess import served_session
from .security import PYTHON, USER_A, USER_B, World, as_user
from .test_security_tasks import delegate_to_nobody, opened_by_written_by

pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None or os.getuid() != 0,
                                reason="needs root and setpriv")  # fmt: skip

LIMIT = "memory.limit_in_bytes"
LONGEST_NAME = "n" * 255  # NAME_MAX: the longest a group's name can make each step of a path


def server_rss(world: World) -> int:
    """The server's resident memory in bytes."""
    with open(f"/proc/{world.mount.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) << 10
    raise AssertionError("no VmRSS")


# A chain of groups, each named with NAME_MAX bytes, made by descriptor (no path is ever longer
# than a name), then every file of its deepest groups opened twice (libfuse's open, then the
# session's): libfuse names each node by its whole path, a quarter of a megabyte at this depth.
DEEP_CHAIN = r"""
import os, sys
group, depth, opened_groups, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fd = os.open(group, os.O_RDONLY | os.O_DIRECTORY)
chain = []
for _ in range(depth):
    os.mkdir(name, dir_fd=fd)
    chain.append(fd)
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
chain.append(fd)
opens = 0
for directory in chain[-opened_groups:]:
    for entry in os.listdir(directory):
        if entry == name:
            continue
        for _ in range(2):
            try:
                os.close(os.open(entry, os.O_RDONLY, dir_fd=directory))
                opens += 1
            except PermissionError:  # write-only files
                pass
print(opens, flush=True)
sys.stdin.readline()  # the server is measured now
for directory in reversed(chain[:-1]):
    os.rmdir(name, dir_fd=directory)
"""
DEEP = 1024  # groups: paths of 256 KiB
DEEP_OPENED = 16  # of them whose files are opened (some 900 files)
KEPT_GROWTH_MAX = 64 << 20
"""What the server may grow by after the chain is made, walked and removed: its groups and
nodes are a few megabytes; paths kept whole would be hundreds."""


def test_deep_paths_do_not_make_the_server_keep_their_bytes(world):
    """The session's learnt paths (NODE_PATHS_KEPT), OPEN's decoded paths (OPEN_PATHS_KEPT) and
    the filesystem's resolved paths (RESOLVED_MAX) are bounded in number; a path is bounded only
    by the depth of the tree.  A user with a delegated group made them a quarter of a megabyte
    each and the server kept hundreds of megabytes of them (a megabyte each at the 4096 groups a
    user may make: gigabytes).  Paths longer than PATH_MAX, which no system call can name, are
    no longer kept."""
    group = world.delegate("deep", USER_A)
    before = server_rss(world)
    attack = subprocess.Popen([*as_nobody(), PYTHON, "-c", DEEP_CHAIN, str(group), str(DEEP),
                               str(DEEP_OPENED), LONGEST_NAME], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert int(attack.stdout.readline()) > 500  # opens made
        grown = server_rss(world) - before
    finally:
        attack.communicate("\n", timeout=300)
    assert attack.returncode == 0
    assert grown < KEPT_GROWTH_MAX


def as_nobody() -> list[str]:
    return as_user(USER_A)


def test_the_paths_the_session_learns_are_bounded_in_number(tmp_path):
    """Every file of enough groups opened once: the session learns each node's path, and keeps
    at most NODE_PATHS_KEPT of them (then starts again), however many files are opened."""
    from fakecgfs.cgroupfs.session import NODE_PATHS_KEPT

    def open_everything(mnt: Path) -> int:
        opened = 0
        for i in range(NODE_PATHS_KEPT // 30):  # some 38 readable files each
            group = mnt / f"g{i}"
            os.mkdir(group)
            for entry in os.listdir(group):
                with contextlib.suppress(PermissionError):  # write-only files
                    os.close(os.open(group / entry, os.O_RDONLY))
                    opened += 1
        return opened

    async def main() -> None:
        async with served_session(tmp_path) as (_, session, mnt):
            most = 0

            def learn(path: str, learn=session._learn_path) -> None:
                nonlocal most
                learn(path)
                most = max(most, len(session._node_paths))

            session._callbacks._opened = learn
            assert await in_thread(open_everything, mnt) > NODE_PATHS_KEPT
            assert 0 < most <= NODE_PATHS_KEPT

    trio.run(main)


# -- opens answered by the session, watched in the test's own process ----------------------------


@contextlib.asynccontextmanager
async def session_served(*, mounter: int | None = None) -> AsyncIterator[tuple[Path, list[int]]]:
    """A mount served in this process (inprocess.served_session) in a 0755 directory that every
    user may reach, and the node ids of the OPENs the session answered itself, in order (a
    node's id is its files' st_ino: libfuse without use_ino)."""
    directory = Path(tempfile.mkdtemp(prefix="fakecgfs-opens-"))
    directory.chmod(0o755)
    try:
        async with served_session(directory, mounter=mounter) as (_, session, mountpoint):
            answered: list[int] = []
            answer = session._open

            def watched(received: int) -> bool:
                here = answer(received)
                if here:
                    answered.append(int.from_bytes(session._view[16:24], "little"))
                return here

            session._open = watched  # type: ignore[method-assign]
            yield mountpoint, answered
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# Each argument "r:PATH" or "w:PATH": one open(O_RDONLY or O_WRONLY) and close; "ok" or the errno.
OPENS = r"""
import errno, json, os, sys
seen = []
for spec in sys.argv[1:]:
    mode, path = spec.split(":", 1)
    try:
        os.close(os.open(path, os.O_WRONLY if mode == "w" else os.O_RDONLY))
        seen.append("ok")
    except OSError as e:
        seen.append(errno.errorcode[e.errno])
print(json.dumps(seen))
"""


def opens_as(uid: int, *specs: str) -> list[str]:
    result = subprocess.run([*as_user(uid), PYTHON, "-c", OPENS, *specs], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def in_thread(fn, *args):
    """Run a client's blocking calls off the loop that serves them."""
    return trio.to_thread.run_sync(functools.partial(fn, *args))


def test_on_a_users_mount_the_session_checks_every_open_as_its_caller():
    """A user's mount has no default_permissions: fs._permit checks each open, as the user who
    makes it (the OPEN's header, context_reader).  Once libfuse has opened a file, its OPENs are
    the session's: they are still checked, against the modes of now, for their own caller;
    the mounter passes as root does (on cgroupfs, root passes every mode check)."""
    mounter, other = USER_B, USER_A

    def attack(mnt: Path) -> tuple[list[list[str]], int]:
        g = mnt / "g"
        os.mkdir(g)  # root's: its files are 0644, others may read them and not write
        os.close(os.open(g / LIMIT, os.O_RDWR))  # libfuse's open: the next are the session's
        seen = [opens_as(other, f"w:{g / LIMIT}", f"r:{g / LIMIT}")]
        seen.append(opens_as(mounter, f"w:{g / LIMIT}"))
        os.chmod(g / LIMIT, 0o600)
        seen.append(opens_as(other, f"r:{g / LIMIT}"))
        os.chmod(g / LIMIT, 0o644)
        os.chmod(g, 0o700)  # the kernel still knows the name: the open goes straight to OPEN
        seen.append(opens_as(other, f"r:{g / LIMIT}"))
        os.chmod(g, 0o755)
        seen.append(opens_as(other, f"r:{g / LIMIT}"))
        return seen, os.stat(g / LIMIT).st_ino

    async def main() -> None:
        async with session_served(mounter=mounter) as (mnt, answered):
            seen, node = await in_thread(attack, mnt)
            assert seen == [["EACCES", "ok"], ["ok"], ["EACCES"], ["EACCES"], ["ok"]]
            assert answered == [node] * 6  # every one of them answered by the session

    trio.run(main)


# Each argument a path: its user.secret attribute and its attribute names, or the errno's name.
XATTRS = r"""
import errno, json, os, sys
seen = []
for path in sys.argv[1:]:
    for look in (lambda: os.getxattr(path, "user.secret").decode(), lambda: os.listxattr(path)):
        try:
            seen.append(look())
        except OSError as e:
            seen.append(errno.errorcode[e.errno])
print(json.dumps(seen))
"""


def xattrs_as(uid: int, path: Path) -> list:
    result = subprocess.run([*as_user(uid), PYTHON, "-c", XATTRS, str(path)], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_on_a_users_mount_attributes_are_read_only_where_the_kernel_lets_them_be():
    """The kernel's xattr_permission(): reading a user.* attribute takes read permission on the
    file (inode_permission(MAY_READ)), and listing them, as any path walk, search permission on
    the directories above.  Without default_permissions nothing but the server checks that: a
    user read the attributes of a 0600 file of root's, and through a 0700 directory, on a
    user's mount with allow_other."""
    mounter, other = USER_B, USER_A

    def attack(mnt: Path) -> list[list]:
        g = mnt / "g"
        os.mkdir(g)
        os.setxattr(g / LIMIT, "user.secret", b"hunter2")
        seen = [xattrs_as(other, g / LIMIT)]
        os.chmod(g / LIMIT, 0o600)
        seen.append(xattrs_as(other, g / LIMIT))
        seen.append(xattrs_as(mounter, g / LIMIT))
        os.chmod(g / LIMIT, 0o644)
        os.chmod(g, 0o700)
        seen.append(xattrs_as(other, g / LIMIT))
        return seen

    async def main() -> None:
        async with session_served(mounter=mounter) as (mnt, _):
            seen = await in_thread(attack, mnt)
        names = ["user.secret"]
        assert seen == [["hunter2", names], ["EACCES", names], ["hunter2", names],
                        ["EACCES", "EACCES"]]  # fmt: skip

    trio.run(main)


@pytest.mark.parametrize("name", ["cgroup.procs", "tasks"])
def test_an_open_the_session_answers_carries_its_openers_credentials(name):
    """A move is judged by the credentials the file was opened with (kernel commit
    1756d7994ad8): the session's OPEN takes them from its own request.  Opened by nobody and
    written by root (as a setuid program writes the stdout it was given): EACCES; opened by root
    and written by nobody: the move is made."""

    def attack(mnt: Path, victim: int) -> tuple[list[str], int]:
        group = mnt / "g"
        os.mkdir(group)
        delegate_to_nobody(group)
        os.close(os.open(group / name, os.O_WRONLY))  # libfuse's open: the next are the session's
        seen = [opened_by_written_by(group / name, victim, USER_A, 0), read(group / "tasks")]
        seen += [opened_by_written_by(group / name, victim, 0, USER_A), read(group / "tasks")]
        return seen, os.stat(group / name).st_ino

    async def main() -> None:
        async with session_served() as (mnt, answered):
            victim = await trio.lowlevel.open_process(["sleep", "60"])  # root's
            try:
                seen, node = await in_thread(attack, mnt, victim.pid)
            finally:
                victim.kill()
                await victim.wait()
            assert seen == [str(errno.EACCES), "", "ok", f"{victim.pid}\n"]
            assert answered.count(node) == (4 if name == "tasks" else 2)  # writes' (and reads')

    trio.run(main)


# -- stale paths: a node whose name changed, opened without a lookup ----------------------------


def test_descriptors_of_renamed_groups_open_the_files_they_name(group):
    """An O_PATH descriptor of a group and one of its file follow the group's rename, as kernfs
    does: openat() relative to the first and a reopen of the second through /proc/self/fd open
    the renamed group's file, not the file of a new group made under the old name (the session
    forgets what it learnt at every rename)."""
    old, new = group / "a", group / "b"
    os.mkdir(old)
    for _ in range(2):  # libfuse's open, then the session's
        os.close(os.open(old / LIMIT, os.O_WRONLY))
    directory = os.open(old, os.O_PATH | os.O_DIRECTORY)
    file = os.open(old / LIMIT, os.O_PATH)
    try:
        os.rename(old, new)
        os.mkdir(old)
        fd = os.open(LIMIT, os.O_WRONLY, dir_fd=directory)
        try:
            os.write(fd, b"16M")
        finally:
            os.close(fd)
        assert (read(new / LIMIT), read(old / LIMIT)) == (f"{16 << 20}\n", f"{UNLIMITED}\n")
        write(f"/proc/self/fd/{file}", "32M")
        assert (read(new / LIMIT), read(old / LIMIT)) == (f"{32 << 20}\n", f"{UNLIMITED}\n")
    finally:
        os.close(directory)
        os.close(file)


def test_a_removed_groups_file_reopened_through_proc_opens_nothing(group):
    """A descriptor of a removed group's file, reopened through /proc/self/fd (no lookup: the
    OPEN names the old node), opens nothing, even with a new group of the same name: the
    session forgot the node's path at rmdir, and libfuse has none.  (ENOENT; kernfs answers
    ENODEV: docs/differences.md, "Descriptors held across rmdir".)"""
    g = group / "g"
    os.mkdir(g)
    for _ in range(2):
        os.close(os.open(g / LIMIT, os.O_WRONLY))
    held = [os.open(g / LIMIT, os.O_WRONLY), os.open(g / LIMIT, os.O_PATH)]
    try:
        os.rmdir(g)
        os.mkdir(g)
        for fd in held:
            with pytest.raises(FileNotFoundError):
                os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
    finally:
        for fd in held:
            os.close(fd)
    assert read(g / LIMIT) == f"{UNLIMITED}\n"


# -- aborting the server: a RELEASE libfuse did not count reaches it, or an open is cut short ---

# Rounds of: a group made, its file opened four ways (one close-on-exec), a child forked that
# shares them, closes one and execs (dropping the close-on-exec one), the group renamed while
# they are open, more opens through the renamed group's O_PATH descriptor, a reopen through
# /proc/self/fd after rmdir, and everything closed in another order than it was opened.
CHURN = r"""
import os, sys
group, rounds = sys.argv[1], int(sys.argv[2])
name = "memory.limit_in_bytes"
g = os.open(group, os.O_RDONLY | os.O_DIRECTORY)
print("started", flush=True)
for i in range(rounds):
    os.mkdir("a", dir_fd=g)
    a = os.open("a", os.O_PATH | os.O_DIRECTORY, dir_fd=g)
    fds = [os.open(name, flags, dir_fd=a) for flags in
           (os.O_RDONLY, os.O_WRONLY, os.O_RDWR | os.O_CLOEXEC, os.O_RDONLY)]
    os.set_inheritable(fds[0], True)
    os.set_inheritable(fds[3], True)
    child = os.fork()
    if child == 0:
        os.close(fds[0])
        os.execv("/bin/true", ["true"])
    os.rename("a", "b", src_dir_fd=g, dst_dir_fd=g)
    more = [os.open(name, os.O_RDWR, dir_fd=a) for _ in range(3)]
    os.write(more[0], b"%dM" % (i + 1))
    os.close(fds[1])
    os.waitpid(child, 0)
    for fd in fds[2:] + fds[:1]:
        os.close(fd)
    os.rmdir("b", dir_fd=g)
    try:
        os.close(os.open(f"/proc/self/fd/{more[1]}", os.O_RDONLY))
        sys.exit("a removed group's file opened")
    except FileNotFoundError:
        pass
    for fd in reversed(more):
        os.close(fd)
    os.close(a)
    if i == rounds // 2:
        print("half", flush=True)
print("done", flush=True)
"""

# Opens and closes a file, and a subgroup's file across renames, until killed.
OPENER = r"""
import os, sys
group, me = sys.argv[1], sys.argv[2]
g = os.open(group, os.O_RDONLY | os.O_DIRECTORY)
os.mkdir(me, dir_fd=g)
print("started", flush=True)
names = [me, me + "-renamed"]
while True:
    for old, new in (names, names[::-1]):
        d = os.open(old, os.O_PATH | os.O_DIRECTORY, dir_fd=g)
        for _ in range(20):
            os.close(os.open("memory.limit_in_bytes", os.O_RDONLY, dir_fd=d))
            os.close(os.open("memory.usage_in_bytes", os.O_RDONLY, dir_fd=g))
        os.rename(old, new, src_dir_fd=g, dst_dir_fd=g)
        os.close(d)
"""
OPENERS = 3
CHURN_ROUNDS = 200


def test_no_interleaving_of_opens_closes_forks_renames_and_kills_ends_the_server(world):
    """libfuse2 asserts that a node's open count stays positive when it counts a RELEASE back,
    and is built with asserts: a RELEASE of an open the session answered, passed to libfuse,
    would end the server.  Descriptors shared by fork and dropped at exec, closed in every
    order, renames and rmdir while they are open, and openers killed (SIGKILL) in the middle of
    their opens, over and over: the server still answers, and every group's file works."""
    group = world.delegate("churn", USER_A)

    def start(script: str, *args: str) -> tuple[subprocess.Popen, int]:
        process = subprocess.Popen([*as_nobody(), PYTHON, "-c", script, *args],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   text=True)  # fmt: skip
        pidfd = linux.pidfd_open(process.pid)  # our child, not yet waited for: its own PID
        assert process.stdout.readline() == "started\n"
        return process, pidfd

    def kill(openers: list[tuple[subprocess.Popen, int]]) -> None:
        for process, pidfd in openers:
            linux.pidfd_send_signal(pidfd, signal.SIGKILL)
            process.wait(timeout=60)
            os.close(pidfd)

    openers = [start(OPENER, str(group), f"o{i}") for i in range(OPENERS)]
    churn = None
    try:
        churn = start(CHURN, str(group), str(CHURN_ROUNDS))
        assert churn[0].stdout.readline() == "half\n"
        kill(openers)  # mid-open, mid-rename: wherever they are
        openers = [start(OPENER, str(group), f"p{i}") for i in range(OPENERS)]
        assert churn[0].stdout.readline() == "done\n"
        assert churn[0].wait(timeout=60) == 0
    finally:
        kill(openers)
        if churn is not None and churn[0].poll() is None:
            kill([churn])
    assert world.mount.process.poll() is None, "the server ended"
    for sub in os.listdir(group):
        if (group / sub).is_dir():
            write(group / sub / LIMIT, "4M")
            assert read(group / sub / LIMIT) == f"{4 << 20}\n"
