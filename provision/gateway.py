"""Inventory cross-checks for ``ingress_controller: gateway`` (pure; no I/O).

The gateway_api role refuses the same settings in its tasks/check.yml; ``bootstrap`` refuses
them before any host is contacted (provision.commands.bootstrap.addon_problems), and
``provision validate`` warns about them (provision.validate.gateway_problems).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: NGINX Gateway Fabric 2.5+ supports Kubernetes 1.31+ (its CHANGELOG.md, "Compatibility").
MIN_MINOR = 31
#: LoadBalancer (MetalLB), NodePort, HostPort (ports 80/443 of each node through a DaemonSet's
#: hostPorts: NGF v2.6.7 NginxProxy kubernetes.daemonSet.container.hostPorts).
MODES = ("LoadBalancer", "NodePort", "HostPort")
#: The variables problems() reads.
KEYS = ("ingress_controller", "kubernetes_version", "gateway_api_service_mode",
        "metallb_addresses", "metallb_pools", "gateway_api_cluster_issuer",
        "gateway_api_tls_secret", "gateway_api_tls_hostname")


def _minor(version: Any) -> int | None:
    parts = str(version).split(".")
    if len(parts) >= 2 and parts[0] == "1" and parts[1].isdigit():
        return int(parts[1])
    return None


def problems(values: Mapping[str, Any]) -> list[str]:
    """What is wrong with the gateway settings of one host's merged variables (empty: nothing,
    or ingress_controller is not gateway)."""
    if values.get("ingress_controller", "ingress-nginx") != "gateway":
        return []
    out: list[str] = []
    minor = _minor(values.get("kubernetes_version", ""))
    if minor is not None and minor < MIN_MINOR:
        out.append(f"ingress_controller: gateway needs Kubernetes 1.{MIN_MINOR} or later "
                   f"(NGINX Gateway Fabric); kubernetes_version is "
                   f"'{values.get('kubernetes_version')}': keep ingress-nginx or upgrade first")
    mode = values.get("gateway_api_service_mode", "LoadBalancer")
    if mode not in MODES:
        out.append(f"gateway_api_service_mode: {mode!r} is not one of: {', '.join(MODES)} "
                   "(hostNetwork is not offered: NGINX Gateway Fabric's NGINX runs as UID 101 "
                   "without capabilities and binds ports 80/443 only through a pod sysctl the "
                   "kubelet refuses on the host network; HostPort serves ports 80/443 of a "
                   "single VM)")
    elif mode == "LoadBalancer" and not (values.get("metallb_addresses")
                                         or values.get("metallb_pools")):
        out.append("ingress_controller: gateway with gateway_api_service_mode: LoadBalancer "
                   "needs a MetalLB address pool (metallb_addresses); set "
                   "gateway_api_service_mode: HostPort (ports 80/443) or NodePort for a single "
                   "VM")
    out.extend(_issuer_problems(values))
    return out


def _issuer_problems(values: Mapping[str, Any]) -> list[str]:
    """A Gateway certificate from cert-manager needs the HTTPS listener's Secret and host name:
    cert-manager v1.21.1's gateway-shim skips a listener without a hostname
    (pkg/controller/certificate-shim/sync.go, validateGatewayListenerBlock)."""
    issuer = values.get("gateway_api_cluster_issuer") or ""
    if not issuer:
        return []
    missing = [k for k in ("gateway_api_tls_secret", "gateway_api_tls_hostname")
               if not values.get(k)]
    if not missing:
        return []
    return [f"gateway_api_cluster_issuer: {issuer!r} needs {' and '.join(missing)} (the HTTPS "
            "listener's Secret and host name cert-manager issues the certificate for)"]
