"""`provision certs issue`: the pure checks and the extra vars for roles/acme_cert.

``issue_vars(flags)`` maps the command's flags to role variables (only the flags given, so the
inventory keeps the rest); ``check_issue(hosts, flags)`` returns one message per problem,
naming the host and the key (or the flag), before any host is contacted.
"""

from __future__ import annotations

import re
from typing import Any

from provision.patterns import PATTERNS

CHALLENGES = ("http-01", "dns-01")
DEFAULT_SERVER = "https://acme-staging-v02.api.letsencrypt.org/directory"
# The declared pattern of each value the role renders into its scripts, units and file names.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
VAR_PATTERNS = {"acme_domain": "domain", "acme_email": "email", "acme_server": "https_url",
                "acme_dns_provider": "dns_provider_or_empty", "acme_service": "unit"}

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

    domain = values.get("acme_domain") or ""
    if not domain:
        bad("acme_domain", "no domain: give --domain or set acme_domain")
    if not values.get("acme_email"):
        bad("acme_email", "no contact e-mail: give --email or set acme_email")
    for key, name in VAR_PATTERNS.items():
        value = values.get(key)
        if value not in (None, ""):
            problem = PATTERNS[name].problem(value)
            if problem:
                bad(key, problem)
                if key == "acme_domain":
                    domain = ""
    domain = str(domain)
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
    elif env:
        names = [str(k) for k in env if not ENV_NAME.fullmatch(str(k))]
        if names:  # the names only: the values are secrets
            bad("acme_dns_env", f"{', '.join(repr(n) for n in names)}: an environment variable "
                                "name is letters, digits and '_' (not starting with a digit)")
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
