"""Fixtures of the end-to-end suite (`make e2e`): real Kubernetes on real hosts with internet.

Hosts come from one of (checked in this order, before any network traffic):

* ``PROVISION_E2E_INVENTORY``: an inventory of your own hosts (kubeadm or minikube mode), for
  example three OCI VMs. The suite bootstraps them, so use throwaway hosts.
* ``PROVISION_E2E_IMAGE``: a cloud image file (e.g. Ubuntu 24.04 ``.img``) the suite boots as a
  lab VM (`provision lab up --kind vm --image ...`), ``PROVISION_E2E_MODE`` (kubeadm, default,
  or minikube) and ``PROVISION_E2E_DISK`` (default 30G).

Without either, every test skips with that reason. With hosts, `provision doctor` first checks
from the hosts that pkgs.k8s.io, registry.k8s.io and download.docker.com answer; when they do
not, every test skips naming the unreachable endpoints (the suite is for machines online).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

NO_HOSTS = ("no e2e hosts: set PROVISION_E2E_INVENTORY (an inventory of throwaway hosts with "
            "internet access) or PROVISION_E2E_IMAGE (a cloud image to boot as a lab VM)")


@dataclass
class E2E:
    """The hosts under test and how to drive `provision` against them."""

    inventory: str
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def cli(self, *args: str, timeout: float = 5400) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "provision", "-i", self.inventory, *args],
                              cwd=REPO, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def json(self, *args: str, timeout: float = 5400) -> tuple[int, dict]:
        proc = self.cli("--json", *args, timeout=timeout)
        try:
            return proc.returncode, json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"provision {' '.join(args)}: no JSON on stdout (exit "
                                 f"{proc.returncode}):\n{proc.stderr[-4000:]}") from None

    def load(self):  # noqa: ANN201 - provision.inventory.Inventory
        from provision.validate import load_valid_inventory

        return load_valid_inventory(self.inventory)

    def ssh(self, host: str, command: str, timeout: float = 600
            ) -> subprocess.CompletedProcess[str]:
        """A command on an inventory host over SSH with the inventory's key and known_hosts
        (host keys checked)."""
        h = self.load().hosts[host]
        args = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={h.known_hosts_file}", "-p", str(h.port)]
        if h.key_file:
            args += ["-i", str(h.key_file)]
        return subprocess.run([*args, f"{h.user}@{h.address}", command], capture_output=True,
                              text=True, timeout=timeout, check=False)


def unreachable_endpoints(e2e: E2E) -> list[str]:
    """doctor's HTTPS checks from the hosts; the failing ones (empty: online)."""
    code, report = e2e.json("doctor", timeout=600)
    checks = report.get("checks") or []
    if code not in (0, 1) or not checks:
        raise AssertionError(f"provision doctor could not check the hosts (exit {code}): "
                             f"{report.get('errors')}")
    return [f"{c['host']}: {c['check'].removeprefix('https ')}" for c in checks
            if c.get("check", "").startswith("https ") and c.get("status") != "PASS"]


@pytest.fixture(scope="session")
def e2e() -> Iterator[E2E]:
    inventory = os.environ.get("PROVISION_E2E_INVENTORY")
    image = os.environ.get("PROVISION_E2E_IMAGE")
    if not inventory and not image:
        pytest.skip(NO_HOSTS)
    lab_env: dict[str, str] | None = None
    if inventory:
        hosts = E2E(inventory)
    else:
        mode = os.environ.get("PROVISION_E2E_MODE", "kubeadm")
        disk = os.environ.get("PROVISION_E2E_DISK", "30G")
        state = Path(os.environ.get("PROVISION_E2E_STATE", REPO / ".e2e-state"))
        lab_env = {**os.environ, "XDG_STATE_HOME": str(state)}
        up = subprocess.run([sys.executable, "-m", "provision", "lab", "up", "--kind", "vm",
                             "--image", str(image), "--mode", mode, "--disk", disk],
                            cwd=REPO, env=lab_env, capture_output=True, text=True,
                            timeout=1800, check=False)
        if up.returncode != 0:
            pytest.fail(f"provision lab up --kind vm --image {image} failed:\n{up.stderr}")
        hosts = E2E("lab", env=lab_env)
    try:
        offline = unreachable_endpoints(hosts)
        if offline:
            pytest.skip("offline: the hosts cannot reach what a real bootstrap downloads: "
                        + "; ".join(offline))
        yield hosts
    finally:
        if lab_env is not None:
            subprocess.run([sys.executable, "-m", "provision", "lab", "down"], cwd=REPO,
                           env=lab_env, capture_output=True, text=True, timeout=600,
                           check=False)
