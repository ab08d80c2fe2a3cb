"""Unit tests of the Kubernetes simulator's rules (tests/simulator/rules.py): each documented
rule of the real tools is shown refusing the violation and accepting the allowed case."""

from __future__ import annotations

import pytest
from simulator import rules
from simulator.rules import RuleError, Version

V = Version.parse


def cfg(api: str, kind: str, **body: object) -> dict:
    return {"apiVersion": api, "kind": kind, **body}


B3, B4 = "kubeadm.k8s.io/v1beta3", "kubeadm.k8s.io/v1beta4"


# ------------------------------------------------------------------ kubeadm config API version
@pytest.mark.parametrize("kubeadm", ["1.27.16", "1.28.15", "1.29.10", "1.30.6"])
def test_simulator_v1beta3_accepted_without_warning_through_1_30(kubeadm: str) -> None:
    check = rules.validate_kubeadm_config(
        [cfg(B3, "ClusterConfiguration", kubernetesVersion="v1.30.6")], V(kubeadm)
    )
    assert check.warnings == []
    assert "ClusterConfiguration" in check.documents


@pytest.mark.parametrize("kubeadm", ["1.31.2", "1.35.1"])
def test_simulator_v1beta3_deprecated_warning_from_1_31(kubeadm: str) -> None:
    check = rules.validate_kubeadm_config([cfg(B3, "InitConfiguration")], V(kubeadm))
    assert len(check.warnings) == 1
    assert "deprecated API spec" in check.warnings[0] and "v1beta3" in check.warnings[0]


def test_simulator_v1beta3_refused_from_1_36() -> None:
    with pytest.raises(RuleError, match="old API spec.*v1beta3.*kubeadm v1.35"):
        rules.validate_kubeadm_config([cfg(B3, "InitConfiguration")], V("1.36.1"))


@pytest.mark.parametrize("kubeadm", ["1.28.15", "1.30.6"])
def test_simulator_v1beta4_experimental_before_1_31(kubeadm: str) -> None:
    with pytest.raises(RuleError, match="experimental API spec"):
        rules.validate_kubeadm_config([cfg(B4, "InitConfiguration")], V(kubeadm))
    ok = rules.validate_kubeadm_config(
        [cfg(B4, "InitConfiguration")], V(kubeadm), allow_experimental=True
    )
    assert ok.warnings == []


def test_simulator_v1beta4_unknown_to_1_27() -> None:
    with pytest.raises(RuleError, match="unknown configuration APIs"):
        rules.validate_kubeadm_config([cfg(B4, "InitConfiguration")], V("1.27.16"))


@pytest.mark.parametrize("kubeadm", ["1.31.2", "1.37.1"])
def test_simulator_v1beta4_accepted_from_1_31(kubeadm: str) -> None:
    assert rules.validate_kubeadm_config([cfg(B4, "JoinConfiguration")], V(kubeadm)).warnings == []


def test_simulator_v1beta2_old_api_refused() -> None:
    with pytest.raises(RuleError, match=r"old API spec.*kubeadm v1\.22"):
        rules.validate_kubeadm_config(
            [cfg("kubeadm.k8s.io/v1beta2", "InitConfiguration")], V("1.29.10")
        )


def test_simulator_expected_api_per_release() -> None:
    assert rules.expected_kubeadm_api(V("1.30.6")) == B3
    assert rules.expected_kubeadm_api(V("1.31.0")) == B4


# ------------------------------------------------------------------ known fields per kind
def test_simulator_unknown_field_refused_strictly() -> None:
    doc = cfg(
        B3,
        "ClusterConfiguration",
        kubernetesVersion="v1.30.6",
        networking={"podSubnet": "10.244.0.0/16", "podCIDR": "x"},
    )
    with pytest.raises(RuleError, match='unknown field "networking.podCIDR"'):
        rules.validate_kubeadm_config([doc], V("1.30.6"))
    lenient = rules.validate_kubeadm_config([doc], V("1.30.6"), strict=False)
    assert any("networking.podCIDR" in w for w in lenient.warnings)


