"""The upgrade plan (pure): hop chains, refusals, skew policy, levelling, the journal and
resume, and `provision upgrade --plan --state FILE`. No host, no cluster: these are the pure
functions the execution will use; nothing here is simulated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.cli import main
from provision.upgrade import render, skew, steps
from provision.upgrade.plan import Plan, PlanError, plan_upgrade, validate_chain
from provision.upgrade.repository import repository_from_data, resolve_target
from provision.upgrade.state import (
    ClusterState,
    Hop,
    Journal,
    Node,
    Packages,
    StateError,
    journal_to_dict,
    load_journal,
    save_journal,
    state_from_dict,
)
from provision.upgrade.steps import Batch, Step, parse_batch, worker_batches
from provision.versions import format_release, parse_release

# Real release numbers (a subset of what pkgs.k8s.io offers), minor -> patches.
REPO_DATA = {
    "25": ["1.25.15", "1.25.16"], "26": ["1.26.14", "1.26.15"], "27": ["1.27.15", "1.27.16"],
    "28": ["1.28.14", "1.28.15"], "29": ["1.29.9", "1.29.10"], "30": ["1.30.5", "1.30.6"],
    "31": ["1.31.1", "1.31.2", "1.31.3"], "32": ["1.32.0", "1.32.1"], "33": ["1.33.5", "1.33.6"],
}
REPO = repository_from_data(REPO_DATA)


def v(text: str) -> tuple[int, int, int]:
    rel = parse_release(text)
    assert rel is not None, text
    return rel


def node(spec: str, *, api: str | None = None, kubectl: str | None = None) -> Node:
    """'cp-1=1.28.15' is a control-plane node, anything else a worker; packages match."""
    name, version = spec.split("=")
    role = "control-plane" if name.startswith("cp") else "worker"
    pk = Packages(v(version), v(version), v(kubectl or version))
    return Node(name, role, v(version), pk, v(api) if api else None)


def cluster(api: str, *specs: str | Node, journal: Journal | None = None) -> ClusterState:
    nodes = tuple(s if isinstance(s, Node) else node(s) for s in specs)
    return ClusterState(v(api), nodes, journal)


def chain(plan: Plan) -> list[tuple[str, str, str]]:
    return [(h.kind, format_release(h.from_version), format_release(h.to_version))
            for h in plan.hops]


def refusal(state: ClusterState, target: str, **kw) -> str:
    with pytest.raises(PlanError) as exc:
        plan_upgrade(state, target, REPO, **kw)
    return str(exc.value)


# --------------------------------------------------------------------------------------------
# Hop chains
# --------------------------------------------------------------------------------------------

THREE = ("cp-1={0}", "worker-1={0}", "worker-2={0}")


@pytest.mark.parametrize("current, target, expected", [
    # 1.28 -> 1.31: three hops, each to the newest patch of its minor
    ("1.28.15", "1.31", [("minor", "1.28.15", "1.29.10"), ("minor", "1.29.10", "1.30.6"),
                         ("minor", "1.30.6", "1.31.3")]),
    # the explicit patch is the last hop's target; the hops before still take the newest
    ("1.28.15", "1.31.2", [("minor", "1.28.15", "1.29.10"), ("minor", "1.29.10", "1.30.6"),
                           ("minor", "1.30.6", "1.31.2")]),
    # an older patch of the current minor is no obstacle
    ("1.28.14", "1.29", [("minor", "1.28.14", "1.29.10")]),
    ("1.29.9", "1.29.9", []),
    # a newer patch of the same minor: one patch hop
    ("1.31.1", "1.31", [("patch", "1.31.1", "1.31.3")]),
    ("1.31.1", "1.32.0", [("minor", "1.31.1", "1.32.0")]),
])
def test_hop_chain(current, target, expected):
    state = cluster(current, *(s.format(current) for s in THREE))
    plan = plan_upgrade(state, target, REPO)
    assert chain(plan) == expected
    assert plan.nothing_to_do is (not expected)
    for hop in plan.hops:
        assert hop.nodes == ("cp-1", "worker-1", "worker-2")
        assert hop.snapshot == f"upgrade.to.{format_release(hop.to_version)}"
        assert hop.verify_node == "cp-1"


def test_1_28_to_1_31_is_three_hops_to_the_newest_patches():
    plan = plan_upgrade(cluster("1.28.15", *(s.format("1.28.15") for s in THREE)), "1.31", REPO)
    assert [format_release(h.to_version) for h in plan.hops] == ["1.29.10", "1.30.6", "1.31.3"]
    assert [h.index for h in plan.hops] == [1, 2, 3]
    assert plan.target == (1, 31, 3) and plan.current == (1, 28, 15)


@pytest.mark.parametrize("start", [25, 26, 27, 28, 29, 30, 31, 32])
def test_every_hop_is_exactly_one_minor(start):
    """Skipping a minor is impossible by construction, for every start and target."""
    cur = format_release(REPO[start][-1])
    for target in range(max(start, 28), 34):
        plan = plan_upgrade(cluster(cur, f"cp-1={cur}", f"w-1={cur}"), f"1.{target}", REPO)
        for hop in plan.hops:
            step = hop.to_version[1] - hop.from_version[1]
            assert step == (0 if hop.kind == "patch" else 1), (cur, target, hop)
        assert len([h for h in plan.hops if h.kind == "minor"]) == target - start


def test_a_hand_made_skipping_hop_is_refused_by_the_chain_check():
    state = cluster("1.29.10", "cp-1=1.29.10", "w-1=1.29.10")
    skip = Hop(1, "minor", v("1.29.10"), v("1.31.3"), ("cp-1",), (("w-1",),),
               "upgrade.to.1.31.3", "cp-1")
    problems = validate_chain(state, [skip])
    assert any("skips a minor version: kubeadm can upgrade only 1 minor version at a time" in p
               for p in problems)


def test_hand_made_hops_that_leave_a_node_behind_are_refused():
    state = cluster("1.29.10", "cp-1=1.29.10", "w-1=1.29.10", "w-2=1.28.15")
    hop = Hop(1, "minor", v("1.29.10"), v("1.30.6"), ("cp-1",), (("w-1",),),
              "upgrade.to.1.30.6", "cp-1")
    problems = validate_chain(state, [hop])
    assert "hop 1 (1.29.10 -> 1.30.6): leaves w-2 behind" in problems
    assert ("hop 1 (1.29.10 -> 1.30.6): w-2 runs kubelet 1.28.15, behind the control plane "
            "1.29.10: a minor hop starts from a level cluster (a level hop first)") in problems


def test_batches_split_workers_and_are_kept_in_the_hops():
    workers = [f"w-{i}={'1.30.6'}" for i in range(1, 6)]
    plan = plan_upgrade(cluster("1.30.6", "cp-1=1.30.6", *workers), "1.31", REPO,
                        batch=Batch(count=2))
    assert plan.hops[0].batches == (("w-1", "w-2"), ("w-3", "w-4"), ("w-5",))
    assert "workers 2 at a time" in render.text(plan)


# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("current, target, message", [
    ("1.31.2", "1.30", "--to 1.30 is older than the cluster's 1.31.2: downgrades are not "
                       "supported"),
    ("1.31.2", "1.31.1", "--to 1.31.1 is older than the cluster's 1.31.2: downgrades"),
    ("1.31.2", "1.28.15", "downgrades are not supported"),
    ("1.30.6", "1.31.0", "--to 1.31.0 is not a released version (1.31 releases in the package "
                         "repository: 1.31.1, 1.31.2, 1.31.3)"),
    ("1.30.6", "1.31.7", "--to 1.31.7 is newer than the package repository offers (1.31 "
                         "releases there: 1.31.1, 1.31.2, 1.31.3)"),
    ("1.30.6", "1.34", "--to 1.34 is newer than the package repository offers (newest release "
                       "there: 1.33.6)"),
    ("1.30.6", "1.31.x", "--to '1.31.x': expected 1.N or 1.N.P"),
])
def test_refusals(current, target, message):
    state = cluster(current, f"cp-1={current}", f"w-1={current}")
    assert message in refusal(state, target)


def test_a_minor_missing_from_the_repository_refuses_the_chain():
    repo = repository_from_data({k: val for k, val in REPO_DATA.items() if k != "30"})
    with pytest.raises(PlanError, match="offers no 1.30 release, so 1.29.10 -> 1.31.3 cannot "
                                        "go one minor at a time"):
        plan_upgrade(cluster("1.29.10", "cp-1=1.29.10"), "1.31", repo)


def test_target_outside_supported_minors():
    repo = repository_from_data({"29": ["1.29.10"], "38": ["1.38.0"]})
    with pytest.raises(PlanError, match="provision supports Kubernetes 1.28 to 1.37"):
        resolve_target("1.38", repo)


def test_kubelet_newer_than_the_api_server_is_refused():
    state = cluster("1.29.10", "cp-1=1.29.10", "w-1=1.30.6")
    msg = refusal(state, "1.31")
    assert ("kubelet 1.30.6 on w-1 is newer than kube-apiserver 1.29.10: no component may be "
            "newer than the API server") in msg
    assert skew.POLICY_URL in msg


def test_kubelet_newer_by_a_patch_is_allowed_as_kubeadm_allows_it():
    """The skew policy and kubeadm compare minor versions (kubernetes/kubernetes
    cmd/kubeadm/app/phases/upgrade/policy.go: `.Minor()`): a kubelet or kubelet package at
    1.29.11 under an API server at 1.29.10 is a state real tools accept; the planner does too."""
    assert skew.kubelet_problem(v("1.29.11"), [v("1.29.10")], "w-1") is None
    assert skew.kubelet_problem(v("1.30.0"), [v("1.29.10")], "w-1") is not None
    w = Node("w-1", "worker", v("1.29.11"), Packages(v("1.29.11"), v("1.29.11"), v("1.29.11")))
    plan = plan_upgrade(cluster("1.29.10", "cp-1=1.29.10", w), "1.30", REPO)
    assert [format_release(h.to_version) for h in plan.hops] == ["1.30.6"]


def test_kubelet_package_newer_than_the_api_server_is_refused():
    w = Node("w-1", "worker", v("1.29.10"), Packages(v("1.30.6"), v("1.30.6"), v("1.30.6")))
    assert "w-1: kubelet package 1.30.6 is newer than kube-apiserver 1.29.10" in refusal(
        cluster("1.29.10", "cp-1=1.29.10", w), "1.31")


def test_worker_three_minors_behind_on_1_27_is_refused():
    """Before 1.28 the policy allows two minors of kubelet lag, so 1.24 under 1.27 is out."""
    repo = repository_from_data(REPO_DATA | {"24": ["1.24.17"]})
    state = cluster("1.27.16", "cp-1=1.27.16", "w-1=1.27.16", "w-2=1.24.17")
    with pytest.raises(PlanError) as exc:
        plan_upgrade(state, "1.28", repo)
    assert ("kubelet 1.24.17 on w-2 is 3 minor versions older than kube-apiserver 1.27.16; "
            "at most 2 are allowed at 1.27") in str(exc.value)


def test_worker_three_minors_behind_on_1_28_is_levelled_in_one_drained_hop():
    """From 1.28 three minors of lag are allowed, and the policy lets a drained kubelet go
    straight to the API server's minor; kubeadm must be at the cluster's version anyway."""
    state = cluster("1.28.15", "cp-1=1.28.15", "w-1=1.28.15", "w-2=1.25.16")
    plan = plan_upgrade(state, "1.29", REPO)
    assert chain(plan) == [("level", "1.25.16", "1.28.15"), ("minor", "1.28.15", "1.29.10")]
    assert plan.hops[0].nodes == ("w-2",)
    assert [s.name for s in plan.hops[0].steps()][0] == steps.DRAIN


def test_ha_api_servers_two_minors_apart_are_refused():
    cp2 = node("cp-2=1.29.10", api="1.29.10")
    state = cluster("1.31.3", node("cp-1=1.31.3", api="1.31.3"), cp2, "w-1=1.29.10")
    assert "kube-apiserver instances at 1.29.10 and 1.31.3 are more than one minor version " \
           "apart" in refusal(state, "1.32")


def test_kubeadm_two_minors_ahead_is_refused():
    w = Node("w-1", "worker", v("1.29.10"), Packages(v("1.31.3"), v("1.29.10"), v("1.29.10")))
    assert "w-1: kubeadm package 1.31.3 is more than one minor ahead of the cluster 1.29.10" in \
        refusal(cluster("1.29.10", "cp-1=1.29.10", w), "1.31")


def test_every_problem_is_reported_at_once():
    state = cluster("1.29.10", "cp-1=1.29.10", "w-1=1.30.6", "w-2=1.31.3")
    with pytest.raises(PlanError) as exc:
        plan_upgrade(state, "1.31", REPO)
    assert len(exc.value.problems) >= 2
    assert exc.value.exit_code == 2


# --------------------------------------------------------------------------------------------
# A node behind: level it first, or refuse and say which
# --------------------------------------------------------------------------------------------


def test_worker_a_minor_behind_gets_a_level_hop_first():
    state = cluster("1.29.10", "cp-1=1.29.10", "worker-1=1.29.10", "worker-2=1.28.15")
    plan = plan_upgrade(state, "1.31", REPO)
    assert chain(plan) == [("level", "1.28.15", "1.29.10"), ("minor", "1.29.10", "1.30.6"),
                           ("minor", "1.30.6", "1.31.3")]
    level = plan.hops[0]
    assert level.nodes == ("worker-2",) and level.snapshot == ""
    # the level hop touches only that node: no upgrade-apply, no snapshot
    assert [(s.name, s.node) for s in level.steps()] == [
        (steps.DRAIN, "worker-2"), (steps.KUBEADM_INSTALL, "worker-2"),
        (steps.UPGRADE_NODE, "worker-2"), (steps.KUBELET_INSTALL, "worker-2"),
        (steps.KUBELET_RESTART, "worker-2"), (steps.UNCORDON, "worker-2"),
        (steps.VERIFY, "cp-1")]
    assert ("worker-2 is at 1.28.15, behind the API server 1.29.10: level hop 1 brings it to "
            "1.29.10 first (drained, then upgraded)") in plan.notes
    text = render.text(plan)
    assert "1    level  1.28.15  1.29.10  worker-2" in text
    assert "level hop 1 brings it to 1.29.10 first" in text


def test_worker_a_minor_behind_is_refused_when_levelling_is_off():
    state = cluster("1.29.10", "cp-1=1.29.10", "worker-1=1.29.10", "worker-2=1.28.15")
    assert ("worker-2 is at 1.28.15, behind the API server 1.29.10; levelling is off, so the "
            "plan refuses: bring it level first") in refusal(state, "1.31", level=False)


def test_levelling_refuses_when_the_repository_lacks_the_api_servers_patch():
    repo = repository_from_data(REPO_DATA | {"29": ["1.29.10"]})
    state = cluster("1.29.9", "cp-1=1.29.9", "worker-2=1.28.15")
    with pytest.raises(PlanError, match=r"cannot bring worker-2 level: the package repository "
                                        r"offers no 1.29.9 \(the API server's version\), so "
                                        "the plan refuses"):
        plan_upgrade(state, "1.30", repo)


def test_a_control_plane_whose_upgrade_node_never_ran_is_levelled_with_upgrade_node():
    cp2 = node("cp-2=1.29.10", api="1.29.10")
    state = cluster("1.30.6", node("cp-1=1.30.6", api="1.30.6"), cp2, "w-1=1.30.6")
    plan = plan_upgrade(state, "1.31", REPO)
    assert chain(plan) == [("level", "1.29.10", "1.30.6"), ("minor", "1.30.6", "1.31.3")]
    names = [s.name for s in plan.hops[0].steps() if s.node == "cp-2"]
    assert names == list(steps.OTHER_CONTROL_PLANE)


def test_at_target_with_a_worker_a_patch_behind_levels_only_that_worker():
    state = cluster("1.31.3", "cp-1=1.31.3", "w-1=1.31.1")
    plan = plan_upgrade(state, "1.31", REPO)
    assert chain(plan) == [("level", "1.31.1", "1.31.3")]


# --------------------------------------------------------------------------------------------
# The skew rules
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api, kubelet, allowed", [
    ("1.28.0", "1.25.0", True), ("1.28.0", "1.24.0", False), ("1.27.0", "1.25.0", True),
    ("1.27.0", "1.24.0", False), ("1.31.3", "1.28.15", True), ("1.31.3", "1.27.16", False),
    ("1.31.3", "1.31.3", True), ("1.31.3", "1.32.0", False), ("1.31.2", "1.31.3", True),
])
def test_kubelet_skew(api, kubelet, allowed):
    assert (skew.kubelet_problem(v(kubelet), [v(api)]) is None) is allowed


def test_kubelet_rule_matches_the_policy_pages_wording():
    """The page: up to three minors older, but "kubelet < 1.25 may only be up to two". That is
    the same as three from kube-apiserver 1.28 on, two before: check every pair."""
    for api in range(20, 38):
        for kubelet in range(api - 5, api + 1):
            page = api - kubelet <= (3 if kubelet >= 25 else 2)
            ours = skew.kubelet_problem((1, kubelet, 0), [(1, api, 0)]) is None
            assert page == ours, (api, kubelet)


def test_ha_skew_narrows_the_kubelet_range():
    """Policy example: API servers at N and N-1 -> a kubelet at N is not supported."""
    assert skew.kubelet_problem(v("1.35.0"), [v("1.35.0"), v("1.34.0")]) is not None
    assert skew.kubelet_problem(v("1.34.0"), [v("1.35.0"), v("1.34.0")]) is None


@pytest.mark.parametrize("kubectl, allowed", [
    ("1.30.0", True), ("1.31.0", True), ("1.32.0", True), ("1.29.0", False), ("1.33.0", False)])
def test_kubectl_within_one_minor(kubectl, allowed):
    assert (skew.kubectl_problem(v(kubectl), [v("1.31.3")]) is None) is allowed


def test_runbook_kubectl_too_old_refuses_the_hop():
    cp = node("cp-1=1.30.6", kubectl="1.29.10")
    msg = refusal(cluster("1.30.6", cp, "w-1=1.30.6"), "1.31")
    assert "hop 1 (1.30.6 -> 1.31.3): the runbook's kubectl: kubectl 1.29.10 on cp-1" in msg


# --------------------------------------------------------------------------------------------
# Steps and batches
# --------------------------------------------------------------------------------------------


def test_hop_steps_in_runbook_order():
    hop = Hop(1, "minor", v("1.30.6"), v("1.31.3"), ("cp-1", "cp-2"), (("w-1", "w-2"),),
              "upgrade.to.1.31.3", "cp-1")
    got = [(s.name, s.node) for s in hop.steps()]
    assert got[0] == (steps.SNAPSHOT, "cp-1") and got[-1] == (steps.VERIFY, "cp-1")
    assert [n for n, node_ in got if node_ == "cp-1"][1:7] == list(steps.FIRST_CONTROL_PLANE)
    assert [n for n, node_ in got if node_ == "cp-2"] == list(steps.OTHER_CONTROL_PLANE)
    assert [n for n, node_ in got if node_ == "w-1"] == list(steps.WORKER)
    # a batch runs each step on all its nodes before the next step (Ansible serial order)
    worker_part = got[13:-1]
    assert worker_part[:2] == [(steps.DRAIN, "w-1"), (steps.DRAIN, "w-2")]
    assert sum(1 for n, _ in got if n == steps.UPGRADE_APPLY) == 1


@pytest.mark.parametrize("text, workers, sizes", [
    ("1", 3, [1, 1, 1]), ("2", 5, [2, 2, 1]), ("10", 3, [3]), ("50%", 5, [2, 2, 1]),
    ("25%", 3, [1, 1, 1]), ("100%", 4, [4]),
])
def test_batches(text, workers, sizes):
    names = [f"w{i}" for i in range(workers)]
    assert [len(b) for b in worker_batches(names, parse_batch(text))] == sizes


@pytest.mark.parametrize("text", ["0", "-1", "0%", "101%", "x", "2.5", "%", ""])
def test_bad_batches(text):
    with pytest.raises(ValueError, match="--batch"):
        parse_batch(text)


# --------------------------------------------------------------------------------------------
# Journal and resume
# --------------------------------------------------------------------------------------------


def half_done_journal() -> tuple[Journal, ClusterState]:
    """1.28 -> 1.31 on cp-1 + worker-1 + worker-2: hop 1 done; hop 2 applied, cp-1 and
    worker-1 done, worker-2's drain failed."""
    start = cluster("1.28.15", *(s.format("1.28.15") for s in THREE))
    plan = plan_upgrade(start, "1.31", REPO)
    journal = Journal(plan.target, list(plan.hops), started="2026-11-21T21:00:00Z")
    for s in plan.hops[0].steps():
        journal.record(s, "started")
        journal.record(s, "done")
    for s in plan.hops[1].steps():
        if (s.name, s.node) == (steps.DRAIN, "worker-2"):
            journal.record(s, "started")
            journal.record(s, "failed", error="Cannot evict pod as it would violate the pod's "
                                              "disruption budget.")
            break
        journal.record(s, "done")
    now = cluster("1.30.6", "cp-1=1.30.6", "worker-1=1.30.6", "worker-2=1.29.10",
                  journal=journal)
    return journal, now


