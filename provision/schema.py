"""The one declared schema of every toolkit inventory variable.

This table is the single source for: inventory validation (``provision.inventory``), the
inventory reference in README (``python -m provision.schema --markdown``, checked by a test) and
the roles' ``meta/argument_specs.yml`` (checked by ``tests/test_schema.py``: a role option with a
schema name must agree on type, default and choices).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

# Kinds understood by the validator (provision.inventory.check_value).
#   str, int, bool, list, dict, path
#   version  - "1.31" or "1.31.2" (a quoted string)
#   cidr     - an IPv4/IPv6 network
#   ip       - an IPv4/IPv6 address
#   ip_pool  - list of CIDRs or "A-B" address ranges
#   duration - "30d", "12h", "15m"
#   port     - int 1..65535


@dataclass(frozen=True)
class Var:
    name: str
    kind: str
    default: Any
    description: str
    choices: tuple[Any, ...] = ()
    minimum: int | None = None
    elements: str | None = None  # for lists: kind of each element
    scope: str = "any"  # any | host (only meaningful per host)
    tags: tuple[str, ...] = field(default_factory=tuple)
    # A declared pattern of provision.patterns (for lists: of each element). Every value that
    # reaches a unit file, a script, a file name or a command line on a host has one.
    pattern: str | None = None
    # Jinja templates ({{ }}) are refused in variables with a pattern, choices, a non-string
    # type or the "connection" tag (Ansible evaluates them on the controller) unless True.
    templatable: bool = False


VARIABLES: tuple[Var, ...] = (
    # --- mode and versions -------------------------------------------------------------
    Var("provision_mode", "str", "kubeadm",
        "Cluster flavour: `minikube` (one VM, docker driver, never root) or `kubeadm` "
        "(containerd, control plane, workers).", choices=("minikube", "kubeadm")),
    Var("kubernetes_version", "version", "1.35",
        'Kubernetes release, a quoted string: "1.35" (newest patch) or "1.35.1". '
        "Unquoted 1.30 is the float 1.3 in YAML. Default: the newest minor every pinned add-on "
        "supports (provision/pins.py). 1.28 to 1.37 (provision/versions.py); "
        "a minor past upstream end of life is a warning (provision/pins.py)."),
    Var("cluster_name", "str", "provision",
        "Cluster name (a DNS label), used in kubeconfig contexts and etcd snapshot file names.",
        pattern="cluster_name"),
    # --- container runtimes ------------------------------------------------------------
    Var("docker_users", "list", None,
        "Users appended to the `docker` group (root-equivalent!). Default: the SSH user "
        "(`ansible_user`).", elements="str", pattern="user"),
    Var("docker_source", "str", "distro",
        "Where docker comes from: `distro` (docker.io from the distribution) or `docker-ce` "
        "(Docker's apt repository).", choices=("distro", "docker-ce")),
    Var("docker_data_root", "path", None,
        "Optional docker `data-root` (e.g. a bigger block volume).", pattern="abs_path"),
    Var("docker_registry_mirrors", "list", [],
        "Mirrors of docker.io: docker's daemon.json `registry-mirrors` and containerd's "
        "`certs.d/docker.io/hosts.toml` (upstream stays the fallback).", elements="str",
        pattern="mirror_url"),
    Var("docker_prune_schedule", "str", None,
        "systemd OnCalendar expression for a `docker system prune` timer; unset = no timer.",
        pattern="calendar"),
    # --- proxies and mirrors (air-gapped and corporate networks) -------------------------
    Var("http_proxy", "str", "",
        "Proxy for plain HTTP from the hosts (apt, containerd, docker, the kubelet, "
        "downloads), e.g. `http://proxy.example.org:3128`. A password in it "
        "(`http://user:PASS@...`) is a secret: masked in logs and run artifacts, files holding "
        "it are mode 0600/0640. Empty: no proxy.", pattern="proxy_url"),
    Var("https_proxy", "str", "",
        "Proxy for HTTPS from the hosts (same users as `http_proxy`; usually the same URL). "
        "Empty: no proxy.", pattern="proxy_url"),
    Var("no_proxy", "list", [],
        "Extra hosts, domains (`.example.org`), addresses and CIDRs reached without the "
        "proxy. Always added: localhost, 127.0.0.1, ::1, every node's name and address, "
        "`pod_cidr`, `service_cidr`, `.svc` and the cluster domain.", elements="str",
        pattern="no_proxy_entry"),
    Var("pkgs_k8s_url", "str", "https://pkgs.k8s.io",
        "Base URL of the Kubernetes apt repositories (a mirror with pkgs.k8s.io's layout: "
        "`<base>/core:/stable:/v1.31/deb/`).", pattern="base_url"),
    Var("registry_k8s_mirrors", "list", [],
        "Mirrors of registry.k8s.io for containerd (`certs.d/registry.k8s.io/hosts.toml`; "
        "upstream stays the fallback). docker.io mirrors: `docker_registry_mirrors`.",
        elements="str", pattern="mirror_url"),
    Var("github_url", "str", "https://github.com",
        "Base URL of GitHub release downloads (minikube, etcd, cert-manager): a mirror with "
        "GitHub's `<owner>/<repo>/releases/download/<tag>/<file>` layout.", pattern="base_url"),
    Var("github_raw_url", "str", "https://raw.githubusercontent.com",
        "Base URL of raw GitHub files (the MetalLB, ingress-nginx and calico manifests), "
        "`<owner>/<repo>/<ref>/<path>` layout.", pattern="base_url"),
    Var("dl_k8s_url", "str", "https://dl.k8s.io",
        "Base URL of Kubernetes release binaries (minikube mode's kubectl), "
        "`release/v<version>/bin/linux/<arch>/kubectl` layout.", pattern="base_url"),
    # --- kubernetes networking ---------------------------------------------------------
    Var("kube_proxy_mode", "str", "iptables",
        "kube-proxy mode.", choices=("iptables", "ipvs")),
    Var("pod_cidr", "cidr", "10.244.0.0/16", "Pod network CIDR (must not overlap the "
        "service CIDR or node addresses)."),
    Var("service_cidr", "cidr", "10.96.0.0/12", "Service network CIDR."),
    Var("cni_plugin", "str", "flannel", "CNI plugin.", choices=("flannel", "calico")),
    Var("control_plane_endpoint", "str", None,
        "Stable address[:port] of the API server (load balancer or DNS name) for HA clusters.",
        pattern="endpoint"),
    Var("apiserver_cert_extra_sans", "list", [],
        "Extra SANs on the API server certificate (e.g. the OCI public IP).", elements="str",
        pattern="san"),
    # --- add-ons -------------------------------------------------------------------------
    Var("metallb_addresses", "ip_pool", [],
        "MetalLB address pool: CIDRs or `A-B` ranges. On OCI these must be secondary private "
        "IPs of a node's VNIC."),
    Var("metallb_strict_arp", "bool", True,
        "Set kube-proxy `strictARP` (required by MetalLB with IPVS)."),
    Var("ingress_nginx_enabled", "bool", True, "Install ingress-nginx."),
    Var("ingress_controller", "str", "ingress-nginx",
        "Ingress layer of the add-ons: `ingress-nginx` (retired upstream in March 2026, final "
        "release pinned) or `gateway` (Gateway API CRDs + NGINX Gateway Fabric, a default "
        "Gateway; Kubernetes 1.31+; roles/gateway_api, docs/gateway.md).",
        choices=("ingress-nginx", "gateway")),
    Var("acme_email", "str", None, "Contact e-mail for the ACME account.", pattern="email"),
    Var("acme_server", "str", "https://acme-staging-v02.api.letsencrypt.org/directory",
        "ACME directory URL (Let's Encrypt staging/production or any ACME CA).",
        pattern="https_url"),
    Var("acme_domain", "str", None, "Domain for the host certificate (`provision certs issue`).",
        pattern="domain"),
    # --- etcd backups ----------------------------------------------------------------------
    Var("etcd_backup_dir", "path", "/var/backups/etcd",
        "Directory for etcd snapshots on control-plane nodes (created 0700)."),
    Var("etcd_backup_keep", "int", 14,
        "Snapshots kept by retention (the newest verified one is never removed).", minimum=1),
    Var("etcd_backup_max_age", "duration", "30d",
        "Snapshots older than this are removed by retention (never the newest verified one)."),
    Var("etcd_backup_schedule", "str", "daily",
        "systemd OnCalendar expression for scheduled snapshots."),
    # --- lab / ssh -------------------------------------------------------------------------
    Var("ssh_known_hosts_file", "path", None,
        "known_hosts file used by `doctor` and Ansible (the lab writes its own). "
        "Default: ~/.ssh/known_hosts."),
    Var("provision_insecure_ssh_host_keys", "bool", False,
        "Opt out of SSH host key checking: only with this set to true are "
        "`StrictHostKeyChecking=no`/`accept-new`, `UserKnownHostsFile=/dev/null` in "
        "`ansible_ssh_common_args`/`ansible_ssh_extra_args` or `ansible_host_key_checking: false` "
        "accepted; every run then warns. Anyone on the network path can impersonate such a host."),
    # --- Ansible's own connection variables (validated, not defined, by provision) ----------
    Var("ansible_host", "str", None, "Address to connect to (default: the inventory name): an "
        "IPv4 or IPv6 address (no brackets, no port) or a DNS name.",
        scope="host", tags=("ansible", "connection"), pattern="address"),
    Var("ansible_port", "port", 22, "SSH port.", tags=("ansible", "connection")),
    Var("ansible_user", "str", None, "SSH user (a non-root user with passwordless sudo).",
        tags=("ansible", "connection"), pattern="user"),
    Var("ansible_ssh_private_key_file", "path", None,
        "Private key file for SSH; must exist on the controller.", tags=("ansible", "connection"),
        pattern="controller_path"),
    Var("ansible_ssh_common_args", "str", None, "Extra SSH arguments (one line, no templates).",
        tags=("ansible", "connection"), pattern="single_line"),
    Var("ansible_become", "bool", None, "Use sudo.", tags=("ansible", "connection")),
    Var("ansible_python_interpreter", "str", None, "Python on the host.",
        tags=("ansible", "connection"), pattern="interpreter"),
    Var("ansible_connection", "str", None, "Connection plugin (ssh, local, docker).",
        tags=("ansible", "connection"), pattern="plugin"),
)

BY_NAME: dict[str, Var] = {v.name: v for v in VARIABLES}

# Role options (roles/*/meta/argument_specs.yml) whose values reach a unit file, a script, a
# file name or a command line on a host: name -> (pattern, templatable). A templatable option
# may hold a Jinja template (its role default does) and is then checked by the role itself.
ROLE_OPTION_PATTERNS: dict[str, tuple[str, bool]] = {
    # roles/acme_cert
    "acme_dns_provider": ("dns_provider_or_empty", False),
    "acme_dns_resolvers": ("host_port", False),
    "acme_http_listen": ("listen", False),
    "acme_http_webroot": ("abs_path_or_empty", False),
    "acme_lego_dir": ("abs_path", False),
    "acme_config_dir": ("abs_path", False),
    "acme_cert_path": ("abs_path", True),
    "acme_key_path": ("abs_path", True),
    "acme_cert_owner": ("user", False),
    "acme_cert_group": ("user", False),
    "acme_service": ("unit", False),
    "acme_renew_schedule": ("calendar", False),
    "acme_renew_random_delay": ("timespan", False),
    # roles/docker
    "docker_verify_image": ("image", False),
    "docker_verify_image_archive": ("abs_path_or_empty", False),
    "docker_prune_until": ("go_duration", False),
    # roles/proxy
    "proxy_apt_conf_file": ("abs_path", False),
    "proxy_dropin_unit": ("unit", False),
    # roles/kubeadm_certs
    "kubeadm_certs_kubernetes_dir": ("abs_path", False),
    "kubeadm_certs_tool": ("abs_path", False),
    "kubeadm_certs_kubeconfig_user": ("user_or_empty", True),
    "kubeadm_certs_timer_schedule": ("calendar", False),
    "kubeadm_certs_timer_randomized_delay": ("timespan", False),
    # roles whose quoting is not (yet) reviewed for issue 13: the pattern is the only layer
    "minikube_user": ("user", True),  # unit file User=, become_user
    "minikube_bin_dir": ("abs_path", False),  # shell command strings
    "cni_kubeconfig": ("abs_path", False),  # shell command strings
    "cni_manifest_dir": ("abs_path", False),
    "kubeadm_control_plane_node_name": ("node_name", True),  # shell command strings
    "etcd_bin_dir": ("abs_path", False),  # command strings, config.json
    "etcd_backup_command": ("abs_path", False),  # command strings, ExecStart=
    "cert_manager_kubeconfig": ("abs_path", False),
    "ingress_nginx_kubeconfig": ("abs_path", False),
    "gateway_api_kubeconfig": ("abs_path", False),
    "metallb_kubeconfig": ("abs_path", False),
    "kubeadm_upgrade_kubeconfig": ("abs_path", False),
}

# Ansible's own connection variables that are not in VARIABLES: what they must look like.
# Templates are refused in every connection variable (they run on the controller).
CONNECTION_PASSTHROUGH: dict[str, str | None] = {
    "ansible_ssh_extra_args": "single_line",
    "ansible_private_key_file": "controller_path",
    "ansible_ssh_executable": "controller_path",
    "ansible_become_method": "plugin",
    "ansible_become_user": "user",
    "ansible_become_flags": "single_line",
    "ansible_become_password": None,  # secret: never echoed; only templates are refused
    "ansible_password": None,
}


def markdown_table() -> str:
    """The inventory reference table for README (kept in sync by a test)."""
    rows = ["| variable | type | default | allowed | description |", "|---|---|---|---|---|"]
    for v in VARIABLES:
        default = "" if v.default is None else f"`{v.default!r}`".replace("'", '"')
        allowed = ", ".join(f"`{c}`" for c in v.choices)
        if v.minimum is not None:
            allowed = f">= {v.minimum}"
        if v.pattern is not None:
            from provision.patterns import PATTERNS

            allowed = PATTERNS[v.pattern].expected + ("" if v.templatable else "; no templates")
        rows.append(f"| `{v.name}` | {v.kind} | {default} | {allowed} | {v.description} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    if "--markdown" in sys.argv:
        print(markdown_table())
