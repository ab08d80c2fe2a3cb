"""Simulated cert-manager Gateway API integration (issue 16) - simulated, not cert-manager's code.

What cert-manager v1.21.1 (tag commit 24e33194) does with a Gateway, written down from its
source and reproduced here so the roles' objects are exercised end to end in the simulator:

- Gateway support is off unless the controller runs with ``--enable-gateway-api``
  (cmd/controller/app/options/options.go; default false in internal/apis/config/controller/
  v1alpha1/defaults.go). Without the flag nothing below happens.
- The gateway-shim (pkg/controller/certificate-shim/sync.go, helper.go): a Gateway annotated
  ``cert-manager.io/cluster-issuer`` (or ``cert-manager.io/issuer``) gets one Certificate per
  Secret named in ``tls.certificateRefs`` of its HTTPS/TLS listeners - name and secretName the
  Secret's, in the Gateway's namespace, dnsNames the listeners' hostnames, annotated with the
  HTTP-01 parent (``acme.cert-manager.io/http01-parentrefkind/-name``). A listener without a
  hostname, without certificateRefs, with a non-Secret ref, a cross-namespace ref or a mode
  other than Terminate is skipped (validateGatewayListenerBlock; Passthrough silently).
- An order's HTTP-01 solver (pkg/controller/acmeorders/util.go,
  applyGatewayAPIAnnotationParentRefOverride): the Certificate's parent annotations replace an
  issuer parentRef to the same Gateway (kind unset or equal, same name and namespace) with one
  to that Gateway without sectionName.
- The challenge (pkg/issuer/acme/http/httproute.go generateHTTPRouteSpec, pod.go, http.go): a
  solver pod ``cm-acme-http-solver-*`` (acmesolver, ``--listen-port=8089 --domain --token
  --key``), a Service on port 8089 and an HTTPRoute in the challenge's namespace with the
  solver's parentRefs, hostname = the domain (not for an IP), one Exact match
  ``/.well-known/acme-challenge/<token>`` to that Service. The acmesolver answers that path
  with the key, 404 for another token or path (pkg/issuer/acme/http/solver/solver.go).

Simplified here: the solver pod is a one-replica Deployment (the simulator schedules pods of
Deployments), names are ``cm-acme-http-solver-<challenge>`` instead of generated ones, the
acmesolver does not compare the Host header, and no ACME server is contacted: a test creates
the Challenge (acme.cert-manager.io/v1) as cert-manager's order controller would.
"""

from __future__ import annotations

import copy
import ipaddress
import zlib
from typing import Any

FLAG = "--enable-gateway-api"
CLUSTER_ISSUER = "cert-manager.io/cluster-issuer"
ISSUER = "cert-manager.io/issuer"
PARENT_KIND = "acme.cert-manager.io/http01-parentrefkind"
PARENT_NAME = "acme.cert-manager.io/http01-parentrefname"
PARENT_NAMESPACE = "acme.cert-manager.io/http01-parentrefnamespace"
SOLVER_PORT = 8089
SOLVER_IMAGE = "quay.io/jetstack/cert-manager-acmesolver"
CHALLENGE_PATH = "/.well-known/acme-challenge/"
#: Reading these runs the simulated controllers first (server.rest).
RESOURCES = ("certificates", "challenges", "httproutes")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def listener_problems(listener: dict, gateway_ns: str) -> list[str]:
    """Why the shim skips a TLS listener (validateGatewayListenerBlock); empty: it is used."""
    out: list[str] = []
    if not listener.get("hostname"):
        out.append("hostname: the hostname cannot be empty")
    tls = listener.get("tls")
    if not tls:
        return out + ["tls: the TLS block cannot be empty"]
    refs = tls.get("certificateRefs") or []
    if not refs:
        out.append("tls.certificateRef: listener has no certificateRefs")
    for i, ref in enumerate(refs):
        if ref.get("group", "") not in ("", "core"):
            out.append(f"tls.certificateRef[{i}].group: unsupported {ref['group']!r}")
        if ref.get("kind", "Secret") not in ("", "Secret"):
            out.append(f"tls.certificateRef[{i}].kind: unsupported {ref['kind']!r}")
        if ref.get("namespace", gateway_ns) != gateway_ns:
            out.append(f"tls.certificateRef[{i}].namespace: cross-namespace secret references "
                       "are not allowed in listeners")
    if "mode" not in tls:
        out.append("tls.mode: the mode field is required")
    elif tls["mode"] != "Terminate":
        out.append(f"tls.mode: unsupported {tls['mode']!r}")
    return out


