"""The resources the add-on roles apply (MetalLB, ingress-nginx, cert-manager), rendered by the
roles' own templates in a real Ansible run (tests/playbooks/render-addons.yml includes each
role's tasks/render.yml, so defaults, vars, filters and templates are the ones a real run
uses) for several inventories, and validated strictly against the pinned releases' APIs as
written down in tests/api_schemas/ (unknown fields, wrong types, missing required fields and
values outside an enum are refused)."""

from __future__ import annotations

import copy
import ipaddress
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_schemas.validator import check, known_kinds, schemas, validate
from test_gateway_api import one

from provision import pins
from provision.runner import run_playbook

TESTS = Path(__file__).resolve().parent
PLAYBOOK = str(TESTS / "playbooks" / "render-addons.yml")
INGRESS_VERSION = pins.BY_COMPONENT["ingress-nginx controller"].version
INGRESS_UPSTREAM = TESTS / "data" / "addons" / \
    f"ingress-nginx-controller-{INGRESS_VERSION}-cloud.yaml"
TOKEN = "cf-token-SHOULD-NEVER-BE-LOGGED-5f1d"

# One inventory case per host of a single render run.
CASES: dict[str, dict[str, Any]] = {
    # L2 pool from ranges; ingress through MetalLB on a fixed address; lab CA + default cert
    "l2-ranges-lab-ca": {
        "metallb_addresses": ["10.0.0.200-10.0.0.210", "10.0.0.220-10.0.0.220"],
        "ingress_nginx_service_mode": "LoadBalancer",
        "ingress_nginx_load_balancer_ip": "10.0.0.200",
        "ingress_nginx_default_tls_secret": "ingress-nginx/default-tls",
        "cert_manager_cluster_issuers": [{"name": "lab-ca", "type": "ca",
                                          "common_name": "provision lab CA"}],
        "cert_manager_default_certificate": {"issuer": "lab-ca",
                                             "dns_names": ["lab.example.test",
                                                           "*.lab.example.test"]},
    },
    # L2 pool from CIDRs plus a BGP pool; Let's Encrypt staging + production by HTTP-01
    "cidrs-bgp-letsencrypt": {
        "metallb_addresses": ["192.168.50.240/28", "fd00:50::/120"],
        "metallb_l2_interfaces": ["enp0s6"],
        "metallb_pools": [{"name": "public", "addresses": ["203.0.113.64/29"],
                           "advertise": "bgp", "auto_assign": False},
                          {"name": "both", "addresses": ["198.51.100.0/30"],
                           "advertise": "both", "avoid_buggy_ips": True}],
        "metallb_bgp_peers": [{"name": "tor-a", "my_asn": 64512, "peer_asn": 64513,
                               "peer_address": "192.168.50.1", "hold_time": "90s"},
                              {"name": "tor-b", "my_asn": 64512, "peer_asn": 64514,
                               "peer_address": "192.168.50.2", "peer_port": 1179,
                               "ebgp_multihop": True}],
        "metallb_bgp_advertisement": {"aggregation_length": 32, "local_pref": 100,
                                      "communities": ["64512:100"]},
        "acme_email": "ops@example.org",
        "cert_manager_cluster_issuers": [
            {"name": "letsencrypt-staging", "type": "acme", "server": "staging"},
            {"name": "letsencrypt", "type": "acme", "server": "production",
             "email": "certs@example.org"}],
    },
    # The DNS example: TCP+UDP on one shared address; DNS-01 through Cloudflare
    "dns-shared-ip-cloudflare": {
        "metallb_addresses": ["10.0.0.200-10.0.0.210"],
        "metallb_services": [{"name": "dns", "namespace": "kube-system",
                              "selector": {"k8s-app": "kube-dns"}, "address": "10.0.0.201",
                              "ports": [{"name": "dns-udp", "port": 53, "protocol": "UDP"},
                                        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                                        {"name": "metrics", "port": 9153,
                                         "target_port": 9153}]}],
        "acme_email": "ops@example.org",
        "cert_manager_cloudflare_api_token": TOKEN,
        "cert_manager_cluster_issuers": [
            {"name": "letsencrypt-dns", "type": "acme", "server": "production",
             "solver": "cloudflare", "dns_zones": ["example.org"]},
            {"name": "pebble", "type": "acme",
             "server": "https://pebble.example.test:14000/dir", "ingress_class": "nginx"}],
        "cert_manager_default_certificate": {"issuer": "letsencrypt-dns",
                                             "dns_names": ["*.example.org"],
                                             "secret_name": "wildcard-tls"},
        "ingress_nginx_default_tls_secret": "ingress-nginx/wildcard-tls",
    },
    # A single VM with no spare address: host network, no MetalLB pool
    "single-vm-hostnetwork": {
        "ingress_nginx_service_mode": "hostNetwork",
        "ingress_nginx_default_class": False,
    },
    # A single VM reached on fixed node ports
    "single-vm-nodeport": {
        "ingress_nginx_service_mode": "NodePort",
        "ingress_nginx_http_node_port": 31080,
        "ingress_nginx_https_node_port": 31443,
    },
}
FILES = ("metallb-config.yaml", "metallb-services.yaml", "ingress-nginx.yaml", "smoke.yaml",
         "cluster-issuers.yaml", "cloudflare-secret.yaml", "default-certificate.yaml")
