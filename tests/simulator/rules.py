"""The rules the Kubernetes simulator enforces, as pure functions (no I/O, stdlib only).

This module is shipped inside the simulated kubeadm/kubelet/kubectl .deb packages, so it must
import nothing outside the Python standard library.

Sources for the rules (read with the team's search tool on 2026-11-21):

* kubeadm config API versions:
  - kubernetes/kubernetes cmd/kubeadm/app/util/config/common.go ``validateSupportedVersion``:
    v1beta2 and older are "old API spec" errors from 1.27; v1beta4 is *experimental* from 1.28
    and refused unless ``--allow-experimental-api``; deprecated versions only log a warning.
  - kubernetes/kubernetes PR #125029 "kubeadm: enable the v1beta4 API" (1.31): v1beta4 is
    enabled, "v1beta3 is now marked as deprecated but will continue to be supported until
    version 1.34 or later"; extraArgs become lists of name/value; JoinConfiguration
    discovery.timeout -> timeouts.discovery; apiServer.timeoutForControlPlane ->
    timeouts.controlPlaneComponentHealthCheck.
  - kubernetes/kubernetes PR #136016 (merged 2026-01, so release 1.36) "kubeadm: remove the
    v1beta3 API which was deprecated since v1.31. The 1.35 kubeadm binary can be used to
    migrate".
  - kubeadm-config.v1beta3 / v1beta4 reference pages (kubernetes.io/docs/reference/config-api/)
    for the field names below.
* Strict decoding: common.go / initconfiguration.go call ``strict.VerifyUnmarshalStrict`` and,
  for ``kubeadm init``/``join`` (strictErrors=false), only ``klog.Warning`` the unknown field;
  ``kubeadm config validate`` (strictErrors=true) fails. The simulator REFUSES unknown fields in
  init/join too (stricter than the real tool, said in the message) so template typos cannot pass
  unnoticed; it prints the real warning text first.
* ``NormalizeKubernetesVersion`` (common.go): control plane version must be >= the kubeadm
  minor - 1 ("this version of kubeadm only supports deploying clusters with the control plane
  version >= ..."). A missing kubernetesVersion defaults to the label "stable-1" which kubeadm
  resolves over the network (dl.k8s.io/release/stable-1.txt): the simulator refuses instead.
* Version skew policy (kubernetes.io/releases/version-skew-policy): kubelet must not be newer
  than kube-apiserver and may be up to three minors older (two before kube-apiserver 1.28);
  kubectl is supported within one minor (older or newer) of kube-apiserver (kubectl warns).
* kubeadm upgrade (cmd/kubeadm/app/phases/upgrade/policy.go, apply/preflight.go): one minor at
  a time up ("too high") and down ("too low"; a one-minor downgrade passes), target minor not
  above kubeadm's (mandatory); target patch above kubeadm's, kubeadm newer than the target
  minor and kubelets older than the kubeadm skew (1 minor to 1.28, 3 from 1.29: PR #120825)
  are skippable with --force. The simulator additionally requires (unless --force) the kubeadm
  binary's release to EQUAL the target.
* kubectl drain (k8s.io/kubectl/pkg/drain/filters.go): DaemonSet pods need
  --ignore-daemonsets, pods without controller need --force, emptyDir needs
  --delete-emptydir-data; mirror (static) pods are skipped; evictions get HTTP 429 when a PDB
  would be violated, kubectl retries every 5 s until --timeout.
* Job updates (kubernetes/kubernetes pkg/apis/batch/validation/validation.go
  ``ValidateJobSpecUpdate``): ``spec.selector`` and ``spec.completions`` (outside the
  indexed-job elastic case) are immutable, and ``spec.template`` too (bar the scheduling
  directives of a suspended Job that never started, not simulated); the API answers 422
  Invalid with one cause per field, "field is immutable", which kubectl prints as ``The Job
  "<name>" is invalid: spec.template: Invalid value: core.PodTemplateSpec{...}: field is
  immutable`` (the ingress-nginx admission Jobs on upgrade: kubernetes/ingress-nginx #5884,
  #9515).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------------
# Versions and the package catalog
# --------------------------------------------------------------------------------------------

#: Released patch versions the simulated repository offers, per minor (real release numbers).
RELEASES: dict[int, tuple[str, ...]] = {
    27: ("1.27.15", "1.27.16"),
    28: ("1.28.14", "1.28.15"),
    29: ("1.29.9", "1.29.10"),
    30: ("1.30.5", "1.30.6"),
    31: ("1.31.1", "1.31.2", "1.31.3"),
    32: ("1.32.0", "1.32.1"),
    33: ("1.33.5", "1.33.6"),
    34: ("1.34.1", "1.34.2"),
    35: ("1.35.0", "1.35.1"),
    36: ("1.36.0", "1.36.1"),
    37: ("1.37.0", "1.37.1"),
}
#: Debian revision used by pkgs.k8s.io ("1.31.2-1.1").
DEB_REVISION = "1.1"
#: cri-tools and kubernetes-cni versions shipped in each per-minor repository.
CRI_TOOLS = {m: f"1.{m}.0" for m in RELEASES} | {27: "1.27.1", 30: "1.30.1", 31: "1.31.1"}
KUBERNETES_CNI = {
    27: "1.2.0",
    28: "1.2.0",
    29: "1.3.0",
    30: "1.4.0",
    31: "1.5.1",
    32: "1.6.0",
    33: "1.6.0",
    34: "1.7.1",
    35: "1.7.1",
    36: "1.8.0",
    37: "1.8.0",
}
#: etcd, CoreDNS and pause image tags kubeadm deploys per minor (DefaultEtcdVersion /
#: SupportedEtcdVersion, CoreDNSVersion and PauseVersion in kubernetes/kubernetes
#: cmd/kubeadm/app/constants/constants.go at each release tag). Sources and what was read for
#: each row: the table in tests/simulator/README.md. kubeadm also moves etcd within a minor
#: (patch releases backport etcd bumps); one tag per minor is simulated, that of the patch
#: releases in RELEASES where it was read.
ETCD = {
    27: "3.5.7-0",
    28: "3.5.9-0",
    29: "3.5.10-0",
    30: "3.5.12-0",
    31: "3.5.15-0",
    32: "3.5.16-0",
    33: "3.5.21-0",
    34: "3.6.4-0",
    35: "3.6.6-0",
    36: "3.6.9-0",
    37: "3.7.0-0",
}
COREDNS = {
    27: "v1.10.1",
    28: "v1.10.1",
    29: "v1.11.1",
    30: "v1.11.1",
    31: "v1.11.3",
    32: "v1.11.3",
    33: "v1.12.0",
    34: "v1.12.1",
    35: "v1.13.1",
    36: "v1.13.1",
    37: "v1.14.4",
}
PAUSE = {m: ("3.9" if m <= 30 else "3.10" if m <= 33 else "3.10.1") for m in RELEASES}

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


class RuleError(Exception):
    """A documented rule of the real tool was violated; str() is the message to print."""


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _SEMVER.match(str(text).strip())
        if not m:
            raise RuleError(f'couldn\'t parse Kubernetes version "{text}"')
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)))

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"

    @property
    def plain(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def is_released(version: str) -> bool:
    """True when the simulated repository offers this exact patch release."""
    try:
        v = Version.parse(version)
    except RuleError:
        return False
    return v.major == 1 and v.plain in RELEASES.get(v.minor, ())


def deb_version(version: str) -> str:
    """'1.31.2' -> '1.31.2-1.1' (the Debian version pkgs.k8s.io uses)."""
    return f"{Version.parse(version).plain}-{DEB_REVISION}"


# --------------------------------------------------------------------------------------------
# Version skew
# --------------------------------------------------------------------------------------------


def max_kubelet_skew(apiserver: Version) -> int:
    """Minors a kubelet may lag kube-apiserver: 3 from 1.28, 2 before."""
    return 3 if (apiserver.major, apiserver.minor) >= (1, 28) else 2


def check_kubelet_skew(kubelet: Version, apiserver: Version, node: str = "") -> None:
    """Refuse a kubelet of a newer minor than the API server, or older than the skew policy
    allows. Minor versions only, as kubeadm's preflight KubeletVersionCheck compares them
    (kubernetes/kubernetes cmd/kubeadm/app/preflight/checks.go: `kubeletVersion.Major() >
    k8sVersion.Major() || kubeletVersion.Minor() > k8sVersion.Minor()`): a kubelet newer by a
    patch is accepted."""
    where = f' on node "{node}"' if node else ""
    if (kubelet.major, kubelet.minor) > (apiserver.major, apiserver.minor):
        raise RuleError(
            f"kubelet {kubelet}{where} is newer than kube-apiserver {apiserver}: "
            "the version skew policy never allows a kubelet newer than the API server"
        )
    skew = max_kubelet_skew(apiserver)
    if apiserver.minor - kubelet.minor > skew:
        raise RuleError(
            f"kubelet {kubelet}{where} is {apiserver.minor - kubelet.minor} minor versions older "
            f"than kube-apiserver {apiserver}; at most {skew} are supported"
        )


def kubectl_skew_warning(kubectl: Version, apiserver: Version) -> str | None:
    """The warning real kubectl prints when client and server differ by more than one minor."""
    if abs(kubectl.minor - apiserver.minor) > 1:
        return (
            f"WARNING: version difference between client ({kubectl.major}.{kubectl.minor}) and "
            f"server ({apiserver.major}.{apiserver.minor}) exceeds the supported minor version "
            "skew of +/-1"
        )
    return None


# --------------------------------------------------------------------------------------------
# kubeadm versions: init, upgrade apply, upgrade node, join
# --------------------------------------------------------------------------------------------

VERSION_LABELS = ("stable", "latest", "stable-1", "latest-1")


def resolve_init_version(requested: str | None, kubeadm: Version) -> Version:
    """The control plane version `kubeadm init` will deploy, or a refusal.

    Real kubeadm defaults kubernetesVersion to "stable-1" and resolves labels by fetching
    https://dl.k8s.io/release/<label>.txt; that answered 403 from OCI, and there is no network
    here, so the simulator refuses loudly whenever the real tool would go to the network.
    """
    if not requested or requested.startswith(("stable", "latest", "ci/", "release/")):
        label = requested or "stable-1"
        raise RuleError(
            f'[simulator] kubeadm would now fetch "https://dl.k8s.io/release/{label}.txt" to '
            f'resolve the Kubernetes version label "{label}": set an explicit '
            "ClusterConfiguration.kubernetesVersion (or --kubernetes-version vX.Y.Z)"
        )
    v = Version.parse(requested)
    minimum = Version(1, kubeadm.minor - 1, 0)
    if v < minimum:
        raise RuleError(
            "this version of kubeadm only supports deploying clusters with the control plane "
            f"version >= {minimum}. Current version: {v}"
        )
    if v.minor > kubeadm.minor:
        raise RuleError(
            f"the control plane version {v} is newer than kubeadm {kubeadm}; "
            "kubeadm cannot deploy a newer control plane (install kubeadm of that version)"
        )
    return v


def kubeadm_kubelet_skew(kubeadm: Version) -> int:
    """Minors a kubelet may lag the upgrade target in kubeadm's policy: 1 up to kubeadm 1.28,
    3 from 1.29 (kubernetes/kubernetes PR #120825 "kubeadm: adjust kubeadm skew policy for
    upgrades", released in 1.29; policy.go MaximumAllowedMinorVersionKubeletSkew was 1)."""
    return 3 if (kubeadm.major, kubeadm.minor) >= (1, 29) else 1


def _format_errs(errs: list[str]) -> str:
    """kubeadmutil.FormatErrMsg: one "\t- <error>\n" line per error."""
    return "".join(f"\t- {e}\n" for e in errs)


def check_upgrade_apply(
    cluster: Version,
    target: Version,
    kubeadm: Version,
    kubelets: dict[str, Version] | None = None,
    force: bool = False,
) -> None:
    """Refuse `kubeadm upgrade apply <target>` as kubeadm's version policy does.

    Source: kubernetes/kubernetes cmd/kubeadm/app/phases/upgrade/policy.go
    (EnforceVersionPolicies: Mandatory and Skippable errors) and
    cmd/kubeadm/app/cmd/phases/upgrade/apply/preflight.go (enforceVersionPolicies, 1.32+:
    mandatory errors always fail, skippable ones fail unless --force). Mandatory: more than one
    minor up ("too high"), more than one minor down ("too low" — a ONE-minor downgrade is not
    refused), a target minor above kubeadm's. Skippable: a target patch above kubeadm's
    ("Upgrade kubeadm first"), kubeadm of a newer minor than the target, kubelets too old
    (kubeadm_kubelet_skew). Stricter than kubeadm (said in the message): without --force the
    kubeadm binary must be exactly the target release.
    """
    mandatory: list[str] = []
    skippable: list[str] = []
    if target.major != cluster.major or target.minor > cluster.minor + 1:
        mandatory.append(
            f'Specified version to upgrade to "{target}" is too high; kubeadm can upgrade only '
            "1 minor version at a time"
        )
    if target.minor < cluster.minor - 1:
        mandatory.append(
            f'Specified version to downgrade to "{target}" is too low; kubeadm can downgrade '
            "only 1 minor version at a time"
        )
    if kubeadm < target:
        if target.minor > kubeadm.minor:
            mandatory.append(
                f'Specified version to upgrade to "{target}" is at least one minor release '
                f"higher than the kubeadm minor release ({target.minor} > {kubeadm.minor}). "
                "Such an upgrade is not supported"
            )
        else:
            skippable.append(
                f'Specified version to upgrade to "{target}" is higher than the kubeadm version '
                f'"{kubeadm}". Upgrade kubeadm first using the tool you used to install kubeadm'
            )
    if kubeadm.major > target.major or kubeadm.minor > target.minor:
        skippable.append(
            f"Kubeadm version {kubeadm} can only be used to upgrade to Kubernetes version "
            f"{kubeadm.major}.{kubeadm.minor}"
        )
    skew = kubeadm_kubelet_skew(kubeadm)
    too_old = sorted(
        {str(v) for v in (kubelets or {}).values() if target.minor > v.minor + skew}
    )
    if too_old:
        skippable.append(
            "There are kubelets in this cluster that are too old that have these versions "
            f"[{' '.join(too_old)}]"
        )
    if mandatory:
        raise RuleError(
            "the version argument is invalid due to these fatal errors:\n\n"
            f"{_format_errs(mandatory)}\nPlease fix the misalignments highlighted above and "
            "try upgrading again"
        )
    if skippable and not force:
        raise RuleError(
            "the version argument is invalid due to these errors:\n\n"
            f"{_format_errs(skippable)}\nCan be bypassed if you pass the --force flag"
        )
    if target != kubeadm and not force:
        raise RuleError(
            f'[simulator] kubeadm {kubeadm} must be exactly the target version "{target}": '
            "install the kubeadm package of the target version before `kubeadm upgrade apply` "
            "(stricter than kubeadm, which accepts an older target patch)"
        )


def health_check_timeout(kubeadm: Version) -> str:
    """The CreateJob check's timeout as kubeadm prints it: 15s (health.go `timeout = 15 *
    time.Second`), 1m0s from kubeadm 1.36 (kubernetes/kubernetes PR #136273 "kubeadm: bump
    the CreateJob check timeout to 1 minute", merged 2026-01-16 for 1.36)."""
    return "1m0s" if (kubeadm.major, kubeadm.minor) >= (1, 36) else "15s"


def health_check_errors(
    kubeadm: Version,
    not_ready_control_planes: list[str],
    job_completes: bool,
    job_name: str,
    missing_manifests: list[str],
) -> list[tuple[str, str]]:
    """`kubeadm upgrade plan|apply` preflight CheckClusterHealth (kubernetes/kubernetes
    cmd/kubeadm/app/phases/upgrade/health.go): CreateJob (a Job with the pause image in
    kube-system must complete within health_check_timeout), ControlPlaneNodesReady, and
    StaticPodManifest. (name, message) per failed check, as RunChecks reports them."""
    errors: list[tuple[str, str]] = []
    if not job_completes:
        errors.append((
            "CreateJob",
            f'Job "{job_name}" in the namespace "kube-system" did not complete in '
            f"{health_check_timeout(kubeadm)}: no condition of type Complete",
        ))
    if not_ready_control_planes:
        errors.append((
            "ControlPlaneNodesReady",
            "there are NotReady control-planes in the cluster: "
            f"[{' '.join(not_ready_control_planes)}]",
        ))
    if missing_manifests:
        errors.append((
            "StaticPodManifest",
            "The control plane seems to be Static Pod-hosted, but some of the manifests don't "
            "seem to exist on disk. This probably means you're running 'kubeadm upgrade' on a "
            "remote machine, which is not supported for a Static Pod-hosted cluster. Manifest "
            f"files not found: [{' '.join(missing_manifests)}]",
        ))
    return errors


def unupgraded_control_planes(apiserver_images: dict[str, str], node: str) -> list[str]:
    """The control-plane nodes whose kube-apiserver image differs from ``node``'s (already
    upgraded) one. Source: kubernetes/kubernetes cmd/kubeadm/app/phases/upgrade/
    postupgrade.go UnupgradedControlPlaneInstances (kube-apiserver Pods by label
    component=kube-apiserver, image per node compared with this node's), used by
    shouldUpgradeAddons in cmd/kubeadm/app/cmd/phases/upgrade/apply/addons.go and
    .../upgrade/node/addons.go: CoreDNS and kube-proxy are upgraded only when the list is
    empty, i.e. by the apply on a single control plane or by the LAST control plane's
    `upgrade node` in HA."""
    mine = apiserver_images.get(node)
    return sorted(n for n, image in apiserver_images.items() if n != node and image != mine)


def addons_skipped_message(nodes: list[str]) -> str:
    """The line kubeadm prints (apply/addons.go, node/addons.go; Go's %v of a []string)."""
    return (f"[upgrade/addon] Skipping upgrade of addons because control plane instances "
            f"[{' '.join(nodes)}] have not been upgraded")


def check_upgrade_node(cluster: Version, kubeadm: Version) -> None:
    """`kubeadm upgrade node` needs a kubeadm at the cluster's (already upgraded) minor.
    STRICTER than kubeadm, whose `upgrade node` has no kubeadm-vs-cluster version check
    (cmd/kubeadm/app/cmd/upgrade/node.go): kept so a product that forgets to install the
    kubeadm package before `upgrade node` fails here; the messages say "[simulator]"."""
    if kubeadm.minor < cluster.minor:
        raise RuleError(
            f"[simulator] kubeadm {kubeadm} is older than the cluster version {cluster}: "
            "upgrade kubeadm "
            "on this node to the cluster's version before `kubeadm upgrade node`"
        )
    if kubeadm.minor > cluster.minor:
        raise RuleError(
            f"[simulator] kubeadm {kubeadm} is newer than the cluster version {cluster}: run "
            f"`kubeadm upgrade apply {kubeadm}` on the first control-plane node first"
        )


def check_join_versions(cluster: Version, kubeadm: Version, kubelet: Version | None) -> None:
    """kubeadm join preflight: kubeadm within one minor of the cluster; KubeletVersion check."""
    if abs(kubeadm.minor - cluster.minor) > 1:
        raise RuleError(
            f"kubeadm {kubeadm} cannot join a cluster at {cluster}: kubeadm supports control "
            "planes one minor older or the same minor"
        )
    if kubelet is None:
        raise RuleError("[ERROR FileExisting-kubelet]: kubelet not found in system path")
    if (kubelet.major, kubelet.minor) > (cluster.major, cluster.minor):  # preflight/checks.go
        raise RuleError(
            "[ERROR KubeletVersion]: the kubelet version is higher than the control plane "
            "version. This is not a supported version skew and may lead to a malfunctional "
            f'cluster. Kubelet version: "{kubelet.plain}" Control plane version: "{cluster.plain}"'
        )
    check_kubelet_skew(kubelet, cluster)


# --------------------------------------------------------------------------------------------
# kubeadm configuration API: versions, kinds and known fields
# --------------------------------------------------------------------------------------------

KUBEADM_GROUP = "kubeadm.k8s.io"
OLD_KUBEADM_APIS = {
    "v1alpha1": "v1.11",
    "v1alpha2": "v1.12",
    "v1alpha3": "v1.14",
    "v1beta1": "v1.15",
    "v1beta2": "v1.22",
}

# A schema is {field: sub-schema}; "*" means any value (maps of free keys, e.g. featureGates);
# a list of objects is [schema].
ANY = "*"
_EXTRA_ARGS_MAP = ANY  # v1beta3: map[string]string
_EXTRA_ARGS_LIST = [{"name": ANY, "value": ANY}]  # v1beta4
_HOST_PATH_MOUNT = [
    {"name": ANY, "hostPath": ANY, "mountPath": ANY, "readOnly": ANY, "pathType": ANY}
]
_ENV = [{"name": ANY, "value": ANY, "valueFrom": ANY}]
_TAINT = [{"key": ANY, "value": ANY, "effect": ANY, "timeAdded": ANY}]
_BOOTSTRAP_TOKEN = [
    {"token": ANY, "description": ANY, "ttl": ANY, "expires": ANY, "usages": ANY, "groups": ANY}
]
_API_ENDPOINT = {"advertiseAddress": ANY, "bindPort": ANY}
_PATCHES = {"directory": ANY}


def _node_registration(v4: bool) -> dict:
    s = {
        "name": ANY,
        "criSocket": ANY,
        "taints": _TAINT,
        "kubeletExtraArgs": _EXTRA_ARGS_LIST if v4 else _EXTRA_ARGS_MAP,
        "ignorePreflightErrors": ANY,
        "imagePullPolicy": ANY,
    }
    if v4:
        s["imagePullSerial"] = ANY
    return s


def _control_plane_component(v4: bool, api_server: bool = False) -> dict:
    s: dict = {
        "extraArgs": _EXTRA_ARGS_LIST if v4 else _EXTRA_ARGS_MAP,
        "extraVolumes": _HOST_PATH_MOUNT,
    }
    if v4:
        s["extraEnvs"] = _ENV
    if api_server:
        s["certSANs"] = ANY
        if not v4:
            s["timeoutForControlPlane"] = ANY
    return s


def _timeouts() -> dict:
    return {
        k: ANY
        for k in (
            "controlPlaneComponentHealthCheck",
            "kubeletHealthCheck",
            "kubernetesAPICall",
            "etcdAPICall",
            "tlsBootstrap",
            "discovery",
            "upgradeManifests",
        )
    }


def kubeadm_schemas(api: str) -> dict[str, dict]:
    """Known fields of each kubeadm kind in API version 'v1beta3' or 'v1beta4'."""
    v4 = api == "v1beta4"
    local_etcd = {
        "imageRepository": ANY,
        "imageTag": ANY,
        "dataDir": ANY,
        "extraArgs": _EXTRA_ARGS_LIST if v4 else _EXTRA_ARGS_MAP,
        "serverCertSANs": ANY,
        "peerCertSANs": ANY,
    }
    if v4:
        local_etcd["extraEnvs"] = _ENV
    cluster = {
        "etcd": {
            "local": local_etcd,
            "external": {"endpoints": ANY, "caFile": ANY, "certFile": ANY, "keyFile": ANY},
        },
        "networking": {"serviceSubnet": ANY, "podSubnet": ANY, "dnsDomain": ANY},
        "kubernetesVersion": ANY,
        "controlPlaneEndpoint": ANY,
        "apiServer": _control_plane_component(v4, api_server=True),
        "controllerManager": _control_plane_component(v4),
        "scheduler": _control_plane_component(v4),
        "dns": {"imageRepository": ANY, "imageTag": ANY} | ({"disabled": ANY} if v4 else {}),
        "certificatesDir": ANY,
        "imageRepository": ANY,
        "featureGates": ANY,
        "clusterName": ANY,
    }
    if v4:
        cluster |= {
            "proxy": {"disabled": ANY},
            "encryptionAlgorithm": ANY,
            "certificateValidityPeriod": ANY,
            "caCertificateValidityPeriod": ANY,
        }
    init = {
        "bootstrapTokens": _BOOTSTRAP_TOKEN,
        "nodeRegistration": _node_registration(v4),
        "localAPIEndpoint": _API_ENDPOINT,
        "certificateKey": ANY,
        "skipPhases": ANY,
        "patches": _PATCHES,
    }
    discovery = {
        "bootstrapToken": {
            "token": ANY,
            "apiServerEndpoint": ANY,
            "caCertHashes": ANY,
            "unsafeSkipCAVerification": ANY,
        },
        "file": {"kubeConfigPath": ANY},
        "tlsBootstrapToken": ANY,
    }
    if not v4:
        discovery["timeout"] = ANY
    join = {
        "nodeRegistration": _node_registration(v4),
        "caCertPath": ANY,
        "discovery": discovery,
        "controlPlane": {"localAPIEndpoint": _API_ENDPOINT, "certificateKey": ANY},
        "skipPhases": ANY,
        "patches": _PATCHES,
    }
    if v4:
        init |= {"dryRun": ANY, "timeouts": _timeouts()}
        join |= {"dryRun": ANY, "timeouts": _timeouts()}
    schemas = {
        "InitConfiguration": init,
        "ClusterConfiguration": cluster,
        "JoinConfiguration": join,
    }
    if v4:
        schemas["ResetConfiguration"] = {
            "cleanupTmpDir": ANY,
            "certificatesDir": ANY,
            "criSocket": ANY,
            "dryRun": ANY,
            "force": ANY,
            "ignorePreflightErrors": ANY,
            "skipPhases": ANY,
            "unmountFlags": ANY,
        }
        schemas["UpgradeConfiguration"] = {
            "apply": ANY,
            "node": ANY,
            "plan": ANY,
            "diff": ANY,
            "timeouts": _timeouts(),
        }
    return schemas


#: KubeletConfiguration (kubelet.config.k8s.io/v1beta1) fields; value = first minor that has it.
KUBELET_FIELDS: dict[str, int] = dict.fromkeys(
    (  # noqa: SIM905
        "enableServer staticPodPath syncFrequency fileCheckFrequency httpCheckFrequency "
        "staticPodURL staticPodURLHeader address port readOnlyPort tlsCertFile tlsPrivateKeyFile "
        "tlsCipherSuites tlsMinVersion rotateCertificates serverTLSBootstrap authentication "
        "authorization registryPullQPS registryBurst eventRecordQPS eventBurst "
        "enableDebuggingHandlers enableContentionProfiling healthzPort healthzBindAddress "
        "oomScoreAdj clusterDomain clusterDNS streamingConnectionIdleTimeout "
        "nodeStatusUpdateFrequency nodeStatusReportFrequency nodeLeaseDurationSeconds "
        "imageMinimumGCAge imageGCHighThresholdPercent imageGCLowThresholdPercent "
        "volumeStatsAggPeriod kubeletCgroups systemCgroups cgroupRoot cgroupsPerQOS cgroupDriver "
        "cpuManagerPolicy cpuManagerPolicyOptions cpuManagerReconcilePeriod memoryManagerPolicy "
        "topologyManagerPolicy topologyManagerScope topologyManagerPolicyOptions qosReserved "
        "runtimeRequestTimeout hairpinMode maxPods podCIDR podPidsLimit resolvConf runOnce "
        "cpuCFSQuota cpuCFSQuotaPeriod nodeStatusMaxImages maxOpenFiles contentType kubeAPIQPS "
        "kubeAPIBurst serializeImagePulls maxParallelImagePulls evictionHard evictionSoft "
        "evictionSoftGracePeriod evictionPressureTransitionPeriod evictionMaxPodGracePeriod "
        "evictionMinimumReclaim podsPerCore enableControllerAttachDetach protectKernelDefaults "
        "makeIPTablesUtilChains iptablesMasqueradeBit iptablesDropBit featureGates failSwapOn "
        "memorySwap containerLogMaxSize containerLogMaxFiles "
        "configMapAndSecretChangeDetectionStrategy systemReserved kubeReserved reservedSystemCPUs "
        "showHiddenMetricsForVersion systemReservedCgroup kubeReservedCgroup "
        "enforceNodeAllocatable "
        "allowedUnsafeSysctls volumePluginDir providerID kernelMemcgNotification logging "
        "enableSystemLogHandler enableSystemLogQuery shutdownGracePeriod "
        "shutdownGracePeriodCriticalPods shutdownGracePeriodByPodPriority reservedMemory "
        "enableProfilingHandler enableDebugFlagsHandler seccompDefault memoryThrottlingFactor "
        "registerWithTaints registerNode tracing localStorageCapacityIsolation "
        "containerRuntimeEndpoint imageServiceEndpoint"
    ).split(),
    27,
) | {
    "imageMaximumGCAge": 29,
    "containerLogMaxWorkers": 30,
    "containerLogMonitorInterval": 30,
    "failCgroupV1": 31,
    "crashLoopBackOff": 32,
    "singleProcessOOMKill": 32,
    "userNamespaces": 30,
}

#: KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) fields.
KUBE_PROXY_FIELDS: dict[str, int] = dict.fromkeys(
    (  # noqa: SIM905
        "featureGates clientConnection hostnameOverride bindAddress healthzBindAddress "
        "metricsBindAddress bindAddressHardFail enableProfiling showHiddenMetricsForVersion mode "
        "iptables ipvs winkernel detectLocalMode detectLocal clusterCIDR nodePortAddresses "
        "oomScoreAdj conntrack configSyncPeriod portRange logging"
    ).split(),
    27,
) | {"nftables": 29, "linux": 32, "windows": 32, "syncPeriod": 32, "minSyncPeriod": 32}
KUBE_PROXY_SUB = {
    "ipvs": {
        "syncPeriod",
        "minSyncPeriod",
        "scheduler",
        "excludeCIDRs",
        "strictARP",
        "tcpTimeout",
        "tcpFinTimeout",
        "udpTimeout",
    },
    "iptables": {
        "masqueradeBit",
        "masqueradeAll",
        "localhostNodePorts",
        "syncPeriod",
        "minSyncPeriod",
    },
}
KUBE_PROXY_MODES = {"", "iptables", "ipvs", "nftables", "kernelspace"}


@dataclass
class ConfigCheck:
    """Result of validating a kubeadm --config file: documents by kind, and warnings."""

    documents: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _unknown_fields(obj: object, schema: object, path: str) -> list[str]:
    if schema == ANY or obj is None:
        return []
    if isinstance(schema, list):
        if not isinstance(obj, list):
            return [f"{path}: expected a list, got {type(obj).__name__}"]
        return [
            e
            for i, item in enumerate(obj)
            for e in _unknown_fields(item, schema[0], f"{path}[{i}]")
        ]
    if isinstance(schema, dict):
        if not isinstance(obj, dict):
            return [f"{path}: expected an object, got {type(obj).__name__}"]
        out = []
        for key, value in obj.items():
            if key not in schema:
                out.append(f'unknown field "{path}.{key}"' if path else f'unknown field "{key}"')
            else:
                out.extend(_unknown_fields(value, schema[key], f"{path}.{key}" if path else key))
        return out
    return []


def check_api_version(
    api_version: str, kind: str, kubeadm: Version, allow_experimental: bool = False
) -> str | None:
    """Refuse an apiVersion this kubeadm release does not read; return a warning or None."""
    group, _, ver = api_version.partition("/")
    if group != KUBEADM_GROUP:
        raise RuleError(f"unknown configuration APIs: {api_version}, Kind={kind}")
    if ver in OLD_KUBEADM_APIS:
        raise RuleError(
            f'your configuration file uses an old API spec: "{api_version}". Please use kubeadm '
            f"{OLD_KUBEADM_APIS[ver]} instead and run 'kubeadm config migrate --old-config "
            "old.yaml --new-config new.yaml', which will write the new, similar spec using a "
            "newer API version."
        )
    m = kubeadm.minor
    if ver == "v1beta3":
        if m >= 36:
            raise RuleError(
                f'your configuration file uses an old API spec: "{api_version}". Please use '
                "kubeadm v1.35 instead and run 'kubeadm config migrate --old-config old.yaml "
                "--new-config new.yaml', which will write the new, similar spec using a newer "
                "API version."
            )
        if m >= 31:
            return (
                f'your configuration file uses a deprecated API spec: "{api_version}" '
                f'(kind: "{kind}"). Please use \'kubeadm config migrate --old-config old.yaml '
                "--new-config new.yaml', which will write the new, similar spec using a newer "
                "API version."
            )
        return None
    if ver == "v1beta4":
        if m < 28:
            raise RuleError(f"unknown configuration APIs: {api_version}, Kind={kind}")
        if m <= 30 and not allow_experimental:
            raise RuleError(
                f'experimental API spec: "{api_version}" is not allowed. You can use the '
                "--allow-experimental-api flag if the command supports it."
            )
        return None
    raise RuleError(f"unknown configuration APIs: {api_version}, Kind={kind}")


def validate_kubeadm_config(
    docs: list[dict],
    kubeadm: Version,
    *,
    strict: bool = True,
    allow_experimental: bool = False,
    source: str = "<config>",
) -> ConfigCheck:
    """Check every document of a kubeadm --config file against kubeadm `kubeadm`'s schemas.

    `docs` are the parsed YAML documents (None/empty documents are skipped). Unknown fields are
    refused when `strict` (the simulator's default for every command, see the module doc).
    """
    result = ConfigCheck()
    problems: list[str] = []
    for doc in docs:
        if not doc:
            continue
        if not isinstance(doc, dict):
            raise RuleError(f"{source}: a document is not a YAML mapping")
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not api_version or not kind:
            raise RuleError(f"{source}: Object 'Kind' or 'apiVersion' is missing in '{doc}'")
        if kind in result.documents:
            raise RuleError(f"{source}: duplicate document of kind {kind}")
        body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
        if api_version == "kubelet.config.k8s.io/v1beta1" and kind == "KubeletConfiguration":
            problems += _component_unknown(body, KUBELET_FIELDS, kubeadm, kind)
        elif api_version == "kubeproxy.config.k8s.io/v1alpha1" and kind == "KubeProxyConfiguration":
            problems += _component_unknown(body, KUBE_PROXY_FIELDS, kubeadm, kind)
            for sub, known in KUBE_PROXY_SUB.items():
                for key in body.get(sub) or {}:
                    if key not in known:
                        problems.append(f'{kind}: unknown field "{sub}.{key}"')
            if body.get("mode", "") not in KUBE_PROXY_MODES:
                problems.append(f'{kind}: invalid value for "mode": {body.get("mode")!r}')
        else:
            warning = check_api_version(api_version, kind, kubeadm, allow_experimental)
            if warning:
                result.warnings.append(warning)
            schemas = kubeadm_schemas(api_version.split("/")[1])
            if kind not in schemas:
                raise RuleError(f"{source}: unknown configuration APIs: {api_version}, Kind={kind}")
            problems += [f"{kind}: {p}" for p in _unknown_fields(body, schemas[kind], "")]
        result.documents[kind] = doc
    if problems:
        text = "; ".join(problems)
        if strict:
            raise RuleError(f"{source}: strict decoding error: {text}")
        result.warnings.append(f"strict decoding error: {text}")
    return result


def _component_unknown(body: dict, known: dict[str, int], kubeadm: Version, kind: str) -> list[str]:
    out = []
    for key in body:
        since = known.get(key)
        if since is None:
            out.append(f'{kind}: unknown field "{key}"')
        elif kubeadm.minor < since:
            out.append(f'{kind}: unknown field "{key}" (added in v1.{since})')
    return out


def expected_kubeadm_api(version: Version) -> str:
    """The kubeadm config API a release expects: v1beta3 through 1.30, v1beta4 from 1.31."""
    return "kubeadm.k8s.io/v1beta4" if version.minor >= 31 else "kubeadm.k8s.io/v1beta3"


# --------------------------------------------------------------------------------------------
# Drain and PodDisruptionBudgets
# --------------------------------------------------------------------------------------------


@dataclass
class DrainPlan:
    evict: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _pod_ref(pod: dict) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def plan_drain(
    pods: list[dict], *, force: bool, ignore_daemonsets: bool, delete_emptydir_data: bool
) -> DrainPlan:
    """kubectl's drain filters over the pods of one node (Kubernetes Pod objects)."""
    plan = DrainPlan()
    daemon_err, daemon_warn, bare_err, bare_warn, local_err, local_warn = ([] for _ in range(6))
    for pod in pods:
        meta = pod["metadata"]
        if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
            continue  # static pods are never evicted
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            plan.evict.append(pod)
            continue
        owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
        ref = _pod_ref(pod)
        if owners and owners[0]["kind"] == "DaemonSet":
            (daemon_warn if ignore_daemonsets else daemon_err).append(ref)
            continue
        ok = True
        if not owners:
            if force:
                bare_warn.append(ref)
            else:
                bare_err.append(ref)
                ok = False
        if any("emptyDir" in v for v in pod.get("spec", {}).get("volumes") or []):
            if delete_emptydir_data:
                local_warn.append(ref)
            else:
                local_err.append(ref)
                ok = False
        if ok:
            plan.evict.append(pod)
    if bare_err:
        plan.errors.append(
            "cannot delete Pods that declare no controller (use --force to "
            f"override): {', '.join(bare_err)}"
        )
    if daemon_err:
        plan.errors.append(
            "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to "
            f"ignore): {', '.join(daemon_err)}"
        )
    if local_err:
        plan.errors.append(
            "cannot delete Pods with local storage (use --delete-emptydir-data "
            f"to override): {', '.join(local_err)}"
        )
    if daemon_warn:
        plan.warnings.append(f"ignoring DaemonSet-managed Pods: {', '.join(daemon_warn)}")
    if bare_warn:
        plan.warnings.append(f"deleting Pods that declare no controller: {', '.join(bare_warn)}")
    if local_warn:
        plan.warnings.append(f"deleting Pods with local storage: {', '.join(local_warn)}")
    return plan


def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """matchLabels / matchExpressions (In, NotIn, Exists, DoesNotExist) over labels."""
    if selector is None:
        return False  # a PDB with a null selector selects nothing (policy/v1)
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _scaled(value: int | str, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def pdb_status(pdb: dict, pods: list[dict]) -> tuple[int, int, int]:
    """(currentHealthy, desiredHealthy, disruptionsAllowed) of a policy/v1 PDB over the pods,
    as the disruption controller computes them (healthy = Ready)."""
    ns = pdb["metadata"]["namespace"]
    selected = [
        p
        for p in pods
        if p["metadata"]["namespace"] == ns
        and selector_matches(pdb["spec"].get("selector"), p["metadata"].get("labels"))
    ]
    expected = len(selected)
    healthy = sum(1 for p in selected if pod_ready(p))
    spec = pdb["spec"]
    if spec.get("maxUnavailable") is not None:
        desired = expected - _scaled(spec["maxUnavailable"], expected)
    else:
        desired = _scaled(spec.get("minAvailable", 1), expected)
    desired = max(0, desired)
    return healthy, desired, max(0, healthy - desired)


def disruptions_allowed(pdb: dict, pods: list[dict]) -> int:
    """status.disruptionsAllowed of a policy/v1 PodDisruptionBudget over the given pods."""
    return pdb_status(pdb, pods)[2]


def pod_ready(pod: dict) -> bool:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


class EvictionError(RuleError):
    """An eviction the API refuses; ``code`` is the HTTP status (429 or 500)."""

    def __init__(self, message: str, code: int, reason: str) -> None:
        super().__init__(message)
        self.code, self.reason = code, reason


def check_eviction(pod: dict, pdbs: list[dict], pods: list[dict]) -> None:
    """Refuse an eviction as the API server's eviction subresource does.

    Source: kubernetes/kubernetes pkg/registry/core/pod/storage/eviction.go (EvictionREST.Create,
    canIgnorePDB, getPodDisruptionBudgets, checkAndDecrement; the unhealthyPodEvictionPolicy
    branch is GA since 1.31, KEP-3017):
    * a Pending, Succeeded or Failed pod, or one already terminating, is deleted without
      looking at PDBs;
    * a PDB whose selector is nil or empty matches nothing;
    * more than one matching PDB: 500 "This pod has more than one PodDisruptionBudget, which
      the eviction subresource does not support.";
    * a pod that is not Ready is deleted when its PDB has unhealthyPodEvictionPolicy
      AlwaysAllow, or (IfHealthyBudget, the default) when currentHealthy >= desiredHealthy > 0;
      otherwise, like a Ready pod, it needs disruptionsAllowed > 0;
    * disruptionsAllowed == 0: 429 "Cannot evict pod as it would violate the pod's disruption
      budget." with the cause "The disruption budget NAME needs D healthy pods and has C
      currently".
    """
    status = pod.get("status") or {}
    if status.get("phase") in ("Pending", "Succeeded", "Failed") or pod["metadata"].get(
        "deletionTimestamp"
    ):
        return
    matching = [
        pdb
        for pdb in pdbs
        if pdb["metadata"]["namespace"] == pod["metadata"]["namespace"]
        and pdb["spec"].get("selector")  # nil or empty selects nothing here
        and selector_matches(pdb["spec"].get("selector"), pod["metadata"].get("labels"))
    ]
    if len(matching) > 1:
        raise EvictionError(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource "
            "does not support.",
            500,
            "InternalError",
        )
    if not matching:
        return
    pdb = matching[0]
    current, desired, allowed = pdb_status(pdb, pods)
    if not pod_ready(pod):
        if pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
            return
        if current >= desired and desired > 0:
            return
    if allowed <= 0:
        raise EvictionError(
            "Cannot evict pod as it would violate the pod's disruption budget. (cause: The "
            f"disruption budget {pdb['metadata']['name']} needs {desired} healthy pods and has "
            f"{current} currently)",
            429,
            "TooManyRequests",
        )


# --------------------------------------------------------------------------------------------
# Quantities used by the server
# --------------------------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """'90s', '5m', '1m30s', '0' -> seconds (kubectl --timeout)."""
    text = str(text).strip()
    if text in ("0", ""):
        return 0.0
    total, found = 0.0, False
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text):
        found = True
        total += float(num) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    if not found or re.sub(r"(\d+(?:\.\d+)?)(ms|h|m|s)", "", text):
        raise RuleError(f'invalid duration "{text}"')
    return total


# --------------------------------------------------------------------------------------------
# Job updates
# --------------------------------------------------------------------------------------------

#: Immutable Job spec fields and the Go type the API server names in its message.
JOB_IMMUTABLE = (
    ("selector", "v1.LabelSelector"),
    ("completions", "int32"),
    ("template", "core.PodTemplateSpec"),
)


def job_ttl_expired(job: dict, now: float, finished_at: float | None) -> bool:
    """The TTL-after-finished controller (batch/v1 ``spec.ttlSecondsAfterFinished``, GA in
    1.23; kubernetes/kubernetes pkg/controller/ttlafterfinished): a finished Job is deleted
    (with its pods) once ``ttlSecondsAfterFinished`` seconds have passed since it finished;
    0 deletes it as soon as it finished. No TTL, or a Job not finished (``finished_at`` None):
    kept. The API server refuses a negative TTL, so a value that is not a non-negative integer
    is treated as none here."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if finished_at is None or isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
        return False
    return now >= finished_at + ttl


def job_update_causes(current: dict, new: dict) -> list[dict]:
    """The StatusCauses of the API server's refusal of an update of a batch/v1 Job that
    changes an immutable field (empty: the update is allowed)."""
    old_spec, new_spec = current.get("spec") or {}, new.get("spec") or {}
    causes = []
    for name, go_type in JOB_IMMUTABLE:
        if old_spec.get(name) != new_spec.get(name):
            value = new_spec.get(name)
            shown = str(value) if name == "completions" else f"{go_type}{{{value!r}}}"
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "field": f"spec.{name}",
                    "message": f"Invalid value: {shown}: field is immutable",
                }
            )
    return causes
