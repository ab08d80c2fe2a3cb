"""The upgrade plan: pure functions from the discovered state, the target and the repository
data to a chain of hops, one minor version each, or a refusal naming every reason.

* Each minor hop goes to the newest patch of its minor the repository offers; the last hop
  goes to the patch given with ``--to 1.N.P``. A same-minor newer patch is one "patch" hop.
* Nodes behind the control plane (a worker a minor behind, a control-plane node whose
  ``kubeadm upgrade node`` never ran) are first brought level by one "level" hop that only
  touches those nodes, so every minor hop starts from a level cluster; or the plan refuses
  and says why (``level=False``, or no package to level them with).
* Every hop is checked against the version skew policy (``skew.py``) by replaying the versions
  hop by hop; a half-done upgrade (a journal) is resumed, never re-planned.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.etcd.naming import validate_tag
from provision.upgrade import skew
from provision.upgrade.repository import PlanError, Repository, newest_patch, resolve_target
from provision.upgrade.state import ClusterState, Hop, Journal, Node
from provision.upgrade.steps import UPGRADE_APPLY, Batch, Step, worker_batches
from provision.versions import Release, format_release, parse_version

ONE_AT_A_TIME = Batch()

__all__ = ["Plan", "PlanError", "plan_upgrade", "new_journal", "check_state", "validate_chain"]


@dataclass(frozen=True)
class Plan:
    current: Release  # the API server version now
    target: Release
    hops: tuple[Hop, ...]
    notes: tuple[str, ...] = ()  # what the plan decided and why (levelling, warnings)
    batch: Batch = ONE_AT_A_TIME
    resume: Step | None = None  # resuming a journal: the first unfinished step
    done: frozenset[Step] = frozenset()  # resuming: steps the journal (or cluster) shows done

    @property
    def steps_done(self) -> int:
        return len(self.done)

    @property
    def nothing_to_do(self) -> bool:
        return not self.hops


def _r(v: Release) -> str:
    return format_release(v)


def snapshot_tag(to: Release) -> str:
    """The etcd snapshot tag of the hop to ``to`` ("upgrade.to.1.29.10")."""
    return validate_tag(f"upgrade.to.{_r(to)}")


def node_version(node: Node) -> Release:
    """How far a node has come: its kubelet, or its kube-apiserver if that lags."""
    return min(node.kubelet, node.api_server or node.kubelet)


# --------------------------------------------------------------------------------------------
# The state: what a plan can start from
# --------------------------------------------------------------------------------------------


def check_state(state: ClusterState) -> tuple[list[str], list[str]]:
    """(problems, notes): disagreements no hop can fix refuse; the rest are noted."""
    problems: list[str] = []
    notes: list[str] = []
    api = state.api_server
    if p := skew.apiserver_problem(state.apiservers()):
        problems.append(p)
    # Nodes are compared with the cluster version (kubeadm-config, the newest instance), not
    # the oldest HA instance: kubeadm's documented order upgrades the first control-plane
    # node's kubelet before `kubeadm upgrade node` on the others, and a level hop (or the
    # resumed hop) brings the lagging instances up.
    apis = [api]
    for node in state.control_planes:
        if node.api_server and node.api_server > api:
            problems.append(f"{node.name}: kube-apiserver {_r(node.api_server)} is newer than "
                            f"the cluster version {_r(api)} (kubeadm-config): the cluster "
                            "disagrees with itself; a resume cannot fix it")
    for node in state.nodes:
        if p := skew.kubelet_problem(node.kubelet, apis, node.name):
            problems.append(p)
        pk = node.packages
        if pk.kubelet and pk.kubelet[:2] > api[:2]:
            problems.append(f"{node.name}: kubelet package {_r(pk.kubelet)} is newer than "
                            f"kube-apiserver {_r(api)}; a restart would break the version "
                            "skew policy")
        elif pk.kubelet and pk.kubelet != node.kubelet:
            pending = " (restart pending)" if pk.kubelet > node.kubelet else ""
            notes.append(f"{node.name}: kubelet package {_r(pk.kubelet)} is installed but "
                         f"kubelet {_r(node.kubelet)} runs{pending}")
        if pk.kubeadm and pk.kubeadm[1] > api[1] + 1:
            problems.append(f"{node.name}: kubeadm package {_r(pk.kubeadm)} is more than one "
                            f"minor ahead of the cluster {_r(api)}")
        if pk.kubectl and (p := skew.kubectl_problem(pk.kubectl, apis, node.name)):
            notes.append(f"warning: {p}")
    return problems, notes


# --------------------------------------------------------------------------------------------
# Hops
# --------------------------------------------------------------------------------------------


def plan_level(state: ClusterState, repo: Repository, batch: Batch, *, first_index: int,
               include_patch: bool, level: bool) -> tuple[list[Hop], list[str], list[str]]:
    """One level hop bringing every lagging node to the API server's exact version.

    kubeadm there must be the cluster's version (kubeadm supports a control plane of its own
    minor or one older, never newer), and the skew policy lets a kubelet go straight to the
    API server's minor after a drain ("Optionally upgrade kubelet instances to N (or they can
    be left at N-1, N-2, or N-3)"; "Before performing a minor version kubelet upgrade, drain
    pods from that node"), so a node two or three minors behind is levelled in one hop.
    """
    api = state.api_server
    behind = [n for n in state.nodes
              if node_version(n)[1] < api[1] or (include_patch and node_version(n) < api)]
    if not behind:
        return [], [], []
    if not level:
        return [], [], [f"{n.name} is at {_r(node_version(n))}, behind the API server "
                        f"{_r(api)}; levelling is off, so the plan refuses: bring it level "
                        "first" for n in behind]
    names = ", ".join(n.name for n in behind)
    if api not in repo.get(api[1], ()):
        return [], [], [f"cannot bring {names} level: the package repository offers no "
                        f"{_r(api)} (the API server's version), so the plan refuses"]
    hop = Hop(index=first_index, kind="level",
              from_version=min(node_version(n) for n in behind), to_version=api,
              control_planes=tuple(n.name for n in behind if n.role == "control-plane"),
              batches=tuple(tuple(b) for b in worker_batches(
                  [n.name for n in behind if n.role == "worker"], batch)),
              snapshot="", verify_node=state.first_control_plane.name)
    notes = [f"{n.name} is at {_r(node_version(n))}, behind the API server {_r(api)}: level "
             f"hop {hop.index} brings it to {_r(api)} first (drained, then upgraded)"
             for n in behind]
    return [hop], notes, []


def plan_hops(state: ClusterState, target: Release, repo: Repository, batch: Batch, *,
              first_index: int) -> tuple[list[Hop], list[str]]:
    """Minor hops (or one patch hop) from the API server version to the target."""
    api = state.api_server
    cps = tuple(n.name for n in state.control_planes)
    batches = tuple(tuple(b) for b in worker_batches([n.name for n in state.workers], batch))
    hops: list[Hop] = []
    frm = api
    minors = range(api[1] + 1, target[1] + 1) if target[1] > api[1] else [target[1]]
    for minor in minors:
        to = target if minor == target[1] else newest_patch(repo, minor)
        if to is None:
            return [], [f"the package repository offers no 1.{minor} release, so "
                        f"{_r(api)} -> {_r(target)} cannot go one minor at a time"]
        if to <= frm:
            continue
        hops.append(Hop(index=first_index + len(hops), kind="minor" if to[1] > frm[1] else
                        "patch", from_version=frm, to_version=to, control_planes=cps,
                        batches=batches, snapshot=snapshot_tag(to),
                        verify_node=state.first_control_plane.name))
        frm = to
    return hops, []


def validate_chain(state: ClusterState, hops: list[Hop] | tuple[Hop, ...]) -> list[str]:
    """Replay the versions hop by hop; every skew-policy violation a hop would cause."""
    problems: list[str] = []
    cluster = state.api_server
    apis = {n.name: n.api_server or cluster for n in state.control_planes}
    kubelets = {n.name: n.kubelet for n in state.nodes}
    first = state.first_control_plane
    kubectl = first.packages.kubectl
    for hop in hops:
        where = f"hop {hop.index} ({_r(hop.from_version)} -> {_r(hop.to_version)})"
        if hop.kind == "level":
            if hop.to_version != cluster:
                problems.append(f"{where}: a level hop goes to the cluster's version "
                                f"{_r(cluster)} (kubeadm upgrade node needs kubeadm at the "
                                "cluster's version)")
            # `kubeadm upgrade node` brings a lagging control-plane node's static pods to the
            # cluster version before its kubelet moves
            apis.update({name: cluster for name in hop.control_planes})
            for name in hop.nodes:
                if hop.to_version < kubelets[name]:
                    problems.append(f"{where}: would downgrade kubelet {_r(kubelets[name])} "
                                    f"on {name}")
                if p := skew.kubelet_problem(hop.to_version, list(apis.values()), name):
                    problems.append(f"{where}: {p}")
                kubelets[name] = hop.to_version
            if first.name in hop.nodes:
                kubectl = hop.to_version
            continue
        if p := skew.minor_step_problem(cluster, hop.to_version):
            problems.append(f"{where}: {p}")
        missing = sorted(set(kubelets) - set(hop.nodes))
        if missing:
            problems.append(f"{where}: leaves {', '.join(missing)} behind")
        for name, v in kubelets.items():
            if v[1] < cluster[1]:
                problems.append(f"{where}: {name} runs kubelet {_r(v)}, behind the control "
                                f"plane {_r(cluster)}: a minor hop starts from a level "
                                "cluster (a level hop first)")
        after = [hop.to_version] + [v for n, v in apis.items() if n != first.name]
        for p in [skew.apiserver_problem(after)] + [
                skew.kubelet_problem(v, after, n) for n, v in kubelets.items()]:
            if p:
                problems.append(f"{where}: {p}")
        if kubectl and (p := skew.kubectl_problem(kubectl, after, first.name)):
            problems.append(f"{where}: the runbook's kubectl: {p}")
        cluster = hop.to_version
        apis = dict.fromkeys(apis, cluster)
        kubelets = dict.fromkeys(kubelets, cluster)
        kubectl = cluster
    return problems


# --------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------


def plan_upgrade(state: ClusterState, target: str, repo: Repository, *,
                 batch: Batch = ONE_AT_A_TIME, level: bool = True) -> Plan:
    """The plan from ``state`` to ``--to target``; PlanError lists every reason to refuse."""
    if state.journal is not None and not state.journal.finished:
        return resume_plan(state, state.journal, target)
    refuse_downgrade(target, state.api_server)
    goal = resolve_target(target, repo)
    refuse_downgrade(_r(goal), state.api_server)
    problems, notes = check_state(state)
    if problems:
        raise PlanError(problems)
    main, problems = plan_hops(state, goal, repo, batch, first_index=0)
    levels, level_notes, level_problems = plan_level(
        state, repo, batch, first_index=1, include_patch=not main, level=level)
    problems += level_problems
    if problems:
        raise PlanError(problems)
    hops = levels + [_renumber(h, len(levels) + 1 + i) for i, h in enumerate(main)]
    if problems := validate_chain(state, hops):
        raise PlanError(problems)
    return Plan(state.api_server, goal, tuple(hops), tuple(level_notes + notes), batch)


def new_journal(plan: Plan, started: str = "") -> Journal:
    """The journal an execution starts for a fresh plan (a resumed plan keeps its own)."""
    return Journal(plan.target, list(plan.hops), started=started)


def refuse_downgrade(target: str, current: Release) -> None:
    """``--to`` below the cluster's version (a lower minor, or a lower exact patch)."""
    asked = parse_version(target)
    if asked is None:
        return
    if asked[1] < current[1] or (asked[2] is not None and (1, asked[1], asked[2]) < current):
        raise PlanError([f"--to {target} is older than the cluster's {_r(current)}: "
                         "downgrades are not supported"])


