"""minikube's boot unit follows docker (issue 15): an unattended docker.io update stops docker
(prerm) and starts it again (postinst), and needrestart or an admin may restart it; the node
container stops with docker, and the unit must bring the cluster back.

Real: docker.io from the Debian mirror and its systemd unit, the role's minikube.service with
its dependencies on docker.service, systemd propagating docker's stop/restart/start to it.
Simulated: minikube itself (tests/simulator_minikube/minikube records every `start` with the
caller's uid; `stop` marks the profile stopped), as in tests/test_minikube_role.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_minikube_role import (
    RELEASE,
    cluster,
    served,
    simulated_minikube,
    ssh_ok,
    starts,
)

pytestmark = [pytest.mark.container, pytest.mark.slow]

__all__ = ["served"]  # the fixture, imported for this module's test


def unit_state(lab: Any, host: str) -> str:
    return ssh_ok(lab, host, "systemctl is-active minikube.service || true").strip()


@pytest.mark.timeout(3600)
def test_minikube_unit_comes_back_after_docker_stops_or_restarts(lab_host: Any,
                                                                 served: Path) -> None:
    """After the role: the unit is wanted by docker.service; `systemctl restart docker`
    restarts it (one more simulated `minikube start`, as the user), and docker stopped then
    started as a package update does stops the unit (`minikube stop`) and starts it again."""
    lab = lab_host()
    host = lab.hosts[0]
    with simulated_minikube(lab, host, served, RELEASE):
        first = cluster(lab)
        assert first.ok, f"{first.errors}\n{first.log_path.read_text()[-5000:]}"
        second = cluster(lab)
        assert second.ok and second.hosts[host]["changed"] == 0, second.hosts
    wants = ssh_ok(lab, host, "systemctl show -p WantedBy --value minikube.service").split()
    assert "docker.service" in wants and "multi-user.target" in wants, wants
    ssh_ok(lab, host, "test -L /etc/systemd/system/docker.service.wants/minikube.service")
    ssh_ok(lab, host, "sudo -n systemctl start minikube.service")  # as at boot
    assert unit_state(lab, host) == "active"
    count = len(starts(lab, host))

    ssh_ok(lab, host, "sudo -n systemctl restart docker")
    assert unit_state(lab, host) == "active"
    runs = starts(lab, host)
    assert len(runs) == count + 1, "docker restart did not restart the minikube unit"
    assert runs[-1]["uid"] != 0

    # a package update: prerm stops docker, postinst starts it
    ssh_ok(lab, host, "sudo -n systemctl stop docker.socket docker.service")
    assert unit_state(lab, host) == "inactive", "the unit must stop with docker"
    assert '"Host":"Stopped"' in ssh_ok(lab, host, "minikube status --output=json || true") \
        .replace(" ", "")
    ssh_ok(lab, host, "sudo -n systemctl start docker.service")
    assert unit_state(lab, host) == "active", "starting docker did not start the unit"
    assert len(starts(lab, host)) == count + 2
