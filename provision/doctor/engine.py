"""Doctor's side effects in one place: one SSH session per host, all hosts in parallel."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from provision.connection import connection_spec
from provision.doctor import mesh
from provision.doctor.checks import check_kubernetes_support, run_checks
from provision.doctor.local import gather_local, unsupported
from provision.doctor.mirrors import mirrored, proxy_env, proxy_exports, proxy_note
from provision.doctor.model import FAIL, PASS, WARN, CheckResult, HostSpec
from provision.doctor.netchecks import (
    check_metallb,
    check_metallb_assigned,
    needed_urls,
    node_subnets,
)
from provision.doctor.probe import DEFAULT_URLS, build_script
from provision.doctor.ssh import CONNECT_TIMEOUT, Gathered, Target, gather
from provision.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE
from provision.inventory import Host
from provision.schema import VARIABLES

MAX_WORKERS = 32
SSH_CONNECTIONS = ("ssh", "paramiko", "smart")
_DEFAULTS = {v.name: v.default for v in VARIABLES}


def _var(host: Host, name: str) -> Any:
    value = host.vars.get(name)
    return _DEFAULTS.get(name) if value is None else value


def _is_control_plane(host: Host) -> bool:
    return "control_plane" in host.groups or "workers" not in host.groups


def _gateway(host: Host) -> bool:
    """ingress_controller: gateway (kubeadm add-ons: NGINX Gateway Fabric, not ingress-nginx)."""
    return (_var(host, "ingress_controller") == "gateway"
            and _var(host, "provision_mode") == "kubeadm")


def _ingress(host: Host) -> bool:
    """ingress-nginx is installed (or, minikube, its addon's ports matter)."""
    return bool(_var(host, "ingress_nginx_enabled")) and not _gateway(host)


def gateway_node_ports(host: Host) -> tuple[int, ...]:
    """The Gateway's HTTP and HTTPS node ports in NodePort mode (roles/gateway_api defaults
    30080/30443); empty in LoadBalancer mode or without the Gateway."""
    if not _gateway(host) or host.vars.get("gateway_api_service_mode") != "NodePort":
        return ()
    return (int(host.vars.get("gateway_api_http_node_port", 30080)),
            int(host.vars.get("gateway_api_https_node_port", 30443)))


def _flannel_repository(host: Host) -> dict[str, str]:
    """roles/cni's ``cni_flannel_image_repository`` when the inventory sets it (a role option:
    its default is needed_urls' own, tests/test_doctor_registries.py holds them equal)."""
    value = host.vars.get("cni_flannel_image_repository")
    return {"flannel_image_repository": str(value)} if isinstance(value, str) and value else {}


def host_needs(host: Host, first_control_plane: bool) -> tuple[tuple[str, str], ...]:
    """(url, why) this host's default bootstrap downloads from (netchecks.needed_urls)."""
    pool = bool(_var(host, "metallb_addresses") or host.vars.get("metallb_pools"))
    return mirrored(needed_urls(mode=str(_var(host, "provision_mode")),
                                docker_source=str(_var(host, "docker_source")),
                                control_plane=_is_control_plane(host),
                                first_control_plane=first_control_plane,
                                ingress=_ingress(host), metallb_pool=pool,
                                gateway=_gateway(host), cni_plugin=str(_var(host, "cni_plugin")),
                                **_flannel_repository(host)), host.vars,
                    mode=str(_var(host, "provision_mode")))


def host_spec(host: Host, urls: Sequence[str] | None,
              first_control_plane: bool = False) -> HostSpec:
    """``urls`` None: the URLs the inventory's components need, unreachable = FAIL; a list
    (``doctor --url``): exactly those, unreachable = WARN."""
    needs = host_needs(host, first_control_plane) if urls is None else ()
    return HostSpec(
        name=host.name, mode=str(_var(host, "provision_mode")),
        control_plane=_is_control_plane(host),
        ingress=_ingress(host), gateway=_gateway(host),
        gateway_node_ports=gateway_node_ports(host), pod_cidr=str(_var(host, "pod_cidr")),
        cni_plugin=str(_var(host, "cni_plugin")),
        urls=tuple(u for u, _ in needs) if urls is None else tuple(urls), needs=needs,
    )


def target(host: Host) -> Target:
    """The SSH target from the one connection spec Ansible runs use too (same known_hosts)."""
    return connection_spec(host)


@dataclass
class DoctorReport:
    results: list[CheckResult] = field(default_factory=list)
    gathered: dict[str, Gathered] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def unreachable(self) -> list[str]:
        return [n for n, g in self.gathered.items() if g.unreachable]

    @property
    def exit_code(self) -> int:
        if self.unreachable:
            return EXIT_UNREACHABLE
        if any(r.status == FAIL for r in self.results):
            return EXIT_FAILED
        return EXIT_OK

    def host_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for name, g in self.gathered.items():
            rows = [r for r in self.results if r.host == name]
            out[name] = {
                "ok": sum(r.status == PASS for r in rows),
                "warn": sum(r.status == WARN for r in rows),
                "failed": sum(r.status == FAIL for r in rows),
                "unreachable": int(g.unreachable), "changed": 0, "skipped": 0,
            }
        return out


def run_doctor(hosts: Sequence[Host], *, urls: Sequence[str] = DEFAULT_URLS,
               connect_timeout: float = CONNECT_TIMEOUT, metallb_pool: Sequence[Any] = (),
               max_workers: int = MAX_WORKERS,
               on_host_done: Callable[[Gathered], None] | None = None) -> DoctorReport:
    """Probe every host once (in parallel) and run all checks over what came back."""
    started = time.monotonic()
    report = DoctorReport()
    if not hosts:
        return report
    # the default list means "what the inventory needs", decided per host
    per_host: Sequence[str] | None = None if tuple(urls) == DEFAULT_URLS else urls
    first_cp = next((h.name for h in hosts if _is_control_plane(h)), None)
    specs = {h.name: host_spec(h, per_host, h.name == first_cp) for h in hosts}
    all_urls = tuple(dict.fromkeys(u for sp in specs.values() for u in sp.urls))
    proxies = {h.name: proxy_env(h.vars) for h in hosts}

    def one(host: Host) -> Gathered:
        script = build_script(all_urls, exports=proxy_exports(proxies[host.name]))
        g = run_script(host, script, connect_timeout)
        if on_host_done:
            on_host_done(g)
        return g

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(hosts)))) as pool:
        gathered = list(pool.map(one, hosts))
    subnets = {}
    for host, g in zip(hosts, gathered, strict=True):
        report.gathered[host.name] = g
        report.results.append(g.connection)
        if g.reason == "ok":
            report.results += run_checks(specs[host.name], g.sections)
            if proxies[host.name] and specs[host.name].urls:
                note = proxy_note(proxies[host.name])
                report.results.append(CheckResult(host.name, "proxy", PASS,
                                                  f"downloads probed {note}"))
            support = check_kubernetes_support(host.name, _var(host, "kubernetes_version"),
                                               datetime.date.today())
            report.results += [support] if support else []
            subnets[host.name] = node_subnets(g.sections.get("ipaddr", ""))
    unchecked = [h.name for h in hosts if h.name not in subnets]
    report.results += check_metallb(list(metallb_pool), subnets, unchecked=unchecked)
    report.results += check_metallb_assigned(list(metallb_pool), subnets,
                                             unchecked=unchecked)
    report.results += run_mesh([h for h in hosts if report.gathered[h.name].reason == "ok"],
                               report.gathered, connect_timeout=connect_timeout,
                               metallb_pool=bool(metallb_pool), max_workers=max_workers)
    report.seconds = time.monotonic() - started
    return report


