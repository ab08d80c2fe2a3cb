"""Simulated `kubelet`: a real long-running process (kubelet.service) that registers its node
with the simulated API server, posts heartbeats with its version, and reports the static pods
in its staticPodPath (so kube-apiserver etc. "run" the image tags kubeadm wrote).

Like the real kubelet it exits with an error when /var/lib/kubelet/config.yaml is missing
(the crash loop before `kubeadm init`/`join`), refuses unknown config fields and removed flags.
"""

from __future__ import annotations

import glob
import os
import platform
import signal
import socket
import sys
import time

import yaml

from . import rules
from .client import Api, ApiFailure, err, host_path, kubeconfig_server
from .rules import Version

#: flags removed from the kubelet, by the minor that removed them
REMOVED_FLAGS = {
    "--container-runtime": 27,
    "--network-plugin": 24,
    "--cni-bin-dir": 24,
    "--cni-conf-dir": 24,
    "--pod-infra-container-image": 35,
    "--experimental-allocatable-ignore-eviction": 24,
}


def log(level: str, text: str) -> None:
    err(f"{level}{time.strftime('%m%d %H:%M:%S')}.000000    {os.getpid()} kubelet.go:1] {text}")


def parse_flags(argv: list[str], version: Version) -> dict[str, str]:
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            i += 1
            continue
        name, eq, value = arg.partition("=")
        if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value, i = argv[i + 1], i + 1
        removed = REMOVED_FLAGS.get(name)
        if removed is not None and version.minor >= removed:
            raise SystemExit(
                f'E0000 run.go:72] "command failed" err="failed to parse kubelet '
                f'flag: unknown flag: {name}"'
            )
        flags[name[2:]] = value or "true"
        i += 1
    return flags


def static_pods(path: str) -> dict[str, str]:
    pods: dict[str, str] = {}
    for f in sorted(glob.glob(host_path(path) + "/*.yaml")):
        try:
            with open(f, encoding="utf-8") as fh:
                pod = yaml.safe_load(fh)
            comp = pod["metadata"].get("labels", {}).get("component") or pod["metadata"]["name"]
            pods[comp] = pod["spec"]["containers"][0]["image"]
        except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
            log("E", f'"Could not process manifest file" err="{exc}" path="{f}"')
    return pods


def manifests_stamp(path: str) -> tuple:
    return tuple((f, os.stat(f).st_mtime_ns) for f in sorted(glob.glob(host_path(path) + "/*")))


def addresses() -> list[str]:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return [s.getsockname()[0]]
    except OSError:
        return []


def main(argv: list[str], package_version: str) -> int:
    version = Version.parse(package_version)
    if "--version" in argv or "version" in argv[:1]:
        print(f"Kubernetes {version}")
        return 0
    try:
        flags = parse_flags(argv, version)
    except SystemExit as exc:
        err(str(exc))
        return 1
    config_path = flags.get("config", "/var/lib/kubelet/config.yaml")
    try:
        with open(host_path(config_path), encoding="utf-8") as fh:
            config = yaml.safe_load(fh) or {}
    except OSError as exc:
        log(
            "E",
            f'"command failed" err="failed to load kubelet config file, path: {config_path}, '
            f"error: failed to load Kubelet config file {config_path}, error failed to read "
            f'kubelet config file \\"{config_path}\\", error: {exc}"',
        )
        return 1
    unknown = [
        k
        for k in config
        if k not in ("apiVersion", "kind") and rules.KUBELET_FIELDS.get(k, 99) > version.minor
    ]
    if unknown:
        log(
            "E",
            f'"command failed" err="failed to load kubelet config file, path: {config_path}, '
            f'error: strict decoding error: unknown field \\"{unknown[0]}\\""',
        )
        return 1
    kubeconfig = flags.get("kubeconfig", "/etc/kubernetes/kubelet.conf")
    try:
        api = Api(kubeconfig_server(host_path(kubeconfig)), timeout=10)
    except (OSError, ApiFailure) as exc:
        log(
            "E",
            f'"command failed" err="failed to construct kubelet dependencies: unable to load '
            f'client config file {kubeconfig}: {exc}"',
        )
        return 1
    node = (
        flags.get("hostname-override") or os.environ.get("SIM_NODE_NAME") or socket.gethostname()
    ).lower()
    try:
        fault = api.fault("kubelet-start", node, version=version.plain)
    except ApiFailure:
        fault = None
    if fault:
        log("E", f'"command failed" err="{fault}"')
        return 1
    static_path = config.get("staticPodPath", "/etc/kubernetes/manifests")
    interval = float(os.environ.get("SIM_KUBELET_INTERVAL", "2"))
    log("I", f'"Starting kubelet" version="{version}" node="{node}"')
    stop = {"now": False}

    def on_term(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    last_sent, stamp = 0.0, None
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    while not stop["now"]:
        new_stamp = manifests_stamp(static_path)
        if time.time() - last_sent >= interval or new_stamp != stamp:
            stamp = new_stamp
            last_sent = time.time()
            cni = bool(glob.glob(host_path("/etc/cni/net.d") + "/*.conf*"))
            try:
                api.post(
                    "/sim/kubelet/heartbeat",
                    {
                        "node": node,
                        "kubelet_version": version.plain,
                        "static_pods": static_pods(static_path),
                        "addresses": addresses(),
                        "cni_configured": cni,
                        "arch": arch,
                        "kernel": platform.release(),
                        "register_taints": config.get("registerWithTaints") or [],
                    },
                )
            except ApiFailure as exc:
                log(
                    "E",
                    f'"Unable to register node with API server" err="{exc.message}" node="{node}"',
                )
        time.sleep(0.2)
    log("I", '"Shutting down kubelet"')
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:], os.environ.get("SIM_KUBELET_VERSION", "1.31.2")))
