"""fusepy is pinned to the exact version tested, because cgroupfs/session.py relies on its
private internals: this checks that the installed fusepy is the pinned one and that every
internal the session uses is there, with the shape it is used with.  Moving the pin means
re-reading cgroupfs/session.py against the new fusepy and updating this list."""

from __future__ import annotations

import ctypes
import inspect
import re
import tomllib
from importlib import metadata
from pathlib import Path

import fuse

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def pinned_fusepy() -> str:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pins = [re.fullmatch(r"fusepy==([\w.]+)", d) for d in dependencies if d.startswith("fusepy")]
    assert len(pins) == 1 and pins[0], f"fusepy must be pinned with ==: {dependencies}"
    return pins[0].group(1)


def test_the_installed_fusepy_is_the_pinned_one():
    assert metadata.version("fusepy") == pinned_fusepy()


def test_the_private_internals_the_session_uses_are_there():
    # the loaded libfuse2 (session._declare gives its session calls prototypes)
    assert isinstance(fuse._libfuse, ctypes.CDLL)
    # _Callbacks subclasses FUSE without calling its __init__ (which would mount), so it sets
    # the attributes __init__ would, and wraps callbacks in FUSE._wrapper, which records fatal
    # errors in the name-mangled __critical_exception
    assert inspect.signature(fuse.FUSE._wrapper).parameters.keys() >= {"func", "args"}
    assert "self.__critical_exception" in inspect.getsource(fuse.FUSE._wrapper)
    init = inspect.getsource(fuse.FUSE.__init__)
    for attribute in ("self.operations", "self.raw_fi", "self.encoding", "self.use_ns"):
        assert attribute in init, attribute
    assert callable(fuse.FUSE._decode_optional_path)
    assert list(fuse.FUSE._normalize_fuse_options(fsname="cgroup", allow_other=True)) == [
        "fsname=cgroup", "allow_other"]  # fmt: skip
    # the operations table the session fills, field by field
    names = [name for name, *_ in fuse.fuse_operations._fields_]
    for name in ("getattr", "fgetattr", "open", "release", "mkdir", "rmdir", "ftruncate"):
        assert name in names, name
    # getattr fills fusepy's struct stat through these fields
    stat_fields = {name for name, _ in fuse.c_stat._fields_}
    assert {"st_atimespec", "st_mtimespec", "st_ctimespec", "st_mode", "st_nlink"} <= stat_fields
    # and the public API the filesystem uses
    assert issubclass(fuse.FuseOSError, OSError)
    assert callable(fuse.fuse_get_context)
