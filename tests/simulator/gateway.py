"""Simulated NGINX Gateway Fabric (issue 16): what its controller does with a Gateway, and the
HTTP data path through HTTPRoutes - simulated, not NGF's code. Sources: NGF tag v2.6.7.

- A Gateway whose GatewayClass names NGF's controller (``gateway.nginx.org/nginx-gateway-
  controller``) gets, once the NGF control plane Deployment (args ``--gateway-ctlr-name=``) is
  Available, a data plane and a Service ``<gateway>-<class>`` in its namespace, as NGF's
  provisioner does (internal/controller/provisioner/objects.go): a Deployment, or a DaemonSet
  when the class's NginxProxy (``parametersRef``) sets ``kubernetes.daemonSet``
  (buildNginxDeployment); the NGINX container has one port per listener port (all listeners,
  valid or not: buildPortsFromListeners), ``hostPort`` set on the ports the NginxProxy's
  ``container.hostPorts`` name (applyUserConfiguration), runs as UID 101 dropping ALL
  capabilities, with the pod sysctl ``net.ipv4.ip_unprivileged_port_start=0``
  (buildNginxContainer, buildNginxPodTemplateSpec). Service type, externalTrafficPolicy (not
  for ClusterIP: buildNginxService) and nodePorts from the NginxProxy, the Gateway's
  ``spec.infrastructure`` labels/annotations copied (so MetalLB's
  ``metallb.io/loadBalancerIPs`` reaches the Service). Switching between Deployment and
  DaemonSet removes the other kind (simplified here).
- Its status (gateway_status): per listener Accepted/Programmed/ResolvedRefs/Conflicted; an
  HTTPS listener whose certificateRefs Secret does not exist is Accepted, ResolvedRefs and
  Programmed False (InvalidCertificateRef / Invalid) with NGF's message
  (internal/controller/state/graph/gateway_listener.go, createExternalReferencesForTLSSecrets-
  Resolver; state/resolver/resolver.go; state/conditions/conditions.go,
  NewListenerAllInvalidCertificateRefs). The Gateway: Accepted (reason ListenersNotValid when
  some listener is invalid; Accepted and Programmed False when none is valid:
  internal/controller/status/prepare_requests.go, prepareGatewayRequest), Programmed when the
  data plane is ready (and, for a LoadBalancer Service, has an address: then
  ``status.addresses``) - the Secret's absence alone does not hold Programmed back.
- A request reaching the data plane (LoadBalancer address:port, nodePort, or a hostPort on the
  node where a data plane pod runs - the CNI portmap plugin's DNAT) is routed by the
  HTTPRoutes attached to the Gateway (parentRefs name/namespace/sectionName, allowedRoutes
  ``All``/``Same``; hostnames exact or ``*.``; PathPrefix/Exact matches, longest first) to
  the first backendRef Service's ready pods; NGINX's 404 without a route, 503 without a
  ready endpoint.

Not simulated: ReferenceGrants (a certificateRef to another namespace is refused as
RefNotPermitted), Secret contents (a Secret that exists resolves), ListenerSets.
"""

from __future__ import annotations

import json
from typing import Any

CONTROLLER = "gateway.nginx.org/nginx-gateway-controller"
IMAGE = "ghcr.io/nginx/nginx-gateway-fabric/nginx"
NOT_FOUND = ("<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found"
             "</h1></center><hr><center>nginx</center></body></html>\n")
UNAVAILABLE = ("<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
               "<center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx"
               "</center></body></html>\n")


def _available(c: Any, deploy: dict | None) -> bool:
    if not deploy:
        return False
    status = c.view("deployments", deploy).get("status") or {}
    return any(x.get("type") == "Available" and x.get("status") == "True"
               for x in status.get("conditions") or [])


