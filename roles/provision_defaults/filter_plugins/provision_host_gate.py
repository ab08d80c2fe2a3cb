"""provision_gate_peers: what each node contributes to the others' host layer (the host gate's
``peers`` input, playbooks/bootstrap.yml): the parts of its /etc/hosts line (roles/base
templates/hosts-block.j2: base_node_ip, ansible_host, base_hostname, the hostname and default
IPv4 address facts) and, with a proxy, its addresses (the no_proxy list). Read once per run (a
run_once set_fact) instead of once per host."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def gate_peers(hosts: Iterable[str], hostvars: Mapping[str, Any],
               addresses: bool = False) -> dict[str, list[str]]:
    """node -> its parts; with ``addresses`` (a proxy is set) also every IPv4 address of it
    (the proxy role's no_proxy list: roles/proxy/vars/main.yml _proxy_node_addresses)."""
    peers = {}
    for host in sorted(hosts):
        hv = hostvars[host]
        facts = hv.get("ansible_facts") or {}
        peers[host] = [str(hv.get("base_node_ip") or ""), str(hv.get("ansible_host") or ""),
                       str(hv.get("base_hostname") or ""), str(facts.get("hostname") or ""),
                       str((facts.get("default_ipv4") or {}).get("address") or "")]
        if addresses:
            peers[host] += sorted(str(a) for a in facts.get("all_ipv4_addresses") or [])
    return peers


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"provision_gate_peers": gate_peers}
