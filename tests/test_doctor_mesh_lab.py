"""doctor's node-to-node probes in a real 3-host lab (systemd containers on one docker
network): one host's iptables drops 8472/udp (flannel VXLAN) from one other host; doctor FAILs
naming exactly that pair and port with the OCI security-list rule, and passes the others."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.container, pytest.mark.slow]


def test_doctor_names_exactly_the_dropped_vxlan_pair(lab_cluster) -> None:
    lab = lab_cluster(control_planes=1, workers=2)
    cp, w1, w2 = lab.hosts
    addr = {}
    for h in lab.hosts:
        out = lab.ssh(h, "ip -o -4 addr show scope global | awk '{print $4; exit}'")
        assert out.returncode == 0, out.stderr
        addr[h] = out.stdout.strip()
    ip = {h: a.split("/")[0] for h, a in addr.items()}
    drop = lab.ssh(cp, f"sudo -n iptables -I INPUT -p udp --dport 8472 -s {ip[w1]} -j DROP")
    assert drop.returncode == 0, drop.stderr

    doc = lab.cli("-i", "lab", "--json", "doctor", "--skip-network-checks")
    checks = [c for c in json.loads(doc.stdout)["checks"] if c["check"] == "node-to-node"]
    fails = [c for c in checks if c["status"] == "FAIL"]
    import ipaddress
    subnet = str(ipaddress.ip_interface(addr[w1]).network)
    assert [(c["host"], c["message"]) for c in fails] == [(
        cp, f"{w1} ({ip[w1]}) -> {cp} ({ip[cp]}) 8472/udp (flannel VXLAN): no answer within "
            f"3 s (dropped). OCI: add a stateful ingress rule to the security list (or NSG) of "
            f"{cp}'s subnet: source CIDR {subnet}, IP protocol UDP, destination port 8472; and "
            f"allow it in {cp}'s host firewall")], doc.stdout
    assert doc.returncode != 0
    passed = {c["host"]: c["message"] for c in checks if c["status"] == "PASS"}
    for want in (f"{w1}->6443/tcp", f"{w2}->6443/tcp", f"{w2}->8472/udp"):
        assert want in passed[cp], passed
    for host, others in ((w1, (cp, w2)), (w2, (cp, w1))):
        for src in others:
            assert f"{src}->8472/udp" in passed[host], passed
        assert f"{cp}->10250/tcp" in passed[host], passed
    assert not [c for c in checks if c["status"] == "WARN"], checks
    # the listeners are gone: nothing of doctor's listens on the hosts afterwards
    for h in lab.hosts:
        left = lab.ssh(h, "ss -ltnuH '( sport = :6443 or sport = :10250 or sport = :8472 )'")
        assert left.stdout.strip() == "", (h, left.stdout)
