"""The ingress_nginx role's add-on stamp (provision/addonstamp.py) in real Ansible against the
SIMULATED API server and kubectl (tests/simulator): the whole role runs as playbooks/addons.yml
includes it (tests/playbooks/addon-role.yml), from the reduced copy of the pinned release's
manifest (tests/data/addons), NodePort mode (no MetalLB) and without the smoke test (nothing
listens on a simulated node port in process; the lab tests in tests/test_addons_roles.py run
it).

First run: full (apply, wait, stamp). Second: one read, the install include skipped,
changed=0. Drift (the controller Deployment deleted, its ConfigMap edited) makes the next run
name why and repair it; the run after is fast again. A changed setting takes the full path, and
so does every run without a pinned manifest checksum."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from addon_role_support import INCLUDED, SKIPPED, AddonRole, addon_cluster, delete, get
from simulator.httpapi import SimApi
from simulator.server import SimServer
from test_addons_roles import DATA, FIXTURES

NS = "ingress-nginx"
STAMP = "provision-ingress-nginx-stamp"
OLD_STAMP = "provision-ingress-nginx-applied"
INSTALL = "Install, wait for and smoke-test ingress-nginx"
READ = "Read the ingress-nginx stamp and the objects it names"
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NS}/deployments/ingress-nginx-controller"
CONFIGMAP = f"/api/v1/namespaces/{NS}/configmaps/ingress-nginx-controller"


@pytest.fixture
def sim() -> Iterator[tuple[SimServer, SimApi]]:
    with addon_cluster(namespaces=("kube-system", NS)) as sim:
        yield sim


def ingress_values(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    manifest = DATA / FIXTURES["ingress_nginx"]
    return {"ingress_nginx_manifest_url": f"file://{manifest}",
            "ingress_nginx_manifest_checksum":
                "sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest(),
            "ingress_nginx_manifest_dir": str(tmp_path / "manifests"),
            "ingress_nginx_service_mode": "NodePort", "ingress_nginx_smoke_test": False,
            "ingress_nginx_wait_timeout": 30, "ingress_nginx_delay": 1, **extra}


def test_simulated_ingress_stamp_skips_a_noop_run_and_repairs_drift(
        sim: tuple[SimServer, SimApi], tmp_path: Path) -> None:
    """SIMULATED cluster, real Ansible: full run -> stamp with the controller Deployment,
    Services, ConfigMap and IngressClass (not the admission Jobs); second run: only the read,
    the install include skipped, changed=0; the Deployment deleted -> the next run says it is
    missing and creates it again, the edited ConfigMap restored; then fast again;
    another node port -> "inputs changed", the full path, the Service on the new port; no
    pinned checksum -> the full path again (no fast path), changing nothing."""
    server, api = sim
    role = AddonRole(tmp_path, server.url, "ingress_nginx", **ingress_values(tmp_path))
    api.create(f"/api/v1/namespaces/{NS}/configmaps", {  # an older provision's stamp
        "apiVersion": "v1", "kind": "ConfigMap", "data": {"manifest-sha1": "0" * 40},
        "metadata": {"name": OLD_STAMP, "labels": {"app.kubernetes.io/managed-by": "provision"}}})

    first = role.run()
    assert first.outcome(INSTALL) == INCLUDED and "Apply ingress-nginx.yaml" in first.ran
    assert "no stamp (ConfigMap provision-ingress-nginx-stamp)" in first.log
    stamp = get(api, f"/api/v1/namespaces/{NS}/configmaps/{STAMP}")
    assert set(json.loads(stamp["data"]["objects"])) == {
        f"Deployment/{NS}/ingress-nginx-controller", f"Service/{NS}/ingress-nginx-controller",
        f"Service/{NS}/ingress-nginx-controller-admission",
        f"ConfigMap/{NS}/ingress-nginx-controller", "IngressClass//nginx"}
    assert api.call("GET", f"/api/v1/namespaces/{NS}/configmaps/{OLD_STAMP}")[0] == 404

    second = role.run()
    assert second.changed == 0
    assert second.outcome(INSTALL) == SKIPPED
    assert second.ran == ["Check the ingress-nginx settings", READ]

    # drift: the controller deleted and its ConfigMap edited (the first difference is named)
    edited = get(api, CONFIGMAP)
    wanted = edited.get("data")
    edited["data"] = {**(wanted or {}), "ssl-protocols": "SSLv3"}
    code, out = api.call("PUT", CONFIGMAP, edited)
    assert code == 200, out
    delete(api, DEPLOYMENT)
    repaired = role.run()
    assert f"Deployment/{NS}/ingress-nginx-controller missing" in repaired.log
    assert repaired.changed > 0
    get(api, DEPLOYMENT)
    assert get(api, CONFIGMAP).get("data") == wanted

    again = role.run()
    assert again.changed == 0 and again.outcome(INSTALL) == SKIPPED

    role.host["ingress_nginx_http_node_port"] = 30081
    moved = role.run()
    assert "inputs changed since the last full run" in moved.log
    assert moved.outcome(INSTALL) == INCLUDED
    ports = get(api, f"/api/v1/namespaces/{NS}/services/ingress-nginx-controller")["spec"]["ports"]
    assert {p["name"]: p.get("nodePort") for p in ports}["http"] == 30081

    # without a pinned checksum the manifest's content is unknown: no fast path, said why
    unpinned = role.run(ingress_nginx_manifest_checksum="")
    assert unpinned.outcome(INSTALL) == INCLUDED
    assert "ingress_nginx_manifest_checksum is empty" in unpinned.log
    assert unpinned.changed == 0
