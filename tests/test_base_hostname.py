"""bootstrap keeps a host's name unless asked (``base_hostname`` is opt-in); the /etc/hosts
block names each node by its real hostname and its inventory name."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import yaml

from provision.runner import run_playbook

ROOT = Path(__file__).resolve().parent.parent


def test_base_hostname_is_opt_in():
    defaults = yaml.safe_load((ROOT / "roles/base/defaults/main.yml").read_text())
    assert defaults["base_hostname"] == ""
    spec = yaml.safe_load((ROOT / "roles/base/meta/argument_specs.yml").read_text())
    assert spec["argument_specs"]["main"]["options"]["base_hostname"]["default"] == ""
    tasks = yaml.safe_load((ROOT / "roles/base/tasks/host.yml").read_text())
    task = next(t for t in tasks if "ansible.builtin.hostname" in t)
    assert task["when"].startswith("base_hostname | length > 0")
    # host.yml is reached (steps.yml imports it unconditionally) for a hostname to set even
    # when the stamp is current
    main = yaml.safe_load((ROOT / "roles/base/tasks/main.yml").read_text())
    include = next(t for t in main if t.get("ansible.builtin.include_tasks") == "steps.yml")
    assert "(base_hostname | length > 0 and ansible_hostname != base_hostname)" in include["when"]
    steps = yaml.safe_load((ROOT / "roles/base/tasks/steps.yml").read_text())
    host = next(t for t in steps if t.get("ansible.builtin.import_tasks") == "host.yml")
    assert "when" not in host


def test_hosts_block_names_real_hostname_and_inventory_name(tmp_path, monkeypatch):
    """Rendered by Ansible from the role's template, facts gathered on localhost."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    common = f"ansible_connection: local, ansible_python_interpreter: {sys.executable}"
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n"
                   f"    n1: {{{common}, base_node_ip: 10.0.0.1}}\n"
                   f"    n2: {{{common}, base_node_ip: 10.0.0.2, base_hostname: renamed}}\n")
    out = tmp_path / "block"
    result = run_playbook(command="hosts-block", playbook=str(ROOT / "tests/playbooks/"
                                                               "hosts-block.yml"),
                          inventory=inv, quiet=True, extravars={"out_path": str(out)})
    assert result.ok, result.errors
    real = socket.gethostname().split(".")[0]
    assert out.read_text().splitlines() == [f"10.0.0.1 {real} n1", "10.0.0.2 renamed n2"]


def test_hosts_block_keeps_the_lines_of_nodes_outside_a_limited_run(tmp_path, monkeypatch):
    """--limit n1: n2 has no facts in this run, so its line is kept as the block on the host
    has it (its real hostname included) instead of being rewritten without the hostname or
    dropped; a node the block does not know yet is written from what the inventory says.
    Rendered by Ansible from the role's template; the role reads /etc/hosts only then."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    common = f"ansible_connection: local, ansible_python_interpreter: {sys.executable}"
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n"
                   f"    n1: {{{common}, base_node_ip: 10.0.0.1}}\n"
                   f"    n2: {{{common}, base_node_ip: 10.0.0.2}}\n"
                   f"    n3: {{{common}, base_node_ip: 10.0.0.3}}\n")
    hosts = tmp_path / "etc-hosts"
    hosts.write_text("127.0.0.1 localhost\n# BEGIN provision cluster nodes\n"
                     "10.0.0.1 old-n1 n1\n10.0.0.2  node-two   n2\n"
                     "# END provision cluster nodes\n10.9.9.9 other n3\n")
    out = tmp_path / "block"
    result = run_playbook(command="hosts-block", playbook=str(ROOT / "tests/playbooks/"
                                                               "hosts-block.yml"),
                          inventory=inv, quiet=True, limit="n1",
                          extravars={"out_path": str(out), "etc_hosts_path": str(hosts)})
    assert result.ok, result.errors
    real = socket.gethostname().split(".")[0]
    # n1 is in the run (facts: its real name); n2 kept as written; n3 outside the block: new
    assert out.read_text().splitlines() == [f"10.0.0.1 {real} n1", "10.0.0.2 node-two n2",
                                            "10.0.0.3 n3"]


def test_the_role_reads_etc_hosts_only_for_a_limited_run():
    tasks = yaml.safe_load((ROOT / "roles/base/tasks/main.yml").read_text())
    read = next(t for t in tasks if "ansible.builtin.slurp" in t)
    assert read["register"] == "_base_etc_hosts"
    assert "difference(ansible_play_hosts_all)" in read["when"]
    assert tasks.index(read) < next(i for i, t in enumerate(tasks) if "provision_stamp" in t)
