"""`provision certs issue`: the pure checks and the extra vars for roles/acme_cert.

``issue_vars(flags)`` maps the command's flags to role variables (only the flags given, so the
inventory keeps the rest); ``check_issue(hosts, flags)`` returns one message per problem,
naming the host and the key (or the flag), before any host is contacted.
"""

from __future__ import annotations

import re
from typing import Any

CHALLENGES = ("http-01", "dns-01")
DEFAULT_SERVER = "https://acme-staging-v02.api.letsencrypt.org/directory"
DOMAIN_RE = re.compile(r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                       r"[A-Za-z0-9-]{2,63}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")

FLAG_TO_VAR = {"domain": "acme_domain", "email": "acme_email", "server": "acme_server",
               "challenge": "acme_challenge", "dns_provider": "acme_dns_provider",
               "service": "acme_service"}
VAR_TO_FLAG = {v: "--" + k.replace("_", "-") for k, v in FLAG_TO_VAR.items()}


def issue_vars(flags: dict[str, Any]) -> dict[str, Any]:
    """Role variables from the flags that were given (None = not given)."""
    return {FLAG_TO_VAR[k]: v for k, v in flags.items() if k in FLAG_TO_VAR and v is not None}


def effective(host_vars: dict[str, Any], extravars: dict[str, Any]) -> dict[str, Any]:
    """What the role will see on a host: role defaults < inventory < flags."""
    merged: dict[str, Any] = {"acme_server": DEFAULT_SERVER, "acme_challenge": "http-01",
                              "acme_dns_provider": "", "acme_email": "", "acme_domain": ""}
    merged.update({k: v for k, v in host_vars.items() if k.startswith("acme_")})
    merged.update(extravars)
    return merged


def _where(key: str, extravars: dict[str, Any]) -> str:
    return VAR_TO_FLAG[key] if key in extravars and key in VAR_TO_FLAG else key


def check_host(host: str, values: dict[str, Any], extravars: dict[str, Any]) -> list[str]:
    """Problems of one host's effective settings (strings name the host and key or flag)."""
    problems: list[str] = []

    def bad(key: str, message: str) -> None:
        problems.append(f"host {host}: {_where(key, extravars)}: {message}")

    domain = str(values.get("acme_domain") or "")
    if "{{" in domain:
        domain = ""  # templated in the inventory: checked by the role
    elif not domain:
        bad("acme_domain", "no domain: give --domain or set acme_domain")
    elif not DOMAIN_RE.match(domain):
        bad("acme_domain", f"'{domain}' is not a DNS name")
    email = str(values.get("acme_email") or "")
    if not email:
        bad("acme_email", "no contact e-mail: give --email or set acme_email")
    elif "{{" not in email and not EMAIL_RE.match(email):
        bad("acme_email", f"'{email}' is not an e-mail address")
    server = str(values.get("acme_server") or "")
    if not server.startswith("https://") and "{{" not in server:
        bad("acme_server", f"'{server}' is not an https:// ACME directory URL")
    challenge = values.get("acme_challenge")
    if challenge not in CHALLENGES:
        bad("acme_challenge", f"'{challenge}' is not one of {', '.join(CHALLENGES)}")
    elif challenge == "dns-01" and not values.get("acme_dns_provider"):
        bad("acme_dns_provider", "dns-01 needs a lego DNS provider (e.g. cloudflare) with its "
                                 "credentials in acme_dns_env")
    elif challenge == "http-01" and domain.startswith("*."):
        bad("acme_challenge", f"the wildcard '{domain}' needs dns-01")
    env = values.get("acme_dns_env")
    if env is not None and not isinstance(env, dict):
        bad("acme_dns_env", "expected a mapping of environment variables")
    return problems


def check_issue(hosts: dict[str, dict[str, Any]], extravars: dict[str, Any],
                limited: bool) -> list[str]:
    """All problems of ``certs issue`` for the selected hosts ``{name: vars}``."""
    if not hosts:
        return ["no host selected"]
    if len(hosts) > 1 and not limited:
        return [f"{len(hosts)} hosts in the inventory ({', '.join(sorted(hosts))}): choose the "
                "host(s) that get the certificate with --limit"]
    problems: list[str] = []
    for name, host_vars in sorted(hosts.items()):
        problems += check_host(name, effective(host_vars, extravars), extravars)
    return problems
