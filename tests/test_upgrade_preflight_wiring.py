"""The hop's simulated install runs before anything changes on a node: first in steps/drain.yml
(before the drain command) and in steps/kubeadm-install.yml (before kubeadm is installed), the first
step of a worker and of a control plane. The simulation itself is proven with real apt in
tests/test_packages_upgrade_apt.py."""

from __future__ import annotations

from pathlib import Path

import yaml

from provision.upgrade import steps

TASKS = Path(__file__).resolve().parent.parent / "roles/kubeadm_upgrade/tasks"


def first_task(name: str) -> dict:
    return yaml.safe_load((TASKS / "steps" / name).read_text())[0]


def test_every_nodes_first_step_starts_with_the_preflight() -> None:
    firsts = {steps.node_steps("control-plane", first=True)[0],
              steps.node_steps("control-plane", first=False)[0], steps.WORKER[0]}
    assert firsts == {"kubeadm-install", "drain"}
    for step in firsts:
        assert first_task(f"{step}.yml").get("ansible.builtin.include_tasks") == \
            "preflight.yml", step


def test_preflight_simulates_all_three_packages_at_the_hop_version() -> None:
    tasks = yaml.safe_load((TASKS / "preflight.yml").read_text())
    assert [t.get("ansible.builtin.include_tasks") for t in tasks[:2]] == [
        "repository.yml", "version.yml"]
    sim = tasks[2]
    assert sim["ansible.builtin.include_role"] == {"name": "kubernetes_packages",
                                                   "tasks_from": "simulate.yml"}
    assert sim["vars"]["kubernetes_packages_names"] == ["kubeadm", "kubelet", "kubectl"]
    assert sim["vars"]["kubernetes_packages_deb_version"] == \
        "{{ kubeadm_upgrade_node_deb_version }}"
