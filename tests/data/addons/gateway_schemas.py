"""Write tests/data/addons/gateway-crd-schemas.json: the openAPIV3Schema of the Gateway API CRDs
(GatewayClass, Gateway, HTTPRoute; standard channel v1.5.1, version v1) and of NGINX Gateway
Fabric v2.6.7's NginxProxy (v1alpha2), as published, with the descriptions removed and - a
reduction - NginxProxy's pod/container templates (spec.kubernetes.deployment, daemonSet)
replaced by a preserve-unknown stub. tests/test_gateway_api.py validates the role's rendered
objects against them (tests/api_schemas/openapi.py).

    python tests/data/addons/gateway_schemas.py GATEWAY-API-REPO NGF-REPO > gateway-crd-schemas.json

with the two repositories checked out at v1.5.1 and v2.6.7. Not used by the tests themselves.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

STUB = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def strip(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k != "description"}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x


def main(gateway_api: Path, ngf: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "_source": "kubernetes-sigs/gateway-api v1.5.1 config/crd/standard (commit e7677b70); "
                   "nginx/nginx-gateway-fabric v2.6.7 deploy/crds.yaml (commit 5e34a17a); "
                   "descriptions removed, NginxProxy deployment/daemonSet stubbed"}
    for name in ("gatewayclasses", "gateways", "httproutes"):
        crd = yaml.safe_load((gateway_api / "config/crd/standard" /
                              f"gateway.networking.k8s.io_{name}.yaml").read_text())
        [v1] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        out[f"gateway.networking.k8s.io/v1 {crd['spec']['names']['kind']}"] = {
            "namespaced": crd["spec"]["scope"] == "Namespaced",
            "schema": strip(v1["schema"]["openAPIV3Schema"])}
    for crd in yaml.safe_load_all((ngf / "deploy/crds.yaml").read_text()):
        if crd and crd["metadata"]["name"] == "nginxproxies.gateway.nginx.org":
            [v] = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha2"]
            schema = strip(v["schema"]["openAPIV3Schema"])
            kube = schema["properties"]["spec"]["properties"]["kubernetes"]["properties"]
            for key in ("deployment", "daemonSet"):
                kube[key] = STUB
            out["gateway.nginx.org/v1alpha2 NginxProxy"] = {"namespaced": True, "schema": schema}
    return out


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2])), indent=None,
                     separators=(",", ":"), sort_keys=True))