def _control_plane(c: Any) -> dict | None:
    for d in c.items("deployments"):
        for ctr in (((d.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
                "containers") or []:
            if f"--gateway-ctlr-name={CONTROLLER}" in (ctr.get("args") or []):
                return d
    return None


def _class(c: Any, gw: dict) -> dict | None:
    gc = c.get("gatewayclasses", "", (gw.get("spec") or {}).get("gatewayClassName", ""))
    return gc if gc and (gc.get("spec") or {}).get("controllerName") == CONTROLLER else None


def _proxy_kubernetes(c: Any, gc: dict) -> dict:
    """The class's NginxProxy ``spec.kubernetes`` (deployment/daemonSet/service)."""
    ref = (gc.get("spec") or {}).get("parametersRef") or {}
    proxy = c.get("nginxproxies", ref.get("namespace", ""), ref.get("name", "")) or {}
    return (proxy.get("spec") or {}).get("kubernetes") or {}


def _proxy_service(c: Any, gc: dict) -> dict:
    return _proxy_kubernetes(c, gc).get("service") or {}


def data_plane_name(gw: dict, gc: dict) -> str:
    return f"{gw['metadata']['name']}-{gc['metadata']['name']}"


def _listener_ports(gw: dict) -> list[int]:
    return sorted({int(ln["port"]) for ln in (gw.get("spec") or {}).get("listeners") or []})


def _pod_template(gw: dict, labels: dict, kube: dict) -> dict:
    """NGF's pod template, reduced: the nginx container's ports (one per listener port) with
    the hostPorts of the NginxProxy's container settings, its securityContext and the pod's
    unprivileged-port sysctl (objects.go, v2.6.7)."""
    workload = kube.get("daemonSet") or kube.get("deployment") or {}
    host_ports = {int(h["containerPort"]): int(h["port"])
                  for h in (workload.get("container") or {}).get("hostPorts") or []}
    ports = []
    for port in _listener_ports(gw):
        entry: dict[str, Any] = {"containerPort": port, "name": f"port-{port}", "protocol": "TCP"}
        if port in host_ports:
            entry["hostPort"] = host_ports[port]
        ports.append(entry)
    container = {"name": "nginx", "image": IMAGE, "ports": ports, "securityContext": {
        "capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "runAsGroup": 1001, "runAsUser": 101,
        "seccompProfile": {"type": "RuntimeDefault"}}}
    return {"metadata": {"labels": labels}, "spec": {
        "containers": [container],
        "securityContext": {"fsGroup": 1001, "runAsNonRoot": True, "sysctls": [
            {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]}}}


def _workload(c: Any, gw: dict, gc: dict) -> tuple[str, dict | None]:
    """("daemonsets" or "deployments", the data plane object or None)."""
    ns, name = gw["metadata"]["namespace"], data_plane_name(gw, gc)
    kind = "daemonsets" if _proxy_kubernetes(c, gc).get("daemonSet") else "deployments"
    return kind, c.get(kind, ns, name)


def reconcile(c: Any, gw: dict) -> dict | None:
    """Create or update the data plane of one Gateway; returns its Service (None: not ours or
    the control plane is not running)."""
    gc = _class(c, gw)
    if gc is None or not _available(c, _control_plane(c)):
        return None
    ns, name = gw["metadata"]["namespace"], data_plane_name(gw, gc)
    infra = (gw.get("spec") or {}).get("infrastructure") or {}
    labels = {"app.kubernetes.io/name": name,
              "gateway.networking.k8s.io/gateway-name": gw["metadata"]["name"]}
    kube = _proxy_kubernetes(c, gc)
    kind, current = _workload(c, gw, gc)
    other = "deployments" if kind == "daemonsets" else "daemonsets"
    stale = c.get(other, ns, name)
    if stale is not None:
        del c.objects[(other, ns, name)]
        c._after_delete(other, stale)
    template = _pod_template(gw, labels, kube)
    if current is None or current["spec"]["template"] != template:
        spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": template}
        if kind == "deployments":
            spec["replicas"] = 1
        obj = {"apiVersion": "apps/v1", "kind": "DaemonSet" if kind == "daemonsets"
               else "Deployment", "metadata": {"name": name, "namespace": ns,
                                               "labels": dict(labels)}, "spec": spec}
        if current is not None:
            obj["metadata"] = {**current["metadata"], "labels": dict(labels)}
            if kind == "daemonsets":  # the template changed: the pods are replaced
                c._after_delete("daemonsets", current)
        c.put(kind, obj)
        if kind == "deployments":
            c.ensure_replicaset(obj)
        c.reconcile()
    svc_cfg = kube.get("service") or {}
    node_ports = {int(p["listenerPort"]): int(p["port"]) for p in svc_cfg.get("nodePorts") or []}
    stype = svc_cfg.get("type", "LoadBalancer")
    ports = []
    for port in _listener_ports(gw):
        entry = {"name": f"port-{port}", "port": port, "protocol": "TCP", "targetPort": port}
        if stype in ("NodePort", "LoadBalancer") and port in node_ports:
            entry["nodePort"] = node_ports[port]
        ports.append(entry)
    spec = {"type": stype, "selector": labels, "ports": ports}
    if stype != "ClusterIP":
        spec["externalTrafficPolicy"] = svc_cfg.get("externalTrafficPolicy", "Local")
    meta = {"name": name, "namespace": ns, "labels": {**labels, **(infra.get("labels") or {})},
            "annotations": dict(infra.get("annotations") or {})}
    svc = c.get("services", ns, name)
    if svc is None or svc.get("spec") != spec or {k: svc["metadata"].get(k) for k in
                                                  ("labels", "annotations")} != {
            "labels": meta["labels"], "annotations": meta["annotations"]}:
        keep = {k: v for k, v in ((svc or {}).get("metadata") or {}).items() if k.startswith("_")}
        svc = c.put("services", {"apiVersion": "v1", "kind": "Service",
                                 "metadata": {**meta, **keep}, "spec": spec})
    return svc


# NGF v2.6.7 internal/controller/state/conditions/conditions.go
LISTENER_OK = [
    {"type": "Programmed", "status": "True", "reason": "Programmed",
     "message": "The Listener is programmed"},
    {"type": "Accepted", "status": "True", "reason": "Accepted",
     "message": "The Listener is accepted"},
    {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs",
     "message": "All references are resolved"},
    {"type": "Conflicted", "status": "False", "reason": "NoConflicts", "message": "No conflicts"},
]
SUPPORTED_KINDS = [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"},
                   {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}]


def _cert_ref_errors(c: Any, gw_ns: str, ln: dict) -> tuple[list[str], str]:
    """NGF's messages for the certificateRefs of an HTTPS listener that do not resolve, and
    the reason (InvalidCertificateRef, or RefNotPermitted when only cross-namespace refs
    failed). gateway_listener.go: field.Invalid(path, NamespacedName, "Secret <ns>/<name> does
    not exist"); the NamespacedName is printed as JSON (graph/gateway_test.go, "invalid tls
    config" case)."""
    errors: list[str] = []
    invalid = False
    for i, ref in enumerate((ln.get("tls") or {}).get("certificateRefs") or []):
        ref_ns = ref.get("namespace") or gw_ns
        nsname = f"{ref_ns}/{ref['name']}"
        if ref_ns != gw_ns:  # ReferenceGrants are not simulated
            errors.append(f"Certificate ref to secret {nsname} not permitted by any "
                          "ReferenceGrant")
            continue
        if c.get("secrets", ref_ns, ref["name"]) is None:
            shown = json.dumps({"Namespace": ref_ns, "Name": ref["name"]},
                               separators=(",", ":"))
            errors.append(f"tls.certificateRefs[{i}]: Invalid value: {shown}: Secret {nsname} "
                          "does not exist")
            invalid = True
    return errors, "InvalidCertificateRef" if invalid else "RefNotPermitted"


def _attached(c: Any, gw: dict, ln: dict) -> int:
    gw_ns, gw_name = gw["metadata"]["namespace"], gw["metadata"]["name"]
    count = 0
    for route in c.items("httproutes"):
        rns = route["metadata"].get("namespace", "default")
        allowed = (((ln.get("allowedRoutes") or {}).get("namespaces") or {}).get("from", "Same"))
        if not (allowed == "All" or (allowed == "Same" and rns == gw_ns)):
            continue
        if any(ref.get("kind", "Gateway") == "Gateway" and ref.get("name") == gw_name
               and ref.get("namespace", rns) == gw_ns
               and ref.get("sectionName") in (None, ln["name"])
               for ref in (route.get("spec") or {}).get("parentRefs") or []):
            count += 1
    return count


def listener_statuses(c: Any, gw: dict) -> tuple[list[dict], int]:
    """status.listeners as NGF writes them, and how many listeners are valid."""
    out, valid = [], 0
    for ln in (gw.get("spec") or {}).get("listeners") or []:
        conds = [dict(x) for x in LISTENER_OK]
        if ln.get("protocol") == "HTTPS":
            errors, reason = _cert_ref_errors(c, gw["metadata"]["namespace"], ln)
            if errors:  # all refs failed (one ref here): NewListenerAllInvalidCertificateRefs
                msg = "; ".join(errors)
                conds = [{"type": "Accepted", "status": "False", "reason": reason,
                          "message": msg},
                         {"type": "ResolvedRefs", "status": "False", "reason": reason,
                          "message": msg},
                         {"type": "Programmed", "status": "False", "reason": "Invalid",
                          "message": msg}]
        if conds[0]["status"] == "True":
            valid += 1
        out.append({"name": ln["name"], "supportedKinds": SUPPORTED_KINDS,
                    "attachedRoutes": _attached(c, gw, ln), "conditions": conds})
    return out, valid


def _data_plane_ready(c: Any, gw: dict, svc: dict) -> bool:
    gc = _class(c, gw)
    kind, obj = _workload(c, gw, gc) if gc else ("", None)
    pods = c._ready_pods(svc["metadata"]["namespace"], svc["spec"]["selector"])
    if kind == "deployments":
        return _available(c, obj) and bool(pods)
    return obj is not None and bool(pods)


def gateway_view(c: Any, gw: dict, out: dict) -> dict:
    """The Gateway as served: its status after the simulated controller ran."""
    svc = reconcile(c, gw)
    if svc is None:
        out["status"] = {"conditions": [
            {"type": "Accepted", "status": "Unknown", "reason": "Pending"},
            {"type": "Programmed", "status": "Unknown", "reason": "Pending"}]}
        return out
    shown = c.view("services", svc)
    ingress = ((shown.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ready = _data_plane_ready(c, gw, svc)
    if svc["spec"]["type"] == "LoadBalancer" and not ingress:
        ready = False
    statuses, valid = listener_statuses(c, gw)
    accepted = {"type": "Accepted", "status": "True", "reason": "Accepted",
                "message": "The Gateway is accepted"}
    programmed = {"type": "Programmed", "status": "True" if ready else "False",
                  "reason": "Programmed" if ready else "Pending",
                  "message": "The Gateway is programmed" if ready else "The data plane is not "
                  "ready (simulated)"}
    if valid == 0 and statuses:
        msg = "The Gateway has no valid listeners"
        accepted = {"type": "Accepted", "status": "False", "reason": "ListenersNotValid",
                    "message": msg}
        programmed = {"type": "Programmed", "status": "False", "reason": "Invalid",
                      "message": msg}
    elif valid < len(statuses):
        accepted = {"type": "Accepted", "status": "True", "reason": "ListenersNotValid",
                    "message": "The Gateway has at least one valid listener"}
    out["status"] = {
        "addresses": [{"type": "IPAddress", "value": i["ip"]} for i in ingress],
        "conditions": [accepted, programmed],
        "listeners": statuses}
    return out


def _host_ports(c: Any, gw: dict, node: str | None) -> list[tuple[str, int, int]]:
    """(node, hostPort, listener port) of the ready data plane pods of one Gateway (on
    ``node`` only, unless None): where the CNI's portmap plugin forwards a node's port."""
    gc = _class(c, gw)
    if gc is None:
        return []
    ns, name = gw["metadata"]["namespace"], data_plane_name(gw, gc)
    out = []
    for kind in ("daemonsets", "deployments"):
        obj = c.get(kind, ns, name)
        if obj is None:
            continue
        ports = [p for ctr in obj["spec"]["template"]["spec"]["containers"]
                 for p in ctr.get("ports") or [] if p.get("hostPort")]
        for pod in c._ready_pods(ns, obj["spec"]["selector"]["matchLabels"]):
            where = pod["spec"].get("nodeName") or ""
            if node is None or where == node:
                out += [(where, int(p["hostPort"]), int(p["containerPort"])) for p in ports]
    return out


def listeners(c: Any, node: str | None = None) -> list[dict]:
    """Where ``node`` (every node: None) accepts HTTP for the Gateways' data planes: LB
    address:port, nodePort, and hostPorts of the data plane pods on that node."""
    out: list[dict] = []
    for gw in c.items("gateways"):
        svc = reconcile(c, gw)
        if svc is None or not c._ready_pods(svc["metadata"]["namespace"],
                                            svc["spec"]["selector"]):
            continue
        shown = c.view("services", svc)
        ips = [i["ip"] for i in ((shown.get("status") or {}).get("loadBalancer") or {}).get(
            "ingress") or []]
        for port in svc["spec"]["ports"]:
            for ip in ips:
                out.append({"ip": ip, "port": int(port["port"])})
            if port.get("nodePort"):
                out.append({"ip": "0.0.0.0", "port": int(port["nodePort"])})
        for _, host_port, _ in _host_ports(c, gw, node):
            out.append({"ip": "0.0.0.0", "port": host_port})
    return out


def _target(c: Any, ip: str, port: int, node: str = "") -> tuple[dict, int] | None:
    """The Gateway and listener port a request to ip:port on ``node`` reaches (None: no
    data plane)."""
    for gw in c.items("gateways"):
        gc = _class(c, gw)
        if gc is None:
            continue
        svc = c.get("services", gw["metadata"]["namespace"], data_plane_name(gw, gc))
        if svc is None:
            continue
        for p in svc["spec"].get("ports") or []:
            if (ip != "0.0.0.0" and ip == svc["metadata"].get("_lb_ip") and port == p["port"]) \
                    or (p.get("nodePort") == port):
                return gw, int(p["port"])
        for _, host_port, listener_port in _host_ports(c, gw, node):
            if ip == "0.0.0.0" and host_port == port:
                return gw, listener_port
    return None


def _host_ok(names: list[str], host: str) -> bool:
    if not names:
        return True
    for n in (x.lower() for x in names):
        if n.startswith("*.") and host.endswith(n[1:]) and host != n[2:]:
            return True
        if n == host:
            return True
    return False


def request(c: Any, p: dict) -> dict | None:
    """Answer a request that reached a Gateway's data plane; None when ip:port is not one."""
    found = _target(c, str(p.get("ip", "")), int(p.get("port", 0)),
                    str(p.get("node", "")))
    if found is None:
        return None
    from urllib.parse import parse_qs, urlparse

    gw, port = found
    gw_ns, gw_name = gw["metadata"]["namespace"], gw["metadata"]["name"]
    listeners_ = [ln for ln in gw["spec"].get("listeners") or [] if int(ln["port"]) == port]
    host = (p.get("host") or "").rsplit(":", 1)[0].lower()
    url = urlparse(p.get("path") or "/")
    path, query = url.path or "/", parse_qs(url.query)
    best: tuple[tuple, dict, dict] | None = None
    for route in c.items("httproutes"):
        rns = route["metadata"].get("namespace", "default")
        attached = False
        for ref in (route.get("spec") or {}).get("parentRefs") or []:
            if ref.get("kind", "Gateway") != "Gateway" or ref.get("name") != gw_name \
                    or ref.get("namespace", rns) != gw_ns:
                continue
            for ln in listeners_:
                if ref.get("sectionName") not in (None, ln["name"]):
                    continue
                allowed = (((ln.get("allowedRoutes") or {}).get("namespaces") or {}).get(
                    "from", "Same"))
                if allowed == "All" or (allowed == "Same" and rns == gw_ns):
                    attached = True
        if not attached or not _host_ok((route.get("spec") or {}).get("hostnames") or [], host):
            continue
        for rule in (route.get("spec") or {}).get("rules") or []:
            for m in rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]:
                mp = m.get("path") or {"type": "PathPrefix", "value": "/"}
                want = mp.get("value", "/")
                if mp.get("type") == "Exact":
                    ok = path == want
                else:
                    parts = [x for x in want.split("/") if x]
                    ok = [x for x in path.split("/") if x][:len(parts)] == parts
                if ok:
                    score = (mp.get("type") == "Exact", len(want))
                    if best is None or score > best[0]:
                        best = (score, route, rule)
    backend = ""
    if best is None:
        code, body = 404, NOT_FOUND
    else:
        _, route, rule = best
        rns = route["metadata"].get("namespace", "default")
        ref = (rule.get("backendRefs") or [{}])[0]
        backend = f"{ref.get('namespace', rns)}/{ref.get('name', '')}"
        svc = c.get("services", ref.get("namespace", rns), ref.get("name", ""))
        pods = c._ready_pods(ref.get("namespace", rns),
                             ((svc or {}).get("spec") or {}).get("selector") or {})
        code, body = c._backend_answer(pods[0], path, query) if pods else (503, UNAVAILABLE)
    c.log("gateway-request", p.get("node", ""), "ok" if code < 400 else "refused",
          gateway=f"{gw_ns}/{gw_name}", host=host, path=path, code=code, backend=backend)
    return {"code": code, "body": body}