def test_resume_continues_at_the_failed_drain_and_never_repeats_upgrade_apply():
    journal, state = half_done_journal()
    assert journal.first_unfinished(state) == Step(2, steps.DRAIN, "worker-2")
    plan = plan_upgrade(state, "1.31", REPO)
    assert plan.resume == Step(2, steps.DRAIN, "worker-2")
    remaining = journal.remaining(state)
    assert remaining[0] == Step(2, steps.DRAIN, "worker-2")
    applies = [s for s in remaining if s.name == steps.UPGRADE_APPLY]
    assert applies == [Step(3, steps.UPGRADE_APPLY, "cp-1")]  # hop 3's, not 1's or 2's
    assert plan.steps_done == len(journal.planned_steps()) - len(remaining)
    text = render.text(plan)
    assert "Resuming upgrade plan: 1.28.15 -> 1.31.3 in 3 hops (the cluster is at 1.30.6)" in text
    rows = [line for line in text.splitlines() if line[:2] in ("1 ", "2 ", "3 ")]
    assert [r.split("  ")[-1].strip() for r in rows] == ["done", "in progress", "pending"]
    assert "Resume: next step is hop 2 drain on worker-2 (Draining worker-2)" in text
    assert f"{plan.steps_done} of {len(journal.planned_steps())} steps done" in text


