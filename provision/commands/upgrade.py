"""`provision upgrade --to 1.N[.P]`: kubeadm upgrades one minor version at a time.

Discovery (``playbooks/upgrade-discover.yml``, read-only) -> the plan (pure,
``provision/upgrade/``) -> confirmation -> one run of ``playbooks/upgrade.yml`` per hop
(``provision/upgrade/execute.py``), journalled on the first control-plane node so that the
same command resumes. ``--plan --state FILE`` plans offline from a discovered-state file.
"""

from __future__ import annotations

from typing import Any

import click

from provision import output
from provision.commands._common import global_options
from provision.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError
from provision.versions import SUPPORTED_MINORS, parse_version


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
    from provision.safeload import load_json
    from provision.upgrade.repository import repository_from_data
    from provision.upgrade.state import state_from_dict

    data = load_json(path, "state file")  # a bounded regular file: exit 2 naming it
    if not isinstance(data, dict) or "repository" not in data:
        raise UsageError(f"{path}: repository: missing (the released versions per minor the "
                         "package repository offers, e.g. {\"31\": [\"1.31.1\", \"1.31.2\"]})")
    repo = repository_from_data(data["repository"], f"{path}: repository")
    return state_from_dict(data, path), repo


def discover(inv: Any, target: str, verbosity: int, check: bool = False) -> Any:
    """Run the read-only discovery playbook; (Discovery, None) or (None, failed RunResult)."""
    from provision.upgrade.discover import from_report
    from provision.upgrade.report import run_report_playbook

    minor = parse_version(target)
    assert minor is not None
    data, saved, result = run_report_playbook(
        inv, verbosity, "upgrade-discover.yml", None,
        {"kubeadm_upgrade_target_minor": minor[1]}, check=check)
    if data is None:
        return None, result
    return from_report(data, f"discovery ({saved})"), result


def check_groups(inv: Any) -> None:
    groups = getattr(inv, "groups", {}) or {}
    if not groups.get("control_plane"):
        raise UsageError(f"{inv.path}: group control_plane: no host; provision upgrade needs "
                         "the kubeadm cluster's control-plane nodes (first one runs "
                         "`kubeadm upgrade apply`)")


@global_options("inventory", "check", "verbosity", "json", refuses={
    "limit": "an upgrade hop moves the whole cluster in kubeadm's order (the first control "
             "plane, the other control planes, then every worker in --batch sized batches) "
             "under one lock and journal; a limited run would leave it half done. Use --batch "
             "to choose how many workers are drained at a time; an interrupted run resumes",
    "extra_vars": "the plan is computed from the inventory's variables; set them there"})
@click.command(name="upgrade")
@click.option("--to", "target", metavar="1.N[.P]",
              help="Target version: a minor (its newest patch) or an exact patch. Default: "
                   "the inventory's kubernetes_version (the one declared version).")
@click.option("--plan", "plan_only", is_flag=True, help="Only print the plan; change nothing.")
@click.option("--yes", is_flag=True, show_envvar=True,
              help="Act without asking for confirmation.")
@click.option("--batch", default="1", show_default=True, metavar="N|P%",
              help="Workers upgraded at a time: a count or a percentage of the workers.")
@click.option("--drain-fallback", type=click.Choice(["none", "disable-eviction"]),
              default="none", show_default=True,
              help="When the eviction API keeps refusing a drain: stop and name the pods "
                   "(none), or delete them without eviction, ignoring every "
                   "PodDisruptionBudget (disable-eviction; opt-in, never the default).")
@click.option("--state", "state_file", metavar="FILE",
              help="With --plan: plan from this discovered-state JSON instead of the live "
                   "cluster (offline and testing aid; format in docs/upgrade.md).")
