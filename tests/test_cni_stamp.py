"""The cni role's add-on stamp (provision/addonstamp.py) in real Ansible against the SIMULATED
API server and kubectl (tests/simulator), flannel from the role's template and calico from the
reduced copy of the pinned release's manifest (tests/data/cni). The simulated nodes are
NotReady until a CNI DaemonSet exists (the simulator's kubelet, like the real one, waits for
the network plugin), so the role's Ready wait proves the install.

flannel: first run full (apply, stamp, every node Ready); second: the read, the install
include skipped and the Ready wait, changed=0; drift (the DaemonSet deleted, its ConfigMap
edited) makes the next run name why and repair it; the run after is fast again; another
backend takes the full path. The Ready wait stays on the fast path: a node that stops posting
status fails a run whose stamp is current. calico: full, fast, the deleted
calico-kube-controllers Deployment repaired, no fast path without a pinned checksum."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from addon_role_support import (
    INCLUDED,
    SKIPPED,
    AddonRole,
    addon_cluster,
    changed,
    delete,
    get,
    outcome,
    ran,
    said,
)
from simulator.httpapi import SimApi
from simulator.server import SimServer

TESTS = Path(__file__).resolve().parent
STAMP = "provision-cni-stamp"
READ = "Read the CNI stamp and the objects it names"
WAIT = ["Wait until the nodes are Ready", "Report nodes that are not Ready"]
FLANNEL_DS = "/apis/apps/v1/namespaces/kube-flannel/daemonsets/kube-flannel-ds"
FLANNEL_CM = "/api/v1/namespaces/kube-flannel/configmaps/kube-flannel-cfg"
CALICO = TESTS / "data" / "cni" / "calico-v3.32.1.yaml"


@pytest.fixture
def sim() -> Iterator[tuple[SimServer, SimApi]]:
    """Two nodes that are Ready only with a CNI DaemonSet; their heartbeats do not expire."""
    with addon_cluster(nodes=(("n1", "192.0.2.7"), ("n2", "192.0.2.8")), require_cni=True,
                       node_grace_seconds=3600.0) as sim:
        yield sim


def ready(api: SimApi) -> dict[str, str]:
    return {n["metadata"]["name"]: next(c["status"] for c in n["status"]["conditions"]
                                        if c["type"] == "Ready")
            for n in get(api, "/api/v1/nodes")["items"]}


def cni_values(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"cni_manifest_dir": str(tmp_path / "cni"), "cni_expected_nodes": "2",
            "cni_wait_timeout": 10, **extra}


def test_simulated_flannel_stamp_skips_a_noop_run_keeps_the_ready_wait_and_repairs_drift(
        sim: tuple[SimServer, SimApi], tmp_path: Path) -> None:
    """SIMULATED cluster, real Ansible, flannel: full run -> every object of the rendered
    manifest stamped, nodes Ready; second run: read, skipped include, Ready wait, changed=0;
    the DaemonSet deleted (nodes NotReady) and the ConfigMap edited -> named, both back,
    nodes Ready; fast again; backend host-gw -> "inputs changed", the ConfigMap says host-gw;
    a node that stops posting status -> the fast run fails in the Ready wait, naming it."""
    server, api = sim
    role = AddonRole(tmp_path, server.url, "cni", **cni_values(tmp_path))
    assert set(ready(api).values()) == {"False"}

    first = role.run()
    assert outcome(first, "Install flannel") == INCLUDED
    assert "flannel: no stamp (ConfigMap provision-cni-stamp)" in said(first)
    assert ready(api) == {"n1": "True", "n2": "True"}
    stamp = get(api, f"/api/v1/namespaces/kube-flannel/configmaps/{STAMP}")
    assert set(json.loads(stamp["data"]["objects"])) == {
        "Namespace//kube-flannel", "ServiceAccount/kube-flannel/flannel",
        "ClusterRole//flannel", "ClusterRoleBinding//flannel",
        "ConfigMap/kube-flannel/kube-flannel-cfg", "DaemonSet/kube-flannel/kube-flannel-ds"}

    second = role.run()
    assert changed(second) == 0
    assert outcome(second, "Install flannel") == SKIPPED
    assert ran(second) == [READ, *WAIT]

    # drift: the DaemonSet deleted (the nodes lose their network) and the ConfigMap edited
    edited = get(api, FLANNEL_CM)
    wanted = edited["data"]
    edited["data"] = {**wanted, "net-conf.json": wanted["net-conf.json"].replace("vxlan", "udp")}
    code, out = api.call("PUT", FLANNEL_CM, edited)
    assert code == 200, out
    delete(api, FLANNEL_DS)
    assert set(ready(api).values()) == {"False"}
    repaired = role.run()
    # the first difference in manifest order is named
    assert "flannel: ConfigMap/kube-flannel/kube-flannel-cfg changed" in said(repaired)
    assert changed(repaired) > 0
    get(api, FLANNEL_DS)
    assert get(api, FLANNEL_CM)["data"] == wanted
    assert ready(api) == {"n1": "True", "n2": "True"}

    again = role.run()
    assert changed(again) == 0
    assert outcome(again, "Install flannel") == SKIPPED

    role.host["cni_flannel_backend"] = "host-gw"
    host_gw = role.run()
    assert "flannel: inputs changed since the last full run" in said(host_gw)
    assert '"Type": "host-gw"' in get(api, FLANNEL_CM)["data"]["net-conf.json"]

    # the Ready wait is not part of the stamp: it runs, and fails, on a fast run too
    with server.cluster.lock:
        server.cluster.heartbeats["n2"] = 0.0  # n2 stopped posting its status long ago
    down = role.run(check=False)
    assert outcome(down, "Install flannel") == SKIPPED
    [failure] = down.failures
    assert failure.task == "Report nodes that are not Ready", failure
    assert "1 of 2 nodes are Ready" in failure.message and "n2=Unknown" in failure.message


def test_simulated_calico_stamp_skips_a_noop_run_and_repairs_drift(
        sim: tuple[SimServer, SimApi], tmp_path: Path) -> None:
    """SIMULATED cluster, real Ansible, calico (reduced copy of the pinned release, its
    checksum pinned): full run -> applied, calico-kube-controllers Available, nodes Ready,
    stamp in kube-system; second run fast with changed=0; the Deployment deleted -> "missing",
    back and Available; without a pinned checksum -> the full path (no fast path), no change."""
    server, api = sim
    role = AddonRole(tmp_path, server.url, "cni", **cni_values(
        tmp_path, cni_plugin="calico", cni_calico_manifest_url=f"file://{CALICO}",
        cni_calico_manifest_checksum="sha256:" + hashlib.sha256(CALICO.read_bytes()).hexdigest()))
    first = role.run()
    assert outcome(first, "Install calico") == INCLUDED
    assert "Wait until calico-kube-controllers is Available" in ran(first)
    assert ready(api) == {"n1": "True", "n2": "True"}
    stamp = get(api, f"/api/v1/namespaces/kube-system/configmaps/{STAMP}")
    assert set(json.loads(stamp["data"]["objects"])) == {
        "DaemonSet/kube-system/calico-node", "Deployment/kube-system/calico-kube-controllers",
        "ConfigMap/kube-system/calico-config"}

    second = role.run()
    assert changed(second) == 0 and ran(second) == [READ, *WAIT]

    delete(api, "/apis/apps/v1/namespaces/kube-system/deployments/calico-kube-controllers")
    repaired = role.run()
    assert "calico: Deployment/kube-system/calico-kube-controllers missing" in said(repaired)
    get(api, "/apis/apps/v1/namespaces/kube-system/deployments/calico-kube-controllers")

    # without a pinned checksum calico's manifest is unknown: no fast path, said why
    unpinned = role.run(cni_calico_manifest_checksum="")
    assert outcome(unpinned, "Install calico") == INCLUDED
    assert "calico: cni_calico_manifest_checksum is empty" in said(unpinned)
    assert changed(unpinned) == 0
