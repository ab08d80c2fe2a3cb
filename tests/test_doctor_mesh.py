"""doctor's node-to-node probes: the plan (which host must reach which port of which other),
the verdicts (FAIL naming the pair, port and the OCI security-list rule), and a live run with
real listeners and probes on loopback addresses (two ``ansible_connection: local`` hosts)."""

from __future__ import annotations

import socket

from provision.doctor import mesh
from provision.doctor.engine import run_mesh
from provision.doctor.model import FAIL, PASS, WARN
from provision.doctor.ssh import Gathered
from provision.inventory import Host

CP = mesh.MeshHost("cp1", "10.0.0.10", True, "10.0.0.0/24")
W1 = mesh.MeshHost("w1", "10.0.0.11", False, "10.0.0.0/24")
W2 = mesh.MeshHost("w2", "10.0.0.12", False, "10.0.0.0/24")


def flows_of(flows: list[mesh.Flow]) -> set[tuple[str, str, int, str]]:
    return {(f.src, f.dst, f.port, f.proto) for f in flows}


def test_plan_for_one_control_plane_two_workers_flannel() -> None:
    got = flows_of(mesh.plan([CP, W1, W2], cni_plugin="flannel", metallb_pool=False,
                             node_port=None))
    pairs = [(a, b) for a in ("cp1", "w1", "w2") for b in ("cp1", "w1", "w2") if a != b]
    expected = {(a, "cp1", 6443, "tcp") for a in ("w1", "w2")}
    expected |= {("cp1", b, 10250, "tcp") for b in ("w1", "w2")}
    expected |= {(a, b, 8472, "udp") for a, b in pairs}
    assert got == expected  # no etcd with one control plane, no 179, no 7946
    assert mesh.listen_ports(mesh.plan([CP, W1, W2], cni_plugin="flannel", metallb_pool=False,
                                       node_port=None), "cp1") == ["6443/tcp", "8472/udp"]


def test_plan_etcd_calico_metallb_and_node_port() -> None:
    cp2 = mesh.MeshHost("cp2", "10.0.0.20", True)
    got = flows_of(mesh.plan([CP, cp2, W1], cni_plugin="calico", metallb_pool=True,
                             node_port=30080))
    for port in (2379, 2380):
        assert ("cp1", "cp2", port, "tcp") in got and ("cp2", "cp1", port, "tcp") in got
        assert not any(f[2] == port and "w1" in f[:2] for f in got)
    assert ("w1", "cp1", 179, "tcp") in got and not any(f[2] == 8472 for f in got)
    assert ("w1", "cp2", 7946, "tcp") in got and ("cp2", "w1", 7946, "udp") in got
    assert ("cp1", "w1", 30080, "tcp") in got


def test_verdicts_fail_names_pair_port_and_rule_warn_for_busy_ports() -> None:
    flows = mesh.plan([CP, W1, W2], cni_plugin="flannel", metallb_pool=False, node_port=None)
    listening = {"cp1": ({"6443/tcp", "8472/udp"}, {}),
                 "w1": ({"8472/udp"}, {"10250/tcp": "Address already in use"}),
                 "w2": ({"10250/tcp", "8472/udp"}, {})}
    ok = "ok"
    probed = {
        "cp1": {("10.0.0.11", 8472, "udp"): ok, ("10.0.0.12", 8472, "udp"): ok,
                ("10.0.0.12", 10250, "tcp"): ok},
        "w1": {("10.0.0.10", 6443, "tcp"): ok, ("10.0.0.10", 8472, "udp"): "timeout",
               ("10.0.0.12", 8472, "udp"): ok},
        "w2": {("10.0.0.10", 6443, "tcp"): ok, ("10.0.0.10", 8472, "udp"): ok,
               ("10.0.0.11", 8472, "udp"): ok},
    }
    results = mesh.verdicts([CP, W1, W2], flows, listening, probed)
    fails = [r for r in results if r.status == FAIL]
    assert [(r.host, r.message) for r in fails] == [(
        "cp1",
        "w1 (10.0.0.11) -> cp1 (10.0.0.10) 8472/udp (flannel VXLAN): no answer within 3 s "
        "(dropped). OCI: add a stateful ingress rule to the security list (or NSG) of cp1's "
        "subnet: source CIDR 10.0.0.0/24, IP protocol UDP, destination port 8472; and allow "
        "it in cp1's host firewall")]
    warns = [r.message for r in results if r.status == WARN]
    assert warns == ["10250/tcp not probed: Address already in use on w1 (in use: the running "
                     "cluster or another service owns it; doctor listens only on free ports)"]
    passes = {r.host: r.message for r in results if r.status == PASS}
    assert passes["cp1"] == "reachable from the other hosts: w1->6443/tcp, w2->6443/tcp, " \
                            "w2->8472/udp"


