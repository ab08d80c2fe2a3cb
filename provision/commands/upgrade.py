"""`provision upgrade`: registered; built by the issue "kubeadm upgrades one minor version at a time"."""

from __future__ import annotations

import click

from provision.commands._common import not_built


@click.command(name="upgrade", context_settings={"ignore_unknown_options": True,
                                               "allow_extra_args": True})
def cli() -> int:
    """Not built yet: says so and exits 2 (it never pretends to succeed)."""
    return not_built("upgrade", "issue: kubeadm upgrades one minor version at a time")
