"""The cni role's flannel manifest is upstream's kube-flannel.yml of the pinned release.

tests/data/cni/kube-flannel-v0.28.9.yml is an unmodified copy of flannel-io/flannel's
Documentation/kube-flannel.yml at tag v0.28.9 (commit 5cd0d52648e891d73a6dcb9bb2c67d7c365cf7aa,
sha256 below). The role's template, rendered with upstream's values (Network 10.244.0.0/16,
vxlan, ghcr.io/flannel-io images), must be the same objects: a bump of cni_flannel_version
without refreshing the template (or the copy) fails here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jinja2
import yaml

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "roles" / "cni"
UPSTREAM = Path(__file__).parent / "data" / "cni" / "kube-flannel-v0.28.9.yml"
UPSTREAM_SHA256 = "e875824be2f552b45711dbda91af81b17eb961d00025d914d9fef18fad8f09c0"


def defaults() -> dict[str, Any]:
    """The role's defaults over the shared ones (roles/provision_defaults, its dependency)."""
    shared = yaml.safe_load((ROLE.parent / "provision_defaults" / "defaults" / "main.yml")
                            .read_text())
    return {**shared, **yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())}


def rendered(**overrides: Any) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"),
                             trim_blocks=True, undefined=jinja2.StrictUndefined)
    values = {k: v for k, v in defaults().items() if k.startswith("cni_flannel") or k == "pod_cidr"}
    values.update(overrides)
    return env.get_template("kube-flannel.yaml.j2").render(ansible_managed="Ansible managed",
                                                           **values)


def objects(text: str) -> dict[tuple[str, str], Any]:
    """kind/name -> object, the ConfigMap's JSON documents parsed (formatting aside)."""
    out: dict[tuple[str, str], Any] = {}
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        if doc["kind"] == "ConfigMap":
            doc["data"] = {k: json.loads(v) for k, v in doc["data"].items()}
        out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def test_upstream_copy_is_the_release_file() -> None:
    assert hashlib.sha256(UPSTREAM.read_bytes()).hexdigest() == UPSTREAM_SHA256


def test_role_pins_the_release_of_the_upstream_copy() -> None:
    from provision import pins

    d = defaults()
    assert d["cni_flannel_version"] == pins.BY_COMPONENT["flannel"].version == "v0.28.9"
    images = {c["image"] for c in
              objects(UPSTREAM.read_text())[("DaemonSet", "kube-flannel-ds")]["spec"]["template"]
              ["spec"]["initContainers"]}
    assert f"{d['cni_flannel_image_repository']}/flannel-cni-plugin:" \
           f"{d['cni_flannel_cni_plugin_version']}" in images


def test_rendered_manifest_equals_upstream() -> None:
    mine = objects(rendered(pod_cidr="10.244.0.0/16", cni_flannel_backend="vxlan"))
    theirs = objects(UPSTREAM.read_text())
    assert mine.keys() == theirs.keys()
    for key in theirs:
        assert mine[key] == theirs[key], key


def test_pod_cidr_and_backend_reach_net_conf() -> None:
    net = objects(rendered(pod_cidr="10.32.0.0/12", cni_flannel_backend="host-gw"))[
        ("ConfigMap", "kube-flannel-cfg")]["data"]["net-conf.json"]
    assert net["Network"] == "10.32.0.0/12" and net["Backend"] == {"Type": "host-gw"}
