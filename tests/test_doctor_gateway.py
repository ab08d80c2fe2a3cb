"""doctor knows ``ingress_controller: gateway`` (issue 16): the downloads it probes are the
Gateway's (Gateway API CRDs and NGINX Gateway Fabric manifests from raw.githubusercontent.com
or the github_raw_url mirror, NGF's images from ghcr.io on every node) instead of
ingress-nginx's, and the exposure it checks in the firewall and the node mesh is the Gateway's
(80/443 through MetalLB, or its node ports in NodePort mode). Pure: no host is contacted."""

from __future__ import annotations

from provision.doctor import engine
from provision.doctor.netchecks import GHCR, RAW_GITHUB, check_urls, firewall_ports
from provision.inventory import Host

POOL = {"metallb_addresses": ["10.0.0.200-10.0.0.210"]}


def _host(name: str, groups: list[str], **values: object) -> Host:
    return Host(name, groups, {"ansible_host": "10.0.0.10", **values})


def test_gateway_downloads_replace_ingress_nginx_on_the_first_control_plane() -> None:
    cp = _host("cp1", ["control_plane"], ingress_controller="gateway", **POOL)
    needs = dict(engine.host_needs(cp, first_control_plane=True))
    assert "Gateway API CRD and NGINX Gateway Fabric" in needs[RAW_GITHUB]
    assert "MetalLB" in needs[RAW_GITHUB] and "ingress-nginx" not in needs[RAW_GITHUB]
    assert "nginx-gateway-fabric" in needs[GHCR]
    classic = dict(engine.host_needs(_host("cp1", ["control_plane"], **POOL), True))
    assert "ingress-nginx" in classic[RAW_GITHUB]
    assert "nginx-gateway-fabric" not in classic[GHCR]  # ghcr.io: flannel's images only


def test_every_node_pulls_the_gateway_images_but_only_the_first_downloads_manifests() -> None:
    worker = _host("w1", ["workers"], ingress_controller="gateway")
    needs = dict(engine.host_needs(worker, first_control_plane=False))
    assert GHCR in needs and RAW_GITHUB not in needs


def test_gateway_manifests_come_from_the_raw_github_mirror() -> None:
    cp = _host("cp1", ["control_plane"], ingress_controller="gateway",
               github_raw_url="https://mirror.example/raw")
    urls = [u for u, _ in engine.host_needs(cp, first_control_plane=True)]
    assert "https://mirror.example/raw/" in urls and RAW_GITHUB not in urls


def test_an_unreachable_ghcr_fails_and_names_the_gateway() -> None:
    spec = engine.host_spec(_host("w1", ["workers"], ingress_controller="gateway"), None)
    rows = "".join(f"{u}\t0 200\t\n" for u in spec.urls if u != GHCR)
    rows += f"{GHCR}\t6 000\tcurl: (6) Could not resolve host: ghcr.io\n"
    [bad] = [r for r in check_urls(spec, {"urls": rows}) if r.status != "PASS"]
    assert bad.status == "FAIL" and bad.check == f"https {GHCR}"
    assert "NGINX Gateway Fabric's images" in bad.message


def test_firewall_and_mesh_check_the_gateway_exposure() -> None:
    lb = engine.host_spec(_host("cp1", ["control_plane"], ingress_controller="gateway", **POOL),
                          [])
    assert lb.gateway and not lb.ingress
    assert [(p, why) for p, _, why in firewall_ports(lb) if p in (80, 443)] == [
        (80, "Gateway HTTP"), (443, "Gateway HTTPS")]
    np_host = _host("cp1", ["control_plane"], ingress_controller="gateway",
                    gateway_api_service_mode="NodePort", gateway_api_http_node_port=31080)
    np = engine.host_spec(np_host, [])
    assert np.gateway_node_ports == (31080, 30443)
    assert [(p, why) for p, _, why in firewall_ports(np) if why.startswith("Gateway")] == [
        (31080, "Gateway NodePort"), (30443, "Gateway NodePort")]
    assert not {80, 443} & {p for p, _, _ in firewall_ports(np)}
    assert engine.gateway_node_ports(_host("cp1", ["control_plane"],
                                           gateway_api_service_mode="NodePort")) == ()
    minikube = _host("m", [], provision_mode="minikube", ingress_controller="gateway")
    assert not engine.host_spec(minikube, []).gateway
