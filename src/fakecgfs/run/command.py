"""``fakecgfs run``: a command in a namespace where the fake is the only cgroup hierarchy.

The order of things: leave the host's mount namespace and hide its hierarchies (namespace.py);
start the fake's server in the namespace; start the command, whose child, between fork and
exec, drops CAP_SYS_ADMIN and CAP_SYS_PTRACE (privileges.py), installs the seccomp filter and
hands the listener to this process over a socket (SCM_RIGHTS); answer the listener's
notifications in a thread (supervisor.py) while waiting for the command; then stop the
supervisor and the server.
"""

from __future__ import annotations

import array
import dataclasses
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable

from .. import linux, mounting
from . import privileges, seccomp
from .namespace import RunError, prepare
from .supervisor import Fake, Supervisor

EXIT_RUN_FAILED = 125  # as env(1), timeout(1), chroot(1): the wrapper itself failed
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127

NO_PRIVILEGE = """\
fakecgfs run: cannot create a mount namespace ({error}).
  As root:                      sudo fakecgfs run {example}
  As a user, it makes a user namespace itself: that needs unprivileged user namespaces
  (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone where it exists, an
  AppArmor or container policy may forbid them) and a /dev/fuse you can open.
  In a container:               --cap-add SYS_ADMIN --device /dev/fuse (or --privileged)
Without a namespace, mount the fake anywhere (fakecgfs mount DIR) and point the tool at DIR."""

NOT_PRESENTED = """\
fakecgfs run: {reason}; so the command will notice the fake: /proc/self/mounts and mountinfo
  show it as fuse.fakecgfs, statfs() reports FUSE_SUPER_MAGIC, /proc/self/cgroup shows the
  host's groups, and mount -t cgroup is refused only for want of CAP_SYS_ADMIN."""


def server_supports_real_processes() -> bool:
    """The server has issue 14's mode (MountOptions.real_processes)."""
    from ..cgroupfs.server import MountOptions

    return "real_processes" in {f.name for f in dataclasses.fields(MountOptions)}


def _start_server(target: str, options: list[str], private: str) -> subprocess.Popen:
    """The server, logging into ``private``, a directory only we can use.  Its runtime files
    go there too (TMPDIR): as root of a user namespace it has no /run/fakecgfs of its own, and
    its fallback in the shared /tmp could have been planted."""
    log_path = os.path.join(private, "server.log")
    env = dict(mounting.server_environment(), TMPDIR=private)
    with open(log_path, "xb") as log:  # its own session: a Ctrl-C at the terminal is not for it
        server = mounting.start_server(target, options, log, env=env, start_new_session=True)
    if not mounting.wait_mounted(server, target):
        mounting.stop_server(server)
        with open(log_path, errors="replace") as f:
            raise RunError(mounting.mount_failure(f.read()))
    return server


def _child_setup(drop: bool, seccomp_filter: seccomp.Filter | None,
                 channel: socket.socket) -> Callable[[], None]:  # fmt: skip
    """What the command's child does between fork and exec (a preexec_fn: the parent has no
    other thread then).  Its failure is written to ``channel`` before it is raised."""

    def setup() -> None:
        try:
            if drop:
                privileges.drop_capabilities()
            if seccomp_filter is not None:
                if drop:  # without CAP_SYS_ADMIN, a filter needs no_new_privs
                    privileges.set_no_new_privs()
                listener = seccomp_filter.install()
                socket.send_fds(channel, [b"L"], [listener])
                os.close(listener)
        except OSError as e:
            channel.send(f"E{e}".encode(errors="replace"))
            raise

    return setup


def _take_listener(channel: socket.socket) -> int | None:
    """The child's listener, or None; RunError with the child's reason if its set-up failed."""
    # Not socket.recv_fds(), which drops its flags argument before Python 3.12.
    space = socket.CMSG_SPACE(array.array("i").itemsize)
    try:
        message, ancillary, _, _ = channel.recvmsg(
            4096, space, socket.MSG_CMSG_CLOEXEC | socket.MSG_DONTWAIT
        )
    except BlockingIOError:
        return None
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if message.startswith(b"E"):
        for fd in fds:
            os.close(fd)
        raise RunError(f"preparing the command: {message[1:].decode(errors='replace')}")
    return fds[0] if fds else None


