"""The workstation kubeconfig (pure): from the admin kubeconfig a host holds to one cluster,
user and context named after ``cluster_name``, the server rewritten to an address the
controller reaches, merged into an existing kubeconfig without touching the other entries.

Side effects (the fetch, the file write) live in ``provision/commands/kubeconfig.py``.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

_DNS_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                     r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
# kubeconfig keys naming a file, and the key that embeds its content
FILE_KEYS = {"certificate-authority": "certificate-authority-data",
             "client-certificate": "client-certificate-data",
             "client-key": "client-key-data"}
LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


class KubeconfigError(ValueError):
    """A kubeconfig or server value that cannot be used (the message says which)."""


@dataclass(frozen=True)
class Server:
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


def check_name(name: Any, where: str = "cluster_name") -> str:
    """cluster_name ends up in a file name (~/.kube/config-<name>) and in kubeconfig names:
    the declared pattern (provision/patterns.py)."""
    from provision.patterns import pattern

    problem = pattern("cluster_name").problem(name)
    if problem:
        raise KubeconfigError(f"{where}: {problem}")
    return str(name)


def check_host(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _DNS_RE.match(host):
        raise KubeconfigError(f"{host!r} is not an IP address or DNS name")
    return host


def parse_server(value: str, what: str = "--server") -> Server:
    """``https://HOST:PORT`` (HOST a DNS name, an IPv4 address or a bracketed IPv6 one)."""
    from provision.patterns import has_control, is_template

    if not isinstance(value, str) or not value.isascii() or has_control(value) or \
            is_template(value) or len(value) > 300:
        raise KubeconfigError(f"{what} {value!r}: expected https://HOST:PORT (ASCII, one "
                              "line, no template)")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise KubeconfigError(f"{what} {value!r}: {exc}") from None
    if (parts.scheme != "https" or not parts.hostname or port is None
            or parts.path not in ("", "/") or parts.query or parts.fragment
            or parts.username or parts.password):
        raise KubeconfigError(f"{what} {value!r}: expected https://HOST:PORT, e.g. "
                              "https://203.0.113.10:6443 or https://127.0.0.1:6443")
    if not 1 <= port <= 65535:
        raise KubeconfigError(f"{what} {value!r}: port out of range 1-65535")
    try:
        host = check_host(parts.hostname)
    except KubeconfigError as exc:
        raise KubeconfigError(f"{what} {value!r}: {exc}") from None
    return Server(host, port)


def load(text: str, where: str) -> dict[str, Any]:
    """A kubeconfig document (an empty file is an empty kubeconfig)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"{where}: not YAML ({exc.__class__.__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or data.get("kind", "Config") != "Config":
        raise KubeconfigError(f"{where}: not a kubeconfig (a mapping with kind: Config)")
    for key in ("clusters", "users", "contexts"):
        items = data.get(key)
        if items is None:
            continue
        if not isinstance(items, list) or not all(
                isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
            raise KubeconfigError(f"{where}: {key}: expected a list of named entries")
    return data


def _entry(cfg: dict[str, Any], key: str, name: str, where: str) -> dict[str, Any]:
    for item in cfg.get(key) or []:
        if item.get("name") == name:
            body = item.get(key[:-1])
            if isinstance(body, dict):
                return dict(body)
    raise KubeconfigError(f"{where}: {key}: no entry named {name!r}")


def admin_parts(cfg: dict[str, Any], where: str, context: str | None = None
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(cluster, user) bodies of ``context`` (default: the current context)."""
    name = context or cfg.get("current-context")
    if not name:
        raise KubeconfigError(f"{where}: no current-context")
    ctx = _entry(cfg, "contexts", str(name), where)
    cluster = _entry(cfg, "clusters", str(ctx.get("cluster")), where)
    user = _entry(cfg, "users", str(ctx.get("user")), where)
    if not isinstance(cluster.get("server"), str):
        raise KubeconfigError(f"{where}: cluster {ctx.get('cluster')!r} has no server")
    return cluster, user


