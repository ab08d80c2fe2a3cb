"""The Kubernetes version skew policy as pure functions (versions are release tuples).

Source: https://kubernetes.io/releases/version-skew-policy/ (read with the team's search tool
on 2026-11-21; the page lists 1.35, 1.34, 1.33 as the maintained releases). The rules used:

* kube-apiserver: "In highly-available (HA) clusters, the newest and oldest kube-apiserver
  instances must be within one minor version."
* kubelet: "kubelet must not be newer than kube-apiserver." "kubelet may be up to three minor
  versions older than kube-apiserver (kubelet < 1.25 may only be up to two minor versions older
  than kube-apiserver)." A three-minor gap with kubelet >= 1.25 means kube-apiserver >= 1.28,
  so this is the same as "three from kube-apiserver 1.28 on, two before" (KEP-3935, released
  in 1.28). With skewed HA API servers the range narrows: the kubelet must not be newer than
  the oldest instance.
* kubectl: "kubectl is supported within one minor version (older or newer) of kube-apiserver",
  and HA skew narrows it the same way.
* Upgrade order ("Supported component upgrade order"): kube-apiserver first, one minor at a
  time ("require kube-apiserver to not skip minor versions when upgrading, even in
  single-instance clusters"; kubeadm: "kubeadm can upgrade only 1 minor version at a time");
  then kubelets: "Optionally upgrade kubelet instances to N (or they can be left at N-1, N-2,
  or N-3)", "Before performing a minor version kubelet upgrade, drain pods from that node.
  In-place minor version kubelet upgrades are not supported", and kubelets "persistently
  three minor versions behind kube-apiserver ... must be upgraded before the control plane
  can be upgraded". (Text checked in kubernetes/website content/en/releases/
  version-skew-policy.md.)

Each check returns a message naming the node and both versions, or None when allowed.
"""

from __future__ import annotations

from collections.abc import Sequence

from provision.versions import Release, format_release

POLICY_URL = "https://kubernetes.io/releases/version-skew-policy/"


def max_kubelet_lag(apiserver: Release) -> int:
    """Minor versions a kubelet may lag kube-apiserver: three from 1.28 on, two before."""
    return 3 if apiserver[:2] >= (1, 28) else 2


def apiserver_problem(apiservers: Sequence[Release]) -> str | None:
    """HA: newest and oldest kube-apiserver instances within one minor version."""
    if not apiservers:
        return None
    newest, oldest = max(apiservers), min(apiservers)
    if newest[1] - oldest[1] > 1:
        return (f"kube-apiserver instances at {format_release(oldest)} and "
                f"{format_release(newest)} are more than one minor version apart "
                f"(version skew policy: {POLICY_URL})")
    return None


def kubelet_problem(kubelet: Release, apiservers: Sequence[Release],
                    node: str = "") -> str | None:
    """kubelet not newer than any kube-apiserver, and at most 3 (2 before 1.28) minors older.
    Minor versions are compared, as the policy and kubeadm do (kubeadm's
    cmd/kubeadm/app/phases/upgrade/policy.go compares `.Minor()`): a kubelet newer by a patch
    (1.31.3 under an API server at 1.31.2) is allowed."""
    where = f" on {node}" if node else ""
    oldest, newest = min(apiservers), max(apiservers)
    if kubelet[:2] > oldest[:2]:
        return (f"kubelet {format_release(kubelet)}{where} is newer than kube-apiserver "
                f"{format_release(oldest)}: no component may be newer than the API server "
                f"(version skew policy: {POLICY_URL})")
    lag = newest[1] - kubelet[1]
    if lag > max_kubelet_lag(newest):
        return (f"kubelet {format_release(kubelet)}{where} is {lag} minor versions older than "
                f"kube-apiserver {format_release(newest)}; at most {max_kubelet_lag(newest)} "
                f"are allowed at 1.{newest[1]} (version skew policy: {POLICY_URL})")
    return None


def kubectl_problem(kubectl: Release, apiservers: Sequence[Release],
                    host: str = "") -> str | None:
    """kubectl within one minor version (older or newer) of every kube-apiserver instance."""
    where = f" on {host}" if host else ""
    for api in sorted(set(apiservers)):
        if abs(kubectl[1] - api[1]) > 1:
            return (f"kubectl {format_release(kubectl)}{where} is more than one minor version "
                    f"from kube-apiserver {format_release(api)} (version skew policy: "
                    f"{POLICY_URL})")
    return None


def minor_step_problem(current: Release, target: Release) -> str | None:
    """kubeadm upgrades the control plane one minor version at a time, never down."""
    if target < current:
        return (f"{format_release(target)} is older than the cluster's "
                f"{format_release(current)}: downgrades are not supported")
    if target[0] != current[0] or target[1] - current[1] > 1:
        return (f"{format_release(current)} -> {format_release(target)} skips a minor version: "
                "kubeadm can upgrade only 1 minor version at a time")
    return None
