"""`provision init`: write a ready inventory from flags (or prompts on a terminal)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click

from provision import output
from provision.commands._common import global_options
from provision.errors import UsageError

HEADER = "# Written by `provision init`. Reference: README.md, section 'Inventory reference'.\n"


def parse_host(spec: str, flag: str) -> tuple[str, str]:
    """'cp1=10.0.0.10' -> ('cp1', '10.0.0.10'); a bare address names itself."""
    name, sep, addr = spec.partition("=")
    if not sep:
        name, addr = spec, spec
    if not name or not addr or any(c.isspace() for c in spec):
        raise UsageError(f"{flag} {spec!r}: expected NAME=ADDRESS, e.g. cp1=10.0.0.10")
    return name, addr


def build(control_planes: list[tuple[str, str]], workers: list[tuple[str, str]],
          group_vars: dict) -> tuple[dict, dict]:
    """The hosts.yml and group_vars/all.yml documents (pure)."""
    def hosts(pairs: list[tuple[str, str]]) -> dict:
        return {name: ({"ansible_host": addr} if addr != name else None) for name, addr in pairs}

    inventory = {"all": {"children": {"control_plane": {"hosts": hosts(control_planes)},
                                      "workers": {"hosts": hosts(workers)}}}}
    return inventory, {k: v for k, v in group_vars.items() if v not in (None, [], "")}


@global_options("json", refuses={"inventory": "init writes a new inventory: use --dir/--name"})
@click.command(name="init")
@click.option("--name", default="default", show_default=True,
              help="Inventory name: written to DIR/NAME/.")
@click.option("--dir", "base_dir", default="inventory", show_default=True, type=click.Path(),
              help="Parent directory of the inventory.")
@click.option("--control-plane", "control_planes", multiple=True, metavar="NAME=ADDR",
              help="A control-plane host (repeat for HA).")
@click.option("--worker", "workers", multiple=True, metavar="NAME=ADDR", help="A worker host.")
@click.option("--user", "ssh_user", help="SSH user (non-root, passwordless sudo).")
@click.option("--key", "ssh_key", type=click.Path(), help="SSH private key file.")
@click.option("--mode", type=click.Choice(["minikube", "kubeadm"]), help="Cluster mode.")
@click.option("--kubernetes-version", help='Kubernetes version, e.g. 1.31 or 1.31.2.')
@click.option("--metallb-addresses", multiple=True, metavar="CIDR|A-B",
              help="MetalLB address pool entry (repeat).")
@click.option("--acme-email", help="ACME account e-mail.")
@click.option("--acme-domain", help="Domain for the host certificate.")
@click.option("--force", is_flag=True, help="Overwrite an existing inventory.")
def cli(name: str, base_dir: str, control_planes: tuple[str, ...], workers: tuple[str, ...],
        ssh_user: str | None, ssh_key: str | None, mode: str | None,
        kubernetes_version: str | None, metallb_addresses: tuple[str, ...],
        acme_email: str | None, acme_domain: str | None, force: bool) -> int:
    """Write inventory/NAME/hosts.yml and group_vars/all.yml, then validate them.

    Missing answers are prompted for on a terminal; in scripts pass flags.

    \b
    Examples:
      provision init --name oci --mode minikube --control-plane vm1=203.0.113.7 \\
          --user ubuntu --key ~/.ssh/oci --kubernetes-version 1.31
      provision init --name prod --control-plane cp1=10.0.0.10 --worker w1=10.0.0.11 \\
          --user ubuntu --key ~/.ssh/id_ed25519 --metallb-addresses 10.0.0.200-10.0.0.210
    """
    interactive = sys.stdin.isatty()
    if not control_planes:
        if not interactive:
            raise UsageError("--control-plane NAME=ADDR is required (no terminal to prompt on)")
        control_planes = tuple(click.prompt("Control-plane hosts (NAME=ADDR, comma separated)")
                               .split(","))
        if not workers:
            answer = click.prompt("Worker hosts (NAME=ADDR, comma separated; empty for none)",
                                  default="", show_default=False)
            workers = tuple(w for w in answer.split(",") if w.strip())
    if interactive:
        ssh_user = ssh_user or click.prompt("SSH user", default="ubuntu")
        ssh_key = ssh_key or click.prompt("SSH private key", default="~/.ssh/id_ed25519")
        mode = mode or click.prompt("Mode", type=click.Choice(["minikube", "kubeadm"]),
                                    default="kubeadm" if workers else "minikube")
    cps = [parse_host(s.strip(), "--control-plane") for s in control_planes]
    wks = [parse_host(s.strip(), "--worker") for s in workers]
    group_vars = {
        "provision_mode": mode or ("minikube" if len(cps) + len(wks) == 1 else "kubeadm"),
        "kubernetes_version": kubernetes_version or "1.31",
        "ansible_user": ssh_user,
        "ansible_ssh_private_key_file": ssh_key,
        "metallb_addresses": list(metallb_addresses),
        "acme_email": acme_email,
        "acme_domain": acme_domain,
    }
    if group_vars["provision_mode"] == "kubeadm" and not metallb_addresses:
        # without a MetalLB pool a LoadBalancer Service never gets an address
        group_vars["ingress_nginx_service_mode"] = (
            "hostNetwork" if len(cps) + len(wks) == 1 else "NodePort")
    target = Path(base_dir) / name
    if target.exists() and not force:
        raise UsageError(f"{target}: exists; pass --force to overwrite it")
    hosts_doc, vars_doc = build(cps, wks, group_vars)
    return _write_validated(target, hosts_doc, vars_doc)


def _write_validated(target: Path, hosts_doc: dict, vars_doc: dict) -> int:
    """Write to a temp dir, validate there, and only then move into place."""
    import yaml

    from provision.errors import ValidationError
    from provision.validate import load_inventory, validate

    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / target.name
        (stage / "group_vars").mkdir(parents=True)
        (stage / "hosts.yml").write_text(HEADER + yaml.safe_dump(hosts_doc, sort_keys=False))
        (stage / "group_vars" / "all.yml").write_text(
            HEADER + yaml.safe_dump(vars_doc, sort_keys=False))
        errors, warnings = validate(load_inventory(stage))
        fix = [e.replace(str(stage), str(target)) for e in errors]
        if fix:
            raise ValidationError(fix)
        for w in warnings:
            output.echo(f"warning: {w.replace(str(stage), str(target))}", err=True)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(stage, target)
    output.echo(f"wrote {target}/hosts.yml and {target}/group_vars/all.yml")
    output.echo(f"next: provision -i {target} doctor")
    return output.finish(output.result_object(exit_code=0, inventory=str(target)))
