"""Pure evaluation of an ``iptables-save`` dump: would a given new connection be accepted?

Oracle Cloud's Ubuntu images ship ``/etc/iptables/rules.v4`` ending with
``-A INPUT -j REJECT --reject-with icmp-host-prohibited`` (and the same in FORWARD), so every
port but 22 is rejected even when the VCN security list allows it. ``verdict()`` walks the rules
of a chain in order, the way netfilter does, for one modelled packet, and says which rule
decides. Conditions it cannot know for the modelled packet (a source address of an unknown peer,
an unknown interface) make a rule "conditional": such rules are collected, not applied, so the
caller can say "accepted only from 10.0.0.0/16" instead of guessing.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field

TERMINAL = ("ACCEPT", "REJECT", "DROP")
BUILTIN_CHAINS = ("INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING")


@dataclass(frozen=True)
class Rule:
    chain: str
    tokens: tuple[str, ...]  # everything after "-A CHAIN"
    line: int  # line number in the iptables-save output

    @property
    def text(self) -> str:
        return " ".join(["-A", self.chain, *self.tokens])

    @property
    def target(self) -> tuple[str | None, bool]:
        """(target, is_goto); None when the rule has no -j/-g (a counter-only rule)."""
        toks = self.tokens
        for i, tok in enumerate(toks[:-1]):
            if tok in ("-j", "--jump"):
                return toks[i + 1], False
            if tok in ("-g", "--goto"):
                return toks[i + 1], True
        return None, False


@dataclass
class Table:
    policies: dict[str, str] = field(default_factory=dict)
    rules: dict[str, list[Rule]] = field(default_factory=dict)


@dataclass(frozen=True)
class Packet:
    """The first packet of a new connection as the firewall sees it.

    ``None`` means unknown: an unknown source (a peer node), an unknown but non-loopback
    input interface.
    """

    proto: str = "tcp"
    dport: int | None = None
    src: str | None = None
    dst: str | None = None
    in_iface: str | None = None
    out_iface: str | None = None
    state: str = "NEW"


@dataclass
class Verdict:
    action: str  # ACCEPT | REJECT | DROP
    rule: Rule | None  # None: the chain policy decided
    chain: str
    conditional_accepts: list[Rule] = field(default_factory=list)
    conditional_blocks: list[Rule] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return self.action in ("REJECT", "DROP")

    def describe(self) -> str:
        if self.rule is None:
            return f"the {self.chain} policy {self.action}"
        return f"rule '{self.rule.text}' (line {self.rule.line})"


def parse_iptables_save(text: str) -> dict[str, Table]:
    """``iptables-save`` output -> {table name: Table}. Comments and counters are ignored."""
    tables: dict[str, Table] = {}
    current: Table | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = tables.setdefault(line[1:], Table())
        elif line == "COMMIT":
            current = None
        elif current is None:
            continue
        elif line.startswith(":"):
            parts = line[1:].split()
            if len(parts) >= 2:
                current.rules.setdefault(parts[0], [])
                if parts[1] != "-":
                    current.policies[parts[0]] = parts[1]
        elif line.startswith("-A "):
            try:
                tokens = shlex.split(line)
            except ValueError:
                tokens = line.split()
            if line.startswith("[") and "]" in line:  # iptables-save -c counters
                tokens = tokens[1:]
            chain = tokens[1]
            current.rules.setdefault(chain, []).append(Rule(chain, tuple(tokens[2:]), number))
    return tables


def _port_in(spec: str, port: int) -> bool:
    for part in spec.split(","):
        if ":" in part:
            lo, hi = part.split(":", 1)
            if int(lo or 0) <= port <= int(hi or 65535):
                return True
        elif part.isdigit() and int(part) == port:
            return True
    return False


def _only_privileged(spec: str) -> bool:
    try:
        highs = [int(p.split(":")[-1] or 65535) for p in spec.split(",")]
    except ValueError:
        return False
    return all(h < 1024 for h in highs)


def _addr_in(spec: str, addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    for part in spec.split(","):
        try:
            if ip in ipaddress.ip_network(part, strict=False):
                return True
        except ValueError:
            continue
    return False


def _iface_match(spec: str, iface: str) -> bool:
    return iface.startswith(spec[:-1]) if spec.endswith("+") else iface == spec


def _one(option: str, values: list[str], pkt: Packet) -> bool | None:
    """Does one match option hold for the packet? None = cannot tell."""
    value = values[0] if values else ""
    if option in ("-p", "--protocol"):
        names = {"6": "tcp", "17": "udp", "1": "icmp"}
        return value in ("all", "0") or names.get(value, value) == pkt.proto
    if option in ("-s", "--source", "--src"):
        if value in ("0.0.0.0/0", "::/0"):
            return True
        return None if pkt.src is None else _addr_in(value, pkt.src)
    if option in ("-d", "--destination", "--dst"):
        if value in ("0.0.0.0/0", "::/0"):
            return True
        return None if pkt.dst is None else _addr_in(value, pkt.dst)
    if option in ("-i", "--in-interface", "-o", "--out-interface"):
        iface = pkt.in_iface if option in ("-i", "--in-interface") else pkt.out_iface
        if iface is None:  # unknown, but never loopback: we model traffic from other hosts
            return False if value == "lo" else None
        return _iface_match(value, iface)
    if option in ("--dport", "--destination-port", "--dports", "--destination-ports"):
        return None if pkt.dport is None else _port_in(value, pkt.dport)
    if option in ("--sport", "--source-port", "--sports", "--source-ports"):
        # clients connect from an ephemeral port (>= 1024): "--sport 123" (NTP replies on
        # OCI) never matches a new connection to a service
        return False if _only_privileged(value) else None
    if option == "--ports":  # multiport: source or destination
        return True if pkt.dport is not None and _port_in(value, pkt.dport) else None
    if option in ("--state", "--ctstate"):
        return pkt.state in value.split(",")
    if option == "--syn":
        return pkt.state == "NEW"
    if option in ("-m", "--match", "--comment", "--reject-with"):
        return True
    if option == "--icmp-type":
        return None if pkt.proto == "icmp" else False
    return None  # --sport, owner, addrtype, set, recent, ...: cannot tell


def rule_matches(rule: Rule, pkt: Packet) -> bool | None:
    """AND of all match options before -j/-g. True, False, or None (cannot tell)."""
    result: bool | None = True
    toks = list(rule.tokens)
    i, negate = 0, False
    while i < len(toks):
        tok = toks[i]
        if tok in ("-j", "--jump", "-g", "--goto"):
            break
        if tok == "!":
            negate, i = True, i + 1
            continue
        if not tok.startswith("-"):
            i += 1
            continue
        values: list[str] = []
        i += 1
        while i < len(toks) and not toks[i].startswith("-") and toks[i] != "!":
            values.append(toks[i])
            i += 1
        one = _one(tok, values, pkt)
        if negate and one is not None:
            one = not one
        negate = False
        if one is False:
            return False
        if one is None:
            result = None
    return result


def verdict(tables: dict[str, Table], chain: str, pkt: Packet, table: str = "filter") -> Verdict:
    """Walk ``chain`` (and the user chains it jumps to) for ``pkt``; the deciding rule."""
    tab = tables.get(table) or Table()
    out = Verdict("ACCEPT", None, chain)
    decided = _walk(tab, chain, pkt, out, depth=0, certain=True)
    if decided is None:
        out.action = tab.policies.get(chain, "ACCEPT")
        out.rule = None
    return out


def _walk(tab: Table, chain: str, pkt: Packet, out: Verdict, depth: int,
          certain: bool) -> str | None:
    """Returns the terminal action when a certain rule decided, else None (fell through or
    RETURN). Conditional decisions are recorded in ``out``."""
    if depth > 20:
        return None
    for rule in tab.rules.get(chain, []):
        target, _goto = rule.target
        if target is None:
            continue
        match = rule_matches(rule, pkt)
        if match is False:
            continue
        sure = certain and match is True
        if target in TERMINAL:
            if sure:
                out.action, out.rule = target, rule
                return target
            (out.conditional_accepts if target == "ACCEPT" else out.conditional_blocks).append(
                rule)
        elif target == "RETURN":
            if sure:
                return None
        elif target in tab.rules:  # a user chain
            decided = _walk(tab, target, pkt, out, depth + 1, sure)
            if decided is not None:
                return decided
        # LOG, MARK, CT, NFQUEUE ...: not deciding
    return None


def port_verdict(tables: dict[str, Table], port: int, proto: str = "tcp") -> Verdict:
    """A new connection from another host (unknown address, non-loopback) to ``port``."""
    return verdict(tables, "INPUT", Packet(proto=proto, dport=port))
