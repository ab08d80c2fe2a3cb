"""Pinned component versions, their floors and why: the one place (pure data, no I/O).

Every pin names the role default (or schema default) that must equal it and the upstream source
it was read from; tests/test_pins.py fails when a pin is older than its floor, when a role
default disagrees, or when README's table (``python -m provision.pins --markdown``, between the
``pins:start``/``pins:end`` markers) is stale. A stale pin is thus a visible decision: moving a
floor or a pin means editing this file and saying why.
"""

from __future__ import annotations

import datetime
import sys
from dataclasses import dataclass

from provision.versions import version_parts


@dataclass(frozen=True)
class Pin:
    component: str
    version: str
    floor: str
    why: str
    source: str
    # where the pin lives: "roles/<role>/defaults/main.yml:<variable>" or "schema:<variable>";
    # empty for expectations that no role default holds (checked elsewhere, see tests)
    default: str = ""
    # sha256 of the exact release manifest the role downloads ("" when none was verified)
    checksum: str = ""
    # the Kubernetes minors this release documents, (lowest, highest); None when not declared
    kubernetes: tuple[int, int] | None = None


INGRESS_RELEASE_NOTES = "https://github.com/kubernetes/ingress-nginx/blob/controller-v1.15.1/README.md"

PINS: tuple[Pin, ...] = (
    Pin("Kubernetes (default minor, new clusters)", "1.35", "1.35",
        "The newest minor every pinned add-on documents: ingress-nginx v1.15.1 (final release) "
        "lists Kubernetes 1.31-1.35 and minikube v1.38.1 starts at most v1.35.1, so not 1.36 or "
        "1.37 (both accepted, see SUPPORTED_MINORS; 1.36/1.37 clusters work with the Gateway API "
        "mode, `ingress_controller: gateway`, which does not use ingress-nginx). MetalLB v0.16.1 "
        "(CRDs valid on 1.36, metallb#3035) does not hold it back, nor does cert-manager v1.21 "
        "(Kubernetes 1.33-1.36, its supported-releases page). Floor: 1.35 is the oldest minor "
        "with upstream support on 2026-12-05 (1.34 ended 2026-10-27, KUBERNETES_EOL). kubeadm "
        "config: v1beta4.",
        INGRESS_RELEASE_NOTES + " (supported versions table); "
        "https://github.com/kubernetes/minikube/blob/v1.38.1/pkg/minikube/constants/constants.go "
        "(NewestKubernetesVersion v1.35.1); https://kubernetes.io/releases/ (end of life dates)",
        default="schema:kubernetes_version"),
    Pin("ingress-nginx controller", "v1.15.1", "v1.12.1",
        "Final release: the project was retired in March 2026 (no further fixes). Floor: "
        "CVE-2025-1974 (critical, admission controller RCE) fixed in v1.11.5 / v1.12.1 "
        "(kubernetes/ingress-nginx#13082); 1.11 is out of support. v1.15.1 documents "
        "Kubernetes 1.31-1.35. Its admission Jobs carry ttlSecondsAfterFinished: 0.",
        "https://github.com/kubernetes/ingress-nginx/tree/controller-v1.15.1 (commit 0a5901f3, "
        "deploy/static/provider/cloud/deploy.yaml, README.md supported versions table, "
        "changelog/controller-1.15.1.md)",
        default="roles/ingress_nginx/defaults/main.yml:ingress_nginx_version",
        checksum="502fddca66b09c20dd48b6d0a792a9671cd663a3a0d2a8bda5ae990d13b6c5b2"),
    Pin("NGINX Gateway Fabric (ingress_controller: gateway)", "v2.6.7", "v2.6.7",
        "Chosen over Envoy Gateway (docs/gateway.md): manifests in the tagged repository (so "
        "checksummed here), Kubernetes 1.31+, amd64+arm64 images. It is built against Gateway "
        "API v1.5.1, the standard-channel CRD version the role installs (gateway_api_version, "
        "files checksummed in roles/gateway_api/vars). Floor: v2.6.7 ships NGINX OSS 1.31.3; "
        "earlier releases ship 1.31.2 or older, reported vulnerable to CVE-2026-42533.",
        "https://github.com/nginx/nginx-gateway-fabric/tree/v2.6.7 (commit 5e34a17a, "
        "deploy/default/deploy.yaml, deploy/crds.yaml, CHANGELOG.md 2.6.7 compatibility, "
        "go.mod sigs.k8s.io/gateway-api v1.5.1); https://github.com/nginx/nginx-gateway-fabric/"
        "pull/5580 (NGINX 1.31.3); https://github.com/kubernetes-sigs/gateway-api/tree/v1.5.1 "
        "(commit e7677b70, config/crd/kustomization.yaml); CVE-2026-42533 (fixed in NGINX "
        "mainline 1.31.3) as summarized in https://github.com/svrforum/NginxProxyGuard/issues/"
        "226 (nginx.org's advisory page itself was not read here)",
        default="roles/gateway_api/defaults/main.yml:gateway_api_ngf_version",
        checksum="33c493b6233975913a1628dd0219ef787e3fff5a17bd9d6e3108b41139c7c05b"),
    Pin("MetalLB", "v0.16.1", "v0.16.0",
        "Floor: before v0.16.0 the CRDs' ASN maximum is invalid on Kubernetes 1.36 (metallb#3035); "
        "v0.16.1 fixes BGPPeer localASN (int32 -> int64, metallb#3054). 0.14 is out of support.",
        "https://github.com/metallb/metallb/tree/v0.16.1 (commit 791dfcc6, "
        "config/manifests/metallb-native.yaml, website/content/release-notes/_index.md)",
        default="roles/metallb/defaults/main.yml:metallb_version",
        checksum="bf25feebb7582ca7df845efd52ffbc2960d6cbf4cfc972f47fded9f788b67f0b"),
    Pin("cert-manager", "v1.21.1", "v1.20.0",
        "Newest release (2026-07-29); cert-manager supports its two newest minors (1.21, 1.20). "
        "v1.21.1 fixes reported dependency vulnerabilities (\"All users should upgrade\"). "
        "Supports Kubernetes 1.33-1.36 (tested 1.33-1.36): the default 1.35 is inside, 1.37 is "
        "not documented. The manifest is a release asset, not in the repository: its sha256 "
        "(1,034,400 bytes) is the one several independent public repositories pin for that URL, "
        "not computed here (github.com unreachable). Gateway API support needs the controller "
        "flag --enable-gateway-api (off by default).",
        "https://github.com/cert-manager/cert-manager/releases/tag/v1.21.1 (tag commit 24e33194; "
        "cmd/controller/app/options/options.go, internal/apis/config/controller/v1alpha1/"
        "defaults.go); https://github.com/cert-manager/website/pull/2202 (1.21 release notes); "
        "https://github.com/cert-manager/website/blob/776e5dba/content/docs/releases/README.md "
        "(1.21 row: 1.33 -> 1.36) and content/docs/usage/gateway.md",
        default="roles/cert_manager/defaults/main.yml:cert_manager_version",
        checksum="5f6a499b8c1857d57f560f536e0dcc830914b45c420899fe7ad0692c8624e408",
        kubernetes=(33, 36)),
    Pin("minikube", "v1.38.1", "v1.38.0",
        "Newest release; its constants say Kubernetes v1.28.0-v1.35.1 (default v1.35.1). kubectl "
        "is installed at the cluster's exact Kubernetes release (minikube_kubernetes_release), "
        "checksum from dl.k8s.io's .sha256 file; minikube's own from the release's .sha256.",
        "https://github.com/kubernetes/minikube/blob/v1.38.1/pkg/minikube/constants/constants.go",
        default="roles/minikube/defaults/main.yml:minikube_version"),
    Pin("flannel", "v0.28.9", "v0.28.9",
        "Newest release (2026-08-07; flannel-cni-plugin v1.9.1-flannel3, images on ghcr.io). "
        "Floor: the role's template is that release's kube-flannel.yml (tests compare them): its "
        "readiness probe needs flanneld's /readyz (flannel#2523, v0.28.9) and its install-cni "
        "step /opt/bin/install-conf (flannel#2466, v0.28.6).",
        "https://github.com/flannel-io/flannel/blob/v0.28.9/Documentation/kube-flannel.yml "
        "(tag commit 5cd0d526)",
        default="roles/cni/defaults/main.yml:cni_flannel_version"),
    Pin("calico", "v3.32.1", "v3.32.0",
        "Newest release (2026-06-24); its release notes cover Kubernetes 1.36 (MutatingAdmission"
        "Policy v1 on 1.36+). The floor is the minor reviewed here (calico's support window was "
        "not verified). Its manifest keeps the commented CALICO_IPV4POOL_CIDR the role sets.",
        "https://github.com/projectcalico/calico/tree/v3.32.1 (commit 0ca9d1b9, "
        "manifests/calico.yaml, release-notes/v3.32.1-release-notes.md)",
        default="roles/cni/defaults/main.yml:cni_calico_version",
        checksum="a1df919d9721cf667accdc3e72848911b0cb25cfab7d2478ad0c996302c95744"),
    Pin("etcd tools fallback", "3.6.6", "3.6.6",
        "etcdctl/etcdutl installed when the cluster's etcd version cannot be read: kubeadm 1.35's "
        "etcd (the default minor; 3.6 keeps `snapshot save` in etcdctl, status and restore are "
        "etcdutl's). Real etcd 3.5.1 and 3.4 are the test binaries.",
        "tests/simulator/rules.py ETCD (kubeadm cmd/kubeadm/app/constants/constants.go per minor)",
        default="roles/etcd_snapshot/defaults/main.yml:etcd_version_fallback"),
    Pin("containerd (minimum on nodes)", "1.6.0", "1.6.0",
        "Not pinned (the distribution's or Docker's package); the containerd role reads the "
        "installed version (config version 3 for 2.x, 2 for 1.x). Kubernetes "
        "1.26+ speaks only CRI v1, which needs containerd 1.6+. containerd 2.0 adds the "
        "RuntimeConfig call (cgroup driver from the runtime); the kubelet's fallback for "
        "containerd 1.x is to go in Kubernetes 1.37 (deferred from 1.36 to the end of containerd "
        "1.7 support), so 1.37 needs containerd 2.x: the role refuses 1.x there.",
        "https://github.com/kubernetes/website/pull/38123 (1.26: CRI v1 only, containerd 1.6+); "
        "https://github.com/kubernetes/website/pull/52107 (KubeletCgroupDriverFromCRI: containerd "
        "v2.0.0); https://github.com/kubernetes/kubernetes/pull/136846 and "
        "https://github.com/kubernetes/website/pull/54356 (fallback removal moved to 1.37)"),
    Pin("pause image (default minor)", "3.10.1", "3.10.1",
        "What kubeadm deploys for the default minor; the simulator and the containerd role "
        "expect the same. Not read at the v1.35.0 tag here (the per-minor table in "
        "tests/simulator/README.md says what was read).",
        "https://github.com/kubernetes/kubernetes/blob/v1.35.0/cmd/kubeadm/app/constants/"
        "constants.go (PauseVersion); roles/containerd/vars/main.yml"),
    Pin("CoreDNS (default minor)", "v1.13.1", "v1.13.1",
        "What kubeadm deploys for the default minor (kubernetes/kubernetes#133968, in "
        "v1.35.0-beta.0); the simulator must expect the same.",
        "https://github.com/kubernetes/kubernetes/blob/v1.35.0/cmd/kubeadm/app/constants/"
        "constants.go (CoreDNSVersion); tests/simulator/README.md (per-minor table)"),
)

