"""The host gate's peers (playbooks/bootstrap.yml): what each node contributes to the others'
host layer, and which of those changed since a host's layer last finished.

``provision_gate_peers``: the parts of each node's /etc/hosts line (roles/base
templates/hosts-block.j2: base_node_ip, ansible_host, base_hostname, the hostname and default
IPv4 address facts: for a node whose layer the gate skipped, those its gate answered with) and,
with a proxy, its addresses (the no_proxy list), as one digest per node. Computed once per
run (a run_once set_fact) after every node's gate has answered, instead of once per host.

``provision_gate_peers_changed``: on a host whose gate held, the nodes of this run whose
digest is not the one the host recorded (its gate answer's ``peers``): nodes outside a --limit
run are not compared (their lines are kept as the host has them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any


def gate_peers(hosts: Iterable[str], hostvars: Mapping[str, Any],
               addresses: bool = False) -> dict[str, str]:
    """node -> the digest of its parts; with ``addresses`` (a proxy is set) also every IPv4
    address of it (the proxy role's no_proxy list: roles/proxy/vars/main.yml
    _proxy_node_addresses)."""
    peers = {}
    for host in sorted(hosts):
        hv = hostvars[host]
        facts = hv.get("ansible_facts") or {}
        parts = [str(hv.get("base_node_ip") or ""), str(hv.get("ansible_host") or ""),
                 str(hv.get("base_hostname") or ""), str(facts.get("hostname") or ""),
                 str((facts.get("default_ipv4") or {}).get("address") or "")]
        if addresses:
            parts += sorted(str(a) for a in facts.get("all_ipv4_addresses") or [])
        peers[host] = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    return peers


def gate_peers_changed(answer: Any, now: Mapping[str, str]) -> list[str]:
    """The nodes of ``now`` whose digest differs from the one recorded on a host whose gate
    held (``answer``: its gate's result, with the recorded ``peers``); [] where it did not
    hold (its layer runs anyway)."""
    if not isinstance(answer, Mapping) or answer.get("current") is not True:
        return []
    before = answer.get("peers") if isinstance(answer.get("peers"), Mapping) else {}
    return sorted(node for node, digest in now.items() if before.get(node) != digest)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"provision_gate_peers": gate_peers,
                "provision_gate_peers_changed": gate_peers_changed}
