"""The download hosts doctor probes when the inventory names mirrors and a proxy (pure).

A bootstrap with ``pkgs_k8s_url``, ``registry_k8s_mirrors``, ``github_url``, ``github_raw_url``,
``dl_k8s_url`` or ``docker_ce_repo_url`` set downloads from there, not from upstream: doctor
probes what the run will use. With ``http_proxy``/``https_proxy`` set, curl on the host goes
through the proxy as the run's downloads do (the variables are exported in the probe script,
which reaches the host on SSH's stdin, never on a command line); the report names the proxy
with its credentials hidden.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from typing import Any

from provision.doctor.netchecks import (
    DL_K8S,
    DOWNLOAD_DOCKER,
    GITHUB,
    GITHUB_ASSETS,
    PKGS_K8S,
    RAW_GITHUB,
    REGISTRY_K8S,
)
from provision.patterns import hide_userinfo

# upstream URL -> (variable, how the probe URL is made from the variable's value)
_BASES: dict[str, tuple[str, Callable[[Any], str | None]]] = {
    PKGS_K8S: ("pkgs_k8s_url", lambda v: f"{v}/" if v else None),
    GITHUB: ("github_url", lambda v: f"{v}/" if v else None),
    RAW_GITHUB: ("github_raw_url", lambda v: f"{v}/" if v else None),
    DL_K8S: ("dl_k8s_url", lambda v: f"{v}/" if v else None),
    DOWNLOAD_DOCKER: ("docker_ce_repo_url", lambda v: f"{str(v).rstrip('/')}/" if v else None),
    REGISTRY_K8S: ("registry_k8s_mirrors",
                   lambda v: f"{str(v[0]).rstrip('/')}/v2/" if isinstance(v, list) and v
                   else None),
}


def mirrored(needs: tuple[tuple[str, str], ...], host_vars: Mapping[str, Any],
             mode: str = "kubeadm") -> tuple[tuple[str, str], ...]:
    """``needs`` (upstream url, why) with each upstream replaced by the mirror the host's
    variables name (its ``why`` says so); upstream where no mirror is set. registry_k8s_mirrors
    are containerd's: minikube mode pulls registry.k8s.io itself."""
    out = []
    for url, why in needs:
        if url == GITHUB_ASSETS and host_vars.get("github_url"):
            continue  # the github_url mirror serves the files itself: no redirect to follow
        name, make = _BASES.get(url, ("", lambda _v: None))
        if url == REGISTRY_K8S and mode == "minikube":
            name = ""
        mirror = make(host_vars.get(name)) if name else None
        if mirror and mirror != url:
            out.append((mirror, f"{why} (mirror {name})"))
        else:
            out.append((url, why))
    return tuple(out)


def proxy_env(host_vars: Mapping[str, Any]) -> dict[str, str]:
    """The proxy variables curl reads, from the host's ``http_proxy``/``https_proxy`` (empty
    when neither is set). no_proxy: only the user's entries (doctor probes download hosts)."""
    http, https = str(host_vars.get("http_proxy") or ""), str(host_vars.get("https_proxy") or "")
    if not http and not https:
        return {}
    env = {"http_proxy": http, "https_proxy": https}
    extra = host_vars.get("no_proxy") or []
    if isinstance(extra, list) and extra:
        env["no_proxy"] = ",".join(str(e) for e in extra)
    return {k: v for k, v in env.items() if v}


def proxy_exports(env: Mapping[str, str]) -> str:
    """Shell lines exporting ``env`` (quoted) for the probe script."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))


def proxy_note(env: Mapping[str, str]) -> str:
    """How the report names the proxy: ``through http://(hidden)@proxy:3128``."""
    shown = sorted({hide_userinfo(v) for k, v in env.items() if k.endswith("_proxy")
                    and k != "no_proxy"})
    return f"through the proxy {', '.join(shown)}" if shown else ""
