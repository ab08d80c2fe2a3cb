"""The upgrade execution's pure parts and the node-side journal tool: discovery report ->
planner state, the per-hop extra vars, the lock rules, and the journal tool run for real
(Python on this machine, as on a node). No host, no simulator."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from provision.upgrade import discover, execute, steps
from provision.upgrade.plan import new_journal, plan_upgrade
from provision.upgrade.state import StateError, journal_to_dict

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "roles/kubeadm_upgrade/files/upgrade-journal.py"

MANIFEST = """apiVersion: v1
kind: Pod
spec:
  containers:
  - command: [kube-apiserver]
    image: registry.k8s.io/kube-apiserver:v1.28.15
"""


def node(name: str, version: str, cp: bool = False, labels: dict | None = None) -> dict:
    lbl = {"kubernetes.io/hostname": name, **(labels or {})}
    if cp:
        lbl["node-role.kubernetes.io/control-plane"] = ""
    return {"metadata": {"name": name, "labels": lbl},
            "status": {"nodeInfo": {"kubeletVersion": version}}}


def packages(v: str, status: str = "ii ") -> list[str]:
    return [f"{p} {v}-1.1 {status}" for p in ("kubeadm", "kubectl", "kubelet")]


def report(**over) -> dict:
    data = {
        "first_control_plane": "cp-host",
        "nodes_json": {"items": [node("cp-1", "v1.28.15", cp=True), node("w-1", "v1.28.15"),
                                 node("w-2", "v1.28.15")]},
        "cluster_configuration": "apiVersion: kubeadm.k8s.io/v1beta3\nkind: "
                                 "ClusterConfiguration\nkubernetesVersion: v1.28.15\n",
        "version": {"serverVersion": {"gitVersion": "v1.28.15"}},
        "journal": None,
        "repository": {
            "28": ["Package: cri-tools", "Version: 1.28.0-1.1", "Package: kubeadm",
                   "Version: 1.28.14-1.1", "Package: kubeadm", "Version: 1.28.15-1.1"],
            "29": ["Package: kubeadm", "Version: 1.29.9-1.1", "Package: kubelet",
                   "Version: 1.29.99-1.1", "Package: kubeadm", "Version: 1.29.10-1.1"],
            "30": ["Package: kubeadm", "Version: 1.30.6-1.1"],
            "31": ["Package: kubeadm", "Version: 1.31.2-1.1", "Package: kubeadm",
                   "Version: 1.31.3-1.1"],
        },
        "hosts": {
            "w-host-1": {"node_name": "w-1", "control_plane": False,
                         "packages": packages("1.28.15"), "holds": ["kubeadm"]},
            "cp-host": {"node_name": "cp-1", "control_plane": True,
                        "packages": packages("1.28.15"), "apiserver_manifest": MANIFEST},
            "w-host-2": {"node_name": "w-2", "control_plane": False,
                         "packages": packages("1.28.15")},
        },
    }
    data.update(over)
    return data


def test_upgrade_discovery_report_becomes_the_planner_state() -> None:
    d = discover.from_report(report())
    st = d.state
    assert st.api_server == (1, 28, 15)
    assert [(n.name, n.role) for n in st.nodes] == [
        ("cp-1", "control-plane"), ("w-1", "worker"), ("w-2", "worker")]
    assert st.first_control_plane.api_server == (1, 28, 15)
    assert st.nodes[1].packages.kubelet == (1, 28, 15) and st.nodes[1].api_server is None
    assert d.hosts == {"cp-1": "cp-host", "w-1": "w-host-1", "w-2": "w-host-2"}
    assert d.first_control_plane == "cp-host"
    # only kubeadm stanzas count, patches of the right minor only
    assert d.repository == {28: ((1, 28, 14), (1, 28, 15)), 29: ((1, 29, 9), (1, 29, 10)),
                            30: ((1, 30, 6),), 31: ((1, 31, 2), (1, 31, 3))}
    plan = plan_upgrade(st, "1.31", d.repository)
    assert [h.target for h in plan.hops] == ["1.29.10", "1.30.6", "1.31.3"]


def test_upgrade_discovery_ignores_removed_packages_and_reads_v1beta4_quoted_versions() -> None:
    assert discover.parse_packages(["kubeadm 1.30.6-1.1 rc ", "kubelet 1.30.6-1.1 hi "]) == \
        discover.Packages(None, (1, 30, 6), None)
    assert discover.cluster_version('kubernetesVersion: "v1.31.2"\n') == (1, 31, 2)
    assert discover.apiserver_image_version("image: reg.example/kube-apiserver:v1.30.6") == \
        (1, 30, 6)
    assert discover.apiserver_image_version("no image here") is None


def test_upgrade_discovery_refuses_hosts_and_nodes_that_do_not_match() -> None:
    rep = report()
    rep["hosts"]["w-host-2"]["node_name"] = "worker-two"
    rep["nodes_json"]["items"].append(node("stray", "v1.28.15"))
    with pytest.raises(StateError) as exc:
        discover.from_report(rep, "discovery")
    text = str(exc.value)
    assert "host w-host-2: node 'worker-two' is not a node of the cluster" in text
    assert "node(s) stray, w-2 are in the cluster but not in the inventory" in text


def test_upgrade_lock_is_looked_for_under_the_inventorys_label() -> None:
    """The roles lock nodes with kubeadm_upgrade_lock_label; the discovery report carries that
    value (roles/kubeadm_upgrade/tasks/discover.yml), and a lock under it is found and named;
    the default label is then an ordinary label."""
    custom = "example.com/upgrade-lock"
    rep = report(nodes_json={"items": [
        node("cp-1", "v1.28.15", True, {custom: "20261121T210000Z"}),
        node("w-1", "v1.28.15", False, {discover.LOCK_LABEL: "20250101T000000Z"}),
        node("w-2", "v1.28.15")]})
    rep["lock_label"] = custom
    d = discover.from_report(rep)
    assert d.lock_label == custom and d.locks == {"cp-1": "20261121T210000Z"}
    problem = discover.lock_problem(d)
    assert problem and f"cp-1 carries the label {custom}=20261121T210000Z" in problem
    assert f"kubectl label node cp-1 {custom}-" in problem
    del rep["lock_label"]  # a report without it (an older role): the default label
    assert discover.from_report(rep).locks == {"w-1": "20250101T000000Z"}


def test_the_discovery_report_carries_the_lock_label() -> None:
    import yaml

    tasks = yaml.safe_load((REPO / "roles/kubeadm_upgrade/tasks/discover.yml").read_text())
    [report_task] = [t for t in tasks if "ansible.builtin.set_stats" in t]
    assert "'lock_label': kubeadm_upgrade_lock_label" in report_task[
        "ansible.builtin.set_stats"]["data"]["provision"]


def test_upgrade_lock_of_another_upgrade_is_refused_own_lock_is_not() -> None:
    lock = {discover.LOCK_LABEL: "20261121T210000Z"}
    rep = report(nodes_json={"items": [node("cp-1", "v1.28.15", True, lock),
                                       node("w-1", "v1.28.15"), node("w-2", "v1.28.15")]})
    d = discover.from_report(rep)
    problem = discover.lock_problem(d)
    assert problem and "cp-1 carries the label provision.io/upgrading=20261121T210000Z" in problem
    assert f"kubectl label node cp-1 {discover.LOCK_LABEL}-" in problem
    # the same upgrade's half-done journal: resuming it is allowed
    plan = plan_upgrade(d.state, "1.31", d.repository)
    journal = new_journal(plan, started="2026-11-21T21:00:00Z")
    journal.record(steps.Step(1, steps.SNAPSHOT, "cp-1"), "done")
    rep["journal"] = json.dumps(journal_to_dict(journal))
    d = discover.from_report(rep)
    assert d.state.journal is not None and discover.lock_problem(d) is None
    # a finished journal is history (plan afresh) but its left-over lock is not a stranger's
    for s in journal.planned_steps():
        journal.record(s, "done")
    rep["journal"] = json.dumps(journal_to_dict(journal))
    d = discover.from_report(rep)
    assert d.state.journal is None and d.finished_lock == "20261121T210000Z"
    assert discover.lock_problem(d) is None


def test_upgrade_hop_vars_list_each_nodes_steps_and_what_is_done() -> None:
    d = discover.from_report(report())
    plan = plan_upgrade(d.state, "1.31", d.repository, batch=steps.Batch(count=2))
    journal = new_journal(plan, started="2026-11-21T21:00:00Z")
    hop = journal.hops[0]
    journal.record(steps.Step(1, steps.SNAPSHOT, "cp-1"), "done")
    journal.record(steps.Step(1, steps.KUBEADM_INSTALL, "cp-1"), "done")
    v = execute.hop_vars(journal, hop, d, d.state, last=False)
    assert v["kubeadm_upgrade_steps"] == {  # what is left, in the journal's order
        "cp-host": list(steps.FIRST_CONTROL_PLANE[1:]), "w-host-1": list(steps.WORKER),
        "w-host-2": list(steps.WORKER)}
    assert v["kubeadm_upgrade_cluster_steps"] == ["verify"]
    assert v["kubeadm_upgrade_done"] == ["snapshot|cp-1", "kubeadm-install|cp-1"]
    assert v["kubeadm_upgrade_first_cp"] == "cp-host"
    assert v["kubeadm_upgrade_cp_hosts"] == ["cp-host"]
    assert v["kubeadm_upgrade_worker_hosts"] == ["w-host-1", "w-host-2"]
    assert v["kubeadm_upgrade_serial"] == 2
    assert v["kubeadm_upgrade_lock_id"] == "20261121T210000Z"
    assert v["kubeadm_upgrade_hop"]["snapshot"] == "upgrade.to.1.29.10"
    assert "steps" not in v["kubeadm_upgrade_header"]
    assert v["kubeadm_upgrade_journal_tool_installed"] is False  # the first hop of a run
    assert execute.hop_vars(journal, hop, d, d.state, last=False, tool_installed=True)[
        "kubeadm_upgrade_journal_tool_installed"] is True
    # the cluster already at the hop's version proves the apply finished: never again
    st = d.state.__class__((1, 29, 10), d.state.nodes, None)
    v = execute.hop_vars(journal, hop, d, st, last=True)
    assert "upgrade-apply|cp-1" in v["kubeadm_upgrade_done"] and v["kubeadm_upgrade_last_hop"]
    assert "upgrade-apply" not in v["kubeadm_upgrade_steps"]["cp-host"]


def out(journal: object) -> str:
    """The journal tool's output for ``journal`` (what a record task prints)."""
    return json.dumps({"provision_upgrade_journal": 2, "changed": True,
                       "journal": journal_to_dict(journal)})


