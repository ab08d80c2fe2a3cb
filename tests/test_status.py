"""`provision status`: the pure model and rendering from discovery reports shaped like the
real ones (`kubectl get nodes -o json` items with their Ready condition and
spec.unschedulable, dpkg-query lines, the kube-apiserver manifest, the journal), and the CLI
(bad inventory, --json shape). No host is contacted here; the lab test is
tests/test_status_simulated.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision import status
from provision.cli import main
from provision.upgrade import steps
from provision.upgrade.discover import from_report as upgrade_from_report
from provision.upgrade.plan import new_journal, plan_upgrade
from provision.upgrade.state import ClusterState, Node, journal_to_dict


def manifest(version: str) -> str:
    return ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: "
            "kube-system\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    image: "
            f"registry.k8s.io/kube-apiserver:v{version}\n")


def node(name: str, version: str, *, cp: bool = False, ready: str = "True",
         cordoned: bool = False, lock: str = "") -> dict:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if cp:
        labels["node-role.kubernetes.io/control-plane"] = ""
    if lock:
        labels["provision.io/upgrading"] = lock
    message = {"True": "kubelet is posting ready status",
               "False": "container runtime network not ready: NetworkReady=false",
               "Unknown": "Kubelet stopped posting node status."}[ready]
    spec: dict = {"podCIDR": "10.244.0.0/24"}
    if cordoned:
        spec["unschedulable"] = True
        spec["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": ready,
                                       "reason": "KubeletReady", "message": message}],
                       "nodeInfo": {"kubeletVersion": f"v{version}",
                                    "containerRuntimeVersion": "containerd://1.7.20"}}}


def host(name: str, version: str, *, cp: bool = False, held: bool = True,
         kubelet_pkg: str | None = None, api: str | None = None) -> dict:
    pk = {"kubeadm": version, "kubelet": kubelet_pkg or version, "kubectl": version}
    return {"node_name": name, "control_plane": cp,
            "packages": [f"{p} {v}-1.1 {'hi' if held else 'ii'} " for p, v in pk.items()],
            "holds": ["containerd.io", *(pk if held else [])],
            "apiserver_manifest": manifest(api or version) if cp else ""}


def report(nodes: list[dict], hosts: dict, *, cluster: str = "1.31.3", live: str = "1.31.3",
           journal: str | None = None) -> dict:
    return {"first_control_plane": "cp-host",
            "nodes_json": {"apiVersion": "v1", "kind": "List", "items": nodes},
            "cluster_configuration": f"apiServer: {{}}\napiVersion: kubeadm.k8s.io/v1beta4\n"
                                     f"kind: ClusterConfiguration\nkubernetesVersion: "
                                     f"v{cluster}\nnetworking:\n  podSubnet: 10.244.0.0/16\n",
            "version": {"clientVersion": {"gitVersion": f"v{cluster}"},
                        "serverVersion": {"gitVersion": f"v{live}"}},
            "journal": journal, "repository": {}, "hosts": hosts}


def healthy() -> dict:
    return report([node("cp1", "1.31.3", cp=True), node("w1", "1.31.3")],
                  {"cp-host": host("cp1", "1.31.3", cp=True), "w-host": host("w1", "1.31.3")})


def test_status_healthy_cluster_table_and_json() -> None:
    st = status.from_report(healthy())
    assert st.healthy and st.problems == () and st.warnings == ()
    text = status.text(st)
    lines = text.splitlines()
    assert lines[0] == ("Cluster: kubeadm-config kubernetesVersion 1.31.3, API server 1.31.3 "
                        "(read on cp-host)")
    assert lines[2].split() == ["NODE", "HOST", "ROLE", "STATUS", "KUBELET", "KUBEADM-PKG",
                                "KUBELET-PKG", "KUBECTL-PKG", "HELD", "APISERVER"]
    assert lines[3].split() == ["cp1", "cp-host", "control-plane", "Ready", "1.31.3", "1.31.3",
                                "1.31.3", "1.31.3", "yes", "1.31.3"]
    assert lines[4].split() == ["w1", "w-host", "worker", "Ready", "1.31.3", "1.31.3",
                                "1.31.3", "1.31.3", "yes"]
    assert lines[-1] == "Healthy."
    obj = status.to_json(st)
    assert json.loads(json.dumps(obj)) == obj
    assert obj["kubernetes_version"] == "1.31.3" and obj["api_server"] == "1.31.3"
    assert obj["nodes"][0] == {
        "name": "cp1", "host": "cp-host", "role": "control-plane", "ready": "Ready",
        "reason": "", "schedulable": True, "status": "Ready", "kubelet": "1.31.3",
        "packages": {p: {"version": "1.31.3", "held": True}
                     for p in ("kubeadm", "kubelet", "kubectl")},
        "api_server": "1.31.3", "lock": None}
    assert obj["nodes"][1]["api_server"] is None and obj["healthy"] is True
    assert obj["upgrade"] is None and obj["problems"] == [] and obj["unreachable"] == []


def test_status_uses_the_same_report_the_upgrade_discovery_reads() -> None:
    """One report, two readers: what status shows agrees with the planner's state."""
    rep = healthy()
    found = upgrade_from_report(rep)
    st = status.from_report(rep)
    assert {n.name: n.kubelet for n in found.state.nodes} == {n.name: n.kubelet
                                                              for n in st.nodes}
    assert {n.name: n.packages for n in found.state.nodes} == {n.name: n.packages
                                                               for n in st.nodes}
    assert found.hosts == {n.name: n.host for n in st.nodes}


