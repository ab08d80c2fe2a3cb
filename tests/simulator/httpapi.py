"""A small HTTP client for the simulated API server in fast in-process tests (server.py), and
the CustomResourceDefinition a test registers before it creates custom objects."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


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