def tool(path: Path, *args: str) -> dict:
    proc = subprocess.run([sys.executable, str(TOOL), "--file", str(path), *args],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_upgrade_journal_tool_init_record_keep_and_set_aside(tmp_path: Path) -> None:
    """The node-side journal tool: 0600 file in a 0700 dir, one record per call (also under
    concurrent callers), the same upgrade's journal kept, another one renamed aside."""
    path = tmp_path / "lib" / "upgrade.json"
    d = discover.from_report(report())
    plan = plan_upgrade(d.state, "1.31", d.repository)
    journal = new_journal(plan, started="2026-11-21T21:00:00Z")
    head = execute.header(journal)
    assert tool(path, "init", json.dumps(head))["changed"] is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    def rec(i: int) -> dict:
        if i % 2:
            return tool(path, "record", "--hop", "1", "--step", "drain", "--node", f"n{i}",
                        "--status", "done")
        return tool(path, "record", "--hop", "1", "--node", f"n{i}", "--records",
                    '[["drain", "done"]]')

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(rec, range(16)))
    out = tool(path, "show")["journal"]
    assert sorted(s["node"] for s in out["steps"]) == sorted(f"n{i}" for i in range(16))
    assert all(s["at"].endswith("Z") for s in out["steps"])
    assert tool(path, "init", json.dumps(head))["changed"] is False  # same upgrade: kept
    assert len(tool(path, "show")["journal"]["steps"]) == 16
    other = {**head, "started": "2026-11-22T08:00:00Z"}
    assert tool(path, "init", json.dumps(other))["changed"] is True
    assert tool(path, "show")["journal"]["steps"] == []
    aside = path.with_name("upgrade.json.2026-11-21T210000Z")
    assert len(json.loads(aside.read_text())["steps"]) == 16  # never deleted
    assert not [p for p in os.listdir(path.parent) if p.startswith(".upgrade-journal-")]


