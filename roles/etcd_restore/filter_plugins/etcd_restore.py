"""Filters of the etcd_restore role: read and re-point kubeadm's etcd static pod (pure).

kubeadm writes the etcd member's settings as ``--flag=value`` items of the container command
and mounts the data dir from a hostPath volume (``etcd-data``). Restoring into a new data dir
changes three places that must agree: the ``--data-dir`` flag, the volume's ``hostPath.path``
and the container's ``mountPath``; plus a new ``--initial-cluster-token`` and the member list
``--initial-cluster`` (every control-plane member, for HA).

    pod | etcd_manifest_member          -> {name, peer_url, data_dir, client_url}
    pod | etcd_manifest_point(dir, token, initial_cluster)  -> new pod (input untouched)
    "etcd-c-n-20261121T000000Z.db" | etcd_restore_data_dir("/var/lib")
                                       -> /var/lib/etcd-restored-20261121T000000Z
    cluster_configuration_text | kubeadm_config_data_dir("/var/lib/etcd-restored-...")
                                       -> the same text with etcd.local.dataDir changed

kubeadm keeps etcd.local.dataDir in the kubeadm-config ConfigMap (key ClusterConfiguration)
and regenerates the etcd manifest from it on `kubeadm upgrade apply|node`. Only the scalar
of that key is replaced in the text (every other byte stays); the result is parsed again and
must equal the original document with that one field changed.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import yaml

_SNAPSHOT = re.compile(r"-(?P<ts>\d{8}T\d{6}Z)(?:-(?P<tag>[a-z0-9][a-z0-9.]{0,31}))?\.db$")


class ManifestError(ValueError):
    """The manifest is not an etcd static pod this role understands."""


def _container(pod: Any) -> dict[str, Any]:
    try:
        containers = pod["spec"]["containers"]
        found = [c for c in containers if c.get("name") == "etcd"] or containers[:1]
        command = found[0]["command"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ManifestError("not a static pod with a container command "
                            "(spec.containers[0].command)") from exc
    if not command or "etcd" not in str(command[0]):
        raise ManifestError(f"the container command {command[:1]} does not run etcd")
    return found[0]


def _flags(command: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in command[1:]:
        if str(item).startswith("--") and "=" in str(item):
            key, value = str(item)[2:].split("=", 1)
            out[key] = value
    return out


def etcd_manifest_member(pod: Any) -> dict[str, str]:
    """Member name, peer URL, data dir and client URL from an etcd static pod."""
    flags = _flags(_container(pod)["command"])
    missing = [f"--{k}" for k in ("name", "initial-advertise-peer-urls", "data-dir")
               if not flags.get(k)]
    if missing:
        raise ManifestError(f"the etcd command has no {', '.join(missing)}")
    return {"name": flags["name"],
            "peer_url": flags["initial-advertise-peer-urls"].split(",")[0],
            "data_dir": flags["data-dir"].rstrip("/") or "/",
            "client_url": (flags.get("advertise-client-urls") or "").split(",")[0]}


def _set_flag(command: list[str], key: str, value: str, *, only_if_present: bool = False
              ) -> None:
    for i, item in enumerate(command):
        if str(item).startswith(f"--{key}="):
            command[i] = f"--{key}={value}"
            return
    if not only_if_present:
        command.append(f"--{key}={value}")


def etcd_manifest_point(pod: Any, data_dir: str, token: str, initial_cluster: str
                        ) -> dict[str, Any]:
    """A copy of the etcd static pod that runs from ``data_dir`` as a restored cluster."""
    if not str(data_dir).startswith("/"):
        raise ManifestError(f"data dir {data_dir!r} is not an absolute path")
    if not token or not initial_cluster or "=" not in initial_cluster:
        raise ManifestError("a restore needs a new --initial-cluster-token and an "
                            "--initial-cluster list (name=peer-url,...)")
    new = copy.deepcopy(pod)
    container = _container(new)
    old_dir = etcd_manifest_member(new)["data_dir"]
    command = container["command"]
    _set_flag(command, "data-dir", data_dir)
    _set_flag(command, "initial-cluster-token", token)
    _set_flag(command, "initial-cluster", initial_cluster)
    _set_flag(command, "initial-cluster-state", "new", only_if_present=True)
    mounts = [m for m in container.get("volumeMounts") or []
              if str(m.get("mountPath", "")).rstrip("/") == old_dir]
    names = {m.get("name") for m in mounts}
    for m in mounts:
        m["mountPath"] = data_dir
    for vol in (new.get("spec") or {}).get("volumes") or []:
        host = vol.get("hostPath") or {}
        if vol.get("name") in names or str(host.get("path", "")).rstrip("/") == old_dir:
            host["path"] = data_dir
    return new


def etcd_restore_data_dir(snapshot: str, parent: str = "/var/lib") -> str:
    """The new data dir for a snapshot: one per snapshot, so a repeat is noticed."""
    m = _SNAPSHOT.search(str(snapshot).rsplit("/", 1)[-1])
    if not m:
        raise ManifestError(f"{snapshot!r} is not a snapshot name "
                            "(etcd-<cluster>-<node>-<UTC time>[-<tag>].db)")
    suffix = m["ts"] + (f"-{m['tag']}" if m["tag"] else "")
    return f"{parent.rstrip('/')}/etcd-restored-{suffix}"


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when it reads back as the same string, else quoted."""
    try:
        if yaml.safe_load(value) == value and "#" not in value and "\n" not in value:
            return value
    except yaml.YAMLError:
        pass
    return json.dumps(value)