def test_status_not_ready_and_cordoned_nodes_are_problems() -> None:
    rep = report([node("cp1", "1.31.3", cp=True), node("w1", "1.31.3", ready="Unknown"),
                  node("w2", "1.31.3", cordoned=True)],
                 {"cp-host": host("cp1", "1.31.3", cp=True), "w-host": host("w1", "1.31.3"),
                  "w2-host": host("w2", "1.31.3")})
    st = status.from_report(rep)
    assert [(n.name, n.status) for n in st.nodes] == [
        ("cp1", "Ready"), ("w1", "NotReady"), ("w2", "Ready,SchedulingDisabled")]
    assert st.problems == (
        "node w1 is Unknown: Kubelet stopped posting node status.",
        "node w2 is cordoned (SchedulingDisabled): `kubectl uncordon w2` when its maintenance "
        "is over")
    text = status.text(st)
    assert text.splitlines()[5].split()[:5] == ["w2", "w2-host", "worker",
                                                "Ready,SchedulingDisabled", "1.31.3"]
    assert "FAIL  node w1 is Unknown" in text and text.endswith("2 problem(s), 0 warning(s)")
    obj = status.to_json(st)
    assert [(n["ready"], n["schedulable"]) for n in obj["nodes"]] == [
        ("Ready", True), ("Unknown", True), ("Ready", False)]
    assert obj["healthy"] is False


def test_status_skew_violations_and_mixed_versions() -> None:
    # kubelet 1.27 is four minors behind 1.31 (at most three allowed); kubectl 1.29 is two
    rep = report([node("cp1", "1.31.3", cp=True), node("w1", "1.27.16"),
                  node("w2", "1.30.6")],
                 {"cp-host": host("cp1", "1.31.3", cp=True),
                  "w-host": {**host("w1", "1.27.16")},
                  "w2-host": host("w2", "1.30.6")})
    rep["hosts"]["w-host"]["packages"][2] = "kubectl 1.29.10-1.1 hi "
    st = status.from_report(rep)
    assert any("kubelet 1.27.16 on w1 is 4 minor versions older than kube-apiserver 1.31.3; "
               "at most 3 are allowed at 1.31" in p for p in st.problems), st.problems
    assert any("kubectl 1.29.10 on w-host is more than one minor version from "
               "kube-apiserver 1.31.3" in p for p in st.problems), st.problems
    assert "nodes at mixed kubelet versions (1.27.16: w1; 1.30.6: w2; 1.31.3: cp1)" \
        in st.warnings
    assert not any("w2" in p for p in st.problems), "a kubelet one minor behind is allowed"