def test_upgrade_journal_progress_follows_records_and_keeps_the_copy(tmp_path: Path) -> None:
    d = discover.from_report(report())
    plan = plan_upgrade(d.state, "1.31", d.repository)
    journal = new_journal(plan, started="2026-11-21T21:00:00Z")
    lines: list[str] = []
    copy = tmp_path / "copy" / "journal.json"
    prog = execute.JournalProgress(journal, [copy], lines.append)
    journal.record(steps.Step(1, steps.DRAIN, "w-1"), "started")
    event = {"task": "any name", "host": "w-host-1", "res": {"stdout": out(journal)}}
    prog.on_event("runner_on_ok", event)
    prog.on_event("runner_on_ok", event)  # the same records again: nothing new
    journal.record(steps.Step(1, steps.DRAIN, "w-1"), "failed", error="pods/x blocked")
    event["res"]["stdout"] = out(journal)
    prog.on_event("runner_on_ok", event)
    # other output, even with a journal in it, is not the journal tool's
    prog.on_event("runner_on_ok", {"task": "something else", "res": {"stdout": json.dumps(
        {"journal": journal_to_dict(journal)})}})
    assert lines == ["[hop 1 -> 1.29.10] Draining w-1",
                     "[hop 1 -> 1.29.10] FAILED: failed to drain w-1: pods/x blocked"]
    assert json.loads(copy.read_text()) == journal_to_dict(journal)
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600


