"""The pkgs.k8s.io signing key is refreshed when apt reports it expired (issue 15).

Real: apt on a lab container host reading the simulator's per-minor repository over HTTP with
a `signed-by` key file, gpg keys and signatures, the role's tasks (kubernetes_packages,
`tasks_from: repository`). The situation is the one pkgs.k8s.io users met: the host kept a
copy of the repository key from an earlier run, the key's expiry date has passed, upstream
extended it (same key, new expiry) and signs with it; apt says EXPKEYSIG until the key file is
downloaded again. The expired copy is made with gpg's --faked-system-time (created in 2020,
expired a month later)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from simulator.fixtures import lab_gateway
from simulator.packaging import RepoServer, SigningKey, build_repo
from test_bootstrap_container import ssh_ok

from provision.runner import run_playbook

pytestmark = [pytest.mark.container, pytest.mark.slow]

KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.asc"
SOURCES = "/etc/apt/sources.list.d/kubernetes.list"
PLAY = """\
- name: Add the Kubernetes repository
  hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: Add the repository
      ansible.builtin.include_role:
        name: kubernetes_packages
        tasks_from: repository
"""


def gpg(home: Path, *args: str) -> str:
    return subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                           *args], env=dict(os.environ, GNUPGHOME=str(home)), check=True,
                          capture_output=True, text=True).stdout


def expired_then_extended_key(home: Path) -> tuple[SigningKey, str]:
    """A signing key whose old public copy expired in 2020, and the key with its expiry
    extended (what the repository now serves): (extended key, old armored copy)."""
    home.mkdir(mode=0o700)
    gpg(home, "--faked-system-time", "20200101T000000", "--quick-gen-key",
        "provision simulator repo <sim@provision.invalid>", "ed25519", "sign", "2020-02-01")
    listing = gpg(home, "--with-colons", "--list-secret-keys")
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))
    old = gpg(home, "--armor", "--export", fpr)
    gpg(home, "--quick-set-expire", fpr, "0")
    return SigningKey(home, fpr, gpg(home, "--armor", "--export", fpr)), old


@pytest.mark.in_make_test  # about 1 min
@pytest.mark.timeout(1800)
def test_expired_repository_key_is_downloaded_again(lab_host: Any, tmp_path: Path) -> None:
    """With the expired copy in place, `apt-get update` of the repository fails with
    EXPKEYSIG (checked first); the role's run reads the index after downloading the key again
    (the new file is the extended key, madison lists the minor's releases); a re-run changes
    nothing."""
    key, old = expired_then_extended_key(tmp_path / "gnupg")
    repo = build_repo(tmp_path / "repo", tmp_path / "debs", minors=[31], key=key)
    lab = lab_host()
    host = lab.hosts[0]
    server = RepoServer(repo.root, lab_gateway(lab), 0)
    try:
        url = f"{server.url}/core:/stable:/v1.31/deb/"
        sources = ("# Managed by provision (role kubernetes_packages)\n"
                   f"deb [signed-by={KEYRING}] {url} /\n")
        ssh_ok(lab, host, f"sudo mkdir -p /etc/apt/keyrings && printf '%s' '{old}' | "
                          f"sudo tee {KEYRING} >/dev/null && printf '%s' '{sources}' | "
                          f"sudo tee {SOURCES} >/dev/null")
        control = lab.ssh(host, f"sudo apt-get update -o Dir::Etc::sourcelist={SOURCES} "
                                "-o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0")
        assert "EXPKEYSIG" in control.stdout + control.stderr, control.stdout + control.stderr

        play = tmp_path / "repository.yml"
        play.write_text(PLAY)
        extravars = {"kubernetes_version": "1.31", "kubernetes_packages_repo_url": url}
        first = run_playbook(command="test", playbook=str(play), inventory=lab.inventory,
                             extravars=extravars, quiet=True)
        log = first.log_path.read_text()
        assert first.ok, f"{first.errors}\n{log[-5000:]}"
        assert "Download the signing key again (apt reports an expired or unknown key)" in log
        assert ssh_ok(lab, host, f"cat {KEYRING}").strip() == key.armored.strip()
        madison = ssh_ok(lab, host, "apt-cache madison kubeadm")
        assert "1.31.3-1.1" in madison, madison

        second = run_playbook(command="test", playbook=str(play), inventory=lab.inventory,
                              extravars=extravars, quiet=True)
        assert second.ok and second.hosts[host]["changed"] == 0, second.hosts
    finally:
        server.stop()
