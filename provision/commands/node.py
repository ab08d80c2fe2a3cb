"""`provision node remove NAME`: take one node out of a kubeadm cluster (playbooks/node-remove.yml).

Adding a node needs no command: add it to the inventory and run `provision bootstrap`; only
the new hosts join (the others report changed=0 and are not drained).
"""

from __future__ import annotations

import click

from provision import output
from provision.commands._common import global_options

REFUSES = {
    "limit": "NAME is the one host it removes (kubectl and etcdctl run on a remaining control "
             "plane); give the host as NAME",
    "check": "it has no dry run; the refusals (NAME not in the inventory, the last control "
             "plane, etcd quorum) are checked before anything changes",
}


@click.group(name="node")
def cli() -> None:
    """Cluster nodes: remove one from a kubeadm cluster.

    To add a worker or a control plane, add the host to the inventory (workers or
    control_plane) and run `provision bootstrap`: only the new hosts join (the others report
    changed=0 and are not drained; a second control plane needs control_plane_endpoint).

    \b
    Examples:
      provision -i prod bootstrap                  # after adding w4 to workers: w4 joins
      provision -i prod node remove w4             # asks; then remove w4 from the inventory
      provision -i prod node remove cp3 --yes --json
    """


@global_options("inventory", "verbosity", "json", "extra_vars", refuses=REFUSES)
@cli.command(name="remove")
@click.argument("name")
@click.option("--yes", is_flag=True, allow_from_autoenv=False,
              help="Do not ask for confirmation (destructive). Only this flag skips the "
                   "question: no environment variable does.")
def remove(name: str, yes: bool) -> int:
    """Remove inventory host NAME from the cluster, then remove it from the inventory.

    \b
    Checked before any host is contacted (exit 2): NAME is an inventory host in
    control_plane or workers, not the only control plane, and not a minikube-mode inventory.
    Then, on a remaining control plane: the cluster exists and, for a control plane, the
    other etcd members keep quorum without it (else it stops, nothing changed). Then:
    drained (the upgrade's drain: PodDisruptionBudgets respected, blocking pods named), its
    etcd member removed (control plane), `kubeadm reset -f` on it, the iptables chains,
    IPVS services, interfaces and CNI files the cluster created removed (nothing else),
    kubeadm, kubelet and kubectl unheld, its Node object deleted. A second run changes
    nothing.

    \b
    Examples:
      provision -i prod node remove w3
      provision -i prod node remove cp3 --yes --json
    """
    from provision import nodes
    from provision.commands._common import load_inventory, options, run_and_finish

    opts = options()
    inv = load_inventory(opts)  # exit 2 before any contact
    extravars = nodes.removal_vars(inv, name)
    if not nodes.confirm(nodes.removal_question(name, extravars), yes, f"node remove {name}"):
        output.echo("Not confirmed: nothing was changed.")
        return output.finish(output.result_object(exit_code=1, errors=["not confirmed"]))
    return run_and_finish(
        opts, "node remove", "node-remove.yml", extravars, inventory=inv,
        after_ok=f"{name} is out of the cluster. Now remove it from the inventory "
                 f"({inv.path}): otherwise the next `provision bootstrap` joins it again.",
        node={"name": name, "control_plane": extravars["kubeadm_node_remove_control_plane"],
              "kubectl_host": extravars["kubeadm_node_remove_kubectl_host"]})
