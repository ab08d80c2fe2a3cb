"""`provision doctor`: preflight checks over SSH; changes nothing on the hosts."""

from __future__ import annotations

import sys

import click

from provision import output
from provision.commands._common import global_options, options
from provision.doctor.options import FiniteFloatRange


@global_options("inventory", "limit", "verbosity", "json", "extra_vars", refuses={
    "check": "doctor never changes anything on the hosts; run it without --check"})
@click.command(name="doctor")
@click.option("--url", "urls", multiple=True, metavar="URL",
              help="HTTP(S) endpoint the hosts should reach (repeatable; WARN when not; http:// or "
                   "https:// only). "
                   "Default: the download hosts the inventory's components need "
                   "(pkgs.k8s.io, registry.k8s.io, github.com, ...; download.docker.com only "
                   "with docker_source: docker-ce), FAIL when one is unreachable.")
@click.option("--skip-network-checks", is_flag=True,
              help="Do not test outbound HTTPS from the hosts (air-gapped hosts, tests).")
@click.option("--timeout", type=FiniteFloatRange(0.5, 300), default=10.0, show_default=True,
              help="SSH connect timeout in seconds, per host.")
def cli(urls: tuple[str, ...], skip_network_checks: bool, timeout: float) -> int:
    """Preflight every host over SSH, in parallel, without changing anything.

    \b
    Checks: SSH reachability, host key and login; passwordless sudo; OS, arch, CPUs, memory
    and disk; unallocated disk after a volume resize; swap; clock sync; cgroup version; ports
    already in use; firewall rules (OCI's iptables REJECT) for 6443, 10250, 80, 443 and pod
    traffic; HTTPS to registry.k8s.io, pkgs.k8s.io, download.docker.com from the host;
    MetalLB addresses outside every node's subnet; the requested Kubernetes minor past its
    upstream end of life (WARN); node-to-node (kubeadm, 2+ hosts): a listener on each host's
    free cluster ports (6443, 10250, etcd between control planes, 8472/udp flannel or
    179/tcp calico, 7946 tcp/udp with a MetalLB pool, the ingress NodePort) probed from every
    other host; a FAIL names the pair, the port and the OCI security-list rule to add.

    \b
    Examples:
      provision -i prod doctor
      provision -i lab --limit cp1 doctor --skip-network-checks
      provision -i prod --json doctor | jq '.checks[] | select(.status != "PASS")'

    Exit codes: 0 all PASS/WARN, 1 a FAIL, 2 bad inventory (nothing contacted),
    3 a host unreachable.
    """
    from provision.commands._common import load_inventory
    from provision.doctor.engine import run_doctor
    from provision.doctor.options import url_problems
    from provision.doctor.probe import DEFAULT_URLS
    from provision.doctor.report import render, summary_line
    from provision.errors import UsageError
    from provision.validate import check_limit

    if problems := url_problems(urls):
        raise UsageError("\n".join(problems))  # before the inventory: nothing contacted
    opts = options()
    inv = load_inventory(opts)  # -i, -e, --limit: exit 2 before any host is contacted
    hosts = check_limit(inv, opts.limit)
    chosen = () if skip_network_checks else (urls or DEFAULT_URLS)
    pool = []
    if len(hosts) == len(inv.hosts):  # the subnets of every node are needed
        for h in hosts:
            for entry in h.vars.get("metallb_addresses") or []:
                if entry not in pool:
                    pool.append(entry)
    click.echo(f"doctor: checking {len(hosts)} host(s) over SSH ...", err=True)

    def progress(g) -> None:  # noqa: ANN001 - Gathered
        click.echo(f"  {g.name}: {g.connection.status} ssh ({g.seconds:.1f} s)", err=True)

    report = run_doctor(hosts, urls=chosen, connect_timeout=timeout, metallb_pool=pool,
                        on_host_done=progress if opts.verbosity or sys.stderr.isatty() else None)
    stream = sys.stderr if output.JSON_MODE else sys.stdout
    render(report.results, stream, rich=stream.isatty())
    click.echo(summary_line(report.results, report.seconds, report.unreachable), err=True)
    errors = [{"host": r.host, "check": r.check, "message": r.message}
              for r in report.results if r.status == "FAIL"]
    return output.finish(output.result_object(
        exit_code=report.exit_code, hosts=report.host_counts(), errors=errors,
        checks=[r.to_json() for r in report.results], unreachable=report.unreachable,
        elapsed_s=round(report.seconds, 3)))