def test_simulator_v1beta4_extra_args_are_lists_v1beta3_maps() -> None:
    v3 = cfg(B3, "ClusterConfiguration", apiServer={"extraArgs": {"audit-log-path": "/x"}})
    rules.validate_kubeadm_config([v3], V("1.30.6"))
    v4_list = cfg(
        B4,
        "ClusterConfiguration",
        apiServer={"extraArgs": [{"name": "audit-log-path", "value": "/x"}]},
    )
    rules.validate_kubeadm_config([v4_list], V("1.31.2"))
    v4_map = cfg(B4, "ClusterConfiguration", apiServer={"extraArgs": {"audit-log-path": "/x"}})
    with pytest.raises(RuleError, match="expected a list"):
        rules.validate_kubeadm_config([v4_map], V("1.31.2"))


def test_simulator_timeout_for_control_plane_removed_in_v1beta4() -> None:
    v3 = cfg(B3, "ClusterConfiguration", apiServer={"timeoutForControlPlane": "4m0s"})
    rules.validate_kubeadm_config([v3], V("1.30.6"))
    v4 = cfg(B4, "ClusterConfiguration", apiServer={"timeoutForControlPlane": "4m0s"})
    with pytest.raises(RuleError, match="apiServer.timeoutForControlPlane"):
        rules.validate_kubeadm_config([v4], V("1.31.2"))
    moved = cfg(B4, "InitConfiguration", timeouts={"controlPlaneComponentHealthCheck": "4m0s"})
    rules.validate_kubeadm_config([moved], V("1.31.2"))


def test_simulator_join_discovery_timeout_moved_in_v1beta4() -> None:
    v3 = cfg(B3, "JoinConfiguration", discovery={"timeout": "5m0s"})
    rules.validate_kubeadm_config([v3], V("1.30.6"))
    v4 = cfg(B4, "JoinConfiguration", discovery={"timeout": "5m0s"})
    with pytest.raises(RuleError, match="discovery.timeout"):
        rules.validate_kubeadm_config([v4], V("1.31.2"))


def test_simulator_kubelet_configuration_fields_by_release() -> None:
    kc = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "failCgroupV1": False,
    }
    rules.validate_kubeadm_config([kc], V("1.31.2"))
    with pytest.raises(RuleError, match='"failCgroupV1" \\(added in v1.31\\)'):
        rules.validate_kubeadm_config([kc], V("1.30.6"))
    with pytest.raises(RuleError, match='unknown field "cgroupdriver"'):
        rules.validate_kubeadm_config([{**kc, "cgroupdriver": "systemd"}], V("1.31.2"))


def test_simulator_kube_proxy_configuration_ipvs_strict_arp() -> None:
    kp = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "ipvs",
        "ipvs": {"strictARP": True},
    }
    rules.validate_kubeadm_config([kp], V("1.31.2"))
    with pytest.raises(RuleError, match='unknown field "ipvs.strictArp"'):
        rules.validate_kubeadm_config([{**kp, "ipvs": {"strictArp": True}}], V("1.31.2"))
    with pytest.raises(RuleError, match='invalid value for "mode"'):
        rules.validate_kubeadm_config([{**kp, "mode": "userspace"}], V("1.31.2"))


def test_simulator_unknown_kind_and_duplicate_refused() -> None:
    with pytest.raises(RuleError, match="unknown configuration APIs"):
        rules.validate_kubeadm_config([cfg(B3, "MasterConfiguration")], V("1.30.6"))
    doc = cfg(B3, "InitConfiguration")
    with pytest.raises(RuleError, match="duplicate"):
        rules.validate_kubeadm_config([doc, doc], V("1.30.6"))


