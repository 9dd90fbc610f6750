"""``fakecgfs run``: a command in a private mount namespace with the fake at a real path.

This process leaves the host's mount namespace (unshare(CLONE_NEWNS)), makes every mount
private so that nothing propagates back, covers PATH with an empty tmpfs and mounts fakecgfs
on it (its server, started from here, lives in the namespace too), runs the command, then ends
the server.  The namespace, and with it every mount made here, disappears with its last
process: the host never sees any of it.

If PATH does not exist, it is not created on the host: its nearest existing ancestor is covered
by a tmpfs in which the ancestor's entries are bind-mounted back (so siblings stay visible) and
the missing directories are made.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import stat
import subprocess
import sys
import tempfile

from .. import mounting, runtime
from .mount import EXIT_TIMEOUT, READY_TIMEOUT, fuse_unavailable_reason

CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

EXIT_RUN_FAILED = 125  # as env(1), timeout(1), chroot(1): the wrapper itself failed
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127

NO_PRIVILEGE = """\
fakecgfs run: needs root or CAP_SYS_ADMIN to create a mount namespace ({error}).
  Run it as root:               sudo fakecgfs run {example}
  or in a user namespace:       unshare -rm fakecgfs run {example}
                                (needs unprivileged user namespaces, and a /dev/fuse you can open)
  in a container:               --cap-add SYS_ADMIN --device /dev/fuse (or --privileged)
Without a namespace, mount the fake anywhere (fakecgfs mount DIR) and point the tool at DIR."""

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]  # fmt: skip
_libc.unshare.argtypes = [ctypes.c_int]


class RunError(Exception):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def unshare_mounts() -> None:
    if hasattr(os, "unshare"):  # Python 3.12+
        os.unshare(CLONE_NEWNS)
    else:
        _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:  # fmt: skip
    encode = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(fstype), flags,
                       encode(data)), f"mount {target}")  # fmt: skip


def _cover_with_tmpfs(path: str) -> None:
    st = os.stat(path)
    mount("tmpfs", path, "tmpfs", 0,
          f"mode={stat.S_IMODE(st.st_mode):o},uid={st.st_uid},gid={st.st_gid}")


def _mirror_and_create(target: str) -> None:
    """Make ``target`` (which does not exist) without touching the host: cover its nearest
    existing ancestor with a tmpfs holding bind mounts of the ancestor's entries."""
    ancestor = os.path.dirname(target)
    while not os.path.isdir(ancestor):
        if os.path.lexists(ancestor):
            raise RunError(f"{ancestor} is not a directory")
        ancestor = os.path.dirname(ancestor)
    if ancestor == "/":
        raise RunError(f"{target}: will not cover / with a tmpfs; create {target} first")
    entries = os.listdir(ancestor)
    original = os.open(ancestor, os.O_PATH | os.O_DIRECTORY)
    try:
        _cover_with_tmpfs(ancestor)
        old = f"/proc/self/fd/{original}"  # still reaches the covered directory and its mounts
        for name in entries:
            source, here = os.path.join(old, name), os.path.join(ancestor, name)
            try:
                st = os.lstat(source)
                if stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(source), here)
                    continue
                if stat.S_ISDIR(st.st_mode):
                    os.mkdir(here)
                else:
                    os.close(os.open(here, os.O_CREAT | os.O_WRONLY, 0o600))
                mount(source, here, None, MS_BIND | MS_REC)
            except OSError as e:
                print(f"fakecgfs run: {ancestor}/{name} not visible in the namespace: {e}",
                      file=sys.stderr)  # fmt: skip
    finally:
        os.close(original)
    os.makedirs(target, mode=0o755)


def prepare(target: str) -> None:
    """Leave the host's mount namespace and give ``target`` an empty directory to mount on."""
    unshare_mounts()
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    if os.path.isdir(target):
        _cover_with_tmpfs(target)
    elif os.path.lexists(target):
        raise RunError(f"{target}: not a directory")
    else:
        _mirror_and_create(target)


def _start_server(target: str, options: list[str], log_path: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "fakecgfs", "mount", "--foreground", target, *options]
    with open(log_path, "wb") as log:  # its own session: a Ctrl-C at the terminal is not for it
        server = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  start_new_session=True)  # fmt: skip
    ready = mounting.wait_until(
        lambda: server.poll() is not None or mounting.is_fakecgfs_mount(target), READY_TIMEOUT
    )
    if server.poll() is not None or not ready:
        _stop_server(server)
        with open(log_path, errors="replace") as f:
            raise RunError(f"the server did not come up; its log:\n{f.read()[-2000:]}")
    return server


def _stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # libfuse's handler unmounts and returns
        try:
            server.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _run_command(command: list[str], env: dict[str, str]) -> int:
    """Run the command as a shell would, and return its status as a shell reports it.  While
    it runs, Ctrl-C and Ctrl-\\ reach it from the terminal and are ignored here; SIGTERM and
    SIGHUP sent to fakecgfs run are passed on."""
    try:
        child = subprocess.Popen(command, env=env)
    except FileNotFoundError:
        print(f"fakecgfs run: {command[0]}: command not found", file=sys.stderr)
        return EXIT_NOT_FOUND
    except PermissionError as e:
        print(f"fakecgfs run: {command[0]}: {e.strerror}", file=sys.stderr)
        return EXIT_CANNOT_EXECUTE
    forward = lambda signum, frame: child.send_signal(signum)  # noqa: E731
    ignore = lambda signum, frame: None  # noqa: E731  (a handler, not SIG_IGN: exec resets it)
    previous = {sig: signal.signal(sig, handler) for sig, handler in (
        (signal.SIGINT, ignore), (signal.SIGQUIT, ignore),
        (signal.SIGTERM, forward), (signal.SIGHUP, forward))}  # fmt: skip
    try:
        while True:
            try:
                status = child.wait()
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - status if status < 0 else status


def run(command: list[str], mount_at: str, mount_options: list[str]) -> int:
    target = os.path.abspath(mount_at)
    reason = fuse_unavailable_reason()
    if reason:
        print(f"fakecgfs run: FUSE is unavailable here: {reason}", file=sys.stderr)
        return EXIT_RUN_FAILED
    cwd = os.getcwd()
    try:
        prepare(target)
    except OSError as e:
        if e.errno == errno.EPERM:
            example = " ".join(["--"] + command) if len(command) < 6 else "-- COMMAND ..."
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
    try:  # in the private runtime directory: nothing of ours lies in a shared one
        with runtime.RuntimeDir() as rundir:
            fd, log_path = tempfile.mkstemp(prefix="run-", suffix=".log", dir=rundir.path)
    except OSError as e:
        print(f"fakecgfs run: {e}", file=sys.stderr)
        return EXIT_RUN_FAILED
    os.close(fd)
    try:
        try:
            server = _start_server(target, mount_options, log_path)
        except RunError as e:
            print(f"fakecgfs run: {e}", file=sys.stderr)
            return EXIT_RUN_FAILED
        try:
            env = dict(os.environ, FAKECG_ROOT=target)
            return _run_command(command, env)
        finally:
            _stop_server(server)
    finally:
        os.unlink(log_path)
