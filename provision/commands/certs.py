"""`provision certs`: the cluster PKI (check, renew) and host certificates by ACME (issue)."""

from __future__ import annotations

import sys
from typing import Any

import click

from provision import output
from provision.commands._common import global_options, options, print_summary
from provision.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from provision.patterns import AsciiIntType, click_type


@click.group(name="certs")
def cli() -> None:
    """Host ACME certificates and the cluster PKI.

    \b
    Examples:
      provision -i prod certs check
      provision -i prod certs check --json
      provision -i prod certs renew --yes
      provision -i prod certs issue --domain registry.example.org --challenge dns-01
    """


@global_options("inventory", "limit", "check", "verbosity", "json")
@cli.command(name="check")
@click.option("--kubernetes-dir", default="/etc/kubernetes", show_default=True,
              metavar="DIR", type=click_type("abs_path"),
              help="kubeadm's directory on the nodes (pki/ and *.conf): an absolute, "
                   "normalised path.")
@click.option("--warn-days", default=30, show_default=True, type=AsciiIntType(minimum=1),
              help="WARN when fewer days than this are left.")
def check(kubernetes_dir: str, warn_days: int) -> int:
    """Show the expiry of every kubeadm certificate on each control-plane node.

    Reads the CAs, the apiserver/front-proxy/etcd certificates and the client certificates
    embedded in admin.conf, super-admin.conf, controller-manager.conf, scheduler.conf and
    kubelet.conf. Changes nothing.

    Exit codes: 0 all valid (WARN under --warn-days is not a failure), 1 a certificate is
    expired, missing or unreadable, 2 bad input, 3 a node unreachable.
    """
    opts = options()
    inv, selected = _control_planes(opts, kubernetes_dir, "certs check")
    check_result = _check(opts, inv, selected, kubernetes_dir, warn_days)
    return output.finish(output.result_object(**check_result))


def _control_planes(opts: Any, kubernetes_dir: str, command: str) -> tuple[Any, set[str]]:
    """The valid inventory and the selected control-plane hosts (exit 2 before any contact)."""
    from provision.cluster import refuse_minikube
    from provision.commands._common import load_inventory

    inv = load_inventory(opts)
    refuse_minikube(inv, command)
    if not inv.control_plane:
        raise UsageError(f"{inv.path}: no host in group 'control_plane': {command} works on "
                         "the PKI of the control-plane nodes")
    selected = {h.name for h in inv.limited(opts.limit)} & {h.name for h in inv.control_plane}
    if not selected:
        raise UsageError(f"--limit {opts.limit}: selects no host of group 'control_plane'")
    return inv, selected


def _check(opts: Any, inv: Any, selected: set[str], kubernetes_dir: str,
           warn_days: int) -> dict[str, Any]:
    """Run certs-check.yml, print the table and return the result fields (exit_code ...)."""
    from datetime import UTC, datetime

    from provision.certs import pki
    from provision.cluster import line, missing
    from provision.runner import run_playbook, run_report

    output.echo(f"certs check: reading {len(pki.PKI_CERTS)} certificates under "
                f"{kubernetes_dir} on {', '.join(sorted(selected))}", err=True)
    result = run_playbook(command="certs check", playbook="certs-check.yml", inventory=inv,
                          extravars={"certs_check_items": pki.playbook_items(kubernetes_dir),
                                     "cluster_present_path": f"{kubernetes_dir}/admin.conf"},
                          limit=opts.limit, check=opts.check, verbosity=opts.verbosity)
    if (detail := missing(result)) is not None:  # no cluster: one line, no table
        text = line(opts, detail)
        output.echo(text, err=True)
        return dict(exit_code=EXIT_FAILED, run_dir=str(result.run_dir), hosts=result.hosts,
                    errors=[{"message": text}], cluster=False)
    now = datetime.now(UTC)
    rows: list[pki.CertStatus] = []
    for host, lines in sorted((run_report(result).get("certificates") or {}).items()):
        rows += pki.parse_report(host, [str(x) for x in lines or []], now, kubernetes_dir,
                                 warn_days)
    if rows:
        for line in pki.table_lines(rows):
            output.echo(line)
    c = pki.counts(rows)
    output.echo(f"certs check: {c[pki.OK]} OK, {c[pki.WARN]} WARN, {c[pki.FAIL]} FAIL, "
                f"{c[pki.ABSENT]} ABSENT on {len({r.host for r in rows})} host(s)")
    if not result.ok:
        print_summary(result)
    exit_code = result.exit_code if result.exit_code != EXIT_OK else pki.exit_status(rows)
    errors: list[Any] = list(result.errors) + [
        {"host": r.host, "certificate": r.name, "message": r.message}
        for r in rows if r.status == pki.FAIL]
    return dict(exit_code=exit_code, run_dir=str(result.run_dir), hosts=result.hosts,
                errors=errors, certificates=[r.as_dict() for r in rows], counts=c,
                warn_days=warn_days)


