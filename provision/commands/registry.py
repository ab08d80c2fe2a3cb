"""`provision registry`: the private docker registry (roles/registry) on one host, with an ACME
certificate and basic auth, and the other hosts made to trust it (playbooks/registry.yml)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from provision.commands._common import global_options
from provision.errors import UsageError
from provision.patterns import AsciiIntType, click_type

PASSWORD_ENV = "PROVISION_REGISTRY_PASSWORD"
USER_RE = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)  # as roles/registry/tasks/main.yml
PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----",
                    re.ASCII)


def read_ca(path: str) -> str:
    """The PEM certificate(s) of --ca-file (exit 2 naming the file when it is not PEM)."""
    try:
        text = Path(path).read_text(encoding="ascii").replace("\r\n", "\n").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--ca-file {path}: cannot read it as PEM text ({exc})") from None
    blocks = PEM_RE.findall(text)
    if not blocks or "".join(blocks).replace("\n", "") != text.replace("\n", "") or \
            len(text) > 64 * 1024:
        raise UsageError(f"--ca-file {path}: expected PEM certificates only "
                         "(-----BEGIN CERTIFICATE----- ...)")
    return "\n".join(blocks) + "\n"


def password_for(user: str) -> str:
    """The password of --user: $PROVISION_REGISTRY_PASSWORD, else asked on the terminal
    (never a flag: the command line is visible to every local user)."""
    value = os.environ.get(PASSWORD_ENV)
    if value is None:
        if not sys.stdin.isatty():
            raise UsageError(f"--user {user}: no terminal to ask the password on; set "
                             f"{PASSWORD_ENV}")
        value = click.prompt(f"Password for registry user {user}", hide_input=True,
                             confirmation_prompt=True)
    if len(value) < 8 or "\n" in value:
        raise UsageError(f"{PASSWORD_ENV}: the password needs at least 8 characters, one line")
    return value


def plan(inv: Any, host: str | None, flags: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(registry host, extra vars) from the inventory and the flags; exit 2 on a problem."""
    from provision.certs import acme
    from provision.errors import ValidationError

    names = [h.name for h in (inv.control_plane or list(inv.hosts.values()))]
    host = host or (names[0] if names else None)
    if not host or host not in inv.hosts:
        raise UsageError(f"--host {host}: not a host of {inv.path}" if host else
                         f"{inv.path}: no host for the registry")
    hv = inv.hosts[host].vars
    extravars: dict[str, Any] = {"registry_host": host}
    domain = flags["domain"] or hv.get("registry_domain") or hv.get("acme_domain")
    if not domain:
        raise UsageError(f"{inv.path}: host {host}: no registry domain: give --domain or set "
                         "registry_domain")
    if str(domain).startswith("*."):
        raise UsageError(f"--domain {domain}: the registry needs one name, not a wildcard")
    extravars["registry_domain"] = domain
    if flags["port"] is not None:
        extravars["registry_port"] = flags["port"]
    for flag in ("email", "server"):
        if flags[flag] is not None:
            extravars[acme.FLAG_TO_VAR[flag]] = flags[flag]
    if flags["ca_file"]:
        extravars["registry_ca_cert"] = read_ca(flags["ca_file"])
    user = flags["user"]
    if user is not None:
        if not USER_RE.fullmatch(user):
            raise UsageError(f"--user {user!r}: letters, digits, '.', '_' and '-' (at most 64)")
        extravars["registry_users"] = [{"name": user, "password": password_for(user)}]
    elif not hv.get("registry_users"):
        raise UsageError(f"{inv.path}: host {host}: no registry user: give --user NAME (password "
                         f"from {PASSWORD_ENV} or asked) or set registry_users")
    if hv.get("registry_acme", True):
        problems = acme.check_host(host, acme.effective(hv, {"acme_domain": domain,
                                                             **extravars}), extravars)
        if problems:
            raise ValidationError([f"{inv.path}: {p}" for p in problems])
    return host, extravars


@global_options("inventory", "check", "verbosity", "json", refuses={
    "limit": "the registry runs on --host and every other host is made to trust it",
    "extra_vars": "set registry_* and acme_* in the inventory or use the flags"})
@click.command(name="registry")
@click.option("--host", "registry_host", metavar="HOST",
              help="Inventory host that runs the registry. Default: the first control plane.")
@click.option("--domain", metavar="NAME", type=click_type("domain"),
              help="The registry's DNS name [registry_domain, else acme_domain]; the hosts "
                   "must resolve it.")
@click.option("--port", type=AsciiIntType(minimum=1, maximum=65535),
              help="HTTPS port [registry_port; default 5000].")
@click.option("--user", metavar="NAME",
              help=f"A user who may push and pull; the password comes from {PASSWORD_ENV} or "
                   "is asked. Default: registry_users from the inventory.")
@click.option("--email", metavar="ADDR", type=click_type("email"),
              help="ACME account contact [acme_email].")
@click.option("--server", metavar="URL", type=click_type("https_url"),
              help="ACME directory URL [acme_server; default Let's Encrypt staging].")
@click.option("--ca-file", metavar="PEM", type=click.Path(dir_okay=False),
              help="A private CA (e.g. the ACME CA's root for a staging or test CA) that "
                   "docker, containerd and the system trust on every host [registry_ca_cert]. "
                   "Not needed with a public CA (Let's Encrypt production).")
def cli(registry_host: str | None, **flags: Any) -> int:
    """Install a private docker registry with an ACME certificate and basic auth, and make
    the other hosts trust it.

    On --host: Debian's docker-registry, the certificate from acme_server (lego, http-01 or
    dns-01 as with `certs issue`; renewed by a timer that restarts the registry), a bcrypt
    htpasswd, HTTPS on --port. On every host (with --ca-file): the CA in the system store and
    in /etc/docker/certs.d and /etc/containerd/certs.d for DOMAIN:PORT. Then on any host:
    docker login DOMAIN:PORT, docker push/pull DOMAIN:PORT/IMAGE.

    \b
    Examples:
      PROVISION_REGISTRY_PASSWORD=... provision -i prod registry --host vm1 \\
          --domain registry.example.org --email ops@example.org --user ci
      provision -i prod registry    # registry_domain, registry_users (vault) in the inventory
    """
    from provision.commands._common import load_inventory, options, run_and_finish
    from provision.output import echo

    opts = options()
    inv = load_inventory(opts)  # -i: exit 2 before any contact
    host, extravars = plan(inv, registry_host, flags)
    port = extravars.get("registry_port") or inv.hosts[host].vars.get("registry_port", 5000)
    echo(f"registry: {extravars['registry_domain']}:{port} on {host}")
    return run_and_finish(opts, "registry", "registry.yml", extravars, inventory=inv,
                          after_ok=f"Use it: docker login {extravars['registry_domain']}:{port}",
                          registry={"host": host, "domain": extravars["registry_domain"],
                                    "port": port})
