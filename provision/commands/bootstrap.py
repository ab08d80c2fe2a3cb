"""`provision bootstrap`: run ``playbooks/bootstrap.yml``: the host layer (base OS, docker,
containerd), the cluster layer (kubeadm or minikube) and the add-ons (MetalLB, ingress-nginx,
cert-manager); ``--components`` selects a subset."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import click

from provision.commands._common import global_options
from provision.errors import UsageError
from provision.paths import PLAYBOOKS_DIR

if TYPE_CHECKING:
    from provision.inventory import Inventory

#: The one list of components, shared with bootstrap.yml and addons.yml (their vars_files).
COMPONENTS_FILE = PLAYBOOKS_DIR / "vars" / "components.yml"


@lru_cache(maxsize=1)
def component_lists() -> dict[str, Any]:
    """playbooks/vars/components.yml: provision_components_all (every step, in the order
    bootstrap.yml runs them; `addons` selects the add-ons), provision_components_addons,
    provision_components_default (per mode)."""
    import yaml

    return yaml.safe_load(COMPONENTS_FILE.read_text())


def parse_components(text: str | None, mode: str) -> list[str]:
    """``"base, docker"`` -> ``["base", "docker"]``; None -> the mode's default.

    Raises UsageError (exit 2) naming every unknown component.
    """
    lists = component_lists()
    every, addon_names = lists["provision_components_all"], lists["provision_components_addons"]
    defaults = lists["provision_components_default"]
    if text is None:
        return list(defaults.get(mode, defaults["kubeadm"]))
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--components: empty list; choose from {', '.join(every)}")
    unknown = [n for n in names if n not in every]
    if unknown:
        raise UsageError(f"--components: unknown component(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(every)}")
    if mode == "minikube":
        addons = [n for n in names if n == "addons" or n in addon_names]
        if addons:
            raise UsageError(f"--components: {', '.join(addons)}: the add-on roles target "
                             "kubeadm clusters; on minikube use `minikube addons enable "
                             "metallb|ingress` as the docker-group user")
    return [c for c in every if c in names]  # canonical order, no duplicates


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


def addon_problems(inv: Inventory, selected: list[str]) -> list[str]:
    """Add-on settings that cannot work together, checked before any host is contacted.

    ingress-nginx's default Service type is LoadBalancer: without a MetalLB address pool it
    never gets an address and the role's smoke test would wait for nothing. The same holds for
    the Gateway (ingress_controller: gateway), which also needs Kubernetes 1.31+
    (provision.gateway).
    """
    from provision.validate import _host_where, _var

    if inv.mode != "kubeadm" or not inv.control_plane:
        return []
    first = inv.control_plane[0]
    wants_ingress = "addons" in selected or "ingress" in selected
    if wants_ingress and _var(first, "ingress_controller") == "gateway":
        from provision.validate import gateway_problems

        return gateway_problems(inv)  # validate warns about the same, bootstrap refuses
    if not wants_ingress or _var(first, "ingress_nginx_enabled") is False:
        return []
    has_pool = bool(_var(first, "metallb_addresses") or _var(first, "metallb_pools"))
    mode = _var(first, "ingress_nginx_service_mode") or "LoadBalancer"
    if mode == "LoadBalancer" and not has_pool:
        return [f"{_host_where(inv, first, 'ingress_nginx_service_mode')}: "
                "ingress_nginx_service_mode: LoadBalancer needs a MetalLB address pool "
                "(metallb_addresses or metallb_pools); set one, or choose NodePort or "
                "hostNetwork for a single VM, or ingress_nginx_enabled: false"]
    return []


@global_options("inventory", "limit", "check", "verbosity", "json", "extra_vars")
@click.command(name="bootstrap")
@click.option("--components", metavar="LIST",
              help="Comma-separated subset of: base, docker, containerd (host layer), "
                   "cluster (kubeadm or minikube), addons (= metallb, ingress, cert-manager). "
                   "Default: base,docker,cluster in minikube mode; "
                   "base,containerd,cluster,addons in kubeadm mode.")
@click.option("--from-step", metavar="STEP",
              help="Resume: skip the selected steps before STEP (e.g. --from-step docker).")
@click.option("--only", metavar="STEP", help="Run just this one step of the selection.")
def cli(components: str | None, from_step: str | None, only: str | None) -> int:
    """Turn fresh hosts into a cluster: OS (swap, modules, sysctls, time, OCI firewall, disk
    growth), docker (minikube mode) or containerd (kubeadm mode), then the cluster (kubeadm
    init/join + CNI, or minikube as the docker-group user), then the add-ons (kubeadm mode:
    MetalLB when an address pool is set, ingress-nginx or - with ingress_controller: gateway -
    the Gateway API and NGINX Gateway Fabric, cert-manager).

    \b
    Examples:
      provision -i prod bootstrap
      provision -i lab bootstrap --components base,docker
      provision -i prod bootstrap --components cluster,ingress
      provision -i prod --check bootstrap --components base
      provision bootstrap -i prod --limit w3 -e kubernetes_version=1.35
      provision -i prod bootstrap --from-step cluster
    """
    from provision.commands._common import load_inventory, options, run_and_finish
    from provision.output import echo

    opts = options()
    if components is not None:  # bad names: exit 2 before loading anything
        select_steps(parse_components(components, "kubeadm"), from_step, only)
    inv = load_inventory(opts)  # -i, -e and --limit: exit 2 before any contact
    selected = select_steps(parse_components(components, inv.mode), from_step, only)
    problems = addon_problems(inv, selected)
    if problems:
        from provision.errors import ValidationError

        raise ValidationError(problems)
    echo(f"bootstrap: components {','.join(selected)} (mode {inv.mode})")
    return run_and_finish(opts, "bootstrap", "bootstrap.yml",
                          {"provision_components": selected}, inventory=inv,
                          components=selected, after_ok=kubeconfig_hint(opts, selected))


def kubeconfig_hint(opts: Any, selected: list[str]) -> str | None:
    """The next step after a bootstrap that built the cluster: kubectl from this machine."""
    import shlex

    if "cluster" not in selected:
        return None
    inventory = f"-i {shlex.quote(str(opts.inventory))} " if opts.inventory else ""
    return ("Use kubectl from this machine: "
            f"provision {inventory}kubeconfig  (writes ~/.kube/config-<cluster_name>; "
            "--merge for ~/.kube/config)")