def _local_node(root: yaml.Node) -> tuple[yaml.MappingNode | None, yaml.Node | None]:
    """The etcd.local mapping node and its dataDir value node (None when absent)."""
    def get(node: yaml.Node | None, key: str) -> yaml.Node | None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    return v
        return None

    local = get(get(root, "etcd"), "local")
    if not isinstance(local, yaml.MappingNode):
        return None, None
    return local, get(local, "dataDir")


def kubeadm_config_data_dir(text: str, data_dir: str) -> str:
    """The ClusterConfiguration text with etcd.local.dataDir set to ``data_dir``.

    Returns ``text`` itself when the field already holds ``data_dir`` (nothing to change).
    Refuses an external etcd (kubeadm does not run it) and anything but one mapping.
    """
    if not str(data_dir).startswith("/"):
        raise ManifestError(f"data dir {data_dir!r} is not an absolute path")
    try:
        old = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"ClusterConfiguration is not YAML: {exc}") from exc
    if not isinstance(old, dict) or old.get("kind", "ClusterConfiguration") != \
            "ClusterConfiguration":
        raise ManifestError("the text is not a kubeadm ClusterConfiguration document")
    etcd = old.get("etcd") or {}
    if not isinstance(etcd, dict) or etcd.get("external"):
        raise ManifestError("ClusterConfiguration has etcd.external: kubeadm does not manage "
                            "that etcd's data dir")
    local = etcd.get("local") or {}
    if not isinstance(local, dict):
        raise ManifestError("ClusterConfiguration etcd.local is not a mapping")
    if local.get("dataDir") == data_dir:
        return text
    want = copy.deepcopy(old)
    want["etcd"] = want.get("etcd") or {}
    want["etcd"]["local"] = want["etcd"].get("local") or {}
    want["etcd"]["local"]["dataDir"] = data_dir
    _, node = _local_node(root)
    new = None
    if isinstance(node, yaml.ScalarNode) and node.style in (None, "", "'", '"') \
            and node.start_mark.line == node.end_mark.line:
        new = text[:node.start_mark.index] + _scalar(data_dir) + text[node.end_mark.index:]
    if new is None or yaml.safe_load(new) != want:  # no dataDir line: write the document anew
        new = yaml.safe_dump(want, sort_keys=False, default_flow_style=False)
    if yaml.safe_load(new) != want:  # pragma: no cover - safe_dump round-trips safe_load
        raise ManifestError("could not write etcd.local.dataDir without changing other fields")
    return new


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"etcd_manifest_member": etcd_manifest_member,
                "etcd_manifest_point": etcd_manifest_point,
                "etcd_restore_data_dir": etcd_restore_data_dir,
                "kubeadm_config_data_dir": kubeadm_config_data_dir}
