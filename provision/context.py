"""Global options shared by every command (set by the top-level Click group)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Options:
    inventory: str | None = None  # path or 'lab'; None = ./inventory/default or 'lab'
    limit: str | None = None
    check: bool = False
    verbosity: int = 0
    json: bool = False
