"""`provision validate`: check an inventory without contacting any host."""

from __future__ import annotations

import click

from provision import output
from provision.commands._common import options


@click.command(name="validate")
def cli() -> int:
    """Validate the inventory (-i) and exit: 0 valid, 2 with one line per problem.

    Nothing is contacted. Every other command runs the same checks first.

    \b
    Example:
      provision -i inventory/prod validate
    """
    from provision.validate import load_valid_inventory

    inv = load_valid_inventory(options().inventory)
    groups = {g: len(inv.groups.get(g, [])) for g in ("control_plane", "workers")}
    n, cps, workers = len(inv.hosts), groups["control_plane"], groups["workers"]
    output.echo(f"{inv.path}: valid: {n} host{'' if n == 1 else 's'}, mode {inv.mode}, "
                f"{cps} control plane{'' if cps == 1 else 's'}, "
                f"{workers} worker{'' if workers == 1 else 's'}")
    return output.finish(output.result_object(
        exit_code=0, hosts={h: {} for h in inv.hosts}, inventory=str(inv.path)))