# ------------------------------------------------------------------ kubeadm init version
@pytest.mark.parametrize("requested", [None, "", "stable-1", "stable", "latest-1.31"])
def test_simulator_init_refuses_version_lookup_over_network(requested: str | None) -> None:
    with pytest.raises(RuleError, match="dl.k8s.io/release"):
        rules.resolve_init_version(requested, V("1.31.2"))


def test_simulator_init_version_range() -> None:
    assert rules.resolve_init_version("v1.31.2", V("1.31.2")) == V("1.31.2")
    assert rules.resolve_init_version("1.30.6", V("1.31.2")) == V("1.30.6")
    with pytest.raises(RuleError, match="control plane version >= v1.30.0"):
        rules.resolve_init_version("v1.29.10", V("1.31.2"))
    with pytest.raises(RuleError, match="newer than kubeadm"):
        rules.resolve_init_version("v1.32.1", V("1.31.2"))


# ------------------------------------------------------------------ upgrade apply / node
def test_simulator_upgrade_apply_one_minor_only() -> None:
    rules.check_upgrade_apply(V("1.29.10"), V("1.30.6"), V("1.30.6"))
    with pytest.raises(RuleError, match="only 1 minor version at a time"):
        rules.check_upgrade_apply(V("1.29.10"), V("1.31.2"), V("1.31.2"))


def test_simulator_upgrade_apply_needs_kubeadm_of_target_version() -> None:
    """policy.go: a target patch above kubeadm's is skippable (--force), a target minor above
    kubeadm's is mandatory; the simulator's own exact-release rule is labelled [simulator]."""
    with pytest.raises(RuleError, match="Upgrade kubeadm first"):
        rules.check_upgrade_apply(V("1.30.5"), V("1.30.6"), V("1.30.5"))
    with pytest.raises(RuleError, match=r"higher than the kubeadm minor release \(30 > 29\)"):
        rules.check_upgrade_apply(V("1.29.10"), V("1.30.6"), V("1.29.10"), force=True)
    with pytest.raises(RuleError, match=r"\[simulator\].*must be exactly the target"):
        rules.check_upgrade_apply(V("1.30.5"), V("1.30.5"), V("1.30.6"))


def test_simulator_upgrade_apply_downgrade_policy_matches_kubeadm() -> None:
    """SIMULATED kubeadm policy.go: a one-minor downgrade is NOT refused (only more than one
    minor is "too low"); the old simulator refused it."""
    rules.check_upgrade_apply(V("1.31.2"), V("1.30.6"), V("1.30.6"))
    rules.check_upgrade_apply(V("1.31.3"), V("1.31.2"), V("1.31.2"))
    with pytest.raises(RuleError, match="is too low; kubeadm can downgrade only 1 minor"):
        rules.check_upgrade_apply(V("1.31.2"), V("1.29.10"), V("1.29.10"))


def test_simulator_upgrade_apply_force_bypasses_only_skippable_errors() -> None:
    """apply/preflight.go: skippable errors fail with "Can be bypassed if you pass the --force
    flag" and pass with --force; mandatory errors ("fatal errors") fail even with --force."""
    kubelets = {"w1": V("1.27.16")}
    with pytest.raises(RuleError, match="Can be bypassed if you pass the --force flag"):
        rules.check_upgrade_apply(V("1.30.6"), V("1.31.2"), V("1.31.2"), {"w1": V("1.27.16")})
    rules.check_upgrade_apply(V("1.30.6"), V("1.31.2"), V("1.31.2"), kubelets, force=True)
    with pytest.raises(RuleError, match="(?s)fatal errors.*too high"):
        rules.check_upgrade_apply(V("1.29.10"), V("1.31.2"), V("1.31.2"), force=True)


def test_simulator_upgrade_apply_same_version_reapply_allowed() -> None:
    rules.check_upgrade_apply(V("1.31.2"), V("1.31.2"), V("1.31.2"))


