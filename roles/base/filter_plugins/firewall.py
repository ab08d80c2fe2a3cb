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


def _is_catch_all_reject(words: list[str]) -> bool:
    """``-A CHAIN -j REJECT [--reject-with X]`` (a comment allowed): rejects everything left."""
    rest = words[2:]
    if "--comment" in rest:
        i = rest.index("--comment")
        rest = rest[: max(i - 2, 0)] + rest[i + 2:] if rest[i - 2 : i] == ["-m", "comment"] \
            else rest
    if rest[:2] != ["-j", "REJECT"]:
        return False
    return rest[2:] == [] or (len(rest) == 4 and rest[2] == "--reject-with")


def _reject_index(rules: list[list[str]]) -> int:
    """Index in ``rules`` (one chain's rules) of the REJECT the role inserts before: the first
    catch-all REJECT (later rules are never reached), else a REJECT that is the last rule;
    -1 if neither."""
    for i, words in enumerate(rules):
        if _is_catch_all_reject(words):
            return i
    if rules and _is_reject(rules[-1]):
        return len(rules) - 1
    return -1


def _by_chain(rules: list[list[str]]) -> dict[str, list[list[str]]]:
    chains: dict[str, list[list[str]]] = {}
    for words in rules:
        chains.setdefault(words[1], []).append(words)
    return chains


def final_reject_chains(text: str) -> list[str]:
    """Chains (INPUT, FORWARD) of the file's filter table that end in a REJECT: a catch-all
    ``-j REJECT`` anywhere (rules after it are never reached), or a REJECT as the last rule."""
    chains = _by_chain(_filter_rules(text))
    return [c for c in CHAINS if c in chains and _reject_index(chains[c]) >= 0]


def reject_lines(text: str) -> dict[str, str]:
    """Chain -> the file's REJECT line the ACCEPT rules go before (see final_reject_chains)."""
    found: dict[str, str] = {}
    for chain, rules in _by_chain(_filter_rules(text)).items():
        i = _reject_index(rules)
        if chain in CHAINS and i >= 0:
            found[chain] = " ".join(rules[i])
    return found


def rules_after_reject(text: str) -> dict[str, list[str]]:
    """Chain -> the file's rules after that REJECT (never reached); chains without any left
    out."""
    after: dict[str, list[str]] = {}
    for chain, rules in _by_chain(_filter_rules(text)).items():
        i = _reject_index(rules)
        if chain in CHAINS and 0 <= i < len(rules) - 1:
            after[chain] = [" ".join(w) for w in rules[i + 1:]]
    return after


def reject_position(text: str, chain: str | None = None) -> int:
    """1-based position in ``iptables -S [CHAIN]`` output (of ``chain`` when given, else of
    the one chain listed) of the REJECT to insert before: the first catch-all REJECT, else a
    REJECT that is the chain's last rule; 0 if none."""
    rules = [raw.split() for raw in text.splitlines()]
    rules = [w for w in rules if len(w) > 1 and w[0] == "-A" and chain in (None, w[1])]
    return _reject_index(rules) + 1


def _quote(comment: str) -> str:
    return f'"{comment}"' if any(c.isspace() for c in comment) else comment


def firewall_rules(ports: list[dict[str, Any]], cidrs: list[str],
                   extra: list[dict[str, Any]] | None = None,
                   chains: list[str] | None = None,
                   input_cidrs: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The ACCEPT rules to insert, one dict per rule, for the chains that end in a REJECT.

    ``cidrs`` are accepted from and to in FORWARD. ``input_cidrs`` (kube-proxy's ipvs mode:
    ``{"source": pod_cidr, "destination": service_cidr}``) are accepted in INPUT: IPVS
    delivers pod traffic to service addresses through INPUT, where the REJECT would drop it.

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
    if (input_cidrs or {}).get("source"):
        items.append({"chain": "INPUT", "source": input_cidrs["source"],
                      "comment": f"ipvs from pods {input_cidrs['source']}"})
    if (input_cidrs or {}).get("destination"):
        items.append({"chain": "INPUT", "destination": input_cidrs["destination"],
                      "comment": f"ipvs to services {input_cidrs['destination']}"})
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
            "provision_reject_lines": reject_lines,
            "provision_rules_after_reject": rules_after_reject,
            "provision_firewall_rules": firewall_rules,
        }
