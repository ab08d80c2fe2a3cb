"""The metallb role's add-on stamp (provision/addonstamp.py), the whole role in real Ansible
(local connection) with the SIMULATED kubectl against the SIMULATED API server in process
(tests/simulator/httpapi.py started_cluster): what is simulated is Kubernetes and MetalLB's
controller; the role's tasks, templates, filters and the stamp's `kubectl get -f -` are real.

A first run installs and records the stamp; the next run reads the stamp and the objects it
names in one `kubectl get` and skips tasks/install.yml (changed=0). Drift - the controller
Deployment deleted, a pool edited in the cluster - makes the next run say why, take the full
path and put the object back, and the run after is fast again; a changed setting (a new pool)
takes the full path too. Fast: a few Ansible runs against a local server (no lab host)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from addon_role_support import SKIPPED, AddonRole, AddonRun, addon_cluster, delete, get
from simulator.httpapi import SimApi
from test_addons_roles import DATA, addon_vars

NS = "metallb-system"
STAMP = "provision-metallb-stamp"
POOLS = f"/apis/metallb.io/v1beta1/namespaces/{NS}/ipaddresspools"
INSTALL = "Install and configure MetalLB"
WHY = "Say why MetalLB is installed and configured"


def metallb(tmp: Path, url: str) -> AddonRole:
    """The metallb role against the simulated cluster at ``url`` with the add-on tests'
    settings (tests/test_addons_roles.py addon_vars: one pool, two Services), the manifest
    read from tests/data/addons."""
    return AddonRole(tmp, url, "metallb", **addon_vars(
        str(DATA), metallb_manifest_dir=str(tmp / "metallb"), metallb_wait_timeout=30))


def full(result: AddonRun, why: str) -> None:
    """The run took the full path, said ``why`` and changed something."""
    assert WHY in result.ran and f"MetalLB v0.16.1: {why}" in result.log, result.log[-3000:]
    assert result.changed > 0


def fast(result: AddonRun) -> None:
    """The run read the stamp, skipped the install and changed nothing."""
    assert "Read the MetalLB stamp and the objects it names" in result.ran
    assert result.outcome(INSTALL) == SKIPPED and WHY not in result.ran
    assert result.changed == 0, [e for e in result.events if e["changed"]]


@pytest.fixture
def cluster() -> Iterator[tuple[SimApi, str]]:
    with addon_cluster() as (server, api):
        yield api, server.url


def test_simulated_metallb_stamp_fast_path_and_drift_repaired(
        cluster: tuple[SimApi, str], tmp_path: Path) -> None:
    """Full run (stamp recorded: the controller, the speaker, the pool, the L2Advertisement
    and both Services), then the fast path; the controller Deployment deleted -> the next run
    names it, re-applies (it is back) and the run after is fast; a pool edited in the cluster
    together with a new pool in the settings -> the full path (inputs changed) puts the pool
    back and creates the new one; an unpinned manifest -> the full path every run, named, with
    no change."""
    api, url = cluster
    role = metallb(tmp_path, url)
    first = role.run()
    # a new cluster does not serve MetalLB's kinds yet: the read fails, the full path runs
    full(first, 'cluster not read: error: resource mapping not found for name: "default"')
    stamp = get(api, f"/api/v1/namespaces/{NS}/configmaps/{STAMP}")
    assert stamp["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "provision"}
    assert sorted(json.loads(stamp["data"]["objects"])) == [
        f"DaemonSet/{NS}/speaker", f"Deployment/{NS}/controller",
        f"IPAddressPool/{NS}/default", f"L2Advertisement/{NS}/l2",
        "Service/kube-system/dns-tcp", "Service/kube-system/dns-udp"]
    fast(role.run())

    delete(api, f"/apis/apps/v1/namespaces/{NS}/deployments/controller")
    full(role.run(), f"Deployment/{NS}/controller missing")
    assert get(api, f"/apis/apps/v1/namespaces/{NS}/deployments/controller")
    fast(role.run())

    # an edited pool and a new pool in the settings: the inputs changed (checked first), the
    # full path puts the edited pool back and creates the new one
    code, out = api.call("PATCH", f"{POOLS}/default", {"spec": {"addresses": ["10.9.9.9/32"]}})
    assert code == 200, out
    role.host["metallb_pools"] = [{"name": "extra", "addresses": ["10.0.1.0/29"]}]
    full(role.run(), "inputs changed since the last full run")
    assert get(api, f"{POOLS}/default")["spec"]["addresses"] == role.host["metallb_addresses"]
    assert get(api, f"{POOLS}/extra")["spec"]["addresses"] == ["10.0.1.0/29"]

    # an unpinned manifest never takes the fast path (it says so); nothing to change
    role.host["metallb_manifest_checksum"] = ""
    again = role.run()
    assert WHY in again.ran, again.log[-3000:]
    assert "MetalLB v0.16.1: metallb_manifest_checksum is empty: no stamp without a pinned " \
           "manifest" in again.log, again.log[-3000:]
    assert again.changed == 0, [e for e in again.events if e["changed"]]
