"""The gateway_api role (ingress_controller: gateway; issue 16): the manifests it applies, rendered
by the role's own templates in a real Ansible run (tests/playbooks/render-gateway.yml includes
its tasks/render.yml) for several inventories, validated against the published CRD schemas of
the pinned releases (Gateway API v1.5.1 GatewayClass/Gateway/HTTPRoute, NGINX Gateway Fabric
v2.6.7 NginxProxy; tests/data/addons/gateway-crd-schemas.json, descriptions removed) - not
their CEL rules, which only a real API server evaluates; a second render changes nothing;
bad settings are refused before anything is touched; the add-on playbook chooses the role by
ingress_controller; the smoke test's HTTPRoute leads to the echo backend.

The last test (container/slow) runs the role through playbooks/addons.yml on a lab host against
the simulator: the Kubernetes API, kubectl, MetalLB and NGINX Gateway Fabric's controller and
data path there are simulated (tests/simulator/gateway.py), Ansible, SSH and files are real."""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_schemas import openapi
from api_schemas.validator import validate as validate_core

from provision import gateway, pins
from provision.runner import run_playbook

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
ROLE = REPO / "roles" / "gateway_api"
PIN = pins.BY_COMPONENT["NGINX Gateway Fabric (ingress_controller: gateway)"]
UPSTREAM = TESTS / "data" / "addons" / f"nginx-gateway-fabric-{PIN.version}-deploy.yaml"
SCHEMAS: dict[str, dict] = json.loads(
    (TESTS / "data" / "addons" / "gateway-crd-schemas.json").read_text())
FILES = ("nginx-gateway-fabric.yaml", "gateway.yaml", "smoke.yaml", "default-certificate.yaml")

CASES: dict[str, dict[str, Any]] = {
    # MetalLB address asked for; HTTPS listener with the certificate cert-manager issues
    "lb-fixed-ip-tls": {
        "metallb_addresses": ["10.0.0.200-10.0.0.210"],
        "gateway_api_load_balancer_ip": "10.0.0.201",
        "gateway_api_tls_secret": "gateway-tls",
        "cert_manager_cluster_issuers": [{"name": "lab-ca", "type": "ca"}],
        "cert_manager_default_certificate": {"issuer": "lab-ca", "namespace": "nginx-gateway",
                                             "secret_name": "gateway-tls",
                                             "dns_names": ["lab.example.test"]},
    },
    # defaults: LoadBalancer, any address of the pool, HTTP only
    "lb-defaults": {},
    # a single VM reached on fixed node ports, Local policy, another Gateway name
    "single-vm-nodeport": {
        "gateway_api_service_mode": "NodePort",
        "gateway_api_http_node_port": 31080,
        "gateway_api_https_node_port": 31443,
        "gateway_api_external_traffic_policy": "Local",
        "gateway_api_gateway_name": "edge",
        "gateway_api_smoke_host": "echo.example.test",
    },
    # a single VM reached on ports 80/443 of the node: DaemonSet with hostPorts, HTTPS too
    "single-vm-hostport": {
        "gateway_api_service_mode": "HostPort",
        "gateway_api_tls_secret": "gateway-tls",
    },
}


class Rendered(dict):
    second_changed: dict[str, int]


def _inventory(base: Path, cases: dict[str, dict[str, Any]], seed: bool = True) -> Path:
    hosts: dict[str, Any] = {}
    for case, values in cases.items():
        out = base / case
        out.mkdir(exist_ok=True)
        if seed:
            shutil.copy(UPSTREAM, out / f"nginx-gateway-fabric-deploy-{PIN.version}.yaml")
        hosts[case] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                       "gateway_api_manifest_dir": str(out),
                       "cert_manager_manifest_dir": str(out), **values}
    inv = base / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return inv


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """case -> file name -> documents, from a real Ansible run over all cases; then a second
    run over the same directories (its changed count per host)."""
    base = tmp_path_factory.mktemp("gateway-render")
    inv = _inventory(base, CASES)
    playbook = str(TESTS / "playbooks" / "render-gateway.yml")
    first = run_playbook(command="test-render", playbook=playbook, inventory=inv, quiet=True)
    assert first.ok, f"rendering failed: {first.errors}"
    docs = Rendered()
    for case in CASES:
        docs[case] = {name: [d for d in yaml.safe_load_all((base / case / name).read_text()) if d]
                      for name in FILES if (base / case / name).exists()}
        assert first.hosts[case]["changed"] > 0
    second = run_playbook(command="test-render", playbook=playbook, inventory=inv, quiet=True)
    assert second.ok, second.errors
    docs.second_changed = {case: second.hosts[case]["changed"] for case in CASES}
    return docs


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind}/{name}, got {len(found)}"
    return found[0]


def upstream_docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(UPSTREAM.read_text()) if d]


# --- the pinned release and its fixture -------------------------------------------------------

