"""`provision init`: write a ready inventory from flags (or prompts on a terminal)."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from provision import output
from provision.commands._common import global_options
from provision.errors import UsageError
from provision.patterns import AsciiIntType, click_type

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


def parse_host(spec: str, flag: str) -> tuple[str, str, int | None]:
    """'cp1=10.0.0.10' -> ('cp1', '10.0.0.10', None); 'vm1=127.0.0.1:32769' ->
    ('vm1', '127.0.0.1', 32769); 'cp1=[fd00::10]:2222' -> ('cp1', 'fd00::10', 2222); a bare
    address (no port) names itself. UsageError naming the flag and what is expected."""
    from provision.addresses import NAME_RE, split_endpoint

    example = "expected NAME=ADDRESS[:PORT], e.g. cp1=10.0.0.10 or cp1=[fd00::10]:2222"
    name, sep, addr = spec.partition("=")
    if not sep:
        name, addr = spec, spec
    if not name or not addr or any(c.isspace() for c in spec):
        raise UsageError(f"{flag} {spec!r}: {example}")
    try:
        address, port = split_endpoint(addr)
    except ValueError as exc:
        raise UsageError(f"{flag} {spec!r}: {exc}") from None
    if not sep:
        name = address
    if not NAME_RE.match(name):
        raise UsageError(f"{flag} {spec!r}: host name {name!r}: letters, digits, '.', '_' "
                         "and '-' (an IPv6 address needs a name: NAME=[ADDR]); " + example)
    return name, address, port


def parse_hosts(text: str, flag: str) -> list[tuple[str, str, int | None]]:
    """A comma-separated answer (or one flag value each) -> parsed hosts, names unique."""
    hosts = [parse_host(s.strip(), flag) for s in text.split(",") if s.strip()]
    names = [h[0] for h in hosts]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        raise UsageError(f"{flag}: host {dup!r} is given twice")
    return hosts


def build(control_planes: list[tuple[str, ...]], workers: list[tuple[str, ...]],
          group_vars: dict) -> tuple[dict, dict]:
    """The hosts.yml and group_vars/all.yml documents (pure). A host is (name, address) or
    (name, address, port): the address goes to ansible_host (unless it is the name), the
    port to ansible_port."""
    def entry(host: tuple[str, ...]) -> dict | None:
        name, addr, port = (*host, None)[:3]
        out = {**({"ansible_host": addr} if addr != name else {}),
               **({"ansible_port": port} if port is not None else {})}
        return out or None

    def hosts(pairs: list[tuple[str, ...]]) -> dict:
        return {h[0]: entry(h) for h in pairs}

    inventory = {"all": {"children": {"control_plane": {"hosts": hosts(control_planes)},
                                      "workers": {"hosts": hosts(workers)}}}}
    return inventory, {k: v for k, v in group_vars.items() if v not in (None, [], "")}


KEY_CANDIDATES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
USER_RE = r"^[a-z_][a-z0-9_.-]{0,31}$"


def _re_ask(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """A click.prompt value_proc: ``check``'s UsageError/ValueError makes click say why and
    ask the same question again (the answers given so far are kept)."""
    def proc(text: str) -> Any:
        try:
            return check(text.strip())
        except (UsageError, ValueError) as exc:
            raise click.BadParameter(str(exc)) from None

    return proc


def _check_user(text: str) -> str:
    import re

    if not re.match(USER_RE, text):
        raise ValueError(f"{text!r}: a login name (lower case letters, digits, '_', '-', '.')")
    if text == "root":
        raise ValueError("root: use a non-root user with passwordless sudo")
    return text


def _check_key(text: str) -> str:
    path = Path(text).expanduser()
    if not path.is_file():
        raise ValueError(f"{text}: no such file (the SSH private key for the hosts; create "
                         "one with ssh-keygen -t ed25519)")
    return text


def _check_version(text: str) -> str:
    from provision.schema import BY_NAME
    from provision.validate import check_value

    problem = check_value(BY_NAME["kubernetes_version"], text)
    if problem:
        raise ValueError(problem)
    return text


def _check_port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{text!r}: a port number 1-65535")
    return int(text)


def ask_missing(answers: dict[str, Any]) -> dict[str, Any]:
    """On a terminal: ask for every answer not given as a flag, checking each one as it is
    given (a bad answer is asked again; nothing is lost). Returns the completed answers."""
    a = dict(answers)
    if not a["control_planes"]:
        a["control_planes"] = click.prompt(
            "Control-plane hosts (NAME=ADDR[:PORT], comma separated)",
            value_proc=_re_ask(lambda t: parse_hosts(t, "control-plane") or _none(t)))
        if not a["workers"]:
            a["workers"] = click.prompt(
                "Worker hosts (NAME=ADDR[:PORT], comma separated; empty for none)", default="",
                show_default=False, value_proc=_re_ask(lambda t: parse_hosts(t, "worker")))
    a["ssh_user"] = a["ssh_user"] or click.prompt("SSH user", default="ubuntu",
                                                  value_proc=_re_ask(_check_user))
    if a["port"] is None:
        a["port"] = click.prompt("SSH port (for hosts without :PORT)", default="22",
                                 value_proc=_re_ask(_check_port))
    if not a["ssh_key"]:
        found = next((k for k in KEY_CANDIDATES if Path(k).expanduser().is_file()), None)
        a["ssh_key"] = click.prompt("SSH private key", default=found,
                                    value_proc=_re_ask(_check_key))
    if not a["mode"]:
        several = len(a["control_planes"]) + len(a["workers"]) > 1
        a["mode"] = click.prompt("Mode", type=click.Choice(["minikube", "kubeadm"]),
                                 default="kubeadm" if several else "minikube")
    if not a["kubernetes_version"]:
        a["kubernetes_version"] = click.prompt("Kubernetes version (1.N or 1.N.P)",
                                               default=_default_version(),
                                               value_proc=_re_ask(_check_version))
    return a


def _default_version() -> str:
    """The schema's kubernetes_version default (the one place; provision/pins.py says why)."""
    from provision.schema import BY_NAME

    return str(BY_NAME["kubernetes_version"].default)


