"""`provision status`: the cluster's nodes and versions, read-only.

kubeadm mode runs the upgrade discovery (``playbooks/upgrade-discover.yml`` without its
repository lookup), minikube mode the minikube discovery; ``provision/status.py`` (pure) turns
the report into the table or the JSON object and judges health.
"""

from __future__ import annotations

from typing import Any

import click

from provision import output
from provision.commands._common import global_options
from provision.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE


@global_options("inventory", "limit", "check", "verbosity", "json", refuses={
    "extra_vars": "status only reads the cluster; it takes no variables"})
@click.command(name="status")
def cli() -> int:
    """Show the cluster's nodes and versions; changes nothing.

    kubeadm mode, per node: inventory host, role, Ready/NotReady, SchedulingDisabled
    (cordoned), the kubelet version it reports, the kubeadm/kubelet/kubectl packages and
    whether they are held, the kube-apiserver image on control planes; for the cluster: the
    kubeadm-config kubernetesVersion, the API server version, the upgrade lock label, an
    unfinished upgrade journal (next hop and step), version skew, inventory hosts that are
    not nodes and nodes missing from the inventory. minikube mode: profile, status,
    Kubernetes and minikube versions, driver, user.

    --limit: only the selected hosts are read and shown (the first control-plane node is
    always asked for the cluster's node list; its row is shown only when selected).

    \b
    Exit codes:
      0  healthy (warnings allowed: mixed versions within the skew policy, packages not
         held, a kubelet package not yet running, a left-over lock of a finished upgrade)
      1  a problem: a node NotReady or cordoned, a version skew violation, a host that is
         not a node or a node not in the inventory, an unfinished upgrade, a lock label no
         unfinished upgrade owns, the API not answering; minikube: no profile or stopped
      2  bad inventory (nothing contacted)
      3  a host unreachable (what could be read is still shown)

    \b
    Examples:
      provision -i prod status
      provision -i prod status --limit workers
      provision -i lab --json status | jq '.status.nodes[] | {name, status, kubelet}'
    """
    from provision.commands._common import load_inventory, options

    opts = options()
    inv = load_inventory(opts)  # -i and --limit: exit 2 before any contact
    if inv.mode == "minikube":
        return minikube(inv, opts.verbosity, opts.limit, opts.check)
    return kubeadm(inv, opts.verbosity, opts.limit, opts.check)


def expected_nodes(inv: Any, limit: str | None = None) -> dict[str, tuple[str, str]]:
    """Inventory host -> (role, the node name it should have), as the discovery role
    names it (kubeadm_*_node_name, else the host name); only hosts ``limit`` selects."""
    out: dict[str, tuple[str, str]] = {}
    selected = {h.name for h in inv.limited(limit)}
    for role, hosts in (("worker", inv.workers), ("control-plane", inv.control_plane)):
        for h in (h for h in hosts if h.name in selected):
            name = (h.vars.get("kubeadm_control_plane_node_name")
                    or h.vars.get("kubeadm_worker_node_name") or h.name)
            out[h.name] = (role, str(name).lower())
    return out


def _failed(run: Any, what: str) -> int:
    from provision.commands._common import finish_failed_read

    return finish_failed_read(run, f"{what}: no status (nothing was changed)")


def limit_report(data: dict[str, Any], expected: dict[str, tuple[str, str]]
                 ) -> dict[str, Any]:
    """The discovery report cut to the selected hosts (pure): their facts and their nodes
    (by the node name each reported, else the expected one); the cluster-wide fields stay."""
    facts = {h: f for h, f in (data.get("hosts") or {}).items() if h in expected}
    names = {str((facts.get(h) or {}).get("node_name") or name)
             for h, (_, name) in expected.items()}
    nodes = dict(data.get("nodes_json") or {})
    nodes["items"] = [n for n in nodes.get("items") or []
                      if n.get("metadata", {}).get("name") in names]
    return {**data, "hosts": facts, "nodes_json": nodes}


def run_limit(inv: Any, limit: str | None) -> str | None:
    """The run's --limit: the hosts the pattern selects plus the first control-plane node,
    which reads the cluster's node list (None: every host). Host names, not the pattern:
    Ansible applies `!` last, so "PATTERN,cp1" would still exclude cp1 for '!cp1'."""
    if not limit:
        return None
    names = [h.name for h in inv.limited(limit)]
    first = inv.control_plane[0].name if inv.control_plane else None
    return ",".join(names + ([first] if first and first not in names else []))


def kubeadm(inv: Any, verbosity: int, limit: str | None = None, check: bool = False) -> int:
    from provision import status
    from provision.upgrade.declared import declared, drift_warning
    from provision.upgrade.report import run_report_playbook

    output.echo("Reading the cluster (read-only) ...", err=True)
    data, _, run = run_report_playbook(
        inv, verbosity, "upgrade-discover.yml", None,
        {"kubeadm_upgrade_discover_read_repository": False}, command="status",
        accept_failed=True, limit=run_limit(inv, limit), check=check)
    if data is None:
        return _failed(run, "reading the cluster from the first control-plane node failed")
    expected = expected_nodes(inv, limit)
    if limit:
        data = limit_report(data, expected)
    st = status.from_report(data, expected)
    if drift := drift_warning(declared(inv), st.cluster_version):  # the one declared version
        import dataclasses

        st = dataclasses.replace(st, warnings=(*st.warnings, drift))
    output.echo(status.text(st))
    if run.errors and not run.unreachable_hosts:  # a host failed a read: say where
        from provision.commands._common import print_summary

        print_summary(run)
    code = (EXIT_UNREACHABLE if run.unreachable_hosts else
            EXIT_FAILED if st.problems or not run.ok else EXIT_OK)
    return output.finish(output.result_object(
        exit_code=code, run_dir=str(run.run_dir), hosts=run.hosts,
        errors=[*st.problems, *run.errors], status=status.to_json(st)))


def minikube(inv: Any, verbosity: int, limit: str | None = None, check: bool = False) -> int:
    from provision import status
    from provision.upgrade.report import run_report_playbook

    output.echo("Reading the minikube profile (read-only) ...", err=True)
    data, _, run = run_report_playbook(inv, verbosity, "upgrade-minikube-discover.yml",
                                       "minikube_upgrade_report_dir", command="status",
                                       limit=limit, check=check)
    if data is None:
        return _failed(run, "reading the minikube profile failed")
    st = status.minikube_from_report(data)
    output.echo(status.minikube_text(st))
    return output.finish(output.result_object(
        exit_code=EXIT_FAILED if st.problems else EXIT_OK, run_dir=str(run.run_dir),
        hosts=run.hosts, errors=list(st.problems), status=status.minikube_json(st)))
