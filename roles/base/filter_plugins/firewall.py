"""Pure planning functions for the base role's OCI firewall step (no I/O).

Oracle's Ubuntu images ship ``/etc/iptables/rules.v4`` whose INPUT and FORWARD chains end in a
REJECT. These filters find such chains, turn the role's port plan into canonical
``iptables-save`` lines (what netfilter-persistent loads at boot) and into the parameters of
``ansible.builtin.iptables`` (the live rules), and find where the live REJECT sits.
"""

from __future__ import annotations

from typing import Any

COMMENT_PREFIX = "provision: "
CHAINS = ("INPUT", "FORWARD")


def _filter_rules(text: str) -> list[list[str]]:
    """The ``-A`` lines of the ``*filter`` table, split into words."""
    rules: list[list[str]] = []
    in_filter = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            in_filter = line == "*filter"
        elif line == "COMMIT":
            in_filter = False
        elif in_filter and line.startswith("-A "):
            rules.append(line.split())
    return rules


def _is_reject(words: list[str]) -> bool:
    return "-j" in words and words[words.index("-j") + 1 : words.index("-j") + 2] == ["REJECT"]


def final_reject_chains(text: str) -> list[str]:
    """Chains (INPUT, FORWARD) whose last rule in the file's filter table is a REJECT."""
    last: dict[str, list[str]] = {}
    for words in _filter_rules(text):
        last[words[1]] = words
    return [c for c in CHAINS if c in last and _is_reject(last[c])]


def reject_position(text: str, chain: str | None = None) -> int:
    """1-based position of the last REJECT in ``iptables -S [CHAIN]`` output (of ``chain``
    when given, else of the one chain listed); 0 if none."""
    position, found = 0, 0
    for raw in text.splitlines():
        words = raw.split()
        if len(words) > 1 and words[0] == "-A" and chain in (None, words[1]):
            position += 1
            if _is_reject(words):
                found = position
    return found


def _quote(comment: str) -> str:
    return f'"{comment}"' if any(c.isspace() for c in comment) else comment


def firewall_rules(ports: list[dict[str, Any]], cidrs: list[str],
                   extra: list[dict[str, Any]] | None = None,
                   chains: list[str] | None = None) -> list[dict[str, Any]]:
    """The ACCEPT rules to insert, one dict per rule, for the chains that end in a REJECT.

    Each dict has ``chain``, ``line`` (canonical iptables-save text) and the
    ``ansible.builtin.iptables`` parameters ``protocol``, ``destination_port``, ``source``,
    ``destination`` and ``comment``.
    """
    wanted = list(chains) if chains is not None else list(CHAINS)
    rules: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = [dict(p, chain="INPUT") for p in ports]
    for cidr in cidrs:
        items.append({"chain": "FORWARD", "source": cidr, "comment": f"from {cidr}"})
        items.append({"chain": "FORWARD", "destination": cidr, "comment": f"to {cidr}"})
    items.extend(extra or [])
    seen: set[str] = set()
    for item in items:
        chain = str(item.get("chain", "INPUT"))
        if chain not in wanted:
            continue
        comment = COMMENT_PREFIX + str(item.get("comment") or "rule")
        words = ["-A", chain]
        if item.get("source"):
            words += ["-s", str(item["source"])]
        if item.get("destination"):
            words += ["-d", str(item["destination"])]
        proto = item.get("proto")
        port = str(item["port"]).replace("-", ":") if item.get("port") is not None else None
        if proto:
            words += ["-p", str(proto)]
            if port:
                words += ["-m", str(proto), "--dport", port]
        words += ["-m", "comment", "--comment", _quote(comment), "-j", "ACCEPT"]
        line = " ".join(words)
        if line in seen:
            continue
        seen.add(line)
        rules.append({
            "chain": chain, "line": line, "protocol": proto or None,
            "destination_port": port if proto else None,
            "source": item.get("source") or None, "destination": item.get("destination") or None,
            "comment": comment,
        })
    return rules


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict[str, Any]:
        return {
            "provision_final_reject_chains": final_reject_chains,
            "provision_reject_position": reject_position,
            "provision_firewall_rules": firewall_rules,
        }
