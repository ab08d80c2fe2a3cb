"""Simulated `kubeadm`: validates its config like the real release, writes the real files,
and performs the cluster side of init/join/upgrade on the simulated API server.

Installed as /usr/bin/kubeadm by the kubeadm .deb; `main(argv, version)` gets the package's
version. Exit codes follow kubeadm: 0 ok, 1 error.
"""

from __future__ import annotations

import argparse
import base64
import glob
import os
import platform
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml

from . import pki, rules
from .client import (
    Api,
    ApiFailure,
    err,
    host_path,
    kubeconfig_server,
    load_yaml_documents,
    node_name,
    sim_server_url,
    write_file,
)
from .rules import RuleError, Version

K8S = "/etc/kubernetes"
MANIFESTS = f"{K8S}/manifests"
KUBELET_DIR = "/var/lib/kubelet"
DEFAULT_CRI = "unix:///var/run/containerd/containerd.sock"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


class Fail(Exception):
    """Print the message and exit 1 (kubeadm's behaviour on any error)."""


def out(text: str = "") -> None:
    print(text, flush=True)


# ----------------------------------------------------------------------------- config
def _extra_args(value: Any) -> dict:
    if isinstance(value, list):
        return {a["name"]: a.get("value", "") for a in value}
    return dict(value or {})


def load_config(path: str | None, kubeadm: Version, allow_experimental: bool) -> dict[str, dict]:
    if not path:
        return {}
    try:
        docs = load_yaml_documents(path)
    except (OSError, yaml.YAMLError) as exc:
        raise Fail(f"unable to read config from {path!r}: {exc}") from None
    try:
        check = rules.validate_kubeadm_config(
            docs, kubeadm, strict=False, allow_experimental=allow_experimental, source=path
        )
    except RuleError as exc:
        raise Fail(str(exc)) from None
    strict_problems = [w for w in check.warnings if w.startswith("strict decoding error")]
    for w in check.warnings:
        err(f"W{time.strftime('%m%d %H:%M:%S')}    1234 common.go:101] {w}")
    if strict_problems:
        raise Fail(
            f"[simulator] refusing {path}: {strict_problems[0]} (real kubeadm init/join "
            "only warns; `kubeadm config validate` fails the same way)"
        )
    return check.documents


def sim_settings(api: Api) -> dict:
    try:
        return api.get("/sim/settings")
    except ApiFailure:
        return {}


# ----------------------------------------------------------------------------- preflight
def preflight(
    args: argparse.Namespace,
    api: Api,
    cri: str,
    kubeadm: Version,
    control_plane: Version | None,
    checks: list[str],
) -> None:
    out("[preflight] Running pre-flight checks")
    ignored = {
        s.lower()
        for s in ",".join(getattr(args, "ignore_preflight_errors", None) or []).split(",")
        if s
    }
    errors: list[tuple[str, str]] = []
    if not os.environ.get("SIM_ROOT") and os.geteuid() != 0:
        errors.append(("IsPrivilegedUser", "user is not running as root"))
    if "manifests" in checks:
        for comp in (*COMPONENTS, "etcd"):
            p = f"{MANIFESTS}/{comp}.yaml"
            if os.path.exists(host_path(p)):
                errors.append((f"FileAvailable-{p.replace('/', '-')}", f"{p} already exists"))
    if "kubelet.conf" in checks and os.path.exists(host_path(f"{K8S}/kubelet.conf")):
        errors.append(
            ("FileAvailable--etc-kubernetes-kubelet.conf", f"{K8S}/kubelet.conf already exists")
        )
    problem = cri_problem(api, cri)
    if problem:
        errors.append(("CRI", f"container runtime is not running: output: {problem}"))
    kubelet = kubelet_version()
    if kubelet is None:
        errors.append(("FileExisting-kubelet", "kubelet not found in system path"))
    elif control_plane is not None:
        if kubelet > control_plane:
            errors.append(
                (
                    "KubeletVersion",
                    "the kubelet version is higher than the control "
                    "plane version. This is not a supported version skew and may lead to "
                    f'a malfunctional cluster. Kubelet version: "{kubelet.plain}" Control '
                    f'plane version: "{control_plane.plain}"',
                )
            )
        elif control_plane.minor - kubelet.minor > rules.max_kubelet_skew(control_plane):
            errors.append(
                (
                    "KubeletVersion",
                    f'Kubelet version "{kubelet.plain}" is lower than '
                    "kubeadm can support. Please upgrade kubelet",
                )
            )
    real = [(n, m) for n, m in errors if n.lower() not in ignored and "all" not in ignored]
    for n, m in errors:
        if (n, m) not in real:
            out(f"\t[WARNING {n}]: {m}")
    if real:
        text = "\n".join(f"\t[ERROR {n}]: {m}" for n, m in real)
        raise Fail(
            "[preflight] Some fatal errors occurred:\n"
            + text
            + "\n[preflight] If you know what you are doing, you can make a check non-fatal "
            "with `--ignore-preflight-errors=...`\nTo see the stack trace of this error "
            "execute with --v=5 or higher"
        )


def cri_problem(api: Api, cri: str) -> str | None:
    """Why the CRI socket is unusable (None when it is a socket, or the check is off)."""
    if not sim_settings(api).get("require_cri", True) or os.environ.get("SIM_ROOT"):
        return None
    sock = cri.replace("unix://", "")
    if os.path.exists(sock) and stat.S_ISSOCK(os.stat(sock).st_mode):
        return None
    return (
        f'validate service connection: validate CRI v1 runtime API for endpoint "{cri}": '
        f"rpc error: code = Unavailable desc = connection error: dial unix {sock}: connect: "
        "no such file or directory"
    )


def key_algorithm(api: Api, ccfg: dict) -> str:
    """ECDSA P-256 keys unless the simulator is told to honour encryptionAlgorithm (RSA-2048
    keys take about a second each to generate here, and a control plane needs fifteen)."""
    if sim_settings(api).get("faithful_key_algorithm"):
        return ccfg.get("encryptionAlgorithm", "RSA")
    return "ECDSA"