def test_status_kubelet_newer_than_the_api_server_and_ha_api_skew() -> None:
    rep = report([node("cp1", "1.31.3", cp=True), node("cp2", "1.29.10", cp=True),
                  node("w1", "1.32.1")],
                 {"cp-host": host("cp1", "1.31.3", cp=True),
                  "cp2-host": host("cp2", "1.29.10", cp=True),
                  "w-host": host("w1", "1.32.1")})
    st = status.from_report(rep)
    assert any("kube-apiserver instances at 1.29.10 and 1.31.3 are more than one minor "
               "version apart" in p for p in st.problems), st.problems
    assert any("kubelet 1.32.1 on w1 is newer than kube-apiserver 1.29.10" in p
               for p in st.problems), st.problems
    assert "node cp2: kube-apiserver runs 1.29.10, kubeadm-config says 1.31.3" in st.warnings


def test_status_warnings_alone_keep_it_healthy() -> None:
    """Packages not held and a kubelet package not yet running warn; exit stays 0."""
    rep = report([node("cp1", "1.30.6", cp=True)],
                 {"cp-host": host("cp1", "1.30.6", cp=True, held=False, kubelet_pkg="1.31.3")},
                 cluster="1.30.6", live="1.30.6")
    st = status.from_report(rep)
    assert st.healthy
    assert st.warnings == (
        "node cp1: the kubelet package is 1.31.3 but the node reports 1.30.6 (kubelet not "
        "restarted?)",
        "host cp-host: kubeadm, kubelet, kubectl not held (apt upgrades could move them: "
        "`apt-mark hold kubeadm kubelet kubectl`)")
    assert status.text(st).splitlines()[3].split()[8] == "no"


def test_status_reports_hosts_that_are_not_nodes_and_nodes_not_in_the_inventory() -> None:
    """The upgrade refuses (exit 2) on these; status shows them as problems."""
    rep = report([node("cp1", "1.31.3", cp=True), node("stray", "1.31.3")],
                 {"cp-host": host("cp1", "1.31.3", cp=True),
                  "w-host": host("worker-9", "1.31.3")})
    st = status.from_report(rep)
    assert st.hosts_not_nodes == (("w-host", "worker-9"),)
    assert st.nodes_not_in_inventory == ("stray",)
    assert [(n.name, n.host, n.role, n.packages) for n in st.nodes] == [
        ("cp1", "cp-host", "control-plane", st.nodes[0].packages),
        ("stray", "", "worker", None)]
    text = status.text(st)
    assert text.splitlines()[4].split() == ["stray", "(not", "in", "inventory)", "worker",
                                            "Ready", "1.31.3", "?", "?", "?", "?"]
    assert "Inventory host w-host is not a node (expected node 'worker-9')" in text
    assert "Node stray is not in the inventory" in text
    assert len(st.problems) == 2
    obj = status.to_json(st)
    assert obj["hosts_not_nodes"] == [{"host": "w-host", "node": "worker-9"}]
    assert obj["nodes_not_in_inventory"] == ["stray"] and obj["nodes"][1]["packages"] is None


def test_status_unreachable_host_keeps_its_node_row_without_packages() -> None:
    rep = healthy()
    del rep["hosts"]["w-host"]
    st = status.from_report(rep, {"cp-host": ("control-plane", "cp1"),
                                  "w-host": ("worker", "w1")})
    assert st.unreachable == ("w-host",) and st.nodes_not_in_inventory == ()
    assert st.nodes[1].host == "w-host" and st.nodes[1].packages is None
    assert "Host w-host: no packages or static pods read (unreachable" in status.text(st)
    assert status.text(st).endswith("0 problem(s), 0 warning(s), 1 host(s) unreachable")


def journal_json(drain_failed_on: str) -> tuple[str, str]:
    """A 1.30 -> 1.31 journal on cp1 + w1: everything done up to the drain of one node."""
    state = ClusterState((1, 30, 6), (Node("cp1", "control-plane", (1, 30, 6)),
                                      Node("w1", "worker", (1, 30, 6))))
    plan = plan_upgrade(state, "1.31", {30: ((1, 30, 6),), 31: ((1, 31, 3),)})
    journal = new_journal(plan, started="2026-11-22T01:02:03Z")
    for s in plan.hops[0].steps():
        if (s.name, s.node) == (steps.DRAIN, drain_failed_on):
            journal.record(s, "started")
            journal.record(s, "failed", error="Cannot evict pod")
            break
        journal.record(s, "done")
    return json.dumps(journal_to_dict(journal)), "20261122T010203Z"


