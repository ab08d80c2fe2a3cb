"""`provision certs`: registered; built by the issue "add-ons and certificates"."""

from __future__ import annotations

import click

from provision.commands._common import not_built


@click.command(name="certs", context_settings={"ignore_unknown_options": True,
                                               "allow_extra_args": True})
def cli() -> int:
    """Not built yet: says so and exits 2 (it never pretends to succeed)."""
    return not_built("certs", "issue: add-ons and certificates")
