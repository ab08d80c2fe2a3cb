"""cert-manager issuing for the Gateway (ingress_controller: gateway; issue 16).

The objects come from a real Ansible run of the roles' own render tasks
(tests/playbooks/render-gateway-certs.yml): the Gateway with ``cert-manager.io/cluster-issuer``
and an HTTPS listener hostname, a ClusterIssuer whose HTTP-01 solver is ``gatewayHTTPRoute``
with parentRefs to that Gateway, and cert-manager's release manifest with
``--enable-gateway-api`` (cert-manager v1.21.1 keeps Gateway API support off by default:
internal/apis/config/controller/v1alpha1/defaults.go; the flag is in
cmd/controller/app/options/options.go). They are checked against the published schemas
(Gateway API v1.5.1 CRDs; cert-manager's API types written down in tests/api_schemas), then
played through the SIMULATED cert-manager and NGINX Gateway Fabric (tests/simulator/
certmanager.py, gateway.py; in process): the gateway-shim's Certificate, the challenge's
HTTPRoute, and an HTTP-01 request through the Gateway answered by the solver. Simulated: the
controllers and the data path; no ACME server is contacted (the test creates the Challenge as
cert-manager's order controller would). Seeded manifest: the reduced v1.16.2 copy in
tests/data/addons (the v1.21.1 asset cannot be downloaded here; its controller Deployment has
the same labels in the v1.21.1 chart, deploy/charts/cert-manager/templates/deployment.yaml)."""

from __future__ import annotations

import copy
import json
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_schemas import openapi
from api_schemas.validator import validate as validate_core
from simulator import certmanager
from simulator.httpapi import SimApi as Api
from simulator.httpapi import crd, kubeadm_cluster, started_cluster
from test_gateway_api import one

from provision import gateway
from provision.runner import run_playbook

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
DATA = TESTS / "data" / "addons"
SCHEMAS: dict[str, dict] = json.loads((DATA / "gateway-crd-schemas.json").read_text())
SEED = DATA / "cert-manager-v1.16.2.yaml"
HOST = "lab.example.test"

CASES: dict[str, dict[str, Any]] = {
    "acme-through-gateway": {
        "ingress_controller": "gateway",
        "cert_manager_version": "v1.16.2",  # the seeded copy's release
        "metallb_addresses": ["10.0.0.200-10.0.0.210"],
        "gateway_api_tls_secret": "gateway-tls",
        "gateway_api_tls_hostname": HOST,
        "gateway_api_cluster_issuer": "letsencrypt-staging",
        "acme_email": "ops@example.org",
        "cert_manager_cluster_issuers": [
            {"name": "letsencrypt-staging", "type": "acme", "server": "staging"},
            {"name": "lab-ca", "type": "ca"}],
    },
    "ingress-nginx": {  # unchanged behaviour: Ingress solver, no flag, no annotation
        "cert_manager_version": "v1.16.2",
        "acme_email": "ops@example.org",
        "cert_manager_cluster_issuers": [
            {"name": "letsencrypt-staging", "type": "acme", "server": "staging"}],
    },
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[dict]]]:
    base = tmp_path_factory.mktemp("gateway-certs")
    hosts = {}
    for case, values in CASES.items():
        out = base / case
        out.mkdir()
        shutil.copy(DATA / "nginx-gateway-fabric-v2.6.7-deploy.yaml",
                    out / "nginx-gateway-fabric-deploy-v2.6.7.yaml")
        shutil.copy(SEED, out / "cert-manager-v1.16.2.yaml")
        hosts[case] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                       "gateway_api_manifest_dir": str(out), "cert_manager_manifest_dir": str(out),
                       **values}
    inv = base / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    playbook = str(TESTS / "playbooks" / "render-gateway-certs.yml")
    first = run_playbook(command="test-render", playbook=playbook, inventory=inv, quiet=True)
    assert first.ok, first.errors
    second = run_playbook(command="test-render", playbook=playbook, inventory=inv, quiet=True)
    assert second.ok, second.errors
    assert {h: second.hosts[h]["changed"] for h in CASES} == {h: 0 for h in CASES}
    return {case: {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d]
                   for p in (base / case).glob("*.yaml")} for case in CASES}



