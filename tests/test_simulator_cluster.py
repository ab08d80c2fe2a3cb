"""The simulated kubeadm/kubelet/kubectl programs against the simulated API server, with nodes
as local directories (the same code the .deb packages install; real kubelet processes).

Every test here is about the simulator: it shows the simulated tools enforce the real tools'
rules and produce their files and output formats."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

INIT_V1BETA3 = """\
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
nodeRegistration:
  name: {name}
  criSocket: unix:///var/run/containerd/containerd.sock
localAPIEndpoint:
  advertiseAddress: 192.0.2.10
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: {version}
controlPlaneEndpoint: 192.0.2.10:6443
imageRepository: registry.k8s.io
apiServer:
  certSANs: [203.0.113.7, cp.example.test]
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
ipvs:
  strictARP: true
"""


def write(tmp: Path, name: str, text: str) -> str:
    p = tmp / name
    p.write_text(text)
    return str(p)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def init_cp(
    sim_local,
    tmp_path: Path,
    version: str = "1.30.6",
    name: str = "cp1",
    extra: tuple[str, ...] = (),
):
    cp = sim_local.node(name, version)
    cfg = write(tmp_path, f"{name}.yaml", INIT_V1BETA3.format(name=name, version=f"v{version}"))
    proc = ok(cp.run("kubeadm", "init", "--config", cfg, *extra))
    return cp, proc


def join_command(cp) -> list[str]:
    out = ok(
        cp.run(
            "kubeadm",
            "token",
            "create",
            "--print-join-command",
            "--kubeconfig",
            "/etc/kubernetes/admin.conf",
        )
    ).stdout.split()
    assert out[:2] == ["kubeadm", "join"]
    return out[2:]


def apiserver_sans(node) -> str:  # noqa: ANN001 - localnode.Node
    """The subjectAltName extension of the node's apiserver.crt, read by openssl."""
    return subprocess.run(
        ["openssl", "x509", "-in", str(node.path("/etc/kubernetes/pki/apiserver.crt")),
         "-noout", "-ext", "subjectAltName"],
        capture_output=True, text=True, check=True,
    ).stdout


def test_simulator_init_single_node_ready(sim_local, tmp_path: Path) -> None:
    """Simulated `kubeadm init`: real files, node Ready with its kubelet version."""
    cp, proc = init_cp(sim_local, tmp_path)
    assert "[init] Using Kubernetes version: v1.30.6" in proc.stdout
    assert "Your Kubernetes control-plane has initialized successfully!" in proc.stdout
    assert "--discovery-token-ca-cert-hash sha256:" in proc.stdout
    state = sim_local.cluster.state()
    assert state["nodes"]["cp1"]["ready"] and state["nodes"]["cp1"]["kubeletVersion"] == "v1.30.6"
    assert state["clusterVersion"] == "v1.30.6"
    assert state["components"]["kube-apiserver"] == {"cp1": "v1.30.6"}
    assert state["components"]["etcd"] == {"cp1": "3.5.12-0"}
    assert "node-role.kubernetes.io/control-plane" in state["nodes"]["cp1"]["labels"]
    admin = cp.path("/etc/kubernetes/admin.conf")
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    assert (
        yaml.safe_load(admin.read_text())["clusters"][0]["cluster"]["server"]
        == sim_local.server.url
    )
    manifest = yaml.safe_load(cp.path("/etc/kubernetes/manifests/kube-apiserver.yaml").read_text())
    assert manifest["spec"]["containers"][0]["image"] == "registry.k8s.io/kube-apiserver:v1.30.6"
    sans = apiserver_sans(cp)
    assert "203.0.113.7" in sans and "cp.example.test" in sans and "10.96.0.1" in sans
    kubelet_cfg = yaml.safe_load(cp.path("/var/lib/kubelet/config.yaml").read_text())
    assert kubelet_cfg["cgroupDriver"] == "systemd"
    cm = ok(
        cp.kubectl(
            "get",
            "cm",
            "kubeadm-config",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={.data.ClusterConfiguration}",
        )
    ).stdout
    assert yaml.safe_load(cm)["kubernetesVersion"] == "v1.30.6"
    proxy = ok(
        cp.kubectl(
            "-n", "kube-system", "get", "cm", "kube-proxy", "-o", "jsonpath={.data.config\\.conf}"
        )
    ).stdout
    assert yaml.safe_load(proxy)["ipvs"]["strictARP"] is True
    again = cp.run("kubeadm", "init", "--config", str(tmp_path / "cp1.yaml"))
    assert again.returncode == 1
    assert "[ERROR FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml]" in again.stderr


