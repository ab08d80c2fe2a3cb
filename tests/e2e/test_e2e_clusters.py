"""End to end on real hosts with internet access (`make e2e`): the scenarios the simulated
suite covers, against real kubeadm/kubelet/containerd or minikube, real images and a real CNI.

Which scenario runs follows the inventory: one control plane (single node), control plane +
workers, or three control planes (HA), in kubeadm or minikube mode. See conftest.py for how
hosts are chosen; without hosts or offline every test skips with the reason.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from e2e_versions import expected_kubernetes_version, kubelet_matches

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(7200)]


@pytest.fixture(scope="session")
def bootstrapped(e2e: Any) -> dict[str, Any]:
    """`provision bootstrap` with the mode's default components, once per session."""
    code, first = e2e.json("bootstrap")
    assert code == 0, f"bootstrap failed (exit {code}): {first.get('errors')}"
    return first


def first_control_plane(e2e: Any) -> str:
    inv = e2e.load()
    return (inv.control_plane[0] if inv.mode == "kubeadm" else next(iter(inv.hosts.values()))).name


def kubectl_json(e2e: Any, args: str) -> dict[str, Any]:
    proc = e2e.ssh(first_control_plane(e2e), f"kubectl {args} -o json")
    assert proc.returncode == 0, f"kubectl {args}: {proc.stderr}"
    return json.loads(proc.stdout)


def test_e2e_bootstrap_second_run_changes_nothing(e2e: Any, bootstrapped: dict) -> None:
    """Real cluster: the second `provision bootstrap` reports changed=0 on every host."""
    code, second = e2e.json("bootstrap")
    assert code == 0, second.get("errors")
    changed = {h: s["changed"] for h, s in second["hosts"].items() if s["changed"]}
    assert not changed, f"second bootstrap changed something: {changed}"


def test_e2e_every_node_ready_at_the_inventory_version(e2e: Any, bootstrapped: dict) -> None:
    """Real cluster: every inventory host is a Ready node running the kubelet of the
    inventory's kubernetes_version or, when it sets none, of the default new clusters get (the
    schema's), and kubectl works for the SSH user (not root)."""
    inv = e2e.load()
    nodes = kubectl_json(e2e, "get nodes")["items"]
    want = len(inv.hosts) if inv.mode == "kubeadm" else 1
    assert len(nodes) == want, [n["metadata"]["name"] for n in nodes]
    version = expected_kubernetes_version(inv)  # the inventory's, else the schema default
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", f"{node['metadata']['name']} is not Ready"
        kubelet = node["status"]["nodeInfo"]["kubeletVersion"]
        assert kubelet_matches(kubelet, version), (kubelet, version)
    who = e2e.ssh(first_control_plane(e2e), "id -u").stdout.strip()
    assert who != "0", "the e2e SSH user is root: the non-root path is not exercised"


def test_e2e_a_pod_runs_and_reaches_the_service_network(e2e: Any, bootstrapped: dict) -> None:
    """Real cluster: an image from registry.k8s.io is pulled and a pod becomes Ready (runtime,
    CNI and scheduler work), and it resolves the kubernetes Service through CoreDNS."""
    cp = first_control_plane(e2e)
    image = os.environ.get("PROVISION_E2E_TEST_IMAGE",
                           "registry.k8s.io/e2e-test-images/agnhost:2.53")
    e2e.ssh(cp, "kubectl delete pod provision-e2e --ignore-not-found --wait=true")
    run = e2e.ssh(cp, f"kubectl run provision-e2e --image={image} --restart=Never "
                      "--command -- /agnhost pause")
    assert run.returncode == 0, run.stderr
    try:
        wait = e2e.ssh(cp, "kubectl wait --for=condition=Ready pod/provision-e2e --timeout=600s")
        assert wait.returncode == 0, wait.stderr
        dns = e2e.ssh(cp, "kubectl exec provision-e2e -- /agnhost dns-lookup "
                          "kubernetes.default.svc.cluster.local")
        assert dns.returncode == 0 and dns.stdout.strip(), dns.stderr
    finally:
        e2e.ssh(cp, "kubectl delete pod provision-e2e --ignore-not-found --wait=false")


def test_e2e_certs_check_passes_on_a_fresh_cluster(e2e: Any, bootstrapped: dict) -> None:
    """Real kubeadm PKI: every certificate is valid for more than 30 days after bootstrap."""
    if e2e.load().mode != "kubeadm":
        pytest.skip("minikube mode: the cluster PKI is minikube's own")
    code, report = e2e.json("certs", "check")
    assert code == 0, report.get("errors")


def test_e2e_etcd_snapshot_and_restore_drill(e2e: Any, bootstrapped: dict) -> None:
    """Real stacked etcd: a snapshot is taken with the kubeadm client certificates, verified
    by a restore into a throwaway etcd, and listed."""
    if e2e.load().mode != "kubeadm":
        pytest.skip("minikube mode has no kubeadm etcd to back up")
    code, snap = e2e.json("etcd", "snapshot", "--tag", "e2e")
    assert code == 0, snap.get("errors")
    code, verified = e2e.json("etcd", "verify")
    assert code == 0, verified.get("errors")


def test_e2e_upgrade_one_minor_at_a_time(e2e: Any, bootstrapped: dict) -> None:
    """Real kubeadm upgrade to PROVISION_E2E_UPGRADE_TO (e.g. two minors above the inventory's
    kubernetes_version): every node ends at the target, none cordoned."""
    target = os.environ.get("PROVISION_E2E_UPGRADE_TO")
    if not target:
        pytest.skip("set PROVISION_E2E_UPGRADE_TO=1.N to run a real upgrade")
    if e2e.load().mode != "kubeadm":
        pytest.skip("the upgrade command targets kubeadm clusters")
    code, result = e2e.json("upgrade", "--to", target, "--yes")
    assert code == 0, result.get("errors")
    for node in kubectl_json(e2e, "get nodes")["items"]:
        assert kubelet_matches(node["status"]["nodeInfo"]["kubeletVersion"], target)
        assert not node["spec"].get("unschedulable"), f"{node['metadata']['name']} cordoned"