def test_status_half_done_upgrade_names_hop_step_node_and_its_lock() -> None:
    raw, lock = journal_json("w1")
    rep = report([node("cp1", "1.31.3", cp=True, lock=lock),
                  node("w1", "1.30.6", cordoned=True, lock=lock)],
                 {"cp-host": host("cp1", "1.31.3", cp=True), "w-host": host("w1", "1.30.6")},
                 journal=raw)
    st = status.from_report(rep)
    assert st.upgrade is not None and not st.upgrade.finished
    assert st.upgrade.next_step == (1, "drain", "w1") and st.upgrade.cordoned == ("w1",)
    assert ("an upgrade to 1.31.3 (started 2026-11-22T01:02:03Z) is unfinished, running now "
            "or interrupted: next hop 1 of 1, step drain on w1; `provision upgrade --to "
            "1.31.3` resumes it") in st.problems
    assert ("node w1 is cordoned (SchedulingDisabled), drained by the unfinished upgrade: "
            "resuming the upgrade uncordons it") in st.problems
    assert not any("carries the lock" in p for p in st.problems), "its own lock is fine"
    text = status.text(st)
    assert (f"Upgrade lock provision.io/upgrading: cp1={lock}, w1={lock}") in text
    assert ("Upgrade journal: to 1.31.3 started 2026-11-22T01:02:03Z, UNFINISHED: next hop "
            "1/1 step drain on w1") in text
    up = status.to_json(st)["upgrade"]
    assert up["next"] == {"hop": 1, "step": "drain", "node": "w1"} and up["finished"] is False


def test_status_foreign_lock_is_a_problem_leftover_lock_a_warning() -> None:
    rep = healthy()
    rep["nodes_json"]["items"][0] = node("cp1", "1.31.3", cp=True, lock="20250101T000000Z")
    st = status.from_report(rep)
    assert any("node cp1 carries the lock provision.io/upgrading=20250101T000000Z of an "
               "upgrade with no journal here" in p for p in st.problems), st.problems
    # the lock of a finished upgrade: a warning only
    raw, lock = journal_json("nobody")  # every step done
    rep = healthy()
    rep["journal"] = raw
    rep["nodes_json"]["items"][0] = node("cp1", "1.31.3", cp=True, lock=lock)
    st = status.from_report(rep)
    assert st.healthy and st.upgrade is not None and st.upgrade.finished
    assert any("still carries the lock" in w for w in st.warnings)


def test_status_reads_the_lock_under_the_inventorys_label() -> None:
    """A lock label set in the inventory (kubeadm_upgrade_lock_label, carried by the report)
    is the one looked for, named in the problem and the table; the default label is then an
    ordinary label."""
    rep = healthy()
    rep["lock_label"] = "example.com/upgrade-lock"
    cp = node("cp1", "1.31.3", cp=True)
    cp["metadata"]["labels"]["example.com/upgrade-lock"] = "20250101T000000Z"
    rep["nodes_json"]["items"][0] = cp
    rep["nodes_json"]["items"][1] = node(rep["nodes_json"]["items"][1]["metadata"]["name"],
                                         "1.31.3", lock="20240101T000000Z")
    st = status.from_report(rep)
    assert [n.lock for n in st.nodes] == ["20250101T000000Z", ""]
    assert any("node cp1 carries the lock example.com/upgrade-lock=20250101T000000Z" in p
               for p in st.problems), st.problems
    assert "Upgrade lock example.com/upgrade-lock: cp1=20250101T000000Z" in status.text(st)


def test_status_broken_journal_and_missing_cluster_version_are_problems() -> None:
    rep = healthy()
    rep["journal"] = "{not json"
    rep["cluster_configuration"] = "kind: ClusterConfiguration\n"
    st = status.from_report(rep)
    assert st.problems[0] == "the kubeadm-config ConfigMap names no kubernetesVersion"
    assert "the upgrade journal on the first control-plane node is not valid JSON" \
        in st.problems[1]
    assert "kubeadm-config kubernetesVersion -," in status.text(st)


