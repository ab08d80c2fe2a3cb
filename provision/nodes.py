"""`provision node remove` and `provision reset` (pure): what a removal or a reset runs, and
the refusals decided from the inventory alone (exit 2, before any host is contacted).

The work on the hosts is done by playbooks/node-remove.yml (roles kubeadm_node_remove,
kubeadm_upgrade's drain, kubeadm_reset) and playbooks/reset.yml (etcd_snapshot,
kubeadm_reset, minikube's reset.yml); the commands in provision/commands/ only call these.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from provision.errors import UsageError


def removal_vars(inv: Any, name: str) -> dict[str, Any]:
    """Extra vars of playbooks/node-remove.yml for removing inventory host ``name``.

    Refused (UsageError, exit 2, nothing contacted): minikube mode; ``name`` not an inventory
    host; a host in neither control_plane nor workers; the only control plane (removing it
    would end the cluster: that is `provision reset`).
    """
    from provision.inventory import did_you_mean

    if getattr(inv, "mode", "kubeadm") == "minikube":
        raise UsageError(f"{inv.path}: provision_mode is minikube: `provision node remove` "
                         "works on a kubeadm cluster (minikube is one node; `provision reset` "
                         "deletes it); nothing was contacted")
    if name not in inv.hosts:
        raise UsageError(f"node remove {name}: no host {name!r} in {inv.path}"
                         f"{did_you_mean(name, inv.hosts)}; nothing was contacted")
    cps = [h.name for h in inv.control_plane]
    workers = [h.name for h in inv.workers]
    if name not in cps and name not in workers:
        raise UsageError(f"node remove {name}: {name} is in neither control_plane nor workers "
                         f"of {inv.path}, so it is no node of the cluster; nothing was "
                         "contacted")
    remaining = [c for c in cps if c != name]
    if not remaining:
        raise UsageError(f"node remove {name}: {name} is the only control plane in "
                         f"{inv.path}: removing it would end the cluster (its etcd would lose "
                         "its last member); use `provision reset` to take the whole cluster "
                         "down; nothing was contacted")
    return {"node_remove_host": name,
            "kubeadm_node_remove_kubectl_host": remaining[0],
            "kubeadm_node_remove_control_plane": name in cps}


def reset_vars(snapshot: bool, wipe_data: bool) -> dict[str, Any]:
    """Extra vars of playbooks/reset.yml."""
    return {"reset_snapshot": snapshot, "kubeadm_reset_keep_etcd_data": not wipe_data}


def removal_question(name: str, plan: dict[str, Any]) -> str:
    role = "control plane" if plan["kubeadm_node_remove_control_plane"] else "worker"
    return (f"Remove {role} {name} from the cluster? It is drained, "
            + ("its etcd member removed, " if role == "control plane" else "")
            + "`kubeadm reset` runs on it and its Node is deleted.")


def reset_question(inv: Any, snapshot: bool, wipe_data: bool) -> str:
    hosts = ", ".join(sorted(inv.hosts))
    if getattr(inv, "mode", "kubeadm") == "minikube":
        return f"Delete the minikube cluster on {hosts} (`minikube delete`)?"
    return (f"Reset every host of the cluster ({hosts})? kubeadm reset, the cluster's network "
            "state removed, packages unheld; "
            + ("an etcd snapshot first; " if snapshot else "NO etcd snapshot first; ")
            + ("the etcd data is DELETED." if wipe_data else "the etcd data dir is kept."))


def on_terminal() -> bool:
    return sys.stdin.isatty()


def confirm(question: str, yes: bool, flag_hint: str) -> bool:
    """True when confirmed (``--yes`` or a "y" on the terminal). Without a terminal, or with
    --json, and without --yes: UsageError (exit 2, nothing changed). Only the flag skips the
    question (no environment variable: these commands take a cluster down)."""
    from provision import output

    if yes:
        return True
    if output.JSON_MODE or not on_terminal():
        raise UsageError(f"{flag_hint}: confirm with --yes when not running on a terminal "
                         "(or with --json); nothing was contacted")
    return click.confirm(question, default=False, err=True)
