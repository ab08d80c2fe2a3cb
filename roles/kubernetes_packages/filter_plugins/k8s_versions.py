"""Pure version choice for the kubernetes_packages role (no I/O).

``k8s_deb_version(madison, requested, installed)`` picks the Debian version to install from the
output of ``apt-cache madison kubeadm``:

* ``requested`` "1.31.2": exactly that release (the highest Debian revision of it);
* ``requested`` "1.31": the installed version when it is of that minor (a re-run never moves
  a cluster to a new patch; that is ``provision upgrade``'s job), else the newest 1.31 patch.

A release missing from the repository is an error naming what the repository offers.
"""

from __future__ import annotations

import re
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - the pure functions are tested without Ansible
    AnsibleFilterError = ValueError  # type: ignore[assignment,misc]

_DEB = re.compile(r"^(\d+)\.(\d+)\.(\d+)-([0-9A-Za-z.+~]+)$")


def _key(deb: str) -> tuple[Any, ...]:
    m = _DEB.match(deb)
    if not m:
        return ()
    rev = tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.+~]", m.group(4)))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), rev)


def madison_versions(text: str) -> list[str]:
    """Debian versions listed by ``apt-cache madison`` (``pkg | version | source``)."""
    found: list[str] = []
    for line in (text or "").splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 3 and _DEB.match(parts[1]) and parts[1] not in found:
            found.append(parts[1])
    return found


def k8s_deb_version(madison: str, requested: str, installed: str = "") -> str:
    """The Debian version of the kubeadm/kubelet/kubectl packages to install."""
    requested = str(requested).strip().lstrip("v")
    parts = requested.split(".")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise AnsibleFilterError(f"kubernetes_version '{requested}': expected \"1.31\" or "
                                 f"\"1.31.2\"")
    available = madison_versions(madison)
    prefix = ".".join(parts[:2]) + "."
    if len(parts) == 3:
        matches = [v for v in available if v.split("-", 1)[0] == requested]
    else:
        installed = (installed or "").strip()
        if installed and installed.startswith(prefix) and _DEB.match(installed):
            return installed
        matches = [v for v in available if v.startswith(prefix)]
    if not matches:
        offered = ", ".join(sorted({v.split("-", 1)[0] for v in available}, key=lambda s: _key(
            s + "-0"))) or "nothing"
        raise AnsibleFilterError(f"Kubernetes {requested} is not in the package repository "
                                 f"(it offers: {offered})")
    return max(matches, key=_key)


def k8s_release(deb_version: str) -> str:
    """'1.31.2-1.1' -> '1.31.2'."""
    return str(deb_version).split("-", 1)[0]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"k8s_deb_version": k8s_deb_version, "k8s_release": k8s_release}
