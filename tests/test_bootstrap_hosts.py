"""Which hosts each play of bootstrap.yml runs on, as ansible-playbook itself resolves them
(`--list-hosts`: the real play `hosts:` templating, no host contacted): the cluster layer's
plays choose their hosts from the `provision_components` extra var, so a bootstrap without the
`cluster` component costs those plays no task result on any host; with it (or without the
variable: a standalone run of the playbook) they run on their groups."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INVENTORY = """\
all:
  children:
    control_plane:
      hosts: {cp1: {}}
    workers:
      hosts: {w1: {}, w2: {}}
"""
CLUSTER_PLAYS = {
    "Install the Kubernetes packages": {"cp1", "w1", "w2"},
    "Set up the control planes": {"cp1"},
    "Join the workers": {"w1", "w2"},
    "Install the pod network and wait for the nodes": {"cp1"},
    "Start minikube": {"cp1", "w1", "w2"},
}


def list_hosts(tmp_path: Path, components: list[str] | None) -> dict[str, set[str]]:
    """play name -> its hosts, from ``ansible-playbook --list-hosts``."""
    inv = tmp_path / "hosts.yml"
    inv.write_text(INVENTORY)
    extra = ["-e", json.dumps({"provision_components": components})] if components else []
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv),
         str(REPO / "playbooks" / "bootstrap.yml"), "--list-hosts", *extra],
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}, cwd=REPO,
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    plays: dict[str, set[str]] = {}
    name = ""
    for line in proc.stdout.splitlines():
        m = re.match(r"\s+play #\d+ \(.*?\): (.+?)\tTAGS", line)
        if m:
            name = m.group(1)
            plays[name] = set()
        elif name and re.match(r"^\s{6}\S+$", line):
            plays[name].add(line.strip())
    return plays


@pytest.mark.parametrize("components", [["base"], ["base", "docker"], ["addons"]])
def test_the_cluster_plays_have_no_hosts_without_the_cluster_component(
        tmp_path: Path, components: list[str]) -> None:
    plays = list_hosts(tmp_path, components)
    assert plays["Prepare the hosts"] == {"cp1", "w1", "w2"}
    for name in CLUSTER_PLAYS:
        assert plays[name] == set(), (name, plays)


@pytest.mark.parametrize("components", [["base", "containerd", "cluster"], None])
def test_the_cluster_plays_run_on_their_groups_with_it_or_standalone(
        tmp_path: Path, components: list[str] | None) -> None:
    plays = list_hosts(tmp_path, components)
    for name, hosts in CLUSTER_PLAYS.items():
        assert plays[name] == hosts, (name, plays)
