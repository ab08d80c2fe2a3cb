"""The containerd and kubernetes_packages stamps (library/provision_stamp.py) on a real lab
host, through `provision bootstrap --components base,containerd,cluster`.

Real: Ansible over SSH to a Debian 12 systemd container, containerd from Debian (its CRI
socket is what the simulated kubeadm's preflight checks), apt, dpkg holds, the files and
services the roles manage, and the hand-made drift (an edited config.toml, a stopped
containerd, a held kubelet moved to another release, an unheld kubectl, an edited apt source,
a removed signing key). SIMULATED: the Kubernetes packages are the simulator's (real .deb
packages in a per-minor apt repository signed with the test's own key, served from this
machine) and the cluster is the simulator's API server.
"""

from __future__ import annotations

from typing import Any

import pytest
from simulator import rules
from test_bootstrap_container import (
    assert_no_change,
    bootstrap,
    flat,
    gate_result,
    ran_tasks,
    run_log,
    ssh_ok,
)
from test_cluster_kubeadm import MINOR, cluster_vars, release

pytestmark = [pytest.mark.container, pytest.mark.slow]

COMPONENTS = ("--components", "base,containerd,cluster")
SOURCES = "/etc/apt/sources.list.d/kubernetes.list"
KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.asc"
CONFIG = "/etc/containerd/config.toml"
PACKAGES = ("kubeadm", "kubelet", "kubectl")
INSTALL_TASKS = ("containerd : Install containerd", "containerd : Write config.toml",
                 "kubernetes_packages : Install the packages at",
                 "kubernetes_packages : Hold the packages",
                 "kubernetes_packages : Add the per-minor repository")


def versions(lab: Any, host: str) -> dict[str, str]:
    out = ssh_ok(lab, host, "dpkg-query -W -f='${Package} ${Version}\\n' " + " ".join(PACKAGES))
    return dict(line.split() for line in out.splitlines() if line.strip())


def held(lab: Any, host: str) -> set[str]:
    return set(ssh_ok(lab, host, "apt-mark showhold").split())


@pytest.mark.timeout(5400)  # four runs of the host and cluster layers; far longer under load
def test_containerd_and_kubernetes_packages_stamps_skip_and_repair_drift_simulated(
        lab_cluster: Any, k8s_sim: Any) -> None:
    """A re-run skips the two roles' install steps (changed=0, the steps are not run; the host
    gate holds, so containerd's role is not entered at all). Then,
    by hand on the host: config.toml edited and containerd stopped; kubelet (held) moved to
    an older 1.{MINOR} release, kubectl unheld, the kubernetes apt source edited and the
    signing key removed. The next run names that drift per role, repairs it (config.toml is
    the role's again and containerd runs; the three packages are at the pinned release and
    held; the source line and the key are back) and the run after it changes nothing."""
    lab = lab_cluster(control_planes=1, workers=0)
    host = lab.hosts[0]
    cluster_vars(lab, k8s_sim, require_cri=True)
    pinned = rules.deb_version(release(MINOR))
    older = rules.deb_version(rules.RELEASES[MINOR][-2])

    first = bootstrap(lab, *COMPONENTS, timeout=3000)
    assert first["hosts"][host]["changed"] > 0
    assert versions(lab, host) == dict.fromkeys(PACKAGES, pinned)
    config, sources, key = (ssh_ok(lab, host, f"sudo cat {path}")
                            for path in (CONFIG, SOURCES, KEYRING))

    second = bootstrap(lab, *COMPONENTS, timeout=1800)
    assert_no_change(second, host)
    log = flat(run_log(second))
    # the host gate held (containerd's role is not entered at all); the cluster layer's
    # kubernetes_packages skips its steps with its own stamp
    gate = gate_result(second, host)
    assert gate["current"] is True and "apt_ready, base, containerd" in gate["msg"], gate
    assert not [t for t in ran_tasks(second) if t.startswith("containerd : ")]
    assert f"kubeadm, kubelet, kubectl {pinned} unchanged since the last run" in log, log[-3000:]
    ran = [t for t in ran_tasks(second) if t.startswith(INSTALL_TASKS)]
    assert not ran, f"install tasks ran although the stamps matched: {ran}"

    ssh_ok(lab, host, f"echo '# edited by hand' | sudo tee -a {CONFIG} && "
                      "sudo systemctl stop containerd && "
                      "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                      f"--allow-downgrades --allow-change-held-packages kubelet={older} && "
                      # installing another version drops the hold: held again, as a
                      # held package moved by hand would be
                      "sudo apt-mark hold kubelet && "
                      f"sudo apt-mark unhold kubectl && echo '# edited' | sudo tee -a {SOURCES}"
                      f" && sudo rm {KEYRING}")
    assert versions(lab, host)["kubelet"] == older
    assert "kubelet" in held(lab, host) and "kubectl" not in held(lab, host)

    third = bootstrap(lab, *COMPONENTS, timeout=3000)
    log = flat(run_log(third))
    assert gate_result(third, host)["why"] == "role state changed: containerd"
    assert f"drift: files {CONFIG}, services containerd" in log, log[-3000:]
    assert (f"drift: packages kubelet, files {SOURCES}, files {KEYRING}, holds kubectl"
            in log), log[-3000:]
    assert versions(lab, host) == dict.fromkeys(PACKAGES, pinned)
    assert set(PACKAGES) <= held(lab, host)
    assert ssh_ok(lab, host, f"sudo cat {CONFIG}") == config
    assert ssh_ok(lab, host, "systemctl is-active containerd").strip() == "active"
    assert ssh_ok(lab, host, f"sudo cat {SOURCES}") == sources
    assert ssh_ok(lab, host, f"sudo cat {KEYRING}") == key

    assert_no_change(bootstrap(lab, *COMPONENTS, timeout=1800), host)
