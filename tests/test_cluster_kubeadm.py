"""The kubeadm cluster layer (playbooks/cluster.yml) on real lab hosts against the Kubernetes
simulator: single node, one control plane + one worker, three control planes (HA).

Real here: Ansible over SSH to Debian 12 systemd containers, the apt repository setup (signed
per-minor repository laid out like pkgs.k8s.io, served from the test host), the pinned install
and the holds (dpkg), systemd units of the kubelet, the files kubeadm writes, the kubeconfig
copied for the non-root SSH user, the second run reporting changed=0.
Simulated: kubeadm, kubelet and kubectl are the simulator's programs (real .deb packages) that
talk to the simulated API server on the test host; no container runs. So the simulator is told
not to require a CRI socket (containerd is the host layer's job and is tested there) and node
readiness follows the CNI DaemonSet the role applies.

Each scenario runs at the Kubernetes minor new clusters get by default (the schema's
kubernetes_version default; ids like ``[1.35]``) and at the newest minor provision supports
(``[1.37]``, slow: make test-all), both from lab_fixtures.kubernetes_minors().
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_fixtures import kubernetes_minors
from simulator import rules

from provision.runner import RunResult, run_playbook
from provision.validate import validate

pytestmark = [pytest.mark.container, pytest.mark.slow]

CALICO = Path(__file__).parent / "data" / "cni" / "calico-v3.32.1.yaml"
# The minor of the other modules that build on these helpers (test_bootstrap_full_simulated,
# test_certs_renew), unchanged here; the scenarios below take theirs from kubernetes_minors().
MINOR = 31


def release(minor: int) -> str:
    """"1.N" resolves to the newest patch release of 1.N in the (simulated) repository."""
    return rules.RELEASES[minor][-1]


def cluster_vars(lab: Any, sim: Any, minor: int = MINOR, require_cri: bool = False,
                 **extra: Any) -> dict[str, Any]:
    """Point the lab hosts at the simulator and write the cluster settings into the lab
    inventory (host_vars, so inventory validation sees them). Without containerd on the
    hosts (require_cri False) the simulated kubeadm's preflight skips the CRI socket check."""
    urls = sim.expose_to(lab)
    sim.settings(require_cri=require_cri)
    values = {"kubernetes_version": f"1.{minor}",
              "kubernetes_packages_repo_url": urls.repo_for(minor), **extra}
    for host in lab.hosts:
        path = Path(lab.inventory_dir) / "host_vars" / f"{host}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        current = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
        path.write_text(yaml.safe_dump({**current, **values}, sort_keys=True))
    return values


def run_cluster(lab: Any, values: dict[str, Any]) -> RunResult:
    """playbooks/bootstrap.yml through provision.runner with the components `provision
    bootstrap --components cluster` passes: the host layer and the add-ons are skipped, the
    imported cluster.yml runs."""
    inv = lab.inventory
    errors, _ = validate(inv)
    assert not errors, f"the lab inventory does not validate: {errors}"
    result = run_playbook(command="bootstrap", playbook="bootstrap.yml", inventory=inv,
                          extravars={"provision_components": ["cluster"]},
                          quiet=True)
    assert result.ok, (f"bootstrap.yml (cluster layer) failed (status {result.status}, "
                       f"rc {result.rc}, hosts {result.hosts}): {result.errors}\n"
                       f"{result.log_path.read_text()[-6000:]}")
    return result


def ssh_ok(lab: Any, host: str, command: str) -> str:
    proc = lab.ssh(host, command)
    assert proc.returncode == 0, f"{host}: {command!r} exited {proc.returncode}:\n" \
                                 f"{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def assert_second_run_changes_nothing(lab: Any, values: dict[str, Any]) -> RunResult:
    second = run_cluster(lab, values)
    changed = {h: s["changed"] for h, s in second.hosts.items() if s["changed"]}
    assert not changed, f"second run changed something: {changed}\n" \
                        f"{second.log_path.read_text()[-6000:]}"
    assert set(second.hosts) == set(lab.hosts)
    return second


