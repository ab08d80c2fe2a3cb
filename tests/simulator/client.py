"""What the simulated kubeadm/kubelet/kubectl share: paths, kubeconfigs, HTTP to the server.

Stdlib only (plus PyYAML, vendored into the .deb packages next to this module).
SIM_ROOT (environment) prefixes every host path, so the programs can run in a temporary
directory on the test machine as well as for real on a lab host.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

import yaml

SERVER_FILE = "/etc/provision-sim/server"


def host_path(path: str) -> str:
    """The real path of a host file (under SIM_ROOT when set)."""
    return os.environ.get("SIM_ROOT", "") + path


class ApiFailure(Exception):
    """An answer other than 2xx, or no answer at all (code 0)."""

    def __init__(
        self, code: int, message: str, reason: str = "", details: dict | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason
        self.details = details or {}


def load_yaml_documents(path: str) -> list[Any]:
    with open(path, encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def kubeconfig_server(path: str) -> str:
    """The server URL of the current context of a kubeconfig file."""
    with open(path, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh) or {}
    clusters = {c["name"]: c["cluster"] for c in cfg.get("clusters") or []}
    contexts = {c["name"]: c["context"] for c in cfg.get("contexts") or []}
    ctx = contexts.get(cfg.get("current-context", ""))
    cluster = clusters.get(ctx["cluster"]) if ctx else next(iter(clusters.values()), None)
    if not cluster or not cluster.get("server"):
        raise ApiFailure(0, f"invalid configuration: no server found in kubeconfig {path}")
    return cluster["server"]


def sim_server_url() -> str:
    """The simulator's URL for kubeadm and kubelet (/etc/provision-sim/server)."""
    env = os.environ.get("SIM_SERVER")
    if env:
        return env.strip()
    try:
        with open(host_path(SERVER_FILE), encoding="utf-8") as fh:
            return fh.read().strip()
    except FileNotFoundError:
        raise ApiFailure(
            0,
            f"[simulator] {SERVER_FILE} is missing: the test must write the "
            "simulated API server's URL there",
        ) from None


class Api:
    """A tiny JSON client for the simulated API server."""

    def __init__(self, url: str, timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    @property
    def hostport(self) -> str:
        return urlparse(self.url).netloc

    def call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                status = json.loads(exc.read())
                raise ApiFailure(
                    exc.code,
                    status.get("message", str(exc)),
                    status.get("reason", ""),
                    status.get("details"),
                ) from None
            except (ValueError, AttributeError):
                raise ApiFailure(exc.code, str(exc)) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise ApiFailure(
                0,
                f"The connection to the server {self.hostport} was refused - "
                f"did you specify the right host or port? ({exc})",
            ) from None

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.call("POST", path, body)

    def fault(self, op: str, node: str, **details: Any) -> str | None:
        """Ask the simulator whether this client-side operation must fail now."""
        answer = self.post("/sim/fault/consume", {"op": op, "node": node, "details": details})
        return answer["message"] if answer.get("fail") else None


def node_name(override: str | None = None) -> str:
    return (override or os.environ.get("SIM_NODE_NAME") or socket.gethostname()).lower()


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def write_file(path: str, text: str, mode: int = 0o644) -> None:
    real = host_path(path)
    os.makedirs(os.path.dirname(real), exist_ok=True)
    tmp = real + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, real)