def embed(body: dict[str, Any], files: dict[str, bytes], where: str) -> dict[str, Any]:
    """Replace file references (certificate-authority, client-certificate, client-key) by
    their content (the ``-data`` keys), from ``files`` (path -> content)."""
    out = dict(body)
    for key, data_key in FILE_KEYS.items():
        path = out.pop(key, None)
        if path is None:
            continue
        if path not in files:
            raise KubeconfigError(f"{where}: {key} {path!r} was not read from the host")
        out[data_key] = base64.b64encode(files[path]).decode()
    return out


def server_of(cluster: dict[str, Any], where: str) -> Server:
    """The host and port of a kubeconfig's server URL (any scheme; default port 443)."""
    try:
        parts = urlsplit(str(cluster["server"]))
        return Server(parts.hostname or "", parts.port or 443)
    except ValueError as exc:
        raise KubeconfigError(f"{where}: server: {exc}") from None


def workstation(cfg: dict[str, Any], name: str, server: str, where: str,
                files: dict[str, bytes] | None = None, context: str | None = None,
                tls_name: str | None = None) -> dict[str, Any]:
    """The kubeconfig for the controller: cluster ``name``, user ``name-admin``, context
    ``name`` (current), the certificates embedded, the server ``server`` (and
    ``tls-server-name`` when given and the cluster has none)."""
    check_name(name)
    cluster, user = admin_parts(cfg, where, context)
    cluster = embed(cluster, files or {}, where)
    user = embed(user, files or {}, where)
    cluster["server"] = server
    if tls_name and not cluster.get("tls-server-name"):
        cluster["tls-server-name"] = tls_name
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": f"{name}-admin", "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
        "preferences": {},
    }


def merge(existing: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """``existing`` with our cluster, user and context replaced (or added); every other entry,
    the preferences and the current context kept (ours becomes current only when there is
    none)."""
    out = dict(existing) if existing else {"apiVersion": "v1", "kind": "Config",
                                           "preferences": {}}
    for key in ("clusters", "users", "contexts"):
        mine = ours.get(key) or []
        names = {i["name"] for i in mine}
        out[key] = [i for i in existing.get(key) or [] if i.get("name") not in names] + mine
    if not out.get("current-context"):
        out["current-context"] = ours["current-context"]
    out.setdefault("apiVersion", "v1")
    out.setdefault("kind", "Config")
    return out


def dump(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)


def default_server(original: Server, address: str, endpoint: str | None,
                   minikube: bool) -> Server:
    """Where the controller reaches the API server when --server is not given: minikube's
    API server listens inside the host's docker network (the same port on 127.0.0.1 through
    an SSH tunnel); a control_plane_endpoint is already meant to be reached (admin.conf
    names it); else the node's address (ansible_host) on the API server's port."""
    if minikube:
        return Server("127.0.0.1", original.port)
    if endpoint:
        return original
    return Server(check_host(address), original.port)


# a DNS name kubeadm and minikube always put on the API server certificate
CERT_NAME = "kubernetes"


def tls_server_name(server: Server, original: Server, extra_sans: list[Any],
                    minikube: bool) -> str | None:
    """``tls-server-name`` for the workstation kubeconfig when the API server's certificate
    does not name ``server.host`` (a public address not in apiserver_cert_extra_sans, or
    127.0.0.1 through an SSH tunnel in kubeadm mode): kubectl then checks the certificate
    against the name ``kubernetes`` (still signed by the cluster's CA, which the kubeconfig
    pins). None when the certificate names the host."""
    named = {original.host, *(str(s) for s in extra_sans or [])}
    if minikube:
        named |= LOCAL_HOSTS  # minikube's API server certificate names 127.0.0.1, localhost
    return None if server.host in named else CERT_NAME