# Upstream objects the role applies exactly as published (checked equal, not re-validated).
PASSTHROUGH = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
               "ConfigMap", "Job", "ValidatingWebhookConfiguration"}


class Rendered(dict):
    log: str = ""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """case -> file name -> list of documents, from one real Ansible run over all cases."""
    base = tmp_path_factory.mktemp("addons-render")
    hosts: dict[str, Any] = {}
    for case, values in CASES.items():
        out = base / case
        out.mkdir()
        shutil.copy(INGRESS_UPSTREAM, out / f"deploy-{INGRESS_VERSION}.yaml")
        hosts[case] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                       "metallb_manifest_dir": str(out), "ingress_nginx_manifest_dir": str(out),
                       "cert_manager_manifest_dir": str(out), **values}
    inv = base / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    # --diff shows every rendered file's content in the output: only no_log keeps the
    # Cloudflare token out of it (test_cloudflare_token_never_reaches_the_log)
    result = run_playbook(command="test-render", playbook=PLAYBOOK, inventory=inv, quiet=True,
                          envvars={"ANSIBLE_DIFF_ALWAYS": "true"})
    log = result.log_path.read_text() if result.log_path.exists() else ""
    assert result.ok, f"rendering failed: {result.errors}\n{log[-4000:]}"
    docs = Rendered()
    artifacts = "".join(p.read_text(errors="replace") for p in result.run_dir.rglob("*")
                        if p.is_file())
    docs.log = log + artifacts + "".join(str(e) for e in result.events)
    for case in CASES:
        docs[case] = {}
        for name in FILES:
            path = base / case / name
            if path.exists():
                docs[case][name] = [d for d in yaml.safe_load_all(path.read_text()) if d]
                docs[case][name + ":mode"] = stat.S_IMODE(path.stat().st_mode)
    return docs


def kinds(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]



def upstream_docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(INGRESS_UPSTREAM.read_text()) if d]


# --- every rendered document against the API schemas ------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_every_rendered_resource_matches_the_pinned_api(rendered: Rendered, case: str) -> None:
    """Each document the roles apply validates against tests/api_schemas (strict); upstream
    objects the role does not touch are exactly the published ones."""
    upstream = {(d["kind"], d["metadata"]["name"]): d for d in upstream_docs()}
    checked = 0
    for name, docs in rendered[case].items():
        if name.endswith(":mode"):
            continue
        for doc in docs:
            if doc["kind"] in PASSTHROUGH:
                published = upstream[(doc["kind"], doc["metadata"]["name"])]
                if doc["kind"] == "Job":  # kept after it finishes: see test_admission_jobs_...
                    published = copy.deepcopy(published)
                    published["spec"].pop("ttlSecondsAfterFinished", None)
                assert doc == published, \
                    f"{case}/{name}: {doc['kind']}/{doc['metadata']['name']} was changed"
                continue
            problems = validate(doc)
            assert not problems, f"{case}/{name} {doc['kind']}/{doc['metadata']['name']}:\n" + \
                "\n".join(problems)
            checked += 1
    assert checked >= 8


