"""`provision bootstrap`: prepare the hosts (base OS, docker, containerd) by running
``playbooks/bootstrap.yml``; ``--components`` selects a subset of the host layer."""

from __future__ import annotations

import click

from provision.errors import UsageError

COMPONENTS = ("base", "docker", "containerd")
DEFAULT_COMPONENTS = {"minikube": ("base", "docker"), "kubeadm": ("base", "containerd")}


def parse_components(text: str | None, mode: str) -> list[str]:
    """``"base, docker"`` -> ``["base", "docker"]``; None -> the mode's default.

    Raises UsageError (exit 2) naming every unknown component.
    """
    if text is None:
        return list(DEFAULT_COMPONENTS.get(mode, DEFAULT_COMPONENTS["kubeadm"]))
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--components: empty list; choose from {', '.join(COMPONENTS)}")
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise UsageError(f"--components: unknown component(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(COMPONENTS)}")
    return [c for c in COMPONENTS if c in names]  # canonical order, no duplicates


def select_steps(components: list[str], from_step: str | None, only: str | None) -> list[str]:
    """Apply ``--from-step`` (drop the steps before it) and ``--only`` (just that step).

    Raises UsageError (exit 2) when the step is not among ``components``.
    """
    for flag, step in (("--from-step", from_step), ("--only", only)):
        if step is not None and step not in components:
            raise UsageError(f"{flag} {step}: not one of the selected steps "
                             f"({', '.join(components)})")
    if only is not None:
        return [only]
    if from_step is not None:
        return components[components.index(from_step):]
    return components


@click.command(name="bootstrap")
@click.option("--components", metavar="LIST",
              help="Comma-separated subset of: base, docker, containerd. Default: base,docker "
                   "in minikube mode, base,containerd in kubeadm mode.")
@click.option("--from-step", metavar="STEP",
              help="Resume: skip the selected steps before STEP (e.g. --from-step docker).")
@click.option("--only", metavar="STEP", help="Run just this one step of the selection.")
def cli(components: str | None, from_step: str | None, only: str | None) -> int:
    """Prepare the hosts: OS (swap, modules, sysctls, time, OCI firewall, disk growth), then
    docker (minikube mode) or containerd (kubeadm mode).

    \b
    Examples:
      provision -i prod bootstrap
      provision -i lab bootstrap --components base,docker
      provision -i prod --check bootstrap --components base
      provision -i prod bootstrap --from-step containerd
    """
    from provision.commands._common import options, run_and_finish
    from provision.output import echo
    from provision.validate import load_valid_inventory

    opts = options()
    if components is not None:  # bad names: exit 2 before loading anything
        select_steps(parse_components(components, "kubeadm"), from_step, only)
    inv = load_valid_inventory(opts.inventory)
    selected = select_steps(parse_components(components, inv.mode), from_step, only)
    echo(f"bootstrap: components {','.join(selected)} (mode {inv.mode})")
    return run_and_finish(opts, "bootstrap", "bootstrap.yml",
                          {"provision_components": selected}, inventory=inv,
                          components=selected)