def test_gateway_is_annotated_and_its_https_listener_named(rendered: dict) -> None:
    gw = one(rendered["acme-through-gateway"]["gateway.yaml"], "Gateway")
    assert gw["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer":
                                             "letsencrypt-staging"}
    https = next(ln for ln in gw["spec"]["listeners"] if ln["name"] == "https")
    assert https["hostname"] == HOST
    assert openapi.validate(gw, SCHEMAS) == []
    # the shim takes this listener (v1.21.1 validateGatewayListenerBlock)
    assert certmanager.listener_problems(https, gw["metadata"]["namespace"]) == []


def test_cluster_issuer_solves_http01_through_the_gateway(rendered: dict) -> None:
    docs = rendered["acme-through-gateway"]["cluster-issuers.yaml"]
    issuer = one(docs, "ClusterIssuer", "letsencrypt-staging")
    assert validate_core(issuer) == []
    gw = one(rendered["acme-through-gateway"]["gateway.yaml"], "Gateway")
    [solver] = issuer["spec"]["acme"]["solvers"]
    route = solver["http01"]["gatewayHTTPRoute"]
    assert route["serviceType"] == "ClusterIP"
    assert route["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                    "name": gw["metadata"]["name"],
                                    "namespace": gw["metadata"]["namespace"],
                                    "sectionName": "http"}]
    assert "http" in {ln["name"] for ln in gw["spec"]["listeners"]}
    plain = one(rendered["ingress-nginx"]["cluster-issuers.yaml"], "ClusterIssuer")
    assert plain["spec"]["acme"]["solvers"] == [{"http01": {"ingress": {
        "ingressClassName": "nginx"}}}]


def test_schema_check_refuses_a_bad_solver(rendered: dict) -> None:
    """The check can fail: an unknown solver field and a parentRef without a name."""
    issuer = copy.deepcopy(one(rendered["acme-through-gateway"]["cluster-issuers.yaml"],
                               "ClusterIssuer", "letsencrypt-staging"))
    route = issuer["spec"]["acme"]["solvers"][0]["http01"]["gatewayHTTPRoute"]
    route["gatewayName"] = "default"
    route["parentRefs"][0].pop("name")
    problems = validate_core(issuer)
    where = "spec.acme.solvers[0].http01.gatewayHTTPRoute"
    assert problems == [f"{where}: unknown field 'gatewayName' (known: labels, parentRefs, "
                        "podTemplate, serviceType)",
                        f"{where}.parentRefs[0]: required field 'name' is missing"], problems


def test_cert_manager_runs_with_gateway_api_only_in_gateway_mode(rendered: dict) -> None:
    """The flag is added to the controller Deployment only; every other object is the release
    manifest's; ingress-nginx mode applies the downloaded file as it is (no rendered copy)."""
    upstream = [d for d in yaml.safe_load_all(SEED.read_text()) if d]
    mine = copy.deepcopy(rendered["acme-through-gateway"]["cert-manager-v1.16.2-gateway-api.yaml"])
    assert len(mine) == len(upstream)
    for theirs, ours in zip(upstream, mine, strict=True):
        if theirs["kind"] == "Deployment" and theirs["metadata"]["name"] == "cert-manager":
            [c] = ours["spec"]["template"]["spec"]["containers"]
            [u] = theirs["spec"]["template"]["spec"]["containers"]
            assert c["args"] == u["args"] + [certmanager.FLAG]
            c["args"] = u["args"]
        assert ours == theirs
    assert "cert-manager-v1.16.2-gateway-api.yaml" not in rendered["ingress-nginx"]


def test_checksum_pin_is_the_default_for_the_pinned_release() -> None:
    from provision import pins

    pin = pins.BY_COMPONENT["cert-manager"]
    text = (REPO / "roles/cert_manager/defaults/main.yml").read_text()
    assert f"sha256:{pin.checksum}' if cert_manager_version == '{pin.version}'" in text
    assert "1.33-1.36" in pin.why


def test_gateway_issuer_needs_secret_and_hostname() -> None:
    base = {"ingress_controller": "gateway", "gateway_api_service_mode": "NodePort"}
    assert gateway.problems({**base, "gateway_api_cluster_issuer": "le",
                             "gateway_api_tls_secret": "t", "gateway_api_tls_hostname": HOST}) == []
    [p] = gateway.problems({**base, "gateway_api_cluster_issuer": "le",
                            "gateway_api_tls_secret": "t"})
    assert "gateway_api_cluster_issuer: 'le' needs gateway_api_tls_hostname" in p