# ------------------------------------------------------------------------------ minikube
def mk_report(running: bool = True, config: bool = True) -> dict:
    state = "Running" if running else "Stopped"
    return {"host": "lab-1", "user": "provision", "running": running,
            "status": json.dumps({"Name": "minikube", "Host": state, "Kubelet": state,
                                  "APIServer": state, "Kubeconfig": "Configured"}),
            "minikube_version": "v1.34.0\n",
            "config": {"Name": "minikube", "Driver": "docker",
                       "KubernetesConfig": {"KubernetesVersion": "v1.31.0"}} if config else None,
            "releases": ["v1.31.0", "v1.30.0"]}


def test_status_minikube_running_stopped_and_no_profile() -> None:
    st = status.minikube_from_report(mk_report())
    assert st.problems == ()
    assert status.minikube_text(st).splitlines()[1].split() == [
        "minikube", "lab-1", "provision", "Running", "1.31.0", "v1.34.0", "docker"]
    assert status.minikube_json(st) == {
        "mode": "minikube", "host": "lab-1", "user": "provision", "profile": "minikube",
        "status": "Running", "components": {"Host": "Running", "Kubelet": "Running",
                                            "APIServer": "Running", "Kubeconfig": "Configured"},
        "kubernetes_version": "1.31.0", "minikube_version": "v1.34.0", "driver": "docker",
        "healthy": True, "problems": []}
    stopped = status.minikube_from_report(mk_report(running=False))
    assert stopped.state == "Stopped"
    assert stopped.problems == ("host lab-1: minikube profile of provision is not running "
                                "(Host Stopped, Kubelet Stopped, APIServer Stopped): `minikube "
                                "start` as provision or `provision bootstrap`",)
    none = status.minikube_from_report(mk_report(running=False, config=False))
    assert none.state == "no profile" and "no minikube profile for provision" in none.problems[0]


# ------------------------------------------------------------------------------ CLI
def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_status_cli_bad_inventory_exits_2_naming_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n"
                   "          ansible_host: 10.0.0.10\n          kubernetes_version: 1.30\n")
    code, out, err = run(["-i", str(inv), "--json", "status"], capsys)
    assert code == 2, err
    obj = json.loads(out)
    assert obj["exit_code"] == 2 and obj["command"] == "status" and obj["ok"] is False
    assert any(str(inv) in e["message"] and "kubernetes_version" in e["message"]
               and "cp1" in e["message"] for e in obj["errors"]), obj
    assert not (tmp_path / "provision").exists()


def test_status_cli_without_control_plane_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    workers:\n      hosts:\n        w1:\n"
                   "          ansible_host: 10.0.0.11\n")
    code, out, err = run(["-i", str(inv), "status"], capsys)
    assert code == 2 and f"{inv}: group control_plane: kubeadm mode needs" in err


def test_status_cli_help_documents_exit_codes_and_an_example(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["status", "--help"], capsys)
    assert code == 0
    for text in ("Examples:", "provision -i prod status", "1  a problem: a node NotReady or "
                 "cordoned", "3  a host unreachable"):
        assert text in out


class FakeRun:
    """The parts of runner.RunResult the command reads (no playbook runs in these tests)."""

    def __init__(self, tmp: Path, hosts: dict[str, dict[str, int]]) -> None:
        self.run_dir = tmp
        self.hosts = hosts
        self.unreachable_hosts = sorted(h for h, s in hosts.items() if s["unreachable"])
        self.errors: list[dict] = []
        self.ok = not self.unreachable_hosts
        self.exit_code = 3 if self.unreachable_hosts else 0


def recap(unreachable: int = 0) -> dict[str, int]:
    return {"ok": 9, "changed": 0, "failed": 0, "unreachable": unreachable, "skipped": 2}


