"""Running things as a normal user (uid 65534 through setpriv) in tests that start as root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN_TIMEOUT = 90

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def user_python() -> tuple[str, dict[str, str]]:
    """An interpreter a user may run in a user namespace (this venv's may live under a private
    home) with this checkout and its dependencies on the path, or skip."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run([*NOBODY, "unshare", "--user", "--map-root-user", candidate, "-c",
                                "import sys; print(sys.version_info[:2])"],
                               capture_output=True, text=True, timeout=30)  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == str(sys.version_info[:2]):
            break
    else:
        pytest.skip(f"no Python {sys.version_info[:2]} that uid 65534 may run")
    import trio

    import fakecgfs

    paths = [str(Path(fakecgfs.__file__).parents[1]), str(Path(trio.__file__).parents[1])]
    return candidate, dict(os.environ, PYTHONPATH=os.pathsep.join(paths), HOME="/tmp")


def user_namespaces_reason() -> str | None:
    try:
        if Path("/proc/sys/kernel/unprivileged_userns_clone").read_text().strip() == "0":
            return "kernel.unprivileged_userns_clone is 0"
    except FileNotFoundError:
        pass
    if Path("/proc/sys/user/max_user_namespaces").read_text().strip() == "0":
        return "user.max_user_namespaces is 0"
    probe = subprocess.run([*NOBODY, "unshare", "--user", "--map-root-user", "true"],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    if probe.returncode != 0:
        return f"unprivileged user namespaces are not allowed here: {probe.stderr.strip()}"
    return None


def as_user_with_fuse(tmp_path: Path, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``command`` as uid 65534 in a private mount namespace where /dev/fuse is a 0666 copy of
    the device (char 10,229): the host's /dev/fuse is never changed."""
    device = tmp_path / "fuse"
    outer = f'mknod -m 0666 {device} c 10 229 && mount --bind {device} /dev/fuse && exec "$@"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", outer,
                           "sh", *NOBODY, *command], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, **kwargs)  # fmt: skip


OTHER = ["setpriv", "--reuid=65533", "--regid=65533", "--clear-groups"]


def in_fuse_namespace(
    script: str, *, device: bool = True, fuse_conf: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:  # fmt: skip
    """``sh -c script`` as root in a private mount namespace made for the test, where, with
    ``device``, /dev/fuse is a 0666 copy of the FUSE device (char 10,229) and, with
    ``fuse_conf``, /etc/fuse.conf has that text: the host's files are never changed.  The
    script runs users' commands through "$AS_USER" (uid 65534) and "$AS_OTHER" (uid 65533)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fakecgfs-users-") as scratch:
        prelude = ""
        if device:
            prelude += (
                f"mknod -m 0666 {scratch}/fuse c 10 229 && "
                f"mount --bind {scratch}/fuse /dev/fuse && "
            )
        if fuse_conf is not None:
            Path(scratch, "fuse.conf").write_text(fuse_conf)
            prelude += f"mount --bind {scratch}/fuse.conf /etc/fuse.conf && "
        env = dict(env or os.environ, AS_USER=" ".join(NOBODY), AS_OTHER=" ".join(OTHER))
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               prelude + "true\n" + script], capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, env=env, cwd="/")  # fmt: skip
