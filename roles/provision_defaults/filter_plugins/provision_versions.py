"""Version parsing for every provision role: the one place roles read a Kubernetes, containerd
or etcd version (instead of a regex per task).

Mirrors version_parts, version_minor and version_of of provision/versions.py (this file must
not import provision: roles run from the collection too); tests/test_versions_filter.py runs
both on one table of inputs and fails when they disagree.

    {{ kubernetes_version | version_minor }}                    '1.35.1' -> '1.35'
    {{ (kubernetes_packages_release | version_parts)[1] }}      '1.35.1-1.1' -> 35
    {{ out.stdout | version_of('etcdctl version:') }}           -> '3.5.1' or ''
"""

from __future__ import annotations

import re

_PARTS = re.compile(r"v?([0-9]{1,6})\.([0-9]{1,6})(?:\.([0-9]{1,6}))?(?:[-~+][0-9A-Za-z.~+-]*)?",
                    re.ASCII)
_IN_TEXT = r"v?([0-9]{1,6}\.[0-9]{1,6}\.[0-9]{1,6})(?![0-9])"


def version_parts(text: object) -> list[int]:
    """'1.31' -> [1, 31]; 'v1.31.2', '1.31.2-1.1' -> [1, 31, 2]; not a version -> []."""
    m = _PARTS.fullmatch(str(text).strip()) if isinstance(text, str) else None
    if not m:
        return []
    return [int(g) for g in m.groups() if g is not None]


def version_minor(text: object) -> str:
    """'1.31.2', 'v1.31.2-1.1', '1.31' -> '1.31'; not a version -> ''."""
    parts = version_parts(text)
    return f"{parts[0]}.{parts[1]}" if parts else ""


def version_of(text: object, label: str = "") -> str:
    """The first exact release X.Y.Z in tool output, right after ``label`` (or, without one,
    at the start or after white space); '' when there is none."""
    if not isinstance(text, str):
        return ""
    prefix = re.escape(label) + r"""[\s:"=]*""" if label else r"(?:^|(?<=\s))"
    m = re.search(prefix + _IN_TEXT, str(text), re.ASCII)
    return m.group(1) if m else ""


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"version_parts": version_parts, "version_minor": version_minor,
                "version_of": version_of}
