"""Shared fixtures of the pure doctor firewall tests (test_doctor_checks.py,
test_doctor_field.py): the start of Oracle Cloud's Ubuntu rules.v4 filter table and the
firewall check run over a recorded ``iptables-save``."""

from __future__ import annotations

from typing import Any

from provision.doctor import netchecks

#: Oracle Cloud's Ubuntu /etc/iptables/rules.v4 as iptables-save prints it, up to (not
#: including) the final REJECTs: the policies, the InstanceServices chain and the traffic
#: accepted first (established, ICMP, loopback, NTP replies, SSH).
OCI_FILTER_START = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:InstanceServices - [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p udp -m udp --sport 123 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
"""


def firewall(spec: Any, rules: str, rc: int = 0) -> dict[str, Any]:
    """doctor's firewall rows for ``rules`` (the probe's iptables section), by check name."""
    return {r.check: r for r in netchecks.check_firewall(spec, {"iptables": f"{rules}\nrc={rc}"})}