@global_options("inventory", "limit", "check", "verbosity", "json", "extra_vars")
@cli.command(name="issue")
@click.option("--domain", metavar="NAME", type=click_type("domain"),
              help="Domain of the certificate [acme_domain]; *.NAME needs dns-01.")
@click.option("--challenge", type=click.Choice(["http-01", "dns-01"]),
              help="Challenge type [acme_challenge; default http-01].")
@click.option("--email", metavar="ADDR", type=click_type("email"),
              help="ACME account contact [acme_email].")
@click.option("--server", metavar="URL", type=click_type("https_url"),
              help="ACME directory URL [acme_server; default Let's Encrypt staging].")
@click.option("--dns-provider", metavar="CODE", type=click_type("dns_provider"),
              help="lego DNS provider for dns-01 [acme_dns_provider]; its credentials come "
                   "from acme_dns_env in the inventory.")
@click.option("--service", metavar="UNIT", type=click_type("unit"),
              help="systemd service to reload [acme_service], e.g. nginx or nginx.service.")
def issue(**flags: Any) -> int:
    """Get a host certificate from an ACME CA (lego), install it for a service, renew it.

    Installs lego from the distribution on the selected host(s), obtains the certificate with
    http-01 (lego's server on port 80, or acme_http_webroot) or dns-01 (a lego DNS provider;
    credentials from acme_dns_env, never logged), installs it at acme_cert_path/acme_key_path
    (key mode 0600), reloads acme_service, and installs the systemd timer
    acme-renew-<domain>.timer that renews when fewer than acme_renew_days (30) days are left.
    Flags override the inventory's acme_* variables. See docs/certs.md.

    \b
    Examples:
      provision -i prod --limit vm1 certs issue --domain registry.example.org \\
          --email ops@example.org --service docker-registry
      provision -i prod --limit vm1 certs issue --domain registry.example.org \\
          --challenge dns-01 --dns-provider cloudflare
    """
    from provision.certs import acme
    from provision.commands._common import load_inventory, run_and_finish
    from provision.validate import check_limit

    opts = options()
    inv = load_inventory(opts)
    selected = check_limit(inv, opts.limit)
    extravars = acme.issue_vars(flags)
    problems = acme.check_issue({h.name: h.vars for h in selected}, extravars,
                                limited=bool(opts.limit))
    if problems:
        from provision.errors import ValidationError

        raise ValidationError([f"{inv.path}: {p}" for p in problems])
    return run_and_finish(opts, "certs issue", "certs-issue.yml", extravars, inventory=inv)


@global_options("inventory", "limit", "check", "verbosity", "json", "extra_vars")
@cli.command(name="renew")
@click.option("--kubernetes-dir", default="/etc/kubernetes", show_default=True,
              metavar="DIR", type=click_type("abs_path"),
              help="kubeadm's directory on the nodes (pki/ and *.conf): an absolute, "
                   "normalised path.")
