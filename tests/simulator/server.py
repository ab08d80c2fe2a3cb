"""The simulated Kubernetes API server (stdlib http.server + JSON, thread-safe).

It holds what the provisioning roles and upgrade code look at: nodes (registered and kept
Ready by the simulated kubelet's heartbeats), pods with owners (DaemonSet, ReplicaSet, bare),
PodDisruptionBudgets, the kubeadm-config ConfigMap, control-plane static pods reported by each
node's kubelet, bootstrap tokens, uploaded certificates and any object applied with kubectl.

Paths follow the real REST API where kubectl would use them (/version, /api/v1/nodes,
/api/v1/namespaces/<ns>/pods/<name>/eviction, /apis/policy/v1/...), so the simulated kubectl
talks to it the way the real one does. Operations that in reality happen on the host (kubeadm
phases, kubelet registration) use /sim/... endpoints, and tests drive /sim/admin/...:
state, seeding, fault injection ("fail the next N calls of <operation> on <node>") and the call
log. Run in the test process (`SimServer(...).start()`) or as
`PYTHONPATH=tests python -m simulator.server
--host H --port P`.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from . import certmanager, gateway, metallb, rules
from .rules import RuleError, Version

CNI_DAEMONSETS = ("kube-flannel-ds", "calico-node", "cilium", "weave-net", "kube-router")
CLUSTER_SCOPED = {
    "nodes",
    "namespaces",
    "customresourcedefinitions",
    "clusterroles",
    "clusterrolebindings",
    "clusterissuers",
    "ingressclasses",
    "storageclasses",
    "persistentvolumes",
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
    "priorityclasses",
    "apiservices",
    "gatewayclasses",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
}
BUILTIN_GROUPS = {
    "",
    "apps",
    "batch",
    "policy",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
    "storage.k8s.io",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
    "scheduling.k8s.io",
    "apiregistration.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "autoscaling",
    "certificates.k8s.io",
}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An error the API answers with a Kubernetes Status object."""

    def __init__(
        self, code: int, message: str, reason: str = "BadRequest", details: dict | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason
        self.details = details


def _status(code: int, message: str, reason: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _yaml_dump(obj: Any) -> str:
    try:
        import yaml  # the test environment has PyYAML; JSON is valid YAML otherwise

        return yaml.safe_dump(obj, sort_keys=False)
    except ImportError:  # pragma: no cover
        return json.dumps(obj, indent=2)


class Cluster:
    """All simulated cluster state, guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.settings = {
            "node_grace_seconds": 20.0,
            "drain_retry_seconds": 1.0,
            "pod_ready_seconds": 0.5,
            "deployment_ready_seconds": 1.0,
            "job_complete_seconds": 1.0,
            "require_cni": True,
        }
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.initialized = False
            self.endpoint_node = ""
            self.objects: dict[tuple[str, str, str], dict] = {}  # (resource, ns, name) -> obj
            self.heartbeats: dict[str, float] = {}
            self.node_cni: dict[str, bool] = {}
            self.tokens: dict[str, dict] = {}
            self.uploaded_certs: dict[str, dict] = {}
            self.faults: list[dict] = []
            self.calls: list[dict] = []
            self.pod_seq = 0
            # labels/taints kubeadm init/join asked for, applied when the kubelet registers
            self.node_setup: dict[str, dict] = {}

    # ---------------------------------------------------------------- helpers
    def log(self, op: str, node: str = "", result: str = "ok", **details: Any) -> None:
        self.calls.append(
            {"time": time.time(), "op": op, "node": node, "result": result, **details}
        )

    def consume_fault(
        self, op: str, node: str, phase: str = "before", details: dict | None = None
    ) -> dict | None:
        """Take one pending fault for (op, node, phase) whose `match` (e.g. {"package":
        "kubelet"}) is contained in `details`; None when there is none."""
        details = details or {}
        with self.lock:
            for fault in self.faults:
                if (
                    fault["op"] == op
                    and fault["node"] in (node, "*")
                    and fault.get("phase", "before") == phase
                    and fault["remaining"] > 0
                    and all(details.get(k) == v for k, v in (fault.get("match") or {}).items())
                ):
                    fault["remaining"] -= 1
                    self.log(op, node, "injected-failure", phase=phase, **details)
                    return fault
        return None

    def get(self, resource: str, ns: str, name: str) -> dict | None:
        return self.objects.get((resource, ns, name))

    def put(self, resource: str, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        ns = "" if resource in CLUSTER_SCOPED else meta.setdefault("namespace", "default")
        old = self.objects.get((resource, ns, meta["name"]))
        meta.setdefault(
            "creationTimestamp", old["metadata"]["creationTimestamp"] if old else now_iso()
        )
        meta.setdefault(
            "uid", hashlib.sha1(f"{resource}/{ns}/{meta['name']}".encode()).hexdigest()[:32]
        )
        meta["resourceVersion"] = str(len(self.calls) + len(self.objects) + int(time.time()))
        meta.setdefault("_created", old["metadata"].get("_created") if old else time.time())
        self.objects[(resource, ns, meta["name"])] = obj
        return obj

    def items(self, resource: str, ns: str | None = None) -> list[dict]:
        return [
            o
            for (r, n, _), o in sorted(self.objects.items())
            if r == resource and (ns is None or n == ns)
        ]

    def api_version(self) -> Version:
        pod = self.get("pods", "kube-system", f"kube-apiserver-{self.endpoint_node}")
        pods = (
            [pod]
            if pod
            else [
                p
                for p in self.items("pods", "kube-system")
                if p["metadata"].get("labels", {}).get("component") == "kube-apiserver"
            ]
        )
        if pods:
            return Version.parse(pods[0]["spec"]["containers"][0]["image"].rsplit(":", 1)[1])
        return Version.parse(self.cluster_configuration()["kubernetesVersion"])

    def cluster_configuration(self) -> dict:
        import yaml

        cm = self.get("configmaps", "kube-system", "kubeadm-config")
        if not cm:
            raise ApiError(
                503,
                "the simulated cluster has not been initialized (kubeadm init)",
                "ServiceUnavailable",
            )
        return yaml.safe_load(cm["data"]["ClusterConfiguration"])

    def cluster_version(self) -> Version:
        return Version.parse(self.cluster_configuration()["kubernetesVersion"])

    def require_api(self) -> None:
        if not self.initialized:
            raise ApiError(
                503,
                "connection refused: no kube-apiserver is running (the simulated "
                "cluster has not been initialized with kubeadm init)",
                "ServiceUnavailable",
            )

    def require_apiserver_pod(self) -> None:
        """With the setting ``api_needs_apiserver_pod`` (off by default): the API answers
        only while some control-plane node's kubelet runs a kube-apiserver static pod (its
        manifest is in /etc/kubernetes/manifests), like a real cluster behind its load
        balancer when every kube-apiserver is stopped. ``"endpoint"``: only the endpoint
        node's kube-apiserver counts (a controlPlaneEndpoint that is one node's address, no
        load balancer). Kubelet heartbeats (/sim/...) still arrive: they stand for the
        node-local view."""
        with self.lock:
            mode = self.settings.get("api_needs_apiserver_pod")
            if not (self.initialized and mode):
                return
            if any(
                (p["metadata"].get("labels") or {}).get("component") == "kube-apiserver"
                and "kubernetes.io/config.mirror" in (p["metadata"].get("annotations") or {})
                and (mode != "endpoint" or p["spec"].get("nodeName") == self.endpoint_node)
                for p in self.items("pods", "kube-system")
            ):
                return
            self.log("api-refused", "", "refused")
        raise ApiError(
            503,
            "connection refused: no kube-apiserver static pod is running on any control "
            "plane (its manifest is out of /etc/kubernetes/manifests)",
            "ServiceUnavailable",
        )

    # ---------------------------------------------------------------- computed status
    def node_view(self, node: dict) -> dict:
        node = copy.deepcopy(node)
        name = node["metadata"]["name"]
        age = time.time() - self.heartbeats.get(name, 0)
        cni_ok = (
            (not self.settings["require_cni"])
            or self.node_cni.get(name)
            or any(
                self.get("daemonsets", ns, ds)
                for ds in CNI_DAEMONSETS
                for ns in ("kube-system", "kube-flannel", "calico-system")
            )
        )
        if age > self.settings["node_grace_seconds"]:
            cond = {
                "status": "Unknown",
                "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
            }
        elif not cni_ok:
            cond = {
                "status": "False",
                "reason": "KubeletNotReady",
                "message": "container runtime network not ready: NetworkReady=false "
                "reason:NetworkPluginNotReady message:Network plugin returns error: cni "
                "plugin not initialized",
            }
        else:
            cond = {
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
            }
        hb = datetime.fromtimestamp(self.heartbeats.get(name, 0), UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        node["status"]["conditions"] = [{"type": "Ready", "lastHeartbeatTime": hb, **cond}]
        return node

    def pod_view(self, pod: dict) -> dict:
        pod = copy.deepcopy(pod)
        meta = pod["metadata"]
        ready = (
            bool(pod["spec"].get("nodeName"))
            and not meta.get("_crashloop")  # seeded crash-looping: Running, never Ready
            and time.time() - meta.get("_scheduled", 0) >= self.settings["pod_ready_seconds"]
        )
        pod["status"] = {
            "phase": "Running" if pod["spec"].get("nodeName") else "Pending",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
        node = self.get("nodes", "", pod["spec"].get("nodeName") or "")
        internal = [a["address"] for a in ((node or {}).get("status") or {}).get("addresses")
                    or [] if a.get("type") == "InternalIP"]
        if internal:  # the node's address, like the real pod status
            pod["status"]["hostIP"] = internal[0]
            pod["status"]["hostIPs"] = [{"ip": a} for a in internal]
        return pod

    def view(self, resource: str, obj: dict) -> dict:
        if resource == "nodes":
            out = self.node_view(obj)
        elif resource == "pods":
            out = self.pod_view(obj)
        else:
            out = copy.deepcopy(obj)
            if resource == "deployments":
                age = time.time() - obj["metadata"].get("_created", 0)
                n = obj.get("spec", {}).get("replicas", 1)
                ok = age >= self.settings["deployment_ready_seconds"]
                out["status"] = {
                    "replicas": n,
                    "readyReplicas": n if ok else 0,
                    "availableReplicas": n if ok else 0,
                    "updatedReplicas": n,
                    "observedGeneration": 1,
                    "conditions": [{"type": "Available", "status": "True" if ok else "False"}],
                }
            if resource == "jobs":  # one pod that succeeds this long after the Job's creation
                finished = self.job_finished_at(obj)
                done = finished is not None
                out["status"] = {"active": 0 if done else 1, "succeeded": 1 if done else 0,
                                 "conditions": [{"type": "Complete", "status": "True"}]
                                 if done else []}
                if done:
                    out["status"]["completionTime"] = time.strftime(
                        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished))
            if resource == "poddisruptionbudgets":
                pods = [self.pod_view(p) for p in self.items("pods")]
                out["status"] = {"disruptionsAllowed": rules.disruptions_allowed(out, pods)}
            if resource == "services":
                self.metallb_reconcile()
                ip = obj["metadata"].get("_lb_ip")
                out["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]} if ip else {}}
            if resource == "gateways":  # simulated NGINX Gateway Fabric (gateway.py)
                out = gateway.gateway_view(self, obj, out)
            if resource == "challenges":  # simulated cert-manager (certmanager.py)
                certmanager.reconcile(self)
                out.setdefault("status", {})["presented"] = bool(
                    obj["metadata"].get("_presented"))
        out["metadata"] = {k: v for k, v in out["metadata"].items() if not k.startswith("_")}
        return out

    def job_finished_at(self, job: dict) -> float | None:
        """When a (simulated) Job finished: ``job_complete_seconds`` after its creation; None
        while it is still running."""
        finished = job["metadata"].get("_created", 0) + self.settings["job_complete_seconds"]
        return finished if time.time() >= finished else None

    def reap_finished_jobs(self) -> None:
        """The TTL-after-finished controller: delete every finished Job whose
        ``ttlSecondsAfterFinished`` has passed (rules.job_ttl_expired); logged as
        ``job-ttl-delete``. Runs before every API request, so a client never sees a Job the
        real controller would already have deleted (the real one may lag a little)."""
        now = time.time()
        for job in self.items("jobs"):
            if rules.job_ttl_expired(job, now, self.job_finished_at(job)):
                meta = job["metadata"]
                del self.objects[("jobs", meta.get("namespace", ""), meta["name"])]
                self.log("job-ttl-delete", "", namespace=meta.get("namespace", ""),
                         name=meta["name"])

    # ---------------------------------------------------------------- ingress data path
    def _ready_pods(self, ns: str, selector: dict) -> list[dict]:
        return [
            p for p in self.items("pods", ns)
            if selector and all((p["metadata"].get("labels") or {}).get(k) == v
                                for k, v in selector.items())
            and self.pod_view(p)["status"]["conditions"][0]["status"] == "True"
        ]

    def ingress_listeners(self, node: str | None = None) -> list[dict]:
        """Where the nodes' simulated kube-proxy accepts HTTP for the ingress-nginx
        controller: the MetalLB address and port of each Service (type LoadBalancer) that
        selects ready controller pods, and its HTTP nodePort (NodePort/LoadBalancer) on every
        address. Plain HTTP only (port named "http" or port 80). Then the Gateways' (simulated
        NGF: gateway.listeners), whose hostPorts only ``node`` serves."""
        out: list[dict] = []
        ctrl = {"app.kubernetes.io/name": "ingress-nginx",
                "app.kubernetes.io/component": "controller"}
        for svc in self.items("services"):
            spec = svc.get("spec") or {}
            selector = spec.get("selector") or {}
            ns = svc["metadata"].get("namespace", "default")
            if not all(selector.get(k) == v for k, v in ctrl.items()):
                continue
            if not self._ready_pods(ns, selector):
                continue
            self.view("services", svc)  # runs the MetalLB controller
            for port in spec.get("ports") or []:
                if port.get("name") != "http" and port.get("port") != 80:
                    continue
                if spec.get("type") == "LoadBalancer" and svc["metadata"].get("_lb_ip"):
                    out.append({"ip": svc["metadata"]["_lb_ip"], "port": int(port["port"])})
                if spec.get("type") in ("NodePort", "LoadBalancer") and port.get("nodePort"):
                    out.append({"ip": "0.0.0.0", "port": int(port["nodePort"])})
        return out + gateway.listeners(self, node)

    def ingress_request(self, p: dict) -> dict:
        """Answer one HTTP request that reached the ingress-nginx controller: the Ingress
        rule (class of controller k8s.io/ingress-nginx, or no class when that class is the
        default; host exact or ``*.`` wildcard; Exact/Prefix paths, longest first) picks a
        backend Service; its ready endpoints answer. Only agnhost ``netexec`` backends are
        simulated (/echo?msg=, /hostname, /healthz); nginx's 404 without a rule, 503 without
        a ready endpoint, 502 for any other image."""
        from urllib.parse import parse_qs as _qs
        from urllib.parse import urlparse as _url

        with self.lock:
            self.require_api()
            certmanager.reconcile(self)  # HTTP-01 solver routes (simulated cert-manager)
            routed = gateway.request(self, p)  # a Gateway's data plane (simulated NGF)
            if routed is not None:
                return routed
            host = (p.get("host") or "").rsplit(":", 1)[0].lower()
            url = _url(p.get("path") or "/")
            path, query = url.path or "/", _qs(url.query)
            classes = {c["metadata"]["name"]: c for c in self.items("ingressclasses")
                       if (c.get("spec") or {}).get("controller") == "k8s.io/ingress-nginx"}
            default = any((c["metadata"].get("annotations") or {}).get(
                "ingressclass.kubernetes.io/is-default-class") == "true"
                for c in classes.values())
            best: tuple[tuple, dict, dict] | None = None
            for ing in self.items("ingresses"):
                spec = ing.get("spec") or {}
                cls = spec.get("ingressClassName") or (ing["metadata"].get("annotations")
                                                       or {}).get("kubernetes.io/ingress.class")
                if not (cls in classes if cls else default):
                    continue
                for rule in spec.get("rules") or []:
                    rhost = (rule.get("host") or "").lower()
                    if rhost.startswith("*."):
                        if not (host.endswith(rhost[1:]) and "." not in host[:-len(rhost) + 1]):
                            continue
                    elif rhost and rhost != host:
                        continue
                    for hp in (rule.get("http") or {}).get("paths") or []:
                        want = hp.get("path") or "/"
                        if hp.get("pathType") == "Exact":
                            ok = path == want
                        else:
                            parts = [x for x in want.split("/") if x]
                            ok = [x for x in path.split("/") if x][:len(parts)] == parts
                        if not ok:
                            continue
                        score = (bool(rhost), hp.get("pathType") == "Exact", len(want))
                        if best is None or score > best[0]:
                            best = (score, ing, hp)
            if best is None:
                code, body, backend = 404, "<html><head><title>404 Not Found</title></head>" \
                    "<body><center><h1>404 Not Found</h1></center><hr><center>nginx</center>" \
                    "</body></html>\n", ""
            else:
                _, ing, hp = best
                ns = ing["metadata"].get("namespace", "default")
                svc_name = ((hp.get("backend") or {}).get("service") or {}).get("name", "")
                backend = f"{ns}/{svc_name}"
                svc = self.get("services", ns, svc_name)
                pods = self._ready_pods(ns, ((svc or {}).get("spec") or {}).get("selector")
                                        or {})
                if not pods:
                    code, body = 503, "<html><head><title>503 Service Temporarily " \
                        "Unavailable</title></head><body><center><h1>503 Service Temporarily " \
                        "Unavailable</h1></center><hr><center>nginx</center></body></html>\n"
                else:
                    code, body = self._backend_answer(pods[0], path, query)
            self.log("ingress-request", p.get("node", ""), "ok" if code < 400 else "refused",
                     host=host, path=path, code=code, backend=backend)
            return {"code": code, "body": body}

    def _backend_answer(self, pod: dict, path: str, query: dict) -> tuple[int, str]:
        container: dict = {}
        for owner in pod["metadata"].get("ownerReferences") or []:
            if owner.get("kind") == "ReplicaSet":
                rs = self.get("replicasets", pod["metadata"]["namespace"], owner["name"])
                containers = (((rs or {}).get("spec") or {}).get("template") or {}).get(
                    "spec", {}).get("containers") or [{}]
                container = containers[0]
        image = container.get("image") or pod["spec"]["containers"][0]["image"]
        args = container.get("args") or []
        if certmanager.SOLVER_IMAGE in image:  # cert-manager's HTTP-01 solver (certmanager.py)
            return certmanager.solver_answer(args, path)
        if "agnhost" not in image or not args or args[0] != "netexec":
            return 502, f"[simulator] cannot serve image {image} (only agnhost netexec)\n"
        if path == "/echo":
            return 200, (query.get("msg") or [""])[0]
        if path == "/hostname":
            return 200, pod["metadata"]["name"]
        if path == "/healthz":
            return 200, ""
        return 404, "404 page not found\n"

    # ---------------------------------------------------------------- mini controllers
    def metallb_reconcile(self) -> None:
        """The simulated MetalLB controller (see metallb.py): while metallb-system/controller
        is available, give LoadBalancer Services addresses from the IPAddressPools."""
        ctrl = self.get("deployments", "metallb-system", "controller")
        if not ctrl or not self.view("deployments", ctrl)["status"]["availableReplicas"]:
            return
        result = metallb.assign(self.items("services"), self.items("ipaddresspools",
                                                                   "metallb-system"))
        for svc in self.items("services"):
            meta = svc["metadata"]
            key = f"{meta.get('namespace', 'default')}/{meta['name']}"
            ip, message = result.get(key, (None, ""))
            if ip:
                if meta.get("_lb_ip") != ip:
                    self.log("metallb-assign", "", service=key, ip=ip)
                meta["_lb_ip"], meta["_lb_error"] = ip, ""
                continue
            meta.pop("_lb_ip", None)
            if message and meta.get("_lb_error") != message:
                meta["_lb_error"] = message
                self.log("metallb-assign", "", "refused", service=key, error=message)
                self.put("events", {
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": f"{meta['name']}.{len(self.calls):x}",
                                 "namespace": meta.get("namespace", "default")},
                    "involvedObject": {"kind": "Service", "namespace": meta.get("namespace"),
                                       "name": meta["name"], "apiVersion": "v1"},
                    "type": "Warning", "reason": "AllocationFailed",
                    "message": f'Failed to allocate IP for "{key}": {message}',
                    "source": {"component": "metallb-controller"},
                })

    def schedulable(self, node: dict, tolerations: list[dict]) -> bool:
        if node["spec"].get("unschedulable"):
            return False
        if self.node_view(node)["status"]["conditions"][0]["status"] != "True":
            return False
        for taint in node["spec"].get("taints") or []:
            if taint.get("effect") not in ("NoSchedule", "NoExecute"):
                continue
            if not any(
                t.get("operator") == "Exists" and not t.get("key") or t.get("key") == taint["key"]
                for t in tolerations
            ):
                return False
        return True

    def new_pod(
        self,
        ns: str,
        name: str,
        node: str,
        owner: dict | None,
        labels: dict,
        volumes: list | None = None,
        tolerations: list | None = None,
        image: str = "registry.k8s.io/pause:3.10",
    ) -> dict:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [owner] if owner else [],
                "_scheduled": time.time(),
            },
            "spec": {
                "nodeName": node,
                "volumes": volumes or [],
                "tolerations": tolerations or [],
                "containers": [{"name": "main", "image": image}],
            },
        }
        return self.put("pods", pod)

    def reconcile(self) -> None:
        """DaemonSets: one pod per node; ReplicaSets (from Deployments): replicas pods."""
        nodes = self.items("nodes")
        for ds in self.items("daemonsets"):
            ns, name = ds["metadata"]["namespace"], ds["metadata"]["name"]
            tmpl = ds.get("spec", {}).get("template", {})
            labels = tmpl.get("metadata", {}).get("labels", {"app": name})
            image = (tmpl.get("spec", {}).get("containers") or [{}])[0].get("image", "")
            owner = {"kind": "DaemonSet", "name": name, "controller": True, "apiVersion": "apps/v1"}
            for node in nodes:
                nn = node["metadata"]["name"]
                pod = self.get("pods", ns, f"{name}-{nn}")
                if not pod or pod["spec"]["containers"][0]["image"] != image:
                    self.new_pod(
                        ns,
                        f"{name}-{nn}",
                        nn,
                        owner,
                        labels,
                        image=image or "registry.k8s.io/pause:3.10",
                        volumes=tmpl.get("spec", {}).get("volumes"),
                    )
        for rs in self.items("replicasets"):
            ns, name = rs["metadata"]["namespace"], rs["metadata"]["name"]
            tmpl = rs["spec"].get("template", {})
            labels = tmpl.get("metadata", {}).get("labels", {})
            tol = tmpl.get("spec", {}).get("tolerations") or []
            owned = [
                p
                for p in self.items("pods", ns)
                if any(
                    o.get("name") == name and o.get("kind") == "ReplicaSet"
                    for o in p["metadata"].get("ownerReferences") or []
                )
            ]
            for pod in owned:  # schedule pending pods when a node becomes available
                if not pod["spec"]["nodeName"]:
                    target = self.pick_node(tol)
                    if target:
                        pod["spec"]["nodeName"] = target
                        pod["metadata"]["_scheduled"] = time.time()
            for _ in range(rs["spec"].get("replicas", 1) - len(owned)):
                self.pod_seq += 1
                owner = {
                    "kind": "ReplicaSet",
                    "name": name,
                    "controller": True,
                    "apiVersion": "apps/v1",
                }
                self.new_pod(
                    ns,
                    f"{name}-{self.pod_seq:05d}",
                    self.pick_node(tol) or "",
                    owner,
                    labels,
                    volumes=tmpl.get("spec", {}).get("volumes"),
                    tolerations=tol,
                )

    def pick_node(self, tolerations: list[dict]) -> str | None:
        counts: dict[str, int] = {}
        for p in self.items("pods"):
            counts[p["spec"].get("nodeName", "")] = counts.get(p["spec"].get("nodeName", ""), 0) + 1
        candidates = [
            n["metadata"]["name"] for n in self.items("nodes") if self.schedulable(n, tolerations)
        ]
        return min(candidates, key=lambda n: (counts.get(n, 0), n)) if candidates else None

    def ensure_replicaset(self, deploy: dict) -> None:
        ns, name = deploy["metadata"]["namespace"], deploy["metadata"]["name"]
        spec = deploy.get("spec", {})
        h = hashlib.sha1(json.dumps(spec.get("template", {}), sort_keys=True).encode()).hexdigest()
        rs_name = f"{name}-{h[:10]}"
        for rs in self.items("replicasets", ns):
            if rs["metadata"].get("_deployment") == name and rs["metadata"]["name"] != rs_name:
                del self.objects[("replicasets", ns, rs["metadata"]["name"])]
                for p in self.items("pods", ns):
                    if any(
                        o.get("name") == rs["metadata"]["name"]
                        for o in p["metadata"].get("ownerReferences") or []
                    ):
                        del self.objects[("pods", ns, p["metadata"]["name"])]
        rs = self.get("replicasets", ns, rs_name) or {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": rs_name, "namespace": ns, "_deployment": name},
        }
        rs["spec"] = {"replicas": spec.get("replicas", 1), "template": spec.get("template", {})}
        self.put("replicasets", rs)

    # ---------------------------------------------------------------- kubeadm operations
    def _fault_error(self, op: str, node: str, phase: str = "before") -> None:
        fault = self.consume_fault(op, node, phase)
        if fault:
            raise ApiError(
                500,
                fault.get("message") or f"[simulator] injected failure of {op} on node {node}",
                "InternalError",
            )

    def kubeadm_init(self, p: dict) -> dict:
        node = p["node"]
        with self.lock:
            self._fault_error("kubeadm-init", node)
            if self.initialized:
                self.log("kubeadm-init", node, "refused")
                raise ApiError(
                    409,
                    f"[simulator] a cluster initialized by node "
                    f"{self.endpoint_node!r} already runs on this API server; "
                    f"kubeadm init on {node!r} would create a second one",
                    "Conflict",
                )
            version = Version.parse(p["version"])
            ccfg = dict(p["cluster_configuration"])
            ccfg["kubernetesVersion"] = str(version)
            self.initialized, self.endpoint_node = True, node
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                self.put(
                    "namespaces",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                )
            self._store_cluster_config(ccfg)
            self.put(
                "configmaps",
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "cluster-info", "namespace": "kube-public"},
                    "data": {"ca.crt": p.get("ca_cert", ""), "endpoint": p.get("endpoint", "")},
                },
            )
            self.put(
                "configmaps",
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "kubelet-config", "namespace": "kube-system"},
                    "data": {"kubelet": _yaml_dump(p.get("kubelet_configuration") or {})},
                },
            )
            self._addons(version, ccfg, p.get("kube_proxy_configuration") or {})
            self.node_setup[node] = {"control_plane": True, "taints": p.get("taints")}
            token = self._new_token(p.get("token"), p.get("token_ttl", "24h"), "init")
            if p.get("upload_certs"):
                self.uploaded_certs[p["upload_certs"]["key"]] = {
                    "certs": p["upload_certs"]["certs"],
                    "expires": time.time() + 7200,
                }
            self.log("kubeadm-init", node, version=str(version))
            return {"token": token, "version": str(version)}

    def _store_cluster_config(self, ccfg: dict) -> None:
        self.put(
            "configmaps",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
                "data": {"ClusterConfiguration": _yaml_dump(ccfg)},
            },
        )

    def _addons(self, version: Version, ccfg: dict, proxy: dict) -> None:
        repo = ccfg.get("imageRepository") or "registry.k8s.io"
        minor = version.minor
        if not (ccfg.get("proxy") or {}).get("disabled"):
            self.put(
                "configmaps",
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
                    "data": {"config.conf": _yaml_dump(proxy)},
                },
            )
            self.put(
                "daemonsets",
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "metadata": {
                        "name": "kube-proxy",
                        "namespace": "kube-system",
                        "labels": {"k8s-app": "kube-proxy"},
                    },
                    "spec": {
                        "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                        "template": {
                            "metadata": {"labels": {"k8s-app": "kube-proxy"}},
                            "spec": {
                                "containers": [
                                    {"name": "kube-proxy", "image": f"{repo}/kube-proxy:{version}"}
                                ],
                                "tolerations": [{"operator": "Exists"}],
                            },
                        },
                    },
                },
            )
        if not (ccfg.get("dns") or {}).get("disabled"):
            deploy = self.get("deployments", "kube-system", "coredns") or {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "coredns",
                    "namespace": "kube-system",
                    "labels": {"k8s-app": "kube-dns"},
                },
            }
            deploy["spec"] = {
                "replicas": 2,
                "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "kube-dns"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "coredns",
                                "image": f"{repo}/coredns/coredns:{rules.COREDNS[minor]}",
                            }
                        ],
                        "tolerations": [
                            {
                                "key": "node-role.kubernetes.io/control-plane",
                                "effect": "NoSchedule",
                            },
                            {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        ],
                    },
                },
            }
            self.put("deployments", deploy)
            self.ensure_replicaset(deploy)
        self.reconcile()

    def _new_token(self, token: str | None, ttl: str, description: str) -> str:
        import secrets

        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        token = token or (
            "".join(secrets.choice(alphabet) for _ in range(6))
            + "."
            + "".join(secrets.choice(alphabet) for _ in range(16))
        )
        seconds = rules.parse_duration(ttl)
        self.tokens[token.split(".")[0]] = {
            "token": token,
            "expires": time.time() + seconds if seconds else None,
            "description": description,
        }
        return token

    def token_create(self, p: dict) -> dict:
        with self.lock:
            self.require_api()
            token = self._new_token(p.get("token"), p.get("ttl", "24h"), p.get("description", ""))
            cm = self.get("configmaps", "kube-public", "cluster-info")
            self.log("kubeadm-token-create", p.get("node", ""))
            return {"token": token, "endpoint": cm["data"]["endpoint"] if cm else ""}

    def upload_certs(self, p: dict) -> dict:
        with self.lock:
            self.require_api()
            self._fault_error("kubeadm-upload-certs", p.get("node", ""))
            self.uploaded_certs[p["key"]] = {"certs": p["certs"], "expires": time.time() + 7200}
            self.log("kubeadm-upload-certs", p.get("node", ""))
            return {"key": p["key"]}

    def kubeadm_join(self, p: dict) -> dict:
        node = p["node"]
        with self.lock:
            self.require_api()
            self._fault_error("kubeadm-join", node)
            token = self.tokens.get(str(p.get("token", "")).split(".")[0])
            if (
                not token
                or token["token"] != p.get("token")
                or (token["expires"] and token["expires"] < time.time())
            ):
                self.log("kubeadm-join", node, "refused")
                tid = str(p.get("token", "")).split(".")[0]
                raise ApiError(
                    401,
                    "couldn't validate the identity of the API Server: could not "
                    "find a JWS signature in the cluster-info ConfigMap for token ID "
                    f'"{tid}"',
                    "Unauthorized",
                )
            cluster = self.cluster_version()
            try:
                rules.check_join_versions(
                    cluster,
                    Version.parse(p["kubeadm_version"]),
                    Version.parse(p["kubelet_version"]) if p.get("kubelet_version") else None,
                )
            except RuleError as exc:
                self.log("kubeadm-join", node, "refused", error=str(exc))
                raise ApiError(400, str(exc)) from exc
            existing = self.get("nodes", "", node)
            if existing and self.node_view(existing)["status"]["conditions"][0]["status"] == "True":
                raise ApiError(
                    409,
                    f'a Node with name "{node}" and status "Ready" already exists '
                    "in the cluster. You must delete the existing Node or change the "
                    "name of this new joining Node",
                    "AlreadyExists",
                )
            certs = {}
            if p.get("control_plane"):
                ccfg = self.cluster_configuration()
                if not ccfg.get("controlPlaneEndpoint"):
                    raise ApiError(
                        400,
                        "unable to add a new control plane instance to a cluster "
                        "that doesn't have a stable controlPlaneEndpoint address",
                    )
                entry = self.uploaded_certs.get(p.get("certificate_key") or "")
                if not entry or entry["expires"] < time.time():
                    raise ApiError(
                        404,
                        "error downloading certs: error downloading the secret: "
                        'Secret "kubeadm-certs" was not found in the "kube-system" '
                        "Namespace. This Secret might have expired. Please, run "
                        "`kubeadm init phase upload-certs --upload-certs` on a control "
                        "plane to generate a new one",
                        "NotFound",
                    )
                certs = entry["certs"]
            self.node_setup[node] = {
                "control_plane": bool(p.get("control_plane")),
                "taints": p.get("taints"),
            }
            kubelet_cm = self.get("configmaps", "kube-system", "kubelet-config")
            self.log("kubeadm-join", node, control_plane=bool(p.get("control_plane")))
            return {
                "version": str(cluster),
                "cluster_configuration": self.cluster_configuration(),
                "certs": certs,
                "kubelet_config": kubelet_cm["data"]["kubelet"],
            }

    def kubelet_versions(self) -> dict[str, Version]:
        return {
            n["metadata"]["name"]: Version.parse(n["status"]["nodeInfo"]["kubeletVersion"])
            for n in self.items("nodes")
        }

    def upgrade_apply(self, p: dict) -> dict:
        """`kubeadm upgrade apply` in two calls, as kubeadm orders its phases: stage
        "preflight" (version rules; a "before" fault fails here, nothing changed) while the
        client then upgrades its static pods, and stage "commit" (kubeadm-config ConfigMap,
        kube-proxy, CoreDNS; an "after" fault fails here, once everything is applied)."""
        node, stage = p["node"], p.get("stage", "all")
        with self.lock:
            self.require_api()
            if stage in ("preflight", "all"):
                self._fault_error("kubeadm-upgrade-apply", node)
            cluster, target = self.cluster_version(), Version.parse(p["target"])
            try:
                n = self.get("nodes", "", node)
                if not n or "node-role.kubernetes.io/control-plane" not in n["metadata"].get(
                    "labels", {}
                ):
                    raise RuleError(
                        f'[simulator] node "{node}" is not a control-plane node of '
                        "this cluster: run `kubeadm upgrade apply` on a control plane"
                    )
                rules.check_upgrade_apply(
                    cluster,
                    target,
                    Version.parse(p["kubeadm_version"]),
                    self.kubelet_versions(),
                    bool(p.get("force")),
                )
            except RuleError as exc:
                self.log(
                    "kubeadm-upgrade-apply", node, "refused", target=str(target), error=str(exc)
                )
                raise ApiError(400, f"[upgrade/version] FATAL: {exc}") from exc
            if p.get("dry_run") or stage == "preflight":
                return {"from": str(cluster), "to": str(target), "dry_run": bool(p.get("dry_run"))}
            ccfg = self.cluster_configuration()
            ccfg["kubernetesVersion"] = str(target)
            self._store_cluster_config(ccfg)
            skipped = self._upgrade_addons_unless_cps_left(node, target, ccfg)
            self.log("kubeadm-upgrade-apply", node, **{"from": str(cluster), "target": str(target)},
                     addons_skipped=skipped)
            self._fault_error("kubeadm-upgrade-apply", node, "after")
            return {"from": str(cluster), "to": str(target), "addons_skipped": skipped}

    def _upgrade_addons_unless_cps_left(self, node: str, version: Version, ccfg: dict) -> list:
        """CoreDNS and kube-proxy to ``version`` unless other control planes still run an
        older kube-apiserver (rules.unupgraded_control_planes); the skipped nodes."""
        images = {
            p["spec"].get("nodeName", ""): p["spec"]["containers"][0]["image"]
            for p in self.items("pods", "kube-system")
            if p["metadata"].get("labels", {}).get("component") == "kube-apiserver"
        }
        left = rules.unupgraded_control_planes(images, node)
        if left:
            self.log("kubeadm-addons", node, "skipped", nodes=left, version=str(version))
            return left
        proxy_cm = self.get("configmaps", "kube-system", "kube-proxy")
        import yaml

        self._addons(
            version, ccfg, yaml.safe_load(proxy_cm["data"]["config.conf"]) if proxy_cm else {}
        )
        self.log("kubeadm-addons", node, version=str(version))
        return []

    def upgrade_health(self, p: dict) -> dict:
        """The cluster side of kubeadm's upgrade health check (rules.health_check_errors):
        the upgrade-health-check Job completes unless every node is unschedulable (its pod
        stays Pending, kubeadm#3050) or a fault "upgrade-health-check" makes it time out;
        control-plane nodes that are NotReady are listed."""
        node = p["node"]
        with self.lock:
            self.require_api()
            nodes = [self.node_view(n) for n in self.items("nodes")]
            not_ready = sorted(
                n["metadata"]["name"] for n in nodes
                if "node-role.kubernetes.io/control-plane" in n["metadata"].get("labels", {})
                and n["status"]["conditions"][0]["status"] != "True"
            )
            schedulable = any(not n["spec"].get("unschedulable") for n in nodes)
            fault = self.consume_fault("upgrade-health-check", node)
            job = f"upgrade-health-check-{int(time.time() * 1000) % 100000:05d}"
            completes = schedulable and fault is None
            self.log("upgrade-health-check", node, "ok" if completes and not not_ready
                     else "failed", job_completes=completes, not_ready=not_ready)
            return {"job": job, "job_completes": completes, "not_ready": not_ready}

    def upgrade_node_addons(self, p: dict) -> dict:
        """The addon phase of `kubeadm upgrade node` on a control plane (after its static pods
        run the new version): the last control plane upgrades CoreDNS and kube-proxy."""
        node = p["node"]
        with self.lock:
            self.require_api()
            self._fault_error("kubeadm-upgrade-node-addons", node)
            version = self.cluster_version()
            return {"addons_skipped": self._upgrade_addons_unless_cps_left(
                node, version, self.cluster_configuration())}

    def upgrade_node(self, p: dict) -> dict:
        node = p["node"]
        with self.lock:
            self.require_api()
            self._fault_error("kubeadm-upgrade-node", node)
            cluster = self.cluster_version()
            try:
                rules.check_upgrade_node(cluster, Version.parse(p["kubeadm_version"]))
            except RuleError as exc:
                self.log("kubeadm-upgrade-node", node, "refused", error=str(exc))
                raise ApiError(400, str(exc)) from exc
            n = self.get("nodes", "", node)
            cp = bool(
                n and "node-role.kubernetes.io/control-plane" in n["metadata"].get("labels", {})
            )
            kubelet_cm = self.get("configmaps", "kube-system", "kubelet-config")
            self.log("kubeadm-upgrade-node", node, version=str(cluster), control_plane=cp)
            return {
                "version": str(cluster),
                "control_plane": cp,
                "cluster_configuration": self.cluster_configuration(),
                "kubelet_config": kubelet_cm["data"]["kubelet"],
            }

    def kubeadm_reset(self, p: dict) -> dict:
        node = p["node"]
        with self.lock:
            self.objects.pop(("nodes", "", node), None)
            for key in [
                k
                for k, o in self.objects.items()
                if k[0] == "pods" and o["spec"].get("nodeName") == node
            ]:
                del self.objects[key]
            self.heartbeats.pop(node, None)
            if node == self.endpoint_node:
                cps = [
                    n
                    for n in self.items("nodes")
                    if "node-role.kubernetes.io/control-plane" in n["metadata"].get("labels", {})
                ]
                if cps:
                    self.endpoint_node = cps[0]["metadata"]["name"]
                else:
                    self.initialized = False
                    self.objects.clear()
            self.log("kubeadm-reset", node)
            return {}

    def heartbeat(self, p: dict) -> dict:
        """The simulated kubelet registers its node and posts status and static pods."""
        name = p["node"]
        with self.lock:
            self.require_api()
            kubelet = Version.parse(p["kubelet_version"])
            try:
                rules.check_kubelet_skew(kubelet, self.api_version(), name)
            except RuleError as exc:
                self.log("kubelet-register", name, "refused", error=str(exc))
                raise ApiError(403, str(exc), "Forbidden") from exc
            node = self.get("nodes", "", name)
            if node is None:
                node = {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": p.get("arch", "amd64"),
                            "beta.kubernetes.io/os": "linux",
                            "beta.kubernetes.io/arch": p.get("arch", "amd64"),
                        },
                        "annotations": {
                            "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock"
                        },
                    },
                    "spec": {"taints": list(p.get("register_taints") or [])},
                    "status": {},
                }
                setup = self.node_setup.pop(name, None)
                if setup and setup["control_plane"]:
                    node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] = ""
                    node["metadata"]["labels"][
                        "node.kubernetes.io/exclude-from-external-load-balancers"
                    ] = ""
                    taints = setup["taints"]
                    node["spec"]["taints"] = (
                        taints
                        if taints is not None
                        else [
                            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
                        ]
                    )
                elif setup and setup.get("taints"):
                    node["spec"]["taints"] = setup["taints"]
                self.log("kubelet-register", name, version=str(kubelet))
            node["status"]["nodeInfo"] = {
                "kubeletVersion": str(kubelet),
                "kubeProxyVersion": str(kubelet),
                "containerRuntimeVersion": "containerd://1.7.22",
                "osImage": p.get("os_image", "Debian GNU/Linux 12 (bookworm)"),
                "kernelVersion": p.get("kernel", ""),
                "architecture": p.get("arch", "amd64"),
                "operatingSystem": "linux",
            }
            node["status"]["addresses"] = [
                {"type": "InternalIP", "address": a} for a in p.get("addresses", [])
            ] + [{"type": "Hostname", "address": name}]
            self.put("nodes", node)
            self.heartbeats[name] = time.time()
            self.node_cni[name] = bool(p.get("cni_configured"))
            self._mirror_pods(name, p.get("static_pods") or {})
            self.reconcile()
            return {"node": name, "listeners": self.ingress_listeners(name)}

    def _mirror_pods(self, node: str, static: dict[str, str]) -> None:
        for pod in self.items("pods", "kube-system"):
            ann = pod["metadata"].get("annotations") or {}
            if (
                "kubernetes.io/config.mirror" in ann
                and pod["spec"]["nodeName"] == node
                and pod["metadata"]["labels"].get("component") not in static
            ):
                del self.objects[("pods", "kube-system", pod["metadata"]["name"])]
                self.log("static-pod-stop", node, component=pod["metadata"]["labels"].get(
                    "component"))
        for component, image in static.items():
            name = f"{component}-{node}"
            pod = self.get("pods", "kube-system", name)
            if pod and pod["spec"]["containers"][0]["image"] == image:
                continue
            self.log("static-pod-start", node, component=component, image=image)
            self.put(
                "pods",
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": name,
                        "namespace": "kube-system",
                        "labels": {"component": component, "tier": "control-plane"},
                        "annotations": {"kubernetes.io/config.mirror": image},
                        "ownerReferences": [{"kind": "Node", "name": node, "controller": True}],
                        "_scheduled": time.time(),
                    },
                    "spec": {"nodeName": node, "containers": [{"name": component, "image": image}]},
                },
            )

    # ---------------------------------------------------------------- REST
    def check_kind_known(self, group: str, version: str, resource: str) -> None:
        if group in BUILTIN_GROUPS:
            return
        for crd in self.items("customresourcedefinitions"):
            spec = crd.get("spec", {})
            if (
                spec.get("group") == group
                and spec.get("names", {}).get("plural") == resource
                and any(
                    v.get("name") == version and v.get("served", True)
                    for v in spec.get("versions") or []
                )
            ):
                return
        raise ApiError(
            404,
            f"the server could not find the requested resource "
            f"(no matches for {group}/{version}, Resource={resource}; ensure CRDs are "
            "installed first)",
            "NotFound",
        )

    def rest(
        self,
        method: str,
        group: str,
        version: str,
        ns: str | None,
        resource: str,
        name: str | None,
        sub: str | None,
        query: dict,
        body: dict | None,
    ) -> Any:
        with self.lock:
            self.require_api()
            self.reap_finished_jobs()
            self.check_kind_known(group, version, resource)
            if resource in certmanager.RESOURCES:  # simulated cert-manager controllers
                certmanager.reconcile(self)
            scope_ns = "" if resource in CLUSTER_SCOPED else ns
            if sub == "eviction" and resource == "pods" and method == "POST":
                dry = "All" in (query.get("dryRun") or []) or (
                    (body or {}).get("deleteOptions") or {}
                ).get("dryRun") == ["All"]
                return self.evict(ns or "default", name or "", dry_run=dry)
            if name is None and method == "GET":
                return self.list(resource, scope_ns, group, version, query)
            if name is None and method == "POST":
                body = body or {}
                name = body.get("metadata", {}).get("name")
                if not name:
                    raise ApiError(422, "metadata.name: Required value", "Invalid")
                if self.get(resource, scope_ns or "", name):
                    raise ApiError(409, f'{resource} "{name}" already exists', "AlreadyExists")
                method = "PUT"
            key = (resource, scope_ns or "", name)
            current = self.objects.get(key)
            if method == "GET":
                if not current:
                    raise ApiError(404, f'{resource} "{name}" not found', "NotFound")
                return self.view(resource, current)
            if method == "DELETE":
                if not current:
                    raise ApiError(404, f'{resource} "{name}" not found', "NotFound")
                del self.objects[key]
                self._after_delete(resource, current)
                return _status(200, "deleted", "Deleted") | {"status": "Success"}
            if method == "PATCH":
                if not current:
                    raise ApiError(404, f'{resource} "{name}" not found', "NotFound")
                if resource == "nodes":
                    self._node_patch_faults(current, body or {})
                merged = _merge_patch(copy.deepcopy(current), body or {})
                self._check_immutable(resource, current, merged)
                self._check_schema(merged)
                return self.view(resource, self._store(resource, merged, scope_ns))
            if method == "PUT":
                if not current and scope_ns and not self.get("namespaces", "", scope_ns):
                    raise ApiError(404, f'namespaces "{scope_ns}" not found', "NotFound")
                body = copy.deepcopy(body or {})
                body.setdefault("metadata", {})["name"] = name
                if scope_ns:
                    body["metadata"]["namespace"] = scope_ns
                if current:
                    for k, v in current["metadata"].items():
                        if k.startswith("_"):
                            body["metadata"].setdefault(k, v)
                    if resource == "nodes":
                        self._node_patch_faults(current, body)
                        body.setdefault("status", current.get("status", {}))
                    self._check_immutable(resource, current, body)
                self._check_schema(body)
                return self.view(resource, self._store(resource, body, scope_ns))
            raise ApiError(405, f"method {method} not allowed", "MethodNotAllowed")

    def _check_immutable(self, resource: str, current: dict, new: dict) -> None:
        """The API server's update validation of a batch/v1 Job (rules.job_update_causes)."""
        if resource != "jobs":
            return
        causes = rules.job_update_causes(current, new)
        if causes:
            name = current["metadata"]["name"]
            raise ApiError(
                422,
                f'Job.batch "{name}" is invalid: '
                + ", ".join(f"{c['field']}: {c['message']}" for c in causes),
                "Invalid",
                {"name": name, "group": "batch", "kind": "Job", "causes": causes},
            )

    def _check_schema(self, obj: dict) -> None:
        """The API server's schema validation of the Gateway API and cert-manager kinds
        (certmanager.schema_problems): 422 Invalid, like a real kubectl apply error."""
        problems = certmanager.schema_problems(obj)
        if problems:
            kind, group = obj.get("kind", ""), str(obj.get("apiVersion", "")).split("/")[0]
            name = (obj.get("metadata") or {}).get("name", "")
            raise ApiError(422, f'{kind}.{group} "{name}" is invalid: ' + "; ".join(problems),
                           "Invalid")

    def _node_patch_faults(self, current: dict, patch: dict) -> None:
        spec = patch.get("spec") or {}
        if "unschedulable" not in spec:
            return
        new = bool(spec["unschedulable"])
        if new == bool(current["spec"].get("unschedulable")):
            return
        op = "cordon" if new else "uncordon"
        self._fault_error(op, current["metadata"]["name"])
        self.log(op, current["metadata"]["name"])

    def _store(self, resource: str, obj: dict, ns: str | None) -> dict:
        if ns:
            obj["metadata"]["namespace"] = ns
        self._admission(resource, obj)
        stored = self.put(resource, obj)
        if resource == "deployments":
            self.ensure_replicaset(stored)
        if resource in ("deployments", "daemonsets", "replicasets", "nodes"):
            self.reconcile()
        return stored

    def _admission(self, resource: str, obj: dict) -> None:
        """Validating webhooks answer only once their backing Deployment is available."""
        group = obj.get("apiVersion", "v1").rpartition("/")[0]
        for cfg in self.items("validatingwebhookconfigurations") + self.items(
            "mutatingwebhookconfigurations"
        ):
            for hook in cfg.get("webhooks") or []:
                if not any(
                    (group in (r.get("apiGroups") or []) or "*" in (r.get("apiGroups") or []))
                    and (
                        resource in (r.get("resources") or [])
                        or "*" in (r.get("resources") or [])
                        or "*/*" in (r.get("resources") or [])
                    )
                    for r in hook.get("rules") or []
                ):
                    continue
                svc = (hook.get("clientConfig") or {}).get("service") or {}
                if not self._service_available(svc.get("namespace", ""), svc.get("name", "")):
                    raise ApiError(
                        500,
                        f"Internal error occurred: failed calling webhook "
                        f'"{hook.get("name")}": failed to call webhook: Post '
                        f'"https://{svc.get("name")}.{svc.get("namespace")}.svc:443/": '
                        "dial tcp: connect: connection refused",
                        "InternalError",
                    )

    def _service_available(self, ns: str, name: str) -> bool:
        svc = self.get("services", ns, name)
        if not svc:
            return False
        selector = (svc.get("spec") or {}).get("selector") or {}
        for d in self.items("deployments", ns):
            labels = d.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                return self.view("deployments", d)["status"]["availableReplicas"] > 0
        return False

    def _after_delete(self, resource: str, obj: dict) -> None:
        ns, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
        owner_kind = {"daemonsets": "DaemonSet", "replicasets": "ReplicaSet"}.get(resource)
        if resource == "deployments":
            for rs in self.items("replicasets", ns):
                if rs["metadata"].get("_deployment") == name:
                    del self.objects[("replicasets", ns, rs["metadata"]["name"])]
                    self._after_delete("replicasets", rs)
        if owner_kind:
            for p in self.items("pods", ns):
                if any(
                    o.get("kind") == owner_kind and o.get("name") == name
                    for o in p["metadata"].get("ownerReferences") or []
                ):
                    del self.objects[("pods", ns, p["metadata"]["name"])]
        if resource == "pods":
            self.reconcile()

    def list(self, resource: str, ns: str | None, group: str, version: str, query: dict) -> dict:
        items = [self.view(resource, o) for o in self.items(resource, ns or None)]
        for sel in (query.get("labelSelector") or [""])[0].split(","):
            if sel:
                k, _, v = sel.partition("=")
                items = [
                    i
                    for i in items
                    if (
                        k in i["metadata"].get("labels", {})
                        if not _
                        else i["metadata"].get("labels", {}).get(k) == v.lstrip("=")
                    )
                ]
        for sel in (query.get("fieldSelector") or [""])[0].split(","):
            if sel:
                k, _, v = sel.partition("=")
                items = [i for i in items if _field(i, k) == v.lstrip("=")]
        api = f"{group}/{version}" if group else version
        return {
            "apiVersion": api,
            "kind": "List",
            "metadata": {"resourceVersion": ""},
            "items": items,
        }

    def evict(self, ns: str, name: str, dry_run: bool = False) -> dict:
        """POST .../pods/NAME/eviction; ``dry_run`` (?dryRun=All or deleteOptions.dryRun)
        answers as the real eviction would and deletes nothing (eviction.go
        propagateDryRun: the dry run passes the PDB check and skips the delete)."""
        pod = self.get("pods", ns, name)
        if not pod:
            raise ApiError(404, f'pods "{name}" not found', "NotFound")
        node = pod["spec"].get("nodeName", "")
        self._fault_error("eviction", node)
        pods = [self.pod_view(p) for p in self.items("pods")]
        try:
            rules.check_eviction(self.pod_view(pod), self.items("poddisruptionbudgets"), pods)
        except rules.EvictionError as exc:
            self.log("eviction", node, "refused", pod=f"{ns}/{name}", code=exc.code)
            raise ApiError(exc.code, str(exc), exc.reason) from exc
        if dry_run:
            self.log("eviction", node, "dry-run", pod=f"{ns}/{name}")
            return _status(201, "evicted (dry run)", "") | {"status": "Success"}
        del self.objects[("pods", ns, name)]
        self.log("eviction", node, pod=f"{ns}/{name}")
        self.reconcile()
        return _status(201, "evicted", "") | {"status": "Success"}

    # ---------------------------------------------------------------- admin
    def seed(self, p: dict) -> dict:
        """Seed workloads for tests: pods with owners, deployments and PDBs."""
        with self.lock:
            for d in p.get("deployments") or []:
                labels = d.get("labels") or {"app": d["name"]}
                deploy = {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": d["name"], "namespace": d.get("namespace", "default")},
                    "spec": {
                        "replicas": d.get("replicas", 1),
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "tolerations": d.get("tolerations", []),
                                "volumes": [{"name": "scratch", "emptyDir": {}}]
                                if d.get("emptyDir")
                                else [],
                            },
                        },
                    },
                }
                self._store("deployments", deploy, deploy["metadata"]["namespace"])
            for spec in p.get("pods") or []:
                ns = spec.get("namespace", "default")
                owner_kind, owner = spec.get("owner"), None
                labels = spec.get("labels") or {"app": spec["name"]}
                if owner_kind in ("ReplicaSet", "DaemonSet"):
                    owner_name = spec.get("owner_name") or f"{spec['name']}-owner"
                    owner = {
                        "kind": owner_kind,
                        "name": owner_name,
                        "controller": True,
                        "apiVersion": "apps/v1",
                    }
                    if owner_kind == "ReplicaSet":
                        rs = self.get("replicasets", ns, owner_name) or {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "metadata": {"name": owner_name, "namespace": ns},
                            "spec": {
                                "replicas": 0,
                                "template": {"metadata": {"labels": labels}, "spec": {}},
                            },
                        }
                        rs["spec"]["replicas"] += 1
                        if spec.get("emptyDir"):
                            rs["spec"]["template"]["spec"]["volumes"] = [
                                {"name": "scratch", "emptyDir": {}}
                            ]
                        self.put("replicasets", rs)
                vols = [{"name": "scratch", "emptyDir": {}}] if spec.get("emptyDir") else []
                self.new_pod(ns, spec["name"], spec.get("node", ""), owner, labels, vols)
                self.objects[("pods", ns, spec["name"])]["metadata"]["_scheduled"] = 0
                if spec.get("crashloop"):
                    self.objects[("pods", ns, spec["name"])]["metadata"]["_crashloop"] = True
            for spec in p.get("pdbs") or []:
                pdb_spec: dict = {"selector": {"matchLabels": spec["selector"]}}
                for k in ("minAvailable", "maxUnavailable", "unhealthyPodEvictionPolicy"):
                    if k in spec:
                        pdb_spec[k] = spec[k]
                self.put(
                    "poddisruptionbudgets",
                    {
                        "apiVersion": "policy/v1",
                        "kind": "PodDisruptionBudget",
                        "metadata": {
                            "name": spec["name"],
                            "namespace": spec.get("namespace", "default"),
                        },
                        "spec": pdb_spec,
                    },
                )
            self.reconcile()
            return self.state()

    def add_fault(self, p: dict) -> dict:
        with self.lock:
            fault = {
                "op": p["op"],
                "node": p.get("node", "*"),
                "remaining": int(p.get("count", 1)),
                "phase": p.get("phase", "before"),
                "message": p.get("message", ""),
                "match": p.get("match") or {},
            }
            self.faults.append(fault)
            return fault

    def state(self) -> dict:
        with self.lock:
            nodes = {}
            for n in self.items("nodes"):
                v = self.node_view(n)
                nodes[n["metadata"]["name"]] = {
                    "ready": v["status"]["conditions"][0]["status"] == "True",
                    "kubeletVersion": v["status"]["nodeInfo"]["kubeletVersion"],
                    "unschedulable": bool(v["spec"].get("unschedulable")),
                    "labels": v["metadata"].get("labels", {}),
                    "taints": v["spec"].get("taints") or [],
                }
            components: dict[str, dict[str, str]] = {}
            for pod in self.items("pods", "kube-system"):
                comp = pod["metadata"].get("labels", {}).get("component")
                if comp:
                    components.setdefault(comp, {})[pod["spec"]["nodeName"]] = pod["spec"][
                        "containers"
                    ][0]["image"].rsplit(":", 1)[1]
            ds = self.get("daemonsets", "kube-system", "kube-proxy")
            if ds:
                components["kube-proxy"] = {
                    "*": ds["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]
                }
            return {
                "initialized": self.initialized,
                "clusterVersion": str(self.cluster_version()) if self.initialized else None,
                "apiserverVersion": str(self.api_version()) if self.initialized else None,
                "nodes": nodes,
                "components": components,
                "pods": [
                    {
                        "namespace": p["metadata"]["namespace"],
                        "name": p["metadata"]["name"],
                        "node": p["spec"].get("nodeName", ""),
                        "owner": ((p["metadata"].get("ownerReferences") or [{}])[0]).get("kind"),
                        "ready": rules.pod_ready(self.pod_view(p)),
                    }
                    for p in self.items("pods")
                ],
                "tokens": len(self.tokens),
                "faults": [f for f in self.faults if f["remaining"] > 0],
                "settings": self.settings,
            }


def _field(obj: dict, path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what kubectl's --type=merge and cordon send)."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = _merge_patch(target.get(k), v)
    return target


# -------------------------------------------------------------------- HTTP
class Handler(BaseHTTPRequestHandler):
    cluster: Cluster
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict | None:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"null") if n else None

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        try:
            body = self._body()
            self._send(200, self._route(method, parts, parse_qs(url.query), body))
        except ApiError as exc:
            status = _status(exc.code, exc.message, exc.reason)
            self._send(exc.code, status | ({"details": exc.details} if exc.details else {}))
        except (KeyError, ValueError, TypeError, RuleError) as exc:
            self._send(400, _status(400, f"bad request: {exc!r}", "BadRequest"))

    def _route(self, method: str, parts: list[str], query: dict, body: Any) -> Any:
        c = self.cluster
        if parts and parts[0] == "sim":
            return self._sim(method, parts[1:], body)
        c.require_apiserver_pod()
        if parts in (["healthz"], ["livez"], ["readyz"]):
            c.require_api()
            return "ok"
        if parts == ["version"]:
            with c.lock:
                c.require_api()
                v = c.api_version()
            return {
                "major": "1",
                "minor": str(v.minor),
                "gitVersion": str(v),
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.23.0",
                "compiler": "gc",
                "platform": "linux/amd64",
                "emulationMajor": "1",
                "emulationMinor": str(v.minor),
            }
        if parts and parts[0] == "api":
            group, rest = "", parts[1:]
        elif parts and parts[0] == "apis":
            group, rest = parts[1] if len(parts) > 1 else "", parts[2:]
        else:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        if not rest:
            raise ApiError(404, "discovery is not simulated", "NotFound")
        version, rest = rest[0], rest[1:]
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        resource, name, sub = (
            rest[0],
            (rest[1] if len(rest) > 1 else None),
            (rest[2] if len(rest) > 2 else None),
        )
        return c.rest(method, group, version, ns, resource, name, sub, query, body)

    def _sim(self, method: str, parts: list[str], body: Any) -> Any:
        c, p = self.cluster, body or {}
        route = "/".join(parts)
        post = {
            "kubeadm/init": c.kubeadm_init,
            "kubeadm/join": c.kubeadm_join,
            "kubeadm/upgrade-apply": c.upgrade_apply,
            "kubeadm/upgrade-node": c.upgrade_node,
            "kubeadm/upgrade-node-addons": c.upgrade_node_addons,
            "kubeadm/upgrade-health": c.upgrade_health,
            "kubeadm/token-create": c.token_create,
            "kubeadm/upload-certs": c.upload_certs,
            "kubeadm/reset": c.kubeadm_reset,
            "kubelet/heartbeat": c.heartbeat,
            "ingress/request": c.ingress_request,
            "admin/seed": c.seed,
            "admin/faults": c.add_fault,
        }
        if method == "POST" and route in post:
            return post[route](p)
        if method == "POST" and route == "fault/consume":
            fault = c.consume_fault(
                p["op"], p.get("node", ""), p.get("phase", "before"), p.get("details")
            )
            if fault is None:
                with c.lock:
                    c.log(p["op"], p.get("node", ""), **p.get("details", {}))
            return {
                "fail": bool(fault),
                "message": (fault or {}).get("message")
                or f"[simulator] injected failure of {p['op']} on node {p.get('node', '')}",
            }
        if method == "GET" and route == "settings":
            return c.settings
        if method == "GET" and route == "admin/state":
            return c.state()
        if method == "GET" and route == "admin/calls":
            with c.lock:
                return list(c.calls)
        if method == "POST" and route == "admin/settings":
            with c.lock:
                c.settings.update(p)
                return c.settings
        if method == "DELETE" and route == "admin/faults":
            with c.lock:
                c.faults.clear()
                return {}
        if method == "POST" and route == "admin/reset":
            c.reset()
            return {}
        raise ApiError(404, f"no simulator route {method} /sim/{route}", "NotFound")


class SimServer:
    """A simulated API server on (host, port); port 0 picks a free one.

    `listen(host)` adds a listener on another address (e.g. a lab network's gateway) that
    serves the same cluster state.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.cluster = Cluster()
        self._handler = type("BoundHandler", (Handler,), {"cluster": self.cluster})
        self.listeners: list[ThreadingHTTPServer] = []
        self.httpd = self._bind(host, port)

    def _bind(self, host: str, port: int) -> ThreadingHTTPServer:
        httpd = ThreadingHTTPServer((host, port), self._handler)
        httpd.daemon_threads = True
        self.listeners.append(httpd)
        return httpd

    @property
    def url(self) -> str:
        return url_of(self.httpd)

    def start(self) -> SimServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def listen(self, host: str, port: int = 0) -> str:
        httpd = self._bind(host, port)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return url_of(httpd)

    def stop(self) -> None:
        for httpd in self.listeners:
            httpd.shutdown()
            httpd.server_close()


def url_of(httpd: ThreadingHTTPServer) -> str:
    host, port = httpd.server_address[:2]
    return f"http://{host}:{port}"


def main() -> None:  # pragma: no cover - manual use
    ap = argparse.ArgumentParser(description="simulated Kubernetes API server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6443)
    args = ap.parse_args()
    server = SimServer(args.host, args.port)
    print(server.url, flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    main()
