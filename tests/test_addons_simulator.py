"""The simulator's add-on behaviour (tests/simulator/metallb.py and server.py), in process:
the simulated MetalLB controller assigns LoadBalancer addresses from IPAddressPools (sharing
rules, exhaustion, requested addresses), and simulated webhooks with `*/*` rules refuse
every write until their Deployment is available. Real HTTP to the simulated API server on
127.0.0.1; what is simulated is Kubernetes/MetalLB itself."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest
from simulator import metallb
from simulator.httpapi import SimApi, crd, kubeadm_cluster
from simulator.server import SimServer

NS = "metallb-system"


class Api(SimApi):
    def lb_ip(self, ns: str, name: str) -> str | None:
        code, svc = self.call("GET", f"/api/v1/namespaces/{ns}/services/{name}")
        assert code == 200, svc
        ingress = svc["status"]["loadBalancer"].get("ingress") or []
        return ingress[0]["ip"] if ingress else None


@pytest.fixture
def api() -> Iterator[Api]:
    server = SimServer("127.0.0.1", 0).start()
    c = server.cluster
    c.settings.update(require_cni=False, deployment_ready_seconds=0.0)
    with c.lock:  # an initialized cluster without nodes is enough for the API objects here
        c.initialized = True
    a = Api(server.url)
    for ns in (NS, "default", "dns"):
        a.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": ns}})
    a.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
             crd("metallb.io", "ipaddresspools", "IPAddressPool"))
    try:
        yield a
    finally:
        server.stop()


def controller(api: Api) -> None:
    api.create(f"/apis/apps/v1/namespaces/{NS}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "controller", "namespace": NS},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"component": "controller"}},
                 "template": {"metadata": {"labels": {"component": "controller"}},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}}}})


def pool(api: Api, name: str, addresses: list[str], **spec: Any) -> None:
    api.create(f"/apis/metallb.io/v1beta1/namespaces/{NS}/ipaddresspools", {
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"addresses": addresses, **spec}})


def service(api: Api, name: str, ns: str = "default", ports: tuple[tuple[int, str], ...] = (
        (80, "TCP"),), annotations: dict[str, str] | None = None, **spec: Any) -> None:
    api.create(f"/api/v1/namespaces/{ns}/services", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
        "spec": {"type": "LoadBalancer", "selector": {"app": name},
                 "ports": [{"name": f"p{port}{proto.lower()}", "port": port,
                            "protocol": proto} for port, proto in ports], **spec}})


def events(api: Api, ns: str) -> list[str]:
    _, out = api.call("GET", f"/api/v1/namespaces/{ns}/events")
    return [f"{e['reason']}: {e['message']}" for e in out["items"]]


def test_simulated_metallb_assigns_in_order_until_the_pool_is_exhausted(api: Api) -> None:
    """Addresses in order; the third Service of a two-address pool gets none and a
    Warning AllocationFailed Event; deleting one frees its address for the waiting one."""
    pool(api, "lab", ["10.0.0.10-10.0.0.11"])
    service(api, "a")
    assert api.lb_ip("default", "a") is None, "assigned before the controller runs"
    controller(api)
    service(api, "b")
    service(api, "c")
    assert [api.lb_ip("default", n) for n in "abc"] == ["10.0.0.10", "10.0.0.11", None]
    assert events(api, "default") == [
        'AllocationFailed: Failed to allocate IP for "default/c": no available IPs']
    assert api.call("DELETE", "/api/v1/namespaces/default/services/a")[0] == 200
    assert api.lb_ip("default", "c") == "10.0.0.10"
    assert api.lb_ip("default", "b") == "10.0.0.11", "a kept address moved"


def test_simulated_metallb_shares_one_ip_for_tcp_and_udp_dns(api: Api) -> None:
    """The documented DNS example: TCP/53 and UDP/53 Services with the same sharing key get
    the same address; a third using TCP/53 again, or one with another key, is refused."""
    controller(api)
    pool(api, "lab", ["192.168.50.0/30"], avoidBuggyIPs=True)
    shared = {"metallb.io/allow-shared-ip": "dns", "metallb.io/loadBalancerIPs": "192.168.50.1"}
    service(api, "dns-udp", "dns", ((53, "UDP"),), shared)
    service(api, "dns-tcp", "dns", ((53, "TCP"),), shared)
    service(api, "dns-tcp2", "dns", ((53, "TCP"),), shared)
    service(api, "other", "dns", ((8053, "TCP"),),
            {**shared, "metallb.io/allow-shared-ip": "not-dns"})
    assert api.lb_ip("dns", "dns-udp") == api.lb_ip("dns", "dns-tcp") == "192.168.50.1"
    assert api.lb_ip("dns", "dns-tcp2") is None and api.lb_ip("dns", "other") is None
    msgs = "\n".join(events(api, "dns"))
    assert "port 53/TCP is already in use" in msgs and "sharing key mismatch" in msgs
    service(api, "auto", "dns")  # .0 is skipped (avoidBuggyIPs), .1 is taken without sharing
    assert api.lb_ip("dns", "auto") == "192.168.50.2"


def test_simulated_metallb_annotation_prefixes() -> None:
    """As MetalLB v0.16.1 (controller/service.go valueForAnnotation, SharingKey): the
    ``metallb.io/`` key wins whenever it is present, even empty; the deprecated
    ``metallb.universe.tf/`` one (the ``outside`` Service below uses it) only when it is absent."""
    def svc(annotations: dict[str, str]) -> dict:
        return {"metadata": {"name": "s", "annotations": annotations}}

    both = {"metallb.io/address-pool": "new", "metallb.universe.tf/address-pool": "old"}
    assert metallb.annotation(svc(both), metallb.POOL) == "new"
    assert metallb.annotation(svc({"metallb.universe.tf/address-pool": "old"}),
                              metallb.POOL) == "old"
    assert metallb.annotation(svc({"metallb.io/address-pool": "",
                                   "metallb.universe.tf/address-pool": "old"}),
                              metallb.POOL) == ""
    assert metallb.requested(svc({"metallb.io/loadBalancerIPs": "10.0.0.1, 10.0.0.2",
                                  "metallb.universe.tf/loadBalancerIPs": "10.9.9.9"})) == \
        [ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2")]


def test_simulated_metallb_requests_pools_and_local_policy(api: Api) -> None:
    controller(api)
    pool(api, "a-default", ["10.1.0.0/31"])
    pool(api, "b-manual", ["10.2.0.5/32"], autoAssign=False)
    service(api, "outside", annotations={"metallb.universe.tf/loadBalancerIPs": "10.9.9.9"})
    service(api, "named", annotations={"metallb.io/address-pool": "b-manual"})
    service(api, "nopool", annotations={"metallb.io/address-pool": "missing"})
    service(api, "legacy", loadBalancerIP="10.1.0.1")
    service(api, "auto")
    service(api, "clusterip", type="ClusterIP")
    assert api.lb_ip("default", "outside") is None
    assert api.lb_ip("default", "named") == "10.2.0.5"
    assert api.lb_ip("default", "legacy") == "10.1.0.1"
    assert api.lb_ip("default", "auto") == "10.1.0.0"
    assert api.lb_ip("default", "clusterip") is None and api.lb_ip("default", "nopool") is None
    msgs = "\n".join(events(api, "default"))
    assert '"10.9.9.9" is not allowed in config' in msgs and 'unknown pool "missing"' in msgs
    local = {"spec": {"externalTrafficPolicy": "Local", "selector": {"app": "x"},
                      "ports": [{"port": 1, "protocol": "TCP"}]},
             "metadata": {"name": "l1", "annotations": {f"{metallb.PREFIX}/{metallb.SHARE}": "k"}}}
    other = {**local, "spec": {**local["spec"], "selector": {"app": "y"},
                               "ports": [{"port": 2, "protocol": "TCP"}]}}
    assert metallb.can_share(local, other) == \
        "externalTrafficPolicy Local with different selectors"
    assert metallb.can_share(local, {**other, "spec": {**other["spec"],
                                                        "selector": {"app": "x"}}}) is None


def test_simulated_webhook_with_star_rules_refuses_until_available(api: Api) -> None:
    """A ValidatingWebhookConfiguration with apiGroups ["*"] and resources ["*/*"] (like
    cert-manager's and Kyverno's) intercepts writes of any group until its Deployment is
    available."""
    api.call("POST", "/sim/admin/settings", {"deployment_ready_seconds": 30.0})
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": "hook"}})
    api.create("/api/v1/namespaces/hook/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "hook", "namespace": "hook"},
        "spec": {"selector": {"app": "hook"}, "ports": [{"port": 443}]}})
    api.create("/apis/apps/v1/namespaces/hook/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "hook", "namespace": "hook"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "hook"}},
                 "template": {"metadata": {"labels": {"app": "hook"}},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    api.create("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "star"},
        "webhooks": [{"name": "star.example.org",
                      "clientConfig": {"service": {"name": "hook", "namespace": "hook"}},
                      "rules": [{"apiGroups": ["*"], "apiVersions": ["*"],
                                 "operations": ["CREATE", "UPDATE"], "resources": ["*/*"]}]}]})
    code, out = api.call("POST", f"/apis/metallb.io/v1beta1/namespaces/{NS}/ipaddresspools", {
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "p", "namespace": NS}, "spec": {"addresses": ["10.0.0.1/32"]}})
    assert code == 500 and 'failed calling webhook "star.example.org"' in out["message"]
    code, out = api.call("POST", "/api/v1/namespaces/default/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    assert code == 500, out
    api.call("POST", "/sim/admin/settings", {"deployment_ready_seconds": 0.0})
    code, out = api.call("POST", "/api/v1/namespaces/default/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    assert code == 200, out


def _ingress_setup(api: Api, image: str = "registry.k8s.io/e2e-test-images/agnhost:2.53",
                   args: tuple[str, ...] = ("netexec", "--http-port=8080")) -> None:
    """A node (registered by a kubelet heartbeat) for the pods, the ingress-nginx controller
    behind a MetalLB and a NodePort Service, an echo Deployment and an Ingress."""
    api.call("POST", "/sim/admin/settings", {"pod_ready_seconds": 0.0})
    kubeadm_cluster(api, "1.31.2", nodes=[("n1", "192.0.2.7")])
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": "ingress-nginx"}})
    api.create("/apis/networking.k8s.io/v1/ingressclasses", {
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "nginx", "annotations": {
            "ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": "k8s.io/ingress-nginx"}})
    ctrl = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
    api.create("/apis/apps/v1/namespaces/ingress-nginx/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
        "spec": {"replicas": 1, "selector": {"matchLabels": ctrl},
                 "template": {"metadata": {"labels": ctrl},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    service(api, "ingress-nginx-controller", "ingress-nginx", ((80, "TCP"), (443, "TCP")),
            {"metallb.universe.tf/loadBalancerIPs": "10.0.0.10"}, selector=ctrl)
    api.create("/api/v1/namespaces/ingress-nginx/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
        "spec": {"type": "NodePort", "selector": ctrl,
                 "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}})
    labels = {"app": "echo"}
    api.create("/apis/apps/v1/namespaces/default/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "echo", "image": image, "args": list(args)}]}}}})
    api.create("/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80}]}})
    api.create("/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "nobody"},
        "spec": {"selector": {"app": "nobody"}, "ports": [{"name": "http", "port": 80}]}})

    def path(p: str, svc: str, kind: str = "Prefix") -> dict:
        return {"path": p, "pathType": kind,
                "backend": {"service": {"name": svc, "port": {"name": "http"}}}}

    api.create("/apis/networking.k8s.io/v1/namespaces/default/ingresses", {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "echo"},
        "spec": {"rules": [  # no ingressClassName: the default class (nginx) takes it
            {"host": "echo.test", "http": {"paths": [path("/", "echo"),
                                                     path("/down", "nobody")]}},
            {"host": "*.wild.test", "http": {"paths": [path("/echo", "echo", "Exact")]}}]}})


def ask(api: Api, host: str, path: str) -> tuple[int, str]:
    code, out = api.call("POST", "/sim/ingress/request", {"node": "n1", "host": host,
                                                          "path": path})
    assert code == 200, out
    return out["code"], out["body"]


def test_simulated_ingress_routes_by_class_host_and_path(api: Api) -> None:
    """The simulated ingress-nginx data path: host and path rules of the default class pick
    the backend; agnhost netexec answers /echo?msg=; nginx's 404 without a rule, 503 without
    a ready endpoint; where the nodes listen (MetalLB address:80 and the nodePort)."""
    controller(api)
    pool(api, "lab", ["10.0.0.10-10.0.0.20"])
    _ingress_setup(api)
    assert ask(api, "echo.test:80", "/echo?msg=hello") == (200, "hello")
    assert ask(api, "a.wild.test", "/echo?msg=w") == (200, "w")
    assert ask(api, "a.b.wild.test", "/echo?msg=w")[0] == 404  # one label only
    assert ask(api, "a.wild.test", "/echo/x")[0] == 404  # Exact
    assert ask(api, "other.test", "/echo?msg=x")[0] == 404
    code, body = ask(api, "echo.test", "/down/x")
    assert code == 503 and "Service Temporarily Unavailable" in body
    _, out = api.call("GET", "/sim/admin/calls")
    assert [c["code"] for c in out if c["op"] == "ingress-request"][:2] == [200, 200]
    assert {(x["ip"], x["port"]) for x in api.call(
        "POST", "/sim/kubelet/heartbeat", {"node": "n1", "kubelet_version": "1.31.2",
                                           "addresses": ["192.0.2.7"]})[1][
        "listeners"]} == {("10.0.0.10", 80), ("0.0.0.0", 30080)}
    _, pods = api.call("GET", "/api/v1/namespaces/ingress-nginx/pods")
    assert [p["status"]["hostIP"] for p in pods["items"]] == ["192.0.2.7"]  # NodePort mode


def test_simulated_ingress_serves_only_agnhost_netexec(api: Api) -> None:
    controller(api)
    pool(api, "lab", ["10.0.0.10-10.0.0.20"])
    _ingress_setup(api, image="docker.io/library/nginx:1.27", args=())
    code, body = ask(api, "echo.test", "/")
    assert code == 502 and "only agnhost netexec" in body
