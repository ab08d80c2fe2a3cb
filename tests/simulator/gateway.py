"""Simulated NGINX Gateway Fabric (issue 16): what its controller does with a Gateway, and the
HTTP data path through HTTPRoutes - simulated, not NGF's code.

- A Gateway whose GatewayClass names NGF's controller (``gateway.nginx.org/nginx-gateway-
  controller``) gets, once the NGF control plane Deployment (args ``--gateway-ctlr-name=``) is
  Available, a data plane Deployment and Service ``<gateway>-<class>`` in its namespace, as
  NGF's provisioner does (internal/controller/provisioner): Service type, externalTraffic-
  Policy and nodePorts from the class's NginxProxy (``parametersRef``), one port per listener
  port, the Gateway's ``spec.infrastructure`` labels/annotations copied (so MetalLB's
  ``metallb.io/loadBalancerIPs`` reaches the Service).
- Its status: Accepted once the control plane runs; Programmed when the data plane is
  Available (and, for a LoadBalancer Service, has an address: then ``status.addresses``).
- A request reaching the data plane Service (address:port, or nodePort) is routed by the
  HTTPRoutes attached to the Gateway (parentRefs name/namespace/sectionName, allowedRoutes
  ``All``/``Same``; hostnames exact or ``*.``; PathPrefix/Exact matches, longest first) to
  the first backendRef Service's ready pods; NGINX's 404 without a route, 503 without a
  ready endpoint.
"""

from __future__ import annotations

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


def _proxy_service(c: Any, gc: dict) -> dict:
    ref = (gc.get("spec") or {}).get("parametersRef") or {}
    proxy = c.get("nginxproxies", ref.get("namespace", ""), ref.get("name", "")) or {}
    return ((proxy.get("spec") or {}).get("kubernetes") or {}).get("service") or {}


def data_plane_name(gw: dict, gc: dict) -> str:
    return f"{gw['metadata']['name']}-{gc['metadata']['name']}"


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
    if c.get("deployments", ns, name) is None:
        deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
                  "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels}, "spec": {
                               "containers": [{"name": "nginx", "image": IMAGE}]}}}}
        c.put("deployments", deploy)
        c.ensure_replicaset(deploy)
        c.reconcile()
    svc_cfg = _proxy_service(c, gc)
    node_ports = {int(p["listenerPort"]): int(p["port"]) for p in svc_cfg.get("nodePorts") or []}
    stype = svc_cfg.get("type", "LoadBalancer")
    ports = []
    for port in sorted({int(ln["port"]) for ln in (gw.get("spec") or {}).get("listeners") or []}):
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
    ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
    ready = _available(c, c.get("deployments", ns, name)) and bool(
        c._ready_pods(ns, svc["spec"]["selector"]))
    if svc["spec"]["type"] == "LoadBalancer" and not ingress:
        ready = False
    out["status"] = {
        "addresses": [{"type": "IPAddress", "value": i["ip"]} for i in ingress],
        "conditions": [
            {"type": "Accepted", "status": "True", "reason": "Accepted"},
            {"type": "Programmed", "status": "True" if ready else "False",
             "reason": "Programmed" if ready else "Pending"}]}
    return out


def listeners(c: Any) -> list[dict]:
    """Where the nodes accept HTTP for the Gateways' data planes (LB address:port, nodePort)."""
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
    return out


def _target(c: Any, ip: str, port: int) -> tuple[dict, int] | None:
    """The Gateway and listener port a request to ip:port reaches (None: no data plane)."""
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
    found = _target(c, str(p.get("ip", "")), int(p.get("port", 0)))
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
