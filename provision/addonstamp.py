"""The add-on stamp: one ``kubectl get`` decides whether an add-on role can skip its steps.

An add-on role (cni, metallb, ingress_nginx, cert_manager, gateway_api) installs objects into
the cluster with ``kubectl apply``; on a no-op re-run most of its time goes to downloading,
rendering, applying and waiting for what is already there. After a full run the role records a
ConfigMap (the stamp) that holds

- ``inputs``: the digest of everything the role's run depends on (release, pinned manifest
  checksum, settings, the rendered configuration, the role's own task and template files:
  :func:`role_digest`), computed on the controller, and
- ``objects``: for every object the role names in its query, ``<uid> <digest>`` where the
  digest covers the object without its metadata and status (its ``spec``, or ``data`` ...).

The next run asks the cluster for the stamp and those objects in ONE ``kubectl get -f -
--ignore-not-found -o json`` (:func:`query` builds its stdin) and skips its steps when
:func:`check` finds the same inputs, every object present with the same uid and digest, and
every Deployment among them Available. Anything else (a new release or setting, a deleted or
edited object, an unavailable controller, a stamp written by an older role, an unreachable
API server) runs the steps again, which repair it and record a new stamp (:func:`record`).

Secrets are never queried: ``kubectl get -o json`` would print their data into the run's
output. Standard library only; roles/provision_defaults/filter_plugins/provision_addon_stamp.py
is a link to this file (Ansible's filter plugin interface at the end).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

STAMP_LABEL = {"app.kubernetes.io/managed-by": "provision"}


def key(obj: dict[str, Any]) -> str:
    """``Kind/namespace/name`` (namespace empty for cluster-scoped objects)."""
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', '')}/{meta.get('namespace') or ''}/{meta.get('name', '')}"


def digest(obj: dict[str, Any]) -> str:
    """sha256 of the object without metadata and status (what a client sets, not the server's
    bookkeeping or a controller's report)."""
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def role_digest(role_path: str) -> str:
    """sha256 of an add-on role's own steps: the name and content of every ``tasks/*.yml`` and
    ``templates/*.j2`` below ``role_path`` (the role's ``role_path``), so that a provision
    release that changes what the role does changes the stamp's inputs and the next run takes
    the full path once. Other files (README, meta, defaults, vars) are not read: the settings
    that matter are in the inputs of their own. A directory without task files is an error (a
    wrong path would give every release the same digest)."""
    root = Path(role_path)
    files = sorted([*root.glob("tasks/*.yml"), *root.glob("templates/*.j2")])
    if not any(f.parent.name == "tasks" for f in files):
        raise ValueError(f"addon_stamp_role_digest: no tasks/*.yml below {role_path!r}")
    # one line per file as sha256sum prints it: content and name, unambiguous
    lines = [f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.relative_to(root).as_posix()}\n"
             for f in files]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def query(objects: list[dict[str, Any]], stamp: str, namespace: str) -> dict[str, Any]:
    """The ``kubectl get -f -`` input: the stamp ConfigMap, then a reference (apiVersion, kind,
    name, namespace) to every object given, full manifests or references alike; Secrets and
    empty documents are left out."""
    refs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": stamp, "namespace": namespace}}
    ]
    for obj in objects:
        if not obj or obj.get("kind") in (None, "Secret", "List"):
            continue
        meta = {"name": obj["metadata"]["name"]}
        if obj["metadata"].get("namespace"):
            meta["namespace"] = obj["metadata"]["namespace"]
        refs.append({"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta})
    return {"apiVersion": "v1", "kind": "List", "items": refs}


def _items(result: dict[str, Any]) -> list[dict[str, Any]]:
    text = (result.get("stdout") or "").strip()
    if not text:
        return []
    data = json.loads(text)
    return list(data.get("items") or []) if data.get("kind") == "List" else [data]


def _is_stamp(obj: dict[str, Any], stamp: str) -> bool:
    return obj.get("kind") == "ConfigMap" and (obj.get("metadata") or {}).get("name") == stamp


def _available(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    if generation is not None and status.get("observedGeneration", generation) < generation:
        return False
    return any(
        c.get("type") == "Available" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def check(
    result: dict[str, Any], stamp: str, inputs: str, queried: dict[str, Any]
) -> dict[str, Any]:
    """``{"current": bool, "why": str}`` for a registered ``kubectl get -f -`` result."""
    if result.get("rc") != 0:
        first = (result.get("stderr") or "").strip().splitlines()[:1]
        why = "cluster not read: " + (first[0] if first else "no answer")
        return {"current": False, "why": why}
    try:
        items = _items(result)
    except ValueError:
        return {"current": False, "why": "cluster answer is not JSON"}
    found = {key(o): o for o in items if not _is_stamp(o, stamp)}
    stamps = [o for o in items if _is_stamp(o, stamp)]
    if not stamps:
        return {"current": False, "why": f"no stamp (ConfigMap {stamp})"}
    data = stamps[0].get("data") or {}
    if data.get("inputs") != inputs:
        return {"current": False, "why": "inputs changed since the last full run"}
    try:
        recorded = json.loads(data.get("objects") or "")
    except ValueError:
        return {"current": False, "why": "stamp unreadable"}
    wanted = [key(r) for r in queried["items"] if not _is_stamp(r, stamp)]
    for name in wanted:
        obj = found.get(name)
        if name not in recorded:
            return {"current": False, "why": f"{name} not in the stamp"}
        if obj is None:
            return {"current": False, "why": f"{name} missing"}
        uid = (obj.get("metadata") or {}).get("uid", "")
        if recorded[name] != f"{uid} {digest(obj)}":
            return {"current": False, "why": f"{name} changed"}
        if obj.get("kind") == "Deployment" and not _available(obj):
            return {"current": False, "why": f"{name} not Available"}
    return {"current": True, "why": f"unchanged since the last full run ({len(wanted)} objects)"}


def record(result: dict[str, Any], stamp: str, namespace: str, inputs: str) -> dict[str, Any]:
    """The stamp ConfigMap for the objects a ``kubectl get -f -`` found after a full run."""
    objects = {
        key(o): f"{(o.get('metadata') or {}).get('uid', '')} {digest(o)}"
        for o in _items(result)
        if not _is_stamp(o, stamp)
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": stamp, "namespace": namespace, "labels": dict(STAMP_LABEL)},
        "data": {"inputs": inputs, "objects": json.dumps(objects, sort_keys=True)},
    }


class FilterModule:
    """Ansible's filter plugin interface (roles/provision_defaults/filter_plugins)."""

    def filters(self) -> dict[str, Any]:
        return {
            "addon_stamp_query": query,
            "addon_stamp_check": check,
            "addon_stamp_record": record,
            "addon_stamp_role_digest": role_digest,
        }