def kubelet_version() -> Version | None:
    exe = os.environ.get("SIM_KUBELET") or shutil.which("kubelet")
    if not exe:
        return None
    try:
        text = subprocess.run([exe, "--version"], capture_output=True, text=True,
                              timeout=120).stdout
        return Version.parse(text.split()[-1])
    except (OSError, subprocess.SubprocessError, RuleError, IndexError):
        return None


# ----------------------------------------------------------------------------- files
def kubeconfig(server: str, user: str, ca_b64: str, cert: tuple[str, str] | None) -> str:
    cfg: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubernetes",
                "cluster": {"certificate-authority-data": ca_b64, "server": server},
            }
        ],
        "contexts": [
            {"name": f"{user}@kubernetes", "context": {"cluster": "kubernetes", "user": user}}
        ],
        "current-context": f"{user}@kubernetes",
        "preferences": {},
        "users": [{"name": user, "user": {}}],
    }
    if cert:
        cfg["users"][0]["user"] = {"client-certificate-data": cert[0], "client-key-data": cert[1]}
    return yaml.safe_dump(cfg, sort_keys=False)


def write_kubeconfigs(
    server: str, algorithm: str, version: Version, node: str, control_plane: bool
) -> None:
    with open(host_path(f"{pki.PKI}/ca.crt"), "rb") as fh:
        ca_b64 = base64.b64encode(fh.read()).decode()
    files = [("kubelet.conf", f"system:node:{node}", f"/O=system:nodes/CN=system:node:{node}")]
    if control_plane:
        admin_org = "kubeadm:cluster-admins" if version.minor >= 29 else "system:masters"
        files += [
            ("admin.conf", "kubernetes-admin", f"/O={admin_org}/CN=kubernetes-admin"),
            (
                "controller-manager.conf",
                "system:kube-controller-manager",
                "/CN=system:kube-controller-manager",
            ),
            ("scheduler.conf", "system:kube-scheduler", "/CN=system:kube-scheduler"),
        ]
        if version.minor >= 29:
            files.append(
                (
                    "super-admin.conf",
                    "kubernetes-super-admin",
                    "/O=system:masters/CN=kubernetes-super-admin",
                )
            )
    todo = [f for f in files if not os.path.exists(host_path(f"{K8S}/{f[0]}"))]
    with ThreadPoolExecutor(max_workers=4) as pool:
        certs = list(
            pool.map(lambda f: pki.client_cert_b64(f[0].split(".")[0], f[2], algorithm), todo)
        )
    for (name, user, _), cert in zip(todo, certs, strict=True):
        out(f'[kubeconfig] Writing "{name}" kubeconfig file')
        write_file(f"{K8S}/{name}", kubeconfig(server, user, ca_b64, cert), 0o600)


def static_pods(ccfg: dict, version: Version, advertise: str, port: int) -> None:
    repo = ccfg.get("imageRepository") or "registry.k8s.io"
    net = ccfg.get("networking") or {}
    common = {
        "apiServer": "kube-apiserver",
        "controllerManager": "kube-controller-manager",
        "scheduler": "kube-scheduler",
    }
    for key, comp in common.items():
        section = ccfg.get(key) or {}
        flags = {
            "kube-apiserver": {
                "advertise-address": advertise,
                "secure-port": str(port),
                "service-cluster-ip-range": net.get("serviceSubnet", "10.96.0.0/12"),
                "etcd-servers": "https://127.0.0.1:2379",
            },
            "kube-controller-manager": {
                "cluster-cidr": net.get("podSubnet", ""),
                "allocate-node-cidrs": "true" if net.get("podSubnet") else "false",
            },
            "kube-scheduler": {},
        }[comp]
        flags.update(_extra_args(section.get("extraArgs")))
        write_manifest(comp, f"{repo}/{comp}:{version}", flags, advertise, port)
    local = (ccfg.get("etcd") or {}).get("local")
    if (ccfg.get("etcd") or {}).get("external") is None:
        tag = (local or {}).get("imageTag") or rules.ETCD[version.minor]
        write_manifest(
            "etcd",
            f"{repo}/etcd:{tag}",
            {
                "advertise-client-urls": f"https://{advertise}:2379",
                "data-dir": (local or {}).get("dataDir", "/var/lib/etcd"),
                **_extra_args((local or {}).get("extraArgs")),
            },
            advertise,
            port,
        )


def write_manifest(comp: str, image: str, flags: dict, advertise: str, port: int) -> None:
    ann = {}
    if comp == "kube-apiserver":
        ann["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"] = (
            f"{advertise}:{port}"
        )
    if comp == "etcd":
        ann["kubeadm.kubernetes.io/etcd.advertise-client-urls"] = f"https://{advertise}:2379"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": ann,
            "labels": {"component": comp, "tier": "control-plane"},
            "name": comp,
            "namespace": "kube-system",
        },
        "spec": {
            "containers": [
                {
                    "command": [comp.replace("etcd", "etcd")]
                    + [f"--{k}={v}" for k, v in flags.items()],
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "name": comp,
                }
            ],
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
        },
        "status": {},
    }
    write_file(f"{MANIFESTS}/{comp}.yaml", yaml.safe_dump(pod, sort_keys=False), 0o600)


#: kubeadm stopped passing --pod-infra-container-image to the kubelet in 1.35 and removes it
#: from kubeadm-flags.env on upgrade (kubernetes/kubernetes PR #133778); the kubelet removed
#: the flag in 1.35 (PR #133779, cli_kubelet.REMOVED_FLAGS).
POD_INFRA_FLAG_LAST_MINOR = 34


