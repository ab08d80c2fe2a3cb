"""The host gate of bootstrap's host layer (roles/provision_defaults/action_plugins/
provision_host_gate.py, its host side in library/provision_stamp.py's gate_result).

Real: the host side runs as the action runs it (``python -c <module file> <JSON>``) on this
machine against real role stamps and files in a temp dir: a first read does not hold, a record
does, then an edited managed file (drift), other inputs, a changed watched path or a role stamp
recorded again each make it miss, and a record is refused while a role's stamp does not hold.
The host side's fingerprint of the facts the layer reads is compared with Ansible's own fact
gathering on this machine. The controller side's digest is computed from task variables like
ansible-core's: stable across what changes from run to run (omit, paths of the run, facts),
sensitive to every input. On lab hosts through bootstrap: tests/test_bootstrap_container.py
(the gate holds on a no-op re-run, drift and a lost live firewall rule are repaired, two nodes:
a skipped node keeps its line in the other's /etc/hosts, a peer's change re-runs the other)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
MODULE = REPO / "roles" / "provision_defaults" / "library" / "provision_stamp.py"
ACTION = REPO / "roles" / "provision_defaults" / "action_plugins" / "provision_host_gate.py"
HOST_LAYER = ("proxy", "apt_ready", "base", "docker", "containerd", "provision_defaults")


def load_action() -> Any:
    spec = importlib.util.spec_from_file_location("provision_host_gate_action", ACTION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GATE = load_action()


def script(payload: dict[str, Any]) -> dict[str, Any]:
    """The module file run as the actions run it: python -c <code> <JSON>."""
    proc = subprocess.run([sys.executable, "-c", MODULE.read_text(), json.dumps(payload)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def stamp(tmp: Path, name: str, files: list[str], record: bool = True) -> dict[str, Any]:
    return script({"name": name, "inputs": "in-" + name, "packages": [], "files": files,
                   "services": [], "enabled_services": [], "holds": [], "groups": [],
                   "users": [], "sysctls": [], "kernel_modules": [], "exists": [],
                   "per_run": ["firewall"] if name == "base" else [], "record": record,
                   "dir": str(tmp / "stamps")})


def gate(tmp: Path, digest: str = "a" * 64, record: bool = False, **over: Any) -> dict[str, Any]:
    args = {"name": "host_layer", "digest": digest, "stamps": ["apt_ready", "base"],
            "files": [], "exists": [str(tmp / "marker")], "peers": {}, "record": record,
            "dir": str(tmp / "stamps"), **over}
    return script({"_gate": args})


def test_gate_holds_only_while_inputs_stamps_and_watched_paths_hold(tmp_path: Path) -> None:
    managed = tmp_path / "managed.conf"
    managed.write_text("one\n")
    stamp(tmp_path, "apt_ready", [])
    stamp(tmp_path, "base", [str(managed)])

    first = gate(tmp_path)
    assert (first["current"], first["why"]) == (False, "first run")
    recorded = gate(tmp_path, record=True)
    assert recorded["current"] is True
    gate_file = Path(recorded["gate_file"])
    assert gate_file.stat().st_mode & 0o777 == 0o600
    held = gate(tmp_path)
    assert (held["current"], held["why"]) == (True, "")
    assert held["per_run"] == {"base": ["firewall"]}

    # other inputs (the controller's digest)
    assert gate(tmp_path, digest="b" * 64)["why"] == "inputs changed"
    # a watched path appears (e.g. cloud-init's result after a boot)
    (tmp_path / "marker").write_text("")
    assert gate(tmp_path)["why"] == "changed since the last run: exists"
    (tmp_path / "marker").unlink()
    assert gate(tmp_path)["current"] is True

    # drift of a role's managed file: the role's recorded stamp no longer holds
    managed.write_text("edited\n")
    drifted = gate(tmp_path)
    assert (drifted["current"], drifted["why"]) == (False, "role state changed: base")
    # and a record is refused while it does not hold (the layer did not repair it)
    refused = gate(tmp_path, record=True)
    assert refused["current"] is False
    assert json.loads(gate_file.read_text())["stamps"]["base"] is not None

    # the role repairs and records again: a new stamp, so the gate misses once more
    managed.write_text("two\n")
    stamp(tmp_path, "base", [str(managed)])
    assert gate(tmp_path)["why"] == "changed since the last run: stamps"
    assert gate(tmp_path, record=True)["current"] is True
    assert gate(tmp_path)["current"] is True

    # the sources of a fact the roles read changed (here: as if the release were upgraded)
    data = json.loads(gate_file.read_text())
    data["host"]["release"]["/etc/os-release"] = "0" * 64
    gate_file.write_text(json.dumps(data))
    assert gate(tmp_path)["why"] == "changed since the last run: host facts release"
    assert gate(tmp_path, record=True)["current"] is True

    # a role stamp that is gone (or a stamp the layer never recorded) never holds
    (tmp_path / "stamps" / "apt_ready.json").unlink()
    assert gate(tmp_path)["why"] == "role state changed: apt_ready"


def test_gate_refuses_bad_arguments(tmp_path: Path) -> None:
    for over in ({"digest": "not-hex"}, {"stamps": ["../x"]}, {"exists": ["relative"]},
                 {"name": "Host Layer"}):
        answer = gate(tmp_path, **over)
        assert answer.get("failed") is True and "provision_host_gate" in answer["msg"], over
    assert not (tmp_path / "stamps").exists()


def task_vars(**over: Any) -> dict[str, Any]:
    facts = {"hostname": "n1", "distribution": "Ubuntu", "distribution_release": "noble",
             "architecture": "aarch64", "default_ipv4": {"address": "10.0.0.5"},
             "date_time": {"epoch": "1"}, "uptime_seconds": 5,
             "all_ipv4_addresses": ["10.0.0.5"]}
    base = {"inventory_hostname": "n1", "groups": {"all": ["n1", "n2"]},
            "ansible_host": "10.0.0.5", "ansible_user": "ubuntu", "docker_users": ["ubuntu"],
            "base_hostname": "", "omit": "__omit_place_holder__1234",
            "playbook_dir": "/home/me/provision/playbooks", "inventory_dir": "/tmp/run1/inv",
            "ansible_ssh_common_args": "-o UserKnownHostsFile=/tmp/run1/known_hosts",
            "ansible_forks": 100, "ansible_facts": facts,
            **{"ansible_" + k: v for k, v in facts.items()},
            "_proxy_apt_removed": {"changed": False, "stdout": ""}}
    return {**base, **over}


def test_digest_ignores_what_changes_from_run_to_run() -> None:
    """omit's token, the run's paths, connection settings, check and diff mode, registered
    results and facts the roles do not read (time, uptime) are not inputs."""
    args = {"name": "host_layer", "stamps": ["base"]}
    first = GATE.inputs_digest(task_vars(), args)
    facts = {**task_vars()["ansible_facts"], "date_time": {"epoch": "2"}, "uptime_seconds": 99,
             "all_ipv4_addresses": ["10.0.0.5", "172.17.0.1"]}
    later = task_vars(omit="__omit_place_holder__9999", inventory_dir="/tmp/run2/inv",
                      ansible_ssh_common_args="-o UserKnownHostsFile=/tmp/run2/known_hosts",
                      ansible_forks=5, ansible_facts=facts, ansible_date_time={"epoch": "2"},
                      ansible_check_mode=True, ansible_diff_mode=True,
                      _proxy_apt_removed={"changed": False, "stdout": "x"})
    assert GATE.inputs_digest(later, args) == first


@pytest.mark.parametrize("change", [
    {"docker_users": ["ubuntu", "ops"]},          # an inventory variable
    {"base_hostname": "node-1"},
    {"groups": {"all": ["n1", "n2", "n3"]}},       # a node joins
    {"ansible_user": "opc"},
    {"http_proxy": "http://proxy:3128"},              # the proxy settings
])
def test_digest_follows_every_input(change: dict[str, Any]) -> None:
    args = {"name": "host_layer", "stamps": ["base"]}
    assert GATE.inputs_digest(task_vars(**change), args) != GATE.inputs_digest(task_vars(), args)


def load_filters() -> Any:
    """The host gate's filter plugin module (provision_gate_decide and its parts)."""
    path = REPO / "playbooks" / "filter_plugins" / "provision_host_gate.py"
    spec = importlib.util.spec_from_file_location("gate_peers_filter", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FILTERS = load_filters()


def peers(hosts: list[str], hostvars: dict[str, Any], addresses: bool = False
          ) -> dict[str, str]:
    """node -> its digest, as provision_gate_decide computes it for every node of a run."""
    return {host: FILTERS.node_digest(hostvars[host], addresses) for host in sorted(hosts)}


def test_peers_are_compared_node_by_node_so_a_limited_run_can_hold(tmp_path: Path) -> None:
    """What the nodes contribute (their /etc/hosts parts) is not in the digest: the record
    keeps one digest per node, the read answers with them, and the playbook compares them with
    this run's node by node (provision_gate_decide, gate_peers_changed): a --limit run (fewer
    nodes) holds while its nodes are as recorded and keeps the others' recorded digests; a node
    whose address changed, or one never recorded, is named."""
    changed = FILTERS.gate_peers_changed
    args = {"name": "host_layer", "stamps": ["base"]}
    assert GATE.inputs_digest(task_vars(), {**args, "peers": {"n2": "0" * 64}}) == \
        GATE.inputs_digest(task_vars(), args)
    hostvars = {"n1": {"base_node_ip": "10.0.0.5"}, "n2": {"base_node_ip": "10.0.0.6"}}
    full = peers(["n1", "n2"], hostvars)
    stamp(tmp_path, "apt_ready", [])
    stamp(tmp_path, "base", [])
    assert gate(tmp_path, peers=full, record=True)["current"] is True
    answer = gate(tmp_path)
    assert answer["current"] is True and answer["peers"] == full
    assert changed(answer, full) == []
    assert changed(answer, peers(["n1"], hostvars)) == []  # --limit n1
    assert gate(tmp_path, peers=peers(["n1"], hostvars), record=True)["peers"] == full  # kept
    moved = peers(["n1", "n2"], {**hostvars, "n2": {"base_node_ip": "10.0.0.7"}})
    assert changed(answer, moved) == ["n2"]
    grown = peers(["n1", "n2", "n3"], {**hostvars, "n3": {"base_node_ip": "10.0.0.8"}})
    assert changed(answer, grown) == ["n3"]
    # where the gate did not hold (or did not run) the layer runs anyway: nothing to add
    assert changed({**answer, "current": False}, moved) == []
    assert changed({"skipped": True}, moved) == [] and changed(None, moved) == []
    assert gate(tmp_path, peers={"n1": "x" * 64})["failed"] is True  # not a digest


def test_gate_decide_reads_every_node_once_and_sorts_the_hosts() -> None:
    """provision_gate_decide: every node's digest (also of nodes no longer in the play), and
    for the hosts still in it: a held gate whose recorded peers match ends the host (with
    per-run steps: the per-run list), a held gate with a changed peer names the node, a gate
    that did not hold or did not run is in no list (the layer runs). Each node's variables
    are read once."""
    reads: list[str] = []

    class Vars(dict):
        def __getitem__(self, host: str) -> Any:
            reads.append(host)
            return super().__getitem__(host)

    nodes = {f"n{i}": {"base_node_ip": f"10.0.0.{i}"} for i in range(1, 6)}
    digests = peers(list(nodes), nodes)
    stale = {**digests, "n5": "0" * 64}
    hostvars = Vars({**nodes,
                     "n1": {**nodes["n1"], "_host_gate": {"current": True, "peers": digests}},
                     "n2": {**nodes["n2"], "_host_gate": {"current": True, "peers": digests,
                                                          "per_run": {"base": ["firewall"]}}},
                     "n3": {**nodes["n3"], "_host_gate": {"current": True, "peers": stale}},
                     "n4": {**nodes["n4"], "_host_gate": {"current": False, "peers": digests}},
                     "n5": {**nodes["n5"], "_host_gate": {"skipped": True}}})
    decision = FILTERS.FilterModule().filters()["provision_gate_decide"](
        list(nodes), hostvars, ["n1", "n2", "n3", "n4"])
    assert decision == {"peers": digests, "peers_changed": {"n3": ["n5"]}, "end": ["n1"],
                        "per_run": ["n2"]}
    assert sorted(reads) == sorted(nodes)  # once each


def test_node_facts_are_ansibles_facts_on_this_machine(tmp_path: Path) -> None:
    """Real: what the gate answers as the host's facts (hostname, default IPv4 interface,
    address and gateway, every IPv4 address in Ansible's order) is what ansible-core's own fact
    gathering finds on this machine; and the fingerprint has an entry for every fact the host
    layer reads (FACTS)."""
    play = [{"hosts": "localhost", "gather_facts": True, "gather_subset": ["!all", "network"],
             "tasks": [{"ansible.builtin.copy": {"content": "{{ ansible_facts | to_json }}",
                                                 "dest": str(tmp_path / "facts.json")}}]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    bindir = Path(sys.executable).parent
    proc = subprocess.run([str(bindir / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={sys.executable}",
                           str(tmp_path / "play.yml")], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    facts = json.loads((tmp_path / "facts.json").read_text())
    spec = importlib.util.spec_from_file_location("provision_stamp_module", MODULE)
    stamp_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stamp_module)
    node = stamp_module.node_facts(True)
    assert node["hostname"] == facts["hostname"]
    assert node["default_ipv4"] == {k: v for k, v in facts["default_ipv4"].items()
                                    if k in ("interface", "address", "gateway")}
    assert node["all_ipv4_addresses"] == facts["all_ipv4_addresses"]
    fingerprint = stamp_module.host_facts(stamp_module.node_facts(False))
    assert set(GATE.FACTS.values()) <= set(fingerprint)
    assert fingerprint["hostname"][0] == facts["hostname"]


def test_tree_digest_follows_provision_files(tmp_path: Path) -> None:
    for top in ("roles/base/tasks", "playbooks"):
        (tmp_path / top).mkdir(parents=True)
    (tmp_path / "roles/base/tasks/main.yml").write_text("- debug: {}\n")
    (tmp_path / "playbooks/bootstrap.yml").write_text("---\n")
    before = GATE.tree_digest.__wrapped__(tmp_path)
    (tmp_path / "roles/base/tasks/main.yml").write_text("- debug: {msg: new}\n")
    assert GATE.tree_digest.__wrapped__(tmp_path) != before


def test_every_fact_the_host_layer_reads_is_an_input() -> None:
    """Each ansible_* name in the host layer's roles is a gate input (ANSIBLE_INPUTS), one of
    the facts it hashes (FACTS), or named here with the reason it is not one."""
    not_inputs = {
        "managed": "ansible_managed: a comment text",
        "facts": "ansible_facts: the facts are read through FACTS",
        "all_ipv4_addresses": "only the proxy's no_proxy list reads it: in peers with a proxy",
        "ssh_extra_args": "connection settings", "ssh_common_args": "connection settings",
        "play_hosts_all": "the run's nodes are compared one by one (peers)",
        "play_hosts": "the nodes still in the play: whose recorded peers are compared",
        "check_mode": "what a run reports, not what the host becomes",
        "host_key_checking": "connection settings", "port": "connection settings",
        "private_key_file": "connection settings", "ssh_private_key_file": "connection settings",
    }
    names: set[str] = set()
    for role in HOST_LAYER:
        for path in (REPO / "roles" / role).rglob("*"):
            if path.is_file() and path.suffix in (".yml", ".j2", ".py"):
                names |= set(re.findall(r"\bansible_([a-z0-9_]+)", path.read_text()))
    names |= set(re.findall(r"\bansible_([a-z0-9_]+)",
                            (REPO / "playbooks" / "bootstrap.yml").read_text()))
    inputs = {n.removeprefix("ansible_") for n in GATE.ANSIBLE_INPUTS}
    missing = sorted(n for n in names if n not in inputs and n not in GATE.FACTS
                     and n not in not_inputs)
    assert not missing, f"ansible_* names the host gate does not hash: {missing}"


def gate_play(tmp_path: Path, *extra: str, interpreter: bool = True) -> dict[str, Any]:
    """One ansible-playbook run (its own process, as every provision run is) on this machine,
    without fact gathering (as bootstrap's first play): a role stamp recorded, the gate read,
    then recorded; the read's result. Without ``interpreter`` the inventory names no Python:
    the gate finds it as Ansible's discovery does."""
    managed = tmp_path / "managed.conf"
    if not managed.exists():
        managed.write_text("one\n")
    stamps = str(tmp_path / "stamps")
    peers = {"localhost": "0" * 64}
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars": {"docker_users": ["ops"],
                      **({"ansible_python_interpreter": sys.executable} if interpreter else {})},
             "tasks": [
                 {"provision_host_gate": {"name": "host_layer", "stamps": ["base"],
                                          "dir": stamps}, "register": "gate"},
                 {"provision_stamp": {"name": "base", "inputs": "i", "files": [str(managed)],
                                      "record": True, "dir": stamps}},
                 {"provision_host_gate": {"name": "host_layer", "stamps": ["base"],
                                          "digest": "{{ gate.digest }}", "record": True,
                                          "peers": peers, "dir": stamps}},
                 {"ansible.builtin.copy": {"content": "{{ gate | to_json }}",
                                           "dest": str(tmp_path / "gate.json")}}]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    bindir = Path(sys.executable).parent
    env = {**os.environ, "ANSIBLE_LIBRARY": str(MODULE.parent),
           "ANSIBLE_ACTION_PLUGINS": str(ACTION.parent),
           # the host's PATH as a fresh machine has it (no pyenv shims ahead of the Pythons)
           "PATH": f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    proc = subprocess.run([str(bindir / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           str(tmp_path / "play.yml"), *extra], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "host layer" in proc.stdout  # the gate's message is in the log without -v
    return json.loads((tmp_path / "gate.json").read_text())


def test_gate_through_ansible_holds_across_runs_and_follows_inputs(tmp_path: Path) -> None:
    """Real ansible-playbook runs (the task variables ansible-core gives the action): the
    digest is the same in a second run (a new omit token), and differs with an extra variable;
    a managed file edited between runs is drift. No facts are gathered: the gate answers with
    the host's own (hostname, default address) for the other nodes' use."""
    first = gate_play(tmp_path)
    assert (first["current"], first["why"]) == (False, "first run")
    second = gate_play(tmp_path)
    assert second["current"] is True and second["digest"] == first["digest"], second
    assert second["ansible_facts"]["ansible_hostname"] == os.uname().nodename.split(".")[0]
    assert "discovered_interpreter_python" not in second["ansible_facts"]  # the inventory's
    assert gate_play(tmp_path, "-e", "docker_users=['ops','dev']")["why"] == "inputs changed"
    gate_play(tmp_path)  # recorded again with the original inputs
    assert gate_play(tmp_path)["current"] is True
    (tmp_path / "managed.conf").write_text("edited\n")
    assert gate_play(tmp_path)["why"] == "role state changed: base"


def test_gate_finds_python_as_ansible_does_and_renders_fact_variables(tmp_path: Path) -> None:
    """Real ansible-playbook runs with no interpreter named and no facts gathered: the gate
    runs under the first Python of Ansible's fallback list the host has (and hands it on as
    discovered_interpreter_python); a variable that reads a fact is rendered with the host's
    facts, gathered by the gate for it (the same digest on the next run), so it counts with
    its value."""
    templated = ("-e", "base_node_ip={{ ansible_lo.ipv4.address }}")
    first = gate_play(tmp_path, *templated, interpreter=False)
    found = first["ansible_facts"]["discovered_interpreter_python"]
    assert found.startswith("/") and "python3" in found
    assert first["ansible_facts"]["ansible_lo"]["ipv4"]["address"] == "127.0.0.1"  # gathered
    second = gate_play(tmp_path, *templated, interpreter=False)
    assert second["current"] is True and second["digest"] == first["digest"], second
    assert gate_play(tmp_path, "-e", "base_node_ip={{ ansible_lo.device }}",
                     interpreter=False)["why"] == "inputs changed"


def test_peers_filter_adds_addresses_only_with_a_proxy() -> None:
    """Each node's /etc/hosts parts; its IPv4 addresses only when a proxy is set (the proxy
    role's no_proxy list names them; without a proxy docker0's address must not count)."""
    hostvars = {"n1": {"ansible_host": "10.0.0.5", "ansible_facts": {
        "hostname": "n1", "default_ipv4": {"address": "10.0.0.5"},
        "all_ipv4_addresses": ["172.17.0.1", "10.0.0.5"]}}, "n2": {"base_node_ip": "10.1.0.6"}}
    plain = peers(["n2", "n1"], hostvars)
    assert sorted(plain) == ["n1", "n2"] and all(len(d) == 64 for d in plain.values())
    renamed = {**hostvars, "n1": {**hostvars["n1"], "ansible_facts": {
        **hostvars["n1"]["ansible_facts"], "hostname": "n1b"}}}
    assert peers(["n1"], renamed)["n1"] != plain["n1"]
    more = {**hostvars, "n1": {**hostvars["n1"], "ansible_facts": {
        **hostvars["n1"]["ansible_facts"], "all_ipv4_addresses": ["10.0.0.5"]}}}
    assert peers(["n1"], more)["n1"] == plain["n1"]  # addresses do not count without a proxy
    assert peers(["n1"], more, True)["n1"] != peers(["n1"], hostvars, True)["n1"]


def test_templated_variables_count_with_their_values() -> None:
    """An inventory variable that is a template counts with its value (what it reads may be a
    fact the gate does not hash); without a templar, its text."""
    args = {"name": "host_layer", "stamps": ["base"]}
    templated = task_vars(base_node_ip="{{ ansible_eth1.ipv4.address }}")
    values = iter(["10.9.0.1", "10.9.0.2"])
    first = GATE.inputs_digest(templated, args, lambda text: next(values))
    assert GATE.inputs_digest(templated, args, lambda text: "10.9.0.1") == first
    assert GATE.inputs_digest(templated, args, lambda text: "10.9.0.2") != first
    assert GATE.plain(["{{ x }}", {"k": "{% if 1 %}y{% endif %}"}], lambda t: t.upper()) == \
        ["{{ X }}", {"k": "{% IF 1 %}Y{% ENDIF %}"}]