def test_admission_jobs_are_kept_after_they_finish(rendered: Rendered) -> None:
    """Upstream's admission Jobs (from v1.12) carry ttlSecondsAfterFinished: 0, so the API
    server deletes them when done and every re-run would create them again (changed); the
    role drops the TTL so a finished Job stays, as up to v1.11, and a re-run changes nothing."""
    published = [d for d in upstream_docs() if d["kind"] == "Job"]
    assert published and all(d["spec"].get("ttlSecondsAfterFinished") == 0 for d in published)
    for case in CASES:
        if "ingress-nginx.yaml" not in rendered[case]:
            continue
        jobs = kinds(rendered[case]["ingress-nginx.yaml"], "Job")
        assert jobs and all("ttlSecondsAfterFinished" not in j["spec"] for j in jobs), case


def test_schemas_name_their_release_and_sources() -> None:
    """Every schema file names the release it was written from and cites its reference."""
    _, _, release = schemas()
    assert release["metallb.io/v1beta1 IPAddressPool"] == "MetalLB v0.14.9"
    assert release["cert-manager.io/v1 ClusterIssuer"] == "cert-manager v1.16.2"
    assert "ingress-nginx controller v1.11.3" in release["networking.k8s.io/v1 Ingress"]
    for path in (TESTS / "api_schemas").glob("*.yaml"):
        text = path.read_text()
        assert "https://" in text.split("\nrelease:")[0], f"{path.name} cites no source"
    assert {"metallb.io/v1beta1 L2Advertisement", "metallb.io/v1beta1 BGPAdvertisement",
            "metallb.io/v1beta2 BGPPeer", "cert-manager.io/v1 Certificate",
            "networking.k8s.io/v1 IngressClass", "v1 Service"} <= known_kinds()


# --- the validator is strict (mutations of rendered documents are refused) --------------------

def _mutations(rendered: Rendered) -> list[tuple[str, dict, str]]:
    cases = rendered["dns-shared-ip-cloudflare"]
    pool = one(rendered["l2-ranges-lab-ca"]["metallb-config.yaml"], "IPAddressPool", "default")
    issuer = one(cases["cluster-issuers.yaml"], "ClusterIssuer", "letsencrypt-dns")
    ingress = one(rendered["l2-ranges-lab-ca"]["smoke.yaml"], "Ingress", "echo")
    cert = one(cases["default-certificate.yaml"], "Certificate", "wildcard-tls")
    svc = one(cases["metallb-services.yaml"], "Service", "dns-udp")
    out: list[tuple[str, dict, str]] = []

    def mutate(label: str, doc: dict, change: Any, expect: str) -> None:
        d = copy.deepcopy(doc)
        change(d)
        out.append((label, d, expect))

    mutate("unknown pool field", pool, lambda d: d["spec"].update(autoassign=True),
           "spec: unknown field 'autoassign'")
    mutate("pool address not a range", pool,
           lambda d: d["spec"].update(addresses=["10.0.0.210-10.0.0.200"]),
           "spec.addresses[0]: '10.0.0.210-10.0.0.200' is not a valid metallb-address")
    mutate("pool without addresses", pool, lambda d: d["spec"].pop("addresses"),
           "spec: required field 'addresses' is missing")
    mutate("autoAssign as string", pool, lambda d: d["spec"].update(autoAssign="true"),
           "spec.autoAssign: expected boolean")
    mutate("old ConfigMap-era kind", {**pool, "apiVersion": "metallb.io/v1alpha1"}, lambda d: None,
           "no schema for metallb.io/v1alpha1 IPAddressPool")
    mutate("two solvers in one", issuer,
           lambda d: d["spec"]["acme"]["solvers"][0].update(http01={"ingress": {}}),
           "exactly one of ['http01', 'dns01'] must be set")
    mutate("cloudflare key and token", issuer,
           lambda d: d["spec"]["acme"]["solvers"][0]["dns01"]["cloudflare"].update(
               apiKeySecretRef={"name": "x", "key": "y"}),
           "exactly one of ['apiTokenSecretRef', 'apiKeySecretRef'] must be set")
    mutate("v1alpha2 field name", issuer,
           lambda d: d["spec"]["acme"].update(http01={}), "spec.acme: unknown field 'http01'")
    mutate("issuer kind typo", cert, lambda d: d["spec"]["issuerRef"].update(kind="clusterissuer"),
           "spec.issuerRef.kind: 'clusterissuer' is not one of")
    mutate("rsa size as string", cert, lambda d: d["spec"]["privateKey"].update(size="256"),
           "spec.privateKey.size: expected integer")
    mutate("cluster-scoped issuer with namespace", issuer,
           lambda d: d["metadata"].update(namespace="cert-manager"), "is cluster-scoped")
    mutate("pathType missing", ingress,
           lambda d: d["spec"]["rules"][0]["http"]["paths"][0].pop("pathType"),
           "required field 'pathType' is missing")
    mutate("extensions/v1beta1 backend", ingress,
           lambda d: d["spec"]["rules"][0]["http"]["paths"][0].update(
               backend={"serviceName": "echo", "servicePort": 80}),
           "unknown field 'serviceName'")
    mutate("service protocol lowercase", svc,
           lambda d: d["spec"]["ports"][0].update(protocol="udp"),
           "'udp' is not one of ['TCP', 'UDP', 'SCTP']")
    mutate("service name with dot", svc, lambda d: d["metadata"].update(name="dns.udp"),
           "is not a valid dns1035-label")
    mutate("server-set field", svc, lambda d: d["metadata"].update(uid="1234"),
           "metadata.uid: is set by the server")
    return out


