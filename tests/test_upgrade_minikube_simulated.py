"""`provision upgrade` in minikube mode on a real lab host with the SIMULATED minikube
(tests/simulator_minikube: the real CLI surface and rules, K8S_DOWNGRADE_UNSUPPORTED and
DRV_AS_ROOT included; it records every `start` with the caller's uid).

Real: the docker component, the minikube role's checksum-verified downloads, become_user to the
non-root docker-group user, the systemd boot unit, the discovery and hop playbooks, the CLI's
plan, refusal and exit codes. Simulated: what `minikube start` does after its checks (no
Kubernetes node is created) and kubectl (answers the node's kubelet version from the profile).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import test_minikube_role as mk

from provision.runner import run_playbook

pytestmark = [pytest.mark.container, pytest.mark.slow]


def _newest(minor: int) -> str:
    """The newest release of 1.<minor> the simulated minikube lists (v1.38.1's list: e.g.
    1.30.14, 1.31.14), which the planner picks for a hop (newest patch, no prerelease)."""
    import re

    text = (mk.FAKES / "minikube").read_text()
    found = [tuple(int(x) for x in m) for m in re.findall(rf'"v1\.({minor})\.(\d+)"', text)]
    return f"1.{minor}.{max(p for _, p in found)}"


N30, N31 = _newest(30), _newest(31)


def profile_version(lab: Any, host: str) -> str:
    text = mk.ssh_ok(lab, host, "cat ~/.minikube/profiles/minikube/config.json")
    return json.loads(text)["KubernetesConfig"]["KubernetesVersion"]


@pytest.mark.timeout(3600)  # installs docker.io first; far longer when the machine is loaded
def test_upgrade_minikube_simulated_one_minor_per_hop_as_the_docker_group_user(
        lab_host: Any, tmp_path: Path) -> None:
    """Simulated minikube 1.29 -> `provision upgrade --to 1.31 --yes`: two hops, each a
    `minikube start --kubernetes-version` by the non-root user (v1.30.x then v1.31.x), the
    profile and boot unit at 1.31; a re-run does nothing (no start, hop playbook changed=0);
    a downgrade is refused with exit 2 and no start; a bootstrap with the inventory still at
    1.29 is refused instead of pointing the boot unit back at 1.29."""
    lab = lab_host()
    host = lab.hosts[0]
    user = lab.inventory.hosts[host].user
    assert user and user != "root"
    with mk.simulated_minikube(lab, host, mk.serve_simulated(tmp_path / "www", N31),
                               "1.29"):
        first = mk.cluster(lab)
        assert first.ok, f"{first.errors}\n{first.log_path.read_text()[-5000:]}"
        assert profile_version(lab, host) == "v1.29.0"
        assert len(mk.starts(lab, host)) == 1

        plan = lab.cli("-i", "lab", "upgrade", "--to", "1.31", "--plan", timeout=600)
        assert plan.returncode == 0, f"{plan.stdout}\n{plan.stderr[-3000:]}"
        assert f"minikube start --kubernetes-version=v{N30}" in plan.stdout
        assert len(mk.starts(lab, host)) == 1, "--plan started minikube"

        up = lab.cli("-i", "lab", "upgrade", "--to", "1.31", "--yes", timeout=1200)
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr[-3000:]}"
        runs = mk.starts(lab, host)
        assert len(runs) == 3, runs
        versions = [a for r in runs[1:] for a in r["argv"] if a.startswith("--kubernetes-")]
        assert versions == [f"--kubernetes-version=v{N30}", f"--kubernetes-version=v{N31}"]
        assert all(r["uid"] != 0 and r["user"] == user for r in runs)
        assert all("--driver=docker" in r["argv"] and "--cpus=2" in r["argv"] for r in runs)
        assert profile_version(lab, host) == f"v{N31}"
        node = mk.ssh_ok(lab, host, "kubectl get node minikube "
                                    "-o jsonpath={.status.nodeInfo.kubeletVersion}")
        assert node == f"v{N31}"
        unit = mk.ssh_ok(lab, host, "systemctl cat minikube.service")
        assert f"--kubernetes-version=v{N31}" in unit and f"User={user}" in unit
        status = lab.cli("-i", "lab", "--json", "status", timeout=600)
        assert status.returncode == 0, f"{status.stdout}\n{status.stderr[-3000:]}"
        seen = json.loads(status.stdout)["status"]
        assert (seen["kubernetes_version"], seen["status"], seen["user"]) == (
            N31, "Running", user), seen

        again = lab.cli("-i", "lab", "upgrade", "--to", "1.31", "--yes", timeout=600)
        assert again.returncode == 0, f"{again.stdout}\n{again.stderr[-3000:]}"
        assert "Nothing to do" in again.stdout
        hop = run_playbook(command="test", playbook="upgrade-minikube.yml",
                           inventory=lab.inventory, quiet=True,
                           extravars={"minikube_kubernetes_release": N31})
        assert hop.ok and hop.hosts[host]["changed"] == 0, \
            f"{hop.hosts}\n{hop.log_path.read_text()[-5000:]}"
        assert len(mk.starts(lab, host)) == 3, "a run at the target started minikube"

        down = lab.cli("-i", "lab", "upgrade", "--to", "1.30", "--yes", timeout=600)
        assert down.returncode == 2, f"{down.stdout}\n{down.stderr[-3000:]}"
        assert "downgrades are not supported" in down.stdout + down.stderr
        assert len(mk.starts(lab, host)) == 3
        assert profile_version(lab, host) == f"v{N31}"

        # the inventory still says 1.29: bootstrap refuses (minikube cannot downgrade) before
        # it rewrites the boot unit to the old version
        stale = mk.cluster(lab)
        assert not stale.ok
        assert "newer than kubernetes_version 1.29.0" in str(stale.errors), stale.errors
        unit = mk.ssh_ok(lab, host, "systemctl cat minikube.service 2>/dev/null || true")
        assert f"--kubernetes-version=v{N31}" in unit
        mk.set_host_vars(lab, host, {"kubernetes_version": N31})
        fixed = mk.cluster(lab)
        assert fixed.ok and fixed.hosts[host]["changed"] == 0, fixed.errors
        assert len(mk.starts(lab, host)) == 3
