"""The `provision` command line. A thin Click layer: each command lives in
``provision/commands/<name>.py`` and is imported only when it runs, so ``provision --help``
stays fast (no ansible, paramiko or rich import at start-up)."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from provision import __version__
from provision.context import Options, click_options, merge
from provision.errors import ProvisionError

# name -> (module:attribute, one-line help shown by `provision --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("provision.commands.init:cli", "Write a ready inventory from flags or prompts."),
    "doctor": ("provision.commands.doctor:cli", "Preflight checks over SSH (no changes)."),
    "bootstrap": ("provision.commands.bootstrap:cli",
                  "Prepare hosts and build the cluster (minikube or kubeadm)."),
    "upgrade": ("provision.commands.upgrade:cli",
                "Upgrade a kubeadm cluster one minor version at a time."),
    "etcd": ("provision.commands.etcd:cli", "etcd snapshots: take, schedule, verify, restore."),
    "certs": ("provision.commands.certs:cli", "Host ACME certificates and the cluster PKI."),
    "status": ("provision.commands.status:cli", "Show the cluster's nodes and versions."),
    "registry": ("provision.commands.registry:cli",
                 "A private docker registry (ACME certificate, basic auth) the hosts trust."),
    "kubeconfig": ("provision.commands.kubeconfig:cli",
                   "Write the cluster's admin kubeconfig on this machine (use kubectl here)."),
    "node": ("provision.commands.node:cli",
             "Remove a node from a kubeadm cluster (add one: inventory + bootstrap)."),
    "reset": ("provision.commands.reset:cli",
              "Take the cluster down: hosts back to before the cluster layer."),
    "lab": ("provision.commands.lab:cli", "Throwaway lab hosts (containers or VMs) to try on."),
    "validate": ("provision.commands.validate:cli",
                 "Validate an inventory without contacting any host."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        target, _ = COMMANDS[name]
        module_name, attr = target.split(":")
        cmd = getattr(importlib.import_module(module_name), attr)
        from provision.commands._common import install_tree

        install_tree(cmd)  # groups merge the global options; undeclared commands refuse them
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"],
                                              "auto_envvar_prefix": "PROVISION"})
@click.version_option(__version__, "--version", prog_name="provision")
@click.pass_context
def group(ctx: click.Context, **values: Any) -> None:
    """Turn fresh Linux VMs into Kubernetes hosts, upgrade kubeadm clusters one minor
    version at a time, and keep verified etcd backups.

    \b
    Global options (-i, --limit, --check, -v, --json, -e) go before or after the command;
    a command refuses (exit 2) one it cannot honour, e.g. `upgrade --check` (use --plan).

    \b
    Examples:
      provision init --name prod --control-plane cp1=10.0.0.10 --user ubuntu
      provision -i prod doctor
      provision bootstrap -i prod --check -e kubernetes_version=1.35
      provision lab up && provision -i lab bootstrap

    Exit codes: 0 ok, 1 a host failed, 2 usage or validation error (nothing contacted),
    3 hosts unreachable, 130 interrupted.
    Shell completion: eval "$(_PROVISION_COMPLETE=bash_source provision)".
    """
    opts = ctx.ensure_object(Options)
    merge(opts, ctx, values)
    from provision import output

    output.JSON_MODE = opts.json
    output.COMMAND = ctx.invoked_subcommand or ""


group.params[:0] = click_options(top=True)  # the one definition (provision/context.py)


def _json_requested(argv: list[str] | None) -> bool:
    """--json among the options (before a `--`), or PROVISION_JSON: for errors raised before
    the group parsed its options (an unknown command or option)."""
    import os

    args = list(sys.argv[1:] if argv is None else argv)
    if "--" in args:
        args = args[:args.index("--")]
    env = os.environ.get("PROVISION_JSON", "").strip().lower()
    return "--json" in args or env in ("1", "true", "yes", "on")


def main(argv: list[str] | None = None) -> None:
    try:
        rv = group.main(args=argv, prog_name="provision", standalone_mode=False)
        if isinstance(rv, int):
            sys.exit(rv)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage errors: exit 2
        from provision import output
        from provision.output import report_error

        output.JSON_MODE = output.JSON_MODE or _json_requested(argv)

        report_error(ProvisionError(exc.format_message(), exit_code=2), click_exc=exc)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except ProvisionError as exc:
        from provision import output
        from provision.output import report_error

        output.JSON_MODE = output.JSON_MODE or _json_requested(argv)

        report_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(0)