def test_validator_refuses_unknown_fields_types_enums_and_missing_fields(
        rendered: Rendered) -> None:
    """Each mutation of a valid rendered document is refused, with the field named."""
    for label, doc, expect in _mutations(rendered):
        problems = validate(doc)
        assert any(expect in p for p in problems), f"{label}: expected {expect!r} in {problems}"


def test_validator_checks_int_or_string_ports_and_quantities() -> None:
    port = {"$ref": "ServicePort"}
    assert check({"port": 53, "targetPort": "dns"}, port, "p") == []
    assert check({"port": 53, "targetPort": 70000}, port, "p") == ["p.targetPort: 70000 is not a "
                                                                   "port number"]
    assert check({"port": 0}, port, "p") == ["p.port: 0 is below the minimum 1"]
    assert check({"port": 80, "nodePort": 80}, port, "p") == ["p.nodePort: 80 is below the "
                                                              "minimum 30000"]
    res = {"$ref": "Container"}
    assert check({"name": "c", "resources": {"requests": {"cpu": "100m", "memory": "90Mi"}}},
                 res, "c") == []
    assert "expected a quantity" in check({"name": "c", "resources": {"limits": {"cpu": "lots"}}},
                                          res, "c")[0]


# --- MetalLB ----------------------------------------------------------------------------------

def pools_of(rendered: Rendered, case: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in
            kinds(rendered[case]["metallb-config.yaml"], "IPAddressPool")}


def test_l2_pool_from_ranges(rendered: Rendered) -> None:
    docs = rendered["l2-ranges-lab-ca"]["metallb-config.yaml"]
    pools = pools_of(rendered, "l2-ranges-lab-ca")
    assert list(pools) == ["default"]
    assert pools["default"]["spec"] == {"addresses": ["10.0.0.200-10.0.0.210",
                                                      "10.0.0.220-10.0.0.220"],
                                        "autoAssign": True, "avoidBuggyIPs": False}
    assert pools["default"]["metadata"]["namespace"] == "metallb-system"
    l2 = one(docs, "L2Advertisement", "l2")
    assert l2["spec"] == {"ipAddressPools": ["default"]}
    assert not kinds(docs, "BGPPeer") and not kinds(docs, "BGPAdvertisement")
    assert rendered["l2-ranges-lab-ca"]["metallb-services.yaml"] == []


