"""`provision reset` in minikube mode on a real lab host with the SIMULATED minikube
(tests/simulator_minikube: the real CLI surface; `delete` removes the profile).

Real: the docker component, the minikube role's downloads and boot unit, become_user to the
non-root docker-group user, the CLI's confirmation and exit codes, systemd. Simulated: what
`minikube start`/`delete` do to a Kubernetes node (none is created).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import test_minikube_role as mk

pytestmark = [pytest.mark.container, pytest.mark.slow]


@pytest.mark.timeout(3600)  # installs docker.io first; far longer when the machine is loaded
def test_reset_minikube_simulated_deletes_the_profile_and_the_boot_unit(
        lab_host: Any, tmp_path: Path) -> None:
    """Simulated minikube: after bootstrap, `reset` without --yes and without a terminal is
    exit 2 (nothing changed); `reset --yes` stops and removes the boot unit and runs
    `minikube delete` as the user (profile gone; minikube and docker stay); a second run
    changes nothing."""
    lab = lab_host()
    host = lab.hosts[0]
    with mk.simulated_minikube(lab, host, mk.serve_simulated(tmp_path / "www", "1.31.0"),
                               "1.31"):
        first = mk.cluster(lab)
        assert first.ok, f"{first.errors}\n{first.log_path.read_text()[-5000:]}"
        profile = "~/.minikube/profiles/minikube/config.json"
        mk.ssh_ok(lab, host, f"test -f {profile}")
        mk.ssh_ok(lab, host, "test -f /etc/systemd/system/minikube.service")

        refused = lab.cli("-i", "lab", "reset", timeout=600)
        assert refused.returncode == 2 and "--yes" in refused.stderr
        mk.ssh_ok(lab, host, f"test -f {profile}")

        proc = lab.cli("-i", "lab", "--json", "reset", "--yes", timeout=1200)
        obj = json.loads(proc.stdout)
        assert proc.returncode == 0 and obj["ok"], proc.stderr[-3000:]
        assert obj["reset"] == {"mode": "minikube", "snapshot": False, "wipe_data": False}
        assert obj["hosts"][host]["changed"] > 0
        assert lab.ssh(host, f"test -e {profile}").returncode == 1, "the profile is still there"
        assert lab.ssh(host, "test -e /etc/systemd/system/minikube.service").returncode == 1
        assert lab.ssh(host, "systemctl is-active minikube.service").stdout.strip() in (
            "inactive", "unknown", "failed")
        mk.ssh_ok(lab, host, "test -x /usr/local/bin/minikube && docker info >/dev/null")

        again = lab.cli("-i", "lab", "--json", "reset", "--yes", timeout=1200)
        obj = json.loads(again.stdout)
        assert again.returncode == 0 and obj["hosts"][host]["changed"] == 0, obj
