"""Upgrade drain against the SIMULATED eviction API (tests/simulator: kube-apiserver's
eviction.go rules, see tests/simulator/README.md): the product finds the pods that would block
a drain with server-side dry-run evictions before anything is cordoned, names them, and an
unhealthyPodEvictionPolicy AlwaysAllow budget lets the same upgrade through. Real: the lab
hosts, Ansible, apt/dpkg, systemd, etcd; simulated: Kubernetes (kubeadm, kubelet, kubectl)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from test_upgrade_simulated import upgrade_lab, write_host_vars  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.container, pytest.mark.etcd]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_upgrade_drain_dry_run_names_a_crashlooping_pod_before_cordon_simulated(
        upgrade_lab: Any) -> None:  # noqa: F811
    """kubeadm's upgrade health-check Job times out once: `upgrade plan` is retried and the
    hop goes on with one apply. A crash-looping single replica under minAvailable: 1 (Running,
    never Ready): the
    eviction API answers 429 (the budget needs 1 healthy pod and has 0), so the hop stops at
    w1's drain step naming default/db-0 and the API's cause, and w1 is never cordoned (the old
    simulator evicted every not-Ready pod; the old product cordoned and retried until the drain
    timeout). The run with --to 1.31 names the inventory line that still says 1.30. With
    unhealthyPodEvictionPolicy: AlwaysAllow and kubernetes_version: 1.31 in the inventory,
    `provision upgrade` WITHOUT --to (the declared version) completes. A later bootstrap whose
    inventory says 1.30 again is refused with exit 2 naming both versions, and changes
    nothing (packages, cluster version)."""
    ul = upgrade_lab(workers=1, minor=30)
    cp, w1 = ul.lab.hosts
    # kubeadm's upgrade health check Job times out once: `upgrade plan` is retried (the same
    # retries as apply), then apply runs exactly once
    ul.sim.fault("upgrade-health-check", node=cp, count=1)
    ul.sim.seed(pods=[{"name": "db-0", "node": w1, "owner": "ReplicaSet", "owner_name": "db",
                       "labels": {"app": "db"}, "crashloop": True}],
                pdbs=[{"name": "db", "selector": {"app": "db"}, "minAvailable": 1}])
    rc, obj, err = ul.cli("--to", "1.31", "--yes")
    text = json.dumps(obj.get("errors")) + err
    assert rc == 1, err[-4000:]
    assert "would be blocked" in text and "default/db-0" in text, text[-4000:]
    assert "needs 1 healthy pods and has 0" in text, text[-4000:]
    assert "declares kubernetes_version: 1.30" in text and "set it to 1.31" in text, text[-3000:]
    assert not [c for c in ul.sim.calls("cordon") if c["node"] == w1], ul.sim.calls("cordon")
    assert ul.cordoned() == []
    refused = [c for c in ul.sim.calls("eviction", node=w1) if c.get("result") == "refused"]
    assert refused, ul.sim.calls("eviction")
    # the injected timeout, the failed plan, its retry and the apply's own check
    checks = [c["result"] for c in ul.sim.calls("upgrade-health-check")]
    assert checks == ["injected-failure", "failed", "ok", "ok"], checks
    assert [c["result"] for c in ul.applies()] == ["ok"]

    ul.ssh(cp, "sudo -n kubectl --kubeconfig /etc/kubernetes/admin.conf delete pdb db "
               "-n default")
    ul.sim.seed(pdbs=[{"name": "db", "selector": {"app": "db"}, "minAvailable": 1,
                       "unhealthyPodEvictionPolicy": "AlwaysAllow"}])
    write_host_vars(ul.lab, {"kubernetes_version": "1.31"})
    rc, obj, err = ul.cli("--yes")  # no --to: the inventory's declared version
    assert rc == 0, f"{obj.get('errors')}\n{err[-4000:]}"
    assert "target 1.31: the inventory's kubernetes_version" in err, err[-3000:]
    ul.assert_at("1.31.3")

    write_host_vars(ul.lab, {"kubernetes_version": "1.30"})
    proc = ul.lab.cli("-i", "lab", "--json", "bootstrap", "--components", "cluster",
                      timeout=1800)
    assert proc.returncode == 2, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert ("older than the cluster: kubernetes_version 1.30 is older than the 1.31.3"
            in proc.stderr), proc.stderr[-3000:]
    assert "Set kubernetes_version to 1.31" in proc.stderr
    ul.assert_at("1.31.3")


@pytest.fixture
def ha_upgrade_lab(lab_cluster: Any, k8s_sim: Any, tmp_path: Any):
    from test_upgrade_simulated import UpgradeLab

    ul = UpgradeLab(lab_cluster(control_planes=2, workers=0), k8s_sim, tmp_path, 30)
    yield ul
    ul.close()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_upgrade_ha_addons_wait_for_the_last_control_plane_and_resume_simulated(
        ha_upgrade_lab: Any) -> None:
    """Simulated HA cluster (2 control planes) 1.30 -> 1.31. First cp2's kubelet is stopped:
    the upgrade refuses (exit 2) naming the NotReady control plane before any snapshot or
    apply. Then `upgrade apply` on cp1 skips
    CoreDNS and kube-proxy because cp2 still runs the old kube-apiserver (kubeadm's
    UnupgradedControlPlaneInstances); cp2's `upgrade node` upgrades them, and when that addon
    phase fails once the hop stops at cp2's upgrade-node step, kube-proxy is still old, and the
    same command resumes and completes the add-ons (verify sees kube-proxy at 1.31.3)."""
    ul = ha_upgrade_lab
    cp1, cp2 = ul.lab.hosts
    # a NotReady control plane stops a new upgrade before any change (kubeadm's health check
    # would refuse it after the snapshot and the kubeadm install)
    ul.ssh(cp2, "sudo -n systemctl stop kubelet")
    deadline = time.monotonic() + 300
    while ul.sim.state()["nodes"][cp2]["ready"] and time.monotonic() < deadline:
        time.sleep(2)
    rc, obj, err = ul.cli("--to", "1.31", "--yes")
    assert rc == 2, err[-3000:]
    assert f"control plane {cp2} is NotReady" in err + json.dumps(obj.get("errors")), err[-3000:]
    assert ul.applies() == [] and ul.snapshots() == []
    ul.ssh(cp2, "sudo -n systemctl start kubelet")
    while not ul.sim.state()["nodes"][cp2]["ready"] and time.monotonic() < deadline + 300:
        time.sleep(2)
    ul.sim.fault("kubeadm-upgrade-node-addons", node=cp2, count=1)
    rc, obj, err = ul.cli("--to", "1.31", "--yes")
    text = json.dumps(obj.get("errors")) + err
    assert rc == 1, err[-4000:]
    assert f"step upgrade-node failed on {cp2}" in text, text[-4000:]
    addons = ul.sim.calls("kubeadm-addons")
    assert [(c["node"], c["result"], c.get("nodes")) for c in addons] == [
        (cp1, "skipped", [cp2])], addons
    assert ul.sim.state()["components"]["kube-proxy"] == {"*": "v1.30.6"}
    assert ul.cordoned() == []

    rc, obj, err = ul.cli("--to", "1.31", "--yes")
    assert rc == 0, f"{obj.get('errors')}\n{err[-4000:]}"
    ul.assert_at("1.31.3")
    assert [(c["node"], c["result"]) for c in ul.sim.calls("kubeadm-addons")] == [
        (cp1, "skipped"), (cp2, "ok")]
    ul.assert_applies_one_minor_each(["1.30.6", "1.31.3"])
