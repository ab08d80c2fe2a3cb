"""`provision status`: the cluster's nodes and versions, read-only.

kubeadm mode runs the upgrade discovery (``playbooks/upgrade-discover.yml`` without its
repository lookup), minikube mode the minikube discovery; ``provision/status.py`` (pure) turns
the report into the table or the JSON object and judges health.
"""

from __future__ import annotations

from typing import Any

import click

from provision import output
from provision.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE


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
      provision -i lab --json status | jq '.status.nodes[] | {name, status, kubelet}'
    """
    from provision.commands._common import options
    from provision.validate import load_valid_inventory

    opts = options()
    inv = load_valid_inventory(opts.inventory)
    if inv.mode == "minikube":
        return minikube(inv, opts.verbosity)
    return kubeadm(inv, opts.verbosity)


def expected_nodes(inv: Any) -> dict[str, tuple[str, str]]:
    """Inventory host -> (role, the node name it should have), as the discovery role
    names it (kubeadm_*_node_name, else the host name)."""
    out: dict[str, tuple[str, str]] = {}
    for role, hosts in (("worker", inv.workers), ("control-plane", inv.control_plane)):
        for h in hosts:
            name = (h.vars.get("kubeadm_control_plane_node_name")
                    or h.vars.get("kubeadm_worker_node_name") or h.name)
            out[h.name] = (role, str(name).lower())
    return out


def _failed(run: Any, what: str) -> int:
    from provision.commands._common import finish_failed_read

    return finish_failed_read(run, f"{what}: no status (nothing was changed)")


def kubeadm(inv: Any, verbosity: int) -> int:
    from provision import status
    from provision.commands.upgrade import run_report_playbook

    output.echo("Reading the cluster (read-only) ...", err=True)
    data, _, run = run_report_playbook(
        inv, verbosity, "upgrade-discover.yml", "kubeadm_upgrade_report_dir",
        {"kubeadm_upgrade_discover_read_repository": False}, command="status",
        accept_failed=True)
    if data is None:
        return _failed(run, "reading the cluster from the first control-plane node failed")
    st = status.from_report(data, expected_nodes(inv))
    output.echo(status.text(st))
    if run.errors and not run.unreachable_hosts:  # a host failed a read: say where
        from provision.commands._common import print_summary

        print_summary(run)
    code = (EXIT_UNREACHABLE if run.unreachable_hosts else
            EXIT_FAILED if st.problems or not run.ok else EXIT_OK)
    return output.finish(output.result_object(
        exit_code=code, run_dir=str(run.run_dir), hosts=run.hosts,
        errors=[*st.problems, *run.errors], status=status.to_json(st)))


def minikube(inv: Any, verbosity: int) -> int:
    from provision import status
    from provision.commands.upgrade import run_report_playbook

    output.echo("Reading the minikube profile (read-only) ...", err=True)
    data, _, run = run_report_playbook(inv, verbosity, "upgrade-minikube-discover.yml",
                                       "minikube_upgrade_report_dir", command="status")
    if data is None:
        return _failed(run, "reading the minikube profile failed")
    st = status.minikube_from_report(data)
    output.echo(status.minikube_text(st))
    return output.finish(output.result_object(
        exit_code=EXIT_FAILED if st.problems else EXIT_OK, run_dir=str(run.run_dir),
        hosts=run.hosts, errors=list(st.problems), status=status.minikube_json(st)))