#: kubeadm_control_plane's include of its steps, skipped when its one state read finds nothing
#: to do (roles/kubeadm_control_plane/tasks/main.yml)
CONTROL_PLANE_STEPS = ("kubeadm_control_plane : Start or join the cluster, give the user the "
                       "kubeconfig, remove the taint")


def task_outcomes(result: RunResult, task: str) -> list[str]:
    """The result lines (``ok: [h]``, ``skipping: [h]``, ...) of ``task`` in a run's log."""
    outcomes: list[str] = []
    current = ""
    for line in re.sub(r"\x1b\[[0-9;]*m", "", result.log_path.read_text()).splitlines():
        if line.startswith(("TASK [", "PLAY ")):
            current = line[len("TASK ["):line.rfind("]")] if line.startswith("TASK [") else ""
        elif current == task and re.match(r"(ok|changed|skipping|fatal|included): ", line):
            outcomes.append(line.split(" => ")[0].strip())
    return outcomes


def assert_packages_pinned_and_held(lab: Any, host: str, minor: int) -> None:
    out = ssh_ok(lab, host, "dpkg-query -W -f='${Package} ${Version}\\n' kubeadm kubelet kubectl")
    assert sorted(out.split("\n")[:-1]) == sorted(
        f"{p} {rules.deb_version(release(minor))}" for p in ("kubeadm", "kubelet", "kubectl"))
    held = ssh_ok(lab, host, "apt-mark showhold").split()
    assert {"kubeadm", "kubelet", "kubectl"} <= set(held), f"{host}: not held: {held}"
    sources = ssh_ok(lab, host, "cat /etc/apt/sources.list.d/kubernetes.list")
    assert f"/core:/stable:/v1.{minor}/deb/ /" in sources and "signed-by=" in sources
    assert ssh_ok(lab, host, "systemctl is-enabled kubelet").strip() == "enabled"


def assert_user_kubeconfig(lab: Any, host: str) -> None:
    """The SSH user (not root) has ~/.kube/config 0600 and kubectl works without sudo."""
    user = lab.inventory.hosts[host].user
    assert user and user != "root"
    st = ssh_ok(lab, host, "stat -c '%a %U' ~/.kube/config").split()
    assert st == ["600", user], f"{host}: ~/.kube/config is {st}"
    nodes = ssh_ok(lab, host, "kubectl get nodes")
    assert nodes.splitlines()[0].split()[:2] == ["NAME", "STATUS"]


def assert_all_ready(sim: Any, hosts: list[str], minor: int = MINOR) -> dict[str, Any]:
    state = sim.state()
    assert sorted(state["nodes"]) == sorted(hosts)
    for name, node in state["nodes"].items():
        assert node["ready"], f"{name} not Ready: {node}"
        assert node["kubeletVersion"] == f"v{release(minor)}", node
    assert state["clusterVersion"] == f"v{release(minor)}"
    return state


# kubeadm bootstrap tokens look like [a-z0-9]{6}.[a-z0-9]{16}
TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")


def assert_no_secret_in_artifacts(result: RunResult, sim: Any) -> None:
    """No bootstrap token (by shape, and every token the simulator issued) and no uploaded
    certificate key in the run's log or events: the no_log tasks keep them out."""
    secrets = [t["token"] for t in sim.cluster.tokens.values()] + list(sim.cluster.uploaded_certs)
    assert secrets, "the simulator issued no join secret"
    leaks = []
    for path in result.run_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            found = TOKEN.findall(text) + [s for s in secrets if s in text]
            leaks += [f"{path.relative_to(result.run_dir)}: {m[:8]}..." for m in found]
    assert not leaks, f"join secrets in the run artifacts: {leaks[:5]}"


def init_config(lab: Any, host: str) -> dict[str, dict]:
    text = ssh_ok(lab, host, "sudo -n cat /etc/kubernetes/provision/kubeadm-config.yaml")
    return {d["kind"]: d for d in yaml.safe_load_all(text) if d}