def test_an_apply_the_journal_missed_is_not_repeated():
    """The controller died after `kubeadm upgrade apply` but before writing the journal: the
    API server's version proves the apply happened."""
    start = cluster("1.29.10", "cp-1=1.29.10", "w-1=1.29.10")
    plan = plan_upgrade(start, "1.30", REPO)
    journal = Journal(plan.target, list(plan.hops))
    apply = Step(1, steps.UPGRADE_APPLY, "cp-1")
    for s in plan.hops[0].steps():
        if s == apply:
            journal.record(s, "started")
            break
        journal.record(s, "done")
    assert journal.first_unfinished(cluster("1.29.10", "cp-1=1.29.10", "w-1=1.29.10")) == apply
    after = cluster("1.30.6", "cp-1=1.29.10", "w-1=1.29.10", journal=journal)
    assert journal.first_unfinished(after) == Step(1, steps.DRAIN, "cp-1")
    assert apply not in journal.remaining(after)


def test_resume_refuses_a_different_target():
    _, state = half_done_journal()
    assert ("an upgrade to 1.31.3 is half done (see the journal); run `provision upgrade --to "
            "1.31.3` to finish it before asking for 1.32") in refusal(state, "1.32")
    assert plan_upgrade(state, "1.31.3", REPO).resume is not None