def run_script(host: Host, script: str, connect_timeout: float = CONNECT_TIMEOUT) -> Gathered:
    """Run one doctor script on a host (SSH, or sh for ansible_connection local)."""
    try:
        if host.connection == "local":
            return gather_local(host.name, script)
        if host.connection in SSH_CONNECTIONS:
            return gather(target(host), script, timeout=connect_timeout)
        return unsupported(host.name, host.connection)
    except Exception as exc:  # noqa: BLE001 - one host's surprise must not hide the others
        return Gathered(host.name, CheckResult(host.name, "ssh", FAIL,
                                               f"doctor error: {type(exc).__name__}: {exc}"),
                        "error")


def run_mesh(hosts: Sequence[Host], gathered: dict[str, Gathered], *,
             connect_timeout: float = CONNECT_TIMEOUT, metallb_pool: bool = False,
             max_workers: int = MAX_WORKERS) -> list[CheckResult]:
    """Node-to-node probes between the reachable hosts of a kubeadm inventory (see
    provision.doctor.mesh): listeners on every host, then probes from every host, then the
    listeners are stopped. Skipped for minikube, one host, or hosts sharing one address (the
    same machine)."""
    if len(hosts) < 2 or any(_var(h, "provision_mode") != "kubeadm" for h in hosts):
        return []
    members = []
    for h in hosts:
        address, subnet = mesh.node_address(h.address, gathered[h.name].sections.get("ipaddr", ""),
                                            local=h.connection == "local")
        members.append(mesh.MeshHost(h.name, address, _is_control_plane(h), subnet))
    if len({m.address for m in members}) < len(members):
        return []
    first = hosts[0]
    ingress_nodeport = (_ingress(first)
                        and first.vars.get("ingress_nginx_service_mode") == "NodePort")
    node_port = int(first.vars.get("ingress_nginx_http_node_port", 30080)) \
        if ingress_nodeport else None
    if gateway_node_ports(first):  # the Gateway's NGINX, reached on its HTTP node port
        node_port = gateway_node_ports(first)[0]
    cni = str(_var(first, "cni_plugin"))
    flows = mesh.plan(members, cni_plugin=cni, metallb_pool=metallb_pool, node_port=node_port)
    by_name = {h.name: h for h in hosts}
    workers = max(1, min(max_workers, len(hosts)))

    def listen(m: mesh.MeshHost) -> tuple[str, tuple[set[str], dict[str, str], int | None]]:
        items = mesh.listen_ports(flows, m.name)
        if not items:
            return m.name, (set(), {}, None)
        g = run_script(by_name[m.name], mesh.listener_script(m.address, items), connect_timeout)
        return m.name, mesh.parse_listener(g.sections.get("mesh", ""))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        listeners = dict(pool.map(listen, members))
    addresses = {m.name: m.address for m in members}

    def probe(m: mesh.MeshHost) -> tuple[str, dict[tuple[str, int, str], str]]:
        targets = [(addresses[f.dst], f.port, f.proto) for f in flows
                   if f.src == m.name and f"{f.port}/{f.proto}" in listeners[f.dst][0]]
        if not targets:
            return m.name, {}
        g = run_script(by_name[m.name], mesh.prober_script(targets), connect_timeout)
        return m.name, mesh.parse_probes(g.sections.get("mesh", ""))

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            probed = dict(pool.map(probe, members))
    finally:
        stops = [(by_name[n], pid) for n, (_, _, pid) in listeners.items() if pid]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda hp: run_script(hp[0], mesh.stop_script(hp[1]),
                                                connect_timeout), stops))
    listening = {n: (ready, busy) for n, (ready, busy, _) in listeners.items()}
    return mesh.verdicts(members, flows, listening, probed,
                         calico_ipip=cni == "calico")