# --- the objects through the simulated cert-manager and NGINX Gateway Fabric ---------------------

def _path(doc: dict) -> str:
    group, _, version = doc["apiVersion"].rpartition("/")
    plural = {"Deployment": "deployments", "GatewayClass": "gatewayclasses",
              "Gateway": "gateways", "ClusterIssuer": "clusterissuers",
              "Challenge": "challenges", "Namespace": "namespaces",
              "IPAddressPool": "ipaddresspools"}[doc["kind"]]
    root = f"/apis/{group}/{version}" if group else f"/api/{version}"
    ns = doc["metadata"].get("namespace")
    return f"{root}/namespaces/{ns}/{plural}" if ns else f"{root}/{plural}"


@pytest.fixture
def api() -> Iterator[Api]:
    server, a = started_cluster((
            crd("gateway.networking.k8s.io", "gatewayclasses", "GatewayClass", "v1", "Cluster"),
            crd("gateway.networking.k8s.io", "gateways", "Gateway", "v1"),
            crd("gateway.networking.k8s.io", "httproutes", "HTTPRoute", "v1"),
            crd("cert-manager.io", "clusterissuers", "ClusterIssuer", "v1", "Cluster"),
            crd("cert-manager.io", "certificates", "Certificate", "v1"),
            crd("acme.cert-manager.io", "challenges", "Challenge", "v1"),
            crd("metallb.io", "ipaddresspools", "IPAddressPool", "v1beta1")))
    kubeadm_cluster(a, "1.35.1", nodes=[("n1", "192.0.2.7")])
    try:
        yield a
    finally:
        server.stop()