@pytest.mark.timeout(3600)  # apt and SSH round trips; far longer when the machine is loaded
@pytest.mark.parametrize("minor", kubernetes_minors())
def test_kubeadm_single_node_simulated(minor: int, lab_cluster: Any, k8s_sim: Any) -> None:
    """Simulated kubeadm, one node: packages pinned and held from the per-minor repository,
    init once with the rendered v1beta4 config, no control-plane taint (no workers), flannel,
    node Ready, user kubeconfig 0600; the second run reports changed=0 and skips the control
    plane's steps (one state read); an edited user kubeconfig and a control-plane taint put
    back by hand are repaired by the next run, and the run after it changes nothing."""
    lab = lab_cluster(control_planes=1, workers=0)
    host = lab.hosts[0]
    values = cluster_vars(lab, k8s_sim, minor, kube_proxy_mode="ipvs",
                          metallb_addresses=["10.0.0.240/28"])
    first = run_cluster(lab, values)
    assert first.hosts[host]["changed"] > 0
    state = assert_all_ready(k8s_sim, [host], minor)
    assert state["nodes"][host]["taints"] == []
    assert "node-role.kubernetes.io/control-plane" in state["nodes"][host]["labels"]
    assert_packages_pinned_and_held(lab, host, minor)
    assert_user_kubeconfig(lab, host)
    docs = init_config(lab, host)
    assert docs["ClusterConfiguration"]["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert docs["ClusterConfiguration"]["kubernetesVersion"] == f"v{release(minor)}"
    assert docs["KubeProxyConfiguration"]["ipvs"]["strictARP"] is True
    assert [c["op"] for c in k8s_sim.calls("kubeadm-init")] == ["kubeadm-init"]
    # the init token lives 15 minutes, not kubeadm's default 24 hours
    init_tokens = [t for t in k8s_sim.cluster.tokens.values() if t["description"] == "init"]
    assert len(init_tokens) == 1 and init_tokens[0]["expires"] is not None
    assert init_tokens[0]["expires"] - time.time() <= 15 * 60
    mode = ssh_ok(lab, host, "sudo -n stat -c %a /etc/kubernetes/provision/kubeadm-config.yaml")
    assert mode.strip() == "600"
    second = assert_second_run_changes_nothing(lab, values)
    assert len(k8s_sim.calls("kubeadm-init")) == 1, "kubeadm init ran again"
    # the re-run read the control plane once and skipped its steps
    assert task_outcomes(second, CONTROL_PLANE_STEPS) == [f"skipping: [{host}]"], \
        second.log_path.read_text()[-6000:]
    # drift the steps repair: the user's kubeconfig edited, the control-plane taint put back
    ssh_ok(lab, host, "echo '# edited' >> ~/.kube/config && sudo -n kubectl --kubeconfig "
                      f"/etc/kubernetes/admin.conf taint node {host} "
                      "node-role.kubernetes.io/control-plane:NoSchedule")
    assert k8s_sim.state()["nodes"][host]["taints"] != []
    third = run_cluster(lab, values)
    assert third.hosts[host]["changed"] > 0
    ran = task_outcomes(third, CONTROL_PLANE_STEPS)
    assert [line.startswith("included: ") and line.endswith(f" for {host}") for line in ran] \
        == [True], third.log_path.read_text()[-6000:]
    assert k8s_sim.state()["nodes"][host]["taints"] == []
    assert_user_kubeconfig(lab, host)
    ssh_ok(lab, host, "sudo -n cmp /etc/kubernetes/admin.conf ~/.kube/config")
    assert_second_run_changes_nothing(lab, values)
    assert len(k8s_sim.calls("kubeadm-init")) == 1, "kubeadm init ran again"


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("minor", kubernetes_minors())
def test_kubeadm_control_plane_and_worker_simulated(minor: int, lab_cluster: Any,
                                                    k8s_sim: Any) -> None:
    """Simulated kubeadm, one control plane + one worker, calico as the CNI (the manifest
    checksum-verified, its IPv4 pool set to the pod CIDR): the worker joins with a
    short-lived token created on demand and the CA hash; the control plane keeps its taint;
    both Ready; the join secrets never reach the log; second run changed=0."""
    lab = lab_cluster(control_planes=1, workers=1)
    cp, worker = lab.hosts
    manifest = CALICO.read_bytes()
    ssh_ok(lab, cp, f"sudo -n install -d -m 0755 /srv/cni && echo "
                    f"{base64.b64encode(manifest).decode()} | base64 -d | "
                    f"sudo -n tee /srv/cni/{CALICO.name} >/dev/null")
    values = cluster_vars(lab, k8s_sim, minor, cni_plugin="calico", pod_cidr="10.32.0.0/16",
                          cni_calico_manifest_url=f"file:///srv/cni/{CALICO.name}",
                          cni_calico_manifest_checksum="sha256:"
                          + hashlib.sha256(manifest).hexdigest())
    first = run_cluster(lab, values)
    # calico's IPv4 pool is the cluster's pod CIDR (podSubnet), not calico's 192.168.0.0/16
    ds = k8s_sim.cluster.get("daemonsets", "kube-system", "calico-node")
    env = {e["name"]: e.get("value") for c in ds["spec"]["template"]["spec"]["containers"]
           for e in c.get("env", [])}
    assert env["CALICO_IPV4POOL_CIDR"] == "10.32.0.0/16"
    assert init_config(lab, cp)["ClusterConfiguration"]["networking"]["podSubnet"] == \
        "10.32.0.0/16"
    state = assert_all_ready(k8s_sim, lab.hosts, minor)
    assert [t["key"] for t in state["nodes"][cp]["taints"]] == \
        ["node-role.kubernetes.io/control-plane"]
    assert state["nodes"][worker]["taints"] == []
    assert "node-role.kubernetes.io/control-plane" not in state["nodes"][worker]["labels"]
    for host in lab.hosts:
        assert_packages_pinned_and_held(lab, host, minor)
    assert_user_kubeconfig(lab, cp)
    joins = k8s_sim.calls("kubeadm-join")
    assert [c["node"] for c in joins] == [worker]
    assert_no_secret_in_artifacts(first, k8s_sim)
    gone = lab.ssh(worker, "sudo -n test -e /etc/kubernetes/provision/kubeadm-join.yaml")
    assert gone.returncode == 1, "the join configuration (with the token) was left behind"
    assert_second_run_changes_nothing(lab, values)
    assert len(k8s_sim.calls("kubeadm-join")) == 1


@pytest.mark.timeout(5400)
@pytest.mark.parametrize("minor", kubernetes_minors())
def test_kubeadm_ha_three_control_planes_simulated(minor: int, lab_cluster: Any,
                                                   k8s_sim: Any) -> None:
    """Simulated kubeadm HA: three control planes, the second and third join with a
    certificate key uploaded on demand; all three run the control-plane components, are Ready
    and untainted (no workers); second run changed=0."""
    lab = lab_cluster(control_planes=3, workers=0)
    address = ssh_ok(lab, lab.hosts[0], "hostname -I").split()[0]  # the node network
    values = cluster_vars(lab, k8s_sim, minor, control_plane_endpoint=f"{address}:6443")
    first = run_cluster(lab, values)
    assert_no_secret_in_artifacts(first, k8s_sim)
    state = assert_all_ready(k8s_sim, lab.hosts, minor)
    assert sorted(state["components"]["kube-apiserver"]) == sorted(lab.hosts)
    assert set(state["components"]["kube-apiserver"].values()) == {f"v{release(minor)}"}
    for host in lab.hosts:
        assert "node-role.kubernetes.io/control-plane" in state["nodes"][host]["labels"]
        assert state["nodes"][host]["taints"] == []
        assert_user_kubeconfig(lab, host)
    joins = k8s_sim.calls("kubeadm-join")
    assert sorted(c["node"] for c in joins) == sorted(lab.hosts[1:])
    assert len(k8s_sim.calls("kubeadm-upload-certs")) >= 2
    ca = {ssh_ok(lab, h, "sudo -n sha256sum /etc/kubernetes/pki/ca.key").split()[0]
          for h in lab.hosts}
    assert len(ca) == 1, "the control planes do not share the cluster CA"
    assert_second_run_changes_nothing(lab, values)
