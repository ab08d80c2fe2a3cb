"""`provision reset`: return the hosts to the state before the cluster layer
(playbooks/reset.yml)."""

from __future__ import annotations

import click

from provision import output
from provision.commands._common import global_options

REFUSES = {
    "limit": "it resets every host of the cluster; to take one node out use "
             "`provision node remove NAME`",
    "check": "it has no dry run; run it without --check",
}


@global_options("inventory", "verbosity", "json", "extra_vars", refuses=REFUSES)
@click.command(name="reset")
@click.option("--no-snapshot", is_flag=True,
              help="Do not take an etcd snapshot first (kubeadm mode; by default one tagged "
                   "'reset' is taken on the first control plane, as `provision etcd snapshot "
                   "--tag reset`, and a failed snapshot stops the reset).")
@click.option("--wipe-data", is_flag=True,
              help="Let `kubeadm reset` delete the etcd data dir. By default it is moved "
                   "aside to <data dir>-reset-<UTC time> and kept.")
@click.option("--yes", is_flag=True, allow_from_autoenv=False,
              help="Do not ask for confirmation (destructive). Only this flag skips the "
                   "question: no environment variable does.")
def cli(no_snapshot: bool, wipe_data: bool, yes: bool) -> int:
    """Take the cluster down: every host back to the state before the cluster layer.

    \b
    kubeadm mode: an etcd snapshot first (unless --no-snapshot; snapshots are never
    removed), then workers, then control planes (the first one last): `kubeadm reset -f`,
    the kubelet stopped, the iptables chains (KUBE-*, FLANNEL-*, cali-*, CNI-* and the jumps
    to them), IPVS services, interfaces and CNI files the cluster created removed (nothing
    else), the user's copy of admin.conf removed while unchanged, kubeadm, kubelet and
    kubectl unheld (still installed); the etcd data dir kept unless --wipe-data. The host
    layer (OS settings, containerd/docker) stays: `provision bootstrap` builds the cluster
    again. minikube mode: `minikube delete` as the minikube user and its boot unit removed.
    A second run changes nothing.

    \b
    Examples:
      provision -i prod reset
      provision -i prod reset --yes --no-snapshot --wipe-data
    """
    from provision import nodes
    from provision.commands._common import load_inventory, options, run_and_finish

    opts = options()
    inv = load_inventory(opts)  # exit 2 before any contact
    snapshot = not no_snapshot and inv.mode != "minikube"
    if not nodes.confirm(nodes.reset_question(inv, snapshot, wipe_data), yes, "reset"):
        output.echo("Not confirmed: nothing was changed.")
        return output.finish(output.result_object(exit_code=1, errors=["not confirmed"]))
    return run_and_finish(
        opts, "reset", "reset.yml", nodes.reset_vars(snapshot, wipe_data), inventory=inv,
        after_ok="The cluster layer is gone; `provision bootstrap` builds it again.",
        reset={"mode": inv.mode, "snapshot": snapshot, "wipe_data": wipe_data})
