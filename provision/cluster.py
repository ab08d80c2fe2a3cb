"""Is there a cluster? The commands that need one (status, upgrade, certs check/renew, etcd)
run ``playbooks/tasks/cluster-present.yml`` first; when it stops the run it returns
``no_cluster`` (why) with set_stats, and this module turns that into one line that says what
to run first, and exit code 1 (decided after contacting the first control-plane node).
Minikube-mode refusals of the kubeadm-only commands happen earlier, from the inventory alone
(exit 2, see :func:`refuse_minikube`)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from provision.errors import EXIT_FAILED, UsageError


def missing(run: Any) -> str | None:
    """Why there is no cluster (``no_cluster`` the cluster check returned), else None."""
    return _returned(run, "no_cluster")


def older_than_cluster(run: Any) -> str | None:
    """bootstrap's refusal of a kubernetes_version older than the running cluster
    (``older_than_cluster`` playbooks/tasks/version-not-older.yml returned, one line), else
    None. The caller exits 2: the inventory is wrong."""
    return _returned(run, "older_than_cluster")


def ready_condition(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``Ready`` condition of a Node object (``status.conditions``); None when the node
    reports none. ``status`` and ``upgrade`` judge it, each in its own words."""
    for cond in (node.get("status") or {}).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return cond
    return None


def _returned(run: Any, key: str) -> str | None:
    from provision.runner import RunResult, run_report

    value = run_report(run).get(key) if isinstance(run, RunResult) else None
    return " ".join(value.split()) if isinstance(value, str) and value.strip() else None


def bootstrap_command(options: Any | None) -> str:
    """``provision -i lab bootstrap`` with the user's -i (none: ``provision bootstrap``)."""
    inv = getattr(options, "inventory", None)
    return shlex.join(["provision", *(["-i", str(inv)] if inv else []), "bootstrap"])


def line(options: Any | None, detail: str | None = None) -> str:
    """The one line: ``no cluster: run `provision -i lab bootstrap` first (why)``."""
    return (f"no cluster: run `{bootstrap_command(options)}` first"
            + (f" ({detail})" if detail else ""))


def finish_if_missing(run: Any, options: Any | None = None, **extra: Any) -> int | None:
    """When ``run`` was stopped by the cluster check: print the one line (stderr), end the
    command (its JSON object in --json mode) and return exit code 1; else None."""
    from provision import output
    from provision.interrupt import current_options

    detail = missing(run)
    if detail is None:
        return None
    text = line(options if options is not None else current_options(), detail)
    output.echo(text, err=True)
    return output.finish(output.result_object(
        command=getattr(run, "command", None), exit_code=EXIT_FAILED,
        run_dir=str(getattr(run, "run_dir", "") or ""),
        hosts=getattr(run, "hosts", {}) or {}, errors=[{"message": text}], cluster=False,
        **extra))


def refuse_minikube(inv: Any, command: str) -> None:
    """Exit 2 before any contact: ``command`` works on a kubeadm cluster only."""
    if getattr(inv, "mode", None) == "minikube":
        raise UsageError(f"{inv.path}: provision_mode is minikube: `provision {command}` works "
                         "on a kubeadm cluster (minikube keeps its etcd and certificates "
                         "inside its own node); nothing was contacted")