def _run_command(command: list[str], env: dict[str, str], fake: Fake, *,
                 drop: bool, present: bool) -> int:  # fmt: skip
    """Run the command as a shell would, and return its status as a shell reports it.  While
    it runs, Ctrl-C and Ctrl-\\ reach it from the terminal and are ignored here; SIGTERM and
    SIGHUP sent to fakecgfs run are passed on."""
    seccomp_filter = seccomp.filter_for_this_machine() if present else None
    # The handlers go in before the child starts: it may print and be signalled (a test's
    # SIGTERM after its first line) before this process would otherwise get to them.
    started: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def forward(signum: int, frame: object) -> None:
        if started:
            started[0].send_signal(signum)
        else:
            pending.append(signum)

    ignore = lambda signum, frame: None  # a handler, not SIG_IGN: exec resets it
    previous = {sig: signal.signal(sig, handler) for sig, handler in (
        (signal.SIGINT, ignore), (signal.SIGQUIT, ignore),
        (signal.SIGTERM, forward), (signal.SIGHUP, forward))}  # fmt: skip
    supervisor = None
    try:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            try:
                setup = _child_setup(drop, seccomp_filter, child_end)
                child = subprocess.Popen(command, env=env, preexec_fn=setup)
            except (FileNotFoundError, PermissionError) as e:
                _close_listener(parent_end)
                if isinstance(e, FileNotFoundError):
                    print(f"fakecgfs run: {command[0]}: command not found", file=sys.stderr)
                    return EXIT_NOT_FOUND
                print(f"fakecgfs run: {command[0]}: {e.strerror}", file=sys.stderr)
                return EXIT_CANNOT_EXECUTE
            except subprocess.SubprocessError:
                _take_listener(parent_end)  # raises with the child's reason
                raise RunError("preparing the command failed") from None
            started.append(child)
            for signum in pending:
                child.send_signal(signum)
            listener = _take_listener(parent_end)
        finally:
            child_end.close()
            parent_end.close()
        if listener is not None:
            supervisor = Supervisor(listener, fake, linux.path_calls())
            supervisor.start()
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if supervisor is not None:
            supervisor.stop()
    return 128 - status if status < 0 else status


def _close_listener(channel: socket.socket) -> None:
    try:
        fd = _take_listener(channel)
    except RunError:
        return
    if fd is not None:
        os.close(fd)


def run(command: list[str], mount_at: str, mount_options: list[str], *,
        keep_cap_sys_admin: bool = False, real_processes: bool = True) -> int:  # fmt: skip
    """Run ``command`` with the fake at ``mount_at``; its exit status as a shell reports it."""
    target = os.path.abspath(mount_at)
    reason = mounting.fuse_unavailable_reason()
    if reason:
        print(f"fakecgfs run: FUSE is unavailable here: {reason}", file=sys.stderr)
        return EXIT_RUN_FAILED
    cwd = os.getcwd()
    try:
        prepare(target)
    except OSError as e:
        if e.errno == errno.EPERM:
            example = " ".join(["--", *command]) if len(command) < 6 else "-- COMMAND ..."
            print(NO_PRIVILEGE.format(error=e.strerror or e, example=example), file=sys.stderr)
        else:
            print(f"fakecgfs run: cannot prepare {target}: {e}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except RunError as e:
        print(f"fakecgfs run: {e}", file=sys.stderr)
        return EXIT_RUN_FAILED
    try:
        os.chdir(cwd)  # if it was under the covered path, see the namespace's view of it
    except OSError:
        pass
    if real_processes and server_supports_real_processes():
        mount_options = [*mount_options, "--real-processes"]
    unavailable = seccomp.unavailable_reason()
    if unavailable:
        print(NOT_PRESENTED.format(reason=unavailable), file=sys.stderr)
    # 0700 and named unpredictably: nothing of ours lies at a name planted in a shared place
    private = tempfile.mkdtemp(prefix="fakecgfs-run-")
    try:
        try:
            server = _start_server(target, mount_options, private)
        except RunError as e:
            print(f"fakecgfs run: {e}", file=sys.stderr)
            return EXIT_RUN_FAILED
        try:
            fake = Fake(target, os.stat(target).st_dev)
            env = dict(os.environ, FAKECG_ROOT=target)
            return _run_command(command, env, fake, drop=not keep_cap_sys_admin,
                                present=unavailable is None)  # fmt: skip
        except RunError as e:
            print(f"fakecgfs run: {e}", file=sys.stderr)
            return EXIT_RUN_FAILED
        finally:
            mounting.stop_server(server)
    finally:
        shutil.rmtree(private, ignore_errors=True)