BY_COMPONENT = {p.component: p for p in PINS}

#: Upstream end of life per Kubernetes minor, from the kubernetes.io release pages
#: (https://kubernetes.io/releases/1.NN/, "End Of Life Date") and, for 1.28, 1.29 and 1.31,
#: kubernetes/website data/releases/schedule.yaml at 28d3e131. Minors not listed (1.32, 1.37)
#: have no date verified here: no warning is given for them.
KUBERNETES_EOL: dict[int, datetime.date] = {
    28: datetime.date(2024, 10, 28),
    29: datetime.date(2025, 2, 28),
    30: datetime.date(2025, 7, 15),
    31: datetime.date(2025, 10, 28),
    33: datetime.date(2026, 6, 28),
    34: datetime.date(2026, 10, 27),
    35: datetime.date(2027, 2, 28),
    36: datetime.date(2027, 6, 28),
}
KUBERNETES_EOL_SOURCE = "https://kubernetes.io/releases/"

def version_key(text: str) -> tuple[int, ...]:
    """'v1.15.1' -> (1, 15, 1); '3.10' -> (3, 10) (provision.versions.version_parts). ValueError
    on anything else."""
    parts = version_parts(text)
    if not parts:
        raise ValueError(f"not a version: {text!r}")
    return tuple(parts)


