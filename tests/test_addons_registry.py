"""The optional private registry (roles/registry) on a real lab host.

Real: Debian's docker-registry (distribution 2.8) and apache2-utils installed from Debian on a
systemd lab container; its certificate issued by Debian's Pebble through lego (the acme_cert
role, http-01, Pebble and challtestsrv on this machine as in tests/test_acme_pebble.py);
basic auth with a bcrypt htpasswd file; the node trusts Pebble's root through its system
store, so plain `curl https://<domain>:5000/v2/` (no --cacert) verifies the registry.
Named without "pebble"/"acme" so that `pytest -k "pebble or acme"` keeps selecting only the
ACME tests.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "roles" / "registry"
PLAY = """
- name: Private registry
  hosts: all
  become: true
  gather_facts: false
  roles:
    - role: registry
"""


def test_registry_role_passes_ansible_lint_production() -> None:
    import sys

    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-lint"), "--profile", "production",
         "--offline", "-q", "roles/registry"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_registry_password_tasks_are_no_log() -> None:
    for path in (ROLE / "tasks").glob("*.yml"):
        for task in yaml.safe_load(path.read_text()) or []:
            text = yaml.safe_dump(task)
            if "password" in text and "assert" not in text.split("\n", 1)[0]:
                assert task.get("no_log") is True, (path.name, task.get("name"))


def _status(lab: Any, host: str, domain: str, *curl: str) -> str:
    proc = lab.ssh(host, "curl -s -o /dev/null -w '%{http_code}' --resolve "
                         f"{domain}:5000:127.0.0.1 {' '.join(curl)} https://{domain}:5000/v2/")
    return proc.stdout.strip() or f"rc={proc.returncode} {proc.stderr.strip()}"


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3000)
@pytest.mark.skipif(shutil.which("pebble") is None, reason="needs Debian's pebble")
def test_registry_tls_basic_auth_and_node_trust_on_a_lab_host(lab_host: Any,
                                                              tmp_path: Path) -> None:
    """Real: the registry serves a certificate that chains to the ACME CA's root for its
    name, refuses without (or with wrong) credentials (401), answers with them (200); the node
    verifies it through its system trust store; the key is 0600 docker-registry; a second run
    changes nothing and the password is not in the log."""
    from test_acme_pebble import acme_inventory, lab_addresses, start_pebble

    from provision.inventory import load_inventory
    from provision.runner import run_playbook

    lab = lab_host()
    host = lab.hosts[0]
    _, ip, gateway = lab_addresses(lab)
    pebble = start_pebble(tmp_path / "pebble", gateway, ip)
    try:
        domain = "registry.lab.example"
        password = "pw-" + secrets.token_hex(8)
        root = pebble.root_pem()
        inv = load_inventory(acme_inventory(lab, tmp_path, pebble, acme_challenge="http-01"))
        play = tmp_path / "registry.yml"
        play.write_text(PLAY)
        values = {"registry_domain": domain, "registry_ca_cert": root.decode(),
                  "registry_users": [{"name": "ci", "password": password}]}
        first = run_playbook(command="test registry", playbook=str(play), inventory=inv,
                             extravars=values, quiet=True)
        log = first.log_path.read_text()
        assert first.ok, f"{first.errors}\n{log[-5000:]}"
        assert password not in log

        ctx = ssl.create_default_context(cadata=root.decode())  # the served chain, from here
        with socket.create_connection((ip, 5000), timeout=30) as raw, \
                ctx.wrap_socket(raw, server_hostname=domain) as tls:
            assert tls.getpeercert()["subjectAltName"] == (("DNS", domain),)

        assert _status(lab, host, domain) == "401"
        assert _status(lab, host, domain, "-u", f"ci:{password}") == "200"
        assert _status(lab, host, domain, "-u", "ci:wrong") == "401"
        key = lab.ssh(host, f"sudo stat -c '%a %U' /etc/docker/registry/tls/{domain}.key")
        assert key.stdout.strip() == "600 docker-registry", key
        htpasswd = lab.ssh(host, "sudo stat -c '%a %G' /etc/docker/registry/htpasswd; "
                                 "sudo cut -c1-7 /etc/docker/registry/htpasswd")
        assert htpasswd.stdout.split() == ["640", "docker-registry", "ci:$2y$"], htpasswd

        second = run_playbook(command="test registry", playbook=str(play), inventory=inv,
                              extravars=values, quiet=True)
        assert second.ok, second.errors
        assert second.hosts[host]["changed"] == 0, [e["task"] for e in second.events
                                                    if e.get("changed")]
    finally:
        pebble.stop()