def test_l2_pool_from_cidrs_and_optional_bgp(rendered: Rendered) -> None:
    docs = rendered["cidrs-bgp-letsencrypt"]["metallb-config.yaml"]
    pools = pools_of(rendered, "cidrs-bgp-letsencrypt")
    assert list(pools) == ["default", "public", "both"]
    assert pools["default"]["spec"]["addresses"] == ["192.168.50.240/28", "fd00:50::/120"]
    assert pools["public"]["spec"]["autoAssign"] is False
    assert pools["both"]["spec"]["avoidBuggyIPs"] is True
    assert one(docs, "L2Advertisement", "l2")["spec"] == {"ipAddressPools": ["default", "both"],
                                                          "interfaces": ["enp0s6"]}
    bgp = one(docs, "BGPAdvertisement", "bgp")["spec"]
    assert bgp == {"ipAddressPools": ["public", "both"], "peers": ["tor-a", "tor-b"],
                   "aggregationLength": 32, "localPref": 100, "communities": ["64512:100"]}
    peers = {d["metadata"]["name"]: d for d in kinds(docs, "BGPPeer")}
    assert peers["tor-a"]["apiVersion"] == "metallb.io/v1beta2"
    assert peers["tor-a"]["spec"] == {"myASN": 64512, "peerASN": 64513,
                                      "peerAddress": "192.168.50.1", "holdTime": "90s"}
    assert peers["tor-b"]["spec"]["peerPort"] == 1179
    assert peers["tor-b"]["spec"]["ebgpMultiHop"] is True
    # every advertised pool exists, every advertisement peer exists
    names = set(pools)
    assert set(bgp["ipAddressPools"]) <= names and set(bgp["peers"]) <= set(peers)


def _addresses_of_pool(entries: list[str]) -> list[Any]:
    nets: list[Any] = []
    for e in entries:
        if "-" in e:
            a, b = (ipaddress.ip_address(x) for x in e.split("-"))
            nets += list(ipaddress.summarize_address_range(a, b))
        else:
            nets.append(ipaddress.ip_network(e, strict=False))
    return nets