def test_resume_refuses_a_journal_that_does_not_match_the_cluster():
    journal, _ = half_done_journal()
    rolled_back = cluster("1.29.10", "cp-1=1.29.10", "worker-1=1.29.10", "worker-2=1.29.10",
                          journal=journal)
    msg = refusal(rolled_back, "1.31")
    assert ("the journal says `kubeadm upgrade apply v1.30.6` finished (hop 2) but the API "
            "server reports 1.29.10") in msg


def test_resume_refuses_when_nodes_changed():
    journal, _ = half_done_journal()
    grown = cluster("1.30.6", "cp-1=1.30.6", "worker-1=1.30.6", "worker-2=1.29.10",
                    "worker-3=1.30.6", journal=journal)
    assert "the cluster's nodes changed since the upgrade started (new: worker-3)" in refusal(
        grown, "1.31")


def test_a_finished_journal_is_ignored_and_the_cluster_replanned():
    start = cluster("1.30.6", "cp-1=1.30.6")
    plan = plan_upgrade(start, "1.31", REPO)
    journal = Journal(plan.target, list(plan.hops))
    for s in journal.planned_steps():
        journal.record(s, "done")
    assert journal.finished
    plan = plan_upgrade(cluster("1.31.3", "cp-1=1.31.3", journal=journal), "1.31", REPO)
    assert plan.nothing_to_do and render.text(plan).startswith("Nothing to do")


