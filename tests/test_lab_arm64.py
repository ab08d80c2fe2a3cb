"""arm64 lab hosts: a Debian arm64 systemd container under qemu-user-static (binfmt).

The realistic ARM check available on an amd64 machine for OCI Ampere hosts: the same
packages, systemd and sshd, every binary of the host emulated.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Slow, but part of `make test`: the lab's VMs and arm64 hosts must be shown in CI.
pytestmark = pytest.mark.in_make_test

PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "lab-arch.yml"


@pytest.mark.container
@pytest.mark.arm64
@pytest.mark.slow
@pytest.mark.timeout(1800)  # systemd boot under emulation; slow when the machine is loaded
def test_arm64_container_reports_aarch64_and_runs_a_playbook(lab_host) -> None:
    from provision.runner import run_playbook

    lab = lab_host(arch="arm64")
    uname = lab.ssh("lab-1", "uname -m")
    assert uname.returncode == 0, uname.stderr
    assert uname.stdout.strip() == "aarch64"

    first = run_playbook(command="test-lab-arm64", playbook=str(PLAYBOOK),
                         inventory=lab.inventory, extravars={"expected_arch": "aarch64"},
                         quiet=True)
    assert first.ok, first.errors
    assert first.hosts["lab-1"]["changed"] == 1
    second = run_playbook(command="test-lab-arm64", playbook=str(PLAYBOOK),
                          inventory=lab.inventory, extravars={"expected_arch": "aarch64"},
                          quiet=True)
    assert second.ok, second.errors
    assert second.hosts["lab-1"]["changed"] == 0
    marker = lab.ssh("lab-1", "cat /etc/provision-lab-arch; dpkg --print-architecture")
    assert marker.stdout.split() == ["aarch64", "arm64"]

    # the play's arch check is real: expecting x86_64 on this host fails, naming host and task
    wrong = run_playbook(command="test-lab-arm64", playbook=str(PLAYBOOK),
                         inventory=lab.inventory, extravars={"expected_arch": "x86_64"},
                         quiet=True)
    assert not wrong.ok
    assert wrong.errors[0]["host"] == "lab-1"
    assert "is aarch64, expected x86_64" in wrong.errors[0]["message"]
