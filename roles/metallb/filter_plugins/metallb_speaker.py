"""Pure rewrite of the metallb-native manifest for the metallb role (no I/O).

``metallb_speaker_manifest(text, ignore_exclude_lb)`` returns the manifest with
``--ignore-exclude-lb`` added to (or removed from) the ``speaker`` container's args of the
``speaker`` DaemonSet; every other document is unchanged. kubeadm labels every control plane
``node.kubernetes.io/exclude-from-external-load-balancers``, and MetalLB's layer-2 speaker
skips a labelled node unless started with that flag (speaker/layer2_controller.go,
``speakersForPool``: ``if !c.ignoreExcludeLB && k8snodes.IsNodeExcludedFromBalancers(...)``),
so a single-node or control-plane-only cluster would announce nothing.
"""

from __future__ import annotations

from typing import Any

import yaml

FLAG = "--ignore-exclude-lb"


def _speaker(doc: Any) -> bool:
    return (isinstance(doc, dict) and doc.get("kind") == "DaemonSet"
            and (doc.get("metadata") or {}).get("name") == "speaker")


def metallb_speaker_manifest(text: str, ignore_exclude_lb: bool) -> str:
    """The manifest with the speaker's --ignore-exclude-lb set as asked (idempotent)."""
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    found = False
    for doc in docs:
        if not _speaker(doc):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            if container.get("name") != "speaker":
                continue
            found = True
            args = [a for a in container.get("args") or [] if a != FLAG]
            container["args"] = [*args, FLAG] if ignore_exclude_lb else args
    if not found:
        raise ValueError("the MetalLB manifest has no speaker DaemonSet with a speaker container")
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, default_flow_style=False)
                        for d in docs)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"metallb_speaker_manifest": metallb_speaker_manifest}