def test_journal_round_trip(tmp_path: Path):
    journal, state = half_done_journal()
    path = tmp_path / "var" / "upgrade.json"
    save_journal(journal, path)
    assert [p.name for p in path.parent.iterdir()] == ["upgrade.json"]  # no temp file left
    loaded = load_journal(path)
    assert loaded is not None
    assert journal_to_dict(loaded) == journal_to_dict(journal)
    assert loaded.first_unfinished(state) == Step(2, steps.DRAIN, "worker-2")
    assert load_journal(tmp_path / "none.json") is None


def test_journal_record_refuses_an_unknown_status():
    journal, _ = half_done_journal()
    with pytest.raises(ValueError, match="status 'ok'"):
        journal.record(Step(1, steps.DRAIN, "cp-1"), "ok")


def test_a_broken_journal_names_file_and_key(tmp_path: Path):
    path = tmp_path / "upgrade.json"
    path.write_text(json.dumps({"format": 1, "target": "1.31", "hops": [
        {"index": 1, "kind": "sideways", "from": "1.30.6", "to": "1.31.3",
         "verify_node": "cp-1"}], "steps": [{"hop": 1, "step": "reboot", "status": "done"}]}))
    with pytest.raises(StateError) as exc:
        load_journal(path)
    problems = exc.value.problems
    assert f"{path}: target: '1.31' is not an exact Kubernetes version" in problems[0]
    assert any(f"{path}: hops[0].kind: 'sideways'" in p for p in problems)
    assert any(f"{path}: steps[0].step: 'reboot'" in p for p in problems)
    path.write_text("{not json")
    with pytest.raises(StateError, match="cannot read the upgrade journal"):
        load_journal(path)


