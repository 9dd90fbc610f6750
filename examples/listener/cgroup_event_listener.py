#!/usr/bin/env python3
"""A cgroup v1 memory event listener, written as Documentation/admin-guide/cgroup-v1/memory.rst
describes (and as tools/cgroup/cgroup_event_listener.c does):

    cgroup_event_listener.py GROUPDIR CONTROL_FILE [ARGS] [--count N]

It opens an eventfd, opens GROUPDIR/CONTROL_FILE, writes "<event_fd> <control_fd> ARGS" to
GROUPDIR/cgroup.event_control, prints "registered", then prints each value read from the eventfd
(blocking) until N events were seen.  It works unchanged on a real v1 hierarchy and on fakecgfs.
Examples: memory.usage_in_bytes 64M, memory.oom_control, memory.pressure_level medium.
"""

import argparse
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("group")
    parser.add_argument("control")
    parser.add_argument("args", nargs="?", default="")
    parser.add_argument("--count", type=int, default=1, help="events to wait for")
    options = parser.parse_args()

    efd = os.eventfd(0)
    cfd = os.open(os.path.join(options.group, options.control), os.O_RDONLY)
    line = f"{efd} {cfd} {options.args}".rstrip(" ")
    ecfd = os.open(os.path.join(options.group, "cgroup.event_control"), os.O_WRONLY)
    try:
        os.write(ecfd, line.encode())
    except OSError as e:
        print(f"registration failed: {e}", file=sys.stderr)
        return 1
    finally:
        os.close(ecfd)
    print("registered", flush=True)
    for _ in range(options.count):
        print(os.eventfd_read(efd), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