def test_simulator_kubeadm_init_without_version_fails_loudly(sim_local, tmp_path: Path) -> None:
    """Simulated kubeadm refuses where the real one would fetch dl.k8s.io/release/stable-1.txt."""
    cp = sim_local.node("cp1", "1.31.2")
    text = INIT_V1BETA3.format(name="cp1", version="v1.31.2").replace(
        "kubernetesVersion: v1.31.2\n", ""
    )
    proc = cp.run("kubeadm", "init", "--config", write(tmp_path, "c.yaml", text))
    assert proc.returncode == 1
    assert "https://dl.k8s.io/release/stable-1.txt" in proc.stderr
    assert not cp.path("/etc/kubernetes").exists()
    assert sim_local.cluster.state()["initialized"] is False


def test_simulator_kubeadm_refuses_unknown_config_field(sim_local, tmp_path: Path) -> None:
    """Simulated kubeadm: a misspelt field in the config is refused (strict decoding)."""
    cp = sim_local.node("cp1", "1.30.6")
    text = INIT_V1BETA3.format(name="cp1", version="v1.30.6").replace("podSubnet", "podSubnets")
    path = write(tmp_path, "c.yaml", text)
    proc = cp.run("kubeadm", "init", "--config", path)
    assert proc.returncode == 1 and 'unknown field "networking.podSubnets"' in proc.stderr
    validate = cp.run("kubeadm", "config", "validate", "--config", path)
    assert validate.returncode == 1 and "strict decoding error" in validate.stderr
    assert not cp.path("/etc/kubernetes/manifests").exists()


def test_simulator_kubeadm_v1beta3_deprecation_warning_on_1_31(sim_local, tmp_path: Path) -> None:
    """Simulated kubeadm 1.31 accepts v1beta3 with the real deprecation warning."""
    cp = sim_local.node("cp1", "1.31.2")
    proc = ok(
        cp.run(
            "kubeadm",
            "config",
            "images",
            "list",
            "--config",
            write(tmp_path, "c.yaml", INIT_V1BETA3.format(name="cp1", version="v1.31.2")),
        )
    )
    assert "deprecated API spec" in proc.stderr
    assert "registry.k8s.io/kube-apiserver:v1.31.2" in proc.stdout
    assert "registry.k8s.io/etcd:3.5.15-0" in proc.stdout


