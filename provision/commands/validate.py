"""`provision validate`: check an inventory without contacting any host."""

from __future__ import annotations

import click

from provision import output
from provision.commands._common import global_options, options


@global_options("inventory", "limit", "json", "extra_vars", refuses={
    "check": "validate contacts no host and changes nothing; run it without --check"})
@click.command(name="validate")
def cli() -> int:
    """Validate the inventory (-i) and exit: 0 valid, 2 with one line per problem.

    Nothing is contacted. Every other command runs the same checks first; --limit and -e
    are checked too (a pattern that selects no host, an unknown or mistyped variable).

    \b
    Examples:
      provision -i inventory/prod validate
      provision validate -i inventory/prod --limit workers -e kubernetes_version=1.35
    """
    from provision.commands._common import load_inventory

    opts = options()
    inv = load_inventory(opts)
    selected = [h.name for h in inv.limited(opts.limit)]
    groups = {g: len(inv.groups.get(g, [])) for g in ("control_plane", "workers")}
    n, cps, workers = len(inv.hosts), groups["control_plane"], groups["workers"]
    output.echo(f"{inv.path}: valid: {n} host{'' if n == 1 else 's'}, mode {inv.mode}, "
                f"{cps} control plane{'' if cps == 1 else 's'}, "
                f"{workers} worker{'' if workers == 1 else 's'}"
                + (f"; --limit {opts.limit} selects {', '.join(selected)}" if opts.limit
                   else ""))
    return output.finish(output.result_object(
        exit_code=0, hosts={h: {} for h in selected}, inventory=str(inv.path)))