@pytest.mark.parametrize("case, code", [("healthy", 0), ("cordoned", 1), ("unreachable", 3)])
def test_status_cli_json_shape_and_exit_codes_from_a_report(
        case: str, code: int, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's glue: inventory -> expected nodes, report -> one JSON object, exit code
    (the discovery run is replaced by its report; tests/test_status_simulated.py runs it)."""
    from provision.upgrade import report as upgrade_report

    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    control_plane:\n      hosts:\n        cp-host:\n"
                   "          ansible_host: 10.0.0.10\n          kubeadm_control_plane_node_name:"
                   " cp1\n    workers:\n      hosts:\n        w-host:\n"
                   "          ansible_host: 10.0.0.11\n          kubeadm_worker_node_name: w1\n")
    rep = healthy()
    hosts = {"cp-host": recap(), "w-host": recap()}
    if case == "cordoned":
        rep["nodes_json"]["items"][1] = node("w1", "1.31.3", cordoned=True)
    if case == "unreachable":
        del rep["hosts"]["w-host"]
        hosts["w-host"] = recap(unreachable=1)
    seen: dict = {}

    def fake(inv_: object, verbosity: int, playbook: str, report_var: str,
             extravars: dict | None = None, **kw: object) -> tuple:
        seen.update(playbook=playbook, extravars=extravars, **kw)
        return rep, tmp_path / "discovery.json", FakeRun(tmp_path, hosts)

    monkeypatch.setattr(upgrade_report, "run_report_playbook", fake)
    rc, out, err = run(["-i", str(inv), "--json", "status"], capsys)
    assert rc == code, err
    assert seen == {"playbook": "upgrade-discover.yml", "command": "status",
                    "accept_failed": True, "limit": None, "check": False,
                    "extravars": {"kubeadm_upgrade_discover_read_repository": False}}
    obj = json.loads(out)
    assert set(obj) == {"ok", "exit_code", "command", "run_dir", "hosts", "errors", "status"}
    assert (obj["ok"], obj["exit_code"], obj["command"]) == (code == 0, code, "status")
    assert set(obj["status"]) == {"mode", "kubernetes_version", "api_server",
                                  "first_control_plane", "nodes", "hosts_not_nodes",
                                  "nodes_not_in_inventory", "unreachable", "upgrade", "healthy",
                                  "problems", "warnings"}
    assert [(n["name"], n["host"]) for n in obj["status"]["nodes"]] == [
        ("cp1", "cp-host"), ("w1", "w-host")]
    assert obj["status"]["unreachable"] == (["w-host"] if case == "unreachable" else [])
    assert obj["errors"] == [{"message": p} for p in obj["status"]["problems"]]
    assert "Reading the cluster (read-only)" in err and "NODE" in err  # human text on stderr


SIM_MINIKUBE = Path(__file__).parent / "simulator_minikube" / "minikube"


def docker_reachable() -> bool:
    import shutil
    import subprocess

    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not docker_reachable(), reason="the simulator probes `docker version`")
def test_status_minikube_reads_the_simulated_minikube_outputs(tmp_path: Path) -> None:
    """Simulated minikube (tests/simulator_minikube, run here as this user): the report the
    discovery tasks build from `minikube status --output=json` (its exit code),
    `minikube version --short` and the profile's config.json, through a start, a stop and a
    delete."""
    import os
    import subprocess

    env = {**os.environ, "HOME": str(tmp_path)}
    config = tmp_path / ".minikube" / "profiles" / "minikube" / "config.json"

    def mk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SIM_MINIKUBE), *args], capture_output=True, text=True,
                              env=env, check=False, timeout=60)

    def discovered() -> status.MinikubeStatus:
        st = mk("status", "--output=json")
        return status.minikube_from_report({
            "host": "lab-1", "user": "provision", "running": st.returncode == 0,
            "status": st.stdout, "minikube_version": mk("version", "--short").stdout,
            "config": json.loads(config.read_text()) if config.exists() else None,
            "releases": json.loads(mk("config", "defaults", "kubernetes-version",
                                      "--output=json").stdout)})

    none = discovered()
    assert (none.state, none.profile, none.kubernetes) == ("no profile", "", None)
    assert none.minikube.startswith("v1.") and none.problems
    assert mk("start", "--force", "--kubernetes-version=v1.30.4").returncode == 0
    up = discovered()
    assert (up.profile, up.state, up.kubernetes, up.driver, up.problems) == (
        "minikube", "Running", (1, 30, 4), "docker", ())
    assert up.components["APIServer"] == "Running"
    assert mk("stop").returncode == 0
    down = discovered()
    assert down.state == "Stopped" and down.kubernetes == (1, 30, 4)
    assert "is not running (Host Stopped, Kubelet Stopped, APIServer Stopped)" \
        in down.problems[0]