@click.option("--before-days", type=AsciiIntType(minimum=1, maximum=36500), metavar="N",
              help="Renew a node's certificates when one has fewer than N days left "
                   "[kubeadm_certs_renew_before_days; default 30].")
@click.option("--force", is_flag=True, show_envvar=True,
              help="Renew even when no certificate is within --before-days of expiry.")
@click.option("--timer/--no-timer", default=None,
              help="Install (or remove) the monthly renewal timer on the nodes "
                   "[kubeadm_certs_timer_enabled; default off].")
@click.option("--yes", is_flag=True, show_envvar=True,
              help="Act without asking for confirmation.")
def renew(kubernetes_dir: str, before_days: int | None, force: bool, timer: bool | None,
          yes: bool) -> int:
    """Renew the kubeadm certificates, one control-plane node at a time, then re-check.

    On each control-plane node in turn (serial 1; a failure stops before the next node):
    when a certificate has fewer than --before-days days left (or with --force), runs
    `kubeadm certs renew all`, restarts the control-plane static pods the documented way
    (their manifests moved out of /etc/kubernetes/manifests until the kubelet stopped them,
    then moved back) and waits until they run again and the API server answers; copies the
    renewed admin.conf to the SSH user's ~/.kube/config (0600). Then reads every certificate
    like `provision certs check` and exits with its code. The CAs are not renewed (kubeadm
    cannot). See roles/kubeadm_certs/README.md.

    \b
    Examples:
      provision -i prod certs renew
      provision -i prod certs renew --yes --json
      provision -i prod --limit cp1 certs renew --force --yes
      provision -i prod certs renew --timer --yes
    """
    from provision.commands._common import run_extravars
    from provision.runner import run_playbook

    opts = options()
    inv, selected = _control_planes(opts, kubernetes_dir, "certs renew")
    extravars: dict[str, Any] = {"kubeadm_certs_kubernetes_dir": kubernetes_dir,
                                 "cluster_present_path": f"{kubernetes_dir}/admin.conf"}
    if before_days is not None:
        extravars["kubeadm_certs_renew_before_days"] = before_days
    if force:
        extravars["kubeadm_certs_force"] = True
    if timer is not None:
        extravars["kubeadm_certs_timer_enabled"] = timer
    extravars = run_extravars(opts, "certs renew", extravars)  # -e: exit 2 before asking
    hosts = ", ".join(sorted(selected))
    if not yes and not opts.check:
        if output.JSON_MODE or not sys.stdin.isatty():
            raise UsageError("certs renew restarts the control plane of every node it renews: "
                             "add --yes to run it without a terminal (or with --json)")
        if not click.confirm(f"Renew the certificates and restart the control plane on {hosts}, "
                             "one node at a time?", err=True):
            output.echo("certs renew: nothing was done")
            return output.finish(output.result_object(exit_code=EXIT_USAGE,
                                                      errors=["not confirmed"]))
    output.echo(f"certs renew: {hosts}, one at a time", err=True)
    result = run_playbook(command="certs renew", playbook="certs-renew.yml", inventory=inv,
                          extravars=extravars, limit=opts.limit, check=opts.check,
                          verbosity=opts.verbosity)
    from provision.cluster import finish_if_missing

    if (code := finish_if_missing(result, opts)) is not None:
        return code
    print_summary(result)
    renewed = sorted(h for h, s in result.hosts.items() if s.get("changed"))
    if not result.ok:
        return output.finish(output.result_object(
            exit_code=result.exit_code, run_dir=str(result.run_dir), hosts=result.hosts,
            errors=list(result.errors), renew={"hosts": result.hosts, "ok": False}))
    output.echo("certs renew: done; checking every certificate again", err=True)
    checked = _check(opts, inv, selected, kubernetes_dir, pki_warn_days())
    checked["renew"] = {"run_dir": str(result.run_dir), "hosts": result.hosts,
                        "changed_hosts": renewed, "ok": True}
    return output.finish(output.result_object(**checked))


def pki_warn_days() -> int:
    from provision.certs.pki import WARN_DAYS

    return WARN_DAYS