def test_simulator_join_worker_and_second_control_plane(sim_local, tmp_path: Path) -> None:
    """Simulated joins: a worker with token + CA hash, a control plane with a certificate key."""
    cp, _ = init_cp(sim_local, tmp_path, extra=("--upload-certs",))
    join = join_command(cp)
    worker = sim_local.node("w1", "1.30.6")
    proc = ok(worker.run("kubeadm", "join", *join))
    assert "This node has joined the cluster" in proc.stdout
    key = (
        ok(cp.run("kubeadm", "init", "phase", "upload-certs", "--upload-certs"))
        .stdout.strip()
        .splitlines()[-1]
    )
    cp2 = sim_local.node("cp2", "1.30.6")
    ok(cp2.run("kubeadm", "join", *join, "--control-plane", "--certificate-key", key))
    assert (
        cp2.path("/etc/kubernetes/pki/ca.key").read_text()
        == cp.path("/etc/kubernetes/pki/ca.key").read_text()
    )
    wait_until(
        lambda: all(n["ready"] for n in sim_local.cluster.state()["nodes"].values()),
        what="3 nodes Ready",
    )
    state = sim_local.cluster.state()
    assert sorted(state["nodes"]) == ["cp1", "cp2", "w1"]
    assert "node-role.kubernetes.io/control-plane" in state["nodes"]["cp2"]["labels"]
    assert "node-role.kubernetes.io/control-plane" not in state["nodes"]["w1"]["labels"]
    assert state["components"]["kube-apiserver"] == {"cp1": "v1.30.6", "cp2": "v1.30.6"}
    nodes = ok(cp.kubectl("get", "nodes")).stdout.splitlines()
    assert nodes[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [line.split()[2] for line in nodes[1:]] == ["control-plane", "control-plane", "<none>"]
    bad = sim_local.node("cp3", "1.30.6")
    refused = bad.run("kubeadm", "join", *join, "--control-plane", "--certificate-key", "00" * 32)
    assert refused.returncode == 1 and "kubeadm-certs" in refused.stderr


def test_simulator_join_refuses_wrong_ca_hash_and_token(sim_local, tmp_path: Path) -> None:
    """Simulated join verifies the pinned CA hash and the bootstrap token like kubeadm."""
    cp, _ = init_cp(sim_local, tmp_path)
    join = join_command(cp)
    worker = sim_local.node("w1", "1.30.6")
    wrong_hash = [a if not a.startswith("sha256:") else "sha256:" + "0" * 64 for a in join]
    proc = worker.run("kubeadm", "join", *wrong_hash)
    assert proc.returncode == 1 and "are pinned" in proc.stderr
    i = join.index("--token")
    wrong_token = join[: i + 1] + ["abcdef.0123456789abcdef"] + join[i + 2 :]
    proc = worker.run("kubeadm", "join", *wrong_token)
    assert proc.returncode == 1 and 'token ID "abcdef"' in proc.stderr
    assert "w1" not in sim_local.cluster.state()["nodes"]


def test_simulator_join_refuses_kubelet_newer_than_control_plane(
    sim_local, tmp_path: Path
) -> None:
    """Simulated join preflight: KubeletVersion error when the kubelet is newer."""
    cp, _ = init_cp(sim_local, tmp_path)
    worker = sim_local.node("w1", "1.30.6")
    worker.install(kubelet="1.31.2")
    proc = worker.run("kubeadm", "join", *join_command(cp))
    assert proc.returncode == 1 and "[ERROR KubeletVersion]" in proc.stderr


def test_simulator_upgrade_apply_rules_and_effects(sim_local, tmp_path: Path) -> None:
    """Simulated `kubeadm upgrade apply`: one minor at a time, kubeadm of the target version;
    the control plane's static pods then run the new version and `upgrade node` follows."""
    cp, _ = init_cp(sim_local, tmp_path, version="1.29.10")
    worker = sim_local.node("w1", "1.29.10")
    ok(worker.run("kubeadm", "join", *join_command(cp)))
    cp.install(kubeadm="1.31.2")
    skip = cp.run("kubeadm", "upgrade", "apply", "v1.31.2", "-y")
    assert skip.returncode == 1 and "only 1 minor version at a time" in skip.stderr
    cp.install(kubeadm="1.30.5")
    mismatch = cp.run("kubeadm", "upgrade", "apply", "v1.30.6", "-y")
    assert mismatch.returncode == 1 and "Upgrade kubeadm first" in mismatch.stderr
    cp.install(kubeadm="1.30.6")
    early = worker.run("kubeadm", "upgrade", "node")
    assert early.returncode == 0  # cluster still 1.29: kubeadm 1.29 on the worker is level
    proc = ok(cp.run("kubeadm", "upgrade", "apply", "v1.30.6", "-y"))
    assert '[upgrade/successful] SUCCESS! Your cluster was upgraded to "v1.30.6"' in proc.stdout
    state = sim_local.cluster.state()
    assert state["clusterVersion"] == "v1.30.6"
    assert state["components"]["kube-apiserver"] == {"cp1": "v1.30.6"}
    assert state["components"]["kube-proxy"] == {"*": "v1.30.6"}
    old_kubeadm = worker.run("kubeadm", "upgrade", "node")
    assert old_kubeadm.returncode == 1 and "older than the cluster version" in old_kubeadm.stderr
    worker.install(kubeadm="1.30.6")
    ok(worker.run("kubeadm", "upgrade", "node"))
    worker.install(kubelet="1.30.6", kubectl="1.30.6")
    worker.restart_kubelet()
    wait_until(
        lambda: sim_local.cluster.state()["nodes"]["w1"]["kubeletVersion"] == "v1.30.6",
        what="w1 kubelet v1.30.6",
    )
    ok(cp.kubectl("wait", "--for=condition=Ready", "node/w1", "--timeout=20s"))
    applies = [
        c
        for c in sim_local.cluster.calls
        if c["op"] == "kubeadm-upgrade-apply" and c["result"] == "ok"
    ]
    assert [c["target"] for c in applies] == ["v1.30.6"]


def test_simulator_kubelet_newer_than_apiserver_never_ready(sim_local, tmp_path: Path) -> None:
    """Simulated skew policy: a kubelet newer than the API server cannot register its version."""
    cp, _ = init_cp(sim_local, tmp_path)
    cp.install(kubelet="1.31.2")
    cp.restart_kubelet()
    wait_until(
        lambda: any(
            c["op"] == "kubelet-register" and c["result"] == "refused"
            for c in sim_local.cluster.calls
        ),
        what="refused registration",
    )
    assert sim_local.cluster.state()["nodes"]["cp1"]["kubeletVersion"] == "v1.30.6"
    wait = cp.kubectl(
        "wait",
        "--for=jsonpath={.status.nodeInfo.kubeletVersion}=v1.31.2",
        "node/cp1",
        "--timeout=2s",
    )
    assert (
        wait.returncode == 1 and "timed out waiting for the condition on nodes/cp1" in wait.stderr
    )


def test_simulator_drain_flags_pdb_and_uncordon(sim_local, tmp_path: Path) -> None:
    """Simulated `kubectl drain`: cordons first, refuses bare/DaemonSet/emptyDir pods without
    the flags, respects a PodDisruptionBudget until --timeout and names the blocked pod."""
    cp, _ = init_cp(sim_local, tmp_path)
    worker = sim_local.node("w1", "1.30.6")
    ok(worker.run("kubeadm", "join", *join_command(cp)))
    wait_until(lambda: sim_local.cluster.state()["nodes"].get("w1", {}).get("ready"))
    sim = sim_local.cluster
    sim.seed(
        {
            "pods": [
                {"name": "bare", "node": "w1"},
                {
                    "name": "cache-1",
                    "node": "w1",
                    "owner": "ReplicaSet",
                    "owner_name": "cache",
                    "emptyDir": True,
                },
                {
                    "name": "db-1",
                    "node": "w1",
                    "owner": "ReplicaSet",
                    "owner_name": "db",
                    "labels": {"app": "db"},
                },
            ],
            "pdbs": [{"name": "db", "selector": {"app": "db"}, "minAvailable": 1}],
        }
    )
    proc = cp.kubectl("drain", "w1", "--timeout=5s")
    assert proc.returncode == 1
    assert "node/w1 cordoned" in proc.stdout
    assert (
        "cannot delete Pods that declare no controller (use --force to override): "
        "default/bare" in proc.stderr
    )
    assert (
        "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "
        "kube-system/kube-proxy-w1" in proc.stderr
    )
    assert (
        "cannot delete Pods with local storage (use --delete-emptydir-data to override): "
        "default/cache-1" in proc.stderr
    )
    assert sim.state()["nodes"]["w1"]["unschedulable"] is True  # real drain leaves it cordoned
    # cp1 keeps its control-plane taint: the db replacement has nowhere to go, the PDB blocks
    blocked = cp.kubectl(
        "drain", "w1", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=2s"
    )
    assert blocked.returncode == 1
    assert "Cannot evict pod as it would violate the pod's disruption budget." in blocked.stderr
    assert (
        'error when evicting pods/"db-1" -n "default": global timeout reached: 2s' in blocked.stderr
    )
    ok(cp.kubectl("taint", "nodes", "cp1", "node-role.kubernetes.io/control-plane:NoSchedule-"))
    wait_until(
        lambda: any(
            p["node"] == "cp1" and p["ready"] and p["name"].startswith("cache")
            for p in sim.state()["pods"]
        ),
        what="cache rescheduled on cp1",
    )
    # the eviction of db-1 is allowed once its replacement... there is none yet: db has 1 replica
    # and minAvailable 1, so it stays blocked until the PDB is relaxed
    ok(cp.kubectl("delete", "pdb", "db"))
    drained = ok(
        cp.kubectl(
            "drain",
            "w1",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--force",
            "--timeout=10s",
        )
    )
    assert "node/w1 drained" in drained.stdout
    on_w1 = [p for p in sim.state()["pods"] if p["node"] == "w1"]
    assert [p["owner"] for p in on_w1] == ["DaemonSet"]
    ok(cp.kubectl("uncordon", "w1"))
    assert sim.state()["nodes"]["w1"]["unschedulable"] is False
    assert ok(cp.kubectl("uncordon", "w1")).stdout.strip() == "node/w1 already uncordoned"


def test_simulator_faults_fail_once_then_converge(sim_local, tmp_path: Path) -> None:
    """Simulator fault injection: `kubeadm upgrade apply` fails once (before, then after the
    change), a kubelet start fails, and uncordon fails once; each retried call succeeds."""
    cp, _ = init_cp(sim_local, tmp_path, version="1.30.6")
    sim = sim_local.cluster
    cp.install(kubeadm="1.31.2")
    sim.add_fault({"op": "kubeadm-upgrade-apply", "node": "cp1"})
    first = cp.run("kubeadm", "upgrade", "apply", "v1.31.2", "-y")
    assert first.returncode == 1 and "injected failure" in first.stderr
    assert sim.state()["clusterVersion"] == "v1.30.6"
    sim.add_fault({"op": "kubeadm-upgrade-apply", "node": "cp1", "phase": "after"})
    second = cp.run("kubeadm", "upgrade", "apply", "v1.31.2", "-y")
    assert second.returncode == 1 and sim.state()["clusterVersion"] == "v1.31.2"
    assert (
        len([c for c in sim.calls if c["op"] == "kubeadm-upgrade-apply" and c["result"] == "ok"])
        == 1
    )
    sim.add_fault({"op": "uncordon", "node": "cp1"})
    ok(cp.kubectl("cordon", "cp1"))
    failed = cp.kubectl("uncordon", "cp1")
    assert failed.returncode == 1 and sim.state()["nodes"]["cp1"]["unschedulable"]
    ok(cp.kubectl("uncordon", "cp1"))
    assert not sim.state()["nodes"]["cp1"]["unschedulable"]
    sim.add_fault({"op": "kubelet-start", "node": "cp1", "count": 1})
    cp.restart_kubelet()
    wait_until(
        lambda: any(
            c["op"] == "kubelet-start" and c["result"] == "injected-failure" for c in sim.calls
        ),
        what="kubelet start failure",
    )
    wait_until(lambda: sim.state()["nodes"]["cp1"]["ready"], what="kubelet back")


def test_simulator_kubectl_output_formats(sim_local, tmp_path: Path) -> None:
    """Simulated kubectl: version -o json, get -o json/wide/name/jsonpath, skew warning."""
    cp, _ = init_cp(sim_local, tmp_path, version="1.30.6")
    version = json.loads(ok(cp.kubectl("version", "-o", "json")).stdout)
    assert version["clientVersion"]["gitVersion"] == "v1.30.6"
    assert version["serverVersion"]["gitVersion"] == "v1.30.6"
    assert version["serverVersion"]["minor"] == "30"
    nodes = json.loads(ok(cp.kubectl("get", "nodes", "-o", "json")).stdout)
    assert nodes["kind"] == "List"
    node = nodes["items"][0]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.30.6"
    assert {"type": "Ready", "status": "True"}.items() <= node["status"]["conditions"][0].items()
    wide = ok(cp.kubectl("get", "nodes", "-o", "wide")).stdout.splitlines()
    assert wide[0].split()[:7] == [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
        "EXTERNAL-IP",
    ]
    assert ok(cp.kubectl("get", "nodes", "-o", "name")).stdout.split() == ["node/cp1"]
    images = ok(
        cp.kubectl(
            "get",
            "pods",
            "-n",
            "kube-system",
            "-l",
            "component=kube-apiserver",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        )
    ).stdout
    assert images == "registry.k8s.io/kube-apiserver:v1.30.6"
    cp.install(kubectl="1.32.1")
    skew = ok(cp.kubectl("version"))
    assert "exceeds the supported minor version skew of +/-1" in skew.stderr
    missing = cp.kubectl("get", "node", "nope")
    assert missing.returncode == 1 and 'nodes "nope" not found' in missing.stderr
    sim_local.server.stop()
    down = cp.kubectl("get", "nodes")
    assert down.returncode == 1 and "was refused" in down.stderr


@pytest.mark.parametrize("kind", ["crd-missing", "webhook-not-ready"])
def test_simulator_apply_needs_crds_and_ready_webhooks(
    sim_local, tmp_path: Path, kind: str
) -> None:
    """Simulated API: custom resources need their CRD; a webhook answers only once its
    Deployment is available (the MetalLB configuration race)."""
    cp, _ = init_cp(sim_local, tmp_path)
    pool = {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": "lab", "namespace": "metallb-system"},
        "spec": {"addresses": ["192.0.2.200-192.0.2.210"]},
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "ipaddresspools.metallb.io"},
        "spec": {
            "group": "metallb.io",
            "scope": "Namespaced",
            "names": {
                "kind": "IPAddressPool",
                "plural": "ipaddresspools",
                "singular": "ipaddresspool",
            },
            "versions": [{"name": "v1beta1", "served": True, "storage": True}],
        },
    }
    pool_file = write(tmp_path, "pool.yaml", yaml.safe_dump(pool))
    missing_ns = cp.kubectl("apply", "-f", write(tmp_path, "crd0.yaml", yaml.safe_dump(crd)))
    assert missing_ns.returncode == 0
    no_ns = cp.kubectl("apply", "-f", pool_file)
    assert no_ns.returncode == 1 and 'namespaces "metallb-system" not found' in no_ns.stderr
    ok(cp.kubectl("create", "namespace", "metallb-system"))
    ok(cp.kubectl("delete", "crd", "ipaddresspools.metallb.io"))
    if kind == "crd-missing":
        proc = cp.kubectl("apply", "-f", pool_file)
        assert proc.returncode == 1 and "ensure CRDs are installed first" in proc.stderr
        ok(cp.kubectl("apply", "-f", write(tmp_path, "crd.yaml", yaml.safe_dump(crd))))
        assert "created" in ok(cp.kubectl("apply", "-f", pool_file)).stdout
        assert "unchanged" in ok(cp.kubectl("apply", "-f", pool_file)).stdout
        return
    sim_local.cluster.settings["deployment_ready_seconds"] = 3.0
    webhook_stack = [
        crd,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "controller", "namespace": "metallb-system"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "metallb"}},
                "template": {
                    "metadata": {"labels": {"app": "metallb"}},
                    "spec": {"tolerations": [{"operator": "Exists"}]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "metallb-webhook-service", "namespace": "metallb-system"},
            "spec": {"selector": {"app": "metallb"}},
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "metallb-webhook-configuration"},
            "webhooks": [
                {
                    "name": "ipaddresspoolvalidationwebhook.metallb.io",
                    "clientConfig": {
                        "service": {
                            "name": "metallb-webhook-service",
                            "namespace": "metallb-system",
                        }
                    },
                    "rules": [{"apiGroups": ["metallb.io"], "resources": ["ipaddresspools"]}],
                }
            ],
        },
    ]
    ok(cp.kubectl("apply", "-f", write(tmp_path, "stack.yaml", yaml.safe_dump_all(webhook_stack))))
    early = cp.kubectl("apply", "-f", pool_file)
    assert early.returncode == 1 and "failed calling webhook" in early.stderr
    ok(
        cp.kubectl(
            "rollout", "status", "deployment/controller", "-n", "metallb-system", "--timeout=20s"
        )
    )
    ok(cp.kubectl("apply", "-f", pool_file))


