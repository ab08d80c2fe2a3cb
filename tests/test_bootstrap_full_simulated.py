"""`provision bootstrap` with the kubeadm mode's default components (base, containerd,
cluster, addons) end to end on a lab host, against the Kubernetes simulator.

Real: the CLI, Ansible over SSH to a Debian 12 systemd container, the base role, containerd
from Debian with the generated config (its CRI socket is what the simulated kubeadm's
preflight checks), the signed per-minor apt repository, pins and holds, the kubelet unit, the
files kubeadm writes, the add-on manifests checksummed and applied in order with the waits.
Simulated: kubeadm, kubelet and kubectl (the simulator's programs) and the API server; the
add-on manifests are the reduced copies in tests/data/addons (nothing can be downloaded);
ingress-nginx's smoke request is off (the simulator has no ingress data path).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from test_addons_roles import DATA, FIXTURE_DIR, FIXTURES, addon_vars
from test_cluster_kubeadm import MINOR, assert_all_ready, cluster_vars, ssh_ok

pytestmark = [pytest.mark.container, pytest.mark.slow]


def bootstrap(lab: Any) -> tuple[dict, str]:
    proc = lab.cli("-i", "lab", "--json", "bootstrap", timeout=3000)
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON (exit {proc.returncode}): {proc.stderr[-4000:]}") from None
    assert proc.returncode == 0, f"bootstrap failed: {out.get('errors')}\n{proc.stderr[-4000:]}"
    return out, proc.stderr


@pytest.mark.timeout(3600)
def test_bootstrap_default_components_kubeadm_simulated(lab_cluster: Any, k8s_sim: Any) -> None:
    """Simulated cluster, real host layer: one `provision bootstrap` without --components
    prepares the OS, installs containerd, inits the cluster (flannel; Ready), installs MetalLB
    (the pool is set), ingress-nginx and cert-manager; the second run reports changed=0."""
    lab = lab_cluster(control_planes=1, workers=0)
    host = lab.hosts[0]
    for name in FIXTURES.values():
        data = base64.b64encode((DATA / name).read_bytes()).decode()
        ssh_ok(lab, host, f"sudo -n sh -c 'mkdir -p {FIXTURE_DIR} && echo {data} | base64 -d "
                          f"> {FIXTURE_DIR}/{name}'")
    k8s_sim.settings(deployment_ready_seconds=4.0)
    cluster_vars(lab, k8s_sim, require_cri=True, **addon_vars())

    first, log = bootstrap(lab)
    assert "components base,containerd,cluster,addons" in log
    assert first["hosts"][host]["changed"] > 0
    state = assert_all_ready(k8s_sim, [host])
    assert state["clusterVersion"].startswith(f"v1.{MINOR}.")
    dump = ssh_ok(lab, host, "sudo -n containerd config dump")
    assert "SystemdCgroup = true" in dump
    assert ssh_ok(lab, host, "systemctl is-active containerd").strip() == "active"
    cluster = k8s_sim.cluster
    assert cluster.get("daemonsets", "kube-flannel", "kube-flannel-ds") is not None
    assert cluster.get("deployments", "metallb-system", "controller") is not None
    assert cluster.get("ipaddresspools", "metallb-system", "default") is not None
    assert cluster.get("deployments", "ingress-nginx", "ingress-nginx-controller") is not None
    assert cluster.get("deployments", "cert-manager", "cert-manager-webhook") is not None
    assert cluster.get("clusterissuers", "", "lab-ca") is not None

    second, _ = bootstrap(lab)
    changed = {h: s["changed"] for h, s in second["hosts"].items() if s["changed"]}
    assert not changed, f"second bootstrap changed something: {changed}"
    assert len(k8s_sim.calls("kubeadm-init")) == 1