def test_simulator_upgrade_apply_refuses_too_old_kubelets() -> None:
    """kubeadm >= 1.29 tolerates kubelets 3 minors behind the target (PR #120825), 1 before."""
    kubelets = {"w1": V("1.27.16"), "cp": V("1.30.6")}
    with pytest.raises(RuleError, match=r"kubelets .* too old .*v1\.27\.16"):
        rules.check_upgrade_apply(V("1.30.6"), V("1.31.2"), V("1.31.2"), kubelets)
    rules.check_upgrade_apply(
        V("1.30.6"), V("1.31.2"), V("1.31.2"), {"w1": V("1.28.15"), "cp": V("1.30.6")}
    )
    with pytest.raises(RuleError, match=r"too old .*v1\.26\.15"):
        rules.check_upgrade_apply(V("1.27.16"), V("1.28.15"), V("1.28.15"), {"w": V("1.26.15")})
    assert rules.kubeadm_kubelet_skew(V("1.28.15")) == 1
    assert rules.kubeadm_kubelet_skew(V("1.29.0")) == 3


def test_simulator_upgrade_node_needs_kubeadm_at_cluster_minor() -> None:
    rules.check_upgrade_node(V("1.31.2"), V("1.31.2"))
    with pytest.raises(RuleError, match="older than the cluster"):
        rules.check_upgrade_node(V("1.31.2"), V("1.30.6"))
    with pytest.raises(RuleError, match="upgrade apply"):
        rules.check_upgrade_node(V("1.30.6"), V("1.31.2"))


# ------------------------------------------------------------------ version skew
def test_simulator_kubelet_never_newer_minor_than_apiserver() -> None:
    """Minor versions compared (kubeadm preflight/checks.go KubeletVersionCheck): a kubelet
    newer by a patch passes (the old simulator refused 1.31.3 under 1.31.2)."""
    with pytest.raises(RuleError, match="newer than kube-apiserver"):
        rules.check_kubelet_skew(V("1.31.2"), V("1.30.6"))
    rules.check_kubelet_skew(V("1.31.3"), V("1.31.2"))
    rules.check_kubelet_skew(V("1.31.2"), V("1.31.2"))


def test_simulator_kubelet_three_minors_behind_from_1_28() -> None:
    rules.check_kubelet_skew(V("1.28.15"), V("1.31.2"))
    with pytest.raises(RuleError, match="4 minor versions older"):
        rules.check_kubelet_skew(V("1.27.16"), V("1.31.2"))


def test_simulator_kubelet_two_minors_behind_before_1_28() -> None:
    assert rules.max_kubelet_skew(V("1.27.16")) == 2
    with pytest.raises(RuleError, match="at most 2"):
        rules.check_kubelet_skew(V("1.24.0"), V("1.27.16"))


def test_simulator_kubectl_skew_warning() -> None:
    assert rules.kubectl_skew_warning(V("1.30.6"), V("1.31.2")) is None
    assert rules.kubectl_skew_warning(V("1.32.1"), V("1.31.2")) is None
    warning = rules.kubectl_skew_warning(V("1.29.10"), V("1.31.2"))
    assert warning and "exceeds the supported minor version skew of +/-1" in warning


def test_simulator_join_kubelet_version_preflight() -> None:
    rules.check_join_versions(V("1.31.2"), V("1.31.2"), V("1.31.2"))
    rules.check_join_versions(V("1.31.2"), V("1.31.2"), V("1.31.3"))  # a newer patch passes
    with pytest.raises(RuleError, match="KubeletVersion.*higher than the control plane"):
        rules.check_join_versions(V("1.30.6"), V("1.30.6"), V("1.31.2"))
    with pytest.raises(RuleError, match="kubelet not found"):
        rules.check_join_versions(V("1.31.2"), V("1.31.2"), None)
    with pytest.raises(RuleError, match="cannot join"):
        rules.check_join_versions(V("1.31.2"), V("1.29.10"), V("1.29.10"))


