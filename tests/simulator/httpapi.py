"""A small HTTP client for the simulated API server in fast in-process tests (server.py), and
the CustomResourceDefinition a test registers before it creates custom objects."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

from simulator.server import SimServer


class SimApi:
    """JSON calls against the simulated API server: (status, body) for every answer."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def create(self, path: str, obj: dict) -> dict:
        code, out = self.call("POST", path, obj)
        assert code == 200, out
        return out


def crd(group: str, plural: str, kind: str, version: str = "v1beta1",
        scope: str = "Namespaced") -> dict:
    """A served, stored CRD for ``kind`` (the simulator validates objects by its own schemas)."""
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "names": {"plural": plural, "kind": kind}, "scope": scope,
                     "versions": [{"name": version, "served": True, "storage": True}]}}


def started_cluster(crds: Iterable[dict]) -> tuple[SimServer, SimApi]:
    """A started simulated API server of an initialized cluster whose Deployments and pods are
    ready at once (no CNI needed), with these CRDs registered. The caller stops the server."""
    server = SimServer("127.0.0.1", 0).start()
    server.cluster.settings.update(require_cni=False, deployment_ready_seconds=0.0,
                                   pod_ready_seconds=0.0)
    with server.cluster.lock:
        server.cluster.initialized = True
    api = SimApi(server.url)
    for definition in crds:
        api.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", definition)
    return server, api


def kubeadm_cluster(api: SimApi, version: str, namespaces: Iterable[str] = ("kube-system",),
                    nodes: Iterable[tuple[str, str]] = ()) -> None:
    """The namespaces, kubeadm's kubeadm-config ConfigMap naming ``version`` (e.g. "1.35.1")
    and a simulated kubelet's heartbeat per (node, address) with that version."""
    for ns in namespaces:
        api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": ns}})
    api.create("/api/v1/namespaces/kube-system/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeadm-config"},
        "data": {"ClusterConfiguration": f"kubernetesVersion: v{version}\n"}})
    for node, address in nodes:
        code, out = api.call("POST", "/sim/kubelet/heartbeat", {
            "node": node, "kubelet_version": version, "addresses": [address]})
        assert code == 200, out