def _renumber(hop: Hop, index: int) -> Hop:
    return Hop(index, hop.kind, hop.from_version, hop.to_version, hop.control_planes,
               hop.batches, hop.snapshot, hop.verify_node)


def resume_plan(state: ClusterState, journal: Journal, target: str) -> Plan:
    """Continue a half-done upgrade: the journal's own hops, from the first unfinished step."""
    jt = _r(journal.target)
    asked = parse_version(target)
    if asked is None:
        raise PlanError([f"--to {target!r}: expected 1.N or 1.N.P (e.g. 1.31 or 1.31.2)"])
    if asked[1] != journal.target[1] or asked[2] not in (None, journal.target[2]):
        raise PlanError([f"an upgrade to {jt} is half done (see the journal); run "
                         f"`provision upgrade --to {jt}` to finish it before asking for "
                         f"{target}"])
    planned = journal.planned_steps()
    remaining = journal.remaining(state)
    nxt = remaining[0] if remaining else None
    problems, notes = check_state(state)
    problems += check_journal(state, journal, nxt)
    if problems:
        raise PlanError(problems)
    done = frozenset(planned) - frozenset(remaining)
    notes.insert(0, f"resuming the upgrade to {jt}: {len(done)} of {len(planned)} steps done")
    if cordoned := journal.possibly_cordoned():
        notes.insert(1, f"drained by the interrupted run and not yet uncordoned: "
                        f"{', '.join(cordoned)} (the resume continues with their remaining "
                        "steps, uncordon last)")
    return Plan(state.api_server, journal.target, tuple(journal.hops), tuple(notes),
                resume=nxt, done=done)


