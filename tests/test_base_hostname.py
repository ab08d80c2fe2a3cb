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
    tasks = yaml.safe_load((ROOT / "roles/base/tasks/main.yml").read_text())
    task = next(t for t in tasks if "ansible.builtin.hostname" in t)
    assert task["when"].startswith("base_hostname | length > 0")


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