def test_tcp_and_udp_dns_services_share_one_address(rendered: Rendered) -> None:
    """The DNS example: one Service per protocol, the same allow-shared-ip key and the same
    requested address (inside a pool), externalTrafficPolicy Cluster on both (MetalLB shares
    an address only between Services with compatible policies)."""
    svcs = {d["metadata"]["name"]: d for d in
            rendered["dns-shared-ip-cloudflare"]["metallb-services.yaml"]}
    assert set(svcs) == {"dns-tcp", "dns-udp"}
    tcp, udp = svcs["dns-tcp"], svcs["dns-udp"]
    key = "metallb.io/allow-shared-ip"
    assert tcp["metadata"]["annotations"][key] == udp["metadata"]["annotations"][key] == \
        "kube-system-dns"
    ips = {s["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] for s in
           (tcp, udp)}
    assert ips == {"10.0.0.201"}
    pool = pools_of(rendered, "dns-shared-ip-cloudflare")["default"]["spec"]["addresses"]
    assert any(ipaddress.ip_address("10.0.0.201") in n for n in _addresses_of_pool(pool))
    assert {p["protocol"] for p in tcp["spec"]["ports"]} == {"TCP"}
    assert {p["protocol"] for p in udp["spec"]["ports"]} == {"UDP"}
    assert [p["port"] for p in tcp["spec"]["ports"]] == [53, 9153]
    assert udp["spec"]["ports"] == [{"name": "dns-udp", "port": 53, "protocol": "UDP",
                                     "targetPort": 53}]
    for s in (tcp, udp):
        assert s["spec"]["type"] == "LoadBalancer"
        assert s["spec"]["externalTrafficPolicy"] == "Cluster"
        assert s["spec"]["selector"] == {"k8s-app": "kube-dns"}
        assert s["metadata"]["namespace"] == "kube-system"


def _service_rules(svc: dict) -> list[str]:
    """The API server's cross-field rules for a Service (core/v1 validation)."""
    spec, problems = svc["spec"], []
    stype = spec.get("type", "ClusterIP")
    ports = spec.get("ports") or []
    if len(ports) > 1 and not all(p.get("name") for p in ports):
        problems.append("ports: names are required when there is more than one port")
    names = [p.get("name") for p in ports]
    if len(set(names)) != len(names):
        problems.append("ports: duplicate names")
    pairs = [(p["port"], p.get("protocol", "TCP")) for p in ports]
    if len(set(pairs)) != len(pairs):
        problems.append("ports: duplicate port/protocol")
    if stype not in ("NodePort", "LoadBalancer"):
        if any("nodePort" in p for p in ports):
            problems.append("nodePort: may not be used when type is " + stype)
        if "externalTrafficPolicy" in spec:
            problems.append("externalTrafficPolicy: may only be set for NodePort/LoadBalancer")
    return problems


@pytest.mark.parametrize("case", CASES)
def test_services_follow_the_api_cross_field_rules(rendered: Rendered, case: str) -> None:
    for name in ("metallb-services.yaml", "ingress-nginx.yaml", "smoke.yaml"):
        for svc in kinds(rendered[case].get(name, []), "Service"):
            assert _service_rules(svc) == [], f"{case}/{name} {svc['metadata']['name']}"


# --- ingress-nginx ----------------------------------------------------------------------------

def controller(rendered: Rendered, case: str) -> tuple[dict, dict, dict]:
    docs = rendered[case]["ingress-nginx.yaml"]
    return (one(docs, "Service", "ingress-nginx-controller"),
            one(docs, "Deployment", "ingress-nginx-controller"),
            one(docs, "IngressClass", "nginx"))


def test_ingress_load_balancer_through_metallb(rendered: Rendered) -> None:
    svc, deploy, klass = controller(rendered, "l2-ranges-lab-ca")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["metadata"]["annotations"] == {"metallb.io/loadBalancerIPs": "10.0.0.200"}
    # not upstream's Local: on OCI the address reaches only its owner node (roles/ingress_nginx)
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"
    assert all("nodePort" not in p for p in svc["spec"]["ports"])
    pod = deploy["spec"]["template"]["spec"]
    assert "hostNetwork" not in pod and pod["dnsPolicy"] == "ClusterFirst"
    assert "--default-ssl-certificate=ingress-nginx/default-tls" in pod["containers"][0]["args"]
    assert klass["metadata"]["annotations"] == {"ingressclass.kubernetes.io/is-default-class":
                                                "true"}
    assert klass["spec"] == {"controller": "k8s.io/ingress-nginx"}
    # the address asked for is in a MetalLB pool of the same inventory
    pool = pools_of(rendered, "l2-ranges-lab-ca")["default"]["spec"]["addresses"]
    assert any(ipaddress.ip_address("10.0.0.200") in n for n in _addresses_of_pool(pool))
    # without a fixed address no annotation at all
    svc2, _, _ = controller(rendered, "cidrs-bgp-letsencrypt")
    assert svc2["spec"]["type"] == "LoadBalancer" and "annotations" not in svc2["metadata"]


def test_ingress_host_network_for_a_single_vm(rendered: Rendered) -> None:
    svc, deploy, klass = controller(rendered, "single-vm-hostnetwork")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    ports = {p["name"]: p["containerPort"] for p in pod["containers"][0]["ports"]}
    assert ports["http"] == 80 and ports["https"] == 443
    assert svc["spec"]["type"] == "ClusterIP"
    assert "externalTrafficPolicy" not in svc["spec"]
    assert not any(a.startswith("--default-ssl-certificate") for a in
                   pod["containers"][0]["args"])
    assert "annotations" not in klass["metadata"]


def test_ingress_node_ports_for_a_single_vm(rendered: Rendered) -> None:
    svc, deploy, _ = controller(rendered, "single-vm-nodeport")
    assert svc["spec"]["type"] == "NodePort"
    assert {p["name"]: p["nodePort"] for p in svc["spec"]["ports"]} == {"http": 31080,
                                                                       "https": 31443}
    assert "hostNetwork" not in deploy["spec"]["template"]["spec"]


def test_ingress_changes_only_service_deployment_and_class(rendered: Rendered) -> None:
    """Everything but the three adjusted objects (and the Jobs' TTL) is the upstream manifest,
    in its order."""
    up = upstream_docs()
    for case in CASES:
        docs = rendered[case]["ingress-nginx.yaml"]
        assert [(d["kind"], d["metadata"]["name"]) for d in docs] == \
            [(d["kind"], d["metadata"]["name"]) for d in up]
        for mine, theirs in zip(docs, up, strict=True):
            if (mine["kind"], mine["metadata"]["name"]) in {
                    ("Service", "ingress-nginx-controller"),
                    ("Deployment", "ingress-nginx-controller"), ("IngressClass", "nginx")}:
                continue
            if mine["kind"] == "Job":  # test_admission_jobs_are_kept_after_they_finish
                theirs = copy.deepcopy(theirs)
                theirs["spec"].pop("ttlSecondsAfterFinished", None)
            assert mine == theirs, f"{case}: {mine['kind']}/{mine['metadata']['name']} changed"
        # the admission webhook's Service and rules are untouched: the role waits for them
        assert one(docs, "Service", "ingress-nginx-controller-admission") == \
            one(up, "Service", "ingress-nginx-controller-admission")


def test_smoke_test_resources(rendered: Rendered) -> None:
    docs = rendered["single-vm-hostnetwork"]["smoke.yaml"]
    ns = one(docs, "Namespace", "provision-smoke")
    assert "namespace" not in ns["metadata"]
    deploy, svc, ing = (one(docs, k, "echo") for k in ("Deployment", "Service", "Ingress"))
    labels = deploy["spec"]["selector"]["matchLabels"]
    assert deploy["spec"]["template"]["metadata"]["labels"] == labels == svc["spec"]["selector"]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["netexec", "--http-port=8080"]
    assert container["image"] == "registry.k8s.io/e2e-test-images/agnhost:2.53"
    rule = ing["spec"]["rules"][0]
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert rule["host"] == "smoke.provision.test"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == svc["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in svc["spec"]["ports"]}
    assert svc["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}
    for d in (deploy, svc, ing):
        assert d["metadata"]["namespace"] == "provision-smoke"


# --- cert-manager -----------------------------------------------------------------------------

def issuers_of(rendered: Rendered, case: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in
            kinds(rendered[case].get("cluster-issuers.yaml", []), "ClusterIssuer")}


def test_self_signed_ca_chain(rendered: Rendered) -> None:
    docs = rendered["l2-ranges-lab-ca"]["cluster-issuers.yaml"]
    issuers = issuers_of(rendered, "l2-ranges-lab-ca")
    assert set(issuers) == {"lab-ca-selfsigned", "lab-ca"}
    assert issuers["lab-ca-selfsigned"]["spec"] == {"selfSigned": {}}
    root = one(docs, "Certificate", "lab-ca-root")
    assert root["metadata"]["namespace"] == "cert-manager"  # the cluster resource namespace
    assert root["spec"]["isCA"] is True
    assert root["spec"]["commonName"] == "provision lab CA"
    assert root["spec"]["issuerRef"] == {"name": "lab-ca-selfsigned", "kind": "ClusterIssuer",
                                         "group": "cert-manager.io"}
    assert issuers["lab-ca"]["spec"] == {"ca": {"secretName": root["spec"]["secretName"]}}
    # the root is applied after its issuer, and the CA issuer after the root
    order = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert order.index(("ClusterIssuer", "lab-ca-selfsigned")) < \
        order.index(("Certificate", "lab-ca-root")) < order.index(("ClusterIssuer", "lab-ca"))


def test_letsencrypt_staging_and_production_http01(rendered: Rendered) -> None:
    issuers = issuers_of(rendered, "cidrs-bgp-letsencrypt")
    staging, prod = issuers["letsencrypt-staging"]["spec"]["acme"], \
        issuers["letsencrypt"]["spec"]["acme"]
    assert staging["server"] == "https://acme-staging-v02.api.letsencrypt.org/directory"
    assert prod["server"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert staging["email"] == "ops@example.org" and prod["email"] == "certs@example.org"
    assert staging["privateKeySecretRef"] == {"name": "letsencrypt-staging-account-key"}
    for acme in (staging, prod):
        assert acme["solvers"] == [{"http01": {"ingress": {"ingressClassName": "nginx"}}}]
    assert "cloudflare-secret.yaml" not in rendered["cidrs-bgp-letsencrypt"]


def test_dns01_cloudflare_token_in_a_secret(rendered: Rendered) -> None:
    case = rendered["dns-shared-ip-cloudflare"]
    acme = issuers_of(rendered, "dns-shared-ip-cloudflare")["letsencrypt-dns"]["spec"]["acme"]
    [solver] = acme["solvers"]
    assert solver["selector"] == {"dnsZones": ["example.org"]}
    ref = solver["dns01"]["cloudflare"]["apiTokenSecretRef"]
    [secret] = case["cloudflare-secret.yaml"]
    assert secret["metadata"] == {"name": ref["name"], "namespace": "cert-manager"}
    assert secret["stringData"] == {ref["key"]: TOKEN}
    assert case["cloudflare-secret.yaml:mode"] == 0o600
    # any ACME directory works as server; http01 is the default solver
    pebble = issuers_of(rendered, "dns-shared-ip-cloudflare")["pebble"]["spec"]["acme"]
    assert pebble["server"] == "https://pebble.example.test:14000/dir"
    assert pebble["solvers"] == [{"http01": {"ingress": {"ingressClassName": "nginx"}}}]


def test_cloudflare_token_never_reaches_the_log(rendered: Rendered) -> None:
    """no_log: the token is in the 0600 file, not in Ansible's output or events, although
    the run shows diffs (the other rendered files' content is in the log)."""
    assert "ingress-nginx-controller" in rendered.log, "the run's diff output is missing"
    assert TOKEN not in rendered.log


def test_default_certificate_for_the_ingress_controller(rendered: Rendered) -> None:
    for case, secret in (("l2-ranges-lab-ca", "default-tls"),
                         ("dns-shared-ip-cloudflare", "wildcard-tls")):
        [cert] = rendered[case]["default-certificate.yaml"]
        spec = cert["spec"]
        assert cert["metadata"]["namespace"] == "ingress-nginx"
        assert spec["secretName"] == secret
        assert spec["issuerRef"]["kind"] == "ClusterIssuer"
        assert spec["issuerRef"]["name"] in issuers_of(rendered, case)
        _, deploy, _ = controller(rendered, case)
        args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
        assert f"--default-ssl-certificate=ingress-nginx/{secret}" in args
    assert "default-certificate.yaml" not in rendered["single-vm-nodeport"]


def test_http01_ingress_solver_names_one_class_selector(rendered: Rendered) -> None:
    """cert-manager refuses an ingress solver with more than one of ingressClassName, class
    and name (ACMEChallengeSolverHTTP01Ingress)."""
    for case in CASES:
        for issuer in issuers_of(rendered, case).values():
            for solver in issuer["spec"].get("acme", {}).get("solvers", []):
                ing = solver.get("http01", {}).get("ingress")
                if ing is not None:
                    assert len({"ingressClassName", "class", "name"} & set(ing)) <= 1


def test_no_deprecated_metallb_annotation_prefix_is_written_or_documented() -> None:
    """MetalLB deprecated the ``metallb.universe.tf/`` annotation prefix in v0.14.9 (v0.16.1
    release notes, metallb#2495): roles and READMEs use ``metallb.io/`` (links to the old
    website, https://metallb.universe.tf/..., are not annotations)."""
    repo = Path(__file__).resolve().parent.parent
    files = [*repo.glob("roles/*/templates/*"), *repo.glob("roles/*/*/*.yml"),
             *repo.glob("roles/*/README.md"), repo / "README.md", *repo.glob("docs/*.md")]
    hits = [f"{f.relative_to(repo)}:{n}" for f in files if f.is_file()
            for n, line in enumerate(f.read_text().splitlines(), 1)
            if "metallb.universe.tf/" in line.replace("https://metallb.universe.tf/", "")]
    assert hits == []
