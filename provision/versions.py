"""Kubernetes version facts and parsing (pure functions, no I/O)."""

from __future__ import annotations

import re

# Minor releases provision knows how to configure (kubeadm config v1beta3 up to 1.30,
# v1beta4 from 1.31). 1.37 is the newest release as of 2026-11.
SUPPORTED_MINORS = range(28, 38)
NEWEST_MINOR = max(SUPPORTED_MINORS)

# ASCII digits only ("1.３１" is not a version: \d and int() accept any script's digits), at
# most 6 per part, and the whole text (no surrounding spaces, no trailing newline).
_VERSION = re.compile(r"(1)\.([0-9]{1,6})(?:\.([0-9]{1,6}))?", re.ASCII)


def parse_version(text: str) -> tuple[int, int, int | None] | None:
    """'1.31' -> (1, 31, None); '1.31.2' -> (1, 31, 2); anything else (also ' 1.31',
    '1.31\\n' and non-ASCII digits) -> None."""
    m = _VERSION.fullmatch(text) if isinstance(text, str) else None
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), (int(m.group(3)) if m.group(3) else None)


# An exact release as a comparable tuple: (1, 31, 2).
Release = tuple[int, int, int]

_RELEASE = re.compile(r"v?(1)\.([0-9]{1,6})\.([0-9]{1,6})(?:-[0-9A-Za-z.~+]+)?", re.ASCII)


def parse_release(text: object) -> Release | None:
    """An exact release: '1.31.2', 'v1.31.2' (what kubelet and kubectl report) or '1.31.2-1.1'
    (the Debian version pkgs.k8s.io uses) -> (1, 31, 2); anything else -> None. Surrounding
    white space (tool output) is ignored; digits are ASCII only."""
    m = _RELEASE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def format_release(version: Release) -> str:
    """(1, 31, 2) -> '1.31.2' (no leading v, no Debian revision)."""
    return ".".join(str(part) for part in version)