# ------------------------------------------------------------------ drain filters and PDBs
def pod(
    name: str,
    owner: str | None = None,
    empty_dir: bool = False,
    mirror: bool = False,
    labels: dict | None = None,
    ready: bool = True,
    ns: str = "default",
) -> dict:
    meta: dict = {
        "name": name,
        "namespace": ns,
        "labels": labels or {"app": name},
        "ownerReferences": [{"kind": owner, "name": f"{name}-o", "controller": True}]
        if owner
        else [],
    }
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": "x"}
    return {
        "metadata": meta,
        "spec": {"volumes": [{"name": "s", "emptyDir": {}}] if empty_dir else []},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_simulator_drain_refuses_bare_pods_without_force() -> None:
    plan = rules.plan_drain(
        [pod("bare")], force=False, ignore_daemonsets=True, delete_emptydir_data=True
    )
    assert plan.errors == [
        "cannot delete Pods that declare no controller (use --force to override): default/bare"
    ]
    forced = rules.plan_drain(
        [pod("bare")], force=True, ignore_daemonsets=True, delete_emptydir_data=True
    )
    assert not forced.errors and [p["metadata"]["name"] for p in forced.evict] == ["bare"]


def test_simulator_drain_refuses_daemonset_pods_without_ignore_daemonsets() -> None:
    plan = rules.plan_drain(
        [pod("ds", "DaemonSet")], force=False, ignore_daemonsets=False, delete_emptydir_data=False
    )
    assert "use --ignore-daemonsets" in plan.errors[0]
    ok = rules.plan_drain(
        [pod("ds", "DaemonSet")], force=False, ignore_daemonsets=True, delete_emptydir_data=False
    )
    assert not ok.errors and not ok.evict and "ignoring DaemonSet-managed" in ok.warnings[0]


def test_simulator_drain_refuses_emptydir_without_delete_emptydir_data() -> None:
    p = pod("cache", "ReplicaSet", empty_dir=True)
    plan = rules.plan_drain([p], force=False, ignore_daemonsets=True, delete_emptydir_data=False)
    assert "use --delete-emptydir-data" in plan.errors[0]
    ok = rules.plan_drain([p], force=False, ignore_daemonsets=True, delete_emptydir_data=True)
    assert not ok.errors and len(ok.evict) == 1


def test_simulator_drain_skips_mirror_pods() -> None:
    plan = rules.plan_drain(
        [pod("kube-apiserver-cp1", mirror=True)],
        force=False,
        ignore_daemonsets=False,
        delete_emptydir_data=False,
    )
    assert not plan.errors and not plan.evict


def pdb(spec: dict, selector: dict | None = None) -> dict:
    return {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"selector": {"matchLabels": selector or {"app": "web"}}, **spec},
    }


def test_simulator_pdb_min_available_blocks_eviction() -> None:
    pods = [
        pod("w1", "ReplicaSet", labels={"app": "web"}),
        pod("w2", "ReplicaSet", labels={"app": "web"}),
    ]
    with pytest.raises(RuleError, match="disruption budget"):
        rules.check_eviction(pods[0], [pdb({"minAvailable": 2})], pods)
    rules.check_eviction(pods[0], [pdb({"minAvailable": 1})], pods)


def test_simulator_pdb_max_unavailable_and_percentages() -> None:
    pods = [pod(f"w{i}", "ReplicaSet", labels={"app": "web"}) for i in range(4)]
    assert rules.disruptions_allowed(pdb({"maxUnavailable": 1}), pods) == 1
    assert rules.disruptions_allowed(pdb({"maxUnavailable": "50%"}), pods) == 2
    assert rules.disruptions_allowed(pdb({"minAvailable": "100%"}), pods) == 0
    pods[1]["status"]["conditions"][0]["status"] = "False"  # one already unavailable
    assert rules.disruptions_allowed(pdb({"maxUnavailable": 1}), pods) == 0
    with pytest.raises(RuleError):
        rules.check_eviction(pods[0], [pdb({"maxUnavailable": 1})], pods)