def test_upgrade_a_notready_control_plane_stops_a_new_upgrade_before_any_change() -> None:
    """kubeadm's upgrade health check refuses NotReady control planes (health.go
    ControlPlaneNodesReady); the product names the node before the snapshot or any install.
    A resumed upgrade is not stopped (its own step may have made the node NotReady)."""
    cp = node("cp-1", "v1.28.15", cp=True)
    cp["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    workers = [node("w-1", "v1.28.15"), node("w-2", "v1.28.15")]
    workers[0]["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    d = discover.from_report(report(nodes_json={"items": [cp, *workers]}))
    assert d.not_ready == ("cp-1",)  # a NotReady worker is drained, not refused
    problem = discover.health_problem(d)
    assert problem and problem.startswith("control plane cp-1 is NotReady")
    assert "nothing was changed" in problem
    assert discover.health_problem(discover.from_report(report())) is None


def test_upgrade_journal_progress_names_the_step_of_the_hop(tmp_path: Path) -> None:
    """Given the hop, each journal line and the status line carry "step K/M" of the hop's
    journal steps (the plan's own order), and the status line the hop's place."""
    d = discover.from_report(report())
    plan = plan_upgrade(d.state, "1.31", d.repository)
    journal = new_journal(plan, started="2026-11-21T21:00:00Z")
    hop = journal.hops[0]
    order = hop.steps()
    drain = next(i for i, s in enumerate(order) if s.name == steps.DRAIN and s.node == "w-1")
    lines: list[str] = []
    prog = execute.JournalProgress(journal, [tmp_path / "j.json"], lines.append, hop=hop,
                                   hops=len(journal.hops), quiet=True)
    journal.record(order[drain], "started")
    prog.on_event("runner_on_ok", {"task": "Write the journal records", "host": "w-host-1",
                                   "res": {"stdout": out(journal)}})
    assert lines == [f"[hop 1 -> 1.29.10] Draining w-1 (step {drain + 1}/{len(order)})"]
    assert prog.step == "drain w-1"
    status = prog.status_text()
    assert f"step {drain + 1}/{len(order)} drain w-1 ·" in status
    assert ("hop 1/" in status) == (len(journal.hops) > 1)


def test_discovery_returns_its_report_under_the_key_the_controller_reads() -> None:
    """The discovery play's set_stats key is the one provision.upgrade.report reads (a
    mismatch reads as "no report": nothing would be planned)."""
    import yaml

    from provision.upgrade import report as upgrade_report

    tasks = yaml.safe_load((REPO / "roles/kubeadm_upgrade/tasks/discover.yml").read_text())
    stats = [t["ansible.builtin.set_stats"] for t in tasks if "ansible.builtin.set_stats" in t]
    assert len(stats) == 1 and stats[0]["per_host"] is False
    assert stats[0]["data"]["provision"].lstrip().startswith(
        "{{ {'" + upgrade_report.REPORT + "': {")