def cli(target: str | None, plan_only: bool, yes: bool, batch: str, drain_fallback: str,
        state_file: str | None) -> int:
    """Upgrade a kubeadm cluster one minor version at a time: plan, snapshot, drain, resume.

    Discovers the versions on the inventory's control_plane and workers hosts (read-only),
    prints the plan (each hop to the newest patch of the next minor, the last hop to --to's
    patch; nodes behind the control plane are first brought level; the version skew policy
    is checked for every hop), asks, then runs each hop: etcd snapshot, control planes one at
    a time, workers in batches, verify. A failed or interrupted run resumes from the first
    unfinished step when the same command runs again. Refusals exit 2 and touch nothing.
    In minikube mode each hop is `minikube start --kubernetes-version` as the minikube user.
    The global --check means --plan here (discovery in Ansible check mode, nothing changed);
    --limit is refused: a hop always upgrades the whole cluster in order.

    \b
    Examples:
      provision -i prod upgrade --to 1.36 --plan
      provision upgrade -i prod --to 1.36 --check        # the same as --plan
      provision -i prod upgrade --to 1.36 --batch 25% --yes
      provision --json upgrade --to 1.36.1 --plan --state cluster-state.json
    """
    from provision.commands._common import options
    from provision.upgrade import render
    from provision.upgrade.plan import plan_upgrade
    from provision.upgrade.steps import parse_batch

    if target is not None:
        check_target(target)
    elif state_file:
        raise UsageError("--state plans offline, without the inventory: give --to")
    if options().check and not plan_only:
        output.echo("--check: only the plan is printed (as with --plan); nothing is changed",
                    err=True)
        plan_only = True
    try:
        workers_at_a_time = parse_batch(batch)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if state_file and not plan_only:
        raise UsageError("--state only plans: add --plan (executing needs the live cluster)")
    if state_file:
        assert target is not None
        state, repo = read_state_file(state_file)
        plan = plan_upgrade(state, target, repo, batch=workers_at_a_time)
        output.echo(render.text(plan))
        return output.finish(output.result_object(exit_code=EXIT_OK, plan=render.to_json(plan)))
    return live(target, plan_only, yes, workers_at_a_time, batch_text=batch,
                drain_fallback=drain_fallback)


def resume_line(opts: Any, target: str, batch_text: str, drain_fallback: str = "none") -> str:
    """The command that resumes an interrupted upgrade: the same one, confirmed (--yes)."""
    import shlex

    words = ["provision", *(["-i", str(opts.inventory)] if opts.inventory else []), "upgrade",
             "--to", target, *(["--batch", batch_text] if batch_text != "1" else []),
             *(["--drain-fallback", drain_fallback] if drain_fallback != "none" else []),
             "--yes"]
    return shlex.join(words)


def declared_target(inv: Any, target: str | None) -> tuple[str, list[str]]:
    """The target (``--to``, else the inventory's declared kubernetes_version) and the notes
    to show: which version was taken from where, or the inventory line that is now stale."""
    from provision.upgrade.declared import declared, stale_note

    decl = declared(inv)
    if target is None:
        if decl is None:
            raise UsageError(f"{inv.path}: kubernetes_version is not a version (1.N or 1.N.P): "
                             "give --to or fix the inventory; nothing was done")
        check_target(decl.version)
        return decl.version, [f"target {decl.version}: the inventory's kubernetes_version "
                              f"({decl.where})"]
    note = stale_note(target, decl)
    return target, [note] if note else []


