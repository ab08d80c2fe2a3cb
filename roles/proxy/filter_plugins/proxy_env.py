"""The proxy environment of a host (pure; role proxy).

``provision_no_proxy``: the no_proxy list every client on the host gets: localhost, 127.0.0.1,
::1, the nodes' names and addresses, the pod and service CIDRs, ``.svc`` and the cluster domain,
then the user's own entries; duplicates and empty values dropped, order kept.
``provision_proxy_environment``: the variables (lower and upper case, as curl, Go and Python
read them) for ``environment:`` and for systemd ``Environment=``; empty when no proxy is set.
``provision_apt_direct_hosts``: the no_proxy entries apt can use (``Acquire::http::Proxy::HOST
"DIRECT"`` takes single host names and IPv4 addresses, not domains, CIDRs or IPv6 addresses).
``provision_proxy_checked``: the http_proxy value, after http_proxy, https_proxy and no_proxy
were checked against the role's patterns (vars/main.yml, the patterns of provision/patterns.py);
fails the task naming the host and the variable, never showing a URL (it may hold a password).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from ansible.errors import AnsibleFilterError

ALWAYS = ("localhost", "127.0.0.1", "::1")


def provision_no_proxy(extra: Iterable[Any] | None, names: Iterable[Any] = (),
                       addresses: Iterable[Any] = (), pod_cidr: Any = "",
                       service_cidr: Any = "", domain: Any = "cluster.local") -> str:
    entries: list[str] = list(ALWAYS)
    entries += [str(n) for n in names or ()]
    entries += [str(a) for a in addresses or ()]
    entries += [str(pod_cidr), str(service_cidr), ".svc"]
    if domain:
        entries.append("." + str(domain).lstrip("."))
    entries += [str(e) for e in extra or ()]
    seen: dict[str, None] = {}
    for entry in entries:
        entry = entry.strip()
        if entry and entry not in ("None",):
            seen.setdefault(entry, None)
    return ",".join(seen)


def provision_proxy_environment(http_proxy: Any, https_proxy: Any,
                                no_proxy: Any) -> dict[str, str]:
    http, https = str(http_proxy or ""), str(https_proxy or "")
    if not http and not https:
        return {}
    env: dict[str, str] = {}
    for key, value in (("http_proxy", http), ("https_proxy", https),
                       ("no_proxy", str(no_proxy or ""))):
        if value:
            env[key] = value
            env[key.upper()] = value
    return env


def _url_problems(http_proxy: Any, https_proxy: Any, url_re: str) -> list[str]:
    return [name for name, value in (("http_proxy", http_proxy), ("https_proxy", https_proxy))
            if not isinstance(value, str) or (value and not re.search(url_re, value))]


def provision_proxy_checked(http_proxy: Any, https_proxy: Any, no_proxy: Any, url_re: str,
                            no_proxy_re: str, host: Any = "") -> str:
    """``http_proxy`` unchanged when the three settings are well-formed, else an error."""
    bad_urls = _url_problems(http_proxy, https_proxy, url_re)
    if bad_urls:
        raise AnsibleFilterError(
            f"{' and '.join(bad_urls)} of {host} must be empty or URLs like "
            "http://proxy.example.org:3128 or http://user:password@10.0.0.1:3128 (the values "
            "are not shown: they may hold a password)")
    if isinstance(no_proxy, str) or not isinstance(no_proxy, list | tuple):
        raise AnsibleFilterError(
            f"no_proxy of {host} must be a list of hosts, domains (.example.org), addresses or "
            f"CIDRs, got a {type(no_proxy).__name__}: {str(no_proxy)[:80]}")
    bad = [e for e in no_proxy if not isinstance(e, str) or not re.search(no_proxy_re, e)]
    if bad:
        raise AnsibleFilterError(
            f"no_proxy of {host} must be a list of hosts, domains (.example.org), addresses or "
            f"CIDRs; not accepted: {[str(e)[:80] for e in bad]}")
    return str(http_proxy)


def _is_host(entry: str) -> bool:
    if entry.startswith((".", "*")) or "/" in entry or ":" in entry:
        return False  # domains, CIDRs, IPv6 (apt's '::' separates the keys of its names)
    try:
        ipaddress.ip_address(entry)
        return True
    except ValueError:
        return all(c.isalnum() or c in ".-" for c in entry)


def provision_apt_direct_hosts(no_proxy: Any) -> list[str]:
    return [e for e in str(no_proxy or "").split(",") if e and _is_host(e)]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"provision_no_proxy": provision_no_proxy,
                "provision_proxy_checked": provision_proxy_checked,
                "provision_proxy_environment": provision_proxy_environment,
                "provision_apt_direct_hosts": provision_apt_direct_hosts}
