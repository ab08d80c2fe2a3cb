"""Is there a cluster? The commands that need one (status, upgrade, certs check/renew, etcd)
run ``playbooks/tasks/cluster-present.yml`` first; when it stops the run, this module turns its
"no cluster:" failure into one line that says what to run first, and exit code 1 (decided
after contacting the first control-plane node). Minikube-mode refusals of the kubeadm-only
commands happen earlier, from the inventory alone (exit 2, see :func:`refuse_minikube`)."""

from __future__ import annotations

import shlex
from typing import Any

from provision.errors import EXIT_FAILED, UsageError

MARK = "no cluster:"
OLDER = "older than the cluster:"  # playbooks/tasks/version-not-older.yml (bootstrap)


def missing(run: Any) -> str | None:
    """The task file's message (after "no cluster: ") when it stopped ``run``, else None."""
    for f in getattr(run, "failures", None) or []:
        text = str(getattr(f, "message", "")).strip()
        if text.startswith(MARK):
            return " ".join(text[len(MARK):].split())
    return None


def older_than_cluster(run: Any) -> str | None:
    """bootstrap's refusal of a kubernetes_version older than the running cluster (the task
    file's message, one line), else None. The caller exits 2: the inventory is wrong."""
    for f in getattr(run, "failures", None) or []:
        text = " ".join(str(getattr(f, "message", "")).split())
        if text.startswith(OLDER):
            return text
    return None


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
