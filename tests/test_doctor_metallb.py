"""`provision doctor`: MetalLB pool addresses that no node has on an interface (WARN).

On OCI a VCN delivers only addresses a VNIC owns, so an L2 pool address must be a secondary
private IP of a node's VNIC and configured on the node. Pure tests on `ip -o -4 addr show`
text, then the real command against a real lab host (systemd container over SSH) where the
test adds a secondary address to the node's interface, like the OCI step does.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.doctor import netchecks as n

IP_NODE = """\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: ens3    inet 10.0.0.5/24 brd 10.0.0.255 scope global ens3\\       valid_lft forever
2: ens3    inet 10.0.0.240/24 scope global secondary ens3\\       valid_lft forever
2: ens3    inet 10.0.0.241/24 scope global secondary ens3\\       valid_lft forever
3: kube-ipvs0    inet 10.0.0.242/32 scope global kube-ipvs0\\       valid_lft forever
"""
IP_OTHER = "2: ens3    inet 10.0.0.6/24 brd 10.0.0.255 scope global ens3\n"


def test_pool_addresses_on_a_node_pass_others_warn_with_ranges() -> None:
    subnets = {"cp1": n.node_subnets(IP_NODE), "w1": n.node_subnets(IP_OTHER)}
    results = {r.check: r for r in n.check_metallb_assigned(
        ["10.0.0.240-10.0.0.241", "10.0.0.6/32", "10.0.0.240/29", "10.0.0.242/32"], subnets)}
    assert results["metallb 10.0.0.240-10.0.0.241 assigned"].status == n.PASS
    assert "cp1" in results["metallb 10.0.0.240-10.0.0.241 assigned"].message
    assert results["metallb 10.0.0.6/32 assigned"].message.endswith("(w1)")
    wide = results["metallb 10.0.0.240/29 assigned"]
    assert wide.status == n.WARN and wide.host == "all"
    assert "6 of 8 address(es) not assigned on any node: 10.0.0.242-10.0.0.247." in \
        wide.message
    assert "secondary private IP" in wide.message
    # kube-proxy's IPVS dummy interface holds service addresses: not a node address
    assert results["metallb 10.0.0.242/32 assigned"].status == n.WARN


def test_many_gaps_are_summarised_and_unchecked_hosts_named() -> None:
    text = "".join(f"2: ens3    inet 10.1.0.{i}/24 scope global ens3\n" for i in range(0, 40, 2))
    [r] = n.check_metallb_assigned(["10.1.0.0/26"], {"cp1": n.node_subnets(text)},
                                   unchecked=["w2"])
    assert r.status == n.WARN and r.message.startswith("44 of 64 address(es)")
    # 19 single gaps (.1 ... .37) and one range (.39-.63): five shown, 15 more
    assert "10.1.0.1, 10.1.0.3, 10.1.0.5, 10.1.0.7, 10.1.0.9 and 15 more." in r.message
    assert r.message.endswith("; not checked: w2")
    assert n.check_metallb_assigned(["10.0.0.0/8"], {"cp1": []})[0].message.startswith(
        "16777216 addresses")
    assert n.check_metallb_assigned([], {"cp1": []}) == []
    assert n.check_metallb_assigned(["10.0.0.1/32"], {}) == []


def _doctor(lab: Any) -> dict[str, dict[str, str]]:
    proc = lab.cli("-i", "lab", "--json", "doctor", "--skip-network-checks")
    assert proc.returncode in (0, 1), proc.stderr
    return {c["check"]: c for c in json.loads(proc.stdout)["checks"] if c["host"] == "all"}


@pytest.mark.container
def test_doctor_warns_for_a_pool_address_the_lab_host_does_not_have(lab_host: Any) -> None:
    """Real lab host: its own address and a secondary address the test configures on eth0
    (like the OCI step) PASS; a free address of the same subnet WARNs; after the address is
    added to the node as well, doctor no longer warns."""
    lab = lab_host()
    host = lab.hosts[0]
    out = lab.ssh(host, "ip -o -4 addr show dev eth0").stdout
    [iface] = n.node_subnets(out)
    net = iface.network
    free = [ip for ip in net.hosts() if ip != iface.ip and int(ip) > int(iface.ip) + 100]
    secondary, missing = free[0], free[1]
    added = lab.ssh(host, f"sudo -n ip addr add {secondary}/{net.prefixlen} dev eth0")
    assert added.returncode == 0, added.stderr
    pools = [f"{secondary}/32", f"{iface.ip}/32", f"{missing}/32"]
    gv = Path(lab.inventory_dir) / "group_vars" / "all.yml"
    values = yaml.safe_load(gv.read_text()) or {}
    gv.write_text(yaml.safe_dump({**values, "metallb_addresses": pools}, sort_keys=False))

    checks = _doctor(lab)
    assert checks[f"metallb {secondary}/32 assigned"]["status"] == "PASS"
    assert checks[f"metallb {iface.ip}/32 assigned"]["status"] == "PASS"
    warn = checks[f"metallb {missing}/32 assigned"]
    assert warn["status"] == "WARN", warn
    assert f"1 of 1 address(es) not assigned on any node: {missing}." in warn["message"]
    assert checks[f"metallb {missing}/32"]["status"] == "PASS"  # inside the node's subnet

    added = lab.ssh(host, f"sudo -n ip addr add {missing}/{net.prefixlen} dev eth0")
    assert added.returncode == 0, added.stderr
    assert _doctor(lab)[f"metallb {missing}/32 assigned"]["status"] == "PASS"
    assert ipaddress.IPv4Address(missing) in net
