"""`provision upgrade --to 1.N[.P]`: kubeadm upgrades one minor version at a time.

Built so far: flag validation and the plan (pure, ``provision/upgrade/``), printable offline
from a discovered-state file with ``--plan --state FILE``. Discovering a live cluster and
executing the hops are not built yet: the command says so and exits 2 without touching a host.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from provision import output
from provision.errors import EXIT_OK, EXIT_USAGE, UsageError
from provision.versions import SUPPORTED_MINORS, parse_version

NOT_BUILT = ("provision upgrade: discovering the cluster and executing the hops are not built "
             "yet (issue: kubeadm upgrades one minor version at a time); plan offline with "
             "--plan --state FILE; nothing was done")


def check_target(target: str) -> None:
    parsed = parse_version(target)
    if parsed is None:
        raise UsageError(f"--to {target!r}: expected 1.N or 1.N.P (e.g. 1.31 or 1.31.2), "
                         "no leading v")
    if parsed[1] not in SUPPORTED_MINORS:
        lo, hi = min(SUPPORTED_MINORS), max(SUPPORTED_MINORS)
        raise UsageError(f"--to {target}: provision supports Kubernetes 1.{lo} to 1.{hi}")


def read_state_file(path: str) -> tuple[Any, Any]:
    """(ClusterState, Repository) from a --state file; UsageError naming file and key."""
    from provision.upgrade.repository import repository_from_data
    from provision.upgrade.state import state_from_dict

    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: state file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the state file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON: line {exc.lineno} column {exc.colno}: "
                         f"{exc.msg}") from None
    if not isinstance(data, dict) or "repository" not in data:
        raise UsageError(f"{path}: repository: missing (the released versions per minor the "
                         "package repository offers, e.g. {\"31\": [\"1.31.1\", \"1.31.2\"]})")
    repo = repository_from_data(data["repository"], f"{path}: repository")
    return state_from_dict(data, path), repo


@click.command(name="upgrade")
@click.option("--to", "target", required=True, metavar="1.N[.P]",
              help="Target version: a minor (its newest patch) or an exact patch.")
@click.option("--plan", "plan_only", is_flag=True, help="Only print the plan; change nothing.")
@click.option("--yes", is_flag=True, help="Act without asking for confirmation.")
@click.option("--batch", default="1", show_default=True, metavar="N|P%",
              help="Workers upgraded at a time: a count or a percentage of the workers.")
@click.option("--state", "state_file", metavar="FILE",
              help="With --plan: plan from this discovered-state JSON instead of the live "
                   "cluster (offline and testing aid; format in docs/upgrade.md).")
def cli(target: str, plan_only: bool, yes: bool, batch: str, state_file: str | None) -> int:
    """Upgrade a kubeadm cluster one minor version at a time: plan, snapshot, drain, resume.

    Each hop goes to the newest patch of the next minor (the last hop to --to's patch);
    nodes behind the control plane are first brought level; the version skew policy is
    checked for every hop. Refusals exit 2 and touch nothing.

    \b
    Examples:
      provision upgrade --to 1.31 --plan --state cluster-state.json
      provision --json upgrade --to 1.31.2 --plan --state cluster-state.json
      provision -i prod upgrade --to 1.31 --batch 25%
    """
    from provision.upgrade import render
    from provision.upgrade.plan import plan_upgrade
    from provision.upgrade.steps import parse_batch

    check_target(target)
    try:
        workers_at_a_time = parse_batch(batch)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if state_file and not plan_only:
        raise UsageError("--state only plans: add --plan (executing needs the live cluster)")
    if not state_file:
        output.echo(NOT_BUILT, err=True)
        return output.finish(output.result_object(exit_code=EXIT_USAGE,
                                                  errors=["upgrade: discovery and execution "
                                                          "are not built yet"]))
    state, repo = read_state_file(state_file)
    plan = plan_upgrade(state, target, repo, batch=workers_at_a_time)
    output.echo(render.text(plan))
    return output.finish(output.result_object(exit_code=EXIT_OK, plan=render.to_json(plan)))
