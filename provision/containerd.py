"""containerd facts: its version, the config format it reads, and which Kubernetes needs 2.x.

Pure functions, no I/O. The containerd role applies the same rules on the host
(roles/containerd/tasks/main.yml, vars/main.yml; tests/test_containerd_config.py checks
that both hold the same numbers):

- config ``version = 3`` for containerd 2.x, ``version = 2`` for 1.x (containerd's
  docs/cri/config.md, "Config versions": version 3 "was introduced in containerd v2.0", at tag
  v2.0.0, commit 207ad711; v1.7.30's copy, commit 71c1c866, documents version 2 only);
- containerd 1.x is refused from Kubernetes 1.37 on: the kubelet's cgroup-driver fallback for
  runtimes without the RuntimeConfig CRI call (containerd 1.x) is removed there
  (provision/pins.py, row "containerd (minimum on nodes)").
"""

from __future__ import annotations

import re

#: The newest Kubernetes minor that still runs on containerd 1.x.
V1_NEWEST_KUBERNETES_MINOR = 36

Version = tuple[int, int, int]

# `containerd --version`: "containerd github.com/containerd/containerd 1.6.20~ds1 <rev>"
# (Debian 12), "containerd github.com/containerd/containerd/v2 2.1.9+unknown" (Debian sid),
# "containerd containerd.io v1.7.28 <commit>" (Docker's package): the first x.y.z after a space.
_REPORTED = re.compile(r"\sv?([0-9]{1,6})\.([0-9]{1,6})\.([0-9]{1,6})", re.ASCII)
# An apt package spec pinning a version: "containerd=1.7.24~ds1-6", "containerd.io=1.7.28-1".
_PACKAGE_PIN = re.compile(r"[a-z0-9][a-z0-9.+-]*=([0-9]{1,6})\.([0-9]{1,6})(?:\.([0-9]{1,6}))?"
                          r"[0-9A-Za-z.+~:*-]*", re.ASCII)


def reported_version(output: str) -> Version | None:
    """The version in ``containerd --version`` output (None when there is none)."""
    m = _REPORTED.search(output) if isinstance(output, str) else None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def config_version(installed: Version) -> int:
    """The config.toml ``version`` the installed containerd reads natively: 3 for 2.x, 2 for
    1.x (containerd 1.x silently ignores a version 3 file's tables; 2.x migrates version 2)."""
    return 3 if installed[0] >= 2 else 2


def supports(containerd_major: int, kubernetes_minor: int) -> bool:
    """Whether Kubernetes 1.<minor> runs on containerd <major>.x."""
    return containerd_major >= 2 or kubernetes_minor <= V1_NEWEST_KUBERNETES_MINOR


def pinned_major(package: object) -> int | None:
    """The containerd major an apt spec like ``containerd.io=1.7.28-1`` pins (None: no pin)."""
    m = _PACKAGE_PIN.fullmatch(package) if isinstance(package, str) else None
    return int(m.group(1)) if m else None


def inventory_refusal(kubernetes_minor: int, containerd_package: object) -> str | None:
    """Why an inventory's ``containerd_package`` cannot run its Kubernetes minor (None: fine
    or not known before contact). The caller prefixes the file/host; exit 2, nothing
    contacted."""
    major = pinned_major(containerd_package)
    if major is None or supports(major, kubernetes_minor):
        return None
    return (f"containerd_package {containerd_package!r} pins containerd {major}.x, but "
            f"Kubernetes 1.{kubernetes_minor} needs containerd 2.x (the kubelet's cgroup-driver "
            f"fallback for containerd 1.x is gone from 1.{V1_NEWEST_KUBERNETES_MINOR + 1}): pin "
            f"a 2.x package or set kubernetes_version to 1.{V1_NEWEST_KUBERNETES_MINOR} or older")