def test_fixture_is_the_pinned_upstream_manifest() -> None:
    """The test copy is byte for byte the release's deploy/default/deploy.yaml: its sha256 is
    the pin's, which is also the role's default checksum (tests/test_pins.py)."""
    assert hashlib.sha256(UPSTREAM.read_bytes()).hexdigest() == PIN.checksum
    images = {c["image"] for d in upstream_docs() if d["kind"] in ("Deployment", "Job")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {f"ghcr.io/nginx/nginx-gateway-fabric:{PIN.version.lstrip('v')}"}


def test_gateway_api_crd_version_is_the_one_the_pin_names() -> None:
    """The CRDs installed are the Gateway API release NGF is built against (the pin says it),
    every file has a checksum, and the list is the release's config/crd/kustomization.yaml."""
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    variables = yaml.safe_load((ROLE / "vars/main.yml").read_text())
    assert f"Gateway API v{defaults['gateway_api_version'].lstrip('v')}" in PIN.why
    sums = variables["_gateway_api_crd_checksums_v1_5_1"]
    assert defaults["gateway_api_version"] == "v1.5.1"
    assert sorted(sums) == sorted(defaults["gateway_api_crd_files"])
    assert len(defaults["gateway_api_crd_files"]) == 9
    assert "gateway.networking.k8s.io_vap_safeupgrades.yaml" in sums
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in sums.values())


# --- rendered objects against the published schemas ---------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_rendered_objects_match_the_pinned_schemas(rendered: Rendered, case: str) -> None:
    """Gateway, HTTPRoute and NginxProxy against the CRDs' openAPIV3Schema (strict: unknown
    fields refused; CEL rules not evaluated); core objects against tests/api_schemas; upstream
    objects the role does not adjust are exactly the published ones."""
    published = {(d["kind"], d["metadata"]["name"]): d for d in upstream_docs()}
    checked = 0
    for name, docs in rendered[case].items():
        for doc in docs:
            key = f"{doc['apiVersion']} {doc['kind']}"
            if name == "nginx-gateway-fabric.yaml" and doc["kind"] not in ("NginxProxy", "Job"):
                assert doc == published[(doc["kind"], doc["metadata"]["name"])], doc["kind"]
                continue
            if key in SCHEMAS:
                problems = openapi.validate(doc, SCHEMAS)
            elif doc["kind"] == "Job":
                continue  # test_certificate_job_is_kept_after_it_finishes
            else:
                problems = validate_core(doc)
            assert not problems, f"{case}/{name} {key}/{doc['metadata']['name']}: {problems}"
            checked += 1
    assert checked >= 6