def test_simulator_kubeadm_certs_check_and_renew(sim_local, tmp_path: Path, monkeypatch) -> None:
    """Simulated `kubeadm certs check-expiration` / `renew all` over the real PKI files."""
    from simulator import pki

    cp, _ = init_cp(sim_local, tmp_path)
    monkeypatch.setenv("SIM_ROOT", str(cp.root))
    pki.renew(str(cp.path("/etc/kubernetes/pki/apiserver.crt")), "ca", days=2)
    pki.renew_kubeconfig(str(cp.path("/etc/kubernetes/admin.conf")), "ca", days=2)
    rows = {
        line.split()[0]: line
        for line in ok(cp.run("kubeadm", "certs", "check-expiration")).stdout.splitlines()
        if line
    }
    assert " 1d " in rows["apiserver"] and " 1d " in rows["admin.conf"]
    assert " 364d " in rows["etcd-server"] and " 9y " in rows["ca"]
    assert "certificate apiserver renewed" in ok(cp.run("kubeadm", "certs", "renew", "all")).stdout
    rows = {
        line.split()[0]: line
        for line in ok(cp.run("kubeadm", "certs", "check-expiration")).stdout.splitlines()
        if line
    }
    assert " 364d " in rows["apiserver"] and " 364d " in rows["admin.conf"]
    assert stat.S_IMODE(cp.path("/etc/kubernetes/admin.conf").stat().st_mode) == 0o600
    verify = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(cp.path("/etc/kubernetes/pki/ca.crt")),
            str(cp.path("/etc/kubernetes/pki/apiserver.crt")),
        ],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr
    sans = apiserver_sans(cp)
    assert "203.0.113.7" in sans


def test_simulator_upgrade_apply_without_kubelet_rolls_back(sim_local, tmp_path: Path) -> None:
    """Simulated `kubeadm upgrade apply` needs the kubelet to restart the static pods; without
    it the manifests are restored and the cluster version is unchanged (then a re-run works)."""
    cp, _ = init_cp(sim_local, tmp_path, version="1.30.6")
    cp.install(kubeadm="1.31.2")
    cp.stop_kubelet()
    proc = cp.run("kubeadm", "upgrade", "apply", "v1.31.2", "-y", "--timeout", "3")
    assert proc.returncode == 1 and "couldn't upgrade control plane" in proc.stderr
    manifest = cp.path("/etc/kubernetes/manifests/kube-apiserver.yaml").read_text()
    assert "kube-apiserver:v1.30.6" in manifest
    assert sim_local.cluster.state()["clusterVersion"] == "v1.30.6"
    cp.start_kubelet()
    ok(cp.run("kubeadm", "upgrade", "apply", "v1.31.2", "-y"))
    assert sim_local.cluster.state()["clusterVersion"] == "v1.31.2"
    assert (
        "kube-apiserver:v1.31.2"
        in cp.path("/etc/kubernetes/manifests/kube-apiserver.yaml").read_text()
    )
