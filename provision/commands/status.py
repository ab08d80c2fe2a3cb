"""`provision status`: registered; built by the issue "clusters: kubeadm and minikube"."""

from __future__ import annotations

import click

from provision.commands._common import not_built


@click.command(name="status", context_settings={"ignore_unknown_options": True,
                                               "allow_extra_args": True})
def cli() -> int:
    """Not built yet: says so and exits 2 (it never pretends to succeed)."""
    return not_built("status", "issue: clusters: kubeadm and minikube")
