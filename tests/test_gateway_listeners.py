"""The Gateway's data plane on ports 80/443 of a node (gateway_api_service_mode: HostPort) and
its HTTPS listener while the certificate Secret does not exist yet (ingress_controller:
gateway; issue 16). Fast: the simulated API server runs in process.

What NGINX Gateway Fabric v2.6.7 does, encoded in tests/simulator/gateway.py with its sources:
- HostPort: the NginxProxy's ``kubernetes.daemonSet`` makes the data plane a DaemonSet
  (internal/controller/provisioner/objects.go, buildNginxDeployment) whose NGINX container
  ports - one per listener port - get the ``container.hostPorts`` (applyUserConfiguration);
  NGINX runs as UID 101 without capabilities and binds 80/443 in its pod's network namespace
  through the pod sysctl ``net.ipv4.ip_unprivileged_port_start=0``
  (buildNginxPodTemplateSpec). The node's port reaches the pod through the CNI's portmap
  plugin (both pinned CNIs chain it: roles/cni/templates/kube-flannel.yaml.j2, calico's
  manifests/calico.yaml cni_network_config) - simulated here as the node's listener.
- A listener whose certificateRefs Secret is missing: Accepted, ResolvedRefs and Programmed
  False (reasons InvalidCertificateRef, InvalidCertificateRef, Invalid; message
  'tls.certificateRefs[0]: Invalid value: {"Namespace":...,"Name":...}: Secret ns/name does
  not exist': internal/controller/state/graph/gateway_listener.go, state/resolver/resolver.go,
  state/conditions/conditions.go NewListenerAllInvalidCertificateRefs, the expected text from
  state/graph/gateway_test.go); the Gateway stays Accepted (reason ListenersNotValid) and
  Programmed while another listener is valid, Accepted/Programmed False when none is
  (internal/controller/status/prepare_requests.go, prepareGatewayRequest).

The role's side runs for real: its templates render the manifests (Ansible), and its own
tasks (tasks/wait.yml, tasks/listener.yml) run in Ansible with the simulated kubectl against
the simulated API server: cert-manager's pending Secret does not hang or fail the run, a
user's Secret that does not exist fails it, named."""

from __future__ import annotations

import copy
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from simulator.httpapi import SimApi as Api
from simulator.httpapi import crd, kubeadm_cluster, started_cluster
from simulator.server import SimServer
from test_gateway_api import one

from provision.runner import run_playbook

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
UPSTREAM = TESTS / "data" / "addons" / "nginx-gateway-fabric-v2.6.7-deploy.yaml"
NS = "nginx-gateway"
GW_API = "/apis/gateway.networking.k8s.io/v1"


# --- the role's rendered manifests ----------------------------------------------------------------

RENDER_CASES: dict[str, dict[str, Any]] = {
    "hostport": {"gateway_api_service_mode": "HostPort", "gateway_api_tls_secret": "gateway-tls",
                 "gateway_api_tls_hostname": "lab.example.test",
                 "gateway_api_cluster_issuer": "letsencrypt"},
    "loadbalancer": {"metallb_addresses": ["10.0.0.200-10.0.0.210"]},
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[dict]]]:
    """case -> file -> documents, rendered by the role's tasks/render.yml in Ansible."""
    base = tmp_path_factory.mktemp("gateway-listeners")
    hosts = {}
    for case, values in RENDER_CASES.items():
        (base / case).mkdir()
        shutil.copy(UPSTREAM, base / case / "nginx-gateway-fabric-deploy-v2.6.7.yaml")
        hosts[case] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                       "gateway_api_manifest_dir": str(base / case),
                       "cert_manager_manifest_dir": str(base / case), **values}
    inv = base / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    result = run_playbook(command="test-render", inventory=inv, quiet=True,
                          playbook=str(TESTS / "playbooks/render-gateway.yml"))
    assert result.ok, result.errors
    return {case: {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d]
                   for p in (base / case).glob("*.yaml")} for case in RENDER_CASES}



# --- the simulated cluster ------------------------------------------------------------------------