def below_floor() -> list[str]:
    """Every pin older than its floor, as a sentence (empty: all pins at or above)."""
    return [f"{p.component}: pinned {p.version} is older than its floor {p.floor}"
            for p in PINS if version_key(p.version) < version_key(p.floor)]


def past_upstream_support(minor: int, today: datetime.date) -> datetime.date | None:
    """The end-of-life date of Kubernetes 1.<minor> when it is before ``today``; else None."""
    eol = KUBERNETES_EOL.get(minor)
    return eol if eol is not None and eol < today else None


def eol_message(version: str, minor: int, today: datetime.date) -> str | None:
    """'Kubernetes 1.30 is past upstream support (...)' on ``today``; else None."""
    eol = past_upstream_support(minor, today)
    if eol is None:
        return None
    return (f"Kubernetes {version} is past upstream support (end of life "
            f"{eol.isoformat()}, {KUBERNETES_EOL_SOURCE}1.{minor}/): no more security fixes; "
            "choose a supported minor for new clusters and upgrade existing ones")


def eol_warning(where: str, version: str, minor: int, today: datetime.date) -> str | None:
    """The same, prefixed with where the version was set."""
    msg = eol_message(version, minor, today)
    return f"{where}: {msg}" if msg else None


def pin_of(component: str) -> Pin:
    """The pin of ``component`` (KeyError when there is none)."""
    for p in PINS:
        if p.component == component:
            return p
    raise KeyError(component)


def outside_documented_warning(where: str, component: str, version: str,
                               minor: int) -> str | None:
    """'<where>: Kubernetes 1.37 is outside the range cert-manager v1.21.1 documents (1.33-1.36)'
    when 1.<minor> is outside the pin's declared ``kubernetes`` range; else None."""
    pin = pin_of(component)
    if pin.kubernetes is None or pin.kubernetes[0] <= minor <= pin.kubernetes[1]:
        return None
    lo, hi = pin.kubernetes
    return (f"{where}: Kubernetes {version} is outside the range {component} {pin.version} "
            f"documents (1.{lo}-1.{hi}; provision/pins.py names the source): it may work but "
            f"is untested upstream; choose a minor in 1.{lo}-1.{hi} for the add-ons")


def markdown_table() -> str:
    """README's pinned-versions table (kept in sync by a test)."""
    rows = ["| component | version | floor | why | source |", "|---|---|---|---|---|"]
    for p in PINS:
        rows.append(f"| {p.component} | `{p.version}` | `{p.floor}` | {p.why} | {p.source} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    if "--markdown" in sys.argv:
        print(markdown_table())