def _mutations(rendered: Rendered) -> list[tuple[str, dict, str]]:
    case = rendered["lb-fixed-ip-tls"]
    gw = one(case["gateway.yaml"], "Gateway")
    route = one(case["smoke.yaml"], "HTTPRoute")
    proxy = one(case["nginx-gateway-fabric.yaml"], "NginxProxy")
    out = []

    def mutate(label: str, doc: dict, change: Any, expect: str) -> None:
        d = copy.deepcopy(doc)
        change(d)
        out.append((label, d, expect))

    mutate("listener port 0", gw,
           lambda d: d["spec"]["listeners"][0].update(port=0), "below the minimum 1")
    mutate("listener name with an underscore", gw,
           lambda d: d["spec"]["listeners"][0].update(name="http_80"), "does not match")
    mutate("Ingress-style path type", route,
           lambda d: d["spec"]["rules"][0]["matches"][0]["path"].update(type="Prefix"),
           "'Prefix' is not one of")
    mutate("unknown field", gw, lambda d: d["spec"].update(ingressClassName="nginx"),
           "unknown field 'ingressClassName'")
    mutate("no listeners", gw, lambda d: d["spec"].pop("listeners"),
           "required field 'listeners' is missing")
    mutate("hostNetwork as a Service type", proxy,
           lambda d: d["spec"]["kubernetes"]["service"].update(type="HostNetwork"),
           "'HostNetwork' is not one of")
    mutate("node port out of range", proxy,
           lambda d: d["spec"]["kubernetes"]["service"].update(
               nodePorts=[{"port": 70000, "listenerPort": 80}]), "above the maximum")
    mutate("cluster-scoped class with a namespace",
           {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": "nginx"}, "spec": {"controllerName": "a.b/c"}},
           lambda d: d["metadata"].update(namespace="x"), "is cluster-scoped")
    return out


def test_the_schema_check_refuses_what_the_api_server_refuses(rendered: Rendered) -> None:
    """The check can fail: each mutation of a valid rendered object is refused, named."""
    for label, doc, expect in _mutations(rendered):
        problems = openapi.validate(doc, SCHEMAS)
        assert any(expect in p for p in problems), f"{label}: expected {expect!r} in {problems}"


# --- what the role adjusts ----------------------------------------------------------------------

def proxy_service(rendered: Rendered, case: str) -> dict:
    return one(rendered[case]["nginx-gateway-fabric.yaml"], "NginxProxy")["spec"]["kubernetes"][
        "service"]


def test_load_balancer_through_metallb(rendered: Rendered) -> None:
    """LoadBalancer: Cluster policy (not upstream's Local), the requested address through the
    Gateway's infrastructure annotations (copied by NGF onto its Service) and inside the pool."""
    svc = proxy_service(rendered, "lb-fixed-ip-tls")
    assert svc == {"externalTrafficPolicy": "Cluster", "type": "LoadBalancer"}
    up = one(upstream_docs(), "NginxProxy")["spec"]["kubernetes"]["service"]
    assert up["externalTrafficPolicy"] == "Local"
    gw = one(rendered["lb-fixed-ip-tls"]["gateway.yaml"], "Gateway")
    ip = gw["spec"]["infrastructure"]["annotations"]["metallb.io/loadBalancerIPs"]
    first, last = (ipaddress.ip_address(a) for a in
                   CASES["lb-fixed-ip-tls"]["metallb_addresses"][0].split("-"))
    assert first <= ipaddress.ip_address(ip) <= last
    plain = one(rendered["lb-defaults"]["gateway.yaml"], "Gateway")
    assert "infrastructure" not in plain["spec"]
    assert proxy_service(rendered, "lb-defaults")["type"] == "LoadBalancer"
    # the rest of the NginxProxy (data plane image) is upstream's
    assert one(rendered["lb-defaults"]["nginx-gateway-fabric.yaml"], "NginxProxy")["spec"][
        "kubernetes"]["deployment"] == one(upstream_docs(), "NginxProxy")["spec"]["kubernetes"][
        "deployment"]


def test_node_ports_for_a_single_vm(rendered: Rendered) -> None:
    svc = proxy_service(rendered, "single-vm-nodeport")
    assert svc["type"] == "NodePort" and svc["externalTrafficPolicy"] == "Local"
    assert svc["nodePorts"] == [{"port": 31080, "listenerPort": 80},
                                {"port": 31443, "listenerPort": 443}]
    gw = one(rendered["single-vm-nodeport"]["gateway.yaml"], "Gateway")
    assert gw["metadata"] == {"name": "edge", "namespace": "nginx-gateway"}
    assert {ln["port"] for ln in gw["spec"]["listeners"]} == {80}


def test_host_ports_for_a_single_vm(rendered: Rendered) -> None:
    """HostPort: NGF v2.6.7's NginxProxy kubernetes.daemonSet (not .deployment: its CEL rule
    allows only one) with the upstream NGINX image and container.hostPorts 80->80, 443->443
    (the listener ports, which NGF makes the NGINX container's ports); the Service is ClusterIP
    without externalTrafficPolicy (NGF sets none for ClusterIP). The schema check of the
    NginxProxy runs in test_rendered_objects_match_the_pinned_schemas."""
    kube = one(rendered["single-vm-hostport"]["nginx-gateway-fabric.yaml"], "NginxProxy")[
        "spec"]["kubernetes"]
    upstream = one(upstream_docs(), "NginxProxy")["spec"]["kubernetes"]["deployment"]
    assert sorted(kube) == ["daemonSet", "service"]
    assert kube["daemonSet"] == {"container": {**upstream["container"], "hostPorts": [
        {"port": 80, "containerPort": 80}, {"port": 443, "containerPort": 443}]}}
    assert kube["service"] == {"type": "ClusterIP"}
    gw = one(rendered["single-vm-hostport"]["gateway.yaml"], "Gateway")
    assert [(ln["name"], ln["port"]) for ln in gw["spec"]["listeners"]] == [("http", 80),
                                                                          ("https", 443)]
    assert "infrastructure" not in gw["spec"]
    # the same NginxProxy with both kinds is what the CEL rule refuses: the mutation test's
    # schema check cannot see it, so the template is asserted not to produce it for any case
    for case in CASES:
        kinds = one(rendered[case]["nginx-gateway-fabric.yaml"], "NginxProxy")["spec"][
            "kubernetes"]
        assert ("deployment" in kinds) != ("daemonSet" in kinds), case


def test_https_listener_uses_the_certificate_cert_manager_issues(rendered: Rendered) -> None:
    """gateway_api_tls_secret adds an HTTPS listener on 443 whose certificate is the Secret
    cert_manager_default_certificate writes into the Gateway's namespace."""
    case = rendered["lb-fixed-ip-tls"]
    gw = one(case["gateway.yaml"], "Gateway")
    https = [ln for ln in gw["spec"]["listeners"] if ln["name"] == "https"]
    assert https and https[0]["protocol"] == "HTTPS" and https[0]["port"] == 443
    refs = https[0]["tls"]["certificateRefs"]
    cert = one(case["default-certificate.yaml"], "Certificate")
    assert refs == [{"kind": "Secret", "group": "", "name": cert["spec"]["secretName"]}]
    assert cert["metadata"]["namespace"] == gw["metadata"]["namespace"]
    assert [ln["name"] for ln in one(rendered["lb-defaults"]["gateway.yaml"], "Gateway")[
        "spec"]["listeners"]] == ["http"]


def test_certificate_job_is_kept_after_it_finishes(rendered: Rendered) -> None:
    """Upstream's cert-generator Job has ttlSecondsAfterFinished: 30, so the API server would
    delete it and every re-run would create it again (changed); the role drops the TTL, and
    changes nothing else of it."""
    [job] = [d for d in upstream_docs() if d["kind"] == "Job"]
    assert job["spec"]["ttlSecondsAfterFinished"] == 30
    for case in CASES:
        mine = one(rendered[case]["nginx-gateway-fabric.yaml"], "Job")
        theirs = copy.deepcopy(job)
        theirs["spec"].pop("ttlSecondsAfterFinished")
        assert mine == theirs, case


def test_upstream_order_and_objects_are_kept(rendered: Rendered) -> None:
    up = [(d["kind"], d["metadata"]["name"]) for d in upstream_docs()]
    for case in CASES:
        mine = rendered[case]["nginx-gateway-fabric.yaml"]
        assert [(d["kind"], d["metadata"]["name"]) for d in mine] == up, case
    # the GatewayClass the Gateway names is the one the manifest creates, for its controller
    klass = one(upstream_docs(), "GatewayClass", "nginx")
    gw = one(rendered["lb-defaults"]["gateway.yaml"], "Gateway")
    assert gw["spec"]["gatewayClassName"] == klass["metadata"]["name"]
    ctl = one(upstream_docs(), "Deployment", "nginx-gateway")["spec"]["template"]["spec"][
        "containers"][0]["args"]
    assert f"--gateway-ctlr-name={klass['spec']['controllerName']}" in ctl
    assert "--gatewayclass=nginx" in ctl


def test_second_render_changes_nothing(rendered: Rendered) -> None:
    assert rendered.second_changed == {case: 0 for case in CASES}


# --- the smoke test goes through an HTTPRoute to a backend -------------------------------------

@pytest.mark.parametrize("case", ["lb-defaults", "single-vm-nodeport", "single-vm-hostport"])
def test_smoke_httproute_leads_to_the_echo_backend(rendered: Rendered, case: str) -> None:
    """The verify path: the HTTPRoute is attached to the rendered Gateway's http listener, for
    the smoke host, and its backend is the echo Service whose selector and target port reach
    the echo container."""
    docs = rendered[case]["smoke.yaml"]
    gw = one(rendered[case]["gateway.yaml"], "Gateway")
    route, svc, deploy = (one(docs, k, "echo") for k in ("HTTPRoute", "Service", "Deployment"))
    [parent] = route["spec"]["parentRefs"]
    assert (parent["name"], parent["namespace"]) == (gw["metadata"]["name"],
                                                     gw["metadata"]["namespace"])
    assert parent["sectionName"] in {ln["name"] for ln in gw["spec"]["listeners"]}
    assert route["spec"]["hostnames"] == [
        CASES[case].get("gateway_api_smoke_host", "smoke.provision.test")]
    [backend] = route["spec"]["rules"][0]["backendRefs"]
    assert backend["name"] == svc["metadata"]["name"]
    assert backend["port"] in {p["port"] for p in svc["spec"]["ports"]}
    assert route["metadata"]["namespace"] == svc["metadata"]["namespace"]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert svc["spec"]["selector"] == deploy["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}
    assert container["args"][0] == "netexec"


def test_smoke_tasks_send_the_request_through_the_route_and_clean_up() -> None:
    """tasks/install.yml runs the smoke test after the Gateway is Programmed; the request
    carries the route's host name and must echo the message; removal is in `always`."""
    main = yaml.safe_load((ROLE / "tasks/install.yml").read_text())
    names = [t["name"] for t in main]
    assert names.index("Create the default Gateway") < names.index(
        "Wait until the Gateway is programmed") < names.index(
        "Smoke-test the Gateway through an HTTPRoute")
    [smoke] = yaml.safe_load((ROLE / "tasks/smoke.yml").read_text())
    request = next(t for t in smoke["block"] if "ansible.builtin.uri" in t)
    assert request["ansible.builtin.uri"]["headers"] == {"Host": "{{ gateway_api_smoke_host }}"}
    assert "provision-smoke-" in request["until"]
    [cleanup] = smoke["always"]
    assert cleanup["ansible.builtin.command"]["argv"][2:5] == ["delete", "--ignore-not-found",
                                                               "-f"]


# --- structure and style, as the other add-on roles (tests/test_addons_roles.py) ---------------

def test_tasks_are_named_fqcn_and_retry_only_where_allowed() -> None:
    """Every task named and a FQCN builtin; retrying only in tasks/apply.yml and the smoke
    test (address lookup, request), counts and delays from variables; downloads retry a flaky
    network but never a 4xx or a checksum mismatch; applies parse kubectl's 'unchanged'."""
    from test_addons_roles import MODULE_KEYS, task_files, tasks_of

    files = task_files("gateway_api")
    assert {p.name for p in files} >= {"main.yml", "check.yml", "apply.yml", "apply_crds.yml",
                                       "render.yml", "smoke.yml", "wait.yml"}
    for path in files:
        for task in tasks_of(path):
            assert task.get("name"), f"{path}: a task has no name: {task}"
            if "block" in task:
                continue
            modules = [k for k in task if k not in MODULE_KEYS]
            assert len(modules) == 1 and modules[0].startswith("ansible.builtin."), \
                f"{path}: {task['name']}: {modules}"
            if "ansible.builtin.get_url" in task:
                assert "status_code" in str(task["until"]) and "checksum" in str(task["until"])
                continue
            if "retries" in task or "until" in task:
                assert path.name in {"apply.yml", "smoke.yml"}, f"{path}: {task['name']}"
                assert "{{" in str(task["retries"]) and "{{" in str(task["delay"])
    [apply] = tasks_of(ROLE / "tasks/apply.yml")
    assert "unchanged" in apply["changed_when"]


# --- CRDs go server-side, with a diff deciding whether anything changes ------------------------

def test_crds_are_applied_server_side_only_when_they_differ() -> None:
    diff, apply = yaml.safe_load((ROLE / "tasks/apply_crds.yml").read_text())
    argv = diff["ansible.builtin.command"]["argv"]
    assert argv[2:5] == ["diff", "--server-side", "--force-conflicts"]
    assert diff["changed_when"] is False and "[0, 1]" in diff["failed_when"]
    assert apply["ansible.builtin.command"]["argv"][2:5] == ["apply", "--server-side",
                                                             "--force-conflicts"]
    assert apply["when"] == "_gateway_api_crd_diff.rc == 1"
    # the HTTPRoute CRD alone is over the 256 KiB last-applied annotation limit of a
    # client-side apply (its published file size; the schema in the test data is reduced)
    assert 262144 < 431207


# --- bad input ---------------------------------------------------------------------------------

BAD: dict[str, tuple[dict[str, Any], str]] = {
    "host-network": ({"gateway_api_service_mode": "hostNetwork"},
                     "hostNetwork is not offered"),
    "host-port-case": ({"gateway_api_service_mode": "hostport"},
                       "must be LoadBalancer, NodePort or HostPort (got hostport"),
    "policy-typo": ({"gateway_api_external_traffic_policy": "local"},
                    "gateway_api_external_traffic_policy is Cluster or Local"),
    "gateway-name": ({"gateway_api_gateway_name": "Default"}, "is a DNS label"),
    "tls-secret": ({"gateway_api_tls_secret": "nginx-gateway/tls"}, "is a Secret name"),
    "old-kubernetes": ({"kubernetes_version": "1.30"}, "needs Kubernetes 1.31 or later"),
    "issuer-without-hostname": ({"gateway_api_cluster_issuer": "letsencrypt",
                                 "gateway_api_tls_secret": "gateway-tls"},
                                "needs gateway_api_tls_secret and gateway_api_tls_hostname"),
    "hostname-uppercase": ({"gateway_api_tls_secret": "gateway-tls",
                            "gateway_api_tls_hostname": "Lab.Example.test"},
                           'gateway_api_tls_hostname is a host name, optionally *.-prefixed '
                           '(got "Lab.Example.test")'),
}


def test_bad_settings_fail_in_the_checks_with_the_key_named(tmp_path: Path) -> None:
    cases = {name: values for name, (values, _) in BAD.items()}
    cases["all-good"] = {"kubernetes_version": "1.31", "gateway_api_cluster_issuer": "le",
                         "gateway_api_tls_secret": "gateway-tls",
                         "gateway_api_tls_hostname": "*.example.test"}
    cases["newest"] = {"kubernetes_version": "1.37.0", "gateway_api_service_mode": "NodePort"}
    cases["host-port"] = {"gateway_api_service_mode": "HostPort"}
    inv = _inventory(tmp_path, cases, seed=False)
    result = run_playbook(command="test-gateway-check",
                          playbook=str(TESTS / "playbooks/gateway-check.yml"), inventory=inv,
                          quiet=True)
    by_host = {f.host: f for f in result.failures}
    for name, (_, expect) in BAD.items():
        assert name in by_host, f"{name}: was not refused"
        assert expect in by_host[name].message, f"{name}: {by_host[name].message}"
        assert by_host[name].task.startswith("Check "), by_host[name].task
    assert not {"all-good", "newest", "host-port"} & set(by_host), by_host


def test_argument_spec_refuses_a_wrong_type_before_any_task(tmp_path: Path) -> None:
    hosts = {"h": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                   "addons_role": "gateway_api", "gateway_api_manifest_dir": str(tmp_path / "m"),
                   "gateway_api_service_mode": "ClusterIP"}}
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    result = run_playbook(command="test-addons-argspec",
                          playbook=str(TESTS / "playbooks/addons-argspec.yml"), inventory=inv,
                          quiet=True)
    [failure] = result.failures
    assert "Validating arguments against arg spec" in failure.task, failure.task
    assert "gateway_api_service_mode" in failure.message
    assert not (tmp_path / "m").exists(), "the role did something before refusing its input"


# --- the inventory variable and the add-on playbook ----------------------------------------------

def _validate(tmp_path: Path, capsys: Any, group_vars: str) -> tuple[int, str]:
    from provision.cli import main

    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n"
        "          ansible_host: 127.0.0.1\n          ansible_port: 9\n")
    (inv / "group_vars" / "all.yml").write_text(group_vars)
    with pytest.raises(SystemExit) as exc:
        main(["-i", str(inv), "validate"])
    _, err = capsys.readouterr()
    return int(exc.value.code or 0), err.replace(str(inv), "{inv}")


