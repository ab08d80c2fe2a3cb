"""The gateway_api role's add-on stamp (provision/addonstamp.py) in real Ansible against the
SIMULATED API server, kubectl and NGINX Gateway Fabric controller (tests/simulator/gateway.py):
the whole role from the reduced copies of the Gateway API and NGF CRDs and NGF's real manifest
(tests/data/addons, checksums pinned), NodePort mode (no MetalLB), without the smoke test.

First run full (CRDs, NGF, the Gateway Programmed, stamp); second: one read, the install
include skipped, changed=0; the NGF control plane Deployment deleted -> the next run names it
and creates it again; the run after is fast again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from addon_role_support import INCLUDED, SKIPPED, AddonRole, addon_cluster, delete, get
from simulator.httpapi import SimApi
from simulator.server import SimServer

DATA = Path(__file__).resolve().parent / "data" / "addons"
CRDS = DATA / "gateway-api-v1.5.1-standard"
NGF_CRDS = DATA / "nginx-gateway-fabric-v2.6.7-crds-reduced.yaml"
NGF = DATA / "nginx-gateway-fabric-v2.6.7-deploy.yaml"
NS = "nginx-gateway"
INSTALL = "Install the Gateway API, NGINX Gateway Fabric and the Gateway"
CONTROL_PLANE = f"/apis/apps/v1/namespaces/{NS}/deployments/nginx-gateway"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def sim() -> Iterator[tuple[SimServer, SimApi]]:
    # no kubelet heartbeats after the first: the node stays Ready
    with addon_cluster(node_grace_seconds=3600.0) as sim:
        yield sim


def test_simulated_gateway_stamp_skips_a_noop_run_and_repairs_drift(
        sim: tuple[SimServer, SimApi], tmp_path: Path) -> None:
    """SIMULATED cluster and NGF, real Ansible: full run -> stamp naming the control plane,
    GatewayClass, NginxProxy, Gateway and the data plane NGF made; second run: the read only,
    changed=0; the control plane Deployment deleted -> "missing", back; fast again."""
    server, api = sim
    role = AddonRole(tmp_path, server.url, "gateway_api", **{
        "gateway_api_crds_url": f"file://{CRDS}",
        "gateway_api_crd_checksums": {p.name: sha256(p) for p in CRDS.glob("*.yaml")},
        "gateway_api_ngf_crds_url": f"file://{NGF_CRDS}",
        "gateway_api_ngf_crds_checksum": f"sha256:{sha256(NGF_CRDS)}",
        "gateway_api_ngf_manifest_url": f"file://{NGF}",
        "gateway_api_ngf_manifest_checksum": f"sha256:{sha256(NGF)}",
        "gateway_api_manifest_dir": str(tmp_path / "gateway"),
        "gateway_api_service_mode": "NodePort", "gateway_api_smoke_test": False,
        "gateway_api_wait_timeout": 30, "gateway_api_delay": 1})

    first = role.run()
    assert first.outcome(INSTALL) == INCLUDED
    # before the CRDs exist the read itself fails: the kinds are not served
    assert "NGINX Gateway Fabric v2.6.7: cluster not read: error: resource mapping not found" \
        in first.log
    stamp = get(api, f"/api/v1/namespaces/{NS}/configmaps/provision-gateway-api-stamp")
    assert set(json.loads(stamp["data"]["objects"])) == {
        f"Deployment/{NS}/nginx-gateway", "GatewayClass//nginx",
        f"NginxProxy/{NS}/nginx-gateway-proxy-config", f"Gateway/{NS}/default",
        f"Deployment/{NS}/default-nginx", f"Service/{NS}/default-nginx"}

    second = role.run()
    assert second.changed == 0
    assert second.outcome(INSTALL) == SKIPPED
    assert second.ran[-1] == "Read the Gateway API stamp and the objects it names"

    delete(api, CONTROL_PLANE)
    repaired = role.run()
    assert f"Deployment/{NS}/nginx-gateway missing" in repaired.log
    get(api, CONTROL_PLANE)

    again = role.run()
    assert again.changed == 0
    assert again.outcome(INSTALL) == SKIPPED
