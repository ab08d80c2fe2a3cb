"""`provision status` on a lab host against the Kubernetes simulator.

Real here: the CLI, inventory validation, ansible-runner over SSH to a Debian 12 systemd
container, the read-only discovery playbook (dpkg-query, apt-mark showhold, the static pod
manifest kubeadm wrote, the journal lookup), the apt-installed and held packages, systemd
stopping the kubelet unit. Simulated: kubeadm, kubelet and kubectl are the simulator's programs
(real .deb packages from its signed repository) talking to the simulated API server, which
reports the node's Ready condition from the kubelet's heartbeats and its cordon.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest
from test_simulator_lab import CONFIG, wait_for

pytestmark = [pytest.mark.container, pytest.mark.slow]

KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf"


def status(lab: Any, *args: str) -> tuple[int, dict, str]:
    proc = lab.cli("-i", "lab", "--json", "status", *args, timeout=600)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except ValueError:
        raise AssertionError(f"no JSON (rc {proc.returncode}):\n{proc.stdout}\n"
                             f"{proc.stderr[-4000:]}") from None


@pytest.mark.in_make_test  # about 2-3 min: the only lab run of `provision status`
@pytest.mark.timeout(1800)
def test_status_single_node_ready_then_cordoned_then_kubelet_stopped_simulated(
        sim_lab_node: Any) -> None:
    """Simulated kubeadm single node at 1.31.2 (kubeadm init by the simulator's kubeadm):
    status lists it Ready at 1.31.2 with held packages and the kube-apiserver image, exit 0,
    changed=0 and no call to the simulated cluster; cordoned through the simulated kubectl it
    is reported SchedulingDisabled, exit 1; with its kubelet stopped it is NotReady (text
    output), exit 1."""
    node = sim_lab_node(require_cni=False, require_cri=False, node_grace_seconds=4)
    node.bootstrap(CONFIG, "1.31.2")
    lab, host, sim = node.lab, node.host, node.sim
    name = host.lower()
    wait_for(lambda: sim.state()["nodes"].get(name, {}).get("ready"), 60, "node Ready")
    calls = sim.calls()

    started = time.monotonic()
    rc, obj, err = status(lab)
    took = time.monotonic() - started
    print(f"provision status, one node: {took:.1f}s", file=sys.stderr)
    assert rc == 0, f"{obj.get('errors')}\n{err[-4000:]}"
    assert obj["hosts"][host]["changed"] == 0 and obj["hosts"][host]["failed"] == 0
    st = obj["status"]
    assert (st["mode"], st["kubernetes_version"], st["api_server"]) == (
        "kubeadm", "1.31.2", "1.31.2")
    assert st["nodes"] == [{
        "name": name, "host": host, "role": "control-plane", "ready": "Ready", "reason": "",
        "schedulable": True, "status": "Ready", "kubelet": "1.31.2",
        "packages": {p: {"version": "1.31.2", "held": True}
                     for p in ("kubeadm", "kubelet", "kubectl")},
        "api_server": "1.31.2", "lock": None}]
    assert st["healthy"] and st["problems"] == [] and st["upgrade"] is None
    assert sim.calls() == calls, "status changed the cluster"
    # global options after the command reach the run: Ansible check mode reads the same
    rc, obj, err = status(lab, "--check", "--limit", host)
    assert rc == 0 and obj["status"]["nodes"] == st["nodes"], err[-4000:]
    rc, obj, err = status(lab, "--limit", "nope")
    assert rc == 2 and "--limit nope" in obj["errors"][0]["message"] and not obj["hosts"]

    # the same discovery with its repository lookup (the default, as `upgrade` runs it)
    # still plans from what status showed
    host_vars = lab.inventory_dir / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / f"{host}.yml").write_text(
        f"kubeadm_upgrade_repo_url_pattern: \"{node.urls.repo}/core:/stable:/v{{minor}}/deb/\"\n")
    proc = lab.cli("-i", "lab", "--json", "upgrade", "--to", "1.32", "--plan", timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (hop,) = json.loads(proc.stdout)["plan"]["hops"]
    assert hop["from"] == "1.31.2" and hop["to"].startswith("1.32."), hop
    assert sim.calls() == calls, "--plan changed the cluster"
    # `--check upgrade` once upgraded every node: now it is --plan (discovery in check mode)
    proc = lab.cli("-i", "lab", "--check", "--json", "upgrade", "--to", "1.32", "--yes",
                   timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads(proc.stdout)["plan"]["hops"][0]["to"] == hop["to"]
    assert "--check: only the plan is printed" in proc.stderr
    assert sim.calls() == calls, "upgrade --check changed the cluster"

    node.sh(f"{KUBECTL} cordon {name}")
    rc, obj, err = status(lab)
    assert rc == 1, err[-4000:]
    assert obj["hosts"][host]["changed"] == 0
    (n,) = obj["status"]["nodes"]
    assert (n["ready"], n["schedulable"], n["status"]) == (
        "Ready", False, "Ready,SchedulingDisabled")
    assert obj["status"]["problems"] == [
        f"node {name} is cordoned (SchedulingDisabled): `kubectl uncordon {name}` when its "
        "maintenance is over"]
    assert obj["errors"][0]["message"] == obj["status"]["problems"][0] and not obj["ok"]

    node.sh("systemctl stop kubelet")
    wait_for(lambda: not sim.state()["nodes"][name]["ready"], 30, "node NotReady")
    proc = lab.cli("-i", "lab", "status", timeout=600)
    assert proc.returncode == 1, proc.stderr[-4000:]
    row = next(line for line in proc.stdout.splitlines() if line.startswith(name))
    assert row.split()[:5] == [name, host, "control-plane", "NotReady,SchedulingDisabled",
                               "1.31.2"], proc.stdout
    assert (f"FAIL  node {name} is Unknown: Kubelet stopped posting node status."
            in proc.stdout), proc.stdout


@pytest.mark.timeout(1200)
def test_status_minikube_mode_reads_the_simulated_minikube_without_a_profile_simulated(
        lab_host: Any) -> None:
    """minikube mode on a lab host with the SIMULATED minikube binary (tests/simulator_minikube)
    installed where the role puts it and the user in a docker group (no docker daemon: the
    simulator's `status`, `version --short` and `config defaults` need none): the discovery
    playbook runs as that user, status shows no profile with the minikube version, exit 1,
    changed=0."""
    import base64
    from pathlib import Path

    lab = lab_host(mode="minikube")
    host = lab.hosts[0]
    user = lab.inventory.hosts[host].user
    blob = base64.b64encode((Path(__file__).parent / "simulator_minikube" / "minikube")
                            .read_bytes()).decode()
    proc = lab.ssh(host, f"echo {blob} | base64 -d > /tmp/minikube && sudo -n sh -ec '"
                         "install -m 0755 /tmp/minikube /usr/local/bin/minikube; "
                         f"groupadd -f docker; usermod -aG docker {user}'")
    assert proc.returncode == 0, proc.stderr
    rc, obj, err = status(lab)
    assert rc == 1, err[-4000:]
    assert obj["hosts"][host]["changed"] == 0
    st = obj["status"]
    assert (st["mode"], st["host"], st["user"], st["profile"], st["status"]) == (
        "minikube", host, user, None, "no profile")
    assert st["minikube_version"].startswith("v1.") and st["healthy"] is False
    assert st["problems"] == [f"host {host}: no minikube profile for {user}: run `provision "
                              "bootstrap`"]
