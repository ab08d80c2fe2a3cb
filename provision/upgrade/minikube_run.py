"""`provision upgrade` in minikube mode (called by provision/commands/upgrade.py): discover
the profile (read-only, as the minikube user), plan the hops
(``provision/upgrade/minikube.py``), confirm, then one run of
``playbooks/upgrade-minikube.yml`` per hop (`minikube start --kubernetes-version` as the
docker-group user). A re-run at the target does nothing.
"""

from __future__ import annotations

import time
from typing import Any

from provision import output
from provision.errors import EXIT_FAILED, EXIT_OK


def discover(inv: Any, verbosity: int, check: bool = False) -> Any:
    """(Profile, run) or (None, failed run): the read-only discovery playbook."""
    from provision.upgrade.minikube import profile_from_report
    from provision.upgrade.report import run_report_playbook

    data, saved, run = run_report_playbook(inv, verbosity, "upgrade-minikube-discover.yml",
                                           "minikube_upgrade_report_dir", check=check)
    if data is None:
        return None, run
    return profile_from_report(data, f"discovery ({saved})"), run


def live(inv: Any, target: str, plan_only: bool, yes: bool, verbosity: int, *,
         check: bool = False) -> int:
    """Discover, plan, confirm, run each hop, summarise. ``check``: the discovery runs in
    Ansible check mode (the caller has set ``plan_only``)."""
    from provision.commands._common import finish_failed_read, print_summary
    from provision.runner import run_playbook
    from provision.upgrade.minikube import plan_json, plan_minikube, plan_table
    from provision.upgrade.report import confirm

    output.echo("Discovering the minikube profile (read-only) ...")
    profile, run = discover(inv, verbosity, check)
    if profile is None:
        return finish_failed_read(run, "discovery failed: nothing was changed")
    plan = plan_minikube(profile, target)
    output.echo(plan_table(profile, plan))
    if plan_only or plan.nothing_to_do:
        return output.finish(output.result_object(exit_code=EXIT_OK,
                                                  plan=plan_json(profile, plan)))
    if not confirm(yes):
        output.echo("Not confirmed: nothing was changed.")
        return output.finish(output.result_object(exit_code=EXIT_FAILED, errors=[
            "not confirmed"], plan=plan_json(profile, plan)))
    hops: list[dict[str, Any]] = []
    for hop in plan.hops:
        output.echo(f"hop {hop.index}/{len(plan.hops)}: minikube start --kubernetes-version="
                    f"v{hop.target} as {profile.user} on {profile.host} ...")
        began = time.monotonic()
        result = run_playbook(command="upgrade minikube", playbook="upgrade-minikube.yml",
                              inventory=inv, verbosity=verbosity, quiet=verbosity == 0,
                              extravars={"minikube_kubernetes_release": hop.target})
        hops.append({"hop": hop.index, "to": hop.target, "ok": result.ok,
                     "elapsed_s": round(time.monotonic() - began, 1),
                     "run_dir": str(result.run_dir)})
        if not result.ok:
            print_summary(result)
            what = "was interrupted" if result.interrupted else "FAILED"
            output.echo(f"hop {hop.index} to {hop.target} {what}; the profile is at the last "
                        "finished hop: run the same command again to continue.", err=True)
            return output.finish(output.result_object(
                exit_code=result.exit_code or EXIT_FAILED, plan=plan_json(profile, plan),
                hops=hops, errors=result.errors,
                **({"interrupted": result.interrupted} if result.interrupted else {})))
        output.echo(f"hop {hop.index} -> {hop.target}: ok in {hops[-1]['elapsed_s']:.1f}s")
    final = plan.target
    output.echo(f"minikube now runs Kubernetes {'.'.join(map(str, final))}. Set "
                f"kubernetes_version: \"{'.'.join(map(str, final))}\" in the inventory so a "
                "later `provision bootstrap` keeps this release.")
    return output.finish(output.result_object(exit_code=EXIT_OK, plan=plan_json(profile, plan),
                                              hops=hops))
