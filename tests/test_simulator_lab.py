"""The simulator on a real lab host (Debian 12 systemd container over SSH): apt installs the
simulated kubeadm/kubelet/kubectl .debs from the signed local repository, systemd runs the
simulated kubelet, `kubeadm init` brings the node Ready, and one upgrade hop runs by hand."""

from __future__ import annotations

import time

import pytest
from simulator.fixtures import KEYRING, install_sim_packages, lab_sh, use_sim_repo  # noqa: F401

# `kubeadm init --config` text (v1.31.2): INIT_CONFIG without, CONFIG with a kubelet configuration
INIT_CONFIG = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.2
networking:
  podSubnet: 10.244.0.0/16
"""
CONFIG = INIT_CONFIG + """\
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
"""


# shared with other lab tests (tests/test_etcd_restore_lab.py and
# tests/test_addons_roles.py import these names)
sh = lab_sh
install = install_sim_packages
use_repo = use_sim_repo


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.container
@pytest.mark.slow
def test_simulator_one_node_on_lab_host_apt_systemd_and_one_hop(
    sim_lab_node, k8s_sim
) -> None:
    """Simulated Kubernetes on a real lab host: apt + signed-by repo + holds, systemd kubelet,
    kubeadm init, node Ready; then the 1.31 -> 1.32 hop by hand, with a package-install fault."""
    node_ = sim_lab_node(require_cni=False)
    lab, host, urls = node_.lab, node_.host, node_.urls
    use_repo(lab, host, urls, 31)
    install(lab, host, "kubeadm=1.31.2-1.1", "kubelet=1.31.2-1.1", "kubectl=1.31.2-1.1")
    sh(lab, host, f"cat > /root/kubeadm.yaml <<'EOF'\n{CONFIG}EOF")
    no_cri = sh(lab, host, "kubeadm init --config /root/kubeadm.yaml", check=False)
    assert no_cri.returncode != 0 and "[ERROR CRI]" in no_cri.stderr
    assert sh(lab, host, "ls /etc/kubernetes/manifests 2>/dev/null | wc -l").stdout.strip() == "0"
    k8s_sim.settings(require_cri=False)  # the lab image has no containerd socket
    facts = sh(
        lab,
        host,
        "systemctl is-enabled kubelet; kubeadm version -o short; "
        "apt-mark showhold | sort | tr '\\n' ' '",
    ).stdout.split()
    assert facts == ["enabled", "v1.31.2", "kubeadm", "kubectl", "kubelet"]
    init = sh(lab, host, "kubeadm init --config /root/kubeadm.yaml")
    assert "initialized successfully" in init.stdout
    node = host.lower()
    wait_for(lambda: k8s_sim.state()["nodes"].get(node, {}).get("ready"), 30, "node Ready")
    assert k8s_sim.state()["nodes"][node]["kubeletVersion"] == "v1.31.2"
    got = sh(
        lab,
        host,
        "systemctl is-active kubelet; stat -c %a /etc/kubernetes/admin.conf; "
        "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes",
    ).stdout
    active, mode, header, row = got.splitlines()
    assert (active, mode) == ("active", "600")
    assert header.split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert row.split()[:3] == [node, "Ready", "control-plane"] and row.split()[4] == "v1.31.2"
    installs = [c for c in k8s_sim.calls("package-install", node) if c["result"] == "ok"]
    assert {c["package"] for c in installs} >= {"kubeadm", "kubelet", "kubectl"}

    # one hop by hand: repo v1.32, kubeadm, upgrade apply, kubelet (fails once), restart, Ready
    use_repo(lab, host, urls, 32)
    install(lab, host, "kubeadm=1.32.1-1.1")
    apply = sh(lab, host, "kubeadm upgrade apply v1.32.1 -y")
    assert 'SUCCESS! Your cluster was upgraded to "v1.32.1"' in apply.stdout
    k8s_sim.fault("package-install", node=node, count=1, package="kubelet")
    failed = install(lab, host, "kubelet=1.32.1-1.1", "kubectl=1.32.1-1.1", check=False)
    assert failed.returncode != 0
    assert "injected failure of package-install" in failed.stdout + failed.stderr
    assert sh(lab, host, "kubelet --version").stdout.strip() == "Kubernetes v1.31.2"
    install(lab, host, "kubelet=1.32.1-1.1", "kubectl=1.32.1-1.1")
    sh(lab, host, "systemctl daemon-reload && systemctl restart kubelet")
    wait_for(
        lambda: k8s_sim.state()["nodes"][node]["kubeletVersion"] == "v1.32.1", 30, "kubelet v1.32.1"
    )
    sh(
        lab,
        host,
        f"kubectl --kubeconfig /etc/kubernetes/admin.conf wait "
        f"--for=condition=Ready node/{node} --timeout=30s",
    )
    state = k8s_sim.state()
    assert state["clusterVersion"] == "v1.32.1"
    assert state["components"]["kube-apiserver"] == {node: "v1.32.1"}
    assert len([c for c in k8s_sim.calls("kubeadm-upgrade-apply") if c["result"] == "ok"]) == 1