def test_calico_ip_in_ip_is_named_as_not_probeable() -> None:
    flows = mesh.plan([CP, W1], cni_plugin="calico", metallb_pool=False, node_port=None)
    results = mesh.verdicts([CP, W1], flows, {}, {}, calico_ipip=True)
    assert any(r.status == WARN and "IP-in-IP (IP protocol 4) cannot be probed" in r.message
               for r in results)


def test_node_address_prefers_ansible_host_then_a_real_interface() -> None:
    ip = ("1: lo    inet 127.0.0.1/8 scope host lo\n"
          "2: ens3    inet 10.0.0.10/24 brd 10.0.0.255 scope global ens3\n"
          "3: docker0    inet 172.17.0.1/16 scope global docker0\n")
    assert mesh.node_address("10.0.0.10", ip) == ("10.0.0.10", "10.0.0.0/24")
    # OCI: the inventory uses the public IP, which is NAT and not on the interface
    assert mesh.node_address("129.146.1.2", ip) == ("10.0.0.10", "10.0.0.0/24")
    assert mesh.node_address("127.0.0.3", ip, local=True) == ("127.0.0.3", "127.0.0.0/8")
    # a lab or tunnel: 127.0.0.1 over SSH is a port forward, not the node's address
    assert mesh.node_address("127.0.0.1", ip) == ("10.0.0.10", "10.0.0.0/24")


def _free(addr: str, port: int, kind: int) -> bool:
    """Nothing listens there (SO_REUSEADDR like any server: TIME_WAIT is not a listener)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr, port))
        except OSError:
            return False
    return True


def test_live_listeners_and_probes_on_loopback() -> None:
    """Real python3 listeners and probes (the scripts doctor runs over SSH), two local hosts
    on 127.0.0.2 / 127.0.0.3: every planned flow answers, and the listeners are gone after."""
    ip = "1: lo    inet 127.0.0.1/8 scope host lo\n"
    hosts = [Host("cp1", ["control_plane"], {"ansible_host": "127.0.0.2",
                                             "ansible_connection": "local"}),
             Host("w1", ["workers"], {"ansible_host": "127.0.0.3",
                                      "ansible_connection": "local"})]
    gathered = {h.name: Gathered(h.name, None, "ok", {"ipaddr": ip}) for h in hosts}
    results = run_mesh(hosts, gathered)
    assert [r for r in results if r.status == FAIL] == []
    passes = {r.host: r.message for r in results if r.status == PASS}
    warned = {r.message.split()[0] for r in results if r.status == WARN}
    if "6443/tcp" not in warned:
        assert "w1->6443/tcp" in passes["cp1"]
    if "8472/udp" not in warned:
        assert "w1->8472/udp" in passes["cp1"] and "cp1->8472/udp" in passes["w1"]
    assert _free("127.0.0.2", 6443, socket.SOCK_STREAM) or "6443/tcp" in warned
    assert _free("127.0.0.3", 8472, socket.SOCK_DGRAM) or "8472/udp" in warned


def test_same_address_or_one_host_is_not_probed() -> None:
    ip = "1: lo    inet 127.0.0.1/8 scope host lo\n"
    hosts = [Host(n, ["control_plane"], {"ansible_host": "127.0.0.1", "ansible_port": p,
                                         "ansible_connection": "local"})
             for n, p in (("a", 2201), ("b", 2202))]
    gathered = {h.name: Gathered(h.name, None, "ok", {"ipaddr": ip}) for h in hosts}
    assert run_mesh(hosts, gathered) == []
    assert run_mesh(hosts[:1], gathered) == []