def test_simulator_pdb_other_selector_or_namespace_does_not_block() -> None:
    pods = [pod("w1", "ReplicaSet", labels={"app": "web"})]
    rules.check_eviction(pods[0], [pdb({"minAvailable": 1}, {"app": "db"})], pods)
    other_ns = pdb({"minAvailable": 1})
    other_ns["metadata"]["namespace"] = "prod"
    rules.check_eviction(pods[0], [other_ns], pods)


def _not_ready(p: dict) -> dict:
    p["status"]["conditions"][0]["status"] = "False"
    return p


def test_simulator_eviction_of_a_not_ready_pod_follows_eviction_go() -> None:
    """SIMULATED eviction API (kubernetes/kubernetes pkg/registry/core/pod/storage/
    eviction.go): a not-Ready pod is evicted only while its PDB is still met
    (currentHealthy >= desiredHealthy > 0) or with unhealthyPodEvictionPolicy AlwaysAllow;
    a crash-looping single replica under minAvailable: 1 gets 429 (the old simulator evicted
    every not-Ready pod)."""
    single = [_not_ready(pod("db-0", "ReplicaSet", labels={"app": "web"}))]
    with pytest.raises(rules.EvictionError, match="needs 1 healthy pods and has 0") as exc:
        rules.check_eviction(single[0], [pdb({"minAvailable": 1})], single)
    assert exc.value.code == 429
    rules.check_eviction(
        single[0], [pdb({"minAvailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"})],
        single)
    # the budget is still met by the two Ready replicas: the not-Ready one may go
    three = [pod(f"w{i}", "ReplicaSet", labels={"app": "web"}) for i in range(3)]
    _not_ready(three[0])
    rules.check_eviction(three[0], [pdb({"minAvailable": 2})], three)
    # a Pending or terminating pod never looks at PDBs
    single[0]["status"]["phase"] = "Pending"
    rules.check_eviction(single[0], [pdb({"minAvailable": 1})], single)


def test_simulator_eviction_under_two_pdbs_is_500() -> None:
    """eviction.go: "This pod has more than one PodDisruptionBudget, which the eviction
    subresource does not support." with HTTP 500; a PDB with an empty selector matches
    nothing."""
    pods = [pod(f"w{i}", "ReplicaSet", labels={"app": "web"}) for i in range(3)]
    second = pdb({"maxUnavailable": 1})
    second["metadata"]["name"] = "q"
    with pytest.raises(rules.EvictionError, match="more than one PodDisruptionBudget") as exc:
        rules.check_eviction(pods[0], [pdb({"maxUnavailable": 1}), second], pods)
    assert exc.value.code == 500
    empty = {"metadata": {"name": "e", "namespace": "default"},
             "spec": {"selector": {}, "minAvailable": 3}}
    rules.check_eviction(pods[0], [pdb({"maxUnavailable": 1}), empty], pods)


def test_simulator_selector_expressions() -> None:
    sel = {
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "x", "operator": "DoesNotExist"},
        ]
    }
    assert rules.selector_matches(sel, {"tier": "a"})
    assert not rules.selector_matches(sel, {"tier": "c"})
    assert not rules.selector_matches(sel, {"tier": "a", "x": "1"})
    assert not rules.selector_matches(None, {"tier": "a"})


def test_simulator_duration_parsing() -> None:
    assert rules.parse_duration("1m30s") == 90
    assert rules.parse_duration("0") == 0
    with pytest.raises(RuleError):
        rules.parse_duration("ten seconds")


def test_simulator_catalog_versions_are_real_and_debian_style() -> None:
    assert rules.is_released("1.31.2") and rules.is_released("v1.28.15")
    assert not rules.is_released("1.31.99")
    assert rules.deb_version("1.31.2") == "1.31.2-1.1"
    for minor in range(27, 33):
        assert len(rules.RELEASES[minor]) >= 2, minor