@pytest.fixture
def sim() -> Iterator[tuple[SimServer, Api]]:
    """The simulated API server with two Ready nodes and the CRDs the Gateway path needs."""
    server, api = started_cluster((
            crd("gateway.networking.k8s.io", "gatewayclasses", "GatewayClass", "v1", "Cluster"),
            crd("gateway.networking.k8s.io", "gateways", "Gateway", "v1"),
            crd("gateway.networking.k8s.io", "httproutes", "HTTPRoute", "v1"),
            crd("gateway.nginx.org", "nginxproxies", "NginxProxy", "v1alpha2"),
            crd("metallb.io", "ipaddresspools", "IPAddressPool", "v1beta1")))
    kubeadm_cluster(api, "1.35.1",
                    namespaces=("kube-system", NS, "provision-smoke", "metallb-system"))
    for node in NODES:
        heartbeat(api, node)
    try:
        yield server, api
    finally:
        server.stop()


NODES = {"n1": "192.0.2.7", "n2": "192.0.2.8"}


def heartbeat(api: Api, node: str) -> list[dict]:
    """A simulated kubelet's heartbeat; returns where that node's proxy is told to listen."""
    body = {"node": node, "kubelet_version": "1.35.1", "addresses": [NODES[node]]}
    code, out = api.call("POST", "/sim/kubelet/heartbeat", body)
    assert code == 200, out
    return out["listeners"]


def _path(doc: dict) -> str:
    group, _, version = doc["apiVersion"].rpartition("/")
    plural = {"Deployment": "deployments", "GatewayClass": "gatewayclasses",
              "Gateway": "gateways", "NginxProxy": "nginxproxies", "HTTPRoute": "httproutes",
              "Service": "services", "Secret": "secrets",
              "IPAddressPool": "ipaddresspools"}[doc["kind"]]
    root = f"/apis/{group}/{version}" if group else f"/api/{version}"
    ns = doc["metadata"].get("namespace")
    return f"{root}/namespaces/{ns}/{plural}" if ns else f"{root}/{plural}"


def install(api: Api, docs: dict[str, list[dict]], gateway: bool = True) -> None:
    """NGF's control plane, class and the role's NginxProxy; the role's Gateway."""
    ngf = docs["nginx-gateway-fabric.yaml"]
    for doc in (one(ngf, "Deployment", "nginx-gateway"), one(ngf, "GatewayClass", "nginx"),
                one(ngf, "NginxProxy")):
        api.create(_path(doc), doc)
    if gateway:
        gw = one(docs["gateway.yaml"], "Gateway")
        api.create(_path(gw), gw)


def get(api: Api, path: str) -> dict:
    code, out = api.call("GET", path)
    assert code == 200, out
    return out


def conditions(obj: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in obj["conditions"]}


# --- HostPort -------------------------------------------------------------------------------------

