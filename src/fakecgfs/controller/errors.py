"""The one exception the controller raises: an errno, as the kernel's handlers return one."""

from __future__ import annotations

import errno
import os


class ControllerError(OSError):
    """A refused operation, carrying the errno the kernel would return for it."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(code, reason or os.strerror(code))
        self.reason = reason

    @property
    def errno_name(self) -> str:
        return errno.errorcode.get(self.errno or 0, str(self.errno))
