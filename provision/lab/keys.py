"""SSH keys of the lab: the user key, pre-generated host keys and the lab's known_hosts.

Host keys are generated here, before a node starts, and given to the node as its sshd host
keys; their public halves go into the lab's known_hosts at once. So the first connection is
already verified (StrictHostKeyChecking=yes): no trust-on-first-use.
"""

from __future__ import annotations

import os
from pathlib import Path

HOST_KEY_TYPES = ("ed25519",)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def generate_ed25519(path: Path, comment: str) -> str:
    """Write an OpenSSH ed25519 private key at ``path`` (0600) and ``path.pub``; return the
    public key line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    line = f"{public} {comment}"
    _write_private(path, private)
    Path(f"{path}.pub").write_text(line + "\n")
    return line


def ensure_user_key(lab_dir: Path) -> tuple[Path, str]:
    """The lab's SSH user key (``lab_dir/id_ed25519``); created once per lab."""
    path = lab_dir / "id_ed25519"
    pub = Path(f"{path}.pub")
    if path.exists() and pub.exists():
        return path, pub.read_text().strip()
    return path, generate_ed25519(path, "provision-lab")


def make_host_keys(node_dir: Path, name: str) -> dict[str, Path]:
    """Fresh sshd host keys for one node: {"ed25519": private key path}."""
    keys: dict[str, Path] = {}
    for kind in HOST_KEY_TYPES:
        path = node_dir / "host_keys" / f"ssh_host_{kind}_key"
        generate_ed25519(path, f"root@{name}")
        keys[kind] = path
    return keys


def public_key(private: Path) -> str:
    """``type base64`` of the ``.pub`` next to a private key (no comment)."""
    parts = Path(f"{private}.pub").read_text().split()
    return f"{parts[0]} {parts[1]}"


def known_hosts_pattern(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def known_hosts_lines(address: str, port: int, host_keys: dict[str, Path]) -> list[str]:
    pattern = known_hosts_pattern(address, port)
    return [f"{pattern} {public_key(p)}" for p in host_keys.values()]


def write_known_hosts(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    os.chmod(tmp, 0o644)
    tmp.replace(path)
