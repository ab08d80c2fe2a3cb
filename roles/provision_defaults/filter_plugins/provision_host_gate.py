"""The host gate's decision (playbooks/bootstrap.yml), once per run for every host: what each
node contributes to the others' host layer, which of those changed since a host's layer last
finished, and which hosts' layer is skipped.

``provision_gate_decide``: from every host's gate answer, one pass over hostvars. Each node's
contribution (node_digest) is the parts of its /etc/hosts line (roles/base
templates/hosts-block.j2: base_node_ip, ansible_host, base_hostname, the hostname and default
IPv4 address facts: for a node whose layer the gate skipped, those its gate answered with) and,
with a proxy, its addresses (the no_proxy list). On a host whose gate held, the nodes of this
run whose digest is not the one the host recorded (gate_peers_changed; nodes outside a
--limit run are not compared: their lines are kept as the host has them) make its layer run.

``provision_tree_digest``: the digest of provision's own files, once per run."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


@functools.cache
def _gate_action() -> Any:
    """The host gate's action plugin module (its tree digest), next to this directory:
    roles/provision_defaults/action_plugins, or playbooks/action_plugins in the collection."""
    path = Path(__file__).resolve().parent.parent / "action_plugins" / "provision_host_gate.py"
    spec = importlib.util.spec_from_file_location("provision_host_gate_action", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tree_digest(_: Any = None) -> str:
    """The digest of provision's roles/ and playbooks/ (the gate's ``tree`` input), computed
    once per run by a run_once task; the input is ignored."""
    return str(_gate_action().tree_digest())


def node_digest(hv: Mapping[str, Any], addresses: bool = False) -> str:
    """The digest of what a node (its variables ``hv``) contributes: the parts of its
    /etc/hosts line; with ``addresses`` (a proxy is set) also every IPv4 address of it (the
    proxy role's no_proxy list: roles/proxy/vars/main.yml _proxy_node_addresses)."""
    facts = hv.get("ansible_facts") or {}
    parts = [str(hv.get("base_node_ip") or ""), str(hv.get("ansible_host") or ""),
             str(hv.get("base_hostname") or ""), str(facts.get("hostname") or ""),
             str((facts.get("default_ipv4") or {}).get("address") or "")]
    if addresses:
        parts += sorted(str(a) for a in facts.get("all_ipv4_addresses") or [])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def gate_peers_changed(answer: Any, now: Mapping[str, str]) -> list[str]:
    """The nodes of ``now`` whose digest differs from the one recorded on a host whose gate
    held (``answer``: its gate's result, with the recorded ``peers``); [] where it did not
    hold (its layer runs anyway)."""
    if not isinstance(answer, Mapping) or answer.get("current") is not True:
        return []
    before = answer.get("peers") if isinstance(answer.get("peers"), Mapping) else {}
    return sorted(node for node, digest in now.items() if before.get(node) != digest)


def gate_decide(hosts: Iterable[str], hostvars: Mapping[str, Any], active: Iterable[str],
                addresses: bool = False, gate: str = "_host_gate") -> dict[str, Any]:
    """The host gate's decision for every host of the play, once, in one pass over
    ``hostvars`` (each host's variables are computed once: a hostvars lookup costs the
    controller a whole variable computation): ``peers`` (node -> node_digest, for every node
    of the run), and for the ``active`` hosts (those still in the play) from their ``gate``
    result: ``peers_changed`` (host -> the nodes whose part changed, where the gate held but
    another node's contribution did not), ``end`` (hosts whose layer is skipped outright) and
    ``per_run`` (skipped but for the steps a role runs on every run). The meta tasks that end
    hosts then test membership, not a template per host."""
    active = set(active)
    answers: dict[str, Any] = {}
    peers: dict[str, str] = {}
    for host in sorted(hosts):
        hv = hostvars[host]
        peers[host] = node_digest(hv, addresses)
        if host in active:
            answers[host] = hv.get(gate)
    decision: dict[str, Any] = {"peers": peers, "peers_changed": {}, "end": [], "per_run": []}
    for host, answer in answers.items():
        changed = gate_peers_changed(answer, peers)
        if changed:
            decision["peers_changed"][host] = changed
        elif isinstance(answer, Mapping) and answer.get("current") is True:
            decision["per_run" if answer.get("per_run") else "end"].append(host)
    return decision


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"provision_gate_decide": gate_decide,
                "provision_tree_digest": tree_digest}