# ------------------------------------------------------------------ Job updates
def _job(image: str, **spec: object) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}],
                                           "restartPolicy": "OnFailure"}}, **spec}}


def test_simulator_job_template_selector_completions_are_immutable() -> None:
    old = _job("certgen:v1.4.4", completions=1, selector={"matchLabels": {"a": "b"}})
    assert rules.job_update_causes(old, old) == []
    relabelled = {**old, "metadata": {"name": "j", "labels": {"v": "2"}}}
    assert rules.job_update_causes(old, relabelled) == [], "metadata is mutable"
    [cause] = rules.job_update_causes(old, _job("certgen:v1.5.2", completions=1,
                                                selector={"matchLabels": {"a": "b"}}))
    assert cause["field"] == "spec.template" and cause["reason"] == "FieldValueInvalid"
    assert cause["message"].startswith("Invalid value: core.PodTemplateSpec{")
    assert cause["message"].endswith(": field is immutable") and "certgen:v1.5.2" in \
        cause["message"]
    causes = rules.job_update_causes(old, _job("certgen:v1.4.4", completions=2,
                                               selector={"matchLabels": {"a": "c"}}))
    assert [c["field"] for c in causes] == ["spec.selector", "spec.completions"]
    assert causes[1]["message"] == "Invalid value: 2: field is immutable"


def test_simulator_addons_wait_for_the_last_control_plane() -> None:
    """SIMULATED kubeadm (postupgrade.go UnupgradedControlPlaneInstances; apply/addons.go and
    node/addons.go shouldUpgradeAddons): CoreDNS and kube-proxy are upgraded by `upgrade apply`
    only when every other control plane already runs the same kube-apiserver image, else by
    the last control plane's `upgrade node` (the old simulator always upgraded them in apply)."""
    old, new = "registry.k8s.io/kube-apiserver:v1.30.6", "registry.k8s.io/kube-apiserver:v1.31.3"
    assert rules.unupgraded_control_planes({"cp1": new, "cp2": old, "cp3": old}, "cp1") == [
        "cp2", "cp3"]
    assert rules.unupgraded_control_planes({"cp1": new, "cp2": new, "cp3": old}, "cp2") == [
        "cp3"]
    assert rules.unupgraded_control_planes({"cp1": new, "cp2": new, "cp3": new}, "cp3") == []
    assert rules.unupgraded_control_planes({"cp1": new}, "cp1") == []
    assert rules.addons_skipped_message(["cp2", "cp3"]) == (
        "[upgrade/addon] Skipping upgrade of addons because control plane instances [cp2 cp3] "
        "have not been upgraded")


def test_simulator_upgrade_health_check_rules() -> None:
    """SIMULATED kubeadm CheckClusterHealth (cmd/kubeadm/app/phases/upgrade/health.go):
    CreateJob with its timeout (15s, 1m0s from 1.36: kubernetes#136273), NotReady control
    planes named, missing static pod manifests named."""
    assert rules.health_check_errors(V("1.35.0"), [], True, "j", []) == []
    errs = dict(rules.health_check_errors(V("1.35.0"), ["cp2"], False, "upgrade-health-check-1",
                                          ["/etc/kubernetes/manifests/kube-apiserver.yaml"]))
    assert errs["CreateJob"].startswith('Job "upgrade-health-check-1" in the namespace '
                                        '"kube-system" did not complete in 15s')
    assert errs["ControlPlaneNodesReady"] == (
        "there are NotReady control-planes in the cluster: [cp2]")
    assert "Manifest files not found: [/etc/kubernetes/manifests/kube-apiserver.yaml]" in errs[
        "StaticPodManifest"]
    assert rules.health_check_timeout(V("1.36.0")) == "1m0s"
