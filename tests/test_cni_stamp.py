"""The cni role's add-on stamp (provision/addonstamp.py) in real Ansible against the SIMULATED
API server and kubectl (tests/simulator), flannel from the role's template and calico from the
reduced copy of the pinned release's manifest (tests/data/cni). The simulated nodes are
NotReady until a CNI DaemonSet exists (the simulator's kubelet, like the real one, waits for
the network plugin), so the role's Ready wait proves the install.

Both plugins (one parametrised test): first run full (apply, stamp, every node Ready); second:
the read, the install include skipped and the Ready wait, changed=0; drift (the plugin's
DaemonSet or Deployment deleted, its ConfigMap edited) makes the next run name why and repair
it; the run after is fast again. Then flannel: another backend takes the full path, and the
Ready wait stays on the fast path (a node that stops posting status fails a run whose stamp is
current); calico: no fast path without a pinned checksum."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from addon_role_support import INCLUDED, SKIPPED, AddonRole, addon_cluster, delete, get
from simulator.httpapi import SimApi
from simulator.server import SimServer

TESTS = Path(__file__).resolve().parent
STAMP = "provision-cni-stamp"
READ = "Read the CNI stamp and the objects it names"
WAIT = ["Wait until the nodes are Ready", "Report nodes that are not Ready"]
FLANNEL_CM = "/api/v1/namespaces/kube-flannel/configmaps/kube-flannel-cfg"
CALICO = TESTS / "data" / "cni" / "calico-v3.32.1.yaml"
CALICO_CONTROLLERS = "/apis/apps/v1/namespaces/kube-system/deployments/calico-kube-controllers"


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


def flannel_backend_and_a_node_down(role: AddonRole, server: SimServer, api: SimApi) -> None:
    """Backend host-gw -> "inputs changed", the ConfigMap says host-gw; a node that stops
    posting status -> the fast run fails in the Ready wait, naming it."""
    role.host["cni_flannel_backend"] = "host-gw"
    host_gw = role.run()
    assert "flannel: inputs changed since the last full run" in host_gw.log
    assert '"Type": "host-gw"' in get(api, FLANNEL_CM)["data"]["net-conf.json"]

    # the Ready wait is not part of the stamp: it runs, and fails, on a fast run too
    with server.cluster.lock:
        server.cluster.heartbeats["n2"] = 0.0  # n2 stopped posting its status long ago
    down = role.run(check=False)
    assert down.outcome("Install flannel") == SKIPPED
    [failure] = down.failures
    assert failure.task == "Report nodes that are not Ready", failure
    assert "1 of 2 nodes are Ready" in failure.message and "n2=Unknown" in failure.message


def calico_unpinned(role: AddonRole, server: SimServer, api: SimApi) -> None:
    """Without a pinned checksum calico's manifest is unknown: no fast path, said why."""
    unpinned = role.run(cni_calico_manifest_checksum="")
    assert unpinned.outcome("Install calico") == INCLUDED
    assert "calico: cni_calico_manifest_checksum is empty" in unpinned.log
    assert unpinned.changed == 0


@dataclass(frozen=True)
class Plugin:
    """What the stamp test does per plugin."""

    name: str
    values: dict[str, Any]  # the role's settings besides cni_values()
    namespace: str  # the stamp's
    objects: set[str]  # what the stamp names
    deleted: str  # the drift: this object deleted...
    network_lost: bool  # ...which makes the nodes NotReady
    edited: tuple[str, str]  # ...and this ConfigMap's key edited
    named: str  # the first difference the repairing run names (in manifest order)
    then: Callable[[AddonRole, SimServer, SimApi], None]  # the plugin's own steps after


PLUGINS = [
    Plugin("flannel", {}, "kube-flannel",
           {"Namespace//kube-flannel", "ServiceAccount/kube-flannel/flannel",
            "ClusterRole//flannel", "ClusterRoleBinding//flannel",
            "ConfigMap/kube-flannel/kube-flannel-cfg", "DaemonSet/kube-flannel/kube-flannel-ds"},
           "/apis/apps/v1/namespaces/kube-flannel/daemonsets/kube-flannel-ds", True,
           (FLANNEL_CM, "net-conf.json"), "ConfigMap/kube-flannel/kube-flannel-cfg changed",
           flannel_backend_and_a_node_down),
    Plugin("calico", {"cni_plugin": "calico", "cni_calico_manifest_url": f"file://{CALICO}",
                      "cni_calico_manifest_checksum":
                          "sha256:" + hashlib.sha256(CALICO.read_bytes()).hexdigest()},
           "kube-system",
           {"DaemonSet/kube-system/calico-node",
            "Deployment/kube-system/calico-kube-controllers",
            "ConfigMap/kube-system/calico-config"},
           CALICO_CONTROLLERS, False,
           ("/api/v1/namespaces/kube-system/configmaps/calico-config", "veth_mtu"),
           "Deployment/kube-system/calico-kube-controllers missing", calico_unpinned),
]


@pytest.mark.parametrize("plugin", PLUGINS, ids=[p.name for p in PLUGINS])
def test_simulated_cni_stamp_skips_a_noop_run_keeps_the_ready_wait_and_repairs_drift(
        sim: tuple[SimServer, SimApi], tmp_path: Path, plugin: Plugin) -> None:
    """SIMULATED cluster, real Ansible: full run -> applied, the stamp names the plugin's
    objects, nodes Ready (calico: calico-kube-controllers Available too); second run: read,
    skipped include, Ready wait, changed=0; the plugin's DaemonSet (flannel) or Deployment
    (calico) deleted and its ConfigMap edited -> the first difference named, both back, nodes
    Ready; fast again; then the plugin's own steps (flannel_backend_and_a_node_down,
    calico_unpinned)."""
    server, api = sim
    role = AddonRole(tmp_path, server.url, "cni", **cni_values(tmp_path, **plugin.values))
    install = f"Install {plugin.name}"
    assert set(ready(api).values()) == {"False"}

    first = role.run()
    assert first.outcome(install) == INCLUDED
    assert f"{plugin.name}: no stamp (ConfigMap provision-cni-stamp)" in first.log
    if plugin.name == "calico":  # the stamp requires it Available
        assert "Wait until calico-kube-controllers is Available" in first.ran
    assert ready(api) == {"n1": "True", "n2": "True"}
    stamp = get(api, f"/api/v1/namespaces/{plugin.namespace}/configmaps/{STAMP}")
    assert set(json.loads(stamp["data"]["objects"])) == plugin.objects

    second = role.run()
    assert second.changed == 0
    assert second.outcome(install) == SKIPPED
    assert second.ran == [READ, *WAIT]

    # drift: the workload deleted (flannel's DaemonSet: the nodes lose their network) and the
    # ConfigMap edited
    configmap, key = plugin.edited
    edited = get(api, configmap)
    wanted = edited["data"]
    edited["data"] = {**wanted, key: wanted[key] + "-edited"}
    code, out = api.call("PUT", configmap, edited)
    assert code == 200, out
    delete(api, plugin.deleted)
    assert set(ready(api).values()) == ({"False"} if plugin.network_lost else {"True"})
    repaired = role.run()
    assert f"{plugin.name}: {plugin.named}" in repaired.log
    assert repaired.changed > 0
    get(api, plugin.deleted)
    assert get(api, configmap)["data"] == wanted
    assert ready(api) == {"n1": "True", "n2": "True"}

    again = role.run()
    assert again.changed == 0
    assert again.outcome(install) == SKIPPED

    plugin.then(role, server, api)
