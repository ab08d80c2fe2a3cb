"""`provision init`: write a ready inventory from flags (or prompts on a terminal)."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import click

from provision import output
from provision.errors import UsageError

HEADER = "# Written by `provision init`. Reference: README.md, section 'Inventory reference'.\n"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}", re.ASCII)  # one path component
WRITTEN = ("hosts.yml", "group_vars/all.yml")  # the only files init writes (or replaces)


def check_target(base_dir: str, name: str, force: bool) -> Path:
    """DIR/NAME after every check that can refuse (UsageError naming the flag); reads only.

    NAME is one path component, never '.', '..', absolute or containing '/'. With --force an
    existing inventory directory is kept: only the files init writes are replaced, and none of
    them (nor the directories on the way) may be a symbolic link or of another type.
    """
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"--name {name!r}: an inventory name is one word of a-z, 0-9, '-' "
                         "and '_' (starting with a letter or digit, at most 63), written to "
                         "DIR/NAME/; nothing was written")
    base = Path(base_dir)
    if base.exists() and not base.is_dir():
        raise UsageError(f"--dir {base_dir}: exists and is not a directory; nothing was written")
    target = base / name
    if not target.exists() and not target.is_symlink():
        return target
    if not force:
        raise UsageError(f"{target}: exists; pass --force to overwrite it")
    for rel in ("", "group_vars", *WRITTEN):
        path = target / rel if rel else target
        want_dir = rel in ("", "group_vars")
        if path.is_symlink() or (path.exists() and path.is_dir() != want_dir):
            kind = "a directory" if want_dir else "a regular file"
            raise UsageError(f"--name {name}: {path} is not {kind} (or is a symbolic link): "
                             "--force replaces only hosts.yml and group_vars/all.yml of an "
                             "inventory directory; nothing was written")
    return target


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
@click.option("--force", is_flag=True,
              help="Replace hosts.yml and group_vars/all.yml of an existing inventory (other "
                   "files in it are kept).")
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
    target = check_target(base_dir, name, force)
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
    hosts_doc, vars_doc = build(cps, wks, group_vars)
    return _write_validated(target, hosts_doc, vars_doc)


def _write_validated(target: Path, hosts_doc: dict, vars_doc: dict) -> int:
    """Write to a temp dir, validate there, and only then put the two files in place
    (each replaced atomically; nothing else in ``target`` is touched)."""
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
        (target / "group_vars").mkdir(parents=True, exist_ok=True)
        for rel in WRITTEN:
            _replace_file(stage / rel, target / rel)
    output.echo(f"wrote {target}/hosts.yml and {target}/group_vars/all.yml")
    output.echo(f"next: provision -i {target} doctor")
    return output.finish(output.result_object(exit_code=0, inventory=str(target)))


def _replace_file(src: Path, dest: Path) -> None:
    """``dest`` gets ``src``'s content through a temp file in its directory and os.replace."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(src.read_text())
        os.chmod(tmp, dest.stat().st_mode & 0o777 if dest.exists() else 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
