"""One add-on role (cni, metallb, ingress_nginx, cert_manager, gateway_api) run whole in real
Ansible (local connection) against the SIMULATED API server (tests/simulator/httpapi.py) with
the SIMULATED kubectl first on PATH: tests/playbooks/addon-role.yml, as playbooks/addons.yml
includes the role. What is simulated is Kubernetes (and, where a test says so, an add-on's
controller); the role's tasks, templates, filters and the stamp's `kubectl get -f -` are real.
The add-on stamp tests (tests/test_*_stamp.py of the add-on roles) share it."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml
from simulator.httpapi import SimApi, kubeadm_cluster, started_cluster
from simulator.server import SimServer
from test_gateway_listeners import _kubectl

from provision.runner import RunResult, run_playbook

PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "addon-role.yml"
HOST = "cp1"
# what became of an include that ran (outcome())
INCLUDED = {"runner_on_ok", "playbook_on_include"}
SKIPPED = {"runner_on_skipped"}


@contextmanager
def addon_cluster(nodes: Iterable[tuple[str, str]] = (("n1", "192.0.2.7"),),
                  namespaces: Iterable[str] = ("kube-system",),
                  **settings: Any) -> Iterator[tuple[SimServer, SimApi]]:
    """A started simulated cluster of kubeadm 1.35.1 with these namespaces and (node, address)
    heartbeats, ``settings`` applied to it first; stopped after the block."""
    server, api = started_cluster(())
    server.cluster.settings.update(settings)
    kubeadm_cluster(api, "1.35.1", namespaces=namespaces, nodes=nodes)
    try:
        yield server, api
    finally:
        server.stop()


@dataclass
class AddonRun(RunResult):
    """One run of the role, and what the tests ask of it."""

    @property
    def log(self) -> str:
        """The run's log, whitespace folded."""
        return " ".join(self.log_path.read_text().split())

    @property
    def changed(self) -> int:
        return int(self.hosts[HOST]["changed"])

    @property
    def ran(self) -> list[str]:
        """The role's tasks that ran (not skipped), in order (after the include and argument
        validation)."""
        return [e["task"] for e in self.events if e["event"] == "runner_on_ok"
                and e["task"] != "Run the add-on role" and not e["task"].startswith("Validating ")]

    def outcome(self, task: str) -> set[str]:
        """What became of ``task``: INCLUDED (an include that ran), SKIPPED, {"runner_on_ok"}..."""
        return {e["event"] for e in self.events if e["task"] == task
                and e["event"] not in ("playbook_on_task_start", "runner_on_start")}


class AddonRole:
    """``role`` run against one simulated cluster (``url``) from ``tmp``; its variables
    (``host``) are kept between runs, so a test changes a setting by changing ``host``."""

    def __init__(self, tmp: Path, url: str, role: str, **values: Any) -> None:
        self.tmp = tmp
        self.role = role
        bin_dir, kubeconfig = _kubectl(tmp, url)
        self.host: dict[str, Any] = {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "addon_role": role, "sim_kubectl_bin": str(bin_dir),
            "kubernetes_admin_kubeconfig": str(kubeconfig), **values}

    def run(self, check: bool = True, **values: Any) -> AddonRun:
        """One run with ``host`` updated by ``values`` for this run only; with ``check``, it
        must succeed."""
        inv = self.tmp / "hosts.yml"
        inv.write_text(yaml.safe_dump({"all": {"hosts": {HOST: {**self.host, **values}}}}))
        result = run_playbook(command=f"test-{self.role}-stamp", inventory=inv, quiet=True,
                              playbook=str(PLAYBOOK))
        run = AddonRun(**{f.name: getattr(result, f.name) for f in fields(result)})
        assert run.ok or not check, f"{run.errors}\n{run.log[-4000:]}"
        return run


def get(api: SimApi, path: str) -> dict:
    """The object at ``path``, which must exist."""
    code, out = api.call("GET", path)
    assert code == 200, out
    return out


def delete(api: SimApi, path: str) -> None:
    """Delete the object at ``path``, which must exist."""
    code, out = api.call("DELETE", path)
    assert code == 200, out
