"""The JSON sidecar written next to each snapshot (``<snapshot>.json``), and its checks.

A sidecar exists only for a snapshot whose ``etcdutl snapshot status`` succeeded: it records
what a later restore or verify needs to trust the file. Standard library only (shipped to
nodes).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

FORMAT = 1
TOOL = "provision-etcd-backup"

# key -> type; every sidecar has all of them.
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "format": int,
    "tool": str,
    "file": str,
    "cluster": str,
    "node": str,
    "tag": str,
    "created": str,  # ISO 8601 UTC
    "size": int,
    "sha256": str,
    "revision": int,
    "total_keys": int,  # etcdutl snapshot status totalKey (every revision in the backend)
    "keys": (int, type(None)),  # live keys at `revision` (what a restored etcd serves)
    "hash": int,  # etcdutl snapshot status hash
    "etcd_version": str,
    "cluster_id": str,
    "member_id": str,
    "endpoint": str,
}


class SidecarError(ValueError):
    """A sidecar that is missing, unreadable or does not match its snapshot."""


def build(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"format": FORMAT, "tool": TOOL, "restore_check": None}
    data.update(fields)
    check(data, "<new sidecar>")
    return data


def check(data: Any, where: str) -> dict[str, Any]:
    """Raise SidecarError naming the file and key when a sidecar is malformed."""
    if not isinstance(data, dict):
        raise SidecarError(f"{where}: expected a JSON object")
    for key, kind in REQUIRED.items():
        if key not in data:
            raise SidecarError(f"{where}: missing key '{key}'")
        if isinstance(data[key], bool) or not isinstance(data[key], kind):
            raise SidecarError(f"{where}: key '{key}' has the wrong type "
                               f"({type(data[key]).__name__})")
    if data["tool"] != TOOL:
        raise SidecarError(f"{where}: not written by {TOOL} (tool={data['tool']!r})")
    if len(data["sha256"]) != 64:
        raise SidecarError(f"{where}: key 'sha256' is not a SHA-256 hex digest")
    return data


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise SidecarError(f"{path}: sidecar missing") from exc
    except (OSError, ValueError) as exc:
        raise SidecarError(f"{path}: unreadable sidecar: {exc}") from exc
    return check(data, str(path))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_file(db: Path, data: dict[str, Any]) -> None:
    """Size and SHA-256 of ``db`` against its sidecar; raises SidecarError on mismatch."""
    db = Path(db)
    if db.name != data["file"]:
        raise SidecarError(f"{db}: sidecar describes {data['file']!r}")
    size = db.stat().st_size
    if size != data["size"]:
        raise SidecarError(f"{db}: size {size} does not match the sidecar ({data['size']})")
    digest = sha256_file(db)
    if digest != data["sha256"]:
        raise SidecarError(f"{db}: sha256 {digest} does not match the sidecar "
                           f"({data['sha256']})")