def test_inventory_accepts_gateway_and_refuses_other_values(tmp_path: Path, capsys: Any) -> None:
    """ingress_controller is declared with its choices: 'gateway' passes validate, a typo is
    refused with exit 2, the file and the key named, before any host is contacted (port 9)."""
    ok, err = _validate(tmp_path / "a", capsys, "ingress_controller: gateway\n")
    assert ok == 0, err
    assert "ingress_controller: gateway with gateway_api_service_mode: LoadBalancer needs a " \
           "MetalLB address pool" in err, err  # a warning
    code, err = _validate(tmp_path / "b", capsys, "ingress_controller: nginx-gateway\n")
    assert code == 2
    assert "{inv}/group_vars/all.yml:1: group all: ingress_controller: 'nginx-gateway' is not " \
           "one of: ingress-nginx, gateway" in err, err


def test_cross_checks_for_the_gateway() -> None:
    """provision.gateway.problems: what validate/bootstrap should refuse before contact (the
    role refuses the same in tasks/check.yml)."""
    assert gateway.problems({}) == []
    assert gateway.problems({"ingress_controller": "ingress-nginx",
                             "kubernetes_version": "1.28"}) == []
    pool = {"ingress_controller": "gateway", "metallb_addresses": ["10.0.0.200/30"]}
    assert gateway.problems({**pool, "kubernetes_version": "1.31"}) == []
    assert gateway.problems({**pool, "kubernetes_version": "1.37.1"}) == []
    [old] = gateway.problems({**pool, "kubernetes_version": "1.30"})
    assert "needs Kubernetes 1.31 or later" in old and "'1.30'" in old
    [no_pool] = gateway.problems({"ingress_controller": "gateway"})
    assert "needs a MetalLB address pool" in no_pool and "NodePort" in no_pool
    assert gateway.problems({"ingress_controller": "gateway",
                             "gateway_api_service_mode": "NodePort"}) == []
    assert gateway.problems({"ingress_controller": "gateway",
                             "gateway_api_service_mode": "HostPort"}) == []
    assert "HostPort (ports 80/443)" in no_pool
    [host] = gateway.problems({"ingress_controller": "gateway",
                               "gateway_api_service_mode": "hostNetwork"})
    assert "hostNetwork is not offered" in host and "HostPort serves ports 80/443" in host
    assert "is not one of: LoadBalancer, NodePort, HostPort" in host


