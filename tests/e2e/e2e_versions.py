"""Which Kubernetes version the end-to-end suite expects (pure; fast tests in
tests/test_e2e_suite.py). Nothing here names a version: the defaults come from the schema."""

from __future__ import annotations

from typing import Any

from provision.schema import BY_NAME
from provision.versions import parse_release, parse_version


def expected_kubernetes_version(inv: Any) -> str:
    """The Kubernetes version the hosts must run after `provision bootstrap`: the inventory's
    kubernetes_version (the first host's), else the default new clusters get, read from the
    schema (the one place: provision/schema.py, provision init writes the same). No version is
    written in this suite, so it follows the defaults."""
    hosts = list(inv.hosts.values())
    explicit = hosts[0].vars.get("kubernetes_version") if hosts else None
    return str(explicit or BY_NAME["kubernetes_version"].default)


def kubelet_matches(kubelet: str, version: str) -> bool:
    """'v1.35.1' runs '1.35' (any patch) and '1.35.1' (exactly); not '1.3' or '1.36'."""
    want, got = parse_version(version), parse_release(kubelet)
    if want is None or got is None:
        return False
    return got[:2] == want[:2] and (want[2] is None or got[2] == want[2])
