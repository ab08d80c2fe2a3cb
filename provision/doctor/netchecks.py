"""Network checks (pure): ports already in use, firewall rules (OCI's iptables REJECT), HTTPS
from the host, MetalLB addresses against the nodes' subnets."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from provision.doctor.iptables import (
    Packet,
    Rule,
    Table,
    parse_iptables_save,
    port_verdict,
    verdict,
)
from provision.doctor.model import FAIL, PASS, WARN, CheckResult, HostSpec

# Ports kubeadm's preflight requires free, per role; the process that owns each once the
# cluster runs (then "in use" is the cluster itself, not a conflict).
KUBE_PORTS: dict[int, str] = {
    6443: "kube-apiserver", 2379: "etcd", 2380: "etcd", 10250: "kubelet",
    10257: "kube-controller", 10259: "kube-scheduler",
}
CONTROL_PLANE_PORTS = (6443, 2379, 2380, 10250, 10257, 10259)
WORKER_PORTS = (10250,)
INGRESS_PORTS = (80, 443)
FLANNEL_VXLAN_PORT = 8472
CALICO_BGP_PORT = 179
IGNORED_IFACE_PREFIXES = ("lo", "docker", "br-", "cni", "flannel", "veth", "kube-ipvs",
                          "cali", "tunl", "vxlan", "virbr")

BOOTSTRAP_FIREWALL_HINT = "provision bootstrap inserts ACCEPT rules before the REJECT"


def parse_listeners(text: str) -> dict[int, set[str]]:
    """``ss -ltn[p]H`` -> {port: {process names}} (empty set when ss could not name it)."""
    out: dict[int, set[str]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or not parts[0].startswith("LISTEN"):
            continue
        local = parts[3]
        port_text = local.rsplit(":", 1)[-1]
        if not port_text.isdigit():
            continue
        names = set(re.findall(r'\(\("([^"]+)"', line)) | set(re.findall(r'\),\("([^"]+)"',
                                                                         line))
        out.setdefault(int(port_text), set()).update(names)
    return out


def required_ports(spec: HostSpec) -> tuple[int, ...]:
    if spec.mode == "minikube":
        return INGRESS_PORTS if spec.ingress else ()
    return CONTROL_PLANE_PORTS if spec.control_plane else WORKER_PORTS


def check_ports(spec: HostSpec, s: dict[str, str]) -> CheckResult:
    listeners = parse_listeners(s.get("listen", ""))
    conflicts, ours = [], []
    for port in required_ports(spec):
        if port not in listeners:
            continue
        names = listeners[port]
        own = KUBE_PORTS.get(port)
        if own and names and all(n.startswith(own[:15]) for n in names):
            ours.append(f"{port} ({own})")
        else:
            conflicts.append(f"{port} ({', '.join(sorted(names)) or 'process unknown'})")
    wanted = ", ".join(str(p) for p in required_ports(spec)) or "none"
    if conflicts:
        is_kube = any(int(c.split()[0]) in KUBE_PORTS for c in conflicts)
        return CheckResult(spec.name, "ports in use", FAIL if is_kube else WARN,
                           f"already in use: {'; '.join(conflicts)}; {spec.mode} needs "
                           f"{wanted} free (stop the service or move it)")
    if ours:
        return CheckResult(spec.name, "ports in use", PASS,
                           f"in use by the cluster itself: {', '.join(ours)}")
    return CheckResult(spec.name, "ports in use", PASS, f"free: {wanted}")


def _pod_packet(spec: HostSpec) -> Packet:
    net = ipaddress.ip_network(spec.pod_cidr, strict=False)
    src = str(net.network_address + 2)
    dst = str(net.network_address + 258) if net.num_addresses > 258 else str(
        net.network_address + 3)
    in_if, out_if = ("cni0", "flannel.1") if spec.cni_plugin == "flannel" else ("cali0", "tunl0")
    return Packet(proto="tcp", src=src, dst=dst, in_iface=in_if, out_iface=out_if)


def firewall_ports(spec: HostSpec) -> list[tuple[int, str, str]]:
    """(port, proto, why) that must be reachable from other hosts."""
    ports: list[tuple[int, str, str]] = []
    if spec.mode == "kubeadm":
        if spec.control_plane:
            ports.append((6443, "tcp", "Kubernetes API"))
        ports.append((10250, "tcp", "kubelet API"))
        if spec.cni_plugin == "flannel":
            ports.append((FLANNEL_VXLAN_PORT, "udp", "flannel VXLAN pod traffic"))
        else:
            ports.append((CALICO_BGP_PORT, "tcp", "calico BGP"))
    if spec.gateway and spec.gateway_node_ports:
        ports += [(p, "tcp", "Gateway NodePort") for p in spec.gateway_node_ports]
    elif spec.gateway:
        ports += [(80, "tcp", "Gateway HTTP"), (443, "tcp", "Gateway HTTPS")]
    elif spec.ingress:
        ports += [(80, "tcp", "ingress HTTP"), (443, "tcp", "ingress HTTPS")]
    return ports


NO_NFTABLES = ("the kernel offers no nf_tables to this host (an emulator such as qemu-user "
               "for another architecture cannot pass netlink netfilter through): dockerd's own "
               "iptables setup fails the same way, so set docker_daemon_options: {iptables: "
               "false, ip6tables: false, bridge: none} (the lab does for arm64 containers)")


def unreadable_hint(output: str) -> str:
    """What an unreadable ``iptables-save`` means, from its output (pure)."""
    text = output.lower()
    if "protocol not supported" in text or "failed to initialize nft" in text:
        return NO_NFTABLES
    if "command not found" in text or "not found" in text and "iptables" in text:
        return "iptables-save is not installed, so no firewall rules were read"
    if any(w in text for w in ("password is required", "permission denied", "must be root",
                               "not permitted", "sudo:")):
        return "needs root or passwordless sudo"
    return "the firewall rules were not checked"


def check_firewall(spec: HostSpec, s: dict[str, str]) -> list[CheckResult]:
    text = s.get("iptables", "")
    rc = re.search(r"rc=(\d+)\s*$", text)
    body = re.sub(r"\s*rc=\d+\s*$", "", text)
    readable = rc is not None and rc.group(1) == "0"
    if "does not exist" in body:  # legacy iptables without the filter table loaded: no rules
        readable, body = True, ""
    if not readable:
        reason = body.strip().splitlines()[-1] if body.strip() else "no output"
        return [CheckResult(spec.name, "firewall", WARN,
                            f"cannot read iptables rules ({reason}); {unreadable_hint(body)}")]
    tables = parse_iptables_save(body)
    results = [_port_result(spec, tables, port, proto, why)
               for port, proto, why in firewall_ports(spec)]
    if spec.mode == "kubeadm":
        results.append(_forward_result(spec, tables))
    results += _unreached_results(spec, tables)
    return results


def _catch_all_reject(rule: Rule) -> bool:
    """``-j REJECT`` with no match but a comment: every packet that gets here is rejected."""
    toks = list(rule.tokens)
    if rule.target != ("REJECT", False):
        return False
    matches, i = [], 0
    while i < toks.index("-j"):
        if toks[i:i + 2] == ["-m", "comment"] or toks[i] == "--comment":
            i += 2
            continue
        matches.append(toks[i])
        i += 1
    return not matches


def rules_after_reject(tables: dict[str, Table], chain: str) -> tuple[Rule, list[Rule]] | None:
    """(the first catch-all REJECT of ``chain``, the rules after it, which no packet reaches);
    None when the chain has no catch-all REJECT or nothing after it."""
    rules = (tables.get("filter") or Table()).rules.get(chain, [])
    for i, rule in enumerate(rules):
        if _catch_all_reject(rule):
            return (rule, rules[i + 1:]) if rules[i + 1:] else None
    return None


def _unreached_results(spec: HostSpec, tables: dict[str, Table]) -> list[CheckResult]:
    """WARN per chain (INPUT, FORWARD) with rules after Oracle's final REJECT: they never
    match (someone ran ``iptables -A`` or appended to rules.v4 after the REJECT line)."""
    results = []
    for chain in ("INPUT", "FORWARD"):
        found = rules_after_reject(tables, chain)
        if found is None:
            continue
        reject, after = found
        shown = "; ".join(f"'{r.text}' (line {r.line})" for r in after[:3])
        more = f" and {len(after) - 3} more" if len(after) > 3 else ""
        results.append(CheckResult(
            spec.name, f"firewall {chain} order", WARN,
            f"{len(after)} rule(s) after the REJECT '{reject.text}' (line {reject.line}) in "
            f"{chain} never match: {shown}{more}. Move them before the REJECT (iptables -I, "
            "and in /etc/iptables/rules.v4 above the REJECT line); provision bootstrap "
            "inserts its own rules before the REJECT regardless"))
    return results


def _port_result(spec: HostSpec, tables: dict[str, Table], port: int, proto: str,
                 why: str) -> CheckResult:
    name = f"firewall {proto}/{port}"
    v = port_verdict(tables, port, proto)
    if not v.blocked:
        how = "no filter rules" if v.rule is None and not tables else f"accepted by {v.describe()}"
        return CheckResult(spec.name, name, PASS, f"{why}: {how}")
    if v.conditional_accepts:
        first = v.conditional_accepts[0]
        return CheckResult(spec.name, name, PASS,
                           f"{why}: accepted only when '{first.text}' matches (line "
                           f"{first.line}), otherwise rejected by {v.describe()}")
    return CheckResult(spec.name, name, WARN,
                       f"{why}: {proto}/{port} is blocked by INPUT {v.describe()} "
                       f"(OCI images reject all but SSH); {BOOTSTRAP_FIREWALL_HINT}")


def _forward_result(spec: HostSpec, tables: dict[str, Table]) -> CheckResult:
    v = verdict(tables, "FORWARD", _pod_packet(spec))
    name = "firewall pod traffic"
    if not v.blocked:
        how = "no filter rules" if not tables else f"accepted by {v.describe()}"
        return CheckResult(spec.name, name, PASS, f"FORWARD for {spec.pod_cidr}: {how}")
    hint = (BOOTSTRAP_FIREWALL_HINT if v.rule is not None else
            "provision bootstrap adds ACCEPT rules for the pod network (docker sets this "
            "policy)")
    return CheckResult(spec.name, name, WARN,
                       f"pods ({spec.pod_cidr}) cannot talk across nodes: FORWARD "
                       f"{v.action} by {v.describe()}; {hint}")


DL_K8S_NOTE = ("some OCI addresses get HTTP 403 from Google-fronted Kubernetes hosts such as "
               "dl.k8s.io; kubeadm mode pins versions and installs from pkgs.k8s.io, so it "
               "never needs dl.k8s.io; minikube mode downloads kubectl from dl.k8s.io (set "
               "minikube_kubectl_url and minikube_kubectl_checksum to a mirror)")

REGISTRY_K8S = "https://registry.k8s.io/v2/"
PKGS_K8S = "https://pkgs.k8s.io/"
DOWNLOAD_DOCKER = "https://download.docker.com/linux/"
GITHUB = "https://github.com/"
RAW_GITHUB = "https://raw.githubusercontent.com/"
DL_K8S = "https://dl.k8s.io/"
# github.com answers a release download with a redirect to this host (GitHub moved release
# assets there from objects.githubusercontent.com in 2025; packit/ai-workflows#634,
# different-ai/openwork#3131 show the redirect chain), so a host that reaches github.com but
# not this one fails every release download.
GITHUB_ASSETS = "https://release-assets.githubusercontent.com/"
# NGINX Gateway Fabric's images (ingress_controller: gateway): its v2.6.7 deploy/default/
# deploy.yaml runs ghcr.io/nginx/nginx-gateway-fabric and provisions the data plane from
# ghcr.io/nginx/nginx-gateway-fabric/nginx, on any node the pods land on.
GHCR = "https://ghcr.io/v2/"
# quay.io serves the images of three add-ons a default kubeadm bootstrap installs, each on any
# or every node: cert-manager's v1.21.1 release manifest runs quay.io/jetstack/cert-manager-
# {controller,cainjector,webhook} (Deployments: any node), MetalLB v0.16.1's
# config/manifests/metallb-native.yaml runs quay.io/metallb/speaker (a DaemonSet: every node)
# and calico v3.32.1's manifests/calico.yaml runs quay.io/calico/{node,cni} (every node).
QUAY = "https://quay.io/v2/"


def image_registry_url(repository: str) -> str:
    """The registry API URL of an image repository ``host/path`` (``ghcr.io/flannel-io`` ->
    ``https://ghcr.io/v2/``); a name without a host part is Docker Hub's."""
    first = repository.split("/", 1)[0]
    host = first if ("." in first or ":" in first) and "/" in repository else "registry-1.docker.io"
    return f"https://{host}/v2/"
# minikube's docker driver pulls its node image from gcr.io (kubernetes/minikube
# pkg/drivers/kic/types.go: gcrRepo "gcr.io/k8s-minikube/kicbase-builds", FallbackImages on
# docker.io/kicbase) and downloads the preloaded images tarball from the GCS bucket
# "minikube-preloaded-volume-tarballs" (pkg/minikube/download/preload.go PreloadBucket).
MINIKUBE_BASE_IMAGE = "https://gcr.io/v2/"
MINIKUBE_PRELOAD = "https://storage.googleapis.com/minikube-preloaded-volume-tarballs/"


def needed_urls(*, mode: str, docker_source: str, control_plane: bool,
                first_control_plane: bool, ingress: bool, metallb_pool: bool,
                gateway: bool = False, cni_plugin: str = "flannel",
                flannel_image_repository: str = "ghcr.io/flannel-io",
                cert_manager: bool = True) -> tuple[tuple[str, str], ...]:
    """(url, why) a default bootstrap of this host downloads from, given the inventory.

    kubeadm: packages from pkgs.k8s.io, images from registry.k8s.io, the add-on manifests
    (on the first control plane) from GitHub. minikube: the minikube binary from GitHub, its
    kubectl from dl.k8s.io, images from registry.k8s.io. download.docker.com only with
    ``docker_source: docker-ce`` (docker-ce or containerd.io from Docker's repository).
    ``gateway`` (ingress_controller: gateway) replaces ingress-nginx: the Gateway API CRDs and
    NGINX Gateway Fabric's manifests from raw.githubusercontent.com (roles/gateway_api), its
    images from ghcr.io on every node. Image registries of the pods every node may run: the
    CNI's (flannel: ``flannel_image_repository``'s host; calico: quay.io), MetalLB's speaker
    (quay.io, with an address pool) and cert-manager's (quay.io; its Deployments land on any
    node). Several needs of one URL are one entry, their reasons joined.
    """
    needs: list[tuple[str, str]] = []
    if docker_source == "docker-ce":
        runtime = "docker-ce" if mode == "minikube" else "containerd.io"
        needs.append((DOWNLOAD_DOCKER, f"{runtime} packages (docker_source: docker-ce)"))
    if mode == "minikube":
        needs += [(GITHUB, "the minikube binary"),
                  (GITHUB_ASSETS, "the minikube binary (GitHub's release-asset host)"),
                  (DL_K8S, "minikube's kubectl"),
                  (REGISTRY_K8S, "the Kubernetes images"),
                  (MINIKUBE_BASE_IMAGE, "minikube's node image (gcr.io/k8s-minikube/kicbase; "
                                        "docker.io/kicbase is its fallback)"),
                  (MINIKUBE_PRELOAD, "minikube's preloaded images tarball")]
        return tuple(needs)
    needs += [(PKGS_K8S, "kubeadm, kubelet and kubectl packages"),
              (REGISTRY_K8S, "the Kubernetes control-plane images" if control_plane
               else "the kube-proxy and pause images")]
    if cni_plugin == "calico":
        needs.append((QUAY, "calico's images (quay.io/calico, cni_plugin: calico)"))
    elif cni_plugin == "flannel":
        needs.append((image_registry_url(flannel_image_repository),
                      f"flannel's images ({flannel_image_repository})"))
    if metallb_pool:
        needs.append((QUAY, "MetalLB's speaker image (quay.io/metallb, a DaemonSet on every "
                            "node)"))
    if cert_manager:
        needs.append((QUAY, "cert-manager's images (quay.io/jetstack; its pods run on any "
                            "node)"))
    if gateway:
        needs.append((GHCR, "NGINX Gateway Fabric's images (ghcr.io/nginx/nginx-gateway-fabric, "
                            "ingress_controller: gateway)"))
    if first_control_plane:
        if metallb_pool or ingress or gateway:
            what = ", ".join(n for n, on in (
                ("MetalLB", metallb_pool), ("ingress-nginx", ingress and not gateway),
                ("Gateway API CRD and NGINX Gateway Fabric", gateway)) if on)
            needs.append((RAW_GITHUB, f"the {what} manifests"))
        needs.append((GITHUB, "the cert-manager manifest"))
        needs.append((GITHUB_ASSETS, "the cert-manager manifest (GitHub's release-asset host)"))
    return _joined(needs)


def _joined(needs: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """One entry per URL, in first-need order, the reasons joined with "; "."""
    why: dict[str, list[str]] = {}
    for url, reason in needs:
        why.setdefault(url, []).append(reason)
    return tuple((url, "; ".join(reasons)) for url, reasons in why.items())


def check_urls(spec: HostSpec, s: dict[str, str]) -> list[CheckResult]:
    if not spec.urls:
        return [CheckResult(spec.name, "https", PASS, "skipped (no URLs to check)")]
    rows = {}
    for line in s.get("urls", "").splitlines():
        bits = line.split("\t")
        if len(bits) >= 2:
            rows[bits[0]] = (bits[1].split(), bits[2].strip() if len(bits) > 2 else "")
    needs = dict(spec.needs)
    results = []
    for url in spec.urls:
        name = f"https {url}"
        # what the inventory's components need is a FAIL when it cannot be had
        bad = FAIL if url in needs else WARN
        needed = (f"; {spec.mode} mode needs it for {needs[url]}, so bootstrap would fail"
                  if url in needs else "")
        if url not in rows:
            results.append(CheckResult(spec.name, name, WARN, "no result (probe cut short)"))
            continue
        (rc, *code), err = rows[url]
        code_text = code[0] if code else "000"
        if rc == "127":
            results.append(CheckResult(spec.name, name, WARN, "curl is not installed"))
        elif code_text.isdigit() and 200 <= int(code_text) < 400:
            results.append(CheckResult(spec.name, name, PASS, f"HTTP {code_text}"))
        elif code_text.isdigit() and 400 <= int(code_text) < 500 and code_text != "403":
            # the probe asks for a host's root: 401 (a registry's token challenge) or 404
            # means the host answers, which is what is checked here
            results.append(CheckResult(spec.name, name, PASS,
                                       f"HTTP {code_text} (the host answers)"))
        elif code_text == "403":
            results.append(CheckResult(spec.name, name, bad, f"HTTP 403 forbidden: "
                                                             f"{DL_K8S_NOTE}{needed}"))
        elif code_text not in ("", "000"):
            results.append(CheckResult(spec.name, name, WARN, f"HTTP {code_text}"))
        else:
            results.append(CheckResult(spec.name, name, bad,
                                       f"not reachable from the host (curl exit {rc}: "
                                       f"{err or 'no message'}); bootstrap downloads packages "
                                       f"and images from here (a proxy or mirror?){needed}"))
    return results


# --- across hosts --------------------------------------------------------------------------


def node_subnets(ip_addr_text: str) -> list[ipaddress.IPv4Interface]:
    """``ip -o -4 addr show`` -> the node's interfaces (without lo, docker, CNI, ...)."""
    out = []
    for line in ip_addr_text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "inet":
            if parts[1].startswith(IGNORED_IFACE_PREFIXES):
                continue
            try:
                out.append(ipaddress.IPv4Interface(parts[3]))
            except ValueError:
                continue
    return out


def pool_range(entry: str) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """A MetalLB pool entry (``CIDR`` or ``A-B``) -> first and last address."""
    if "-" in entry:
        a, b = (x.strip() for x in entry.split("-", 1))
        return ipaddress.IPv4Address(a), ipaddress.IPv4Address(b)
    net = ipaddress.IPv4Network(entry.strip(), strict=False)
    return net.network_address, net.broadcast_address


def check_metallb(pool: list[Any], subnets: dict[str, list[ipaddress.IPv4Interface]],
                  host: str = "all", unchecked: list[str] | None = None) -> list[CheckResult]:
    """WARN for each pool entry outside every node's subnet (L2 mode cannot announce it).
    ``unchecked``: hosts whose addresses are unknown (unreachable), named in the WARN."""
    if not pool or not subnets:
        return []
    results = []
    networks = [(h, i.network) for h, ifs in subnets.items() for i in ifs]
    for entry in pool:
        try:
            first, last = pool_range(str(entry))
        except ValueError:
            continue  # validation reports malformed pools
        inside = [h for h, n in networks if first in n and last in n]
        if inside:
            results.append(CheckResult(host, f"metallb {entry}", PASS,
                                       f"inside the subnet of {', '.join(sorted(set(inside)))}"))
        else:
            nets = ", ".join(sorted({str(n) for _, n in networks})) or "none found"
            results.append(CheckResult(
                host, f"metallb {entry}", WARN,
                f"outside every node's subnet ({nets}): MetalLB in L2 mode can only answer "
                "ARP for addresses on a node's network (on OCI: secondary private IPs of a "
                "node's VNIC)"
                + (f"; not checked: {', '.join(unchecked)}" if unchecked else "")))
    return results


def _ranges(addresses: list[ipaddress.IPv4Address]) -> list[str]:
    """Sorted addresses -> compact ``a-b`` ranges (single addresses alone)."""
    out: list[str] = []
    start = prev = None
    for ip in addresses:
        if start is None:
            start = prev = ip
        elif int(ip) == int(prev) + 1:  # type: ignore[arg-type]
            prev = ip
        else:
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = ip
    if start is not None:
        out.append(str(start) if start == prev else f"{start}-{prev}")
    return out


MAX_POOL_CHECK = 65536  # addresses per pool entry checked one by one


def check_metallb_assigned(pool: list[Any], subnets: dict[str, list[ipaddress.IPv4Interface]],
                           host: str = "all", unchecked: list[str] | None = None
                           ) -> list[CheckResult]:
    """WARN for each pool entry with addresses no node has on an interface. On OCI an L2
    address must be a secondary private IP of a node's VNIC and configured on the node;
    a VCN delivers nothing else. ``subnets`` as from ``node_subnets`` per host."""
    if not pool or not subnets:
        return []
    owner = {i.ip: h for h, ifs in sorted(subnets.items()) for i in ifs}
    results = []
    for entry in pool:
        try:
            first, last = pool_range(str(entry))
        except ValueError:
            continue  # validation reports malformed pools
        size = int(last) - int(first) + 1
        name = f"metallb {entry} assigned"
        if size > MAX_POOL_CHECK:
            results.append(CheckResult(host, name, WARN,
                                       f"{size} addresses: too many to check one by one"))
            continue
        missing = [ipaddress.IPv4Address(n) for n in range(int(first), int(last) + 1)
                   if ipaddress.IPv4Address(n) not in owner]
        if not missing:
            where = sorted({owner[ipaddress.IPv4Address(n)]
                            for n in range(int(first), int(last) + 1)})
            results.append(CheckResult(host, name, PASS,
                                       f"every address is on a node ({', '.join(where)})"))
            continue
        shown = _ranges(missing)
        text = ", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
        results.append(CheckResult(
            host, name, WARN,
            f"{len(missing)} of {size} address(es) not assigned on any node: {text}. On OCI "
            "the VCN delivers only addresses a VNIC owns: assign each as a secondary private "
            "IP of a node's VNIC and configure it on that node (roles/metallb/README.md); on "
            "a plain layer-2 LAN MetalLB's ARP answers are enough"
            + (f"; not checked: {', '.join(unchecked)}" if unchecked else "")))
    return results