@pytest.mark.parametrize(("group_vars", "expected"), [
    ("ingress_controller: gateway\n",
     "{inv}/group_vars/all.yml:1: group all: ingress_controller: gateway with "
     "gateway_api_service_mode: LoadBalancer needs a MetalLB address pool"),
    ("ingress_controller: gateway\ngateway_api_service_mode: NodePort\n"
     "kubernetes_version: '1.30'\n",
     "ingress_controller: gateway needs Kubernetes 1.31 or later (NGINX Gateway Fabric); "
     "kubernetes_version is '1.30'"),
    ("ingress_controller: gateway\ngateway_api_service_mode: NodePort\n"
     "gateway_api_cluster_issuer: letsencrypt\ngateway_api_tls_secret: gateway-tls\n",
     "gateway_api_cluster_issuer: 'letsencrypt' needs gateway_api_tls_hostname (the HTTPS "
     "listener's Secret and host name cert-manager issues the certificate for)"),
])
def test_bootstrap_refuses_an_unworkable_gateway_before_contact(
        tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, group_vars: str,
        expected: str) -> None:
    """bootstrap's add-on checks (provision.gateway.problems): exit 2, the file named, nothing
    run (ansible-runner would fail the test)."""
    import ansible_runner

    def boom(*a: Any, **k: Any) -> None:
        raise AssertionError("ansible-runner started despite invalid input")

    monkeypatch.setattr(ansible_runner, "run", boom)
    from provision.cli import main

    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n"
        "          ansible_host: 127.0.0.1\n          ansible_port: 9\n")
    (inv / "group_vars" / "all.yml").write_text(group_vars)
    with pytest.raises(SystemExit) as exc:
        main(["-i", str(inv), "bootstrap", "--components", "ingress"])
    _, err = capsys.readouterr()
    assert exc.value.code == 2, err
    assert expected in err.replace(str(inv), "{inv}"), err


