"""Kubernetes version facts and parsing (pure functions, no I/O).

This file is also the Jinja filter plugin of every role and playbook:
roles/provision_defaults/filter_plugins/provision_versions.py is a link to it (FilterModule at
the end: version_parts, version_minor, version_of), so Python and Ansible parse versions with
the same functions. Hence it imports nothing from provision (Ansible loads it on its own).
"""

from __future__ import annotations

import re

# Minor releases provision knows how to configure (kubeadm config v1beta3 up to 1.30,
# v1beta4 from 1.31; kubeadm 1.36 removed v1beta3: kubernetes/kubernetes PR #136016). 1.37 is
# the newest release as of 2026-11. The one range for new clusters (`kubernetes_version`) and
# for upgrade sources and targets (`provision upgrade`); a minor past its upstream end of life
# (provision/pins.py KUBERNETES_EOL) is accepted with a warning, never refused, so existing
# clusters stay manageable and can be upgraded.
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


# --- any component's version (containerd, etcd, Kubernetes): also Ansible's filters
# (FilterModule below; tests/test_versions_filter.py runs them in Python and in ansible-playbook).

_PARTS = re.compile(r"v?([0-9]{1,6})\.([0-9]{1,6})(?:\.([0-9]{1,6}))?(?:[-~+][0-9A-Za-z.~+-]*)?",
                    re.ASCII)
_IN_TEXT = r"v?([0-9]{1,6}\.[0-9]{1,6}\.[0-9]{1,6})(?![0-9])"


def version_parts(text: object) -> list[int]:
    """'1.31' -> [1, 31]; 'v1.31.2', '1.31.2-1.1', '1.7.24~ds1' -> [1, 31, 2] / [1, 7, 24];
    anything else (also non-ASCII digits) -> []. Surrounding white space is ignored."""
    m = _PARTS.fullmatch(text.strip()) if isinstance(text, str) else None
    if not m:
        return []
    return [int(g) for g in m.groups() if g is not None]


def version_minor(text: object) -> str:
    """'1.31.2', 'v1.31.2-1.1', '1.31' -> '1.31'; '3.5.15' -> '3.5'; not a version -> ''."""
    parts = version_parts(text)
    return f"{parts[0]}.{parts[1]}" if parts else ""


def version_of(text: object, label: str = "") -> str:
    """The first exact release X.Y.Z (a leading v dropped) in tool output: right after
    ``label`` (then spaces, ':', '"' or '=' may come between), or, without a label, at the
    start or after white space; '' when there is none.
    'etcdctl version: 3.5.1' with label 'etcdctl version:' -> '3.5.1';
    'containerd github.com/containerd/containerd/v2 v2.0.0 207ad7' -> '2.0.0'."""
    if not isinstance(text, str):
        return ""
    prefix = re.escape(label) + r"""[\s:"=]*""" if label else r"(?:^|(?<=\s))"
    m = re.search(prefix + _IN_TEXT, text, re.ASCII)
    return m.group(1) if m else ""


class FilterModule:
    """Ansible's filter plugin interface (roles/provision_defaults/filter_plugins)."""

    def filters(self) -> dict[str, object]:
        return {"version_parts": version_parts, "version_minor": version_minor,
                "version_of": version_of}