def test_state_from_dict_lists_every_problem():
    with pytest.raises(StateError) as exc:
        state_from_dict({"api_server": "1.31", "nodes": [
            {"name": "w-1", "role": "worker", "kubelet": "v1.31.3", "api_server": "1.31.3"},
            {"name": "w-1", "role": "boss", "kubelet": "latest"}]}, "s.json")
    text = str(exc.value)
    for expected in ("s.json: api_server: '1.31' is not an exact Kubernetes version",
                     "s.json: nodes[0].api_server: only control-plane nodes run kube-apiserver",
                     "s.json: nodes[1].role: 'boss'", "s.json: nodes[1].kubelet: 'latest'"):
        assert expected in text


# --------------------------------------------------------------------------------------------
# CLI: provision upgrade --plan --state FILE
# --------------------------------------------------------------------------------------------


def state_doc(api: str, nodes: list[tuple[str, str, str]], **extra) -> dict:
    return {"api_server": api, "repository": REPO_DATA, **extra, "nodes": [
        {"name": n, "role": r, "kubelet": f"v{k}", "packages": {
            "kubeadm": f"{k}-1.1", "kubelet": f"{k}-1.1", "kubectl": f"{k}-1.1"}}
        for n, r, k in nodes]}


def write(tmp_path: Path, doc: dict | str, name: str = "state.json") -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


NODES_128 = [("cp-1", "control-plane", "1.28.15"), ("worker-1", "worker", "1.28.15"),
             ("worker-2", "worker", "1.28.15")]


def test_cli_plan_from_state_file(tmp_path, capsys):
    path = write(tmp_path, state_doc("1.28.15", NODES_128))
    code, out, err = run(["upgrade", "--to", "1.31", "--plan", "--state", path], capsys)
    assert code == 0, err
    assert "Upgrade plan: 1.28.15 -> 1.31.3 in 3 hops (workers 1 at a time)" in out
    assert "HOP  KIND   FROM     TO       NODES                     SNAPSHOT" in out
    assert "3    minor  1.30.6   1.31.3   cp-1, worker-1, worker-2  upgrade.to.1.31.3" in out


def test_cli_plan_json(tmp_path, capsys):
    path = write(tmp_path, state_doc("1.29.10", NODES_128[:2] + [("worker-2", "worker",
                                                                    "1.28.15")]))
    code, out, err = run(["--json", "upgrade", "--to", "1.30.6", "--plan", "--state", path,
                          "--batch", "50%"], capsys)
    assert code == 0, err
    obj = json.loads(out)
    assert obj["ok"] is True and obj["command"] == "upgrade"
    plan = obj["plan"]
    assert [(h["kind"], h["from"], h["to"]) for h in plan["hops"]] == [
        ("level", "1.28.15", "1.29.10"), ("minor", "1.29.10", "1.30.6")]
    assert plan["hops"][1]["batches"] == [["worker-1"], ["worker-2"]]
    assert plan["hops"][1]["steps"][0] == {"step": "snapshot", "node": "cp-1"}
    assert plan["batch"] == "50%" and "level hop 1 brings it" in plan["notes"][0]
    assert "Upgrade plan" in err  # human text goes to stderr in --json mode