def test_simulated_hostport_data_plane_is_a_daemonset_with_host_ports(
        sim: tuple[SimServer, Api], rendered: dict) -> None:
    """SIMULATED NGF with the role's HostPort NginxProxy: the data plane is a DaemonSet (no
    Deployment), the NGINX container's ports 80 and 443 carry hostPorts 80 and 443, UID 101
    without capabilities and the unprivileged-port sysctl; the Service is ClusterIP."""
    _, api = sim
    install(api, rendered["hostport"])
    get(api, f"{GW_API}/namespaces/{NS}/gateways/default")  # the controller reconciles
    ds = get(api, f"/apis/apps/v1/namespaces/{NS}/daemonsets/default-nginx")
    code, _ = api.call("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/default-nginx")
    assert code == 404
    pod = ds["spec"]["template"]["spec"]
    [nginx] = pod["containers"]
    assert [(p["containerPort"], p.get("hostPort")) for p in nginx["ports"]] == [(80, 80),
                                                                                (443, 443)]
    assert nginx["securityContext"]["runAsUser"] == 101
    assert nginx["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["sysctls"] == [
        {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    svc = get(api, f"/api/v1/namespaces/{NS}/services/default-nginx")
    assert svc["spec"]["type"] == "ClusterIP" and "externalTrafficPolicy" not in svc["spec"]


def test_simulated_hostport_serves_port_80_of_the_node_through_the_route(
        sim: tuple[SimServer, Api], rendered: dict) -> None:
    """The role's smoke objects through the SIMULATED HostPort data plane: the node where a
    data plane pod runs is told to listen on 0.0.0.0:80 and 0.0.0.0:443; a request to its
    port 80 with the smoke host reaches the echo pod through the HTTPRoute; the smoke task's
    address lookup (the data plane pod's hostIP) is that node's address. In LoadBalancer
    mode no node listens on port 80 of its own (the request goes to the MetalLB address)."""
    server, api = sim
    docs = rendered["hostport"]
    install(api, docs)
    for doc in docs["smoke.yaml"]:
        if doc["kind"] == "Namespace":
            continue
        path = _path(doc) if doc["kind"] != "Deployment" else \
            f"/apis/apps/v1/namespaces/{doc['metadata']['namespace']}/deployments"
        api.create(path, doc)
    get(api, f"{GW_API}/namespaces/{NS}/gateways/default")
    listening = heartbeat(api, "n1")
    assert {"ip": "0.0.0.0", "port": 80} in listening
    assert {"ip": "0.0.0.0", "port": 443} in listening
    pods = get(api, f"/api/v1/namespaces/{NS}/pods?labelSelector="
                    "gateway.networking.k8s.io/gateway-name%3Ddefault")["items"]
    on_n1 = [p for p in pods if p["spec"]["nodeName"] == "n1"]
    assert on_n1 and on_n1[0]["status"]["hostIP"] == "192.0.2.7"
    code, out = api.call("POST", "/sim/ingress/request", {
        "node": "n1", "ip": "0.0.0.0", "port": 80, "host": "smoke.provision.test",
        "path": "/echo?msg=provision-smoke-v2.6.7"})
    assert code == 200, out
    assert (out["code"], out["body"]) == (200, "provision-smoke-v2.6.7")
    [served] = [c for c in server.cluster.calls if c.get("op") == "gateway-request"]
    assert served["backend"] == "provision-smoke/echo" and served["node"] == "n1"


def test_simulated_loadbalancer_mode_has_no_host_port(sim: tuple[SimServer, Api],
                                                      rendered: dict) -> None:
    """The check can fail: the LoadBalancer rendering gives a Deployment without hostPorts,
    and no node listens on 0.0.0.0:80 for it."""
    _, api = sim
    install(api, rendered["loadbalancer"])
    get(api, f"{GW_API}/namespaces/{NS}/gateways/default")
    deploy = get(api, f"/apis/apps/v1/namespaces/{NS}/deployments/default-nginx")
    assert all("hostPort" not in p for p in
               deploy["spec"]["template"]["spec"]["containers"][0]["ports"])
    assert {"ip": "0.0.0.0", "port": 80} not in heartbeat(api, "n1")


# --- the HTTPS listener before its Secret exists --------------------------------------------------

def _gateway(name: str, secret: str, http: bool = True, ns: str = NS) -> dict:
    listeners = [{"name": "http", "protocol": "HTTP", "port": 80}] if http else []
    listeners.append({"name": "https", "protocol": "HTTPS", "port": 443,
                      "tls": {"mode": "Terminate", "certificateRefs": [
                          {"kind": "Secret", "group": "", "name": secret}]}})
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"gatewayClassName": "nginx", "listeners": listeners}}