def test_progress_counts_the_gateway_as_the_ingress_step() -> None:
    from provision.progress import step_for_role

    assert step_for_role("gateway_api", ["ingress"]) == "ingress"
    assert step_for_role("gateway_api", ["base", "addons"]) == "addons"


def _when(play: dict, role: str) -> str:
    [task] = [t for t in play["tasks"]
              if t.get("ansible.builtin.include_role", {}).get("name") == role]
    return str(task["when"])


@pytest.mark.parametrize(("variables", "installed"), [
    ({}, "ingress_nginx"),
    ({"ingress_controller": "ingress-nginx"}, "ingress_nginx"),
    ({"ingress_controller": "gateway"}, "gateway_api"),
    ({"ingress_controller": "gateway", "ingress_nginx_enabled": False}, "gateway_api"),
    ({"ingress_nginx_enabled": False}, None),
    ({"ingress_controller": "gateway", "provision_components": ["metallb"]}, None),
    ({"ingress_controller": "gateway", "provision_components": ["ingress"]}, "gateway_api"),
])
def test_addons_playbook_installs_the_chosen_ingress_controller(
        variables: dict[str, Any], installed: str | None) -> None:
    """The include conditions of playbooks/addons.yml, evaluated by Ansible's own templating:
    exactly the chosen controller is installed, as the component 'ingress'."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    [play] = yaml.safe_load((REPO / "playbooks/addons.yml").read_text())
    roles = [t["ansible.builtin.include_role"]["name"] for t in play["tasks"]
             if "ansible.builtin.include_role" in t]
    assert roles == ["metallb", "ingress_nginx", "gateway_api", "cert_manager"]
    # the playbook's own variables are templates (trusted as Ansible trusts a playbook's)
    declared = {}
    for name in play.get("vars_files") or []:
        declared.update(yaml.safe_load((REPO / "playbooks" / name).read_text()) or {})
    own = {k: trust_as_template(v) if isinstance(v, str) else v
           for k, v in {**declared, **play["vars"]}.items()}
    chosen = []
    for role in ("ingress_nginx", "gateway_api"):
        templar = Templar(loader=DataLoader(), variables={**own, **variables})
        expr = " ".join(_when(play, role).split())
        result = templar.template(trust_as_template("{{ (" + expr + ") | bool }}"))
        assert isinstance(result, bool), result
        if result:
            chosen.append(role)
    assert chosen == ([installed] if installed else [])


# --- the role against the simulator on a real lab host ---------------------------------------

GATEWAY_DATA = TESTS / "data" / "addons"
GATEWAY_CRDS = GATEWAY_DATA / "gateway-api-v1.5.1-standard"
NGF_CRDS = GATEWAY_DATA / f"nginx-gateway-fabric-{PIN.version}-crds-reduced.yaml"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _gateway_fixtures(lab: Any, host: str) -> dict[str, Any]:
    """Copies the (reduced) CRDs and the real NGF manifest to the lab host; the role's
    variables pointing at them, with their checksums, so the verification runs too."""
    import base64

    from test_addons_roles import FIXTURE_DIR, sh

    files = {f"gateway-api/{p.name}": p for p in sorted(GATEWAY_CRDS.glob("*.yaml"))}
    files |= {NGF_CRDS.name: NGF_CRDS, UPSTREAM.name: UPSTREAM}
    for rel, path in files.items():
        data = base64.b64encode(path.read_bytes()).decode()
        sh(lab, host, f"mkdir -p {FIXTURE_DIR}/gateway-api && echo {data} | base64 -d > "
                      f"{FIXTURE_DIR}/{rel}")
    return {
        "ingress_controller": "gateway",
        "gateway_api_crds_url": f"file://{FIXTURE_DIR}/gateway-api",
        "gateway_api_crd_checksums": {p.name: _sha256(p) for p in GATEWAY_CRDS.glob("*.yaml")},
        "gateway_api_ngf_crds_url": f"file://{FIXTURE_DIR}/{NGF_CRDS.name}",
        "gateway_api_ngf_crds_checksum": f"sha256:{_sha256(NGF_CRDS)}",
        "gateway_api_ngf_manifest_url": f"file://{FIXTURE_DIR}/{UPSTREAM.name}",
        "gateway_api_ngf_manifest_checksum": f"sha256:{PIN.checksum}",
        "gateway_api_delay": 1, "gateway_api_wait_timeout": 60,
    }


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3600)  # two playbook runs through SSH; minutes on a loaded 2-CPU host
def test_simulated_gateway_through_metallb_then_no_change(sim_lab_node, k8s_sim) -> None:
    """Simulated Kubernetes on a real lab host (simulated API server, kubectl, MetalLB and
    NGINX Gateway Fabric controller/data path - tests/simulator/gateway.py; real Ansible, SSH
    and files): playbooks/addons.yml with ingress_controller: gateway installs MetalLB, then
    the Gateway API CRDs and NGF's CRDs server-side (reduced copies), NGF's real manifest, the
    default Gateway - not ingress-nginx; the Gateway gets the requested MetalLB address through
    its infrastructure annotation, and the smoke test's request is answered through the
    HTTPRoute by the echo pods. cert-manager (reduced v1.16.2 copy) runs with
    --enable-gateway-api, its ACME ClusterIssuer solves HTTP-01 through the Gateway, and the
    (simulated) gateway-shim makes the Certificate for the annotated HTTPS listener. The second
    run reports changed=0 (the server-side diff finds nothing to apply)."""
    from test_addons_roles import (
        addon_vars,
        kubectl_json,
        names,
        ordered_tasks,
        simulated_cluster,
    )

    lab, host = simulated_cluster(sim_lab_node)
    extra = addon_vars(provision_components=["metallb", "ingress", "cert-manager"],
                       gateway_api_load_balancer_ip="172.30.0.202",
                       gateway_api_tls_secret="gateway-tls",
                       gateway_api_tls_hostname="lab.example.test",
                       gateway_api_cluster_issuer="letsencrypt-staging",
                       cert_manager_default_certificate={},
                       **_gateway_fixtures(lab, host))
    first = run_playbook(command="test-addons", playbook="addons.yml", inventory=lab.inventory,
                         extravars=extra, quiet=True)
    assert first.ok, f"{first.errors}\n{first.log_path.read_text()[-5000:]}"
    assert first.hosts[host]["changed"] > 0
    tasks = ordered_tasks(first)

    def pos(fragment: str) -> int:
        hits = [i for i, t in enumerate(tasks) if fragment in t]
        assert hits, f"no task like {fragment!r} ran: {tasks}"
        return hits[0]

    assert pos("Apply metallb-config.yaml") < \
        pos("Apply server-side, gateway-api-v1.5.1-standard") < \
        pos(f"Apply server-side, {'nginx-gateway-fabric-crds-' + PIN.version}") < \
        pos("Apply nginx-gateway-fabric.yaml") < \
        pos("Wait for deployment/nginx-gateway condition=Available") < \
        pos("Apply gateway.yaml") < pos("Wait for gateway/default condition=Programmed") < \
        pos("Send one request through the Gateway")
    assert "ingress-nginx" not in names(lab, host, "namespaces")
    assert "nginx" in names(lab, host, "gatewayclasses")
    svc = kubectl_json(lab, host, "get", "service", "default-nginx", "-n", "nginx-gateway")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "172.30.0.202"}]
    gw = kubectl_json(lab, host, "get", "gateway", "default", "-n", "nginx-gateway")
    assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": "172.30.0.202"}]
    served = [c for c in k8s_sim.calls("gateway-request") if c["code"] == 200]
    assert served, k8s_sim.calls("gateway-request")
    assert served[0]["host"] == "smoke.provision.test" and served[0]["node"] == host
    assert served[0]["backend"] == "provision-smoke/echo"
    assert served[0]["gateway"] == "nginx-gateway/default"
    assert "provision-smoke" not in names(lab, host, "namespaces")
    # cert-manager with Gateway API support (simulated shim: tests/simulator/certmanager.py)
    assert pos("Send one request through the Gateway") < pos(
        "Write the cert-manager manifest with --enable-gateway-api") < pos(
        "Apply cert-manager-v1.16.2-gateway-api.yaml")
    cm = kubectl_json(lab, host, "get", "deployment", "cert-manager", "-n", "cert-manager")
    assert "--enable-gateway-api" in cm["spec"]["template"]["spec"]["containers"][0]["args"]
    issuer = kubectl_json(lab, host, "get", "clusterissuer", "letsencrypt-staging")
    [ref] = issuer["spec"]["acme"]["solvers"][0]["http01"]["gatewayHTTPRoute"]["parentRefs"]
    assert (ref["name"], ref["namespace"], ref["sectionName"]) == ("default", "nginx-gateway",
                                                                   "http")
    assert gw["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == \
        "letsencrypt-staging"
    crt = kubectl_json(lab, host, "get", "certificate", "gateway-tls", "-n", "nginx-gateway")
    assert crt["spec"]["dnsNames"] == ["lab.example.test"]
    assert crt["spec"]["issuerRef"]["name"] == "letsencrypt-staging"

    second = run_playbook(command="test-addons", playbook="addons.yml", inventory=lab.inventory,
                          extravars=extra, quiet=True)
    assert second.ok, f"{second.errors}\n{second.log_path.read_text()[-5000:]}"
    assert second.hosts[host]["changed"] == 0, [e for e in second.events if e["changed"]]
    assert not any((e.get("task") or "").startswith("Apply server-side")
                   and e["event"] == "runner_on_ok"
                   for e in second.events), "the second run applied CRDs again"


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3600)  # two playbook runs through SSH; minutes on a loaded 2-CPU host
def test_simulated_gateway_on_host_ports_then_no_change(sim_lab_node, k8s_sim) -> None:
    """gateway_api_service_mode: HostPort on a single lab host against the simulator (simulated
    API server, kubectl and NGINX Gateway Fabric controller/data path, tests/simulator/
    gateway.py; real Ansible, SSH and files), no MetalLB: NGF's data plane is a DaemonSet whose
    NGINX ports 80/443 carry hostPorts, the Service is ClusterIP, and the smoke request goes
    to port 80 of the node (the simulated kubelet listens where the CNI's portmap would
    forward) and is answered through the HTTPRoute. The HTTPS listener's Secret is to come
    from cert_manager_default_certificate (cert-manager is not part of this run): the
    Programmed wait passes, NGF's InvalidCertificateRef is reported, the run does not fail.
    The second run reports changed=0."""
    from test_addons_roles import addon_vars, kubectl_json, names, simulated_cluster

    lab, host = simulated_cluster(sim_lab_node)
    extra = addon_vars(provision_components=["ingress"],
                       gateway_api_service_mode="HostPort",
                       gateway_api_tls_secret="gateway-tls",
                       cert_manager_default_certificate={
                           "issuer": "lab-ca", "namespace": "nginx-gateway",
                           "secret_name": "gateway-tls", "dns_names": ["lab.example.test"]},
                       **_gateway_fixtures(lab, host))
    first = run_playbook(command="test-addons", playbook="addons.yml", inventory=lab.inventory,
                         extravars=extra, quiet=True)
    assert first.ok, f"{first.errors}\n{first.log_path.read_text()[-5000:]}"
    log = " ".join(first.log_path.read_text().split())
    assert "waits for Secret nginx-gateway/gateway-tls, which cert-manager issues " \
           "(cert_manager_default_certificate)" in log
    assert "metallb-system" not in names(lab, host, "namespaces")
    ds = kubectl_json(lab, host, "get", "daemonset", "default-nginx", "-n", "nginx-gateway")
    ports = ds["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [(p["containerPort"], p.get("hostPort")) for p in ports] == [(80, 80), (443, 443)]
    svc = kubectl_json(lab, host, "get", "service", "default-nginx", "-n", "nginx-gateway")
    assert svc["spec"]["type"] == "ClusterIP"
    gw = kubectl_json(lab, host, "get", "gateway", "default", "-n", "nginx-gateway")
    https = next(ln for ln in gw["status"]["listeners"] if ln["name"] == "https")
    assert {c["type"]: c["reason"] for c in https["conditions"]}["ResolvedRefs"] == \
        "InvalidCertificateRef"
    served = [c for c in k8s_sim.calls("gateway-request") if c["code"] == 200]
    assert served, k8s_sim.calls("gateway-request")
    assert served[0]["host"] == "smoke.provision.test" and served[0]["node"] == host
    assert served[0]["backend"] == "provision-smoke/echo"

    second = run_playbook(command="test-addons", playbook="addons.yml", inventory=lab.inventory,
                          extravars=extra, quiet=True)
    assert second.ok, f"{second.errors}\n{second.log_path.read_text()[-5000:]}"
    assert second.hosts[host]["changed"] == 0, [e for e in second.events if e["changed"]]
