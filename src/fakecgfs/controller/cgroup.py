"""What is the same for every era's memory controller: cgroup core's tree of groups (finding
one by path, renaming one within its parent: kernel/cgroup.c, not memcontrol.c), and the
simulator's listeners of controller events (the trace, the log, fake.daemons)."""

from __future__ import annotations

import errno
from collections.abc import MutableMapping
from typing import Any, Protocol, TypeVar

import trio

from .errors import ControllerError
from .events import Event, EventKind, Listener


class Node(Protocol):
    """A group as cgroup core sees it: a name in its parent's children."""

    name: str

    @property
    def parent(self) -> Any: ...

    @property
    def children(self) -> MutableMapping[str, Any]: ...

    @property
    def path(self) -> str: ...


N = TypeVar("N", bound=Node)


def lookup(root: N, path: str) -> N:
    """The group at ``path`` ("/", "/a/b") below ``root``; ENOENT if there is none."""
    node = root
    for part in filter(None, path.split("/")):
        child = node.children.get(part)
        if child is None:
            raise ControllerError(errno.ENOENT, f"no group {path}")
        node = child
    return node


def rename(node: Node, new_name: str) -> str | None:
    """cgroup_rename(): within the same parent only (the VFS asks no more of cgroupfs), the
    group keeping its state and children.  Its old path, or None if the name is unchanged."""
    parent = node.parent
    if parent is None:
        raise ControllerError(errno.EBUSY, "the root cannot be renamed")
    if new_name == node.name:
        return None
    if new_name in parent.children:
        raise ControllerError(errno.EEXIST, f"group {new_name} exists")
    old = node.path
    del parent.children[node.name]
    node.name = new_name
    parent.children[new_name] = node
    return old


class EventSource:
    """A controller's listeners; each controller sets ``_listeners`` and ``failed_listeners``
    to empty lists as it is made."""

    _listeners: list[Listener]
    failed_listeners: list[str]  # why each listener that gave up did (fake.daemons)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def listener_failed(self, listener: Listener, why: str) -> None:
        """A listener gave up (the trace on a full disk): stop calling it, and keep why, for
        fake.daemons to show."""
        if listener in self._listeners:
            self._listeners.remove(listener)
        self.failed_listeners.append(why)

    def emit(self, memcg: Node, kind: EventKind, **values: Any) -> None:
        if not self._listeners:
            return
        event = Event(trio.current_time(), memcg.path, kind, values)
        for listener in list(self._listeners):
            listener(event)
