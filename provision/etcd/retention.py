"""Retention: which snapshots to delete, given what exists and the policy (pure).

Rules (each is tested):
- only snapshots this tool created are candidates (``ours``: our name pattern, our series,
  a sidecar written by the tool); anything else is never deleted;
- tagged snapshots (taken on demand, e.g. ``pre.upgrade``) are never deleted by retention;
- the plan is made only after a new snapshot was verified: ``after`` must name a verified
  snapshot in the list, otherwise nothing is deleted (``RetentionError``);
- the newest verified snapshot is never deleted;
- of the verified untagged snapshots, the newest ``keep`` are kept unless older than
  ``max_age``; the rest are deleted.

Standard library only (shipped to nodes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass


class RetentionError(ValueError):
    pass


@dataclass(frozen=True)
class Snapshot:
    name: str
    created: dt.datetime
    verified: bool  # a valid sidecar exists (the snapshot passed `snapshot status`)
    ours: bool  # created by this tool, in this series
    tag: str = ""


@dataclass(frozen=True)
class Policy:
    keep: int
    max_age: dt.timedelta | None = None

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise RetentionError(f"keep must be at least 1 (got {self.keep})")
        if self.max_age is not None and self.max_age <= dt.timedelta(0):
            raise RetentionError("max_age must be positive")


def plan(snapshots: Iterable[Snapshot], policy: Policy, *, after: str,
         now: dt.datetime) -> list[str]:
    """Names to delete, oldest first."""
    snaps = list(snapshots)
    verified = [s for s in snaps if s.verified and s.ours]
    if not any(s.name == after for s in verified):
        raise RetentionError(f"retention runs only after a verified snapshot; {after!r} is not "
                             "a verified snapshot of this series")
    newest = max(verified, key=lambda s: (s.created, s.name))
    candidates = sorted((s for s in verified if not s.tag), key=lambda s: (s.created, s.name),
                        reverse=True)
    doomed: list[Snapshot] = []
    for index, snap in enumerate(candidates):
        if snap.name == newest.name:
            continue
        too_many = index >= policy.keep
        too_old = policy.max_age is not None and now - snap.created > policy.max_age
        if too_many or too_old:
            doomed.append(snap)
    return [s.name for s in sorted(doomed, key=lambda s: (s.created, s.name))]