def live(target: str | None, plan_only: bool, yes: bool, batch: Any, batch_text: str = "1",
         drain_fallback: str = "none") -> int:
    """Discover, plan, confirm, execute (the hops) and summarise."""
    from provision.commands._common import finish_failed_read, options
    from provision.paths import state_home
    from provision.upgrade import execute, render
    from provision.upgrade.discover import describe, health_problem, lock_problem
    from provision.upgrade.plan import new_journal, plan_upgrade
    from provision.upgrade.report import confirm
    from provision.validate import load_valid_inventory

    opts = options()
    inv = load_valid_inventory(opts.inventory)
    target, notes = declared_target(inv, target)
    for note in notes:
        output.echo(f"Note: {note}", err=True)
    if inv.mode == "minikube":  # `minikube start --kubernetes-version`, one minor a hop
        if drain_fallback != "none":
            raise UsageError("--drain-fallback: minikube mode has no drain (one node, "
                             "upgraded in place by `minikube start`); nothing was done")
        from provision.upgrade import minikube_run

        return minikube_run.live(inv, target, plan_only, yes, opts.verbosity,
                                 check=opts.check)
    check_groups(inv)
    output.echo("Discovering the cluster (read-only) ...")
    found, run = discover(inv, target, opts.verbosity, check=opts.check)
    if found is None:
        return finish_failed_read(run, "discovery failed: nothing was changed")
    for line in describe(found):
        output.echo(line)
    if problem := lock_problem(found) or health_problem(found):
        raise UsageError(problem)
    plan = plan_upgrade(found.state, target, found.repository, batch=batch)
    output.echo("")
    output.echo(render.text(plan))
    if plan_only or plan.nothing_to_do:
        return output.finish(output.result_object(exit_code=EXIT_OK, plan=render.to_json(plan),
                                                  notes=notes))
    if not confirm(yes):
        output.echo("Not confirmed: nothing was changed.")
        return output.finish(output.result_object(exit_code=EXIT_FAILED, plan=render.to_json(
            plan), errors=["not confirmed"], notes=notes))
    # an unfinished journal is what the plan resumed (discovery drops finished ones)
    journal = found.state.journal or new_journal(plan, started=execute.now())
    copy = state_home() / "upgrade" / "journal.json"
    journal, hops = execute.run(inv, journal, found, say=output.echo, copy=copy,
                                verbosity=opts.verbosity, extravars={
                                    "kubeadm_upgrade_node_drain_fallback": drain_fallback})
    failed = [h for h in hops if not h.ok]
    stopped = next((h.interrupted for h in hops if h.interrupted), None)
    if stopped is not None:
        stopped = {**stopped, "resume": resume_line(opts, target, batch_text, drain_fallback)}
    output.echo("")
    output.echo("Summary:" if stopped is None else "Summary (interrupted):")
    for h in hops:
        status = ("done (earlier run)" if h.skipped else "ok" if h.ok else
                  "INTERRUPTED" if h.interrupted else "FAILED")
        nodes = ", ".join(f"{n} {s:.0f}s" for n, s in h.nodes.items())
        output.echo(f"  hop {h.index} -> {h.to}: {status} in {h.seconds:.1f}s"
                    + (f" ({nodes})" if nodes else ""))
    for h in failed:
        if h.interrupted:
            where = h.interrupted
            output.echo(f"  interrupted at task '{where.get('task') or '?'}'"
                        + (f" on {', '.join(where['hosts'])}" if where.get("hosts") else ""))
        for e in h.errors:
            output.echo(f"  FAILED on {e['host']} at task '{e['task']}':")
            for line in str(e["message"]).splitlines()[:8]:
                output.echo(f"      {line}")
        output.echo(f"  Log: {h.run_dir}/artifacts/run/stdout")
        output.echo("Run the same command again to resume from the first unfinished step.")
    if stopped is not None:
        output.echo(f"to resume: {stopped['resume']}")
    code = EXIT_INTERRUPTED if stopped is not None else EXIT_FAILED if failed else EXIT_OK
    if code == EXIT_OK:
        for note in notes[-1:] if notes and not notes[-1].startswith("target ") else []:
            output.echo(f"Note: {note}")
    return output.finish(output.result_object(
        exit_code=code, plan=render.to_json(plan), hops=[h.as_dict() for h in hops],
        journal=str(copy), errors=[e for h in failed for e in h.errors], notes=notes,
        **({"interrupted": stopped} if stopped is not None else {})))
