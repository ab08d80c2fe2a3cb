"""Discovery: the report of ``playbooks/upgrade-discover.yml`` -> the planner's input.

Pure functions (the playbook does the reading on the hosts, read-only): ``from_report``
turns the report into a ``ClusterState``, the ``Repository`` and the facts the execution
needs (which inventory host is which node, the upgrade lock). Problems no plan can fix (a
host that is not a node of the cluster, a node missing from the inventory) raise StateError:
exit 2 before anything changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provision.cluster import ready_condition
from provision.upgrade.repository import Repository
from provision.upgrade.state import (
    ClusterState,
    Journal,
    Node,
    Packages,
    StateError,
    journal_from_dict,
)
from provision.versions import Release, format_release, parse_release

# The upgrade lock's node label when the report does not name one: the default of the role
# option kubeadm_upgrade_lock_label (roles/provision_defaults). The discovery report carries the
# inventory's value (``lock_label``): the label the roles set and remove is the one looked for.
LOCK_LABEL = "provision.io/upgrading"


def lock_label(report: Mapping[str, Any]) -> str:
    """The upgrade lock's label as the inventory sets it (the discovery report's
    ``lock_label``), else the role's default."""
    return str(report.get("lock_label") or LOCK_LABEL)
_IMAGE = re.compile(r"image:\s*\S*/kube-apiserver:(v?[0-9][^\s\"']*)")


@dataclass(frozen=True)
class Discovery:
    state: ClusterState
    repository: Repository
    hosts: dict[str, str]  # node name -> inventory host
    first_control_plane: str  # inventory host
    locks: dict[str, str] = field(default_factory=dict)  # node -> lock label value
    held: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node -> held packages
    finished_lock: str = ""  # lock id of a finished journal (its lock may be left over)
    not_ready: tuple[str, ...] = ()  # control-plane nodes whose Ready condition is not True

    lock_label: str = LOCK_LABEL  # the label the roles lock the nodes with

    def host(self, node: str) -> str:
        return self.hosts[node]


def lock_id(journal: Journal) -> str:
    """The lock label value of an upgrade: its journal's start time, label-safe."""
    return re.sub(r"[^0-9A-Za-z]", "", journal.started) or "unknown"


def parse_packages(lines: list[str]) -> Packages:
    """``dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}'`` lines -> Packages
    (only installed packages count: status ``ii`` or ``hi``)."""
    found: dict[str, Release | None] = {}
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("kubeadm", "kubelet", "kubectl") \
                and parts[2][1:2] == "i":
            found[parts[0]] = parse_release(parts[1])
    return Packages(found.get("kubeadm"), found.get("kubelet"), found.get("kubectl"))


def apiserver_image_version(manifest: str) -> Release | None:
    """The tag of the kube-apiserver image in its static pod manifest."""
    m = _IMAGE.search(manifest or "")
    return parse_release(m.group(1)) if m else None


def repository_from_packages(data: Mapping[str, list[str]]) -> Repository:
    """{"31": ["Package: kubeadm", "Version: 1.31.2-1.1", ...]} -> {31: ((1, 31, 2), ...)}:
    the kubeadm versions each minor repository's Packages index lists."""
    repo: Repository = {}
    for key, lines in data.items():
        minor = int(key)
        versions: set[Release] = set()
        package = ""
        for line in lines:
            name, _, value = line.partition(": ")
            if name == "Package":
                package = value.strip()
            elif name == "Version" and package == "kubeadm":
                rel = parse_release(value.strip())
                if rel and rel[:2] == (1, minor):
                    versions.add(rel)
        repo[minor] = tuple(sorted(versions))
    return repo


def cluster_version(cluster_configuration: str) -> Release | None:
    m = re.search(r"(?m)^kubernetesVersion:\s*['\"]?(v?[0-9.]+)", cluster_configuration or "")
    return parse_release(m.group(1)) if m else None


