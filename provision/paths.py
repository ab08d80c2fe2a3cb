"""Where provision keeps its state on the controller (XDG base directories)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PLAYBOOKS_DIR = REPO_ROOT / "playbooks"
ROLES_DIR = REPO_ROOT / "roles"


def state_home() -> Path:
    """``$XDG_STATE_HOME/provision`` (default ``~/.local/state/provision``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "provision"


def runs_dir() -> Path:
    """One private data dir per ansible-runner run lives here (the last 20 are kept)."""
    return state_home() / "runs"


def lab_dir() -> Path:
    """State of `provision lab`: keys, known_hosts, inventory, VM disks."""
    return state_home() / "lab"


def lab_inventory_dir() -> Path:
    """The inventory `provision lab up` writes; `-i lab` resolves to it."""
    return lab_dir() / "inventory"
