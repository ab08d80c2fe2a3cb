"""Doctor's side effects in one place: one SSH session per host, all hosts in parallel."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from provision.connection import connection_spec
from provision.doctor.checks import run_checks
from provision.doctor.local import gather_local, unsupported
from provision.doctor.model import FAIL, PASS, WARN, CheckResult, HostSpec
from provision.doctor.netchecks import check_metallb, check_metallb_assigned, node_subnets
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


def host_spec(host: Host, urls: Sequence[str]) -> HostSpec:
    is_cp = "control_plane" in host.groups or "workers" not in host.groups
    return HostSpec(
        name=host.name, mode=str(_var(host, "provision_mode")), control_plane=is_cp,
        ingress=bool(_var(host, "ingress_nginx_enabled")), pod_cidr=str(_var(host, "pod_cidr")),
        cni_plugin=str(_var(host, "cni_plugin")), urls=tuple(urls),
    )


def target(host: Host) -> Target:
    """The SSH target from the one connection spec Ansible runs use too (same known_hosts)."""
    spec = connection_spec(host)
    return Target(spec.name, spec.address, spec.port, spec.user, spec.key_file,
                  spec.known_hosts_file, check_host_key=spec.check_host_key)


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
    script = build_script(tuple(urls))
    report = DoctorReport()
    if not hosts:
        return report

    def one(host: Host) -> Gathered:
        try:
            if host.connection == "local":
                g = gather_local(host.name, script)
            elif host.connection in SSH_CONNECTIONS:
                g = gather(target(host), script, timeout=connect_timeout)
            else:
                g = unsupported(host.name, host.connection)
        except Exception as exc:  # noqa: BLE001 - one host's surprise must not hide the others
            g = Gathered(host.name, CheckResult(host.name, "ssh", FAIL,
                                                f"doctor error: {type(exc).__name__}: {exc}"),
                         "error")
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
            report.results += run_checks(host_spec(host, urls), g.sections)
            subnets[host.name] = node_subnets(g.sections.get("ipaddr", ""))
    unchecked = [h.name for h in hosts if h.name not in subnets]
    report.results += check_metallb(list(metallb_pool), subnets, unchecked=unchecked)
    report.results += check_metallb_assigned(list(metallb_pool), subnets,
                                             unchecked=unchecked)
    report.seconds = time.monotonic() - started
    return report
