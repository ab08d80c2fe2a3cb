"""Cut a real release manifest down to a reduced test copy: the objects and keys of an existing
reduced copy, with the new release's values (CRD schemas replaced by a preserve-unknown stub).

    python tests/data/addons/reduce.py REAL.yaml OLD-REDUCED.yaml HEADER.txt > NEW-REDUCED.yaml

How ingress-nginx-controller-v1.15.1-cloud.yaml and metallb-native-v0.16.1.yaml were made (the
Jobs' ttlSecondsAfterFinished is kept on purpose; image digests were then removed with
``sed -E 's/(image: [^@ ]+)@sha256:[0-9a-f]{64}/\\1/'``). Not used by the tests themselves.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

STUB = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
KEEP = [("Job", ["spec", "ttlSecondsAfterFinished"])]


def project(new: Any, old: Any) -> Any:
    """``new`` restricted to the keys ``old`` has (lists of named dicts matched by name)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {k: project(new[k], v) for k, v in old.items() if k in new}
    if isinstance(old, list) and isinstance(new, list) and old \
            and all(isinstance(o, dict) for o in old) and all(isinstance(n, dict) for n in new):
        by_name = {o.get("name"): o for o in old if "name" in o}
        return [project(n, by_name.get(n.get("name"), old[0])) for n in new]
    return new


def reduce(real: list[dict], old: list[dict]) -> list[dict]:
    def key(d: dict) -> tuple[str, str]:
        return d["kind"], d["metadata"]["name"]

    old_by = {key(d): d for d in old}
    crd_shape = next((d for d in old if d["kind"] == "CustomResourceDefinition"), None)
    out = []
    for d in real:
        shape = old_by.get(key(d)) or (crd_shape if d["kind"] == "CustomResourceDefinition"
                                       else None)
        if shape is None:
            continue
        p = project(d, shape)
        if d["kind"] == "CustomResourceDefinition":
            p["spec"]["versions"] = [
                {"name": v["name"], "served": v["served"], "storage": v["storage"],
                 "schema": STUB, **({"subresources": v["subresources"]}
                                    if "subresources" in v else {})}
                for v in d["spec"]["versions"]]
        for kind, path in KEEP:
            if d["kind"] == kind:
                src, dst = d, p
                for k in path[:-1]:
                    src, dst = src[k], dst.setdefault(k, {})
                if path[-1] in src:
                    dst[path[-1]] = src[path[-1]]
        out.append(p)
    return out


if __name__ == "__main__":
    real_path, old_path, header = sys.argv[1:4]
    with open(real_path) as r, open(old_path) as o, open(header) as h:
        docs = reduce([d for d in yaml.safe_load_all(r) if d],
                      [d for d in yaml.safe_load_all(o) if d])
        sys.stdout.write(h.read() + yaml.safe_dump_all(docs, sort_keys=False, width=1000))