def test_cli_resume_from_state_file(tmp_path, capsys):
    journal, _ = half_done_journal()
    doc = state_doc("1.30.6", [("cp-1", "control-plane", "1.30.6"),
                               ("worker-1", "worker", "1.30.6"),
                               ("worker-2", "worker", "1.29.10")],
                    journal=journal_to_dict(journal))
    code, out, err = run(["--json", "upgrade", "--to", "1.31", "--plan", "--state",
                          write(tmp_path, doc)], capsys)
    assert code == 0, err
    plan = json.loads(out)["plan"]
    assert plan["resume"] == {"hop": 2, "step": "drain", "node": "worker-2"}
    hop2 = plan["hops"][1]["steps"]
    assert {"step": "upgrade-apply", "node": "cp-1", "done": True} in hop2
    assert {"step": "drain", "node": "worker-2", "done": False} in hop2


@pytest.mark.parametrize("args, message", [
    (["--to", "1.31.x", "--plan"], "error: --to '1.31.x': expected 1.N or 1.N.P"),
    (["--to", "v1.31", "--plan"], "error: --to 'v1.31': expected 1.N or 1.N.P"),
    (["--to", "1.40", "--plan"], "error: --to 1.40: provision supports Kubernetes 1.28 to 1.37"),
    (["--to", "1.31", "--batch", "0"], "error: --batch '0': at least one worker at a time"),
    (["--to", "1.31", "--batch", "150%"], "a percentage must be between 1% and 100%"),
    (["--to", "1.31", "--batch", "two"], "error: --batch 'two': expected a number of workers"),
    (["--to", "1.31", "--state", "x.json"], "error: --state only plans: add --plan"),
])
def test_cli_usage_errors_exit_2(args, message, capsys):
    code, out, err = run(["upgrade", *args], capsys)
    assert code == 2
    assert message in err
    assert "Upgrade plan" not in out


def test_cli_live_upgrade_refuses_a_bad_inventory_before_contact(tmp_path, capsys):
    """Without --state the command discovers the live cluster: an inventory that cannot be
    used (missing, or no control_plane group) exits 2 naming the file, no host contacted."""
    code, out, err = run(["--json", "-i", str(tmp_path / "nope"), "upgrade", "--to", "1.31",
                          "--plan"], capsys)
    assert code == 2 and json.loads(out)["exit_code"] == 2
    assert str(tmp_path / "nope") in err
    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "hosts.yml").write_text("all:\n  children:\n    workers:\n      hosts:\n"
                                   "        w1:\n          ansible_host: 192.0.2.10\n")
    code, out, err = run(["-i", str(inv), "upgrade", "--to", "1.31", "--yes"], capsys)
    assert code == 2
    assert "group control_plane:" in err and "Discovering" not in out


@pytest.mark.parametrize("doc, message", [
    (None, "state.json: state file not found"),
    ("{oops", "state.json: not valid JSON: line 1 column 2"),
    ({"api_server": "1.30.6", "nodes": []}, "state.json: repository: missing"),
    ({"api_server": "1.30.6", "repository": {"30": ["1.29.1"]}, "nodes": []},
     "state.json: repository.30: '1.29.1' is not a 1.30 release"),
    ({"api_server": "1.30.6", "repository": REPO_DATA,
      "nodes": [{"name": "w", "role": "worker", "kubelet": "1.30.6"}]},
     "state.json: nodes: no control-plane node"),
    (state_doc("1.30.6", [("cp-1", "control-plane", "1.30.6"), ("worker-1", "worker",
                                                                "1.26.15")]),
     "kubelet 1.26.15 on worker-1 is 4 minor versions older than kube-apiserver 1.30.6; at "
     "most 3 are allowed at 1.30"),
    (state_doc("1.28.15", NODES_128[:1] + [("worker-1", "worker", "1.29.10")]),
     "kubelet 1.29.10 on worker-1 is newer than kube-apiserver 1.28.15"),
    (state_doc("1.31.3", [("cp-1", "control-plane", "1.31.3")]), "--to 1.30 is older than the "
                                                                 "cluster's 1.31.3: downgrades"),
])
def test_cli_bad_state_or_refused_plan_exits_2(tmp_path, capsys, doc, message):
    path = str(tmp_path / "state.json") if doc is None else write(tmp_path, doc)
    code, out, err = run(["upgrade", "--to", "1.30", "--plan", "--state", path], capsys)
    assert code == 2
    assert message in err
    assert "Upgrade plan" not in out


def test_docs_examples_parse_and_plan_as_documented(tmp_path, capsys):
    """docs/upgrade.md's state file plans to exactly the table it shows; its journal loads."""
    import re

    from provision.upgrade.state import journal_from_dict

    doc = (Path(__file__).resolve().parents[1] / "docs" / "upgrade.md").read_text()
    journal_json, state_json = re.findall(r"```json\n(.*?)```", doc, re.S)[:2]
    journal = journal_from_dict(json.loads(journal_json), "docs/upgrade.md")
    assert journal.first_unfinished() == Step(1, steps.KUBEADM_INSTALL, "cp-1")
    code, out, err = run(["upgrade", "--to", "1.31", "--plan", "--state",
                          write(tmp_path, state_json)], capsys)
    assert code == 0, err
    table = re.search(r"```\n(HOP .*?)```", doc, re.S)
    assert table is not None
    for line in table.group(1).strip().splitlines():
        assert line in out


