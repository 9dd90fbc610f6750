"""Attacks on a shared fakecgfs mount, run as an unprivileged user by tests/fs/test_security.py.

Standard library only: the tests run it with the system python3 under setpriv, since the
project's venv may not be readable by that user.  ``attacker.py ATTACK GROUP [ARGS...]``; each
attack prints one JSON object of what it saw, then exits.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
import sys
import threading
import time

FULL = 0xFFFFFFFFFFFFFFFE  # the most a write(2) can put in an eventfd


def errname(error: OSError) -> str:
    return errno.errorcode.get(error.errno, str(error.errno))


def register(group: str, efd: int, cfd: int, args: str = "") -> str:
    """One write of a registration line; "ok" or the errno's name."""
    line = f"{efd} {cfd}" + (f" {args}" if args else "")
    fd = os.open(os.path.join(group, "cgroup.event_control"), os.O_WRONLY)
    try:
        os.write(fd, line.encode())
        return "ok"
    except OSError as e:
        return errname(e)
    finally:
        os.close(fd)


def write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def eventfd_count(fd: int) -> int:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("eventfd-count:"):
                return int(line.split()[1], 16)
    raise RuntimeError("no eventfd-count")


def done(result: dict) -> None:
    print(json.dumps(result), flush=True)
    os._exit(0)  # threads left blocked in an eventfd do not hold the exit


def full_eventfd(group: str, rounds: str) -> None:
    """A blocking eventfd at its maximum whenever a threshold is crossed, again and again: the
    main thread drains it, a second thread fills it back to the brim, then the main thread
    crosses the threshold."""
    efd = os.eventfd(0)  # blocking
    cfd = os.open(os.path.join(group, "memory.usage_in_bytes"), os.O_RDONLY)
    registered = register(group, efd, cfd, "4096")

    def keep_full() -> None:
        while True:
            count = eventfd_count(efd)
            if count < FULL:
                os.eventfd_write(efd, FULL - count)
            time.sleep(0.0005)

    threading.Thread(target=keep_full, daemon=True).start()

    def drain_and_wait_full() -> None:
        os.eventfd_read(efd)
        deadline = time.monotonic() + 10
        while eventfd_count(efd) < FULL:
            if time.monotonic() > deadline:
                raise RuntimeError("the filling thread is stuck")
            time.sleep(0.0005)

    for _ in range(int(rounds)):
        drain_and_wait_full()
        write(os.path.join(group, "fake.charge"), "4K")  # 0 -> 4096: crosses up
        drain_and_wait_full()
        write(os.path.join(group, "fake.uncharge"), "4K")  # and down
    count = eventfd_count(efd)
    readable = bool(select.select([efd], [], [], 0)[0])
    done({"registered": registered, "readable": readable, "count": count})


def swap_race(group: str, tries: str) -> None:
    """Register descriptor N while a second thread dup2()s a socket and the eventfd over N in
    turn; then cross the threshold.  The socket's peer must receive nothing."""
    sys.setswitchinterval(1e-6)
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    mine, peer = socket.socketpair()
    peer.setblocking(False)
    cfd = os.open(os.path.join(group, "memory.usage_in_bytes"), os.O_RDONLY)
    target = os.dup(efd)
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            os.dup2(mine.fileno(), target)
            os.dup2(efd, target)

    thread = threading.Thread(target=swap)
    thread.start()
    outcomes: dict[str, int] = {}
    try:
        for _ in range(int(tries)):
            outcome = register(group, target, cfd, "4096")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        stop.set()
        thread.join()
    os.dup2(efd, target)
    write(os.path.join(group, "fake.charge"), "4K")
    write(os.path.join(group, "fake.uncharge"), "4K")
    try:
        leaked = len(peer.recv(4096))
    except BlockingIOError:
        leaked = 0
    done(
        {
            "outcomes": outcomes,
            "leaked": leaked,
            "socket": os.readlink(f"/proc/self/fd/{mine.fileno()}"),
            "signals": eventfd_count(efd),
        }
    )


def many_registrations(group: str, count: str) -> None:
    """``count`` registrations of one eventfd, then one signal to all of them."""
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    cfd = os.open(os.path.join(group, "memory.usage_in_bytes"), os.O_RDONLY)
    outcomes: dict[str, int] = {}
    for _ in range(int(count)):
        outcome = register(group, efd, cfd, "4096")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    write(os.path.join(group, "fake.charge"), "4K")
    done({"outcomes": outcomes, "signals": eventfd_count(efd)})


def flood(group: str, count: str, hold: str = "") -> None:
    """``count`` registrations, each of its own eventfd; with ``hold``, wait for a line on
    stdin before exiting (the eventfds stay open until then)."""
    cfd = os.open(os.path.join(group, "memory.usage_in_bytes"), os.O_RDONLY)
    outcomes: dict[str, int] = {}
    kept = []
    for _ in range(int(count)):
        efd = os.eventfd(0, os.EFD_NONBLOCK)
        kept.append(efd)
        outcome = register(group, efd, cfd, "4096")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(json.dumps({"outcomes": outcomes}), flush=True)
    if hold:
        sys.stdin.readline()
    os._exit(0)


def o_path(group: str, name: str) -> None:
    """Register on a control file through an O_PATH descriptor (the event_fd too, in turn)."""
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    cfd = os.open(os.path.join(group, name), os.O_PATH)
    efd_path = os.open(f"/proc/self/fd/{efd}", os.O_PATH)
    control = os.open(os.path.join(group, "memory.oom_control"), os.O_RDONLY)
    done(
        {"control": register(group, efd, cfd, "4096"), "event": register(group, efd_path, control)}
    )


def held_open(group: str, name: str) -> None:
    """Open a control file for reading, wait until told (its mode changes meanwhile), then
    register on it."""
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    cfd = os.open(os.path.join(group, name), os.O_RDONLY)
    print("opened", flush=True)
    sys.stdin.readline()
    done({"result": register(group, efd, cfd, "4096" if "usage" in name else "")})


def xattrs(path: str, count: str, size: str) -> None:
    """Set ``count`` user.* attributes of ``size`` bytes on one file; the errno at the first
    refusal."""
    value = b"x" * int(size)
    for i in range(int(count)):
        try:
            os.setxattr(path, f"user.a{i}", value)
        except OSError as e:
            done({"set": i, "error": errname(e)})
    done({"set": int(count), "error": None})


def mkdirs(group: str, count: str) -> None:
    """mkdir ``count`` groups side by side; the errno at the first refusal."""
    for i in range(int(count)):
        try:
            os.mkdir(os.path.join(group, f"g{i}"))
        except OSError as e:
            done({"made": i, "error": errname(e)})
    done({"made": int(count), "error": None})


def reader(path: str) -> None:
    """Read ``path`` (open, read, close) until stdin closes; the slowest read, in seconds."""
    slowest, reads = 0.0, 0
    while not select.select([sys.stdin], [], [], 0)[0]:
        start = time.monotonic()
        fd = os.open(path, os.O_RDONLY)
        try:
            os.read(fd, 4096)
        finally:
            os.close(fd)
        slowest = max(slowest, time.monotonic() - start)
        reads += 1
    done({"slowest": slowest, "reads": reads})


ATTACKS = {f.__name__: f for f in (full_eventfd, swap_race, many_registrations, flood, o_path,
                                   held_open, xattrs, mkdirs, reader)}  # fmt: skip

if __name__ == "__main__":
    ATTACKS[sys.argv[1]](*sys.argv[2:])
