"""The metallb role starts the speaker with --ignore-exclude-lb: kubeadm labels control planes
node.kubernetes.io/exclude-from-external-load-balancers, and MetalLB's speaker announces nothing
from a labelled node without the flag (speaker/layer2_controller.go, speakersForPool)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
UPSTREAM = REPO / "tests/data/addons/metallb-native-v0.16.1.yaml"


def _filter():
    spec = importlib.util.spec_from_file_location(
        "metallb_speaker", REPO / "roles/metallb/filter_plugins/metallb_speaker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.metallb_speaker_manifest


def speaker_args(text: str) -> list[str]:
    for doc in yaml.safe_load_all(text):
        if doc and doc.get("kind") == "DaemonSet" and doc["metadata"]["name"] == "speaker":
            return doc["spec"]["template"]["spec"]["containers"][0]["args"]
    raise AssertionError("no speaker DaemonSet")


def test_speaker_gets_ignore_exclude_lb_and_nothing_else_changes() -> None:
    upstream = UPSTREAM.read_text()
    assert "--ignore-exclude-lb" not in speaker_args(upstream)  # upstream's default
    out = _filter()(upstream, True)
    assert speaker_args(out) == ["--port=9120", "--log-level=info", "--ignore-exclude-lb"]
    before = [d for d in yaml.safe_load_all(upstream) if d]
    after = list(yaml.safe_load_all(out))
    assert len(before) == len(after)
    changed = [a["metadata"]["name"] for b, a in zip(before, after, strict=True) if a != b]
    assert changed == ["speaker"]
    # idempotent (a re-run renders the same bytes) and reversible
    assert _filter()(out, True) == out
    assert "--ignore-exclude-lb" not in speaker_args(_filter()(out, False))


def test_manifest_without_speaker_is_refused() -> None:
    with pytest.raises(ValueError, match="no speaker DaemonSet"):
        _filter()("apiVersion: v1\nkind: Namespace\nmetadata: {name: metallb-system}\n", True)


def test_role_applies_the_rewritten_manifest_and_readme_cites_the_source() -> None:
    tasks = (REPO / "roles/metallb/tasks/install.yml").read_text()
    assert "metallb_speaker_manifest(metallb_speaker_ignore_exclude_lb | bool)" in tasks
    assert ('_metallb_apply_file: "{{ metallb_manifest_dir }}/metallb-native-'
            '{{ metallb_version }}.yaml"') in tasks
    readme = (REPO / "roles/metallb/README.md").read_text()
    assert "speaker/layer2_controller.go" in readme and "speakersForPool" in readme
    assert "ignores ARP" in readme and "No failover" in readme
    assert "reserved public IP" in readme and "network load" in readme
    assert "oci-cloud-controller-manager" in readme