def check_journal(state: ClusterState, journal: Journal, nxt: Step | None) -> list[str]:
    """Does the cluster match the journal closely enough for a resume to fix it? ``nxt`` is
    the first unfinished step."""
    problems: list[str] = []
    api = state.api_server
    names = {n.name for n in state.nodes}
    planned = {n for h in journal.hops if h.kind != "level" for n in h.nodes}
    if planned and planned != names:
        extra, gone = sorted(names - planned), sorted(planned - names)
        problems.append("the cluster's nodes changed since the upgrade started ("
                        + "; ".join(s for s in (extra and f"new: {', '.join(extra)}",
                                                gone and f"gone: {', '.join(gone)}") if s)
                        + "): a resume cannot fix that; finish or abandon the journal first")
    latest = journal.latest()
    for hop in journal.hops:
        if hop.kind == "level":
            continue
        apply = Step(hop.index, UPGRADE_APPLY, hop.verify_node)
        if latest.get(apply) == "done" and api < hop.to_version:
            problems.append(f"the journal says `kubeadm upgrade apply v{hop.target}` finished "
                            f"(hop {hop.index}) but the API server reports {_r(api)}: the "
                            "journal does not match the cluster")
        if nxt is not None and hop.index < nxt.hop and api < hop.to_version:
            problems.append(f"hop {hop.index} to {hop.target} is done in the journal but the "
                            f"API server reports {_r(api)}")
        if nxt is not None and hop.index == nxt.hop and not (
                hop.from_version <= api <= hop.to_version):
            problems.append(f"the API server reports {_r(api)}, outside the unfinished hop "
                            f"{hop.index} ({_r(hop.from_version)} -> {hop.target}): the "
                            "journal does not match the cluster")
    return problems
