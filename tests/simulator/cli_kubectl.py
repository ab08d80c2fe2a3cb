"""Simulated `kubectl`: the commands provisioning uses, with real-looking output and exit codes.

get (-o json|yaml|wide|name|jsonpath=...), version, cordon, uncordon, drain (client-side like
the real one: cordon, filters, evictions retried on 429 until --timeout), wait, label, taint,
apply/create/delete -f, rollout status, cluster-info, get --raw.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

import yaml

from . import jsonpath, rules
from .client import Api, ApiFailure, err, kubeconfig_server, node_name
from .rules import RuleError, Version

# kind/alias -> (group, version, plural, namespaced, Kind)
BUILTIN: dict[str, tuple[str, str, str, bool, str]] = {}
for _kind, _g, _v, _plural, _ns, _aliases in [
    ("Node", "", "v1", "nodes", False, "no node"),
    ("Pod", "", "v1", "pods", True, "po pod"),
    ("Namespace", "", "v1", "namespaces", False, "ns namespace"),
    ("ConfigMap", "", "v1", "configmaps", True, "cm configmap"),
    ("Secret", "", "v1", "secrets", True, "secret"),
    ("Service", "", "v1", "services", True, "svc service"),
    ("ServiceAccount", "", "v1", "serviceaccounts", True, "sa serviceaccount"),
    ("Endpoints", "", "v1", "endpoints", True, "ep"),
    ("DaemonSet", "apps", "v1", "daemonsets", True, "ds daemonset"),
    ("Deployment", "apps", "v1", "deployments", True, "deploy deployment"),
    ("ReplicaSet", "apps", "v1", "replicasets", True, "rs replicaset"),
    ("StatefulSet", "apps", "v1", "statefulsets", True, "sts statefulset"),
    ("Job", "batch", "v1", "jobs", True, "job"),
    ("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", True, "pdb"),
    ("Ingress", "networking.k8s.io", "v1", "ingresses", True, "ing ingress"),
    ("IngressClass", "networking.k8s.io", "v1", "ingressclasses", False, "ingressclass"),
    ("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", True, "netpol"),
    ("Role", "rbac.authorization.k8s.io", "v1", "roles", True, "role"),
    ("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings", True, "rolebinding"),
    ("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", False, "clusterrole"),
    (
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        False,
        "clusterrolebinding",
    ),
    (
        "CustomResourceDefinition",
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        False,
        "crd crds customresourcedefinition",
    ),
    (
        "ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        False,
        "validatingwebhookconfiguration",
    ),
    (
        "MutatingWebhookConfiguration",
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        False,
        "mutatingwebhookconfiguration",
    ),
    (
        "ValidatingAdmissionPolicy",
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        False,
        "validatingadmissionpolicy",
    ),
    (
        "ValidatingAdmissionPolicyBinding",
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        False,
        "validatingadmissionpolicybinding",
    ),
    ("StorageClass", "storage.k8s.io", "v1", "storageclasses", False, "sc storageclass"),
    ("PriorityClass", "scheduling.k8s.io", "v1", "priorityclasses", False, "pc priorityclass"),
]:
    for _alias in [_kind.lower(), _plural, *_aliases.split()]:
        BUILTIN[_alias] = (_g, _v, _plural, _ns, _kind)


class Fail(Exception):
    pass


def out(text: str = "") -> None:
    print(text, flush=True)


def age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    secs = int(
        time.time() - datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    )
    if secs < 120:
        return f"{max(secs, 0)}s"
    if secs < 7200:
        return f"{secs // 60}m"
    return f"{secs // 3600}h" if secs < 172800 else f"{secs // 86400}d"


class Ctx:
    def __init__(self, args: argparse.Namespace, version: Version) -> None:
        self.args, self.version = args, version
        path = (
            args.kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        )
        if not os.path.exists(path):
            raise Fail(
                'error: the server doesn\'t have a resource type "": no configuration '
                f"has been provided, try setting KUBERNETES_MASTER environment variable "
                f"(kubeconfig {path} not found)"
            )
        try:
            self.api = Api(
                kubeconfig_server(path),
                timeout=float(rules.parse_duration(args.request_timeout) or 30),
            )
        except ApiFailure as exc:
            raise Fail(f"error: {exc.message}") from None
        self.ns = args.namespace or "default"

    def resolve(self, kind: str) -> tuple[str, str, str, bool, str]:
        key = kind.lower()
        if "." in key and key.split(".", 1)[0] in BUILTIN:
            key = key.split(".", 1)[0]
        if key in BUILTIN:
            return BUILTIN[key]
        crds = self.api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
        for crd in crds:
            names, spec = crd["spec"]["names"], crd["spec"]
            candidates = {
                names.get("plural"),
                names.get("singular"),
                names.get("kind", "").lower(),
                *(names.get("shortNames") or []),
            }
            candidates |= {f"{c}.{spec['group']}" for c in list(candidates) if c}
            if key in candidates:
                served = [v["name"] for v in spec.get("versions") or [] if v.get("served", True)]
                return (
                    spec["group"],
                    served[0],
                    names["plural"],
                    spec.get("scope", "Namespaced") == "Namespaced",
                    names["kind"],
                )
        raise Fail(f'error: the server doesn\'t have a resource type "{kind}"')

    def url(
        self, res: tuple, name: str | None = None, ns: str | None = None, all_ns: bool = False
    ) -> str:
        group, version, plural, namespaced, _ = res
        base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
        if namespaced and not all_ns:
            base += f"/namespaces/{ns or self.ns}"
        base += f"/{plural}"
        return base + (f"/{name}" if name else "")


def short_group(res: tuple) -> str:
    group, _, plural, _, kind = res
    return f"{kind.lower()}.{group}" if group else kind.lower()


# ----------------------------------------------------------------------------- output
def print_objects(ctx: Ctx, res: tuple, objs: list[dict], single: bool) -> None:
    fmt = ctx.args.output or ""
    if fmt in ("json", "yaml"):
        data: Any = (
            objs[0]
            if single
            else {
                "apiVersion": "v1",
                "items": objs,
                "kind": "List",
                "metadata": {"resourceVersion": ""},
            }
        )
        out(
            json.dumps(data, indent=4)
            if fmt == "json"
            else yaml.safe_dump(data, sort_keys=False).rstrip()
        )
        return
    if fmt.startswith("jsonpath"):
        template = fmt.split("=", 1)[1] if "=" in fmt else ""
        data = objs[0] if single else {"apiVersion": "v1", "items": objs, "kind": "List"}
        sys.stdout.write(jsonpath.render(template, data))
        sys.stdout.flush()
        return
    if fmt == "name":
        for o in objs:
            out(f"{short_group(res)}/{o['metadata']['name']}")
        return
    if not objs:
        where = "" if not res[3] or ctx.args.all_namespaces else f" in {ctx.ns} namespace"
        err(f"No resources found{where}.")
        return
    rows = [table_row(res, o, fmt == "wide") for o in objs]
    header = table_header(res, fmt == "wide")
    if ctx.args.all_namespaces and res[3]:
        header = ["NAMESPACE", *header]
        rows = [[o["metadata"].get("namespace", ""), *r] for o, r in zip(objs, rows, strict=True)]
    if ctx.args.show_labels:
        header.append("LABELS")
        for o, r in zip(objs, rows, strict=True):
            r.append(
                ",".join(f"{k}={v}" for k, v in (o["metadata"].get("labels") or {}).items())
                or "<none>"
            )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        out("   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def table_header(res: tuple, wide: bool) -> list[str]:
    plural = res[2]
    if plural == "nodes":
        h = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        return (
            h + ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
            if wide
            else h
        )
    if plural == "pods":
        h = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        return h + ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"] if wide else h
    if plural == "poddisruptionbudgets":
        return ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"]
    if plural == "deployments":
        return ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    return ["NAME", "AGE"]


def table_row(res: tuple, o: dict, wide: bool) -> list[str]:
    meta, plural = o["metadata"], res[2]
    if plural == "nodes":
        ready = o["status"]["conditions"][0]["status"] == "True"
        status = "Ready" if ready else "NotReady"
        if o["spec"].get("unschedulable"):
            status += ",SchedulingDisabled"
        roles = (
            ",".join(
                sorted(
                    k.split("/", 1)[1]
                    for k in meta.get("labels", {})
                    if k.startswith("node-role.kubernetes.io/")
                )
            )
            or "<none>"
        )
        info = o["status"]["nodeInfo"]
        row = [
            meta["name"],
            status,
            roles,
            age(meta.get("creationTimestamp")),
            info["kubeletVersion"],
        ]
        if wide:
            ips = [
                a["address"] for a in o["status"].get("addresses", []) if a["type"] == "InternalIP"
            ]
            row += [
                ips[0] if ips else "<none>",
                "<none>",
                info["osImage"],
                info["kernelVersion"],
                info["containerRuntimeVersion"],
            ]
        return row
    if plural == "pods":
        ready = rules.pod_ready(o)
        row = [
            meta["name"],
            "1/1" if ready else "0/1",
            o["status"]["phase"],
            "0",
            age(meta.get("creationTimestamp")),
        ]
        if wide:
            row += ["10.244.0.1", o["spec"].get("nodeName") or "<none>", "<none>", "<none>"]
        return row
    if plural == "poddisruptionbudgets":
        s = o["spec"]
        return [
            meta["name"],
            str(s.get("minAvailable", "N/A")),
            str(s.get("maxUnavailable", "N/A")),
            str(o.get("status", {}).get("disruptionsAllowed", 0)),
            age(meta.get("creationTimestamp")),
        ]
    if plural == "deployments":
        st = o.get("status", {})
        n = st.get("replicas", 0)
        return [
            meta["name"],
            f"{st.get('readyReplicas', 0)}/{n}",
            str(st.get("updatedReplicas", 0)),
            str(st.get("availableReplicas", 0)),
            age(meta.get("creationTimestamp")),
        ]
    return [meta["name"], age(meta.get("creationTimestamp"))]


# ----------------------------------------------------------------------------- commands
def parse_targets(ctx: Ctx, targets: list[str]) -> list[tuple[tuple, str | None]]:
    """['node/a', 'node/b'] or ['nodes', 'a', 'b'] or ['nodes'] -> [(res, name|None)]."""
    if not targets:
        raise Fail("error: you must specify the type of resource to get")
    if "/" in targets[0]:
        return [(ctx.resolve(t.split("/", 1)[0]), t.split("/", 1)[1]) for t in targets]
    kinds = targets[0].split(",")
    if len(kinds) > 1:
        return [(ctx.resolve(k), None) for k in kinds]
    res = ctx.resolve(kinds[0])
    return [(res, n) for n in targets[1:]] or [(res, None)]


def query(ctx: Ctx) -> str:
    q = []
    if ctx.args.selector:
        q.append(f"labelSelector={ctx.args.selector}")
    if ctx.args.field_selector:
        q.append(f"fieldSelector={ctx.args.field_selector}")
    return ("?" + "&".join(q)) if q else ""


def not_found(res: tuple, name: str) -> str:
    """kubectl get's message for a named object the server does not have:
    ``Error from server (NotFound): <plural>[.<group>] "<name>" not found``."""
    group = f".{res[0]}" if res[0] else ""
    return f'Error from server (NotFound): {res[2]}{group} "{name}" not found'


def cmd_get(ctx: Ctx) -> None:
    a = ctx.args
    if a.raw:
        data = ctx.api.get(a.raw)
        out(data if isinstance(data, str) else json.dumps(data))
        return
    if a.filename:
        cmd_get_files(ctx)
        return
    targets = parse_targets(ctx, a.targets)
    missing = []
    by_res: dict[str, tuple[tuple, list[dict], bool]] = {}
    for res, name in targets:
        entry = by_res.setdefault(res[2], (res, [], name is not None))
        try:
            if name:
                entry[1].append(ctx.api.get(ctx.url(res, name)))
            else:
                entry[1].extend(
                    ctx.api.get(ctx.url(res, all_ns=a.all_namespaces) + query(ctx))["items"]
                )
        except ApiFailure as exc:
            if exc.code == 404 and name:
                if not a.ignore_not_found:
                    missing.append(not_found(res, name))
                continue
            raise
    fmt = a.output or ""
    if len(by_res) > 1 and (fmt in ("json", "yaml") or fmt.startswith("jsonpath")):
        # like kubectl: objects of several types in one List
        everything = [o for _, objs, _ in by_res.values() for o in objs]
        print_objects(ctx, next(iter(by_res.values()))[0], everything, False)
    else:
        for res, objs, named in by_res.values():
            if objs or not named:
                print_objects(ctx, res, objs, named and len(objs) == 1 and len(targets) == 1)
    if missing:
        raise Fail("\n".join(missing))


def cmd_get_files(ctx: Ctx) -> None:
    """`kubectl get -f FILE|- [--ignore-not-found] -o json`: get every object the file names
    (its apiVersion, kind, metadata.name and metadata.namespace, else the context's namespace).

    As real kubectl (kubernetes/kubernetes staging/src/k8s.io/kubectl/pkg/cmd/get/get.go at
    012b4f49, Run: FilenameParam, ContinueOnError, IgnoreErrors(apierrors.IsNotFound) under
    --ignore-not-found; printGeneric): the objects found are printed as one List when the file
    names several (a single object when it names one), nothing when none is found under
    --ignore-not-found; a kind the server does not serve or an object not found (without
    --ignore-not-found) is an error after the output (exit 1)."""
    a = ctx.args
    docs = read_manifests(a.filename)
    found: list[dict] = []
    errors: list[str] = []
    for doc in docs:
        try:
            res = _res_for(ctx, doc)
        except Fail as exc:
            errors.append(str(exc))
            continue
        name = doc["metadata"]["name"]
        ns = doc["metadata"].get("namespace") or ctx.ns
        try:
            found.append(ctx.api.get(ctx.url(res, name, ns)))
        except ApiFailure as exc:
            if exc.code != 404:
                raise
            if not a.ignore_not_found:
                errors.append(not_found(res, name))
    if found or not a.ignore_not_found:
        if (a.output or "") not in ("json", "yaml"):
            raise Fail("[simulator] kubectl get -f is simulated with -o json or yaml only")
        res0 = _res_for(ctx, docs[0]) if found else ("", "v1", "", True, "")
        print_objects(ctx, res0, found, len(docs) == 1 and len(found) == 1)
    if errors:
        raise Fail("\n".join(errors))


def cmd_version(ctx: Ctx | None, args: argparse.Namespace, version: Version) -> None:
    client = {
        "major": "1",
        "minor": str(version.minor),
        "gitVersion": str(version),
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
    data: dict[str, Any] = {"clientVersion": client, "kustomizeVersion": "v5.4.2"}
    server_err = None
    if not args.client and ctx is not None:
        try:
            data["serverVersion"] = ctx.api.get("/version")
        except ApiFailure as exc:
            server_err = exc.message
    if args.output == "json":
        out(json.dumps(data, indent=2))
    elif args.output == "yaml":
        out(yaml.safe_dump(data, sort_keys=False).rstrip())
    else:
        out(f"Client Version: {version}\nKustomize Version: v5.4.2")
        if "serverVersion" in data:
            out(f"Server Version: {data['serverVersion']['gitVersion']}")
    if "serverVersion" in data:
        warning = rules.kubectl_skew_warning(
            version, Version.parse(data["serverVersion"]["gitVersion"])
        )
        if warning:
            err(warning)
    if server_err:
        raise Fail(server_err)


def set_unschedulable(ctx: Ctx, node: str, value: bool) -> bool:
    """Returns True when the node changed."""
    current = ctx.api.get(f"/api/v1/nodes/{node}")
    if bool(current["spec"].get("unschedulable")) == value:
        return False
    ctx.api.call(
        "PATCH",
        f"/api/v1/nodes/{node}",
        {"spec": {"unschedulable": value or None}},
        "application/merge-patch+json",
    )
    return True


def cmd_cordon(ctx: Ctx, value: bool) -> None:
    word = "cordoned" if value else "uncordoned"
    for node in ctx.args.targets:
        node = node.split("/", 1)[-1]
        try:
            changed = set_unschedulable(ctx, node, value)
        except ApiFailure as exc:
            if exc.code == 404:
                raise Fail(f'Error from server (NotFound): nodes "{node}" not found') from None
            raise Fail(f"error: {exc.message}") from None
        out(f"node/{node} {word}" if changed else f"node/{node} already {word}")


def cmd_drain(ctx: Ctx) -> None:
    a = ctx.args
    node = a.targets[0].split("/", 1)[-1]
    try:
        changed = set_unschedulable(ctx, node, True)
    except ApiFailure as exc:
        if exc.code == 404:
            raise Fail(f'Error from server (NotFound): nodes "{node}" not found') from None
        raise Fail(f"error: {exc.message}") from None
    out(f"node/{node} cordoned" if changed else f"node/{node} already cordoned")
    fault = ctx.api.fault("drain", node)
    if fault:
        raise Fail(
            f'error: unable to drain node "{node}" due to error: {fault}, continuing '
            f"command...\nThere are pending nodes to be drained:\n {node}\n{fault}"
        )
    pods = ctx.api.get(f"/api/v1/pods?fieldSelector=spec.nodeName={node}")["items"]
    if a.pod_selector:
        k, _, v = a.pod_selector.partition("=")
        pods = [p for p in pods if p["metadata"].get("labels", {}).get(k) == v]
    plan = rules.plan_drain(
        pods,
        force=a.force,
        ignore_daemonsets=a.ignore_daemonsets,
        delete_emptydir_data=a.delete_emptydir_data,
    )
    if plan.errors:
        text = ", ".join(plan.errors)
        raise Fail(
            f'error: unable to drain node "{node}" due to error: {text}, continuing '
            f"command...\nThere are pending nodes to be drained:\n {node}\n"
            + "\n".join(plan.errors)
        )
    for w in plan.warnings:
        err(f"Warning: {w}")
    settings = ctx.api.get("/sim/settings")
    retry = float(settings.get("drain_retry_seconds", 5))
    timeout = rules.parse_duration(a.timeout)
    deadline = time.time() + timeout if timeout else None
    pending = list(plan.evict)
    for p in pending:
        out(f"evicting pod {p['metadata']['namespace']}/{p['metadata']['name']}")
    while pending:
        still = []
        for p in pending:
            ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
            try:
                if a.disable_eviction:
                    ctx.api.call("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}")
                else:
                    ctx.api.post(
                        f"/api/v1/namespaces/{ns}/pods/{name}/eviction",
                        {
                            "apiVersion": "policy/v1",
                            "kind": "Eviction",
                            "metadata": {"name": name, "namespace": ns},
                        },
                    )
                out(f"pod/{name} evicted")
            except ApiFailure as exc:
                if exc.code == 404:
                    out(f"pod/{name} evicted")
                elif exc.code == 429:
                    err(
                        f'error when evicting pods/"{name}" -n "{ns}" (will retry after '
                        f"{retry:g}s): {exc.message}"
                    )
                    still.append(p)
                else:
                    raise Fail(
                        f'error: unable to drain node "{node}" due to error: error when '
                        f'evicting pods/"{name}" -n "{ns}": {exc.message}'
                    ) from None
        pending = still
        if pending and deadline and time.time() + retry > deadline:
            names = ", ".join(
                f'error when evicting pods/"{p["metadata"]["name"]}" -n '
                f'"{p["metadata"]["namespace"]}": global timeout reached: '
                f"{a.timeout}"
                for p in pending
            )
            raise Fail(
                f'error: unable to drain node "{node}" due to error: [{names}], '
                f"continuing command...\nThere are pending nodes to be drained:\n {node}\n"
                f"{names}"
            )
        if pending:
            time.sleep(retry)
    out(f"node/{node} drained")


def cmd_wait(ctx: Ctx) -> None:
    a = ctx.args
    cond = a.for_
    if not cond:
        raise Fail("error: --for must be specified")
    timeout = rules.parse_duration(a.timeout)
    deadline = time.time() + timeout
    targets = parse_targets(ctx, a.targets)
    names: list[tuple[tuple, str]] = []
    for res, name in targets:
        if name:
            names.append((res, name))
        else:
            items = ctx.api.get(ctx.url(res) + query(ctx))["items"]
            if not items:
                raise Fail("error: no matching resources found")
            names += [(res, i["metadata"]["name"]) for i in items]
    for res, name in names:
        while True:
            try:
                obj = ctx.api.get(ctx.url(res, name))
            except ApiFailure as exc:
                if cond == "delete" and exc.code == 404:
                    out(f"{short_group(res)}/{name} condition met")
                    break
                if exc.code != 404:
                    raise
                obj = None
            if obj is not None and condition_met(obj, cond):
                out(f"{short_group(res)}/{name} condition met")
                break
            if time.time() >= deadline:
                raise Fail(f"error: timed out waiting for the condition on {res[2]}/{name}")
            time.sleep(0.3)


def condition_met(obj: dict, cond: str) -> bool:
    if cond.startswith("condition="):
        want = cond[len("condition=") :]
        ctype, _, value = want.partition("=")
        value = value or "True"
        for c in obj.get("status", {}).get("conditions") or []:
            if c.get("type", "").lower() == ctype.lower():
                return str(c.get("status")).lower() == value.lower()
        return False
    if cond.startswith("jsonpath="):
        expr, _, want = cond[len("jsonpath=") :].partition("=")
        got = jsonpath.evaluate(obj, expr.strip("{}"))
        return bool(got) and str(got[0]) == want
    raise Fail(f"error: unrecognized condition: {cond!r}")


def cmd_label(ctx: Ctx) -> None:
    a = ctx.args
    res = ctx.resolve(a.targets[0].split("/")[0])
    names = [a.targets[0].split("/", 1)[1]] if "/" in a.targets[0] else []
    changes = a.targets[1:] if names else a.targets[2:]
    if not names:
        names = [a.targets[1]]
    for name in names:
        obj = ctx.api.get(ctx.url(res, name))
        labels = dict(obj["metadata"].get("labels") or {})
        patch: dict[str, Any] = {}
        for change in changes:
            if change.endswith("-"):
                if change[:-1] in labels:
                    patch[change[:-1]] = None
            else:
                k, _, v = change.partition("=")
                if k in labels and labels[k] != v and not a.overwrite:
                    raise Fail(
                        f"error: '{k}' already has a value ({labels[k]}), and --overwrite is false"
                    )
                if labels.get(k) != v:
                    patch[k] = v
        if patch:
            ctx.api.call(
                "PATCH",
                ctx.url(res, name),
                {"metadata": {"labels": patch}},
                "application/merge-patch+json",
            )
        word = "unlabeled" if changes and all(c.endswith("-") for c in changes) else "labeled"
        out(
            f"{short_group(res)}/{name} {word}"
            if patch
            else f"{short_group(res)}/{name} not labeled"
        )


def cmd_taint(ctx: Ctx) -> None:
    a = ctx.args
    t = a.targets
    nodes = [t[0].split("/", 1)[1]] if "/" in t[0] else [t[1]]
    specs = t[1:] if "/" in t[0] else t[2:]
    for node in nodes:
        obj = ctx.api.get(f"/api/v1/nodes/{node}")
        taints = list(obj["spec"].get("taints") or [])
        removed = added = False
        for spec in specs:
            remove = spec.endswith("-")
            spec = spec.rstrip("-")
            keyval, _, effect = spec.partition(":")
            key, _, value = keyval.partition("=")
            if remove:
                keep = [
                    x
                    for x in taints
                    if not (x["key"] == key and (not effect or x.get("effect") == effect))
                ]
                if len(keep) == len(taints):
                    raise Fail(f'error: taint "{spec}" not found')
                taints, removed = keep, True
            else:
                if (
                    any(x["key"] == key and x.get("effect") == effect for x in taints)
                    and not a.overwrite
                ):
                    raise Fail(
                        f"error: node {node} already has {key} taint(s) with same "
                        "effect(s) and --overwrite is false"
                    )
                taints = [x for x in taints if not (x["key"] == key and x.get("effect") == effect)]
                taints.append({"key": key, "effect": effect, **({"value": value} if value else {})})
                added = True
        ctx.api.call(
            "PATCH",
            f"/api/v1/nodes/{node}",
            {"spec": {"taints": taints}},
            "application/merge-patch+json",
        )
        out(f"node/{node} {'untainted' if removed and not added else 'tainted'}")


def read_manifests(paths: list[str]) -> list[dict]:
    docs: list[dict] = []
    for path in paths:
        files = [path]
        if os.path.isdir(path):
            files = sorted(
                os.path.join(path, f)
                for f in os.listdir(path)
                if f.endswith((".yaml", ".yml", ".json"))
            )
        for f in files:
            try:
                stream = sys.stdin if f == "-" else open(f, encoding="utf-8")  # noqa: SIM115
                with stream:
                    loaded = list(yaml.safe_load_all(stream))
            except FileNotFoundError:
                raise Fail(f'error: the path "{f}" does not exist') from None
            except yaml.YAMLError as exc:
                raise Fail(f"error: error parsing {f}: {exc}") from None
            for d in loaded:
                if not d:
                    continue
                if d.get("kind") == "List":
                    docs.extend(d.get("items") or [])
                else:
                    docs.append(d)
    return docs


def _res_for(ctx: Ctx, doc: dict) -> tuple:
    api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
    group, _, version = api_version.rpartition("/")
    res = BUILTIN.get(kind.lower())
    if res and res[0] == group:
        return (group, version, res[2], res[3], kind)
    try:
        found = ctx.resolve(kind.lower())
    except Fail:
        raise Fail(
            f'error: resource mapping not found for name: "{doc["metadata"]["name"]}" '
            f'namespace: "{doc["metadata"].get("namespace", "")}" from "": no matches for '
            f'kind "{kind}" in version "{api_version}"\nensure CRDs are installed '
            "first"
        ) from None
    return (group, version, found[2], found[3], kind)


def cmd_create_raw(ctx: Ctx) -> None:
    """`kubectl create --raw URI -f FILE|-`: POST the file's body to the URI and print the
    answer (real kubectl: k8s.io/kubectl/pkg/cmd/create/create.go RunCreate with --raw); an
    API error prints "Error from server (Reason): message" and exits 1."""
    a = ctx.args
    if not a.filename or len(a.filename) != 1:
        raise Fail("error: --raw requires exactly one -f")
    if a.filename[0] == "-":
        text = sys.stdin.read()
    else:
        with open(a.filename[0], encoding="utf-8") as fh:
            text = fh.read()
    try:
        answer = ctx.api.post(a.raw, json.loads(text))
    except ApiFailure as exc:
        raise Fail(f"Error from server ({exc.reason or 'InternalError'}): {exc.message}") from None
    out(json.dumps(answer))


def cmd_apply(ctx: Ctx, create_only: bool) -> None:
    a = ctx.args
    if create_only and a.raw:
        cmd_create_raw(ctx)
        return
    if create_only and a.targets[:1] in (["namespace"], ["ns"]) and len(a.targets) == 2:
        name = a.targets[1]
        doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        if a.dry_run == "client":
            out(yaml.safe_dump(doc, sort_keys=False).rstrip())
            return
        try:
            ctx.api.call("POST", "/api/v1/namespaces", doc)
        except ApiFailure as exc:
            raise Fail(f"Error from server ({exc.reason}): {exc.message}") from None
        out(f"namespace/{name} created")
        return
    if not a.filename:
        raise Fail("error: must specify one of -f and -k")
    failures = []
    for doc in read_manifests(a.filename):
        try:
            res = _res_for(ctx, doc)
        except Fail as exc:
            failures.append(str(exc))
            continue
        name = doc["metadata"]["name"]
        ns = doc["metadata"].get("namespace") or ctx.ns
        if res[3]:
            doc["metadata"]["namespace"] = ns
        path = ctx.url(res, name, ns)
        try:
            existing = ctx.api.get(path)
        except ApiFailure as exc:
            if exc.code != 404:
                failures.append(f"Error from server: {exc.message}")
                continue
            existing = None
        label = f"{short_group(res)}/{name}"
        try:
            if existing is None:
                ctx.api.call("PUT", path, doc)
                out(f"{label} {'serverside-applied' if a.server_side else 'created'}")
            elif create_only:
                failures.append(
                    f'Error from server (AlreadyExists): {res[2]} "{name}" already exists'
                )
            else:
                same = all(existing.get(k) == v for k, v in doc.items() if k != "metadata") and all(
                    existing["metadata"].get(k) == v for k, v in doc["metadata"].items()
                )
                if not same:
                    ctx.api.call("PUT", path, doc)
                out(f"{label} {'unchanged' if same else 'configured'}"
                    if not a.server_side else f"{label} serverside-applied")
        except ApiFailure as exc:
            failures.append(
                invalid_message(exc)
                or (
                    f"Error from server ({exc.reason or 'InternalError'}): error when "
                    f'creating "{a.filename[0]}": {exc.message}'
                )
            )
    if failures:
        raise Fail("\n".join(failures))


def cmd_diff(ctx: Ctx) -> int:
    """kubectl diff: 0 when every object of the files is as the cluster has it, 1 when one
    differs (or does not exist), an error (exit 2 in main) otherwise. The differing objects
    are printed one a line, as ``diff -q`` names differing files (KUBECTL_EXTERNAL_DIFF is not
    run: the simulator compares the given fields, as apply does)."""
    if not ctx.args.filename:
        raise Fail("error: must specify one of -f and -k")
    differ = False
    for doc in read_manifests(ctx.args.filename):
        res = _res_for(ctx, doc)
        name = doc["metadata"]["name"]
        ns = doc["metadata"].get("namespace") or ctx.ns
        try:
            existing = ctx.api.get(ctx.url(res, name, ns))
        except ApiFailure as exc:
            if exc.code != 404:
                raise Fail(f"Error from server: {exc.message}") from None
            existing = None
        same = existing is not None and all(
            existing.get(k) == v for k, v in doc.items() if k != "metadata") and all(
            existing["metadata"].get(k) == v for k, v in doc["metadata"].items()
            if k != "namespace")
        if not same:
            differ = True
            out(f"Files LIVE/{res[0] or 'v1'}.{res[4]}.{ns}.{name} and "
                f"MERGED/{res[0] or 'v1'}.{res[4]}.{ns}.{name} differ")
    return 1 if differ else 0


def invalid_message(exc: ApiFailure) -> str:
    """kubectl's text for a 422 Invalid answer with details (cmdutil.checkErr): 'The <Kind>
    "<name>" is invalid: <field>: <message>', one cause after the other; '' otherwise."""
    d = exc.details
    if exc.reason != "Invalid" or not d.get("causes"):
        return ""
    causes = [
        f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in d["causes"]
    ]
    text = "\n* ".join(causes) if len(causes) > 1 else causes[0]
    return f'The {d.get("kind", "")} "{d.get("name", "")}" is invalid: ' + (
        f"\n* {text}" if len(causes) > 1 else text
    )


def cmd_replace(ctx: Ctx) -> None:
    """kubectl replace -f: PUT of whole objects that must exist; a stale resourceVersion is a
    conflict (the API server's optimistic concurrency)."""
    if not ctx.args.filename:
        raise Fail("error: must specify one of -f and -k")
    source = "STDIN" if ctx.args.filename == ["-"] else ctx.args.filename[0]
    for doc in read_manifests(ctx.args.filename):
        res = _res_for(ctx, doc)
        name = doc["metadata"]["name"]
        path = ctx.url(res, name, doc["metadata"].get("namespace") or ctx.ns)
        try:
            current = ctx.api.get(path)
        except ApiFailure as exc:
            raise Fail(
                f"Error from server ({exc.reason or 'NotFound'}): error when replacing "
                f'"{source}": {exc.message}'
            ) from None
        wanted = doc["metadata"].get("resourceVersion")
        if wanted and wanted != current["metadata"].get("resourceVersion"):
            raise Fail(
                f'Error from server (Conflict): error when replacing "{source}": Operation '
                f'cannot be fulfilled on {res[2]} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again"
            )
        ctx.api.call("PUT", path, doc)
        out(f"{short_group(res)}/{name} replaced")


def cmd_delete(ctx: Ctx) -> None:
    a = ctx.args
    pairs: list[tuple[tuple, str, str | None]] = []
    if a.filename:
        for doc in read_manifests(a.filename):
            res = _res_for(ctx, doc)
            pairs.append((res, doc["metadata"]["name"], doc["metadata"].get("namespace")))
    else:
        pairs = [(res, name, None) for res, name in parse_targets(ctx, a.targets) if name]
    for res, name, ns in pairs:
        try:
            ctx.api.call("DELETE", ctx.url(res, name, ns))
            out(f'{short_group(res)} "{name}" deleted')
        except ApiFailure as exc:
            if exc.code == 404 and a.ignore_not_found:
                continue
            if exc.code == 404:
                raise Fail(f'Error from server (NotFound): {res[2]} "{name}" not found') from None
            raise


def cmd_rollout(ctx: Ctx) -> None:
    a = ctx.args
    if a.targets[0] != "status":
        raise Fail(f"[simulator] kubectl rollout {a.targets[0]} is not simulated")
    ((res, name),) = parse_targets(ctx, a.targets[1:])
    deadline = time.time() + (rules.parse_duration(a.timeout) or 600)
    while True:
        obj = ctx.api.get(ctx.url(res, name))
        st = obj.get("status", {})
        if res[2] != "deployments" or st.get("availableReplicas", 0) >= st.get("replicas", 0):
            out(f'{res[4].lower()} "{name}" successfully rolled out')
            return
        out(
            f'Waiting for deployment "{name}" rollout to finish: {st.get("availableReplicas", 0)} '
            f"of {st.get('replicas', 0)} updated replicas are available..."
        )
        if time.time() > deadline:
            raise Fail("error: timed out waiting for the condition")
        time.sleep(0.5)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubectl", description="kubectl (simulator)")
    p.add_argument("command")
    p.add_argument("targets", nargs="*")
    p.add_argument("--kubeconfig")
    p.add_argument("-n", "--namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-o", "--output")
    p.add_argument("-l", "--selector")
    p.add_argument("--field-selector")
    p.add_argument("--show-labels", action="store_true")
    p.add_argument("--ignore-not-found", action="store_true")
    p.add_argument("--raw")
    p.add_argument("--client", action="store_true")
    p.add_argument("--request-timeout", default="0")
    p.add_argument("-f", "--filename", action="append")
    p.add_argument("--force", action="store_true")
    p.add_argument("--ignore-daemonsets", action="store_true")
    p.add_argument("--delete-emptydir-data", action="store_true")
    p.add_argument("--disable-eviction", action="store_true")
    p.add_argument("--pod-selector")
    p.add_argument("--grace-period", default="-1")
    p.add_argument("--timeout", default="0s")
    p.add_argument("--for", dest="for_")
    p.add_argument("--all", action="store_true")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--server-side", action="store_true")
    p.add_argument("--dry-run", default="none")
    p.add_argument("--force-conflicts", action="store_true")
    p.add_argument("--wait", default="true")
    p.add_argument("-v", "--v", default="0")
    return p


def main(argv: list[str], package_version: str) -> int:
    version = Version.parse(package_version)
    args = parser().parse_intermixed_args(argv)
    try:
        if args.command == "version":
            ctx = None
            if not args.client:
                try:
                    ctx = Ctx(args, version)
                except Fail:
                    ctx = None
            cmd_version(ctx, args, version)
            return 0
        ctx = Ctx(args, version)
        if args.command == "get":
            cmd_get(ctx)
        elif args.command == "cordon":
            cmd_cordon(ctx, True)
        elif args.command == "uncordon":
            cmd_cordon(ctx, False)
        elif args.command == "drain":
            cmd_drain(ctx)
        elif args.command == "wait":
            cmd_wait(ctx)
        elif args.command == "label":
            cmd_label(ctx)
        elif args.command == "taint":
            cmd_taint(ctx)
        elif args.command == "diff":
            try:
                return cmd_diff(ctx)
            except Fail as exc:
                err(str(exc))
                return 2
        elif args.command in ("apply", "create"):
            cmd_apply(ctx, args.command == "create")
        elif args.command == "replace":
            cmd_replace(ctx)
        elif args.command == "delete":
            cmd_delete(ctx)
        elif args.command == "rollout":
            cmd_rollout(ctx)
        elif args.command == "cluster-info":
            ctx.api.get("/version")
            out(f"Kubernetes control plane is running at {ctx.api.url}")
        else:
            raise Fail(f'error: unknown command "{args.command}" for "kubectl" (simulator)')
        return 0
    except Fail as exc:
        err(str(exc))
        return 1
    except ApiFailure as exc:
        err(exc.message if exc.code == 0 else f"Error from server ({exc.reason}): {exc.message}")
        return 1
    except RuleError as exc:
        err(f"error: {exc}")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:], os.environ.get("SIM_KUBECTL_VERSION", "1.31.2")))


__all__ = ["main", "node_name"]