def _cluster(api: Api, docs: dict[str, list[dict]], manifest: str) -> dict:
    """NGF's control plane and class (upstream manifest), MetalLB, the rendered Gateway and
    ClusterIssuer, cert-manager's controller Deployment from ``manifest``; returns the Gateway."""
    for ns in ("nginx-gateway", "cert-manager", "metallb-system"):
        api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": ns}})
    ngf = docs["nginx-gateway-fabric.yaml"]
    for doc in (one(ngf, "Deployment", "nginx-gateway"), one(ngf, "GatewayClass", "nginx")):
        api.create(_path(doc), doc)
    ctrl = {"component": "controller"}
    api.create("/apis/apps/v1/namespaces/metallb-system/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "controller", "namespace": "metallb-system"},
        "spec": {"replicas": 1, "selector": {"matchLabels": ctrl},
                 "template": {"metadata": {"labels": ctrl},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    pool = {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "lab", "namespace": "metallb-system"},
            "spec": {"addresses": ["10.0.0.200-10.0.0.210"]}}
    api.create(_path(pool), pool)
    deploy = one(docs[manifest], "Deployment", "cert-manager")
    api.create(_path(deploy), deploy)
    api.create(_path(one(docs["cluster-issuers.yaml"], "ClusterIssuer", "letsencrypt-staging")),
               one(docs["cluster-issuers.yaml"], "ClusterIssuer", "letsencrypt-staging"))
    gw = one(docs["gateway.yaml"], "Gateway")
    api.create(_path(gw), gw)
    return gw


def test_simulated_http01_challenge_through_the_gateway(api: Api, rendered: dict) -> None:
    """SIMULATED cert-manager v1.21.1 + NGF: the shim makes the Certificate for the annotated
    Gateway's HTTPS listener; a Challenge with the issuer's solver (parentRef override from the
    Certificate's annotations) gets an HTTPRoute that is valid against the Gateway API v1.5.1
    HTTPRoute schema; an HTTP-01 request to the Gateway's address for the host and token is
    answered with the key by the solver; another token gets the solver's 404."""
    docs = rendered["acme-through-gateway"]
    gw = _cluster(api, docs, "cert-manager-v1.16.2-gateway-api.yaml")
    ns = gw["metadata"]["namespace"]
    code, certs = api.call("GET", f"/apis/cert-manager.io/v1/namespaces/{ns}/certificates")
    assert code == 200, certs
    [cert] = certs["items"]
    assert cert["metadata"]["name"] == "gateway-tls"
    assert cert["spec"]["dnsNames"] == [HOST] and cert["spec"]["secretName"] == "gateway-tls"
    assert cert["spec"]["issuerRef"] == {"name": "letsencrypt-staging", "kind": "ClusterIssuer",
                                         "group": "cert-manager.io"}
    assert validate_core({"apiVersion": cert["apiVersion"], "kind": cert["kind"],
                          "metadata": {"name": "gateway-tls", "namespace": ns},
                          "spec": cert["spec"]}) == []
    assert cert["metadata"]["ownerReferences"][0]["kind"] == "Gateway"

    issuer = one(docs["cluster-issuers.yaml"], "ClusterIssuer", "letsencrypt-staging")
    solver = certmanager.order_solver(issuer["spec"]["acme"]["solvers"][0], cert)
    assert solver["http01"]["gatewayHTTPRoute"]["parentRefs"] == [
        {"name": gw["metadata"]["name"], "namespace": ns, "kind": "Gateway",
         "group": "gateway.networking.k8s.io"}]
    challenge = {"apiVersion": "acme.cert-manager.io/v1", "kind": "Challenge",
                 "metadata": {"name": "gateway-tls-1-2-3", "namespace": ns},
                 "spec": {"type": "HTTP-01", "dnsName": HOST, "token": "tok-123",
                          "key": "tok-123.thumbprint", "solver": solver,
                          "url": "https://acme.test/chal/1", "authorizationURL": "x",
                          "issuerRef": cert["spec"]["issuerRef"]}}
    api.create(_path(challenge), challenge)
    code, routes = api.call("GET", f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes")
    [route] = routes["items"]
    route = {k: v for k, v in route.items() if k != "status"}
    assert openapi.validate(route, SCHEMAS) == [], route
    assert route["spec"]["hostnames"] == [HOST]

    code, svc = api.call("GET", f"/api/v1/namespaces/{ns}/services/default-nginx")
    assert code == 200, svc
    ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]

    def ask(path: str, host: str = HOST) -> tuple[int, str]:
        code, out = api.call("POST", "/sim/ingress/request",
                             {"node": "n1", "ip": ip, "port": 80, "host": host, "path": path})
        assert code == 200, out
        return out["code"], out["body"]

    assert ask("/.well-known/acme-challenge/tok-123") == (200, "tok-123.thumbprint")
    assert ask("/.well-known/acme-challenge/other")[0] == 404
    assert ask("/.well-known/acme-challenge/tok-123", "other.example.test")[0] == 404


def test_simulated_without_the_flag_no_certificate(api: Api, rendered: dict) -> None:
    """The same Gateway with cert-manager's unmodified manifest (no --enable-gateway-api):
    the simulated shim does nothing, as cert-manager v1.21.1 does by default."""
    docs = dict(rendered["acme-through-gateway"])
    docs["upstream"] = [d for d in yaml.safe_load_all(SEED.read_text()) if d]
    gw = _cluster(api, docs, "upstream")
    code, certs = api.call(
        "GET", f"/apis/cert-manager.io/v1/namespaces/{gw['metadata']['namespace']}/certificates")
    assert code == 200 and certs["items"] == []


# --- a real ACME CA (Debian's Pebble) validates through the simulated Gateway -----------------

def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class AcmeClient:
    """The few RFC 8555 requests cert-manager's ACME client makes (ES256 account key):
    account, order, authorization, challenge response, finalize, download. Test code."""

    def __init__(self, directory: str, ca_file: Path) -> None:
        import ssl

        from cryptography.hazmat.primitives.asymmetric import ec

        self.ctx = ssl.create_default_context(cafile=str(ca_file))
        self.dir = self._json(urllib.request.Request(directory))[0]
        self.key = ec.generate_private_key(ec.SECP256R1())
        nums = self.key.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC", "x": _b64(nums.x.to_bytes(32, "big")),
                    "y": _b64(nums.y.to_bytes(32, "big"))}
        self.kid: str | None = None

    def _json(self, req: urllib.request.Request) -> tuple[Any, Any]:
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
            body = resp.read()
            ctype = resp.headers.get("Content-Type", "")
            return (json.loads(body) if "json" in ctype else body.decode()), resp.headers

    def _nonce(self) -> str:
        req = urllib.request.Request(self.dir["newNonce"], method="HEAD")
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
            return resp.headers["Replay-Nonce"]

    def post(self, url: str, payload: Any) -> tuple[Any, Any]:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        protected = {"alg": "ES256", "nonce": self._nonce(), "url": url,
                     **({"kid": self.kid} if self.kid else {"jwk": self.jwk})}
        p64 = _b64(json.dumps(protected).encode())
        b64 = "" if payload is None else _b64(json.dumps(payload).encode())
        r, s = decode_dss_signature(self.key.sign(f"{p64}.{b64}".encode(),
                                                  ec.ECDSA(hashes.SHA256())))
        body = {"protected": p64, "payload": b64,
                "signature": _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))}
        return self._json(urllib.request.Request(
            url, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/jose+json"}))

    def thumbprint(self) -> str:
        import hashlib

        canon = json.dumps(self.jwk, sort_keys=True, separators=(",", ":")).encode()
        return _b64(hashlib.sha256(canon).digest())

    def poll(self, url: str, done: str) -> dict:
        import time

        for _ in range(120):
            obj, _ = self.post(url, None)
            if obj["status"] in (done, "invalid"):
                return obj
            time.sleep(0.5)
        raise AssertionError(f"{url} did not become {done}: {obj}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(shutil.which("pebble") is None or shutil.which("pebble-challtestsrv") is None,
                    reason="Debian's pebble is not installed (apt-get install pebble)")
def test_a_real_ca_validates_http01_through_the_simulated_gateway(
        api: Api, rendered: dict, tmp_path: Path) -> None:
    """REAL ACME CA, SIMULATED cluster: Debian's Pebble (on 127.0.0.1, free ports; challtestsrv
    resolves every name to 127.0.0.1) gets an order for the Gateway's host name from a small
    RFC 8555 client. The challenge's token and key authorization become a Challenge in the
    simulator, as cert-manager's order controller would create it; Pebble's own HTTP-01
    validation request goes to a local port that hands it to the node data path of the
    simulator (the Gateway's MetalLB address, port 80 - what the lab node's kube-proxy does for
    the simulated NGF), where the solver HTTPRoute and the simulated acmesolver answer. Pebble
    marks the authorization valid and issues a certificate for the host name."""
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from test_acme_pebble import _die_with_parent, _tls_files, _wait_port

    docs = rendered["acme-through-gateway"]
    gw = _cluster(api, docs, "cert-manager-v1.16.2-gateway-api.yaml")
    ns = gw["metadata"]["namespace"]
    code, certs = api.call("GET", f"/apis/cert-manager.io/v1/namespaces/{ns}/certificates")
    [cert] = certs["items"]
    _, svc = api.call("GET", f"/api/v1/namespaces/{ns}/services/default-nginx")
    lb_ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    served: list[tuple[str, str, int]] = []

    class NodePath(BaseHTTPRequestHandler):  # the node's data path to the Gateway (simulated)
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            code, out = api.call("POST", "/sim/ingress/request", {
                "node": "n1", "ip": lb_ip, "port": 80, "host": self.headers.get("Host", ""),
                "path": self.path})
            body = (out.get("body") or "").encode() if code == 200 else b""
            status = out["code"] if code == 200 else 502
            served.append((self.headers.get("Host", ""), self.path, status))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    http_port, acme_port, mgmt_port, dns_port, chall_port = (_free_port() for _ in range(5))
    front = ThreadingHTTPServer(("127.0.0.1", http_port), NodePath)
    threading.Thread(target=front.serve_forever, daemon=True).start()
    ca_pem, tls_cert, tls_key = _tls_files(tmp_path, "127.0.0.1")
    (tmp_path / "pebble.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{acme_port}", "managementListenAddress":
        f"127.0.0.1:{mgmt_port}", "certificate": str(tls_cert), "privateKey": str(tls_key),
        "httpPort": http_port, "tlsPort": _free_port(), "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
             "-dns01", f"127.0.0.1:{dns_port}", "-management", f"127.0.0.1:{chall_port}",
             "-http01", "", "-https01", "", "-tlsalpn01", ""],
            stdout=(tmp_path / "chall.log").open("wb"), stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent))
        _wait_port("127.0.0.1", chall_port, procs[0], tmp_path / "chall.log")
        procs.append(subprocess.Popen(
            ["pebble", "-config", str(tmp_path / "pebble.json"),
             "-dnsserver", f"127.0.0.1:{dns_port}"],
            stdout=(tmp_path / "pebble.log").open("wb"), stderr=subprocess.STDOUT,
            env={**__import__("os").environ, "PEBBLE_VA_NOSLEEP": "1",
                 "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"},
            cwd=tmp_path, preexec_fn=_die_with_parent))
        _wait_port("127.0.0.1", acme_port, procs[1], tmp_path / "pebble.log")

        acme = AcmeClient(f"https://127.0.0.1:{acme_port}/dir", ca_pem)
        _, headers = acme.post(acme.dir["newAccount"], {"termsOfServiceAgreed": True})
        acme.kid = headers["Location"]
        order, headers = acme.post(acme.dir["newOrder"], {
            "identifiers": [{"type": "dns", "value": h} for h in cert["spec"]["dnsNames"]]})
        order_url = headers["Location"]
        [authz_url] = order["authorizations"]
        authz, _ = acme.post(authz_url, None)
        [chal] = [c for c in authz["challenges"] if c["type"] == "http-01"]
        key_auth = f"{chal['token']}.{acme.thumbprint()}"

        issuer = one(docs["cluster-issuers.yaml"], "ClusterIssuer", "letsencrypt-staging")
        challenge = {"apiVersion": "acme.cert-manager.io/v1", "kind": "Challenge",
                     "metadata": {"name": "gateway-tls-pebble", "namespace": ns},
                     "spec": {"type": "HTTP-01", "dnsName": authz["identifier"]["value"],
                              "token": chal["token"], "key": key_auth, "url": chal["url"],
                              "authorizationURL": authz_url,
                              "solver": certmanager.order_solver(
                                  issuer["spec"]["acme"]["solvers"][0], cert),
                              "issuerRef": cert["spec"]["issuerRef"]}}
        api.create(_path(challenge), challenge)
        code, shown = api.call("GET", f"/apis/acme.cert-manager.io/v1/namespaces/{ns}/"
                                      "challenges/gateway-tls-pebble")
        assert shown["status"]["presented"] is True

        acme.post(chal["url"], {})
        done = acme.poll(authz_url, "valid")
        assert done["status"] == "valid", (done, served, (tmp_path / "pebble.log").read_text())
        # Pebble asked on its httpPort (a free port here, 80 in real life): Host carries it
        assert (f"{HOST}:{http_port}", f"/.well-known/acme-challenge/{chal['token']}",
                200) in served

        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
               .sign(key, hashes.SHA256()))
        acme.post(order["finalize"], {"csr": _b64(csr.public_bytes(serialization.Encoding.DER))})
        final = acme.poll(order_url, "valid")
        pem, _ = acme.post(final["certificate"], None)
        leaf = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == [HOST]
    finally:
        front.shutdown()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def test_simulated_api_server_refuses_what_the_schemas_refuse(api: Api, rendered: dict) -> None:
    """The simulated API server validates Gateway API and cert-manager objects on create and
    update (tests/simulator/certmanager.py schema_problems): the rendered ones are accepted,
    a broken copy gets 422 Invalid naming the field, as kubectl apply would show."""
    docs = rendered["acme-through-gateway"]
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": "nginx-gateway"}})
    issuer = one(docs["cluster-issuers.yaml"], "ClusterIssuer", "letsencrypt-staging")
    gw = one(docs["gateway.yaml"], "Gateway")
    bad_issuer = copy.deepcopy(issuer)
    bad_issuer["metadata"]["name"] = "broken"
    bad_issuer["spec"]["acme"]["solvers"][0]["http01"]["gatewayHTTPRoute"]["serviceType"] = "LB"
    code, out = api.call("POST", _path(bad_issuer), bad_issuer)
    assert code == 422 and out["reason"] == "Invalid", out
    assert 'ClusterIssuer.cert-manager.io "broken" is invalid' in out["message"]
    assert "serviceType" in out["message"]
    bad_gw = copy.deepcopy(gw)
    bad_gw["spec"]["listeners"][1]["hostname"] = "Lab.Example.Test"
    code, out = api.call("POST", _path(bad_gw), bad_gw)
    assert code == 422 and "hostname" in out["message"], out
    api.create(_path(issuer), issuer)
    api.create(_path(gw), gw)
    patch = {"spec": {"listeners": [{"name": "x", "port": 0, "protocol": "HTTP"}]}}
    code, out = api.call("PATCH", _path(gw) + "/" + gw["metadata"]["name"], patch)
    assert code == 422 and "minimum" in out["message"], out
