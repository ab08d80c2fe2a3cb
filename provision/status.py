"""`provision status` (pure): the discovery report -> a status model -> a table or JSON.

kubeadm mode reads the report of ``playbooks/upgrade-discover.yml`` (the same read-only
discovery `provision upgrade` uses, without the repository lookup) and reuses its parsers
(``provision/upgrade/discover.py``) and the skew rules (``provision/upgrade/skew.py``). Unlike
the upgrade, status never refuses: hosts that are not nodes, nodes missing from the inventory,
an unreadable journal are reported as problems.

Problems (exit 1): a node not Ready, a node cordoned, a version skew violation, an inventory
host that is not a node, a node missing from the inventory, an unfinished upgrade, a lock
label no unfinished upgrade owns, no kubernetesVersion in kubeadm-config. Warnings (exit 0):
nodes at mixed kubelet versions, a kubelet package newer or older than the running kubelet,
packages not held, a kube-apiserver that differs from kubeadm-config, a left-over lock.
minikube mode: the profile is a problem when it is missing or not running.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provision.cluster import ready_condition
from provision.upgrade import skew
from provision.upgrade.discover import (
    LOCK_LABEL,
    apiserver_image_version,
    cluster_version,
    lock_id,
    lock_label,
    parse_packages,
)
from provision.upgrade.state import Journal, Packages, StateError, journal_from_dict
from provision.versions import Release, format_release, parse_release

PACKAGES = ("kubeadm", "kubelet", "kubectl")
CP_LABEL = "node-role.kubernetes.io/control-plane"


@dataclass(frozen=True)
class NodeStatus:
    name: str
    host: str  # inventory host ("" when the node is not in the inventory)
    role: str  # "control-plane" | "worker"
    ready: str  # "Ready" | "NotReady" | "Unknown" (the Ready condition: True/False/Unknown)
    reason: str  # the Ready condition's message when not Ready
    schedulable: bool  # False: cordoned (spec.unschedulable)
    kubelet: Release | None  # status.nodeInfo.kubeletVersion
    packages: Packages | None = None  # None: unknown (host not in the inventory/unreachable)
    held: tuple[str, ...] = ()
    api_server: Release | None = None  # kube-apiserver static pod image tag (control planes)
    lock: str = ""  # the upgrade lock label's value

    @property
    def status(self) -> str:
        """As `kubectl get nodes` shows it: 'Ready', 'NotReady,SchedulingDisabled' ..."""
        word = "Ready" if self.ready == "Ready" else "NotReady"
        return word + ("" if self.schedulable else ",SchedulingDisabled")


@dataclass(frozen=True)
class Upgrade:
    """The upgrade journal on the first control-plane node."""

    target: Release
    started: str
    finished: bool
    next_step: tuple[int, str, str] | None  # (hop, step, node) where a re-run continues
    hops: int
    cordoned: tuple[str, ...]  # nodes its drains may have left cordoned


@dataclass(frozen=True)
class ClusterStatus:
    nodes: tuple[NodeStatus, ...]
    cluster_version: Release | None  # kubeadm-config kubernetesVersion
    api_server: Release | None  # what `kubectl version` reports for the server
    first_control_plane: str
    hosts_not_nodes: tuple[tuple[str, str], ...] = ()  # (inventory host, expected node name)
    nodes_not_in_inventory: tuple[str, ...] = ()
    unreachable: tuple[str, ...] = ()  # inventory hosts that sent no facts (unreachable/failed)
    upgrade: Upgrade | None = None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    lock_label: str = LOCK_LABEL  # the upgrade lock's node label (kubeadm_upgrade_lock_label)

    @property
    def healthy(self) -> bool:
        return not self.problems


def _ready(obj: Mapping[str, Any]) -> tuple[str, str]:
    cond = ready_condition(obj)
    if cond is None:
        return "Unknown", "no Ready condition reported"
    word = {"True": "Ready", "False": "NotReady"}.get(cond.get("status"), "Unknown")
    return word, "" if word == "Ready" else str(cond.get("message") or "")


def _upgrade(raw: str | None, problems: list[str]) -> Journal | None:
    if not raw:
        return None
    try:
        return journal_from_dict(json.loads(raw), "the upgrade journal on the first "
                                 "control-plane node")
    except ValueError as exc:
        problems.append(f"the upgrade journal on the first control-plane node is not valid "
                        f"JSON: {exc}")
    except StateError as exc:
        problems.extend(exc.problems)
    return None


def from_report(report: Mapping[str, Any],
                expected: Mapping[str, tuple[str, str]] | None = None) -> ClusterStatus:
    """The status from the discovery report. ``expected``: every inventory host of
    control_plane/workers -> (role, node name it should have); hosts of it missing from the
    report sent no facts (unreachable)."""
    problems: list[str] = []
    warnings: list[str] = []
    label = lock_label(report)
    api = cluster_version(report.get("cluster_configuration", ""))
    if api is None:
        problems.append("the kubeadm-config ConfigMap names no kubernetesVersion")
    live = parse_release(((report.get("version") or {}).get("serverVersion") or {})
                         .get("gitVersion"))
    cluster = {n["metadata"]["name"]: n for n in
               (report.get("nodes_json") or {}).get("items", [])}
    facts = dict(report.get("hosts") or {})
    expected = dict(expected or {h: ("control-plane" if f.get("control_plane") else "worker",
                                     str(f.get("node_name") or h)) for h, f in facts.items()})
    unreachable = tuple(sorted(h for h in expected if h not in facts))
    by_node: dict[str, str] = {}
    not_nodes: list[tuple[str, str]] = []
    for host, (_, guess) in sorted(expected.items()):
        name = str((facts.get(host) or {}).get("node_name") or guess)
        if name in cluster:
            by_node[name] = host
        elif host not in unreachable:
            not_nodes.append((host, name))
    nodes = []
    for name, obj in cluster.items():
        host = by_node.get(name, "")
        f = facts.get(host) or {}
        labels = obj.get("metadata", {}).get("labels") or {}
        role = expected[host][0] if host else (
            "control-plane" if CP_LABEL in labels else "worker")
        ready, reason = _ready(obj)
        nodes.append(NodeStatus(
            name, host, role, ready, reason, not obj.get("spec", {}).get("unschedulable"),
            parse_release(obj.get("status", {}).get("nodeInfo", {}).get("kubeletVersion")),
            parse_packages(f.get("packages") or []) if f else None,
            tuple(p for p in f.get("holds") or () if p in PACKAGES),
            apiserver_image_version(f.get("apiserver_manifest", "")) if f else None,
            str(labels.get(label, ""))))
    nodes.sort(key=lambda n: (n.role != "control-plane", n.name))
    journal = _upgrade(report.get("journal"), problems)
    upgrade = None
    if journal is not None:
        nxt = journal.first_unfinished()
        upgrade = Upgrade(journal.target, journal.started, nxt is None,
                          (nxt.hop, nxt.name, nxt.node) if nxt else None, len(journal.hops),
                          tuple(journal.possibly_cordoned()))
    missing = tuple(sorted(set(cluster) - set(by_node)))
    _judge(nodes, api, live, not_nodes, missing, journal, upgrade, problems, warnings, label)
    return ClusterStatus(tuple(nodes), api, live, str(report.get("first_control_plane", "")),
                         tuple(not_nodes), missing, unreachable, upgrade, tuple(problems),
                         tuple(warnings), label)


def _judge(nodes: Sequence[NodeStatus], api: Release | None, live: Release | None,
           not_nodes: Sequence[tuple[str, str]], missing: Sequence[str],
           journal: Journal | None, upgrade: Upgrade | None, problems: list[str],
           warnings: list[str], label: str = LOCK_LABEL) -> None:
    """Fill problems and warnings (see the module docstring)."""
    unfinished = upgrade is not None and not upgrade.finished
    for host, name in not_nodes:
        problems.append(f"host {host}: node {name!r} is not a node of the cluster (set "
                        "kubeadm_control_plane_node_name / kubeadm_worker_node_name if the "
                        "node name differs from the host name)")
    for name in missing:
        problems.append(f"node {name} is in the cluster but not in the inventory's "
                        "control_plane/workers groups (an upgrade would refuse)")
    for n in nodes:
        if n.ready != "Ready":
            problems.append(f"node {n.name} is {n.ready}" + (f": {n.reason}" if n.reason else ""))
        if not n.schedulable and upgrade and unfinished and n.name in upgrade.cordoned:
            problems.append(f"node {n.name} is cordoned (SchedulingDisabled), drained by the "
                            "unfinished upgrade: resuming the upgrade uncordons it")
        elif not n.schedulable:
            problems.append(f"node {n.name} is cordoned (SchedulingDisabled): "
                            f"`kubectl uncordon {n.name}` when its maintenance is over")
    apiservers = [n.api_server or api for n in nodes
                  if n.role == "control-plane" and (n.api_server or api)]
    if not apiservers and (api or live):
        apiservers = [api or live]  # type: ignore[list-item]
    if msg := skew.apiserver_problem(apiservers):
        problems.append(msg)
    for n in nodes:
        if apiservers and n.kubelet and (msg := skew.kubelet_problem(n.kubelet, apiservers,
                                                                     n.name)):
            problems.append(msg)
        pk = n.packages
        if apiservers and pk and pk.kubectl and (msg := skew.kubectl_problem(
                pk.kubectl, apiservers, n.host)):
            problems.append(msg)
        if pk and pk.kubelet and n.kubelet and pk.kubelet != n.kubelet:
            warnings.append(f"node {n.name}: the kubelet package is "
                            f"{format_release(pk.kubelet)} but the node reports "
                            f"{format_release(n.kubelet)} (kubelet not restarted?)")
        if pk:
            loose = [p for p in PACKAGES if getattr(pk, p) and p not in n.held]
            if loose:
                warnings.append(f"host {n.host}: {', '.join(loose)} not held (apt upgrades "
                                f"could move them: `apt-mark hold {' '.join(loose)}`)")
        if api and n.api_server and n.api_server != api:
            warnings.append(f"node {n.name}: kube-apiserver runs {format_release(n.api_server)}"
                            f", kubeadm-config says {format_release(api)}")
    kubelets = sorted({n.kubelet for n in nodes if n.kubelet})
    if len(kubelets) > 1:
        groups = "; ".join(
            f"{format_release(v)}: {', '.join(n.name for n in nodes if n.kubelet == v)}"
            for v in kubelets)
        warnings.append(f"nodes at mixed kubelet versions ({groups})")
    if api and live and api != live:
        warnings.append(f"the API server answers {format_release(live)}, kubeadm-config says "
                        f"{format_release(api)}")
    if upgrade and unfinished:
        where = (f"hop {upgrade.next_step[0]} of {upgrade.hops}, step {upgrade.next_step[1]} "
                 f"on {upgrade.next_step[2]}") if upgrade.next_step else ""
        problems.append(f"an upgrade to {format_release(upgrade.target)} (started "
                        f"{upgrade.started or '?'}) is unfinished, running now or interrupted: "
                        f"next {where}; `provision upgrade --to {format_release(upgrade.target)}`"
                        " resumes it")
    mine = lock_id(journal) if journal is not None else None
    for n in nodes:
        if not n.lock:
            continue
        if n.lock == mine and not unfinished:
            warnings.append(f"node {n.name} still carries the lock {label}={n.lock} of "
                            f"the finished upgrade: `kubectl label node {n.name} {label}-`")
        elif n.lock != mine:
            problems.append(f"node {n.name} carries the lock {label}={n.lock} of an "
                            "upgrade with no journal here (another upgrade running, or one "
                            "abandoned: if none runs, `kubectl label node "
                            f"{n.name} {label}-`)")


# -------------------------------------------------------------------------------- rendering
HEADERS = ("NODE", "HOST", "ROLE", "STATUS", "KUBELET", "KUBEADM-PKG", "KUBELET-PKG",
           "KUBECTL-PKG", "HELD", "APISERVER")


def _v(version: Release | None, unknown: bool = False) -> str:
    return "?" if unknown else format_release(version) if version else "-"


def _held(n: NodeStatus) -> str:
    if n.packages is None:
        return "?"
    installed = [p for p in PACKAGES if getattr(n.packages, p)]
    if not installed:
        return "-"
    held = [p for p in installed if p in n.held]
    return "yes" if held == installed else "no" if not held else ",".join(held)


def rows(st: ClusterStatus) -> list[tuple[str, ...]]:
    out = []
    for n in st.nodes:
        unknown = n.packages is None
        pk = n.packages or Packages()
        out.append((n.name, n.host or "(not in inventory)", n.role, n.status, _v(n.kubelet),
                    _v(pk.kubeadm, unknown), _v(pk.kubelet, unknown), _v(pk.kubectl, unknown),
                    _held(n), _v(n.api_server, unknown) if n.role == "control-plane" else ""))
    return out


def table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    rows_ = [tuple(headers), *body]
    widths = [max(len(r[i]) for r in rows_) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows_)


def text(st: ClusterStatus) -> str:
    lines = [f"Cluster: kubeadm-config kubernetesVersion {_v(st.cluster_version)}, "
             f"API server {_v(st.api_server)} (read on {st.first_control_plane or '?'})", "",
             table(HEADERS, rows(st))]
    extra = []
    for host, name in st.hosts_not_nodes:
        extra.append(f"Inventory host {host} is not a node (expected node {name!r})")
    for name in st.nodes_not_in_inventory:
        extra.append(f"Node {name} is not in the inventory")
    for host in st.unreachable:
        extra.append(f"Host {host}: no packages or static pods read (unreachable, or a read "
                     "failed: see the summary)")
    locks = [f"{n.name}={n.lock}" for n in st.nodes if n.lock]
    if locks:
        extra.append(f"Upgrade lock {st.lock_label}: {', '.join(locks)}")
    if st.upgrade:
        u = st.upgrade
        state = "finished" if u.finished else (
            f"UNFINISHED: next hop {u.next_step[0]}/{u.hops} step {u.next_step[1]} on "
            f"{u.next_step[2]}" if u.next_step else "UNFINISHED")
        extra.append(f"Upgrade journal: to {format_release(u.target)} started {u.started or '?'}"
                     f", {state}")
    lines += ["", *extra] if extra else []
    if st.warnings:
        lines += ["", *(f"WARN  {w}" for w in st.warnings)]
    if st.problems:
        lines += ["", *(f"FAIL  {p}" for p in st.problems)]
    lines += ["", "Healthy." if st.healthy and not st.unreachable else
              f"{len(st.problems)} problem(s), {len(st.warnings)} warning(s)"
              + (f", {len(st.unreachable)} host(s) unreachable" if st.unreachable else "")]
    return "\n".join(lines)


def _pk_json(n: NodeStatus) -> dict[str, Any] | None:
    if n.packages is None:
        return None
    return {p: {"version": _v(getattr(n.packages, p)) if getattr(n.packages, p) else None,
                "held": p in n.held} for p in PACKAGES}


def to_json(st: ClusterStatus) -> dict[str, Any]:
    u = st.upgrade
    return {
        "mode": "kubeadm",
        "kubernetes_version": _v(st.cluster_version) if st.cluster_version else None,
        "api_server": _v(st.api_server) if st.api_server else None,
        "first_control_plane": st.first_control_plane,
        "nodes": [{"name": n.name, "host": n.host or None, "role": n.role, "ready": n.ready,
                   "reason": n.reason, "schedulable": n.schedulable, "status": n.status,
                   "kubelet": _v(n.kubelet) if n.kubelet else None, "packages": _pk_json(n),
                   "api_server": _v(n.api_server) if n.api_server else None,
                   "lock": n.lock or None} for n in st.nodes],
        "hosts_not_nodes": [{"host": h, "node": n} for h, n in st.hosts_not_nodes],
        "nodes_not_in_inventory": list(st.nodes_not_in_inventory),
        "unreachable": list(st.unreachable),
        "upgrade": None if u is None else {
            "target": format_release(u.target), "started": u.started, "finished": u.finished,
            "hops": u.hops, "cordoned": list(u.cordoned),
            "next": None if u.next_step is None else dict(zip(
                ("hop", "step", "node"), u.next_step, strict=True))},
        "healthy": st.healthy,
        "problems": list(st.problems),
        "warnings": list(st.warnings),
    }


# -------------------------------------------------------------------------------- minikube
@dataclass(frozen=True)
class MinikubeStatus:
    host: str
    user: str
    profile: str  # "" when there is none
    state: str  # "Running", "Stopped", "no profile" ... (minikube status: Host)
    components: dict[str, str] = field(default_factory=dict)  # Host, Kubelet, APIServer ...
    kubernetes: Release | None = None
    minikube: str = ""  # `minikube version --short`
    driver: str = ""
    problems: tuple[str, ...] = ()


def minikube_from_report(data: Mapping[str, Any]) -> MinikubeStatus:
    """The minikube discovery report (playbooks/upgrade-minikube-discover.yml) -> status."""
    host, user = str(data.get("host", "")), str(data.get("user", ""))
    config = data.get("config") if isinstance(data.get("config"), Mapping) else None
    try:
        comps = json.loads(data.get("status") or "{}")
    except ValueError:
        comps = {}
    comps = {k: str(v) for k, v in comps.items() if k in ("Host", "Kubelet", "APIServer",
                                                           "Kubeconfig")} \
        if isinstance(comps, Mapping) else {}
    problems = []
    if config is None:
        state = "no profile"
        problems.append(f"host {host}: no minikube profile for {user}: run `provision "
                        "bootstrap`")
    else:
        state = "Running" if data.get("running") else comps.get("Host", "Stopped")
        bad = {k: v for k, v in comps.items() if k != "Kubeconfig" and v != "Running"}
        if not data.get("running") or bad:
            detail = ", ".join(f"{k} {v}" for k, v in bad.items()) or "not running"
            problems.append(f"host {host}: minikube profile of {user} is not running ({detail})"
                            f": `minikube start` as {user} or `provision bootstrap`")
    kube = parse_release((config or {}).get("KubernetesConfig", {}).get("KubernetesVersion"))
    return MinikubeStatus(host, user, str((config or {}).get("Name", "")), state, comps, kube,
                          str(data.get("minikube_version") or "").strip(),
                          str((config or {}).get("Driver", "")), tuple(problems))


def minikube_text(st: MinikubeStatus) -> str:
    body = [(st.profile or "-", st.host, st.user, st.state, _v(st.kubernetes),
             st.minikube or "?", st.driver or "-")]
    lines = [table(("PROFILE", "HOST", "USER", "STATUS", "KUBERNETES", "MINIKUBE", "DRIVER"),
                   body)]
    if st.components:
        lines.append("minikube status: " + ", ".join(f"{k} {v}" for k, v in
                                                     st.components.items()))
    lines += [f"FAIL  {p}" for p in st.problems]
    lines.append("Healthy." if not st.problems else f"{len(st.problems)} problem(s)")
    return "\n".join(lines)


def minikube_json(st: MinikubeStatus) -> dict[str, Any]:
    return {"mode": "minikube", "host": st.host, "user": st.user, "profile": st.profile or None,
            "status": st.state, "components": st.components,
            "kubernetes_version": _v(st.kubernetes) if st.kubernetes else None,
            "minikube_version": st.minikube or None, "driver": st.driver or None,
            "healthy": not st.problems, "problems": list(st.problems)}