def write_kubelet_files(
    kcfg: dict, node: str, cri: str, name_override: bool, extra: Any, pause: str,
    kubeadm: Version | None = None,
) -> None:
    cfg = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "clusterDNS": ["10.96.0.10"],
        "clusterDomain": "cluster.local",
        "staticPodPath": MANIFESTS,
        "rotateCertificates": True,
    }
    cfg.update({k: v for k, v in (kcfg or {}).items() if k not in ("apiVersion", "kind")})
    out(f'[kubelet-start] Writing kubelet configuration to file "{KUBELET_DIR}/config.yaml"')
    write_file(f"{KUBELET_DIR}/config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    flags = [f"--container-runtime-endpoint={cri}"]
    if kubeadm is None or kubeadm.minor <= POD_INFRA_FLAG_LAST_MINOR:
        flags.append(f"--pod-infra-container-image={pause}")
    if name_override:
        flags.append(f"--hostname-override={node}")
    flags += [f"--{k}={v}" for k, v in _extra_args(extra).items()]
    out(
        f"[kubelet-start] Writing kubelet environment file with flags to file "
        f'"{KUBELET_DIR}/kubeadm-flags.env"'
    )
    write_file(f"{KUBELET_DIR}/kubeadm-flags.env", f'KUBELET_KUBEADM_ARGS="{" ".join(flags)}"\n')


def drop_pod_infra_flag(kubeadm: Version) -> None:
    """`kubeadm upgrade apply|node` from 1.35 removes --pod-infra-container-image from
    kubeadm-flags.env (PR #133778), so the 1.35 kubelet can start."""
    if kubeadm.minor <= POD_INFRA_FLAG_LAST_MINOR:
        return
    path = host_path(f"{KUBELET_DIR}/kubeadm-flags.env")
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    cleaned = re.sub(r"\s*--pod-infra-container-image=\S+?(?=[\s\"])", "", text)
    if cleaned != text:
        write_file(f"{KUBELET_DIR}/kubeadm-flags.env", cleaned)
        out("[upgrade] Removed the --pod-infra-container-image flag from "
            f'"{KUBELET_DIR}/kubeadm-flags.env"')


def restart_kubelet() -> None:
    out("[kubelet-start] Starting the kubelet")
    hook = os.environ.get("SIM_RESTART_KUBELET")  # local test runs: the test's supervisor
    if hook:
        subprocess.run(hook, shell=True, check=False)
        return
    if os.environ.get("SIM_ROOT") or os.environ.get("SIM_NO_SYSTEMD"):
        return
    subprocess.run(["systemctl", "restart", "kubelet"], check=False)


def wait_for(api: Api, node: str, want: dict[str, str], timeout: float, what: str) -> None:
    """Wait until `node`'s kubelet reports the static pods `want` (component -> image)."""
    deadline = time.time() + timeout
    start = time.time()
    while time.time() < deadline:
        try:
            pods = api.get(
                f"/api/v1/namespaces/kube-system/pods?fieldSelector=spec.nodeName={node}"
            )
            have = {
                p["metadata"]["labels"].get("component"): p["spec"]["containers"][0]["image"]
                for p in pods["items"]
            }
            if all(have.get(c) == img for c, img in want.items()) and api.get(
                f"/api/v1/nodes/{node}"
            ):
                out(
                    f"[{what}] All control plane components are healthy after "
                    f"{time.time() - start:.6f} seconds"
                )
                return
        except ApiFailure:
            pass
        time.sleep(0.3)
    raise Fail(
        f"[{what}] timed out waiting for the condition\n\nUnfortunately, an error has "
        "occurred:\n\ttimed out waiting for the condition\n\nThis error is likely caused "
        "by:\n\t- The kubelet is not running\n\t- The kubelet is unhealthy due to a "
        "misconfiguration of the node in some way (required cgroups disabled)\n\nIf you "
        "are on a systemd-powered system, you can try to troubleshoot the error with the "
        "following commands:\n\t- 'systemctl status kubelet'\n\t- 'journalctl -xeu kubelet'"
    )


def wait_node(api: Api, node: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            api.get(f"/api/v1/nodes/{node}")
            return
        except ApiFailure:
            time.sleep(0.3)
    raise Fail(
        f"[kubelet-start] timed out waiting for the kubelet to register node {node!r}: "
        "error execution phase kubelet-start: The kubelet is not running or unhealthy"
    )


def expected_static(ccfg: dict, version: Version) -> dict[str, str]:
    repo = ccfg.get("imageRepository") or "registry.k8s.io"
    want = {c: f"{repo}/{c}:{version}" for c in COMPONENTS}
    return want


# ----------------------------------------------------------------------------- commands
def cmd_init(args: argparse.Namespace, kubeadm: Version) -> None:
    api = Api(sim_server_url())
    if args.phase:
        return cmd_init_phase(args, kubeadm, api)
    docs = load_config(args.config, kubeadm, args.allow_experimental_api)
    icfg, ccfg = docs.get("InitConfiguration", {}), dict(docs.get("ClusterConfiguration", {}))
    requested = args.kubernetes_version or ccfg.get("kubernetesVersion")
    try:
        version = rules.resolve_init_version(requested, kubeadm)
    except RuleError as exc:
        raise Fail(str(exc)) from None
    out(f"[init] Using Kubernetes version: {version}")
    reg = icfg.get("nodeRegistration") or {}
    cri = reg.get("criSocket") or DEFAULT_CRI
    preflight(args, api, cri, kubeadm, version, ["manifests", "kubelet.conf"])
    fault = api.fault("kubeadm-init-local", node_name(args.node_name or reg.get("name")))
    if fault:
        raise Fail(fault)
    node = node_name(args.node_name or reg.get("name"))
    endpoint = icfg.get("localAPIEndpoint") or {}
    advertise = args.apiserver_advertise_address or endpoint.get("advertiseAddress") or host_ip()
    port = int(endpoint.get("bindPort") or 6443)
    if args.control_plane_endpoint:
        ccfg["controlPlaneEndpoint"] = args.control_plane_endpoint
    if args.pod_network_cidr:
        ccfg.setdefault("networking", {})["podSubnet"] = args.pod_network_cidr
    ccfg.setdefault("networking", {}).setdefault("serviceSubnet", "10.96.0.0/12")
    ccfg.setdefault("networking", {}).setdefault("dnsDomain", "cluster.local")
    ccfg.setdefault("imageRepository", "registry.k8s.io")
    ccfg.setdefault("certificatesDir", pki.PKI)
    ccfg.setdefault("clusterName", "kubernetes")
    ccfg["apiVersion"] = rules.expected_kubeadm_api(kubeadm)
    ccfg["kind"] = "ClusterConfiguration"
    out("[preflight] Pulling images required for setting up a Kubernetes cluster")
    algorithm = key_algorithm(api, ccfg)
    out(f'[certs] Using certificateDir folder "{pki.PKI}"')
    pki.control_plane_certs(
        node,
        advertise,
        (ccfg.get("apiServer") or {}).get("certSANs") or [],
        "10.96.0.1",
        algorithm,
        out,
    )
    write_kubeconfigs(api.url, algorithm, version, node, control_plane=True)
    out(f'[etcd] Creating static Pod manifest for local etcd in "{MANIFESTS}"')
    static_pods(ccfg, version, advertise, port)
    for comp in COMPONENTS:
        out(f'[control-plane] Creating static Pod manifest for "{comp}"')
    write_kubelet_files(
        docs.get("KubeletConfiguration", {}),
        node,
        cri,
        bool(reg.get("name") or args.node_name),
        reg.get("kubeletExtraArgs"),
        f"registry.k8s.io/pause:{rules.PAUSE[version.minor]}",
        kubeadm=kubeadm,
    )
    with open(host_path(f"{pki.PKI}/ca.crt"), encoding="utf-8") as fh:
        ca_pem = fh.read()
    cpe = ccfg.get("controlPlaneEndpoint") or f"{advertise}:{port}"
    upload = None
    if args.upload_certs:
        upload = {"key": args.certificate_key or os.urandom(32).hex(), "certs": pki.read_shared()}
    tokens = icfg.get("bootstrapTokens") or [{}]
    try:
        answer = api.post(
            "/sim/kubeadm/init",
            {
                "node": node,
                "version": str(version),
                "cluster_configuration": ccfg,
                "kubelet_configuration": docs.get("KubeletConfiguration", {}),
                "kube_proxy_configuration": docs.get("KubeProxyConfiguration", {}),
                "ca_cert": ca_pem,
                "endpoint": cpe,
                "taints": reg.get("taints"),
                "token": tokens[0].get("token"),
                "token_ttl": tokens[0].get("ttl", "24h"),
                "upload_certs": upload,
            },
        )
    except ApiFailure as exc:
        raise Fail(f"error execution phase upload-config: {exc.message}") from None
    restart_kubelet()
    out(
        f"[wait-control-plane] Waiting for the kubelet to boot up the control plane as static "
        f'Pods from directory "{MANIFESTS}"'
    )
    wait_for(api, node, expected_static(ccfg, version), args.timeout, "apiclient")
    out(
        '[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the '
        '"kube-system" Namespace'
    )
    if upload:
        out(
            '[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the '
            '"kube-system" Namespace'
        )
        out(f"[upload-certs] Using certificate key:\n{upload['key']}")
    out(
        f"[mark-control-plane] Marking the node {node} as control-plane by adding the labels: "
        "[node-role.kubernetes.io/control-plane node.kubernetes.io/exclude-from-external-load-"
        "balancers]"
    )
    out(f"[bootstrap-token] Using token: {answer['token']}")
    out("[addons] Applied essential addon: CoreDNS")
    out("[addons] Applied essential addon: kube-proxy")
    ca_hash = pki.ca_cert_hash(ca_pem.encode())
    out("\nYour Kubernetes control-plane has initialized successfully!\n")
    out("To start using your cluster, you need to run the following as a regular user:\n")
    out(
        "  mkdir -p $HOME/.kube\n  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config\n"
        "  sudo chown $(id -u):$(id -g) $HOME/.kube/config\n"
    )
    out("Then you can join any number of worker nodes by running the following on each as root:\n")
    out(
        f"kubeadm join {cpe} --token {answer['token']} \\\n\t--discovery-token-ca-cert-hash "
        f"{ca_hash}"
    )


def cmd_init_phase(args: argparse.Namespace, kubeadm: Version, api: Api) -> None:
    if args.phase[1:] != ["upload-certs"]:
        raise Fail(f"[simulator] kubeadm init phase {' '.join(args.phase)} is not simulated")
    if not args.upload_certs:
        out("[upload-certs] Skipping phase. Please see --upload-certs")
        return
    key = args.certificate_key or os.urandom(32).hex()
    try:
        api.post(
            "/sim/kubeadm/upload-certs",
            {"key": key, "certs": pki.read_shared(), "node": node_name(args.node_name)},
        )
    except ApiFailure as exc:
        raise Fail(f"error execution phase upload-certs: {exc.message}") from None
    out(
        '[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" '
        "Namespace"
    )
    out("[upload-certs] Using certificate key:")
    out(key)


def cmd_join(args: argparse.Namespace, kubeadm: Version) -> None:
    api = Api(sim_server_url())
    docs = load_config(args.config, kubeadm, args.allow_experimental_api)
    jcfg = docs.get("JoinConfiguration", {})
    bt = (jcfg.get("discovery") or {}).get("bootstrapToken") or {}
    endpoint = args.endpoint or bt.get("apiServerEndpoint")
    token = args.token or args.discovery_token or bt.get("token")
    hashes = args.discovery_token_ca_cert_hash or bt.get("caCertHashes") or []
    unsafe = args.discovery_token_unsafe_skip_ca_verification or bt.get("unsafeSkipCAVerification")
    cp = jcfg.get("controlPlane")
    control_plane = args.control_plane or cp is not None
    cert_key = args.certificate_key or (cp or {}).get("certificateKey")
    reg = jcfg.get("nodeRegistration") or {}
    node = node_name(args.node_name or reg.get("name"))
    if not endpoint or not token:
        raise Fail('discovery: Invalid value: "": bootstrapToken or file must be set')
    if not hashes and not unsafe:
        raise Fail(
            'discovery.bootstrapToken: Invalid value: "": using token-based discovery '
            "without caCertHashes can be unsafe. Set unsafeSkipCAVerification as true in "
            "your kubeadm config file or pass --discovery-token-unsafe-skip-ca-verification "
            "flag to continue"
        )
    out("[preflight] Running pre-flight checks")
    try:
        info = api.get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
    except ApiFailure as exc:
        raise Fail(f"couldn't validate the identity of the API Server: {exc.message}") from None
    ca_pem = info["data"]["ca.crt"]
    actual = pki.ca_cert_hash(ca_pem.encode())
    if hashes and actual not in hashes:
        raise Fail(
            "couldn't validate the identity of the API Server: cluster CA found in "
            f'cluster-info ConfigMap is invalid: none of the public keys "{actual}" are '
            "pinned"
        )
    cluster = Version.parse(api.get("/version")["gitVersion"])
    preflight(
        args,
        api,
        reg.get("criSocket") or DEFAULT_CRI,
        kubeadm,
        cluster,
        ["kubelet.conf"] + (["manifests"] if control_plane else []),
    )
    kubelet = kubelet_version()
    try:
        answer = api.post(
            "/sim/kubeadm/join",
            {
                "node": node,
                "token": token,
                "control_plane": control_plane,
                "certificate_key": cert_key,
                "kubeadm_version": kubeadm.plain,
                "kubelet_version": kubelet.plain if kubelet else None,
                "taints": reg.get("taints"),
            },
        )
    except ApiFailure as exc:
        raise Fail(f"error execution phase preflight: {exc.message}") from None
    version = Version.parse(answer["version"])
    ccfg = answer["cluster_configuration"]
    write_file(f"{pki.PKI}/ca.crt", ca_pem)
    algorithm = key_algorithm(api, ccfg)
    if control_plane:
        out(
            '[download-certs] Downloading the certificates in Secret "kubeadm-certs" in the '
            '"kube-system" Namespace'
        )
        pki.write_shared(answer["certs"])
        local = (jcfg.get("controlPlane") or {}).get("localAPIEndpoint") or {}
        advertise = args.apiserver_advertise_address or local.get("advertiseAddress") or host_ip()
        port = int(local.get("bindPort") or 6443)
        pki.control_plane_certs(
            node,
            advertise,
            (ccfg.get("apiServer") or {}).get("certSANs") or [],
            "10.96.0.1",
            algorithm,
            out,
        )
        static_pods(ccfg, version, advertise, port)
    elif not os.path.exists(host_path(f"{pki.PKI}/ca.key")):
        # a worker has no CA key: its kubelet client certificate comes from the TLS bootstrap
        write_file(
            f"{K8S}/kubelet.conf",
            kubeconfig(
                api.url, f"system:node:{node}", base64.b64encode(ca_pem.encode()).decode(), None
            ),
            0o600,
        )
    write_kubeconfigs(api.url, algorithm, version, node, control_plane)
    kcfg = yaml.safe_load(answer["kubelet_config"]) or {}
    write_kubelet_files(
        kcfg,
        node,
        reg.get("criSocket") or DEFAULT_CRI,
        bool(reg.get("name") or args.node_name),
        reg.get("kubeletExtraArgs"),
        f"registry.k8s.io/pause:{rules.PAUSE[version.minor]}",
        kubeadm=kubeadm,
    )
    restart_kubelet()
    out("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap")
    if control_plane:
        wait_for(api, node, expected_static(ccfg, version), args.timeout, "control-plane-join")
        out("\nThis node has joined the cluster and a new control plane instance was created")
    else:
        wait_node(api, node, args.timeout)
        out(
            "\nThis node has joined the cluster:\n* Certificate signing request was sent to "
            "apiserver and a response was received.\n* The Kubelet was informed of the new secure "
            "connection details.\n\nRun 'kubectl get nodes' on the control-plane to see this node "
            "join the cluster."
        )


def cmd_token(args: argparse.Namespace, kubeadm: Version) -> None:
    api = Api(kubeconfig_server(host_path(args.kubeconfig)))
    if args.action == "create":
        try:
            answer = api.post(
                "/sim/kubeadm/token-create",
                {
                    "ttl": args.ttl,
                    "description": args.description or "",
                    "token": args.token,
                    "node": node_name(),
                },
            )
        except ApiFailure as exc:
            raise Fail(f"failed to create bootstrap token: {exc.message}") from None
        if args.print_join_command:
            info = api.get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
            h = pki.ca_cert_hash(info["data"]["ca.crt"].encode())
            out(
                f"kubeadm join {answer['endpoint']} --token {answer['token']} "
                f"--discovery-token-ca-cert-hash {h} "
            )
        else:
            out(answer["token"])
    elif args.action == "list":
        out(
            "TOKEN                     TTL         EXPIRES   USAGES                   "
            "DESCRIPTION   EXTRA GROUPS"
        )
    else:
        raise Fail(f"[simulator] kubeadm token {args.action} is not simulated")


def _cluster(api: Api) -> tuple[Version, dict]:
    cm = api.get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    ccfg = yaml.safe_load(cm["data"]["ClusterConfiguration"])
    return Version.parse(ccfg["kubernetesVersion"]), ccfg


def cmd_upgrade(args: argparse.Namespace, kubeadm: Version) -> None:
    kc = host_path(args.kubeconfig)
    api = Api(kubeconfig_server(kc) if os.path.exists(kc) else sim_server_url())
    # kubeadm 1.32 moved `upgrade apply` to phases (cmd/kubeadm/app/cmd/phases/upgrade/apply/
    # preflight.go prints "[preflight] Running preflight checks" and "You have chosen to
    # upgrade the cluster version"); before, cmd/upgrade/apply.go printed "pre-flight checks."
    # and "change the cluster version". Roles read versions from the API, never these texts
    # (tests/test_kubeadm_output_not_parsed.py).
    phases = (kubeadm.major, kubeadm.minor) >= (1, 32)
    out("[preflight] Running preflight checks" if phases
        else "[preflight] Running pre-flight checks.")
    try:
        cluster, ccfg = _cluster(api)
    except ApiFailure as exc:
        raise Fail(
            f"[upgrade/config] FATAL: failed to read the kubeadm-config ConfigMap: {exc.message}"
        ) from None
    node = node_name()
    out(
        '[upgrade/config] Reading configuration from the "kubeadm-config" ConfigMap in '
        'namespace "kube-system"...'
    )
    if args.action in ("plan", "apply") and not args.dry_run:
        upgrade_health_check(args, api, node, kubeadm)
    if args.action == "plan":
        target = Version.parse(args.version) if args.version else kubeadm
        out(f"[upgrade/versions] Cluster version: {cluster}")
        out(f"[upgrade/versions] kubeadm version: {kubeadm}")
        out(f"[upgrade/versions] Target version: {target}")
        try:
            rules.check_upgrade_apply(cluster, target, kubeadm)
            out(
                f"\nYou can now apply the upgrade by executing the following command:\n\n\t"
                f"kubeadm upgrade apply {target}\n"
            )
        except RuleError as exc:
            out(f"\n[upgrade/versions] {exc}")
        return
    if args.action == "apply":
        if not args.version:
            raise Fail(
                "[upgrade/version] FATAL: missing one or more required arguments. "
                "Required arguments: [version]"
            )
        target = Version.parse(args.version)
        verb = "upgrade" if phases else "change"
        out(f'[upgrade/version] You have chosen to {verb} the cluster version to "{target}"')
        out(f"[upgrade/versions] Cluster version: {cluster}")
        out(f"[upgrade/versions] kubeadm version: {kubeadm}")
        if not (args.yes or args.dry_run):
            raise Fail(
                "[upgrade/confirm] Are you sure you want to proceed? [y/N]: error: "
                "[simulator] no terminal; pass -y/--yes"
            )
        request = {
            "node": node,
            "target": target.plain,
            "kubeadm_version": kubeadm.plain,
            "force": args.force,
            "dry_run": args.dry_run,
        }

        def call(stage: str) -> dict:
            try:
                return api.post("/sim/kubeadm/upgrade-apply", {**request, "stage": stage}) or {}
            except ApiFailure as exc:
                raise Fail(
                    exc.message
                    if exc.message.startswith("[upgrade")
                    else f"[upgrade/apply] FATAL: {exc.message}"
                ) from None

        call("preflight")
        if args.dry_run:
            out("[dryrun] Finished dryrunning successfully!")
            return
        ccfg["kubernetesVersion"] = str(target)
        upgrade_local_control_plane(api, node, ccfg, target, args.timeout)
        drop_pod_infra_flag(kubeadm)
        out("[upgrade/postupgrade] Applying the new configuration and addons")
        answer = call("commit")
        if answer.get("addons_skipped"):
            out(rules.addons_skipped_message(answer["addons_skipped"]))
        out(f'\n[upgrade/successful] SUCCESS! Your cluster was upgraded to "{target}". Enjoy!\n')
        out(
            "[upgrade/kubelet] Now that your control plane is upgraded, please proceed with "
            "upgrading your kubelets if you haven't already done so."
        )
        return
    if args.action == "node":
        try:
            answer = api.post(
                "/sim/kubeadm/upgrade-node", {"node": node, "kubeadm_version": kubeadm.plain}
            )
        except ApiFailure as exc:
            raise Fail(f"[upgrade/node] FATAL: {exc.message}") from None
        version = Version.parse(answer["version"])
        if answer["control_plane"]:
            out(
                "[upgrade/control-plane] Upgrading your Static Pod-hosted control plane "
                f'instance to version "{version}"...'
            )
            upgrade_local_control_plane(
                api, node, answer["cluster_configuration"], version, args.timeout
            )
            try:
                addons = api.post("/sim/kubeadm/upgrade-node-addons", {"node": node})
            except ApiFailure as exc:
                raise Fail(f"[upgrade/addon] FATAL: {exc.message}") from None
            if addons.get("addons_skipped"):
                out(rules.addons_skipped_message(addons["addons_skipped"]))
            else:
                out("[upgrade/addon] Applied essential addon: CoreDNS")
                out("[upgrade/addon] Applied essential addon: kube-proxy")
        else:
            out("[upgrade] Skipping phase. Not a control plane node.")
        write_file(f"{KUBELET_DIR}/config.yaml", answer["kubelet_config"] or "{}\n")
        drop_pod_infra_flag(kubeadm)
        out("[upgrade] The configuration for this node was successfully updated!")
        out(
            "[upgrade] Now you should go ahead and upgrade the kubelet package using your package "
            "manager."
        )
        return
    raise Fail(f"[simulator] kubeadm upgrade {args.action} is not simulated")


def upgrade_health_check(args: argparse.Namespace, api: Api, node: str,
                         kubeadm: Version) -> None:
    """`kubeadm upgrade plan|apply` run CheckClusterHealth first (rules.health_check_errors;
    --ignore-preflight-errors names a check, or all, to make it a warning)."""
    out("[upgrade] Running cluster health checks")
    answer = api.post("/sim/kubeadm/upgrade-health", {"node": node})
    missing = [f"{MANIFESTS}/{c}.yaml" for c in COMPONENTS
               if not os.path.exists(host_path(f"{MANIFESTS}/{c}.yaml"))]
    errors = rules.health_check_errors(kubeadm, answer["not_ready"], answer["job_completes"],
                                       answer["job"], missing)
    ignored = {s.lower() for s in ",".join(args.ignore_preflight_errors or []).split(",") if s}
    real = [(n, m) for n, m in errors if n.lower() not in ignored and "all" not in ignored]
    for n, m in errors:
        if (n, m) not in real:
            out(f"\t[WARNING {n}]: {m}")
    if real:
        raise Fail(
            "[preflight] Some fatal errors occurred:\n"
            + "\n".join(f"\t[ERROR {n}]: {m}" for n, m in real)
            + "\n[preflight] If you know what you are doing, you can make a check non-fatal "
            "with `--ignore-preflight-errors=...`\nTo see the stack trace of this error "
            "execute with --v=5 or higher"
        )


def upgrade_local_control_plane(
    api: Api, node: str, ccfg: dict, version: Version, timeout: float
) -> None:
    """Rewrite this node's static pod manifests and wait for the kubelet to run them."""
    if not os.path.exists(host_path(f"{MANIFESTS}/kube-apiserver.yaml")):
        raise Fail(
            f"[upgrade/staticpods] FATAL: {MANIFESTS}/kube-apiserver.yaml not found: "
            "this is not a control-plane node"
        )
    with open(host_path(f"{MANIFESTS}/kube-apiserver.yaml"), encoding="utf-8") as fh:
        old = yaml.safe_load(fh)
    adv = [
        a for a in old["spec"]["containers"][0]["command"] if a.startswith("--advertise-address=")
    ]
    advertise = adv[0].split("=", 1)[1] if adv else host_ip()
    backup = f"{K8S}/tmp/kubeadm-backup-manifests-{time.strftime('%Y-%m-%d-%H-%M-%S')}"
    os.makedirs(host_path(backup), exist_ok=True)
    for f in glob.glob(host_path(f"{MANIFESTS}/*.yaml")):
        shutil.copy2(f, host_path(backup))
    out(f'[upgrade/staticpods] Moving new manifests to "{MANIFESTS}" (backup in "{backup}")')
    static_pods(ccfg, version, advertise, 6443)
    out("[upgrade/staticpods] Waiting for the kubelet to restart the components")
    try:
        wait_for(api, node, expected_static(ccfg, version), timeout, "upgrade/staticpods")
    except Fail as exc:
        for f in glob.glob(host_path(backup) + "/*.yaml"):
            shutil.copy2(f, host_path(MANIFESTS))
        raise Fail(
            f"{exc}\n[upgrade/apply] FATAL: couldn't upgrade control plane. kubeadm has tried "
            "to recover everything into the earlier state. Errors faced: timed out waiting for "
            "the condition"
        ) from None


def cmd_config(args: argparse.Namespace, kubeadm: Version) -> None:
    if args.action == "validate":
        try:
            docs = load_yaml_documents(args.config)
            rules.validate_kubeadm_config(
                docs,
                kubeadm,
                strict=True,
                allow_experimental=args.allow_experimental_api,
                source=args.config,
            )
        except (OSError, yaml.YAMLError, RuleError) as exc:
            raise Fail(str(exc)) from None
        out("ok")
        return
    if args.action == "images":
        docs = load_config(args.config, kubeadm, args.allow_experimental_api)
        ccfg = docs.get("ClusterConfiguration", {})
        try:
            version = rules.resolve_init_version(
                args.kubernetes_version or ccfg.get("kubernetesVersion"), kubeadm
            )
        except RuleError as exc:
            raise Fail(str(exc)) from None
        repo = ccfg.get("imageRepository") or "registry.k8s.io"
        images = [f"{repo}/{c}:{version}" for c in (*COMPONENTS, "kube-proxy")] + [
            f"{repo}/coredns/coredns:{rules.COREDNS[version.minor]}",
            f"{repo}/pause:{rules.PAUSE[version.minor]}",
            f"{repo}/etcd:{rules.ETCD[version.minor]}",
        ]
        if args.sub == "pull":
            cri = (docs.get("InitConfiguration", {}).get("nodeRegistration") or {}).get(
                "criSocket"
            ) or DEFAULT_CRI
            problem = cri_problem(Api(sim_server_url()), cri)
            if problem:
                raise Fail(f"failed to create new CRI image service: {problem}")
        verb = "[config/images] Pulled " if args.sub == "pull" else ""
        for image in images:
            out(verb + image)
        return
    raise Fail(f"[simulator] kubeadm config {args.action} is not simulated")


#: kubeadm's certificate names -> (file under pki or kubeconfig, signing CA)
CERT_NAMES = (
    ("admin.conf", "admin.conf", "ca"),
    ("apiserver", "apiserver.crt", "ca"),
    ("apiserver-etcd-client", "apiserver-etcd-client.crt", "etcd-ca"),
    ("apiserver-kubelet-client", "apiserver-kubelet-client.crt", "ca"),
    ("controller-manager.conf", "controller-manager.conf", "ca"),
    ("etcd-healthcheck-client", "etcd/healthcheck-client.crt", "etcd-ca"),
    ("etcd-peer", "etcd/peer.crt", "etcd-ca"),
    ("etcd-server", "etcd/server.crt", "etcd-ca"),
    ("front-proxy-client", "front-proxy-client.crt", "front-proxy-ca"),
    ("scheduler.conf", "scheduler.conf", "ca"),
    ("super-admin.conf", "super-admin.conf", "ca"),
)
CA_NAMES = (("ca", "ca.crt"), ("etcd-ca", "etcd/ca.crt"), ("front-proxy-ca", "front-proxy-ca.crt"))


def _cert_file(name: str) -> str:
    return host_path(f"{K8S}/{name}") if name.endswith(".conf") else host_path(f"{pki.PKI}/{name}")


def cmd_certs(args: argparse.Namespace, kubeadm: Version) -> None:
    if args.action == "certificate-key":
        out(os.urandom(32).hex())
        return
    if args.action == "check-expiration":
        out("[check-expiration] Reading configuration from the cluster...\n")
        out(
            f"{'CERTIFICATE':<26} {'EXPIRES':<24} {'RESIDUAL TIME':<15} "
            f"{'CERTIFICATE AUTHORITY':<23} EXTERNALLY MANAGED"
        )
        for name, rel, ca in CERT_NAMES:
            path = _cert_file(rel)
            if os.path.exists(path):
                when, left = pki.expiry_row(path)
                out(f"{name:<26} {when:<24} {left:<15} {ca:<23} no")
        out(
            f"\n{'CERTIFICATE AUTHORITY':<23} {'EXPIRES':<24} {'RESIDUAL TIME':<15} "
            "EXTERNALLY MANAGED"
        )
        for name, rel in CA_NAMES:
            path = _cert_file(rel)
            if os.path.exists(path):
                when, left = pki.expiry_row(path)
                out(f"{name:<23} {when:<24} {left:<15} no")
        return
    if args.action == "renew":
        what = args.what or ""
        names = [n for n, _, _ in CERT_NAMES] if what == "all" else [what]
        known = {n: (rel, ca) for n, rel, ca in CERT_NAMES}
        if any(n not in known for n in names):
            raise Fail(f'unknown certificate "{what}": use one of all, ' + ", ".join(known))
        out("[renew] Reading configuration from the cluster...\n")
        _certs_renew_call(what)
        for name in names:
            rel, ca = known[name]
            path = _cert_file(rel)
            if not os.path.exists(path):
                continue
            ca_rel = {"ca": "ca", "etcd-ca": "etcd/ca", "front-proxy-ca": "front-proxy-ca"}[ca]
            if rel.endswith(".conf"):
                pki.renew_kubeconfig(path, ca_rel)
            else:
                pki.renew(path, ca_rel)
            out(f"certificate {name} renewed")
        out(
            "\nDone renewing certificates. You must restart the kube-apiserver, "
            "kube-controller-manager, kube-scheduler and etcd, so that they can use the new "
            "certificates."
        )
        return
    raise Fail(f"[simulator] kubeadm certs {args.action} is not simulated")


def _certs_renew_call(what: str) -> None:
    """Log `kubeadm-certs-renew` (with the time) in the simulator's call log, or fail when a
    fault is injected for it. Renewal itself is local, so an unreachable server is no error."""
    try:
        fault = Api(sim_server_url()).fault("kubeadm-certs-renew", node_name(), what=what)
    except (OSError, ApiFailure):
        return
    if fault:
        raise Fail(fault)


def cmd_reset(args: argparse.Namespace, kubeadm: Version) -> None:
    if not args.force:
        raise Fail("[reset] Are you sure you want to proceed? [y/N]: [simulator] pass -f")
    try:
        api = Api(sim_server_url())
        api.post("/sim/kubeadm/reset", {"node": node_name()})
    except ApiFailure as exc:
        err(f"[reset] WARNING: could not reach the API server: {exc.message}")
    for d in (MANIFESTS, pki.PKI):
        shutil.rmtree(host_path(d), ignore_errors=True)
    for f in (
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ):
        p = host_path(f"{K8S}/{f}")
        if os.path.exists(p):
            os.remove(p)
    for f in ("config.yaml", "kubeadm-flags.env"):
        p = host_path(f"{KUBELET_DIR}/{f}")
        if os.path.exists(p):
            os.remove(p)
    out("[reset] Deleted contents of the etcd data directory: /var/lib/etcd")


def host_ip() -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def version_text(kubeadm: Version, fmt: str | None) -> str:
    if fmt == "short":
        return str(kubeadm)
    info = {
        "major": "1",
        "minor": str(kubeadm.minor),
        "gitVersion": str(kubeadm),
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": f"linux/{_arch()}",
    }
    if fmt == "json":
        import json

        return json.dumps({"clientVersion": info}, indent=2)
    if fmt == "yaml":
        return yaml.safe_dump({"clientVersion": info}, sort_keys=False)
    return (
        f'kubeadm version: &version.Info{{Major:"1", Minor:"{kubeadm.minor}", '
        f'GitVersion:"{kubeadm}", GitCommit:"{"0" * 40}", GitTreeState:"clean", '
        f'BuildDate:"2026-01-01T00:00:00Z", GoVersion:"go1.23.0", Compiler:"gc", '
        f'Platform:"linux/{_arch()}"}}'
    )


def _arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubeadm", description="kubeadm (simulator)")
    p.add_argument("-v", "--v", default="0")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("version")
    v.add_argument("-o", "--output")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config")
        sp.add_argument("--ignore-preflight-errors", action="append")
        sp.add_argument("--node-name")
        sp.add_argument("--allow-experimental-api", action="store_true")
        sp.add_argument("--apiserver-advertise-address")
        sp.add_argument("--certificate-key")
        sp.add_argument("--timeout", type=float, default=60.0)
        sp.add_argument("--v", default="0")
        sp.add_argument("--dry-run", action="store_true")

    i = sub.add_parser("init")
    i.add_argument("phase", nargs="*")
    common(i)
    i.add_argument("--kubernetes-version")
    i.add_argument("--upload-certs", action="store_true")
    i.add_argument("--control-plane-endpoint")
    i.add_argument("--pod-network-cidr")
    i.add_argument("--skip-phases")
    j = sub.add_parser("join")
    j.add_argument("endpoint", nargs="?")
    common(j)
    j.add_argument("--token")
    j.add_argument("--discovery-token")
    j.add_argument("--discovery-token-ca-cert-hash", action="append")
    j.add_argument("--discovery-token-unsafe-skip-ca-verification", action="store_true")
    j.add_argument("--control-plane", action="store_true")
    t = sub.add_parser("token")
    t.add_argument("action", choices=["create", "list", "delete", "generate"])
    t.add_argument("token", nargs="?")
    t.add_argument("--print-join-command", action="store_true")
    t.add_argument("--ttl", default="24h0m0s")
    t.add_argument("--description")
    t.add_argument("--kubeconfig", default=f"{K8S}/admin.conf")
    u = sub.add_parser("upgrade")
    u.add_argument("action", choices=["plan", "apply", "node", "diff"])
    u.add_argument("version", nargs="?")
    u.add_argument("-y", "--yes", action="store_true")
    u.add_argument("-f", "--force", action="store_true")
    u.add_argument("--dry-run", action="store_true")
    u.add_argument("--config")
    u.add_argument("--etcd-upgrade", default="true")
    u.add_argument("--certificate-renewal", default="true")
    u.add_argument("--ignore-preflight-errors", action="append")
    u.add_argument("--allow-experimental-upgrades", action="store_true")
    u.add_argument("--timeout", type=float, default=60.0)
    u.add_argument("--kubeconfig", default=f"{K8S}/admin.conf")
    c = sub.add_parser("config")
    c.add_argument("action", choices=["validate", "images", "print", "migrate", "view"])
    c.add_argument("sub", nargs="?")
    c.add_argument("extra", nargs="?")
    c.add_argument("--config")
    c.add_argument("--kubernetes-version")
    c.add_argument("--allow-experimental-api", action="store_true")
    c.add_argument("--kubeconfig", default=f"{K8S}/admin.conf")
    ce = sub.add_parser("certs")
    ce.add_argument(
        "action", choices=["check-expiration", "renew", "certificate-key", "generate-csr"]
    )
    ce.add_argument("what", nargs="?")
    ce.add_argument("--config")
    r = sub.add_parser("reset")
    r.add_argument("-f", "--force", action="store_true")
    r.add_argument("--cri-socket")
    return p


def main(argv: list[str], package_version: str) -> int:
    kubeadm = Version.parse(package_version)
    args = parser().parse_args(argv)
    handlers = {
        "init": cmd_init,
        "join": cmd_join,
        "token": cmd_token,
        "upgrade": cmd_upgrade,
        "config": cmd_config,
        "certs": cmd_certs,
        "reset": cmd_reset,
    }
    try:
        if args.command == "version":
            out(version_text(kubeadm, args.output))
            return 0
        handlers[args.command](args, kubeadm)
        return 0
    except Fail as exc:
        err(str(exc))
        return 1
    except ApiFailure as exc:
        err(exc.message)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:], os.environ.get("SIM_KUBEADM_VERSION", "1.31.2")))
