"""Proof on a real lab container: the only route to packages is a proxy the test starts.

The container's default route is removed, so apt can reach deb.debian.org only through a real
forward proxy (``tests/proxy_support.py``, Basic authentication with a canary password) on the
lab network's gateway. The role ``proxy`` points apt at it and the real ``containerd`` role
installs containerd from Debian through it and gives the daemon the proxy in a systemd drop-in.
The second run changes nothing, and the password never appears in any file of the runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from proxy_support import ForwardProxy

from provision.runner import run_playbook

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "pr0xy-Canary-7f3a"
USER = "labuser"


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


def _container(lab) -> tuple[str, str, str]:
    """(container name, its address, the lab network's gateway)."""
    from provision.lab import container, state

    lid = state.lab_id(lab.lab_dir)
    name = container.container_name(lid, lab.hosts[0])
    net = container.network_name(lid)
    address = _docker("inspect", "-f",
                      "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)
    gateway = _docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", net)
    return name, address, gateway


def _files_with(root: Path, needle: str) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and needle.encode() in path.read_bytes():
            hits.append(str(path))
    return hits


@pytest.mark.container
@pytest.mark.slow
def test_apt_and_containerd_work_only_through_the_proxy(lab_host):
    lab = lab_host()
    node = lab.hosts[0]
    _name, address, gateway = _container(lab)
    with ForwardProxy(gateway, {"deb.debian.org"}, (USER, PASSWORD)) as proxy:
        cut = lab.ssh(node, "sudo ip route del default && ! python3 -c \"import socket; "
                            "socket.create_connection(('192.0.2.1', 80), 5)\"")
        assert cut.returncode == 0, cut.stdout + cut.stderr  # no direct route any more
        url = proxy.url((USER, PASSWORD))
        group_vars = lab.inventory_dir / "group_vars" / "all.yml"
        data = yaml.safe_load(group_vars.read_text()) or {}
        data.update({"http_proxy": url, "https_proxy": url, "no_proxy": [".example.internal"],
                     "registry_k8s_mirrors": ["https://mirror.example.internal"]})
        group_vars.write_text(yaml.safe_dump(data))

        first = run_playbook(command="proxy-lab", inventory=lab.inventory, quiet=True,
                             playbook=str(ROOT / "tests/playbooks/proxy-lab.yml"))
        assert first.ok, first.errors
        served = [r for r in proxy.requests if r[1] == "deb.debian.org" and r[2] == 200]
        assert served, (proxy.requests, proxy.refused)  # apt went through the proxy
        assert not [r for r in proxy.refused if r[0] == "host"], proxy.refused

        second = run_playbook(command="proxy-lab", inventory=lab.inventory, quiet=True,
                              playbook=str(ROOT / "tests/playbooks/proxy-lab.yml"))
        assert second.ok, second.errors
        assert second.hosts[node]["changed"] == 0, second.hosts

        apt_conf = lab.ssh(node, "sudo stat -c %a /etc/apt/apt.conf.d/95provision-proxy && "
                                 "sudo cat /etc/apt/apt.conf.d/95provision-proxy")
        mode, *conf = apt_conf.stdout.splitlines()
        assert mode == "600"
        assert f'Acquire::http::Proxy "{url}";' in conf
        assert f'Acquire::https::Proxy "{url}";' in conf
        assert 'Acquire::http::Proxy::localhost "DIRECT";' in conf

        dropin = "/etc/systemd/system/containerd.service.d/http-proxy.conf"
        shown = lab.ssh(node, f"sudo stat -c %a {dropin} && sudo systemctl show containerd "
                              "-p Environment --value && sudo cat /proc/$(systemctl show "
                              "containerd -p MainPID --value)/environ | tr '\\0' '\\n'")
        assert shown.returncode == 0, shown.stderr
        mode, environment, *process_env = shown.stdout.splitlines()
        assert mode == "600"
        env = dict(word.split("=", 1) for word in environment.split())
        assert env["HTTP_PROXY"] == env["https_proxy"] == url
        no_proxy = env["NO_PROXY"].split(",")
        for entry in ("localhost", "127.0.0.1", "::1", node, address, "10.244.0.0/16",
                      "10.96.0.0/12", ".svc", ".cluster.local", ".example.internal"):
            assert entry in no_proxy, (entry, no_proxy)
        assert f"HTTPS_PROXY={url}" in process_env  # the running daemon has it (restarted)

        hosts_toml = lab.ssh(node, "cat /etc/containerd/certs.d/registry.k8s.io/hosts.toml")
        assert '[host."https://mirror.example.internal"]' in hosts_toml.stdout

    from provision.paths import runs_dir

    for result in (first, second):
        assert PASSWORD not in result.log_path.read_text()
    assert _files_with(runs_dir(), PASSWORD) == []
    summary = json.loads((second.run_dir / "summary.json").read_text())
    assert PASSWORD not in json.dumps(summary)