def gateway_certificates(gw: dict) -> tuple[list[dict], list[str]]:
    """The Certificates the gateway-shim makes for one Gateway, and the listeners it skipped
    (as the Warning events it records). ([], []) without an issuer annotation."""
    meta = gw.get("metadata") or {}
    ann = meta.get("annotations") or {}
    if CLUSTER_ISSUER in ann:
        issuer = {"name": ann[CLUSTER_ISSUER], "kind": "ClusterIssuer", "group": "cert-manager.io"}
    elif ISSUER in ann:
        issuer = {"name": ann[ISSUER], "kind": "Issuer", "group": "cert-manager.io"}
    else:
        return [], []
    ns = meta.get("namespace", "default")
    hosts: dict[str, list[str]] = {}
    skipped: list[str] = []
    for i, ln in enumerate((gw.get("spec") or {}).get("listeners") or []):
        if ln.get("protocol") not in ("HTTPS", "TLS"):
            continue
        if ((ln.get("tls") or {}).get("mode")) == "Passthrough":
            continue
        problems = listener_problems(ln, ns)
        if problems:
            skipped.append(f"Skipped a listener block: spec.listeners[{i}].{problems[0]}")
            continue
        for ref in ln["tls"]["certificateRefs"]:
            names = hosts.setdefault(ref["name"], [])
            if ln["hostname"] not in names:
                names.append(ln["hostname"])
    certs = []
    for secret, names in hosts.items():
        spec: dict[str, Any] = {"secretName": secret, "issuerRef": issuer,
                                "usages": ["digital signature", "key encipherment"]}
        dns = [h for h in names if not _is_ip(h)]
        ips = [h for h in names if _is_ip(h)]
        if dns:
            spec["dnsNames"] = dns
        if ips:
            spec["ipAddresses"] = ips
        certs.append({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": secret, "namespace": ns,
                         "annotations": {PARENT_KIND: "Gateway", PARENT_NAME: meta["name"]},
                         "ownerReferences": [{"apiVersion": "gateway.networking.k8s.io/v1",
                                              "kind": "Gateway", "name": meta["name"],
                                              "uid": meta.get("uid", ""),
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": spec})
    return certs, skipped


def order_solver(solver: dict, certificate: dict) -> dict:
    """The HTTP-01 solver of a challenge for ``certificate``: the issuer's, with the parentRef
    override of the Certificate's annotations (applyGatewayAPIAnnotationParentRefOverride)."""
    out = copy.deepcopy(solver)
    route = (out.get("http01") or {}).get("gatewayHTTPRoute")
    ann = (certificate.get("metadata") or {}).get("annotations") or {}
    if route is None or not (PARENT_KIND in ann and PARENT_NAME in ann):
        return out
    ns = ann.get(PARENT_NAMESPACE) or certificate["metadata"].get("namespace", "default")
    kept = [p for p in route.get("parentRefs") or []
            if not (p.get("namespace") == ns and p.get("name") == ann[PARENT_NAME]
                    and p.get("kind") in (None, ann[PARENT_KIND]))]
    kept.append({"name": ann[PARENT_NAME], "namespace": ns, "kind": ann[PARENT_KIND],
                 "group": "gateway.networking.k8s.io"})
    route["parentRefs"] = kept
    return out


def solver_objects(challenge: dict) -> list[tuple[str, dict]]:
    """(resource, object) cert-manager creates to present one HTTP-01 challenge through a
    Gateway: the solver (a Deployment here), its Service and the HTTPRoute."""
    meta, spec = challenge["metadata"], challenge["spec"]
    ns, name = meta.get("namespace", "default"), f"cm-acme-http-solver-{meta['name']}"[:63]
    route_cfg = spec["solver"]["http01"]["gatewayHTTPRoute"]
    labels = {"acme.cert-manager.io/http01-solver": "true",
              "acme.cert-manager.io/http-domain": str(zlib.adler32(spec["dnsName"].encode())),
              "acme.cert-manager.io/http-token": str(zlib.adler32(spec["token"].encode()))}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": name, "namespace": ns, "labels": labels},
              "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                       "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                           "name": "acmesolver", "image": f"{SOLVER_IMAGE}:v1.21.1",
                           "args": [f"--listen-port={SOLVER_PORT}",
                                    f"--domain={spec['dnsName']}", f"--token={spec['token']}",
                                    f"--key={spec['key']}"],
                           "ports": [{"name": "http", "containerPort": SOLVER_PORT}]}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": ns, "labels": labels},
           "spec": {"type": route_cfg.get("serviceType", "NodePort"), "selector": labels,
                    "ports": [{"name": "http", "port": SOLVER_PORT, "protocol": "TCP",
                               "targetPort": SOLVER_PORT}]}}
    route: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns,
                     "labels": {**labels, **(route_cfg.get("labels") or {})}},
        "spec": {"parentRefs": route_cfg.get("parentRefs") or [],
                 "rules": [{"matches": [{"path": {
                     "type": "Exact", "value": f"{CHALLENGE_PATH}{spec['token']}"}}],
                     "backendRefs": [{"group": "", "kind": "Service", "name": name,
                                      "namespace": ns, "port": SOLVER_PORT, "weight": 1}]}]}}
    if not _is_ip(spec["dnsName"]):
        route["spec"]["hostnames"] = [spec["dnsName"]]
    return [("deployments", deploy), ("services", svc), ("httproutes", route)]


