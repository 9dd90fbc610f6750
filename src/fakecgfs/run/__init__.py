"""``fakecgfs run``: a command in a mount namespace where the fake is the only cgroup hierarchy,
without the capabilities to reach a real one, and with /proc and statfs() presenting the fake
as the kernel presents a v1 memory hierarchy (a seccomp user-notification supervisor).

namespace.py  the mount namespace (and, without root, the user namespace)
privileges.py the capabilities the command loses
seccomp.py    the filter, the listener and its ioctls
supervisor.py the thread that answers the command's trapped system calls
procfiles.py  the presented /proc texts
command.py    the whole run
"""

from .command import run

__all__ = ["run"]
