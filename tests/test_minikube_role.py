"""The minikube role on a real lab host with a SIMULATED minikube binary
(tests/simulator_minikube/minikube: the real CLI surface and rules, DRV_AS_ROOT included).

Real: docker installed by the docker component (docker group for the SSH user), the downloads
from a file server on the test host with sha256 verification, `become_user` to the non-root
user, the systemd unit (enabled, and started to prove it runs as the user), the second run
reporting changed=0, the refusal of root. Simulated: what `minikube start` does after its
checks (no Kubernetes node is created) and kubectl (version only).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from simulator.fixtures import lab_gateway
from simulator.packaging import RepoServer

from provision.runner import RunResult, run_playbook

pytestmark = [pytest.mark.container, pytest.mark.slow]

FAKES = Path(__file__).parent / "simulator_minikube"
RELEASE = "1.31.2"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ssh_ok(lab: Any, host: str, command: str) -> str:
    proc = lab.ssh(host, command)
    assert proc.returncode == 0, f"{host}: {command!r} exited {proc.returncode}:\n" \
                                 f"{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def set_host_vars(lab: Any, host: str, values: dict[str, Any]) -> None:
    path = Path(lab.inventory_dir) / "host_vars" / f"{host}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    path.write_text(yaml.safe_dump({**current, **values}, sort_keys=True))


def cluster(lab: Any, **extravars: Any) -> RunResult:
    from provision.validate import validate

    errors, _ = validate(lab.inventory)
    assert not errors, errors
    return run_playbook(command="bootstrap", playbook="cluster.yml", inventory=lab.inventory,
                        extravars={"provision_components": ["cluster"], **extravars},
                        quiet=True)


def starts(lab: Any, host: str) -> list[dict]:
    text = ssh_ok(lab, host, "cat ~/.minikube/simulator-starts.jsonl 2>/dev/null || true")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def serve_simulated(root: Path, kubectl_release: str = RELEASE) -> Path:
    """The simulated minikube and kubectl in ``root`` as the role downloads them."""
    root.mkdir()
    shutil.copy2(FAKES / "minikube", root / "minikube-linux-amd64")
    (root / "kubectl").write_text((FAKES / "kubectl").read_text().replace("@VERSION@",
                                                                          kubectl_release))
    return root


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """The simulated minikube and kubectl as the role downloads them."""
    return serve_simulated(tmp_path / "www")


@contextmanager
def simulated_minikube(lab: Any, host: str, served: Path,
                       kubernetes_version: str) -> Iterator[None]:
    """The shared setup of the simulated-minikube lab tests: the docker component
    bootstrapped (offline verification), ``served`` (see serve_simulated) served from this
    machine, the host in minikube mode with ``kubernetes_version`` and the checksums of the
    served files (2 CPUs, 2 GiB); the file server stops when the block ends."""
    set_host_vars(lab, host, {"docker_verify_image": ""})  # offline: `docker info` only
    docker = lab.cli("-i", "lab", "--json", "bootstrap", "--components", "docker", timeout=1500)
    assert docker.returncode == 0, f"docker component failed:\n{docker.stdout}\n" \
                                   f"{docker.stderr[-3000:]}"
    server = RepoServer(served, lab_gateway(lab), 0)
    try:
        set_host_vars(lab, host, {
            "provision_mode": "minikube", "kubernetes_version": kubernetes_version,
            "minikube_url": f"{server.url}/minikube-linux-amd64",
            "minikube_checksum": f"sha256:{sha256(served / 'minikube-linux-amd64')}",
            "minikube_kubectl_url": f"{server.url}/kubectl",
            "minikube_kubectl_checksum": f"sha256:{sha256(served / 'kubectl')}",
            "minikube_cpus": 2, "minikube_memory": 2048})
        yield
    finally:
        server.stop()


@pytest.mark.timeout(3600)  # installs docker.io first; far longer when the machine is loaded
def test_minikube_role_simulated_runs_as_docker_group_user_never_root(lab_host: Any,
                                                                      served: Path) -> None:
    """Simulated minikube: the role installs the checksum-verified binaries, starts minikube
    with the docker driver as the non-root docker-group user (the simulator records uid and
    arguments), enables a boot unit running as that user; rerun changed=0; root is refused
    with the DRV_AS_ROOT explanation and a wrong checksum fails the download."""
    lab = lab_host()
    host = lab.hosts[0]
    user = lab.inventory.hosts[host].user
    assert user and user != "root"
    with simulated_minikube(lab, host, served, RELEASE):
        first = cluster(lab)
        assert first.ok, f"{first.errors}\n{first.log_path.read_text()[-5000:]}"
        runs = starts(lab, host)
        assert len(runs) == 1, runs
        assert runs[0]["uid"] != 0 and runs[0]["user"] == user
        assert runs[0]["argv"] == ["start", "--driver=docker", f"--kubernetes-version=v{RELEASE}",
                                   "--cpus=2", "--memory=2048"]
        assert ssh_ok(lab, host, "stat -c '%a %U' ~/.kube/config").split() == ["600", user]
        assert ssh_ok(lab, host, "minikube status --output=json").strip().startswith("{")
        assert f"v{RELEASE}" in ssh_ok(lab, host, "kubectl version --client")
        installed = ssh_ok(lab, host, "sha256sum /usr/local/bin/minikube").split()[0]
        assert installed == sha256(served / "minikube-linux-amd64")
        unit = ssh_ok(lab, host, "systemctl cat minikube.service")
        assert f"User={user}" in unit and "--driver=docker" in unit
        assert ssh_ok(lab, host, "systemctl is-enabled minikube.service").strip() == "enabled"

        second = cluster(lab)
        assert second.ok and second.hosts[host]["changed"] == 0, \
            f"second run: {second.hosts}\n{second.log_path.read_text()[-5000:]}"
        assert len(starts(lab, host)) == 1, "minikube start ran again on the second run"

        # the boot unit starts the cluster as the user, not as root
        ssh_ok(lab, host, "sudo -n systemctl start minikube.service")
        runs = starts(lab, host)
        assert len(runs) == 2 and runs[1]["uid"] == runs[0]["uid"] != 0

        # the simulated binary refuses root exactly like minikube
        as_root = lab.ssh(host, "sudo -n /usr/local/bin/minikube start --driver=docker")
        assert as_root.returncode == 57
        assert 'Exiting due to DRV_AS_ROOT: The "docker" driver should not be used with root ' \
               "privileges." in as_root.stderr

        # the role refuses root before minikube could run
        refused = cluster(lab, minikube_user="root")
        assert not refused.ok
        message = " ".join(e["message"] for e in refused.errors)
        assert "DRV_AS_ROOT" in message and "should not be used with root privileges" in message
        assert len(starts(lab, host)) == 2

        # a download that does not match its checksum fails
        bad = cluster(lab, minikube_checksum="sha256:" + "0" * 64)
        assert not bad.ok
        assert any("checksum" in e["message"].lower() for e in bad.errors), bad.errors