def _none(text: str) -> Any:
    raise ValueError("give at least one control-plane host, e.g. cp1=10.0.0.10")


def _version_flag(ctx: click.Context, param: click.Parameter, value: str | None
                  ) -> str | None:
    """--kubernetes-version: "1.N" or "1.N.P" in ASCII digits (exit 2 naming the flag)."""
    from provision.versions import parse_version

    if value is not None and parse_version(value) is None:
        raise click.BadParameter(f"malformed version {value!r}: expected 1.31 or 1.31.2 "
                                 "(ASCII digits, no spaces, no leading v)")
    return value


@global_options("json", refuses={"inventory": "init writes a new inventory: use --dir/--name"})
@click.command(name="init")
@click.option("--name", default="default", show_default=True,
              help="Inventory name: written to DIR/NAME/.")
@click.option("--dir", "base_dir", default="inventory", show_default=True, type=click.Path(),
              help="Parent directory of the inventory.")
@click.option("--control-plane", "control_planes", multiple=True, metavar="NAME=ADDR",
              help="A control-plane host (repeat for HA).")
@click.option("--worker", "workers", multiple=True, metavar="NAME=ADDR", help="A worker host.")
@click.option("--user", "ssh_user", type=click_type("user"),
              help="SSH user (non-root, passwordless sudo).")
@click.option("--key", "ssh_key", type=click_type("controller_path"),
              help="SSH private key file.")
@click.option("--port", type=AsciiIntType(minimum=1, maximum=65535), metavar="PORT",
              help="SSH port of every host without its own :PORT [ansible_port; default 22].")
