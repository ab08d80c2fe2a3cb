"""The lab state file (``lab_dir()/lab.json``): what `provision lab up` created."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision import paths
from provision.errors import UsageError
from provision.lab.backend import NodeRecord
from provision.safeload import InputError, load_json

STATE_VERSION = 1


def state_file() -> Path:
    return paths.lab_dir() / "lab.json"


def lab_id(lab_dir: Path | None = None) -> str:
    """Short id of a lab directory: names docker objects so labs of different
    XDG_STATE_HOMEs (test sessions, users) never collide."""
    d = str((lab_dir or paths.lab_dir()).resolve())
    return hashlib.sha256(d.encode()).hexdigest()[:6]


@dataclass
class LabState:
    kind: str
    arch: str
    mode: str
    user: str
    control_planes: list[str] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)
    nodes: list[NodeRecord] = field(default_factory=list)
    image: str = ""
    lab_id: str = ""

    def node(self, name: str) -> NodeRecord | None:
        return next((n for n in self.nodes if n.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION, "kind": self.kind, "arch": self.arch, "mode": self.mode,
            "user": self.user, "control_planes": self.control_planes,
            "workers": self.workers, "image": self.image, "lab_id": self.lab_id,
            "nodes": [n.to_dict() for n in self.nodes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabState:
        return cls(kind=data["kind"], arch=data["arch"], mode=data["mode"], user=data["user"],
                   control_planes=list(data.get("control_planes", [])),
                   workers=list(data.get("workers", [])), image=data.get("image", ""),
                   lab_id=data.get("lab_id", ""),
                   nodes=[NodeRecord.from_dict(n) for n in data.get("nodes", [])])


def _problem(data: Any) -> str | None:
    """What makes ``data`` not a lab state written by ``save``, or None."""
    if not isinstance(data, dict):
        return f"expected an object, got {type(data).__name__}"
    for key in ("kind", "arch", "mode", "user"):
        if not isinstance(data.get(key), str):
            return f"{key}: missing or not a string"
    for key in ("control_planes", "workers"):
        if not isinstance(data.get(key, []), list) or not all(
                isinstance(n, str) for n in data.get(key, [])):
            return f"{key}: expected a list of host names"
    for key in ("image", "lab_id"):
        if not isinstance(data.get(key, ""), str):
            return f"{key}: expected a string"
    nodes = data.get("nodes", [])
    if not isinstance(nodes, list):
        return "nodes: expected a list"
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            return f"nodes[{i}]: expected an object"
        for key in ("name", "kind", "arch", "address", "ident"):
            if not isinstance(node.get(key, ""), str) or key in ("name", "kind", "arch") \
                    and key not in node:
                return f"nodes[{i}].{key}: missing or not a string"
        port = node.get("ssh_port")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            return f"nodes[{i}].ssh_port: expected a port number"
        if not isinstance(node.get("extra", {}), dict):
            return f"nodes[{i}].extra: expected an object"
    return None


def load(*, on_corrupt: Callable[[str], None] | None = None) -> LabState | None:
    """The lab's state, None when no lab is up. A state file that is not a regular file, not
    JSON or not what ``save`` writes is a UsageError (exit 2) naming it; with ``on_corrupt``
    (``lab down``, which finds what to remove by label) the message goes there and the
    result is None."""
    path = state_file()
    if not os.path.lexists(path):
        return None
    try:
        data = load_json(path, "lab state file")
    except InputError as exc:
        message = str(exc)  # names the file (and line)
    else:
        problem = _problem(data)
        if problem is None:
            return LabState.from_dict(data)
        message = f"{path}: corrupt lab state file: {problem}"
    if on_corrupt is None:
        raise UsageError(f"{message}; 'provision lab down' removes the lab and this file")
    on_corrupt(message)
    return None


def save(state: LabState) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_dict(), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def remove() -> None:
    state_file().unlink(missing_ok=True)


@contextmanager
def locked() -> Iterator[None]:
    """Serialise `lab up/down/reboot` on one lab directory."""
    d = paths.lab_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = d / ".lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
