"""The package repository as data (what `apt-cache madison kubeadm` offers per minor) and the
resolution of ``--to 1.N[.P]`` against it. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from provision.errors import UsageError
from provision.versions import (
    SUPPORTED_MINORS,
    Release,
    format_release,
    parse_release,
    parse_version,
)

# minor -> the released patch versions the repository offers, oldest first
Repository = dict[int, tuple[Release, ...]]

_MINOR_KEY = re.compile(r"(?:1\.)?([0-9]{1,9})")


class PlanError(UsageError):
    """The plan is refused: one message per reason, exit 2, no host touched."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def repository_from_data(data: Mapping[Any, Sequence[Any]],
                         source: str = "repository") -> Repository:
    """{31: ["1.31.1", "1.31.2"]} -> Repository (keys may be "31" or "1.31"; patches ints)."""
    problems: list[str] = []
    repo: Repository = {}
    if not isinstance(data, Mapping):
        raise PlanError([f"{source}: expected an object mapping a minor to its versions"])
    for key, versions in data.items():
        m = _MINOR_KEY.fullmatch(str(key))
        minor = int(m.group(1)) if m else None
        if minor is None:
            problems.append(f"{source}: {key!r}: expected a minor like 31 or \"1.31\"")
            continue
        if not isinstance(versions, list):
            problems.append(f"{source}.{key}: expected a list of versions")
            continue
        out = []
        for v in versions:
            rel = (1, minor, v) if isinstance(v, int) and not isinstance(v, bool) \
                else parse_release(v)
            if rel is None or rel[:2] != (1, minor):
                problems.append(f"{source}.{key}: {v!r} is not a 1.{minor} release")
            else:
                out.append(rel)
        repo[minor] = tuple(sorted(set(out)))
    if problems:
        raise PlanError(problems)
    return repo


def newest_patch(repo: Repository, minor: int) -> Release | None:
    versions = repo.get(minor, ())
    return versions[-1] if versions else None


def newest_release(repo: Repository) -> Release | None:
    return max((v for vs in repo.values() for v in vs), default=None)


def resolve_target(text: str, repo: Repository) -> Release:
    """``--to 1.N`` -> the newest 1.N patch; ``--to 1.N.P`` -> exactly that, if released."""
    parsed = parse_version(text)
    if parsed is None:
        raise PlanError([f"--to {text!r}: expected 1.N or 1.N.P (e.g. 1.31 or 1.31.2)"])
    _, minor, patch = parsed
    newest = newest_release(repo)
    offered = repo.get(minor, ())
    if newest is None:
        raise PlanError(["the package repository offers no Kubernetes release at all"])
    if not offered and minor > newest[1]:
        raise PlanError([f"--to {text} is newer than the package repository offers (newest "
                         f"release there: {format_release(newest)})"])
    if minor not in SUPPORTED_MINORS:
        lo, hi = min(SUPPORTED_MINORS), max(SUPPORTED_MINORS)
        raise PlanError([f"--to {text}: provision supports Kubernetes 1.{lo} to 1.{hi}"])
    if not offered:
        raise PlanError([f"--to {text} is not a released version: the package repository "
                         f"offers no 1.{minor} release"])
    if patch is None:
        return offered[-1]
    if (1, minor, patch) in offered:
        return (1, minor, patch)
    listing = ", ".join(format_release(v) for v in offered)
    if (1, minor, patch) > offered[-1]:
        raise PlanError([f"--to {text} is newer than the package repository offers (1.{minor} "
                         f"releases there: {listing})"])
    raise PlanError([f"--to {text} is not a released version (1.{minor} releases in the "
                     f"package repository: {listing})"])