def test_nodes_at_different_lags_share_one_level_hop():
    state = cluster("1.31.3", "cp-1=1.31.3", "w-1=1.30.6", "w-2=1.29.10", "w-3=1.31.3")
    plan = plan_upgrade(state, "1.32", REPO, batch=Batch(count=2))
    assert chain(plan) == [("level", "1.29.10", "1.31.3"), ("minor", "1.31.3", "1.32.1")]
    assert plan.hops[0].batches == (("w-1", "w-2"),)
    assert [n.split(":")[0] for n in plan.notes[:2]] == [
        "w-1 is at 1.30.6, behind the API server 1.31.3", "w-2 is at 1.29.10, behind the API "
                                                          "server 1.31.3"]
    assert plan.notes[2].startswith("warning: kubectl 1.29.10 on w-2")


# --------------------------------------------------------------------------------------------
# Cross-check with the Kubernetes simulator's rules (an independent implementation)
# --------------------------------------------------------------------------------------------


def replay_through_simulator_rules(plan: Plan, state: ClusterState, rules) -> None:
    """Run the plan's steps through the simulator's rule checks, as its kubeadm and kubelet
    would; raises rules.RuleError on the first step the simulator refuses."""
    sim = rules.Version.parse
    cluster_v = sim(format_release(state.api_server))
    kubelets = {n.name: sim(format_release(n.kubelet)) for n in state.nodes}
    for hop in plan.hops:
        to = sim(hop.target)
        for step in hop.steps():
            if step.name == steps.UPGRADE_APPLY:
                rules.check_upgrade_apply(cluster_v, to, to, dict(kubelets))
                cluster_v = to
            elif step.name == steps.UPGRADE_NODE:
                rules.check_upgrade_node(cluster_v, to)
            elif step.name == steps.KUBELET_RESTART:
                rules.check_kubelet_skew(to, cluster_v, step.node)
                kubelets[step.node] = to
    assert cluster_v == sim(format_release(plan.target))
    assert set(kubelets.values()) == {cluster_v}


def test_plans_replay_cleanly_through_the_simulator_rules_simulated():
    """Simulator cross-check: for a seeded sample of clusters and targets, every plan passes
    the Kubernetes simulator's rules (kubeadm upgrade apply/node policy, kubelet skew) step by
    step and ends level at the target; every refusal of a valid target is a cluster the
    simulator also finds out of policy."""
    import random

    rules = pytest.importorskip("simulator.rules")
    repo = repository_from_data({m: list(vs) for m, vs in rules.RELEASES.items()})
    rng = random.Random(8)
    planned = refused = 0
    for _ in range(400):
        api_minor = rng.randint(28, 35)
        api = rng.choice(rules.RELEASES[api_minor])
        specs = [f"cp-1={api}"] + [
            f"w-{i}={rng.choice(rules.RELEASES[rng.randint(max(27, api_minor - 4), api_minor)])}"
            for i in range(rng.randint(0, 3))]
        state = cluster(api, *specs)
        target = f"1.{rng.randint(api_minor, 37)}"
        try:
            plan = plan_upgrade(state, target, repo)
        except PlanError as exc:
            refused += 1
            out_of_policy = []
            for n in state.nodes:
                try:
                    rules.check_kubelet_skew(rules.Version.parse(format_release(n.kubelet)),
                                             rules.Version.parse(api), n.name)
                except rules.RuleError as err:
                    out_of_policy.append(str(err))
            assert out_of_policy, f"{specs} -> {target} refused but in policy: {exc}"
            continue
        planned += 1
        replay_through_simulator_rules(plan, state, rules)
    assert planned > 100 and refused > 10  # the sample exercises both outcomes


def test_a_failure_handlers_uncordon_does_not_let_the_redrain_skip_its_uncordon():
    """Drain fails, the handler uncordons (recorded), the re-run drains again: that node's
    uncordon must run again after the new drain."""
    journal, state = half_done_journal()
    drain, uncordon = Step(2, steps.DRAIN, "worker-2"), Step(2, steps.UNCORDON, "worker-2")
    assert journal.possibly_cordoned() == ["worker-2"]
    journal.record(uncordon, "done")  # the failure handler
    assert journal.possibly_cordoned() == []
    journal.record(drain, "started")
    journal.record(drain, "done")  # the re-run
    assert journal.possibly_cordoned() == ["worker-2"]
    assert uncordon in journal.remaining(state)
    assert journal.first_unfinished(state) == Step(2, steps.KUBEADM_INSTALL, "worker-2")


def test_resume_notes_the_nodes_left_drained():
    _, state = half_done_journal()
    plan = plan_upgrade(state, "1.31", REPO)
    assert ("drained by the interrupted run and not yet uncordoned: worker-2 (the resume "
            "continues with their remaining steps, uncordon last)") in plan.notes


def test_new_journal_starts_at_the_first_snapshot():
    from provision.upgrade.plan import new_journal

    plan = plan_upgrade(cluster("1.30.6", "cp-1=1.30.6", "w-1=1.30.6"), "1.31", REPO)
    journal = new_journal(plan, started="2026-11-21T21:00:00Z")
    assert journal.first_unfinished() == Step(1, steps.SNAPSHOT, "cp-1")
    assert not journal.finished and journal.possibly_cordoned() == []