@click.option("--known-hosts", "known_hosts", type=click_type("controller_path"), metavar="FILE",
              help="known_hosts file with the hosts' keys [ssh_known_hosts_file; default "
                   "~/.ssh/known_hosts].")
@click.option("--mode", type=click.Choice(["minikube", "kubeadm"]), help="Cluster mode.")
@click.option("--kubernetes-version", callback=_version_flag,
              help='Kubernetes version, e.g. 1.35 or 1.35.1 (default: 1.35, provision/pins.py).')
@click.option("--metallb-addresses", multiple=True, metavar="CIDR|A-B",
              help="MetalLB address pool entry (repeat).")
@click.option("--acme-email", type=click_type("email"), help="ACME account e-mail.")
@click.option("--acme-domain", type=click_type("domain"),
              help="Domain for the host certificate.")
@click.option("--force", is_flag=True,
              help="Replace hosts.yml and group_vars/all.yml of an existing inventory (other "
                   "files in it are kept).")
def cli(name: str, base_dir: str, control_planes: tuple[str, ...], workers: tuple[str, ...],
        ssh_user: str | None, ssh_key: str | None, port: int | None,
        known_hosts: str | None, mode: str | None,
        kubernetes_version: str | None, metallb_addresses: tuple[str, ...],
        acme_email: str | None, acme_domain: str | None, force: bool) -> int:
    """Write inventory/NAME/hosts.yml and group_vars/all.yml, then validate them.

    Missing answers are prompted for on a terminal, each checked as it is given (a bad
    answer is asked again); in scripts pass flags. ADDR is an IP address or DNS name,
    optionally with :PORT (IPv6 with a port: [ADDR]:PORT), written as ansible_host and
    ansible_port.

    \b
    Examples:
      provision init --name oci --mode minikube --control-plane vm1=203.0.113.7 \\
          --user ubuntu --key ~/.ssh/oci --kubernetes-version 1.35
      provision init --name prod --control-plane cp1=10.0.0.10 --worker w1=10.0.0.11 \\
          --user ubuntu --key ~/.ssh/id_ed25519 --metallb-addresses 10.0.0.200-10.0.0.210
      provision init --name local --control-plane vm1=127.0.0.1:32769 --user ubuntu \\
          --key ~/.ssh/lab --known-hosts ~/.ssh/lab_known_hosts
    """
    target = check_target(base_dir, name, force)  # before any prompt: nothing asked in vain
    answers = _answers({"control_planes": control_planes, "workers": workers,
                        "ssh_user": ssh_user, "ssh_key": ssh_key, "port": port, "mode": mode,
                        "kubernetes_version": kubernetes_version})
    cps, wks = answers["control_planes"], answers["workers"]
    ssh_user, ssh_key, mode = answers["ssh_user"], answers["ssh_key"], answers["mode"]
    kubernetes_version = answers["kubernetes_version"]
    group_vars = {
        "ansible_port": answers["port"] if answers["port"] not in (None, 22) else None,
        "ssh_known_hosts_file": known_hosts,
        "provision_mode": mode or ("minikube" if len(cps) + len(wks) == 1 else "kubeadm"),
        "kubernetes_version": kubernetes_version or _default_version(),
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


def _answers(given: dict[str, Any]) -> dict[str, Any]:
    """The flags parsed (UsageError naming the flag), then on a terminal the missing answers
    asked for; without a terminal --control-plane is required."""
    answers = {
        "control_planes": [h for s in given["control_planes"]
                           for h in parse_hosts(s, "--control-plane")],
        "workers": [h for s in given["workers"] for h in parse_hosts(s, "--worker")],
        **{k: given[k] for k in ("ssh_user", "ssh_key", "port", "mode", "kubernetes_version")},
    }
    if sys.stdin.isatty():
        return ask_missing(answers)
    if not answers["control_planes"]:
        raise UsageError("--control-plane NAME=ADDR is required (no terminal to prompt on)")
    return answers


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
