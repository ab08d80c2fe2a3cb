"""`provision registry`: bad input exits 2 before contact (fast), and on two lab hosts a real
`docker push` to the registry from one node and a pull from the other.

Lab test, real: two Debian 12 systemd containers with docker installed by `provision bootstrap
--components base,docker`; Debian's docker-registry with its certificate issued by Debian's
Pebble through lego (http-01; Pebble and challtestsrv on this machine, as in
tests/test_acme_pebble.py); basic auth; the other node trusts Pebble's root through
/etc/docker/certs.d (installed by the command's trust play); docker login, push, pull and run.
The registry's name resolves through /etc/hosts on the nodes (written by the test).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provision.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("PROVISION_REGISTRY_PASSWORD", raising=False)
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  vars:\n    acme_email: ops@example.org\n  children:\n"
                   "    control_plane:\n      hosts:\n        cp1: {ansible_host: 127.0.0.1}\n"
                   "    workers:\n      hosts:\n        w1: {ansible_host: 127.0.0.2}\n")
    return inv


CASES = [
    ([], {}, "no registry domain: give --domain"),
    (["--domain", "r.example.org"], {}, "no registry user: give --user NAME"),
    (["--domain", "*.example.org", "--user", "ci"], {}, "not a wildcard"),
    (["--domain", "r.example.org;id", "--user", "ci"], {}, "--domain"),
    (["--domain", "r.example.org", "--user", "a b"], {}, "--user 'a b'"),
    (["--domain", "r.example.org", "--user", "ci"], {}, "no terminal to ask the password"),
    (["--domain", "r.example.org", "--user", "ci"], {"PROVISION_REGISTRY_PASSWORD": "short"},
     "at least 8 characters"),
    (["--domain", "r.example.org", "--user", "ci", "--host", "nope"],
     {"PROVISION_REGISTRY_PASSWORD": "long-enough"}, "--host nope: not a host"),
    (["--domain", "r.example.org", "--user", "ci", "--ca-file", "hosts.yml"],
     {"PROVISION_REGISTRY_PASSWORD": "long-enough"}, "expected PEM certificates only"),
    (["--domain", "r.example.org", "--user", "ci", "--port", "７"], {}, "--port"),
    (["--domain", "r.example.org", "--user", "ci", "--limit", "w1"], {}, "--limit"),
]


@pytest.mark.parametrize(("args", "env", "message"), CASES)
def test_registry_bad_input_exits_2_before_contact(
        args: list[str], env: dict[str, str], message: str, inventory: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115 - no terminal
    with pytest.raises(SystemExit) as exc:
        main(["-i", str(inventory), "registry", *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "state" / "provision" / "runs").exists()


def test_registry_plan_from_flags_and_inventory(inventory: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from provision.commands.registry import plan
    from provision.inventory import load_inventory

    monkeypatch.setenv("PROVISION_REGISTRY_PASSWORD", "long-enough")
    inv = load_inventory(inventory)
    flags = {"domain": "r.example.org", "port": 5443, "user": "ci", "email": None,
             "server": None, "ca_file": None}
    host, extravars = plan(inv, None, flags)
    assert host == "cp1"
    assert extravars == {"registry_host": "cp1", "registry_domain": "r.example.org",
                         "registry_port": 5443,
                         "registry_users": [{"name": "ci", "password": "long-enough"}]}


# --- the lab proof ----------------------------------------------------------------------------

@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(shutil.which("pebble") is None, reason="needs Debian's pebble")
def test_registry_command_push_from_one_node_pull_from_the_other(
        lab_cluster: Any, tmp_path: Path) -> None:
    """`provision registry --host lab-1 --user ci --ca-file ROOT`: lab-1 serves the registry
    (ACME certificate from Pebble, basic auth), lab-2 trusts Pebble's root for docker and
    containerd; docker on lab-1 logs in and pushes an image, docker on lab-2 logs in, pulls
    and runs it; a second run changes nothing on either node; the password is in no log."""
    from test_acme_pebble import acme_inventory, lab_addresses, start_pebble
    from test_bootstrap_container import bootstrap, prepare_verify_image, ssh_ok

    lab = lab_cluster(control_planes=1, workers=1)
    reg, other = lab.hosts
    for host in (reg, other):
        prepare_verify_image(lab, host)
    bootstrap(lab, "--components", "base,docker", timeout=3000)
    _, ip, gateway = lab_addresses(lab)
    domain = "registry.lab.example"
    for host in (reg, other):
        ssh_ok(lab, host, f"echo '{ip} {domain}' | sudo tee -a /etc/hosts >/dev/null")
    pebble = start_pebble(tmp_path / "pebble", gateway, ip)
    try:
        root = tmp_path / "root.pem"
        root.write_bytes(pebble.root_pem())
        inv = acme_inventory(lab, tmp_path, pebble, acme_challenge="http-01")
        password = "pw-" + secrets.token_hex(8)
        env = {**lab.env, "PROVISION_REGISTRY_PASSWORD": password}

        def run() -> dict[str, Any]:
            proc = subprocess.run(
                [sys.executable, "-m", "provision", "-i", str(inv), "--json", "registry",
                 "--host", reg, "--domain", domain, "--user", "ci", "--ca-file", str(root)],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
            result = json.loads(proc.stdout)
            assert password not in Path(result["log"]).read_text()
            return result

        first = run()
        assert first["registry"] == {"host": reg, "domain": domain, "port": 5000}
        assert first["hosts"][other]["changed"] > 0  # the CA installed for docker, containerd
        ref = f"{domain}:5000/provision/verify:1"
        login = f"echo {password} | docker login -u ci --password-stdin {domain}:5000"
        ssh_ok(lab, reg, f"{login} && docker tag provision-verify:1 {ref} && docker push {ref}")
        assert "proof-from-registry" in ssh_ok(
            lab, other, f"{login} && docker rmi -f provision-verify:1 >/dev/null; "
                        f"docker pull {ref} >/dev/null && docker run --rm {ref} "
                        "/echo proof-from-registry")
        # containerd (docker.io's dependency) gets the CA too, where it is installed
        hosts_toml = f"/etc/containerd/certs.d/{domain}:5000/hosts.toml"
        assert ssh_ok(lab, other, f"if [ -d /etc/containerd ]; then grep -c 'ca = ' "
                                  f"{hosts_toml}; else echo none; fi").strip() in ("1", "none")
        second = run()
        assert second["hosts"][reg]["changed"] == 0 and second["hosts"][other]["changed"] == 0
    finally:
        pebble.stop()
