"""Pure tests of the base role's OCI firewall planning for the field conditions of issue 15:
kube-proxy's ipvs mode (pod traffic to service addresses passes INPUT) and rules a user
appended after Oracle's final REJECT (which must not make the firewall step do nothing)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent

OCI_APPENDED = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT
-A FORWARD -j REJECT --reject-with icmp-host-prohibited
COMMIT
"""


def firewall() -> Any:
    path = REPO / "roles/base/filter_plugins/firewall.py"
    spec = importlib.util.spec_from_file_location("base_firewall_field", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rules_appended_after_the_reject_still_find_the_reject() -> None:
    fw = firewall()
    assert fw.final_reject_chains(OCI_APPENDED) == ["INPUT", "FORWARD"]
    assert fw.reject_lines(OCI_APPENDED) == {
        "INPUT": "-A INPUT -j REJECT --reject-with icmp-host-prohibited",
        "FORWARD": "-A FORWARD -j REJECT --reject-with icmp-host-prohibited"}
    assert fw.rules_after_reject(OCI_APPENDED) == {
        "INPUT": ["-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT"]}


def test_live_position_is_the_first_catch_all_reject() -> None:
    fw = firewall()
    live = ("-P INPUT ACCEPT\n-A INPUT -i lo -j ACCEPT\n"
            "-A INPUT -j REJECT --reject-with icmp-host-prohibited\n"
            "-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT\n"
            "-A INPUT -j REJECT --reject-with icmp-port-unreachable\n")
    assert fw.reject_position(live, "INPUT") == 2
    # a conditional REJECT is not a catch-all; as the last rule it still counts
    assert fw.reject_position("-A INPUT -p udp -j REJECT\n-A INPUT -j ACCEPT\n", "INPUT") == 0
    assert fw.reject_position("-A INPUT -i lo -j ACCEPT\n-A INPUT -p udp -j REJECT\n") == 2
    commented = '-A INPUT -m comment --comment final -j REJECT\n-A INPUT -j ACCEPT\n'
    assert fw.reject_position(commented) == 1


def test_ipvs_accepts_pods_and_services_in_input() -> None:
    fw = firewall()
    rules = fw.firewall_rules([], ["10.244.0.0/16"], [], ["INPUT", "FORWARD"],
                              {"source": "10.244.0.0/16", "destination": "10.96.0.0/12"})
    lines = [r["line"] for r in rules if r["chain"] == "INPUT"]
    assert lines == [
        '-A INPUT -s 10.244.0.0/16 -m comment --comment "provision: ipvs from pods '
        '10.244.0.0/16" -j ACCEPT',
        '-A INPUT -d 10.96.0.0/12 -m comment --comment "provision: ipvs to services '
        '10.96.0.0/12" -j ACCEPT']
    assert [r for r in rules if r["chain"] == "INPUT"][1]["destination"] == "10.96.0.0/12"
    # iptables mode: no INPUT rule for the CIDRs
    assert all(r["chain"] == "FORWARD"
               for r in fw.firewall_rules([], ["10.244.0.0/16"], [], None, {}))


def test_role_plans_input_cidrs_only_in_kubeadm_ipvs_mode() -> None:
    """The role's variable that feeds the filter (roles/base/vars/main.yml), rendered with
    ansible's own templar for each mode."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    expr = yaml.safe_load((REPO / "roles/base/vars/main.yml").read_text())["_base_input_cidrs"]

    def render(mode: str, proxy: str) -> Any:
        templar = Templar(loader=DataLoader(), variables={
            "provision_mode": mode, "kube_proxy_mode": proxy,
            "pod_cidr": "10.244.0.0/16", "service_cidr": "10.96.0.0/12"})
        return templar.template(trust_as_template(expr))

    assert render("kubeadm", "ipvs") == {"source": "10.244.0.0/16",
                                         "destination": "10.96.0.0/12"}
    assert render("kubeadm", "iptables") == {}
    assert render("minikube", "ipvs") == {}