def solver_answer(args: list[str], path: str) -> tuple[int, str]:
    """The acmesolver's answer (solver.go): the key for /.well-known/acme-challenge/<token>,
    200 with no body for / and /healthz, 404 otherwise."""
    opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
    if path in ("/", "/healthz"):
        return 200, ""
    if path.startswith(CHALLENGE_PATH) and path[len(CHALLENGE_PATH):] == opts.get("token"):
        return 200, opts.get("key", "")
    return 404, "404 page not found\n"


def gateway_api_enabled(c: Any) -> bool:
    """cert-manager's controller Deployment exists, is Available and runs with the flag."""
    for d in c.items("deployments"):
        labels = d["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/component") != "controller" or labels.get(
                "app.kubernetes.io/name") != "cert-manager":
            continue
        args = [a for ctr in d["spec"]["template"]["spec"].get("containers") or []
                for a in ctr.get("args") or []]
        status = c.view("deployments", d).get("status") or {}
        up = any(x.get("type") == "Available" and x.get("status") == "True"
                 for x in status.get("conditions") or [])
        return up and FLAG in args
    return False


def reconcile(c: Any) -> None:
    """The simulated shim and challenge controllers: Certificates for annotated Gateways,
    solver objects for HTTP-01 gatewayHTTPRoute Challenges. Nothing without the flag."""
    if not gateway_api_enabled(c):
        return
    for gw in c.items("gateways"):
        certs, skipped = gateway_certificates(gw)
        for cert in certs:
            ns, name = cert["metadata"]["namespace"], cert["metadata"]["name"]
            current = c.get("certificates", ns, name)
            if current is None or current.get("spec") != cert["spec"]:
                c.put("certificates", cert)
                c.log("cert-manager-shim", "", gateway=f"{gw['metadata'].get('namespace')}/"
                      f"{gw['metadata']['name']}", certificate=f"{ns}/{name}")
        for message in skipped:
            c.log("cert-manager-shim", "", "refused", gateway=gw["metadata"]["name"],
                  error=message)
    for ch in c.items("challenges"):
        solver = ((ch.get("spec") or {}).get("solver") or {}).get("http01") or {}
        if "gatewayHTTPRoute" not in solver or ch["metadata"].get("_presented"):
            continue
        for resource, obj in solver_objects(ch):
            c.put(resource, obj)
            if resource == "deployments":
                c.ensure_replicaset(obj)
        ch["metadata"]["_presented"] = True
        c.reconcile()
        c.log("cert-manager-challenge", "", challenge=ch["metadata"]["name"],
              domain=ch["spec"]["dnsName"])


# --- admission: the schema checks the real API server makes for these kinds -----------------

#: Kinds the simulated API server checks on create/update, and against what: the Gateway API
#: v1.5.1 CRDs' openAPIV3Schema (tests/data/addons/gateway-crd-schemas.json, from the release's
#: config/crd/standard files) and cert-manager's API types as tests/api_schemas writes them down
#: (cert-manager.io/v1 from the v1.16 API reference; the HTTP-01 gatewayHTTPRoute solver from
#: v1.21.1 pkg/apis/acme/v1/types_issuer.go). CEL rules are not evaluated.
CHECKED_KINDS = {
    "gateway.networking.k8s.io/v1 Gateway": "crd", "gateway.networking.k8s.io/v1 HTTPRoute": "crd",
    "gateway.networking.k8s.io/v1 GatewayClass": "crd",
    "cert-manager.io/v1 ClusterIssuer": "api", "cert-manager.io/v1 Certificate": "api",
}


def schema_problems(obj: dict) -> list[str]:
    """Why the API server refuses ``obj`` (empty: accepted, or a kind not checked here)."""
    key = f"{obj.get('apiVersion')} {obj.get('kind')}"
    how = CHECKED_KINDS.get(key)
    if how is None:
        return []
    import json
    from pathlib import Path

    meta = obj.get("metadata") or {}
    doc = {k: v for k, v in obj.items() if k not in ("status", "metadata")}
    doc["metadata"] = {k: v for k, v in meta.items()
                       if k in ("name", "namespace", "labels", "annotations")}
    if how == "crd":
        from api_schemas import openapi

        path = Path(__file__).resolve().parent.parent / "data" / "addons" / \
            "gateway-crd-schemas.json"
        return openapi.validate(doc, json.loads(path.read_text()))
    from api_schemas.validator import validate

    return [p for p in validate(doc) if not p.startswith("metadata")]