def _tls_secret(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": NS},
            "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}}


def test_simulated_missing_secret_leaves_the_gateway_programmed(
        sim: tuple[SimServer, Api], rendered: dict) -> None:
    """SIMULATED NGF v2.6.7: the https listener without its Secret is Accepted, ResolvedRefs
    and Programmed False with NGF's reason and message; the http listener is fine; the Gateway
    is Accepted (reason ListenersNotValid) and Programmed. Once the Secret exists (cert-manager
    writes it later) the listener is Programmed and the Gateway's reason is Accepted."""
    _, api = sim
    install(api, rendered["hostport"], gateway=False)
    api.create(f"{GW_API}/namespaces/{NS}/gateways", _gateway("web", "gateway-tls"))
    gw = get(api, f"{GW_API}/namespaces/{NS}/gateways/web")["status"]
    assert conditions(gw) == {"Accepted": ("True", "ListenersNotValid"),
                              "Programmed": ("True", "Programmed")}
    http, https = gw["listeners"]
    assert conditions(http) == {"Accepted": ("True", "Accepted"),
                                "Programmed": ("True", "Programmed"),
                                "ResolvedRefs": ("True", "ResolvedRefs"),
                                "Conflicted": ("False", "NoConflicts")}
    assert conditions(https) == {"Accepted": ("False", "InvalidCertificateRef"),
                                 "ResolvedRefs": ("False", "InvalidCertificateRef"),
                                 "Programmed": ("False", "Invalid")}
    assert {c["message"] for c in https["conditions"]} == {
        'tls.certificateRefs[0]: Invalid value: {"Namespace":"nginx-gateway","Name":'
        '"gateway-tls"}: Secret nginx-gateway/gateway-tls does not exist'}
    # the data plane still opens port 443 (NGF builds ports from every listener)
    ds = get(api, f"/apis/apps/v1/namespaces/{NS}/daemonsets/web-nginx")
    assert [p["containerPort"] for p in ds["spec"]["template"]["spec"]["containers"][0][
        "ports"]] == [80, 443]

    api.create(f"/api/v1/namespaces/{NS}/secrets", _tls_secret("gateway-tls"))
    gw = get(api, f"{GW_API}/namespaces/{NS}/gateways/web")["status"]
    assert conditions(gw) == {"Accepted": ("True", "Accepted"),
                              "Programmed": ("True", "Programmed")}
    assert conditions(gw["listeners"][1])["Programmed"] == ("True", "Programmed")


def test_simulated_https_only_gateway_without_secret_is_not_programmed(
        sim: tuple[SimServer, Api], rendered: dict) -> None:
    """No valid listener at all: NGF reports the Gateway Accepted and Programmed False,
    ListenersNotValid / Invalid, 'The Gateway has no valid listeners' (the role always adds
    the http listener, so its Gateway never gets here)."""
    _, api = sim
    install(api, rendered["hostport"], gateway=False)
    api.create(f"{GW_API}/namespaces/{NS}/gateways", _gateway("tls-only", "nope", http=False))
    gw = get(api, f"{GW_API}/namespaces/{NS}/gateways/tls-only")["status"]
    assert conditions(gw) == {"Accepted": ("False", "ListenersNotValid"),
                              "Programmed": ("False", "Invalid")}
    assert {c["message"] for c in gw["conditions"]} == {"The Gateway has no valid listeners"}


# --- the role's wait and listener check, in Ansible, against the simulated API server -------------

def _kubectl(tmp: Path, url: str) -> tuple[Path, Path]:
    """A bin directory whose kubectl is the simulated one (tests/simulator/cli_kubectl.py),
    and a kubeconfig naming the simulated API server."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "kubectl"
    tool.write_text(f"#!/bin/sh\nPYTHONPATH={TESTS} exec {sys.executable} -m simulator.run "
                    "kubectl 1.35.1 \"$@\"\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    kubeconfig = tmp / "admin.conf"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sim",
        "clusters": [{"name": "sim", "cluster": {"server": url}}],
        "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "admin"}}],
        "users": [{"name": "admin", "user": {}}]}))
    return bin_dir, kubeconfig


HOSTS: dict[str, dict[str, Any]] = {
    # cert-manager's gateway-shim is to issue it (the Gateway's cluster-issuer annotation)
    "shim-pending": {"gateway_api_gateway_name": "shim", "gateway_api_tls_secret": "shim-tls",
                     "gateway_api_tls_hostname": "lab.example.test",
                     "gateway_api_cluster_issuer": "letsencrypt"},
    # cert_manager_default_certificate is to issue it
    "certificate-pending": {"gateway_api_gateway_name": "own", "gateway_api_tls_secret": "own-tls",
                            "cert_manager_default_certificate": {
                                "issuer": "lab-ca", "namespace": NS, "secret_name": "own-tls",
                                "dns_names": ["*.example.test"]}},
    # a Secret the user named that does not exist (and nothing will write)
    "user-secret-missing": {"gateway_api_gateway_name": "byo",
                            "gateway_api_tls_secret": "byo-tls"},
    # a certificate for another namespace does not write this one
    "certificate-elsewhere": {"gateway_api_gateway_name": "other",
                              "gateway_api_tls_secret": "other-tls",
                              "cert_manager_default_certificate": {
                                  "issuer": "lab-ca", "secret_name": "other-tls",
                                  "dns_names": ["*.example.test"]}},
    # a Secret the user created
    "user-secret-present": {"gateway_api_gateway_name": "have",
                            "gateway_api_tls_secret": "have-tls"},
}


def test_role_waits_and_checks_the_https_listener_against_the_simulator(
        sim: tuple[SimServer, Api], rendered: dict, tmp_path: Path) -> None:
    """The role's tasks/wait.yml (Programmed) and tasks/listener.yml, in Ansible with the
    simulated kubectl, against SIMULATED NGF Gateways: a Secret cert-manager is to issue
    neither hangs the wait nor fails the run (the listener's state is reported, naming the
    Secret and NGF's message); a user's Secret that does not exist fails the run in the
    listener check, naming the Secret and NGF's reason; the wait itself passes for all
    (Programmed, as NGF reports it); an existing Secret passes silently."""
    server, api = sim
    install(api, rendered["hostport"], gateway=False)
    for values in HOSTS.values():
        api.create(f"{GW_API}/namespaces/{NS}/gateways",
                   _gateway(values["gateway_api_gateway_name"], values["gateway_api_tls_secret"]))
    api.create(f"/api/v1/namespaces/{NS}/secrets", _tls_secret("have-tls"))
    bin_dir, kubeconfig = _kubectl(tmp_path, server.url)
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                    "gateway_api_kubeconfig": str(kubeconfig), "gateway_api_wait_timeout": 20,
                    "sim_kubectl_bin": str(bin_dir),
                    **copy.deepcopy(values)} for name, values in HOSTS.items()}
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    result = run_playbook(command="test-gateway-listener",
                          playbook=str(TESTS / "playbooks/gateway-listener.yml"), inventory=inv,
                          quiet=True)
    failed = {f.host: f for f in result.failures}
    assert set(failed) == {"user-secret-missing", "certificate-elsewhere"}, \
        {h: (f.task, f.message) for h, f in failed.items()}
    for host, secret in (("user-secret-missing", "byo-tls"), ("certificate-elsewhere",
                                                               "other-tls")):
        f = failed[host]
        assert f.task == "Check that the HTTPS listener has its certificate", f.task
        assert f"cannot use Secret nginx-gateway/{secret} (gateway_api_tls_secret)" in f.message
        assert f"InvalidCertificateRef: tls.certificateRefs[0]: Invalid value: " \
               f'{{"Namespace":"nginx-gateway","Name":"{secret}"}}: Secret ' \
               f"nginx-gateway/{secret} does not exist" in f.message, f.message
    reported = {e["host"] for e in result.events if e["event"] == "runner_on_ok"
                and e.get("task") == "Report the HTTPS listener waiting for cert-manager's "
                                     "certificate"}
    assert reported == {"shim-pending", "certificate-pending"}, reported
    log = " ".join(result.log_path.read_text().split())
    assert "waits for Secret nginx-gateway/shim-tls, which cert-manager issues (ClusterIssuer " \
           "letsencrypt through the gateway-shim)" in log, log[-3000:]
    assert "waits for Secret nginx-gateway/own-tls, which cert-manager issues " \
           "(cert_manager_default_certificate); until then NGINX Gateway Fabric reports: " \
           "InvalidCertificateRef: tls.certificateRefs[0]" in log, log[-3000:]
    waited = {e["host"] for e in result.events if e["event"] == "runner_on_ok"
              and (e.get("task") or "").startswith("Wait for gateway/")}
    assert waited == set(HOSTS)