def from_report(report: Mapping[str, Any], source: str = "discovery") -> Discovery:
    """The planner's input from the discovery report; StateError naming host and node."""
    problems: list[str] = []
    api = cluster_version(report.get("cluster_configuration", ""))
    if api is None:
        problems.append(f"{source}: the kubeadm-config ConfigMap names no kubernetesVersion")
    cluster_nodes = {n["metadata"]["name"]: n for n in
                     (report.get("nodes_json") or {}).get("items", [])}
    hosts: dict[str, str] = {}
    nodes: list[Node] = []
    held: dict[str, tuple[str, ...]] = {}
    ordered = sorted(report.get("hosts", {}).items(),
                     key=lambda kv: not kv[1].get("control_plane"))
    for host, facts in ordered:
        name = str(facts.get("node_name") or host)
        obj = cluster_nodes.get(name)
        if obj is None:
            problems.append(f"{source}: host {host}: node {name!r} is not a node of the cluster "
                            f"(nodes: {', '.join(sorted(cluster_nodes)) or 'none'}); set "
                            "kubeadm_control_plane_node_name / kubeadm_worker_node_name if "
                            "the node name differs from the host name")
            continue
        kubelet = parse_release(obj.get("status", {}).get("nodeInfo", {})
                                .get("kubeletVersion", ""))
        if kubelet is None:
            problems.append(f"{source}: node {name}: no kubelet version reported")
            continue
        cp = bool(facts.get("control_plane"))
        nodes.append(Node(name, "control-plane" if cp else "worker", kubelet,
                          parse_packages(facts.get("packages") or []),
                          apiserver_image_version(facts.get("apiserver_manifest", ""))
                          if cp else None))
        hosts[name] = host
        held[name] = tuple(facts.get("holds") or ())
    missing = sorted(set(cluster_nodes) - set(hosts))
    if missing:
        problems.append(f"{source}: node(s) {', '.join(missing)} are in the cluster but not in "
                        "the inventory's control_plane/workers groups: an upgrade would leave "
                        "them behind")
    journal = None
    if report.get("journal"):
        try:
            journal = journal_from_dict(json.loads(report["journal"]),
                                        "the upgrade journal on the first control-plane node")
        except ValueError as exc:
            problems.append(f"{source}: the upgrade journal is not valid JSON: {exc}")
        except StateError as exc:
            problems += exc.problems
    if problems:
        raise StateError(problems)
    assert api is not None
    finished_lock = ""
    if journal is not None and journal.finished:
        finished_lock = lock_id(journal)
        journal = None  # a finished journal is history: plan afresh
    label = lock_label(report)
    locks = {name: str(obj["metadata"].get("labels", {})[label])
             for name, obj in cluster_nodes.items()
             if label in (obj["metadata"].get("labels") or {})}
    state = ClusterState(api, tuple(nodes), journal)
    first = hosts[state.first_control_plane.name] if state.control_planes else ""
    not_ready = tuple(sorted(
        n.name for n in nodes if n.role == "control-plane" and _not_ready(cluster_nodes[n.name])))
    return Discovery(state, repository_from_packages(report.get("repository") or {}), hosts,
                     first, locks, held, finished_lock, not_ready, label)


def _not_ready(obj: Mapping[str, Any]) -> bool:
    """A Ready condition whose status is not True (health.go getNotReadyNodes: a node without
    a Ready condition is not counted)."""
    cond = ready_condition(obj)
    return cond is not None and cond.get("status") != "True"


def health_problem(d: Discovery) -> str | None:
    """A new upgrade stops before any change when a control plane is NotReady: kubeadm's
    upgrade health check (cmd/kubeadm/app/phases/upgrade/health.go, ControlPlaneNodesReady)
    would refuse `upgrade plan` and `upgrade apply` anyway, after the snapshot and the
    kubeadm install. A resumed upgrade is not stopped here (a control plane may be NotReady
    because its own step failed; kubeadm names it then)."""
    if not d.not_ready or d.state.journal is not None:
        return None
    return (f"control plane {', '.join(d.not_ready)} is NotReady: kubeadm's upgrade health "
            "check (ControlPlaneNodesReady) would refuse the upgrade. Bring it back (`provision "
            "status` shows why), then run the same command again; nothing was changed")


def lock_problem(d: Discovery) -> str | None:
    """A lock held by another upgrade (not the half-done one this run resumes, nor the
    left-over lock of a finished one)."""
    mine = lock_id(d.state.journal) if d.state.journal else None
    for node, value in sorted(d.locks.items()):
        if value not in (mine, d.finished_lock):
            return (f"node {node} carries the label {d.lock_label}={value}: another upgrade "
                    "is running or was abandoned. If none runs, remove the lock with "
                    f"`kubectl label node {node} {d.lock_label}-` and run again")
    return None


def describe(d: Discovery) -> list[str]:
    """One line per node: what discovery found."""
    out = [f"API server (kubeadm-config): {format_release(d.state.api_server)}"]
    for n in d.state.nodes:
        pk = n.packages
        pkgs = ", ".join(f"{k} {format_release(v)}" for k, v in
                         (("kubeadm", pk.kubeadm), ("kubelet", pk.kubelet),
                          ("kubectl", pk.kubectl)) if v)
        api = f", kube-apiserver {format_release(n.api_server)}" if n.api_server else ""
        out.append(f"  {n.name} ({n.role}, host {d.hosts[n.name]}): kubelet "
                   f"{format_release(n.kubelet)}{api}; packages: {pkgs or 'none'}")
    return out
