"""The lab state file (``lab_dir()/lab.json``): what `provision lab up` created."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision import paths
from provision.lab.backend import NodeRecord

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


def load() -> LabState | None:
    path = state_file()
    if not path.exists():
        return None
    return LabState.from_dict(json.loads(path.read_text()))


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
